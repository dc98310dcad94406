//! Engine properties: the fast GEMM equals the naive reference, training is deterministic,
//! variable-length batches equal sequences run one by one, dropout is training-only and seeded,
//! initialisation follows its definition, and bad input gives errors, not panics.

#![allow(clippy::needless_range_loop)]

use lstm::cell::Mode;
use lstm::kernels::{matmul, matmul_naive, with_threads, Transpose};
use lstm::model::{Batch, Head, InputKind, Inputs, ModelConfig, SequenceModel, Targets};
use lstm::params::ParamStore;
use lstm::recurrent::{
    Input, Recurrent, RecurrentCache, RecurrentConfig, RecurrentState, SequenceBatch,
};
use lstm::testing::{
    gemm_packed, gemm_packed_gather, pack_panels, with_lanes, with_packed_kernel,
    with_team_min_weights, with_transposed_min_gates, PackedKernel,
};
use lstm::Error;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rand_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

#[test]
fn fast_gemm_matches_naive_on_random_shapes() {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let mut shapes: Vec<(usize, usize, usize)> = vec![
        (1, 1, 1),
        (1, 1024, 256),
        (32, 1024, 256),
        (64, 256, 64),
        (7, 13, 29),
        (2048, 33, 65),
    ];
    for _ in 0..40 {
        shapes.push((
            rng.gen_range(1..70),
            rng.gen_range(1..70),
            rng.gen_range(1..90),
        ));
    }
    for (m, n, k) in shapes {
        for ta in [Transpose::No, Transpose::Yes] {
            for tb in [Transpose::No, Transpose::Yes] {
                for accumulate in [false, true] {
                    // odd leading dimensions: padding after each row
                    let pad = rng.gen_range(0..3);
                    let (ar, ac) = if ta == Transpose::No { (m, k) } else { (k, m) };
                    let (br, bc) = if tb == Transpose::No { (k, n) } else { (n, k) };
                    let (lda, ldb, ldc) = (ac + pad, bc + pad, n + pad);
                    let a = rand_vec(&mut rng, ar * lda);
                    let b = rand_vec(&mut rng, br * ldb);
                    let c0 = rand_vec(&mut rng, m * ldc);
                    let mut fast = c0.clone();
                    let mut slow = c0.clone();
                    matmul(
                        m, n, k, &a, lda, ta, &b, ldb, tb, &mut fast, ldc, accumulate,
                    );
                    matmul_naive(
                        m, n, k, &a, lda, ta, &b, ldb, tb, &mut slow, ldc, accumulate,
                    );
                    for i in 0..m {
                        for j in 0..n {
                            let (f, s) = (fast[i * ldc + j], slow[i * ldc + j]);
                            assert!(
                                (f - s).abs() <= 1e-4 * (k as f32).sqrt() * (1.0 + s.abs()),
                                "({m},{n},{k}) {ta:?}{tb:?} acc={accumulate}: [{i},{j}] {f} vs {s}"
                            );
                        }
                        // padding columns untouched
                        for j in n..ldc {
                            assert_eq!(fast[i * ldc + j], c0[i * ldc + j]);
                        }
                    }
                }
            }
        }
    }
}

/// The bit patterns of `v`, for comparisons that must be exact (NaN and signed zero included).
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A fast product `fast` against the naive one `slow`, both `(m, ldc)` from the same `c0`: each
/// of the first `n` columns within the rounding of a sum of `k` products, the columns past `n`
/// untouched.
fn assert_product_close(
    fast: &[f32],
    slow: &[f32],
    c0: &[f32],
    (m, n, k, ldc): (usize, usize, usize, usize),
    what: &str,
) {
    for i in 0..m {
        for j in 0..ldc {
            let (f, s) = (fast[i * ldc + j], slow[i * ldc + j]);
            if j < n {
                assert!(
                    (f - s).abs() <= 1e-4 * (k as f32).sqrt() * (1.0 + s.abs()),
                    "{what} ({m},{n},{k}) [{i},{j}] {f} vs {s}"
                );
            } else {
                assert_eq!(f, c0[i * ldc + j], "padding untouched");
            }
        }
    }
}

/// The step kernel, in each of its versions (AVX-512, the AVX2 one of CPUs without AVX-512,
/// plain Rust), against the naive product; the AVX2 version also bit for bit against the
/// AVX-512 one, whose sums it keeps in the same order. (On a CPU without a version, the next
/// one runs in its place.)
#[test]
fn packed_step_kernel_matches_naive() {
    let mut rng = ChaCha8Rng::seed_from_u64(78);
    let mut shapes: Vec<(usize, usize, usize)> = vec![
        (16, 1024, 256),
        (16, 512, 2048),
        (1, 33, 7),
        (9, 31, 5),
        (8, 32, 1),
        (3, 65, 40),
        (7, 70, 600),
    ];
    for _ in 0..60 {
        shapes.push((
            rng.gen_range(1..40),
            rng.gen_range(1..100),
            rng.gen_range(1..80),
        ));
    }
    let mut packed = Vec::new();
    for (m, n, k) in shapes {
        for tb in [Transpose::No, Transpose::Yes] {
            for accumulate in [false, true] {
                let pad = rng.gen_range(0..3);
                let (br, bc) = if tb == Transpose::No { (k, n) } else { (n, k) };
                let (lda, ldb, ldc) = (k + pad, bc + pad, n + pad);
                let a = rand_vec(&mut rng, m * lda);
                let b = rand_vec(&mut rng, br * ldb);
                let c0 = rand_vec(&mut rng, m * ldc);
                pack_panels(k, n, &b, ldb, tb, &mut packed);
                let run = |kernel| {
                    let mut c = c0.clone();
                    with_packed_kernel(kernel, || {
                        gemm_packed(m, n, k, &a, lda, &packed, &mut c, ldc, accumulate)
                    });
                    c
                };
                let fast = run(PackedKernel::Avx512);
                let avx2 = run(PackedKernel::Avx2);
                assert_eq!(
                    bits(&avx2),
                    bits(&fast),
                    "({m},{n},{k}) AVX2 against AVX-512"
                );
                let scalar = run(PackedKernel::Scalar);
                let mut slow = c0.clone();
                matmul_naive(
                    m,
                    n,
                    k,
                    &a,
                    lda,
                    Transpose::No,
                    &b,
                    ldb,
                    tb,
                    &mut slow,
                    ldc,
                    accumulate,
                );
                for fast in [&fast, &scalar] {
                    assert_product_close(fast, &slow, &c0, (m, n, k, ldc), &format!("{tb:?}"));
                }
            }
        }
    }
}

/// Products of one or two rows by a transposed matrix (`matmul`'s dot-product path), in each
/// version of the kernel, against the naive product.
#[test]
fn one_row_products_match_naive_in_every_version() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let mut shapes: Vec<(usize, usize, usize)> = vec![(1, 1024, 256), (2, 65, 256), (1, 3, 7)];
    for _ in 0..40 {
        shapes.push((
            rng.gen_range(1..3),
            rng.gen_range(1..70),
            rng.gen_range(1..90),
        ));
    }
    for (m, n, k) in shapes {
        let pad = rng.gen_range(0..3);
        let (lda, ldb, ldc) = (k + pad, k + pad, n + pad);
        let a = rand_vec(&mut rng, m * lda);
        let b = rand_vec(&mut rng, n * ldb);
        let c0 = rand_vec(&mut rng, m * ldc);
        for accumulate in [false, true] {
            let mut slow = c0.clone();
            matmul_naive(
                m,
                n,
                k,
                &a,
                lda,
                Transpose::No,
                &b,
                ldb,
                Transpose::Yes,
                &mut slow,
                ldc,
                accumulate,
            );
            for kernel in [
                PackedKernel::Avx512,
                PackedKernel::Avx2,
                PackedKernel::Scalar,
            ] {
                let mut fast = c0.clone();
                with_packed_kernel(kernel, || {
                    matmul(
                        m,
                        n,
                        k,
                        &a,
                        lda,
                        Transpose::No,
                        &b,
                        ldb,
                        Transpose::Yes,
                        &mut fast,
                        ldc,
                        accumulate,
                    )
                });
                assert_product_close(&fast, &slow, &c0, (m, n, k, ldc), &format!("{kernel:?}"));
            }
        }
    }
}

/// The product that gathers its initial rows from a table (the one-hot input projection of a
/// step) against the naive product added to the gathered rows.
#[test]
fn gathered_packed_product_matches_naive() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut shapes: Vec<(usize, usize, usize)> = vec![(16, 1024, 256), (16, 512, 128), (3, 65, 40)];
    for _ in 0..40 {
        shapes.push((
            rng.gen_range(1..40),
            rng.gen_range(1..100),
            rng.gen_range(1..300),
        ));
    }
    let mut packed = Vec::new();
    for (m, n, k) in shapes {
        let (pad, vocab) = (rng.gen_range(0..3), rng.gen_range(1..20));
        let (lda, ldc) = (k + pad, n + pad);
        let a = rand_vec(&mut rng, m * lda);
        let w = rand_vec(&mut rng, k * n);
        let table = rand_vec(&mut rng, vocab * n);
        let ids: Vec<u32> = (0..m).map(|_| rng.gen_range(0..vocab as u32)).collect();
        let c0 = rand_vec(&mut rng, m * ldc);
        pack_panels(k, n, &w, n, Transpose::No, &mut packed);
        let run = |kernel| {
            let mut c = c0.clone();
            with_packed_kernel(kernel, || {
                gemm_packed_gather(m, n, k, &a, lda, &packed, &mut c, ldc, &table, &ids)
            });
            c
        };
        let fast = run(PackedKernel::Avx512);
        assert_eq!(
            bits(&run(PackedKernel::Avx2)),
            bits(&fast),
            "({m},{n},{k}) AVX2"
        );
        let mut slow = c0.clone();
        for (i, &t) in ids.iter().enumerate() {
            let t = t as usize;
            slow[i * ldc..i * ldc + n].copy_from_slice(&table[t * n..(t + 1) * n]);
        }
        matmul_naive(
            m,
            n,
            k,
            &a,
            lda,
            Transpose::No,
            &w,
            n,
            Transpose::No,
            &mut slow,
            ldc,
            true,
        );
        assert_product_close(&fast, &slow, &c0, (m, n, k, ldc), "gathered");
    }
}

fn text_model(seed: u64, dropout: f32, recurrent_dropout: f32) -> SequenceModel {
    let cfg = ModelConfig {
        input: InputKind::OneHot { vocab: 11 },
        hidden_size: 48,
        num_layers: 2,
        dropout,
        recurrent_dropout,
        head_dropout: dropout,
        head: Head::PerStep { outputs: 11 },
        ..Default::default()
    };
    SequenceModel::new(&cfg, seed).unwrap()
}

fn train_a_little(model: &mut SequenceModel) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (b, t) = (8, 20);
    let mut losses = Vec::new();
    for _ in 0..5 {
        let x: Vec<u32> = (0..b * t).map(|_| rng.gen_range(0..11)).collect();
        let y: Vec<u32> = (0..b * t).map(|_| rng.gen_range(0..11)).collect();
        losses.push(model.train_step_text(&x, &y, b, t).unwrap());
    }
    losses
}

#[test]
fn same_seed_gives_bit_identical_weights() {
    let mut a = text_model(7, 0.2, 0.25);
    let mut b = text_model(7, 0.2, 0.25);
    let la = train_a_little(&mut a);
    let lb = train_a_little(&mut b);
    assert_eq!(la, lb);
    assert!(a
        .store
        .values
        .iter()
        .zip(&b.store.values)
        .all(|(x, y)| x.to_bits() == y.to_bits()));
    // and a different seed gives different weights
    let mut c = text_model(8, 0.2, 0.25);
    train_a_little(&mut c);
    assert!(a.store.values != c.store.values);
}

fn stack(cfg: RecurrentConfig) -> (Recurrent, ParamStore) {
    let mut store = ParamStore::default();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let rnn = Recurrent::new(cfg, &mut store, "", &mut rng).unwrap();
    let w = rand_vec(&mut rng, store.len());
    store.values.copy_from_slice(&w);
    (rnn, store)
}

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

/// With recurrent dropout, a sequence keeps its own mask wherever it runs: the same seed gives
/// the same outputs, states and input gradients (bit for bit) with the shorter sequences
/// sharing lanes as without, and the same parameter gradients up to the order of their sums.
#[test]
fn recurrent_dropout_masks_follow_sequences_into_shared_lanes() {
    for mode in [Mode::Lstm, Mode::Gru] {
        let cfg = RecurrentConfig {
            mode,
            input_size: 3,
            hidden_size: 6,
            num_layers: 2,
            bidirectional: true,
            recurrent_dropout: 0.4,
            ..Default::default()
        };
        let (rnn, store) = stack(cfg.clone());
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let (t, lengths) = (9, [9usize, 2, 7, 4, 5, 1, 3, 8, 6, 2]);
        let b = lengths.len();
        let x = rand_vec(&mut rng, t * b * 3);
        let d_out = rand_vec(&mut rng, t * b * cfg.output_size());
        let run = |lanes: bool| {
            let mut cache = RecurrentCache::default();
            let mut grads = vec![0.0f32; store.len()];
            let mut drng = ChaCha8Rng::seed_from_u64(8);
            with_threads(1, || {
                with_lanes(lanes, || {
                    let (v, c) = (&store.values, &mut cache);
                    rnn.forward(
                        v,
                        SequenceBatch::new(Input::Dense(&x), t, b)
                            .with_lengths(&lengths)
                            .with_dropout_rng(&mut drng),
                        c,
                    )
                    .unwrap();
                    rnn.backward(v, &mut grads, c, &d_out, None).unwrap();
                })
            });
            (cache, grads)
        };
        let (shared, g_shared) = run(true);
        let (alone, g_alone) = run(false);
        assert_eq!(
            bits(shared.output()),
            bits(alone.output()),
            "{mode:?} output"
        );
        assert_eq!(
            shared.final_state(),
            alone.final_state(),
            "{mode:?} final states"
        );
        assert_eq!(
            bits(shared.d_input()),
            bits(alone.d_input()),
            "{mode:?} input gradient"
        );
        assert_eq!(shared.d_initial_state(), alone.d_initial_state());
        for (g, e) in g_shared.iter().zip(&g_alone) {
            assert!(
                (g - e).abs() <= 1e-5 * (1.0 + e.abs()),
                "{mode:?}: {g} vs {e}"
            );
        }
        // and the masks do act: another seed gives another output
        let mut other = RecurrentCache::default();
        let mut drng = ChaCha8Rng::seed_from_u64(9);
        with_threads(1, || {
            rnn.forward(
                &store.values,
                SequenceBatch::new(Input::Dense(&x), t, b)
                    .with_lengths(&lengths)
                    .with_dropout_rng(&mut drng),
                &mut other,
            )
        })
        .unwrap();
        assert_ne!(other.output(), shared.output());
    }
}

#[test]
fn dropout_is_training_only_and_seeded() {
    let cfg = RecurrentConfig {
        input_size: 3,
        hidden_size: 6,
        num_layers: 2,
        dropout: 0.5,
        recurrent_dropout: 0.5,
        ..Default::default()
    };
    let (rnn, store) = stack(cfg);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let x = rand_vec(&mut rng, 5 * 2 * 3);
    let run = |seed: Option<u64>| {
        let mut c = RecurrentCache::default();
        let mut r = seed.map(ChaCha8Rng::seed_from_u64);
        rnn.forward(
            &store.values,
            SequenceBatch {
                dropout_rng: r.as_mut(),
                ..SequenceBatch::new(Input::Dense(&x), 5, 2)
            },
            &mut c,
        )
        .unwrap();
        c.output().to_vec()
    };
    let eval1 = run(None);
    let eval2 = run(None);
    assert_eq!(eval1, eval2);
    let tr1 = run(Some(1));
    assert_eq!(tr1, run(Some(1)), "same seed, same masks");
    assert_ne!(tr1, eval1, "training applies dropout");
    assert_ne!(tr1, run(Some(2)), "another seed, other masks");
}

#[test]
fn initialisation_follows_its_definition() {
    let cfg = RecurrentConfig {
        input_size: 10,
        hidden_size: 8,
        ..Default::default()
    };
    let (h, i) = (8, 10);
    let mut store = ParamStore::default();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    Recurrent::new(cfg, &mut store, "lstm.", &mut rng).unwrap();
    // forget-gate bias sums to 1.0, other biases 0
    let bi = store.get("lstm.bias_ih_l0").unwrap();
    let bh = store.get("lstm.bias_hh_l0").unwrap();
    for k in 0..4 * h {
        let want = if (h..2 * h).contains(&k) { 1.0 } else { 0.0 };
        assert!((bi[k] + bh[k] - want).abs() < 1e-6);
    }
    // each recurrent gate block is orthogonal: W Wᵀ = I
    let whh = store.get("lstm.weight_hh_l0").unwrap();
    for g in 0..4 {
        let blk = &whh[g * h * h..(g + 1) * h * h];
        for r in 0..h {
            for c in 0..h {
                let dot: f32 = (0..h).map(|k| blk[r * h + k] * blk[c * h + k]).sum();
                assert!((dot - if r == c { 1.0 } else { 0.0 }).abs() < 1e-4);
            }
        }
    }
    // Glorot bound for input weights
    let bound = (6.0f32 / (h + i) as f32).sqrt();
    let wih = store.get("lstm.weight_ih_l0").unwrap();
    assert!(wih.iter().all(|w| w.abs() <= bound));
    assert!(wih.iter().any(|w| w.abs() > bound * 0.5));
    // PyTorch's uniform option
    let cfg = RecurrentConfig {
        input_size: 10,
        hidden_size: 8,
        init: lstm::params::init::InitScheme::PytorchUniform,
        ..Default::default()
    };
    let mut store = ParamStore::default();
    Recurrent::new(cfg, &mut store, "", &mut rng).unwrap();
    let a = 1.0 / (8f32).sqrt();
    assert!(store.values.iter().all(|w| w.abs() <= a));
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let cfg = RecurrentConfig {
        input_size: 3,
        hidden_size: 4,
        ..Default::default()
    };
    let (rnn, store) = stack(cfg.clone());
    let mut c = RecurrentCache::default();
    let x = vec![0.0; 2 * 2 * 3];
    assert!(matches!(
        rnn.forward(
            &store.values,
            SequenceBatch::new(Input::Dense(&x[..5]), 2, 2),
            &mut c
        ),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        rnn.forward(
            &store.values,
            SequenceBatch::new(Input::Dense(&x), 2, 2).with_lengths(&[1, 3]),
            &mut c
        ),
        Err(Error::Index(_))
    ));
    assert!(matches!(
        rnn.forward(
            &store.values,
            SequenceBatch::new(Input::Dense(&x), 2, 2).with_lengths(&[0, 2]),
            &mut c
        ),
        Err(Error::Index(_))
    ));
    let bad_state = RecurrentState {
        h: vec![0.0; 3],
        c: vec![],
    };
    assert!(rnn
        .forward(
            &store.values,
            SequenceBatch::new(Input::Dense(&x), 2, 2).with_initial_state(&bad_state),
            &mut c
        )
        .is_err());
    assert!(rnn
        .forward(
            &store.values,
            SequenceBatch::new(Input::Tokens(&[0, 1, 2, 3]), 2, 2),
            &mut c
        )
        .is_err());
    assert!(rnn
        .backward(
            &store.values,
            &mut vec![0.0; store.len()],
            &mut RecurrentCache::default(),
            &x,
            None
        )
        .is_err());
    for bad in [
        RecurrentConfig {
            hidden_size: 0,
            ..cfg.clone()
        },
        RecurrentConfig {
            proj_size: 4,
            ..cfg.clone()
        },
        RecurrentConfig {
            mode: Mode::Gru,
            peephole: true,
            ..cfg.clone()
        },
        RecurrentConfig {
            dropout: 1.0,
            ..cfg.clone()
        },
        RecurrentConfig {
            recurrent_dropout: -0.1,
            ..cfg.clone()
        },
    ] {
        let mut s = ParamStore::default();
        assert!(matches!(
            Recurrent::new(bad, &mut s, "", &mut ChaCha8Rng::seed_from_u64(0)),
            Err(Error::Config(_))
        ));
    }
    let mut model = text_model(0, 0.0, 0.0);
    let x = [0u32, 1, 2, 50];
    let y = [0u32, 1, 2, 3];
    assert!(matches!(
        model.train_step_text(&x, &y, 1, 4),
        Err(Error::Index(_))
    ));
    let batch = Batch {
        inputs: Inputs::Tokens(&y),
        targets: Targets::Classes(&[0, 1, 99, 3]),
        batch: 1,
        seq_len: 4,
        lengths: None,
    };
    assert!(matches!(model.train_step(&batch), Err(Error::Index(_))));
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

#[test]
fn kmajor_gemv_matches_naive() {
    use lstm::kernels::{gemv_kmajor, kmajor_rows, pack_kmajor};
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    for (rows, k) in [(1, 1), (16, 3), (130, 17), (512, 256), (65, 256), (300, 5)] {
        let ld = k + 3;
        let w = rand_vec(&mut rng, rows * ld);
        let v = rand_vec(&mut rng, k);
        let init = rand_vec(&mut rng, kmajor_rows(rows));
        // rows in a shuffled order, padded with zero rows
        let mut idx: Vec<usize> = (0..rows).rev().collect();
        idx.resize(kmajor_rows(rows), usize::MAX);
        let panel = pack_kmajor(&w, ld, &idx, 2.min(ld - k), k);
        let col0 = 2.min(ld - k);
        // each version of the kernel; AVX2 bit for bit against AVX-512
        let run = |kernel| {
            with_packed_kernel(kernel, || {
                let mut z = vec![f32::NAN; idx.len()];
                gemv_kmajor(&panel, &v, Some(&init), &mut z);
                let mut z2 = z.clone();
                gemv_kmajor(&panel, &v, None, &mut z2);
                (z, z2)
            })
        };
        let (fast, avx2) = (run(PackedKernel::Avx512), run(PackedKernel::Avx2));
        assert_eq!(bits(&avx2.0), bits(&fast.0), "rows {rows} k {k}: AVX2");
        assert_eq!(bits(&avx2.1), bits(&fast.1), "rows {rows} k {k}: AVX2");
        for (z, z2) in [fast, run(PackedKernel::Scalar)] {
            for (r, &i) in idx.iter().enumerate() {
                let dot: f64 = if i == usize::MAX {
                    0.0
                } else {
                    (0..k)
                        .map(|kk| w[i * ld + col0 + kk] as f64 * v[kk] as f64)
                        .sum()
                };
                let want = init[r] as f64 + dot;
                assert!(
                    (z[r] as f64 - want).abs() < 1e-4,
                    "rows {rows} k {k} row {r}: {} vs {want}",
                    z[r]
                );
                assert!((z2[r] as f64 - (want + dot)).abs() < 1e-4);
            }
        }
    }
}

/// The batch-1 generator (weights split across worker threads) gives the logits and states of
/// `SequenceModel::predict` with a carried state, token after token.
#[test]
fn generator_matches_predict() {
    use lstm::model::infer::Generator;
    let cases: Vec<(&str, ModelConfig)> = vec![
        (
            "one-hot 2x256",
            ModelConfig {
                input: InputKind::OneHot { vocab: 65 },
                hidden_size: 256,
                num_layers: 2,
                head: Head::PerStep { outputs: 65 },
                ..Default::default()
            },
        ),
        (
            "embedding 3x150 no bias (3 uneven workers)",
            ModelConfig {
                input: InputKind::Embedding { vocab: 50, dim: 11 },
                hidden_size: 150,
                num_layers: 3,
                bias: false,
                head: Head::PerStep { outputs: 50 },
                ..Default::default()
            },
        ),
        (
            "peephole coupled 1x140",
            ModelConfig {
                input: InputKind::OneHot { vocab: 7 },
                hidden_size: 140,
                peephole: true,
                coupled: true,
                head: Head::PerStep { outputs: 7 },
                ..Default::default()
            },
        ),
        (
            "large vocabulary 1x128 (head split across workers)",
            ModelConfig {
                input: InputKind::OneHot { vocab: 2000 },
                hidden_size: 128,
                head: Head::PerStep { outputs: 2000 },
                ..Default::default()
            },
        ),
        (
            "peephole 2x16",
            ModelConfig {
                input: InputKind::OneHot { vocab: 300 },
                hidden_size: 16,
                num_layers: 2,
                peephole: true,
                head: Head::PerStep { outputs: 300 },
                ..Default::default()
            },
        ),
    ];
    for (name, cfg) in cases {
        let vocab = match cfg.input {
            InputKind::OneHot { vocab } | InputKind::Embedding { vocab, .. } => vocab,
            _ => unreachable!(),
        };
        let mut model = SequenceModel::new(&cfg, 5).unwrap();
        // give the peepholes and biases non-trivial values
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for v in model.store.values.iter_mut() {
            *v += rng.gen_range(-0.05..0.05);
        }
        for threads in [1, 2, 3] {
            let mut g = Generator::new(&model, threads).unwrap();
            model.carry = Some(RecurrentState::default());
            let mut worst = 0.0f32;
            for step in 0..40 {
                let tok = rng.gen_range(0..vocab as u32);
                if step == 25 {
                    g.reset();
                    model.carry = Some(RecurrentState::default());
                }
                let want = model
                    .predict(Inputs::Tokens(&[tok]), 1, 1, None)
                    .unwrap()
                    .to_vec();
                let got = g.step(tok).unwrap();
                assert_eq!(got.len(), want.len());
                for (a, b) in got.iter().zip(&want) {
                    worst = worst.max((a - b).abs() / (1.0 + b.abs()));
                }
            }
            let (sg, sm) = (g.state(), model.carry.clone().unwrap());
            for (a, b) in sg.h.iter().zip(&sm.h).chain(sg.c.iter().zip(&sm.c)) {
                worst = worst.max((a - b).abs());
            }
            assert!(worst < 2e-5, "{name}, {threads} threads: error {worst}");
            assert!(
                g.step(vocab as u32).is_err(),
                "{name}: out-of-vocabulary token"
            );
        }
    }
    let dense = ModelConfig {
        input: InputKind::Dense { features: 1 },
        ..Default::default()
    };
    assert!(Generator::new(&SequenceModel::new(&dense, 0).unwrap(), 2).is_err());
}

/// bfloat16 weights: the logits stay close to the f32 model's (the bound is the accuracy the
/// README quotes for `--bf16`).
#[test]
fn bf16_generator_stays_close() {
    use lstm::model::infer::{Generator, Precision};
    let cfg = ModelConfig {
        input: InputKind::OneHot { vocab: 65 },
        hidden_size: 256,
        num_layers: 2,
        head: Head::PerStep { outputs: 65 },
        ..Default::default()
    };
    let mut model = SequenceModel::new(&cfg, 3).unwrap();
    let mut g = Generator::with_precision(&model, 2, Precision::Bf16).unwrap();
    model.carry = Some(RecurrentState::default());
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (mut worst, mut any) = (0.0f32, 0.0f32);
    for _ in 0..100 {
        let tok = rng.gen_range(0..65u32);
        let want = model
            .predict(Inputs::Tokens(&[tok]), 1, 1, None)
            .unwrap()
            .to_vec();
        let got = g.step(tok).unwrap();
        for (a, b) in got.iter().zip(&want) {
            worst = worst.max((a - b).abs());
            any = any.max(b.abs());
        }
    }
    println!("bf16: worst logit error {worst} (logits up to {any})");
    assert!(worst > 0.0, "bf16 should not be exact");
    assert!(worst < 0.005, "bf16 logit error {worst}");
}

/// A model whose parameters, gradients and optimizer state do not fit in the machine's memory
/// is refused by `ModelConfig::validate` (which `SequenceModel::new` runs before allocating),
/// with a typed error; one that fits passes. Validation allocates nothing, so this is safe on
/// any machine.
#[test]
fn model_too_large_for_memory_is_refused_by_validate() {
    // 4·H·(H + V) ≈ 1.8e9 parameters: under the 2^31 parameter limit, about 28 GB with
    // gradients and Adam's moments
    let cfg = ModelConfig {
        input: InputKind::OneHot { vocab: 65 },
        hidden_size: 21_000,
        head: Head::PerStep { outputs: 65 },
        ..Default::default()
    };
    let need = lstm::model::memory::parameter_bound(&cfg) * 16;
    let have = lstm::model::memory::machine_memory().unwrap_or(64 << 30);
    match cfg.validate() {
        Err(Error::Config(msg)) if need > have => assert!(msg.contains("memory"), "{msg}"),
        Ok(()) if need <= have => {}
        other => panic!("need {need} B, have {have} B, validate gave {other:?}"),
    }
    let small = ModelConfig {
        hidden_size: 64,
        ..cfg
    };
    small.validate().unwrap();
}

/// The LSTM step of `cell::lstm` (the fused AVX-512 pass for the standard cell, the portable
/// passes for the variants) against the documented formulas in `f64`, forward and backward, on
/// widths that leave a partial vector at the end of each gate block.
#[test]
fn lstm_step_matches_the_formulas_in_f64() {
    use lstm::cell::lstm::{backward_step, forward_step, LstmStep, Peepholes};
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    for h in [1usize, 7, 16, 17, 40] {
        for (coupled, peephole) in [(false, false), (true, false), (false, true)] {
            let nb = 3;
            let scale = |v: Vec<f32>, s: f32| v.into_iter().map(|x| x * s).collect::<Vec<_>>();
            let pre = scale(rand_vec(&mut rng, nb * 4 * h), 4.0);
            let pc = scale(rand_vec(&mut rng, nb * h), 2.0);
            let pw = rand_vec(&mut rng, 3 * h);
            let dnh = rand_vec(&mut rng, nb * h);
            let dc_in = rand_vec(&mut rng, nb * h);
            let peep = peephole.then(|| Peepholes {
                i: &pw[..h],
                f: &pw[h..2 * h],
                o: &pw[2 * h..],
            });
            let step = LstmStep {
                hidden: h,
                coupled,
                peepholes: peep,
            };
            let mut gates = pre.clone();
            let (mut nc, mut nh) = (vec![0.0; nb * h], vec![0.0; nb * h]);
            forward_step(&step, nb, &mut gates, &pc, &mut nc, &mut nh);
            let mut dg = vec![0.0; nb * 4 * h];
            let mut dc = dc_in.clone();
            let mut dpeep = vec![0.0; 3 * h];
            backward_step(
                &step,
                nb,
                &gates,
                &pc,
                &nc,
                &dnh,
                &mut dc,
                &mut dg,
                peephole.then_some(&mut dpeep[..]),
            );
            for b in 0..nb {
                for j in 0..h {
                    let a = |k: usize| pre[b * 4 * h + k * h + j] as f64;
                    let c0 = pc[b * h + j] as f64;
                    let (pi, pf, po) = if peephole {
                        (pw[j] as f64, pw[h + j] as f64, pw[2 * h + j] as f64)
                    } else {
                        (0.0, 0.0, 0.0)
                    };
                    let f = sig(a(1) + pf * c0);
                    let i = if coupled {
                        1.0 - f
                    } else {
                        sig(a(0) + pi * c0)
                    };
                    let g = a(2).tanh();
                    let c = f * c0 + i * g;
                    let o = sig(a(3) + po * c);
                    let hh = o * c.tanh();
                    let near = |got: f32, want: f64, what: &str| {
                        assert!(
                            (got as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                            "h={h} coupled={coupled} peephole={peephole} {what}: {got} vs {want}"
                        );
                    };
                    let gi = b * 4 * h + j;
                    if !coupled {
                        near(gates[gi], i, "i");
                    }
                    near(gates[gi + h], f, "f");
                    near(gates[gi + 2 * h], g, "g");
                    near(gates[gi + 3 * h], o, "o");
                    near(nc[b * h + j], c, "next_c");
                    near(nh[b * h + j], hh, "next_h");
                    // backward, from the same formulas
                    let (dh, dcn) = (dnh[b * h + j] as f64, dc_in[b * h + j] as f64);
                    let tc = c.tanh();
                    let d_ao = dh * tc * o * (1.0 - o);
                    let d_cell = dcn + dh * o * (1.0 - tc * tc) + d_ao * po;
                    let d_ag = d_cell * i * (1.0 - g * g);
                    let (d_ai, d_af) = if coupled {
                        (0.0, d_cell * (c0 - g) * f * (1.0 - f))
                    } else {
                        (d_cell * g * i * (1.0 - i), d_cell * c0 * f * (1.0 - f))
                    };
                    let d_prev = d_cell * f + d_ai * pi + d_af * pf;
                    near(dg[gi], d_ai, "d a_i");
                    near(dg[gi + h], d_af, "d a_f");
                    near(dg[gi + 2 * h], d_ag, "d a_g");
                    near(dg[gi + 3 * h], d_ao, "d a_o");
                    near(dc[b * h + j], d_prev, "d prev_c");
                }
            }
        }
    }
}

/// The block softmax cross-entropy (vectorised on AVX-512, with or without the bias folded in)
/// against the definition in `f64`, for class counts that leave partial vectors, with ignored
/// rows.
#[test]
fn cross_entropy_rows_match_the_definition() {
    use lstm::model::loss::{cross_entropy_rows, cross_entropy_rows_bias, IGNORE};
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for classes in [1usize, 5, 16, 17, 65] {
        let rows = 9;
        let logits: Vec<f32> = rand_vec(&mut rng, rows * classes)
            .into_iter()
            .map(|x| x * 8.0)
            .collect();
        let bias = rand_vec(&mut rng, classes);
        let targets: Vec<u32> = (0..rows)
            .map(|r| {
                if r % 4 == 3 {
                    IGNORE
                } else {
                    rng.gen_range(0..classes as u32)
                }
            })
            .collect();
        let scale = 0.25f32;
        for with_bias in [false, true] {
            let mut z = logits.clone();
            let mut dz = vec![f32::NAN; rows * classes];
            let total = if with_bias {
                cross_entropy_rows_bias(&mut z, &bias, &targets, classes, scale, &mut dz)
            } else {
                cross_entropy_rows(&z, &targets, classes, scale, &mut dz)
            };
            let mut want_total = 0.0f64;
            for r in 0..rows {
                let row: Vec<f64> = (0..classes)
                    .map(|c| {
                        let b = if with_bias { bias[c] as f64 } else { 0.0 };
                        logits[r * classes + c] as f64 + b
                    })
                    .collect();
                for c in 0..classes {
                    assert!((z[r * classes + c] as f64 - row[c]).abs() < 1e-5, "logits");
                }
                let t = targets[r];
                if t == IGNORE {
                    assert!(dz[r * classes..(r + 1) * classes].iter().all(|&d| d == 0.0));
                    continue;
                }
                let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
                want_total += sum.ln() + max - row[t as usize];
                for c in 0..classes {
                    let p = (row[c] - max).exp() / sum;
                    let want = scale as f64 * (p - if c == t as usize { 1.0 } else { 0.0 });
                    let got = dz[r * classes + c] as f64;
                    assert!(
                        (got - want).abs() <= 1e-6,
                        "classes {classes} bias {with_bias} row {r} class {c}: {got} vs {want}"
                    );
                }
            }
            assert!(
                (total - want_total).abs() <= 1e-5 * (1.0 + want_total.abs()),
                "classes {classes} bias {with_bias}: loss {total} vs {want_total}"
            );
        }
    }
}
