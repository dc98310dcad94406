//! `lstm train`: resolve settings (defaults, TOML, flags), then one library job
//! ([`lstm::tasks::job::Job`]: read the data, build or resume the model, train) with a progress
//! display.

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lstm::cell::Mode;
use lstm::data::series::Transform;
use lstm::data::vocab::TokenKind;
use lstm::model::loss::Distribution;
use lstm::tasks::job::{self, Job};
use lstm::tasks::modeldir::{self, Task};
use lstm::tasks::settings::{
    Forecaster, LrSchedule, OnNonFinite, OptimizerKind, Settings, Variant,
};
use lstm::tasks::train::{Event, StopReason};

use crate::args::*;

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
    // through JSON, where an unset option is `null`: TOML has no null, and an option missing
    // from the table would take the text job's default (a classify run would get 4 minutes)
    let mut base = match serde_json::to_value(&s)? {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("settings serialise to a map"),
    };
    let mut keys = Vec::new();
    for (k, v) in file {
        // JSON has no NaN or infinity: serde would write `null`, read back as "unset"
        if let toml::Value::Float(x) = v {
            if !x.is_finite() {
                bail!(
                    "{}: `{k} = {x}`: a setting must be a finite number",
                    path.display()
                );
            }
        }
        let j = serde_json::to_value(&v)?;
        keys.push((k.clone(), v));
        base.insert(k, j);
    }
    let given: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
    let mut read: Settings = serde_json::from_value(serde_json::Value::Object(base.clone()))
        .map_err(|e| {
            // name the key: the first whose value alone does not read
            let clean = serde_json::to_value(&s).unwrap_or_default();
            let culprit = keys.iter().find(|(k, v)| {
                let mut one = clean.clone();
                one[k.as_str()] = serde_json::to_value(v).unwrap_or_default();
                serde_json::from_value::<Settings>(one).is_err()
            });
            match culprit {
                Some((k, v)) => anyhow::anyhow!("{}: `{k} = {v}`: {e}", path.display()),
                None => anyhow::anyhow!("{}: {e}", path.display()),
            }
        })?;
    // the file's keys are given, as flags are (the settings read back from JSON have none)
    read.given = s.given;
    read.given.extend(given);
    Ok(read)
}

/// Applies the flags shared by every job.
fn apply_common(s: &mut Settings, c: &CommonTrain) {
    // each flag given is recorded as given (`Settings::given`): a value equal to the default
    // is then kept by the rules that size a model
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = c.$f {
            s.$f = v;
            s.given.insert(stringify!($f).to_string());
        } )* };
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
    // and those set below, by conversion or together
    macro_rules! given {
        ($($f:ident),*) => { $( if c.$f.is_some() {
            s.given.insert(stringify!($f).to_string());
        } )* };
    }
    given!(
        eval_every,
        val_fraction,
        tail,
        cell,
        variant,
        precision,
        on_nonfinite,
        lr_schedule,
        optimizer,
        steps,
        minutes,
        epochs,
        save_every
    );
    if let Some(v) = c.eval_every {
        s.eval_every = v;
    }
    if let Some(v) = c.val_fraction {
        s.val_fraction = v;
    }
    if let Some(v) = c.tail {
        s.tail = v;
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
    if let Some(v) = c.precision {
        s.precision = v.into();
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
        // a budget in the file replaces the job's default one, as a budget flag does (a
        // review, 2026-12-07: `steps = 100` in a file still stopped at the default 8 epochs)
        let mut blank = s.clone();
        (blank.steps, blank.minutes, blank.epochs) = (None, None, None);
        let file = overlay_toml(blank, p)?;
        if file.steps.is_none() && file.minutes.is_none() && file.epochs.is_none() {
            s = Settings {
                steps: s.steps,
                minutes: s.minutes,
                epochs: s.epochs,
                ..file
            };
        } else {
            s = file;
        }
    }
    apply_common(&mut s, c);
    job(&mut s);
    s.validate().context("invalid settings")?;
    Ok(s)
}

fn check_out(out: &Path) -> Result<()> {
    modeldir::check_new(out).map_err(|why| unusable(out, why))
}

/// Refuses an `--out` that cannot be written, found now rather than after the training.
fn check_writable(out: &Path) -> Result<()> {
    modeldir::check_writable(out).map_err(|why| unusable(out, why))
}

/// Why `--out` cannot receive the model, with what to do.
fn unusable(out: &Path, why: modeldir::Unusable) -> anyhow::Error {
    use modeldir::Unusable;
    let o = out.display();
    match why {
        Unusable::HoldsModel => anyhow!(
            "{o} already holds a model; continue it with `lstm train --resume {o}` or choose another --out"
        ),
        Unusable::NotADirectory => {
            anyhow!("{o} exists and is not a directory; choose another --out")
        }
        Unusable::NotEmpty => anyhow!(
            "{o} is a directory that is not empty; a model is written into a new or empty directory (its files would replace files there): choose another --out"
        ),
        Unusable::InsideAFile { at } => anyhow!(
            "cannot write {o}: {} is not a directory; choose another --out",
            at.display()
        ),
        Unusable::NotWritable { at, reason } => anyhow!(
            "cannot write {o}: {reason} (in {}); choose another --out",
            at.display()
        ),
    }
}

/// The rank and number of ranks, with the MPI world when this is one rank of an MPI run.
#[cfg(feature = "mpi")]
fn ranks() -> Result<(Option<crate::mpi::Mpi>, usize, usize)> {
    use lstm::tasks::parallel::Collective;
    let mpi = crate::mpi::Mpi::init();
    let (rank, size) = mpi.as_ref().map_or((0, 1), |m| (m.rank(), m.size()));
    Ok((mpi, rank, size))
}

/// Without the `mpi` feature: one process, and a refusal under `mpirun -np N` (N copies would
/// each train alone and write the same directory).
#[cfg(not(feature = "mpi"))]
fn ranks() -> Result<(Option<()>, usize, usize)> {
    let size = crate::mpi_processes();
    if size > 1 {
        bail!(
            "started as one of {size} MPI processes, but this lstm was built without MPI; build it with `cargo build --release -p lstm-cli --features mpi`"
        );
    }
    Ok((None, 0, 1))
}

/// This process's rank as an MPI launcher (Open MPI's `mpirun`, a PMI one) announced it; 0
/// when started alone.
fn launcher_rank() -> usize {
    ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
        .unwrap_or(0)
}

/// The step at which this rank kills itself, for the tests of a rank dying mid-run
/// (`LSTM_TEST_MPI_ABORT=RANK:STEP`).
fn abort_step(rank: usize) -> Option<u64> {
    let v = std::env::var("LSTM_TEST_MPI_ABORT").ok()?;
    let (r, s) = v.split_once(':')?;
    (r.parse::<usize>().ok()? == rank).then(|| s.parse().ok())?
}

/// The process's stop flag, raised by Ctrl-C; its handler is installed on the first call (a
/// second Ctrl-C while saving is ignored: the checkpoint is written atomically anyway).
///
/// SIGINT, SIGTERM and SIGHUP raise it, except one the shell set to be ignored (`nohup`'s
/// SIGHUP, a background job's SIGINT), which stays ignored; the first one's number is kept for
/// the exit status ([`stop_status`]).
fn stop_flag() -> Arc<AtomicBool> {
    static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    STOP.get_or_init(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let stop = Arc::new(AtomicBool::new(false));
        let raise = stop.clone();
        let wanted: Vec<i32> = [SIGINT, SIGTERM, SIGHUP]
            .into_iter()
            .filter(|&s| !crate::ignored(s))
            .collect();
        if let Ok(mut signals) = signal_hook::iterator::Signals::new(&wanted) {
            std::thread::spawn(move || {
                for sig in signals.forever() {
                    let _ =
                        STOP_SIGNAL.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
                    raise.store(true, Ordering::SeqCst);
                }
            });
        }
        stop
    })
    .clone()
}

/// The first signal that stopped training (0: none).
static STOP_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The exit status of a run a signal stopped, as a shell reports one the signal ended:
/// 128 + its number (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).
pub fn stop_status() -> u8 {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        s @ 1..=127 => 128 + s as u8,
        _ => 130,
    }
}

/// The launcher to resume a run of `size` processes with (a probe, 2026-12-07: the command a
/// message gave went on alone): nothing for one process.
fn launcher(size: usize) -> String {
    if size > 1 {
        format!("mpirun -np {size} (or your launcher) ")
    } else {
        String::new()
    }
}

/// Whether someone watches the run on a terminal: the progress bar draws on standard error, so
/// both it and standard output must be one; otherwise a line per validation goes to standard
/// output. Under `mpirun` a rank's standard output is a terminal and its standard error a pipe
/// (a probe, 2026-12-07: the bar was hidden and the lines were off, so nothing showed).
fn watched() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// Builds a new job ([`Job::new_until`]): a classifier's or a small forecaster's further models
/// and candidate scalings train here, before the first model's progress bar, so a terminal
/// shows a spinner meanwhile and Ctrl-C stops it with nothing written.
fn new_job(task: Task, s: Settings, out: PathBuf, quiet: bool) -> Result<Job> {
    let stop = stop_flag();
    lstm::kernels::set_num_threads(s.threads);
    let spin = if quiet || !watched() || task == Task::Text {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .expect("valid template"),
        );
        b.set_message("preparing the data and any further models; Ctrl-C writes nothing");
        b.enable_steady_tick(Duration::from_millis(200));
        b
    };
    let built = Job::new_until(task, s, out.clone(), &stop);
    spin.finish_and_clear();
    // a stop raised while the data was read (which does not look at the flag) stops here too
    let stopped = || {
        Interrupted(format!(
            "interrupted before the main model's training began (while the data was read, or \
             the further models and candidate scalings that come first trained: they are not \
             kept); nothing was written to {}",
            out.display()
        ))
    };
    match built {
        Err(e) if interrupted(&e) => Err(stopped().into()),
        Ok(_) if stop.load(Ordering::SeqCst) => Err(stopped().into()),
        r => Ok(r?),
    }
}

/// Whether a job error is [`lstm::Error::Interrupted`], under any context.
fn interrupted(e: &job::JobError) -> bool {
    match e {
        job::JobError::Lib(lstm::Error::Interrupted) => true,
        job::JobError::Context { source, .. } => interrupted(source),
        _ => false,
    }
}

/// Locks `out` for this run ([`modeldir::lock`]): a second `lstm train` (or `--resume`) into
/// it is refused before it trains.
fn lock_out(out: &Path) -> Result<modeldir::DirLock> {
    match modeldir::lock(out)
        .with_context(|| format!("cannot create the model directory {}", out.display()))?
    {
        Some(l) => Ok(l),
        None => bail!(
            "another lstm process is training into {}; wait for it to end (or stop it: it saves), or choose another --out",
            out.display()
        ),
    }
}

/// Trains `job` and saves it; `new_out`: its directory was checked to be new or empty (a new
/// run, or a resume into another `--out`), not the directory resumed from.
fn run(mut job: Job, quiet: bool, new_out: bool) -> Result<()> {
    #[allow(unused_mut)] // mutated only with the `mpi` feature
    let (mut mpi, rank, size) = ranks()?;
    // one rank reports; the others train in silence
    let quiet = quiet || rank != 0;
    let abort_at = abort_step(rank);
    let s = job.meta.settings.clone();
    lstm::kernels::set_num_threads(s.threads);
    let stop = stop_flag();
    let resumed_from = job.state.step;
    // a resumed run whose budget is spent: said, and the directory left as it is (training
    // would only validate and save it again)
    let spent = resumed_from > 0
        && (job.total_steps().is_some_and(|n| resumed_from >= n)
            || s.minutes.is_some_and(|m| job.state.seconds >= m * 60.0));
    // the ranks agree before any returns here, so that none waits alone for the others
    #[cfg(feature = "mpi")]
    if let Some(m) = mpi.as_mut() {
        let mut print = resumed_from.to_le_bytes().to_vec();
        print.push(u8::from(spent));
        lstm::tasks::parallel::check_same(
            m,
            "checkpoints (resume every rank from the same model directory, at the same step) or budgets",
            &print,
        )?;
    }
    if spent {
        if rank == 0 {
            // resumed into another --out: that directory is not made (it was named as if it
            // held the model)
            eprintln!(
                "the model resumed is already at step {resumed_from}, the end of its budget: nothing to train{}; give a larger --steps, --epochs or --minutes to go on",
                if new_out {
                    format!(", and nothing was written to {}", job.out.display())
                } else {
                    format!(" in {}", job.out.display())
                }
            );
        }
        return Ok(());
    }
    // one process at a time trains into a directory (rank 0 writes for all ranks); the ranks
    // learn whether rank 0 has it, so that none waits alone for a rank 0 that stopped
    let lock = if rank == 0 {
        // a new run checked `--out` before building its job; another run may have saved a
        // model there meanwhile (and let go of the lock): not replaced
        Some(lock_out(&job.out).and_then(|l| {
            if new_out && modeldir::live_path(&job.out, "config.json").exists() {
                bail!(
                    "{} received a model from another lstm process while this run prepared; choose another --out",
                    job.out.display()
                );
            }
            Ok(l)
        }))
    } else {
        None
    };
    #[cfg(feature = "mpi")]
    if let Some(m) = mpi.as_mut() {
        use lstm::tasks::parallel::Collective;
        let mut failed = [f32::from(u8::from(
            lock.as_ref().is_some_and(|l| l.is_err()),
        ))];
        m.allreduce_sum(&mut failed)?;
        if failed[0] > 0.0 && rank != 0 {
            bail!(
                "rank 0 could not take {} for this run (its message says why)",
                job.out.display()
            );
        }
    }
    // held to the end of `run`; a directory the lock created and this run left without a
    // checkpoint (an error before the first save) is removed when it is dropped
    let _lock = lock.transpose()?;
    let tty = watched();
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
    // one rank says what it read; --quiet keeps the warnings only
    if rank == 0 {
        for note in &job.notes {
            if !quiet || note.starts_with("warning") {
                eprintln!("{note}");
            }
        }
    }
    let steps_total = job.total_steps();
    if !quiet {
        let budget = match (steps_total, s.minutes) {
            (Some(n), Some(m)) => format!("{n} steps or {m} minutes"),
            (Some(n), None) => format!("{n} steps"),
            (None, Some(m)) => format!("{m} minutes"),
            (None, None) => "no budget".into(),
        };
        // a line the reader will not take (`lstm train | true`) is not worth the run: the
        // summary after the save reports standard output's error
        let _ = writeln!(
            std::io::stdout(),
            "training a {} model: {} x {} {:?}, {} parameters, budget {budget}, {} threads{}{} -> {}",
            job.meta.task,
            s.layers,
            s.hidden,
            s.cell,
            job.model.store.len(),
            lstm::kernels::num_threads(),
            if size > 1 {
                format!(" x {size} ranks")
            } else {
                String::new()
            },
            if s.precision == lstm::kernels::Precision::Bf16 {
                ", bf16 products"
            } else {
                ""
            },
            job.out.display()
        );
    }
    let mut last_val: Option<f32> = None;
    // the step of the last checkpoint this run saved
    let mut saved: Option<u64> = None;
    let unit = job.unit();
    let mut on = |e: Event<'_>| match e {
        Event::Step {
            step,
            loss,
            items_per_s,
            fraction,
            ..
        } => {
            if abort_at == Some(step) {
                // killed as a machine or the OOM killer would: SIGKILL, no clean-up
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &std::process::id().to_string()])
                    .status();
                std::process::abort();
            }
            bar.set_position((fraction * 1000.0) as u64);
            let val = last_val.map_or(String::new(), |v| format!(" val {v:.4}"));
            bar.set_message(format!(
                "step {step} loss {loss:.4}{val} {items_per_s:.0} {unit}/s"
            ));
        }
        Event::Eval { step, val_loss } => {
            last_val = Some(val_loss);
            if !quiet && !tty {
                // (a progress line that cannot be written is not worth stopping a run for)
                let _ = writeln!(
                    std::io::stdout(),
                    "step {step}: validation loss {val_loss:.4}"
                );
            }
        }
        Event::Sample { step, text } => {
            if !quiet {
                bar.suspend(|| {
                    let _ = writeln!(
                        std::io::stdout(),
                        "--- sample at step {step} ---\n{text}\n---"
                    );
                });
            }
        }
        Event::Saved { step } => saved = Some(step),
        Event::Skipped { step, reason } => {
            bar.suspend(|| {
                eprintln!("warning: step {step}: {reason}; batch skipped (--on-nonfinite skip)")
            });
        }
    };
    #[cfg(feature = "mpi")]
    let group = mpi
        .as_mut()
        .map(|m| m as &mut dyn lstm::tasks::parallel::Collective);
    #[cfg(not(feature = "mpi"))]
    let group = mpi.take().and(None);
    let reason = job
        .train_with(
        &|staging, train_loss, val_loss| {
            lstm::pages::plot::loss_curve(&staging.join("loss.svg"), train_loss, val_loss)
        },
        &stop,
        &mut on,
        group,
    )
    .map_err(|e| {
        // refused before training (ranks started differently, a batch too small to share);
        // a directory the lock created goes with `_lock`
        if matches!(e, lstm::Error::Config(_)) && saved.is_none() {
            return anyhow::Error::from(e);
        }
        let out = job.out.display();
        // what this run saved decides, not whether the directory loads now: a failed load must
        // never cost the checkpoints of a long run
        let kept = match saved.or((resumed_from > 0).then_some(resumed_from)) {
            Some(step) => format!(
                "training stopped; the last checkpoint in {out} (step {step}) is intact: continue it with `{}lstm train --resume {out}`",
                launcher(size)
            ),
            None => {
                format!(
                    "training stopped; no checkpoint had been written to {out} yet (--save-every N keeps one while training)"
                )
            }
        };
        let kept = if matches!(e, lstm::Error::Io { .. }) {
            format!("{kept}; the checkpoint could not be written (a full disk, or a directory that cannot be written): free some space or choose another --out first")
        } else {
            kept
        };
        anyhow::Error::from(e).context(kept)
    })?;
    bar.finish_and_clear();
    if rank != 0 {
        return Ok(());
    }
    let out = job.out.display().to_string();
    // name the program the way it was started (`target/release/lstm` after `cargo run`)
    let exe = std::env::args().next().unwrap_or_else(|| "lstm".into());
    if reason == StopReason::Interrupted {
        // under a launcher, with it (a probe, 2026-12-07: the command given went on alone)
        return Err(Interrupted(format!(
            "interrupted at step {}; checkpoint saved in {out}. Continue with: {}{exe} train --resume {out}",
            job.state.step,
            launcher(size)
        ))
        .into());
    }
    // the summary, after the model is saved: a summary that cannot be printed says so
    let mut summary = || -> Result<()> {
        #[cfg(feature = "mpi")]
        if let Some(m) = &mpi {
            outln!(
                "{size} ranks: {} all-reduces took {:.1} s of {:.1} s of training ({:.1}%)",
                m.reduces,
                m.reduce_seconds,
                job.state.seconds,
                100.0 * m.reduce_seconds / job.state.seconds.max(1e-9)
            );
        }
        let val = job.state.val_loss.last().map(|v| v.1);
        // several models (a classifier's, a small forecaster's, with its candidate scalings):
        // the steps and seconds are the first model's, and the whole run took longer
        let wall = STARTED.get().map_or(0.0, |t| t.elapsed().as_secs_f64());
        let all = time_beside_steps(job.members.len(), resumed_from > 0, job.state.seconds, wall);
        outln!(
            "done: {} steps in {:.0} s{all}, validation loss {}; model saved in {out}",
            job.state.step,
            job.state.seconds,
            val.map_or("-".into(), |v| format!("{v:.4}"))
        );
        // a run that diverged with finite losses is saved, and said to be diverged (a probe,
        // 2026-12-08: `--lr 1e30` was "done" with nothing said)
        if let Some(why) = job.divergence() {
            eprintln!("warning: {why}");
        }
        // a classifier of several models: the figure its directory predicts with, not the
        // first model's alone
        if let Some((loss, accuracy)) = job.members_validation()? {
            outln!(
                "the {} models averaged: validation loss {loss:.4}, accuracy {:.2}% (the validation loss above is the first model's alone)",
                job.members.len() + 1,
                100.0 * accuracy
            );
        }
        match job.meta.task {
            Task::Text => {
                // the tutorial's prime when the model knows its characters (Shakespeare)
                let knows = |p: &str| {
                    job.meta
                        .vocab
                        .as_ref()
                        .is_some_and(|v| v.split(p).iter().all(|t| v.id(t).is_some()))
                };
                if knows("ROMEO:") {
                    outln!("sample from it with: {exe} generate --model {out} --prime \"ROMEO:\"")
                } else {
                    outln!("sample from it with: {exe} generate --model {out} --prime \"TEXT TO CONTINUE\"")
                }
            }
            Task::Forecast => outln!(
                "forecast with: {exe} forecast --model {out} --data FILE.csv --plot forecast.png"
            ),
            Task::Classify => {
                outln!("classify with: {exe} classify --model {out} \"some text\"")
            }
        }
        Ok(())
    };
    summary()
        .with_context(|| format!("the model was saved in {out}, but its summary was not printed"))
}

// ---------------------------------------------------------------- entry points

/// The flag that sets a settings key.
fn flag_of(key: &str) -> String {
    match key {
        "columns" => "--column".into(),
        k => format!("--{}", k.replace('_', "-")),
    }
}

/// Refuses settings that `--resume` would otherwise silently ignore: a resumed run keeps the
/// settings it was started with, so a flag (or `--config` key) equal to the saved value is
/// accepted and a changed one is refused, naming the flag and both values.
fn check_resume_settings(
    task: Task,
    saved: &Settings,
    given: &Settings,
    config: Option<&Path>,
) -> Result<()> {
    let changed: Vec<String> = job::resume_changes(task, saved, given)
        .into_iter()
        .map(|c| {
            let name = match config {
                Some(p) if !FLAG_KEYS.contains(&c.key.as_str()) => {
                    format!("`{}` in {}", c.key, p.display())
                }
                _ => flag_of(&c.key),
            };
            format!(
                "{name} {} differs from the saved model's {}",
                c.given, c.saved
            )
        })
        .collect();
    if !changed.is_empty() {
        bail!(
            "{}: --resume continues a run with the settings it was started with; only --steps, --minutes, --epochs, --save-every, --threads, --on-nonfinite, --out and --quiet can change. To change the others, start a new run with another --out",
            changed.join("; ")
        );
    }
    Ok(())
}

/// Settings keys some `lstm train` flag sets.
const FLAG_KEYS: &[&str] = &[
    "data",
    "val",
    "cell",
    "variant",
    "layers",
    "hidden",
    "proj",
    "bidirectional",
    "embedding",
    "seq_len",
    "batch",
    "lr",
    "optimizer",
    "lr_schedule",
    "weight_decay",
    "dropout",
    "recurrent_dropout",
    "clip",
    "seed",
    "eval_every",
    "sample_every",
    "val_fraction",
    "tail",
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
    "text_column",
    "label_column",
    "tokens",
    "members",
    "precision",
];

/// Continues the run saved in `dir`. The command line's settings (`--config`, then the flags,
/// over the saved ones) must equal the saved ones; only the budget, `--threads` and
/// `--on-nonfinite` may change.
fn resume(
    dir: &Path,
    c: &CommonTrain,
    want: Option<Task>,
    job: impl FnOnce(&mut Settings),
) -> Result<()> {
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
    let saved = &loaded.meta.settings;
    let mut given = saved.clone();
    if let Some(p) = &c.config {
        given = overlay_toml(given, p)?;
    }
    apply_common(&mut given, c);
    job(&mut given);
    // data files are compared by their contents (`Job::resume` refuses a file that changed
    // since the recorded fingerprint), not by how their path is spelled: `./x.tsv`, or the path
    // from another directory, is the same file. Runs saved without that record keep the path.
    // (A validation file given or left out where the run had none or one changes what the run
    // trains on: that stays a changed setting.)
    let by_contents = !loaded.meta.seen.is_empty();
    let same_val_kind = given.val.is_some() == saved.val.is_some();
    let mut compared = given.clone();
    if by_contents {
        compared.data.clone_from(&saved.data);
        if same_val_kind {
            compared.val.clone_from(&saved.val);
        }
    }
    check_resume_settings(loaded.meta.task, saved, &compared, c.config.as_deref())?;
    let mut s = saved.clone();
    if by_contents {
        s.data.clone_from(&given.data);
        s.val.clone_from(&given.val);
    }
    for (flag, path, was) in [
        ("--data", &s.data, &saved.data),
        ("--val", &s.val, &saved.val),
    ] {
        if let Some(p) = path.as_deref().filter(|p| !Path::new(p).exists()) {
            if path != was {
                bail!("{flag} {p}: no such file");
            }
            let here = std::env::current_dir().map_or("?".into(), |d| d.display().to_string());
            if by_contents {
                bail!(
                    "{} was trained on {p}, which is not found from here ({here}): a path is kept as it was last given (when the run started, or at its last --resume), relative to the directory it was given in; give the file's path from here with {flag}",
                    dir.display()
                );
            }
            bail!(
                "{} was trained on {p}, which is not found from here ({here}); the run was saved without a record of its data's contents, so it resumes only with that path: resume it from the directory it was started in",
                dir.display()
            );
        }
    }
    // the budget: from the flags, else from --config, else the saved one
    if let Some(p) = &c.config {
        let mut blank = saved.clone();
        (blank.steps, blank.minutes, blank.epochs, blank.save_every) = (None, None, None, None);
        let file = overlay_toml(blank, p)?;
        if file.steps.is_some() || file.minutes.is_some() || file.epochs.is_some() {
            (s.steps, s.minutes, s.epochs) = (file.steps, file.minutes, file.epochs);
        }
        if file.save_every.is_some() {
            s.save_every = file.save_every;
        }
    }
    apply_budget(&mut s, c);
    s.threads = given.threads;
    s.on_nonfinite = given.on_nonfinite;
    s.validate()?;
    let out = c.out.clone().unwrap_or_else(|| dir.to_path_buf());
    if out != dir {
        check_out(&out)?;
    } else {
        check_writable(&out)?;
    }
    // said once under mpirun, as the rest of a run is (the world is joined later, in `run`)
    if !c.quiet && launcher_rank() == 0 {
        let _ = writeln!(
            std::io::stdout(),
            "resuming {} from step {}",
            dir.display(),
            loaded.state.step
        );
    }
    let new_out = out != dir;
    run(Job::resume(loaded, s, out)?, c.quiet, new_out)
}

fn path_str(p: &Option<PathBuf>) -> Option<String> {
    p.as_ref().map(|p| p.display().to_string())
}

/// When `lstm train` started, for the summary of a run of several models.
static STARTED: OnceLock<Instant> = OnceLock::new();

/// What the summary's "done: N steps in S s" adds: several models (a classifier's, a small
/// forecaster's, with its candidate scalings) say the steps and seconds are the first model's
/// and what the whole run took; one model says what the run took beside its training steps
/// when that is much more (the budget counts the steps only; a large file's reading,
/// validation, samples, checkpoints and a small forecaster's candidate scalings come on top). A resumed run's seconds count from the first start, so the time of
/// this process is not set beside them.
fn time_beside_steps(members: usize, resumed: bool, seconds: f64, wall: f64) -> String {
    if members > 0 {
        if resumed {
            format!(" (the first of {} models)", members + 1)
        } else {
            format!(" (the first of {} models; {wall:.0} s in all)", members + 1)
        }
    } else if !resumed && wall > seconds + 5.0 && wall > 1.2 * seconds {
        format!(" of training ({wall:.0} s in all: reading the data, validation, samples, checkpoints and a small forecaster's candidate scalings come on top)")
    } else {
        String::new()
    }
}

/// `lstm train`: the settings of the job chosen, then one library job.
pub fn train(cmd: &TrainCmd) -> Result<()> {
    let _ = STARTED.set(Instant::now());
    // a build without MPI started by an MPI launcher is refused before any work
    #[cfg(not(feature = "mpi"))]
    ranks()?;
    match &cmd.job {
        None => train_text(&cmd.default, true),
        Some(TrainJob::Text(a)) => train_text(a, false),
        Some(TrainJob::Forecast(a)) => {
            let job = |s: &mut Settings| {
                if a.data.is_some() {
                    s.data = path_str(&a.data);
                }
                if !a.column.is_empty() {
                    s.columns = a.column.clone();
                }
                if a.date_column.is_some() {
                    s.date_column = a.date_column.clone();
                }
                if a.id_column.is_some() {
                    s.id_column = a.id_column.clone();
                }
                if !a.known_columns.is_empty() {
                    s.known_columns = a.known_columns.clone();
                }
                if let Some(f) = a.forecaster {
                    s.forecaster = match f {
                        ForecasterArg::Global => Forecaster::Global,
                        ForecasterArg::Window => Forecaster::Window,
                    };
                }
                if let Some(d) = a.distribution {
                    s.distribution = match d {
                        DistributionArg::Gaussian => Distribution::Gaussian,
                        DistributionArg::StudentT => Distribution::StudentT,
                        DistributionArg::NegativeBinomial => Distribution::NegativeBinomial,
                    };
                }
                if a.season.is_some() {
                    s.season = a.season;
                }
                if let Some(sc) = a.scaling {
                    s.scaling = match sc {
                        ScalingArg::Auto => lstm::tasks::global::Scaling::Auto,
                        ScalingArg::MeanAbs => lstm::tasks::global::Scaling::MeanAbs,
                        ScalingArg::Standard => lstm::tasks::global::Scaling::Standard,
                        ScalingArg::Trend => lstm::tasks::global::Scaling::Trend,
                        ScalingArg::LogTrend => lstm::tasks::global::Scaling::LogTrend,
                        ScalingArg::Seasonal => lstm::tasks::global::Scaling::Seasonal,
                        ScalingArg::LogSeasonal => lstm::tasks::global::Scaling::LogSeasonal,
                    };
                }
                if a.context.is_some() {
                    s.context = a.context;
                }
                if a.id_embedding.is_some() {
                    s.id_embedding = a.id_embedding;
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
            };
            if a.horizon == Some(0) {
                bail!("--horizon must be at least 1");
            }
            if let Some(d) = &a.common.resume {
                return resume(d, &a.common, Some(Task::Forecast), job);
            }
            let s = resolve(Task::Forecast, &a.common, job)?;
            let out = a
                .common
                .out
                .clone()
                .context("--out DIR is required: where to write the model")?;
            check_out(&out)?;
            run(
                new_job(Task::Forecast, s, out, a.common.quiet)?,
                a.common.quiet,
                true,
            )
        }
        Some(TrainJob::Classify(a)) => {
            let job = |s: &mut Settings| {
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
                set!(embedding, max_len, members);
                s.bidirectional |= a.bidirectional;
            };
            if let Some(d) = &a.common.resume {
                return resume(d, &a.common, Some(Task::Classify), job);
            }
            let s = resolve(Task::Classify, &a.common, job)?;
            let out = a
                .common
                .out
                .clone()
                .context("--out DIR is required: where to write the model")?;
            check_out(&out)?;
            run(
                new_job(Task::Classify, s, out, a.common.quiet)?,
                a.common.quiet,
                true,
            )
        }
    }
}

fn train_text(a: &TextArgs, default_job: bool) -> Result<()> {
    let job = |s: &mut Settings| {
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
    };
    if let Some(d) = &a.common.resume {
        return resume(d, &a.common, (!default_job).then_some(Task::Text), job);
    }
    let s = resolve(Task::Text, &a.common, job)?;
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
        let _ = writeln!(
            std::io::stdout(),
            "training a character model on the bundled tinyshakespeare.txt (stop early with Ctrl-C; progress is saved)"
        );
    }
    run(
        new_job(Task::Text, s, out, a.common.quiet)?,
        a.common.quiet,
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::time_beside_steps;

    /// The summary names the whole run's time beside a single model's training seconds only
    /// when the rest took much longer, and never for a resumed run.
    #[test]
    fn the_summary_says_what_the_run_took_beside_its_steps() {
        // 30 s of steps in a 77 s run (a 25 MB text's validations before they were capped)
        assert_eq!(
            time_beside_steps(0, false, 30.0, 77.0),
            " of training (77 s in all: reading the data, validation, samples, checkpoints and a small forecaster's candidate scalings come on top)"
        );
        // a few seconds of reading and saving are not worth a word
        assert_eq!(time_beside_steps(0, false, 30.0, 34.0), "");
        assert_eq!(time_beside_steps(0, false, 100.0, 115.0), "");
        assert_eq!(time_beside_steps(0, true, 30.0, 77.0), "");
        assert_eq!(
            time_beside_steps(2, false, 30.0, 95.0),
            " (the first of 3 models; 95 s in all)"
        );
        assert_eq!(
            time_beside_steps(9, true, 30.0, 95.0),
            " (the first of 10 models)"
        );
    }
}
