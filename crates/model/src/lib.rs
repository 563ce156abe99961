//! Neural-network potentials on libtorch (through `tch`).
//!
//! A model is an ordered list of blocks over a [`GraphBatch`], each declaring the named
//! [`Field`]s it reads and writes ([`fields`]): the architecture writes per-atom energies
//! (normalised) and whatever else it declares ([`Architecture`]), then its [`priors`], the
//! per-element reference energies and the sum per structure give energies in eV.
//! [`Potential`] holds that list and its autograd wrapper, which gives forces −∂E/∂r and the
//! virial.
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
pub mod fields;
pub mod inference;
pub mod message_layers;
pub mod mpnn;
pub mod painn;
pub mod pair_analysis;
pub mod potential;
pub mod priors;
pub mod transformer;
pub mod vimpnn;

pub use auxiliary::AuxTargets;
pub use batch::GraphBatch;
pub use calculator::{checkpoints_of, member_folder, Committee, ModelCalculator};
pub use config::{Dtype, ModelConfig, ModelKind};
pub use device::{check_memory, configure_threads, memory_budget, parse_device};
pub use fields::{Block, Field, Fields};
pub use inference::{predict_graphs, predict_samples, Predicted};
pub use potential::{Mode, Potential, Prediction};

/// One architecture: a block over the batch ([`fields::Block`]) that writes
/// [`Field::NetworkEnergy`] (and whatever else it declares), its parameters in a `VarStore`.
pub trait Architecture: fields::Block {
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

/// One architecture's entry in the registry ([`ModelKind::spec`]): what the model layer knows
/// of it besides its forward pass. A new architecture is one file holding its network, its
/// `[model.KIND]` settings and this, plus a variant of [`ModelKind`] and its arm in
/// [`ModelKind::spec`].
pub trait ArchitectureSpec: Sync {
    /// The name `[model] kind` takes.
    fn name(&self) -> &'static str;

    /// The `[model]` keys this kind reads besides the shared ones (kind, cutoff, dtype,
    /// elements, priors).
    fn keys(&self) -> Vec<&'static str>;

    /// The settings that shrink a model of this kind, for memory refusals.
    fn size_keys(&self) -> &'static str;

    /// Every combination of the architecture's switches applied to `base` (of this kind),
    /// named: what the shared model suite runs.
    fn variants(&self, base: &ModelConfig) -> Vec<(String, ModelConfig)>;

    /// Checks the settings of this kind (the shared ones are checked for every kind).
    fn validate(&self, _config: &ModelConfig) -> Result<(), ModelError> {
        Ok(())
    }

    /// Parameters, counted from the sizes alone.
    fn parameter_count(&self, config: &ModelConfig) -> u64;

    /// Numbers per edge and per atom that a forward pass keeps for its backward pass.
    fn activations(&self, config: &ModelConfig) -> (u64, u64);

    /// The width of the final node features it writes ([`Field::NodeFeatures`]).
    fn node_feature_width(&self, config: &ModelConfig) -> i64;

    /// The network, its parameters under `path`.
    fn build(&self, path: tch::nn::Path, config: &ModelConfig) -> Result<Box<dyn Architecture>, ModelError>;
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
