//! The one error type of every reader: it names the file, the frame and the line.

use std::fmt;

/// The most characters of the input an error message quotes ([`excerpt`]).
pub const EXCERPT_CHARS: usize = 100;

/// The longest message a [`ReadError`] carries: a message is built from short excerpts, so
/// only a fault in composing one reaches this, and it is cut rather than flooding stderr.
const MAX_MESSAGE_CHARS: usize = 1000;

/// Where in an input something went wrong, and what. Frames count from 0 (ASE's `index=`),
/// lines from 1 (as editors show them).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadError {
    pub source: String,
    pub frame: Option<usize>,
    pub line: Option<usize>,
    pub message: String,
}

impl ReadError {
    pub fn new(source: impl Into<String>, message: impl Into<String>) -> ReadError {
        ReadError {
            source: source.into(),
            frame: None,
            line: None,
            message: truncate(message.into(), MAX_MESSAGE_CHARS),
        }
    }

    pub fn at(mut self, frame: usize, line: usize) -> ReadError {
        self.frame = Some(frame);
        self.line = Some(line);
        self
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(frame) = self.frame {
            write!(f, ": frame {frame}")?;
        }
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ReadError {}

/// A piece of input as an error quotes it: Debug-quoted, at most [`EXCERPT_CHARS`] characters
/// of it, with the full length said when it is cut (a hostile field may be megabytes long).
pub fn excerpt(text: &str) -> String {
    match cut(text) {
        None => format!("{text:?}"),
        Some((head, count)) => format!("{head:?}… ({count} characters)"),
    }
}

/// A name from the input (a column's) as an error shows it: as written when short, else cut
/// like an [`excerpt`].
pub fn clip(text: &str) -> String {
    match cut(text) {
        None => text.to_string(),
        Some((head, count)) => format!("{head}… ({count} characters)"),
    }
}

/// The first [`EXCERPT_CHARS`] characters of `text` and its length, if it is longer.
fn cut(text: &str) -> Option<(&str, usize)> {
    let (end, _) = text.char_indices().nth(EXCERPT_CHARS)?;
    Some((&text[..end], text.chars().count()))
}

fn truncate(mut message: String, max_chars: usize) -> String {
    if let Some((cut, _)) = message.char_indices().nth(max_chars) {
        message.truncate(cut);
        message.push_str("… (message cut)");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_say_how_long_the_text_was() {
        assert_eq!(excerpt("Xx"), "\"Xx\"");
        let long = "é".repeat(5000);
        let quoted = excerpt(&long);
        assert!(quoted.chars().count() < EXCERPT_CHARS + 40, "{quoted}");
        assert!(quoted.ends_with("(5000 characters)"), "{quoted}");
        assert_eq!(clip("forces"), "forces");
        assert!(clip(&long).chars().count() < EXCERPT_CHARS + 40);
    }

    #[test]
    fn overlong_messages_are_cut() {
        let err = ReadError::new("f.xyz", "x".repeat(1 << 20));
        assert!(err.to_string().len() < MAX_MESSAGE_CHARS + 100);
    }
}
