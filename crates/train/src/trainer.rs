//! The training loop: batches in a seeded order, Adam, learning-rate decay on validation
//! plateaus, early stopping, the best-validation checkpoint, and per-epoch state from which a
//! killed run resumes with the same result.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use minima_atoms::Atoms;
use minima_data::{read_frames, samples_of, split_by_group, AtomRefs, Sample};
use minima_model::{AuxTargets, GraphBatch, ModelKind, Potential};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::adam::Adam;
use crate::config::RunConfig;

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
    train_energy: f64,
    train_forces: f64,
    train_aux: f64,
    /// The physics-transformer terms (zero when their weight is).
    #[serde(default)]
    train_mask: f64,
    #[serde(default)]
    train_zero_force: f64,
    #[serde(default)]
    train_bound: f64,
    #[serde(default)]
    train_pair_equilibrium: f64,
    #[serde(default)]
    train_stress: f64,
    validation_loss: f64,
    validation_energy_mae: f64,
    validation_force_mae: Option<f64>,
    seconds: f64,
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

/// Loads the data of a run and splits it.
pub fn load_splits(config: &RunConfig) -> Result<Splits> {
    let spec = config.model.graph_spec();
    let limit = config.data.limit.unwrap_or(usize::MAX);
    let read = |path: &Path| -> Result<(Vec<Atoms>, Vec<Sample>)> {
        let mut frames = read_frames(path)?;
        frames.truncate(limit);
        let bar = crate::progress_bar(frames.len() as u64, "graphs");
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
        let split = split_by_group(&groups, config.data.split, config.train.seed).context("data.split")?;
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

/// Loss terms of one batch: the weighted total as a tensor, each term as a number.
struct BatchLoss {
    total: Tensor,
    energy: f64,
    forces: f64,
    aux: f64,
    mask: f64,
    zero_force: f64,
    bound: f64,
    pair_equilibrium: f64,
    stress: f64,
    energy_abs_errors: Vec<f64>,
    force_abs_error_sum: f64,
    force_components: usize,
}

/// The loss of the samples `indices`. `stochastic` (training) draws the masks and the bound
/// loss's perturbations from `rng`; validation leaves those two terms out.
fn batch_loss(
    potential: &Potential,
    config: &RunConfig,
    targets: &Targets,
    indices: &[usize],
    train: bool,
    rng: Option<&mut ChaCha8Rng>,
) -> Result<BatchLoss> {
    let t = &config.train;
    let samples: Vec<&Sample> = indices.iter().map(|&i| targets.samples[i]).collect();
    let graphs: Vec<&minima_data::Graph> = samples.iter().map(|s| &s.graph).collect();
    let want_forces = t.needs_gradients();
    let mut batch = potential.batch(&graphs, want_forces);
    if t.stress_weight > 0.0 {
        batch = batch.with_strain();
    }
    let prediction = minima_model::guard("the model's forward pass", || {
        potential.predict(&batch, want_forces, want_forces && train, train)
    })?;
    let kind = potential.kind();
    let device = potential.device();
    let scale = potential.refs.scale;
    let target: Vec<f64> = indices.iter().map(|&i| targets.normalized[i]).collect();
    let target = Tensor::from_slice(&target).to_kind(kind).to_device(device);
    let energy_error = &prediction.normalized_energy - &target;
    let energy_loss = energy_error.square().mean(kind);
    let energy_abs_errors: Vec<f64> = Vec::try_from(energy_error.abs().detach().to_kind(Kind::Double) * scale)?;
    let mut total = &energy_loss * t.energy_weight;
    let mut loss = BatchLoss {
        energy: energy_loss.double_value(&[]),
        total: Tensor::new(),
        forces: 0.0,
        aux: 0.0,
        mask: 0.0,
        zero_force: 0.0,
        bound: 0.0,
        pair_equilibrium: 0.0,
        stress: 0.0,
        energy_abs_errors,
        force_abs_error_sum: 0.0,
        force_components: 0,
    };
    let is_equilibrium: Vec<bool> = samples.iter().map(|s| s.is_equilibrium()).collect();
    let equilibrium: Vec<i64> = (0..samples.len() as i64)
        .filter(|&s| is_equilibrium[s as usize])
        .collect();
    let equilibrium_index = Tensor::from_slice(&equilibrium).to_device(device);
    if let Some(predicted) = &prediction.forces {
        if t.force_weight > 0.0 {
            let reference: Vec<f64> = samples
                .iter()
                .map(|s| {
                    s.forces.as_ref().with_context(|| {
                        format!("frame {}: missing label: no forces (train.force_weight > 0)", s.frame)
                    })
                })
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .flatten()
                .copied()
                .collect();
            let reference = Tensor::from_slice(&reference)
                .view([-1, 3])
                .to_kind(kind)
                .to_device(device);
            let error = (predicted - reference) / scale;
            let force_loss = error.square().mean(kind);
            loss.forces = force_loss.double_value(&[]);
            loss.force_abs_error_sum = error.abs().sum(Kind::Double).double_value(&[]) * scale;
            loss.force_components = error.numel();
            total += force_loss * t.force_weight;
        }
        if t.zero_force_weight > 0.0 && !equilibrium.is_empty() {
            let per_structure = batch.sum_per_structure(&(predicted / scale).square().sum_dim_intlist(-1, false, kind));
            let zero_force = per_structure.index_select(0, &equilibrium_index).mean(kind);
            loss.zero_force = zero_force.double_value(&[]);
            total += zero_force * t.zero_force_weight;
        }
    }
    if let (Some(virial), true) = (&prediction.virial, t.stress_weight > 0.0) {
        if let Some(term) = stress_loss(&samples, virial, scale)? {
            loss.stress = term.double_value(&[]);
            total += term * t.stress_weight;
        }
    }
    if t.pair_equilibrium_weight > 0.0 && !equilibrium.is_empty() {
        if let Some(term) = pair_equilibrium_loss(potential, &batch, &prediction, &is_equilibrium)? {
            loss.pair_equilibrium = term.double_value(&[]);
            total += term * t.pair_equilibrium_weight;
        }
    }
    if potential.config.kind == ModelKind::Vimpnn {
        let aux_targets = AuxTargets::new(
            &samples,
            &potential.config.elements,
            &potential.config.aux,
            kind,
            device,
        )
        .map_err(anyhow::Error::msg)?;
        if let Some(aux_loss) = aux_targets.loss(&prediction.aux) {
            loss.aux = aux_loss.double_value(&[]);
            total += aux_loss * potential.config.aux.weight;
        }
    }
    if let Some(rng) = rng {
        if t.mask_weight > 0.0 {
            if let Some(mask_loss) = masked_atom_loss(potential, &batch, t.mask_ratio, rng)? {
                loss.mask = mask_loss.double_value(&[]);
                total += mask_loss * t.mask_weight;
            }
        }
        if t.bound_weight > 0.0 && !equilibrium.is_empty() {
            let equilibrium_energy = prediction.normalized_energy.index_select(0, &equilibrium_index);
            let bound = bound_loss(potential, config, &samples, &equilibrium, &equilibrium_energy, rng)?;
            loss.bound = bound.double_value(&[]);
            total += bound * t.bound_weight;
        }
    }
    loss.total = total;
    Ok(loss)
}

/// Cross-entropy of the elements of atoms masked with probability `ratio` (at least one per
/// batch), predicted from the rest of the structure.
fn masked_atom_loss(
    potential: &Potential,
    batch: &GraphBatch,
    ratio: f64,
    rng: &mut ChaCha8Rng,
) -> Result<Option<Tensor>> {
    let numbers: Vec<i64> = Vec::try_from(&batch.numbers)?;
    let mut mask: Vec<bool> = numbers.iter().map(|_| rng.random_bool(ratio)).collect();
    if !mask.iter().any(|&m| m) {
        let pick = rng.random_range(0..mask.len());
        mask[pick] = true;
    }
    let device = potential.device();
    let Some(logits) = potential.masked_atom_logits(batch, &Tensor::from_slice(&mask).to_device(device)) else {
        bail!(
            "train.mask_weight > 0, but a {:?} model has no masked-atom head (set it to 0)",
            potential.config.kind
        );
    };
    let elements = &potential.config.elements;
    let (mut rows, mut classes) = (Vec::new(), Vec::new());
    for (a, (&z, &masked)) in numbers.iter().zip(&mask).enumerate() {
        if masked {
            rows.push(a as i64);
            classes.push(elements.binary_search(&(z as u8)).expect("elements checked") as i64);
        }
    }
    let rows = Tensor::from_slice(&rows).to_device(device);
    let classes = Tensor::from_slice(&classes).to_device(device);
    Ok(Some(logits.index_select(0, &rows).cross_entropy_for_logits(&classes)))
}

/// Mean (∂E_ij/∂d)² in (σ/Å)² over the bonded pair terms of the structures flagged as at
/// equilibrium; `None` when the batch has no such pair.
fn pair_equilibrium_loss(
    potential: &Potential,
    batch: &GraphBatch,
    prediction: &minima_model::Prediction,
    equilibrium: &[bool],
) -> Result<Option<Tensor>> {
    let Some(pairs) = &prediction.pairs else {
        bail!(
            "train.pair_equilibrium_weight > 0, but a {:?} model has no physics head (set it to 0)",
            potential.config.kind
        );
    };
    let structure = batch
        .structure
        .index_select(0, &batch.center.index_select(0, &pairs.edge));
    let equilibrium = Tensor::from_slice(equilibrium).to_device(potential.device());
    let selected = batch
        .bond
        .index_select(0, &pairs.edge)
        .ne(0)
        .logical_and(&equilibrium.index_select(0, &structure));
    if selected.sum(Kind::Int64).int64_value(&[]) == 0 {
        return Ok(None);
    }
    let slope = &pairs.slope / potential.refs.scale;
    Ok(Some(slope.masked_select(&selected).square().mean(potential.kind())))
}

/// max(0, E(equilibrium) − E(perturbed)), averaged over the `equilibrium` samples, in units of
/// σ. `equilibrium_energy` holds their normalised energies, in the same order.
fn bound_loss(
    potential: &Potential,
    config: &RunConfig,
    samples: &[&Sample],
    equilibrium: &[i64],
    equilibrium_energy: &Tensor,
    rng: &mut ChaCha8Rng,
) -> Result<Tensor> {
    let sigma = config.train.bound_noise / 3f64.sqrt();
    let spec = potential.config.graph_spec();
    let perturbed: Vec<minima_data::Graph> = equilibrium
        .iter()
        .map(|&s| {
            let sample = samples[s as usize];
            let graph = &sample.graph;
            let positions = graph
                .positions
                .iter()
                .map(|r| r.map(|x| x + sigma * minima_data::gaussian(rng)))
                .collect();
            graph
                .moved(positions, &spec)
                .map_err(|e| anyhow::anyhow!("frame {}: perturbing for the bound loss: {e}", sample.frame))
        })
        .collect::<Result<_>>()?;
    let batch = potential.batch(&perturbed.iter().collect::<Vec<_>>(), false);
    let perturbed_energy = potential.predict(&batch, false, false, true).normalized_energy;
    let kind = potential.kind();
    Ok((equilibrium_energy - perturbed_energy).relu().mean(kind))
}

/// One optimisation step on `samples` (a whole batch), as the training loop makes it; returns
/// the batch's loss. For benchmarks.
pub fn training_step(potential: &Potential, config: &RunConfig, samples: &[Sample], adam: &mut Adam) -> Result<f64> {
    let targets = Targets::new(samples, "the benchmark's structures", potential)?;
    let all: Vec<usize> = (0..samples.len()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(config.train.seed);
    let loss = batch_loss(potential, config, &targets, &all, true, Some(&mut rng))?;
    adam.zero_grad();
    loss.total.backward();
    adam.step();
    Ok(loss.total.double_value(&[]))
}

/// The stress term: the mean over the structures that record a stress of the squared error
/// of the virial per atom, (W − V·σ)/N with W = ∂E/∂ε the model's virial, in units of the
/// energy scale (the six Voigt components); `None` when no structure of the batch has one.
fn stress_loss(samples: &[&Sample], virial: &Tensor, scale: f64) -> Result<Option<Tensor>> {
    let (mut rows, mut reference, mut per_atom) = (Vec::new(), Vec::new(), Vec::new());
    for (s, sample) in samples.iter().enumerate() {
        let graph = &sample.graph;
        let (Some(stress), Some(cell)) = (sample.stress, graph.bulk_cell()) else {
            continue;
        };
        let n = graph.len() as f64;
        rows.push(s as i64);
        reference.extend(stress.map(|x| x * cell.volume() / (n * scale)));
        per_atom.push(1.0 / (n * scale));
    }
    if rows.is_empty() {
        return Ok(None);
    }
    let (kind, device) = (virial.kind(), virial.device());
    let floats = |v: &[f64]| Tensor::from_slice(v).to_kind(kind).to_device(device);
    let picked = virial
        .index_select(0, &Tensor::from_slice(&rows).to_device(device))
        .view([-1, 9]);
    // Voigt order xx yy zz yz xz xy of the row-major 3×3.
    let voigt = picked.index_select(1, &Tensor::from_slice(&[0i64, 4, 8, 5, 2, 1]).to_device(device));
    let error = voigt * floats(&per_atom).unsqueeze(1) - floats(&reference).view([-1, 6]);
    Ok(Some(error.square().mean(kind)))
}

/// Validation: the loss that selects the best model and drives decay and early stopping is
/// the weighted energy + force + zero-force loss, the terms that measure the potential-energy
/// surface itself (the auxiliary and masked-atom terms only shape training, and the bound
/// loss is a random draw).
fn validate(
    potential: &Potential,
    config: &RunConfig,
    targets: &Targets,
    learning_rate: f64,
) -> Result<(f64, f64, Option<f64>)> {
    let n = targets.samples.len();
    let (mut weighted, mut abs_errors, mut force_sum, mut force_count) = (0.0, Vec::new(), 0.0, 0usize);
    let order: Vec<usize> = (0..n).collect();
    for chunk in order.chunks(config.train.batch_size.max(64)) {
        let t = &config.train;
        let loss = if t.needs_gradients() {
            batch_loss(potential, config, targets, chunk, false, None)?
        } else {
            tch::no_grad(|| batch_loss(potential, config, targets, chunk, false, None))?
        };
        let terms = t.energy_weight * loss.energy
            + t.force_weight * loss.forces
            + t.zero_force_weight * loss.zero_force
            + t.stress_weight * loss.stress;
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
    let mae = abs_errors.iter().sum::<f64>() / abs_errors.len().max(1) as f64;
    let force_mae = (force_count > 0).then(|| force_sum / force_count as f64);
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
    config.validate()?;
    minima_model::configure_threads(config.train.threads);
    let device = minima_model::parse_device(&config.train.device)?;
    let out = &config.train.output;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let _lock = minima_io::OutputLock::acquire(out)?;
    let files = RunFiles::new(out);
    match start {
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

    let splits = load_splits(config)?;
    if config.train.stress_weight > 0.0 && !splits.train.iter().any(|s| s.stress.is_some()) {
        bail!(
            "train.stress_weight = {} but no training frame records a stress (info `stress`, as ASE writes it)",
            config.train.stress_weight
        );
    }
    if splits.train.is_empty() || splits.validation.is_empty() {
        bail!(
            "the split leaves {} training and {} validation structures; both need at least one",
            splits.train.len(),
            splits.validation.len()
        );
    }
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
    } else {
        let potential = Potential::new(run.model.clone(), refs.clone(), device, config.train.seed)?;
        (potential, None)
    };

    let train_targets = Targets::new(&splits.train, &splits.train_source, &potential)?;
    let validation_targets = Targets::new(&splits.validation, &splits.validation_source, &potential)?;
    if potential.config.kind == ModelKind::Vimpnn {
        let (kind, device) = (potential.kind(), potential.device());
        AuxTargets::new(
            &train_targets.samples,
            &potential.config.elements,
            &potential.config.aux,
            kind,
            device,
        )
        .map_err(|e| anyhow::anyhow!("training data: {e}"))?;
    }

    let mut adam = minima_model::guard("allocating Adam's moments", || {
        Adam::new(potential.var_store(), config.train.learning_rate)
    })?;
    let mut state = match resumed {
        Some((state, weights)) => {
            let saved: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&weights)
                .with_context(|| weights.display().to_string())?
                .into_iter()
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
    crate::console::status(format_args!(
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
    let minutes_trained = |state: &RunState| state.curve.iter().map(|row| row.seconds).sum::<f64>() / 60.0;
    let out_of_time = |state: &RunState| t.max_minutes.is_some_and(|limit| minutes_trained(state) >= limit);
    while state.epoch < t.max_epochs && state.epochs_since_best < t.early_stop && !out_of_time(&state) {
        let epoch = state.epoch + 1;
        let started = Instant::now();
        let mut order: Vec<usize> = (0..splits.train.len()).collect();
        // One generator per epoch, first for the order, then for the masks and perturbations:
        // a resumed run draws what an uninterrupted one does.
        let mut rng = ChaCha8Rng::seed_from_u64(t.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        order.shuffle(&mut rng);
        let batches: Vec<&[usize]> = order.chunks(t.batch_size).collect();
        let bar = crate::progress_bar(batches.len() as u64, &format!("epoch {epoch}/{}", t.max_epochs));
        let (mut sums, mut count) = ([0.0; 9], 0usize);
        for indices in batches {
            let loss = batch_loss(&potential, config, &train_targets, indices, true, Some(&mut rng))?;
            let total = loss.total.double_value(&[]);
            if !total.is_finite() {
                bail!(
                    "epoch {epoch}: the training loss became {total}: {}",
                    train_targets.explain_non_finite(indices, &loss.energy_abs_errors, adam.learning_rate)
                );
            }
            minima_model::guard("the backward pass", || {
                adam.zero_grad();
                loss.total.backward();
                adam.step();
            })?;
            let n = indices.len() as f64;
            let terms = [
                total,
                loss.energy,
                loss.forces,
                loss.aux,
                loss.mask,
                loss.zero_force,
                loss.bound,
                loss.pair_equilibrium,
                loss.stress,
            ];
            for (sum, value) in sums.iter_mut().zip(terms) {
                *sum += value * n;
            }
            count += indices.len();
            bar.inc(1);
        }
        bar.finish_and_clear();
        let (validation_loss, validation_mae, validation_force_mae) =
            validate(&potential, config, &validation_targets, adam.learning_rate)?;
        let mean = |k: usize| sums[k] / count.max(1) as f64;
        state.curve.push(CurveRow {
            epoch,
            learning_rate: adam.learning_rate,
            train_loss: mean(0),
            train_energy: mean(1),
            train_forces: mean(2),
            train_aux: mean(3),
            train_mask: mean(4),
            train_zero_force: mean(5),
            train_bound: mean(6),
            train_pair_equilibrium: mean(7),
            train_stress: mean(8),
            validation_loss,
            validation_energy_mae: validation_mae,
            validation_force_mae,
            seconds: started.elapsed().as_secs_f64(),
        });
        if epoch == 1 {
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
            potential.save(&files.best)?;
        } else {
            state.epochs_since_best += 1;
            state.epochs_since_decay += 1;
            if t.lr_final.is_none() && state.epochs_since_decay > t.lr_patience {
                adam.learning_rate *= t.lr_decay;
                state.epochs_since_decay = 0;
            }
        }
        if let (Some(final_rate), Some(limit)) = (t.lr_final, t.max_minutes) {
            let progress = (minutes_trained(&state) / limit).min(1.0);
            adam.learning_rate = t.learning_rate * (final_rate / t.learning_rate).powf(progress);
        }
        let physics = [
            ("mask", t.mask_weight, 4),
            ("zero-force", t.zero_force_weight, 5),
            ("bound", t.bound_weight, 6),
            ("pair-equilibrium", t.pair_equilibrium_weight, 7),
            ("stress", t.stress_weight, 8),
        ]
        .iter()
        .filter(|(_, weight, _)| *weight > 0.0)
        .map(|(name, _, k)| format!(" {name} {:.4}", mean(*k)))
        .collect::<String>();
        crate::console::status(format_args!(
            "epoch {epoch:>4}  train loss {:.5}{physics}  validation loss {validation_loss:.5}  energy MAE {validation_mae:.4} eV{}  lr {:.2e}{}",
            mean(0),
            validation_force_mae.map_or(String::new(), |f| format!("  force MAE {f:.4} eV/Å")),
            adam.learning_rate,
            if improved { "  *best" } else { "" }
        ));
        state.epoch = epoch;
        state.learning_rate = adam.learning_rate;
        state.adam_step = adam.step;
        save_state(&potential, &adam, &mut state, &files)?;
    }
    let stopped = if state.epochs_since_best >= t.early_stop {
        format!("no validation improvement for {} epochs", t.early_stop)
    } else if out_of_time(&state) {
        format!(
            "reached train.max_minutes = {} ({:.1} minutes trained)",
            t.max_minutes.unwrap_or_default(),
            minutes_trained(&state)
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
    let mut saved: RunConfig = toml::from_str(&saved)
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
    if saved != *run {
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
        minima_model::potential::SIZE_KEYS,
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

/// Writes the learning curve, the last weights with Adam's moments (the one before kept as
/// `last.previous.safetensors`) and the run state recording the new weights' hash; each
/// atomically and the state last, so that a failure at any point leaves the state of the last
/// completed epoch with weights that match it, and no temporary file.
fn save_state(potential: &Potential, adam: &Adam, state: &mut RunState, files: &RunFiles) -> Result<()> {
    let mut csv = String::from(
        "epoch,learning_rate,train_loss,train_energy,train_forces,train_aux,train_mask,train_zero_force,train_bound,train_pair_equilibrium,train_stress,validation_loss,validation_energy_mae,validation_force_mae,seconds\n",
    );
    for r in &state.curve {
        csv.push_str(&format!(
            "{},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{},{:.3}\n",
            r.epoch,
            r.learning_rate,
            r.train_loss,
            r.train_energy,
            r.train_forces,
            r.train_aux,
            r.train_mask,
            r.train_zero_force,
            r.train_bound,
            r.train_pair_equilibrium,
            r.train_stress,
            r.validation_loss,
            r.validation_energy_mae,
            r.validation_force_mae.map_or(String::new(), |f| format!("{f:e}")),
            r.seconds
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
