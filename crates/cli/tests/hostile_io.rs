//! Hostile input and write faults through the binary: one short error line naming file, frame
//! and line (or the output it could not write), a non-zero exit, no panic, nothing half-written.

use std::path::{Path, PathBuf};

mod common;
use common::{minima, minima_error, path};

const GOOD: &str = "2\nenergy=-1.5\nH 0 0 0\nH 0 0 0.74\n";

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

/// A fresh folder holding one input file.
fn input_file(name: &str, text: impl AsRef<[u8]>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), name, text);
    (dir, file)
}

/// `minima data split` of `input` by the qm9 scheme into `out_dir`, with `extra` options.
fn split_args<'a>(input: &'a Path, out_dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "data",
        "split",
        "-i",
        path(input),
        "--scheme",
        "qm9",
        "--out-dir",
        path(out_dir),
    ];
    args.extend(extra);
    args
}

/// One line of stderr, short enough to read.
fn assert_one_short_line(stderr: &str) {
    assert!(
        stderr.len() < 400,
        "{} bytes of stderr: {}",
        stderr.len(),
        &stderr[..400.min(stderr.len())]
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn a_file_without_newlines_gives_one_short_error() {
    let (dir, input) = input_file("one_line.extxyz", vec![b'7'; 12 << 20]);
    let out = dir.path().join("out.extxyz");
    for args in [
        vec!["info", path(&input)],
        vec!["convert", "--from", "extxyz", path(&input), "-o", path(&out)],
        split_args(&input, &out, &[]),
    ] {
        let err = minima_error(&args);
        assert!(
            err.contains(&format!("{}: frame 0, line 1: line is longer", input.display())),
            "{err}"
        );
        assert_one_short_line(&err);
    }
    assert!(!out.exists());
}

#[test]
fn an_unknown_element_is_reported_on_its_own_line() {
    // Frame 1's atoms are on lines 7, 8 and 9; the second is unknown.
    let (dir, input) = input_file("e.extxyz", format!("{GOOD}3\n\nO 0 0 0\nQq 0 0 1\nH 0 1 0\n"));
    let out = dir.path().join("out.extxyz");
    let err = minima_error(&["convert", "--from", "extxyz", path(&input), "-o", path(&out)]);
    assert!(
        err.contains("e.extxyz: frame 1, line 8: atom 1: unknown element symbol \"Qq\""),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn data_split_refuses_fractions_that_do_not_sum_to_one() {
    let (dir, input) = input_file("g.extxyz", GOOD.repeat(20));
    let out = dir.path().join("split");
    let split = |fractions: &str| {
        let flag = format!("--fractions={fractions}");
        minima_error(&split_args(&input, &out, &[&flag]))
    };
    let err = split("0.8,0.1,0.2");
    assert!(err.contains("[0.8, 0.1, 0.2]") && err.contains("sum to 1.1"), "{err}");
    assert_one_short_line(&err);
    assert!(split("0.5,0.2,0.2").contains("sum to 0.9"));
    assert!(split("-0.1,0.6,0.5").contains("-0.1 is negative"));
    assert!(split("nan,0.5,0.5").contains("NaN is not a finite number"));
    assert!(split("0.5,0.5").contains("three numbers"));
    assert!(!out.exists());

    minima(&split_args(&input, &out, &["--fractions", "0.5,0.25,0.25"]));
    let count = |name: &str| {
        std::fs::read_to_string(out.join(name))
            .unwrap()
            .matches("energy=")
            .count()
    };
    assert_eq!(
        (count("train.extxyz"), count("validation.extxyz"), count("test.extxyz")),
        (10, 5, 5)
    );
    let record = std::fs::read_to_string(out.join("split.json")).unwrap();
    assert!(record.contains("0.25"), "{record}");
}

#[test]
fn writers_name_the_output_they_cannot_write() {
    let (dir, input) = input_file("in.extxyz", GOOD);
    // Tests run as root, which ignores permissions: a parent that is a regular file fails
    // for everyone.
    let file = write(dir.path(), "a_file", "");
    for name in ["out.extxyz", "out.extxyz.bz2"] {
        let target = file.join(name);
        let err = minima_error(&["convert", "--from", "extxyz", path(&input), "-o", path(&target)]);
        assert!(err.contains(&format!("cannot write {}", target.display())), "{err}");
        assert_one_short_line(&err);
        let err = minima_error(&[
            "data",
            "fcc",
            "--elements",
            "Cu",
            "--scales",
            "1:1:1",
            "-o",
            path(&target),
        ]);
        assert!(err.contains(&target.display().to_string()), "{err}");
    }
    let target = file.join("split");
    let err = minima_error(&split_args(&input, &target, &[]));
    assert!(err.contains(&target.display().to_string()), "{err}");
    assert_one_short_line(&err);
}

#[test]
fn info_counts_non_finite_energies_apart() {
    let (_dir, input) = input_file("n.extxyz", format!("{GOOD}2\nenergy=nan\nH 0 0 0\nH 0 0 0.74\n"));
    let out = minima(&["info", path(&input)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("energy    -1.500000 to -1.500000 eV (1 frames non-finite)"),
        "{stdout}"
    );
}

/// A training run on labelled data with a fault: it stops before training, naming the frame.
fn train_error(dir: &Path, data: &str, split: &str) -> String {
    let input = write(dir, "train.extxyz", data);
    let config = write(
        dir,
        "run.toml",
        format!(
            "[model]\nkind = \"vimpnn\"\nhidden = 8\nreadout_hidden = 8\n[model.aux]\nscale = false\n\
             [data]\nfile = {:?}\nsplit = {split}\n[train]\noutput = {:?}\nmax_epochs = 1\n",
            path(&input),
            path(&dir.join("run"))
        ),
    );
    minima_error(&["train", "--config", path(&config)])
}

#[test]
fn training_refuses_non_finite_labels_empty_frames_and_bad_fractions() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("{GOOD}{GOOD}2\nenergy=nan\nH 0 0 0\nH 0 0 0.74\n{}", GOOD.repeat(7));
    let err = train_error(dir.path(), &data, "[0.6, 0.2, 0.2]");
    assert!(
        err.contains("train.extxyz: frame 2, line 10: label energy is not finite"),
        "{err}"
    );
    assert!(!err.contains("learning_rate"), "{err}");

    let data = format!(
        "{GOOD}2\nenergy=1.0 Properties=species:S:1:pos:R:3:forces:R:3\nH 0 0 0 0 0 0\nH 0 0 0.74 inf 0 0\n{}",
        GOOD.repeat(8)
    );
    let err = train_error(dir.path(), &data, "[0.6, 0.2, 0.2]");
    assert!(
        err.contains("train.extxyz: frame 1, line 8: atom 1, column forces: non-finite"),
        "{err}"
    );

    let data = format!("{GOOD}0\nenergy=0.0\n{}", GOOD.repeat(8));
    let err = train_error(dir.path(), &data, "[0.6, 0.2, 0.2]");
    assert!(err.contains("train.extxyz: frame 1, line 5: no atoms"), "{err}");

    let err = train_error(dir.path(), &GOOD.repeat(10), "[0.8, 0.1, 0.2]");
    assert!(
        err.contains("data.split: split fractions [0.8, 0.1, 0.2]: they sum to 1.1"),
        "{err}"
    );
}

#[test]
fn info_into_a_closed_pipe_ends_quietly() {
    use std::process::{Command, Stdio};
    let (_dir, input) = input_file("g.extxyz", GOOD);
    let mut child = Command::new(env!("CARGO_BIN_EXE_minima"))
        .args(["info", path(&input)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closing the read end before minima writes makes every write a broken pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
}
