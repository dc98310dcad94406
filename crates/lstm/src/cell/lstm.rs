//! The LSTM cell: forward step, what it caches, and backward step, side by side.
//!
//! Forward, per unit (PyTorch's gate order i, f, g, o; `a_*` are pre-activations, which already
//! hold `W_ih x + b_ih + W_hh h_prev + b_hh`):
//!
//! ```text
//! in_gate        i = σ(a_i + p_i ⊙ prev_c)         (coupled: i = 1 - f)
//! forget_gate    f = σ(a_f + p_f ⊙ prev_c)
//! cell_candidate g = tanh(a_g)
//! next_c           = f ⊙ prev_c + i ⊙ g            (the conveyor belt)
//! out_gate       o = σ(a_o + p_o ⊙ next_c)         (peephole on the *new* cell, ONNX convention)
//! next_h           = o ⊙ tanh(next_c)              (before the optional projection)
//! ```
//! Peephole terms are present only for the `peephole` variant.
//!
//! The cache of one step is the activated gates (overwriting the pre-activations), `prev_c`
//! and `next_c`; the backward step recomputes `tanh(next_c)` from them.
//!
//! ```
//! use lstm::cell::lstm::{forward_step, LstmStep};
//! let step = LstmStep { hidden: 1, coupled: false, peepholes: None };
//! let mut gates = [0.0, 0.0, 0.0, 0.0]; // pre-activations i, f, g, o
//! let (mut c, mut h) = ([0.0], [0.0]);
//! forward_step(&step, 1, &mut gates, &[1.0], &mut c, &mut h);
//! assert!((c[0] - 0.5).abs() < 1e-6); // f = 0.5 keeps half of prev_c = 1, g = 0 adds nothing
//! ```

use crate::activation::{sigmoid, tanh};
use crate::simd_dispatch;

/// Peephole weights of one layer direction, each `(H)`.
#[derive(Clone, Copy, Debug)]
pub struct Peepholes<'a> {
    /// `p_i`: input gate looks at `prev_c`.
    pub i: &'a [f32],
    /// `p_f`: forget gate looks at `prev_c`.
    pub f: &'a [f32],
    /// `p_o`: output gate looks at `next_c`.
    pub o: &'a [f32],
}

/// What an LSTM step needs to know besides its buffers.
#[derive(Clone, Copy, Debug)]
pub struct LstmStep<'a> {
    /// `H`, the number of cell units.
    pub hidden: usize,
    /// Coupled input and forget gates (`i = 1 - f`); the i block is then ignored.
    pub coupled: bool,
    /// Peephole weights, for the peephole variant.
    pub peepholes: Option<Peepholes<'a>>,
}

simd_dispatch!(
    /// Forward of one step over `nb` rows.
    ///
    /// - `gates`: `(nb, 4H)`; in: pre-activations; out: activations `i, f, g, o` (the cache).
    /// - `prev_c`: `(nb, H)`; `next_c`: `(nb, H)` out; `next_h`: `(nb, H)` out, `o ⊙ tanh(next_c)`.
    pub fn forward_step(
        step: &LstmStep<'_>,
        nb: usize,
        gates: &mut [f32],
        prev_c: &[f32],
        next_c: &mut [f32],
        next_h: &mut [f32],
    ) => forward_impl
);

#[inline(always)]
fn forward_impl(
    step: &LstmStep<'_>,
    nb: usize,
    gates: &mut [f32],
    prev_c: &[f32],
    next_c: &mut [f32],
    next_h: &mut [f32],
) {
    let h = step.hidden;
    for b in 0..nb {
        let g = &mut gates[b * 4 * h..(b + 1) * 4 * h];
        let (in_gate, rest) = g.split_at_mut(h);
        let (forget_gate, rest) = rest.split_at_mut(h);
        let (cell_candidate, out_gate) = rest.split_at_mut(h);
        let pc = &prev_c[b * h..(b + 1) * h];
        let nc = &mut next_c[b * h..(b + 1) * h];
        let nh = &mut next_h[b * h..(b + 1) * h];
        if let Some(p) = step.peepholes {
            // i = σ(a_i + p_i ⊙ prev_c), f = σ(a_f + p_f ⊙ prev_c)
            for j in 0..h {
                in_gate[j] += p.i[j] * pc[j];
                forget_gate[j] += p.f[j] * pc[j];
            }
        }
        for f in forget_gate.iter_mut() {
            *f = sigmoid(*f);
        }
        if step.coupled {
            // i = 1 - f
            for (i, f) in in_gate.iter_mut().zip(forget_gate.iter()) {
                *i = 1.0 - f;
            }
        } else {
            for i in in_gate.iter_mut() {
                *i = sigmoid(*i);
            }
        }
        for g in cell_candidate.iter_mut() {
            *g = tanh(*g);
        }
        // next_c = f ⊙ prev_c + i ⊙ g
        for j in 0..h {
            nc[j] = forget_gate[j] * pc[j] + in_gate[j] * cell_candidate[j];
        }
        if let Some(p) = step.peepholes {
            // o = σ(a_o + p_o ⊙ next_c)
            for j in 0..h {
                out_gate[j] += p.o[j] * nc[j];
            }
        }
        // next_h = o ⊙ tanh(next_c)
        for j in 0..h {
            out_gate[j] = sigmoid(out_gate[j]);
            nh[j] = out_gate[j] * tanh(nc[j]);
        }
    }
}

simd_dispatch!(
    /// Backward of one step over `nb` rows: the forward above, differentiated line by line in
    /// reverse.
    ///
    /// - `gates`, `prev_c`, `next_c`: the forward's cache for this step.
    /// - `d_next_h`: `(nb, H)`, gradient of the loss w.r.t. `next_h` (before projection).
    /// - `d_c`: `(nb, H)`; in: gradient w.r.t. `next_c` from later steps; out: w.r.t. `prev_c`.
    /// - `d_gates`: `(nb, 4H)` out: gradient w.r.t. the pre-activations `a_i, a_f, a_g, a_o`.
    /// - `d_peep`: `(3H)` accumulated gradient of `p_i, p_f, p_o` (peephole variant).
    pub fn backward_step(
        step: &LstmStep<'_>,
        nb: usize,
        gates: &[f32],
        prev_c: &[f32],
        next_c: &[f32],
        d_next_h: &[f32],
        d_c: &mut [f32],
        d_gates: &mut [f32],
        d_peep: Option<&mut [f32]>,
    ) => backward_impl
);

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_impl(
    step: &LstmStep<'_>,
    nb: usize,
    gates: &[f32],
    prev_c: &[f32],
    next_c: &[f32],
    d_next_h: &[f32],
    d_c: &mut [f32],
    d_gates: &mut [f32],
    mut d_peep: Option<&mut [f32]>,
) {
    let h = step.hidden;
    if step.peepholes.is_none() && !step.coupled {
        // the standard cell, without branches in the inner loop (vectorises cleanly)
        for b in 0..nb {
            let g = &gates[b * 4 * h..(b + 1) * 4 * h];
            let dg = &mut d_gates[b * 4 * h..(b + 1) * 4 * h];
            let (pc, nc) = (&prev_c[b * h..(b + 1) * h], &next_c[b * h..(b + 1) * h]);
            let dnh = &d_next_h[b * h..(b + 1) * h];
            let dc = &mut d_c[b * h..(b + 1) * h];
            let (gi, rest) = g.split_at(h);
            let (gf, rest) = rest.split_at(h);
            let (gg, go) = rest.split_at(h);
            let (dgi, rest) = dg.split_at_mut(h);
            let (dgf, rest) = rest.split_at_mut(h);
            let (dgg, dgo) = rest.split_at_mut(h);
            for j in 0..h {
                let (in_gate, forget_gate, cell_candidate, out_gate) = (gi[j], gf[j], gg[j], go[j]);
                let tanh_c = tanh(nc[j]);
                // next_h = o ⊙ tanh(next_c)
                let d_cell = dc[j] + dnh[j] * out_gate * (1.0 - tanh_c * tanh_c);
                dgo[j] = dnh[j] * tanh_c * out_gate * (1.0 - out_gate);
                // next_c = f ⊙ prev_c + i ⊙ g
                dgi[j] = d_cell * cell_candidate * in_gate * (1.0 - in_gate);
                dgf[j] = d_cell * pc[j] * forget_gate * (1.0 - forget_gate);
                dgg[j] = d_cell * in_gate * (1.0 - cell_candidate * cell_candidate);
                dc[j] = d_cell * forget_gate;
            }
        }
        return;
    }
    for b in 0..nb {
        let g = &gates[b * 4 * h..(b + 1) * 4 * h];
        let dg = &mut d_gates[b * 4 * h..(b + 1) * 4 * h];
        let pc = &prev_c[b * h..(b + 1) * h];
        let nc = &next_c[b * h..(b + 1) * h];
        let dnh = &d_next_h[b * h..(b + 1) * h];
        let dc = &mut d_c[b * h..(b + 1) * h];
        for j in 0..h {
            let (in_gate, forget_gate, cell_candidate, out_gate) =
                (g[j], g[h + j], g[2 * h + j], g[3 * h + j]);
            let tanh_c = tanh(nc[j]);
            // next_h = o ⊙ tanh(next_c)
            let d_out_gate = dnh[j] * tanh_c;
            let mut d_cell = dc[j] + dnh[j] * out_gate * (1.0 - tanh_c * tanh_c);
            // o = σ(a_o + p_o ⊙ next_c)
            let d_a_o = d_out_gate * out_gate * (1.0 - out_gate);
            if let Some(p) = step.peepholes {
                d_cell += d_a_o * p.o[j];
            }
            // next_c = f ⊙ prev_c + i ⊙ g
            let d_a_g = d_cell * in_gate * (1.0 - cell_candidate * cell_candidate);
            let (d_a_i, d_a_f) = if step.coupled {
                // i = 1 - f: f receives both paths.
                let d_forget = d_cell * (pc[j] - cell_candidate);
                (0.0, d_forget * forget_gate * (1.0 - forget_gate))
            } else {
                (
                    d_cell * cell_candidate * in_gate * (1.0 - in_gate),
                    d_cell * pc[j] * forget_gate * (1.0 - forget_gate),
                )
            };
            let mut d_prev_c = d_cell * forget_gate;
            if let Some(p) = step.peepholes {
                // i = σ(a_i + p_i ⊙ prev_c), f = σ(a_f + p_f ⊙ prev_c)
                d_prev_c += d_a_i * p.i[j] + d_a_f * p.f[j];
                if let Some(dp) = d_peep.as_deref_mut() {
                    dp[j] += d_a_i * pc[j];
                    dp[h + j] += d_a_f * pc[j];
                    dp[2 * h + j] += d_a_o * nc[j];
                }
            }
            dg[j] = d_a_i;
            dg[h + j] = d_a_f;
            dg[2 * h + j] = d_a_g;
            dg[3 * h + j] = d_a_o;
            dc[j] = d_prev_c;
        }
    }
}
