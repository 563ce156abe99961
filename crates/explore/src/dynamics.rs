//! Molecular dynamics with any [`Calculator`] (a trained model or a reference method).
//!
//! - NVE: velocity Verlet.
//! - NVT: Langevin dynamics in the BAOAB splitting (Leimkuhler & Matthews 2013), or Bussi's
//!   stochastic velocity rescaling (Bussi, Donadio & Parrinello 2007), which keeps the
//!   dynamics deterministic between its rescalings.
//! - NPT (periodic cells): isotropic stochastic cell rescaling (Bernetti & Bussi 2020) on top
//!   of either thermostat, first order in the timestep, one force evaluation per step.
//!
//! Units: Å, fs, eV, amu, K; pressures and compressibilities in GPa at the interface.
//!
//! [`run`] writes a trajectory (extxyz every `every` steps: positions, cell, ASE's `momenta`,
//! the energy and forces, and `md_step`, `time` in fs, `temperature`) and a CSV log at the same
//! steps, appending each as it goes. Rerunning the same run continues from the trajectory's
//! last frame (a frame cut short by a kill is dropped first, and the log cut back to it). The
//! random numbers of step s come from ChaCha8 seeded with the seed, stream s, so a resumed
//! run draws what an uninterrupted one would.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use minima_atoms::{ArrayData, Atoms, Calculator, Labels, Value, Vec3};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::ExploreError;

/// Boltzmann's constant, eV/K (CODATA 2018).
pub const BOLTZMANN: f64 = 8.617_333_262e-5;
/// 1 amu·Å²/fs² in eV (CODATA 2018): kinetic energies of velocities in Å/fs.
pub const AMU_A2_PER_FS2: f64 = 103.642_696_56;
/// 1 eV/Å³ in GPa.
pub const EV_PER_A3_IN_GPA: f64 = 160.217_662_08;
/// 1 fs in ASE's time unit (Å·√(amu/eV), with ASE's default CODATA 2014 constants), so that
/// the `momenta` written load in ASE as its own.
const ASE_FS: f64 = 0.098_226_949_728_386_58;

/// How the temperature is controlled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Thermostat {
    /// None: constant energy (velocity Verlet).
    Nve,
    /// Langevin friction, 1/fs.
    Langevin { friction: f64 },
    /// Bussi's stochastic velocity rescaling with relaxation time `time`, fs.
    Bussi { time: f64 },
}

/// Isotropic stochastic cell rescaling towards `pressure` (GPa), relaxing in `time` (fs);
/// `compressibility` (1/GPa) sets only how fast the volume responds, not where it ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Barostat {
    pub pressure: f64,
    pub time: f64,
    pub compressibility: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DynamicsOptions {
    /// fs.
    pub timestep: f64,
    /// Steps in all, counted from the start of the run (a resumed run does the rest).
    pub steps: usize,
    /// The thermostat's target (K), and the temperature of the initial velocities when the
    /// start carries none.
    pub temperature: f64,
    pub thermostat: Thermostat,
    pub barostat: Option<Barostat>,
    pub seed: u64,
    /// Write a trajectory frame and a log row every this many steps.
    pub every: usize,
}

/// Where a run writes: the trajectory (extxyz) and the log (CSV); the figures go beside the
/// log (`LOG.temperature.{svg,png}`, `LOG.energy.{svg,png}`).
#[derive(Debug, Clone)]
pub struct DynamicsFiles {
    pub trajectory: PathBuf,
    pub log: PathBuf,
}

/// One row of the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogRow {
    pub step: usize,
    /// fs.
    pub time: f64,
    /// K.
    pub temperature: f64,
    /// eV.
    pub potential: f64,
    pub kinetic: f64,
    /// Å³ and GPa, for periodic cells (the pressure where the calculator gives a stress).
    pub volume: Option<f64>,
    pub pressure: Option<f64>,
}

impl LogRow {
    pub fn total(&self) -> f64 {
        self.potential + self.kinetic
    }
}

const LOG_HEADER: &str = "step,time_fs,temperature_K,potential_eV,kinetic_eV,total_eV,volume_A3,pressure_GPa";

/// What a run did.
#[derive(Debug, Clone)]
pub struct DynamicsSummary {
    /// The step the run continued from (0 for a fresh run).
    pub resumed_from: usize,
    /// Every log row, those of earlier sittings included.
    pub log: Vec<LogRow>,
    /// The last state, with its energy, forces and momenta set.
    pub last: Atoms,
    /// A trajectory frame cut short (by a kill) was dropped on resuming.
    pub dropped_partial_frame: bool,
    pub figures: Vec<PathBuf>,
}

/// The state of the integrator.
struct State {
    atoms: Atoms,
    /// Å/fs.
    velocities: Vec<Vec3>,
    masses: Vec<f64>,
    labels: Labels,
    step: usize,
    /// Kinetic degrees of freedom: 3N − 3 where the centre of mass is at rest and stays so.
    dof: f64,
}

impl State {
    fn kinetic(&self) -> f64 {
        kinetic_energy(&self.velocities, &self.masses)
    }

    fn temperature(&self) -> f64 {
        2.0 * self.kinetic() / (self.dof * BOLTZMANN)
    }

    /// Instantaneous pressure, eV/Å³: kinetic 2K/(3V) minus the trace of the stress over 3
    /// (the stress in ASE's sign, (1/V) ∂E/∂ε).
    fn pressure(&self) -> Option<f64> {
        let volume = periodic_volume(&self.atoms)?;
        let stress = self.labels.stress?;
        Some(2.0 * self.kinetic() / (3.0 * volume) - (stress[0] + stress[1] + stress[2]) / 3.0)
    }

    fn row(&self, timestep: f64) -> LogRow {
        LogRow {
            step: self.step,
            time: self.step as f64 * timestep,
            temperature: self.temperature(),
            potential: self.labels.energy,
            kinetic: self.kinetic(),
            volume: periodic_volume(&self.atoms),
            pressure: self.pressure().map(|p| p * EV_PER_A3_IN_GPA),
        }
    }

    /// The trajectory frame of this state.
    fn frame(&self, options: &DynamicsOptions) -> Result<Atoms, ExploreError> {
        let mut atoms = self.atoms.clone();
        self.labels.apply(&mut atoms)?;
        let momenta = self
            .velocities
            .iter()
            .zip(&self.masses)
            .flat_map(|(v, m)| v.map(|x| m * x / ASE_FS))
            .collect();
        set_array(&mut atoms, "momenta", momenta)?;
        let info = &mut atoms.info;
        info.insert("md_step".into(), Value::Int(self.step as i64));
        info.insert("time".into(), Value::Float(self.step as f64 * options.timestep));
        info.insert("temperature".into(), Value::Float(self.temperature()));
        info.insert("md_timestep".into(), Value::Float(options.timestep));
        info.insert("md_seed".into(), Value::Int(options.seed as i64));
        Ok(atoms)
    }
}

fn set_array(atoms: &mut Atoms, name: &str, values: Vec<f64>) -> Result<(), ExploreError> {
    atoms
        .set_array(name, 3, ArrayData::Float(values))
        .map_err(|e| ExploreError::Input(e.to_string()))
}

fn kinetic_energy(velocities: &[Vec3], masses: &[f64]) -> f64 {
    let sum: f64 = velocities
        .iter()
        .zip(masses)
        .map(|(v, m)| m * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]))
        .sum();
    0.5 * sum * AMU_A2_PER_FS2
}

fn periodic_volume(atoms: &Atoms) -> Option<f64> {
    atoms.bulk_cell().map(|c| c.volume())
}

/// The random numbers of step `step` (see the module documentation).
fn rng_of(seed: u64, step: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(step);
    rng
}

/// Removes the centre-of-mass velocity.
fn remove_drift(velocities: &mut [Vec3], masses: &[f64]) {
    let total: f64 = masses.iter().sum();
    let mut drift = [0.0; 3];
    for (v, m) in velocities.iter().zip(masses) {
        for k in 0..3 {
            drift[k] += m * v[k] / total;
        }
    }
    for v in velocities {
        for k in 0..3 {
            v[k] -= drift[k];
        }
    }
}

/// Velocities of `atoms`: its `momenta` (ASE's units) when it carries them, else drawn from
/// Maxwell–Boltzmann at `temperature`, the centre of mass at rest, scaled to exactly
/// `temperature` over `dof` degrees of freedom.
fn initial_velocities(atoms: &Atoms, masses: &[f64], temperature: f64, seed: u64, dof: f64) -> Vec<Vec3> {
    if let Some(momenta) = atoms.float_array("momenta", 3) {
        return momenta
            .chunks(3)
            .zip(masses)
            .map(|(p, m)| [p[0], p[1], p[2]].map(|x| x * ASE_FS / m))
            .collect();
    }
    // A stream no step uses.
    let mut rng = rng_of(seed, u64::MAX);
    let mut velocities: Vec<Vec3> = masses
        .iter()
        .map(|m| {
            let sigma = (BOLTZMANN * temperature / (m * AMU_A2_PER_FS2)).sqrt();
            std::array::from_fn(|_| sigma * minima_data::gaussian(&mut rng))
        })
        .collect();
    if masses.len() > 1 {
        remove_drift(&mut velocities, masses);
    }
    let now = 2.0 * kinetic_energy(&velocities, masses) / (dof * BOLTZMANN);
    if now > 0.0 {
        let factor = (temperature / now).sqrt();
        velocities.iter_mut().for_each(|v| *v = v.map(|x| x * factor));
    }
    velocities
}

impl DynamicsOptions {
    fn validate(&self, start: &Atoms) -> Result<(), ExploreError> {
        let bad = |m: String| Err(ExploreError::Input(m));
        if !(self.timestep.is_finite() && self.timestep > 0.0) {
            return bad(format!("the timestep must be positive (got {} fs)", self.timestep));
        }
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad(format!("the temperature must be ≥ 0 K (got {})", self.temperature));
        }
        if self.every == 0 {
            return bad("a trajectory frame every 0 steps: give at least 1".into());
        }
        match self.thermostat {
            Thermostat::Langevin { friction } if !(friction.is_finite() && friction > 0.0) => {
                return bad(format!("the Langevin friction must be positive (got {friction} 1/fs)"));
            }
            Thermostat::Bussi { time } if !(time.is_finite() && time > 0.0) => {
                return bad(format!("the thermostat time must be positive (got {time} fs)"));
            }
            _ => {}
        }
        if let Some(b) = self.barostat {
            if self.thermostat == Thermostat::Nve {
                return bad("a barostat needs a thermostat (langevin or bussi), whose temperature it uses".into());
            }
            if periodic_volume(start).is_none() {
                return bad("a barostat needs a cell periodic along all three axes".into());
            }
            if !(b.time > 0.0 && b.compressibility > 0.0 && b.pressure.is_finite()) {
                return bad(format!(
                    "the barostat's time and compressibility must be positive (got {} fs, {} 1/GPa)",
                    b.time, b.compressibility
                ));
            }
        }
        Ok(())
    }

    fn dof(&self, atoms: usize) -> f64 {
        // Langevin kicks move the centre of mass; the other integrators keep it at rest.
        let fixed = if matches!(self.thermostat, Thermostat::Langevin { .. }) || atoms < 2 {
            0
        } else {
            3
        };
        (3 * atoms - fixed).max(1) as f64
    }
}

/// Runs dynamics from `start` (or continues the run in `files`), `observe` seeing every step's
/// log row (for a progress bar). Works with any calculator; a barostat needs its stress.
pub fn run(
    calculator: &dyn Calculator,
    start: &Atoms,
    options: &DynamicsOptions,
    files: &DynamicsFiles,
    mut observe: impl FnMut(&LogRow),
) -> Result<DynamicsSummary, ExploreError> {
    options.validate(start)?;
    minima_neighbors::check_separated(start.positions(), start.cell(), start.pbc())
        .map_err(|e| ExploreError::Input(e.to_string()))?;
    let (resumed, dropped_partial_frame) = last_frame(&files.trajectory, options)?;
    let mut log = match &resumed {
        Some(frame) => read_log(&files.log, step_of(frame))?,
        None => Vec::new(),
    };
    let origin = resumed.as_ref().unwrap_or(start);
    let masses: Vec<f64> = origin.elements().map(|e| e.mass).collect();
    let dof = options.dof(origin.len());
    let mut atoms = origin.clone();
    let velocities = initial_velocities(&atoms, &masses, options.temperature, options.seed, dof);
    // Labels of a frame are the calculator's own, recomputed (the file keeps only digits).
    for key in [
        "energy",
        "stress",
        "md_step",
        "time",
        "temperature",
        "md_timestep",
        "md_seed",
    ] {
        atoms.info.shift_remove(key);
    }
    let labels = calculator.calculate_checked(&atoms)?;
    let mut state = State {
        atoms,
        velocities,
        masses,
        labels,
        step: resumed.as_ref().map_or(0, step_of),
        dof,
    };
    if options.barostat.is_some() && state.labels.stress.is_none() {
        return Err(ExploreError::Input(format!(
            "a barostat needs the stress, which {} does not give",
            calculator.name()
        )));
    }
    let resumed_from = state.step;
    let mut trajectory = append_to(&files.trajectory, resumed.is_some())?;
    let mut log_file = append_to(&files.log, resumed.is_some())?;
    if resumed.is_none() {
        writeln!(log_file, "{LOG_HEADER}").map_err(ExploreError::write(&files.log))?;
        write_state(&state, options, &mut trajectory, &mut log_file, files, &mut log)?;
    }
    while state.step < options.steps {
        step(calculator, &mut state, options)?;
        let row = state.row(options.timestep);
        observe(&row);
        if state.step.is_multiple_of(options.every) || state.step == options.steps {
            write_state(&state, options, &mut trajectory, &mut log_file, files, &mut log)?;
        }
    }
    let figures = plot(&log, &files.log)?;
    Ok(DynamicsSummary {
        resumed_from,
        log,
        last: state.frame(options)?,
        dropped_partial_frame,
        figures,
    })
}

fn write_state(
    state: &State,
    options: &DynamicsOptions,
    trajectory: &mut std::fs::File,
    log_file: &mut std::fs::File,
    files: &DynamicsFiles,
    log: &mut Vec<LogRow>,
) -> Result<(), ExploreError> {
    let row = state.row(options.timestep);
    // The frame first: a log row never names a step the trajectory cannot continue from.
    let mut text = Vec::new();
    minima_io::extxyz::write_frame(&mut text, &state.frame(options)?)?;
    trajectory
        .write_all(&text)
        .and_then(|_| trajectory.flush())
        .map_err(ExploreError::write(&files.trajectory))?;
    writeln!(log_file, "{}", format_row(&row))
        .and_then(|_| log_file.flush())
        .map_err(ExploreError::write(&files.log))?;
    log.push(row);
    Ok(())
}

fn append_to(path: &Path, append: bool) -> Result<std::fs::File, ExploreError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(path)
        .map_err(ExploreError::write(path))
}

/// One step of the integrator (see the module documentation for the splitting).
fn step(calculator: &dyn Calculator, state: &mut State, options: &DynamicsOptions) -> Result<(), ExploreError> {
    let dt = options.timestep;
    let mut rng = rng_of(options.seed, state.step as u64);
    kick(state, dt / 2.0);
    match options.thermostat {
        Thermostat::Langevin { friction } => {
            drift(state, dt / 2.0)?;
            let c1 = (-friction * dt).exp();
            let c2 = (1.0 - c1 * c1).sqrt();
            let kt = BOLTZMANN * options.temperature;
            for (v, m) in state.velocities.iter_mut().zip(&state.masses) {
                let sigma = (kt / (m * AMU_A2_PER_FS2)).sqrt();
                for x in v.iter_mut() {
                    *x = c1 * *x + c2 * sigma * minima_data::gaussian(&mut rng);
                }
            }
            drift(state, dt / 2.0)?;
        }
        Thermostat::Nve | Thermostat::Bussi { .. } => drift(state, dt)?,
    }
    if let Some(barostat) = options.barostat {
        rescale_cell(state, &barostat, options, &mut rng)?;
    }
    state.labels = calculator
        .calculate_checked(&state.atoms)
        .map_err(|e| ExploreError::Input(format!("step {}: {e}", state.step + 1)))?;
    kick(state, dt / 2.0);
    if let Thermostat::Bussi { time } = options.thermostat {
        bussi(state, options.temperature, dt / time, &mut rng);
    }
    state.step += 1;
    Ok(())
}

/// v += F/m · τ.
fn kick(state: &mut State, tau: f64) {
    for ((v, f), m) in state.velocities.iter_mut().zip(&state.labels.forces).zip(&state.masses) {
        for k in 0..3 {
            v[k] += tau * f[k] / (m * AMU_A2_PER_FS2);
        }
    }
}

/// r += v · τ.
fn drift(state: &mut State, tau: f64) -> Result<(), ExploreError> {
    let positions = state
        .atoms
        .positions()
        .iter()
        .zip(&state.velocities)
        .map(|(r, v)| std::array::from_fn(|k| r[k] + tau * v[k]))
        .collect();
    state
        .atoms
        .set_positions(positions)
        .map_err(|e| ExploreError::Input(format!("step {}: {e}", state.step + 1)))
}

/// Bussi's rescaling of the kinetic energy K towards K̄ = ½ N_f k T over `ratio` = Δt/τ:
/// α² = c + (1 − c)(R₁² + Σᵢ₌₂..N_f Rᵢ²) K̄/(N_f K) + 2 R₁ √(c (1 − c) K̄/(N_f K)), c = e^(−Δt/τ).
/// A state exactly at rest has no direction to scale and stays at rest.
fn bussi(state: &mut State, temperature: f64, ratio: f64, rng: &mut ChaCha8Rng) {
    let kinetic = state.kinetic();
    if kinetic <= 0.0 {
        return;
    }
    let target = 0.5 * state.dof * BOLTZMANN * temperature;
    let c = (-ratio).exp();
    let share = target / (state.dof * kinetic) * (1.0 - c);
    let r1 = minima_data::gaussian(rng);
    let others = state.dof as usize - 1;
    let rest: f64 = (0..others).map(|_| minima_data::gaussian(rng).powi(2)).sum();
    let alpha2 = c + share * (r1 * r1 + rest) + 2.0 * r1 * (c * share).sqrt();
    let alpha = alpha2.max(0.0).sqrt();
    state.velocities.iter_mut().for_each(|v| *v = v.map(|x| x * alpha));
}

/// Bernetti & Bussi's isotropic stochastic cell rescaling, one Euler step of ε = ln V.
fn rescale_cell(
    state: &mut State,
    barostat: &Barostat,
    options: &DynamicsOptions,
    rng: &mut ChaCha8Rng,
) -> Result<(), ExploreError> {
    let (Some(volume), Some(pressure)) = (periodic_volume(&state.atoms), state.pressure()) else {
        return Ok(());
    };
    let kt = BOLTZMANN * options.temperature;
    let beta = barostat.compressibility * EV_PER_A3_IN_GPA;
    let target = barostat.pressure / EV_PER_A3_IN_GPA;
    let dt = options.timestep;
    let d_epsilon = -beta / barostat.time * (target - pressure - kt / volume) * dt
        + (2.0 * kt * beta * dt / (volume * barostat.time)).sqrt() * minima_data::gaussian(rng);
    let mu = (d_epsilon / 3.0).exp();
    state.atoms = state
        .atoms
        .scaled(mu)
        .map_err(|e| ExploreError::Input(format!("step {}: the barostat: {e}", state.step + 1)))?;
    state.velocities.iter_mut().for_each(|v| *v = v.map(|x| x / mu));
    Ok(())
}

fn step_of(frame: &Atoms) -> usize {
    frame.info.get("md_step").and_then(Value::as_i64).unwrap_or(0) as usize
}

/// The last complete frame of an earlier sitting's trajectory, if there is one; a frame cut
/// short is dropped (the file rewritten without it). A trajectory of another run (another
/// timestep or seed) is refused.
fn last_frame(path: &Path, options: &DynamicsOptions) -> Result<(Option<Atoms>, bool), ExploreError> {
    if !path.exists() {
        return Ok((None, false));
    }
    let text = std::fs::read_to_string(path)?;
    let mut frames = Vec::new();
    let mut partial = false;
    for frame in minima_io::extxyz::ExtxyzReader::new(std::io::Cursor::new(text.as_bytes()), path.display().to_string())
    {
        match frame {
            Ok(frame) => frames.push(frame),
            Err(_) => {
                partial = true;
                break;
            }
        }
    }
    let Some(last) = frames.last().cloned() else {
        return Ok((None, partial));
    };
    let recorded = (
        last.info.get("md_timestep").and_then(Value::as_f64),
        last.info.get("md_seed").and_then(Value::as_i64),
    );
    if recorded != (Some(options.timestep), Some(options.seed as i64)) {
        return Err(ExploreError::Input(format!(
            "{}: holds a run with timestep {:?} fs and seed {:?}, not {} fs and seed {}: continue it with its settings, or write elsewhere",
            path.display(),
            recorded.0,
            recorded.1,
            options.timestep,
            options.seed
        )));
    }
    if partial {
        minima_io::extxyz::write_all(path, &frames).map_err(ExploreError::write(path))?;
    }
    Ok((Some(last), partial))
}

fn format_row(row: &LogRow) -> String {
    let optional = |x: Option<f64>| x.map_or_else(String::new, |x| format!("{x:.6}"));
    format!(
        "{},{:.3},{:.3},{:.8},{:.8},{:.8},{},{}",
        row.step,
        row.time,
        row.temperature,
        row.potential,
        row.kinetic,
        row.total(),
        optional(row.volume),
        optional(row.pressure)
    )
}

/// The log rows up to `step` (an earlier sitting's), the file rewritten to hold just them.
fn read_log(path: &Path, step: usize) -> Result<Vec<LogRow>, ExploreError> {
    let bad = |line: usize, what: &str| ExploreError::Input(format!("{}:{line}: {what}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| ExploreError::Input(format!("{}: {e}", path.display())))?;
    let mut rows = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if index == 0 {
            if line != LOG_HEADER {
                return Err(bad(1, "not a minima md log (its header differs)"));
            }
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        // A row cut short by a kill ends the log.
        if fields.len() != 8 {
            break;
        }
        let number = |k: usize| -> Result<Option<f64>, ExploreError> {
            if fields[k].is_empty() {
                return Ok(None);
            }
            fields[k]
                .parse()
                .map(Some)
                .map_err(|_| bad(index + 1, "a number that does not parse"))
        };
        let row = LogRow {
            step: fields[0]
                .parse()
                .map_err(|_| bad(index + 1, "a step that does not parse"))?,
            time: number(1)?.unwrap_or(0.0),
            temperature: number(2)?.unwrap_or(0.0),
            potential: number(3)?.unwrap_or(0.0),
            kinetic: number(4)?.unwrap_or(0.0),
            volume: number(6)?,
            pressure: number(7)?,
        };
        if row.step > step {
            break;
        }
        rows.push(row);
    }
    minima_io::write_atomic(path, |w| {
        writeln!(w, "{LOG_HEADER}")?;
        rows.iter().try_for_each(|row| writeln!(w, "{}", format_row(row)))
    })
    .map_err(ExploreError::write(path))?;
    Ok(rows)
}

/// The temperature and the energies (relative to the first total energy) against time.
fn plot(log: &[LogRow], log_path: &Path) -> Result<Vec<PathBuf>, ExploreError> {
    use crate::plot::{Figure, Style};
    let Some(first) = log.first() else {
        return Ok(Vec::new());
    };
    let series = |f: &dyn Fn(&LogRow) -> f64| log.iter().map(|r| (r.time, f(r))).collect::<Vec<_>>();
    let e0 = first.total();
    let stem = log_path.with_extension("");
    let temperature =
        Figure::new("Temperature", "time (fs)", "T (K)").with_series("T", series(&|r| r.temperature), Style::Line);
    let energy = Figure::new(
        "Energies relative to the first total energy",
        "time (fs)",
        "E − E_tot(0) (eV)",
    )
    .with_series("potential", series(&|r| r.potential - e0), Style::Line)
    .with_series("kinetic", series(&|r| r.kinetic), Style::Line)
    .with_series("total", series(&|r| r.total() - e0), Style::Line);
    let mut figures = Vec::new();
    for (figure, name) in [(temperature, "temperature"), (energy, "energy")] {
        let path = PathBuf::from(format!("{}.{name}", stem.display()));
        figures.extend(figure.save(&path)?);
    }
    Ok(figures)
}
