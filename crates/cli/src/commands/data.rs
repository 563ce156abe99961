//! `minima data …`: the VIMPNN paper's datasets from raw geometries (unlabelled; label them
//! with `minima label`), and its splits; and data that covers what a relaxation visits:
//! rattled structures, reference-relaxed minima and normal-mode samples about them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use minima_atoms::Atoms;
use minima_data::generate::{self, FccCell, Grid, PAPER_SCALES};
use minima_data::{sampling, Scheme};
use minima_explore::minimum::{finite_difference_hessian, RelaxToMinimum, HESSIAN_DELTA};
use minima_explore::RelaxOptions;
use minima_io::extxyz;
use minima_label::run::{failures_path, fingerprint, frame_list, run_journalled, write_failures, Failure, FrameJob};
use minima_label::{calculator_by_name, Calculator, CalculatorOptions, LabelOptions};
use serde_json::json;

#[derive(clap::Subcommand)]
pub enum Data {
    /// Augmented QM9: the first N molecules, each at K isotropic scales about its centroid.
    Qm9Scan {
        /// QM9 in its original layout (directory, .tar or .tar.bz2), or molecules in extxyz
        /// (e.g. a subset from `minima convert --every`).
        #[arg(long)]
        qm9: PathBuf,
        /// How many molecules, in QM9 index order (the paper: 10,000).
        #[arg(long, default_value_t = 10_000)]
        molecules: usize,
        /// Scales start:stop:count, both ends included.
        #[arg(long, default_value = "0.9:1.5:10")]
        scales: Grid,
        /// Add the exact scale 1.0 (the QM9 geometry) to the grid when it is not on it.
        #[arg(long)]
        with_equilibrium: bool,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// fcc crystals (or, with --vacuum, slabs) with isotropically scaled cells.
    Fcc {
        #[arg(long, value_delimiter = ',', default_value = "Al,Cu")]
        elements: Vec<String>,
        /// Equilibrium lattice constants, e.g. Al=4.05,Cu=3.615 (default: experiment).
        #[arg(long, value_delimiter = ',')]
        lattice: Vec<String>,
        /// primitive (1 atom) or cubic (4 atoms).
        #[arg(long, default_value = "cubic")]
        cell: FccCell,
        /// Scales per element (the paper: 20,000 points in all; 10000 per element).
        #[arg(long, default_value = "0.9:1.5:1000")]
        scales: Grid,
        /// Add the exact scale 1.0 (the given lattice constant) to the grid when it is not on it.
        #[arg(long)]
        with_equilibrium: bool,
        /// N×N×N copies of the cell.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// A (100) slab with this much vacuum (Å) along z, periodic along x and y (cubic cell).
        #[arg(long)]
        vacuum: Option<f64>,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Crystal growth: fcc clusters of 15 to 114 atoms grown from a 14-atom seed.
    Growth {
        /// stable: 20 growths per element at scale 1 (4,000 clusters); unstable: 5 growths per
        /// element at 10 scales 0.90–1.50 (10,000).
        #[arg(long, default_value = "stable")]
        subset: String,
        #[arg(long, value_delimiter = ',', default_value = "Al,Cu")]
        elements: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        lattice: Vec<String>,
        /// Growths per element (default by subset); growth k uses random seed k.
        #[arg(long)]
        seeds: Option<u64>,
        /// Scales (default by subset).
        #[arg(long)]
        scales: Option<Grid>,
        #[arg(long, default_value_t = 114)]
        max_size: usize,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Rattled copies: every coordinate moved by a Gaussian deviate (ASE's rattle) at each
    /// amplitude, `--copies` per amplitude and frame; unlabelled, equilibrium=F.
    Rattle {
        /// extxyz (or QM9 in its original layout); molecules or periodic crystals.
        #[arg(short, long)]
        input: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// Standard deviations per coordinate (Å).
        #[arg(long, value_delimiter = ',', default_value = "0.05,0.1,0.2")]
        amplitudes: Vec<f64>,
        #[arg(long, default_value_t = 1)]
        copies: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Each frame relaxed with the reference: the minimum with its energy and forces and
    /// equilibrium=T; frames that do not converge go to OUTPUT.failed. Resumable, as label.
    Relaxed {
        /// The output is appended to as frames converge (the journal): rerun after a kill.
        #[command(flatten)]
        files: ReferenceRun,
        /// Converged when every force is below this (eV/Å).
        #[arg(long, default_value_t = 0.01)]
        fmax: f64,
        #[arg(long, default_value_t = 1000)]
        steps: usize,
        /// fire or lbfgs.
        #[arg(long, default_value = "fire")]
        optimizer: minima_explore::Optimizer,
        /// Frames relaxed in parallel.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    },
    /// Where a potential's relaxations go: each frame (a reference minimum) distorted by
    /// --start and relaxed with --model (or --reference); the end geometry (or, with --path,
    /// points along the way), unlabelled, equilibrium=F, for `minima label`. Points with atoms
    /// too close are left out; a relaxation with none left is a failure. Resumable.
    Explored {
        #[command(flatten)]
        calculator: super::CalculatorArgs,
        #[arg(short, long)]
        input: PathBuf,
        /// Appended to as relaxations end (the journal): rerun after a kill.
        #[arg(short, long)]
        output: PathBuf,
        /// rattle:SIGMA (Å) or scale:FACTOR.
        #[arg(long)]
        start: minima_explore::landing::Start,
        #[arg(long, default_value_t = 0.01)]
        fmax: f64,
        #[arg(long, default_value_t = 500)]
        steps: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Fractions of each relaxation's steps at which a frame is kept, comma-separated, in
        /// (0, 1]: 1 is the end; e.g. 0.1,0.25,0.45,0.7,1 for five points along the path.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        path: Vec<f64>,
    },
    /// Normal-mode sampling about reference minima (Smith et al. 2017): random displacements
    /// along the vibrations at a temperature; unlabelled, equilibrium=F.
    NormalModes {
        /// The input holds minima (equilibrium=T), e.g. the output of `minima data relaxed`;
        /// the Hessian is xtb's (xtb --hess) or, for emt and cp2k, central differences of forces.
        #[command(flatten)]
        files: ReferenceRun,
        /// Kelvin.
        #[arg(long, default_value_t = 300.0)]
        temperature: f64,
        /// Samples per minimum.
        #[arg(long, default_value_t = 10)]
        samples: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// The compliance modes of each reference minimum (equilibrium=T) as its per-atom column
    /// `compliance`: the vibrations of the reference's Hessian softer than
    /// --max-force-constant, each divided by its force constant, which the `minimum_shift` loss
    /// reads; other frames pass unchanged. The Hessian is xtb's (xtb --hess) or, for emt and
    /// cp2k, central differences of forces. Resumable.
    Compliance {
        /// The output is appended to as frames finish (the journal): rerun after a kill.
        #[command(flatten)]
        files: ReferenceRun,
        /// eV/Å²: stiffer modes move a minimum too little to record (a force error of 0.1 eV/Å
        /// moves a 2 eV/Å² mode by 0.05 Å).
        #[arg(long, default_value_t = 2.0)]
        max_force_constant: f64,
        /// Frames done in parallel.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    },
    /// The paper's splits by base structure, written as train/validation/test extxyz files
    /// and split.json (indices, scheme, seed).
    Split {
        #[arg(short, long)]
        input: PathBuf,
        /// qm9 (80/10/10), fcc (8 training scales per crystal), growth (60/20/20), size
        /// (growth, training on clusters of at most --max-train-size atoms); default: detected.
        #[arg(long)]
        scheme: Option<String>,
        #[arg(long, default_value_t = 8)]
        train_points: usize,
        #[arg(long, default_value_t = 25)]
        max_train_size: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Train, validation and test fractions of the base structures, e.g. 0.7,0.15,0.15, in
        /// place of the scheme's own (qm9, growth, size); they must sum to 1.
        #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
        fractions: Option<Vec<f64>>,
        /// Folder for train.extxyz, validation.extxyz, test.extxyz and split.json.
        #[arg(long)]
        out_dir: PathBuf,
    },
}

/// The input, output and reference of a generator that calls the reference.
#[derive(clap::Args)]
pub struct ReferenceRun {
    #[arg(short, long)]
    input: PathBuf,
    #[arg(short, long)]
    output: PathBuf,
    /// emt, xtb or cp2k.
    #[arg(long)]
    reference: String,
    /// Seconds before one reference call is killed and its frame recorded as failed.
    #[arg(long)]
    timeout: Option<f64>,
}

pub fn run(data: Data) -> Result<()> {
    match data {
        Data::Qm9Scan {
            qm9,
            molecules,
            scales,
            with_equilibrium,
            output,
        } => {
            let mut all = minima_data::read_frames(&qm9)?;
            all.sort_by_key(|a| a.info.get("qm9_index").and_then(|v| v.as_i64()));
            if all.len() < molecules {
                eprintln!(
                    "note: {} holds {} molecules, fewer than the {molecules} asked for",
                    qm9.display(),
                    all.len()
                );
            }
            all.truncate(molecules);
            let frames = generate::qm9_scan(&all, &grid(&scales, with_equilibrium), &qm9.display().to_string())?;
            write(&output, &frames)
        }
        Data::Fcc {
            elements,
            lattice,
            cell,
            scales,
            with_equilibrium,
            repeat,
            vacuum,
            output,
        } => {
            let elements = with_lattice_constants(&elements, &lattice)?;
            let shape = generate::FccShape { cell, repeat, vacuum };
            let frames =
                generate::fcc_scan(&elements, shape, &grid(&scales, with_equilibrium)).map_err(anyhow::Error::msg)?;
            write(&output, &frames)
        }
        Data::Growth {
            subset,
            elements,
            lattice,
            seeds,
            scales,
            max_size,
            output,
        } => {
            let (default_seeds, default_scales) = match subset.as_str() {
                "stable" => (
                    20,
                    Grid {
                        start: 1.0,
                        stop: 1.0,
                        count: 1,
                    },
                ),
                "unstable" => (5, PAPER_SCALES),
                other => bail!("subset {other:?}: choose stable or unstable"),
            };
            if max_size < 15 {
                bail!("--max-size {max_size}: the seed has 14 atoms, so at least 15");
            }
            let scales = scales.unwrap_or(default_scales);
            let mut frames = Vec::new();
            for (symbol, a) in with_lattice_constants(&elements, &lattice)? {
                for seed in 0..seeds.unwrap_or(default_seeds) {
                    frames.extend(generate::growth(&symbol, a, seed, max_size, &scales).map_err(anyhow::Error::msg)?);
                }
            }
            write(&output, &frames)
        }
        Data::Rattle {
            input,
            output,
            amplitudes,
            copies,
            seed,
        } => rattle(&input, &output, &amplitudes, copies, seed),
        Data::Relaxed {
            files:
                ReferenceRun {
                    input,
                    output,
                    reference,
                    timeout,
                },
            fmax,
            steps,
            optimizer,
            jobs,
        } => {
            if minima_io::extxyz::is_compressed(&output) {
                bail!("the output is appended to as frames converge: give an uncompressed .extxyz");
            }
            let calculator = reference_calculator(&reference, timeout)?;
            let job = RelaxToMinimum {
                calculator: calculator.as_ref(),
                options: RelaxOptions {
                    optimizer,
                    fmax,
                    steps,
                    ..RelaxOptions::default()
                },
            };
            journalled(&job, &input, &output, jobs, "relaxed")
        }
        Data::Explored {
            calculator,
            input,
            output,
            start,
            fmax,
            steps,
            seed,
            path,
        } => {
            if minima_io::extxyz::is_compressed(&output) {
                bail!("the output is appended to as relaxations end: give an uncompressed .extxyz");
            }
            if path.is_empty() || path.iter().any(|f| !(*f > 0.0 && *f <= 1.0)) {
                bail!("--path takes fractions of a relaxation's steps in (0, 1], e.g. 0.25,0.5,1");
            }
            let explorer = calculator.load_one()?;
            let job = minima_explore::landing::Explored {
                explorer: explorer.as_ref(),
                start,
                seed,
                options: RelaxOptions {
                    fmax,
                    steps,
                    ..RelaxOptions::default()
                },
                path,
                source: input.display().to_string(),
            };
            journalled(&job, &input, &output, 1, "explored")
        }
        Data::NormalModes {
            files:
                ReferenceRun {
                    input,
                    output,
                    reference,
                    timeout,
                },
            temperature,
            samples,
            seed,
        } => {
            if !(temperature.is_finite() && temperature > 0.0) || samples == 0 {
                bail!("--temperature must be positive (K) and --samples at least 1");
            }
            let calculator = reference_calculator(&reference, timeout)?;
            let hessian = reference_hessian(&reference, timeout, calculator.as_ref());
            let sampling = Sampling {
                temperature,
                samples,
                seed,
            };
            normal_modes(&input, &output, &sampling, hessian)
        }
        Data::Compliance {
            files:
                ReferenceRun {
                    input,
                    output,
                    reference,
                    timeout,
                },
            max_force_constant,
            jobs,
        } => {
            if minima_io::extxyz::is_compressed(&output) {
                bail!("the output is appended to as frames finish: give an uncompressed .extxyz");
            }
            if !(max_force_constant.is_finite() && max_force_constant > 0.0) {
                bail!("--max-force-constant must be a positive force constant (eV/Å²)");
            }
            let calculator = reference_calculator(&reference, timeout)?;
            let hessian = reference_hessian(&reference, timeout, calculator.as_ref());
            let job = minima_explore::minimum::RecordCompliance {
                reference: calculator.name(),
                hessian: &hessian,
                max_force_constant,
            };
            journalled(&job, &input, &output, jobs, "compliance")
        }
        Data::Split {
            input,
            scheme,
            train_points,
            max_train_size,
            seed,
            fractions,
            out_dir,
        } => {
            let fractions = fractions
                .map(|given| {
                    <[f64; 3]>::try_from(given.as_slice()).map_err(|_| {
                        anyhow::anyhow!(
                            "--fractions takes three numbers (train,validation,test), not {}",
                            given.len()
                        )
                    })
                })
                .transpose()?;
            if let Some(fractions) = fractions {
                minima_data::split::check_fractions(fractions).context("--fractions")?;
            }
            let frames = extxyz::read_all(&input)?;
            let scheme = match scheme.as_deref() {
                // A detected scheme still takes the options given.
                None => match Scheme::detect(&frames).with_context(|| {
                    format!(
                        "{}: cannot tell the dataset (no qm9_index, element or seed); give --scheme",
                        input.display()
                    )
                })? {
                    Scheme::Fcc { .. } => Scheme::Fcc { train_points },
                    detected => detected,
                },
                Some("qm9") => Scheme::Qm9,
                Some("fcc") => Scheme::Fcc { train_points },
                Some("growth") => Scheme::Growth,
                Some("size") => Scheme::Size { max_train_size },
                Some(other) => bail!("scheme {other:?}: choose qm9, fcc, growth or size"),
            };
            let split = scheme.split(&frames, seed, fractions).map_err(anyhow::Error::msg)?;
            std::fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
            for (name, indices) in [
                ("train", &split.train),
                ("validation", &split.validation),
                ("test", &split.test),
            ] {
                let part: Vec<Atoms> = indices.iter().map(|&i| frames[i].clone()).collect();
                extxyz::write_all(&out_dir.join(format!("{name}.extxyz")), &part)?;
                writeln!(std::io::stdout(), "{name}: {} frames", part.len())?;
            }
            let record = json!({
                "input": input.display().to_string(),
                "scheme": format!("{scheme:?}"),
                "seed": seed,
                "fractions": fractions.or(scheme.fractions()),
                "train": split.train,
                "validation": split.validation,
                "test": split.test,
            });
            minima_io::write_atomic(&out_dir.join("split.json"), |out| {
                serde_json::to_writer_pretty(&mut *out, &record).map_err(std::io::Error::other)
            })?;
            Ok(())
        }
    }
}

/// Each element with its lattice constant: from `X=a` overrides, else experiment.
fn with_lattice_constants(elements: &[String], overrides: &[String]) -> Result<Vec<(String, f64)>> {
    let mut given = std::collections::HashMap::new();
    for item in overrides {
        let (symbol, a) = item
            .split_once('=')
            .with_context(|| format!("--lattice {item:?}: expected X=a, e.g. Cu=3.615"))?;
        let a: f64 = a
            .parse()
            .with_context(|| format!("--lattice {item:?}: {a:?} is not a number"))?;
        if !(a.is_finite() && a > 0.0) {
            bail!("--lattice {item:?}: the lattice constant must be positive");
        }
        given.insert(symbol.to_string(), a);
    }
    elements
        .iter()
        .map(|symbol| {
            let a = given
                .get(symbol)
                .copied()
                .or_else(|| generate::fcc_lattice_constant(symbol))
                .with_context(|| format!("no lattice constant known for {symbol}: give --lattice {symbol}=a"))?;
            Ok((symbol.clone(), a))
        })
        .collect()
}

/// The scales of `scales`, with 1.0 added when asked.
fn grid(scales: &Grid, with_equilibrium: bool) -> Vec<f64> {
    if with_equilibrium {
        scales.values_with_equilibrium()
    } else {
        scales.values()
    }
}

fn reference_calculator(name: &str, timeout: Option<f64>) -> Result<Box<dyn Calculator>> {
    let settings = CalculatorOptions {
        timeout: timeout.map(Duration::from_secs_f64),
        cp2k_ranks: None,
    };
    Ok(calculator_by_name(name, &settings)?)
}

/// The name a generated frame's `base_id` gives its source: the file name, which stays the
/// same when the folder moves.
fn source_name(input: &Path) -> String {
    input
        .file_name()
        .map_or_else(|| input.display().to_string(), |n| n.to_string_lossy().into_owned())
}

fn rattle(input: &Path, output: &Path, amplitudes: &[f64], copies: usize, seed: u64) -> Result<()> {
    if let Some(bad) = amplitudes.iter().find(|a| !(a.is_finite() && **a > 0.0)) {
        bail!("--amplitudes: {bad} is not a positive length (Å)");
    }
    if copies == 0 {
        bail!("--copies must be at least 1");
    }
    let _lock = minima_io::OutputLock::acquire(output)?;
    let frames = minima_data::read_frames(input)?;
    let source = source_name(input);
    let bar = minima_io::progress::task(frames.len() as u64, "rattling");
    let (mut rattled, mut skipped) = (Vec::new(), 0);
    for (frame, base) in frames.iter().enumerate() {
        for (a, &amplitude) in amplitudes.iter().enumerate() {
            for copy in 0..copies {
                match sampling::rattle(base, amplitude, seed, &source, frame, a * copies + copy) {
                    Some(atoms) => rattled.push(atoms),
                    None => skipped += 1,
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    report_skipped(skipped, "rattled copies");
    write(output, &rattled)
}

fn report_skipped(skipped: usize, what: &str) {
    if skipped > 0 {
        eprintln!(
            "skipped {skipped} {what}: each of {} draws put two atoms closer than {} x the sum of              their covalent radii",
            sampling::MAX_DRAWS,
            sampling::MIN_DISTANCE_FRACTION
        );
    }
}

/// Runs `job` over `input` into `output` as a journalled, resumable run of `jobs` frames at a
/// time, and reports what it did (`done`: what the frames are now, e.g. "relaxed").
fn journalled(job: &dyn FrameJob, input: &Path, output: &Path, jobs: usize, done: &str) -> Result<()> {
    let options = LabelOptions {
        jobs,
        shard: None,
        progress: true,
    };
    let summary = run_journalled(job, input, output, &options)?;
    super::label::report(output, &summary, done)
}

/// The reference's Hessian: xtb's own (`xtb --hess`), or central differences of the forces
/// of `calculator` for the others, and for xtb where its own fails (xtb 6.5's `--hess` aborts
/// on some linear molecules, acetylene among them).
fn reference_hessian<'a>(
    reference: &str,
    timeout: Option<f64>,
    calculator: &'a dyn minima_label::Calculator,
) -> impl Fn(&Atoms) -> Result<Vec<f64>, minima_label::CalcError> + Sync + 'a {
    let xtb = (reference == "xtb").then(|| minima_label::Xtb {
        timeout: timeout.map_or(minima_label::Xtb::default().timeout, Duration::from_secs_f64),
        ..Default::default()
    });
    move |atoms: &Atoms| match &xtb {
        Some(xtb) => xtb
            .hessian(atoms)
            .or_else(|_| finite_difference_hessian(calculator, atoms, HESSIAN_DELTA)),
        None => finite_difference_hessian(calculator, atoms, HESSIAN_DELTA),
    }
}

/// The settings of normal-mode sampling.
struct Sampling {
    temperature: f64,
    samples: usize,
    seed: u64,
}

/// Samples `sampling.samples` structures about each minimum of `input` from its Hessian; a
/// frame that is not marked a minimum, whose Hessian fails or shows it is no minimum is listed
/// in `OUTPUT.failed` and the others are written.
fn normal_modes(
    input: &Path,
    output: &Path,
    sampling: &Sampling,
    hessian: impl Fn(&Atoms) -> Result<Vec<f64>, minima_label::CalcError>,
) -> Result<()> {
    let _lock = minima_io::OutputLock::acquire(output)?;
    let frames = minima_data::read_frames(input)?;
    let source = source_name(input);
    let bar = minima_io::progress::task(frames.len() as u64, "normal modes");
    let (mut sampled, mut failures, mut skipped) = (Vec::new(), Vec::new(), 0);
    for (frame, base) in frames.iter().enumerate() {
        let modes = match minima_data::equilibrium_flag(base) {
            Ok(Some(true)) => hessian(base)
                .map_err(|e| e.to_string())
                .and_then(|h| sampling::normal_modes(base, &h)),
            Ok(_) => Err("not marked equilibrium=T: sample about minima of the reference (minima data relaxed)".into()),
            Err(message) => Err(message),
        };
        match modes {
            Ok(modes) => {
                for k in 0..sampling.samples {
                    let sample = sampling::normal_mode_sample(
                        base,
                        &modes,
                        sampling.temperature,
                        sampling.seed,
                        &source,
                        frame,
                        k,
                    );
                    match sample {
                        Some(atoms) => sampled.push(atoms),
                        None => skipped += 1,
                    }
                }
            }
            Err(reason) => {
                bar.println(format!("frame {frame}: failed: {reason}"));
                failures.push(Failure {
                    index: frame,
                    reason,
                    fingerprint: Some(fingerprint(base)),
                });
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    report_skipped(skipped, "samples");
    write(output, &sampled)?;
    write_failures(output, &failures).with_context(|| format!("writing {}", failures_path(output).display()))?;
    if !failures.is_empty() {
        let indices: Vec<usize> = failures.iter().map(|f| f.index).collect();
        bail!(
            "{} of {} frames failed (frames {}); reasons in {}; the samples of the others are in {}",
            failures.len(),
            frames.len(),
            frame_list(&indices),
            failures_path(output).display(),
            output.display()
        );
    }
    Ok(())
}

fn write(output: &std::path::Path, frames: &[Atoms]) -> Result<()> {
    extxyz::write_all(output, frames)?;
    writeln!(std::io::stdout(), "{}: {} frames", output.display(), frames.len())?;
    Ok(())
}
