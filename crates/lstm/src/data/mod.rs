//! Data: vocabularies, delimited files, and the readers of the three jobs' inputs (text, series
//! tables, labelled texts), with the series transforms and scaling.
//!
//! Imports only the layers below it (kernels to model); knows nothing of training.

pub mod labelled;
pub mod panel;
pub mod series;
pub(crate) mod tabular;
pub mod text;
pub mod vocab;

/// How many of `n` units (characters of a text, rows of a table) the last fraction `t` covers:
/// at least `min`, at most `n`. Training's `--tail` and `lstm eval --tail` both count with it, so
/// the rows one leaves out are the rows the other scores.
pub fn tail_units(n: usize, t: f64, min: usize) -> usize {
    ((n as f64 * t) as usize).max(min).min(n)
}

/// A data file's content, by its length and its 64-bit FNV-1a hash (`"<bytes>:<hex>"`): how
/// `lstm eval` recognises the file a model was trained on, whatever its name.
pub fn fingerprint(bytes: &[u8]) -> String {
    format!("{}:{:016x}", bytes.len(), fnv1a(bytes))
}

/// The 64-bit FNV-1a hash of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_values() {
        // the published FNV-1a 64 test vectors (Fowler, Noll, Vo: "", "a", "foobar")
        assert_eq!(fingerprint(b""), "0:cbf29ce484222325");
        assert_eq!(fingerprint(b"a"), "1:af63dc4c8601ec8c");
        assert_eq!(fingerprint(b"foobar"), "6:85944171f73967e8");
    }

    #[test]
    fn tail_counts() {
        assert_eq!(tail_units(100, 0.1, 1), 10);
        assert_eq!(tail_units(5, 0.1, 2), 2);
        assert_eq!(tail_units(3, 1.0, 1), 3);
        assert_eq!(tail_units(1, 0.5, 2), 1);
    }
}
