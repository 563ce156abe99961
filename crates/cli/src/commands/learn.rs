//! `minima learn`: committee active learning from a `learn.toml` (see `minima_learn`).

use anyhow::Result;
use minima_learn::LearnFile;

#[derive(clap::Args)]
pub struct Args {
    /// The loop's configuration: a run configuration (`[model]`, `[data]` with the initial
    /// data, `[train]`) and a `[learn]` table (see configs/learn-molecules.toml); overrides
    /// such as `--set learn.iterations=2`.
    #[command(flatten)]
    loop_config: super::ConfigArgs,
}

pub fn run(args: Args) -> Result<()> {
    let file = LearnFile::load(&args.loop_config.config, &args.loop_config.overrides)?;
    let outcome = minima_learn::learn(&file)?;
    report!(
        "{:>9} {:>7} {:>9} {:>8} {:>9} {:>10} {:>9} {:>10} {:>11}",
        "iteration",
        "added",
        "selected",
        "labelled",
        "force MAE",
        "relaxed",
        "blown up",
        "converged",
        "ΔP median"
    );
    for r in &outcome.records {
        let v = &r.validation;
        report!(
            "{:>9} {:>7} {:>9} {:>8} {:>9.4} {:>10} {:>9} {:>10} {:>11}",
            r.iteration,
            r.added_frames,
            r.explored.as_ref().map_or("—".into(), |e| e.selected.to_string()),
            r.labelled.map_or("—".into(), |n| n.to_string()),
            v.force_mae,
            v.relaxations,
            v.blown_up,
            v.converged,
            v.delta_p_median.map_or("—".into(), |p| format!("{p:.3} Å"))
        );
    }
    report!(
        "stopped: {}; last committee: {}; log: {}",
        outcome.stopped,
        outcome.committee.display(),
        file.learn.output.join("learn.csv").display()
    );
    Ok(())
}
