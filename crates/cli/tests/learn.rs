//! Committees and `minima learn`, end to end through the binary: a committee's mean and spread,
//! mismatched members refused, and the active-learning loop killed mid-way and rerun.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{minima, minima_error, path, small_loop};
use minima_atoms::{Atoms, Value};
use minima_io::extxyz;

fn models() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

#[test]
fn a_committee_predicts_its_members_mean_and_their_spread() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    let water = Atoms::new(
        vec![8, 1, 1, 6, 1, 1, 1, 1],
        vec![
            [0.0, 0.0, 0.12],
            [0.0, 0.76, -0.47],
            [0.0, -0.76, -0.47],
            [3.0, 0.0, 0.0],
            [3.63, 0.63, 0.63],
            [2.37, -0.63, 0.63],
            [2.37, 0.63, -0.63],
            [3.63, -0.63, -0.63],
        ],
    )
    .unwrap();
    extxyz::write_all(&d("in.extxyz"), &[water]).unwrap();
    let (a, b) = (
        models().join("molecules.safetensors"),
        models().join("molecules-round0.safetensors"),
    );
    let input = path(&d("in.extxyz")).to_string();
    let mut members = Vec::new();
    for (model, out) in [(&a, "a.extxyz"), (&b, "b.extxyz")] {
        minima(&["predict", "--model", path(model), "-i", &input, "-o", path(&d(out))]);
        members.push(extxyz::read_all(&d(out)).unwrap().remove(0));
    }
    let committee = |command: &str, output: &str, more: &[&str]| {
        let mut args = vec![
            command,
            "--model",
            path(&a),
            "--model",
            path(&b),
            "-i",
            &input,
            "-o",
            output,
        ];
        args.extend(more);
        minima(&args);
    };
    committee("predict", path(&d("both.extxyz")), &[]);
    let both = extxyz::read_all(&d("both.extxyz")).unwrap().remove(0);
    let energies: Vec<f64> = members.iter().map(|m| m.energy().unwrap()).collect();
    assert!(
        (energies[0] - energies[1]).abs() > 1e-4,
        "two different models: {energies:?}"
    );
    let mean = (energies[0] + energies[1]) / 2.0;
    assert!((both.energy().unwrap() - mean).abs() < 1e-9);
    let Some(Value::Float(energy_std)) = both.info.get("energy_std") else {
        panic!("no energy_std: {:?}", both.info)
    };
    assert!((energy_std - (energies[0] - energies[1]).abs() / 2.0).abs() < 1e-9);
    let forces: Vec<&[f64]> = members.iter().map(|m| m.forces().unwrap()).collect();
    let Some(minima_atoms::PerAtom {
        width: 1,
        data: minima_atoms::ArrayData::Float(spread),
    }) = both.array("forces_std")
    else {
        panic!("no forces_std per atom")
    };
    for atom in 0..8 {
        // Two members: each lies |F_a − F_b|/2 from the mean.
        let difference: f64 = (0..3)
            .map(|c| (forces[0][3 * atom + c] - forces[1][3 * atom + c]).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((spread[atom] - difference / 2.0).abs() < 1e-9, "atom {atom}");
    }
    let Some(Value::Float(largest)) = both.info.get("max_force_std") else {
        panic!("no max_force_std")
    };
    assert_eq!(*largest, spread.iter().copied().fold(0.0, f64::max));

    // The same committee relaxes: its trajectory carries the spread of every step.
    committee("relax", path(&d("relaxed.extxyz")), &["--steps", "5"]);
    let relaxed = extxyz::read_all(&d("relaxed.extxyz")).unwrap();
    assert!(relaxed[0].info.contains_key("max_force_std"), "{:?}", relaxed[0].info);
}

#[test]
fn committee_members_of_other_elements_or_cutoffs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.extxyz");
    extxyz::write_all(
        &input,
        &[Atoms::new(vec![29, 29], vec![[0.0; 3], [2.5, 0.0, 0.0]]).unwrap()],
    )
    .unwrap();
    let (metals, molecules) = (
        models().join("metals.safetensors"),
        models().join("molecules.safetensors"),
    );
    let error = minima_error(&[
        "relax",
        "--model",
        path(&metals),
        "--model",
        path(&molecules),
        "-i",
        path(&input),
        "-o",
        path(&dir.path().join("out.extxyz")),
    ]);
    assert!(
        error.contains("metals.safetensors")
            && error.contains("molecules.safetensors")
            && error.contains("same elements with the same cutoff"),
        "{error}"
    );
}

fn read(path: &Path) -> Vec<Atoms> {
    extxyz::read_all(path).unwrap()
}

#[test]
fn learn_killed_at_any_point_resumes_with_nothing_lost_or_labelled_twice() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_loop(dir.path());
    let out = dir.path().join("loop");

    // Uninterrupted.
    let said = minima(&["learn", "--config", path(&config)]);
    let report = String::from_utf8_lossy(&said.stdout);
    assert!(report.contains("stopped: reached learn.iterations = 2"), "{report}");
    let csv = std::fs::read_to_string(out.join("learn.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "a header and two iterations:\n{csv}");
    let selected = read(&out.join("iter-0/selected.extxyz"));
    let labelled = read(&out.join("iter-0/labelled.extxyz"));
    assert!(
        !selected.is_empty() && selected.len() <= 12,
        "{} selected",
        selected.len()
    );
    assert_eq!(labelled.len(), selected.len(), "every selected frame labelled once");
    assert!(labelled.iter().all(|f| f.energy().is_some() && f.forces().is_some()));
    let second: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("iter-1/iteration.json")).unwrap()).unwrap();
    assert_eq!(second["added_frames"], labelled.len(), "iteration 1 trained on them");
    let first: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("iter-0/iteration.json")).unwrap()).unwrap();
    assert!(first["wall_minutes"].as_f64().unwrap() > 0.0, "{first}");
    for member in ["member-0", "member-1"] {
        assert!(out
            .join("iter-1/committee")
            .join(member)
            .join("best.safetensors")
            .exists());
    }
    // A rerun of a finished loop redoes nothing.
    let before = std::fs::metadata(out.join("iter-0/labelled.extxyz"))
        .unwrap()
        .modified()
        .unwrap();
    minima(&["learn", "--config", path(&config)]);
    assert_eq!(
        std::fs::metadata(out.join("iter-0/labelled.extxyz"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );

    // Killed at several points (as soon as each stage's first file appears), then rerun.
    let positions = |frames: &[Atoms]| -> Vec<String> {
        let mut p: Vec<String> = frames.iter().map(|f| format!("{:?}", f.positions())).collect();
        p.sort();
        p
    };
    for (stage, marker) in [
        ("training", "iter-0/committee/member-1"),
        ("exploration", "iter-0/validation.json"),
        ("labelling", "iter-0/selection.json"),
        ("second iteration", "iter-1/committee/member-0"),
    ] {
        std::fs::remove_dir_all(&out).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_minima"))
            .args(["learn", "--config", path(&config)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while !out.join(marker).exists() && started.elapsed() < Duration::from_secs(300) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Command::new("kill")
            .args(["-9", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap();
        minima(&["learn", "--config", path(&config)]);
        let again = read(&out.join("iter-0/labelled.extxyz"));
        assert_eq!(
            positions(&again),
            positions(&labelled),
            "killed during {stage}: the same frames labelled, each once"
        );
        let csv = std::fs::read_to_string(out.join("learn.csv")).unwrap();
        assert_eq!(csv.lines().count(), 3, "killed during {stage}:\n{csv}");
    }
}
