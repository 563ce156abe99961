//! Readers and writers for minima: extxyz (ASE's conventions) and QM9's original layout.

mod atomic;
mod error;
pub mod extxyz;
pub mod keyval;
pub mod line;
mod lock;
pub mod number;
pub mod qm9;

pub use atomic::{commit, is_special, temporary_sibling, write_atomic};
pub use error::{clip, excerpt, ReadError, EXCERPT_CHARS};
pub use lock::OutputLock;

/// A progress bar on stderr with rate and ETA, for every long job (labelling, training,
/// prediction); indicatif hides it when stderr is not a terminal.
pub fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}
