//! Activations shared by the cells: branch-free `exp`, sigmoid and tanh that the compiler
//! vectorises (AVX-512 or AVX2 through [`crate::simd_dispatch`]), 16-lane AVX-512 versions for
//! the fused cell kernels (with reciprocal estimates in place of divisions), and the standard
//! library's versions as references.
//!
//! Accuracy over the whole `f32` range (checked by the tests in `tests/activation.rs`): sigmoid
//! within 2e-7 absolute and 4 ulp relative where it is not tiny; tanh within 2e-7 absolute.
//!
//! ```
//! use lstm::kernels::activation::{sigmoid, tanh};
//! assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
//! assert!((tanh(0.5) - 0.5f32.tanh()).abs() < 2e-7);
//! ```

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 · 2^23: adding and subtracting it rounds to the nearest integer.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `e^x` for `x` clamped to `[-87.3, 88.3]` (the range where the result is a normal `f32`):
/// range reduction by `ln 2` and Cephes' degree-6 polynomial. Branch-free.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.3);
    // t holds round(x·log2 e) in its low mantissa bits (no float-to-int conversion, which
    // the compiler cannot vectorise with Rust's saturating `as` semantics)
    let t = x * LOG2E + ROUND_MAGIC;
    let n = t - ROUND_MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n: the exponent field n + 127, from t's bits (t = 1.5·2^23 + n exactly)
    let scale = f32::from_bits(t.to_bits().wrapping_sub(ROUND_MAGIC.to_bits() - 127) << 23);
    y * scale
}

/// The logistic sigmoid `1 / (1 + e^-x)`, branch-free.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// The hyperbolic tangent, branch-free: an odd Taylor polynomial for `|x| < 0.1`, else
/// `(1 - e^-2|x|) / (1 + e^-2|x|)` with the sign of `x`.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let ax = x.abs();
    let e = exp(-2.0 * ax);
    let big = (1.0 - e) / (1.0 + e);
    let x2 = ax * ax;
    // x - x³/3 + 2x⁵/15 - 17x⁷/315 + 62x⁹/2835
    let small = ax
        + ax * x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0))));
    let t = if ax < 0.1 { small } else { big };
    t.copysign(x)
}

/// The same activations for 16 lanes at a time with AVX-512, for the fused cell kernels: the
/// formulas of [`exp`], [`sigmoid`] and [`tanh`] with fused multiply-adds, and each division
/// replaced by a reciprocal estimate refined by one Newton step (a 512-bit division costs about
/// 16 cycles; the estimate and the step, about 3). Same error bounds as the scalar functions,
/// checked over the whole `f32` range by this module's tests.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use super::{LN2_HI, LN2_LO, LOG2E, ROUND_MAGIC};
    use std::arch::x86_64::*;

    /// [`super::exp`] on 16 lanes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn exp(x: __m512) -> __m512 {
        // max and min return their second operand when either is NaN: with `x` second, a
        // NaN stays NaN (as in PyTorch) instead of becoming -87.3
        let x = _mm512_min_ps(
            _mm512_set1_ps(88.3),
            _mm512_max_ps(_mm512_set1_ps(-87.3), x),
        );
        let magic = _mm512_set1_ps(ROUND_MAGIC);
        let t = _mm512_fmadd_ps(x, _mm512_set1_ps(LOG2E), magic);
        let n = _mm512_sub_ps(t, magic);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
        let mut p = _mm512_set1_ps(1.987_569_1e-4);
        for c in [
            1.398_2e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let y = _mm512_add_ps(
            _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r),
            _mm512_set1_ps(1.0),
        );
        let bias = _mm512_set1_epi32((ROUND_MAGIC.to_bits() - 127) as i32);
        let scale = _mm512_slli_epi32::<23>(_mm512_sub_epi32(_mm512_castps_si512(t), bias));
        _mm512_mul_ps(y, _mm512_castsi512_ps(scale))
    }

    /// `1 / d` for `d >= 1`: the 14-bit estimate and one Newton step.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn recip(d: __m512) -> __m512 {
        let y = _mm512_rcp14_ps(d);
        let e = _mm512_fnmadd_ps(d, y, _mm512_set1_ps(1.0));
        _mm512_fmadd_ps(y, e, y)
    }

    /// [`super::sigmoid`] on 16 lanes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn sigmoid(x: __m512) -> __m512 {
        let one = _mm512_set1_ps(1.0);
        recip(_mm512_add_ps(
            one,
            exp(_mm512_sub_ps(_mm512_setzero_ps(), x)),
        ))
    }

    /// [`super::tanh`] on 16 lanes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn tanh(x: __m512) -> __m512 {
        let sign = _mm512_set1_epi32(i32::MIN);
        let xi = _mm512_castps_si512(x);
        let ax = _mm512_castsi512_ps(_mm512_andnot_si512(sign, xi));
        let one = _mm512_set1_ps(1.0);
        let e = exp(_mm512_mul_ps(_mm512_set1_ps(-2.0), ax));
        let big = _mm512_mul_ps(_mm512_sub_ps(one, e), recip(_mm512_add_ps(one, e)));
        let x2 = _mm512_mul_ps(ax, ax);
        let mut q = _mm512_set1_ps(62.0 / 2835.0);
        for c in [-17.0 / 315.0, 2.0 / 15.0, -1.0 / 3.0] {
            q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(c));
        }
        let small = _mm512_fmadd_ps(_mm512_mul_ps(ax, x2), q, ax);
        let is_small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(ax, _mm512_set1_ps(0.1));
        let t = _mm512_mask_blend_ps(is_small, big, small);
        _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_castps_si512(t),
            _mm512_and_si512(sign, xi),
        ))
    }

    #[cfg(test)]
    mod tests {
        use super::super::{sigmoid_reference, tanh_reference};
        use std::arch::x86_64::*;

        /// Every 97th f32 bit pattern (both signs, all exponents) and special values, 16 at
        /// a time, through `f` and the reference: (worst absolute, worst relative error where
        /// the reference exceeds 1e-30). Checks every result lies in `range`.
        fn sweep(
            f: unsafe fn(__m512) -> __m512,
            reference: fn(f32) -> f32,
            range: (f32, f32),
        ) -> (f32, f32) {
            let xs: Vec<f32> = (0..u32::MAX / 97)
                .map(|i| f32::from_bits(i * 97))
                .filter(|x| x.is_finite())
                .chain([
                    0.0, -0.0, 1e-30, -1e-30, 0.1, -0.1, 0.0999999, 88.0, -88.0, 1e30,
                ])
                .collect();
            let (mut worst_abs, mut worst_rel) = (0.0f32, 0.0f32);
            let mut out = [0.0f32; 16];
            for chunk in xs.chunks(16) {
                let mut lanes = [0.0f32; 16];
                lanes[..chunk.len()].copy_from_slice(chunk);
                // SAFETY: the caller checked the CPU has AVX-512F; 16 lanes in and out.
                unsafe { _mm512_storeu_ps(out.as_mut_ptr(), f(_mm512_loadu_ps(lanes.as_ptr()))) };
                for (&x, &got) in chunk.iter().zip(&out) {
                    let want = reference(x);
                    assert!(
                        got.is_finite() && got >= range.0 && got <= range.1,
                        "f({x}) = {got}"
                    );
                    worst_abs = worst_abs.max((got - want).abs());
                    if want.abs() > 1e-30 {
                        worst_rel = worst_rel.max((got - want).abs() / want.abs());
                    }
                }
            }
            (worst_abs, worst_rel)
        }

        #[test]
        fn sigmoid_error_is_bounded_over_the_f32_range() {
            if !std::is_x86_feature_detected!("avx512f") {
                return;
            }
            let (abs, rel) = sweep(super::sigmoid, sigmoid_reference, (0.0, 1.0));
            assert!(abs <= 2e-7, "sigmoid worst absolute error {abs}");
            assert!(rel <= 5e-7, "sigmoid worst relative error {rel}");
        }

        #[test]
        fn nan_stays_nan() {
            if !std::is_x86_feature_detected!("avx512f") {
                return;
            }
            let fs: [unsafe fn(__m512) -> __m512; 3] = [super::exp, super::sigmoid, super::tanh];
            for f in fs {
                let mut out = [0.0f32; 16];
                // SAFETY: AVX-512F checked above; 16 lanes in and out.
                unsafe { _mm512_storeu_ps(out.as_mut_ptr(), f(_mm512_set1_ps(f32::NAN))) };
                assert!(out.iter().all(|v| v.is_nan()), "{out:?}");
            }
        }

        #[test]
        fn tanh_error_is_bounded_over_the_f32_range() {
            if !std::is_x86_feature_detected!("avx512f") {
                return;
            }
            let (abs, rel) = sweep(super::tanh, tanh_reference, (-1.0, 1.0));
            assert!(abs <= 2e-7, "tanh worst absolute error {abs}");
            assert!(rel <= 2e-6, "tanh worst relative error {rel}");
        }
    }
}

/// Reference sigmoid through the standard library (slow, exact to rounding).
pub fn sigmoid_reference(x: f32) -> f32 {
    (1.0 / (1.0 + (-(x as f64)).exp())) as f32
}

/// Reference tanh through the standard library.
pub fn tanh_reference(x: f32) -> f32 {
    (x as f64).tanh() as f32
}

/// Calls `$imp` (an `#[inline(always)]` function) compiled for the best instruction set the
/// CPU has: AVX-512, AVX2 with FMA, or the baseline. The wrappers are generated here so each
/// cell keeps one plain-Rust body.
#[macro_export]
macro_rules! simd_dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) => $imp:path) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($arg: $ty),*) { $imp($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) { $imp($($arg),*) }
                if std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512vl")
                    && std::is_x86_feature_detected!("avx512dq")
                {
                    // SAFETY: the CPU has the features the function was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $imp($($arg),*)
        }
    };
}
