//! Auxiliary physical targets (VIMPNN paper, section 4.3): parallel readouts whose MSE terms,
//! weighted by α, push node states towards physically meaningful quantities.

use minima_data::Sample;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::batch::GraphBatch;
use crate::blocks::Mlp;
use crate::fields::{Field, Fields};

/// Auxiliary physical targets (paper section 4.3), each a parallel readout trained with an
/// MSE term weighted by `[train.loss] aux` (α; the paper's 0.3). All three are on by default, as in the paper's VIMPNN
/// (section 5.2); each can be switched off for its ablations. MPNN has no auxiliary readouts
/// and ignores this table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuxConfig {
    /// Number of atoms of each element of the model.
    pub counts: bool,
    /// Number of valence orbitals contributed by each element (count × orbitals per atom).
    pub orbitals: bool,
    /// The "distance scaling" distribution: a Gaussian over `scale_grid` centred on the
    /// structure's scale relative to equilibrium (frames must record `scale`).
    pub scale: bool,
    /// First and last grid scale and the number of points.
    pub scale_grid: (f64, f64, usize),
    /// Standard deviation of the target Gaussian, in scale units.
    pub scale_width: f64,
}

impl Default for AuxConfig {
    fn default() -> Self {
        AuxConfig {
            counts: true,
            orbitals: true,
            scale: true,
            scale_grid: (0.8, 1.6, 17),
            scale_width: 0.05,
        }
    }
}

impl AuxConfig {
    pub fn grid(&self) -> Vec<f64> {
        let (first, last, n) = self.scale_grid;
        (0..n)
            .map(|k| first + (last - first) * k as f64 / (n.max(2) - 1) as f64)
            .collect()
    }
}

/// The auxiliary readouts, one per head switched on: per-atom perceptrons on the readout
/// features, summed over atoms for the extensive counts ([`Field::AuxCounts`],
/// [`Field::AuxOrbitals`], (structures, elements)) and averaged then soft-maxed for the
/// distribution over the scale grid ([`Field::AuxScale`], (structures, points), rows sum to 1).
#[derive(Debug)]
pub struct AuxHeads {
    counts: Option<Mlp>,
    orbitals: Option<Mlp>,
    scale: Option<Mlp>,
}

impl AuxHeads {
    pub fn new(path: nn::Path, config: &AuxConfig, input: i64, hidden: i64, n_elements: i64) -> AuxHeads {
        let head = |on: bool, name: &str, out: i64| on.then(|| Mlp::new(&path / name, &[input, hidden, out]));
        AuxHeads {
            counts: head(config.counts, "counts", n_elements),
            orbitals: head(config.orbitals, "orbitals", n_elements),
            scale: head(config.scale, "scale", config.scale_grid.2 as i64),
        }
    }

    /// The fields of the heads that are on.
    pub fn fields(&self) -> Vec<Field> {
        [
            (&self.counts, Field::AuxCounts),
            (&self.orbitals, Field::AuxOrbitals),
            (&self.scale, Field::AuxScale),
        ]
        .into_iter()
        .filter_map(|(head, field)| head.as_ref().map(|_| field))
        .collect()
    }

    /// Writes the predictions of the heads that are on.
    pub fn forward(&self, features: &Tensor, batch: &GraphBatch, fields: &mut Fields) {
        let summed = |mlp: &Mlp| batch.sum_per_structure(&mlp.forward(features));
        if let Some(mlp) = &self.counts {
            fields.insert(Field::AuxCounts, summed(mlp));
        }
        if let Some(mlp) = &self.orbitals {
            fields.insert(Field::AuxOrbitals, summed(mlp));
        }
        if let Some(mlp) = &self.scale {
            let distribution = batch
                .mean_per_structure(&mlp.forward(features))
                .softmax(-1, features.kind());
            fields.insert(Field::AuxScale, distribution);
        }
    }
}

/// Reference values of the auxiliary targets for a batch.
pub struct AuxTargets {
    counts: Tensor,
    orbitals: Tensor,
    scale: Option<Tensor>,
}

impl AuxTargets {
    /// Targets for `samples` and the model's `elements`. The scale distribution needs every
    /// frame to record its `scale`; it is built only when `config.scale` is on.
    pub fn new(
        samples: &[&Sample],
        elements: &[u8],
        config: &AuxConfig,
        kind: Kind,
        device: Device,
    ) -> Result<AuxTargets, String> {
        let k = elements.len();
        let mut counts = vec![0.0; samples.len() * k];
        for (s, sample) in samples.iter().enumerate() {
            for z in &sample.graph.numbers {
                let e = elements
                    .binary_search(z)
                    .map_err(|_| format!("element Z={z} is not in the model"))?;
                counts[s * k + e] += 1.0;
            }
        }
        let orbitals_per_atom: Vec<f64> = elements
            .iter()
            .map(|&z| minima_atoms::element::by_number(z).map_or(0.0, |e| e.valence_orbitals as f64))
            .collect();
        let orbitals: Vec<f64> = counts
            .iter()
            .enumerate()
            .map(|(i, c)| c * orbitals_per_atom[i % k])
            .collect();
        let table = |v: &[f64], cols: usize| {
            Tensor::from_slice(v)
                .view([-1, cols as i64])
                .to_kind(kind)
                .to_device(device)
        };
        let scale = if config.scale {
            let grid = config.grid();
            let mut distribution = Vec::with_capacity(samples.len() * grid.len());
            for sample in samples {
                let scale = sample.scale.ok_or_else(|| {
                    format!(
                        "frame {} records no `scale`, which model.aux.scale needs (or set model.aux.scale = false)",
                        sample.frame
                    )
                })?;
                let weights: Vec<f64> = grid
                    .iter()
                    .map(|g| (-0.5 * ((g - scale) / config.scale_width).powi(2)).exp())
                    .collect();
                let total: f64 = weights.iter().sum::<f64>().max(f64::MIN_POSITIVE);
                distribution.extend(weights.iter().map(|w| w / total));
            }
            Some(table(&distribution, grid.len()))
        } else {
            None
        };
        Ok(AuxTargets {
            counts: table(&counts, k.max(1)),
            orbitals: table(&orbitals, k.max(1)),
            scale,
        })
    }

    /// Σ over the active heads of their mean squared error (unweighted; the trainer applies α).
    pub fn loss(&self, output: &Fields) -> Option<Tensor> {
        let terms: Vec<Tensor> = [
            (output.get(Field::AuxCounts), Some(&self.counts)),
            (output.get(Field::AuxOrbitals), Some(&self.orbitals)),
            (output.get(Field::AuxScale), self.scale.as_ref()),
        ]
        .into_iter()
        .filter_map(|(predicted, target)| Some((predicted? - target?).square().mean(predicted?.kind())))
        .collect();
        terms.into_iter().reduce(|a, b| a + b)
    }
}
