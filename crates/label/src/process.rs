//! Running an external program on one structure: in a fresh working directory of its own (so
//! parallel jobs never share files), output to files (no pipe to fill up), killed after a
//! timeout.
//!
//! The working directories are `minima-label-PID-XXXXXX` in the system's temporary folder,
//! each holding a lock (`.owner.lock`) for as long as its process lives. A process killed with
//! SIGKILL cannot remove its directory, so the first program run of every process (and every
//! labelling run) removes those whose owner is gone: the lock is free and no process has that
//! PID. Both must hold, so a live process's directory is never removed, not even in the moment
//! between creating it and locking it.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::CalcError;

/// How every working directory's name starts, before its owner's PID.
const PREFIX: &str = "minima-label-";

/// The lock file inside a working directory, held by the process that made it.
const OWNER_LOCK: &str = ".owner.lock";

/// A program's working directory, removed when dropped.
pub struct WorkDir {
    dir: tempfile::TempDir,
    /// Locked while this process lives (the operating system releases it however it ends).
    _owner: File,
}

impl WorkDir {
    fn create() -> std::io::Result<WorkDir> {
        remove_abandoned_work_dirs();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir()?;
        let owner = File::create(dir.path().join(OWNER_LOCK))?;
        owner.try_lock().map_err(std::io::Error::from)?;
        Ok(WorkDir { dir, _owner: owner })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes, once per process, the working directories that processes killed before they could
/// clean up left in the temporary folder. Directories of live processes are kept.
pub(crate) fn remove_abandoned_work_dirs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(owner) = name.to_str().and_then(owner_pid) else {
                continue;
            };
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && !process_exists(owner) && !owner_lock_held(&path) {
                // Best effort: a directory another user owns, or one removed meanwhile, stays.
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    });
}

/// The PID in a working directory's name `minima-label-PID-XXXXXX`.
fn owner_pid(name: &str) -> Option<u32> {
    let (pid, _) = name.strip_prefix(PREFIX)?.split_once('-')?;
    pid.parse().ok()
}

/// Whether a process with this PID exists; `true` when that cannot be told (no `/proc`), so
/// that nothing is removed on a guess.
fn process_exists(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// Whether a process holds the lock in `dir`; `false` also when there is no lock file (its
/// owner died before making it), `true` when it cannot be opened (not ours to judge).
fn owner_lock_held(dir: &Path) -> bool {
    match File::open(dir.join(OWNER_LOCK)) {
        Ok(file) => file.try_lock().is_err(),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// A finished run: its working directory with the program's output files (removed when
/// dropped).
pub struct Finished {
    pub dir: WorkDir,
}

/// Runs `command` in a new working directory after `prepare` has written its inputs there.
/// A non-zero exit or a timeout is a [`CalcError::Failed`] quoting the program's last words.
pub fn run_in_temporary_directory(
    mut command: Command,
    timeout: Duration,
    prepare: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<Finished, CalcError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let io_error = |e: std::io::Error| CalcError::Failed(format!("{program}: {e}"));
    let dir = WorkDir::create().map_err(io_error)?;
    prepare(dir.path()).map_err(io_error)?;
    let stdout_path = dir.path().join("stdout.log");
    let stderr_path = dir.path().join("stderr.log");
    command
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).map_err(io_error)?)
        .stderr(File::create(&stderr_path).map_err(io_error)?);
    let mut child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CalcError::Missing(format!("{program} is not installed (not on PATH)")),
        _ => io_error(e),
    })?;
    let start = Instant::now();
    // Poll with a growing interval: a 20 ms xtb call should not wait 50 ms to be noticed.
    let mut interval = Duration::from_micros(500);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(io_error)? {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CalcError::Failed(format!(
                "{program} timed out after {:.0} s",
                timeout.as_secs_f64()
            )));
        }
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(50));
    };
    if !status.success() {
        let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        return Err(CalcError::Failed(format!(
            "{program} exited with {status}: {}",
            last_words(&stderr, &stdout)
        )));
    }
    Ok(Finished { dir })
}

/// The last few meaningful lines a failed program printed, on one line.
fn last_words(stderr: &str, stdout: &str) -> String {
    let text = if stderr.trim().is_empty() { stdout } else { stderr };
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    if tail.is_empty() {
        "no output".into()
    } else {
        tail.join(" | ")
    }
}
