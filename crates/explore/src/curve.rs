//! Energy against isotropic scale (the papers' Fig. 3 and 5): a molecule scaled about its
//! centroid, a crystal with its cell, each scale evaluated by one or more calculators, and each
//! curve's minimum refined by the parabola through the lowest grid point and its neighbours.
//! A curve whose lowest point is an end of the scan has no minimum inside the scanned range:
//! the energy still falls beyond it, and the edge is reported as such, never as a minimum.

use std::io::Write;
use std::path::Path;

use minima_atoms::Atoms;
pub use minima_bonds::record::with_fixed_bonds;
use minima_data::curve::parabolic_minimum;
use minima_data::generate::scaled;
use minima_label::Calculator;
use serde::Serialize;

use crate::plot::{Figure, Style};
use crate::ExploreError;

/// One calculator's curve.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    /// The calculator's name (`emt`, `xtb`, a model's checkpoint…).
    pub name: String,
    /// Energy at each scale (eV).
    pub energies: Vec<f64>,
    /// (scale, energy) of the refined minimum; none when the lowest energy is at an end of
    /// the scan.
    pub minimum: Option<(f64, f64)>,
    /// The end of the scan (its scale) the energy falls toward, when there is no minimum
    /// inside the scanned range.
    pub falls_toward_edge: Option<f64>,
}

impl Curve {
    /// The curve of `energies` on `scales` (ascending), its minimum found inside the range.
    pub fn new(name: impl Into<String>, scales: &[f64], energies: Vec<f64>) -> Curve {
        let lowest = (0..energies.len().min(scales.len())).min_by(|&a, &b| energies[a].total_cmp(&energies[b]));
        let at_edge = lowest.filter(|&k| k == 0 || k + 1 == scales.len().min(energies.len()));
        Curve {
            name: name.into(),
            minimum: if at_edge.is_some() {
                None
            } else {
                parabolic_minimum(scales, &energies)
            },
            falls_toward_edge: at_edge.map(|k| scales[k]),
            energies,
        }
    }

    /// What the curve says about its minimum, for a report: where it is, or that the scan
    /// must be widened.
    pub fn verdict(&self, nearest_neighbor: Option<f64>) -> String {
        match (self.minimum, self.falls_toward_edge) {
            (Some((scale, energy)), _) => {
                let length = nearest_neighbor
                    .map(|d| format!(", nearest neighbours {:.3} Å", d * scale))
                    .unwrap_or_default();
                format!("minimum at scale {scale:.4}{length}, E = {energy:.4} eV")
            }
            (None, Some(edge)) => format!(
                "no minimum inside the scanned range (energy falls toward the edge at scale {edge}); widen the scan"
            ),
            (None, None) => "no minimum: no energies".into(),
        }
    }
}

/// Curves of one structure on one grid of scales.
#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    pub scales: Vec<f64>,
    pub curves: Vec<Curve>,
    /// Nearest-neighbour distance of the unscaled structure (Å), to read scales as lengths.
    pub nearest_neighbor: Option<f64>,
}

/// The geometry scales are measured from: a frame of a scan (with `scale`, as the dataset
/// generators write) brought back to scale 1, any other structure as given; bonds fixed.
pub fn reference_of(structure: &Atoms) -> Result<Atoms, ExploreError> {
    let mut base = with_fixed_bonds(structure);
    if let Some(scale) = base.info.shift_remove("scale").and_then(|v| v.as_f64()) {
        base = base
            .scaled(1.0 / scale)
            .map_err(|e| ExploreError::Input(format!("scale={scale}: {e}")))?;
    }
    Ok(base)
}

/// The scan of `structure` (its [`reference_of`]) over `scales` with each calculator;
/// `progress` is called once per evaluated structure.
pub fn scan(
    structure: &Atoms,
    scales: &[f64],
    calculators: &[&dyn Calculator],
    mut progress: impl FnMut(),
) -> Result<Scan, ExploreError> {
    if scales.iter().any(|&s| !(s.is_finite() && s > 0.0)) {
        return Err(ExploreError::Input("scales must be positive".into()));
    }
    let base = reference_of(structure)?;
    let frames: Vec<Atoms> = scales.iter().map(|&s| scaled(&base, s)).collect();
    let mut curves = Vec::with_capacity(calculators.len());
    for calculator in calculators {
        let mut energies = Vec::with_capacity(frames.len());
        for (frame, &scale) in frames.iter().zip(scales) {
            let labels = calculator
                .calculate_checked(frame)
                .map_err(|e| ExploreError::Input(format!("{} at scale {scale}: {e}", calculator.name())))?;
            energies.push(labels.energy);
            progress();
        }
        curves.push(Curve::new(calculator.name(), scales, energies));
    }
    Ok(Scan {
        scales: scales.to_vec(),
        curves,
        nearest_neighbor: base.closest_pair().map(|(_, _, d)| d),
    })
}

impl Scan {
    /// `scale,<name> energy (eV),…` with one row per scale.
    pub fn write_csv(&self, path: &Path) -> Result<(), ExploreError> {
        minima_io::write_atomic(path, |w| {
            write!(w, "scale")?;
            for curve in &self.curves {
                write!(w, ",{}_energy_eV", curve.name)?;
            }
            writeln!(w)?;
            for (k, scale) in self.scales.iter().enumerate() {
                write!(w, "{scale}")?;
                for curve in &self.curves {
                    write!(w, ",{}", curve.energies[k])?;
                }
                writeln!(w)?;
            }
            Ok(())
        })
        .map_err(ExploreError::write(path))
    }

    /// Energy relative to each curve's own minimum against scale, every minimum marked. Each
    /// curve is shifted by its own lowest energy, as in the papers' figures: a model and its
    /// reference may differ by a constant (the atomic reference energies) that says nothing
    /// about where the minimum lies.
    pub fn figure(&self, title: &str) -> Figure {
        let mut figure = Figure::new(title, "scale (1 = equilibrium or input geometry)", "E − E_min (eV)");
        for (k, curve) in self.curves.iter().enumerate() {
            let lowest = curve
                .minimum
                .map(|(_, e)| e)
                .unwrap_or_else(|| curve.energies.iter().copied().fold(f64::INFINITY, f64::min));
            let points = self
                .scales
                .iter()
                .zip(&curve.energies)
                .map(|(&s, &e)| (s, e - lowest))
                .collect();
            let label = match curve.falls_toward_edge {
                Some(edge) => format!("{} (no minimum in range: falls toward scale {edge})", curve.name),
                None => curve.name.clone(),
            };
            figure = figure.with_series(label, points, Style::Line);
            if let Some((s, e)) = curve.minimum {
                figure = figure.with_marker(format!("{} minimum: scale {s:.3}", curve.name), (s, e - lowest), k);
            }
        }
        figure
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minima_atoms::build::fcc_supercell;
    use minima_label::Emt;

    #[test]
    fn the_emt_copper_curve_has_its_minimum_near_the_emt_lattice_constant() {
        // Built at 3.8 Å; EMT's copper lattice constant is about 3.59 Å.
        let crystal = fcc_supercell(29, 3.8, 2);
        let scales: Vec<f64> = (0..41).map(|k| 0.85 + 0.2 * k as f64 / 40.0).collect();
        let mut calls = 0;
        let scan = scan(&crystal, &scales, &[&Emt::new()], || calls += 1).unwrap();
        assert_eq!(calls, 41);
        let (scale, _) = scan.curves[0].minimum.unwrap();
        assert!((3.8 * scale - 3.59).abs() < 0.02, "{}", 3.8 * scale);
        let folder = tempfile::tempdir().unwrap();
        let csv = folder.path().join("curve.csv");
        scan.write_csv(&csv).unwrap();
        let text = std::fs::read_to_string(csv).unwrap();
        assert!(text.starts_with("scale,emt_energy_eV\n0.85,"));
        assert_eq!(text.lines().count(), 42);
    }

    #[test]
    fn a_scan_that_only_rises_or_only_falls_has_no_minimum_only_an_edge() {
        // Compressed copper only rises in energy as it is squeezed further from 3.59 Å …
        let crystal = fcc_supercell(29, 3.59, 2);
        let rising: Vec<f64> = (0..6).map(|k| 1.0 + 0.02 * k as f64).collect();
        let falling: Vec<f64> = (0..6).map(|k| 0.85 + 0.02 * k as f64).collect();
        for (scales, edge) in [(&rising, rising[0]), (&falling, falling[5])] {
            let scan = scan(&crystal, scales, &[&Emt::new()], || {}).unwrap();
            let curve = &scan.curves[0];
            assert_eq!(
                (curve.minimum, curve.falls_toward_edge),
                (None, Some(edge)),
                "{:?}",
                curve.energies
            );
            let verdict = curve.verdict(scan.nearest_neighbor);
            assert!(verdict.starts_with("no minimum inside the scanned range"), "{verdict}");
            assert!(verdict.contains(&format!("edge at scale {edge}")), "{verdict}");
            let json = serde_json::to_value(&scan).unwrap();
            assert!(json["curves"][0]["minimum"].is_null(), "{json}");
            assert_eq!(json["curves"][0]["falls_toward_edge"], edge);
            let svg = scan.figure("edge").svg().unwrap();
            assert!(svg.contains("no minimum in range") && !svg.contains("emt minimum"));
        }
    }

    #[test]
    fn an_interior_minimum_is_still_found_and_an_edge_never_is() {
        let scales = [1.0, 2.0, 3.0, 4.0];
        let valley = Curve::new("valley", &scales, vec![3.0, 1.0, 2.0, 5.0]);
        assert!(valley.minimum.is_some() && valley.falls_toward_edge.is_none());
        let flat = Curve::new("flat", &scales, vec![1.0; 4]);
        assert_eq!((flat.minimum, flat.falls_toward_edge), (None, Some(1.0)));
        let one = Curve::new("one", &[1.0], vec![-2.0]);
        assert_eq!((one.minimum, one.falls_toward_edge), (None, Some(1.0)));
    }
}
