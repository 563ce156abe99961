//! The force term: the mean squared error of the force components in units of σ/Å, each
//! atom weighted by `train.force_scale` when set (see there).

use anyhow::Result;
use minima_model::{Field, ModelConfig};
use rand_chacha::ChaCha8Rng;
use tch::Kind;

use super::{BatchView, LossTerm, Needs, TermValue};

pub struct Forces;

impl LossTerm for Forces {
    fn name(&self) -> &'static str {
        "forces"
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
        let Some(predicted) = &view.prediction.forces else {
            return Ok(None);
        };
        let kind = view.potential.kind();
        let reference = view.reference_forces()?;
        let squared = ((predicted - reference) / view.potential.refs.scale).square();
        Ok(Some(match view.config.train.force_scale {
            None => TermValue {
                count: squared.numel() as f64,
                mean: squared.mean(kind),
            },
            Some(f0) => {
                let weight = (reference.square().sum_dim_intlist(-1, true, kind) / (f0 * f0) + 1.0).reciprocal();
                let count = weight.sum(Kind::Double).double_value(&[]) * 3.0;
                TermValue {
                    mean: (squared * &weight).sum(kind) / (weight.sum(kind) * 3.0),
                    count,
                }
            }
        }))
    }
}
