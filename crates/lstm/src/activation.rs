//! Activations shared by the cells: branch-free `exp`, sigmoid and tanh that the compiler
//! vectorises (AVX-512 or AVX2 through [`crate::simd_dispatch`]), and the standard library's
//! versions as references.
//!
//! Accuracy over the whole `f32` range (checked by the tests in `tests/activation.rs`): sigmoid
//! within 2e-7 absolute and 4 ulp relative where it is not tiny; tanh within 2e-7 absolute.
//!
//! ```
//! use lstm::activation::{sigmoid, tanh};
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
