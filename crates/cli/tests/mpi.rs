//! Data-parallel training under a real `mpirun` (OpenMPI from Debian): two ranks with the
//! global batch split between them train as one process does. Built with the `mpi` feature
//! (`cargo test --features minima-cli/mpi`, as `scripts/test.sh` runs it).
#![cfg(feature = "mpi")]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::{copper_clusters, minima, path};

fn config(dir: &Path, data: &Path) -> std::path::PathBuf {
    let config = dir.join("run.toml");
    let text = format!(
        r#"
[model]
kind = "painn"
cutoff = 4.0
[model.painn]
features = 8
layers = 2
radial_basis = 6
[data]
file = "{data}"
split = [0.67, 0.33, 0.0]
[train]
max_epochs = 3
batch_size = 5
learning_rate = 1e-3
seed = 3
[train.loss]
energy = 1.0
forces = 10.0
"#,
        data = path(data)
    );
    std::fs::write(&config, text).unwrap();
    config
}

fn mpirun(ranks: usize, args: &[&str]) {
    let out = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", &ranks.to_string()])
        .arg(env!("CARGO_BIN_EXE_minima"))
        .args(args)
        .output()
        .expect("mpirun (OpenMPI) runs: scripts/setup.sh --python installs it");
    assert!(
        out.status.success(),
        "mpirun -np {ranks} minima {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The learning curve's columns by name.
fn curve(run: &Path) -> HashMap<String, Vec<f64>> {
    let text = std::fs::read_to_string(run.join("learning_curve.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut columns: HashMap<String, Vec<f64>> = HashMap::new();
    for line in lines {
        for (name, value) in header.iter().zip(line.split(',')) {
            if let Ok(x) = value.parse() {
                columns.entry(name.to_string()).or_default().push(x);
            }
        }
    }
    columns
}

fn parameters(checkpoint: &Path) -> Vec<(String, Vec<f64>)> {
    let mut all: Vec<(String, Vec<f64>)> = tch::Tensor::read_safetensors(checkpoint)
        .unwrap()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("adam."))
        .map(|(name, t)| {
            (
                name,
                Vec::<f64>::try_from(t.to_kind(tch::Kind::Double).flatten(0, -1)).unwrap(),
            )
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

fn assert_close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-5 * scale.max(1e-12), "{what}: {x} against {y}");
    }
}

fn assert_same_run(one: &Path, two: &Path) {
    let (a, b) = (curve(one), curve(two));
    for column in [
        "train_loss",
        "train_energy",
        "train_forces",
        "validation_loss",
        "validation_force_mae",
    ] {
        assert_close(&a[column], &b[column], column);
    }
    for ((name, x), (_, y)) in parameters(&one.join("last.safetensors"))
        .iter()
        .zip(parameters(&two.join("last.safetensors")))
    {
        assert_close(x, &y, name);
    }
}

#[test]
fn two_ranks_train_as_one_process_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = copper_clusters(dir.path());
    let config = config(dir.path(), &data);
    let run = |name: &str| dir.path().join(name);
    let output = |name: &str| format!("train.output=\"{}\"", path(&run(name)));
    minima(&["train", "--config", path(&config), "--set", &output("one")]);
    mpirun(2, &["train", "--config", path(&config), "--set", &output("two")]);
    // 16 training structures in batches of 5: 3+2 and 1+0 shares, the last rank empty once.
    assert_same_run(&run("one"), &run("two"));
    let files = |name: &str| {
        let mut names: Vec<String> = std::fs::read_dir(run(name))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        files("one"),
        files("two"),
        "rank 0 alone writes, what one process writes"
    );

    // Killed after two epochs (a run of two), resumed under MPI to three: the same run.
    let resumed = output("resumed");
    for (epochs, resume) in [("train.max_epochs=2", None), ("train.max_epochs=3", Some("--resume"))] {
        let mut args = vec!["train", "--config", path(&config), "--set", &resumed, "--set", epochs];
        args.extend(resume);
        mpirun(2, &args);
    }
    assert_same_run(&run("one"), &run("resumed"));
}
