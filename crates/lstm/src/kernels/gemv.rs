//! Generation's matrix-vector product: weights packed k-major in blocks of rows, streamed
//! once per token.

use super::stepkernel::{packed_kernel, PackedKernel};

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

/// `z[b] += P · v[b]` for `nb` vectors at once: `v` is `(nb, k)`, `z` is `(nb, n)`, the panel
/// `P` packed by [`pack_kmajor`] with `n` rows and `k` columns. The batched generator's product:
/// the panel is streamed once for every three vectors instead of once for each, and every
/// element's sum runs over the columns in the same order, with the same fused multiply-adds, as
/// [`gemv_kmajor`]'s: each row of `z` is bit for bit what `gemv_kmajor` gives for that vector
/// alone, whatever the other rows (tested). Blocks of rows are shared among the library's
/// threads when the product is large.
///
/// # Panics
/// If the lengths do not match the panel (a bug in the caller, never user input).
pub fn gemv_kmajor_rows(panel: &[f32], v: &[f32], k: usize, z: &mut [f32], n: usize) {
    assert!(n.is_multiple_of(16) && k > 0 && panel.len() == n * k);
    assert!(v.len().is_multiple_of(k) && z.len() == (v.len() / k) * n);
    let nb = v.len() / k;
    if nb == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if packed_kernel() == PackedKernel::Avx512 {
        let blocks = n.div_ceil(KMAJOR_BLOCK);
        let zp = SendPtr(z.as_mut_ptr());
        let run = |b0: usize, b1: usize| {
            let zp = &zp;
            for b in b0..b1 {
                // SAFETY: the CPU has AVX-512F; the asserts above proved the lengths; block `b`
                // writes only its own columns of every row of z, so concurrent blocks are
                // disjoint.
                unsafe { rows_block_avx512(panel, v, k, zp.0, n, nb, b) };
            }
        };
        let threads = crate::kernels::num_threads().min(blocks);
        if threads > 1 && nb * n * k >= 1 << 22 {
            use rayon::prelude::*;
            (0..threads).into_par_iter().for_each(|t| {
                run(t * blocks / threads, (t + 1) * blocks / threads);
            });
        } else {
            run(0, blocks);
        }
        return;
    }
    for (vb, zb) in v.chunks(k).zip(z.chunks_mut(n)) {
        gemv_kmajor(panel, vb, None, zb);
    }
}

/// A raw pointer the threads of [`gemv_kmajor_rows`] share (each writes its own columns).
struct SendPtr(*mut f32);
// SAFETY: see `gemv_kmajor_rows`: the threads write disjoint elements.
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// Block `b` of the panel against every vector: three vectors at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rows_block_avx512(
    panel: &[f32],
    v: &[f32],
    k: usize,
    z: *mut f32,
    n: usize,
    nb: usize,
    b: usize,
) {
    let bw = (n - b * KMAJOR_BLOCK).min(KMAJOR_BLOCK);
    let p = panel.as_ptr().add(b * KMAJOR_BLOCK * k);
    let col = b * KMAJOR_BLOCK;
    let mut r = 0;
    while r < nb {
        let m = (nb - r).min(3);
        let vs = [0, 1, 2].map(|i| v.as_ptr().add((r + i.min(m - 1)) * k));
        let zs = [0, 1, 2].map(|i| z.add((r + i.min(m - 1)) * n + col));
        macro_rules! go {
            ($($regs:literal)*) => {
                match (bw / 16, m) {
                    $(
                        ($regs, 3) => kmajor_block_rows::<$regs, 3>(p, vs, k, zs),
                        ($regs, 2) => kmajor_block_rows::<$regs, 2>(p, vs, k, zs),
                        ($regs, _) => kmajor_block::<$regs>(p, vs[0], k, zs[0]),
                    )*
                    _ => unreachable!("a block has 1 to 8 registers of rows"),
                }
            };
        }
        go!(1 2 3 4 5 6 7 8);
        r += m;
    }
}

/// [`kmajor_block`] for `M` vectors at once: the same fused multiply-adds in the same order for
/// each, one load of the panel's column for all of them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn kmajor_block_rows<const R: usize, const M: usize>(
    p: *const f32,
    v: [*const f32; 3],
    k: usize,
    z: [*mut f32; 3],
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); R]; M];
    for m in 0..M {
        for r in 0..R {
            acc[m][r] = _mm512_loadu_ps(z[m].add(16 * r));
        }
    }
    let w = 16 * R;
    for kk in 0..k {
        let row = p.add(kk * w);
        let x = [0, 1, 2].map(|m| _mm512_set1_ps(*v[m.min(M - 1)].add(kk)));
        for r in 0..R {
            let wr = _mm512_loadu_ps(row.add(16 * r));
            for m in 0..M {
                acc[m][r] = _mm512_fmadd_ps(wr, x[m], acc[m][r]);
            }
        }
    }
    for m in 0..M {
        for r in 0..R {
            _mm512_storeu_ps(z[m].add(16 * r), acc[m][r]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::stepkernel::{with_packed_kernel, PackedKernel};
    use crate::kernels::testutil::{bits, rand_vec};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn kmajor_gemv_matches_naive() {
        let mut rng = ChaCha8Rng::seed_from_u64(77);
        for (rows, k) in [(1, 1), (16, 3), (130, 17), (512, 256), (65, 256), (300, 5)] {
            let ld = k + 3;
            let w = rand_vec(&mut rng, rows * ld);
            let v = rand_vec(&mut rng, k);
            let init = rand_vec(&mut rng, kmajor_rows(rows));
            // rows in a shuffled order, padded with zero rows
            let mut idx: Vec<usize> = (0..rows).rev().collect();
            idx.resize(kmajor_rows(rows), usize::MAX);
            let panel = pack_kmajor(&w, ld, &idx, 2.min(ld - k), k);
            let col0 = 2.min(ld - k);
            // each version of the kernel; AVX2 bit for bit against AVX-512
            let run = |kernel| {
                with_packed_kernel(kernel, || {
                    let mut z = vec![f32::NAN; idx.len()];
                    gemv_kmajor(&panel, &v, Some(&init), &mut z);
                    let mut z2 = z.clone();
                    gemv_kmajor(&panel, &v, None, &mut z2);
                    (z, z2)
                })
            };
            let (fast, avx2) = (run(PackedKernel::Avx512), run(PackedKernel::Avx2));
            assert_eq!(bits(&avx2.0), bits(&fast.0), "rows {rows} k {k}: AVX2");
            assert_eq!(bits(&avx2.1), bits(&fast.1), "rows {rows} k {k}: AVX2");
            for (z, z2) in [fast, run(PackedKernel::Scalar)] {
                for (r, &i) in idx.iter().enumerate() {
                    let dot: f64 = if i == usize::MAX {
                        0.0
                    } else {
                        (0..k)
                            .map(|kk| w[i * ld + col0 + kk] as f64 * v[kk] as f64)
                            .sum()
                    };
                    let want = init[r] as f64 + dot;
                    assert!(
                        (z[r] as f64 - want).abs() < 1e-4,
                        "rows {rows} k {k} row {r}: {} vs {want}",
                        z[r]
                    );
                    assert!((z2[r] as f64 - (want + dot)).abs() < 1e-4);
                }
            }
        }
    }

    #[test]
    fn rows_product_equals_each_vector_alone_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(78);
        for (rows, k, nb) in [
            (16, 3, 1),
            (130, 17, 5),
            (512, 256, 7),
            (1024, 64, 64),
            (48, 9, 2),
        ] {
            let w = rand_vec(&mut rng, rows * k);
            let idx: Vec<usize> = (0..kmajor_rows(rows))
                .map(|i| if i < rows { i } else { usize::MAX })
                .collect();
            let n = idx.len();
            let panel = pack_kmajor(&w, k, &idx, 0, k);
            let v = rand_vec(&mut rng, nb * k);
            let init = rand_vec(&mut rng, nb * n);
            for kernel in [
                PackedKernel::Avx512,
                PackedKernel::Avx2,
                PackedKernel::Scalar,
            ] {
                for threads in [1, 2] {
                    let got = with_packed_kernel(kernel, || {
                        crate::kernels::with_threads(threads, || {
                            let mut z = init.clone();
                            gemv_kmajor_rows(&panel, &v, k, &mut z, n);
                            z
                        })
                    });
                    for b in 0..nb {
                        let mut alone = vec![0.0; n];
                        with_packed_kernel(kernel, || {
                            gemv_kmajor(
                                &panel,
                                &v[b * k..(b + 1) * k],
                                Some(&init[b * n..(b + 1) * n]),
                                &mut alone,
                            )
                        });
                        assert_eq!(
                            bits(&got[b * n..(b + 1) * n]),
                            bits(&alone),
                            "rows {rows} k {k} nb {nb} row {b} {kernel:?} {threads} threads"
                        );
                    }
                }
            }
        }
    }
}
