//! Hostile input to the neighbour search: clear errors (never an abort, a hang or memory
//! without limit) for non-finite and far-out coordinates, cutoffs and cells that would need
//! more memory than the budget, and coincident atoms or periodic images; left-handed cells
//! and one atom bonded only to its own images work as any other structure.

use minima_atoms::{build::fcc_supercell, Atoms, Cell, Vec3};
use minima_neighbors::{
    check_separated, half_neighbor_list, neighbor_list, neighbor_list_of, neighbor_list_within, NeighborError,
    NeighborList, DEFAULT_MEMORY_BUDGET,
};

/// Each atom's edge lengths, sorted.
fn distances_by_atom(list: &NeighborList, n: usize) -> Vec<Vec<f64>> {
    let mut by_atom = vec![Vec::new(); n];
    for e in 0..list.len() {
        by_atom[list.first[e] as usize].push(list.distances[e]);
    }
    for d in &mut by_atom {
        d.sort_by(f64::total_cmp);
    }
    by_atom
}

fn assert_close(a: &[Vec<f64>], b: &[Vec<f64>]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.len(), y.len());
        assert!(x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-9), "{x:?} vs {y:?}");
    }
}

fn too_large(result: Result<NeighborList, NeighborError>) -> String {
    match result {
        Err(NeighborError::TooLarge(message)) => message,
        other => panic!("expected a refusal, got {:?}", other.map(|l| l.len())),
    }
}

#[test]
fn far_out_and_non_finite_coordinates_are_clear_errors() {
    for far in [1e308, -1e308, 1e11] {
        let open = neighbor_list_of(&[[0.0; 3], [far, 0.0, 0.0]], None, [false; 3], 3.0);
        assert!(
            matches!(open, Err(NeighborError::FarPosition { atom: 1, .. })),
            "{open:?}"
        );
    }
    let cell = Cell::orthorhombic(3.6, 3.6, 3.6).unwrap();
    let periodic = neighbor_list_of(&[[0.0; 3], [0.0, 1e308, 0.0]], Some(&cell), [true; 3], 3.0);
    assert!(matches!(periodic, Err(NeighborError::FarPosition { atom: 1, .. })));
    // Within the coordinate range but so many cells away that image offsets would overflow.
    let tiny = Cell::orthorhombic(1e-3, 1.0, 1.0).unwrap();
    let far_cells = neighbor_list_of(&[[1e7, 0.0, 0.0]], Some(&tiny), [true; 3], 0.5);
    assert!(
        matches!(far_cells, Err(NeighborError::FarFromCell { atom: 0, axis: 0, .. })),
        "{far_cells:?}"
    );
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let result = neighbor_list_of(&[[0.0; 3], [1.0, bad, 0.0]], None, [false; 3], 3.0);
        assert_eq!(result, Err(NeighborError::NonFinitePosition { atom: 1 }));
    }
    let message = NeighborError::FarPosition {
        atom: 1,
        coordinate: 1e308,
    }
    .to_string();
    assert!(message.contains("atom 1") && message.contains("translate"), "{message}");
}

#[test]
fn a_huge_cutoff_is_refused_with_the_estimate_and_what_lowers_it() {
    let crystal = fcc_supercell(29, 3.61, 2);
    for cutoff in [1e9, 1e4] {
        let message = too_large(neighbor_list(&crystal, cutoff));
        assert!(message.contains("smaller cutoff"), "{message}");
        assert!(message.contains("bin images") || message.contains("GiB"), "{message}");
    }
    // 100 Å around 32 atoms in 376 Å³: about 1.2e7 pairs at 28 bytes, within the default
    // budget; refused by a budget of 100 MiB with the estimate named.
    let message = too_large(neighbor_list_within(
        crystal.positions(),
        crystal.cell(),
        crystal.pbc(),
        100.0,
        100 << 20,
    ));
    assert!(
        message.contains("319.6 MiB") && message.contains("expected pairs"),
        "{message}"
    );
    assert!(message.contains("MINIMA_NEIGHBOR_MEMORY"), "{message}");
    // An open structure with a huge cutoff is just all pairs.
    let molecule = [[0.0; 3], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]];
    assert_eq!(neighbor_list_of(&molecule, None, [false; 3], 1e9).unwrap().len(), 6);
}

#[test]
fn a_tiny_cell_is_refused_before_memory_grows() {
    let cell = Cell::orthorhombic(1e-3, 1e-3, 1e-3).unwrap();
    let message = too_large(neighbor_list_of(&[[0.0; 3]], Some(&cell), [true; 3], 5.0));
    assert!(
        message.contains("larger cell") && message.contains("smaller cutoff"),
        "{message}"
    );
    // Thin along one axis only, it is a legitimate slab of 10,000 images.
    let slab = Cell::orthorhombic(1e-3, 10.0, 10.0).unwrap();
    assert_eq!(
        neighbor_list_of(&[[0.0; 3]], Some(&slab), [true; 3], 5.0)
            .unwrap()
            .len(),
        9998
    );
}

#[test]
fn a_skewed_cell_that_would_take_hours_is_refused() {
    // Volume 1 Å³ (few pairs within 5 Å), but 1e-8 Å thick along b: the search would step
    // through 1e9 layers of images.
    let skewed = Cell::new([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1e8, 1.0]]).unwrap();
    let message = too_large(neighbor_list_of(&[[0.0; 3]], Some(&skewed), [true; 3], 5.0));
    assert!(
        message.contains("bin images") && message.contains("smaller cutoff"),
        "{message}"
    );
}

#[test]
fn atoms_crowded_in_a_large_cell_stop_at_the_budget() {
    // 200 atoms within 0.5 Å in a 100 Å box: the mean density promises almost no pairs, but
    // there are 39,800; a budget of 512 KiB holds fewer.
    let positions: Vec<Vec3> = (0..200)
        .map(|a| {
            let t = a as f64 / 200.0;
            [0.5 * t, 0.3 * (7.0 * t).fract(), 0.2 * (13.0 * t).fract()]
        })
        .collect();
    let cell = Cell::orthorhombic(100.0, 100.0, 100.0).unwrap();
    let message = too_large(neighbor_list_within(&positions, Some(&cell), [true; 3], 1.0, 512 << 10));
    assert!(message.contains("found more than"), "{message}");
    let list = neighbor_list_within(&positions, Some(&cell), [true; 3], 1.0, DEFAULT_MEMORY_BUDGET).unwrap();
    assert_eq!(list.len(), 200 * 199);
}

#[test]
fn needle_and_flat_structures_stay_small_and_quick() {
    // Two atoms 1e9 Å apart along x, a pair near the origin: the grid must not follow the
    // long axis alone (this allocated 5e14 bytes at 1e308).
    let needle = [[0.0; 3], [1e9, 0.0, 0.0], [0.0, 0.7, 0.0]];
    let list = neighbor_list_of(&needle, None, [false; 3], 1.0).unwrap();
    assert_eq!(list.len(), 2);
    // A molecule flat to 1e-12 Å: no search through 1e12 empty layers of bins.
    let flat = [[0.0; 3], [1.0, 0.0, 1e-12], [0.0, 1.0, 0.0]];
    assert_eq!(neighbor_list_of(&flat, None, [false; 3], 1.2).unwrap().len(), 4);
}

#[test]
fn coincident_atoms_and_images_are_named() {
    let cell = Cell::orthorhombic(3.61, 3.61, 3.61).unwrap();
    // Two atoms at one place, open and periodic.
    for periodic in [false, true] {
        let (cell_arg, pbc) = if periodic {
            (Some(&cell), [true; 3])
        } else {
            (None, [false; 3])
        };
        let twins = [[0.3, 0.2, 0.1], [2.0, 2.0, 2.0], [0.3, 0.2, 0.1]];
        let result = neighbor_list_of(&twins, cell_arg, pbc, 3.0);
        assert!(
            matches!(
                result,
                Err(NeighborError::Coincident {
                    i: 0,
                    j: 2,
                    shift: [0, 0, 0],
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(check_separated(&twins, cell_arg, pbc).is_err());
        let message = result.unwrap_err().to_string();
        assert!(message.contains("atoms 0 and 2 coincide"), "{message}");
    }
    // Atom 1 sits on the image of atom 0 one cell along x: coincident after a lattice shift
    // (4e-16 Å apart after wrapping, where EMT gave forces of thousands of eV/Å).
    let images = [[0.0; 3], [3.61, 0.0, 0.0], [1.8, 1.8, 0.0]];
    let result = neighbor_list_of(&images, Some(&cell), [true; 3], 3.0);
    assert!(
        matches!(
            result,
            Err(NeighborError::Coincident {
                i: 0,
                j: 1,
                shift: [-1, 0, 0],
                ..
            })
        ),
        "{result:?}"
    );
    assert!(result.unwrap_err().to_string().contains("periodic image"));
    let atoms = Atoms::new(vec![29; 3], images.to_vec())
        .unwrap()
        .with_cell(cell, [true; 3]);
    assert!(matches!(
        half_neighbor_list(&atoms, 3.0, 1),
        Err(NeighborError::Coincident { i: 0, j: 1, .. })
    ));
    // An atom on its own image: a lattice vector of no length (1e-6 Å).
    let needle = Cell::orthorhombic(1e-6, 3.0, 3.0).unwrap();
    let result = neighbor_list_of(&[[0.0; 3]], Some(&needle), [true, false, false], 1e-3);
    assert!(
        matches!(result, Err(NeighborError::Coincident { i: 0, j: 0, .. })),
        "{result:?}"
    );
    // Separated atoms pass.
    assert!(check_separated(&[[0.0; 3], [1e-4, 0.0, 0.0]], None, [false; 3]).is_ok());
    assert!(check_separated(&images[..1], Some(&cell), [true; 3]).is_ok());
}

#[test]
fn a_left_handed_cell_has_the_neighbours_of_the_right_handed_one() {
    let right = Cell::new([[4.0, 0.0, 0.0], [1.3, 3.5, 0.0], [-0.7, 0.9, 5.2]]).unwrap();
    let v = *right.vectors();
    let left = Cell::new([v[1], v[0], v[2]]).unwrap();
    assert!(left.is_left_handed());
    let positions: Vec<Vec3> = [[0.1, 0.2, 0.3], [0.6, 0.1, 0.8], [0.4, 0.7, 0.2], [1.3, -0.4, 0.5]]
        .iter()
        .map(|&s| right.cartesian(s))
        .collect();
    for pbc in [[true; 3], [true, false, true], [false, true, true]] {
        // The same periodicity of the same vectors, listed in the other order.
        let swapped = [pbc[1], pbc[0], pbc[2]];
        let a = neighbor_list_of(&positions, Some(&right), pbc, 6.0).unwrap();
        let b = neighbor_list_of(&positions, Some(&left), swapped, 6.0).unwrap();
        assert!(!a.is_empty());
        assert_close(&distances_by_atom(&a, 4), &distances_by_atom(&b, 4));
        for e in 0..b.len() {
            let s = b.shifts[e];
            let d: Vec3 = std::array::from_fn(|k| {
                positions[b.second[e] as usize][k] + left.shift(s)[k] - positions[b.first[e] as usize][k]
            });
            assert!((minima_atoms::cell::norm(d) - b.distances[e]).abs() < 1e-9);
        }
    }
}

#[test]
fn one_atom_meets_its_own_images_as_its_supercell_does() {
    let h = 3.61 / 2.0;
    let primitive = Cell::new([[0.0, h, h], [h, 0.0, h], [h, h, 0.0]]).unwrap();
    let one = Atoms::new(vec![29], vec![[0.0; 3]])
        .unwrap()
        .with_cell(primitive, [true; 3]);
    let cubic = fcc_supercell(29, 3.61, 2);
    for cutoff in [2.6, 3.7, 5.9] {
        let a = distances_by_atom(&neighbor_list(&one, cutoff).unwrap(), 1);
        let b = distances_by_atom(&neighbor_list(&cubic, cutoff).unwrap(), cubic.len());
        assert!(!a[0].is_empty());
        assert_close(&vec![a[0].clone(); cubic.len()], &b);
        assert_eq!(2 * half_neighbor_list(&one, cutoff, 1).unwrap().len(), a[0].len());
    }
}
