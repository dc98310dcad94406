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
//! 3. the cache keeps gates, cell states and inputs of every step for the backward pass
//!    ([`backward`](Recurrent::backward), `backward.rs`), where the recurrent product stays in
//!    the time loop and the weight and input gradients are GEMMs over every 256 rows of
//!    consecutive steps, run while those rows are still in cache.
//!
//! The files follow those seams: `config.rs` (configuration and initialisation), `schedule.rs`
//! (how a batch is dealt to the threads in chunks of sequences, and lanes), `cache.rs`,
//! `forward.rs`, `backward.rs`, and `units.rs`, the other split for large LSTM layers on two
//! threads: the batch kept whole and each layer direction's units shared between the threads.
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
//! use lstm::recurrent::{Input, Recurrent, RecurrentCache, RecurrentConfig, SequenceBatch};
//! use rand::SeedableRng;
//! let cfg = RecurrentConfig { input_size: 3, hidden_size: 4, ..Default::default() };
//! let mut store = ParamStore::default();
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
//! let lstm = Recurrent::new(cfg, &mut store, "lstm.", &mut rng).unwrap();
//! let x = vec![0.1f32; 5 * 2 * 3]; // (T=5, B=2, I=3), time-major
//! let mut cache = RecurrentCache::default();
//! let batch = SequenceBatch::new(Input::Dense(&x), 5, 2); // zero states, no dropout
//! lstm.forward(&store.values, batch, &mut cache).unwrap();
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
use crate::kernels::amx::{gemm_bf16, gemm_bf16_rows, AmxPacked, Bf16Backend, Bf16Rows};
use crate::kernels::stepkernel::{gemm_packed, gemm_packed_gather, pack_panels, pack_panels_par};
use crate::kernels::transpose::transpose_into;
use crate::kernels::{
    add_assign, add_into, matmul, num_threads, with_threads, Precision, Transpose, PAR_BLOCK,
};
use crate::params::init::{self, InitScheme};
use crate::params::ParamStore;

pub(crate) mod backward;
mod cache;
mod config;
mod forward;
pub(crate) mod schedule;
pub(crate) mod units;

pub use cache::RecurrentCache;
use cache::*;
pub use config::RecurrentConfig;
use schedule::*;
pub(crate) use units::{team_override, with_team_override};

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

/// What a forward pass runs over: the input, its shapes, and the optional parts.
///
/// Shapes use `T` = [`seq_len`](Self::seq_len), `B` = [`batch`](Self::batch), `I` = the
/// configured input size, `L` layers, `D` directions, `H` hidden size and `H_out` the hidden
/// output (`P` with a projection, else `H`). The common call is short:
/// `SequenceBatch::new(Input::Dense(&x), t, b)`, with `with_lengths`, `with_initial_state` and
/// `with_dropout_rng` for the rest, or a struct literal ending in `..SequenceBatch::new(..)`
/// when they are already `Option`s.
#[derive(Debug)]
pub struct SequenceBatch<'a> {
    /// `(T, B, I)` features or `(T, B)` token ids; `(B, T, ·)` when `batch_first`.
    pub input: Input<'a>,
    /// `T`, the number of time steps (at least 1).
    pub seq_len: usize,
    /// `B`, the number of sequences (at least 1).
    pub batch: usize,
    /// `(B)`: one length per sequence, each in `1..=T`, any order; `None` = all `T`.
    pub lengths: Option<&'a [usize]>,
    /// Initial states, `h (D·L, B, H_out)` and `c (D·L, B, H)` (LSTM), see
    /// [`RecurrentState`]; `None` = zeros.
    pub initial_state: Option<&'a RecurrentState>,
    /// The RNG for dropout masks when training; `None` = evaluation (no dropout).
    pub dropout_rng: Option<&'a mut ChaCha8Rng>,
}

impl<'a> SequenceBatch<'a> {
    /// `B` sequences of `T` steps each, from zero states, without dropout.
    pub fn new(input: Input<'a>, seq_len: usize, batch: usize) -> Self {
        Self {
            input,
            seq_len,
            batch,
            lengths: None,
            initial_state: None,
            dropout_rng: None,
        }
    }

    /// Sets the per-sequence lengths `(B)`, each in `1..=T`.
    #[must_use]
    pub fn with_lengths(mut self, lengths: &'a [usize]) -> Self {
        self.lengths = Some(lengths);
        self
    }

    /// Starts from these states instead of zeros.
    #[must_use]
    pub fn with_initial_state(mut self, state: &'a RecurrentState) -> Self {
        self.initial_state = Some(state);
        self
    }

    /// Trains: draws the dropout masks from `rng`.
    #[must_use]
    pub fn with_dropout_rng(mut self, rng: &'a mut ChaCha8Rng) -> Self {
        self.dropout_rng = Some(rng);
        self
    }
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
    /// The numeric format of the matrix products ([`Recurrent::set_precision`]).
    precision: Precision,
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
