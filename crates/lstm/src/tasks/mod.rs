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

/// A caller's progress report for long passes (`lstm eval` of a large text): called with the
/// units done and the units in all (characters scored and to score), after each batch.
/// [`Progress::default`] reports nothing.
#[derive(Clone, Default)]
pub struct Progress(Option<std::sync::Arc<dyn Fn(u64, u64) + Send + Sync>>);

impl Progress {
    /// A report that calls `f(done, total)`.
    pub fn new(f: impl Fn(u64, u64) + Send + Sync + 'static) -> Progress {
        Progress(Some(std::sync::Arc::new(f)))
    }

    /// Reports `done` of `total` units (nothing without a callback).
    pub fn report(&self, done: u64, total: u64) {
        if let Some(f) = &self.0 {
            f(done, total);
        }
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(reporting)"
        } else {
            "Progress(none)"
        })
    }
}
