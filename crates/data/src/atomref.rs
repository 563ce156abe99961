//! Per-element reference energies ("atomrefs") and the residual scale that normalise energy
//! targets: E ≈ Σ_atoms ref[Z] + σ · (model output). Fitted on the training set only and
//! stored with the model, so predictions come back in eV of the original total energy.

use serde::{Deserialize, Serialize};

use crate::Sample;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtomRefs {
    /// Atomic numbers, ascending.
    pub elements: Vec<u8>,
    /// Reference energy of each element, eV.
    pub energies: Vec<f64>,
    /// Standard deviation of the per-structure residual E − Σ ref, eV (at least 1 meV, so a
    /// perfectly fitted set cannot divide by zero).
    pub scale: f64,
}

impl AtomRefs {
    /// Least-squares fit of the counts of each element to the total energies. A tiny ridge
    /// term keeps the normal equations solvable when elements always occur together.
    pub fn fit(samples: &[&Sample]) -> Result<AtomRefs, String> {
        let mut elements: Vec<u8> = samples.iter().flat_map(|s| s.graph.numbers.iter().copied()).collect();
        elements.sort_unstable();
        elements.dedup();
        let k = elements.len();
        if samples.is_empty() || k == 0 {
            return Err("no training structures to fit reference energies on".into());
        }
        let counts = |s: &Sample| -> Vec<f64> {
            let mut c = vec![0.0; k];
            for z in &s.graph.numbers {
                c[elements.binary_search(z).expect("collected element")] += 1.0;
            }
            c
        };
        let mut normal = vec![vec![0.0; k]; k];
        let mut rhs = vec![0.0; k];
        for s in samples {
            // A NaN would pass through the fit into every target, and the scale's floor
            // would hide it.
            let energy = s
                .energy
                .filter(|e| e.is_finite())
                .ok_or_else(|| format!("the training structure of frame {} has no finite energy", s.frame))?;
            let c = counts(s);
            for a in 0..k {
                rhs[a] += c[a] * energy;
                for b in 0..k {
                    normal[a][b] += c[a] * c[b];
                }
            }
        }
        let trace: f64 = (0..k).map(|a| normal[a][a]).sum();
        for (a, row) in normal.iter_mut().enumerate() {
            row[a] += 1e-12 * trace;
        }
        let energies = solve(normal, rhs).ok_or("reference energies: singular normal equations")?;
        let residuals: Vec<f64> = samples
            .iter()
            .map(|s| s.energy.unwrap_or(0.0) - dot(&counts(s), &energies))
            .collect();
        let mean = residuals.iter().sum::<f64>() / residuals.len() as f64;
        let variance = residuals.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / residuals.len() as f64;
        Ok(AtomRefs {
            elements,
            energies,
            scale: variance.sqrt().max(1e-3),
        })
    }

    /// Reference energy of element `z`, or `None` when the training set had none of it.
    pub fn energy_of(&self, z: u8) -> Option<f64> {
        self.elements.binary_search(&z).ok().map(|i| self.energies[i])
    }

    /// Σ_atoms ref[Z], or the first element the references lack.
    pub fn baseline(&self, numbers: &[u8]) -> Result<f64, u8> {
        numbers.iter().map(|&z| self.energy_of(z).ok_or(z)).sum()
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let f = a[row][col] / a[col][col];
            let (upper, lower) = a.split_at_mut(row);
            for (x, p) in lower[0][col..].iter_mut().zip(&upper[col][col..]) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Graph, GraphSpec};
    use minima_atoms::Atoms;

    fn sample(numbers: &[u8], energy: f64) -> Sample {
        let positions = (0..numbers.len()).map(|i| [1.5 * i as f64, 0.0, 0.0]).collect();
        let atoms = Atoms::new(numbers.to_vec(), positions).unwrap();
        Sample {
            graph: Graph::build(&atoms, &GraphSpec { cutoff: None }).unwrap(),
            energy: Some(energy),
            forces: None,
            stress: None,
            scale: None,
            equilibrium: None,
            compliance: None,
            group: String::new(),
            frame: 0,
        }
    }

    #[test]
    fn recovers_exact_references() {
        let (h, c, o) = (-13.6, -1030.0, -2040.0);
        let samples = [
            sample(&[6, 1, 1, 1, 1], c + 4.0 * h),
            sample(&[8, 1, 1], o + 2.0 * h),
            sample(&[6, 8, 8], c + 2.0 * o),
            sample(&[1, 1], 2.0 * h),
        ];
        let refs = AtomRefs::fit(&samples.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(refs.elements, vec![1, 6, 8]);
        for (got, want) in refs.energies.iter().zip([h, c, o]) {
            assert!((got - want).abs() < 1e-7 * want.abs(), "{got} vs {want}");
        }
        assert_eq!(refs.scale, 1e-3);
        assert_eq!(refs.baseline(&[9]), Err(9));
    }

    #[test]
    fn refuses_a_non_finite_energy() {
        let mut bad = sample(&[1, 1], f64::NAN);
        bad.frame = 3;
        let good = sample(&[1], -13.6);
        let err = AtomRefs::fit(&[&good, &bad]).unwrap_err();
        assert!(err.contains("frame 3 has no finite energy"), "{err}");
    }
}
