//! Readers and writers for minima: extxyz (ASE's conventions) and QM9's original layout.

mod atomic;
mod error;
pub mod extxyz;
pub mod keyval;
pub mod line;
mod lock;
pub mod number;
pub mod process;
pub mod progress;
pub mod qm9;

pub use atomic::{commit, is_special, temporary_sibling, write_atomic};
pub use error::{clip, excerpt, ReadError, EXCERPT_CHARS};
pub use lock::OutputLock;

/// The file `stem` + `suffix` (`out/run1.5` + `.json` = `out/run1.5.json`): an output stem
/// names files by appending, where `Path::with_extension` would cut the stem at its last dot.
pub fn with_suffix(stem: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = stem.as_os_str().to_os_string();
    name.push(suffix);
    name.into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_suffix_is_appended_to_a_stem_that_holds_a_dot() {
        let path = super::with_suffix(std::path::Path::new("out/eval.tmp_relax"), ".json");
        assert_eq!(path, std::path::Path::new("out/eval.tmp_relax.json"));
    }
}
