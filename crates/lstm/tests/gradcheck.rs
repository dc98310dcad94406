//! Central-difference gradient checks: every cell and variant, combined with bidirectional
//! layers, projection, variable lengths, batch-first input and dropout; and the whole model
//! (embedding, one-hot input, heads, losses).
//!
//! The loss is `sum(output ⊙ dout) + sum(h_n ⊙ dh_n) + sum(c_n ⊙ dc_n)` for random fixed `dout`,
//! `dh_n`, `dc_n`, as in the conformance cases. Every parameter, input and initial-state entry
//! is perturbed by `±EPS` and the difference quotient compared with the analytic gradient.

#![allow(clippy::needless_range_loop)]

use lstm::cell::Mode;
use lstm::kernels::with_threads;
use lstm::model::{Batch, Head, InputKind, Inputs, ModelConfig, SequenceModel, Targets};
use lstm::params::ParamStore;
use lstm::recurrent::{
    Input, Recurrent, RecurrentCache, RecurrentConfig, RecurrentState, SequenceBatch,
};
use lstm::testing::with_team_min_weights;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const EPS: f32 = 1e-2;

fn close(num: f64, ana: f32) -> bool {
    (num - ana as f64).abs() <= 4e-3 + 3e-2 * (ana as f64).abs()
}

fn rand_vec(rng: &mut ChaCha8Rng, n: usize, a: f32) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-a..a)).collect()
}

struct Case {
    cfg: RecurrentConfig,
    t: usize,
    b: usize,
    lengths: Option<Vec<usize>>,
    dropout_seed: Option<u64>,
}

fn run_case(case: &Case) {
    let cfg = &case.cfg;
    // ReLU has a kink at 0: a smaller step keeps the difference quotient on one side of it.
    let eps = if cfg.mode == Mode::RnnRelu { 1e-3 } else { EPS };
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut store = ParamStore::default();
    let rnn = Recurrent::new(cfg.clone(), &mut store, "", &mut rng).unwrap();
    // random weights large enough to exercise the nonlinearities, peepholes included
    let w = rand_vec(&mut rng, store.len(), 0.6);
    store.values.copy_from_slice(&w);
    let (t, b) = (case.t, case.b);
    let (dn, ln, h, p) = (
        cfg.directions(),
        cfg.num_layers,
        cfg.hidden_size,
        cfg.hidden_out(),
    );
    let x = rand_vec(&mut rng, t * b * cfg.input_size, 1.0);
    let lstm_mode = cfg.mode == Mode::Lstm;
    let init = RecurrentState {
        h: rand_vec(&mut rng, dn * ln * b * p, 0.5),
        c: if lstm_mode {
            rand_vec(&mut rng, dn * ln * b * h, 0.5)
        } else {
            vec![]
        },
    };
    let dout = rand_vec(&mut rng, t * b * dn * p, 1.0);
    let d_final = RecurrentState {
        h: rand_vec(&mut rng, init.h.len(), 1.0),
        c: rand_vec(&mut rng, init.c.len(), 1.0),
    };
    let lens = case.lengths.as_deref();
    let loss =
        |params: &[f32], x: &[f32], init: &RecurrentState, cache: &mut RecurrentCache| -> f64 {
            let mut drng = case.dropout_seed.map(ChaCha8Rng::seed_from_u64);
            rnn.forward(
                params,
                SequenceBatch {
                    lengths: lens,
                    dropout_rng: drng.as_mut(),
                    ..SequenceBatch::new(Input::Dense(x), t, b).with_initial_state(init)
                },
                cache,
            )
            .unwrap();
            let s = cache.final_state();
            let dot = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| *x as f64 * *y as f64)
                    .sum::<f64>()
            };
            dot(cache.output(), &dout) + dot(&s.h, &d_final.h) + dot(&s.c, &d_final.c)
        };
    let mut cache = RecurrentCache::default();
    loss(&store.values, &x, &init, &mut cache);
    rnn.backward(
        &store.values,
        &mut store.grads,
        &mut cache,
        &dout,
        Some(&d_final),
    )
    .unwrap();
    let grads = store.grads.clone();
    let d_input = cache.d_input().to_vec();
    let d_init = cache.d_initial_state().clone();

    let mut failures = Vec::new();
    // parameters
    for info in store.tensors().to_vec() {
        for k in info.range() {
            let mut pv = store.values.clone();
            pv[k] += eps;
            let up = loss(&pv, &x, &init, &mut cache);
            pv[k] -= 2.0 * eps;
            let down = loss(&pv, &x, &init, &mut cache);
            let num = (up - down) / (2.0 * eps as f64);
            if !close(num, grads[k]) {
                failures.push(format!(
                    "{}[{}]: numeric {num:.5} analytic {:.5}",
                    info.name,
                    k - info.offset,
                    grads[k]
                ));
            }
        }
    }
    // inputs
    for k in 0..x.len() {
        let mut xv = x.clone();
        xv[k] += eps;
        let up = loss(&store.values, &xv, &init, &mut cache);
        xv[k] -= 2.0 * eps;
        let down = loss(&store.values, &xv, &init, &mut cache);
        let num = (up - down) / (2.0 * eps as f64);
        if !close(num, d_input[k]) {
            failures.push(format!(
                "input[{k}]: numeric {num:.5} analytic {:.5}",
                d_input[k]
            ));
        }
    }
    // initial states
    for (which, len) in [("h0", init.h.len()), ("c0", init.c.len())] {
        for k in 0..len {
            let mut s = init.clone();
            let v = if which == "h0" { &mut s.h } else { &mut s.c };
            v[k] += eps;
            let up = loss(&store.values, &x, &s, &mut cache);
            let v = if which == "h0" { &mut s.h } else { &mut s.c };
            v[k] -= 2.0 * eps;
            let down = loss(&store.values, &x, &s, &mut cache);
            let num = (up - down) / (2.0 * eps as f64);
            let ana = if which == "h0" {
                d_init.h[k]
            } else {
                d_init.c[k]
            };
            if !close(num, ana) {
                failures.push(format!("{which}[{k}]: numeric {num:.5} analytic {ana:.5}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{:?}: {} mismatches, first: {:#?}",
        cfg,
        failures.len(),
        &failures[..failures.len().min(8)]
    );
}

fn base(mode: Mode) -> RecurrentConfig {
    RecurrentConfig {
        mode,
        input_size: 3,
        hidden_size: 4,
        ..Default::default()
    }
}

fn case(cfg: RecurrentConfig) -> Case {
    Case {
        cfg,
        t: 4,
        b: 3,
        lengths: None,
        dropout_seed: None,
    }
}

#[test]
fn every_cell_plain() {
    for mode in [Mode::Lstm, Mode::Gru, Mode::RnnTanh, Mode::RnnRelu] {
        run_case(&case(base(mode)));
    }
}

#[test]
fn lstm_variants() {
    for (peephole, coupled) in [(true, false), (false, true), (true, true)] {
        let cfg = RecurrentConfig {
            peephole,
            coupled,
            ..base(Mode::Lstm)
        };
        run_case(&case(cfg));
    }
}

#[test]
fn every_cell_bidirectional_two_layers_variable_lengths_batch_first() {
    for mode in [Mode::Lstm, Mode::Gru, Mode::RnnTanh] {
        let cfg = RecurrentConfig {
            num_layers: 2,
            bidirectional: true,
            batch_first: true,
            ..base(mode)
        };
        run_case(&Case {
            lengths: Some(vec![2, 4, 3]),
            ..case(cfg)
        });
    }
}

#[test]
fn lstm_variants_bidirectional_projection_variable_lengths() {
    for (peephole, coupled) in [(false, false), (true, false), (false, true), (true, true)] {
        let cfg = RecurrentConfig {
            peephole,
            coupled,
            num_layers: 2,
            bidirectional: true,
            proj_size: 2,
            ..base(Mode::Lstm)
        };
        run_case(&Case {
            lengths: Some(vec![3, 1, 4]),
            ..case(cfg)
        });
    }
}

/// Sequences long enough (370 rows in one chunk) that the backward pass computes the weight
/// and input gradients in several blocks of rows inside its time loop, in both directions and
/// for a dense input (the second layer), with variable lengths.
#[test]
fn long_sequences_weight_gradients_in_blocks() {
    for mode in [Mode::Lstm, Mode::Gru, Mode::RnnTanh] {
        let cfg = RecurrentConfig {
            num_layers: 2,
            bidirectional: true,
            hidden_size: 3,
            input_size: 2,
            ..base(mode)
        };
        let c = Case {
            t: 100,
            b: 4,
            lengths: Some(vec![100, 80, 90, 100]),
            ..case(cfg)
        };
        with_threads(1, || run_case(&c));
    }
}

/// LSTM layer directions run by two threads that split the units (odd `H` too), forced on
/// for these small layers with `recurrent::with_team_min_weights(0)`.
#[test]
fn lstm_units_split_over_two_threads() {
    let cases = [
        case(base(Mode::Lstm)),
        case(RecurrentConfig {
            hidden_size: 5,
            peephole: true,
            ..base(Mode::Lstm)
        }),
        case(RecurrentConfig {
            coupled: true,
            bias: false,
            ..base(Mode::Lstm)
        }),
        Case {
            lengths: Some(vec![2, 4, 3]),
            dropout_seed: Some(3),
            ..case(RecurrentConfig {
                num_layers: 2,
                bidirectional: true,
                batch_first: true,
                dropout: 0.3,
                ..base(Mode::Lstm)
            })
        },
    ];
    for c in &cases {
        with_threads(2, || with_team_min_weights(0, || run_case(c)));
    }
}

#[test]
fn no_bias_and_dropout_masks() {
    for mode in [Mode::Lstm, Mode::Gru, Mode::RnnTanh] {
        let cfg = RecurrentConfig {
            num_layers: 2,
            bias: false,
            dropout: 0.3,
            recurrent_dropout: 0.4,
            bidirectional: mode == Mode::Lstm,
            ..base(mode)
        };
        run_case(&Case {
            lengths: Some(vec![4, 2, 3]),
            dropout_seed: Some(5),
            ..case(cfg.clone())
        });
        // on one thread the shorter sequences share lanes (4 | 3 + 1 | 2 + 2), each with its
        // own recurrent dropout mask
        with_threads(1, || {
            run_case(&Case {
                b: 5,
                lengths: Some(vec![4, 1, 3, 2, 2]),
                dropout_seed: Some(6),
                ..case(cfg)
            })
        });
    }
}

/// The whole model: one-hot and embedding input, per-step cross-entropy and last-step MSE,
/// bidirectional last-step head with variable lengths, head dropout, and a per-step head on a
/// variable-length batch (which then runs on the real positions only).
#[test]
fn model_parameters() {
    model_parameters_check();
}

/// The same models with every LSTM layer direction run by two threads splitting the units
/// (`recurrent::with_team_min_weights(0)`; by default only large layers do).
#[test]
fn model_parameters_units_split_over_two_threads() {
    with_threads(2, || with_team_min_weights(0, model_parameters_check));
}

fn model_parameters_check() {
    let configs = [
        ModelConfig {
            input: InputKind::OneHot { vocab: 5 },
            hidden_size: 4,
            num_layers: 2,
            head: Head::PerStep { outputs: 5 },
            ..Default::default()
        },
        ModelConfig {
            input: InputKind::Embedding { vocab: 5, dim: 3 },
            mode: Mode::Gru,
            hidden_size: 4,
            head: Head::PerStep { outputs: 5 },
            ..Default::default()
        },
        ModelConfig {
            input: InputKind::Dense { features: 2 },
            hidden_size: 4,
            bidirectional: true,
            proj_size: 3,
            head: Head::LastStep { outputs: 2 },
            ..Default::default()
        },
        ModelConfig {
            input: InputKind::Embedding { vocab: 6, dim: 3 },
            hidden_size: 4,
            bidirectional: true,
            head_dropout: 0.3,
            dropout: 0.2,
            num_layers: 2,
            head: Head::LastStep { outputs: 3 },
            ..Default::default()
        },
        ModelConfig {
            input: InputKind::OneHot { vocab: 5 },
            hidden_size: 4,
            num_layers: 2,
            head_dropout: 0.3,
            head: Head::PerStep { outputs: 5 },
            ..Default::default()
        },
    ];
    for (ci, cfg) in configs.iter().enumerate() {
        let mut model = SequenceModel::new(cfg, 3).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(ci as u64);
        let (b, t) = (3, 4);
        let tokens: Vec<u32> = (0..b * t).map(|_| rng.gen_range(0..5)).collect();
        let dense = rand_vec(&mut rng, b * t * 2, 1.0);
        let lengths = [4usize, 2, 3];
        let (class_targets, value_targets): (Vec<u32>, Vec<f32>) = match cfg.head {
            Head::PerStep { outputs } => (
                (0..b * t)
                    .map(|_| rng.gen_range(0..outputs as u32))
                    .collect(),
                vec![],
            ),
            Head::LastStep { outputs } | Head::Pooled { outputs } => (
                (0..b).map(|_| rng.gen_range(0..outputs as u32)).collect(),
                rand_vec(&mut rng, b * outputs, 1.0),
            ),
        };
        let inputs = match cfg.input {
            InputKind::Dense { .. } => Inputs::Dense(&dense),
            _ => Inputs::Tokens(&tokens),
        };
        let targets = match cfg.input {
            InputKind::Dense { .. } => Targets::Values(&value_targets),
            _ => Targets::Classes(&class_targets),
        };
        let var_len = matches!(cfg.head, Head::LastStep { .. }) || ci == 4;
        let batch = Batch {
            inputs,
            targets,
            batch: b,
            seq_len: t,
            lengths: var_len.then_some(&lengths[..]),
        };
        let train = cfg.dropout > 0.0 || cfg.head_dropout > 0.0;
        let eval = |model: &mut SequenceModel| -> f64 {
            model.rng = ChaCha8Rng::seed_from_u64(99);
            model.loss_and_grad(&batch, train).unwrap().loss as f64
        };
        eval(&mut model);
        let grads = model.store.grads.clone();
        let mut failures = Vec::new();
        for info in model.store.tensors().to_vec() {
            for k in info.range() {
                let orig = model.store.values[k];
                model.store.values[k] = orig + EPS;
                let up = eval(&mut model);
                model.store.values[k] = orig - EPS;
                let down = eval(&mut model);
                model.store.values[k] = orig;
                let num = (up - down) / (2.0 * EPS as f64);
                if !close(num, grads[k]) {
                    failures.push(format!(
                        "{}[{}]: numeric {num:.5} analytic {:.5}",
                        info.name,
                        k - info.offset,
                        grads[k]
                    ));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "model config {ci}: {} mismatches: {:#?}",
            failures.len(),
            &failures[..failures.len().min(8)]
        );
    }
}

/// Distribution heads on `Targets::Distribution`: a per-step Gaussian head, a per-step
/// Student-t head on a variable-length batch with NaN (masked) values, a last-step
/// Student-t head, and negative binomial heads (per-step with masked values, last-step) whose
/// counts are read with a scale per row; every parameter against central differences of the
/// mean NLL.
#[test]
fn model_distribution_heads() {
    use lstm::model::loss::Distribution;
    let cases = [
        (Distribution::Gaussian, true, false),
        (Distribution::StudentT, true, true),
        (Distribution::StudentT, false, true),
        (Distribution::NegativeBinomial, true, true),
        (Distribution::NegativeBinomial, false, false),
    ];
    for (ci, &(dist, per_step, var_len)) in cases.iter().enumerate() {
        let outputs = dist.params();
        let cfg = ModelConfig {
            input: InputKind::Dense { features: 2 },
            hidden_size: 4,
            head: if per_step {
                Head::PerStep { outputs }
            } else {
                Head::LastStep { outputs }
            },
            ..Default::default()
        };
        let mut model = SequenceModel::new(&cfg, 5).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(20 + ci as u64);
        let (b, t) = (3, 4);
        let x = rand_vec(&mut rng, b * t * 2, 1.0);
        let rows = if per_step { b * t } else { b };
        let mut values = rand_vec(&mut rng, rows, 1.5);
        // the negative binomial's rows: counts 0..=12 over scales from 0.5 to 8
        let scales: Vec<f32> = (0..rows).map(|r| [0.5f32, 2.0, 8.0][r % 3]).collect();
        if dist.needs_scale() {
            for (v, s) in values.iter_mut().zip(&scales) {
                *v = rng.gen_range(0..=12u32) as f32 / s;
            }
        }
        if var_len && per_step {
            values[1] = f32::NAN;
            values[5] = f32::NAN;
        }
        let lengths = [4usize, 2, 3];
        let batch = Batch {
            inputs: Inputs::Dense(&x),
            targets: Targets::Distribution {
                values: &values,
                dist,
                scales: dist.needs_scale().then_some(&scales[..]),
            },
            batch: b,
            seq_len: t,
            lengths: var_len.then_some(&lengths[..]),
        };
        let eval = |model: &mut SequenceModel| -> f64 {
            let out = model.loss_and_grad(&batch, false).unwrap();
            if var_len && per_step {
                // 4 + 2 + 3 real positions, two of them NaN
                assert_eq!(out.count, 7);
            }
            out.loss as f64
        };
        eval(&mut model);
        let grads = model.store.grads.clone();
        let mut failures = Vec::new();
        for info in model.store.tensors().to_vec() {
            for k in info.range() {
                let orig = model.store.values[k];
                model.store.values[k] = orig + EPS;
                let up = eval(&mut model);
                model.store.values[k] = orig - EPS;
                let down = eval(&mut model);
                model.store.values[k] = orig;
                let num = (up - down) / (2.0 * EPS as f64);
                if !close(num, grads[k]) {
                    failures.push(format!(
                        "{}[{}]: numeric {num:.5} analytic {:.5}",
                        info.name,
                        k - info.offset,
                        grads[k]
                    ));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "distribution case {ci} ({dist:?}): {} mismatches: {:#?}",
            failures.len(),
            &failures[..failures.len().min(8)]
        );
    }
}

/// Dense input with a learned embedding of each sequence's id (`InputKind::DenseWithIds`,
/// the global forecaster's series embedding) under a per-step Student-t head: every parameter,
/// `id_embedding.weight` included, against central differences of the mean NLL, on a full
/// batch and on a variable-length one with NaN values. Ids repeat within the batch (their
/// rows gather several sequences' gradients) and one id is absent (its row's gradient is 0).
#[test]
fn model_dense_with_ids() {
    use lstm::model::loss::Distribution;
    let dist = Distribution::StudentT;
    for (ci, var_len) in [false, true].into_iter().enumerate() {
        let cfg = ModelConfig {
            input: InputKind::DenseWithIds {
                features: 2,
                ids: 4,
                dim: 3,
            },
            hidden_size: 4,
            num_layers: 2,
            head: Head::PerStep {
                outputs: dist.params(),
            },
            ..Default::default()
        };
        let mut model = SequenceModel::new(&cfg, 11).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(40 + ci as u64);
        let (b, t) = (3, 4);
        let x = rand_vec(&mut rng, b * t * 2, 1.0);
        let ids = [2u32, 0, 2];
        let mut values = rand_vec(&mut rng, b * t, 1.5);
        if var_len {
            values[1] = f32::NAN;
            values[5] = f32::NAN;
        }
        let lengths = [4usize, 2, 3];
        let batch = Batch {
            inputs: Inputs::DenseWithIds { x: &x, ids: &ids },
            targets: Targets::Distribution {
                values: &values,
                dist,
                scales: None,
            },
            batch: b,
            seq_len: t,
            lengths: var_len.then_some(&lengths[..]),
        };
        let eval = |model: &mut SequenceModel| -> f64 {
            model.loss_and_grad(&batch, false).unwrap().loss as f64
        };
        eval(&mut model);
        let grads = model.store.grads.clone();
        let emb = model.store.info("id_embedding.weight").unwrap().clone();
        assert_eq!(emb.shape, vec![4, 3]);
        let g = &grads[emb.range()];
        // rows 0 and 2 are read, row 1 (and 3) not
        assert!(
            g[..3].iter().chain(&g[6..9]).all(|v| v.abs() > 1e-6),
            "{g:?}"
        );
        assert!(g[3..6].iter().chain(&g[9..]).all(|&v| v == 0.0), "{g:?}");
        let mut failures = Vec::new();
        for info in model.store.tensors().to_vec() {
            for k in info.range() {
                let orig = model.store.values[k];
                model.store.values[k] = orig + EPS;
                let up = eval(&mut model);
                model.store.values[k] = orig - EPS;
                let down = eval(&mut model);
                model.store.values[k] = orig;
                let num = (up - down) / (2.0 * EPS as f64);
                // the id rows' gradients are small (a mean over the values, through two
                // layers): held to a tighter absolute tolerance
                let tight = info.name == "id_embedding.weight"
                    && (num - grads[k] as f64).abs() > 1e-4 + 3e-2 * (grads[k] as f64).abs();
                if !close(num, grads[k]) || tight {
                    failures.push(format!(
                        "{}[{}]: numeric {num:.6} analytic {:.6}",
                        info.name,
                        k - info.offset,
                        grads[k]
                    ));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "dense-with-ids case {ci}: {} mismatches: {:#?}",
            failures.len(),
            &failures[..failures.len().min(8)]
        );
        // a sequence's output depends on its id's row only through that row: the same
        // features with another id give other outputs
        let a = model
            .predict(Inputs::DenseWithIds { x: &x, ids: &ids }, b, t, None)
            .unwrap()
            .to_vec();
        let other = [1u32, 0, 2];
        let c = model
            .predict(Inputs::DenseWithIds { x: &x, ids: &other }, b, t, None)
            .unwrap()
            .to_vec();
        let per_seq = t * dist.params();
        assert_ne!(a[..per_seq], c[..per_seq]);
        assert_eq!(a[per_seq..], c[per_seq..]);
    }
}

/// An id outside the embedding, a wrong id count, or ids given to a model without an id
/// embedding are errors, never a panic.
#[test]
fn model_dense_with_ids_rejects_bad_ids() {
    use lstm::error::Error;
    let cfg = ModelConfig {
        input: InputKind::DenseWithIds {
            features: 2,
            ids: 3,
            dim: 2,
        },
        hidden_size: 4,
        head: Head::PerStep { outputs: 1 },
        ..Default::default()
    };
    let mut model = SequenceModel::new(&cfg, 1).unwrap();
    let x = vec![0.5f32; 2 * 3 * 2];
    let y = vec![0.0f32; 2 * 3];
    for (ids, index) in [(&[0u32, 3][..], true), (&[0u32][..], false)] {
        let batch = Batch {
            inputs: Inputs::DenseWithIds { x: &x, ids },
            targets: Targets::Values(&y),
            batch: 2,
            seq_len: 3,
            lengths: None,
        };
        let e = model.train_step(&batch).unwrap_err();
        assert_eq!(matches!(e, Error::Index(_)), index, "{e:?}");
        let e = model.predict(batch.inputs, 2, 3, None).unwrap_err();
        assert_eq!(matches!(e, Error::Index(_)), index, "{e:?}");
    }
    // features without ids, and ids for a dense model
    assert!(model.predict(Inputs::Dense(&x), 2, 3, None).is_err());
    let mut dense = SequenceModel::new(
        &ModelConfig {
            input: InputKind::Dense { features: 2 },
            ..cfg.clone()
        },
        1,
    )
    .unwrap();
    assert!(dense
        .predict(
            Inputs::DenseWithIds {
                x: &x,
                ids: &[0, 1]
            },
            2,
            3,
            None
        )
        .is_err());
    // a zero-sized embedding is a configuration error
    let zero = ModelConfig {
        input: InputKind::DenseWithIds {
            features: 2,
            ids: 3,
            dim: 0,
        },
        ..cfg
    };
    assert!(matches!(
        SequenceModel::new(&zero, 1),
        Err(Error::Config(_))
    ));
}
