//! Reading text files for the text job: UTF-8 checked, with the first bad byte named; the
//! validation split.

use std::path::Path;

use crate::error::{Error, Result};

/// Reads a UTF-8 text file for training or evaluation.
///
/// # Errors
/// [`Error::Io`] if it cannot be read (missing, no permission), [`Error::Format`] naming the
/// file if it is a directory, empty, or not UTF-8 (with the offset of the first bad byte).
pub fn read_text(path: &Path) -> Result<String> {
    let name = path.display().to_string();
    if path.is_dir() {
        return Err(Error::Format {
            path: name,
            reason: "is a directory; give a text file".into(),
        });
    }
    let bytes = std::fs::read(path).map_err(|source| crate::error::Error::read(&name, source))?;
    decode_text(bytes, &name)
}

/// Checks that `bytes` are non-empty UTF-8 text; `name` names them in errors.
///
/// # Errors
/// [`Error::Format`] if empty or not UTF-8 (with the offset of the first bad byte).
pub fn decode_text(bytes: Vec<u8>, name: &str) -> Result<String> {
    let fmt = |reason: String| Error::Format {
        path: name.to_string(),
        reason,
    };
    if bytes.is_empty() {
        return Err(fmt(
            "the file is empty; give a text file with some text in it".into(),
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
        fmt(format!(
            "not UTF-8 text: invalid byte at offset {}; {}",
            e.utf8_error().valid_up_to(),
            from.unwrap_or(
                "convert it to UTF-8 (e.g. `iconv -f WINDOWS-1252 -t UTF-8` for a Windows file)"
            )
        ))
    })
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
