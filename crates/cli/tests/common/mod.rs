//! What the end-to-end tests share: running the binary and finding the shared QM9 archive.
// Each test file uses its own subset of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs minima, whatever the outcome.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minima"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// Runs minima, which must succeed.
pub fn minima(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "minima {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs minima expecting it to fail; returns its error, which must not be a panic.
pub fn minima_error(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "minima {args:?} should fail");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

pub fn qm9_archive() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/qm9/qm9_first10k.tar.bz2")
}

pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// fcc copper at 3.615 Å (`minima data fcc`).
pub fn copper_crystal(dir: &Path) -> PathBuf {
    let crystal = dir.join("cu.extxyz");
    minima(&[
        "data",
        "fcc",
        "--elements",
        "Cu",
        "--scales",
        "1:1:1",
        "-o",
        path(&crystal),
    ]);
    crystal
}

/// Copper clusters for small end-to-end runs: growths 0-2 (15-16 atoms) at 4 scales labelled
/// with EMT (`initial.extxyz`), and growth 3 unlabelled (`held.extxyz`).
pub fn copper_clusters(dir: &Path) -> (PathBuf, PathBuf) {
    let d = |name: &str| dir.join(name);
    minima(&[
        "data",
        "growth",
        "--elements",
        "Cu",
        "--seeds",
        "4",
        "--max-size",
        "16",
        "--scales",
        "0.95:1.15:4",
        "-o",
        path(&d("growth.extxyz")),
    ]);
    let growths = |seeds: &str, name: &str| {
        let growth = d("growth.extxyz");
        minima(&[
            "convert",
            "--from",
            "extxyz",
            path(&growth),
            "--where",
            seeds,
            "-o",
            path(&d(name)),
        ]);
    };
    growths("seed=0,1,2", "scans.extxyz");
    minima(&[
        "label",
        "--calc",
        "emt",
        "-i",
        path(&d("scans.extxyz")),
        "-o",
        path(&d("initial.extxyz")),
    ]);
    growths("seed=3", "held.extxyz");
    (d("initial.extxyz"), d("held.extxyz"))
}

/// A small loop on copper clusters with EMT ([`copper_clusters`]): growth 3 held out for
/// validation; a tiny PaiNN committee of two.
pub fn small_loop(dir: &Path) -> PathBuf {
    let d = |name: &str| dir.join(name);
    let (initial, held) = copper_clusters(dir);
    let config = d("learn.toml");
    let text = format!(
        r#"
[learn]
output = "{out}"
reference = "emt"
iterations = 2
committee = 2
jobs = 1
[learn.explore]
molecules = 3
starts = ["rattle:0.1", "scale:1.3"]
steps = 20
every = 5
md_steps = 10
md_every = 5
md_timestep = 2.0
[learn.select]
lower = 0.0
upper = 1000.0
max_frames = 12
min_rmsd = 0.01
[learn.validate]
molecules = "{held}"
count = 2
starts = ["rattle:0.05"]
steps = 1000
[model]
kind = "painn"
cutoff = 4.0
[model.painn]
features = 8
layers = 1
radial_basis = 6
[data]
file = ["{initial}"]
split = [0.67, 0.33, 0.0]
[train]
max_epochs = 2
max_minutes = 30
batch_size = 4
learning_rate = 1e-3
clock = "cpu"
[train.loss]
energy = 1.0
forces = 10.0
"#,
        out = path(&d("loop")),
        held = path(&held),
        initial = path(&initial),
    );
    std::fs::write(&config, text).unwrap();
    config
}
