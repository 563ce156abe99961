//! [`Atoms`]: one structure (molecule, cluster or crystal) with its labels, the unit every
//! reader yields and every model consumes.

use indexmap::IndexMap;

use crate::cell::{Cell, Vec3};
use crate::element::{self, Element};
use crate::AtomsError;

/// A per-structure value, as extxyz's comment line can hold it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bools(Vec<bool>),
    Ints(Vec<i64>),
    Floats(Vec<f64>),
}

impl Value {
    /// The value as a float, when it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(x) => Some(*x),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// The values of one per-atom column, stored flat: atom `a`'s entry is
/// `values[a * width .. (a + 1) * width]`.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrayData {
    Float(Vec<f64>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
    Str(Vec<String>),
}

impl ArrayData {
    fn len(&self) -> usize {
        match self {
            ArrayData::Float(v) => v.len(),
            ArrayData::Int(v) => v.len(),
            ArrayData::Bool(v) => v.len(),
            ArrayData::Str(v) => v.len(),
        }
    }
}

/// A per-atom column with `width` entries per atom (forces have width 3, charges 1).
#[derive(Debug, Clone, PartialEq)]
pub struct PerAtom {
    pub width: usize,
    pub data: ArrayData,
}

/// Names under which labels are stored, as ASE names them.
pub mod keys {
    pub const ENERGY: &str = "energy";
    pub const FORCES: &str = "forces";
    pub const CHARGES: &str = "charges";
    pub const SCALE: &str = "scale";
    /// A committee's disagreement (see `Deviation`): per atom, and per structure.
    pub const FORCES_STD: &str = "forces_std";
    pub const ENERGY_STD: &str = "energy_std";
    pub const MAX_FORCE_STD: &str = "max_force_std";
}

/// One structure: elements, positions (Å), optional cell with per-axis periodicity,
/// per-structure `info` and per-atom `arrays`, in insertion order so files round-trip.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Atoms {
    numbers: Vec<u8>,
    positions: Vec<Vec3>,
    cell: Option<Cell>,
    pbc: [bool; 3],
    pub info: IndexMap<String, Value>,
    arrays: IndexMap<String, PerAtom>,
}

impl Atoms {
    /// A structure from atomic numbers and positions. Every number must be a known element
    /// and every coordinate finite.
    pub fn new(numbers: Vec<u8>, positions: Vec<Vec3>) -> Result<Atoms, AtomsError> {
        if numbers.len() != positions.len() {
            return Err(AtomsError::LengthMismatch {
                name: "positions".into(),
                expected: numbers.len(),
                found: positions.len(),
            });
        }
        if let Some(&z) = numbers.iter().find(|&&z| element::by_number(z).is_none()) {
            return Err(AtomsError::UnknownElement(z.to_string()));
        }
        check_finite_positions(&positions)?;
        Ok(Atoms {
            numbers,
            positions,
            ..Atoms::default()
        })
    }

    /// A periodic (or partly periodic) structure in `cell`.
    pub fn with_cell(mut self, cell: Cell, pbc: [bool; 3]) -> Atoms {
        self.cell = Some(cell);
        self.pbc = pbc;
        self
    }

    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    pub fn numbers(&self) -> &[u8] {
        &self.numbers
    }

    pub fn elements(&self) -> impl Iterator<Item = &'static Element> + '_ {
        // `new` admits only known elements, so the lookup cannot fail.
        self.numbers
            .iter()
            .map(|&z| element::by_number(z).expect("checked in Atoms::new"))
    }

    pub fn positions(&self) -> &[Vec3] {
        &self.positions
    }

    /// Replaces all positions (same atom count, finite coordinates).
    pub fn set_positions(&mut self, positions: Vec<Vec3>) -> Result<(), AtomsError> {
        if positions.len() != self.len() {
            return Err(AtomsError::LengthMismatch {
                name: "positions".into(),
                expected: self.len(),
                found: positions.len(),
            });
        }
        check_finite_positions(&positions)?;
        self.positions = positions;
        Ok(())
    }

    pub fn cell(&self) -> Option<&Cell> {
        self.cell.as_ref()
    }

    pub fn pbc(&self) -> [bool; 3] {
        self.pbc
    }

    pub fn is_periodic(&self) -> bool {
        self.cell.is_some() && self.pbc.iter().any(|&p| p)
    }

    /// The cell, when the structure is periodic along all three axes (a crystal, which has a
    /// stress and a volume).
    pub fn bulk_cell(&self) -> Option<&Cell> {
        self.cell.as_ref().filter(|_| self.pbc.iter().all(|&p| p))
    }

    /// Moves atoms back into the cell along periodic axes.
    pub fn wrap(&mut self) {
        if let Some(cell) = self.cell {
            for r in &mut self.positions {
                *r = cell.wrap(*r, self.pbc).0;
            }
        }
    }

    /// The displacement from atom `i` to atom `j`, minimum image where periodic.
    pub fn displacement(&self, i: usize, j: usize) -> Vec3 {
        let d = crate::cell::sub(self.positions[j], self.positions[i]);
        match &self.cell {
            Some(cell) if self.is_periodic() => cell.minimum_image(d, self.pbc),
            _ => d,
        }
    }

    pub fn distance(&self, i: usize, j: usize) -> f64 {
        crate::cell::norm(self.displacement(i, j))
    }

    /// A copy scaled isotropically by `factor`: a periodic structure with its cell (atoms keep
    /// their fractional coordinates), an open one about its centroid. `factor` must be positive
    /// and finite.
    pub fn scaled(&self, factor: f64) -> Result<Atoms, AtomsError> {
        if !(factor.is_finite() && factor > 0.0) {
            return Err(AtomsError::BadScale(factor));
        }
        let mut out = self.clone();
        let positions = match self.cell {
            Some(cell) if self.is_periodic() => {
                let resized = cell.scaled(factor)?;
                out.cell = Some(resized);
                self.positions
                    .iter()
                    .map(|&r| resized.cartesian(cell.fractional(r)))
                    .collect()
            }
            _ => {
                let c = self.centroid();
                self.positions
                    .iter()
                    .map(|r| std::array::from_fn(|k| c[k] + factor * (r[k] - c[k])))
                    .collect()
            }
        };
        out.set_positions(positions)?;
        Ok(out)
    }

    /// Mean of the positions (unweighted), the centre of isotropic molecular scans.
    pub fn centroid(&self) -> Vec3 {
        let n = self.len().max(1) as f64;
        let mut c = [0.0; 3];
        for r in &self.positions {
            for k in 0..3 {
                c[k] += r[k] / n;
            }
        }
        c
    }

    pub fn arrays(&self) -> &IndexMap<String, PerAtom> {
        &self.arrays
    }

    pub fn array(&self, name: &str) -> Option<&PerAtom> {
        self.arrays.get(name)
    }

    /// Stores a per-atom column; its length must be `width × len()`.
    pub fn set_array(&mut self, name: &str, width: usize, data: ArrayData) -> Result<(), AtomsError> {
        let expected = width * self.len();
        if data.len() != expected {
            return Err(AtomsError::LengthMismatch {
                name: name.into(),
                expected,
                found: data.len(),
            });
        }
        if let ArrayData::Float(values) = &data {
            if values.iter().any(|x| !x.is_finite()) {
                return Err(AtomsError::NonFinite(name.into()));
            }
        }
        self.arrays.insert(name.to_string(), PerAtom { width, data });
        Ok(())
    }

    pub fn remove_array(&mut self, name: &str) -> Option<PerAtom> {
        self.arrays.shift_remove(name)
    }

    /// A float column of the given width, if present with that shape.
    pub fn float_array(&self, name: &str, width: usize) -> Option<&[f64]> {
        match self.arrays.get(name) {
            Some(PerAtom {
                width: w,
                data: ArrayData::Float(values),
            }) if *w == width => Some(values),
            _ => None,
        }
    }

    /// Total potential energy (eV), ASE's `energy` key.
    pub fn energy(&self) -> Option<f64> {
        self.info.get(keys::ENERGY).and_then(Value::as_f64)
    }

    pub fn set_energy(&mut self, energy: f64) {
        self.info.insert(keys::ENERGY.into(), Value::Float(energy));
    }

    /// Forces (eV/Å), flat `[f0x, f0y, f0z, f1x, …]`.
    pub fn forces(&self) -> Option<&[f64]> {
        self.float_array(keys::FORCES, 3)
    }

    pub fn set_forces(&mut self, forces: Vec<f64>) -> Result<(), AtomsError> {
        self.set_array(keys::FORCES, 3, ArrayData::Float(forces))
    }

    /// The isotropic scale factor relative to the equilibrium geometry, when recorded.
    pub fn scale(&self) -> Option<f64> {
        self.info.get(keys::SCALE).and_then(Value::as_f64)
    }

    /// Chemical formula in Hill order (C, H, then alphabetical), e.g. `CH4`, `C2H6O`.
    pub fn formula(&self) -> String {
        let mut counts: IndexMap<&str, usize> = IndexMap::new();
        for e in self.elements() {
            *counts.entry(e.symbol).or_default() += 1;
        }
        let mut symbols: Vec<&str> = counts.keys().copied().collect();
        let has_carbon = counts.contains_key("C");
        symbols.sort_by_key(|&s| match s {
            "C" if has_carbon => (0, s),
            "H" if has_carbon => (1, s),
            _ => (2, s),
        });
        symbols
            .iter()
            .map(|s| match counts[s] {
                1 => s.to_string(),
                n => format!("{s}{n}"),
            })
            .collect()
    }

    /// The shortest interatomic distance and its pair, `None` for fewer than two atoms.
    /// Quadratic: meant for validation of small structures, not for large crystals.
    pub fn closest_pair(&self) -> Option<(usize, usize, f64)> {
        let mut best: Option<(usize, usize, f64)> = None;
        for i in 0..self.len() {
            for j in i + 1..self.len() {
                let d = self.distance(i, j);
                if best.is_none_or(|(_, _, b)| d < b) {
                    best = Some((i, j, d));
                }
            }
        }
        best
    }
}

fn check_finite_positions(positions: &[Vec3]) -> Result<(), AtomsError> {
    match positions.iter().position(|r| r.iter().any(|x| !x.is_finite())) {
        Some(atom) => Err(AtomsError::NonFinitePosition { atom }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn water() -> Atoms {
        Atoms::new(
            vec![8, 1, 1],
            vec![[0.0, 0.0, 0.119], [0.0, 0.763, -0.477], [0.0, -0.763, -0.477]],
        )
        .unwrap()
    }

    #[test]
    fn rejects_unknown_elements_and_non_finite_positions() {
        assert!(matches!(
            Atoms::new(vec![0], vec![[0.0; 3]]),
            Err(AtomsError::UnknownElement(_))
        ));
        assert!(matches!(
            Atoms::new(vec![1, 1], vec![[0.0; 3], [f64::NAN, 0.0, 0.0]]),
            Err(AtomsError::NonFinitePosition { atom: 1 })
        ));
        assert!(matches!(
            Atoms::new(vec![1], vec![]),
            Err(AtomsError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn labels_round_trip_through_typed_accessors() {
        let mut w = water();
        assert_eq!(w.energy(), None);
        w.set_energy(-14.2);
        assert_eq!(w.energy(), Some(-14.2));
        w.set_forces(vec![0.0; 9]).unwrap();
        assert_eq!(w.forces().unwrap().len(), 9);
        assert!(w.set_forces(vec![0.0; 6]).is_err());
        assert!(w.set_forces(vec![f64::INFINITY; 9]).is_err());
    }

    #[test]
    fn formula_is_hill_ordered() {
        assert_eq!(water().formula(), "H2O");
        let ethanol = Atoms::new(vec![6, 6, 8, 1, 1, 1, 1, 1, 1], vec![[0.0; 3]; 9]).unwrap();
        assert_eq!(ethanol.formula(), "C2H6O");
    }

    #[test]
    fn scaling_needs_a_positive_finite_factor() {
        let crystal = crate::build::fcc_supercell(29, 3.6, 1);
        for atoms in [water(), crystal] {
            assert!(atoms.scaled(1.1).is_ok());
            for factor in [-1.0, 0.0, f64::INFINITY] {
                assert!(matches!(atoms.scaled(factor), Err(AtomsError::BadScale(_))), "{factor}");
            }
        }
    }

    #[test]
    fn periodic_distance_uses_minimum_image() {
        let cell = Cell::orthorhombic(10.0, 10.0, 10.0).unwrap();
        let a = Atoms::new(vec![29, 29], vec![[0.5, 0.0, 0.0], [9.5, 0.0, 0.0]])
            .unwrap()
            .with_cell(cell, [true; 3]);
        assert!((a.distance(0, 1) - 1.0).abs() < 1e-12);
        let open = a.clone().with_cell(cell, [false; 3]);
        assert!((open.distance(0, 1) - 9.0).abs() < 1e-12);
        assert_eq!(a.closest_pair().map(|(i, j, _)| (i, j)), Some((0, 1)));
    }
}
