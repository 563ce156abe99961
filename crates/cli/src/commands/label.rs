//! `minima label` and `minima merge`: reference energies and forces for a file of structures,
//! resumable and sharded (see minima-label's `run`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use minima_label::{calculator_by_name, label, merge, CalculatorOptions, LabelOptions, Shard};

#[derive(clap::Args)]
pub struct Args {
    /// emt (metals, built in), xtb (GFN2-xTB, molecules) or cp2k (PBE DFT, molecules).
    #[arg(long)]
    calc: String,
    #[arg(short, long)]
    input: PathBuf,
    /// Output extxyz (also the journal a rerun resumes from; failures go to OUTPUT.failed).
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
    /// Labelled shards (outputs of `minima label --shard i/N`).
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    #[arg(short, long)]
    output: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    if minima_io::extxyz::is_bzip2(&args.output) {
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
    println!(
        "{}: {} labelled now, {} done before, {} failed now ({} failed in all{})",
        args.output.display(),
        summary.labelled,
        summary.already_done,
        summary.failed,
        summary.failed_total,
        if summary.failed_total > 0 {
            format!(
                ", reasons in {}; delete it to retry them",
                minima_label::run::failures_path(&args.output).display()
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

pub fn merge_shards(args: MergeArgs) -> Result<()> {
    let written = merge(&args.shards, &args.output)?;
    println!(
        "{}: {written} frames from {} shards",
        args.output.display(),
        args.shards.len()
    );
    Ok(())
}
