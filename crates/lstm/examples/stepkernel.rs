//! Microbenchmark of the per-step product kernel on the step shapes of the bench configs, in
//! each of its versions (run by hand: `cargo run --release -p lstm --example stepkernel`).
use lstm::kernels::Transpose;
use lstm::testing::{gemm_packed, pack_panels, with_packed_kernel, PackedKernel};
use std::time::Instant;

fn main() {
    // (rows per thread, G·H, H): forward (n = 4H, k = H) and backward (n = H, k = 4H) products
    let shapes = [
        (16, 512, 128),
        (16, 128, 512),
        (16, 1024, 256),
        (16, 256, 1024),
        (16, 2048, 512),
        (16, 512, 2048),
    ];
    for &(m, n, k) in &shapes {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut wp = Vec::new();
        pack_panels(k, n, &w, n, Transpose::No, &mut wp);
        let mut c = vec![0.0f32; m * n];
        for kernel in [
            PackedKernel::Avx512,
            PackedKernel::Avx2,
            PackedKernel::Scalar,
        ] {
            let reps = (200_000_000 / (2 * m * n * k)).max(10);
            let reps = if kernel == PackedKernel::Scalar {
                reps / 20 + 1
            } else {
                reps
            };
            let mut times = Vec::new();
            for _ in 0..7 {
                let t0 = Instant::now();
                with_packed_kernel(kernel, || {
                    for _ in 0..reps {
                        gemm_packed(m, n, k, &a, k, &wp, &mut c, n, true);
                    }
                });
                times.push(t0.elapsed().as_secs_f64() / reps as f64);
            }
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let gf = 2.0 * (m * n * k) as f64 / times[3] / 1e9;
            println!(
                "{m}x{n}x{k} {kernel:?}: median {:.2} us, {gf:.1} GFLOP/s",
                times[3] * 1e6
            );
        }
    }
}
