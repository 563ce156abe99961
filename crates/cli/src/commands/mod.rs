pub mod bench;
pub mod bonds;
pub mod convert;
pub mod eval;
pub mod info;
pub mod predict;
pub mod train;

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

pub use minima_train::progress_bar as progress;
