//! Atomic file writes: write a temporary file beside the target, fsync it, rename it over the
//! target. A reader sees the old file or the new one, never half of one, even after SIGKILL.
//! A failure (permission denied, no space left, a parent that is not a directory) is an error
//! that names the target, whatever step failed, with the error kind kept.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

/// Writes `path` atomically with the bytes `write` produces; an error names `path`.
pub fn write_atomic<F>(path: &Path, write: F) -> io::Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> io::Result<()>,
{
    let tmp = temporary_sibling(path);
    let result = (|| {
        let mut out = BufWriter::new(File::create(&tmp)?);
        write(&mut out)?;
        out.into_inner().map_err(|e| e.into_error())?;
        sync_and_rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| naming(path, e))
}

/// Makes `tmp`, a finished file written by other means (a library's own writer), the new
/// content of `path`: fsync, rename, fsync the directory. An error names `path`.
pub fn commit(tmp: &Path, path: &Path) -> io::Result<()> {
    sync_and_rename(tmp, path).map_err(|e| naming(path, e))
}

fn sync_and_rename(tmp: &Path, path: &Path) -> io::Result<()> {
    if is_special(path) {
        // `-o /dev/null` or a named pipe: renaming over it would replace the device node
        // (as root) with a regular file, so the bytes are streamed into it instead.
        let copied = io::copy(
            &mut File::open(tmp)?,
            &mut fs::OpenOptions::new().write(true).open(path)?,
        );
        fs::remove_file(tmp)?;
        return copied.map(|_| ());
    }
    File::open(tmp)?.sync_all()?;
    fs::rename(tmp, path)?;
    sync_parent(path)
}

/// Whether `path` exists and is neither a regular file nor a folder (a device, a pipe).
pub fn is_special(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// `error` with the output it hit, keeping its kind (a broken pipe stays one).
fn naming(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("cannot write {}: {error}", path.display()))
}

/// A temporary path beside `path`, for [`commit`].
pub fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Makes the rename itself durable: the directory entry is data too.
fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn replaces_content_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        write_atomic(&target, |w| w.write_all(b"first")).unwrap();
        write_atomic(&target, |w| w.write_all(b"second")).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "second");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failures_name_the_output() {
        let dir = tempfile::tempdir().unwrap();
        // Root ignores permissions; a parent that is a regular file fails for everyone.
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        let target = file.join("out.txt");
        let err = write_atomic(&target, |w| w.write_all(b"x")).unwrap_err();
        assert!(err.to_string().contains(&*target.to_string_lossy()), "{err}");
        // A full disk while writing: the kind survives and the message names the target.
        let full = dir.path().join("full.txt");
        let err = write_atomic(&full, |_| Err(io::Error::from(io::ErrorKind::StorageFull))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert!(err.to_string().contains(&*full.to_string_lossy()), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = commit(&dir.path().join("missing.tmp"), &full).unwrap_err();
        assert!(err.to_string().contains(&*full.to_string_lossy()), "{err}");
    }

    #[test]
    fn a_device_is_written_into_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let null = Path::new("/dev/null");
        write_atomic(null, |w| w.write_all(b"discarded")).unwrap();
        assert!(is_special(null), "/dev/null must stay a device");
        let tmp = dir.path().join("finished");
        fs::write(&tmp, b"discarded").unwrap();
        commit(&tmp, null).unwrap();
        assert!(is_special(null) && !tmp.exists());
    }

    #[test]
    fn failed_write_keeps_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        write_atomic(&target, |w| w.write_all(b"kept")).unwrap();
        let err = write_atomic(&target, |_| Err(io::Error::other("boom")));
        assert!(err.is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "kept");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
