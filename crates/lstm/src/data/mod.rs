//! Data: vocabularies, delimited files, and the readers of the three jobs' inputs (text, series
//! tables, labelled texts), with the series transforms and scaling.
//!
//! Imports only the layers below it (kernels to model); knows nothing of training.

pub mod labelled;
pub mod panel;
pub mod series;
pub(crate) mod tabular;
pub mod text;
pub mod vocab;
