//! The library's errors as Python exceptions: bad shapes, values and settings raise
//! `ValueError`, a missing file or model directory `FileNotFoundError`, anything else
//! `lstm.LstmError`; each with the library's whole message (its context chain joined by `: `).

use lstm::tasks::job::JobError;
use lstm::Error;
use pyo3::exceptions::{PyException, PyFileNotFoundError, PyValueError};
use pyo3::PyErr;

pyo3::create_exception!(
    lstm,
    LstmError,
    PyException,
    "An error of the lstm library that is not a bad argument or a missing file: an unreadable \
     or corrupt model directory, a failed write, a training run that diverged."
);

/// Which Python exception an error of the library becomes.
#[derive(Clone, Copy)]
enum Kind {
    Value,
    NotFound,
    Other,
}

fn lib_kind(e: &Error) -> Kind {
    match e {
        Error::Config(_) | Error::Shape { .. } | Error::Index(_) | Error::MissingTensor(_) => {
            Kind::Value
        }
        Error::Format { reason, .. } if reason.starts_with("no such") => Kind::NotFound,
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Kind::NotFound,
        _ => Kind::Other,
    }
}

fn job_kind(e: &JobError) -> Kind {
    match e {
        JobError::Lib(e) => lib_kind(e),
        JobError::Invalid(_) => Kind::Value,
        JobError::Context { source, .. } => job_kind(source),
    }
}

/// The message with every cause, `outer: inner: ...` (each level once).
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !msg.contains(&m) {
            msg.push_str(": ");
            msg.push_str(&m);
        }
        cur = s.source();
    }
    msg
}

fn raise(kind: Kind, msg: String) -> PyErr {
    match kind {
        Kind::Value => PyValueError::new_err(msg),
        Kind::NotFound => PyFileNotFoundError::new_err(msg),
        Kind::Other => LstmError::new_err(msg),
    }
}

/// A library error as a Python exception.
pub fn lib_err(e: Error) -> PyErr {
    raise(lib_kind(&e), chain(&e))
}

/// A job error as a Python exception.
pub fn job_err(e: JobError) -> PyErr {
    raise(job_kind(&e), chain(&e))
}

/// A `ValueError` with this message.
pub fn value_err(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}
