//! `minima label` and `minima merge`: reference energies and forces for a file of structures,
//! resumable and sharded (see minima-label's `run`). Both keep what succeeded and exit non-zero
//! when any frame failed, naming the frames and the file with the reasons.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use minima_label::run::{failures_path, frame_list};
use minima_label::{calculator_by_name, label, merge, CalculatorOptions, LabelOptions, LabelSummary, Shard};

#[derive(clap::Args)]
pub struct Args {
    /// emt (metals, built in), xtb (GFN2-xTB, molecules) or cp2k (PBE DFT, molecules).
    #[arg(long)]
    calc: String,
    #[arg(short, long)]
    input: PathBuf,
    /// Output extxyz (also the journal a rerun resumes from; failures go to OUTPUT.failed,
    /// OUTPUT.done records a finished run). Locked while labelling: one process per output.
    #[arg(short, long)]
    output: PathBuf,
    /// Structures labelled in parallel (xtb and cp2k: one process each).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// i/N: label only frames with index % N == i (0 <= i < N), for cluster job arrays.
    #[arg(long)]
    shard: Option<Shard>,
    /// Seconds before an external program is killed and its structure recorded as failed.
    #[arg(long)]
    timeout: Option<f64>,
    /// MPI ranks per CP2K run.
    #[arg(long, default_value_t = 2)]
    ranks: usize,
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// Labelled shards (outputs of `minima label --shard i/N`): every shard of one input, each
    /// finished (its `.done` record beside it); their `.failed` lists are joined too.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    #[arg(short, long)]
    output: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    if minima_io::extxyz::is_compressed(&args.output) {
        bail!("the output is appended to as labelling goes: give an uncompressed .extxyz, compress it afterwards");
    }
    let settings = CalculatorOptions {
        timeout: args.timeout.map(Duration::from_secs_f64),
        cp2k_ranks: Some(args.ranks),
    };
    let calculator = calculator_by_name(&args.calc, &settings)?;
    let options = LabelOptions {
        jobs: args.jobs,
        shard: args.shard,
        progress: true,
    };
    let summary = label(calculator.as_ref(), &args.input, &args.output, &options)?;
    report(&args.output, &summary, "labelled")
}

/// Prints what a journalled run (`label`, `data relaxed`) did to `output`; an error listing the
/// failed frames when there are any (the others are kept, the exit is non-zero).
pub fn report(output: &Path, summary: &LabelSummary, done: &str) -> Result<()> {
    let changed = if summary.changed > 0 {
        format!(
            "; {} frames were done again because their input changed since",
            summary.changed
        )
    } else {
        String::new()
    };
    println!(
        "{}: {} {done} now, {} done before, {} failed now ({} failed in all){changed}",
        output.display(),
        summary.labelled,
        summary.already_done,
        summary.failed,
        summary.failed_frames.len(),
    );
    let failed = &summary.failed_frames;
    if !failed.is_empty() {
        // The rule for multi-frame commands: keep what succeeded, list what failed, exit non-zero.
        bail!(
            "{} of {} frames failed (frames {}); reasons in {} (delete it to retry them); the {} others are {done} in {}",
            failed.len(),
            summary.selected,
            frame_list(failed),
            failures_path(output).display(),
            summary.selected - failed.len(),
            output.display()
        );
    }
    Ok(())
}

pub fn merge_shards(args: MergeArgs) -> Result<()> {
    let summary = merge(&args.shards, &args.output)?;
    println!(
        "{}: {} frames from {} shards",
        args.output.display(),
        summary.written,
        args.shards.len()
    );
    let failed = &summary.failed_frames;
    if !failed.is_empty() {
        bail!(
            "{} frames failed in the shards (frames {}), listed in {}; the {} others are in {}",
            failed.len(),
            frame_list(failed),
            failures_path(&args.output).display(),
            summary.written,
            args.output.display()
        );
    }
    Ok(())
}
