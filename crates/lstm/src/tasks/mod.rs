//! The three jobs (text, forecast, classify): their settings, the training loop, evaluation and
//! prediction, and the model directories they are saved in.

pub mod classify;
pub mod forecast;
pub mod global;
pub mod job;
pub mod metrics;
pub mod modeldir;
pub mod parallel;
pub mod settings;
pub mod text;
pub mod train;
