//! Model files: checkpoints in safetensors, and the formats of other frameworks (PyTorch
//! state dicts, Keras weights and `.weights.h5`, ONNX graphs). The conversions of layouts
//! (Keras' gate order i, f, c, o; ONNX's i, o, f, c) happen here, at the border.
//!
//! Keras' `.weights.h5` needs the cargo feature `keras` (the `hdf5-pure` crate), ONNX the
//! feature `onnx` (`prost`); the binary turns both on.

pub mod checkpoint;
pub mod interop;
#[cfg(feature = "onnx")]
pub mod onnx;
