//! Labelling under hostile conditions, end to end: inputs edited between runs, shards missing
//! or unfinished at merge, frames that fail, two processes on one output, runs killed with
//! SIGKILL in the middle of an external program, programs that return garbage. External
//! programs are played by small shell scripts named `xtb` put first on PATH, so these tests
//! need neither xtb nor CP2K and control exactly what the "program" does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use minima_atoms::Atoms;
use minima_io::extxyz;

mod common;
mod external;
use common::{minima, minima_error, path};

/// A copper cluster of `n` atoms in a row, `spacing` Å apart.
fn cluster(n: usize, spacing: f64) -> Atoms {
    let positions = (0..n)
        .map(|i| [i as f64 * spacing, 0.2 * (i % 2) as f64, 0.0])
        .collect();
    Atoms::new(vec![29; n], positions).unwrap()
}

fn water() -> Atoms {
    Atoms::new(
        vec![8, 1, 1],
        vec![[0.0, 0.0, 0.12], [0.0, 0.76, -0.47], [0.0, -0.76, -0.47]],
    )
    .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A folder with a fake `xtb` running `script`, and a private temporary folder, for a minima
/// that runs it.
struct FakeXtb {
    dir: tempfile::TempDir,
}

impl FakeXtb {
    fn new(script: &str) -> FakeXtb {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let program = dir.path().join("bin/xtb");
        std::fs::write(&program, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeXtb { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The temporary folder minima makes its work directories in.
    fn tmp(&self) -> PathBuf {
        self.file("tmp")
    }

    fn command(&self, args: &[&str]) -> Command {
        let path = format!(
            "{}:{}",
            self.file("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new(env!("CARGO_BIN_EXE_minima"));
        command.args(args).env("PATH", path).env("TMPDIR", self.tmp());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// The `minima-label-*` work directories in the private temporary folder.
    fn work_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.tmp())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("minima-label-"))
            .collect();
        dirs.sort();
        dirs
    }
}

/// A fake xtb that notes its PID in its work directory, then sleeps: a long calculation.
const SLOW_XTB: &str = "echo $$ > pid\nexec sleep 60";

/// Starts `minima label --calc xtb` with a [`SLOW_XTB`] on `input` into `output`; returns it and
/// the PID of its running fake xtb once that has started (the output is locked by then).
fn start_slow_label(fake: &FakeXtb, input: &Path, output: &Path) -> (Child, u32) {
    let mut child = fake
        .command(&["label", "--calc", "xtb", "-i", path(input), "-o", path(output)])
        .spawn()
        .unwrap();
    let start = Instant::now();
    let pid = loop {
        let pid = fake
            .work_dirs()
            .iter()
            .find_map(|d| std::fs::read_to_string(d.join("pid")).ok())
            .and_then(|p| p.trim().parse().ok());
        if pid.is_some() || start.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            break pid;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let Some(pid) = pid else {
        let _ = child.kill();
        child.wait().unwrap();
        panic!("the fake xtb never started");
    };
    (child, pid)
}

/// Ends a process this test started, by its PID, with SIGKILL.
fn kill(pid: u32) {
    Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
}

/// The PID of a process that has ended.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    child.id()
}

#[test]
fn a_resume_relabels_frames_whose_atoms_moved_and_says_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    let frames: Vec<Atoms> = (0..5).map(|i| cluster(3, 2.4 + 0.05 * i as f64)).collect();
    extxyz::write_all(&d("in.extxyz"), &frames).unwrap();
    let (input, out) = (path(&d("in.extxyz")).to_string(), path(&d("out.extxyz")).to_string());
    minima(&["label", "--calc", "emt", "-i", &input, "-o", &out]);

    // Same species and count in every frame; frames 1 and 3 have moved atoms.
    let mut edited = frames.clone();
    edited[1] = cluster(3, 2.47);
    edited[3] = cluster(3, 2.61);
    extxyz::write_all(&d("in.extxyz"), &edited).unwrap();
    let rerun = minima(&["label", "--calc", "emt", "-i", &input, "-o", &out]);
    let said = String::from_utf8_lossy(&rerun.stdout);
    assert!(said.contains("2 labelled now, 3 done before"), "{said}");
    assert!(
        said.contains("2 frames were done again because their input changed since"),
        "{said}"
    );
    minima(&[
        "label",
        "--calc",
        "emt",
        "-i",
        &input,
        "-o",
        path(&d("straight.extxyz")),
    ]);
    assert_eq!(
        std::fs::read(d("out.extxyz")).unwrap(),
        std::fs::read(d("straight.extxyz")).unwrap(),
        "the resumed output keeps a stale label"
    );
}

#[test]
fn merge_refuses_an_incomplete_set_of_shards_naming_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    let frames: Vec<Atoms> = (0..8).map(|i| cluster(2 + i % 3, 2.5)).collect();
    extxyz::write_all(&d("in.extxyz"), &frames).unwrap();
    let input = path(&d("in.extxyz")).to_string();
    let shards: Vec<String> = (0..4).map(|i| path(&d(&format!("s{i}.extxyz"))).to_string()).collect();
    for (i, shard) in shards.iter().enumerate() {
        let part = format!("{i}/4");
        minima(&["label", "--calc", "emt", "-i", &input, "-o", shard, "--shard", &part]);
    }
    let merged = path(&d("all.extxyz")).to_string();
    let error = minima_error(&["merge", &shards[0], &shards[2], "-o", &merged]);
    assert!(error.contains("2 of the 4 shards missing: 1/4, 3/4"), "{error}");
    assert!(!d("all.extxyz").exists());

    // A shard whose run was killed before it finished has no record of finishing.
    std::fs::remove_file(d("s3.extxyz.done")).unwrap();
    let error = minima_error(&["merge", &shards[0], &shards[1], &shards[2], &shards[3], "-o", &merged]);
    assert!(error.contains("s3.extxyz: its labelling has not finished"), "{error}");

    minima(&[
        "label", "--calc", "emt", "-i", &input, "-o", &shards[3], "--shard", "3/4",
    ]);
    minima(&["merge", &shards[0], &shards[1], &shards[2], &shards[3], "-o", &merged]);
    assert_eq!(extxyz::read_all(&d("all.extxyz")).unwrap().len(), 8);
}

#[test]
fn failed_frames_make_label_and_merge_exit_non_zero_keeping_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    let iron = Atoms::new(vec![26, 29], vec![[0.0; 3], [2.5, 0.0, 0.0]]).unwrap();
    let twins = Atoms::new(vec![29, 29], vec![[1.0; 3], [1.0; 3]]).unwrap();
    extxyz::write_all(&d("in.extxyz"), &[cluster(3, 2.5), iron, cluster(4, 2.5), twins]).unwrap();
    let input = path(&d("in.extxyz")).to_string();
    let out = path(&d("out.extxyz")).to_string();
    let error = minima_error(&["label", "--calc", "emt", "-i", &input, "-o", &out]);
    assert!(error.contains("2 of 4 frames failed (frames 1, 3)"), "{error}");
    assert!(error.contains("out.extxyz.failed"), "{error}");
    let labelled = extxyz::read_all(&d("out.extxyz")).unwrap();
    assert_eq!(labelled.len(), 2);
    assert!(labelled.iter().all(|a| a.energy().is_some_and(f64::is_finite)));
    let failed = std::fs::read_to_string(d("out.extxyz.failed")).unwrap();
    let lines: Vec<&str> = failed.lines().collect();
    assert!(lines[0].starts_with("1\tEMT has no parameters for Fe\t"), "{failed}");
    assert!(lines[1].starts_with("3\tatoms 0 and 1 coincide ("), "{failed}");

    // Shards with failures merge what they labelled, list the failures, and exit non-zero.
    let shards: Vec<String> = (0..2).map(|i| path(&d(&format!("s{i}.extxyz"))).to_string()).collect();
    minima(&[
        "label", "--calc", "emt", "-i", &input, "-o", &shards[0], "--shard", "0/2",
    ]);
    minima_error(&[
        "label", "--calc", "emt", "-i", &input, "-o", &shards[1], "--shard", "1/2",
    ]);
    let merged = path(&d("all.extxyz")).to_string();
    let error = minima_error(&["merge", &shards[0], &shards[1], "-o", &merged]);
    assert!(error.contains("2 frames failed in the shards (frames 1, 3)"), "{error}");
    assert_eq!(extxyz::read_all(&d("all.extxyz")).unwrap().len(), 2);
    assert_eq!(std::fs::read_to_string(d("all.extxyz.failed")).unwrap(), failed);
}

#[test]
fn a_second_label_process_on_the_same_output_fails_at_once() {
    let fake = FakeXtb::new(SLOW_XTB);
    let (input, output) = (fake.file("in.extxyz"), fake.file("out.extxyz"));
    extxyz::write_all(&input, &[water(), water()]).unwrap();
    let (mut first, xtb) = start_slow_label(&fake, &input, &output);

    let start = Instant::now();
    let second = fake.run(&["label", "--calc", "xtb", "-i", path(&input), "-o", path(&output)]);
    assert!(start.elapsed() < Duration::from_secs(20), "the second process waited");
    assert!(!second.status.success());
    let error = stderr(&second);
    assert!(
        error.contains("another minima process is writing this output"),
        "{error}"
    );
    assert!(error.contains("out.extxyz"), "{error}");
    // The first is still at work, undisturbed.
    assert!(first.try_wait().unwrap().is_none());
    first.kill().unwrap();
    first.wait().unwrap();
    kill(xtb);
}

#[test]
fn work_directories_of_killed_runs_are_removed_by_the_next_run_and_live_ones_kept() {
    let fake = FakeXtb::new(SLOW_XTB);
    let (input, output) = (fake.file("in.extxyz"), fake.file("out.extxyz"));
    extxyz::write_all(&input, &[water()]).unwrap();
    extxyz::write_all(&fake.file("cu.extxyz"), &[cluster(2, 2.5)]).unwrap();
    let label_copper = |name: &str| {
        let out = fake.file(name);
        let run = fake.run(&[
            "label",
            "--calc",
            "emt",
            "-i",
            path(&fake.file("cu.extxyz")),
            "-o",
            path(&out),
        ]);
        assert!(run.status.success(), "{}", stderr(&run));
    };

    // Leftovers of dead processes, with and without their lock file, and a directory this
    // (live) test process owns and holds the lock of.
    let dead = dead_pid();
    let tmp = fake.tmp();
    for (name, lock) in [("abc123", true), ("nolock", false)] {
        let leftover = tmp.join(format!("minima-label-{dead}-{name}"));
        std::fs::create_dir(&leftover).unwrap();
        std::fs::write(leftover.join("coord.xyz"), "3\n\n").unwrap();
        if lock {
            std::fs::write(leftover.join(".owner.lock"), "").unwrap();
        }
    }
    let alive = tmp.join(format!("minima-label-{}-live42", std::process::id()));
    std::fs::create_dir(&alive).unwrap();
    let held = std::fs::File::create(alive.join(".owner.lock")).unwrap();
    held.try_lock().unwrap();
    let unrelated = tmp.join("minima-label-notapid");
    std::fs::create_dir(&unrelated).unwrap();

    // A run killed with SIGKILL while its program runs leaves its work directory behind.
    let (mut killed, xtb) = start_slow_label(&fake, &input, &output);
    let working: Vec<PathBuf> = fake
        .work_dirs()
        .into_iter()
        .filter(|d| d.join("pid").exists())
        .collect();
    assert_eq!(working.len(), 1);
    // While it runs, another run (another output) keeps its directory.
    label_copper("cu1.extxyz");
    assert!(working[0].exists(), "a live process's work directory was removed");
    killed.kill().unwrap();
    killed.wait().unwrap();
    kill(xtb);
    assert!(working[0].exists());

    label_copper("cu2.extxyz");
    let left = fake.work_dirs();
    assert_eq!(left, vec![alive.clone(), unrelated], "{left:?}");
    drop(held);
}

#[test]
fn garbage_from_a_reference_program_is_a_failure_never_a_label() {
    let nan = "printf '$grad\\n cycle = 1 SCF energy = NaN |dE/dxyz| = 0.0\\n\
               0 0 0 o\\n0 0 0 h\\n0 0 0 h\\n0 0 0\\n0 0 0\\n0 0 0\\n$end\\n' > gradient";
    for (script, reason) in [
        (nan, "non-finite energy or force"),
        ("exit 0", "xtb wrote no gradient file"),
        ("echo 'SCF not converged' >&2; exit 1", "SCF not converged"),
    ] {
        let fake = FakeXtb::new(script);
        let (input, output) = (fake.file("in.extxyz"), fake.file("out.extxyz"));
        extxyz::write_all(&input, &[water()]).unwrap();
        let run = fake.run(&["label", "--calc", "xtb", "-i", path(&input), "-o", path(&output)]);
        assert!(!run.status.success(), "{script}: exit 0");
        assert!(stderr(&run).contains("1 of 1 frames failed"), "{}", stderr(&run));
        assert_eq!(
            std::fs::read_to_string(&output).unwrap(),
            "",
            "{script}: a label was written"
        );
        let failed = std::fs::read_to_string(fake.file("out.extxyz.failed")).unwrap();
        assert!(
            failed.starts_with("0\t") && failed.contains(reason),
            "{script}: {failed}"
        );
        assert!(fake.work_dirs().is_empty(), "{script}: work directory left behind");
    }
}

#[test]
fn a_missing_reference_program_fails_the_test_loudly_unless_skipping_is_asked_for() {
    let nowhere = Some(std::ffi::OsString::from("/nonexistent"));
    let loud = std::panic::catch_unwind(|| external::check("xtb", nowhere.clone(), None)).unwrap_err();
    let message = loud.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("xtb is not installed") && message.contains("scripts/setup.sh --python"),
        "{message}"
    );
    // Only exactly 1 skips.
    assert!(std::panic::catch_unwind(|| external::check("cp2k.psmp", nowhere.clone(), Some("0"))).is_err());
    assert!(!external::check("cp2k.psmp", nowhere, Some("1")));
    assert!(external::check("sh", std::env::var_os("PATH"), None));
}

#[test]
fn an_output_labelled_by_another_calculator_or_a_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    extxyz::write_all(&d("in.extxyz"), &[cluster(3, 2.5), cluster(4, 2.5)]).unwrap();
    let (input, out) = (path(&d("in.extxyz")).to_string(), path(&d("out.extxyz")).to_string());
    minima(&["label", "--calc", "emt", "-i", &input, "-o", &out]);
    // The same output, as if another reference had labelled it: resuming would mix methods.
    let text = std::fs::read_to_string(d("out.extxyz")).unwrap();
    assert!(text.contains("calculator=emt"), "{text}");
    std::fs::write(d("out.extxyz"), text.replace("calculator=emt", "calculator=xtb")).unwrap();
    let error = minima_error(&["label", "--calc", "emt", "-i", &input, "-o", &out]);
    assert!(
        error.contains("frame 0 is labelled by xtb, not emt") && error.contains("out.extxyz"),
        "{error}"
    );
    let error = minima_error(&["label", "--calc", "emt", "-i", &input, "-o", "/dev/null"]);
    assert!(error.contains("/dev/null: not a regular file"), "{error}");
    assert_eq!(error.lines().count(), 1, "{error}");
}
