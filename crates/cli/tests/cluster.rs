//! Labelling and active learning through a real Slurm: a private single-node cluster
//! (slurmctld, slurmd and munged from Debian, `scripts/slurm-local.sh`) is started for these
//! tests and stopped after. They need root and the packages (`scripts/setup.sh --python`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{minima, path, qm9_archive, small_loop};
use minima_atoms::{Atoms, Value};
use minima_io::extxyz;

/// A running private Slurm; stopped when dropped.
struct LocalSlurm {
    dir: tempfile::TempDir,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/slurm-local.sh")
}

impl LocalSlurm {
    fn start() -> LocalSlurm {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path().join("slurm"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the private Slurm did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        LocalSlurm { dir }
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm/slurm.conf")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// minima with this cluster's configuration, and a PATH whose `xtb` waits half a second
    /// before the real one runs (so that a task can be caught mid-way).
    fn minima(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_minima"));
        command.args(args).env("SLURM_CONF", self.conf()).env(
            "PATH",
            format!("{}:{}", self.file("bin").display(), std::env::var("PATH").unwrap()),
        );
        command
    }
}

impl Drop for LocalSlurm {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path().join("slurm"))
            .status();
    }
}

fn slow_xtb(slurm: &LocalSlurm) {
    use std::os::unix::fs::PermissionsExt;
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v xtb"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        !real.trim().is_empty(),
        "xtb is not installed (scripts/setup.sh --python)"
    );
    std::fs::create_dir_all(slurm.file("bin")).unwrap();
    let program = slurm.file("bin/xtb");
    std::fs::write(&program, format!("#!/bin/sh\nsleep 0.5\nexec {} \"$@\"\n", real.trim())).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn energies_by_index(frames: &[Atoms]) -> Vec<(i64, f64)> {
    let mut pairs: Vec<(i64, f64)> = frames
        .iter()
        .map(|f| match f.info.get("label_index") {
            Some(Value::Int(i)) => (*i, f.energy().unwrap()),
            other => panic!("no label_index: {other:?}"),
        })
        .collect();
    pairs.sort_by_key(|p| p.0);
    pairs
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_slurm_array_labels_every_shard_and_a_killed_task_reruns_alone() {
    let slurm = LocalSlurm::start();
    slow_xtb(&slurm);
    let input = slurm.file("in.extxyz");
    minima(&[
        "convert",
        "--from",
        "qm9",
        path(&qm9_archive()),
        "--first",
        "12",
        "-o",
        path(&input),
    ]);
    let straight = slurm.file("straight.extxyz");
    let out = slurm
        .minima(&["label", "--calc", "xtb", "-i", path(&input), "-o", path(&straight)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let output = slurm.file("array.extxyz");
    let args = [
        "label",
        "--calc",
        "xtb",
        "-i",
        path(&input),
        "-o",
        path(&output),
        "--submit",
        "slurm",
        "--array-size",
        "3",
        "--wait",
    ];
    let first = slurm
        .minima(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Cancel task 1 once it has labelled a frame, before it finishes.
    let shards = slurm.file("array.extxyz.shards");
    let shard = shards.join("shard-1-of-3.extxyz");
    let started = Instant::now();
    while std::fs::metadata(&shard).map_or(true, |m| m.len() == 0) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "task 1 never wrote a frame"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !shards.join("shard-1-of-3.extxyz.done").exists(),
        "task 1 finished too soon"
    );
    let job = std::fs::read_to_string(shards.join("slurm-job")).unwrap();
    let cancelled = Command::new("scancel")
        .args(["--signal=KILL", &format!("{}_1", job.trim())])
        .env("SLURM_CONF", slurm.conf())
        .status()
        .unwrap();
    assert!(cancelled.success());
    let out = first.wait_with_output().unwrap();
    assert!(!out.status.success(), "a killed shard must fail the merge");
    let said = stderr(&out);
    assert!(
        said.contains("1 of the 3 shards did not finish") && said.contains("shard-1-of-3"),
        "{said}"
    );
    assert!(!output.exists(), "nothing merged from an incomplete set");

    // The same command again: only shard 1 is submitted, it resumes, and all merge.
    let out = slurm.minima(&args).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sbatch = std::fs::read_to_string(shards.join("array.sbatch")).unwrap();
    assert!(sbatch.contains("#SBATCH --array=1\n"), "{sbatch}");
    let merged = extxyz::read_all(&output).unwrap();
    let reference = extxyz::read_all(&straight).unwrap();
    assert_eq!(merged.len(), 12);
    let (a, b) = (energies_by_index(&merged), energies_by_index(&reference));
    assert_eq!(
        a.iter().map(|p| p.0).collect::<Vec<_>>(),
        (0..12).collect::<Vec<_>>(),
        "each frame once"
    );
    for ((i, e), (_, r)) in a.iter().zip(&b) {
        assert!((e - r).abs() < 1e-6, "frame {i}: {e} against {r}");
    }
}

#[test]
fn a_learn_iteration_labels_through_a_slurm_array() {
    let slurm = LocalSlurm::start();
    let config = small_loop(slurm.dir.path());
    let out = slurm
        .minima(&[
            "learn",
            "--config",
            path(&config),
            "--set",
            "learn.submit=\"slurm\"",
            "--set",
            "learn.array_size=2",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let iteration = slurm.dir.path().join("loop/iter-0");
    let selected = extxyz::read_all(&iteration.join("selected.extxyz")).unwrap();
    let labelled = extxyz::read_all(&iteration.join("labelled.extxyz")).unwrap();
    assert_eq!(labelled.len(), selected.len());
    assert!(iteration.join("labelled.extxyz.shards/array.sbatch").exists());
    let logs = std::fs::read_dir(iteration.join("labelled.extxyz.shards"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("slurm-"))
        .count();
    assert!(logs >= 2, "two array tasks ran under Slurm ({logs} logs)");
}
