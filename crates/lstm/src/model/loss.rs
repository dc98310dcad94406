//! Losses with their gradients: fused, numerically stable softmax cross-entropy, and mean
//! squared error.
//!
//! ```
//! let logits = [0.0f32, 0.0]; // one row, two classes
//! let mut d = [0.0f32; 2];
//! let (loss, n) = lstm::model::loss::softmax_cross_entropy(&logits, &[1], 2, &mut d);
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
    let sums: Vec<f64> = if crate::kernels::parallel_blocks(rows, ROWS) {
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
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        check_rows(logits, targets, classes, d_logits);
        let z = logits.as_ptr() as *mut f32;
        // SAFETY: the CPU has AVX-512F; `check_rows` covers every element read or written;
        // without a bias the logits are only read.
        return unsafe { cross_entropy_rows_avx512(z, None, targets, classes, scale, d_logits) };
    }
    cross_entropy_rows_portable(logits, targets, classes, scale, d_logits)
}

/// [`cross_entropy_rows`] of `logits + bias` (the bias added to every row): the bias is first
/// added to `logits` in place, in the same pass on AVX-512.
///
/// # Panics
/// If `bias` is shorter than `classes` or a buffer shorter than the rows.
pub fn cross_entropy_rows_bias(
    logits: &mut [f32],
    bias: &[f32],
    targets: &[u32],
    classes: usize,
    scale: f32,
    d_logits: &mut [f32],
) -> f64 {
    assert!(
        bias.len() >= classes,
        "cross_entropy_rows_bias: bias too short"
    );
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        check_rows(logits, targets, classes, d_logits);
        let z = logits.as_mut_ptr();
        // SAFETY: as in `cross_entropy_rows`; the logits are borrowed mutably.
        return unsafe {
            cross_entropy_rows_avx512(z, Some(bias), targets, classes, scale, d_logits)
        };
    }
    for row in logits.chunks_exact_mut(classes).take(targets.len()) {
        for (z, b) in row.iter_mut().zip(bias) {
            *z += b;
        }
    }
    cross_entropy_rows_portable(logits, targets, classes, scale, d_logits)
}

/// The lengths and targets the AVX-512 rows rely on.
#[cfg(target_arch = "x86_64")]
fn check_rows(logits: &[f32], targets: &[u32], classes: usize, d_logits: &[f32]) {
    let rows = targets.len();
    assert!(logits.len() >= rows * classes && d_logits.len() >= rows * classes);
    assert!(
        targets
            .iter()
            .all(|&t| t == IGNORE || (t as usize) < classes),
        "cross_entropy_rows: target past the classes"
    );
}

/// [`cross_entropy_rows`] for any CPU, one row at a time.
fn cross_entropy_rows_portable(
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

/// [`cross_entropy_rows`] with AVX-512: each row in masked vectors of 16 classes (the bias
/// added in place when given, max, `exp`, sum, scaled gradient), with no per-row dispatch.
/// `logits` is written only when `bias` is given.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn cross_entropy_rows_avx512(
    logits: *mut f32,
    bias: Option<&[f32]>,
    targets: &[u32],
    classes: usize,
    scale: f32,
    d_logits: &mut [f32],
) -> f64 {
    use crate::kernels::activation::avx512::exp;
    use std::arch::x86_64::*;
    let mask = |j: usize| -> __mmask16 {
        if classes - j >= 16 {
            0xffff
        } else {
            ((1u32 << (classes - j)) - 1) as u16
        }
    };
    let mut total = 0.0f64;
    for (r, &tgt) in targets.iter().enumerate() {
        let z = logits.add(r * classes);
        let dz = d_logits.as_mut_ptr().add(r * classes);
        if let Some(b) = bias {
            let mut j = 0;
            while j < classes {
                let k = mask(j);
                let v = _mm512_add_ps(
                    _mm512_maskz_loadu_ps(k, z.add(j)),
                    _mm512_maskz_loadu_ps(k, b.as_ptr().add(j)),
                );
                _mm512_mask_storeu_ps(z.add(j), k, v);
                j += 16;
            }
        }
        if tgt == IGNORE {
            std::slice::from_raw_parts_mut(dz, classes).fill(0.0);
            continue;
        }
        let mut m = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut j = 0;
        while j < classes {
            m = _mm512_max_ps(m, _mm512_mask_loadu_ps(m, mask(j), z.add(j)));
            j += 16;
        }
        let max = _mm512_reduce_max_ps(m);
        let (vmax, mut sum) = (_mm512_set1_ps(max), _mm512_setzero_ps());
        j = 0;
        while j < classes {
            let k = mask(j);
            let e = exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, z.add(j)), vmax));
            sum = _mm512_mask_add_ps(sum, k, sum, e);
            _mm512_mask_storeu_ps(dz.add(j), k, e);
            j += 16;
        }
        let sum = _mm512_reduce_add_ps(sum);
        total += (sum.ln() + max - *z.add(tgt as usize)) as f64;
        let k = _mm512_set1_ps(scale / sum);
        j = 0;
        while j < classes {
            let m = mask(j);
            let d = _mm512_maskz_loadu_ps(m, dz.add(j));
            _mm512_mask_storeu_ps(dz.add(j), m, _mm512_mul_ps(d, k));
            j += 16;
        }
        *dz.add(tgt as usize) -= scale;
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
        *o = crate::kernels::activation::exp(v - max);
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
