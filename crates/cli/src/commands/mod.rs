/// Prints one line of a command's report on stdout (see [`print_report`]).
macro_rules! report {
    ($($arg:tt)*) => {
        $crate::commands::print_report(format_args!($($arg)*))
    };
}

pub mod assemble;
pub mod bench;
pub mod bench_minima;
pub mod bench_relax;
pub mod bonds;
pub mod contributions;
pub mod convert;
pub mod curve;
pub mod data;
pub mod eval;
pub mod info;
pub mod label;
pub mod learn;
pub mod md;
pub mod pairs;
pub mod predict;
pub mod relax;
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use minima_atoms::Atoms;
use minima_explore::FrameFailures;
use minima_io::extxyz::ExtxyzReader;

/// Prints one line of a command's report. The report only accompanies the command's output
/// files, which must be written whoever reads it: a reader that has gone (`| head`) is
/// ignored, and any other failure to print is a single warning on stderr, never a lost result.
pub fn print_report(line: std::fmt::Arguments) {
    use std::io::Write;
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let mut out = std::io::stdout().lock();
    let printed = out.write_fmt(line).and_then(|_| out.write_all(b"\n"));
    if let Err(e) = printed {
        if e.kind() != std::io::ErrorKind::BrokenPipe && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            eprintln!("warning: cannot print the report on stdout: {e}");
        }
    }
}

/// Holds the lock on `output` for the whole command, taken before any work so that a second
/// process on the same output, or an output that cannot be created, stops the run at once.
pub fn lock_output(output: &Path) -> Result<minima_io::OutputLock> {
    minima_io::OutputLock::acquire(output).with_context(|| format!("{}: cannot write", output.display()))
}

/// Writes `frames` to `path` (atomically), an error naming the path.
pub fn write_frames(path: &Path, frames: &[Atoms]) -> Result<()> {
    minima_io::extxyz::write_all(path, frames).with_context(|| format!("{}: cannot write", path.display()))
}

/// Ends a command that treats many frames of `input`, after what succeeded was written to
/// `written`: lists the failures in `OUTPUT.failed` beside `output` (removing a stale one when
/// none failed) and, when any did, fails naming them, so that the exit status says so.
pub fn finish_frames(
    input: &Path,
    failures: &FrameFailures,
    succeeded: usize,
    output: &Path,
    written: &Path,
) -> Result<()> {
    let listed = failures.write_beside(output)?;
    if failures.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "{}: {} of {} frames failed ({}); the {succeeded} others are in {}, each failure with its reason in {}",
        input.display(),
        failures.len(),
        failures.len() + succeeded,
        failures.summary(),
        written.display(),
        listed.display()
    )
}

/// Streams the frames of an extxyz file, stopping at the first error.
pub fn for_each_frame(path: &Path, mut f: impl FnMut(usize, Atoms) -> Result<()>) -> Result<()> {
    for (index, frame) in ExtxyzReader::open(path)?.enumerate() {
        f(index, frame?)?;
    }
    Ok(())
}

pub use minima_io::progress::task as progress;

/// A configuration file and `--set` overrides of its settings (`train`, `learn`).
#[derive(clap::Args)]
pub struct ConfigArgs {
    /// The configuration (TOML; see configs/).
    #[arg(long)]
    pub config: PathBuf,
    /// Override a setting, e.g. `--set train.max_epochs=20 --set model.vimpnn.combine=c`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// The options of every command that runs a trained model.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// Checkpoint (`best.safetensors` of a run; its `.toml` must lie beside it), a run folder,
    /// or a committee's folder. `predict` takes several (repeat `--model`) as a committee.
    #[arg(long, required = true)]
    pub model: Vec<PathBuf>,
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
    /// The one model of a command that takes one.
    pub fn load(&self) -> Result<minima_model::Potential> {
        let mut all = self.load_all()?;
        anyhow::ensure!(
            all.len() == 1,
            "this command takes one model; {} name {} checkpoints",
            self.model
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            all.len()
        );
        Ok(all.remove(0).1)
    }

    /// Every checkpoint `--model` names, with its file.
    pub fn load_all(&self) -> Result<Vec<(PathBuf, minima_model::Potential)>> {
        minima_model::configure_threads(self.threads);
        let device = minima_model::parse_device(&self.device)?;
        let mut all = Vec::new();
        for path in &self.model {
            for file in minima_model::checkpoints_of(path)? {
                let potential = minima_model::Potential::load(&file, device)?;
                all.push((file, potential));
            }
        }
        Ok(all)
    }
}

/// Where energies and forces come from: a trained model (or a committee of them), a reference
/// calculator, or (for commands that compare them) both.
#[derive(clap::Args)]
pub struct CalculatorArgs {
    /// Trained model checkpoint (`best.safetensors` of a run, its `.toml` beside it), a run
    /// folder, or a committee's folder. Repeated, or a committee's folder: the committee's
    /// mean, with its spread written as `forces_std` (per atom), `energy_std` and
    /// `max_force_std`.
    #[arg(long)]
    pub model: Vec<PathBuf>,
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
        if self.has_model() {
            minima_model::configure_threads(self.threads);
            let device = minima_model::parse_device(&self.device)?;
            calculators.push(Box::new(minima_model::Committee::load(&self.model, device)?));
        }
        if let Some(name) = &self.reference {
            calculators.push(minima_label::calculator_by_name(name, &Default::default())?);
        }
        if calculators.is_empty() {
            anyhow::bail!("give --model CHECKPOINT, --reference CALCULATOR (emt, xtb, cp2k), or both");
        }
        Ok(calculators)
    }

    pub fn has_model(&self) -> bool {
        !self.model.is_empty()
    }

    /// Exactly one calculator: the model, else the reference.
    pub fn load_one(&self) -> Result<Box<dyn minima_label::Calculator>> {
        if self.has_model() && self.reference.is_some() {
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
