//! The generators of data that covers what a relaxation visits: the equilibrium flag, rattled
//! structures and normal-mode samples.

use minima_atoms::{Atoms, Cell, Value};
use minima_data::sampling::{
    compliance_modes, min_distance, normal_mode_displacement, normal_mode_sample, normal_modes, rattle, too_close,
    BOLTZMANN_EV, EQUILIBRIUM,
};
use minima_data::{group_key, GraphSpec, Sample};
use rand::SeedableRng;

fn water() -> Atoms {
    let mut atoms = Atoms::new(
        vec![8, 1, 1],
        vec![[0.0, 0.0, 0.119], [0.0, 0.763, -0.477], [0.0, -0.763, -0.477]],
    )
    .unwrap();
    atoms.info.insert("qm9_index".into(), Value::Int(3));
    atoms
}

fn sample(atoms: &Atoms) -> Sample {
    Sample::from_atoms(atoms, 0, "test", &GraphSpec { cutoff: None }).unwrap()
}

#[test]
fn the_flag_decides_and_frames_without_it_keep_the_scale_rule() {
    let mut atoms = water();
    atoms.info.insert("scale".into(), Value::Float(1.0));
    assert!(sample(&atoms).is_equilibrium());
    atoms.info.insert(EQUILIBRIUM.into(), Value::Bool(false));
    assert!(!sample(&atoms).is_equilibrium());
    atoms.info.insert("scale".into(), Value::Float(1.2));
    atoms.info.insert(EQUILIBRIUM.into(), Value::Bool(true));
    assert!(sample(&atoms).is_equilibrium());
    atoms.info.shift_remove(EQUILIBRIUM);
    assert!(!sample(&atoms).is_equilibrium());
    atoms.info.insert(EQUILIBRIUM.into(), Value::Str("yes".into()));
    let err = Sample::from_atoms(&atoms, 4, "w.extxyz", &GraphSpec { cutoff: None }).unwrap_err();
    assert_eq!(
        err.to_string(),
        "w.extxyz: frame 4: equilibrium=yes is not a boolean (T or F)"
    );
}

#[test]
fn rattling_moves_every_coordinate_by_the_amplitude_reproducibly() {
    // A large open fcc cluster: many coordinates for the statistics, no pair near the limit.
    let base = minima_atoms::build::fcc_supercell(29, 3.615, 3);
    let base = Atoms::new(base.numbers().to_vec(), base.positions().to_vec()).unwrap();
    let out = rattle(&base, 0.05, 7, "in.extxyz", 2, 0).unwrap();
    let deltas: Vec<f64> = out
        .positions()
        .iter()
        .zip(base.positions())
        .flat_map(|(a, b)| (0..3).map(move |k| a[k] - b[k]))
        .collect();
    let n = deltas.len() as f64;
    let mean = deltas.iter().sum::<f64>() / n;
    let std = (deltas.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(mean.abs() < 0.01 && (std - 0.05).abs() < 0.006, "{mean} {std}");
    assert_eq!(out, rattle(&base, 0.05, 7, "in.extxyz", 2, 0).unwrap());
    assert_ne!(out, rattle(&base, 0.05, 7, "in.extxyz", 2, 1).unwrap());
    assert_eq!(out.info[EQUILIBRIUM], Value::Bool(false));
    assert_eq!(out.info["rattle_amplitude"], Value::Float(0.05));
    assert_eq!(out.info["base_frame"], Value::Int(2));
    // No provenance of its own: the copy names its base structure.
    assert_eq!(group_key(&out, 9), "base:in.extxyz#2");
}

#[test]
fn rattled_copies_keep_their_base_structure_and_lose_the_old_labels_and_modes() {
    let mut base = water();
    base.set_energy(-5.0);
    base.set_forces(vec![0.1; 9]).unwrap();
    base.info.insert("scale".into(), Value::Float(1.2));
    base.info.insert(EQUILIBRIUM.into(), Value::Bool(true));
    // One compliance mode of the minimum: a copy off it has none.
    base.set_array("compliance", 3, minima_atoms::ArrayData::Float(vec![0.1; 9]))
        .unwrap();
    let out = rattle(&base, 0.02, 1, "in", 0, 0).unwrap();
    assert_eq!(group_key(&out, 5), group_key(&base, 0));
    assert!(out.energy().is_none() && out.forces().is_none() && out.scale().is_none());
    assert!(out.array("compliance").is_none());
    assert_eq!(out.info["base_scale"], Value::Float(1.2));
    assert!(!sample(&out).is_equilibrium());
    // The recorded seed reproduces the displacement.
    let seed = out.info["rattle_seed"].as_i64().unwrap() as u64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let expected = base.positions()[0][0] + 0.02 * minima_data::gaussian(&mut rng);
    assert_eq!(out.positions()[0][0], expected);
}

#[test]
fn amplitudes_that_collapse_atoms_are_redrawn_then_refused() {
    let h2 = Atoms::new(vec![1, 1], vec![[0.0; 3], [0.0, 0.0, 0.74]]).unwrap();
    assert!((min_distance(1, 1) - 0.6 * 0.62).abs() < 0.05);
    assert!(too_close(&h2).is_none());
    // At 2 Å per coordinate some draws come close, most do not: every accepted one is apart.
    for k in 0..20 {
        if let Some(out) = rattle(&h2, 2.0, 3, "in", 0, k) {
            assert!(out.distance(0, 1) >= min_distance(1, 1));
        }
    }
    // Atoms already on top of each other stay so at a tiny amplitude: refused.
    let twins = Atoms::new(vec![6, 6], vec![[0.0; 3], [0.0, 0.0, 0.1]]).unwrap();
    assert!(too_close(&twins).is_some());
    assert!(rattle(&twins, 1e-3, 0, "in", 0, 0).is_none());
}

#[test]
fn a_crystal_rattles_in_its_fixed_cell() {
    let a = 3.615;
    let cell = Cell::new([[a, 0.0, 0.0], [0.0, a, 0.0], [0.0, 0.0, a]]).unwrap();
    let crystal = minima_atoms::build::fcc_supercell(29, a, 1).with_cell(cell, [true; 3]);
    let out = rattle(&crystal, 0.1, 0, "in", 0, 0).unwrap();
    assert_eq!(out.cell(), crystal.cell());
    assert_ne!(out.positions(), crystal.positions());
}

/// The Hessian (eV/Å²) of springs of constant `k` along the given pairs at the geometry.
fn spring_hessian(atoms: &Atoms, pairs: &[(usize, usize)], k: f64) -> Vec<f64> {
    let n = 3 * atoms.len();
    let mut h = vec![0.0; n * n];
    for &(i, j) in pairs {
        let (ri, rj) = (atoms.positions()[i], atoms.positions()[j]);
        let d = atoms.distance(i, j);
        let u: Vec<f64> = (0..3).map(|c| (rj[c] - ri[c]) / d).collect();
        for a in 0..3 {
            for b in 0..3 {
                let block = k * u[a] * u[b];
                h[(3 * i + a) * n + 3 * i + b] += block;
                h[(3 * j + a) * n + 3 * j + b] += block;
                h[(3 * i + a) * n + 3 * j + b] -= block;
                h[(3 * j + a) * n + 3 * i + b] -= block;
            }
        }
    }
    h
}

#[test]
fn normal_modes_exclude_rigid_motions_and_samples_hold_the_stated_energy() {
    let atoms = water();
    let hessian = spring_hessian(&atoms, &[(0, 1), (0, 2), (1, 2)], 30.0);
    let modes = normal_modes(&atoms, &hessian).unwrap();
    assert_eq!(modes.vectors.len(), 3);
    let n = 9;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    for _ in 0..20 {
        let d = normal_mode_displacement(&modes, 3, 300.0, &mut rng);
        // No net translation (mass-weighted) and a harmonic energy within equipartition.
        let masses = [15.999, 1.008, 1.008];
        for axis in 0..3 {
            let momentum: f64 = (0..3).map(|a| masses[a] * d[3 * a + axis]).sum();
            assert!(momentum.abs() < 1e-9, "{momentum}");
        }
        let energy: f64 = 0.5
            * (0..n)
                .flat_map(|i| (0..n).map(move |j| (i, j)))
                .map(|(i, j)| d[i] * hessian[i * n + j] * d[j])
                .sum::<f64>();
        assert!(
            energy > 0.0 && energy <= 1.5 * 3.0 * BOLTZMANN_EV * 300.0 + 1e-12,
            "{energy}"
        );
    }
    let out = normal_mode_sample(&atoms, &modes, 300.0, 5, "relaxed", 0, 0).unwrap();
    assert_eq!(out.info["normal_mode_temperature"], Value::Float(300.0));
    assert_eq!(
        out,
        normal_mode_sample(&atoms, &modes, 300.0, 5, "relaxed", 0, 0).unwrap()
    );
    assert_eq!(out.info[EQUILIBRIUM], Value::Bool(false));
}

#[test]
fn linear_molecules_have_3n_minus_5_modes_crystals_3n_minus_3_and_saddles_are_refused() {
    let co2 = Atoms::new(vec![8, 6, 8], vec![[-1.16, 0.0, 0.0], [0.0; 3], [1.16, 0.0, 0.0]]).unwrap();
    // Stretches and a bend spring (O–O) are not enough for the bends of a straight line: those
    // are flat, so the structure is not shown to be a minimum.
    let stretches = spring_hessian(&co2, &[(0, 1), (1, 2)], 50.0);
    let err = normal_modes(&co2, &stretches).unwrap_err();
    assert!(err.starts_with("not a minimum"), "{err}");
    let mut bent = stretches.clone();
    // Bends: a stiffness against moving the centre atom off the axis, relative to the ends.
    for axis in [1, 2] {
        for (a, b, w) in [
            (0, 0, 1.0),
            (1, 1, 4.0),
            (2, 2, 1.0),
            (0, 1, -2.0),
            (1, 0, -2.0),
            (1, 2, -2.0),
            (2, 1, -2.0),
            (0, 2, 1.0),
            (2, 0, 1.0),
        ] {
            bent[(3 * a + axis) * 9 + 3 * b + axis] += 5.0 * w;
        }
    }
    assert_eq!(normal_modes(&co2, &bent).unwrap().vectors.len(), 4);

    let a = 3.615;
    let cell = Cell::new([[a, 0.0, 0.0], [0.0, a, 0.0], [0.0, 0.0, a]]).unwrap();
    let crystal = minima_atoms::build::fcc_supercell(29, a, 1).with_cell(cell, [true; 3]);
    let all_pairs: Vec<(usize, usize)> = (0..4).flat_map(|i| (i + 1..4).map(move |j| (i, j))).collect();
    let modes = normal_modes(&crystal, &spring_hessian(&crystal, &all_pairs, 10.0));
    // Six springs on four atoms leave the rotations flat, which a crystal does not exclude.
    assert!(modes.unwrap_err().starts_with("not a minimum"));
    let mut stiff = spring_hessian(&crystal, &all_pairs, 10.0);
    for i in 0..12 {
        for j in 0..12 {
            let same_axis = i % 3 == j % 3;
            stiff[i * 12 + j] += if !same_axis {
                0.0
            } else if i == j {
                6.0
            } else if i / 3 != j / 3 {
                -2.0
            } else {
                0.0
            };
        }
    }
    assert_eq!(normal_modes(&crystal, &stiff).unwrap().vectors.len(), 9);
}

/// The compliance modes give the first-order shift of a minimum under a force error: for a
/// vibrational displacement x and ΔF = H x, Σ ((v/k)·ΔF)² = |x|² when every mode is kept;
/// a cap on the force constant keeps the soft bend alone; a flat mode is left out.
#[test]
fn compliance_modes_give_the_shift_a_force_error_moves_the_minimum_by() {
    let atoms = water();
    let n = 9;
    let mut hessian = spring_hessian(&atoms, &[(0, 1), (0, 2)], 30.0);
    let bend = spring_hessian(&atoms, &[(1, 2)], 0.5);
    hessian.iter_mut().zip(&bend).for_each(|(h, b)| *h += b);
    let times =
        |m: &[f64], x: &[f64]| -> Vec<f64> { (0..n).map(|i| (0..n).map(|j| m[i * n + j] * x[j]).sum()).collect() };
    // H y lies in H's range: no rigid motion in it.
    let x = times(&hessian, &[0.3, -0.2, 0.5, 0.1, 0.7, -0.4, -0.6, 0.2, 0.3]);
    let force_error = times(&hessian, &x);
    let shift = |column: &[f64], modes: usize| -> f64 {
        (0..modes)
            .map(|m| {
                let along: f64 = (0..3)
                    .flat_map(|atom| (0..3).map(move |c| (atom, c)))
                    .map(|(atom, c)| column[atom * 3 * modes + 3 * m + c] * force_error[3 * atom + c])
                    .sum();
                along * along
            })
            .sum()
    };
    let (modes, column) = compliance_modes(&atoms, &hessian, f64::INFINITY).unwrap();
    assert_eq!((modes, column.len()), (3, 27));
    let squared: f64 = x.iter().map(|v| v * v).sum();
    assert!(
        (shift(&column, modes) - squared).abs() < 1e-9 * squared,
        "{} vs {squared}",
        shift(&column, modes)
    );

    let (soft, column) = compliance_modes(&atoms, &hessian, 5.0).unwrap();
    assert_eq!(soft, 1);
    let soft_shift = shift(&column, soft);
    assert!(soft_shift > 0.0 && soft_shift < squared, "{soft_shift} of {squared}");

    let flat = spring_hessian(&atoms, &[(0, 1), (0, 2)], 30.0);
    let (modes, column) = compliance_modes(&atoms, &flat, 5.0).unwrap();
    assert_eq!((modes, column.len()), (0, 0));
    assert!(compliance_modes(&atoms, &flat[..80], 5.0).is_err());
}
