//! Forecast and classify models: one worker thread per model owns it, waits `--batch-wait-ms`
//! after a request arrives for others, and runs them as one call of the library's job entry
//! ([`job::classify`] over all their texts, [`job::forecast_global`] over all their series
//! written to one temporary CSV). When a batch of several requests fails, each is run alone,
//! so that one bad request never fails the others.

use std::collections::{BTreeMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lstm::tasks::job::{self, Prediction};
use lstm::Loaded;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::metrics::{Metrics, ModelGauges};

/// A request's reply channel.
pub type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// Something a batch worker runs: its size in items (texts, series), for the batch limit.
pub trait Item: Send + 'static {
    /// Texts or series in this request.
    fn size(&self) -> usize;
    /// Whether its client has gone (the reply's receiver was dropped with the request): it is
    /// then dropped from the queue instead of run.
    fn abandoned(&self) -> bool;
    /// Answers with `e` instead of running.
    fn refuse(self, e: ApiError);
}

/// A model's worker thread and its bounded queue.
pub struct BatchWorker<J> {
    queue: SyncSender<J>,
    gauges: Arc<ModelGauges>,
    cut: Arc<AtomicBool>,
}

impl<J: Item> BatchWorker<J> {
    /// Starts the worker of model `name` (`task`: forecast, classify), which owns `loaded` (the
    /// model): at most `queue` waiting requests, batches of at most `max_items` items gathered
    /// for `wait` after the first.
    #[allow(clippy::too_many_arguments)]
    pub fn start<M: Send + 'static>(
        name: &str,
        task: &'static str,
        mut loaded: M,
        queue: usize,
        max_items: usize,
        wait: Duration,
        metrics: Arc<Metrics>,
        mut run: impl FnMut(&mut M, Vec<J>) + Send + 'static,
    ) -> anyhow::Result<BatchWorker<J>> {
        let (tx, rx) = sync_channel::<J>(queue);
        let gauges = metrics.model(name, task);
        let g = gauges.clone();
        let cut = Arc::new(AtomicBool::new(false));
        let stop = cut.clone();
        std::thread::Builder::new()
            .name(format!("{task}-{name}"))
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let deadline = Instant::now() + wait;
                    let mut items = first.size();
                    let mut jobs = vec![first];
                    while items < max_items {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(j) => {
                                items += j.size();
                                jobs.push(j);
                            }
                            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                                break
                            }
                        }
                    }
                    g.queued.fetch_sub(jobs.len(), Ordering::Relaxed);
                    // a request whose client has gone while it waited is dropped, not run
                    jobs.retain(|j| !j.abandoned());
                    if jobs.is_empty() {
                        continue;
                    }
                    // the server's grace period is over: an answer now, not a closed connection
                    if stop.load(Ordering::SeqCst) {
                        for j in jobs {
                            j.refuse(ApiError::unavailable(crate::text::SHUTDOWN_MESSAGE));
                        }
                        continue;
                    }
                    let items = jobs.iter().map(Item::size).sum();
                    metrics.batch(task, items);
                    g.tokens.fetch_add(items as u64, Ordering::Relaxed);
                    // a panic drops the jobs' reply channels: their requests answer 500
                    let _ = catch_unwind(AssertUnwindSafe(|| run(&mut loaded, jobs)));
                }
            })?;
        Ok(BatchWorker {
            queue: tx,
            gauges,
            cut,
        })
    }

    /// Answers every request still queued with a 503 (the server's grace period is over); the
    /// batch running now is finished and answered.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// Queues a request.
    ///
    /// # Errors
    /// 429 when the queue is full, 503 when the worker has stopped.
    pub fn submit(&self, name: &str, j: J) -> Result<(), ApiError> {
        self.gauges.queued.fetch_add(1, Ordering::Relaxed);
        self.queue.try_send(j).map_err(|e| {
            self.gauges.queued.fetch_sub(1, Ordering::Relaxed);
            match e {
                TrySendError::Full(_) => ApiError::queue_full(name),
                TrySendError::Disconnected(_) => {
                    ApiError::unavailable(format!("the model {name:?} has stopped"))
                }
            }
        })
    }
}

/// An error and its causes, joined.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

// ---------------------------------------------------------------- classify

/// A classify request's texts and where its answer goes.
pub struct ClassifyJob {
    /// The texts.
    pub texts: Vec<String>,
    /// The answer: one prediction per text.
    pub reply: Reply<Vec<Prediction>>,
}

impl Item for ClassifyJob {
    fn size(&self) -> usize {
        self.texts.len()
    }
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }
    fn refuse(self, e: ApiError) {
        let _ = self.reply.send(Err(e));
    }
}

/// Classifies a batch of requests' texts in one call.
pub fn run_classify(l: &mut Loaded, jobs: Vec<ClassifyJob>) {
    let all: Vec<String> = jobs.iter().flat_map(|j| j.texts.iter().cloned()).collect();
    match job::classify(l, &all) {
        Ok(mut preds) => {
            for j in jobs {
                let rest = preds.split_off(j.texts.len());
                let _ = j.reply.send(Ok(std::mem::replace(&mut preds, rest)));
            }
        }
        // one request's texts may be what failed: each alone
        Err(_) if jobs.len() > 1 => {
            for j in jobs {
                run_classify(l, vec![j]);
            }
        }
        Err(e) => {
            for j in jobs {
                let _ = j.reply.send(Err(ApiError::bad_param("texts", chain(&e))));
            }
        }
    }
}

// ---------------------------------------------------------------- forecast

/// One series of a forecast request.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesIn {
    /// The series id (a global forecaster with an id column; default: its index).
    #[serde(default)]
    pub id: Option<String>,
    /// The time of every row (the model's time column; strings or numbers), history and the
    /// future rows that carry known covariates.
    #[serde(default)]
    pub time: Option<Vec<serde_json::Value>>,
    /// The target's history.
    pub values: Vec<f64>,
    /// Known covariates (global) or the other input columns (window forecaster): one value
    /// per row, the history's rows and then the forecast steps'.
    #[serde(default, deserialize_with = "unique_keys")]
    pub known: BTreeMap<String, Vec<f64>>,
}

/// A JSON object read as a map whose keys are all different: a key given twice is refused
/// (serde keeps the last one silently; the struct fields around it refuse a duplicate too).
fn unique_keys<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Vec<f64>>, D::Error> {
    struct Unique;
    impl<'de> serde::de::Visitor<'de> for Unique {
        type Value = BTreeMap<String, Vec<f64>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of column names to arrays of numbers")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!(
                        "the column {key:?} is given twice"
                    )));
                }
                let values: Vec<f64> = map.next_value()?;
                out.insert(key, values);
            }
            Ok(out)
        }
        // `null`: none, as for every optional field
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
    }
    d.deserialize_any(Unique)
}

/// One series' forecast.
#[derive(Clone, Debug, Serialize)]
pub struct SeriesOut {
    /// The series id.
    pub id: String,
    /// The forecast steps' times (when the model knows them).
    pub time: Vec<String>,
    /// The point forecast (the median for a global forecaster).
    pub values: Vec<f64>,
    /// Each requested quantile level's values (`"0.1": [...]`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub quantiles: BTreeMap<String, Vec<f64>>,
}

/// A forecast request, checked, and where its answer goes.
pub struct ForecastJob {
    /// Its series, with their ids set.
    pub series: Vec<SeriesIn>,
    /// Steps to forecast (`None`: the model's horizon).
    pub steps: Option<usize>,
    /// Quantile levels.
    pub quantiles: Vec<f64>,
    /// The answer: one forecast per series, in request order.
    pub reply: Reply<Vec<SeriesOut>>,
}

impl Item for ForecastJob {
    fn size(&self) -> usize {
        self.series.len()
    }
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }
    fn refuse(self, e: ApiError) {
        let _ = self.reply.send(Err(e));
    }
}

/// The name the library's messages give a request's series (its CSV never touches a disk).
const REQUEST: &str = "the request's series";

/// A library message about the request's CSV in the request's terms: `line N` (the file's
/// line, after its header) becomes `series[i] row j` (rows from 0). Only the library's own
/// words are read: a value it quotes between backticks (an id such as `line 2`) is left as it
/// is, and so is `line` inside a word. (No cell of the request's CSV holds a line break: the
/// request checks refuse them, so lines are rows.)
fn in_request_terms(message: &str, origin: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("line ") {
        let before = &rest[..at];
        let quoted = (out.matches('`').count() + before.matches('`').count()) % 2 == 1;
        let in_word = before
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        out.push_str(before);
        if quoted || in_word {
            out.push_str("line ");
            rest = &rest[at + 5..];
            continue;
        }
        let after = &rest[at + 5..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let place = after[..digits]
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(2))
            .and_then(|k| origin.get(k));
        match place {
            Some((i, r)) => out.push_str(&format!("series[{i}] row {r}")),
            None => out.push_str(&rest[at..at + 5 + digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// A CSV cell: quoted when it holds a comma, a quote or a line break.
fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A JSON time as a CSV cell.
fn time_cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => cell(s),
        other => cell(&other.to_string()),
    }
}

/// A request's checked rows: time, target (empty past the history), known columns.
fn rows(s: &SeriesIn) -> usize {
    s.known
        .values()
        .map(Vec::len)
        .chain(s.time.as_ref().map(Vec::len))
        .max()
        .unwrap_or(0)
        .max(s.values.len())
}

/// Runs a batch of forecast requests: for a global forecaster with an id column, the requests
/// with the same steps and quantiles and different series ids as one call; else one by one.
pub fn run_forecast(l: &mut Loaded, jobs: Vec<ForecastJob>) {
    let batched = l
        .meta
        .global
        .as_ref()
        .is_some_and(|g| g.id_column.is_some());
    let mut pending: Vec<ForecastJob> = jobs;
    while !pending.is_empty() {
        let mut group: Vec<ForecastJob> = Vec::new();
        let mut ids: HashSet<String> = HashSet::new();
        let mut rest = Vec::new();
        for j in pending {
            let fits = group.first().is_none_or(|g| {
                batched
                    && g.steps == j.steps
                    && g.quantiles == j.quantiles
                    && j.series
                        .iter()
                        .all(|s| !ids.contains(s.id.as_deref().unwrap_or("").trim()))
            });
            if fits {
                // ids as the CSV reader reads them, without their blanks
                ids.extend(
                    j.series
                        .iter()
                        .filter_map(|s| s.id.as_deref().map(|i| i.trim().to_string())),
                );
                group.push(j);
            } else {
                rest.push(j);
            }
        }
        run_group(l, group);
        pending = rest;
    }
}

fn run_group(l: &mut Loaded, group: Vec<ForecastJob>) {
    let all: Vec<&SeriesIn> = group.iter().flat_map(|j| j.series.iter()).collect();
    let first = &group[0];
    match forecast_series(l, &all, first.steps, &first.quantiles) {
        Ok(mut out) => {
            for j in group {
                let rest = out.split_off(j.series.len());
                let _ = j.reply.send(Ok(std::mem::replace(&mut out, rest)));
            }
        }
        Err(_) if group.len() > 1 => {
            for j in group {
                run_group(l, vec![j]);
            }
        }
        Err(e) => {
            for j in group {
                let _ = j.reply.send(Err(e.clone()));
            }
        }
    }
}

/// Forecasts `series` in one library call, answers in their order.
fn forecast_series(
    l: &mut Loaded,
    series: &[&SeriesIn],
    steps: Option<usize>,
    quantiles: &[f64],
) -> Result<Vec<SeriesOut>, ApiError> {
    // the request's (series, row) of each CSV line after the header, for the messages
    let mut origin: Vec<(usize, usize)> = Vec::new();
    let bad = |e: &dyn std::error::Error, origin: &[(usize, usize)]| {
        ApiError::bad_param("series", in_request_terms(&chain(e), origin))
    };
    if let Some(spec) = l.meta.global.clone() {
        let mut header: Vec<String> = Vec::new();
        header.extend(spec.id_column.iter().cloned());
        header.extend(spec.time_column.iter().cloned());
        header.push(spec.target.clone());
        header.extend(spec.known.iter().cloned());
        let mut csv = header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(",") + "\n";
        for (i, s) in series.iter().enumerate() {
            for r in 0..rows(s) {
                origin.push((i, r));
                let mut row: Vec<String> = Vec::new();
                if spec.id_column.is_some() {
                    row.push(cell(s.id.as_deref().unwrap_or("")));
                }
                if spec.time_column.is_some() {
                    row.push(s.time.as_ref().map_or(String::new(), |t| time_cell(&t[r])));
                }
                row.push(s.values.get(r).map_or(String::new(), |v| v.to_string()));
                for k in &spec.known {
                    row.push(s.known[k][r].to_string());
                }
                csv.push_str(&row.join(","));
                csv.push('\n');
            }
        }
        let fc = job::forecast_global_csv(l, REQUEST, &csv, steps, quantiles)
            .map_err(|e| bad(&e, &origin))?;
        let mut by_id: BTreeMap<String, SeriesOut> = fc
            .series
            .into_iter()
            .map(|(_, f)| {
                let out = SeriesOut {
                    id: f.id.clone(),
                    time: f.times.iter().map(|t| t.to_string()).collect(),
                    values: f.median,
                    quantiles: f
                        .quantiles
                        .into_iter()
                        .map(|(q, v)| (format!("{q}"), v))
                        .collect(),
                };
                (f.id, out)
            })
            .collect();
        let single = spec.id_column.is_none();
        series
            .iter()
            .map(|s| {
                let found = if single {
                    by_id.pop_first().map(|(_, v)| v)
                } else {
                    by_id.remove(s.id.as_deref().unwrap_or("").trim())
                };
                found
                    .map(|mut o| {
                        o.id = s.id.clone().unwrap_or(o.id);
                        o
                    })
                    .ok_or_else(|| ApiError::internal("a series is missing from the forecast"))
            })
            .collect()
    } else {
        let spec = job::series_spec(l).map_err(|e| ApiError::internal(chain(&e)))?;
        let mut out = Vec::new();
        for s in series {
            let mut header: Vec<String> = Vec::new();
            header.extend(spec.date_column.iter().cloned());
            header.extend(spec.columns.iter().cloned());
            let mut csv = header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(",") + "\n";
            for r in 0..s.values.len() {
                let mut row: Vec<String> = Vec::new();
                if spec.date_column.is_some() {
                    row.push(s.time.as_ref().map_or(String::new(), |t| time_cell(&t[r])));
                }
                row.push(s.values[r].to_string());
                for k in &spec.columns[1..] {
                    row.push(s.known[k][r].to_string());
                }
                csv.push_str(&row.join(","));
                csv.push('\n');
            }
            let steps = steps.unwrap_or(spec.horizon.max(1));
            let origin: Vec<(usize, usize)> = (0..s.values.len()).map(|r| (0, r)).collect();
            let fc = job::forecast_csv(l, REQUEST, &csv, steps).map_err(|e| bad(&e, &origin))?;
            out.push(SeriesOut {
                id: s.id.clone().unwrap_or_else(|| "0".into()),
                // none when a date cannot be written (past the year 9999, a format the window
                // forecaster does not continue), as before its CSV left such cells empty
                time: fc
                    .dates
                    .filter(|d| d.iter().all(|t| !t.is_empty()))
                    .unwrap_or_default(),
                values: fc.values,
                quantiles: BTreeMap::new(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn messages_name_the_requests_rows_not_the_csvs_lines() {
        let origin = [(0, 0), (0, 1), (1, 0), (1, 1)];
        assert_eq!(
            in_request_terms(
                "line 5, column `t`: series `b` has the time `3` twice (also on line 4); the line 99 is not",
                &origin
            ),
            "series[1] row 1, column `t`: series `b` has the time `3` twice (also on series[1] row 0); the line 99 is not"
        );
        assert_eq!(in_request_terms("no lines here", &origin), "no lines here");
        // a quoted value and a word that ends in "line" are the user's
        assert_eq!(
            in_request_terms(
                "line 3: series `line 2` (pipeline 3) twice (also on line 2)",
                &origin
            ),
            "series[0] row 1: series `line 2` (pipeline 3) twice (also on series[0] row 0)"
        );
    }

    #[test]
    fn a_known_column_given_twice_is_refused_not_overwritten() {
        let e = crate::json::parse::<SeriesIn>(
            br#"{"values": [1, 2], "known": {"x": [1, 2, 3], "y": [0, 0, 0], "x": [9, 9, 9]}}"#,
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("known"), "{e:?}");
        assert!(e.message.contains("\"x\" is given twice"), "{e:?}");
        let s =
            crate::json::parse::<SeriesIn>(br#"{"values": [1], "known": {"x": [1], "y": [2]}}"#)
                .unwrap();
        assert_eq!(s.known.len(), 2);
        // a value of the wrong kind is still named by its column
        let e = crate::json::parse::<SeriesIn>(br#"{"values": [1], "known": {"x": ["a"]}}"#)
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("known.x[0]"), "{e:?}");
    }

    #[test]
    fn a_request_whose_client_has_gone_is_dropped_not_run() {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let seen = ran.clone();
        let metrics = Arc::new(Metrics::default());
        let w = BatchWorker::start(
            "m",
            "classify",
            (),
            8,
            1, // one request per batch
            Duration::ZERO,
            metrics,
            move |_: &mut (), jobs: Vec<ClassifyJob>| {
                for j in jobs {
                    if j.texts[0] == "slow" {
                        std::thread::sleep(Duration::from_millis(300));
                    }
                    seen.lock().unwrap().push(j.texts[0].clone());
                    let _ = j.reply.send(Ok(Vec::new()));
                }
            },
        )
        .unwrap();
        let job = |t: &str| {
            let (reply, rx) = oneshot::channel();
            let j = ClassifyJob {
                texts: vec![t.to_string()],
                reply,
            };
            (j, rx)
        };
        let (slow, slow_rx) = job("slow");
        w.submit("m", slow).unwrap();
        let (gone, gone_rx) = job("gone");
        w.submit("m", gone).unwrap();
        drop(gone_rx); // its client disconnected while it waited
        let (kept, kept_rx) = job("kept");
        w.submit("m", kept).unwrap();
        assert!(slow_rx.blocking_recv().unwrap().is_ok());
        assert!(kept_rx.blocking_recv().unwrap().is_ok());
        assert_eq!(*ran.lock().unwrap(), ["slow", "kept"]);
        assert_eq!(w.gauges.queued.load(Ordering::Relaxed), 0);
    }

    /// At the end of the grace period the requests still queued are answered with a 503; they
    /// got no answer at all (their connections were closed). The batch running is finished.
    #[test]
    fn a_cut_answers_the_queued_requests_and_finishes_the_running_one() {
        let metrics = Arc::new(Metrics::default());
        let ran = Arc::new(Mutex::new(Vec::new()));
        let seen = ran.clone();
        let w = BatchWorker::start(
            "m",
            "classify",
            (),
            8,
            1,
            Duration::ZERO,
            metrics,
            move |_: &mut (), jobs: Vec<ClassifyJob>| {
                for j in jobs {
                    std::thread::sleep(Duration::from_millis(300));
                    seen.lock().unwrap().push(j.texts[0].clone());
                    let _ = j.reply.send(Ok(Vec::new()));
                }
            },
        )
        .unwrap();
        let mut rxs = Vec::new();
        for t in ["running", "queued1", "queued2"] {
            let (reply, rx) = oneshot::channel();
            w.submit(
                "m",
                ClassifyJob {
                    texts: vec![t.to_string()],
                    reply,
                },
            )
            .unwrap();
            rxs.push(rx);
        }
        std::thread::sleep(Duration::from_millis(100));
        w.cut();
        let mut answers = rxs.into_iter().map(|rx| rx.blocking_recv().unwrap());
        assert!(answers.next().unwrap().is_ok());
        for a in answers {
            let e = a.unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
            assert!(e.message.contains("shutting down"), "{e:?}");
        }
        assert_eq!(*ran.lock().unwrap(), ["running"]);
    }
}
