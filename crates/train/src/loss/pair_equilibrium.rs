//! λ_pair, not in the physics-transformer paper: the mean over bonded pairs of equilibrium
//! structures of (∂E_ij/∂d)² (units of σ/Å), which asks each bond to sit at the minimum of
//! its own pair potential (Eq. 5 calls β4 the distance where the energy is minimal). The
//! paper's losses constrain only the total energy, and f_atom can balance any pair force: on
//! QM9 subsets β4 then stays wherever it starts (from 1.5 Å it ends at ~1.12 Å for every bond
//! type, from 0.8 Å at ~0.7 Å). With this term it tracks each bond's length. Off in the
//! paper's Table 2 configurations.

use anyhow::{bail, Result};
use minima_model::{Field, ModelConfig};
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use super::{BatchView, LossTerm, TermValue};

pub struct PairEquilibrium;

impl LossTerm for PairEquilibrium {
    fn name(&self) -> &'static str {
        "pair_equilibrium"
    }

    fn reads(&self, _model: &ModelConfig) -> Vec<Field> {
        vec![Field::PairEdge, Field::PairSlope]
    }

    fn value(&self, view: &BatchView, _rng: Option<&mut ChaCha8Rng>) -> Result<Option<TermValue>> {
        let potential = view.potential;
        let outputs = &view.prediction.outputs;
        let (Some(edge), Some(slope)) = (outputs.get(Field::PairEdge), outputs.get(Field::PairSlope)) else {
            bail!("the model wrote no pair terms (checked before training: a defect)");
        };
        if !view.has_equilibrium() {
            return Ok(None);
        }
        let batch = view.batch;
        let structure = batch.structure.index_select(0, &batch.center.index_select(0, edge));
        let equilibrium = Tensor::from_slice(view.is_equilibrium).to_device(potential.device());
        let selected = batch
            .bond
            .index_select(0, edge)
            .ne(0)
            .logical_and(&equilibrium.index_select(0, &structure));
        let count = selected.sum(Kind::Int64).int64_value(&[]);
        if count == 0 {
            return Ok(None);
        }
        let slope = slope / potential.refs.scale;
        Ok(Some(TermValue {
            mean: slope.masked_select(&selected).square().mean(potential.kind()),
            count: count as f64,
        }))
    }
}
