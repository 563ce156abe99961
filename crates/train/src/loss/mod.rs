//! Loss terms. A term is one file implementing [`LossTerm`] plus one line of [`TERMS`];
//! `[train.loss]` weights the registered terms by name (`energy = 1`, `forces = 20`, …),
//! and the learning curve's columns, the log line and the validation loss come from them.

mod auxiliary;
mod bound;
mod energy;
mod forces;
mod masked_atoms;
mod minimum_shift;
mod pair_equilibrium;
mod stress;
mod zero_force;

use std::cell::OnceCell;

use anyhow::{Context, Result};
use minima_data::Sample;
use minima_model::{Field, GraphBatch, Mode, ModelConfig, Potential, Prediction};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use crate::config::RunConfig;

/// Every loss term, in the order of the learning curve's columns.
pub const TERMS: &[&dyn LossTerm] = &[
    &energy::Energy,
    &forces::Forces,
    &auxiliary::Auxiliary,
    &masked_atoms::MaskedAtoms,
    &zero_force::ZeroForce,
    &minimum_shift::MinimumShift,
    &bound::Bound,
    &pair_equilibrium::PairEquilibrium,
    &stress::Stress,
];

/// Refuses a term of `terms` that reads a field no block of `potential` writes in training,
/// naming the term, the field and what the model does write.
pub fn check_reads(potential: &Potential, terms: &[(&dyn LossTerm, f64)], forces: bool) -> Result<()> {
    let written = potential.writes(Mode::Training { forces });
    for (term, _) in terms {
        if let Some(missing) = term.reads(&potential.config).into_iter().find(|f| !written.contains(f)) {
            let names: Vec<&str> = written.iter().map(|f| f.name()).collect();
            anyhow::bail!(
                "train.loss.{} reads {}, which no block of this {} model writes (it writes {}): set it to 0",
                term.name(),
                missing.name(),
                potential.config.kind.name(),
                names.join(", ")
            );
        }
    }
    Ok(())
}

/// The registered term called `name`.
pub fn term(name: &str) -> Option<&'static dyn LossTerm> {
    TERMS.iter().copied().find(|t| t.name() == name)
}

/// What a term needs the model to differentiate, in increasing order of cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Needs {
    /// Energies (and the model's other outputs) only.
    Energy,
    /// Forces, by autograd; in training through second-order autograd.
    Forces,
    /// The virial as well: the batch carries a strain.
    Strain,
}

/// One batch as the terms see it: its samples, the model's prediction and the targets.
pub struct BatchView<'a> {
    pub potential: &'a Potential,
    pub config: &'a RunConfig,
    pub samples: &'a [&'a Sample],
    pub batch: &'a GraphBatch,
    pub prediction: &'a Prediction,
    /// (E − Σ ref)/σ of each sample.
    pub target: &'a Tensor,
    /// The samples flagged as at equilibrium ([`Sample::is_equilibrium`]), as flags and as
    /// an index tensor on the model's device.
    pub is_equilibrium: &'a [bool],
    pub equilibrium: &'a Tensor,
    /// Filled by [`BatchView::reference_forces`] on first use.
    pub reference_forces: OnceCell<Tensor>,
}

impl BatchView<'_> {
    /// Whether any sample of the batch is at equilibrium.
    pub fn has_equilibrium(&self) -> bool {
        self.is_equilibrium.iter().any(|&e| e)
    }

    /// The reference forces of the batch's atoms, (atoms, 3), eV/Å, built once per batch
    /// (the force term and the force-MAE metric both read them); an error naming the first
    /// frame without them.
    pub fn reference_forces(&self) -> Result<&Tensor> {
        if let Some(forces) = self.reference_forces.get() {
            return Ok(forces);
        }
        let mut values = Vec::new();
        for sample in self.samples {
            let forces = sample.forces.as_ref().with_context(|| {
                format!(
                    "frame {}: missing label: no forces (train.loss.forces > 0)",
                    sample.frame
                )
            })?;
            values.extend(forces.iter().flatten().copied());
        }
        let forces = Tensor::from_slice(&values)
            .view([-1, 3])
            .to_kind(self.potential.kind())
            .to_device(self.potential.device());
        Ok(self.reference_forces.get_or_init(|| forces))
    }
}

/// A term's value on a batch: a mean, and the weight of what it averaged (structures, force
/// components, masked atoms, …), so that the means of a batch split across data-parallel ranks
/// combine into the whole batch's.
pub struct TermValue {
    pub mean: Tensor,
    pub count: f64,
}

/// A term of the training loss: a scalar tensor from a batch's prediction, in units of the
/// energy scale σ, weighted by `[train.loss] NAME = weight`.
pub trait LossTerm: Sync {
    /// The key in `[train.loss]`, and the learning curve's column `train_NAME`.
    fn name(&self) -> &'static str;
    /// What the model must differentiate for this term.
    fn needs(&self) -> Needs {
        Needs::Energy
    }
    /// Whether the validation loss (which selects the best model and drives decay and early
    /// stopping) counts this term: the terms that measure the potential-energy surface do;
    /// those that only shape training, or are random draws, do not.
    fn validates(&self) -> bool {
        false
    }
    /// The fields of the model's prediction this term reads ([`Field`]); training refuses a
    /// term that reads a field no block of the model writes, whatever the term.
    fn reads(&self, _model: &ModelConfig) -> Vec<Field> {
        Vec::new()
    }
    /// Checks before training that the run can compute this term (labels).
    fn check(&self, _potential: &Potential, _train: &[Sample]) -> Result<()> {
        Ok(())
    }
    /// The term's value, `None` when the batch holds nothing it applies to. `rng` is given
    /// in training, not in validation; a term that draws from it returns `None` without.
    fn value(&self, view: &BatchView, rng: Option<&mut ChaCha8Rng>) -> Result<Option<TermValue>>;
}
