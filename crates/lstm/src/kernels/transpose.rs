//! Transposes in 16 x 16 tiles (AVX-512 where the CPU has it).

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
}
