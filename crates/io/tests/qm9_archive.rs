//! The QM9 archive shipped in ../shared: every molecule of 1–10000 loads.

use std::path::PathBuf;

use minima_atoms::Value;
use minima_io::qm9::{read, Selection};

fn archive() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/qm9/qm9_first10k.tar.bz2")
}

#[test]
fn reads_all_9727_molecules_in_index_order() {
    let all = read(&archive(), Selection::default()).unwrap();
    assert_eq!(all.len(), 9727);
    assert_eq!(all[0].formula(), "CH4");
    let indices: Vec<i64> = all.iter().map(|a| a.info["qm9_index"].as_i64().unwrap()).collect();
    assert!(indices.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(*indices.last().unwrap(), 10000);
    assert!(all.iter().all(|a| a.energy().is_some_and(|e| e < 0.0)));
}

#[test]
fn first_selects_by_index() {
    let first = read(
        &archive(),
        Selection {
            max_index: Some(100),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(first.len() <= 100 && first.len() > 90);
    assert!(first
        .iter()
        .all(|a| matches!(a.info["qm9_index"], Value::Int(i) if i <= 100)));
}

#[test]
fn reads_a_directory_of_original_files() {
    let all = read(
        &archive(),
        Selection {
            max_index: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for atoms in &all {
        let index = atoms.info["qm9_index"].as_i64().unwrap();
        let n = atoms.len();
        let mut text = format!("{n}\ngdb {index}");
        for name in minima_io::qm9::PROPERTIES {
            let value = atoms.info[name].as_f64().unwrap();
            let hartree = minima_io::qm9::HARTREE_PROPERTIES.contains(&name);
            text += &format!(
                "\t{}",
                if hartree {
                    value / minima_atoms::HARTREE_EV
                } else {
                    value
                }
            );
        }
        text += "\n";
        for (e, r) in atoms.elements().zip(atoms.positions()) {
            text += &format!("{}\t{}\t{}\t{}\t0.0\n", e.symbol, r[0], r[1], r[2]);
        }
        text += "100.0\nC\tC\nInChI=1S\tInChI=1S\n";
        std::fs::write(dir.path().join(format!("dsgdb9nsd_{index:06}.xyz")), text).unwrap();
    }
    std::fs::write(dir.path().join("README"), "not a molecule").unwrap();
    let from_dir = read(dir.path(), Selection::default()).unwrap();
    assert_eq!(from_dir.len(), all.len());
    for (a, b) in from_dir.iter().zip(&all) {
        assert_eq!(a.positions(), b.positions());
        assert!((a.energy().unwrap() - b.energy().unwrap()).abs() < 1e-9);
    }
}

#[test]
fn missing_and_foreign_sources_are_clear_errors() {
    let err = read(&PathBuf::from("/nonexistent/qm9.tar.bz2"), Selection::default()).unwrap_err();
    assert!(err.to_string().contains("cannot open"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let err = read(dir.path(), Selection::default()).unwrap_err();
    assert!(err.to_string().contains("no dsgdb9nsd_"), "{err}");
    let not_archive = dir.path().join("x.tar.bz2");
    std::fs::write(&not_archive, b"not bzip2 at all").unwrap();
    let err = read(&not_archive, Selection::default()).unwrap_err();
    assert!(err.to_string().contains("broken archive"), "{err}");
}
