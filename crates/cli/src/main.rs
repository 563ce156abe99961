//! `minima`: physics-informed neural-network potentials, one binary.
//!
//! Each subcommand lives in `commands/` and only parses arguments, calls the library crates
//! and prints; the science is in the crates.

mod commands;
mod progress;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "minima",
    version,
    about = "Neural-network potentials for molecules and crystals, in and out of equilibrium"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a dataset to extxyz (QM9's original layout → ASE-readable extxyz).
    Convert(commands::convert::Args),
    /// Summarise an extxyz file: frames, elements, sizes, labels, energy range.
    Info(commands::info::Args),
    /// Perceive bonds and bond orders (single, double, triple, aromatic) per frame.
    Bonds(commands::bonds::Args),
    /// Generate datasets (augmented QM9, fcc crystals, crystal growth) and their splits.
    #[command(subcommand)]
    Data(commands::data::Data),
    /// Label structures with a reference calculator (emt, xtb, cp2k); parallel, resumable.
    Label(commands::label::Args),
    /// Join labelled shards (`label --shard i/N`) in input order.
    Merge(commands::label::MergeArgs),
    /// Train a model (MPNN, VIMPNN, transformer, PaiNN) or a committee from a run configuration; resumable.
    Train(commands::train::Args),
    /// Committee active learning: train, explore, label where the members disagree, repeat.
    Learn(commands::learn::Args),
    /// Evaluate a trained model: MAE, MSE, RE (mean and std), forces, DSC; writes JSON.
    Eval(commands::eval::Args),
    /// Predict energies, forces and per-atom contributions into an extxyz file.
    Predict(commands::predict::Args),
    /// Energy against isotropic scale from a model and/or a reference, minima marked; CSV, SVG, PNG.
    Curve(commands::curve::Args),
    /// Relax structures (FIRE or L-BFGS) with a model or a reference calculator.
    Relax(commands::relax::Args),
    /// Molecular dynamics (NVE, Langevin or Bussi NVT, NPT for cells) with a model or a reference.
    Md(commands::md::Args),
    /// Per-atom energy contributions, optionally along a scan moving one atom; CSV, SVG, PNG.
    Contributions(commands::contributions::Args),
    /// The physics head's pair parameters β0..β4 and pair energies of a structure.
    Pairs(commands::pairs::Args),
    /// The re-optimisation benchmark: perturb equilibrium molecules, relax, report ΔP and ΔE_g.
    BenchRelax(commands::bench_relax::Args),
    /// Do relaxations from rattled, compressed and stretched starts land on the reference's minima?
    BenchMinima(commands::bench_minima::Args),
    /// Molecule assembly: move functional groups away, relax, check that the bonds reform.
    Assemble(commands::assemble::Args),
    /// Benchmarks (speed and memory targets are measured here, never in tests).
    #[command(subcommand)]
    Bench(commands::bench::Bench),
}

/// A closed stdout (`minima info … | head`) is a quiet end: `println!` panics on it, and this
/// hook ends the process there without the panic's message, as a command whose reader has
/// gone. Commands that write files report through `report!`, which never stops them.
fn end_quietly_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        let closed_stdout =
            message.starts_with("failed printing to stdout") && message.to_ascii_lowercase().contains("broken pipe");
        if closed_stdout {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() {
    let cli = Cli::parse();
    minima_io::progress::set_observer(std::sync::Arc::new(progress::Bars::default()));
    // Not for `train`: its stdout is a log beside a run that must go on, however it is read.
    if !matches!(cli.command, Command::Train(_) | Command::Learn(_)) {
        end_quietly_when_stdout_closes();
    }
    let result = match cli.command {
        Command::Convert(args) => commands::convert::run(args),
        Command::Info(args) => commands::info::run(args),
        Command::Bonds(args) => commands::bonds::run(args),
        Command::Data(data) => commands::data::run(data),
        Command::Label(args) => commands::label::run(args),
        Command::Merge(args) => commands::label::merge_shards(args),
        Command::Train(args) => commands::train::run(args),
        Command::Learn(args) => commands::learn::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Predict(args) => commands::predict::run(args),
        Command::Curve(args) => commands::curve::run(args),
        Command::Relax(args) => commands::relax::run(args),
        Command::Md(args) => commands::md::run(args),
        Command::Contributions(args) => commands::contributions::run(args),
        Command::Pairs(args) => commands::pairs::run(args),
        Command::BenchRelax(args) => commands::bench_relax::run(args),
        Command::BenchMinima(args) => commands::bench_minima::run(args),
        Command::Assemble(args) => commands::assemble::run(args),
        Command::Bench(bench) => commands::bench::run(bench),
    };
    if let Err(error) = result {
        // A closed pipe (`minima bonds … | head`) means the reader has what it wanted.
        let broken_pipe = error.chain().any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        if broken_pipe {
            return;
        }
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
