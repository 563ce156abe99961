//! EMT on periodic structures as ASE treats them: a one-atom primitive cell is the same crystal
//! as its supercells, a left-handed cell the same as the right-handed one; coincident atoms or
//! periodic images, and coordinates far out, are clear errors naming the atoms.

use minima_atoms::build::{fcc_block, fcc_supercell};
use minima_atoms::{Atoms, Cell};
use minima_atoms::{CalcError, Calculator, Labels};
use minima_emt::Emt;

fn primitive(number: u8, a: f64) -> Atoms {
    let h = a / 2.0;
    let cell = Cell::new([[0.0, h, h], [h, 0.0, h], [h, h, 0.0]]).unwrap();
    Atoms::new(vec![number], vec![[0.0; 3]])
        .unwrap()
        .with_cell(cell, [true; 3])
}

fn labels(atoms: &Atoms) -> Labels {
    Emt::new().calculate_checked(atoms).unwrap()
}

#[test]
fn a_primitive_cell_has_the_energy_per_atom_of_its_supercells() {
    for (number, a) in [(29, 3.615), (29, 3.2), (13, 4.05), (79, 4.3)] {
        let one = labels(&primitive(number, a));
        for crystal in [
            fcc_supercell(number, a, 1),
            fcc_supercell(number, a, 2),
            fcc_block(number, a, [1, 2, 3]),
        ] {
            let many = labels(&crystal);
            let per_atom = many.energy / crystal.len() as f64;
            assert!(
                (one.energy - per_atom).abs() < 1e-10,
                "Z={number} a={a}: {} vs {per_atom}",
                one.energy
            );
            let (s1, s2) = (one.stress.unwrap(), many.stress.unwrap());
            assert!(
                s1.iter().zip(&s2).all(|(x, y)| (x - y).abs() < 1e-10),
                "{s1:?} vs {s2:?}"
            );
        }
        assert!(one.forces[0].iter().all(|f| f.abs() < 1e-10));
    }
}

#[test]
fn a_left_handed_cell_gives_the_right_handed_labels() {
    let mut crystal = fcc_block(29, 3.6, [2, 2, 1]);
    let positions = crystal
        .positions()
        .iter()
        .enumerate()
        .map(|(a, r)| std::array::from_fn(|k| r[k] + 0.05 * ((3 * a + k) as f64 * 0.7).sin()))
        .collect();
    crystal.set_positions(positions).unwrap();
    let v = *crystal.cell().unwrap().vectors();
    let left_cell = Cell::new([v[1], v[0], v[2]]).unwrap();
    assert!(left_cell.is_left_handed());
    let left = crystal.clone().with_cell(left_cell, [true; 3]);
    let (r, l) = (labels(&crystal), labels(&left));
    assert!((r.energy - l.energy).abs() < 1e-10, "{} vs {}", r.energy, l.energy);
    for (a, b) in r.forces.iter().zip(&l.forces) {
        assert!((0..3).all(|k| (a[k] - b[k]).abs() < 1e-10));
    }
    let (a, b) = (r.stress.unwrap(), l.stress.unwrap());
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-12), "{a:?} vs {b:?}");
    // The same for the one-atom primitive cell.
    let p = primitive(29, 3.6);
    let w = *p.cell().unwrap().vectors();
    let mirrored = p.clone().with_cell(Cell::new([w[0], w[2], w[1]]).unwrap(), [true; 3]);
    assert!((labels(&p).energy - labels(&mirrored).energy).abs() < 1e-12);
}

fn input_error(atoms: &Atoms) -> String {
    match Emt::new().calculate_checked(atoms) {
        Err(CalcError::Input(message)) => message,
        other => panic!("expected an input error, got {:?}", other.map(|l| l.forces)),
    }
}

#[test]
fn coincident_atoms_and_images_are_input_errors_naming_the_atoms() {
    // Atom 1 on the image of atom 0 one cell along x (rounding leaves them 4e-16 Å apart,
    // where EMT gave finite forces of thousands of eV/Å).
    let cell = Cell::orthorhombic(3.61, 3.61, 3.61).unwrap();
    let on_image = Atoms::new(vec![29; 3], vec![[0.0; 3], [3.61, 0.0, 0.0], [1.805, 1.805, 0.0]])
        .unwrap()
        .with_cell(cell, [true; 3]);
    let message = input_error(&on_image);
    assert!(message.contains("atom 0") && message.contains("atom 1"), "{message}");
    // Two atoms at one place in a crystal, and in a cluster.
    let mut twins = fcc_supercell(29, 3.61, 2);
    let mut positions = twins.positions().to_vec();
    positions[7] = positions[3];
    twins.set_positions(positions).unwrap();
    let message = input_error(&twins);
    assert!(message.contains("atoms 3 and 7 coincide"), "{message}");
    let cluster = Atoms::new(twins.numbers().to_vec(), twins.positions().to_vec()).unwrap();
    assert!(input_error(&cluster).contains("atoms 3 and 7 coincide"));
}

#[test]
fn coordinates_far_out_are_input_errors() {
    let far = Atoms::new(vec![29, 29], vec![[0.0; 3], [1e308, 0.0, 0.0]]).unwrap();
    assert!(input_error(&far).contains("atom 1"));
    let mut crystal = fcc_supercell(29, 3.61, 1);
    let mut positions = crystal.positions().to_vec();
    positions[2][1] = -1e300;
    crystal.set_positions(positions).unwrap();
    assert!(input_error(&crystal).contains("atom 2"));
}
