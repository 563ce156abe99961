//! Datasets and labelling end to end: the generators' counts, splits that keep base structures
//! together, xtb scans with their minimum at equilibrium, a labelling run killed with SIGKILL
//! and resumed, and one CP2K calculation. xtb and CP2K are Debian packages that
//! `scripts/setup.sh --python` installs; the tests that need them fail without them, naming
//! the program, unless MINIMA_SKIP_EXTERNAL=1 asks to skip them (see `external`).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use minima_atoms::{Atoms, Value};
use minima_io::extxyz;

mod common;
mod external;
use common::{minima, minima_error, path, qm9_archive};

fn int(atoms: &Atoms, key: &str) -> i64 {
    atoms.info[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} is not an integer"))
}

#[test]
fn generators_make_the_papers_counts_and_splits_keep_structures_together() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    minima(&["data", "growth", "-o", path(&d("stable.extxyz"))]);
    minima(&[
        "data",
        "growth",
        "--subset",
        "unstable",
        "-o",
        path(&d("unstable.extxyz")),
    ]);
    minima(&["data", "fcc", "-o", path(&d("fcc.extxyz"))]);
    let stable = extxyz::read_all(&d("stable.extxyz")).unwrap();
    let unstable = extxyz::read_all(&d("unstable.extxyz")).unwrap();
    assert_eq!((stable.len(), unstable.len()), (4000, 10000));
    assert_eq!(extxyz::read_all(&d("fcc.extxyz")).unwrap().len(), 2000);
    let sizes: HashSet<usize> = stable.iter().map(Atoms::len).collect();
    assert_eq!(
        (sizes.len(), sizes.iter().min(), sizes.iter().max()),
        (100, Some(&15), Some(&114))
    );

    minima(&[
        "data",
        "split",
        "-i",
        path(&d("unstable.extxyz")),
        "--out-dir",
        path(&d("split")),
    ]);
    let growth_of = |file: &str| -> HashSet<(String, i64)> {
        extxyz::read_all(&d(&format!("split/{file}.extxyz")))
            .unwrap()
            .iter()
            .map(|a| (format!("{:?}", a.info["element"]), int(a, "seed")))
            .collect()
    };
    let (train, validation, test) = (growth_of("train"), growth_of("validation"), growth_of("test"));
    assert_eq!((train.len(), validation.len(), test.len()), (6, 2, 2));
    assert!(train.is_disjoint(&validation) && train.is_disjoint(&test) && validation.is_disjoint(&test));
}

/// Labels `input` with xtb in the background until `output` holds at least `frames` frames,
/// then kills it with SIGKILL.
fn label_until_killed(input: &Path, output: &Path, frames: usize) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_minima"))
        .args(["label", "--calc", "xtb", "-i", path(input), "-o", path(output)])
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let written = std::fs::read_to_string(output)
            .map(|t| t.matches("label_index=").count())
            .unwrap_or(0);
        if written >= frames {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "labelling made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "labelling ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn label_xtb(input: &Path, output: &Path) {
    minima(&[
        "label",
        "--calc",
        "xtb",
        "-i",
        path(input),
        "-o",
        path(output),
        "--jobs",
        "2",
    ]);
}

#[test]
fn xtb_scans_killed_and_resumed_lose_and_repeat_nothing_and_have_their_minimum_at_equilibrium() {
    if !external::available("xtb") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scan = dir.path().join("scan.extxyz");
    minima(&[
        "data",
        "qm9-scan",
        "--qm9",
        path(&qm9_archive()),
        "--molecules",
        "12",
        "-o",
        path(&scan),
    ]);

    let resumed = dir.path().join("resumed.extxyz");
    label_until_killed(&scan, &resumed, 40);
    let partial = std::fs::read_to_string(&resumed)
        .unwrap()
        .matches("label_index=")
        .count();
    assert!((40..120).contains(&partial), "killed after {partial} of 120 frames");
    label_xtb(&scan, &resumed);

    let straight = dir.path().join("straight.extxyz");
    label_xtb(&scan, &straight);
    let frames = extxyz::read_all(&resumed).unwrap();
    let indices: Vec<i64> = frames.iter().map(|a| int(a, "label_index")).collect();
    assert_eq!(indices, (0..120).collect::<Vec<_>>());
    assert_eq!(
        std::fs::read(&resumed).unwrap(),
        std::fs::read(&straight).unwrap(),
        "resumed run differs from an uninterrupted one"
    );

    // Each molecule's 10-point scan 0.90–1.50 has its minimum at its QM9 (equilibrium) geometry.
    let mut curves: BTreeMap<i64, Vec<(f64, f64)>> = BTreeMap::new();
    for atoms in &frames {
        assert_eq!(atoms.info["calculator"], Value::Str("xtb".into()));
        curves
            .entry(int(atoms, "qm9_index"))
            .or_default()
            .push((atoms.scale().unwrap(), atoms.energy().unwrap()));
    }
    for (molecule, curve) in curves {
        let (scales, energies): (Vec<f64>, Vec<f64>) = curve.into_iter().unzip();
        let (minimum, _) = minima_data::curve::parabolic_minimum(&scales, &energies).unwrap();
        assert!(
            (minimum - 1.0).abs() < 0.05,
            "molecule {molecule}: minimum at scale {minimum}"
        );
    }
}

#[test]
fn cp2k_dft_binds_hydrogen() {
    // Two MPI ranks per structure: CP2K runs through mpirun.
    if !external::available("cp2k.psmp") || !external::available("mpirun") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("h2.extxyz");
    let h2 = |d: f64| Atoms::new(vec![1, 1], vec![[0.0; 3], [0.0, 0.0, d]]).unwrap();
    extxyz::write_all(&input, &[h2(0.6), h2(0.75), h2(1.0)]).unwrap();
    let output = dir.path().join("h2_dft.extxyz");
    minima(&["label", "--calc", "cp2k", "-i", path(&input), "-o", path(&output)]);
    let frames = extxyz::read_all(&output).unwrap();
    let energy: Vec<f64> = frames.iter().map(|a| a.energy().unwrap()).collect();
    // PBE's H2 bond is 0.75 Å: squeezed and stretched bonds cost energy, and the forces push
    // the atoms back (apart at 0.6 Å, together at 1.0 Å), equal and opposite.
    assert!(energy[1] < energy[0] && energy[1] < energy[2], "{energy:?}");
    let fz = |k: usize| frames[k].forces().unwrap()[5];
    assert!(fz(0) > 0.5 && fz(2) < -0.5, "{} {}", fz(0), fz(2));
    for atoms in &frames {
        let f = atoms.forces().unwrap();
        assert!((f[2] + f[5]).abs() < 1e-3);
    }
    // Total energies: about −31.6 eV for PBE H2 with GTH pseudopotentials.
    assert!((energy[1] + 31.6).abs() < 0.5, "{energy:?}");
}

#[test]
fn bad_input_to_data_and_label_gets_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    let molecule = Atoms::new(vec![26, 29], vec![[0.0; 3], [0.0, 0.0, 2.4]]).unwrap();
    extxyz::write_all(&d("in.extxyz"), &[molecule]).unwrap();
    let (input, out) = (path(&d("in.extxyz")).to_string(), path(&d("out.extxyz")).to_string());

    let cases: [(Vec<&str>, &str); 7] = [
        (
            vec!["label", "--calc", "vasp", "-i", &input, "-o", &out],
            "unknown calculator \"vasp\"",
        ),
        (
            vec!["label", "--calc", "emt", "-i", &input, "-o", &out, "--shard", "4/4"],
            "0 <= i < N",
        ),
        (
            vec!["label", "--calc", "emt", "-i", &input, "-o", "x.extxyz.bz2"],
            "uncompressed",
        ),
        (
            vec!["data", "fcc", "--scales", "1.5:0.9:3", "-o", &out],
            "0 < start <= stop",
        ),
        (
            vec!["data", "fcc", "--lattice", "Cu=abc", "-o", &out],
            "\"abc\" is not a number",
        ),
        (
            vec!["data", "split", "-i", &input, "--out-dir", &out],
            "cannot tell the dataset",
        ),
        (vec!["merge", &input, "-o", &out], "no label_index"),
    ];
    for (args, expected) in cases {
        let error = minima_error(&args);
        assert!(error.contains(expected), "minima {args:?}: {error}");
    }

    // A truncated input names its file and frame; nothing is written.
    std::fs::write(d("cut.extxyz"), "3\nProperties=species:S:1:pos:R:3\nCu 0 0 0\n").unwrap();
    let error = minima_error(&["label", "--calc", "emt", "-i", path(&d("cut.extxyz")), "-o", &out]);
    assert!(error.contains("cut.extxyz") && error.contains("frame 0"), "{error}");

    // An element EMT has no parameters for fails that structure, with the reason on record,
    // and the run exits non-zero saying so. A rerun finds the (empty) output and the failure on
    // record, has nothing left to do, and says so again.
    for _ in 0..2 {
        let error = minima_error(&["label", "--calc", "emt", "-i", &input, "-o", &out]);
        assert!(error.contains("1 of 1 frames failed (frames 0)"), "{error}");
        assert_eq!(std::fs::read_to_string(d("out.extxyz")).unwrap(), "");
        let failed = std::fs::read_to_string(d("out.extxyz.failed")).unwrap();
        assert!(
            failed.starts_with("0\tEMT has no parameters for Fe\tfnv1a-"),
            "{failed}"
        );
        assert_eq!(failed.lines().count(), 1);
    }
}
