//! Learning tests: each model overfits a tiny dataset to near-zero loss (energies of real QM9
//! molecules; energies and forces of Morse clusters, trained through second-order autograd),
//! and a run interrupted and resumed ends exactly where an uninterrupted one does.

use std::path::Path;

use minima_model::config::ModelKind;
use minima_train::RunConfig;

mod common;
use common::{curve, morse_clusters, overfit_config, qm9_ten};

/// The physics transformer (with its Coulomb + Lennard-Jones pair head) small enough for
/// these tests.
fn small_transformer(config: &mut RunConfig) {
    config.model.kind = ModelKind::Transformer;
    config.model.cutoff = Some(5.0);
    let t = &mut config.model.transformer;
    (t.layers, t.heads, t.attention) = (2, 4, 24);
    config.model.priors = vec![minima_model::priors::PriorConfig::CoulombLj(Default::default())];
}

/// PaiNN small enough for these tests, with the ZBL prior (which no QM9 pair reaches).
fn small_painn(config: &mut RunConfig) {
    config.model.kind = ModelKind::Painn;
    config.model.cutoff = Some(5.0);
    config.model.painn.features = 24;
    config.model.priors = vec![minima_model::priors::PriorConfig::Zbl(Default::default())];
}

#[test]
fn every_model_overfits_ten_qm9_molecules() {
    let dir = tempfile::tempdir().unwrap();
    let data = qm9_ten(dir.path());
    for kind in [
        ModelKind::Mpnn,
        ModelKind::Vimpnn,
        ModelKind::Transformer,
        ModelKind::Painn,
    ] {
        let out = dir.path().join(format!("{kind:?}"));
        let mut config = overfit_config(&data, &out, kind);
        // Equilibrium QM9 frames record no scale, so the scale distribution cannot be a target.
        config.model.aux.scale = false;
        if kind == ModelKind::Transformer {
            small_transformer(&mut config);
        }
        if kind == ModelKind::Painn {
            small_painn(&mut config);
        }
        let outcome = minima_train::train(&config, false).unwrap();
        let curve = curve(&out);
        assert_eq!(curve.rows.len(), outcome.epochs);
        let energy = curve.column("train_energy");
        let best_mae = curve
            .column("validation_energy_mae")
            .into_iter()
            .fold(f64::INFINITY, f64::min);
        assert!(energy[0] > 0.1, "{kind:?}: starts at {}", energy[0]);
        // Near zero: an RMS error of a few percent of the residual spread, a few meV here.
        assert!(
            energy.last().unwrap() < &2e-3,
            "{kind:?}: normalised energy loss ends at {} (from {})",
            energy.last().unwrap(),
            energy[0]
        );
        assert!(best_mae < 0.02, "{kind:?}: best validation MAE {best_mae} eV");
    }
}

#[test]
fn vimpnn_and_painn_learn_energies_and_forces_through_second_order_autograd() {
    for kind in [ModelKind::Vimpnn, ModelKind::Painn] {
        learns_energies_and_forces(kind);
    }
}

fn learns_energies_and_forces(kind: ModelKind) {
    let dir = tempfile::tempdir().unwrap();
    let data = morse_clusters(dir.path());
    let out = dir.path().join("forces");
    let mut config = overfit_config(&data, &out, kind);
    if kind == ModelKind::Painn {
        small_painn(&mut config);
    }
    config.model.cutoff = Some(5.0);
    config.train.loss.insert("forces".into(), 1.0);
    config.train.max_epochs = 300;
    minima_train::train(&config, false).unwrap();
    let curve = curve(&out);
    let forces = curve.column("train_forces");
    let force_mae = curve.column("validation_force_mae");
    assert!(
        forces.last().unwrap() < &(0.05 * forces[0]),
        "{kind:?}: force loss {} → {}",
        forces[0],
        forces.last().unwrap()
    );
    assert!(
        force_mae.last().unwrap() < &(0.25 * force_mae[0]),
        "{kind:?}: force MAE {force_mae:?}"
    );
}

/// Copper crystals of 4 atoms at lattice constants 3.4-3.8 Å, rattled, labelled by EMT with
/// their stress: PaiNN trained on energy, forces and stress fits the stress (its term falls
/// twentyfold), and its predicted stress comes close to EMT's on a crystal it never saw.
#[test]
fn painn_learns_the_stress_through_the_strain_derivative() {
    use minima_atoms::Calculator;
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let emt = minima_emt::Emt::new();
    let crystal = |a: f64, rng: &mut rand_chacha::ChaCha8Rng| {
        let mut atoms = minima_atoms::build::fcc_supercell(29, a, 1);
        let moved = atoms
            .positions()
            .iter()
            .map(|r| r.map(|x| x + rng.random_range(-0.05..0.05)))
            .collect();
        atoms.set_positions(moved).unwrap();
        emt.calculate(&atoms).unwrap().apply(&mut atoms).unwrap();
        atoms
    };
    let frames: Vec<_> = (0..16).map(|k| crystal(3.4 + 0.025 * k as f64, &mut rng)).collect();
    let data = dir.path().join("cu.extxyz");
    minima_io::extxyz::write_all(&data, &frames).unwrap();
    let out = dir.path().join("stress");
    let mut config = overfit_config(&data, &out, ModelKind::Painn);
    small_painn(&mut config);
    config.model.priors.clear();
    config.train.loss.insert("forces".into(), 1.0);
    config.train.loss.insert("stress".into(), 1.0);
    config.train.max_epochs = 150;
    config.train.batch_size = 4;
    minima_train::train(&config, false).unwrap();
    let stress = curve(&out).column("train_stress");
    assert!(
        stress.last().unwrap() < &(0.05 * stress[0]),
        "stress term {} → {}",
        stress[0],
        stress.last().unwrap()
    );
    let unseen = crystal(3.51, &mut rng);
    let model = minima_model::ModelCalculator::load(&out.join("best.safetensors"), tch::Device::Cpu).unwrap();
    let (want, got) = (
        emt.calculate(&unseen).unwrap().stress.unwrap(),
        model.calculate(&unseen).unwrap().stress.unwrap(),
    );
    let scale = want[..3].iter().map(|x| x.abs()).fold(0.0, f64::max).max(1e-3);
    for k in 0..3 {
        assert!(
            (got[k] - want[k]).abs() < 0.3 * scale,
            "stress {got:?} vs EMT's {want:?}"
        );
    }
}

#[test]
fn a_resumed_run_ends_where_an_uninterrupted_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = qm9_ten(dir.path());
    let straight = dir.path().join("straight");
    let interrupted = dir.path().join("interrupted");
    let mut config = overfit_config(&data, &straight, ModelKind::Vimpnn);
    config.model.aux.scale = false;
    config.train.batch_size = 3;
    config.train.lr_patience = 0;

    assert_resumed_run_matches(&config, &straight, &interrupted);
}

/// Runs `config` 6 epochs into `straight`, and 3 then 3 more (resumed) into `interrupted`;
/// both must log the same losses and end with identical weights.
fn assert_resumed_run_matches(config: &RunConfig, straight: &Path, interrupted: &Path) {
    let mut config = config.clone();
    config.train.output = straight.to_path_buf();
    config.train.max_epochs = 6;
    minima_train::train(&config, false).unwrap();
    config.train.output = interrupted.to_path_buf();
    config.train.max_epochs = 3;
    minima_train::train(&config, false).unwrap();
    config.train.max_epochs = 6;
    minima_train::train(&config, true).unwrap();
    assert_eq!(curve(straight).losses(), curve(interrupted).losses());
    for file in ["best.safetensors", "last.safetensors"] {
        let a = std::fs::read(straight.join(file)).unwrap();
        let b = std::fs::read(interrupted.join(file)).unwrap();
        assert!(a == b, "{file} differs after resuming");
    }
}

/// The full physics-transformer objective (Eq. 10), plus the pair-equilibrium term, on
/// equilibrium QM9 molecules: every term is logged, the zero-force term falls through
/// second-order autograd, the masked elements come to be predicted, the bonds settle at the
/// minima of their pair potentials, and a killed run resumes to the same result, masks and
/// perturbations included.
#[test]
fn transformer_trains_with_every_physics_loss_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = qm9_ten(dir.path());
    let out = dir.path().join("full");
    let mut config = overfit_config(&data, &out, ModelKind::Transformer);
    small_transformer(&mut config);
    config.train.loss.insert("mask".into(), 0.5);
    config.train.loss.insert("zero_force".into(), 0.1);
    config.train.loss.insert("bound".into(), 1.0);
    config.train.loss.insert("pair_equilibrium".into(), 1.0);
    config.train.max_epochs = 150;
    minima_train::train(&config, false).unwrap();
    let curve = curve(&out);
    let first_and_last = |name: &str| {
        let c = curve.column(name);
        (c[0], *c.last().unwrap())
    };
    let (zero_force0, zero_force) = first_and_last("train_zero_force");
    let (energy0, energy) = first_and_last("train_energy");
    let (pair0, pair) = first_and_last("train_pair_equilibrium");
    let bound = curve.column("train_bound");
    // Each epoch masks other atoms of ten molecules, so one epoch's cross-entropy swings by
    // ±0.3: compare the first five epochs with the last twenty (chance is about 1.07 here).
    let masked = curve.column("train_mask");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (early, late) = (mean(&masked[..5]), mean(&masked[masked.len() - 20..]));
    assert!(
        late < 0.6 * early,
        "masked-atom cross-entropy {early} → {late}: {masked:?}"
    );
    assert!(
        zero_force < 0.2 * zero_force0,
        "zero-force term {zero_force0} → {zero_force}"
    );
    assert!(energy < 0.1 * energy0, "energy term {energy0} → {energy}");
    assert!(pair < 0.01 * pair0, "pair-equilibrium term {pair0} → {pair}");
    // The term is a hinge (zero by construction where no perturbation goes downhill): it
    // must have applied for its end to say anything.
    assert!(bound.iter().all(|b| b.is_finite()), "bound term {bound:?}");
    assert!(
        bound.iter().any(|&b| b > 1e-6),
        "the bound term never applied: {bound:?}"
    );
    // No structure in this set is perturbed downhill for long: the term ends small (over the
    // last twenty epochs: each draws new perturbations).
    let late_bound = mean(&bound[bound.len() - 20..]);
    assert!(late_bound < 0.05, "bound term ends at {late_bound}: {bound:?}");

    assert_resumed_run_matches(&config, &dir.path().join("straight"), &dir.path().join("interrupted"));
}

#[test]
fn bad_configurations_and_data_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = qm9_ten(dir.path());
    let out = dir.path().join("run");
    let mut config = overfit_config(&data, &out, ModelKind::Vimpnn);
    // The scale head needs frames that record their scale.
    let error = minima_train::train(&config, false).unwrap_err();
    assert!(format!("{error:#}").contains("scale"), "{error:#}");
    // Forces requested from data without forces.
    config.model.aux.scale = false;
    config.train.loss.insert("forces".into(), 1.0);
    let error = minima_train::train(&config, false).unwrap_err();
    assert!(format!("{error:#}").contains("no forces"), "{error:#}");
    // Physics-transformer terms asked of a model without their heads.
    config.train.loss.insert("forces".into(), 0.0);
    config.train.loss.insert("mask".into(), 0.1);
    let error = minima_train::train(&config, false).unwrap_err();
    assert!(format!("{error:#}").contains("no masked-atom head"), "{error:#}");
    config.train.loss.insert("mask".into(), 0.0);
    config.train.loss.insert("pair_equilibrium".into(), 1.0);
    let error = minima_train::train(&config, false).unwrap_err();
    // One check for every term: the field it reads is written by no block of the model.
    assert!(
        format!("{error:#}")
            .contains("train.loss.pair_equilibrium reads pair_edge, which no block of this vimpnn model writes"),
        "{error:#}"
    );
    config.train.loss.insert("pair_equilibrium".into(), 0.0);
    config.model.kind = ModelKind::Mpnn;
    config.train.loss.insert("aux".into(), 0.3);
    let error = minima_train::train(&config, false).unwrap_err();
    assert!(
        format!("{error:#}").contains("train.loss.aux reads aux_counts, which no block of this mpnn model writes"),
        "{error:#}"
    );
    config.train.loss.insert("aux".into(), 0.0);
    config.model.kind = ModelKind::Vimpnn;
    // A stress target on molecules, which record none.
    config.train.loss.insert("pair_equilibrium".into(), 0.0);
    config.train.loss.insert("stress".into(), 1.0);
    let error = minima_train::train(&config, false).unwrap_err();
    assert!(format!("{error:#}").contains("records a stress"), "{error:#}");
    config.train.loss.insert("stress".into(), 0.0);
    // Resuming a run that never started.
    config.train.output = dir.path().join("never");
    let error = minima_train::train(&config, true).unwrap_err();
    assert!(format!("{error:#}").contains("--resume"), "{error:#}");
}

#[test]
fn a_time_budget_stops_the_run_and_its_schedule_decays_the_rate_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = qm9_ten(dir.path());
    let out = dir.path().join("timed");
    let mut config = overfit_config(&data, &out, ModelKind::Mpnn);
    config.model.aux.scale = false;
    config.train.max_epochs = 100_000;
    config.train.early_stop = 100_000;
    // A budget of about two epochs of this tiny set, measured from the first one.
    config.train.max_minutes = Some(1e-9);
    let outcome = minima_train::train(&config, false).unwrap();
    assert_eq!(outcome.epochs, 1, "{}", outcome.stopped);
    assert!(outcome.stopped.contains("train.max_minutes"), "{}", outcome.stopped);

    // The same budget in CPU time: the epoch's CPU seconds are recorded and counted.
    config.train.output = dir.path().join("cpu");
    config.train.max_epochs = 3;
    config.train.clock = minima_train::config::Clock::Cpu;
    let outcome = minima_train::train(&config, false).unwrap();
    assert_eq!(outcome.epochs, 1, "{}", outcome.stopped);
    assert!(outcome.stopped.contains("CPU minutes trained"), "{}", outcome.stopped);
    assert!(curve(&dir.path().join("cpu")).column("cpu_seconds")[0] > 0.0);
    config.train.clock = minima_train::config::Clock::Wall;
    config.train.max_epochs = 100_000;

    let out = dir.path().join("scheduled");
    config.train.output = out.clone();
    let first_epoch_minutes = curve(&dir.path().join("timed")).column("seconds")[0] / 60.0;
    config.train.max_minutes = Some(first_epoch_minutes * 6.0);
    config.train.lr_final = Some(config.train.learning_rate / 100.0);
    let outcome = minima_train::train(&config, false).unwrap();
    assert!(outcome.stopped.contains("train.max_minutes"), "{}", outcome.stopped);
    let rates = curve(&out).column("learning_rate");
    // The rate each epoch trained with falls from the first and ends between the two ends.
    assert_eq!(rates[0], config.train.learning_rate);
    assert!(rates.windows(2).all(|w| w[1] <= w[0]), "{rates:?}");
    assert!(
        rates.len() >= 2 && rates.last().unwrap() < &config.train.learning_rate,
        "{rates:?}"
    );
}

/// `train.force_scale` F₀: the force term is Σᵢ wᵢ|ΔFᵢ|² / (3 Σᵢ wᵢ) with
/// wᵢ = 1 / (1 + |F_ref,i|²/F₀²) (in units of σ), checked against the model's own forces
/// after one step of a negligible rate on one batch; a huge F₀ gives the uniform mean.
#[test]
fn force_scale_weights_each_atom_by_its_reference_force() {
    use minima_atoms::Calculator;
    let dir = tempfile::tempdir().unwrap();
    let data = morse_clusters(dir.path());
    let frames = minima_io::extxyz::read_all(&data).unwrap();
    let first_force_term = |name: &str, force_scale: Option<f64>| {
        let out = dir.path().join(name);
        let mut config = overfit_config(&data, &out, ModelKind::Painn);
        small_painn(&mut config);
        config.train.loss.insert("forces".into(), 1.0);
        config.train.force_scale = force_scale;
        config.train.learning_rate = 1e-12;
        config.train.max_epochs = 1;
        minima_train::train(&config, false).unwrap();
        let model = minima_model::ModelCalculator::load(&out.join("last.safetensors"), tch::Device::Cpu).unwrap();
        let errors: Vec<(f64, f64)> = frames
            .iter()
            .flat_map(|atoms| {
                let predicted = model.calculate(atoms).unwrap().forces;
                let reference = atoms
                    .forces()
                    .unwrap()
                    .chunks(3)
                    .map(|f| f.to_vec())
                    .collect::<Vec<_>>();
                predicted
                    .into_iter()
                    .zip(reference)
                    .map(|(p, r)| {
                        let squared_error: f64 = (0..3).map(|k| (p[k] - r[k]).powi(2)).sum();
                        (squared_error, r.iter().map(|x| x * x).sum::<f64>())
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        (curve(&out).column("train_forces")[0], errors)
    };
    let (uniform, errors) = first_force_term("uniform", None);
    let (huge, _) = first_force_term("huge", Some(1e6));
    let (weighted, _) = first_force_term("weighted", Some(0.3));
    assert!((huge - uniform).abs() < 1e-6 * uniform, "{huge} vs {uniform}");
    let weight = |f2: f64| 1.0 / (1.0 + f2 / 0.09);
    let plain: f64 = errors.iter().map(|(e, _)| e).sum::<f64>() / (3 * errors.len()) as f64;
    let expected: f64 = errors.iter().map(|(e, f2)| e * weight(*f2)).sum::<f64>()
        / (3.0 * errors.iter().map(|(_, f2)| weight(*f2)).sum::<f64>());
    // Both in units of σ²: the ratio to the uniform term removes σ.
    let (got, want) = (weighted / uniform, expected / plain);
    assert!(
        (got - want).abs() < 1e-4 * want,
        "weighted/uniform {got}, expected {want}"
    );
    assert!(
        (want - 1.0).abs() > 0.05,
        "the weights should matter on these clusters: {want}"
    );
}

/// `minimum_shift`: at the frames carrying a `compliance` column (modes v/k), the mean over
/// them of Σₘ (cₘ (v/k)ₘ·ΔF)²/N with cₘ = min(1, k/floor), checked against the model's own
/// forces after one step of a negligible rate (the ratio to the force term removes σ).
#[test]
fn minimum_shift_is_the_first_order_shift_of_the_frames_with_compliance_modes() {
    use minima_atoms::{ArrayData, Calculator};
    let dir = tempfile::tempdir().unwrap();
    let mut frames = minima_io::extxyz::read_all(&morse_clusters(dir.path())).unwrap();
    // Two modes on every other frame: one softer than the floor (0.02 eV/Å²), one not (0.5).
    let constants = [0.02, 0.5];
    for atoms in frames.iter_mut().step_by(2) {
        let column: Vec<f64> = (0..atoms.len())
            .flat_map(|atom| {
                (0..2).flat_map(move |m| (0..3).map(move |c| ((atom * 7 + m * 3 + c) as f64).sin() / constants[m]))
            })
            .collect();
        atoms.set_array("compliance", 6, ArrayData::Float(column)).unwrap();
    }
    let data = dir.path().join("with_modes.extxyz");
    minima_io::extxyz::write_all(&data, &frames).unwrap();
    let out = dir.path().join("shift");
    let mut config = overfit_config(&data, &out, ModelKind::Painn);
    small_painn(&mut config);
    config.train.loss.insert("forces".into(), 1.0);
    config.train.loss.insert("minimum_shift".into(), 1.0);
    config.train.learning_rate = 1e-12;
    config.train.max_epochs = 1;
    minima_train::train(&config, false).unwrap();
    let model = minima_model::ModelCalculator::load(&out.join("last.safetensors"), tch::Device::Cpu).unwrap();
    let floor = config.train.soft_mode_floor;
    let (mut squared_errors, mut shifts) = (Vec::new(), Vec::new());
    for atoms in &frames {
        let predicted: Vec<f64> = model.calculate(atoms).unwrap().forces.into_iter().flatten().collect();
        let error: Vec<f64> = predicted
            .iter()
            .zip(atoms.forces().unwrap())
            .map(|(p, r)| p - r)
            .collect();
        squared_errors.extend(error.iter().map(|e| e * e));
        let Some(column) = atoms.float_array("compliance", 6) else {
            continue;
        };
        let shift: f64 = (0..2)
            .map(|m| {
                let mode = |atom: usize, c: usize| column[atom * 6 + 3 * m + c];
                let length = (0..atoms.len() * 3)
                    .map(|i| mode(i / 3, i % 3).powi(2))
                    .sum::<f64>()
                    .sqrt();
                let along: f64 = (0..atoms.len() * 3).map(|i| mode(i / 3, i % 3) * error[i]).sum();
                (along * (1.0 / (length * floor)).min(1.0)).powi(2)
            })
            .sum();
        shifts.push(shift / atoms.len() as f64);
    }
    let force_mean = squared_errors.iter().sum::<f64>() / squared_errors.len() as f64;
    let shift_mean = shifts.iter().sum::<f64>() / shifts.len() as f64;
    let table = curve(&out);
    let got = table.column("train_minimum_shift")[0] / table.column("train_forces")[0];
    let want = shift_mean / force_mean;
    assert_eq!(shifts.len(), 5);
    assert!((got - want).abs() < 1e-4 * want, "shift/forces {got}, expected {want}");

    // `train.loss_start`: the term joins at half the epochs, and the best checkpoint is one of
    // the epochs after it.
    config.train.output = dir.path().join("staged");
    config.train.max_epochs = 4;
    config.train.learning_rate = 1e-3;
    config.train.loss_start.insert("minimum_shift".into(), 0.5);
    let outcome = minima_train::train(&config, false).unwrap();
    let shifts = curve(&config.train.output).column("train_minimum_shift");
    assert!(
        shifts[..2].iter().all(|&v| v == 0.0) && shifts[2..].iter().all(|&v| v > 0.0),
        "{shifts:?}"
    );
    assert!(outcome.best_epoch >= 3, "best epoch {}", outcome.best_epoch);
    assert_eq!(config.train.joining(0.25, 0.5), ["minimum_shift"]);
    assert!(config.train.joining(0.5, 0.75).is_empty() && config.train.joining(0.0, 0.25).is_empty());
    // A term that is off never joins: its key alone does not restart the best checkpoint.
    config.train.loss.insert("minimum_shift".into(), 0.0);
    assert!(config.train.joining(0.25, 0.5).is_empty());
    assert!(config.train.joining(0.0, 0.25).is_empty());
    config.train.loss.insert("minimum_shift".into(), 1.0);
    config.train.loss_start.clear();

    // Without a frame that carries the modes the term is refused, saying how to add them.
    config.data.train = Some(morse_clusters(dir.path()));
    config.train.output = dir.path().join("no_modes");
    let error = format!("{:#}", minima_train::train(&config, false).unwrap_err());
    assert!(error.contains("minima data compliance"), "{error}");
}

/// `train.committee = 3`: three member runs, each seeded on its own (different weights), all
/// validated on the same split; a bootstrap committee trains each on its own draw; a committee
/// fine-tuned from it (`train.init`) starts each member from its counterpart, and a model other
/// than the checkpoint's is refused.
#[test]
fn a_committee_trains_its_members_apart_and_fine_tunes_from_itself() {
    let dir = tempfile::tempdir().unwrap();
    let data = morse_clusters(dir.path());
    let out = dir.path().join("committee");
    let mut config = overfit_config(&data, &out, ModelKind::Painn);
    small_painn(&mut config);
    config.data.train = None;
    config.data.validation = None;
    config.data.file = Some(minima_train::config::DataFiles::One(data.clone()));
    config.data.split = [0.7, 0.3, 0.0];
    config.train.loss.insert("forces".into(), 1.0);
    config.train.max_epochs = 3;
    config.train.committee = 3;
    let outcome = minima_train::train(&config, false).unwrap();
    assert_eq!(outcome.best_checkpoint, out);
    let members = minima_model::checkpoints_of(&out).unwrap();
    assert_eq!(members.len(), 3);
    let weights: Vec<Vec<u8>> = members.iter().map(|m| std::fs::read(m).unwrap()).collect();
    assert!(
        weights[0] != weights[1] && weights[1] != weights[2],
        "each member its own draw"
    );
    let run = |k: usize| -> toml::Table {
        let text = std::fs::read_to_string(out.join(format!("member-{k}/run.toml"))).unwrap();
        toml::from_str(&text).unwrap()
    };
    for k in 0..3 {
        assert_eq!(run(k)["train"]["seed"].as_integer(), Some(4 + k as i64));
        assert_eq!(run(k)["data"]["split_seed"].as_integer(), Some(4), "one split for all");
    }
    let validation = |k: usize| curve(&out.join(format!("member-{k}"))).column("validation_energy_mae");
    assert_ne!(validation(0), validation(1));
    // Rerun with --resume: every member is done, nothing trains again.
    let again = minima_train::train(&config, true).unwrap();
    assert_eq!(again.epochs, outcome.epochs);
    assert_eq!(std::fs::read(&members[1]).unwrap(), weights[1]);

    // Fine-tuned from the committee: member k starts from member k's weights.
    let tuned_out = dir.path().join("tuned");
    let mut tuned = config.clone();
    tuned.train.output = tuned_out.clone();
    tuned.train.init = Some(out.clone());
    tuned.train.max_epochs = 1;
    tuned.train.learning_rate = 1e-12;
    minima_train::train(&tuned, false).unwrap();
    for (k, member) in members.iter().enumerate() {
        let before = minima_model::Potential::load(member, tch::Device::Cpu).unwrap();
        let after = minima_model::Potential::load(
            &tuned_out.join(format!("member-{k}/best.safetensors")),
            tch::Device::Cpu,
        )
        .unwrap();
        let (a, b) = (before.var_store().variables(), after.var_store().variables());
        let largest = a
            .iter()
            .map(|(name, t)| (t - &b[name]).abs().max().double_value(&[]))
            .fold(0.0, f64::max);
        assert!(largest < 1e-6, "member {k} moved {largest} at a rate of 1e-12");
    }
    let mut other = tuned.clone();
    other.train.output = dir.path().join("other");
    other.model.painn.features = 16;
    let error = format!("{:#}", minima_train::train(&other, false).unwrap_err());
    assert!(error.contains("train.init") && error.contains("differs"), "{error}");

    // Bootstrap: the members' training sets differ (their first epochs' losses do).
    let boot_out = dir.path().join("bootstrap");
    let mut boot = config.clone();
    boot.train.output = boot_out.clone();
    boot.train.bootstrap = true;
    boot.train.committee = 2;
    boot.train.seed = 9;
    minima_train::train(&boot, false).unwrap();
    let mut plain = boot.clone();
    plain.train.output = dir.path().join("plain");
    plain.train.bootstrap = false;
    minima_train::train(&plain, false).unwrap();
    let first = |folder: &Path| curve(folder).column("train_loss")[0];
    assert_ne!(
        first(&boot_out.join("member-0")),
        first(&dir.path().join("plain/member-0"))
    );
}
