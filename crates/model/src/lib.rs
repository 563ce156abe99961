//! Neural-network potentials on libtorch (through `tch`).
//!
//! Every architecture reads a [`GraphBatch`] and writes per-atom energies (normalised) plus
//! optional auxiliary predictions ([`Architecture`]). [`Potential`] wraps one with its
//! normalisation (per-element reference energies and residual scale), so that it returns
//! total energies in eV, per-atom contributions, and forces −∂E/∂r by autograd.
//!
//! Architectures, one file each: [`mpnn`] (Gilmer et al. 2017, the VIMPNN paper's baseline),
//! [`vimpnn`] (bond-type channels and auxiliary physical targets) and [`transformer`] (the
//! physics-empowered Transformer with its Coulomb + Lennard-Jones pair head and masked atomic
//! modelling) and [`painn`] (Schütt et al. 2021's equivariant PaiNN); [`priors`] (such as ZBL's
//! short-range repulsion) add physics to any of them.

pub mod auxiliary;
pub mod batch;
pub mod blocks;
pub mod calculator;
pub mod config;
pub mod device;
pub mod inference;
pub mod message_layers;
pub mod mpnn;
pub mod painn;
pub mod pair_analysis;
pub mod potential;
pub mod priors;
pub mod transformer;
pub mod vimpnn;

pub use auxiliary::{AuxOutput, AuxTargets};
pub use batch::GraphBatch;
pub use calculator::ModelCalculator;
pub use config::{Dtype, ModelConfig, ModelKind};
pub use device::{check_memory, configure_threads, memory_budget, parse_device};
pub use inference::{predict_graphs, predict_samples, Predicted};
pub use potential::{Mode, PairOutput, Potential, Prediction};

/// What every architecture produces for a batch.
pub struct AtomOutput {
    /// Normalised per-atom energy, shape (atoms,).
    pub energy: tch::Tensor,
    pub aux: AuxOutput,
    /// The physics head's pair terms, for architectures that have one.
    pub pairs: Option<PairTerms>,
}

/// Pair energies of a physics head (normalised units, like [`AtomOutput::energy`]).
pub struct PairTerms {
    /// Index into the batch's edges of each pair term, (pairs,) int64; both directions of a
    /// pair appear, each carrying the same β.
    pub edge: tch::Tensor,
    /// β0..β4 per term, (pairs, 5).
    pub beta: tch::Tensor,
    /// E_ij per term, (pairs,); the structure's pair energy is half their sum.
    pub energy: tch::Tensor,
    /// ∂E_ij/∂d of the unswitched pair formula, (pairs,): zero when the pair sits at the
    /// minimum of its potential.
    pub slope: tch::Tensor,
}

/// One architecture: a function of the graph batch, its parameters in a `VarStore`.
pub trait Architecture: Send {
    /// `train` is true while training (architectures with stochastic parts use it).
    fn forward(&self, batch: &GraphBatch, train: bool) -> AtomOutput;

    /// Masked atomic modelling: logits over the model's elements (in `ModelConfig::elements`
    /// order) for every atom, computed with the atoms where `mask` (atoms,) is true hidden.
    /// `None` for architectures without a masked-atom head.
    fn masked_atom_logits(&self, _batch: &GraphBatch, _mask: &tch::Tensor) -> Option<tch::Tensor> {
        None
    }

    /// The architecture as layers of per-atom sums over edges, which inference on large
    /// structures runs in edge chunks ([`message_layers::in_chunks`]).
    fn message_layers(&self) -> &dyn message_layers::MessageLayers;
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    #[error("{path}: {message}")]
    Checkpoint { path: String, message: String },
    #[error("{0}")]
    Config(String),
    /// A job refused before allocating: the estimate, the budget and what lowers it.
    #[error("{0}")]
    Memory(String),
    /// libtorch failed inside an operation that reports failures by panicking (`what` names
    /// the operation).
    #[error("{what}: libtorch failed: {message}")]
    Panic { what: String, message: String },
    #[error("the model knows elements {known}, not {element} (frame {frame})")]
    UnknownElement {
        element: String,
        known: String,
        frame: usize,
    },
}

/// Runs `f`, turning a panic of libtorch's bindings (which panic where an allocation or a
/// kernel fails inside an operation without a fallible form) into an error naming `what`.
/// The default panic message is held back meanwhile, so the failure is one error line.
pub fn guard<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, ModelError> {
    thread_local!(static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    static SILENCE_GUARDED: std::sync::Once = std::sync::Once::new();
    // One hook for the process, silent only on threads inside `guard`: swapping hooks per
    // call would race between threads.
    SILENCE_GUARDED.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(std::cell::Cell::get) {
                report(info);
            }
        }));
    });
    let outer = GUARDED.with(|g| g.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("unknown failure");
        // tch's messages carry libtorch's C++ backtrace after the first line.
        let first = message.lines().next().unwrap_or(message);
        ModelError::Panic {
            what: what.to_string(),
            message: first.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A libtorch failure that tch reports by panicking (here an impossible allocation)
    /// comes back as an error naming the operation.
    #[test]
    fn guard_turns_a_libtorch_panic_into_an_error() {
        let error = guard("allocating", || tch::Tensor::zeros([1 << 62], tch::kind::FLOAT_CPU))
            .expect_err("the allocation fails");
        let text = error.to_string();
        assert!(text.starts_with("allocating: libtorch failed: "), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(guard("adding", || 1 + 1).unwrap(), 2);
    }
}
