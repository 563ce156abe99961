//! `minima bench-minima`: does a calculator find the reference's minima? Each molecule,
//! cluster or crystal is relaxed with the reference (a crystal's cell too), then from rattled,
//! compressed and stretched starts with the calculator; the table gives blow-ups, convergence
//! and ΔP after superposition (crystals: in fractional coordinates, with the cell strain).

use std::path::PathBuf;

use anyhow::{Context, Result};
use minima_atoms::Atoms;
use minima_explore::benchmark::select_molecules;
use minima_explore::curve::with_fixed_bonds;
use minima_explore::landing::{reference_minima, summarize, table, Benchmark, Collapse, Start};
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
    let (model, reference) = match (args.calculator.has_model(), &args.calculator.reference) {
        (true, Some(_)) => (Some(&calculators[0]), Some(&calculators[1])),
        (true, None) => (Some(&calculators[0]), None),
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
            reference_minima(reference.as_ref(), &frames, &chosen, &options, &mut failures)
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
    let benchmark = Benchmark {
        frames: &frames,
        chosen: &chosen,
        minima: &minima,
        calculators: &testing,
        starts: &args.starts,
        seed: args.seed,
        options,
        collapse,
    };
    let (landings, starts_made) = minima_explore::landing::landings(&benchmark, &mut failures);
    super::write_frames(&minima_io::with_suffix(&args.output, ".starts.extxyz"), &starts_made)?;

    let rows = summarize(&landings);
    report!("{}", table(&rows).trim_end());
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
