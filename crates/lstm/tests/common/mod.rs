//! Helpers shared by the test files: seeded random data, bit patterns, a recurrent stack and a
//! small text model with random weights.

#![allow(dead_code)]

use lstm::model::{Head, InputKind, ModelConfig, SequenceModel};
use lstm::params::ParamStore;
use lstm::recurrent::{Recurrent, RecurrentConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `n` values uniform in `[-1, 1)`.
pub fn rand_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

/// The bit patterns of `v`, for comparisons that must be exact (NaN and signed zero included).
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A recurrent stack with uniform random weights in `[-1, 1)` (seed 1).
pub fn stack(cfg: RecurrentConfig) -> (Recurrent, ParamStore) {
    let mut store = ParamStore::default();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let rnn = Recurrent::new(cfg, &mut store, "", &mut rng).unwrap();
    let w = rand_vec(&mut rng, store.len());
    store.values.copy_from_slice(&w);
    (rnn, store)
}

/// A 2-layer LSTM over 11 one-hot tokens, hidden size 48, one output per step.
pub fn text_model(seed: u64, dropout: f32, recurrent_dropout: f32) -> SequenceModel {
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

/// Relative error of a whole tensor, `|got - want| / |want|` (Euclidean norms, in `f64`).
pub fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let d: f64 = got
        .iter()
        .zip(want)
        .map(|(g, w)| ((g - w) as f64).powi(2))
        .sum();
    let n: f64 = want.iter().map(|w| (*w as f64).powi(2)).sum();
    (d / n.max(1e-30)).sqrt()
}
