//! The bf16 GEMM of `kernels::amx` against the fp32 products on the LSTM's shapes, in GFLOP/s
//! (medians of repeated runs), with the machine's peaks of fp32 FMA and bf16 dot products:
//! `cargo run --release -p lstm --example amx` (`-- --quick` for fewer shapes and repetitions).
//!
//! Columns: `fp32 matmul` is `kernels::matmul` (the `gemm` crate); `fp32 step` the packed
//! per-step kernel (`gemm_packed`, one thread, as each thread runs it on its rows of the
//! batch); `bf16` is `gemm_bf16_rows` on the best backend with `A` already in bf16, `bf16+cvt`
//! is `gemm_bf16` converting `A` on the way. `pack B` is the time to convert and lay out `B`;
//! `cvt Aᵀ`, for the weight gradients, the time to convert `A = dgᵀ` from the stored `dg`.
use lstm::kernels::amx::{amx_status, gemm_bf16, gemm_bf16_rows, AmxPacked, Bf16Backend, Bf16Rows};
use lstm::kernels::{matmul, with_threads, Transpose};
use lstm::testing::{gemm_packed, pack_panels};
use std::time::Instant;

/// The median over `runs` runs of the seconds one call of `f` takes, each run repeating `f`
/// for about `budget` seconds.
fn median_secs(runs: usize, budget: f64, mut f: impl FnMut()) -> f64 {
    let t0 = Instant::now();
    f();
    let once = t0.elapsed().as_secs_f64().max(1e-7);
    let reps = ((budget / once) as usize).clamp(1, 100_000);
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    times[runs / 2]
}

/// Peaks of one core: fp32 FMAs (`vfmadd231ps` zmm) and bf16 dot products (`vdpbf16ps` zmm) on
/// 24 independent registers, in GFLOP/s (inline assembly, so that the compiler keeps every one).
#[cfg(target_arch = "x86_64")]
fn peaks() -> (f64, Option<f64>) {
    const ITERS: usize = 1_000_000;
    macro_rules! peak_loop {
        ($op:literal) => {
            // SAFETY: the loop reads and writes only zmm0-zmm25 and the counter, all declared
            // clobbered; the callers check that the CPU has the instruction.
            unsafe {
                std::arch::asm!(
                    "vxorps zmm24, zmm24, zmm24",
                    "vxorps zmm25, zmm25, zmm25",
                    "2:",
                    concat!($op, " zmm0, zmm24, zmm25"), concat!($op, " zmm1, zmm24, zmm25"),
                    concat!($op, " zmm2, zmm24, zmm25"), concat!($op, " zmm3, zmm24, zmm25"),
                    concat!($op, " zmm4, zmm24, zmm25"), concat!($op, " zmm5, zmm24, zmm25"),
                    concat!($op, " zmm6, zmm24, zmm25"), concat!($op, " zmm7, zmm24, zmm25"),
                    concat!($op, " zmm8, zmm24, zmm25"), concat!($op, " zmm9, zmm24, zmm25"),
                    concat!($op, " zmm10, zmm24, zmm25"), concat!($op, " zmm11, zmm24, zmm25"),
                    concat!($op, " zmm12, zmm24, zmm25"), concat!($op, " zmm13, zmm24, zmm25"),
                    concat!($op, " zmm14, zmm24, zmm25"), concat!($op, " zmm15, zmm24, zmm25"),
                    concat!($op, " zmm16, zmm24, zmm25"), concat!($op, " zmm17, zmm24, zmm25"),
                    concat!($op, " zmm18, zmm24, zmm25"), concat!($op, " zmm19, zmm24, zmm25"),
                    concat!($op, " zmm20, zmm24, zmm25"), concat!($op, " zmm21, zmm24, zmm25"),
                    concat!($op, " zmm22, zmm24, zmm25"), concat!($op, " zmm23, zmm24, zmm25"),
                    "dec {n}",
                    "jnz 2b",
                    n = inout(reg) ITERS => _,
                    out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
                    out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
                    out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
                    out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _,
                    out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _,
                    out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
                    out("zmm24") _, out("zmm25") _,
                    options(nostack, nomem),
                )
            }
        };
    }
    let calls = (ITERS * 24) as f64;
    let t = median_secs(5, 0.0, || peak_loop!("vfmadd231ps"));
    let fma = calls * 32.0 / t / 1e9;
    let dp = std::is_x86_feature_detected!("avx512bf16").then(|| {
        let t = median_secs(5, 0.0, || peak_loop!("vdpbf16ps"));
        calls * 64.0 / t / 1e9
    });
    (fma, dp)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (runs, budget) = if quick { (3, 0.02) } else { (9, 0.05) };
    println!(
        "AMX: {}; bf16 backend: {:?}",
        match amx_status() {
            Ok(()) => "available".to_string(),
            Err(e) => format!("unavailable ({e})"),
        },
        Bf16Backend::best()
    );
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        let (fma, dp) = peaks();
        println!(
            "peak of one core: fp32 FMA {fma:.0} GFLOP/s, bf16 vdpbf16ps {} GFLOP/s",
            dp.map_or("-".to_string(), |d| format!("{d:.0}"))
        );
    }
    // (name, m, n, k): the step's forward `h · W_hhᵀ` (B = 32, n = 4H, k = H) and backward
    // `dgates · W_hh` (n = H, k = 4H), the input projection `x · W_ihᵀ` over T·B = 2048 rows
    // (k = I = H), and the weight gradient `dgatesᵀ · h` (m = 4H, n = H, k = T·B)
    let mut shapes = Vec::new();
    let hs: &[usize] = if quick {
        &[256]
    } else {
        &[128, 256, 512, 1024]
    };
    for &h in hs {
        shapes.push(("step fwd", 32, 4 * h, h));
        shapes.push(("step fwd, 16 rows", 16, 4 * h, h));
        shapes.push(("step bwd", 32, h, 4 * h));
        shapes.push(("input proj", 2048, 4 * h, h));
        shapes.push(("weight grad", 4 * h, h, 2048));
    }
    println!(
        "| product | m x n x k | threads | fp32 matmul | fp32 step | bf16 | bf16+cvt | pack B | cvt Aᵀ |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &(name, m, n, k) in &shapes {
        let a: Vec<f32> = (0..m * k).map(|i| ((i % 13) as f32 - 6.0) * 0.05).collect();
        // B stored transposed, (n, k), as W_hh is for the forward step
        let w: Vec<f32> = (0..n * k).map(|i| ((i % 7) as f32 - 3.0) * 0.07).collect();
        let mut c = vec![0.0f32; m * n];
        let flops = 2.0 * (m * n * k) as f64;
        let gf = |secs: f64| flops / secs / 1e9;
        let pack_secs = median_secs(runs, budget, || {
            std::hint::black_box(AmxPacked::new(&w, k, k, n, Transpose::Yes));
        });
        let packed = AmxPacked::new(&w, k, k, n, Transpose::Yes);
        let rows = Bf16Rows::new(&a, k, m, k);
        let mut cvt_t = String::from("-");
        if name == "weight grad" {
            // dg stored (T·B, 4H) = (k, m), read transposed
            let dg: Vec<f32> = (0..k * m).map(|i| ((i % 11) as f32 - 5.0) * 0.03).collect();
            let mut rows_t = Bf16Rows::default();
            let t = median_secs(runs, budget, || {
                rows_t.fill_op(&dg, m, Transpose::Yes, m, k);
            });
            cvt_t = format!("{:.0} µs", t * 1e6);
        }
        let mut step = String::from("-");
        if m <= 32 {
            let mut panels = Vec::new();
            pack_panels(k, n, &w, k, Transpose::Yes, &mut panels);
            let t = median_secs(runs, budget, || {
                gemm_packed(m, n, k, &a, k, &panels, &mut c, n, true);
            });
            step = format!("{:.0}", gf(t));
        }
        for threads in [1, 2] {
            with_threads(threads, || {
                let t32 = median_secs(runs, budget, || {
                    let (b, tb) = (&w, Transpose::Yes);
                    matmul(m, n, k, &a, k, Transpose::No, b, k, tb, &mut c, n, true);
                });
                let t16 = median_secs(runs, budget, || {
                    gemm_bf16_rows(Bf16Backend::best(), &rows, &packed, &mut c, n, true);
                });
                let t16c = median_secs(runs, budget, || {
                    gemm_bf16(m, &a, k, &packed, &mut c, n, true);
                });
                println!(
                    "| {name} | {m} x {n} x {k} | {threads} | {:.0} | {} | {:.0} | {:.0} | {:.0} µs | {cvt_t} |",
                    gf(t32),
                    if threads == 1 { step.as_str() } else { "-" },
                    gf(t16),
                    gf(t16c),
                    pack_secs * 1e6
                );
            });
        }
    }
}
