//! # lstm
//!
//! LSTM networks (standard, peephole, coupled), GRU and plain RNN layers, trained by
//! hand-written backpropagation through time, exact against PyTorch and fast on CPUs.
//!
//! The folders are the layers, lowest first; each imports only those before it (a test checks):
//! - [`kernels`]: the GEMM entry point over the `gemm` crate, the packed per-step kernel, GEMV
//!   and bf16, transposes, activations, the naive reference, the thread budget;
//! - [`params`]: flat parameter and gradient buffers with named views, and initialisation;
//! - [`cell`]: each cell's step, forward and backward side by side (LSTM, GRU, RNN);
//! - [`recurrent`]: stacks of layers (directions, projection, variable lengths, dropout), the
//!   `torch.nn.LSTM` equivalent: [`Recurrent::forward`] on a [`SequenceBatch`];
//! - [`model`]: a whole trainable [`SequenceModel`] (embedding or one-hot input, stack, dense
//!   head), its losses and optimizers, and batch-1 generation;
//! - [`data`]: vocabularies, delimited files, readers of text, series and labelled texts;
//! - [`io`]: safetensors checkpoints, PyTorch and Keras weights, ONNX (features `keras`, `onnx`);
//! - [`tasks`]: the text, forecast and classify jobs behind one interface ([`Job`],
//!   [`tasks::job::evaluate`], [`tasks::job::generate`], ...), their [`Settings`], the training
//!   loop and model directories;
//! - [`explain`] and [`pages`]: activations, unit rankings and gate saturation, and the HTML
//!   pages and plots that show them (plots with the feature `plots`);
//! - `experiment` (feature `plots`) and [`bench`](mod@bench): the long-term dependency experiments and the
//!   `lstm bench` configurations.
//!
//! Cargo features, all off by default and all on in the binary: `plots` (plotters and its
//! font), `onnx` (prost), `keras` (hdf5-pure). The layers, models, jobs and checkpoints need none.
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

pub use cell::Mode;
pub use error::{Error, Result};
pub use kernels::set_num_threads;
pub use model::optim::OptimizerConfig;
pub use model::{Batch, Head, InputKind, Inputs, ModelConfig, SequenceModel, Targets};
pub use params::ParamStore;
pub use recurrent::{
    Input, Recurrent, RecurrentCache, RecurrentConfig, RecurrentState, SequenceBatch,
};
pub use tasks::job::Job;
pub use tasks::modeldir::{load, Loaded};
pub use tasks::settings::{Settings, Task};

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
