//! Structure relaxation with any [`Calculator`]: FIRE exactly as ASE's `ase.optimize.FIRE`
//! (unit masses, the same defaults), and L-BFGS with a More–Thuente line search from argmin.
//! Positions only: a periodic cell is kept fixed. Both stop when the largest atomic force is
//! below `fmax` (ASE's criterion) or after `steps` steps, and say which.

use std::cell::RefCell;

use argmin::core::{
    CostFunction, Executor, Gradient, IterState, Problem, Solver, State, TerminationReason, TerminationStatus, KV,
};
use argmin::solver::linesearch::{LineSearch, MoreThuenteLineSearch};
use argmin::solver::quasinewton::LBFGS;
use minima_atoms::cell::{dot, norm};
use minima_atoms::{Atoms, Vec3};
use minima_label::{CalcError, Calculator, Labels};
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
}

impl Default for RelaxOptions {
    fn default() -> Self {
        RelaxOptions {
            optimizer: Optimizer::Fire,
            fmax: 0.05,
            steps: 1000,
            max_step: 0.2,
            memory: 10,
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
    let path = Path {
        calculator,
        atoms: start.clone(),
        evaluations: 0,
        accepted: None,
        observe: Box::new(observe),
    };
    match options.optimizer {
        Optimizer::Fire => fire(path, options),
        Optimizer::Lbfgs => lbfgs(path, options),
    }
}

/// The calculator, the structure being moved, and what the observer has seen.
struct Path<'a> {
    calculator: &'a dyn Calculator,
    atoms: Atoms,
    evaluations: usize,
    /// The last accepted configuration: (step, structure with labels, labels).
    accepted: Option<(usize, Atoms, Labels)>,
    observe: Box<dyn FnMut(&Step) + 'a>,
}

impl Path<'_> {
    fn evaluate(&mut self, positions: Vec<Vec3>) -> Result<Labels, ExploreError> {
        self.atoms
            .set_positions(positions)
            .map_err(|e| ExploreError::Input(format!("the optimiser produced invalid positions: {e}")))?;
        self.evaluations += 1;
        Ok(self.calculator.calculate_checked(&self.atoms)?)
    }

    /// Records the current structure (just evaluated to `labels`) as step `step`.
    fn accept(&mut self, step: usize, labels: Labels) {
        let mut atoms = self.atoms.clone();
        atoms.set_energy(labels.energy);
        atoms
            .set_forces(labels.forces.iter().flatten().copied().collect())
            .expect("one force per atom, checked by calculate_checked");
        (self.observe)(&Step {
            step,
            atoms: &atoms,
            labels: &labels,
            fmax: fmax(&labels.forces),
        });
        self.accepted = Some((step, atoms, labels));
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
    let mut positions = path.atoms.positions().to_vec();
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

/// The energy landscape as argmin sees it: parameters are the flattened positions, the
/// gradient is minus the forces. The last evaluation is kept, since argmin asks for the cost
/// and the gradient at the same point separately and the calculator gives both at once.
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

    /// Accepts the point `param` (evaluated last) as step `step`.
    fn accept(&self, step: usize, param: &[f64]) -> Result<(), argmin::core::Error> {
        let labels = self.labels(param)?;
        self.path.borrow_mut().accept(step, labels);
        Ok(())
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
        Ok(self.labels(param)?.forces.iter().flatten().map(|f| -f).collect())
    }
}

type LbfgsState = IterState<Vec<f64>, Vec<f64>, (), (), (), f64>;

/// More–Thuente, started at a step that moves no atom further than `max_step` and allowed to
/// extrapolate to four times that.
#[derive(Clone)]
struct CappedLineSearch {
    inner: MoreThuenteLineSearch<Vec<f64>, Vec<f64>, f64>,
    max_step: f64,
}

impl LineSearch<Vec<f64>, f64> for CappedLineSearch {
    fn search_direction(&mut self, direction: Vec<f64>) {
        let largest = largest_per_atom(&direction);
        if largest > 0.0 {
            let start = (self.max_step / largest).min(1.0);
            self.inner = self
                .inner
                .clone()
                .with_bounds(0.0, 4.0 * self.max_step / largest)
                .expect("positive bounds");
            self.inner.initial_step_length(start).expect("positive step");
        }
        self.inner.search_direction(direction);
    }

    fn initial_step_length(&mut self, step_length: f64) -> Result<(), argmin::core::Error> {
        self.inner.initial_step_length(step_length)
    }
}

impl<O> Solver<O, LbfgsState> for CappedLineSearch
where
    MoreThuenteLineSearch<Vec<f64>, Vec<f64>, f64>: Solver<O, LbfgsState>,
{
    const NAME: &'static str = "More-Thuente line search with a capped step";

    fn init(
        &mut self,
        problem: &mut Problem<O>,
        state: LbfgsState,
    ) -> Result<(LbfgsState, Option<KV>), argmin::core::Error> {
        self.inner.init(problem, state)
    }

    fn next_iter(
        &mut self,
        problem: &mut Problem<O>,
        state: LbfgsState,
    ) -> Result<(LbfgsState, Option<KV>), argmin::core::Error> {
        self.inner.next_iter(problem, state)
    }

    fn terminate(&mut self, state: &LbfgsState) -> TerminationStatus {
        self.inner.terminate(state)
    }
}

/// L-BFGS that stops on ASE's force criterion and shows each step to the landscape's observer.
struct UntilFmax<S> {
    inner: S,
    fmax: f64,
}

impl<'p, 'a, S> Solver<Landscape<'p, 'a>, LbfgsState> for UntilFmax<S>
where
    S: Solver<Landscape<'p, 'a>, LbfgsState>,
{
    const NAME: &'static str = "L-BFGS until fmax";

    fn init(
        &mut self,
        problem: &mut Problem<Landscape<'p, 'a>>,
        state: LbfgsState,
    ) -> Result<(LbfgsState, Option<KV>), argmin::core::Error> {
        let (state, kv) = self.inner.init(problem, state)?;
        let landscape = problem.problem.as_ref().expect("the problem is present");
        landscape.accept(0, state.get_param().expect("L-BFGS starts from a point"))?;
        Ok((state, kv))
    }

    fn next_iter(
        &mut self,
        problem: &mut Problem<Landscape<'p, 'a>>,
        state: LbfgsState,
    ) -> Result<(LbfgsState, Option<KV>), argmin::core::Error> {
        let step = state.get_iter() as usize + 1;
        let (state, kv) = self.inner.next_iter(problem, state)?;
        // argmin's L-BFGS ends the run when its line search fails, without handing the
        // problem back; there is then no new point to accept.
        if let Some(landscape) = problem.problem.as_ref() {
            landscape.accept(step, state.get_param().expect("L-BFGS keeps its point"))?;
        }
        Ok((state, kv))
    }

    fn terminate(&mut self, state: &LbfgsState) -> TerminationStatus {
        if state.get_gradient().is_some_and(|g| largest_per_atom(g) < self.fmax) {
            return TerminationStatus::Terminated(TerminationReason::SolverConverged);
        }
        self.inner.terminate(state)
    }
}

fn lbfgs(path: Path, options: &RelaxOptions) -> Result<Relaxation, ExploreError> {
    let start: Vec<f64> = path.atoms.positions().iter().flatten().copied().collect();
    let path = RefCell::new(path);
    let landscape = Landscape {
        path: &path,
        last: RefCell::new(None),
    };
    let line_search = CappedLineSearch {
        inner: MoreThuenteLineSearch::new(),
        max_step: options.max_step,
    };
    // argmin's own tolerances (gradient norm, cost change) are set to zero: only the force
    // criterion, the step limit or a failed line search end the run.
    let solver = UntilFmax {
        inner: LBFGS::new(line_search, options.memory.max(1))
            .with_tolerance_grad(0.0)
            .and_then(|s| s.with_tolerance_cost(0.0))
            .map_err(|e| ExploreError::Input(e.to_string()))?,
        fmax: options.fmax,
    };
    let result = Executor::new(landscape, solver)
        .configure(|state| state.param(start).max_iters(options.steps as u64))
        .ctrlc(false)
        .run();
    let stop = match result {
        Ok(result) => match result.state().get_termination_reason() {
            Some(TerminationReason::SolverConverged) => Stop::Converged,
            Some(TerminationReason::MaxItersReached) => Stop::StepLimit,
            Some(TerminationReason::SolverExit(why)) => Stop::Stalled(why.clone()),
            other => Stop::Stalled(format!("{other:?}")),
        },
        Err(error) => match error.downcast::<CalcOrOther>() {
            Ok(CalcOrOther(e)) if path.borrow().accepted.is_some() => Stop::Failed(e.to_string()),
            Ok(CalcOrOther(e)) => return Err(e),
            // A line search that cannot lower the energy ends the run where it stands.
            Err(other) => Stop::Stalled(other.to_string()),
        },
    };
    path.into_inner().finish(stop)
}

impl From<CalcError> for CalcOrOther {
    fn from(e: CalcError) -> Self {
        CalcOrOther(ExploreError::Calc(e))
    }
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
}
