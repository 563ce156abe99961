//! Spatial domains give what the whole structure gives: energy, per-atom energies, forces and
//! stress of a rattled periodic crystal, of a slab (periodic along two axes) and of an open
//! cluster, for every architecture that can be split (the transformer without its [CLS]
//! token, with its pair head), with and without the ZBL prior; a model whose energy reaches
//! every atom is refused with the reason.

use minima_atoms::build::fcc_block;
use minima_atoms::{Atoms, Cell};
use minima_data::{AtomRefs, Graph};
use minima_model::config::{Dtype, ModelConfig, ModelKind};
use minima_model::painn::PainnConfig;
use minima_model::{predict_graphs, Potential, Predicted};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Device;

fn models() -> Vec<ModelConfig> {
    let base = ModelConfig {
        hidden: 10,
        edge_hidden: 12,
        edge_rank: 10,
        readout_hidden: 10,
        radial_basis: 6,
        iterations: 2,
        cutoff: Some(3.2),
        dtype: Dtype::F64,
        elements: vec![29],
        ..ModelConfig::default()
    };
    let painn = ModelConfig {
        kind: ModelKind::Painn,
        painn: PainnConfig {
            features: 8,
            layers: 2,
            radial_basis: 6,
        },
        ..base.clone()
    };
    let mut zbl = painn.clone();
    zbl.priors = vec![minima_model::priors::PriorConfig::Zbl(Default::default())];
    let mpnn = ModelConfig {
        kind: ModelKind::Mpnn,
        ..base.clone()
    };
    let mut transformer = ModelConfig {
        kind: ModelKind::Transformer,
        ..base.clone()
    };
    let t = &mut transformer.transformer;
    (t.layers, t.heads, t.attention, t.cls) = (2, 2, 8, false);
    transformer.priors = vec![minima_model::priors::PriorConfig::CoulombLj(Default::default())];
    vec![base, mpnn, painn, zbl, transformer]
}

fn potential(config: &ModelConfig) -> Potential {
    let refs = AtomRefs {
        elements: vec![29],
        energies: vec![-3.5],
        scale: 0.7,
    };
    Potential::new(config.clone(), refs, Device::Cpu, 7).unwrap()
}

fn rattled(mut atoms: Atoms, seed: u64) -> Atoms {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let moved = atoms
        .positions()
        .iter()
        .map(|r| r.map(|x| x + rng.random_range(-0.15..0.15)))
        .collect();
    atoms.set_positions(moved).unwrap();
    atoms
}

/// A 6×6×5 crystal, the same as a slab open along z, and as an open cluster.
fn structures() -> Vec<(&'static str, Atoms)> {
    let crystal = rattled(fcc_block(29, 3.6, [6, 6, 5]), 1);
    let cell = *crystal.cell().unwrap();
    let slab = Atoms::new(crystal.numbers().to_vec(), crystal.positions().to_vec())
        .unwrap()
        .with_cell(cell, [true, true, false]);
    let cluster = Atoms::new(crystal.numbers().to_vec(), crystal.positions().to_vec()).unwrap();
    let skewed = {
        let v = cell.vectors();
        let sheared = Cell::new([v[0], [v[1][0] + 2.0, v[1][1], v[1][2]], v[2]]).unwrap();
        Atoms::new(crystal.numbers().to_vec(), crystal.positions().to_vec())
            .unwrap()
            .with_cell(sheared, [true; 3])
    };
    vec![
        ("crystal", crystal),
        ("slab", slab),
        ("cluster", cluster),
        ("sheared crystal", skewed),
    ]
}

fn whole(potential: &Potential, atoms: &Atoms) -> Predicted {
    let graph = Graph::build(atoms, &potential.config.graph_spec()).unwrap();
    predict_graphs(potential, &[&graph], true).unwrap().remove(0)
}

#[test]
fn domains_predict_what_the_whole_structure_does() {
    for config in models() {
        let potential = potential(&config);
        for (name, atoms) in structures() {
            let want = whole(&potential, &atoms);
            // About a third of the atoms per domain: several domains along x and y.
            let got = minima_model::inference::predict_in_domains(&potential, &atoms, atoms.len() / 3).unwrap();
            let what = format!("{:?} zbl={} {name}", config.kind, !config.priors.is_empty());
            assert!(
                (got.energy - want.energy).abs() < 1e-8,
                "{what}: energy {} vs {}",
                got.energy,
                want.energy
            );
            for (g, w) in got.atom_energies.iter().zip(&want.atom_energies) {
                assert!((g - w).abs() < 1e-9, "{what}: per-atom energy {g} vs {w}");
            }
            for (g, w) in got.forces.unwrap().iter().zip(want.forces.as_ref().unwrap()) {
                for k in 0..3 {
                    assert!((g[k] - w[k]).abs() < 1e-9, "{what}: force {g:?} vs {w:?}");
                }
            }
            assert_eq!(got.stress.is_some(), want.stress.is_some(), "{what}");
            if let (Some(g), Some(w)) = (got.stress, want.stress) {
                for k in 0..6 {
                    assert!((g[k] - w[k]).abs() < 1e-10, "{what}: stress {g:?} vs {w:?}");
                }
            }
        }
    }
}

#[test]
fn the_decomposition_cuts_into_several_domains_and_covers_every_atom_once() {
    let (_, atoms) = structures().remove(0);
    let potential = potential(&models()[0]);
    let halo = potential.receptive_field().unwrap();
    let decomposition = minima_data::domains::Decomposition::new(&atoms, halo, atoms.len() / 3).unwrap();
    assert!(decomposition.len() >= 4, "{:?}", decomposition.boxes);
    let mut owners = vec![0; atoms.len()];
    for index in 0..decomposition.len() {
        let domain = decomposition
            .domain(
                &atoms,
                &minima_bonds::bonds_of(&atoms).unwrap(),
                &potential.config.graph_spec(),
                index,
            )
            .unwrap();
        for &a in &domain.atom[..domain.interior] {
            owners[a as usize] += 1;
        }
    }
    assert!(owners.iter().all(|&n| n == 1), "{owners:?}");
}

#[test]
fn a_model_that_reaches_every_atom_is_not_split() {
    let mut config = models()[0].clone();
    config.kind = ModelKind::Transformer;
    config.transformer.cls = true;
    let potential = potential(&config);
    let (_, atoms) = structures().remove(0);
    let error = minima_model::inference::predict_in_domains(&potential, &atoms, 100).unwrap_err();
    assert!(error.to_string().contains("cannot be split into domains"), "{error}");
}
