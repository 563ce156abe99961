//! What a labelling run records beside its output, so that a rerun and `merge` can tell what
//! is done, for which input: each input frame's fingerprint, the failures file and the record
//! of a finished run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minima_atoms::Atoms;

use crate::run::Shard;

/// The info key holding the fingerprint of the input frame a labelled frame was made from.
pub const LABEL_FINGERPRINT: &str = "label_fingerprint";

/// Every fingerprint starts so: it can never be read back as a number, and a failures line
/// can tell it from a reason.
const FINGERPRINT_PREFIX: &str = "fnv1a-";

/// 64-bit FNV-1a: stable across Rust versions and machines (std's hasher is not), so a journal
/// written by one build is read correctly by the next.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn floats<'a>(&mut self, values: impl IntoIterator<Item = &'a f64>) {
        for x in values {
            self.bytes(&x.to_bits().to_le_bytes());
        }
    }

    fn finish(&self) -> String {
        format!("{FINGERPRINT_PREFIX}{:016x}", self.0)
    }
}

/// What a calculator sees of a frame, to the bit: atomic numbers, positions, cell, periodicity
/// and the `charge` and `uhf` the quantum-chemistry codes read. Equal fingerprints mean equal
/// labels; old labels (energy, forces) and other info do not enter.
pub fn fingerprint(atoms: &Atoms) -> String {
    let mut hash = Fnv::new();
    hash.bytes(&(atoms.len() as u64).to_le_bytes());
    hash.bytes(atoms.numbers());
    hash.floats(atoms.positions().iter().flatten());
    match atoms.cell() {
        Some(cell) => {
            hash.bytes(&[1]);
            hash.floats(cell.vectors().iter().flatten());
        }
        None => hash.bytes(&[0]),
    }
    hash.bytes(&atoms.pbc().map(u8::from));
    for key in ["charge", "uhf"] {
        match atoms.info.get(key) {
            Some(value) => {
                hash.bytes(&[1]);
                hash.bytes(minima_io::keyval::format_value(value).as_bytes());
            }
            None => hash.bytes(&[0]),
        }
    }
    hash.finish()
}

/// The identity of a whole input: its frame count and every frame's fingerprint.
pub fn input_fingerprint(fingerprints: &[String]) -> String {
    let mut hash = Fnv::new();
    hash.bytes(&(fingerprints.len() as u64).to_le_bytes());
    for f in fingerprints {
        hash.bytes(f.as_bytes());
    }
    hash.finish()
}

/// The file failures of `output` are recorded in.
pub fn failures_path(output: &Path) -> PathBuf {
    sibling(output, ".failed")
}

/// The file recording that labelling into `output` finished (see [`RunRecord`]).
pub fn done_path(output: &Path) -> PathBuf {
    sibling(output, ".done")
}

fn sibling(output: &Path, suffix: &str) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    output.with_file_name(name)
}

/// One line of a failures file: `index<TAB>reason<TAB>fingerprint`. Files written before
/// fingerprints were recorded have `index<TAB>reason`.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub index: usize,
    pub reason: String,
    /// The fingerprint of the input frame that failed; `None` in old files.
    pub fingerprint: Option<String>,
}

impl Failure {
    /// The line, newline included; tabs and newlines in the reason become spaces.
    pub fn line(&self) -> String {
        let reason = self.reason.replace(['\n', '\t'], " ");
        match &self.fingerprint {
            Some(f) => format!("{}\t{reason}\t{f}\n", self.index),
            None => format!("{}\t{reason}\n", self.index),
        }
    }

    fn parse(line: &str) -> Option<Failure> {
        let (index, rest) = line.split_once('\t')?;
        let index = index.trim().parse().ok()?;
        let (reason, fingerprint) = match rest.rsplit_once('\t') {
            Some((reason, f)) if f.starts_with(FINGERPRINT_PREFIX) => (reason, Some(f.to_string())),
            _ => (rest, None),
        };
        Some(Failure {
            index,
            reason: reason.to_string(),
            fingerprint,
        })
    }
}

/// The failures recorded in `path` by index (the last record of an index wins); a torn last
/// line (a kill in mid-write) is dropped. No file: none.
pub fn read_failures(path: &Path) -> std::io::Result<BTreeMap<usize, Failure>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'))
        .filter_map(Failure::parse)
        .map(|f| (f.index, f))
        .collect())
}

/// Writes the failures file of `output` atomically, or removes it when there are none (a
/// stale list would claim failures that are no longer there).
pub fn write_failures<'a>(output: &Path, failures: impl IntoIterator<Item = &'a Failure>) -> std::io::Result<()> {
    let path = failures_path(output);
    let text: String = failures.into_iter().map(Failure::line).collect();
    if text.is_empty() {
        return remove_if_present(&path);
    }
    minima_io::write_atomic(&path, |out| std::io::Write::write_all(out, text.as_bytes()))
}

/// Removes `path`; one that is not there is fine.
pub fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Written beside an output (`OUTPUT.done`) when every frame its run covers is labelled or
/// recorded as failed, and removed when a run starts changing the output: what `merge` needs to
/// tell that it has every shard, complete, of one input.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// [`input_fingerprint`] of the labelled input.
    pub input: String,
    /// Frames in the input.
    pub frames: usize,
    /// The part of the input this output covers (0/1: all of it).
    pub shard: Shard,
    pub calculator: String,
    /// The input's path when it was labelled, for messages and people reading the file.
    pub input_path: String,
}

impl RunRecord {
    /// Writes the record of `output` atomically.
    pub fn write(&self, output: &Path) -> std::io::Result<()> {
        let text = format!(
            "# minima label finished this output; merge checks its shards with this record\n\
             input_fingerprint\t{}\nframes\t{}\nshard\t{}/{}\ncalculator\t{}\ninput\t{}\n",
            self.input,
            self.frames,
            self.shard.index,
            self.shard.count,
            self.calculator,
            self.input_path.replace(['\n', '\t'], " ")
        );
        minima_io::write_atomic(&done_path(output), |out| {
            std::io::Write::write_all(out, text.as_bytes())
        })
    }

    /// The record of `output`: `Ok(None)` when there is none, an error naming the file when it
    /// cannot be read or understood.
    pub fn read(output: &Path) -> Result<Option<RunRecord>, String> {
        let path = done_path(output);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let fields: BTreeMap<&str, &str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('\t'))
            .collect();
        let field = |key: &str| {
            fields
                .get(key)
                .copied()
                .ok_or_else(|| format!("{}: no {key} line: not a record of minima label", path.display()))
        };
        let bad = |key: &str| format!("{}: bad {key} line", path.display());
        Ok(Some(RunRecord {
            input: field("input_fingerprint")?.to_string(),
            frames: field("frames")?.parse().map_err(|_| bad("frames"))?,
            shard: field("shard")?.parse().map_err(|_| bad("shard"))?,
            calculator: field("calculator")?.to_string(),
            input_path: field("input")?.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_see_every_bit_of_the_geometry_and_nothing_else() {
        let atoms = Atoms::new(vec![29, 29], vec![[0.0; 3], [0.0, 0.0, 2.5]]).unwrap();
        let base = fingerprint(&atoms);
        let mut labelled = atoms.clone();
        labelled.set_energy(-1.0);
        labelled
            .info
            .insert("note".into(), minima_atoms::Value::Str("x".into()));
        assert_eq!(fingerprint(&labelled), base);
        let moved = Atoms::new(vec![29, 29], vec![[0.0; 3], [0.0, 0.0, 2.5f64.next_up()]]).unwrap();
        let other = Atoms::new(vec![29, 28], vec![[0.0; 3], [0.0, 0.0, 2.5]]).unwrap();
        let mut charged = atoms.clone();
        charged.info.insert("charge".into(), minima_atoms::Value::Int(1));
        for changed in [moved, other, charged] {
            assert_ne!(fingerprint(&changed), base);
        }
        assert!(base.starts_with(FINGERPRINT_PREFIX) && base.len() == FINGERPRINT_PREFIX.len() + 16);
    }

    #[test]
    fn failure_lines_round_trip_old_and_new() {
        let new = Failure {
            index: 3,
            reason: "xtb exited\twith 1".into(),
            fingerprint: Some(format!("{FINGERPRINT_PREFIX}00000000000000ab")),
        };
        let line = new.line();
        assert_eq!(line, "3\txtb exited with 1\tfnv1a-00000000000000ab\n");
        let parsed = Failure::parse(line.trim_end()).unwrap();
        assert_eq!(parsed.reason, "xtb exited with 1");
        assert_eq!(parsed.fingerprint, new.fingerprint);
        let old = Failure::parse("0\tEMT has no parameters for Fe").unwrap();
        assert_eq!((old.index, old.fingerprint), (0, None));
    }
}
