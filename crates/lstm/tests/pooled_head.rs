//! The concat-pooling head (`Head::Pooled`: last state, max and mean over time): every
//! parameter's gradient against central differences, with embedding or dense input, one or
//! two directions, two layers, variable lengths and dropout; and what the head reads.

use lstm::cell::Mode;
use lstm::model::{Batch, Head, InputKind, Inputs, ModelConfig, SequenceModel, Targets};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

// small: a step must not move which time step holds a maximum
const EPS: f32 = 1e-3;

fn close(num: f64, ana: f32) -> bool {
    (num - ana as f64).abs() <= 2e-3 + 3e-2 * (ana as f64).abs()
}

#[test]
fn pooled_head_gradients() {
    let configs = [
        ModelConfig {
            input: InputKind::Embedding { vocab: 6, dim: 3 },
            hidden_size: 4,
            head: Head::Pooled { outputs: 2 },
            ..Default::default()
        },
        ModelConfig {
            input: InputKind::Embedding { vocab: 6, dim: 3 },
            hidden_size: 4,
            bidirectional: true,
            num_layers: 2,
            dropout: 0.2,
            head_dropout: 0.3,
            head: Head::Pooled { outputs: 3 },
            ..Default::default()
        },
        ModelConfig {
            input: InputKind::Dense { features: 2 },
            mode: Mode::Gru,
            hidden_size: 4,
            bidirectional: true,
            head: Head::Pooled { outputs: 1 },
            ..Default::default()
        },
    ];
    for (ci, cfg) in configs.iter().enumerate() {
        let mut model = SequenceModel::new(cfg, 5).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(40 + ci as u64);
        let (b, t) = (3, 5);
        let tokens: Vec<u32> = (0..b * t).map(|_| rng.gen_range(0..6)).collect();
        let dense: Vec<f32> = (0..b * t * 2).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let outputs = cfg.head.outputs();
        let classes: Vec<u32> = (0..b).map(|_| rng.gen_range(0..outputs as u32)).collect();
        let values: Vec<f32> = (0..b * outputs).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let lengths = [5usize, 2, 4];
        let (inputs, targets) = match cfg.input {
            InputKind::Dense { .. } => (Inputs::Dense(&dense), Targets::Values(&values)),
            _ => (Inputs::Tokens(&tokens), Targets::Classes(&classes)),
        };
        let batch = Batch {
            inputs,
            targets,
            batch: b,
            seq_len: t,
            lengths: Some(&lengths),
        };
        let train = cfg.dropout > 0.0 || cfg.head_dropout > 0.0;
        let eval = |model: &mut SequenceModel| -> f64 {
            model.rng = ChaCha8Rng::seed_from_u64(99);
            model.loss_and_grad(&batch, train).unwrap().loss as f64
        };
        eval(&mut model);
        let grads = model.store.grads.clone();
        assert!(grads.iter().any(|&g| g != 0.0));
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
            "config {ci}: {} mismatches: {:#?}",
            failures.len(),
            &failures[..failures.len().min(8)]
        );
    }
}

/// The head's weight is `3·D·H` wide, padding never reaches the pooled features (a sequence
/// predicts the same alone as padded in a batch), and a saved `last_step` head still parses.
#[test]
fn pooled_head_shapes_padding_and_serde() {
    let cfg = ModelConfig {
        input: InputKind::Embedding { vocab: 7, dim: 3 },
        hidden_size: 4,
        bidirectional: true,
        head: Head::Pooled { outputs: 2 },
        ..Default::default()
    };
    let mut model = SequenceModel::new(&cfg, 1).unwrap();
    assert_eq!(model.store.get("head.weight").unwrap().len(), 2 * 3 * 2 * 4);
    let short = [3u32, 1, 4];
    let alone = model
        .predict(Inputs::Tokens(&short), 1, 3, None)
        .unwrap()
        .to_vec();
    // the same sequence padded with other ids, beside a longer one
    let padded = [3u32, 1, 4, 6, 6, 2, 5, 0, 1, 3];
    let both = model
        .predict(Inputs::Tokens(&padded), 2, 5, Some(&[3, 5]))
        .unwrap()
        .to_vec();
    for (a, b) in alone.iter().zip(&both[..2]) {
        assert!((a - b).abs() < 1e-5, "{alone:?} vs {both:?}");
    }
    let json = serde_json::to_string(&Head::Pooled { outputs: 2 }).unwrap();
    assert_eq!(json, r#"{"kind":"pooled","outputs":2}"#);
    let old: Head = serde_json::from_str(r#"{"kind":"last_step","outputs":2}"#).unwrap();
    assert_eq!(old, Head::LastStep { outputs: 2 });
}
