//! `minima md`: molecular dynamics (NVE, Langevin or Bussi NVT, stochastic cell rescaling NPT)
//! of one structure with a model or a reference calculator.

use std::path::PathBuf;

use anyhow::Result;
use minima_explore::dynamics::{self, Barostat, DynamicsFiles, DynamicsOptions, Thermostat};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    calculator: super::CalculatorArgs,
    /// The start (extxyz; its `momenta`, as ASE writes them, are the initial velocities when
    /// present).
    #[arg(short, long)]
    input: PathBuf,
    /// Which frame of the input (0-based).
    #[arg(long, default_value_t = 0)]
    frame: usize,
    /// Trajectory (extxyz): a frame every --every steps. Rerunning the same command continues
    /// from its last frame.
    #[arg(short, long)]
    output: PathBuf,
    /// The log (CSV: step, time, T, energies, volume, pressure); default: the trajectory's
    /// name with `.csv`. Its figures go beside it.
    #[arg(long)]
    log: Option<PathBuf>,
    /// nve, langevin or bussi.
    #[arg(long, default_value = "langevin")]
    thermostat: String,
    /// Target temperature (K); also that of the initial velocities when the start has none.
    #[arg(long, default_value_t = 300.0)]
    temperature: f64,
    /// Timestep (fs).
    #[arg(long, default_value_t = 1.0)]
    timestep: f64,
    /// Steps in all (a continued run does what is left).
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Langevin friction (1/fs).
    #[arg(long, default_value_t = 0.01)]
    friction: f64,
    /// Bussi thermostat relaxation time (fs).
    #[arg(long, default_value_t = 100.0)]
    thermostat_time: f64,
    /// Pressure (GPa) of a barostat (isotropic stochastic cell rescaling; periodic cells).
    #[arg(long)]
    pressure: Option<f64>,
    /// Barostat relaxation time (fs).
    #[arg(long, default_value_t = 1000.0)]
    barostat_time: f64,
    /// Isothermal compressibility the barostat assumes (1/GPa; 0.01 suits metals, 4.5 water):
    /// sets how fast the volume responds, not where it ends.
    #[arg(long, default_value_t = 0.01)]
    compressibility: f64,
    /// A trajectory frame and a log row every this many steps.
    #[arg(long, default_value_t = 10)]
    every: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(args: Args) -> Result<()> {
    let thermostat = match args.thermostat.as_str() {
        "nve" => Thermostat::Nve,
        "langevin" => Thermostat::Langevin {
            friction: args.friction,
        },
        "bussi" => Thermostat::Bussi {
            time: args.thermostat_time,
        },
        other => anyhow::bail!("unknown thermostat {other:?}: choose nve, langevin or bussi"),
    };
    let options = DynamicsOptions {
        timestep: args.timestep,
        steps: args.steps,
        temperature: args.temperature,
        thermostat,
        barostat: args.pressure.map(|pressure| Barostat {
            pressure,
            time: args.barostat_time,
            compressibility: args.compressibility,
        }),
        seed: args.seed,
        every: args.every,
    };
    let files = DynamicsFiles {
        log: args.log.clone().unwrap_or_else(|| args.output.with_extension("csv")),
        trajectory: args.output.clone(),
    };
    let calculator = args.calculator.load_one()?;
    let start = minima_explore::curve::with_fixed_bonds(&super::read_frame(&args.input, args.frame)?);
    let _locks = [&files.trajectory, &files.log]
        .into_iter()
        .map(|path| super::lock_output(path))
        .collect::<Result<Vec<_>>>()?;
    let bar = super::progress(args.steps as u64, "md");
    let started = std::time::Instant::now();
    let mut first = None;
    let summary = dynamics::run(calculator.as_ref(), &start, &options, &files, |row| {
        let first = *first.get_or_insert(row.step - 1);
        bar.set_position(row.step as u64);
        // Simulated nanoseconds per day of wall time, over this sitting.
        let ns_per_day = (row.step - first) as f64 * args.timestep * 1e-6 / (started.elapsed().as_secs_f64() / 86400.0);
        bar.set_message(format!(
            "md {:.1} K, E_tot {:.4} eV, {ns_per_day:.3} ns/day",
            row.temperature,
            row.total()
        ));
    })?;
    bar.finish_and_clear();
    if summary.dropped_partial_frame {
        eprintln!(
            "warning: {}: its last frame was cut short (a killed run); dropped",
            files.trajectory.display()
        );
    }
    let rows = &summary.log;
    let later = &rows[rows.len() / 2..];
    let mean_t = later.iter().map(|r| r.temperature).sum::<f64>() / later.len().max(1) as f64;
    let (e_first, e_last) = (
        rows.first().map_or(0.0, |r| r.total()),
        rows.last().map_or(0.0, |r| r.total()),
    );
    if summary.resumed_from > 0 {
        report!("continued from step {}", summary.resumed_from);
    }
    report!(
        "{} steps of {} fs ({:.3} ps) with {}: mean T over the second half {mean_t:.1} K, E_tot drift {:.3e} eV ({:.3e} eV/atom)",
        rows.last().map_or(0, |r| r.step),
        args.timestep,
        rows.last().map_or(0.0, |r| r.time) / 1000.0,
        calculator.name(),
        e_last - e_first,
        (e_last - e_first) / summary.last.len() as f64
    );
    report!(
        "trajectory → {}, log → {}",
        files.trajectory.display(),
        files.log.display()
    );
    for figure in &summary.figures {
        report!("figure → {}", figure.display());
    }
    Ok(())
}
