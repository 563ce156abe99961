//! `minima bench …`: speed and memory measured on this machine, never asserted in tests.

use std::time::Instant;

use anyhow::{bail, Result};
use minima_atoms::build::fcc_supercell;
use minima_neighbors::neighbor_list;
use serde_json::json;

#[derive(clap::Subcommand)]
pub enum Bench {
    /// Neighbour list of periodic fcc Cu crystals (a = 3.61 Å) on one core.
    Neighbors {
        /// Approximate atom counts to measure (each rounded to whole cubic cells).
        #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
        atoms: Vec<usize>,
        /// Cutoff (Å).
        #[arg(long, default_value_t = 5.0)]
        cutoff: f64,
        /// Timed repetitions per size; the fastest and the median are reported.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
}

pub fn run(bench: Bench) -> Result<()> {
    match bench {
        Bench::Neighbors { atoms, cutoff, repeat } => neighbors(&atoms, cutoff, repeat.max(1)),
    }
}

fn neighbors(sizes: &[usize], cutoff: f64, repeat: usize) -> Result<()> {
    println!(
        "{:>10} {:>12} {:>10} {:>10} {:>14} {:>14}",
        "atoms", "edges", "best s", "median s", "edges MiB", "peak RSS MiB"
    );
    let mut rows = Vec::new();
    for &target in sizes {
        let reps = ((target as f64 / 4.0).cbrt().round() as usize).max(1);
        let crystal = fcc_supercell(29, 3.61, reps);
        let mut times = Vec::with_capacity(repeat);
        let mut edges = 0;
        let mut edge_bytes = 0;
        let mut peak_delta = None;
        for _ in 0..repeat {
            let before = reset_peak_rss();
            let start = Instant::now();
            let list = neighbor_list(&crystal, cutoff)?;
            times.push(start.elapsed().as_secs_f64());
            peak_delta = peak_rss().zip(before).map(|(peak, base)| peak.saturating_sub(base));
            edges = list.len();
            edge_bytes = list.heap_bytes();
        }
        if edges == 0 {
            bail!("no neighbours found: cutoff {cutoff} Å is below the Cu–Cu distance");
        }
        times.sort_by(f64::total_cmp);
        let (best, median) = (times[0], times[times.len() / 2]);
        let mib = |b: usize| b as f64 / (1 << 20) as f64;
        println!(
            "{:>10} {:>12} {:>10.3} {:>10.3} {:>14.1} {:>14}",
            crystal.len(),
            edges,
            best,
            median,
            mib(edge_bytes),
            peak_delta.map_or("n/a".to_string(), |p| format!("{:.1}", mib(p)))
        );
        rows.push(json!({
            "atoms": crystal.len(), "cutoff": cutoff, "edges": edges, "best_s": best, "median_s": median,
            "edge_bytes": edge_bytes, "peak_rss_increase_bytes": peak_delta,
        }));
    }
    if let [small, .., large] = rows.as_slice() {
        let ratio = |key: &str| large[key].as_f64().unwrap_or(0.0) / small[key].as_f64().unwrap_or(1.0);
        println!(
            "growth: atoms ×{:.2}, best time ×{:.2}",
            ratio("atoms"),
            ratio("best_s")
        );
    }
    println!("{}", serde_json::to_string(&rows)?);
    Ok(())
}

/// Resets the kernel's peak-RSS counter of this process (Linux `clear_refs`), returning the
/// current RSS in bytes, so that the peak after a run is that run's own.
fn reset_peak_rss() -> Option<usize> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    status_kib("VmRSS")
}

fn peak_rss() -> Option<usize> {
    status_kib("VmHWM")
}

fn status_kib(key: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
