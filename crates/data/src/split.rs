//! Splits by base structure: every frame of a group (all scalings of one molecule, one
//! crystal, one growth run) lands in the same split, so no structure leaks across them.

use std::collections::{BTreeMap, HashMap};

use minima_atoms::Atoms;

use crate::DataError;

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

/// How far split fractions may sum from 1: room for decimal rounding (0.7 + 0.2 + 0.1), none
/// for a typo.
pub const FRACTION_SUM_TOLERANCE: f64 = 1e-6;

/// Checks that `fractions` (train, validation, test) are finite, non-negative and sum to 1
/// within [`FRACTION_SUM_TOLERANCE`]: fractions that do not are a mistake to report, not to
/// normalise away.
pub fn check_fractions(fractions: [f64; 3]) -> Result<(), DataError> {
    let problem = |problem: String| Err(DataError::Fractions { fractions, problem });
    if let Some(bad) = fractions.iter().find(|f| !f.is_finite()) {
        return problem(format!("{bad} is not a finite number"));
    }
    if let Some(bad) = fractions.iter().find(|&&f| f < 0.0) {
        return problem(format!("{bad} is negative"));
    }
    let sum: f64 = fractions.iter().sum();
    if (sum - 1.0).abs() > FRACTION_SUM_TOLERANCE {
        // Rounded well below the tolerance, so that 0.7 + 0.2 shows as 0.9.
        let shown = (sum * 1e9).round() / 1e9;
        return problem(format!(
            "they sum to {shown}, not 1 (train, validation, test; within {FRACTION_SUM_TOLERANCE:e})"
        ));
    }
    Ok(())
}

/// Shuffles the distinct groups with `seed` and deals them out by `fractions` (train,
/// validation, test; [`check_fractions`]). Frames keep file order within each split.
pub fn split_by_group(groups: &[String], fractions: [f64; 3], seed: u64) -> Result<Split, DataError> {
    check_fractions(fractions)?;
    let mut keys: Vec<&String> = groups.iter().collect();
    keys.sort();
    keys.dedup();
    keys.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    // Dividing by the sum only absorbs decimal rounding (0.8 + 0.1 + 0.1 is not exactly 1).
    let total: f64 = fractions.iter().sum();
    let n = keys.len();
    let n_train = ((fractions[0] / total * n as f64).round() as usize).min(n);
    let n_validation = ((fractions[1] / total * n as f64).round() as usize).min(n - n_train);
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
    Ok(split)
}

/// The VIMPNN paper's splits (section 5), by base structure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scheme {
    /// Augmented QM9: 80/10/10 by molecule.
    Qm9,
    /// Infinite crystals: per element, `train_points` scales evenly spread over its range for
    /// training (the paper's 8), the others alternately to validation and test.
    Fcc { train_points: usize },
    /// Crystal growth: 60/20/20 by growth (element and seed).
    Growth,
    /// Generalisation to larger systems: the growth split, with training and validation kept
    /// to clusters of at most `max_train_size` atoms (the paper's 25) and testing on all sizes.
    Size { max_train_size: usize },
}

impl Scheme {
    /// The scheme a generated file calls for: QM9 frames, periodic crystals, or growths.
    pub fn detect(frames: &[Atoms]) -> Option<Scheme> {
        let first = frames.first()?;
        if first.info.contains_key("qm9_index") {
            Some(Scheme::Qm9)
        } else if first.info.contains_key("seed") && first.info.contains_key("element") {
            Some(Scheme::Growth)
        } else if first.is_periodic() && first.info.contains_key("element") {
            Some(Scheme::Fcc { train_points: 8 })
        } else {
            None
        }
    }

    /// The paper's train, validation, test fractions of the base structures, for the schemes
    /// that deal out whole groups; `None` for fcc, which splits each crystal by scale.
    pub fn fractions(&self) -> Option<[f64; 3]> {
        match self {
            Scheme::Qm9 => Some([0.8, 0.1, 0.1]),
            Scheme::Growth | Scheme::Size { .. } => Some([0.6, 0.2, 0.2]),
            Scheme::Fcc { .. } => None,
        }
    }

    /// Splits `frames` (grouped by [`crate::group_key`]); `seed` shuffles the groups.
    /// `fractions` replaces the scheme's own ([`Scheme::fractions`]); they must be valid
    /// ([`check_fractions`]), and the fcc scheme takes none.
    pub fn split(&self, frames: &[Atoms], seed: u64, fractions: Option<[f64; 3]>) -> Result<Split, String> {
        let groups: Vec<String> = frames.iter().enumerate().map(|(i, a)| crate::group_key(a, i)).collect();
        let by_group =
            |default: [f64; 3]| split_by_group(&groups, fractions.unwrap_or(default), seed).map_err(|e| e.to_string());
        match *self {
            Scheme::Qm9 | Scheme::Growth => by_group(self.fractions().expect("a group scheme")),
            Scheme::Size { max_train_size } => {
                let mut split = by_group(self.fractions().expect("a group scheme"))?;
                let size = |f: &usize| frames[*f].len();
                split.train.retain(|f| size(f) <= max_train_size);
                split.validation.retain(|f| size(f) <= max_train_size);
                Ok(split)
            }
            Scheme::Fcc { .. } if fractions.is_some() => Err(
                "the fcc scheme splits each crystal by scale and takes no fractions (set its training points instead)"
                    .into(),
            ),
            Scheme::Fcc { train_points } => split_scans(frames, &groups, train_points),
        }
    }
}

/// Per group, `train_points` of its distinct scales evenly spread from the smallest to the
/// largest go to training; the others alternate between validation and test in scale order.
fn split_scans(frames: &[Atoms], groups: &[String], train_points: usize) -> Result<Split, String> {
    let mut by_group: BTreeMap<&String, Vec<(f64, usize)>> = BTreeMap::new();
    for (frame, (atoms, group)) in frames.iter().zip(groups).enumerate() {
        let scale = atoms.scale().ok_or_else(|| format!("frame {frame} records no scale"))?;
        by_group.entry(group).or_default().push((scale, frame));
    }
    let mut split = Split::default();
    for scans in by_group.values_mut() {
        scans.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = scans.len();
        if n < train_points {
            return Err(format!(
                "a crystal has {n} scales, fewer than the {train_points} training points"
            ));
        }
        let train: Vec<usize> = (0..train_points)
            .map(|k| {
                if train_points == 1 {
                    0
                } else {
                    (k as f64 * (n - 1) as f64 / (train_points - 1) as f64).round() as usize
                }
            })
            .collect();
        let mut rest = 0;
        for (rank, &(_, frame)) in scans.iter().enumerate() {
            if train.contains(&rank) {
                split.train.push(frame);
            } else {
                if rest % 2 == 0 {
                    &mut split.validation
                } else {
                    &mut split.test
                }
                .push(frame);
                rest += 1;
            }
        }
    }
    for part in [&mut split.train, &mut split.validation, &mut split.test] {
        part.sort_unstable();
    }
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_stay_together_and_fractions_hold() {
        let groups: Vec<String> = (0..1000).map(|i| format!("qm9:{}", i / 10)).collect();
        let split = split_by_group(&groups, [0.8, 0.1, 0.1], 7).unwrap();
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
        assert_eq!(split, split_by_group(&groups, [0.8, 0.1, 0.1], 7).unwrap());
        assert_ne!(split, split_by_group(&groups, [0.8, 0.1, 0.1], 8).unwrap());
    }

    #[test]
    fn crystal_scans_train_on_eight_spread_scales_and_share_the_rest() {
        use crate::generate::{fcc_scan, FccCell, FccShape, Grid};
        let scales = Grid {
            start: 0.9,
            stop: 1.5,
            count: 100,
        };
        let elements = [("Al".to_string(), 4.05), ("Cu".to_string(), 3.615)];
        let shape = FccShape {
            cell: FccCell::Primitive,
            repeat: 1,
            vacuum: None,
        };
        let frames = fcc_scan(&elements, shape, &scales.values()).unwrap();
        let split = Scheme::detect(&frames).unwrap().split(&frames, 0, None).unwrap();
        assert_eq!(
            (split.train.len(), split.validation.len(), split.test.len()),
            (16, 92, 92)
        );
        let trained: Vec<f64> = split.train.iter().filter_map(|&f| frames[f].scale()).collect();
        assert!((trained[0] - 0.9).abs() < 1e-12 && (trained[7] - 1.5).abs() < 1e-12);
    }

    #[test]
    fn size_split_trains_on_small_growths_and_tests_on_all() {
        use crate::generate::{growth, Grid};
        let one = Grid {
            start: 1.0,
            stop: 1.0,
            count: 1,
        };
        let frames: Vec<Atoms> = (0..10)
            .flat_map(|seed| growth("Cu", 3.615, seed, 40, &one).unwrap())
            .collect();
        assert_eq!(Scheme::detect(&frames), Some(Scheme::Growth));
        let split = Scheme::Size { max_train_size: 25 }.split(&frames, 1, None).unwrap();
        assert!(split.train.iter().all(|&f| frames[f].len() <= 25));
        assert!(split.test.iter().any(|&f| frames[f].len() == 40));
        let full = Scheme::Growth.split(&frames, 1, None).unwrap();
        assert_eq!(
            (full.train.len(), full.validation.len(), full.test.len()),
            (156, 52, 52)
        );
    }
}
