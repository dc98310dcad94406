//! Reading labelled texts (a TSV or CSV with a text and a label column) and encoding them.

use std::path::Path;

use crate::data::tabular::{read_error, Delimited};
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

/// Whether `path` is read as tab-separated: any name but `*.csv` (in any case).
fn is_tsv(path: &Path) -> bool {
    path.extension()
        .is_none_or(|e| !e.eq_ignore_ascii_case("csv"))
}

fn open(path: &Path) -> Result<Delimited> {
    let tsv = is_tsv(path);
    Delimited::open(path, if tsv { b'\t' } else { b',' }, !tsv, true)
}

/// Reads a text column and a label column (comma-separated with quoting for `.csv`, in any
/// case; else tab-separated without quoting).
///
/// # Errors
/// [`Error::Io`] if unreadable; [`Error::Format`] naming the file and line for a missing
/// column, a ragged row, an empty label, or a quote left open (a cell that holds rows of the
/// file).
pub fn read_labelled(path: &Path, text_column: &str, label_column: &str) -> Result<Labelled> {
    labelled_from(open(path)?, text_column, Some(label_column), true)
}

/// The texts of a file to classify: its text column, read as [`read_labelled`] reads it, but
/// with its label column optional and an empty text or label allowed (an empty text is
/// classified as one unknown token; the labels are not used).
///
/// # Errors
/// As [`read_labelled`], but for empty labels.
pub fn read_texts(path: &Path, text_column: &str, label_column: &str) -> Result<Vec<String>> {
    let file = open(path)?;
    let label = file.has_column(label_column).then_some(label_column);
    Ok(labelled_from(file, text_column, label, false)?.texts)
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
    labelled_from(file, text_column, Some(label_column), true)
}

/// The rows of `file`: its text column and (when `label_column` is given) its label column;
/// `need_labels` refuses an empty label.
fn labelled_from(
    mut file: Delimited,
    text_column: &str,
    label_column: Option<&str>,
    need_labels: bool,
) -> Result<Labelled> {
    let ti = file.column(text_column)?;
    let li = label_column.map(|c| file.column(c)).transpose()?;
    // a quote left open makes one cell of the rows after it, which would be lost without a word
    if let Some(e) = file.broken_quote() {
        return Err(e);
    }
    let tsv = file.delimiter() == b'\t';
    let fields = file.fields();
    let name = file.name.clone();
    let fmt = |reason: String| Error::Format {
        path: name.clone(),
        reason,
    };
    let rdr = &mut file.reader;
    let mut out = Labelled::default();
    let mut lines = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| fmt(ragged(&e, tsv)))?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        lines.push(line);
        let label = li.map_or("", |li| rec.get(li).unwrap_or("").trim());
        if need_labels && label.is_empty() {
            return Err(fmt(format!(
                "line {line}: empty label in column `{}`",
                label_column.unwrap_or_default()
            )));
        }
        out.texts.push(rec.get(ti).unwrap_or("").to_string());
        out.labels.push(label.to_string());
    }
    if out.texts.is_empty() {
        return Err(fmt("the file has no data rows".into()));
    }
    // a quote left open and closed by a stray quote before a separator (`size 12",pos`) reads
    // as a proper cell: its text then holds the rows between, each a whole row of the file
    // ending in one of its labels. Three such lines at least: a review may hold a line or two
    // that read so (`acting,1`).
    if !tsv && fields > 1 {
        let mut known: Vec<&str> = out.labels.iter().map(String::as_str).collect();
        known.sort_unstable();
        known.dedup();
        known.retain(|l| !l.is_empty());
        for (text, &line) in out.texts.iter().zip(&lines) {
            let rows: Vec<&str> = text
                .lines()
                .skip(1)
                .filter(|l| reads_as_row(l, fields, ti, li, &known))
                .collect();
            if rows.len() >= 3 {
                return Err(fmt(format!(
                    "line {line}, column `{text_column}`: the text runs over {} lines, {} of which read as rows of the file (`{}`): a quote opened in it is closed only by a later, stray one; close it where the text ends, or write a quote inside a quoted cell twice (\"\")",
                    text.lines().count(),
                    rows.len(),
                    crate::data::panel::shown(rows[0])
                )));
            }
        }
    }
    Ok(out)
}

/// Whether `line` (a later line of a text in column `text`) reads as a whole row of a
/// comma-separated file of `fields` columns: each cell but the text's non-empty without blanks
/// around it, and the label's (column `label`) one of the file's labels.
fn reads_as_row(
    line: &str,
    fields: usize,
    text: usize,
    label: Option<usize>,
    known: &[&str],
) -> bool {
    // fewer separators than a row has cannot be one (quoting only adds them): no reader built
    let Some(label) = label.filter(|_| line.matches(',').count() + 1 >= fields) else {
        return false;
    };
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let Some(Ok(rec)) = r.records().next() else {
        return false;
    };
    rec.len() == fields
        && rec
            .iter()
            .enumerate()
            .all(|(i, c)| i == text || (!c.is_empty() && c.trim() == c))
        && known.contains(&rec.get(label).unwrap_or(""))
}

/// [`read_error`] and why a tab-separated file may have a ragged row.
fn ragged(e: &csv::Error, tsv: bool) -> String {
    let what = read_error(e);
    match e.kind() {
        csv::ErrorKind::UnequalLengths { .. } if tsv => format!("{what}; the file is read as tab-separated without quoting (its name does not end in .csv), so a cell can hold no tab or line break: write such texts in a .csv file, where cells may be quoted"),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } if len < expected_len => format!("{what}: a cell is missing (its label?)"),
        csv::ErrorKind::UnequalLengths { .. } => format!("{what}: a text with a comma needs quotes"),
        _ => what,
    }
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

/// A text's 64-bit FNV-1a hash: how a classifier records the texts its training read
/// (`modeldir::TextsSeen`).
pub fn text_hash(text: &str) -> u64 {
    crate::data::fnv1a(text.as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> Result<Labelled> {
        parse_labelled(text.as_bytes().to_vec(), "r.csv", false, "text", "label")
    }

    fn refused(r: Result<Labelled>) -> String {
        match r {
            Err(e) => e.to_string(),
            Ok(d) => panic!("read {} rows", d.texts.len()),
        }
    }

    /// 40 rows `id,label,text`; `text(i)` writes row i's text.
    fn rows(text: impl Fn(usize) -> String) -> String {
        let mut s = String::from("id,label,text\n");
        for i in 0..40 {
            let l = ["pos", "neg"][i % 2];
            s.push_str(&format!("{i},{l},{}\n", text(i)));
        }
        s
    }

    #[test]
    fn a_quote_left_open_in_a_text_is_refused_with_its_line() {
        // row 7's text opens a quote that is never closed: the rows after it would be its text
        let file = rows(|i| {
            if i == 7 {
                "\"Best movie ever! and more".into()
            } else {
                format!("plain text number {i}")
            }
        });
        let e = refused(csv(&file));
        assert!(
            e.contains("line 9, column `text`") && e.contains("is never closed"),
            "{e}"
        );
        // a quote that runs on to the next quoted cell: closed there, before more text
        let file = rows(|i| match i {
            7 => "\"Best movie ever! and more".into(),
            20 => "\"a quoted text\"".into(),
            _ => format!("plain text number {i}"),
        });
        let e = refused(csv(&file));
        assert!(
            e.contains("line 9, column `text`")
                && e.contains("closes only on line 22, before `a quoted text"),
            "{e}"
        );
        // the same rows read whole when the quote is closed
        let file = rows(|i| {
            if i == 7 {
                "\"Best movie ever! and more\"".into()
            } else {
                format!("plain text number {i}")
            }
        });
        assert_eq!(csv(&file).unwrap().texts.len(), 40);
    }

    #[test]
    fn quoted_reviews_over_several_lines_are_read_with_their_lines() {
        // reviews with commas, doubled quotes and separators on their later lines (prose puts a
        // blank after a comma), as pandas' `to_csv` writes them
        let file = rows(|i| {
            format!("\"A film, {i} of them.\nSecond line, with commas, and \"\"quotes\"\".\n1,2,3 go\n<br />Third, last.\"")
        });
        let d = csv(&file).unwrap();
        assert_eq!(d.texts.len(), 40);
        assert!(d.texts[3].starts_with("A film, 3 of them.\nSecond"));
        assert_eq!(d.labels[3], "neg");
        // an empty label after them is named on its own line: the header, then 40 rows of 4
        // lines, then the row
        let mut bad = file.clone();
        bad.push_str("40,,\"last\"\n");
        let e = refused(csv(&bad));
        assert!(e.contains("line 162: empty label"), "{e}");
    }

    #[test]
    fn a_quote_closed_by_a_stray_one_or_left_open_on_the_last_line() {
        // the quote opened in row 7 is closed by a stray one before a separator in row 20:
        // a proper cell to the csv reader, holding the rows between
        let file = rows(|i| match i {
            7 => "\"Best movie ever! and more".into(),
            20 => "size 12\"".into(),
            _ => format!("plain text number {i}"),
        });
        let e = refused(csv(&file));
        assert!(
            e.contains("line 9, column `text`") && e.contains("13 of which read as rows"),
            "{e}"
        );
        // a quote opened on the last line swallows nothing: read as the csv reader reads it
        let d = csv("text,label\ngood,pos\nfinal text,\"pos\n").unwrap();
        assert_eq!(d.labels, ["pos", "pos"]);
        // one line swallowed to the end of the file is counted as one
        let e = refused(csv("text,label\n\"good,pos\nbad,neg\n"));
        assert!(e.contains("so the line after it"), "{e}");
        // blanks between a closing quote and the separator are read past
        let d = csv("text,label\n\"line one\nline two\" ,pos\nx,neg\n").unwrap();
        assert_eq!(d.texts[0], "line one\nline two ");
    }

    #[test]
    fn proper_quoted_cells_over_lines_are_read_whatever_their_lines_hold() {
        // lines of a review that read as rows of the file (numeric labels, the text first or
        // last, a title column with commas): quoted as csv.writer and pandas quote them
        let cases = [
            "label,text\n1,\"I loved it.\n1,000 times better than the sequel.\"\n0,bad\n",
            "text,label\n\"Scores:\nacting,1\nplot,0\",1\nbad,0\n",
            "title,text,label\n\"A title, with a comma\nand, two, more\",good,1\nx,bad,0\n",
            // a quote inside an unquoted cell is text; a one-line cell with text after its
            // closing quote is read as the csv reader reads it
            "text,label\nhe said \"hi\" twice,1\n\"Titanic\" is great,0\n",
        ];
        for file in cases {
            let d = csv(file).unwrap_or_else(|e| panic!("{e}: {file}"));
            assert_eq!(d.texts.len(), 2, "{file}");
        }
        assert_eq!(csv(cases[1]).unwrap().texts[0], "Scores:\nacting,1\nplot,0");
    }

    #[test]
    fn ragged_rows_say_why() {
        let e = refused(csv("text,label\ngood,pos\nbad movie, really,neg\n"));
        assert!(
            e.contains("line 3: the row has 3 cells, the header 2")
                && e.contains("a text with a comma needs quotes"),
            "{e}"
        );
        let e = refused(csv("text,label\ngood,pos\nbad film\n"));
        assert!(
            e.contains("line 3: the row has 1 cell, the header 2: a cell is missing"),
            "{e}"
        );
        let tsv = "text\tlabel\n\"two\nlines\"\tpos\n";
        let e = parse_labelled(tsv.as_bytes().to_vec(), "r.tsv", true, "text", "label")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("line 2: the row has 1 cell, the header 2")
                && e.contains("read as tab-separated without quoting"),
            "{e}"
        );
    }

    #[test]
    fn the_format_follows_the_name_in_any_case() {
        assert!(!is_tsv(Path::new("a.csv")) && !is_tsv(Path::new("a.CSV")));
        assert!(is_tsv(Path::new("a.tsv")) && is_tsv(Path::new("a.txt")) && is_tsv(Path::new("a")));
        // a comma-separated file read as tab-separated is named as such
        let e = parse_labelled(
            b"text,label\ngood,pos\n".to_vec(),
            "r.txt",
            true,
            "text",
            "label",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains("read as tab-separated") && e.contains("*.csv"),
            "{e}"
        );
    }

    #[test]
    fn texts_to_classify_may_be_empty_and_need_no_label() {
        let dir = std::env::temp_dir().join(format!("lstm-labelled-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("new.tsv");
        // a label column left blank (a test file), an empty text
        std::fs::write(&p, "id\ttext\tlabel\n1\tgreat movie\t\n2\t\t\n3\tawful\t\n").unwrap();
        assert_eq!(
            read_texts(&p, "text", "label").unwrap(),
            ["great movie", "", "awful"]
        );
        // no label column at all
        std::fs::write(&p, "id\ttext\n1\tgreat movie\n2\t\n").unwrap();
        assert_eq!(
            read_texts(&p, "text", "label").unwrap(),
            ["great movie", ""]
        );
        // training still needs every label
        std::fs::write(&p, "text\tlabel\ngreat\tpos\n\tneg\nawful\t\n").unwrap();
        let e = read_labelled(&p, "text", "label")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("line 4: empty label in column `label`"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
