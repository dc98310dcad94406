//! Matrix products: one safe entry point over the `gemm` crate, and the naive reference.
//!
//! All matrices are row-major `f32` with an explicit leading dimension (row stride).
//! [`matmul`] computes `C = op(A) · op(B)` or `C += op(A) · op(B)`, where `op(X)` is `X` or
//! `Xᵀ`. It is the only fast product in the library; [`matmul_naive`] is the slow, obviously
//! correct reference the tests hold it to.
//!
//! ```
//! use lstm::linalg::{matmul, Transpose};
//! // (2x3) · (3x2)ᵀ stored as (2x3): C = A · Bᵀ
//! let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let b = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
//! let mut c = [0.0; 4];
//! matmul(2, 2, 3, &a, 3, Transpose::No, &b, 3, Transpose::Yes, &mut c, 2, false);
//! assert_eq!(c, [1.0, 2.0, 4.0, 5.0]);
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many threads the library's products and element-wise passes may use.
///
/// `0` means all available cores. The rayon global pool is sized on first use; this setting
/// limits how many of its threads a product asks for.
pub fn set_num_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

thread_local! {
    static LOCAL_THREADS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `f` with the library limited to `n` threads on this thread (used inside parallel
/// sections so nested products do not oversubscribe the cores).
pub fn with_threads<R>(n: usize, f: impl FnOnce() -> R) -> R {
    let old = LOCAL_THREADS.with(|c| c.replace(n));
    let r = f();
    LOCAL_THREADS.with(|c| c.set(old));
    r
}

/// `dst (rows, cols) += srcᵀ` with `src (cols, rows)`, row strides `ld_dst` and `ld_src`, in
/// 16 x 16 tiles (so that neither side is walked with a large stride for long).
pub(crate) fn add_transposed(
    dst: &mut [f32],
    ld_dst: usize,
    src: &[f32],
    ld_src: usize,
    rows: usize,
    cols: usize,
) {
    const TILE: usize = 16;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                let d = &mut dst[r * ld_dst + c0..r * ld_dst + (c0 + TILE).min(cols)];
                for (c, x) in (c0..).zip(d.iter_mut()) {
                    *x += src[c * ld_src + r];
                }
            }
        }
    }
}

/// `dst (cols, rows) = srcᵀ` with `src (rows, cols)`, row strides `ld_dst` and `ld_src`, in
/// 16 x 16 tiles.
pub(crate) fn transpose_into(
    dst: &mut [f32],
    ld_dst: usize,
    src: &[f32],
    ld_src: usize,
    rows: usize,
    cols: usize,
) {
    const TILE: usize = 16;
    #[cfg(target_arch = "x86_64")]
    let avx512 = std::arch::is_x86_feature_detected!("avx512f");
    for c0 in (0..cols).step_by(TILE) {
        for r0 in (0..rows).step_by(TILE) {
            #[cfg(target_arch = "x86_64")]
            if avx512 {
                let (nr, nc) = ((rows - r0).min(TILE), (cols - c0).min(TILE));
                let (s, d) = (r0 * ld_src + c0, c0 * ld_dst + r0);
                assert!(s + (nr - 1) * ld_src + nc <= src.len());
                assert!(d + (nc - 1) * ld_dst + nr <= dst.len());
                // SAFETY: the CPU has AVX-512F; the asserts cover the tile's `nr` rows of `nc`
                // on the source side and its `nc` rows of `nr` on the destination side
                unsafe {
                    transpose16_avx512(
                        src.as_ptr().add(s),
                        ld_src,
                        dst.as_mut_ptr().add(d),
                        ld_dst,
                        nr,
                        nc,
                    )
                };
                continue;
            }
            for c in c0..(c0 + TILE).min(cols) {
                let d = &mut dst[c * ld_dst + r0..c * ld_dst + (r0 + TILE).min(rows)];
                for (r, x) in (r0..).zip(d.iter_mut()) {
                    *x = src[r * ld_src + c];
                }
            }
        }
    }
}

/// One tile of [`transpose_into`], `nr` rows of `nc` (each 1..=16), in registers: 32-bit and
/// 64-bit interleaves within the 128-bit lanes, then two rounds of lane shuffles; only the
/// tile's elements are read and written (masked loads and stores).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose16_avx512(
    src: *const f32,
    ld_src: usize,
    dst: *mut f32,
    ld_dst: usize,
    nr: usize,
    nc: usize,
) {
    use std::arch::x86_64::*;
    let mask = |n: usize| -> __mmask16 { ((1u32 << n) - 1) as __mmask16 };
    let (load, store) = (mask(nc), mask(nr));
    let r: [__m512; 16] = std::array::from_fn(|i| {
        if i < nr {
            _mm512_maskz_loadu_ps(load, src.add(i * ld_src))
        } else {
            _mm512_setzero_ps()
        }
    });
    // t[2i], t[2i + 1]: rows 2i and 2i + 1 interleaved, per lane l: columns 4l, 4l + 1 and
    // 4l + 2, 4l + 3
    let t: [__m512; 16] = std::array::from_fn(|k| {
        let (a, b) = (r[k & !1], r[k | 1]);
        if k % 2 == 0 {
            _mm512_unpacklo_ps(a, b)
        } else {
            _mm512_unpackhi_ps(a, b)
        }
    });
    // u[4q + c], per lane l: rows 4q..4q + 4 of column 4l + c
    let u: [__m512; 16] = std::array::from_fn(|k| {
        let (q, c) = (k / 4, k % 4);
        let (a, b) = (
            _mm512_castps_pd(t[4 * q + c / 2]),
            _mm512_castps_pd(t[4 * q + 2 + c / 2]),
        );
        _mm512_castpd_ps(if c % 2 == 0 {
            _mm512_unpacklo_pd(a, b)
        } else {
            _mm512_unpackhi_pd(a, b)
        })
    });
    for c in 0..4 {
        let (a, b, cc, d) = (u[c], u[4 + c], u[8 + c], u[12 + c]);
        let v0 = _mm512_shuffle_f32x4::<0x88>(a, b);
        let v1 = _mm512_shuffle_f32x4::<0xDD>(a, b);
        let v2 = _mm512_shuffle_f32x4::<0x88>(cc, d);
        let v3 = _mm512_shuffle_f32x4::<0xDD>(cc, d);
        // output row 4l + c: lane l of u[c], u[4 + c], u[8 + c], u[12 + c]
        let rows = [
            (c, _mm512_shuffle_f32x4::<0x88>(v0, v2)),
            (4 + c, _mm512_shuffle_f32x4::<0x88>(v1, v3)),
            (8 + c, _mm512_shuffle_f32x4::<0xDD>(v0, v2)),
            (12 + c, _mm512_shuffle_f32x4::<0xDD>(v1, v3)),
        ];
        for (row, v) in rows {
            if row < nc {
                _mm512_mask_storeu_ps(dst.add(row * ld_dst), store, v);
            }
        }
    }
}

/// Elements per block of the passes that are spread over the threads in fixed blocks (the
/// optimizer update, the gradient norm, the sum of the chunks' gradients): fixed, so that their
/// results never depend on the thread count.
pub(crate) const PAR_BLOCK: usize = 1 << 15;

/// Whether a pass over `len` items in fixed blocks of `block` uses the thread pool: when it has
/// more than one block and the library more than one thread.
pub(crate) fn parallel_blocks(len: usize, block: usize) -> bool {
    len > block && num_threads() > 1
}

/// The number of threads the library uses (see [`set_num_threads`] and [`with_threads`]).
pub fn num_threads() -> usize {
    let local = LOCAL_THREADS.with(|c| c.get());
    if local > 0 {
        return local;
    }
    match THREADS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n,
    }
}

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transpose {
    /// Use the matrix as stored.
    No,
    /// Use its transpose.
    Yes,
}

fn strides(ld: usize, t: Transpose) -> (isize, isize) {
    // (row stride, column stride) of op(X) in the stored buffer.
    match t {
        Transpose::No => (ld as isize, 1),
        Transpose::Yes => (1, ld as isize),
    }
}

fn needed(rows: usize, cols: usize, ld: usize, t: Transpose) -> usize {
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
fn check(
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

/// The slow, obviously correct reference for [`matmul`] (same arguments, same result up to
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

/// Adds the sums of the rows of `x` (`rows × cols`, contiguous) into `out` (`cols`).
pub fn add_column_sums(x: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    for r in 0..rows {
        add_assign(&mut out[..cols], &x[r * cols..(r + 1) * cols]);
    }
}

#[inline(always)]
fn add_assign_imp(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

crate::simd_dispatch!(
    /// `dst += src` element by element (over the shorter of the two), vectorised for the CPU.
    pub fn add_assign(dst: &mut [f32], src: &[f32]) => add_assign_imp
);

#[inline(always)]
fn add_into_imp(dst: &mut [f32], a: &[f32], b: &[f32]) {
    for ((d, x), y) in dst.iter_mut().zip(a).zip(b) {
        *d = x + y;
    }
}

crate::simd_dispatch!(
    /// `dst = a + b` element by element (over the shortest), vectorised for the CPU.
    pub fn add_into(dst: &mut [f32], a: &[f32], b: &[f32]) => add_into_imp
);

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

#[cfg(target_arch = "x86_64")]
type BlockArgs = (
    *const f32,
    usize,
    *const f32,
    usize,
    *mut f32,
    usize,
    usize,
    u16,
    u16,
    bool,
    // per row of the block, where its initial values start (null: C itself or zero)
    *const *const f32,
);

/// Width of a packed panel (two AVX-512 registers of `f32`).
pub const PANEL: usize = 32;

/// Packs `B (k×n)` into column panels of [`PANEL`] for [`gemm_packed`]:
/// `out[(p·k + kk)·PANEL + c] = B[kk, p·PANEL + c]` (zero past `n`). `B` is read as stored
/// `(k, n)` with row stride `ldb` when `tb == No`, or as the transpose of a stored `(n, k)`.
pub fn pack_panels(k: usize, n: usize, b: &[f32], ldb: usize, tb: Transpose, out: &mut Vec<f32>) {
    pack_panels_rows(k, n, b, ldb, tb, |s| s, out);
}

/// Rows of `k` packed together by the transposing pack (a tile of the panel that stays in L1).
const PACK_TILE: usize = 16;

/// [`pack_panels`] of a matrix whose stored rows are scattered: stored row `s` (row `kk` of `B`
/// when `tb == No`, column `j` when `tb == Yes`) is row `row(s)` of `b`. Lets a part of a
/// weight matrix (some gate rows) be packed straight from the whole, with no gathered copy.
///
/// # Panics
/// If a mapped row reaches past `b` (an internal invariant).
pub(crate) fn pack_panels_rows(
    k: usize,
    n: usize,
    b: &[f32],
    ldb: usize,
    tb: Transpose,
    row: impl Fn(usize) -> usize,
    out: &mut Vec<f32>,
) {
    let panels = n.div_ceil(PANEL);
    // every element is written below (the padding of a narrow last panel with zeros), so a
    // buffer of the right size is reused without clearing it
    if out.len() != panels * k * PANEL {
        out.clear();
        out.resize(panels * k * PANEL, 0.0);
    }
    for (p, dst) in out.chunks_exact_mut(k * PANEL).enumerate() {
        pack_panel(k, n, b, ldb, tb, &row, p, dst);
    }
}

/// One matrix for [`pack_panels_par`]: the arguments of a [`pack_panels`] call,
/// `(k, n, b, ldb, tb, out)`.
pub(crate) type PackJob<'a> = (usize, usize, &'a [f32], usize, Transpose, &'a mut Vec<f32>);

/// Packs several matrices as [`pack_panels`] does, their panels spread over the pool's threads
/// (the same values as one [`pack_panels`] call each).
pub(crate) fn pack_panels_par(jobs: Vec<PackJob<'_>>) {
    use rayon::prelude::*;
    let mut panels = Vec::new();
    for (k, n, b, ldb, tb, out) in jobs {
        let count = n.div_ceil(PANEL);
        if out.len() != count * k * PANEL {
            out.clear();
            out.resize(count * k * PANEL, 0.0);
        }
        for (p, dst) in out.chunks_exact_mut(k * PANEL).enumerate() {
            panels.push((k, n, b, ldb, tb, p, dst));
        }
    }
    panels
        .into_par_iter()
        .for_each(|(k, n, b, ldb, tb, p, dst)| pack_panel(k, n, b, ldb, tb, &|s| s, p, dst));
}

/// Panel `p` (`k·PANEL` values in `dst`) of [`pack_panels_rows`].
#[allow(clippy::too_many_arguments)]
#[inline]
fn pack_panel(
    k: usize,
    n: usize,
    b: &[f32],
    ldb: usize,
    tb: Transpose,
    row: &impl Fn(usize) -> usize,
    p: usize,
    dst: &mut [f32],
) {
    let w = (n - p * PANEL).min(PANEL);
    if w < PANEL {
        for kk in 0..k {
            dst[kk * PANEL + w..(kk + 1) * PANEL].fill(0.0);
        }
    }
    match tb {
        Transpose::No => {
            for kk in 0..k {
                let r = row(kk) * ldb + p * PANEL;
                dst[kk * PANEL..kk * PANEL + w].copy_from_slice(&b[r..r + w]);
            }
        }
        Transpose::Yes => {
            // tiles of PACK_TILE rows of the panel: the tile's 2 KiB of writes stay in L1
            // while the panel's source rows are read a short piece at a time
            let srcs: Vec<&[f32]> = (0..w)
                .map(|c| {
                    let r = row(p * PANEL + c) * ldb;
                    &b[r..r + k]
                })
                .collect();
            let mut k0 = 0;
            while k0 < k {
                let kt = (k - k0).min(PACK_TILE);
                let tile = &mut dst[k0 * PANEL..(k0 + kt) * PANEL];
                for (c, src) in srcs.iter().enumerate() {
                    for (kk, &v) in src[k0..k0 + kt].iter().enumerate() {
                        tile[kk * PANEL + c] = v;
                    }
                }
                k0 += kt;
            }
        }
    }
}

/// `C (m×n) (+)= A (m×k) · B` with `B` packed by [`pack_panels`]: each panel is one contiguous
/// stream, read once per block of up to 12 rows of `A` held in registers.
///
/// # Panics
/// If a buffer is too short for the shape (an internal invariant).
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    bp: &[f32],
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    check_packed(m, n, k, a, lda, bp, c, ldc);
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if k > 0 {
        match packed_kernel() {
            PackedKernel::Avx512 => {
                // SAFETY: the CPU has AVX-512F; the asserts above cover every index read or
                // written.
                unsafe { gemm_packed_avx512(m, n, k, a, lda, bp, c, ldc, accumulate, None) };
                return;
            }
            PackedKernel::Avx2 => {
                // SAFETY: the CPU has AVX2 and FMA; the asserts above cover every index read
                // or written.
                unsafe { gemm_packed_avx2(m, n, k, a, lda, bp, c, ldc, accumulate) };
                return;
            }
            PackedKernel::Scalar => {}
        }
    }
    // plain Rust, written so that the compiler vectorises it across a panel's columns
    for i in 0..m {
        let x = &a[i * lda..i * lda + k];
        for (p, j) in (0..n).step_by(PANEL).enumerate() {
            let mut acc = [0.0f32; PANEL];
            for (kk, &xv) in x.iter().enumerate() {
                let b = &bp[(p * k + kk) * PANEL..(p * k + kk + 1) * PANEL];
                for (s, &bv) in acc.iter_mut().zip(b) {
                    *s += xv * bv;
                }
            }
            let w = (n - j).min(PANEL);
            for (dst, s) in c[i * ldc + j..i * ldc + j + w].iter_mut().zip(acc) {
                *dst = if accumulate { *dst + s } else { s };
            }
        }
    }
}

/// The vector kernels of [`gemm_packed`], [`gemv_kmajor`] and the one-row products of
/// [`matmul`], best first; the CPU's best is used unless a test or
/// a measurement asks for a slower one (see [`with_packed_kernel`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PackedKernel {
    /// AVX-512F: blocks of up to 12 rows by one 32-column panel.
    Avx512,
    /// AVX2 and FMA (CPUs without AVX-512): blocks of up to 3 rows by one panel.
    Avx2,
    /// Plain Rust (other CPUs).
    Scalar,
}

thread_local! {
    static PACKED_LIMIT: std::cell::Cell<PackedKernel> =
        const { std::cell::Cell::new(PackedKernel::Avx512) };
}

/// The kernel [`gemm_packed`] uses on this thread: the CPU's best, or a slower one asked for
/// by [`with_packed_kernel`].
fn packed_kernel() -> PackedKernel {
    #[cfg(target_arch = "x86_64")]
    let best = if std::is_x86_feature_detected!("avx512f") {
        PackedKernel::Avx512
    } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        PackedKernel::Avx2
    } else {
        PackedKernel::Scalar
    };
    #[cfg(not(target_arch = "x86_64"))]
    let best = PackedKernel::Scalar;
    best.max(PACKED_LIMIT.with(|c| c.get()))
}

/// Runs `f` with [`gemm_packed`] limited to `kernel` (or the CPU's best, if slower) on this
/// thread: for tests and measurements of the kernels a CPU without AVX-512 would use.
#[doc(hidden)]
pub fn with_packed_kernel<R>(kernel: PackedKernel, f: impl FnOnce() -> R) -> R {
    let old = PACKED_LIMIT.with(|c| c.replace(kernel));
    let r = f();
    PACKED_LIMIT.with(|c| c.set(old));
    r
}

/// The buffer lengths [`gemm_packed`] and [`gemm_packed_gather`] rely on.
#[allow(clippy::too_many_arguments)]
fn check_packed(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    bp: &[f32],
    c: &[f32],
    ldc: usize,
) {
    assert!(
        a.len() >= needed(m, k, lda, Transpose::No),
        "gemm_packed: A too short"
    );
    assert!(
        bp.len() >= n.div_ceil(PANEL) * k * PANEL,
        "gemm_packed: packed B too short"
    );
    assert!(
        c.len() >= needed(m, n, ldc, Transpose::No),
        "gemm_packed: C too short"
    );
}

/// `C (m×n) = T[ids[i]] + A (m×k) · B`: [`gemm_packed`] where row `i` of `C` starts from row
/// `ids[i]` of the table `T (·, n)` instead of its own contents (a one-hot input projection
/// gathered inside the product, without a separate copy).
///
/// # Panics
/// If a buffer is too short for the shape or an id is past the table (internal invariants).
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed_gather(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    bp: &[f32],
    c: &mut [f32],
    ldc: usize,
    table: &[f32],
    ids: &[u32],
) {
    assert!(ids.len() >= m, "gemm_packed_gather: too few ids");
    assert!(
        ids[..m]
            .iter()
            .all(|&t| (t as usize + 1) * n <= table.len()),
        "gemm_packed_gather: id past the table"
    );
    check_packed(m, n, k, a, lda, bp, c, ldc);
    #[cfg(target_arch = "x86_64")]
    if k > 0 && m > 0 && n > 0 && packed_kernel() == PackedKernel::Avx512 {
        // SAFETY: the CPU has AVX-512F; the asserts above cover every index read or written,
        // the table rows included.
        unsafe { gemm_packed_avx512(m, n, k, a, lda, bp, c, ldc, false, Some((table, &ids[..m]))) };
        return;
    }
    for (i, &t) in ids[..m].iter().enumerate() {
        let t = t as usize;
        c[i * ldc..i * ldc + n].copy_from_slice(&table[t * n..(t + 1) * n]);
    }
    gemm_packed(m, n, k, a, lda, bp, c, ldc, true);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_packed_avx512(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    bp: &[f32],
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    init: Option<(&[f32], &[u32])>,
) {
    let mut rows_init = [std::ptr::null::<f32>(); MAX_ROWS];
    for_each_block(m, n, k, MAX_ROWS, |j, w, k0, kc, i, rows| {
        let m0: u16 = if w >= 16 {
            0xffff
        } else {
            ((1u32 << w) - 1) as u16
        };
        let m1: u16 = if w >= 32 {
            0xffff
        } else if w > 16 {
            ((1u32 << (w - 16)) - 1) as u16
        } else {
            0
        };
        let init_ptr = match init {
            Some((table, ids)) if k0 == 0 => {
                for (r, p) in rows_init.iter_mut().enumerate().take(rows) {
                    *p = table
                        .as_ptr()
                        .add(*ids.get_unchecked(i + r) as usize * n + j);
                }
                rows_init.as_ptr()
            }
            _ => std::ptr::null(),
        };
        let args = (
            a.as_ptr().add(i * lda + k0),
            lda,
            bp.as_ptr().add(((j / PANEL) * k + k0) * PANEL),
            PANEL,
            c.as_mut_ptr().add(i * ldc + j),
            ldc,
            kc,
            m0,
            m1,
            accumulate || k0 > 0,
            init_ptr,
        );
        match rows {
            12 => block_packed::<12>(args),
            11 => block_packed::<11>(args),
            10 => block_packed::<10>(args),
            9 => block_packed::<9>(args),
            8 => block_packed::<8>(args),
            7 => block_packed::<7>(args),
            6 => block_packed::<6>(args),
            5 => block_packed::<5>(args),
            4 => block_packed::<4>(args),
            3 => block_packed::<3>(args),
            2 => block_packed::<2>(args),
            _ => block_packed::<1>(args),
        }
    });
}

/// The order in which [`gemm_packed`]'s vector kernels visit the product, one order for all of
/// them so that their sums agree bit for bit: each 32-column panel (from column `j`, `w`
/// columns wide), in slices of [`KC`] of its rows (`k0..k0 + kc`), each used by every block of
/// rows while it sits in L1 (the whole panel does not fit beside the rows of `A`); the rows in
/// as few blocks of at most `max_rows` as possible, of equal sizes (9 rows in one block, 16 as
/// 8 + 8: never a block of one row beside a full one, since a pass over a panel slice costs
/// about as much as four more rows in it). Calls `visit(j, w, k0, kc, i, rows)` for each block.
#[inline(always)]
fn for_each_block(
    m: usize,
    n: usize,
    k: usize,
    max_rows: usize,
    mut visit: impl FnMut(usize, usize, usize, usize, usize, usize),
) {
    let blocks = m.div_ceil(max_rows);
    for j in (0..n).step_by(PANEL) {
        let w = (n - j).min(PANEL);
        for k0 in (0..k).step_by(KC) {
            let kc = (k - k0).min(KC);
            let mut i = 0;
            for blk in 0..blocks {
                let rows = m / blocks + usize::from(blk < m % blocks);
                visit(j, w, k0, kc, i, rows);
                i += rows;
            }
        }
    }
}

/// [`gemm_packed`] with AVX2 and FMA: the same panels, `KC` slices and order of the sums as
/// the AVX-512 kernel (so the same results, bit for bit), in blocks of up to three rows (12
/// accumulators of 8 lanes: a 32-column panel is four registers per row).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_packed_avx2(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    bp: &[f32],
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    for_each_block(m, n, k, 3, |j, w, k0, kc, i, rows| {
        let args = (
            a.as_ptr().add(i * lda + k0),
            lda,
            bp.as_ptr().add(((j / PANEL) * k + k0) * PANEL),
            c.as_mut_ptr().add(i * ldc + j),
            ldc,
            kc,
            w,
            accumulate || k0 > 0,
        );
        match rows {
            3 => block_packed_avx2::<3>(args),
            2 => block_packed_avx2::<2>(args),
            _ => block_packed_avx2::<1>(args),
        }
    });
}

/// One block of [`gemm_packed_avx2`]: `R` rows of `A` (`a`, row stride `lda`) times `k` rows of
/// a panel, into the first `w` columns of `R` rows of `C` (added to them with `accumulate`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn block_packed_avx2<const R: usize>(
    (a, lda, b, c, ldc, k, w, accumulate): (
        *const f32,
        usize,
        *const f32,
        *mut f32,
        usize,
        usize,
        usize,
        bool,
    ),
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); 4]; R];
    for kk in 0..k {
        let bp = b.add(kk * PANEL);
        for q in 0..4 {
            let bv = _mm256_loadu_ps(bp.add(8 * q));
            for r in 0..R {
                let x = _mm256_broadcast_ss(&*a.add(r * lda + kk));
                acc[r][q] = _mm256_fmadd_ps(x, bv, acc[r][q]);
            }
        }
    }
    let mut out = [0.0f32; PANEL];
    for (r, row) in acc.iter().enumerate() {
        for (q, v) in row.iter().enumerate() {
            _mm256_storeu_ps(out.as_mut_ptr().add(8 * q), *v);
        }
        let cp = std::slice::from_raw_parts_mut(c.add(r * ldc), w);
        for (d, s) in cp.iter_mut().zip(&out) {
            *d = if accumulate { *d + s } else { *s };
        }
    }
}

/// Most rows of `A` in one block of [`gemm_packed`]: 24 accumulators, with the panel's vectors
/// and the broadcasts (taken by the multiply-adds straight from memory) in the other eight
/// registers. Per row as fast as blocks of 8 (3.0-3.3 µs per row of a 1024x256 product), and
/// 9-12 rows no longer take two passes (9 rows: 28 µs instead of 37 as 8 + 1).
const MAX_ROWS: usize = 12;

/// Rows of a packed panel used per pass over the blocks of `A` (see `gemm_packed_avx512`): a
/// 32 KiB slice, which with up to twelve rows of `A` (12 KiB) still fits the 48 KiB L1 (2-4%
/// faster than 128).
const KC: usize = 256;

/// Rows of a panel whose vectors are loaded together before their multiply-adds: the loads run
/// ahead of the arithmetic, which is worth about 10% over one row at a time. The sums keep
/// their order (one row after another), so the results do not change.
const U: usize = 4;

/// As `block`, but the panel rows are contiguous and zero-padded: plain loads.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block_packed<const R: usize>(
    (a, lda, b, _ldb, c, ldc, k, m0, m1, accumulate, init): BlockArgs,
) {
    use std::arch::x86_64::*;
    let mut acc0 = [_mm512_setzero_ps(); R];
    let mut acc1 = [_mm512_setzero_ps(); R];
    let rows: [*const f32; R] = std::array::from_fn(|r| a.add(r * lda));
    let mut kk = 0;
    while kk + U <= k {
        let bp = b.add(kk * PANEL);
        let bv: [[__m512; 2]; U] = std::array::from_fn(|u| {
            [
                _mm512_loadu_ps(bp.add(u * PANEL)),
                _mm512_loadu_ps(bp.add(u * PANEL + 16)),
            ]
        });
        for (u, &[b0, b1]) in bv.iter().enumerate() {
            for r in 0..R {
                let x = _mm512_set1_ps(*rows[r].add(kk + u));
                acc0[r] = _mm512_fmadd_ps(x, b0, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(x, b1, acc1[r]);
            }
        }
        kk += U;
    }
    while kk < k {
        let bp = b.add(kk * PANEL);
        let b0 = _mm512_loadu_ps(bp);
        let b1 = _mm512_loadu_ps(bp.add(16));
        for r in 0..R {
            let x = _mm512_set1_ps(*rows[r].add(kk));
            acc0[r] = _mm512_fmadd_ps(x, b0, acc0[r]);
            acc1[r] = _mm512_fmadd_ps(x, b1, acc1[r]);
        }
        kk += 1;
    }
    for r in 0..R {
        let cp = c.add(r * ldc);
        let (mut v0, mut v1) = (acc0[r], acc1[r]);
        if !init.is_null() {
            let ip = *init.add(r);
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ip));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ip.add(16)));
        } else if accumulate {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cp));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cp.add(16)));
        }
        _mm512_mask_storeu_ps(cp, m0, v0);
        _mm512_mask_storeu_ps(cp.add(16), m1, v1);
    }
}

/// Rows per block of a [`pack_kmajor`] panel: eight AVX-512 registers of `f32`.
pub const KMAJOR_BLOCK: usize = 128;

/// Rows of a matrix-vector panel, padded to a multiple of 16 (one AVX-512 register).
pub fn kmajor_rows(rows: usize) -> usize {
    rows.div_ceil(16) * 16
}

/// Packs the rows `rows` (indices into `W`, `usize::MAX` for a zero row) of `W (·, ld)`,
/// columns `col0..col0 + k`, for [`gemv_kmajor`]: blocks of [`KMAJOR_BLOCK`] rows (the last
/// block narrower, padded to 16), each stored column by column, so that the product streams
/// the panel once, front to back. `rows.len()` must be a multiple of 16 (see [`kmajor_rows`]).
///
/// Layout: block `b` of width `w` starts at `b·KMAJOR_BLOCK·k` and holds
/// `out[start + kk·w + r] = W[rows[b·KMAJOR_BLOCK + r], col0 + kk]`.
pub fn pack_kmajor(w: &[f32], ld: usize, rows: &[usize], col0: usize, k: usize) -> Vec<f32> {
    debug_assert_eq!(rows.len() % 16, 0);
    let mut out = vec![0.0; rows.len() * k];
    for (b, block) in rows.chunks(KMAJOR_BLOCK).enumerate() {
        let bw = block.len();
        let dst = &mut out[b * KMAJOR_BLOCK * k..b * KMAJOR_BLOCK * k + bw * k];
        for (r, &row) in block.iter().enumerate() {
            if row == usize::MAX {
                continue;
            }
            let src = &w[row * ld + col0..row * ld + col0 + k];
            for (kk, &x) in src.iter().enumerate() {
                dst[kk * bw + r] = x;
            }
        }
    }
    out
}

/// `z = init + P · v` (or `z += P · v` when `init` is `None`) for a panel `P` packed by
/// [`pack_kmajor`] with `z.len()` rows and `v.len()` columns: the matrix-vector product of
/// batch-1 generation. Each block keeps its outputs in registers while it streams its columns,
/// so the panel is read exactly once and no horizontal sums are needed.
///
/// # Panics
/// If the lengths do not match the panel (a bug in the caller, never user input).
pub fn gemv_kmajor(panel: &[f32], v: &[f32], init: Option<&[f32]>, z: &mut [f32]) {
    let (n, k) = (z.len(), v.len());
    assert!(n % 16 == 0 && panel.len() == n * k && init.is_none_or(|i| i.len() == n));
    if let Some(i) = init {
        z.copy_from_slice(i);
    }
    #[cfg(target_arch = "x86_64")]
    match packed_kernel() {
        PackedKernel::Avx512 => {
            // SAFETY: the CPU has AVX-512F and the assert above proved the lengths.
            unsafe { gemv_kmajor_avx512(panel, v, z) };
            return;
        }
        PackedKernel::Avx2 => {
            // SAFETY: the CPU has AVX2 and FMA, and the assert above proved the lengths.
            unsafe { gemv_kmajor_avx2(panel, v, z) };
            return;
        }
        PackedKernel::Scalar => {}
    }
    for (b, zb) in z.chunks_mut(KMAJOR_BLOCK).enumerate() {
        let bw = zb.len();
        let pb = &panel[b * KMAJOR_BLOCK * k..b * KMAJOR_BLOCK * k + bw * k];
        for (kk, &x) in v.iter().enumerate() {
            for (zr, &p) in zb.iter_mut().zip(&pb[kk * bw..(kk + 1) * bw]) {
                *zr += p * x;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gemv_kmajor_avx512(panel: &[f32], v: &[f32], z: &mut [f32]) {
    let k = v.len();
    for (b, zb) in z.chunks_mut(KMAJOR_BLOCK).enumerate() {
        let p = panel.as_ptr().add(b * KMAJOR_BLOCK * k);
        let (vp, zp) = (v.as_ptr(), zb.as_mut_ptr());
        match zb.len() / 16 {
            8 => kmajor_block::<8>(p, vp, k, zp),
            7 => kmajor_block::<7>(p, vp, k, zp),
            6 => kmajor_block::<6>(p, vp, k, zp),
            5 => kmajor_block::<5>(p, vp, k, zp),
            4 => kmajor_block::<4>(p, vp, k, zp),
            3 => kmajor_block::<3>(p, vp, k, zp),
            2 => kmajor_block::<2>(p, vp, k, zp),
            _ => kmajor_block::<1>(p, vp, k, zp),
        }
    }
}

/// [`gemv_kmajor`] with AVX2 and FMA: each block in halves of at most 64 rows (eight
/// accumulators of 8 lanes), each row's sum in the same order as the AVX-512 kernel's (so the
/// same results, bit for bit).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_kmajor_avx2(panel: &[f32], v: &[f32], z: &mut [f32]) {
    let k = v.len();
    for (b, zb) in z.chunks_mut(KMAJOR_BLOCK).enumerate() {
        let bw = zb.len();
        let p = panel.as_ptr().add(b * KMAJOR_BLOCK * k);
        let (vp, zp) = (v.as_ptr(), zb.as_mut_ptr());
        for h in (0..bw).step_by(64) {
            let (p, zp) = (p.add(h), zp.add(h));
            match (bw - h).min(64) / 8 {
                8 => kmajor_block_avx2::<8>(p, bw, vp, k, zp),
                6 => kmajor_block_avx2::<6>(p, bw, vp, k, zp),
                4 => kmajor_block_avx2::<4>(p, bw, vp, k, zp),
                _ => kmajor_block_avx2::<2>(p, bw, vp, k, zp),
            }
        }
    }
}

/// `8·R` rows of a [`gemv_kmajor`] block whose columns are `w` floats apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn kmajor_block_avx2<const R: usize>(
    p: *const f32,
    w: usize,
    v: *const f32,
    k: usize,
    z: *mut f32,
) {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_ps(); R];
    for r in 0..R {
        acc[r] = _mm256_loadu_ps(z.add(8 * r));
    }
    for kk in 0..k {
        let x = _mm256_broadcast_ss(&*v.add(kk));
        let row = p.add(kk * w);
        for r in 0..R {
            acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(row.add(8 * r)), x, acc[r]);
        }
    }
    for r in 0..R {
        _mm256_storeu_ps(z.add(8 * r), acc[r]);
    }
}

/// One block of `16·R` rows: `R` accumulators, one broadcast and `R` fused multiply-adds per
/// column.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn kmajor_block<const R: usize>(p: *const f32, v: *const f32, k: usize, z: *mut f32) {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_ps(); R];
    for r in 0..R {
        acc[r] = _mm512_loadu_ps(z.add(16 * r));
    }
    let w = 16 * R;
    for kk in 0..k {
        let x = _mm512_set1_ps(*v.add(kk));
        let row = p.add(kk * w);
        for r in 0..R {
            acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(row.add(16 * r)), x, acc[r]);
        }
    }
    for r in 0..R {
        _mm512_storeu_ps(z.add(16 * r), acc[r]);
    }
}

/// `x` rounded to the nearest bfloat16 (ties to even), as its 16 bits.
pub fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// The `f32` value of a bfloat16.
pub fn from_bf16(x: u16) -> f32 {
    f32::from_bits((x as u32) << 16)
}

/// [`pack_kmajor`] in bfloat16, for [`gemv_kmajor_bf16`]: columns go in pairs (`k` is padded to
/// even with a zero column) and each row keeps its pair side by side, the layout of AVX-512
/// BF16's pairwise dot product. Block `b` of width `w` starts at `b·KMAJOR_BLOCK·k2` (`k2` =
/// `k` rounded up to even) and holds `out[start + (p·w + r)·2 + j] = W[rows[..], col0 + 2p + j]`.
pub fn pack_kmajor_bf16(w: &[f32], ld: usize, rows: &[usize], col0: usize, k: usize) -> Vec<u16> {
    debug_assert_eq!(rows.len() % 16, 0);
    let k2 = k.div_ceil(2) * 2;
    let mut out = vec![0u16; rows.len() * k2];
    for (b, block) in rows.chunks(KMAJOR_BLOCK).enumerate() {
        let bw = block.len();
        let dst = &mut out[b * KMAJOR_BLOCK * k2..b * KMAJOR_BLOCK * k2 + bw * k2];
        for (r, &row) in block.iter().enumerate() {
            if row == usize::MAX {
                continue;
            }
            for kk in 0..k {
                dst[((kk / 2) * bw + r) * 2 + kk % 2] = to_bf16(w[row * ld + col0 + kk]);
            }
        }
    }
    out
}

/// [`gemv_kmajor`] with bfloat16 weights (and `v` rounded to bfloat16), summed in `f32`: half
/// the bytes to stream, so about twice as fast where the product is bound by cache bandwidth.
/// Uses AVX-512 BF16 where the CPU has it, else the same arithmetic in scalar code.
///
/// # Panics
/// If the lengths do not match the panel (a bug in the caller, never user input).
pub fn gemv_kmajor_bf16(panel: &[u16], v: &[f32], init: Option<&[f32]>, z: &mut [f32]) {
    let (n, k) = (z.len(), v.len());
    let k2 = k.div_ceil(2) * 2;
    assert!(n % 16 == 0 && panel.len() == n * k2 && init.is_none_or(|i| i.len() == n));
    if let Some(i) = init {
        z.copy_from_slice(i);
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bf16") {
        // SAFETY: the CPU has the features and the assert above proved the lengths.
        unsafe { gemv_kmajor_bf16_avx512(panel, v, z) };
        return;
    }
    let vb = |kk: usize| {
        if kk < k {
            from_bf16(to_bf16(v[kk]))
        } else {
            0.0
        }
    };
    for (b, zb) in z.chunks_mut(KMAJOR_BLOCK).enumerate() {
        let bw = zb.len();
        let pb = &panel[b * KMAJOR_BLOCK * k2..b * KMAJOR_BLOCK * k2 + bw * k2];
        for p in 0..k2 / 2 {
            let (x0, x1) = (vb(2 * p), vb(2 * p + 1));
            for (r, zr) in zb.iter_mut().enumerate() {
                let q = (p * bw + r) * 2;
                *zr += from_bf16(pb[q]) * x0 + from_bf16(pb[q + 1]) * x1;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn gemv_kmajor_bf16_avx512(panel: &[u16], v: &[f32], z: &mut [f32]) {
    // `v` as bfloat16 pairs, converted once per chunk of columns
    const CHUNK: usize = 512;
    let mut xs = [0u32; CHUNK];
    let k = v.len();
    let pairs = k.div_ceil(2);
    let k2 = 2 * pairs;
    let mut p0 = 0;
    while p0 < pairs {
        let np = (pairs - p0).min(CHUNK);
        for (i, x) in xs[..np].iter_mut().enumerate() {
            let c = 2 * (p0 + i);
            let hi = if c + 1 < k {
                to_bf16(v[c + 1]) as u32
            } else {
                0
            };
            *x = to_bf16(v[c]) as u32 | (hi << 16);
        }
        for (b, zb) in z.chunks_mut(KMAJOR_BLOCK).enumerate() {
            let bw = zb.len();
            let p = panel.as_ptr().add(b * KMAJOR_BLOCK * k2 + p0 * bw * 2);
            let (x, zp) = (&xs[..np], zb.as_mut_ptr());
            match bw / 16 {
                8 => kmajor_block_bf16::<8>(p, x, zp),
                7 => kmajor_block_bf16::<7>(p, x, zp),
                6 => kmajor_block_bf16::<6>(p, x, zp),
                5 => kmajor_block_bf16::<5>(p, x, zp),
                4 => kmajor_block_bf16::<4>(p, x, zp),
                3 => kmajor_block_bf16::<3>(p, x, zp),
                2 => kmajor_block_bf16::<2>(p, x, zp),
                _ => kmajor_block_bf16::<1>(p, x, zp),
            }
        }
        p0 += np;
    }
}

/// One block of `16·R` rows in bfloat16 over the column pairs `x` (each two bfloat16 of `v`
/// in one `u32`): one broadcast and `R` pairwise dot products into `f32` accumulators.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
#[inline]
unsafe fn kmajor_block_bf16<const R: usize>(p: *const u16, x: &[u32], z: *mut f32) {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_ps(); R];
    for r in 0..R {
        acc[r] = _mm512_loadu_ps(z.add(16 * r));
    }
    let w = 16 * R;
    // two sets of accumulators (even and odd pairs) to hide the dot product's latency
    let mut acc2 = [_mm512_setzero_ps(); R];
    let even = x.len() / 2 * 2;
    let load = |row: *const u16, r: usize| -> __m512bh {
        std::mem::transmute(_mm512_loadu_si512(row.add(32 * r) as *const _))
    };
    let mut pair = 0;
    while pair < even {
        let xv: __m512bh = std::mem::transmute(_mm512_set1_epi32(x[pair] as i32));
        let xw: __m512bh = std::mem::transmute(_mm512_set1_epi32(x[pair + 1] as i32));
        let row = p.add(pair * w * 2);
        let row2 = p.add((pair + 1) * w * 2);
        for r in 0..R {
            acc[r] = _mm512_dpbf16_ps(acc[r], load(row, r), xv);
            acc2[r] = _mm512_dpbf16_ps(acc2[r], load(row2, r), xw);
        }
        pair += 2;
    }
    if pair < x.len() {
        let xv: __m512bh = std::mem::transmute(_mm512_set1_epi32(x[pair] as i32));
        let row = p.add(pair * w * 2);
        for r in 0..R {
            acc[r] = _mm512_dpbf16_ps(acc[r], load(row, r), xv);
        }
    }
    for r in 0..R {
        _mm512_storeu_ps(z.add(16 * r), _mm512_add_ps(acc[r], acc2[r]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposing_matches_the_definition_in_whole_and_partial_tiles() {
        for (rows, cols) in [(16, 1024), (33, 40), (5, 16), (16, 7), (48, 48)] {
            let (ld_src, ld_dst) = (cols + 3, rows + 5);
            let src: Vec<f32> = (0..rows * ld_src).map(|x| x as f32).collect();
            let mut dst = vec![-1.0f32; cols * ld_dst];
            transpose_into(&mut dst, ld_dst, &src, ld_src, rows, cols);
            for c in 0..cols {
                for r in 0..ld_dst {
                    let want = if r < rows { src[r * ld_src + c] } else { -1.0 };
                    assert_eq!(dst[c * ld_dst + r], want, "{rows}x{cols} at ({r}, {c})");
                }
            }
        }
    }

    #[test]
    fn packing_in_parallel_gives_each_matrix_its_own_packing() {
        // odd shapes (a narrow last panel), both layouts, one buffer of a stale size
        let shapes = [
            (7, 45, Transpose::No),
            (33, 70, Transpose::Yes),
            (64, 32, Transpose::Yes),
        ];
        let mats: Vec<Vec<f32>> = shapes
            .iter()
            .map(|&(k, n, _)| (0..k * n).map(|x| (x * 37 % 101) as f32 - 50.0).collect())
            .collect();
        let ld = |&(k, n, tb): &(usize, usize, Transpose)| if tb == Transpose::No { n } else { k };
        let mut par: Vec<Vec<f32>> = vec![Vec::new(), vec![1.0; 5], Vec::new()];
        let jobs = shapes
            .iter()
            .zip(&mats)
            .zip(par.iter_mut())
            .map(|((s, m), out)| (s.0, s.1, &m[..], ld(s), s.2, out))
            .collect();
        with_threads(2, || pack_panels_par(jobs));
        for ((s, m), got) in shapes.iter().zip(&mats).zip(&par) {
            let mut want = Vec::new();
            pack_panels(s.0, s.1, m, ld(s), s.2, &mut want);
            assert_eq!(got, &want, "shape {s:?}");
        }
    }
}
