//! Does a calculator's relaxation land on the reference's minimum? The test a potential for
//! finding minima must pass: each structure is relaxed with the reference (its minimum), then
//! from several distorted starts — rattled, compressed, stretched — with the calculator under
//! test, and each end point is compared with that minimum after optimal superposition.
//!
//! - A start is made from the input geometry: `rattle:σ` moves every coordinate by a Gaussian
//!   deviate of standard deviation σ (Å), `scale:f` scales the structure about its centroid.
//! - ΔP is the mean distance of each atom from its place in the reference minimum after the
//!   Kabsch superposition (rotation and translation minimising the squared deviations, by
//!   Horn's quaternion method): a relaxation from a distorted start may end rotated, which
//!   costs a rotation-invariant potential nothing. Atoms are not permuted.
//! - For a crystal (a cell periodic along all three axes) the cell relaxes too, for the
//!   reference and for the calculator under test. ΔP is then the mean distance of each atom
//!   from its place in the reference minimum in fractional coordinates (the minimum image,
//!   the mean translation removed, measured in the reference's cell), and `cell_strain` the
//!   largest entry of C_ref⁻¹·C − 1: how far the lattice itself landed from the reference's.
//! - A molecule or cluster that did not blow up is *rebonded* when its end has other bonds
//!   than the reference minimum (connectivity from distances, as RDKit perceives it,
//!   [`minima_bonds::connectivity`]): it relaxed to another molecule, an isomer,
//!   not to an offset copy of the reference's. Its ΔP then measures the isomer, not the
//!   potential's accuracy at the minimum, so the table counts them apart.
//! - A relaxation *blew up* when the calculator failed on a structure it reached, two atoms
//!   came closer than `collapse_distance` (0.5 Å: no chemical bond is that short), or its
//!   final energy lies more than `collapse_energy` (5 eV) below the calculator's own energy at
//!   the reference minimum: then it found a hole, not a minimum.

use minima_atoms::cell::{norm, sub};
use minima_atoms::{Atoms, Value, Vec3};
use minima_label::run::FrameJob;
use minima_label::{CalcError, Calculator};
use serde::Serialize;

use crate::benchmark::{bonded_pairs, perturbed, Spread};
use crate::curve::with_fixed_bonds;
use crate::failures::FrameFailures;
use crate::relax::{relax, RelaxOptions, Stop};
use crate::ExploreError;

/// How a start is made from the input geometry.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// Gaussian displacement of every coordinate, standard deviation in Å.
    Rattle(f64),
    /// Isotropic scaling about the centroid.
    Scale(f64),
}

impl Start {
    /// The start of `atoms` (frame `frame` of the input), seeded by `seed` and the frame.
    pub fn apply(&self, atoms: &Atoms, seed: u64, frame: usize) -> Atoms {
        match *self {
            Start::Rattle(sigma) => perturbed(atoms, sigma, seed.wrapping_add(frame as u64)),
            Start::Scale(factor) => minima_data::generate::scaled(atoms, factor),
        }
    }
}

impl std::fmt::Display for Start {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Start::Rattle(sigma) => write!(f, "rattle:{sigma}"),
            Start::Scale(factor) => write!(f, "scale:{factor}"),
        }
    }
}

impl std::str::FromStr for Start {
    type Err = String;

    fn from_str(text: &str) -> Result<Start, String> {
        let (kind, value) = text
            .split_once(':')
            .ok_or_else(|| format!("start `{text}`: expected rattle:SIGMA or scale:FACTOR"))?;
        let value: f64 = value
            .parse()
            .map_err(|_| format!("start `{text}`: `{value}` is not a number"))?;
        match kind {
            "rattle" if value.is_finite() && value >= 0.0 => Ok(Start::Rattle(value)),
            "scale" if value.is_finite() && value > 0.0 => Ok(Start::Scale(value)),
            "rattle" | "scale" => Err(format!("start `{text}`: out of range")),
            _ => Err(format!("start `{text}`: expected rattle:SIGMA or scale:FACTOR")),
        }
    }
}

/// When a relaxation counts as blown up (see the module's documentation).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Collapse {
    /// Å.
    pub distance: f64,
    /// eV below the calculator's energy at the reference minimum.
    pub energy: f64,
}

impl Default for Collapse {
    fn default() -> Self {
        Collapse {
            distance: 0.5,
            energy: 5.0,
        }
    }
}

/// One relaxation from one start.
#[derive(Debug, Clone, Serialize)]
pub struct Landing {
    pub frame: usize,
    pub formula: String,
    pub start: Start,
    pub calculator: String,
    pub stop: Stop,
    pub steps: usize,
    pub blown_up: bool,
    /// ΔP after superposition on the reference minimum (Å); absent when the relaxation blew up.
    pub delta_p: Option<f64>,
    /// Crystals: the largest entry of C_ref⁻¹·C − 1 (dimensionless); absent for molecules and
    /// clusters, and when the relaxation blew up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell_strain: Option<f64>,
    /// Final energy minus the calculator's own energy at the reference minimum (eV).
    pub delta_e: f64,
    /// The shortest interatomic distance at the end (Å).
    pub shortest_distance: f64,
    /// Whether the end's bonds differ from the reference minimum's; absent for crystals and
    /// when the relaxation blew up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebonded: Option<bool>,
}

impl Landing {
    pub fn converged(&self) -> bool {
        self.stop == Stop::Converged
    }
}

/// The reference minimum of `atoms`: relaxed with `reference` (bonds fixed first, for models
/// that read them).
pub fn reference_minimum(
    reference: &dyn Calculator,
    atoms: &Atoms,
    options: &RelaxOptions,
) -> Result<Atoms, ExploreError> {
    let result = relax(reference, &with_fixed_bonds(atoms), options, |_| {})?;
    if result.stop != Stop::Converged {
        return Err(ExploreError::Input(format!(
            "the reference ({}) did not reach its minimum: {}",
            reference.name(),
            result.stop
        )));
    }
    Ok(result.atoms)
}

/// Relaxes `start` with `calculator` and compares the end with `minimum`.
pub fn land(
    calculator: &dyn Calculator,
    minimum: &Atoms,
    start: &Atoms,
    kind: Start,
    frame: usize,
    options: &RelaxOptions,
    collapse: Collapse,
) -> Result<Landing, ExploreError> {
    let at_minimum = calculator.calculate_checked(minimum)?.energy;
    let crystal = minimum.bulk_cell();
    let options = RelaxOptions {
        cell: crystal.is_some(),
        ..*options
    };
    let result = relax(calculator, start, &options, |_| {})?;
    let shortest = result.atoms.closest_pair().map_or(f64::INFINITY, |(_, _, d)| d);
    let delta_e = result.labels.energy - at_minimum;
    let blown_up = matches!(result.stop, Stop::Failed(_)) || shortest < collapse.distance || delta_e < -collapse.energy;
    let (delta_p, cell_strain) = match (blown_up, crystal, result.atoms.cell()) {
        (true, _, _) => (None, None),
        (false, Some(reference), Some(cell)) => {
            let (delta_p, strain) = lattice_displacement(&result.atoms, cell, minimum, reference);
            (Some(delta_p), Some(strain))
        }
        _ => (
            Some(superposed_displacement(result.atoms.positions(), minimum.positions())),
            None,
        ),
    };
    let rebonded = match (blown_up, crystal) {
        (false, None) => Some(bonded_pairs(&result.atoms)? != bonded_pairs(minimum)?),
        _ => None,
    };
    Ok(Landing {
        frame,
        rebonded,
        formula: minimum.formula(),
        start: kind,
        calculator: calculator.name().to_string(),
        delta_p,
        cell_strain,
        stop: result.stop,
        steps: result.steps,
        blown_up,
        delta_e,
        shortest_distance: shortest,
    })
}

/// The reference minimum of each frame of `frames` at `chosen` (a crystal's with its cell
/// relaxed too), `None` where the reference did not get there (recorded in `failures`).
pub fn reference_minima(
    reference: &dyn Calculator,
    frames: &[Atoms],
    chosen: &[usize],
    options: &RelaxOptions,
    failures: &mut FrameFailures,
) -> Vec<Option<Atoms>> {
    let bar = minima_io::progress::task(chosen.len() as u64, "reference minima");
    let minima = chosen
        .iter()
        .map(|&frame| {
            let atoms = &frames[frame];
            let options = RelaxOptions {
                cell: atoms.bulk_cell().is_some(),
                ..*options
            };
            let minimum = reference_minimum(reference, atoms, &options);
            bar.inc(1);
            minimum.map_err(|e| failures.push(frame, e)).ok()
        })
        .collect();
    bar.finish_and_clear();
    minima
}

/// What [`landings`] relaxes: from each kind of start of each frame that has a reference
/// minimum, with each calculator.
pub struct Benchmark<'a> {
    pub frames: &'a [Atoms],
    /// The frames benchmarked, and the reference minimum of each (`None`: left out).
    pub chosen: &'a [usize],
    pub minima: &'a [Option<Atoms>],
    pub calculators: &'a [&'a dyn Calculator],
    pub starts: &'a [Start],
    /// Seeds the rattled starts (with the frame index).
    pub seed: u64,
    pub options: RelaxOptions,
    pub collapse: Collapse,
}

/// Every relaxation of `benchmark`, and the starts it made (each recording its `frame` and
/// `start`, so that other codes can relax the same ones); a calculator that fails on a start
/// is recorded in `failures`.
pub fn landings(benchmark: &Benchmark, failures: &mut FrameFailures) -> (Vec<Landing>, Vec<Atoms>) {
    let b = benchmark;
    let mut starts_made = Vec::new();
    let mut landings = Vec::new();
    let total = b.calculators.len() * b.starts.len() * b.minima.iter().flatten().count();
    let bar = minima_io::progress::task(total as u64, "bench-minima");
    for (&frame, minimum) in b.chosen.iter().zip(b.minima) {
        let Some(minimum) = minimum else { continue };
        let base = with_fixed_bonds(&b.frames[frame]);
        for &kind in b.starts {
            let mut start = kind.apply(&base, b.seed, frame);
            for calculator in b.calculators {
                match land(*calculator, minimum, &start, kind, frame, &b.options, b.collapse) {
                    Ok(landing) => {
                        bar.set_message(format!("{} {kind} ΔP {:?}", landing.formula, landing.delta_p));
                        landings.push(landing);
                    }
                    Err(e) => failures.push(frame, format!("{} from {kind}: {e}", calculator.name())),
                }
                bar.inc(1);
            }
            start.info.insert("frame".into(), Value::Int(frame as i64));
            start.info.insert("start".into(), Value::Str(kind.to_string()));
            starts_made.push(start);
        }
    }
    bar.finish_and_clear();
    (landings, starts_made)
}

/// The table of [`summarize`]'s rows, as the command prints it.
pub fn table(rows: &[Row]) -> String {
    let mut text = format!(
        "{:<28} {:<12} {:>6} {:>9} {:>10} {:>9} {:>12} {:>10}\n",
        "calculator", "start", "runs", "blown up", "converged", "rebonded", "ΔP median Å", "ΔP 90% Å"
    );
    for row in rows {
        let (median, p90) = row.delta_p.map_or((f64::NAN, f64::NAN), |p| (p.median, p.p90));
        text += &format!(
            "{:<28} {:<12} {:>6} {:>9} {:>10} {:>9} {:>12.4} {:>10.4}\n",
            row.calculator,
            row.start.to_string(),
            row.relaxations,
            row.blown_up,
            row.converged,
            row.rebonded,
            median,
            p90
        );
    }
    text
}

/// A [`FrameJob`] for data where a potential's relaxations go (`minima data explored`): each
/// frame (a reference minimum) is distorted by `start` (seeded by `seed` and the frame) and
/// relaxed by `explorer` (a model, typically); the frames written are points of that
/// relaxation, unlabelled, for the reference to label: at each fraction of `path` of its steps
/// (rounded, at least the first step; `[1.0]`, the end only, by default), `equilibrium=F`, its
/// provenance kept ([`minima_data::sampling::displaced`]), and `explored_start`,
/// `explored_by`, `explored_step`, `explored_steps`, `explored_stop`. Points along the path
/// teach what a relaxation crosses on its way, where the end alone teaches where it stops: a
/// potential's path from a stretched start leaves the region its data covered within a few
/// steps. A point with two atoms closer than [`minima_data::sampling::min_distance`] (a
/// collapse, nothing a reference should label) is left out; a relaxation with no other point,
/// or one that failed, is a failure of the frame.
pub struct Explored<'a> {
    pub explorer: &'a dyn Calculator,
    pub start: Start,
    pub seed: u64,
    pub options: RelaxOptions,
    /// Fractions in (0, 1] of the relaxation's steps at which a frame is kept.
    pub path: Vec<f64>,
    /// The input's name, for the provenance of frames that carry none.
    pub source: String,
}

impl Explored<'_> {
    /// The steps of a relaxation of `steps` steps that `path` keeps, ascending, each once.
    fn kept_steps(&self, steps: usize) -> Vec<usize> {
        let mut kept: Vec<usize> = self
            .path
            .iter()
            .map(|f| ((f * steps as f64).round() as usize).clamp(1.min(steps), steps))
            .collect();
        kept.sort_unstable();
        kept.dedup();
        kept
    }
}

impl FrameJob for Explored<'_> {
    fn name(&self) -> &str {
        self.explorer.name()
    }

    fn process(&self, atoms: &Atoms, index: usize) -> Result<Vec<Atoms>, CalcError> {
        let start = self.start.apply(&with_fixed_bonds(atoms), self.seed, index);
        let mut visited: Vec<(usize, Vec<Vec3>)> = Vec::new();
        let result = relax(self.explorer, &start, &self.options, |step| {
            visited.push((step.step, step.atoms.positions().to_vec()))
        })
        .map_err(|e| match e {
            ExploreError::Calc(e) => e,
            other => CalcError::Failed(other.to_string()),
        })?;
        if let Stop::Failed(reason) = &result.stop {
            return Err(CalcError::Failed(format!(
                "the relaxation from {} failed: {reason}",
                self.start
            )));
        }
        let mut frames = Vec::new();
        let mut collapse = None;
        for step in self.kept_steps(result.steps) {
            // The last configuration accepted at or before `step` (a line search accepts
            // fewer configurations than it takes steps).
            let positions = match visited.iter().rev().find(|(s, _)| *s <= step) {
                Some((_, p)) if step < result.steps => p.clone(),
                _ => result.atoms.positions().to_vec(),
            };
            let mut out = minima_data::sampling::displaced(atoms, positions, &self.source, index);
            if let Some((i, j, d)) = minima_data::sampling::too_close(&out) {
                collapse = Some(format!(
                    "the relaxation from {} by {} collapsed: atoms {i} and {j} are {d:.2} Å apart at step {step}",
                    self.start,
                    self.explorer.name()
                ));
                continue;
            }
            let info = &mut out.info;
            info.insert("explored_start".into(), Value::Str(self.start.to_string()));
            info.insert("explored_by".into(), Value::Str(self.explorer.name().into()));
            info.insert("explored_step".into(), Value::Int(step as i64));
            info.insert("explored_steps".into(), Value::Int(result.steps as i64));
            info.insert("explored_stop".into(), Value::Str(result.stop.to_string()));
            if let Start::Rattle(_) = self.start {
                info.insert(
                    "explored_seed".into(),
                    Value::Int(self.seed.wrapping_add(index as u64) as i64),
                );
            }
            frames.push(out);
        }
        match (frames.is_empty(), collapse) {
            (true, Some(reason)) => Err(CalcError::Input(reason)),
            _ => Ok(frames),
        }
    }
}

/// ΔP of a crystal (Å) and its cell strain, as the module's documentation defines them.
fn lattice_displacement(
    atoms: &Atoms,
    cell: &minima_atoms::Cell,
    minimum: &Atoms,
    reference: &minima_atoms::Cell,
) -> (f64, f64) {
    let wrap = |x: f64| x - x.round();
    let shifts: Vec<Vec3> = atoms
        .positions()
        .iter()
        .zip(minimum.positions())
        .map(|(&r, &r0)| {
            let (s, s0) = (cell.fractional(r), reference.fractional(r0));
            std::array::from_fn(|k| wrap(s[k] - s0[k]))
        })
        .collect();
    let n = shifts.len().max(1) as f64;
    let mean: Vec3 = std::array::from_fn(|k| shifts.iter().map(|d| d[k]).sum::<f64>() / n);
    let delta_p = shifts
        .iter()
        .map(|d| norm(reference.cartesian(std::array::from_fn(|k| wrap(d[k] - mean[k])))))
        .sum::<f64>()
        / n;
    // C_ref⁻¹·C in fractional terms: row i of C expressed in the reference's lattice.
    let strain = (0..3)
        .flat_map(|i| {
            let row = reference.fractional(cell.vectors()[i]);
            (0..3).map(move |k| (row[k] - if i == k { 1.0 } else { 0.0 }).abs())
        })
        .fold(0.0, f64::max);
    (delta_p, strain)
}

/// The figures of one calculator from one kind of start.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub calculator: String,
    pub start: Start,
    pub relaxations: usize,
    pub blown_up: usize,
    pub converged: usize,
    /// Relaxations that ended with other bonds than the reference minimum (an isomer).
    pub rebonded: usize,
    /// ΔP over the relaxations that did not blow up (Å).
    pub delta_p: Option<Spread>,
}

/// One row per calculator and start, in the order they first appear.
pub fn summarize(landings: &[Landing]) -> Vec<Row> {
    let mut keys: Vec<(String, Start)> = Vec::new();
    for l in landings {
        if !keys.iter().any(|(c, s)| *c == l.calculator && *s == l.start) {
            keys.push((l.calculator.clone(), l.start));
        }
    }
    keys.into_iter()
        .map(|(calculator, start)| {
            let these: Vec<&Landing> = landings
                .iter()
                .filter(|l| l.calculator == calculator && l.start == start)
                .collect();
            let delta_p: Vec<f64> = these.iter().filter_map(|l| l.delta_p).collect();
            Row {
                relaxations: these.len(),
                blown_up: these.iter().filter(|l| l.blown_up).count(),
                converged: these.iter().filter(|l| l.converged()).count(),
                rebonded: these.iter().filter(|l| l.rebonded == Some(true)).count(),
                delta_p: (!delta_p.is_empty()).then(|| Spread::of(&delta_p)),
                calculator,
                start,
            }
        })
        .collect()
}

/// The mean distance between corresponding atoms of `moved` and `target` after `moved` is
/// rotated and translated onto `target` to minimise the squared deviations (Kabsch; the
/// rotation from Horn's quaternion: the top eigenvector of a symmetric 4 × 4 matrix built from
/// the cross-covariance, which is a proper rotation by construction).
pub fn superposed_displacement(moved: &[Vec3], target: &[Vec3]) -> f64 {
    assert_eq!(moved.len(), target.len(), "superposition of structures of one size");
    let n = moved.len().max(1) as f64;
    let centroid = |points: &[Vec3]| {
        let mut c = [0.0; 3];
        for p in points {
            for k in 0..3 {
                c[k] += p[k] / n;
            }
        }
        c
    };
    let (cm, ct) = (centroid(moved), centroid(target));
    let a: Vec<Vec3> = moved.iter().map(|&p| sub(p, cm)).collect();
    let b: Vec<Vec3> = target.iter().map(|&p| sub(p, ct)).collect();
    let mut s = [[0.0; 3]; 3];
    for (p, q) in a.iter().zip(&b) {
        for i in 0..3 {
            for j in 0..3 {
                s[i][j] += p[i] * q[j];
            }
        }
    }
    let [[xx, xy, xz], [yx, yy, yz], [zx, zy, zz]] = s;
    #[rustfmt::skip]
    let horn = vec![
        xx + yy + zz, yz - zy,       zx - xz,       xy - yx,
        yz - zy,      xx - yy - zz,  xy + yx,       zx + xz,
        zx - xz,      xy + yx,       -xx + yy - zz, yz + zy,
        xy - yx,      zx + xz,       yz + zy,       -xx - yy + zz,
    ];
    let (values, vectors) = minima_data::sampling::symmetric_eigen(horn, 4);
    let top = (0..4).max_by(|&i, &j| values[i].total_cmp(&values[j])).unwrap_or(0);
    let q: Vec<f64> = (0..4).map(|k| vectors[k * 4 + top]).collect();
    let (w, x, y, z) = (q[0], q[1], q[2], q[3]);
    let rotation = [
        [
            w * w + x * x - y * y - z * z,
            2.0 * (x * y - w * z),
            2.0 * (x * z + w * y),
        ],
        [
            2.0 * (x * y + w * z),
            w * w - x * x + y * y - z * z,
            2.0 * (y * z - w * x),
        ],
        [
            2.0 * (x * z - w * y),
            2.0 * (y * z + w * x),
            w * w - x * x - y * y + z * z,
        ],
    ];
    a.iter()
        .zip(&b)
        .map(|(p, q)| {
            let r: Vec3 = std::array::from_fn(|i| (0..3).map(|j| rotation[i][j] * p[j]).sum());
            norm(sub(r, *q))
        })
        .sum::<f64>()
        / n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotated(points: &[Vec3], angle: f64, shift: Vec3) -> Vec<Vec3> {
        // About the axis (1, 1, 1)/√3 (Rodrigues), then shifted.
        let k = [1.0 / 3f64.sqrt(); 3];
        let (c, s) = (angle.cos(), angle.sin());
        points
            .iter()
            .map(|p| {
                let dot: f64 = (0..3).map(|i| k[i] * p[i]).sum();
                let cross = [
                    k[1] * p[2] - k[2] * p[1],
                    k[2] * p[0] - k[0] * p[2],
                    k[0] * p[1] - k[1] * p[0],
                ];
                std::array::from_fn(|i| p[i] * c + cross[i] * s + k[i] * dot * (1.0 - c) + shift[i])
            })
            .collect()
    }

    fn molecule() -> Vec<Vec3> {
        vec![
            [0.0, 0.0, 0.0],
            [1.5, 0.1, -0.2],
            [-0.4, 1.3, 0.3],
            [0.2, -0.5, 1.1],
            [2.2, 1.0, 0.7],
        ]
    }

    #[test]
    fn a_rigid_motion_costs_nothing() {
        let a = molecule();
        for angle in [0.3, 2.0, 3.1] {
            let b = rotated(&a, angle, [4.0, -2.0, 7.5]);
            assert!(superposed_displacement(&b, &a) < 1e-10);
        }
    }

    #[test]
    fn a_deformation_is_measured_after_alignment() {
        let a = molecule();
        let mut b = a.clone();
        b[4][0] += 0.5;
        let without_motion = superposed_displacement(&b, &a);
        let with_motion = superposed_displacement(&rotated(&b, 1.2, [1.0, 2.0, 3.0]), &a);
        assert!((without_motion - with_motion).abs() < 1e-10);
        // The mean after alignment is at most the aligned root-mean-square deviation, which
        // alignment makes at most the unaligned one (0.5 / √5 Å); a deformation is no rigid
        // motion.
        assert!(
            without_motion > 0.02 && without_motion <= 0.5 / 5f64.sqrt() + 1e-12,
            "{without_motion}"
        );
    }

    #[test]
    fn a_mirror_image_is_not_superposed() {
        // A chiral arrangement and its mirror image differ by no proper rotation.
        let a = molecule();
        let mirrored: Vec<Vec3> = a.iter().map(|p| [-p[0], p[1], p[2]]).collect();
        assert!(superposed_displacement(&mirrored, &a) > 0.05);
    }

    #[test]
    fn starts_parse_and_refuse_nonsense() {
        assert_eq!("rattle:0.1".parse::<Start>(), Ok(Start::Rattle(0.1)));
        assert_eq!("scale:1.5".parse::<Start>(), Ok(Start::Scale(1.5)));
        for bad in ["scale:0", "scale:-1", "rattle:nan", "shake:0.1", "scale", "scale:x"] {
            assert!(bad.parse::<Start>().is_err(), "{bad}");
        }
    }
}
