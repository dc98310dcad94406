//! The recurrent layer stack: LSTM (standard, peephole, coupled), GRU and RNN, any number of
//! layers, one or two directions, optional projection, variable lengths, dropout between layers
//! and variational recurrent dropout, with backpropagation through time.
//!
//! Parameters use PyTorch's names and layout (see [`RecurrentConfig`]), registered in a
//! [`ParamStore`]: `weight_ih_l{k}` `(G·H, I_k)`, `weight_hh_l{k}` `(G·H, H_out)`,
//! `bias_ih_l{k}`, `bias_hh_l{k}` `(G·H)`, `weight_hr_l{k}` `(P, H)` with a projection,
//! `peephole_{i,f,o}_l{k}` `(H)` for the peephole variant, suffix `_reverse` for the backward
//! direction. `G` is 4 (LSTM gates i, f, g, o), 3 (GRU r, z, n) or 1 (RNN).
//!
//! How a forward pass runs, per layer and direction:
//! 1. one GEMM for the input projection of all time steps (`x · W_ihᵀ + b`), or for one-hot
//!    input a row gather of `W_ihᵀ` (inside each step's product below);
//! 2. per step, one GEMM `h_prev · W_hhᵀ` accumulated into that step's gate rows, one fused
//!    element-wise pass (the cell), and for a projection one more GEMM;
//! 3. the cache keeps gates, cell states and inputs of every step for the backward pass, where
//!    only the recurrent product stays inside the time loop and the weight and input gradients
//!    are single large GEMMs after it.
//!
//! Variable lengths follow PyTorch's packed sequences: rows are sorted by length once, so the
//! sequences still running at step `t` are a prefix of the batch and each step's products touch
//! only those rows (a padded step costs nothing). Beyond PyTorch, shorter sequences share rows
//! ("lanes"), one after the other, so that a thread's steps have fewer, fuller rows: each step
//! streams the recurrent weights once whatever its rows, and a variable-length batch then runs
//! about as fast as a padded one of the same real tokens (see `Seg`).
//!
//! ```
//! use lstm::params::ParamStore;
//! use lstm::recurrent::{Input, Recurrent, RecurrentCache, RecurrentConfig};
//! use rand::SeedableRng;
//! let cfg = RecurrentConfig { input_size: 3, hidden_size: 4, ..Default::default() };
//! let mut store = ParamStore::default();
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
//! let lstm = Recurrent::new(cfg, &mut store, "lstm.", &mut rng).unwrap();
//! let x = vec![0.1f32; 5 * 2 * 3]; // (T=5, B=2, I=3), time-major
//! let mut cache = RecurrentCache::default();
//! lstm.forward(&store.values, Input::Dense(&x), 5, 2, None, None, None, &mut cache).unwrap();
//! assert_eq!(cache.output().len(), 5 * 2 * 4);
//! ```

use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cell::lstm::{LstmStep, Peepholes};
use crate::cell::{gru, lstm, rnn, Mode};
use crate::error::{Error, Result};
use crate::init::{self, InitScheme};
use crate::linalg::{
    add_assign, add_into, gemm_packed, gemm_packed_gather, matmul, num_threads, pack_panels,
    pack_panels_par, transpose_into, with_threads, Transpose, PAR_BLOCK,
};
use crate::params::ParamStore;

mod team;
#[doc(hidden)]
pub use team::with_team_min_weights;
pub use team::TEAM_MIN_WEIGHTS;
pub(crate) use team::{team_override, with_team_override};

/// Configuration of a recurrent stack; the fields mirror `torch.nn.LSTM`'s arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecurrentConfig {
    /// The cell: LSTM, GRU, RNN (tanh or ReLU).
    pub mode: Mode,
    /// LSTM only: peephole connections (Gers & Schmidhuber 2000, ONNX convention).
    pub peephole: bool,
    /// LSTM only: coupled input and forget gates, `i = 1 - f`.
    pub coupled: bool,
    /// `I`: features per time step (the vocabulary size for one-hot input).
    pub input_size: usize,
    /// `H`: units per layer and direction.
    pub hidden_size: usize,
    /// `L`: stacked layers.
    pub num_layers: usize,
    /// `P`: LSTM projection size (`0` = no projection; then `H_out = H`).
    pub proj_size: usize,
    /// Whether the layers have the two bias vectors.
    pub bias: bool,
    /// Input and output are `(B, T, ·)` instead of `(T, B, ·)`.
    pub batch_first: bool,
    /// Two directions (`D = 2`), outputs concatenated forward then reverse.
    pub bidirectional: bool,
    /// Dropout on each layer's output except the last, training only (PyTorch's `dropout`).
    pub dropout: f32,
    /// Variational dropout on the hidden-to-hidden path, one mask per sequence and layer
    /// (Keras' `recurrent_dropout`, Gal & Ghahramani 2016), training only.
    pub recurrent_dropout: f32,
    /// Layer 0 takes token ids as one-hot vectors of `input_size` (computed as a row gather).
    pub one_hot_input: bool,
    /// Initialisation scheme.
    pub init: InitScheme,
    /// Initial forget-gate bias for LSTM (split evenly over `bias_ih` and `bias_hh`) with the
    /// `XavierOrthogonal` scheme (Jozefowicz et al. 2015).
    pub forget_bias: f32,
}

impl Default for RecurrentConfig {
    fn default() -> Self {
        RecurrentConfig {
            mode: Mode::Lstm,
            peephole: false,
            coupled: false,
            input_size: 1,
            hidden_size: 1,
            num_layers: 1,
            proj_size: 0,
            bias: true,
            batch_first: false,
            bidirectional: false,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            one_hot_input: false,
            init: InitScheme::XavierOrthogonal,
            forget_bias: 1.0,
        }
    }
}

impl RecurrentConfig {
    /// `D`: 2 if bidirectional, else 1.
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// `H_out`: the size of the hidden state (the projection size if any).
    pub fn hidden_out(&self) -> usize {
        if self.proj_size > 0 {
            self.proj_size
        } else {
            self.hidden_size
        }
    }

    /// Width of the output per time step: `D · H_out`.
    pub fn output_size(&self) -> usize {
        self.directions() * self.hidden_out()
    }

    /// Checks sizes and combinations.
    ///
    /// # Errors
    /// [`Error::Config`] naming the offending field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.input_size == 0 || self.hidden_size == 0 || self.num_layers == 0 {
            return bad(format!(
                "input_size, hidden_size and num_layers must be at least 1 (got {}, {}, {})",
                self.input_size, self.hidden_size, self.num_layers
            ));
        }
        if self.proj_size > 0 && self.mode != Mode::Lstm {
            return bad("proj_size is only supported for LSTM".into());
        }
        if self.proj_size >= self.hidden_size && self.proj_size > 0 {
            return bad(format!(
                "proj_size ({}) must be smaller than hidden_size ({})",
                self.proj_size, self.hidden_size
            ));
        }
        if (self.peephole || self.coupled) && self.mode != Mode::Lstm {
            return bad("peephole and coupled variants apply to LSTM only".into());
        }
        for (name, p) in [
            ("dropout", self.dropout),
            ("recurrent_dropout", self.recurrent_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("{name} must be in [0, 1), got {p}"));
            }
        }
        if !self.forget_bias.is_finite() {
            return bad("forget_bias must be finite".into());
        }
        let params = self.num_params();
        if params > (1usize << 31) {
            return bad(format!(
                "{params} parameters is more than this library supports"
            ));
        }
        Ok(())
    }

    /// Number of parameters the stack has.
    pub fn num_params(&self) -> usize {
        let (g, h, p, d) = (
            self.mode.gates(),
            self.hidden_size,
            self.hidden_out(),
            self.directions(),
        );
        let mut n = 0usize;
        for l in 0..self.num_layers {
            let i = if l == 0 { self.input_size } else { d * p };
            let mut per = g * h * i + g * h * p;
            if self.bias {
                per += 2 * g * h;
            }
            if self.proj_size > 0 {
                per += p * h;
            }
            if self.peephole {
                per += 3 * h;
            }
            n = n.saturating_add(d.saturating_mul(per));
        }
        n
    }
}

/// Ranges of one layer direction's tensors in the [`ParamStore`].
#[derive(Clone, Debug)]
struct DirParams {
    input: usize,
    w_ih: Range<usize>,
    w_hh: Range<usize>,
    b_ih: Option<Range<usize>>,
    b_hh: Option<Range<usize>>,
    w_hr: Option<Range<usize>>,
    /// `peephole_i`, `_f`, `_o` registered back to back: `(3H)`.
    peep: Option<Range<usize>>,
}

/// The input of a forward pass.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// Dense features, `(T, B, I)` or `(B, T, I)` when `batch_first`.
    Dense(&'a [f32]),
    /// Token ids for a one-hot layer 0, `(T, B)` or `(B, T)`; each `< input_size`.
    Tokens(&'a [u32]),
}

/// Initial or final states: `h` `(D·L, B, H_out)`, `c` `(D·L, B, H)` (LSTM only, else empty).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecurrentState {
    /// Hidden states, index `layer · D + direction`.
    pub h: Vec<f32>,
    /// Cell states (LSTM), same indexing.
    pub c: Vec<f32>,
}

/// A recurrent stack: the layer descriptions and where their parameters live.
#[derive(Clone, Debug)]
pub struct Recurrent {
    cfg: RecurrentConfig,
    dirs: Vec<DirParams>,
    /// The stack's parameters are `start..end` of the store.
    start: usize,
    end: usize,
}

/// Everything one layer direction keeps from the forward pass for the backward pass.
#[derive(Clone, Debug, Default)]
struct DirCache {
    /// `(T, B, G·H)`: activated gates per step (pre-activations before the step ran).
    gates: Vec<f32>,
    /// `(B, G·H)`: GRU recurrent product scratch.
    gates_h: Vec<f32>,
    /// `(T, B, H)`: GRU `h_n = W_hn h + b_hn` per step.
    hn: Vec<f32>,
    /// `(T, B, H)`: LSTM cell state after / before each step.
    c: Vec<f32>,
    c_prev: Vec<f32>,
    /// `(T)`: LSTM, where step `t`'s cell state before the step is kept: from row `c_from[t]`
    /// of `c` (the previous step's rows), or `usize::MAX` for `c_prev`'s rows of the step.
    c_from: Vec<usize>,
    /// `(T, B, H_out)`: hidden state entering each step (unmasked).
    h_prev: Vec<f32>,
    /// `(T, B, H)`: LSTM hidden state before projection, with a projection.
    r: Vec<f32>,
    /// `(B, H_out)`, `(B, H)`: running states, per lane.
    h_state: Vec<f32>,
    c_state: Vec<f32>,
    /// `(n, H_out)`, `(n, H)`: final states of the chunk's `n` sequences (`segs` order).
    h_final: Vec<f32>,
    c_final: Vec<f32>,
    /// `(B, H_out)`: masked hidden state scratch.
    h_masked: Vec<f32>,
    /// `(B, H_out)`: recurrent dropout mask per lane (empty when off), or `(rows, H_out)`, one
    /// per packed row, when sequences share lanes (`rec_mask_rows`).
    rec_mask: Vec<f32>,
    rec_mask_rows: bool,
    /// `(V, G·H)`: `W_ihᵀ` for one-hot input.
    w_ih_t: Vec<f32>,
    /// `(H_out, G·H)`: `W_hhᵀ`.
    w_hh_t: Vec<f32>,
    /// `(H, P)`: `W_hrᵀ`.
    w_hr_t: Vec<f32>,
    /// The two threads' shares when the direction runs as a team (see `team`); else empty.
    team: Vec<team::TeamPart>,
}

impl DirCache {
    /// The recurrent dropout masks of the rows `slab..slab + nb` of a step (its lanes `0..nb`).
    fn rec_mask_at(&self, p: usize, slab: usize, nb: usize) -> &[f32] {
        mask_at(&self.rec_mask, self.rec_mask_rows, p, slab, nb)
    }
}

/// The masks in `mask` (one per packed row with `per_row`, else one per lane) of the rows
/// `slab..slab + nb` of a step.
fn mask_at(mask: &[f32], per_row: bool, p: usize, slab: usize, nb: usize) -> &[f32] {
    if per_row {
        &mask[slab * p..(slab + nb) * p]
    } else {
        &mask[..nb * p]
    }
}

/// Scratch of the backward pass of one layer direction (reused across directions).
#[derive(Clone, Debug, Default)]
struct DirGrad {
    /// `(T, B, G·H)`: gradient of the pre-activations (input side).
    dg: Vec<f32>,
    /// `(T, B, G·H)`: recurrent side (GRU only; LSTM/RNN use `dg`).
    dgh: Vec<f32>,
    /// `(G·H, rows of one block of weight gradients)`, row stride `ld_t`: that block's `dgᵀ`,
    /// written step by step while `dg`'s rows are in cache, for the weight gradients' products
    /// (large LSTM and RNN layers without recurrent dropout; else empty).
    dg_t: Vec<f32>,
    /// The row ranges of the blocks of steps whose weight gradients are computed together, in
    /// the backward loop's order (see `backward_direction`).
    blocks: Vec<(usize, usize)>,
    /// `(T, B, H_out)`: total gradient of each step's hidden output.
    dht: Vec<f32>,
    /// `(B, H)`: gradient w.r.t. `r` (projection).
    dr: Vec<f32>,
    dh_state: Vec<f32>,
    dc_state: Vec<f32>,
    tmp: Vec<f32>,
    /// `(T, B, H_out)`: masked hidden states for `dW_hh`.
    h_masked_all: Vec<f32>,
    /// `(3H)`.
    d_peep: Vec<f32>,
    /// `(V, G·H)`: `dW_ihᵀ` for one-hot input.
    dw_t: Vec<f32>,
    /// `(G·H)`: column sums of `dg` and (GRU) `dgh`: the bias gradients.
    db: Vec<f32>,
    dbh: Vec<f32>,
    /// `W_hh` and `W_hr` packed in panels for the step products.
    w_hh_p: Vec<f32>,
    w_hr_p: Vec<f32>,
    /// The two threads' scratch for a team direction.
    team: Vec<team::TeamGrad>,
    /// [`TRANSPOSED_MIN_GATES`] or the caller's override, set by `backward` (read on the
    /// threads that run the chunks).
    transposed_min: usize,
}

/// The buffers of one chunk of the batch: a set of sequences that one thread runs through the
/// whole stack, forward and backward, without synchronising with the other chunks.
#[derive(Clone, Debug, Default)]
struct ChunkCache {
    /// Whether each layer direction runs as a team of two threads splitting the units (then
    /// the chunk is the whole batch); see `team`.
    team: bool,
    /// the chunk's sequences, lane by lane and in time order within a lane (see [`Seg`])
    segs: Vec<Seg>,
    /// per lane (chunk row): its sequences, a range of `segs`; lanes come longest first
    lanes: Vec<Range<usize>>,
    /// per packed row (see `off`): its row in the user's layout
    src: Vec<usize>,
    /// per packed row: its sequence (index into `segs`)
    row_seg: Vec<usize>,
    /// per packed row: its row of the compact output (see
    /// [`RecurrentCache::set_compact_output`]); empty when the output has the user's layout
    dst: Vec<usize>,
    /// where one sequence hands its lane to the next, for a time loop running forward in
    /// time (`[0]`) and backward (`[1]`); empty unless sequences share lanes
    handovers: [Vec<Handover>; 2],
    /// per step: number of lanes still running (a prefix of the chunk's lanes)
    active: Vec<usize>,
    /// per step: the first row of the step in the packed buffers (`T + 1` entries; step `t`
    /// holds rows `off[t]..off[t + 1]`, its `active[t]` running sequences: padding is never
    /// stored, so every product below is proportional to the real length)
    off: Vec<usize>,
    /// layer 0 input, time-major, chunk order
    x0: Vec<f32>,
    tokens: Vec<u32>,
    /// per layer: `(T, b, D·H_out)` output, chunk order
    layer_out: Vec<Vec<f32>>,
    /// per layer below the top: dropout mask and the dropped output (the next layer's input)
    drop_mask: Vec<Vec<f32>>,
    dropped: Vec<Vec<f32>>,
    dirs: Vec<DirCache>,
    grad: DirGrad,
    d_cur: Vec<f32>,
    d_x: Vec<f32>,
    /// this chunk's parameter gradients (the stack's range of the store)
    grads: Vec<f32>,
    /// `(D·L, n, H_out)` / `(D·L, n, H)`: gradient w.r.t. the initial states of the chunk's
    /// `n` sequences, in the order of `segs`
    d_state: RecurrentState,
}

/// Per packed row of a chunk: its row of the output (and of the output's gradient), from the
/// chunk's `src` and `dst`.
fn out_rows<'a>(src: &'a [usize], dst: &'a [usize]) -> &'a [usize] {
    if dst.is_empty() {
        src
    } else {
        dst
    }
}

/// One sequence of a chunk: user batch index `u`, `len` steps, run in lane (chunk row) `lane`
/// from step `start` of the chunk's time loop.
///
/// A variable-length batch packs its shorter sequences one after the other into shared lanes
/// (first-fit, longest first, lanes as long as the chunk's longest sequence): each step's
/// recurrent product streams the whole of `W_hh` whatever its number of rows, so a chunk of
/// fewer, fuller lanes runs the same tokens in fewer passes over the weights. Where a sequence
/// hands its lane to the next (a [`Handover`]), the time loop saves the lane's state as the
/// first one's final state and starts the next from its own initial state; the backward pass
/// does the same with the gradients, so every sequence is computed exactly as alone.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Seg {
    u: usize,
    /// the sequence's place in the chunk's order before the layout (longest first)
    item: usize,
    lane: usize,
    start: usize,
    len: usize,
}

/// Lane `lane` passes from sequence `prev` to sequence `next` (indices into `segs`) before
/// step `t` of a time loop.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Handover {
    t: usize,
    lane: usize,
    prev: usize,
    next: usize,
}

/// States of width `w` per sequence: the initial (or final-gradient) ones a time loop starts
/// each sequence from, in the user's batch order (`None`: zero), and where it leaves each
/// sequence's last one, in `segs` order.
struct SeqStates<'a> {
    w: usize,
    start: Option<&'a [f32]>,
    fin: &'a mut [f32],
}

impl SeqStates<'_> {
    /// Loads sequence `s`'s starting state into `row`.
    fn load(&self, segs: &[Seg], s: usize, row: &mut [f32]) {
        match self.start {
            Some(v) => row.copy_from_slice(&v[segs[s].u * self.w..(segs[s].u + 1) * self.w]),
            None => row.fill(0.0),
        }
    }

    /// Saves `row` as sequence `s`'s last state.
    fn save(&mut self, s: usize, row: &[f32]) {
        self.fin[s * self.w..(s + 1) * self.w].copy_from_slice(row);
    }

    /// Before a time loop (`forward`: in time order): each lane starts from its first
    /// sequence's state (`state (lanes, w)`).
    fn begin(&self, segs: &[Seg], lanes: &[Range<usize>], forward: bool, state: &mut [f32]) {
        if self.w == 0 {
            return;
        }
        for (j, r) in lanes.iter().enumerate() {
            let s = if forward { r.start } else { r.end - 1 };
            self.load(segs, s, &mut state[j * self.w..(j + 1) * self.w]);
        }
    }

    /// The handovers `due` now, on `state (lanes, w)`.
    fn hand_over(&mut self, segs: &[Seg], due: &[Handover], state: &mut [f32]) {
        if self.w == 0 {
            return;
        }
        for ho in due {
            let row = &mut state[ho.lane * self.w..(ho.lane + 1) * self.w];
            self.save(ho.prev, row);
            self.load(segs, ho.next, row);
        }
    }

    /// After a time loop: each lane's state is its last sequence's.
    fn end(&mut self, lanes: &[Range<usize>], forward: bool, state: &[f32]) {
        if self.w == 0 {
            return;
        }
        for (j, r) in lanes.iter().enumerate() {
            let s = if forward { r.end - 1 } else { r.start };
            self.save(s, &state[j * self.w..(j + 1) * self.w]);
        }
    }
}

/// The sequences of a chunk and the handovers of one time loop through its lanes.
#[derive(Clone, Copy)]
struct Lanes<'a> {
    segs: &'a [Seg],
    handovers: &'a [Handover],
}

/// The handovers of `hand` (from `*next` on, in a loop's order) due before step `t`; advances
/// `*next` past them.
fn due<'a>(hand: &'a [Handover], next: &mut usize, t: usize) -> &'a [Handover] {
    let n = hand[*next..].iter().take_while(|ho| ho.t == t).count();
    *next += n;
    &hand[*next - n..*next]
}

/// The handovers of a time loop through `lanes` of `segs`, in its order (`forward`: in time).
fn handovers(segs: &[Seg], lanes: &[Range<usize>], forward: bool) -> Vec<Handover> {
    let mut v = Vec::new();
    for r in lanes {
        for s in r.start + 1..r.end {
            let (prev, next) = if forward { (s - 1, s) } else { (s, s - 1) };
            let t = if forward {
                segs[s].start
            } else {
                segs[s - 1].start + segs[s - 1].len - 1
            };
            v.push(Handover {
                t,
                lane: segs[s].lane,
                prev,
                next,
            });
        }
    }
    if forward {
        v.sort_by_key(|ho| ho.t);
    } else {
        v.sort_by_key(|ho| std::cmp::Reverse(ho.t));
    }
    v
}

/// Lays out a chunk's sequences `items` (user indices, longest first) in lanes: one lane each,
/// or with `pack`, first-fit into lanes as long as the longest (see [`Seg`]).
fn lay_out(items: &[usize], lens: &[usize], pack: bool, chunk: &mut ChunkCache) {
    let cap = items.first().map_or(0, |&u| lens[u]);
    let mut lanes: Vec<(usize, Vec<(usize, usize)>)> = Vec::new(); // (length, (u, item))
    for (item, &u) in items.iter().enumerate() {
        let fit = if pack {
            lanes.iter().position(|(l, _)| l + lens[u] <= cap)
        } else {
            None
        };
        match fit {
            Some(j) => {
                lanes[j].0 += lens[u];
                lanes[j].1.push((u, item));
            }
            None => lanes.push((lens[u], vec![(u, item)])),
        }
    }
    // longest first (stable), so the running lanes are a prefix at every step
    lanes.sort_by_key(|l| std::cmp::Reverse(l.0));
    chunk.segs.clear();
    chunk.lanes.clear();
    for (j, (_, us)) in lanes.iter().enumerate() {
        let first = chunk.segs.len();
        let mut start = 0;
        for &(u, item) in us {
            chunk.segs.push(Seg {
                u,
                item,
                lane: j,
                start,
                len: lens[u],
            });
            start += lens[u];
        }
        chunk.lanes.push(first..chunk.segs.len());
    }
    chunk.handovers = [
        handovers(&chunk.segs, &chunk.lanes, true),
        handovers(&chunk.segs, &chunk.lanes, false),
    ];
}

/// Buffers of a forward and backward pass, owned by the caller and reused across batches so
/// the time loop never allocates.
///
/// The batch is split into interleaved chunks of sequences, one per thread; each chunk runs
/// the whole stack independently (no synchronisation inside the time loop), and the chunks'
/// parameter gradients are summed in a fixed order (deterministic for a given thread count).
/// Large LSTM layers on two threads instead keep the batch as one chunk and split each layer
/// direction's units between the threads (see [`TEAM_MIN_WEIGHTS`]).
#[derive(Clone, Debug, Default)]
pub struct RecurrentCache {
    t: usize,
    b: usize,
    chunks: Vec<ChunkCache>,
    // results in the user's layout
    output: Vec<f32>,
    state: RecurrentState,
    d_input: Vec<f32>,
    d_state: RecurrentState,
    has_forward: bool,
    used_tokens: bool,
    /// Skip the gradient w.r.t. dense layer-0 input (nobody reads it when the input is data).
    skip_input_grad: bool,
    /// See [`RecurrentCache::set_compact_output`]; `compact` is whether the last forward pass
    /// used it (a variable-length batch).
    want_compact: bool,
    compact: bool,
    /// Per layer direction, `W_hhᵀ` packed for the forward step products and `W_hh` for the
    /// backward ones, once for all chunks (their panels spread over the threads) instead of
    /// once per chunk; empty with a single chunk, which packs its own.
    packed_fwd: Vec<Vec<f32>>,
    packed_bwd: Vec<Vec<f32>>,
}

impl RecurrentCache {
    /// Output of the last forward pass, in the layout of the input (`(T, B, D·H_out)` or
    /// batch-first). Steps past a sequence's length are zero. (A variable-length batch's real
    /// positions only, with [`Self::set_compact_output`].)
    pub fn output(&self) -> &[f32] {
        &self.output
    }

    /// Final states of the last forward pass (at each sequence's last real step).
    pub fn final_state(&self) -> &RecurrentState {
        &self.state
    }

    /// Gradient w.r.t. the dense input after [`Recurrent::backward`] (input layout); empty for
    /// token input.
    pub fn d_input(&self) -> &[f32] {
        &self.d_input
    }

    /// Gradient w.r.t. the initial states after [`Recurrent::backward`].
    pub fn d_initial_state(&self) -> &RecurrentState {
        &self.d_state
    }

    /// Whether [`Recurrent::backward`] computes the gradient w.r.t. a dense input (on by
    /// default; a model whose input is data, not a learned embedding, turns it off).
    pub fn set_input_grad(&mut self, on: bool) {
        self.skip_input_grad = !on;
    }

    /// Whether the output of a variable-length batch holds its real positions only: then
    /// [`Self::output`], and the `d_output` that [`Recurrent::backward`] takes, have one row per
    /// real position, sequence after sequence (step `s` of sequence `u` at row
    /// `len_0 + … + len_{u-1} + s`), and no padding is written or read. Off by default; no
    /// effect on a batch without lengths.
    pub fn set_compact_output(&mut self, on: bool) {
        self.want_compact = on;
    }

    /// Bytes held by the cache's buffers (activation memory).
    pub fn bytes(&self) -> usize {
        let f = |v: &Vec<f32>| v.capacity() * 4;
        let mut n = f(&self.output) + f(&self.d_input);
        for c in &self.chunks {
            n += f(&c.x0) + f(&c.d_cur) + f(&c.d_x) + f(&c.grads);
            n += c.layer_out.iter().map(f).sum::<usize>();
            n += c.drop_mask.iter().map(f).sum::<usize>();
            n += c.dropped.iter().map(f).sum::<usize>();
            for d in &c.dirs {
                n += f(&d.gates) + f(&d.hn) + f(&d.c) + f(&d.c_prev) + f(&d.h_prev) + f(&d.r);
                n += d.team.iter().map(|t| t.bytes()).sum::<usize>();
            }
            let g = &c.grad;
            n += f(&g.dg) + f(&g.dgh) + f(&g.dg_t) + f(&g.dht) + f(&g.h_masked_all);
            n += g.team.iter().map(|t| t.bytes()).sum::<usize>();
        }
        n
    }
}

/// A buffer that several threads write, each only its own elements (never the same one), and
/// that is read only after a barrier or a join has ordered the writes.
#[derive(Clone, Copy)]
pub(crate) struct Shared(*mut f32, usize);
// SAFETY: the users below write disjoint elements and separate writes from reads by a barrier.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    pub(crate) fn new(v: &mut [f32]) -> Self {
        Shared(v.as_mut_ptr(), v.len())
    }
    /// Writes `src` at `off`.
    ///
    /// # Safety
    /// No other thread reads or writes `off..off + src.len()` until the next barrier.
    pub(crate) unsafe fn write(self, off: usize, src: &[f32]) {
        assert!(off + src.len() <= self.1);
        std::ptr::copy_nonoverlapping(src.as_ptr(), self.0.add(off), src.len());
    }
    /// `off..off + len` for reading.
    ///
    /// # Safety
    /// Nobody writes that range while the slice lives.
    pub(crate) unsafe fn slice<'a>(self, off: usize, len: usize) -> &'a [f32] {
        assert!(off + len <= self.1);
        std::slice::from_raw_parts(self.0.add(off), len)
    }
    /// `off..off + len` for writing.
    ///
    /// # Safety
    /// Nobody else reads or writes that range while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut<'a>(self, off: usize, len: usize) -> &'a mut [f32] {
        assert!(off + len <= self.1);
        std::slice::from_raw_parts_mut(self.0.add(off), len)
    }
}

/// Resizes `v` to `n` zeros, keeping its allocation when it is large enough.
fn zeroed(v: &mut Vec<f32>, n: usize) {
    v.clear();
    v.resize(n, 0.0);
}

/// Resizes `v` to `n` values without clearing it when it already has that size: for buffers
/// every element of which is written before it is read.
fn sized(v: &mut Vec<f32>, n: usize) {
    if v.len() != n {
        zeroed(v, n);
    }
}

/// `c (m, n) (+)= a (m, k) · wᵀ` for `w (n, k)`: through the pre-transposed `w_t (k, n)` when
/// there is one, else the general product (which takes the GEMV path for one row).
#[allow(clippy::too_many_arguments)]
#[inline]
fn step_product(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    w: &[f32],
    w_t: &[f32],
    c: &mut [f32],
    accumulate: bool,
) {
    if w_t.is_empty() {
        matmul(
            m,
            n,
            k,
            a,
            k,
            Transpose::No,
            w,
            k,
            Transpose::Yes,
            c,
            n,
            accumulate,
        );
    } else {
        gemm_packed(m, n, k, a, k, w_t, c, n, accumulate);
    }
}

thread_local! {
    static LANES: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
    static TRANSPOSED_MIN: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with another threshold (in gate rows, `G·H`) for the backward pass's `dgᵀ` on this
/// thread (0 = always, `usize::MAX` = never): for tests and measurements (the results agree up
/// to the order of the weight gradients' sums).
#[doc(hidden)]
pub fn with_transposed_min_gates<R>(n: usize, f: impl FnOnce() -> R) -> R {
    let old = TRANSPOSED_MIN.with(|c| c.replace(Some(n)));
    let r = f();
    TRANSPOSED_MIN.with(|c| c.set(old));
    r
}

/// Runs `f` with the shorter sequences of a variable-length batch sharing lanes (the default)
/// or not, on this thread: for tests and measurements (the results are the same either way,
/// up to the order of the parameter gradients' sums, except that dropout between layers draws
/// its masks in the order of the packed rows).
#[doc(hidden)]
pub fn with_lanes<R>(on: bool, f: impl FnOnce() -> R) -> R {
    let old = LANES.with(|c| c.replace(on));
    let r = f();
    LANES.with(|c| c.set(old));
    r
}

/// Deals the rows of a batch, `order` sorted longest first, to the chunks (the threads): each
/// row goes to the chunk whose estimated time is then least (on a tie, the first such chunk, so
/// rows of equal length go to the chunks in turn), so that the threads finish together. A chunk's time is modelled, in units of one row's share of a step's
/// recurrent products, as about five units per token (the products, the cells, the input and
/// gradient GEMMs) plus four per step its longest row runs (each step's pass over the recurrent
/// weights costs about as much as four more rows in it). Dealing in turn instead gives the
/// first chunk the longer row of every pair: 514 against 482 of `lstm bench`'s 996 tokens
/// (dealt by this model: 496 beside the row of 62, 500 beside 57).
fn deal(order: &[usize], lens: &[usize], chunks: &mut [Vec<usize>]) {
    let mut cost = vec![0usize; chunks.len()];
    for &u in order {
        let l = lens[u];
        // the first row of a chunk is its longest (rows come longest first); an empty chunk
        // always wins, so every chunk gets a row
        let after = |c: usize| cost[c] + 5 * l + if chunks[c].is_empty() { 4 * l } else { 0 };
        let best = (0..chunks.len())
            .min_by_key(|&c| after(c))
            .expect("at least one chunk");
        cost[best] = after(best);
        chunks[best].push(u);
    }
}

/// Row index of `(t, user batch index u)` in the user's layout (`(T, B, ·)` or `(B, T, ·)`).
#[inline]
fn user_row(batch_first: bool, tn: usize, bu: usize, t: usize, u: usize) -> usize {
    if batch_first {
        u * tn + t
    } else {
        t * bu + u
    }
}

fn dir_suffix(l: usize, d: usize) -> String {
    if d == 0 {
        format!("_l{l}")
    } else {
        format!("_l{l}_reverse")
    }
}

impl Recurrent {
    /// Validates `cfg`, registers the stack's tensors in `store` under `prefix` (e.g. `"lstm."`)
    /// and initialises them from `rng`.
    ///
    /// # Errors
    /// [`Error::Config`] if the configuration is invalid.
    pub fn new(
        cfg: RecurrentConfig,
        store: &mut ParamStore,
        prefix: &str,
        rng: &mut ChaCha8Rng,
    ) -> Result<Recurrent> {
        cfg.validate()?;
        let start = store.len();
        let (g, h, p, dn) = (
            cfg.mode.gates(),
            cfg.hidden_size,
            cfg.hidden_out(),
            cfg.directions(),
        );
        let mut dirs = Vec::new();
        for l in 0..cfg.num_layers {
            let input = if l == 0 { cfg.input_size } else { dn * p };
            for d in 0..dn {
                let s = dir_suffix(l, d);
                let name = |n: &str| format!("{prefix}{n}{s}");
                let w_ih = store.add(&name("weight_ih"), &[g * h, input]);
                let w_hh = store.add(&name("weight_hh"), &[g * h, p]);
                let (b_ih, b_hh) = if cfg.bias {
                    (
                        Some(store.add(&name("bias_ih"), &[g * h])),
                        Some(store.add(&name("bias_hh"), &[g * h])),
                    )
                } else {
                    (None, None)
                };
                let w_hr = (cfg.proj_size > 0).then(|| store.add(&name("weight_hr"), &[p, h]));
                let peep = cfg.peephole.then(|| {
                    let a = store.add(&name("peephole_i"), &[h]);
                    store.add(&name("peephole_f"), &[h]);
                    let c = store.add(&name("peephole_o"), &[h]);
                    a.start..c.end
                });
                dirs.push(DirParams {
                    input,
                    w_ih,
                    w_hh,
                    b_ih,
                    b_hh,
                    w_hr,
                    peep,
                });
            }
        }
        let end = store.len();
        let rec = Recurrent {
            cfg,
            dirs,
            start,
            end,
        };
        rec.init_params(&mut store.values, rng);
        Ok(rec)
    }

    /// The configuration.
    pub fn config(&self) -> &RecurrentConfig {
        &self.cfg
    }

    /// Re-initialises the parameters in `values` with the configured scheme.
    pub fn init_params(&self, values: &mut [f32], rng: &mut ChaCha8Rng) {
        let cfg = &self.cfg;
        let (g, h, p) = (cfg.mode.gates(), cfg.hidden_size, cfg.hidden_out());
        for dp in &self.dirs {
            match cfg.init {
                InitScheme::PytorchUniform => {
                    let a = 1.0 / (h as f32).sqrt();
                    let mut ranges = vec![dp.w_ih.clone(), dp.w_hh.clone()];
                    ranges.extend(dp.b_ih.clone());
                    ranges.extend(dp.b_hh.clone());
                    ranges.extend(dp.w_hr.clone());
                    ranges.extend(dp.peep.clone());
                    for r in ranges {
                        init::uniform(&mut values[r], a, rng);
                    }
                }
                InitScheme::XavierOrthogonal => {
                    // Per gate block, as Keras does: each (H, I) block Glorot, each (H, P)
                    // block orthogonal.
                    for k in 0..g {
                        let w = &mut values[dp.w_ih.clone()][k * h * dp.input..];
                        init::xavier_uniform(w, h, dp.input, rng);
                    }
                    for k in 0..g {
                        let w = &mut values[dp.w_hh.clone()][k * h * p..];
                        init::orthogonal(&mut w[..h * p], h, p, rng);
                    }
                    if let Some(r) = &dp.w_hr {
                        init::xavier_uniform(&mut values[r.clone()], p, h, rng);
                    }
                    for r in [&dp.b_ih, &dp.b_hh].into_iter().flatten() {
                        values[r.clone()].fill(0.0);
                        if cfg.mode == Mode::Lstm {
                            values[r.clone()][h..2 * h].fill(cfg.forget_bias / 2.0);
                        }
                    }
                    if let Some(r) = &dp.peep {
                        values[r.clone()].fill(0.0);
                    }
                }
            }
        }
    }

    /// Runs the stack over a batch.
    ///
    /// - `input`: `(T, B, I)` features or `(T, B)` token ids (batch-first if configured).
    /// - `lengths`: one length per sequence, `1..=T`, any order; `None` = all `T`.
    /// - `init`: initial states (zeros if `None`), see [`RecurrentState`].
    /// - `train`: the RNG for dropout masks when training; `None` = evaluation (no dropout).
    ///
    /// Results are read from `cache` ([`RecurrentCache::output`], [`RecurrentCache::final_state`]).
    ///
    /// # Errors
    /// [`Error::Shape`] / [`Error::Index`] if a buffer, token or length does not fit.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        params: &[f32],
        input: Input<'_>,
        seq_len: usize,
        batch: usize,
        lengths: Option<&[usize]>,
        init: Option<&RecurrentState>,
        train: Option<&mut ChaCha8Rng>,
        cache: &mut RecurrentCache,
    ) -> Result<()> {
        let cfg = &self.cfg;
        let (tn, b) = (seq_len, batch);
        let (h, p, dn, ln) = (
            cfg.hidden_size,
            cfg.hidden_out(),
            cfg.directions(),
            cfg.num_layers,
        );
        if tn == 0 || b == 0 {
            return Err(Error::Config(format!(
                "sequence length and batch size must be at least 1 (got {tn}, {b})"
            )));
        }
        if params.len() < self.end {
            return Err(Error::shape(
                "parameters",
                "the registered size",
                params.len(),
            ));
        }
        // ---- validate input, lengths, states
        match input {
            Input::Dense(x) => {
                if cfg.one_hot_input {
                    return Err(Error::Config(
                        "this stack takes token ids (one-hot input)".into(),
                    ));
                }
                if x.len() != tn * b * cfg.input_size {
                    return Err(Error::shape(
                        "input",
                        format!(
                            "{} values (T={tn}, B={b}, I={})",
                            tn * b * cfg.input_size,
                            cfg.input_size
                        ),
                        x.len(),
                    ));
                }
            }
            Input::Tokens(ids) => {
                if !cfg.one_hot_input {
                    return Err(Error::Config(
                        "this stack takes dense input, not token ids".into(),
                    ));
                }
                if ids.len() != tn * b {
                    return Err(Error::shape("token input", tn * b, ids.len()));
                }
                if let Some(bad) = ids.iter().find(|&&t| t as usize >= cfg.input_size) {
                    return Err(Error::Index(format!(
                        "token id {bad} is out of range for a one-hot input of size {}",
                        cfg.input_size
                    )));
                }
            }
        }
        if let Some(lens) = lengths {
            if lens.len() != b {
                return Err(Error::shape("lengths", b, lens.len()));
            }
            if let Some(bad) = lens.iter().find(|&&l| l == 0 || l > tn) {
                return Err(Error::Index(format!(
                    "sequence length {bad} is outside 1..={tn}"
                )));
            }
        }
        if let Some(s) = init {
            if s.h.len() != dn * ln * b * p {
                return Err(Error::shape("h0", dn * ln * b * p, s.h.len()));
            }
            if cfg.mode == Mode::Lstm && s.c.len() != dn * ln * b * h {
                return Err(Error::shape("c0", dn * ln * b * h, s.c.len()));
            }
        }

        // ---- sort rows by length (descending, stable) so running sequences are a prefix,
        // then deal them out to the chunks (each chunk stays sorted)
        let mut order: Vec<usize> = (0..b).collect();
        if let Some(lens) = lengths {
            order.sort_by(|&x, &y| lens[y].cmp(&lens[x]));
        }
        let team = self.team_eligible(b, train.is_some() && cfg.recurrent_dropout > 0.0);
        let n_chunks = if team { 1 } else { num_threads().min(b).max(1) };
        cache.chunks.resize_with(n_chunks, ChunkCache::default);
        cache.chunks.truncate(n_chunks);
        let all_full = vec![tn; b];
        let lens = lengths.unwrap_or(&all_full);
        let mut dealt = vec![Vec::new(); n_chunks];
        deal(&order, lens, &mut dealt);
        // shorter sequences share lanes (not with the units split, where they measured no gain)
        let pack = lengths.is_some() && !team && LANES.with(|c| c.get());
        for (chunk, items) in cache.chunks.iter_mut().zip(&dealt) {
            chunk.team = team;
            lay_out(items, lens, pack, chunk);
        }
        // one dropout RNG per chunk, drawn in a fixed order
        let seeds: Vec<Option<u64>> = match train {
            Some(rng) => (0..n_chunks).map(|_| Some(rng.gen::<u64>())).collect(),
            None => vec![None; n_chunks],
        };
        cache.t = tn;
        cache.b = b;
        cache.used_tokens = matches!(input, Input::Tokens(_));
        // the output in the user's layout: each chunk copies its own rows while it still has
        // them in cache, and zeroes its padded positions of a variable-length batch; or the
        // real positions only, sequence after sequence
        let w = dn * p;
        cache.compact = cache.want_compact && lengths.is_some();
        let seq_rows: Option<Vec<usize>> = cache.compact.then(|| {
            let mut at = 0;
            lens.iter()
                .map(|&l| {
                    at += l;
                    at - l
                })
                .collect()
        });
        let n_out = if cache.compact {
            lens.iter().sum()
        } else {
            tn * b
        };
        sized(&mut cache.output, n_out * w);
        let output = Shared::new(&mut cache.output);
        let batch_first = cfg.batch_first;
        // (by step `t` of the chunk's loop, and the padded positions by the user's step `t`)
        let copy_out = |chunk: &ChunkCache, t: usize| {
            let top = &chunk.layer_out[ln - 1];
            // SAFETY: every (t, u) belongs to one chunk and one packed row or padded position:
            // written once, by one thread, read only after the threads have joined
            let rows = out_rows(&chunk.src, &chunk.dst);
            for r in chunk.off[t]..chunk.off[t + 1] {
                unsafe { output.write(rows[r] * w, &top[r * w..(r + 1) * w]) };
            }
            if !chunk.dst.is_empty() {
                return;
            }
            for seg in chunk.segs.iter().filter(|seg| seg.len <= t) {
                let r = user_row(batch_first, tn, b, t, seg.u);
                unsafe { output.slice_mut(r * w, w).fill(0.0) };
            }
        };
        // the step products' weights, packed once for all chunks when each has enough rows
        // to use them (see `forward_direction`)
        let shared = n_chunks > 1 && lens.iter().sum::<usize>() >= 16 * n_chunks;
        self.pack_step_weights(params, shared, Transpose::Yes, &mut cache.packed_fwd);
        let packed = &cache.packed_fwd;
        let run = |chunk: &mut ChunkCache, seed: Option<u64>| {
            let mut rng = seed.map(ChaCha8Rng::seed_from_u64);
            let seq_rows = seq_rows.as_deref();
            self.forward_chunk(
                params,
                input,
                tn,
                b,
                init,
                seq_rows,
                rng.as_mut(),
                packed,
                chunk,
            );
        };
        if n_chunks == 1 {
            run(&mut cache.chunks[0], seeds[0]);
            let chunk = &cache.chunks[0];
            (0..tn)
                .into_par_iter()
                .with_min_len(tn.div_ceil(num_threads()).max(1))
                .for_each(|t| copy_out(chunk, t));
        } else {
            cache
                .chunks
                .par_iter_mut()
                .zip(seeds.par_iter())
                .for_each(|(chunk, &seed)| {
                    with_threads(1, || run(chunk, seed));
                    (0..tn).for_each(|t| copy_out(chunk, t));
                });
        }

        // ---- final states in the user's layout
        zeroed(&mut cache.state.h, dn * ln * b * p);
        zeroed(
            &mut cache.state.c,
            if cfg.mode == Mode::Lstm {
                dn * ln * b * h
            } else {
                0
            },
        );
        for chunk in &cache.chunks {
            for k in 0..dn * ln {
                let dc = &chunk.dirs[k];
                for (s, seg) in chunk.segs.iter().enumerate() {
                    let dst = (k * b + seg.u) * p;
                    cache.state.h[dst..dst + p].copy_from_slice(&dc.h_final[s * p..(s + 1) * p]);
                    if cfg.mode == Mode::Lstm {
                        let dst = (k * b + seg.u) * h;
                        cache.state.c[dst..dst + h]
                            .copy_from_slice(&dc.c_final[s * h..(s + 1) * h]);
                    }
                }
            }
        }
        cache.has_forward = true;
        Ok(())
    }

    /// The whole stack over one chunk of sequences (`chunk.rows`, indices into the user's
    /// batch of `bu`).
    #[allow(clippy::too_many_arguments)]
    fn forward_chunk(
        &self,
        params: &[f32],
        input: Input<'_>,
        tn: usize,
        bu: usize,
        init: Option<&RecurrentState>,
        seq_rows: Option<&[usize]>,
        mut rng: Option<&mut ChaCha8Rng>,
        packed: &[Vec<f32>],
        cache: &mut ChunkCache,
    ) {
        let cfg = &self.cfg;
        let (h, p, dn, ln) = (
            cfg.hidden_size,
            cfg.hidden_out(),
            cfg.directions(),
            cfg.num_layers,
        );
        let b = cache.lanes.len();
        let (segs, lanes) = (&cache.segs, &cache.lanes);
        let lane_len = |j: usize| {
            let last = &segs[lanes[j].end - 1];
            last.start + last.len
        };
        cache.active.clear();
        for t in 0..tn {
            cache
                .active
                .push((0..b).filter(|&j| lane_len(j) > t).count());
        }
        cache.off.clear();
        cache.off.push(0);
        for t in 0..tn {
            cache.off.push(cache.off[t] + cache.active[t]);
        }
        let total = cache.off[tn];
        // the user's row of every packed row: each lane's sequence running at step t
        cache.src.clear();
        cache.row_seg.clear();
        cache.dst.clear();
        let mut at: Vec<usize> = lanes.iter().map(|r| r.start).collect();
        for t in 0..tn {
            for (j, s) in at.iter_mut().enumerate().take(cache.active[t]) {
                while segs[*s].start + segs[*s].len <= t {
                    *s += 1;
                }
                let seg = &segs[*s];
                let r = user_row(cfg.batch_first, tn, bu, t - seg.start, seg.u);
                debug_assert_eq!(seg.lane, j);
                cache.src.push(r);
                cache.row_seg.push(*s);
                if let Some(first) = seq_rows {
                    cache.dst.push(first[seg.u] + t - seg.start);
                }
            }
        }

        // ---- layer 0 input, time-major, chunk order
        match input {
            Input::Dense(x) => {
                let i = cfg.input_size;
                cache.x0.clear();
                cache.x0.reserve(total * i);
                for &r in &cache.src {
                    cache.x0.extend_from_slice(&x[r * i..(r + 1) * i]);
                }
            }
            Input::Tokens(ids) => {
                cache.tokens.clear();
                cache.tokens.extend(cache.src.iter().map(|&r| ids[r]));
            }
        }
        let used_tokens = matches!(input, Input::Tokens(_));

        // ---- buffers
        cache.layer_out.resize_with(ln, Vec::new);
        cache.drop_mask.resize_with(ln, Vec::new);
        cache.dropped.resize_with(ln, Vec::new);
        cache.dirs.resize_with(ln * dn, DirCache::default);
        let input_dropout = rng.is_some() && cfg.dropout > 0.0;
        let rec_dropout = rng.is_some() && cfg.recurrent_dropout > 0.0;

        for l in 0..ln {
            let (before, rest) = cache.layer_out.split_at_mut(l);
            let out = &mut rest[0];
            sized(out, total * dn * p);
            let x: LayerInput<'_> = if l == 0 {
                if used_tokens {
                    LayerInput::Tokens(&cache.tokens)
                } else {
                    LayerInput::Dense(&cache.x0, cfg.input_size)
                }
            } else if input_dropout {
                LayerInput::Dense(&cache.dropped[l - 1], dn * p)
            } else {
                LayerInput::Dense(&before[l - 1], dn * p)
            };
            for d in 0..dn {
                let k = l * dn + d;
                let dc = &mut cache.dirs[k];
                // each lane's initial state, and where the sequences leave their final ones
                let hc = if cfg.mode == Mode::Lstm { h } else { 0 };
                let n = cache.segs.len();
                zeroed(&mut dc.h_state, b * p);
                zeroed(&mut dc.c_state, b * hc);
                sized(&mut dc.h_final, n * p);
                sized(&mut dc.c_final, n * hc);
                let mut h_fin = std::mem::take(&mut dc.h_final);
                let mut c_fin = std::mem::take(&mut dc.c_final);
                let mut states = [
                    SeqStates {
                        w: p,
                        start: init.map(|s| &s.h[k * bu * p..(k + 1) * bu * p]),
                        fin: &mut h_fin,
                    },
                    SeqStates {
                        w: hc,
                        start: init.map(|s| &s.c[k * bu * hc..(k + 1) * bu * hc]),
                        fin: &mut c_fin,
                    },
                ];
                let in_time = d == 0;
                states[0].begin(&cache.segs, &cache.lanes, in_time, &mut dc.h_state);
                states[1].begin(&cache.segs, &cache.lanes, in_time, &mut dc.c_state);
                // one recurrent dropout mask per sequence, layer and direction, drawn in the
                // order of the sequences before the layout (so the same with or without
                // shared lanes); per lane, or per packed row when sequences share lanes
                dc.rec_mask.clear();
                dc.rec_mask_rows = n != b;
                if rec_dropout {
                    let rng = rng.as_deref_mut().expect("rec_dropout implies an rng");
                    let keep = 1.0 - cfg.recurrent_dropout;
                    let draws: Vec<f32> = (0..n * p)
                        .map(|_| {
                            if rng.gen::<f32>() < keep {
                                1.0 / keep
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    if dc.rec_mask_rows {
                        dc.rec_mask.reserve(total * p);
                        for &sq in &cache.row_seg {
                            let i = cache.segs[sq].item;
                            dc.rec_mask.extend_from_slice(&draws[i * p..(i + 1) * p]);
                        }
                    } else {
                        // one sequence per lane, lane j the j-th sequence
                        dc.rec_mask = draws;
                    }
                }
                if cache.team {
                    self.forward_direction_team(
                        params,
                        &self.dirs[k],
                        x,
                        tn,
                        b,
                        &cache.off,
                        d,
                        dc,
                        out,
                    );
                } else {
                    let lanes = Lanes {
                        segs: &cache.segs,
                        handovers: &cache.handovers[d],
                    };
                    self.forward_direction(
                        params,
                        &self.dirs[k],
                        x,
                        tn,
                        b,
                        &cache.off,
                        d,
                        dc,
                        out,
                        lanes,
                        &mut states,
                        packed.get(k).map(|v| &v[..]),
                    );
                }
                states[0].end(&cache.lanes, in_time, &dc.h_state);
                states[1].end(&cache.lanes, in_time, &dc.c_state);
                dc.h_final = h_fin;
                dc.c_final = c_fin;
            }
            // dropout between layers
            if l + 1 < ln && input_dropout {
                let rng = rng.as_deref_mut().expect("input_dropout implies an rng");
                let keep = 1.0 - cfg.dropout;
                let mask = &mut cache.drop_mask[l];
                let dropped = &mut cache.dropped[l];
                zeroed(mask, out.len());
                zeroed(dropped, out.len());
                for ((m, y), &o) in mask.iter_mut().zip(dropped.iter_mut()).zip(out.iter()) {
                    *m = if rng.gen::<f32>() < keep {
                        1.0 / keep
                    } else {
                        0.0
                    };
                    *y = o * *m;
                }
            } else {
                cache.drop_mask[l].clear();
            }
        }
    }

    /// One direction of one layer over all steps.
    #[allow(clippy::too_many_arguments)]
    fn forward_direction(
        &self,
        params: &[f32],
        dp: &DirParams,
        x: LayerInput<'_>,
        tn: usize,
        b: usize,
        off: &[usize],
        d: usize,
        dc: &mut DirCache,
        out: &mut [f32],
        lanes: Lanes<'_>,
        states: &mut [SeqStates<'_>; 2],
        shared_w_hh_t: Option<&[f32]>,
    ) {
        let cfg = &self.cfg;
        let (g, h, p, dn) = (
            cfg.mode.gates(),
            cfg.hidden_size,
            cfg.hidden_out(),
            cfg.directions(),
        );
        let gh = g * h;
        let rows = off[tn];
        let lstm_mode = cfg.mode == Mode::Lstm;
        // ---- input projection of all steps: gates = x · W_ihᵀ + bias
        sized(&mut dc.gates, rows * gh);
        let w_ih = &params[dp.w_ih.clone()];
        // the biases that join the input projection: b_ih, plus b_hh except for the GRU,
        // which keeps b_hh with the recurrent product (b_hn sits inside the reset product)
        let mut bias = vec![0.0f32; gh];
        if let (Some(bi), Some(bh)) = (&dp.b_ih, &dp.b_hh) {
            let (bi, bh) = (&params[bi.clone()], &params[bh.clone()]);
            for k in 0..gh {
                bias[k] = bi[k] + if cfg.mode == Mode::Gru { 0.0 } else { bh[k] };
            }
        }
        // one-hot input with a table: each step's rows are gathered in the time loop, right
        // before the recurrent product reads them
        let mut gather: Option<&[u32]> = None;
        match x {
            LayerInput::Dense(xs, i) => {
                matmul(
                    rows,
                    gh,
                    i,
                    xs,
                    i,
                    Transpose::No,
                    w_ih,
                    i,
                    Transpose::Yes,
                    &mut dc.gates,
                    gh,
                    false,
                );
                for row in dc.gates.chunks_exact_mut(gh) {
                    add_assign(row, &bias);
                }
            }
            LayerInput::Tokens(ids) if rows * 4 < dp.input => {
                // few tokens (generation): gather the columns of W_ih directly
                let v = dp.input;
                for (row, &tok) in ids.iter().enumerate() {
                    let g = &mut dc.gates[row * gh..(row + 1) * gh];
                    for (r, x) in g.iter_mut().enumerate() {
                        *x = w_ih[r * v + tok as usize] + bias[r];
                    }
                }
            }
            LayerInput::Tokens(ids) => {
                // one-hot input: rows of W_ihᵀ with the bias folded in, gathered per token
                let v = dp.input;
                zeroed(&mut dc.w_ih_t, v * gh);
                for r in 0..gh {
                    for c in 0..v {
                        dc.w_ih_t[c * gh + r] = w_ih[r * v + c] + bias[r];
                    }
                }
                gather = Some(ids);
            }
        }
        // ---- caches
        sized(&mut dc.h_prev, rows * p);
        if lstm_mode {
            sized(&mut dc.c, rows * h);
            sized(&mut dc.c_prev, rows * h);
            zeroed(&mut dc.r, if cfg.proj_size > 0 { rows * h } else { 0 });
        }
        if cfg.mode == Mode::Gru {
            sized(&mut dc.hn, rows * h);
            zeroed(&mut dc.gates_h, b * gh);
        }
        zeroed(
            &mut dc.h_masked,
            if dc.rec_mask.is_empty() { 0 } else { b * p },
        );
        let w_hh = &params[dp.w_hh.clone()];
        // W_hhᵀ (H_out, G·H) and W_hrᵀ (H, P), laid out once per batch for the step products
        // (not worth it for a handful of rows, e.g. generation, where the GEMV path is used)
        // (a buffer packed last batch is overwritten in place, not cleared and refilled)
        let step_weights_t = rows >= 16;
        match shared_w_hh_t {
            Some(_) if step_weights_t => dc.w_hh_t.clear(),
            _ if step_weights_t => pack_panels(p, gh, w_hh, p, Transpose::Yes, &mut dc.w_hh_t),
            _ => dc.w_hh_t.clear(),
        }
        let w_hh_t: &[f32] = match shared_w_hh_t {
            Some(s) if step_weights_t => s,
            _ => &dc.w_hh_t,
        };
        match &dp.w_hr {
            Some(r) if step_weights_t => {
                pack_panels(h, p, &params[r.clone()], h, Transpose::Yes, &mut dc.w_hr_t);
            }
            _ => dc.w_hr_t.clear(),
        }
        let w_hr = dp.w_hr.clone().map(|r| &params[r]);
        let peep = dp.peep.clone().map(|r| {
            let s = &params[r];
            Peepholes {
                i: &s[..h],
                f: &s[h..2 * h],
                o: &s[2 * h..3 * h],
            }
        });
        let step = LstmStep {
            hidden: h,
            coupled: cfg.coupled,
            peepholes: peep,
        };

        // ---- the time loop
        // LSTM: a step whose lanes all carry on from the previous step (`prev`: its first row
        // and row count) reads its cell state from that step's rows of `c`, where
        // `c_from[t]` tells the backward pass to find it (`usize::MAX`: copied into `c_prev`);
        // with one direction and no projection the cell writes `h` straight into the output
        // rows. The running states `h_state`, `c_state` then hold the lanes that are not
        // running, and are brought up to date where a lane stops, at handovers and at the end.
        let direct_h = lstm_mode && w_hr.is_none() && dn == 1;
        dc.c_from.clear();
        if lstm_mode {
            dc.c_from.resize(tn, usize::MAX);
        }
        let mut prev: Option<(usize, usize)> = None;
        let mut next = 0;
        for s in 0..tn {
            let t = if d == 0 { s } else { tn - 1 - s };
            let (slab, nb) = (off[t], off[t + 1] - off[t]);
            if nb == 0 {
                continue;
            }
            // sequences taking over their lanes
            let due = due(lanes.handovers, &mut next, t);
            // the previous step's rows, when every lane of this step carries on from them
            let from = prev.filter(|&(_, pn)| lstm_mode && due.is_empty() && nb <= pn);
            if let (true, Some((ps, pn))) = (lstm_mode, prev) {
                // the states of the lanes that stop here, or of all at a step that does not
                // carry on
                let lo = if from.is_some() { nb } else { 0 };
                dc.c_state[lo * h..pn * h].copy_from_slice(&dc.c[(ps + lo) * h..(ps + pn) * h]);
                if direct_h {
                    dc.h_state[lo * p..pn * p].copy_from_slice(&out[(ps + lo) * p..(ps + pn) * p]);
                }
            }
            if !due.is_empty() {
                states[0].hand_over(lanes.segs, due, &mut dc.h_state);
                states[1].hand_over(lanes.segs, due, &mut dc.c_state);
            }
            // h_prev, optionally masked (recurrent dropout)
            let hp = &mut dc.h_prev[slab * p..(slab + nb) * p];
            match from {
                Some((ps, _)) if direct_h => hp.copy_from_slice(&out[ps * p..(ps + nb) * p]),
                _ => hp.copy_from_slice(&dc.h_state[..nb * p]),
            }
            let hm: &[f32] = if dc.rec_mask.is_empty() {
                &dc.h_prev[slab * p..(slab + nb) * p]
            } else {
                for ((m, &x), &k) in dc.h_masked[..nb * p]
                    .iter_mut()
                    .zip(&dc.h_prev[slab * p..(slab + nb) * p])
                    .zip(mask_at(&dc.rec_mask, dc.rec_mask_rows, p, slab, nb))
                {
                    *m = x * k;
                }
                &dc.h_masked[..nb * p]
            };
            let gates = &mut dc.gates[slab * gh..(slab + nb) * gh];
            // one-hot input with packed step weights: the rows of W_ihᵀ are gathered inside the
            // recurrent product (LSTM, RNN); otherwise copied first
            let fused = gather.is_some() && !w_hh_t.is_empty() && cfg.mode != Mode::Gru;
            if let Some(ids) = gather {
                if fused {
                    // gates = W_ihᵀ[x] + h_prev · W_hhᵀ
                    gemm_packed_gather(
                        nb,
                        gh,
                        p,
                        hm,
                        p,
                        w_hh_t,
                        gates,
                        gh,
                        &dc.w_ih_t,
                        &ids[slab..slab + nb],
                    );
                } else {
                    for (j, g) in gates.chunks_exact_mut(gh).enumerate() {
                        let t = ids[slab + j] as usize;
                        g.copy_from_slice(&dc.w_ih_t[t * gh..(t + 1) * gh]);
                    }
                }
            }
            match cfg.mode {
                Mode::Lstm => {
                    // gates += h_prev · W_hhᵀ
                    if !fused {
                        step_product(nb, gh, p, hm, w_hh, w_hh_t, gates, true);
                    }
                    let (prev_c, next_c) = cell_states(
                        from.map(|(ps, _)| ps),
                        slab,
                        nb,
                        h,
                        &mut dc.c,
                        &mut dc.c_prev,
                        &dc.c_state,
                    );
                    if let Some((ps, _)) = from {
                        dc.c_from[t] = ps;
                    }
                    match w_hr {
                        None => {
                            let next_h = if direct_h {
                                &mut out[slab * p..(slab + nb) * p]
                            } else {
                                &mut dc.h_state[..nb * h]
                            };
                            lstm::forward_step(&step, nb, gates, prev_c, next_c, next_h);
                        }
                        Some(w_hr) => {
                            let r = &mut dc.r[slab * h..(slab + nb) * h];
                            lstm::forward_step(&step, nb, gates, prev_c, next_c, r);
                            // h = r · W_hrᵀ
                            step_product(nb, p, h, r, w_hr, &dc.w_hr_t, &mut dc.h_state, false);
                        }
                    }
                    prev = Some((slab, nb));
                }
                Mode::Gru => {
                    let ghs = &mut dc.gates_h[..nb * gh];
                    step_product(nb, gh, p, hm, w_hh, w_hh_t, ghs, false);
                    if let Some(bh) = &dp.b_hh {
                        let bh = &params[bh.clone()];
                        for row in ghs.chunks_exact_mut(gh) {
                            add_assign(row, bh);
                        }
                    }
                    gru::forward_step(
                        nb,
                        h,
                        gates,
                        ghs,
                        &mut dc.hn[slab * h..(slab + nb) * h],
                        &dc.h_prev[slab * p..(slab + nb) * p],
                        &mut dc.h_state[..nb * h],
                    );
                }
                Mode::RnnTanh | Mode::RnnRelu => {
                    if !fused {
                        step_product(nb, gh, p, hm, w_hh, w_hh_t, gates, true);
                    }
                    rnn::forward_step(
                        cfg.mode == Mode::RnnRelu,
                        nb * h,
                        gates,
                        &mut dc.h_state[..nb * h],
                    );
                }
            }
            // layer output at step t, this direction's columns
            if !direct_h {
                let w = dn * p;
                for j in 0..nb {
                    out[(slab + j) * w + d * p..(slab + j) * w + (d + 1) * p]
                        .copy_from_slice(&dc.h_state[j * p..(j + 1) * p]);
                }
            }
        }
        // the lanes still running at the end
        if let Some((ps, pn)) = prev {
            dc.c_state[..pn * h].copy_from_slice(&dc.c[ps * h..(ps + pn) * h]);
            if direct_h {
                dc.h_state[..pn * p].copy_from_slice(&out[ps * p..(ps + pn) * p]);
            }
        }
    }

    /// Packs every layer direction's `W_hh` for the step products of all chunks at once (`tb`:
    /// `Yes` for the forward's `W_hhᵀ`, `No` for the backward's `W_hh`; the layouts
    /// `forward_direction` and `backward_direction` pack for themselves otherwise), or empties
    /// `out` when `on` is false.
    fn pack_step_weights(&self, params: &[f32], on: bool, tb: Transpose, out: &mut Vec<Vec<f32>>) {
        if !on {
            out.clear();
            return;
        }
        let (gh, p) = (
            self.cfg.mode.gates() * self.cfg.hidden_size,
            self.cfg.hidden_out(),
        );
        out.resize_with(self.dirs.len(), Vec::new);
        let jobs = self
            .dirs
            .iter()
            .zip(out.iter_mut())
            .map(|(dp, o)| {
                let w = &params[dp.w_hh.clone()];
                match tb {
                    Transpose::Yes => (p, gh, w, p, tb, o),
                    Transpose::No => (gh, p, w, p, tb, o),
                }
            })
            .collect();
        pack_panels_par(jobs);
    }

    /// Backpropagation through time for the last [`Recurrent::forward`] in `cache`.
    ///
    /// - `d_output`: gradient w.r.t. the output, same layout as the output (the padded
    ///   positions of a variable-length batch are not read; the real ones only with
    ///   [`RecurrentCache::set_compact_output`]).
    /// - `d_final`: gradient w.r.t. the final states (`None` = zero; `c` may be empty).
    ///
    /// Parameter gradients are **added** into `grads` (same layout as `params`); the input and
    /// initial-state gradients are left in `cache` ([`RecurrentCache::d_input`],
    /// [`RecurrentCache::d_initial_state`]).
    ///
    /// # Errors
    /// [`Error::Config`] without a preceding forward, [`Error::Shape`] on a size mismatch.
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        cache: &mut RecurrentCache,
        d_output: &[f32],
        d_final: Option<&RecurrentState>,
    ) -> Result<()> {
        let cfg = &self.cfg;
        if !cache.has_forward {
            return Err(Error::Config("backward called before forward".into()));
        }
        let (tn, b) = (cache.t, cache.b);
        let (h, p, dn, ln) = (
            cfg.hidden_size,
            cfg.hidden_out(),
            cfg.directions(),
            cfg.num_layers,
        );
        let w = dn * p;
        let n_out: usize = if cache.compact {
            cache.chunks.iter().map(|c| c.src.len()).sum()
        } else {
            tn * b
        };
        if d_output.len() != n_out * w {
            return Err(Error::shape("d_output", n_out * w, d_output.len()));
        }
        if grads.len() != params.len() {
            return Err(Error::shape("grads", params.len(), grads.len()));
        }
        if let Some(s) = d_final {
            if s.h.len() != dn * ln * b * p {
                return Err(Error::shape("d h_n", dn * ln * b * p, s.h.len()));
            }
            if !s.c.is_empty() && (cfg.mode != Mode::Lstm || s.c.len() != dn * ln * b * h) {
                return Err(Error::shape("d c_n", dn * ln * b * h, s.c.len()));
            }
        }
        let used_tokens = cache.used_tokens;
        let input_grad = !used_tokens && !cache.skip_input_grad;
        let grad_range = self.start..self.end;
        // (by default only with AVX-512, whose transposes are what makes it pay)
        #[cfg(target_arch = "x86_64")]
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let avx512 = false;
        let transposed_min = TRANSPOSED_MIN.with(|c| c.get()).unwrap_or(if avx512 {
            TRANSPOSED_MIN_GATES
        } else {
            usize::MAX
        });
        for chunk in &mut cache.chunks {
            chunk.grad.transposed_min = transposed_min;
        }
        // the step products' weights, packed once for all chunks (see `forward`)
        let shared = cache.chunks.len() > 1 && !cache.packed_fwd.is_empty();
        self.pack_step_weights(params, shared, Transpose::No, &mut cache.packed_bwd);
        let packed = &cache.packed_bwd;
        let run = |chunk: &mut ChunkCache, to: Option<&mut [f32]>| {
            self.backward_chunk(
                params,
                grad_range.clone(),
                tn,
                b,
                used_tokens,
                input_grad,
                d_output,
                d_final,
                packed,
                chunk,
                to,
            );
        };
        if cache.chunks.len() == 1 {
            // one chunk (one sequence, or a team of threads): its gradients go straight to
            // the caller's buffer
            run(&mut cache.chunks[0], Some(grads));
        } else {
            // the first chunk adds its gradients straight into the caller's buffer, the others
            // into their own, added after it in a fixed order (every element adds the chunks
            // in turn; the blocks only spread the work over the threads)
            let (first, rest) = cache.chunks.split_at_mut(1);
            rayon::join(
                || with_threads(1, || run(&mut first[0], Some(&mut *grads))),
                || {
                    rest.par_iter_mut()
                        .for_each(|chunk| with_threads(1, || run(chunk, None)))
                },
            );
            let chunks = &cache.chunks[1..];
            let start = grad_range.start;
            grads[grad_range.clone()]
                .par_chunks_mut(PAR_BLOCK)
                .enumerate()
                .for_each(|(i, d)| {
                    let s = start + i * PAR_BLOCK;
                    for c in chunks {
                        add_assign(d, &c.grads[s..s + d.len()]);
                    }
                });
        }
        // input and initial-state gradients in the user's layout
        let i = cfg.input_size;
        zeroed(&mut cache.d_input, if input_grad { tn * b * i } else { 0 });
        zeroed(&mut cache.d_state.h, dn * ln * b * p);
        zeroed(
            &mut cache.d_state.c,
            if cfg.mode == Mode::Lstm {
                dn * ln * b * h
            } else {
                0
            },
        );
        for chunk in &cache.chunks {
            let n = chunk.segs.len();
            if input_grad {
                for (j, &r) in chunk.src.iter().enumerate() {
                    cache.d_input[r * i..(r + 1) * i]
                        .copy_from_slice(&chunk.d_x[j * i..(j + 1) * i]);
                }
            }
            for k in 0..dn * ln {
                for (s, seg) in chunk.segs.iter().enumerate() {
                    let u = seg.u;
                    let dst = (k * b + u) * p;
                    let src = (k * n + s) * p;
                    cache.d_state.h[dst..dst + p].copy_from_slice(&chunk.d_state.h[src..src + p]);
                    if cfg.mode == Mode::Lstm {
                        let (dst, src) = ((k * b + u) * h, (k * n + s) * h);
                        cache.d_state.c[dst..dst + h]
                            .copy_from_slice(&chunk.d_state.c[src..src + h]);
                    }
                }
            }
        }
        Ok(())
    }

    /// Backpropagation through the whole stack for one chunk of sequences; parameter
    /// gradients are added to `to` when given (the whole parameter buffer), else written to
    /// `cache.grads` (indexed like it, from `grad_range.start`).
    #[allow(clippy::too_many_arguments)]
    fn backward_chunk(
        &self,
        params: &[f32],
        grad_range: Range<usize>,
        tn: usize,
        bu: usize,
        used_tokens: bool,
        input_grad: bool,
        d_output: &[f32],
        d_final: Option<&RecurrentState>,
        packed: &[Vec<f32>],
        cache: &mut ChunkCache,
        to: Option<&mut [f32]>,
    ) {
        let cfg = &self.cfg;
        let (h, p, dn, ln) = (
            cfg.hidden_size,
            cfg.hidden_out(),
            cfg.directions(),
            cfg.num_layers,
        );
        let w = dn * p;
        let (b, n) = (cache.lanes.len(), cache.segs.len());
        // full-size gradient buffer so the parameter ranges index it directly; only the
        // stack's range is used and summed
        let grads: &mut [f32] = match to {
            Some(g) => g,
            None => {
                zeroed(&mut cache.grads, grad_range.end);
                &mut cache.grads
            }
        };
        // gradient w.r.t. the top layer's output, time-major, chunk order: `d_output` as it is
        // when every packed row is the same row of the user's layout (the units split without
        // variable lengths), else read through the rows' map (batch split) or gathered (units
        // split)
        let total = cache.off[tn];
        let rows = out_rows(&cache.src, &cache.dst);
        let top_in_place = rows.iter().enumerate().all(|(j, &r)| j == r);
        if top_in_place || !cache.team {
            cache.d_cur.clear();
        } else {
            sized(&mut cache.d_cur, total * w);
            for (j, &r) in rows.iter().enumerate() {
                cache.d_cur[j * w..(j + 1) * w].copy_from_slice(&d_output[r * w..(r + 1) * w]);
            }
        }
        let hc = if cfg.mode == Mode::Lstm { h } else { 0 };
        sized(&mut cache.d_state.h, dn * ln * n * p);
        sized(&mut cache.d_state.c, dn * ln * n * hc);
        for l in (0..ln).rev() {
            let in_size = if l == 0 { cfg.input_size } else { w };
            let want_dx = l > 0 || input_grad;
            zeroed(&mut cache.d_x, if want_dx { total * in_size } else { 0 });
            let input_dropped = l > 0 && !cache.drop_mask[l - 1].is_empty();
            let x: LayerInput<'_> = if l == 0 {
                if used_tokens {
                    LayerInput::Tokens(&cache.tokens)
                } else {
                    LayerInput::Dense(&cache.x0, cfg.input_size)
                }
            } else if input_dropped {
                LayerInput::Dense(&cache.dropped[l - 1], w)
            } else {
                LayerInput::Dense(&cache.layer_out[l - 1], w)
            };
            for d in 0..dn {
                let k = l * dn + d;
                let gr = &mut cache.grad;
                zeroed(&mut gr.dh_state, b * p);
                zeroed(&mut gr.dc_state, b * hc);
                // each lane starts from the gradient w.r.t. its last sequence's final state
                // (the first its loop meets), and leaves the one w.r.t. each sequence's
                // initial state
                let (d_h, d_c) = (&mut cache.d_state.h, &mut cache.d_state.c);
                let mut states = [
                    SeqStates {
                        w: p,
                        start: d_final.map(|s| &s.h[k * bu * p..(k + 1) * bu * p]),
                        fin: &mut d_h[k * n * p..(k + 1) * n * p],
                    },
                    SeqStates {
                        w: hc,
                        start: d_final
                            .filter(|s| !s.c.is_empty())
                            .map(|s| &s.c[k * bu * hc..(k + 1) * bu * hc]),
                        fin: &mut d_c[k * n * hc..(k + 1) * n * hc],
                    },
                ];
                // the loop runs forward in time for the reverse direction
                let in_time = d == 1;
                states[0].begin(&cache.segs, &cache.lanes, in_time, &mut gr.dh_state);
                states[1].begin(&cache.segs, &cache.lanes, in_time, &mut gr.dc_state);
                let dx = if want_dx {
                    Some(&mut cache.d_x[..])
                } else {
                    None
                };
                let (d_out, d_rows) = match (l + 1 == ln, top_in_place, cache.team) {
                    (true, true, _) => (&d_output[..total * w], None),
                    (true, false, false) => (d_output, Some(rows)),
                    _ => (&cache.d_cur[..], None),
                };
                if cache.team {
                    self.backward_direction_team(
                        params,
                        grads,
                        &self.dirs[k],
                        x,
                        tn,
                        b,
                        &cache.off,
                        d,
                        d_out,
                        &cache.dirs[k],
                        gr,
                        dx,
                    );
                } else {
                    let lanes = Lanes {
                        segs: &cache.segs,
                        handovers: &cache.handovers[1 - d],
                    };
                    self.backward_direction(
                        params,
                        grads,
                        &self.dirs[k],
                        x,
                        tn,
                        b,
                        &cache.off,
                        d,
                        d_out,
                        d_rows,
                        &cache.dirs[k],
                        gr,
                        dx,
                        lanes,
                        &mut states,
                        packed.get(k).map(|v| &v[..]),
                    );
                }
                states[0].end(&cache.lanes, in_time, &gr.dh_state);
                states[1].end(&cache.lanes, in_time, &gr.dc_state);
            }
            if l > 0 {
                // gradient w.r.t. the layer below's output, through its dropout
                std::mem::swap(&mut cache.d_cur, &mut cache.d_x);
                if input_dropped {
                    for (g, m) in cache.d_cur.iter_mut().zip(&cache.drop_mask[l - 1]) {
                        *g *= m;
                    }
                }
            }
        }
    }

    /// Backward of one direction of one layer: the time loop holds the recurrent product, and
    /// every [`WEIGHT_ROWS`] rows the weight and input gradients of those rows (see
    /// `weight_grads`). Packed row `r`'s output gradient is row `d_rows[r]` of `d_out` (row `r`
    /// without a map).
    #[allow(clippy::too_many_arguments)]
    fn backward_direction(
        &self,
        params: &[f32],
        grads: &mut [f32],
        dp: &DirParams,
        x: LayerInput<'_>,
        tn: usize,
        b: usize,
        off: &[usize],
        d: usize,
        d_out: &[f32],
        d_rows: Option<&[usize]>,
        dc: &DirCache,
        gr: &mut DirGrad,
        dx: Option<&mut [f32]>,
        lanes: Lanes<'_>,
        states: &mut [SeqStates<'_>; 2],
        shared_w_hh_p: Option<&[f32]>,
    ) {
        let cfg = &self.cfg;
        let (g, h, p, dn) = (
            cfg.mode.gates(),
            cfg.hidden_size,
            cfg.hidden_out(),
            cfg.directions(),
        );
        let gh = g * h;
        let rows = off[tn];
        let w = dn * p;
        let gru_mode = cfg.mode == Mode::Gru;
        sized(&mut gr.dg, rows * gh);
        sized(&mut gr.dgh, if gru_mode { rows * gh } else { 0 });
        let masked = !dc.rec_mask.is_empty();
        // the weight (and dense input) gradients are computed for blocks of consecutive steps
        // of WEIGHT_ROWS rows or more, each as soon as its steps are done, while their rows
        // are still in cache (one block of all rows with recurrent dropout, whose masked inputs
        // are gathered at the end): the blocks' row ranges, in the loop's order
        gr.blocks.clear();
        let mut blk = (usize::MAX, 0);
        for s in 0..tn {
            // reverse of the forward's processing order
            let t = if d == 0 { tn - 1 - s } else { s };
            if off[t + 1] == off[t] {
                continue;
            }
            if !masked && blk.1 > blk.0 && blk.1 - blk.0 >= WEIGHT_ROWS {
                gr.blocks.push(blk);
                blk = (usize::MAX, 0);
            }
            blk = (blk.0.min(off[t]), blk.1.max(off[t + 1]));
        }
        if blk.1 > blk.0 {
            gr.blocks.push(blk);
        }
        let widest = gr.blocks.iter().map(|b| b.1 - b.0).max().unwrap_or(0);
        // dgᵀ of one block, written step by step while dg's rows are in cache and reused block
        // after block (so it stays in cache too); its row stride: the block's rows rounded up
        // to whole cache lines and one more, so that its rows do not all fall on the same cache
        // sets; started on a cache line
        let ld_t = widest.div_ceil(16) * 16 + 16;
        // (it pays where a block of dg no longer fits in L2 beside the rest, and the product's
        // own packing of dg would read it cold: measured on charlm-2x256, while on
        // charlm-1x128 and series-1x64 the transposes cost more than they save)
        let transposed = !masked && !gru_mode && gh >= gr.transposed_min;
        sized(&mut gr.dg_t, if transposed { gh * ld_t + 16 } else { 0 });
        let t0 = gr.dg_t.as_ptr().align_offset(64).min(15);
        sized(&mut gr.dht, rows * p);
        zeroed(&mut gr.dr, if cfg.proj_size > 0 { b * h } else { 0 });
        zeroed(&mut gr.tmp, b * p);
        zeroed(&mut gr.d_peep, if cfg.peephole { 3 * h } else { 0 });
        let w_hh = &params[dp.w_hh.clone()];
        let w_hr = dp.w_hr.clone().map(|r| &params[r]);
        let peep = dp.peep.clone().map(|r| {
            let s = &params[r];
            Peepholes {
                i: &s[..h],
                f: &s[h..2 * h],
                o: &s[2 * h..3 * h],
            }
        });
        let step = LstmStep {
            hidden: h,
            coupled: cfg.coupled,
            peepholes: peep,
        };
        // the one-hot input's weight gradient and the bias gradients are summed row by row
        // inside the time loop, while each step's gradient rows are still in L1
        let tokens = match x {
            LayerInput::Tokens(ids) => Some(ids),
            LayerInput::Dense(..) => None,
        };
        zeroed(
            &mut gr.dw_t,
            if tokens.is_some() { dp.input * gh } else { 0 },
        );
        let with_bias = dp.b_ih.is_some() && dp.b_hh.is_some();
        zeroed(&mut gr.db, if with_bias { gh } else { 0 });
        zeroed(&mut gr.dbh, if with_bias && gru_mode { gh } else { 0 });
        // dh_prev = dg · W_hh and dr = dh · W_hr: the weights packed once for all steps
        match shared_w_hh_p {
            Some(_) => gr.w_hh_p.clear(),
            None => pack_panels(gh, p, w_hh, p, Transpose::No, &mut gr.w_hh_p),
        }
        let w_hh_p: &[f32] = shared_w_hh_p.unwrap_or(&gr.w_hh_p);
        if let Some(w_hr) = w_hr {
            pack_panels(p, h, w_hr, h, Transpose::No, &mut gr.w_hr_p);
        }

        // `bi`: the block of the steps being done
        let mut bi = 0;
        let mut dx = dx;
        let mut next = 0;
        for s in 0..tn {
            // reverse of the forward's processing order
            let t = if d == 0 { tn - 1 - s } else { s };
            let (slab, nb) = (off[t], off[t + 1] - off[t]);
            if nb == 0 {
                continue;
            }
            let blk = gr.blocks[bi];
            if !(blk.0..blk.1).contains(&slab) {
                // the previous block's steps are all done
                let dgh_all: &[f32] = if gru_mode { &gr.dgh } else { &gr.dg };
                let dxb = dx.as_deref_mut();
                let dg_t = transposed.then(|| (&gr.dg_t[t0..], ld_t));
                weight_grads(
                    x, &gr.dg, dgh_all, dg_t, gh, &dc.h_prev, p, params, grads, dp, dxb, blk,
                );
                bi += 1;
            }
            let blk_lo = gr.blocks[bi].0;
            // sequences taking over their lanes (backward in their time)
            let due = due(lanes.handovers, &mut next, t);
            if !due.is_empty() {
                states[0].hand_over(lanes.segs, due, &mut gr.dh_state);
                states[1].hand_over(lanes.segs, due, &mut gr.dc_state);
            }
            // total gradient of this step's hidden output: from later steps and from above
            let dht = &mut gr.dht[slab * p..(slab + nb) * p];
            for j in 0..nb {
                let r = d_rows.map_or(slab + j, |m| m[slab + j]);
                let o = &d_out[r * w + d * p..r * w + (d + 1) * p];
                add_into(
                    &mut dht[j * p..(j + 1) * p],
                    &gr.dh_state[j * p..(j + 1) * p],
                    o,
                );
            }
            let dg = &mut gr.dg[slab * gh..(slab + nb) * gh];
            let gates = &dc.gates[slab * gh..(slab + nb) * gh];
            match cfg.mode {
                Mode::Lstm => {
                    let d_next_h: &[f32] = match w_hr {
                        None => dht,
                        Some(_) => {
                            // h = r · W_hrᵀ  =>  dr = dh · W_hr
                            gemm_packed(nb, h, p, dht, p, &gr.w_hr_p, &mut gr.dr, h, false);
                            &gr.dr[..nb * h]
                        }
                    };
                    lstm::backward_step(
                        &step,
                        nb,
                        gates,
                        match dc.c_from.get(t) {
                            Some(&from) if from != usize::MAX => &dc.c[from * h..(from + nb) * h],
                            _ => &dc.c_prev[slab * h..(slab + nb) * h],
                        },
                        &dc.c[slab * h..(slab + nb) * h],
                        d_next_h,
                        &mut gr.dc_state[..nb * h],
                        dg,
                        if cfg.peephole {
                            Some(&mut gr.d_peep[..])
                        } else {
                            None
                        },
                    );
                    // gates += h_prev · W_hhᵀ  =>  dh_prev = dg · W_hh
                    gemm_packed(nb, p, gh, dg, gh, w_hh_p, &mut gr.dh_state, p, false);
                }
                Mode::RnnTanh | Mode::RnnRelu => {
                    rnn::backward_step(cfg.mode == Mode::RnnRelu, nb * h, gates, dht, dg);
                    gemm_packed(nb, p, gh, dg, gh, w_hh_p, &mut gr.dh_state, p, false);
                }
                Mode::Gru => {
                    let dgh = &mut gr.dgh[slab * gh..(slab + nb) * gh];
                    gru::backward_step(
                        nb,
                        h,
                        gates,
                        &dc.hn[slab * h..(slab + nb) * h],
                        &dc.h_prev[slab * p..(slab + nb) * p],
                        dht,
                        dg,
                        dgh,
                        &mut gr.dh_state[..nb * h],
                    );
                    gemm_packed(nb, p, gh, dgh, gh, w_hh_p, &mut gr.tmp, p, false);
                }
            }
            if transposed {
                transpose_into(
                    &mut gr.dg_t[t0 + slab - blk_lo..],
                    ld_t,
                    &gr.dg[slab * gh..(slab + nb) * gh],
                    gh,
                    nb,
                    gh,
                );
            }
            for j in 0..nb {
                let row = &gr.dg[(slab + j) * gh..(slab + j + 1) * gh];
                if let Some(ids) = tokens {
                    let t = ids[slab + j] as usize;
                    add_assign(&mut gr.dw_t[t * gh..(t + 1) * gh], row);
                }
                if with_bias {
                    add_assign(&mut gr.db, row);
                    if gru_mode {
                        add_assign(&mut gr.dbh, &gr.dgh[(slab + j) * gh..(slab + j + 1) * gh]);
                    }
                }
            }
            // the recurrent product saw h_prev ⊙ mask
            match (gru_mode, masked) {
                (false, true) => {
                    let mask = dc.rec_mask_at(p, slab, nb);
                    for (x, m) in gr.dh_state[..nb * p].iter_mut().zip(mask) {
                        *x *= m;
                    }
                }
                (true, true) => {
                    for ((x, t), m) in gr.dh_state[..nb * p]
                        .iter_mut()
                        .zip(&gr.tmp)
                        .zip(dc.rec_mask_at(p, slab, nb))
                    {
                        *x += t * m;
                    }
                }
                (true, false) => {
                    for (x, t) in gr.dh_state[..nb * p].iter_mut().zip(&gr.tmp) {
                        *x += t;
                    }
                }
                (false, false) => {}
            }
        }

        // ---- the rows not yet in the weight gradients, and the one-hot input's
        if masked {
            // dW_hh += dghᵀ · (h_prev ⊙ mask): all rows at once, with the masked inputs
            zeroed(&mut gr.h_masked_all, rows * p);
            for t in 0..tn {
                let (o, nb) = (off[t], off[t + 1] - off[t]);
                let mask = dc.rec_mask_at(p, o, nb);
                for (r, j) in (o..o + nb).zip(0..nb) {
                    for k in 0..p {
                        gr.h_masked_all[r * p + k] = dc.h_prev[r * p + k] * mask[j * p + k];
                    }
                }
            }
        }
        if let Some(&blk) = gr.blocks.get(bi) {
            let hprev: &[f32] = if masked { &gr.h_masked_all } else { &dc.h_prev };
            let dgh_all: &[f32] = if gru_mode { &gr.dgh } else { &gr.dg };
            let dg_t = transposed.then(|| (&gr.dg_t[t0..], ld_t));
            weight_grads(
                x, &gr.dg, dgh_all, dg_t, gh, hprev, p, params, grads, dp, dx, blk,
            );
        }
        if let LayerInput::Tokens(_) = x {
            // dW_ihᵀ was summed in the time loop
            let v = dp.input;
            let gw = &mut grads[dp.w_ih.clone()];
            for r in 0..gh {
                for c in 0..v {
                    gw[r * v + c] += gr.dw_t[c * gh + r];
                }
            }
        }
        if let (Some(bi), Some(bh)) = (&dp.b_ih, &dp.b_hh) {
            add_assign(&mut grads[bi.clone()], &gr.db);
            add_assign(
                &mut grads[bh.clone()],
                if gru_mode { &gr.dbh } else { &gr.db },
            );
        }
        if let Some(r) = &dp.w_hr {
            // h = r · W_hrᵀ  =>  dW_hr += dhᵀ · r
            matmul(
                p,
                h,
                rows,
                &gr.dht,
                p,
                Transpose::Yes,
                &dc.r,
                h,
                Transpose::No,
                &mut grads[r.clone()],
                h,
                true,
            );
        }
        if let Some(r) = &dp.peep {
            for (a, g) in grads[r.clone()].iter_mut().zip(&gr.d_peep) {
                *a += g;
            }
        }
    }

    /// Number of parameters (same as [`RecurrentConfig::num_params`]).
    pub fn num_params(&self) -> usize {
        self.cfg.num_params()
    }
}

/// Rows (of consecutive steps) of a backward time loop whose weight gradients are computed
/// together, while they are in cache (see `backward_direction`).
const WEIGHT_ROWS: usize = 256;

/// A step's cell state before it (`prev`) and after it (`next`, to be written), `nb` rows of `h`
/// from row `slab`: with `from`, the previous step's rows of `c` (no copy); else `c_state`'s
/// first rows copied into `c_prev`'s rows of the step.
pub(super) fn cell_states<'a>(
    from: Option<usize>,
    slab: usize,
    nb: usize,
    h: usize,
    c: &'a mut [f32],
    c_prev: &'a mut [f32],
    c_state: &[f32],
) -> (&'a [f32], &'a mut [f32]) {
    match from {
        Some(ps) if ps < slab => {
            let (a, b) = c.split_at_mut(slab * h);
            (&a[ps * h..(ps + nb) * h], &mut b[..nb * h])
        }
        Some(ps) => {
            let (a, b) = c.split_at_mut(ps * h);
            (&b[..nb * h], &mut a[slab * h..(slab + nb) * h])
        }
        None => {
            let prev_c = &mut c_prev[slab * h..(slab + nb) * h];
            prev_c.copy_from_slice(&c_state[..nb * h]);
            (prev_c, &mut c[slab * h..(slab + nb) * h])
        }
    }
}

/// Gate rows (`G·H`) from which the backward pass keeps `dgᵀ` for the weight gradients, on a
/// CPU with AVX-512 (see `backward_direction`).
const TRANSPOSED_MIN_GATES: usize = 1024;

/// Rows `r0..r1` of one layer direction's weight gradients, and of its input gradient for a
/// dense input: `dW_ih += dgᵀ · x`, `dx += dg · W_ih`, `dW_hh += dghᵀ · h_prev` (`dg (rows, gh)`,
/// `dgh` the gradient the recurrent product saw, `h_prev (rows, p)`). A one-hot input's `dW_ih`
/// is summed elsewhere.
#[allow(clippy::too_many_arguments)]
fn weight_grads(
    x: LayerInput<'_>,
    dg: &[f32],
    dgh: &[f32],
    dg_t: Option<(&[f32], usize)>,
    gh: usize,
    h_prev: &[f32],
    p: usize,
    params: &[f32],
    grads: &mut [f32],
    dp: &DirParams,
    dx: Option<&mut [f32]>,
    (r0, r1): (usize, usize),
) {
    let n = r1 - r0;
    let dg = &dg[r0 * gh..r1 * gh];
    // dgᵀ as the left factor of the weight gradients: laid out already (the block's, from its
    // first row), or read transposed
    let (a, lda, ta) = match dg_t {
        Some((t, ld)) => (t, ld, Transpose::No),
        None => (dg, gh, Transpose::Yes),
    };
    if let LayerInput::Dense(xs, i) = x {
        // gates = x · W_ihᵀ  =>  dW_ih += dgᵀ · x, dx += dg · W_ih
        let xs = &xs[r0 * i..r1 * i];
        let gw = &mut grads[dp.w_ih.clone()];
        matmul(gh, i, n, a, lda, ta, xs, i, Transpose::No, gw, i, true);
        if let Some(dx) = dx {
            let w_ih = &params[dp.w_ih.clone()];
            let dx = &mut dx[r0 * i..r1 * i];
            matmul(
                n,
                i,
                gh,
                dg,
                gh,
                Transpose::No,
                w_ih,
                i,
                Transpose::No,
                dx,
                i,
                true,
            );
        }
    }
    // gates += h_prev · W_hhᵀ  =>  dW_hh += dghᵀ · h_prev (dgh is dg but for the GRU, which
    // has no dgᵀ)
    let (dgh, hp) = (&dgh[r0 * gh..r1 * gh], &h_prev[r0 * p..r1 * p]);
    let (a, lda, ta) = match dg_t {
        Some(_) => (a, lda, ta),
        None => (dgh, gh, Transpose::Yes),
    };
    let gw = &mut grads[dp.w_hh.clone()];
    matmul(gh, p, n, a, lda, ta, hp, p, Transpose::No, gw, p, true);
}

/// The input of one layer inside the stack.
#[derive(Clone, Copy)]
enum LayerInput<'a> {
    /// `(T, B, width)`, time-major, sorted rows.
    Dense(&'a [f32], usize),
    /// `(T, B)` token ids.
    Tokens(&'a [u32]),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lstm bench`'s variable-length batch (lengths drawn from 1..=64), sorted longest first.
    const BENCH: [usize; 32] = [
        62, 57, 56, 54, 52, 50, 50, 46, 46, 44, 44, 44, 41, 38, 33, 30, 29, 29, 28, 28, 24, 23, 19,
        16, 15, 12, 7, 6, 5, 3, 3, 2,
    ];

    fn dealt(lens: &[usize], n: usize) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..lens.len()).collect();
        order.sort_by(|&x, &y| lens[y].cmp(&lens[x]));
        let mut chunks = vec![Vec::new(); n];
        deal(&order, lens, &mut chunks);
        chunks
    }

    #[test]
    fn dealing_gives_every_row_once_longest_first_and_balances_the_tokens() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut cases: Vec<Vec<usize>> = vec![BENCH.to_vec(), vec![64, 1, 1, 1], vec![3, 3]];
        for _ in 0..50 {
            let b = rng.gen_range(2..70);
            cases.push((0..b).map(|_| rng.gen_range(1..=100)).collect());
        }
        for lens in &cases {
            for n in 2..=4.min(lens.len()) {
                let chunks = dealt(lens, n);
                let mut seen: Vec<usize> = chunks.iter().flatten().copied().collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>(), "{lens:?}");
                for c in &chunks {
                    assert!(!c.is_empty(), "an empty chunk for {lens:?}");
                    assert!(c.windows(2).all(|w| lens[w[0]] >= lens[w[1]]), "unsorted");
                }
                // no chunk is more than one longest row's cost above another
                let cost =
                    |c: &Vec<usize>| 4 * lens[c[0]] + 5 * c.iter().map(|&u| lens[u]).sum::<usize>();
                let costs: Vec<usize> = chunks.iter().map(cost).collect();
                let (lo, hi) = (costs.iter().min().unwrap(), costs.iter().max().unwrap());
                let longest = *lens.iter().max().unwrap();
                assert!(hi - lo <= 9 * longest, "{lens:?} into {n}: {costs:?}");
            }
        }
        // the bench's batch: 496 tokens beside the row of 62, 500 beside 57 (dealt in turn: 514
        // and 482)
        let tokens: Vec<usize> = dealt(&BENCH, 2)
            .iter()
            .map(|c| c.iter().map(|&u| BENCH[u]).sum())
            .collect();
        let spread = tokens[0].abs_diff(tokens[1]);
        assert!(spread <= 8, "{tokens:?}");
    }

    #[test]
    fn lanes_hold_every_sequence_once_back_to_back_within_the_longest() {
        for items in dealt(&BENCH, 2) {
            let mut chunk = ChunkCache::default();
            lay_out(&items, &BENCH, true, &mut chunk);
            let mut seen: Vec<usize> = chunk.segs.iter().map(|s| s.u).collect();
            seen.sort_unstable();
            let mut want = items.clone();
            want.sort_unstable();
            assert_eq!(seen, want);
            let cap = BENCH[items[0]];
            let mut last = usize::MAX;
            for (j, r) in chunk.lanes.iter().enumerate() {
                let mut end = 0;
                for s in &chunk.segs[r.clone()] {
                    assert_eq!((s.lane, s.start, s.len), (j, end, BENCH[s.u]));
                    end += s.len;
                }
                assert!(
                    end <= cap && end <= last,
                    "lanes within {cap}, longest first"
                );
                last = end;
            }
            // 496 and 500 tokens in lanes of 62 and 57: 9 and 10 lanes, not 16 rows
            assert!(chunk.lanes.len() <= 10, "{} lanes", chunk.lanes.len());
            // a handover wherever a lane passes on, in each loop's order of steps
            let n = chunk.segs.len() - chunk.lanes.len();
            let [fwd, bwd] = &chunk.handovers;
            assert_eq!((fwd.len(), bwd.len()), (n, n));
            assert!(fwd.windows(2).all(|w| w[0].t <= w[1].t));
            assert!(bwd.windows(2).all(|w| w[0].t >= w[1].t));
            for ho in fwd {
                let (a, b) = (chunk.segs[ho.prev], chunk.segs[ho.next]);
                assert_eq!(
                    (a.lane, b.lane, a.start + a.len, b.start),
                    (ho.lane, ho.lane, ho.t, ho.t)
                );
            }
            for ho in bwd {
                let (a, b) = (chunk.segs[ho.prev], chunk.segs[ho.next]);
                assert_eq!(
                    (a.lane, b.lane, a.start, b.start + b.len),
                    (ho.lane, ho.lane, ho.t + 1, ho.t + 1)
                );
            }
        }
        // without packing, one lane per sequence
        let mut chunk = ChunkCache::default();
        lay_out(&[0, 1, 2], &[5, 3, 2], false, &mut chunk);
        assert_eq!(chunk.lanes, vec![0..1, 1..2, 2..3]);
        assert!(chunk.handovers.iter().all(|h| h.is_empty()));
    }
}
