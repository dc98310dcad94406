//! Kernels: the products and element-wise passes everything above is built on.
//!
//! All matrices are row-major `f32` with an explicit leading dimension (row stride).
//!
//! - [`matmul`] computes `C = op(A) · op(B)` or `C += op(A) · op(B)` (`op(X)` is `X` or `Xᵀ`):
//!   the GEMM entry point over the `gemm` crate, with dot-product paths for one or two rows.
//!   [`matmul_naive`] is the slow, obviously correct reference the tests hold every product to.
//! - The packed per-step kernel (`stepkernel.rs`): the recurrent weights packed once per batch
//!   into 32-column panels, each step's `h_prev · W_hhᵀ` register-blocked over them (AVX-512,
//!   AVX2+FMA with the same order of sums, or plain Rust).
//! - Generation's matrix-vector products ([`gemv_kmajor`], and [`gemv_kmajor_bf16`] in bf16).
//! - Transposes in 16 x 16 tiles, element-wise sums, and the activations (`exp`, `sigmoid`,
//!   `tanh`) with their error bounded by tests ([`activation`]).
//! - The thread budget ([`set_num_threads`], [`with_threads`], [`num_threads`]).
//!
//! Nothing here knows about cells, layers or models.
//!
//! ```
//! use lstm::kernels::{matmul, Transpose};
//! // (2x3) · (3x2)ᵀ stored as (2x3): C = A · Bᵀ
//! let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let b = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
//! let mut c = [0.0; 4];
//! matmul(2, 2, 3, &a, 3, Transpose::No, &b, 3, Transpose::Yes, &mut c, 2, false);
//! assert_eq!(c, [1.0, 2.0, 4.0, 5.0]);
//! ```

pub mod activation;
pub mod amx;
mod bf16;
mod gemm;
mod gemv;
mod naive;
pub(crate) mod stepkernel;
mod threads;
pub(crate) mod transpose;
mod vector;

pub use bf16::{from_bf16, gemv_kmajor_bf16, pack_kmajor_bf16, to_bf16, Precision};
pub use gemm::{matmul, Transpose};
pub use gemv::{gemv_kmajor, gemv_kmajor_rows, kmajor_rows, pack_kmajor, KMAJOR_BLOCK};
pub use naive::matmul_naive;
pub use threads::{num_threads, resolve_threads, set_num_threads, with_threads};
pub(crate) use threads::{parallel_blocks, PAR_BLOCK};
pub use vector::{add_assign, add_column_sums, add_into};

/// Helpers of the kernels' tests.
#[cfg(test)]
pub(crate) mod testutil {
    use rand::Rng;
    use rand_chacha::ChaCha8Rng;

    /// `n` values uniform in `[-1, 1)`.
    pub(crate) fn rand_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    /// The bit patterns of `v`, for comparisons that must be exact (NaN and signed zero included).
    pub(crate) fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// A fast product `fast` against the naive one `slow`, both `(m, ldc)` from the same `c0`: each
    /// of the first `n` columns within the rounding of a sum of `k` products, the columns past `n`
    /// untouched.
    pub(crate) fn assert_product_close(
        fast: &[f32],
        slow: &[f32],
        c0: &[f32],
        (m, n, k, ldc): (usize, usize, usize, usize),
        what: &str,
    ) {
        for i in 0..m {
            for j in 0..ldc {
                let (f, s) = (fast[i * ldc + j], slow[i * ldc + j]);
                if j < n {
                    assert!(
                        (f - s).abs() <= 1e-4 * (k as f32).sqrt() * (1.0 + s.abs()),
                        "{what} ({m},{n},{k}) [{i},{j}] {f} vs {s}"
                    );
                } else {
                    assert_eq!(f, c0[i * ldc + j], "padding untouched");
                }
            }
        }
    }
}
