//! Scalar activations shared by the cells.
//!
//! ```
//! assert!((lstm::activation::sigmoid(0.0) - 0.5).abs() < 1e-7);
//! ```

/// The logistic sigmoid `1 / (1 + e^-x)`, stable for large `|x|`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The hyperbolic tangent.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    x.tanh()
}
