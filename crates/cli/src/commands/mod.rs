pub mod bench;
pub mod bonds;
pub mod convert;
pub mod info;

use std::path::Path;

use anyhow::Result;
use minima_atoms::Atoms;
use minima_io::extxyz::ExtxyzReader;

/// Streams the frames of an extxyz file, stopping at the first error.
pub fn for_each_frame(path: &Path, mut f: impl FnMut(usize, Atoms) -> Result<()>) -> Result<()> {
    for (index, frame) in ExtxyzReader::open(path)?.enumerate() {
        f(index, frame?)?;
    }
    Ok(())
}

/// A progress bar on stderr with rate and ETA; hidden when stderr is not a terminal.
pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}
