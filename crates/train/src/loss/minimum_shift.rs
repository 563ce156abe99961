//! The minimum's shift: how far the model's force error moves a minimum of the reference.
//! At a frame carrying the reference's compliance modes (`compliance`, the soft vibrations v
//! of its Hessian there divided by their force constants k; `minima data compliance`), a force
//! error ΔF moves the minimum, to first order, by x = Σ (v·ΔF / k) v. The term is |x|²/N, the
//! mean squared displacement per atom (forces in units of σ/Å like the force term), averaged
//! over those frames.
//!
//! Why: a uniform force loss weighs an error of 0.05 eV/Å the same along a bond stretch
//! (30 eV/Å², which it moves by 0.002 Å) and along a torsion (0.1 eV/Å², 0.5 Å), while where
//! a relaxation ends is decided by the soft modes. Each k is floored at
//! `train.soft_mode_floor`, so that a nearly free rotor (where the linear response overstates
//! a shift the periodic potential bounds) does not dominate.

use anyhow::{bail, Result};
use minima_data::sampling::COMPLIANCE;
use minima_data::Sample;
use minima_model::{Field, ModelConfig, Potential};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::{BatchView, LossTerm, Needs, TermValue};

pub struct MinimumShift;

impl LossTerm for MinimumShift {
    fn name(&self) -> &'static str {
        "minimum_shift"
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

    fn check(&self, _potential: &Potential, train: &[Sample]) -> Result<()> {
        if !train.iter().any(|s| s.compliance.is_some()) {
            bail!(
                "train.loss.minimum_shift is on, but no training frame carries the reference's \
                 `{COMPLIANCE}` column (add it with `minima data compliance`)"
            );
        }
        Ok(())
    }

    fn value(&self, view: &BatchView, _rng: Option<&mut ChaCha8Rng>) -> Result<Option<TermValue>> {
        let Some(predicted) = &view.prediction.forces else {
            return Ok(None);
        };
        if view.samples.iter().all(|s| s.compliance.is_none()) {
            return Ok(None);
        }
        let (kind, device) = (view.potential.kind(), view.potential.device());
        let error = (predicted - view.reference_forces()?) / view.potential.refs.scale;
        let floor = view.config.train.soft_mode_floor;
        let (mut shifts, mut start) = (Vec::new(), 0);
        for (sample, &atoms) in view.samples.iter().zip(&view.batch.sizes) {
            if let Some(compliance) = &sample.compliance {
                // (atoms, modes, 3): mode m of atom i is v_m(i) / k_m, so |column m| = 1 / k_m.
                let modes = Tensor::from_slice(compliance)
                    .view([atoms as i64, -1, 3])
                    .to_kind(kind)
                    .to_device(device);
                let stiffness_cap = (modes.square().sum_dim_intlist([0, 2].as_slice(), false, kind).sqrt() * floor)
                    .reciprocal()
                    .clamp_max(1.0);
                let atom_error = error.narrow(0, start as i64, atoms as i64).unsqueeze(1);
                let along = (modes * atom_error).sum_dim_intlist([0, 2].as_slice(), false, kind) * stiffness_cap;
                shifts.push(along.square().sum(kind) / atoms as f64);
            }
            start += atoms;
        }
        let count = shifts.len() as f64;
        Ok(Some(TermValue {
            mean: Tensor::stack(&shifts, 0).mean(kind),
            count,
        }))
    }
}
