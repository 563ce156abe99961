//! The linked-cell search equals brute force on random open, periodic and mixed structures,
//! triclinic cells and cutoffs larger than the cell included.

use minima_atoms::{build::fcc_supercell, Cell, Vec3};
use minima_neighbors::{brute_force, half_neighbor_list, neighbor_list, neighbor_list_of, NeighborError, NeighborList};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Edge = (u32, u32, [i32; 3]);

fn sorted_edges(list: &NeighborList) -> Vec<(Edge, f64)> {
    let mut edges: Vec<(Edge, f64)> = (0..list.len())
        .map(|e| ((list.first[e], list.second[e], list.shifts[e]), list.distances[e]))
        .collect();
    edges.sort_by_key(|e| e.0);
    edges
}

fn random_cell(rng: &mut ChaCha8Rng) -> Cell {
    loop {
        let v: [Vec3; 3] = std::array::from_fn(|_| std::array::from_fn(|_| rng.random_range(-1.0..1.0)));
        let scale: Vec3 = std::array::from_fn(|_| rng.random_range(0.8..6.0));
        let m: [Vec3; 3] = std::array::from_fn(|k| {
            let mut row = [0.0; 3];
            row[k] = scale[k];
            std::array::from_fn(|c| row[c] + 0.6 * scale[k] * v[k][c])
        });
        if let Ok(cell) = Cell::new(m) {
            // Keep cells that are not nearly flat: brute force needs a bounded image range.
            if cell.heights().iter().all(|&h| h > 0.3) {
                return cell;
            }
        }
    }
}

fn check_case(rng: &mut ChaCha8Rng, periodic: bool) {
    let n = rng.random_range(1..30);
    let cell = random_cell(rng);
    let pbc: [bool; 3] = if periodic {
        std::array::from_fn(|_| rng.random_bool(0.8))
    } else {
        [false; 3]
    };
    // Positions partly outside the cell: the shifts must refer to the positions as given.
    let positions: Vec<Vec3> = (0..n)
        .map(|_| cell.cartesian(std::array::from_fn(|_| rng.random_range(-0.5..1.5))))
        .collect();
    let max_height = cell.heights().iter().cloned().fold(0.0, f64::max);
    let cutoff = rng.random_range(0.3..2.5 * max_height);
    let cell_arg = if periodic { Some(&cell) } else { None };
    let fast = neighbor_list_of(&positions, cell_arg, pbc, cutoff).unwrap();
    let slow = brute_force(&positions, cell_arg.filter(|_| pbc.iter().any(|&p| p)), pbc, cutoff);
    let (fast_edges, slow_edges) = (sorted_edges(&fast), sorted_edges(&slow));
    assert_eq!(fast_edges.len(), slow_edges.len(), "n={n} pbc={pbc:?} cutoff={cutoff}");
    for ((e1, d1), (e2, d2)) in fast_edges.iter().zip(&slow_edges) {
        assert_eq!(e1, e2, "n={n} pbc={pbc:?} cutoff={cutoff}");
        assert!((d1 - d2).abs() < 1e-9, "{d1} vs {d2}");
    }
    // Sorted by centre atom, and every edge has its reverse.
    assert!(fast.first.windows(2).all(|w| w[0] <= w[1]));
    let set: std::collections::HashSet<Edge> = fast_edges.iter().map(|e| e.0).collect();
    for &(i, j, s) in &set {
        assert!(set.contains(&(j, i, s.map(|x| -x))));
    }
}

#[test]
fn periodic_and_mixed_cases_equal_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..700 {
        check_case(&mut rng, true);
    }
}

#[test]
fn open_cases_equal_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for _ in 0..400 {
        check_case(&mut rng, false);
    }
}

#[test]
fn tiny_cell_sees_its_own_images() {
    // One atom in a 1 Å cubic cell with a 2.5 Å cutoff: every image within 2.5 Å.
    let cell = Cell::orthorhombic(1.0, 1.0, 1.0).unwrap();
    let list = neighbor_list_of(&[[0.2, 0.3, 0.4]], Some(&cell), [true; 3], 2.5).unwrap();
    let expected = (-3i32..=3)
        .flat_map(|a| (-3i32..=3).flat_map(move |b| (-3i32..=3).map(move |c| (a, b, c))))
        .filter(|&(a, b, c)| (a, b, c) != (0, 0, 0) && ((a * a + b * b + c * c) as f64).sqrt() < 2.5)
        .count();
    assert_eq!(list.len(), expected);
    assert!(list.first.iter().all(|&i| i == 0) && list.second.iter().all(|&j| j == 0));
}

#[test]
fn fcc_copper_has_twelve_nearest_neighbours() {
    let cu = fcc_supercell(29, 3.61, 3);
    let list = neighbor_list(&cu, 2.6).unwrap();
    assert_eq!(list.len(), 12 * cu.len());
    let list = neighbor_list(&cu, 3.7).unwrap();
    assert_eq!(list.len(), 18 * cu.len());
}

#[test]
fn edge_cases_are_handled() {
    assert!(neighbor_list_of(&[], None, [false; 3], 3.0).unwrap().is_empty());
    let one = neighbor_list_of(&[[1.0, 2.0, 3.0]], None, [false; 3], 3.0).unwrap();
    assert!(one.is_empty());
    // Coincident atoms have no potential: the search refuses them, naming both.
    let twins = neighbor_list_of(&[[0.0; 3], [0.0; 3]], None, [false; 3], 1.0);
    assert!(matches!(twins, Err(NeighborError::Coincident { i: 0, j: 1, .. })));
    // A sparse cloud in a huge box stays cheap: bins are bounded by the atom count.
    let far = neighbor_list_of(
        &[[0.0; 3], [1e6, 1e6, 1e6], [1e6, 1e6, 1e6 + 0.5]],
        None,
        [false; 3],
        1.0,
    )
    .unwrap();
    assert_eq!(far.len(), 2);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let result = neighbor_list_of(&[[0.0; 3]], None, [false; 3], bad);
        assert!(matches!(result, Err(NeighborError::BadCutoff(_))), "{bad}");
    }
    assert_eq!(
        neighbor_list_of(&[[0.0; 3]], None, [true, false, false], 1.0),
        Err(NeighborError::PeriodicWithoutCell)
    );
}

#[test]
fn half_list_holds_each_pair_once() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for _ in 0..50 {
        let cell = random_cell(&mut rng);
        let n = rng.random_range(1..20);
        let positions: Vec<Vec3> = (0..n)
            .map(|_| cell.cartesian(std::array::from_fn(|_| rng.random_range(0.0..1.0))))
            .collect();
        let pbc = [true, rng.random_bool(0.5), true];
        let atoms = minima_atoms::Atoms::new(vec![29; n], positions)
            .unwrap()
            .with_cell(cell, pbc);
        let cutoff = rng.random_range(0.5..8.0);
        let full = neighbor_list(&atoms, cutoff).unwrap();
        let half = half_neighbor_list(&atoms, cutoff, 1).unwrap();
        assert_eq!(half, half_neighbor_list(&atoms, cutoff, 3).unwrap());
        let first_nonzero_positive = |s: &[i32; 3]| s.iter().find(|&&c| c != 0).is_some_and(|&c| c > 0);
        let mut expected: Vec<(Edge, f64)> = sorted_edges(&full)
            .into_iter()
            .filter(|((i, j, s), _)| i < j || (i == j && first_nonzero_positive(s)))
            .collect();
        expected.sort_by_key(|e| e.0);
        assert_eq!(2 * half.len(), full.len());
        let found = sorted_edges(&half);
        let pairs = |edges: &[(Edge, f64)]| edges.iter().map(|e| e.0).collect::<Vec<_>>();
        assert_eq!(pairs(&found), pairs(&expected));
        // Found from either end: the same length up to rounding.
        assert!(found.iter().zip(&expected).all(|(a, b)| (a.1 - b.1).abs() < 1e-12));
    }
}

#[test]
fn threads_give_the_same_half_list() {
    // Enough atoms that the search really is split (a few hundred centre atoms per thread).
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let crystal = fcc_supercell(29, 3.6, 6);
    let positions: Vec<Vec3> = crystal
        .positions()
        .iter()
        .map(|r| std::array::from_fn(|k| r[k] + rng.random_range(-0.2..0.2)))
        .collect();
    let mut atoms = crystal.clone();
    atoms.set_positions(positions).unwrap();
    let serial = half_neighbor_list(&atoms, 5.9, 1).unwrap();
    assert_eq!(2 * serial.len(), neighbor_list(&atoms, 5.9).unwrap().len());
    for threads in [2, 3] {
        assert_eq!(half_neighbor_list(&atoms, 5.9, threads).unwrap(), serial);
    }
}
