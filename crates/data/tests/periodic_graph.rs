//! The graph of a crystal does not depend on the cell it is written in: a one-atom primitive
//! fcc cell, whose atom is bonded only to its own periodic images, has the edges per atom
//! (count, lengths, bond classes) of its supercells; a left-handed cell those of the
//! right-handed one. Coincident atoms are refused in the complete graph too.

use minima_atoms::build::fcc_supercell;
use minima_atoms::cell::norm;
use minima_atoms::{Atoms, Cell, Vec3};
use minima_data::generate::{fcc_crystal, FccCell};
use minima_data::{BondClass, Graph, GraphSpec};

/// Each atom's edges as (length, bond class), sorted.
fn edges_by_atom(graph: &Graph) -> Vec<Vec<(f64, u8)>> {
    let mut by_atom = vec![Vec::new(); graph.len()];
    for e in 0..graph.edge_count() {
        let (i, j) = (graph.center[e] as usize, graph.neighbor[e] as usize);
        let d: Vec3 = std::array::from_fn(|k| graph.positions[j][k] + graph.offset[e][k] - graph.positions[i][k]);
        by_atom[i].push((norm(d), graph.bond[e] as u8));
    }
    for edges in &mut by_atom {
        edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    }
    by_atom
}

fn assert_same_edges(one: &[(f64, u8)], other: &[(f64, u8)]) {
    assert_eq!(one.len(), other.len());
    for (a, b) in one.iter().zip(other) {
        assert!((a.0 - b.0).abs() < 1e-9 && a.1 == b.1, "{a:?} vs {b:?}");
    }
}

/// `atoms` repeated `n × n × n` times along its own cell vectors.
fn repeated(atoms: &Atoms, n: i32) -> Atoms {
    let cell = atoms.cell().unwrap();
    let mut numbers = Vec::new();
    let mut positions = Vec::new();
    for a in 0..n {
        for b in 0..n {
            for c in 0..n {
                let t = cell.shift([a, b, c]);
                for (&z, r) in atoms.numbers().iter().zip(atoms.positions()) {
                    numbers.push(z);
                    positions.push(std::array::from_fn(|k| r[k] + t[k]));
                }
            }
        }
    }
    let big = Cell::new(cell.vectors().map(|v| v.map(|x| x * f64::from(n)))).unwrap();
    Atoms::new(numbers, positions).unwrap().with_cell(big, atoms.pbc())
}

#[test]
fn a_primitive_cell_has_the_edges_per_atom_of_its_supercells() {
    let one = fcc_crystal(29, 3.615, FccCell::Primitive);
    assert_eq!(one.len(), 1);
    for cutoff in [3.0, 4.0, 6.0] {
        let spec = GraphSpec { cutoff: Some(cutoff) };
        let primitive = edges_by_atom(&Graph::build(&one, &spec).unwrap());
        // The 12 nearest neighbours, its own images, are single bonds as in any fcc crystal.
        assert_eq!(
            primitive[0].iter().filter(|e| e.1 == BondClass::Single as u8).count(),
            12,
            "{:?}",
            primitive[0]
        );
        for crystal in [repeated(&one, 2), fcc_supercell(29, 3.615, 2)] {
            let graph = Graph::build(&crystal, &spec).unwrap();
            for edges in edges_by_atom(&graph) {
                assert_same_edges(&primitive[0], &edges);
            }
        }
    }
}

#[test]
fn a_left_handed_cell_has_the_edges_of_the_right_handed_one() {
    let right = fcc_crystal(29, 3.615, FccCell::Cubic);
    let v = *right.cell().unwrap().vectors();
    let left_cell = Cell::new([v[0], v[2], v[1]]).unwrap();
    assert!(left_cell.is_left_handed());
    let left = right.clone().with_cell(left_cell, [true; 3]);
    let spec = GraphSpec { cutoff: Some(5.0) };
    let (a, b) = (
        edges_by_atom(&Graph::build(&right, &spec).unwrap()),
        edges_by_atom(&Graph::build(&left, &spec).unwrap()),
    );
    for (x, y) in a.iter().zip(&b) {
        assert_same_edges(x, y);
    }
}

#[test]
fn coincident_atoms_are_refused_with_or_without_a_cutoff() {
    let twins = Atoms::new(vec![1, 8, 1], vec![[0.0, 0.7, 0.0], [0.0; 3], [0.0, 0.7, 0.0]]).unwrap();
    for cutoff in [None, Some(3.0)] {
        let error = Graph::build(&twins, &GraphSpec { cutoff }).unwrap_err();
        assert!(error.contains("atoms 0 and 2 coincide"), "{error}");
    }
}
