//! # lstm
//!
//! LSTM networks (standard, peephole, coupled), GRU and plain RNN layers, trained by
//! hand-written backpropagation through time, exact against PyTorch and fast on CPUs.
//!
//! The parts:
//! - [`cell`]: the per-step element-wise math of each cell, forward and backward side by side;
//! - [`recurrent`]: stacks of layers (directions, projection, variable lengths, dropout);
//! - [`model`]: embeddings, one-hot input, dense head, losses, a whole trainable model;
//! - [`optim`]: SGD, Adam, AdamW and gradient clipping with PyTorch's semantics;
//! - [`linalg`]: the GEMM entry point and its naive reference;
//! - [`params`]: flat parameter and gradient buffers with named views;
//! - [`checkpoint`]: safetensors in and out;
//! - [`explain`] and [`html`]: activations, unit rankings and gate saturation of a trained
//!   model, and the pages that show them.
//! - [`experiment`]: the long-term dependency experiments and the variant comparison.
//!
//! ```
//! use lstm::model::{Head, ModelConfig, InputKind, SequenceModel};
//! let cfg = ModelConfig {
//!     input: InputKind::OneHot { vocab: 5 },
//!     hidden_size: 8,
//!     head: Head::PerStep { outputs: 5 },
//!     ..Default::default()
//! };
//! let mut model = SequenceModel::new(&cfg, 0).unwrap();
//! let tokens = vec![1u32, 2, 3, 4]; // (B=1, T=4)
//! let targets = vec![2u32, 3, 4, 0];
//! let loss = model.train_step_text(&tokens, &targets, 1, 4).unwrap();
//! assert!(loss > 0.0);
//! ```
#![warn(missing_docs)]
// Index loops over (time, row) are the clearest way to write the layout arithmetic here.
#![allow(clippy::needless_range_loop)]

pub mod bench;
pub mod cell;
pub mod data;
pub mod error;
#[cfg(feature = "plots")]
pub mod experiment;
pub mod explain;
pub mod io;
pub mod kernels;
pub mod model;
pub mod pages;
pub mod params;
pub mod recurrent;
pub mod tasks;

pub use error::{Error, Result};

/// Switches for this crate's own tests, examples and benchmarks (which kernel, which schedule):
/// not part of the API, and they may change or go without notice.
#[doc(hidden)]
pub mod testing {
    // the step kernel's versions, for `examples/stepkernel.rs` (its tests are in `kernels/`)
    pub use crate::kernels::stepkernel::{
        gemm_packed, pack_panels, with_packed_kernel, PackedKernel,
    };
    // the recurrent layer's paths, for the conformance, gradient-check and lane tests
    pub use crate::recurrent::backward::with_transposed_min_gates;
    pub use crate::recurrent::schedule::with_lanes;
    pub use crate::recurrent::units::with_team_min_weights;
}
