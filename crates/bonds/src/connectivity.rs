//! Which atoms are bonded, from distances alone.
//!
//! The rule is RDKit's default (`DetermineConnectivity` → `ConnectTheDots`): atoms `i`, `j` are
//! bonded when `0.4 Å ≤ d ≤ r_i + r_j + 0.45 Å` (Cordero covalent radii), and a hydrogen left
//! with several partners first loses a partner that is hydrogen, if it also has a heavier one,
//! then keeps only its nearest partner.
//!
//! One addition where RDKit gives up: the 0.45 Å tolerance bonds the bridgeheads of strained
//! cages (bicyclo[1.1.1]pentane's are 1.87 Å apart), leaving carbon with five partners. An
//! atom with more partners than its largest valence loses its most stretched bonds (largest
//! `d / (r_i + r_j)`) until it fits, which restores the chemist's graph.

use minima_atoms::Atoms;
use minima_neighbors::{neighbor_list, NeighborError};

use crate::other_end;
use crate::valence::max_valence;

/// RDKit's tolerance added to the sum of covalent radii (Å).
pub const TOLERANCE: f64 = 0.45;
/// Closer than this, two atoms are considered overlapping rather than bonded (Å).
pub const MIN_DISTANCE: f64 = 0.4;

/// An undirected bond candidate: `i < j` for open structures; with a lattice image for
/// periodic ones (`r_j + shift · cell − r_i`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contact {
    pub i: usize,
    pub j: usize,
    pub shift: [i32; 3],
    pub distance: f64,
}

/// Bonded pairs of a structure, each once, sorted by `(i, j, shift)`.
pub fn connectivity(atoms: &Atoms) -> Result<Vec<Contact>, NeighborError> {
    let radii: Vec<f64> = atoms.elements().map(|e| e.covalent_radius).collect();
    let largest = radii.iter().cloned().fold(0.0, f64::max);
    // One atom of a crystal still bonds to its own periodic images.
    if atoms.is_empty() || (atoms.len() == 1 && !atoms.is_periodic()) {
        return Ok(Vec::new());
    }
    let list = neighbor_list(atoms, 2.0 * largest + TOLERANCE)?;
    let mut contacts = Vec::new();
    for e in 0..list.len() {
        let (i, j, shift, d) = (
            list.first[e] as usize,
            list.second[e] as usize,
            list.shifts[e],
            list.distances[e],
        );
        // Each undirected pair once: i < j, or for an atom and its own image the positive shift.
        if i > j || (i == j && shift <= [0, 0, 0]) {
            continue;
        }
        if d >= MIN_DISTANCE && d <= radii[i] + radii[j] + TOLERANCE {
            contacts.push(Contact {
                i,
                j,
                shift,
                distance: d,
            });
        }
    }
    contacts.sort_by_key(|c| (c.i, c.j, c.shift));
    let numbers = atoms.numbers();
    let mut incidence = Incidence::new(numbers.len(), &contacts);
    keep_hydrogens_monovalent(numbers, &contacts, &mut incidence);
    trim_overcoordinated(numbers, &radii, &contacts, &mut incidence);
    let removed = incidence.removed;
    Ok(contacts
        .into_iter()
        .zip(removed)
        .filter(|(_, r)| !r)
        .map(|(c, _)| c)
        .collect())
}

/// Contacts with the indices of each atom's contacts, so clean-ups stay linear in size.
struct Incidence {
    by_atom: Vec<Vec<usize>>,
    removed: Vec<bool>,
}

impl Incidence {
    fn new(n_atoms: usize, contacts: &[Contact]) -> Incidence {
        let mut by_atom = vec![Vec::new(); n_atoms];
        // A bond to an atom's own image is two of its bonds (to the images at ±shift), as
        // any other bond is one bond of each end.
        for (c, contact) in contacts.iter().enumerate() {
            by_atom[contact.i].push(c);
            by_atom[contact.j].push(c);
        }
        Incidence {
            by_atom,
            removed: vec![false; contacts.len()],
        }
    }

    /// The contacts of `atom` still present.
    fn of(&self, atom: usize) -> Vec<usize> {
        self.by_atom[atom]
            .iter()
            .copied()
            .filter(|&c| !self.removed[c])
            .collect()
    }
}

/// RDKit's clean-up pass, hydrogens in index order.
fn keep_hydrogens_monovalent(numbers: &[u8], contacts: &[Contact], incidence: &mut Incidence) {
    for h in (0..numbers.len()).filter(|&a| numbers[a] == 1) {
        let bonds = incidence.of(h);
        if bonds.len() <= 1 {
            continue;
        }
        let to_h = bonds
            .iter()
            .rev()
            .find(|&&c| numbers[other_end((contacts[c].i, contacts[c].j), h)] == 1);
        let to_heavy = bonds
            .iter()
            .any(|&c| numbers[other_end((contacts[c].i, contacts[c].j), h)] != 1);
        if let (Some(&drop), true) = (to_h, to_heavy) {
            incidence.removed[drop] = true;
        }
        let bonds = incidence.of(h);
        if let Some(&nearest) = bonds
            .iter()
            .min_by(|&&a, &&b| contacts[a].distance.total_cmp(&contacts[b].distance))
        {
            for c in bonds.into_iter().filter(|&c| c != nearest) {
                incidence.removed[c] = true;
            }
        }
    }
}

/// Removes the most stretched bonds of atoms with more partners than any valence allows.
fn trim_overcoordinated(numbers: &[u8], radii: &[f64], contacts: &[Contact], incidence: &mut Incidence) {
    let stretch = |c: usize| contacts[c].distance / (radii[contacts[c].i] + radii[contacts[c].j]);
    for (atom, &z) in numbers.iter().enumerate() {
        let Some(limit) = max_valence(z) else {
            continue;
        };
        let mut bonds = incidence.of(atom);
        // Most stretched first.
        bonds.sort_by(|&a, &b| stretch(b).total_cmp(&stretch(a)));
        let excess = bonds.len().saturating_sub(limit as usize);
        for &c in &bonds[..excess] {
            incidence.removed[c] = true;
        }
    }
}
