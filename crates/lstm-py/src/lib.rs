//! The `lstm` Python package's native module, `lstm._lstm`: a thin shell over the `lstm`
//! library. `layers.rs` holds the recurrent layers (`torch.nn.LSTM`'s shape), `jobs.rs` the
//! trained models of the three jobs (text, forecast, classify) and `errors.rs` how the
//! library's errors become Python exceptions. The Python side (`python/lstm/`) adds the
//! scikit-learn-style classes, pandas input and the type stubs.

use pyo3::prelude::*;

mod errors;
mod jobs;
mod layers;
mod pool;

/// The native module; import `lstm`, not this.
#[pymodule]
fn _lstm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("LstmError", m.py().get_type::<errors::LstmError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // numpy's C API is loaded now, not by the first call that returns an array: loading runs
    // Python code, where a Ctrl-C pending from that call went off as a panic (a probe,
    // 2026-12-07: the first `Classifier.predict` interrupted raised `PanicException`)
    // (numpy imported first: when it is missing, an ImportError, not a panic)
    m.py().import("numpy")?;
    numpy::PyArray1::<f32>::zeros(m.py(), 0, false);
    pool::init();
    layers::register(m)?;
    jobs::register(m)?;
    Ok(())
}
