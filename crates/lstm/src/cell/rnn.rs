//! The Elman RNN cell: `next_h = act(W_ih x + b_ih + W_hh h_prev + b_hh)`, act = tanh or ReLU.
//!
//! The cache of one step is `next_h` itself (the derivative of both activations is a function
//! of their output).
//!
//! ```
//! let mut a = [-1.0, 2.0];
//! let mut h = [0.0; 2];
//! lstm::cell::rnn::forward_step(true, 2, &mut a, &mut h);
//! assert_eq!(h, [0.0, 2.0]);
//! ```

/// Forward over `n` values: `pre` holds pre-activations; writes `next_h`, and the
/// activations back into `pre` (the cache).
pub fn forward_step(relu: bool, n: usize, pre: &mut [f32], next_h: &mut [f32]) {
    for (a, h) in pre[..n].iter_mut().zip(&mut next_h[..n]) {
        *a = if relu { a.max(0.0) } else { a.tanh() };
        *h = *a;
    }
}

/// Backward over `n` values: `d_pre = d_next_h ⊙ act'(·)`, computed from the cached output.
pub fn backward_step(relu: bool, n: usize, out: &[f32], d_next_h: &[f32], d_pre: &mut [f32]) {
    for ((d, &y), &dh) in d_pre[..n].iter_mut().zip(&out[..n]).zip(&d_next_h[..n]) {
        *d = if relu {
            if y > 0.0 {
                dh
            } else {
                0.0
            }
        } else {
            dh * (1.0 - y * y)
        };
    }
}
