//! VIMPNN (the VIMPNN paper, section 4): MPNN with bond-type-specialised message channels and
//! auxiliary physical readouts.
//!
//! Reads: atomic numbers, edge vectors, edge bond classes. Writes: per-atom energy and the
//! auxiliary predictions. Each edge's message A(e_vw)·h_w goes to the channel of its bond type
//! (`model.vimpnn.channels`), giving one message m_v|BT per type; `model.vimpnn.combine` picks
//! how they update the node (paper's variants a.i, a.ii, b.i, b.ii, c; see [`Combine`]). The
//! readout and the auxiliary heads read the states of each atom at all steps.

use tch::nn::{self, Module};
use tch::Tensor;

use crate::auxiliary::AuxHeads;
use crate::batch::GraphBatch;
use crate::blocks::{readout_features, GruCell, MessagePassing, Mlp, StateUpdate};
use crate::config::{Combine, ModelConfig};
use crate::fields::{Block, Field, Fields};
use crate::message_layers::{run_layers, MessageLayers};
use crate::{Architecture, ModelError};

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
        // The b variants keep one d-sized block per bond type in the node state (paper A.3).
        let state = match combine {
            Combine::Concatenate | Combine::SharedGru => types * d,
            _ => d,
        };
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

/// VIMPNN with each way of combining its bond-type messages; see [`crate::ModelKind::variants`].
pub fn variants(base: &ModelConfig) -> Vec<(String, ModelConfig)> {
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
