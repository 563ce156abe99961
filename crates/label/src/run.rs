//! Labelling a file of structures as a long job must: in parallel, resumable, sharded.
//!
//! The output file is the journal. Each labelled structure is appended to it as one extxyz
//! frame in a single write, then synced, and carries `label_index` (its frame number in the
//! input), `label_fingerprint` (the [`fingerprint`] of that input frame) and `calculator`. A job
//! that makes several frames of one input frame (points along a relaxation path) writes them in
//! one write, numbered `label_part` 0, 1, … of `label_parts`. A
//! rerun first drops a torn last write (a kill in mid-write), then skips every index already
//! present whose fingerprint still matches the input; a frame whose atoms moved, whose cell or
//! charge changed since it was labelled, is labelled again (the summary says how many), and
//! its stale label is dropped. A frame of an old journal without `label_fingerprint` is checked
//! by the geometry it stores, which the writer keeps to the last bit. A journal frame with other
//! atoms than its input frame, or another shard's, means another input: refused. When every
//! structure is done the file is rewritten in input order (atomically).
//!
//! Structures the calculator cannot label go, with the reason and their fingerprint, to
//! `OUTPUT.failed` (one `index<TAB>reason<TAB>fingerprint` line each) and are not retried
//! unless that file is removed or the frame changes (lines of older files, without the
//! fingerprint, are kept as they are). A finished run writes `OUTPUT.done`
//! ([`RunRecord`]: the input's identity, the shard); [`merge`] joins shards in input order only
//! when it has every shard of one input, each finished. The output is locked
//! ([`OutputLock`]) while a run or a merge writes it.
//!
//! `--shard i/N` takes the frames with `index % N == i` so that N array jobs split a file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use minima_atoms::{keys, Atoms, Value};
use minima_io::{extxyz, OutputLock, ReadError};

pub use crate::record::{done_path, failures_path, fingerprint, write_failures, Failure, RunRecord, LABEL_FINGERPRINT};
use crate::record::{input_fingerprint, read_failures, remove_if_present};
use crate::{CalcError, Calculator, Labels};

/// The info key holding a labelled frame's index in the input file.
pub const LABEL_INDEX: &str = "label_index";

/// Info keys of a job's several frames of one input frame: the frame's place among them and
/// their number (absent when the job made one frame).
pub const LABEL_PART: &str = "label_part";
pub const LABEL_PARTS: &str = "label_parts";

/// Closer than this (Å), two atoms sit on one site: a duplicated line, a unit slip. Every
/// calculator here would answer such a frame with a meaningless number (EMT's forces divide by
/// the distance), so it is recorded as failed instead.
pub const COINCIDENT_DISTANCE: f64 = 0.1;

/// What a journal holds: by input index, the frames made of that input frame.
type Journal = BTreeMap<usize, Vec<Atoms>>;

/// One of `count` interleaved parts of the input: frames with `index % count == index_of_shard`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole input as one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether frame `index` of the input belongs to this shard.
    pub fn covers(&self, index: usize) -> bool {
        index % self.count == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
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
    /// Labelled or failed by an earlier run, but the input frame has changed since: done again
    /// now.
    pub changed: usize,
    /// Every frame of this shard without labels, failed now or before, in input order.
    pub failed_frames: Vec<usize>,
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
    /// Another process is writing the output (the lock's message names it).
    #[error("{0}")]
    Busy(std::io::Error),
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> LabelError + '_ {
    move |source| LabelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Up to ten frame numbers, then how many there are in all: for messages.
pub fn frame_list(frames: &[usize]) -> String {
    const SHOWN: usize = 10;
    let shown: Vec<String> = frames.iter().take(SHOWN).map(usize::to_string).collect();
    if frames.len() > SHOWN {
        format!("{}, … ({} in all)", shown.join(", "), frames.len())
    } else {
        shown.join(", ")
    }
}

/// Refuses to write `output` when it is the file `source` (the input, a shard): it would be
/// read as a journal or overwritten while read.
fn refuse_same_file(source: &Path, output: &Path, what: &str) -> Result<(), LabelError> {
    let same = match (source.canonicalize(), output.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(LabelError::Journal(format!(
            "{}: the output is {what}; give another output file",
            output.display()
        )));
    }
    Ok(())
}

/// Refuses to resume an output labelled by another calculator: mixing, say, xtb and EMT
/// energies in one set would be silently wrong, and relabelling would discard finished work.
fn refuse_other_calculator(output: &Path, journal: &Journal, name: &str) -> Result<(), LabelError> {
    let other = journal
        .iter()
        .find_map(|(&index, frames)| match frames[0].info.get("calculator") {
            Some(Value::Str(used)) if used != name => Some((index, used.clone())),
            _ => None,
        });
    match other {
        None => Ok(()),
        Some((index, used)) => Err(LabelError::Journal(format!(
            "{}: frame {index} is labelled by {used}, not {name}; give another output to label with {name}",
            output.display()
        ))),
    }
}

/// What a journalled run does to each input frame: [`label`] labels it; `minima data relaxed`
/// relaxes it with the reference. The runner adds `label_index`, `label_fingerprint` and
/// `calculator` (the job's name) to the frame returned, journals it, and records an error as a
/// failure of that frame.
pub trait FrameJob: Sync {
    /// The method's name, recorded in each frame's `calculator` and in the run's `.done`.
    fn name(&self) -> &str;

    /// The frames to write for `atoms`, frame `index` of the input (jobs that draw random
    /// numbers seed them with it): one for most jobs, several in order for a job that records a
    /// path; never called on a frame with no atoms or two on one site.
    fn process(&self, atoms: &Atoms, index: usize) -> Result<Vec<Atoms>, CalcError>;
}

/// Labelling: the input frame with the calculator's labels in place of its old ones.
struct Labelling<'a>(&'a dyn Calculator);

impl FrameJob for Labelling<'_> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn process(&self, atoms: &Atoms, _index: usize) -> Result<Vec<Atoms>, CalcError> {
        let labels = self.0.calculate_checked(atoms)?;
        Ok(vec![with_labels(atoms, &labels, self.0.name())?])
    }
}

/// The info key of the equilibrium flag (minima-data's `sampling::EQUILIBRIUM`).
const EQUILIBRIUM: &str = "equilibrium";

/// `atoms` with `labels` (from the calculator called `calculator`) in place of its old ones. An
/// `equilibrium=T` flag made with another calculator becomes `F`: a minimum of one reference
/// is not one of another, and only `F` keeps the scale rule from claiming it.
pub fn with_labels(atoms: &Atoms, labels: &Labels, calculator: &str) -> Result<Atoms, CalcError> {
    let mut out = atoms.clone();
    for key in [keys::ENERGY, "free_energy", "stress"] {
        out.info.shift_remove(key);
    }
    out.remove_array("energies");
    labels.apply(&mut out)?;
    let same_reference = atoms.info.get("calculator") == Some(&Value::Str(calculator.into()));
    if atoms.info.get(EQUILIBRIUM) == Some(&Value::Bool(true)) && !same_reference {
        out.info.insert(EQUILIBRIUM.into(), Value::Bool(false));
    }
    Ok(out)
}

/// Labels the frames of `input` with `calculator` into `output`, resuming what a previous run
/// of the same command left.
pub fn label(
    calculator: &dyn Calculator,
    input: &Path,
    output: &Path,
    options: &LabelOptions,
) -> Result<LabelSummary, LabelError> {
    run_journalled(&Labelling(calculator), input, output, options)
}

/// Runs `job` over the frames of `input` into `output` as [`label`] does (the module's
/// journal, failures, shards and lock), resuming what a previous run of the same job left.
pub fn run_journalled(
    job: &dyn FrameJob,
    input: &Path,
    output: &Path,
    options: &LabelOptions,
) -> Result<LabelSummary, LabelError> {
    refuse_same_file(input, output, "the input")?;
    if minima_io::is_special(output) {
        return Err(LabelError::Journal(format!(
            "{}: not a regular file; the output is also the journal a rerun resumes from, so give a file",
            output.display()
        )));
    }
    let _lock = OutputLock::acquire(output).map_err(LabelError::Busy)?;
    crate::process::remove_abandoned_work_dirs();
    let frames = extxyz::read_all(input)?;
    let fingerprints: Vec<String> = frames.iter().map(fingerprint).collect();
    let shard = options.shard.unwrap_or(Shard::ALL);
    let selected: Vec<usize> = (0..frames.len()).filter(|&i| shard.covers(i)).collect();
    let (mut journal, changed_labels) = recover_journal(output, &frames, &fingerprints, shard)?;
    refuse_other_calculator(output, &journal, job.name())?;
    let (mut failures, changed_failures) = recover_failures(output, &fingerprints, shard)?;
    failures.retain(|i, _| !journal.contains_key(i));
    let done = |i: &usize| journal.contains_key(i) || failures.contains_key(i);
    let changed = changed_labels.union(&changed_failures).filter(|&&i| !done(&i)).count();
    let todo: Vec<usize> = selected.iter().copied().filter(|i| !done(i)).collect();
    let mut summary = LabelSummary {
        selected: selected.len(),
        already_done: selected.len() - todo.len(),
        changed,
        ..LabelSummary::default()
    };

    // This run changes the output: it is a finished one again only when the run finishes.
    remove_if_present(&done_path(output)).map_err(io_error(&done_path(output)))?;
    let bar = if options.progress {
        minima_io::progress::task(todo.len() as u64, job.name())
    } else {
        minima_io::progress::silent()
    };
    let mut appender = Appender::open(output)?;
    let next = AtomicUsize::new(0);
    let (send, receive) = mpsc::channel::<(usize, Result<Vec<Atoms>, CalcError>)>();
    let outcome = std::thread::scope(|scope| -> Result<(), LabelError> {
        for _ in 0..options.jobs.max(1).min(todo.len().max(1)) {
            let send = send.clone();
            let (next, todo, frames, fingerprints) = (&next, &todo, &frames, &fingerprints);
            scope.spawn(move || loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&index) = todo.get(k) else { break };
                let result = journal_frame(job, &frames[index], index, &fingerprints[index]);
                if send.send((index, result)).is_err() {
                    // The receiver has stopped (an error): take no more work.
                    break;
                }
            });
        }
        drop(send);
        for (index, result) in receive {
            match result {
                Ok(made) => {
                    appender.frames(&made)?;
                    journal.insert(index, made);
                    summary.labelled += 1;
                }
                Err(CalcError::Missing(message)) => {
                    // Nothing can run: stop handing out work rather than fail every frame.
                    next.store(todo.len(), Ordering::Relaxed);
                    return Err(LabelError::Calculator(CalcError::Missing(message)));
                }
                Err(error) => {
                    bar.println(format!("frame {index}: failed: {error}"));
                    let failure = Failure {
                        index,
                        reason: error.to_string(),
                        fingerprint: Some(fingerprints[index].clone()),
                    };
                    appender.failure(&failure)?;
                    failures.insert(index, failure);
                    summary.failed += 1;
                }
            }
            bar.inc(1);
        }
        Ok(())
    });
    bar.finish_and_clear();
    outcome?;
    // Everything this shard covers is done: put the file in input order, drop what is stale.
    let ordered: Vec<Atoms> = journal.into_values().flatten().collect();
    extxyz::write_all(output, &ordered).map_err(io_error(output))?;
    write_failures(output, failures.values()).map_err(io_error(&failures_path(output)))?;
    let record = RunRecord {
        input: input_fingerprint(&fingerprints),
        frames: frames.len(),
        shard,
        calculator: job.name().to_string(),
        input_path: input.display().to_string(),
    };
    record.write(output).map_err(io_error(&done_path(output)))?;
    summary.failed_frames = failures.into_keys().collect();
    Ok(summary)
}

/// Refuses a frame no calculator can label meaningfully: no atoms, or two on one site.
fn check_labellable(atoms: &Atoms) -> Result<(), CalcError> {
    if atoms.is_empty() {
        return Err(CalcError::Input("the frame has no atoms".into()));
    }
    let close =
        minima_neighbors::neighbor_list(atoms, COINCIDENT_DISTANCE).map_err(|e| CalcError::Input(e.to_string()))?;
    if !close.is_empty() {
        let (a, b, d) = (close.first[0], close.second[0], close.distances[0]);
        let (i, j) = (a.min(b), a.max(b));
        return Err(CalcError::Input(if i == j {
            format!("atom {i} is {d:.3} Å from its own periodic image (is the cell in Å?)")
        } else {
            format!("atoms {i} and {j} coincide ({d:.3} Å apart, under {COINCIDENT_DISTANCE} Å)")
        }));
    }
    Ok(())
}

/// What `job` makes of input frame `index`, each frame marked with that index, the input's
/// fingerprint, the job's name and, when there are several, its part.
fn journal_frame(job: &dyn FrameJob, atoms: &Atoms, index: usize, fingerprint: &str) -> Result<Vec<Atoms>, CalcError> {
    check_labellable(atoms)?;
    let mut made = job.process(atoms, index)?;
    if made.is_empty() {
        return Err(CalcError::Failed(format!("{} made no frame of it", job.name())));
    }
    let parts = made.len();
    for (part, out) in made.iter_mut().enumerate() {
        let info = &mut out.info;
        info.insert(LABEL_INDEX.into(), Value::Int(index as i64));
        info.insert(LABEL_FINGERPRINT.into(), Value::Str(fingerprint.to_string()));
        info.insert("calculator".into(), Value::Str(job.name().into()));
        // An input frame may carry the parts of the run that made it: they are not this run's.
        info.shift_remove(LABEL_PART);
        info.shift_remove(LABEL_PARTS);
        if parts > 1 {
            info.insert(LABEL_PART.into(), Value::Int(part as i64));
            info.insert(LABEL_PARTS.into(), Value::Int(parts as i64));
        }
    }
    Ok(made)
}

/// `atoms`' place among its input frame's frames and their number: (0, 1) for a lone frame.
fn part_of(atoms: &Atoms) -> (usize, usize) {
    let int = |key| {
        atoms
            .info
            .get(key)
            .and_then(Value::as_i64)
            .and_then(|v| usize::try_from(v).ok())
    };
    (int(LABEL_PART).unwrap_or(0), int(LABEL_PARTS).unwrap_or(1))
}

/// Consecutive journal frames of one input frame: what one write of the journal holds.
struct Group {
    index: usize,
    /// The group's first frame in the file.
    first_frame: usize,
    frames: Vec<Atoms>,
}

impl Group {
    /// Whether the group holds every part, in order.
    fn is_complete(&self) -> bool {
        let parts = part_of(&self.frames[0]).1;
        self.frames.len() == parts && self.frames.iter().enumerate().all(|(k, a)| part_of(a) == (k, parts))
    }
}

/// Journal frames (each with its input index) grouped by the write that made them: a group
/// ends where the index changes, a part 0 begins, or its parts are all there.
fn group_frames(frames: impl IntoIterator<Item = (usize, Atoms)>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (frame, (index, atoms)) in frames.into_iter().enumerate() {
        let (part, _) = part_of(&atoms);
        match groups.last_mut() {
            Some(group) if group.index == index && part > 0 && group.frames.len() < part_of(&group.frames[0]).1 => {
                group.frames.push(atoms)
            }
            _ => groups.push(Group {
                index,
                first_frame: frame,
                frames: vec![atoms],
            }),
        }
    }
    groups
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

    /// Appends the frames of one input frame in one write.
    fn frames(&mut self, frames: &[Atoms]) -> Result<(), LabelError> {
        let text = extxyz::to_string(frames);
        let journal = &mut self.journal;
        journal
            .write_all(text.as_bytes())
            .and_then(|_| journal.sync_data())
            .map_err(io_error(&self.output))
    }

    fn failure(&mut self, failure: &Failure) -> Result<(), LabelError> {
        let path = failures_path(&self.output);
        if self.failures.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_error(&path))?;
            self.failures = Some(file);
        }
        let file = self.failures.as_mut().expect("opened above");
        file.write_all(failure.line().as_bytes())
            .and_then(|_| file.sync_data())
            .map_err(io_error(&path))
    }
}

/// The frames already in `output` whose input frame is unchanged, by input index, and the
/// indices whose input changed since they were labelled; a torn last write is cut off first.
fn recover_journal(
    output: &Path,
    inputs: &[Atoms],
    fingerprints: &[String],
    shard: Shard,
) -> Result<(Journal, BTreeSet<usize>), LabelError> {
    let (mut journal, mut changed) = (BTreeMap::new(), BTreeSet::new());
    let text = match std::fs::read_to_string(output) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((journal, changed)),
        Err(e) => return Err(io_error(output)(e)),
    };
    let ends = frame_ends(&text);
    let whole = ends.last().copied().unwrap_or(0);
    let source = output.display().to_string();
    let frames = if whole == 0 {
        Vec::new()
    } else {
        extxyz::read_str(&text[..whole], &source)?
    };
    let mut indexed = Vec::with_capacity(frames.len());
    for (frame, atoms) in frames.into_iter().enumerate() {
        let index = atoms.info.get(LABEL_INDEX).and_then(Value::as_i64);
        let input = index
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < inputs.len());
        let Some(i) = input.filter(|&i| inputs[i].numbers() == atoms.numbers()) else {
            return Err(LabelError::Journal(format!(
                "{source}: frame {frame} is not a labelled frame of this input (no matching {LABEL_INDEX}); \
                 choose another output file to label a different input"
            )));
        };
        if !shard.covers(i) {
            return Err(another_shard(&source, &format!("frame {frame}"), i, shard));
        }
        indexed.push((i, atoms));
    }
    let mut groups = group_frames(indexed);
    // A kill in mid-write leaves whole frames of its last write: that write is done again.
    let mut complete = whole;
    if let Some(torn) = groups.pop_if(|g| !g.is_complete()) {
        complete = torn.first_frame.checked_sub(1).map_or(0, |f| ends[f]);
    }
    if complete < text.len() {
        let file = OpenOptions::new().write(true).open(output).map_err(io_error(output))?;
        file.set_len(complete as u64)
            .and_then(|_| file.sync_all())
            .map_err(io_error(output))?;
    }
    if let Some(group) = groups.iter().find(|g| !g.is_complete()) {
        return Err(incomplete_group(&source, group));
    }
    for group in groups {
        // An old journal has no fingerprint: the frame's own geometry, written to the last
        // bit, stands in for it.
        let recorded = match group.frames[0].info.get(LABEL_FINGERPRINT) {
            Some(Value::Str(f)) => f.clone(),
            _ => fingerprint(&group.frames[0]),
        };
        if recorded == fingerprints[group.index] {
            journal.insert(group.index, group.frames);
        } else {
            changed.insert(group.index);
        }
    }
    Ok((journal, changed))
}

fn incomplete_group(source: &str, group: &Group) -> LabelError {
    LabelError::Journal(format!(
        "{source}: frame {}: {LABEL_INDEX}={} has {} of its {} frames ({LABEL_PART} out of order or missing): \
         not a journal this job wrote; choose another output file",
        group.first_frame,
        group.index,
        group.frames.len(),
        part_of(&group.frames[0]).1
    ))
}

fn another_shard(source: &str, what: &str, index: usize, shard: Shard) -> LabelError {
    LabelError::Journal(format!(
        "{source}: {what} ({LABEL_INDEX}={index}) is not in shard {shard}: this output holds another \
         shard's labels; give each shard its own output"
    ))
}

/// The byte offset where each whole extxyz frame at the start of `text` ends (count line,
/// comment, that many atom lines, each ending in a newline); a torn frame ends the list.
fn frame_ends(text: &str) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut complete = 0;
    loop {
        let mut lines = text[complete..].split_inclusive('\n');
        let Some(count) = lines.next().filter(|l| l.ends_with('\n')) else {
            return ends;
        };
        let Ok(n) = count.trim().parse::<usize>() else {
            return ends;
        };
        let mut length = count.len();
        for _ in 0..n + 1 {
            match lines.next() {
                Some(line) if line.ends_with('\n') => length += line.len(),
                _ => return ends,
            }
        }
        complete += length;
        ends.push(complete);
    }
}

/// The failures recorded for `output` that still hold (their input frame is unchanged, or the
/// line is too old to tell), and the indices whose input changed since they failed.
fn recover_failures(
    output: &Path,
    fingerprints: &[String],
    shard: Shard,
) -> Result<(BTreeMap<usize, Failure>, BTreeSet<usize>), LabelError> {
    let path = failures_path(output);
    let source = path.display().to_string();
    let mut changed = BTreeSet::new();
    let mut failures = read_failures(&path).map_err(io_error(&path))?;
    for (&i, failure) in &failures {
        let Some(current) = fingerprints.get(i) else {
            return Err(LabelError::Journal(format!(
                "{source}: frame {i} failed, but the input has {} frames: recorded for another input; \
                 choose another output file to label a different input",
                fingerprints.len()
            )));
        };
        if !shard.covers(i) {
            return Err(another_shard(&source, "a failure", i, shard));
        }
        if failure.fingerprint.as_ref().is_some_and(|f| f != current) {
            changed.insert(i);
        }
    }
    failures.retain(|i, _| !changed.contains(i));
    Ok((failures, changed))
}

/// What [`merge`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeSummary {
    /// Labelled frames written.
    pub written: usize,
    /// Frames the shards recorded as failed, in input order (listed in `OUTPUT.failed`).
    pub failed_frames: Vec<usize>,
}

/// One shard as [`merge`] reads it: its record, labelled frames and failures.
struct ShardPart {
    path: PathBuf,
    record: RunRecord,
    groups: Vec<Group>,
    failures: BTreeMap<usize, Failure>,
}

impl ShardPart {
    /// Reads `path`, refusing a frame without `label_index` and a shard whose labelling has not
    /// finished.
    fn read(path: &Path) -> Result<ShardPart, LabelError> {
        let mut frames = Vec::new();
        // A shard whose every frame failed is an empty file, which is no extxyz file to read.
        let empty = std::fs::metadata(path).is_ok_and(|m| m.len() == 0);
        let labelled = if empty { Vec::new() } else { extxyz::read_all(path)? };
        for (frame, atoms) in labelled.into_iter().enumerate() {
            let index = atoms.info.get(LABEL_INDEX).and_then(Value::as_i64);
            let Some(index) = index.and_then(|i| usize::try_from(i).ok()) else {
                return Err(LabelError::Journal(format!(
                    "{}: frame {frame}: no {LABEL_INDEX}: not a labelled frame",
                    path.display()
                )));
            };
            frames.push((index, atoms));
        }
        let groups = group_frames(frames);
        let record = RunRecord::read(path).map_err(LabelError::Journal)?.ok_or_else(|| {
            LabelError::Journal(format!(
                "{}: its labelling has not finished ({} is missing): rerun the `minima label` command \
                 that wrote it; it resumes where it stopped",
                path.display(),
                done_path(path).display()
            ))
        })?;
        let failures = read_failures(&failures_path(path)).map_err(io_error(&failures_path(path)))?;
        Ok(ShardPart {
            path: path.to_path_buf(),
            record,
            groups,
            failures,
        })
    }

    /// Refuses a frame or failure outside this shard, and a frame of the shard that is neither
    /// labelled nor recorded as failed.
    fn check_complete(&self) -> Result<(), LabelError> {
        let RunRecord { shard, frames, .. } = self.record;
        let source = self.path.display().to_string();
        let outside = |i: usize| i >= frames || !shard.covers(i);
        let mut seen = BTreeSet::new();
        for group in &self.groups {
            let (frame, index) = (group.first_frame, group.index);
            if outside(index) {
                return Err(another_shard(&source, &format!("frame {frame}"), index, shard));
            }
            if !seen.insert(index) {
                return Err(LabelError::Journal(format!(
                    "{source}: frame {frame}: {LABEL_INDEX}={index} appears twice"
                )));
            }
            if !group.is_complete() {
                return Err(incomplete_group(&source, group));
            }
        }
        if let Some(&index) = self.failures.keys().find(|&&i| outside(i)) {
            return Err(another_shard(&source, "a failure", index, shard));
        }
        let missing: Vec<usize> = (0..frames)
            .filter(|&i| shard.covers(i) && !seen.contains(&i) && !self.failures.contains_key(&i))
            .collect();
        if !missing.is_empty() {
            return Err(LabelError::Journal(format!(
                "{source}: frames {} of shard {shard} are neither labelled nor recorded as failed: rerun \
                 the `minima label` command that wrote it",
                frame_list(&missing)
            )));
        }
        Ok(())
    }

    /// Refuses a shard that does not belong with `first`: another input, calculator or split.
    fn check_matches(&self, first: &ShardPart) -> Result<(), LabelError> {
        let (a, b) = (&first.record, &self.record);
        let differs = if a.input != b.input || a.frames != b.frames {
            Some(format!(
                "were labelled from different inputs ({} and {})",
                a.input_path, b.input_path
            ))
        } else if a.shard.count != b.shard.count {
            Some(format!("split the input differently ({} and {})", a.shard, b.shard))
        } else if a.calculator != b.calculator {
            Some(format!(
                "were labelled by different calculators ({} and {})",
                a.calculator, b.calculator
            ))
        } else if a.shard == b.shard {
            Some(format!("are both shard {}", a.shard))
        } else {
            None
        };
        match differs {
            Some(why) => Err(LabelError::Journal(format!(
                "{} and {} {why}",
                first.path.display(),
                self.path.display()
            ))),
            None => Ok(()),
        }
    }
}

/// The fingerprint of `input` as a finished run's record names it.
pub fn input_fingerprint_of(input: &Path) -> Result<String, LabelError> {
    let frames = extxyz::read_all(input)?;
    let fingerprints: Vec<String> = frames.iter().map(fingerprint).collect();
    Ok(input_fingerprint(&fingerprints))
}

/// Whether labelling shard `shard` of the input whose fingerprint is `input` into `output` has
/// finished: its `.done` record is there, for this shard of this input as it is now.
pub fn finished(input: &str, output: &Path, shard: Shard) -> Result<bool, LabelError> {
    let record = RunRecord::read(output).map_err(LabelError::Journal)?;
    Ok(record.is_some_and(|r| r.shard == shard && r.input == input))
}

/// Joins labelled shards into one file in input order, and their failures into `OUTPUT.failed`.
/// Refuses, writing nothing, unless it has every shard of one input, each finished: names the
/// missing shards, or the frames a shard lacks.
pub fn merge(shards: &[PathBuf], output: &Path) -> Result<MergeSummary, LabelError> {
    for shard in shards {
        refuse_same_file(shard, output, "one of the shards")?;
    }
    let _lock = OutputLock::acquire(output).map_err(LabelError::Busy)?;
    let mut parts: Vec<ShardPart> = Vec::with_capacity(shards.len());
    for path in shards {
        let part = ShardPart::read(path)?;
        for earlier in &parts {
            part.check_matches(earlier)?;
        }
        part.check_complete()?;
        parts.push(part);
    }
    let Some(first) = parts.first() else {
        return Err(LabelError::Journal("merge needs at least one shard".into()));
    };
    let count = first.record.shard.count;
    let missing: Vec<String> = (0..count)
        .filter(|&i| !parts.iter().any(|p| p.record.shard.index == i))
        .map(|index| Shard { index, count }.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(LabelError::Journal(format!(
            "{} of the {count} shards missing: {} (input {}); merge needs every shard",
            missing.len(),
            missing.join(", "),
            first.record.input_path
        )));
    }
    let record = RunRecord {
        shard: Shard::ALL,
        ..first.record.clone()
    };
    let mut frames = BTreeMap::new();
    let mut failures = BTreeMap::new();
    for part in parts {
        frames.extend(part.groups.into_iter().map(|g| (g.index, g.frames)));
        failures.extend(part.failures);
    }
    failures.retain(|i, _| !frames.contains_key(i));
    let frames: Vec<Atoms> = frames.into_values().flatten().collect();
    extxyz::write_all(output, &frames).map_err(io_error(output))?;
    write_failures(output, failures.values()).map_err(io_error(&failures_path(output)))?;
    record.write(output).map_err(io_error(&done_path(output)))?;
    Ok(MergeSummary {
        written: frames.len(),
        failed_frames: failures.into_keys().collect(),
    })
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
        let cut = frame_ends(&full[..full.len() / 2]).last().copied().unwrap_or(0);
        std::fs::write(&output, format!("{}{}", &full[..cut], &full[cut..cut + 40])).unwrap();
        let summary = label(&Emt::new(), &input, &output, &quiet(2, None)).unwrap();
        assert_eq!(summary.already_done + summary.labelled, 20);
        assert!(summary.labelled > 0 && summary.already_done > 0);
        assert_eq!(std::fs::read_to_string(&output).unwrap(), full);
        // Nothing left: a third run labels nothing.
        let summary = label(&Emt::new(), &input, &output, &quiet(2, None)).unwrap();
        assert_eq!((summary.already_done, summary.labelled), (20, 0));
    }

    /// A job that makes `index % 3 + 1` frames of each input frame (the frame stretched more
    /// each time), as a job recording a path does.
    struct Stretches;

    impl FrameJob for Stretches {
        fn name(&self) -> &str {
            "stretches"
        }

        fn process(&self, atoms: &Atoms, index: usize) -> Result<Vec<Atoms>, CalcError> {
            Ok((0..index % 3 + 1)
                .map(|k| {
                    let positions = atoms.positions().iter().map(|p| p.map(|x| x * (1.0 + 0.01 * k as f64)));
                    Atoms::new(atoms.numbers().to_vec(), positions.collect()).unwrap()
                })
                .collect())
        }
    }

    #[test]
    fn a_job_of_several_frames_per_input_resumes_whole_writes_and_merges() {
        let dir = tempfile::tempdir().unwrap();
        let input = input_file(dir.path(), 7);
        let output = dir.path().join("out.extxyz");
        let run = |shard| run_journalled(&Stretches, &input, &output, &quiet(2, shard));
        assert_eq!(run(None).unwrap().labelled, 7);
        let full = std::fs::read_to_string(&output).unwrap();
        let frames = extxyz::read_str(&full, "out").unwrap();
        let tags: Vec<(usize, (usize, usize))> = frames
            .iter()
            .map(|a| (a.info[LABEL_INDEX].as_i64().unwrap() as usize, part_of(a)))
            .collect();
        let expected: Vec<(usize, (usize, usize))> = (0..7)
            .flat_map(|i| {
                let parts = i % 3 + 1;
                (0..parts).map(move |k| (i, (k, parts)))
            })
            .collect();
        assert_eq!(tags, expected);
        assert!(
            !frames[0].info.contains_key(LABEL_PARTS),
            "a lone frame carries no parts"
        );

        // A kill in the middle of input frame 5's write, after two of its three frames (9 and
        // 10 of the file): the whole write is done again, and frame 6's.
        let ends = frame_ends(&full);
        let torn = format!("{}{}", &full[..ends[10]], &full[ends[10]..ends[10] + 30]);
        std::fs::write(&output, &torn).unwrap();
        let summary = run(None).unwrap();
        assert_eq!((summary.already_done, summary.labelled), (5, 2));
        assert_eq!(std::fs::read_to_string(&output).unwrap(), full);

        // Only the last write can be torn: a group short of a part elsewhere is refused.
        let mut hand_edited = frames.clone();
        hand_edited.remove(2);
        extxyz::write_all(&output, &hand_edited).unwrap();
        let err = run(None).unwrap_err();
        assert!(err.to_string().contains("label_index=1 has 1 of its 2 frames"), "{err}");

        let shards: Vec<PathBuf> = (0..2)
            .map(|i| {
                let out = dir.path().join(format!("s{i}.extxyz"));
                run_journalled(&Stretches, &input, &out, &quiet(1, Some(Shard { index: i, count: 2 }))).unwrap();
                out
            })
            .collect();
        let merged = dir.path().join("merged.extxyz");
        assert_eq!(merge(&shards, &merged).unwrap().written, frames.len());
        assert_eq!(std::fs::read_to_string(&merged).unwrap(), full);
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
        let summary = merge(&shards, &merged).unwrap();
        assert_eq!((summary.written, summary.failed_frames), (9, vec![1, 6]));
        let frames = extxyz::read_all(&merged).unwrap();
        let indices: Vec<i64> = frames.iter().map(|a| a.info[LABEL_INDEX].as_i64().unwrap()).collect();
        assert_eq!(indices, vec![0, 2, 3, 4, 5, 7, 8, 9, 10]);
        let failed = std::fs::read_to_string(failures_path(&merged)).unwrap();
        assert_eq!(failed.lines().count(), 2);
        assert!(failed.starts_with("1\tabnormal termination\t"), "{failed}");
        let twice = merge(&[shards[0].clone(), shards[0].clone()], &merged).unwrap_err();
        assert!(twice.to_string().contains("are both shard 0/3"), "{twice}");
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

    /// `frames` written to `path` with atom `atom` of frame `frame` moved by `dx` along x.
    fn moved(path: &Path, frame: usize, atom: usize, dx: f64) {
        let mut frames = extxyz::read_all(path).unwrap();
        let mut positions = frames[frame].positions().to_vec();
        positions[atom][0] += dx;
        let numbers = frames[frame].numbers().to_vec();
        frames[frame] = Atoms::new(numbers, positions).unwrap();
        extxyz::write_all(path, &frames).unwrap();
    }

    fn energies(path: &Path) -> Vec<f64> {
        extxyz::read_all(path)
            .unwrap()
            .iter()
            .map(|a| a.energy().unwrap())
            .collect()
    }

    #[test]
    fn a_resume_relabels_exactly_the_frames_whose_atoms_moved() {
        let dir = tempfile::tempdir().unwrap();
        let input = input_file(dir.path(), 6);
        let output = dir.path().join("out.extxyz");
        label(&Emt::new(), &input, &output, &quiet(2, None)).unwrap();
        let before = energies(&output);
        // Same species, same count: only the geometry of frame 2 changes.
        moved(&input, 2, 1, 0.05);
        let summary = label(&Emt::new(), &input, &output, &quiet(2, None)).unwrap();
        assert_eq!((summary.changed, summary.labelled, summary.already_done), (1, 1, 5));
        let straight = dir.path().join("straight.extxyz");
        label(&Emt::new(), &input, &straight, &quiet(1, None)).unwrap();
        let after = energies(&output);
        assert_eq!(after, energies(&straight));
        assert_ne!(after[2], before[2]);
        assert_eq!(
            std::fs::read_to_string(&output).unwrap(),
            std::fs::read_to_string(&straight).unwrap()
        );

        // A journal from before fingerprints: its frames' own geometry is checked instead.
        let mut old: Vec<Atoms> = extxyz::read_all(&output).unwrap();
        for atoms in &mut old {
            atoms.info.shift_remove(LABEL_FINGERPRINT);
        }
        extxyz::write_all(&output, &old).unwrap();
        moved(&input, 4, 0, -0.02);
        let summary = label(&Emt::new(), &input, &output, &quiet(1, None)).unwrap();
        assert_eq!((summary.changed, summary.labelled, summary.already_done), (1, 1, 5));
        label(&Emt::new(), &input, &straight, &quiet(1, None)).unwrap();
        assert_eq!(energies(&output), energies(&straight));
    }

    #[test]
    fn a_failure_is_retried_when_its_frame_changes_and_kept_when_not() {
        let dir = tempfile::tempdir().unwrap();
        let input = input_file(dir.path(), 4);
        let output = dir.path().join("out.extxyz");
        let summary = label(&Picky, &input, &output, &quiet(1, None)).unwrap();
        assert_eq!(summary.failed_frames, vec![1]);
        let summary = label(&Picky, &input, &output, &quiet(1, None)).unwrap();
        assert_eq!((summary.labelled, summary.failed, summary.changed), (0, 0, 0));
        assert_eq!(summary.failed_frames, vec![1]);
        moved(&input, 1, 0, 0.1);
        let summary = label(&Picky, &input, &output, &quiet(1, None)).unwrap();
        assert_eq!((summary.failed, summary.changed), (1, 1));
        let failed = std::fs::read_to_string(failures_path(&output)).unwrap();
        assert_eq!(failed.lines().count(), 1, "{failed}");
        assert_eq!(
            failed.split('\t').nth(2).unwrap().trim(),
            fingerprint(&extxyz::read_all(&input).unwrap()[1])
        );
    }

    #[test]
    fn frames_no_method_can_label_are_failures_with_their_reason() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.extxyz");
        let twins = Atoms::new(vec![29; 3], vec![[0.0; 3], [2.5, 0.0, 0.0], [2.5, 0.0, 0.001]]).unwrap();
        let empty = Atoms::new(vec![], vec![]).unwrap();
        let iron = Atoms::new(vec![26, 29], vec![[0.0; 3], [2.5, 0.0, 0.0]]).unwrap();
        extxyz::write_all(&input, &[cluster(3, 2.5), twins, empty, iron]).unwrap();
        let output = dir.path().join("out.extxyz");
        let summary = label(&Emt::new(), &input, &output, &quiet(1, None)).unwrap();
        assert_eq!((summary.labelled, summary.failed_frames.clone()), (1, vec![1, 2, 3]));
        let failed = std::fs::read_to_string(failures_path(&output)).unwrap();
        let reasons: Vec<&str> = failed.lines().map(|l| l.split('\t').nth(1).unwrap()).collect();
        assert_eq!(
            reasons,
            [
                "atoms 1 and 2 coincide (0.001 Å apart, under 0.1 Å)",
                "the frame has no atoms",
                "EMT has no parameters for Fe"
            ]
        );
        assert_eq!(extxyz::read_all(&output).unwrap().len(), 1);
    }

    #[test]
    fn a_locked_output_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let input = input_file(dir.path(), 2);
        let output = dir.path().join("out.extxyz");
        let held = OutputLock::acquire(&output).unwrap();
        let err = label(&Emt::new(), &input, &output, &quiet(1, None)).unwrap_err();
        assert!(err.to_string().contains("another minima process is writing"), "{err}");
        assert!(!output.exists());
        drop(held);
        label(&Emt::new(), &input, &output, &quiet(1, None)).unwrap();
        let err = label(&Emt::new(), &input, &input, &quiet(1, None)).unwrap_err();
        assert!(err.to_string().contains("the output is the input"), "{err}");
    }

    #[test]
    fn merge_refuses_missing_unfinished_and_foreign_shards() {
        let dir = tempfile::tempdir().unwrap();
        let input = input_file(dir.path(), 10);
        let shard = |i: usize, input: &Path, name: &str| {
            let out = dir.path().join(format!("{name}{i}.extxyz"));
            label(&Emt::new(), input, &out, &quiet(1, Some(Shard { index: i, count: 3 }))).unwrap();
            out
        };
        let shards: Vec<PathBuf> = (0..3).map(|i| shard(i, &input, "s")).collect();
        let merged = dir.path().join("all.extxyz");
        let err = merge(&[shards[0].clone(), shards[2].clone()], &merged).unwrap_err();
        assert!(err.to_string().contains("1 of the 3 shards missing: 1/3"), "{err}");
        assert!(!merged.exists());

        std::fs::remove_file(done_path(&shards[1])).unwrap();
        let err = merge(&shards, &merged).unwrap_err();
        assert!(
            err.to_string().contains("s1.extxyz: its labelling has not finished"),
            "{err}"
        );
        label(
            &Emt::new(),
            &input,
            &shards[1],
            &quiet(1, Some(Shard { index: 1, count: 3 })),
        )
        .unwrap();

        // A shard that lost frames (a hand-edited file) names them.
        let mut frames = extxyz::read_all(&shards[2]).unwrap();
        let complete = frames.clone();
        frames.remove(1);
        extxyz::write_all(&shards[2], &frames).unwrap();
        let err = merge(&shards, &merged).unwrap_err();
        assert!(
            err.to_string().contains("frames 5 of shard 2/3 are neither labelled"),
            "{err}"
        );
        extxyz::write_all(&shards[2], &complete).unwrap();

        let other = dir.path().join("other.extxyz");
        std::fs::copy(&input, &other).unwrap();
        moved(&other, 4, 0, 0.01);
        let foreign = shard(1, &other, "o");
        let err = merge(&[shards[0].clone(), foreign, shards[2].clone()], &merged).unwrap_err();
        assert!(err.to_string().contains("were labelled from different inputs"), "{err}");

        let summary = merge(&shards, &merged).unwrap();
        assert_eq!((summary.written, summary.failed_frames.len()), (10, 0));
        let straight = dir.path().join("straight.extxyz");
        label(&Emt::new(), &input, &straight, &quiet(1, None)).unwrap();
        assert_eq!(std::fs::read(&merged).unwrap(), std::fs::read(&straight).unwrap());
        assert_eq!(RunRecord::read(&merged).unwrap(), RunRecord::read(&straight).unwrap());
    }

    #[test]
    fn an_output_of_another_shard_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = input_file(dir.path(), 6);
        let output = dir.path().join("out.extxyz");
        label(
            &Emt::new(),
            &input,
            &output,
            &quiet(1, Some(Shard { index: 0, count: 2 })),
        )
        .unwrap();
        let err = label(
            &Emt::new(),
            &input,
            &output,
            &quiet(1, Some(Shard { index: 1, count: 2 })),
        )
        .unwrap_err();
        assert!(err.to_string().contains("is not in shard 1/2"), "{err}");
    }
}
