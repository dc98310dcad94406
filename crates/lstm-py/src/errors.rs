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

/// The message in Python's words: a command-line flag that is also a keyword argument of the
/// package (a setting such as `--seq-len`, or an argument of `fit`, `predict` or `evaluate`)
/// is named as the argument (`seq_len`). Flags of the command line alone are left as they are.
pub(crate) fn pythonic(msg: String) -> String {
    use std::sync::OnceLock;
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let settings = serde_json::to_value(lstm::Settings::defaults(lstm::Task::Text))
            .ok()
            .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
            .unwrap_or_default();
        let mut names: Vec<String> = settings
            .into_iter()
            .chain(
                [
                    "column",
                    "id_column",
                    "time_column",
                    "known_columns",
                    "quantiles",
                    "steps",
                    "windows",
                    "holdout",
                    "tail",
                    "prime",
                    "temperature",
                    "top_k",
                    "length",
                ]
                .map(String::from),
            )
            .collect();
        // the longest first, so that `--seq-len` is not read as `--seq`
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        names.dedup();
        names
    });
    if !msg.contains("--") {
        return msg;
    }
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg.as_str();
    while let Some(at) = rest.find("--") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        // a flag is `--` after a blank or an opening mark, then a name to a non-name character
        let starts = at == 0 || out.ends_with([' ', '(', '`', '\'', '"']);
        let len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(after.len());
        let flag = after[..len].trim_end_matches('-');
        let name = flag.replace('-', "_");
        if starts && !flag.is_empty() && names.contains(&name) {
            out.push_str(&name);
            rest = &after[flag.len()..];
        } else {
            out.push_str("--");
            rest = after;
        }
    }
    out.push_str(rest);
    // "id_embedding (--id-embedding) must be ..." reads "id_embedding must be ..."
    for n in names {
        let twice = format!("{n} ({n})");
        if out.contains(&twice) {
            out = out.replace(&twice, n);
        }
    }
    out
}

fn raise(kind: Kind, msg: String) -> PyErr {
    let msg = pythonic(msg);
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

/// A `ValueError` with this message (flags named as keyword arguments).
pub fn value_err(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(pythonic(msg.into()))
}
