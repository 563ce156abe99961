//! Rings of a molecular graph: the relevant cycles (the union of all minimum cycle bases).
//!
//! RDKit's aromaticity runs over its "symmetrized SSSR"; relevant cycles are the
//! well-defined set closest to it: the SSSR plus every other ring of the same size that no
//! combination of smaller rings replaces (all three six-rings of bicyclo[2.2.2]octane, all six
//! faces of cubane), and never an envelope ring such as naphthalene's outer ten-ring.

/// Rings as atom lists in ring order, smallest first. `max_size` bounds the search; past
/// [`CYCLE_LIMIT`] cycles found or [`STEP_LIMIT`] paths walked the search retries with smaller
/// rings, so a dense cage or a metal cluster (where every atom touches twelve) cannot make it
/// explode; triangles alone are always enumerable (O(atoms · degree²)).
pub fn relevant_cycles(n_atoms: usize, edges: &[(usize, usize)], max_size: usize) -> Vec<Vec<usize>> {
    let mut adjacency = vec![Vec::new(); n_atoms];
    for (e, &(a, b)) in edges.iter().enumerate() {
        adjacency[a].push((b, e));
        adjacency[b].push((a, e));
    }
    let rank = cyclomatic_number(n_atoms, edges);
    if rank == 0 {
        return Vec::new();
    }
    let mut size = max_size.max(3);
    let cycles = loop {
        let limits = if size == 3 {
            (usize::MAX, usize::MAX)
        } else {
            (CYCLE_LIMIT, STEP_LIMIT)
        };
        match simple_cycles(&adjacency, size, limits) {
            Some(cycles) => break cycles,
            None => size = (size / 2).max(3),
        }
    };
    select_relevant(cycles, rank)
}

fn cyclomatic_number(n_atoms: usize, edges: &[(usize, usize)]) -> usize {
    let mut parent: Vec<usize> = (0..n_atoms).collect();
    fn find(p: &mut [usize], x: usize) -> usize {
        let mut r = x;
        while p[r] != r {
            r = p[r];
        }
        p[x] = r;
        r
    }
    let mut components = n_atoms;
    for &(a, b) in edges {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra] = rb;
            components -= 1;
        }
    }
    edges.len() + components - n_atoms
}

/// A cycle: its atoms in order and the set of its edges.
struct Cycle {
    atoms: Vec<usize>,
    edges: Vec<u64>,
}

/// Cycles found, and paths walked, before a ring search gives up on its size.
const CYCLE_LIMIT: usize = 20_000;
const STEP_LIMIT: usize = 2_000_000;

/// Every simple cycle of at most `max_size` atoms, each once; `None` past `limits` (cycles
/// found, paths walked).
fn simple_cycles(
    adjacency: &[Vec<(usize, usize)>],
    max_size: usize,
    (limit, steps): (usize, usize),
) -> Option<Vec<Cycle>> {
    let mut budget = steps;
    let words = adjacency.iter().map(|a| a.len()).sum::<usize>() / 2 / 64 + 1;
    let mut cycles = Vec::new();
    // Cycles are found from their smallest atom, walked towards the smaller of its two ring
    // neighbours, so each is reported once.
    for start in 0..adjacency.len() {
        let mut path = vec![start];
        let mut path_edges = Vec::new();
        let mut on_path = vec![false; adjacency.len()];
        on_path[start] = true;
        if !extend(
            adjacency,
            start,
            max_size,
            &mut path,
            &mut path_edges,
            &mut on_path,
            &mut cycles,
            words,
            limit,
            &mut budget,
        ) {
            return None;
        }
    }
    Some(cycles)
}

#[allow(clippy::too_many_arguments)]
fn extend(
    adjacency: &[Vec<(usize, usize)>],
    start: usize,
    max_size: usize,
    path: &mut Vec<usize>,
    path_edges: &mut Vec<usize>,
    on_path: &mut [bool],
    cycles: &mut Vec<Cycle>,
    words: usize,
    limit: usize,
    budget: &mut usize,
) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    let last = *path.last().expect("path starts with start");
    for &(next, edge) in &adjacency[last] {
        if next == start && path.len() >= 3 && path[1] < last {
            let mut bits = vec![0u64; words];
            for &e in path_edges.iter().chain(std::iter::once(&edge)) {
                bits[e / 64] |= 1 << (e % 64);
            }
            cycles.push(Cycle {
                atoms: path.clone(),
                edges: bits,
            });
            if cycles.len() > limit {
                return false;
            }
        } else if next > start && !on_path[next] && path.len() < max_size {
            path.push(next);
            path_edges.push(edge);
            on_path[next] = true;
            let ok = extend(
                adjacency, start, max_size, path, path_edges, on_path, cycles, words, limit, budget,
            );
            on_path[next] = false;
            path.pop();
            path_edges.pop();
            if !ok {
                return false;
            }
        }
    }
    true
}

/// Keeps the cycles that are not sums (over GF(2)) of strictly shorter cycles.
fn select_relevant(mut cycles: Vec<Cycle>, rank: usize) -> Vec<Vec<usize>> {
    cycles.sort_by(|a, b| a.atoms.len().cmp(&b.atoms.len()).then_with(|| a.atoms.cmp(&b.atoms)));
    let mut basis: Vec<Vec<u64>> = Vec::new();
    let mut relevant = Vec::new();
    let mut index = 0;
    while index < cycles.len() && basis.len() < rank {
        let size = cycles[index].atoms.len();
        let group_end = cycles[index..]
            .iter()
            .position(|c| c.atoms.len() != size)
            .map_or(cycles.len(), |p| index + p);
        let shorter = basis.clone();
        for cycle in &cycles[index..group_end] {
            if reduce(&shorter, &cycle.edges).iter().any(|&w| w != 0) {
                relevant.push(cycle.atoms.clone());
                let reduced = reduce(&basis, &cycle.edges);
                if reduced.iter().any(|&w| w != 0) {
                    basis.push(reduced);
                }
            }
        }
        index = group_end;
    }
    relevant
}

/// Reduces `vector` by a basis kept in echelon form (each element's lowest set bit unique).
fn reduce(basis: &[Vec<u64>], vector: &[u64]) -> Vec<u64> {
    let mut v = vector.to_vec();
    for b in basis {
        let pivot = lowest_bit(b);
        if v[pivot / 64] >> (pivot % 64) & 1 == 1 {
            for (x, y) in v.iter_mut().zip(b) {
                *x ^= y;
            }
        }
    }
    v
}

fn lowest_bit(v: &[u64]) -> usize {
    v.iter()
        .enumerate()
        .find(|(_, &w)| w != 0)
        .map(|(i, w)| i * 64 + w.trailing_zeros() as usize)
        .expect("basis vectors are non-zero")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(n: usize) -> Vec<(usize, usize)> {
        (0..n).map(|i| (i, (i + 1) % n)).collect()
    }

    #[test]
    fn benzene_has_one_ring_and_chains_none() {
        assert_eq!(relevant_cycles(6, &ring(6), 24), vec![vec![0, 1, 2, 3, 4, 5]]);
        assert!(relevant_cycles(4, &[(0, 1), (1, 2), (2, 3)], 24).is_empty());
    }

    #[test]
    fn naphthalene_has_two_six_rings_not_the_envelope() {
        // Two six-rings sharing the bond 0-5.
        let mut edges = ring(6);
        edges.extend([(5, 6), (6, 7), (7, 8), (8, 9), (9, 0)]);
        let rings = relevant_cycles(10, &edges, 24);
        assert_eq!(rings.len(), 2);
        assert!(rings.iter().all(|r| r.len() == 6));
    }

    #[test]
    fn bicyclooctane_keeps_all_three_six_rings_and_cubane_six_faces() {
        // Bridgeheads 0 and 1, three two-atom bridges.
        let edges = [(0, 2), (2, 3), (3, 1), (0, 4), (4, 5), (5, 1), (0, 6), (6, 7), (7, 1)];
        let rings = relevant_cycles(8, &edges, 24);
        assert_eq!(rings.len(), 3);
        let cube = [
            (0, 1),
            (1, 2),
            (2, 3),
            (3, 0),
            (4, 5),
            (5, 6),
            (6, 7),
            (7, 4),
            (0, 4),
            (1, 5),
            (2, 6),
            (3, 7),
        ];
        let faces = relevant_cycles(8, &cube, 24);
        assert_eq!(faces.len(), 6);
        assert!(faces.iter().all(|f| f.len() == 4));
    }

    /// The contact graph of a 43-atom fcc cluster (every atom bonded to up to twelve): the
    /// search falls back to smaller rings instead of walking its astronomically many paths,
    /// and finds its triangles, as many as the cluster's independent cycles need.
    #[test]
    fn a_dense_metal_cluster_gives_its_triangles_instead_of_exploding() {
        let mut sites = Vec::new();
        for x in -2i32..=2 {
            for y in -2i32..=2 {
                for z in -2i32..=2 {
                    if (x + y + z).rem_euclid(2) == 0 && x * x + y * y + z * z <= 6 {
                        sites.push([x, y, z]);
                    }
                }
            }
        }
        let mut edges = Vec::new();
        for i in 0..sites.len() {
            for j in i + 1..sites.len() {
                let d: i32 = (0..3).map(|k| (sites[i][k] - sites[j][k]).pow(2)).sum();
                if d == 2 {
                    edges.push((i, j));
                }
            }
        }
        assert_eq!(sites.len(), 43);
        // The walk stops when its budget of paths is spent, whether or not it found cycles.
        let mut adjacency = vec![Vec::new(); sites.len()];
        for (e, &(a, b)) in edges.iter().enumerate() {
            adjacency[a].push((b, e));
            adjacency[b].push((a, e));
        }
        assert!(simple_cycles(&adjacency, 24, (usize::MAX, 1000)).is_none());
        let rings = relevant_cycles(sites.len(), &edges, 24);
        assert!(!rings.is_empty());
        assert!(
            rings.iter().all(|r| r.len() == 3),
            "{:?}",
            rings.iter().map(Vec::len).max()
        );
    }
}
