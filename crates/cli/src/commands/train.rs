//! `minima train`: trains a model from a run configuration (TOML).

use std::path::PathBuf;

use anyhow::Result;
use minima_train::{RunConfig, Start};

#[derive(clap::Args)]
pub struct Args {
    /// The run configuration (`[model]`, `[data]`, `[train]` tables; see configs/).
    #[arg(long)]
    config: PathBuf,
    /// Override a setting, e.g. `--set train.max_epochs=20 --set model.vimpnn.combine=c`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Continue the run in its output folder from its last completed epoch.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Start a new run in an output folder that holds one, deleting the old run's files
    /// (without it, a folder that is not empty is refused).
    #[arg(long)]
    overwrite: bool,
}

pub fn run(args: Args) -> Result<()> {
    let config = RunConfig::load(&args.config, &args.overrides)?;
    let start = match (args.resume, args.overwrite) {
        (true, _) => Start::Resume,
        (false, true) => Start::Overwrite,
        (false, false) => Start::Fresh,
    };
    let outcome = minima_train::train_as(&config, start)?;
    // The run is saved by now; a reader that has gone (`| head`) just misses the summary.
    minima_train::console::Stdout::default().print(&format!(
        "trained {} epochs ({}); best validation loss {:.5} at epoch {}; model: {}\n",
        outcome.epochs,
        outcome.stopped,
        outcome.best_validation_loss,
        outcome.best_epoch,
        outcome.best_checkpoint.display()
    ))?;
    Ok(())
}
