//! Forecast accuracy measures for backtests: the M4 competition's sMAPE, MASE and MSIS, with
//! MAPE, RMSE, GluonTS's weighted quantile loss and the 95% interval's coverage, for one
//! forecast window ([`WindowScore`]) and averaged over windows and series ([`Aggregate`]),
//! overall and per step ahead.
//!
//! Pure functions over `f64` slices; no model. A missing actual value is `NaN` and is skipped
//! wherever it appears.
//!
//! Formulas, for one window of `h` steps with actuals `y`, point forecasts `ŷ`, in-sample
//! history `x` of length `n` and season `m` (`m = 1` when there is no season):
//! - scale (the in-sample seasonal naive MAE): `mean_{t=m..n} |x_t − x_{t−m}|`, over the pairs
//!   where both values are present ([`seasonal_naive_mae`]);
//! - sMAPE (M4, percent): `200/h · Σ |y−ŷ| / (|y|+|ŷ|)`, a term with `|y|+|ŷ| = 0` counts 0;
//! - MASE: `mean |y−ŷ|` divided by the scale;
//! - MAPE (percent): `100 · mean |y−ŷ|/|y|` over the steps with `y ≠ 0`;
//! - RMSE: `sqrt(mean (y−ŷ)²)`;
//! - quantile loss (GluonTS's `mean_wQuantileLoss`): for each level `q`,
//!   `2 · Σ_t ρ_q(y_t, ŷ_{q,t}) / Σ_t |y_t|` with the pinball loss
//!   `ρ_q(y, ŷ) = max(q·(y−ŷ), (q−1)·(y−ŷ))` ([`pinball`]), then the mean over the levels;
//! - coverage: the share of observed `y` with `L ≤ y ≤ U`, where `L` and `U` are the
//!   forecasts at levels 0.025 and 0.975;
//! - MSIS (M4, `α = 0.05`): `mean_t [(U−L) + (2/α)(L−y)·1{y<L} + (2/α)(y−U)·1{y>U}]` divided
//!   by the scale.
//!
//! Edge cases: a window whose actuals are all missing scores nothing (every measure `None`)
//! and is counted in [`Aggregate::empty_windows`]; a window whose scale is 0 (a constant
//! history) or cannot be computed (no in-sample pair `m` apart) has MASE and MSIS `None`, is
//! counted in [`Aggregate::unscaled_windows`], and never produces an infinity.
//!
//! ```
//! use lstm::tasks::metrics::{Aggregate, WindowScore};
//! let history = [1.0, 2.0, 3.0, 4.0];
//! let score = WindowScore::new(&history, &[5.0, 6.0], &[4.0, 4.0], &[], 1).unwrap();
//! // |y−ŷ| = 1, 2; the scale is mean(1, 1, 1) = 1, so MASE = 1.5.
//! assert!((score.mase.unwrap() - 1.5).abs() < 1e-12);
//! let all = Aggregate::from_windows(&[score]);
//! assert_eq!(all.windows, 1);
//! println!("{all}");
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// The significance of the central interval scored by coverage and MSIS: 0.05, the 95%
/// interval of the M4 competition.
pub const INTERVAL_ALPHA: f64 = 0.05;
/// The quantile level of the 95% interval's lower bound (`α/2`).
pub const LOWER_LEVEL: f64 = 0.025;
/// The quantile level of the 95% interval's upper bound (`1 − α/2`).
pub const UPPER_LEVEL: f64 = 0.975;

/// How close a given quantile level must be to [`LOWER_LEVEL`] or [`UPPER_LEVEL`] to count as it.
const LEVEL_TOLERANCE: f64 = 1e-9;

/// Inputs that cannot be scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// A forecast does not have one value per actual.
    #[error("{what} has {found} values but the window has {expected} actuals")]
    Length {
        /// Which forecast: `"point"` or `"quantile 0.5"`, ...
        what: String,
        /// The number of actuals, `h`.
        expected: usize,
        /// The forecast's length.
        found: usize,
    },
    /// A quantile level outside (0, 1).
    #[error("quantile level {0} is not in (0, 1)")]
    Level(f64),
}

/// The pinball (quantile) loss of forecast `forecast` at level `level` for the actual `actual`:
/// `max(level·(actual−forecast), (level−1)·(actual−forecast))`.
pub fn pinball(level: f64, actual: f64, forecast: f64) -> f64 {
    let error = actual - forecast;
    (level * error).max((level - 1.0) * error)
}

/// The in-sample seasonal naive mean absolute error of `insample` with lag `season` (0 is taken
/// as 1): `mean_{t=m..n} |x_t − x_{t−m}|` over the pairs where neither value is `NaN`.
///
/// Returns `None` when there is no such pair (history shorter than `m + 1`, or too many missing
/// values). A constant history returns `Some(0.0)`.
pub fn seasonal_naive_mae(insample: &[f64], season: usize) -> Option<f64> {
    let m = season.max(1);
    let mut sum = 0.0;
    let mut count = 0usize;
    for t in m..insample.len() {
        let (now, before) = (insample[t], insample[t - m]);
        if now.is_nan() || before.is_nan() {
            continue;
        }
        sum += (now - before).abs();
        count += 1;
    }
    (count > 0).then(|| sum / count as f64)
}

/// The seasonal naive forecast of `h` steps after `history` (season `season`, 0 taken as 1):
/// each step repeats the value one season earlier, `x_{n+i} = x_{n+i−m·k}` for the least `k`
/// that reaches into the history. A missing (`NaN`) value is replaced by the same season
/// position a season earlier, and so on; where that position has no value in the whole
/// history, by the last value present (the naive forecast). `NaN` only when the history has
/// no value at all.
pub fn seasonal_naive_forecast(history: &[f64], season: usize, h: usize) -> Vec<f64> {
    let m = season.max(1);
    let n = history.len();
    let last = history.iter().rev().copied().find(|v| !v.is_nan());
    (0..h)
        .map(|i| {
            // the latest time of this season position before the origin
            let mut j = (n + i % m).checked_sub(m);
            while let Some(t) = j {
                if !history[t].is_nan() {
                    return history[t];
                }
                j = t.checked_sub(m);
            }
            last.unwrap_or(f64::NAN)
        })
        .collect()
}

/// What one step of one window contributes to the per-step means of an [`Aggregate`].
///
/// Every field is `None` when the actual at this step is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTerms {
    /// `200 · |y−ŷ| / (|y|+|ŷ|)`, 0 when `|y|+|ŷ| = 0`.
    pub smape: Option<f64>,
    /// `|y−ŷ| / scale`; `None` also when the window has no usable scale.
    pub scaled_error: Option<f64>,
    /// `100 · |y−ŷ| / |y|`; `None` also when `y = 0`.
    pub ape: Option<f64>,
    /// `(y−ŷ)²`.
    pub squared_error: Option<f64>,
    /// The mean over the quantile levels of `ρ_q(y, ŷ_q)`; `None` without quantile forecasts.
    pub mean_pinball: Option<f64>,
    /// `|y|`, the weight of the quantile loss.
    pub abs_actual: Option<f64>,
    /// Whether `L ≤ y ≤ U`; `None` without both interval bounds.
    pub covered: Option<bool>,
    /// The interval score at this step divided by the scale; `None` without both bounds or a
    /// usable scale.
    pub scaled_interval_score: Option<f64>,
}

/// The measures of one forecast window of one series (see the [module docs](self) for the
/// formulas). A measure is `None` when it cannot be computed for this window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowScore {
    /// The number of steps `h` (actuals, missing ones included).
    pub horizon: usize,
    /// The number of actuals present (not `NaN`).
    pub observed: usize,
    /// The in-sample seasonal naive MAE that scales MASE and MSIS, if it exists and is not 0.
    pub scale: Option<f64>,
    /// sMAPE in percent, over the observed steps.
    pub smape: Option<f64>,
    /// MASE.
    pub mase: Option<f64>,
    /// MAPE in percent, over the observed steps with `y ≠ 0`.
    pub mape: Option<f64>,
    /// RMSE.
    pub rmse: Option<f64>,
    /// GluonTS's mean weighted quantile loss over the given levels; `None` without quantile
    /// forecasts or when `Σ|y| = 0`.
    pub quantile_loss: Option<f64>,
    /// The share of observed actuals inside the central 95% interval.
    pub coverage_95: Option<f64>,
    /// M4's mean scaled interval score of the 95% interval.
    pub msis: Option<f64>,
    /// Each step's terms, `horizon` of them.
    pub steps: Vec<StepTerms>,
}

impl WindowScore {
    /// Scores one window.
    ///
    /// - `insample`: the history before the forecast origin (`NaN` = missing), for the scale;
    /// - `actual`: the `h` held-out values (`NaN` = missing, that step is skipped);
    /// - `point`: the `h` point forecasts;
    /// - `quantiles`: `(level, h forecasts)` pairs, possibly empty; the levels
    ///   [`LOWER_LEVEL`] and [`UPPER_LEVEL`], when both present, give coverage and MSIS;
    /// - `season`: the seasonal period `m` of the scale (0 or 1 = no season).
    ///
    /// Returns the score; when every actual is missing, every measure is `None`.
    ///
    /// # Errors
    /// [`MetricsError::Length`] when `point` or a quantile forecast is not `h` long;
    /// [`MetricsError::Level`] when a level is not in (0, 1).
    pub fn new(
        insample: &[f64],
        actual: &[f64],
        point: &[f64],
        quantiles: &[(f64, Vec<f64>)],
        season: usize,
    ) -> Result<Self, MetricsError> {
        let h = actual.len();
        if point.len() != h {
            return Err(MetricsError::Length {
                what: "point".into(),
                expected: h,
                found: point.len(),
            });
        }
        for (level, values) in quantiles {
            if !(*level > 0.0 && *level < 1.0) {
                return Err(MetricsError::Level(*level));
            }
            if values.len() != h {
                return Err(MetricsError::Length {
                    what: format!("quantile {level}"),
                    expected: h,
                    found: values.len(),
                });
            }
        }
        let scale = seasonal_naive_mae(insample, season).filter(|&s| s > 0.0);
        let find = |target: f64| {
            quantiles
                .iter()
                .find(|(level, _)| (level - target).abs() < LEVEL_TOLERANCE)
                .map(|(_, values)| values.as_slice())
        };
        let interval = find(LOWER_LEVEL).zip(find(UPPER_LEVEL));

        let mut steps = Vec::with_capacity(h);
        for t in 0..h {
            let (y, y_hat) = (actual[t], point[t]);
            if y.is_nan() {
                steps.push(StepTerms {
                    smape: None,
                    scaled_error: None,
                    ape: None,
                    squared_error: None,
                    mean_pinball: None,
                    abs_actual: None,
                    covered: None,
                    scaled_interval_score: None,
                });
                continue;
            }
            let error = y - y_hat;
            let denominator = y.abs() + y_hat.abs();
            let smape = if denominator == 0.0 {
                0.0
            } else {
                200.0 * error.abs() / denominator
            };
            let mean_pinball = (!quantiles.is_empty()).then(|| {
                quantiles
                    .iter()
                    .map(|(level, values)| pinball(*level, y, values[t]))
                    .sum::<f64>()
                    / quantiles.len() as f64
            });
            // (U−L) + (2/α)(L−y)·1{y<L} + (2/α)(y−U)·1{y>U}
            let interval_score = interval.map(|(lower, upper)| {
                let (l, u) = (lower[t], upper[t]);
                let penalty = 2.0 / INTERVAL_ALPHA;
                (u - l)
                    + if y < l { penalty * (l - y) } else { 0.0 }
                    + if y > u { penalty * (y - u) } else { 0.0 }
            });
            steps.push(StepTerms {
                smape: Some(smape),
                scaled_error: scale.map(|s| error.abs() / s),
                ape: (y != 0.0).then(|| 100.0 * error.abs() / y.abs()),
                squared_error: Some(error * error),
                mean_pinball,
                abs_actual: Some(y.abs()),
                covered: interval.map(|(lower, upper)| lower[t] <= y && y <= upper[t]),
                scaled_interval_score: interval_score.zip(scale).map(|(score, s)| score / s),
            });
        }

        let observed = steps.iter().filter(|s| s.squared_error.is_some()).count();
        let smape = mean(steps.iter().filter_map(|s| s.smape));
        let mase = mean(steps.iter().filter_map(|s| s.scaled_error));
        let mape = mean(steps.iter().filter_map(|s| s.ape));
        let rmse = mean(steps.iter().filter_map(|s| s.squared_error)).map(f64::sqrt);
        // mean_q 2·Σ_t ρ_q / Σ_t |y_t| = 2·Σ_t mean_q ρ_q / Σ_t |y_t|
        let quantile_loss = if quantiles.is_empty() {
            None
        } else {
            let pinball_sum: f64 = steps.iter().filter_map(|s| s.mean_pinball).sum();
            let weight: f64 = steps.iter().filter_map(|s| s.abs_actual).sum();
            (weight > 0.0).then(|| 2.0 * pinball_sum / weight)
        };
        let coverage_95 = mean(
            steps
                .iter()
                .filter_map(|s| s.covered.map(|c| f64::from(u8::from(c)))),
        );
        let msis = mean(steps.iter().filter_map(|s| s.scaled_interval_score));
        Ok(WindowScore {
            horizon: h,
            observed,
            scale,
            smape,
            mase,
            mape,
            rmse,
            quantile_loss,
            coverage_95,
            msis,
            steps,
        })
    }
}

/// The mean of `values`, `None` when there are none.
fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(sum, count), v| (sum + v, count + 1));
    (count > 0).then(|| sum / count as f64)
}

/// The means at one step ahead over the windows observed at that step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepAggregate {
    /// The step ahead, 1 to `h`.
    pub step: usize,
    /// How many windows have an actual at this step.
    pub count: usize,
    /// Mean of `200·|y−ŷ|/(|y|+|ŷ|)`.
    pub smape: Option<f64>,
    /// Mean of `|y−ŷ|/scale` over the windows with a scale.
    pub mase: Option<f64>,
    /// Mean of `100·|y−ŷ|/|y|` over `y ≠ 0`.
    pub mape: Option<f64>,
    /// `sqrt(mean (y−ŷ)²)` over the windows (not a mean of per-window RMSEs).
    pub rmse: Option<f64>,
    /// `2·Σ mean_q ρ_q / Σ |y|` over the windows with quantile forecasts (pooled, as GluonTS).
    pub quantile_loss: Option<f64>,
    /// The share of windows whose actual is inside the 95% interval.
    pub coverage_95: Option<f64>,
    /// Mean scaled interval score.
    pub msis: Option<f64>,
}

/// Measures averaged over windows and series as the M4 competition does: each overall measure is
/// the mean of the per-window values (one window per series gives M4's mean of per-series sMAPE,
/// MASE, ...), over the windows where that measure exists; plus the means per step ahead.
///
/// Serialises to JSON with serde (a missing measure is `null`); `Display` prints a table, the
/// overall row first, then one row per step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// All windows given, empty ones included.
    pub windows: usize,
    /// Windows whose actuals were all missing: skipped for every measure.
    pub empty_windows: usize,
    /// Non-empty windows without a usable scale (in-sample seasonal naive MAE 0 or not
    /// computable): skipped for MASE and MSIS.
    pub unscaled_windows: usize,
    /// Mean sMAPE (percent).
    pub smape: Option<f64>,
    /// Mean MASE.
    pub mase: Option<f64>,
    /// Mean MAPE (percent).
    pub mape: Option<f64>,
    /// Mean of the per-window RMSE.
    pub rmse: Option<f64>,
    /// Mean of the per-window weighted quantile loss (GluonTS pools over the whole data set
    /// instead; the per-step rows here pool).
    pub quantile_loss: Option<f64>,
    /// Mean 95% interval coverage.
    pub coverage_95: Option<f64>,
    /// Mean MSIS.
    pub msis: Option<f64>,
    /// One row per step ahead, up to the longest horizon.
    pub per_step: Vec<StepAggregate>,
}

impl Aggregate {
    /// Averages `windows` (of any series, any horizons) as described on [`Aggregate`].
    pub fn from_windows(windows: &[WindowScore]) -> Self {
        let scored: Vec<&WindowScore> = windows.iter().filter(|w| w.observed > 0).collect();
        let empty_windows = windows.len() - scored.len();
        let unscaled_windows = scored.iter().filter(|w| w.scale.is_none()).count();
        let over = |measure: fn(&WindowScore) -> Option<f64>| {
            mean(scored.iter().filter_map(|w| measure(w)))
        };
        let horizon = scored.iter().map(|w| w.horizon).max().unwrap_or(0);
        let per_step = (0..horizon)
            .map(|t| {
                let terms: Vec<&StepTerms> = scored
                    .iter()
                    .filter_map(|w| w.steps.get(t))
                    .filter(|s| s.squared_error.is_some())
                    .collect();
                let pinball: Vec<(f64, f64)> = terms
                    .iter()
                    .filter_map(|s| s.mean_pinball.zip(s.abs_actual))
                    .collect();
                let weight: f64 = pinball.iter().map(|(_, w)| w).sum();
                StepAggregate {
                    step: t + 1,
                    count: terms.len(),
                    smape: mean(terms.iter().filter_map(|s| s.smape)),
                    mase: mean(terms.iter().filter_map(|s| s.scaled_error)),
                    mape: mean(terms.iter().filter_map(|s| s.ape)),
                    rmse: mean(terms.iter().filter_map(|s| s.squared_error)).map(f64::sqrt),
                    quantile_loss: (weight > 0.0)
                        .then(|| 2.0 * pinball.iter().map(|(p, _)| p).sum::<f64>() / weight),
                    coverage_95: mean(
                        terms
                            .iter()
                            .filter_map(|s| s.covered.map(|c| f64::from(u8::from(c)))),
                    ),
                    msis: mean(terms.iter().filter_map(|s| s.scaled_interval_score)),
                }
            })
            .collect();
        Aggregate {
            windows: windows.len(),
            empty_windows,
            unscaled_windows,
            smape: over(|w| w.smape),
            mase: over(|w| w.mase),
            mape: over(|w| w.mape),
            rmse: over(|w| w.rmse),
            quantile_loss: over(|w| w.quantile_loss),
            coverage_95: over(|w| w.coverage_95),
            msis: over(|w| w.msis),
            per_step,
        }
    }

    /// The aggregate as pretty-printed JSON.
    ///
    /// # Panics
    /// Never: every field serialises (measures are finite or `null`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("an Aggregate always serialises")
    }
}

/// A measure for the table: 4 decimals, or `-` when missing.
fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| table_number(v, 4))
}

/// A measure as a table prints it: `decimals` decimals, or in scientific notation when that
/// would show none of its digits or too many (an RMSE of 1e-12 data printed 0.000, one of 1e30
/// data 31 digits: a probe, 2026-12-07). `--json` gives every measure in full.
pub fn table_number(v: f64, decimals: usize) -> String {
    // fixed while at least two significant digits show
    let a = v.abs();
    let small = 10f64.powi(1 - decimals as i32);
    if a == 0.0 || (small..1e9).contains(&a) || !a.is_finite() {
        format!("{v:.decimals$}")
    } else {
        format!("{v:.3e}")
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} windows ({} empty, {} without a MASE/MSIS scale)",
            self.windows, self.empty_windows, self.unscaled_windows
        )?;
        let header = [
            "", "n", "sMAPE", "MASE", "MAPE", "RMSE", "wQL", "cov95", "MSIS",
        ];
        let row = |f: &mut fmt::Formatter<'_>, cells: [String; 9]| {
            write!(f, "{:<8}{:>6}", cells[0], cells[1])?;
            for c in &cells[2..] {
                write!(f, " {c:>12}")?;
            }
            writeln!(f)
        };
        row(f, header.map(String::from))?;
        row(
            f,
            [
                "overall".into(),
                (self.windows - self.empty_windows).to_string(),
                cell(self.smape),
                cell(self.mase),
                cell(self.mape),
                cell(self.rmse),
                cell(self.quantile_loss),
                cell(self.coverage_95),
                cell(self.msis),
            ],
        )?;
        for s in &self.per_step {
            row(
                f,
                [
                    format!("step {}", s.step),
                    s.count.to_string(),
                    cell(s.smape),
                    cell(s.mase),
                    cell(s.mape),
                    cell(s.rmse),
                    cell(s.quantile_loss),
                    cell(s.coverage_95),
                    cell(s.msis),
                ],
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::table_number;

    /// Measures of tiny or huge data keep their digits in the table.
    #[test]
    fn table_numbers_keep_their_digits() {
        assert_eq!(table_number(12.34567, 3), "12.346");
        assert_eq!(table_number(0.0, 3), "0.000");
        assert_eq!(table_number(2.5e-12, 3), "2.500e-12");
        assert_eq!(table_number(0.0015, 3), "1.500e-3");
        assert_eq!(table_number(0.0015, 4), "0.0015");
        assert_eq!(table_number(-1.5e30, 4), "-1.500e30");
        assert_eq!(table_number(f64::NAN, 3), "NaN");
    }
}
