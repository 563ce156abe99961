//! The VIMPNN paper's auxiliary targets (element counts, valence orbitals, the distance
//! scaling distribution) through the model's auxiliary heads.

use anyhow::Result;
use minima_data::Sample;
use minima_model::{AuxTargets, Field, ModelConfig, Potential};
use rand_chacha::ChaCha8Rng;

use super::{BatchView, LossTerm, TermValue};

pub struct Auxiliary;

fn targets(potential: &Potential, samples: &[&Sample]) -> Result<AuxTargets> {
    let config = &potential.config;
    AuxTargets::new(
        samples,
        &config.elements,
        &config.aux,
        potential.kind(),
        potential.device(),
    )
    .map_err(anyhow::Error::msg)
}

impl LossTerm for Auxiliary {
    fn name(&self) -> &'static str {
        "aux"
    }

    fn reads(&self, model: &ModelConfig) -> Vec<Field> {
        let aux = &model.aux;
        [
            (aux.counts, Field::AuxCounts),
            (aux.orbitals, Field::AuxOrbitals),
            (aux.scale, Field::AuxScale),
        ]
        .into_iter()
        .filter_map(|(on, field)| on.then_some(field))
        .collect()
    }

    fn check(&self, potential: &Potential, train: &[Sample]) -> Result<()> {
        let samples: Vec<&Sample> = train.iter().collect();
        targets(potential, &samples).map_err(|e| e.context("training data"))?;
        Ok(())
    }

    fn value(&self, view: &BatchView, _rng: Option<&mut ChaCha8Rng>) -> Result<Option<TermValue>> {
        // Its parts average over atoms and structures; counted by structures, a data-parallel
        // run weighs each rank's share by its structures.
        Ok(targets(view.potential, view.samples)?
            .loss(&view.prediction.outputs)
            .map(|mean| TermValue {
                mean,
                count: view.samples.len() as f64,
            }))
    }
}
