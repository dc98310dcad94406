//! Data-parallel training (`tasks::parallel`, `train::train_with`) with threads standing in for
//! MPI ranks: N ranks with a global batch B end with the weights of one process with batch B
//! (within float rounding: the ranks sum partial gradients in another order), every rank with
//! exactly the same weights; ranks that disagree are refused before any update; a stop on one
//! rank stops all after the same step.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use lstm::model::{Head, InputKind, ModelConfig, SequenceModel};
use lstm::tasks::job;
use lstm::tasks::modeldir::TrainingState;
use lstm::tasks::parallel::{shard, Collective, ThreadGroup};
use lstm::tasks::train::{self, OwnedBatch, StopReason, TrainTask};
use lstm::{Settings, Task};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Sequences of 3 features whose target at each step is a fixed function of the inputs so far,
/// with variable lengths (so that the ranks' shares count different numbers of targets).
struct Toy {
    batch: usize,
    offset: f32,
}

impl TrainTask for Toy {
    fn epoch_items(&self) -> u64 {
        1000
    }
    fn batch_items(&self) -> u64 {
        self.batch as u64
    }
    fn next_batch(&mut self, rng: &mut ChaCha8Rng, _position: u64) -> OwnedBatch {
        let (b, t) = (self.batch, 6);
        let dense: Vec<f32> = (0..b * t * 3).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let lengths: Vec<usize> = (0..b).map(|_| rng.gen_range(1..=t)).collect();
        let mut values = vec![f32::NAN; b * t];
        for r in 0..b {
            let mut acc = self.offset;
            for s in 0..lengths[r] {
                let x = &dense[(r * t + s) * 3..(r * t + s) * 3 + 3];
                acc = 0.5 * acc + x[0] - 0.3 * x[1] * x[2];
                values[r * t + s] = acc;
            }
        }
        OwnedBatch {
            dense,
            values,
            batch: b,
            seq_len: t,
            lengths: Some(lengths),
            items: b as u64,
            distribution: Some(lstm::model::loss::Distribution::Gaussian),
            ..Default::default()
        }
    }
    fn validate(&mut self, _model: &mut SequenceModel) -> lstm::Result<f32> {
        Ok(0.0)
    }
}

fn setup(steps: u64) -> (lstm::tasks::modeldir::ModelMeta, SequenceModel) {
    let cfg = ModelConfig {
        input: InputKind::Dense { features: 3 },
        hidden_size: 12,
        num_layers: 2,
        head: Head::PerStep { outputs: 2 },
        ..Default::default()
    };
    let mut s = Settings::defaults(Task::Forecast);
    s.steps = Some(steps);
    s.eval_every = 1000;
    s.save_every = None;
    s.sample_every = 0;
    let model = SequenceModel::new(&cfg, 7).unwrap();
    (job::meta(Task::Forecast, &cfg, &s), model)
}

fn out_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "lstm-parallel-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Trains `ranks` threads (or one process when `ranks` is 0) and returns each rank's weights.
fn run(ranks: usize, batch: usize, steps: u64, offsets: &[f32]) -> Vec<lstm::Result<Vec<f32>>> {
    if ranks == 0 {
        let (meta, mut model) = setup(steps);
        let mut state = TrainingState::default();
        let mut task = Toy {
            batch,
            offset: offsets[0],
        };
        let out = out_dir("single");
        let r = train::train(
            &meta,
            &mut model,
            &mut state,
            &mut task,
            &out,
            &|_, _, _| Ok(()),
            &AtomicBool::new(false),
            &mut |_| {},
        );
        let _ = std::fs::remove_dir_all(&out);
        return vec![r.map(|_| model.store.values.clone())];
    }
    let groups = ThreadGroup::new(ranks);
    std::thread::scope(|sc| {
        let handles: Vec<_> = groups
            .into_iter()
            .enumerate()
            .map(|(r, mut g)| {
                let offset = offsets[r.min(offsets.len() - 1)];
                sc.spawn(move || {
                    let (mut meta, mut model) = setup(steps);
                    meta.settings.batch = batch;
                    // rank 0's weights are broadcast: the others start from other ones here
                    if r > 0 {
                        model.store.values.iter_mut().for_each(|v| *v += 0.5);
                    }
                    let mut state = TrainingState::default();
                    let mut task = Toy { batch, offset };
                    let out = out_dir("rank");
                    let res = train::train_with(
                        &meta,
                        &mut model,
                        &mut state,
                        &mut task,
                        &out,
                        &|_, _, _| Ok(()),
                        &AtomicBool::new(false),
                        &mut |_| {},
                        Some(&mut g as &mut dyn Collective),
                    );
                    // only rank 0 writes the checkpoint
                    assert_eq!(out.join("config.json").exists(), r == 0 && res.is_ok());
                    let _ = std::fs::remove_dir_all(&out);
                    res.map(|_| model.store.values.clone())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn ranks_end_with_the_weights_of_one_process_with_the_same_global_batch() {
    let one = run(0, 9, 25, &[0.0]).pop().unwrap().unwrap();
    for ranks in [2, 3] {
        let all = run(ranks, 9, 25, &[0.0]);
        let w0 = all[0].as_ref().unwrap();
        for w in &all[1..] {
            let w = w.as_ref().unwrap();
            assert!(
                w.iter().zip(w0).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{ranks} ranks: the ranks' weights differ"
            );
        }
        let worst = w0
            .iter()
            .zip(&one)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let moved = w0
            .iter()
            .zip(&setup(1).1.store.values)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(moved > 1e-2, "training moved the weights by only {moved}");
        assert!(
            worst < 2e-5,
            "{ranks} ranks: weights differ from one process by {worst}"
        );
    }
}

#[test]
fn ranks_with_different_data_are_refused_before_any_update() {
    for r in run(2, 8, 5, &[0.0, 1.0]) {
        let e = r.unwrap_err().to_string();
        assert!(e.contains("different data"), "{e}");
    }
    for r in run(3, 2, 5, &[0.0]) {
        let e = r.unwrap_err().to_string();
        assert!(e.contains("at least 3"), "{e}");
    }
}

#[test]
fn shards_cover_the_batch_once() {
    for b in 1..40 {
        for n in 1..=b.min(9) {
            let rows: Vec<usize> = (0..n).flat_map(|r| shard(b, r, n)).collect();
            assert_eq!(rows, (0..b).collect::<Vec<_>>());
            assert!((0..n).all(|r| !shard(b, r, n).is_empty()));
        }
    }
}

#[test]
fn a_stop_on_one_rank_stops_every_rank_after_the_same_step() {
    let groups = ThreadGroup::new(2);
    let steps: Vec<(u64, StopReason)> = std::thread::scope(|sc| {
        let hs: Vec<_> = groups
            .into_iter()
            .enumerate()
            .map(|(r, mut g)| {
                sc.spawn(move || {
                    let (meta, mut model) = setup(1_000_000);
                    let mut state = TrainingState::default();
                    let mut task = Toy {
                        batch: 4,
                        offset: 0.0,
                    };
                    let stop = AtomicBool::new(false);
                    let out = out_dir("stop");
                    let reason = train::train_with(
                        &meta,
                        &mut model,
                        &mut state,
                        &mut task,
                        &out,
                        &|_, _, _| Ok(()),
                        &stop,
                        &mut |e| {
                            if let train::Event::Step { step, .. } = e {
                                if r == 1 && step == 17 {
                                    stop.store(true, Ordering::SeqCst);
                                }
                            }
                        },
                        Some(&mut g as &mut dyn Collective),
                    )
                    .unwrap();
                    let _ = std::fs::remove_dir_all(&out);
                    (state.step, reason)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(steps[0], steps[1]);
    assert_eq!(steps[0].1, StopReason::Interrupted);
    assert_eq!(
        steps[0].0, 18,
        "the stop raised after step 17 travels with step 18"
    );
}

#[test]
fn ranks_with_different_settings_or_model_sizes_are_refused() {
    let groups = ThreadGroup::new(2);
    let errors: Vec<String> = std::thread::scope(|sc| {
        let hs: Vec<_> = groups
            .into_iter()
            .enumerate()
            .map(|(r, mut g)| {
                sc.spawn(move || {
                    // rank 1 trains for more steps and a larger model
                    let (meta, mut model) = setup(10 + r as u64);
                    if r == 1 {
                        model = SequenceModel::new(
                            &ModelConfig {
                                hidden_size: 20,
                                ..model.config().clone()
                            },
                            7,
                        )
                        .unwrap();
                    }
                    let mut state = TrainingState::default();
                    let mut task = Toy {
                        batch: 4,
                        offset: 0.0,
                    };
                    let out = out_dir("settings");
                    let e = train::train_with(
                        &meta,
                        &mut model,
                        &mut state,
                        &mut task,
                        &out,
                        &|_, _, _| Ok(()),
                        &AtomicBool::new(false),
                        &mut |_| {},
                        Some(&mut g as &mut dyn Collective),
                    )
                    .unwrap_err();
                    assert_eq!(state.step, 0);
                    assert!(!out.exists());
                    e.to_string()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for e in errors {
        assert!(e.contains("different settings"), "{e}");
    }
}

#[test]
fn a_checkpoint_rank_0_cannot_write_stops_every_rank() {
    // rank 0's second checkpoint (step 10) fails; the other rank used to go on to step 11 and
    // wait for it forever. A watchdog turns such a hang into a failure.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let groups = ThreadGroup::new(2);
        let results: Vec<(u64, String)> = std::thread::scope(|sc| {
            let hs: Vec<_> = groups
                .into_iter()
                .enumerate()
                .map(|(r, mut g)| {
                    sc.spawn(move || {
                        let (mut meta, mut model) = setup(20);
                        meta.settings.save_every = Some(5);
                        let mut state = TrainingState::default();
                        let mut task = Toy {
                            batch: 4,
                            offset: 0.0,
                        };
                        let out = out_dir("save-fails");
                        let saves = AtomicU64::new(0);
                        let e = train::train_with(
                            &meta,
                            &mut model,
                            &mut state,
                            &mut task,
                            &out,
                            &|_, _, _| {
                                if saves.fetch_add(1, Ordering::SeqCst) == 1 {
                                    return Err(lstm::Error::Io {
                                        path: "loss.svg".into(),
                                        source: std::io::Error::other("no space left"),
                                    });
                                }
                                Ok(())
                            },
                            &AtomicBool::new(false),
                            &mut |_| {},
                            Some(&mut g as &mut dyn Collective),
                        )
                        .unwrap_err();
                        // rank 0's first checkpoint is whole
                        if r == 0 {
                            assert!(out.join("config.json").exists());
                        }
                        let _ = std::fs::remove_dir_all(&out);
                        (state.step, e.to_string())
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let _ = tx.send(results);
    });
    let results = match rx.recv_timeout(std::time::Duration::from_secs(120)) {
        Ok(r) => r,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("a rank waited for rank 0 after its checkpoint failed")
        }
        Err(e) => panic!("a rank failed (its panic is above): {e}"),
    };
    assert_eq!(results[0].0, 10);
    assert_eq!(results[1].0, 10);
    assert!(results[0].1.contains("no space left"), "{}", results[0].1);
    assert!(
        results[1].1.contains("rank 0 could not write"),
        "{}",
        results[1].1
    );
}
