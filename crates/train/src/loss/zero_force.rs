//! λ_force of the physics-transformer paper: zero-force regularisation, Σᵢ‖Fᵢ‖² (in units of
//! σ/Å) on equilibrium structures ([`minima_data::Sample::is_equilibrium`]), averaged over
//! them; trained through second-order autograd.

use anyhow::Result;
use minima_model::{Field, ModelConfig};
use rand_chacha::ChaCha8Rng;

use super::{BatchView, LossTerm, Needs, TermValue};

pub struct ZeroForce;

impl LossTerm for ZeroForce {
    fn name(&self) -> &'static str {
        "zero_force"
    }

    fn reads(&self, _model: &ModelConfig) -> Vec<Field> {
        vec![Field::Forces]
    }

    fn needs(&self) -> Needs {
        Needs::Forces
    }

    fn validates(&self) -> bool {
        true
    }

    fn value(&self, view: &BatchView, _rng: Option<&mut ChaCha8Rng>) -> Result<Option<TermValue>> {
        let (Some(predicted), true) = (&view.prediction.forces, view.has_equilibrium()) else {
            return Ok(None);
        };
        let kind = view.potential.kind();
        let squared = (predicted / view.potential.refs.scale)
            .square()
            .sum_dim_intlist(-1, false, kind);
        let per_structure = view.batch.sum_per_structure(&squared);
        Ok(Some(TermValue {
            mean: per_structure.index_select(0, view.equilibrium).mean(kind),
            count: view.equilibrium.numel() as f64,
        }))
    }
}
