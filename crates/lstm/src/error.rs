//! Typed errors of the library.
//!
//! Every function that takes something a user can get wrong (a shape, a length, a file)
//! returns [`Result`]; nothing a user passes in makes the library panic. The exceptions are
//! the low-level building blocks whose documentation has a `# Panics` section (the kernels,
//! [`crate::params::ParamStore::add`], [`crate::model::optim::Optimizer::step`], the loss
//! helpers, `sample_logits`, `global::fill_window`): they take what their callers (the
//! model, the jobs) have checked, and say what they need.

use thiserror::Error;

/// Everything that can go wrong in the library.
#[derive(Debug, Error)]
pub enum Error {
    /// A configuration value is out of range or contradicts another one.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A tensor or buffer has the wrong shape or length.
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    Shape {
        /// Which tensor or argument.
        what: String,
        /// The shape or length that was expected.
        expected: String,
        /// The shape or length that was found.
        got: String,
    },
    /// A token id, length or other index is out of its valid range.
    #[error("{0}")]
    Index(String),
    /// A named tensor is missing from a checkpoint or reference file.
    #[error("missing tensor `{0}`")]
    MissingTensor(String),
    /// A checkpoint or reference file could not be decoded.
    #[error("cannot read {path}: {reason}")]
    Format {
        /// The file (or a description of the source).
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// An I/O error, with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// The file that could not be read or written.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Training produced a non-finite loss or gradient.
    #[error("training diverged: {0}")]
    Diverged(String),
    /// The caller raised its stop flag before the work was done (nothing was written).
    #[error("interrupted before training the first model; nothing was written")]
    Interrupted,
}

/// Result with the library's [`enum@Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The error for a file that could not be read: a missing file says so and asks to check
    /// the path; other failures keep the system's reason.
    pub fn read(path: &str, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::Format {
                path: path.to_string(),
                reason: "no such file; check the path".into(),
            }
        } else {
            Error::Io {
                path: path.to_string(),
                source,
            }
        }
    }

    /// Builds an [`Error::Shape`].
    pub fn shape(what: impl Into<String>, expected: impl ToString, got: impl ToString) -> Self {
        Error::Shape {
            what: what.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
}
