//! Splits by base structure: every frame of a group (all scalings of one molecule, one
//! crystal, one growth run) lands in the same split, so no structure leaks across them.

use std::collections::HashMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Indices of the frames in each split.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Split {
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
    pub test: Vec<usize>,
}

/// Shuffles the distinct groups with `seed` and deals them out by `fractions` (train,
/// validation, test; normalised to sum 1). Frames keep file order within each split.
pub fn split_by_group(groups: &[String], fractions: [f64; 3], seed: u64) -> Split {
    let mut keys: Vec<&String> = groups.iter().collect();
    keys.sort();
    keys.dedup();
    keys.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let total: f64 = fractions.iter().sum();
    let n = keys.len();
    let n_train = (fractions[0] / total * n as f64).round() as usize;
    let n_validation = ((fractions[1] / total * n as f64).round() as usize).min(n - n_train.min(n));
    let rank: HashMap<&String, usize> = keys.iter().enumerate().map(|(r, &k)| (k, r)).collect();
    let mut split = Split::default();
    for (frame, key) in groups.iter().enumerate() {
        let rank = rank[key];
        let target = if rank < n_train {
            &mut split.train
        } else if rank < n_train + n_validation {
            &mut split.validation
        } else {
            &mut split.test
        };
        target.push(frame);
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_stay_together_and_fractions_hold() {
        let groups: Vec<String> = (0..1000).map(|i| format!("qm9:{}", i / 10)).collect();
        let split = split_by_group(&groups, [0.8, 0.1, 0.1], 7);
        assert_eq!(
            (split.train.len(), split.validation.len(), split.test.len()),
            (800, 100, 100)
        );
        let group_of = |frames: &[usize]| {
            frames
                .iter()
                .map(|&f| groups[f].clone())
                .collect::<std::collections::HashSet<_>>()
        };
        let (a, b, c) = (
            group_of(&split.train),
            group_of(&split.validation),
            group_of(&split.test),
        );
        assert!(a.is_disjoint(&b) && a.is_disjoint(&c) && b.is_disjoint(&c));
        assert_eq!(split, split_by_group(&groups, [0.8, 0.1, 0.1], 7));
        assert_ne!(split, split_by_group(&groups, [0.8, 0.1, 0.1], 8));
    }
}
