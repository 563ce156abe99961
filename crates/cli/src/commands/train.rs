//! `minima train`: trains a model from a run configuration (TOML).

use std::path::PathBuf;

use anyhow::Result;
use minima_train::RunConfig;

#[derive(clap::Args)]
pub struct Args {
    /// The run configuration (`[model]`, `[data]`, `[train]` tables; see configs/).
    #[arg(long)]
    config: PathBuf,
    /// Override a setting, e.g. `--set train.max_epochs=20 --set model.vimpnn.combine=c`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Continue the run in its output folder from its last completed epoch.
    #[arg(long)]
    resume: bool,
}

pub fn run(args: Args) -> Result<()> {
    let config = RunConfig::load(&args.config, &args.overrides)?;
    let outcome = minima_train::train(&config, args.resume)?;
    println!(
        "trained {} epochs ({}); best validation loss {:.5} at epoch {}; model: {}",
        outcome.epochs,
        outcome.stopped,
        outcome.best_validation_loss,
        outcome.best_epoch,
        outcome.best_checkpoint.display()
    );
    Ok(())
}
