//! `minima curve`: energy against isotropic scale from a model, a reference, or both drawn
//! together, with each minimum refined and marked.

use std::path::PathBuf;

use anyhow::{Context, Result};
use minima_data::generate::Grid;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    calculators: super::CalculatorArgs,
    /// Structure (extxyz); a molecule is scaled about its centroid, a crystal with its cell.
    #[arg(short, long)]
    input: PathBuf,
    /// Which frame of the input (0-based).
    #[arg(long, default_value_t = 0)]
    frame: usize,
    /// Scales relative to the input, start:stop:count.
    #[arg(long, default_value = "0.85:1.6:76")]
    scales: Grid,
    /// Output stem: STEM.csv, STEM.json (minima), STEM.svg and STEM.png.
    #[arg(short, long, default_value = "curve")]
    output: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let calculators = args.calculators.load()?;
    let structure = super::read_frame(&args.input, args.frame)?;
    let scales = args.scales.values();
    let _lock = super::lock_output(&minima_io::with_suffix(&args.output, ".json"))?;
    let refs: Vec<&dyn minima_label::Calculator> = calculators.iter().map(|c| c.as_ref()).collect();
    let bar = super::progress((scales.len() * refs.len()) as u64, "curve");
    let scan = minima_explore::curve::scan(&structure, &scales, &refs, || bar.inc(1))?;
    bar.finish_and_clear();
    let title = format!(
        "{} ({} atoms), frame {}",
        structure.formula(),
        structure.len(),
        args.frame
    );
    scan.write_csv(&minima_io::with_suffix(&args.output, ".csv"))?;
    let json = serde_json::to_string_pretty(&scan)?;
    let json_path = minima_io::with_suffix(&args.output, ".json");
    minima_io::write_atomic(&json_path, |w| std::io::Write::write_all(w, json.as_bytes()))
        .with_context(|| format!("{}: cannot write", json_path.display()))?;
    let [svg, png] = scan.figure(&title).save(&args.output)?;
    for curve in &scan.curves {
        report!("{}: {}", curve.name, curve.verdict(scan.nearest_neighbor));
    }
    report!(
        "{} → {}, {}, {}",
        minima_io::with_suffix(&args.output, ".csv").display(),
        json_path.display(),
        svg.display(),
        png.display()
    );
    Ok(())
}
