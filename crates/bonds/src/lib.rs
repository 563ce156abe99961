//! Bond perception from 3D geometry, as VIMPNN's bond types need it (the paper used RDKit):
//! connectivity from covalent radii, bond orders by valence satisfaction, then aromaticity,
//! each following RDKit's `DetermineBonds` (charge 0) so that the types agree with it.
//!
//! Bond orders belong to the equilibrium geometry. An isotropically scaled copy (0.9× to 1.5×)
//! has the same bonds, but at 1.5× no distance rule finds them: [`perceive_at_reference`]
//! perceives on the reference geometry, and [`reference_geometry`] recovers it from a frame
//! that records its `scale`.
//!
//! Periodic structures get connectivity through minimum images and bond orders; aromaticity is
//! perceived for open structures only (rings through periodic images are not molecular rings).
//! Elements without a valence table (metals, noble gases) keep single bonds.

mod aromaticity;
mod connectivity;
mod orders;
pub mod record;
mod rings;
mod valence;

use minima_atoms::Atoms;

pub use connectivity::{connectivity, Contact};
pub use record::bonds_of;

/// Bond types, as VIMPNN's one-hot encodes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BondOrder {
    Single,
    Double,
    Triple,
    Aromatic,
}

impl BondOrder {
    /// RDKit's `GetBondTypeAsDouble`: 1, 2, 3, 1.5.
    pub fn as_f64(self) -> f64 {
        match self {
            BondOrder::Single => 1.0,
            BondOrder::Double => 2.0,
            BondOrder::Triple => 3.0,
            BondOrder::Aromatic => 1.5,
        }
    }

    /// Index of the type in a one-hot encoding (0 single … 3 aromatic).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One bond between atom `i` and the image `shift` of atom `j` (`i < j`, or `i == j` with a
/// positive shift in crystals).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bond {
    pub i: usize,
    pub j: usize,
    pub shift: [i32; 3],
    pub order: BondOrder,
}

/// The perceived bonds and formal charges of a structure.
#[derive(Debug, Clone, PartialEq)]
pub struct Perception {
    pub bonds: Vec<Bond>,
    pub charges: Vec<i32>,
    /// False when no valence assignment saturates every atom (a radical, or a geometry far
    /// from any molecule); the orders are then RDKit-like best effort.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BondError {
    #[error(transparent)]
    Neighbors(#[from] minima_neighbors::NeighborError),
    #[error("reference geometry has {reference} atoms or other elements, the structure {structure}")]
    ReferenceMismatch { reference: usize, structure: usize },
    #[error("scale {0} is not a positive finite number")]
    BadScale(f64),
    #[error("recorded bonds: {0}")]
    Recorded(String),
}

/// The atom at the other end of `edge` from `atom`.
fn other_end(edge: (usize, usize), atom: usize) -> usize {
    if edge.0 == atom {
        edge.1
    } else {
        edge.0
    }
}

/// Largest ring searched by aromaticity (RDKit's fused-ring limit).
const MAX_RING_SIZE: usize = 24;

/// Perceives bonds of a neutral structure from its own geometry.
pub fn perceive(atoms: &Atoms) -> Result<Perception, BondError> {
    let contacts = connectivity(atoms)?;
    let edges: Vec<(usize, usize)> = contacts.iter().map(|c| (c.i, c.j)).collect();
    let assignment = orders::assign(atoms.numbers(), &edges, 0);
    let aromatic = if atoms.is_periodic() {
        vec![false; edges.len()]
    } else {
        let rings = rings::relevant_cycles(atoms.len(), &edges, MAX_RING_SIZE);
        let graph = aromaticity::Graph {
            numbers: atoms.numbers(),
            edges: &edges,
            orders: &assignment.orders,
            charges: &assignment.charges,
        };
        aromaticity::aromatic_edges(&graph, &rings)
    };
    let bonds = contacts
        .iter()
        .zip(&assignment.orders)
        .zip(&aromatic)
        .map(|((c, &order), &is_aromatic)| Bond {
            i: c.i,
            j: c.j,
            shift: c.shift,
            order: match (is_aromatic, order) {
                (true, _) => BondOrder::Aromatic,
                (false, 2) => BondOrder::Double,
                (false, 3) => BondOrder::Triple,
                _ => BondOrder::Single,
            },
        })
        .collect();
    Ok(Perception {
        bonds,
        charges: assignment.charges,
        complete: assignment.complete,
    })
}

/// Perceives bonds on `reference` (the equilibrium geometry) for `structure`, a distorted copy
/// with the same atoms in the same order.
pub fn perceive_at_reference(structure: &Atoms, reference: &Atoms) -> Result<Perception, BondError> {
    if structure.numbers() != reference.numbers() {
        return Err(BondError::ReferenceMismatch {
            reference: reference.len(),
            structure: structure.len(),
        });
    }
    perceive(reference)
}

/// The unscaled geometry of a frame that records `scale` (molecule about its centroid, crystal
/// by its cell); the frame itself when it records none.
pub fn reference_geometry(atoms: &Atoms) -> Result<Atoms, BondError> {
    let Some(scale) = atoms.scale() else {
        return Ok(atoms.clone());
    };
    if !(scale.is_finite() && scale > 0.0) {
        return Err(BondError::BadScale(scale));
    }
    atoms.scaled(1.0 / scale).map_err(|_| BondError::BadScale(scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn molecule(numbers: &[u8], positions: &[[f64; 3]]) -> Atoms {
        Atoms::new(numbers.to_vec(), positions.to_vec()).unwrap()
    }

    fn orders(p: &Perception) -> Vec<(usize, usize, f64)> {
        p.bonds.iter().map(|b| (b.i, b.j, b.order.as_f64())).collect()
    }

    /// A planar regular ring of `members` with one hydrogen (or none) per ring atom.
    fn ring(members: &[u8], hydrogens: &[bool], bond: f64) -> Atoms {
        let n = members.len();
        let radius = bond / (2.0 * (std::f64::consts::PI / n as f64).sin());
        let mut numbers = members.to_vec();
        let mut positions: Vec<[f64; 3]> = (0..n)
            .map(|k| {
                let t = 2.0 * std::f64::consts::PI * k as f64 / n as f64;
                [radius * t.cos(), radius * t.sin(), 0.0]
            })
            .collect();
        for k in (0..n).filter(|&k| hydrogens[k]) {
            let t = 2.0 * std::f64::consts::PI * k as f64 / n as f64;
            numbers.push(1);
            positions.push([(radius + 1.08) * t.cos(), (radius + 1.08) * t.sin(), 0.0]);
        }
        molecule(&numbers, &positions)
    }

    #[test]
    fn benzene_is_aromatic() {
        let p = perceive(&ring(&[6; 6], &[true; 6], 1.39)).unwrap();
        assert!(p.complete);
        let ring_bonds: Vec<_> = p.bonds.iter().filter(|b| b.i < 6 && b.j < 6).collect();
        assert_eq!(ring_bonds.len(), 6);
        assert!(ring_bonds.iter().all(|b| b.order == BondOrder::Aromatic));
        assert_eq!(p.bonds.len(), 12);
    }

    #[test]
    fn pyridine_and_pyrrole_are_aromatic_cyclohexane_is_not() {
        let pyridine = perceive(&ring(&[7, 6, 6, 6, 6, 6], &[false, true, true, true, true, true], 1.39)).unwrap();
        assert_eq!(
            pyridine.bonds.iter().filter(|b| b.order == BondOrder::Aromatic).count(),
            6
        );
        let pyrrole = perceive(&ring(&[7, 6, 6, 6, 6], &[true; 5], 1.40)).unwrap();
        assert_eq!(
            pyrrole.bonds.iter().filter(|b| b.order == BondOrder::Aromatic).count(),
            5
        );
        // Cyclohexane carbons need two hydrogens: with one each the ring is benzene-like, so
        // build it from a chair-free planar ring of sp3 distances instead: all single.
        let mut c6 = ring(&[6; 6], &[false; 6], 1.54);
        let mut numbers = c6.numbers().to_vec();
        let mut positions = c6.positions().to_vec();
        for k in 0..6 {
            let r = positions[k];
            let len = (r[0] * r[0] + r[1] * r[1]).sqrt();
            for z in [-0.9, 0.9] {
                numbers.push(1);
                positions.push([r[0] + 0.6 * r[0] / len, r[1] + 0.6 * r[1] / len, z]);
            }
        }
        c6 = molecule(&numbers, &positions);
        let p = perceive(&c6).unwrap();
        assert!(p.complete);
        assert!(p.bonds.iter().all(|b| b.order == BondOrder::Single));
    }

    #[test]
    fn small_molecules_get_their_multiple_bonds() {
        // H-C#N
        let hcn = perceive(&molecule(
            &[1, 6, 7],
            &[[-1.06, 0.0, 0.0], [0.0, 0.0, 0.0], [1.156, 0.0, 0.0]],
        ))
        .unwrap();
        assert_eq!(orders(&hcn), vec![(0, 1, 1.0), (1, 2, 3.0)]);
        // Formaldehyde H2C=O
        let h2co = perceive(&molecule(
            &[6, 8, 1, 1],
            &[
                [0.0, 0.0, 0.0],
                [1.21, 0.0, 0.0],
                [-0.55, 0.94, 0.0],
                [-0.55, -0.94, 0.0],
            ],
        ))
        .unwrap();
        assert_eq!(orders(&h2co), vec![(0, 1, 2.0), (0, 2, 1.0), (0, 3, 1.0)]);
    }

    #[test]
    fn scaled_copies_keep_the_reference_bonds() {
        let hcn = molecule(&[1, 6, 7], &[[-1.06, 0.0, 0.0], [0.0, 0.0, 0.0], [1.156, 0.0, 0.0]]);
        let c = hcn.centroid();
        let mut stretched = hcn.clone();
        stretched
            .set_positions(
                hcn.positions()
                    .iter()
                    .map(|r| std::array::from_fn(|k| c[k] + 1.5 * (r[k] - c[k])))
                    .collect(),
            )
            .unwrap();
        // At 1.5× the distance rule alone loses the bonds …
        assert!(perceive(&stretched).unwrap().bonds.len() < 2);
        // … the recorded scale recovers them.
        stretched.info.insert("scale".into(), minima_atoms::Value::Float(1.5));
        let reference = reference_geometry(&stretched).unwrap();
        let p = perceive_at_reference(&stretched, &reference).unwrap();
        assert_eq!(orders(&p), vec![(0, 1, 1.0), (1, 2, 3.0)]);
        stretched.info.insert("scale".into(), minima_atoms::Value::Float(-1.0));
        assert!(reference_geometry(&stretched).is_err());
    }

    #[test]
    fn hydrogens_keep_one_partner_and_cages_lose_stretched_bonds() {
        // An H between two carbons keeps the nearer one only.
        let p = perceive(&molecule(
            &[6, 1, 6],
            &[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.2, 0.0, 0.0]],
        ))
        .unwrap();
        assert_eq!(p.bonds.iter().filter(|b| b.i == 1 || b.j == 1).count(), 1);
        // A carbon with five close carbons loses the most stretched contact.
        let mut positions = vec![[0.0, 0.0, 0.0]];
        let dirs = [
            [1.0, 0.0, 0.0],
            [-1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, -1.0, 0.0],
            [0.0, 0.0, 1.0],
        ];
        for (k, d) in dirs.iter().enumerate() {
            let len = if k == 4 { 1.9 } else { 1.54 };
            positions.push([d[0] * len, d[1] * len, d[2] * len]);
        }
        let p = perceive(&molecule(&[6; 6], &positions)).unwrap();
        assert_eq!(p.bonds.iter().filter(|b| b.i == 0).count(), 4);
        assert!(!p.bonds.iter().any(|b| b.i == 0 && b.j == 5));
    }

    #[test]
    fn large_crystals_are_perceived_in_linear_time_without_deep_recursion() {
        let cu = minima_atoms::build::fcc_supercell(29, 3.61, 10);
        assert_eq!(perceive(&cu).unwrap().bonds.len(), 6 * 4000);
    }

    #[test]
    fn one_atom_crystal_bonds_to_its_own_images() {
        let h = 3.61 / 2.0;
        let cell = minima_atoms::Cell::new([[0.0, h, h], [h, 0.0, h], [h, h, 0.0]]).unwrap();
        let cu = molecule(&[29], &[[0.0; 3]]).with_cell(cell, [true; 3]);
        let p = perceive(&cu).unwrap();
        // Six bonds each way: the 12 nearest neighbours of fcc, as per atom of a supercell.
        assert_eq!(p.bonds.len(), 6);
        assert!(p
            .bonds
            .iter()
            .all(|b| b.i == 0 && b.j == 0 && b.order == BondOrder::Single));
        assert!(p
            .bonds
            .iter()
            .all(|b| b.shift.iter().find(|&&c| c != 0).is_some_and(|&c| c > 0)));
        // An isolated atom has none.
        assert!(perceive(&molecule(&[29], &[[0.0; 3]])).unwrap().bonds.is_empty());
    }

    #[test]
    fn fcc_metal_bonds_nearest_neighbours_as_single() {
        let cu = minima_atoms::build::fcc_supercell(29, 3.61, 2);
        let p = perceive(&cu).unwrap();
        assert_eq!(p.bonds.len(), 6 * cu.len());
        assert!(p.bonds.iter().all(|b| b.order == BondOrder::Single));
    }
}
