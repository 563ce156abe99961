//! Running an external program on one structure: in a fresh temporary directory (so parallel
//! jobs never share files and nothing is left behind), output to files (no pipe to fill up),
//! killed after a timeout.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::CalcError;

/// A finished run: its working directory with the program's output files (removed when
/// dropped).
pub struct Finished {
    pub dir: tempfile::TempDir,
}

/// Runs `command` in a new temporary directory after `prepare` has written its inputs there.
/// A non-zero exit or a timeout is a [`CalcError::Failed`] quoting the program's last words.
pub fn run_in_temporary_directory(
    mut command: Command,
    timeout: Duration,
    prepare: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<Finished, CalcError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let io_error = |e: std::io::Error| CalcError::Failed(format!("{program}: {e}"));
    let dir = tempfile::Builder::new()
        .prefix("minima-label-")
        .tempdir()
        .map_err(io_error)?;
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
