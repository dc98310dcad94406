//! Initialisation follows its definition: forget-gate bias, orthogonal recurrent blocks, the
//! Glorot bound for input weights, and PyTorch's uniform option.

#![allow(clippy::needless_range_loop)]

use lstm::params::ParamStore;
use lstm::recurrent::{Recurrent, RecurrentConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

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
