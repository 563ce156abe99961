//! A molecule too large for an all-pairs model in one piece: under the default budget it runs
//! in edge chunks; under a small one (`MINIMA_MEMORY_GB`, set by this file's only test, so no
//! other test shares the setting) it is refused before anything is allocated, naming the
//! frame, the estimate and what lowers it, for evaluation, batches and the calculator.

use minima_atoms::Atoms;
use minima_data::{GraphSpec, Sample};
use minima_model::{ModelConfig, Potential};
use tch::Device;

fn assert_mentions(text: &str, words: &[&str]) {
    for word in words {
        assert!(text.contains(word), "{word:?} missing from: {text}");
    }
}

/// A cubic grid of `n` H and C atoms 2.2 Å apart (too far apart for bonds).
fn big_molecule(n: usize) -> Atoms {
    let side = (n as f64).cbrt().ceil() as usize;
    let positions: Vec<[f64; 3]> = (0..n)
        .map(|i| {
            [
                (i % side) as f64 * 2.2,
                (i / side % side) as f64 * 2.2,
                (i / side / side) as f64 * 2.2,
            ]
        })
        .collect();
    let numbers = (0..n).map(|i| if i % 3 == 0 { 6 } else { 1 }).collect();
    let mut atoms = Atoms::new(numbers, positions).unwrap();
    atoms.set_energy(-1.0);
    atoms
}

#[test]
fn an_all_pairs_model_runs_a_2000_atom_molecule_in_chunks_and_refuses_it_past_the_budget() {
    let config = ModelConfig {
        elements: vec![1, 6],
        ..ModelConfig::default()
    };
    assert!(config.cutoff.is_none());
    let refs = minima_data::AtomRefs {
        elements: vec![1, 6],
        energies: vec![-13.6, -1000.0],
        scale: 1.0,
    };
    let potential = Potential::new(config, refs, Device::Cpu, 0).unwrap();
    let atoms = big_molecule(2000);
    let sample = Sample::from_atoms(&atoms, 0, "big", &GraphSpec { cutoff: None }).unwrap();
    assert_eq!(sample.graph.center.len(), 2000 * 1999);
    let report = minima_train::evaluate(&potential, std::slice::from_ref(&sample), 64, &Default::default()).unwrap();
    assert_eq!(report.structures, 1);
    assert!(report.force_mae.is_some());
    std::env::set_var(minima_model::device::MEMORY_BUDGET_VARIABLE, "0.25");
    let error = format!(
        "{:#}",
        minima_train::evaluate(&potential, std::slice::from_ref(&sample), 64, &Default::default()).unwrap_err()
    );
    assert_mentions(&error, &["frame 0", "GiB", "memory budget", "model.cutoff"]);
    // In a batch with other structures, smaller batches are the first remedy.
    let pair = [sample.clone(), sample.clone()];
    let error = format!(
        "{:#}",
        minima_train::evaluate(&potential, &pair, 64, &Default::default()).unwrap_err()
    );
    assert!(error.contains("frames 0–0") && error.contains("--batch"), "{error}");
    let calculator = minima_model::ModelCalculator::new(potential, "all-pairs");
    let error = minima_atoms::Calculator::calculate(&calculator, &atoms)
        .unwrap_err()
        .to_string();
    assert!(error.contains("model.cutoff"), "{error}");
}
