//! `minima learn`: committee active learning, the loop DP-GEN, FLARE and MACE's example script
//! run, in one tool with its labelling, training and relaxation.
//!
//! Each iteration k, in `output/iter-k/`:
//! 1. **train** a committee (`committee/member-j`) on the initial data and every frame the
//!    loop has labelled so far; iteration 0 from scratch, later ones fine-tuned from the
//!    previous committee (member j from member j);
//! 2. **validate** it on fixed held-out molecules (made once, with the reference, in
//!    `output/validation_*`): energy and force MAE of the committee mean on the labelled
//!    starts, and relaxations of those starts (blown up, converged, ΔP from the reference
//!    minima after superposition, as `bench-minima` measures them);
//! 3. unless this is the last iteration or the validation ΔP has stopped improving:
//!    **explore** with the committee mean (relaxations from rattled, compressed and stretched
//!    starts of training structures, and short Langevin dynamics), **select** the frames whose
//!    largest force deviation lies in the trust window (deduplicated, capped) and **label**
//!    them with the reference. Fewer candidates than `stop.selected_fraction` ends the loop.
//!
//! Every stage leaves a file when it completes (`trained.json`, `validation.json`,
//! `explored.json`, `selection.json`, `labelled.json`, then `iteration.json`); a rerun of the
//! same command skips what is done and resumes the stage it was killed in (training from its
//! last epoch, labelling from its journal), so no frame is labelled twice or lost. The log is
//! `learn.csv` and `learn.svg`/`.png`, rewritten after every iteration.

pub mod config;
pub mod explore;
pub mod select;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use minima_atoms::{Atoms, Calculator};
use minima_explore::landing::{land, summarize, Collapse, Start};
use minima_explore::relax::RelaxOptions;
use minima_label::run::run_journalled;
use minima_label::scheduler::{Scheduler, ShardedLabel, ShardedOutcome};
use minima_label::LabelOptions;
use minima_model::Committee;
use minima_train::config::DataFiles;
use minima_train::Start as TrainStart;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use config::{LearnConfig, LearnFile};
pub use select::Selection;

/// What one iteration did and measured: one row of `learn.csv`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IterationRecord {
    pub iteration: usize,
    /// Frames the loop had labelled and added before this iteration trained.
    pub added_frames: usize,
    /// Frames the committee trained on (training split, all members alike).
    pub training_frames: usize,
    pub train_minutes: f64,
    pub validation: Validation,
    /// Exploration, selection and labelling (absent when the loop stopped before them).
    pub explored: Option<Selection>,
    pub exploration_failures: usize,
    pub labelled: Option<usize>,
    pub label_failures: Option<usize>,
    /// Wall time of the iteration's completed stages, over every sitting.
    pub wall_minutes: f64,
}

/// The committee's figures on the fixed validation molecules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// Energy MAE (eV) and force-component MAE (eV/Å) of the committee mean on the labelled
    /// minima and starts.
    pub energy_mae: f64,
    pub force_mae: f64,
    pub frames: usize,
    /// Relaxations of the starts.
    pub relaxations: usize,
    pub blown_up: usize,
    pub converged: usize,
    /// Median ΔP (Å) over the relaxations that did not blow up; per start as well.
    pub delta_p_median: Option<f64>,
    pub by_start: Vec<StartFigures>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StartFigures {
    pub start: String,
    pub relaxations: usize,
    pub blown_up: usize,
    pub converged: usize,
    pub delta_p_median: Option<f64>,
}

/// How the loop ended.
#[derive(Debug, Clone)]
pub struct LearnOutcome {
    pub records: Vec<IterationRecord>,
    pub stopped: String,
    /// The last committee's folder.
    pub committee: PathBuf,
}

/// The files of the fixed validation set, in the loop's output folder.
struct ValidationFiles {
    molecules: PathBuf,
    minima: PathBuf,
    starts: PathBuf,
    labelled: PathBuf,
}

impl ValidationFiles {
    fn new(out: &Path) -> ValidationFiles {
        ValidationFiles {
            molecules: out.join("validation_molecules.extxyz"),
            minima: out.join("validation_minima.extxyz"),
            starts: out.join("validation_starts.extxyz"),
            labelled: out.join("validation_labelled.extxyz"),
        }
    }
}

/// Runs (or continues) the loop `file` describes.
pub fn learn(file: &LearnFile) -> Result<LearnOutcome> {
    let l = &file.learn;
    let out = &l.output;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let _lock = minima_io::OutputLock::acquire(out).with_context(|| format!("{}: cannot write", out.display()))?;
    check_same_configuration(file)?;
    let reference = minima_label::calculator_by_name(&l.reference, &Default::default())?;
    let validation = ValidationFiles::new(out);
    prepare_validation(file, reference.as_ref(), &validation)?;

    let mut records: Vec<IterationRecord> = Vec::new();
    let mut stopped = format!("reached learn.iterations = {}", l.iterations);
    let mut committee_folder = PathBuf::new();
    for k in 0..l.iterations {
        let dir = iteration_dir(out, k);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        committee_folder = dir.join("committee");
        let record_path = dir.join("iteration.json");
        let record = match read_json::<IterationRecord>(&record_path)? {
            Some(record) => record,
            None => {
                let record = iteration(file, reference.as_ref(), &validation, &records, k)?;
                write_json(&record_path, &record)?;
                record
            }
        };
        records.push(record);
        write_log(out, &records)?;
        if let Some(why) = stop_reason(l, &records) {
            stopped = why;
            break;
        }
    }
    Ok(LearnOutcome {
        records,
        stopped,
        committee: committee_folder,
    })
}

/// Why the loop stops after the iterations in `records`, if it does.
fn stop_reason(l: &LearnConfig, records: &[IterationRecord]) -> Option<String> {
    let last = records.last()?;
    if let Some(selection) = &last.explored {
        if selection.candidate_fraction() < l.stop.selected_fraction {
            return Some(format!(
                "the committee agreed on all but {:.2} % of the explored frames (learn.stop.selected_fraction = {})",
                100.0 * selection.candidate_fraction(),
                l.stop.selected_fraction
            ));
        }
    }
    if records.len() < l.iterations && stalled(l, records) {
        return Some(format!(
            "the validation median ΔP has not improved for {} iterations (learn.stop.patience)",
            l.stop.patience
        ));
    }
    None
}

/// Whether the validation figures have not improved over the last `patience` iterations.
fn stalled(l: &LearnConfig, records: &[IterationRecord]) -> bool {
    let medians: Vec<f64> = records
        .iter()
        .map(|r| r.validation.delta_p_median.unwrap_or(f64::INFINITY))
        .collect();
    let Some(best) = medians
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
    else {
        return false;
    };
    medians.len() - 1 - best >= l.stop.patience
}

fn iteration_dir(out: &Path, k: usize) -> PathBuf {
    out.join(format!("iter-{k}"))
}

/// One iteration, each stage skipped when its file says it is done.
fn iteration(
    file: &LearnFile,
    reference: &dyn Calculator,
    validation: &ValidationFiles,
    earlier: &[IterationRecord],
    k: usize,
) -> Result<IterationRecord> {
    let l = &file.learn;
    let out = &l.output;
    let dir = iteration_dir(out, k);
    minima_io::progress::status(format_args!("learn: iteration {k}"));

    // 1. Train.
    let added: Vec<PathBuf> = (0..k)
        .map(|j| iteration_dir(out, j).join("labelled.extxyz"))
        .filter(|p| p.exists() && std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect();
    let added_frames = earlier.iter().filter_map(|r| r.labelled).sum();
    let trained = stage(&dir.join("trained.json"), || train(file, &dir, k, &added))?;

    // 2. Validate.
    let committee = Committee::load(
        &[dir.join("committee")],
        minima_model::parse_device(&file.run.train.device)?,
    )?;
    let validated = stage(&dir.join("validation.json"), || validate(file, &committee, validation))?;
    minima_io::progress::status(format_args!(
        "learn: iteration {k}: force MAE {:.4} eV/Å, {} of {} relaxations converged, {} blown up, median ΔP {}",
        validated.force_mae,
        validated.converged,
        validated.relaxations,
        validated.blown_up,
        validated
            .delta_p_median
            .map_or("—".to_string(), |p| format!("{p:.3} Å"))
    ));
    let mut record = IterationRecord {
        iteration: k,
        added_frames,
        training_frames: trained.training_frames,
        train_minutes: trained.minutes,
        validation: validated,
        ..IterationRecord::default()
    };
    let mut so_far = earlier.to_vec();
    so_far.push(record.clone());
    if k + 1 == l.iterations || stalled(l, &so_far) {
        record.wall_minutes = wall_seconds(&dir)? / 60.0;
        return Ok(record);
    }

    // 3. Explore, select, label.
    let explored_file = dir.join("explored.extxyz");
    let exploration = stage(&dir.join("explored.json"), || {
        explore_with(file, &committee, k, &explored_file, &dir.join("md"))
    })?;
    let selected_file = dir.join("selected.extxyz");
    let selection = stage(&dir.join("selection.json"), || {
        let explored = minima_io::extxyz::read_all(&explored_file)?;
        let (chosen, tally) = select::select(&explored, &l.select, l.seed.wrapping_add(k as u64));
        minima_io::extxyz::write_all(&selected_file, &chosen)
            .with_context(|| format!("{}: cannot write", selected_file.display()))?;
        Ok(tally)
    })?;
    record.explored = Some(selection.clone());
    record.exploration_failures = exploration.failures.len();
    if selection.candidate_fraction() >= l.stop.selected_fraction && selection.selected > 0 {
        let labelled = stage(&dir.join("labelled.json"), || {
            label(l, reference, &selected_file, &dir.join("labelled.extxyz"))
        })?;
        record.labelled = Some(labelled.labelled);
        record.label_failures = Some(labelled.failed);
    }
    record.wall_minutes = wall_seconds(&dir)? / 60.0;
    Ok(record)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Trained {
    epochs: usize,
    stopped: String,
    minutes: f64,
    training_frames: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Exploration {
    molecules: usize,
    /// Paths the calculator failed on or that collapsed, each with its reason.
    failures: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LabelCounts {
    labelled: usize,
    failed: usize,
}

/// The result a stage recorded in `path`, or the stage run now and its result recorded. The
/// wall time of every stage that completes is added to `wall_seconds` beside it, so that an
/// iteration's time counts every sitting it took (a sitting killed mid-stage loses that
/// stage's time).
fn stage<T: Serialize + DeserializeOwned>(path: &Path, run: impl FnOnce() -> Result<T>) -> Result<T> {
    if let Some(done) = read_json(path)? {
        return Ok(done);
    }
    let started = Instant::now();
    let result = run()?;
    let clock = path.with_file_name(WALL_SECONDS);
    let before = wall_seconds(path.parent().unwrap_or(Path::new(".")))?;
    write_json(&clock, &(before + started.elapsed().as_secs_f64()))?;
    write_json(path, &result)?;
    Ok(result)
}

const WALL_SECONDS: &str = "wall_seconds.json";

/// The wall time the completed stages of the iteration in `dir` took (s).
fn wall_seconds(dir: &Path) -> Result<f64> {
    Ok(read_json::<f64>(&dir.join(WALL_SECONDS))?.unwrap_or(0.0))
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
            format!("{} is damaged: delete it and rerun to redo its stage", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| path.display().to_string()),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    minima_io::write_atomic(path, |w| w.write_all(text.as_bytes()))
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// The committee of iteration `k`: from scratch at k = 0, else fine-tuned from k − 1's.
fn train(file: &LearnFile, dir: &Path, k: usize, added: &[PathBuf]) -> Result<Trained> {
    let l = &file.learn;
    let mut run = file.run.clone();
    let first = l.first_minutes.or(run.train.max_minutes);
    run.train.output = dir.join("committee");
    run.train.committee = l.committee;
    run.train.max_minutes = if k == 0 { first } else { l.refine_minutes.or(first) };
    if k > 0 {
        run.train.init = Some(iteration_dir(&l.output, k - 1).join("committee"));
        if let Some(rate) = l.refine_learning_rate {
            run.train.learning_rate = rate;
            run.train.lr_final = run.train.lr_final.map(|f| f.min(rate));
        }
    }
    let mut files: Vec<PathBuf> = run.data.file.as_ref().map(|f| f.paths().to_vec()).unwrap_or_default();
    files.extend(added.iter().cloned());
    run.data.file = Some(DataFiles::Several(files));
    let folder = &run.train.output;
    let begun = folder.is_dir()
        && std::fs::read_dir(folder)?
            .filter_map(|e| e.ok())
            .any(|e| e.file_name() != ".minima.lock");
    let start = if begun { TrainStart::Resume } else { TrainStart::Fresh };
    let cpu = minima_io::process::cpu_seconds();
    let started = Instant::now();
    let outcome = minima_train::train_as(&run, start).with_context(|| format!("iteration {k}: training"))?;
    let training_frames = split_frames(&run)?.2.train.len();
    let seconds = match run.train.clock {
        minima_train::config::Clock::Wall => started.elapsed().as_secs_f64(),
        minima_train::config::Clock::Cpu => minima_io::process::cpu_seconds() - cpu,
    };
    Ok(Trained {
        epochs: outcome.epochs,
        stopped: outcome.stopped,
        minutes: seconds / 60.0,
        training_frames,
    })
}

/// The frames of `run`'s data files, their base-structure groups and the split the training
/// draws from them (by group, as `minima train` does, without building graphs).
fn split_frames(run: &minima_train::RunConfig) -> Result<(Vec<Atoms>, Vec<String>, minima_data::Split)> {
    let mut frames = Vec::new();
    for path in run.data.file.as_ref().map(DataFiles::paths).unwrap_or_default() {
        frames.extend(minima_data::read_frames(path)?);
    }
    let groups: Vec<String> = frames
        .iter()
        .enumerate()
        .map(|(i, atoms)| minima_data::group_key(atoms, i))
        .collect();
    let split = minima_data::split_by_group(&groups, run.data.split, run.split_seed())?;
    Ok((frames, groups, split))
}

/// Explores training structures with the committee into `output` (atomically).
fn explore_with(
    file: &LearnFile,
    committee: &Committee,
    k: usize,
    output: &Path,
    scratch: &Path,
) -> Result<Exploration> {
    let l = &file.learn;
    let starts = file.starts(&l.explore.starts)?;
    let paths = file.run.data.file.as_ref().map(DataFiles::paths).unwrap_or_default();
    let (frames, groups, split) = split_frames(&file.run)?;
    let training: std::collections::HashSet<&str> = split.train.iter().map(|&i| groups[i].as_str()).collect();
    let bases = explore::base_structures(&frames, |g| training.contains(g));
    let chosen = explore::choose(&bases, l.explore.molecules, l.seed.wrapping_add(k as u64));
    let bar = minima_io::progress::task(chosen.len() as u64, &format!("iteration {k}: exploring"));
    let mut candidates = Vec::new();
    let mut failures = Vec::new();
    let explorer = explore::Explorer {
        committee,
        source: paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        starts,
        config: &l.explore,
        seed: l.seed.wrapping_add(k as u64),
        scratch: scratch.to_path_buf(),
    };
    for (index, base) in &chosen {
        let found = explorer.explore(base, *index);
        failures.extend(found.failed.into_iter().map(|f| format!("frame {index}: {f}")));
        candidates.extend(found.candidates);
        bar.inc(1);
    }
    bar.finish_and_clear();
    for frame in &mut candidates {
        frame
            .info
            .insert("learn_iteration".into(), minima_atoms::Value::Int(k as i64));
    }
    minima_io::extxyz::write_all(output, &candidates).with_context(|| format!("{}: cannot write", output.display()))?;
    Ok(Exploration {
        molecules: chosen.len(),
        failures,
    })
}

/// Labels `input` into `output` with the reference, in this process or as shards
/// (`learn.submit`, `learn.array_size`); either way a rerun resumes. The frames labelled and
/// failed.
fn label(l: &LearnConfig, reference: &dyn Calculator, input: &Path, output: &Path) -> Result<LabelCounts> {
    if l.submit == config::Submit::Local && l.array_size.is_none() {
        let options = LabelOptions {
            jobs: l.jobs,
            ..LabelOptions::default()
        };
        let summary = minima_label::label(reference, input, output, &options)?;
        return Ok(LabelCounts {
            labelled: summary.selected - summary.failed_frames.len(),
            failed: summary.failed_frames.len(),
        });
    }
    let job = ShardedLabel {
        program: std::env::current_exe()?,
        input: std::path::absolute(input)?,
        output: std::path::absolute(output)?,
        count: l.array_size.unwrap_or(1),
        label_args: vec![
            "--calc".into(),
            l.reference.clone(),
            "--jobs".into(),
            l.jobs.to_string(),
        ],
        cpus: l.jobs,
        scheduler: match l.submit {
            config::Submit::Local => Scheduler::Local,
            config::Submit::Slurm => Scheduler::Slurm {
                partition: l.partition.clone(),
                time: l.time.clone(),
            },
        },
    };
    match job.run(true)? {
        ShardedOutcome::Merged(summary) => Ok(LabelCounts {
            labelled: summary.written,
            failed: summary.failed_frames.len(),
        }),
        ShardedOutcome::Submitted { job, .. } => bail!("Slurm job {job} was submitted but not waited for"),
    }
}

/// Makes the fixed validation set once: molecules drawn from `validate.molecules`, their
/// reference minima, the starts made from those minima, and the minima and starts labelled.
fn prepare_validation(file: &LearnFile, reference: &dyn Calculator, files: &ValidationFiles) -> Result<()> {
    let v = &file.learn.validate;
    if !files.molecules.exists() {
        let frames = minima_data::read_frames(&v.molecules)?;
        if frames.len() <= v.skip {
            bail!(
                "learn.validate.molecules = {}: {} frames, all skipped (learn.validate.skip = {})",
                v.molecules.display(),
                frames.len(),
                v.skip
            );
        }
        let pool = &frames[v.skip..];
        let chosen = minima_explore::benchmark::select_molecules(pool, 0, v.count, v.seed);
        let molecules: Vec<Atoms> = chosen.iter().map(|&i| pool[i].clone()).collect();
        minima_io::extxyz::write_all(&files.molecules, &molecules)
            .with_context(|| format!("{}: cannot write", files.molecules.display()))?;
    }
    minima_io::progress::status(format_args!("learn: the validation molecules' reference minima"));
    let job = minima_explore::minimum::RelaxToMinimum {
        calculator: reference,
        options: RelaxOptions {
            fmax: v.fmax,
            steps: v.steps,
            ..RelaxOptions::default()
        },
    };
    let options = LabelOptions {
        jobs: file.learn.jobs,
        ..LabelOptions::default()
    };
    run_journalled(&job, &files.molecules, &files.minima, &options)?;
    if !files.starts.exists() {
        let minima = read_possibly_empty(&files.minima)?;
        if minima.is_empty() {
            bail!(
                "the reference relaxed none of the validation molecules (see {}.failed)",
                files.minima.display()
            );
        }
        let starts = file.starts(&v.starts)?;
        let mut frames = Vec::new();
        for (index, minimum) in minima.iter().enumerate() {
            frames.push(minimum.clone());
            for start in &starts {
                let mut moved = start.apply(minimum, v.seed, index);
                moved
                    .info
                    .insert("validation_start".into(), minima_atoms::Value::Str(start.to_string()));
                moved
                    .info
                    .insert("equilibrium".into(), minima_atoms::Value::Bool(false));
                frames.push(moved);
            }
        }
        minima_io::extxyz::write_all(&files.starts, &frames)
            .with_context(|| format!("{}: cannot write", files.starts.display()))?;
    }
    minima_io::progress::status(format_args!("learn: labelling the validation starts"));
    minima_label::label(reference, &files.starts, &files.labelled, &options)?;
    Ok(())
}

/// The frames of a file a journalled run writes, none when it wrote none.
fn read_possibly_empty(path: &Path) -> Result<Vec<Atoms>> {
    if std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
        return Ok(Vec::new());
    }
    Ok(minima_io::extxyz::read_all(path)?)
}

/// The committee's figures on the fixed validation set.
fn validate(file: &LearnFile, committee: &Committee, files: &ValidationFiles) -> Result<Validation> {
    let v = &file.learn.validate;
    let labelled = read_possibly_empty(&files.labelled)?;
    let (mut energy_errors, mut force_errors) = (Vec::new(), Vec::new());
    for atoms in &labelled {
        let (Some(energy), Some(forces)) = (atoms.energy(), atoms.forces()) else {
            continue;
        };
        let Ok(predicted) = committee.calculate_checked(atoms) else {
            continue;
        };
        energy_errors.push((predicted.energy - energy).abs());
        for (p, r) in predicted.forces.iter().flatten().zip(forces.iter()) {
            force_errors.push((p - r).abs());
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let minima = read_possibly_empty(&files.minima)?;
    let starts: Vec<Start> = file.starts(&v.starts)?;
    let options = RelaxOptions {
        fmax: v.fmax,
        steps: v.steps,
        ..RelaxOptions::default()
    };
    let bar = minima_io::progress::task((minima.len() * starts.len()) as u64, "validation relaxations");
    let mut landings = Vec::new();
    for (index, minimum) in minima.iter().enumerate() {
        let base = minima_bonds::record::with_fixed_bonds(minimum);
        for &kind in &starts {
            let start = kind.apply(&base, v.seed, index);
            if let Ok(landing) = land(committee, minimum, &start, kind, index, &options, Collapse::default()) {
                landings.push(landing);
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let delta_p: Vec<f64> = landings.iter().filter_map(|l| l.delta_p).collect();
    let median = |values: &[f64]| (!values.is_empty()).then(|| minima_explore::benchmark::Spread::of(values).median);
    let by_start = summarize(&landings)
        .into_iter()
        .map(|row| StartFigures {
            start: row.start.to_string(),
            relaxations: row.relaxations,
            blown_up: row.blown_up,
            converged: row.converged,
            delta_p_median: row.delta_p.map(|p| p.median),
        })
        .collect();
    Ok(Validation {
        energy_mae: mean(&energy_errors),
        force_mae: mean(&force_errors),
        frames: energy_errors.len(),
        relaxations: starts.len() * minima.len(),
        blown_up: landings.iter().filter(|l| l.blown_up).count() + starts.len() * minima.len() - landings.len(),
        converged: landings.iter().filter(|l| l.converged()).count(),
        delta_p_median: median(&delta_p),
        by_start,
    })
}

/// Records the configuration in `output/learn.toml` on the first run; a rerun must bring the
/// same one (more or fewer iterations excepted; settings added since read as their defaults),
/// or its iterations would mix two recipes.
fn check_same_configuration(file: &LearnFile) -> Result<()> {
    let path = file.learn.output.join("learn.toml");
    let settled = |learn: &LearnConfig| LearnConfig {
        iterations: 0,
        ..learn.clone()
    };
    let mut table = toml::Table::new();
    table.insert("learn".into(), toml::Value::try_from(settled(&file.learn))?);
    if let toml::Value::Table(run) = toml::Value::try_from(&file.run)? {
        table.extend(run);
    }
    match std::fs::read_to_string(&path) {
        Ok(recorded) => {
            let mut recorded: toml::Table = toml::from_str(&recorded).with_context(|| path.display().to_string())?;
            let learn: LearnConfig = recorded
                .remove("learn")
                .context("no [learn] table")
                .and_then(|l| Ok(l.try_into()?))
                .with_context(|| path.display().to_string())?;
            let run: minima_train::RunConfig = toml::Value::Table(recorded)
                .try_into()
                .with_context(|| path.display().to_string())?;
            if settled(&learn) != settled(&file.learn) || run != file.run {
                bail!(
                    "{} was started with another configuration ({}): rerun with that one, or choose another learn.output",
                    file.learn.output.display(),
                    path.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = toml::to_string(&table)?;
            minima_io::write_atomic(&path, |w| w.write_all(text.as_bytes())).with_context(|| path.display().to_string())
        }
        Err(e) => Err(e).with_context(|| path.display().to_string()),
    }
}

/// `learn.csv` and the figure `learn.svg`/`.png`: one row per iteration.
fn write_log(out: &Path, records: &[IterationRecord]) -> Result<()> {
    let starts: Vec<String> = records
        .first()
        .map(|r| r.validation.by_start.iter().map(|s| s.start.clone()).collect())
        .unwrap_or_default();
    let mut csv = String::from(
        "iteration,added_frames,training_frames,train_minutes,explored,candidates,selected,labelled,label_failures,exploration_failures,energy_mae_eV,force_mae_eV_A,relaxations,blown_up,converged,delta_p_median_A",
    );
    for start in &starts {
        csv += &format!(",converged_{start},delta_p_median_{start}_A");
    }
    csv += ",wall_minutes\n";
    let opt = |x: Option<f64>| x.map_or(String::new(), |x| format!("{x:.5}"));
    let count = |x: Option<usize>| x.map_or(String::new(), |x| x.to_string());
    for r in records {
        let v = &r.validation;
        let e = r.explored.as_ref();
        csv += &format!(
            "{},{},{},{:.2},{},{},{},{},{},{},{:.5},{:.5},{},{},{},{}",
            r.iteration,
            r.added_frames,
            r.training_frames,
            r.train_minutes,
            count(e.map(|e| e.explored)),
            count(e.map(|e| e.candidates)),
            count(e.map(|e| e.selected)),
            count(r.labelled),
            count(r.label_failures),
            r.exploration_failures,
            v.energy_mae,
            v.force_mae,
            v.relaxations,
            v.blown_up,
            v.converged,
            opt(v.delta_p_median)
        );
        for start in &starts {
            let s = v.by_start.iter().find(|s| &s.start == start);
            csv += &format!(
                ",{},{}",
                count(s.map(|s| s.converged)),
                opt(s.and_then(|s| s.delta_p_median))
            );
        }
        csv += &format!(",{:.2}\n", r.wall_minutes);
    }
    let path = out.join("learn.csv");
    minima_io::write_atomic(&path, |w| w.write_all(csv.as_bytes())).with_context(|| path.display().to_string())?;
    let points = |f: &dyn Fn(&IterationRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        records
            .iter()
            .filter_map(|r| f(r).map(|y| (r.iteration as f64, y)))
            .collect()
    };
    use minima_explore::plot::{Figure, Style};
    let figure = Figure::new("committee active learning", "iteration", "Å (ΔP), eV/Å (force MAE)")
        .with_series(
            "median ΔP on the validation molecules",
            points(&|r| r.validation.delta_p_median),
            Style::Line,
        )
        .with_series(
            "force MAE on the validation set",
            points(&|r| Some(r.validation.force_mae)),
            Style::Line,
        );
    figure.save(&out.join("learn"))?;
    Ok(())
}
