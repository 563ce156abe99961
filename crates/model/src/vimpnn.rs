//! VIMPNN (the VIMPNN paper, section 4): MPNN with bond-type-specialised message channels and
//! auxiliary physical readouts.
//!
//! Reads: atomic numbers, edge vectors, edge bond classes. Writes: per-atom energy and the
//! auxiliary predictions. Each edge's message A(e_vw)·h_w goes to the channel of its bond type
//! (`model.vimpnn.channels`), giving one message m_v|BT per type; `model.vimpnn.combine` picks
//! how they update the node (paper's variants a.i, a.ii, b.i, b.ii, c; see [`Combine`]). The
//! readout and the auxiliary heads read the states of each atom at all steps.

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::Tensor;

use crate::auxiliary::AuxHeads;
use crate::batch::GraphBatch;
use crate::blocks::{count, readout_features, GruCell, MessagePassing, Mlp, StateUpdate};
use crate::config::ModelConfig;
use crate::fields::{Block, Field, Fields};
use crate::message_layers::{run_layers, MessageLayers};
use crate::{Architecture, ArchitectureSpec, ModelError};

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

/// How the per-type messages (atoms, types, d) update the node state.
#[derive(Debug)]
enum Update {
    /// a.i (weights (types, d)) and a.ii (weights (types, 1)): m = Σ_BT λ_BT·m_BT, one GRU.
    Weighted { weights: Tensor, gru: GruCell },
    /// b.i: the concatenated messages feed one GRU over a (types·d) state.
    Concatenate { gru: GruCell },
    /// b.ii: block BT of the (types·d) state is updated by a shared GRU from s_BT·m_BT.
    Shared { scales: Tensor, gru: GruCell },
    /// c: h ← Σ_BT GRU_BT(m_BT, h).
    PerType { grus: Vec<GruCell> },
}

impl Update {
    fn new(path: nn::Path, combine: Combine, types: i64, d: i64) -> Update {
        match combine {
            Combine::VectorWeights | Combine::ScalarWeights => {
                let width = if combine == Combine::VectorWeights { d } else { 1 };
                Update::Weighted {
                    weights: path.var("weights", &[types, width], nn::Init::Const(1.0)),
                    gru: GruCell::new(&path / "gru", d, d),
                }
            }
            Combine::Concatenate => Update::Concatenate {
                gru: GruCell::new(&path / "gru", types * d, types * d),
            },
            Combine::SharedGru => Update::Shared {
                scales: path.var("scales", &[types, 1], nn::Init::Const(1.0)),
                gru: GruCell::new(&path / "gru", d, d),
            },
            Combine::GruPerType => Update::PerType {
                grus: (0..types).map(|t| GruCell::new(&path / "gru" / t, d, d)).collect(),
            },
        }
    }

    fn step(&self, h: &Tensor, m: &Tensor) -> Tensor {
        let (n, types, d) = m.size3().expect("(atoms, types, d) messages");
        match self {
            Update::Weighted { weights, gru } => gru.step(&(m * weights).sum_dim_intlist(1, false, m.kind()), h),
            Update::Concatenate { gru } => gru.step(&m.reshape([n, types * d]), h),
            Update::Shared { scales, gru } => gru
                .step(&(m * scales).reshape([n * types, d]), &h.reshape([n * types, d]))
                .reshape([n, types * d]),
            Update::PerType { grus } => grus
                .iter()
                .enumerate()
                .map(|(t, gru)| gru.step(&m.select(1, t as i64), h))
                .reduce(|a, b| a + b)
                .expect("at least one bond type"),
        }
    }
}

#[derive(Debug)]
pub struct Vimpnn {
    core: MessagePassing,
    update: Update,
    readout: Mlp,
    aux: AuxHeads,
}

impl Vimpnn {
    pub fn new(path: nn::Path, config: &ModelConfig) -> Result<Vimpnn, ModelError> {
        let d = config.hidden;
        let channel_of_class = config.vimpnn.channel_of_class()?;
        let types = config.vimpnn.channels.len() as i64;
        let combine = config.vimpnn.combine;
        let state = VimpnnSpec::state(config);
        let features = MessagePassing::features(config, state);
        Ok(Vimpnn {
            core: MessagePassing::new(&path / "core", config, (state, d), &channel_of_class, types),
            update: Update::new(&path / "update", combine, types, d),
            readout: Mlp::new(&path / "readout", &[features, config.readout_hidden, 1]),
            aux: AuxHeads::new(
                &path / "aux",
                &config.aux,
                features,
                config.readout_hidden,
                config.elements.len() as i64,
            ),
        })
    }
}

impl StateUpdate for Vimpnn {
    fn core(&self) -> &MessagePassing {
        &self.core
    }

    fn step(&self, h: &Tensor, messages: &Tensor) -> Tensor {
        self.update.step(h, messages)
    }

    fn readout(&self) -> &Mlp {
        &self.readout
    }
}

/// VIMPNN's registry entry.
pub struct VimpnnSpec;

impl VimpnnSpec {
    /// The node state's size: the b variants keep one d-sized block per bond type (paper
    /// A.3).
    fn state(config: &ModelConfig) -> i64 {
        match config.vimpnn.combine {
            Combine::Concatenate | Combine::SharedGru => config.vimpnn.channels.len() as i64 * config.hidden,
            _ => config.hidden,
        }
    }
}

impl ArchitectureSpec for VimpnnSpec {
    fn name(&self) -> &'static str {
        "vimpnn"
    }

    fn keys(&self) -> Vec<&'static str> {
        [&MessagePassing::KEYS[..], &["vimpnn", "aux"]].concat()
    }

    fn size_keys(&self) -> &'static str {
        MessagePassing::SIZE_KEYS
    }

    /// Each way of combining its bond-type messages.
    fn variants(&self, base: &ModelConfig) -> Vec<(String, ModelConfig)> {
        [
            Combine::VectorWeights,
            Combine::ScalarWeights,
            Combine::Concatenate,
            Combine::SharedGru,
            Combine::GruPerType,
        ]
        .into_iter()
        .map(|combine| {
            let mut config = base.clone();
            config.vimpnn.combine = combine;
            (format!("vimpnn {combine:?}"), config)
        })
        .collect()
    }

    fn validate(&self, config: &ModelConfig) -> Result<(), ModelError> {
        let aux = &config.aux;
        let (first, last, n) = aux.scale_grid;
        let finite = first.is_finite() && last.is_finite() && aux.scale_width.is_finite();
        if aux.scale && !(finite && first < last && n >= 2 && aux.scale_width > 0.0) {
            return Err(ModelError::Config(
                "model.aux.scale_grid must be (first < last, points ≥ 2) with scale_width > 0".into(),
            ));
        }
        config.vimpnn.channel_of_class().map(|_| ())
    }

    fn parameter_count(&self, config: &ModelConfig) -> u64 {
        let d = count::size(config.hidden);
        let types = config.vimpnn.channels.len() as u64;
        let state = count::size(VimpnnSpec::state(config));
        let update = match config.vimpnn.combine {
            Combine::VectorWeights => types * d + count::gru(d, d),
            Combine::ScalarWeights => types + count::gru(d, d),
            Combine::Concatenate => count::gru(state, state),
            Combine::SharedGru => types + count::gru(d, d),
            Combine::GruPerType => types * count::gru(d, d),
        };
        let features = count::size(MessagePassing::features(config, VimpnnSpec::state(config)));
        let readout = count::size(config.readout_hidden);
        let aux = &config.aux;
        let elements = config.elements.len() as u64;
        let head = |on: bool, out: u64| if on { count::mlp(&[features, readout, out]) } else { 0 };
        MessagePassing::parameter_count(config, state, d)
            + update
            + count::mlp(&[features, readout, 1])
            + head(aux.counts, elements)
            + head(aux.orbitals, elements)
            + head(aux.scale, aux.scale_grid.2 as u64)
    }

    fn activations(&self, config: &ModelConfig) -> (u64, u64) {
        MessagePassing::activations(config, count::size(VimpnnSpec::state(config)))
    }

    fn node_feature_width(&self, config: &ModelConfig) -> i64 {
        VimpnnSpec::state(config)
    }

    fn build(&self, path: nn::Path, config: &ModelConfig) -> Result<Box<dyn Architecture>, ModelError> {
        Ok(Box::new(Vimpnn::new(path, config)?))
    }
}

impl Block for Vimpnn {
    fn name(&self) -> &str {
        "vimpnn"
    }

    fn reads(&self) -> Vec<Field> {
        Field::GRAPH.to_vec()
    }

    /// The energy, and in training the auxiliary heads that are on.
    fn writes(&self) -> Vec<Field> {
        let mut fields = vec![Field::NetworkEnergy, Field::NodeFeatures];
        fields.extend(self.aux.fields());
        fields
    }

    fn apply(&self, batch: &GraphBatch, fields: &mut Fields, train: bool) {
        let states = run_layers(self, batch);
        let features = readout_features(&states);
        fields.insert(Field::NetworkEnergy, self.readout.forward(&features).squeeze_dim(-1));
        let last = states.last().expect("the embedding");
        fields.insert(Field::NodeFeatures, MessageLayers::node_features(self, last));
        // The auxiliary targets only shape training; predictions skip their cost.
        if train {
            self.aux.forward(&features, batch, fields);
        }
    }
}

impl Architecture for Vimpnn {
    fn message_layers(&self) -> &dyn MessageLayers {
        self
    }
}
