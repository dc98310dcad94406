//! Model files: checkpoints in safetensors, and the formats of other frameworks (PyTorch
//! state dicts, Keras weights and `.weights.h5`, ONNX graphs). The conversions of layouts
//! (Keras' gate order i, f, c, o; ONNX's i, o, f, c) happen here, at the border.

pub mod checkpoint;
pub mod interop;
pub mod onnx;
