//! The graph a model sees: atoms, directed edges with lattice offsets, and each edge's bond
//! type from bond perception at the reference (equilibrium) geometry.

use std::collections::HashMap;

use minima_atoms::{Atoms, Vec3};
use minima_bonds::BondOrder;
use serde::{Deserialize, Serialize};

/// How edges are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GraphSpec {
    /// Pairs closer than this (Å) are edges. `None`: every pair of an open structure (the
    /// MPNN's complete molecular graph); periodic structures need a cutoff.
    pub cutoff: Option<f64>,
}

/// Bond type of an edge, as the one-hot edge feature encodes it. `None` marks pairs that are
/// edges (within the cutoff) but not bonded at the reference geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BondClass {
    None = 0,
    Single = 1,
    Double = 2,
    Triple = 3,
    Aromatic = 4,
}

impl BondClass {
    pub const COUNT: usize = 5;
    pub const NAMES: [&'static str; Self::COUNT] = ["none", "single", "double", "triple", "aromatic"];

    pub fn from_name(name: &str) -> Option<BondClass> {
        Self::NAMES.iter().position(|&n| n == name).map(|i| Self::ALL[i])
    }

    const ALL: [BondClass; Self::COUNT] = [
        BondClass::None,
        BondClass::Single,
        BondClass::Double,
        BondClass::Triple,
        BondClass::Aromatic,
    ];
}

impl From<BondOrder> for BondClass {
    fn from(order: BondOrder) -> BondClass {
        match order {
            BondOrder::Single => BondClass::Single,
            BondOrder::Double => BondClass::Double,
            BondOrder::Triple => BondClass::Triple,
            BondOrder::Aromatic => BondClass::Aromatic,
        }
    }
}

/// A structure as a directed graph. Edge `e` carries the message from atom `neighbor[e]` to
/// atom `center[e]`; the edge vector is `positions[neighbor] + offset − positions[center]`, where
/// `offset` is the lattice translation of the neighbour's image (zero in open structures).
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub numbers: Vec<u8>,
    pub positions: Vec<Vec3>,
    pub center: Vec<u32>,
    pub neighbor: Vec<u32>,
    pub offset: Vec<Vec3>,
    pub bond: Vec<BondClass>,
}

impl Graph {
    /// Builds the graph of `atoms`, with the bond types it records (`bonds` info) or else
    /// perceived at its reference geometry (a frame recording `scale` is unscaled first, so
    /// stretched bonds keep their type).
    pub fn build(atoms: &Atoms, spec: &GraphSpec) -> Result<Graph, String> {
        let (center, neighbor, shifts) = match spec.cutoff {
            Some(cutoff) => {
                let list = minima_neighbors::neighbor_list(atoms, cutoff).map_err(|e| e.to_string())?;
                (list.first, list.second, list.shifts)
            }
            None if atoms.is_periodic() => {
                return Err("a periodic structure needs a finite cutoff (set the model's cutoff)".into())
            }
            None => all_pairs(atoms.len()),
        };
        let bonds = minima_bonds::bonds_of(atoms).map_err(|e| e.to_string())?;
        let mut bonded: HashMap<(u32, u32, [i32; 3]), BondClass> = HashMap::new();
        for bond in &bonds {
            let class = BondClass::from(bond.order);
            let back = bond.shift.map(|s| -s);
            bonded.insert((bond.i as u32, bond.j as u32, bond.shift), class);
            bonded.insert((bond.j as u32, bond.i as u32, back), class);
        }
        let bond = center
            .iter()
            .zip(&neighbor)
            .zip(&shifts)
            .map(|((&i, &j), &s)| bonded.get(&(i, j, s)).copied().unwrap_or(BondClass::None))
            .collect();
        let offset = shifts
            .iter()
            .map(|&s| atoms.cell().map_or([0.0; 3], |cell| cell.shift(s)))
            .collect();
        Ok(Graph {
            numbers: atoms.numbers().to_vec(),
            positions: atoms.positions().to_vec(),
            center,
            neighbor,
            offset,
            bond,
        })
    }

    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    pub fn edge_count(&self) -> usize {
        self.center.len()
    }

    /// The same graph with moved atoms (edges and bond types unchanged): what finite
    /// differences and relaxation steps need.
    pub fn with_positions(&self, positions: Vec<Vec3>) -> Graph {
        assert_eq!(positions.len(), self.len(), "one position per atom");
        Graph {
            positions,
            ..self.clone()
        }
    }
}

fn all_pairs(n: usize) -> (Vec<u32>, Vec<u32>, Vec<[i32; 3]>) {
    let pairs = (0..n as u32).flat_map(|i| (0..n as u32).filter(move |&j| j != i).map(move |j| (i, j)));
    let (center, neighbor): (Vec<u32>, Vec<u32>) = pairs.unzip();
    let shifts = vec![[0; 3]; center.len()];
    (center, neighbor, shifts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ethylene() -> Atoms {
        Atoms::new(
            vec![6, 6, 1, 1, 1, 1],
            vec![
                [0.0, 0.0, 0.667],
                [0.0, 0.0, -0.667],
                [0.0, 0.923, 1.238],
                [0.0, -0.923, 1.238],
                [0.0, 0.923, -1.238],
                [0.0, -0.923, -1.238],
            ],
        )
        .unwrap()
    }

    #[test]
    fn complete_graph_marks_the_double_bond_in_both_directions() {
        let graph = Graph::build(&ethylene(), &GraphSpec { cutoff: None }).unwrap();
        assert_eq!(graph.edge_count(), 30);
        let class = |i: u32, j: u32| {
            let e = (0..graph.edge_count())
                .find(|&e| graph.center[e] == i && graph.neighbor[e] == j)
                .unwrap();
            graph.bond[e]
        };
        assert_eq!(class(0, 1), BondClass::Double);
        assert_eq!(class(1, 0), BondClass::Double);
        assert_eq!(class(0, 2), BondClass::Single);
        assert_eq!(class(2, 3), BondClass::None);
    }

    #[test]
    fn stretched_frame_keeps_its_reference_bonds() {
        let mut stretched = ethylene();
        let c = stretched.centroid();
        let positions = stretched
            .positions()
            .iter()
            .map(|r| std::array::from_fn(|k| c[k] + 1.5 * (r[k] - c[k])))
            .collect();
        stretched.set_positions(positions).unwrap();
        stretched.info.insert("scale".into(), minima_atoms::Value::Float(1.5));
        let graph = Graph::build(&stretched, &GraphSpec { cutoff: Some(5.0) }).unwrap();
        let double = graph.bond.iter().filter(|&&b| b == BondClass::Double).count();
        assert_eq!(double, 2);
    }

    #[test]
    fn periodic_offsets_are_cartesian_lattice_translations() {
        let cu = minima_atoms::build::fcc_supercell(29, 3.6, 1);
        let graph = Graph::build(&cu, &GraphSpec { cutoff: Some(2.7) }).unwrap();
        // Each fcc atom has 12 nearest neighbours at a/√2 ≈ 2.55 Å.
        assert_eq!(graph.edge_count(), 4 * 12);
        for e in 0..graph.edge_count() {
            let (i, j) = (graph.center[e] as usize, graph.neighbor[e] as usize);
            let d: Vec3 = std::array::from_fn(|k| graph.positions[j][k] + graph.offset[e][k] - graph.positions[i][k]);
            assert!((minima_atoms::cell::norm(d) - 3.6 / 2f64.sqrt()).abs() < 1e-9);
        }
        assert!(Graph::build(&cu, &GraphSpec { cutoff: None }).is_err());
    }
}
