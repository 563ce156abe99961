//! `minima bench-relax`: the re-optimisation benchmark of the physics-transformer paper
//! (section 4.3): perturb equilibrium molecules, relax, report ΔP and ΔE_g.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use minima_atoms::Atoms;
use minima_explore::benchmark::{reoptimize, select_molecules, ReoptimizationSummary};
use minima_explore::FrameFailures;
use minima_label::Calculator;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    calculator: super::CalculatorArgs,
    /// Equilibrium molecules: QM9 (archive or folder) or extxyz.
    #[arg(short, long)]
    input: PathBuf,
    #[command(flatten)]
    settings: Settings,
    /// Output stem: STEM.json (every molecule and the summary), STEM.svg/.png (distributions).
    #[arg(short, long, default_value = "bench_relax")]
    output: PathBuf,
}

/// What the benchmark does; `minima eval --relax` takes the same options.
#[derive(clap::Args)]
pub struct Settings {
    /// The smallest molecules taken (the paper: 128) …
    #[arg(long, default_value_t = 128)]
    smallest: usize,
    /// … and this many more drawn at random from the rest (the paper: 128).
    #[arg(long, default_value_t = 128)]
    random: usize,
    /// Standard deviation of the Gaussian displacement of each coordinate (Å).
    #[arg(long, default_value_t = 0.05)]
    sigma: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    relax: super::BenchmarkRelaxArgs,
}

pub fn run(args: Args) -> Result<()> {
    let calculator = args.calculator.load_one()?;
    let molecules = minima_data::read_frames(&args.input)?;
    let source = args.input.display().to_string();
    let _lock = super::lock_output(&minima_io::with_suffix(&args.output, ".json"))?;
    let (summary, failures) = benchmark_frames(calculator.as_ref(), &molecules, &source, &args.settings, &args.output)?;
    let succeeded = summary["molecules"].as_u64().unwrap_or_default() as usize;
    super::finish_frames(
        &args.input,
        &failures,
        succeeded,
        &args.output,
        &minima_io::with_suffix(&args.output, ".json"),
    )
}

/// Runs the benchmark on `molecules` (read from `source`), prints its table, writes
/// OUTPUT.json and the distributions' figure, and returns the summary (the JSON without the
/// per-molecule records). Molecules the calculator could not treat are left out, listed in
/// the summary's `failed` and in `OUTPUT.failed`.
pub fn benchmark(
    calculator: &dyn Calculator,
    molecules: &[Atoms],
    source: &str,
    args: &Settings,
    output: &Path,
) -> Result<serde_json::Value> {
    let (summary, failures) = benchmark_frames(calculator, molecules, source, args, output)?;
    failures.write_beside(output)?;
    Ok(summary)
}

/// [`benchmark`], with the molecules that failed.
fn benchmark_frames(
    calculator: &dyn Calculator,
    molecules: &[Atoms],
    source: &str,
    args: &Settings,
    output: &Path,
) -> Result<(serde_json::Value, FrameFailures)> {
    let chosen = select_molecules(molecules, args.smallest, args.random, args.seed);
    let options = args.relax.options();
    let bar = super::progress(chosen.len() as u64, "bench-relax");
    let (records, failures) = reoptimize(calculator, molecules, &chosen, args.sigma, args.seed, &options, |r| {
        bar.set_message(format!("{} ΔP {:.3} Å", r.formula, r.delta_p));
        bar.inc(1);
    });
    bar.finish_and_clear();
    let settings = (args.sigma, args.seed, args.smallest);
    let found = ReoptimizationSummary::of(
        calculator.name(),
        source,
        settings,
        &options,
        &records,
        failures.clone(),
    );
    report!("{}", found.table().trim_end());
    let summary = serde_json::to_value(&found)?;
    let mut report = summary.clone();
    report["molecules"] = serde_json::to_value(&records)?;
    let text = serde_json::to_string_pretty(&report)?;
    let json_path = minima_io::with_suffix(output, ".json");
    minima_io::write_atomic(&json_path, |w| std::io::Write::write_all(w, text.as_bytes()))
        .with_context(|| format!("{}: cannot write", json_path.display()))?;
    let Some(figure) = found.figure(&records) else {
        // Nothing to draw: every molecule failed.
        return Ok((summary, failures));
    };
    let [svg, png] = figure.save(output)?;
    report!("{} → {}, {}", json_path.display(), svg.display(), png.display());
    Ok((summary, failures))
}
