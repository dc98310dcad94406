//! A text model's validation during training: the whole validation text when it is short, and
//! [`VALIDATION_TOKENS`]' worth of full windows spread evenly over a longer one, each scored
//! as `lstm eval` scores a window. And `lstm eval`'s progress reports.

use lstm::model::infer::Precision;
use lstm::model::{Head, InputKind, ModelConfig, SequenceModel};
use lstm::tasks::text::{
    evaluate, evaluate_generator_with, evaluate_stream_with, evaluate_with, validation_windows,
    Encoded, TextData, VALIDATION_TOKENS,
};
use lstm::tasks::train::TrainTask;
use lstm::tasks::Progress;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, Mutex};

fn random_text(len: usize, vocab: u32, seed: u64) -> Encoded {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let input: Vec<u32> = (0..len).map(|_| rng.gen_range(0..vocab)).collect();
    Encoded {
        target: input.clone(),
        input,
    }
}

fn model(vocab: usize) -> SequenceModel {
    let cfg = ModelConfig {
        input: InputKind::OneHot { vocab },
        hidden_size: 8,
        num_layers: 1,
        head: Head::PerStep { outputs: vocab },
        ..Default::default()
    };
    SequenceModel::new(&cfg, 5).unwrap()
}

/// A validation text under the cap is scored whole, as `evaluate` scores it, with no note.
#[test]
fn a_short_validation_text_is_scored_whole() {
    let mut m = model(7);
    let val = random_text(5_000, 7, 1);
    let mut data = TextData::new(random_text(500, 7, 2), val.clone(), 32, 16).unwrap();
    assert!(data.validation_note().is_none());
    let got = data.validate(&mut m).unwrap();
    let want = evaluate(&mut m, &val, 32, 16).unwrap().nats_per_token as f32;
    assert_eq!(got, want);
}

/// A validation text over the cap: the scored windows are full, distinct, in order, from the
/// first to the last full window, at most the cap's worth; the loss is the mean over them, each
/// window scored alone from its own slice of the text (an independent computation: one
/// window at a time, batch 1).
#[test]
fn a_long_validation_text_is_scored_on_windows_spread_over_it() {
    let (vocab, seq_len) = (5usize, 50usize);
    let len = 3 * VALIDATION_TOKENS + 17;
    let val = random_text(len, vocab as u32, 3);
    let mut data =
        TextData::new(random_text(500, vocab as u32, 4), val.clone(), seq_len, 64).unwrap();
    let w = &data.val_windows;
    assert_eq!(w.len(), VALIDATION_TOKENS / seq_len);
    assert!(w.iter().all(|&(s, e)| e - s == seq_len && e < len));
    assert!(
        w.windows(2).all(|p| p[0].1 <= p[1].0),
        "in order, not overlapping"
    );
    assert_eq!(w[0].0, 0);
    let last_full = (len - 1) / seq_len - 1;
    assert_eq!(w[w.len() - 1].0, last_full * seq_len);
    // evenly: no gap more than one window away from the mean gap
    let gaps: Vec<usize> = w.windows(2).map(|p| p[1].0 - p[0].0).collect();
    let (lo, hi) = (gaps.iter().min().unwrap(), gaps.iter().max().unwrap());
    assert!(hi - lo <= seq_len, "gaps {lo}..{hi}");
    let note = data.validation_note().unwrap();
    assert!(
        note.contains(&format!("{} windows", w.len())) && note.contains("lstm eval"),
        "{note}"
    );

    let mut m = model(vocab);
    let got = data.validate(&mut m).unwrap() as f64;
    let (mut total, mut count) = (0.0f64, 0usize);
    for &(s, e) in &data.val_windows.clone() {
        let slice = Encoded {
            input: val.input[s..=e].to_vec(),
            target: val.target[s..=e].to_vec(),
        };
        let one = evaluate(&mut m, &slice, seq_len, 1).unwrap();
        assert_eq!(one.tokens, seq_len);
        total += one.nats_per_token * one.tokens as f64;
        count += one.tokens;
    }
    let want = total / count as f64;
    assert!(
        (got - want).abs() <= 1e-5 * want,
        "validation {got} against {want} window by window"
    );
    // and it is not the whole text's figure by accident of the windows being all of it
    assert!(count < len - 1);
}

/// The windows of a short text are `evaluate`'s: every `seq_len` tokens, the last shorter.
#[test]
fn validation_windows_cover_a_short_text() {
    assert_eq!(
        validation_windows(10, 4, VALIDATION_TOKENS),
        vec![(0, 4), (4, 8), (8, 9)]
    );
    assert_eq!(validation_windows(1, 4, 10), Vec::<(usize, usize)>::new());
    // a cap under one window still scores one window
    assert_eq!(validation_windows(100, 10, 3), vec![(0, 10)]);
    // over the cap without a full window: the short one (it panicked, the second review)
    assert_eq!(validation_windows(100, 200, 10), vec![(0, 99)]);
}

/// A validation text over the cap but shorter than one sequence is the usual error, not a
/// panic (the second review, 2026-12-07: the windows were computed before the checks).
#[test]
fn a_long_validation_text_shorter_than_a_sequence_is_an_error() {
    let val = random_text(VALIDATION_TOKENS + 10, 4, 7);
    let e = TextData::new(
        random_text(2 * VALIDATION_TOKENS, 4, 8),
        val,
        VALIDATION_TOKENS + 100,
        1,
    )
    .expect_err("refused");
    assert!(e.to_string().contains("the validation text has"), "{e}");
}

/// A raised stop flag ends a model's forward passes before they begin (Python's abandoned
/// calls), and a lowered or absent one does not change what they compute.
#[test]
fn a_raised_stop_flag_ends_forward_passes() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let mut m = model(5);
    let val = random_text(2_000, 5, 6);
    let before = evaluate(&mut m, &val, 20, 8).unwrap().nats_per_token;
    let flag = Arc::new(AtomicBool::new(false));
    m.stop = Some(Arc::clone(&flag));
    assert_eq!(
        evaluate(&mut m, &val, 20, 8).unwrap().nats_per_token,
        before
    );
    flag.store(true, Ordering::SeqCst);
    let e = evaluate(&mut m, &val, 20, 8).unwrap_err();
    assert!(matches!(e, lstm::Error::Interrupted), "{e}");
    assert!(m
        .predict(lstm::model::Inputs::Tokens(&val.input[..20]), 1, 20, None)
        .is_err());
    m.stop = None;
    assert_eq!(
        evaluate(&mut m, &val, 20, 8).unwrap().nats_per_token,
        before
    );
}

/// Each way of scoring a text reports its progress: never backwards, never past the total,
/// ending at the total, which is the characters it scored (the scored ones and those skipped
/// as unknown); and reporting changes no figure.
#[test]
fn scoring_a_text_reports_its_progress_to_the_end() {
    let (vocab, seq_len, batch) = (6usize, 20usize, 4usize);
    let mut text = random_text(10_007, vocab as u32, 9);
    text.target[100] = lstm::model::loss::IGNORE;
    let mut m = model(vocab);
    for mode in ["windows", "stream", "generator"] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let p = Progress::new(move |done, total| log.lock().unwrap().push((done, total)));
        let (with, without) = match mode {
            "windows" => (
                evaluate_with(&mut m, &text, seq_len, batch, &p).unwrap(),
                evaluate_with(&mut m, &text, seq_len, batch, &Progress::default()).unwrap(),
            ),
            "stream" => (
                evaluate_stream_with(&mut m, &text, seq_len, batch, &p).unwrap(),
                evaluate_stream_with(&mut m, &text, seq_len, batch, &Progress::default()).unwrap(),
            ),
            _ => (
                evaluate_generator_with(&m, &text, Precision::F32, &p).unwrap(),
                evaluate_generator_with(&m, &text, Precision::F32, &Progress::default()).unwrap(),
            ),
        };
        assert_eq!(with.nats_per_token, without.nats_per_token, "{mode}");
        let seen = seen.lock().unwrap();
        assert!(seen.len() > 1, "{mode}: {} reports", seen.len());
        let total = seen[0].1;
        assert_eq!(total as usize, with.tokens + with.skipped, "{mode}");
        assert!(
            seen.windows(2).all(|w| w[0].0 <= w[1].0 && w[1].1 == total),
            "{mode}: {seen:?}"
        );
        assert_eq!(seen.last().unwrap().0, total, "{mode}");
    }
}

/// Checks `evaluate_stream` (batch `batch`) of texts of a few lengths against `reference`
/// scoring each segment's characters on its own (returning the nats and the tokens): segment k
/// predicts targets k·seg+1 ..= (k+1)·seg from the characters before them, the last one also
/// the rest, up to the end.
fn check_stream_segments(
    m: &mut SequenceModel,
    vocab: usize,
    reference: &mut dyn FnMut(&mut SequenceModel, &Encoded) -> (f64, usize),
    what: &str,
) {
    let (seq_len, batch) = (20usize, 4usize);
    for n in [84usize, 87, 150] {
        let text = random_text(n, vocab as u32, 3);
        let got = evaluate_stream_with(m, &text, seq_len, batch, &Progress::default()).unwrap();
        let scored = n - 1;
        let b = batch.min(scored / seq_len).max(1);
        let seg = scored / b;
        let mut total = 0.0f64;
        for k in 0..b {
            let end = if k == b - 1 { n } else { (k + 1) * seg + 1 };
            let part = Encoded {
                input: text.input[k * seg..end].to_vec(),
                target: text.target[k * seg..end].to_vec(),
            };
            let (nats, tokens) = reference(m, &part);
            total += nats * tokens as f64;
        }
        let want = total / scored as f64;
        assert_eq!(got.tokens, scored);
        assert!(
            (got.nats_per_token - want).abs() <= 1e-5 * want,
            "{what}, n {n}: {} against {want}",
            got.nats_per_token
        );
    }
}

/// `evaluate_stream` scores each of its equal segments as one stream from a fresh state, and
/// the characters left after them as the last segment's continuation: the same total as the
/// batch-1 generator scoring each segment's characters on its own, the last one with the rest
/// (an independent path, token by token). Before 2026-12-07 the rest began from a fresh state.
#[test]
fn a_stream_score_is_its_segments_scored_one_by_one() {
    let vocab = 6;
    let mut m = model(vocab);
    check_stream_segments(
        &mut m,
        vocab,
        &mut |m, part| {
            let e = evaluate_generator_with(m, part, Precision::F32, &Progress::default()).unwrap();
            (e.nats_per_token, e.tokens)
        },
        "one LSTM layer",
    );
}

/// The same for other stacks (a review, 2026-12-07): the last segment's state is taken from
/// every layer, with a projection, in a GRU and a plain RNN; the reference scores each
/// segment as a stream of its own (batch 1, no rest).
#[test]
fn a_stream_score_continues_the_last_segment_in_every_layer() {
    use lstm::cell::Mode;
    let vocab = 6;
    for (mode, layers, proj) in [
        (Mode::Lstm, 2usize, 5usize),
        (Mode::Gru, 3, 0),
        (Mode::Lstm, 3, 0),
        (Mode::RnnTanh, 2, 0),
    ] {
        let cfg = ModelConfig {
            input: InputKind::OneHot { vocab },
            mode,
            hidden_size: 8,
            num_layers: layers,
            proj_size: proj,
            head: Head::PerStep { outputs: vocab },
            ..Default::default()
        };
        let mut m = SequenceModel::new(&cfg, 7).unwrap();
        check_stream_segments(
            &mut m,
            vocab,
            &mut |m, part| {
                let e = evaluate_stream_with(m, part, 20, 1, &Progress::default()).unwrap();
                (e.nats_per_token, e.tokens)
            },
            &format!("{mode:?}, {layers} layers, projection {proj}"),
        );
    }
}
