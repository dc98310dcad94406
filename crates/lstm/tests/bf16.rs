//! Mixed-precision training (`Precision::Bf16`): the products take bf16 inputs with `f32` sums.
//!
//! - the forward pass of a plain LSTM equals a naive reference that rounds each product's
//!   inputs to bf16 and sums in `f64` (so the products are the ones claimed, and nothing else
//!   is rounded);
//! - for every cell and variant (layers, directions, variable lengths, one-hot input, dropout,
//!   projection, peepholes, one and two threads), outputs and gradients are within bf16's
//!   error of the `f32` path's (itself held to central differences in `gradcheck.rs`), and
//!   not equal to them (the bf16 path did run);
//! - the same run twice gives the same bits; a model learns a small task as in `f32`.
//!
//! On a CPU with neither AMX nor AVX-512 BF16 the tests check the error and skip the rest.

mod common;

use common::rel_err;
use lstm::cell::Mode;
use lstm::kernels::amx::Bf16Backend;
use lstm::kernels::{from_bf16, to_bf16, with_threads, Precision};
use lstm::model::{Batch, Head, InputKind, Inputs, ModelConfig, SequenceModel, Targets};
use lstm::params::ParamStore;
use lstm::recurrent::{Input, Recurrent, RecurrentCache, RecurrentConfig, SequenceBatch};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rand_vec(rng: &mut ChaCha8Rng, n: usize, a: f32) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-a..a)).collect()
}

/// Whether this CPU runs bf16 products; if not, checks that asking for them is refused.
fn bf16_here() -> bool {
    if Bf16Backend::best() != Bf16Backend::Scalar {
        return true;
    }
    let mut store = ParamStore::default();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let cfg = RecurrentConfig {
        input_size: 2,
        hidden_size: 3,
        ..Default::default()
    };
    let mut rnn = Recurrent::new(cfg, &mut store, "", &mut rng).unwrap();
    let err = rnn.set_precision(Precision::Bf16).unwrap_err().to_string();
    assert!(err.contains("AVX-512 BF16"), "{err}");
    eprintln!("SKIPPED: this CPU has neither AMX nor AVX-512 BF16");
    false
}

fn bf(x: f32) -> f64 {
    from_bf16(to_bf16(x)) as f64
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn forward_equals_a_naive_reference_with_bf16_products() {
    if !bf16_here() {
        return;
    }
    let (i, h, t, b) = (5, 40, 7, 19);
    let cfg = RecurrentConfig {
        input_size: i,
        hidden_size: h,
        ..Default::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut store = ParamStore::default();
    let mut rnn = Recurrent::new(cfg, &mut store, "", &mut rng).unwrap();
    let w = rand_vec(&mut rng, store.len(), 0.5);
    store.values.copy_from_slice(&w);
    rnn.set_precision(Precision::Bf16).unwrap();
    let x = rand_vec(&mut rng, t * b * i, 1.0);
    for threads in [1, 2] {
        let mut cache = RecurrentCache::default();
        with_threads(threads, || {
            rnn.forward(
                &store.values,
                SequenceBatch::new(Input::Dense(&x), t, b),
                &mut cache,
            )
            .unwrap()
        });
        // PyTorch's layout: weight_ih (4H, I), weight_hh (4H, H), bias_ih, bias_hh, gates i f g o
        let get = |name: &str| store.get(name).unwrap().to_vec();
        let (w_ih, w_hh) = (get("weight_ih_l0"), get("weight_hh_l0"));
        let (b_ih, b_hh) = (get("bias_ih_l0"), get("bias_hh_l0"));
        let mut hs = vec![vec![0f64; h]; b];
        let mut cs = vec![vec![0f64; h]; b];
        let mut worst = 0f64;
        for s in 0..t {
            for u in 0..b {
                let xr = &x[(s * b + u) * i..(s * b + u + 1) * i];
                let g: Vec<f64> = (0..4 * h)
                    .map(|r| {
                        let mut a = b_ih[r] as f64 + b_hh[r] as f64;
                        for k in 0..i {
                            a += bf(xr[k]) * bf(w_ih[r * i + k]);
                        }
                        for k in 0..h {
                            a += bf(hs[u][k] as f32) * bf(w_hh[r * h + k]);
                        }
                        a
                    })
                    .collect();
                for k in 0..h {
                    let (ig, fg) = (sigmoid(g[k]), sigmoid(g[h + k]));
                    let (gg, og) = (g[2 * h + k].tanh(), sigmoid(g[3 * h + k]));
                    cs[u][k] = fg * cs[u][k] + ig * gg;
                    hs[u][k] = og * cs[u][k].tanh();
                    let got = cache.output()[(s * b + u) * h + k] as f64;
                    worst = worst.max((got - hs[u][k]).abs());
                    // the library's h, rounded, is what the next step's product reads
                    hs[u][k] = got;
                }
            }
        }
        eprintln!("{threads} thread(s): worst difference {worst:e}");
        assert!(
            worst < 2e-5,
            "{threads} thread(s): worst difference {worst:e}"
        );
    }
}

struct Case {
    name: &'static str,
    cfg: RecurrentConfig,
    lengths: Option<Vec<usize>>,
    tokens: bool,
    dropout: bool,
    threads: usize,
}

/// `(output, grads, d_input)` of one forward and backward pass in `precision`.
fn pass(case: &Case, precision: Precision) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let cfg = &case.cfg;
    let (t, b) = (30, 24);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut store = ParamStore::default();
    let mut rnn = Recurrent::new(cfg.clone(), &mut store, "", &mut rng).unwrap();
    rnn.set_precision(precision).unwrap();
    assert_eq!(rnn.precision(), precision);
    let x = rand_vec(&mut rng, t * b * cfg.input_size, 1.0);
    let ids: Vec<u32> = (0..t * b)
        .map(|_| rng.gen_range(0..cfg.input_size as u32))
        .collect();
    let w = cfg.directions() * cfg.hidden_out();
    let dout = rand_vec(&mut rng, t * b * w, 1.0);
    let mut cache = RecurrentCache::default();
    with_threads(case.threads, || {
        let mut drng = case.dropout.then(|| ChaCha8Rng::seed_from_u64(9));
        let input = if case.tokens {
            Input::Tokens(&ids)
        } else {
            Input::Dense(&x)
        };
        rnn.forward(
            &store.values,
            SequenceBatch {
                lengths: case.lengths.as_deref(),
                dropout_rng: drng.as_mut(),
                ..SequenceBatch::new(input, t, b)
            },
            &mut cache,
        )
        .unwrap();
        rnn.backward(&store.values, &mut store.grads, &mut cache, &dout, None)
            .unwrap();
    });
    (
        cache.output().to_vec(),
        store.grads.clone(),
        cache.d_input().to_vec(),
    )
}

fn cases() -> Vec<Case> {
    let base = RecurrentConfig {
        input_size: 6,
        hidden_size: 40,
        ..Default::default()
    };
    let lens: Vec<usize> = (0..24).map(|k| 30 - (k * 7) % 29).collect();
    let c = |name, cfg: RecurrentConfig| Case {
        name,
        cfg,
        lengths: None,
        tokens: false,
        dropout: false,
        threads: 1,
    };
    vec![
        c("lstm", base.clone()),
        Case {
            threads: 2,
            ..c("lstm, 2 threads", base.clone())
        },
        Case {
            lengths: Some(lens.clone()),
            threads: 2,
            ..c(
                "2 layers, bidirectional, variable lengths, 2 threads",
                RecurrentConfig {
                    num_layers: 2,
                    bidirectional: true,
                    ..base.clone()
                },
            )
        },
        Case {
            tokens: true,
            ..c(
                "one-hot input, 2 layers",
                RecurrentConfig {
                    input_size: 50,
                    num_layers: 2,
                    one_hot_input: true,
                    ..base.clone()
                },
            )
        },
        Case {
            dropout: true,
            ..c(
                "dropout and recurrent dropout",
                RecurrentConfig {
                    num_layers: 2,
                    dropout: 0.2,
                    recurrent_dropout: 0.2,
                    ..base.clone()
                },
            )
        },
        c(
            "projection",
            RecurrentConfig {
                proj_size: 12,
                ..base.clone()
            },
        ),
        c(
            "peepholes",
            RecurrentConfig {
                peephole: true,
                ..base.clone()
            },
        ),
        Case {
            lengths: Some(lens),
            ..c(
                "gru, variable lengths",
                RecurrentConfig {
                    mode: Mode::Gru,
                    ..base.clone()
                },
            )
        },
        c(
            "rnn",
            RecurrentConfig {
                mode: Mode::RnnTanh,
                ..base
            },
        ),
    ]
}

#[test]
fn every_variant_is_within_bf16_error_of_f32() {
    if !bf16_here() {
        return;
    }
    for case in cases() {
        let (o32, g32, dx32) = pass(&case, Precision::F32);
        let (o16, g16, dx16) = pass(&case, Precision::Bf16);
        let (eo, eg) = (rel_err(&o16, &o32), rel_err(&g16, &g32));
        eprintln!("{}: output {eo:.2e}, gradients {eg:.2e}", case.name);
        // bf16 keeps 8 bits: each product's inputs are off by up to 2^-9 relative
        assert!(eo > 1e-6 && eg > 1e-6, "{}: bf16 did not run", case.name);
        assert!(eo < 1e-2, "{}: output off by {eo:e}", case.name);
        assert!(eg < 3e-2, "{}: gradients off by {eg:e}", case.name);
        if !case.tokens {
            let ex = rel_err(&dx16, &dx32);
            assert!(ex < 3e-2, "{}: input gradient off by {ex:e}", case.name);
        }
        // the same run again: the same bits
        let (o, g, _) = pass(&case, Precision::Bf16);
        assert!(o == o16 && g == g16, "{}: not deterministic", case.name);
    }
}

#[test]
fn a_model_learns_in_bf16_as_in_f32() {
    if !bf16_here() {
        return;
    }
    // the sum of a sequence's inputs, per step
    let (t, b, i) = (20, 32, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x = rand_vec(&mut rng, b * t * i, 1.0);
    let y: Vec<f32> = (0..b * t)
        .map(|r| x[r * i..(r + 1) * i].iter().sum::<f32>() * 0.3)
        .collect();
    let losses = |precision: Precision| {
        let cfg = ModelConfig {
            input: InputKind::Dense { features: i },
            hidden_size: 48,
            num_layers: 2,
            head: Head::PerStep { outputs: 1 },
            ..ModelConfig::default()
        };
        let mut model = SequenceModel::new(&cfg, 1).unwrap();
        model.set_precision(precision).unwrap();
        let batch = Batch {
            inputs: Inputs::Dense(&x),
            targets: Targets::Values(&y),
            batch: b,
            seq_len: t,
            lengths: None,
        };
        let first = model.evaluate(&batch).unwrap().loss;
        for _ in 0..300 {
            model.train_step(&batch).unwrap();
        }
        (first, model.evaluate(&batch).unwrap().loss)
    };
    let (first32, last32) = losses(Precision::F32);
    let (first16, last16) = losses(Precision::Bf16);
    eprintln!("f32 {first32} -> {last32}, bf16 {first16} -> {last16}");
    assert!(
        last32 < 0.2 * first32,
        "f32 did not learn: {first32} -> {last32}"
    );
    assert!(
        last16 < 0.2 * first16,
        "bf16 did not learn: {first16} -> {last16}"
    );
    assert!(
        last16 < 1.5 * last32 + 1e-3,
        "bf16 learned less: {last16} against {last32}"
    );
}

#[test]
fn whole_model_gradients_are_within_bf16_error_of_f32() {
    if !bf16_here() {
        return;
    }
    let (t, b, v) = (24, 20, 30);
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let tokens: Vec<u32> = (0..b * t).map(|_| rng.gen_range(0..v as u32)).collect();
    let classes: Vec<u32> = (0..b * t).map(|_| rng.gen_range(0..v as u32)).collect();
    let x = rand_vec(&mut rng, b * t * 4, 1.0);
    let y = rand_vec(&mut rng, b * 3, 1.0);
    // a character model (one-hot input, softmax head per step) and a last-step regression
    let configs = [
        (
            ModelConfig {
                input: InputKind::OneHot { vocab: v },
                hidden_size: 48,
                num_layers: 2,
                head: Head::PerStep { outputs: v },
                ..ModelConfig::default()
            },
            true,
        ),
        (
            ModelConfig {
                input: InputKind::Dense { features: 4 },
                hidden_size: 48,
                head: Head::LastStep { outputs: 3 },
                ..ModelConfig::default()
            },
            false,
        ),
    ];
    for (cfg, chars) in configs {
        let run = |precision: Precision| {
            let mut model = SequenceModel::new(&cfg, 3).unwrap();
            model.set_precision(precision).unwrap();
            let batch = Batch {
                inputs: if chars {
                    Inputs::Tokens(&tokens)
                } else {
                    Inputs::Dense(&x)
                },
                targets: if chars {
                    Targets::Classes(&classes)
                } else {
                    Targets::Values(&y)
                },
                batch: b,
                seq_len: t,
                lengths: None,
            };
            let loss = model.loss_and_grad(&batch, false).unwrap().loss;
            (loss, model.store.grads.clone())
        };
        let (l32, g32) = run(Precision::F32);
        let (l16, g16) = run(Precision::Bf16);
        let eg = rel_err(&g16, &g32);
        eprintln!("{:?}: loss {l32} / {l16}, gradients {eg:.2e}", cfg.head);
        assert!(((l16 - l32) / l32).abs() < 1e-2, "loss {l16} against {l32}");
        assert!(eg > 1e-6 && eg < 3e-2, "gradients off by {eg:e}");
    }
}
