//! The element table: H–Kr plus the noble metals Pd, Ag, Pt, Au.
//!
//! Sources and conventions (each a choice a later engineer may want to revisit):
//! - `mass`: IUPAC 2016 standard atomic weights, as `ase.data.atomic_masses` (amu).
//! - `covalent_radius`: Cordero et al., Dalton Trans. 2008, as `ase.data.covalent_radii` (Å).
//! - `electronegativity`: Pauling scale; `None` for He, Ne, Ar, which have no Pauling value.
//! - `valence_electrons`: main group, the group number modulo 10 (C 4, O 6, Ne 8);
//!   d block, the IUPAC group number (Fe 8, Cu 11, Pt 10, Au 11).
//! - `valence_orbitals`: the orbitals of a minimal valence basis, the VIMPNN auxiliary target
//!   "number of orbitals associated with each atom type": 1 for H and He (1s), 4 for other
//!   main-group elements (ns + np), 6 for d-block elements (ns + 5 (n−1)d). Ga–Kr count 4: their
//!   filled 3d shell is core-like.

use std::fmt;

/// Static data of one chemical element.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Element {
    pub number: u8,
    pub symbol: &'static str,
    pub mass: f64,
    pub covalent_radius: f64,
    pub electronegativity: Option<f64>,
    pub valence_electrons: u8,
    pub valence_orbitals: u8,
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol)
    }
}

const fn el(
    number: u8,
    symbol: &'static str,
    mass: f64,
    covalent_radius: f64,
    electronegativity: f64,
    valence_electrons: u8,
    valence_orbitals: u8,
) -> Element {
    Element {
        number,
        symbol,
        mass,
        covalent_radius,
        // A negative sentinel in the table below marks "no Pauling value".
        electronegativity: if electronegativity < 0.0 {
            None
        } else {
            Some(electronegativity)
        },
        valence_electrons,
        valence_orbitals,
    }
}

/// Every element minima knows, ordered by atomic number.
pub static ELEMENTS: [Element; 40] = [
    el(1, "H", 1.008, 0.31, 2.20, 1, 1),
    el(2, "He", 4.002602, 0.28, -1.0, 2, 1),
    el(3, "Li", 6.94, 1.28, 0.98, 1, 4),
    el(4, "Be", 9.0121831, 0.96, 1.57, 2, 4),
    el(5, "B", 10.81, 0.84, 2.04, 3, 4),
    el(6, "C", 12.011, 0.76, 2.55, 4, 4),
    el(7, "N", 14.007, 0.71, 3.04, 5, 4),
    el(8, "O", 15.999, 0.66, 3.44, 6, 4),
    el(9, "F", 18.998403163, 0.57, 3.98, 7, 4),
    el(10, "Ne", 20.1797, 0.58, -1.0, 8, 4),
    el(11, "Na", 22.98976928, 1.66, 0.93, 1, 4),
    el(12, "Mg", 24.305, 1.41, 1.31, 2, 4),
    el(13, "Al", 26.9815385, 1.21, 1.61, 3, 4),
    el(14, "Si", 28.085, 1.11, 1.90, 4, 4),
    el(15, "P", 30.973761998, 1.07, 2.19, 5, 4),
    el(16, "S", 32.06, 1.05, 2.58, 6, 4),
    el(17, "Cl", 35.45, 1.02, 3.16, 7, 4),
    el(18, "Ar", 39.948, 1.06, -1.0, 8, 4),
    el(19, "K", 39.0983, 2.03, 0.82, 1, 4),
    el(20, "Ca", 40.078, 1.76, 1.00, 2, 4),
    el(21, "Sc", 44.955908, 1.70, 1.36, 3, 6),
    el(22, "Ti", 47.867, 1.60, 1.54, 4, 6),
    el(23, "V", 50.9415, 1.53, 1.63, 5, 6),
    el(24, "Cr", 51.9961, 1.39, 1.66, 6, 6),
    el(25, "Mn", 54.938044, 1.39, 1.55, 7, 6),
    el(26, "Fe", 55.845, 1.32, 1.83, 8, 6),
    el(27, "Co", 58.933194, 1.26, 1.88, 9, 6),
    el(28, "Ni", 58.6934, 1.24, 1.91, 10, 6),
    el(29, "Cu", 63.546, 1.32, 1.90, 11, 6),
    el(30, "Zn", 65.38, 1.22, 1.65, 12, 6),
    el(31, "Ga", 69.723, 1.22, 1.81, 3, 4),
    el(32, "Ge", 72.630, 1.20, 2.01, 4, 4),
    el(33, "As", 74.921595, 1.19, 2.18, 5, 4),
    el(34, "Se", 78.971, 1.20, 2.55, 6, 4),
    el(35, "Br", 79.904, 1.20, 2.96, 7, 4),
    el(36, "Kr", 83.798, 1.16, 3.00, 8, 4),
    el(46, "Pd", 106.42, 1.39, 2.20, 10, 6),
    el(47, "Ag", 107.8682, 1.45, 1.93, 11, 6),
    el(78, "Pt", 195.084, 1.36, 2.28, 10, 6),
    el(79, "Au", 196.966569, 1.36, 2.54, 11, 6),
];

/// The element with atomic number `number`, if minima knows it.
pub fn by_number(number: u8) -> Option<&'static Element> {
    match number {
        1..=36 => Some(&ELEMENTS[number as usize - 1]),
        46 => Some(&ELEMENTS[36]),
        47 => Some(&ELEMENTS[37]),
        78 => Some(&ELEMENTS[38]),
        79 => Some(&ELEMENTS[39]),
        _ => None,
    }
}

/// The element with chemical symbol `symbol` (case-sensitive, as written in xyz files).
pub fn by_symbol(symbol: &str) -> Option<&'static Element> {
    ELEMENTS.iter().find(|e| e.symbol == symbol)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_number_and_symbol_agree_for_every_element() {
        for e in &ELEMENTS {
            assert_eq!(by_number(e.number), Some(e));
            assert_eq!(by_symbol(e.symbol), Some(e));
        }
        assert!(by_number(0).is_none());
        assert!(by_number(37).is_none());
        assert!(by_symbol("Xx").is_none());
        assert!(by_symbol("cu").is_none());
    }

    #[test]
    fn table_is_ordered_and_plausible() {
        for pair in ELEMENTS.windows(2) {
            assert!(pair[0].number < pair[1].number);
        }
        for e in &ELEMENTS {
            assert!(e.mass > 0.9 && e.mass < 200.0, "{e}");
            assert!(e.covalent_radius > 0.2 && e.covalent_radius < 2.1, "{e}");
            assert!(e.valence_electrons >= 1 && e.valence_electrons <= 12, "{e}");
        }
        assert_eq!(by_symbol("C").unwrap().valence_electrons, 4);
        assert_eq!(by_symbol("Cu").unwrap().valence_orbitals, 6);
        assert_eq!(by_symbol("He").unwrap().electronegativity, None);
    }
}
