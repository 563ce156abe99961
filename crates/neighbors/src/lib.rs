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

use minima_atoms::cell::{add, dot, sub, Cell, Vec3};
use minima_atoms::Atoms;

pub mod parallel;
use parallel::map_chunks;

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
}

/// The neighbour list of a structure.
pub fn neighbor_list(atoms: &Atoms, cutoff: f64) -> Result<NeighborList, NeighborError> {
    neighbor_list_of(atoms.positions(), atoms.cell(), atoms.pbc(), cutoff)
}

/// Each pair once: the edges of [`neighbor_list`] with `i < j`, or `i == j` and a shift whose
/// first non-zero component is positive (not sorted). For pair potentials that update both
/// ends of a pair at once: half the search (half the bin offsets) and half the edges. The
/// centre atoms are split over `threads` threads; the list is the same for any number.
pub fn half_neighbor_list(atoms: &Atoms, cutoff: f64, threads: usize) -> Result<NeighborList, NeighborError> {
    let parts = fold_half_pairs(atoms, cutoff, threads, NeighborList::with_capacity, NeighborList::push)?;
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

/// The pairs of [`half_neighbor_list`] visited as they are found instead of stored, for pair
/// potentials that would only read the list once. The centre atoms are split into runs, in
/// order, over up to `threads` threads; each run folds its pairs into `start(expected pairs)`,
/// and the states come back in the runs' order.
pub fn fold_half_pairs<T: Send>(
    atoms: &Atoms,
    cutoff: f64,
    threads: usize,
    start: impl Fn(usize) -> T + Sync,
    visit: impl Fn(&mut T, Edge) + Sync,
) -> Result<Vec<T>, NeighborError> {
    let frame = frame_of(atoms.cell(), atoms.pbc(), cutoff)?;
    Ok(frame.search(atoms.positions(), cutoff, true, threads, start, visit))
}

/// The neighbour list of bare positions, optionally in a cell with per-axis periodicity.
pub fn neighbor_list_of(
    positions: &[Vec3],
    cell: Option<&Cell>,
    pbc: [bool; 3],
    cutoff: f64,
) -> Result<NeighborList, NeighborError> {
    let frame = frame_of(cell, pbc, cutoff)?;
    let parts = frame.search(
        positions,
        cutoff,
        false,
        1,
        NeighborList::with_capacity,
        NeighborList::push,
    );
    Ok(NeighborList::concatenate(parts))
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
    /// threads (see [`fold_half_pairs`]).
    fn search<T: Send>(
        &self,
        positions: &[Vec3],
        cutoff: f64,
        half: bool,
        threads: usize,
        start: impl Fn(usize) -> T + Sync,
        visit: impl Fn(&mut T, Edge) + Sync,
    ) -> Vec<T> {
        let search = Search::new(self, positions, cutoff, half);
        let n = positions.len();
        // A thread costs tens of µs to start: each gets a few hundred centre atoms at least.
        map_chunks(n, n.div_ceil(threads.max(1)).max(256), threads, |centres| {
            let mut state = start((centres.len() as f64 * search.edges_per_atom) as usize);
            search.atoms(centres, |edge| visit(&mut state, edge));
            state
        })
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
    cutoff2: f64,
    half: bool,
    /// Expected edges per centre atom, to reserve the output once.
    edges_per_atom: f64,
    /// The most atoms in one bin.
    largest_bin: usize,
}

impl<'a> Search<'a> {
    fn new(frame: &'a Frame, positions: &[Vec3], cutoff: f64, half: bool) -> Search<'a> {
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
        let reach: [i64; 3] = std::array::from_fn(|k| {
            if thickness[k] > 0.0 {
                (cutoff * counts[k] as f64 / thickness[k]).ceil() as i64
            } else {
                0
            }
        });
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
        let edges = estimate_edges(n, thickness, cutoff, &frame.pbc) as f64;
        Search {
            frame,
            wrapped,
            offsets,
            atom_bins,
            bins,
            counts,
            reach,
            cutoff2: cutoff * cutoff,
            half,
            edges_per_atom: if half { 0.5 } else { 1.0 } * edges / n.max(1) as f64,
            largest_bin,
        }
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

    /// The edges of the centre atoms `centres`, in order, handed to `visit`.
    fn atoms(&self, centres: std::ops::Range<usize>, mut visit: impl FnMut(Edge)) {
        let (counts, reach, half) = (self.counts, self.reach, self.half);
        let bins = &self.bins;
        // Candidates within the cutoff, collected without a branch per candidate: most
        // candidates of a linked cell lie outside the sphere, and mispredictions cost more
        // than the distances.
        let most = self.largest_bin * (2 * reach[0] as usize + 1) + 1;
        let mut hit_slots = vec![0usize; most];
        let mut hit_d2 = vec![0.0; most];
        let mut all_runs = Vec::new();
        let mut forward_runs = Vec::new();
        for i in centres {
            let ri = self.wrapped[i];
            let bi = self.atom_bins[i];
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
                            // A half list states each pair as i < j (or i == j and a positive
                            // shift): turn the pair around where it was found from j.
                            let d = sub(bins.wrapped[slot], origin);
                            visit(if half && (j < i || (j == i && first_nonzero_is_negative(&given))) {
                                Edge {
                                    i: j as u32,
                                    j: i as u32,
                                    shift: given.map(|c| -c),
                                    d: d.map(|c| -c),
                                    d2,
                                }
                            } else {
                                Edge {
                                    i: i as u32,
                                    j: j as u32,
                                    shift: given,
                                    d,
                                    d2,
                                }
                            });
                        }
                    }
                }
            }
        }
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
/// huge box must not allocate a huge grid).
fn bin_counts(thickness: Vec3, cutoff: f64, n_atoms: usize) -> [usize; 3] {
    let mut counts: [usize; 3] = std::array::from_fn(|k| ((thickness[k] / cutoff).floor() as usize).max(1));
    let limit = 2 * n_atoms + 1000;
    let total = |c: &[usize; 3]| c.iter().map(|&x| x as f64).product::<f64>();
    if total(&counts) > limit as f64 {
        let factor = (total(&counts) / limit as f64).cbrt();
        counts = counts.map(|c| ((c as f64 / factor).floor() as usize).max(1));
    }
    counts
}

/// An estimate of the number of edges, to reserve the output once instead of regrowing it.
fn estimate_edges(n: usize, thickness: Vec3, cutoff: f64, pbc: &[bool; 3]) -> usize {
    let volume: f64 = (0..3)
        .map(|k| if pbc[k] { thickness[k] } else { thickness[k] + cutoff })
        .product();
    if volume <= 0.0 || n == 0 {
        return n;
    }
    let sphere = 4.0 / 3.0 * std::f64::consts::PI * cutoff.powi(3);
    let per_atom = (n as f64 / volume * sphere * 1.05).min(n as f64 * 27.0);
    (per_atom * n as f64) as usize
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
