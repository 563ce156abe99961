//! Priors: physics added to any architecture's energy, listed in `[[model.priors]]`, each
//! entry naming its `kind`. Two sorts:
//! - fixed pair priors ([`PairPrior`], such as [`zbl`]) give an energy per edge of the model's
//!   graph from the geometry and the elements alone, in eV; half of it goes to each atom of
//!   the pair (the graph holds both directions of a pair), so that per-atom energies still sum
//!   to the total. The sum is added to the architecture's output divided by the residual scale
//!   σ, so that [`crate::Potential`]'s de-normalisation gives it back in eV and the trainer's
//!   normalised target (E − Σ ref)/σ asks the network for the rest;
//! - learnt pair heads ([`PairHead`], such as [`coulomb_lj`]) read the architecture's final node
//!   features and add their pair energies to the network's, in its units.
//!
//! Per-element reference energies (the normalisation, [`reference`]) are the per-atom prior
//! every model has.
//!
//! A new prior is one file here (its settings, implementing [`PriorSpec`], and what it
//! computes) plus its variant of [`PriorConfig`], its arm in [`PriorConfig::spec`] and its
//! default in [`PriorConfig::variants`].

pub mod coulomb_lj;
pub mod reference;
pub mod zbl;

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::batch::GraphBatch;
use crate::fields::{Block, Field, Fields};
use crate::message_layers::{EdgeReadout, Edges};
use crate::ModelError;

/// An energy per pair from the geometry and the elements alone (no parameters).
pub trait PairPrior: Send + std::fmt::Debug {
    /// E_ij per edge, eV, (edges,); `numbers` the batch's atomic numbers.
    fn edge_energy(&self, edges: &Edges, numbers: &Tensor) -> Tensor;

    /// A distance, Å, beyond which every pair of the atoms `numbers` has exactly zero energy
    /// and gradient, when there is one: only shorter edges are then evaluated.
    fn reach(&self, _numbers: &Tensor) -> Option<f64> {
        None
    }
}

/// A learnt pair energy on the architecture's node features: a block that adds to
/// [`Field::NetworkEnergy`], and the same on edge chunks.
pub trait PairHead: Block + EdgeReadout + Send {
    /// As the edge readout of [`crate::message_layers::in_chunks`].
    fn as_readout(&self) -> &dyn EdgeReadout;
}

impl<T: Block + EdgeReadout + Send> PairHead for T {
    fn as_readout(&self) -> &dyn EdgeReadout {
        self
    }
}

/// One `[[model.priors]]` entry: the registry of priors, by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PriorConfig {
    /// Screened nuclear repulsion at short range ([`zbl`]).
    Zbl(zbl::ZblConfig),
    /// The physics Transformer's learnt Coulomb + Lennard-Jones pair head ([`coulomb_lj`]).
    #[serde(rename = "coulomb_lj")]
    CoulombLj(coulomb_lj::CoulombLjConfig),
}

/// What a prior is built from: the model around it.
pub struct PriorContext<'a> {
    /// Where a learnt prior's parameters go.
    pub path: nn::Path<'a>,
    /// The width of the architecture's node features.
    pub width: i64,
    pub cutoff: Option<f64>,
    /// The residual scale σ, eV.
    pub scale: f64,
    pub kind: Kind,
    pub device: Device,
}

/// A prior, built.
pub enum Prior {
    Pair(Box<dyn PairPrior>),
    Head(Box<dyn PairHead>),
}

/// What the model layer knows of one prior: each prior's settings type implements it.
pub trait PriorSpec {
    /// The `kind` of its entries.
    fn name(&self) -> &'static str;

    /// Checks the settings against the model's `elements` and graph `cutoff`.
    fn validate(&self, elements: &[u8], cutoff: Option<f64>) -> Result<(), ModelError>;

    /// Parameters of the prior on node features of `width` (none for a fixed prior).
    fn parameter_count(&self, _width: u64) -> u64 {
        0
    }

    /// Numbers per edge a forward pass keeps for the backward pass, on node features of
    /// `width`.
    fn activations_per_edge(&self, _width: u64) -> u64 {
        0
    }

    fn build(&self, context: &PriorContext) -> Prior;
}

impl PriorConfig {
    /// The registry: each kind's settings, which describe and build it.
    pub fn spec(&self) -> &dyn PriorSpec {
        match self {
            PriorConfig::Zbl(config) => config,
            PriorConfig::CoulombLj(config) => config,
        }
    }

    /// One entry of each kind, at its defaults: the priors the shared model suite adds to
    /// every architecture.
    pub fn variants() -> Vec<PriorConfig> {
        vec![
            PriorConfig::Zbl(Default::default()),
            PriorConfig::CoulombLj(Default::default()),
        ]
    }

    /// The `kind` of the entry.
    pub fn name(&self) -> &'static str {
        self.spec().name()
    }
}

/// The priors of a model, built: the learnt heads, each a block, and the fixed pair priors,
/// together one block.
#[derive(Default)]
pub struct Priors {
    pub heads: Vec<Box<dyn PairHead>>,
    pub pairs: PairPriors,
}

impl Priors {
    /// Builds `configs`; the i-th entry's parameters, if any, under `path / "priors" / i`
    /// ([`Priors::path`]).
    pub fn new(configs: &[PriorConfig], context: &PriorContext) -> Priors {
        let mut priors = Priors::default();
        for (index, config) in configs.iter().enumerate() {
            let context = PriorContext {
                path: Priors::path(&context.path, index),
                ..*context
            };
            match config.spec().build(&context) {
                Prior::Pair(prior) => priors.pairs.0.push(prior),
                Prior::Head(head) => priors.heads.push(head),
            }
        }
        priors
    }

    /// Where the `index`-th prior's parameters are: under [`Priors::prefix`].
    pub fn path<'a>(root: &nn::Path<'a>, index: usize) -> nn::Path<'a> {
        root / "priors" / index
    }

    /// The names of the `index`-th prior's parameters begin with this.
    pub fn prefix(index: usize) -> String {
        format!("priors.{index}.")
    }

    /// The blocks, in order: the heads (after the architecture, before the network energy is
    /// read), then the fixed pair priors when there are any.
    pub fn blocks(&self) -> Vec<&dyn Block> {
        let mut blocks: Vec<&dyn Block> = self.heads.iter().map(|h| h.as_ref() as &dyn Block).collect();
        if !self.pairs.is_empty() {
            blocks.push(&self.pairs);
        }
        blocks
    }
}

/// The fixed pair priors of a model.
#[derive(Debug, Default)]
pub struct PairPriors(Vec<Box<dyn PairPrior>>);

impl PairPriors {
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
        if self.0.is_empty() {
            return None;
        }
        let edges = Edges::of(batch);
        let zero = Tensor::zeros([batch.n_atoms()], (batch.kind(), batch.device()));
        if edges.count() == 0 {
            return Some(zero);
        }
        // A prior with a reach sees only the edges inside it: ZBL's are rarely any.
        Some(self.0.iter().fold(zero, |total, prior| {
            let near = prior.reach(&batch.numbers).map(|reach| edges.within(reach));
            let near = near.as_ref().unwrap_or(&edges);
            if near.count() == 0 {
                return total;
            }
            total + near.sum_to_centers(&(prior.edge_energy(near, &batch.numbers) * 0.5))
        }))
    }
}

/// Writes [`Field::PriorEnergy`]; a model without fixed priors leaves this block out.
impl Block for PairPriors {
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

/// The settings of the physics Transformer's pair head as `[model.transformer]` held them
/// before it became a prior, and their names in a `coulomb_lj` entry.
pub const LEGACY_PHYSICS_KEYS: [(&str, &str); 6] = [
    ("physics", ""),
    ("pairs", "pairs"),
    ("pair_switch", "switch"),
    ("initial_distance", "initial_distance"),
    ("initial_exponent", "initial_exponent"),
    ("initial_depth", "initial_depth"),
];

/// The variable prefix of the transformer's pair head before it became a prior.
pub const LEGACY_HEAD_PREFIX: &str = "transformer.pair_head.";

/// Moves a `[model]` table written before `[[model.priors]]` to it. Old checkpoints and run
/// files load through this; a configuration written by hand is told the new form instead
/// ([`crate::ModelConfig::check_keys`]).
/// - `[model.zbl]` with `enabled = true` becomes a zbl entry, a disabled one is dropped;
/// - a transformer's physics head (`[model.transformer]` `physics`, on by default then, with
///   `pairs`, `pair_switch` and the `initial_*` values) becomes a coulomb_lj entry, after
///   the zbl one. Other kinds' files recorded those keys too, unread: they are dropped.
pub fn migrate_legacy(model: &mut toml::Table) {
    let mut moved = Vec::new();
    if let Some(toml::Value::Table(mut zbl)) = model.remove("zbl") {
        if zbl.remove("enabled").and_then(|v| v.as_bool()) == Some(true) {
            zbl.insert("kind".into(), toml::Value::String("zbl".into()));
            moved.push(zbl);
        }
    }
    let is_transformer = model.get("kind").and_then(toml::Value::as_str) == Some("transformer");
    if let Some(toml::Value::Table(transformer)) = model.get_mut("transformer") {
        if transformer.contains_key("physics") {
            let physics = transformer.get("physics").and_then(toml::Value::as_bool) == Some(true);
            let mut head = toml::Table::new();
            head.insert("kind".into(), toml::Value::String("coulomb_lj".into()));
            for (old, new) in LEGACY_PHYSICS_KEYS {
                if let Some(value) = transformer.remove(old).filter(|_| !new.is_empty()) {
                    head.insert(new.into(), value);
                }
            }
            if is_transformer && physics {
                moved.push(head);
            }
        }
    }
    if moved.is_empty() {
        return;
    }
    let priors = model.entry("priors").or_insert_with(|| toml::Value::Array(Vec::new()));
    if let toml::Value::Array(list) = priors {
        list.extend(moved.into_iter().map(toml::Value::Table));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migrated(text: &str) -> toml::Table {
        let mut model: toml::Table = toml::from_str(text).unwrap();
        migrate_legacy(&mut model);
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

    #[test]
    fn a_transformer_physics_head_becomes_a_coulomb_lj_prior_after_zbl() {
        let text = "kind = \"transformer\"\n[zbl]\nenabled = true\n[transformer]\nlayers = 2\nphysics = true\npairs = \"bonded\"\npair_switch = 0.5\ninitial_depth = 1.0\n";
        let model = migrated(text);
        let priors: Vec<PriorConfig> = model["priors"].clone().try_into().unwrap();
        let head = coulomb_lj::CoulombLjConfig {
            pairs: coulomb_lj::PairSet::Bonded,
            switch: 0.5,
            initial_depth: 1.0,
            ..Default::default()
        };
        assert_eq!(
            priors,
            [PriorConfig::Zbl(Default::default()), PriorConfig::CoulombLj(head)]
        );
        let transformer = model["transformer"].as_table().unwrap();
        assert_eq!(transformer.keys().collect::<Vec<_>>(), ["layers"]);
        // Switched off, or recorded unread by another kind: the keys go, no head comes.
        let off = migrated("kind = \"transformer\"\n[transformer]\nphysics = false\npairs = \"cutoff\"\n");
        let other = migrated("kind = \"painn\"\n[transformer]\nphysics = true\npair_switch = 1.0\n");
        for model in [off, other] {
            assert!(!model.contains_key("priors"), "{model:?}");
            assert!(model["transformer"].as_table().unwrap().is_empty(), "{model:?}");
        }
    }
}
