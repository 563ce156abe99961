//! Priors: physics added to any architecture's energy, listed in `[[model.priors]]`, each
//! entry naming its `kind`. A pair prior gives an energy per edge of the model's graph, in eV;
//! half of it goes to each atom of the pair (the graph holds both directions of a pair), so
//! that per-atom energies still sum to the total. It is added to the architecture's output
//! divided by the residual scale σ, so that [`crate::Potential`]'s de-normalisation gives it
//! back in eV and the trainer's normalised target (E − Σ ref)/σ asks the network for the rest.
//! Per-element reference energies (the normalisation, [`reference`]) are the per-atom prior
//! every model has.
//!
//! A new prior is one file here and one variant of [`PriorConfig`] (its name, its settings and
//! how it is built).

pub mod reference;
pub mod zbl;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::batch::GraphBatch;
use crate::fields::{Block, Field, Fields};
use crate::message_layers::Edges;
use crate::ModelError;

/// An energy per pair from the geometry and the elements alone (no parameters).
pub trait PairPrior: Send + std::fmt::Debug {
    /// E_ij per edge, eV, (edges,); `numbers` the batch's atomic numbers.
    fn edge_energy(&self, edges: &Edges, numbers: &Tensor) -> Tensor;
}

/// One `[[model.priors]]` entry: the registry of priors, by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PriorConfig {
    /// Screened nuclear repulsion at short range ([`zbl`]).
    Zbl(zbl::ZblConfig),
}

impl PriorConfig {
    /// Checks the settings against the model's `elements` and graph `cutoff`.
    pub fn validate(&self, elements: &[u8], cutoff: Option<f64>) -> Result<(), ModelError> {
        match self {
            PriorConfig::Zbl(config) => config.validate(elements, cutoff),
        }
    }

    /// One entry of each kind, at its defaults: the priors the shared model suite adds to
    /// every architecture.
    pub fn variants() -> Vec<PriorConfig> {
        vec![PriorConfig::Zbl(zbl::ZblConfig::default())]
    }

    /// The `kind` of the entry.
    pub fn name(&self) -> &'static str {
        match self {
            PriorConfig::Zbl(_) => "zbl",
        }
    }

    pub fn build(&self, kind: Kind, device: Device) -> Box<dyn PairPrior> {
        match self {
            PriorConfig::Zbl(config) => Box::new(zbl::Zbl::new(config, kind, device)),
        }
    }
}

/// The priors of a model, built.
#[derive(Debug, Default)]
pub struct Priors(Vec<Box<dyn PairPrior>>);

impl Priors {
    pub fn new(configs: &[PriorConfig], kind: Kind, device: Device) -> Priors {
        Priors(configs.iter().map(|c| c.build(kind, device)).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Σ over the priors of E_ij per edge, eV, (edges,); `None` without priors.
    pub fn edge_energy(&self, edges: &Edges, numbers: &Tensor) -> Option<Tensor> {
        self.0
            .iter()
            .map(|prior| prior.edge_energy(edges, numbers))
            .reduce(|a, b| a + b)
    }

    /// Per-atom share of every edge of `batch`, eV, (atoms,): half of each E_ij to its centre
    /// atom; `None` without priors.
    pub fn atom_energy(&self, batch: &GraphBatch) -> Option<Tensor> {
        let edges = Edges::of(batch);
        self.edge_energy(&edges, &batch.numbers)
            .map(|energy| edges.sum_to_centers(&(energy * 0.5)))
    }
}

/// Writes [`Field::PriorEnergy`]; a model without priors leaves this block out.
impl Block for Priors {
    fn name(&self) -> &str {
        "priors"
    }

    fn reads(&self) -> Vec<Field> {
        vec![Field::Numbers, Field::EdgeIndex, Field::EdgeVectors]
    }

    fn writes(&self) -> Vec<Field> {
        vec![Field::PriorEnergy]
    }

    fn apply(&self, batch: &GraphBatch, fields: &mut Fields, _train: bool) {
        if let Some(energy) = self.atom_energy(batch) {
            fields.insert(Field::PriorEnergy, energy);
        }
    }
}

/// Moves a `[model]` table written before `[[model.priors]]` to it: `[model.zbl]` with
/// `enabled = true` becomes a zbl entry, a disabled one is dropped. Old checkpoints and run
/// files load through this; a configuration written by hand is told the new form instead.
pub fn migrate_legacy_zbl(model: &mut toml::Table) {
    let Some(toml::Value::Table(mut zbl)) = model.remove("zbl") else {
        return;
    };
    if zbl.remove("enabled").and_then(|v| v.as_bool()) != Some(true) {
        return;
    }
    zbl.insert("kind".into(), toml::Value::String("zbl".into()));
    let priors = model.entry("priors").or_insert_with(|| toml::Value::Array(Vec::new()));
    if let toml::Value::Array(list) = priors {
        list.push(toml::Value::Table(zbl));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migrated(text: &str) -> toml::Table {
        let mut model: toml::Table = toml::from_str(text).unwrap();
        migrate_legacy_zbl(&mut model);
        model
    }

    #[test]
    fn an_enabled_model_zbl_becomes_a_prior_and_a_disabled_one_goes() {
        let on = migrated("kind = \"painn\"\n[zbl]\nenabled = true\ninner = 0.3\nouter = 0.5\n");
        assert!(!on.contains_key("zbl"));
        let priors: Vec<PriorConfig> = on["priors"].clone().try_into().unwrap();
        assert_eq!(priors, [PriorConfig::Zbl(zbl::ZblConfig { inner: 0.3, outer: 0.5 })]);
        let off = migrated("kind = \"painn\"\n[zbl]\nenabled = false\ninner = 0.3\n");
        assert!(!off.contains_key("zbl") && !off.contains_key("priors"), "{off:?}");
        let none = migrated("kind = \"painn\"\n");
        assert_eq!(none.len(), 1);
    }
}
