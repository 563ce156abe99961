//! A trained model as a [`Calculator`], so that everything built for reference methods
//! (relaxation, energy curves, the benchmarks) runs on a model unchanged.

use std::path::Path;
use std::sync::Mutex;

use minima_atoms::{Atoms, CalcError, Calculator, Labels};
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
    }
}
