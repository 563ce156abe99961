//! `minima eval`: the papers' metrics of a trained model on labelled data.

use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: super::ModelArgs,
    /// Labelled structures (extxyz with energies, or QM9's archive).
    #[arg(long)]
    data: PathBuf,
    /// Where to write the metrics as JSON.
    #[arg(long, default_value = "eval.json")]
    json: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let potential = args.model.load()?;
    let samples = minima_data::load(&args.data, &potential.config.graph_spec(), true)?;
    let report = minima_train::evaluate(&potential, &samples, args.model.batch)?;
    print!("{}", report.summary());
    let text = serde_json::to_string_pretty(&report)?;
    minima_io::write_atomic(&args.json, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    println!("metrics: {}", args.json.display());
    Ok(())
}
