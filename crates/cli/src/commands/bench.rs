//! `minima bench …`: speed and memory measured on this machine, never asserted in tests.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;

#[derive(clap::Subcommand)]
pub enum Bench {
    /// Neighbour list of periodic fcc Cu crystals (a = 3.61 Å) on one core.
    Neighbors {
        /// Approximate atom counts to measure (each rounded to whole cubic cells).
        #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
        atoms: Vec<usize>,
        /// Cutoff (Å).
        #[arg(long, default_value_t = 5.0)]
        cutoff: f64,
        /// Timed repetitions per size; the fastest and the median are reported.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// Energy + forces throughput and training-step time of the architectures (default: MPNN
    /// and VIMPNN at the paper's sizes, hidden 73, T = 3, f32) on QM9 molecules.
    Model(ModelArgs),
    /// EMT energy + forces of a rattled periodic fcc Cu cell (`python/bench_emt_vs_ase.py`
    /// times ASE's EMT on the same cell and reports the ratio).
    Emt {
        /// Cubic cells along x, y, z (4 atoms each; 5,5,10 = 1,000 atoms).
        #[arg(long, value_delimiter = ',', default_value = "5,5,10")]
        cells: Vec<usize>,
        /// Or a structure file instead (first frame).
        #[arg(short, long)]
        input: Option<PathBuf>,
        /// Write the benchmarked structure here (extxyz), for the comparison with ASE.
        #[arg(long)]
        write: Option<PathBuf>,
        /// Thread counts to measure (the structure's pairs split over them).
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        threads: Vec<usize>,
        #[arg(long, default_value_t = 20)]
        repeat: usize,
    },
}

#[derive(clap::Args)]
pub struct ModelArgs {
    /// Architectures by `[model] kind`: mpnn, vimpnn, transformer, painn (painn needs
    /// --cutoff).
    #[arg(long, value_delimiter = ',', default_value = "mpnn,vimpnn")]
    kinds: Vec<String>,
    /// libtorch intra-op thread counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Molecules per inference batch.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Molecules per training batch (the paper's 20).
    #[arg(long, default_value_t = 20)]
    train_batch: usize,
    /// Molecules predicted per measurement.
    #[arg(long, default_value_t = 1280)]
    molecules: usize,
    /// QM9 (archive or directory) or an extxyz file with energies (not with --atoms).
    #[arg(long, required_unless_present = "atoms")]
    data: Option<PathBuf>,
    /// Edge cutoff, Å; absent: every pair of a molecule (the paper's MPNN graph), 6 Å for
    /// --atoms.
    #[arg(long)]
    cutoff: Option<f64>,
    /// In place of molecules: rattled periodic fcc Cu crystals of about these many atoms, one
    /// energy + forces + stress call each (untrained models: speed and memory do not depend
    /// on the weights), with the graph's time, the model's time, peak RSS and the path taken
    /// (whole, edge chunks or domains).
    #[arg(long, value_delimiter = ',', conflicts_with = "data")]
    atoms: Option<Vec<usize>>,
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn run(bench: Bench) -> Result<()> {
    match bench {
        Bench::Neighbors { atoms, cutoff, repeat } => neighbors(&atoms, cutoff, repeat.max(1)),
        Bench::Model(args) => model(&args),
        Bench::Emt {
            cells,
            input,
            write,
            threads,
            repeat,
        } => emt(&cells, input.as_deref(), write.as_deref(), &threads, repeat.max(1)),
    }
}

fn neighbors(sizes: &[usize], cutoff: f64, repeat: usize) -> Result<()> {
    report!(
        "{:>10} {:>12} {:>10} {:>10} {:>14} {:>14}",
        "atoms",
        "edges",
        "best s",
        "median s",
        "edges MiB",
        "peak RSS MiB"
    );
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    let mut rows = Vec::new();
    for &target in sizes {
        let row = minima_explore::bench::neighbors(target, cutoff, repeat).map_err(anyhow::Error::msg)?;
        report!(
            "{:>10} {:>12} {:>10.3} {:>10.3} {:>14.1} {:>14}",
            row.atoms,
            row.edges,
            row.timing.best_s,
            row.timing.median_s,
            mib(row.edge_bytes),
            row.peak_rss_increase_bytes
                .map_or("n/a".to_string(), |p| format!("{:.1}", mib(p)))
        );
        rows.push(row);
    }
    if let [small, .., large] = rows.as_slice() {
        report!(
            "growth: atoms ×{:.2}, best time ×{:.2}",
            large.atoms as f64 / small.atoms as f64,
            large.timing.best_s / small.timing.best_s
        );
    }
    report!("{}", serde_json::to_string(&rows)?);
    Ok(())
}

fn model(args: &ModelArgs) -> Result<()> {
    let device = minima_model::parse_device(&args.device)?;
    let Some(data) = &args.data else {
        return crystals(args, args.atoms.as_deref().unwrap_or_default(), device);
    };
    // Evenly strided over the file, so that sizes follow the dataset's distribution.
    let all_frames = minima_data::read_frames(data)?;
    let stride = (all_frames.len() / args.molecules.max(args.batch)).max(1);
    let frames: Vec<_> = all_frames
        .into_iter()
        .step_by(stride)
        .take(args.molecules.max(args.batch))
        .collect();
    let spec = minima_data::GraphSpec { cutoff: args.cutoff };
    let samples = minima_data::samples_of(&frames, &data.display().to_string(), &spec, true, || {})?;
    let refs = minima_data::AtomRefs::fit(&samples.iter().collect::<Vec<_>>()).map_err(anyhow::Error::msg)?;
    let atoms: usize = samples.iter().map(|s| s.graph.len()).sum();
    let edges: usize = samples.iter().map(|s| s.graph.edge_count()).sum();
    report!(
        "{} molecules, {:.1} atoms and {:.0} edges each on average; device {}",
        samples.len(),
        atoms as f64 / samples.len() as f64,
        edges as f64 / samples.len() as f64,
        args.device
    );
    report!(
        "{:>8} {:>8} {:>22} {:>24}",
        "model",
        "threads",
        "energy+forces mol/s",
        "train step ms (batch)"
    );
    let measurement = minima_train::bench::Throughput {
        samples: &samples,
        refs: &refs,
        cutoff: args.cutoff,
        batch: args.batch,
        train_batch: args.train_batch,
        device,
    };
    for kind in &args.kinds {
        let kind = kind.parse().map_err(anyhow::Error::msg)?;
        for &threads in &args.threads {
            let row = measurement.measure(kind, threads)?;
            report!(
                "{:>8} {threads:>8} {:>22.0} {:>17.1} ({})",
                row.kind,
                row.molecules_per_s,
                row.step_ms,
                row.train_batch
            );
        }
    }
    Ok(())
}

/// `bench model --atoms`: one energy + forces + stress call per crystal size, kind and thread
/// count, as `minima predict` makes it.
fn crystals(args: &ModelArgs, sizes: &[usize], device: tch::Device) -> Result<()> {
    let cutoff = args.cutoff.unwrap_or(6.0);
    report!(
        "rattled fcc Cu (a = 3.61 Å, ±0.1 Å), cutoff {cutoff} Å, device {}",
        args.device
    );
    report!(
        "{:>12} {:>9} {:>8} {:>9} {:>10} {:>10} {:>9}  path",
        "model",
        "atoms",
        "threads",
        "graph s",
        "model s",
        "peak GB",
        "KB/atom"
    );
    for &size in sizes {
        let repeat = ((size as f64 / 4.0).cbrt().round() as usize).max(1);
        let crystal = rattled_copper([repeat; 3]);
        for kind in &args.kinds {
            let kind = kind.parse().map_err(anyhow::Error::msg)?;
            for &threads in &args.threads {
                let row = minima_train::bench::crystal(&crystal, kind, cutoff, threads, device)?;
                let peak = row.peak_bytes.unwrap_or(0) as f64;
                match &row.error {
                    None => report!(
                        "{:>12} {:>9} {threads:>8} {:>9.2} {:>10.2} {:>10.2} {:>9.1}  {}",
                        row.kind,
                        row.atoms,
                        row.graph_s,
                        row.model_s,
                        peak / 1e9,
                        peak / 1e3 / row.atoms as f64,
                        row.path
                    ),
                    Some(error) => report!("{:>12} {:>9} {threads:>8}  {error}", row.kind, row.atoms),
                }
            }
        }
    }
    Ok(())
}

fn emt(cells: &[usize], input: Option<&Path>, write: Option<&Path>, threads: &[usize], repeat: usize) -> Result<()> {
    let atoms = match input {
        Some(path) => minima_io::extxyz::read_all(path)?
            .into_iter()
            .next()
            .with_context(|| format!("{}: no frames", path.display()))?,
        None => {
            let [nx, ny, nz] = cells[..] else {
                bail!("--cells takes three counts, e.g. 5,5,10")
            };
            rattled_copper([nx, ny, nz])
        }
    };
    if let Some(path) = write {
        minima_io::extxyz::write_all(path, std::slice::from_ref(&atoms))?;
    }
    let mut rows = Vec::new();
    for &threads in threads {
        let row = minima_explore::bench::emt(&atoms, threads, repeat)?;
        report!(
            "EMT energy + forces, {} atoms, {threads} thread(s): best {:.3} ms, median {:.3} ms (E = {:.6} eV)",
            atoms.len(),
            row.timing.best_s * 1e3,
            row.timing.median_s * 1e3,
            row.energy
        );
        rows.push(row);
    }
    report!("{}", json!({"atoms": atoms.len(), "runs": rows}));
    Ok(())
}

/// fcc Cu (a = 3.61 Å) of `cells` cubic cells, every coordinate moved by up to 0.1 Å (seed 0).
fn rattled_copper(cells: [usize; 3]) -> minima_atoms::Atoms {
    minima_data::generate::rattled_fcc_block(29, 3.61, cells, 0.1, 0)
}
