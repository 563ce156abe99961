//! Atomic structures for minima: the element table, periodic cells and [`Atoms`].
//!
//! Units throughout minima: Å for lengths, eV for energies, eV/Å for forces, amu for masses.

pub mod build;
pub mod calculator;
pub mod cell;
pub mod element;
pub mod structure;

pub use calculator::{CalcError, Calculator, Deviation, Labels};
pub use cell::{Cell, Vec3};
pub use element::Element;
pub use structure::{keys, ArrayData, Atoms, PerAtom, Value};

/// Hartree in eV (CODATA 2018, as ASE's `units.Hartree`).
pub const HARTREE_EV: f64 = 27.211386245988;

/// Bohr radius in Å (CODATA 2018, as ASE's `units.Bohr`).
pub const BOHR_ANGSTROM: f64 = 0.529177210903;

/// Why a structure could not be built: each names what is wrong in words a user can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AtomsError {
    #[error("unknown element {0:?}")]
    UnknownElement(String),
    #[error("atom {atom} has a non-finite coordinate (NaN or inf)")]
    NonFinitePosition { atom: usize },
    #[error("per-atom array {0:?} has a non-finite value (NaN or inf)")]
    NonFinite(String),
    #[error("cell has a non-finite entry")]
    NonFiniteCell,
    #[error("cell is singular (volume {volume:.3e} Å³): its vectors do not span space")]
    SingularCell { volume: f64 },
    #[error("cell is too large: its volume overflows (entries beyond about 1e100 Å)")]
    HugeCell,
    #[error("scale factor {0} is not a positive finite number")]
    BadScale(f64),
    #[error("{name} has {found} entries, expected {expected}")]
    LengthMismatch {
        name: String,
        expected: usize,
        found: usize,
    },
}
