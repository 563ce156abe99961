//! `minima info FILE`: what is in an extxyz file, read in one streaming pass.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// An extxyz file.
    file: PathBuf,
}

#[derive(Default)]
struct Summary {
    frames: usize,
    periodic: usize,
    atoms_min: usize,
    atoms_max: usize,
    atoms_total: usize,
    elements: BTreeMap<u8, (&'static str, usize)>,
    info_keys: BTreeMap<String, usize>,
    arrays: BTreeMap<String, usize>,
    energy_range: Option<(f64, f64)>,
    /// Frames whose `energy` is NaN or infinite (kept by the reader as written; refused as a
    /// training or evaluation target).
    energy_non_finite: usize,
}

pub fn run(args: Args) -> Result<()> {
    let mut s = Summary {
        atoms_min: usize::MAX,
        ..Summary::default()
    };
    super::for_each_frame(&args.file, |_, atoms| {
        s.frames += 1;
        s.periodic += usize::from(atoms.is_periodic());
        s.atoms_min = s.atoms_min.min(atoms.len());
        s.atoms_max = s.atoms_max.max(atoms.len());
        s.atoms_total += atoms.len();
        for e in atoms.elements() {
            s.elements.entry(e.number).or_insert((e.symbol, 0)).1 += 1;
        }
        for key in atoms.info.keys() {
            *s.info_keys.entry(key.clone()).or_default() += 1;
        }
        for name in atoms.arrays().keys() {
            *s.arrays.entry(name.clone()).or_default() += 1;
        }
        match atoms.energy() {
            Some(e) if e.is_finite() => {
                s.energy_range = Some(s.energy_range.map_or((e, e), |(lo, hi)| (lo.min(e), hi.max(e))));
            }
            Some(_) => s.energy_non_finite += 1,
            None => {}
        }
        Ok(())
    })?;
    let elements: Vec<String> = s.elements.values().map(|(sym, n)| format!("{sym} {n}")).collect();
    let labels = |m: &BTreeMap<String, usize>| -> String {
        m.iter()
            .map(|(k, n)| {
                if *n == s.frames {
                    k.clone()
                } else {
                    format!("{k} ({n} frames)")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let non_finite = match s.energy_non_finite {
        0 => String::new(),
        n => format!(" ({n} frames non-finite)"),
    };
    let energy = match s.energy_range {
        Some((lo, hi)) => format!("{lo:.6} to {hi:.6} eV"),
        None => "none".to_string(),
    };
    let report = [
        format!("file      {}", args.file.display()),
        format!(
            "frames    {} ({} periodic, {} open)",
            s.frames,
            s.periodic,
            s.frames - s.periodic
        ),
        format!(
            "atoms     {} in total; per frame min {}, max {}, mean {:.2}",
            s.atoms_total,
            s.atoms_min,
            s.atoms_max,
            s.atoms_total as f64 / s.frames as f64
        ),
        format!("elements  {}", elements.join(", ")),
        format!("info      {}", labels(&s.info_keys)),
        format!("per-atom  {}", labels(&s.arrays)),
        format!("energy    {energy}{non_finite}"),
    ];
    // Written, not printed: a closed pipe (`minima info … | head`) is an error main ends
    // quietly on, where println! would panic.
    writeln!(std::io::stdout().lock(), "{}", report.join("\n"))?;
    Ok(())
}
