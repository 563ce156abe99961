//! Bond orders and formal charges from connectivity, by valence satisfaction (the approach
//! of xyz2mol and RDKit's `DetermineBondOrders`).
//!
//! Each atom's target valence is chosen from its options (neutral first); the choices are
//! tried in RDKit's order — lexicographic over atoms, the first atom varying slowest — and
//! the first whose formal charges sum to the molecule's charge and whose unsaturations can
//! all be paired into multiple bonds wins. Where RDKit pairs unsaturations by repeated
//! maximum matchings, this search is exact, so it also finds structures those heuristics miss.

use crate::other_end;
use crate::valence::{formal_charge, valence_options};

/// Limits the work on one molecule; the paper-size molecules need a few hundred steps.
const SEARCH_STEPS: usize = 2_000_000;

/// What bond-order assignment found.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Order (1–3) of each input edge, in input order.
    pub orders: Vec<u8>,
    /// Formal charge of each atom.
    pub charges: Vec<i32>,
    /// False when no choice of valences could be satisfied: some atoms are left unsaturated
    /// (radical-like), as RDKit's best effort leaves them.
    pub complete: bool,
}

/// Assigns bond orders to `edges` (pairs of atom indices) of a molecule with total `charge`.
pub fn assign(numbers: &[u8], edges: &[(usize, usize)], charge: i32) -> Assignment {
    let n = numbers.len();
    let mut degree = vec![0u32; n];
    for &(a, b) in edges {
        degree[a] += 1;
        degree[b] += 1;
    }
    // Options per atom: only valences at least its degree; atoms without a table stay as they are.
    let options: Vec<Vec<u32>> = (0..n)
        .map(|a| match valence_options(numbers[a]) {
            Some(v) => v.iter().map(|&v| u32::from(v)).filter(|&v| v >= degree[a]).collect(),
            None => vec![degree[a]],
        })
        .collect();
    if options.iter().any(|o| o.is_empty()) {
        return best_effort(numbers, edges, &degree, &options);
    }
    // Only atoms with a choice are searched; the others contribute a fixed charge. Bounds on
    // the charge the remaining choices can still add prune the search.
    let choices: Vec<usize> = (0..n).filter(|&a| options[a].len() > 1).collect();
    let fixed_charge: i32 = (0..n)
        .filter(|&a| options[a].len() == 1)
        .map(|a| atom_charge(numbers[a], options[a][0]))
        .sum();
    let mut reachable = vec![(0, 0); choices.len() + 1];
    for (k, &a) in choices.iter().enumerate().rev() {
        let charges = options[a].iter().map(|&v| atom_charge(numbers[a], v));
        let (lo, hi) = reachable[k + 1];
        reachable[k] = (
            lo + charges.clone().min().expect("options"),
            hi + charges.max().expect("options"),
        );
    }
    let mut search = Search {
        numbers,
        edges,
        degree: &degree,
        options: &options,
        choices: &choices,
        reachable: &reachable,
        charge,
        steps: 0,
        targets: options.iter().map(|o| o[0]).collect(),
    };
    if let Some(orders) = search.choose(0, fixed_charge) {
        let charges = (0..n).map(|a| atom_charge(numbers[a], search.targets[a])).collect();
        return Assignment {
            orders,
            charges,
            complete: true,
        };
    }
    best_effort(numbers, edges, &degree, &options)
}

/// The formal charge of an atom with a table entry; atoms without one are neutral.
fn atom_charge(z: u8, valence: u32) -> i32 {
    if valence_options(z).is_some() {
        // Table valences are at most 6, so the conversion is exact.
        formal_charge(z, valence as u8)
    } else {
        0
    }
}

struct Search<'a> {
    numbers: &'a [u8],
    edges: &'a [(usize, usize)],
    degree: &'a [u32],
    options: &'a [Vec<u32>],
    /// Atoms with more than one valence option, in index order.
    choices: &'a [usize],
    /// Least and most charge the choices from position `k` on can add.
    reachable: &'a [(i32, i32)],
    charge: i32,
    steps: usize,
    targets: Vec<u32>,
}

impl Search<'_> {
    /// Chooses target valences for the choice atoms from position `k` on, in RDKit's order.
    fn choose(&mut self, k: usize, charge_so_far: i32) -> Option<Vec<u8>> {
        let Some(&atom) = self.choices.get(k) else {
            return if charge_so_far == self.charge {
                self.saturate()
            } else {
                None
            };
        };
        for option in 0..self.options[atom].len() {
            let v = self.options[atom][option];
            self.targets[atom] = v;
            let q = charge_so_far + atom_charge(self.numbers[atom], v);
            let (lo, hi) = self.reachable[k + 1];
            if !(q + lo..=q + hi).contains(&self.charge) {
                continue;
            }
            if let Some(found) = self.choose(k + 1, q) {
                return Some(found);
            }
            if self.steps > SEARCH_STEPS {
                return None;
            }
        }
        None
    }

    /// Distributes each atom's unsaturation (target − degree) over its bonds, each bond
    /// gaining at most two orders; returns the orders when every unsaturation is used.
    fn saturate(&mut self) -> Option<Vec<u8>> {
        let mut free: Vec<u32> = (0..self.numbers.len())
            .map(|a| self.targets[a] - self.degree[a])
            .collect();
        if free.iter().sum::<u32>() % 2 == 1 {
            return None;
        }
        let mut incident = vec![Vec::new(); self.numbers.len()];
        for (e, &(a, b)) in self.edges.iter().enumerate() {
            if free[a] > 0 && free[b] > 0 {
                incident[a].push(e);
                incident[b].push(e);
            }
        }
        let mut orders = vec![1u8; self.edges.len()];
        if self.pair(&mut free, &incident, &mut orders) {
            Some(orders)
        } else {
            None
        }
    }

    /// Backtracking: the lowest-index atom with free valence takes it from one of its bonds.
    fn pair(&mut self, free: &mut [u32], incident: &[Vec<usize>], orders: &mut [u8]) -> bool {
        self.steps += 1;
        if self.steps > SEARCH_STEPS {
            return false;
        }
        let Some(atom) = free.iter().position(|&f| f > 0) else {
            return true;
        };
        for &e in &incident[atom] {
            let partner = other_end(self.edges[e], atom);
            if free[partner] == 0 || orders[e] == 3 {
                continue;
            }
            orders[e] += 1;
            free[atom] -= 1;
            free[partner] -= 1;
            if self.pair(free, incident, orders) {
                return true;
            }
            orders[e] -= 1;
            free[atom] += 1;
            free[partner] += 1;
        }
        false
    }
}

/// No valence choice works: pair unsaturations greedily (neutral targets), leaving the rest.
fn best_effort(numbers: &[u8], edges: &[(usize, usize)], degree: &[u32], options: &[Vec<u32>]) -> Assignment {
    let mut free: Vec<u32> = (0..numbers.len())
        .map(|a| options[a].first().map_or(0, |&v| v.saturating_sub(degree[a])))
        .collect();
    let mut orders = vec![1u8; edges.len()];
    let mut changed = true;
    while changed {
        changed = false;
        for (e, &(a, b)) in edges.iter().enumerate() {
            if free[a] > 0 && free[b] > 0 && orders[e] < 3 {
                orders[e] += 1;
                free[a] -= 1;
                free[b] -= 1;
                changed = true;
            }
        }
    }
    Assignment {
        orders,
        charges: vec![0; numbers.len()],
        complete: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hydrogen_cyanide_has_a_triple_bond() {
        // H-C#N
        let a = assign(&[1, 6, 7], &[(0, 1), (1, 2)], 0);
        assert_eq!(a.orders, vec![1, 3]);
        assert!(a.complete);
    }

    #[test]
    fn zwitterion_charges_the_later_oxygen_as_rdkit_does() {
        // Glycine zwitterion heavy skeleton with hydrogens: N(H3)+ - C(H2) - C(=O)O-
        let numbers = [7, 6, 6, 8, 8, 1, 1, 1, 1, 1];
        let edges = [(0, 1), (1, 2), (2, 3), (2, 4), (0, 5), (0, 6), (0, 7), (1, 8), (1, 9)];
        let a = assign(&numbers, &edges, 0);
        assert!(a.complete);
        assert_eq!(a.charges[..5], [1, 0, 0, 0, -1]);
        assert_eq!(a.orders[2], 2);
        assert_eq!(a.orders[3], 1);
    }

    #[test]
    fn impossible_valences_fall_back_without_panicking() {
        // A lone carbon with one hydrogen cannot be saturated.
        let a = assign(&[6, 1], &[(0, 1)], 0);
        assert!(!a.complete);
        assert_eq!(a.orders, vec![1]);
    }
}
