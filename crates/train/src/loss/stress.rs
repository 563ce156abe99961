//! The stress term: the mean over the structures that record a stress of the squared error
//! of the virial per atom, (W − V·σ_ref)/N with W = ∂E/∂ε the model's virial, in units of the
//! energy scale σ (the six Voigt components).

use anyhow::{bail, Result};
use minima_data::Sample;
use minima_model::{Field, ModelConfig, Potential};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::{BatchView, LossTerm, Needs, TermValue};

pub struct Stress;

impl LossTerm for Stress {
    fn name(&self) -> &'static str {
        "stress"
    }

    fn reads(&self, _model: &ModelConfig) -> Vec<Field> {
        vec![Field::Virial]
    }

    fn needs(&self) -> Needs {
        Needs::Strain
    }

    fn validates(&self) -> bool {
        true
    }

    fn check(&self, _potential: &Potential, train: &[Sample]) -> Result<()> {
        if !train.iter().any(|s| s.stress.is_some()) {
            bail!("train.loss.stress > 0 but no training frame records a stress (info `stress`, as ASE writes it)");
        }
        Ok(())
    }

    fn value(&self, view: &BatchView, _rng: Option<&mut ChaCha8Rng>) -> Result<Option<TermValue>> {
        let Some(virial) = &view.prediction.virial else {
            return Ok(None);
        };
        let scale = view.potential.refs.scale;
        let (mut rows, mut reference, mut per_atom) = (Vec::new(), Vec::new(), Vec::new());
        for (s, sample) in view.samples.iter().enumerate() {
            let graph = &sample.graph;
            let (Some(stress), Some(cell)) = (sample.stress, graph.bulk_cell()) else {
                continue;
            };
            let n = graph.len() as f64;
            rows.push(s as i64);
            reference.extend(stress.map(|x| x * cell.volume() / (n * scale)));
            per_atom.push(1.0 / (n * scale));
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let (kind, device) = (virial.kind(), virial.device());
        let floats = |v: &[f64]| Tensor::from_slice(v).to_kind(kind).to_device(device);
        let picked = virial
            .index_select(0, &Tensor::from_slice(&rows).to_device(device))
            .view([-1, 9]);
        // Voigt order xx yy zz yz xz xy of the row-major 3×3.
        let voigt = picked.index_select(1, &Tensor::from_slice(&[0i64, 4, 8, 5, 2, 1]).to_device(device));
        let error = voigt * floats(&per_atom).unsqueeze(1) - floats(&reference).view([-1, 6]);
        Ok(Some(TermValue {
            count: error.numel() as f64,
            mean: error.square().mean(kind),
        }))
    }
}
