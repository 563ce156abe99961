//! Aromaticity by RDKit's default model, so that minima's bond types are RDKit's.
//!
//! Each ring atom donates 0, 1 or 2 π electrons by its element, charge, degree and bonds (an
//! exocyclic double bond to a more electronegative atom takes one away). A ring whose atoms
//! all can take part is a candidate; rings sharing a bond form fused systems, and every
//! connected combination of up to six rings of a system is tested: if its atoms count
//! 4N+2 electrons (or exactly 2), its atoms are aromatic and so is each of its bonds that
//! lies in only one ring of the combination.

use std::collections::{BTreeSet, HashMap};

use crate::other_end;
use crate::valence::{default_valence, more_electronegative, outer_electrons};

/// Rings larger than this never join a fused system (RDKit: just above a porphyrin's).
const MAX_FUSED_RING_SIZE: usize = 24;
/// The most rings of one fused system tested together.
const MAX_FUSED_RINGS: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Donor {
    /// An empty p orbital: counts 0.
    Vacant,
    One,
    Two,
    /// Cannot be part of an aromatic ring.
    Inert,
}

impl Donor {
    fn electrons(self) -> i32 {
        match self {
            Donor::One => 1,
            Donor::Two => 2,
            Donor::Vacant | Donor::Inert => 0,
        }
    }
}

/// A molecule's graph with its Kekulé bond orders and charges, as aromaticity sees it.
pub struct Graph<'a> {
    pub numbers: &'a [u8],
    pub edges: &'a [(usize, usize)],
    pub orders: &'a [u8],
    pub charges: &'a [i32],
}

struct Atoms {
    degree: Vec<i32>,
    valence: Vec<i32>,
    incident: Vec<Vec<usize>>,
}

/// Which edges are aromatic, given the rings (atom lists in ring order).
pub fn aromatic_edges(g: &Graph, rings: &[Vec<usize>]) -> Vec<bool> {
    let n = g.numbers.len();
    let mut atoms = Atoms {
        degree: vec![0; n],
        valence: vec![0; n],
        incident: vec![Vec::new(); n],
    };
    let key = |a: usize, b: usize| (a.min(b), a.max(b));
    let mut edge_of = HashMap::new();
    for (e, &(a, b)) in g.edges.iter().enumerate() {
        for x in [a, b] {
            atoms.degree[x] += 1;
            atoms.valence[x] += g.orders[e] as i32;
            atoms.incident[x].push(e);
        }
        edge_of.insert(key(a, b), e);
    }
    let ring_edges: Vec<Vec<usize>> = rings
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|k| edge_of[&key(r[k], r[(k + 1) % r.len()])])
                .collect()
        })
        .collect();
    let mut in_ring = vec![false; g.edges.len()];
    for &e in ring_edges.iter().flatten() {
        in_ring[e] = true;
    }

    // Donor types and candidacy, once per ring atom.
    let mut donor = vec![Donor::Inert; n];
    let mut candidate = vec![false; n];
    for &a in rings.iter().flatten() {
        donor[a] = donor_type(g, &atoms, &in_ring, a);
        candidate[a] = is_candidate(g, &atoms, a, donor[a]);
    }
    let candidates: Vec<usize> = (0..rings.len())
        .filter(|&r| rings[r].iter().all(|&a| candidate[a]))
        .collect();
    let candidate_atoms: BTreeSet<usize> = candidates.iter().flat_map(|&r| rings[r].iter().copied()).collect();

    // Candidate rings sharing a bond are neighbours.
    let shares_bond = |r: usize, s: usize| {
        rings[r].len() <= MAX_FUSED_RING_SIZE
            && rings[s].len() <= MAX_FUSED_RING_SIZE
            && ring_edges[r].iter().any(|e| ring_edges[s].contains(e))
    };
    let mut aromatic = vec![false; g.edges.len()];
    let mut assigned = vec![false; candidates.len()];
    while let Some(first) = assigned.iter().position(|&d| !d) {
        // The fused system of `first`, in depth-first order.
        let mut system = Vec::new();
        let mut stack = vec![first];
        while let Some(k) = stack.pop() {
            if assigned[k] {
                continue;
            }
            assigned[k] = true;
            system.push(k);
            for other in (0..candidates.len()).rev() {
                if !assigned[other] && shares_bond(candidates[k], candidates[other]) {
                    stack.push(other);
                }
            }
        }
        let system: Vec<usize> = system.iter().map(|&k| candidates[k]).collect();
        mark_fused_system(
            &system,
            rings,
            &ring_edges,
            &donor,
            candidate_atoms.len(),
            &shares_bond,
            g.orders,
            &mut aromatic,
        );
    }
    aromatic
}

#[allow(clippy::too_many_arguments)]
fn mark_fused_system(
    system: &[usize],
    rings: &[Vec<usize>],
    ring_edges: &[Vec<usize>],
    donor: &[Donor],
    all_candidate_atoms: usize,
    shares_bond: &dyn Fn(usize, usize) -> bool,
    orders: &[u8],
    aromatic: &mut [bool],
) {
    let mut done_atoms = BTreeSet::new();
    for size in 1..=system.len().min(MAX_FUSED_RINGS) {
        if done_atoms.len() == all_candidate_atoms {
            break;
        }
        for combination in combinations(system.len(), size) {
            let chosen: Vec<usize> = combination.iter().map(|&k| system[k]).collect();
            if !connected(&chosen, shares_bond) {
                continue;
            }
            let atoms: BTreeSet<usize> = chosen.iter().flat_map(|&r| rings[r].iter().copied()).collect();
            let electrons: i32 = atoms.iter().map(|&a| donor[a].electrons()).sum();
            if !(electrons >= 6 && (electrons - 2) % 4 == 0 || electrons == 2) {
                continue;
            }
            done_atoms.extend(atoms);
            let mut count: HashMap<usize, usize> = HashMap::new();
            for &e in chosen.iter().flat_map(|&r| ring_edges[r].iter()) {
                *count.entry(e).or_default() += 1;
            }
            for (e, c) in count {
                if c == 1 && orders[e] <= 2 {
                    aromatic[e] = true;
                }
            }
        }
    }
}

/// All `k`-subsets of `0..n` in lexicographic order.
fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut current: Vec<usize> = (0..k).collect();
    if k > n {
        return out;
    }
    loop {
        out.push(current.clone());
        let Some(i) = (0..k).rev().find(|&i| current[i] < n - k + i) else {
            return out;
        };
        current[i] += 1;
        for j in i + 1..k {
            current[j] = current[j - 1] + 1;
        }
    }
}

fn connected(rings: &[usize], shares_bond: &dyn Fn(usize, usize) -> bool) -> bool {
    let mut reached = vec![false; rings.len()];
    let mut stack = vec![0];
    reached[0] = true;
    while let Some(k) = stack.pop() {
        for other in 0..rings.len() {
            if !reached[other] && shares_bond(rings[k], rings[other]) {
                reached[other] = true;
                stack.push(other);
            }
        }
    }
    reached.iter().all(|&r| r)
}

/// π electrons an atom has to offer before its bonds are considered, or −1 for none.
fn count_electrons(g: &Graph, atoms: &Atoms, a: usize) -> i32 {
    let Some(dv) = default_valence(g.numbers[a]) else {
        return -1;
    };
    if dv <= 1 || atoms.degree[a] > 3 {
        return -1;
    }
    let lone = (outer_electrons(g.numbers[a]) - dv - g.charges[a]).max(0);
    let electrons = dv - atoms.degree[a] + lone;
    // A triple bond (more than one unsaturation) leaves a single electron for the ring.
    if electrons > 1 && atoms.valence[a] - atoms.degree[a] > 1 {
        1
    } else {
        electrons
    }
}

/// The partner of a double or triple bond outside every ring, if the atom has one.
fn exocyclic_multiple_partner(g: &Graph, atoms: &Atoms, in_ring: &[bool], a: usize) -> Option<usize> {
    atoms.incident[a]
        .iter()
        .find(|&&e| !in_ring[e] && g.orders[e] >= 2)
        .map(|&e| other_end(g.edges[e], a))
}

fn donor_type(g: &Graph, atoms: &Atoms, in_ring: &[bool], a: usize) -> Donor {
    let z = g.numbers[a];
    let exocyclic = exocyclic_multiple_partner(g, atoms, in_ring, a);
    let steals = exocyclic.is_some_and(|w| more_electronegative(g.numbers[w], z));
    match count_electrons(g, atoms, a) {
        e if e < 0 => Donor::Inert,
        0 => {
            if exocyclic.is_some() {
                Donor::Vacant
            } else if atoms.incident[a].iter().any(|&e| in_ring[e] && g.orders[e] >= 2) {
                Donor::One
            } else {
                Donor::Inert
            }
        }
        1 => {
            if exocyclic.is_some() {
                if steals {
                    Donor::Vacant
                } else {
                    Donor::One
                }
            } else if atoms.valence[a] != atoms.degree[a] {
                Donor::One
            } else if g.charges[a] == 1 {
                Donor::Vacant
            } else {
                Donor::Inert
            }
        }
        e => {
            let e = if steals { e - 1 } else { e };
            if e % 2 == 1 {
                Donor::One
            } else {
                Donor::Two
            }
        }
    }
}

fn is_candidate(g: &Graph, atoms: &Atoms, a: usize, donor: Donor) -> bool {
    let z = g.numbers[a];
    if z > 18 && z != 34 && z != 52 {
        return false;
    }
    if donor == Donor::Inert {
        return false;
    }
    // Atoms above the default valence of their isoelectronic neutral element are shut out.
    let isoelectronic = (z as i32 - g.charges[a]).clamp(1, 118) as u8;
    if default_valence(z).is_some() {
        if let Some(dv) = default_valence(isoelectronic) {
            if atoms.valence[a] > dv {
                return false;
            }
        }
    }
    let multiple = atoms.incident[a].iter().filter(|&&e| g.orders[e] >= 2).count();
    !(atoms.valence[a] - atoms.degree[a] > 1 && multiple > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_are_lexicographic() {
        assert_eq!(
            combinations(4, 2),
            vec![vec![0, 1], vec![0, 2], vec![0, 3], vec![1, 2], vec![1, 3], vec![2, 3]]
        );
        assert_eq!(combinations(2, 3), Vec::<Vec<usize>>::new());
    }
}
