//! Selection: the explored frames whose largest force deviation lies in the trust window,
//! drawn at random, near-duplicates of the same base structure dropped, capped.

use minima_atoms::{keys, Atoms, Value};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::SelectConfig;

/// How the explored frames divided.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub explored: usize,
    /// Below the window: the committee agrees.
    pub trusted: usize,
    /// In the window.
    pub candidates: usize,
    /// At or above the window, or with atoms closer than the data allow: unphysical.
    pub rejected: usize,
    /// In the window but within `min_rmsd` of a selected frame.
    pub duplicates: usize,
    /// Labelled this iteration.
    pub selected: usize,
}

impl Selection {
    /// The fraction of explored frames that were candidates: the committee's uncertainty
    /// over where it goes.
    pub fn candidate_fraction(&self) -> f64 {
        self.candidates as f64 / self.explored.max(1) as f64
    }
}

/// The largest per-atom force deviation a frame records, if any.
pub fn max_force_std(atoms: &Atoms) -> Option<f64> {
    match atoms.info.get(keys::MAX_FORCE_STD) {
        Some(Value::Float(x)) => Some(*x),
        _ => None,
    }
}

/// The frames of `explored` to label, and how the rest divided.
pub fn select(explored: &[Atoms], config: &SelectConfig, seed: u64) -> (Vec<Atoms>, Selection) {
    let mut tally = Selection {
        explored: explored.len(),
        ..Selection::default()
    };
    let mut window: Vec<&Atoms> = Vec::new();
    for atoms in explored {
        match max_force_std(atoms) {
            Some(d) if d < config.lower => tally.trusted += 1,
            Some(d) if d < config.upper && minima_data::sampling::too_close(atoms).is_none() => window.push(atoms),
            _ => tally.rejected += 1,
        }
    }
    tally.candidates = window.len();
    window.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut chosen: Vec<Atoms> = Vec::new();
    for atoms in window {
        if chosen.len() == config.max_frames {
            break;
        }
        let group = minima_data::group_key(atoms, 0);
        let duplicate = chosen.iter().any(|c| {
            c.len() == atoms.len() && minima_data::group_key(c, 0) == group && rmsd(c, atoms) < config.min_rmsd
        });
        if duplicate {
            tally.duplicates += 1;
            continue;
        }
        chosen.push(atoms.clone());
    }
    tally.selected = chosen.len();
    (chosen, tally)
}

/// Root-mean-square distance of corresponding atoms (no superposition: frames of one base
/// structure share its frame of reference closely enough to tell duplicates).
fn rmsd(a: &Atoms, b: &Atoms) -> f64 {
    let n = a.len().max(1) as f64;
    let sum: f64 = a
        .positions()
        .iter()
        .zip(b.positions())
        .map(|(p, q)| (0..3).map(|k| (p[k] - q[k]).powi(2)).sum::<f64>())
        .sum();
    (sum / n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(x: f64, deviation: f64, group: i64) -> Atoms {
        let mut atoms = Atoms::new(vec![1, 1], vec![[0.0, 0.0, 0.0], [0.74 + x, 0.0, 0.0]]).unwrap();
        atoms.info.insert(keys::MAX_FORCE_STD.into(), Value::Float(deviation));
        atoms.info.insert("qm9_index".into(), Value::Int(group));
        atoms
    }

    #[test]
    fn the_window_the_duplicates_and_the_cap_decide() {
        let config = SelectConfig {
            lower: 0.05,
            upper: 1.0,
            max_frames: 3,
            min_rmsd: 0.05,
        };
        let explored = vec![
            frame(0.0, 0.01, 1),  // trusted
            frame(0.2, 0.2, 1),   // candidate
            frame(0.201, 0.3, 1), // duplicate of the one before (RMSD 0.0007 Å)
            frame(0.2, 0.3, 2),   // same geometry, another molecule: not a duplicate
            frame(0.4, 5.0, 1),   // above the window
            frame(-0.6, 0.2, 1),  // atoms 0.14 Å apart: unphysical
            frame(0.6, 0.5, 3),
            frame(0.8, 0.5, 3),
        ];
        let (chosen, tally) = select(&explored, &config, 0);
        assert_eq!(tally.explored, 8);
        assert_eq!(tally.trusted, 1);
        assert_eq!(tally.rejected, 2);
        assert_eq!(tally.candidates, 5);
        assert_eq!(chosen.len(), 3, "capped at max_frames");
        assert!(chosen.iter().all(|c| {
            let d = max_force_std(c).unwrap();
            (0.05..1.0).contains(&d)
        }));
        let uncapped = SelectConfig {
            max_frames: 100,
            ..config
        };
        let (all, tally) = select(&explored, &uncapped, 0);
        assert_eq!((all.len(), tally.duplicates), (4, 1));
        // Seeded: the same seed draws the same frames.
        assert_eq!(select(&explored, &config, 7).0, select(&explored, &config, 7).0);
    }
}
