//! Model configuration: the `[model]` table of a run's TOML, stored with every checkpoint so
//! that the checkpoint rebuilds its model.

use serde::{Deserialize, Serialize};

pub use crate::auxiliary::AuxConfig;
pub use crate::painn::PainnConfig;
use crate::priors::PriorConfig;
pub use crate::transformer::TransformerConfig;
pub use crate::vimpnn::{Combine, VimpnnConfig};
use crate::{ArchitectureSpec, ModelError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Mpnn,
    Vimpnn,
    Transformer,
    Painn,
}

impl ModelKind {
    /// Every architecture, as `[model] kind` names them.
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Mpnn,
        ModelKind::Vimpnn,
        ModelKind::Transformer,
        ModelKind::Painn,
    ];

    /// The registry: each kind's entry, in its architecture's file.
    pub fn spec(self) -> &'static dyn ArchitectureSpec {
        match self {
            ModelKind::Mpnn => &crate::mpnn::MpnnSpec,
            ModelKind::Vimpnn => &crate::vimpnn::VimpnnSpec,
            ModelKind::Transformer => &crate::transformer::TransformerSpec,
            ModelKind::Painn => &crate::painn::PainnSpec,
        }
    }

    /// The name `[model] kind` takes.
    pub fn name(self) -> &'static str {
        self.spec().name()
    }

    /// The `[model]` keys this kind reads besides the shared ones (kind, cutoff, dtype,
    /// elements, priors): a key of another kind in its table is an error, not silently ignored.
    pub fn keys(self) -> Vec<&'static str> {
        self.spec().keys()
    }

    /// Every combination of this architecture's switches, each applied to `base` (which sets
    /// the sizes, cutoff and elements), named: the registry the shared model suite runs, so
    /// that a new architecture or switch is tested by every check of it.
    pub fn variants(self, base: &ModelConfig) -> Vec<(String, ModelConfig)> {
        let base = ModelConfig {
            kind: self,
            ..base.clone()
        };
        self.spec().variants(&base)
    }

    /// Whether a model of this kind reads the `[model]` key `key`.
    pub fn reads(self, key: &str) -> bool {
        SHARED_KEYS.contains(&key) || self.keys().contains(&key)
    }

    /// The settings that shrink a model of this kind, for memory refusals.
    pub fn size_keys(self) -> &'static str {
        self.spec().size_keys()
    }
}

/// `[model]` keys every kind reads.
const SHARED_KEYS: [&str; 5] = ["kind", "cutoff", "dtype", "elements", "priors"];

impl std::str::FromStr for ModelKind {
    type Err = String;

    fn from_str(name: &str) -> Result<ModelKind, String> {
        ModelKind::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
            let known: Vec<&str> = ModelKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown model kind {name:?} ({})", known.join(", "))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    pub fn kind(self) -> tch::Kind {
        match self {
            Dtype::F32 => tch::Kind::Float,
            Dtype::F64 => tch::Kind::Double,
        }
    }
}

/// The `[model]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub kind: ModelKind,
    /// Node state size (per bond type for VIMPNN's b variants). Paper: 73.
    pub hidden: i64,
    /// Message-passing iterations T. Paper: 3.
    pub iterations: usize,
    /// Edge cutoff, Å; absent: every pair of a molecule is an edge (periodic data needs one).
    pub cutoff: Option<f64>,
    /// Gaussians expanding the edge distance, spread over [0, cutoff] (or [0, 10 Å]).
    pub radial_basis: usize,
    /// MPNN and VIMPNN: the bond-class one-hot joins the distance in the edge features. Off,
    /// an MPNN sees distances alone: the VIMPNN paper's Table 1 baseline "No bond type
    /// information".
    pub bond_features: bool,
    pub edge_hidden: i64,
    /// Rank-one matrices mixed by the edge network (see `blocks::EdgeNetwork`).
    pub edge_rank: i64,
    pub readout_hidden: i64,
    pub dtype: Dtype,
    /// Elements the model knows (filled from the training data).
    pub elements: Vec<u8>,
    pub vimpnn: VimpnnConfig,
    pub aux: AuxConfig,
    pub transformer: TransformerConfig,
    pub painn: PainnConfig,
    /// `[[model.priors]]`: physics added to the energy of any kind ([`crate::priors`]), such as
    /// ZBL's short-range repulsion; none by default.
    pub priors: Vec<PriorConfig>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            kind: ModelKind::Vimpnn,
            hidden: 73,
            iterations: 3,
            cutoff: None,
            radial_basis: 16,
            bond_features: true,
            edge_hidden: 32,
            edge_rank: 73,
            readout_hidden: 73,
            dtype: Dtype::F32,
            elements: Vec::new(),
            vimpnn: VimpnnConfig::default(),
            aux: AuxConfig::default(),
            transformer: TransformerConfig::default(),
            painn: Default::default(),
            priors: Vec::new(),
        }
    }
}

impl ModelConfig {
    /// Refuses the keys of a `[model]` table as written that its kind does not read (another
    /// kind's settings, which would otherwise be ignored without a word), naming the kinds that
    /// read them. Keys no kind reads are left to deserialisation, which names the known ones.
    pub fn check_keys(table: &toml::Table) -> Result<(), ModelError> {
        let kind = match table.get("kind") {
            None => ModelConfig::default().kind,
            Some(value) => {
                let name = value
                    .as_str()
                    .ok_or_else(|| ModelError::Config(format!("model.kind must be a name, not {value}")))?;
                name.parse()
                    .map_err(|e| ModelError::Config(format!("model.kind: {e}")))?
            }
        };
        if table.contains_key("zbl") {
            return Err(ModelError::Config(
                "[model.zbl] is now a prior: `[[model.priors]]` with `kind = \"zbl\"` (and inner, outer as before; no `enabled`)".into(),
            ));
        }
        let transformer = table.get("transformer").and_then(toml::Value::as_table);
        if let Some((old, _)) = crate::priors::LEGACY_PHYSICS_KEYS
            .iter()
            .find(|(old, _)| transformer.is_some_and(|t| t.contains_key(*old)))
        {
            return Err(ModelError::Config(format!(
                "model.transformer.{old}: the physics head is now a prior any model can carry: `[[model.priors]]` with `kind = \"coulomb_lj\"` (and pairs, switch for pair_switch, initial_distance, initial_exponent, initial_depth; no `physics`)"
            )));
        }
        for key in table.keys() {
            if kind.reads(key) {
                continue;
            }
            let readers: Vec<&str> = ModelKind::ALL
                .into_iter()
                .filter(|k| k.reads(key))
                .map(ModelKind::name)
                .collect();
            if !readers.is_empty() {
                return Err(ModelError::Config(format!(
                    "model.{key} is a setting of {} models, which a {kind} model does not read: remove it, or set model.kind (a {kind} model reads {}, and {})",
                    readers.join(" and "),
                    kind.keys().join(", "),
                    SHARED_KEYS.join(", "),
                    kind = kind.name(),
                )));
            }
        }
        Ok(())
    }

    /// This configuration with the keys its kind does not read at their defaults: what a
    /// checkpoint or run file of it reads back as.
    pub fn without_other_kinds(&self) -> ModelConfig {
        let own = ModelConfig {
            kind: self.kind,
            ..ModelConfig::default()
        };
        let value = toml::Value::try_from(self).expect("a model configuration serialises");
        let mut table = toml::Table::try_from(own).expect("a model configuration serialises");
        if let toml::Value::Table(mine) = value {
            table.extend(mine.into_iter().filter(|(key, _)| self.kind.reads(key)));
        }
        toml::Value::Table(table).try_into().expect("its own keys deserialise")
    }

    /// Serialises the keys its kind reads only (serde's `serialize_with`), so that a
    /// checkpoint or run file lists the settings that made its model and no other kind's.
    pub fn serialize_own_keys<S: serde::Serializer>(config: &ModelConfig, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let value = toml::Value::try_from(config).map_err(S::Error::custom)?;
        let mut table = match value {
            toml::Value::Table(table) => table,
            _ => return Err(S::Error::custom("a model configuration serialises to a table")),
        };
        table.retain(|key, _| config.kind.reads(key));
        table.serialize(serializer)
    }
}

/// Activation bytes one chunk of edges may take when a structure runs in edge chunks.
pub const CHUNK_BYTES: u64 = 256 << 20;

impl ModelConfig {
    pub fn graph_spec(&self) -> minima_data::GraphSpec {
        minima_data::GraphSpec { cutoff: self.cutoff }
    }

    /// Features per edge of MPNN and VIMPNN: the radial basis and the bond classes.
    pub fn edge_feature_count(&self) -> u64 {
        let bonds = if self.bond_features {
            minima_data::BondClass::COUNT
        } else {
            0
        };
        (self.radial_basis + bonds) as u64
    }

    /// The largest distance the radial basis covers.
    pub fn radial_range(&self) -> f64 {
        self.cutoff.unwrap_or(10.0)
    }

    /// Bytes per number of the model's dtype.
    pub fn dtype_bytes(&self) -> u64 {
        match self.dtype {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }

    /// The number of parameters a model of this configuration holds, counted from the sizes
    /// alone, so that a model too large to allocate is refused before it is built.
    pub fn parameter_count(&self) -> u64 {
        let width = self.node_feature_width() as u64;
        let priors: u64 = self.priors.iter().map(|p| p.spec().parameter_count(width)).sum();
        self.kind.spec().parameter_count(self) + priors
    }

    /// The width of the architecture's final node features ([`crate::Field::NodeFeatures`]).
    pub fn node_feature_width(&self) -> i64 {
        self.kind.spec().node_feature_width(self)
    }

    /// Numbers per edge and per atom that a forward pass keeps for its backward pass (the
    /// architecture's edge and node tensors, and the priors' per edge), for
    /// [`ModelConfig::batch_memory`].
    fn activations_per_edge_and_atom(&self) -> (u64, u64) {
        let width = self.node_feature_width() as u64;
        let priors: u64 = self.priors.iter().map(|p| p.spec().activations_per_edge(width)).sum();
        let (edge, atom) = self.kind.spec().activations(self);
        (edge + priors, atom)
    }

    /// Estimated bytes a batch of `atoms` atoms and `edges` edges takes on the device: the
    /// tensors its forward pass keeps, twice that when forces are asked for (the backward pass
    /// holds their gradients), four times when the forces are themselves trained through
    /// (`second_order`: the backward pass is kept for a second one).
    pub fn batch_memory(&self, atoms: u64, edges: u64, forces: bool, second_order: bool) -> u64 {
        let (per_edge, per_atom) = self.activations_per_edge_and_atom();
        let forward = (edges * per_edge + atoms * per_atom) * self.dtype_bytes();
        forward
            * match (forces, second_order) {
                (_, true) => 4,
                (true, false) => 2,
                (false, false) => 1,
            }
    }

    /// Edges per chunk when a structure runs in edge chunks: one chunk's activations, with
    /// their gradients, take about [`CHUNK_BYTES`].
    pub fn chunk_edges(&self) -> i64 {
        let (per_edge, _) = self.activations_per_edge_and_atom();
        (CHUNK_BYTES / (2 * per_edge.max(1) * self.dtype_bytes())).max(1) as i64
    }

    /// Estimated bytes of a structure of `atoms` atoms and `edges` edges run in edge chunks
    /// ([`crate::message_layers::in_chunks`]): per atom the states and message sums of every
    /// layer with their gradients, per edge its indices and offset twice (the batch's and a
    /// copy sorted by centre), and two chunks' activations.
    pub fn chunked_memory(&self, atoms: u64, edges: u64) -> u64 {
        let (_, per_atom) = self.activations_per_edge_and_atom();
        let per_edge = 2 * (3 * 8 + 3 * self.dtype_bytes());
        3 * atoms * per_atom * self.dtype_bytes() + edges * per_edge + 2 * CHUNK_BYTES
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: &str| Err(ModelError::Config(m.to_string()));
        let sizes = [self.hidden, self.edge_hidden, self.edge_rank, self.readout_hidden];
        if sizes.iter().any(|&n| n < 1) || self.iterations < 1 || self.radial_basis < 2 {
            return bad(
                "model: hidden, edge_hidden, edge_rank, readout_hidden and iterations must be ≥ 1, radial_basis ≥ 2",
            );
        }
        if let Some(c) = self.cutoff {
            if !(c.is_finite() && c > 0.0) {
                return bad("model.cutoff must be a positive distance in Å");
            }
        }
        if self.elements.is_empty() {
            return bad("model.elements is empty (it is filled from the training data)");
        }
        self.kind.spec().validate(self)?;
        for prior in &self.priors {
            prior.spec().validate(&self.elements, self.cutoff)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::priors::coulomb_lj::CoulombLjConfig;

    fn error(config: ModelConfig) -> String {
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn bad_configurations_are_named() {
        let good = ModelConfig {
            elements: vec![1, 6],
            ..ModelConfig::default()
        };
        assert!(good.validate().is_ok());
        assert!(error(ModelConfig {
            readout_hidden: 0,
            ..good.clone()
        })
        .contains("readout_hidden"));
        assert!(error(ModelConfig {
            cutoff: Some(-1.0),
            ..good.clone()
        })
        .contains("cutoff"));
        assert!(error(ModelConfig {
            elements: vec![],
            ..good.clone()
        })
        .contains("elements"));
        let mut channels = good.clone();
        channels.vimpnn.channels = vec!["none".into(), "single+dbl".into()];
        assert!(error(channels.clone()).contains("unknown bond class \"dbl\""));
        channels.vimpnn.channels = vec!["none+single".into(), "single+double+triple+aromatic".into()];
        assert!(error(channels.clone()).contains("two channels"));
        channels.vimpnn.channels = vec!["none".into(), "single".into()];
        assert!(error(channels).contains("double is in no channel"));
        let mut grid = good.clone();
        grid.aux.scale_grid = (1.5, 0.9, 10);
        assert!(error(grid).contains("scale_grid"));
        let mut transformer = ModelConfig {
            kind: ModelKind::Transformer,
            ..good
        };
        assert!(error(transformer.clone()).contains("cutoff"));
        transformer.cutoff = Some(5.0);
        assert!(transformer.validate().is_ok());
        transformer.transformer.attention = 10;
        transformer.transformer.heads = 4;
        assert!(error(transformer.clone()).contains("multiple of heads"));
        transformer.transformer.attention = 8;
        transformer.transformer.cls = false;
        transformer.transformer.atom_energy = false;
        assert!(error(transformer.clone()).contains("no energy"));
        let head = CoulombLjConfig {
            switch: 6.0,
            ..Default::default()
        };
        transformer.priors.push(PriorConfig::CoulombLj(head));
        assert!(error(transformer.clone()).contains("switch"));
        transformer.priors = vec![PriorConfig::CoulombLj(Default::default())];
        assert!(transformer.validate().is_ok());
    }
}
