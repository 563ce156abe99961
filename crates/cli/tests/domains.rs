//! `minima predict --domain-atoms`: a rattled periodic Cu crystal split into spatial domains
//! gets what it gets in one piece (the shipped metals model, PaiNN + ZBL at 5.5 Å): energy,
//! forces and stress; a domain size of zero is refused. (Refusals of models that cannot be
//! split: `minima-model`'s tests.)

mod common;
use common::{minima, minima_error, path};

/// 4×4×4 cubic cells of Cu (256 atoms), every atom moved by a different, deterministic
/// displacement of up to 0.1 Å so that forces and stress are not zero by symmetry.
fn rattled_crystal(dir: &std::path::Path) -> std::path::PathBuf {
    let mut crystal = minima_atoms::build::fcc_block(29, 3.61, [4, 4, 4]);
    let moved = crystal
        .positions()
        .iter()
        .enumerate()
        .map(|(i, r)| std::array::from_fn(|k| r[k] + 0.1 * ((i * 3 + k) as f64 * 1.7).sin()))
        .collect();
    crystal.set_positions(moved).unwrap();
    let file = dir.join("cu256.extxyz");
    minima_io::extxyz::write_all(&file, &[crystal]).unwrap();
    file
}

fn model() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/metals.safetensors").to_string()
}

#[test]
fn a_crystal_in_domains_predicts_what_it_does_whole() {
    let dir = tempfile::tempdir().unwrap();
    let crystal = rattled_crystal(dir.path());
    let (whole, split) = (dir.path().join("whole.extxyz"), dir.path().join("split.extxyz"));
    let model = model();
    minima(&["predict", "--model", &model, "-i", path(&crystal), "-o", path(&whole)]);
    // The halo (3 layers × 5.5 Å) is wider than the 14.4 Å cell: every domain holds images.
    minima(&[
        "predict",
        "--model",
        &model,
        "-i",
        path(&crystal),
        "-o",
        path(&split),
        "--domain-atoms",
        "100",
    ]);
    let [a, b] = [&whole, &split].map(|f| minima_io::extxyz::read_all(f).unwrap().remove(0));
    let per_atom = (a.energy().unwrap() - b.energy().unwrap()).abs() / a.len() as f64;
    assert!(per_atom < 1e-5, "energy differs by {per_atom} eV/atom");
    let (fa, fb) = (a.forces().unwrap(), b.forces().unwrap());
    assert!(
        fa.iter().any(|f| f.abs() > 1e-3),
        "forces vanish: the test would prove nothing"
    );
    for (x, y) in fa.iter().zip(fb) {
        assert!((x - y).abs() < 1e-4, "force {x} vs {y}");
    }
    let stress = |atoms: &minima_atoms::Atoms| match atoms.info.get("stress") {
        Some(minima_atoms::Value::Floats(values)) => values.clone(),
        other => panic!("no stress: {other:?}"),
    };
    let (sa, sb) = (stress(&a), stress(&b));
    for (x, y) in sa.iter().zip(&sb) {
        assert!((x - y).abs() < 1e-6, "stress {sa:?} vs {sb:?}");
    }
}

#[test]
fn a_domain_size_of_zero_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let crystal = rattled_crystal(dir.path());
    let output = dir.path().join("out.extxyz");
    let model = model();
    let error = minima_error(&[
        "predict",
        "--model",
        &model,
        "-i",
        path(&crystal),
        "-o",
        path(&output),
        "--domain-atoms",
        "0",
    ]);
    assert!(
        error.contains("--domain-atoms") && error.contains("0 is not in 1.."),
        "{error}"
    );
    assert!(!output.exists());
}
