//! The energy term: the mean squared error of (E − Σ ref)/σ per structure.

use anyhow::Result;
use minima_model::{Field, ModelConfig};
use rand_chacha::ChaCha8Rng;

use super::{BatchView, LossTerm, TermValue};

pub struct Energy;

impl LossTerm for Energy {
    fn name(&self) -> &'static str {
        "energy"
    }

    fn reads(&self, _model: &ModelConfig) -> Vec<Field> {
        vec![Field::NormalizedEnergy]
    }

    fn validates(&self) -> bool {
        true
    }

    fn value(&self, view: &BatchView, _rng: Option<&mut ChaCha8Rng>) -> Result<Option<TermValue>> {
        let error = &view.prediction.normalized_energy - view.target;
        Ok(Some(TermValue {
            mean: error.square().mean(view.potential.kind()),
            count: view.samples.len() as f64,
        }))
    }
}
