//! What a forward pass keeps for the backward pass: the caches of each layer direction and
//! chunk, the gradients' buffers, and the caller-owned [`RecurrentCache`].

use super::*;

/// Everything one layer direction keeps from the forward pass for the backward pass.
#[derive(Clone, Debug, Default)]
pub(super) struct DirCache {
    /// `(T, B, G·H)`: activated gates per step (pre-activations before the step ran).
    pub(super) gates: Vec<f32>,
    /// `(B, G·H)`: GRU recurrent product scratch.
    pub(super) gates_h: Vec<f32>,
    /// `(T, B, H)`: GRU `h_n = W_hn h + b_hn` per step.
    pub(super) hn: Vec<f32>,
    /// `(T, B, H)`: LSTM cell state after / before each step.
    pub(super) c: Vec<f32>,
    pub(super) c_prev: Vec<f32>,
    /// `(T)`: LSTM, where step `t`'s cell state before the step is kept: from row `c_from[t]`
    /// of `c` (the previous step's rows), or `usize::MAX` for `c_prev`'s rows of the step.
    pub(super) c_from: Vec<usize>,
    /// `(T, B, H_out)`: hidden state entering each step (unmasked).
    pub(super) h_prev: Vec<f32>,
    /// `(T, B, H)`: LSTM hidden state before projection, with a projection.
    pub(super) r: Vec<f32>,
    /// `(B, H_out)`, `(B, H)`: running states, per lane.
    pub(super) h_state: Vec<f32>,
    pub(super) c_state: Vec<f32>,
    /// `(n, H_out)`, `(n, H)`: final states of the chunk's `n` sequences (`segs` order).
    pub(super) h_final: Vec<f32>,
    pub(super) c_final: Vec<f32>,
    /// `(B, H_out)`: masked hidden state scratch.
    pub(super) h_masked: Vec<f32>,
    /// `(B, H_out)`: recurrent dropout mask per lane (empty when off), or `(rows, H_out)`, one
    /// per packed row, when sequences share lanes (`rec_mask_rows`).
    pub(super) rec_mask: Vec<f32>,
    pub(super) rec_mask_rows: bool,
    /// `(V, G·H)`: `W_ihᵀ` for one-hot input.
    pub(super) w_ih_t: Vec<f32>,
    /// `(H_out, G·H)`: `W_hhᵀ`.
    pub(super) w_hh_t: Vec<f32>,
    /// `(H, P)`: `W_hrᵀ`.
    pub(super) w_hr_t: Vec<f32>,
    /// The two threads' shares when the direction runs as a team (see `team`); else empty.
    pub(super) team: Vec<units::TeamPart>,
}

impl DirCache {
    /// The recurrent dropout masks of the rows `slab..slab + nb` of a step (its lanes `0..nb`).
    pub(super) fn rec_mask_at(&self, p: usize, slab: usize, nb: usize) -> &[f32] {
        mask_at(&self.rec_mask, self.rec_mask_rows, p, slab, nb)
    }
}

/// The masks in `mask` (one per packed row with `per_row`, else one per lane) of the rows
/// `slab..slab + nb` of a step.
pub(super) fn mask_at(mask: &[f32], per_row: bool, p: usize, slab: usize, nb: usize) -> &[f32] {
    if per_row {
        &mask[slab * p..(slab + nb) * p]
    } else {
        &mask[..nb * p]
    }
}

/// Scratch of the backward pass of one layer direction (reused across directions).
#[derive(Clone, Debug, Default)]
pub(super) struct DirGrad {
    /// `(T, B, G·H)`: gradient of the pre-activations (input side).
    pub(super) dg: Vec<f32>,
    /// `(T, B, G·H)`: recurrent side (GRU only; LSTM/RNN use `dg`).
    pub(super) dgh: Vec<f32>,
    /// `(G·H, rows of one block of weight gradients)`, row stride `ld_t`: that block's `dgᵀ`,
    /// written step by step while `dg`'s rows are in cache, for the weight gradients' products
    /// (large LSTM and RNN layers without recurrent dropout; else empty).
    pub(super) dg_t: Vec<f32>,
    /// The row ranges of the blocks of steps whose weight gradients are computed together, in
    /// the backward loop's order (see `backward_direction`).
    pub(super) blocks: Vec<(usize, usize)>,
    /// `(T, B, H_out)`: total gradient of each step's hidden output.
    pub(super) dht: Vec<f32>,
    /// `(B, H)`: gradient w.r.t. `r` (projection).
    pub(super) dr: Vec<f32>,
    pub(super) dh_state: Vec<f32>,
    pub(super) dc_state: Vec<f32>,
    pub(super) tmp: Vec<f32>,
    /// `(T, B, H_out)`: masked hidden states for `dW_hh`.
    pub(super) h_masked_all: Vec<f32>,
    /// `(3H)`.
    pub(super) d_peep: Vec<f32>,
    /// `(V, G·H)`: `dW_ihᵀ` for one-hot input.
    pub(super) dw_t: Vec<f32>,
    /// `(G·H)`: column sums of `dg` and (GRU) `dgh`: the bias gradients.
    pub(super) db: Vec<f32>,
    pub(super) dbh: Vec<f32>,
    /// `W_hh` and `W_hr` packed in panels for the step products.
    pub(super) w_hh_p: Vec<f32>,
    pub(super) w_hr_p: Vec<f32>,
    /// The two threads' scratch for a team direction.
    pub(super) team: Vec<units::TeamGrad>,
    /// The weight gradients' scratch with [`Precision::Bf16`].
    pub(super) bf: Bf16Scratch,
    /// [`TRANSPOSED_MIN_GATES`] or the caller's override, set by `backward` (read on the
    /// threads that run the chunks).
    pub(super) transposed_min: usize,
}

/// The buffers of one chunk of the batch: a set of sequences that one thread runs through the
/// whole stack, forward and backward, without synchronising with the other chunks.
#[derive(Clone, Debug, Default)]
pub(super) struct ChunkCache {
    /// Whether each layer direction runs as a team of two threads splitting the units (then
    /// the chunk is the whole batch); see `team`.
    pub(super) team: bool,
    /// the chunk's sequences, lane by lane and in time order within a lane (see [`Seg`])
    pub(super) segs: Vec<Seg>,
    /// per lane (chunk row): its sequences, a range of `segs`; lanes come longest first
    pub(super) lanes: Vec<Range<usize>>,
    /// per packed row (see `off`): its row in the user's layout
    pub(super) src: Vec<usize>,
    /// per packed row: its sequence (index into `segs`)
    pub(super) row_seg: Vec<usize>,
    /// per packed row: its row of the compact output (see
    /// [`RecurrentCache::set_compact_output`]); empty when the output has the user's layout
    pub(super) dst: Vec<usize>,
    /// where one sequence hands its lane to the next, for a time loop running forward in
    /// time (`[0]`) and backward (`[1]`); empty unless sequences share lanes
    pub(super) handovers: [Vec<Handover>; 2],
    /// per step: number of lanes still running (a prefix of the chunk's lanes)
    pub(super) active: Vec<usize>,
    /// per step: the first row of the step in the packed buffers (`T + 1` entries; step `t`
    /// holds rows `off[t]..off[t + 1]`, its `active[t]` running sequences: padding is never
    /// stored, so every product below is proportional to the real length)
    pub(super) off: Vec<usize>,
    /// layer 0 input, time-major, chunk order
    pub(super) x0: Vec<f32>,
    pub(super) tokens: Vec<u32>,
    /// per layer: `(T, b, D·H_out)` output, chunk order
    pub(super) layer_out: Vec<Vec<f32>>,
    /// per layer below the top: dropout mask and the dropped output (the next layer's input)
    pub(super) drop_mask: Vec<Vec<f32>>,
    pub(super) dropped: Vec<Vec<f32>>,
    pub(super) dirs: Vec<DirCache>,
    pub(super) grad: DirGrad,
    pub(super) d_cur: Vec<f32>,
    pub(super) d_x: Vec<f32>,
    /// this chunk's parameter gradients (the stack's range of the store)
    pub(super) grads: Vec<f32>,
    /// `(D·L, n, H_out)` / `(D·L, n, H)`: gradient w.r.t. the initial states of the chunk's
    /// `n` sequences, in the order of `segs`
    pub(super) d_state: RecurrentState,
}

/// Per packed row of a chunk: its row of the output (and of the output's gradient), from the
/// chunk's `src` and `dst`.
pub(super) fn out_rows<'a>(src: &'a [usize], dst: &'a [usize]) -> &'a [usize] {
    if dst.is_empty() {
        src
    } else {
        dst
    }
}

/// Buffers of a forward and backward pass, owned by the caller and reused across batches so
/// the time loop never allocates.
///
/// The batch is split into interleaved chunks of sequences, one per thread; each chunk runs
/// the whole stack independently (no synchronisation inside the time loop), and the chunks'
/// parameter gradients are summed in a fixed order (deterministic for a given thread count).
/// Large LSTM layers on two threads instead keep the batch as one chunk and split each layer
/// direction's units between the threads (an LSTM layer whose `W_hh` holds at least `4·384·384`
/// floats, with at least 8 sequences).
#[derive(Clone, Debug, Default)]
pub struct RecurrentCache {
    pub(super) t: usize,
    pub(super) b: usize,
    pub(super) chunks: Vec<ChunkCache>,
    // results in the user's layout
    pub(super) output: Vec<f32>,
    pub(super) state: RecurrentState,
    pub(super) d_input: Vec<f32>,
    pub(super) d_state: RecurrentState,
    pub(super) has_forward: bool,
    pub(super) used_tokens: bool,
    /// Skip the gradient w.r.t. dense layer-0 input (nobody reads it when the input is data).
    pub(super) skip_input_grad: bool,
    /// See [`RecurrentCache::set_compact_output`]; `compact` is whether the last forward pass
    /// used it (a variable-length batch).
    pub(super) want_compact: bool,
    pub(super) compact: bool,
    /// The stack whose forward pass filled the cache (its parameter range and configuration):
    /// a backward pass of another stack is refused.
    pub(super) owner: Option<(std::ops::Range<usize>, super::RecurrentConfig)>,
    /// Per layer direction, `W_hhᵀ` packed for the forward step products and `W_hh` for the
    /// backward ones, once for all chunks (their panels spread over the threads) instead of
    /// once per chunk; empty with a single chunk, which packs its own.
    pub(super) packed_fwd: Vec<Vec<f32>>,
    pub(super) packed_bwd: Vec<Vec<f32>>,
    /// The same in bf16 with [`Precision::Bf16`], for every pass (see [`Bf16Weights`]).
    pub(super) bf16_fwd: Vec<Bf16Weights>,
    pub(super) bf16_bwd: Vec<Bf16Weights>,
}

/// Scratch of the bf16 weight gradients: `xᵀ` or `h_prevᵀ` in bf16, and the transposed
/// gradients `dW_ihᵀ (I, G·H)` and `dW_hhᵀ (H_out, G·H)` summed over the blocks of rows, added
/// into the gradients once at the end of the direction's backward pass.
#[derive(Clone, Debug, Default)]
pub(super) struct Bf16Scratch {
    pub(super) rows: Bf16Rows,
    pub(super) t_ih: Vec<f32>,
    pub(super) t_hh: Vec<f32>,
    /// One of them transposed back, `(G·H, I or H_out)`, before it is added.
    pub(super) back: Vec<f32>,
}

/// One layer direction's weights rounded to bf16 and laid out for the products of
/// [`Precision::Bf16`], once per pass for all chunks.
#[derive(Clone, Debug, Default)]
pub(super) struct Bf16Weights {
    /// Forward: `W_ihᵀ (I, G·H)` for the input projection (dense input only); backward:
    /// `W_ih (G·H, I)` for `dx = dg · W_ih`.
    pub(super) w_ih: Option<AmxPacked>,
    /// Forward: `W_hhᵀ (H_out, G·H)`; backward: `W_hh (G·H, H_out)`.
    pub(super) w_hh: Option<AmxPacked>,
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
pub(super) fn zeroed(v: &mut Vec<f32>, n: usize) {
    v.clear();
    v.resize(n, 0.0);
}

/// Resizes `v` to `n` values without clearing it when it already has that size: for buffers
/// every element of which is written before it is read.
pub(super) fn sized(v: &mut Vec<f32>, n: usize) {
    if v.len() != n {
        zeroed(v, n);
    }
}

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
