//! Reference minima and their curvature, for data that covers what a relaxation visits:
//! [`RelaxToMinimum`] relaxes frames with a reference calculator in a journalled run (`minima
//! data relaxed`), and [`finite_difference_hessian`] gives the Hessian that normal-mode
//! sampling needs from any calculator; [`RecordCompliance`] records at each minimum the soft
//! modes that decide how far a model's force error moves it (`minima data compliance`).

use minima_atoms::{ArrayData, Atoms, Value};
use minima_data::sampling::{compliance_modes, COMPLIANCE};
use minima_label::run::{with_labels, FrameJob};
use minima_label::{CalcError, Calculator};

use crate::relax::{relax, RelaxOptions, Stop};
use crate::ExploreError;

/// A [`FrameJob`] that relaxes each frame with the reference and keeps it only at a minimum:
/// the relaxed geometry with the reference's energy and forces, `equilibrium=T`,
/// `relax_steps`, `relax_fmax` (the criterion met, eV/Å) and `relax_optimizer`; a recorded
/// `scale` becomes `base_scale` ([`minima_data::sampling::off_the_scan`]): the minimum lies on
/// no scan line. A relaxation that stops
/// for any other reason than convergence is a failure of the frame with that reason.
pub struct RelaxToMinimum<'a> {
    pub calculator: &'a dyn Calculator,
    pub options: RelaxOptions,
}

impl FrameJob for RelaxToMinimum<'_> {
    fn name(&self) -> &str {
        self.calculator.name()
    }

    fn process(&self, atoms: &Atoms, _index: usize) -> Result<Vec<Atoms>, CalcError> {
        let relaxation = relax(self.calculator, atoms, &self.options, |_| {}).map_err(|e| match e {
            ExploreError::Calc(e) => e,
            other => CalcError::Failed(other.to_string()),
        })?;
        if relaxation.stop != Stop::Converged {
            return Err(CalcError::Failed(format!(
                "relaxation not converged: {} (largest force {:.4} eV/Å after {} steps, asked {} eV/Å)",
                relaxation.stop,
                relaxation.fmax(),
                relaxation.steps,
                self.options.fmax
            )));
        }
        let mut out = with_labels(&relaxation.atoms, &relaxation.labels, self.calculator.name())?;
        minima_data::sampling::off_the_scan(&mut out);
        out.info
            .insert(minima_data::sampling::EQUILIBRIUM.into(), Value::Bool(true));
        out.info
            .insert("relax_steps".into(), Value::Int(relaxation.steps as i64));
        out.info.insert("relax_fmax".into(), Value::Float(self.options.fmax));
        let optimizer = serde_json::to_value(self.options.optimizer).map_err(|e| CalcError::Failed(e.to_string()))?;
        out.info.insert(
            "relax_optimizer".into(),
            Value::Str(optimizer.as_str().unwrap_or_default().into()),
        );
        Ok(vec![out])
    }
}

/// The displacement of the finite-difference Hessian (Å): ASE's `Vibrations` default.
pub const HESSIAN_DELTA: f64 = 0.01;

/// The Cartesian Hessian of `atoms` (3N × 3N, row-major, eV/Å²) by central differences of the
/// forces, as ASE's `Vibrations` computes it: `H_ij = −(F_j(x + δ e_i) − F_j(x − δ e_i)) / 2δ`,
/// then symmetrised, `(H + Hᵀ)/2`; 6N force calls. The error is O(δ²) in the anharmonicity.
pub fn finite_difference_hessian(
    calculator: &dyn Calculator,
    atoms: &Atoms,
    delta: f64,
) -> Result<Vec<f64>, CalcError> {
    let n = 3 * atoms.len();
    let mut hessian = vec![0.0; n * n];
    let mut moved = atoms.clone();
    for i in 0..n {
        let mut forces_at = |sign: f64| -> Result<Vec<f64>, CalcError> {
            let mut positions = atoms.positions().to_vec();
            positions[i / 3][i % 3] += sign * delta;
            moved
                .set_positions(positions)
                .map_err(|e| CalcError::Input(e.to_string()))?;
            Ok(calculator
                .calculate_checked(&moved)?
                .forces
                .into_iter()
                .flatten()
                .collect())
        };
        let (plus, minus) = (forces_at(1.0)?, forces_at(-1.0)?);
        for j in 0..n {
            hessian[i * n + j] = -(plus[j] - minus[j]) / (2.0 * delta);
        }
    }
    for i in 0..n {
        for j in 0..i {
            let mean = 0.5 * (hessian[i * n + j] + hessian[j * n + i]);
            hessian[i * n + j] = mean;
            hessian[j * n + i] = mean;
        }
    }
    Ok(hessian)
}

/// A reference's Hessian of a structure (3N × 3N, row-major, eV/Å²).
pub type HessianOf<'a> = dyn Fn(&Atoms) -> Result<Vec<f64>, CalcError> + Sync + 'a;

/// A [`FrameJob`] that records on each minimum of the reference (`equilibrium=T`) its
/// compliance modes ([`minima_data::sampling::compliance_modes`] of `hessian` there, the
/// vibrations softer than `max_force_constant` eV/Å²) as the per-atom column `compliance`,
/// which the `minimum_shift` loss reads; a minimum with no vibration that soft (methane) and
/// every other frame pass unchanged. A minimum whose Hessian fails is a failure of the frame.
pub struct RecordCompliance<'a> {
    /// The reference's name (the journal's `calculator`).
    pub reference: &'a str,
    pub hessian: &'a HessianOf<'a>,
    pub max_force_constant: f64,
}

impl FrameJob for RecordCompliance<'_> {
    fn name(&self) -> &str {
        self.reference
    }

    fn process(&self, atoms: &Atoms, _index: usize) -> Result<Vec<Atoms>, CalcError> {
        let mut out = atoms.clone();
        out.remove_array(COMPLIANCE);
        let flag = minima_data::equilibrium_flag(atoms).map_err(CalcError::Input)?;
        if flag != Some(true) {
            return Ok(vec![out]);
        }
        let hessian = (self.hessian)(atoms)?;
        let (modes, column) = compliance_modes(atoms, &hessian, self.max_force_constant).map_err(CalcError::Failed)?;
        if modes > 0 {
            out.set_array(COMPLIANCE, 3 * modes, ArrayData::Float(column))
                .map_err(|e| CalcError::Failed(e.to_string()))?;
        }
        Ok(vec![out])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minima_label::Emt;

    #[test]
    fn relaxed_frames_are_converged_minima_and_the_hessian_is_their_curvature() {
        let dimer = Atoms::new(vec![29, 29], vec![[0.0; 3], [0.0, 0.0, 2.6]]).unwrap();
        let job = RelaxToMinimum {
            calculator: &Emt::new(),
            options: RelaxOptions {
                fmax: 1e-4,
                ..RelaxOptions::default()
            },
        };
        let [relaxed] = &job.process(&dimer, 0).unwrap()[..] else {
            panic!("one frame")
        };
        assert_eq!(relaxed.info["equilibrium"], Value::Bool(true));
        let forces = relaxed.forces().unwrap();
        assert!(forces.iter().all(|f| f.abs() < 1e-4), "{forces:?}");
        let hessian = finite_difference_hessian(&Emt::new(), relaxed, HESSIAN_DELTA).unwrap();
        // Along the bond: +k on the diagonal, −k between the atoms; across it: nothing (a
        // minimum's rotations cost no energy, up to the O(δ²) of the differences).
        let (zz, z1z2) = (hessian[2 * 6 + 2], hessian[2 * 6 + 5]);
        assert!(zz > 1.0 && (zz + z1z2).abs() < 1e-6 * zz, "{zz} {z1z2}");
        assert!(hessian[0].abs() < 1e-3 * zz, "{} {zz}", hessian[0]);
        let few_steps = RelaxToMinimum {
            calculator: &Emt::new(),
            options: RelaxOptions {
                fmax: 1e-6,
                steps: 1,
                ..RelaxOptions::default()
            },
        };
        let err = few_steps.process(&dimer, 0).unwrap_err();
        assert!(
            err.to_string().starts_with("relaxation not converged: step limit"),
            "{err}"
        );
    }

    /// Compliance is recorded on minima only, from the reference's Hessian there; other frames
    /// pass as they are, and a failing Hessian is a failure of the frame.
    #[test]
    fn compliance_is_recorded_on_minima_only() {
        let trimer = Atoms::new(vec![29, 29, 29], vec![[0.0; 3], [2.5, 0.0, 0.0], [1.2, 2.1, 0.0]]).unwrap();
        let relax = RelaxToMinimum {
            calculator: &Emt::new(),
            options: RelaxOptions {
                fmax: 1e-4,
                ..RelaxOptions::default()
            },
        };
        let minimum = relax.process(&trimer, 0).unwrap().remove(0);
        let hessian = |atoms: &Atoms| finite_difference_hessian(&Emt::new(), atoms, HESSIAN_DELTA);
        let job = RecordCompliance {
            reference: "emt",
            hessian: &hessian,
            max_force_constant: 100.0,
        };
        let recorded = job.process(&minimum, 0).unwrap().remove(0);
        // A triangle has three vibrations, all below 100 eV/Å².
        assert_eq!(recorded.array(COMPLIANCE).map(|a| a.width), Some(9));
        assert_eq!(job.process(&trimer, 0).unwrap(), [trimer]);
        let failing = |_: &Atoms| Err(CalcError::Failed("no Hessian".into()));
        let job = RecordCompliance {
            hessian: &failing,
            ..job
        };
        assert!(job.process(&minimum, 0).is_err());
    }
}
