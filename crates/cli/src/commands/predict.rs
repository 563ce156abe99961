//! `minima predict`: energies, forces, per-atom contributions and (periodic cells) the stress
//! of a trained model, written as ASE writes a calculator's results (`energy=`, `stress=`,
//! per-atom `forces` and `energies`); of several models (a committee), their mean and spread
//! (`energy_std`, `max_force_std`, per-atom `forces_std`).

use std::path::PathBuf;

use anyhow::Result;
use minima_atoms::{Atoms, Labels};
use minima_data::Sample;
use minima_explore::FrameFailures;
use minima_model::{Potential, Predicted};

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
    /// Split structures of more than this many atoms into spatial domains of about as many
    /// atoms (interior and halo), each run alone (equal to the whole structure's result);
    /// default: only structures that would not fit the memory budget in one piece.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    domain_atoms: Option<u64>,
}

pub fn run(args: Args) -> Result<()> {
    let members = args.model.load_all()?;
    let frames = minima_data::read_frames(&args.input)?;
    let _lock = super::lock_output(&args.output)?;
    let source = args.input.display().to_string();
    let mut failures = FrameFailures::default();
    // Each member's labels per frame; a frame any member fails on is a failure.
    let mut per_frame: Vec<Result<Vec<Labels>, String>> = vec![Ok(Vec::new()); frames.len()];
    for (file, potential) in &members {
        let name = match members.len() {
            1 => String::new(),
            _ => format!("{}: ", file.display()),
        };
        for (frame, predicted) in predict_frames(potential, &frames, &source, &args) {
            let entry = &mut per_frame[frame];
            match (predicted.and_then(labels_of), entry.as_mut()) {
                (Ok(labels), Ok(all)) => all.push(labels),
                (Err(error), Ok(_)) => *entry = Err(format!("{name}{error:#}")),
                (_, Err(_)) => {}
            }
        }
    }
    let mut written = Vec::with_capacity(frames.len());
    for (frame, (atoms, result)) in frames.iter().zip(per_frame).enumerate() {
        let labelled = result.and_then(|all| {
            let labels = match all.len() {
                1 => all.into_iter().next().expect("one member"),
                _ => minima_atoms::Deviation::mean_of(&all).expect("a committee has members"),
            };
            let mut atoms = atoms.clone();
            labels.apply(&mut atoms).map_err(|e| e.to_string())?;
            Ok(atoms)
        });
        match labelled {
            Ok(atoms) => written.push(atoms),
            Err(error) => failures.push(frame, error),
        }
    }
    super::write_frames(&args.output, &written)?;
    report!("{} structures → {}", written.len(), args.output.display());
    super::finish_frames(&args.input, &failures, written.len(), &args.output, &args.output)
}

/// One model's prediction of every frame, in frame order. Each frame on its own: one the
/// model cannot take (an element it never saw, atoms on top of each other) must not cost
/// the others.
fn predict_frames(
    potential: &Potential,
    frames: &[Atoms],
    source: &str,
    args: &Args,
) -> Vec<(usize, Result<Predicted>)> {
    let spec = potential.config.graph_spec();
    let mut samples = Vec::with_capacity(frames.len());
    let mut results = Vec::new();
    for (index, atoms) in frames.iter().enumerate() {
        match minima_model::inference::domains_for(potential, atoms, args.domain_atoms.map(|n| n as usize)) {
            Ok(Some(size)) => {
                let predicted = minima_model::inference::predict_in_domains(potential, atoms, size);
                results.push((index, predicted.map_err(anyhow::Error::from)));
                continue;
            }
            Ok(None) => {}
            Err(error) => {
                results.push((index, Err(error.into())));
                continue;
            }
        }
        let sample = Sample::from_atoms(atoms, index, source, &spec)
            .map_err(anyhow::Error::from)
            .and_then(|sample| Ok(potential.check_elements(&sample.graph, index).map(|_| sample)?));
        match sample {
            Ok(sample) => samples.push(sample),
            Err(error) => results.push((index, Err(error))),
        }
    }
    let refs: Vec<&Sample> = samples.iter().collect();
    let predicted = match minima_model::predict_samples(potential, &refs, args.model.batch, true) {
        Ok(predicted) => predicted.into_iter().map(Ok).collect(),
        // A batch failed: find the frames that fail alone.
        Err(_) => refs
            .iter()
            .map(|&sample| Ok(minima_model::predict_samples(potential, &[sample], 1, true)?.remove(0)))
            .collect::<Vec<Result<_>>>(),
    };
    results.extend(samples.iter().map(|s| s.frame).zip(predicted));
    results.sort_by_key(|(frame, _)| *frame);
    results
}

/// The model's energy, forces, per-atom contributions and (periodic cells) stress; an error
/// when the model gave a number that is not finite.
fn labels_of(p: Predicted) -> Result<Labels> {
    let labels = Labels {
        energy: p.energy,
        forces: p.forces.unwrap_or_default(),
        energies: Some(p.atom_energies),
        stress: p.stress,
        deviation: None,
    };
    let finite = labels.energy.is_finite()
        && labels
            .forces
            .iter()
            .flatten()
            .chain(labels.energies.iter().flatten())
            .chain(labels.stress.iter().flatten())
            .all(|x| x.is_finite());
    anyhow::ensure!(
        finite,
        "the model's energy, forces or stress are not finite (NaN or infinite)"
    );
    Ok(labels)
}
