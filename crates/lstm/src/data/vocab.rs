//! Vocabularies: characters or words to token ids and back, with one reserved unknown token.
//!
//! The rule wherever a vocabulary meets text it was not built from: an unknown character or
//! word becomes the unknown token ([`Vocab::unk`]) as *input*, and is *skipped* as a target
//! (its target is [`crate::model::loss::IGNORE`]), so it never counts in a loss or metric.
//!
//! ```
//! use lstm::data::vocab::Vocab;
//! let v = Vocab::chars_from("abca");
//! assert_eq!(v.len(), 4); // a, b, c and the unknown token
//! assert_eq!(v.encode_input("abz"), vec![0, 1, v.unk()]);
//! assert_eq!(v.decode(&[2, 0]), "ca");
//! ```

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::model::loss::IGNORE;

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// One Unicode scalar value per token.
    Char,
    /// Lower-cased words and single punctuation marks.
    Word,
}

/// A vocabulary: token strings in id order; the last id is the unknown token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vocab {
    /// Char or word tokens.
    pub kind: TokenKind,
    /// Token strings by id, without the unknown token (which is `tokens.len()`).
    pub tokens: Vec<String>,
    /// A text model's: its files are read with a leading byte-order mark dropped and `\r\n` as
    /// `\n` (since 2026-12-07; false in model directories written before, whose files are read
    /// as written, as they trained: see [`crate::data::text::read_text_for`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub line_ends_read: bool,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

/// Marker printed for the unknown token when decoding.
pub const UNK_TEXT: &str = "\u{fffd}";

impl Vocab {
    /// A vocabulary from token strings (sorted, unique) of the given kind.
    pub fn new(kind: TokenKind, tokens: Vec<String>) -> Vocab {
        let mut v = Vocab {
            kind,
            tokens,
            line_ends_read: false,
            index: HashMap::new(),
        };
        v.rebuild_index();
        v
    }

    /// Rebuilds the lookup table (after deserialising).
    pub fn rebuild_index(&mut self) {
        self.index = self
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
    }

    /// Every distinct character of `text`, sorted.
    pub fn chars_from(text: &str) -> Vocab {
        // the distinct characters, sorted (not every character of the text in a vector)
        let set: std::collections::BTreeSet<char> = text.chars().collect();
        Vocab::new(TokenKind::Char, set.into_iter().map(String::from).collect())
    }

    /// The words of `texts` seen at least `min_count` times, the `max_size` most frequent
    /// (ties broken alphabetically).
    pub fn words_from<'a>(
        texts: impl Iterator<Item = &'a str>,
        min_count: usize,
        max_size: usize,
    ) -> Vocab {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for t in texts {
            for w in split_words(t) {
                *counts.entry(w).or_default() += 1;
            }
        }
        let mut words: Vec<(String, usize)> = counts
            .into_iter()
            .filter(|(_, c)| *c >= min_count)
            .collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        words.truncate(max_size);
        let mut tokens: Vec<String> = words.into_iter().map(|(w, _)| w).collect();
        tokens.sort();
        Vocab::new(TokenKind::Word, tokens)
    }

    /// Number of ids, the unknown token included.
    pub fn len(&self) -> usize {
        self.tokens.len() + 1
    }

    /// Always false: there is at least the unknown token.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Id of the unknown token.
    pub fn unk(&self) -> u32 {
        self.tokens.len() as u32
    }

    /// Id of a token string, if known.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.index.get(token).copied()
    }

    /// Splits text into this vocabulary's token strings.
    pub fn split(&self, text: &str) -> Vec<String> {
        match self.kind {
            TokenKind::Char => text.chars().map(String::from).collect(),
            TokenKind::Word => split_words(text),
        }
    }

    /// Ids of `text` as input: unknown tokens become [`Self::unk`].
    pub fn encode_input(&self, text: &str) -> Vec<u32> {
        self.encode_with(text, self.unk())
    }

    /// Ids of `text` as targets: unknown tokens become [`IGNORE`].
    pub fn encode_targets(&self, text: &str) -> Vec<u32> {
        self.encode_with(text, IGNORE)
    }

    /// Ids of `text`, `missing` for a token not in the vocabulary. Characters are looked up
    /// one by one, not split into strings first (a probe, 2026-12-07: a string per character
    /// took 60 bytes a character, 6 GB for a 100 MB text).
    fn encode_with(&self, text: &str, missing: u32) -> Vec<u32> {
        match self.kind {
            TokenKind::Char => {
                let mut buf = [0u8; 4];
                text.chars()
                    .map(|c| self.id(c.encode_utf8(&mut buf)).unwrap_or(missing))
                    .collect()
            }
            TokenKind::Word => split_words(text)
                .iter()
                .map(|t| self.id(t).unwrap_or(missing))
                .collect(),
        }
    }

    /// Text of ids (words joined by spaces); the unknown token prints as U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let parts = ids.iter().map(|&i| {
            self.tokens
                .get(i as usize)
                .map(|s| s.as_str())
                .unwrap_or(UNK_TEXT)
        });
        match self.kind {
            TokenKind::Char => parts.collect(),
            TokenKind::Word => parts.collect::<Vec<_>>().join(" "),
        }
    }
}

/// Lower-cased words (letters, digits, apostrophes inside a word) and single punctuation
/// marks; whitespace separates.
pub fn split_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in text.chars() {
        if ch.is_alphanumeric() || (ch == '\'' && !cur.is_empty()) {
            cur.extend(ch.to_lowercase());
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur).trim_end_matches('\'').to_string());
            }
            if !ch.is_whitespace() {
                out.push(ch.to_string());
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur.trim_end_matches('\'').to_string());
    }
    out.retain(|w| !w.is_empty());
    out
}
