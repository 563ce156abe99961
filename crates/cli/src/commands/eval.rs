//! `minima eval`: the papers' metrics of a trained model on labelled data.

use std::path::PathBuf;

use anyhow::Result;
use minima_model::Potential;

#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint (`best.safetensors` of a run).
    #[arg(long)]
    model: PathBuf,
    /// Labelled structures (extxyz with energies, or QM9's archive).
    #[arg(long)]
    data: PathBuf,
    /// Where to write the metrics as JSON.
    #[arg(long, default_value = "eval.json")]
    json: PathBuf,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// libtorch intra-op threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

pub fn run(args: Args) -> Result<()> {
    minima_model::configure_threads(args.threads);
    let potential = Potential::load(&args.model, minima_model::parse_device(&args.device)?)?;
    let samples = minima_data::load(&args.data, &potential.config.graph_spec(), true)?;
    let report = minima_train::evaluate(&potential, &samples, args.batch)?;
    print!("{}", report.summary());
    let text = serde_json::to_string_pretty(&report)?;
    minima_io::write_atomic(&args.json, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    println!("metrics: {}", args.json.display());
    Ok(())
}
