//! How a batch's sequences run: a variable-length batch gives each sequence what it gets alone
//! (also when shorter sequences share lanes, forward and backward), and truncated BPTT carries
//! the state from one chunk to the next.

#![allow(clippy::needless_range_loop)]

mod common;

use common::{rand_vec, stack, text_model};
use lstm::cell::Mode;
use lstm::kernels::with_threads;
use lstm::model::Inputs;
use lstm::recurrent::{Input, RecurrentCache, RecurrentConfig, RecurrentState, SequenceBatch};
use lstm::testing::{with_team_min_weights, with_transposed_min_gates};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A padded batch with lengths gives, for each sequence, exactly what running that sequence
/// alone (truncated to its length) gives: outputs, zero padding, final states.
#[test]
fn variable_lengths_equal_sequences_run_alone() {
    for mode in [Mode::Lstm, Mode::Gru, Mode::RnnTanh] {
        let cfg = RecurrentConfig {
            mode,
            input_size: 3,
            hidden_size: 5,
            num_layers: 2,
            bidirectional: true,
            ..Default::default()
        };
        let (rnn, store) = stack(cfg.clone());
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (t, b) = (7, 4);
        let lengths = [3usize, 7, 1, 5];
        let x = rand_vec(&mut rng, t * b * 3);
        let mut cache = RecurrentCache::default();
        rnn.forward(
            &store.values,
            SequenceBatch::new(Input::Dense(&x), t, b).with_lengths(&lengths),
            &mut cache,
        )
        .unwrap();
        let w = cfg.output_size();
        let hp = cfg.hidden_out();
        for (j, &len) in lengths.iter().enumerate() {
            let xs: Vec<f32> = (0..len)
                .flat_map(|s| x[(s * b + j) * 3..(s * b + j + 1) * 3].to_vec())
                .collect();
            let mut single = RecurrentCache::default();
            rnn.forward(
                &store.values,
                SequenceBatch::new(Input::Dense(&xs), len, 1),
                &mut single,
            )
            .unwrap();
            for s in 0..t {
                let got = &cache.output()[(s * b + j) * w..(s * b + j + 1) * w];
                if s < len {
                    let want = &single.output()[s * w..(s + 1) * w];
                    for (g, e) in got.iter().zip(want) {
                        assert!(
                            (g - e).abs() < 1e-5,
                            "{mode:?} seq {j} step {s}: {g} vs {e}"
                        );
                    }
                } else {
                    assert!(got.iter().all(|&v| v == 0.0), "padding must be zero");
                }
            }
            for k in 0..2 * 2 {
                let got = &cache.final_state().h[(k * b + j) * hp..(k * b + j + 1) * hp];
                let want = &single.final_state().h[k * hp..(k + 1) * hp];
                for (g, e) in got.iter().zip(want) {
                    assert!((g - e).abs() < 1e-5, "{mode:?} h_n seq {j}");
                }
            }
        }
    }
}

/// Shorter sequences of a variable-length batch share lanes of the time loop (one after the
/// other); every sequence must still get exactly what it gets alone: outputs, zero padding,
/// final states, and in the backward pass the input and initial-state gradients, with the
/// parameter gradients the sum of the sequences' own. Every cell, both directions (and the
/// LSTM also one direction, where its cell writes the layer's output rows itself), two
/// layers, initial states and final-state gradients, dense and token input, one and two
/// threads (the batch split, which shares lanes, and the units split, which keeps one lane per
/// sequence), batches too small and large enough for the packed step kernel. The compact output
/// (real positions only) gives the same rows and gradients as the padded one.
#[test]
fn sequences_sharing_lanes_get_what_they_get_alone() {
    // (mode, projection, peepholes, coupled gates, bidirectional)
    let variants: Vec<(Mode, usize, bool, bool, bool)> = vec![
        (Mode::Lstm, 0, false, false, true),
        (Mode::Lstm, 3, true, false, true),
        (Mode::Lstm, 0, false, true, true),
        (Mode::Gru, 0, false, false, true),
        (Mode::RnnTanh, 0, false, false, true),
        (Mode::Lstm, 0, false, false, false),
        (Mode::Lstm, 0, true, false, false),
        (Mode::Lstm, 3, false, false, false),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    for (vi, &(mode, proj_size, peephole, coupled, bidir)) in variants.iter().enumerate() {
        // (the units split only for the LSTM without projection; else the batch split)
        for (tokens, batch_first, threads, split_units) in [
            (false, false, 1, false),
            (true, true, 2, false),
            (false, true, 2, false),
            (true, false, 2, true),
            (false, true, 2, true),
        ] {
            let min_weights = if split_units { 0 } else { usize::MAX };
            let cfg = RecurrentConfig {
                mode,
                proj_size,
                peephole,
                coupled,
                input_size: if tokens { 6 } else { 3 },
                one_hot_input: tokens,
                hidden_size: 5,
                num_layers: 2,
                bidirectional: bidir,
                batch_first,
                ..Default::default()
            };
            let (rnn, store) = stack(cfg.clone());
            let (t, i, w) = (9, cfg.input_size, cfg.output_size());
            // first-fit into lanes of 9: 9 | 7+2 | 6+3 | 5+4 | 1 ... (and the same dealt to
            // two threads); the second batch has rows enough for the packed kernel
            let batches: [Vec<usize>; 2] = [
                vec![2, 9, 4, 6, 1, 7, 3, 5],
                (0..24).map(|j| [9, 2, 7, 4, 5, 1, 3, 8][j % 8]).collect(),
            ];
            for lengths in &batches {
                let b = lengths.len();
                let at = |s: usize, j: usize| if batch_first { j * t + s } else { s * b + j };
                let x = rand_vec(&mut rng, t * b * i);
                let ids: Vec<u32> = (0..t * b).map(|_| rng.gen_range(0..6)).collect();
                let (dn, ln, hp, h) = (1 + usize::from(bidir), 2, cfg.hidden_out(), 5);
                let hc = if mode == Mode::Lstm { h } else { 0 };
                let h0 = RecurrentState {
                    h: rand_vec(&mut rng, dn * ln * b * hp),
                    c: rand_vec(&mut rng, dn * ln * b * hc),
                };
                let d_fin = RecurrentState {
                    h: rand_vec(&mut rng, dn * ln * b * hp),
                    c: rand_vec(&mut rng, dn * ln * b * hc),
                };
                let d_out = rand_vec(&mut rng, t * b * w);
                // forward and backward of the whole batch, the output padded or compact
                let run = |compact: bool, d_output: &[f32]| {
                    let mut cache = RecurrentCache::default();
                    cache.set_compact_output(compact);
                    let mut grads = vec![0.0f32; store.len()];
                    // (the batch of many sequences with dgᵀ kept, for the weight gradients, in
                    // every layer; the sequences alone without)
                    with_threads(threads, || {
                        with_team_min_weights(min_weights, || {
                            with_transposed_min_gates(0, || {
                                let input = if tokens {
                                    Input::Tokens(&ids)
                                } else {
                                    Input::Dense(&x)
                                };
                                let (v, c) = (&store.values, &mut cache);
                                rnn.forward(
                                    v,
                                    SequenceBatch::new(input, t, b)
                                        .with_lengths(lengths)
                                        .with_initial_state(&h0),
                                    c,
                                )
                                .unwrap();
                                if compact {
                                    let bad = rnn.backward(v, &mut grads, c, &d_out, None);
                                    assert!(bad.is_err(), "a padded d_output for a compact output");
                                }
                                rnn.backward(v, &mut grads, c, d_output, Some(&d_fin))
                                    .unwrap();
                            })
                        })
                    });
                    (cache, grads)
                };
                let (cache, grads) = run(false, &d_out);
                // the compact output: the same rows, sequence after sequence, and the same
                // gradients from the real positions' output gradients alone
                let real: Vec<usize> = (0..b)
                    .flat_map(|j| (0..lengths[j]).map(move |s| at(s, j)))
                    .collect();
                let pick_rows = |v: &[f32]| -> Vec<f32> {
                    real.iter()
                        .flat_map(|&r| v[r * w..(r + 1) * w].to_vec())
                        .collect()
                };
                let (compact, grads_compact) = run(true, &pick_rows(&d_out));
                assert_eq!(compact.output(), &pick_rows(cache.output())[..]);
                assert_eq!(compact.final_state(), cache.final_state());
                assert_eq!(compact.d_input(), cache.d_input());
                assert_eq!(compact.d_initial_state(), cache.d_initial_state());
                assert_eq!(grads_compact, grads);
                let mut grads_alone = vec![0.0f32; store.len()];
                let close = |g: f32, e: f32, what: &str, j: usize| {
                    assert!(
                        (g - e).abs() <= 1e-5 * (1.0 + e.abs()),
                        "variant {vi} ({mode:?}) tokens {tokens} threads {threads} b {b}: \
                         {what} of sequence {j}: {g} vs {e}"
                    );
                };
                for (j, &len) in lengths.iter().enumerate() {
                    let xs: Vec<f32> = (0..len)
                        .flat_map(|s| x[at(s, j) * i..(at(s, j) + 1) * i].to_vec())
                        .collect();
                    let is: Vec<u32> = (0..len).map(|s| ids[at(s, j)]).collect();
                    let pick = |v: &[f32], n: usize| -> Vec<f32> {
                        (0..dn * ln)
                            .flat_map(|k| v[(k * b + j) * n..(k * b + j + 1) * n].to_vec())
                            .collect()
                    };
                    let s0 = RecurrentState {
                        h: pick(&h0.h, hp),
                        c: pick(&h0.c, hc),
                    };
                    let ds = RecurrentState {
                        h: pick(&d_fin.h, hp),
                        c: pick(&d_fin.c, hc),
                    };
                    let dos: Vec<f32> = (0..len)
                        .flat_map(|s| d_out[at(s, j) * w..(at(s, j) + 1) * w].to_vec())
                        .collect();
                    let mut single = RecurrentCache::default();
                    let input = if tokens {
                        Input::Tokens(&is)
                    } else {
                        Input::Dense(&xs)
                    };
                    rnn.forward(
                        &store.values,
                        SequenceBatch::new(input, len, 1).with_initial_state(&s0),
                        &mut single,
                    )
                    .unwrap();
                    rnn.backward(
                        &store.values,
                        &mut grads_alone,
                        &mut single,
                        &dos,
                        Some(&ds),
                    )
                    .unwrap();
                    for s in 0..t {
                        let got = &cache.output()[at(s, j) * w..(at(s, j) + 1) * w];
                        if s < len {
                            for (g, e) in got.iter().zip(&single.output()[s * w..(s + 1) * w]) {
                                close(*g, *e, "output", j);
                            }
                            if !tokens {
                                let got = &cache.d_input()[at(s, j) * i..(at(s, j) + 1) * i];
                                let want = &single.d_input()[s * i..(s + 1) * i];
                                for (g, e) in got.iter().zip(want) {
                                    close(*g, *e, "input gradient", j);
                                }
                            }
                        } else {
                            assert!(got.iter().all(|&v| v == 0.0), "padding must be zero");
                        }
                    }
                    let pairs = [
                        (&cache.final_state().h, &single.final_state().h, hp, "h_n"),
                        (&cache.final_state().c, &single.final_state().c, hc, "c_n"),
                        (
                            &cache.d_initial_state().h,
                            &single.d_initial_state().h,
                            hp,
                            "d h0",
                        ),
                        (
                            &cache.d_initial_state().c,
                            &single.d_initial_state().c,
                            hc,
                            "d c0",
                        ),
                    ];
                    for (all, one, n, what) in pairs {
                        for k in 0..dn * ln {
                            let got = &all[(k * b + j) * n..(k * b + j + 1) * n];
                            for (g, e) in got.iter().zip(&one[k * n..(k + 1) * n]) {
                                close(*g, *e, what, j);
                            }
                        }
                    }
                }
                for (g, e) in grads.iter().zip(&grads_alone) {
                    assert!(
                        (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                        "variant {vi} ({mode:?}) threads {threads} b {b}: parameter gradient \
                         {g} vs {e}"
                    );
                }
            }
        }
    }
}

/// Truncated BPTT: with the state carried, two chunks of 10 give the same forward result as one
/// sequence of 20.
#[test]
fn truncated_bptt_carries_the_state() {
    let mut model = text_model(1, 0.0, 0.0);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x: Vec<u32> = (0..20).map(|_| rng.gen_range(0..11)).collect();
    let whole = model
        .predict(Inputs::Tokens(&x), 1, 20, None)
        .unwrap()
        .to_vec();
    model.carry = Some(RecurrentState::default());
    let a = model
        .predict(Inputs::Tokens(&x[..10]), 1, 10, None)
        .unwrap()
        .to_vec();
    let b = model
        .predict(Inputs::Tokens(&x[10..]), 1, 10, None)
        .unwrap()
        .to_vec();
    let chunks: Vec<f32> = a.into_iter().chain(b).collect();
    for (p, q) in whole.iter().zip(&chunks) {
        assert!((p - q).abs() < 1e-5);
    }
}

/// Real-valued targets of a variable-length batch: the padding positions are not counted (the
/// loss is the mean squared error over the real steps, computed here from the outputs) and do
/// not move the weights.
#[test]
fn value_targets_of_padding_positions_are_not_counted() {
    use lstm::model::{Batch, Head, InputKind, ModelConfig, SequenceModel, Targets};
    let cfg = ModelConfig {
        input: InputKind::Dense { features: 2 },
        hidden_size: 4,
        head: Head::PerStep { outputs: 2 },
        ..Default::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (b, t, out) = (2, 3, 2);
    let lengths = [3usize, 1];
    let x = rand_vec(&mut rng, b * t * 2);
    let y = rand_vec(&mut rng, b * t * out);
    // the same targets with the padding positions (sequence 1, steps 1 and 2) at 1000
    let mut far = y.clone();
    for step in 1..t {
        for k in 0..out {
            far[(t + step) * out + k] = 1000.0;
        }
    }
    let batch = |targets: &[f32]| -> (f32, usize, Vec<f32>) {
        let mut m = SequenceModel::new(&cfg, 7).unwrap();
        let one = |m: &mut SequenceModel| {
            m.evaluate(&Batch {
                inputs: Inputs::Dense(&x),
                targets: Targets::Values(targets),
                batch: b,
                seq_len: t,
                lengths: Some(&lengths),
            })
            .unwrap()
        };
        let e = one(&mut m);
        // the mean over the real positions, from the outputs
        let o = m.outputs().to_vec();
        let (mut sum, mut n) = (0.0f64, 0usize);
        for j in 0..b {
            for s in 0..lengths[j] {
                for k in 0..out {
                    let i = (j * t + s) * out + k;
                    sum += ((o[i] - targets[i]) as f64).powi(2);
                    n += 1;
                }
            }
        }
        assert_eq!(e.count, n);
        assert!((e.loss as f64 - sum / n as f64).abs() < 1e-6 * (1.0 + sum / n as f64));
        m.train_step(&Batch {
            inputs: Inputs::Dense(&x),
            targets: Targets::Values(targets),
            batch: b,
            seq_len: t,
            lengths: Some(&lengths),
        })
        .unwrap();
        (e.loss, e.count, m.store.values.clone())
    };
    let (l1, n1, w1) = batch(&y);
    let (l2, n2, w2) = batch(&far);
    assert_eq!((l1, n1), (l2, n2));
    assert_eq!(w1, w2, "padding targets must not move the weights");
}
