//! Models see a structure, not the way it is written down: a one-atom primitive fcc cell (its
//! atom bonded only to its own periodic images) gets the energy per atom of its supercells, a
//! left-handed cell the energy of the right-handed one, and an f32 model the same energy and
//! forces for a molecule or crystal a million Å from the origin (also with atoms written
//! lattice vectors away from their neighbours) as at the origin.

use minima_atoms::build::fcc_supercell;
use minima_atoms::{Atoms, Cell, Vec3};
use minima_data::{AtomRefs, Graph};
use minima_model::config::{Combine, Dtype, ModelConfig, ModelKind};
use minima_model::{Mode, Potential};
use tch::Device;

fn config(kind: ModelKind, cutoff: Option<f64>, dtype: Dtype) -> ModelConfig {
    ModelConfig {
        kind,
        hidden: 12,
        edge_hidden: 16,
        edge_rank: 12,
        readout_hidden: 12,
        radial_basis: 8,
        cutoff,
        dtype,
        elements: vec![1, 6, 8, 29],
        ..ModelConfig::default()
    }
}

/// MPNN and VIMPNN (with and without per-bond-type updates) with a cutoff.
fn cutoff_models(dtype: Dtype) -> Vec<ModelConfig> {
    let mut list = vec![config(ModelKind::Mpnn, Some(4.5), dtype)];
    for combine in [Combine::VectorWeights, Combine::GruPerType] {
        let mut vimpnn = config(ModelKind::Vimpnn, Some(4.5), dtype);
        vimpnn.vimpnn.combine = combine;
        list.push(vimpnn);
    }
    list
}

fn potential(config: &ModelConfig) -> Potential {
    let refs = AtomRefs {
        elements: vec![1, 6, 8, 29],
        energies: vec![-13.6, -1029.0, -2042.0, -3.5],
        scale: 0.7,
    };
    Potential::new(config.clone(), refs, Device::Cpu, 5).unwrap()
}

/// The architecture's energy (before the reference energies, so that its own digits are
/// compared) and the forces, eV/Å.
fn evaluate(potential: &Potential, atoms: &Atoms) -> (f64, Vec<Vec3>) {
    let graph = Graph::build(atoms, &potential.config.graph_spec()).unwrap();
    let batch = potential.batch(&[&graph], true);
    let prediction = potential.predict(&batch, Mode::Forces);
    let energy = prediction.normalized_energy.double_value(&[0]) * potential.refs.scale;
    let forces: Vec<f64> = Vec::try_from(prediction.forces.unwrap().to_kind(tch::Kind::Double).flatten(0, 1)).unwrap();
    (energy, forces.chunks(3).map(|f| [f[0], f[1], f[2]]).collect())
}

fn primitive(a: f64) -> Atoms {
    let h = a / 2.0;
    let cell = Cell::new([[0.0, h, h], [h, 0.0, h], [h, h, 0.0]]).unwrap();
    Atoms::new(vec![29], vec![[0.0; 3]]).unwrap().with_cell(cell, [true; 3])
}

#[test]
fn a_primitive_cell_gets_the_energy_per_atom_of_its_supercells() {
    for config in cutoff_models(Dtype::F64) {
        let model = potential(&config);
        let (one, _) = evaluate(&model, &primitive(3.615));
        for reps in [1, 2] {
            let crystal = fcc_supercell(29, 3.615, reps);
            let (many, forces) = evaluate(&model, &crystal);
            let per_atom = many / crystal.len() as f64;
            assert!(
                (one - per_atom).abs() < 1e-9 * one.abs().max(1e-3),
                "{:?}: primitive {one} vs {per_atom} per atom of {} atoms",
                config.kind,
                crystal.len()
            );
            assert!(forces.iter().flatten().all(|f| f.abs() < 1e-9));
        }
    }
}

#[test]
fn a_left_handed_cell_gets_the_energy_of_the_right_handed_one() {
    let mut crystal = fcc_supercell(29, 3.615, 1);
    let positions = crystal
        .positions()
        .iter()
        .enumerate()
        .map(|(a, r)| std::array::from_fn(|k| r[k] + 0.08 * ((2 * a + 3 * k) as f64).cos()))
        .collect();
    crystal.set_positions(positions).unwrap();
    let v = *crystal.cell().unwrap().vectors();
    let left = crystal
        .clone()
        .with_cell(Cell::new([v[2], v[1], v[0]]).unwrap(), [true; 3]);
    assert!(left.cell().unwrap().is_left_handed());
    for config in cutoff_models(Dtype::F64) {
        let model = potential(&config);
        let (e_right, f_right) = evaluate(&model, &crystal);
        let (e_left, f_left) = evaluate(&model, &left);
        assert!((e_right - e_left).abs() < 1e-10, "{e_right} vs {e_left}");
        assert!(f_right
            .iter()
            .flatten()
            .zip(f_left.iter().flatten())
            .all(|(a, b)| (a - b).abs() < 1e-10));
    }
}

const FAR: Vec3 = [1e6, -1e6, 1e6];

fn translated(atoms: &Atoms, by: Vec3) -> Atoms {
    let mut out = atoms.clone();
    out.set_positions(
        atoms
            .positions()
            .iter()
            .map(|r| std::array::from_fn(|k| r[k] + by[k]))
            .collect(),
    )
    .unwrap();
    out
}

/// Energy to `1e-4` relative and forces to `1e-4` of the largest force (f32 noise).
fn assert_same_prediction(model: &Potential, a: &Atoms, b: &Atoms) {
    let ((e_a, f_a), (e_b, f_b)) = (evaluate(model, a), evaluate(model, b));
    assert!(
        (e_a - e_b).abs() <= 1e-4 * e_a.abs().max(1e-2),
        "{:?}: {e_a} vs {e_b}",
        model.config.kind
    );
    let largest = f_a.iter().flatten().fold(0.0f64, |m, f| m.max(f.abs())).max(1e-3);
    for (x, y) in f_a.iter().flatten().zip(f_b.iter().flatten()) {
        assert!(
            (x - y).abs() <= 1e-4 * largest,
            "{:?}: force {x} vs {y}",
            model.config.kind
        );
    }
}

#[test]
fn f32_models_predict_a_molecule_far_from_the_origin_as_at_it() {
    // Methanol, written off the origin so that no atom sits at it.
    let methanol = Atoms::new(
        vec![6, 8, 1, 1, 1, 1],
        vec![
            [0.31, -0.2, 0.05],
            [1.74, -0.2, 0.05],
            [-0.05, 0.83, 0.05],
            [-0.05, -0.71, 0.94],
            [-0.05, -0.71, -0.84],
            [2.06, 0.71, 0.05],
        ],
    )
    .unwrap();
    let mut models = cutoff_models(Dtype::F32);
    models.push(config(ModelKind::Mpnn, None, Dtype::F32));
    models.push(config(ModelKind::Vimpnn, None, Dtype::F32));
    for config in models {
        assert_same_prediction(&potential(&config), &methanol, &translated(&methanol, FAR));
    }
}

#[test]
fn f32_models_predict_a_crystal_far_from_the_origin_as_at_it() {
    let mut crystal = fcc_supercell(29, 3.615, 1);
    let positions: Vec<Vec3> = crystal
        .positions()
        .iter()
        .enumerate()
        .map(|(a, r)| std::array::from_fn(|k| r[k] + 0.07 * ((5 * a + k) as f64).sin()))
        .collect();
    crystal.set_positions(positions).unwrap();
    // The same crystal with each atom written some hundred thousand lattice vectors from
    // the others: the edges' lattice offsets are then huge, and must cancel in f64.
    let cell = *crystal.cell().unwrap();
    let mut scattered = crystal.clone();
    scattered
        .set_positions(
            crystal
                .positions()
                .iter()
                .enumerate()
                .map(|(a, r)| {
                    let t = cell.shift([277_000 * a as i32, -150_000, 90_000 * (a as i32 % 2)]);
                    std::array::from_fn(|k| r[k] + t[k])
                })
                .collect(),
        )
        .unwrap();
    for config in cutoff_models(Dtype::F32) {
        let model = potential(&config);
        assert_same_prediction(&model, &crystal, &translated(&crystal, FAR));
        assert_same_prediction(&model, &crystal, &scattered);
    }
}
