//! The GRU cell with PyTorch's equations: forward step, cache and backward step side by side.
//!
//! ```text
//! reset_gate   r = σ(x_r + h_r)                 x_* = W_i* x + b_i*,  h_* = W_h* h_prev + b_h*
//! update_gate  z = σ(x_z + h_z)
//! new_gate     n = tanh(x_n + r ⊙ h_n)           (reset applied after the recurrent product)
//! next_h         = (1 - z) ⊙ n + z ⊙ h_prev
//! ```
//! The cache of one step is `r, z, n` (overwriting `x_*`) and `h_n`.
//!
//! ```
//! use lstm::cell::gru::forward_step;
//! let mut x = [0.0, 0.0, 0.0];
//! let (mut hn, mut next_h) = ([0.0], [0.0]);
//! forward_step(1, 1, &mut x, &[0.0, 0.0, 0.0], &mut hn, &[2.0], &mut next_h);
//! assert!((next_h[0] - 1.0).abs() < 1e-6); // z = 0.5, n = 0: half of h_prev = 2
//! ```

use crate::kernels::activation::{sigmoid, tanh};

/// Forward of one step over `nb` rows.
///
/// - `gates_x`: `(nb, 3H)`; in: `W_ih x + b_ih`; out: activations `r, z, n` (cache).
/// - `gates_h`: `(nb, 3H)`: `W_hh h_prev + b_hh`.
/// - `h_n`: `(nb, H)` out: the `n` block of `gates_h` (cache).
/// - `prev_h`: `(nb, H)`; `next_h`: `(nb, H)` out.
pub fn forward_step(
    nb: usize,
    hidden: usize,
    gates_x: &mut [f32],
    gates_h: &[f32],
    h_n: &mut [f32],
    prev_h: &[f32],
    next_h: &mut [f32],
) {
    let h = hidden;
    for b in 0..nb {
        let gx = &mut gates_x[b * 3 * h..(b + 1) * 3 * h];
        let gh = &gates_h[b * 3 * h..(b + 1) * 3 * h];
        for j in 0..h {
            let reset_gate = sigmoid(gx[j] + gh[j]);
            let update_gate = sigmoid(gx[h + j] + gh[h + j]);
            let hn = gh[2 * h + j];
            let new_gate = tanh(gx[2 * h + j] + reset_gate * hn);
            gx[j] = reset_gate;
            gx[h + j] = update_gate;
            gx[2 * h + j] = new_gate;
            h_n[b * h + j] = hn;
            next_h[b * h + j] = (1.0 - update_gate) * new_gate + update_gate * prev_h[b * h + j];
        }
    }
}

/// Backward of one step over `nb` rows.
///
/// - `gates`, `h_n`, `prev_h`: the forward's cache.
/// - `d_next_h`: `(nb, H)` gradient w.r.t. `next_h`.
/// - `d_gates_x`: `(nb, 3H)` out: gradient w.r.t. `x_r, x_z, x_n`.
/// - `d_gates_h`: `(nb, 3H)` out: gradient w.r.t. `h_r, h_z, h_n`.
/// - `d_prev_h`: `(nb, H)` out: the direct part `z ⊙ d_next_h` (the caller adds the
///   recurrent product's part).
#[allow(clippy::too_many_arguments)]
pub fn backward_step(
    nb: usize,
    hidden: usize,
    gates: &[f32],
    h_n: &[f32],
    prev_h: &[f32],
    d_next_h: &[f32],
    d_gates_x: &mut [f32],
    d_gates_h: &mut [f32],
    d_prev_h: &mut [f32],
) {
    let h = hidden;
    for b in 0..nb {
        let g = &gates[b * 3 * h..(b + 1) * 3 * h];
        let dgx = &mut d_gates_x[b * 3 * h..(b + 1) * 3 * h];
        let dgh = &mut d_gates_h[b * 3 * h..(b + 1) * 3 * h];
        for j in 0..h {
            let (reset_gate, update_gate, new_gate) = (g[j], g[h + j], g[2 * h + j]);
            let dh = d_next_h[b * h + j];
            // next_h = (1 - z) n + z h_prev
            let d_new = dh * (1.0 - update_gate);
            let d_update = dh * (prev_h[b * h + j] - new_gate);
            d_prev_h[b * h + j] = dh * update_gate;
            // n = tanh(x_n + r h_n)
            let d_a_n = d_new * (1.0 - new_gate * new_gate);
            let d_reset = d_a_n * h_n[b * h + j];
            let d_a_r = d_reset * reset_gate * (1.0 - reset_gate);
            let d_a_z = d_update * update_gate * (1.0 - update_gate);
            dgx[j] = d_a_r;
            dgx[h + j] = d_a_z;
            dgx[2 * h + j] = d_a_n;
            dgh[j] = d_a_r;
            dgh[h + j] = d_a_z;
            dgh[2 * h + j] = d_a_n * reset_gate;
        }
    }
}
