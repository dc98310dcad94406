//! Losses with their gradients: fused, numerically stable softmax cross-entropy, mean squared
//! error, and the negative log-likelihood of a distribution head ([`Distribution`]: Gaussian or
//! Student-t, with quantiles for forecasts and the special functions they need).
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
        // the difference first: with logits near 1e10, `ln(sum) + max` would round `ln(sum)` away
        total += (sum.ln() + (max - *z.add(tgt as usize))) as f64;
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
    // the difference first: with logits near 1e10, `ln(sum) + max` would round `ln(sum)` away
    *loss = sum.ln() + (max - z[tgt]);
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

// ---------------------------------------------------------------------------------------------
// Distribution heads: negative log-likelihood, its gradient, and quantiles
// ---------------------------------------------------------------------------------------------

/// A forecast distribution predicted by the head, trained by its negative log-likelihood.
///
/// Each target value takes [`Distribution::params`] raw head outputs, in this order:
/// - `mu = out[0]` (location);
/// - `sigma = softplus(out[1]) + 1e-6` (scale; `softplus(x) = ln(1 + eˣ)`, computed stably);
/// - Student-t only: `nu = 2 + softplus(out[2])` (degrees of freedom, above 2 so that the
///   variance exists).
///
/// The negative binomial, a distribution of counts, reads its two outputs as DeepAR does, with
/// the row's scale `s` (the value a target was divided by; [`Distribution::needs_scale`]):
/// mean `mu = s · softplus(out[0])` and shape `alpha = (softplus(out[1]) + 1e-6) / √s`, the
/// variance `mu + alpha · mu²`; its likelihood is of the count `y = s · target`.
///
/// The default is [`Distribution::Gaussian`]. Serialised in snake case (`"gaussian"`,
/// `"student_t"`, `"negative_binomial"`).
///
/// ```
/// use lstm::model::loss::Distribution;
/// let raw = [3.0f32, 0.0]; // mu = 3, sigma = ln 2 + 1e-6
/// assert_eq!(Distribution::Gaussian.params(), 2);
/// assert!((Distribution::Gaussian.median(&raw) - 3.0).abs() < 1e-12);
/// let q = Distribution::Gaussian.quantile(&raw, 0.975);
/// let sigma = 2f64.ln() + 1e-6;
/// assert!((q - (3.0 + 1.959963984540054 * sigma)).abs() < 1e-12);
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Normal `N(mu, sigma²)`: 2 outputs per value.
    #[default]
    Gaussian,
    /// Student's t with location `mu`, scale `sigma` and `nu > 2` degrees of freedom: 3
    /// outputs per value.
    #[serde(alias = "student-t")]
    StudentT,
    /// The negative binomial of counts (0, 1, 2, ...) with mean `mu` and shape `alpha`
    /// (variance `mu + alpha · mu²`): 2 outputs per value, read with the row's scale.
    #[serde(alias = "negative-binomial")]
    NegativeBinomial,
}

/// Added to `softplus(out[1])`: the smallest scale, keeping `ln sigma` finite.
pub const MIN_SIGMA: f64 = 1e-6;
/// The smallest Student-t degrees of freedom (`nu = MIN_NU + softplus(out[2])`).
pub const MIN_NU: f64 = 2.0;
/// The smallest negative binomial mean, keeping `ln mu` finite.
pub const MIN_NB_MEAN: f64 = 1e-12;

/// `ln(1 + eˣ)` without overflow.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `1 / (1 + e⁻ˣ)`, the derivative of [`softplus`].
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl Distribution {
    /// Head outputs per target value: 2 (Gaussian, negative binomial) or 3 (Student-t).
    pub fn params(self) -> usize {
        match self {
            Distribution::Gaussian | Distribution::NegativeBinomial => 2,
            Distribution::StudentT => 3,
        }
    }

    /// Whether the distribution reads each row's scale: the negative binomial, whose
    /// likelihood is of the count in the data's own units.
    pub fn needs_scale(self) -> bool {
        self == Distribution::NegativeBinomial
    }

    /// The raw outputs of one value decoded: `(mu, sigma, nu)`, `nu = ∞` for a Gaussian; for
    /// the negative binomial `(mu, alpha, ∞)` at scale 1 ([`Self::negative_binomial`]).
    ///
    /// # Panics
    /// If `raw` is shorter than [`Self::params`].
    pub fn decode(self, raw: &[f32]) -> (f64, f64, f64) {
        if self == Distribution::NegativeBinomial {
            let (mu, alpha) = Self::negative_binomial(raw, 1.0);
            return (mu, alpha, f64::INFINITY);
        }
        let (mu, sigma) = (raw[0] as f64, softplus(raw[1] as f64) + MIN_SIGMA);
        let nu = match self {
            Distribution::StudentT => MIN_NU + softplus(raw[2] as f64),
            _ => f64::INFINITY,
        };
        (mu, sigma, nu)
    }

    /// The negative binomial's mean and shape `(mu, alpha)` in counts for the raw outputs of
    /// a row of scale `scale`: `mu = scale · softplus(raw[0])` (at least 1e-12),
    /// `alpha = (softplus(raw[1]) + 1e-6) / √scale`.
    ///
    /// # Panics
    /// If `raw` has fewer than 2 values.
    pub fn negative_binomial(raw: &[f32], scale: f64) -> (f64, f64) {
        let mu = (scale * softplus(raw[0] as f64)).max(MIN_NB_MEAN);
        let alpha = (softplus(raw[1] as f64) + MIN_SIGMA) / scale.sqrt();
        (mu, alpha)
    }

    /// The negative log-likelihood of `y` under the raw outputs `raw` and its gradient with
    /// respect to them (`grad[..params]`), in `f64`: [`Self::nll_scaled`] at scale 1.
    pub fn nll(self, raw: &[f32], y: f64) -> (f64, [f64; 3]) {
        self.nll_scaled(raw, y, 1.0)
    }

    /// [`Self::nll`] of a target `y` of a row of scale `scale`: the scale is read by the
    /// negative binomial only (the likelihood of the count `scale · y`, rounded to a whole
    /// number; see [`Distribution`]), the others score `y` as it is.
    pub fn nll_scaled(self, raw: &[f32], y: f64, scale: f64) -> (f64, [f64; 3]) {
        if self == Distribution::NegativeBinomial {
            return negative_binomial_nll(raw, (y * scale).round().max(0.0), scale);
        }
        let (mu, sigma, nu) = self.decode(raw);
        let z = (y - mu) / sigma;
        let ds_da = sigmoid(raw[1] as f64);
        match self {
            Distribution::Gaussian => {
                // nll = ½ ln 2π + ln σ + z²/2
                let nll = 0.5 * (2.0 * std::f64::consts::PI).ln() + sigma.ln() + 0.5 * z * z;
                // ∂/∂μ = -z/σ; ∂/∂σ = 1/σ - z²/σ
                let d_mu = -z / sigma;
                let d_sigma = (1.0 - z * z) / sigma;
                (nll, [d_mu, d_sigma * ds_da, 0.0])
            }
            Distribution::StudentT => {
                // nll = -lnΓ((ν+1)/2) + lnΓ(ν/2) + ½ ln(νπ) + ln σ + (ν+1)/2 · ln(1 + z²/ν)
                let w = 1.0 + z * z / nu;
                let nll = -ln_gamma(0.5 * (nu + 1.0))
                    + ln_gamma(0.5 * nu)
                    + 0.5 * (nu * std::f64::consts::PI).ln()
                    + sigma.ln()
                    + 0.5 * (nu + 1.0) * w.ln();
                // ∂/∂μ = -(ν+1) z / (ν σ w); ∂/∂σ = 1/σ - (ν+1) z² / (ν σ w)
                let d_mu = -(nu + 1.0) * z / (nu * sigma * w);
                let d_sigma = (1.0 - (nu + 1.0) * z * z / (nu * w)) / sigma;
                // ∂/∂ν = -½ψ((ν+1)/2) + ½ψ(ν/2) + 1/(2ν) + ½ ln w - (ν+1) z² / (2ν² w)
                let d_nu = -0.5 * digamma(0.5 * (nu + 1.0))
                    + 0.5 * digamma(0.5 * nu)
                    + 0.5 / nu
                    + 0.5 * w.ln()
                    - 0.5 * (nu + 1.0) * z * z / (nu * nu * w);
                let dnu_da = sigmoid(raw[2] as f64);
                (nll, [d_mu, d_sigma * ds_da, d_nu * dnu_da])
            }
            Distribution::NegativeBinomial => unreachable!("handled above"),
        }
    }

    /// The mean of the distribution of one value's raw outputs (`mu`; Student-t's `nu > 2`
    /// guarantees it exists; the negative binomial's at scale 1).
    pub fn mean(self, raw: &[f32]) -> f64 {
        self.decode(raw).0
    }

    /// The median of one value's distribution (`mu` for the symmetric ones; the negative
    /// binomial's 0.5-quantile at scale 1).
    pub fn median(self, raw: &[f32]) -> f64 {
        if self == Distribution::NegativeBinomial {
            return self.quantile(raw, 0.5);
        }
        self.decode(raw).0
    }

    /// The `q`-quantile of a row of scale `scale` in the data's own units (`scale` times the
    /// scaled value): for the negative binomial the smallest count `k` with `P(Y <= k) >= q`
    /// ([`negative_binomial_quantile`]), for the others `scale · quantile(raw, q)`.
    pub fn quantile_scaled(self, raw: &[f32], q: f64, scale: f64) -> f64 {
        if self == Distribution::NegativeBinomial {
            let (mu, alpha) = Self::negative_binomial(raw, scale);
            return negative_binomial_quantile(q, mu, alpha);
        }
        scale * self.quantile(raw, q)
    }

    /// The `q`-quantile (`0 < q < 1`) of one value's distribution given its raw outputs:
    /// `mu + sigma · z_q` with `z_q` the standard quantile (Wichura's AS241 for the normal,
    /// accurate to about 1e-16; for Student-t the CDF, a regularized incomplete beta, inverted
    /// by safeguarded Newton steps from Hill's approximation to about 1e-13, or the
    /// Cornish-Fisher expansion from `nu = 1e5`: [`student_t_quantile`]). `q = 0.5` gives the median; `q <= 0` and `q >= 1`
    /// give `∓∞`, a NaN `q` NaN.
    ///
    /// The negative binomial: [`Self::quantile_scaled`] at scale 1, a count (`q <= 0` gives 0).
    pub fn quantile(self, raw: &[f32], q: f64) -> f64 {
        let (mu, sigma, nu) = self.decode(raw);
        let z = match self {
            Distribution::Gaussian => normal_quantile(q),
            Distribution::StudentT => student_t_quantile(q, nu),
            Distribution::NegativeBinomial => return negative_binomial_quantile(q, mu, sigma),
        };
        mu + sigma * z
    }
}

/// Sum of the negative log-likelihoods of `target` under the distributions in `out`, and the
/// gradient of each row's NLL with respect to its raw outputs (unscaled: the caller divides
/// by the count for a mean).
///
/// `out` and `d_out` are `(rows, dist.params())`, `target` is `(rows)`, `scales` (read only
/// when [`Distribution::needs_scale`]; `None`: 1) is `(rows)`. A NaN target is
/// masked: no loss, a zero gradient, not counted. Computed in `f64` (rows summed in order);
/// returns `(sum of NLLs, counted rows)`.
///
/// # Panics
/// If `out` or `d_out` is shorter than `target.len() · dist.params()`, or `scales` shorter
/// than `target`.
pub fn distribution_nll(
    dist: Distribution,
    out: &[f32],
    target: &[f32],
    scales: Option<&[f32]>,
    d_out: &mut [f32],
) -> (f32, usize) {
    let k = dist.params();
    let rows = target.len();
    assert!(
        out.len() >= rows * k && d_out.len() >= rows * k,
        "distribution_nll: outputs shorter than the targets"
    );
    assert!(
        scales.is_none_or(|s| s.len() >= rows),
        "distribution_nll: fewer scales than targets"
    );
    let (mut total, mut n) = (0.0f64, 0usize);
    for (r, &y) in target.iter().enumerate() {
        let d = &mut d_out[r * k..(r + 1) * k];
        if y.is_nan() {
            d.fill(0.0);
            continue;
        }
        let scale = scales.map_or(1.0, |s| s[r] as f64);
        let (nll, g) = dist.nll_scaled(&out[r * k..(r + 1) * k], y as f64, scale);
        total += nll;
        n += 1;
        for (d, g) in d.iter_mut().zip(g) {
            *d = g as f32;
        }
    }
    (total as f32, n)
}

/// The negative binomial's negative log-likelihood of the count `y` (a whole number at or
/// above 0) under the raw outputs of a row of scale `scale` ([`Distribution::negative_binomial`]),
/// and its gradient with respect to the two raw outputs. With `r = 1/alpha`:
/// `nll = -lnΓ(y + r) + lnΓ(y + 1) + lnΓ(r) + (r + y) ln(1 + alpha·mu) - y ln(alpha·mu)`.
fn negative_binomial_nll(raw: &[f32], y: f64, scale: f64) -> (f64, [f64; 3]) {
    let (mu, alpha) = Distribution::negative_binomial(raw, scale);
    let r = 1.0 / alpha;
    let am = alpha * mu;
    let l1p = am.ln_1p();
    let y_ln = if y > 0.0 { y * am.ln() } else { 0.0 };
    let nll = -ln_gamma(y + r) + ln_gamma(y + 1.0) + ln_gamma(r) + (r + y) * l1p - y_ln;
    // ∂/∂mu = r (mu - y) / (mu (r + mu))
    let d_mu = r * (mu - y) / (mu * (r + mu));
    // ψ(y + r) - ψ(r): a sum for small counts (exact, no cancellation), else the difference
    let dpsi = if y <= 64.0 {
        (0..y as usize).map(|j| 1.0 / (r + j as f64)).sum::<f64>()
    } else {
        digamma(y + r) - digamma(r)
    };
    // ∂/∂alpha = r² (ψ(y + r) - ψ(r) - ln(1 + alpha mu)) + (r + y) mu / (1 + alpha mu) - y r
    let d_alpha = r * r * (dpsi - l1p) + (r + y) * mu / (1.0 + am) - y * r;
    // mu = scale·softplus(a0) (the floor has no gradient); alpha = (softplus(a1) + 1e-6)/√scale
    let dmu_da = if mu > MIN_NB_MEAN {
        scale * sigmoid(raw[0] as f64)
    } else {
        0.0
    };
    let dalpha_da = sigmoid(raw[1] as f64) / scale.sqrt();
    (nll, [d_mu * dmu_da, d_alpha * dalpha_da, 0.0])
}

/// The `q`-quantile of the negative binomial of mean `mu` and shape `alpha` (variance
/// `mu + alpha·mu²`): the smallest count `k` with `P(Y <= k) >= q`, where
/// `P(Y <= k) = I_p(1/alpha, k + 1)` with `p = r / (r + mu)` ([`incomplete_beta`]), found by
/// bracketing from the normal approximation and bisecting on whole numbers. `q <= 0` gives 0,
/// `q >= 1` `∞`, a NaN `q` NaN.
pub fn negative_binomial_quantile(q: f64, mu: f64, alpha: f64) -> f64 {
    if q.is_nan() || mu.is_nan() || alpha.is_nan() {
        return f64::NAN;
    }
    if q <= 0.0 {
        return 0.0;
    }
    if q >= 1.0 {
        return f64::INFINITY;
    }
    let r = 1.0 / alpha;
    let p = r / (r + mu);
    let cdf = |k: f64| incomplete_beta(p, r, k + 1.0);
    let sd = (mu + alpha * mu * mu).sqrt();
    let guess = (mu + normal_quantile(q) * sd).floor().max(0.0);
    // bracket: cdf(lo) < q <= cdf(hi), lo = -1 standing for "below 0"
    let (mut lo, mut hi);
    if cdf(guess) >= q {
        hi = guess;
        let mut step = sd.max(1.0);
        lo = (hi - step).floor();
        while lo >= 0.0 && cdf(lo) >= q {
            hi = lo;
            step *= 2.0;
            lo = (hi - step).floor();
        }
        lo = lo.max(-1.0);
    } else {
        lo = guess;
        let mut step = sd.max(1.0);
        hi = (lo + step).ceil();
        while cdf(hi) < q {
            lo = hi;
            step *= 2.0;
            hi = (lo + step).ceil();
            if hi > 1e15 {
                return f64::INFINITY;
            }
        }
    }
    while hi - lo > 1.0 {
        let mid = ((lo + hi) / 2.0).floor();
        // beyond 2^53 whole numbers are no longer all representable: stop at the precision
        if mid <= lo || mid >= hi {
            break;
        }
        if cdf(mid) >= q {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, 9 terms; reflection below ½), relative error about
/// 1e-15.
// the published coefficients, digit for digit
#[allow(clippy::excessive_precision)]
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_93,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_13,
        -176.615_029_162_140_59,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_571_6e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Γ(x) Γ(1-x) = π / sin(πx)
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, &c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The digamma function `ψ(x) = d/dx ln Γ(x)`: the recurrence `ψ(x) = ψ(x+1) - 1/x` up to
/// `x >= 6`, then the asymptotic series; reflection for `x <= 0`.
pub fn digamma(x: f64) -> f64 {
    if x <= 0.0 {
        // ψ(1-x) - ψ(x) = π cot(πx)
        let pi = std::f64::consts::PI;
        return digamma(1.0 - x) - pi / (pi * x).tan();
    }
    let (mut x, mut acc) = (x, 0.0);
    while x < 6.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    let series = f
        * (-1.0 / 12.0
            + f * (1.0 / 120.0
                + f * (-1.0 / 252.0
                    + f * (1.0 / 240.0 + f * (-1.0 / 132.0 + f * 691.0 / 32760.0)))));
    acc + x.ln() - 0.5 / x + series
}

/// The standard normal quantile (Wichura, Algorithm AS241 "PPND16", 1988).
// the published coefficients, digit for digit
#[allow(clippy::excessive_precision)]
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() {
        return f64::NAN;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    fn poly(c: &[f64; 8], x: f64) -> f64 {
        c.iter().rev().fold(0.0, |acc, &c| acc * x + c)
    }
    const A: [f64; 8] = [
        3.387_132_872_796_366_608,
        1.331_416_678_917_843_774_5e2,
        1.971_590_950_306_551_442_7e3,
        1.373_169_376_550_946_112_5e4,
        4.592_195_393_154_987_145_7e4,
        6.726_577_092_700_870_085_3e4,
        3.343_057_558_358_812_810_5e4,
        2.509_080_928_730_122_672_7e3,
    ];
    const B: [f64; 8] = [
        1.0,
        4.231_333_070_160_091_125_2e1,
        6.871_870_074_920_579_083e2,
        5.394_196_021_424_751_107_7e3,
        2.121_379_430_158_659_586_7e4,
        3.930_789_580_009_271_061e4,
        2.872_908_573_572_194_267_4e4,
        5.226_495_278_852_854_561e3,
    ];
    const C: [f64; 8] = [
        1.423_437_110_749_683_577_34,
        4.630_337_846_156_545_295_9,
        5.769_497_221_460_691_405_5,
        3.647_848_324_763_204_605_04,
        1.270_458_252_452_368_382_58,
        2.417_807_251_774_506_117_7e-1,
        2.272_384_498_926_918_458_33e-2,
        7.745_450_142_783_414_076_4e-4,
    ];
    const D: [f64; 8] = [
        1.0,
        2.053_191_626_637_758_821_87,
        1.676_384_830_183_803_849_4,
        6.897_673_349_851_000_045_5e-1,
        1.481_039_764_274_800_745_9e-1,
        1.519_866_656_361_645_719_66e-2,
        5.475_938_084_995_344_946e-4,
        1.050_750_071_644_416_843_24e-9,
    ];
    const E: [f64; 8] = [
        6.657_904_643_501_103_777_2,
        5.463_784_911_164_114_369_9,
        1.784_826_539_917_291_335_8,
        2.965_605_718_285_048_912_3e-1,
        2.653_218_952_657_612_309_3e-2,
        1.242_660_947_388_078_438_6e-3,
        2.711_555_568_743_487_578_15e-5,
        2.010_334_399_292_288_132_65e-7,
    ];
    const F: [f64; 8] = [
        1.0,
        5.998_322_065_558_879_376_9e-1,
        1.369_298_809_227_358_053_1e-1,
        1.487_536_129_085_061_485_25e-2,
        7.868_691_311_456_132_591e-4,
        1.846_318_317_510_054_681_8e-5,
        1.421_511_758_316_445_888_7e-7,
        2.044_263_103_389_939_785_64e-15,
    ];
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180_625 - q * q;
        return q * poly(&A, r) / poly(&B, r);
    }
    let r = if q < 0.0 { p } else { 1.0 - p };
    let r = (-r.ln()).sqrt();
    let v = if r <= 5.0 {
        let r = r - 1.6;
        poly(&C, r) / poly(&D, r)
    } else {
        let r = r - 5.0;
        poly(&E, r) / poly(&F, r)
    };
    if q < 0.0 {
        -v
    } else {
        v
    }
}

/// The regularized incomplete beta function `I_x(a, b)` (continued fraction, Numerical
/// Recipes' `betai`/`betacf`, with the symmetry `I_x(a, b) = 1 - I_{1-x}(b, a)`).
pub fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    incomplete_beta_xy(x, 1.0 - x, a, b, ln_beta(a, b))
}

/// `ln B(a, b) = ln Γ(a) + ln Γ(b) - ln Γ(a + b)`.
///
/// `B(a, ½)` of a large `a` (a Student-t of many degrees of freedom) from the asymptotic series
/// of `ln Γ(a + ½) - ln Γ(a)`: the difference of two large `ln Γ` loses `|ln Γ(a)|` ulps.
fn ln_beta(a: f64, b: f64) -> f64 {
    let (big, other) = if a >= b { (a, b) } else { (b, a) };
    if other == 0.5 && big >= 50.0 {
        // ln Γ(a + ½) - ln Γ(a) = ½ ln a - 1/(8a) + 1/(192a³) - 1/(640a⁵) + 17/(14336a⁷) + ...
        // (below 1e-18 from a = 50 on)
        let r = 1.0 / big;
        let r2 = r * r;
        let ratio = 0.5 * big.ln()
            - r * (1.0 / 8.0 - r2 * (1.0 / 192.0 - r2 * (1.0 / 640.0 - r2 * 17.0 / 14336.0)));
        return 0.5 * std::f64::consts::PI.ln() - ratio;
    }
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// [`incomplete_beta`] given `ln_b = ln B(a, b)` (a search computes it once) and both `x` and
/// `y = 1 - x`, each to its own digits (a Student-t's
/// `ν/(ν+t²)` and `t²/(ν+t²)`): the one near 1 is never made by subtracting the other.
fn incomplete_beta_xy(x: f64, y: f64, a: f64, b: f64, ln_b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if y <= 0.0 {
        return 1.0;
    }
    // ln of the one near 1 from the other, by ln_1p
    let (ln_x, ln_y) = if x < y {
        (x.ln(), (-x).ln_1p())
    } else {
        ((-y).ln_1p(), y.ln())
    };
    let ln_front = a * ln_x + b * ln_y - ln_b;
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(y, b, a) / b
    }
}

/// The continued fraction of [`incomplete_beta`] (modified Lentz).
fn beta_cf(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// The CDF of the standard Student-t with `nu` degrees of freedom:
/// `½ I_{ν/(ν+t²)}(ν/2, ½)` below 0, one minus it above (`nu` finite and positive).
pub fn student_t_cdf(t: f64, nu: f64) -> f64 {
    let tail = 0.5 * incomplete_beta(t_beta_xy(t, nu).0, 0.5 * nu, 0.5);
    if t < 0.0 {
        tail
    } else {
        1.0 - tail
    }
}

/// `(ν/(ν + t²), t²/(ν + t²))`, each computed alone, also where `t²` overflows.
fn t_beta_xy(t: f64, nu: f64) -> (f64, f64) {
    if (t * t).is_finite() {
        let d = nu + t * t;
        (nu / d, t * t / d)
    } else {
        let u = nu.sqrt() / t.abs();
        (u * u / (1.0 + u * u), 1.0 / (1.0 + u * u))
    }
}

/// The log of the probability density of the standard Student-t given `ln_b = ln B(ν/2, ½)`:
/// `ln((1 + t²/ν)^(-(ν+1)/2) / (√ν B(ν/2, ½)))` (in logs: far in the tail the density is
/// below the smallest double while the tail probability is not).
fn student_t_ln_pdf(t: f64, nu: f64, ln_b: f64) -> f64 {
    // ln(1 + t²/ν), also where t² overflows
    let ln_1p = if (t * t).is_finite() {
        (t * t / nu).ln_1p()
    } else {
        2.0 * t.abs().ln() - nu.ln()
    };
    -ln_b - 0.5 * nu.ln() - 0.5 * (nu + 1.0) * ln_1p
}

/// Hill's approximation of the standard Student-t's `p`-quantile for `p < ½` as the positive
/// `|t|` (Hill 1970, ACM Algorithm 396, as R's `qt` uses it for real `ν`), a few digits good:
/// the start of [`student_t_quantile`]'s Newton steps. `None` where it does not apply (`ν < 1`,
/// a level so small that its power underflows) or gives no finite positive value.
fn student_t_quantile_hill(tail: f64, nu: f64) -> Option<f64> {
    if nu < 1.0 {
        return None;
    }
    let p = 2.0 * tail;
    let a = 1.0 / (nu - 0.5);
    let b = 48.0 / (a * a);
    let mut c = ((20700.0 * a / b - 98.0) * a - 16.0) * a + 96.36;
    let d = ((94.5 / (b + c) - 3.0) / b + 1.0) * (a * std::f64::consts::FRAC_PI_2).sqrt() * nu;
    let y = (d * p).powf(2.0 / nu);
    // (also a NaN)
    if y.is_nan() || y < f64::EPSILON {
        return None;
    }
    let t = if (nu < 2.1 && p > 0.5) || y > 0.05 + a {
        // the asymptotic inverse expansion about the normal
        let x = normal_quantile(0.5 * p);
        let y = x * x;
        if nu < 5.0 {
            c += 0.3 * (nu - 4.5) * (x + 0.6);
        }
        c += (((0.05 * d * x - 5.0) * x - 7.0) * x - 2.0) * x + b;
        let y = (((((0.4 * y + 6.3) * y + 36.0) * y + 94.5) / c - y - 3.0) / b + 1.0) * x;
        (nu * (a * y * y).exp_m1()).sqrt()
    } else {
        let y = ((1.0 / (((nu + 6.0) / (nu * y) - 0.089 * d - 0.822) * (nu + 2.0) * 3.0)
            + 0.5 / (nu + 4.0))
            * y
            - 1.0)
            * (nu + 1.0)
            / (nu + 2.0)
            + 1.0 / y;
        (nu * y).sqrt()
    };
    (t.is_finite() && t > 0.0).then_some(t)
}

/// The `p`-quantile of the standard Student-t with `nu` degrees of freedom: the CDF inverted
/// by Newton steps from Hill's approximation, kept inside a bracket (bisection when a step
/// leaves it), to about `1e-13` relative; from `nu = 1e5` the Cornish-Fisher expansion about
/// the normal quantile. `nu = ∞` is the normal quantile; `nu <= 0` or NaN gives NaN.
pub fn student_t_quantile(p: f64, nu: f64) -> f64 {
    // (also ν <= 0, which is no distribution)
    if p.is_nan() || nu.is_nan() || nu <= 0.0 {
        return f64::NAN;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if nu.is_infinite() {
        return normal_quantile(p);
    }
    if p == 0.5 {
        return 0.0;
    }
    // solved on the tail beyond |t|, P(T > |t|) = ½ I_{ν/(ν+t²)}(ν/2, ½), so that a level
    // near 0 keeps its digits (1 - 1e-20 is 1 in f64); 1 - p is exact for p >= ½
    let (tail, sign) = if p < 0.5 { (p, -1.0) } else { (1.0 - p, 1.0) };
    if nu >= 1e5 {
        // many degrees of freedom: the incomplete beta's continued fractions converge slowly
        // and lose digits (1e-6 at ν = 10¹²), and the Cornish-Fisher expansion about the
        // normal quantile (Abramowitz and Stegun 26.7.5, to ν⁻⁴) is exact to about 1e-14
        // from here on, even at a level of 1e-300
        let z = normal_quantile(tail);
        let z2 = z * z;
        let g1 = (z2 + 1.0) * z / 4.0;
        let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
        let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
        let g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0;
        let r = 1.0 / nu;
        return -sign * (z + r * (g1 + r * (g2 + r * (g3 + r * g4))));
    }
    let ln_b = ln_beta(0.5 * nu, 0.5);
    let upper = |t: f64| {
        let (x, y) = t_beta_xy(t, nu);
        0.5 * incomplete_beta_xy(x, y, 0.5 * nu, 0.5, ln_b)
    };
    // Newton's error after a step of relative size s is about k·s² with k = |t f''/2f'|,
    // where f''/f' = -(ν+1)t/(ν+t²): k <= ½ min(ν + 1, t²(1 + 1/ν))
    let curvature = |t: f64| 0.5 * (nu + 1.0).min(t * t * (1.0 + 1.0 / nu)) + 1.0;
    // [lo, hi] brackets the root: upper(lo) > tail >= upper(hi)
    let (mut lo, mut hi) = (0.0f64, f64::INFINITY);
    // the start: Hill's approximation, else (a level too small for it) the tail's asymptote
    // P(T > t) ≈ ν^((ν-1)/2) t^(-ν) / (√ν B(ν/2, ½)), else 1
    let asymptote = || {
        let ln_t = (-ln_b - 0.5 * nu.ln() + 0.5 * (nu - 1.0) * nu.ln() - tail.ln()) / nu;
        Some(ln_t.exp()).filter(|t| t.is_finite() && *t > 0.0)
    };
    let mut t = student_t_quantile_hill(tail, nu)
        .or_else(asymptote)
        .unwrap_or(1.0);
    for _ in 0..400 {
        if t > 1e300 {
            return sign * f64::INFINITY;
        }
        let f = if tail > 0.25 {
            // near the median, P(T > t) = ½ - ½ I_{t²/(ν+t²)}(½, ν/2): no digits lost to
            // ν/(ν+t²) rounding to 1 (½ - tail is exact here)
            let (x, y) = t_beta_xy(t, nu);
            (0.5 - tail) - 0.5 * incomplete_beta_xy(y, x, 0.5, 0.5 * nu, ln_b)
        } else {
            upper(t) - tail
        };
        if f > 0.0 {
            lo = t;
        } else {
            hi = t;
        }
        if f == 0.0 {
            break;
        }
        // d upper / dt = -pdf(t): the Newton step f / pdf, in logs
        let step = f.signum() * (f.abs().ln() - student_t_ln_pdf(t, nu, ln_b)).exp();
        let mut next = t + step;
        // a step under half an ulp: t is the root to the last digit (it is also lo or hi
        // now, so the bracket below would take the step for one leaving it)
        if next == t {
            break;
        }
        // (a NaN step fails both comparisons)
        let newton = next > lo && next < hi;
        if !newton {
            next = if hi.is_finite() {
                0.5 * (lo + hi)
            } else {
                2.0 * t
            };
        }
        let rel = (next - t).abs() / t.abs().max(1e-300);
        // a Newton step this small leaves an error under 1e-13 relative: taken without
        // another evaluation; a bisection ends when the bracket is narrower than that
        let done =
            (newton && curvature(next) * rel * rel <= 1e-13) || hi - lo <= 1e-15 * hi.min(f64::MAX);
        t = next;
        if done {
            break;
        }
    }
    sign * t
}
