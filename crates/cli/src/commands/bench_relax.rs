//! `minima bench-relax`: the re-optimisation benchmark of the physics-transformer paper
//! (section 4.3): perturb equilibrium molecules, relax, report ΔP and ΔE_g.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use minima_atoms::Atoms;
use minima_explore::benchmark::{cumulative, reoptimize, select_molecules, Spread};
use minima_explore::plot::{Figure, Style};
use minima_explore::FrameFailures;
use minima_label::Calculator;
use serde_json::json;

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
    let delta_p: Vec<f64> = records.iter().map(|r| r.delta_p).collect();
    let delta_e: Vec<f64> = records.iter().map(|r| r.delta_e.abs()).collect();
    let start: Vec<f64> = records.iter().map(|r| r.start_displacement).collect();
    let converged = records
        .iter()
        .filter(|r| r.stop == minima_explore::Stop::Converged)
        .count();
    let below = delta_p.iter().filter(|&&p| p < 0.1).count();
    let (p, e, s) = (Spread::of(&delta_p), Spread::of(&delta_e), Spread::of(&start));
    report!(
        "{} molecules ({} smallest + {} random), {} converged to fmax {} eV/Å with {}",
        records.len(),
        args.smallest.min(records.len()),
        records.len().saturating_sub(args.smallest),
        converged,
        options.fmax,
        calculator.name()
    );
    report!("{:>22} {:>10} {:>10} {:>10} {:>10}", "", "mean", "median", "90%", "max");
    for (name, spread) in [("start displacement Å", s), ("ΔP Å", p), ("|ΔE_g| eV", e)] {
        report!(
            "{name:>22} {:>10.4} {:>10.4} {:>10.4} {:>10.4}",
            spread.mean,
            spread.median,
            spread.p90,
            spread.max
        );
    }
    report!("ΔP < 0.1 Å: {below} of {}", records.len());
    let summary = json!({
        "calculator": calculator.name(), "input": source, "sigma": args.sigma, "seed": args.seed,
        "fmax": options.fmax, "optimizer": options.optimizer, "molecules": records.len(), "converged": converged,
        "delta_p": p, "abs_delta_e": e, "start_displacement": s, "delta_p_below_0.1": below,
        "failed": failures,
    });
    let mut report = summary.clone();
    report["molecules"] = serde_json::to_value(&records)?;
    let text = serde_json::to_string_pretty(&report)?;
    let json_path = minima_io::with_suffix(output, ".json");
    minima_io::write_atomic(&json_path, |w| std::io::Write::write_all(w, text.as_bytes()))
        .with_context(|| format!("{}: cannot write", json_path.display()))?;
    if records.is_empty() {
        // Nothing to draw: every molecule failed.
        return Ok((summary, failures));
    }
    let log10 = |values: &[f64]| -> Vec<(f64, f64)> {
        cumulative(values)
            .into_iter()
            .map(|(v, f)| (v.max(1e-8).log10(), f))
            .collect()
    };
    let figure = Figure::new(
        format!(
            "re-optimisation of {} perturbed molecules ({})",
            records.len(),
            calculator.name()
        ),
        "log10 of ΔP (Å) or |ΔE_g| (eV)",
        "fraction of molecules at or below",
    )
    .with_series("start displacement (Å)", log10(&start), Style::Line)
    .with_series("ΔP after relaxation (Å)", log10(&delta_p), Style::Line)
    .with_series("|ΔE_g| (eV)", log10(&delta_e), Style::Line);
    let [svg, png] = figure.save(output)?;
    report!("{} → {}, {}", json_path.display(), svg.display(), png.display());
    Ok((summary, failures))
}
