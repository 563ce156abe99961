//! Learning tests: each model overfits a tiny dataset to near-zero loss (energies of real QM9
//! molecules; energies and forces of Morse clusters, trained through second-order autograd),
//! and a run interrupted and resumed ends exactly where an uninterrupted one does.

use std::path::{Path, PathBuf};

use minima_atoms::{Atoms, Value};
use minima_model::config::ModelKind;
use minima_train::RunConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn qm9_archive() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/qm9/qm9_first10k.tar.bz2")
}

/// The first ten QM9 molecules, their U0 as energy.
fn qm9_ten(dir: &Path) -> PathBuf {
    let frames = minima_io::qm9::read(&qm9_archive(), minima_io::qm9::Selection { max_index: Some(10) }).unwrap();
    assert_eq!(frames.len(), 10);
    let path = dir.join("qm9_ten.extxyz");
    minima_io::extxyz::write_all(&path, &frames).unwrap();
    path
}

/// Ten random Cu/Ag clusters with Morse-pair energies and their analytic forces.
fn morse_clusters(dir: &Path) -> PathBuf {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut frames = Vec::new();
    while frames.len() < 10 {
        let positions: Vec<[f64; 3]> = (0..6)
            .map(|_| std::array::from_fn(|_| rng.random_range(0.0..4.5)))
            .collect();
        let numbers: Vec<u8> = (0..6).map(|i| if i % 3 == 0 { 47 } else { 29 }).collect();
        let mut atoms = Atoms::new(numbers.clone(), positions.clone()).unwrap();
        if atoms.closest_pair().unwrap().2 < 2.0 {
            continue;
        }
        let (mut energy, mut forces) = (0.0, vec![0.0; 18]);
        for i in 0..6 {
            for j in i + 1..6 {
                let depth = if numbers[i] == numbers[j] { 0.5 } else { 0.4 };
                let d: [f64; 3] = std::array::from_fn(|k| positions[j][k] - positions[i][k]);
                let r = minima_atoms::cell::norm(d);
                let x = (-1.4 * (r - 2.6)).exp();
                energy += depth * ((1.0 - x).powi(2) - 1.0);
                let de_dr = depth * 2.0 * (1.0 - x) * 1.4 * x;
                for k in 0..3 {
                    forces[3 * i + k] += de_dr * d[k] / r;
                    forces[3 * j + k] -= de_dr * d[k] / r;
                }
            }
        }
        atoms.set_energy(energy);
        atoms.set_forces(forces).unwrap();
        atoms.info.insert("scale".into(), Value::Float(1.0));
        frames.push(atoms);
    }
    let path = dir.join("morse.extxyz");
    minima_io::extxyz::write_all(&path, &frames).unwrap();
    path
}

/// A small, fast configuration that trains and validates on the same ten structures.
fn overfit_config(data: &Path, out: &Path, kind: ModelKind) -> RunConfig {
    let mut config = RunConfig::default();
    config.data.train = Some(data.to_path_buf());
    config.data.validation = Some(data.to_path_buf());
    config.model.kind = kind;
    config.model.hidden = 24;
    config.model.readout_hidden = 24;
    config.train.output = out.to_path_buf();
    config.train.batch_size = 10;
    config.train.learning_rate = 3e-3;
    config.train.lr_patience = 20;
    config.train.max_epochs = 400;
    config.train.early_stop = 400;
    config.train.seed = 4;
    config
}

fn curve(out: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(out.join("learning_curve.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

/// Column `k` of the curve as numbers.
fn column(rows: &[Vec<String>], k: usize) -> Vec<f64> {
    rows.iter().map(|r| r[k].parse().unwrap()).collect()
}

#[test]
fn every_model_overfits_ten_qm9_molecules() {
    let dir = tempfile::tempdir().unwrap();
    let data = qm9_ten(dir.path());
    for kind in [ModelKind::Mpnn, ModelKind::Vimpnn] {
        let out = dir.path().join(format!("{kind:?}"));
        let mut config = overfit_config(&data, &out, kind);
        // Equilibrium QM9 frames record no scale, so the scale distribution cannot be a target.
        config.model.aux.scale = false;
        let outcome = minima_train::train(&config, false).unwrap();
        let rows = curve(&out);
        assert_eq!(rows.len(), outcome.epochs);
        let energy = column(&rows, 3);
        let best_mae = column(&rows, 7).into_iter().fold(f64::INFINITY, f64::min);
        assert!(energy[0] > 0.1, "{kind:?}: starts at {}", energy[0]);
        // Near zero: an RMS error of a few percent of the residual spread, a few meV here.
        assert!(
            energy.last().unwrap() < &2e-3,
            "{kind:?}: normalised energy loss ends at {} (from {})",
            energy.last().unwrap(),
            energy[0]
        );
        assert!(best_mae < 0.02, "{kind:?}: best validation MAE {best_mae} eV");
    }
}

#[test]
fn vimpnn_learns_energies_and_forces_through_second_order_autograd() {
    let dir = tempfile::tempdir().unwrap();
    let data = morse_clusters(dir.path());
    let out = dir.path().join("forces");
    let mut config = overfit_config(&data, &out, ModelKind::Vimpnn);
    config.model.cutoff = Some(5.0);
    config.train.force_weight = 1.0;
    config.train.max_epochs = 300;
    minima_train::train(&config, false).unwrap();
    let rows = curve(&out);
    let forces = column(&rows, 4);
    let force_mae = column(&rows, 8);
    assert!(
        forces.last().unwrap() < &(0.05 * forces[0]),
        "force loss {} → {}",
        forces[0],
        forces.last().unwrap()
    );
    assert!(
        force_mae.last().unwrap() < &(0.25 * force_mae[0]),
        "force MAE {force_mae:?}"
    );
}

#[test]
fn a_resumed_run_ends_where_an_uninterrupted_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = qm9_ten(dir.path());
    let straight = dir.path().join("straight");
    let interrupted = dir.path().join("interrupted");
    let mut config = overfit_config(&data, &straight, ModelKind::Vimpnn);
    config.model.aux.scale = false;
    config.train.batch_size = 3;
    config.train.max_epochs = 6;
    config.train.lr_patience = 0;
    minima_train::train(&config, false).unwrap();

    config.train.output = interrupted.clone();
    config.train.max_epochs = 3;
    minima_train::train(&config, false).unwrap();
    config.train.max_epochs = 6;
    minima_train::train(&config, true).unwrap();

    let losses = |out: &Path| {
        let rows = curve(out);
        (1..=7).map(|k| column(&rows, k)).collect::<Vec<_>>()
    };
    assert_eq!(losses(&straight), losses(&interrupted));
    for file in ["best.safetensors", "last.safetensors"] {
        let a = std::fs::read(straight.join(file)).unwrap();
        let b = std::fs::read(interrupted.join(file)).unwrap();
        assert!(a == b, "{file} differs after resuming");
    }
}

#[test]
fn bad_configurations_and_data_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = qm9_ten(dir.path());
    let out = dir.path().join("run");
    let mut config = overfit_config(&data, &out, ModelKind::Vimpnn);
    // The scale head needs frames that record their scale.
    let error = minima_train::train(&config, false).unwrap_err();
    assert!(format!("{error:#}").contains("scale"), "{error:#}");
    // Forces requested from data without forces.
    config.model.aux.scale = false;
    config.train.force_weight = 1.0;
    let error = minima_train::train(&config, false).unwrap_err();
    assert!(format!("{error:#}").contains("no forces"), "{error:#}");
    // Resuming a run that never started.
    config.train.output = dir.path().join("never");
    let error = minima_train::train(&config, true).unwrap_err();
    assert!(format!("{error:#}").contains("--resume"), "{error:#}");
}
