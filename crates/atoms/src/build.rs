//! Builders of standard structures, as `ase.build` offers them.

use crate::{Atoms, Cell};

/// A periodic fcc crystal of `reps³` cubic cells with lattice constant `a` (Å), 4 atoms each.
pub fn fcc_supercell(number: u8, a: f64, reps: usize) -> Atoms {
    fcc_block(number, a, [reps; 3])
}

/// A periodic fcc crystal of `reps[0] × reps[1] × reps[2]` cubic cells with lattice constant
/// `a` (Å), 4 atoms each.
pub fn fcc_block(number: u8, a: f64, reps: [usize; 3]) -> Atoms {
    let basis = [[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]];
    let mut positions = Vec::with_capacity(4 * reps.iter().product::<usize>());
    for x in 0..reps[0] {
        for y in 0..reps[1] {
            for z in 0..reps[2] {
                for b in &basis {
                    positions.push([(x as f64 + b[0]) * a, (y as f64 + b[1]) * a, (z as f64 + b[2]) * a]);
                }
            }
        }
    }
    let side = reps.map(|r| a * r as f64);
    let n = positions.len();
    Atoms::new(vec![number; n], positions)
        .expect("finite positions of a known element")
        .with_cell(
            Cell::orthorhombic(side[0], side[1], side[2]).expect("positive sides"),
            [true; 3],
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcc_has_four_atoms_per_cell_and_nearest_neighbours_at_a_over_sqrt2() {
        let cu = fcc_supercell(29, 3.61, 2);
        assert_eq!(cu.len(), 32);
        assert!(cu.is_periodic());
        let (_, _, d) = cu.closest_pair().unwrap();
        assert!((d - 3.61 / 2f64.sqrt()).abs() < 1e-12);
    }
}
