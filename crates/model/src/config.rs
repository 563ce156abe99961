//! Model configuration: the `[model]` table of a run's TOML, stored with every checkpoint so
//! that the checkpoint rebuilds its model.

use serde::{Deserialize, Serialize};

use crate::ModelError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Mpnn,
    Vimpnn,
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

/// How VIMPNN combines its per-bond-type messages (paper section 4.2, Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Combine {
    /// a.i: weighted sum with a learnt vector weight per bond type (element-wise).
    #[serde(rename = "a.i")]
    VectorWeights,
    /// a.ii: weighted sum with a learnt scalar weight per bond type (the paper's best).
    #[serde(rename = "a.ii")]
    ScalarWeights,
    /// b.i: messages concatenated into one GRU; node state size = types × hidden.
    #[serde(rename = "b.i")]
    Concatenate,
    /// b.ii: one shared GRU applied per bond type to its own block of the node state, with a
    /// learnt scale per type; node state size = types × hidden.
    #[serde(rename = "b.ii")]
    SharedGru,
    /// c: one GRU per bond type on the same node state; their updates are summed.
    #[serde(rename = "c")]
    GruPerType,
}

/// Auxiliary physical targets (paper section 4.3), each a parallel readout trained with an
/// MSE term weighted by `weight` (α). All three are on by default, as in the paper's VIMPNN
/// (section 5.2); each can be switched off for its ablations. MPNN has no auxiliary readouts
/// and ignores this table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuxConfig {
    /// Number of atoms of each element of the model.
    pub counts: bool,
    /// Number of valence orbitals contributed by each element (count × orbitals per atom).
    pub orbitals: bool,
    /// The "distance scaling" distribution: a Gaussian over `scale_grid` centred on the
    /// structure's scale relative to equilibrium (frames must record `scale`).
    pub scale: bool,
    pub weight: f64,
    /// First and last grid scale and the number of points.
    pub scale_grid: (f64, f64, usize),
    /// Standard deviation of the target Gaussian, in scale units.
    pub scale_width: f64,
}

impl Default for AuxConfig {
    fn default() -> Self {
        AuxConfig {
            counts: true,
            orbitals: true,
            scale: true,
            weight: 0.3,
            scale_grid: (0.8, 1.6, 17),
            scale_width: 0.05,
        }
    }
}

impl AuxConfig {
    pub fn grid(&self) -> Vec<f64> {
        let (first, last, n) = self.scale_grid;
        (0..n)
            .map(|k| first + (last - first) * k as f64 / (n.max(2) - 1) as f64)
            .collect()
    }
}

/// VIMPNN's bond-type channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VimpnnConfig {
    pub combine: Combine,
    /// The bond-type channels, each a `+`-joined list of bond classes (none, single, double,
    /// triple, aromatic). Default three: non-bonded pairs, single bonds, and multiple bonds
    /// (double, triple, aromatic). The paper gives three types without naming them; pairs
    /// without a bond need a channel because the graph holds them too, and QM9's double,
    /// triple and aromatic bonds are together about a tenth of its bonds.
    pub channels: Vec<String>,
}

impl Default for VimpnnConfig {
    fn default() -> Self {
        VimpnnConfig {
            combine: Combine::ScalarWeights,
            channels: vec!["none".into(), "single".into(), "double+triple+aromatic".into()],
        }
    }
}

impl VimpnnConfig {
    /// Channel of each bond class, indexed by `BondClass as usize`.
    pub fn channel_of_class(&self) -> Result<Vec<i64>, ModelError> {
        let mut channel = vec![-1i64; minima_data::BondClass::COUNT];
        for (c, spec) in self.channels.iter().enumerate() {
            for name in spec.split('+') {
                let class = minima_data::BondClass::from_name(name.trim())
                    .ok_or_else(|| ModelError::Config(format!("unknown bond class {name:?} in channel {spec:?}")))?;
                if channel[class as usize] >= 0 {
                    return Err(ModelError::Config(format!("bond class {name} is in two channels")));
                }
                channel[class as usize] = c as i64;
            }
        }
        if let Some(missing) = channel.iter().position(|&c| c < 0) {
            let name = minima_data::BondClass::NAMES[missing];
            return Err(ModelError::Config(format!("bond class {name} is in no channel")));
        }
        Ok(channel)
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
    pub edge_hidden: i64,
    /// Rank-one matrices mixed by the edge network (see `blocks::EdgeNetwork`).
    pub edge_rank: i64,
    pub readout_hidden: i64,
    pub dtype: Dtype,
    /// Elements the model knows (filled from the training data).
    pub elements: Vec<u8>,
    pub vimpnn: VimpnnConfig,
    pub aux: AuxConfig,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            kind: ModelKind::Vimpnn,
            hidden: 73,
            iterations: 3,
            cutoff: None,
            radial_basis: 16,
            edge_hidden: 32,
            edge_rank: 73,
            readout_hidden: 73,
            dtype: Dtype::F32,
            elements: Vec::new(),
            vimpnn: VimpnnConfig::default(),
            aux: AuxConfig::default(),
        }
    }
}

impl ModelConfig {
    pub fn graph_spec(&self) -> minima_data::GraphSpec {
        minima_data::GraphSpec { cutoff: self.cutoff }
    }

    /// The largest distance the radial basis covers.
    pub fn radial_range(&self) -> f64 {
        self.cutoff.unwrap_or(10.0)
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
        let (first, last, n) = self.aux.scale_grid;
        if self.aux.scale && !(first < last && n >= 2 && self.aux.scale_width > 0.0) {
            return bad("model.aux.scale_grid must be (first < last, points ≥ 2) with scale_width > 0");
        }
        self.vimpnn.channel_of_class().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut grid = good;
        grid.aux.scale_grid = (1.5, 0.9, 10);
        assert!(error(grid).contains("scale_grid"));
    }
}
