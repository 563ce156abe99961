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
    if atoms.len() < 2 {
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
    keep_hydrogens_monovalent(numbers, &mut contacts);
    trim_overcoordinated(numbers, &radii, &mut contacts);
    Ok(contacts)
}

fn partners(contacts: &[Contact], atom: usize) -> Vec<usize> {
    (0..contacts.len())
        .filter(|&c| contacts[c].i == atom || contacts[c].j == atom)
        .collect()
}

fn other(c: &Contact, atom: usize) -> usize {
    if c.i == atom {
        c.j
    } else {
        c.i
    }
}

/// RDKit's clean-up pass, hydrogens in index order.
fn keep_hydrogens_monovalent(numbers: &[u8], contacts: &mut Vec<Contact>) {
    for h in (0..numbers.len()).filter(|&a| numbers[a] == 1) {
        let bonds = partners(contacts, h);
        if bonds.len() <= 1 {
            continue;
        }
        let to_h = bonds.iter().rev().find(|&&c| numbers[other(&contacts[c], h)] == 1);
        let to_heavy = bonds.iter().any(|&c| numbers[other(&contacts[c], h)] != 1);
        if let (Some(&drop), true) = (to_h, to_heavy) {
            contacts.remove(drop);
        }
        let bonds = partners(contacts, h);
        if bonds.len() > 1 {
            let nearest = *bonds
                .iter()
                .min_by(|&&a, &&b| contacts[a].distance.total_cmp(&contacts[b].distance))
                .expect("non-empty");
            let mut index = 0;
            contacts.retain(|c| {
                let keep = !(c.i == h || c.j == h) || index == nearest;
                index += 1;
                keep
            });
        }
    }
}

/// Removes the most stretched bonds of atoms with more partners than any valence allows.
fn trim_overcoordinated(numbers: &[u8], radii: &[f64], contacts: &mut Vec<Contact>) {
    let stretch = |c: &Contact| c.distance / (radii[c.i] + radii[c.j]);
    for (atom, &z) in numbers.iter().enumerate() {
        let Some(limit) = max_valence(z) else {
            continue;
        };
        loop {
            let bonds = partners(contacts, atom);
            if bonds.len() <= limit as usize {
                break;
            }
            let worst = *bonds
                .iter()
                .max_by(|&&a, &&b| stretch(&contacts[a]).total_cmp(&stretch(&contacts[b])))
                .expect("non-empty");
            contacts.remove(worst);
        }
    }
}
