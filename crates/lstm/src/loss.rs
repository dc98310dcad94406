//! Losses with their gradients: fused, numerically stable softmax cross-entropy, and mean
//! squared error.
//!
//! ```
//! let logits = [0.0f32, 0.0]; // one row, two classes
//! let mut d = [0.0f32; 2];
//! let (loss, n) = lstm::loss::softmax_cross_entropy(&logits, &[1], 2, &mut d);
//! assert!((loss - 2f32.ln()).abs() < 1e-6 && n == 1);
//! assert!((d[1] + 0.5).abs() < 1e-6);
//! ```

/// Target value meaning "no target here" (skipped by the loss, e.g. an unknown character).
pub const IGNORE: u32 = u32::MAX;

/// Mean cross-entropy of `softmax(logits)` against `targets` over rows whose target is not
/// [`IGNORE`]; writes `d_logits = (softmax - onehot) / n` (zero on ignored rows).
///
/// `logits` and `d_logits` are `(rows, classes)`; returns `(mean loss, n counted rows)`.
/// Targets must be `< classes` or [`IGNORE`] (the model checks this before calling).
pub fn softmax_cross_entropy(
    logits: &[f32],
    targets: &[u32],
    classes: usize,
    d_logits: &mut [f32],
) -> (f32, usize) {
    let n = targets.iter().filter(|&&t| t != IGNORE).count();
    let scale = if n > 0 { 1.0 / n as f32 } else { 0.0 };
    let mut total = 0.0f64;
    for (r, &tgt) in targets.iter().enumerate() {
        let z = &logits[r * classes..(r + 1) * classes];
        let dz = &mut d_logits[r * classes..(r + 1) * classes];
        if tgt == IGNORE {
            dz.fill(0.0);
            continue;
        }
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        exp_shifted(z, max, dz);
        let sum: f32 = dz.iter().sum();
        let log_sum = sum.ln() + max;
        total += (log_sum - z[tgt as usize]) as f64;
        let inv = 1.0 / sum;
        for d in dz.iter_mut() {
            *d *= inv * scale;
        }
        dz[tgt as usize] -= scale;
    }
    ((total * scale as f64) as f32, n)
}

#[inline(always)]
fn exp_shifted_imp(z: &[f32], max: f32, out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(z) {
        *o = crate::activation::exp(v - max);
    }
}

crate::simd_dispatch!(
    /// `out = e^(z - max)`, vectorised.
    fn exp_shifted(z: &[f32], max: f32, out: &mut [f32]) => exp_shifted_imp
);

/// Mean squared error over all elements; writes `d_pred = 2 (pred - target) / n`.
pub fn mse(pred: &[f32], target: &[f32], d_pred: &mut [f32]) -> f32 {
    let n = pred.len().max(1) as f32;
    let mut total = 0.0f64;
    for ((d, &p), &t) in d_pred.iter_mut().zip(pred).zip(target) {
        let e = p - t;
        total += (e * e) as f64;
        *d = 2.0 * e / n;
    }
    (total / n as f64) as f32
}
