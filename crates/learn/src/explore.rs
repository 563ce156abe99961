//! Exploration: the committee mean relaxes the chosen structures from rattled, compressed and
//! stretched starts and runs short Langevin dynamics from them; every few steps the structure
//! is a candidate, with the committee's deviation recorded (`max_force_std` and friends).

use std::path::{Path, PathBuf};

use anyhow::Result;
use minima_atoms::{Atoms, Calculator, Value};
use minima_bonds::record::with_fixed_bonds;
use minima_explore::dynamics::{self, DynamicsFiles, DynamicsOptions, Thermostat};
use minima_explore::landing::Start;
use minima_explore::relax::{relax, RelaxOptions};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::ExploreConfig;

/// One base structure per group of `frames` and composition (a QM9 molecule; each size of a
/// growth run), in order of first appearance, among the groups `keep` accepts: its
/// `equilibrium=T` frame, else the frame whose `scale` is nearest 1, else its first. (The
/// frame index in `frames` and the structure.)
pub fn base_structures(frames: &[Atoms], keep: impl Fn(&str) -> bool) -> Vec<(usize, Atoms)> {
    let mut groups: Vec<(String, usize, f64)> = Vec::new();
    for (index, atoms) in frames.iter().enumerate() {
        let group = minima_data::group_key(atoms, index);
        if !keep(&group) {
            continue;
        }
        let group = format!("{group} {}", atoms.formula());
        let rank = match (atoms.info.get("equilibrium"), atoms.info.get("scale")) {
            (Some(Value::Bool(true)), _) => -1.0,
            (_, Some(Value::Float(scale))) => (scale - 1.0).abs(),
            _ => f64::MAX,
        };
        match groups.iter_mut().find(|(g, _, _)| *g == group) {
            Some(entry) if rank < entry.2 => (entry.1, entry.2) = (index, rank),
            Some(_) => {}
            None => groups.push((group, index, rank)),
        }
    }
    groups
        .into_iter()
        .map(|(_, index, _)| (index, frames[index].clone()))
        .collect()
}

/// `count` of `bases` drawn with `seed`.
pub fn choose(bases: &[(usize, Atoms)], count: usize, seed: u64) -> Vec<(usize, Atoms)> {
    let mut chosen = bases.to_vec();
    chosen.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    chosen.truncate(count);
    chosen
}

/// What exploring one structure gave: candidate frames, and the runs that failed (a
/// calculator failure or a collapse ends a path; what it visited before stays).
#[derive(Default)]
pub struct Explored {
    pub candidates: Vec<Atoms>,
    pub failed: Vec<String>,
}

/// How structures are explored: with `committee`, from `starts`, as `config` says; `source`
/// names the data the structures come from; `scratch` is a folder for the dynamics' files.
pub struct Explorer<'a> {
    pub committee: &'a dyn Calculator,
    pub source: String,
    pub starts: Vec<Start>,
    pub config: &'a ExploreConfig,
    pub seed: u64,
    pub scratch: PathBuf,
}

impl Explorer<'_> {
    /// Explores `base`, frame `index` of the data.
    pub fn explore(&self, base: &Atoms, index: usize) -> Explored {
        let (committee, source, config, seed) = (self.committee, self.source.as_str(), self.config, self.seed);
        let mut out = Explored::default();
        let base = with_fixed_bonds(base);
        let candidate = |atoms: &Atoms, how: String, step: usize| -> Atoms {
            let mut frame = minima_data::sampling::displaced(&base, atoms.positions().to_vec(), source, index);
            for key in [minima_atoms::keys::ENERGY_STD, minima_atoms::keys::MAX_FORCE_STD] {
                if let Some(value) = atoms.info.get(key) {
                    frame.info.insert(key.into(), value.clone());
                }
            }
            frame.info.insert("explored_start".into(), Value::Str(how));
            frame.info.insert("explored_step".into(), Value::Int(step as i64));
            frame
        };
        let options = RelaxOptions {
            fmax: config.fmax,
            steps: config.steps,
            ..RelaxOptions::default()
        };
        for start in &self.starts {
            let from = start.apply(&base, seed, index);
            let mut visited = Vec::new();
            let result = relax(committee, &from, &options, |step| {
                if step.step % config.every == 0 {
                    visited.push(candidate(step.atoms, start.to_string(), step.step));
                }
            });
            match result {
                Ok(relaxation) => {
                    // The last structure, as the observer saw it (the committee's spread set).
                    if relaxation.steps % config.every != 0 {
                        visited.push(candidate(&relaxation.atoms, start.to_string(), relaxation.steps));
                    }
                    if let minima_explore::relax::Stop::Failed(why) = &relaxation.stop {
                        out.failed.push(format!("{start}: {why}"));
                    }
                }
                Err(e) => out.failed.push(format!("{start}: {e}")),
            }
            out.candidates.extend(visited);
        }
        if config.md_steps > 0 {
            let how = format!("md:{}K", config.md_temperature);
            match run_dynamics(committee, &base, config, seed ^ index as u64, &self.scratch) {
                Ok(frames) => out.candidates.extend(frames.iter().map(|f| {
                    let step = match f.info.get("md_step") {
                        Some(Value::Int(step)) => *step as usize,
                        _ => 0,
                    };
                    candidate(f, how.clone(), step)
                })),
                Err(e) => out.failed.push(format!("{how}: {e}")),
            }
        }
        out
    }
}

/// Langevin dynamics of `base` with the committee; the trajectory's frames.
fn run_dynamics(
    committee: &dyn Calculator,
    base: &Atoms,
    config: &ExploreConfig,
    seed: u64,
    scratch: &Path,
) -> Result<Vec<Atoms>> {
    std::fs::create_dir_all(scratch)?;
    let files = DynamicsFiles {
        trajectory: scratch.join("md.extxyz"),
        log: scratch.join("md.csv"),
    };
    // A fresh run each time: a trajectory left by a killed exploration is not resumed.
    let _ = std::fs::remove_file(&files.trajectory);
    let options = DynamicsOptions {
        timestep: config.md_timestep,
        steps: config.md_steps,
        temperature: config.md_temperature,
        thermostat: Thermostat::Langevin { friction: 0.01 },
        barostat: None,
        seed,
        every: config.md_every,
    };
    let result = dynamics::run(committee, base, &options, &files, |_| {});
    let frames = minima_io::extxyz::read_all(&files.trajectory).unwrap_or_default();
    let _ = std::fs::remove_dir_all(scratch);
    match result {
        Ok(_) => Ok(frames),
        // What it visited before failing is still worth selecting from.
        Err(_) if !frames.is_empty() => Ok(frames),
        Err(e) => Err(e.into()),
    }
}
