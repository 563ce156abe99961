//! Reference calculators and labelling.
//!
//! A [`Calculator`] turns a structure into [`Labels`] (energy in eV, forces in eV/Å, optionally
//! per-atom energies and the stress). Three are built in:
//! - [`Emt`]: Effective Medium Theory in Rust, equal to ASE's `EMT` (metals; the fast default);
//! - [`Xtb`]: GFN2-xTB through the `xtb` program (molecules);
//! - [`Cp2k`]: PBE DFT through CP2K, the papers' reference method (slow, high fidelity).
//!
//! [`label`] runs a calculator over an extxyz file the way long jobs must run: parallel jobs,
//! a journal appended atomically per structure so a killed run resumes without losing or
//! repeating any (and relabels a frame whose input changed), the output locked while written,
//! shards for cluster arrays that [`merge`] joins only when all are there and finished, failures
//! recorded with their reason.

pub mod cp2k;
pub mod emt;
mod process;
mod record;
pub mod run;
pub mod xtb;

pub use cp2k::Cp2k;
pub use emt::Emt;
pub use run::{label, merge, LabelOptions, LabelSummary, MergeSummary, Shard};
pub use xtb::Xtb;

use minima_atoms::{Atoms, Value, Vec3};

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
    pub(crate) fn from_atomic_units(energy: f64, forces: Vec<Vec3>) -> Labels {
        use minima_atoms::{BOHR_ANGSTROM, HARTREE_EV};
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
        let bad = |e: minima_atoms::AtomsError| CalcError::Failed(e.to_string());
        atoms.set_energy(self.energy);
        atoms
            .set_forces(self.forces.iter().flatten().copied().collect())
            .map_err(bad)?;
        if let Some(energies) = &self.energies {
            atoms
                .set_array("energies", 1, minima_atoms::ArrayData::Float(energies.clone()))
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

/// An integer setting a frame carries in its info (`charge`, `uhf`); an error when present but
/// not an integer, so a mistyped charge is never silently replaced by a default.
pub(crate) fn integer_info(atoms: &Atoms, key: &str) -> Result<Option<i64>, CalcError> {
    match atoms.info.get(key) {
        None => Ok(None),
        Some(Value::Int(i)) => Ok(Some(*i)),
        Some(other) => Err(CalcError::Input(format!("info {key}={other:?} is not an integer"))),
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

/// Settings of the external-program calculators.
#[derive(Debug, Clone, Default)]
pub struct CalculatorOptions {
    /// Kill a run after this long and record its structure as failed (default per program).
    pub timeout: Option<std::time::Duration>,
    /// MPI ranks per CP2K run (default 2).
    pub cp2k_ranks: Option<usize>,
}

/// The calculator called `name`: `emt`, `xtb` or `cp2k`.
pub fn calculator_by_name(name: &str, options: &CalculatorOptions) -> Result<Box<dyn Calculator>, CalcError> {
    match name {
        "emt" => Ok(Box::new(Emt::new())),
        "xtb" => {
            let default = Xtb::default();
            Ok(Box::new(Xtb {
                timeout: options.timeout.unwrap_or(default.timeout),
                ..default
            }))
        }
        "cp2k" => {
            let default = Cp2k::default();
            Ok(Box::new(Cp2k {
                timeout: options.timeout.unwrap_or(default.timeout),
                ranks: options.cp2k_ranks.unwrap_or(default.ranks),
                ..default
            }))
        }
        other => Err(CalcError::Unsupported(format!(
            "unknown calculator {other:?}: choose emt, xtb or cp2k"
        ))),
    }
}
