//! `minima assemble`: the molecule-assembly task of the physics-transformer paper (section
//! 4.4): move one or two functional groups away, relax, see whether the bonds reform.

use std::path::PathBuf;

use anyhow::Result;
use minima_explore::benchmark::{assemble, select_molecules, Spread};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    calculator: super::CalculatorArgs,
    /// Equilibrium molecules: QM9 (archive or folder) or extxyz.
    #[arg(short, long)]
    input: PathBuf,
    /// Molecules tried, drawn at random (seeded) from those with enough groups.
    #[arg(long, default_value_t = 20)]
    molecules: usize,
    /// Functional groups moved per molecule (1 or 2).
    #[arg(long, default_value_t = 1)]
    groups: usize,
    /// How far each group is moved along its bond (Å; the paper: 0.7).
    #[arg(long, default_value_t = 0.7)]
    distance: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    relax: super::BenchmarkRelaxArgs,
    /// Every molecule and the summary (JSON).
    #[arg(short, long, default_value = "assemble.json")]
    output: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    anyhow::ensure!((1..=2).contains(&args.groups), "--groups is 1 or 2");
    let calculator = args.calculator.load_one()?;
    let molecules = minima_data::read_frames(&args.input)?;
    let order = select_molecules(&molecules, 0, molecules.len(), args.seed);
    let options = args.relax.options();
    let bar = super::progress(args.molecules as u64, "assemble");
    let mut records = Vec::new();
    for frame in order {
        if records.len() == args.molecules {
            break;
        }
        let Some(record) = assemble(
            calculator.as_ref(),
            &molecules[frame],
            frame,
            args.groups,
            args.distance,
            args.seed,
            &options,
        )?
        else {
            continue;
        };
        bar.inc(1);
        records.push(record);
    }
    bar.finish_and_clear();
    report!(
        "{:>6} {:>14} {:>7} {:>7} {:>9} {:>9} {:>6}",
        "frame",
        "formula",
        "broken",
        "reform",
        "start Å",
        "ΔP Å",
        "steps"
    );
    for r in &records {
        report!(
            "{:>6} {:>14} {:>7} {:>7} {:>9.3} {:>9.3} {:>6}",
            r.frame,
            r.formula,
            r.broken,
            if r.reformed { "yes" } else { "no" },
            r.start_displacement,
            r.delta_p,
            r.steps
        );
    }
    let reformed = records.iter().filter(|r| r.reformed).count();
    let delta_p = Spread::of(&records.iter().map(|r| r.delta_p).collect::<Vec<_>>());
    report!(
        "bonds reformed in {reformed} of {} molecules; ΔP mean {:.3} Å, median {:.3} Å ({})",
        records.len(),
        delta_p.mean,
        delta_p.median,
        calculator.name()
    );
    let report = json!({
        "calculator": calculator.name(), "input": args.input, "groups": args.groups,
        "distance": args.distance, "seed": args.seed, "fmax": options.fmax, "optimizer": options.optimizer,
        "reformed": reformed, "delta_p": delta_p, "molecules": records,
    });
    let text = serde_json::to_string_pretty(&report)?;
    minima_io::write_atomic(&args.output, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    report!("→ {}", args.output.display());
    Ok(())
}
