//! Training settings: every hyperparameter of the three jobs, with per-job defaults, as one
//! serialisable struct (the TOML file of `lstm train --config` and the `settings` saved with a
//! model).
//!
//! ```
//! use lstm::tasks::settings::Settings;
//! use lstm::tasks::modeldir::Task;
//! let s = Settings::defaults(Task::Text);
//! assert_eq!((s.layers, s.hidden, s.seq_len, s.batch), (2, 256, 64, 32));
//! s.validate().unwrap();
//! ```

use serde::{Deserialize, Serialize};

use crate::cell::Mode;
use crate::data::series::Transform;
use crate::data::vocab::TokenKind;
use crate::error::{Error, Result};
use crate::model::optim::OptimizerConfig;

/// The most threads a run may ask for (`--threads`): far more than any machine's cores.
pub const MAX_THREADS: usize = 4096;

/// The largest series id embedding (`--id-embedding`): DeepAR's are tens wide; the rule
/// gives at most 16 below 256 series.
pub const MAX_ID_EMBEDDING: usize = 1024;

/// The job a model was trained for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Character (or word) language model.
    Text,
    /// Time-series forecaster.
    Forecast,
    /// Sequence classifier.
    Classify,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::Text => "text",
            Task::Forecast => "forecast",
            Task::Classify => "classify",
        })
    }
}

/// LSTM variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// Forget, input and output gates.
    Standard,
    /// With peephole connections.
    Peephole,
    /// Coupled input and forget gates.
    Coupled,
    /// Both.
    #[serde(alias = "peephole-coupled")]
    PeepholeCoupled,
}

/// Optimizer choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Adam.
    Adam,
    /// AdamW.
    Adamw,
    /// SGD with momentum.
    Sgd,
}

/// Learning-rate schedule over the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// The same rate throughout.
    Constant,
    /// Cosine decay from `lr` to `lr / 10` over the budget.
    Cosine,
}

impl LrSchedule {
    /// Multiplier of the learning rate at `fraction` (0..1) of the budget.
    pub fn scale(self, fraction: f64) -> f32 {
        match self {
            LrSchedule::Constant => 1.0,
            LrSchedule::Cosine => {
                let f = fraction.clamp(0.0, 1.0);
                (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * f).cos())) as f32
            }
        }
    }
}

/// What training does when a batch gives a NaN or infinite loss or gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnNonFinite {
    /// Stop with an error naming the step; the last checkpoint is kept as it was.
    #[default]
    Stop,
    /// Skip the batch (no update) and go on; stop after [`MAX_CONSECUTIVE_SKIPS`] in a row.
    Skip,
}

/// Consecutive non-finite batches after which [`OnNonFinite::Skip`] gives up (the weights
/// themselves have diverged).
pub const MAX_CONSECUTIVE_SKIPS: u32 = 10;

/// Which model the forecast job trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Forecaster {
    /// One model over all series of a long-format file, a forecast distribution per step
    /// ([`crate::tasks::global`]).
    #[default]
    Global,
    /// The earlier model: fixed windows of one table's columns, a point forecast of the first
    /// column trained by mean squared error ([`crate::tasks::forecast`]).
    Window,
}

/// Every hyperparameter of a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Training data file (`None` for the text job: the bundled Shakespeare).
    pub data: Option<String>,
    /// Validation file (`None`: the last `val_fraction` of the data).
    pub val: Option<String>,
    /// Recurrent cell.
    pub cell: Mode,
    /// LSTM variant.
    pub variant: Variant,
    /// Stacked layers.
    pub layers: usize,
    /// Units per layer.
    pub hidden: usize,
    /// LSTM projection size (0 = none).
    pub proj: usize,
    /// Bidirectional layers (forecast and classify only).
    pub bidirectional: bool,
    /// Embedding size (classify; 0 = one-hot input).
    pub embedding: usize,
    /// Characters per training sequence (text).
    pub seq_len: usize,
    /// Sequences per batch.
    pub batch: usize,
    /// Learning rate.
    pub lr: f32,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Learning-rate schedule over the budget (by steps, or by time with a `minutes` budget).
    pub lr_schedule: LrSchedule,
    /// Weight decay.
    pub weight_decay: f32,
    /// SGD momentum.
    pub momentum: f32,
    /// Dropout between layers and before the head.
    pub dropout: f32,
    /// Variational recurrent dropout.
    pub recurrent_dropout: f32,
    /// Gradient clipping by global norm (0 = off).
    pub clip: f32,
    /// Seed for initial weights, batches and dropout.
    pub seed: u64,
    /// Threads (0 = all cores).
    pub threads: usize,
    /// Budget: optimizer steps.
    pub steps: Option<u64>,
    /// Budget: passes over the training data.
    pub epochs: Option<f64>,
    /// Budget: minutes of training.
    pub minutes: Option<f64>,
    /// Write a checkpoint every this many steps (always at the end).
    pub save_every: Option<u64>,
    /// Evaluate on the validation split every this many steps.
    pub eval_every: u64,
    /// Print a sample every this many steps (text; 0 = never).
    pub sample_every: u64,
    /// Fraction held out for validation when no validation file is given.
    pub val_fraction: f32,
    /// Text and classify: the last fraction of the data file that training never reads,
    /// neither to train nor to validate on: a test set for `lstm eval --tail` (0 = none). The
    /// validation split is carved from the rows before it.
    pub tail: f64,
    /// Forecast: the columns read (the first is the target).
    pub columns: Vec<String>,
    /// Forecast: the date column, if any.
    pub date_column: Option<String>,
    /// Forecast: input window length.
    pub window: usize,
    /// Forecast: steps predicted at once (0: chosen by the forecaster: two seasons for the
    /// global one, 1 for the window one).
    pub horizon: usize,
    /// Forecast: which model.
    pub forecaster: Forecaster,
    /// Forecast (global): the series id column of a long-format file.
    pub id_column: Option<String>,
    /// Forecast (global): columns known in advance, needed for the forecast steps too.
    pub known_columns: Vec<String>,
    /// Forecast (global): the season in steps (default: from the time column's frequency).
    pub season: Option<usize>,
    /// Forecast (global): steps of history read before each forecast origin (default:
    /// `max(2·horizon, 3·season)`).
    pub context: Option<usize>,
    /// Forecast (global): the forecast distribution.
    pub distribution: crate::model::loss::Distribution,
    /// Forecast (global): how each window is scaled.
    pub scaling: crate::tasks::global::Scaling,
    /// Forecast (global): the series id embedding's size (`None`: none; 0: by the number of
    /// series).
    pub id_embedding: Option<usize>,
    /// Forecast: rows at the end of the file never used for training (a test set).
    pub holdout: usize,
    /// Forecast: value transform before scaling.
    pub transform: Transform,
    /// Classify: the text column.
    pub text_column: String,
    /// Classify: the label column.
    pub label_column: String,
    /// Classify: token kind.
    pub tokens: TokenKind,
    /// Classify: longest sequence kept (tokens); longer texts are cut.
    pub max_len: usize,
    /// Classify: word vocabulary keeps words seen at least this often.
    pub min_count: usize,
    /// Classify: largest word vocabulary.
    pub max_vocab: usize,
    /// Classify: word dropout, the chance that a training token is replaced by the unknown
    /// token (0 = off; models saved before it had none).
    pub word_dropout: f32,
    /// Classify: concat pooling, the head reading the last state with the maximum and the mean
    /// over time (`false`: the last state only, which `lstm export onnx` can write).
    pub pool: bool,
    /// Classify: models trained from seeds derived from `seed` and saved in one model
    /// directory, their class probabilities averaged when predicting (1 = one model, as models
    /// saved before it; the first model trains with `seed` itself).
    pub members: usize,
    /// What to do with a batch whose loss or gradient is NaN or infinite.
    pub on_nonfinite: OnNonFinite,
    /// The numeric format of the recurrent layers' matrix products while training (bf16:
    /// mixed precision, see [`crate::kernels::Precision`]); the saved weights are `f32` either
    /// way.
    pub precision: crate::kernels::Precision,
    /// The settings the user gave, by name (`lstm train` flags, `--config` keys, Python keyword
    /// arguments): the rules that size a model by its budget or data ([`text_size`]'s larger
    /// text model, the global forecaster's size for large data) keep these as given, even at
    /// their default value. Empty for settings built in code, where a setting at its default
    /// counts as not given. Not saved.
    ///
    /// [`text_size`]: crate::tasks::job::text_size
    #[serde(skip)]
    pub given: std::collections::BTreeSet<String>,
}

/// A setting's name as a configuration and Python know it, with the `lstm train` flag that sets
/// it where there is one: `val_fraction (--val-fraction)`.
fn named(name: &str) -> String {
    const NO_FLAG: [&str; 2] = ["word_dropout", "max_vocab"];
    if NO_FLAG.contains(&name) {
        name.to_string()
    } else {
        format!("{name} (--{})", name.replace('_', "-"))
    }
}

impl Settings {
    /// Whether the setting `name` was left to the job: not given by the user (see
    /// [`Settings::given`]) and at `default`'s value.
    pub fn left<T: PartialEq>(&self, name: &str, value: &T, default: &T) -> bool {
        !self.given.contains(name) && value == default
    }

    /// Defaults for a job: the charlm-2x256 model for text, a small LSTM for series, a
    /// word-embedding LSTM for classification.
    pub fn defaults(task: Task) -> Settings {
        let base = Settings {
            data: None,
            val: None,
            cell: Mode::Lstm,
            variant: Variant::Standard,
            layers: 2,
            hidden: 256,
            proj: 0,
            bidirectional: false,
            embedding: 0,
            seq_len: 64,
            batch: 32,
            lr: 2e-3,
            optimizer: OptimizerKind::Adam,
            lr_schedule: LrSchedule::Constant,
            weight_decay: 0.0,
            momentum: 0.9,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            clip: 5.0,
            seed: 1,
            threads: 0,
            steps: None,
            epochs: None,
            minutes: None,
            save_every: None,
            eval_every: 250,
            sample_every: 500,
            val_fraction: 0.1,
            tail: 0.0,
            columns: Vec::new(),
            date_column: None,
            window: 24,
            horizon: 0,
            forecaster: Forecaster::Global,
            id_column: None,
            known_columns: Vec::new(),
            season: None,
            context: None,
            distribution: crate::model::loss::Distribution::StudentT,
            scaling: crate::tasks::global::Scaling::Auto,
            id_embedding: None,
            holdout: 0,
            transform: Transform::None,
            text_column: "text".into(),
            label_column: "label".into(),
            tokens: TokenKind::Char,
            max_len: 256,
            min_count: 2,
            max_vocab: 20_000,
            word_dropout: 0.0,
            pool: false,
            members: 1,
            on_nonfinite: OnNonFinite::Stop,
            precision: crate::kernels::Precision::F32,
            given: std::collections::BTreeSet::new(),
        };
        match task {
            Task::Text => Settings {
                minutes: Some(4.0),
                // measured: 0.1 reaches 1.544 nats/char in 10 minutes where 0 plateaus at 1.57
                dropout: 0.1,
                ..base
            },
            // the global forecaster's (DeepAR's sizes: 2 layers of 40); its step budget is set
            // by tasks::global's rule when none is given
            Task::Forecast => Settings {
                layers: 2,
                // the global forecaster resizes a default run by the data (tasks::job::global_size)
                hidden: 40,
                batch: 64,
                lr: 1e-3,
                dropout: 0.1,
                eval_every: 100,
                sample_every: 0,
                val_fraction: 0.15,
                ..base
            },
            // with the pooled head and word dropout, chosen on a validation split carved from
            // the training rows; ten models of eight epochs by cross-validation on them
            // (docs/classify.md)
            Task::Classify => Settings {
                layers: 1,
                hidden: 64,
                embedding: 100,
                batch: 32,
                lr: 2e-3,
                dropout: 0.5,
                word_dropout: WORD_DROPOUT,
                pool: true,
                members: MEMBERS,
                epochs: Some(8.0),
                lr_schedule: LrSchedule::Cosine,
                eval_every: 100,
                sample_every: 0,
                tokens: TokenKind::Word,
                ..base
            },
        }
    }

    /// Checks every value.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting and what it must be.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.precision == crate::kernels::Precision::Bf16
            && crate::kernels::amx::Bf16Backend::best() == crate::kernels::amx::Bf16Backend::Scalar
        {
            return bad(
                "precision bf16 needs a CPU with AMX or AVX-512 BF16 (avx512_bf16); this one \
                 has neither: train in f32 (leave out --precision bf16)"
                    .into(),
            );
        }
        self.check_sizes()?;
        if self.known_columns.iter().any(|c| c.trim().is_empty()) {
            return bad(format!(
                "--known-columns {:?} has an empty name (a comma at the start or end, or two in a row); give the columns' names separated by single commas",
                self.known_columns.join(",")
            ));
        }
        // guard against sizes that would exhaust memory before anything is allocated
        let params = 4
            * self.hidden as u128
            * (self.hidden as u128 + self.embedding.max(1024) as u128)
            * self.layers as u128;
        if params > 2_000_000_000 {
            return bad(format!(
                "a model of {} layers of {} units would need about {} GB of parameters; choose a smaller --hidden, --layers or --embedding",
                self.layers,
                self.hidden,
                params * 16 / 1_000_000_000
            ));
        }
        // activations depend on the task's sequence length: checked when the job builds its
        // model (`memory::check_model_memory`)
        if !(self.lr.is_finite() && self.lr > 0.0) {
            // read as a 32-bit number: 1e-50 is 0 and 1e39 infinite (a probe, 2026-12-08:
            // "got 0" for a rate the user gave as 1e-50)
            let hint = if self.lr == 0.0 || self.lr.is_infinite() {
                " (a 32-bit number: from about 1e-38 to 3.4e38)"
            } else {
                ""
            };
            return bad(format!(
                "{} must be a positive number, got {}{hint}",
                named("lr"),
                self.lr
            ));
        }
        for (name, p) in [
            ("dropout", self.dropout),
            ("recurrent_dropout", self.recurrent_dropout),
            ("word_dropout", self.word_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("{} must be in [0, 1), got {p}", named(name)));
            }
        }
        if !(self.val_fraction > 0.0 && self.val_fraction < 0.9) {
            return bad(format!(
                "{} must be in (0, 0.9), got {}",
                named("val_fraction"),
                self.val_fraction
            ));
        }
        if !(0.0..0.9).contains(&self.tail) {
            return bad(format!(
                "{} must be in [0, 0.9), got {}",
                named("tail"),
                self.tail
            ));
        }
        if !(self.clip.is_finite() && self.clip >= 0.0) {
            return bad(format!(
                "{} must be a finite number >= 0 (0: no clipping), got {}",
                named("clip"),
                self.clip
            ));
        }
        if let Some(d) = self.id_embedding.filter(|&d| d > MAX_ID_EMBEDDING) {
            return bad(format!(
                "id_embedding (--id-embedding) must be at most {MAX_ID_EMBEDDING} (0: sized by the number of series), got {d}"
            ));
        }
        if self.text_column.trim() == self.label_column.trim() {
            return bad(format!(
                "text_column and label_column (--text-column, --label-column) are both {:?}: a classifier would read its own label; name two columns",
                self.text_column
            ));
        }
        if self.threads > MAX_THREADS {
            return bad(format!(
                "{} must be at most {MAX_THREADS} (0: every core), got {}",
                named("threads"),
                self.threads
            ));
        }
        if !(self.momentum.is_finite() && self.momentum >= 0.0) {
            return bad(format!(
                "momentum must be a finite number >= 0 (0: plain SGD), got {}",
                self.momentum
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "{} must be a finite number >= 0, got {}",
                named("weight_decay"),
                self.weight_decay
            ));
        }
        if let Some(m) = self.minutes {
            if !(m.is_finite() && m > 0.0) {
                return bad(format!(
                    "{} must be a positive, finite number, got {m}",
                    named("minutes")
                ));
            }
        }
        if let Some(e) = self.epochs {
            if !(e.is_finite() && e > 0.0) {
                return bad(format!(
                    "{} must be a positive, finite number, got {e}",
                    named("epochs")
                ));
            }
            if e > 1e6 {
                return bad(format!(
                    "{} must be at most 1000000, got {e}; for a run bounded by time give --minutes",
                    named("epochs")
                ));
            }
        }
        if self.steps == Some(0) {
            return bad(format!("{} must be at least 1", named("steps")));
        }
        if self.save_every == Some(0) {
            return bad(format!("{} must be at least 1", named("save_every")));
        }
        if self.eval_every == 0 {
            return bad(format!("{} must be at least 1", named("eval_every")));
        }
        if self.cell != Mode::Lstm && self.variant != Variant::Standard {
            let name = serde_json::to_value(self.variant)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            return bad(format!(
                "variant {name} (--variant) needs cell = lstm (--cell lstm)"
            ));
        }
        if self.proj > 0 && (self.cell != Mode::Lstm || self.proj >= self.hidden) {
            return bad(format!(
                "{} needs cell = lstm (--cell lstm) and proj < hidden (--hidden)",
                named("proj")
            ));
        }
        Ok(())
    }

    /// Checks the sizes that must be at least 1 (and `members`' bound): the part of
    /// [`Settings::validate`] that a saved model's settings must also pass to be loaded.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn check_sizes(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        for (name, v) in [
            ("layers", self.layers),
            ("hidden", self.hidden),
            ("seq_len", self.seq_len),
            ("batch", self.batch),
            ("window", self.window),
            ("max_len", self.max_len),
            ("max_vocab", self.max_vocab),
            ("members", self.members),
        ] {
            if v == 0 {
                return bad(format!("{} must be at least 1", named(name)));
            }
        }
        if self.members > MAX_MEMBERS {
            return bad(format!(
                "{} must be at most {MAX_MEMBERS}, got {} (each is a whole model, trained in turn)",
                named("members"),
                self.members
            ));
        }
        Ok(())
    }

    /// The optimizer these settings describe.
    pub fn optimizer_config(&self) -> OptimizerConfig {
        match self.optimizer {
            OptimizerKind::Adam => OptimizerConfig::Adam {
                lr: self.lr,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: self.weight_decay,
            },
            OptimizerKind::Adamw => OptimizerConfig::AdamW {
                lr: self.lr,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: self.weight_decay,
            },
            OptimizerKind::Sgd => OptimizerConfig::Sgd {
                lr: self.lr,
                momentum: self.momentum,
                weight_decay: self.weight_decay,
                nesterov: false,
            },
        }
    }

    /// Whether `task` reads the setting `name` (a field of [`Settings`] by its configuration
    /// name): the settings `lstm train <task>` has a flag for, and those without a flag that
    /// only its job reads (`word_dropout`, `max_vocab`, `min_count` and `pool` for classify).
    /// A name that is no setting is read by no task.
    pub fn used_by(task: Task, name: &str) -> bool {
        if COMMON.contains(&name) {
            return true;
        }
        match task {
            Task::Text => TEXT.contains(&name),
            Task::Forecast => FORECAST.contains(&name),
            Task::Classify => CLASSIFY.contains(&name),
        }
    }

    /// Whether peepholes are on.
    pub fn peephole(&self) -> bool {
        matches!(self.variant, Variant::Peephole | Variant::PeepholeCoupled)
    }

    /// Whether input and forget gates are coupled.
    pub fn coupled(&self) -> bool {
        matches!(self.variant, Variant::Coupled | Variant::PeepholeCoupled)
    }
}

/// Settings every job reads ([`Settings::used_by`]).
const COMMON: [&str; 25] = [
    "data",
    "cell",
    "variant",
    "layers",
    "hidden",
    "proj",
    "batch",
    "lr",
    "optimizer",
    "lr_schedule",
    "weight_decay",
    "momentum",
    "dropout",
    "recurrent_dropout",
    "clip",
    "seed",
    "threads",
    "steps",
    "epochs",
    "minutes",
    "save_every",
    "eval_every",
    "val_fraction",
    "on_nonfinite",
    "precision",
];

/// Settings only the text job reads, besides [`COMMON`].
const TEXT: [&str; 4] = ["val", "seq_len", "sample_every", "tail"];

/// Settings only the forecast job reads (both forecasters), besides [`COMMON`].
const FORECAST: [&str; 15] = [
    "columns",
    "date_column",
    "id_column",
    "known_columns",
    "forecaster",
    "season",
    "context",
    "distribution",
    "scaling",
    "id_embedding",
    "window",
    "horizon",
    "holdout",
    "transform",
    "bidirectional",
];

/// Settings only the classify job reads, besides [`COMMON`].
const CLASSIFY: [&str; 13] = [
    "val",
    "tail",
    "text_column",
    "label_column",
    "tokens",
    "embedding",
    "max_len",
    "min_count",
    "max_vocab",
    "word_dropout",
    "pool",
    "members",
    "bidirectional",
];

/// The classifier's default number of models averaged ([`Settings::members`]; with 8 epochs,
/// chosen by 5-fold cross-validation on the training rows, docs/classify.md).
pub const MEMBERS: usize = 10;

/// The most models [`Settings::members`] may ask for.
pub const MAX_MEMBERS: usize = 100;

/// The classifier's default word dropout (chosen on validation, docs/classify.md).
pub const WORD_DROPOUT: f32 = 0.15;

impl Default for Settings {
    fn default() -> Self {
        Settings::defaults(Task::Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every setting is read by some job, once per list, and every name listed is a setting:
    /// a new field must be given its jobs.
    #[test]
    fn every_setting_belongs_to_a_job() {
        let v = serde_json::to_value(Settings::defaults(Task::Text)).unwrap();
        let fields: Vec<&String> = v.as_object().unwrap().keys().collect();
        for f in &fields {
            let jobs = [Task::Text, Task::Forecast, Task::Classify]
                .into_iter()
                .filter(|&t| Settings::used_by(t, f))
                .count();
            assert!(jobs > 0, "{f} is read by no job");
        }
        for list in [&COMMON[..], &TEXT[..], &FORECAST[..], &CLASSIFY[..]] {
            for name in list {
                assert!(fields.iter().any(|f| f == name), "{name} is no setting");
            }
        }
        for list in [&TEXT[..], &FORECAST[..], &CLASSIFY[..]] {
            for name in list {
                assert!(!COMMON.contains(name), "{name} is listed twice");
            }
        }
        assert!(!Settings::used_by(Task::Text, "window"));
        assert!(!Settings::used_by(Task::Forecast, "seq_len"));
        assert!(Settings::used_by(Task::Classify, "word_dropout"));
        assert!(!Settings::used_by(Task::Classify, "no_such"));
    }

    /// A configuration file may spell a choice as its flag does (`--cell rnn-relu`,
    /// `--scaling log-seasonal`) or as `config.json` saves it (`rnn_relu`): both read alike.
    #[test]
    fn choices_read_in_the_flags_spelling_and_the_saved_one() {
        let read = |json: &str| serde_json::from_str::<Settings>(json).unwrap();
        for (flag, saved) in [
            (r#"{"cell": "rnn"}"#, r#"{"cell": "rnn_tanh"}"#),
            (r#"{"cell": "rnn-tanh"}"#, r#"{"cell": "rnn_tanh"}"#),
            (r#"{"cell": "rnn-relu"}"#, r#"{"cell": "rnn_relu"}"#),
            (
                r#"{"variant": "peephole-coupled"}"#,
                r#"{"variant": "peephole_coupled"}"#,
            ),
            (
                r#"{"distribution": "student-t"}"#,
                r#"{"distribution": "student_t"}"#,
            ),
            (
                r#"{"distribution": "negative-binomial"}"#,
                r#"{"distribution": "negative_binomial"}"#,
            ),
            (r#"{"scaling": "mean-abs"}"#, r#"{"scaling": "mean_abs"}"#),
            (r#"{"scaling": "log-trend"}"#, r#"{"scaling": "log_trend"}"#),
            (
                r#"{"scaling": "log-seasonal"}"#,
                r#"{"scaling": "log_seasonal"}"#,
            ),
            (
                r#"{"transform": "log_diff"}"#,
                r#"{"transform": "log-diff"}"#,
            ),
        ] {
            assert_eq!(read(flag), read(saved), "{flag}");
        }
        // what is saved is the one spelling
        let s = read(r#"{"cell": "rnn", "scaling": "log-seasonal"}"#);
        let saved = serde_json::to_value(&s).unwrap();
        assert_eq!(
            (saved["cell"].as_str(), saved["scaling"].as_str()),
            (Some("rnn_tanh"), Some("log_seasonal"))
        );
        assert!(serde_json::from_str::<Settings>(r#"{"cell": "rnn-gru"}"#).is_err());
    }
}
