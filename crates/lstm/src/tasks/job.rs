//! One interface over the three jobs (text, forecast, classify): [`Job`] reads a job's data,
//! builds or resumes its model and trains it; [`evaluate`] scores a saved model on a file;
//! [`generate`], [`forecast`] and [`classify`] predict with one. The binary parses and
//! validates its flags into [`Settings`] and calls these; the pipeline lives here once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::json;

use crate::data::labelled::{self, Examples, Labelled};
use crate::data::panel::{self, Panel, PanelSpec};
use crate::data::series::Transform;
use crate::data::series::{self, ForecastMetrics, SeriesSpec, Table};
use crate::data::vocab::{TokenKind, Vocab};
use crate::error::Error;
use crate::model::infer::Precision;
use crate::model::{Head, InputKind, ModelConfig, SequenceModel};
use crate::tasks::classify::{self as classify_task, ClassifyData, ClassifyEval};
use crate::tasks::forecast::SeriesData;
use crate::tasks::global::{self, GlobalData, GlobalOptions, GlobalSpec, Scaling};
use crate::tasks::metrics;
use crate::tasks::modeldir::{
    self, Loaded, ModelMeta, Seen, TextsSeen, TrainingState, FORMAT, FORMAT_VERSION,
};
use crate::tasks::settings::{Forecaster, LrSchedule};
use crate::tasks::settings::{Settings, Task};
use crate::tasks::text::{self, Encoded, TextData, TextEval, TextTask};
use crate::tasks::train::{self, Event, ExtraFiles, StopReason, TrainTask};

/// The text a text job trains on when its settings name no data file: tinyshakespeare.
pub const BUNDLED_TEXT: &str = include_str!("../../../../data/tinyshakespeare.txt");

/// What can go wrong in a job: an error of the layers below, settings or data the job cannot
/// use, or either with what the job was doing when it happened.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// An error of the layers below.
    #[error(transparent)]
    Lib(#[from] Error),
    /// The settings, the data or the model cannot make this job (the message says why).
    #[error("{0}")]
    Invalid(String),
    /// An error with what the job was doing when it happened.
    #[error("{context}")]
    Context {
        /// What the job was doing.
        context: String,
        /// The error.
        #[source]
        source: Box<JobError>,
    },
}

/// Result with [`JobError`].
pub type JobResult<T> = std::result::Result<T, JobError>;

fn context<T, E: Into<JobError>>(
    r: std::result::Result<T, E>,
    f: impl FnOnce() -> String,
) -> JobResult<T> {
    r.map_err(|e| JobError::Context {
        context: f(),
        source: Box::new(e.into()),
    })
}

fn invalid(msg: impl Into<String>) -> JobError {
    JobError::Invalid(msg.into())
}

/// A job ready to train: its description, model, training state, data and output directory.
pub struct Job {
    /// What is saved with the model (task, configuration, vocabulary, labels, series, settings).
    pub meta: ModelMeta,
    /// The model.
    pub model: SequenceModel,
    /// Steps, losses and RNG states so far (empty for a new run).
    pub state: TrainingState,
    /// Where checkpoints are written.
    pub out: PathBuf,
    /// What the job has to say about its data before training (a summary, masked values).
    pub notes: Vec<String>,
    /// A global forecaster's or a classifier's further models, trained while the job was built
    /// (or loaded with the run it resumes), saved with every checkpoint.
    pub members: Vec<SequenceModel>,
    data: Box<dyn TrainTask>,
    /// A new run (not [`Job::resume`]d): its `out` must be new or empty when training begins.
    fresh: bool,
}

impl Job {
    /// Reads the data `settings` name and builds a new model for `task`, to be saved in `out`.
    ///
    /// # Errors
    /// Unreadable or unusable data, settings the data cannot satisfy, a model too large.
    pub fn new(task: Task, settings: Settings, out: PathBuf) -> JobResult<Job> {
        Job::build(task, settings, out, None, &AtomicBool::new(false))
    }

    /// [`Job::new`], giving up with [`Error::Interrupted`] when `stop` is raised while it
    /// trains what comes before the first model (a classifier's or a small data set's further
    /// models, the candidate scalings): for a caller that can be interrupted then (Python).
    ///
    /// # Errors
    /// As [`Job::new`]; [`Error::Interrupted`].
    pub fn new_until(
        task: Task,
        settings: Settings,
        out: PathBuf,
        stop: &AtomicBool,
    ) -> JobResult<Job> {
        Job::build(task, settings, out, None, stop)
    }

    /// Continues a saved run with `settings` (the saved ones, with a new budget perhaps): the
    /// vocabulary, labels and scaling are the saved ones, the data is read again. The run keeps
    /// the settings it was saved with, but for [`RESUME_MAY_CHANGE`] (its budget, threads...)
    /// and the data files' paths (when the run recorded their contents, which are compared
    /// with the files').
    ///
    /// # Errors
    /// As [`Job::new`]; a setting given another value than the saved one ([`resume_changes`]),
    /// unless it is the job's default there, which a run resolves (a default `horizon` of 0, a
    /// default `hidden` that large data made larger).
    pub fn resume(loaded: Loaded, settings: Settings, out: PathBuf) -> JobResult<Job> {
        // (a library probe, 2026-12-07: `hidden` changed was saved beside the old network; the
        // review after: the settings a run started with, defaults it then resolved, were
        // refused)
        let saved = &loaded.meta.settings;
        let task = loaded.meta.task;
        let by_contents = !loaded.meta.seen.is_empty();
        let mut compared = settings.clone();
        if by_contents {
            compared.data.clone_from(&saved.data);
            if compared.val.is_some() == saved.val.is_some() {
                compared.val.clone_from(&saved.val);
            }
        }
        let defaults = match serde_json::to_value(Settings::defaults(task)) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let changed: Vec<String> = resume_changes(task, saved, &compared)
            .into_iter()
            // (a default given as such is a change: the second review, 2026-12-08)
            .filter(|c| {
                compared.given.contains(&c.key)
                    || defaults.get(&c.key).map(show).as_deref() != Some(c.given.as_str())
            })
            .map(|c| format!("{} {} (saved: {})", c.key, c.given, c.saved))
            .collect();
        if !changed.is_empty() {
            return Err(invalid(format!(
                "a resumed run keeps the settings it was started with; only {} may change, not {}: start a new run to change them",
                RESUME_MAY_CHANGE.join(", "),
                changed.join(", ")
            )));
        }
        // the saved settings, with what may change taken from those given
        let mut s = saved.clone();
        (s.steps, s.minutes, s.epochs) = (settings.steps, settings.minutes, settings.epochs);
        (s.save_every, s.threads, s.on_nonfinite) =
            (settings.save_every, settings.threads, settings.on_nonfinite);
        if by_contents {
            (s.data, s.val) = (settings.data, settings.val);
        }
        let settings = s;
        // a schedule over the budget is stretched over the new one from where the run is: its
        // rate jumps there, and the run is not the one a run of the new budget would have been
        // (a probe, 2026-12-07: said nowhere)
        // (no budget given keeps the saved one, which a rule may have set: a review, 2026-12-07)
        let given = (settings.steps, settings.epochs, settings.minutes);
        let stretched = (settings.lr_schedule != LrSchedule::Constant
            && given != (None, None, None)
            && (saved.steps, saved.epochs, saved.minutes) != given)
            .then(|| {
                format!(
                    "note: the {} learning-rate schedule runs over the budget, so with another budget it is stretched over the new one from step {}: the rate changes there at once, and the run differs from one trained with the new budget from the start",
                    show(&serde_json::to_value(settings.lr_schedule).unwrap_or_default()),
                    loaded.state.step
                )
            });
        let mut job = Job::build(
            loaded.meta.task,
            settings,
            out,
            Some(loaded),
            &AtomicBool::new(false),
        )?;
        job.notes.extend(stretched);
        Ok(job)
    }

    fn build(
        task: Task,
        s: Settings,
        out: PathBuf,
        resumed: Option<Loaded>,
        stop: &AtomicBool,
    ) -> JobResult<Job> {
        s.validate()?;
        // the further models and candidate scalings trained while building run on the
        // settings' threads too (their results depend on the count), whoever calls; on this
        // thread's budget, not the process's, so that another job building or training
        // meanwhile on another count changes neither (a probe, 2026-12-07: two Python fits
        // in two threads, of 1 and 2 threads, each changed the other's weights)
        let threads = crate::kernels::resolve_threads(s.threads);
        let (meta, data, notes, trained) =
            crate::kernels::with_threads(threads, || -> JobResult<_> {
                Ok(match task {
                    Task::Text => text_job(s, resumed.as_ref())?,
                    Task::Forecast => forecast_job(s, resumed.as_ref(), stop)?,
                    Task::Classify => classify_job(s, resumed.as_ref(), stop)?,
                })
            })?;
        let fresh = resumed.is_none();
        let (meta, model, state, members) = fresh_or_resumed(resumed, meta, trained)?;
        Ok(Job {
            fresh,
            meta,
            model,
            state,
            out,
            notes,
            members,
            data,
        })
    }

    /// The job's task.
    pub fn task(&self) -> Task {
        self.meta.task
    }

    /// What the job counts as training items: `chars`, `windows` or `examples`.
    pub fn unit(&self) -> &'static str {
        match self.meta.task {
            Task::Text => "chars",
            Task::Forecast => "windows",
            Task::Classify => "examples",
        }
    }

    /// The step budget, counting from the start of training ([`train::total_steps`]).
    pub fn total_steps(&self) -> Option<u64> {
        train::total_steps(&self.meta, self.data.as_ref())
    }

    /// Sets the library's thread count from the settings and trains until the budget is used
    /// up or `stop` is raised ([`train::train`]), writing checkpoints to [`Job::out`] with
    /// whatever `extra` writes beside them and reporting to `on`.
    ///
    /// # Errors
    /// As [`train::train`]; [`crate::Error::Config`] when a new run's [`Job::out`] is not new or
    /// empty as training begins ([`modeldir::check_new`]: a model or other files there).
    pub fn train(
        &mut self,
        extra: ExtraFiles<'_>,
        stop: &AtomicBool,
        on: &mut dyn FnMut(Event<'_>),
    ) -> crate::Result<StopReason> {
        self.train_with(extra, stop, on, None)
    }

    /// Signs that the training done diverged while its losses stayed finite (a NaN or infinite
    /// loss stops training instead, [`crate::Error::Diverged`]), worded for the user: a text
    /// model's last validation loss above 1.5 times that of guessing every token uniformly (ln
    /// of the vocabulary's size, about where an untrained model starts) with its last training
    /// loss above that of guessing too, or a weight of any of
    /// the job's models at [`DIVERGED_WEIGHT`] or beyond. `None` when neither shows. The model
    /// is saved either way: this is for a warning beside it.
    pub fn divergence(&self) -> Option<String> {
        let s = &self.meta.settings;
        let lr = crate::tasks::train::lr_shown(s.lr);
        let again = format!("lower --lr ({lr}) and train again");
        if self.meta.task == Task::Text {
            let last = |l: &[(u64, f32)]| l.last().map(|x| x.1);
            if let (Some(v), Some(t), Some(vocab)) = (
                last(&self.state.val_loss),
                last(&self.state.train_loss),
                &self.meta.vocab,
            ) {
                let uniform = (vocab.len() as f32).ln();
                // half as much again: an untrained model starts about at `uniform`, and one
                // step may leave it a little above; and the training loss too, which a model
                // that overfits (or a --val text unlike the training text) has low (the
                // review, 2026-12-08: a 6-token text overfit to 0.12 was called diverged)
                if v > 1.5 * uniform && t > uniform {
                    return Some(format!(
                        "the validation loss ({v:.4}) is far above that of guessing each of the {} tokens uniformly (ln {} = {uniform:.4}): training diverged; {again}",
                        vocab.len(),
                        vocab.len()
                    ));
                }
            }
        }
        let largest = std::iter::once(&self.model)
            .chain(&self.members)
            .flat_map(|m| {
                m.store.tensors().iter().filter_map(|t| {
                    let w = m.store.get(&t.name)?;
                    let top = w.iter().fold(0.0f32, |a, x| a.max(x.abs()));
                    Some((top, t.name.clone()))
                })
            })
            .fold(
                (0.0f32, String::new()),
                |a, b| if b.0 > a.0 { b } else { a },
            );
        (largest.0 >= DIVERGED_WEIGHT).then(|| {
            format!(
                "a weight has grown to {:.2e} (in `{}`; trained weights are rarely above 100): training diverged, and the model may answer with numbers that are meaningless or not finite; {again}",
                largest.0, largest.1
            )
        })
    }

    /// The validation loss and accuracy of all the job's models predicting together (a
    /// classifier's averaged class probabilities, [`train::TrainTask::validate_members`]): the figure
    /// `lstm eval` gives the model directory on the validation rows, where the first model's
    /// own validation loss (the one training reports) describes one model alone. `None` for one
    /// model, a task without such a figure, or no validation rows.
    ///
    /// # Errors
    /// Model errors.
    pub fn members_validation(&mut self) -> crate::Result<Option<(f32, f64)>> {
        if self.members.is_empty() {
            return Ok(None);
        }
        let threads = crate::kernels::resolve_threads(self.meta.settings.threads);
        crate::kernels::with_threads(threads, || {
            self.data
                .validate_members(&mut self.model, &mut self.members)
        })
    }

    /// [`Job::train`], data-parallel over the processes of `group` when given (one rank of an
    /// MPI run: [`train::train_with`]); only rank 0 writes checkpoints.
    ///
    /// # Errors
    /// As [`train::train_with`].
    pub fn train_with(
        &mut self,
        extra: ExtraFiles<'_>,
        stop: &AtomicBool,
        on: &mut dyn FnMut(Event<'_>),
        mut group: Option<&mut dyn crate::tasks::parallel::Collective>,
    ) -> crate::Result<StopReason> {
        // a new run's directory is checked here as the shells check it before they build the
        // job (a library probe, 2026-12-07: a text run replaced a forecaster's directory, and
        // wrote among a folder's data files); by the rank that writes
        if self.fresh && self.state.step == 0 {
            let writes = group.as_ref().is_none_or(|g| g.rank() == 0);
            let mut refused = writes
                .then(|| modeldir::check_new(&self.out).err())
                .flatten()
                .map(|why| why.to_string());
            // every rank learns it (the review: the others waited in the first step's sum)
            if let Some(g) = group.as_mut() {
                let mut flag = [if refused.is_some() { 1.0f32 } else { 0.0 }];
                g.allreduce_sum(&mut flag)?;
                if flag[0] > 0.0 && refused.is_none() {
                    refused = Some("rank 0 found it unusable".into());
                }
            }
            if let Some(why) = refused {
                return Err(crate::Error::Config(format!(
                    "cannot train a new model into {}: {why}; choose a new or empty directory (or resume the model there)",
                    self.out.display()
                )));
            }
            // a second call on this job continues what the first one saved
            self.fresh = false;
        }
        // on this thread's budget (see `build`)
        let threads = crate::kernels::resolve_threads(self.meta.settings.threads);
        let members = &self.members;
        let with_members = |dir: &Path, train: &[(u64, f32)], val: &[(u64, f32)]| {
            extra(dir, train, val)?;
            modeldir::write_members(dir, members)
        };
        crate::kernels::with_threads(threads, || {
            train::train_with(
                &self.meta,
                &mut self.model,
                &mut self.state,
                self.data.as_mut(),
                &self.out,
                &with_members,
                stop,
                on,
                group,
            )
        })
    }
}

/// Settings keys a resumed run may change: its budget and how it runs, not what it trains.
pub const RESUME_MAY_CHANGE: [&str; 6] = [
    "steps",
    "minutes",
    "epochs",
    "save_every",
    "threads",
    "on_nonfinite",
];

/// A setting in which the settings given to resume a run differ from the saved ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedSetting {
    /// The settings key (as in `config.json`'s `settings`).
    pub key: String,
    /// The value given, as a command line spells it.
    pub given: String,
    /// The saved value, spelled the same way.
    pub saved: String,
}

/// The settings other than [`RESUME_MAY_CHANGE`] in which `given` differs from `saved`, in key
/// order: a resumed run keeps the settings it was started with, so these are what a resume
/// must refuse (an empty list: `given` may resume `saved`).
///
/// A value the run resolved when it started is the value given (a probe, 2026-12-07: the
/// original command line was refused): `--scaling auto` for the scaling it chose, a text
/// model's default shape for the larger one [`text_size`] gave a long budget, and a global
/// forecaster's default size for the one [`global_size`] gave large data.
pub fn resume_changes(task: Task, saved: &Settings, given: &Settings) -> Vec<ChangedSetting> {
    let object = |s: &Settings| match serde_json::to_value(s) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let (a, b) = (object(saved), object(given));
    let defaults = object(&Settings::defaults(task));
    let enlarged = task == Task::Text && {
        let mut big = Settings::defaults(Task::Text);
        big.minutes = Some(TEXT_LARGE_MINUTES);
        text_size(&mut big);
        (saved.layers, saved.hidden, saved.dropout, saved.lr_schedule)
            == (big.layers, big.hidden, big.dropout, big.lr_schedule)
    };
    let (hidden, lr_schedule, dropout) = global_size(LARGE_DATA_WINDOWS);
    let mut big = Settings::defaults(Task::Forecast);
    (big.hidden, big.lr_schedule, big.dropout) = (hidden, lr_schedule, dropout);
    let large = object(&big);
    let sized = task == Task::Forecast && saved.forecaster == Forecaster::Global;
    let resolved = |key: &str, now: &serde_json::Value| match key {
        "scaling" => now == "auto",
        // a text model's default shape enlarged by a long budget, a global forecaster's
        // default size changed for large data (each setting on its own)
        // (given, even at the default, it would have been kept: a change)
        "hidden" | "dropout" | "lr_schedule" => {
            !given.given.contains(key)
                && defaults.get(key) == Some(now)
                && (enlarged || (sized && large.get(key) == a.get(key)))
        }
        _ => false,
    };
    let null = serde_json::Value::Null;
    a.iter()
        .filter(|(key, _)| !RESUME_MAY_CHANGE.contains(&key.as_str()))
        .filter_map(|(key, was)| {
            let now = b.get(key).unwrap_or(&null);
            (now != was && !resolved(key, now)).then(|| ChangedSetting {
                key: key.clone(),
                given: show(now),
                saved: show(was),
            })
        })
        .collect()
}

/// A setting's value as a command line spells it.
fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "(none)".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().map(show).collect::<Vec<_>>().join(","),
        // most settings are f32, widened on the way to JSON: show them as they were typed
        serde_json::Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            if (f as f32) as f64 == f {
                (f as f32).to_string()
            } else {
                f.to_string()
            }
        }
        v => v.to_string(),
    }
}

/// The model configuration the settings describe, for the given input and head.
pub fn model_config(s: &Settings, input: InputKind, head: Head) -> ModelConfig {
    ModelConfig {
        input,
        mode: s.cell,
        peephole: s.peephole(),
        coupled: s.coupled(),
        hidden_size: s.hidden,
        num_layers: s.layers,
        proj_size: s.proj,
        bidirectional: s.bidirectional,
        dropout: s.dropout,
        recurrent_dropout: s.recurrent_dropout,
        head_dropout: s.dropout,
        head,
        optimizer: s.optimizer_config(),
        clip_grad_norm: s.clip,
        ..Default::default()
    }
}

/// A new model's description (without vocabulary, labels or series).
pub fn meta(task: Task, model: &ModelConfig, s: &Settings) -> ModelMeta {
    ModelMeta {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        task,
        model: model.clone(),
        vocab: None,
        labels: None,
        series: None,
        global: None,
        settings: s.clone(),
        seen: Vec::new(),
        texts_seen: None,
        label_values: None,
    }
}

fn fresh_or_resumed(
    resumed: Option<Loaded>,
    meta: ModelMeta,
    members: Vec<SequenceModel>,
) -> JobResult<(ModelMeta, SequenceModel, TrainingState, Vec<SequenceModel>)> {
    match resumed {
        Some(l) => Ok((
            ModelMeta {
                settings: meta.settings,
                // saved in the current format from now on
                format_version: FORMAT_VERSION,
                ..l.meta
            },
            l.model,
            l.state,
            l.members,
        )),
        None => {
            let model = SequenceModel::new(&meta.model, meta.settings.seed)?;
            Ok((meta, model, TrainingState::default(), members))
        }
    }
}

/// A job's description, its training data, what it has to tell the user about its data, and a
/// global forecaster's further models (already trained).
type Built = (
    ModelMeta,
    Box<dyn TrainTask>,
    Vec<String>,
    Vec<SequenceModel>,
);

/// On a resume with another budget, a model's further models (a classifier's, a small
/// forecaster's) are not trained on: said (a probe, 2026-12-07: `config.json` then gave the new
/// budget for all three of a forecaster's models, without a word).
fn members_keep_budget(resumed: Option<&Loaded>, s: &Settings) -> Option<String> {
    let l = resumed?;
    let was = &l.meta.settings;
    let same = (was.steps, was.epochs, was.minutes) == (s.steps, s.epochs, s.minutes);
    (!l.members.is_empty() && !same).then(|| {
        format!(
            "note: a resume with another budget continues the first model only; the {} further models keep the budget of the run that first trained them",
            l.members.len(),
        )
    })
}

// ---------------------------------------------------------------- text

/// Time budgets from this many minutes on train the larger text model of [`text_size`].
pub const TEXT_LARGE_MINUTES: f64 = 10.0;

/// The text job's model for its budget: a run that leaves the size, dropout and schedule to
/// the job (none given, see [`Settings::given`], and each at its default) with a budget of
/// [`TEXT_LARGE_MINUTES`] or more trains 2 layers of 512 with dropout 0.4 on a cosine schedule;
/// other runs keep the charlm-2x256 defaults (dropout 0.1, constant rate).
/// Chosen at 10 minutes on this machine, where the larger model (about 4,500 steps) generalised
/// best to texts it never saw (docs/text-quality.md); shorter budgets were not measured, so they
/// keep the model they had.
pub fn text_size(s: &mut Settings) {
    let d = Settings::defaults(Task::Text);
    // a value given equal to the default is kept (a probe, 2026-12-08: `--minutes 10 --hidden
    // 256` trained 2x512, silently)
    let default_shape = s.left("layers", &s.layers, &d.layers)
        && s.left("hidden", &s.hidden, &d.hidden)
        && s.left("dropout", &s.dropout, &d.dropout)
        && s.left("lr_schedule", &s.lr_schedule, &d.lr_schedule);
    if default_shape && s.minutes.is_some_and(|m| m >= TEXT_LARGE_MINUTES) {
        s.hidden = 512;
        s.dropout = 0.4;
        s.lr_schedule = LrSchedule::Cosine;
    }
}

/// Refuses a text or classify run with no budget at all (forecasters set one by their rule):
/// it would train until interrupted.
fn require_budget(s: &Settings, task: Task) -> JobResult<()> {
    if s.steps.is_none() && s.epochs.is_none() && s.minutes.is_none() {
        let default = match task {
            Task::Classify => "epochs 8",
            _ => "minutes 4",
        };
        return Err(invalid(format!(
            "no training budget: give --steps, --epochs or --minutes (a {task} run's default is --{default})"
        )));
    }
    Ok(())
}

fn text_job(mut s: Settings, resumed: Option<&Loaded>) -> JobResult<Built> {
    require_budget(&s, Task::Text)?;
    if s.bidirectional {
        return Err(invalid(
            "a text model cannot be bidirectional: its backward direction would read the characters it is trained to predict, and it could not generate; bidirectional is for classifiers (train classify)",
        ));
    }
    if resumed.is_none() {
        text_size(&mut s);
    }
    // a resumed model reads its files as it read them (see `read_text_for`)
    let learned = resumed.and_then(|l| l.meta.vocab.as_ref());
    let file = match &s.data {
        Some(p) => crate::data::text::read_text_for(Path::new(p), learned)?,
        None => BUNDLED_TEXT.to_string(),
    };
    let n = file.chars().count();
    // `--tail`: the last characters are never read, counted as `lstm eval --tail` counts them
    let kept = if s.tail > 0.0 {
        n - crate::data::tail_units(n, s.tail, 2)
    } else {
        n
    };
    let full = match file.char_indices().nth(kept) {
        Some((at, _)) => file[..at].to_string(),
        None => file.clone(),
    };
    let (train_text, val_text) = match &s.val {
        Some(p) => (
            full,
            crate::data::text::read_text_for(Path::new(p), learned)?,
        ),
        None => crate::data::text::split_validation(&full, s.val_fraction),
    };
    let trained = train_text.chars().count();
    let mut seen = vec![Seen::split(
        crate::data::fingerprint(file.as_bytes()),
        n,
        trained,
        kept,
        s.val.is_some(),
    )];
    if s.val.is_some() {
        seen.push(Seen {
            fingerprint: crate::data::fingerprint(val_text.as_bytes()),
            units: val_text.chars().count(),
            trained: (0, 0),
            validated: (0, val_text.chars().count()),
        });
    }
    let vocab = match resumed.and_then(|l| l.meta.vocab.clone()) {
        Some(v) => v,
        None => {
            let mut v = Vocab::chars_from(&train_text);
            // its files are read so from now on (`read_text_for`)
            v.line_ends_read = true;
            v
        }
    };
    let data = context(
        TextData::new(
            Encoded::new(&vocab, &train_text),
            Encoded::new(&vocab, &val_text),
            s.seq_len,
            s.batch,
        ),
        || {
            let split = match &s.val {
                Some(v) => format!(" with the validation text {v} (--val)"),
                None => format!(
                    " ({kept} characters: the first {trained} for training, the last {} for validation, --val-fraction {})",
                    kept - trained,
                    s.val_fraction
                ),
            };
            format!(
                "cannot train on {}{split}",
                s.data.as_deref().unwrap_or("the bundled text")
            )
        },
    )?;
    let v = vocab.len();
    let mc = model_config(
        &s,
        InputKind::OneHot { vocab: v },
        Head::PerStep { outputs: v },
    );
    crate::model::memory::check_model_memory(
        &mc,
        s.batch,
        s.seq_len,
        &["--hidden", "--layers", "--batch", "--seq-len"],
    )?;
    same_data(resumed, &s, &seen)?;
    let mut m = meta(Task::Text, &mc, &s);
    m.vocab = Some(vocab.clone());
    m.seen = seen;
    let notes = data.validation_note().into_iter().collect();
    let task = TextTask {
        data,
        vocab,
        sample_length: 300,
    };
    Ok((m, Box::new(task), notes, Vec::new()))
}

// ---------------------------------------------------------------- forecast

fn forecast_job(s: Settings, resumed: Option<&Loaded>, stop: &AtomicBool) -> JobResult<Built> {
    if s.tail > 0.0 {
        return Err(invalid(
            "--tail is for text and classify; a forecaster keeps its test rows with --holdout N (steps at the end of each series)",
        ));
    }
    match s.forecaster {
        Forecaster::Global => global_job(s, resumed, stop),
        Forecaster::Window => window_job(s, resumed),
    }
}

/// The most steps [`global_default_steps`] gives: M4 hourly's validation split (the
/// second-to-last 48 hours) scored sMAPE 8.20, MASE 0.768, MSIS 7.00 with 24,000 steps against
/// 8.67, 0.873, 8.55 with 12,000; without dropout ([`global_size`]) a step is faster, and
/// 28,000 train in about the time 24,000 took with it (docs/forecasting.md), inside the 10
/// minutes issue 20 allows.
pub const GLOBAL_MAX_STEPS: u64 = 28_000;

/// The step budget of a global forecaster when none is given: about 20 passes over the
/// training windows, at least 300 steps and at most 28,000 ([`GLOBAL_MAX_STEPS`]).
pub fn global_default_steps(windows: usize, batch: usize) -> u64 {
    ((windows as u64 * 20) / batch.max(1) as u64).clamp(300, GLOBAL_MAX_STEPS)
}

/// Forecast origins [`choose_scaling`] scores each candidate from: the training history less
/// one horizon, and less two.
pub const SCALING_CUTS: usize = 2;

/// How much lower (as a fraction) another scaling's validation sMAPE must be than mean-abs's
/// for [`choose_scaling`] to take it: mean-abs, measured on M4 and on most of the shared
/// series, is kept unless another is clearly better (single-seed scores differ by more than
/// 5% from seed to seed).
pub const SCALING_MARGIN: f64 = 0.1;

/// The scaling of a global forecaster left to the data (`--scaling auto`, the default). A large
/// data set (from [`LARGE_DATA_WINDOWS`] windows) takes mean-abs. A small one tries mean-abs,
/// trend, seasonal and (when every training value is positive) log-trend and log-seasonal
/// ([`Scaling`]), on [`SCALING_CUTS`] rolling
/// origins: for a cut `k` (1, 2), each candidate is trained (the default budget of its windows,
/// or the run's `--steps` if fewer) on each series' training history less `k` horizons and
/// scored by the sMAPE of its forecast of the next horizon; a cut is used only if every series
/// keeps context and two horizons (so a candidate trains on a horizon's worth of windows at
/// least). Mean-abs is kept unless another candidate's mean sMAPE over every scored window is
/// [`SCALING_MARGIN`] lower; then the lowest is taken (the earlier in that order on a tie).
/// No usable cut: mean-abs. The final model is then trained as usual on the whole training
/// history.
///
/// # Errors
/// Model errors while training a candidate; [`Error::Interrupted`] when `stop` is raised.
pub fn choose_scaling(
    s: &Settings,
    spec: &GlobalSpec,
    panel: &Panel,
    history: &[usize],
    windows: usize,
    stop: &AtomicBool,
) -> JobResult<(Scaling, Option<String>)> {
    if windows >= LARGE_DATA_WINDOWS {
        return Ok((Scaling::MeanAbs, None));
    }
    if spec.distribution.needs_scale() {
        return Ok((
            Scaling::MeanAbs,
            Some("scaling: mean-abs (the negative binomial's)".into()),
        ));
    }
    let h = spec.horizon;
    let cuts: Vec<Vec<usize>> = (1..=SCALING_CUTS)
        .map(|k| history.iter().map(|&n| n.saturating_sub(k * h)).collect())
        .filter(|short: &Vec<usize>| short.iter().all(|&n| n >= spec.window() + h))
        .collect();
    if cuts.is_empty() {
        return Ok((
            Scaling::MeanAbs,
            Some(
                "scaling: mean-abs (the series are too short to choose it on their last horizons)"
                    .into(),
            ),
        ));
    }
    let positive = panel
        .series
        .iter()
        .zip(history)
        .all(|(x, &n)| x.target[..n].iter().all(|&v| v.is_nan() || v > 0.0));
    let mut cands = vec![Scaling::MeanAbs, Scaling::Trend, Scaling::Seasonal];
    if positive {
        cands.extend([Scaling::LogTrend, Scaling::LogSeasonal]);
    }
    let mut scores = Vec::new();
    for &cand in &cands {
        let mut sp = spec.clone();
        sp.scaling = cand;
        let full = global::prepare(&sp, panel, history, 0)?;
        let (mut total, mut n) = (0.0, 0usize);
        for short in &cuts {
            let mut data =
                GlobalData::new(sp.clone(), global::prepare(&sp, panel, short, 0)?, s.batch)?;
            let mc = model_config(s, sp.input_kind(), sp.head());
            let rule = global_default_steps(data.windows(), s.batch);
            let steps = s.steps.map_or(rule, |n| n.min(rule));
            let mut model = train_quietly(
                &mc,
                &mut data,
                s.seed,
                s.seed.wrapping_add(0x5ca1e),
                steps,
                s.lr_schedule,
                s.precision,
                stop,
            )?;
            let fc = global::forecast(&sp, &mut model, &full, short, h, &[])?;
            for ((p, &o), f) in full.iter().zip(short).zip(&fc) {
                let y: Vec<f64> = p.y[..o + h].iter().map(|&v| v as f64).collect();
                if let Ok(w) =
                    metrics::WindowScore::new(&y[..o], &y[o..], &f.median, &[], sp.season)
                {
                    if let Some(x) = w.smape {
                        total += x;
                        n += 1;
                    }
                }
            }
        }
        scores.push(if n > 0 {
            total / n as f64
        } else {
            f64::INFINITY
        });
    }
    // mean-abs unless another is clearly better; then the best (the first on a tie)
    let mut best = 0;
    for (i, &x) in scores.iter().enumerate().skip(1) {
        if x < scores[best] && x < (1.0 - SCALING_MARGIN) * scores[0] {
            best = i;
        }
    }
    let choice = cands[best];
    let tried: Vec<String> = cands
        .iter()
        .zip(&scores)
        .map(|(c, x)| format!("{} {x:.3}", c.name()))
        .collect();
    Ok((
        choice,
        Some(format!(
            "scaling: {} (chosen on the last {} horizon(s) of {h} steps of the training data, sMAPE: {})",
            choice.name(),
            cuts.len(),
            tried.join(", ")
        )),
    ))
}

/// Trains a new model of configuration `mc` (weights from `model_seed`) for `steps` batches of
/// `data` (drawn with `data_seed`) under `schedule`, without checkpoints or progress; a batch
/// with a non-finite loss or gradient is skipped.
///
/// # Errors
/// Model errors other than a non-finite batch.
#[allow(clippy::too_many_arguments)] // a run's settings, spelled out for its two callers
fn train_quietly(
    mc: &ModelConfig,
    data: &mut GlobalData,
    model_seed: u64,
    data_seed: u64,
    steps: u64,
    schedule: LrSchedule,
    precision: crate::kernels::Precision,
    stop: &AtomicBool,
) -> JobResult<SequenceModel> {
    let mut model = SequenceModel::new(mc, model_seed)?;
    model.set_precision(precision)?;
    let mut rng = ChaCha8Rng::seed_from_u64(data_seed);
    for step in 0..steps {
        if stop.load(Ordering::SeqCst) {
            return Err(Error::Interrupted.into());
        }
        model.optimizer.lr_scale = schedule.scale(step as f64 / steps.max(1) as f64);
        let b = data.next_batch(&mut rng, step);
        match model.train_step(&b.as_batch()) {
            Ok(_) | Err(Error::Diverged(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(model)
}

/// Models a global forecaster of small data (under [`LARGE_DATA_WINDOWS`] training windows)
/// trains from different seeds, their forecasts combined by their median
/// ([`global::combine`]): one model of a few hundred windows depends on its seed (the airline
/// passengers' 1957-1958 sMAPE ranged 4.7-14.8% over three seeds with log-seasonal scaling).
pub const SMALL_DATA_MODELS: usize = 3;

/// The seed of a global forecaster's further model `k` (from 1), for a run of seed `seed`.
pub fn member_seed(seed: u64, k: usize) -> u64 {
    seed.wrapping_add((k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// A weight this large after training marks a diverged run ([`Job::divergence`]): with Adam a
/// weight moves at most about the learning rate per step, so 28,000 steps at 1e-3 move it by
/// 28. Small text and forecast models trained at their default rates stayed below 1, at a
/// rate of 1 below 30 and at 10 below 400 (2026-12-08); a rate of 1e30 reached 6e30.
pub const DIVERGED_WEIGHT: f32 = 1e4;

/// Training windows from which a global forecaster is sized as for a large data set.
pub const LARGE_DATA_WINDOWS: usize = 10_000;

/// The hidden size and schedule of a global forecaster whose `hidden` and `lr_schedule` are
/// left to the job (not given, see [`Settings::given`], and at the forecast defaults: 40,
/// constant), and its dropout if left so (0.1):
/// 64 units with a cosine schedule and no dropout from [`LARGE_DATA_WINDOWS`] training windows
/// on, else 40 units at a constant rate with dropout 0.1. Chosen on validation splits: the
/// airline passengers' 1957-1958 (85 windows: 40 units, constant, MAPE 6.5-7.4% over three
/// seeds, against 6.4-8.0% for 64 and cosine) and M4 hourly's second-to-last 48 hours
/// (284,000 windows: 64 units, cosine, 12,000 steps, sMAPE 8.62 against 10.30 for 40 units,
/// constant, 3,000 steps; at 24,000 steps, one thread, MSIS 6.50 without dropout against 7.13
/// with 0.1 and 8.76 with 0.2).
pub fn global_size(windows: usize) -> (usize, LrSchedule, f32) {
    if windows >= LARGE_DATA_WINDOWS {
        (64, LrSchedule::Cosine, 0.0)
    } else {
        (40, LrSchedule::Constant, 0.1)
    }
}

fn global_job(mut s: Settings, resumed: Option<&Loaded>, stop: &AtomicBool) -> JobResult<Built> {
    let path = s
        .data
        .clone()
        .ok_or_else(|| invalid("--data CSV is required"))?;
    let target = match s.columns.as_slice() {
        [t] => t.clone(),
        [] => return Err(invalid("--column NAME (the target) is required")),
        _ => {
            return Err(invalid(
                "the global forecaster forecasts one --column; give covariates known in advance with --known-columns (or use --forecaster window for several columns)",
            ))
        }
    };
    if s.window != Settings::defaults(Task::Forecast).window || s.transform != Transform::None {
        return Err(invalid(
            "--window and --transform belong to --forecaster window; the global forecaster reads --context steps and scales each series itself",
        ));
    }
    // given to a new run, it would be ignored (a probe, 2026-12-08: it was, silently); its
    // default let through, as --window's, so that Python's `get_params()` builds the job again
    if resumed.is_none() && s.val_fraction != Settings::defaults(Task::Forecast).val_fraction {
        return Err(invalid(
            "--val-fraction belongs to --forecaster window (and the text and classify jobs); the global forecaster reports its validation loss on each series' last window (keep a test set out with --holdout)",
        ));
    }
    let pspec = PanelSpec {
        id_column: s.id_column.clone(),
        time_column: s.date_column.clone(),
        target: target.clone(),
        known: s.known_columns.clone(),
        // a resumed model reads its file as it was read (trading days were daily data before
        // business days were told apart)
        freq: resumed
            .and_then(|l| l.meta.global.as_ref())
            .and_then(|g| g.frequency().ok()),
    };
    let panel = panel::read_panel(Path::new(&path), &pspec)?;
    let rows = panel.series.iter().map(|x| x.len()).sum();
    let seen = vec![file_seen(&path, rows)?];
    same_data(resumed, &s, &seen)?;
    let mut spec = match resumed.and_then(|l| l.meta.global.clone()) {
        Some(saved) => saved,
        None => GlobalSpec::resolve(
            &panel,
            &target,
            s.id_column.as_deref(),
            s.date_column.as_deref(),
            &s.known_columns,
            &GlobalOptions {
                season: s.season,
                horizon: (s.horizon > 0).then_some(s.horizon),
                context: s.context,
                distribution: s.distribution,
                scaling: s.scaling,
                id_embedding: s.id_embedding,
            },
        )?,
    };
    s.horizon = spec.horizon;
    // each series' rows up to its last value (rows after it, with the known columns of a
    // later forecast, are not history), less the holdout
    let history: Vec<usize> = global::histories(&panel)
        .into_iter()
        .map(|n| n.saturating_sub(s.holdout))
        .collect();
    for (x, &h) in panel.series.iter().zip(&history) {
        if h < spec.window() {
            return Err(JobError::Lib(Error::Format {
                path: path.clone(),
                reason: format!(
                    "series `{}` (line {}) has {h} rows for training{}, fewer than the context and horizon ({} + {}); lower --context or --horizon, or leave such series out",
                    x.id,
                    x.first_line,
                    if s.holdout > 0 { format!(" after --holdout {}", s.holdout) } else { String::new() },
                    spec.context,
                    spec.horizon
                ),
            }));
        }
    }
    // what `backtest` must not score: each series' rows up to its last training row
    spec.trained_until = panel
        .series
        .iter()
        .zip(&history)
        .map(|(x, &h)| global::TrainedEnd::of(&x.times, &x.target, h))
        .collect();
    // a series whose values all fall in the held-out rows has nothing to train on or scale by
    for (x, &h) in panel.series.iter().zip(&history) {
        if x.target[..h.min(x.target.len())].iter().all(|v| v.is_nan()) {
            return Err(JobError::Lib(Error::Format {
                path: path.clone(),
                reason: format!(
                    "column `{target}`: series `{}` (first on line {}) has no value in its {h} training rows{}; every value is in the rows after them; give it earlier values or leave it out",
                    x.id,
                    x.first_line,
                    if s.holdout > 0 { format!(" (before the last --holdout {})", s.holdout) } else { String::new() },
                ),
            }));
        }
    }
    if spec.distribution.needs_scale() {
        check_counts(&path, &panel, &history, &target)?;
    }
    let summary = panel.summary();
    let prepared = global::prepare(&spec, &panel, &history, 0)?;
    let data = GlobalData::new(spec.clone(), prepared, s.batch)?;
    if s.steps.is_none() && s.epochs.is_none() && s.minutes.is_none() {
        s.steps = Some(global_default_steps(data.windows(), s.batch));
    }
    let defaults = Settings::defaults(Task::Forecast);
    // each setting left to the job on its own; one given is kept even at its default value. A
    // resumed run keeps the sizes it was saved with (the second review, 2026-12-08: a size
    // given at the default, which is not saved as given, was resized on resume, the settings
    // then disagreeing with the network)
    let (hidden, lr_schedule, dropout) = global_size(data.windows());
    if resumed.is_none()
        && s.left("hidden", &s.hidden, &defaults.hidden)
        && s.left("lr_schedule", &s.lr_schedule, &defaults.lr_schedule)
    {
        (s.hidden, s.lr_schedule) = (hidden, lr_schedule);
    }
    if resumed.is_none() && s.left("dropout", &s.dropout, &defaults.dropout) {
        s.dropout = dropout;
    }
    // before the candidate scalings train their models: a batch or size past the memory is
    // refused, not allocated
    crate::model::memory::check_model_memory(
        &model_config(&s, spec.input_kind(), spec.head()),
        s.batch,
        spec.window(),
        &["--hidden", "--layers", "--batch", "--context", "--horizon"],
    )?;
    let (mut spec, mut data) = (spec, data);
    let mut scaling_note = None;
    if s.scaling == Scaling::Auto && resumed.is_none() {
        let (choice, note) = choose_scaling(&s, &spec, &panel, &history, data.windows(), stop)?;
        if choice != spec.scaling {
            spec.scaling = choice;
            let prepared = global::prepare(&spec, &panel, &history, 0)?;
            data = GlobalData::new(spec.clone(), prepared, s.batch)?;
        }
        s.scaling = choice;
        scaling_note = note;
    }
    let log_note = if spec.scaling.log() {
        log_scaling_check(&path, &panel, &history, &spec)?
    } else {
        None
    };
    let mc = model_config(&s, spec.input_kind(), spec.head());
    crate::model::memory::check_model_memory(
        &mc,
        s.batch,
        spec.window(),
        &["--hidden", "--layers", "--batch", "--context", "--horizon"],
    )?;
    // small data: further models from other seeds, for the same number of steps
    let mut members = Vec::new();
    // both given: the first model stops at whichever comes first, so do they (the second
    // review, 2026-12-07: they always ran the steps)
    let from_epochs = s
        .epochs
        .map(|e| (e * data.windows() as f64 / s.batch.max(1) as f64).ceil() as u64);
    let member_steps = match (s.steps, from_epochs) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut member_note = None;
    if resumed.is_none() && data.windows() < LARGE_DATA_WINDOWS {
        match member_steps {
            Some(steps) => {
                for k in 1..SMALL_DATA_MODELS {
                    let seed = member_seed(s.seed, k);
                    members.push(train_quietly(
                        &mc,
                        &mut data,
                        seed,
                        seed ^ 0xda7a,
                        steps,
                        s.lr_schedule,
                        s.precision,
                        stop,
                    )?);
                }
                spec.members = members.len();
                member_note = Some(format!(
                    "small data: {SMALL_DATA_MODELS} models from different seeds, {steps} steps each, forecasts combined by their median"
                ));
            }
            None => {
                member_note = Some(
                    "warning: one model: a --minutes budget trains no further models to combine"
                        .into(),
                )
            }
        }
    }
    member_note = member_note.or_else(|| members_keep_budget(resumed, &s));
    let mut m = meta(Task::Forecast, &mc, &s);
    m.global = Some(spec.clone());
    m.seen = seen;
    let mut notes = vec![format!(
        "{path}: {summary}; {} data, season {}, context {}, horizon {}, lags {:?}, series id embedding {}, {} training windows",
        panel.freq,
        if spec.season > 1 { spec.season.to_string() } else { "none".to_string() },
        spec.context,
        spec.horizon,
        spec.lags,
        if spec.id_dim > 0 { format!("of {}", spec.id_dim) } else { "none".to_string() },
        data.windows()
    )];
    notes.extend(scaling_note);
    notes.extend(log_note);
    notes.extend(member_note);
    notes.extend(panel.notes.iter().cloned());
    if summary.missing > 0 {
        notes.push(format!(
            "{} missing targets are masked: not trained on",
            summary.missing
        ));
    }
    // a covariate with one value over the training rows teaches the model nothing about it
    for (k, col) in spec.known.iter().enumerate() {
        let mut values = panel
            .series
            .iter()
            .zip(&history)
            .flat_map(|(x, &h)| x.known[k][..h].iter());
        if let Some(first) = values.next() {
            if values.all(|v| v == first) {
                notes.push(format!(
                    "warning: known column `{col}` is {first} on every training row: the model cannot learn what it does, and a forecast with other values there is a guess"
                ));
            }
        }
    }
    if s.date_column.is_none() {
        let mut used: Vec<&str> = vec![pspec.target.as_str()];
        used.extend(pspec.id_column.as_deref());
        used.extend(pspec.known.iter().map(String::as_str));
        if let Some(col) = unused_time_column(Path::new(&path), &used) {
            notes.push(format!(
                "warning: column `{col}` holds dates, but --time-column is not given: the rows are read in file order and numbered 1, 2, ..., without a season from the calendar; give --time-column {col} to read them as times"
            ));
        }
    }
    Ok((m, Box::new(data), notes, members))
}

/// The first column of `path` the panel does not read whose first value is a date or a
/// date-time (a time column left out by mistake).
fn unused_time_column(path: &Path, used: &[&str]) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(1 << 16)
        .read_to_end(&mut head)
        .ok()?;
    let header = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let tsv = header.contains(&b'\t') && !header.contains(&b',');
    let mut r = csv::ReaderBuilder::new()
        .delimiter(if tsv { b'\t' } else { b',' })
        .flexible(true)
        .from_reader(&head[..]);
    let names = r.headers().ok()?.clone();
    let first = r.records().next()?.ok()?;
    let used = |n: &str| used.iter().any(|c| c.trim() == n.trim());
    names.iter().zip(first.iter()).find_map(|(n, v)| {
        let dated =
            panel::Time::parse(v.trim()).is_some_and(|t| t.kind() != panel::TimeKind::Index);
        (!used(n) && dated).then(|| n.trim().trim_start_matches('\u{feff}').to_string())
    })
}

/// The negative binomial's targets: every training value a whole number at or above 0.
/// Under a log scaling values at or below 0 are read as missing: refuses a series left with no
/// value, and words how many were dropped.
fn log_scaling_check(
    path: &str,
    panel: &Panel,
    history: &[usize],
    spec: &GlobalSpec,
) -> JobResult<Option<String>> {
    let mut dropped = 0usize;
    for (x, &h) in panel.series.iter().zip(history) {
        let y = &x.target[..h.min(x.target.len())];
        if !y.iter().any(|&v| v > 0.0) {
            return Err(JobError::Lib(Error::Format {
                path: path.to_string(),
                reason: format!(
                    "column `{}`: series `{}` (first on line {}) has no value above 0, and --scaling {} reads values through their logarithm; leave the series out or choose another --scaling",
                    spec.target,
                    x.id,
                    x.first_line,
                    spec.scaling.name()
                ),
            }));
        }
        dropped += y.iter().filter(|&&v| v <= 0.0).count();
    }
    Ok((dropped > 0).then(|| {
        format!(
            "warning: {dropped} values at or below 0 read as missing (--scaling {} takes logarithms)",
            spec.scaling.name()
        )
    }))
}

/// The largest count `--distribution negative-binomial` trains on: 2^24, above which 32-bit
/// floats cannot hold every whole number.
const MAX_COUNT: f32 = 16_777_216.0;

fn check_counts(path: &str, panel: &Panel, history: &[usize], target: &str) -> JobResult<()> {
    for (x, &h) in panel.series.iter().zip(history) {
        let bad = x.target[..h.min(x.target.len())]
            .iter()
            .position(|&v| !v.is_nan() && (v < 0.0 || v.fract() != 0.0 || v > MAX_COUNT));
        if let Some(t) = bad {
            let v = x.target[t];
            if v > MAX_COUNT {
                return Err(JobError::Lib(Error::Format {
                    path: path.to_string(),
                    reason: format!(
                        "column `{target}`: series `{}` (first on line {}) has the value {v} at time {}, above 16,777,216 (2^24), where 32-bit floats hold only some whole numbers; --distribution negative-binomial is for counts below it: leave it out (the default Student-t) for such values",
                        x.id, x.first_line, x.times[t]
                    ),
                }));
            }
            return Err(JobError::Lib(Error::Format {
                path: path.to_string(),
                reason: format!(
                    "column `{target}`: series `{}` (first on line {}) has the value {} at time {}, not a count (a whole number at or above 0); --distribution negative-binomial models counts: leave it out for other values",
                    x.id, x.first_line, x.target[t], x.times[t]
                ),
            }));
        }
    }
    Ok(())
}

fn window_job(mut s: Settings, resumed: Option<&Loaded>) -> JobResult<Built> {
    if s.id_column.is_some() || !s.known_columns.is_empty() {
        return Err(invalid(
            "--id-column and --known-columns belong to the global forecaster (the default); --forecaster window reads one table",
        ));
    }
    let defaults = Settings::defaults(Task::Forecast);
    if s.distribution != defaults.distribution || s.scaling != defaults.scaling {
        return Err(invalid(
            "--distribution and --scaling belong to the global forecaster (the default); --forecaster window forecasts one value per step by mean squared error (scale it with --transform)",
        ));
    }
    if s.horizon == 0 {
        s.horizon = 1;
    }
    if s.steps.is_none() && s.epochs.is_none() && s.minutes.is_none() {
        s.epochs = Some(300.0);
    }
    let path = s
        .data
        .clone()
        .ok_or_else(|| invalid("--data CSV is required"))?;
    if s.columns.is_empty() {
        return Err(invalid(
            "--column NAME is required (comma-separated for several; the first is forecast)",
        ));
    }
    if let Some(twice) = s
        .columns
        .iter()
        .enumerate()
        .find(|(i, c)| s.columns[..*i].iter().any(|d| d.trim() == c.trim()))
        .map(|(_, c)| c)
    {
        return Err(invalid(format!(
            "--column names `{}` twice; name each column once",
            twice.trim()
        )));
    }
    let table = series::read_table(Path::new(&path), &s.columns, s.date_column.as_deref())?;
    let mut notes = Vec::new();
    match (&s.date_column, &table.dates) {
        (Some(col), Some(d)) if series::times_of(d).is_none() => notes.push(format!(
            "note: column `{col}` holds times written in a way this does not read as dates (`{}`): the rows are taken in file order, oldest first, and the forecast's dates are left empty; write them YYYY-MM-DD (or YYYY-MM, YYYY-MM-DD HH:MM) to have them checked and continued",
            panel::shown(&d[0])
        )),
        (None, _) => {
            let used: Vec<&str> = s.columns.iter().map(String::as_str).collect();
            if let Some(col) = unused_time_column(Path::new(&path), &used) {
                notes.push(format!(
                    "warning: column `{col}` holds dates, but --date-column is not given: the forecast's rows are numbered, not dated; give --date-column {col} to have the dates checked and continued"
                ));
            }
        }
        _ => {}
    }
    let seen = vec![file_seen(&path, table.rows())?];
    same_data(resumed, &s, &seen)?;
    let mut spec = SeriesSpec {
        columns: s.columns.clone(),
        date_column: s.date_column.clone(),
        transform: s.transform,
        mean: vec![],
        std: vec![],
        window: s.window,
        horizon: s.horizon,
        trained: None,
        freq: table
            .dates
            .as_ref()
            .and_then(|d| series::dates_freq(d, None))
            .map(|f| format!("{f:?}")),
    };
    let tr = context(spec.transformed(&table), || {
        format!("cannot transform {path}")
    })?;
    let n = tr[0].len();
    let (train_rows, usable) = series::split_rows(
        n,
        &path,
        s.window,
        s.horizon,
        s.holdout,
        s.val_fraction,
        s.transform,
    )?;
    match resumed.and_then(|l| l.meta.series.clone()) {
        Some(saved) => spec = saved,
        None => spec.fit_scaler(&tr, train_rows),
    }
    // the raw rows the training windows read: the transform's lag first
    spec.trained = series::TrainedRows::of(
        &table.columns[0],
        train_rows + series::transform_lag(spec.transform),
    );
    let scaled = spec.scaled_rows(&tr);
    let f = s.columns.len();
    // every window is copied out before training, at most one per usable row: checked before
    // (a review, 2026-12-07: a long --window on a long series failed to allocate)
    crate::model::memory::check_data_memory(
        usable as u128 * (s.window as u128 * f as u128 + s.horizon as u128) * 4,
        "the training and validation windows",
        &["--window", "--horizon"],
    )?;
    let train_w = series::make_windows(&scaled, f, s.window, s.horizon, 0, train_rows);
    let val_w = series::make_windows(&scaled, f, s.window, s.horizon, train_rows, usable);
    if train_w.n == 0 || val_w.n == 0 {
        return Err(invalid(format!(
            "{path}: {} training and {} validation windows of {} + {} rows; lower --window/--horizon or change --val-fraction",
            train_w.n,
            val_w.n,
            s.window,
            s.horizon
        )));
    }
    let mc = model_config(
        &s,
        InputKind::Dense { features: f },
        Head::LastStep { outputs: s.horizon },
    );
    crate::model::memory::check_model_memory(
        &mc,
        s.batch,
        s.window,
        &["--hidden", "--layers", "--batch", "--window"],
    )?;
    let mut m = meta(Task::Forecast, &mc, &s);
    m.series = Some(spec);
    m.seen = seen;
    let task = SeriesData {
        train: train_w,
        val: val_w,
        window: s.window,
        features: f,
        horizon: s.horizon,
        batch: s.batch,
    };
    Ok((m, Box::new(task), notes, Vec::new()))
}

// ---------------------------------------------------------------- classify

/// A labelled file's rows by content (texts and labels, each ended by a byte no UTF-8 text
/// holds), so that `lstm eval` knows the rows whatever the file's name or column order.
fn labelled_fingerprint(d: &Labelled) -> String {
    let mut bytes = Vec::new();
    for (t, l) in d.texts.iter().zip(&d.labels) {
        bytes.extend_from_slice(t.as_bytes());
        bytes.push(0xff);
        bytes.extend_from_slice(l.as_bytes());
        bytes.push(0xfe);
    }
    crate::data::fingerprint(&bytes)
}

/// A note for each pair of labels that differ only in case (`Positive`, `positive`): separate
/// classes, as scikit-learn keeps them, but most often one class written two ways.
fn case_variants(labels: &[String]) -> Vec<String> {
    let mut notes = Vec::new();
    for (i, a) in labels.iter().enumerate() {
        if let Some(b) = labels[i + 1..]
            .iter()
            .find(|b| b.to_lowercase() == a.to_lowercase())
        {
            notes.push(format!(
                "warning: the labels `{a}` and `{b}` differ only in case and are two classes; write them alike if they are one"
            ));
        }
    }
    notes
}

fn classify_job(mut s: Settings, resumed: Option<&Loaded>, stop: &AtomicBool) -> JobResult<Built> {
    require_budget(&s, Task::Classify)?;
    let path = s
        .data
        .clone()
        .ok_or_else(|| invalid("--data TSV is required"))?;
    let mut all = labelled::read_labelled(Path::new(&path), &s.text_column, &s.label_column)?;
    let (rows, fingerprint) = (all.texts.len(), labelled_fingerprint(&all));
    if s.tail > 0.0 {
        // `--tail`: the last rows are never read, counted as `lstm eval --tail` counts them
        let kept = rows - crate::data::tail_units(rows, s.tail, 1);
        all.texts.truncate(kept);
        all.labels.truncate(kept);
    }
    let kept = all.texts.len();
    let (train, val) = match &s.val {
        Some(v) => (
            all,
            labelled::read_labelled(Path::new(v), &s.text_column, &s.label_column)?,
        ),
        None => {
            let n = all.texts.len();
            if n < 2 {
                return Err(invalid(format!(
                    "{path}: {n} row{} left to train and validate on ({rows} in the file{}); a classifier needs at least one row to train on and one to validate on: give more rows{}",
                    if n == 1 { "" } else { "s" },
                    if s.tail > 0.0 { format!(", the last {} left out by --tail {}", rows - n, s.tail) } else { String::new() },
                    if s.tail > 0.0 { ", a smaller --tail, or --val FILE" } else { " or --val FILE" },
                )));
            }
            let cut = n - ((n as f64 * s.val_fraction as f64) as usize).max(1);
            let val = Labelled {
                texts: all.texts[cut..].to_vec(),
                labels: all.labels[cut..].to_vec(),
            };
            let train = Labelled {
                texts: all.texts[..cut].to_vec(),
                labels: all.labels[..cut].to_vec(),
            };
            (train, val)
        }
    };
    let tr_rows = train.texts.len();
    if tr_rows == 0 {
        return Err(invalid(format!(
            "{path}: no row left to train on ({rows} in the file{}); give more rows{}",
            if s.tail > 0.0 {
                format!(", the last {} left out by --tail {}", rows - kept, s.tail)
            } else {
                String::new()
            },
            if s.tail > 0.0 {
                " or a smaller --tail"
            } else {
                ""
            },
        )));
    }
    let val_seen = s.val.as_ref().map(|_| Seen {
        fingerprint: labelled_fingerprint(&val),
        units: val.texts.len(),
        trained: (0, 0),
        validated: (0, val.texts.len()),
    });
    let (vocab, labels) = match resumed {
        Some(l) => (
            l.meta
                .vocab
                .clone()
                .ok_or_else(|| invalid("the resumed model has no vocabulary"))?,
            l.meta
                .labels
                .clone()
                .ok_or_else(|| invalid("the resumed model has no labels"))?,
        ),
        None => {
            let labels = labelled::classes(&train.labels, &path, &s.label_column)?;
            let vocab = match s.tokens {
                TokenKind::Char => Vocab::chars_from(&train.texts.concat()),
                TokenKind::Word => Vocab::words_from(
                    train.texts.iter().map(|t| t.as_str()),
                    s.min_count,
                    s.max_vocab,
                ),
            };
            (vocab, labels)
        }
    };
    // a file sorted by label (its labels in blocks, one class after another) leaves its last
    // class alone in the validation split, the rows before --tail's cut
    let split_rows = format!("rows {}-{} of the file", tr_rows + 1, kept);
    let sorted = s.val.is_none() && {
        let all: Vec<&String> = train.labels.iter().chain(&val.labels).collect();
        let changes = all.windows(2).filter(|w| w[0] != w[1]).count();
        let mut distinct = all.clone();
        distinct.sort_unstable();
        distinct.dedup();
        // blocks of some size: one rare row first or last is no sorting
        let mut runs = Vec::new();
        for w in all.chunk_by(|a, b| a == b) {
            runs.push(w.len());
        }
        let smallest = runs.iter().copied().min().unwrap_or(0);
        distinct.len() > 1
            && changes < distinct.len()
            && smallest >= 2
            && 20 * smallest >= all.len()
    };
    let shuffle = "the rows are sorted by label: shuffle the data rows (in pandas, `df.sample(frac=1)`) or give --val FILE";
    // a validation split of one class while training has others (with 10 rows or more: fewer
    // hold one class by chance)
    let one_class = s.val.is_none() && (val.labels.len() >= 10 || sorted) && {
        let mut v: Vec<&String> = val.labels.iter().collect();
        v.sort_unstable();
        v.dedup();
        v.len() == 1 && train.labels.iter().any(|l| l != v[0])
    };
    let class_of = |l: &str, line: usize| -> JobResult<u32> {
        labels
            .iter()
            .position(|x| x == l)
            .map(|p| p as u32)
            .ok_or_else(|| {
                let shown: String = l.chars().take(60).collect();
                // the validation split's rows are the last of --data's (after --tail's cut)
                let row = match s.val.as_deref() {
                    Some(v) => format!("{v} row {line}"),
                    None => format!(
                        "{path} row {} (in the validation split, {split_rows})",
                        tr_rows + line
                    ),
                };
                // several rows of a label the training rows lack: the validation split holds
                // them all (one alone: a column of names or ids, not of labels)
                let count = val.labels.iter().filter(|x| *x == l).count();
                let hint = if s.val.is_none() && count > 2 {
                    format!(
                        "its {count} rows are all in the validation split; {}",
                        if sorted {
                            shuffle
                        } else {
                            "shuffle the data rows or give --val FILE"
                        }
                    )
                } else {
                    "is --label-column the label?".to_string()
                };
                invalid(format!(
                    "{row}: label `{shown}`{} never appears in the training rows; a classifier predicts only labels it was trained on ({hint})",
                    if shown.len() < l.len() { "..." } else { "" },
                ))
            })
    };
    let to_examples = |d: &Labelled| -> JobResult<Examples> {
        Ok(Examples {
            tokens: labelled::encode_texts(&vocab, &d.texts, s.max_len),
            labels: d
                .labels
                .iter()
                .enumerate()
                .map(|(i, l)| class_of(l, i + 1))
                .collect::<JobResult<_>>()?,
        })
    };
    let (tr, va) = (to_examples(&train)?, to_examples(&val)?);
    let vocab_len = vocab.len();
    let input = if s.embedding > 0 {
        InputKind::Embedding {
            vocab: vocab.len(),
            dim: s.embedding,
        }
    } else {
        InputKind::OneHot { vocab: vocab.len() }
    };
    // concat pooling (last state, max and mean over time) or the last state; a resumed model
    // keeps its head (models saved before pooling have a last-step head)
    let outputs = labels.len();
    let head = match resumed {
        Some(l) => l.meta.model.head,
        None if s.pool => Head::Pooled { outputs },
        None => Head::LastStep { outputs },
    };
    let mc = model_config(&s, input, head);
    crate::model::memory::check_model_memory(
        &mc,
        s.batch,
        s.max_len,
        &[
            "--hidden",
            "--layers",
            "--embedding",
            "--batch",
            "--max-len",
        ],
    )?;
    // word dropout replaces training tokens by the unknown token, the last id
    let unk = (vocab_len - 1) as u32;
    let data_of = |seed: u64, tr: Examples, va: Examples| {
        ClassifyData::new(tr, va, s.batch, seed, labels.len())
            .with_word_dropout(s.word_dropout, unk)
    };
    let task = data_of(s.seed, tr.clone(), va);
    // further models, each trained as a run of its own seed would be, before the first
    let mut members = Vec::new();
    let mut notes = Vec::new();
    if resumed.is_none() && vocab_len <= 1 {
        notes.push(format!(
            "warning: no {} of the training texts is in the vocabulary ({}): every text reads as the unknown token, so the model can only learn how often each label occurs; give more data{}",
            if s.tokens == TokenKind::Word { "word" } else { "character" },
            if s.tokens == TokenKind::Word {
                format!("every word occurs fewer than min_count = {} times", s.min_count)
            } else {
                "the texts are empty".into()
            },
            if s.tokens == TokenKind::Word { ", `min_count = 1` in a --config file, or --tokens char" } else { "" }
        ));
    }
    if resumed.is_none() && s.members > 1 {
        match train::total_steps(&meta(Task::Classify, &mc, &s), &task) {
            Some(steps) => {
                for k in 1..s.members {
                    let seed = member_seed(s.seed, k);
                    let mut model = SequenceModel::new(&mc, seed)?;
                    model.set_precision(s.precision)?;
                    let mut data = data_of(seed, tr.clone(), Examples::default());
                    context(
                        train::train_steps(
                            &mut model,
                            &mut data,
                            seed,
                            steps,
                            s.lr_schedule,
                            s.on_nonfinite,
                            stop,
                        ),
                        || format!("training model {} of {}", k + 1, s.members),
                    )?;
                    members.push(model);
                }
                notes.push(format!(
                    "{} models from different seeds, {steps} steps each, their probabilities averaged; {} trained, the first trains now",
                    s.members,
                    s.members - 1
                ));
            }
            None => {
                notes.push(format!(
                    "warning: one model: a --minutes budget trains no further models to average (--members {} needs --epochs or --steps)",
                    s.members
                ));
                s.members = 1;
            }
        }
    }
    notes.extend(members_keep_budget(resumed, &s));
    let mut m = meta(Task::Classify, &mc, &s);
    m.vocab = Some(vocab);
    m.labels = Some(labels.clone());
    m.seen = vec![Seen::split(
        fingerprint,
        rows,
        tr_rows,
        kept,
        s.val.is_some(),
    )];
    if let Some(v) = &val_seen {
        m.seen.push(v.clone());
    }
    same_data(resumed, &s, &m.seen)?;
    if one_class {
        notes.push(format!(
            "warning: the validation split ({split_rows}) holds one class (`{}`), so its loss and accuracy say little; {}",
            val.labels[0],
            if sorted {
                shuffle
            } else {
                "give --val FILE with every class, or a larger --val-fraction"
            }
        ));
    }
    if resumed.is_none() {
        notes.extend(case_variants(&labels));
    }
    m.texts_seen = TextsSeen::new(&train.texts, &val.texts);
    if let Some(t) = &m.texts_seen {
        // a validation row whose text training also read scores what was learned, not how
        // the model does on texts it never saw
        let repeats = t
            .lookup(&val.texts)
            .iter()
            .filter(|x| **x == Some(true))
            .count();
        if repeats > 0 {
            notes.push(format!(
                "{}{repeats} of the {} validation rows repeat a text of the training rows{}",
                if 2 * repeats >= val.texts.len() {
                    "warning: "
                } else {
                    "note: "
                },
                val.texts.len(),
                match (2 * repeats >= val.texts.len(), s.val.is_some()) {
                    (true, true) => {
                        "; the validation loss is not a held-out figure (is --val the training file?)"
                    }
                    (true, false) => "; the validation loss is not a held-out figure (the file repeats its texts)",
                    _ => " (the same text in both; their loss is not held out)",
                }
            ));
        }
    }
    Ok((m, Box::new(task), notes, members))
}

/// A forecaster's record of its data file (`rows` of series values): its fingerprint alone, no
/// ranges (its scored rows are the `--holdout` its settings keep), so that a resumed run refuses
/// a file that changed ([`same_data`]).
fn file_seen(path: &str, rows: usize) -> JobResult<Seen> {
    let bytes = std::fs::read(path).map_err(|source| Error::read(path, source))?;
    Ok(Seen {
        fingerprint: crate::data::fingerprint(&bytes),
        units: rows,
        trained: (0, 0),
        validated: (0, 0),
    })
}

/// Refuses to resume a run whose data files changed since it was saved (their length and hash
/// differ from its record): it would go on training on other data than its record says.
fn same_data(resumed: Option<&Loaded>, s: &Settings, seen: &[Seen]) -> JobResult<()> {
    let Some(l) = resumed else { return Ok(()) };
    if !l.meta.seen.is_empty() && l.meta.seen.len() != seen.len() {
        return Err(invalid(format!(
            "this run was saved reading {} data file(s) and would now read {}: a validation file given or left out changes what it trains on; resume with the files it was started with, or start a new run with another --out",
            l.meta.seen.len(),
            seen.len()
        )));
    }
    let names = [s.data.as_deref(), s.val.as_deref()];
    // what a file's units are: a text job's characters, a global forecaster's time steps (gaps
    // filled), another's rows
    let unit = match (l.meta.task, l.meta.settings.forecaster) {
        (Task::Text, _) => "characters",
        (Task::Forecast, Forecaster::Global) => "time steps",
        _ => "rows",
    };
    for ((old, new), name) in l.meta.seen.iter().zip(seen).zip(names) {
        if old.fingerprint != new.fingerprint {
            let how = if old.units == new.units {
                format!("the same {} {unit} as then, with other contents", new.units)
            } else {
                format!("{} {unit} then, {} now", old.units, new.units)
            };
            return Err(invalid(format!(
                "{} is not the data this run was trained on: it changed since this run was saved, or is another file ({how}); resuming would train on other data than the model's record says; restore the file, or start a new run with another --out",
                name.unwrap_or("the data file"),
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- evaluate

/// How [`evaluate`] scores a file.
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    /// Score only this fraction at the end of the file, in (0, 1] (text and classify).
    pub tail: Option<f64>,
    /// Text: carry the state across the whole text instead of scoring windows.
    pub stream: bool,
    /// Text: score with the generator's step-by-step path at this precision (`f32`, `bf16`).
    pub generator: Option<String>,
    /// Forecast: the last rows to score (default: the training holdout, else the horizon).
    pub holdout: Option<usize>,
    /// Forecast (global): rolling forecast origins, each `horizon` steps after the one before,
    /// the last one `horizon` steps before each series' end [default: 1].
    pub windows: Option<usize>,
    /// Forecast (global): keep each window's forecasts beside the actuals
    /// ([`Backtest::forecasts_csv`]).
    pub forecasts: bool,
    /// Forecast (global): each series' scores will be written ([`Backtest::per_series_csv`]):
    /// an id column named as one of its columns is refused before the backtest.
    pub per_series: bool,
    /// Text: told the characters scored and to score as the scoring goes (a large text takes
    /// minutes).
    pub progress: crate::tasks::Progress,
}

/// What [`evaluate`] found; `Display` gives the text report, [`EvalReport::to_json`] (and
/// `Serialize`) the JSON one.
#[derive(Clone, Debug)]
pub enum EvalReport {
    /// A text model's cross-entropy.
    Text {
        /// The file scored.
        data: PathBuf,
        /// `windows`, `stream` or `generator-<precision>`.
        mode: String,
        /// The metric.
        eval: TextEval,
        /// Of the scored characters, how many training read (the file is one it trained on).
        seen: Option<SeenByTraining>,
    },
    /// A forecasting model's errors on the last rows.
    Forecast {
        /// The file scored.
        data: PathBuf,
        /// The forecast column.
        column: String,
        /// Rows scored.
        holdout: usize,
        /// One-step-ahead forecasts of each held-out row.
        one_step: ForecastMetrics,
        /// One forecast of `multi_steps` rows from before the held-out rows.
        multi_step: ForecastMetrics,
        /// Length of the multi-step forecast.
        multi_steps: usize,
        /// The last-value baseline on the multi-step rows.
        naive_last_value: ForecastMetrics,
    },
    /// A global forecaster's backtest: rolling origins, the M4 measures, beside seasonal naive.
    Backtest(Box<Backtest>),
    /// A classifier's accuracy and confusion matrix.
    Classify {
        /// The file scored.
        data: PathBuf,
        /// The model's labels.
        labels: Vec<String>,
        /// The metric.
        eval: ClassifyEval,
        /// Of the scored rows, how many training read (the file is one it trained on).
        seen: Option<SeenByTraining>,
    },
}

/// How many of the units `lstm eval` scored the model's training read: trained on, or held as
/// its validation split (whose loss it reported, and which may have chosen its settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SeenByTraining {
    /// Units (characters or rows) scored.
    pub scored: usize,
    /// Of them, trained on.
    pub trained: usize,
    /// Of them, in the training's validation split.
    pub validated: usize,
    /// Known by their texts (a classifier's rows in another file than its training file), not
    /// by the file.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub by_text: bool,
}

impl SeenByTraining {
    /// What the model's training read of the units `[start, end)` of a file with this
    /// fingerprint (`None`: a file it never read, or none of these units).
    fn find(seen: &[Seen], fingerprint: &str, start: usize, end: usize) -> Option<Self> {
        let s = seen.iter().find(|s| s.fingerprint == fingerprint)?;
        let (trained, validated) = s.overlap(start, end);
        (trained + validated > 0).then_some(SeenByTraining {
            scored: end - start,
            trained,
            validated,
            by_text: false,
        })
    }

    /// What a classifier's training read of `texts`, by their texts ([`TextsSeen`]; `None`:
    /// none of them, or no record).
    fn by_text(seen: Option<&TextsSeen>, texts: &[String]) -> Option<Self> {
        let found = seen?.lookup(texts);
        let trained = found.iter().filter(|x| **x == Some(true)).count();
        let validated = found.iter().filter(|x| **x == Some(false)).count();
        (trained + validated > 0).then_some(SeenByTraining {
            scored: texts.len(),
            trained,
            validated,
            by_text: true,
        })
    }
}

impl fmt::Display for SeenByTraining {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.by_text {
            let n = self.trained + self.validated;
            // a few natural duplicates ("ok", "Thanks!") in a held-out set are worth a note; a
            // tenth or more and the figure is not a held-out one
            return write!(
                f,
                "note: {n} of these {} rows repeat a text the model's training read (trained on {}, \
                 validated on {}){}",
                self.scored,
                self.trained,
                self.validated,
                if 10 * n >= self.scored {
                    "; this is not a held-out figure: score rows whose texts it never read"
                } else {
                    "; leave them out for a strictly held-out figure"
                }
            );
        }
        write!(
            f,
            "note: not a held-out figure: the model's training read {} of these {} (trained on {}, \
             validated on {}); train with --tail F and score with --tail F for rows it never read",
            self.trained + self.validated,
            self.scored,
            self.trained,
            self.validated
        )
    }
}

impl EvalReport {
    /// The JSON report.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            EvalReport::Backtest(b) => serde_json::to_value(b).unwrap_or_default(),
            EvalReport::Text {
                data,
                mode,
                eval: e,
                seen,
            } => {
                json!({"task": "text", "data": data, "mode": mode, "nats_per_char": e.nats_per_token, "bits_per_char": e.bits_per_token, "chars": e.tokens, "skipped_unknown": e.skipped, "seen_by_training": seen})
            }
            EvalReport::Forecast {
                data,
                holdout,
                one_step,
                multi_step,
                multi_steps,
                naive_last_value,
                ..
            } => {
                json!({"task": "forecast", "data": data, "holdout": holdout, "one_step": one_step, "multi_step": multi_step, "multi_steps": multi_steps, "naive_last_value": naive_last_value})
            }
            EvalReport::Classify {
                data,
                labels,
                eval: e,
                seen,
            } => {
                json!({"task": "classify", "data": data, "accuracy": e.accuracy, "loss": e.loss, "n": e.n, "labels": labels, "confusion": (!e.confusion.is_empty()).then_some(&e.confusion), "top_confusions": e.top_confusions.iter().map(|&(t, p, c)| json!({"true": labels[t], "predicted": labels[p], "count": c})).collect::<Vec<_>>(), "per_class": labels.iter().zip(&e.per_class).map(|(l, c)| json!({"label": l, "precision": c.precision, "recall": c.recall, "f1": c.f1, "support": c.support, "predicted": c.predicted})).collect::<Vec<_>>(), "macro_f1": e.macro_f1, "majority": {"label": labels.get(e.majority.0), "accuracy": e.majority.1}, "seen_by_training": seen})
            }
        }
    }
}

impl Serialize for EvalReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalReport::Backtest(b) => b.fmt(f),
            EvalReport::Text {
                data,
                eval: e,
                seen,
                ..
            } => {
                writeln!(
                    f,
                    "{}: {:.4} nats/char, {:.4} bits/char over {} predicted characters ({} unknown target characters skipped)",
                    data.display(),
                    e.nats_per_token,
                    e.bits_per_token,
                    e.tokens,
                    e.skipped
                )?;
                match seen {
                    Some(n) => writeln!(f, "{n}"),
                    None => Ok(()),
                }
            }
            EvalReport::Forecast {
                data,
                column,
                holdout,
                one_step: m1,
                multi_step: mh,
                multi_steps: h_steps,
                naive_last_value: mn,
            } => {
                writeln!(f, "{}: last {holdout} rows of `{column}`", data.display())?;
                writeln!(
                    f,
                    "  one-step forecasts:      RMSE {:.4}  MAE {:.4}  MAPE {:.2}%",
                    m1.rmse, m1.mae, m1.mape
                )?;
                writeln!(
                    f,
                    "  {h_steps}-step forecast:        RMSE {:.4}  MAE {:.4}  MAPE {:.2}%",
                    mh.rmse, mh.mae, mh.mape
                )?;
                writeln!(
                    f,
                    "  (last-value baseline:    RMSE {:.4}  MAE {:.4}  MAPE {:.2}%)",
                    mn.rmse, mn.mae, mn.mape
                )
            }
            EvalReport::Classify {
                data,
                labels,
                eval: e,
                seen,
            } => {
                writeln!(
                    f,
                    "{}: accuracy {:.2}% on {} texts (loss {:.4}), macro F1 {:.4}",
                    data.display(),
                    100.0 * e.accuracy,
                    e.n,
                    e.loss,
                    e.macro_f1
                )?;
                let shown: Vec<String> = labels.iter().map(|l| shown_label(l)).collect();
                writeln!(
                    f,
                    "always predicting the most frequent label here ({}) would score {:.2}%",
                    shown.get(e.majority.0).map_or("", |l| l.as_str()),
                    100.0 * e.majority.1
                )?;
                if let Some(n) = seen {
                    writeln!(f, "{n}")?;
                }
                if labels.len() <= TABLE_CLASSES {
                    let w = shown
                        .iter()
                        .map(|l| l.chars().count())
                        .max()
                        .unwrap_or(0)
                        .max(5);
                    writeln!(f, "{:>w$}  precision  recall      f1  support", "class")?;
                    for (lab, c) in shown.iter().zip(&e.per_class) {
                        writeln!(
                            f,
                            "{lab:>w$}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}",
                            c.precision, c.recall, c.f1, c.support
                        )?;
                    }
                }
                if e.confusion.is_empty() || labels.len() > TABLE_CLASSES {
                    writeln!(
                        f,
                        "{} classes: the most frequent confusions (--json has {}):",
                        labels.len(),
                        if e.confusion.is_empty() {
                            "these"
                        } else {
                            "the whole matrix"
                        }
                    )?;
                    if e.top_confusions.is_empty() {
                        writeln!(f, "  none")?;
                    }
                    for &(t, p, c) in &e.top_confusions {
                        writeln!(f, "  {c:>8}  {} predicted as {}", shown[t], shown[p])?;
                    }
                    return Ok(());
                }
                let w = shown.iter().map(|l| l.chars().count()).max().unwrap_or(0);
                let cw = w.max(e.n.to_string().len()) + 2;
                writeln!(f, "confusion (rows: true label, columns: predicted):")?;
                write!(f, "{:>w$}", "")?;
                for lab in &shown {
                    write!(f, "{lab:>cw$}")?;
                }
                writeln!(f)?;
                for (i, row) in e.confusion.iter().enumerate() {
                    write!(f, "{:>w$}", shown[i])?;
                    for c in row {
                        write!(f, "{c:>cw$}")?;
                    }
                    writeln!(f)?;
                }
                Ok(())
            }
        }
    }
}

/// The most classes whose confusion matrix the text report prints (beyond them, the most
/// frequent confusions).
const TABLE_CLASSES: usize = 20;

/// A label as a report prints it: control characters (tabs, line breaks) escaped, cut to 24
/// characters.
pub fn shown_label(label: &str) -> String {
    let escaped: String = label
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if escaped.chars().count() > 24 {
        format!("{}…", escaped.chars().take(23).collect::<String>())
    } else {
        escaped
    }
}

/// Scores a saved model on the file `data` with the model's own metric: cross-entropy for
/// text, RMSE/MAE/MAPE of one-step and multi-step forecasts of the last rows for a series,
/// accuracy and a confusion matrix for a classifier.
///
/// # Errors
/// A `tail` outside (0, 1], an option the model's task does not take, an unreadable file, too
/// few rows, labels the model does not know, outputs that are not finite (damaged weights).
pub fn evaluate(l: &mut Loaded, data: &Path, o: &EvalOptions) -> JobResult<EvalReport> {
    let task = l.meta.task;
    // options another task's models take are refused rather than ignored
    let given: [(&str, bool, bool); 5] = [
        ("--tail", o.tail.is_some(), task != Task::Forecast),
        ("--stream", o.stream, task == Task::Text),
        ("--generator", o.generator.is_some(), task == Task::Text),
        ("--holdout", o.holdout.is_some(), task == Task::Forecast),
        ("--windows", o.windows.is_some(), task == Task::Forecast),
    ];
    if let Some((flag, _, _)) = given.iter().find(|(_, set, takes)| *set && !*takes) {
        let how = match task {
            Task::Text => "a text model is scored on the whole file, or its end with --tail F (--stream, --generator P to change how)",
            Task::Classify => "a classifier is scored on every row of the file, or its end with --tail F",
            Task::Forecast => "a forecaster is scored on its last --holdout N rows (window forecaster) or its last --windows K horizons (global forecaster)",
        };
        return Err(invalid(format!(
            "{flag} does not apply to a {task} model: {how}"
        )));
    }
    // (a library probe, 2026-12-07: any other name scored in f32, and --stream was ignored)
    if let Some(p) = o
        .generator
        .as_deref()
        .filter(|p| !matches!(*p, "f32" | "bf16"))
    {
        return Err(invalid(format!(
            "--generator {p}: the generator's precision is f32 or bf16"
        )));
    }
    if o.generator.is_some() && o.stream {
        return Err(invalid(
            "--stream and --generator are two ways of scoring a text: give one",
        ));
    }
    let r = evaluate_task(l, data, o);
    // a loss that is not finite is "training diverged" where it is made; here it is the model
    let mut e = r.as_ref().err();
    while let Some(JobError::Context { source, .. }) = e {
        e = Some(source);
    }
    if let Some(JobError::Lib(Error::Diverged(why))) = e {
        return Err(non_finite_outputs(why));
    }
    match r {
        Ok(EvalReport::Text { eval, .. }) if !eval.nats_per_token.is_finite() => Err(
            non_finite_outputs(&format!("{} nats per token", eval.nats_per_token)),
        ),
        r => r,
    }
}

fn non_finite_outputs(why: &str) -> JobError {
    invalid(format!(
        "the model's outputs are not finite numbers ({why}): its weights are damaged or come from a diverged training; retrain it or use an earlier checkpoint"
    ))
}

fn evaluate_task(l: &mut Loaded, data: &Path, o: &EvalOptions) -> JobResult<EvalReport> {
    if let Some(t) = o.tail {
        if !(t > 0.0 && t <= 1.0) {
            return Err(invalid(format!("--tail must be in (0, 1], got {t}")));
        }
    }
    let s = l.meta.settings.clone();
    match l.meta.task {
        Task::Text => {
            let vocab = l
                .meta
                .vocab
                .clone()
                .ok_or_else(|| invalid("the model has no vocabulary"))?;
            let mut txt = crate::data::text::read_text_for(data, Some(&vocab))?;
            let n = txt.chars().count();
            let print = crate::data::fingerprint(txt.as_bytes());
            let mut cut = 0;
            if let Some(t) = o.tail {
                cut = n - crate::data::tail_units(n, t, 2);
                if let Some((at, _)) = txt.char_indices().nth(cut) {
                    txt = txt[at..].to_string();
                }
            }
            let seen = SeenByTraining::find(&l.meta.seen, &print, cut, n);
            let enc = Encoded::new(&vocab, &txt);
            let e = context(
                if let Some(p) = &o.generator {
                    let precision = if p == "bf16" {
                        Precision::Bf16
                    } else {
                        Precision::F32
                    };
                    text::evaluate_generator_with(&l.model, &enc, precision, &o.progress)
                } else if o.stream {
                    text::evaluate_stream_with(&mut l.model, &enc, s.seq_len, s.batch, &o.progress)
                } else {
                    text::evaluate_with(&mut l.model, &enc, s.seq_len, s.batch, &o.progress)
                },
                || format!("cannot score {}", data.display()),
            )?;
            if e.tokens == 0 {
                return Err(invalid(format!(
                    "no character of {} after the first is in the model's vocabulary ({} skipped as unknown): nothing to score; give text in the language the model was trained on",
                    data.display(),
                    e.skipped
                )));
            }
            let mode = match (&o.generator, o.stream) {
                (Some(p), _) => format!("generator-{p}"),
                (None, true) => "stream".into(),
                _ => "windows".into(),
            };
            Ok(EvalReport::Text {
                data: data.to_path_buf(),
                mode,
                eval: e,
                seen,
            })
        }
        Task::Forecast if l.meta.global.is_some() => {
            if o.holdout.is_some() {
                return Err(invalid(
                    "--holdout scores the window forecaster; a global forecaster is scored on its last --windows K horizons",
                ));
            }
            let windows = o.windows.unwrap_or(1);
            if o.per_series {
                per_series_names_free(l.meta.global.as_ref())?;
            }
            Ok(EvalReport::Backtest(Box::new(backtest_with(
                l,
                data,
                windows,
                o.forecasts,
            )?)))
        }
        Task::Forecast => {
            let spec = l
                .meta
                .series
                .clone()
                .ok_or_else(|| invalid("the model has no series description"))?;
            if o.windows.is_some() {
                return Err(invalid(
                    "--windows scores a global forecaster; the window forecaster is scored on its last --holdout N rows",
                ));
            }
            if o.holdout == Some(0) {
                return Err(invalid("--holdout must be at least 1 (the rows to score)"));
            }
            let table = series::read_table(data, &spec.columns, spec.date_column.as_deref())?;
            spec.check_freq(&table, &data.display().to_string())?;
            let n = table.rows();
            let hold = o.holdout.unwrap_or(if s.holdout > 0 {
                s.holdout
            } else {
                spec.horizon
            });
            let lag = series::transform_lag(spec.transform);
            // the training file again (by content, wherever it is): the scored rows must come
            // after the training targets, as they were split when it trained
            let print = std::fs::read(data)
                .map(|b| crate::data::fingerprint(&b))
                .unwrap_or_default();
            let trained_on = l.meta.seen.first().filter(|x| x.fingerprint == print);
            // a copy of it, shortened or lengthened: the run of the last trained values
            if trained_on.is_none() {
                let found = spec
                    .trained
                    .as_ref()
                    .and_then(|t| t.end_in(&table.columns[0]));
                if let Some(end) = found.filter(|&end| n.saturating_sub(hold) < end) {
                    return Err(invalid(format!(
                        "{}: it holds the values the model trained on, up to row {end} of its {n}, and the last {hold} rows reach into them: a score there would not be held out; {}train with a larger --holdout, or score data the model has not seen",
                        data.display(),
                        if n > end {
                            format!("score at most the last {} (--holdout), ", n - end)
                        } else {
                            String::new()
                        }
                    )));
                }
            }
            if let Some(at) = trained_on.filter(|x| x.units == n && n > lag) {
                if let Ok((train_rows, _)) = series::split_rows(
                    at.units - lag,
                    &data.display().to_string(),
                    s.window,
                    s.horizon,
                    s.holdout,
                    s.val_fraction,
                    s.transform,
                ) {
                    let trained = train_rows + lag;
                    if n.saturating_sub(hold) < trained {
                        return Err(invalid(format!(
                            "{}: the model trained on its first {trained} rows, and the last {hold} of its {n} reach into them; score at most the last {} (--holdout), train with a larger --holdout, or score another file",
                            data.display(),
                            n - trained
                        )));
                    }
                }
            }
            // counted wide (a panic audit, 2026-12-07: --holdout 18446744073709551615 wrapped)
            if hold == 0 || (n as u128) < hold as u128 + spec.window as u128 + lag as u128 {
                return Err(invalid(format!(
                    "{}: {n} rows are too few to score the last {hold} with a window of {}",
                    data.display(),
                    spec.window
                )));
            }
            let actual = &table.columns[0][n - hold..];
            let mut one = Vec::with_capacity(hold);
            for i in 0..hold {
                one.push(spec.forecast(&mut l.model, &table.head(n - hold + i), 1)?[0]);
            }
            let h_steps = if spec.columns.len() > 1 {
                hold.min(spec.horizon)
            } else {
                hold
            };
            let multi = spec.forecast(&mut l.model, &table.head(n - hold), h_steps)?;
            let m1 = series::metrics(&one, actual);
            let mh = series::metrics(&multi, &actual[..h_steps]);
            // the naive baseline on the same points, for scale
            let hist = &table.columns[0][..n - hold];
            let naive: Vec<f64> = vec![*hist.last().expect("rows"); h_steps];
            let mn = series::metrics(&naive, &actual[..h_steps]);
            Ok(EvalReport::Forecast {
                data: data.to_path_buf(),
                column: spec.columns[0].clone(),
                holdout: hold,
                one_step: m1,
                multi_step: mh,
                multi_steps: h_steps,
                naive_last_value: mn,
            })
        }
        Task::Classify => {
            let vocab = l
                .meta
                .vocab
                .clone()
                .ok_or_else(|| invalid("the model has no vocabulary"))?;
            let labels = l
                .meta
                .labels
                .clone()
                .ok_or_else(|| invalid("the model has no labels"))?;
            let mut d = labelled::read_labelled(data, &s.text_column, &s.label_column)?;
            let n = d.texts.len();
            let print = labelled_fingerprint(&d);
            let mut cut = 0;
            if let Some(t) = o.tail {
                cut = n - crate::data::tail_units(n, t, 1);
                d.texts.drain(..cut);
                d.labels.drain(..cut);
            }
            // the training file, or rows of it in another (a copy of some, the user's split)
            let seen = SeenByTraining::find(&l.meta.seen, &print, cut, n)
                .or_else(|| SeenByTraining::by_text(l.meta.texts_seen.as_ref(), &d.texts));
            let mut ys = Vec::new();
            for (i, lab) in d.labels.iter().enumerate() {
                match labels.iter().position(|x| x == lab) {
                    Some(p) => ys.push(p as u32),
                    None => {
                        return Err(invalid(format!(
                            "{} row {}: label `{lab}` is not one the model knows ({:?})",
                            data.display(),
                            cut + i + 1,
                            labels
                        )))
                    }
                }
            }
            let ex = Examples {
                tokens: labelled::encode_texts(&vocab, &d.texts, s.max_len),
                labels: ys,
            };
            let e =
                classify_task::evaluate_mean(&mut l.model, &mut l.members, &ex, 64, labels.len())?;
            Ok(EvalReport::Classify {
                data: data.to_path_buf(),
                labels,
                eval: e,
                seen,
            })
        }
    }
}

// ---------------------------------------------------------------- predict

/// How [`generate`] samples.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// The text the model continues (at least one character).
    pub prime: String,
    /// Characters to generate.
    pub length: usize,
    /// Softmax temperature, greater than 0.
    pub temperature: f32,
    /// Sample among the `top_k` likeliest tokens (0: all).
    pub top_k: usize,
    /// Run the generator in bf16.
    pub bf16: bool,
    /// The sampling seed.
    pub seed: u64,
}

/// The pieces of `prime` that a text model's vocabulary does not know (read as the unknown
/// token).
///
/// # Errors
/// A model without vocabulary.
pub fn unknown_tokens(l: &Loaded, prime: &str) -> JobResult<Vec<String>> {
    let vocab = l
        .meta
        .vocab
        .as_ref()
        .ok_or_else(|| invalid("the model has no vocabulary"))?;
    Ok(vocab
        .split(prime)
        .into_iter()
        .filter(|t| vocab.id(t).is_none())
        .collect())
}

/// Checks [`GenerateOptions`] before generating.
///
/// # Errors
/// A temperature that is not greater than 0, an empty prime.
pub fn check_generate(o: &GenerateOptions) -> JobResult<()> {
    if !(o.temperature.is_finite() && o.temperature > 0.0) {
        return Err(invalid(format!(
            "--temperature must be greater than 0 (try 0.5 to 1.0), got {}",
            o.temperature
        )));
    }
    if o.prime.is_empty() {
        return Err(invalid(
            "--prime is empty; give at least one character (the default is a newline)",
        ));
    }
    Ok(())
}

/// Continues `o.prime` with a text model, passing each generated piece to `on_piece`;
/// returns the generated text (without the prime).
///
/// # Errors
/// Invalid options ([`check_generate`]), a model without vocabulary, model errors.
pub fn generate(
    l: &mut Loaded,
    o: &GenerateOptions,
    on_piece: &mut dyn FnMut(&str),
) -> JobResult<String> {
    generate_until(l, o, &mut |piece| {
        on_piece(piece);
        true
    })
}

/// [`generate`], stopping early (with the text so far) after a piece for which `on_piece`
/// returns `false` (a reader that went away).
///
/// # Errors
/// As [`generate`].
pub fn generate_until(
    l: &mut Loaded,
    o: &GenerateOptions,
    on_piece: &mut dyn FnMut(&str) -> bool,
) -> JobResult<String> {
    served_by(l, "generate", "a text model")?;
    check_generate(o)?;
    let vocab = l
        .meta
        .vocab
        .clone()
        .ok_or_else(|| invalid("the model has no vocabulary"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    Ok(text::generate_until(
        &mut l.model,
        &vocab,
        &o.prime,
        o.length,
        o.temperature,
        o.top_k,
        if o.bf16 {
            Precision::Bf16
        } else {
            Precision::F32
        },
        &mut rng,
        on_piece,
    )?)
}

/// A forecast: the history it continues and the forecast values.
#[derive(Clone, Debug)]
pub struct Forecast {
    /// The series' description (columns, date column, window, horizon).
    pub spec: SeriesSpec,
    /// The history read from the file.
    pub table: Table,
    /// The forecast of the first column, in its original units.
    pub values: Vec<f64>,
    /// The dates of the forecast rows, when the history has a date column (an empty string for
    /// a date that cannot be written: past the year 9999, or a format it does not continue).
    pub dates: Option<Vec<String>>,
}

impl Forecast {
    /// The forecast as CSV: `step[,date],<column>` and one row per step.
    pub fn to_csv(&self) -> String {
        let target = &self.spec.columns[0];
        let mut csv = String::new();
        match (&self.spec.date_column, &self.dates) {
            (Some(dc), Some(_)) => csv.push_str(&format!("step,{dc},{target}\n")),
            _ => csv.push_str(&format!("step,{target}\n")),
        }
        for (i, v) in self.values.iter().enumerate() {
            match &self.dates {
                Some(d) => csv.push_str(&format!("{},{},{v}\n", i + 1, d[i])),
                None => csv.push_str(&format!("{},{v}\n", i + 1)),
            }
        }
        csv
    }
}

/// The series description of a forecasting model.
///
/// # Errors
/// A model without one.
pub fn series_spec(l: &Loaded) -> JobResult<SeriesSpec> {
    l.meta
        .series
        .clone()
        .ok_or_else(|| invalid("the model has no series description"))
}

/// Forecasts `steps` rows past the end of the file `data` with a forecasting model.
///
/// # Errors
/// A model without series description, an unreadable file, model errors.
pub fn forecast(l: &mut Loaded, data: &Path, steps: usize) -> JobResult<Forecast> {
    served_by(l, "forecast", "a window forecaster")?;
    let spec = series_spec(l)?;
    let table = series::read_table(data, &spec.columns, spec.date_column.as_deref())?;
    let name = data.display().to_string();
    spec.check_freq(&table, &name)?;
    context(forecast_table(l, spec, table, steps), || {
        format!("cannot forecast from {name}")
    })
}

/// As [`forecast`] on CSV text in memory (the server's requests); `name` names it in errors.
///
/// # Errors
/// As [`forecast`].
pub fn forecast_csv(l: &mut Loaded, name: &str, csv: &str, steps: usize) -> JobResult<Forecast> {
    served_by(l, "forecast", "a window forecaster")?;
    let spec = series_spec(l)?;
    let table = series::parse_table(
        csv.as_bytes().to_vec(),
        name,
        false,
        &spec.columns,
        spec.date_column.as_deref(),
    )?;
    spec.check_freq(&table, name)?;
    forecast_table(l, spec, table, steps)
}

/// The most steps a window forecaster forecasts at once ([`forecast`]): its rows are built in
/// memory, about 48 bytes a step.
pub const MAX_FORECAST_STEPS: usize = 10_000_000;

fn forecast_table(
    l: &mut Loaded,
    spec: SeriesSpec,
    table: series::Table,
    steps: usize,
) -> JobResult<Forecast> {
    // (a library probe, 2026-12-07: usize::MAX ran on, growing, and 0 gave an empty forecast)
    if !(1..=MAX_FORECAST_STEPS).contains(&steps) {
        return Err(invalid(format!(
            "steps must be between 1 and {MAX_FORECAST_STEPS} (a forecast is built in memory, about 48 bytes a step), got {steps}"
        )));
    }
    let values = spec.forecast(&mut l.model, &table, steps)?;
    // the date column is always there when the history has one (its columns did not depend
    // on --steps); a date that cannot be continued (past the year 9999, a format this does not
    // step) is left empty, and the ones before it kept
    let hint = spec.frequency();
    let dates = table.dates.as_ref().map(|d| {
        series::next_dates_at(d, steps, hint).unwrap_or_else(|| {
            // the most steps that can be written: found by halving (a date writable at step k
            // is writable before it), not by trying every k (a million steps)
            let (mut lo, mut hi) = (0, steps);
            while lo + 1 < hi {
                let mid = lo + (hi - lo) / 2;
                if series::next_dates_at(d, mid, hint).is_some() {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let mut known = series::next_dates_at(d, lo, hint).unwrap_or_default();
            known.resize(steps, String::new());
            known
        })
    });
    Ok(Forecast {
        spec,
        table,
        values,
        dates,
    })
}

/// A classifier's answer for one text.
#[derive(Clone, Debug, Serialize)]
pub struct Prediction {
    /// The likeliest label.
    pub label: String,
    /// Its probability.
    pub probability: f32,
    /// Every label's probability, in the model's label order.
    pub probabilities: Vec<f32>,
}

/// Where [`classify`] reads its texts.
#[derive(Clone, Debug)]
pub enum Texts<'a> {
    /// Texts given directly.
    Given(&'a [String]),
    /// The text column of a file (its label column may be absent).
    File(&'a Path),
}

/// Reads the texts to classify.
///
/// # Errors
/// An unreadable file.
pub fn read_texts(l: &Loaded, texts: Texts<'_>) -> JobResult<Vec<String>> {
    let s = &l.meta.settings;
    Ok(match texts {
        Texts::Given(t) => t.to_vec(),
        Texts::File(path) => labelled::read_texts(path, &s.text_column, &s.label_column)?,
    })
}

/// Classifies `texts` with a classifier.
///
/// # Errors
/// A model without vocabulary or labels, model errors.
pub fn classify(l: &mut Loaded, texts: &[String]) -> JobResult<Vec<Prediction>> {
    served_by(l, "classify", "a classifier")?;
    let vocab = l
        .meta
        .vocab
        .clone()
        .ok_or_else(|| invalid("the model has no vocabulary"))?;
    let labels = l
        .meta
        .labels
        .clone()
        .ok_or_else(|| invalid("the model has no labels"))?;
    let tokens = labelled::encode_texts(&vocab, texts, l.meta.settings.max_len);
    // a classifier of several models: the mean of their probabilities
    let probs = classify_task::predict_mean(&mut l.model, &mut l.members, &tokens, 64)?;
    if probs.iter().flatten().any(|p| !p.is_finite()) {
        return Err(non_finite_outputs("NaN probabilities"));
    }
    Ok(probs
        .into_iter()
        .map(|p| {
            let best = p
                .iter()
                .enumerate()
                .fold(0, |b, (i, &v)| if v > p[b] { i } else { b });
            Prediction {
                label: labels[best].clone(),
                probability: p[best],
                probabilities: p,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::modeldir;

    #[test]
    fn text_size_by_budget() {
        let mut s = Settings::defaults(Task::Text);
        s.minutes = Some(10.0);
        text_size(&mut s);
        assert_eq!((s.hidden, s.dropout), (512, 0.4));
        assert_eq!(s.lr_schedule, LrSchedule::Cosine);
        // the default budget (4 minutes), a step budget, or a shape of the user's: unchanged
        for f in [
            |s: &mut Settings| s.minutes = Some(4.0),
            |s: &mut Settings| {
                s.minutes = None;
                s.steps = Some(100_000);
            },
            |s: &mut Settings| s.hidden = 128,
            |s: &mut Settings| s.dropout = 0.3,
            |s: &mut Settings| s.layers = 3,
        ] {
            let mut s = Settings::defaults(Task::Text);
            s.minutes = Some(20.0);
            f(&mut s);
            let before = (s.hidden, s.dropout, s.lr_schedule, s.layers);
            text_size(&mut s);
            assert_eq!((s.hidden, s.dropout, s.lr_schedule, s.layers), before);
        }
        // a setting given, even at its default value, is the user's too (a probe, 2026-12-08:
        // `--minutes 10 --hidden 256` trained 2x512)
        for key in ["hidden", "dropout", "lr_schedule", "layers"] {
            let mut s = Settings::defaults(Task::Text);
            s.minutes = Some(20.0);
            s.given.insert(key.to_string());
            text_size(&mut s);
            assert_eq!((s.hidden, s.dropout), (256, 0.1), "{key}");
            assert_eq!(s.lr_schedule, LrSchedule::Constant, "{key}");
        }
        // another setting given leaves the rule to work
        let mut s = Settings::defaults(Task::Text);
        s.minutes = Some(20.0);
        s.given.insert("lr".to_string());
        text_size(&mut s);
        assert_eq!(s.hidden, 512);
    }

    #[test]
    fn a_text_job_trains_resumes_evaluates_and_generates() {
        let dir = std::env::temp_dir().join(format!("lstm-job-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("t.txt");
        std::fs::write(&data, &BUNDLED_TEXT[..20_000]).unwrap();
        let mut s = Settings::defaults(Task::Text);
        s.data = Some(data.display().to_string());
        s.hidden = 8;
        s.layers = 1;
        s.seq_len = 16;
        s.batch = 4;
        s.steps = Some(3);
        s.minutes = None;
        s.threads = 1;
        let out = dir.join("m");
        let mut job = Job::new(Task::Text, s.clone(), out.clone()).unwrap();
        assert_eq!(
            (job.task(), job.unit(), job.total_steps()),
            (Task::Text, "chars", Some(3))
        );
        let stop = AtomicBool::new(false);
        let reason = job.train(&|_, _, _| Ok(()), &stop, &mut |_| {}).unwrap();
        assert_eq!(reason, StopReason::Budget);

        // a library caller's default given as such is a change (the second review,
        // 2026-12-08); not given, it is the saved value, which the run resolved
        let mut given = s.clone();
        given.hidden = Settings::defaults(Task::Text).hidden;
        let l = modeldir::load(&out).unwrap();
        assert!(Job::resume(l, given.clone(), out.clone()).is_ok());
        given.given.insert("hidden".into());
        let l = modeldir::load(&out).unwrap();
        assert!(matches!(
            Job::resume(l, given, out.clone()),
            Err(JobError::Invalid(m)) if m.contains("hidden 256 (saved: 8)")
        ));

        let loaded = modeldir::load(&out).unwrap();
        assert_eq!(loaded.state.step, 3);
        s.steps = Some(5);
        let mut job = Job::resume(loaded, s, out.clone()).unwrap();
        job.train(&|_, _, _| Ok(()), &stop, &mut |_| {}).unwrap();
        assert_eq!(job.state.step, 5);

        let mut l = modeldir::load(&out).unwrap();
        let report = evaluate(&mut l, &data, &EvalOptions::default()).unwrap();
        assert!(report.to_string().contains("nats/char"));
        assert_eq!(report.to_json()["task"], "text");
        let bad = EvalOptions {
            tail: Some(2.0),
            ..Default::default()
        };
        assert!(matches!(
            evaluate(&mut l, &data, &bad),
            Err(JobError::Invalid(_))
        ));
        let o = GenerateOptions {
            prime: "A".into(),
            length: 10,
            temperature: 1.0,
            top_k: 0,
            bf16: false,
            seed: 1,
        };
        let mut pieces = String::new();
        let text = generate(&mut l, &o, &mut |p| pieces.push_str(p)).unwrap();
        assert_eq!(text, pieces);
        assert_eq!(text.chars().count(), 10);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A diverged text run is told from one that overfits (the review, 2026-12-08: a model
    /// overfit to a training loss of 0.12 was called diverged), and weights that blew up are
    /// said whatever the losses.
    #[test]
    fn divergence_is_told_from_overfitting() {
        let dir = std::env::temp_dir().join(format!("lstm-job-div-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("t.txt");
        std::fs::write(&data, &BUNDLED_TEXT[..5_000]).unwrap();
        let mut s = Settings::defaults(Task::Text);
        s.data = Some(data.display().to_string());
        (s.hidden, s.layers, s.seq_len, s.batch) = (8, 1, 16, 4);
        (s.steps, s.minutes, s.threads) = (Some(1), None, 1);
        let mut job = Job::new(Task::Text, s, dir.join("m")).unwrap();
        let uniform = (job.meta.vocab.as_ref().unwrap().len() as f32).ln();
        assert!(job.divergence().is_none());
        // both losses far above guessing: diverged
        (job.state.train_loss, job.state.val_loss) = (vec![(9, 700.0)], vec![(9, 731.0)]);
        assert!(job.divergence().unwrap().contains("guessing each of the"));
        // a validation loss as high, but a training loss below guessing: overfitting
        job.state.train_loss = vec![(9, 0.12)];
        assert!(job.divergence().is_none());
        // just above guessing (an untrained model, or one step): not diverged
        (job.state.train_loss, job.state.val_loss) =
            (vec![(1, uniform * 1.1)], vec![(1, uniform * 1.2)]);
        assert!(job.divergence().is_none());
        // a weight blown up
        job.model.store.values[0] = -2.0 * DIVERGED_WEIGHT;
        assert!(job.divergence().unwrap().contains("a weight has grown to"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn resume_changes_name_the_changed_settings_only() {
        let saved = Settings::defaults(Task::Text);
        let mut given = saved.clone();
        given.steps = Some(7);
        given.threads = 3;
        assert!(resume_changes(Task::Text, &saved, &given).is_empty());
        given.hidden = saved.hidden + 1;
        given.dropout = 0.2;
        let c = resume_changes(Task::Text, &saved, &given);
        let keys: Vec<&str> = c.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["dropout", "hidden"]);
        assert_eq!(c[0].given, "0.2");
        assert_eq!(c[1].saved, saved.hidden.to_string());
    }

    /// The original command line resumes when it spelled out a value the run resolved (a
    /// probe, 2026-12-07): `--scaling auto`, and a text model's default shape that a long
    /// budget enlarged; another shape, or another scaling, is still a change.
    #[test]
    fn values_the_run_resolved_are_the_values_given() {
        let mut saved = Settings::defaults(Task::Forecast);
        saved.scaling = Scaling::Seasonal;
        let mut given = saved.clone();
        given.scaling = Scaling::Auto;
        assert!(resume_changes(Task::Forecast, &saved, &given).is_empty());
        given.scaling = Scaling::Trend;
        assert_eq!(resume_changes(Task::Forecast, &saved, &given).len(), 1);

        let mut saved = Settings::defaults(Task::Text);
        saved.minutes = Some(10.0);
        text_size(&mut saved);
        assert_eq!(saved.hidden, 512);
        let mut given = Settings::defaults(Task::Text);
        given.minutes = Some(12.0);
        assert!(resume_changes(Task::Text, &saved, &given).is_empty());
        given.hidden = 128;
        let c = resume_changes(Task::Text, &saved, &given);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].given.as_str(), c[0].saved.as_str()), ("128", "512"));
        // not enlarged: the default given against a 512 of the user's is a change
        let mut saved = Settings::defaults(Task::Text);
        saved.hidden = 512;
        let given = Settings::defaults(Task::Text);
        assert_eq!(resume_changes(Task::Text, &saved, &given).len(), 1);

        // a global forecaster's defaults, resized for large data, given again
        let mut saved = Settings::defaults(Task::Forecast);
        (saved.hidden, saved.lr_schedule, saved.dropout) = global_size(LARGE_DATA_WINDOWS);
        let given = Settings::defaults(Task::Forecast);
        assert!(resume_changes(Task::Forecast, &saved, &given).is_empty());
        let mut given = given;
        given.hidden = 32;
        assert_eq!(resume_changes(Task::Forecast, &saved, &given).len(), 1);
        // the default given as such (`--hidden 40`) would have been kept: a change
        let mut given = Settings::defaults(Task::Forecast);
        given.given.insert("hidden".to_string());
        let c = resume_changes(Task::Forecast, &saved, &given);
        assert_eq!(
            c.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
            ["hidden"]
        );
    }

    /// A global forecaster over three series learns an id embedding `(3, 2)` that a save and
    /// load keep; a series not seen in training is forecast with the mean of the rows.
    #[test]
    fn a_global_forecaster_keeps_its_series_embedding() {
        let dir = std::env::temp_dir().join(format!("lstm-job-ids-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let csv = |ids: &[&str]| {
            let mut c = String::from("id,y\n");
            for (k, id) in ids.iter().enumerate() {
                for t in 0..60 {
                    let v = 10.0 + (k + 1) as f64 * ((t as f64) * 0.7).sin() + t as f64 * 0.1;
                    c.push_str(&format!("{id},{v}\n"));
                }
            }
            c
        };
        let data = dir.join("p.csv");
        std::fs::write(&data, csv(&["a", "b", "c"])).unwrap();
        let mut s = Settings::defaults(Task::Forecast);
        s.data = Some(data.display().to_string());
        s.columns = vec!["y".into()];
        s.id_column = Some("id".into());
        s.id_embedding = Some(0); // sized by the number of series: 2 for 3
        s.hidden = 6;
        s.layers = 1;
        s.batch = 4;
        s.steps = Some(5);
        s.minutes = None;
        s.threads = 1;
        let out = dir.join("m");
        let mut job = Job::new(Task::Forecast, s, out.clone()).unwrap();
        let stop = AtomicBool::new(false);
        job.train(&|_, _, _| Ok(()), &stop, &mut |_| {}).unwrap();

        let mut l = modeldir::load(&out).unwrap();
        let spec = l.meta.global.clone().unwrap();
        assert_eq!((spec.ids.join(","), spec.id_dim), ("a,b,c".to_string(), 2));
        assert_eq!(
            l.model.config().input,
            InputKind::DenseWithIds {
                features: spec.features(),
                ids: 3,
                dim: 2
            }
        );
        let rows = l.model.store.get("id_embedding.weight").unwrap().to_vec();
        assert_eq!(rows.len(), 6);
        // save and load again: the same rows, the same forecast
        let again = dir.join("m2");
        modeldir::save_loaded(&again, &l).unwrap();
        let mut l2 = modeldir::load(&again).unwrap();
        assert_eq!(
            l2.model.store.get("id_embedding.weight").unwrap(),
            &rows[..]
        );
        let f1 = forecast_global(&mut l, &data, None, &[0.1, 0.9]).unwrap();
        let f2 = forecast_global(&mut l2, &data, None, &[0.1, 0.9]).unwrap();
        assert_eq!(f1.csv, f2.csv);

        // series `z` (unseen, the values of `a`) reads the mean row: as `a` with its row
        // replaced by the mean (in the first model: the further ones, small data's, have
        // rows of their own)
        assert_eq!(l.members.len(), SMALL_DATA_MODELS - 1);
        l.members.clear();
        let unseen = dir.join("u.csv");
        std::fs::write(&unseen, csv(&["z"])).unwrap();
        let fz = forecast_global(&mut l, &unseen, None, &[0.5]).unwrap();
        let only_a = dir.join("a.csv");
        std::fs::write(&only_a, csv(&["a"])).unwrap();
        let fa = forecast_global(&mut l, &only_a, None, &[0.5]).unwrap();
        let mean: Vec<f32> = (0..2)
            .map(|d| (rows[d] + rows[2 + d] + rows[4 + d]) / 3.0)
            .collect();
        let mut m = l.model.clone();
        let mut w = rows.clone();
        w[..2].copy_from_slice(&mean);
        m.store.set("id_embedding.weight", &[3, 2], &w).unwrap();
        l.model = m;
        let fa_mean = forecast_global(&mut l, &only_a, None, &[0.5]).unwrap();
        // equal up to the rounding of the mean row (computed in another order there)
        for (a, b) in fz.series[0]
            .1
            .median
            .iter()
            .zip(&fa_mean.series[0].1.median)
        {
            assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0), "{a} against {b}");
        }
        assert_ne!(fz.series[0].1.median, fa.series[0].1.median);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_forecast_job_without_columns_is_refused() {
        let mut s = Settings::defaults(Task::Forecast);
        s.data = Some("x.csv".into());
        s.columns.clear();
        let e = Job::new(Task::Forecast, s.clone(), "unused".into())
            .err()
            .unwrap();
        assert!(e
            .to_string()
            .starts_with("--column NAME (the target) is required"));
        s.forecaster = Forecaster::Window;
        let e = Job::new(Task::Forecast, s, "unused".into()).err().unwrap();
        assert!(e.to_string().starts_with("--column NAME is required"));
    }
}

// ---------------------------------------------------------------- global forecaster

/// The quantile levels a backtest scores (their mean weighted quantile loss; 0.025 and 0.975
/// give the 95% interval's coverage and MSIS).
pub const BACKTEST_LEVELS: [f64; 7] = [0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975];

/// A global forecaster's backtest ([`backtest`]).
#[derive(Clone, Debug, Serialize)]
pub struct Backtest {
    /// The job: always [`Task::Forecast`] (named in the JSON as the other reports name theirs).
    pub task: Task,
    /// The file scored.
    pub data: PathBuf,
    /// Series scored.
    pub series: usize,
    /// Forecast origins per series.
    pub windows: usize,
    /// Steps per window.
    pub horizon: usize,
    /// The season scaling MASE and MSIS.
    pub season: usize,
    /// The model's scores.
    pub model: metrics::Aggregate,
    /// Seasonal naive (the last season repeated; the last value without a season) on the same
    /// windows.
    pub seasonal_naive: metrics::Aggregate,
    /// Each series' scores in each window, series by series in the file's order, windows in
    /// time order ([`Backtest::per_series_csv`]); not in the JSON report, whose size would
    /// grow with the series.
    #[serde(skip)]
    pub per_series: Vec<SeriesScore>,
    /// The id column's name in the file (`None`: a file of one series without one).
    #[serde(skip)]
    pub id_column: Option<String>,
    /// Each window's forecasts beside the actuals, as CSV, when [`EvalOptions::forecasts`]
    /// asked for them: the id and time columns under their names, `cutoff` (the last time
    /// before the window), the actual under the target's name (empty where missing),
    /// `median`, and the quantiles `q<level>` of [`BACKTEST_LEVELS`] but 0.5; series by
    /// series in the file's order, windows and times in order (NeuralForecast's
    /// `cross_validation` frame).
    #[serde(skip)]
    pub forecasts_csv: Option<String>,
}

/// One series' scores in one backtest window ([`Backtest::per_series`]): the measures of
/// [`metrics::WindowScore`], and seasonal naive's sMAPE and MASE on the same window.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesScore {
    /// The series' id.
    pub id: String,
    /// The window, from 1 (the earliest origin) to the backtest's `windows`.
    pub window: usize,
    /// The time of the window's first forecast step, as the forecast CSV writes it.
    pub start: String,
    /// Actuals present in the window.
    pub observed: usize,
    /// sMAPE (percent).
    pub smape: Option<f64>,
    /// MASE.
    pub mase: Option<f64>,
    /// MAPE (percent).
    pub mape: Option<f64>,
    /// RMSE.
    pub rmse: Option<f64>,
    /// The weighted quantile loss.
    pub quantile_loss: Option<f64>,
    /// The share of the actuals inside the 95% interval.
    pub coverage_95: Option<f64>,
    /// MSIS.
    pub msis: Option<f64>,
    /// Seasonal naive's sMAPE on the window.
    pub seasonal_naive_smape: Option<f64>,
    /// Seasonal naive's MASE on the window.
    pub seasonal_naive_mase: Option<f64>,
}

/// The columns of [`Backtest::per_series_csv`] after the id.
pub const PER_SERIES_COLUMNS: [&str; 12] = [
    "window",
    "start",
    "observed",
    "smape",
    "mase",
    "mape",
    "rmse",
    "quantile_loss",
    "coverage_95",
    "msis",
    "seasonal_naive_smape",
    "seasonal_naive_mase",
];

/// Refuses a global forecaster whose id column is named as a column of
/// [`Backtest::per_series_csv`] (the two would be confused; the second review, 2026-12-07:
/// Python's frame lost the ids).
fn per_series_names_free(spec: Option<&GlobalSpec>) -> JobResult<()> {
    let id = spec
        .and_then(|s| s.id_column.as_deref())
        .unwrap_or("series");
    if PER_SERIES_COLUMNS.contains(&id) {
        return Err(invalid(format!(
            "the id column is named `{id}`, as a column of the per-series scores is: the two would be confused; rename it in the data (and train again) to have each series' scores"
        )));
    }
    Ok(())
}

impl Backtest {
    /// One row per series and window: the id (under the file's id column name, `series`
    /// without one), `window`, `start`, `observed`, the model's `smape`, `mase`, `mape`,
    /// `rmse`, `quantile_loss`, `coverage_95`, `msis`, and `seasonal_naive_smape`,
    /// `seasonal_naive_mase`; a measure that does not exist for the window (no actuals, no
    /// scale) is an empty cell. Numbers are written in full (Rust's shortest round trip).
    pub fn per_series_csv(&self) -> String {
        let id = self.id_column.clone().unwrap_or_else(|| "series".into());
        let mut rows = vec![std::iter::once(id)
            .chain(PER_SERIES_COLUMNS.iter().map(|c| c.to_string()))
            .collect::<Vec<_>>()];
        let cell = |x: Option<f64>| x.map_or(String::new(), |v| v.to_string());
        for r in &self.per_series {
            rows.push(vec![
                r.id.clone(),
                r.window.to_string(),
                r.start.clone(),
                r.observed.to_string(),
                cell(r.smape),
                cell(r.mase),
                cell(r.mape),
                cell(r.rmse),
                cell(r.quantile_loss),
                cell(r.coverage_95),
                cell(r.msis),
                cell(r.seasonal_naive_smape),
                cell(r.seasonal_naive_mase),
            ]);
        }
        crate::data::tabular::csv_text(&rows)
    }
}

impl fmt::Display for Backtest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} series, {} window(s) of {} steps each, season {}",
            self.data.display(),
            self.series,
            self.windows,
            self.horizon,
            // as training says it (a probe, 2026-12-08: "season none" there, "season 1" here);
            // MASE's naive forecast is then the previous value
            if self.season > 1 {
                self.season.to_string()
            } else {
                "none (MASE scaled by the previous value's error)".to_string()
            }
        )?;
        let g = |x: Option<f64>| x.map_or("-".to_string(), |v| metrics::table_number(v, 3));
        writeln!(
            f,
            "{:<16} {:>9} {:>9} {:>9} {:>12} {:>9} {:>9} {:>9}",
            "", "sMAPE", "MASE", "MAPE", "RMSE", "wQL", "cov95", "MSIS"
        )?;
        for (name, a) in [
            ("model", &self.model),
            ("seasonal naive", &self.seasonal_naive),
        ] {
            writeln!(
                f,
                "{:<16} {:>9} {:>9} {:>9} {:>12} {:>9} {:>9} {:>9}",
                name,
                g(a.smape),
                g(a.mase),
                g(a.mape),
                g(a.rmse),
                g(a.quantile_loss),
                g(a.coverage_95),
                g(a.msis)
            )?;
        }
        writeln!(f, "\nthe model per step ahead:")?;
        write!(f, "{}", self.model)
    }
}

/// The header of [`Backtest::forecasts_csv`], refusing a data column of the same name as
/// one of the forecasts' columns (they would be confused).
fn backtest_forecast_header(spec: &GlobalSpec, time_name: &str) -> JobResult<Vec<String>> {
    let mut header: Vec<String> = spec.id_column.iter().cloned().collect();
    header.push(time_name.to_string());
    let ours: Vec<String> = ["cutoff".to_string(), "median".to_string()]
        .into_iter()
        .chain(
            BACKTEST_LEVELS
                .iter()
                .filter(|&&q| q != 0.5)
                .map(|q| format!("q{q}")),
        )
        .collect();
    if let Some(name) = ours
        .iter()
        .find(|n| header.contains(n) || **n == spec.target)
    {
        return Err(invalid(format!(
            "a column of the data is named `{name}`, as a column of the backtest's forecasts is: the two would be confused; rename it in the data (and train again) to keep the forecasts"
        )));
    }
    header.push("cutoff".into());
    header.push(spec.target.clone());
    header.extend(ours.into_iter().skip(1));
    Ok(header)
}

/// [`global::forecast`] by the loaded model and each of its further models, combined
/// ([`global::combine`]).
fn forecast_models(
    spec: &GlobalSpec,
    l: &mut Loaded,
    series: &[global::Prepared],
    origins: &[usize],
    steps: usize,
    levels: &[f64],
) -> JobResult<Vec<global::SeriesForecast>> {
    let mut runs = vec![global::forecast(
        spec,
        &mut l.model,
        series,
        origins,
        steps,
        levels,
    )?];
    for m in &mut l.members {
        runs.push(global::forecast(spec, m, series, origins, steps, levels)?);
    }
    Ok(global::combine(runs))
}

/// What `l` is and the function of this module that serves it, for messages.
fn served_as(l: &Loaded) -> (String, &'static str) {
    match l.meta.task {
        Task::Forecast if l.meta.global.is_some() => {
            ("a global forecaster".into(), "forecast_global")
        }
        Task::Forecast => ("a window forecaster".into(), "forecast"),
        Task::Text => ("a text model".into(), "generate"),
        Task::Classify => ("a classifier".into(), "classify"),
    }
}

/// Refuses a model that `function` (of this module), which needs `wanted`, cannot take,
/// naming the function that serves it.
fn refuse_model(l: &Loaded, function: &str, wanted: &str) -> JobError {
    let (kind, right) = served_as(l);
    invalid(format!(
        "`{function}` needs {wanted} but this is {kind}; use `{right}` with it"
    ))
}

/// Refuses a model that is not served by `function`, which needs `wanted`.
fn served_by(l: &Loaded, function: &'static str, wanted: &str) -> JobResult<()> {
    if served_as(l).1 == function {
        Ok(())
    } else {
        Err(refuse_model(l, function, wanted))
    }
}

fn global_spec(l: &Loaded, function: &str) -> JobResult<GlobalSpec> {
    l.meta
        .global
        .clone()
        .ok_or_else(|| refuse_model(l, function, "a global forecaster"))
}

fn panel_for(spec: &GlobalSpec, data: &Path) -> JobResult<Panel> {
    Ok(panel::read_panel(data, &panel_spec(spec))?)
}

/// Refuses a file (`name`) whose times step unlike the model's training data.
fn same_frequency(spec: &GlobalSpec, panel: &Panel, name: &str) -> JobResult<()> {
    let freq = spec.frequency()?;
    if panel.freq != freq {
        return Err(JobError::Lib(Error::Format {
            path: name.to_string(),
            reason: format!(
                "its times are {}, but the model was trained on {freq} data; give it data of the same frequency",
                panel.freq
            ),
        }));
    }
    // the hour of day the calendar features read is the file's: times written at another UTC
    // offset than training's would shift it (the second review, 2026-12-07)
    let trained = spec
        .trained_until
        .first()
        .and_then(|e| crate::data::panel::Time::parse(&e.time))
        .map(|t| t.kind());
    if let (
        Some(crate::data::panel::TimeKind::DateTime { zone: was, .. }),
        crate::data::panel::TimeKind::DateTime { zone: now, .. },
    ) = (trained, panel.time_kind)
    {
        if !was.same_offset(now) {
            let say = |z: crate::data::panel::Zone| match z {
                crate::data::panel::Zone::None => "no UTC offset".to_string(),
                z => format!("the UTC offset `{z}`"),
            };
            return Err(JobError::Lib(Error::Format {
                path: name.to_string(),
                reason: format!(
                    "its times are written with {}, the model's training data with {}: the hours of day the model learned would shift; write the times as the training data did",
                    say(now),
                    say(was)
                ),
            }));
        }
    }
    Ok(())
}

/// Refuses windows of a file's series that hold a training series' rows by their values alone
/// (its first or last 64 trained values in a row): a copy whose times or ids are written
/// otherwise than in training (`2020-01-01` for `2020-01`, `7` for `007`), which the records
/// of times and ids do not know. A series `placed` by its id and times is left to that record
/// (values repeat in periodic data; times tell the rows apart). The first place a run is
/// found at is taken: the trained rows end after the first copy of their last values, or as
/// many rows after the first copy of their first values as were trained.
fn trained_by_values(
    spec: &GlobalSpec,
    panel: &Panel,
    lens: &[usize],
    placed: &[bool],
    need: usize,
    data: &Path,
) -> JobResult<()> {
    use std::collections::HashMap;
    // a recorded run: its fingerprint, its training series, whether it is the last run
    type Recorded<'a> = (&'a str, usize, bool);
    // by (run length, first value's bits)
    let mut runs: HashMap<(usize, u64), Vec<Recorded>> = HashMap::new();
    for (i, end) in spec.trained_until.iter().enumerate() {
        if let Some(v) = &end.values {
            for (r, tail) in [(&v.tail, true), (&v.head, false)] {
                if let Some(r) = r {
                    runs.entry((v.run, r.first))
                        .or_default()
                        .push((r.print.as_str(), i, tail));
                }
            }
        }
    }
    let mut lengths: Vec<usize> = runs.keys().map(|k| k.0).collect();
    lengths.sort_unstable();
    lengths.dedup();
    for ((x, &n), _) in panel
        .series
        .iter()
        .zip(lens)
        .zip(placed)
        .filter(|(_, &p)| !p)
    {
        let y: Vec<f64> = x.target[..n].iter().map(|&v| f64::from(v)).collect();
        let first_scored = n - need;
        // each training series' trained end in this one, from the first copy of its runs
        let mut ends: HashMap<usize, usize> = HashMap::new();
        let mut tails_seen = std::collections::HashSet::new();
        // (a run of 0, in a hand-edited configuration, matches nothing: a panic audit,
        // 2026-12-07)
        for &run in lengths.iter().filter(|&&r| r >= 1 && r <= n) {
            for i in 0..=n - run {
                let bits = crate::data::series::value_bits(y[i]);
                // a quick test on the first value before any fingerprint
                let Some(candidates) = runs.get(&(run, bits)) else {
                    continue;
                };
                let print = crate::data::series::TrainedRows::print(&y[i..i + run]);
                for &(p, j, tail) in candidates {
                    if p != print {
                        continue;
                    }
                    let trained = spec.trained_until[j].values.as_ref().map_or(0, |v| v.rows);
                    if tail {
                        // the last values' first copy decides, over a copy of the first values
                        if tails_seen.insert(j) {
                            ends.insert(j, i + run);
                        }
                    } else if !tails_seen.contains(&j) {
                        ends.entry(j).or_insert(i.saturating_add(trained).min(n));
                    }
                }
            }
        }
        let mut ends: Vec<(usize, usize)> = ends.into_iter().collect();
        ends.sort_unstable();
        for (j, end) in ends {
            if end > first_scored {
                return Err(invalid(format!(
                    "{}: series `{}` (line {}) holds, up to its row {end}, the values the model trained on in its series `{}` (the same values in a row, whatever its times and id are written like), and the last {need} steps scored reach into them: a score there would not be held out; score data after them, or train with a larger --holdout",
                    data.display(),
                    x.id,
                    x.first_line,
                    spec.ids.get(j).map_or(spec.target.as_str(), String::as_str),
                )));
            }
        }
    }
    Ok(())
}

/// The columns a global forecaster reads, and the frequency it was trained on (a few
/// weekdays of business-daily data are read as such).
fn panel_spec(spec: &GlobalSpec) -> PanelSpec {
    PanelSpec {
        id_column: spec.id_column.clone(),
        time_column: spec.time_column.clone(),
        target: spec.target.clone(),
        known: spec.known.clone(),
        freq: spec.frequency().ok(),
    }
}

/// Scores a global forecaster on `windows` rolling origins at the end of each series of
/// `data`: origin `k` (of `windows`) is `k·horizon` steps before the series' end, so the last
/// window ends with the series. Refuses windows that reach into the model's own training data
/// (same file, `--holdout` shorter than `windows·horizon`).
///
/// # Errors
/// A model that is not a global forecaster, an unreadable file, windows overlapping the
/// training data, series too short for the windows.
pub fn backtest(l: &mut Loaded, data: &Path, windows: usize) -> JobResult<Backtest> {
    backtest_with(l, data, windows, false)
}

/// [`backtest`], keeping each window's forecasts when `keep_forecasts`
/// ([`Backtest::forecasts_csv`]).
///
/// # Errors
/// As [`backtest`]; with `keep_forecasts`, a data column named as one of the forecasts'
/// columns (`cutoff`, `median`, `q0.025`, ...).
pub fn backtest_with(
    l: &mut Loaded,
    data: &Path,
    windows: usize,
    keep_forecasts: bool,
) -> JobResult<Backtest> {
    let spec = l.meta.global.clone().ok_or_else(|| {
        invalid(format!(
            "`backtest` needs a global forecaster but this is {}; `evaluate` scores it on its held-out rows",
            served_as(l).0
        ))
    })?;
    if windows == 0 {
        return Err(invalid("--windows must be at least 1"));
    }
    let s = &l.meta.settings;
    // more windows than a series could hold overflow here: the row check below words it
    let need = windows.saturating_mul(spec.horizon);
    let panel = panel_for(&spec, data)?;
    same_frequency(&spec, &panel, &data.display().to_string())?;
    // each series' windows end with its last value (rows after it hold only known columns)
    let lens = global::histories(&panel);
    let (first, why) = global::history_needed(&spec);
    for (x, &n) in panel.series.iter().zip(&lens) {
        if n < need.saturating_add(first) {
            return Err(JobError::Lib(Error::Format {
                path: data.display().to_string(),
                reason: format!(
                    "series `{}` (line {}) has {n} rows up to its last value, too few for {windows} window(s) of {} after the {first} the model reads first ({why})",
                    x.id, x.first_line, spec.horizon
                ),
            }));
        }
    }
    // the same file by another spelling (`./f.csv`, an absolute path) is the same file
    let same = |a: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(data)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == data,
    };
    if s.data.as_deref().map(Path::new).is_some_and(same) && s.holdout < need {
        return Err(invalid(format!(
            "{}: the {windows} window(s) of {} cover the last {need} steps of each series, but this model trained on all but the last {} (--holdout {}), so {} of those steps were trained on; train with --holdout {need} (or more) to score them, or score another file",
            data.display(),
            spec.horizon,
            s.holdout,
            s.holdout,
            need - s.holdout
        )));
    }
    // any file holding a series' last trained row (a longer copy of the training file,
    // another export of the same series): no scored step may be one the series trained on
    let mut placed = vec![false; panel.series.len()];
    // looked up, not searched (a probe, 2026-12-07: 80,000 series took 83 s of string compares)
    let trained: std::collections::HashMap<&str, usize> = spec
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    for (k, (x, &n)) in panel.series.iter().zip(&lens).enumerate() {
        let Some(&i) = trained.get(x.id.as_str()) else {
            continue;
        };
        let Some(end) = spec.trained_until.get(i) else {
            continue;
        };
        // the file holds the rows this series trained up to: its windows must start after
        let Some(after_trained) = end.found_in(&x.times[..n], &x.target[..n]) else {
            continue;
        };
        placed[k] = true;
        let first = x.times[n - need];
        if n - need >= after_trained {
            continue;
        }
        let until = &end.time;
        let after = n - after_trained;
        let fits = after / spec.horizon;
        return Err(invalid(format!(
            "{}: series `{}` (line {}): the first of {windows} window(s) of {} starts at {first}, but this model trained on the series up to {until}; {}",
            data.display(),
            x.id,
            x.first_line,
            spec.horizon,
            if fits > 0 {
                format!("score at most --windows {fits}, or score data after {until}")
            } else {
                format!("score data after {until}, or train with a larger --holdout")
            }
        )));
    }
    trained_by_values(&spec, &panel, &lens, &placed, need, data)?;
    if spec.distribution.needs_scale() {
        check_counts(&data.display().to_string(), &panel, &lens, &spec.target)?;
    }
    let prepared = global::prepare(&spec, &panel, &lens, 0)?;
    let (mut scores, mut naive, mut per_series) = (Vec::new(), Vec::new(), Vec::new());
    // with `keep_forecasts`: the CSV rows of each (series, window), put in order at the end
    let mut forecast_rows: Vec<(usize, usize, Vec<Vec<String>>)> = Vec::new();
    let time_name = global::time_column_name(&spec);
    let forecast_header = keep_forecasts
        .then(|| backtest_forecast_header(&spec, &time_name))
        .transpose()?;
    let m = spec.season.max(1);
    for k in (1..=windows).rev() {
        let origins: Vec<usize> = lens.iter().map(|&n| n - k * spec.horizon).collect();
        let fc = forecast_models(
            &spec,
            l,
            &prepared,
            &origins,
            spec.horizon,
            &BACKTEST_LEVELS,
        )?;
        for (i, ((p, &origin), f)) in prepared.iter().zip(&origins).zip(&fc).enumerate() {
            let y: Vec<f64> = p.y.iter().map(|&v| v as f64).collect();
            let insample = &y[..origin];
            let actual = &y[origin..origin + spec.horizon];
            let score = |point: &[f64], q: &[(f64, Vec<f64>)]| {
                metrics::WindowScore::new(insample, actual, point, q, spec.season)
                    .map_err(|e| invalid(e.to_string()))
            };
            let model = score(&f.median, &f.quantiles)?;
            let sn = metrics::seasonal_naive_forecast(insample, m, spec.horizon);
            let sn = score(&sn, &[])?;
            per_series.push((
                i,
                SeriesScore {
                    id: f.id.clone(),
                    window: windows - k + 1,
                    start: f.times.first().map(|t| t.to_string()).unwrap_or_default(),
                    observed: model.observed,
                    smape: model.smape,
                    mase: model.mase,
                    mape: model.mape,
                    rmse: model.rmse,
                    quantile_loss: model.quantile_loss,
                    coverage_95: model.coverage_95,
                    msis: model.msis,
                    seasonal_naive_smape: sn.smape,
                    seasonal_naive_mase: sn.mase,
                },
            ));
            if keep_forecasts {
                let x = &panel.series[i];
                let cutoff = x.times[origin - 1].to_string();
                let rows = (0..spec.horizon)
                    .map(|h| {
                        let mut row = Vec::new();
                        if spec.id_column.is_some() {
                            row.push(f.id.clone());
                        }
                        row.push(f.times[h].to_string());
                        row.push(cutoff.clone());
                        let a = actual[h];
                        // as the file wrote it (the 32-bit value's shortest spelling)
                        row.push(if a.is_nan() {
                            String::new()
                        } else {
                            (a as f32).to_string()
                        });
                        row.push(f.median[h].to_string());
                        for (q, v) in &f.quantiles {
                            if *q != 0.5 {
                                row.push(v[h].to_string());
                            }
                        }
                        row
                    })
                    .collect();
                forecast_rows.push((i, windows - k + 1, rows));
            }
            scores.push(model);
            naive.push(sn);
        }
    }
    let forecasts_csv = forecast_header.map(|header| {
        forecast_rows.sort_by_key(|(i, w, _)| (*i, *w));
        crate::data::tabular::csv_text(
            std::iter::once(&header).chain(forecast_rows.iter().flat_map(|(_, _, rows)| rows)),
        )
    });
    // series by series in the file's order, each one's windows in time order
    per_series.sort_by_key(|(i, r)| (*i, r.window));
    let per_series = per_series.into_iter().map(|(_, r)| r).collect();
    Ok(Backtest {
        task: Task::Forecast,
        data: data.to_path_buf(),
        series: panel.series.len(),
        windows,
        horizon: spec.horizon,
        season: spec.season,
        model: metrics::Aggregate::from_windows(&scores),
        seasonal_naive: metrics::Aggregate::from_windows(&naive),
        per_series,
        id_column: spec.id_column.clone(),
        forecasts_csv,
    })
}

/// A global forecaster's forecast of every series of a file, with its CSV.
#[derive(Clone, Debug)]
pub struct GlobalForecast {
    /// The model's description.
    pub spec: GlobalSpec,
    /// Each series' history (the values up to its last known one) and forecast.
    pub series: Vec<(Vec<f64>, global::SeriesForecast)>,
    /// The CSV: id and time columns under their input names, the median under the target's
    /// name, one `q<level>` column per quantile level.
    pub csv: String,
}

/// Forecasts `steps` (default: the horizon) past each series' last known value in `data`, with
/// the quantiles `levels`.
///
/// # Errors
/// A model that is not a global forecaster, an unreadable file, series too short, known
/// columns missing for the forecast steps, too many steps.
pub fn forecast_global(
    l: &mut Loaded,
    data: &Path,
    steps: Option<usize>,
    levels: &[f64],
) -> JobResult<GlobalForecast> {
    let spec = global_spec(l, "forecast_global")?;
    // its CSV names each column once
    global::check_output_names(&spec, levels)?;
    let panel = panel_for(&spec, data)?;
    forecast_panel(l, spec, panel, &data.display().to_string(), steps, levels)
}

/// As [`forecast_global`] on CSV text in memory (the server's requests); `name` names it in
/// errors. Unlike [`forecast_global`] it does not refuse a quantile level whose column name
/// (`q0.5`) is the id, time or target column's (the server answers in JSON, where they do not
/// meet): the returned `csv` then names that column twice; check
/// [`global::check_output_names`] first to write it.
///
/// # Errors
/// As [`forecast_global`], but for that.
pub fn forecast_global_csv(
    l: &mut Loaded,
    name: &str,
    csv: &str,
    steps: Option<usize>,
    levels: &[f64],
) -> JobResult<GlobalForecast> {
    let spec = global_spec(l, "forecast_global")?;
    let panel = panel::parse_panel(csv, name, &panel_spec(&spec))?;
    forecast_panel(l, spec, panel, name, steps, levels)
}

fn forecast_panel(
    l: &mut Loaded,
    spec: GlobalSpec,
    panel: Panel,
    name: &str,
    steps: Option<usize>,
    levels: &[f64],
) -> JobResult<GlobalForecast> {
    let steps = steps.unwrap_or(spec.horizon);
    if steps == 0 || steps > spec.horizon {
        return Err(invalid(format!(
            "--steps must be between 1 and the model's horizon ({}); train with a longer --horizon to forecast further",
            spec.horizon
        )));
    }
    same_frequency(&spec, &panel, name)?;
    let history = global::histories(&panel);
    global::check_forecast_panel(&spec, &panel, &history, steps, None, name)?;
    // counts are read as counts: a history the distribution cannot hold is refused, as in
    // training (it used to forecast from a negative or fractional history all the same)
    if spec.distribution.needs_scale() {
        check_counts(name, &panel, &history, &spec.target)?;
    }
    // a bidirectional network reads every step of the horizon for each one, later steps
    // included: their covariates must be the user's, not stand-ins
    if l.meta.model.bidirectional && !spec.known.is_empty() {
        for (x, &h) in panel.series.iter().zip(&history) {
            if x.times.len() < h + spec.horizon {
                return Err(invalid(format!(
                    "{name}: series `{}` has {} rows after its last value; this model is bidirectional, so each forecast step reads the known columns ({}) of all {} steps of its horizon, later ones included: add rows up to {} steps after the last value, with the target left empty",
                    x.id,
                    x.times.len() - h,
                    spec.known.join(", "),
                    spec.horizon,
                    spec.horizon
                )));
            }
        }
    }
    // the window reaches `horizon` steps past the last value: the file's own later rows (whose
    // known columns the forecast reads), then generated times (covariates 0: only steps past
    // `steps` read them, and a step never reads a later one)
    let prepared = global::prepare(&spec, &panel, &history, spec.horizon)?;
    let fc = forecast_models(&spec, l, &prepared, &history, steps, levels)?;
    // a history far outside what the model saw can scale to infinities: never written as a
    // forecast
    for f in &fc {
        if f.median.iter().any(|v| !v.is_finite()) {
            return Err(invalid(format!(
                "{name}: series `{}`: its forecast is not a finite number: its history's values are too far from those the model was trained on, or too large; scale the series down",
                f.id
            )));
        }
        if let Some((q, _)) = f
            .quantiles
            .iter()
            .find(|(_, v)| v.iter().any(|v| !v.is_finite()))
        {
            return Err(invalid(format!(
                "{name}: series `{}`: its quantile at level {q} is not a finite number (the distribution's tail overflows that far out); ask for levels nearer 0.5",
                f.id
            )));
        }
    }
    let csv = global::forecast_csv(&spec, &fc);
    let series = prepared
        .iter()
        .zip(&history)
        .zip(fc)
        .map(|((p, &h), f)| (p.y[..h].iter().map(|&v| v as f64).collect(), f))
        .collect();
    Ok(GlobalForecast { spec, series, csv })
}
