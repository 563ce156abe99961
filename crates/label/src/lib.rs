//! Reference calculators and labelling.
//!
//! A [`Calculator`] turns a structure into [`Labels`] (energy in eV, forces in eV/Å, optionally
//! per-atom energies and the stress). Three are built in:
//! - [`Emt`]: Effective Medium Theory in Rust, equal to ASE's `EMT` (metals; the fast default;
//!   its own crate, `minima-emt`, so that a binding can offer it without the labelling runner);
//! - [`Xtb`]: GFN2-xTB through the `xtb` program (molecules);
//! - [`Cp2k`]: PBE DFT through CP2K, the papers' reference method (slow, high fidelity).
//!
//! [`label`] runs a calculator over an extxyz file the way long jobs must run: parallel jobs,
//! a journal appended atomically per structure so a killed run resumes without losing or
//! repeating any (and relabels a frame whose input changed), the output locked while written,
//! shards for cluster arrays that [`merge`] joins only when all are there and finished, failures
//! recorded with their reason.

pub mod cp2k;
mod process;
mod record;
pub mod run;
pub mod scheduler;
pub mod xtb;

pub use cp2k::Cp2k;
pub use minima_emt::Emt;
pub use run::{label, merge, LabelOptions, LabelSummary, MergeSummary, Shard};
pub use xtb::Xtb;

pub use minima_atoms::calculator::{CalcError, Calculator, Labels};
use minima_atoms::{Atoms, Value};

/// An integer setting a frame carries in its info (`charge`, `uhf`); an error when present but
/// not an integer, so a mistyped charge is never silently replaced by a default.
pub(crate) fn integer_info(atoms: &Atoms, key: &str) -> Result<Option<i64>, CalcError> {
    match atoms.info.get(key) {
        None => Ok(None),
        Some(Value::Int(i)) => Ok(Some(*i)),
        Some(other) => Err(CalcError::Input(format!("info {key}={other:?} is not an integer"))),
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

/// The energy (eV) of one free atom of each of `elements` by `calculator`, at its default
/// settings (for EMT the free atom is its own cohesive energy above the fcc crystal).
pub fn free_atom_energies(
    calculator: &dyn Calculator,
    elements: &[u8],
) -> Result<std::collections::BTreeMap<u8, f64>, CalcError> {
    elements
        .iter()
        .map(|&z| {
            let atom = Atoms::new(vec![z], vec![[0.0; 3]]).map_err(|e| CalcError::Input(e.to_string()))?;
            Ok((z, calculator.calculate_checked(&atom)?.energy))
        })
        .collect()
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
