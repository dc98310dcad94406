//! Optimizers with PyTorch's exact update rules, over flat parameter and gradient slices.
//!
//! ```
//! use lstm::optim::{Optimizer, OptimizerConfig};
//! let mut p = vec![1.0f32];
//! let g = vec![0.5f32];
//! let mut opt = Optimizer::new(OptimizerConfig::Sgd { lr: 0.1, momentum: 0.0, weight_decay: 0.0, nesterov: false }, 1);
//! opt.step(&mut p, &g);
//! assert!((p[0] - 0.95).abs() < 1e-7);
//! ```

use serde::{Deserialize, Serialize};

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
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        self.step += 1;
        let scale = self.lr_scale;
        match self.config {
            OptimizerConfig::Sgd {
                lr,
                momentum,
                weight_decay,
                nesterov,
            } => {
                let lr = lr * scale;
                let first = self.step == 1;
                for ((p, &g0), buf) in params.iter_mut().zip(grads).zip(&mut self.m) {
                    let mut g = g0;
                    if weight_decay != 0.0 {
                        g += weight_decay * *p;
                    }
                    if momentum != 0.0 {
                        // torch: buf = g on the first step, else momentum * buf + g
                        *buf = if first { g } else { momentum * *buf + g };
                        g = if nesterov { g + momentum * *buf } else { *buf };
                    }
                    *p -= lr * g;
                }
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
                let decoupled = matches!(self.config, OptimizerConfig::AdamW { .. });
                let t = self.step as i32;
                let bias_correction1 = 1.0 - beta1.powi(t);
                let bias_correction2 = 1.0 - beta2.powi(t);
                let step_size = lr / bias_correction1;
                let bc2_sqrt = bias_correction2.sqrt();
                for (((p, &g0), m), v) in params
                    .iter_mut()
                    .zip(grads)
                    .zip(&mut self.m)
                    .zip(&mut self.v)
                {
                    let mut g = g0;
                    if decoupled {
                        *p *= 1.0 - lr * weight_decay;
                    } else if weight_decay != 0.0 {
                        g += weight_decay * *p;
                    }
                    // torch: exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
                    *m += (g - *m) * (1.0 - beta1);
                    *v = *v * beta2 + (1.0 - beta2) * g * g;
                    let denom = v.sqrt() / bc2_sqrt + eps;
                    *p -= step_size * (*m / denom);
                }
            }
        }
    }
}

/// Scales `grads` so their global L2 norm is at most `max_norm`
/// (`torch.nn.utils.clip_grad_norm_`); returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [f32], max_norm: f32) -> f32 {
    let total = grads
        .iter()
        .map(|&g| (g as f64) * (g as f64))
        .sum::<f64>()
        .sqrt() as f32;
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
