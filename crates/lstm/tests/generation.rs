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
