//! bfloat16: rounding, and generation's matrix-vector product in bf16.

use super::gemv::KMAJOR_BLOCK;

/// Numeric format of the products: of the weights a generator streams, and of the matrix
/// products of training with `--precision bf16`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// `f32` throughout: the model's own numbers (differences between code paths come only
    /// from the order of the sums).
    #[default]
    F32,
    /// bfloat16 inputs of each product (weights and activations, rounded to nearest), summed
    /// in `f32`, as PyTorch's autocast does; everything else (cell, loss, master weights,
    /// optimizer) stays `f32`. Half the bytes and, with AVX-512 BF16 or AMX, twice the
    /// multiply rate; costs accuracy (measured in docs/amx.md and the README).
    Bf16,
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

/// [`pack_kmajor`](super::pack_kmajor) in bfloat16, for [`gemv_kmajor_bf16`]: columns go in pairs (`k` is padded to
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

/// [`gemv_kmajor`](super::gemv_kmajor) with bfloat16 weights (and `v` rounded to bfloat16), summed in `f32`: half
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
