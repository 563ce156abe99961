//! λ_mask of the physics-transformer paper's Eq. 10: masked atomic modelling, the
//! cross-entropy of the element predicted for atoms masked with probability
//! `train.mask_ratio` (at least one per batch), from the rest of the structure. Training only:
//! the masks are drawn afresh every step.

use anyhow::{bail, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::{BatchView, LossTerm, TermValue};

pub struct MaskedAtoms;

impl LossTerm for MaskedAtoms {
    fn name(&self) -> &'static str {
        "mask"
    }

    fn value(&self, view: &BatchView, rng: Option<&mut ChaCha8Rng>) -> Result<Option<TermValue>> {
        let Some(rng) = rng else {
            return Ok(None);
        };
        let (potential, batch) = (view.potential, view.batch);
        let numbers: Vec<i64> = Vec::try_from(&batch.numbers)?;
        let ratio = view.config.train.mask_ratio;
        let mut mask: Vec<bool> = numbers.iter().map(|_| rng.random_bool(ratio)).collect();
        if !mask.iter().any(|&m| m) {
            let pick = rng.random_range(0..mask.len());
            mask[pick] = true;
        }
        let device = potential.device();
        let Some(logits) = potential.masked_atom_logits(batch, &Tensor::from_slice(&mask).to_device(device)) else {
            bail!(
                "train.loss.mask > 0, but a {:?} model has no masked-atom head (set it to 0)",
                potential.config.kind
            );
        };
        let elements = &potential.config.elements;
        let (mut rows, mut classes) = (Vec::new(), Vec::new());
        for (a, (&z, &masked)) in numbers.iter().zip(&mask).enumerate() {
            if masked {
                rows.push(a as i64);
                classes.push(elements.binary_search(&(z as u8)).expect("elements checked") as i64);
            }
        }
        let count = rows.len() as f64;
        let rows = Tensor::from_slice(&rows).to_device(device);
        let classes = Tensor::from_slice(&classes).to_device(device);
        Ok(Some(TermValue {
            mean: logits.index_select(0, &rows).cross_entropy_for_logits(&classes),
            count,
        }))
    }
}
