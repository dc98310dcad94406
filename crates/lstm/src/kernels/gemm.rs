//! The GEMM entry point over the `gemm` crate, with its thin paths (dot products for one or
//! two rows).

use super::stepkernel::{packed_kernel, PackedKernel};
use super::threads::num_threads;

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transpose {
    /// Use the matrix as stored.
    No,
    /// Use its transpose.
    Yes,
}

pub(super) fn strides(ld: usize, t: Transpose) -> (isize, isize) {
    // (row stride, column stride) of op(X) in the stored buffer.
    match t {
        Transpose::No => (ld as isize, 1),
        Transpose::Yes => (1, ld as isize),
    }
}

pub(super) fn needed(rows: usize, cols: usize, ld: usize, t: Transpose) -> usize {
    // Minimum buffer length holding op(X) of shape (rows, cols).
    if rows == 0 || cols == 0 {
        return 0;
    }
    match t {
        Transpose::No => (rows - 1) * ld + cols,
        Transpose::Yes => (cols - 1) * ld + rows,
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn check(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    ta: Transpose,
    b: &[f32],
    ldb: usize,
    tb: Transpose,
    c: &[f32],
    ldc: usize,
) {
    // Internal invariant: callers validate user shapes before they get here.
    assert!(a.len() >= needed(m, k, lda, ta), "matmul: A too short");
    assert!(b.len() >= needed(k, n, ldb, tb), "matmul: B too short");
    assert!(
        c.len() >= needed(m, n, ldc, Transpose::No),
        "matmul: C too short"
    );
    assert!(ldc >= n || m <= 1, "matmul: ldc < n");
}

/// `C (m×n) = op(A) (m×k) · op(B) (k×n)`, or `C += ...` when `accumulate`.
///
/// `lda`, `ldb`, `ldc` are the row strides of the matrices *as stored*: `A` is stored
/// `(m, k)` when `ta == No` and `(k, m)` when `ta == Yes`; likewise `B`.
///
/// # Panics
/// If a buffer is too short for the shape given (an internal invariant; the library checks
/// user-supplied shapes before calling this).
#[allow(clippy::too_many_arguments)]
pub fn matmul(
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
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                c[r * ldc..r * ldc + n].fill(0.0);
            }
        }
        return;
    }
    if m <= 2 && ta == Transpose::No && tb == Transpose::Yes {
        // batch-1 generation: dot products of contiguous rows beat a packed GEMM
        gemv_nt(m, n, k, a, lda, b, ldb, c, ldc, accumulate);
        return;
    }
    if k <= 2 || n <= 2 {
        // thin products (a one-feature input, its weight gradient): a packed GEMM's set-up
        // costs more than the arithmetic
        thin(m, n, k, a, lda, ta, b, ldb, tb, c, ldc, accumulate);
        return;
    }
    let threads = num_threads();
    let parts = if threads <= 1 || m * n * k < 64 * 64 * 64 {
        1
    } else {
        threads.min(m / 32).max(1)
    };
    if parts == 1 {
        gemm_serial(m, n, k, a, lda, ta, b, ldb, tb, c, ldc, accumulate);
        return;
    }
    // Split the rows of C across threads: each part is an independent product with the whole
    // of K, so the result does not depend on scheduling (bit-identical for a thread count).
    let rows_per = m.div_ceil(parts);
    let mut blocks: Vec<(usize, usize, &mut [f32])> = Vec::with_capacity(parts);
    let mut rest = c;
    let mut r0 = 0;
    while r0 < m {
        let r1 = (r0 + rows_per).min(m);
        let len = if r1 == m { rest.len() } else { (r1 - r0) * ldc };
        let (head, tail) = rest.split_at_mut(len);
        blocks.push((r0, r1, head));
        rest = tail;
        r0 = r1;
    }
    use rayon::prelude::*;
    blocks.into_par_iter().for_each(|(r0, r1, cb)| {
        let a_part = match ta {
            Transpose::No => &a[r0 * lda..],
            Transpose::Yes => &a[r0..],
        };
        gemm_serial(
            r1 - r0,
            n,
            k,
            a_part,
            lda,
            ta,
            b,
            ldb,
            tb,
            cb,
            ldc,
            accumulate,
        );
    });
}

/// [`matmul`] for `k <= 2` or `n <= 2`, as rank-1 updates or dot products over contiguous
/// rows where the layout has them (shapes already checked).
#[allow(clippy::too_many_arguments)]
fn thin(
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
    let at = |i: usize, kk: usize| match ta {
        Transpose::No => a[i * lda + kk],
        Transpose::Yes => a[kk * lda + i],
    };
    let bt = |kk: usize, j: usize| match tb {
        Transpose::No => b[kk * ldb + j],
        Transpose::Yes => b[j * ldb + kk],
    };
    if !accumulate {
        for i in 0..m {
            c[i * ldc..i * ldc + n].fill(0.0);
        }
    }
    // row kk of op(B), when contiguous
    let b_row = |kk: usize| -> Option<&[f32]> {
        match tb {
            Transpose::No => Some(&b[kk * ldb..kk * ldb + n]),
            Transpose::Yes if ldb == 1 => Some(&b[kk..kk + n]),
            Transpose::Yes => None,
        }
    };
    if k <= 2 {
        // C[i, :] += A[i, kk] · B[kk, :]
        for i in 0..m {
            let crow = &mut c[i * ldc..i * ldc + n];
            for kk in 0..k {
                let x = at(i, kk);
                match b_row(kk) {
                    Some(br) => {
                        for (cv, &bv) in crow.iter_mut().zip(br) {
                            *cv += x * bv;
                        }
                    }
                    None => {
                        for (j, cv) in crow.iter_mut().enumerate() {
                            *cv += x * bt(kk, j);
                        }
                    }
                }
            }
        }
        return;
    }
    // n <= 2
    for j in 0..n {
        match ta {
            Transpose::Yes if ldc == 1 && n == 1 => {
                // C[:, 0] += Σ_kk B[kk, 0] · (row kk of A as stored)
                let cc = &mut c[..m];
                for kk in 0..k {
                    let x = bt(kk, 0);
                    for (cv, &av) in cc.iter_mut().zip(&a[kk * lda..kk * lda + m]) {
                        *cv += av * x;
                    }
                }
            }
            Transpose::No if tb == Transpose::Yes || ldb == 1 => {
                // dot products of contiguous rows (column j of op(B) is contiguous)
                let bcol = match tb {
                    Transpose::Yes => &b[j * ldb..j * ldb + k],
                    Transpose::No => &b[j..j + k],
                };
                for i in 0..m {
                    let arow = &a[i * lda..i * lda + k];
                    let s: f32 = arow.iter().zip(bcol).map(|(x, y)| x * y).sum();
                    c[i * ldc + j] += s;
                }
            }
            _ => {
                for i in 0..m {
                    let mut s = 0.0f32;
                    for kk in 0..k {
                        s += at(i, kk) * bt(kk, j);
                    }
                    c[i * ldc + j] += s;
                }
            }
        }
    }
}

/// One thread's product through the `gemm` crate (shapes already checked).
#[allow(clippy::too_many_arguments)]
fn gemm_serial(
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
    let (a_rs, a_cs) = strides(lda, ta);
    let (b_rs, b_cs) = strides(ldb, tb);
    // SAFETY: `check` proved every index the strides reach lies inside the slices, and `c`
    // is borrowed mutably, so it cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `C (m×n) (+)= A (m×k) · Bᵀ` with `B` stored `(n, k)`: one dot product of contiguous rows per
/// output, for the tiny `m` of batch-1 generation.
#[allow(clippy::too_many_arguments)]
fn gemv_nt(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    #[cfg(target_arch = "x86_64")]
    match packed_kernel() {
        PackedKernel::Avx512 => {
            for i in 0..m {
                // SAFETY: the CPU has AVX-512F; `check` in `matmul` proved the slices cover
                // the rows read and written.
                unsafe {
                    gemv_row_avx512(n, k, &a[i * lda..], b, ldb, &mut c[i * ldc..], accumulate)
                };
            }
            return;
        }
        PackedKernel::Avx2 => {
            for i in 0..m {
                // SAFETY: the CPU has AVX2 and FMA; as above.
                unsafe {
                    gemv_row_avx2(n, k, &a[i * lda..], b, ldb, &mut c[i * ldc..], accumulate)
                };
            }
            return;
        }
        PackedKernel::Scalar => {}
    }
    for i in 0..m {
        let x = &a[i * lda..i * lda + k];
        for j in 0..n {
            let s: f32 = x
                .iter()
                .zip(&b[j * ldb..j * ldb + k])
                .map(|(p, q)| p * q)
                .sum();
            let dst = &mut c[i * ldc + j];
            *dst = if accumulate { *dst + s } else { s };
        }
    }
}

/// Rows `j..j + 4` of `B` for a step of [`gemv_nt`]'s kernels, the last of the `n` repeated
/// past the end (their sums are computed and not stored).
#[cfg(target_arch = "x86_64")]
fn four_rows(j: usize, n: usize) -> [usize; 4] {
    [
        j,
        (j + 1).min(n - 1),
        (j + 2).min(n - 1),
        (j + 3).min(n - 1),
    ]
}

/// One row of [`gemv_nt`] with AVX-512: four outputs at a time, each a chain of fused
/// multiply-adds over 16 lanes, masked loads for the tail of `k`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gemv_row_avx512(
    n: usize,
    k: usize,
    x: &[f32],
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    let full = k / 16;
    let tail = (k % 16) as u32;
    let mask: __mmask16 = ((1u32 << tail) - 1) as __mmask16;
    let xp = x.as_ptr();
    let bp = b.as_ptr();
    let mut j = 0;
    while j < n {
        let rows = four_rows(j, n);
        let mut acc = [_mm512_setzero_ps(); 4];
        for kk in 0..full {
            let xv = _mm512_loadu_ps(xp.add(kk * 16));
            for r in 0..4 {
                acc[r] =
                    _mm512_fmadd_ps(xv, _mm512_loadu_ps(bp.add(rows[r] * ldb + kk * 16)), acc[r]);
            }
        }
        if tail > 0 {
            let xv = _mm512_maskz_loadu_ps(mask, xp.add(full * 16));
            for r in 0..4 {
                let wv = _mm512_maskz_loadu_ps(mask, bp.add(rows[r] * ldb + full * 16));
                acc[r] = _mm512_fmadd_ps(xv, wv, acc[r]);
            }
        }
        let s = [
            _mm512_reduce_add_ps(acc[0]),
            _mm512_reduce_add_ps(acc[1]),
            _mm512_reduce_add_ps(acc[2]),
            _mm512_reduce_add_ps(acc[3]),
        ];
        for r in 0..4.min(n - j) {
            let dst = &mut c[j + r];
            *dst = if accumulate { *dst + s[r] } else { s[r] };
        }
        j += 4;
    }
}

/// [`gemv_row_avx512`] with AVX2 and FMA: eight lanes, the tail of `k` added after the
/// horizontal sums.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_row_avx2(
    n: usize,
    k: usize,
    x: &[f32],
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    let full = k / 8;
    let xp = x.as_ptr();
    let bp = b.as_ptr();
    let hsum = |v: __m256| {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
    };
    let mut j = 0;
    while j < n {
        let rows = four_rows(j, n);
        let mut acc = [_mm256_setzero_ps(); 4];
        for kk in 0..full {
            let xv = _mm256_loadu_ps(xp.add(kk * 8));
            for r in 0..4 {
                acc[r] =
                    _mm256_fmadd_ps(xv, _mm256_loadu_ps(bp.add(rows[r] * ldb + kk * 8)), acc[r]);
            }
        }
        for r in 0..4.min(n - j) {
            let mut s = hsum(acc[r]);
            for kk in full * 8..k {
                s += *xp.add(kk) * *bp.add(rows[r] * ldb + kk);
            }
            let dst = &mut c[j + r];
            *dst = if accumulate { *dst + s } else { s };
        }
        j += 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::matmul_naive;
    use crate::kernels::stepkernel::{with_packed_kernel, PackedKernel};
    use crate::kernels::testutil::{assert_product_close, rand_vec};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Products of one or two rows by a transposed matrix (`matmul`'s dot-product path), in each
    /// version of the kernel, against the naive product.
    #[test]
    fn one_row_products_match_naive_in_every_version() {
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        let mut shapes: Vec<(usize, usize, usize)> = vec![(1, 1024, 256), (2, 65, 256), (1, 3, 7)];
        for _ in 0..40 {
            shapes.push((
                rng.gen_range(1..3),
                rng.gen_range(1..70),
                rng.gen_range(1..90),
            ));
        }
        for (m, n, k) in shapes {
            let pad = rng.gen_range(0..3);
            let (lda, ldb, ldc) = (k + pad, k + pad, n + pad);
            let a = rand_vec(&mut rng, m * lda);
            let b = rand_vec(&mut rng, n * ldb);
            let c0 = rand_vec(&mut rng, m * ldc);
            for accumulate in [false, true] {
                let mut slow = c0.clone();
                matmul_naive(
                    m,
                    n,
                    k,
                    &a,
                    lda,
                    Transpose::No,
                    &b,
                    ldb,
                    Transpose::Yes,
                    &mut slow,
                    ldc,
                    accumulate,
                );
                for kernel in [
                    PackedKernel::Avx512,
                    PackedKernel::Avx2,
                    PackedKernel::Scalar,
                ] {
                    let mut fast = c0.clone();
                    with_packed_kernel(kernel, || {
                        matmul(
                            m,
                            n,
                            k,
                            &a,
                            lda,
                            Transpose::No,
                            &b,
                            ldb,
                            Transpose::Yes,
                            &mut fast,
                            ldc,
                            accumulate,
                        )
                    });
                    assert_product_close(&fast, &slow, &c0, (m, n, k, ldc), &format!("{kernel:?}"));
                }
            }
        }
    }
}
