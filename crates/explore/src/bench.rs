//! Speed and memory of the parts without libtorch, as `minima bench` measures them on this
//! machine (never asserted in tests): neighbour lists of large crystals and EMT.

use minima_atoms::build::fcc_supercell;
use minima_atoms::Atoms;
use minima_label::Calculator;
use serde::Serialize;
use std::time::Instant;

/// The fastest and the median of repeated timings, seconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timing {
    pub best_s: f64,
    pub median_s: f64,
}

impl Timing {
    /// Of at least one timing.
    fn of(mut times: Vec<f64>) -> Timing {
        times.sort_by(f64::total_cmp);
        Timing {
            best_s: times[0],
            median_s: times[times.len() / 2],
        }
    }
}

/// One neighbour-list measurement.
#[derive(Debug, Clone, Serialize)]
pub struct NeighborsRow {
    pub atoms: usize,
    pub cutoff: f64,
    pub edges: usize,
    #[serde(flatten)]
    pub timing: Timing,
    pub edge_bytes: usize,
    /// Peak resident memory above the level before the search, where the system reports it.
    pub peak_rss_increase_bytes: Option<usize>,
}

/// The neighbour list of periodic fcc Cu (a = 3.61 Å) of about `target` atoms (whole cubic
/// cells), `repeat` times (at least once), on one core. Refuses a crystal that would not fit
/// the memory budget before its search could estimate its own needs.
pub fn neighbors(target: usize, cutoff: f64, repeat: usize) -> Result<NeighborsRow, String> {
    let reps = ((target as f64 / 4.0).cbrt().round() as usize).max(1);
    let atoms = 4.0 * (reps as f64).powi(3);
    let crystal_bytes = atoms * (std::mem::size_of::<minima_atoms::Vec3>() * 4) as f64;
    let budget = minima_neighbors::memory_budget().map_err(|e| e.to_string())?;
    if crystal_bytes > budget as f64 {
        return Err(format!(
            "--atoms {target}: a crystal of {atoms:.0} atoms needs about {:.1} GiB before its search, over the \
             {:.1} GiB budget ({}); measure fewer atoms",
            crystal_bytes / (1u64 << 30) as f64,
            budget as f64 / (1u64 << 30) as f64,
            minima_neighbors::MEMORY_BUDGET_VARIABLE
        ));
    }
    let crystal = fcc_supercell(29, 3.61, reps);
    let mut times = Vec::with_capacity(repeat.max(1));
    let (mut edges, mut edge_bytes, mut peak) = (0, 0, None);
    for _ in 0..repeat.max(1) {
        let before = minima_io::process::reset_peak_rss();
        let start = Instant::now();
        let list = minima_neighbors::neighbor_list(&crystal, cutoff).map_err(|e| e.to_string())?;
        times.push(start.elapsed().as_secs_f64());
        peak = minima_io::process::peak_rss()
            .zip(before)
            .map(|(peak, base)| peak.saturating_sub(base));
        edges = list.len();
        edge_bytes = list.heap_bytes();
    }
    if edges == 0 {
        return Err(format!(
            "no neighbours found: cutoff {cutoff} Å is below the Cu–Cu distance"
        ));
    }
    Ok(NeighborsRow {
        atoms: crystal.len(),
        cutoff,
        edges,
        timing: Timing::of(times),
        edge_bytes,
        peak_rss_increase_bytes: peak,
    })
}

/// One EMT measurement.
#[derive(Debug, Clone, Serialize)]
pub struct EmtRow {
    pub threads: usize,
    #[serde(flatten)]
    pub timing: Timing,
    /// eV.
    pub energy: f64,
}

/// EMT energy and forces of `atoms` on `threads` threads, `repeat` times (at least once).
pub fn emt(atoms: &Atoms, threads: usize, repeat: usize) -> Result<EmtRow, minima_label::CalcError> {
    let emt = minima_label::Emt::with_threads(threads);
    let mut times = Vec::with_capacity(repeat.max(1));
    let mut energy = 0.0;
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        energy = emt.calculate(atoms)?.energy;
        times.push(start.elapsed().as_secs_f64());
    }
    Ok(EmtRow {
        threads,
        timing: Timing::of(times),
        energy,
    })
}
