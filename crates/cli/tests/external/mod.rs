//! Tests that need an external reference program (xtb, CP2K) fail when it is missing, naming
//! it and how to install it; only an explicit `MINIMA_SKIP_EXTERNAL=1` turns that into a skip,
//! printed as one. A missing program never passes silently.
// Each test file uses its own subset of these.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::Path;

/// Whether `program` can run: `true` when it is on PATH; without it the test fails, unless
/// `MINIMA_SKIP_EXTERNAL=1`, when it prints that it skips and gives `false`.
pub fn available(program: &str) -> bool {
    check(
        program,
        std::env::var_os("PATH"),
        std::env::var("MINIMA_SKIP_EXTERNAL").ok().as_deref(),
    )
}

/// [`available`] with the environment given: `path` for PATH, `skip` for MINIMA_SKIP_EXTERNAL.
pub fn check(program: &str, path: Option<OsString>, skip: Option<&str>) -> bool {
    let found = path.is_some_and(|p| std::env::split_paths(&p).any(|dir| is_executable(&dir.join(program))));
    if found {
        return true;
    }
    if skip == Some("1") {
        eprintln!("skipped: this test needs {program}, which is not installed (MINIMA_SKIP_EXTERNAL=1)");
        return false;
    }
    panic!(
        "{program} is not installed (not on PATH): run scripts/setup.sh --python, which installs xtb and \
         CP2K, or set MINIMA_SKIP_EXTERNAL=1 to skip the tests that need them"
    );
}

fn is_executable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    file.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
