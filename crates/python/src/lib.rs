//! `minima._minima`: the Rust side of the Python package. [`Model`] evaluates one checkpoint
//! or a committee of them, [`Emt`] is minima's EMT; both take a structure as plain numbers
//! (atomic numbers, positions, cell, periodicity) and return a dict of results in eV and Å.
//! Graphs and neighbour lists are built here, in Rust; the Python side (`minima.Calculator`,
//! `minima.EMT`) adapts them to ASE's calculator protocol.

use std::path::PathBuf;
use std::sync::Mutex;

use minima_atoms::{Atoms, CalcError, Calculator, Cell, Labels, Value, Vec3};
use minima_model::ModelCalculator;
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

/// One checkpoint, or several as a committee: their mean, and the spread a committee's
/// disagreement is measured by (`energy_std`, eV; `forces_std`, per atom √(mean_k |F_k − F̄|²),
/// eV/Å). Bond types, for the models that read them, are perceived on the first structure and
/// kept while the atomic numbers stay the same (a relaxation or dynamics must not change a
/// model's bond features); `reset_bonds` forgets them, as `minima.Calculator` does for every
/// new `Atoms` object. A structure that records its bonds
/// (`bonds` in the info of a minima data set) passes them in `bonds`.
#[pyclass(module = "minima._minima")]
struct Model {
    members: Vec<ModelCalculator>,
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
        let members = checkpoints
            .iter()
            .map(|path| ModelCalculator::load(path, device).map_err(|e| PyValueError::new_err(e.to_string())))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Model {
            members,
            bonds: Mutex::new(None),
        })
    }

    /// The members' names (each checkpoint's file or run folder).
    #[getter]
    fn names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.name().to_string()).collect()
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
        let members = &self.members;
        let all = py
            .detach(|| {
                members
                    .iter()
                    .map(|m| m.calculate_checked(&atoms))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(calc_error)?;
        let mean = mean_labels(&all);
        let out = results(py, &mean)?;
        if all.len() > 1 {
            let k = all.len() as f64;
            let energy_std = (all.iter().map(|l| (l.energy - mean.energy).powi(2)).sum::<f64>() / k).sqrt();
            let forces_std: Vec<f64> = (0..atoms.len())
                .map(|a| {
                    let spread: f64 = all
                        .iter()
                        .map(|l| {
                            (0..3)
                                .map(|c| (l.forces[a][c] - mean.forces[a][c]).powi(2))
                                .sum::<f64>()
                        })
                        .sum();
                    (spread / k).sqrt()
                })
                .collect();
            out.set_item("energy_std", energy_std)?;
            out.set_item("forces_std", forces_std)?;
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

/// The members' labels averaged (energy, forces, per-atom energies, stress).
fn mean_labels(all: &[Labels]) -> Labels {
    let k = all.len() as f64;
    let first = &all[0];
    let average = |f: &dyn Fn(&Labels) -> f64| all.iter().map(f).sum::<f64>() / k;
    Labels {
        energy: average(&|l| l.energy),
        forces: (0..first.forces.len())
            .map(|a| std::array::from_fn(|c| average(&|l| l.forces[a][c])))
            .collect(),
        energies: first.energies.as_ref().map(|e| {
            (0..e.len())
                .map(|a| average(&|l| l.energies.as_ref().map_or(0.0, |e| e[a])))
                .collect()
        }),
        stress: first
            .stress
            .map(|_| std::array::from_fn(|c| average(&|l| l.stress.map_or(0.0, |s| s[c])))),
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
