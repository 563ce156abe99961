//! The calculator seam: anything that turns a structure into energy and forces — a reference
//! method (EMT, xtb, CP2K) or a trained model — implements [`Calculator`], so relaxation,
//! energy curves, dynamics and the benchmarks run on any of them. It sits in the bottom layer
//! so that every other crate can implement or use it without depending on the others.

use crate::{Atoms, Value, Vec3};

/// What a calculator computes for one structure.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// Total energy (eV).
    pub energy: f64,
    /// Forces (eV/Å), one per atom.
    pub forces: Vec<Vec3>,
    /// Per-atom energies (eV), where the method defines them.
    pub energies: Option<Vec<f64>>,
    /// Stress (eV/Å³, Voigt order xx yy zz yz xz xy, ASE's sign), for periodic structures.
    pub stress: Option<[f64; 6]>,
}

impl Labels {
    /// Labels from a quantum-chemistry code's atomic units: energy in Hartree, forces in
    /// Hartree/bohr.
    pub fn from_atomic_units(energy: f64, forces: Vec<Vec3>) -> Labels {
        use crate::{BOHR_ANGSTROM, HARTREE_EV};
        Labels {
            energy: energy * HARTREE_EV,
            forces: forces
                .into_iter()
                .map(|f| f.map(|x| x * HARTREE_EV / BOHR_ANGSTROM))
                .collect(),
            energies: None,
            stress: None,
        }
    }

    /// Writes the labels into `atoms` as ASE's extxyz does: `energy` and `stress` (3×3) in
    /// the info, `forces` and `energies` per atom.
    pub fn apply(&self, atoms: &mut Atoms) -> Result<(), CalcError> {
        let bad = |e: crate::AtomsError| CalcError::Failed(e.to_string());
        atoms.set_energy(self.energy);
        atoms
            .set_forces(self.forces.iter().flatten().copied().collect())
            .map_err(bad)?;
        if let Some(energies) = &self.energies {
            atoms
                .set_array("energies", 1, crate::ArrayData::Float(energies.clone()))
                .map_err(bad)?;
        }
        if let Some([xx, yy, zz, yz, xz, xy]) = self.stress {
            let full = vec![xx, xy, xz, xy, yy, yz, xz, yz, zz];
            atoms.info.insert("stress".into(), Value::Floats(full));
        }
        Ok(())
    }

    /// Refuses NaN or infinite results: a failed calculation must never become a label.
    fn check_finite(&self) -> Result<(), CalcError> {
        let finite = self.energy.is_finite()
            && self.forces.iter().flatten().all(|f| f.is_finite())
            && self.energies.iter().flatten().all(|e| e.is_finite());
        if finite {
            Ok(())
        } else {
            Err(CalcError::Failed(
                "the calculation returned a non-finite energy or force".into(),
            ))
        }
    }
}

/// Why a structure got no labels.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalcError {
    /// The method cannot treat this structure (an element without parameters, periodic input
    /// to a molecular code); relabelling will not help.
    #[error("{0}")]
    Unsupported(String),
    /// The structure itself is unusable (overlapping atoms, no cell where one is needed).
    #[error("{0}")]
    Input(String),
    /// The external program is not installed or cannot start.
    #[error("{0}")]
    Missing(String),
    /// The calculation ran and failed: no SCF convergence, abnormal termination, timeout.
    #[error("{0}")]
    Failed(String),
}

/// A reference method that labels one structure at a time. Implementations are stateless
/// between calls, so one instance serves every worker thread.
pub trait Calculator: Send + Sync {
    /// The name recorded with each labelled frame (`calculator=` in its info).
    fn name(&self) -> &str;

    fn calculate(&self, atoms: &Atoms) -> Result<Labels, CalcError>;

    /// [`Calculator::calculate`], with its result checked to be finite.
    fn calculate_checked(&self, atoms: &Atoms) -> Result<Labels, CalcError> {
        let labels = self.calculate(atoms)?;
        labels.check_finite()?;
        if labels.forces.len() != atoms.len() {
            return Err(CalcError::Failed(format!(
                "{} forces for {} atoms",
                labels.forces.len(),
                atoms.len()
            )));
        }
        Ok(labels)
    }
}
