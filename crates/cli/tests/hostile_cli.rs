//! Hostile conditions for the multi-frame and explore commands: a reader that stops reading
//! stdout, a bad frame among good ones, a scan whose energy has no minimum inside its range,
//! outputs that cannot be written. Nothing may panic, nothing finished may be lost, and no
//! edge of a scan may pass for a minimum.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use minima_io::extxyz;

mod common;
use common::{copper_crystal, minima, minima_error, path, run};

/// A copper dimer, an iron dimer (EMT has no iron), a copper trimer and two copper atoms on
/// top of each other: frames 1 and 3 are bad.
const MIXED: &str = "2\n\nCu 0 0 0\nCu 0 0 2.6\n\
                     2\n\nFe 0 0 0\nFe 0 0 2.5\n\
                     3\n\nCu 0 0 0\nCu 2.5 0 0\nCu 1.2 2.1 0\n\
                     2\n\nCu 0 0 0\nCu 0 0 0\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

/// The frame indices listed in a `.failed` file (`index<TAB>reason` lines).
fn failed_frames(output: &Path) -> Vec<usize> {
    let mut name = output.file_name().unwrap().to_os_string();
    name.push(".failed");
    let text = std::fs::read_to_string(output.with_file_name(name)).unwrap();
    text.lines()
        .map(|line| {
            let (index, reason) = line.split_once('\t').unwrap();
            assert!(!reason.is_empty(), "{line}");
            index.parse().unwrap()
        })
        .collect()
}

/// Runs minima with its stdout closed from the start, as `minima … | head -0` has it;
/// returns the exit status and stderr.
fn with_stdout_closed(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_minima"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (child.wait().unwrap(), stderr)
}

fn assert_quiet_end(args: &[&str]) {
    use std::os::unix::process::ExitStatusExt;
    let (status, stderr) = with_stdout_closed(args);
    assert!(
        status.success() || status.signal() == Some(13),
        "minima {args:?}: {status}: {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.to_lowercase().contains("error"),
        "minima {args:?}: {stderr}"
    );
}

#[test]
fn a_closed_stdout_is_a_quiet_end_and_outputs_are_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let crystal = copper_crystal(d);
    let cluster = write(d, "cu3.extxyz", "3\n\nCu 0 0 0\nCu 2.5 0 0\nCu 1.2 2.1 0\n");
    let methane = write(
        d,
        "methane.extxyz",
        "5\n\nC 0 0 0\nH 0.629 0.629 0.629\nH -0.629 -0.629 0.629\nH -0.629 0.629 -0.629\nH 0.629 -0.629 -0.629\n",
    );
    let labelled = d.join("labelled.extxyz");
    let relaxed = d.join("relaxed.extxyz");
    let stem = d.join("curve");
    let (merged, contributions) = (d.join("merged.extxyz"), d.join("contrib"));
    let commands: Vec<Vec<&str>> = vec![
        vec!["info", path(&crystal)],
        vec!["bonds", "-i", path(&methane)],
        vec![
            "data",
            "fcc",
            "--elements",
            "Cu",
            "--scales",
            "1:1:1",
            "-o",
            path(&crystal),
        ],
        vec!["label", "--calc", "emt", "-i", path(&cluster), "-o", path(&labelled)],
        vec!["merge", path(&labelled), "-o", path(&merged)],
        vec![
            "relax",
            "--reference",
            "emt",
            "-i",
            path(&cluster),
            "-o",
            path(&relaxed),
        ],
        vec![
            "curve",
            "--reference",
            "emt",
            "-i",
            path(&crystal),
            "--scales",
            "0.9:1.1:5",
            "-o",
            path(&stem),
        ],
        vec![
            "contributions",
            "--reference",
            "emt",
            "-i",
            path(&cluster),
            "-o",
            path(&contributions),
        ],
    ];
    for args in &commands {
        assert_quiet_end(args);
    }
    // The report was lost with the reader; the results were not.
    assert_eq!(extxyz::read_all(&relaxed).unwrap().len(), 1);
    for extension in ["csv", "json", "svg", "png"] {
        assert!(stem.with_extension(extension).exists(), "{extension}");
    }
}

#[test]
fn relax_keeps_the_frames_that_succeed_and_lists_those_that_fail() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "mixed.extxyz", MIXED);
    let output = dir.path().join("relaxed.extxyz");
    let error = minima_error(&["relax", "--reference", "emt", "-i", path(&input), "-o", path(&output)]);
    assert!(error.contains("2 of 4 frames failed"), "{error}");
    assert!(
        error.contains("mixed.extxyz") && error.contains("frame 1: EMT has no parameters for Fe"),
        "{error}"
    );
    assert!(error.contains("frame 3: atoms 0 and 1 coincide"), "{error}");
    let relaxed = extxyz::read_all(&output).unwrap();
    let formulas: Vec<String> = relaxed.iter().map(|a| a.formula()).collect();
    assert_eq!(formulas, ["Cu2", "Cu3"]);
    assert!(relaxed.iter().all(|a| a.energy().is_some()));
    assert_eq!(failed_frames(&output), [1, 3]);

    // A clean run leaves no stale list of failures behind.
    let good = write(dir.path(), "good.extxyz", "2\n\nCu 0 0 0\nCu 0 0 2.6\n");
    minima(&["relax", "--reference", "emt", "-i", path(&good), "-o", path(&output)]);
    assert!(!dir.path().join("relaxed.extxyz.failed").exists());
}

#[test]
fn bench_relax_keeps_the_molecules_that_succeed_and_lists_those_that_fail() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "mixed.extxyz", MIXED);
    let stem = dir.path().join("bench");
    let error = minima_error(&[
        "bench-relax",
        "--reference",
        "emt",
        "-i",
        path(&input),
        "--smallest",
        "4",
        "--random",
        "0",
        "-o",
        path(&stem),
    ]);
    assert!(
        error.contains("2 of 4 frames failed") && error.contains("frame 1: EMT has no parameters for Fe"),
        "{error}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stem.with_extension("json")).unwrap()).unwrap();
    let frames: Vec<u64> = json["molecules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["frame"].as_u64().unwrap())
        .collect();
    assert_eq!(frames, [0, 2]);
    assert_eq!(json["failed"].as_array().unwrap().len(), 2);
    assert_eq!(failed_frames(&stem), [1, 3]);
}

#[test]
fn predict_keeps_the_frames_that_succeed_and_lists_those_that_fail() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A model of EMT copper dimers and trimers, trained for one epoch: enough to predict.
    let clusters: String = (0..10)
        .map(|k| {
            let r = 2.2 + 0.1 * k as f64;
            format!("3\n\nCu 0 0 0\nCu {r} 0 0\nCu 0 {r} 0.3\n")
        })
        .collect();
    let clusters = write(d, "cu.extxyz", &clusters);
    let data = d.join("cu_emt.extxyz");
    minima(&["label", "--calc", "emt", "-i", path(&clusters), "-o", path(&data)]);
    let run_dir = d.join("run");
    let config = write(
        d,
        "run.toml",
        &format!(
            "[model]\nkind = \"vimpnn\"\nhidden = 8\nreadout_hidden = 8\n[model.aux]\nscale = false\n\
             [data]\nfile = {:?}\nsplit = [0.6, 0.2, 0.2]\n[train]\noutput = {:?}\nmax_epochs = 1\nbatch_size = 4\n",
            path(&data),
            path(&run_dir)
        ),
    );
    minima(&["train", "--config", path(&config)]);
    let model = run_dir.join("best.safetensors");

    // Two copper clusters around an iron dimer the model never saw.
    let molecules = extxyz::read_all(&data).unwrap();
    let iron = extxyz::read_str("2\n\nFe 0 0 0\nFe 0 0 2.5\n", "fe").unwrap().remove(0);
    let mixed = d.join("mixed.extxyz");
    extxyz::write_all(&mixed, &[molecules[0].clone(), iron, molecules[1].clone()]).unwrap();
    let output = d.join("predicted.extxyz");
    let error = minima_error(&[
        "predict",
        "--model",
        path(&model),
        "-i",
        path(&mixed),
        "-o",
        path(&output),
    ]);
    assert!(
        error.contains("1 of 3 frames failed") && error.contains("frame 1"),
        "{error}"
    );
    assert!(error.contains("Fe"), "{error}");
    let predicted = extxyz::read_all(&output).unwrap();
    assert_eq!(predicted.len(), 2);
    assert_eq!(predicted[1].numbers(), molecules[1].numbers());
    assert!(predicted.iter().all(|a| a.energy().is_some_and(f64::is_finite)));
    assert_eq!(failed_frames(&output), [1]);

    // An output that cannot be written is named.
    let blocker = write(d, "not_a_folder", "");
    let unwritable = blocker.join("predicted.extxyz");
    let error = minima_error(&[
        "predict",
        "--model",
        path(&model),
        "-i",
        path(&data),
        "-o",
        path(&unwritable),
    ]);
    assert!(error.contains(path(&unwritable)), "{error}");
}

#[test]
fn a_scan_whose_energy_only_rises_or_only_falls_reports_no_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let crystal = copper_crystal(dir.path());
    // EMT's copper minimum lies at scale 0.993 of 3.615 Å: above 1 the energy only rises,
    // below 0.95 it only falls.
    for (scales, edge) in [("1.0:1.2:5", "1"), ("0.8:0.95:4", "0.95")] {
        let stem = dir.path().join("curve");
        let out = minima(&[
            "curve",
            "--reference",
            "emt",
            "-i",
            path(&crystal),
            "--scales",
            scales,
            "-o",
            path(&stem),
        ]);
        let report = String::from_utf8_lossy(&out.stdout);
        let expected = format!(
            "emt: no minimum inside the scanned range (energy falls toward the edge at scale {edge}); widen the scan"
        );
        assert!(report.contains(&expected), "{report}");
        assert!(!report.contains("minimum at scale"), "{report}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(stem.with_extension("json")).unwrap()).unwrap();
        assert!(json["curves"][0]["minimum"].is_null(), "{json}");
        let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
        assert!(!svg.contains("emt minimum") && svg.contains("no minimum in range"));
    }
}

#[test]
fn outputs_that_cannot_be_written_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let crystal = copper_crystal(d);
    let cluster = write(d, "cu2.extxyz", "2\n\nCu 0 0 0\nCu 0 0 2.6\n");
    // Root ignores permissions: a "folder" that is a regular file fails for everyone.
    let blocker = write(d, "not_a_folder", "");
    let relaxed = blocker.join("relaxed.extxyz");
    let error = minima_error(&[
        "relax",
        "--reference",
        "emt",
        "-i",
        path(&cluster),
        "-o",
        path(&relaxed),
    ]);
    assert!(error.contains(path(&relaxed)), "{error}");
    let trajectory = blocker.join("steps.extxyz");
    let error = minima_error(&[
        "relax",
        "--reference",
        "emt",
        "-i",
        path(&cluster),
        "-o",
        path(&d.join("ok.extxyz")),
        "--trajectory",
        path(&trajectory),
    ]);
    assert!(error.contains(path(&trajectory)), "{error}");

    let stem = blocker.join("curve");
    let error = minima_error(&["curve", "--reference", "emt", "-i", path(&crystal), "-o", path(&stem)]);
    assert!(error.contains(path(&blocker)), "{error}");
    // A figure that cannot take the place of what is there (a folder).
    let stem = d.join("curve");
    std::fs::create_dir(stem.with_extension("svg")).unwrap();
    let error = minima_error(&[
        "curve",
        "--reference",
        "emt",
        "-i",
        path(&crystal),
        "--scales",
        "0.9:1.1:5",
        "-o",
        path(&stem),
    ]);
    assert!(error.contains(path(&stem.with_extension("svg"))), "{error}");
    // An output that is a folder.
    let folder = d.join("folder.extxyz");
    std::fs::create_dir(&folder).unwrap();
    let out = run(&["relax", "--reference", "emt", "-i", path(&cluster), "-o", path(&folder)]);
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && error.contains(path(&folder)), "{error}");
}
