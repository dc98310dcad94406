//! The global forecaster: one model over many series, a forecast distribution per step.
//!
//! What it reads: a [`Panel`] (many series in long format, or one series), each series scaled
//! on its own (by the mean absolute value of the context before each forecast origin, as
//! DeepAR does). What it learns: for a window of `context + horizon` steps ending at a forecast
//! origin's horizon, the distribution ([`Distribution`]: Gaussian, Student-t or, for counts,
//! negative binomial) of every horizon step's value, all steps at once (not
//! autoregressively). Each step's input:
//!
//! | features | what |
//! |---|---|
//! | 2 | the previous value (scaled) and whether it is known (it is not past the origin) |
//! | 2 per lag | the value `L` steps before (scaled; `L` in [`GlobalSpec::lags`]) and whether it is known |
//! | one per known column | the covariates known in advance, standardised over the training data |
//! | calendar | hour of day, day of week, month... from the time column ([`calendar_features`]) |
//! | 1 | `ln(1 + scale) / 10`: the series' level, so one model can tell small from large |
//! | [`GlobalSpec::id_dim`] | the series' learned id embedding (the same row at every step) |
//!
//! The id embedding ([`crate::model::InputKind::DenseWithIds`], `id_embedding.weight`
//! `(series, id_dim)`) is off by default; `--id-embedding N` gives it `N` dimensions, and
//! `--id-embedding 0` `min(16, ceil(sqrt(series)))` with more than one training series
//! ([`id_dim_for`]). A series seen in training reads its own row;
//! a series not seen in training (another file given to `lstm forecast` or `lstm eval`) reads the
//! mean of the trained rows.
//!
//! The seasonal lags make the seasonal naive forecast one input away, and because the model
//! is not autoregressive, the lags at or beyond the horizon are known at every forecast step.
//!
//! Defaults, chosen by rule (documented on [`GlobalSpec::resolve`]): the season from the time
//! column's frequency (or `--season`), the horizon two seasons, the context
//! `max(2·horizon, 3·season)`, the lags one, two and (a season of 24 hours) seven seasons.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::panel::{calendar_feature_count, calendar_features, Freq, Panel, Time, TimeKind};
use crate::error::{Error, Result};
use crate::model::loss::Distribution;
use crate::model::{Batch, InputKind, Inputs, SequenceModel, Targets};
use crate::tasks::train::{OwnedBatch, TrainTask};

/// Everything a global forecaster needs besides its weights; saved with the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GlobalSpec {
    /// The target column.
    pub target: String,
    /// The series id column (`None`: one series).
    pub id_column: Option<String>,
    /// The time column (`None`: an index 1, 2, ...).
    pub time_column: Option<String>,
    /// Covariates known in advance, required for the forecast steps too.
    pub known: Vec<String>,
    /// Their means over the training data.
    pub known_mean: Vec<f32>,
    /// Their standard deviations over the training data (1 where constant).
    pub known_std: Vec<f32>,
    /// The frequency, as [`Freq`]'s debug name (`Hourly`, `Monthly`, `Integer(1)`, ...).
    pub freq: String,
    /// The season in steps (1: none).
    pub season: usize,
    /// Lags of the target given as inputs, in steps.
    pub lags: Vec<usize>,
    /// Steps of history the model reads before a forecast origin.
    pub context: usize,
    /// Steps forecast at once.
    pub horizon: usize,
    /// The forecast distribution.
    pub distribution: Distribution,
    /// Calendar features per step.
    pub calendar: usize,
    /// How each window is scaled.
    #[serde(default)]
    pub scaling: Scaling,
    /// The training series' ids in panel order: series `i` reads row `i` of the id embedding.
    #[serde(default)]
    pub ids: Vec<String>,
    /// The id embedding's dimension (0: none, as in model directories written before it).
    #[serde(default)]
    pub id_dim: usize,
    /// Further models trained from other seeds (`member1.safetensors`, ...), whose forecasts
    /// are combined with the first one's by [`combine`] (0: one model, as in model directories
    /// written before them).
    #[serde(default)]
    pub members: usize,
    /// Each training series' last row trained on (before `--holdout`), in [`GlobalSpec::ids`]
    /// order: `lstm eval` refuses windows of a file holding that row that reach into it (empty
    /// in model directories written before it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trained_until: Vec<TrainedEnd>,
    /// A window whose context has no size (all zeros, or missing) is scaled by the series' own
    /// size before it ([`window_scale`]); false (scale 1) in model directories written before
    /// 2026-12-07, which trained so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own_size_scale: bool,
}

/// A series' last rows trained on: a file whose series holds the same rows (the same times
/// with the same values, [`TrainedEnd::of`]) is taken for the training data; a file that
/// numbers its times otherwise, or holds other values at those times, is not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainedEnd {
    /// The last time trained on, as the file wrote it.
    pub time: String,
    /// How many rows, ending there, the fingerprint covers.
    pub rows: usize,
    /// The fingerprint of those rows' times and values.
    pub fingerprint: String,
    /// The trained rows by their values alone, by which a copy whose times or ids are written
    /// otherwise (`2020-01-01` for `2020-01`, `7` for `007`) is known (absent in model
    /// directories written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<crate::data::series::TrainedRows>,
}

/// Rows a [`TrainedEnd`] fingerprints: enough that an unrelated file matches only by holding
/// the same values.
const TRAINED_END_ROWS: usize = 64;

impl TrainedEnd {
    /// The record of `times` and `target` trained up to row `end` (exclusive, at least 1).
    pub fn of(times: &[Time], target: &[f32], end: usize) -> TrainedEnd {
        let rows = end.min(TRAINED_END_ROWS);
        TrainedEnd {
            time: times[end - 1].to_string(),
            rows,
            fingerprint: Self::print(&times[end - rows..end], &target[end - rows..end]),
            values: crate::data::series::TrainedRows::of(
                &target.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
                end,
            ),
        }
    }

    fn print(times: &[Time], target: &[f32]) -> String {
        let mut bytes = Vec::new();
        for (t, v) in times.iter().zip(target) {
            bytes.extend_from_slice(t.to_string().as_bytes());
            bytes.push(b',');
            // every missing value alike
            let v = if v.is_nan() { f32::NAN } else { *v };
            bytes.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        crate::data::fingerprint(&bytes)
    }

    /// Whether `times` and `target` hold the series' last trained rows at their times; if so,
    /// the row after them.
    pub fn found_in(&self, times: &[Time], target: &[f32]) -> Option<usize> {
        use std::cmp::Ordering;
        let until = Time::parse(&self.time)?;
        let at = |time: &Time| {
            times
                .iter()
                .position(|t| t.cmp_same_kind(time) == Some(Ordering::Equal))
        };
        if let Some(end) = at(&until).map(|i| i + 1) {
            if self.rows > 0
                && end >= self.rows
                && Self::print(&times[end - self.rows..end], &target[end - self.rows..end])
                    == self.fingerprint
            {
                return Some(end);
            }
        }
        // a copy that stops earlier, or writes its times otherwise, is known by its values
        // (`TrainedEnd::values`)
        None
    }
}

/// The id embedding's dimension for `series` training series: `min(16, ceil(sqrt(series)))`
/// with more than one, 0 (no embedding) with one.
pub fn id_dim_for(series: usize) -> usize {
    if series <= 1 {
        return 0;
    }
    let mut d = 1;
    while d * d < series {
        d += 1;
    }
    d.min(16)
}

/// How a window's values are brought to a common scale (from the context before its origin).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// Chosen by the data (settings only, never saved in a spec): see
    /// `tasks::job::choose_scaling`.
    Auto,
    /// Divided by the mean absolute value (DeepAR's).
    #[default]
    #[serde(alias = "mean-abs")]
    MeanAbs,
    /// The mean subtracted, divided by the standard deviation (small relative movements of a
    /// high level, a trend, become visible).
    Standard,
    /// A straight line fitted to the context by least squares subtracted (extended over the
    /// horizon), divided by the residuals' standard deviation: the model forecasts departures
    /// from the context's trend.
    Trend,
    /// [`Scaling::Trend`] on the logarithm of the values (a growth at a constant rate, a
    /// seasonal swing in proportion to the level); values at or below 0 are read as missing.
    #[serde(alias = "log-trend")]
    LogTrend,
    /// The seasonal naive forecast subtracted: a context step less the value one season before
    /// it, a horizon step less the last known value at its position in the season (without a
    /// season: the value before, the last value), divided by the mean absolute seasonal
    /// difference of the context (MASE's scale): the model forecasts departures from seasonal
    /// naive.
    Seasonal,
    /// [`Scaling::Seasonal`] on the logarithm of the values.
    #[serde(alias = "log-seasonal")]
    LogSeasonal,
}

impl Scaling {
    /// The name on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            Scaling::Auto => "auto",
            Scaling::MeanAbs => "mean-abs",
            Scaling::Standard => "standard",
            Scaling::Trend => "trend",
            Scaling::LogTrend => "log-trend",
            Scaling::Seasonal => "seasonal",
            Scaling::LogSeasonal => "log-seasonal",
        }
    }

    /// Whether values are read through their logarithm.
    pub fn log(self) -> bool {
        matches!(self, Scaling::LogTrend | Scaling::LogSeasonal)
    }
}

/// A window's scaling: a value `y` at step `t` is read as `(f(y) - location(t)) / scale`, `f`
/// the logarithm when `log`, else `y`; the location is `loc + slope · (t - origin)`, or with
/// `season > 0` the seasonal naive value of step `t` ([`WindowScale::location`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowScale {
    /// The location at the origin (the seasonal scalings: the context's mean, the location of a
    /// horizon step without any value at its position in the season).
    pub loc: f32,
    /// The location's change per step (0 but for the trend scalings).
    pub slope: f32,
    /// The scale.
    pub scale: f32,
    /// Whether values are read through their logarithm.
    pub log: bool,
    /// The seasonal scalings' season (1 without one); 0: the location is a line.
    pub season: usize,
    /// The forecast origin.
    pub origin: usize,
}

impl WindowScale {
    /// `f(v)`, or `None` for a missing value (or one at or below 0 under a logarithm).
    fn value(&self, v: f32) -> Option<f32> {
        if v.is_nan() || (self.log && v <= 0.0) {
            None
        } else if self.log {
            Some(v.ln())
        } else {
            Some(v)
        }
    }

    /// The location of step `t` of the series `y` (in `f`'s units): the line at `t`; with a
    /// season `m`, `f(y[t - m])` for a step before the origin (`None` if that is missing), and
    /// for a step at or after it the last known value at its position in the season before
    /// the origin (`loc` if there is none).
    pub fn location(&self, y: &[f32], t: usize) -> Option<f32> {
        let m = self.season;
        if m == 0 {
            return Some(self.loc + self.slope * (t as f32 - self.origin as f32));
        }
        if t < self.origin {
            return self.value(*y.get(t.checked_sub(m)?)?);
        }
        let mut j = self
            .origin
            .checked_sub(m)
            .map(|j| j + (t - self.origin) % m);
        while let Some(i) = j {
            if let Some(v) = y.get(i).and_then(|&v| self.value(v)) {
                return Some(v);
            }
            j = i.checked_sub(m);
        }
        Some(self.loc)
    }

    /// The scaled value of step `t` of `y` (`None`: missing, not positive under a logarithm,
    /// or without a location).
    pub fn scaled(&self, y: &[f32], t: usize) -> Option<f32> {
        let v = self.value(*y.get(t)?)?;
        Some((v - self.location(y, t)?) / self.scale)
    }

    /// The value in the series' units of a scaled `z` at a step `t` at or after the origin.
    pub fn unscaled(&self, y: &[f32], t: usize, z: f64) -> f64 {
        let loc = self.location(y, t).unwrap_or(self.loc);
        let v = loc as f64 + z * self.scale as f64;
        if self.log {
            v.exp()
        } else {
            v
        }
    }

    /// The level input, `ln(1 + |location| + scale) / 10` in the series' units.
    fn level(&self) -> f32 {
        if self.log {
            (1.0 + self.loc.exp()).ln() / 10.0
        } else {
            (1.0 + self.loc.abs() + self.scale).ln() / 10.0
        }
    }
}

/// The choices a user may leave to [`GlobalSpec::resolve`].
#[derive(Clone, Debug, Default)]
pub struct GlobalOptions {
    /// `--season`.
    pub season: Option<usize>,
    /// `--horizon`.
    pub horizon: Option<usize>,
    /// `--context`.
    pub context: Option<usize>,
    /// The distribution.
    pub distribution: Distribution,
    /// The scaling.
    pub scaling: Scaling,
    /// `--id-embedding`: the series id embedding's size; `None`: none (the default), `Some(0)`:
    /// sized by [`id_dim_for`].
    pub id_embedding: Option<usize>,
}

impl GlobalSpec {
    /// Resolves the defaults for a panel (no weights involved):
    /// - season: `options.season`, else the frequency's ([`Freq::season`]: hourly 24, daily 7,
    ///   business daily 5, weekly 52, monthly 12, quarterly 4, otherwise 1);
    /// - horizon: `options.horizon`, else two seasons (12 steps without a season);
    /// - context: `options.context`, else `max(2·horizon, 3·season)`;
    /// - lags: one and two seasons, and seven for a season of 24 (hours: the week); none without
    ///   a season;
    /// - the series id embedding: none unless asked for (`options.id_embedding`: a size, or 0
    ///   for [`id_dim_for`] the panel's series; ids in panel order).
    ///
    /// The negative binomial, a distribution of counts, takes the mean-abs scaling (its mean is
    /// the scale times a positive output; `Auto` becomes mean-abs).
    ///
    /// # Errors
    /// [`Error::Config`] for a zero season, horizon or context, or the negative binomial with a
    /// scaling other than mean-abs or auto.
    pub fn resolve(
        panel: &Panel,
        target: &str,
        id_column: Option<&str>,
        time_column: Option<&str>,
        known: &[String],
        options: &GlobalOptions,
    ) -> Result<GlobalSpec> {
        // a size longer than every series can train nothing, and bounding the sizes the user
        // gives keeps the arithmetic on them (a window of context + horizon) from overflowing
        let longest = panel.series.iter().map(|s| s.len()).max().unwrap_or(0);
        for (flag, v) in [
            ("season", options.season),
            ("horizon", options.horizon),
            ("context", options.context),
        ] {
            if let Some(v) = v.filter(|&v| v > longest) {
                return Err(Error::Config(format!(
                    "--{flag} {v} is longer than the longest series ({longest} steps); give a smaller --{flag}"
                )));
            }
        }
        let season = options.season.unwrap_or_else(|| panel.freq.season());
        let horizon = options
            .horizon
            .unwrap_or(if season > 1 { 2 * season } else { 12 });
        let context = options.context.unwrap_or((2 * horizon).max(3 * season));
        if season == 0 || horizon == 0 || context == 0 {
            return Err(Error::Config(
                "--season, --horizon and --context must be at least 1".into(),
            ));
        }
        if options.distribution.needs_scale()
            && !matches!(options.scaling, Scaling::Auto | Scaling::MeanAbs)
        {
            return Err(Error::Config(format!(
                "--distribution negative-binomial models counts scaled by their mean absolute value; --scaling {} does not apply (leave it out, or give --scaling mean-abs)",
                options.scaling.name()
            )));
        }
        let mut lags = Vec::new();
        if season > 1 {
            lags.extend([season, 2 * season]);
            // a day of hours: the week too (hourly data, or an index with --season 24)
            if season == 24 {
                lags.push(168);
            }
        }
        let (mut mean, mut std) = (vec![0.0f32; known.len()], vec![1.0f32; known.len()]);
        for k in 0..known.len() {
            let values = || panel.series.iter().flat_map(|x| x.known[k].iter());
            let n = values().count();
            if n > 0 {
                // two passes: the mean, then the spread about it (no cancellation for values
                // far from zero); a column is constant only when every value is the same, so
                // that a flag of 0 and 1e-7 is a flag as much as one of 0 and 1
                let m = values().map(|&v| v as f64).sum::<f64>() / n as f64;
                let var = values().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n as f64;
                mean[k] = m as f32;
                std[k] = if var > 0.0 {
                    (var.sqrt() as f32).max(f32::MIN_POSITIVE)
                } else {
                    1.0
                };
            }
        }
        Ok(GlobalSpec {
            target: target.to_string(),
            id_column: id_column.map(str::to_string),
            time_column: time_column.map(str::to_string),
            known: known.to_vec(),
            known_mean: mean,
            known_std: std,
            freq: format!("{:?}", panel.freq),
            season,
            lags,
            context,
            horizon,
            distribution: options.distribution,
            calendar: calendar_feature_count(panel.freq, season),
            // `Auto` is decided by the job, on a validation split
            scaling: match options.scaling {
                Scaling::Auto => Scaling::MeanAbs,
                other => other,
            },
            ids: panel.series.iter().map(|s| s.id.clone()).collect(),
            id_dim: match options.id_embedding {
                None => 0,
                Some(0) => id_dim_for(panel.series.len()),
                Some(d) => d,
            },
            // set by the job, which trains them
            members: 0,
            // set by the job, which knows the holdout
            trained_until: Vec::new(),
            own_size_scale: true,
        })
    }

    /// The frequency.
    ///
    /// # Errors
    /// [`Error::Format`] if the saved name is not one (an edited `config.json`).
    pub fn frequency(&self) -> Result<Freq> {
        Freq::from_name(&self.freq).ok_or_else(|| Error::Format {
            path: "config.json".into(),
            reason: format!("unknown frequency `{}`", self.freq),
        })
    }

    /// The network's head: the distribution's parameters at every step.
    pub fn head(&self) -> crate::model::Head {
        crate::model::Head::PerStep {
            outputs: self.distribution.params(),
        }
    }

    /// Input features per step.
    pub fn features(&self) -> usize {
        2 + 2 * self.lags.len() + self.known.len() + self.calendar + 1
    }

    /// Steps of one window: context and horizon.
    pub fn window(&self) -> usize {
        self.context + self.horizon
    }

    /// The network's input: the features, and the series id embedding when `id_dim > 0`.
    pub fn input_kind(&self) -> InputKind {
        if self.id_dim > 0 {
            InputKind::DenseWithIds {
                features: self.features(),
                ids: self.ids.len(),
                dim: self.id_dim,
            }
        } else {
            InputKind::Dense {
                features: self.features(),
            }
        }
    }

    /// Each series' row of the id embedding: its place in [`Self::ids`], or `None` for a series
    /// not seen in training (empty without an embedding).
    pub fn id_rows(&self, series: &[Prepared]) -> Vec<Option<u32>> {
        if self.id_dim == 0 {
            return Vec::new();
        }
        let place: std::collections::HashMap<&str, u32> = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i as u32))
            .collect();
        series
            .iter()
            .map(|p| place.get(p.id.as_str()).copied())
            .collect()
    }
}

/// Model inputs: features alone, or with ids when there are any.
fn dense_inputs<'a>(x: &'a [f32], ids: &'a [u32]) -> Inputs<'a> {
    if ids.is_empty() {
        Inputs::Dense(x)
    } else {
        Inputs::DenseWithIds { x, ids }
    }
}

/// A copy of `model` whose id embedding has one more row, the mean of its rows: the row of a
/// series not seen in training (its id is the former row count).
fn with_mean_id_row(model: &SequenceModel) -> Result<SequenceModel> {
    let mut cfg = model.config().clone();
    let InputKind::DenseWithIds { features, ids, dim } = cfg.input else {
        return Err(Error::Config("the model has no id embedding".into()));
    };
    cfg.input = InputKind::DenseWithIds {
        features,
        ids: ids + 1,
        dim,
    };
    let mut out = SequenceModel::new(&cfg, 0)?;
    // the caller's stop flag comes along (Python's abandoned predict and evaluate)
    out.stop = model.stop.clone();
    for info in model.store.tensors() {
        let v = &model.store.values[info.range()];
        if info.name == "id_embedding.weight" {
            // rows (N, E) -> (N + 1, E), row N = Σ_n rows[n] / N
            let mut w = v.to_vec();
            for d in 0..dim {
                let sum: f64 = (0..ids).map(|n| v[n * dim + d] as f64).sum();
                w.push((sum / ids as f64) as f32);
            }
            out.store.set(&info.name, &[ids + 1, dim], &w)?;
        } else {
            out.store.set(&info.name, &info.shape, v)?;
        }
    }
    Ok(out)
}

/// One series made ready for windows: values, standardised covariates and calendar features
/// for every step, the future steps included when forecasting.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The series id.
    pub id: String,
    /// The times of every step (history, then future steps when forecasting).
    pub times: Vec<Time>,
    /// The target (NaN: missing or future).
    pub y: Vec<f32>,
    /// Known covariates, `(steps, K)`, standardised.
    known: Vec<f32>,
    /// Calendar features, `(steps, calendar)`.
    cal: Vec<f32>,
    /// Steps with history: the forecast origin when forecasting.
    pub history: usize,
}

impl Prepared {
    /// The steps every input of the series is prepared for (its public `y` could be resized).
    fn steps(&self, spec: &GlobalSpec) -> usize {
        let (k, c) = (spec.known.len(), spec.calendar);
        let n = self.y.len().min(self.times.len());
        let n = self.known.len().checked_div(k).map_or(n, |m| n.min(m));
        self.cal.len().checked_div(c).map_or(n, |m| n.min(m))
    }
}

/// Prepares the series of a panel: `history[i]` steps of each series are history (the rest,
/// if any, are future steps with known covariates); `extra` future steps are added past the
/// end of each series (their known covariates must be in the file, so `extra` is 0 with known
/// columns).
///
/// # Errors
/// [`Error::Format`] on a frequency the spec does not know.
pub fn prepare(
    spec: &GlobalSpec,
    panel: &Panel,
    history: &[usize],
    extra: usize,
) -> Result<Vec<Prepared>> {
    let freq = spec.frequency()?;
    if panel.freq != freq {
        return Err(Error::Config(format!(
            "the data's times are {}, but the model was trained on {freq} data; give it data of the same frequency",
            panel.freq
        )));
    }
    let (k, c) = (spec.known.len(), spec.calendar);
    let mut out = Vec::with_capacity(panel.series.len());
    for (s, &hist) in panel.series.iter().zip(history) {
        let mut times = s.times.clone();
        times.extend(s.checked_future_times(extra, freq).ok_or_else(|| {
            Error::Config(format!(
                "series `{}` (line {}): the {extra} steps after its last time `{}` (a window reaches the model's whole horizon, however few steps are asked for) run past the last time that can be written (the year 9999, or a 64-bit index)",
                s.id,
                s.first_line,
                s.times.last().map(ToString::to_string).unwrap_or_default()
            ))
        })?);
        let n = times.len();
        let mut y = s.target.clone();
        y.resize(n, f32::NAN);
        for v in &mut y[hist.min(n)..] {
            *v = f32::NAN;
        }
        let mut known = vec![0.0f32; n * k];
        for j in 0..k {
            for (t, &v) in s.known[j].iter().enumerate() {
                known[t * k + j] = (v - spec.known_mean[j]) / spec.known_std[j];
            }
        }
        let mut cal = Vec::with_capacity(n * c);
        for t in &times {
            cal.extend(calendar_features(t, freq, spec.season));
        }
        out.push(Prepared {
            id: s.id.clone(),
            times,
            y,
            known,
            cal,
            history: hist.min(n),
        });
    }
    Ok(out)
}

/// The scaling of a window, from the known values in the context before `origin`:
/// location 0 and the mean absolute value for [`Scaling::MeanAbs`], the mean and standard
/// deviation for [`Scaling::Standard`], a least-squares line and its residuals' standard
/// deviation, or the mean absolute change between consecutive steps if larger, for
/// [`Scaling::Trend`] and [`Scaling::LogTrend`] (a slope only from two known values on). A
/// scale of 0 (or no known value) becomes the mean absolute value (or 1).
pub fn window_scale(spec: &GlobalSpec, p: &Prepared, origin: usize) -> WindowScale {
    let start = origin.saturating_sub(spec.context);
    let log = spec.scaling.log();
    let m = spec.season.max(1);
    let (mut s, mut s2, mut a, mut n) = (0.0f64, 0.0f64, 0.0f64, 0usize);
    let (mut sx, mut sxx, mut sxy) = (0.0f64, 0.0f64, 0.0f64);
    // steps between consecutive known values: their mean absolute change
    let (mut prev, mut d, mut nd): (Option<f64>, f64, usize) = (None, 0.0, 0);
    for (j, &v) in p.y[start..origin.min(p.y.len())].iter().enumerate() {
        if v.is_nan() || (log && v <= 0.0) {
            prev = None;
            continue;
        }
        let v = if log { (v as f64).ln() } else { v as f64 };
        if let Some(u) = prev {
            d += (v - u).abs();
            nd += 1;
        }
        prev = Some(v);
        let x = (start + j) as f64 - origin as f64;
        s += v;
        s2 += v * v;
        a += v.abs();
        sx += x;
        sxx += x * x;
        sxy += x * v;
        n += 1;
    }
    let fixed = |loc: f32, scale: f32| WindowScale {
        loc,
        slope: 0.0,
        scale,
        log,
        season: 0,
        origin,
    };
    // a context of zeros (or of missing values) has no size: the series' own size before the
    // window (its mean absolute value over up to ten contexts), so that a series resting at
    // zero is forecast in its own units and not in units of 1; 1 for a series with nothing
    // else either, and for models trained before (`own_size_scale`)
    let own_size = || {
        if !spec.own_size_scale {
            return 1.0;
        }
        let (mut a, mut n) = (0.0f64, 0usize);
        let end = start.min(p.y.len());
        for &v in &p.y[end.saturating_sub(10 * spec.context)..end] {
            if !(v.is_nan() || (log && v <= 0.0)) {
                a += if log { (v as f64).ln() } else { v as f64 }.abs();
                n += 1;
            }
        }
        if a > 0.0 {
            a / n as f64
        } else {
            1.0
        }
    };
    if n == 0 {
        return fixed(0.0, own_size() as f32);
    }
    let nf = n as f64;
    let mean_abs = a / nf;
    let or_size = |sd: f64| {
        if sd > 1e-9 * mean_abs.max(1e-30) {
            sd
        } else if mean_abs > 0.0 {
            mean_abs
        } else {
            own_size()
        }
    };
    match spec.scaling {
        Scaling::MeanAbs | Scaling::Auto => fixed(0.0, or_size(0.0) as f32),
        Scaling::Standard => {
            let m = s / nf;
            let sd = (s2 / nf - m * m).max(0.0).sqrt();
            fixed(m as f32, or_size(sd) as f32)
        }
        Scaling::Trend | Scaling::LogTrend => {
            let (mx, my) = (sx / nf, s / nf);
            let vxx = sxx / nf - mx * mx;
            let slope = if n >= 2 && vxx > 1e-12 {
                (sxy / nf - mx * my) / vxx
            } else {
                0.0
            };
            // residual variance of the line: var(y) - slope² var(x); at least the mean step
            // change, so that a line through a few points does not magnify the values
            let var = (s2 / nf - my * my - slope * slope * vxx).max(0.0);
            let step = if nd > 0 { d / nd as f64 } else { 0.0 };
            WindowScale {
                loc: (my - slope * mx) as f32,
                slope: slope as f32,
                scale: or_size(var.sqrt().max(step)) as f32,
                log,
                season: 0,
                origin,
            }
        }
        Scaling::Seasonal | Scaling::LogSeasonal => {
            // the mean absolute seasonal difference within the context
            let (mut d, mut nd) = (0.0f64, 0usize);
            let f = |v: f32| -> Option<f64> {
                if v.is_nan() || (log && v <= 0.0) {
                    None
                } else if log {
                    Some((v as f64).ln())
                } else {
                    Some(v as f64)
                }
            };
            for t in (start + m)..origin.min(p.y.len()) {
                if let (Some(a), Some(b)) = (f(p.y[t]), f(p.y[t - m])) {
                    d += (a - b).abs();
                    nd += 1;
                }
            }
            let mad = if nd > 0 { d / nd as f64 } else { 0.0 };
            WindowScale {
                loc: (s / nf) as f32,
                slope: 0.0,
                scale: or_size(mad) as f32,
                log,
                season: m,
                origin,
            }
        }
    }
}

/// Writes the inputs `x (T, I)` and scaled targets `y (T)` (NaN: not scored) of the window
/// whose horizon starts at `origin`; values at or after `origin` are never inputs. Steps before
/// the series' start are zeros. Returns the window's scaling.
///
/// # Panics
/// If the series has fewer than `origin + horizon` steps (callers prepare future steps).
pub fn fill_window(
    spec: &GlobalSpec,
    p: &Prepared,
    origin: usize,
    x: &mut [f32],
    y: &mut [f32],
) -> WindowScale {
    let (ctx, t_len, i_len) = (spec.context, spec.window(), spec.features());
    let (k, c) = (spec.known.len(), spec.calendar);
    let ws = window_scale(spec, p, origin);
    let level = ws.level();
    let known_at = |j: isize| -> Option<f32> {
        if j >= 0 && (j as usize) < origin {
            ws.scaled(&p.y, j as usize)
        } else {
            None
        }
    };
    let s0 = origin as isize - ctx as isize;
    for step in 0..t_len {
        let t = s0 + step as isize;
        let row = &mut x[step * i_len..(step + 1) * i_len];
        row.fill(0.0);
        if t < 0 {
            y[step] = f32::NAN;
            continue;
        }
        let tu = t as usize;
        let mut f = 0;
        for lag in std::iter::once(1).chain(spec.lags.iter().copied()) {
            if let Some(v) = known_at(t - lag as isize) {
                row[f] = v;
                row[f + 1] = 1.0;
            }
            f += 2;
        }
        row[f..f + k].copy_from_slice(&p.known[tu * k..(tu + 1) * k]);
        f += k;
        row[f..f + c].copy_from_slice(&p.cal[tu * c..(tu + 1) * c]);
        f += c;
        row[f] = level;
        y[step] = if tu >= origin {
            ws.scaled(&p.y, tu).unwrap_or(f32::NAN)
        } else {
            f32::NAN
        };
    }
    ws
}

/// Training data of the global forecaster: windows drawn at random over all series and
/// origins; validation on each series' last window.
pub struct GlobalData {
    spec: GlobalSpec,
    series: Vec<Prepared>,
    /// (series, origin) of every training window.
    windows: Vec<(u32, u32)>,
    /// Each series' row of the id embedding (empty without one).
    id_rows: Vec<u32>,
    batch: usize,
    val_x: Vec<f32>,
    val_y: Vec<f32>,
    /// The validation targets' scales (empty unless the distribution reads them).
    val_scales: Vec<f32>,
    /// The validation windows' id rows (empty without an embedding).
    val_ids: Vec<u32>,
    val_n: usize,
}

impl GlobalData {
    /// Training windows of `series` (each with `history` steps of training data): every origin
    /// from one season (or one step) in to `history - horizon`, so that a window's horizon lies
    /// in the training data; validation on the last of them for each series.
    ///
    /// # Errors
    /// [`Error::Config`] when no series is long enough for one window, or a series is not among
    /// the spec's ids (with an id embedding).
    pub fn new(spec: GlobalSpec, series: Vec<Prepared>, batch: usize) -> Result<GlobalData> {
        let id_rows = spec
            .id_rows(&series)
            .into_iter()
            .zip(&series)
            .map(|(r, p)| {
                r.ok_or_else(|| {
                    Error::Config(format!(
                        "series `{}` is not among the {} series the model was started on; resume on the same file",
                        p.id,
                        spec.ids.len()
                    ))
                })
            })
            .collect::<Result<Vec<u32>>>()?;
        let h = spec.horizon;
        let first = spec.season.max(1);
        let mut windows = Vec::new();
        let mut last = Vec::new();
        for (i, p) in series.iter().enumerate() {
            if p.history < first + h {
                continue;
            }
            for origin in first..=p.history - h {
                windows.push((i as u32, origin as u32));
            }
            last.push((i, p.history - h));
        }
        if windows.is_empty() {
            return Err(Error::Config(format!(
                "no series has the {} steps one training window needs (one season of history and the horizon of {h}); lower --horizon or --season",
                first + h
            )));
        }
        let (t_len, i_len) = (spec.window(), spec.features());
        let mut val_x = vec![0.0f32; last.len() * t_len * i_len];
        let mut val_y = vec![0.0f32; last.len() * t_len];
        let val_ids = if id_rows.is_empty() {
            Vec::new()
        } else {
            last.iter().map(|&(i, _)| id_rows[i]).collect()
        };
        let mut val_scales = Vec::new();
        for (v, &(i, origin)) in last.iter().enumerate() {
            let ws = fill_window(
                &spec,
                &series[i],
                origin,
                &mut val_x[v * t_len * i_len..(v + 1) * t_len * i_len],
                &mut val_y[v * t_len..(v + 1) * t_len],
            );
            if spec.distribution.needs_scale() {
                val_scales.extend(std::iter::repeat_n(ws.scale, t_len));
            }
        }
        Ok(GlobalData {
            val_n: last.len(),
            spec,
            series,
            windows,
            id_rows,
            batch,
            val_x,
            val_y,
            val_scales,
            val_ids,
        })
    }

    /// Number of training windows.
    pub fn windows(&self) -> usize {
        self.windows.len()
    }
}

impl TrainTask for GlobalData {
    fn epoch_items(&self) -> u64 {
        self.windows.len() as u64
    }

    fn batch_items(&self) -> u64 {
        self.batch as u64
    }

    fn next_batch(&mut self, rng: &mut ChaCha8Rng, _position: u64) -> OwnedBatch {
        let (b, t_len, i_len) = (self.batch, self.spec.window(), self.spec.features());
        let mut out = OwnedBatch {
            batch: b,
            seq_len: t_len,
            items: b as u64,
            dense: vec![0.0; b * t_len * i_len],
            values: vec![0.0; b * t_len],
            distribution: Some(self.spec.distribution),
            ..Default::default()
        };
        for r in 0..b {
            let (i, origin) = self.windows[rng.gen_range(0..self.windows.len())];
            if !self.id_rows.is_empty() {
                out.ids.push(self.id_rows[i as usize]);
            }
            let ws = fill_window(
                &self.spec,
                &self.series[i as usize],
                origin as usize,
                &mut out.dense[r * t_len * i_len..(r + 1) * t_len * i_len],
                &mut out.values[r * t_len..(r + 1) * t_len],
            );
            if self.spec.distribution.needs_scale() {
                out.scales.extend(std::iter::repeat_n(ws.scale, t_len));
            }
        }
        out
    }

    fn validate(&mut self, model: &mut SequenceModel) -> Result<f32> {
        let carry = model.carry.take();
        let (t_len, i_len) = (self.spec.window(), self.spec.features());
        // at most VALIDATION_CHUNK windows a pass (a probe, 2026-12-07: 80,000 series' windows
        // in one pass asked for 35 GB); their mean losses weighted by the values each counted
        let (mut sum, mut count) = (0.0f64, 0usize);
        let mut single = None;
        let mut first = 0;
        while first < self.val_n {
            let n = VALIDATION_CHUNK.min(self.val_n - first);
            let rows = first..first + n;
            let steps = rows.start * t_len..rows.end * t_len;
            let out = model.evaluate(&Batch {
                inputs: dense_inputs(
                    &self.val_x[rows.start * t_len * i_len..rows.end * t_len * i_len],
                    if self.val_ids.is_empty() {
                        &[]
                    } else {
                        &self.val_ids[rows.clone()]
                    },
                ),
                targets: Targets::Distribution {
                    values: &self.val_y[steps.clone()],
                    dist: self.spec.distribution,
                    scales: (!self.val_scales.is_empty()).then(|| &self.val_scales[steps]),
                },
                batch: n,
                seq_len: t_len,
                lengths: None,
            });
            let out = match out {
                Ok(o) => o,
                Err(e) => {
                    model.carry = carry;
                    return Err(e);
                }
            };
            // one pass: its loss as it is (bit for bit what a single pass always gave)
            if n == self.val_n {
                single = Some(out.loss);
            }
            if out.count > 0 {
                sum += out.loss as f64 * out.count as f64;
                count += out.count;
            }
            first += n;
        }
        model.carry = carry;
        Ok(single.unwrap_or(if count > 0 {
            (sum / count as f64) as f32
        } else {
            f32::NAN
        }))
    }
}

/// The forecast of one series from one origin: the times, the median and the quantiles, in
/// the series' own units.
#[derive(Clone, Debug, Serialize)]
pub struct SeriesForecast {
    /// The series id.
    pub id: String,
    /// The forecast steps' times.
    #[serde(skip)]
    pub times: Vec<Time>,
    /// The median of each step.
    pub median: Vec<f64>,
    /// `(level, value per step)` for each requested quantile level.
    pub quantiles: Vec<(f64, Vec<f64>)>,
}

/// Validation windows scored in one forward pass (the activations of 1,024 windows of M4's 144
/// steps through the default model take about 440 MB; M4's 414 series are one pass).
const VALIDATION_CHUNK: usize = 1024;

/// Series forecast in one forward pass (the activations of a chunk of 256 windows of M4's 144
/// steps take tens of megabytes).
const FORECAST_CHUNK: usize = 256;

/// The most quantile levels one forecast gives.
pub const MAX_LEVELS: usize = 100;

/// Forecasts `steps` (at most the horizon) from `origins[i]` of each prepared series (which
/// must have `origins[i] + horizon` steps), in batches of up to 256 series. With an id
/// embedding, a series seen in training reads its row, another the mean of the rows (through a
/// copy of the model with that row appended).
///
/// # Errors
/// [`Error::Config`] for more steps than the horizon, a quantile level outside (0, 1), more
/// than [`MAX_LEVELS`] levels or one given twice, an origin without `horizon` steps after it;
/// [`Error::Shape`] for another number of origins than of series; model errors.
pub fn forecast(
    spec: &GlobalSpec,
    model: &mut SequenceModel,
    series: &[Prepared],
    origins: &[usize],
    steps: usize,
    levels: &[f64],
) -> Result<Vec<SeriesForecast>> {
    if steps == 0 || steps > spec.horizon {
        return Err(Error::Config(format!(
            "--steps must be between 1 and the model's horizon ({}); train with a longer --horizon to forecast further",
            spec.horizon
        )));
    }
    if let Some(q) = levels.iter().find(|&&q| !(q > 0.0 && q < 1.0)) {
        return Err(Error::Config(format!(
            "quantile level {q} is not between 0 and 1"
        )));
    }
    if levels.len() > MAX_LEVELS {
        return Err(Error::Config(format!(
            "{} quantile levels asked for; give at most {MAX_LEVELS}",
            levels.len()
        )));
    }
    if let Some((i, q)) = levels
        .iter()
        .enumerate()
        .find(|&(i, q)| levels[..i].contains(q))
    {
        return Err(Error::Config(format!(
            "quantile level {q} is given twice (levels {} and {}); give each level once",
            levels[..i].iter().position(|x| x == q).map_or(0, |k| k + 1),
            i + 1
        )));
    }
    // (a library probe, 2026-12-07: fewer origins than series, or an origin without its
    // horizon of steps prepared, panicked in `fill_window`)
    if origins.len() != series.len() {
        return Err(Error::shape(
            "forecast origins (one per series)",
            series.len(),
            origins.len(),
        ));
    }
    if let Some((p, &o)) = series.iter().zip(origins).find(|(p, &o)| {
        o.checked_add(spec.horizon)
            .is_none_or(|end| end > p.steps(spec))
    }) {
        return Err(Error::Config(format!(
            "series `{}`: a forecast from step {o} reads the {} steps of the model's horizon after it, but the series is prepared with {} steps; prepare it with its future steps (`prepare`'s `extra`)",
            p.id,
            spec.horizon,
            p.steps(spec)
        )));
    }
    let (t_len, i_len, p_len) = (spec.window(), spec.features(), spec.distribution.params());
    let b = series.len();
    let mut x = vec![0.0f32; b * t_len * i_len];
    let mut y = vec![0.0f32; b * t_len];
    let mut scales = Vec::with_capacity(b);
    for (r, (p, &origin)) in series.iter().zip(origins).enumerate() {
        scales.push(fill_window(
            spec,
            p,
            origin,
            &mut x[r * t_len * i_len..(r + 1) * t_len * i_len],
            &mut y[r * t_len..(r + 1) * t_len],
        ));
    }
    let rows = spec.id_rows(series);
    let unseen = rows.iter().any(Option::is_none);
    // a series not seen in training: row N of a copy with the mean row appended
    let ids: Vec<u32> = rows
        .iter()
        .map(|r| r.unwrap_or(spec.ids.len() as u32))
        .collect();
    let mut extended = if unseen {
        Some(with_mean_id_row(model)?)
    } else {
        None
    };
    let model = extended.as_mut().unwrap_or(model);
    let carry = model.carry.take();
    // a chunk of series at a time: the forward pass holds every step's activations of its
    // batch, so thousands of series at once would take gigabytes
    let mut out = Vec::with_capacity(b * t_len * p_len);
    let mut failed = None;
    for r0 in (0..b).step_by(FORECAST_CHUNK) {
        let r1 = (r0 + FORECAST_CHUNK).min(b);
        let xs = &x[r0 * t_len * i_len..r1 * t_len * i_len];
        let chunk_ids = if ids.is_empty() {
            &ids[..]
        } else {
            &ids[r0..r1]
        };
        match model.predict(dense_inputs(xs, chunk_ids), r1 - r0, t_len, None) {
            Ok(o) => out.extend_from_slice(o),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    model.carry = carry;
    if let Some(e) = failed {
        return Err(e);
    }
    let dist = spec.distribution;
    let stop = model.stop.clone();
    // each series' quantiles (a Student-t quantile is a root search: about 0.3 µs, so 99
    // levels of thousands of series take seconds), over the threads when there are many;
    // every value is computed alone, so the result does not depend on the thread count
    let one = |r: usize| -> Result<SeriesForecast> {
        if stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Err(Error::Interrupted);
        }
        let (p, origin) = (&series[r], origins[r]);
        let ws = scales[r];
        let raw = |h: usize| {
            let row = r * t_len + spec.context + h;
            &out[row * p_len..(row + 1) * p_len]
        };
        // the q-quantile of step h in the series' units: a count of the negative binomial
        // (read with the window's scale; its scaling has location 0), else mapped back
        let value = |h: usize, q: f64| {
            if dist.needs_scale() {
                dist.quantile_scaled(raw(h), q, ws.scale as f64)
            } else if q == 0.5 {
                ws.unscaled(&p.y, origin + h, dist.median(raw(h)))
            } else {
                ws.unscaled(&p.y, origin + h, dist.quantile(raw(h), q))
            }
        };
        Ok(SeriesForecast {
            id: p.id.clone(),
            times: p.times[origin..origin + steps].to_vec(),
            median: (0..steps).map(|h| value(h, 0.5)).collect(),
            quantiles: levels
                .iter()
                .map(|&q| (q, (0..steps).map(|h| value(h, q)).collect()))
                .collect(),
        })
    };
    let values = b * steps * (levels.len() + 1);
    if values >= 100_000 && crate::kernels::num_threads() > 1 {
        use rayon::prelude::*;
        let threads = crate::kernels::num_threads();
        (0..b)
            .into_par_iter()
            // one piece per thread of the budget: no more workers than it
            .with_min_len(b.div_ceil(threads).max(1))
            .map(one)
            .collect()
    } else {
        (0..b).map(one).collect()
    }
}

/// The time column's name in a forecast: the model's time column, else `t` (or `time`, `step`,
/// `t_`... when the id or target column is named so).
pub fn time_column_name(spec: &GlobalSpec) -> String {
    if let Some(t) = &spec.time_column {
        return t.clone();
    }
    let taken = |n: &str| spec.id_column.as_deref() == Some(n) || spec.target == n;
    ["t", "time", "step"]
        .into_iter()
        .map(String::from)
        .chain((1..).map(|k| format!("t{}", "_".repeat(k))))
        .find(|n| !taken(n))
        .unwrap_or_default()
}

/// Checks that a forecast's columns have distinct names: a quantile column `q<level>` may not
/// be named as the id, time or target column.
///
/// # Errors
/// [`Error::Config`] naming the column and what to do.
pub fn check_output_names(spec: &GlobalSpec, levels: &[f64]) -> Result<()> {
    let time = time_column_name(spec);
    for q in levels {
        let name = format!("q{q}");
        let clash = [
            ("series id", spec.id_column.as_deref()),
            ("time", Some(time.as_str())),
            ("target", Some(spec.target.as_str())),
        ]
        .into_iter()
        .find(|(_, n)| *n == Some(name.as_str()));
        if let Some((role, _)) = clash {
            return Err(Error::Config(format!(
                "the {role} column is named `{name}`, as the forecast's column of the quantile {q} is: the two would be confused; ask for other quantiles, or rename the column in the data and train again"
            )));
        }
    }
    Ok(())
}

/// The output CSV of a forecast: the id column (when the model has one), the time column
/// ([`time_column_name`]), the target column holding the median, and `q<level>` per quantile.
pub fn forecast_csv(spec: &GlobalSpec, forecasts: &[SeriesForecast]) -> String {
    let mut header = Vec::new();
    if let Some(id) = &spec.id_column {
        header.push(id.clone());
    }
    header.push(time_column_name(spec));
    header.push(spec.target.clone());
    if let Some(f) = forecasts.first() {
        for (q, _) in &f.quantiles {
            header.push(format!("q{q}"));
        }
    }
    // each row made as it is written: held all at once, 99 quantiles of 5,000 series took
    // gigabytes of small strings
    let rows = forecasts.iter().flat_map(|f| {
        (0..f.median.len()).map(move |h| {
            let mut row = Vec::with_capacity(3 + f.quantiles.len());
            if spec.id_column.is_some() {
                row.push(f.id.clone());
            }
            row.push(f.times[h].to_string());
            row.push(format!("{}", f.median[h]));
            for (_, v) in &f.quantiles {
                row.push(format!("{}", v[h]));
            }
            row
        })
    });
    crate::data::tabular::csv_text(std::iter::once(header).chain(rows))
}

/// Combines the forecasts of several models of the same series (`runs[model][series]`): each
/// step's median and each quantile is the median over the models (the mean of the middle two
/// for an even count), so one model gone astray does not move the forecast. Quantiles stay in
/// order: a median of nondecreasing functions of the level is nondecreasing.
///
/// # Panics
/// If `runs` is empty or the runs differ in series, steps or levels.
pub fn combine(mut runs: Vec<Vec<SeriesForecast>>) -> Vec<SeriesForecast> {
    if runs.len() == 1 {
        return runs.pop().expect("one run");
    }
    let median = |mut v: Vec<f64>| -> f64 {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let mut out = runs[0].clone();
    for (i, f) in out.iter_mut().enumerate() {
        for h in 0..f.median.len() {
            f.median[h] = median(runs.iter().map(|r| r[i].median[h]).collect());
            for (j, (_, q)) in f.quantiles.iter_mut().enumerate() {
                q[h] = median(runs.iter().map(|r| r[i].quantiles[j].1[h]).collect());
            }
        }
    }
    out
}

/// The history of each series in a file to forecast from: the steps up to its last known
/// target (later rows, with an empty target, are the future steps whose known covariates the
/// forecast reads).
pub fn histories(panel: &Panel) -> Vec<usize> {
    panel
        .series
        .iter()
        .map(crate::data::panel::Series::history_len)
        .collect()
}

/// The values of history a series needs before a forecast's first step, and why in words:
/// the context, or a season and one more where that is longer (the seasonal inputs read it).
pub fn history_needed(spec: &GlobalSpec) -> (usize, String) {
    let need = spec.context.max(spec.season + 1);
    let why = if need > spec.context {
        format!(
            "a season of {} steps and one more, which its seasonal inputs read; its context is {} steps",
            spec.season, spec.context
        )
    } else {
        format!("its context of {need} steps")
    };
    (need, why)
}

/// Checks that a panel read for forecasting fits the spec: its time kind, each series' history
/// at least the context, and (with known columns) `steps` future rows after the history.
///
/// # Errors
/// [`Error::Format`] naming the series and what is missing.
pub fn check_forecast_panel(
    spec: &GlobalSpec,
    panel: &Panel,
    history: &[usize],
    steps: usize,
    time_kind: Option<TimeKind>,
    file: &str,
) -> Result<()> {
    if let Some(kind) = time_kind {
        if panel.time_kind != kind {
            return Err(Error::Format {
                path: file.into(),
                reason: format!(
                    "its times are written as {:?}, the model was trained on {kind:?}",
                    panel.time_kind
                ),
            });
        }
    }
    for (s, &h) in panel.series.iter().zip(history) {
        let (need, why) = history_needed(spec);
        if h < need {
            return Err(Error::Format {
                path: file.into(),
                reason: format!(
                    "series `{}` (line {}) has {h} known values, fewer than the {need} the model needs ({why}); give it more history or leave it out",
                    s.id,
                    s.first_line,
                ),
            });
        }
        if spec.scaling.log()
            && !s.target[h.saturating_sub(spec.context)..h]
                .iter()
                .any(|&v| v > 0.0)
        {
            return Err(Error::Format {
                path: file.into(),
                reason: format!(
                    "series `{}` (line {}) has no value above 0 in its last {} steps, and the model reads values through their logarithm (--scaling {}: values at or below 0 are missing); forecast it with a model of another scaling",
                    s.id,
                    s.first_line,
                    spec.context,
                    spec.scaling.name()
                ),
            });
        }
        if !spec.known.is_empty() && s.times.len() < h + steps {
            return Err(Error::Format {
                path: file.into(),
                reason: format!(
                    "series `{}` (first on line {}) has {} rows after its last value, but the known columns ({}) are needed for each of the {steps} forecast steps: add those rows with the target left empty",
                    s.id,
                    s.first_line,
                    s.times.len() - h,
                    spec.known.join(", ")
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Head, ModelConfig};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// The copy that forecasts a series of an unseen id keeps the caller's stop flag (the
    /// second review, 2026-12-07: an abandoned Python predict ran on through it).
    #[test]
    fn the_unseen_id_copy_keeps_the_stop_flag() {
        let cfg = ModelConfig {
            input: InputKind::DenseWithIds {
                features: 3,
                ids: 2,
                dim: 2,
            },
            hidden_size: 4,
            num_layers: 1,
            head: Head::PerStep { outputs: 2 },
            ..Default::default()
        };
        let mut m = SequenceModel::new(&cfg, 1).unwrap();
        let flag = Arc::new(AtomicBool::new(true));
        m.stop = Some(Arc::clone(&flag));
        let copy = with_mean_id_row(&m).unwrap();
        assert!(copy.stop.as_ref().is_some_and(|s| Arc::ptr_eq(s, &flag)));
        flag.store(false, Ordering::SeqCst);
        m.stop = None;
        assert!(with_mean_id_row(&m).unwrap().stop.is_none());
    }
}
