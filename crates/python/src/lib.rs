//! `minima._minima`: the Rust side of the Python package. [`Model`] evaluates one checkpoint
//! or a committee of them, [`Emt`] is minima's EMT; both take a structure as plain numbers
//! (atomic numbers, positions, cell, periodicity) and return a dict of results in eV and Å.
//! Graphs and neighbour lists are built here, in Rust; the Python side (`minima.Calculator`,
//! `minima.EMT`) adapts them to ASE's calculator protocol.

use std::path::PathBuf;
use std::sync::Mutex;

use minima_atoms::{Atoms, CalcError, Calculator, Cell, Labels, Value, Vec3};
use minima_model::Committee;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A structure from what ASE holds: a cell of zeros, or no periodic axis, is no cell.
fn atoms_of(numbers: Vec<u8>, positions: Vec<Vec3>, cell: Option<[Vec3; 3]>, pbc: [bool; 3]) -> PyResult<Atoms> {
    let invalid = |e: minima_atoms::AtomsError| PyValueError::new_err(e.to_string());
    let atoms = Atoms::new(numbers, positions).map_err(invalid)?;
    match cell.filter(|c| c.iter().flatten().any(|&x| x != 0.0)) {
        Some(vectors) => Ok(atoms.with_cell(Cell::new(vectors).map_err(invalid)?, pbc)),
        None if pbc.iter().any(|&p| p) => Err(PyValueError::new_err(
            "the structure is periodic but its cell is zero: give it a cell or set pbc=False",
        )),
        None => Ok(atoms),
    }
}

fn calc_error(e: CalcError) -> PyErr {
    match e {
        CalcError::Input(m) | CalcError::Unsupported(m) => PyValueError::new_err(m),
        CalcError::Missing(m) | CalcError::Failed(m) => PyRuntimeError::new_err(m),
    }
}

/// The results ASE's calculators hold, flat: `energy`, `forces` (N×3 rows), `energies` and,
/// for periodic cells, `stress` (Voigt xx yy zz yz xz xy, eV/Å³).
fn results<'py>(py: Python<'py>, labels: &Labels) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("energy", labels.energy)?;
    out.set_item("forces", labels.forces.clone())?;
    if let Some(energies) = &labels.energies {
        out.set_item("energies", energies.clone())?;
    }
    if let Some(stress) = labels.stress {
        out.set_item("stress", stress.to_vec())?;
    }
    Ok(out)
}

/// One checkpoint, or several (files, run folders or a committee's folder) as a committee: their mean, and the spread a committee's
/// disagreement is measured by (`energy_std`, eV; `forces_std`, per atom √(mean_k |F_k − F̄|²),
/// eV/Å). Bond types, for the models that read them, are perceived on the first structure and
/// kept while the atomic numbers stay the same (a relaxation or dynamics must not change a
/// model's bond features); `reset_bonds` forgets them, as `minima.Calculator` does for every
/// new `Atoms` object. A structure that records its bonds
/// (`bonds` in the info of a minima data set) passes them in `bonds`.
#[pyclass(module = "minima._minima")]
struct Model {
    committee: Committee,
    /// The atomic numbers the kept bonds belong to, and their record.
    bonds: Mutex<Option<(Vec<u8>, Option<String>)>>,
}

#[pymethods]
impl Model {
    #[new]
    #[pyo3(signature = (checkpoints, device = "cpu", threads = 1))]
    fn new(checkpoints: Vec<PathBuf>, device: &str, threads: usize) -> PyResult<Model> {
        if checkpoints.is_empty() {
            return Err(PyValueError::new_err("give at least one checkpoint"));
        }
        minima_model::configure_threads(threads);
        let device = minima_model::parse_device(device).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let committee = Committee::load(&checkpoints, device).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Model {
            committee,
            bonds: Mutex::new(None),
        })
    }

    /// The members' names (each checkpoint's file or run folder).
    #[getter]
    fn names(&self) -> Vec<String> {
        self.committee.members().iter().map(|m| m.name().to_string()).collect()
    }

    fn reset_bonds(&self) {
        *self.bonds.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    #[pyo3(signature = (numbers, positions, cell, pbc, bonds = None))]
    fn calculate<'py>(
        &self,
        py: Python<'py>,
        numbers: Vec<u8>,
        positions: Vec<Vec3>,
        cell: Option<[Vec3; 3]>,
        pbc: [bool; 3],
        bonds: Option<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let mut atoms = atoms_of(numbers, positions, cell, pbc)?;
        let record = match bonds {
            Some(record) => Some(record),
            None => self.kept_bonds(&atoms),
        };
        if let Some(record) = record {
            atoms
                .info
                .insert(minima_bonds::record::BONDS_KEY.into(), Value::Str(record));
        }
        let committee = &self.committee;
        let labels = py.detach(|| committee.calculate_checked(&atoms)).map_err(calc_error)?;
        let out = results(py, &labels)?;
        if let Some(deviation) = &labels.deviation {
            out.set_item("energy_std", deviation.energy)?;
            out.set_item("forces_std", deviation.forces.clone())?;
        }
        Ok(out)
    }
}

impl Model {
    /// The bonds kept for these atomic numbers, perceived now when there are none.
    fn kept_bonds(&self, atoms: &Atoms) -> Option<String> {
        let mut kept = self.bonds.lock().unwrap_or_else(|p| p.into_inner());
        if kept.as_ref().is_none_or(|(numbers, _)| numbers != atoms.numbers()) {
            let fixed = minima_bonds::record::with_fixed_bonds(atoms);
            let record = match fixed.info.get(minima_bonds::record::BONDS_KEY) {
                Some(Value::Str(record)) => Some(record.clone()),
                _ => None,
            };
            *kept = Some((atoms.numbers().to_vec(), record));
        }
        kept.as_ref().and_then(|(_, record)| record.clone())
    }
}

/// Effective Medium Theory, equal to ASE's `EMT` (H, C, N, O, Al, Ni, Cu, Pd, Ag, Pt, Au).
#[pyclass(module = "minima._minima")]
struct Emt(minima_emt::Emt);

#[pymethods]
impl Emt {
    #[new]
    fn new() -> Emt {
        Emt(minima_emt::Emt::new())
    }

    fn calculate<'py>(
        &self,
        py: Python<'py>,
        numbers: Vec<u8>,
        positions: Vec<Vec3>,
        cell: Option<[Vec3; 3]>,
        pbc: [bool; 3],
    ) -> PyResult<Bound<'py, PyDict>> {
        let atoms = atoms_of(numbers, positions, cell, pbc)?;
        let emt = &self.0;
        let labels = py.detach(|| emt.calculate_checked(&atoms)).map_err(calc_error)?;
        results(py, &labels)
    }
}

#[pymodule]
fn _minima(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_class::<Emt>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
