//! Reading text files for the text job: UTF-8 checked, with the first bad byte named; the
//! validation split.

use std::path::Path;

use crate::data::vocab::Vocab;
use crate::error::{Error, Result};

/// Reads a UTF-8 text file for training or evaluation (see [`decode_text`]).
///
/// # Errors
/// [`Error::Io`] if it cannot be read (missing, no permission), [`Error::Format`] naming the
/// file if it is a directory, empty, or not UTF-8 (with the offset of the first bad byte).
pub fn read_text(path: &Path) -> Result<String> {
    read_text_for(path, None)
}

/// Reads a UTF-8 text file for a model's `vocab`: as [`read_text`] for a new model or one whose
/// vocabulary says so ([`Vocab::line_ends_read`]), else as written (a model trained before line
/// ends were read away, 2026-12-07), so that its files read as they did when it trained (a
/// `--resume` recognises them, an evaluation scores the characters it learned).
///
/// # Errors
/// As [`read_text`].
pub fn read_text_for(path: &Path, vocab: Option<&Vocab>) -> Result<String> {
    let name = path.display().to_string();
    if path.is_dir() {
        return Err(format_error(&name, "is a directory; give a text file"));
    }
    let bytes = std::fs::read(path).map_err(|source| crate::error::Error::read(&name, source))?;
    let raw = vocab.is_some_and(|v| !v.line_ends_read);
    if raw {
        decode_raw(bytes, &name)
    } else {
        decode_text(bytes, &name)
    }
}

/// Checks that `bytes` are non-empty UTF-8 text, and reads it with a leading byte-order mark
/// dropped and `\r\n` read as `\n` (a lone `\r` is kept); `name` names them in errors.
///
/// # Errors
/// [`Error::Format`] if empty or not UTF-8 (with the offset of the first bad byte).
pub fn decode_text(bytes: Vec<u8>, name: &str) -> Result<String> {
    let text = normalize_text(decode_raw(bytes, name)?);
    if text.is_empty() {
        return Err(format_error(
            name,
            "the file holds only a byte-order mark; give some text",
        ));
    }
    Ok(text)
}

fn format_error(name: &str, reason: &str) -> Error {
    Error::Format {
        path: name.to_string(),
        reason: reason.to_string(),
    }
}

/// Non-empty UTF-8 text as written.
fn decode_raw(bytes: Vec<u8>, name: &str) -> Result<String> {
    if bytes.is_empty() {
        return Err(format_error(
            name,
            "the file is empty; give a text file with some text in it",
        ));
    }
    // the encoding to convert from: UTF-16 by its byte-order mark (Windows Notepad's
    // "Unicode"), else most often a Windows code page
    let from = if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        Some("the file looks like UTF-16: convert it with `iconv -f UTF-16 -t UTF-8`")
    } else {
        None
    };
    String::from_utf8(bytes).map_err(|e| {
        format_error(
            name,
            &format!(
                "not UTF-8 text: invalid byte at offset {}; {}",
                e.utf8_error().valid_up_to(),
                from.unwrap_or(
                    "convert it to UTF-8 (e.g. `iconv -f WINDOWS-1252 -t UTF-8` for a Windows file)"
                )
            ),
        )
    })
}

/// A leading byte-order mark dropped and Windows line ends (`\r\n`) read as `\n`, so that
/// neither becomes a character the model learns and generates.
fn normalize_text(mut text: String) -> String {
    if text.starts_with('\u{feff}') {
        text.replace_range(..'\u{feff}'.len_utf8(), "");
    }
    if text.contains("\r\n") {
        text.replace("\r\n", "\n")
    } else {
        text
    }
}

/// Splits a text into a training part and the last `val_fraction` of its characters (at
/// least one) for validation.
pub fn split_validation(text: &str, val_fraction: f32) -> (String, String) {
    let chars = text.chars().count();
    let val =
        ((chars as f64 * val_fraction.clamp(0.0, 1.0) as f64) as usize).clamp(1, chars.max(1));
    let cut = chars.saturating_sub(val);
    let at = text.char_indices().nth(cut).map_or(text.len(), |c| c.0);
    (text[..at].to_string(), text[at..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Windows file (a byte-order mark, `\r\n` line ends) reads as the same text saved on
    /// Linux; a lone `\r` is kept.
    #[test]
    fn a_windows_text_reads_as_its_unix_copy() {
        let t = decode_text("\u{feff}ROMEO:\r\nBut soft!\r\n".into(), "t").unwrap();
        assert_eq!(t, "ROMEO:\nBut soft!\n");
        let t = decode_text("a\rb\n".into(), "t").unwrap();
        assert_eq!(t, "a\rb\n");
        // a file of only a byte-order mark has no text
        let e = decode_text("\u{feff}".into(), "t").unwrap_err().to_string();
        assert!(e.contains("only a byte-order mark"), "{e}");
    }

    /// A model trained before line ends were read away reads its files as written, whatever
    /// its vocabulary (its `--val` file may have held them and its training text not), so that
    /// a resume knows them and an evaluation scores what it learned (the second review,
    /// 2026-12-07: a vocabulary holding `\r` or a BOM decided it, wrong both ways).
    #[test]
    fn a_model_trained_before_reads_its_files_as_written() {
        let path = std::env::temp_dir().join(format!("lstm-crlf-{}.txt", std::process::id()));
        std::fs::write(&path, "\u{feff}a b\r\nc\r\n").unwrap();
        let old = Vocab::chars_from("a b\nc\n");
        let mut new = Vocab::chars_from("\u{feff}a b\r\nc\r\n");
        new.line_ends_read = true;
        assert_eq!(
            read_text_for(&path, Some(&old)).unwrap(),
            "\u{feff}a b\r\nc\r\n"
        );
        assert_eq!(read_text_for(&path, Some(&new)).unwrap(), "a b\nc\n");
        assert_eq!(read_text(&path).unwrap(), "a b\nc\n");
        std::fs::remove_file(&path).unwrap();
    }
}
