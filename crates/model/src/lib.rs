//! Neural-network potentials on libtorch (through `tch`).
//!
//! Every architecture reads a [`GraphBatch`] and writes per-atom energies (normalised) plus
//! optional auxiliary predictions ([`Architecture`]). [`Potential`] wraps one with its
//! normalisation (per-element reference energies and residual scale), so that it returns
//! total energies in eV, per-atom contributions, and forces −∂E/∂r by autograd.
//!
//! Architectures, one file each: [`mpnn`] (Gilmer et al. 2017, the VIMPNN paper's baseline)
//! and [`vimpnn`] (bond-type channels and auxiliary physical targets).

pub mod aux;
pub mod batch;
pub mod blocks;
pub mod config;
pub mod device;
pub mod mpnn;
pub mod potential;
pub mod vimpnn;

pub use aux::{AuxOutput, AuxTargets};
pub use batch::GraphBatch;
pub use config::{Dtype, ModelConfig, ModelKind};
pub use device::{configure_threads, parse_device};
pub use potential::{Potential, Prediction};

/// What every architecture produces for a batch.
pub struct AtomOutput {
    /// Normalised per-atom energy, shape (atoms,).
    pub energy: tch::Tensor,
    pub aux: AuxOutput,
}

/// One architecture: a function of the graph batch, its parameters in a `VarStore`.
pub trait Architecture: Send {
    /// `train` is true while training (architectures with stochastic parts use it).
    fn forward(&self, batch: &GraphBatch, train: bool) -> AtomOutput;
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    #[error("{path}: {message}")]
    Checkpoint { path: String, message: String },
    #[error("{0}")]
    Config(String),
    #[error("the model knows elements {known}, not {element} (frame {frame})")]
    UnknownElement {
        element: String,
        known: String,
        frame: usize,
    },
}
