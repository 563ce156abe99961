//! Exclusive locks on outputs: two processes writing one output (a run folder, a labelled
//! file) would interleave or overwrite each other's work, so each holds a lock file beside
//! its output while it writes. The lock is the operating system's (`flock`), released when the
//! process ends however it ends, so a killed run never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Held while a process writes `output`; dropping it releases the lock.
#[derive(Debug)]
pub struct OutputLock {
    /// `None` for a device or pipe (`-o /dev/null`): nothing to protect, and no lock file is
    /// left in `/dev`.
    _file: Option<File>,
    path: PathBuf,
}

impl OutputLock {
    /// Locks `output` (a file or a folder) through the hidden file `.NAME.lock` beside it
    /// (inside it, for a folder that exists). Fails, naming the output, when another
    /// process holds the lock past a brief grace ([`GRACE`]).
    pub fn acquire(output: &Path) -> io::Result<OutputLock> {
        let path = lock_path(output);
        if crate::atomic::is_special(output) {
            return Ok(OutputLock { _file: None, path });
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: cannot create lock file: {e}", path.display())))?;
        match try_lock_briefly(&file) {
            Ok(()) => Ok(OutputLock {
                _file: Some(file),
                path,
            }),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "{}: another minima process is writing this output (lock {}); wait for it or choose another output",
                    output.display(),
                    path.display()
                ),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(io::Error::new(
                e.kind(),
                format!("{}: cannot lock: {e}", path.display()),
            )),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How long a held lock is retried before it counts as another writer's.
const GRACE: Duration = Duration::from_millis(500);

/// `flock`, retried for a moment: a child process another thread is starting holds a copy of
/// every descriptor until its `exec` closes them, so a lock just released can still look held
/// for that long. A real writer holds it far longer than the grace.
fn try_lock_briefly(file: &File) -> Result<(), std::fs::TryLockError> {
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < GRACE => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn lock_path(output: &Path) -> PathBuf {
    if output.is_dir() {
        return output.join(".minima.lock");
    }
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!(".{name}.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_output_fails_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("labelled.extxyz");
        let first = OutputLock::acquire(&output).unwrap();
        let error = OutputLock::acquire(&output).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
        assert!(error.to_string().contains("labelled.extxyz"), "{error}");
        drop(first);
        OutputLock::acquire(&output).unwrap();
    }

    #[test]
    fn a_folder_is_locked_from_inside() {
        let dir = tempfile::tempdir().unwrap();
        let lock = OutputLock::acquire(dir.path()).unwrap();
        assert_eq!(lock.path(), dir.path().join(".minima.lock"));
    }
}
