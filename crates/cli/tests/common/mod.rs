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
