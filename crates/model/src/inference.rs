//! Inference: a [`Potential`]'s energies, per-atom contributions, forces and stress for
//! structures, in batches sized before they are allocated.

use minima_atoms::{Atoms, Vec3};
use minima_data::{Graph, Sample};
use tch::{Kind, Tensor};

use crate::{Mode, ModelConfig, ModelError, Potential};

/// A model's output for one structure.
#[derive(Debug, Clone)]
pub struct Predicted {
    /// eV.
    pub energy: f64,
    /// Per-atom contributions, eV; they sum to `energy`.
    pub atom_energies: Vec<f64>,
    /// eV/Å, when asked for.
    pub forces: Option<Vec<Vec3>>,
    /// eV/Å³, Voigt order xx yy zz yz xz xy, ASE's sign ((1/V) ∂E/∂ε): with the forces, for
    /// structures periodic along all three axes.
    pub stress: Option<[f64; 6]>,
}

/// Predicts `samples` in batches of `batch_size`, with forces (and the stress of periodic
/// ones) when `forces`. Each batch's memory is estimated first and a batch over the budget
/// refused (naming its frames).
pub fn predict_samples(
    potential: &Potential,
    samples: &[&Sample],
    batch_size: usize,
    forces: bool,
) -> Result<Vec<Predicted>, ModelError> {
    for sample in samples {
        potential.check_elements(&sample.graph, sample.frame)?;
    }
    let bar = minima_io::progress::task(samples.len() as u64, "predict");
    let mut out = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(batch_size.max(1)) {
        let graphs: Vec<&Graph> = chunk.iter().map(|s| &s.graph).collect();
        let frames = || match chunk {
            [one] => format!("frame {}", one.frame),
            _ => format!(
                "the batch of frames {}–{}",
                chunk[0].frame,
                chunk[chunk.len() - 1].frame
            ),
        };
        plan_batch(potential, &graphs, forces, &frames)?;
        out.extend(predict_graphs(potential, &graphs, forces)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// Above this estimate a structure that can run in edge chunks does (see
/// [`crate::message_layers`]): beyond it the per-edge activations dominate, and chunks keep
/// memory to what grows with the atoms.
pub const CHUNKED_ABOVE: u64 = 1 << 30;

/// How a batch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// All edges at once under autograd.
    Whole,
    /// In chunks of this many edges.
    Chunked(i64),
}

/// The plan for a batch (`what` names it): in edge chunks when the model can and the whole
/// batch's estimate exceeds [`CHUNKED_ABOVE`]; refused when the plan's estimated memory
/// exceeds the budget.
pub fn plan_batch(
    potential: &Potential,
    graphs: &[&Graph],
    forces: bool,
    what: &dyn Fn() -> String,
) -> Result<Plan, ModelError> {
    let atoms: u64 = graphs.iter().map(|g| g.len() as u64).sum();
    let edges: u64 = graphs.iter().map(|g| g.center.len() as u64).sum();
    let config = &potential.config;
    let whole = config.batch_memory(atoms, edges, forces, false);
    let (plan, bytes) = if whole > CHUNKED_ABOVE {
        (Plan::Chunked(config.chunk_edges()), config.chunked_memory(atoms, edges))
    } else {
        (Plan::Whole, whole)
    };
    crate::check_memory(
        &format!(
            "{} ({atoms} atoms, {edges} edges{})",
            what(),
            if forces { ", with forces" } else { "" }
        ),
        bytes,
        &lower_batch_memory(config, "--batch", graphs.len()),
    )?;
    Ok(plan)
}

/// What lowers the memory of a batch of `structures` (`batch_key` the setting that sizes it).
pub fn lower_batch_memory(model: &ModelConfig, batch_key: &str, structures: usize) -> String {
    let cutoff = if model.cutoff.is_none() {
        "a model with a cutoff (model.cutoff; this one makes every pair of atoms an edge)"
    } else {
        "a shorter model.cutoff"
    };
    let batch = if structures > 1 {
        format!("lower {batch_key}, or ")
    } else {
        String::new()
    };
    format!("{batch}use {cutoff} or a smaller model")
}

/// The cell volume (Å³) of `graph` when it is periodic along all three axes, so that it has
/// a stress.
fn periodic_volume(graph: &Graph) -> Option<f64> {
    graph.bulk_cell().map(|cell| cell.volume())
}

/// One batch of graphs (elements already checked), with forces (and the stress of fully
/// periodic structures) when `forces`; refused when its estimated memory exceeds the budget.
pub fn predict_graphs(potential: &Potential, graphs: &[&Graph], forces: bool) -> Result<Vec<Predicted>, ModelError> {
    let what = || match graphs {
        [one] => format!("a structure of {} atoms", one.len()),
        _ => format!("a batch of {} structures", graphs.len()),
    };
    let plan = plan_batch(potential, graphs, forces, &what)?;
    let volumes: Vec<Option<f64>> = graphs.iter().map(|g| periodic_volume(g)).collect();
    let stress = forces && volumes.iter().any(Option::is_some);
    let run = || {
        let p = match plan {
            Plan::Chunked(edges) => potential.predict_in_chunks(
                &potential.batch(graphs, false).with_exact_vectors(graphs),
                forces,
                edges,
            ),
            Plan::Whole => {
                let mut batch = potential.batch(graphs, forces);
                if stress {
                    batch = batch.with_strain();
                }
                potential.predict(&batch, if forces { Mode::Forces } else { Mode::Energy })
            }
        };
        // A gradient comes back undefined where its input does not reach the energy (a
        // single atom has no edges): it is zero.
        let to_vec = |t: &Tensor, len: usize| -> Result<Vec<f64>, tch::TchError> {
            if t.defined() {
                Vec::<f64>::try_from(t.detach().to_kind(Kind::Double).flatten(0, -1))
            } else {
                Ok(vec![0.0; len])
            }
        };
        let atoms: usize = graphs.iter().map(|g| g.len()).sum();
        Ok::<_, tch::TchError>((
            to_vec(&p.energy, graphs.len())?,
            to_vec(&p.atom_energy, atoms)?,
            p.forces.as_ref().map(|f| to_vec(f, 3 * atoms)).transpose()?,
            p.virial.as_ref().map(|v| to_vec(v, 9 * graphs.len())).transpose()?,
        ))
    };
    let (energies, atom_energies, all_forces, virials) = crate::guard("the model's forward pass", || {
        if forces || plan != Plan::Whole {
            run()
        } else {
            tch::no_grad(run)
        }
    })??;
    let mut out = Vec::with_capacity(graphs.len());
    let mut start = 0;
    for (s, graph) in graphs.iter().enumerate() {
        let end = start + graph.len();
        let stress = virials.as_ref().zip(volumes[s]).map(|(v, volume)| {
            let w = &v[9 * s..9 * s + 9];
            // Voigt order xx yy zz yz xz xy of the (symmetric) virial.
            [w[0], w[4], w[8], w[5], w[2], w[1]].map(|x| x / volume)
        });
        out.push(Predicted {
            energy: energies[s],
            atom_energies: atom_energies[start..end].to_vec(),
            forces: all_forces
                .as_ref()
                .map(|f| f[3 * start..3 * end].chunks(3).map(|c| [c[0], c[1], c[2]]).collect()),
            stress,
        });
        start = end;
    }
    Ok(out)
}

/// Directed edges a structure of `atoms` is expected to have within `cutoff`: its atoms times
/// the atoms of its mean density in a sphere of the cutoff (the density of its cell when
/// periodic along all axes, else of its bounding box widened by the cutoff), at most all
/// pairs. An estimate before the neighbour search, to choose how to run it.
pub fn expected_edges(atoms: &Atoms, cutoff: f64) -> u64 {
    let n = atoms.len() as f64;
    let volume = match atoms.cell().filter(|_| atoms.pbc().iter().all(|&p| p)) {
        Some(cell) => cell.volume(),
        None => (0..3)
            .map(|k| {
                let (lo, hi) = atoms
                    .positions()
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
                        (lo.min(r[k]), hi.max(r[k]))
                    });
                hi - lo + cutoff
            })
            .product(),
    };
    let sphere = 4.0 / 3.0 * std::f64::consts::PI * cutoff.powi(3);
    (n * (n / volume * sphere).min(n - 1.0)).max(0.0) as u64
}

/// Bytes per edge the graph of a structure takes in memory beside the model's tensors (the
/// neighbour search's list while the graph is built, then the graph).
const GRAPH_BYTES_PER_EDGE: u64 = 28 + 33;

/// Whether `atoms` runs in spatial domains, and of how many atoms each (interior and halo):
/// in domains of `limit` atoms when it has more than that, else in domains taking at most
/// half the memory budget when it would not fit the budget in one piece; `None`: in one piece.
pub fn domains_for(potential: &Potential, atoms: &Atoms, limit: Option<usize>) -> Result<Option<usize>, ModelError> {
    match limit {
        Some(limit) if atoms.len() > limit => Ok(Some(limit)),
        _ => domain_atoms_needed(potential, atoms),
    }
}

fn domain_atoms_needed(potential: &Potential, atoms: &Atoms) -> Result<Option<usize>, ModelError> {
    let Some(cutoff) = potential.config.cutoff else {
        return Ok(None);
    };
    let edges = expected_edges(atoms, cutoff);
    let n = atoms.len() as u64;
    let config = &potential.config;
    let whole = config.chunked_memory(n, edges) + edges * GRAPH_BYTES_PER_EDGE;
    let budget = crate::memory_budget()?;
    if whole <= budget {
        return Ok(None);
    }
    let per_atom = (whole - config.chunked_memory(0, 0)) / n.max(1);
    let room = (budget / 2).saturating_sub(config.chunked_memory(0, 0));
    Ok(Some((room / per_atom.max(1)).max(1) as usize))
}

/// Energy, per-atom energies, forces and (periodic along all axes) stress of `atoms` from
/// spatial domains of about `domain_atoms` atoms each (interior and halo; see
/// [`minima_data::domains`]), each run in edge chunks: equal to the whole structure's result
/// to float rounding, in memory bounded by the domain. For models whose energy reaches a
/// finite distance ([`Potential::receptive_field`]); a progress bar counts the domains.
pub fn predict_in_domains(potential: &Potential, atoms: &Atoms, domain_atoms: usize) -> Result<Predicted, ModelError> {
    let Some(reach) = potential.receptive_field() else {
        return Err(ModelError::Config(format!(
            "a {} model cannot be split into domains: the energy of an atom reaches every other atom ([CLS] token or no cutoff)",
            potential.config.kind.name()
        )));
    };
    potential.check_numbers(atoms.numbers(), 0)?;
    let fail = |message: String| ModelError::Config(message);
    let spec = potential.config.graph_spec();
    let bonds = minima_bonds::bonds_of(atoms).map_err(|e| fail(e.to_string()))?;
    let decomposition = minima_data::domains::Decomposition::new(atoms, reach, domain_atoms).map_err(fail)?;
    let n = atoms.len();
    let mut atom_energies = vec![0.0; n];
    let mut forces = vec![[0.0; 3]; n];
    let mut virial = [0.0; 9];
    let bar = minima_io::progress::task(decomposition.len() as u64, "domains");
    for index in 0..decomposition.len() {
        let domain = decomposition.domain(atoms, &bonds, &spec, index).map_err(fail)?;
        if domain.interior == 0 {
            bar.inc(1);
            continue;
        }
        let graph = &domain.graph;
        let what = || {
            format!(
                "domain {} of {} ({} atoms)",
                index + 1,
                decomposition.len(),
                graph.len()
            )
        };
        plan_batch(potential, &[graph], true, &what)?;
        let (energies, domain_forces, domain_virial) = crate::guard("the model's forward pass", || {
            let batch = potential.batch(&[graph], false).with_exact_vectors(&[graph]);
            let mut weights = vec![0.0; graph.len()];
            weights[..domain.interior].fill(1.0);
            let weights = Tensor::from_slice(&weights)
                .to_kind(potential.kind())
                .to_device(potential.device());
            let p = potential.predict_weighted_in_chunks(&batch, Some(&weights), true, potential.config.chunk_edges());
            let values = |t: &Tensor| Vec::<f64>::try_from(t.detach().to_kind(Kind::Double).flatten(0, -1));
            Ok::<_, tch::TchError>((
                values(&p.atom_energy)?,
                values(p.forces.as_ref().expect("forces asked for"))?,
                values(p.virial.as_ref().expect("with the forces"))?,
            ))
        })??;
        for (node, &a) in domain.atom.iter().enumerate() {
            if node < domain.interior {
                atom_energies[a as usize] = energies[node];
            }
            for k in 0..3 {
                forces[a as usize][k] += domain_forces[3 * node + k];
            }
        }
        for (w, v) in virial.iter_mut().zip(&domain_virial) {
            *w += v;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let stress = atoms
        .cell()
        .filter(|_| atoms.pbc().iter().all(|&p| p))
        .map(|cell| [virial[0], virial[4], virial[8], virial[5], virial[2], virial[1]].map(|x| x / cell.volume()));
    Ok(Predicted {
        energy: atom_energies.iter().sum(),
        atom_energies,
        forces: Some(forces),
        stress,
    })
}
