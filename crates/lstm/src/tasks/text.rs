//! The text job: a character (or word) language model. Training batches are random windows
//! of the training text; validation and `lstm eval` score non-overlapping windows; generation
//! samples one token at a time with the state carried.
//!
//! ```
//! use lstm::tasks::text::sample_logits;
//! use rand::SeedableRng;
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! // with top-k 1 sampling is greedy
//! assert_eq!(sample_logits(&[0.1, 3.0, 0.2], 1.0, 1, &mut rng), 1);
//! ```

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::data::vocab::Vocab;
use crate::error::{Error, Result};
use crate::model::infer::{Generator, Precision};
use crate::model::loss::IGNORE;
use crate::model::{Batch, Head, InputKind, Inputs, SequenceModel, Targets};
use crate::recurrent::RecurrentState;
use crate::tasks::train::{OwnedBatch, TrainTask};
use crate::tasks::Progress;

/// Encoded text: input ids (unknown -> the unknown token) and target ids (unknown -> skipped).
#[derive(Clone, Debug, Default)]
pub struct Encoded {
    /// Input ids.
    pub input: Vec<u32>,
    /// Target ids.
    pub target: Vec<u32>,
}

impl Encoded {
    /// Encodes `text` with `vocab`.
    pub fn new(vocab: &Vocab, text: &str) -> Encoded {
        Encoded {
            input: vocab.encode_input(text),
            target: vocab.encode_targets(text),
        }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.input.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.input.is_empty()
    }
}

/// Training data of the text job.
#[derive(Clone, Debug)]
pub struct TextData {
    /// Training text.
    pub train: Encoded,
    /// Validation text.
    pub val: Encoded,
    /// Window length.
    pub seq_len: usize,
    /// Windows per batch.
    pub batch: usize,
    /// The windows of `val` each validation scores ([`validation_windows`]): all of them, or
    /// [`VALIDATION_TOKENS`]' worth spread evenly over a longer text.
    pub val_windows: Vec<(usize, usize)>,
}

/// The most tokens a validation during training scores: a longer validation text is scored on
/// full windows spread evenly over it ([`validation_windows`]), so that a 25 MB text's 2.5 MB
/// validation split (11 s a check for a 2x256 model on this machine, against 22 s for the 250
/// steps between checks) does not take most of a run. `lstm eval` scores every character.
pub const VALIDATION_TOKENS: usize = 262_144;

/// The windows `(start, end)` of a text of `len` tokens that [`evaluate`] scores (every
/// `seq_len` tokens from the start; the last one shorter), or, when they hold more than
/// `max_tokens` predictions, `max_tokens / seq_len` full windows of them spread evenly from the
/// first to the last full one.
///
/// ```
/// use lstm::tasks::text::validation_windows;
/// assert_eq!(validation_windows(8, 3, 100), vec![(0, 3), (3, 6), (6, 7)]);
/// // 99 full windows of 10, at most 3 scored: the first, the middle and the last
/// assert_eq!(validation_windows(1000, 10, 30), vec![(0, 10), (490, 500), (980, 990)]);
/// ```
pub fn validation_windows(len: usize, seq_len: usize, max_tokens: usize) -> Vec<(usize, usize)> {
    let n = len.saturating_sub(1);
    let seq_len = seq_len.max(1);
    if n <= max_tokens {
        return (0..n)
            .step_by(seq_len)
            .map(|s| (s, (s + seq_len).min(n)))
            .collect();
    }
    let full = n / seq_len;
    if full == 0 {
        // no full window: the one short window there is
        return vec![(0, n)];
    }
    let k = (max_tokens / seq_len).clamp(1, full);
    (0..k)
        .map(|i| {
            // evenly from the first full window to the last
            let w = if k == 1 { 0 } else { i * (full - 1) / (k - 1) };
            (w * seq_len, (w + 1) * seq_len)
        })
        .collect()
}

impl TextData {
    /// Checks that both parts hold at least one training sequence (`seq_len + 1` tokens).
    ///
    /// # Errors
    /// [`Error::Config`] saying how long the text must be.
    pub fn new(train: Encoded, val: Encoded, seq_len: usize, batch: usize) -> Result<TextData> {
        for (name, e) in [("training", &train), ("validation", &val)] {
            if e.len() <= seq_len {
                return Err(Error::Config(format!(
                    "the {name} text has {} characters; one training sequence needs {} (lower --seq-len or give more text)",
                    e.len(),
                    seq_len.saturating_add(1)
                )));
            }
        }
        // the training text makes the vocabulary; a validation text of none of its characters
        // would score 0 nats over 0 characters
        if val
            .target
            .iter()
            .skip(1)
            .all(|&t| t == crate::model::loss::IGNORE)
        {
            return Err(Error::Config(
                "no character of the validation text (after the first) is in the training text's vocabulary: give a validation text in the same language (--val), or none"
                    .into(),
            ));
        }
        // after the checks: the validation text holds a window
        let val_windows = validation_windows(val.len(), seq_len, VALIDATION_TOKENS);
        Ok(TextData {
            train,
            val,
            seq_len,
            batch,
            val_windows,
        })
    }

    /// What each validation scores, when it is not the whole validation text.
    pub fn validation_note(&self) -> Option<String> {
        let scored: usize = self.val_windows.iter().map(|(s, e)| e - s).sum();
        let all = self.val.len().saturating_sub(1);
        (scored < all).then(|| {
            format!(
                "validation during training: {} windows of {} characters spread evenly over the validation text ({scored} of its {all} predictions); `lstm eval` scores all of it",
                self.val_windows.len(),
                self.seq_len
            )
        })
    }
}

impl TrainTask for TextData {
    fn epoch_items(&self) -> u64 {
        self.train.len() as u64
    }

    fn batch_items(&self) -> u64 {
        (self.seq_len * self.batch) as u64
    }

    fn next_batch(&mut self, rng: &mut ChaCha8Rng, _position: u64) -> OwnedBatch {
        let (t, b) = (self.seq_len, self.batch);
        let mut out = OwnedBatch {
            batch: b,
            seq_len: t,
            items: (b * t) as u64,
            ..Default::default()
        };
        for _ in 0..b {
            let o = rng.gen_range(0..self.train.len() - t);
            out.tokens.extend_from_slice(&self.train.input[o..o + t]);
            out.classes
                .extend_from_slice(&self.train.target[o + 1..o + t + 1]);
        }
        out
    }

    fn validate(&mut self, model: &mut SequenceModel) -> Result<f32> {
        let (total, count) = score_windows(
            model,
            &self.val,
            &self.val_windows,
            self.batch,
            &Progress::default(),
        )?;
        Ok((total / count.max(1) as f64) as f32)
    }

    fn sample(
        &mut self,
        _model: &mut SequenceModel,
        _rng: &mut ChaCha8Rng,
    ) -> Result<Option<String>> {
        Ok(None)
    }
}

/// The text job with sampling during training.
pub struct TextTask {
    /// The data.
    pub data: TextData,
    /// The vocabulary (for samples).
    pub vocab: Vocab,
    /// Characters per sample.
    pub sample_length: usize,
}

impl TrainTask for TextTask {
    fn epoch_items(&self) -> u64 {
        self.data.epoch_items()
    }
    fn batch_items(&self) -> u64 {
        self.data.batch_items()
    }
    fn next_batch(&mut self, rng: &mut ChaCha8Rng, position: u64) -> OwnedBatch {
        self.data.next_batch(rng, position)
    }
    fn validate(&mut self, model: &mut SequenceModel) -> Result<f32> {
        self.data.validate(model)
    }
    fn sample(
        &mut self,
        model: &mut SequenceModel,
        rng: &mut ChaCha8Rng,
    ) -> Result<Option<String>> {
        let text = generate(
            model,
            &self.vocab,
            "\n",
            self.sample_length,
            0.8,
            0,
            Precision::F32,
            rng,
            &mut |_| {},
        )?;
        Ok(Some(text))
    }
}

/// The metric of a text model on some text.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TextEval {
    /// Mean cross-entropy, nats per token.
    pub nats_per_token: f64,
    /// The same in bits.
    pub bits_per_token: f64,
    /// Tokens scored.
    pub tokens: usize,
    /// Targets skipped because the vocabulary does not know them.
    pub skipped: usize,
}

impl TextEval {
    /// The metric from a summed loss (nats) over `count` scored tokens.
    fn from_total(total: f64, count: usize, skipped: usize) -> TextEval {
        let nats = total / count.max(1) as f64;
        TextEval {
            nats_per_token: nats,
            bits_per_token: nats / std::f64::consts::LN_2,
            tokens: count,
            skipped,
        }
    }
}

/// Scores `text` in non-overlapping windows of `seq_len` (state reset at each window), `batch`
/// windows at a time; the tail shorter than a window is scored as one more window.
///
/// # Errors
/// [`Error::Config`] if the text has fewer than 2 tokens; model errors.
pub fn evaluate(
    model: &mut SequenceModel,
    text: &Encoded,
    seq_len: usize,
    batch: usize,
) -> Result<TextEval> {
    evaluate_with(model, text, seq_len, batch, &Progress::default())
}

/// [`evaluate`], reporting the characters scored to `progress` after each batch.
///
/// # Errors
/// As [`evaluate`].
pub fn evaluate_with(
    model: &mut SequenceModel,
    text: &Encoded,
    seq_len: usize,
    batch: usize,
    progress: &Progress,
) -> Result<TextEval> {
    if text.len() < 2 {
        return Err(Error::Config(
            "the text needs at least 2 characters to score".into(),
        ));
    }
    let windows = validation_windows(text.len(), seq_len, usize::MAX);
    let (total, count) = score_windows(model, text, &windows, batch, progress)?;
    let skipped = text.target[1..].iter().filter(|&&t| t == IGNORE).count();
    Ok(TextEval::from_total(total, count, skipped))
}

/// The summed loss (nats) and the number of scored tokens of `windows` of `text`, each window
/// from a fresh state, up to `batch` windows of one length at a time.
fn score_windows(
    model: &mut SequenceModel,
    text: &Encoded,
    windows: &[(usize, usize)],
    batch: usize,
    progress: &Progress,
) -> Result<(f64, usize)> {
    let carry = model.carry.take();
    let (mut total, mut count) = (0.0f64, 0usize);
    let all: usize = windows.iter().map(|&(s, e)| e - s).sum();
    let mut done = 0;
    let mut i = 0;
    let result = loop {
        if i >= windows.len() {
            break Ok(());
        }
        let len = windows[i].1 - windows[i].0;
        let mut j = i;
        while j < windows.len() && j - i < batch.max(1) && windows[j].1 - windows[j].0 == len {
            j += 1;
        }
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for &(s, e) in &windows[i..j] {
            x.extend_from_slice(&text.input[s..e]);
            y.extend_from_slice(&text.target[s + 1..e + 1]);
        }
        let b = Batch {
            inputs: Inputs::Tokens(&x),
            targets: Targets::Classes(&y),
            batch: j - i,
            seq_len: len,
            lengths: None,
        };
        match model.evaluate(&b) {
            Ok(out) => {
                total += out.loss as f64 * out.count as f64;
                count += out.count;
            }
            Err(e) => break Err(e),
        }
        done += (j - i) * len;
        progress.report(done as u64, all as u64);
        i = j;
    };
    model.carry = carry;
    result.map(|()| (total, count))
}

/// Scores `text` as parallel streams (the text cut into `batch` equal segments, fewer when a
/// segment would be shorter than `seq_len`), each read in windows of `seq_len` with the state
/// carried from one window to the next: every character is predicted from all the text before
/// it in its segment, as a language model is used. The characters left after the equal
/// segments (fewer than their number) continue the last segment. Returns the same metric as
/// [`evaluate`].
///
/// # Errors
/// [`Error::Config`] if the text is shorter than 2 tokens; model errors.
pub fn evaluate_stream(
    model: &mut SequenceModel,
    text: &Encoded,
    seq_len: usize,
    batch: usize,
) -> Result<TextEval> {
    evaluate_stream_with(model, text, seq_len, batch, &Progress::default())
}

/// [`evaluate_stream`], reporting the characters scored to `progress` after each batch.
///
/// # Errors
/// As [`evaluate_stream`].
pub fn evaluate_stream_with(
    model: &mut SequenceModel,
    text: &Encoded,
    seq_len: usize,
    batch: usize,
    progress: &Progress,
) -> Result<TextEval> {
    let n = text.len().saturating_sub(1);
    if n < 1 {
        return Err(Error::Config(
            "the text needs at least 2 characters to score".into(),
        ));
    }
    // segments of at least a window: a short text is one stream, not characters scored from
    // a fresh state one by one
    let b = batch.min(n / seq_len.max(1)).max(1);
    let seg = n / b;
    let saved = model.carry.replace(RecurrentState::default());
    let (mut total, mut count) = (0.0f64, 0usize);
    let mut start = 0;
    while start < seg {
        let len = seq_len.min(seg - start);
        let (mut x, mut y) = (Vec::with_capacity(b * len), Vec::with_capacity(b * len));
        for k in 0..b {
            let s = k * seg + start;
            x.extend_from_slice(&text.input[s..s + len]);
            y.extend_from_slice(&text.target[s + 1..s + len + 1]);
        }
        let out = model.evaluate(&Batch {
            inputs: Inputs::Tokens(&x),
            targets: Targets::Classes(&y),
            batch: b,
            seq_len: len,
            lengths: None,
        })?;
        total += out.loss as f64 * out.count as f64;
        count += out.count;
        start += len;
        progress.report((start * b) as u64, n as u64);
    }
    // the rest, after the equal segments, continues the last of them (it follows it in the
    // text): from the final state of its lane, in windows (from a fresh state before
    // 2026-12-07)
    let mut start = seg * b;
    let slabs = model.config().num_layers * if model.config().bidirectional { 2 } else { 1 };
    model.carry = Some(
        model
            .carry
            .take()
            .map_or_else(RecurrentState::default, |st| last_lane(&st, slabs, b)),
    );
    while start < n {
        let len = seq_len.min(n - start);
        let out = model.evaluate(&Batch {
            inputs: Inputs::Tokens(&text.input[start..start + len]),
            targets: Targets::Classes(&text.target[start + 1..start + len + 1]),
            batch: 1,
            seq_len: len,
            lengths: None,
        })?;
        total += out.loss as f64 * out.count as f64;
        count += out.count;
        start += len;
        progress.report(start as u64, n as u64);
    }
    model.carry = saved;
    let skipped = text.target[1..=n].iter().filter(|&&t| t == IGNORE).count();
    Ok(TextEval::from_total(total, count, skipped))
}

/// The state of lane `b - 1` of a state of `b` lanes (`(slabs, b, width)` each of `h` and `c`).
fn last_lane(st: &RecurrentState, slabs: usize, b: usize) -> RecurrentState {
    let lane = |v: &[f32]| -> Vec<f32> {
        let width = v.len() / (slabs * b).max(1);
        (0..slabs)
            .flat_map(|s| {
                let at = (s * b + b - 1) * width;
                v[at..at + width].iter().copied()
            })
            .collect()
    };
    RecurrentState {
        h: lane(&st.h),
        c: lane(&st.c),
    }
}

/// Scores `text` as one stream, token by token, through the batch-1 [`Generator`] that
/// [`generate`] uses, with the weights in `precision`: what a generated character costs in
/// nats, and so what [`Precision::Bf16`] costs in accuracy against [`Precision::F32`].
///
/// # Errors
/// [`Error::Config`] if the model is not supported by the generator (see
/// [`Generator::supports`]) or the text has fewer than 2 tokens.
pub fn evaluate_generator(
    model: &SequenceModel,
    text: &Encoded,
    precision: Precision,
) -> Result<TextEval> {
    evaluate_generator_with(model, text, precision, &Progress::default())
}

/// [`evaluate_generator`], reporting the characters scored to `progress` every 4,096.
///
/// # Errors
/// As [`evaluate_generator`].
pub fn evaluate_generator_with(
    model: &SequenceModel,
    text: &Encoded,
    precision: Precision,
    progress: &Progress,
) -> Result<TextEval> {
    if text.len() < 2 {
        return Err(Error::Config(
            "the text needs at least 2 characters to score".into(),
        ));
    }
    let mut g = Generator::with_precision(model, 0, precision)?;
    let (mut total, mut count, mut skipped) = (0.0f64, 0usize, 0usize);
    let all = (text.len() - 1) as u64;
    for (i, (&x, &y)) in text.input.iter().zip(&text.target[1..]).enumerate() {
        if i > 0 && i % 4096 == 0 {
            progress.report(i as u64, all);
        }
        let logits = g.step(x)?;
        if y == IGNORE {
            skipped += 1;
            continue;
        }
        let m = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let lse = m + logits
            .iter()
            .map(|&l| (l as f64 - m).exp())
            .sum::<f64>()
            .ln();
        total += lse - logits[y as usize] as f64;
        count += 1;
    }
    progress.report(all, all);
    Ok(TextEval::from_total(total, count, skipped))
}

/// Draws a token from logits with a temperature and an optional top-k cut (0 = all). A
/// building block: `temperature` is taken as given (above 0; the callers, [`generate`] and
/// [`TextStream::new`], refuse another).
///
/// # Panics
/// If `logits` is empty.
pub fn sample_logits(
    logits: &[f32],
    temperature: f32,
    top_k: usize,
    rng: &mut ChaCha8Rng,
) -> usize {
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    if top_k > 0 && top_k < logits.len() {
        idx.sort_by(|&a, &b| {
            logits[b]
                .partial_cmp(&logits[a])
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        idx.truncate(top_k);
    }
    let max = idx
        .iter()
        .map(|&i| logits[i])
        .fold(f32::NEG_INFINITY, f32::max);
    let w: Vec<f64> = idx
        .iter()
        .map(|&i| (((logits[i] - max) / temperature) as f64).exp())
        .collect();
    let sum: f64 = w.iter().sum();
    let mut r = rng.gen::<f64>() * sum;
    for (k, &wi) in w.iter().enumerate() {
        r -= wi;
        if r <= 0.0 {
            return idx[k];
        }
    }
    idx[idx.len() - 1]
}

/// As [`sample_logits`], keeping only the smallest set of likeliest tokens whose probabilities
/// (after the temperature and the top-k cut) sum to at least `top_p` (nucleus sampling);
/// `top_p >= 1` is [`sample_logits`] exactly, with the same draws.
///
/// # Panics
/// If `logits` is empty.
pub fn sample_logits_top_p(
    logits: &[f32],
    temperature: f32,
    top_k: usize,
    top_p: f32,
    rng: &mut ChaCha8Rng,
) -> usize {
    if top_p >= 1.0 {
        return sample_logits(logits, temperature, top_k, rng);
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| {
        logits[b]
            .partial_cmp(&logits[a])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if top_k > 0 && top_k < logits.len() {
        idx.truncate(top_k);
    }
    let max = logits[idx[0]];
    let w: Vec<f64> = idx
        .iter()
        .map(|&i| (((logits[i] - max) / temperature) as f64).exp())
        .collect();
    let total: f64 = w.iter().sum();
    // the nucleus: the likeliest tokens until their share reaches top_p (at least one)
    let (mut keep, mut share) = (0, 0.0);
    while keep < w.len() && (keep == 0 || share < top_p as f64 * total) {
        share += w[keep];
        keep += 1;
    }
    let mut r = rng.gen::<f64>() * share;
    for (k, &wi) in w[..keep].iter().enumerate() {
        r -= wi;
        if r <= 0.0 {
            return idx[k];
        }
    }
    idx[keep - 1]
}

/// One generation request stepped from outside, for continuous batching: which token to feed
/// next ([`input`](Self::input)), and after each step, from that step's logits, the next piece
/// of text ([`advance`](Self::advance)). It samples exactly as [`generate`] does (the prime fed
/// token by token, the unknown token never sampled, a space after each word), so with the same
/// seed, `top_p = 1` and bit-identical logits (a [`crate::model::batch::BatchGenerator`]) it
/// produces the same text as [`generate`] and `lstm generate`.
#[derive(Clone, Debug)]
pub struct TextStream {
    vocab: Vocab,
    ids: Vec<u32>,
    /// The next prime token to feed (`ids.len()` once generating).
    pos: usize,
    next: u32,
    length: usize,
    produced: usize,
    temperature: f32,
    top_k: usize,
    top_p: f32,
    rng: ChaCha8Rng,
}

impl TextStream {
    /// A request continuing `prime` with `length` pieces.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty prime, a temperature that is not a positive number, or
    /// `top_p` outside `(0, 1]`.
    pub fn new(
        vocab: &Vocab,
        prime: &str,
        length: usize,
        temperature: f32,
        top_k: usize,
        top_p: f32,
        seed: u64,
    ) -> Result<TextStream> {
        use rand::SeedableRng;
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(Error::Config(format!(
                "temperature must be a positive number, got {temperature}"
            )));
        }
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(Error::Config(format!(
                "top_p must be in (0, 1], got {top_p}"
            )));
        }
        check_generating_vocab(vocab)?;
        let ids = vocab.encode_input(prime);
        if ids.is_empty() {
            return Err(Error::Config(
                "the prime text is empty; give at least one character".into(),
            ));
        }
        Ok(TextStream {
            vocab: vocab.clone(),
            next: ids[0],
            ids,
            pos: 0,
            length,
            produced: 0,
            temperature,
            top_k,
            top_p,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// The token to feed at this step.
    pub fn input(&self) -> u32 {
        if self.pos < self.ids.len() {
            self.ids[self.pos]
        } else {
            self.next
        }
    }

    /// Takes this step's logits (the model's row for [`input`](Self::input)): `None` while the
    /// prime is being read, else the sampled piece of text.
    ///
    /// # Panics
    /// If `logits` has fewer values than the vocabulary (a row of another model).
    pub fn advance(&mut self, logits: &[f32]) -> Option<String> {
        if self.pos + 1 < self.ids.len() {
            self.pos += 1;
            return None;
        }
        if self.done() {
            return None;
        }
        self.pos = self.ids.len();
        let v = self.vocab.len();
        assert!(
            logits.len() >= v,
            "{} logits for a vocabulary of {v}: a row of another model",
            logits.len()
        );
        // never produce the unknown token (the last output)
        let next = sample_logits_top_p(
            &logits[logits.len() - v..logits.len() - 1],
            self.temperature,
            self.top_k,
            self.top_p,
            &mut self.rng,
        );
        self.next = next as u32;
        self.produced += 1;
        let piece = self.vocab.decode(&[next as u32]);
        Some(if self.vocab.kind == crate::data::vocab::TokenKind::Word {
            format!("{piece} ")
        } else {
            piece
        })
    }

    /// Whether all `length` pieces have been produced.
    pub fn done(&self) -> bool {
        self.produced >= self.length
    }

    /// Pieces produced so far.
    pub fn produced(&self) -> usize {
        self.produced
    }

    /// The prime's length in tokens.
    pub fn prompt_tokens(&self) -> usize {
        self.ids.len()
    }
}

/// Generates `length` tokens after `prime`, calling `emit` with each new token's text as it
/// is produced; returns the generated text (without the prime). The unknown token is never
/// sampled. Unidirectional LSTM models run on the batch-1 [`Generator`] (weights in
/// `precision`, split across the library's threads); other models through
/// [`SequenceModel::predict`] (`precision` is then ignored).
///
/// # Errors
/// [`Error::Config`] for an empty prime, `temperature <= 0` (or not finite), a model that is
/// not a unidirectional text model of `vocab`'s size, or outputs that are not finite (damaged
/// weights); model errors.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    model: &mut SequenceModel,
    vocab: &Vocab,
    prime: &str,
    length: usize,
    temperature: f32,
    top_k: usize,
    precision: Precision,
    rng: &mut ChaCha8Rng,
    emit: &mut dyn FnMut(&str),
) -> Result<String> {
    generate_until(
        model,
        vocab,
        prime,
        length,
        temperature,
        top_k,
        precision,
        rng,
        &mut |piece| {
            emit(piece);
            true
        },
    )
}

/// [`generate`], stopping early (with the text so far) after a token for which `emit` returns
/// `false`: a reader that went away.
///
/// # Errors
/// As [`generate`].
#[allow(clippy::too_many_arguments)]
pub fn generate_until(
    model: &mut SequenceModel,
    vocab: &Vocab,
    prime: &str,
    length: usize,
    temperature: f32,
    top_k: usize,
    precision: Precision,
    rng: &mut ChaCha8Rng,
    emit: &mut dyn FnMut(&str) -> bool,
) -> Result<String> {
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(Error::Config(format!(
            "temperature must be a positive number, got {temperature}"
        )));
    }
    check_generator(model, vocab)?;
    let ids = vocab.encode_input(prime);
    if ids.is_empty() {
        return Err(Error::Config(
            "the prime text is empty; give at least one character".into(),
        ));
    }
    let v = vocab.len();
    let mut out = String::new();
    let mut pick = |last: &[f32], rng: &mut ChaCha8Rng| -> Result<(u32, bool)> {
        // never produce the unknown token
        let logits = &last[last.len() - v..last.len() - 1];
        if logits.iter().any(|l| !l.is_finite()) {
            return Err(non_finite_logits());
        }
        let next = sample_logits(logits, temperature, top_k, rng);
        let piece = vocab.decode(&[next as u32]);
        let piece = if vocab.kind == crate::data::vocab::TokenKind::Word {
            format!("{piece} ")
        } else {
            piece
        };
        let go_on = emit(&piece);
        out.push_str(&piece);
        Ok((next as u32, go_on))
    };
    if Generator::supports(model) {
        // batch-1 path: weights split across the cores, no allocation per token
        let mut g = Generator::with_precision(model, 0, precision)?;
        let (&last_id, head) = ids.split_last().expect("checked non-empty");
        for &id in head {
            g.step(id)?;
        }
        let mut next = last_id;
        for _ in 0..length {
            let go_on;
            (next, go_on) = pick(g.step(next)?, rng)?;
            if !go_on {
                break;
            }
        }
    } else {
        let saved = model.carry.replace(RecurrentState::default());
        let mut logits = model.predict(Inputs::Tokens(&ids), 1, ids.len(), None)?;
        for _ in 0..length {
            let (next, go_on) = match pick(logits, rng) {
                Ok(p) => p,
                Err(e) => {
                    model.carry = saved;
                    return Err(e);
                }
            };
            if !go_on {
                break;
            }
            logits = model.predict(Inputs::Tokens(&[next]), 1, 1, None)?;
        }
        model.carry = saved;
    }
    Ok(out)
}

/// The error for a model whose outputs are NaN or infinite: sampling from them would pick the
/// same token whatever the seed.
fn non_finite_logits() -> Error {
    Error::Config(
        "the model's outputs are not finite numbers (NaN or infinite): its weights are damaged \
         or come from a diverged training; retrain it or use an earlier checkpoint"
            .into(),
    )
}

/// Checks that `model` can generate tokens of `vocab`: a text model's shape (token input and
/// one output per token at every step, unidirectional: a bidirectional network reads the
/// future it would be generating).
/// A vocabulary that holds a token to generate besides the unknown one, which is never
/// generated (a library probe, 2026-12-07: one of the unknown token alone panicked).
fn check_generating_vocab(vocab: &Vocab) -> Result<()> {
    if vocab.len() < 2 {
        return Err(Error::Config(
            "the vocabulary holds no token besides the unknown one, which is never generated: nothing can be generated".into(),
        ));
    }
    Ok(())
}

fn check_generator(model: &SequenceModel, vocab: &Vocab) -> Result<()> {
    check_generating_vocab(vocab)?;
    let c = model.config();
    let tokens = match c.input {
        InputKind::OneHot { vocab } | InputKind::Embedding { vocab, .. } => Some(vocab),
        InputKind::Dense { .. } | InputKind::DenseWithIds { .. } => None,
    };
    if !matches!(c.head, Head::PerStep { outputs } if outputs == vocab.len())
        || tokens != Some(vocab.len())
    {
        return Err(Error::Config(format!(
            "generation needs a text model (token input and one output per token of its {}-token vocabulary at every step); this network is {:?} -> {:?}",
            vocab.len(),
            c.input,
            c.head
        )));
    }
    if c.bidirectional {
        return Err(Error::Config(
            "a bidirectional network cannot generate: its backward direction reads the text \
             it would be generating"
                .into(),
        ));
    }
    Ok(())
}
