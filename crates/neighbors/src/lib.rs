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
/// ends of a pair at once: half the search (half the bin offsets) and half the edges.
pub fn half_neighbor_list(atoms: &Atoms, cutoff: f64) -> Result<NeighborList, NeighborError> {
    Ok(frame_of(atoms.cell(), atoms.pbc(), cutoff)?.search(atoms.positions(), cutoff, true))
}

/// The neighbour list of bare positions, optionally in a cell with per-axis periodicity.
pub fn neighbor_list_of(
    positions: &[Vec3],
    cell: Option<&Cell>,
    pbc: [bool; 3],
    cutoff: f64,
) -> Result<NeighborList, NeighborError> {
    Ok(frame_of(cell, pbc, cutoff)?.search(positions, cutoff, false))
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
    fn search(&self, positions: &[Vec3], cutoff: f64, half: bool) -> NeighborList {
        let n = positions.len();
        // Wrap along periodic axes, remembering the lattice offset of each atom.
        let mut wrapped = Vec::with_capacity(n);
        let mut offsets = Vec::with_capacity(n);
        for &r in positions {
            let (w, o) = self.cell.wrap(r, self.pbc);
            wrapped.push(w);
            offsets.push(o);
        }
        let fractional: Vec<Vec3> = wrapped.iter().map(|&w| self.cell.fractional(w)).collect();
        let heights = self.cell.heights();
        let mut lo = [0.0; 3];
        let mut extent = [1.0; 3];
        for k in 0..3 {
            if !self.pbc[k] {
                let (min, max) = range_along(&fractional, k).unwrap_or((0.0, 0.0));
                lo[k] = min;
                extent[k] = max - min;
            }
        }
        let thickness: Vec3 = std::array::from_fn(|k| extent[k] * heights[k]);
        let counts = bin_counts(thickness, cutoff, n);
        // How many bins away a neighbour can sit along each axis.
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
        let flat = |b: [usize; 3]| (b[2] * counts[1] + b[1]) * counts[0] + b[0];
        let atom_bins: Vec<[usize; 3]> = fractional.iter().map(bin_of).collect();
        // Fractional coordinates are only needed for binning; the search works in Cartesian.
        drop(fractional);
        let bins = fill_bins(&atom_bins, &wrapped, counts, flat);

        let density_estimate = estimate_edges(n, thickness, cutoff, &self.pbc);
        let mut list = NeighborList::with_capacity(density_estimate);
        let cutoff2 = cutoff * cutoff;
        for i in 0..n {
            let ri = wrapped[i];
            let bi = atom_bins[i];
            for dz in -reach[2]..=reach[2] {
                let Some((cz, sz)) = self.neighbor_bin(bi[2], dz, counts[2], 2) else {
                    continue;
                };
                for dy in -reach[1]..=reach[1] {
                    let Some((cy, sy)) = self.neighbor_bin(bi[1], dy, counts[1], 1) else {
                        continue;
                    };
                    for dx in -reach[0]..=reach[0] {
                        let Some((cx, sx)) = self.neighbor_bin(bi[0], dx, counts[0], 0) else {
                            continue;
                        };
                        // Half lists search half the bin offsets (the other half finds the
                        // same pairs from the other end); within the own bin, later slots only.
                        let delta = [dx, dy, dz];
                        if half && delta.iter().find(|&&c| c != 0).is_some_and(|&c| c < 0) {
                            continue;
                        }
                        let shift = [sx, sy, sz];
                        let image = self.cell.shift(shift);
                        let b = flat([cx, cy, cz]);
                        let first_slot = if half && delta == [0, 0, 0] {
                            bins.slot_of[i] + 1
                        } else {
                            bins.start[b]
                        };
                        for slot in first_slot..bins.start[b + 1] {
                            let j = bins.atoms[slot] as usize;
                            let d = sub(add(bins.wrapped[slot], image), ri);
                            let d2 = dot(d, d);
                            if d2 < cutoff2 && !(j == i && shift == [0, 0, 0]) {
                                let (oi, oj) = (offsets[i], offsets[j]);
                                // d = w_j + S·cell − w_i with w = r − o·cell, so the shift on the given
                                // positions is S − o_j + o_i.
                                let given = [
                                    shift[0] - oj[0] + oi[0],
                                    shift[1] - oj[1] + oi[1],
                                    shift[2] - oj[2] + oi[2],
                                ];
                                // A half list states each pair as i < j (or i == j and a positive
                                // shift): turn the pair around where it was found from j.
                                let negative = given.iter().find(|&&c| c != 0).is_some_and(|&c| c < 0);
                                let (a, b, s) = if half && (j < i || (j == i && negative)) {
                                    (j, i, given.map(|c| -c))
                                } else {
                                    (i, j, given)
                                };
                                list.first.push(a as u32);
                                list.second.push(b as u32);
                                list.shifts.push(s);
                                list.distances.push(d2.sqrt());
                            }
                        }
                    }
                }
            }
        }
        list
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

/// Counting sort of atoms into bins.
fn fill_bins(
    atom_bins: &[[usize; 3]],
    wrapped_positions: &[Vec3],
    counts: [usize; 3],
    flat: impl Fn([usize; 3]) -> usize,
) -> Bins {
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
