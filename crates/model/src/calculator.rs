//! A trained model as a [`Calculator`], so that everything built for reference methods
//! (relaxation, energy curves, the benchmarks) runs on a model unchanged; several as a
//! [`Committee`], whose mean is the calculator and whose disagreement marks where the models
//! are unsure.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use minima_atoms::{Atoms, CalcError, Calculator, Deviation, Labels};
use minima_data::Graph;
use tch::Device;

use crate::inference::{domains_for, predict_graphs, predict_in_domains};
use crate::Predicted;
use crate::{ModelError, Potential};

/// A loaded checkpoint. Each call builds the structure's graph (with the bonds the frame
/// records, else perceived at its reference geometry) and predicts energy, forces and the
/// per-atom contributions (and the stress of a periodic one). libtorch tensors may not be shared between threads, so calls take
/// turns (a model call is itself parallel through libtorch's threads).
pub struct ModelCalculator {
    potential: Mutex<Potential>,
    name: String,
}

impl ModelCalculator {
    pub fn new(potential: Potential, name: impl Into<String>) -> ModelCalculator {
        ModelCalculator {
            potential: Mutex::new(potential),
            name: name.into(),
        }
    }

    /// Loads a checkpoint (its `.toml` beside it), named after its run folder when it is a
    /// run's `best` or `last`, else after its file (`models/molecules.safetensors`: molecules).
    pub fn load(path: &Path, device: Device) -> Result<ModelCalculator, ModelError> {
        let potential = Potential::load(path, device)?;
        let stem = path.file_stem().and_then(|n| n.to_str());
        let run = path.parent().and_then(Path::file_name).and_then(|n| n.to_str());
        let name = match stem {
            Some("best" | "last") | None => run,
            other => other,
        };
        Ok(ModelCalculator::new(potential, name.unwrap_or("model")))
    }
}

impl Calculator for ModelCalculator {
    fn name(&self) -> &str {
        &self.name
    }

    fn calculate(&self, atoms: &Atoms) -> Result<Labels, CalcError> {
        let potential = self.potential.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let failed = |e: ModelError| CalcError::Failed(e.to_string());
        if let Some(size) = domains_for(&potential, atoms, None).map_err(failed)? {
            let predicted = predict_in_domains(&potential, atoms, size).map_err(failed)?;
            return Ok(labels(predicted));
        }
        // The calculator sees one structure and not its frame: its errors name none, the
        // caller (which knows the frame) does.
        let graph = Graph::build(atoms, &potential.config.graph_spec()).map_err(CalcError::Input)?;
        potential.check_elements(&graph, 0).map_err(|e| match e {
            ModelError::UnknownElement { element, known, .. } => {
                CalcError::Unsupported(format!("the model knows elements {known}, not {element}"))
            }
            other => CalcError::Unsupported(other.to_string()),
        })?;
        let predicted = predict_graphs(&potential, &[&graph], true)
            .map_err(failed)?
            .pop()
            .expect("one graph in, one prediction out");
        Ok(labels(predicted))
    }
}

fn labels(predicted: Predicted) -> Labels {
    Labels {
        energy: predicted.energy,
        forces: predicted.forces.unwrap_or_default(),
        energies: Some(predicted.atom_energies),
        stress: predicted.stress,
        deviation: None,
    }
}

/// The checkpoints `path` names: a checkpoint file; a run folder (its `best.safetensors`); or
/// a committee's folder, whose `member-K` run folders (as `minima train` writes them when
/// `train.committee` > 1) each give their best checkpoint, in member order.
pub fn checkpoints_of(path: &Path) -> Result<Vec<PathBuf>, ModelError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let best = path.join("best.safetensors");
    if best.exists() {
        return Ok(vec![best]);
    }
    let missing = |message: String| ModelError::Checkpoint {
        path: path.display().to_string(),
        message,
    };
    let mut members: Vec<(usize, PathBuf)> = std::fs::read_dir(path)
        .map_err(|e| missing(e.to_string()))?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let index = name.strip_prefix(MEMBER_PREFIX)?.parse().ok()?;
            Some((index, entry.path().join("best.safetensors")))
        })
        .collect();
    if members.is_empty() {
        return Err(missing(
            "a folder that holds neither best.safetensors (a run) nor member-K folders (a committee)".into(),
        ));
    }
    members.sort();
    if let Some((_, absent)) = members.iter().find(|(_, best)| !best.exists()) {
        return Err(missing(format!(
            "committee member {} has no checkpoint yet (its training has not finished an epoch)",
            absent.display()
        )));
    }
    Ok(members.into_iter().map(|(_, best)| best).collect())
}

/// The folder name of committee member `index` inside a committee's folder.
pub fn member_folder(committee: &Path, index: usize) -> PathBuf {
    committee.join(format!("{MEMBER_PREFIX}{index}"))
}

const MEMBER_PREFIX: &str = "member-";

/// Several models of the same elements and cutoff evaluated together: the labels are their
/// mean, with their [`Deviation`]. One member is that model alone, without a deviation.
pub struct Committee {
    members: Vec<ModelCalculator>,
    name: String,
}

impl Committee {
    /// Loads the checkpoints `paths` names (each as [`checkpoints_of`] reads it), refusing
    /// members that differ in elements or cutoff (they would not describe the same structures
    /// the same way), naming both files.
    pub fn load(paths: &[PathBuf], device: Device) -> Result<Committee, ModelError> {
        let mut files = Vec::new();
        for path in paths {
            files.extend(checkpoints_of(path)?);
        }
        if files.is_empty() {
            return Err(ModelError::Config("a committee needs at least one checkpoint".into()));
        }
        let mut members = Vec::with_capacity(files.len());
        let mut first: Option<(&PathBuf, Vec<u8>, Option<f64>)> = None;
        for file in &files {
            let member = ModelCalculator::load(file, device)?;
            let (elements, cutoff) = {
                let potential = member.potential.lock().unwrap_or_else(|p| p.into_inner());
                (potential.refs.elements.clone(), potential.config.cutoff)
            };
            match &first {
                None => first = Some((file, elements, cutoff)),
                Some((path, known, radius)) => {
                    let differs = if *known != elements {
                        Some(format!("elements {known:?} against {elements:?}"))
                    } else if *radius != cutoff {
                        Some(format!("cutoff {radius:?} Å against {cutoff:?} Å"))
                    } else {
                        None
                    };
                    if let Some(what) = differs {
                        return Err(ModelError::Checkpoint {
                            path: file.display().to_string(),
                            message: format!(
                                "cannot join a committee with {}: {what}; a committee's members must know the same elements with the same cutoff",
                                path.display()
                            ),
                        });
                    }
                }
            }
            members.push(member);
        }
        let name = match members.len() {
            1 => members[0].name().to_string(),
            k => format!("committee of {k} ({})", members[0].name()),
        };
        Ok(Committee { members, name })
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn members(&self) -> &[ModelCalculator] {
        &self.members
    }
}

impl Calculator for Committee {
    fn name(&self) -> &str {
        &self.name
    }

    fn calculate(&self, atoms: &Atoms) -> Result<Labels, CalcError> {
        if let [alone] = self.members.as_slice() {
            return alone.calculate(atoms);
        }
        let all = self
            .members
            .iter()
            .map(|m| m.calculate_checked(atoms))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Deviation::mean_of(&all).expect("a committee has members"))
    }
}
