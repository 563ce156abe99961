//! Labelling a file of structures as a long job must: in parallel, resumable, sharded.
//!
//! The output file is the journal. Each labelled structure is appended to it as one extxyz
//! frame in a single write, then synced, and carries `label_index` (its frame number in the
//! input) and `calculator`. A rerun first drops a torn last frame (a kill in mid-write), then
//! skips every index already present; when every structure is done the file is rewritten in
//! input order (atomically). Structures the calculator cannot label go, with the reason, to
//! `OUTPUT.failed` (one `index<TAB>reason` line each) and are not retried unless that file is
//! removed. `--shard i/N` takes the frames with `index % N == i` so that N array jobs split a
//! file; [`merge`] joins their outputs in input order.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use minima_atoms::{keys, Atoms, Value};
use minima_io::{extxyz, ReadError};

use crate::{CalcError, Calculator};

/// The info key holding a labelled frame's index in the input file.
pub const LABEL_INDEX: &str = "label_index";

/// One of `count` interleaved parts of the input: frames with `index % count == index_of_shard`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `i/N` with `0 ≤ i < N` (Slurm: `--shard $SLURM_ARRAY_TASK_ID/N` with `--array=0-(N-1)`).
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("shard {s:?} must be i/N with 0 <= i < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[derive(Debug, Clone)]
pub struct LabelOptions {
    /// Structures labelled at the same time (threads; each may run an external program).
    pub jobs: usize,
    pub shard: Option<Shard>,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl Default for LabelOptions {
    fn default() -> Self {
        LabelOptions {
            jobs: 1,
            shard: None,
            progress: true,
        }
    }
}

/// What a labelling run did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSummary {
    /// Structures this shard covers.
    pub selected: usize,
    /// Labelled or failed by an earlier run and skipped.
    pub already_done: usize,
    /// Labelled now.
    pub labelled: usize,
    /// Failed now (see the `.failed` file).
    pub failed: usize,
    /// Failed in all, this run and earlier ones.
    pub failed_total: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Journal(String),
    /// The calculator cannot run at all (program missing): stop rather than fail every frame.
    #[error("{0}")]
    Calculator(CalcError),
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> LabelError + '_ {
    move |source| LabelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file failures of `output` are recorded in.
pub fn failures_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".failed");
    output.with_file_name(name)
}

/// Labels the frames of `input` with `calculator` into `output`, resuming what a previous run
/// of the same command left.
pub fn label(
    calculator: &dyn Calculator,
    input: &Path,
    output: &Path,
    options: &LabelOptions,
) -> Result<LabelSummary, LabelError> {
    let frames = extxyz::read_all(input)?;
    let selected: Vec<usize> = (0..frames.len())
        .filter(|i| options.shard.is_none_or(|s| i % s.count == s.index))
        .collect();
    let mut journal = recover_journal(output, &frames)?;
    let failed_before = recover_failures(&failures_path(output))?;
    let done: HashSet<usize> = journal.keys().chain(failed_before.iter()).copied().collect();
    let todo: Vec<usize> = selected.iter().copied().filter(|i| !done.contains(i)).collect();
    let mut summary = LabelSummary {
        selected: selected.len(),
        already_done: selected.len() - todo.len(),
        failed_total: failed_before.len(),
        ..LabelSummary::default()
    };

    let bar = if options.progress {
        minima_io::progress_bar(todo.len() as u64, calculator.name())
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut appender = Appender::open(output)?;
    let next = AtomicUsize::new(0);
    let (send, receive) = mpsc::channel::<(usize, Result<Atoms, CalcError>)>();
    let outcome = std::thread::scope(|scope| -> Result<(), LabelError> {
        for _ in 0..options.jobs.max(1).min(todo.len().max(1)) {
            let send = send.clone();
            let (next, todo, frames) = (&next, &todo, &frames);
            scope.spawn(move || loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&index) = todo.get(k) else { break };
                let result = labelled_frame(calculator, &frames[index], index);
                if send.send((index, result)).is_err() {
                    // The receiver has stopped (an error): take no more work.
                    break;
                }
            });
        }
        drop(send);
        for (index, result) in receive {
            match result {
                Ok(atoms) => {
                    appender.frame(&atoms)?;
                    journal.insert(index, atoms);
                    summary.labelled += 1;
                }
                Err(CalcError::Missing(message)) => {
                    // Nothing can run: stop handing out work rather than fail every frame.
                    next.store(todo.len(), Ordering::Relaxed);
                    return Err(LabelError::Calculator(CalcError::Missing(message)));
                }
                Err(error) => {
                    appender.failure(index, &error)?;
                    summary.failed += 1;
                    bar.println(format!("frame {index}: failed: {error}"));
                }
            }
            bar.inc(1);
        }
        Ok(())
    });
    bar.finish_and_clear();
    outcome?;
    summary.failed_total += summary.failed;
    // Everything this shard covers is done: put the file in input order.
    let ordered: Vec<Atoms> = journal.into_values().collect();
    extxyz::write_all(output, &ordered).map_err(io_error(output))?;
    Ok(summary)
}

/// `atoms` with its old labels replaced by the calculator's.
fn labelled_frame(calculator: &dyn Calculator, atoms: &Atoms, index: usize) -> Result<Atoms, CalcError> {
    let labels = calculator.calculate_checked(atoms)?;
    let mut out = atoms.clone();
    for key in [keys::ENERGY, "free_energy", "stress"] {
        out.info.shift_remove(key);
    }
    out.remove_array("energies");
    labels.apply(&mut out)?;
    out.info.insert(LABEL_INDEX.into(), Value::Int(index as i64));
    out.info
        .insert("calculator".into(), Value::Str(calculator.name().into()));
    Ok(out)
}

/// Appends to the journal and the failures file, each record in one synced write.
struct Appender {
    output: PathBuf,
    journal: File,
    failures: Option<File>,
}

impl Appender {
    fn open(output: &Path) -> Result<Appender, LabelError> {
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(output)
            .map_err(io_error(output))?;
        Ok(Appender {
            output: output.to_path_buf(),
            journal,
            failures: None,
        })
    }

    fn frame(&mut self, atoms: &Atoms) -> Result<(), LabelError> {
        let text = extxyz::to_string(std::slice::from_ref(atoms));
        let journal = &mut self.journal;
        journal
            .write_all(text.as_bytes())
            .and_then(|_| journal.sync_data())
            .map_err(io_error(&self.output))
    }

    fn failure(&mut self, index: usize, error: &CalcError) -> Result<(), LabelError> {
        let path = failures_path(&self.output);
        if self.failures.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_error(&path))?;
            self.failures = Some(file);
        }
        let reason = error.to_string().replace(['\n', '\t'], " ");
        let file = self.failures.as_mut().expect("opened above");
        file.write_all(format!("{index}\t{reason}\n").as_bytes())
            .and_then(|_| file.sync_data())
            .map_err(io_error(&path))
    }
}

/// The frames already in `output` by input index, after cutting off a torn last frame.
fn recover_journal(output: &Path, inputs: &[Atoms]) -> Result<BTreeMap<usize, Atoms>, LabelError> {
    let mut journal = BTreeMap::new();
    let text = match std::fs::read_to_string(output) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(journal),
        Err(e) => return Err(io_error(output)(e)),
    };
    let complete = complete_frames_length(&text);
    if complete < text.len() {
        let file = OpenOptions::new().write(true).open(output).map_err(io_error(output))?;
        file.set_len(complete as u64)
            .and_then(|_| file.sync_all())
            .map_err(io_error(output))?;
    }
    if complete == 0 {
        // Killed before its first frame, or every structure failed: nothing to recover.
        return Ok(journal);
    }
    let source = output.display().to_string();
    for (frame, atoms) in extxyz::read_str(&text[..complete], &source)?.into_iter().enumerate() {
        let index = atoms.info.get(LABEL_INDEX).and_then(Value::as_i64);
        let matches = index
            .and_then(|i| inputs.get(i as usize))
            .map(|input| input.numbers() == atoms.numbers());
        match (index, matches) {
            (Some(i), Some(true)) => {
                journal.insert(i as usize, atoms);
            }
            _ => {
                return Err(LabelError::Journal(format!(
                    "{source}: frame {frame} is not a labelled frame of this input (no matching {LABEL_INDEX}); \
                     choose another output file to label a different input"
                )))
            }
        }
    }
    Ok(journal)
}

/// The length of the longest prefix of `text` made of whole extxyz frames (count line,
/// comment, that many atom lines, each ending in a newline).
fn complete_frames_length(text: &str) -> usize {
    let mut complete = 0;
    let mut rest = text;
    loop {
        let mut lines = rest.split_inclusive('\n');
        let Some(count) = lines.next().filter(|l| l.ends_with('\n')) else {
            return complete;
        };
        let Ok(n) = count.trim().parse::<usize>() else {
            return complete;
        };
        let mut length = count.len();
        for _ in 0..n + 1 {
            match lines.next() {
                Some(line) if line.ends_with('\n') => length += line.len(),
                _ => return complete,
            }
        }
        complete += length;
        rest = &rest[length..];
    }
}

/// Indices recorded as failed; a torn last line is dropped.
fn recover_failures(path: &Path) -> Result<HashSet<usize>, LabelError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(io_error(path)(e)),
    };
    Ok(text
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| l.split('\t').next()?.parse().ok())
        .collect())
}

/// Joins labelled shards into one file in input order. Refuses frames without
/// `label_index` and indices present twice; returns how many frames were written.
pub fn merge(shards: &[PathBuf], output: &Path) -> Result<usize, LabelError> {
    let mut all: BTreeMap<i64, Atoms> = BTreeMap::new();
    for path in shards {
        for (frame, atoms) in extxyz::read_all(path)?.into_iter().enumerate() {
            let where_ = || format!("{}: frame {frame}", path.display());
            let index =
                atoms.info.get(LABEL_INDEX).and_then(Value::as_i64).ok_or_else(|| {
                    LabelError::Journal(format!("{}: no {LABEL_INDEX}: not a labelled frame", where_()))
                })?;
            if all.insert(index, atoms).is_some() {
                return Err(LabelError::Journal(format!(
                    "{}: {LABEL_INDEX}={index} also appears in an earlier shard",
                    where_()
                )));
            }
        }
    }
    let frames: Vec<Atoms> = all.into_values().collect();
    extxyz::write_all(output, &frames).map_err(io_error(output))?;
    Ok(frames.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Emt, Labels};

    fn cluster(n: usize, spacing: f64) -> Atoms {
        let positions = (0..n)
            .map(|i| [i as f64 * spacing, (i % 2) as f64 * 0.3, 0.0])
            .collect();
        Atoms::new(vec![29; n], positions).unwrap()
    }

    fn input_file(dir: &Path, frames: usize) -> PathBuf {
        let path = dir.join("in.extxyz");
        let frames: Vec<Atoms> = (0..frames).map(|i| cluster(2 + i % 5, 2.4 + 0.01 * i as f64)).collect();
        extxyz::write_all(&path, &frames).unwrap();
        path
    }

    fn quiet(jobs: usize, shard: Option<Shard>) -> LabelOptions {
        LabelOptions {
            jobs,
            shard,
            progress: false,
        }
    }

    /// Fails on clusters of exactly three atoms, as a non-converging SCF would.
    struct Picky;

    impl Calculator for Picky {
        fn name(&self) -> &str {
            "picky"
        }
        fn calculate(&self, atoms: &Atoms) -> Result<Labels, CalcError> {
            if atoms.len() == 3 {
                return Err(CalcError::Failed("abnormal termination".into()));
            }
            Emt::new().calculate(atoms)
        }
    }

    #[test]
    fn parallel_labelling_is_in_input_order_and_a_torn_journal_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let input = input_file(dir.path(), 20);
        let output = dir.path().join("out.extxyz");
        let summary = label(&Emt::new(), &input, &output, &quiet(3, None)).unwrap();
        assert_eq!((summary.labelled, summary.failed), (20, 0));
        let full = std::fs::read_to_string(&output).unwrap();
        let frames = extxyz::read_str(&full, "out").unwrap();
        let indices: Vec<i64> = frames.iter().map(|a| a.info[LABEL_INDEX].as_i64().unwrap()).collect();
        assert_eq!(indices, (0..20).collect::<Vec<_>>());
        assert!(frames.iter().all(|a| a.energy().is_some() && a.forces().is_some()));

        // A kill in the middle of frame 13's write: 13 whole frames and a torn one.
        let cut = complete_frames_length(&full[..full.len() / 2]);
        std::fs::write(&output, format!("{}{}", &full[..cut], &full[cut..cut + 40])).unwrap();
        let summary = label(&Emt::new(), &input, &output, &quiet(2, None)).unwrap();
        assert_eq!(summary.already_done + summary.labelled, 20);
        assert!(summary.labelled > 0 && summary.already_done > 0);
        assert_eq!(std::fs::read_to_string(&output).unwrap(), full);
        // Nothing left: a third run labels nothing.
        let summary = label(&Emt::new(), &input, &output, &quiet(2, None)).unwrap();
        assert_eq!((summary.already_done, summary.labelled), (20, 0));
    }

    #[test]
    fn failures_are_recorded_not_written_and_shards_merge_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let input = input_file(dir.path(), 11);
        let mut shards = Vec::new();
        for i in 0..3 {
            let out = dir.path().join(format!("shard{i}.extxyz"));
            label(&Picky, &input, &out, &quiet(2, Some(Shard { index: i, count: 3 }))).unwrap();
            shards.push(out);
        }
        let failed: usize = shards
            .iter()
            .map(|s| {
                std::fs::read_to_string(failures_path(s))
                    .map(|t| t.lines().count())
                    .unwrap_or(0)
            })
            .sum();
        // Frames 1 and 6 have three atoms.
        assert_eq!(failed, 2);
        let merged = dir.path().join("all.extxyz");
        assert_eq!(merge(&shards, &merged).unwrap(), 9);
        let frames = extxyz::read_all(&merged).unwrap();
        let indices: Vec<i64> = frames.iter().map(|a| a.info[LABEL_INDEX].as_i64().unwrap()).collect();
        assert_eq!(indices, vec![0, 2, 3, 4, 5, 7, 8, 9, 10]);
        let twice = merge(&[shards[0].clone(), shards[0].clone()], &merged).unwrap_err();
        assert!(twice.to_string().contains("also appears"), "{twice}");
        assert!("3/3".parse::<Shard>().is_err() && "1/4".parse::<Shard>().is_ok());
    }

    #[test]
    fn a_journal_from_another_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = input_file(dir.path(), 4);
        let output = dir.path().join("out.extxyz");
        extxyz::write_all(&output, &[cluster(7, 2.5)]).unwrap();
        let err = label(&Emt::new(), &input, &output, &quiet(1, None)).unwrap_err();
        assert!(err.to_string().contains("not a labelled frame of this input"), "{err}");
    }
}
