//! Optimizers with PyTorch's exact update rules, over flat parameter and gradient slices.
//!
//! ```
//! use lstm::model::optim::{Optimizer, OptimizerConfig};
//! let mut p = vec![1.0f32];
//! let g = vec![0.5f32];
//! let mut opt = Optimizer::new(OptimizerConfig::Sgd { lr: 0.1, momentum: 0.0, weight_decay: 0.0, nesterov: false }, 1);
//! opt.step(&mut p, &g);
//! assert!((p[0] - 0.95).abs() < 1e-7);
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which optimizer and its hyperparameters (PyTorch's names and defaults).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// `torch.optim.SGD` (dampening 0).
    Sgd {
        /// Learning rate.
        lr: f32,
        /// Momentum factor (0 = plain SGD).
        momentum: f32,
        /// L2 penalty added to the gradient.
        weight_decay: f32,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// `torch.optim.Adam` (weight decay added to the gradient).
    Adam {
        /// Learning rate.
        lr: f32,
        /// `beta1`.
        beta1: f32,
        /// `beta2`.
        beta2: f32,
        /// Term added to the denominator.
        eps: f32,
        /// L2 penalty added to the gradient.
        weight_decay: f32,
    },
    /// `torch.optim.AdamW` (decoupled weight decay).
    AdamW {
        /// Learning rate.
        lr: f32,
        /// `beta1`.
        beta1: f32,
        /// `beta2`.
        beta2: f32,
        /// Term added to the denominator.
        eps: f32,
        /// Decoupled weight decay (PyTorch default 0.01).
        weight_decay: f32,
    },
}

impl OptimizerConfig {
    /// Adam with PyTorch's defaults and the given learning rate.
    pub fn adam(lr: f32) -> Self {
        OptimizerConfig::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// Checks the hyperparameters as PyTorch's optimizers do, a little more strictly, and that
    /// they are finite: a learning rate and `eps` above 0 (PyTorch takes 0: a rate of 0 trains
    /// nothing, and an `eps` of 0 divides 0 by 0 for a parameter whose gradient is 0), momentum
    /// and weight decay at or above 0, betas in [0, 1), Nesterov momentum with a momentum above
    /// 0. Out of range, a step would put NaN or infinity into every weight.
    ///
    /// # Errors
    /// [`Error::Config`] naming the value.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f32| Err(Error::Config(format!("{what}, got {v}")));
        let lr = self.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return bad("learning rate must be positive", lr);
        }
        let at_least_0 = |name: &str, v: f32| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                bad(&format!("{name} must be a finite number >= 0"), v)
            }
        };
        match *self {
            OptimizerConfig::Sgd {
                momentum,
                weight_decay,
                nesterov,
                ..
            } => {
                at_least_0("momentum", momentum)?;
                at_least_0("weight decay", weight_decay)?;
                if nesterov && momentum == 0.0 {
                    return bad("Nesterov momentum needs a momentum above 0", momentum);
                }
            }
            OptimizerConfig::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            }
            | OptimizerConfig::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            } => {
                for (name, b) in [("beta1", beta1), ("beta2", beta2)] {
                    if !(0.0..1.0).contains(&b) {
                        return bad(&format!("{name} must be in [0, 1)"), b);
                    }
                }
                if !(eps.is_finite() && eps > 0.0) {
                    return bad("eps must be a finite number above 0", eps);
                }
                at_least_0("weight decay", weight_decay)?;
            }
        }
        Ok(())
    }

    /// The learning rate.
    pub fn lr(&self) -> f32 {
        match *self {
            OptimizerConfig::Sgd { lr, .. }
            | OptimizerConfig::Adam { lr, .. }
            | OptimizerConfig::AdamW { lr, .. } => lr,
        }
    }
}

/// An optimizer with its state (moments) in flat buffers matching the parameters.
#[derive(Clone, Debug)]
pub struct Optimizer {
    /// Hyperparameters.
    pub config: OptimizerConfig,
    /// Steps taken so far.
    pub step: u64,
    /// First moment (Adam) or momentum buffer (SGD).
    pub m: Vec<f32>,
    /// Second moment (Adam).
    pub v: Vec<f32>,
    /// Multiplier of the learning rate for the next step (a schedule sets it; 1 = as
    /// configured).
    pub lr_scale: f32,
}

impl Optimizer {
    /// A fresh optimizer for `n` parameters.
    pub fn new(config: OptimizerConfig, n: usize) -> Self {
        let v = match config {
            OptimizerConfig::Sgd { .. } => 0,
            _ => n,
        };
        Optimizer {
            config,
            step: 0,
            m: vec![0.0; n],
            v: vec![0.0; v],
            lr_scale: 1.0,
        }
    }

    /// One update of `params` from `grads` (same length as when created).
    ///
    /// Every element is updated by itself, in blocks spread over the library's threads and
    /// vectorised; the results do not depend on either.
    ///
    /// # Panics
    /// If `params` or `grads` is not the length the optimizer was created for (an optimizer
    /// of another model).
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        let n = self.m.len().max(self.v.len());
        assert!(
            params.len() == grads.len() && (n == 0 || params.len() == n),
            "an optimizer for {n} parameters stepped with {} parameters and {} gradients",
            params.len(),
            grads.len()
        );
        self.step += 1;
        let scale = self.lr_scale;
        match self.config {
            OptimizerConfig::Sgd {
                lr,
                momentum,
                weight_decay,
                nesterov,
            } => {
                let k = SgdStep {
                    lr: lr * scale,
                    momentum,
                    weight_decay,
                    nesterov,
                    first: self.step == 1,
                };
                for_blocks(params, grads, &mut self.m, &mut [], &|p, g, m, _| {
                    sgd_block(p, g, m, &k)
                });
            }
            OptimizerConfig::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            }
            | OptimizerConfig::AdamW {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let lr = lr * scale;
                let t = self.step as i32;
                let bias_correction1 = 1.0 - beta1.powi(t);
                let bias_correction2 = 1.0 - beta2.powi(t);
                let k = AdamStep {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    decoupled: matches!(self.config, OptimizerConfig::AdamW { .. }),
                    step_size: lr / bias_correction1,
                    bc2_sqrt: bias_correction2.sqrt(),
                };
                for_blocks(params, grads, &mut self.m, &mut self.v, &|p, g, m, v| {
                    adam_block(p, g, m, v, &k)
                });
            }
        }
    }
}

use crate::kernels::{parallel_blocks, PAR_BLOCK as BLOCK};

/// An update of one block of (parameters, gradients, first moment, second moment).
type BlockUpdate<'a> = dyn Fn(&mut [f32], &[f32], &mut [f32], &mut [f32]) + Sync + 'a;

/// Runs `f` on matching blocks of the four buffers (`v` empty: empty blocks), in parallel when
/// there are several blocks and threads.
fn for_blocks(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    f: &BlockUpdate<'_>,
) {
    use rayon::prelude::*;
    let n = params.len();
    let (grads, m) = (&grads[..n], &mut m[..n]);
    if !parallel_blocks(n, BLOCK) {
        f(params, grads, m, v);
        return;
    }
    let blocks = params
        .par_chunks_mut(BLOCK)
        .zip(grads.par_chunks(BLOCK))
        .zip(m.par_chunks_mut(BLOCK));
    if v.is_empty() {
        blocks.for_each(|((p, g), m)| f(p, g, m, &mut []));
    } else {
        blocks
            .zip(v[..n].par_chunks_mut(BLOCK))
            .for_each(|(((p, g), m), v)| f(p, g, m, v));
    }
}

/// The constants of one SGD update.
struct SgdStep {
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    nesterov: bool,
    first: bool,
}

#[inline(always)]
fn sgd_imp(params: &mut [f32], grads: &[f32], m: &mut [f32], k: &SgdStep) {
    for ((p, &g0), buf) in params.iter_mut().zip(grads).zip(m) {
        let mut g = g0;
        if k.weight_decay != 0.0 {
            g += k.weight_decay * *p;
        }
        if k.momentum != 0.0 {
            // torch: buf = g on the first step, else momentum * buf + g
            *buf = if k.first { g } else { k.momentum * *buf + g };
            g = if k.nesterov {
                g + k.momentum * *buf
            } else {
                *buf
            };
        }
        *p -= k.lr * g;
    }
}

crate::simd_dispatch!(
    /// One SGD update of a block.
    fn sgd_block(params: &mut [f32], grads: &[f32], m: &mut [f32], k: &SgdStep) => sgd_imp
);

/// The constants of one Adam or AdamW update.
struct AdamStep {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    decoupled: bool,
    step_size: f32,
    bc2_sqrt: f32,
}

#[inline(always)]
fn adam_imp(params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32], k: &AdamStep) {
    for (((p, &g0), m), v) in params.iter_mut().zip(grads).zip(m).zip(v) {
        let mut g = g0;
        if k.decoupled {
            *p *= 1.0 - k.lr * k.weight_decay;
        } else if k.weight_decay != 0.0 {
            g += k.weight_decay * *p;
        }
        // torch: exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
        *m += (g - *m) * (1.0 - k.beta1);
        *v = *v * k.beta2 + (1.0 - k.beta2) * g * g;
        let denom = v.sqrt() / k.bc2_sqrt + k.eps;
        *p -= k.step_size * (*m / denom);
    }
}

crate::simd_dispatch!(
    /// One Adam/AdamW update of a block.
    fn adam_block(
        params: &mut [f32],
        grads: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        k: &AdamStep,
    ) => adam_imp
);

#[inline(always)]
fn sum_squares_imp(x: &[f32], out: &mut f64) {
    // eight running sums (vectorised) instead of one dependent chain
    let mut acc = [0.0f64; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i] as f64 * c[i] as f64;
        }
    }
    for (i, &r) in rest.iter().enumerate() {
        acc[i] += r as f64 * r as f64;
    }
    *out = acc.iter().sum();
}

crate::simd_dispatch!(
    /// `Σ x²` in `f64`.
    fn sum_squares(x: &[f32], out: &mut f64) => sum_squares_imp
);

/// The global L2 norm of `grads` (summed in `f64` in fixed blocks, spread over the library's
/// threads; the result does not depend on their number).
pub fn grad_norm(grads: &[f32]) -> f32 {
    use rayon::prelude::*;
    let block = |b: &[f32]| {
        let mut s = 0.0;
        sum_squares(b, &mut s);
        s
    };
    let sums: Vec<f64> = if parallel_blocks(grads.len(), BLOCK) {
        grads.par_chunks(BLOCK).map(block).collect()
    } else {
        grads.chunks(BLOCK).map(block).collect()
    };
    sums.iter().sum::<f64>().sqrt() as f32
}

/// Scales `grads` so their global L2 norm is at most `max_norm`
/// (`torch.nn.utils.clip_grad_norm_`); returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [f32], max_norm: f32) -> f32 {
    let total = grad_norm(grads);
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            *g *= coef;
        }
    }
    total
}

/// Clamps every gradient into `[-clip, clip]` (`torch.nn.utils.clip_grad_value_`).
pub fn clip_grad_value(grads: &mut [f32], clip: f32) {
    for g in grads.iter_mut() {
        *g = g.clamp(-clip, clip);
    }
}
