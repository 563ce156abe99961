//! `minima contributions`: per-atom energy contributions of a structure, or along a scan that
//! moves one atom towards or away from the rest (the VIMPNN paper's Fig. 7).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use minima_data::generate::Grid;
use minima_explore::contributions::{contributions, move_atom};
use minima_explore::plot::{Figure, Style};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    calculator: super::CalculatorArgs,
    /// Structure (extxyz).
    #[arg(short, long)]
    input: PathBuf,
    #[arg(long, default_value_t = 0)]
    frame: usize,
    /// Move this atom (0-based) along the line from the centroid of the others through it.
    #[arg(long)]
    move_atom: Option<usize>,
    /// Its distance from that centroid, relative to the start, start:stop:count.
    #[arg(long, default_value = "0.6:2.5:40")]
    scales: Grid,
    /// Output stem: STEM.csv and STEM.svg/.png.
    #[arg(short, long, default_value = "contributions")]
    output: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let calculator = args.calculator.load_one()?;
    let structure = super::read_frame(&args.input, args.frame)?;
    let symbols: Vec<&str> = structure.elements().map(|e| e.symbol).collect();
    let csv = minima_io::with_suffix(&args.output, ".csv");
    let figure = match args.move_atom {
        None => {
            let energies = contributions(calculator.as_ref(), &structure)?;
            minima_io::write_atomic(&csv, |w| {
                writeln!(w, "atom,element,energy_eV")?;
                for (a, e) in energies.iter().enumerate() {
                    writeln!(w, "{a},{},{e}", symbols[a])?;
                }
                Ok(())
            })?;
            for (a, e) in energies.iter().enumerate() {
                report!("{a:>4} {:>3} {e:>12.4} eV", symbols[a]);
            }
            report!("total {:.4} eV", energies.iter().sum::<f64>());
            let points = energies.iter().enumerate().map(|(a, &e)| (a as f64, e)).collect();
            Figure::new(
                format!("per-atom energies of {} ({})", structure.formula(), calculator.name()),
                "atom (0-based)",
                "energy contribution (eV)",
            )
            .with_series("contribution", points, Style::Points)
        }
        Some(atom) => {
            let scales = args.scales.values();
            let bar = super::progress(scales.len() as u64, "contributions");
            let scan = move_atom(calculator.as_ref(), &structure, atom, &scales, || bar.inc(1))?;
            bar.finish_and_clear();
            minima_io::write_atomic(&csv, |w| {
                write!(w, "scale,nearest_A,energy_eV")?;
                for (a, s) in symbols.iter().enumerate() {
                    write!(w, ",{s}{a}_eV")?;
                }
                writeln!(w)?;
                for p in &scan {
                    write!(w, "{},{},{}", p.scale, p.nearest, p.energy)?;
                    for e in &p.contributions {
                        write!(w, ",{e}")?;
                    }
                    writeln!(w)?;
                }
                Ok(())
            })?;
            // The moved atom, its nearest neighbour at the start, and all the others summed.
            // Energies relative to the point nearest the start (scale 1).
            let offset = scan
                .iter()
                .min_by(|a, b| (a.scale - 1.0).abs().total_cmp(&(b.scale - 1.0).abs()))
                .map_or(0.0, |p| p.energy);
            let nearest = (0..structure.len())
                .filter(|&a| a != atom)
                .min_by(|&a, &b| structure.distance(atom, a).total_cmp(&structure.distance(atom, b)))
                .expect("at least two atoms");
            let series = |f: &dyn Fn(&minima_explore::contributions::MovedAtom) -> f64| {
                scan.iter().map(|p| (p.nearest, f(p))).collect::<Vec<_>>()
            };
            report!(
                "{:>8} {:>11} {:>12} {:>14}",
                "scale",
                "nearest Å",
                "E − E(1) eV",
                "moved atom eV"
            );
            for p in &scan {
                report!(
                    "{:>8.3} {:>11.3} {:>12.4} {:>14.4}",
                    p.scale,
                    p.nearest,
                    p.energy - offset,
                    p.contributions[atom]
                );
            }
            Figure::new(
                format!(
                    "moving atom {atom} ({}) of {} ({})",
                    symbols[atom],
                    structure.formula(),
                    calculator.name()
                ),
                "distance from the moved atom to its nearest neighbour (Å)",
                "energy contribution (eV)",
            )
            .with_series(
                format!("{}{atom} (moved)", symbols[atom]),
                series(&|p| p.contributions[atom]),
                Style::Line,
            )
            .with_series(
                format!("{}{nearest} (its nearest neighbour)", symbols[nearest]),
                series(&|p| p.contributions[nearest]),
                Style::Line,
            )
            .with_series(
                "all other atoms",
                series(&|p| p.energy - p.contributions[atom] - p.contributions[nearest]),
                Style::Line,
            )
        }
    };
    let [svg, png] = figure.save(&args.output)?;
    report!("{} → {}, {}", csv.display(), svg.display(), png.display());
    Ok(())
}
