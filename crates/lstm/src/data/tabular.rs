//! Opening a delimited file with a header row: one place for the file error, the reader and
//! the "no column" message shared by the forecast and classification readers.

use std::path::Path;

use crate::error::{Error, Result};

/// Rows written as CSV text, each field quoted as CSV needs (an id or a column name with a
/// comma, a quote or a line break), lines ended by `\n`: the forecast, per-series and backtest
/// files. The rows may be made as they are written (a forecast of many quantiles has tens of
/// millions of fields).
pub(crate) fn csv_text<R: AsRef<[String]>>(rows: impl IntoIterator<Item = R>) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    for row in rows {
        // writing to memory cannot fail
        let _ = w.write_record(row.as_ref());
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// A delimited file opened with its header row read.
pub(crate) struct Delimited {
    /// The path, for messages.
    pub name: String,
    /// The reader, positioned after the header.
    pub reader: csv::Reader<std::io::Cursor<Vec<u8>>>,
    headers: csv::StringRecord,
    delimiter: u8,
    quoting: bool,
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
        // compressed files and spreadsheets, named for what they are, not as bad text
        let packed = if bytes.starts_with(&[0x1f, 0x8b]) {
            Some("gzip-compressed: decompress it (`gunzip`) and give the CSV")
        } else if bytes.starts_with(b"PK\x03\x04") {
            Some("a zip archive (a spreadsheet such as .xlsx is one): export the sheet as CSV, or unzip the CSV")
        } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some("zstd-compressed: decompress it (`zstd -d`) and give the CSV")
        } else if bytes.starts_with(b"BZh") && bytes.get(3).is_some_and(u8::is_ascii_digit) {
            Some("bzip2-compressed: decompress it (`bunzip2`) and give the CSV")
        } else {
            None
        };
        if let Some(what) = packed {
            return Err(fmt(format!("the file is {what}")));
        }
        if check_utf8 {
            if let Err(e) = std::str::from_utf8(&bytes) {
                let at = e.valid_up_to();
                let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
                let utf16 = bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]);
                return Err(fmt(format!(
                    "line {line}: not UTF-8 text (invalid byte at offset {at}){}",
                    if utf16 {
                        "; the file looks like UTF-16: save it as UTF-8"
                    } else {
                        "; save it as UTF-8"
                    }
                )));
            }
        }
        // the csv reader counts a CRLF file's lines one short: read its line ends as LF
        let bytes = if bytes.windows(2).any(|w| w == b"\r\n") {
            let mut out = Vec::with_capacity(bytes.len());
            for (i, &b) in bytes.iter().enumerate() {
                if !(b == b'\r' && bytes.get(i + 1) == Some(&b'\n')) {
                    out.push(b);
                }
            }
            out
        } else {
            bytes
        };
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
            delimiter,
            quoting,
        })
    }

    /// An [`Error::Format`] naming this file.
    pub fn error(&self, reason: String) -> Error {
        Error::Format {
            path: self.name.clone(),
            reason,
        }
    }

    /// The check that every cell of a row is on one line ([`OneLine::check`]), for the rows
    /// this file's reader gives.
    pub fn one_line(&self) -> OneLine {
        OneLine {
            name: self.name.clone(),
            headers: self.headers.clone(),
            delimiter: char::from(self.delimiter),
        }
    }

    /// A quoted cell that runs over several lines and is never closed, or is followed after
    /// its closing quote by more text than a separator: a quote opened in a cell and never
    /// closed, which makes one cell of the rows after it, up to the next quote in the file (the
    /// csv reader reads on without a word). A proper quoted cell over several lines (a review,
    /// a note) ends in a quote followed by a separator or a line end; a quote inside a cell
    /// that does not start with one is text. `None` for a file read without quoting.
    pub fn broken_quote(&self) -> Option<Error> {
        if !self.quoting {
            return None;
        }
        let b = self.reader.get_ref().get_ref();
        let d = self.delimiter;
        let (mut line, mut col, mut i, mut field_start) = (1usize, 0usize, 0usize, true);
        while i < b.len() {
            if field_start && b[i] == b'"' {
                let (open, at) = (line, i);
                i += 1;
                let closed = loop {
                    match b.get(i) {
                        None => break false,
                        Some(b'\n') => line += 1,
                        Some(b'"') if b.get(i + 1) == Some(&b'"') => i += 1,
                        Some(b'"') => break true,
                        _ => {}
                    }
                    i += 1;
                };
                // blanks between a closing quote and the separator are read past, as the csv
                // reader reads them
                let next = if closed {
                    b[i + 1..].iter().find(|&&x| x != b' ' && x != b'\t')
                } else {
                    None
                };
                let ends = next.is_none_or(|&x| x == d || x == b'\n' || x == b'\r');
                // lines of the file the cell swallowed (a line break that ends the file starts
                // no line: a quote left open on the last line swallows nothing)
                let swallowed = if !closed && b.ends_with(b"\n") {
                    line - open - 1
                } else {
                    line - open
                };
                if swallowed > 0 && !(closed && ends) {
                    let cell: String = String::from_utf8_lossy(&b[at + 1..])
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let how = if closed {
                        let after: String = String::from_utf8_lossy(&b[i + 1..])
                            .lines()
                            .next()
                            .unwrap_or("")
                            .to_string();
                        format!(
                            "closes only on line {line}, before `{}`",
                            crate::data::panel::shown(&after)
                        )
                    } else {
                        "is never closed".to_string()
                    };
                    return Some(self.error(format!(
                        "line {open}, column `{}`: the quote that opens the cell `{}` {how}, so the {} after it would be read as one cell; close the quote where the cell ends, or write a quote inside a quoted cell twice (\"\")",
                        self.headers.get(col).unwrap_or("?").trim(),
                        crate::data::panel::shown(&cell),
                        if swallowed == 1 {
                            "line".to_string()
                        } else {
                            format!("{swallowed} lines")
                        }
                    )));
                }
                i += 1;
                field_start = false;
                continue;
            }
            match b[i] {
                b'\n' => {
                    line += 1;
                    col = 0;
                    field_start = true;
                }
                x if x == d => {
                    col += 1;
                    field_start = true;
                }
                _ => field_start = false,
            }
            i += 1;
        }
        None
    }

    /// The header's number of columns.
    pub fn fields(&self) -> usize {
        self.headers.len()
    }

    /// The field separator.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Whether the header names column `c` (compared trimmed, as [`Self::column`] does).
    pub fn has_column(&self, c: &str) -> bool {
        self.headers.iter().any(|h| h.trim() == c.trim())
    }

    /// Index of the column named `c` (names, given and in the header, are compared trimmed), or an
    /// error listing the header.
    /// A name the header holds twice is refused rather than read from its first place.
    pub fn column(&self, c: &str) -> Result<usize> {
        let mut at = self
            .headers
            .iter()
            .enumerate()
            .filter(|(_, h)| h.trim() == c.trim())
            .map(|(i, _)| i);
        let first = at.next().ok_or_else(|| {
            if let [only] = self.headers.iter().collect::<Vec<_>>()[..] {
                if self.delimiter == b'\t' && only.contains(',') {
                    return self.error(format!(
                        "no column `{}`: the file is read as tab-separated (its name does not end in .csv), and its header is one field, `{}`; name a comma-separated file *.csv",
                        c.trim(),
                        crate::data::panel::shown(only)
                    ));
                }
                if only.contains(';') {
                    return self.error(format!(
                        "no column `{}`: the header is one field, `{}`, so the file looks separated by `;` (a spreadsheet in a language that writes decimal commas); save it with `,` between fields and `.` in numbers",
                        c.trim(),
                        crate::data::panel::shown(only)
                    ));
                }
            }
            // each name quoted: a name may hold a comma or blanks
            self.error(format!(
                "no column `{}`; the header has: {}",
                c.trim(),
                self.headers
                    .iter()
                    .map(|h| format!("`{}`", h.trim()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        if let Some(second) = at.next() {
            return Err(self.error(format!(
                "line 1: the header names column `{c}` twice (columns {} and {}); rename one",
                first + 1,
                second + 1
            )));
        }
        Ok(first)
    }
}

fn bytes_empty(r: &csv::Reader<std::io::Cursor<Vec<u8>>>) -> bool {
    r.get_ref()
        .get_ref()
        .iter()
        .all(|b| b.is_ascii_whitespace())
}

/// A file's name and header, to check its rows' cells ([`Delimited::one_line`]).
pub(crate) struct OneLine {
    name: String,
    headers: csv::StringRecord,
    delimiter: char,
}

impl OneLine {
    /// Refuses a cell of `rec` (read from `line`) that holds rows of the file, except in
    /// column `except` (an id may hold anything): a quote opened in a cell and never closed
    /// makes one cell of the lines after it, up to the next quote or the end of the file, and
    /// those rows would be lost without a word. A cell over several lines whose later lines
    /// do not look like rows (as many separators as the header) is a note with line breaks,
    /// and is read.
    pub fn check(&self, rec: &csv::StringRecord, line: usize, except: Option<usize>) -> Result<()> {
        let fields = self.headers.len();
        let row_like = |l: &str| fields > 1 && l.matches(self.delimiter).count() + 1 >= fields;
        let Some((i, cell)) = rec
            .iter()
            .enumerate()
            .find(|&(i, c)| Some(i) != except && c.lines().skip(1).any(row_like))
        else {
            return Ok(());
        };
        Err(Error::Format {
            path: self.name.clone(),
            reason: format!(
                "line {line}, column `{}`: the cell runs over {} lines that look like rows of the file (`{}`): a quote opened in it is not closed where the cell ends; close it, or write a quote inside a quoted cell twice (\"\")",
                self.headers.get(i).unwrap_or("?"),
                cell.lines().count(),
                crate::data::panel::shown(cell.lines().next().unwrap_or(""))
            ),
        })
    }
}

/// The message for a row the csv reader refused (most often one with more or fewer cells than
/// the header), with its line.
pub(crate) fn read_error(e: &csv::Error) -> String {
    let what = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "the row has {len} cell{}, the header {expected_len}",
            if *len == 1 { "" } else { "s" }
        ),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text; save the file as UTF-8".into(),
        _ => e.to_string(),
    };
    match e.position() {
        Some(p) => format!("line {}: {what}", p.line()),
        None => what,
    }
}
