//! Why LSTMs exist, as experiments one can rerun: the long-term dependency tasks of
//! Hochreiter & Schmidhuber (1997) and Le, Jaitly & Hinton (2015), the vanishing gradient
//! measured, and the variant comparison of Greff et al. (2015).
//!
//! - [`run_adding`]: the adding problem. Two input streams of length `T`: numbers drawn from
//!   `U(0, 1)` and a mask with exactly two ones, one at a uniformly drawn step of the first half
//!   (`0..T/2`) and one in the second half (`T/2..T`), as in Le et al.; the target is the sum
//!   of the two marked numbers. Always predicting 1.0 scores the baseline MSE
//!   `Var(U1 + U2) = 1/6 ≈ 0.167`; a network that does better has carried a number across
//!   up to `T` steps.
//! - [`run_order`]: the temporal-order task (Hochreiter & Schmidhuber 1997, task 6a): a
//!   sequence of random distractor symbols holding two relevant symbols, each `X` or `Y`, one
//!   at a step in `[T/10, 2T/10)` and one in `[5T/10, 6T/10)`; the class is the ordered pair
//!   (`XX`, `XY`, `YX`, `YY`), read after the last step. Chance is 25%.
//! - [`run_gradients`]: the norm of `dLoss/dx_t` for every step `t` of the adding problem, for
//!   an untrained and a trained network.
//! - [`run_variants`]: LSTM variants, GRU and RNN trained with the same budget on a character
//!   corpus; validation loss per variant over a few seeds.
//!
//! Every task's data comes from a seeded [`ChaCha8Rng`]: the training batches from the run's
//! seed, the held-out test set from a fixed seed (the same for every cell and run), so a run
//! is reproducible from its seed (and thread count) and runs are comparable.
//!
//! ```
//! use lstm::experiment::{adding_data, run_adding, AddingConfig, Arch};
//! use rand::SeedableRng;
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let (x, y) = adding_data(10, 3, &mut rng); // (B=3, T=10, 2) and (B=3, 1)
//! assert_eq!((x.len(), y.len()), (60, 3));
//! let cfg = AddingConfig { arch: Arch::Lstm, length: 10, hidden: 8, steps: 5, eval_every: 5, test_size: 20, ..Default::default() };
//! let report = run_adding(&cfg, &mut |_| {}).unwrap();
//! assert_eq!(report.steps, 5);
//! assert!(report.test_mse.is_finite() && report.baseline_mse > 0.0);
//! ```

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use plotters::style::RGBColor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::cell::Mode;
use crate::data::vocab::Vocab;
use crate::error::{Error, Result};
use crate::model::memory;
use crate::model::optim::OptimizerConfig;
use crate::model::{Batch, Head, InputKind, Inputs, ModelConfig, SequenceModel, Targets};
use crate::pages::plot::{self, Line};
use crate::params::init::InitScheme;
use crate::tasks::text::{self, Encoded, TextData};
use crate::tasks::train::{OwnedBatch, TrainTask};

/// Seed of every held-out test set (independent of the run's seed, so all runs are scored on
/// the same sequences).
const TEST_SEED: u64 = 0x07e5_75e7;
/// Seed offset of the training data stream (the model's own seed draws the weights).
const DATA_SEED: u64 = 0xda7a;

/// The recurrent layer an experiment trains: the cell and, for an LSTM, its variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// The standard LSTM (forget gate, input gate, output gate, no peepholes).
    Lstm,
    /// LSTM with peephole connections from the cell state to the gates.
    LstmPeephole,
    /// LSTM with coupled input and forget gates (`i = 1 - f`).
    LstmCoupled,
    /// LSTM with peepholes and coupled gates.
    LstmPeepholeCoupled,
    /// Gated recurrent unit.
    Gru,
    /// Elman RNN with tanh.
    Rnn,
    /// Elman RNN with ReLU.
    RnnRelu,
}

impl Arch {
    /// Every architecture, standard LSTM first.
    pub const ALL: [Arch; 7] = [
        Arch::Lstm,
        Arch::LstmPeephole,
        Arch::LstmCoupled,
        Arch::LstmPeepholeCoupled,
        Arch::Gru,
        Arch::Rnn,
        Arch::RnnRelu,
    ];

    /// The name used in tables, plots and JSON: `lstm`, `lstm-peephole`, `lstm-coupled`,
    /// `lstm-peephole-coupled`, `gru`, `rnn`, `rnn-relu`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Lstm => "lstm",
            Arch::LstmPeephole => "lstm-peephole",
            Arch::LstmCoupled => "lstm-coupled",
            Arch::LstmPeepholeCoupled => "lstm-peephole-coupled",
            Arch::Gru => "gru",
            Arch::Rnn => "rnn",
            Arch::RnnRelu => "rnn-relu",
        }
    }

    /// Parses [`Arch::name`] (case-insensitive); `standard`, `peephole`, `coupled` and
    /// `peephole-coupled` name the LSTM variants.
    pub fn parse(s: &str) -> Option<Arch> {
        let s = s.to_ascii_lowercase();
        match s.as_str() {
            "standard" => Some(Arch::Lstm),
            "peephole" => Some(Arch::LstmPeephole),
            "coupled" => Some(Arch::LstmCoupled),
            "peephole-coupled" => Some(Arch::LstmPeepholeCoupled),
            _ => Arch::ALL.into_iter().find(|a| a.name() == s),
        }
    }

    /// The architecture of a cell and LSTM variant flags (the flags are ignored for other
    /// cells).
    pub fn from_parts(mode: Mode, peephole: bool, coupled: bool) -> Arch {
        match (mode, peephole, coupled) {
            (Mode::Lstm, false, false) => Arch::Lstm,
            (Mode::Lstm, true, false) => Arch::LstmPeephole,
            (Mode::Lstm, false, true) => Arch::LstmCoupled,
            (Mode::Lstm, true, true) => Arch::LstmPeepholeCoupled,
            (Mode::Gru, ..) => Arch::Gru,
            (Mode::RnnTanh, ..) => Arch::Rnn,
            (Mode::RnnRelu, ..) => Arch::RnnRelu,
        }
    }

    /// The cell and LSTM variant flags `(mode, peephole, coupled)`.
    pub fn parts(self) -> (Mode, bool, bool) {
        match self {
            Arch::Lstm => (Mode::Lstm, false, false),
            Arch::LstmPeephole => (Mode::Lstm, true, false),
            Arch::LstmCoupled => (Mode::Lstm, false, true),
            Arch::LstmPeepholeCoupled => (Mode::Lstm, true, true),
            Arch::Gru => (Mode::Gru, false, false),
            Arch::Rnn => (Mode::RnnTanh, false, false),
            Arch::RnnRelu => (Mode::RnnRelu, false, false),
        }
    }

    fn color(self) -> RGBColor {
        match self {
            Arch::Lstm => RGBColor(31, 119, 180),
            Arch::LstmPeephole => RGBColor(44, 160, 44),
            Arch::LstmCoupled => RGBColor(148, 103, 189),
            Arch::LstmPeepholeCoupled => RGBColor(140, 86, 75),
            Arch::Gru => RGBColor(255, 127, 14),
            Arch::Rnn => RGBColor(214, 39, 40),
            Arch::RnnRelu => RGBColor(227, 119, 194),
        }
    }
}

/// A model configuration for an experiment: one layer of `arch`, Adam, global-norm clipping.
#[allow(clippy::too_many_arguments)]
fn model_config(
    arch: Arch,
    input: InputKind,
    head: Head,
    hidden: usize,
    lr: f32,
    clip: f32,
    forget_bias: f32,
    init: InitScheme,
) -> ModelConfig {
    let (mode, peephole, coupled) = arch.parts();
    ModelConfig {
        init,
        input,
        mode,
        peephole,
        coupled,
        hidden_size: hidden,
        head,
        forget_bias,
        optimizer: OptimizerConfig::adam(lr),
        clip_grad_norm: clip,
        ..Default::default()
    }
}

fn check(ok: bool, what: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Config(what.to_string()))
    }
}

/// Checks, before anything is allocated, that training batches of `batch` sequences and a test
/// set of `test_size` sequences of `length` steps (`floats` values a step, inputs and target)
/// fit in memory: the test set itself, and the activations of a training batch or of one chunk
/// of the test set (scored `batch.max(50)` sequences at a time).
fn check_test_memory(
    mc: &ModelConfig,
    batch: usize,
    test_size: usize,
    length: usize,
    floats: usize,
) -> Result<()> {
    let data = test_size as u128 * length as u128 * floats as u128 * 4;
    let have = memory::machine_memory().unwrap_or(64 << 30);
    if data > have {
        return Err(Error::Config(format!(
            "a test set of {test_size} sequences of {length} steps would need about {:.1} GB but {:.1} GB are available; lower --test-size or --length",
            data as f64 / 1e9,
            have as f64 / 1e9
        )));
    }
    memory::check_model_memory(
        mc,
        batch.max(test_size.min(batch.max(50))),
        length,
        &["--hidden", "--batch", "--length"],
    )
}

/// The training settings the adding and temporal-order experiments share, for one check.
struct Training {
    hidden: usize,
    batch: usize,
    steps: u64,
    eval_every: u64,
    test_size: usize,
    lr: f32,
    clip: f32,
    forget_bias: f32,
}

/// Checks the shared training settings, naming the first bad one.
fn check_training(t: &Training) -> Result<()> {
    check(t.hidden >= 1, "hidden units must be at least 1")?;
    check(t.batch >= 1, "the batch must hold at least 1 sequence")?;
    check(t.steps >= 1, "steps must be at least 1")?;
    check(t.eval_every >= 1, "eval_every must be at least 1")?;
    check(t.test_size >= 1, "the test set needs at least 1 sequence")?;
    check(
        t.lr.is_finite() && t.lr > 0.0,
        "the learning rate must be positive",
    )?;
    check(
        t.clip.is_finite() && t.clip >= 0.0,
        "the clipping threshold must be >= 0",
    )?;
    check(t.forget_bias.is_finite(), "the forget bias must be finite")
}

/// One evaluation during training.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CurvePoint {
    /// Optimizer steps taken.
    pub step: u64,
    /// Seconds of training (and evaluation) so far.
    pub seconds: f64,
    /// Mean training loss over the steps since the previous point.
    pub train_loss: f64,
    /// The task's test metric (MSE, accuracy or validation loss).
    pub metric: f64,
}

/// What the shared training loop returns.
struct Trained {
    curve: Vec<CurvePoint>,
    steps: u64,
    seconds: f64,
    /// First evaluation at which `done` held: (step, seconds).
    reached: Option<(u64, f64)>,
}

/// Trains `model` for up to `steps` steps on batches from `next_batch`, evaluating with `eval`
/// every `eval_every` steps and at the end; stops early when `stop_when_done` and `done(metric)`.
#[allow(clippy::too_many_arguments)]
fn train_loop(
    model: &mut SequenceModel,
    steps: u64,
    eval_every: u64,
    stop_when_done: bool,
    rng: &mut ChaCha8Rng,
    next_batch: &mut dyn FnMut(&mut ChaCha8Rng) -> OwnedBatch,
    eval: &mut dyn FnMut(&mut SequenceModel) -> Result<f64>,
    done: &dyn Fn(f64) -> bool,
    progress: &mut dyn FnMut(&CurvePoint),
) -> Result<Trained> {
    let start = Instant::now();
    let (mut curve, mut reached) = (Vec::new(), None);
    let (mut loss_sum, mut loss_n) = (0.0f64, 0u64);
    let mut step = 0;
    while step < steps {
        let batch = next_batch(rng);
        loss_sum += model.train_step(&batch.as_batch())?.loss as f64;
        loss_n += 1;
        step += 1;
        if step % eval_every == 0 || step == steps {
            let metric = eval(model)?;
            let point = CurvePoint {
                step,
                seconds: start.elapsed().as_secs_f64(),
                train_loss: loss_sum / loss_n.max(1) as f64,
                metric,
            };
            (loss_sum, loss_n) = (0.0, 0);
            progress(&point);
            curve.push(point);
            if reached.is_none() && done(metric) {
                reached = Some((step, point.seconds));
                if stop_when_done {
                    break;
                }
            }
        }
    }
    Ok(Trained {
        curve,
        steps: step,
        seconds: start.elapsed().as_secs_f64(),
        reached,
    })
}

// ---------------------------------------------------------------------------------------------
// The adding problem

/// `n` sequences of the adding problem of length `length`: inputs `(n, length, 2)` (value,
/// marker) and targets `(n, 1)`. One marker is at a uniform step of `0..length/2`, the other
/// of `length/2..length`; the target is the sum of the two marked values.
///
/// # Panics
/// If `length < 2`.
pub fn adding_data(length: usize, n: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>) {
    assert!(length >= 2, "the adding problem needs at least 2 steps");
    let half = length / 2;
    let mut x = vec![0.0f32; n * length * 2];
    let mut y = Vec::with_capacity(n);
    for j in 0..n {
        let seq = &mut x[j * length * 2..(j + 1) * length * 2];
        for t in 0..length {
            seq[t * 2] = rng.gen::<f32>();
        }
        let first = rng.gen_range(0..half);
        let second = rng.gen_range(half..length);
        seq[first * 2 + 1] = 1.0;
        seq[second * 2 + 1] = 1.0;
        y.push(seq[first * 2] + seq[second * 2]);
    }
    (x, y)
}

/// The adding problem: what to train and for how long. The defaults are the settings quoted
/// in `docs/experiments.md` (LSTM below 0.01 test MSE at `T = 100` in a few minutes on one
/// core).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AddingConfig {
    /// The recurrent layer.
    pub arch: Arch,
    /// Sequence length `T` (at least 2).
    pub length: usize,
    /// Hidden units `H`.
    pub hidden: usize,
    /// Sequences per training batch `B`.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Clip the global gradient norm to this (0 = off).
    pub clip: f32,
    /// LSTM forget-gate bias at initialisation (with [`InitScheme::XavierOrthogonal`]).
    pub forget_bias: f32,
    /// Initialisation of the recurrent layer.
    pub init: InitScheme,
    /// Training steps (the budget).
    pub steps: u64,
    /// Evaluate the test MSE every this many steps.
    pub eval_every: u64,
    /// Held-out test sequences (drawn from a fixed seed).
    pub test_size: usize,
    /// The test MSE that counts as solved.
    pub target_mse: f32,
    /// Stop as soon as the test MSE is below `target_mse`.
    pub stop_at_target: bool,
    /// Seed of the weights and the training batches.
    pub seed: u64,
}

impl Default for AddingConfig {
    fn default() -> Self {
        AddingConfig {
            arch: Arch::Lstm,
            length: 100,
            hidden: 128,
            batch: 50,
            lr: 5e-3,
            clip: 1.0,
            forget_bias: 1.0,
            init: InitScheme::XavierOrthogonal,
            steps: 3000,
            eval_every: 100,
            test_size: 500,
            target_mse: 0.01,
            stop_at_target: false,
            seed: 1,
        }
    }
}

impl AddingConfig {
    /// Checks every size and rate.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        check(self.length >= 2, "the sequence length must be at least 2")?;
        check_training(&Training {
            hidden: self.hidden,
            batch: self.batch,
            steps: self.steps,
            eval_every: self.eval_every,
            test_size: self.test_size,
            lr: self.lr,
            clip: self.clip,
            forget_bias: self.forget_bias,
        })?;
        // its batches and test set, before anything is allocated
        check_test_memory(
            &self.model_config(),
            self.batch,
            self.test_size,
            self.length,
            3,
        )
    }

    fn model_config(&self) -> ModelConfig {
        model_config(
            self.arch,
            InputKind::Dense { features: 2 },
            Head::LastStep { outputs: 1 },
            self.hidden,
            self.lr,
            self.clip,
            self.forget_bias,
            self.init,
        )
    }
}

/// The result of one adding-problem run.
#[derive(Clone, Debug, Serialize)]
pub struct AddingReport {
    /// The configuration run.
    pub config: AddingConfig,
    /// Test MSE after the last step.
    pub test_mse: f64,
    /// Lowest test MSE seen at an evaluation.
    pub best_test_mse: f64,
    /// MSE of always predicting 1.0 on the same test set (≈ 1/6).
    pub baseline_mse: f64,
    /// Steps trained.
    pub steps: u64,
    /// Wall time of the run, seconds (training and evaluations).
    pub seconds: f64,
    /// First evaluation with test MSE below the target: its step.
    pub solved_step: Option<u64>,
    /// ... and the seconds until then.
    pub solved_seconds: Option<f64>,
    /// Trainable parameters.
    pub parameters: usize,
    /// Test MSE over training (`metric` is the test MSE).
    pub curve: Vec<CurvePoint>,
}

/// Test MSE of `model` on `(x, y)`, `chunk` sequences at a time.
fn adding_test_mse(
    model: &mut SequenceModel,
    x: &[f32],
    y: &[f32],
    length: usize,
    chunk: usize,
) -> Result<f64> {
    let n = y.len();
    let mut total = 0.0f64;
    let mut start = 0;
    while start < n {
        let b = chunk.min(n - start);
        let batch = Batch {
            inputs: Inputs::Dense(&x[start * length * 2..(start + b) * length * 2]),
            targets: Targets::Values(&y[start..start + b]),
            batch: b,
            seq_len: length,
            lengths: None,
        };
        total += model.evaluate(&batch)?.loss as f64 * b as f64;
        start += b;
    }
    Ok(total / n as f64)
}

/// The fixed test set of the adding problem for `length` and `n`.
fn adding_test_set(length: usize, n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(TEST_SEED ^ length as u64);
    adding_data(length, n, &mut rng)
}

/// Trains `model` on the adding problem as `cfg` says.
fn train_adding(
    model: &mut SequenceModel,
    cfg: &AddingConfig,
    test: &(Vec<f32>, Vec<f32>),
    progress: &mut dyn FnMut(&CurvePoint),
) -> Result<Trained> {
    let (t, b) = (cfg.length, cfg.batch);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ DATA_SEED);
    let target = cfg.target_mse as f64;
    train_loop(
        model,
        cfg.steps,
        cfg.eval_every,
        cfg.stop_at_target,
        &mut rng,
        &mut |rng| {
            let (x, y) = adding_data(t, b, rng);
            OwnedBatch {
                dense: x,
                values: y,
                batch: b,
                seq_len: t,
                items: b as u64,
                ..Default::default()
            }
        },
        &mut |m| adding_test_mse(m, &test.0, &test.1, t, b.max(50)),
        &|mse| mse < target,
        progress,
    )
}

/// Runs the adding problem: trains a fresh network and scores it on a fixed test set every
/// `eval_every` steps; `progress` sees every evaluation.
///
/// # Errors
/// [`Error::Config`] for an invalid configuration; [`Error::Diverged`] if training diverges.
pub fn run_adding(
    cfg: &AddingConfig,
    progress: &mut dyn FnMut(&CurvePoint),
) -> Result<AddingReport> {
    cfg.validate()?;
    let mut model = SequenceModel::new(&cfg.model_config(), cfg.seed)?;
    let test = adding_test_set(cfg.length, cfg.test_size);
    let baseline_mse = test
        .1
        .iter()
        .map(|&y| (y as f64 - 1.0).powi(2))
        .sum::<f64>()
        / test.1.len() as f64;
    let run = train_adding(&mut model, cfg, &test, progress)?;
    let last = run.curve.last().map_or(f64::NAN, |p| p.metric);
    let best = run
        .curve
        .iter()
        .map(|p| p.metric)
        .fold(f64::INFINITY, f64::min);
    Ok(AddingReport {
        config: cfg.clone(),
        test_mse: last,
        best_test_mse: best,
        baseline_mse,
        steps: run.steps,
        seconds: run.seconds,
        solved_step: run.reached.map(|r| r.0),
        solved_seconds: run.reached.map(|r| r.1),
        parameters: model.store.len(),
        curve: run.curve,
    })
}

fn opt_num<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("not reached".to_string(), |v| v.to_string())
}

/// A Markdown table of adding-problem runs.
pub fn adding_table(reports: &[AddingReport]) -> String {
    let mut s = String::new();
    s.push_str("| cell | T | hidden | batch | lr | seed | steps | seconds | test MSE | best test MSE | baseline MSE | steps to target | seconds to target |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in reports {
        let c = &r.config;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.4} | {:.4} | {:.4} | {} | {} |",
            c.arch.name(),
            c.length,
            c.hidden,
            c.batch,
            c.lr,
            c.seed,
            r.steps,
            r.seconds,
            r.test_mse,
            r.best_test_mse,
            r.baseline_mse,
            opt_num(r.solved_step),
            opt_num(r.solved_seconds.map(|s| format!("{s:.1}"))),
        );
    }
    if let Some(r) = reports.first() {
        let _ = writeln!(
            s,
            "\nTarget: test MSE < {} on {} held-out sequences.",
            r.config.target_mse, r.config.test_size
        );
    }
    s
}

/// Plots the test MSE of each run against steps, with the baseline, into `path` (`.svg` or
/// `.png`).
///
/// # Errors
/// [`Error::Io`] naming the file if drawing or writing fails.
pub fn plot_adding(path: &Path, reports: &[AddingReport]) -> Result<()> {
    let labels: Vec<String> = reports
        .iter()
        .map(|r| format!("{} (seed {})", r.config.arch.name(), r.config.seed))
        .collect();
    let mut lines: Vec<Line<'_>> = reports
        .iter()
        .zip(&labels)
        .map(|(r, l)| Line {
            label: l,
            points: r.curve.iter().map(|p| (p.step as f64, p.metric)).collect(),
            color: r.config.arch.color(),
        })
        .collect();
    let max_step = reports.iter().map(|r| r.steps).max().unwrap_or(1) as f64;
    if let Some(r) = reports.first() {
        lines.push(Line {
            label: "baseline (always 1.0)",
            points: vec![(0.0, r.baseline_mse), (max_step, r.baseline_mse)],
            color: RGBColor(127, 127, 127),
        });
    }
    let t = reports.first().map_or(0, |r| r.config.length);
    plot::lines(
        path,
        &format!("Adding problem, T = {t}: test MSE"),
        "training step",
        "test MSE",
        &lines,
    )
}

// ---------------------------------------------------------------------------------------------
// The temporal-order task

/// Symbols of the temporal-order task: distractors `a b c d`, the relevant `X Y`, start `B`,
/// end `E`.
pub const ORDER_SYMBOLS: [char; 8] = ['a', 'b', 'c', 'd', 'X', 'Y', 'B', 'E'];

/// `n` sequences of the temporal-order task of length `length` (at least 10): token ids
/// `(n, length)` into [`ORDER_SYMBOLS`] and classes `(n)`: 0 `XX`, 1 `XY`, 2 `YX`, 3 `YY`.
/// The first relevant symbol is at a uniform step of `[T/10, 2T/10)`, the second of
/// `[5T/10, 6T/10)`; the first step is `B`, the last `E`, the rest distractors.
///
/// # Panics
/// If `length < 10`.
pub fn order_data(length: usize, n: usize, rng: &mut ChaCha8Rng) -> (Vec<u32>, Vec<u32>) {
    assert!(
        length >= 10,
        "the temporal-order task needs at least 10 steps"
    );
    let mut x = Vec::with_capacity(n * length);
    let mut y = Vec::with_capacity(n);
    let (t1, t2) = (
        length / 10..(2 * length / 10).max(length / 10 + 1),
        5 * length / 10..(6 * length / 10).max(5 * length / 10 + 1),
    );
    for _ in 0..n {
        let start = x.len();
        x.push(6);
        for _ in 1..length - 1 {
            x.push(rng.gen_range(0..4));
        }
        x.push(7);
        let (p1, p2) = (rng.gen_range(t1.clone()), rng.gen_range(t2.clone()));
        let (s1, s2) = (rng.gen_range(0..2u32), rng.gen_range(0..2u32));
        x[start + p1] = 4 + s1;
        x[start + p2] = 4 + s2;
        y.push(2 * s1 + s2);
    }
    (x, y)
}

/// The temporal-order task: what to train and for how long.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OrderConfig {
    /// The recurrent layer.
    pub arch: Arch,
    /// Sequence length `T` (at least 10).
    pub length: usize,
    /// Hidden units `H`.
    pub hidden: usize,
    /// Sequences per training batch `B`.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Clip the global gradient norm to this (0 = off).
    pub clip: f32,
    /// LSTM forget-gate bias at initialisation.
    pub forget_bias: f32,
    /// Training steps (the budget).
    pub steps: u64,
    /// Evaluate the test accuracy every this many steps.
    pub eval_every: u64,
    /// Held-out test sequences (drawn from a fixed seed).
    pub test_size: usize,
    /// The test accuracy that counts as solved.
    pub target_accuracy: f32,
    /// Stop as soon as the test accuracy reaches `target_accuracy`.
    pub stop_at_target: bool,
    /// Seed of the weights and the training batches.
    pub seed: u64,
}

impl Default for OrderConfig {
    fn default() -> Self {
        OrderConfig {
            arch: Arch::Lstm,
            length: 100,
            hidden: 64,
            batch: 32,
            lr: 3e-3,
            clip: 1.0,
            forget_bias: 1.0,
            steps: 2000,
            eval_every: 100,
            test_size: 500,
            target_accuracy: 0.99,
            stop_at_target: false,
            seed: 1,
        }
    }
}

impl OrderConfig {
    /// Checks every size and rate.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        check(self.length >= 10, "the sequence length must be at least 10")?;
        check_training(&Training {
            hidden: self.hidden,
            batch: self.batch,
            steps: self.steps,
            eval_every: self.eval_every,
            test_size: self.test_size,
            lr: self.lr,
            clip: self.clip,
            forget_bias: self.forget_bias,
        })
    }
}

/// The result of one temporal-order run.
#[derive(Clone, Debug, Serialize)]
pub struct OrderReport {
    /// The configuration run.
    pub config: OrderConfig,
    /// Test accuracy after the last step.
    pub test_accuracy: f64,
    /// Highest test accuracy seen at an evaluation.
    pub best_test_accuracy: f64,
    /// Accuracy of guessing (1/4).
    pub chance: f64,
    /// Steps trained.
    pub steps: u64,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// First evaluation at or above the target accuracy: its step.
    pub solved_step: Option<u64>,
    /// ... and the seconds until then.
    pub solved_seconds: Option<f64>,
    /// Trainable parameters.
    pub parameters: usize,
    /// Test accuracy over training (`metric` is the accuracy).
    pub curve: Vec<CurvePoint>,
}

fn order_accuracy(
    model: &mut SequenceModel,
    x: &[u32],
    y: &[u32],
    length: usize,
    chunk: usize,
) -> Result<f64> {
    let n = y.len();
    let mut correct = 0usize;
    let mut start = 0;
    while start < n {
        let b = chunk.min(n - start);
        let logits = model.predict(
            Inputs::Tokens(&x[start * length..(start + b) * length]),
            b,
            length,
            None,
        )?;
        for (j, row) in logits.chunks(4).enumerate() {
            let best = (0..4)
                .max_by(|&a, &c| row[a].total_cmp(&row[c]))
                .unwrap_or(0);
            correct += usize::from(best as u32 == y[start + j]);
        }
        start += b;
    }
    Ok(correct as f64 / n as f64)
}

/// Runs the temporal-order task: trains a fresh network (one-hot input, last-step head,
/// cross-entropy) and scores its accuracy on a fixed test set every `eval_every` steps.
///
/// # Errors
/// [`Error::Config`] for an invalid configuration; [`Error::Diverged`] if training diverges.
pub fn run_order(cfg: &OrderConfig, progress: &mut dyn FnMut(&CurvePoint)) -> Result<OrderReport> {
    cfg.validate()?;
    let mcfg = model_config(
        cfg.arch,
        InputKind::OneHot {
            vocab: ORDER_SYMBOLS.len(),
        },
        Head::LastStep { outputs: 4 },
        cfg.hidden,
        cfg.lr,
        cfg.clip,
        cfg.forget_bias,
        InitScheme::XavierOrthogonal,
    );
    check_test_memory(
        &mcfg,
        cfg.batch,
        cfg.test_size,
        cfg.length,
        ORDER_SYMBOLS.len() + 1,
    )?;
    let mut model = SequenceModel::new(&mcfg, cfg.seed)?;
    let mut test_rng = ChaCha8Rng::seed_from_u64(TEST_SEED ^ cfg.length as u64);
    let (tx, ty) = order_data(cfg.length, cfg.test_size, &mut test_rng);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ DATA_SEED);
    let (t, b) = (cfg.length, cfg.batch);
    let target = cfg.target_accuracy as f64;
    let run = train_loop(
        &mut model,
        cfg.steps,
        cfg.eval_every,
        cfg.stop_at_target,
        &mut rng,
        &mut |rng| {
            let (x, y) = order_data(t, b, rng);
            OwnedBatch {
                tokens: x,
                classes: y,
                batch: b,
                seq_len: t,
                items: b as u64,
                ..Default::default()
            }
        },
        &mut |m| order_accuracy(m, &tx, &ty, t, b.max(50)),
        &|acc| acc >= target,
        progress,
    )?;
    let last = run.curve.last().map_or(f64::NAN, |p| p.metric);
    let best = run.curve.iter().map(|p| p.metric).fold(0.0, f64::max);
    Ok(OrderReport {
        config: cfg.clone(),
        test_accuracy: last,
        best_test_accuracy: best,
        chance: 0.25,
        steps: run.steps,
        seconds: run.seconds,
        solved_step: run.reached.map(|r| r.0),
        solved_seconds: run.reached.map(|r| r.1),
        parameters: model.store.len(),
        curve: run.curve,
    })
}

/// A Markdown table of temporal-order runs.
pub fn order_table(reports: &[OrderReport]) -> String {
    let mut s = String::new();
    s.push_str("| cell | T | hidden | batch | lr | seed | steps | seconds | test accuracy | best | chance | steps to target | seconds to target |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in reports {
        let c = &r.config;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1}% | {:.1}% | {:.0}% | {} | {} |",
            c.arch.name(),
            c.length,
            c.hidden,
            c.batch,
            c.lr,
            c.seed,
            r.steps,
            r.seconds,
            100.0 * r.test_accuracy,
            100.0 * r.best_test_accuracy,
            100.0 * r.chance,
            opt_num(r.solved_step),
            opt_num(r.solved_seconds.map(|s| format!("{s:.1}"))),
        );
    }
    if let Some(r) = reports.first() {
        let _ = writeln!(
            s,
            "\nTarget: test accuracy >= {}% on {} held-out sequences.",
            100.0 * r.config.target_accuracy,
            r.config.test_size
        );
    }
    s
}

/// Plots the test accuracy of each run against steps, with chance, into `path`.
///
/// # Errors
/// [`Error::Io`] naming the file if drawing or writing fails.
pub fn plot_order(path: &Path, reports: &[OrderReport]) -> Result<()> {
    let labels: Vec<String> = reports
        .iter()
        .map(|r| format!("{} (seed {})", r.config.arch.name(), r.config.seed))
        .collect();
    let mut lines: Vec<Line<'_>> = reports
        .iter()
        .zip(&labels)
        .map(|(r, l)| Line {
            label: l,
            points: r
                .curve
                .iter()
                .map(|p| (p.step as f64, 100.0 * p.metric))
                .collect(),
            color: r.config.arch.color(),
        })
        .collect();
    let max_step = reports.iter().map(|r| r.steps).max().unwrap_or(1) as f64;
    lines.push(Line {
        label: "chance (25%)",
        points: vec![(0.0, 25.0), (max_step, 25.0)],
        color: RGBColor(127, 127, 127),
    });
    let t = reports.first().map_or(0, |r| r.config.length);
    plot::lines(
        path,
        &format!("Temporal order, T = {t}: test accuracy"),
        "training step",
        "test accuracy (%)",
        &lines,
    )
}

// ---------------------------------------------------------------------------------------------
// Gradients over time

/// The gradient experiment: `||dLoss/dx_t||` of the adding problem for every `t`, before and
/// after training.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GradientConfig {
    /// The recurrent layer.
    pub arch: Arch,
    /// Sequence length `T`.
    pub length: usize,
    /// Hidden units `H`.
    pub hidden: usize,
    /// Sequences in the batch the gradient is measured on.
    pub probe_batch: usize,
    /// Steps of adding-problem training before the second measurement (0 = untrained only).
    pub train_steps: u64,
    /// Training batch.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Clip the global gradient norm to this (0 = off).
    pub clip: f32,
    /// LSTM forget-gate bias at initialisation (with [`InitScheme::XavierOrthogonal`]).
    pub forget_bias: f32,
    /// Initialisation of the recurrent layer.
    pub init: InitScheme,
    /// Seed of the weights and the training batches.
    pub seed: u64,
}

impl Default for GradientConfig {
    fn default() -> Self {
        let a = AddingConfig::default();
        GradientConfig {
            arch: Arch::Lstm,
            length: 100,
            hidden: a.hidden,
            probe_batch: 100,
            train_steps: 1000,
            batch: a.batch,
            lr: a.lr,
            clip: a.clip,
            forget_bias: a.forget_bias,
            init: a.init,
            seed: 1,
        }
    }
}

/// The result of the gradient experiment for one architecture.
#[derive(Clone, Debug, Serialize)]
pub struct GradientReport {
    /// The configuration run.
    pub config: GradientConfig,
    /// `||dLoss/dx_t||` over the probe batch for `t = 0..T`, untrained network.
    pub untrained: Vec<f64>,
    /// `||dLoss/dx_0|| / ||dLoss/dx_{T-1}||`, untrained network.
    pub untrained_ratio: f64,
    /// The same after `train_steps` steps of training (empty when not trained).
    pub trained: Vec<f64>,
    /// Ratio of the trained network (NaN when not trained).
    pub trained_ratio: f64,
    /// Test MSE of the trained network on the adding problem (NaN when not trained).
    pub trained_test_mse: f64,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// `||dLoss/dx_t||` for every `t` (over the batch and both features).
fn gradient_norms(
    model: &mut SequenceModel,
    x: &[f32],
    y: &[f32],
    length: usize,
) -> Result<Vec<f64>> {
    let b = y.len();
    let batch = Batch {
        inputs: Inputs::Dense(x),
        targets: Targets::Values(y),
        batch: b,
        seq_len: length,
        lengths: None,
    };
    let (_, dx) = model.input_gradient(&batch)?;
    let mut norms = vec![0.0f64; length];
    for j in 0..b {
        for (t, n) in norms.iter_mut().enumerate() {
            let i = (j * length + t) * 2;
            *n += (dx[i] as f64).powi(2) + (dx[i + 1] as f64).powi(2);
        }
    }
    Ok(norms.into_iter().map(f64::sqrt).collect())
}

fn ratio(norms: &[f64]) -> f64 {
    match (norms.first(), norms.last()) {
        (Some(&a), Some(&z)) if z > 0.0 => a / z,
        _ => f64::NAN,
    }
}

/// Measures `||dLoss/dx_t||` on a fixed probe batch of the adding problem, trains for
/// `train_steps` steps (as [`run_adding`]) and measures again.
///
/// # Errors
/// [`Error::Config`] for an invalid configuration; [`Error::Diverged`] if training diverges.
pub fn run_gradients(cfg: &GradientConfig) -> Result<GradientReport> {
    let start = Instant::now();
    let adding = AddingConfig {
        arch: cfg.arch,
        length: cfg.length,
        hidden: cfg.hidden,
        batch: cfg.batch,
        lr: cfg.lr,
        clip: cfg.clip,
        forget_bias: cfg.forget_bias,
        init: cfg.init,
        steps: cfg.train_steps.max(1),
        eval_every: cfg.train_steps.max(1),
        seed: cfg.seed,
        ..Default::default()
    };
    adding.validate()?;
    check(
        cfg.probe_batch >= 1,
        "the probe batch needs at least 1 sequence",
    )?;
    memory::check_model_memory(
        &adding.model_config(),
        cfg.probe_batch,
        cfg.length,
        &["--hidden", "--length", "--probe-batch"],
    )?;
    let mut model = SequenceModel::new(&adding.model_config(), cfg.seed)?;
    let mut probe_rng = ChaCha8Rng::seed_from_u64(TEST_SEED ^ 0x9 ^ cfg.length as u64);
    let (px, py) = adding_data(cfg.length, cfg.probe_batch, &mut probe_rng);
    let untrained = gradient_norms(&mut model, &px, &py, cfg.length)?;
    let (mut trained, mut trained_test_mse) = (Vec::new(), f64::NAN);
    if cfg.train_steps > 0 {
        let test = adding_test_set(cfg.length, adding.test_size);
        let run = train_adding(&mut model, &adding, &test, &mut |_| {})?;
        trained_test_mse = run.curve.last().map_or(f64::NAN, |p| p.metric);
        trained = gradient_norms(&mut model, &px, &py, cfg.length)?;
    }
    Ok(GradientReport {
        config: cfg.clone(),
        untrained_ratio: ratio(&untrained),
        untrained,
        trained_ratio: ratio(&trained),
        trained,
        trained_test_mse,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// A Markdown table of gradient runs: the norm at a few steps and the ratio first/last.
pub fn gradient_table(reports: &[GradientReport]) -> String {
    let mut s = String::new();
    s.push_str("| cell | init | network | T | seed | ‖dL/dx_0‖ | ‖dL/dx_T/2‖ | ‖dL/dx_T-1‖ | ratio first/last | test MSE |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for r in reports {
        let c = &r.config;
        let init = match c.init {
            InitScheme::XavierOrthogonal => {
                format!("xavier-orthogonal, forget bias {}", c.forget_bias)
            }
            InitScheme::PytorchUniform => "pytorch-uniform".to_string(),
        };
        let rows = [
            (
                "untrained".to_string(),
                &r.untrained,
                r.untrained_ratio,
                f64::NAN,
            ),
            (
                format!("trained {} steps", c.train_steps),
                &r.trained,
                r.trained_ratio,
                r.trained_test_mse,
            ),
        ];
        for (name, norms, ratio, mse) in rows {
            if norms.is_empty() {
                continue;
            }
            let mse = if mse.is_nan() {
                "-".to_string()
            } else {
                format!("{mse:.4}")
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {} |",
                c.arch.name(),
                init,
                name,
                c.length,
                c.seed,
                norms[0],
                norms[norms.len() / 2],
                norms[norms.len() - 1],
                ratio,
                mse
            );
        }
    }
    s
}

/// Plots `log10 ||dLoss/dx_t||` against `t` for every run, untrained (and trained), into
/// `path`.
///
/// # Errors
/// [`Error::Io`] naming the file if drawing or writing fails.
pub fn plot_gradients(path: &Path, reports: &[GradientReport]) -> Result<()> {
    let mut labels = Vec::new();
    let mut data = Vec::new();
    for r in reports {
        let c = r.config.arch.color();
        labels.push(format!("{} untrained", r.config.arch.name()));
        data.push((
            &r.untrained,
            RGBColor(c.0 / 2 + 127, c.1 / 2 + 127, c.2 / 2 + 127),
        ));
        if !r.trained.is_empty() {
            labels.push(format!(
                "{} trained ({} steps)",
                r.config.arch.name(),
                r.config.train_steps
            ));
            data.push((&r.trained, c));
        }
    }
    let lines: Vec<Line<'_>> = labels
        .iter()
        .zip(data)
        .map(|(l, (norms, color))| Line {
            label: l,
            points: norms
                .iter()
                .enumerate()
                .filter(|(_, &n)| n > 0.0)
                .map(|(t, &n)| (t as f64, n.log10()))
                .collect(),
            color,
        })
        .collect();
    let t = reports.first().map_or(0, |r| r.config.length);
    plot::lines(
        path,
        &format!("Adding problem, T = {t}: gradient reaching each input step"),
        "time step t",
        "log10 ||dLoss/dx_t||",
        &lines,
    )
}

// ---------------------------------------------------------------------------------------------
// The variant comparison

/// The variant comparison: every architecture trained with the same budget on a character
/// corpus, for a few seeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VariantsConfig {
    /// The architectures compared.
    pub archs: Vec<Arch>,
    /// One run per architecture and seed.
    pub seeds: Vec<u64>,
    /// Hidden units `H` (the same for every architecture, as in Greff et al.).
    pub hidden: usize,
    /// Characters per training sequence.
    pub seq_len: usize,
    /// Sequences per batch.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Clip the global gradient norm to this (0 = off).
    pub clip: f32,
    /// Training steps per run (the budget).
    pub steps: u64,
    /// Validate every this many steps.
    pub eval_every: u64,
    /// Fraction of the text at its end held out for validation.
    pub val_fraction: f32,
}

impl Default for VariantsConfig {
    fn default() -> Self {
        VariantsConfig {
            archs: vec![
                Arch::Lstm,
                Arch::LstmPeephole,
                Arch::LstmCoupled,
                Arch::Gru,
                Arch::Rnn,
            ],
            seeds: vec![1, 2, 3],
            hidden: 128,
            seq_len: 64,
            batch: 32,
            lr: 3e-3,
            clip: 5.0,
            steps: 1500,
            eval_every: 250,
            val_fraction: 0.1,
        }
    }
}

impl VariantsConfig {
    /// Checks every size and rate.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        check(!self.archs.is_empty(), "name at least one architecture")?;
        check(!self.seeds.is_empty(), "name at least one seed")?;
        for (i, a) in self.archs.iter().enumerate() {
            if self.archs[..i].contains(a) {
                return Err(Error::Config(format!(
                    "the architecture `{}` is named twice; name each once",
                    a.name()
                )));
            }
        }
        for (i, seed) in self.seeds.iter().enumerate() {
            if self.seeds[..i].contains(seed) {
                return Err(Error::Config(format!(
                    "the seed {seed} is named twice; name each once"
                )));
            }
        }
        check(self.hidden >= 1, "hidden units must be at least 1")?;
        check(self.seq_len >= 1, "the sequence length must be at least 1")?;
        check(self.batch >= 1, "the batch must hold at least 1 sequence")?;
        check(self.steps >= 1, "steps must be at least 1")?;
        check(self.eval_every >= 1, "eval_every must be at least 1")?;
        check(
            self.val_fraction > 0.0 && self.val_fraction < 1.0,
            "the validation fraction must be in (0, 1)",
        )?;
        check(
            self.lr.is_finite() && self.lr > 0.0,
            "the learning rate must be positive",
        )?;
        check(
            self.clip.is_finite() && self.clip >= 0.0,
            "the clipping threshold must be >= 0",
        )
    }
}

/// One run of the variant comparison.
#[derive(Clone, Debug, Serialize)]
pub struct VariantRun {
    /// The architecture.
    pub arch: Arch,
    /// The seed.
    pub seed: u64,
    /// Validation loss after the last step, nats per character.
    pub val_loss: f64,
    /// Training loss over the last evaluation interval, nats per character.
    pub train_loss: f64,
    /// Steps trained.
    pub steps: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Trainable parameters.
    pub parameters: usize,
    /// Validation loss over training (`metric`).
    pub curve: Vec<CurvePoint>,
}

/// One architecture's runs summarised.
#[derive(Clone, Debug, Serialize)]
pub struct VariantSummary {
    /// The architecture.
    pub arch: Arch,
    /// Runs (seeds).
    pub runs: usize,
    /// Mean final validation loss, nats per character.
    pub mean: f64,
    /// Sample standard deviation over seeds (0 for one run).
    pub std: f64,
    /// Best run.
    pub min: f64,
    /// Worst run.
    pub max: f64,
    /// `mean / mean(first architecture) - 1`: relative to the first one (the standard LSTM
    /// by default).
    pub relative: f64,
    /// Trainable parameters.
    pub parameters: usize,
    /// Mean wall time per run, seconds.
    pub seconds: f64,
}

/// The variant comparison's result.
#[derive(Clone, Debug, Serialize)]
pub struct VariantsReport {
    /// The configuration run.
    pub config: VariantsConfig,
    /// Vocabulary size of the corpus.
    pub vocab: usize,
    /// Every run, in order.
    pub runs: Vec<VariantRun>,
    /// One row per architecture.
    pub summary: Vec<VariantSummary>,
}

/// Splits `text` into training and validation parts and encodes them.
fn split_text(text: &str, val_fraction: f32) -> Result<(Vocab, Encoded, Encoded)> {
    let n = text.chars().count();
    let val = ((n as f64) * val_fraction as f64).round() as usize;
    let split = text
        .char_indices()
        .nth(n - val.min(n))
        .map_or(text.len(), |(i, _)| i);
    let vocab = Vocab::chars_from(text);
    let train = Encoded::new(&vocab, &text[..split]);
    let valid = Encoded::new(&vocab, &text[split..]);
    Ok((vocab, train, valid))
}

/// Trains one architecture with one seed on prepared data.
fn run_variant(
    cfg: &VariantsConfig,
    arch: Arch,
    seed: u64,
    vocab: usize,
    data: &TextData,
    progress: &mut dyn FnMut(&CurvePoint),
) -> Result<VariantRun> {
    let mcfg = model_config(
        arch,
        InputKind::OneHot { vocab },
        Head::PerStep { outputs: vocab },
        cfg.hidden,
        cfg.lr,
        cfg.clip,
        1.0,
        InitScheme::XavierOrthogonal,
    );
    let mut model = SequenceModel::new(&mcfg, seed)?;
    let mut data = data.clone();
    let val = data.val.clone();
    let (seq_len, batch) = (cfg.seq_len, cfg.batch);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ DATA_SEED);
    let mut next = |rng: &mut ChaCha8Rng| data.next_batch(rng, 0);
    let run = train_loop(
        &mut model,
        cfg.steps,
        cfg.eval_every,
        false,
        &mut rng,
        &mut next,
        &mut |m| Ok(text::evaluate(m, &val, seq_len, batch.max(32))?.nats_per_token),
        &|_| false,
        progress,
    )?;
    let last = run.curve.last().copied();
    Ok(VariantRun {
        arch,
        seed,
        val_loss: last.map_or(f64::NAN, |p| p.metric),
        train_loss: last.map_or(f64::NAN, |p| p.train_loss),
        steps: run.steps,
        seconds: run.seconds,
        parameters: model.store.len(),
        curve: run.curve,
    })
}

/// Summarises runs per architecture, in the order of `archs`.
fn summarise(archs: &[Arch], runs: &[VariantRun]) -> Vec<VariantSummary> {
    let mut out: Vec<VariantSummary> = Vec::new();
    for &arch in archs {
        let v: Vec<&VariantRun> = runs.iter().filter(|r| r.arch == arch).collect();
        if v.is_empty() {
            continue;
        }
        let n = v.len() as f64;
        let mean = v.iter().map(|r| r.val_loss).sum::<f64>() / n;
        let var = if v.len() > 1 {
            v.iter().map(|r| (r.val_loss - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        let reference = out.first().map_or(mean, |s| s.mean);
        out.push(VariantSummary {
            arch,
            runs: v.len(),
            mean,
            std: var.sqrt(),
            min: v.iter().map(|r| r.val_loss).fold(f64::INFINITY, f64::min),
            max: v
                .iter()
                .map(|r| r.val_loss)
                .fold(f64::NEG_INFINITY, f64::max),
            relative: mean / reference - 1.0,
            parameters: v[0].parameters,
            seconds: v.iter().map(|r| r.seconds).sum::<f64>() / n,
        });
    }
    out
}

/// Runs the variant comparison on `text`: for every architecture and seed, a one-layer
/// character model trained for `steps` steps on random windows of the first part of the text
/// and scored (nats per character, zero state per window) on the held-out last part.
/// `progress` sees every finished run.
///
/// # Errors
/// [`Error::Config`] for an invalid configuration or a text too short for one window in
/// either part; [`Error::Diverged`] if a run diverges.
pub fn run_variants(
    cfg: &VariantsConfig,
    text: &str,
    progress: &mut dyn FnMut(&VariantRun),
) -> Result<VariantsReport> {
    cfg.validate()?;
    let (vocab, train, val) = split_text(text, cfg.val_fraction)?;
    let data = TextData::new(train, val, cfg.seq_len, cfg.batch)?;
    let v = vocab.len();
    memory::check_model_memory(
        &model_config(
            Arch::Lstm,
            InputKind::OneHot { vocab: v },
            Head::PerStep { outputs: v },
            cfg.hidden,
            cfg.lr,
            cfg.clip,
            1.0,
            InitScheme::XavierOrthogonal,
        ),
        cfg.batch.max(32),
        cfg.seq_len,
        &["--hidden", "--batch", "--seq-len"],
    )?;
    let mut runs = Vec::new();
    for &arch in &cfg.archs {
        for &seed in &cfg.seeds {
            let run = run_variant(cfg, arch, seed, vocab.len(), &data, &mut |_| {})?;
            progress(&run);
            runs.push(run);
        }
    }
    Ok(VariantsReport {
        config: cfg.clone(),
        vocab: vocab.len(),
        summary: summarise(&cfg.archs, &runs),
        runs,
    })
}

/// A Markdown table of the variant comparison (one row per architecture).
pub fn variants_table(report: &VariantsReport) -> String {
    let c = &report.config;
    let mut s = String::new();
    let first = c.archs.first().map_or("", |a| a.name());
    let _ = writeln!(
        s,
        "| variant | parameters | seeds | validation loss (nats/char), mean ± std | min | max | vs {first} | seconds per run |"
    );
    s.push_str("|---|---|---|---|---|---|---|---|\n");
    for r in &report.summary {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.4} ± {:.4} | {:.4} | {:.4} | {:+.1}% | {:.1} |",
            r.arch.name(),
            r.parameters,
            r.runs,
            r.mean,
            r.std,
            r.min,
            r.max,
            100.0 * r.relative,
            r.seconds
        );
    }
    let seeds: Vec<String> = c.seeds.iter().map(u64::to_string).collect();
    let _ = writeln!(
        s,
        "\nOne layer of {} units, vocabulary {}, {} steps of batch {} x {} characters, Adam {}, clip {}, seeds {}; validation on the last {}% of the text.",
        c.hidden,
        report.vocab,
        c.steps,
        c.batch,
        c.seq_len,
        c.lr,
        c.clip,
        seeds.join(", "),
        100.0 * c.val_fraction
    );
    s
}

/// Plots the validation loss against steps, averaged over seeds, per architecture.
///
/// # Errors
/// [`Error::Io`] naming the file if drawing or writing fails.
pub fn plot_variants(path: &Path, report: &VariantsReport) -> Result<()> {
    let mut lines = Vec::new();
    for s in &report.summary {
        let runs: Vec<&VariantRun> = report.runs.iter().filter(|r| r.arch == s.arch).collect();
        let n = runs.iter().map(|r| r.curve.len()).min().unwrap_or(0);
        let points = (0..n)
            .map(|i| {
                let mean = runs.iter().map(|r| r.curve[i].metric).sum::<f64>() / runs.len() as f64;
                (runs[0].curve[i].step as f64, mean)
            })
            .collect();
        lines.push(Line {
            label: s.arch.name(),
            points,
            color: s.arch.color(),
        });
    }
    plot::lines(
        path,
        "Variants: validation loss (mean over seeds)",
        "training step",
        "nats per character",
        &lines,
    )
}
