//! Per-atom energy contributions (the VIMPNN paper's Fig. 7): of one structure, and along a
//! scan that moves one atom towards or away from the rest (along the line from the centroid of
//! the other atoms through it), with everything else fixed.

use minima_atoms::Atoms;
use minima_label::Calculator;
use serde::Serialize;

use crate::curve::with_fixed_bonds;
use crate::ExploreError;

/// The per-atom energies `calculator` gives for `atoms` (models and EMT give them).
pub fn contributions(calculator: &dyn Calculator, atoms: &Atoms) -> Result<Vec<f64>, ExploreError> {
    calculator.calculate_checked(atoms)?.energies.ok_or_else(|| {
        ExploreError::Input(format!(
            "{} gives no per-atom energies (a model or emt does)",
            calculator.name()
        ))
    })
}

/// One point of a moved-atom scan.
#[derive(Debug, Clone, Serialize)]
pub struct MovedAtom {
    /// Distance of the moved atom from the centroid of the others, relative to the start.
    pub scale: f64,
    /// Distance from the moved atom to its nearest other atom (Å).
    pub nearest: f64,
    pub energy: f64,
    /// Every atom's contribution (eV).
    pub contributions: Vec<f64>,
}

/// Moves atom `atom` to `scale` times its distance from the centroid of the other atoms, for
/// each scale; bonds stay those of the start.
pub fn move_atom(
    calculator: &dyn Calculator,
    structure: &Atoms,
    atom: usize,
    scales: &[f64],
    mut progress: impl FnMut(),
) -> Result<Vec<MovedAtom>, ExploreError> {
    let n = structure.len();
    if atom >= n || n < 2 {
        return Err(ExploreError::Input(format!(
            "atom {atom} asked for; the structure has {n} atoms (0-based, at least 2)"
        )));
    }
    let base = with_fixed_bonds(structure);
    let others: Vec<usize> = (0..n).filter(|&a| a != atom).collect();
    let centre: [f64; 3] =
        std::array::from_fn(|k| others.iter().map(|&a| base.positions()[a][k]).sum::<f64>() / others.len() as f64);
    let start = base.positions()[atom];
    scales
        .iter()
        .map(|&scale| {
            let mut moved = base.clone();
            let mut positions = base.positions().to_vec();
            positions[atom] = std::array::from_fn(|k| centre[k] + scale * (start[k] - centre[k]));
            moved
                .set_positions(positions)
                .map_err(|e| ExploreError::Input(e.to_string()))?;
            let nearest = others
                .iter()
                .map(|&a| moved.distance(atom, a))
                .fold(f64::INFINITY, f64::min);
            let contributions = contributions(calculator, &moved)?;
            progress();
            Ok(MovedAtom {
                scale,
                nearest,
                energy: contributions.iter().sum(),
                contributions,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use minima_label::Emt;

    #[test]
    fn pulling_an_atom_off_a_cluster_raises_its_own_contribution() {
        let cluster = minima_atoms::build::fcc_supercell(29, 3.6, 1);
        let cluster = Atoms::new(cluster.numbers().to_vec(), cluster.positions().to_vec()).unwrap();
        let scan = move_atom(&Emt::new(), &cluster, 0, &[1.0, 1.5, 3.0], || {}).unwrap();
        assert_eq!(scan.len(), 3);
        assert!(scan[2].contributions[0] > scan[0].contributions[0]);
        assert!(scan[2].nearest > scan[0].nearest);
        assert!(move_atom(&Emt::new(), &cluster, 9, &[1.0], || {}).is_err());
    }
}
