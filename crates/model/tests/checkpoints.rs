//! The shipped checkpoints were written before the loss weights moved to `[train.loss]` and
//! the ZBL prior to `[[model.priors]]` (their TOMLs still carry `model.aux.weight` and
//! `[model.zbl]`): they load, and predict what the code that
//! wrote them predicted. The fixtures hold that code's `minima predict` output for three
//! molecules (`models/molecules`) and a rattled 32-atom copper crystal with its stress
//! (`models/metals`). A small physics Transformer (`tests/fixtures/transformer_physics_head`,
//! two epochs of `configs/qm9-transformer-full.toml` shrunk, its head on bonded pairs) was
//! written while the pair head lived inside the transformer (`physics = true`, its weights
//! under `transformer.pair_head`); the fixture holds its predictions for four molecules.

use std::path::{Path, PathBuf};

use minima_atoms::Calculator;
use minima_model::ModelCalculator;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn predicts_as_before(checkpoint: &str, fixture: &str, periodic: bool) {
    let model = ModelCalculator::load(&root().join(checkpoint), tch::Device::Cpu).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    let frames = minima_io::extxyz::read_all(&fixture).unwrap();
    assert!(!frames.is_empty());
    for (frame, recorded) in frames.iter().enumerate() {
        let now = model.calculate(recorded).unwrap();
        let energy = recorded.energy().unwrap();
        assert!(
            (now.energy - energy).abs() < 1e-4,
            "{checkpoint} frame {frame}: {} vs {energy}",
            now.energy
        );
        for (got, want) in now.forces.iter().flatten().zip(recorded.forces().unwrap()) {
            assert!(
                (got - want).abs() < 1e-4,
                "{checkpoint} frame {frame}: force {got} vs {want}"
            );
        }
        assert_eq!(
            recorded.info.contains_key("stress"),
            periodic,
            "{fixture:?} frame {frame}"
        );
        if let Some(minima_atoms::Value::Floats(matrix)) = recorded.info.get("stress") {
            // ASE's 3×3, row-major; Voigt xx yy zz yz xz xy.
            let want = [0, 4, 8, 5, 2, 1].map(|k| matrix[k]);
            let got = now.stress.expect("a periodic crystal has a stress");
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-6, "{checkpoint} frame {frame}: stress {g} vs {w}");
            }
        }
    }
}

#[test]
fn the_shipped_molecule_checkpoint_predicts_as_it_did() {
    predicts_as_before("models/molecules.safetensors", "molecules_predicted.extxyz", false);
}

#[test]
fn the_shipped_metals_checkpoint_predicts_its_energy_forces_and_stress_as_it_did() {
    predicts_as_before("models/metals.safetensors", "cu32_predicted.extxyz", true);
}

#[test]
fn a_transformer_checkpoint_with_its_old_physics_head_predicts_as_it_did() {
    let checkpoint = "crates/model/tests/fixtures/transformer_physics_head.safetensors";
    predicts_as_before(checkpoint, "transformer_predicted.extxyz", false);
    let potential = minima_model::Potential::load(&root().join(checkpoint), tch::Device::Cpu).unwrap();
    let head = minima_model::priors::coulomb_lj::CoulombLjConfig {
        pairs: minima_model::priors::coulomb_lj::PairSet::Bonded,
        initial_depth: 1.0,
        ..Default::default()
    };
    assert_eq!(
        potential.config.priors,
        [minima_model::priors::PriorConfig::CoulombLj(head)]
    );
}

/// The shipped checkpoints record their ZBL prior as `[model.zbl] enabled = true`, the form
/// before `[[model.priors]]`: it loads as a zbl prior with its radii, whose wall still stands
/// (the fixtures' geometries lie beyond its outer radius and could not tell).
#[test]
fn a_checkpoint_written_with_model_zbl_keeps_its_prior() {
    use minima_model::priors::{zbl::ZblConfig, PriorConfig};
    let path = root().join("models/molecules.safetensors");
    let text = std::fs::read_to_string(path.with_extension("toml")).unwrap();
    assert!(
        text.contains("[model.zbl]") && text.contains("enabled = true"),
        "{text}"
    );
    let potential = minima_model::Potential::load(&path, tch::Device::Cpu).unwrap();
    assert_eq!(
        potential.config.priors,
        [PriorConfig::Zbl(ZblConfig {
            inner: 0.35,
            outer: 0.6
        })]
    );
    let model = ModelCalculator::load(&path, tch::Device::Cpu).unwrap();
    let pair = |d: f64| {
        let atoms = minima_atoms::Atoms::new(vec![6, 6], vec![[0.0; 3], [d, 0.0, 0.0]]).unwrap();
        model.calculate(&atoms).unwrap().energy
    };
    // Two carbons at 0.4 Å: ZBL alone gives about 200 eV there.
    assert!(pair(0.4) - pair(1.5) > 100.0, "{} {}", pair(0.4), pair(1.5));
}

/// A checkpoint whose TOML asks for parameters its weights do not hold (here a pair head added
/// by hand) is refused naming the file and the missing parameter, not loaded half-initialised.
#[test]
fn a_checkpoint_missing_a_parameter_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let config = minima_model::ModelConfig {
        kind: minima_model::ModelKind::Painn,
        cutoff: Some(4.0),
        elements: vec![1, 6],
        painn: minima_model::config::PainnConfig {
            features: 8,
            layers: 1,
            radial_basis: 4,
        },
        ..Default::default()
    };
    let refs = minima_data::AtomRefs {
        elements: vec![1, 6],
        energies: vec![-13.6, -1029.0],
        scale: 1.0,
    };
    let potential = minima_model::Potential::new(config, refs, tch::Device::Cpu, 0).unwrap();
    potential.save(&path).unwrap();
    let meta = path.with_extension("toml");
    let text = std::fs::read_to_string(&meta).unwrap();
    let edited: String = text
        .lines()
        .filter(|line| !line.starts_with("sha256"))
        .map(|line| match line {
            "priors = []" => "priors = [{ kind = \"coulomb_lj\" }]".to_string(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        edited.contains("coulomb_lj"),
        "the TOML lists no priors to edit: {text}"
    );
    std::fs::write(&meta, edited).unwrap();
    let error = minima_model::Potential::load(&path, tch::Device::Cpu)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        error.contains("model.safetensors") && error.contains("no parameter priors.0."),
        "{error}"
    );
}
