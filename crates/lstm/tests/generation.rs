//! The batch-1 generator: the same logits and states as `SequenceModel::predict`, and with
//! bfloat16 weights logits close to the f32 model's.

#![allow(clippy::needless_range_loop)]

use lstm::model::{Head, InputKind, Inputs, ModelConfig, SequenceModel};
use lstm::recurrent::RecurrentState;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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

/// The batched generator: every stream's logits bit for bit those of the batch-1 generator fed
/// the same tokens alone, whatever the other streams and whatever joins or leaves between steps.
#[test]
fn batched_streams_equal_each_stream_alone_bit_for_bit() {
    use lstm::model::batch::BatchGenerator;
    use lstm::model::infer::Generator;
    let cases: Vec<ModelConfig> = vec![
        ModelConfig {
            input: InputKind::OneHot { vocab: 65 },
            hidden_size: 256,
            num_layers: 2,
            head: Head::PerStep { outputs: 65 },
            ..Default::default()
        },
        ModelConfig {
            input: InputKind::Embedding { vocab: 50, dim: 11 },
            hidden_size: 150,
            num_layers: 3,
            bias: false,
            head: Head::PerStep { outputs: 50 },
            ..Default::default()
        },
        ModelConfig {
            input: InputKind::OneHot { vocab: 300 },
            hidden_size: 16,
            num_layers: 2,
            peephole: true,
            coupled: true,
            head: Head::PerStep { outputs: 300 },
            ..Default::default()
        },
    ];
    for cfg in cases {
        let vocab = match cfg.input {
            InputKind::OneHot { vocab } | InputKind::Embedding { vocab, .. } => vocab,
            _ => unreachable!(),
        };
        let mut model = SequenceModel::new(&cfg, 5).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        for v in model.store.values.iter_mut() {
            *v += rng.gen_range(-0.05..0.05);
        }
        // 7 streams of tokens; stream s runs from step start[s] to its end
        let n = 7;
        let tokens: Vec<Vec<u32>> = (0..n)
            .map(|_| (0..30).map(|_| rng.gen_range(0..vocab as u32)).collect())
            .collect();
        let start = [0, 0, 3, 5, 5, 10, 29];
        let len = [30, 12, 20, 1, 24, 15, 1];
        // each stream alone on the batch-1 generator
        let alone: Vec<Vec<Vec<f32>>> = (0..n)
            .map(|s| {
                let mut g = Generator::new(&model, 2).unwrap();
                tokens[s][..len[s]]
                    .iter()
                    .map(|&t| g.step(t).unwrap().to_vec())
                    .collect()
            })
            .collect();
        for threads in [1, 2] {
            lstm::kernels::with_threads(threads, || {
                let mut bg = BatchGenerator::new(&model).unwrap();
                let mut states: Vec<_> = (0..n).map(|_| bg.new_state()).collect();
                for step in 0..40 {
                    let active: Vec<usize> = (0..n)
                        .filter(|&s| step >= start[s] && step < start[s] + len[s])
                        .collect();
                    if active.is_empty() {
                        continue;
                    }
                    let toks: Vec<u32> =
                        active.iter().map(|&s| tokens[s][step - start[s]]).collect();
                    let mut refs: Vec<&mut _> = states
                        .iter_mut()
                        .enumerate()
                        .filter(|(s, _)| active.contains(s))
                        .map(|(_, st)| st)
                        .collect();
                    let logits = bg.step(&toks, &mut refs).unwrap().to_vec();
                    assert_eq!(logits.len(), active.len() * vocab);
                    for (row, &s) in active.iter().enumerate() {
                        let got = &logits[row * vocab..(row + 1) * vocab];
                        let want = &alone[s][step - start[s]];
                        assert!(
                            got.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "stream {s} step {step} ({threads} threads) differs from the stream alone"
                        );
                    }
                }
                // bad input: nothing updated
                let before = states[0].clone();
                assert!(bg.step(&[vocab as u32], &mut [&mut states[0]]).is_err());
                assert!(bg.step(&[0, 1], &mut [&mut states[0]]).is_err());
                assert_eq!(states[0], before);
            });
        }
    }
    let gru = ModelConfig {
        mode: lstm::Mode::Gru,
        input: InputKind::OneHot { vocab: 5 },
        head: Head::PerStep { outputs: 5 },
        ..Default::default()
    };
    assert!(BatchGenerator::new(&SequenceModel::new(&gru, 0).unwrap()).is_err());
}

/// A text stream stepped on the batched generator beside other streams writes the text that
/// `generate` (the binary's `lstm generate`) writes for the same seed.
#[test]
fn text_streams_beside_others_write_what_generate_writes() {
    use lstm::data::vocab::Vocab;
    use lstm::model::batch::BatchGenerator;
    use lstm::model::infer::Precision;
    use lstm::tasks::text::{generate, TextStream};
    let text = "the cat sat on the mat. the dog ate the hat! ";
    let vocab = Vocab::chars_from(text);
    let v = vocab.len();
    let cfg = ModelConfig {
        input: InputKind::OneHot { vocab: v },
        hidden_size: 32,
        num_layers: 2,
        head: Head::PerStep { outputs: v },
        ..Default::default()
    };
    let mut model = SequenceModel::new(&cfg, 3).unwrap();
    let requests = [
        ("the ", 40, 0.8, 0, 1u64),
        ("c", 25, 1.0, 3, 2),
        ("mat. the dog", 30, 0.5, 0, 3),
        ("t", 0, 1.0, 0, 4),
    ];
    let want: Vec<String> = requests
        .iter()
        .map(|&(p, n, t, k, seed)| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            generate(
                &mut model,
                &vocab,
                p,
                n,
                t,
                k,
                Precision::F32,
                &mut rng,
                &mut |_| {},
            )
            .unwrap()
        })
        .collect();
    let mut bg = BatchGenerator::new(&model).unwrap();
    let mut streams: Vec<TextStream> = requests
        .iter()
        .map(|&(p, n, t, k, seed)| TextStream::new(&vocab, p, n, t, k, 1.0, seed).unwrap())
        .collect();
    let mut states: Vec<_> = streams.iter().map(|_| bg.new_state()).collect();
    let mut got = vec![String::new(); streams.len()];
    while streams.iter().any(|s| !s.done()) {
        let live: Vec<usize> = (0..streams.len()).filter(|&i| !streams[i].done()).collect();
        let toks: Vec<u32> = live.iter().map(|&i| streams[i].input()).collect();
        let mut refs: Vec<&mut _> = states
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| live.contains(i))
            .map(|(_, s)| s)
            .collect();
        let logits = bg.step(&toks, &mut refs).unwrap().to_vec();
        for (row, &i) in live.iter().enumerate() {
            if let Some(piece) = streams[i].advance(&logits[row * v..(row + 1) * v]) {
                got[i].push_str(&piece);
            }
        }
    }
    assert_eq!(got, want);
    assert!(TextStream::new(&vocab, "", 5, 1.0, 0, 1.0, 0).is_err());
    assert!(TextStream::new(&vocab, "a", 5, 0.0, 0, 1.0, 0).is_err());
    assert!(TextStream::new(&vocab, "a", 5, 1.0, 0, 0.0, 0).is_err());
}
