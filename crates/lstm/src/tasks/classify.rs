//! The classification job: read labelled texts from a TSV, tokenise, train on
//! variable-length batches (padding costs nothing in the recurrence), score with accuracy and
//! a confusion matrix, and predict labels with probabilities.
//!
//! ```
//! use lstm::tasks::classify::softmax;
//! let p = softmax(&[0.0, 0.0]);
//! assert!((p[0] - 0.5).abs() < 1e-6);
//! ```

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::data::labelled::Examples;
use crate::error::Result;
use crate::model::{Batch, Inputs, SequenceModel, Targets};
use crate::tasks::train::{OwnedBatch, TrainTask};

/// Training data of the classification job.
#[derive(Clone, Debug)]
pub struct ClassifyData {
    /// Training examples.
    pub train: Examples,
    /// Validation examples.
    pub val: Examples,
    /// Examples per batch.
    pub batch: usize,
    /// Seed of the per-epoch shuffles.
    pub seed: u64,
    /// Number of classes.
    pub classes: usize,
    /// Word dropout: the chance that a training token is replaced by `unk` (0 = off).
    pub word_dropout: f32,
    /// The unknown token's id (the target of word dropout).
    pub unk: u32,
    cached_epoch: Option<u64>,
    batches: Vec<Vec<usize>>,
}

impl ClassifyData {
    /// New training data.
    pub fn new(
        train: Examples,
        val: Examples,
        batch: usize,
        seed: u64,
        classes: usize,
    ) -> ClassifyData {
        ClassifyData {
            train,
            val,
            batch,
            seed,
            classes,
            word_dropout: 0.0,
            unk: 0,
            cached_epoch: None,
            batches: Vec::new(),
        }
    }

    /// Turns on word dropout: each training token is replaced by `unk` with chance `p`
    /// (validation and prediction see the texts as they are).
    #[must_use]
    pub fn with_word_dropout(mut self, p: f32, unk: u32) -> ClassifyData {
        self.word_dropout = p;
        self.unk = unk;
        self
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.train.labels.len().div_ceil(self.batch)
    }

    /// The batches of an epoch: a seeded shuffle, then examples of similar length grouped
    /// (sorted within pools of 50 batches), then the batches shuffled.
    fn epoch_batches(&mut self, epoch: u64) -> &[Vec<usize>] {
        if self.cached_epoch != Some(epoch) {
            let mut rng =
                ChaCha8Rng::seed_from_u64(self.seed ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut order: Vec<usize> = (0..self.train.labels.len()).collect();
            order.shuffle(&mut rng);
            let pool = self.batch * 50;
            let mut batches = Vec::new();
            for chunk in order.chunks_mut(pool) {
                chunk.sort_by_key(|&i| self.train.tokens[i].len());
                batches.extend(chunk.chunks(self.batch).map(|c| c.to_vec()));
            }
            batches.shuffle(&mut rng);
            self.batches = batches;
            self.cached_epoch = Some(epoch);
        }
        &self.batches
    }
}

/// A padded batch of examples.
pub fn make_batch(ex: &Examples, idx: &[usize]) -> OwnedBatch {
    let t = idx.iter().map(|&i| ex.tokens[i].len()).max().unwrap_or(1);
    let mut out = OwnedBatch {
        batch: idx.len(),
        seq_len: t,
        items: idx.len() as u64,
        lengths: Some(idx.iter().map(|&i| ex.tokens[i].len()).collect()),
        ..Default::default()
    };
    for &i in idx {
        let s = &ex.tokens[i];
        out.tokens.extend_from_slice(s);
        out.tokens.extend(std::iter::repeat_n(0, t - s.len()));
        out.classes.push(ex.labels[i]);
    }
    out
}

impl TrainTask for ClassifyData {
    fn epoch_items(&self) -> u64 {
        self.train.labels.len() as u64
    }

    fn batch_items(&self) -> u64 {
        self.batch as u64
    }

    fn next_batch(&mut self, rng: &mut ChaCha8Rng, position: u64) -> OwnedBatch {
        let per = self.batches_per_epoch() as u64;
        let (epoch, k) = (position / per, (position % per) as usize);
        let idx = self.epoch_batches(epoch)[k].clone();
        let mut b = make_batch(&self.train, &idx);
        if self.word_dropout > 0.0 {
            let t = b.seq_len;
            let lens = b.lengths.clone().unwrap_or_default();
            for (j, &len) in lens.iter().enumerate() {
                for tok in &mut b.tokens[j * t..j * t + len] {
                    if rng.gen::<f32>() < self.word_dropout {
                        *tok = self.unk;
                    }
                }
            }
        }
        b
    }

    fn validate(&mut self, model: &mut SequenceModel) -> Result<f32> {
        Ok(evaluate(model, &self.val, self.batch, self.classes)?.loss)
    }

    fn validate_members(
        &mut self,
        model: &mut SequenceModel,
        members: &mut [SequenceModel],
    ) -> Result<Option<(f32, f64)>> {
        if self.val.labels.is_empty() {
            return Ok(None);
        }
        let e = evaluate_mean(model, members, &self.val, self.batch, self.classes)?;
        Ok(Some((e.loss, e.accuracy)))
    }
}

/// The most classes whose whole confusion matrix [`ClassifyEval`] holds: its size grows with
/// the square of the classes (15,000 classes would take 1.8 GB).
pub const MAX_CONFUSION_CLASSES: usize = 100;

/// How many of the most frequent confusions [`ClassifyEval::top_confusions`] lists.
pub const TOP_CONFUSIONS: usize = 20;

/// Accuracy, confusion matrix and loss of a classifier.
#[derive(Clone, Debug, Serialize)]
pub struct ClassifyEval {
    /// Fraction correct.
    pub accuracy: f64,
    /// `confusion[true][predicted]` counts; empty for more than [`MAX_CONFUSION_CLASSES`]
    /// classes (see [`Self::top_confusions`]).
    pub confusion: Vec<Vec<usize>>,
    /// The most frequent errors, `(true, predicted, count)`, most frequent first (ties by
    /// class), at most [`TOP_CONFUSIONS`].
    pub top_confusions: Vec<(usize, usize, usize)>,
    /// Mean cross-entropy.
    pub loss: f32,
    /// Examples scored.
    pub n: usize,
    /// Precision, recall, F1 and support of each class, in the model's label order.
    pub per_class: Vec<ClassScores>,
    /// The mean F1 of the classes that are true or predicted labels of the scored examples
    /// (scikit-learn's macro average).
    pub macro_f1: f64,
    /// The most frequent true class of the scored examples, and the accuracy of always
    /// predicting it: the baseline a classifier must beat.
    pub majority: (usize, f64),
}

/// One class's scores, as scikit-learn's `classification_report` gives them (a precision
/// of a class never predicted, or a recall of one never true, is 0, its `zero_division`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ClassScores {
    /// Of the examples predicted as the class, the fraction truly of it.
    pub precision: f64,
    /// Of the examples of the class, the fraction predicted as it.
    pub recall: f64,
    /// The harmonic mean of precision and recall (0 when both are).
    pub f1: f64,
    /// Examples of the class.
    pub support: usize,
    /// Examples predicted as the class.
    pub predicted: usize,
}

/// Counts of (true, predicted) pairs, kept sparse: a model of many classes meets few pairs.
#[derive(Default)]
struct Confusion {
    counts: std::collections::HashMap<(usize, usize), usize>,
    correct: usize,
    n: usize,
}

impl Confusion {
    fn add(&mut self, truth: usize, predicted: usize) {
        *self.counts.entry((truth, predicted)).or_default() += 1;
        self.correct += usize::from(truth == predicted);
        self.n += 1;
    }

    fn finish(self, classes: usize, loss: f64) -> ClassifyEval {
        let mut confusion = Vec::new();
        if classes <= MAX_CONFUSION_CLASSES {
            confusion = vec![vec![0usize; classes]; classes];
            for (&(t, p), &c) in &self.counts {
                confusion[t][p] = c;
            }
        }
        let mut top: Vec<(usize, usize, usize)> = self
            .counts
            .iter()
            .filter(|((t, p), _)| t != p)
            .map(|(&(t, p), &c)| (t, p, c))
            .collect();
        top.sort_by(|a, b| b.2.cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
        top.truncate(TOP_CONFUSIONS);
        let mut per_class = vec![ClassScores::default(); classes];
        let mut hits = vec![0usize; classes];
        for (&(t, p), &c) in &self.counts {
            per_class[t].support += c;
            per_class[p].predicted += c;
            if t == p {
                hits[t] += c;
            }
        }
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (mut f1_sum, mut present) = (0.0, 0usize);
        for (c, &hit) in per_class.iter_mut().zip(&hits) {
            c.precision = ratio(hit, c.predicted);
            c.recall = ratio(hit, c.support);
            let pr = c.precision + c.recall;
            c.f1 = if pr > 0.0 {
                2.0 * c.precision * c.recall / pr
            } else {
                0.0
            };
            if c.support + c.predicted > 0 {
                f1_sum += c.f1;
                present += 1;
            }
        }
        // the first of the most frequent classes
        let top_class = (0..classes)
            .max_by(|&a, &b| {
                per_class[a]
                    .support
                    .cmp(&per_class[b].support)
                    .then(b.cmp(&a))
            })
            .unwrap_or(0);
        ClassifyEval {
            accuracy: ratio(self.correct, self.n),
            confusion,
            top_confusions: top,
            loss: (loss / self.n.max(1) as f64) as f32,
            n: self.n,
            macro_f1: if present == 0 {
                0.0
            } else {
                f1_sum / present as f64
            },
            majority: (
                top_class,
                ratio(per_class.get(top_class).map_or(0, |c| c.support), self.n),
            ),
            per_class,
        }
    }
}

/// Probabilities of a logit row.
pub fn softmax(z: &[f32]) -> Vec<f32> {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = z.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Class probabilities for each token sequence, `batch` at a time.
///
/// # Errors
/// Model errors.
pub fn predict(
    model: &mut SequenceModel,
    tokens: &[Vec<u32>],
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(tokens.len());
    let carry = model.carry.take();
    let ex = Examples {
        tokens: tokens.to_vec(),
        labels: vec![0; tokens.len()],
    };
    let idx: Vec<usize> = (0..tokens.len()).collect();
    for chunk in idx.chunks(batch.max(1)) {
        let b = make_batch(&ex, chunk);
        let logits = model.predict(
            Inputs::Tokens(&b.tokens),
            b.batch,
            b.seq_len,
            b.lengths.as_deref(),
        )?;
        let c = logits.len() / b.batch;
        out.extend(logits.chunks(c).map(softmax));
    }
    model.carry = carry;
    Ok(out)
}

/// Scores a classifier on examples.
///
/// # Errors
/// Model errors.
pub fn evaluate(
    model: &mut SequenceModel,
    ex: &Examples,
    batch: usize,
    classes: usize,
) -> Result<ClassifyEval> {
    let mut confusion = Confusion::default();
    let (mut loss, mut n) = (0.0f64, 0usize);
    let idx: Vec<usize> = (0..ex.labels.len()).collect();
    let carry = model.carry.take();
    for chunk in idx.chunks(batch.max(1)) {
        let b = make_batch(ex, chunk);
        let out = model.evaluate(&Batch {
            inputs: Inputs::Tokens(&b.tokens),
            targets: Targets::Classes(&b.classes),
            batch: b.batch,
            seq_len: b.seq_len,
            lengths: b.lengths.as_deref(),
        })?;
        loss += out.loss as f64 * out.count as f64;
        n += out.count;
        let logits = model.outputs();
        for (r, &y) in b.classes.iter().enumerate() {
            let row = &logits[r * classes..(r + 1) * classes];
            let pred = row
                .iter()
                .enumerate()
                .fold(0, |best, (i, &v)| if v > row[best] { i } else { best });
            confusion.add(y as usize, pred);
        }
    }
    model.carry = carry;
    debug_assert_eq!(confusion.n, n);
    Ok(confusion.finish(classes, loss))
}

/// Class probabilities of a classifier of several models (the first `model` and the further
/// `members`, [`crate::tasks::settings::Settings::members`]) for each token sequence: the mean
/// of each model's [`predict`] (exactly [`predict`] of `model` when `members` is empty).
///
/// # Errors
/// Model errors.
pub fn predict_mean(
    model: &mut SequenceModel,
    members: &mut [SequenceModel],
    tokens: &[Vec<u32>],
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    let mut sum = predict(model, tokens, batch)?;
    if members.is_empty() {
        return Ok(sum);
    }
    for m in members.iter_mut() {
        for (row, p) in sum.iter_mut().zip(predict(m, tokens, batch)?) {
            for (s, v) in row.iter_mut().zip(p) {
                *s += v;
            }
        }
    }
    let n = (members.len() + 1) as f32;
    for row in &mut sum {
        for s in row.iter_mut() {
            *s /= n;
        }
    }
    Ok(sum)
}

/// Scores a classifier of several models ([`predict_mean`]) on examples: accuracy and
/// confusion of the mean probabilities' likeliest class, loss the mean of `-ln p[label]` of
/// the mean probabilities. With no `members`, exactly [`evaluate`] of `model`.
///
/// # Errors
/// Model errors.
pub fn evaluate_mean(
    model: &mut SequenceModel,
    members: &mut [SequenceModel],
    ex: &Examples,
    batch: usize,
    classes: usize,
) -> Result<ClassifyEval> {
    if members.is_empty() {
        return evaluate(model, ex, batch, classes);
    }
    let mut confusion = Confusion::default();
    let mut loss = 0.0f64;
    // a chunk of texts at a time: the probabilities of every text at once would take
    // texts × classes floats
    for (tokens, labels) in ex.tokens.chunks(1024).zip(ex.labels.chunks(1024)) {
        let probs = predict_mean(model, members, tokens, batch)?;
        for (p, &y) in probs.iter().zip(labels) {
            let pred = p
                .iter()
                .enumerate()
                .fold(0, |best, (i, &v)| if v > p[best] { i } else { best });
            confusion.add(y as usize, pred);
            loss -= f64::from(p[y as usize].max(f32::MIN_POSITIVE)).ln();
        }
    }
    Ok(confusion.finish(classes, loss))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_class_scores_follow_their_definitions() {
        // truth 0 0 0 1 1 2, predicted 0 0 1 1 2 2, and a fourth class never seen: worked by
        // hand from the definitions (scikit-learn's classification_report gives the same)
        let mut c = Confusion::default();
        for (t, p) in [(0, 0), (0, 0), (0, 1), (1, 1), (1, 2), (2, 2)] {
            c.add(t, p);
        }
        let e = c.finish(4, 0.0);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        let want = [
            (1.0, 2.0 / 3.0, 0.8, 3, 2),
            (0.5, 0.5, 0.5, 2, 2),
            (0.5, 1.0, 2.0 / 3.0, 1, 2),
            (0.0, 0.0, 0.0, 0, 0),
        ];
        for (got, (p, r, f1, support, predicted)) in e.per_class.iter().zip(want) {
            assert!(
                close(got.precision, p) && close(got.recall, r) && close(got.f1, f1),
                "{got:?}"
            );
            assert_eq!((got.support, got.predicted), (support, predicted));
        }
        // the macro average leaves out the class neither true nor predicted
        assert!(
            close(e.macro_f1, (0.8 + 0.5 + 2.0 / 3.0) / 3.0),
            "{}",
            e.macro_f1
        );
        assert!(close(e.accuracy, 4.0 / 6.0));
        assert_eq!(e.majority.0, 0);
        assert!(close(e.majority.1, 0.5));
    }
}
