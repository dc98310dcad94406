//! The recurrent cells: the element-wise part of one time step, forward and backward.
//!
//! Every cell here works on the *active rows* of one time step: `nb` rows of a batch, with the
//! matrix products (input projection, recurrent product, projection) done by the layer driver in
//! [`crate::recurrent`]. A cell's forward writes what its backward needs into buffers the caller
//! owns; its backward reads them and writes the gradient of the pre-activations.
//!
//! Layout (PyTorch's): gate blocks of `H` columns side by side in one row of `G·H`,
//! LSTM `i, f, g, o`; GRU `r, z, n`; RNN a single block.

pub mod gru;
pub mod lstm;
pub mod rnn;

use serde::{Deserialize, Serialize};

/// Which recurrent cell a layer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Long short-term memory (gates i, f, g, o).
    Lstm,
    /// Gated recurrent unit, PyTorch's equations (gates r, z, n).
    Gru,
    /// Elman RNN with tanh.
    #[serde(alias = "rnn", alias = "rnn-tanh")]
    RnnTanh,
    /// Elman RNN with ReLU.
    #[serde(alias = "rnn-relu")]
    RnnRelu,
}

impl Mode {
    /// Number of gate blocks of `H` columns: 4, 3 or 1.
    pub fn gates(self) -> usize {
        match self {
            Mode::Lstm => 4,
            Mode::Gru => 3,
            Mode::RnnTanh | Mode::RnnRelu => 1,
        }
    }

    /// The name PyTorch and the conformance files use (`LSTM`, `GRU`, `RNN_TANH`, `RNN_RELU`).
    pub fn torch_name(self) -> &'static str {
        match self {
            Mode::Lstm => "LSTM",
            Mode::Gru => "GRU",
            Mode::RnnTanh => "RNN_TANH",
            Mode::RnnRelu => "RNN_RELU",
        }
    }

    /// Parses [`Mode::torch_name`] (case-insensitive), also `lstm`, `gru`, `rnn` (tanh).
    pub fn parse(s: &str) -> Option<Mode> {
        match s.to_ascii_uppercase().as_str() {
            "LSTM" => Some(Mode::Lstm),
            "GRU" => Some(Mode::Gru),
            "RNN" | "RNN_TANH" | "TANH" => Some(Mode::RnnTanh),
            "RNN_RELU" | "RELU" => Some(Mode::RnnRelu),
            _ => None,
        }
    }
}
