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

use crate::kernels::activation::{sigmoid, tanh};
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

/// Forward of one step over `nb` rows.
///
/// - `gates`: `(nb, 4H)`; in: pre-activations; out: activations `i, f, g, o` (the cache).
/// - `prev_c`: `(nb, H)`; `next_c`: `(nb, H)` out; `next_h`: `(nb, H)` out, `o ⊙ tanh(next_c)`.
///
/// The standard cell (no peepholes, not coupled) runs as one fused AVX-512 pass when the CPU
/// has it; the variants, and other CPUs, run the portable passes below.
///
/// # Panics
/// If a buffer is shorter than its shape above.
pub fn forward_step(
    step: &LstmStep<'_>,
    nb: usize,
    gates: &mut [f32],
    prev_c: &[f32],
    next_c: &mut [f32],
    next_h: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if fused_avx512(step) {
        let h = step.hidden;
        assert!(gates.len() >= nb * 4 * h, "forward_step: gates too short");
        assert!(prev_c.len() >= nb * h && next_c.len() >= nb * h && next_h.len() >= nb * h);
        // SAFETY: the CPU has AVX-512F; the asserts cover every element read or written.
        unsafe { forward_avx512(h, nb, gates, prev_c, next_c, next_h) };
        return;
    }
    forward_portable(step, nb, gates, prev_c, next_c, next_h);
}

simd_dispatch!(
    /// [`forward_step`] for any cell, in passes the compiler vectorises.
    fn forward_portable(
        step: &LstmStep<'_>,
        nb: usize,
        gates: &mut [f32],
        prev_c: &[f32],
        next_c: &mut [f32],
        next_h: &mut [f32],
    ) => forward_impl
);

/// Whether the step runs as one fused AVX-512 pass: the standard cell (no peepholes, not
/// coupled) on a CPU with AVX-512F.
#[cfg(target_arch = "x86_64")]
fn fused_avx512(step: &LstmStep<'_>) -> bool {
    step.peepholes.is_none() && !step.coupled && std::is_x86_feature_detected!("avx512f")
}

/// Lanes `j..j + 16` of a row (fewer at its end): the mask of the ones inside `h`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn lanes(h: usize, j: usize) -> u16 {
    if h - j >= 16 {
        0xffff
    } else {
        ((1u32 << (h - j)) - 1) as u16
    }
}

/// The standard cell's forward in one pass: 16 units of all four gates at a time, from the
/// pre-activations to the cache, the cell and the hidden output.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn forward_avx512(
    h: usize,
    nb: usize,
    gates: &mut [f32],
    prev_c: &[f32],
    next_c: &mut [f32],
    next_h: &mut [f32],
) {
    use crate::kernels::activation::avx512::{sigmoid, tanh};
    use std::arch::x86_64::*;
    for b in 0..nb {
        let g = gates.as_mut_ptr().add(b * 4 * h);
        let pc = prev_c.as_ptr().add(b * h);
        let (nc, nh) = (
            next_c.as_mut_ptr().add(b * h),
            next_h.as_mut_ptr().add(b * h),
        );
        let mut j = 0;
        while j < h {
            let m = lanes(h, j);
            let in_gate = sigmoid(_mm512_maskz_loadu_ps(m, g.add(j)));
            let forget_gate = sigmoid(_mm512_maskz_loadu_ps(m, g.add(h + j)));
            let cell_candidate = tanh(_mm512_maskz_loadu_ps(m, g.add(2 * h + j)));
            let out_gate = sigmoid(_mm512_maskz_loadu_ps(m, g.add(3 * h + j)));
            // next_c = f ⊙ prev_c + i ⊙ g; next_h = o ⊙ tanh(next_c)
            let c = _mm512_fmadd_ps(
                forget_gate,
                _mm512_maskz_loadu_ps(m, pc.add(j)),
                _mm512_mul_ps(in_gate, cell_candidate),
            );
            _mm512_mask_storeu_ps(g.add(j), m, in_gate);
            _mm512_mask_storeu_ps(g.add(h + j), m, forget_gate);
            _mm512_mask_storeu_ps(g.add(2 * h + j), m, cell_candidate);
            _mm512_mask_storeu_ps(g.add(3 * h + j), m, out_gate);
            _mm512_mask_storeu_ps(nc.add(j), m, c);
            _mm512_mask_storeu_ps(nh.add(j), m, _mm512_mul_ps(out_gate, tanh(c)));
            j += 16;
        }
    }
}

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

/// Backward of one step over `nb` rows: the forward above, differentiated line by line in
/// reverse.
///
/// - `gates`, `prev_c`, `next_c`: the forward's cache for this step.
/// - `d_next_h`: `(nb, H)`, gradient of the loss w.r.t. `next_h` (before projection).
/// - `d_c`: `(nb, H)`; in: gradient w.r.t. `next_c` from later steps; out: w.r.t. `prev_c`.
/// - `d_gates`: `(nb, 4H)` out: gradient w.r.t. the pre-activations `a_i, a_f, a_g, a_o`.
/// - `d_peep`: `(3H)` accumulated gradient of `p_i, p_f, p_o` (peephole variant).
///
/// Like [`forward_step`], the standard cell runs as one fused AVX-512 pass when it can.
///
/// # Panics
/// If a buffer is shorter than its shape above.
#[allow(clippy::too_many_arguments)]
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
) {
    #[cfg(target_arch = "x86_64")]
    if fused_avx512(step) {
        let h = step.hidden;
        assert!(gates.len() >= nb * 4 * h && d_gates.len() >= nb * 4 * h);
        assert!(prev_c.len() >= nb * h && next_c.len() >= nb * h);
        assert!(d_next_h.len() >= nb * h && d_c.len() >= nb * h);
        // SAFETY: the CPU has AVX-512F; the asserts cover every element read or written.
        unsafe { backward_avx512(h, nb, gates, prev_c, next_c, d_next_h, d_c, d_gates) };
        return;
    }
    backward_portable(
        step, nb, gates, prev_c, next_c, d_next_h, d_c, d_gates, d_peep,
    );
}

/// The standard cell's backward in one pass, 16 units of all four gates at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn backward_avx512(
    h: usize,
    nb: usize,
    gates: &[f32],
    prev_c: &[f32],
    next_c: &[f32],
    d_next_h: &[f32],
    d_c: &mut [f32],
    d_gates: &mut [f32],
) {
    use crate::kernels::activation::avx512::tanh;
    use std::arch::x86_64::*;
    let one = _mm512_set1_ps(1.0);
    for b in 0..nb {
        let g = gates.as_ptr().add(b * 4 * h);
        let dg = d_gates.as_mut_ptr().add(b * 4 * h);
        let (pc, nc) = (prev_c.as_ptr().add(b * h), next_c.as_ptr().add(b * h));
        let (dnh, dc) = (d_next_h.as_ptr().add(b * h), d_c.as_mut_ptr().add(b * h));
        let mut j = 0;
        while j < h {
            let m = lanes(h, j);
            let in_gate = _mm512_maskz_loadu_ps(m, g.add(j));
            let forget_gate = _mm512_maskz_loadu_ps(m, g.add(h + j));
            let cell_candidate = _mm512_maskz_loadu_ps(m, g.add(2 * h + j));
            let out_gate = _mm512_maskz_loadu_ps(m, g.add(3 * h + j));
            let d_h = _mm512_maskz_loadu_ps(m, dnh.add(j));
            let tanh_c = tanh(_mm512_maskz_loadu_ps(m, nc.add(j)));
            // next_h = o ⊙ tanh(next_c)
            let d_cell = _mm512_fmadd_ps(
                _mm512_mul_ps(d_h, out_gate),
                _mm512_fnmadd_ps(tanh_c, tanh_c, one),
                _mm512_maskz_loadu_ps(m, dc.add(j)),
            );
            let d_o = _mm512_mul_ps(
                _mm512_mul_ps(d_h, tanh_c),
                _mm512_mul_ps(out_gate, _mm512_sub_ps(one, out_gate)),
            );
            // next_c = f ⊙ prev_c + i ⊙ g
            let d_i = _mm512_mul_ps(
                _mm512_mul_ps(d_cell, cell_candidate),
                _mm512_mul_ps(in_gate, _mm512_sub_ps(one, in_gate)),
            );
            let d_f = _mm512_mul_ps(
                _mm512_mul_ps(d_cell, _mm512_maskz_loadu_ps(m, pc.add(j))),
                _mm512_mul_ps(forget_gate, _mm512_sub_ps(one, forget_gate)),
            );
            let d_g = _mm512_mul_ps(
                _mm512_mul_ps(d_cell, in_gate),
                _mm512_fnmadd_ps(cell_candidate, cell_candidate, one),
            );
            _mm512_mask_storeu_ps(dg.add(j), m, d_i);
            _mm512_mask_storeu_ps(dg.add(h + j), m, d_f);
            _mm512_mask_storeu_ps(dg.add(2 * h + j), m, d_g);
            _mm512_mask_storeu_ps(dg.add(3 * h + j), m, d_o);
            _mm512_mask_storeu_ps(dc.add(j), m, _mm512_mul_ps(d_cell, forget_gate));
            j += 16;
        }
    }
}

simd_dispatch!(
    /// [`backward_step`] for any cell, in passes the compiler vectorises.
    fn backward_portable(
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
