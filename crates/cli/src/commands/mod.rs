pub mod bench;
pub mod bonds;
pub mod convert;
pub mod data;
pub mod eval;
pub mod info;
pub mod label;
pub mod predict;
pub mod train;

use std::path::{Path, PathBuf};

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

/// The options of every command that runs a trained model.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// Checkpoint (`best.safetensors` of a run; its `.toml` must lie beside it).
    #[arg(long)]
    pub model: PathBuf,
    /// Structures per batch.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// libtorch intra-op threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

impl ModelArgs {
    pub fn load(&self) -> Result<minima_model::Potential> {
        minima_model::configure_threads(self.threads);
        let device = minima_model::parse_device(&self.device)?;
        Ok(minima_model::Potential::load(&self.model, device)?)
    }
}
