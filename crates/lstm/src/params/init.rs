//! Weight initialisation: Xavier/Glorot, orthogonal, PyTorch's uniform.
//!
//! ```
//! use rand::SeedableRng;
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let mut w = vec![0.0; 16];
//! lstm::params::init::orthogonal(&mut w, 4, 4, &mut rng);
//! // rows are orthonormal
//! let dot: f32 = (0..4).map(|j| w[j] * w[4 + j]).sum();
//! assert!(dot.abs() < 1e-5);
//! ```

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How the recurrent layers are initialised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitScheme {
    /// Xavier/Glorot uniform for input weights, orthogonal for recurrent weights (per gate
    /// block), zero biases except the forget gate's (see `forget_bias`). Keras' default.
    #[default]
    XavierOrthogonal,
    /// PyTorch's default: every parameter `U(-1/sqrt(H), 1/sqrt(H))`.
    PytorchUniform,
}

/// Fills `w` with `U(-a, a)`.
pub fn uniform(w: &mut [f32], a: f32, rng: &mut ChaCha8Rng) {
    for x in w {
        *x = rng.gen_range(-a..=a);
    }
}

/// Xavier/Glorot uniform for a `(rows, cols)` matrix: `U(±sqrt(6 / (rows + cols)))`.
pub fn xavier_uniform(w: &mut [f32], rows: usize, cols: usize, rng: &mut ChaCha8Rng) {
    let a = (6.0 / (rows + cols) as f64).sqrt() as f32;
    uniform(&mut w[..rows * cols], a, rng);
}

/// A standard normal sample (Box-Muller).
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Orthogonal initialisation of a `(rows, cols)` matrix: a Gaussian matrix orthonormalised by
/// modified Gram-Schmidt along its longer side (rows orthonormal if `rows <= cols`, else columns).
pub fn orthogonal(w: &mut [f32], rows: usize, cols: usize, rng: &mut ChaCha8Rng) {
    // Work on the transposed problem when there are more rows than columns.
    let (n, m) = if rows <= cols {
        (rows, cols)
    } else {
        (cols, rows)
    };
    // n vectors of length m.
    let mut v: Vec<f64> = (0..n * m).map(|_| normal(rng)).collect();
    for i in 0..n {
        for j in 0..i {
            let dot: f64 = (0..m).map(|k| v[i * m + k] * v[j * m + k]).sum();
            for k in 0..m {
                v[i * m + k] -= dot * v[j * m + k];
            }
        }
        let norm: f64 = (0..m).map(|k| v[i * m + k].powi(2)).sum::<f64>().sqrt();
        let norm = if norm > 1e-12 { norm } else { 1.0 };
        for k in 0..m {
            v[i * m + k] /= norm;
        }
    }
    for r in 0..rows {
        for c in 0..cols {
            w[r * cols + c] = if rows <= cols {
                v[r * m + c]
            } else {
                v[c * m + r]
            } as f32;
        }
    }
}
