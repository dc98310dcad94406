//! Bad input gives typed errors, not panics: wrong shapes, lengths, states and tokens, a backward
//! without forward, and a model too large for the machine's memory.

#![allow(clippy::needless_range_loop)]

mod common;

use common::{stack, text_model};
use lstm::cell::Mode;
use lstm::model::{Batch, Head, InputKind, Inputs, ModelConfig, Targets};
use lstm::params::ParamStore;
use lstm::recurrent::{
    Input, Recurrent, RecurrentCache, RecurrentConfig, RecurrentState, SequenceBatch,
};
use lstm::Error;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

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
