//! The graph a model sees: atoms, directed edges with lattice offsets, and each edge's bond
//! type from bond perception at the reference (equilibrium) geometry.

use std::collections::HashMap;

use minima_atoms::{Atoms, Cell, Vec3};
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
    /// The structure's cell and periodicity, so that [`Graph::moved`] can search edges again.
    pub cell: Option<Cell>,
    pub pbc: [bool; 3],
}

impl Graph {
    /// Builds the graph of `atoms`, with the bond types it records (`bonds` info) or else
    /// perceived at its reference geometry (a frame recording `scale` is unscaled first, so
    /// stretched bonds keep their type).
    pub fn build(atoms: &Atoms, spec: &GraphSpec) -> Result<Graph, String> {
        let (center, neighbor, shifts) = edges(atoms.positions(), atoms.cell(), atoms.pbc(), spec)?;
        let bonds = minima_bonds::bonds_of(atoms).map_err(|e| e.to_string())?;
        let bond = bond_classes(&bonds, &center, &neighbor, &shifts);
        Ok(Graph {
            numbers: atoms.numbers().to_vec(),
            positions: atoms.positions().to_vec(),
            offset: offsets(&shifts, atoms.cell()),
            center,
            neighbor,
            bond,
            cell: atoms.cell().copied(),
            pbc: atoms.pbc(),
        })
    }

    /// The graph of the same structure with its atoms at `positions`, its edges searched
    /// again (pairs that come within the cutoff become edges, pairs that leave it stop being
    /// ones), each keeping the bond type of the reference geometry (`None` for new pairs).
    /// For displacements large enough to change the neighbours, as the bound loss makes them.
    pub fn moved(&self, positions: Vec<Vec3>, spec: &GraphSpec) -> Result<Graph, String> {
        assert_eq!(positions.len(), self.len(), "one position per atom");
        let shift_of = |e: usize| -> [i32; 3] {
            match &self.cell {
                Some(cell) => cell.fractional(self.offset[e]).map(|f| f.round() as i32),
                None => [0; 3],
            }
        };
        let bonded: HashMap<(u32, u32, [i32; 3]), BondClass> = (0..self.edge_count())
            .filter(|&e| self.bond[e] != BondClass::None)
            .map(|e| ((self.center[e], self.neighbor[e], shift_of(e)), self.bond[e]))
            .collect();
        let (center, neighbor, shifts) = edges(&positions, self.cell.as_ref(), self.pbc, spec)?;
        let bond = (0..center.len())
            .map(|e| {
                let key = (center[e], neighbor[e], shifts[e]);
                bonded.get(&key).copied().unwrap_or(BondClass::None)
            })
            .collect();
        Ok(Graph {
            numbers: self.numbers.clone(),
            positions,
            offset: offsets(&shifts, self.cell.as_ref()),
            center,
            neighbor,
            bond,
            cell: self.cell,
            pbc: self.pbc,
        })
    }

    /// The cell, when the structure is periodic along all three axes (see
    /// [`Atoms::bulk_cell`]).
    pub fn bulk_cell(&self) -> Option<&Cell> {
        self.cell.as_ref().filter(|_| self.pbc.iter().all(|&p| p))
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

/// Directed edges (centre, neighbour, lattice shift of the neighbour's image).
type Edges = (Vec<u32>, Vec<u32>, Vec<[i32; 3]>);

fn edges(positions: &[Vec3], cell: Option<&Cell>, pbc: [bool; 3], spec: &GraphSpec) -> Result<Edges, String> {
    match spec.cutoff {
        Some(cutoff) => {
            let list = minima_neighbors::neighbor_list_of(positions, cell, pbc, cutoff).map_err(|e| e.to_string())?;
            Ok((list.first, list.second, list.shifts))
        }
        None if pbc.iter().any(|&p| p) => {
            Err("a periodic structure needs a finite cutoff (set the model's cutoff)".into())
        }
        None => {
            // The complete graph takes every pair without a search: coincident atoms would
            // reach the model as zero-length edges.
            minima_neighbors::check_separated(positions, cell, pbc).map_err(|e| e.to_string())?;
            let n = positions.len() as u64;
            let pairs = n * n.saturating_sub(1);
            let bytes = pairs * COMPLETE_GRAPH_BYTES_PER_EDGE;
            let budget = minima_neighbors::memory_budget().map_err(|e| e.to_string())?;
            if bytes > budget {
                let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
                return Err(format!(
                    "every pair of these {n} atoms is an edge: {pairs} edges need about {:.1} GiB, over the graph budget of {:.1} GiB ({}); use a model with a cutoff (model.cutoff)",
                    gib(bytes),
                    gib(budget),
                    minima_neighbors::MEMORY_BUDGET_VARIABLE
                ));
            }
            Ok(all_pairs(positions.len()))
        }
    }
}

/// The bond class of each edge (i, j, image of j): the order of the bond between them, or
/// [`BondClass::None`].
pub(crate) fn bond_classes(
    bonds: &[minima_bonds::Bond],
    center: &[u32],
    neighbor: &[u32],
    shifts: &[[i32; 3]],
) -> Vec<BondClass> {
    let mut bonded: HashMap<(u32, u32, [i32; 3]), BondClass> = HashMap::with_capacity(2 * bonds.len());
    for bond in bonds {
        let class = BondClass::from(bond.order);
        let back = bond.shift.map(|s| -s);
        bonded.insert((bond.i as u32, bond.j as u32, bond.shift), class);
        bonded.insert((bond.j as u32, bond.i as u32, back), class);
    }
    center
        .iter()
        .zip(neighbor)
        .zip(shifts)
        .map(|((&i, &j), &s)| bonded.get(&(i, j, s)).copied().unwrap_or(BondClass::None))
        .collect()
}

fn offsets(shifts: &[[i32; 3]], cell: Option<&Cell>) -> Vec<Vec3> {
    shifts
        .iter()
        .map(|&s| cell.map_or([0.0; 3], |cell| cell.shift(s)))
        .collect()
}

/// Bytes per edge while a complete graph is built: the pair and its shift, then the graph's
/// indices, offset and bond class.
const COMPLETE_GRAPH_BYTES_PER_EDGE: u64 = 4 + 4 + 12 + 4 + 4 + 24 + 1;

fn all_pairs(n: usize) -> (Vec<u32>, Vec<u32>, Vec<[i32; 3]>) {
    let pairs = (0..n as u32).flat_map(|i| (0..n as u32).filter(move |&j| j != i).map(move |j| (i, j)));
    let (center, neighbor): (Vec<u32>, Vec<u32>) = pairs.unzip();
    let shifts = vec![[0; 3]; center.len()];
    (center, neighbor, shifts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A complete graph too large for the budget is refused before its pairs are allocated,
    /// with the estimate and the option that lowers it.
    #[test]
    fn a_complete_graph_past_the_budget_is_refused_before_it_is_built() {
        let n = 12_000;
        let positions = (0..n).map(|i| {
            [
                (i % 30) as f64 * 2.0,
                (i / 30 % 30) as f64 * 2.0,
                (i / 900) as f64 * 2.0,
            ]
        });
        let atoms = Atoms::new(vec![6; n], positions.collect()).unwrap();
        let error = Graph::build(&atoms, &GraphSpec { cutoff: None }).unwrap_err();
        for word in [
            "12000 atoms",
            "143988000 edges",
            "GiB",
            "model.cutoff",
            "MINIMA_NEIGHBOR_MEMORY",
        ] {
            assert!(error.contains(word), "{word}: {error}");
        }
    }

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

    #[test]
    fn moved_graph_searches_edges_again_and_keeps_reference_bonds() {
        let spec = GraphSpec { cutoff: Some(1.5) };
        let graph = Graph::build(&ethylene(), &spec).unwrap();
        // C–C 1.33 Å and four C–H bonds are within 1.5 Å: 2 × 5 directed edges.
        assert_eq!(graph.edge_count(), 10);
        // Pull one hydrogen off its carbon and push it next to the other hydrogen on that side.
        let mut positions = graph.positions.clone();
        positions[2] = [0.0, -0.5, 2.2];
        let moved = graph.moved(positions, &spec).unwrap();
        let class = |i: u32, j: u32| {
            (0..moved.edge_count())
                .find(|&e| moved.center[e] == i && moved.neighbor[e] == j)
                .map(|e| moved.bond[e])
        };
        assert_eq!(class(0, 2), None, "the stretched C–H left the cutoff");
        assert_eq!(class(2, 3), Some(BondClass::None), "a new pair within the cutoff");
        assert_eq!(class(0, 1), Some(BondClass::Double), "the reference bond type stays");
        assert_eq!(class(4, 1), Some(BondClass::Single));

        // In a crystal, an atom moved across the cell boundary keeps its neighbours.
        let cu = minima_atoms::build::fcc_supercell(29, 3.6, 1);
        let cu_spec = GraphSpec { cutoff: Some(2.7) };
        let crystal = Graph::build(&cu, &cu_spec).unwrap();
        let mut shifted = crystal.positions.clone();
        shifted[0] = [-0.01, -0.01, -0.01];
        let moved = crystal.moved(shifted, &cu_spec).unwrap();
        assert_eq!(moved.edge_count(), crystal.edge_count());
    }
}
