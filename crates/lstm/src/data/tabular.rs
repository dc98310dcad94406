//! Opening a delimited file with a header row: one place for the file error, the reader and
//! the "no column" message shared by the forecast and classification readers.

use std::path::Path;

use crate::error::{Error, Result};

/// A delimited file opened with its header row read.
pub(crate) struct Delimited {
    /// The path, for messages.
    pub name: String,
    /// The reader, positioned after the header.
    pub reader: csv::Reader<std::io::Cursor<Vec<u8>>>,
    headers: csv::StringRecord,
}

impl Delimited {
    /// Reads `path` and its header row. `check_utf8` reports the offset of the first byte that
    /// is not UTF-8.
    pub fn open(path: &Path, delimiter: u8, quoting: bool, check_utf8: bool) -> Result<Delimited> {
        let name = path.display().to_string();
        if path.is_dir() {
            return Err(Error::Format {
                path: name,
                reason: "is a directory; give a CSV or TSV file".into(),
            });
        }
        let bytes =
            std::fs::read(path).map_err(|source| crate::error::Error::read(&name, source))?;
        Self::from_bytes(name, bytes, delimiter, quoting, check_utf8)
    }

    /// As [`Self::open`] on bytes already read; `name` names them in errors.
    pub fn from_bytes(
        name: String,
        bytes: Vec<u8>,
        delimiter: u8,
        quoting: bool,
        check_utf8: bool,
    ) -> Result<Delimited> {
        let fmt = |reason: String| Error::Format {
            path: name.clone(),
            reason,
        };
        if check_utf8 {
            if let Err(e) = std::str::from_utf8(&bytes) {
                return Err(fmt(format!(
                    "not UTF-8 text (invalid byte at offset {})",
                    e.valid_up_to()
                )));
            }
        }
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .quoting(quoting)
            .from_reader(std::io::Cursor::new(bytes));
        if bytes_empty(&reader) {
            return Err(fmt(
                "the file is empty; it needs a header row and data rows".into(),
            ));
        }
        let headers = reader.headers().map_err(|e| fmt(e.to_string()))?.clone();
        Ok(Delimited {
            name,
            reader,
            headers,
        })
    }

    /// An [`Error::Format`] naming this file.
    pub fn error(&self, reason: String) -> Error {
        Error::Format {
            path: self.name.clone(),
            reason,
        }
    }

    /// Index of the column named `c` (names are trimmed), or an error listing the header.
    pub fn column(&self, c: &str) -> Result<usize> {
        self.headers
            .iter()
            .position(|h| h.trim() == c)
            .ok_or_else(|| {
                self.error(format!(
                    "no column `{c}`; the header has: {}",
                    self.headers.iter().collect::<Vec<_>>().join(", ")
                ))
            })
    }
}

fn bytes_empty(r: &csv::Reader<std::io::Cursor<Vec<u8>>>) -> bool {
    r.get_ref()
        .get_ref()
        .iter()
        .all(|b| b.is_ascii_whitespace())
}
