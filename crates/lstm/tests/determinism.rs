//! Training is deterministic: the same seed gives bit-identical losses and weights, another
//! seed different ones.

#![allow(clippy::needless_range_loop)]

mod common;

use common::text_model;
use lstm::model::SequenceModel;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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
