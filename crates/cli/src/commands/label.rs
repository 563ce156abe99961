//! `minima label` and `minima merge`: reference energies and forces for a file of structures,
//! resumable and sharded (see minima-label's `run`). Both keep what succeeded and exit non-zero
//! when any frame failed, naming the frames and the file with the reasons.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use minima_label::run::{failures_path, frame_list};
use minima_label::scheduler::{Scheduler, ShardedLabel, ShardedOutcome};
use minima_label::{
    calculator_by_name, label, merge, CalculatorOptions, LabelOptions, LabelSummary, MergeSummary, Shard,
};

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
    /// Where shards run: `local` processes, or a `slurm` job array (sbatch). With either and
    /// `--array-size N`, the input is split into N shards in OUTPUT.shards/, each labelled by
    /// its own process or array task, then merged into OUTPUT; rerunning the same command
    /// runs again only the shards that did not finish.
    #[arg(long, value_enum, default_value_t = Submit::Local)]
    submit: Submit,
    /// Shards (processes or array tasks); default 1 with --submit slurm.
    #[arg(long, conflicts_with = "shard", value_parser = clap::value_parser!(u64).range(1..))]
    array_size: Option<u64>,
    /// Slurm partition (default: the cluster's).
    #[arg(long)]
    partition: Option<String>,
    /// Slurm time limit per task (`HH:MM:SS`, `D-HH`, …).
    #[arg(long)]
    time: Option<String>,
    /// With --submit slurm: wait for the job and merge (without it, the command submits and
    /// returns; run it again with --wait, or once the job has ended, to merge).
    #[arg(long)]
    wait: bool,
}

/// Where the shards of `--array-size` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Submit {
    Local,
    Slurm,
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
    if args.array_size.is_some() || args.submit == Submit::Slurm {
        if args.shard.is_some() {
            bail!("--shard labels one shard itself; --array-size runs every shard: give one of them");
        }
        return run_sharded(&args);
    }
    let options = LabelOptions {
        jobs: args.jobs,
        shard: args.shard,
        progress: true,
    };
    let summary = label(calculator.as_ref(), &args.input, &args.output, &options)?;
    report(&args.output, &summary, "labelled")
}

/// `--array-size N` / `--submit slurm`: the shards as processes or a Slurm array, then merged.
fn run_sharded(args: &Args) -> Result<()> {
    let mut label_args = vec![
        "--calc".to_string(),
        args.calc.clone(),
        "--jobs".into(),
        args.jobs.to_string(),
        "--ranks".into(),
        args.ranks.to_string(),
    ];
    if let Some(timeout) = args.timeout {
        label_args.extend(["--timeout".into(), timeout.to_string()]);
    }
    let scheduler = match args.submit {
        Submit::Local => Scheduler::Local,
        Submit::Slurm => Scheduler::Slurm {
            partition: args.partition.clone(),
            time: args.time.clone(),
        },
    };
    let job = ShardedLabel {
        program: std::env::current_exe()?,
        input: std::path::absolute(&args.input)?,
        output: std::path::absolute(&args.output)?,
        count: args.array_size.unwrap_or(1) as usize,
        label_args,
        cpus: args.jobs,
        scheduler,
    };
    match job.run(args.wait)? {
        ShardedOutcome::Submitted { job: id, shards } => {
            println!(
                "submitted Slurm job {id}: shards {} of {} (scripts and logs in {}); run this command again with --wait, or once the job has ended, to merge",
                frame_list(&shards),
                job.count,
                job.folder().display()
            );
            Ok(())
        }
        ShardedOutcome::Merged(summary) => merged(&args.output, &summary, job.count),
    }
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
    merged(&args.output, &summary, args.shards.len())
}

/// Prints what a merge wrote; an error listing the failed frames when there are any.
fn merged(output: &Path, summary: &MergeSummary, shards: usize) -> Result<()> {
    println!("{}: {} frames from {shards} shards", output.display(), summary.written);
    let failed = &summary.failed_frames;
    if !failed.is_empty() {
        bail!(
            "{} frames failed in the shards (frames {}), listed in {}; the {} others are in {}",
            failed.len(),
            frame_list(failed),
            failures_path(output).display(),
            summary.written,
            output.display()
        );
    }
    Ok(())
}
