//! The trained models of the three jobs: [`Model`] wraps a loaded model directory
//! ([`lstm::Loaded`]) and calls the same `lstm::tasks::job` entries as the binary's
//! `generate`, `forecast`, `classify` and `eval`; [`Model::train`] runs the same
//! [`lstm::Job`] as `lstm train`. Data come in as files: the Python side
//! (`python/lstm/jobs.py`) writes arrays, lists and DataFrames to a temporary file first, so
//! that the binary and Python read exactly the same input the same way.
//!
//! Every call that computes releases the GIL; a model is behind a mutex, so two Python
//! threads may use one model at once (one waits for the other).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lstm::tasks::job::{self, EvalOptions, GenerateOptions, JobError};
use lstm::tasks::modeldir::{self, LabelValues, Loaded};
use lstm::tasks::train::{Event, StopReason};
use lstm::{Job, Settings, Task};
use numpy::PyArray1;
use pyo3::exceptions::{PyFileNotFoundError, PyKeyboardInterrupt, PyTypeError};
use pyo3::prelude::*;

use crate::errors::{job_err, lib_err, value_err};

/// Why `out` cannot receive a new model, as a `ValueError` saying what to do.
fn unusable(out: &Path, why: modeldir::Unusable) -> PyErr {
    use modeldir::Unusable;
    let o = out.display();
    value_err(match why {
        Unusable::HoldsModel => format!(
            "{o} already holds a model; load it with lstm.load() or choose another directory"
        ),
        Unusable::NotADirectory => {
            format!("{o} exists and is not a directory; choose another directory")
        }
        Unusable::NotEmpty => format!(
            "{o} is a directory that is not empty; a model is written into a new or empty directory (its files would replace files there): choose another directory"
        ),
        Unusable::InsideAFile { at } => format!(
            "cannot write {o}: {} is not a directory; choose another directory",
            at.display()
        ),
        Unusable::NotWritable { at, reason } => format!(
            "cannot write {o}: {reason} (in {}); choose another directory",
            at.display()
        ),
    })
}

/// Takes the lock of the model directory `dir` ([`modeldir::lock`]), or raises
/// `lstm.LstmError` when another process holds it.
fn lock(py: Python<'_>, dir: &Path) -> PyResult<modeldir::DirLock> {
    py.detach(|| modeldir::lock(dir))
        .map_err(lib_err)?
        .ok_or_else(|| held_elsewhere(dir))
}

fn held_elsewhere(dir: &Path) -> PyErr {
    crate::errors::LstmError::new_err(format!(
        "another lstm run (another process, or another thread of this one) is training or saving into {}; wait for it to end, or choose another directory",
        dir.display()
    ))
}

/// The directories a save of this process holds the lock of (by [`Model::save`]), by their
/// canonical paths: another save of this process waits for them, and for nothing else.
static SAVING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A directory's lock held for a save, listed in [`SAVING`] meanwhile.
struct SaveLock {
    _lock: modeldir::DirLock,
    _saving: Saving,
}

/// A held save's entry in [`SAVING`], removed when dropped.
struct Saving(PathBuf);

impl Drop for Saving {
    fn drop(&mut self) {
        let mut saving = SAVING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = saving.iter().position(|d| *d == self.0) {
            saving.swap_remove(i);
        }
    }
}

/// [`lock`] for a save: a save of this process (another thread's) holding `dir`, which takes a
/// moment, is waited for, up to 10 s (a probe, 2026-12-07, found half the saves of two threads
/// refused); a run training there, or another process, is refused at once, as before (the
/// reviews: a save that waited for a run to end replaced the model it had just trained, and
/// two saves waiting for each other waited out a training run so). The directory is known by
/// its canonical path (a symbolic link or `..` to it is the same directory).
fn lock_for_save(py: Python<'_>, dir: &Path) -> PyResult<SaveLock> {
    // the canonical path, of the parent while the directory is not yet made
    let key = std::fs::canonicalize(dir)
        .or_else(|_| match (dir.parent(), dir.file_name()) {
            (Some(p), Some(name)) => {
                let p = if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                };
                std::fs::canonicalize(p).map(|p| p.join(name))
            }
            _ => std::path::absolute(dir),
        })
        .unwrap_or_else(|_| dir.to_path_buf());
    // the lock tried, and the list read or written, under the list's mutex: a save found
    // holding the directory is one, or has just let go
    let attempt = || {
        py.detach(|| {
            let mut saving = SAVING.lock().unwrap_or_else(|e| e.into_inner());
            Ok::<_, lstm::Error>(match modeldir::lock(dir)? {
                Some(l) => {
                    saving.push(key.clone());
                    (Some(l), true)
                }
                None => (None, saving.contains(&key)),
            })
        })
        .map_err(lib_err)
    };
    let began = Instant::now();
    loop {
        match attempt()? {
            (Some(l), _) => {
                return Ok(SaveLock {
                    _lock: l,
                    _saving: Saving(key),
                })
            }
            (None, false) => return Err(held_elsewhere(dir)),
            (None, true) if began.elapsed() >= Duration::from_secs(10) => {
                return Err(held_elsewhere(dir))
            }
            (None, true) => {
                py.detach(|| std::thread::sleep(Duration::from_millis(20)));
                py.check_signals()?;
            }
        }
    }
}

/// Adds the job functions and classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_class::<TextStream>()?;
    m.add_class::<TrainResult>()?;
    m.add_function(wrap_pyfunction!(default_settings, m)?)?;
    m.add_function(wrap_pyfunction!(check_settings, m)?)?;
    m.add_function(wrap_pyfunction!(settings_read_by, m)?)?;
    Ok(())
}

fn parse_task(task: &str) -> PyResult<Task> {
    match task {
        "text" => Ok(Task::Text),
        "forecast" => Ok(Task::Forecast),
        "classify" => Ok(Task::Classify),
        other => Err(value_err(format!(
            "unknown task {other:?}; give \"text\", \"forecast\" or \"classify\""
        ))),
    }
}

/// The default settings of a job (`"text"`, `"forecast"` or `"classify"`) as JSON: the
/// binary's `lstm train` defaults, under the names of its configuration file.
#[pyfunction]
fn default_settings(task: &str) -> PyResult<String> {
    let s = Settings::defaults(parse_task(task)?);
    Ok(serde_json::to_string(&s).expect("settings serialise"))
}

/// The names of the settings the job `task` reads (`Settings::used_by`), in the order of its
/// configuration file.
#[pyfunction]
fn settings_read_by(task: &str) -> PyResult<Vec<String>> {
    let task = parse_task(task)?;
    let all = serde_json::to_value(Settings::defaults(task)).expect("settings serialise");
    Ok(all
        .as_object()
        .map(|o| {
            o.keys()
                .filter(|k| Settings::used_by(task, k))
                .cloned()
                .collect()
        })
        .unwrap_or_default())
}

/// The settings of a job: the defaults of `task` with the JSON object `overrides` laid over
/// them, checked as `lstm train` checks them; returned whole, as JSON. Raises `ValueError`
/// naming an unknown or invalid setting.
#[pyfunction]
fn check_settings(task: &str, overrides: &str) -> PyResult<String> {
    let s = settings_from(parse_task(task)?, overrides)?;
    Ok(serde_json::to_string(&s).expect("settings serialise"))
}

/// The settings of `task` that its rules choose when they are left to it (`None` for them in
/// Python means "not given"): a text model's shape for a long budget (`layers` only as a
/// condition), a global forecaster's size for large data. As `_SIZED` in `jobs.py`.
fn sized(task: Task) -> &'static [&'static str] {
    match task {
        Task::Text => &["layers", "hidden", "dropout", "lr_schedule"],
        Task::Forecast => &["hidden", "dropout", "lr_schedule"],
        Task::Classify => &[],
    }
}

/// The defaults of `task` with the settings of the JSON object `overrides` laid over them,
/// checked as `lstm train` checks them.
fn settings_from(task: Task, overrides: &str) -> PyResult<Settings> {
    let mut base = serde_json::to_value(Settings::defaults(task)).expect("settings serialise");
    let over: serde_json::Value = serde_json::from_str(overrides)
        .map_err(|e| value_err(format!("settings are not valid JSON: {e}")))?;
    let (Some(b), Some(o)) = (base.as_object_mut(), over.as_object()) else {
        return Err(value_err("settings must be a mapping of names to values"));
    };
    // a size given as None is left to the job (its rules choose it: the text model of a long
    // budget, a global forecaster's for large data), as `get_params()` shows a size not given
    let o: serde_json::Map<String, serde_json::Value> = o
        .iter()
        .filter(|(k, v)| !(v.is_null() && sized(task).contains(&k.as_str())))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let o = &o;
    // a budget given replaces the default one, as `lstm train --steps` does: `steps=20000`
    // alone must not stop at the text job's default 4 minutes
    const BUDGET: [&str; 3] = ["steps", "minutes", "epochs"];
    if BUDGET.iter().any(|k| o.contains_key(*k)) {
        for k in BUDGET {
            b.insert(k.into(), serde_json::Value::Null);
        }
    }
    for (k, v) in o {
        if !b.contains_key(k) {
            if let Some(hint) = other_library_setting(k) {
                return Err(value_err(format!("unknown setting {k:?}: {hint}")));
            }
            let mut names: Vec<&String> = b.keys().collect();
            names.sort();
            return Err(value_err(format!(
                "unknown setting {k:?}; the settings are: {}",
                names
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        b.insert(k.clone(), v.clone());
    }
    let mut s: Settings = serde_path_to_error::deserialize(base).map_err(|e| {
        let key = e.path().to_string();
        setting_err(&key, &e.into_inner().to_string())
    })?;
    s.validate()
        .map_err(|e| value_err(format!("invalid settings: {e}")))?;
    // the keyword arguments given are kept as given, even at their default value (the rules
    // that size a model by its budget or data leave them), as the binary's flags are
    s.given = o.keys().cloned().collect();
    // a setting of another job, given a value other than this job's default, would change
    // nothing (a probe, 2026-12-07: `TextModel(window=5)` trained as if it were not given);
    // its default here is let through, so that `get_params()` builds the same job again (a
    // review, 2026-12-07: letting another job's default through passed `TextModel(tokens=
    // "word")`, which still trains on characters)
    let given = serde_json::to_value(&s).expect("settings serialise");
    let defaults = serde_json::to_value(Settings::defaults(task)).expect("settings serialise");
    let mut foreign: Vec<&String> = o
        .keys()
        .filter(|k| !Settings::used_by(task, k) && given.get(k) != defaults.get(k))
        .collect();
    foreign.sort();
    if let Some(k) = foreign.first() {
        let owners: Vec<&str> = [Task::Text, Task::Forecast, Task::Classify]
            .into_iter()
            .filter(|&t| Settings::used_by(t, k))
            .map(job_class)
            .collect();
        return Err(value_err(format!(
            "setting {k:?} is not read by the {task} job ({}), so it would change nothing; \
             it is a setting of {}",
            job_class(task),
            owners.join(" and ")
        )));
    }
    Ok(s)
}

/// The Python class of a job.
fn job_class(task: Task) -> &'static str {
    match task {
        Task::Text => "lstm.TextModel",
        Task::Forecast => "lstm.Forecaster",
        Task::Classify => "lstm.Classifier",
    }
}

/// What a setting of NeuralForecast, Darts, GluonTS or Keras is here (a probe, 2026-12-07:
/// `hist_exog_list=` got the list of 50 settings, none of them named as the way).
fn other_library_setting(key: &str) -> Option<&'static str> {
    Some(match key {
        "futr_exog_list" | "future_covariates" | "dynamic_real" | "feat_dynamic_real" => {
            "covariates known in advance are known_columns=[...] of fit(), their future values \
             rows of the data given to predict()"
        }
        "hist_exog_list" | "past_covariates" | "past_feat_dynamic_real" => {
            "covariates known only in the past are not taken (a known column must be given for \
             the forecast steps too); leave the column out, or give its future values as a \
             known column"
        }
        "stat_exog_list" | "static_covariates" | "static_df" | "feat_static_real"
        | "feat_static_cat" => {
            "static covariates are not taken; id_embedding=N learns a vector per series instead"
        }
        "h" | "prediction_length" | "output_chunk_length" => "the forecast length is horizon=",
        "input_size" | "context_length" | "input_chunk_length" => "the history read is context=",
        "max_steps" | "n_epochs" => "the budget is steps=, epochs= or minutes=",
        "learning_rate" => "the learning rate is lr=",
        "batch_size" => "the batch size is batch=",
        "random_seed" | "random_state" => "the seed is seed=",
        "freq" => "the frequency is read from the time column (time_column=)",
        _ => return None,
    })
}

/// A setting serde refused, named by its keyword: a `TypeError` for a value of the wrong kind
/// (`hidden="128"`), a `ValueError` for a bad value (`seq_len=-1`, `cell="rnn-gru"`), in
/// Python's words rather than Rust's type names.
fn setting_err(key: &str, message: &str) -> PyErr {
    let words = message
        .replace("expected usize", "expected a whole number at or above 0")
        .replace("expected u64", "expected a whole number at or above 0")
        .replace("expected u32", "expected a whole number at or above 0")
        .replace("expected f32", "expected a number")
        .replace("expected f64", "expected a number")
        .replace("expected i64", "expected a whole number")
        .replace("expected string or map", "expected a string")
        .replace("floating point", "float")
        .replace("integer `", "int `");
    if message.starts_with("invalid type") {
        PyTypeError::new_err(format!("{key}: {words}"))
    } else {
        value_err(format!("invalid setting {key}: {words}"))
    }
}

fn require_dir(dir: &Path) -> PyResult<()> {
    if !dir.exists() {
        return Err(PyFileNotFoundError::new_err(format!(
            "{}: no such model directory; give a directory written by `lstm train` or `save()`",
            dir.display()
        )));
    }
    Ok(())
}

fn require_file(path: &Path) -> PyResult<()> {
    if !path.exists() {
        return Err(PyFileNotFoundError::new_err(format!(
            "{}: no such file; check the path",
            path.display()
        )));
    }
    Ok(())
}

/// Draws a checkpoint's loss curves into `dir/loss.svg` as `lstm train` does (nothing for a
/// model without a history: an imported one).
fn loss_plot(dir: &Path, train: &[(u64, f32)], val: &[(u64, f32)]) -> lstm::Result<()> {
    if train.is_empty() && val.is_empty() {
        return Ok(());
    }
    lstm::pages::plot::loss_curve(&dir.join("loss.svg"), train, val)
}

/// What [`Model::train`] returns: the model, its loss history and what the job said about its
/// data.
#[pyclass(module = "lstm._lstm", frozen, get_all)]
pub struct TrainResult {
    /// The trained model, loaded back from its directory as `lstm.load` would.
    model: Py<Model>,
    /// `(step, training loss)` of every step.
    train_loss: Vec<(u64, f32)>,
    /// `(step, validation loss)` of every validation pass.
    val_loss: Vec<(u64, f32)>,
    /// The job's notes about its data (a summary, masked values, the choices it made).
    notes: Vec<String>,
    /// A classifier of several models: `(loss, accuracy)` of them together (their class
    /// probabilities averaged) on the validation rows, as `evaluate` scores the saved model
    /// there; `val_loss` is the first model's alone. `None` for one model and the other tasks.
    ensemble_val: Option<(f32, f64)>,
    /// Why training stopped: `"budget"` (used up) or `"interrupted"` (by the callback).
    stopped: String,
}

/// A trained model of one of the three jobs (a model directory, loaded).
#[pyclass(module = "lstm._lstm", frozen)]
pub struct Model {
    inner: Arc<Mutex<Loaded>>,
    task: Task,
    /// What never changes, read without the model's lock (which a stream holds while it is
    /// open): the settings as JSON, the labels, the parameters, whether global, the summary.
    settings_json: String,
    labels: Vec<String>,
    /// What the labels stand for (`integer`, `boolean`), when a fit in Python recorded it.
    label_values: Option<&'static str>,
    num_params: usize,
    is_global: bool,
    summary: String,
}

impl Model {
    fn new(l: Loaded) -> Model {
        let s = &l.meta.settings;
        // a global forecaster's season and context as its training resolved them (a probe,
        // 2026-12-07: `get_params()` said None for both, hiding the history `predict` needs)
        let mut shown = s.clone();
        if let Some(g) = &l.meta.global {
            shown.season = shown.season.or(Some(g.season));
            shown.context = shown.context.or(Some(g.context));
        }
        Model {
            task: l.meta.task,
            settings_json: serde_json::to_string(&shown).expect("settings serialise"),
            labels: l.meta.labels.clone().unwrap_or_default(),
            label_values: l.meta.label_values.map(LabelValues::name),
            num_params: l.model.store.len(),
            is_global: l.meta.global.is_some(),
            summary: format!(
                "<lstm model: {} job, {} x {} {:?}, {} parameters>",
                l.meta.task,
                s.layers,
                s.hidden,
                s.cell,
                l.model.store.len()
            ),
            inner: Arc::new(Mutex::new(l)),
        }
    }

    /// Runs `f` on the model, the GIL released, once the model is free: a stream still open
    /// holds it, and meanwhile Ctrl-C raises `KeyboardInterrupt` here.
    fn with_model<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Loaded) -> T + Send,
    ) -> PyResult<T> {
        let mut f = Some(f);
        loop {
            let done = py.detach(|| {
                let until = std::time::Instant::now() + Duration::from_millis(100);
                loop {
                    let guard = match self.inner.try_lock() {
                        Ok(g) => Some(g),
                        // a panic while the lock was held cannot leave a half-updated model:
                        // no call mutates the weights, so a poisoned lock is still a whole model
                        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                        Err(std::sync::TryLockError::WouldBlock) => None,
                    };
                    if let Some(mut g) = guard {
                        // (a panic in an interruptible call may have left its flag)
                        set_stop(&mut g, None);
                        let l: &mut Loaded = &mut g;
                        return f.take().map(|f| crate::pool::run(|| f(l)));
                    }
                    if std::time::Instant::now() >= until {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
            match done {
                Some(t) => return Ok(t),
                None => py.check_signals()?,
            }
        }
    }

    /// As [`Model::with_model`], `f` on a thread of its own, so that Ctrl-C raises
    /// `KeyboardInterrupt` at once, not when a long `evaluate` or `predict` ends (a probe,
    /// 2026-12-07: 39 s and more). An abandoned call that has begun stops at its models' next
    /// batch ([`lstm::model::SequenceModel::stop`]), its answer dropped; one still waiting for
    /// the model never starts.
    fn with_model_interruptible<T: Send + 'static>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Loaded) -> T + Send + 'static,
    ) -> PyResult<T> {
        let inner = Arc::clone(&self.inner);
        let abandoned = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let gone = Arc::clone(&abandoned);
        std::thread::spawn(move || loop {
            if gone.load(Ordering::SeqCst) {
                return;
            }
            let guard = match inner.try_lock() {
                Ok(g) => Some(g),
                // as in `with_model`: no call mutates the weights
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            if let Some(mut g) = guard {
                // the abandoning Ctrl-C also stops the models at their next batch
                set_stop(&mut g, Some(Arc::clone(&gone)));
                let l: &mut Loaded = &mut g;
                let out = crate::pool::run(|| f(l));
                set_stop(&mut g, None);
                let _ = tx.send(out);
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        });
        let mut rx = rx;
        loop {
            // the receiver goes into the GIL-free wait and back (it may not be shared)
            let (got, back) = py.detach(move || (rx.recv_timeout(Duration::from_millis(100)), rx));
            rx = back;
            match got {
                Ok(t) => return Ok(t),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(e) = py.check_signals() {
                        abandoned.store(true, Ordering::SeqCst);
                        return Err(e);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(value_err("the call failed (a panic in the library)"))
                }
            }
        }
    }

    fn want(&self, task: Task, call: &str) -> PyResult<()> {
        if self.task != task {
            return Err(value_err(format!(
                "{call} needs a {task} model; this is a {} model",
                self.task
            )));
        }
        Ok(())
    }
}

/// Gives a loaded model and its further models the stop flag `stop` (`None`: none).
fn set_stop(l: &mut Loaded, stop: Option<Arc<AtomicBool>>) {
    for m in std::iter::once(&mut l.model).chain(l.members.iter_mut()) {
        m.stop = stop.clone();
    }
}

fn generate_options(
    prime: String,
    length: usize,
    temperature: f32,
    top_k: usize,
    seed: u64,
    bf16: bool,
) -> PyResult<GenerateOptions> {
    let o = GenerateOptions {
        prime,
        length,
        temperature,
        top_k,
        bf16,
        seed,
    };
    job::check_generate(&o).map_err(job_err)?;
    // the text is kept whole: about 16 bytes a piece at most (a word and its space)
    let have = lstm::model::memory::machine_memory().unwrap_or(64 << 30);
    if o.length as u128 * 16 > have {
        return Err(value_err(format!(
            "length {} would need more memory than the {:.1} GB available for the text; ask for fewer pieces",
            o.length,
            have as f64 / 1e9
        )));
    }
    Ok(o)
}

#[pymethods]
impl Model {
    /// Loads a model directory written by `lstm train` or `save()`.
    #[staticmethod]
    fn load(py: Python<'_>, dir: PathBuf) -> PyResult<Model> {
        require_dir(&dir)?;
        let l = py
            .detach(|| crate::pool::run(|| modeldir::load(&dir)))
            .map_err(lib_err)?;
        Ok(Model::new(l))
    }

    /// Trains a new model of `task` with the settings `settings_json` (the defaults with these
    /// laid over them) into the directory `out`, as `lstm train` does; `callback(step, loss,
    /// val_loss, fraction, items_per_s)` is called about twice a second and after each
    /// validation pass (`val_loss` `None` otherwise). Ctrl-C stops training at the next step,
    /// saves, and raises `KeyboardInterrupt`. `label_values` (`"integer"`, `"boolean"`): what
    /// a classifier's labels stand for, recorded with the model (each label must be written
    /// as Python's `str()` writes such a value).
    #[staticmethod]
    #[pyo3(signature = (task, settings_json, out, callback=None, label_values=None))]
    fn train(
        py: Python<'_>,
        task: &str,
        settings_json: &str,
        out: PathBuf,
        callback: Option<Py<PyAny>>,
        label_values: Option<&str>,
    ) -> PyResult<TrainResult> {
        let task = parse_task(task)?;
        let label_values = parse_label_values(task, label_values)?;
        let s = settings_from(task, settings_json)?;
        modeldir::check_new(&out).map_err(|why| unusable(&out, why))?;
        if let Some(d) = &s.data {
            require_file(Path::new(d))?;
        }
        // held to the end: a second training (or a save) into `out` is refused meanwhile, and
        // a directory made here and left without a checkpoint is removed
        let _lock = lock(py, &out)?;
        // another process may have saved a model there between the check and the lock
        modeldir::check_new(&out).map_err(|why| unusable(&out, why))?;
        // built on a thread of its own (a classifier's or a small forecaster's further models
        // and candidate scalings train while it builds) while this one looks for Ctrl-C
        let building = AtomicBool::new(false);
        let mut job = std::thread::scope(|scope| -> PyResult<Job> {
            let (flag, dir) = (&building, out.clone());
            let handle =
                scope.spawn(move || crate::pool::run(|| Job::new_until(task, s, dir, flag)));
            let (began, mut told) = (Instant::now(), false);
            loop {
                let done = py.detach(|| {
                    let t0 = Instant::now();
                    while !handle.is_finished() && t0.elapsed() < Duration::from_millis(100) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    handle.is_finished()
                });
                if done {
                    break;
                }
                if let Err(e) = py.check_signals() {
                    building.store(true, Ordering::SeqCst);
                    let _ = handle.join();
                    return Err(e);
                }
                // verbose: a long silence said (a probe, 2026-12-07: the first line came at
                // 132 s of a 142 s fit), as the binary's spinner says it
                if !told && callback.is_some() && began.elapsed() > Duration::from_secs(2) {
                    told = true;
                    // a print that fails (stdout closed) does not stop the fit; a Ctrl-C
                    // meanwhile does
                    let printed = py.run(
                        c"print('preparing: reading the data, and any further models or candidate \
                          scalings that train before the main model (Ctrl-C now keeps nothing)...', \
                          flush=True)",
                        None,
                        None,
                    );
                    if let Err(e) = printed {
                        if e.is_instance_of::<PyKeyboardInterrupt>(py) {
                            building.store(true, Ordering::SeqCst);
                            let _ = handle.join();
                            return Err(e);
                        }
                    }
                }
            }
            match handle.join() {
                Ok(r) => r.map_err(job_err),
                Err(_) => Err(value_err("building the job failed (a panic)")),
            }
        })?;
        if let Some(kind) = label_values {
            // recorded before the first checkpoint, so that every one of them has it
            check_admitted(kind, job.meta.labels.as_deref().unwrap_or_default())?;
            job.meta.label_values = Some(kind);
        }
        // in Python's words, as its errors are (a probe, 2026-12-07: `--time-column day`)
        let notes: Vec<String> = job
            .notes
            .iter()
            .map(|n| crate::errors::pythonic(n.clone()))
            .collect();
        let stop = AtomicBool::new(false);
        let mut interrupted = false;
        let mut callback_err: Option<PyErr> = None;
        let (mut train_loss, mut val_loss) = (Vec::new(), Vec::new());
        let mut last_call = Instant::now();
        let reason = py.detach(|| {
            let mut on = |e: Event<'_>| {
                let (step, loss, val, fraction, rate) = match e {
                    Event::Step {
                        step,
                        loss,
                        items_per_s,
                        fraction,
                        ..
                    } => {
                        train_loss.push((step, loss));
                        if last_call.elapsed() < Duration::from_millis(500) {
                            return;
                        }
                        (step, loss, None, fraction, items_per_s)
                    }
                    Event::Eval { step, val_loss: v } => {
                        val_loss.push((step, v));
                        let last = train_loss.last().map_or(f32::NAN, |x| x.1);
                        (step, last, Some(v), f64::NAN, f64::NAN)
                    }
                    _ => return,
                };
                last_call = Instant::now();
                Python::attach(|py| {
                    if let Err(e) = py.check_signals() {
                        if e.is_instance_of::<PyKeyboardInterrupt>(py) {
                            interrupted = true;
                        } else {
                            callback_err = Some(e);
                        }
                        stop.store(true, Ordering::SeqCst);
                        return;
                    }
                    if let Some(cb) = &callback {
                        if let Err(e) = cb.call1(py, (step, loss, val, fraction, rate)) {
                            callback_err = Some(e);
                            stop.store(true, Ordering::SeqCst);
                        }
                    }
                });
            };
            crate::pool::run(|| job.train(&loss_plot, &stop, &mut on))
        });
        let reason = reason.map_err(lib_err)?;
        if interrupted {
            return Err(PyKeyboardInterrupt::new_err(format!(
                "training interrupted; the model so far is saved in {}",
                out.display()
            )));
        }
        if let Some(e) = callback_err {
            return Err(e);
        }
        // a run that diverged with finite losses: a warning among the notes (the fit warns)
        let mut notes = notes;
        if let Some(why) = job.divergence() {
            notes.push(format!("warning: {}", crate::errors::pythonic(why)));
        }
        let ensemble_val = py
            .detach(|| crate::pool::run(|| job.members_validation()))
            .map_err(lib_err)?;
        let loaded = py
            .detach(|| crate::pool::run(|| modeldir::load(&out)))
            .map_err(lib_err)?;
        Ok(TrainResult {
            model: Py::new(py, Model::new(loaded))?,
            train_loss,
            val_loss,
            notes,
            ensemble_val,
            stopped: match reason {
                StopReason::Budget => "budget".into(),
                StopReason::Interrupted => "interrupted".into(),
            },
        })
    }

    /// Saves the model into the directory `dir` (created if needed) as `lstm train` does, so
    /// that the binary and `lstm.load` read it. A model already there is replaced; a
    /// directory of other files is refused; another save into it from another thread is
    /// waited for, up to 10 s (a run training into it, or another process, is refused at
    /// once). `label_values` (`"integer"`, `"boolean"`): what
    /// a classifier's labels stand for, recorded in the directory where the model does not
    /// record it (one trained before it was recorded).
    #[pyo3(signature = (dir, label_values=None))]
    fn save(&self, py: Python<'_>, dir: PathBuf, label_values: Option<&str>) -> PyResult<()> {
        let label_values = parse_label_values(self.task, label_values)?;
        if let Some(kind) = label_values {
            check_admitted(kind, &self.labels)?;
        }
        let usable = || match modeldir::check_new(&dir) {
            Ok(()) | Err(modeldir::Unusable::HoldsModel) => Ok(()),
            Err(why) => Err(unusable(&dir, why)),
        };
        usable()?;
        // not into a directory another process or thread is training or saving into; another
        // save of this process is waited for (a run's training, which holds it throughout, is
        // not)
        let _lock = lock_for_save(py, &dir)?;
        usable()?;
        // with a small-data forecaster's further members (member1.safetensors, ...)
        // its loss curve drawn from its own history as `lstm train` draws it, and a curve of
        // the model it replaced removed when it has none (an imported model): pages show it
        self.with_model(py, |l| {
            let meta = match label_values {
                Some(kind) => &modeldir::ModelMeta {
                    label_values: Some(kind),
                    ..l.meta.clone()
                },
                None => &l.meta,
            };
            modeldir::save_with(&dir, meta, &l.model, &l.state, &|staging| {
                modeldir::write_members(staging, &l.members)?;
                loss_plot(staging, &l.state.train_loss, &l.state.val_loss)
            })?;
            let curve = dir.join("loss.svg");
            if l.state.train_loss.is_empty() && l.state.val_loss.is_empty() && curve.is_file() {
                std::fs::remove_file(&curve).map_err(|source| lstm::Error::Io {
                    path: curve.display().to_string(),
                    source,
                })?;
            }
            Ok(())
        })?
        .map_err(lib_err)
    }

    /// The job: `"text"`, `"forecast"` or `"classify"`.
    #[getter]
    fn task(&self) -> String {
        self.task.to_string()
    }

    /// The settings the model was trained with, as JSON (the names of `lstm train`'s
    /// configuration file).
    #[getter]
    fn settings_json(&self) -> String {
        self.settings_json.clone()
    }

    /// The classifier's labels, in the order of its probabilities (empty for other jobs).
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.labels.clone()
    }

    /// What the classifier's labels stand for: `"integer"` or `"boolean"` when the fit that
    /// trained it was given such values (they are kept as text, `labels`), else `None`.
    #[getter]
    fn label_values(&self) -> Option<&'static str> {
        self.label_values
    }

    /// The number of parameters.
    #[getter]
    fn num_params(&self) -> usize {
        self.num_params
    }

    /// Whether the model is a global forecaster (many series, quantiles).
    #[getter]
    fn is_global(&self) -> bool {
        self.is_global
    }

    /// Continues `prime` with `length` generated characters (or words) and returns them
    /// (without the prime), as `lstm generate` does with the same arguments.
    #[pyo3(signature = (prime, length, temperature, top_k, seed, bf16=false))]
    #[allow(clippy::too_many_arguments)] // the Python call's arguments
    fn generate(
        &self,
        py: Python<'_>,
        prime: String,
        length: usize,
        temperature: f32,
        top_k: usize,
        seed: u64,
        bf16: bool,
    ) -> PyResult<String> {
        self.want(Task::Text, "generate")?;
        let o = generate_options(prime, length, temperature, top_k, seed, bf16)?;
        // Ctrl-C stops it: the signals are looked at every 100 ms, the GIL taken for that only
        let mut interrupted = None;
        let mut last = std::time::Instant::now();
        let text = self.with_model(py, |l| {
            job::generate_until(l, &o, &mut |_| {
                if last.elapsed() < Duration::from_millis(100) {
                    return true;
                }
                last = std::time::Instant::now();
                match Python::attach(|py| py.check_signals()) {
                    Ok(()) => true,
                    Err(e) => {
                        interrupted = Some(e);
                        false
                    }
                }
            })
        })?;
        match interrupted {
            Some(e) => Err(e),
            None => text.map_err(job_err),
        }
    }

    /// As [`generate`](Self::generate), yielding the text piece by piece as it is produced.
    #[pyo3(signature = (prime, length, temperature, top_k, seed, bf16=false))]
    fn generate_stream(
        &self,
        prime: String,
        length: usize,
        temperature: f32,
        top_k: usize,
        seed: u64,
        bf16: bool,
    ) -> PyResult<TextStream> {
        self.want(Task::Text, "generate")?;
        let o = generate_options(prime, length, temperature, top_k, seed, bf16)?;
        let (tx, rx) = mpsc::sync_channel::<Result<String, JobError>>(256);
        let inner = self.inner.clone();
        std::thread::spawn(move || {
            let mut l = inner.lock().unwrap_or_else(|p| p.into_inner());
            // (a panic in an interruptible call may have left its flag)
            set_stop(&mut l, None);
            let piece_tx = tx.clone();
            let l: &mut Loaded = &mut l;
            let r = crate::pool::run(|| {
                job::generate_until(l, &o, &mut |piece| {
                    // a reader that went away (the iterator dropped) stops the generation and
                    // frees the model
                    piece_tx.send(Ok(piece.to_string())).is_ok()
                })
            });
            if let Err(e) = r {
                let _ = tx.send(Err(e));
            }
        });
        Ok(TextStream {
            rx: Mutex::new(Some(rx)),
        })
    }

    /// Forecasts the series of the file `data` (a CSV with the training file's columns)
    /// `steps` steps past their last value (default: the model's horizon), with the quantile
    /// `levels` (global forecasters only); returns the CSV `lstm forecast` writes.
    #[pyo3(signature = (data, steps=None, levels=Vec::new()))]
    fn forecast(
        &self,
        py: Python<'_>,
        data: PathBuf,
        steps: Option<usize>,
        levels: Vec<f64>,
    ) -> PyResult<String> {
        self.want(Task::Forecast, "predict")?;
        require_file(&data)?;
        if steps == Some(0) {
            return Err(value_err("steps must be at least 1"));
        }
        if let Some(q) = levels.iter().find(|q| !(**q > 0.0 && **q < 1.0)) {
            return Err(value_err(format!(
                "quantile levels must be between 0 and 1 (exclusive), got {q}"
            )));
        }
        self.with_model_interruptible(py, move |l| {
            if l.meta.global.is_some() {
                job::forecast_global(l, &data, steps, &levels).map(|f| f.csv)
            } else if !levels.is_empty() {
                Err(JobError::Invalid(
                    "quantiles need a global forecaster; this model (forecaster=\"window\") gives point forecasts".into(),
                ))
            } else {
                let steps = match steps {
                    Some(s) => s,
                    None => job::series_spec(l)?.horizon,
                };
                job::forecast(l, &data, steps).map(|f| f.to_csv())
            }
        })?
        .map_err(job_err)
    }

    /// Classifies `texts`: returns the likeliest labels and the probabilities `(n, labels)`.
    fn classify<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
    ) -> PyResult<(Vec<String>, Bound<'py, PyArray1<f32>>, usize)> {
        self.want(Task::Classify, "predict")?;
        let preds = self
            .with_model_interruptible(py, move |l| job::classify(l, &texts))?
            .map_err(job_err)?;
        let k = preds.first().map_or(0, |p| p.probabilities.len());
        let labels = preds.iter().map(|p| p.label.clone()).collect();
        let probs: Vec<f32> = preds.into_iter().flat_map(|p| p.probabilities).collect();
        Ok((labels, PyArray1::from_vec(py, probs), k))
    }

    /// Scores the model on the file `data` as `lstm eval` does; returns its JSON report.
    /// With `per_series`, a global forecaster's report holds `per_series_csv`: each series'
    /// scores in each window, as `lstm eval --per-series` writes them.
    /// With `forecasts`, it holds `forecasts_csv`: each window's forecasts beside the actuals.
    #[pyo3(signature = (data, tail=None, stream=false, holdout=None, windows=None, per_series=false, forecasts=false))]
    #[allow(clippy::too_many_arguments)] // `lstm eval`'s options, spelled out
    fn evaluate(
        &self,
        py: Python<'_>,
        data: PathBuf,
        tail: Option<f64>,
        stream: bool,
        holdout: Option<usize>,
        windows: Option<usize>,
        per_series: bool,
        forecasts: bool,
    ) -> PyResult<String> {
        require_file(&data)?;
        if let Some(t) = tail {
            if !(t > 0.0 && t <= 1.0) {
                return Err(value_err(format!("tail must be in (0, 1], got {t}")));
            }
        }
        let o = EvalOptions {
            tail,
            stream,
            generator: None,
            holdout,
            windows,
            forecasts,
            per_series,
            progress: Default::default(),
        };
        if let (Some(what), false) = (
            [("per_series", per_series), ("forecasts", forecasts)]
                .iter()
                .find(|(_, on)| *on)
                .map(|(w, _)| w),
            self.is_global,
        ) {
            return Err(value_err(format!(
                "{what} is for a global forecaster's backtest; this model is scored as a whole"
            )));
        }
        let report = self
            .with_model_interruptible(py, move |l| job::evaluate(l, &data, &o))?
            .map_err(job_err)?;
        let mut json = report.to_json();
        if let (job::EvalReport::Backtest(b), Some(m)) = (&report, json.as_object_mut()) {
            if per_series {
                m.insert(
                    "per_series_csv".into(),
                    serde_json::Value::String(b.per_series_csv()),
                );
            }
            if let Some(csv) = &b.forecasts_csv {
                m.insert(
                    "forecasts_csv".into(),
                    serde_json::Value::String(csv.clone()),
                );
            }
        }
        Ok(json.to_string())
    }

    fn __repr__(&self) -> String {
        self.summary.clone()
    }
}

/// Generated text, piece by piece (an iterator of `str`).
#[pyclass(module = "lstm._lstm")]
pub struct TextStream {
    rx: Mutex<Option<mpsc::Receiver<Result<String, JobError>>>>,
}

#[pymethods]
impl TextStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<String>> {
        // another thread reading the same stream holds the lock while it waits for a piece
        // without the GIL: wait for the lock without the GIL too (blocking on it with the GIL
        // held would keep that reader from ever returning)
        let mut guard = loop {
            match self.rx.try_lock() {
                Ok(g) => break g,
                Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    py.detach(|| std::thread::sleep(Duration::from_millis(1)));
                    py.check_signals()?;
                }
            }
        };
        // wait in slices, so that Ctrl-C reaches a reader of a slow model
        loop {
            let Some(rx) = guard.take() else {
                return Ok(None);
            };
            let (rx, got) = py.detach(move || {
                let got = rx.recv_timeout(Duration::from_millis(100));
                (rx, got)
            });
            match got {
                Ok(Ok(piece)) => {
                    *guard = Some(rx);
                    return Ok(Some(piece));
                }
                Ok(Err(e)) => return Err(job_err(e)),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    *guard = Some(rx);
                    py.check_signals()?;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
    }
}

/// The kind named by Python's `label_values` argument, for a classifier.
fn parse_label_values(task: Task, name: Option<&str>) -> PyResult<Option<LabelValues>> {
    match name {
        None => Ok(None),
        Some(_) if task != Task::Classify => {
            Err(value_err("label_values is for a classifier's labels"))
        }
        Some(name) => LabelValues::parse(name).map(Some).ok_or_else(|| {
            value_err(format!(
                "label_values is \"integer\", \"boolean\" or None, not {name:?}"
            ))
        }),
    }
}

/// Whether every label is written as a value of `kind`.
fn check_admitted(kind: LabelValues, labels: &[String]) -> PyResult<()> {
    match labels.iter().find(|l| !kind.admits(l)) {
        Some(l) => Err(value_err(format!(
            "label_values {:?}: the label {l:?} is not written as one",
            kind.name()
        ))),
        None => Ok(()),
    }
}
