//! λ_bound of the physics-transformer paper: max(0, E(equilibrium) − E(perturbed)) in units of
//! σ, averaged over the equilibrium structures of a batch, each perturbed afresh every step by
//! Gaussian noise of root-mean-square amplitude `train.bound_noise` per atom. Training only.

use anyhow::Result;
use minima_model::{Field, ModelConfig};
use rand_chacha::ChaCha8Rng;

use super::{BatchView, LossTerm, TermValue};

pub struct Bound;

impl LossTerm for Bound {
    fn name(&self) -> &'static str {
        "bound"
    }

    fn reads(&self, _model: &ModelConfig) -> Vec<Field> {
        vec![Field::NormalizedEnergy]
    }

    fn value(&self, view: &BatchView, rng: Option<&mut ChaCha8Rng>) -> Result<Option<TermValue>> {
        let (Some(rng), true) = (rng, view.has_equilibrium()) else {
            return Ok(None);
        };
        let potential = view.potential;
        let sigma = view.config.train.bound_noise / 3f64.sqrt();
        let spec = potential.config.graph_spec();
        let perturbed: Vec<minima_data::Graph> = view
            .samples
            .iter()
            .zip(view.is_equilibrium)
            .filter(|(_, &at_equilibrium)| at_equilibrium)
            .map(|(sample, _)| {
                let graph = &sample.graph;
                let positions = graph
                    .positions
                    .iter()
                    .map(|r| r.map(|x| x + sigma * minima_data::gaussian(rng)))
                    .collect();
                graph
                    .moved(positions, &spec)
                    .map_err(|e| anyhow::anyhow!("frame {}: perturbing for the bound loss: {e}", sample.frame))
            })
            .collect::<Result<_>>()?;
        let batch = potential.batch(&perturbed.iter().collect::<Vec<_>>(), false);
        let perturbed_energy = potential
            .predict(&batch, minima_model::Mode::Training { forces: false })
            .normalized_energy;
        let equilibrium_energy = view.prediction.normalized_energy.index_select(0, view.equilibrium);
        Ok(Some(TermValue {
            count: perturbed.len() as f64,
            mean: (equilibrium_energy - perturbed_energy).relu().mean(potential.kind()),
        }))
    }
}
