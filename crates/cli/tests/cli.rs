//! The `minima` binary end to end: real data in, files and messages out, and one clear error
//! line (never a panic) for bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{qm9_archive, run};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn convert_first(dir: &Path, n: &str) -> PathBuf {
    let out = dir.join("q.extxyz");
    let result = run(&[
        "convert",
        "--from",
        "qm9",
        qm9_archive().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--first",
        n,
    ]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    out
}

#[test]
fn convert_info_and_bonds_on_qm9() {
    let dir = tempfile::tempdir().unwrap();
    let out = convert_first(dir.path(), "30");
    let info = run(&["info", out.to_str().unwrap()]);
    assert!(info.status.success());
    let report = text(&info.stdout);
    assert!(report.contains("frames    30 (0 periodic, 30 open)"), "{report}");
    assert!(report.contains("energy "), "{report}");
    assert!(report.contains("qm9_index"), "{report}");

    let bonds = run(&["bonds", "-i", out.to_str().unwrap(), "--json"]);
    assert!(bonds.status.success(), "{}", text(&bonds.stderr));
    let lines: Vec<serde_json::Value> = text(&bonds.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 30);
    // Methane: four C–H single bonds.
    assert_eq!(
        lines[0],
        serde_json::json!([[0, 1, 1.0], [0, 2, 1.0], [0, 3, 1.0], [0, 4, 1.0]])
    );
    // Molecule 5 is HCN: a triple bond.
    assert!(lines[4].as_array().unwrap().iter().any(|b| b[2] == 3.0));
}

#[test]
fn convert_selects_by_index_and_stride() {
    let dir = tempfile::tempdir().unwrap();
    let indices = |extra: &[&str], source: &str, format: &str| -> Vec<i64> {
        let out = dir.path().join("subset.extxyz");
        let mut args = vec!["convert", "--from", format, source, "-o", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let result = run(&args);
        assert!(result.status.success(), "{}", text(&result.stderr));
        std::fs::read_to_string(&out)
            .unwrap()
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("qm9_index=").map(|i| i.parse().unwrap()))
            .collect()
    };
    let archive = qm9_archive();
    let qm9 = archive.to_str().unwrap();
    // QM9 indices from 1: after 20 and up to 40, every 7th.
    assert_eq!(
        indices(&["--first", "40", "--after", "20", "--every", "7"], qm9, "qm9"),
        [21, 28, 35]
    );
    // extxyz counts frames: the 30 molecules' frames 2, 5, 8 after the first two.
    let all = convert_first(dir.path(), "30");
    let frames = indices(
        &["--after", "2", "--every", "3", "--first", "11"],
        all.to_str().unwrap(),
        "extxyz",
    );
    assert_eq!(frames, [3, 6, 9]);
    // --where keeps frames by an info value (numbers as numbers), before the other selections.
    let picked = indices(
        &["--where", "qm9_index=4,7.0,12,99", "--every", "2"],
        all.to_str().unwrap(),
        "extxyz",
    );
    assert_eq!(picked, [4, 12]);
    let both = indices(
        &["--where", "qm9_index=4,7", "--where", "equilibrium=T"],
        all.to_str().unwrap(),
        "extxyz",
    );
    assert_eq!(both, [4, 7]);
    assert!(indices(&["--where", "equilibrium=F"], qm9, "qm9").is_empty());
    let malformed = run(&[
        "convert",
        "--from",
        "qm9",
        qm9,
        "-o",
        "x.extxyz",
        "--where",
        "equilibrium",
    ]);
    assert!(!malformed.status.success());
    assert!(
        text(&malformed.stderr).contains("expected KEY=VALUE"),
        "{}",
        text(&malformed.stderr)
    );
    assert!(
        !run(&["convert", "--from", "qm9", qm9, "-o", "x.extxyz", "--every", "0"])
            .status
            .success()
    );
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let out = convert_first(dir.path(), "2000");
    let mut child = Command::new(env!("CARGO_BIN_EXE_minima"))
        .args(["bonds", "-i", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // stdout is dropped here: the reader is gone, as with `| head`.
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn extxyz_round_trips_through_convert() {
    let dir = tempfile::tempdir().unwrap();
    let first = convert_first(dir.path(), "10");
    let second = dir.path().join("again.extxyz");
    let result = run(&[
        "convert",
        "--from",
        "extxyz",
        first.to_str().unwrap(),
        "-o",
        second.to_str().unwrap(),
    ]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    assert_eq!(
        std::fs::read_to_string(&first).unwrap(),
        std::fs::read_to_string(&second).unwrap()
    );
}

#[test]
fn bad_input_gives_one_clear_error_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "truncated.extxyz",
            "3\n\nH 0 0 0\nH 0 0 1\n",
            "truncated.extxyz: frame 0, line 4: file ends after 2 of 3 atoms",
        ),
        (
            "nan.extxyz",
            "1\n\nH 0 nan 0\n",
            "nan.extxyz: frame 0, line 3: atom 0, column pos: non-finite number",
        ),
        (
            "element.extxyz",
            "1\n\nQq 0 0 0\n",
            "element.extxyz: frame 0, line 3: atom 0: unknown element symbol \"Qq\"",
        ),
        (
            "cell.extxyz",
            "1\nLattice=\"1 0 0 2 0 0 0 0 1\"\nH 0 0 0\n",
            "cell.extxyz: frame 0, line 2: Lattice: cell is singular",
        ),
        ("empty.extxyz", "", "empty.extxyz: empty file"),
    ];
    for (name, content, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        for command in [
            vec!["info", path.to_str().unwrap()],
            vec!["bonds", "-i", path.to_str().unwrap()],
        ] {
            let result = run(&command);
            assert_eq!(result.status.code(), Some(1), "{command:?}");
            let stderr = text(&result.stderr);
            assert!(stderr.contains(expected), "{command:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
        }
    }
    // A bad frame stops a conversion, and no partial output is left behind.
    let bad = dir.path().join("second_bad.extxyz");
    std::fs::write(&bad, "1\n\nH 0 0 0\n1\n\nH 0 0\n").unwrap();
    let out = dir.path().join("never.extxyz");
    let result = run(&[
        "convert",
        "--from",
        "extxyz",
        bad.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(result.status.code(), Some(1));
    assert!(
        text(&result.stderr).contains("second_bad.extxyz: frame 1, line 6"),
        "{}",
        text(&result.stderr)
    );
    assert!(!out.exists());

    let missing = run(&["info", "/nonexistent.extxyz"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("/nonexistent.extxyz: cannot open"));
}

#[test]
fn train_eval_predict_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = convert_first(dir.path(), "60");
    let run_dir = dir.path().join("run");
    let config = dir.path().join("run.toml");
    std::fs::write(
        &config,
        format!(
            "[model]\nkind = \"vimpnn\"\nhidden = 16\nreadout_hidden = 16\n[model.aux]\nscale = false\n\
             [data]\nfile = {:?}\nsplit = [0.6, 0.2, 0.2]\n[train]\noutput = {:?}\nmax_epochs = 3\nlearning_rate = 1e-3\n",
            data.to_str().unwrap(),
            run_dir.to_str().unwrap()
        ),
    )
    .unwrap();
    let result = run(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--set",
        "train.batch_size=8",
    ]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    assert!(
        text(&result.stdout).contains("trained 3 epochs"),
        "{}",
        text(&result.stdout)
    );
    let curve = std::fs::read_to_string(run_dir.join("learning_curve.csv")).unwrap();
    assert_eq!(curve.lines().count(), 4);

    let model = run_dir.join("best.safetensors");
    let test_set = run_dir.join("test.extxyz");
    let json = dir.path().join("eval.json");
    let result = run(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        test_set.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in ["energy", "energy_per_atom"] {
        for metric in ["mae", "mse", "re"] {
            assert!(
                report[key][metric]["mean"].is_f64() && report[key][metric]["std"].is_f64(),
                "{report}"
            );
        }
    }
    assert!(report["by_elements"].as_object().is_some_and(|m| !m.is_empty()));
    assert!(report["by_size"].as_object().is_some_and(|m| !m.is_empty()));

    let predicted = dir.path().join("predicted.extxyz");
    let result = run(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "-i",
        test_set.to_str().unwrap(),
        "-o",
        predicted.to_str().unwrap(),
    ]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let frames = minima_io::extxyz::read_all(&predicted).unwrap();
    assert!(!frames.is_empty());
    for atoms in &frames {
        let contributions = atoms.float_array("energies", 1).unwrap();
        let sum: f64 = contributions.iter().sum();
        assert!((sum - atoms.energy().unwrap()).abs() < 1e-3 * sum.abs().max(1.0));
        assert_eq!(atoms.forces().unwrap().len(), 3 * atoms.len());
    }

    // A checkpoint that is not there, and a model asked about an element it never saw.
    let result = run(&[
        "eval",
        "--model",
        "nowhere.safetensors",
        "--data",
        test_set.to_str().unwrap(),
    ]);
    assert!(!result.status.success() && text(&result.stderr).starts_with("error: "));
    let copper = dir.path().join("cu.extxyz");
    std::fs::write(&copper, "1\nenergy=-1.0 Properties=species:S:1:pos:R:3\nCu 0 0 0\n").unwrap();
    let result = run(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        copper.to_str().unwrap(),
    ]);
    assert!(text(&result.stderr).contains("not Cu"), "{}", text(&result.stderr));
}
