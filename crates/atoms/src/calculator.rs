//! The calculator seam: anything that turns a structure into energy and forces — a reference
//! method (EMT, xtb, CP2K) or a trained model — implements [`Calculator`], so relaxation,
//! energy curves, dynamics and the benchmarks run on any of them. It sits in the bottom layer
//! so that every other crate can implement or use it without depending on the others.

use crate::{keys, Atoms, Value, Vec3};

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
    /// A committee's disagreement, when the labels are the mean of several models.
    pub deviation: Option<Deviation>,
}

/// How far a committee's members lie from their mean: the measure active learning selects
/// structures by (DP-GEN's "model deviation").
#[derive(Debug, Clone, PartialEq)]
pub struct Deviation {
    /// Standard deviation of the members' energies (eV).
    pub energy: f64,
    /// Per atom, √(mean over members of |F_k − F̄|²) (eV/Å).
    pub forces: Vec<f64>,
}

impl Deviation {
    /// The largest per-atom force deviation (eV/Å): DP-GEN's selection criterion.
    pub fn max_force(&self) -> f64 {
        self.forces.iter().copied().fold(0.0, f64::max)
    }

    /// The members' mean and their deviation; `None` for no members. Per-atom energies and
    /// stress are averaged where every member gives them.
    pub fn mean_of(members: &[Labels]) -> Option<Labels> {
        let first = members.first()?;
        let k = members.len() as f64;
        let average = |f: &dyn Fn(&Labels) -> f64| members.iter().map(f).sum::<f64>() / k;
        let n = first.forces.len();
        let forces: Vec<Vec3> = (0..n)
            .map(|a| std::array::from_fn(|c| average(&|l| l.forces[a][c])))
            .collect();
        let energy = average(&|l| l.energy);
        let energies = members.iter().all(|l| l.energies.is_some()).then(|| {
            (0..n)
                .map(|a| average(&|l| l.energies.as_ref().map_or(0.0, |e| e[a])))
                .collect()
        });
        let stress = members
            .iter()
            .all(|l| l.stress.is_some())
            .then(|| std::array::from_fn(|c| average(&|l| l.stress.map_or(0.0, |s| s[c]))));
        let deviation = Deviation {
            energy: average(&|l| (l.energy - energy).powi(2)).sqrt(),
            forces: (0..n)
                .map(|a| average(&|l| (0..3).map(|c| (l.forces[a][c] - forces[a][c]).powi(2)).sum::<f64>()).sqrt())
                .collect(),
        };
        Some(Labels {
            energy,
            forces,
            energies,
            stress,
            deviation: Some(deviation),
        })
    }

    /// Writes the deviation into `atoms`: `energy_std` and `max_force_std` in the info,
    /// `forces_std` per atom.
    pub fn apply(&self, atoms: &mut Atoms) -> Result<(), crate::AtomsError> {
        atoms.set_array(keys::FORCES_STD, 1, crate::ArrayData::Float(self.forces.clone()))?;
        atoms.info.insert(keys::ENERGY_STD.into(), Value::Float(self.energy));
        atoms
            .info
            .insert(keys::MAX_FORCE_STD.into(), Value::Float(self.max_force()));
        Ok(())
    }
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
            deviation: None,
        }
    }

    /// Writes the labels into `atoms` as ASE's extxyz does: `energy` and `stress` (3×3) in
    /// the info, `forces` and `energies` per atom (and a committee's [`Deviation`]).
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
        if let Some(deviation) = &self.deviation {
            deviation.apply(atoms).map_err(bad)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(energy: f64, forces: Vec<Vec3>, stress: Option<[f64; 6]>) -> Labels {
        Labels {
            energy,
            energies: Some(vec![energy / 2.0; forces.len()]),
            forces,
            stress,
            deviation: None,
        }
    }

    #[test]
    fn a_committee_mean_and_its_deviation() {
        let a = labels(1.0, vec![[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], Some([1.0; 6]));
        let b = labels(3.0, vec![[-1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], None);
        let mean = Deviation::mean_of(&[a.clone(), b]).unwrap();
        assert_eq!(mean.energy, 2.0);
        assert_eq!(mean.forces, vec![[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
        assert_eq!(mean.energies, Some(vec![1.0, 1.0]));
        assert_eq!(mean.stress, None, "averaged only where every member gives it");
        let deviation = mean.deviation.clone().unwrap();
        assert_eq!(deviation.energy, 1.0);
        assert_eq!(deviation.forces, vec![1.0, 1.0]);
        assert_eq!(deviation.max_force(), 1.0);
        let mut atoms = Atoms::new(vec![1, 1], vec![[0.0; 3], [0.74, 0.0, 0.0]]).unwrap();
        mean.apply(&mut atoms).unwrap();
        assert_eq!(atoms.info.get(keys::MAX_FORCE_STD), Some(&Value::Float(1.0)));
        assert_eq!(atoms.info.get(keys::ENERGY_STD), Some(&Value::Float(1.0)));
        assert!(atoms.array(keys::FORCES_STD).is_some());
        assert_eq!(Deviation::mean_of(&[]), None);
        // One member: its own labels, no spread.
        assert_eq!(
            Deviation::mean_of(std::slice::from_ref(&a))
                .unwrap()
                .deviation
                .unwrap()
                .max_force(),
            0.0
        );
    }
}
