//! `minima train`: trains a model from a run configuration (TOML).

use anyhow::Result;
use minima_train::{RunConfig, Start};

#[derive(clap::Args)]
pub struct Args {
    /// The run configuration (`[model]`, `[data]`, `[train]` tables) and overrides.
    #[command(flatten)]
    run: super::ConfigArgs,
    /// Continue the run in its output folder from its last completed epoch.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Start a new run in an output folder that holds one, deleting the old run's files
    /// (without it, a folder that is not empty is refused).
    #[arg(long)]
    overwrite: bool,
}

pub fn run(args: Args) -> Result<()> {
    let config = RunConfig::load(&args.run.config, &args.run.overrides)?;
    let start = match (args.resume, args.overwrite) {
        (true, _) => Start::Resume,
        (false, true) => Start::Overwrite,
        (false, false) => Start::Fresh,
    };
    // Under `mpirun -np N`: N ranks train together; rank 0 alone reports and writes.
    let ranks = minima_train::distributed::ranks()?;
    let lead = ranks.rank() == 0;
    if !lead {
        minima_io::progress::set_observer(std::sync::Arc::new(crate::progress::Quiet));
    }
    let outcome = match minima_train::train_with(&config, start, ranks.as_ref()) {
        Ok(outcome) => outcome,
        Err(error) if ranks.size() > 1 => {
            // One rank's error ends them all, rather than leaving the others waiting.
            eprintln!("error (rank {}): {error:#}", ranks.rank());
            ranks.abort(1);
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    if !lead {
        return Ok(());
    }
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
