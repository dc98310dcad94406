//! The packed per-step kernel: `W_hh` packed once per batch into column panels, the step's
//! product `h_prev · W_hhᵀ` register-blocked over them.

use super::gemm::{needed, Transpose};

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

/// Packs `B (k×n)` into column panels of `PANEL` for [`gemm_packed`]:
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
pub(super) fn packed_kernel() -> PackedKernel {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::{assert_product_close, bits, rand_vec};
    use crate::kernels::{matmul_naive, with_threads};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The step kernel, in each of its versions (AVX-512, the AVX2 one of CPUs without AVX-512,
    /// plain Rust), against the naive product; the AVX2 version also bit for bit against the
    /// AVX-512 one, whose sums it keeps in the same order. (On a CPU without a version, the next
    /// one runs in its place.)
    #[test]
    fn packed_step_kernel_matches_naive() {
        let mut rng = ChaCha8Rng::seed_from_u64(78);
        let mut shapes: Vec<(usize, usize, usize)> = vec![
            (16, 1024, 256),
            (16, 512, 2048),
            (1, 33, 7),
            (9, 31, 5),
            (8, 32, 1),
            (3, 65, 40),
            (7, 70, 600),
        ];
        for _ in 0..60 {
            shapes.push((
                rng.gen_range(1..40),
                rng.gen_range(1..100),
                rng.gen_range(1..80),
            ));
        }
        let mut packed = Vec::new();
        for (m, n, k) in shapes {
            for tb in [Transpose::No, Transpose::Yes] {
                for accumulate in [false, true] {
                    let pad = rng.gen_range(0..3);
                    let (br, bc) = if tb == Transpose::No { (k, n) } else { (n, k) };
                    let (lda, ldb, ldc) = (k + pad, bc + pad, n + pad);
                    let a = rand_vec(&mut rng, m * lda);
                    let b = rand_vec(&mut rng, br * ldb);
                    let c0 = rand_vec(&mut rng, m * ldc);
                    pack_panels(k, n, &b, ldb, tb, &mut packed);
                    let run = |kernel| {
                        let mut c = c0.clone();
                        with_packed_kernel(kernel, || {
                            gemm_packed(m, n, k, &a, lda, &packed, &mut c, ldc, accumulate)
                        });
                        c
                    };
                    let fast = run(PackedKernel::Avx512);
                    let avx2 = run(PackedKernel::Avx2);
                    assert_eq!(
                        bits(&avx2),
                        bits(&fast),
                        "({m},{n},{k}) AVX2 against AVX-512"
                    );
                    let scalar = run(PackedKernel::Scalar);
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
                        tb,
                        &mut slow,
                        ldc,
                        accumulate,
                    );
                    for fast in [&fast, &scalar] {
                        assert_product_close(fast, &slow, &c0, (m, n, k, ldc), &format!("{tb:?}"));
                    }
                }
            }
        }
    }

    /// The product that gathers its initial rows from a table (the one-hot input projection of a
    /// step) against the naive product added to the gathered rows.
    #[test]
    fn gathered_packed_product_matches_naive() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let mut shapes: Vec<(usize, usize, usize)> =
            vec![(16, 1024, 256), (16, 512, 128), (3, 65, 40)];
        for _ in 0..40 {
            shapes.push((
                rng.gen_range(1..40),
                rng.gen_range(1..100),
                rng.gen_range(1..300),
            ));
        }
        let mut packed = Vec::new();
        for (m, n, k) in shapes {
            let (pad, vocab) = (rng.gen_range(0..3), rng.gen_range(1..20));
            let (lda, ldc) = (k + pad, n + pad);
            let a = rand_vec(&mut rng, m * lda);
            let w = rand_vec(&mut rng, k * n);
            let table = rand_vec(&mut rng, vocab * n);
            let ids: Vec<u32> = (0..m).map(|_| rng.gen_range(0..vocab as u32)).collect();
            let c0 = rand_vec(&mut rng, m * ldc);
            pack_panels(k, n, &w, n, Transpose::No, &mut packed);
            let run = |kernel| {
                let mut c = c0.clone();
                with_packed_kernel(kernel, || {
                    gemm_packed_gather(m, n, k, &a, lda, &packed, &mut c, ldc, &table, &ids)
                });
                c
            };
            let fast = run(PackedKernel::Avx512);
            assert_eq!(
                bits(&run(PackedKernel::Avx2)),
                bits(&fast),
                "({m},{n},{k}) AVX2"
            );
            let mut slow = c0.clone();
            for (i, &t) in ids.iter().enumerate() {
                let t = t as usize;
                slow[i * ldc..i * ldc + n].copy_from_slice(&table[t * n..(t + 1) * n]);
            }
            matmul_naive(
                m,
                n,
                k,
                &a,
                lda,
                Transpose::No,
                &w,
                n,
                Transpose::No,
                &mut slow,
                ldc,
                true,
            );
            assert_product_close(&fast, &slow, &c0, (m, n, k, ldc), "gathered");
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
