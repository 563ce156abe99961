//! `minima bench …`: speed and memory measured on this machine, never asserted in tests.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use minima_atoms::build::fcc_supercell;
use minima_neighbors::neighbor_list;
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
    let mut rows = Vec::new();
    for &target in sizes {
        let reps = ((target as f64 / 4.0).cbrt().round() as usize).max(1);
        // The crystal itself must fit before the search can estimate its own needs.
        let atoms = 4.0 * (reps as f64).powi(3);
        let crystal_bytes = atoms * (std::mem::size_of::<minima_atoms::Vec3>() * 4) as f64;
        let budget = minima_neighbors::memory_budget()?;
        if crystal_bytes > budget as f64 {
            bail!(
                "--atoms {target}: a crystal of {atoms:.0} atoms needs about {:.1} GiB before its search, over the \
                 {:.1} GiB budget ({}); measure fewer atoms",
                crystal_bytes / (1u64 << 30) as f64,
                budget as f64 / (1u64 << 30) as f64,
                minima_neighbors::MEMORY_BUDGET_VARIABLE
            );
        }
        let crystal = fcc_supercell(29, 3.61, reps);
        let mut times = Vec::with_capacity(repeat);
        let mut edges = 0;
        let mut edge_bytes = 0;
        let mut peak_delta = None;
        for _ in 0..repeat {
            let before = minima_io::process::reset_peak_rss();
            let start = Instant::now();
            let list = neighbor_list(&crystal, cutoff)?;
            times.push(start.elapsed().as_secs_f64());
            peak_delta = minima_io::process::peak_rss()
                .zip(before)
                .map(|(peak, base)| peak.saturating_sub(base));
            edges = list.len();
            edge_bytes = list.heap_bytes();
        }
        if edges == 0 {
            bail!("no neighbours found: cutoff {cutoff} Å is below the Cu–Cu distance");
        }
        let (best, median) = best_and_median(times);
        let mib = |b: usize| b as f64 / (1 << 20) as f64;
        report!(
            "{:>10} {:>12} {:>10.3} {:>10.3} {:>14.1} {:>14}",
            crystal.len(),
            edges,
            best,
            median,
            mib(edge_bytes),
            peak_delta.map_or("n/a".to_string(), |p| format!("{:.1}", mib(p)))
        );
        rows.push(json!({
            "atoms": crystal.len(), "cutoff": cutoff, "edges": edges, "best_s": best, "median_s": median,
            "edge_bytes": edge_bytes, "peak_rss_increase_bytes": peak_delta,
        }));
    }
    if let [small, .., large] = rows.as_slice() {
        let ratio = |key: &str| large[key].as_f64().unwrap_or(0.0) / small[key].as_f64().unwrap_or(1.0);
        report!(
            "growth: atoms ×{:.2}, best time ×{:.2}",
            ratio("atoms"),
            ratio("best_s")
        );
    }
    report!("{}", serde_json::to_string(&rows)?);
    Ok(())
}

/// The fastest and the median of repeated timings (at least one).
fn best_and_median(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[0], times[times.len() / 2])
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
    for kind in &args.kinds {
        let mut config = minima_train::RunConfig::default();
        config.model.kind = kind.parse().map_err(anyhow::Error::msg)?;
        if config.model.kind == minima_model::ModelKind::Vimpnn {
            // Its training step as the paper's, with the auxiliary heads (α = 0.3).
            config.train.loss.insert("aux".into(), 0.3);
        }
        config.model.cutoff = args.cutoff;
        config.model.elements = refs.elements.clone();
        // QM9 equilibrium frames record no scale; the other heads cost the same.
        config.model.aux.scale = false;
        for &threads in &args.threads {
            minima_model::configure_threads(threads);
            let potential = minima_model::Potential::new(config.model.clone(), refs.clone(), device, 0)?;
            let all: Vec<&minima_data::Sample> = samples.iter().collect();
            // One untimed pass (thread pool, allocator caches for every batch shape), then timed.
            minima_model::predict_samples(&potential, &all, args.batch, true)?;
            let start = Instant::now();
            minima_model::predict_samples(&potential, &all, args.batch, true)?;
            let throughput = all.len() as f64 / start.elapsed().as_secs_f64();
            let mut adam = minima_train::adam::Adam::new(potential.var_store(), 1e-4);
            let batches: Vec<&[minima_data::Sample]> = samples.chunks(args.train_batch).collect();
            let steps = batches.len().min(20);
            minima_train::trainer::training_step(&potential, &config, batches[0], &mut adam)?;
            let start = Instant::now();
            for batch in &batches[..steps] {
                minima_train::trainer::training_step(&potential, &config, batch, &mut adam)?;
            }
            let step_ms = 1e3 * start.elapsed().as_secs_f64() / steps as f64;
            report!(
                "{kind:>8} {threads:>8} {throughput:>22.0} {step_ms:>17.1} ({})",
                args.train_batch
            );
        }
    }
    Ok(())
}

/// `bench model --atoms`: one energy + forces + stress call per crystal size, kind and thread
/// count, as `minima predict` makes it.
fn crystals(args: &ModelArgs, sizes: &[usize], device: tch::Device) -> Result<()> {
    let cutoff = args.cutoff.unwrap_or(6.0);
    let refs = minima_data::AtomRefs {
        elements: vec![29],
        energies: vec![-3.5],
        scale: 1.0,
    };
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
        let crystal = rattled_copper(repeat, repeat, repeat);
        for kind in &args.kinds {
            let mut config = minima_model::ModelConfig {
                kind: kind.parse().map_err(anyhow::Error::msg)?,
                cutoff: Some(cutoff),
                elements: vec![29],
                ..minima_model::ModelConfig::default()
            };
            config.aux.scale = false;
            for &threads in &args.threads {
                minima_model::configure_threads(threads);
                let potential = minima_model::Potential::new(config.clone(), refs.clone(), device, 0)?;
                let base = minima_io::process::reset_peak_rss().unwrap_or(0);
                let start = Instant::now();
                let (graph_s, path, result) = match minima_model::inference::domains_for(&potential, &crystal, None)? {
                    Some(size) => (
                        0.0,
                        format!("domains of ≤ {size} atoms"),
                        minima_model::inference::predict_in_domains(&potential, &crystal, size).map(|_| ()),
                    ),
                    None => {
                        let graph =
                            minima_data::Graph::build(&crystal, &config.graph_spec()).map_err(anyhow::Error::msg)?;
                        let graph_s = start.elapsed().as_secs_f64();
                        let path = match minima_model::inference::plan_batch(&potential, &[&graph], true, &|| {
                            "the crystal".into()
                        }) {
                            Ok(minima_model::inference::Plan::Whole) => "whole".to_string(),
                            Ok(minima_model::inference::Plan::Chunked(edges)) => format!("chunks of {edges} edges"),
                            Err(_) => "refused".to_string(),
                        };
                        (
                            graph_s,
                            path,
                            minima_model::predict_graphs(&potential, &[&graph], true).map(|_| ()),
                        )
                    }
                };
                let total = start.elapsed().as_secs_f64();
                let peak = minima_io::process::peak_rss().unwrap_or(base) as f64;
                match result {
                    Ok(()) => report!(
                        "{kind:>12} {:>9} {threads:>8} {graph_s:>9.2} {:>10.2} {:>10.2} {:>9.1}  {path}",
                        crystal.len(),
                        total - graph_s,
                        peak / 1e9,
                        peak / 1e3 / crystal.len() as f64
                    ),
                    Err(error) => report!("{kind:>12} {:>9} {threads:>8}  {error}", crystal.len()),
                }
            }
        }
    }
    Ok(())
}

fn emt(cells: &[usize], input: Option<&Path>, write: Option<&Path>, threads: &[usize], repeat: usize) -> Result<()> {
    use minima_label::Calculator;
    let atoms = match input {
        Some(path) => minima_io::extxyz::read_all(path)?
            .into_iter()
            .next()
            .with_context(|| format!("{}: no frames", path.display()))?,
        None => {
            let [nx, ny, nz] = cells[..] else {
                bail!("--cells takes three counts, e.g. 5,5,10")
            };
            rattled_copper(nx, ny, nz)
        }
    };
    if let Some(path) = write {
        minima_io::extxyz::write_all(path, std::slice::from_ref(&atoms))?;
    }
    let mut results = Vec::new();
    for &threads in threads {
        let emt = minima_label::Emt::with_threads(threads);
        let mut times = Vec::with_capacity(repeat);
        let mut energy = 0.0;
        for _ in 0..repeat {
            let start = Instant::now();
            energy = emt.calculate(&atoms)?.energy;
            times.push(start.elapsed().as_secs_f64());
        }
        let (best, median) = best_and_median(times);
        report!(
            "EMT energy + forces, {} atoms, {threads} thread(s): best {:.3} ms, median {:.3} ms (E = {energy:.6} eV)",
            atoms.len(),
            best * 1e3,
            median * 1e3
        );
        results.push(json!({"threads": threads, "best_s": best, "median_s": median, "energy": energy}));
    }
    report!("{}", json!({"atoms": atoms.len(), "runs": results}));
    Ok(())
}

/// fcc Cu (a = 3.61 Å) of nx × ny × nz cubic cells, every atom displaced by up to 0.1 Å
/// (seed 0) so that forces are not zero by symmetry.
fn rattled_copper(nx: usize, ny: usize, nz: usize) -> minima_atoms::Atoms {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut crystal = minima_atoms::build::fcc_block(29, 3.61, [nx, ny, nz]);
    let rattled = crystal
        .positions()
        .iter()
        .map(|r| r.map(|c| c + rng.random_range(-0.1..0.1)))
        .collect();
    crystal.set_positions(rattled).expect("finite positions");
    crystal
}
