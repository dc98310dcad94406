//! The public matrix product (`matmul`) against the slow reference (`matmul_naive`) on random
//! shapes, both layouts of each operand, odd leading dimensions, with and without accumulation.
//! (The step kernel's and GEMV's versions are tested next to them, in `src/kernels/`.)

#![allow(clippy::needless_range_loop)]

mod common;

use common::rand_vec;
use lstm::kernels::{matmul, matmul_naive, Transpose};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn fast_gemm_matches_naive_on_random_shapes() {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let mut shapes: Vec<(usize, usize, usize)> = vec![
        (1, 1, 1),
        (1, 1024, 256),
        (32, 1024, 256),
        (64, 256, 64),
        (7, 13, 29),
        (2048, 33, 65),
    ];
    for _ in 0..40 {
        shapes.push((
            rng.gen_range(1..70),
            rng.gen_range(1..70),
            rng.gen_range(1..90),
        ));
    }
    for (m, n, k) in shapes {
        for ta in [Transpose::No, Transpose::Yes] {
            for tb in [Transpose::No, Transpose::Yes] {
                for accumulate in [false, true] {
                    // odd leading dimensions: padding after each row
                    let pad = rng.gen_range(0..3);
                    let (ar, ac) = if ta == Transpose::No { (m, k) } else { (k, m) };
                    let (br, bc) = if tb == Transpose::No { (k, n) } else { (n, k) };
                    let (lda, ldb, ldc) = (ac + pad, bc + pad, n + pad);
                    let a = rand_vec(&mut rng, ar * lda);
                    let b = rand_vec(&mut rng, br * ldb);
                    let c0 = rand_vec(&mut rng, m * ldc);
                    let mut fast = c0.clone();
                    let mut slow = c0.clone();
                    matmul(
                        m, n, k, &a, lda, ta, &b, ldb, tb, &mut fast, ldc, accumulate,
                    );
                    matmul_naive(
                        m, n, k, &a, lda, ta, &b, ldb, tb, &mut slow, ldc, accumulate,
                    );
                    for i in 0..m {
                        for j in 0..n {
                            let (f, s) = (fast[i * ldc + j], slow[i * ldc + j]);
                            assert!(
                                (f - s).abs() <= 1e-4 * (k as f32).sqrt() * (1.0 + s.abs()),
                                "({m},{n},{k}) {ta:?}{tb:?} acc={accumulate}: [{i},{j}] {f} vs {s}"
                            );
                        }
                        // padding columns untouched
                        for j in n..ldc {
                            assert_eq!(fast[i * ldc + j], c0[i * ldc + j]);
                        }
                    }
                }
            }
        }
    }
}
