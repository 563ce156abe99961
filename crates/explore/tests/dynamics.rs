//! Molecular dynamics with EMT copper: NVE conserves the total energy, both thermostats reach
//! and hold their temperature, the barostat finds EMT's equilibrium volume, and a killed run
//! (its last frame cut short) continues to what an uninterrupted run gives.

use minima_atoms::build::fcc_supercell;
use minima_atoms::{Atoms, Calculator};
use minima_explore::dynamics::{run, Barostat, DynamicsFiles, DynamicsOptions, LogRow, Thermostat};
use minima_label::Emt;

fn files(dir: &tempfile::TempDir, name: &str) -> DynamicsFiles {
    DynamicsFiles {
        trajectory: dir.path().join(format!("{name}.extxyz")),
        log: dir.path().join(format!("{name}.csv")),
    }
}

fn options(thermostat: Thermostat, steps: usize) -> DynamicsOptions {
    DynamicsOptions {
        timestep: 2.0,
        steps,
        temperature: 600.0,
        thermostat,
        barostat: None,
        seed: 7,
        every: 10,
    }
}

fn mean(rows: &[LogRow], f: impl Fn(&LogRow) -> f64) -> f64 {
    rows.iter().map(f).sum::<f64>() / rows.len() as f64
}

/// 1 ps of NVE at 2 fs from 600 K: the total energy stays within 1 meV/atom of its start,
/// while the kinetic energy swings by far more.
#[test]
fn nve_conserves_the_total_energy() {
    let dir = tempfile::tempdir().unwrap();
    let cu = fcc_supercell(29, 3.6, 2);
    let summary = run(
        &Emt::new(),
        &cu,
        &options(Thermostat::Nve, 500),
        &files(&dir, "nve"),
        |_| {},
    )
    .unwrap();
    let rows = &summary.log;
    assert_eq!(rows.len(), 51);
    assert!((rows[0].temperature - 600.0).abs() < 1e-6, "{}", rows[0].temperature);
    let e0 = rows[0].total();
    let drift = rows.iter().map(|r| (r.total() - e0).abs()).fold(0.0, f64::max) / cu.len() as f64;
    let swing =
        rows.iter().map(|r| r.kinetic).fold(0.0, f64::max) - rows.iter().map(|r| r.kinetic).fold(f64::MAX, f64::min);
    assert!(drift < 1e-3, "total energy drifts by {drift} eV/atom");
    assert!(
        swing / cu.len() as f64 > 0.01,
        "the kinetic energy hardly moves: {swing} eV"
    );
    assert_eq!(summary.figures.len(), 4, "{:?}", summary.figures);
}

/// Started cold (momenta zero, atoms slightly off their sites), Langevin and Bussi both heat
/// 32 Cu atoms to 600 K and hold it: the mean over the second half within 8 % (the
/// fluctuation of T for 93 degrees of freedom is about 15 % per sample).
#[test]
fn thermostats_reach_and_hold_their_temperature() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let mut cold = fcc_supercell(29, 3.6, 2);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let rattled = cold
        .positions()
        .iter()
        .map(|r| r.map(|x| x + rng.random_range(-0.05..0.05)))
        .collect();
    cold.set_positions(rattled).unwrap();
    cold.set_array("momenta", 3, minima_atoms::ArrayData::Float(vec![0.0; 3 * cold.len()]))
        .unwrap();
    for (name, thermostat) in [
        ("langevin", Thermostat::Langevin { friction: 0.02 }),
        ("bussi", Thermostat::Bussi { time: 50.0 }),
    ] {
        let summary = run(
            &Emt::new(),
            &cold,
            &options(thermostat, 2000),
            &files(&dir, name),
            |_| {},
        )
        .unwrap();
        let rows = &summary.log;
        assert!(rows[0].temperature < 1.0, "{name}: starts cold");
        let held = mean(&rows[rows.len() / 2..], |r| r.temperature);
        assert!((held - 600.0).abs() < 48.0, "{name}: holds {held} K, not 600 K");
    }
}

/// Isotropic cell rescaling at 0 GPa from a crystal compressed by 3 %: the volume grows to
/// EMT's equilibrium at 300 K: 1.8 % above its 0 K volume (the zero-pressure lattice constant,
/// found here by bisection), where ASE's own EMT and Langevin give a mean pressure of
/// 0.06 GPa (measured in ASE 3.28, 108 atoms, 3 ps); the mean pressure over the second half
/// is near 0.
#[test]
fn the_barostat_finds_the_equilibrium_volume() {
    let emt = Emt::new();
    let pressure_at = |a: f64| {
        let cu = fcc_supercell(29, a, 1);
        let s = emt.calculate(&cu).unwrap().stress.unwrap();
        -(s[0] + s[1] + s[2]) / 3.0
    };
    // Bisect the zero of the pressure.
    let (mut low, mut high) = (3.4, 3.8);
    for _ in 0..50 {
        let mid = 0.5 * (low + high);
        if pressure_at(mid) > 0.0 {
            low = mid
        } else {
            high = mid
        }
    }
    let equilibrium = (0.5 * (low + high)).powi(3) * 27.0;
    let dir = tempfile::tempdir().unwrap();
    let start = fcc_supercell(29, 0.5 * (low + high) * 0.97, 3);
    let mut options = options(Thermostat::Bussi { time: 50.0 }, 3000);
    options.temperature = 300.0;
    options.barostat = Some(Barostat {
        pressure: 0.0,
        time: 500.0,
        compressibility: 0.01,
    });
    let summary = run(&emt, &start, &options, &files(&dir, "npt"), |_| {}).unwrap();
    let rows = &summary.log;
    assert!(
        rows[0].pressure.unwrap() > 5.0,
        "the start is compressed: {:?}",
        rows[0].pressure
    );
    let later = &rows[rows.len() / 2..];
    let volume = mean(later, |r| r.volume.unwrap());
    let ratio = volume / equilibrium;
    assert!(
        (1.012..1.025).contains(&ratio),
        "volume {volume} Å³ vs EMT's 0 K equilibrium {equilibrium} Å³"
    );
    let pressure = mean(later, |r| r.pressure.unwrap());
    assert!(pressure.abs() < 0.3, "mean pressure {pressure} GPa");
}

fn last_positions(atoms: &Atoms) -> Vec<f64> {
    atoms.positions().iter().flatten().copied().collect()
}

/// A run stopped at step 60 whose trajectory then lost half its last frame continues (from
/// step 50) to step 100 with the log it would have had, and ends where an uninterrupted run
/// ends (to the digits the trajectory keeps).
#[test]
fn a_killed_run_continues_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let start = fcc_supercell(29, 3.6, 2);
    let langevin = Thermostat::Langevin { friction: 0.02 };
    let whole = run(
        &Emt::new(),
        &start,
        &options(langevin, 100),
        &files(&dir, "whole"),
        |_| {},
    )
    .unwrap();
    let parts = files(&dir, "parts");
    run(&Emt::new(), &start, &options(langevin, 60), &parts, |_| {}).unwrap();
    let text = std::fs::read_to_string(&parts.trajectory).unwrap();
    std::fs::write(&parts.trajectory, &text[..text.len() - 500]).unwrap();
    let resumed = run(&Emt::new(), &start, &options(langevin, 100), &parts, |_| {}).unwrap();
    assert!(resumed.dropped_partial_frame);
    assert_eq!(resumed.resumed_from, 50);
    let steps: Vec<usize> = resumed.log.iter().map(|r| r.step).collect();
    assert_eq!(steps, (0..=100).step_by(10).collect::<Vec<_>>());
    let frames = minima_io::extxyz::read_all(&parts.trajectory).unwrap();
    assert_eq!(frames.len(), 11);
    for (a, b) in last_positions(&whole.last).iter().zip(last_positions(&resumed.last)) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    let other_seed = DynamicsOptions {
        seed: 8,
        ..options(langevin, 120)
    };
    let refused = run(&Emt::new(), &start, &other_seed, &parts, |_| {})
        .unwrap_err()
        .to_string();
    assert!(refused.contains("seed"), "{refused}");
}

/// Settings that cannot run are refused with a reason before any step, and nothing is written.
#[test]
fn impossible_settings_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cu = fcc_supercell(29, 3.6, 1);
    let molecule = Atoms::new(vec![29, 29], vec![[0.0; 3], [2.5, 0.0, 0.0]]).unwrap();
    let barostat = Some(Barostat {
        pressure: 0.0,
        time: 500.0,
        compressibility: 0.01,
    });
    let cases: Vec<(Atoms, DynamicsOptions, &str)> = vec![
        (
            cu.clone(),
            DynamicsOptions {
                timestep: -1.0,
                ..options(Thermostat::Nve, 10)
            },
            "timestep",
        ),
        (
            cu.clone(),
            DynamicsOptions {
                every: 0,
                ..options(Thermostat::Nve, 10)
            },
            "every 0",
        ),
        (
            cu.clone(),
            options(Thermostat::Langevin { friction: f64::NAN }, 10),
            "friction",
        ),
        (
            cu.clone(),
            DynamicsOptions {
                barostat,
                ..options(Thermostat::Nve, 10)
            },
            "needs a thermostat",
        ),
        (
            molecule,
            DynamicsOptions {
                barostat,
                ..options(Thermostat::Bussi { time: 50.0 }, 10)
            },
            "periodic along all three",
        ),
    ];
    for (k, (start, options, expected)) in cases.into_iter().enumerate() {
        let files = files(&dir, &format!("bad{k}"));
        let error = run(&Emt::new(), &start, &options, &files, |_| {})
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{error}");
        assert!(!files.trajectory.exists(), "{error}: nothing written");
    }
}
