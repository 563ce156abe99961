//! The training loop: batches in a seeded order, Adam, learning-rate decay on validation
//! plateaus, early stopping, the best-validation checkpoint, and per-epoch state from which a
//! killed run resumes with the same result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use minima_atoms::Atoms;
use minima_data::{read_frames, samples_of, split_by_group, AtomRefs, Sample};
use minima_model::Potential;
use rand::seq::SliceRandom;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::adam::Adam;
use crate::config::{Clock, RunConfig};
use crate::distributed::{Alone, Ranks};
use crate::loss::{BatchView, Needs, TermValue, TERMS};

/// How a run ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOutcome {
    pub epochs: usize,
    pub best_epoch: usize,
    pub best_validation_loss: f64,
    pub stopped: String,
    pub best_checkpoint: PathBuf,
}

/// One row of `learning_curve.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CurveRow {
    epoch: usize,
    learning_rate: f64,
    train_loss: f64,
    /// Each loss term's mean over the epoch's batches, by name (0 when it is off).
    #[serde(default)]
    train_terms: BTreeMap<String, f64>,
    validation_loss: f64,
    validation_energy_mae: f64,
    validation_force_mae: Option<f64>,
    seconds: f64,
    /// CPU time of the process over the epoch, all threads (0 in runs from before it was kept).
    #[serde(default)]
    cpu_seconds: f64,
}

/// Everything beyond the weights and Adam moments that a resumed run needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunState {
    /// Completed epochs.
    epoch: usize,
    learning_rate: f64,
    adam_step: i64,
    best_validation_loss: f64,
    best_epoch: usize,
    epochs_since_best: usize,
    epochs_since_decay: usize,
    curve: Vec<CurveRow>,
    /// SHA-256 of the `last.safetensors` this state goes with (absent in runs started before
    /// it was recorded).
    #[serde(default)]
    last_sha256: Option<String>,
    /// [`data_fingerprint`] of the run's splits: a resumed run must see the same data, wherever
    /// its files now lie.
    #[serde(default)]
    data_sha256: Option<String>,
}

/// The three splits.
pub struct Splits {
    pub train: Vec<Sample>,
    pub validation: Vec<Sample>,
    pub test: Vec<Sample>,
    /// The test frames as read, for `test.extxyz`.
    pub test_frames: Vec<Atoms>,
    /// The files the training and validation structures come from, for messages.
    pub train_source: String,
    pub validation_source: String,
}

impl Splits {
    /// The splits with the training set replaced by a bootstrap sample of it: as many
    /// structures, drawn with replacement (seeded).
    pub fn bootstrapped(self, seed: u64) -> Splits {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xB007_57A9);
        let n = self.train.len();
        let train = (0..n).map(|_| self.train[rng.random_range(0..n)].clone()).collect();
        Splits { train, ..self }
    }
}

/// The checkpoint a fine-tuning run (`train.init`) starts from, checked to be the model
/// `[model]` describes (`run`'s, its elements those of the data).
fn initial_weights(init: &Path, run: &RunConfig, device: tch::Device) -> Result<Potential> {
    let files = minima_model::checkpoints_of(init).with_context(|| format!("train.init = {}", init.display()))?;
    let [file] = files.as_slice() else {
        bail!(
            "train.init = {}: a committee of {} members; a single run starts from one checkpoint (set train.committee to train a committee from it)",
            init.display(),
            files.len()
        );
    };
    let potential = Potential::load(file, device).with_context(|| format!("train.init = {}", init.display()))?;
    if potential.config.elements != run.model.elements {
        bail!(
            "train.init = {}: the checkpoint knows elements {:?}, the data hold {:?}",
            file.display(),
            potential.config.elements,
            run.model.elements
        );
    }
    if potential.config.without_other_kinds() != run.model.without_other_kinds() {
        bail!(
            "train.init = {}: its model differs from the run's [model] (kind, sizes, cutoff or priors); fine-tuning needs the same model",
            file.display()
        );
    }
    Ok(potential)
}

/// Loads the data of a run and splits it.
pub fn load_splits(config: &RunConfig) -> Result<Splits> {
    let spec = config.model.graph_spec();
    let limit = config.data.limit.unwrap_or(usize::MAX);
    let read = |path: &Path| -> Result<(Vec<Atoms>, Vec<Sample>)> {
        let mut frames = read_frames(path)?;
        frames.truncate(limit);
        let bar = minima_io::progress::task(frames.len() as u64, "graphs");
        let samples = samples_of(&frames, &path.display().to_string(), &spec, true, || bar.inc(1))?;
        bar.finish_and_clear();
        Ok((frames, samples))
    };
    if let Some(files) = &config.data.file {
        // Several files are one set: frames are counted through them in order.
        let (mut frames, mut samples) = (Vec::new(), Vec::new());
        for path in files.paths() {
            let (more_frames, more_samples) = read(path)?;
            let offset = frames.len();
            samples.extend(more_samples.into_iter().map(|s| Sample {
                frame: s.frame + offset,
                ..s
            }));
            frames.extend(more_frames);
        }
        let groups: Vec<String> = samples.iter().map(|s| s.group.clone()).collect();
        let split = split_by_group(&groups, config.data.split, config.split_seed()).context("data.split")?;
        let pick = |indices: &[usize]| indices.iter().map(|&i| samples[i].clone()).collect::<Vec<_>>();
        let names: Vec<String> = files.paths().iter().map(|p| p.display().to_string()).collect();
        let source = match names.len() {
            1 => names.join(""),
            _ => format!("{} (frames counted through the files in this order)", names.join(", ")),
        };
        Ok(Splits {
            train: pick(&split.train),
            validation: pick(&split.validation),
            test: pick(&split.test),
            test_frames: split.test.iter().map(|&i| frames[i].clone()).collect(),
            train_source: source.clone(),
            validation_source: source,
        })
    } else {
        let need = |p: &Option<PathBuf>, what: &str| p.clone().with_context(|| format!("data.{what} is not set"));
        let (train_file, validation_file) = (
            need(&config.data.train, "train")?,
            need(&config.data.validation, "validation")?,
        );
        let (_, train) = read(&train_file)?;
        let (_, validation) = read(&validation_file)?;
        let (test_frames, test) = match &config.data.test {
            Some(path) => read(path)?,
            None => Default::default(),
        };
        Ok(Splits {
            train,
            validation,
            test,
            test_frames,
            train_source: train_file.display().to_string(),
            validation_source: validation_file.display().to_string(),
        })
    }
}

/// Energies and forces of a set of samples as training targets, per batch.
struct Targets<'a> {
    samples: Vec<&'a Sample>,
    /// (E − Σ ref) / σ per sample.
    normalized: Vec<f64>,
    /// The file the samples come from, for messages.
    source: &'a str,
}

impl<'a> Targets<'a> {
    fn new(samples: &'a [Sample], source: &'a str, potential: &Potential) -> Result<Targets<'a>> {
        let mut normalized = Vec::with_capacity(samples.len());
        for sample in samples {
            potential.check_elements(&sample.graph, sample.frame)?;
            let baseline = potential
                .refs
                .baseline(&sample.graph.numbers)
                .expect("elements checked");
            let energy = sample.energy.expect("loaded with energies");
            normalized.push((energy - baseline) / potential.refs.scale);
        }
        Ok(Targets {
            samples: samples.iter().collect(),
            normalized,
            source,
        })
    }

    /// Why the loss of the batch `indices` is not finite, naming its frames: non-finite inputs
    /// or labels, else the frames whose predicted energy is not finite (`energy_errors`, in
    /// batch order), else the batch as a whole.
    fn explain_non_finite(&self, indices: &[usize], energy_errors: &[f64], learning_rate: f64) -> String {
        let frames = |picked: &[&Sample]| {
            let list: Vec<String> = picked.iter().map(|s| s.frame.to_string()).collect();
            format!(
                "frame{} {} of {}",
                if list.len() == 1 { "" } else { "s" },
                list.join(", "),
                self.source
            )
        };
        let batch: Vec<&Sample> = indices.iter().map(|&i| self.samples[i]).collect();
        fn finite<'v>(values: impl IntoIterator<Item = &'v f64>) -> bool {
            values.into_iter().all(|x| x.is_finite())
        }
        // Coordinates this far out overflow in f32 (and are no molecule's).
        let plausible = |values: &[[f64; 3]]| values.iter().flatten().all(|x| x.abs() < 1e6);
        type Check<'c> = (&'c dyn Fn(&Sample) -> bool, &'c str);
        let checks: [Check; 2] = [
            (
                &|s| !plausible(&s.graph.positions) || !plausible(&s.graph.offset),
                "positions that are not finite or lie beyond 10⁶ Å",
            ),
            (
                &|s| !finite(s.energy.iter()) || !finite(s.forces.iter().flatten().flatten()),
                "non-finite energy or force labels",
            ),
        ];
        for (bad, what) in checks {
            let picked: Vec<&Sample> = batch.iter().copied().filter(|s| bad(s)).collect();
            if !picked.is_empty() {
                return format!("{}: {what}; fix or remove these frames", frames(&picked));
            }
        }
        let diverged: Vec<&Sample> = batch
            .iter()
            .zip(energy_errors)
            .filter(|(_, e)| !e.is_finite())
            .map(|(s, _)| *s)
            .collect();
        let culprits = if diverged.is_empty() { &batch } else { &diverged };
        format!(
            "the model's predictions for {} are not finite while their positions and labels are: training diverged; lower train.learning_rate (now {learning_rate:e})",
            frames(culprits)
        )
    }
}

/// The loss of one batch (or of one rank's share of it): each term's mean and what it
/// averaged, and the errors behind the validation metrics.
struct BatchLoss {
    /// Each registered term that counts here, in [`TERMS`] order: weight and value (`None`
    /// when it is off or the batch holds nothing it applies to).
    parts: Vec<Option<(f64, TermValue)>>,
    energy_abs_errors: Vec<f64>,
    force_abs_error_sum: f64,
    force_components: usize,
}

impl BatchLoss {
    /// Nothing: a rank whose share of a batch is empty.
    fn empty() -> BatchLoss {
        BatchLoss {
            parts: (0..TERMS.len()).map(|_| None).collect(),
            energy_abs_errors: Vec::new(),
            force_abs_error_sum: 0.0,
            force_components: 0,
        }
    }

    /// What each term averaged (0 where it is off).
    fn counts(&self) -> Vec<f64> {
        self.parts
            .iter()
            .map(|p| p.as_ref().map_or(0.0, |(_, v)| v.count))
            .collect()
    }

    /// Each term's value as a number (0 where it is off).
    fn values(&self) -> Vec<f64> {
        self.parts
            .iter()
            .map(|p| p.as_ref().map_or(0.0, |(_, v)| v.mean.double_value(&[])))
            .collect()
    }

    /// The weighted total to differentiate. With `whole`, the counts of the whole batch of
    /// which this is one rank's share: each term's mean is weighted by its share of them, so
    /// that the ranks' gradients sum to the whole batch's.
    fn total(&self, whole: Option<&[f64]>, (kind, device): (Kind, tch::Device)) -> Tensor {
        let mut total = Tensor::zeros([], (kind, device));
        for (k, part) in self.parts.iter().enumerate() {
            let Some((weight, value)) = part else { continue };
            match whole {
                None => total += &value.mean * *weight,
                Some(counts) => total += &value.mean * (*weight * value.count / counts[k]),
            }
        }
        total
    }
}

/// The loss of the samples `indices`. With `rng` (training) every term that is on counts,
/// the stochastic ones drawing from it; without (validation) only the terms that
/// [`crate::loss::LossTerm::validates`].
fn batch_loss(
    potential: &Potential,
    config: &RunConfig,
    targets: &Targets,
    indices: &[usize],
    mut rng: Option<&mut ChaCha8Rng>,
) -> Result<BatchLoss> {
    let t = &config.train;
    let training = rng.is_some();
    let samples: Vec<&Sample> = indices.iter().map(|&i| targets.samples[i]).collect();
    let graphs: Vec<&minima_data::Graph> = samples.iter().map(|s| &s.graph).collect();
    let needs = t.needs();
    let want_forces = needs >= Needs::Forces;
    let mut batch = potential.batch(&graphs, want_forces);
    if needs == Needs::Strain {
        batch = batch.with_strain();
    }
    let prediction = minima_model::guard("the model's forward pass", || {
        let mode = match (training, want_forces) {
            (true, forces) => minima_model::Mode::Training { forces },
            (false, true) => minima_model::Mode::Forces,
            (false, false) => minima_model::Mode::Energy,
        };
        potential.predict(&batch, mode)
    })?;
    let (kind, device) = (potential.kind(), potential.device());
    let scale = potential.refs.scale;
    let target: Vec<f64> = indices.iter().map(|&i| targets.normalized[i]).collect();
    let target = Tensor::from_slice(&target).to_kind(kind).to_device(device);
    let is_equilibrium: Vec<bool> = samples.iter().map(|s| s.is_equilibrium()).collect();
    let equilibrium: Vec<i64> = (0..samples.len() as i64)
        .filter(|&s| is_equilibrium[s as usize])
        .collect();
    let view = BatchView {
        potential,
        config,
        samples: &samples,
        batch: &batch,
        prediction: &prediction,
        target: &target,
        is_equilibrium: &is_equilibrium,
        equilibrium: &Tensor::from_slice(&equilibrium).to_device(device),
        reference_forces: Default::default(),
    };
    let mut parts = Vec::with_capacity(TERMS.len());
    for term in TERMS {
        let weight = t.weight(term.name());
        if weight == 0.0 || !(training || term.validates()) {
            parts.push(None);
            continue;
        }
        parts.push(term.value(&view, rng.as_deref_mut())?.map(|value| (weight, value)));
    }
    let energy_error = (&prediction.normalized_energy - &target)
        .abs()
        .detach()
        .to_kind(Kind::Double)
        * scale;
    let mut loss = BatchLoss {
        parts,
        energy_abs_errors: Vec::try_from(energy_error)?,
        force_abs_error_sum: 0.0,
        force_components: 0,
    };
    if let (Some(predicted), true) = (&prediction.forces, t.weight("forces") > 0.0) {
        let error = (predicted - view.reference_forces()?).detach();
        loss.force_abs_error_sum = error.abs().sum(Kind::Double).double_value(&[]);
        loss.force_components = error.numel();
    }
    Ok(loss)
}

/// One optimisation step on `samples` (a whole batch), as the training loop makes it; returns
/// the batch's loss. For benchmarks.
pub fn training_step(potential: &Potential, config: &RunConfig, samples: &[Sample], adam: &mut Adam) -> Result<f64> {
    let targets = Targets::new(samples, "the benchmark's structures", potential)?;
    let all: Vec<usize> = (0..samples.len()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(config.train.seed);
    let loss = batch_loss(potential, config, &targets, &all, Some(&mut rng))?;
    let total = loss.total(None, (potential.kind(), potential.device()));
    adam.zero_grad();
    total.backward();
    adam.step();
    Ok(total.double_value(&[]))
}

/// One optimisation step on the global batch `indices`: this rank's share of it forward and
/// backward, the gradients summed over the ranks, Adam's step. Returns the whole batch's
/// weighted loss and each term's value (the same on every rank).
#[allow(clippy::too_many_arguments)]
fn training_batch(
    potential: &Potential,
    config: &RunConfig,
    targets: &Targets,
    indices: &[usize],
    rng: &mut ChaCha8Rng,
    adam: &mut Adam,
    ranks: &dyn Ranks,
    epoch: usize,
) -> Result<(f64, Vec<f64>)> {
    let (kind, device) = (potential.kind(), potential.device());
    let share = share_of(indices, ranks.rank(), ranks.size());
    let loss = match share.is_empty() {
        true => BatchLoss::empty(),
        false => batch_loss(potential, config, targets, share, Some(rng))?,
    };
    let (total, values) = if ranks.size() == 1 {
        let total = loss.total(None, (kind, device));
        (total.shallow_clone(), (total.double_value(&[]), loss.values()))
    } else {
        // The whole batch's counts, and each term's count-weighted sum: their ratio is the
        // term's value on the whole batch.
        let counts = loss.counts();
        let mut sums: Vec<f64> = counts.clone();
        sums.extend(loss.values().iter().zip(&counts).map(|(v, c)| v * c));
        ranks.sum(&mut sums);
        let (whole, weighted) = sums.split_at(counts.len());
        let values: Vec<f64> = weighted
            .iter()
            .zip(whole)
            .map(|(s, c)| if *c > 0.0 { s / c } else { 0.0 })
            .collect();
        let global = TERMS
            .iter()
            .zip(&values)
            .map(|(term, v)| config.train.weight(term.name()) * v)
            .sum();
        (loss.total(Some(whole), (kind, device)), (global, values))
    };
    let (value, values) = values;
    if !value.is_finite() {
        bail!(
            "epoch {epoch}: the training loss became {value}: {}",
            targets.explain_non_finite(share, &loss.energy_abs_errors, adam.learning_rate)
        );
    }
    minima_model::guard("the backward pass", || {
        adam.zero_grad();
        if total.requires_grad() {
            total.backward();
        }
        if ranks.size() > 1 {
            sum_gradients(potential, ranks);
        }
        adam.step();
    })?;
    Ok((value, values))
}

/// Rank `rank`'s share of a global batch: contiguous, as even as the batch allows.
fn share_of(indices: &[usize], rank: usize, size: usize) -> &[usize] {
    let (n, base, extra) = (indices.len(), indices.len() / size, indices.len() % size);
    let start = rank * base + rank.min(extra);
    let end = (start + base + usize::from(rank < extra)).min(n);
    &indices[start.min(n)..end]
}

/// The trainable parameters in a fixed order (by name), the same on every rank.
fn parameters(potential: &Potential) -> Vec<(String, Tensor)> {
    let mut variables: Vec<(String, Tensor)> = potential
        .var_store()
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    variables
}

/// Sums the gradients over the ranks (in f64). A parameter no rank's loss reached keeps no
/// gradient (Adam leaves it alone, as in one process); one that some rank's did gets a zero
/// gradient on the others first.
fn sum_gradients(potential: &Potential, ranks: &dyn Ranks) {
    let variables = parameters(potential);
    let mut defined: Vec<f64> = variables
        .iter()
        .map(|(_, p)| f64::from(u8::from(p.grad().defined())))
        .collect();
    ranks.sum(&mut defined);
    let mut flat = Vec::new();
    for ((_, p), &anywhere) in variables.iter().zip(&defined) {
        if anywhere == 0.0 {
            continue;
        }
        if !p.grad().defined() {
            (p.sum(p.kind()) * 0.0).backward();
        }
        flat.extend(Vec::<f64>::try_from(p.grad().to_kind(Kind::Double).flatten(0, -1)).expect("a gradient's values"));
    }
    ranks.sum(&mut flat);
    let mut offset = 0;
    tch::no_grad(|| {
        for ((_, p), &anywhere) in variables.iter().zip(&defined) {
            if anywhere == 0.0 {
                continue;
            }
            let mut grad = p.grad();
            let n = grad.numel();
            let summed = Tensor::from_slice(&flat[offset..offset + n])
                .view(grad.size().as_slice())
                .to_kind(grad.kind());
            grad.copy_(&summed);
            offset += n;
        }
    });
}

/// Makes every rank start from rank 0's parameters.
fn broadcast_parameters(potential: &Potential, ranks: &dyn Ranks) {
    for (_, p) in parameters(potential) {
        let mut values = Vec::<f64>::try_from(p.to_kind(Kind::Double).flatten(0, -1)).expect("a parameter's values");
        ranks.broadcast(&mut values);
        let mut p = p;
        tch::no_grad(|| p.copy_(&Tensor::from_slice(&values).view(p.size().as_slice()).to_kind(p.kind())));
    }
}

/// Refuses to go on when the ranks' parameters have drifted apart (they must stay bitwise
/// equal: every rank makes the same step from the same summed gradients).
fn check_same_parameters(potential: &Potential, ranks: &dyn Ranks, epoch: usize) -> Result<()> {
    let mut own = Vec::new();
    for (_, p) in parameters(potential) {
        let values = Vec::<f64>::try_from(p.to_kind(Kind::Double).flatten(0, -1)).expect("a parameter's values");
        own.push(values.iter().sum::<f64>());
        own.push(values.iter().map(|v| v * v).sum::<f64>());
    }
    let mut first = own.clone();
    ranks.broadcast(&mut first);
    let mut differs = [f64::from(u8::from(first != own))];
    ranks.sum(&mut differs);
    if differs[0] > 0.0 {
        bail!(
            "epoch {epoch}: the parameters of {} of the {} ranks differ from rank 0's: the data-parallel run has diverged",
            differs[0],
            ranks.size()
        );
    }
    Ok(())
}

/// Validation: the loss that selects the best model and drives decay and early stopping is
/// the weighted sum of the terms that measure the potential-energy surface itself (energy,
/// forces, zero-force, stress: [`crate::loss::LossTerm::validates`]); the others only shape training or
/// are random draws.
fn validate(
    potential: &Potential,
    config: &RunConfig,
    targets: &Targets,
    learning_rate: f64,
    ranks: &dyn Ranks,
) -> Result<(f64, f64, Option<f64>)> {
    let n = targets.samples.len();
    let (mut weighted, mut abs_errors, mut force_sum, mut force_count) = (0.0, Vec::new(), 0.0, 0usize);
    let order: Vec<usize> = (0..n).collect();
    // Each rank validates every size-th chunk; the sums meet below.
    let chunks = order.chunks(config.train.batch_size.max(64));
    for chunk in chunks.skip(ranks.rank()).step_by(ranks.size()) {
        let loss = if config.train.needs_gradients() {
            batch_loss(potential, config, targets, chunk, None)?
        } else {
            tch::no_grad(|| batch_loss(potential, config, targets, chunk, None))?
        };
        let terms = loss
            .total(None, (potential.kind(), potential.device()))
            .double_value(&[]);
        if !terms.is_finite() {
            bail!(
                "validation: the loss became {terms}: {}",
                targets.explain_non_finite(chunk, &loss.energy_abs_errors, learning_rate)
            );
        }
        weighted += terms * chunk.len() as f64;
        abs_errors.extend(loss.energy_abs_errors);
        force_sum += loss.force_abs_error_sum;
        force_count += loss.force_components;
    }
    let mut sums = [
        weighted,
        abs_errors.iter().sum::<f64>(),
        abs_errors.len() as f64,
        force_sum,
        force_count as f64,
    ];
    ranks.sum(&mut sums);
    let [weighted, abs_sum, abs_count, force_sum, force_count] = sums;
    let mae = abs_sum / abs_count.max(1.0);
    let force_mae = (force_count > 0.0).then(|| force_sum / force_count);
    Ok((weighted / n.max(1) as f64, mae, force_mae))
}

/// How [`train_as`] treats the output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A new run; the folder must be empty or absent.
    Fresh,
    /// Continue the run in the folder from its last completed epoch.
    Resume,
    /// A new run replacing the run in the folder (its files are deleted first; other files
    /// are left alone).
    Overwrite,
}

/// The files of a run folder, as [`train_as`] writes them.
struct RunFiles {
    run: PathBuf,
    state: PathBuf,
    curve: PathBuf,
    last: PathBuf,
    /// The `last.safetensors` before the newest; the state's epoch is in one of the two
    /// whatever moment a run was killed at.
    previous: PathBuf,
    best: PathBuf,
    test: PathBuf,
}

impl RunFiles {
    fn new(out: &Path) -> RunFiles {
        RunFiles {
            run: out.join("run.toml"),
            state: out.join("state.json"),
            curve: out.join("learning_curve.csv"),
            last: out.join("last.safetensors"),
            previous: out.join("last.previous.safetensors"),
            best: out.join("best.safetensors"),
            test: out.join("test.extxyz"),
        }
    }

    /// Every file a run writes, checkpoint TOMLs included.
    fn all(&self) -> Vec<PathBuf> {
        let mut files = vec![
            self.run.clone(),
            self.state.clone(),
            self.curve.clone(),
            self.test.clone(),
        ];
        for checkpoint in [&self.last, &self.previous, &self.best] {
            files.push(checkpoint.clone());
            files.push(minima_model::potential::meta_path(checkpoint));
        }
        files
    }
}

/// Trains the run `config`; with `resume`, continues the run in its output folder.
pub fn train(config: &RunConfig, resume: bool) -> Result<TrainOutcome> {
    train_as(config, if resume { Start::Resume } else { Start::Fresh })
}

/// Trains the run `config` into `train.output`, started as `start` says. The folder is locked
/// for the whole run: a second process on it fails at once.
pub fn train_as(config: &RunConfig, start: Start) -> Result<TrainOutcome> {
    train_with(config, start, &Alone)
}

/// [`train_as`] on `ranks` (data-parallel under MPI; see [`crate::distributed`]): every rank
/// takes its share of each batch (`train.batch_size` is the global batch), the gradients are
/// summed before each step, and rank 0 alone writes the run's files. The ranks check every
/// epoch that they hold the same parameters.
pub fn train_with(config: &RunConfig, start: Start, ranks: &dyn Ranks) -> Result<TrainOutcome> {
    config.validate()?;
    if config.train.committee > 1 {
        return train_committee(config, start, ranks);
    }
    minima_model::configure_threads(config.train.threads);
    let device = minima_model::parse_device(&config.train.device)?;
    let out = &config.train.output;
    let lead = ranks.rank() == 0;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let _lock = lock_as_lead(out, lead)?;
    let files = RunFiles::new(out);
    match start {
        _ if !lead => {}
        Start::Fresh => refuse_existing_run(out)?,
        Start::Overwrite => {
            for file in files.all() {
                match std::fs::remove_file(&file) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("--overwrite: removing {}", file.display()))
                    }
                    _ => {}
                }
            }
        }
        Start::Resume => {}
    }
    // The other ranks read the folder once rank 0 has cleared it.
    ranks.broadcast(&mut [0.0]);

    let splits = load_splits(config)?;
    if splits.train.is_empty() || splits.validation.is_empty() {
        bail!(
            "the split leaves {} training and {} validation structures; both need at least one",
            splits.train.len(),
            splits.validation.len()
        );
    }
    let splits = match config.train.bootstrap {
        true => splits.bootstrapped(config.train.seed),
        false => splits,
    };
    let train_refs: Vec<&Sample> = splits.train.iter().collect();
    let refs = AtomRefs::fit(&train_refs).map_err(anyhow::Error::msg)?;
    let mut run = config.clone();
    run.model.elements = refs.elements.clone();
    run.model.validate()?;
    check_training_memory(&run, &splits)?;
    let data_sha256 = data_fingerprint(&splits);

    let (potential, resumed) = if start == Start::Resume {
        let (potential, state) = resume_from(&files, &run, &data_sha256, device)?;
        (potential, Some(state))
    } else if let Some(init) = &config.train.init {
        (initial_weights(init, &run, device)?, None)
    } else {
        let potential = Potential::new(run.model.clone(), refs.clone(), device, config.train.seed)?;
        (potential, None)
    };

    if ranks.size() > 1 {
        broadcast_parameters(&potential, ranks);
    }
    let train_targets = Targets::new(&splits.train, &splits.train_source, &potential)?;
    let validation_targets = Targets::new(&splits.validation, &splits.validation_source, &potential)?;
    let terms = config.train.active_terms();
    crate::loss::check_reads(&potential, &terms, config.train.needs_gradients())?;
    for (term, _) in &terms {
        term.check(&potential, &splits.train)?;
    }

    let mut adam = minima_model::guard("allocating Adam's moments", || {
        Adam::new(potential.var_store(), config.train.learning_rate)
    })?;
    let mut state = match resumed {
        Some((state, weights)) => {
            let saved: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&weights)
                .with_context(|| weights.display().to_string())?
                .into_iter()
                .map(|(name, tensor)| (potential.current_name(&name), tensor))
                .collect();
            adam.restore(&saved, state.adam_step).map_err(anyhow::Error::msg)?;
            adam.learning_rate = state.learning_rate;
            state
        }
        None => RunState {
            epoch: 0,
            learning_rate: config.train.learning_rate,
            adam_step: 0,
            best_validation_loss: f64::INFINITY,
            best_epoch: 0,
            epochs_since_best: 0,
            epochs_since_decay: 0,
            curve: Vec::new(),
            last_sha256: None,
            data_sha256: Some(data_sha256),
        },
    };

    let t = &config.train;
    minima_io::progress::status(format_args!(
        "train: {} training, {} validation, {} test structures; {:?} model, {} parameters",
        splits.train.len(),
        splits.validation.len(),
        splits.test.len(),
        potential.config.kind,
        potential
            .var_store()
            .trainable_variables()
            .iter()
            .map(|v| v.numel())
            .sum::<usize>()
    ));
    let minutes_in = |curve: &[CurveRow]| {
        let seconds = |row: &CurveRow| match t.clock {
            Clock::Wall => row.seconds,
            Clock::Cpu => row.cpu_seconds,
        };
        curve.iter().map(seconds).sum::<f64>() / 60.0
    };
    let minutes_trained = |state: &RunState| minutes_in(&state.curve);
    // The fraction of the budget the epochs of `curve` used, which decides the loss's stage.
    let progress = |curve: &[CurveRow]| match t.max_minutes {
        Some(limit) => (minutes_in(curve) / limit).min(1.0),
        None => curve.len() as f64 / t.max_epochs as f64,
    };
    let out_of_time = |state: &RunState| t.max_minutes.is_some_and(|limit| minutes_trained(state) >= limit);
    let (mut last_saved, mut saved_epoch) = (Instant::now(), state.epoch);
    while state.epoch < t.max_epochs && state.epochs_since_best < t.early_stop && !out_of_time(&state) {
        let epoch = state.epoch + 1;
        let stage = RunConfig {
            train: t.at_progress(progress(&state.curve)),
            ..config.clone()
        };
        if let Some((_, before)) = state.curve.split_last() {
            let joining = t.joining(progress(before), progress(&state.curve));
            if !joining.is_empty() {
                state.best_validation_loss = f64::INFINITY;
                state.epochs_since_best = 0;
                state.epochs_since_decay = 0;
                minima_io::progress::status(format_args!(
                    "epoch {epoch}: {} joins the loss (train.loss_start); the best validation loss starts afresh",
                    joining.join(", ")
                ));
            }
        }
        let (config, t) = (&stage, &stage.train);
        let started = Instant::now();
        let cpu_started = minima_io::process::cpu_seconds();
        let mut order: Vec<usize> = (0..splits.train.len()).collect();
        // One generator per epoch, first for the order, then for the masks and perturbations:
        // a resumed run draws what an uninterrupted one does.
        let mut rng = ChaCha8Rng::seed_from_u64(t.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        order.shuffle(&mut rng);
        let batches: Vec<&[usize]> = order.chunks(t.batch_size).collect();
        let bar = minima_io::progress::task(batches.len() as u64, &format!("epoch {epoch}/{}", t.max_epochs));
        let (mut sums, mut count) = (vec![0.0; TERMS.len() + 1], 0usize);
        for indices in batches {
            let (total, values) = training_batch(
                &potential,
                config,
                &train_targets,
                indices,
                &mut rng,
                &mut adam,
                ranks,
                epoch,
            )?;
            let n = indices.len() as f64;
            let terms = std::iter::once(total).chain(values);
            for (sum, value) in sums.iter_mut().zip(terms) {
                *sum += value * n;
            }
            count += indices.len();
            bar.inc(1);
        }
        bar.finish_and_clear();
        let (validation_loss, validation_mae, validation_force_mae) =
            validate(&potential, config, &validation_targets, adam.learning_rate, ranks)?;
        let mean = |k: usize| sums[k] / count.max(1) as f64;
        // Every rank counts the same time: rank 0's wall clock, and the CPU of all ranks.
        let mut clock = [started.elapsed().as_secs_f64(), 0.0];
        ranks.broadcast(&mut clock[..1]);
        clock[1] = minima_io::process::cpu_seconds() - cpu_started;
        ranks.sum(&mut clock[1..]);
        if ranks.size() > 1 {
            check_same_parameters(&potential, ranks, epoch)?;
        }
        state.curve.push(CurveRow {
            epoch,
            learning_rate: adam.learning_rate,
            train_loss: mean(0),
            train_terms: TERMS
                .iter()
                .enumerate()
                .map(|(k, term)| (term.name().to_string(), mean(k + 1)))
                .collect(),
            validation_loss,
            validation_energy_mae: validation_mae,
            validation_force_mae,
            seconds: clock[0],
            cpu_seconds: clock[1],
        });
        if epoch == 1 && lead {
            // A run's folder gets its files once an epoch has completed: a start that fails
            // before leaves nothing that would need --overwrite.
            let text = toml::to_string(&run)?;
            minima_io::write_atomic(&files.run, |w| std::io::Write::write_all(w, text.as_bytes()))
                .with_context(|| files.run.display().to_string())?;
            if !splits.test_frames.is_empty() {
                minima_io::write_atomic(&files.test, |w| {
                    splits
                        .test_frames
                        .iter()
                        .try_for_each(|f| minima_io::extxyz::write_frame(w, f))
                })
                .with_context(|| files.test.display().to_string())?;
            }
        }
        let improved = validation_loss < state.best_validation_loss;
        if improved {
            state.best_validation_loss = validation_loss;
            state.best_epoch = epoch;
            state.epochs_since_best = 0;
            state.epochs_since_decay = 0;
            if lead {
                potential.save(&files.best)?;
            }
        } else {
            state.epochs_since_best += 1;
            state.epochs_since_decay += 1;
            if t.lr_final.is_none() && state.epochs_since_decay > t.lr_patience {
                adam.learning_rate *= t.lr_decay;
                state.epochs_since_decay = 0;
            }
        }
        if let (Some(final_rate), Some(_)) = (t.lr_final, t.max_minutes) {
            let progress = progress(&state.curve);
            adam.learning_rate = t.learning_rate * (final_rate / t.learning_rate).powf(progress);
        }
        // The terms beyond energy and forces that are on, each with its epoch mean.
        let physics = TERMS
            .iter()
            .enumerate()
            .filter(|(_, term)| !["energy", "forces"].contains(&term.name()) && t.weight(term.name()) > 0.0)
            .map(|(k, term)| format!(" {} {:.4}", term.name(), mean(k + 1)))
            .collect::<String>();
        minima_io::progress::status(format_args!(
            "epoch {epoch:>4}  train loss {:.5}{physics}  validation loss {validation_loss:.5}  energy MAE {validation_mae:.4} eV{}  lr {:.2e}{}",
            mean(0),
            validation_force_mae.map_or(String::new(), |f| format!("  force MAE {f:.4} eV/Å")),
            adam.learning_rate,
            if improved { "  *best" } else { "" }
        ));
        state.epoch = epoch;
        state.learning_rate = adam.learning_rate;
        state.adam_step = adam.step;
        // The state goes with the best checkpoint whenever that changes; otherwise every
        // CHECKPOINT_EVERY, so that runs of many tiny epochs do not spend their time writing.
        if lead && (improved || last_saved.elapsed() >= CHECKPOINT_EVERY) {
            save_state(&potential, &adam, &mut state, &files)?;
            (last_saved, saved_epoch) = (Instant::now(), epoch);
        }
    }
    if lead && state.epoch > saved_epoch {
        save_state(&potential, &adam, &mut state, &files)?;
    }
    let stopped = if state.epochs_since_best >= t.early_stop {
        format!("no validation improvement for {} epochs", t.early_stop)
    } else if out_of_time(&state) {
        format!(
            "reached train.max_minutes = {} ({:.1} {} minutes trained)",
            t.max_minutes.unwrap_or_default(),
            minutes_trained(&state),
            match t.clock {
                Clock::Wall => "wall",
                Clock::Cpu => "CPU",
            }
        )
    } else {
        format!("reached train.max_epochs = {}", t.max_epochs)
    };
    Ok(TrainOutcome {
        epochs: state.epoch,
        best_epoch: state.best_epoch,
        best_validation_loss: state.best_validation_loss,
        stopped,
        best_checkpoint: files.best,
    })
}

/// A committee (`train.committee` = K): K member runs, one after another, in
/// `output/member-k`, member k seeded `seed + k` and, with `init`, started from member k of
/// it. A resumed committee resumes the members that had started and starts the others.
fn train_committee(config: &RunConfig, start: Start, ranks: &dyn Ranks) -> Result<TrainOutcome> {
    let out = &config.train.output;
    let lead = ranks.rank() == 0;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let _lock = lock_as_lead(out, lead)?;
    if lead && start == Start::Fresh {
        refuse_existing_run(out)?;
    }
    let inits = match &config.train.init {
        Some(init) => {
            Some(minima_model::checkpoints_of(init).with_context(|| format!("train.init = {}", init.display()))?)
        }
        None => None,
    };
    let k = config.train.committee;
    let mut outcomes = Vec::with_capacity(k);
    for member in 0..k {
        let mut run = config.clone();
        run.train.committee = 1;
        run.train.seed = config.train.seed + member as u64;
        run.train.output = minima_model::member_folder(out, member);
        run.train.init = inits.as_ref().map(|files| files[member % files.len()].clone());
        // Every member holds out the same structures.
        run.data.split_seed = Some(config.split_seed());
        let started = RunFiles::new(&run.train.output).state.exists();
        let member_start = match start {
            Start::Resume if started => Start::Resume,
            Start::Fresh => Start::Fresh,
            _ => Start::Overwrite,
        };
        minima_io::progress::status(format_args!("train: committee member {}/{k}", member + 1));
        outcomes.push(
            train_with(&run, member_start, ranks)
                .with_context(|| format!("committee member {member} ({})", run.train.output.display()))?,
        );
    }
    let best = outcomes.iter().map(|o| o.best_validation_loss).sum::<f64>() / k as f64;
    Ok(TrainOutcome {
        epochs: outcomes.iter().map(|o| o.epochs).sum(),
        best_epoch: outcomes.iter().map(|o| o.best_epoch).max().unwrap_or(0),
        best_validation_loss: best,
        stopped: format!(
            "{k} members ({})",
            outcomes
                .iter()
                .map(|o| o.stopped.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        best_checkpoint: out.clone(),
    })
}

/// The run folder's lock, taken by the rank that writes it (rank 0; the only one alone).
fn lock_as_lead(out: &Path, lead: bool) -> Result<Option<minima_io::OutputLock>> {
    Ok(match lead {
        true => Some(minima_io::OutputLock::acquire(out)?),
        false => None,
    })
}

/// Refuses to start a new run in a folder that holds anything but its lock file.
fn refuse_existing_run(out: &Path) -> Result<()> {
    let mut entries: Vec<String> = std::fs::read_dir(out)
        .with_context(|| format!("reading {}", out.display()))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".minima.lock")
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    entries.sort();
    let shown = entries.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    let more = if entries.len() > 5 { ", …" } else { "" };
    bail!(
        "train.output {} is not empty ({shown}{more}): continue its run with --resume, choose another train.output, or pass --overwrite to replace the run",
        out.display()
    )
}

/// The model, state and weights file (`last.safetensors`, or the one before it when a kill
/// came between the two) of the run in `files` to continue, after checking that `run` is the
/// configuration and `data_sha256` the data it was started with.
fn resume_from(
    files: &RunFiles,
    run: &RunConfig,
    data_sha256: &str,
    device: tch::Device,
) -> Result<(Potential, (RunState, PathBuf))> {
    let what_to_do = "start the run again with --overwrite, or into another train.output";
    let saved = std::fs::read_to_string(&files.run).with_context(|| {
        format!(
            "--resume: {} not found (start the run without --resume)",
            files.run.display()
        )
    })?;
    let mut saved: toml::Table = toml::from_str(&saved)
        .with_context(|| format!("--resume: {} is damaged; {what_to_do}", files.run.display()))?;
    // Runs started before `[[model.priors]]` recorded `[model.zbl]` and the transformer's
    // physics head in `[model.transformer]`.
    if let Some(model) = saved.get_mut("model").and_then(toml::Value::as_table_mut) {
        minima_model::priors::migrate_legacy(model);
    }
    let mut saved: RunConfig = toml::Value::Table(saved)
        .try_into()
        .with_context(|| format!("--resume: {} is damaged; {what_to_do}", files.run.display()))?;
    // A resumed run may be given more epochs, and may run on other threads or another device
    // (which change no result beyond rounding). Its folder and data files may have moved: the
    // output is where it is now, and the data are compared by content below.
    saved.train.max_epochs = run.train.max_epochs;
    saved.train.max_minutes = run.train.max_minutes;
    saved.train.threads = run.train.threads;
    saved.train.device.clone_from(&run.train.device);
    saved.train.output.clone_from(&run.train.output);
    saved.data.file.clone_from(&run.data.file);
    saved.data.train.clone_from(&run.data.train);
    saved.data.validation.clone_from(&run.data.validation);
    saved.data.test.clone_from(&run.data.test);
    // The run file records the keys of its model's kind only.
    let mut run = run.clone();
    run.model = run.model.without_other_kinds();
    if saved != run {
        bail!(
            "--resume: the configuration differs from the one {} was started with",
            run.train.output.display()
        );
    }
    let text = std::fs::read_to_string(&files.state).with_context(|| {
        format!(
            "--resume: cannot read {} (the run has not completed an epoch?); {what_to_do}",
            files.state.display()
        )
    })?;
    let state: RunState = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "--resume: {} is damaged or truncated ({e}); {what_to_do}",
            files.state.display()
        )
    })?;
    if let Some(recorded) = &state.data_sha256 {
        if recorded != data_sha256 {
            bail!(
                "--resume: the data differ from the data {} was started with (same files, same data.limit and split are needed)",
                run.train.output.display()
            );
        }
    }
    let meta = minima_model::potential::meta_path(&files.last);
    let weights = match &state.last_sha256 {
        None => files.last.clone(),
        Some(recorded) => [&files.last, &files.previous]
            .into_iter()
            .find(|path| minima_model::potential::sha256_file(path).is_ok_and(|hash| &hash == recorded))
            .cloned()
            .with_context(|| {
                format!(
                    "--resume: neither {} nor {} holds the weights {} records (damaged or replaced); {what_to_do}",
                    files.last.display(),
                    files.previous.display(),
                    files.state.display()
                )
            })?,
    };
    let potential = Potential::load_from(&weights, &meta, state.last_sha256.as_deref(), device)?;
    Ok((potential, (state, weights)))
}

/// Refuses a run whose parameters with their gradients and Adam's two moments, or whose
/// largest possible batch, would not fit the memory budget.
fn check_training_memory(run: &RunConfig, splits: &Splits) -> Result<()> {
    let model = &run.model;
    let parameters = model.parameter_count();
    minima_model::check_memory(
        &format!(
            "training a {:?} model of {parameters} parameters (weights, gradients, Adam's two moments)",
            model.kind
        ),
        4 * parameters * model.dtype_bytes(),
        model.kind.size_keys(),
    )?;
    let t = &run.train;
    let forces = t.needs_gradients();
    // Validation batches are larger, and keep no graph for a second backward pass.
    for (samples, source, batch_size, second_order, what) in [
        (&splits.train, &splits.train_source, t.batch_size, forces, "training"),
        (
            &splits.validation,
            &splits.validation_source,
            t.batch_size.max(64),
            false,
            "validation",
        ),
    ] {
        // Batches are drawn at random: the worst is the batch of the largest structures.
        let mut sizes: Vec<(u64, u64, usize)> = samples
            .iter()
            .map(|s| (s.graph.center.len() as u64, s.graph.len() as u64, s.frame))
            .collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        sizes.truncate(batch_size);
        let (edges, atoms) = sizes.iter().fold((0, 0), |(e, a), s| (e + s.0, a + s.1));
        let largest = sizes.first().map_or(0, |s| s.2);
        minima_model::check_memory(
            &format!(
                "a {what} batch of the {} largest structures of {source} (frame {largest} and the next; {atoms} atoms, {edges} edges)",
                sizes.len()
            ),
            model.batch_memory(atoms, edges, forces, second_order),
            &minima_model::inference::lower_batch_memory(model, "train.batch_size", sizes.len()),
        )?;
    }
    Ok(())
}

/// SHA-256 of what training reads of the splits (structures, labels, frame indices), hex.
fn data_fingerprint(splits: &Splits) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut number = |x: f64| hasher.update(x.to_bits().to_le_bytes());
    for split in [&splits.train, &splits.validation] {
        number(split.len() as f64);
        for sample in split {
            number(sample.frame as f64);
            number(sample.energy.unwrap_or(f64::NAN));
            for (&z, r) in sample.graph.numbers.iter().zip(&sample.graph.positions) {
                number(f64::from(z));
                r.iter().for_each(|&x| number(x));
            }
            for f in sample.forces.iter().flatten() {
                f.iter().for_each(|&x| number(x));
            }
        }
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// How often a run's state is written when its best checkpoint has not changed: a kill loses
/// at most this much training.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Writes the learning curve, the last weights with Adam's moments (the one before kept as
/// `last.previous.safetensors`) and the run state recording the new weights' hash; each
/// atomically and the state last, so that a failure at any point leaves the state of the last
/// completed epoch with weights that match it, and no temporary file.
fn save_state(potential: &Potential, adam: &Adam, state: &mut RunState, files: &RunFiles) -> Result<()> {
    let names: Vec<&str> = TERMS.iter().map(|t| t.name()).collect();
    let mut csv = format!(
        "epoch,learning_rate,train_loss,{},validation_loss,validation_energy_mae,validation_force_mae,seconds,cpu_seconds\n",
        names.iter().map(|n| format!("train_{n}")).collect::<Vec<_>>().join(",")
    );
    for r in &state.curve {
        let terms: Vec<String> = names
            .iter()
            .map(|n| format!("{:e}", r.train_terms.get(*n).copied().unwrap_or(0.0)))
            .collect();
        csv.push_str(&format!(
            "{},{:e},{:e},{},{:e},{:e},{},{:.3},{:.3}\n",
            r.epoch,
            r.learning_rate,
            r.train_loss,
            terms.join(","),
            r.validation_loss,
            r.validation_energy_mae,
            r.validation_force_mae.map_or(String::new(), |f| format!("{f:e}")),
            r.seconds,
            r.cpu_seconds
        ));
    }
    minima_io::write_atomic(&files.curve, |w| std::io::Write::write_all(w, csv.as_bytes()))
        .with_context(|| files.curve.display().to_string())?;
    let mut named: Vec<(String, Tensor)> = potential.var_store().variables().into_iter().collect();
    named.extend(adam.state());
    let mut sha256 = String::new();
    minima_model::potential::write_tensors_then(&files.last, &named, |hash| {
        sha256 = hash.to_string();
        potential.save_meta(&files.last, Some(hash))?;
        if files.last.exists() {
            std::fs::rename(&files.last, &files.previous).map_err(|e| minima_model::ModelError::Checkpoint {
                path: files.previous.display().to_string(),
                message: e.to_string(),
            })?;
        }
        Ok(())
    })?;
    state.last_sha256 = Some(sha256);
    let text = serde_json::to_string_pretty(state)?;
    minima_io::write_atomic(&files.state, |w| std::io::Write::write_all(w, text.as_bytes()))
        .with_context(|| files.state.display().to_string())?;
    Ok(())
}
