//! `minima bench-minima`: does a calculator find the reference's minima? Each molecule,
//! cluster or crystal is relaxed with the reference (a crystal's cell too), then from rattled,
//! compressed and stretched starts with the calculator; the table gives blow-ups, convergence
//! and ΔP after superposition (crystals: in fractional coordinates, with the cell strain).

use std::path::PathBuf;

use anyhow::{Context, Result};
use minima_atoms::Atoms;
use minima_atoms::Value;
use minima_explore::benchmark::select_molecules;
use minima_explore::curve::with_fixed_bonds;
use minima_explore::landing::{land, reference_minimum, summarize, Collapse, Landing, Start};
use minima_explore::FrameFailures;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// The calculator under test (`--model`) and the reference whose minima it should find
    /// (`--reference`; with `--minima`, only needed for `--reference-rows`).
    #[command(flatten)]
    calculator: super::CalculatorArgs,
    /// Structures: QM9 (archive or folder) or extxyz; open boundaries, or cells periodic along
    /// all three axes (relaxed with their cell; the calculators must give the stress).
    #[arg(short, long)]
    input: PathBuf,
    /// Structures taken, drawn at random with --seed (0: all), in input order.
    #[arg(long, default_value_t = 20)]
    molecules: usize,
    /// The starts: rattle:SIGMA (Gaussian displacement of each coordinate, Å) and
    /// scale:FACTOR (isotropic, about the centroid; a crystal's cell with it), made from the
    /// input geometry.
    #[arg(long, value_delimiter = ',', default_value = "rattle:0.1,scale:0.9,scale:1.5")]
    starts: Vec<Start>,
    /// The reference minima of the chosen structures in their order, as an earlier run wrote
    /// them (STEM.minima.extxyz), in place of relaxing each with the reference again.
    #[arg(long)]
    minima: Option<PathBuf>,
    /// Relax every start with the reference as well: the row a perfect potential would have.
    #[arg(long)]
    reference_rows: bool,
    /// A relaxation blew up when two atoms come closer than this (Å) …
    #[arg(long, default_value_t = 0.5)]
    collapse_distance: f64,
    /// … or its energy ends this far below the calculator's own at the minimum (eV).
    #[arg(long, default_value_t = 5.0)]
    collapse_energy: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    relax: super::BenchmarkRelaxArgs,
    /// Output stem: STEM.json (every relaxation and the table), STEM.minima.extxyz (the
    /// reference minima), STEM.starts.extxyz (every start, for other codes to relax).
    #[arg(short, long, default_value = "bench_minima")]
    output: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let calculators = args.calculator.load()?;
    let (model, reference) = match (&args.calculator.model, &args.calculator.reference) {
        (Some(_), Some(_)) => (Some(&calculators[0]), Some(&calculators[1])),
        (Some(_), None) => (Some(&calculators[0]), None),
        _ => (None, Some(&calculators[0])),
    };
    let json_path = minima_io::with_suffix(&args.output, ".json");
    let _lock = super::lock_output(&json_path)?;
    let frames = minima_data::read_frames(&args.input)?;
    let count = if args.molecules == 0 {
        frames.len()
    } else {
        args.molecules
    };
    let mut chosen = select_molecules(&frames, 0, count, args.seed);
    chosen.sort_unstable();
    let options = args.relax.options();
    let collapse = Collapse {
        distance: args.collapse_distance,
        energy: args.collapse_energy,
    };
    let mut failures = FrameFailures::default();

    // The reference minima, one per chosen frame (None where the reference did not get there).
    let minima: Vec<Option<Atoms>> = match &args.minima {
        Some(path) => {
            let given = minima_data::read_frames(path)?;
            anyhow::ensure!(
                given.len() == chosen.len(),
                "{}: {} minima for the {} structures chosen from {} (same --molecules and --seed as the run that wrote it?)",
                path.display(),
                given.len(),
                chosen.len(),
                args.input.display()
            );
            given.into_iter().map(|m| Some(with_fixed_bonds(&m))).collect()
        }
        None => {
            let reference =
                reference.context("give --reference CALCULATOR (its minima are the targets) or --minima FILE")?;
            let bar = super::progress(chosen.len() as u64, "reference minima");
            let minima = chosen
                .iter()
                .map(|&frame| {
                    // A crystal's minimum has its cell relaxed too (see `land`).
                    let atoms = &frames[frame];
                    let options = minima_explore::RelaxOptions {
                        cell: atoms.bulk_cell().is_some(),
                        ..options
                    };
                    let minimum = reference_minimum(reference.as_ref(), atoms, &options);
                    bar.inc(1);
                    minimum.map_err(|e| failures.push(frame, e)).ok()
                })
                .collect();
            bar.finish_and_clear();
            minima
        }
    };
    let written: Vec<Atoms> = minima.iter().flatten().cloned().collect();
    super::write_frames(&minima_io::with_suffix(&args.output, ".minima.extxyz"), &written)?;

    let mut testing: Vec<&dyn minima_label::Calculator> = model.iter().map(|c| c.as_ref()).collect();
    if args.reference_rows {
        testing.extend(reference.map(|c| c.as_ref()));
    }
    anyhow::ensure!(
        !testing.is_empty(),
        "nothing to test: give --model, or --reference-rows"
    );
    let mut starts_written = Vec::new();
    let mut landings: Vec<Landing> = Vec::new();
    let total = testing.len() * args.starts.len() * minima.iter().flatten().count();
    let bar = super::progress(total as u64, "bench-minima");
    for (&frame, minimum) in chosen.iter().zip(&minima) {
        let Some(minimum) = minimum else { continue };
        let base = with_fixed_bonds(&frames[frame]);
        for &kind in &args.starts {
            let mut start = kind.apply(&base, args.seed, frame);
            for calculator in &testing {
                match land(*calculator, minimum, &start, kind, frame, &options, collapse) {
                    Ok(landing) => {
                        bar.set_message(format!("{} {kind} ΔP {:?}", landing.formula, landing.delta_p));
                        landings.push(landing);
                    }
                    Err(e) => failures.push(frame, format!("{} from {kind}: {e}", calculator.name())),
                }
                bar.inc(1);
            }
            start.info.insert("frame".into(), Value::Int(frame as i64));
            start.info.insert("start".into(), Value::Str(kind.to_string()));
            starts_written.push(start);
        }
    }
    bar.finish_and_clear();
    super::write_frames(&minima_io::with_suffix(&args.output, ".starts.extxyz"), &starts_written)?;

    let rows = summarize(&landings);
    report!(
        "{:<28} {:<12} {:>6} {:>9} {:>10} {:>12} {:>10}",
        "calculator",
        "start",
        "runs",
        "blown up",
        "converged",
        "ΔP median Å",
        "ΔP 90% Å"
    );
    for row in &rows {
        let (median, p90) = row.delta_p.map_or((f64::NAN, f64::NAN), |p| (p.median, p.p90));
        report!(
            "{:<28} {:<12} {:>6} {:>9} {:>10} {:>12.4} {:>10.4}",
            row.calculator,
            row.start.to_string(),
            row.relaxations,
            row.blown_up,
            row.converged,
            median,
            p90
        );
    }
    let text = serde_json::to_string_pretty(&json!({
        "input": args.input.display().to_string(), "seed": args.seed, "fmax": options.fmax,
        "optimizer": options.optimizer, "steps": options.steps, "collapse": collapse,
        "frames": chosen, "rows": rows, "relaxations": landings, "failed": failures,
    }))?;
    minima_io::write_atomic(&json_path, |w| std::io::Write::write_all(w, text.as_bytes()))
        .with_context(|| format!("{}: cannot write", json_path.display()))?;
    report!("{}", json_path.display());
    let succeeded = landings.len();
    super::finish_frames(&args.input, &failures, succeeded, &args.output, &json_path)
}
