//! Time series: reading a CSV, transforms, a scaler fitted on the training part only, windows,
//! and forecasting with inverse transforms; RMSE, MAE and MAPE.
//!
//! ```
//! use lstm::data::series::{apply_transform, invert_forecast, Transform};
//! let x = [100.0, 110.0, 121.0];
//! let t = apply_transform(&x, Transform::LogDiff, "x").unwrap();
//! assert_eq!(t.len(), 2);
//! let back = invert_forecast(&t, 100.0, Transform::LogDiff);
//! assert!((back[1] - 121.0).abs() < 1e-9);
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::panel::{shown, Freq, Time};
use crate::data::tabular::Delimited;
use crate::error::{Error, Result};
use crate::model::{Inputs, SequenceModel};

/// A value transform applied before scaling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Transform {
    /// Values as they are.
    #[default]
    None,
    /// Natural logarithm (values must be positive).
    Log,
    /// First differences.
    Diff,
    /// First differences of the logarithm (growth rates).
    #[serde(alias = "log_diff")]
    LogDiff,
}

/// Everything needed to turn raw rows into model inputs and predictions back into values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesSpec {
    /// Input columns; the first is the forecast target.
    pub columns: Vec<String>,
    /// Date column, if any.
    pub date_column: Option<String>,
    /// Transform.
    pub transform: Transform,
    /// Scaler mean per column (of the transformed values, training part only).
    pub mean: Vec<f64>,
    /// Scaler standard deviation per column.
    pub std: Vec<f64>,
    /// Input window.
    pub window: usize,
    /// Steps predicted at once.
    pub horizon: usize,
    /// The target's rows trained on, by which `lstm eval` knows a copy of the training data
    /// (absent in model directories written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained: Option<TrainedRows>,
    /// The frequency of the training file's dates, as [`Freq`]'s debug name (`None` without a
    /// date column, for dates that are labels, and in directories written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freq: Option<String>,
}

/// The rows of a target column trained on (the first `rows`), as fingerprints of their first
/// and last values: a file whose target holds the same run of values is a copy of the
/// training data (shortened, lengthened, renamed), and its rows up to the trained end were
/// trained on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainedRows {
    /// How many rows were trained on, from the first.
    pub rows: usize,
    /// How many values each run covers (at most 64).
    pub run: usize,
    /// The first `run` values (none when they hold fewer than 8 different values, such as a
    /// stretch of zeros, or recur later in the trained rows: other data, or other rows, hold
    /// them too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<Run>,
    /// The last `run` trained values (none as for `head`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<Run>,
}

/// A run of values, as [`TrainedRows`] records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// The bits of its first value: a quick test before the fingerprint.
    pub first: u64,
    /// The fingerprint of its values' bits ([`TrainedRows::print`]).
    pub print: String,
}

/// A value's bits, every missing value alike.
pub(crate) fn value_bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

impl Run {
    fn of(values: &[f64]) -> Run {
        Run {
            first: value_bits(values[0]),
            print: TrainedRows::print(values),
        }
    }

    /// Where in `target` runs of `run` values equal to this one start, in order.
    pub fn starts<'a>(&'a self, target: &'a [f64], run: usize) -> impl Iterator<Item = usize> + 'a {
        let last = if run == 0 {
            0
        } else {
            (target.len() + 1).saturating_sub(run)
        };
        (0..last).filter(move |&i| {
            value_bits(target[i]) == self.first
                && TrainedRows::print(&target[i..i + run]) == self.print
        })
    }
}

impl TrainedRows {
    /// Values a run covers: enough that an unrelated file matches only by holding the same
    /// values.
    const RUN: usize = 64;
    /// Different values a run must hold to be told apart from other data.
    const VARIED: usize = 8;

    /// The record of `target` trained on its first `rows` rows; `None` for none, or when
    /// neither run can be recognised.
    pub fn of(target: &[f64], rows: usize) -> Option<TrainedRows> {
        let rows = rows.min(target.len());
        let run = rows.min(Self::RUN);
        if run == 0 {
            return None;
        }
        let trained = &target[..rows];
        let recognised = |v: &[f64]| {
            let mut bits: Vec<u64> = v
                .iter()
                .filter(|x| !x.is_nan())
                .map(|x| x.to_bits())
                .collect();
            bits.sort_unstable();
            bits.dedup();
            let r = Run::of(v);
            // once in the trained rows: periodic data repeats its runs, and a copy could not
            // say which one it holds
            (bits.len() >= Self::VARIED && r.starts(trained, run).nth(1).is_none()).then_some(r)
        };
        let (head, tail) = (
            recognised(&trained[..run]),
            recognised(&trained[rows - run..]),
        );
        (head.is_some() || tail.is_some()).then_some(TrainedRows {
            rows,
            run,
            head,
            tail,
        })
    }

    /// The fingerprint of `values`' bits (every missing value alike).
    pub fn print(values: &[f64]) -> String {
        let bytes: Vec<u8> = values
            .iter()
            .flat_map(|&v| value_bits(v).to_le_bytes())
            .collect();
        crate::data::fingerprint(&bytes)
    }

    /// Where in `target` the trained rows end (exclusive, at most its length), if it holds
    /// them: after the first run that matches the trained ones' last values, else after as
    /// many rows as were trained from the first run that matches their first values (a
    /// shortened copy).
    pub fn end_in(&self, target: &[f64]) -> Option<usize> {
        if let Some(i) = self
            .tail
            .as_ref()
            .and_then(|t| t.starts(target, self.run).next())
        {
            return Some(i + self.run);
        }
        let i = self.head.as_ref()?.starts(target, self.run).next()?;
        Some(i.saturating_add(self.rows).min(target.len()))
    }
}

/// Columns read from a CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The date column's cells, if one was asked for.
    pub dates: Option<Vec<String>>,
    /// One vector per requested column, in request order.
    pub columns: Vec<Vec<f64>>,
}

impl Table {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.len())
    }

    /// The first `n` rows.
    pub fn head(&self, n: usize) -> Table {
        Table {
            dates: self.dates.as_ref().map(|d| d[..n].to_vec()),
            columns: self.columns.iter().map(|c| c[..n].to_vec()).collect(),
        }
    }
}

/// Reads `columns` (and `date_column`) from a CSV or TSV file with a header row.
///
/// # Errors
/// [`Error::Io`] if unreadable; [`Error::Format`] naming the file, line and column for a
/// missing column, a ragged row, an empty, non-numeric, NaN or infinite cell, or dates that
/// are duplicated or not increasing.
pub fn read_table(path: &Path, columns: &[String], date_column: Option<&str>) -> Result<Table> {
    let tsv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv") || e.eq_ignore_ascii_case("tab"));
    let file = Delimited::open(path, if tsv { b'\t' } else { b',' }, true, false)?;
    table_from(file, columns, date_column)
}

/// As [`read_table`] on the bytes of a file (`tsv`: tab-separated, else comma-separated);
/// `name` names them in errors.
///
/// # Errors
/// As [`read_table`].
pub fn parse_table(
    bytes: Vec<u8>,
    name: &str,
    tsv: bool,
    columns: &[String],
    date_column: Option<&str>,
) -> Result<Table> {
    let file = Delimited::from_bytes(
        name.to_string(),
        bytes,
        if tsv { b'\t' } else { b',' },
        true,
        false,
    )?;
    table_from(file, columns, date_column)
}

fn table_from(mut file: Delimited, columns: &[String], date_column: Option<&str>) -> Result<Table> {
    if columns.is_empty() {
        return Err(file.error("no column was chosen".into()));
    }
    let idx: Vec<usize> = columns
        .iter()
        .map(|c| file.column(c))
        .collect::<Result<_>>()?;
    let didx = date_column.map(|c| file.column(c)).transpose()?;
    let name = file.name.clone();
    let fmt = |reason: String| Error::Format {
        path: name.clone(),
        reason,
    };
    let mut out = vec![Vec::new(); columns.len()];
    let mut dates = didx.map(|_| Vec::new());
    let mut last_time: Option<Time> = None;
    let mut labels = false;
    let mut seen_labels = std::collections::HashSet::new();
    // each label's line and year (its one run of four digits, when it has one)
    let mut label_years: Vec<(usize, Option<i64>)> = Vec::new();
    let one_line = file.one_line();
    for (r, rec) in file.reader.records().enumerate() {
        let rec = rec.map_err(|e| {
            let hint = match e.kind() {
                csv::ErrorKind::UnequalLengths { .. } => "; a value with a comma needs quotes",
                _ => "",
            };
            fmt(format!("{}{hint}", crate::data::tabular::read_error(&e)))
        })?;
        let line = rec.position().map_or(r + 2, |p| p.line() as usize);
        one_line.check(&rec, line, None)?;
        for (k, &i) in idx.iter().enumerate() {
            let cell = rec.get(i).unwrap_or("").trim();
            // the window forecaster's inputs are whole windows: no gaps (the global one masks
            // them)
            let no_gaps = "the window forecaster takes no missing values: fill or remove the \
                           row, or train the default (global) forecaster, which masks them";
            if crate::data::panel::is_missing(cell) {
                return Err(fmt(format!(
                    "line {line}, column `{}`: {}; {no_gaps}",
                    columns[k],
                    if cell.is_empty() {
                        "empty cell".to_string()
                    } else {
                        format!("`{cell}` is a missing value")
                    }
                )));
            }
            let v: f64 = cell.parse().map_err(|_| {
                fmt(format!(
                    "line {line}, column `{}`: `{cell}` is not a number",
                    columns[k]
                ))
            })?;
            // the model computes in 32 bits
            if !(v as f32).is_finite() {
                return Err(fmt(format!(
                    "line {line}, column `{}`: `{cell}` is not a finite 32-bit number (within ±3.4e38)",
                    columns[k]
                )));
            }
            out[k].push(v);
        }
        if let (Some(di), Some(d)) = (didx, dates.as_mut()) {
            let cell = rec.get(di).unwrap_or("").trim().to_string();
            // a column whose first cell is no time (`1959Q1`, `01/1950`) holds labels: the
            // rows are in file order, and only a label given twice is refused
            if d.is_empty() {
                labels = Time::parse(&cell).is_none();
            }
            if labels {
                if !seen_labels.insert(cell.clone()) {
                    return Err(fmt(format!(
                        "line {line}: date `{}` appears twice",
                        shown(&cell)
                    )));
                }
                label_years.push((line, year_of(&cell)));
                d.push(cell);
                continue;
            }
            let Some(time) = Time::parse(&cell) else {
                return Err(fmt(format!(
                    "line {line}, column `{}`: `{}` is not a time like the ones above it (an integer index, YYYY-MM, YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS], with T for the space and Z or +HH:MM after it as ISO 8601 allows; a fraction of a second only as zeros, .000: times are whole seconds)",
                    date_column.unwrap_or_default(),
                    shown(&cell)
                )));
            };
            if let (Some(prev), Some(pt)) = (d.last(), last_time) {
                let pt: Time = pt;
                if time.kind() != pt.kind() {
                    return Err(fmt(format!(
                        "line {line}: `{cell}` is written another way than `{prev}` before it; write every time alike{}",
                        crate::data::panel::offset_change_hint(pt.kind(), time.kind())
                    )));
                }
                if time == pt {
                    return Err(fmt(format!("line {line}: date `{cell}` appears twice")));
                }
                if time < pt {
                    return Err(fmt(format!(
                        "line {line}: date `{cell}` comes before `{prev}` on the line above; sort the file by date"
                    )));
                }
            }
            last_time = Some(time);
            d.push(cell);
        }
    }
    if out[0].is_empty() {
        return Err(fmt("the file has no data rows".into()));
    }
    // labels are read in file order: one of an earlier year than the row above it (an export
    // that runs newest first) would train on the series backwards
    if let Some(d) = dates.as_ref().filter(|_| labels) {
        if label_years.iter().all(|(_, y)| y.is_some()) {
            if let Some(k) =
                (1..label_years.len()).find(|&k| label_years[k].1 < label_years[k - 1].1)
            {
                return Err(fmt(format!(
                    "line {}, column `{}`: `{}` is of an earlier year than `{}` on the row above, and times written this way are taken in file order: sort the rows oldest first, or write the times YYYY-MM-DD (they are then checked and continued)",
                    label_years[k].0,
                    date_column.unwrap_or_default(),
                    shown(&d[k]),
                    shown(&d[k - 1])
                )));
            }
        }
    }
    // integers that are dates without dashes would be continued as integers (`202313`)
    if let Some(d) = dates.as_ref().filter(|_| !labels) {
        let ints: Option<Vec<i64>> = d.iter().map(|c| c.parse().ok()).collect();
        if let Some(format) = ints.and_then(|v| crate::data::panel::compact_dates(&[v])) {
            return Err(fmt(format!(
                "column `{}`: its times look like dates written without dashes ({format}, such as `{}`); read as an integer index the forecast would continue them as integers; write them {}",
                date_column.unwrap_or_default(),
                d[0],
                if format == "YYYYMM" { "YYYY-MM" } else { "YYYY-MM-DD" }
            )));
        }
    }
    Ok(Table {
        dates,
        columns: out,
    })
}

/// Applies a transform to one column (`name` for messages).
///
/// # Errors
/// [`Error::Config`] if `Log`/`LogDiff` meet a value `<= 0`, or a difference needs 2 values.
pub fn apply_transform(x: &[f64], t: Transform, name: &str) -> Result<Vec<f64>> {
    let logs = |x: &[f64]| -> Result<Vec<f64>> {
        x.iter()
            .map(|&v| {
                if v > 0.0 {
                    Ok(v.ln())
                } else {
                    Err(Error::Config(format!("column `{name}` has the value {v}; a log transform needs positive values (use --transform diff or none)")))
                }
            })
            .collect()
    };
    let diff = |x: &[f64]| -> Result<Vec<f64>> {
        if x.len() < 2 {
            return Err(Error::Config(format!(
                "column `{name}` needs at least 2 values to difference"
            )));
        }
        Ok(x.windows(2).map(|w| w[1] - w[0]).collect())
    };
    match t {
        Transform::None => Ok(x.to_vec()),
        Transform::Log => logs(x),
        Transform::Diff => diff(x),
        Transform::LogDiff => diff(&logs(x)?),
    }
}

/// Turns forecast transformed values back into values, given the last observed raw value.
pub fn invert_forecast(pred: &[f64], last_raw: f64, t: Transform) -> Vec<f64> {
    match t {
        Transform::None => pred.to_vec(),
        Transform::Log => pred.iter().map(|v| v.exp()).collect(),
        Transform::Diff => pred
            .iter()
            .scan(last_raw, |acc, d| {
                *acc += d;
                Some(*acc)
            })
            .collect(),
        Transform::LogDiff => pred
            .iter()
            .scan(last_raw.ln(), |acc, d| {
                *acc += d;
                Some(acc.exp())
            })
            .collect(),
    }
}

/// Rows lost at the start by the transform.
pub fn transform_lag(t: Transform) -> usize {
    match t {
        Transform::Diff | Transform::LogDiff => 1,
        _ => 0,
    }
}

impl SeriesSpec {
    /// The frequency of the training file's dates (see [`Self::freq`]).
    pub fn frequency(&self) -> Option<Freq> {
        self.freq.as_deref().and_then(Freq::from_name)
    }

    /// Refuses a table (named `name`) whose dates step more than half again as long or short as
    /// the training file's (a month is 30.44 days): its forecast would be dated at the file's
    /// steps, its values learned at the model's.
    ///
    /// # Errors
    /// [`Error::Format`] naming both frequencies.
    pub fn check_freq(&self, table: &Table, name: &str) -> Result<()> {
        let (Some(want), Some(dates)) = (self.frequency(), table.dates.as_ref()) else {
            return Ok(());
        };
        // by the step's length, within half again: data whose most common step alternates
        // (Mondays and Thursdays, twice a month) gives another step on a slice of the same
        // data, 3 days for 4; hourly for 5 minutes, monthly for yearly, daily for every 3 days
        // are refused
        // the step's length by Freq's own: fixed lengths, calendar months at 30.44 days,
        // business days as days; an integer index has none
        let seconds = |f: Freq| -> Option<f64> {
            match f {
                Freq::BusinessDaily => Freq::Daily.seconds(),
                _ => f.seconds(),
            }
            .map(|s| s as f64)
            .or_else(|| f.months().map(|m| 30.44 * 86_400.0 * m as f64))
        };
        let got = dates_freq(dates, Some(want));
        match (got, got.and_then(seconds), seconds(want)) {
            (Some(got), Some(a), Some(b)) if a.max(b) > 1.5 * a.min(b) => Err(Error::Format {
                path: name.to_string(),
                reason: format!(
                    "its dates are of another frequency than the model's training dates (here {got}, there {want}); give it data of the same frequency"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Transformed, unscaled columns of a table.
    ///
    /// # Errors
    /// As [`apply_transform`].
    pub fn transformed(&self, table: &Table) -> Result<Vec<Vec<f64>>> {
        table
            .columns
            .iter()
            .zip(&self.columns)
            .map(|(c, n)| apply_transform(c, self.transform, n))
            .collect()
    }

    /// Fits the scaler on the first `train_rows` transformed rows.
    pub fn fit_scaler(&mut self, transformed: &[Vec<f64>], train_rows: usize) {
        self.mean.clear();
        self.std.clear();
        for c in transformed {
            let x = &c[..train_rows.min(c.len())];
            let n = x.len().max(1) as f64;
            let m = x.iter().sum::<f64>() / n;
            let var = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n;
            let s = var.sqrt();
            self.mean.push(m);
            self.std.push(if s > 1e-12 { s } else { 1.0 });
        }
    }

    /// Scaled features, row-major `(rows, features)`.
    pub fn scaled_rows(&self, transformed: &[Vec<f64>]) -> Vec<f32> {
        let n = transformed[0].len();
        let f = transformed.len();
        let mut out = Vec::with_capacity(n * f);
        for r in 0..n {
            for k in 0..f {
                out.push(((transformed[k][r] - self.mean[k]) / self.std[k]) as f32);
            }
        }
        out
    }

    /// Forecasts the next `steps` raw target values after the end of `table` (at least
    /// `window + lag` rows). Longer than the horizon needs a univariate model (the forecast is
    /// fed back as input).
    ///
    /// # Errors
    /// [`Error::Config`] for too few rows, or a multivariate model asked for more than its
    /// horizon; transform errors.
    pub fn forecast(
        &self,
        model: &mut SequenceModel,
        table: &Table,
        steps: usize,
    ) -> Result<Vec<f64>> {
        let lag = transform_lag(self.transform);
        if table.rows() < self.window + lag {
            return Err(Error::Config(format!(
                "forecasting needs at least {} rows (window {} + {lag} for the transform), the data has {}",
                self.window + lag,
                self.window,
                table.rows()
            )));
        }
        let f = self.columns.len();
        if steps > self.horizon && f > 1 {
            return Err(Error::Config(format!(
                "this model reads {f} columns and predicts {} steps at once; it can forecast at most {} steps (train a univariate model, or one with --horizon {steps})",
                self.horizon, self.horizon
            )));
        }
        let tr = self.transformed(table)?;
        let mut feats = self.scaled_rows(&tr);
        let mut pred_t = Vec::new();
        model.carry = None;
        while pred_t.len() < steps {
            let n = feats.len() / f;
            let x = &feats[(n - self.window) * f..];
            let y = model
                .predict(Inputs::Dense(x), 1, self.window, None)?
                .to_vec();
            for v in y.iter().take(steps - pred_t.len()) {
                let tv = *v as f64 * self.std[0] + self.mean[0];
                pred_t.push(tv);
                if f == 1 {
                    feats.push(*v);
                }
            }
        }
        let last_raw = *table.columns[0].last().expect("non-empty");
        Ok(invert_forecast(&pred_t, last_raw, self.transform))
    }
}

/// Splits `n` transformed rows of the series in `path` (for messages) into training rows
/// (the first ones) and validation rows up to `usable`; the last `holdout` rows are left out.
/// Returns `(train_rows, usable)`.
///
/// # Errors
/// [`Error::Format`] naming the file, the rows it has and the rows it would need, when the
/// series is too short for training and validation windows of `window + horizon` rows.
pub fn split_rows(
    n: usize,
    path: &str,
    window: usize,
    horizon: usize,
    holdout: usize,
    val_fraction: f32,
    transform: Transform,
) -> Result<(usize, usize)> {
    // counted wide: sizes near the largest integer wrapped round to small ones, which passed
    // (a panic audit, 2026-12-07: --window 9223372036854775807)
    let lag = transform_lag(transform);
    let wanted = holdout as u128 + 2 * (window as u128 + horizon as u128);
    if (n as u128) < wanted {
        return Err(Error::Format {
            path: path.to_string(),
            reason: format!(
                "the series has {} rows ({n} after the transform); training and validating with window {window} + horizon {horizon} (and holdout {holdout}) needs at least {}. Lower --window or --horizon{}, or give a longer series",
                n + lag,
                wanted + lag as u128,
                if holdout > 0 { " (or --holdout)" } else { "" }
            ),
        });
    }
    let need = window + horizon;
    let usable = n - holdout;
    let train_rows = ((usable as f64) * (1.0 - val_fraction as f64)).round() as usize;
    Ok((train_rows.clamp(need, usable - horizon), usable))
}

/// Training and validation windows of a series.
#[derive(Clone, Debug, Default)]
pub struct Windows {
    /// Inputs `(n, window, features)`.
    pub x: Vec<f32>,
    /// Targets `(n, horizon)`, scaled.
    pub y: Vec<f32>,
    /// Number of windows.
    pub n: usize,
}

/// Windows over scaled rows whose targets lie in `rows[target_from..target_to]`.
pub fn make_windows(
    scaled: &[f32],
    features: usize,
    window: usize,
    horizon: usize,
    target_from: usize,
    target_to: usize,
) -> Windows {
    let rows = scaled.len() / features;
    let mut w = Windows::default();
    let mut start = 0;
    while start + window + horizon <= rows.min(target_to) {
        if start + window >= target_from {
            w.x.extend_from_slice(&scaled[start * features..(start + window) * features]);
            for h in 0..horizon {
                w.y.push(scaled[(start + window + h) * features]);
            }
            w.n += 1;
        }
        start += 1;
    }
    w
}

/// RMSE, MAE and MAPE (percent) of a forecast.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ForecastMetrics {
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Mean absolute percentage error (%), over non-zero actual values.
    pub mape: f64,
    /// Points compared.
    pub n: usize,
}

/// Metrics of `pred` against `actual`.
pub fn metrics(pred: &[f64], actual: &[f64]) -> ForecastMetrics {
    let n = pred.len().min(actual.len());
    let (mut se, mut ae, mut pe, mut np) = (0.0, 0.0, 0.0, 0usize);
    for i in 0..n {
        let e = pred[i] - actual[i];
        se += e * e;
        ae += e.abs();
        if actual[i] != 0.0 {
            pe += (e / actual[i]).abs();
            np += 1;
        }
    }
    let nf = n.max(1) as f64;
    ForecastMetrics {
        rmse: (se / nf).sqrt(),
        mae: ae / nf,
        mape: 100.0 * pe / np.max(1) as f64,
        n,
    }
}

/// The year in a time written another way (`12/31/2019`, `1959Q1`, `FY2019`): its one run of
/// exactly four digits (`None` for none, or several).
fn year_of(label: &str) -> Option<i64> {
    let mut runs = label
        .split(|c: char| !c.is_ascii_digit())
        .filter(|r| r.len() == 4);
    let year = runs.next()?.parse().ok()?;
    runs.next().is_none().then_some(year)
}

/// The `n` dates after the last of `dates`, at their frequency as a panel's is inferred
/// ([`crate::data::panel::freq_of`]: the most common step; calendar months for dates on the
/// same day of the month or on month ends; business days for weekdays stepping over weekends),
/// for integer, `YYYY-MM`, `YYYY-MM-DD` and `YYYY-MM-DD HH:MM[:SS]` times; `None` for other
/// formats and for times past the year 9999 (or an integer past 64 bits).
///
/// ```
/// let d = lstm::data::series::next_dates(&["1960-11".into(), "1960-12".into()], 2).unwrap();
/// assert_eq!(d, vec!["1961-01", "1961-02"]);
/// let d = lstm::data::series::next_dates(&["2020-03-01".into(), "2020-04-01".into()], 3).unwrap();
/// assert_eq!(d, vec!["2020-05-01", "2020-06-01", "2020-07-01"]);
/// let d = lstm::data::series::next_dates(&["2019-11-30".into(), "2019-12-31".into()], 3).unwrap();
/// assert_eq!(d, vec!["2020-01-31", "2020-02-29", "2020-03-31"]);
/// let d = lstm::data::series::next_dates(&["2020-01-07".into(), "2020-01-14".into()], 2).unwrap();
/// assert_eq!(d, vec!["2020-01-21", "2020-01-28"]);
/// // trading days: Friday's next is Monday
/// let days = ["2023-03-16", "2023-03-17", "2023-03-20", "2023-03-23", "2023-03-24"];
/// let d = lstm::data::series::next_dates(&days.map(String::from), 2).unwrap();
/// assert_eq!(d, vec!["2023-03-27", "2023-03-28"]);
/// ```
pub fn next_dates(dates: &[String], n: usize) -> Option<Vec<String>> {
    next_dates_at(dates, n, None)
}

/// As [`next_dates`], with the model's frequency `hint` (a short history of weekdays that
/// never steps over a weekend is still business days for a business-daily model).
pub fn next_dates_at(dates: &[String], n: usize, hint: Option<Freq>) -> Option<Vec<String>> {
    let times = times_of(dates)?;
    let freq = crate::data::panel::freq_of(&times, hint);
    let last = times.last()?;
    (1..=n as i64)
        .map(|k| last.checked_advance(freq, k).map(|t| t.to_string()))
        .collect()
}

/// The times of a date column, when every cell is one of one kind (`None` for labels such as
/// `1959Q1`).
pub fn times_of(dates: &[String]) -> Option<Vec<Time>> {
    let times: Vec<Time> = dates
        .iter()
        .map(|d| Time::parse(d))
        .collect::<Option<_>>()?;
    let kind = times.first()?.kind();
    times.iter().all(|t| t.kind() == kind).then_some(times)
}

/// The frequency of a date column's times ([`crate::data::panel::freq_of`]; `None` for labels
/// and for fewer than two times).
pub fn dates_freq(dates: &[String], hint: Option<Freq>) -> Option<Freq> {
    let times = times_of(dates).filter(|t| t.len() > 1)?;
    Some(crate::data::panel::freq_of(&times, hint))
}

#[cfg(test)]
mod tests {
    use super::TrainedRows;

    #[test]
    fn trained_rows_are_found_in_copies_of_the_training_data() {
        let x: Vec<f64> = (0..300u64)
            .map(|i| ((i * i * 37 + i) % 1009) as f64)
            .collect();
        let t = TrainedRows::of(&x, 200).unwrap();
        assert_eq!((t.rows, t.run), (200, 64));
        // the file itself, and copies with rows added before and after
        assert_eq!(t.end_in(&x), Some(200));
        let mut longer = vec![-1.0; 7];
        longer.extend_from_slice(&x);
        assert_eq!(t.end_in(&longer), Some(207));
        // a shortened copy ends inside the trained rows: by the first values
        assert_eq!(t.end_in(&x[..150]), Some(150));
        assert_eq!(t.end_in(&longer[..150]), Some(150));
        // other values, or a copy cut at both ends, are not known
        let other: Vec<f64> = x.iter().map(|v| v + 0.5).collect();
        assert_eq!(t.end_in(&other), None);
        assert_eq!(t.end_in(&x[10..150]), None);
        assert_eq!(t.end_in(&x[..10]), None);
        // fewer trained rows than a run
        let s = TrainedRows::of(&x[..20], 20).unwrap();
        assert_eq!((s.rows, s.run), (20, 20));
        assert_eq!(s.end_in(&x), Some(20));
        assert!(TrainedRows::of(&x, 0).is_none());
        // runs of few values (a stretch of zeros) are not recorded: other data holds them too
        let mut z = vec![0.0; 100];
        assert!(TrainedRows::of(&z, 100).is_none());
        z.extend_from_slice(&x[..100]);
        let t = TrainedRows::of(&z, 200).unwrap();
        assert!(t.head.is_none() && t.tail.is_some());
        assert_eq!(t.end_in(&z), Some(200));
        assert_eq!(t.end_in(&vec![0.0; 300]), None);
    }
}
