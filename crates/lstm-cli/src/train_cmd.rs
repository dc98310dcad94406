//! `lstm train`: resolve settings (defaults, TOML, flags), read the data, build or resume the
//! model, and run the library's training loop with a progress display.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lstm::cell::Mode;
use lstm::data::labelled::Examples;
use lstm::data::series::{self, SeriesSpec, Transform};
use lstm::data::vocab::{TokenKind, Vocab};
use lstm::model::{Head, InputKind, ModelConfig, SequenceModel};
use lstm::tasks::classify::ClassifyData;
use lstm::tasks::forecast::SeriesData;
use lstm::tasks::modeldir::{self, Loaded, ModelMeta, Task, TrainingState, FORMAT, FORMAT_VERSION};
use lstm::tasks::settings::{LrSchedule, OnNonFinite, OptimizerKind, Settings, Variant};
use lstm::tasks::text::{Encoded, TextData, TextTask};
use lstm::tasks::train::{self, Event, StopReason, TrainTask};

use crate::args::*;

/// The bundled default corpus.
pub const SHAKESPEARE: &str = include_str!("../../../data/tinyshakespeare.txt");

/// Reads a UTF-8 text file with messages that say what is wrong.
pub fn read_text(path: &Path) -> Result<String> {
    Ok(lstm::data::text::read_text(path)?)
}

/// Training ended early on Ctrl-C or SIGTERM, after saving: `main` exits with status 130.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

fn overlay_toml(s: Settings, path: &Path) -> Result<Settings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let file: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut base = match toml::Value::try_from(&s)? {
        toml::Value::Table(t) => t,
        _ => unreachable!("settings serialise to a table"),
    };
    for (k, v) in file {
        base.insert(k, v);
    }
    toml::Value::Table(base)
        .try_into()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("{}: {}", path.display(), e.message()))
}

/// Applies the flags shared by every job.
fn apply_common(s: &mut Settings, c: &CommonTrain) {
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = c.$f { s.$f = v; } )* };
    }
    set!(
        layers,
        hidden,
        proj,
        batch,
        lr,
        weight_decay,
        dropout,
        recurrent_dropout,
        clip,
        seed,
        threads
    );
    if let Some(v) = c.eval_every {
        s.eval_every = v;
    }
    if let Some(v) = c.val_fraction {
        s.val_fraction = v;
    }
    if let Some(cell) = c.cell {
        s.cell = match cell {
            CellArg::Lstm => Mode::Lstm,
            CellArg::Gru => Mode::Gru,
            CellArg::Rnn => Mode::RnnTanh,
            CellArg::RnnRelu => Mode::RnnRelu,
        };
    }
    if let Some(v) = c.variant {
        s.variant = match v {
            VariantArg::Standard => Variant::Standard,
            VariantArg::Peephole => Variant::Peephole,
            VariantArg::Coupled => Variant::Coupled,
            VariantArg::PeepholeCoupled => Variant::PeepholeCoupled,
        };
    }
    if let Some(v) = c.on_nonfinite {
        s.on_nonfinite = match v {
            NonFiniteArg::Stop => OnNonFinite::Stop,
            NonFiniteArg::Skip => OnNonFinite::Skip,
        };
    }
    if let Some(v) = c.lr_schedule {
        s.lr_schedule = match v {
            ScheduleArg::Constant => LrSchedule::Constant,
            ScheduleArg::Cosine => LrSchedule::Cosine,
        };
    }
    if let Some(o) = c.optimizer {
        s.optimizer = match o {
            OptimizerArg::Adam => OptimizerKind::Adam,
            OptimizerArg::Adamw => OptimizerKind::Adamw,
            OptimizerArg::Sgd => OptimizerKind::Sgd,
        };
    }
    apply_budget(s, c);
}

/// Budget flags replace the whole budget (a `--steps` on the command line is not combined with
/// a default `--minutes`).
fn apply_budget(s: &mut Settings, c: &CommonTrain) {
    if c.steps.is_some() || c.minutes.is_some() || c.epochs.is_some() {
        s.steps = c.steps;
        s.minutes = c.minutes;
        s.epochs = c.epochs;
    }
    if c.save_every.is_some() {
        s.save_every = c.save_every;
    }
}

fn resolve(task: Task, c: &CommonTrain, job: impl FnOnce(&mut Settings)) -> Result<Settings> {
    let mut s = Settings::defaults(task);
    if let Some(p) = &c.config {
        s = overlay_toml(s, p)?;
    }
    apply_common(&mut s, c);
    job(&mut s);
    s.validate().context("invalid settings")?;
    Ok(s)
}

fn model_config(s: &Settings, input: InputKind, head: Head) -> ModelConfig {
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

fn check_out(out: &Path) -> Result<()> {
    if modeldir::live_path(out, "config.json").exists() {
        bail!(
            "{} already holds a model; continue it with `lstm train --resume {}` or choose another --out",
            out.display(),
            out.display()
        );
    }
    if out.exists() && !out.is_dir() {
        bail!(
            "{} exists and is not a directory; choose another --out",
            out.display()
        );
    }
    Ok(())
}

/// What the display needs to know about a job.
struct Job<'a> {
    meta: ModelMeta,
    model: SequenceModel,
    state: TrainingState,
    task: Box<dyn TrainTask + 'a>,
    out: PathBuf,
    unit: &'static str,
}

fn run(mut job: Job<'_>, quiet: bool) -> Result<()> {
    let s = job.meta.settings.clone();
    lstm::kernels::set_num_threads(s.threads);
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // a second Ctrl-C while saving is ignored: the checkpoint is written atomically anyway
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let tty = std::io::stdout().is_terminal();
    let bar = if quiet || !tty {
        ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::hidden())
    } else {
        let b = ProgressBar::new(1000);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] [{bar:30}] {percent:>3}% eta {eta:<5} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b.enable_steady_tick(Duration::from_millis(200));
        b
    };
    let steps_total = train::total_steps(&job.meta, job.task.as_ref());
    if !quiet {
        let budget = match (steps_total, s.minutes) {
            (Some(n), Some(m)) => format!("{n} steps or {m} minutes"),
            (Some(n), None) => format!("{n} steps"),
            (None, Some(m)) => format!("{m} minutes"),
            (None, None) => "no budget".into(),
        };
        println!(
            "training a {} model: {} x {} {:?}, {} parameters, budget {budget}, {} threads -> {}",
            job.meta.task,
            s.layers,
            s.hidden,
            s.cell,
            job.model.store.len(),
            lstm::kernels::num_threads(),
            job.out.display()
        );
    }
    let mut last_val: Option<f32> = None;
    let unit = job.unit;
    let mut on = |e: Event<'_>| match e {
        Event::Step {
            step,
            loss,
            items_per_s,
            fraction,
            ..
        } => {
            bar.set_position((fraction * 1000.0) as u64);
            let val = last_val.map_or(String::new(), |v| format!(" val {v:.4}"));
            bar.set_message(format!(
                "step {step} loss {loss:.4}{val} {items_per_s:.0} {unit}/s"
            ));
        }
        Event::Eval { step, val_loss } => {
            last_val = Some(val_loss);
            if !quiet && !tty {
                println!("step {step}: validation loss {val_loss:.4}");
            }
        }
        Event::Sample { step, text } => {
            if !quiet {
                bar.suspend(|| println!("--- sample at step {step} ---\n{text}\n---"));
            }
        }
        Event::Saved { .. } => {}
        Event::Skipped { step, reason } => {
            bar.suspend(|| {
                eprintln!("warning: step {step}: {reason}; batch skipped (--on-nonfinite skip)")
            });
        }
    };
    let reason = train::train(
        &job.meta,
        &mut job.model,
        &mut job.state,
        job.task.as_mut(),
        &job.out,
        &|staging, train_loss, val_loss| {
            lstm::pages::plot::loss_curve(&staging.join("loss.svg"), train_loss, val_loss)
        },
        &stop,
        &mut on,
    )
    .map_err(|e| {
        let out = job.out.display();
        let kept = match modeldir::load(&job.out) {
            Ok(l) => format!(
                "training stopped; the last checkpoint in {out} (step {}) is intact: continue it with `lstm train --resume {out}`",
                l.state.step
            ),
            Err(_) => format!(
                "training stopped; no checkpoint had been written to {out} yet (--save-every N keeps one while training)"
            ),
        };
        let kept = if matches!(e, lstm::Error::Io { .. }) {
            format!("{kept}; the checkpoint could not be written: free some disk space (or choose another --out) first")
        } else {
            kept
        };
        anyhow::Error::from(e).context(kept)
    })?;
    bar.finish_and_clear();
    let val = job.state.val_loss.last().map(|v| v.1);
    let out = job.out.display();
    match reason {
        StopReason::Interrupted => {
            return Err(Interrupted(format!(
                "interrupted at step {}; checkpoint saved in {out}. Continue with: lstm train --resume {out}",
                job.state.step
            ))
            .into())
        }
        StopReason::Budget => println!(
            "done: {} steps in {:.0} s, validation loss {}; model saved in {out}",
            job.state.step,
            job.state.seconds,
            val.map_or("-".into(), |v| format!("{v:.4}"))
        ),
    }
    // name the program the way it was started (`target/release/lstm` after `cargo run`)
    let exe = std::env::args().next().unwrap_or_else(|| "lstm".into());
    match job.meta.task {
        Task::Text => {
            println!("sample from it with: {exe} generate --model {out} --prime \"ROMEO:\"")
        }
        Task::Forecast => println!(
            "forecast with: {exe} forecast --model {out} --data FILE.csv --plot forecast.png"
        ),
        Task::Classify => println!("classify with: {exe} classify --model {out} \"some text\""),
    }
    Ok(())
}

fn meta(task: Task, model: &ModelConfig, s: &Settings) -> ModelMeta {
    ModelMeta {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        task,
        model: model.clone(),
        vocab: None,
        labels: None,
        series: None,
        settings: s.clone(),
    }
}

fn fresh_or_resumed(
    resumed: Option<Loaded>,
    meta: ModelMeta,
) -> Result<(ModelMeta, SequenceModel, TrainingState)> {
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
        )),
        None => {
            let model = SequenceModel::new(&meta.model, meta.settings.seed)?;
            Ok((meta, model, TrainingState::default()))
        }
    }
}

// ---------------------------------------------------------------- text

fn text_job(s: Settings, out: PathBuf, resumed: Option<Loaded>) -> Result<Job<'static>> {
    let full = match &s.data {
        Some(p) => read_text(Path::new(p))?,
        None => SHAKESPEARE.to_string(),
    };
    let (train_text, val_text) = match &s.val {
        Some(p) => (full, read_text(Path::new(p))?),
        None => lstm::data::text::split_validation(&full, s.val_fraction),
    };
    let vocab = match resumed.as_ref().and_then(|l| l.meta.vocab.clone()) {
        Some(v) => v,
        None => Vocab::chars_from(&train_text),
    };
    let data = TextData::new(
        Encoded::new(&vocab, &train_text),
        Encoded::new(&vocab, &val_text),
        s.seq_len,
        s.batch,
    )
    .with_context(|| {
        format!(
            "cannot train on {}",
            s.data.as_deref().unwrap_or("the bundled text")
        )
    })?;
    let v = vocab.len();
    let mc = model_config(
        &s,
        InputKind::OneHot { vocab: v },
        Head::PerStep { outputs: v },
    );
    lstm::model::memory::check_model_memory(&mc, s.batch, s.seq_len)?;
    let mut m = meta(Task::Text, &mc, &s);
    m.vocab = Some(vocab.clone());
    let (meta, model, state) = fresh_or_resumed(resumed, m)?;
    let task = TextTask {
        data,
        vocab,
        sample_length: 300,
    };
    Ok(Job {
        meta,
        model,
        state,
        task: Box::new(task),
        out,
        unit: "chars",
    })
}

// ---------------------------------------------------------------- forecast

fn forecast_job(s: Settings, out: PathBuf, resumed: Option<Loaded>) -> Result<Job<'static>> {
    let path = s.data.clone().context("--data CSV is required")?;
    if s.columns.is_empty() {
        bail!("--column NAME is required (comma-separated for several; the first is forecast)");
    }
    let table = series::read_table(Path::new(&path), &s.columns, s.date_column.as_deref())?;
    let mut spec = SeriesSpec {
        columns: s.columns.clone(),
        date_column: s.date_column.clone(),
        transform: s.transform,
        mean: vec![],
        std: vec![],
        window: s.window,
        horizon: s.horizon,
    };
    let tr = spec
        .transformed(&table)
        .with_context(|| format!("cannot transform {path}"))?;
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
    match resumed.as_ref().and_then(|l| l.meta.series.clone()) {
        Some(saved) => spec = saved,
        None => spec.fit_scaler(&tr, train_rows),
    }
    let scaled = spec.scaled_rows(&tr);
    let f = s.columns.len();
    let train_w = series::make_windows(&scaled, f, s.window, s.horizon, 0, train_rows);
    let val_w = series::make_windows(&scaled, f, s.window, s.horizon, train_rows, usable);
    if train_w.n == 0 || val_w.n == 0 {
        bail!(
            "{path}: {} training and {} validation windows of {} + {} rows; lower --window/--horizon or change --val-fraction",
            train_w.n,
            val_w.n,
            s.window,
            s.horizon
        );
    }
    let mc = model_config(
        &s,
        InputKind::Dense { features: f },
        Head::LastStep { outputs: s.horizon },
    );
    lstm::model::memory::check_model_memory(&mc, s.batch, s.window)?;
    let mut m = meta(Task::Forecast, &mc, &s);
    m.series = Some(spec);
    let (meta, model, state) = fresh_or_resumed(resumed, m)?;
    let task = SeriesData {
        train: train_w,
        val: val_w,
        window: s.window,
        features: f,
        horizon: s.horizon,
        batch: s.batch,
    };
    Ok(Job {
        meta,
        model,
        state,
        task: Box::new(task),
        out,
        unit: "windows",
    })
}

// ---------------------------------------------------------------- classify

fn classify_job(s: Settings, out: PathBuf, resumed: Option<Loaded>) -> Result<Job<'static>> {
    let path = s.data.clone().context("--data TSV is required")?;
    let all =
        lstm::data::labelled::read_labelled(Path::new(&path), &s.text_column, &s.label_column)?;
    let (train, val) = match &s.val {
        Some(v) => (
            all,
            lstm::data::labelled::read_labelled(Path::new(v), &s.text_column, &s.label_column)?,
        ),
        None => {
            let n = all.texts.len();
            let cut = n - ((n as f64 * s.val_fraction as f64) as usize).max(1);
            let val = lstm::data::labelled::Labelled {
                texts: all.texts[cut..].to_vec(),
                labels: all.labels[cut..].to_vec(),
            };
            let train = lstm::data::labelled::Labelled {
                texts: all.texts[..cut].to_vec(),
                labels: all.labels[..cut].to_vec(),
            };
            (train, val)
        }
    };
    let (vocab, labels) = match resumed.as_ref() {
        Some(l) => (
            l.meta
                .vocab
                .clone()
                .context("the resumed model has no vocabulary")?,
            l.meta
                .labels
                .clone()
                .context("the resumed model has no labels")?,
        ),
        None => {
            let labels = lstm::data::labelled::classes(&train.labels, &path, &s.label_column)?;
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
    let class_of = |l: &str, line: usize| -> Result<u32> {
        labels
            .iter()
            .position(|x| x == l)
            .map(|p| p as u32)
            .with_context(|| {
                format!("validation row {line}: label `{l}` never appears in the training rows")
            })
    };
    let to_examples = |d: &lstm::data::labelled::Labelled| -> Result<Examples> {
        Ok(Examples {
            tokens: lstm::data::labelled::encode_texts(&vocab, &d.texts, s.max_len),
            labels: d
                .labels
                .iter()
                .enumerate()
                .map(|(i, l)| class_of(l, i + 1))
                .collect::<Result<_>>()?,
        })
    };
    let (tr, va) = (to_examples(&train)?, to_examples(&val)?);
    let input = if s.embedding > 0 {
        InputKind::Embedding {
            vocab: vocab.len(),
            dim: s.embedding,
        }
    } else {
        InputKind::OneHot { vocab: vocab.len() }
    };
    let mc = model_config(
        &s,
        input,
        Head::LastStep {
            outputs: labels.len(),
        },
    );
    lstm::model::memory::check_model_memory(&mc, s.batch, s.max_len)?;
    let mut m = meta(Task::Classify, &mc, &s);
    m.vocab = Some(vocab);
    m.labels = Some(labels.clone());
    let (meta, model, state) = fresh_or_resumed(resumed, m)?;
    let task = ClassifyData::new(tr, va, s.batch, s.seed, labels.len());
    Ok(Job {
        meta,
        model,
        state,
        task: Box::new(task),
        out,
        unit: "examples",
    })
}

// ---------------------------------------------------------------- entry points

/// Refuses flags that `--resume` would otherwise silently ignore: a resumed run keeps the
/// settings it was started with.
fn check_resume_flags(c: &CommonTrain, job: &[(&str, bool)]) -> Result<()> {
    let common = [
        ("--config", c.config.is_some()),
        ("--cell", c.cell.is_some()),
        ("--variant", c.variant.is_some()),
        ("--layers", c.layers.is_some()),
        ("--hidden", c.hidden.is_some()),
        ("--proj", c.proj.is_some()),
        ("--batch", c.batch.is_some()),
        ("--lr", c.lr.is_some()),
        ("--optimizer", c.optimizer.is_some()),
        ("--weight-decay", c.weight_decay.is_some()),
        ("--lr-schedule", c.lr_schedule.is_some()),
        ("--dropout", c.dropout.is_some()),
        ("--recurrent-dropout", c.recurrent_dropout.is_some()),
        ("--clip", c.clip.is_some()),
        ("--seed", c.seed.is_some()),
        ("--eval-every", c.eval_every.is_some()),
        ("--val-fraction", c.val_fraction.is_some()),
    ];
    let given: Vec<&str> = common
        .iter()
        .chain(job)
        .filter(|(_, set)| *set)
        .map(|(name, _)| *name)
        .collect();
    if !given.is_empty() {
        bail!(
            "--resume continues a run with the settings it was started with, so {} cannot be given with it; only --steps, --minutes, --epochs, --save-every, --threads, --on-nonfinite, --out and --quiet can. To change the others, start a new run with another --out",
            given.join(", ")
        );
    }
    Ok(())
}

fn resume(dir: &Path, c: &CommonTrain, want: Option<Task>) -> Result<()> {
    let loaded =
        modeldir::load(dir).with_context(|| format!("cannot resume from {}", dir.display()))?;
    if let Some(want) = want {
        if loaded.meta.task != want {
            bail!(
                "{} holds a {} model, not a {want} model; resume it with `lstm train {} --resume {}`",
                dir.display(),
                loaded.meta.task,
                loaded.meta.task,
                dir.display()
            );
        }
    }
    let mut s = loaded.meta.settings.clone();
    apply_budget(&mut s, c);
    if let Some(t) = c.threads {
        s.threads = t;
    }
    if let Some(v) = c.on_nonfinite {
        s.on_nonfinite = match v {
            NonFiniteArg::Stop => OnNonFinite::Stop,
            NonFiniteArg::Skip => OnNonFinite::Skip,
        };
    }
    s.validate()?;
    let out = c.out.clone().unwrap_or_else(|| dir.to_path_buf());
    if out != dir {
        check_out(&out)?;
    }
    if !c.quiet {
        println!("resuming {} from step {}", dir.display(), loaded.state.step);
    }
    let job = match loaded.meta.task {
        Task::Text => text_job(s, out, Some(loaded))?,
        Task::Forecast => forecast_job(s, out, Some(loaded))?,
        Task::Classify => classify_job(s, out, Some(loaded))?,
    };
    run(job, c.quiet)
}

fn path_str(p: &Option<PathBuf>) -> Option<String> {
    p.as_ref().map(|p| p.display().to_string())
}

pub fn train(cmd: &TrainCmd) -> Result<()> {
    match &cmd.job {
        None => train_text(&cmd.default, true),
        Some(TrainJob::Text(a)) => train_text(a, false),
        Some(TrainJob::Forecast(a)) => {
            if let Some(d) = &a.common.resume {
                check_resume_flags(
                    &a.common,
                    &[
                        ("--data", a.data.is_some()),
                        ("--column", !a.column.is_empty()),
                        ("--date-column", a.date_column.is_some()),
                        ("--window", a.window.is_some()),
                        ("--horizon", a.horizon.is_some()),
                        ("--holdout", a.holdout.is_some()),
                        ("--transform", a.transform.is_some()),
                        ("--bidirectional", a.bidirectional),
                    ],
                )?;
                return resume(d, &a.common, Some(Task::Forecast));
            }
            let s = resolve(Task::Forecast, &a.common, |s| {
                if a.data.is_some() {
                    s.data = path_str(&a.data);
                }
                if !a.column.is_empty() {
                    s.columns = a.column.clone();
                }
                if a.date_column.is_some() {
                    s.date_column = a.date_column.clone();
                }
                macro_rules! set { ($($f:ident),*) => { $( if let Some(v) = a.$f { s.$f = v; } )* }; }
                set!(window, horizon, holdout);
                if let Some(t) = a.transform {
                    s.transform = match t {
                        TransformArg::None => Transform::None,
                        TransformArg::Log => Transform::Log,
                        TransformArg::Diff => Transform::Diff,
                        TransformArg::LogDiff => Transform::LogDiff,
                    };
                }
                s.bidirectional |= a.bidirectional;
            })?;
            let out = a
                .common
                .out
                .clone()
                .context("--out DIR is required: where to write the model")?;
            check_out(&out)?;
            run(forecast_job(s, out, None)?, a.common.quiet)
        }
        Some(TrainJob::Classify(a)) => {
            if let Some(d) = &a.common.resume {
                check_resume_flags(
                    &a.common,
                    &[
                        ("--data", a.data.is_some()),
                        ("--val", a.val.is_some()),
                        ("--text-column", a.text_column.is_some()),
                        ("--label-column", a.label_column.is_some()),
                        ("--tokens", a.tokens.is_some()),
                        ("--embedding", a.embedding.is_some()),
                        ("--max-len", a.max_len.is_some()),
                        ("--bidirectional", a.bidirectional),
                    ],
                )?;
                return resume(d, &a.common, Some(Task::Classify));
            }
            let s = resolve(Task::Classify, &a.common, |s| {
                if a.data.is_some() {
                    s.data = path_str(&a.data);
                }
                if a.val.is_some() {
                    s.val = path_str(&a.val);
                }
                if let Some(v) = &a.text_column {
                    s.text_column = v.clone();
                }
                if let Some(v) = &a.label_column {
                    s.label_column = v.clone();
                }
                if let Some(t) = a.tokens {
                    s.tokens = match t {
                        TokensArg::Char => TokenKind::Char,
                        TokensArg::Word => TokenKind::Word,
                    };
                }
                macro_rules! set { ($($f:ident),*) => { $( if let Some(v) = a.$f { s.$f = v; } )* }; }
                set!(embedding, max_len);
                s.bidirectional |= a.bidirectional;
            })?;
            let out = a
                .common
                .out
                .clone()
                .context("--out DIR is required: where to write the model")?;
            check_out(&out)?;
            run(classify_job(s, out, None)?, a.common.quiet)
        }
    }
}

fn train_text(a: &TextArgs, default_job: bool) -> Result<()> {
    if let Some(d) = &a.common.resume {
        check_resume_flags(
            &a.common,
            &[
                ("--data", a.data.is_some()),
                ("--val", a.val.is_some()),
                ("--seq-len", a.seq_len.is_some()),
                ("--sample-every", a.sample_every.is_some()),
            ],
        )?;
        return resume(d, &a.common, (!default_job).then_some(Task::Text));
    }
    let s = resolve(Task::Text, &a.common, |s| {
        if a.data.is_some() {
            s.data = path_str(&a.data);
        }
        if a.val.is_some() {
            s.val = path_str(&a.val);
        }
        if let Some(v) = a.seq_len {
            s.seq_len = v;
        }
        if let Some(v) = a.sample_every {
            s.sample_every = v;
        }
    })?;
    if !default_job && s.data.is_none() {
        bail!("--data FILE is required (or run `lstm train` alone for the bundled Shakespeare)");
    }
    let out = match &a.common.out {
        Some(o) => o.clone(),
        None if default_job => PathBuf::from("models/shakespeare"),
        None => bail!("--out DIR is required: where to write the model"),
    };
    check_out(&out)?;
    if default_job && !a.common.quiet {
        println!("training a character model on the bundled tinyshakespeare.txt (stop early with Ctrl-C; progress is saved)");
    }
    run(text_job(s, out, None)?, a.common.quiet)
}
