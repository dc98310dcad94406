//! Many generation streams of one model at once: the server's continuous batching.
//!
//! A [`BatchGenerator`] advances any set of independent streams (each with its own
//! [`StreamState`]) by one token in one pass: per layer one product of the recurrent weights
//! with every stream's `h` ([`gemv_kmajor_rows`]: the weights streamed once for every three
//! streams rather than once per stream), the cell per stream, then one product of the head.
//! Streams join and leave between steps simply by being passed or not.
//!
//! Every stream's logits are bit for bit those of the batch-1 [`Generator`]
//! fed the same tokens, whatever the other streams: the weights are packed the same way, and
//! each element's sum runs over the same columns in the same order with the same fused
//! multiply-adds ([`gemv_kmajor_rows`]). So a request's text does not depend on what else the
//! server is doing, and equals `lstm generate`'s for the same seed (tested in
//! `tests/generation.rs`).

use crate::cell::lstm::{forward_step, LstmStep, Peepholes};
use crate::error::{Error, Result};
use crate::kernels::{gemv_kmajor_rows, kmajor_rows, pack_kmajor};
use crate::model::infer::{gate_rows, Generator};
use crate::model::{InputKind, SequenceModel};

/// One layer's packed weights: gate rows `i, f, g, o` of all units, padded to 16.
struct Layer {
    /// `W_ih` packed `(rows, input)`; empty for a one-hot layer 0.
    w_x: Vec<f32>,
    /// `W_hh` packed `(rows, H)`.
    w_h: Vec<f32>,
    /// `b_ih + b_hh` `(rows)`.
    bias: Vec<f32>,
    /// One-hot layer 0: `W_ih[:, v] + bias` for every token `v`, `(vocab, rows)`.
    table: Vec<f32>,
    /// Input width (0 for one-hot).
    input: usize,
    /// `peephole_i, _f, _o`, each `(H)`.
    peep: Option<[Vec<f32>; 3]>,
}

/// One stream's recurrent state: `h` and `c` of every layer, `(L, H)` each.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamState {
    h: Vec<f32>,
    c: Vec<f32>,
}

/// Steps many independent streams of a text model together (see the module documentation).
pub struct BatchGenerator {
    layers: Vec<Layer>,
    embedding: Option<(Vec<f32>, usize)>,
    head_w: Vec<f32>,
    head_b: Vec<f32>,
    vocab: usize,
    hidden: usize,
    outputs: usize,
    coupled: bool,
    /// Gate rows per layer (4H padded to 16) and head rows (outputs padded).
    rows: usize,
    orows: usize,
    // scratch, grown to the largest batch seen
    z: Vec<f32>,
    x: Vec<f32>,
    h_prev: Vec<f32>,
    h_cur: Vec<f32>,
    c_new: Vec<f32>,
    h_new: Vec<f32>,
    out: Vec<f32>,
    logits: Vec<f32>,
}

impl BatchGenerator {
    /// Whether a model can be stepped here: as [`Generator::supports`] (a unidirectional LSTM
    /// without projection, token input, a per-step head).
    pub fn supports(model: &SequenceModel) -> bool {
        Generator::supports(model)
    }

    /// Packs the weights of `model`.
    ///
    /// # Errors
    /// [`Error::Config`] for a model [`supports`](Self::supports) refuses; a missing tensor.
    pub fn new(model: &SequenceModel) -> Result<BatchGenerator> {
        model.store.check_buffers()?;
        if !Self::supports(model) {
            return Err(Error::Config(
                "batched generation needs a unidirectional LSTM without projection, token \
                 input and a per-step head"
                    .into(),
            ));
        }
        let cfg = model.config();
        let (hsz, nl) = (cfg.hidden_size, cfg.num_layers);
        let outputs = cfg.head.outputs();
        let get = |name: String| -> Result<&[f32]> {
            model.store.get(&name).ok_or(Error::MissingTensor(name))
        };
        let (vocab, embedding) = match cfg.input {
            InputKind::OneHot { vocab } => (vocab, None),
            InputKind::Embedding { vocab, dim } => {
                (vocab, Some((get("embedding.weight".into())?.to_vec(), dim)))
            }
            InputKind::Dense { .. } | InputKind::DenseWithIds { .. } => {
                unreachable!("checked by supports")
            }
        };
        // the rows of a single worker of the batch-1 generator owning every unit
        let mut idx: Vec<usize> = (0..4 * hsz).collect();
        idx.resize(kmajor_rows(4 * hsz).max(16), usize::MAX);
        let rows = idx.len();
        let mut layers = Vec::with_capacity(nl);
        for l in 0..nl {
            let w_ih = get(format!("lstm.weight_ih_l{l}"))?;
            let w_hh = get(format!("lstm.weight_hh_l{l}"))?;
            let input = w_ih.len() / (4 * hsz);
            let one_hot = l == 0 && embedding.is_none();
            let (bias, table) = gate_rows(model, l, &idx, w_ih, one_hot.then_some(vocab))?;
            let w_x = if one_hot {
                Vec::new()
            } else {
                pack_kmajor(w_ih, input, &idx, 0, input)
            };
            let peep = if cfg.peephole {
                let p = |g: &str| -> Result<Vec<f32>> {
                    Ok(get(format!("lstm.peephole_{g}_l{l}"))?.to_vec())
                };
                Some([p("i")?, p("f")?, p("o")?])
            } else {
                None
            };
            layers.push(Layer {
                w_x,
                w_h: pack_kmajor(w_hh, hsz, &idx, 0, hsz),
                bias,
                table,
                input: if one_hot { 0 } else { input },
                peep,
            });
        }
        let mut oidx: Vec<usize> = (0..outputs).collect();
        oidx.resize(kmajor_rows(outputs).max(16), usize::MAX);
        let head_bias = get("head.bias".into())?;
        let head_b = oidx
            .iter()
            .map(|&i| if i == usize::MAX { 0.0 } else { head_bias[i] })
            .collect();
        Ok(BatchGenerator {
            layers,
            embedding,
            head_w: pack_kmajor(get("head.weight".into())?, hsz, &oidx, 0, hsz),
            head_b,
            vocab,
            hidden: hsz,
            outputs,
            coupled: cfg.coupled,
            rows,
            orows: oidx.len(),
            z: Vec::new(),
            x: Vec::new(),
            h_prev: Vec::new(),
            h_cur: Vec::new(),
            c_new: vec![0.0; hsz],
            h_new: vec![0.0; hsz],
            out: Vec::new(),
            logits: Vec::new(),
        })
    }

    /// A new stream's state: zeros, as a generation starts.
    pub fn new_state(&self) -> StreamState {
        let n = self.layers.len() * self.hidden;
        StreamState {
            h: vec![0.0; n],
            c: vec![0.0; n],
        }
    }

    /// The number of input tokens.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// The number of logits per stream.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Feeds `tokens[b]` to the stream whose state is `states[b]` (updated) for every `b`, and
    /// returns the logits `(B, outputs)`, row `b` for stream `b`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `tokens` and `states` differ in length or a state is not this
    /// model's; [`Error::Index`] for a token outside the vocabulary (nothing is updated).
    pub fn step(&mut self, tokens: &[u32], states: &mut [&mut StreamState]) -> Result<&[f32]> {
        let nb = tokens.len();
        if states.len() != nb {
            return Err(Error::shape("batched step states", nb, states.len()));
        }
        let (hsz, rows, nl) = (self.hidden, self.rows, self.layers.len());
        if let Some(s) = states
            .iter()
            .find(|s| s.h.len() != nl * hsz || s.c.len() != nl * hsz)
        {
            return Err(Error::shape("stream state", nl * hsz, s.h.len()));
        }
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= self.vocab) {
            return Err(Error::Index(format!(
                "token {t} is outside the vocabulary of {}",
                self.vocab
            )));
        }
        self.z.resize(nb * rows, 0.0);
        self.h_prev.resize(nb * hsz, 0.0);
        self.h_cur.resize(nb * hsz, 0.0);
        for l in 0..nl {
            let layer = &self.layers[l];
            if !layer.table.is_empty() {
                for (b, &t) in tokens.iter().enumerate() {
                    let t = t as usize;
                    self.z[b * rows..(b + 1) * rows]
                        .copy_from_slice(&layer.table[t * rows..(t + 1) * rows]);
                }
            } else {
                for zb in self.z.chunks_mut(rows) {
                    zb.copy_from_slice(&layer.bias);
                }
                let x: &[f32] = if l == 0 {
                    let (table, dim) = self.embedding.as_ref().expect("not one-hot");
                    self.x.clear();
                    for &t in tokens {
                        let t = t as usize;
                        self.x.extend_from_slice(&table[t * dim..(t + 1) * dim]);
                    }
                    &self.x
                } else {
                    // the layer below's new h, written into h_cur by the previous iteration
                    &self.h_cur
                };
                gemv_kmajor_rows(&layer.w_x, x, layer.input, &mut self.z, rows);
            }
            for (b, s) in states.iter().enumerate() {
                self.h_prev[b * hsz..(b + 1) * hsz].copy_from_slice(&s.h[l * hsz..(l + 1) * hsz]);
            }
            gemv_kmajor_rows(&layer.w_h, &self.h_prev, hsz, &mut self.z, rows);
            let step = LstmStep {
                hidden: hsz,
                coupled: self.coupled,
                peepholes: layer.peep.as_ref().map(|[i, f, o]| Peepholes { i, f, o }),
            };
            for (b, s) in states.iter_mut().enumerate() {
                let c = &mut s.c[l * hsz..(l + 1) * hsz];
                // one row at a time, as the batch-1 generator runs it
                forward_step(
                    &step,
                    1,
                    &mut self.z[b * rows..b * rows + 4 * hsz],
                    c,
                    &mut self.c_new,
                    &mut self.h_new,
                );
                c.copy_from_slice(&self.c_new);
                s.h[l * hsz..(l + 1) * hsz].copy_from_slice(&self.h_new);
                self.h_cur[b * hsz..(b + 1) * hsz].copy_from_slice(&self.h_new);
            }
        }
        let orows = self.orows;
        self.out.resize(nb * orows, 0.0);
        for ob in self.out.chunks_mut(orows) {
            ob.copy_from_slice(&self.head_b);
        }
        gemv_kmajor_rows(&self.head_w, &self.h_cur, hsz, &mut self.out, orows);
        self.logits.clear();
        for ob in self.out.chunks(orows) {
            self.logits.extend_from_slice(&ob[..self.outputs]);
        }
        Ok(&self.logits)
    }
}
