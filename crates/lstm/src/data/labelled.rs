//! Reading labelled texts (a TSV or CSV with a text and a label column) and encoding them.

use std::path::Path;

use crate::data::tabular::Delimited;
use crate::data::vocab::Vocab;
use crate::error::{Error, Result};

/// Texts and label strings read from a TSV/CSV file.
#[derive(Clone, Debug, Default)]
pub struct Labelled {
    /// The texts.
    pub texts: Vec<String>,
    /// The labels, as written in the file.
    pub labels: Vec<String>,
}

/// Reads a text column and a label column (tab-separated for `.tsv`, else comma).
///
/// # Errors
/// [`Error::Io`] if unreadable; [`Error::Format`] naming the file and line for a missing
/// column, a ragged row or an empty label.
pub fn read_labelled(path: &Path, text_column: &str, label_column: &str) -> Result<Labelled> {
    let tsv = path.extension().is_none_or(|e| e != "csv");
    let file = Delimited::open(path, if tsv { b'\t' } else { b',' }, !tsv, true)?;
    labelled_from(file, text_column, label_column)
}

/// As [`read_labelled`] on the bytes of a file (`tsv`: tab-separated without quoting, else
/// comma-separated with quoting); `name` names them in errors.
///
/// # Errors
/// As [`read_labelled`].
pub fn parse_labelled(
    bytes: Vec<u8>,
    name: &str,
    tsv: bool,
    text_column: &str,
    label_column: &str,
) -> Result<Labelled> {
    let file = Delimited::from_bytes(
        name.to_string(),
        bytes,
        if tsv { b'\t' } else { b',' },
        !tsv,
        true,
    )?;
    labelled_from(file, text_column, label_column)
}

fn labelled_from(mut file: Delimited, text_column: &str, label_column: &str) -> Result<Labelled> {
    let (ti, li) = (file.column(text_column)?, file.column(label_column)?);
    let name = file.name.clone();
    let fmt = |reason: String| Error::Format {
        path: name.clone(),
        reason,
    };
    let rdr = &mut file.reader;
    let mut out = Labelled::default();
    for (r, rec) in rdr.records().enumerate() {
        let line = r + 2;
        let rec = rec.map_err(|e| fmt(format!("line {line}: {e}")))?;
        let label = rec.get(li).unwrap_or("").trim();
        if label.is_empty() {
            return Err(fmt(format!(
                "line {line}: empty label in column `{label_column}`"
            )));
        }
        out.texts.push(rec.get(ti).unwrap_or("").to_string());
        out.labels.push(label.to_string());
    }
    if out.texts.is_empty() {
        return Err(fmt("the file has no data rows".into()));
    }
    Ok(out)
}

/// The classes of a training set: its distinct labels, sorted (a class's id is its index).
///
/// # Errors
/// [`Error::Format`] naming the file (`path`) and the label column if there are fewer than two.
pub fn classes(labels: &[String], path: &str, label_column: &str) -> Result<Vec<String>> {
    let mut classes = labels.to_vec();
    classes.sort();
    classes.dedup();
    if classes.len() < 2 {
        return Err(Error::Format {
            path: path.to_string(),
            reason: format!(
                "the label column `{label_column}` has a single class ({:?}) in the training rows; a classifier needs at least two",
                classes.first().map(|s| s.as_str()).unwrap_or("")
            ),
        });
    }
    Ok(classes)
}

/// Token ids and class ids.
#[derive(Clone, Debug, Default)]
pub struct Examples {
    /// One token sequence per example (never empty, at most the maximum length).
    pub tokens: Vec<Vec<u32>>,
    /// Class id per example.
    pub labels: Vec<u32>,
}

/// Encodes texts (an empty text becomes one unknown token; longer than `max_len` is cut).
pub fn encode_texts(vocab: &Vocab, texts: &[String], max_len: usize) -> Vec<Vec<u32>> {
    texts
        .iter()
        .map(|t| {
            let mut ids = vocab.encode_input(t);
            ids.truncate(max_len);
            if ids.is_empty() {
                ids.push(vocab.unk());
            }
            ids
        })
        .collect()
}
