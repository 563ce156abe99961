//! `minima predict`: energies, forces and per-atom contributions of a trained model, written
//! as ASE writes a calculator's results (`energy=`, per-atom `forces` and `energies`).

use std::path::PathBuf;

use anyhow::Result;
use minima_atoms::ArrayData;
use minima_data::Sample;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: super::ModelArgs,
    /// Structures (extxyz).
    #[arg(short, long)]
    input: PathBuf,
    /// Output extxyz: the input frames with the model's energy, forces and per-atom
    /// contributions (`energies`, ASE's name for per-atom energies).
    #[arg(short, long)]
    output: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let potential = args.model.load()?;
    let mut frames = minima_data::read_frames(&args.input)?;
    let source = args.input.display().to_string();
    let samples = minima_data::samples_of(&frames, &source, &potential.config.graph_spec(), false, || {})?;
    let refs: Vec<&Sample> = samples.iter().collect();
    let predicted = minima_train::predict_samples(&potential, &refs, args.model.batch, true)?;
    for (atoms, p) in frames.iter_mut().zip(predicted) {
        atoms.set_energy(p.energy);
        atoms.set_forces(p.forces.unwrap_or_default().into_iter().flatten().collect())?;
        atoms.set_array("energies", 1, ArrayData::Float(p.atom_energies))?;
    }
    minima_io::extxyz::write_all(&args.output, &frames)?;
    println!("{} structures → {}", frames.len(), args.output.display());
    Ok(())
}
