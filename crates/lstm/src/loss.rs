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
    use rayon::prelude::*;
    let n = targets.iter().filter(|&&t| t != IGNORE).count();
    let scale = if n > 0 { 1.0 / n as f32 } else { 0.0 };
    let rows = targets.len();
    let (logits, d_logits) = (&logits[..rows * classes], &mut d_logits[..rows * classes]);
    // rows in fixed blocks (so the sum does not depend on the thread count), each block's
    // losses summed in f64, the blocks' sums in order
    const ROWS: usize = 256;
    let block = |(i, dz): (usize, &mut [f32])| -> f64 {
        let (r0, n) = (i * ROWS, dz.len() / classes);
        cross_entropy_rows(
            &logits[r0 * classes..(r0 + n) * classes],
            &targets[r0..r0 + n],
            classes,
            scale,
            dz,
        )
    };
    let sums: Vec<f64> = if crate::linalg::parallel_blocks(rows, ROWS) {
        d_logits
            .par_chunks_mut(ROWS * classes)
            .enumerate()
            .map(block)
            .collect()
    } else {
        d_logits
            .chunks_mut(ROWS * classes)
            .enumerate()
            .map(block)
            .collect()
    };
    let total: f64 = sums.iter().sum();
    ((total * scale as f64) as f32, n)
}

/// The rows of [`softmax_cross_entropy`] for a block: writes `d_logits` of these rows with the
/// whole batch's `scale` (`1 / n counted`) and returns the sum of their losses (unscaled, in
/// `f64`), so a caller can run blocks wherever it likes and add the sums in a fixed order.
pub fn cross_entropy_rows(
    logits: &[f32],
    targets: &[u32],
    classes: usize,
    scale: f32,
    d_logits: &mut [f32],
) -> f64 {
    let mut total = 0.0f64;
    for (r, &tgt) in targets.iter().enumerate() {
        let z = &logits[r * classes..(r + 1) * classes];
        let dz = &mut d_logits[r * classes..(r + 1) * classes];
        if tgt == IGNORE {
            dz.fill(0.0);
            continue;
        }
        let mut loss = 0.0f32;
        softmax_row(z, tgt as usize, scale, dz, &mut loss);
        total += loss as f64;
    }
    total
}

#[inline(always)]
fn softmax_row_imp(z: &[f32], tgt: usize, scale: f32, dz: &mut [f32], loss: &mut f32) {
    // max and sum in 16 lanes (vectorised), then across the lanes
    let mut lanes = [f32::NEG_INFINITY; 16];
    let chunks = z.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            lanes[i] = if c[i] > lanes[i] { c[i] } else { lanes[i] };
        }
    }
    let mut max = rest.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for l in lanes {
        max = max.max(l);
    }
    for (o, &v) in dz.iter_mut().zip(z) {
        *o = crate::activation::exp(v - max);
    }
    let mut sums = [0.0f32; 16];
    let chunks = dz.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            sums[i] += c[i];
        }
    }
    let sum = sums.iter().sum::<f32>() + rest.iter().sum::<f32>();
    *loss = sum.ln() + max - z[tgt];
    let k = scale / sum;
    for d in dz.iter_mut() {
        *d *= k;
    }
    dz[tgt] -= scale;
}

crate::simd_dispatch!(
    /// One row of [`softmax_cross_entropy`]: `dz = softmax(z)·scale - onehot(tgt)·scale`, and
    /// the row's loss `-log softmax(z)[tgt]`.
    fn softmax_row(z: &[f32], tgt: usize, scale: f32, dz: &mut [f32], loss: &mut f32) => softmax_row_imp
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
