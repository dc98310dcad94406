//! The training loop shared by the three jobs: budget (steps, epochs or minutes), periodic
//! validation, samples and checkpoints, events for a progress display, and a stop flag
//! checked at every step boundary.

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::model::{Batch, Inputs, SequenceModel, Targets};
use crate::tasks::modeldir::{self, ModelMeta, TrainingState};
use crate::tasks::parallel::{self, Collective};
use crate::tasks::settings::{OnNonFinite, OptimizerKind, MAX_CONSECUTIVE_SKIPS};

/// A batch that owns its buffers.
#[derive(Clone, Debug, Default)]
pub struct OwnedBatch {
    /// Token inputs `(B, T)` (empty for dense input).
    pub tokens: Vec<u32>,
    /// Dense inputs `(B, T, I)` (empty for token input).
    pub dense: Vec<f32>,
    /// With dense inputs, one sequence id per sequence `(B)` for a model with
    /// [`crate::model::InputKind::DenseWithIds`] (empty: none).
    pub ids: Vec<u32>,
    /// Class targets (empty for value targets).
    pub classes: Vec<u32>,
    /// Value targets.
    pub values: Vec<f32>,
    /// `B`.
    pub batch: usize,
    /// `T`.
    pub seq_len: usize,
    /// Per-sequence lengths.
    pub lengths: Option<Vec<usize>>,
    /// Items this batch counts for throughput (tokens, windows or examples).
    pub items: u64,
    /// With a distribution head: `values` are the targets of its likelihood (NaN: not
    /// scored) instead of mean squared error's.
    pub distribution: Option<crate::model::loss::Distribution>,
    /// With a distribution head that reads scales: each value's scale, `(B, T)` like
    /// `values` (empty: none).
    pub scales: Vec<f32>,
}

impl OwnedBatch {
    /// The rows `r` of the batch (every field is batch-major: `(B, ...)`), for one process's
    /// share in data-parallel training ([`crate::tasks::parallel::shard`]).
    pub fn rows(&self, r: Range<usize>) -> OwnedBatch {
        let b = self.batch.max(1);
        let cut = |v: &[f32]| v[v.len() / b * r.start..v.len() / b * r.end].to_vec();
        let cut_u = |v: &[u32]| v[v.len() / b * r.start..v.len() / b * r.end].to_vec();
        OwnedBatch {
            tokens: cut_u(&self.tokens),
            dense: cut(&self.dense),
            ids: cut_u(&self.ids),
            classes: cut_u(&self.classes),
            values: cut(&self.values),
            scales: cut(&self.scales),
            batch: r.len(),
            seq_len: self.seq_len,
            lengths: self.lengths.as_ref().map(|l| l[r.clone()].to_vec()),
            items: self.items * r.len() as u64 / b as u64,
            distribution: self.distribution,
        }
    }

    /// Borrowed view for [`SequenceModel::train_step`].
    pub fn as_batch(&self) -> Batch<'_> {
        Batch {
            inputs: match (self.tokens.is_empty(), self.ids.is_empty()) {
                (false, _) => Inputs::Tokens(&self.tokens),
                (true, true) => Inputs::Dense(&self.dense),
                (true, false) => Inputs::DenseWithIds {
                    x: &self.dense,
                    ids: &self.ids,
                },
            },
            targets: match (self.values.is_empty(), self.distribution) {
                (true, _) => Targets::Classes(&self.classes),
                (false, Some(dist)) => Targets::Distribution {
                    values: &self.values,
                    dist,
                    scales: (!self.scales.is_empty()).then_some(&self.scales[..]),
                },
                (false, None) => Targets::Values(&self.values),
            },
            batch: self.batch,
            seq_len: self.seq_len,
            lengths: self.lengths.as_deref(),
        }
    }
}

/// What a job provides to the loop.
pub trait TrainTask: Send {
    /// Training items per epoch (tokens, windows, examples).
    fn epoch_items(&self) -> u64;
    /// Items in one batch (for converting epochs to steps).
    fn batch_items(&self) -> u64;
    /// The next training batch; `position` counts batches since the start of training and
    /// `rng` is the data RNG (both saved in checkpoints, so a resumed run sees the same data).
    fn next_batch(&mut self, rng: &mut ChaCha8Rng, position: u64) -> OwnedBatch;
    /// Validation loss.
    ///
    /// # Errors
    /// Model errors.
    fn validate(&mut self, model: &mut SequenceModel) -> Result<f32>;
    /// A sample to show during training (text jobs).
    ///
    /// # Errors
    /// Model errors.
    fn sample(
        &mut self,
        _model: &mut SequenceModel,
        _rng: &mut ChaCha8Rng,
    ) -> Result<Option<String>> {
        Ok(None)
    }
    /// The validation loss and accuracy of `model` and `members` predicting together (a
    /// classifier's averaged class probabilities); `None` where the task has no such figure or
    /// no validation rows.
    ///
    /// # Errors
    /// Model errors.
    fn validate_members(
        &mut self,
        _model: &mut SequenceModel,
        _members: &mut [SequenceModel],
    ) -> Result<Option<(f32, f64)>> {
        Ok(None)
    }
}

/// Something the loop reports.
#[derive(Debug)]
pub enum Event<'a> {
    /// A training step finished.
    Step {
        /// Steps so far (counting a resumed run's earlier steps).
        step: u64,
        /// The batch's loss (before the update).
        loss: f32,
        /// Items per second over the last steps.
        items_per_s: f64,
        /// Fraction of the budget used, 0..1.
        fraction: f64,
        /// Seconds trained so far.
        seconds: f64,
    },
    /// A validation pass finished.
    Eval {
        /// Step.
        step: u64,
        /// Validation loss.
        val_loss: f32,
    },
    /// A sample was generated.
    Sample {
        /// Step.
        step: u64,
        /// The text.
        text: &'a str,
    },
    /// A checkpoint was written.
    Saved {
        /// Step.
        step: u64,
    },
    /// A batch gave a non-finite loss or gradient and was skipped
    /// ([`OnNonFinite::Skip`]).
    Skipped {
        /// The step whose batch was skipped.
        step: u64,
        /// What was not finite.
        reason: &'a str,
    },
}

/// Environment variable that makes the listed steps (comma-separated) behave as if their loss
/// were NaN. For tests of the divergence handling only; never set it for real training.
pub const FAULT_ENV: &str = "LSTM_TEST_NONFINITE_STEPS";

fn injected_faults() -> Vec<u64> {
    std::env::var(FAULT_ENV)
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Why the loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The budget was used up.
    Budget,
    /// The stop flag was raised (Ctrl-C, SIGTERM).
    Interrupted,
}

/// The step budget of a run, counting from the start of training (not from a resume).
pub fn total_steps(meta: &ModelMeta, task: &dyn TrainTask) -> Option<u64> {
    let s = &meta.settings;
    let from_epochs = s.epochs.map(|e| {
        ((e * task.epoch_items() as f64) / task.batch_items().max(1) as f64)
            .ceil()
            .max(1.0) as u64
    });
    match (s.steps, from_epochs) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Writes extra files into a checkpoint being saved (its staging directory, before it is
/// published), given the training and validation losses so far: the binary writes the loss
/// curve `loss.svg` with `lstm::pages::plot::loss_curve`.
pub type ExtraFiles<'a> = &'a dyn Fn(&Path, &[(u64, f32)], &[(u64, f32)]) -> Result<()>;

/// How many of the steps in `skipped` (in increasing order) run in a row up to and including
/// `step`: 0 when `step` itself was not skipped.
fn trailing_run(skipped: &[u64], step: u64) -> u32 {
    let mut n = 0u32;
    let mut want = step;
    for &s in skipped.iter().rev() {
        if s != want || want == 0 {
            break;
        }
        n += 1;
        want -= 1;
    }
    n
}

/// Trains until the budget is used up or `stop` is raised; writes checkpoints to `out`
/// (every `save_every` steps and at the end) with whatever `extra` writes beside them, each
/// one atomically ([`modeldir::save_with`]).
///
/// `stop` is checked at every step boundary: once raised, the loop validates, saves and
/// returns [`StopReason::Interrupted`]. A batch with a NaN or infinite loss or gradient never
/// updates the weights: with [`OnNonFinite::Stop`] training ends with
/// [`crate::Error::Diverged`] naming the step and the likely cause, and nothing is saved (the
/// last checkpoint stays as it was); with [`OnNonFinite::Skip`] the batch is skipped (and
/// counted as a step), up to [`MAX_CONSECUTIVE_SKIPS`] in a row.
///
/// # Errors
/// Model errors ([`crate::Error::Diverged`] included) and I/O errors while saving (the
/// previous checkpoint is then intact).
#[allow(clippy::too_many_arguments)] // the loop's inputs; `tasks::job::Job::train` bundles them
pub fn train(
    meta: &ModelMeta,
    model: &mut SequenceModel,
    state: &mut TrainingState,
    task: &mut dyn TrainTask,
    out: &Path,
    extra: ExtraFiles<'_>,
    stop: &AtomicBool,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<StopReason> {
    train_with(meta, model, state, task, out, extra, stop, on, None)
}

/// [`train`], data-parallel over the processes of `group` when it is given
/// ([`crate::tasks::parallel`]): the ranks check that they have the same settings and model
/// size, rank 0's weights are broadcast, and the ranks check that they draw the same first
/// global batch (the same data), all before any update, refusing otherwise; each step computes this rank's share of the global batch and sums the
/// gradients with one all-reduce, which also carries the stop flag (a rank's Ctrl-C stops all
/// after the same step) and the step's time (the budget in minutes is the ranks' mean). Rank
/// 0's weights are broadcast again before each checkpoint, which rank 0 alone writes. Every
/// rank's dropout draws from its own stream of the model's RNG.
///
/// # Errors
/// As [`train`]; [`Error::Config`] for ranks that disagree or a batch smaller than the number
/// of ranks; communication errors.
#[allow(clippy::too_many_arguments)]
pub fn train_with(
    meta: &ModelMeta,
    model: &mut SequenceModel,
    state: &mut TrainingState,
    task: &mut dyn TrainTask,
    out: &Path,
    extra: ExtraFiles<'_>,
    stop: &AtomicBool,
    on: &mut dyn FnMut(Event<'_>),
    mut group: Option<&mut dyn Collective>,
) -> Result<StopReason> {
    let group_size = group.as_ref().map_or(1, |g| g.size());
    let rank = group.as_ref().map_or(0, |g| g.rank());
    if let Some(g) = group.as_deref_mut() {
        // the settings and the model's size first: a broadcast between models of different
        // sizes would fail in the communication library, not with a message
        // each rank's threads are its machine's; the step a resumed run starts from must
        // agree too
        let mut settings = meta.settings.clone();
        settings.threads = 0;
        // the data files by their contents where the run recorded them (the first batches
        // alone can agree while the files differ), not by how each rank names them
        if !meta.seen.is_empty() {
            settings.data = None;
            settings.val = None;
        }
        let mut print = serde_json::to_vec(&settings).unwrap_or_default();
        print.extend(serde_json::to_vec(&meta.seen).unwrap_or_default());
        print.extend((model.store.values.len() as u64).to_le_bytes());
        print.extend(state.step.to_le_bytes());
        parallel::check_same(
            g,
            "settings, data files or checkpoints (only --threads may differ)",
            &print,
        )?;
        g.broadcast(&mut model.store.values)?;
        model.rng.set_stream(rank as u64);
    }
    let mut checked = group.is_none();
    let mut last_step_secs = 0.0f32;
    let s = meta.settings.clone();
    model.set_precision(s.precision)?;
    let steps_budget = total_steps(meta, task);
    let seconds_budget = s.minutes.map(|m| m * 60.0);
    let mut data_rng = state.data_rng.clone().unwrap_or_else(|| data_rng(s.seed));
    let fraction = |state: &TrainingState| -> f64 {
        let a = steps_budget.map_or(0.0, |n| state.step as f64 / n as f64);
        let b = seconds_budget.map_or(0.0, |t| state.seconds / t);
        a.max(b).min(1.0)
    };
    let done = |state: &TrainingState| -> bool {
        steps_budget.is_some_and(|n| state.step >= n)
            || seconds_budget.is_some_and(|t| state.seconds >= t)
    };
    let save = |model: &mut SequenceModel,
                state: &mut TrainingState,
                data_rng: &ChaCha8Rng,
                group: &mut Option<&mut dyn Collective>|
     -> Result<()> {
        let write = |model: &mut SequenceModel, state: &mut TrainingState| {
            state.model_rng = Some(model.rng.clone());
            state.data_rng = Some(data_rng.clone());
            let (train_loss, val_loss) = (state.train_loss.clone(), state.val_loss.clone());
            modeldir::save_with(out, meta, model, state, &|staging| {
                extra(staging, &train_loss, &val_loss)
            })
        };
        match group.as_deref_mut() {
            None => write(model, state),
            Some(g) => {
                // the ranks hold the same weights; this makes sure of it before rank 0 saves
                // them
                g.broadcast(&mut model.store.values)?;
                let written = if rank == 0 {
                    write(model, state)
                } else {
                    Ok(())
                };
                // every rank learns whether the checkpoint was written, so that none goes on
                // to wait for a rank 0 that stopped
                let mut failed = [f32::from(u8::from(written.is_err()))];
                g.allreduce_sum(&mut failed)?;
                match written {
                    Ok(()) if failed[0] > 0.0 => Err(Error::Io {
                        path: out.display().to_string(),
                        source: std::io::Error::other(
                            "rank 0 could not write this checkpoint (its message says why)",
                        ),
                    }),
                    r => r,
                }
            }
        }
    };
    let faults = injected_faults();
    // a resumed run goes on counting the skips in a row that end where it stopped (a probe,
    // 2026-12-07: the count began at 0 again, so a resume let 10 in a row through)
    let mut consecutive_skips = trailing_run(&state.skipped, state.step);
    let mut window_loss = 0.0f64;
    let mut window_n = 0u32;
    let mut window_items = 0u64;
    let mut window_start = Instant::now();
    let mut rate = 0.0;
    let mut last_eval = None;
    let reason = loop {
        // with several ranks the stop flag travels with the step's gradients instead
        if group.is_none() && stop.load(Ordering::SeqCst) {
            break StopReason::Interrupted;
        }
        if done(state) {
            break StopReason::Budget;
        }
        let t0 = Instant::now();
        model.optimizer.lr_scale = s.lr_schedule.scale(fraction(state));
        let batch = task.next_batch(&mut data_rng, state.data_position);
        state.data_position += 1;
        let mut step_extra = [0.0f32; 2];
        let res = if let Some(g) = group.as_deref_mut() {
            if !checked {
                // the setting, not this batch: a batch of fewer rows (a classifier's last
                // one) leaves some ranks an empty share, which they take
                if s.batch < group_size {
                    return Err(Error::Config(format!(
                        "a batch of {} rows cannot be shared among {group_size} ranks; give --batch at least {group_size} (a resumed run keeps its --batch: start at most {} ranks)",
                        s.batch, s.batch
                    )));
                }
                let mut print = Vec::new();
                print.extend(batch.tokens.iter().flat_map(|t| t.to_le_bytes()));
                print.extend(batch.dense.iter().flat_map(|t| t.to_le_bytes()));
                print.extend(batch.classes.iter().flat_map(|t| t.to_le_bytes()));
                print.extend(batch.values.iter().flat_map(|t| t.to_le_bytes()));
                parallel::check_same(g, "data (their first batches differ)", &print)?;
                checked = true;
            }
            // each rank draws this step's dropout masks from a place in its stream set by the
            // step, not by how many its earlier shares drew: shares of different sizes (a batch
            // the ranks do not divide) drew different numbers, and a resume, which starts every
            // rank where rank 0 was, then drew other masks than the run it continues (a probe,
            // 2026-12-07). 2^36 words a step (the initial weights come from a generator of
            // their own).
            model.rng.set_word_pos(u128::from(state.step + 1) << 36);
            let local = batch.rows(parallel::shard(batch.batch, rank, group_size));
            step_extra = [
                f32::from(u8::from(stop.load(Ordering::SeqCst))),
                last_step_secs,
            ];
            let r = model.train_step_reduced(&local.as_batch(), &mut step_extra, &mut |buf| {
                g.allreduce_sum(buf)
            });
            step_extra[1] /= group_size as f32;
            r
        } else if faults.contains(&(state.step + 1)) {
            Err(Error::Diverged(format!(
                "loss is NaN (injected by {FAULT_ENV})"
            )))
        } else {
            model.train_step(&batch.as_batch())
        };
        let res = match res {
            Ok(r) => {
                consecutive_skips = 0;
                r
            }
            Err(Error::Diverged(why)) => {
                let step = state.step + 1;
                let lr = lr_shown(s.lr);
                // the cause the numbers point to (a probe, 2026-12-08: a first step on data
                // near 3.4e38 blamed --lr 1e-6 and advised loosening --clip 0.01 to 1)
                let clip = if s.clip == 0.0 || s.clip > 1.0 {
                    "set --clip 1"
                } else {
                    "lower --clip"
                };
                let untouched = state.step == state.skipped.len() as u64;
                let hint = if untouched {
                    // no update has reached the weights yet: the data or the first weights
                    "no update had reached the weights yet, so the data (values so large that the sums overflow 32 bits, or that scale to such) or the initial weights are the cause, not the learning rate; look for extreme values in the data and scale them down"
                        .to_string()
                } else if let Some(limit) =
                    decay_limit(&s).filter(|&l| f64::from(s.lr) * f64::from(s.weight_decay) >= l)
                {
                    format!(
                        "the weight decay ({}) times the learning rate ({lr}) is {limit} or more, where the decay alone makes the weights grow in sign-flipping steps; lower --weight-decay and train again",
                        s.weight_decay
                    )
                } else {
                    format!(
                        "the learning rate ({lr}) is likely too high or gradient clipping too loose (--clip {}{}); lower --lr or {clip} and train again",
                        s.clip,
                        if s.clip == 0.0 { ", i.e. off" } else { "" }
                    )
                };
                if s.on_nonfinite == OnNonFinite::Stop {
                    return Err(Error::Diverged(format!(
                        "step {step}: {why}; {hint}, or pass --on-nonfinite skip to skip such batches"
                    )));
                }
                consecutive_skips += 1;
                if consecutive_skips >= MAX_CONSECUTIVE_SKIPS {
                    return Err(Error::Diverged(format!(
                        "step {step}: {why} for {consecutive_skips} batches in a row{}; {hint}",
                        if untouched {
                            ""
                        } else {
                            ", so the weights themselves have diverged"
                        }
                    )));
                }
                state.step = step;
                state.skipped.push(step);
                on(Event::Skipped { step, reason: &why });
                continue;
            }
            Err(e) => return Err(e),
        };
        state.step += 1;
        state.items_seen += batch.items;
        // with several ranks: the ranks' mean time of their previous step, the same everywhere
        // (so that a budget in minutes ends on the same step on every rank)
        state.seconds += if group.is_some() {
            f64::from(step_extra[1])
        } else {
            t0.elapsed().as_secs_f64()
        };
        last_step_secs = t0.elapsed().as_secs_f32();
        window_loss += res.loss as f64;
        window_n += 1;
        window_items += batch.items;
        let el = window_start.elapsed().as_secs_f64();
        if el > 0.5 || window_n >= 50 {
            rate = window_items as f64 / el.max(1e-9);
            state
                .train_loss
                .push((state.step, (window_loss / window_n as f64) as f32));
            window_loss = 0.0;
            window_n = 0;
            window_items = 0;
            window_start = Instant::now();
        }
        on(Event::Step {
            step: state.step,
            loss: res.loss,
            items_per_s: rate,
            fraction: fraction(state),
            seconds: state.seconds,
        });
        if state.step.is_multiple_of(s.eval_every) {
            let v = task.validate(model)?;
            state.val_loss.push((state.step, v));
            last_eval = Some(state.step);
            on(Event::Eval {
                step: state.step,
                val_loss: v,
            });
        }
        if s.sample_every > 0 && state.step.is_multiple_of(s.sample_every) {
            // a separate RNG, so samples never change the training run
            let mut srng = ChaCha8Rng::seed_from_u64(s.seed ^ state.step);
            let carry = model.carry.take();
            if let Some(text) = task.sample(model, &mut srng)? {
                on(Event::Sample {
                    step: state.step,
                    text: &text,
                });
            }
            model.carry = carry;
        }
        if s.save_every.is_some_and(|k| state.step.is_multiple_of(k)) {
            save(model, state, &data_rng, &mut group)?;
            on(Event::Saved { step: state.step });
        }
        if step_extra[0] > 0.0 {
            break StopReason::Interrupted;
        }
    };
    if last_eval != Some(state.step) && state.step > 0 {
        let v = task.validate(model)?;
        state.val_loss.push((state.step, v));
        on(Event::Eval {
            step: state.step,
            val_loss: v,
        });
    }
    if window_n > 0 {
        state
            .train_loss
            .push((state.step, (window_loss / window_n as f64) as f32));
    }
    save(model, state, &data_rng, &mut group)?;
    on(Event::Saved { step: state.step });
    Ok(reason)
}

/// The data RNG a run of seed `seed` starts from (batch sampling, shuffles, word dropout).
pub fn data_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x2545_f491_4f6c_dd1d).wrapping_add(7))
}

/// Trains `model` for `steps` batches of `task` the way [`train`] trains a new run of seed
/// `seed` with a budget of `steps` steps: the same batches, learning rates and dropout masks
/// (the model's RNG, seeded with the model), so the same weights, without validation,
/// checkpoints or events. A classifier's further models ([`crate::tasks::settings::Settings::members`])
/// are trained so.
///
/// # Errors
/// Model errors; [`Error::Diverged`] as [`train`] gives it: at the first non-finite batch with
/// [`OnNonFinite::Stop`], after [`MAX_CONSECUTIVE_SKIPS`] in a row with [`OnNonFinite::Skip`].
pub fn train_steps(
    model: &mut SequenceModel,
    task: &mut dyn TrainTask,
    seed: u64,
    steps: u64,
    schedule: crate::tasks::settings::LrSchedule,
    on_nonfinite: OnNonFinite,
    stop: &AtomicBool,
) -> Result<()> {
    let mut rng = data_rng(seed);
    let mut skips = 0u32;
    for step in 0..steps {
        if stop.load(Ordering::SeqCst) {
            return Err(Error::Interrupted);
        }
        model.optimizer.lr_scale = schedule.scale(step as f64 / steps as f64);
        let batch = task.next_batch(&mut rng, step);
        match model.train_step(&batch.as_batch()) {
            Ok(_) => skips = 0,
            Err(Error::Diverged(why)) => {
                skips += 1;
                if on_nonfinite == OnNonFinite::Stop || skips >= MAX_CONSECUTIVE_SKIPS {
                    return Err(Error::Diverged(format!(
                        "step {}: {why}; lower --lr or set --clip 1 and train again",
                        step + 1
                    )));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The product of learning rate and weight decay from which the decay alone makes the weights
/// grow: AdamW multiplies them by `1 - lr·wd` at every step (unstable from 2), SGD adds the
/// decay to the gradient before its momentum `μ` (heavy-ball: unstable from `2(1 + μ)`); Adam
/// adds it to the gradient, which its step then normalises (`None`: no such limit). The
/// reviews of 2026-12-08 found 1 and 2 given for all three.
fn decay_limit(s: &crate::tasks::settings::Settings) -> Option<f64> {
    match s.optimizer {
        OptimizerKind::Adam => None,
        OptimizerKind::Adamw => Some(2.0),
        OptimizerKind::Sgd => Some(2.0 * (1.0 + f64::from(s.momentum))),
    }
}

/// A learning rate as a message shows it: plainly from 1e-4 to 1e4, else in exponent form
/// (`1e30`, not thirty-one digits).
pub(crate) fn lr_shown(lr: f32) -> String {
    if (1e-4..1e4).contains(&lr) {
        lr.to_string()
    } else {
        format!("{lr:e}")
    }
}
