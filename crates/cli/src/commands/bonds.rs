//! `minima bonds -i FILE [--json]`: perceived bonds per frame.
//!
//! Frames that record a `scale` (the scans of `minima data qm9-scan`) are perceived at their
//! unscaled reference geometry, so every scale of a molecule gets its equilibrium bonds.
//! With `--json`, one JSON array per frame and line: `[[i, j, order], …]` with order 1, 2, 3
//! or 1.5 (aromatic), `i < j`; bonds to a periodic image carry the image as a fourth element.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use minima_bonds::{perceive, reference_geometry};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// An extxyz file.
    #[arg(short, long)]
    input: PathBuf,
    /// Print JSON Lines (one array of bonds per frame) instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut incomplete = Vec::new();
    super::for_each_frame(&args.input, |index, atoms| {
        let reference = reference_geometry(&atoms).with_context(|| format!("frame {index}"))?;
        let p = perceive(&reference).with_context(|| format!("frame {index}"))?;
        if !p.complete {
            incomplete.push(index);
        }
        if args.json {
            let bonds: Vec<serde_json::Value> = p
                .bonds
                .iter()
                .map(|b| {
                    if b.shift == [0, 0, 0] {
                        json!([b.i, b.j, b.order.as_f64()])
                    } else {
                        json!([b.i, b.j, b.order.as_f64(), b.shift])
                    }
                })
                .collect();
            writeln!(out, "{}", serde_json::Value::Array(bonds))?;
        } else {
            let listed: Vec<String> = p
                .bonds
                .iter()
                .map(|b| format!("{}-{}:{:?}", b.i, b.j, b.order))
                .collect();
            writeln!(
                out,
                "frame {index} {} ({} bonds): {}",
                atoms.formula(),
                p.bonds.len(),
                listed.join(" ")
            )?;
        }
        Ok(())
    })?;
    out.flush()?;
    if !incomplete.is_empty() {
        let shown: Vec<String> = incomplete.iter().take(10).map(|i| i.to_string()).collect();
        let more = if incomplete.len() > 10 { ", …" } else { "" };
        eprintln!(
            "warning: {} frames have atoms whose valence could not be satisfied (radicals or broken geometry): frames {}{more}",
            incomplete.len(),
            shown.join(", ")
        );
    }
    Ok(())
}
