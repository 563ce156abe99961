//! Valences and electron counts of the elements that take part in covalent bond orders.
//!
//! The valence options and their order are RDKit's `DetermineBondOrders` table (first option
//! neutral); elements outside it (metals, noble gases) keep single bonds and no charge.

/// Allowed total bond orders, the neutral one first.
pub fn valence_options(z: u8) -> Option<&'static [u8]> {
    Some(match z {
        1 => &[1],
        5 => &[3, 4],
        6 => &[4],
        7 => &[3, 4],
        8 => &[2, 1, 3],
        9 => &[1],
        14 => &[4],
        15 => &[5, 3],
        16 => &[6, 3, 2],
        17 => &[1],
        32 => &[4],
        35 => &[1],
        _ => return None,
    })
}

/// The largest number of bonded partners an element may have, when it has a valence table.
pub fn max_valence(z: u8) -> Option<u8> {
    valence_options(z).map(|v| *v.iter().max().expect("non-empty"))
}

/// Electrons in the outer shell (meaningful for the main-group elements this module serves).
pub fn outer_electrons(z: u8) -> i32 {
    minima_atoms::element::by_number(z).map_or(0, |e| e.valence_electrons as i32)
}

/// The default (lowest common) valence, as RDKit's periodic table gives it.
pub fn default_valence(z: u8) -> Option<i32> {
    Some(match z {
        1 | 9 | 17 | 35 => 1,
        5 => 3,
        6 | 14 | 32 => 4,
        7 | 15 | 33 => 3,
        8 | 16 | 34 => 2,
        _ => return None,
    })
}

/// The formal charge an atom of element `z` carries at total bond order `valence`.
pub fn formal_charge(z: u8, valence: u8) -> i32 {
    let v = valence as i32;
    match (z, valence) {
        (1, _) => 1 - v,
        (5, _) => 3 - v,
        (15, 5) | (16, 6) => 0,
        _ => outer_electrons(z) - 8 + v,
    }
}

/// RDKit's order of electronegativity for aromaticity: more outer electrons, then lighter.
pub fn more_electronegative(a: u8, b: u8) -> bool {
    let (ea, eb) = (outer_electrons(a), outer_electrons(b));
    ea > eb || (ea == eb && a < b)
}
