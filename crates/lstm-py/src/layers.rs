//! The recurrent layers, shaped like `torch.nn.LSTM`, `GRU` and `RNN`.

use pyo3::prelude::*;

/// Adds the layer classes to the module.
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
