//! MPNN (Gilmer et al. 2017) as the VIMPNN paper uses it for its baseline.
//!
//! Reads: atomic numbers, edge vectors, edge bond classes. Writes: per-atom energy.
//! Node states start from an embedding of the element; T iterations of messages from the
//! edge network, m_v = Σ_w A(e_vw)·h_w over every edge (bond type is only an edge feature),
//! and a GRU update. The readout is a perceptron on the states of each atom at all steps
//! [h⁰; …; hᵀ]; its per-atom outputs are the node contributions of the paper's Fig. 7, summed
//! to the energy. Message and update weights are shared across steps (Gilmer's default).

use tch::nn::{self, Module};

use crate::batch::GraphBatch;
use crate::blocks::{GruCell, MessagePassing, Mlp};
use crate::config::ModelConfig;
use crate::{Architecture, AtomOutput, AuxOutput};

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
            core: MessagePassing::new(&path / "core", config, d, d),
            gru: GruCell::new(&path / "update", d, d),
            readout: Mlp::new(
                &path / "readout",
                &[MessagePassing::features(config, d), config.readout_hidden, 1],
            ),
        }
    }
}

impl Architecture for Mpnn {
    fn forward(&self, batch: &GraphBatch, _train: bool) -> AtomOutput {
        // One channel: bond type reaches the messages only as an edge feature.
        let channel = batch.bond.zeros_like();
        let features = self
            .core
            .run(batch, &channel, 1, |h, m| self.gru.step(&m.squeeze_dim(1), h));
        AtomOutput {
            energy: self.readout.forward(&features).squeeze_dim(-1),
            aux: AuxOutput::default(),
            pairs: None,
        }
    }
}
