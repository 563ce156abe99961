//! MPNN (Gilmer et al. 2017) as the VIMPNN paper uses it for its baseline.
//!
//! Reads: atomic numbers, edge vectors, edge bond classes. Writes: per-atom energy.
//! Node states start from an embedding of the element; T iterations of messages from the
//! edge network, m_v = Σ_w A(e_vw)·h_w over every edge (bond type is only an edge feature),
//! and a GRU update. The readout is a perceptron on the states of each atom at all steps
//! [h⁰; …; hᵀ]; its per-atom outputs are the node contributions of the paper's Fig. 7, summed
//! to the energy. Message and update weights are shared across steps (Gilmer's default).

use tch::nn::{self, Module};
use tch::Tensor;

use crate::batch::GraphBatch;
use crate::blocks::{EdgeInputs, EdgeNetwork, GaussianBasis, GruCell, Mlp};
use crate::config::ModelConfig;
use crate::{Architecture, AtomOutput, AuxOutput};

/// Largest atomic number the element embedding covers.
pub const MAX_Z: i64 = 118;

#[derive(Debug)]
pub struct Mpnn {
    embedding: nn::Embedding,
    basis: GaussianBasis,
    cutoff: Option<f64>,
    edge_network: EdgeNetwork,
    gru: GruCell,
    readout: Mlp,
    iterations: usize,
}

impl Mpnn {
    pub fn new(path: nn::Path, config: &ModelConfig) -> Mpnn {
        let d = config.hidden;
        let edge_features = (config.radial_basis + minima_data::BondClass::COUNT) as i64;
        Mpnn {
            embedding: nn::embedding(&path / "embedding", MAX_Z + 1, d, Default::default()),
            basis: GaussianBasis::new(config.radial_basis, config.radial_range()),
            cutoff: config.cutoff,
            edge_network: EdgeNetwork::new(&path / "message", edge_features, config.edge_hidden, config.edge_rank, d, d),
            gru: GruCell::new(&path / "update", d, d),
            readout: Mlp::new(
                &path / "readout",
                &[(config.iterations as i64 + 1) * d, config.readout_hidden, 1],
            ),
            iterations: config.iterations,
        }
    }
}

impl Architecture for Mpnn {
    fn forward(&self, batch: &GraphBatch, _train: bool) -> AtomOutput {
        let edges = EdgeInputs::new(batch, &self.basis, self.cutoff);
        let single_channel = batch.bond.zeros_like();
        let mut h = self.embedding.forward(&batch.numbers).to_kind(batch.kind());
        let mut states = vec![h.shallow_clone()];
        for _ in 0..self.iterations {
            let m = self.edge_network.messages(&h, &edges, batch, &single_channel, 1).squeeze_dim(1);
            h = self.gru.step(&m, &h);
            states.push(h.shallow_clone());
        }
        AtomOutput {
            energy: self.readout.forward(&Tensor::cat(&states, -1)).squeeze_dim(-1),
            aux: AuxOutput::default(),
        }
    }
}
