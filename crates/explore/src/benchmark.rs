//! The physics-transformer paper's two structure experiments, for any calculator.
//!
//! - Re-optimisation (section 4.3): equilibrium molecules, every atom displaced by seeded
//!   Gaussian noise, relaxed again; ΔP is the mean distance of each atom from its original
//!   position (no alignment: forces of a translation- and rotation-invariant potential move
//!   neither the centre nor the orientation), ΔE_g = E(relaxed) − E(original) under the same
//!   calculator. The paper's set: the 128 smallest molecules and 128 drawn at random from the
//!   rest. The noise amplitude is not given in the paper ("slightly perturb"); we use σ = 0.05 Å
//!   per Cartesian component (mean displacement ≈ 0.08 Å), configurable.
//! - Assembly (section 4.4): one or two functional groups (the smaller side of an acyclic
//!   single bond between heavy atoms) are moved 0.7 Å away along their bond, which breaks it;
//!   the molecule is relaxed and we report whether every original bond is back (perceived
//!   connectivity equal to the original's) and ΔP. A model keeps the molecule's original bond
//!   graph as its input throughout, as the paper's models see the molecular graph.

use std::collections::BTreeSet;

use minima_atoms::cell::{norm, sub};
use minima_atoms::{Atoms, Vec3};
use minima_bonds::BondOrder;
use minima_label::Calculator;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::curve::with_fixed_bonds;
use crate::failures::FrameFailures;
use crate::relax::{relax, RelaxOptions, Stop};
use crate::ExploreError;

/// Mean distance of each atom from its position in `reference` (Å).
pub fn mean_displacement(atoms: &Atoms, reference: &Atoms) -> f64 {
    let n = atoms.len().max(1) as f64;
    atoms
        .positions()
        .iter()
        .zip(reference.positions())
        .map(|(&a, &b)| norm(sub(a, b)))
        .sum::<f64>()
        / n
}

/// The paper's selection: indices of the `smallest` molecules with the fewest atoms (ties by
/// position in the file), then `random` more drawn from the rest with `seed`.
pub fn select_molecules(molecules: &[Atoms], smallest: usize, random: usize, seed: u64) -> Vec<usize> {
    let mut by_size: Vec<usize> = (0..molecules.len()).collect();
    by_size.sort_by_key(|&i| (molecules[i].len(), i));
    let (small, rest) = by_size.split_at(smallest.min(by_size.len()));
    let mut rest = rest.to_vec();
    rest.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut chosen = small.to_vec();
    chosen.extend(rest.into_iter().take(random));
    chosen
}

/// `atoms` with every coordinate moved by Gaussian noise of standard deviation `sigma` (Å).
pub fn perturbed(atoms: &Atoms, sigma: f64, seed: u64) -> Atoms {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let moved = atoms
        .positions()
        .iter()
        .map(|r| r.map(|x| x + sigma * minima_data::gaussian(&mut rng)))
        .collect();
    let mut out = atoms.clone();
    out.set_positions(moved).expect("finite noise");
    out
}

/// One molecule of the re-optimisation benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct Reoptimized {
    /// Index in the input file.
    pub frame: usize,
    pub formula: String,
    pub atoms: usize,
    /// Mean displacement of the perturbed start from the original (Å).
    pub start_displacement: f64,
    /// ΔP: mean displacement of the relaxed structure from the original (Å).
    pub delta_p: f64,
    /// ΔE_g: E(relaxed) − E(original) (eV).
    pub delta_e: f64,
    pub steps: usize,
    pub stop: Stop,
}

/// Perturbs and relaxes each of `molecules[frames]`; `done` is called after each. A molecule
/// the calculator cannot treat is listed among the failures and the others go on.
pub fn reoptimize(
    calculator: &dyn Calculator,
    molecules: &[Atoms],
    frames: &[usize],
    sigma: f64,
    seed: u64,
    options: &RelaxOptions,
    mut done: impl FnMut(&Reoptimized),
) -> (Vec<Reoptimized>, FrameFailures) {
    let mut out = Vec::with_capacity(frames.len());
    let mut failures = FrameFailures::default();
    for &frame in frames {
        let original = with_fixed_bonds(&molecules[frame]);
        let start = perturbed(&original, sigma, seed.wrapping_add(frame as u64));
        let relaxed = calculator
            .calculate_checked(&original)
            .map_err(ExploreError::from)
            .and_then(|reference| Ok((reference, relax(calculator, &start, options, |_| {})?)));
        let (reference, result) = match relaxed {
            Ok(both) => both,
            Err(error) => {
                failures.push(frame, error);
                continue;
            }
        };
        let record = Reoptimized {
            frame,
            formula: original.formula(),
            atoms: original.len(),
            start_displacement: mean_displacement(&start, &original),
            delta_p: mean_displacement(&result.atoms, &original),
            delta_e: result.labels.energy - reference.energy,
            steps: result.steps,
            stop: result.stop,
        };
        done(&record);
        out.push(record);
    }
    (out, failures)
}

/// What the re-optimisation benchmark found: the distributions of ΔP, |ΔE_g| and the start
/// displacement over the molecules that ran, with the settings that produced them.
#[derive(Debug, Clone, Serialize)]
pub struct ReoptimizationSummary {
    pub calculator: String,
    pub input: String,
    pub sigma: f64,
    pub seed: u64,
    pub fmax: f64,
    pub optimizer: crate::relax::Optimizer,
    pub molecules: usize,
    /// How many of the molecules are the smallest of the input (the rest drawn at random).
    pub smallest: usize,
    pub converged: usize,
    pub delta_p: Spread,
    pub abs_delta_e: Spread,
    pub start_displacement: Spread,
    #[serde(rename = "delta_p_below_0.1")]
    pub delta_p_below_tenth: usize,
    pub failed: FrameFailures,
}

impl ReoptimizationSummary {
    /// The summary of `records` (of molecules read from `input`), `smallest` of which were
    /// chosen as the smallest.
    pub fn of(
        calculator: &str,
        input: &str,
        (sigma, seed, smallest): (f64, u64, usize),
        options: &RelaxOptions,
        records: &[Reoptimized],
        failed: FrameFailures,
    ) -> ReoptimizationSummary {
        let delta_p: Vec<f64> = records.iter().map(|r| r.delta_p).collect();
        let delta_e: Vec<f64> = records.iter().map(|r| r.delta_e.abs()).collect();
        let start: Vec<f64> = records.iter().map(|r| r.start_displacement).collect();
        ReoptimizationSummary {
            calculator: calculator.to_string(),
            input: input.to_string(),
            sigma,
            seed,
            fmax: options.fmax,
            optimizer: options.optimizer,
            molecules: records.len(),
            smallest: smallest.min(records.len()),
            converged: records.iter().filter(|r| r.stop == Stop::Converged).count(),
            delta_p: Spread::of(&delta_p),
            abs_delta_e: Spread::of(&delta_e),
            start_displacement: Spread::of(&start),
            delta_p_below_tenth: delta_p.iter().filter(|&&p| p < 0.1).count(),
            failed,
        }
    }

    /// The table a person reads.
    pub fn table(&self) -> String {
        let mut text = format!(
            "{} molecules ({} smallest + {} random), {} converged to fmax {} eV/Å with {}\n",
            self.molecules,
            self.smallest,
            self.molecules - self.smallest,
            self.converged,
            self.fmax,
            self.calculator
        );
        text += &format!(
            "{:>22} {:>10} {:>10} {:>10} {:>10}\n",
            "", "mean", "median", "90%", "max"
        );
        for (name, spread) in [
            ("start displacement Å", self.start_displacement),
            ("ΔP Å", self.delta_p),
            ("|ΔE_g| eV", self.abs_delta_e),
        ] {
            text += &format!(
                "{name:>22} {:>10.4} {:>10.4} {:>10.4} {:>10.4}\n",
                spread.mean, spread.median, spread.p90, spread.max
            );
        }
        text + &format!("ΔP < 0.1 Å: {} of {}\n", self.delta_p_below_tenth, self.molecules)
    }

    /// The cumulative distributions of the start displacement, ΔP and |ΔE_g| on a log scale;
    /// none when no molecule ran.
    pub fn figure(&self, records: &[Reoptimized]) -> Option<crate::plot::Figure> {
        use crate::plot::{Figure, Style};
        if records.is_empty() {
            return None;
        }
        let log10 = |value: fn(&Reoptimized) -> f64| -> Vec<(f64, f64)> {
            let values: Vec<f64> = records.iter().map(value).collect();
            cumulative(&values)
                .into_iter()
                .map(|(v, f)| (v.max(1e-8).log10(), f))
                .collect()
        };
        let title = format!(
            "re-optimisation of {} perturbed molecules ({})",
            records.len(),
            self.calculator
        );
        Some(
            Figure::new(
                title,
                "log10 of ΔP (Å) or |ΔE_g| (eV)",
                "fraction of molecules at or below",
            )
            .with_series("start displacement (Å)", log10(|r| r.start_displacement), Style::Line)
            .with_series("ΔP after relaxation (Å)", log10(|r| r.delta_p), Style::Line)
            .with_series("|ΔE_g| (eV)", log10(|r| r.delta_e.abs()), Style::Line),
        )
    }
}

/// A functional group: the atoms on the far side of an acyclic single bond between heavy
/// atoms, `anchor` (kept) – `head` (moved with the group).
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub anchor: usize,
    pub head: usize,
    pub atoms: Vec<usize>,
}

/// The functional groups of a molecule: for each acyclic single bond between heavy atoms, its
/// smaller side (at most half the molecule), with its hydrogens.
pub fn functional_groups(molecule: &Atoms) -> Result<Vec<Group>, ExploreError> {
    let bonds = minima_bonds::bonds_of(molecule).map_err(|e| ExploreError::Input(e.to_string()))?;
    let n = molecule.len();
    let mut neighbors = vec![Vec::new(); n];
    for b in &bonds {
        neighbors[b.i].push(b.j);
        neighbors[b.j].push(b.i);
    }
    let heavy = |a: usize| molecule.numbers()[a] > 1;
    let mut groups = Vec::new();
    for b in bonds
        .iter()
        .filter(|b| b.order == BondOrder::Single && heavy(b.i) && heavy(b.j))
    {
        for (anchor, head) in [(b.i, b.j), (b.j, b.i)] {
            // The atoms reachable from `head` without crossing the bond; a ring brings us back
            // to `anchor`, and then the bond is not a cut.
            let mut side = BTreeSet::from([head]);
            let mut stack = vec![head];
            let mut ring = false;
            while let Some(a) = stack.pop() {
                for &c in &neighbors[a] {
                    if a == head && c == anchor {
                        continue;
                    }
                    if c == anchor {
                        ring = true;
                    } else if side.insert(c) {
                        stack.push(c);
                    }
                }
            }
            if !ring && 2 * side.len() <= n {
                groups.push(Group {
                    anchor,
                    head,
                    atoms: side.into_iter().collect(),
                });
            }
        }
    }
    Ok(groups)
}

/// One molecule of the assembly experiment.
#[derive(Debug, Clone, Serialize)]
pub struct Assembled {
    pub frame: usize,
    pub formula: String,
    pub groups: Vec<Group>,
    /// Original bonds broken by moving the groups (perceived connectivity).
    pub broken: usize,
    /// Every original bond is back, and no other.
    pub reformed: bool,
    /// Mean displacement of the moved start and of the relaxed structure from the original (Å).
    pub start_displacement: f64,
    pub delta_p: f64,
    pub steps: usize,
    pub stop: Stop,
}

/// Bonded pairs by connectivity (distances only), as a set.
pub(crate) fn bonded_pairs(atoms: &Atoms) -> Result<BTreeSet<(usize, usize)>, ExploreError> {
    Ok(minima_bonds::connectivity(atoms)
        .map_err(|e| ExploreError::Input(e.to_string()))?
        .into_iter()
        .map(|c| (c.i, c.j))
        .collect())
}

/// Moves `count` (1 or 2) seeded disjoint functional groups of `molecule` by `distance` Å away
/// along their bonds and relaxes; `None` when the molecule has too few groups.
pub fn assemble(
    calculator: &dyn Calculator,
    molecule: &Atoms,
    frame: usize,
    count: usize,
    distance: f64,
    seed: u64,
    options: &RelaxOptions,
) -> Result<Option<Assembled>, ExploreError> {
    let original = with_fixed_bonds(molecule);
    let mut candidates = functional_groups(&original)?;
    candidates.shuffle(&mut ChaCha8Rng::seed_from_u64(seed.wrapping_add(frame as u64)));
    let mut groups: Vec<Group> = Vec::new();
    for group in candidates {
        let disjoint = groups.iter().all(|g| {
            g.atoms.iter().all(|a| !group.atoms.contains(a) && *a != group.anchor) && !g.atoms.contains(&group.anchor)
        });
        if groups.len() < count && disjoint {
            groups.push(group);
        }
    }
    if groups.len() < count {
        return Ok(None);
    }
    let mut positions: Vec<Vec3> = original.positions().to_vec();
    for g in &groups {
        let axis = original.displacement(g.anchor, g.head);
        let length = norm(axis);
        for &a in &g.atoms {
            for k in 0..3 {
                positions[a][k] += distance * axis[k] / length;
            }
        }
    }
    let mut start = original.clone();
    start
        .set_positions(positions)
        .map_err(|e| ExploreError::Input(e.to_string()))?;
    let before = bonded_pairs(&original)?;
    let broken = before.difference(&bonded_pairs(&start)?).count();
    let result =
        relax(calculator, &start, options, |_| {}).map_err(|e| ExploreError::Input(format!("frame {frame}: {e}")))?;
    Ok(Some(Assembled {
        frame,
        formula: original.formula(),
        groups,
        broken,
        reformed: bonded_pairs(&result.atoms)? == before,
        start_displacement: mean_displacement(&start, &original),
        delta_p: mean_displacement(&result.atoms, &original),
        steps: result.steps,
        stop: result.stop,
    }))
}

/// Mean, median, 90th percentile and largest of a sample.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub mean: f64,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let mut sorted: Vec<f64> = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if sorted.is_empty() {
                f64::NAN
            } else {
                sorted[((sorted.len() - 1) as f64 * q).round() as usize]
            }
        };
        Spread {
            mean: sorted.iter().sum::<f64>() / sorted.len().max(1) as f64,
            median: at(0.5),
            p90: at(0.9),
            max: at(1.0),
        }
    }
}

/// The fraction of `values` at or below each value, sorted: a distribution as a curve.
pub fn cumulative(values: &[f64]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    sorted
        .into_iter()
        .enumerate()
        .map(|(k, v)| (v, (k + 1) as f64 / n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ethanol() -> Atoms {
        // An ethanol geometry (Å): C0 (CH2), C1 (methyl), O2, then the hydrogens.
        let positions = vec![
            [-0.0041, -0.3922, 0.0000],
            [1.1988, 0.5305, 0.0000],
            [-1.2247, 0.3475, 0.0000],
            [0.0219, -1.0297, 0.8861],
            [0.0219, -1.0297, -0.8861],
            [1.1698, 1.1647, 0.8851],
            [1.1698, 1.1647, -0.8851],
            [2.1325, -0.0411, 0.0000],
            [-1.2486, 0.9357, 0.7711],
        ];
        Atoms::new(vec![6, 6, 8, 1, 1, 1, 1, 1, 1], positions).unwrap()
    }

    #[test]
    fn ethanol_has_the_methyl_and_hydroxyl_groups() {
        let groups = functional_groups(&ethanol()).unwrap();
        let mut heads: Vec<(usize, usize, usize)> = groups.iter().map(|g| (g.anchor, g.head, g.atoms.len())).collect();
        heads.sort();
        // C0–C1 cut: the methyl (C1 + 3 H); C0–O2 cut: the hydroxyl (O2 + H8).
        assert_eq!(heads, vec![(0, 1, 4), (0, 2, 2)]);
    }

    #[test]
    fn selection_takes_the_smallest_then_random_others() {
        let molecules: Vec<Atoms> = (1..=10)
            .rev()
            .map(|n| Atoms::new(vec![1; n], (0..n).map(|k| [k as f64, 0.0, 0.0]).collect()).unwrap())
            .collect();
        let chosen = select_molecules(&molecules, 3, 2, 0);
        assert_eq!(&chosen[..3], &[9, 8, 7]);
        assert_eq!(chosen.len(), 5);
        assert!(chosen[3..].iter().all(|&i| i < 7));
        assert_eq!(chosen, select_molecules(&molecules, 3, 2, 0));
    }

    #[test]
    fn noise_has_the_asked_spread() {
        let atoms = Atoms::new(vec![6; 2000], vec![[0.0; 3]; 2000]).unwrap();
        let moved = perturbed(&atoms, 0.05, 1);
        let values: Vec<f64> = moved.positions().iter().flatten().copied().collect();
        let variance = values.iter().map(|x| x * x).sum::<f64>() / values.len() as f64;
        assert!((variance.sqrt() - 0.05).abs() < 0.002, "{}", variance.sqrt());
    }
}
