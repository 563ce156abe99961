//! Neighbour lists by linked cells (cell lists), O(N) in the number of atoms.
//!
//! The search runs in fractional coordinates of the cell, so one code path serves open
//! structures (the identity frame over the atoms' bounding box), periodic and mixed boundaries,
//! triclinic cells, and cells thinner than the cutoff: along a periodic axis the search reaches
//! as many images as the cutoff needs (as fairchem's `radius_graph_pbc` does), and an atom may
//! neighbour its own images.
//!
//! The result is the flat edge list the models consume: for each directed pair `(i, j, S)`,
//! `r_j + S · cell − r_i` is the displacement from atom `i` to the image `S` of atom `j`, using
//! the positions as given (not wrapped). Every pair appears in both directions; edges are
//! sorted by `i`.
//!
//! Hostile input is refused before anything large is allocated: non-finite or far-out
//! coordinates, coincident atoms (or an atom and a periodic image at one place), and searches
//! whose memory estimate (atoms, bins, search buffers, expected pairs) exceeds the budget of
//! [`memory_budget`] — 4 GiB unless `MINIMA_NEIGHBOR_MEMORY` says otherwise. While the search
//! runs it counts the pairs found, so input the estimate misjudges (atoms crowded into one
//! corner of a large cell) is refused at the budget instead of growing memory without limit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use minima_atoms::cell::{add, dot, sub, Cell, Vec3};
use minima_atoms::Atoms;

pub mod parallel;
use parallel::map_chunks;

/// Atoms closer than this (Å), to each other or to a periodic image, are coincident: no
/// potential is defined there (EMT's forces turn into rounding noise of thousands of eV/Å).
/// Well above the rounding of positions up to [`MAX_COORDINATE`].
pub const COINCIDENT_DISTANCE: f64 = 1e-5;

/// The largest coordinate magnitude (Å) searched: f64 still resolves 1e-5 Å there, and the
/// extent of a structure cannot overflow.
pub const MAX_COORDINATE: f64 = 1e10;

/// The most lattice vectors a position may lie from the cell's origin along a periodic axis,
/// so that image offsets stay exact `i32`s.
pub const MAX_CELLS_AWAY: f64 = 1e9;

/// The memory budget of one search unless `MINIMA_NEIGHBOR_MEMORY` sets another: 4 GiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 4 << 30;

/// The environment variable that sets the memory budget: bytes, or a number with a binary
/// suffix K, M, G or T (`8G`, `512M`).
pub const MEMORY_BUDGET_VARIABLE: &str = "MINIMA_NEIGHBOR_MEMORY";

/// Bin images one search may visit (atoms × images of the bins within reach): beyond this a
/// search takes hours, as a cutoff of thousands of cell heights would.
pub const MAX_BIN_VISITS: f64 = 1e10;

/// Bytes one stored directed edge of a [`NeighborList`] takes.
const EDGE_BYTES: usize = 4 + 4 + 12 + 8;

/// Directed edges within the cutoff, as parallel arrays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NeighborList {
    /// Centre atom of each edge.
    pub first: Vec<u32>,
    /// Neighbour atom of each edge.
    pub second: Vec<u32>,
    /// Lattice image of the neighbour, in units of the cell vectors (zero when open).
    pub shifts: Vec<[i32; 3]>,
    /// Length of each edge (Å).
    pub distances: Vec<f64>,
}

impl NeighborList {
    pub fn len(&self) -> usize {
        self.first.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// Bytes held by the edge arrays (what a 10⁶-atom list costs).
    pub fn heap_bytes(&self) -> usize {
        self.first.capacity() * 4
            + self.second.capacity() * 4
            + self.shifts.capacity() * 12
            + self.distances.capacity() * 8
    }

    fn push(&mut self, edge: Edge) {
        self.first.push(edge.i);
        self.second.push(edge.j);
        self.shifts.push(edge.shift);
        self.distances.push(edge.d2.sqrt());
    }

    /// The lists one after the other.
    fn concatenate(parts: Vec<NeighborList>) -> NeighborList {
        if parts.len() == 1 {
            return parts.into_iter().next().expect("one part");
        }
        let mut list = NeighborList::with_capacity(parts.iter().map(NeighborList::len).sum());
        for part in parts {
            list.first.extend_from_slice(&part.first);
            list.second.extend_from_slice(&part.second);
            list.shifts.extend_from_slice(&part.shifts);
            list.distances.extend_from_slice(&part.distances);
        }
        list
    }

    fn with_capacity(n: usize) -> NeighborList {
        NeighborList {
            first: Vec::with_capacity(n),
            second: Vec::with_capacity(n),
            shifts: Vec::with_capacity(n),
            distances: Vec::with_capacity(n),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NeighborError {
    #[error("cutoff must be a positive finite number of Å, got {0}")]
    BadCutoff(f64),
    #[error("periodic along an axis but no cell is given")]
    PeriodicWithoutCell,
    #[error("atom {atom} has a non-finite coordinate (NaN or inf)")]
    NonFinitePosition { atom: usize },
    #[error(
        "atom {atom} lies {coordinate:.3e} Å from the origin, beyond the ±{MAX_COORDINATE:.0e} Å \
         where distances stay accurate: translate the structure towards the origin"
    )]
    FarPosition { atom: usize, coordinate: f64 },
    #[error(
        "atom {atom} lies {cells:.3e} lattice vectors from the cell along axis {axis}, beyond \
         {MAX_CELLS_AWAY:.0e}: wrap the positions into the cell"
    )]
    FarFromCell { atom: usize, axis: usize, cells: f64 },
    #[error("{}", coincidence(*.i, *.j, *.shift, *.distance))]
    Coincident {
        i: usize,
        j: usize,
        shift: [i32; 3],
        distance: f64,
    },
    /// The search would need more memory (or time) than it is allowed; the message gives the
    /// estimate and what lowers it.
    #[error("{0}")]
    TooLarge(String),
    #[error("{MEMORY_BUDGET_VARIABLE}={0:?} is not a number of bytes (e.g. 8G, 512M, 1000000)")]
    BadBudget(String),
}

/// The words of [`NeighborError::Coincident`].
fn coincidence(i: usize, j: usize, shift: [i32; 3], distance: f64) -> String {
    let place = format!("{distance:.1e} Å apart, closer than {COINCIDENT_DISTANCE:.0e} Å");
    match (i == j, shift == [0; 3]) {
        (true, _) => format!(
            "atom {i} coincides with its own periodic image {shift:?} ({place}): a lattice vector \
             combination has no length"
        ),
        (false, true) => format!("atoms {i} and {j} coincide ({place})"),
        (false, false) => format!(
            "atom {i} and the periodic image {shift:?} of atom {j} coincide ({place}): two atoms \
             at one place in the crystal"
        ),
    }
}

/// The memory budget of a neighbour search, bytes: `MINIMA_NEIGHBOR_MEMORY` when set, else
/// [`DEFAULT_MEMORY_BUDGET`].
pub fn memory_budget() -> Result<u64, NeighborError> {
    match std::env::var(MEMORY_BUDGET_VARIABLE) {
        Ok(text) => parse_bytes(&text).ok_or(NeighborError::BadBudget(text)),
        Err(_) => Ok(DEFAULT_MEMORY_BUDGET),
    }
}

/// `8G`, `512M`, `64K`, `1T` (binary multiples) or a plain number of bytes.
fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last()? {
        (at, c) if c.is_ascii_alphabetic() => (&text[..at], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let power = "BKMGT".find(unit)? as i32;
    let value: f64 = number.trim().parse().ok()?;
    let bytes = value * 1024f64.powi(power);
    (bytes.is_finite() && bytes >= 1.0).then_some(bytes as u64)
}

/// The neighbour list of a structure.
pub fn neighbor_list(atoms: &Atoms, cutoff: f64) -> Result<NeighborList, NeighborError> {
    neighbor_list_of(atoms.positions(), atoms.cell(), atoms.pbc(), cutoff)
}

/// Checks that no two atoms (nor an atom and a periodic image) coincide, closer than
/// [`COINCIDENT_DISTANCE`], for callers that take every pair without a search; linear time.
pub fn check_separated(positions: &[Vec3], cell: Option<&Cell>, pbc: [bool; 3]) -> Result<(), NeighborError> {
    neighbor_list_of(positions, cell, pbc, COINCIDENT_DISTANCE).map(drop)
}

/// Each pair once: the edges of [`neighbor_list`] with `i < j`, or `i == j` and a shift whose
/// first non-zero component is positive (not sorted). For pair potentials that update both
/// ends of a pair at once: half the search (half the bin offsets) and half the edges. The
/// centre atoms are split over `threads` threads; the list is the same for any number.
pub fn half_neighbor_list(atoms: &Atoms, cutoff: f64, threads: usize) -> Result<NeighborList, NeighborError> {
    // The parts and their concatenation are held at once.
    let parts = fold_half_pairs(
        atoms,
        cutoff,
        threads,
        2 * EDGE_BYTES,
        NeighborList::with_capacity,
        NeighborList::push,
    )?;
    Ok(NeighborList::concatenate(parts))
}

/// One pair as a search finds it: `d = r_j + shift · cell − r_i` (positions as given).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    pub i: u32,
    pub j: u32,
    pub shift: [i32; 3],
    pub d: Vec3,
    /// |d|².
    pub d2: f64,
}

impl Edge {
    /// The same pair seen from `j`.
    fn reversed(self) -> Edge {
        Edge {
            i: self.j,
            j: self.i,
            shift: self.shift.map(|c| -c),
            d: self.d.map(|c| -c),
            d2: self.d2,
        }
    }
}

/// The pairs of [`half_neighbor_list`] visited as they are found instead of stored, for pair
/// potentials that would only read the list once. The centre atoms are split into runs, in
/// order, over up to `threads` threads; each run folds its pairs into `start(expected pairs)`,
/// and the states come back in the runs' order. `bytes_per_pair` is what the states keep per
/// pair, for the memory estimate against [`memory_budget`].
pub fn fold_half_pairs<T: Send>(
    atoms: &Atoms,
    cutoff: f64,
    threads: usize,
    bytes_per_pair: usize,
    start: impl Fn(usize) -> T + Sync,
    visit: impl Fn(&mut T, Edge) + Sync,
) -> Result<Vec<T>, NeighborError> {
    let frame = frame_of(atoms.cell(), atoms.pbc(), cutoff)?;
    let resources = Resources {
        threads,
        budget: memory_budget()?,
        bytes_per_pair,
    };
    frame.search(atoms.positions(), cutoff, true, resources, start, visit)
}

/// The neighbour list of bare positions, optionally in a cell with per-axis periodicity.
pub fn neighbor_list_of(
    positions: &[Vec3],
    cell: Option<&Cell>,
    pbc: [bool; 3],
    cutoff: f64,
) -> Result<NeighborList, NeighborError> {
    neighbor_list_within(positions, cell, pbc, cutoff, memory_budget()?)
}

/// [`neighbor_list_of`] with an explicit memory budget (bytes) instead of [`memory_budget`].
pub fn neighbor_list_within(
    positions: &[Vec3],
    cell: Option<&Cell>,
    pbc: [bool; 3],
    cutoff: f64,
    budget: u64,
) -> Result<NeighborList, NeighborError> {
    let frame = frame_of(cell, pbc, cutoff)?;
    let resources = Resources {
        threads: 1,
        budget,
        bytes_per_pair: EDGE_BYTES,
    };
    let parts = frame.search(
        positions,
        cutoff,
        false,
        resources,
        NeighborList::with_capacity,
        NeighborList::push,
    )?;
    Ok(NeighborList::concatenate(parts))
}

/// What one search may spend.
#[derive(Debug, Clone, Copy)]
struct Resources {
    /// Threads the centre atoms are split over.
    threads: usize,
    /// Memory, bytes.
    budget: u64,
    /// Bytes the caller keeps per pair found.
    bytes_per_pair: usize,
}

fn frame_of(cell: Option<&Cell>, pbc: [bool; 3], cutoff: f64) -> Result<Frame, NeighborError> {
    if !(cutoff.is_finite() && cutoff > 0.0) {
        return Err(NeighborError::BadCutoff(cutoff));
    }
    let periodic = pbc.iter().any(|&p| p);
    match cell {
        Some(&cell) if periodic => Ok(Frame { cell, pbc }),
        None if periodic => Err(NeighborError::PeriodicWithoutCell),
        // Open structures: fractional coordinates are Cartesian ones.
        _ => Ok(Frame {
            cell: Cell::orthorhombic(1.0, 1.0, 1.0).expect("unit cell"),
            pbc: [false; 3],
        }),
    }
}

/// The cell and periodicity the search runs in.
struct Frame {
    cell: Cell,
    pbc: [bool; 3],
}

/// Atoms binned by linked cell, stored in bin order for locality.
struct Bins {
    /// `start[b]..start[b + 1]` indexes `atoms` and `wrapped` for bin `b`.
    start: Vec<usize>,
    atoms: Vec<u32>,
    wrapped: Vec<Vec3>,
    /// The slot of each atom.
    slot_of: Vec<usize>,
}

impl Frame {
    /// Folds the edges found from runs of centre atoms, in order, over up to `threads`
    /// threads (see [`fold_half_pairs`]), within `resources`.
    fn search<T: Send>(
        &self,
        positions: &[Vec3],
        cutoff: f64,
        half: bool,
        resources: Resources,
        start: impl Fn(usize) -> T + Sync,
        visit: impl Fn(&mut T, Edge) + Sync,
    ) -> Result<Vec<T>, NeighborError> {
        let search = Search::new(self, positions, cutoff, half)?;
        let n = positions.len();
        // A thread costs tens of µs to start: each gets a few hundred centre atoms at least.
        let threads = resources.threads.max(1);
        let chunk = n.div_ceil(threads).max(256);
        let runs_at_once = n.div_ceil(chunk).clamp(1, threads);
        let guard = search.guard(runs_at_once, resources)?;
        let results = map_chunks(n, chunk, threads, |centres| {
            let mut state = start((centres.len() as f64 * search.edges_per_atom) as usize);
            search.atoms(centres, &guard, |edge| visit(&mut state, edge))?;
            Ok(state)
        });
        // A run is abandoned only after another one failed, so an abandoned run always comes
        // with the failure that is returned.
        let mut states = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(state) => states.push(state),
                Err(Stop::Failed(error)) => return Err(error),
                Err(Stop::Abandoned) => {}
            }
        }
        Ok(states)
    }

    /// The bin `delta` away from `bin` along `axis`, with the lattice shift that reaching it
    /// across a periodic boundary takes; `None` when an open axis has no such bin.
    fn neighbor_bin(&self, bin: usize, delta: i64, count: usize, axis: usize) -> Option<(usize, i32)> {
        let c = bin as i64 + delta;
        let count = count as i64;
        if self.pbc[axis] {
            Some((c.rem_euclid(count) as usize, c.div_euclid(count) as i32))
        } else if (0..count).contains(&c) {
            Some((c as usize, 0))
        } else {
            None
        }
    }

    /// Refuses positions the search cannot treat exactly: non-finite, so far out that f64
    /// loses the distances, or so many cells away that image offsets overflow.
    fn check_positions(&self, positions: &[Vec3]) -> Result<(), NeighborError> {
        for (atom, r) in positions.iter().enumerate() {
            if r.iter().any(|x| !x.is_finite()) {
                return Err(NeighborError::NonFinitePosition { atom });
            }
            if let Some(&coordinate) = r.iter().find(|x| x.abs() > MAX_COORDINATE) {
                return Err(NeighborError::FarPosition { atom, coordinate });
            }
            let s = self.cell.fractional(*r);
            if let Some(axis) = (0..3).find(|&k| self.pbc[k] && s[k].abs() > MAX_CELLS_AWAY) {
                return Err(NeighborError::FarFromCell {
                    atom,
                    axis,
                    cells: s[axis],
                });
            }
        }
        Ok(())
    }
}

/// Why a run of centre atoms stopped early.
enum Stop {
    Failed(NeighborError),
    /// Another run failed; this one's result would be thrown away.
    Abandoned,
}

/// Counts the pairs all runs found against the most the budget holds, and tells runs to stop
/// once one has failed.
struct Guard {
    max_pairs: u64,
    found: AtomicU64,
    stop: AtomicBool,
    /// The error when the pairs overflow the budget.
    overflow: String,
}

impl Guard {
    /// Adds one centre atom's pairs; fails once the total passes the budget.
    fn count(&self, pairs: u64) -> Result<(), Stop> {
        let total = self.found.fetch_add(pairs, Ordering::Relaxed) + pairs;
        if total > self.max_pairs {
            return Err(self.fail(NeighborError::TooLarge(self.overflow.clone())));
        }
        if self.stop.load(Ordering::Relaxed) {
            return Err(Stop::Abandoned);
        }
        Ok(())
    }

    fn fail(&self, error: NeighborError) -> Stop {
        self.stop.store(true, Ordering::Relaxed);
        Stop::Failed(error)
    }
}

/// Everything the search of one centre atom reads: atoms binned by linked cell, with their
/// wrapped positions and lattice offsets. Shared (read-only) by the search threads.
struct Search<'a> {
    frame: &'a Frame,
    wrapped: Vec<Vec3>,
    /// `wrapped = r − offset · cell`.
    offsets: Vec<[i32; 3]>,
    atom_bins: Vec<[usize; 3]>,
    bins: Bins,
    counts: [usize; 3],
    /// How many bins away a neighbour can sit along each axis.
    reach: [i64; 3],
    cutoff: f64,
    cutoff2: f64,
    half: bool,
    /// Pairs the search is expected to find (each once in a half search).
    expected_pairs: f64,
    /// Expected edges per centre atom, to reserve the output once.
    edges_per_atom: f64,
    /// The most atoms in one bin.
    largest_bin: usize,
}

/// Bytes the search holds per atom: positions wrapped twice (as given and in bin order),
/// fractional coordinates, offsets, bins and slots.
const SEARCH_BYTES_PER_ATOM: f64 = (24 + 24 + 24 + 12 + 24 + 4 + 8) as f64;

impl<'a> Search<'a> {
    fn new(frame: &'a Frame, positions: &[Vec3], cutoff: f64, half: bool) -> Result<Search<'a>, NeighborError> {
        frame.check_positions(positions)?;
        let n = positions.len();
        // Wrap along periodic axes, remembering the lattice offset of each atom.
        let (wrapped, offsets): (Vec<Vec3>, Vec<[i32; 3]>) =
            positions.iter().map(|&r| frame.cell.wrap(r, frame.pbc)).unzip();
        let fractional: Vec<Vec3> = wrapped.iter().map(|&w| frame.cell.fractional(w)).collect();
        let heights = frame.cell.heights();
        let mut lo = [0.0; 3];
        let mut extent = [1.0; 3];
        for k in 0..3 {
            if !frame.pbc[k] {
                let (min, max) = range_along(&fractional, k).unwrap_or((0.0, 0.0));
                lo[k] = min;
                extent[k] = max - min;
            }
        }
        let thickness: Vec3 = std::array::from_fn(|k| extent[k] * heights[k]);
        let counts = bin_counts(thickness, cutoff, n);
        let reach: [f64; 3] = std::array::from_fn(|k| {
            let bins = (cutoff * counts[k] as f64 / thickness[k]).ceil();
            match (thickness[k] > 0.0, frame.pbc[k]) {
                (false, _) => 0.0,
                (true, true) => bins,
                // Along an open axis no bin lies further than the grid is long.
                (true, false) => bins.min(counts[k] as f64 - 1.0),
            }
        });
        // Saturating: a reach too far to search is refused by `guard` before it is used.
        let reach = reach.map(|r| r as i64);
        let bin_of = |s: &Vec3| -> [usize; 3] {
            std::array::from_fn(|k| {
                if extent[k] > 0.0 {
                    let b = ((s[k] - lo[k]) / extent[k] * counts[k] as f64).floor();
                    (b.max(0.0) as usize).min(counts[k] - 1)
                } else {
                    0
                }
            })
        };
        let atom_bins: Vec<[usize; 3]> = fractional.iter().map(bin_of).collect();
        let bins = fill_bins(&atom_bins, &wrapped, counts);
        let largest_bin = bins.start.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        let expected_pairs = if half { 0.5 } else { 1.0 } * expected_pairs(n, &frame.cell, extent, cutoff, frame.pbc);
        Ok(Search {
            frame,
            wrapped,
            offsets,
            atom_bins,
            bins,
            counts,
            reach,
            cutoff,
            cutoff2: cutoff * cutoff,
            half,
            expected_pairs,
            edges_per_atom: expected_pairs / n.max(1) as f64,
            largest_bin,
        })
    }

    /// Candidates one centre atom collects at most: a row of bins along x (in f64, as the
    /// estimate takes it before the reach is known to be searchable).
    fn buffer_len(&self) -> f64 {
        self.largest_bin as f64 * (2.0 * self.reach[0] as f64 + 1.0) + 1.0
    }

    /// The memory estimate against the budget, before the search buffers and the pairs are
    /// allocated: a clear refusal when over, else the guard that holds the search to it.
    fn guard(&self, runs_at_once: usize, limits: Resources) -> Result<Guard, NeighborError> {
        let n = self.wrapped.len() as f64;
        let held = n * SEARCH_BYTES_PER_ATOM + 16.0 * self.bins.start.len() as f64;
        let buffers = 16.0 * runs_at_once as f64 * self.buffer_len();
        let per_pair = limits.bytes_per_pair.max(1) as f64;
        let needed = held + buffers + self.expected_pairs * per_pair;
        let budget = limits.budget as f64;
        let lower = self.what_lowers_it();
        if needed > budget {
            return Err(NeighborError::TooLarge(format!(
                "the neighbour search would need about {} ({:.3e} expected pairs within the {} Å \
                 cutoff at {} bytes each, {} of atoms, bins and search buffers), more than its \
                 budget of {}: {lower}",
                bytes(needed),
                self.expected_pairs,
                length(self.cutoff),
                limits.bytes_per_pair,
                bytes(held + buffers),
                bytes(budget),
            )));
        }
        check_visits(self)?;
        let max_pairs = ((budget - held - buffers) / per_pair) as u64;
        Ok(Guard {
            max_pairs,
            found: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            overflow: format!(
                "the neighbour search found more than {max_pairs} pairs within the {} Å cutoff \
                 (the atoms are much denser in places than on average), more than its budget of \
                 {} holds at {} bytes each: {lower}",
                length(self.cutoff),
                bytes(budget),
                limits.bytes_per_pair,
            ),
        })
    }

    /// Advice on lowering the memory of this search.
    fn what_lowers_it(&self) -> String {
        let heights = self.frame.cell.heights();
        let thinnest = (0..3)
            .filter(|&k| self.frame.pbc[k])
            .map(|k| heights[k])
            .fold(f64::INFINITY, f64::min);
        let cell = if thinnest < self.cutoff {
            format!(
                ", or a larger cell (its thinnest height, {} Å, is below the cutoff, so each atom \
                 meets many images of every atom)",
                length(thinnest)
            )
        } else {
            String::new()
        };
        format!("use a smaller cutoff{cell}, or fewer atoms, or raise {MEMORY_BUDGET_VARIABLE} (e.g. 16G)")
    }

    /// The bins along x from `from` to `reach[0]` bins away from bin `bx`, as runs of
    /// consecutive bins (contiguous slots) that share one lattice shift, into `runs`.
    fn x_runs(&self, bx: usize, from: i64, runs: &mut Vec<(std::ops::Range<usize>, i32)>) {
        runs.clear();
        for dx in from..=self.reach[0] {
            let Some((cx, sx)) = self.frame.neighbor_bin(bx, dx, self.counts[0], 0) else {
                continue;
            };
            match runs.last_mut() {
                Some((bins, shift)) if *shift == sx && bins.end == cx => bins.end += 1,
                _ => runs.push((cx..cx + 1, sx)),
            }
        }
    }

    /// The edges of the centre atoms `centres`, in order, handed to `visit`; stops at
    /// coincident atoms, when the pairs pass the budget, or when another run has stopped.
    fn atoms(&self, centres: std::ops::Range<usize>, guard: &Guard, mut visit: impl FnMut(Edge)) -> Result<(), Stop> {
        let (counts, reach, half) = (self.counts, self.reach, self.half);
        let bins = &self.bins;
        let coincident2 = COINCIDENT_DISTANCE * COINCIDENT_DISTANCE;
        // Candidates within the cutoff, collected without a branch per candidate: most
        // candidates of a linked cell lie outside the sphere, and mispredictions cost more
        // than the distances.
        let most = self.buffer_len() as usize;
        let mut hit_slots = vec![0usize; most];
        let mut hit_d2 = vec![0.0; most];
        let mut all_runs = Vec::new();
        let mut forward_runs = Vec::new();
        for i in centres {
            let ri = self.wrapped[i];
            let bi = self.atom_bins[i];
            let mut found = 0u64;
            self.x_runs(bi[0], -reach[0], &mut all_runs);
            self.x_runs(bi[0], 0, &mut forward_runs);
            for dz in -reach[2]..=reach[2] {
                let Some((cz, sz)) = self.frame.neighbor_bin(bi[2], dz, counts[2], 2) else {
                    continue;
                };
                for dy in -reach[1]..=reach[1] {
                    let Some((cy, sy)) = self.frame.neighbor_bin(bi[1], dy, counts[1], 1) else {
                        continue;
                    };
                    // Half lists search half the bin offsets (the other half finds the same
                    // pairs from the other end): rows ahead in z, then y, and along the own
                    // row the bins ahead in x and the later slots of the own bin.
                    let own_row = dy == 0 && dz == 0;
                    if half && first_nonzero_is_negative(&[dy, dz, 0]) {
                        continue;
                    }
                    let runs = if half && own_row { &forward_runs } else { &all_runs };
                    for (bins_x, sx) in runs.iter().cloned() {
                        let shift = [sx, sy, sz];
                        let origin = sub(ri, self.frame.cell.shift(shift));
                        let row = flat_bin([0, cy, cz], counts);
                        let mut first_slot = bins.start[row + bins_x.start];
                        if half && own_row && bins_x.start == bi[0] && sx == 0 {
                            first_slot = bins.slot_of[i] + 1;
                        }
                        let mut hits = 0;
                        for slot in first_slot..bins.start[row + bins_x.end] {
                            let d = sub(bins.wrapped[slot], origin);
                            let d2 = dot(d, d);
                            hit_slots[hits] = slot;
                            hit_d2[hits] = d2;
                            hits += usize::from(d2 < self.cutoff2);
                        }
                        for (&slot, &d2) in hit_slots[..hits].iter().zip(&hit_d2) {
                            let j = bins.atoms[slot] as usize;
                            if j == i && shift == [0, 0, 0] {
                                continue;
                            }
                            let (oi, oj) = (self.offsets[i], self.offsets[j]);
                            // d = w_j + S·cell − w_i with w = r − o·cell, so the shift on the given
                            // positions is S − o_j + o_i.
                            let given: [i32; 3] = std::array::from_fn(|k| shift[k] - oj[k] + oi[k]);
                            let edge = Edge {
                                i: i as u32,
                                j: j as u32,
                                shift: given,
                                d: sub(bins.wrapped[slot], origin),
                                d2,
                            };
                            // Stated as i < j (or i == j and a positive shift), a pair found
                            // from j is backward: half lists turn it around.
                            let backward = j < i || (j == i && first_nonzero_is_negative(&given));
                            if d2 < coincident2 {
                                let stated = if backward { edge.reversed() } else { edge };
                                return Err(guard.fail(NeighborError::Coincident {
                                    i: stated.i as usize,
                                    j: stated.j as usize,
                                    shift: stated.shift,
                                    distance: d2.sqrt(),
                                }));
                            }
                            visit(if half && backward { edge.reversed() } else { edge });
                            found += 1;
                        }
                    }
                }
            }
            guard.count(found)?;
        }
        Ok(())
    }
}

/// Refuses a search that would visit more bin images than [`MAX_BIN_VISITS`] (a cutoff of
/// thousands of heights of a skewed cell that holds few pairs), before its buffers exist.
fn check_visits(search: &Search) -> Result<(), NeighborError> {
    let n = search.wrapped.len();
    let per_atom: f64 = search.reach.iter().map(|&r| 2.0 * r as f64 + 1.0).product();
    let visits = n as f64 * per_atom;
    if n == 0 || visits <= MAX_BIN_VISITS {
        return Ok(());
    }
    let cutoff = search.cutoff;
    let heights = search.frame.cell.heights();
    let thinnest = (0..3)
        .filter(|&k| search.frame.pbc[k])
        .map(|k| heights[k])
        .fold(f64::INFINITY, f64::min);
    Err(NeighborError::TooLarge(format!(
        "the neighbour search would visit {visits:.3e} bin images ({per_atom:.3e} per atom), more \
         than {MAX_BIN_VISITS:.0e}: the {} Å cutoff spans {:.3e} heights of the cell \
         (thinnest {} Å); use a smaller cutoff or a larger cell",
        length(cutoff),
        cutoff / thinnest,
        length(thinnest),
    )))
}

/// A length for a message: six significant digits, in powers of ten when far from 1 Å.
fn length(x: f64) -> String {
    if (1e-3..1e6).contains(&x.abs()) {
        let digits = (5 - x.abs().log10().floor() as i32).max(0) as usize;
        let text = format!("{x:.digits$}");
        let text = if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.')
        } else {
            &text
        };
        text.to_string()
    } else {
        format!("{x:.3e}")
    }
}

/// `b` bytes in words: MiB, GiB, or powers of ten of GiB when absurd.
fn bytes(b: f64) -> String {
    let gib = b / f64::from(1u32 << 30);
    if gib < 1.0 {
        format!("{:.1} MiB", b / f64::from(1u32 << 20))
    } else if gib < 1e4 {
        format!("{gib:.1} GiB")
    } else {
        format!("{gib:.2e} GiB")
    }
}

fn first_nonzero_is_negative<T: Copy + Default + PartialOrd>(v: &[T; 3]) -> bool {
    v.iter()
        .find(|&&c| c != T::default())
        .is_some_and(|&c| c < T::default())
}

/// The index of bin `b` in x-fastest order.
fn flat_bin(b: [usize; 3], counts: [usize; 3]) -> usize {
    (b[2] * counts[1] + b[1]) * counts[0] + b[0]
}

/// Counting sort of atoms into bins.
fn fill_bins(atom_bins: &[[usize; 3]], wrapped_positions: &[Vec3], counts: [usize; 3]) -> Bins {
    let flat = |b: [usize; 3]| flat_bin(b, counts);
    let total = counts.iter().product::<usize>();
    let mut start = vec![0usize; total + 1];
    for &b in atom_bins {
        start[flat(b) + 1] += 1;
    }
    for b in 0..total {
        start[b + 1] += start[b];
    }
    let mut fill = start.clone();
    let mut atoms = vec![0u32; atom_bins.len()];
    let mut wrapped = vec![[0.0; 3]; atom_bins.len()];
    let mut slot_of = vec![0; atom_bins.len()];
    for (i, &b) in atom_bins.iter().enumerate() {
        let slot = &mut fill[flat(b)];
        atoms[*slot] = i as u32;
        wrapped[*slot] = wrapped_positions[i];
        slot_of[i] = *slot;
        *slot += 1;
    }
    Bins {
        start,
        atoms,
        wrapped,
        slot_of,
    }
}

/// Smallest and largest coordinate `k` of `points`; `None` when there are none.
fn range_along(points: &[Vec3], k: usize) -> Option<(f64, f64)> {
    points.iter().map(|p| p[k]).fold(None, |range, x| {
        Some(range.map_or((x, x), |(lo, hi): (f64, f64)| (lo.min(x), hi.max(x))))
    })
}

/// Bins at least one cutoff thick, but never many more bins than atoms (a sparse cloud in a
/// huge box must not allocate a huge grid). The longest axes give up bins first, so a needle
/// or a sheet of atoms keeps the grid within the limit too.
fn bin_counts(thickness: Vec3, cutoff: f64, n_atoms: usize) -> [usize; 3] {
    let limit = (2 * n_atoms + 1000) as f64;
    let mut counts: [f64; 3] = std::array::from_fn(|k| (thickness[k] / cutoff).floor().clamp(1.0, limit));
    // Each pass shrinks the axes with more than one bin by a common factor; axes that reach
    // one bin drop out, so three passes bring the product within the limit.
    for _ in 0..3 {
        let total: f64 = counts.iter().product();
        let free: Vec<usize> = (0..3).filter(|&k| counts[k] > 1.0).collect();
        if total <= limit || free.is_empty() {
            break;
        }
        let factor = (total / limit).powf(1.0 / free.len() as f64);
        for k in free {
            counts[k] = (counts[k] / factor).floor().max(1.0);
        }
    }
    counts.map(|c| c as usize)
}

/// The expected number of directed pairs within the cutoff at the structure's mean density:
/// each atom meets the atoms (and periodic images) of a cutoff sphere; in an open structure
/// at most all the others.
fn expected_pairs(n: usize, cell: &Cell, extent: Vec3, cutoff: f64, pbc: [bool; 3]) -> f64 {
    let n = n as f64;
    // The cell along periodic axes (its true volume, however skewed), the atoms' extent
    // grown by the cutoff along open ones.
    let heights = cell.heights();
    let volume = cell.volume()
        * (0..3)
            .map(|k| if pbc[k] { 1.0 } else { extent[k] + cutoff / heights[k] })
            .product::<f64>();
    let sphere = 4.0 / 3.0 * std::f64::consts::PI * cutoff.powi(3);
    let mut per_atom = n * sphere / volume * 1.05;
    if !pbc.iter().any(|&p| p) {
        per_atom = per_atom.min(n - 1.0);
    }
    n * per_atom.max(0.0)
}

/// Reference O(N²·images) search, for tests and for checking the fast path on odd inputs.
pub fn brute_force(positions: &[Vec3], cell: Option<&Cell>, pbc: [bool; 3], cutoff: f64) -> NeighborList {
    // Images needed: the cutoff in cell heights plus the spread of the (unwrapped) positions.
    let reach: [i32; 3] = match cell {
        Some(cell) => {
            let h = cell.heights();
            let fractional: Vec<Vec3> = positions.iter().map(|&r| cell.fractional(r)).collect();
            std::array::from_fn(|k| {
                let (min, max) = range_along(&fractional, k).unwrap_or((0.0, 0.0));
                if pbc[k] {
                    (cutoff / h[k] + (max - min)).ceil() as i32 + 1
                } else {
                    0
                }
            })
        }
        None => [0; 3],
    };
    let mut list = NeighborList::default();
    for (i, &ri) in positions.iter().enumerate() {
        for (j, &rj) in positions.iter().enumerate() {
            for a in -reach[0]..=reach[0] {
                for b in -reach[1]..=reach[1] {
                    for c in -reach[2]..=reach[2] {
                        let shift = [a, b, c];
                        if i == j && shift == [0, 0, 0] {
                            continue;
                        }
                        let image = cell.map_or([0.0; 3], |cell| cell.shift(shift));
                        let d = sub(add(rj, image), ri);
                        let dist = dot(d, d).sqrt();
                        if dist < cutoff {
                            list.first.push(i as u32);
                            list.second.push(j as u32);
                            list.shifts.push(shift);
                            list.distances.push(dist);
                        }
                    }
                }
            }
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_stay_within_the_limit_for_needles_sheets_and_overflowing_ratios() {
        let limit = 2 * 3 + 1000;
        for thickness in [[1e308, 1.0, 1.0], [1e12, 1e12, 0.0], [1e9, 5.0, 3.0], [1e3; 3]] {
            let counts = bin_counts(thickness, 1.0, 3);
            assert!(counts.iter().product::<usize>() <= limit, "{thickness:?}: {counts:?}");
            assert!(counts.iter().all(|&c| c >= 1));
        }
        assert!(bin_counts([1e9, 1.0, 1.0], 1e-300, 3).iter().product::<usize>() <= limit);
        assert_eq!(bin_counts([10.0, 10.0, 10.0], 2.0, 100), [5, 5, 5]);
    }

    #[test]
    fn lengths_read_well_in_messages() {
        assert_eq!(length(3.0900000000000003), "3.09");
        assert_eq!(length(5.0), "5");
        assert_eq!(length(0.001), "0.001");
        assert_eq!(length(1e9), "1.000e9");
        assert_eq!(length(1234.5678), "1234.57");
    }

    #[test]
    fn budgets_read_as_bytes_with_binary_suffixes() {
        assert_eq!(parse_bytes("8G"), Some(8 << 30));
        assert_eq!(parse_bytes(" 512m "), Some(512 << 20));
        assert_eq!(parse_bytes("1.5K"), Some(1536));
        assert_eq!(parse_bytes("1000000"), Some(1_000_000));
        for bad in ["", "G", "-1G", "8X", "lots", "nanG", "0"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }
}
