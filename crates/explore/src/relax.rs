//! Structure relaxation with any [`Calculator`]: FIRE exactly as ASE's `ase.optimize.FIRE`
//! (unit masses, the same defaults), and L-BFGS with a More–Thuente line search from argmin,
//! whose memory is forgotten whenever it would lead uphill.
//! A periodic cell is kept fixed unless `cell` asks for it to relax too, as ASE's
//! `UnitCellFilter` does at zero pressure: the optimiser then moves the positions in the
//! undeformed frame and a deformation gradient D (cell = cell₀·D, r = r₀·D) scaled by the
//! number of atoms N, with generalised forces f·Dᵀ on the atoms and −D⁻ᵀ·Vσ/N on the cell
//! (σ the stress, ASE's sign). Both stop when the largest generalised force is below `fmax`
//! (ASE's criterion; with the cell it also bounds |Vσ|/N) or after `steps` steps, and say which.

use std::cell::RefCell;

use std::collections::VecDeque;

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::{LineSearch, MoreThuenteLineSearch};
use minima_atoms::cell::{dot, norm};
use minima_atoms::{Atoms, Vec3};
use minima_label::{Calculator, Labels};
use serde::Serialize;

use crate::ExploreError;

/// The optimisers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    Fire,
    Lbfgs,
}

impl std::str::FromStr for Optimizer {
    type Err = String;
    fn from_str(s: &str) -> Result<Optimizer, String> {
        match s {
            "fire" => Ok(Optimizer::Fire),
            "lbfgs" => Ok(Optimizer::Lbfgs),
            other => Err(format!("unknown optimiser {other:?}: choose fire or lbfgs")),
        }
    }
}

/// How a relaxation runs.
#[derive(Debug, Clone, Copy)]
pub struct RelaxOptions {
    pub optimizer: Optimizer,
    /// Converged when every atom's force is below this (eV/Å).
    pub fmax: f64,
    /// At most this many optimiser steps.
    pub steps: usize,
    /// Largest displacement of any atom in one step (Å): ASE's `maxstep`, 0.2 Å. L-BFGS starts
    /// each line search at a step that respects it, so a first step along a large force cannot
    /// throw atoms onto each other.
    pub max_step: f64,
    /// L-BFGS history length.
    pub memory: usize,
    /// Relax a periodic cell too (needs a cell periodic along all three axes and a calculator
    /// that gives the stress).
    pub cell: bool,
}

impl Default for RelaxOptions {
    fn default() -> Self {
        RelaxOptions {
            optimizer: Optimizer::Fire,
            fmax: 0.05,
            steps: 1000,
            max_step: 0.2,
            memory: 10,
            cell: false,
        }
    }
}

/// Why a relaxation stopped.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// Every force below `fmax`.
    Converged,
    /// `steps` reached first.
    StepLimit,
    /// The optimiser could make no further progress (a line search found no lower energy,
    /// typically at the noise floor of a model's energy) before `fmax` was reached.
    Stalled(String),
    /// The calculator failed on a structure the optimiser reached (a model that lets atoms
    /// collapse onto each other, an SCF that does not converge); the result is the last
    /// structure it did evaluate. A failure on the starting structure is an error instead.
    Failed(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Converged => write!(f, "converged"),
            Stop::StepLimit => write!(f, "step limit reached before convergence"),
            Stop::Stalled(why) => write!(f, "stalled before convergence: {why}"),
            Stop::Failed(why) => write!(f, "calculator failed during the relaxation: {why}"),
        }
    }
}

/// One accepted configuration of a relaxation, as its observer sees it.
pub struct Step<'a> {
    pub step: usize,
    /// Positions with the calculator's `energy` and `forces` set.
    pub atoms: &'a Atoms,
    pub labels: &'a Labels,
    pub fmax: f64,
}

/// The outcome of a relaxation.
#[derive(Debug, Clone)]
pub struct Relaxation {
    /// The final structure with its energy and forces set.
    pub atoms: Atoms,
    pub labels: Labels,
    pub steps: usize,
    /// Calculator calls (line searches make more than one per step).
    pub evaluations: usize,
    pub stop: Stop,
}

impl Relaxation {
    pub fn fmax(&self) -> f64 {
        fmax(&self.labels.forces)
    }
}

/// The largest atomic force (eV/Å).
pub fn fmax(forces: &[Vec3]) -> f64 {
    forces.iter().map(|&f| norm(f)).fold(0.0, f64::max)
}

/// The largest per-atom length of a flattened 3N vector.
fn largest_per_atom(flat: &[f64]) -> f64 {
    flat.chunks(3).map(|c| norm([c[0], c[1], c[2]])).fold(0.0, f64::max)
}

/// Relaxes `start` with `calculator`; `observe` sees every accepted configuration (for a
/// trajectory or a progress bar).
pub fn relax(
    calculator: &dyn Calculator,
    start: &Atoms,
    options: &RelaxOptions,
    observe: impl FnMut(&Step),
) -> Result<Relaxation, ExploreError> {
    if !(options.fmax > 0.0 && options.max_step > 0.0) {
        return Err(ExploreError::Input(format!(
            "fmax and the largest step must be positive (got {} eV/Å, {} Å)",
            options.fmax, options.max_step
        )));
    }
    // Atoms on one site have no meaningful energy: say so before any calculator runs (a
    // program such as xtb would only crash on them).
    minima_neighbors::check_separated(start.positions(), start.cell(), start.pbc())
        .map_err(|e| ExploreError::Input(e.to_string()))?;
    let frame = if options.cell {
        let cell = start.bulk_cell().ok_or_else(|| {
            ExploreError::Input("relaxing the cell needs a cell periodic along all three axes".into())
        })?;
        Frame::Cell {
            reference: *cell,
            reference_positions: start.positions().to_vec(),
            factor: start.len() as f64,
        }
    } else {
        Frame::Positions
    };
    let path = Path {
        calculator,
        atoms: start.clone(),
        frame,
        evaluations: 0,
        last: None,
        accepted: None,
        observe: Box::new(observe),
    };
    match options.optimizer {
        Optimizer::Fire => fire(path, options),
        Optimizer::Lbfgs => lbfgs(path, options),
    }
}

/// What the optimiser moves.
enum Frame {
    /// The positions (a cell stays as it is).
    Positions,
    /// Positions in the undeformed frame, then the three rows of N·D (see the module's
    /// documentation).
    Cell {
        reference: minima_atoms::Cell,
        reference_positions: Vec<Vec3>,
        factor: f64,
    },
}

/// The calculator, the structure being moved, and what the observer has seen.
struct Path<'a> {
    calculator: &'a dyn Calculator,
    atoms: Atoms,
    frame: Frame,
    evaluations: usize,
    /// The calculator's own labels of the last structure evaluated.
    last: Option<Labels>,
    /// The last accepted configuration: (step, structure with labels, labels).
    accepted: Option<(usize, Atoms, Labels)>,
    observe: Box<dyn FnMut(&Step) + 'a>,
}

impl Path<'_> {
    /// The optimiser's coordinates of the start.
    fn start(&self) -> Vec<Vec3> {
        match &self.frame {
            Frame::Positions => self.atoms.positions().to_vec(),
            Frame::Cell {
                reference_positions,
                factor,
                ..
            } => {
                let mut x = reference_positions.clone();
                x.extend((0..3).map(|i| std::array::from_fn(|k| if i == k { *factor } else { 0.0 })));
                x
            }
        }
    }

    /// The structure at the optimiser's coordinates `x`, evaluated: its labels with the
    /// forces the optimiser follows (generalised ones when the cell relaxes).
    fn evaluate(&mut self, x: Vec<Vec3>) -> Result<Labels, ExploreError> {
        let invalid = |e: String| ExploreError::Input(format!("the optimiser produced an invalid structure: {e}"));
        let deformation = match &self.frame {
            Frame::Positions => {
                self.atoms.set_positions(x).map_err(|e| invalid(e.to_string()))?;
                None
            }
            Frame::Cell { reference, factor, .. } => {
                let n = self.atoms.len();
                // D as a Cell: `cartesian` is the product r·D, `fractional` the product w·D⁻¹.
                let rows: [Vec3; 3] = std::array::from_fn(|i| x[n + i].map(|v| v / factor));
                let d = minima_atoms::Cell::new(rows).map_err(|e| invalid(format!("the deformation: {e}")))?;
                let vectors = reference.vectors().map(|v| d.cartesian(v));
                let cell = minima_atoms::Cell::new(vectors).map_err(|e| invalid(e.to_string()))?;
                let pbc = self.atoms.pbc();
                self.atoms = std::mem::take(&mut self.atoms).with_cell(cell, pbc);
                let positions = x[..n].iter().map(|&r| d.cartesian(r)).collect();
                self.atoms
                    .set_positions(positions)
                    .map_err(|e| invalid(e.to_string()))?;
                Some((d, *factor))
            }
        };
        self.evaluations += 1;
        let labels = self.calculator.calculate_checked(&self.atoms)?;
        self.last = Some(labels.clone());
        let Some((d, factor)) = deformation else {
            return Ok(labels);
        };
        let stress = labels.stress.ok_or_else(|| {
            ExploreError::Input(format!(
                "relaxing the cell needs the stress, which {} does not give",
                self.calculator.name()
            ))
        })?;
        let [xx, yy, zz, yz, xz, xy] = stress;
        let volume = self.atoms.cell().map_or(0.0, |c| c.volume());
        let virial = [[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]].map(|r| r.map(|s| s * volume));
        // f·Dᵀ: component k is f · (row k of D).
        let mut forces: Vec<Vec3> = labels
            .forces
            .iter()
            .map(|&f| d.vectors().map(|row| dot(f, row)))
            .collect();
        // −D⁻ᵀ·W/N with W = Vσ symmetric: the transpose of −W·D⁻¹/N, whose rows are those of W
        // in D's "fractional" coordinates.
        let w_d_inverse = virial.map(|row| d.fractional(row));
        forces.extend((0..3).map(|i| std::array::from_fn(|k| -w_d_inverse[k][i] / factor)));
        Ok(Labels { forces, ..labels })
    }

    /// Records the current structure (just evaluated; `labels` are the optimiser's) as step
    /// `step`, with the calculator's own labels.
    fn accept(&mut self, step: usize, labels: Labels) {
        let own = self.last.clone().unwrap_or_else(|| labels.clone());
        let mut atoms = self.atoms.clone();
        atoms.set_energy(own.energy);
        atoms
            .set_forces(own.forces.iter().flatten().copied().collect())
            .expect("one force per atom, checked by calculate_checked");
        if let Some(deviation) = &own.deviation {
            deviation.apply(&mut atoms).expect("one deviation per atom");
        }
        (self.observe)(&Step {
            step,
            atoms: &atoms,
            labels: &own,
            fmax: fmax(&labels.forces),
        });
        self.accepted = Some((step, atoms, own));
    }

    fn finish(self, stop: Stop) -> Result<Relaxation, ExploreError> {
        let (steps, atoms, labels) = self
            .accepted
            .ok_or_else(|| ExploreError::Input(format!("the optimiser failed at the start: {stop}")))?;
        Ok(Relaxation {
            atoms,
            labels,
            steps,
            evaluations: self.evaluations,
            stop,
        })
    }
}

/// ASE's FIRE (Bitzek et al., PRL 97, 170201 (2006)) with ASE's defaults: dt 0.1, dtmax 1.0,
/// Nmin 5, finc 1.1, fdec 0.5, astart 0.1, fa 0.99, unit masses, steps capped at `max_step`.
fn fire(mut path: Path, options: &RelaxOptions) -> Result<Relaxation, ExploreError> {
    const DT_MAX: f64 = 1.0;
    const N_MIN: usize = 5;
    const F_INC: f64 = 1.1;
    const F_DEC: f64 = 0.5;
    const A_START: f64 = 0.1;
    const F_A: f64 = 0.99;
    let (mut dt, mut a, mut since_reset) = (0.1, A_START, 0usize);
    let mut velocity: Option<Vec<Vec3>> = None;
    let mut positions = path.start();
    let mut step = 0;
    loop {
        let labels = match path.evaluate(positions.clone()) {
            Ok(labels) => labels,
            Err(e) if path.accepted.is_some() => return path.finish(Stop::Failed(e.to_string())),
            Err(e) => return Err(e),
        };
        let forces = labels.forces.clone();
        path.accept(step, labels);
        if fmax(&forces) < options.fmax {
            return path.finish(Stop::Converged);
        }
        if step >= options.steps {
            return path.finish(Stop::StepLimit);
        }
        let v = match velocity.as_mut() {
            None => velocity.insert(vec![[0.0; 3]; forces.len()]),
            Some(v) => {
                let power: f64 = dot_all(&forces, v);
                if power > 0.0 {
                    let (f_norm, v_norm) = (dot_all(&forces, &forces).sqrt(), dot_all(v, v).sqrt());
                    for (vi, fi) in v.iter_mut().zip(&forces) {
                        for k in 0..3 {
                            vi[k] = (1.0 - a) * vi[k] + a * fi[k] / f_norm * v_norm;
                        }
                    }
                    if since_reset > N_MIN {
                        dt = (dt * F_INC).min(DT_MAX);
                        a *= F_A;
                    }
                    since_reset += 1;
                } else {
                    v.iter_mut().for_each(|vi| *vi = [0.0; 3]);
                    a = A_START;
                    dt *= F_DEC;
                    since_reset = 0;
                }
                v
            }
        };
        let mut dr: Vec<Vec3> = v
            .iter_mut()
            .zip(&forces)
            .map(|(vi, fi)| {
                for k in 0..3 {
                    vi[k] += dt * fi[k];
                }
                vi.map(|x| dt * x)
            })
            .collect();
        // ASE caps the norm of the whole step vector at maxstep.
        let length = dot_all(&dr, &dr).sqrt();
        if length > options.max_step {
            dr.iter_mut()
                .for_each(|d| *d = d.map(|x| x * options.max_step / length));
        }
        for (r, d) in positions.iter_mut().zip(&dr) {
            for k in 0..3 {
                r[k] += d[k];
            }
        }
        step += 1;
    }
}

/// The dot product of two 3N vectors.
fn dot_all(a: &[Vec3], b: &[Vec3]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| dot(x, y)).sum()
}

/// The energy landscape as argmin's line search sees it: parameters are the flattened
/// positions, the gradient is minus the forces. The last evaluation is kept, since argmin asks
/// for the cost and the gradient at the same point separately and the calculator gives both at
/// once.
struct Landscape<'p, 'a> {
    path: &'p RefCell<Path<'a>>,
    last: RefCell<Option<(Vec<f64>, Labels)>>,
}

impl Landscape<'_, '_> {
    fn labels(&self, param: &[f64]) -> Result<Labels, CalcOrOther> {
        if let Some((p, labels)) = self.last.borrow().as_ref() {
            if p == param {
                return Ok(labels.clone());
            }
        }
        let positions = param.chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
        let labels = self.path.borrow_mut().evaluate(positions).map_err(CalcOrOther)?;
        *self.last.borrow_mut() = Some((param.to_vec(), labels.clone()));
        Ok(labels)
    }
}

/// An [`ExploreError`] carried through argmin's error type and recovered afterwards.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct CalcOrOther(ExploreError);

impl CostFunction for Landscape<'_, '_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, param: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        Ok(self.labels(param)?.energy)
    }
}

impl Gradient for Landscape<'_, '_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, param: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(gradient_of(&self.labels(param)?))
    }
}

/// Minus the forces, flattened.
fn gradient_of(labels: &Labels) -> Vec<f64> {
    labels.forces.iter().flatten().map(|f| -f).collect()
}

/// The dot product of two flattened vectors.
fn dot_flat(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The L-BFGS memory (Nocedal & Wright, Algorithm 7.4): the last steps `s` and the changes
/// `y` of the gradient they made, newest last.
struct History {
    capacity: usize,
    pairs: VecDeque<(Vec<f64>, Vec<f64>)>,
}

impl History {
    fn new(capacity: usize) -> History {
        History {
            capacity: capacity.max(1),
            pairs: VecDeque::new(),
        }
    }

    fn remember(&mut self, s: Vec<f64>, y: Vec<f64>) {
        if self.pairs.len() == self.capacity {
            self.pairs.pop_front();
        }
        self.pairs.push_back((s, y));
    }

    /// −H·g by the two-loop recursion, the initial inverse Hessian scaled by s·y / y·y of the
    /// newest pair (1 with no memory: steepest descent).
    fn direction(&self, gradient: &[f64]) -> Vec<f64> {
        let mut q = gradient.to_vec();
        let mut alphas = Vec::with_capacity(self.pairs.len());
        for (s, y) in self.pairs.iter().rev() {
            let alpha = dot_flat(s, &q) / dot_flat(y, s);
            q.iter_mut().zip(y).for_each(|(q, y)| *q -= alpha * y);
            alphas.push(alpha);
        }
        let gamma = self.pairs.back().map_or(1.0, |(s, y)| dot_flat(s, y) / dot_flat(y, y));
        let mut r: Vec<f64> = q.iter().map(|q| gamma * q).collect();
        for ((s, y), alpha) in self.pairs.iter().zip(alphas.into_iter().rev()) {
            let beta = dot_flat(y, &r) / dot_flat(y, s);
            r.iter_mut().zip(s).for_each(|(r, s)| *r += s * (alpha - beta));
        }
        r.iter().map(|r| -r).collect()
    }

    /// The direction of the next line search: [`History::direction`] when it leads downhill.
    /// When it does not (the memory holds curvature the landscape does not have here: a step
    /// that ended at the line search's bound in a concave region, a model's noisy energy, or a
    /// pair with no curvature at all), the memory is forgotten and the search goes straight
    /// down the gradient, as ASE's L-BFGS resets, rather than stalling on an uphill direction.
    fn descent_direction(&mut self, gradient: &[f64]) -> Vec<f64> {
        let direction = self.direction(gradient);
        // NaN (a pair with y·s = 0) fails the comparison too.
        if dot_flat(&direction, gradient) < 0.0 {
            return direction;
        }
        self.pairs.clear();
        gradient.iter().map(|g| -g).collect()
    }
}

/// L-BFGS on the positions, More–Thuente line searches, stopping on ASE's force criterion.
fn lbfgs(path: Path, options: &RelaxOptions) -> Result<Relaxation, ExploreError> {
    let mut x: Vec<f64> = path.start().into_iter().flatten().collect();
    let path = RefCell::new(path);
    let start = x.chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
    let mut labels = path.borrow_mut().evaluate(start)?;
    path.borrow_mut().accept(0, labels.clone());
    let mut history = History::new(options.memory);
    let mut step = 0;
    let stop = loop {
        let gradient = gradient_of(&labels);
        if largest_per_atom(&gradient) < options.fmax {
            break Stop::Converged;
        }
        if step >= options.steps {
            break Stop::StepLimit;
        }
        let direction = history.descent_direction(&gradient);
        match line_search(&path, &x, labels.energy, &gradient, direction, options.max_step) {
            Ok((next, next_labels)) => {
                let s = next.iter().zip(&x).map(|(a, b)| a - b).collect();
                let y = gradient_of(&next_labels)
                    .iter()
                    .zip(&gradient)
                    .map(|(a, b)| a - b)
                    .collect();
                history.remember(s, y);
                step += 1;
                path.borrow_mut().accept(step, next_labels.clone());
                (x, labels) = (next, next_labels);
            }
            Err(stop) => break stop,
        }
    };
    path.into_inner().finish(stop)
}

/// A More–Thuente search from `x` along `direction`, started at a step that moves no atom
/// further than `max_step` and allowed to extrapolate to four times that. Returns the point it
/// accepts with its labels, or why the relaxation stops there.
fn line_search(
    path: &RefCell<Path>,
    x: &[f64],
    energy: f64,
    gradient: &[f64],
    direction: Vec<f64>,
    max_step: f64,
) -> Result<(Vec<f64>, Labels), Stop> {
    let stalled = |e: argmin::core::Error| Stop::Stalled(format!("line search: {e}"));
    let largest = largest_per_atom(&direction);
    let mut search = MoreThuenteLineSearch::new()
        .with_bounds(0.0, 4.0 * max_step / largest)
        .map_err(stalled)?;
    search
        .initial_step_length((max_step / largest).min(1.0))
        .map_err(stalled)?;
    search.search_direction(direction);
    let landscape = Landscape {
        path,
        last: RefCell::new(None),
    };
    let mut result = Executor::new(landscape, search)
        .configure(|state| state.param(x.to_vec()).gradient(gradient.to_vec()).cost(energy))
        .ctrlc(false)
        .run()
        .map_err(|error| match error.downcast::<CalcOrOther>() {
            Ok(CalcOrOther(e)) => Stop::Failed(e.to_string()),
            Err(other) => stalled(other),
        })?;
    let next = result
        .state()
        .get_param()
        .cloned()
        .ok_or_else(|| Stop::Stalled("the line search returned no point".into()))?;
    let landscape = result
        .problem
        .take_problem()
        .ok_or_else(|| Stop::Stalled("the line search kept its problem".into()))?;
    let labels = landscape
        .labels(&next)
        .map_err(|CalcOrOther(e)| Stop::Failed(e.to_string()))?;
    Ok((next, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use minima_atoms::build::fcc_supercell;
    use minima_atoms::cell::sub;
    use minima_label::Emt;
    use rand::{Rng, SeedableRng};

    fn rattled(atoms: &Atoms, amplitude: f64, seed: u64) -> Atoms {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut out = atoms.clone();
        let moved = atoms
            .positions()
            .iter()
            .map(|r| r.map(|x| x + rng.random_range(-amplitude..amplitude)))
            .collect();
        out.set_positions(moved).unwrap();
        out
    }

    /// Largest deviation from `reference` after removing the mean displacement (a crystal
    /// may drift as a whole).
    fn deviation(atoms: &Atoms, reference: &Atoms) -> f64 {
        let d: Vec<Vec3> = atoms
            .positions()
            .iter()
            .zip(reference.positions())
            .map(|(&a, &b)| sub(a, b))
            .collect();
        let mean: Vec3 = std::array::from_fn(|k| d.iter().map(|x| x[k]).sum::<f64>() / d.len() as f64);
        d.iter().map(|&x| norm(sub(x, mean))).fold(0.0, f64::max)
    }

    #[test]
    fn both_optimisers_bring_a_rattled_crystal_back_to_its_lattice() {
        // The perfect fcc lattice is EMT's minimum at fixed cell: the physics, not the
        // optimiser, says where the atoms belong.
        let perfect = fcc_supercell(29, 3.6, 2);
        let start = rattled(&perfect, 0.15, 4);
        for optimizer in [Optimizer::Fire, Optimizer::Lbfgs] {
            let options = RelaxOptions {
                optimizer,
                fmax: 1e-3,
                ..RelaxOptions::default()
            };
            let mut seen = 0;
            let result = relax(&Emt::new(), &start, &options, |_| seen += 1).unwrap();
            assert_eq!(result.stop, Stop::Converged, "{optimizer:?}");
            assert!(result.fmax() < 1e-3);
            assert_eq!(seen, result.steps + 1);
            assert!(deviation(&result.atoms, &perfect) < 1e-3, "{optimizer:?}");
            assert_eq!(result.atoms.energy(), Some(result.labels.energy));
        }
    }

    #[test]
    fn a_step_limit_is_reported_as_such() {
        let start = rattled(&fcc_supercell(29, 3.6, 2), 0.15, 5);
        for optimizer in [Optimizer::Fire, Optimizer::Lbfgs] {
            let options = RelaxOptions {
                optimizer,
                fmax: 1e-6,
                steps: 3,
                ..RelaxOptions::default()
            };
            let result = relax(&Emt::new(), &start, &options, |_| {}).unwrap();
            assert_eq!(
                (result.stop.clone(), result.steps),
                (Stop::StepLimit, 3),
                "{optimizer:?}"
            );
        }
    }

    #[test]
    fn calculator_failures_are_errors_not_results() {
        let iron = Atoms::new(vec![26, 26], vec![[0.0; 3], [2.5, 0.0, 0.0]]).unwrap();
        for optimizer in [Optimizer::Fire, Optimizer::Lbfgs] {
            let options = RelaxOptions {
                optimizer,
                ..RelaxOptions::default()
            };
            let err = relax(&Emt::new(), &iron, &options, |_| {}).unwrap_err();
            assert!(err.to_string().contains("Fe"), "{err}");
        }
    }

    /// A double well along x for one atom, E = x⁴/4 − x²/2 (minima at x = ±1), flat in y and z.
    struct DoubleWell;

    impl Calculator for DoubleWell {
        fn name(&self) -> &str {
            "double well"
        }
        fn calculate(&self, atoms: &Atoms) -> Result<Labels, minima_label::CalcError> {
            let x = atoms.positions()[0][0];
            Ok(Labels {
                energy: x.powi(4) / 4.0 - x * x / 2.0,
                forces: vec![[x - x.powi(3), 0.0, 0.0]],
                energies: None,
                stress: None,
                deviation: None,
            })
        }
    }

    #[test]
    fn lbfgs_forgets_its_memory_instead_of_stalling_on_an_uphill_direction() {
        // Started on the concave top of the barrier, the first line search runs to its bound
        // with the gradient still growing (y·s < 0); the memory then points back uphill.
        let start = Atoms::new(vec![1], vec![[0.05, 0.0, 0.0]]).unwrap();
        let options = RelaxOptions {
            optimizer: Optimizer::Lbfgs,
            fmax: 1e-4,
            ..RelaxOptions::default()
        };
        let result = relax(&DoubleWell, &start, &options, |_| {}).unwrap();
        assert_eq!(result.stop, Stop::Converged);
        assert!(
            (result.atoms.positions()[0][0] - 1.0).abs() < 1e-3,
            "{:?}",
            result.atoms.positions()
        );
    }

    #[test]
    fn an_uphill_direction_resets_the_memory_to_steepest_descent() {
        // One pair of negative curvature (the gradient fell along the step): its inverse
        // Hessian is negative and sends the search uphill.
        let mut history = History::new(5);
        history.remember(vec![0.8, 0.0, 0.0], vec![-0.2, 0.0, 0.0]);
        let gradient = [-0.25, 0.1, 0.0];
        assert!(dot_flat(&history.direction(&gradient), &gradient) > 0.0);
        assert_eq!(history.descent_direction(&gradient), vec![0.25, -0.1, -0.0]);
        assert!(history.pairs.is_empty());
        // A pair of positive curvature keeps its memory and leads downhill.
        history.remember(vec![0.1, 0.0, 0.0], vec![0.3, 0.0, 0.0]);
        let direction = history.descent_direction(&gradient);
        assert!(dot_flat(&direction, &gradient) < 0.0 && history.pairs.len() == 1);
        assert!((direction[0] - 0.25 / 3.0).abs() < 1e-12, "{direction:?}");
    }
}
