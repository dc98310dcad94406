//! The slow, obviously correct reference product the fast ones are held to.

use super::gemm::{check, Transpose};

/// The slow, obviously correct reference for [`matmul`](super::matmul) (same arguments, same result up to
/// rounding). Accumulates in `f64`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_naive(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    ta: Transpose,
    b: &[f32],
    ldb: usize,
    tb: Transpose,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    check(m, n, k, a, lda, ta, b, ldb, tb, c, ldc);
    let at = |i: usize, p: usize| match ta {
        Transpose::No => a[i * lda + p],
        Transpose::Yes => a[p * lda + i],
    };
    let bt = |p: usize, j: usize| match tb {
        Transpose::No => b[p * ldb + j],
        Transpose::Yes => b[j * ldb + p],
    };
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f64;
            for p in 0..k {
                s += at(i, p) as f64 * bt(p, j) as f64;
            }
            let dst = &mut c[i * ldc + j];
            *dst = if accumulate {
                *dst + s as f32
            } else {
                s as f32
            };
        }
    }
}
