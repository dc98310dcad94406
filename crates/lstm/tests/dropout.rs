//! Dropout: training-only and seeded, and a sequence's recurrent-dropout mask follows it into
//! shared lanes.

#![allow(clippy::needless_range_loop)]

mod common;

use common::{bits, rand_vec, stack};
use lstm::cell::Mode;
use lstm::kernels::with_threads;
use lstm::recurrent::{Input, RecurrentCache, RecurrentConfig, SequenceBatch};
use lstm::testing::with_lanes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

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
