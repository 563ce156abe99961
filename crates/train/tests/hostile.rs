//! Hostile runs: folders that hold a run, damaged checkpoints and state, moved folders,
//! degenerate settings, diverging training, models and molecules too large for memory, and
//! predictions that are not finite. Each must end in one clear error, or in the right result.

use std::path::{Path, PathBuf};

use minima_data::{GraphSpec, Sample};
use minima_model::config::ModelKind;
use minima_model::{ModelConfig, Potential};
use minima_train::{RunConfig, Start};
use tch::Device;

mod common;
use common::{curve, morse_clusters, overfit_config};

/// A VIMPNN run of `epochs` epochs into `dir/folder` on Morse clusters written to `dir`.
fn quick_run(dir: &Path, folder: &str, epochs: usize) -> RunConfig {
    let mut config = overfit_config(&morse_clusters(dir), &dir.join(folder), ModelKind::Vimpnn);
    config.train.batch_size = 4;
    config.train.max_epochs = epochs;
    config
}

/// The data file of `config`.
fn data_of(config: &RunConfig) -> PathBuf {
    config.data.train.clone().unwrap()
}

fn error_of(result: anyhow::Result<minima_train::TrainOutcome>) -> String {
    format!("{:#}", result.expect_err("an error"))
}

/// `error` must mention every one of `needles`.
fn assert_mentions(error: &str, needles: &[&str]) {
    for needle in needles {
        assert!(error.contains(needle), "{needle}: {error}");
    }
}

#[test]
fn a_new_run_refuses_a_folder_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let config = quick_run(dir.path(), "run", 2);
    let out = config.train.output.clone();
    minima_train::train(&config, false).unwrap();
    let best = std::fs::read(out.join("best.safetensors")).unwrap();

    let mut other = config.clone();
    other.train.seed = 99;
    let error = error_of(minima_train::train(&other, false));
    assert_mentions(
        &error,
        &[
            "not empty",
            "--resume",
            "--overwrite",
            "train.output",
            "best.safetensors",
        ],
    );
    assert_eq!(
        std::fs::read(out.join("best.safetensors")).unwrap(),
        best,
        "best checkpoint touched"
    );

    // --overwrite replaces the run: a fresh run with the new seed, no stale file left.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let outcome = minima_train::train_as(&other, Start::Overwrite).unwrap();
    assert_eq!(outcome.epochs, 2);
    assert_ne!(std::fs::read(out.join("best.safetensors")).unwrap(), best);
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");

    // Any other content is refused too, the working directory included.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("data.extxyz"), "").unwrap();
    let mut into_foreign = config.clone();
    into_foreign.train.output = foreign;
    assert!(error_of(minima_train::train(&into_foreign, false)).contains("not empty"));
}

#[test]
fn a_start_that_fails_before_its_first_epoch_leaves_the_folder_reusable() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = quick_run(dir.path(), "run", 1);
    config.train.loss.insert("mask".into(), 0.5);
    assert!(error_of(minima_train::train(&config, false)).contains("no masked-atom head"));
    config.train.loss.insert("mask".into(), 0.0);
    minima_train::train(&config, false).unwrap();
}

/// A trained run's best checkpoint, its TOML, and the Morse clusters as samples.
fn trained_checkpoint(dir: &Path) -> (PathBuf, Vec<Sample>) {
    let config = quick_run(dir, "run", 2);
    minima_train::train(&config, false).unwrap();
    let frames = minima_io::extxyz::read_all(&data_of(&config)).unwrap();
    let samples = frames
        .iter()
        .enumerate()
        .map(|(i, atoms)| Sample::from_atoms(atoms, i, "morse", &GraphSpec { cutoff: None }).unwrap())
        .collect();
    (config.train.output.join("best.safetensors"), samples)
}

fn energies(potential: &Potential, samples: &[Sample]) -> Vec<f64> {
    let refs: Vec<&Sample> = samples.iter().collect();
    minima_model::predict_samples(potential, &refs, 4, false)
        .unwrap()
        .iter()
        .map(|p| p.energy)
        .collect()
}

#[test]
fn a_bit_flipped_checkpoint_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (best, _) = trained_checkpoint(dir.path());
    let meta = std::fs::read_to_string(best.with_extension("toml")).unwrap();
    assert!(meta.contains("sha256 = "), "{meta}");
    let mut bytes = std::fs::read(&best).unwrap();
    // A bit deep in the tensor data, past the header: the file still parses.
    let k = bytes.len() - 7;
    bytes[k] ^= 0x10;
    std::fs::write(&best, &bytes).unwrap();
    let error = Potential::load(&best, Device::Cpu).err().expect("refused").to_string();
    assert!(
        error.contains("best.safetensors") && error.contains("SHA-256"),
        "{error}"
    );
}

#[test]
fn a_checkpoint_without_a_hash_loads_and_predicts_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let (best, samples) = trained_checkpoint(dir.path());
    let checked = energies(&Potential::load(&best, Device::Cpu).unwrap(), &samples);
    let meta = best.with_extension("toml");
    let text = std::fs::read_to_string(&meta).unwrap();
    let old: String = text
        .lines()
        .filter(|l| !l.starts_with("sha256"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(old, text);
    std::fs::write(&meta, old).unwrap();
    let unchecked = energies(&Potential::load(&best, Device::Cpu).unwrap(), &samples);
    assert_eq!(checked, unchecked);
}

#[test]
fn a_truncated_state_is_a_clear_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = quick_run(dir.path(), "run", 2);
    let out = config.train.output.clone();
    minima_train::train(&config, false).unwrap();
    let state = out.join("state.json");
    let text = std::fs::read_to_string(&state).unwrap();
    std::fs::write(&state, &text[..text.len() / 2]).unwrap();
    config.train.max_epochs = 4;
    let error = error_of(minima_train::train(&config, true));
    assert_mentions(&error, &["state.json", "truncated", "--overwrite"]);
}

/// Runs `a` and `b` logged the same losses and ended with identical weights.
fn assert_same_result(a: &Path, b: &Path) {
    assert_eq!(curve(a).losses(), curve(b).losses());
    for file in ["best.safetensors", "last.safetensors"] {
        let same = std::fs::read(a.join(file)).unwrap() == std::fs::read(b.join(file)).unwrap();
        assert!(same, "{file} differs");
    }
}

#[test]
fn a_moved_run_folder_with_moved_data_resumes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = quick_run(dir.path(), "straight", 4);
    let straight = config.train.output.clone();
    minima_train::train(&config, false).unwrap();

    let before = dir.path().join("before");
    config.train.output = before.clone();
    config.train.max_epochs = 2;
    minima_train::train(&config, false).unwrap();
    let after = dir.path().join("elsewhere").join("after");
    std::fs::create_dir(after.parent().unwrap()).unwrap();
    std::fs::rename(&before, &after).unwrap();
    let moved_data = dir.path().join("elsewhere").join("clusters.extxyz");
    std::fs::rename(data_of(&config), &moved_data).unwrap();
    config.train.output = after.clone();
    config.data.train = Some(moved_data.clone());
    config.data.validation = Some(moved_data.clone());
    config.train.max_epochs = 4;
    minima_train::train(&config, true).unwrap();
    assert_same_result(&straight, &after);

    // Other data under the same name are refused.
    let mut frames = minima_io::extxyz::read_all(&moved_data).unwrap();
    let shifted = frames[0].energy().unwrap() + 1.0;
    frames[0].set_energy(shifted);
    minima_io::extxyz::write_all(&moved_data, &frames).unwrap();
    config.train.max_epochs = 5;
    assert!(error_of(minima_train::train(&config, true)).contains("the data differ"));
}

#[test]
fn a_run_killed_while_saving_resumes_from_its_last_complete_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = quick_run(dir.path(), "straight", 3);
    let straight = config.train.output.clone();
    minima_train::train(&config, false).unwrap();
    let killed = dir.path().join("killed");
    config.train.output = killed.clone();
    minima_train::train(&config, false).unwrap();
    // Killed after epoch 3's weights were committed, before its state: the state is epoch 2's.
    let epoch_three = std::fs::read(killed.join("last.safetensors")).unwrap();
    config.train.output = dir.path().join("two");
    config.train.max_epochs = 2;
    minima_train::train(&config, false).unwrap();
    std::fs::copy(dir.path().join("two/state.json"), killed.join("state.json")).unwrap();
    std::fs::copy(
        dir.path().join("two/last.safetensors"),
        killed.join("last.previous.safetensors"),
    )
    .unwrap();
    std::fs::write(killed.join("last.safetensors"), &epoch_three).unwrap();
    config.train.output = killed.clone();
    config.train.max_epochs = 3;
    minima_train::train(&config, true).unwrap();
    assert_same_result(&straight, &killed);

    // Neither file matching the state is an error, not a resumed run from the wrong weights.
    std::fs::copy(dir.path().join("two/state.json"), killed.join("state.json")).unwrap();
    std::fs::write(killed.join("last.previous.safetensors"), &epoch_three).unwrap();
    config.train.max_epochs = 4;
    let error = error_of(minima_train::train(&config, true));
    assert!(error.contains("neither") && error.contains("state.json"), "{error}");
}

#[test]
fn degenerate_settings_are_errors_naming_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.toml");
    std::fs::write(&path, "[data]\nfile = \"q.extxyz\"\n").unwrap();
    for (setting, key) in [
        ("train.early_stop=0", "train.early_stop"),
        ("train.max_epochs=0", "train.max_epochs"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.threads=0", "train.threads"),
        ("train.output=\"\"", "train.output"),
        ("train.learning_rate=nan", "train.learning_rate"),
        ("train.learning_rate=inf", "train.learning_rate"),
        ("train.learning_rate=-1e-3", "train.learning_rate"),
        ("train.loss.energy=inf", "train.loss.energy"),
        ("train.loss.forces=-1", "train.loss.forces"),
        ("train.loss.forces=nan", "train.loss.forces"),
        ("train.loss.energy=0", "train.loss.energy"),
        ("train.loss.strain=1", "train.loss.strain"),
        ("train.force_scale=0", "train.force_scale"),
        ("train.force_scale=inf", "train.force_scale"),
        ("train.soft_mode_floor=0", "train.soft_mode_floor"),
        ("train.soft_mode_floor=nan", "train.soft_mode_floor"),
        ("train.loss_start.forces=0.5", "train.loss_start.forces"),
        ("train.loss_start.energy=1.0", "train.loss_start.energy"),
        ("train.loss.zero_force=inf", "train.loss.zero_force"),
        ("train.energy_weight=1", "[train.loss] energy"),
        ("train.lr_decay=nan", "train.lr_decay"),
        ("data.split=[0.8, 0.1, inf]", "data.split"),
        ("data.limit=0", "data.limit"),
    ] {
        let error = format!("{:#}", RunConfig::load(&path, &[setting.into()]).unwrap_err());
        assert!(error.contains(key), "{setting}: {error}");
    }
    let settings = [
        "model.kind=transformer".into(),
        "model.cutoff=5.0".into(),
        "model.priors=[{kind = \"coulomb_lj\", initial_distance = inf}]".into(),
    ];
    let mut config = RunConfig::load(&path, &settings).unwrap();
    assert_eq!(config.model.kind, ModelKind::Transformer);
    config.model.elements = vec![1];
    let error = config.model.validate().unwrap_err().to_string();
    assert!(error.contains("initial_distance"), "{error}");
}

#[test]
fn a_diverging_run_names_the_frames_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = quick_run(dir.path(), "run", 50);
    config.train.learning_rate = 1e30;
    let error = error_of(minima_train::train(&config, false));
    assert_mentions(
        &error,
        &[
            "training loss became",
            "frame",
            "morse.extxyz",
            "lower train.learning_rate",
            "diverged",
        ],
    );
}

#[test]
fn an_oversized_model_is_refused_before_it_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = quick_run(dir.path(), "run", 1);
    config.model.hidden = 100_000;
    let error = error_of(minima_train::train(&config, false));
    assert_mentions(&error, &["GiB", "memory budget", "model.hidden", "MINIMA_MEMORY_GB"]);
    // Loading a checkpoint whose TOML asks for such a model is refused the same way.
    config.model.elements = vec![29, 47];
    let refs = minima_data::AtomRefs {
        elements: vec![29, 47],
        energies: vec![0.0, 0.0],
        scale: 1.0,
    };
    let error = Potential::new(config.model, refs, Device::Cpu, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("model.hidden"), "{error}");
}

/// The parameter count the memory check uses is the count of the model built.
#[test]
fn parameter_counts_match_the_built_models() {
    let refs = minima_data::AtomRefs {
        elements: vec![1, 6, 8],
        energies: vec![-1.0, -2.0, -3.0],
        scale: 1.0,
    };
    let base = ModelConfig {
        elements: vec![1, 6, 8],
        hidden: 12,
        edge_rank: 7,
        edge_hidden: 5,
        readout_hidden: 9,
        ..ModelConfig::default()
    };
    let mut configs = vec![ModelConfig {
        kind: ModelKind::Mpnn,
        ..base.clone()
    }];
    for combine in ["a.i", "a.ii", "b.i", "b.ii", "c"] {
        let mut config = base.clone();
        config.vimpnn.combine = toml::Value::String(combine.into()).try_into().unwrap();
        configs.push(config);
    }
    let mut no_aux = base.clone();
    no_aux.aux.counts = false;
    no_aux.aux.scale = false;
    configs.push(no_aux);
    let mut transformer = ModelConfig {
        kind: ModelKind::Transformer,
        cutoff: Some(5.0),
        ..base.clone()
    };
    transformer.transformer.attention = 8;
    transformer
        .priors
        .push(minima_model::priors::PriorConfig::CoulombLj(Default::default()));
    configs.push(transformer.clone());
    transformer.transformer.cls = false;
    transformer.transformer.adjacency_mask = false;
    transformer.priors.clear();
    configs.push(transformer);
    let mut painn = ModelConfig {
        kind: ModelKind::Painn,
        cutoff: Some(5.0),
        ..base.clone()
    };
    painn.painn.features = 10;
    painn.painn.layers = 2;
    painn.painn.radial_basis = 7;
    configs.push(painn);
    for config in configs {
        let built = Potential::new(config.clone(), refs.clone(), Device::Cpu, 0).unwrap();
        let count: usize = built.var_store().variables().values().map(|v| v.numel()).sum();
        assert_eq!(config.parameter_count(), count as u64, "{config:?}");
    }
}

#[test]
fn non_finite_predictions_are_an_error_naming_the_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (best, samples) = trained_checkpoint(dir.path());
    let potential = Potential::load(&best, Device::Cpu).unwrap();
    tch::no_grad(|| {
        for (_, mut v) in potential.var_store().variables() {
            let _ = v.fill_(f64::NAN);
        }
    });
    let error = format!(
        "{:#}",
        minima_train::evaluate(&potential, &samples, 4, &Default::default()).unwrap_err()
    );
    assert!(error.contains("non-finite") && error.contains("frames 0, 1"), "{error}");
}
