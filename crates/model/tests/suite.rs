//! The model suite every architecture passes (in f64): invariance of the energy under
//! rotation, translation and permutation, equivariance of the forces, forces equal to central
//! finite differences of the energy, a batch equal to its structures alone, locality (far-apart
//! molecules add up), inference in edge chunks equal to the whole batch, smoothness where an
//! atom crosses the cutoff, and checkpoints that reload to identical predictions; for models
//! with a physics head, pair terms that add up to the energy with physical β's, and for models
//! with a masked-atom head, predictions that cannot see the masked element; and the ZBL prior:
//! the full formula at short range, exactly zero beyond its outer radius, continuous at both
//! switch radii (every suite test also runs models with it, on a squeezed molecule inside it).
//! Learning (overfitting a tiny dataset) is tested with the trainer, in minima-train.

use minima_atoms::{Atoms, Cell, Vec3};
use minima_data::{AtomRefs, BondClass, Graph};
use minima_model::config::{Dtype, ModelConfig, ModelKind};
use minima_model::painn::PainnConfig;
use minima_model::priors::coulomb_lj::{pair_energy, CoulombLjConfig, PairSet};
use minima_model::priors::zbl::{unswitched_pair_energy, ZblConfig};
use minima_model::priors::PriorConfig;
use minima_model::{Field, Mode, Potential};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Device;

/// Every architecture in every variant its file registers (`ModelKind::variants`), alone and
/// with each registered prior, small enough to be quick.
fn models() -> Vec<(String, ModelConfig)> {
    let mut base = ModelConfig {
        hidden: 12,
        edge_hidden: 16,
        edge_rank: 12,
        readout_hidden: 12,
        radial_basis: 8,
        cutoff: Some(4.0),
        dtype: Dtype::F64,
        elements: vec![1, 6, 7, 8, 29],
        painn: PainnConfig {
            features: 8,
            layers: 2,
            radial_basis: 6,
        },
        ..ModelConfig::default()
    };
    let t = &mut base.transformer;
    (t.layers, t.heads, t.attention) = (2, 2, 8);
    let plain: Vec<(String, ModelConfig)> = ModelKind::ALL.iter().flat_map(|k| k.variants(&base)).collect();
    let mut list = plain.clone();
    for prior in PriorConfig::variants() {
        // A variant with an entry of this kind already has it.
        for (name, config) in plain
            .iter()
            .filter(|(_, c)| c.priors.iter().all(|p| p.name() != prior.name()))
        {
            let mut config = config.clone();
            config.priors.push(prior.clone());
            list.push((format!("{name} + {}", prior.name()), config));
        }
    }
    list
}

/// The suite's model called `name`.
fn model(name: &str) -> ModelConfig {
    let found = models().into_iter().find(|(n, _)| n == name);
    found.unwrap_or_else(|| panic!("no model {name} in the suite")).1
}

fn refs() -> AtomRefs {
    AtomRefs {
        elements: vec![1, 6, 7, 8, 29],
        energies: vec![-13.6, -1029.0, -1485.0, -2042.0, -45000.0],
        scale: 0.7,
    }
}

fn potential(config: &ModelConfig) -> Potential {
    Potential::new(config.clone(), refs(), Device::Cpu, 11).unwrap()
}

fn molecule(numbers: &[u8], positions: &[Vec3]) -> Atoms {
    Atoms::new(numbers.to_vec(), positions.to_vec()).unwrap()
}

fn ethanol() -> Atoms {
    molecule(
        &[6, 6, 8, 1, 1, 1, 1, 1, 1],
        &[
            [0.0, 0.0, 0.0],
            [1.52, 0.0, 0.0],
            [2.0, 1.35, 0.0],
            [-0.39, 1.02, 0.0],
            [-0.39, -0.51, 0.89],
            [-0.39, -0.51, -0.89],
            [1.89, -0.51, 0.89],
            [1.89, -0.51, -0.89],
            [2.96, 1.33, 0.0],
        ],
    )
}

/// C, O and H far closer than any bond: C–H inside the ZBL prior's full range, C–O in its
/// switch (0.35–0.6 of the covalent sum), O–H beyond it.
fn squeezed() -> Atoms {
    molecule(&[6, 8, 1], &[[0.0, 0.0, 0.0], [0.5, 0.5, 0.1], [-0.3, 0.05, 0.0]])
}

fn structures(periodic: bool) -> Vec<Atoms> {
    let mut list = vec![
        ethanol(),
        molecule(&[1, 6, 7], &[[0.0, 0.0, -1.064], [0.0, 0.0, 0.0], [0.0, 0.0, 1.156]]),
        molecule(
            &[6, 8, 1, 1],
            &[
                [0.0, 0.0, 0.0],
                [0.0, 0.0, 1.205],
                [0.0, 0.94, -0.587],
                [0.0, -0.94, -0.587],
            ],
        ),
        squeezed(),
    ];
    if periodic {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut cu = minima_atoms::build::fcc_supercell(29, 3.6, 1);
        let rattled = cu
            .positions()
            .iter()
            .map(|r| r.map(|x| x + rng.random_range(-0.1..0.1)))
            .collect();
        cu.set_positions(rattled).unwrap();
        list.push(cu);
    }
    list
}

fn graph(atoms: &Atoms, config: &ModelConfig) -> Graph {
    Graph::build(atoms, &config.graph_spec()).unwrap()
}

/// The graphs of the suite's structures (the crystal too for models with a cutoff).
fn graphs_of(config: &ModelConfig) -> Vec<Graph> {
    structures(config.cutoff.is_some())
        .iter()
        .map(|a| graph(a, config))
        .collect()
}

/// Energy (eV) and forces of one structure.
fn evaluate(potential: &Potential, graph: &Graph) -> (f64, Vec<Vec3>) {
    let batch = potential.batch(&[graph], true);
    let prediction = potential.predict(&batch, Mode::Forces);
    let energy = prediction.energy.double_value(&[0]);
    let forces: Vec<f64> = Vec::try_from(prediction.forces.unwrap().flatten(0, 1)).unwrap();
    (energy, forces.chunks(3).map(|f| [f[0], f[1], f[2]]).collect())
}

fn rotation(rng: &mut ChaCha8Rng) -> [[f64; 3]; 3] {
    // Rodrigues' formula for a random axis and angle.
    let axis: Vec3 = std::array::from_fn(|_| rng.random_range(-1.0..1.0));
    let n = minima_atoms::cell::norm(axis);
    let [x, y, z] = axis.map(|a| a / n);
    let t: f64 = rng.random_range(0.3..3.0);
    let (s, c) = t.sin_cos();
    let k = 1.0 - c;
    [
        [c + x * x * k, x * y * k - z * s, x * z * k + y * s],
        [y * x * k + z * s, c + y * y * k, y * z * k - x * s],
        [z * x * k - y * s, z * y * k + x * s, c + z * z * k],
    ]
}

fn apply(m: &[[f64; 3]; 3], v: Vec3) -> Vec3 {
    std::array::from_fn(|i| (0..3).map(|j| m[i][j] * v[j]).sum())
}

fn close(a: f64, b: f64, relative: f64) -> bool {
    (a - b).abs() <= relative * a.abs().max(b.abs()).max(1e-3)
}

fn assert_forces_close(got: &[Vec3], want: &[Vec3], tolerance: f64, what: &str) {
    let scale = want.iter().flatten().fold(0.0f64, |m, x| m.max(x.abs())).max(0.1);
    for (a, (g, w)) in got.iter().zip(want).enumerate() {
        for k in 0..3 {
            assert!(
                (g[k] - w[k]).abs() <= tolerance * scale,
                "{what}: atom {a} component {k}: {} vs {} (largest force {scale})",
                g[k],
                w[k]
            );
        }
    }
}

#[test]
fn energy_is_invariant_and_forces_are_equivariant() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (name, config) in models() {
        let potential = potential(&config);
        for atoms in structures(config.cutoff.is_some()) {
            let (energy, forces) = evaluate(&potential, &graph(&atoms, &config));
            let largest = forces.iter().flatten().fold(0.0f64, |m, f| m.max(f.abs()));
            assert!(largest > 1e-4, "{name}: forces vanish");

            // Rotation and translation; a crystal rotates with its cell.
            let r = rotation(&mut rng);
            let shift: Vec3 = std::array::from_fn(|_| rng.random_range(-5.0..5.0));
            let moved: Vec<Vec3> = atoms
                .positions()
                .iter()
                .map(|&p| {
                    let q = apply(&r, p);
                    std::array::from_fn(|k| q[k] + shift[k])
                })
                .collect();
            let mut transformed = Atoms::new(atoms.numbers().to_vec(), moved).unwrap();
            if let Some(cell) = atoms.cell() {
                let vectors = cell.vectors().map(|v| apply(&r, v));
                transformed = transformed.with_cell(Cell::new(vectors).unwrap(), atoms.pbc());
            }
            let (e2, f2) = evaluate(&potential, &graph(&transformed, &config));
            assert!(close(energy, e2, 1e-5), "{name}: rotated energy {e2} vs {energy}");
            let rotated: Vec<Vec3> = forces.iter().map(|&f| apply(&r, f)).collect();
            assert_forces_close(&f2, &rotated, 1e-5, &format!("{name}: rotated forces"));

            // Permutation: reverse the atom order.
            let order: Vec<usize> = (0..atoms.len()).rev().collect();
            let mut permuted = Atoms::new(
                order.iter().map(|&i| atoms.numbers()[i]).collect(),
                order.iter().map(|&i| atoms.positions()[i]).collect(),
            )
            .unwrap();
            if let Some(cell) = atoms.cell() {
                permuted = permuted.with_cell(*cell, atoms.pbc());
            }
            let (e3, f3) = evaluate(&potential, &graph(&permuted, &config));
            assert!(close(energy, e3, 1e-5), "{name}: permuted energy {e3} vs {energy}");
            let reordered: Vec<Vec3> = order.iter().map(|&i| forces[i]).collect();
            assert_forces_close(&f3, &reordered, 1e-5, &format!("{name}: permuted forces"));
        }
    }
}

#[test]
fn forces_equal_finite_differences() {
    let h = 1e-5;
    for (name, config) in models() {
        let potential = potential(&config);
        for atoms in structures(config.cutoff.is_some()) {
            let g = graph(&atoms, &config);
            let (_, forces) = evaluate(&potential, &g);
            let mut numeric = vec![[0.0; 3]; atoms.len()];
            for a in 0..atoms.len() {
                for k in 0..3 {
                    let displaced = |d: f64| {
                        let mut p = g.positions.clone();
                        p[a][k] += d;
                        evaluate(&potential, &g.with_positions(p)).0
                    };
                    numeric[a][k] = -(displaced(h) - displaced(-h)) / (2.0 * h);
                }
            }
            assert_forces_close(&forces, &numeric, 1e-4, &format!("{name}: finite differences"));
        }
    }
}

/// `atoms` deformed by 1 + ε (row vectors: r → r·(1 + ε)), its cell with it.
fn strained(atoms: &Atoms, strain: [[f64; 3]; 3]) -> Atoms {
    let deform = |v: Vec3| -> Vec3 { std::array::from_fn(|k| v[k] + (0..3).map(|m| v[m] * strain[m][k]).sum::<f64>()) };
    let cell = atoms.cell().unwrap();
    let vectors = cell.vectors().map(deform);
    let mut out = atoms.clone().with_cell(Cell::new(vectors).unwrap(), atoms.pbc());
    out.set_positions(atoms.positions().iter().map(|&r| deform(r)).collect())
        .unwrap();
    out
}

/// The stress of every model with a cutoff (so periodic cells) equals (1/V) ∂E/∂ε by central
/// differences of the energy under each of the six symmetric strains, on a rattled, sheared
/// crystal; in a batch beside a molecule (which gets none) as alone.
#[test]
fn stress_equals_finite_differences_of_the_energy_under_strain() {
    let h = 1e-5;
    let mut crystal = structures(true).pop().unwrap();
    let shear = [[0.0, 0.04, 0.0], [0.0, -0.03, 0.02], [0.05, 0.0, 0.01]];
    crystal = strained(&crystal, shear);
    let volume = crystal.cell().unwrap().volume();
    for (name, config) in models().into_iter().filter(|(_, c)| c.cutoff.is_some()) {
        let potential = potential(&config);
        let graphs = [graph(&ethanol(), &config), graph(&crystal, &config)];
        let batch = minima_model::predict_graphs(&potential, &[&graphs[0], &graphs[1]], true).unwrap();
        assert!(batch[0].stress.is_none(), "{name}: a molecule has no stress");
        let stress = batch[1].stress.unwrap();
        let alone = minima_model::predict_graphs(&potential, &[&graphs[1]], true).unwrap()[0]
            .stress
            .unwrap();
        let energy_at = |strain: [[f64; 3]; 3]| evaluate(&potential, &graph(&strained(&crystal, strain), &config)).0;
        for (voigt, (i, j)) in [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)].into_iter().enumerate() {
            let symmetric = |d: f64| {
                let mut e = [[0.0; 3]; 3];
                e[i][j] += d / 2.0;
                e[j][i] += d / 2.0;
                e
            };
            // ε_ij = ε_ji = d/2: the energy changes by V σ_ij d for either component.
            let numeric = (energy_at(symmetric(h)) - energy_at(symmetric(-h))) / (2.0 * h) / volume;
            let tolerance = 1e-6 + 1e-4 * numeric.abs();
            assert!(
                (stress[voigt] - numeric).abs() < tolerance,
                "{name}: stress[{voigt}] {} vs {numeric}",
                stress[voigt]
            );
            assert!((alone[voigt] - stress[voigt]).abs() < 1e-9, "{name}: batch vs alone");
        }
    }
}

/// Locality and extensivity: two molecules 30 Å apart in one structure get the sum of their
/// energies alone and each atom its force alone, for every model whose energy reaches a
/// finite distance (the all-pairs graph and the transformer's [CLS] token couple every atom
/// of a structure, and are left out).
#[test]
fn far_apart_molecules_get_the_sum_of_their_energies() {
    let (a, b) = (ethanol(), structures(false).remove(1));
    let moved: Vec<Vec3> = b.positions().iter().map(|r| [r[0] + 30.0, r[1], r[2]]).collect();
    let both = molecule(
        &[a.numbers(), b.numbers()].concat(),
        &[a.positions(), moved.as_slice()].concat(),
    );
    let mut checked = 0;
    for (name, config) in models() {
        let potential = potential(&config);
        if potential.receptive_field().is_none() {
            continue;
        }
        let (ea, fa) = evaluate(&potential, &graph(&a, &config));
        let (eb, fb) = evaluate(&potential, &graph(&b, &config));
        let (e, f) = evaluate(&potential, &graph(&both, &config));
        assert!(close(e, ea + eb, 1e-10), "{name}: {e} vs {ea} + {eb}");
        assert_forces_close(&f, &[fa, fb].concat(), 1e-9, &format!("{name}: forces"));
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} local models");
}

/// `atoms` repeated n × n × n times along its cell vectors: each translation holds all atoms
/// in their order.
fn tiled(atoms: &Atoms, n: usize) -> Atoms {
    let cell = atoms.cell().unwrap();
    let mut positions = Vec::new();
    for x in 0..n as i32 {
        for y in 0..n as i32 {
            for z in 0..n as i32 {
                let shift = cell.shift([x, y, z]);
                positions.extend(
                    atoms
                        .positions()
                        .iter()
                        .map(|r| std::array::from_fn(|c| r[c] + shift[c])),
                );
            }
        }
    }
    let vectors = cell.vectors().map(|v| v.map(|x| x * n as f64));
    let numbers = atoms.numbers().repeat(n * n * n);
    Atoms::new(numbers, positions)
        .unwrap()
        .with_cell(Cell::new(vectors).unwrap(), [true; 3])
}

/// Extensivity in a crystal: a cell and its 2 × 2 × 2 supercell give the same energy per atom
/// and the same force on each copy of an atom, for the one-atom primitive fcc cell (where
/// every neighbour is an image of the atom itself) and for a rattled four-atom cubic cell.
#[test]
fn a_crystal_and_its_supercell_have_the_same_energy_per_atom() {
    let a = 3.6;
    let primitive = Atoms::new(vec![29], vec![[0.0; 3]]).unwrap().with_cell(
        Cell::new([
            [0.0, a / 2.0, a / 2.0],
            [a / 2.0, 0.0, a / 2.0],
            [a / 2.0, a / 2.0, 0.0],
        ])
        .unwrap(),
        [true; 3],
    );
    let cubic = structures(true).pop().unwrap();
    let mut checked = 0;
    for (name, config) in models() {
        let potential = potential(&config);
        if config.cutoff.is_none() || potential.receptive_field().is_none() {
            continue;
        }
        for cell in [&primitive, &cubic] {
            let (energy, forces) = evaluate(&potential, &graph(cell, &config));
            let (super_energy, super_forces) = evaluate(&potential, &graph(&tiled(cell, 2), &config));
            assert!(
                close(super_energy, 8.0 * energy, 1e-10),
                "{name}, {} atoms: {super_energy} vs 8 × {energy}",
                cell.len()
            );
            let copied: Vec<Vec3> = (0..8).flat_map(|_| forces.iter().copied()).collect();
            assert_forces_close(
                &super_forces,
                &copied,
                1e-9,
                &format!("{name}, {} atoms: forces", cell.len()),
            );
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} local models with a cutoff");
}

/// The training path predicts what inference does, adds the auxiliary heads that are on (only
/// there), and its forces stay differentiable: a loss on them reaches the weights (second-order
/// autograd), with finite gradients.
#[test]
fn the_training_path_predicts_as_inference_and_force_losses_reach_the_weights() {
    for (name, config) in models() {
        let potential = potential(&config);
        let graphs = graphs_of(&config);
        let batch = potential.batch(&graphs.iter().collect::<Vec<_>>(), true);
        let inference = potential.predict(&batch, Mode::Forces);
        let training = potential.predict(&batch, Mode::Training { forces: true });
        let values = |t: &tch::Tensor| Vec::<f64>::try_from(t.detach().flatten(0, -1)).unwrap();
        for (what, a, b) in [
            ("energy", &inference.energy, &training.energy),
            (
                "forces",
                inference.forces.as_ref().unwrap(),
                training.forces.as_ref().unwrap(),
            ),
        ] {
            for (x, y) in values(a).iter().zip(values(b)) {
                assert!(close(*x, y, 1e-10), "{name}: training {what} {y} vs inference {x}");
            }
        }
        let aux_on = config.kind == ModelKind::Vimpnn;
        let heads = [
            (config.aux.counts, Field::AuxCounts),
            (config.aux.orbitals, Field::AuxOrbitals),
            (config.aux.scale, Field::AuxScale),
        ];
        for (on, field) in heads {
            assert_eq!(
                training.outputs.contains(field),
                aux_on && on,
                "{name}: {} in training",
                field.name()
            );
            assert!(
                !inference.outputs.contains(field),
                "{name}: {} in inference",
                field.name()
            );
            // What the model declares it writes in training is what it writes.
            let declared = potential.writes(Mode::Training { forces: true }).contains(&field);
            assert_eq!(declared, aux_on && on, "{name}: {} declared", field.name());
        }
        let variables = potential.var_store().trainable_variables();
        for v in &variables {
            let mut grad = v.grad();
            if grad.defined() {
                let _ = grad.zero_();
            }
        }
        training.forces.unwrap().square().sum(tch::Kind::Double).backward();
        let reached: Vec<f64> = variables
            .iter()
            .map(|v| v.grad())
            .filter(|g| g.defined())
            .map(|g| g.abs().sum(tch::Kind::Double).double_value(&[]))
            .collect();
        assert!(reached.iter().all(|g| g.is_finite()), "{name}: non-finite gradients");
        // (A head whose last layer starts at zero passes nothing further back at the start.)
        assert!(
            reached.iter().any(|&g| g > 0.0),
            "{name}: the force loss reaches none of {} weight tensors",
            variables.len()
        );
    }
}

#[test]
fn a_batch_equals_its_structures_alone() {
    for (name, config) in models() {
        let potential = potential(&config);
        let graphs = graphs_of(&config);
        let batch = potential.batch(&graphs.iter().collect::<Vec<_>>(), true);
        let prediction = potential.predict(&batch, Mode::Forces);
        let energies: Vec<f64> = Vec::try_from(&prediction.energy).unwrap();
        let forces: Vec<f64> = Vec::try_from(prediction.forces.unwrap().flatten(0, 1)).unwrap();
        let mut start = 0;
        for (s, g) in graphs.iter().enumerate() {
            let (energy, alone) = evaluate(&potential, g);
            assert!(
                close(energies[s], energy, 1e-10),
                "{name}: structure {s}: {} vs {energy}",
                energies[s]
            );
            let batched: Vec<Vec3> = forces[3 * start..3 * (start + g.len())]
                .chunks(3)
                .map(|f| [f[0], f[1], f[2]])
                .collect();
            assert_forces_close(&batched, &alone, 1e-9, &format!("{name}: batched forces"));
            start += g.len();
        }
    }
}

/// Inference in edge chunks (the path of large structures) gives what the whole batch gives:
/// energies, per-atom energies, forces and the virial, for chunks of one edge, of a few, and
/// of more than the batch has, for every architecture and variant (the transformer's [CLS]
/// token, adjacency mask and pair head included). The whole batch evaluates ZBL only on the
/// edges within its reach, the chunks on every edge: the squeezed molecule has edges on both
/// sides of it.
#[test]
fn edge_chunks_predict_what_the_whole_batch_does() {
    for (name, config) in models() {
        let potential = potential(&config);
        let graphs = graphs_of(&config);
        let graphs: Vec<&Graph> = graphs.iter().collect();
        let whole = potential.predict(&potential.batch(&graphs, true).with_strain(), Mode::Forces);
        let values = |t: &tch::Tensor| Vec::<f64>::try_from(t.detach().flatten(0, -1)).unwrap();
        let edges = graphs.iter().map(|g| g.center.len()).sum::<usize>() as i64;
        for chunk in [1, 7, edges + 5] {
            let chunked = potential.predict_in_chunks(&potential.batch(&graphs, false), true, chunk);
            let pairs = [
                ("energy", &whole.energy, &chunked.energy),
                ("per-atom energy", &whole.atom_energy, &chunked.atom_energy),
                (
                    "forces",
                    whole.forces.as_ref().unwrap(),
                    chunked.forces.as_ref().unwrap(),
                ),
                (
                    "virial",
                    whole.virial.as_ref().unwrap(),
                    chunked.virial.as_ref().unwrap(),
                ),
            ];
            for (what, want, got) in pairs {
                let (want, got) = (values(want), values(got));
                assert_eq!(want.len(), got.len(), "{name}: {what}");
                for (w, g) in want.iter().zip(&got) {
                    assert!(
                        (w - g).abs() < 1e-9 * (1.0 + w.abs()),
                        "{name}: {what} in chunks of {chunk}: {g} vs {w}"
                    );
                }
            }
        }
    }
}

#[test]
fn bond_classes_change_the_energy_only_where_the_model_reads_them() {
    let base = &model("mpnn cutoff");
    let mut relabelled = graph(&ethanol(), base);
    let single = relabelled.bond.iter().filter(|&&b| b == BondClass::Single).count();
    assert!(single > 0);
    for bond in relabelled.bond.iter_mut().filter(|b| **b == BondClass::Single) {
        *bond = BondClass::Double;
    }
    for (config, reads) in [(base.clone(), true), (model("mpnn distances only"), false)] {
        let potential = potential(&config);
        let (perceived, _) = evaluate(&potential, &graph(&ethanol(), &config));
        let (changed, _) = evaluate(&potential, &relabelled);
        assert_eq!(
            perceived != changed,
            reads,
            "{perceived} vs {changed} (bond_features = {})",
            config.bond_features
        );
    }
}

#[test]
fn energy_is_smooth_where_an_atom_crosses_the_cutoff() {
    for (name, config) in models() {
        let Some(cutoff) = config.cutoff else { continue };
        let potential = potential(&config);
        // A water molecule and a far hydrogen approaching its oxygen along z; the water's
        // hydrogens stay beyond the cutoff from it.
        let with_hydrogen_at = |z: f64| {
            let atoms = molecule(
                &[8, 1, 1, 1],
                &[[0.0, 0.0, 0.0], [-0.96, 0.0, 0.0], [0.24, 0.93, 0.0], [0.0, 0.0, -z]],
            );
            evaluate(&potential, &graph(&atoms, &config))
        };
        // The envelope's slope vanishes at rc, so the force on the crossing atom fades
        // linearly to zero: tiny just inside, compared with the force half an ångström in.
        let delta = 1e-6;
        let (inside, forces_inside) = with_hydrogen_at(cutoff - delta);
        let (outside, forces_outside) = with_hydrogen_at(cutoff + delta);
        let (_, forces_within) = with_hydrogen_at(cutoff - 0.5);
        assert!(
            (inside - outside).abs() < 1e-9,
            "{name}: energy jumps by {} at the cutoff",
            inside - outside
        );
        let (edge, within) = (forces_inside[3][2].abs(), forces_within[3][2].abs());
        assert!(
            edge < 1e-4 * within,
            "{name}: force {edge} just inside the cutoff, {within} 0.5 Å in"
        );
        assert_eq!(
            forces_outside[3], [0.0; 3],
            "{name}: an atom beyond the cutoff feels a force"
        );
        // And the atom does interact when well inside.
        let (near, _) = with_hydrogen_at(cutoff - 1.0);
        assert!(
            (near - outside).abs() > 1e-6,
            "{name}: no interaction inside the cutoff"
        );
    }
}

#[test]
fn checkpoint_reloads_to_identical_predictions() {
    let dir = tempfile::tempdir().unwrap();
    for (index, (name, config)) in models().into_iter().enumerate() {
        let potential = potential(&config);
        let path = dir.path().join(format!("model{index}.safetensors"));
        potential.save(&path).unwrap();
        let reloaded = Potential::load(&path, Device::Cpu).unwrap();
        // The keys of other kinds are not recorded.
        assert_eq!(reloaded.config, config.without_other_kinds(), "{name}");
        for atoms in structures(config.cutoff.is_some()) {
            let g = graph(&atoms, &config);
            assert_eq!(evaluate(&potential, &g), evaluate(&reloaded, &g), "{name}");
        }
    }
}

#[test]
fn pair_terms_are_symmetric_positive_follow_eq5_and_add_up_to_the_energy() {
    for (name, config) in models() {
        let potential = potential(&config);
        for atoms in structures(config.cutoff.is_some()) {
            let g = graph(&atoms, &config);
            let batch = potential.batch(&[&g], false);
            let prediction = potential.predict(&batch, Mode::Energy);
            let outputs = &prediction.outputs;
            let head: Option<&CoulombLjConfig> = config.priors.iter().find_map(|p| match p {
                PriorConfig::CoulombLj(head) => Some(head),
                _ => None,
            });
            let Some(edge) = outputs.get(Field::PairEdge) else {
                assert!(head.is_none(), "{name}: a pair head wrote no pair terms");
                continue;
            };
            let head = head.unwrap_or_else(|| panic!("{name}: pair terms without a pair head"));
            let field = |f: Field| outputs.get(f).unwrap_or_else(|| panic!("{name}: no {}", f.name()));
            let edge: Vec<i64> = Vec::try_from(edge).unwrap();
            let beta: Vec<f64> = Vec::try_from(field(Field::PairBeta).flatten(0, 1)).unwrap();
            let energy: Vec<f64> = Vec::try_from(field(Field::PairEnergy)).unwrap();
            let slope: Vec<f64> = Vec::try_from(field(Field::PairSlope)).unwrap();
            let switch_start = config.cutoff.map_or(f64::INFINITY, |c| c - head.switch);
            let mut seen = std::collections::HashMap::new();
            for (k, &e) in edge.iter().enumerate() {
                let e = e as usize;
                let b = &beta[5 * k..5 * k + 5];
                assert!(
                    b[1..].iter().all(|&x| x > 0.0),
                    "{name}: β1..β4 must be positive: {b:?}"
                );
                // Eq. 5 from the exposed β (eV, Å) gives E_ij before the switch, and the slope
                // is its derivative in d.
                let eq5 = |d: f64| pair_energy(b.try_into().unwrap(), d);
                let (i, j) = (g.center[e] as usize, g.neighbor[e] as usize);
                let d = (0..3)
                    .map(|a| (g.positions[j][a] + g.offset[e][a] - g.positions[i][a]).powi(2))
                    .sum::<f64>()
                    .sqrt();
                let h = 1e-5;
                let numeric = (eq5(d + h) - eq5(d - h)) / (2.0 * h);
                assert!(
                    close(slope[k], numeric, 1e-6),
                    "{name}: slope {} vs {numeric} at d = {d}",
                    slope[k]
                );
                if d < switch_start {
                    assert!(
                        close(energy[k], eq5(d), 1e-9),
                        "{name}: E_ij {} vs Eq. 5 {}",
                        energy[k],
                        eq5(d)
                    );
                }
                if head.pairs == PairSet::Bonded {
                    assert_ne!(g.bond[e], minima_data::BondClass::None, "{name}");
                }
                // Periodic images of one pair are different terms: the lattice offset is part
                // of the key.
                let offset = g.offset[e].map(|x| (x * 1e6).round() as i64);
                let key = (g.center[e], g.neighbor[e], offset);
                let back = (g.neighbor[e], g.center[e], offset.map(|x| -x));
                if let Some(&(other_b, other_e)) = seen.get(&back) {
                    let other_b: &[f64] = &beta[5 * other_b..5 * other_b + 5];
                    for (x, y) in b.iter().zip(other_b) {
                        assert!(close(*x, *y, 1e-9), "{name}: β of {key:?} and its reverse differ");
                    }
                    assert!(close(energy[k], other_e, 1e-9), "{name}: E_ij ≠ E_ji");
                }
                seen.insert(key, (k, energy[k]));
            }
            // The pair part of the energy is half the sum over both directions; without the
            // other readouts the total is exactly that plus the priors and the reference
            // energies.
            let t = &config.transformer;
            if config.kind == ModelKind::Transformer && !t.atom_energy && !t.cls {
                let total = prediction.energy.double_value(&[0]);
                let references: f64 = g.numbers.iter().map(|&z| potential.refs.energy_of(z).unwrap()).sum();
                let pair_sum = 0.5 * energy.iter().sum::<f64>();
                let priors = outputs
                    .get(Field::PriorEnergy)
                    .map_or(0.0, |e| e.sum(tch::Kind::Double).double_value(&[]));
                assert_eq!(
                    outputs.contains(Field::PriorEnergy),
                    config.priors.iter().any(|p| matches!(p, PriorConfig::Zbl(_))),
                    "{name}"
                );
                assert!(
                    close(total, references + pair_sum + priors, 1e-9),
                    "{name}: {total} vs {}",
                    references + pair_sum + priors
                );
            }
        }
    }
}

#[test]
fn masked_atoms_are_predicted_without_seeing_their_element() {
    for (name, config) in models() {
        let potential = potential(&config);
        let water = molecule(&[8, 1, 1], &[[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]]);
        let ammonia_like = molecule(&[7, 1, 1], &[[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]]);
        let logits = |atoms: &Atoms, masked: bool| {
            let g = graph(atoms, &config);
            let batch = potential.batch(&[&g], false);
            let mask = tch::Tensor::from_slice(&[masked, false, false]);
            potential
                .masked_atom_logits(&batch, &mask)
                .map(|l| Vec::<f64>::try_from(l.flatten(0, 1)).unwrap())
        };
        let Some(hidden_o) = logits(&water, true) else {
            assert_ne!(config.kind, ModelKind::Transformer, "{name}: no masked-atom head");
            continue;
        };
        assert_eq!(hidden_o.len(), 3 * config.elements.len(), "{name}");
        // Masking the central atom makes O and N the same input; unmasked they differ.
        assert_eq!(
            hidden_o,
            logits(&ammonia_like, true).unwrap(),
            "{name}: the mask leaks the element"
        );
        assert_ne!(logits(&water, false), logits(&ammonia_like, false), "{name}");
    }
}

/// The ZBL prior's share of two carbons `d` Å apart: energy and the force on the second
/// atom, from a PaiNN with the prior less the same PaiNN (same weights) without it.
fn carbon_pair_prior(d: f64) -> (f64, Vec3) {
    let with = model("painn + zbl");
    let without = ModelConfig {
        priors: Vec::new(),
        ..with.clone()
    };
    // Along a skew direction, so that every component is exercised.
    let u = [0.48, -0.6, 0.64];
    let atoms = molecule(&[6, 6], &[[0.0; 3], u.map(|x| x * d)]);
    let (e1, f1) = evaluate(&potential(&with), &graph(&atoms, &with));
    let (e0, f0) = evaluate(&potential(&without), &graph(&atoms, &without));
    (e1 - e0, std::array::from_fn(|k| f1[1][k] - f0[1][k]))
}

fn length(v: Vec3) -> f64 {
    minima_atoms::cell::norm(v)
}

#[test]
fn zbl_is_the_full_formula_inside_strongly_repulsive_and_exactly_zero_beyond() {
    let config = ZblConfig::default();
    let sum = 2.0 * minima_atoms::element::by_number(6).unwrap().covalent_radius;
    let (inner, outer) = (config.inner * sum, config.outer * sum);
    let (energy, force) = carbon_pair_prior(0.5);
    assert!(0.5 < inner && energy > 10.0, "two carbons at 0.5 Å: {energy} eV");
    assert!(close(energy, unswitched_pair_energy(6, 6, 0.5), 1e-9), "{energy}");
    // The force pushes the second atom away from the first, along the skew direction.
    assert!(force[0] > 0.0 && force[1] < 0.0 && force[2] > 0.0, "{force:?}");
    // Repulsive throughout: the energy falls with distance up to the outer radius.
    let scan: Vec<f64> = (0..=20)
        .map(|k| carbon_pair_prior(0.3 + (outer - 0.3) * k as f64 / 20.0).0)
        .collect();
    assert!(scan.windows(2).all(|w| w[0] > w[1]), "{scan:?}");
    let middle = 0.5 * (inner + outer);
    let switched = carbon_pair_prior(middle).0;
    assert!(switched > 0.0 && switched < unswitched_pair_energy(6, 6, middle));
    for d in [outer + 1e-9, outer + 0.5, 3.9] {
        assert_eq!(carbon_pair_prior(d), (0.0, [0.0; 3]), "at {d} Å");
    }
    // Bonded molecules are below no pair's outer radius: the prior leaves them unchanged.
    let is_zbl = |p: &PriorConfig| matches!(p, PriorConfig::Zbl(_));
    for (name, config) in models().into_iter().filter(|(_, c)| c.priors.iter().any(is_zbl)) {
        let plain = ModelConfig {
            priors: config.priors.iter().filter(|p| !is_zbl(p)).cloned().collect(),
            ..config.clone()
        };
        let g = graph(&ethanol(), &config);
        assert_eq!(
            evaluate(&potential(&config), &g),
            evaluate(&potential(&plain), &g),
            "{name}"
        );
    }
}

#[test]
fn zbl_energy_and_force_are_continuous_at_both_switch_radii() {
    let config = ZblConfig::default();
    let sum = 2.0 * minima_atoms::element::by_number(6).unwrap().covalent_radius;
    let delta = 1e-7;
    for radius in [config.inner * sum, config.outer * sum] {
        let (e_below, f_below) = carbon_pair_prior(radius - delta);
        let (e_above, f_above) = carbon_pair_prior(radius + delta);
        // The scale of a discontinuity: the prior's energy and force 0.05 Å inside.
        let (e_near, f_near) = carbon_pair_prior(radius - 0.05);
        assert!(
            (e_below - e_above).abs() < 1e-5 * e_near,
            "energy jumps by {} at {radius} Å",
            e_below - e_above
        );
        let jump = length(std::array::from_fn(|k| f_below[k] - f_above[k]));
        assert!(
            jump < 1e-4 * length(f_near),
            "force jumps by {jump} eV/Å at {radius} Å (force {} 0.05 Å in)",
            length(f_near)
        );
    }
}

#[test]
fn zbl_outer_radius_must_be_below_the_cutoff() {
    let mut config = model("painn + zbl");
    config.cutoff = Some(1.5);
    let error = Potential::new(config, refs(), Device::Cpu, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("outer radius"), "{error}");
}
