//! The physics Transformer end to end: both shipped configurations train (shrunk to seconds
//! with `--set`), `eval` reports force MAE against zero on equilibrium molecules and the
//! re-optimisation metrics with `--relax`, and `pairs` prints methane's C–H parameters.

use std::path::Path;

mod common;
use common::{minima, minima_error, path, qm9_archive};

fn repository() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Trains `config` (a file of configs/) on the first 40 QM9 molecules for 3 epochs, small,
/// with further `--set` `overrides`.
fn train(config: &str, out: &Path, overrides: &[&str]) {
    let config = repository().join("configs").join(config);
    let output = format!("train.output={:?}", path(out));
    let data = format!("data.file={:?}", path(&qm9_archive()));
    let stderr = String::from_utf8_lossy(
        &minima(
            &[
                "train",
                "--config",
                path(&config),
                "--set",
                &data,
                "--set",
                "data.limit=40",
                "--set",
                "data.split=[0.6, 0.2, 0.2]",
                "--set",
                &output,
                "--set",
                "train.max_epochs=3",
                "--set",
                "train.batch_size=8",
                "--set",
                "model.hidden=16",
                "--set",
                "model.transformer.attention=16",
                "--set",
                "model.transformer.layers=1",
            ]
            .into_iter()
            .chain(overrides.iter().flat_map(|o| ["--set", o]))
            .collect::<Vec<_>>(),
        )
        .stderr,
    )
    .into_owned();
    assert!(stderr.contains("Transformer model"), "{stderr}");
}

#[test]
fn both_transformer_configurations_train_evaluate_and_show_their_pairs() {
    let dir = tempfile::tempdir().unwrap();
    for (config, physics_losses) in [
        ("qm9-transformer-full.toml", true),
        ("qm9-transformer-energy.toml", false),
    ] {
        let out = dir.path().join(config);
        train(config, &out, &[]);
        let curve = std::fs::read_to_string(out.join("learning_curve.csv")).unwrap();
        let header: Vec<&str> = curve.lines().next().unwrap().split(',').collect();
        let last: Vec<f64> = curve
            .lines()
            .last()
            .unwrap()
            .split(',')
            .map(|x| x.parse().unwrap_or(f64::NAN))
            .collect();
        for term in ["train_mask", "train_zero_force", "train_bound"] {
            let value = last[header.iter().position(|h| *h == term).unwrap()];
            assert_eq!(value > 0.0, physics_losses, "{config}: {term} = {value}");
        }

        let model = out.join("best.safetensors");
        let name = config.trim_end_matches(".toml");
        let json = dir.path().join(format!("{name}.json"));
        let printed = minima(&[
            "eval",
            "--model",
            path(&model),
            "--data",
            path(&out.join("test.extxyz")),
            "--json",
            path(&json),
            "--relax",
            "--smallest",
            "2",
            "--random",
            "1",
            "--steps",
            "30",
        ]);
        let printed = String::from_utf8_lossy(&printed.stdout);
        assert!(printed.contains("reference: zero at equilibrium"), "{printed}");
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let structures = report["structures"].as_u64().unwrap();
        assert_eq!(report["force_structures"].as_u64(), Some(structures), "{report}");
        assert_eq!(report["force_zero_reference"].as_u64(), Some(structures), "{report}");
        assert!(report["force_mae"]["mean"].as_f64().unwrap() > 0.0, "{report}");
        assert_eq!(report["relax"]["molecules"].as_u64(), Some(3), "{report}");
        assert!(report["relax"]["delta_p"]["median"].is_f64(), "{report}");
        assert!(dir.path().join(format!("{name}_relax.svg")).exists());

        let printed = minima(&[
            "pairs",
            "--model",
            path(&model),
            "-i",
            path(&qm9_archive()),
            "--frame",
            "0",
        ]);
        let printed = String::from_utf8_lossy(&printed.stdout);
        assert!(printed.starts_with("CH4"), "{printed}");
        let summary = printed.lines().find(|l| l.starts_with("C-H single bonds (4)")).unwrap();
        let beta4: f64 = summary
            .split("mean β4 ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(beta4 > 0.0, "{summary}");
    }
}

#[test]
fn pairs_of_a_model_without_a_pair_head_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let stripped = dir.path().join("stripped");
    train("qm9-transformer-energy.toml", &stripped, &["model.priors=[]"]);
    let error = minima_error(&[
        "pairs",
        "--model",
        path(&stripped.join("best.safetensors")),
        "-i",
        path(&qm9_archive()),
    ]);
    assert!(error.contains("no pair head"), "{error}");
}
