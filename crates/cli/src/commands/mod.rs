pub mod assemble;
pub mod bench;
pub mod bench_relax;
pub mod bonds;
pub mod contributions;
pub mod convert;
pub mod curve;
pub mod data;
pub mod eval;
pub mod info;
pub mod label;
pub mod pairs;
pub mod predict;
pub mod relax;
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

/// Where energies and forces come from: a trained model, a reference calculator, or (for
/// commands that compare them) both.
#[derive(clap::Args)]
pub struct CalculatorArgs {
    /// Trained model checkpoint (`best.safetensors` of a run, its `.toml` beside it).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Reference calculator: emt, xtb or cp2k (in place of a model, or beside it where the
    /// command compares them).
    #[arg(long, visible_alias = "calculator")]
    pub reference: Option<String>,
    /// cpu, cuda or cuda:N (models).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// libtorch intra-op threads (models).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

impl CalculatorArgs {
    /// The model and the reference that were asked for, model first; at least one.
    pub fn load(&self) -> Result<Vec<Box<dyn minima_label::Calculator>>> {
        let mut calculators: Vec<Box<dyn minima_label::Calculator>> = Vec::new();
        if let Some(path) = &self.model {
            minima_model::configure_threads(self.threads);
            let device = minima_model::parse_device(&self.device)?;
            calculators.push(Box::new(minima_train::ModelCalculator::load(path, device)?));
        }
        if let Some(name) = &self.reference {
            calculators.push(minima_label::calculator_by_name(name, &Default::default())?);
        }
        if calculators.is_empty() {
            anyhow::bail!("give --model CHECKPOINT, --reference CALCULATOR (emt, xtb, cp2k), or both");
        }
        Ok(calculators)
    }

    /// Exactly one calculator: the model, else the reference.
    pub fn load_one(&self) -> Result<Box<dyn minima_label::Calculator>> {
        if self.model.is_some() && self.reference.is_some() {
            anyhow::bail!("give either --model or --reference/--calculator, not both");
        }
        Ok(self.load()?.remove(0))
    }
}

/// Frame `index` of an extxyz file, or molecule `index` (0-based) of QM9 in its original layout.
pub fn read_frame(path: &Path, index: usize) -> Result<Atoms> {
    if minima_data::is_qm9_layout(path) {
        let mut frames = minima_data::read_frames(path)?;
        let count = frames.len();
        anyhow::ensure!(
            index < count,
            "{}: frame {index} asked for, it holds {count}",
            path.display()
        );
        return Ok(frames.swap_remove(index));
    }
    let mut count = 0;
    for frame in ExtxyzReader::open(path)? {
        let frame = frame?;
        if count == index {
            return Ok(frame);
        }
        count += 1;
    }
    anyhow::bail!("{}: frame {index} asked for, the file has {count}", path.display())
}

/// How the benchmark commands relax each molecule (tighter than `relax`'s defaults, as the
/// paper's re-optimisation asks for recovered minima).
#[derive(clap::Args)]
pub struct BenchmarkRelaxArgs {
    /// Converged when every atomic force is below this (eV/Å).
    #[arg(long, default_value_t = 0.01)]
    fmax: f64,
    /// fire (as ASE's) or lbfgs (More–Thuente line search).
    #[arg(long, default_value = "fire")]
    optimizer: minima_explore::Optimizer,
    /// Step limit per molecule.
    #[arg(long, default_value_t = 500)]
    steps: usize,
}

impl BenchmarkRelaxArgs {
    pub fn options(&self) -> minima_explore::RelaxOptions {
        minima_explore::RelaxOptions {
            optimizer: self.optimizer,
            fmax: self.fmax,
            steps: self.steps,
            ..Default::default()
        }
    }
}
