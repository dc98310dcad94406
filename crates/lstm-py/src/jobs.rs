//! The trained models of the three jobs.

use pyo3::prelude::*;

/// Adds the job functions and classes to the module.
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
