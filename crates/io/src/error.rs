//! The one error type of every reader: it names the file, the frame and the line.

use std::fmt;

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
            message: message.into(),
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
