//! Predictions and the papers' metrics: MAE, MSE and relative error (mean and std) on total
//! and per-atom energy, force MAE, breakdowns by element set and size, and the distance to the
//! stable configuration (DSC) of scan data.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use minima_data::{curve::parabolic_minimum, Sample};
use minima_model::{predict_samples, Potential, Predicted};
use serde::Serialize;

/// Mean and standard deviation, the papers' "mean (std)".
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
}

impl MeanStd {
    pub fn of(values: &[f64]) -> MeanStd {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        MeanStd {
            mean,
            std: variance.sqrt(),
        }
    }
}

/// What the relative error divides by.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(tag = "of", rename_all = "lowercase")]
pub enum RelativeTo {
    /// |y|, the labelled energy itself: the VIMPNN paper's RE, meaningful for total energies
    /// (DFT, xtb) that lie far from zero.
    #[default]
    Total,
    /// |y − Σᵢ E_free(Zᵢ)|, the energy relative to the free atoms. A reference whose zero is
    /// not the free atoms, as EMT's (the fcc crystal at its lattice constant is ≈ 0), puts
    /// labels near zero, where |ŷ − y| / |y| explodes.
    Cohesive {
        /// Energy of each element's free atom, eV, by atomic number.
        free_atoms: BTreeMap<u8, f64>,
    },
}

impl RelativeTo {
    /// `Cu=3.51,Al=3.28`: each element's free-atom energy in eV.
    pub fn cohesive_from_list(list: &str) -> Result<RelativeTo> {
        let mut free_atoms = BTreeMap::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (symbol, energy) = entry
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("{entry:?}: give each free atom as SYMBOL=ENERGY (eV)"))?;
            let element = minima_atoms::element::by_symbol(symbol.trim())
                .ok_or_else(|| anyhow::anyhow!("{entry:?}: {symbol:?} is not an element symbol"))?;
            let energy: f64 = energy
                .trim()
                .parse()
                .ok()
                .filter(|e: &f64| e.is_finite())
                .ok_or_else(|| anyhow::anyhow!("{entry:?}: {energy:?} is not a finite energy in eV"))?;
            free_atoms.insert(element.number, energy);
        }
        if free_atoms.is_empty() {
            anyhow::bail!("no free-atom energies given (SYMBOL=ENERGY, comma-separated)");
        }
        Ok(RelativeTo::Cohesive { free_atoms })
    }

    /// The energy the relative error of a structure of `numbers` with label `y` divides by.
    fn base(&self, numbers: &[u8], y: f64) -> Result<f64> {
        match self {
            RelativeTo::Total => Ok(y),
            RelativeTo::Cohesive { free_atoms } => numbers.iter().try_fold(y, |base, z| {
                free_atoms.get(z).map(|e| base - e).ok_or_else(|| {
                    let symbol = minima_atoms::element::by_number(*z).map_or("?", |e| e.symbol);
                    anyhow::anyhow!("no free-atom energy given for {symbol} (Z = {z})")
                })
            }),
        }
    }
}

/// MAE (eV), MSE (eV²) and RE = |ŷ − y| / |base| of a set of predictions (`RelativeTo`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorStats {
    pub count: usize,
    pub mae: MeanStd,
    pub mse: MeanStd,
    pub re: MeanStd,
}

impl ErrorStats {
    /// Of (predicted, labelled, relative-error base) triples.
    fn of(points: &[(f64, f64, f64)]) -> ErrorStats {
        let abs: Vec<f64> = points.iter().map(|(p, y, _)| (p - y).abs()).collect();
        let squared: Vec<f64> = abs.iter().map(|e| e * e).collect();
        let relative: Vec<f64> = points
            .iter()
            .zip(&abs)
            .map(|((_, _, base), e)| e / base.abs().max(f64::MIN_POSITIVE))
            .collect();
        ErrorStats {
            count: points.len(),
            mae: MeanStd::of(&abs),
            mse: MeanStd::of(&squared),
            re: MeanStd::of(&relative),
        }
    }
}

/// Distance to the stable configuration over the scan groups.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Dsc {
    /// Base structures with at least three scales.
    pub structures: usize,
    /// |s_min(predicted) − s_min(reference)|, in scale units, over `structures` scans (none
    /// when no scan's predicted curve has a minimum inside its range).
    pub scale: Option<MeanStd>,
    /// The same times the mean nearest-neighbour distance at equilibrium, Å.
    pub angstrom: Option<MeanStd>,
    /// Scans left out because the model's curve has no minimum inside the scanned range (its
    /// lowest point is an end of the scan): counted, never averaged as if the edge were one.
    pub without_predicted_minimum: usize,
    /// Scans left out because the reference curve has none, or because two frames of
    /// different reference energies share a scale (two scans under one base structure).
    pub without_reference_minimum: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub structures: usize,
    /// What RE divides by.
    pub relative_to: RelativeTo,
    pub energy: ErrorStats,
    pub energy_per_atom: ErrorStats,
    /// Force MAE over components, eV/Å: against the labelled forces, and against zero for
    /// equilibrium frames without forces (`Sample::is_equilibrium`; QM9's relaxed molecules,
    /// as in the physics-transformer paper's Table 1).
    pub force_mae: Option<MeanStd>,
    /// Structures in the force MAE, and how many of them had the zero reference.
    pub force_structures: usize,
    pub force_zero_reference: usize,
    /// By the set of elements present ("C,H,O").
    pub by_elements: BTreeMap<String, ErrorStats>,
    /// By number of atoms.
    pub by_size: BTreeMap<usize, ErrorStats>,
    pub dsc: Option<Dsc>,
}

/// Evaluates `potential` on labelled `samples`.
pub fn evaluate(
    potential: &Potential,
    samples: &[Sample],
    batch_size: usize,
    relative_to: &RelativeTo,
) -> Result<EvalReport> {
    let refs: Vec<&Sample> = samples.iter().collect();
    // Forces for every model and every set: labelled ones, or zero at equilibrium.
    let predicted = predict_samples(potential, &refs, batch_size, true)?;
    refuse_non_finite(samples, &predicted)?;
    let mut total = Vec::new();
    let mut per_atom = Vec::new();
    let mut force_errors = Vec::new();
    let (mut force_structures, mut zero_reference) = (0, 0);
    let mut by_elements: BTreeMap<String, Vec<(f64, f64, f64)>> = BTreeMap::new();
    let mut by_size: BTreeMap<usize, Vec<(f64, f64, f64)>> = BTreeMap::new();
    for (sample, p) in samples.iter().zip(&predicted) {
        let Some(y) = sample.energy else {
            anyhow::bail!("frame {}: missing label: no energy", sample.frame);
        };
        let n = sample.graph.len() as f64;
        let base = relative_to
            .base(&sample.graph.numbers, y)
            .with_context(|| format!("frame {}", sample.frame))?;
        let point = (p.energy, y, base);
        total.push(point);
        per_atom.push((p.energy / n, y / n, base / n));
        by_elements
            .entry(element_set(&sample.graph.numbers))
            .or_default()
            .push(point);
        by_size.entry(sample.graph.len()).or_default().push(point);
        let zero = vec![[0.0; 3]; sample.graph.len()];
        let reference = match &sample.forces {
            Some(labelled) => Some(labelled),
            None if sample.is_equilibrium() => {
                zero_reference += 1;
                Some(&zero)
            }
            None => None,
        };
        if let (Some(reference), Some(forces)) = (reference, &p.forces) {
            force_structures += 1;
            for (f, r) in forces.iter().zip(reference) {
                force_errors.extend((0..3).map(|k| (f[k] - r[k]).abs()));
            }
        }
    }
    Ok(EvalReport {
        structures: samples.len(),
        relative_to: relative_to.clone(),
        energy: ErrorStats::of(&total),
        energy_per_atom: ErrorStats::of(&per_atom),
        force_mae: (!force_errors.is_empty()).then(|| MeanStd::of(&force_errors)),
        force_structures,
        force_zero_reference: zero_reference,
        by_elements: by_elements.into_iter().map(|(k, v)| (k, ErrorStats::of(&v))).collect(),
        by_size: by_size.into_iter().map(|(k, v)| (k, ErrorStats::of(&v))).collect(),
        dsc: dsc(samples, &predicted),
    })
}

/// Metrics of non-finite predictions would be NaN, or worse a finite number computed from
/// them (a DSC): such predictions are an error naming their frames.
fn refuse_non_finite(samples: &[Sample], predicted: &[Predicted]) -> Result<()> {
    let bad: Vec<String> = samples
        .iter()
        .zip(predicted)
        .filter(|(_, p)| !p.energy.is_finite() || p.forces.iter().flatten().flatten().any(|f| !f.is_finite()))
        .map(|(s, _)| s.frame.to_string())
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    let shown = bad.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
    let more = if bad.len() > 10 {
        format!(" and {} more", bad.len() - 10)
    } else {
        String::new()
    };
    anyhow::bail!(
        "the model predicts non-finite energies or forces for {} of {} structures (frames {shown}{more}): the checkpoint's weights are not finite or the structures lie far outside what it was trained on",
        bad.len(),
        samples.len()
    )
}

fn element_set(numbers: &[u8]) -> String {
    let mut symbols: Vec<&str> = numbers
        .iter()
        .filter_map(|&z| minima_atoms::element::by_number(z).map(|e| e.symbol))
        .collect();
    symbols.sort_unstable();
    symbols.dedup();
    symbols.join(",")
}

/// DSC per base structure: the scale at the minimum of the predicted curve against the
/// reference curve's, each refined by a parabola through the lowest grid point.
fn dsc(samples: &[Sample], predicted: &[Predicted]) -> Option<Dsc> {
    // A scan is the frames of one base structure with the same atoms: a growth run's base
    // holds a cluster of every size, each scanned on its own.
    // (scale, predicted, reference, sample index) per scan.
    type Point = (f64, f64, f64, usize);
    let mut groups: BTreeMap<(&str, &[u8]), Vec<Point>> = BTreeMap::new();
    for (i, (sample, p)) in samples.iter().zip(predicted).enumerate() {
        if let (Some(scale), Some(y)) = (sample.scale, sample.energy) {
            let scan = (sample.group.as_str(), sample.graph.numbers.as_slice());
            groups.entry(scan).or_default().push((scale, p.energy, y, i));
        }
    }
    let (mut in_scale, mut in_angstrom) = (Vec::new(), Vec::new());
    let (mut without_predicted, mut without_reference) = (0, 0);
    for points in groups.values_mut() {
        // A frame that two data sets both hold is one point of its scan, not two.
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points.dedup_by(|later, kept| later.0 == kept.0 && later.2 == kept.2);
        if points.windows(2).any(|w| w[0].0 == w[1].0) {
            // Two geometries at one scale are two scans under one base: no curve to read.
            without_reference += 1;
            continue;
        }
        if points.len() < 3 {
            continue;
        }
        let scales: Vec<f64> = points.iter().map(|p| p.0).collect();
        let predicted: Vec<f64> = points.iter().map(|p| p.1).collect();
        let reference: Vec<f64> = points.iter().map(|p| p.2).collect();
        let Some((s_reference, _)) = parabolic_minimum(&scales, &reference) else {
            without_reference += 1;
            continue;
        };
        let Some((s_predicted, _)) = parabolic_minimum(&scales, &predicted) else {
            without_predicted += 1;
            continue;
        };
        let difference = (s_predicted - s_reference).abs();
        in_scale.push(difference);
        if let Some(nn) = samples[points[0].3].reference_nearest_neighbor() {
            in_angstrom.push(difference * nn);
        }
    }
    // A model curve without a minimum inside the range is a result too (counted); a mean over
    // no scan is not, so it is absent then.
    let mean = |values: &[f64]| (!values.is_empty()).then(|| MeanStd::of(values));
    (in_scale.len() + without_predicted + without_reference > 0).then(|| Dsc {
        structures: in_scale.len(),
        scale: mean(&in_scale),
        angstrom: mean(&in_angstrom),
        without_predicted_minimum: without_predicted,
        without_reference_minimum: without_reference,
    })
}

impl EvalReport {
    /// A short human-readable summary.
    pub fn summary(&self) -> String {
        let row = |name: &str, s: &ErrorStats, unit: &str| {
            format!(
                "{name:<16} MAE {:.4} ({:.4}) {unit}   MSE {:.4} ({:.4}) {unit}²   RE {:.5} ({:.5})\n",
                s.mae.mean, s.mae.std, s.mse.mean, s.mse.std, s.re.mean, s.re.std
            )
        };
        let relative = match self.relative_to {
            RelativeTo::Total => "",
            RelativeTo::Cohesive { .. } => ", RE against the energy relative to the free atoms",
        };
        let mut text = format!("{} structures, metrics as mean (std){relative}\n", self.structures);
        text += &row("energy", &self.energy, "eV");
        text += &row("energy per atom", &self.energy_per_atom, "eV");
        if let Some(f) = &self.force_mae {
            let reference = match self.force_zero_reference {
                0 => String::new(),
                n if n == self.force_structures => " (reference: zero at equilibrium)".to_string(),
                n => format!(" (reference: zero for the {n} equilibrium structures without forces)"),
            };
            text += &format!(
                "{:<16} MAE {:.4} ({:.4}) eV/Å over {} structures{reference}\n",
                "forces", f.mean, f.std, self.force_structures
            );
        }
        if let Some(d) = &self.dsc {
            let angstrom = d
                .angstrom
                .as_ref()
                .map(|a| format!(", {:.4} ({:.4}) Å", a.mean, a.std))
                .unwrap_or_default();
            text += &match &d.scale {
                Some(scale) => format!(
                    "{:<16} {:.4} ({:.4}) in scale{angstrom}, over {} scans\n",
                    "DSC", scale.mean, scale.std, d.structures
                ),
                None => format!(
                    "{:<16} no scan's predicted curve has a minimum inside its range\n",
                    "DSC"
                ),
            };
            if d.without_predicted_minimum + d.without_reference_minimum > 0 {
                text += &format!(
                    "{:<16} left out: {} scans whose predicted curve, {} whose reference curve, has no minimum inside the scanned range\n",
                    "", d.without_predicted_minimum, d.without_reference_minimum
                );
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minima_atoms::{Atoms, Value};
    use minima_data::GraphSpec;

    /// The DSC of the last six samples alone (the third scan of the test below).
    fn dsc_of_third_scan(samples: &[Sample], predicted: &[Predicted]) -> Dsc {
        let (samples, predicted) = (&samples[12..], &predicted[12..]);
        dsc(samples, predicted).expect("a scan with a reference minimum")
    }

    /// Two scans of a dimer (1 Å at equilibrium): reference minimum at scale 1.1, the
    /// "predicted" one at 1.2 for the first scan and 1.1 for the second.
    #[test]
    fn dsc_compares_the_minima_of_predicted_and_reference_scans() {
        let scales = [0.9, 1.0, 1.1, 1.2, 1.3, 1.4];
        let (mut samples, mut predicted) = (Vec::new(), Vec::new());
        // The third scan's prediction only falls: its edge must not pass for a minimum.
        for (scan, predicted_minimum) in [(0, 1.2), (1, 1.1), (2, 2.0)] {
            for (k, &s) in scales.iter().enumerate() {
                let mut atoms = Atoms::new(vec![1, 1], vec![[0.0; 3], [s, 0.0, 0.0]]).unwrap();
                atoms.info.insert("scale".into(), Value::Float(s));
                atoms.info.insert("base_id".into(), Value::Int(scan));
                atoms.set_energy((s - 1.1f64).powi(2));
                let sample = Sample::from_atoms(&atoms, k, "scan", &GraphSpec { cutoff: None }).unwrap();
                samples.push(sample);
                predicted.push(Predicted {
                    energy: (s - predicted_minimum).powi(2) + 0.5,
                    atom_energies: vec![],
                    forces: None,
                    stress: None,
                });
            }
        }
        let dsc = dsc(&samples, &predicted).unwrap();
        assert_eq!(dsc.structures, 2);
        assert_eq!((dsc.without_predicted_minimum, dsc.without_reference_minimum), (1, 0));
        let (scale, angstrom) = (dsc.scale.as_ref().unwrap(), dsc.angstrom.as_ref().unwrap());
        assert!(
            (scale.mean - 0.05).abs() < 1e-9 && (scale.std - 0.05).abs() < 1e-9,
            "{dsc:?}"
        );
        // Nearest-neighbour distance at equilibrium is 1 Å, so Å equals scale units here.
        assert!((angstrom.mean - 0.05).abs() < 1e-9, "{dsc:?}");
        // With only the falling scan there is no mean, and the report says why.
        let falling = dsc_of_third_scan(&samples, &predicted);
        assert_eq!((falling.structures, falling.without_predicted_minimum), (0, 1));
        assert!(falling.scale.is_none() && falling.angstrom.is_none());

        // The first scan held twice (two data sets with the same frames) is still one scan.
        let (mut twice, mut twice_predicted) = (samples[..6].to_vec(), predicted[..6].to_vec());
        twice.extend_from_slice(&samples[..6]);
        twice_predicted.extend_from_slice(&predicted[..6]);
        let once = super::dsc(&samples[..6], &predicted[..6]).unwrap();
        let doubled = super::dsc(&twice, &twice_predicted).unwrap();
        assert_eq!(doubled.structures, 1);
        assert_eq!(doubled.scale.unwrap().mean, once.scale.unwrap().mean);
        // A second geometry at one of its scales (another energy) makes no curve: counted.
        let mut other = samples[2].clone();
        other.energy = Some(other.energy.unwrap() + 1.0);
        let mut mixed = samples[..6].to_vec();
        mixed.push(other);
        let mut mixed_predicted = predicted[..6].to_vec();
        mixed_predicted.push(predicted[2].clone());
        let mixed = super::dsc(&mixed, &mixed_predicted).unwrap_or_else(|| panic!("a report counting the scan"));
        assert_eq!((mixed.structures, mixed.without_reference_minimum), (0, 1));
        assert!(mixed.scale.is_none());
    }

    #[test]
    fn relative_error_against_free_atoms_divides_by_the_cohesive_energy() {
        let cohesive = super::RelativeTo::cohesive_from_list("Cu=3.5, Al=3.0").unwrap();
        // Two Cu and one Al with a label of -0.5 eV: -0.5 - 7.0 - 3.0 = -10.5 eV.
        assert_eq!(cohesive.base(&[29, 29, 13], -0.5).unwrap(), -10.5);
        assert_eq!(super::RelativeTo::Total.base(&[29, 29, 13], -0.5).unwrap(), -0.5);
        let stats = super::ErrorStats::of(&[(-0.4, -0.5, -10.5)]);
        assert!((stats.re.mean - 0.1 / 10.5).abs() < 1e-12, "{}", stats.re.mean);
        let missing = format!("{:#}", cohesive.base(&[8], -1.0).unwrap_err());
        assert!(missing.contains("no free-atom energy given for O"), "{missing}");
        for (bad, says) in [
            ("Cu", "SYMBOL=ENERGY"),
            ("Xx=1", "not an element"),
            ("Cu=inf", "finite"),
            ("", "no free-atom"),
        ] {
            let error = format!("{:#}", super::RelativeTo::cohesive_from_list(bad).unwrap_err());
            assert!(error.contains(says), "{bad:?}: {error}");
        }
    }

    #[test]
    fn clusters_of_each_size_in_one_growth_are_scans_of_their_own() {
        let (mut samples, mut predicted) = (Vec::new(), Vec::new());
        for atoms_in_cluster in [2usize, 3] {
            for (k, s) in [0.9, 1.0, 1.1, 1.2, 1.3].into_iter().enumerate() {
                let positions = (0..atoms_in_cluster).map(|i| [s * i as f64, 0.0, 0.0]).collect();
                let mut atoms = Atoms::new(vec![29; atoms_in_cluster], positions).unwrap();
                atoms.info.insert("scale".into(), Value::Float(s));
                atoms.info.insert("element".into(), Value::Str("Cu".into()));
                atoms.info.insert("seed".into(), Value::Int(0));
                atoms.set_energy((s - 1.1f64).powi(2) * atoms_in_cluster as f64);
                samples.push(Sample::from_atoms(&atoms, k, "growth", &GraphSpec { cutoff: None }).unwrap());
                predicted.push(Predicted {
                    energy: (s - 1.0f64).powi(2) * atoms_in_cluster as f64,
                    atom_energies: vec![],
                    forces: None,
                    stress: None,
                });
            }
        }
        assert_eq!(samples[0].group, samples[9].group, "one growth run, one base structure");
        let dsc = super::dsc(&samples, &predicted).unwrap();
        assert_eq!((dsc.structures, dsc.without_reference_minimum), (2, 0), "{dsc:?}");
        assert!((dsc.scale.unwrap().mean - 0.1).abs() < 1e-9);
    }
}
