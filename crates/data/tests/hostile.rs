//! Hostile labelled data and split fractions: non-finite labels, empty frames and collapsed
//! geometries are refused where they would become targets, naming file, frame and line; fractions that do not sum to
//! 1 are an error, not silently normalised.

use std::path::{Path, PathBuf};

use minima_data::{check_fractions, read_frames, samples_of, split_by_group, GraphSpec, Scheme};

const GOOD: &str = "2\nenergy=-1.5\nH 0 0 0\nH 0 0 0.74\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The error of loading `text` as training data (labels required).
fn training_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "train.extxyz", text);
    let source = path.display().to_string();
    let result = read_frames(&path)
        .and_then(|frames| samples_of(&frames, &source, &GraphSpec { cutoff: Some(5.0) }, true, || {}));
    let err = result.expect_err(text).to_string();
    // The temporary path differs per call: report it by its file name.
    err.replace(&source, "train.extxyz")
}

#[test]
fn non_finite_energies_are_refused_naming_file_frame_and_line() {
    // Frames 0 and 1 take lines 1–8; frame 2's comment line is line 10.
    for energy in ["nan", "NaN", "inf", "-inf", "-Infinity"] {
        let text = format!("{GOOD}{GOOD}2\nenergy={energy}\nH 0 0 0\nH 0 0 0.74\n");
        let err = training_error(&text);
        assert!(
            err.starts_with("train.extxyz: frame 2, line 10: label energy is not finite"),
            "{energy}: {err}"
        );
    }
    let err = training_error(&format!("{GOOD}1\nenergy=abc\nH 0 0 0\n"));
    assert!(
        err.starts_with("train.extxyz: frame 1, line 6: label energy=abc is not a number"),
        "{err}"
    );
    let err = training_error(&format!("{GOOD}1\nnote=x\nH 0 0 0\n"));
    assert!(
        err.starts_with("train.extxyz: frame 1, line 6: missing label: no energy"),
        "{err}"
    );
}

#[test]
fn a_collapsed_geometry_is_refused_on_the_line_of_its_atom() {
    // H–H at 0.2 Å (the limit is 0.6 · 2 · 0.31 Å): frame 1, atom 1 is line 8.
    let err = training_error(&format!("{GOOD}2\nenergy=40.0\nH 0 0 0\nH 0 0 0.2\n"));
    assert!(
        err.starts_with("train.extxyz: frame 1, line 8: atoms 0 and 1 are 0.200 Å apart"),
        "{err}"
    );
}

#[test]
fn other_non_finite_labels_are_refused() {
    let cases = [
        ("energy=1.0 free_energy=nan", "label free_energy is not finite"),
        (
            "energy=1.0 stress=\"1 0 0 0 inf 0 0 0 1\"",
            "label stress is not finite",
        ),
        ("energy=1.0 scale=nan", "label scale is not finite"),
        ("energy=1.0 scale=0.0", "label scale must be positive"),
        (
            "energy=1.0 Properties=species:S:1:pos:R:3:forces:I:3",
            "label forces must be 3 real number(s) per atom",
        ),
        (
            "energy=1.0 Properties=species:S:1:pos:R:3:compliance:R:4",
            "label compliance must be real numbers, three per mode (compliance:R:3M in Properties), not 4 per atom",
        ),
        (
            "energy=1.0 Properties=species:S:1:pos:R:3:compliance:I:3",
            "label compliance must be real numbers, three per mode",
        ),
    ];
    for (comment, message) in cases {
        let columns = match comment.rsplit_once(':').map(|(_, w)| w) {
            Some("3") if comment.contains(":I:3") => " 1 2 3",
            Some("4") => " 1 2 3 4",
            _ => "",
        };
        let text = format!("{GOOD}1\n{comment}\nH 0 0 0{columns}\n");
        let err = training_error(&text);
        assert!(
            err.starts_with(&format!("train.extxyz: frame 1, line 6: {message}")),
            "{err}"
        );
    }
}

#[test]
fn non_finite_forces_are_refused_on_their_line() {
    let text =
        format!("{GOOD}2\nenergy=1.0 Properties=species:S:1:pos:R:3:forces:R:3\nH 0 0 0 0 0 0\nH 0 0 0.74 0 0 nan\n");
    let err = training_error(&text);
    assert!(
        err.starts_with("train.extxyz: frame 1, line 8: atom 1, column forces: non-finite number"),
        "{err}"
    );
    let text = text.replace("nan", "-inf");
    assert!(training_error(&text).contains("frame 1, line 8"));
}

#[test]
fn an_empty_frame_in_labelled_data_is_an_error() {
    let err = training_error(&format!("{GOOD}0\nenergy=0.0\n{GOOD}"));
    assert!(err.starts_with("train.extxyz: frame 1, line 5: no atoms"), "{err}");
}

#[test]
fn unlabelled_use_keeps_reading_what_the_reader_keeps() {
    // Prediction needs no labels: an energy=nan left by a failed calculation is no obstacle.
    let frames = minima_io::extxyz::read_str(&format!("{GOOD}2\nenergy=nan\nH 0 0 0\nH 0 0 0.74\n"), "p").unwrap();
    let samples = samples_of(&frames, "p", &GraphSpec { cutoff: Some(5.0) }, false, || {}).unwrap();
    assert_eq!(samples.len(), 2);
    // Frames are placed as they would be written to the file `source` names.
    let mut frames = frames;
    frames[0].set_energy(f64::NAN);
    let err = samples_of(&frames, "mem", &GraphSpec { cutoff: Some(5.0) }, true, || {}).unwrap_err();
    assert!(
        err.to_string().starts_with("mem: frame 0, line 2: label energy"),
        "{err}"
    );
}

#[test]
fn split_fractions_must_sum_to_one() {
    let groups: Vec<String> = (0..100).map(|i| format!("g{i}")).collect();
    let cases: [([f64; 3], &str); 7] = [
        ([0.8, 0.1, 0.2], "[0.8, 0.1, 0.2]: they sum to 1.1"),
        ([0.5, 0.1, 0.1], "[0.5, 0.1, 0.1]: they sum to 0.7,"),
        ([0.5, 0.2, 0.2], "they sum to 0.9,"),
        ([8.0, 1.0, 1.0], "they sum to 10"),
        ([1.2, -0.1, -0.1], "-0.1 is negative"),
        ([f64::NAN, 0.5, 0.5], "NaN is not a finite number"),
        ([f64::INFINITY, 0.0, 0.0], "inf is not a finite number"),
    ];
    for (fractions, message) in cases {
        let err = split_by_group(&groups, fractions, 0).unwrap_err().to_string();
        assert!(
            err.starts_with("split fractions") && err.contains(message),
            "{fractions:?}: {err}"
        );
        assert!(check_fractions(fractions).is_err());
    }
    // Decimal rounding is no error, and the split is what the fractions say.
    for fractions in [
        [0.7, 0.2, 0.1],
        [0.8, 0.1, 0.1],
        [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0],
        [1.0, 0.0, 0.0],
    ] {
        assert!(check_fractions(fractions).is_ok(), "{fractions:?}");
    }
    let split = split_by_group(&groups, [0.7, 0.2, 0.1], 3).unwrap();
    assert_eq!(
        (split.train.len(), split.validation.len(), split.test.len()),
        (70, 20, 10)
    );
}

#[test]
fn schemes_take_valid_fractions_only() {
    let frames = minima_io::extxyz::read_str(&GOOD.repeat(20), "g").unwrap();
    let split = Scheme::Qm9.split(&frames, 0, Some([0.5, 0.25, 0.25])).unwrap();
    assert_eq!(
        (split.train.len(), split.validation.len(), split.test.len()),
        (10, 5, 5)
    );
    let err = Scheme::Growth.split(&frames, 0, Some([0.6, 0.2, 0.3])).unwrap_err();
    assert!(err.contains("sum to 1.1"), "{err}");
    let err = Scheme::Fcc { train_points: 8 }
        .split(&frames, 0, Some([0.6, 0.2, 0.2]))
        .unwrap_err();
    assert!(err.contains("takes no fractions"), "{err}");
}
