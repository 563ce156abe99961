//! The frames a multi-frame run (relax, predict, the re-optimisation benchmark) could not
//! treat. One bad frame must not cost the others: the run writes what succeeded and lists the
//! rest in `OUTPUT.failed`, one `index<TAB>reason` line per frame, the format `minima label`
//! writes (see [`minima_label::run`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::ExploreError;

/// One frame that failed, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameFailure {
    /// Index in the input file (from 0).
    pub frame: usize,
    pub reason: String,
}

/// The frames of a run that failed, in the order they failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct FrameFailures(Vec<FrameFailure>);

impl FrameFailures {
    /// Records that `frame` failed; the reason is kept on one line, as the file holds one per frame.
    pub fn push(&mut self, frame: usize, reason: impl std::fmt::Display) {
        let reason = reason.to_string().replace(['\n', '\t', '\r'], " ");
        self.0.push(FrameFailure { frame, reason });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &FrameFailure> {
        self.0.iter()
    }

    /// Writes `OUTPUT.failed` beside `output` (atomically) and returns its path; with no
    /// failures, removes one an earlier run left, so that it never describes another run.
    pub fn write_beside(&self, output: &Path) -> Result<PathBuf, ExploreError> {
        let path = minima_label::run::failures_path(output);
        if self.is_empty() {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(ExploreError::write(&path)(e)),
                _ => return Ok(path),
            }
        }
        minima_io::write_atomic(&path, |w| {
            self.iter().try_for_each(|f| writeln!(w, "{}\t{}", f.frame, f.reason))
        })
        .map_err(ExploreError::write(&path))?;
        Ok(path)
    }

    /// One line for a report: the first few frames and reasons.
    pub fn summary(&self) -> String {
        const SHOWN: usize = 3;
        let mut text: Vec<String> = self
            .iter()
            .take(SHOWN)
            .map(|f| format!("frame {}: {}", f.frame, f.reason))
            .collect();
        if self.len() > SHOWN {
            text.push(format!("{} more", self.len() - SHOWN));
        }
        text.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_written_as_label_writes_them_and_a_stale_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("relaxed.extxyz");
        let mut failures = FrameFailures::default();
        failures.push(1, "EMT has no parameters for Fe");
        failures.push(4, "two\nlines\tand a tab");
        let path = failures.write_beside(&output).unwrap();
        assert_eq!(path, dir.path().join("relaxed.extxyz.failed"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "1\tEMT has no parameters for Fe\n4\ttwo lines and a tab\n"
        );
        assert_eq!(
            failures.summary(),
            "frame 1: EMT has no parameters for Fe; frame 4: two lines and a tab"
        );
        FrameFailures::default().write_beside(&output).unwrap();
        assert!(!path.exists());
    }
}
