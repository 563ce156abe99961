//! MPNN (Gilmer et al. 2017) as the VIMPNN paper uses it for its baseline.
//!
//! Reads: atomic numbers, edge vectors, edge bond classes. Writes: per-atom energy.
//! Node states start from an embedding of the element; T iterations of messages from the
//! edge network, m_v = Σ_w A(e_vw)·h_w over every edge (bond type is only an edge feature),
//! and a GRU update. The readout is a perceptron on the states of each atom at all steps
//! [h⁰; …; hᵀ]; its per-atom outputs are the node contributions of the paper's Fig. 7, summed
//! to the energy. Message and update weights are shared across steps (Gilmer's default).

use tch::nn;

use crate::batch::GraphBatch;
use crate::blocks::{count, GruCell, MessagePassing, Mlp, StateUpdate};
use crate::config::ModelConfig;
use crate::fields::{Block, Field, Fields};
use crate::message_layers::{run_layers, MessageLayers};
use crate::{Architecture, ArchitectureSpec, ModelError};

#[derive(Debug)]
pub struct Mpnn {
    core: MessagePassing,
    gru: GruCell,
    readout: Mlp,
}

impl Mpnn {
    pub fn new(path: nn::Path, config: &ModelConfig) -> Mpnn {
        let d = config.hidden;
        Mpnn {
            // One channel: bond type reaches the messages only as an edge feature.
            core: MessagePassing::new(&path / "core", config, (d, d), &[0; minima_data::BondClass::COUNT], 1),
            gru: GruCell::new(&path / "update", d, d),
            readout: Mlp::new(
                &path / "readout",
                &[MessagePassing::features(config, d), config.readout_hidden, 1],
            ),
        }
    }
}

impl StateUpdate for Mpnn {
    fn core(&self) -> &MessagePassing {
        &self.core
    }

    fn step(&self, h: &tch::Tensor, messages: &tch::Tensor) -> tch::Tensor {
        self.gru.step(&messages.squeeze_dim(1), h)
    }

    fn readout(&self) -> &Mlp {
        &self.readout
    }
}

/// MPNN's registry entry.
pub struct MpnnSpec;

impl ArchitectureSpec for MpnnSpec {
    fn name(&self) -> &'static str {
        "mpnn"
    }

    fn keys(&self) -> Vec<&'static str> {
        MessagePassing::KEYS.to_vec()
    }

    fn size_keys(&self) -> &'static str {
        MessagePassing::SIZE_KEYS
    }

    /// On every pair of a molecule, within a cutoff, and with distances alone on its edges
    /// (the VIMPNN paper's "No bond type information" baseline).
    fn variants(&self, base: &ModelConfig) -> Vec<(String, ModelConfig)> {
        vec![
            (
                "mpnn all pairs".into(),
                ModelConfig {
                    cutoff: None,
                    ..base.clone()
                },
            ),
            ("mpnn cutoff".into(), base.clone()),
            (
                "mpnn distances only".into(),
                ModelConfig {
                    bond_features: false,
                    ..base.clone()
                },
            ),
        ]
    }

    fn parameter_count(&self, config: &ModelConfig) -> u64 {
        let d = count::size(config.hidden);
        let features = count::size(MessagePassing::features(config, config.hidden));
        MessagePassing::parameter_count(config, d, d)
            + count::gru(d, d)
            + count::mlp(&[features, count::size(config.readout_hidden), 1])
    }

    fn activations(&self, config: &ModelConfig) -> (u64, u64) {
        MessagePassing::activations(config, count::size(config.hidden))
    }

    fn node_feature_width(&self, config: &ModelConfig) -> i64 {
        config.hidden
    }

    fn build(&self, path: nn::Path, config: &ModelConfig) -> Result<Box<dyn Architecture>, ModelError> {
        Ok(Box::new(Mpnn::new(path, config)))
    }
}

impl Block for Mpnn {
    fn name(&self) -> &str {
        "mpnn"
    }

    fn reads(&self) -> Vec<Field> {
        vec![Field::Numbers, Field::EdgeIndex, Field::EdgeVectors, Field::BondClass]
    }

    fn writes(&self) -> Vec<Field> {
        vec![Field::NetworkEnergy, Field::NodeFeatures]
    }

    fn apply(&self, batch: &GraphBatch, fields: &mut Fields, _train: bool) {
        let states = run_layers(self, batch);
        fields.insert(Field::NetworkEnergy, MessageLayers::readout(self, &states));
        let last = states.last().expect("the embedding");
        fields.insert(Field::NodeFeatures, MessageLayers::node_features(self, last));
    }
}

impl Architecture for Mpnn {
    fn message_layers(&self) -> &dyn MessageLayers {
        self
    }
}
