//! `minima relax`: FIRE or L-BFGS relaxation of every frame of a file, with a model or a
//! reference calculator.

use std::path::PathBuf;

use anyhow::Result;
use minima_explore::{FrameFailures, Optimizer, RelaxOptions};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    calculator: super::CalculatorArgs,
    /// Structures to relax (extxyz); every frame is relaxed, unless --frame picks one.
    #[arg(short, long)]
    input: PathBuf,
    /// Relax only this frame (0-based).
    #[arg(long)]
    frame: Option<usize>,
    /// The relaxed structures with their energy and forces (extxyz).
    #[arg(short, long)]
    output: PathBuf,
    /// Converged when every atomic force is below this (eV/Å).
    #[arg(long, default_value_t = 0.05)]
    fmax: f64,
    /// fire (as ASE's) or lbfgs (More–Thuente line search).
    #[arg(long, default_value = "fire")]
    optimizer: Optimizer,
    /// Step limit per structure.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Largest displacement of an atom in one step (Å).
    #[arg(long, default_value_t = 0.2)]
    max_step: f64,
    /// Relax a periodic cell with the positions (ASE's UnitCellFilter at zero pressure; the
    /// calculator must give the stress).
    #[arg(long)]
    cell: bool,
    /// Every accepted step of every structure, with energy and forces (extxyz).
    #[arg(long)]
    trajectory: Option<PathBuf>,
    /// First displace every coordinate by Gaussian noise of this standard deviation (Å), as
    /// ASE's `rattle`; seeded with --seed plus the frame index.
    #[arg(long)]
    rattle: Option<f64>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(args: Args) -> Result<()> {
    let calculator = args.calculator.load_one()?;
    let frames: Vec<(usize, minima_atoms::Atoms)> = match args.frame {
        Some(k) => vec![(k, super::read_frame(&args.input, k)?)],
        None => minima_io::extxyz::read_all(&args.input)?
            .into_iter()
            .enumerate()
            .collect(),
    };
    let options = RelaxOptions {
        optimizer: args.optimizer,
        fmax: args.fmax,
        steps: args.steps,
        max_step: args.max_step,
        cell: args.cell,
        ..RelaxOptions::default()
    };
    let _locks = [Some(&args.output), args.trajectory.as_ref()]
        .into_iter()
        .flatten()
        .map(|path| super::lock_output(path))
        .collect::<Result<Vec<_>>>()?;
    let mut trajectory = Vec::new();
    let mut relaxed = Vec::with_capacity(frames.len());
    let mut failures = FrameFailures::default();
    for (index, frame) in &frames {
        let index = *index;
        let mut start = minima_explore::curve::with_fixed_bonds(frame);
        if let Some(sigma) = args.rattle {
            start = minima_explore::benchmark::perturbed(&start, sigma, args.seed.wrapping_add(index as u64));
        }
        let bar = super::progress(args.steps as u64, &format!("relax {index}"));
        let result = minima_explore::relax(calculator.as_ref(), &start, &options, |step| {
            bar.set_position(step.step as u64);
            bar.set_message(format!("E {:.4} eV, fmax {:.4} eV/Å", step.labels.energy, step.fmax));
            if args.trajectory.is_some() {
                trajectory.push(step.atoms.clone());
            }
        });
        bar.finish_and_clear();
        let result = match result {
            Ok(result) => result,
            Err(error) => {
                // One structure the calculator cannot treat must not cost the others.
                failures.push(index, error);
                continue;
            }
        };
        report!(
            "frame {index} ({}): {} after {} steps ({} {} calls), E = {:.6} eV, fmax = {:.4} eV/Å",
            frame.formula(),
            result.stop,
            result.steps,
            result.evaluations,
            calculator.name(),
            result.labels.energy,
            result.fmax()
        );
        let mut atoms = result.atoms;
        atoms
            .info
            .insert("relax_stop".into(), minima_atoms::Value::Str(result.stop.to_string()));
        atoms
            .info
            .insert("relax_steps".into(), minima_atoms::Value::Int(result.steps as i64));
        relaxed.push(atoms);
    }
    super::write_frames(&args.output, &relaxed)?;
    if let Some(path) = &args.trajectory {
        super::write_frames(path, &trajectory)?;
    }
    report!("{} structures → {}", relaxed.len(), args.output.display());
    super::finish_frames(&args.input, &failures, relaxed.len(), &args.output, &args.output)
}
