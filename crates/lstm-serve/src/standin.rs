//! TEMPORARY stand-in for `lstm::model::infer::{BatchGenerator, StreamState}` and
//! `lstm::tasks::text::TextStream` until they land in the library; same contract, one stream
//! at a time through `SequenceModel::predict`. Deleted when the library has them.

use lstm::data::vocab::{TokenKind, Vocab};
use lstm::tasks::text::sample_logits;
use lstm::RecurrentState;
use lstm::{Inputs, SequenceModel};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Many independent streams of one text model.
pub struct BatchGenerator {
    model: SequenceModel,
    logits: Vec<f32>,
}

/// One stream's recurrent state.
pub struct StreamState {
    carry: RecurrentState,
}

impl BatchGenerator {
    /// Whether the model is a unidirectional LSTM with token input and a per-step head.
    pub fn supports(model: &SequenceModel) -> bool {
        lstm::model::infer::Generator::supports(model)
    }

    /// A generator over a copy of `model`'s weights.
    ///
    /// # Errors
    /// Never in the stand-in.
    pub fn new(model: &SequenceModel) -> lstm::Result<BatchGenerator> {
        Ok(BatchGenerator {
            model: model.clone(),
            logits: Vec::new(),
        })
    }

    /// A zero state.
    pub fn new_state(&self) -> StreamState {
        StreamState {
            carry: RecurrentState::default(),
        }
    }

    /// One step of every stream: logits `(B, outputs)`.
    ///
    /// # Errors
    /// Model errors.
    pub fn step(
        &mut self,
        tokens: &[u32],
        states: &mut [&mut StreamState],
    ) -> lstm::Result<&[f32]> {
        self.logits.clear();
        for (t, s) in tokens.iter().zip(states.iter_mut()) {
            self.model.carry = Some(std::mem::take(&mut s.carry));
            let row = self.model.predict(Inputs::Tokens(&[*t]), 1, 1, None)?;
            self.logits.extend_from_slice(row);
            s.carry = self.model.carry.take().unwrap_or_default();
        }
        Ok(&self.logits)
    }
}

/// One request's sampling.
pub struct TextStream {
    ids: Vec<u32>,
    fed: usize,
    next: u32,
    length: usize,
    produced: usize,
    temperature: f32,
    top_k: usize,
    vocab: Vocab,
    rng: ChaCha8Rng,
}

impl TextStream {
    /// A stream continuing `prime` for `length` pieces.
    ///
    /// # Errors
    /// An empty prime, a temperature not above 0.
    pub fn new(
        vocab: &Vocab,
        prime: &str,
        length: usize,
        temperature: f32,
        top_k: usize,
        _top_p: f32,
        seed: u64,
    ) -> lstm::Result<TextStream> {
        let ids = vocab.encode_input(prime);
        if ids.is_empty() || temperature.is_nan() || temperature <= 0.0 {
            return Err(lstm::Error::Config("empty prime or bad temperature".into()));
        }
        Ok(TextStream {
            next: ids[0],
            ids,
            fed: 0,
            length,
            produced: 0,
            temperature,
            top_k,
            vocab: vocab.clone(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// The token to feed this iteration.
    pub fn input(&self) -> u32 {
        self.next
    }

    /// After the step: None while reading the prompt, else the new piece.
    pub fn advance(&mut self, logits_row: &[f32]) -> Option<String> {
        self.fed += 1;
        if self.fed < self.ids.len() {
            self.next = self.ids[self.fed];
            return None;
        }
        let v = self.vocab.len();
        let n = logits_row.len();
        let next = sample_logits(
            &logits_row[n - v..n - 1],
            self.temperature,
            self.top_k,
            &mut self.rng,
        );
        self.next = next as u32;
        self.produced += 1;
        let piece = self.vocab.decode(&[next as u32]);
        Some(if self.vocab.kind == TokenKind::Word {
            format!("{piece} ")
        } else {
            piece
        })
    }

    /// Whether `length` pieces have been produced.
    pub fn done(&self) -> bool {
        self.produced >= self.length
    }

    /// Pieces produced.
    pub fn produced(&self) -> usize {
        self.produced
    }
}
