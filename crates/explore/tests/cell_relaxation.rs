//! Relaxing the cell with the positions (ASE's UnitCellFilter at zero pressure): copper with
//! EMT, compressed, sheared and rattled, reaches EMT's equilibrium lattice with FIRE and with
//! L-BFGS; a structure without a periodic cell is refused.

use minima_atoms::build::fcc_supercell;
use minima_atoms::{Atoms, Calculator, Cell};
use minima_explore::{relax, Optimizer, RelaxOptions, Stop};
use minima_label::Emt;

/// EMT copper's zero-pressure lattice constant, by bisection of the pressure of the 4-atom cell.
fn equilibrium_lattice() -> f64 {
    let emt = Emt::new();
    let (mut low, mut high) = (3.4, 3.8);
    for _ in 0..60 {
        let mid = 0.5 * (low + high);
        let s = emt.calculate(&fcc_supercell(29, mid, 1)).unwrap().stress.unwrap();
        if s[0] + s[1] + s[2] < 0.0 {
            low = mid
        } else {
            high = mid
        }
    }
    0.5 * (low + high)
}

fn distorted() -> Atoms {
    let mut atoms = fcc_supercell(29, 3.45, 2);
    let shear = [[1.0, 0.03, 0.0], [0.0, 1.02, 0.0], [0.01, 0.0, 0.98]];
    let deform = |v: [f64; 3]| -> [f64; 3] { std::array::from_fn(|k| (0..3).map(|j| v[j] * shear[j][k]).sum()) };
    let cell = Cell::new(atoms.cell().unwrap().vectors().map(deform)).unwrap();
    let positions = atoms
        .positions()
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let moved = deform(r);
            std::array::from_fn(|k| moved[k] + 0.03 * ((i * 7 + k * 3) % 5) as f64 / 4.0)
        })
        .collect();
    atoms = atoms.with_cell(cell, [true; 3]);
    atoms.set_positions(positions).unwrap();
    atoms
}

#[test]
fn the_cell_relaxes_to_the_equilibrium_lattice() {
    let a0 = equilibrium_lattice();
    for optimizer in [Optimizer::Fire, Optimizer::Lbfgs] {
        let options = RelaxOptions {
            optimizer,
            fmax: 1e-4,
            steps: 3000,
            cell: true,
            ..RelaxOptions::default()
        };
        let result = relax(&Emt::new(), &distorted(), &options, |_| {}).unwrap();
        assert_eq!(result.stop, Stop::Converged, "{optimizer:?}");
        let cell = result.atoms.cell().unwrap();
        let per_atom = cell.volume() / result.atoms.len() as f64;
        assert!(
            (per_atom - a0.powi(3) / 4.0).abs() < 1e-4 * per_atom,
            "{optimizer:?}: {per_atom} Å³/atom vs {}",
            a0.powi(3) / 4.0
        );
        let stress = result.labels.stress.unwrap();
        assert!(stress.iter().all(|s| s.abs() < 1e-5), "{optimizer:?}: {stress:?}");
        assert!(result.fmax() < 1e-4);
        // Every nearest-neighbour distance is fcc's a0/√2.
        let (_, _, nearest) = result.atoms.closest_pair().unwrap();
        assert!(
            (nearest - a0 / 2f64.sqrt()).abs() < 1e-3,
            "{optimizer:?}: nearest {nearest}"
        );
    }
}

#[test]
fn relaxing_the_cell_needs_one() {
    let mut cluster = fcc_supercell(29, 3.6, 1);
    cluster = Atoms::new(cluster.numbers().to_vec(), cluster.positions().to_vec()).unwrap();
    let options = RelaxOptions {
        cell: true,
        ..RelaxOptions::default()
    };
    let error = relax(&Emt::new(), &cluster, &options, |_| {}).unwrap_err().to_string();
    assert!(error.contains("periodic along all three axes"), "{error}");
}
