//! What the training tests share: the QM9 molecules they learn and a small configuration.
// Each test file uses its own subset of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use minima_atoms::{Atoms, Value};
use minima_model::config::ModelKind;
use minima_train::RunConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn qm9_archive() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/qm9/qm9_first10k.tar.bz2")
}

/// The first ten QM9 molecules, their U0 as energy.
pub fn qm9_ten(dir: &Path) -> PathBuf {
    let frames = minima_io::qm9::read(
        &qm9_archive(),
        minima_io::qm9::Selection {
            max_index: Some(10),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(frames.len(), 10);
    let path = dir.join("qm9_ten.extxyz");
    minima_io::extxyz::write_all(&path, &frames).unwrap();
    path
}

/// A small, fast configuration that trains and validates on the same ten structures.
pub fn overfit_config(data: &Path, out: &Path, kind: ModelKind) -> RunConfig {
    let mut config = RunConfig::default();
    config.data.train = Some(data.to_path_buf());
    config.data.validation = Some(data.to_path_buf());
    config.model.kind = kind;
    config.model.hidden = 24;
    config.model.readout_hidden = 24;
    config.train.output = out.to_path_buf();
    if kind == ModelKind::Vimpnn {
        // The VIMPNN paper's auxiliary weight α.
        config.train.loss.insert("aux".into(), 0.3);
    }
    config.train.batch_size = 10;
    config.train.learning_rate = 3e-3;
    config.train.lr_patience = 20;
    config.train.max_epochs = 400;
    config.train.early_stop = 400;
    config.train.seed = 4;
    config
}

/// The learning curve: its header and rows.
pub struct Curve {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

pub fn curve(out: &Path) -> Curve {
    let text = std::fs::read_to_string(out.join("learning_curve.csv")).unwrap();
    let mut lines = text.lines().map(|l| l.split(',').map(String::from).collect::<Vec<_>>());
    Curve {
        header: lines.next().unwrap(),
        rows: lines.collect(),
    }
}

impl Curve {
    /// The column `name` as numbers.
    pub fn column(&self, name: &str) -> Vec<f64> {
        let k = self
            .header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"));
        self.rows.iter().map(|r| r[k].parse().unwrap()).collect()
    }

    /// Every loss and metric column (all but epoch, learning rate and time).
    pub fn losses(&self) -> Vec<Vec<f64>> {
        self.header
            .iter()
            .filter(|h| h.starts_with("train_") || h.starts_with("validation_") && !h.ends_with("force_mae"))
            .map(|h| self.column(h))
            .collect()
    }
}

/// Ten random Cu/Ag clusters with Morse-pair energies and their analytic forces.
pub fn morse_clusters(dir: &Path) -> PathBuf {
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
