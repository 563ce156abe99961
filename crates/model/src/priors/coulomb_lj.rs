//! The Coulomb + Lennard-Jones pair head (physics-transformer paper, Eq. 5–6, Table 2 "LJP"), a
//! learnt prior any architecture can carry: `[[model.priors]] kind = "coulomb_lj"`.
//!
//! Reads the architecture's final per-atom features ([`Field::NodeFeatures`]); writes the pair
//! terms and adds half of each pair energy to its centre atom's network energy.
//!
//! - β = f_bond([xᵢ; xⱼ]), averaged over both orders so that E_ij = E_ji.
//!   E_ij = −β1·β0/d + β2·((β4/d)^{2β3} − 2(β4/d)^β3). β0 (the charge product qᵢqⱼ) keeps its
//!   sign; β1, β2 (the Coulomb and Lennard-Jones coefficients), β3 (the exponent) and β4 (the
//!   equilibrium distance, Å) go through softplus, which keeps them positive.
//! - The head's last layer starts at zero, so every pair starts from the same β: β0 = 0,
//!   β1 = ln 2, β2, β3 and β4 at `initial_depth`, `initial_exponent` and `initial_distance`
//!   (the exponentials make larger random starts blow the energies up).
//! - E_ij is switched to zero over the last `switch` Å before the model's cutoff (smooth in
//!   value and slope; a model without a cutoff, on whole molecules, needs no switch), and (β4/d)^β3 is evaluated as exp(min(β3·ln(β4/d), [`MAX_POWER`])).
//! - β1 and β2, like every energy a network predicts, are in units of the residual scale σ;
//!   the fields it writes are in eV.

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::batch::GraphBatch;
use crate::blocks::{cosine_cutoff, inverse_softplus, Mlp};
use crate::fields::{Block, Field, Fields};
use crate::message_layers::{EdgeReadout, Edges, Prepared};
use crate::ModelError;

/// Largest exponent argument β3·ln(β4/d) of the Lennard-Jones terms: e^60 stays finite in
/// f32, and no physical pair comes near it.
pub const MAX_POWER: f64 = 30.0;

/// Which pairs carry a pair energy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairSet {
    /// Every pair within the cutoff (Eq. 6 sums over all pairs; the cutoff bounds the cost).
    Cutoff,
    /// Only pairs bonded at the reference geometry (the adjacency matrix A).
    Bonded,
}

/// A `kind = "coulomb_lj"` entry of `[[model.priors]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoulombLjConfig {
    pub pairs: PairSet,
    /// Width (Å) over which pair energies are switched smoothly to zero before the cutoff.
    pub switch: f64,
    /// β4 (Å) and β3 at initialisation, the same for every pair: the model is not told bond
    /// lengths, so β4 near a bond length after training is learnt.
    pub initial_distance: f64,
    pub initial_exponent: f64,
    /// β2, the Lennard-Jones well depth, at initialisation (units of the residual scale σ).
    /// The default 0.05 σ is a gentle start that fits energies fastest; the QM9 transformer
    /// configs use 1 σ, so that the pair terms carry geometry from the start and the
    /// pair-equilibrium loss can shape β4 (the first steps are stiffer: bonds start compressed).
    pub initial_depth: f64,
}

impl Default for CoulombLjConfig {
    fn default() -> Self {
        CoulombLjConfig {
            pairs: PairSet::Cutoff,
            switch: 1.0,
            initial_distance: 1.5,
            initial_exponent: 6.0,
            initial_depth: 0.05,
        }
    }
}

impl super::PriorSpec for CoulombLjConfig {
    fn name(&self) -> &'static str {
        "coulomb_lj"
    }

    fn validate(&self, _elements: &[u8], cutoff: Option<f64>) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Config(m));
        let longest = cutoff.unwrap_or(f64::INFINITY);
        if !(self.switch > 0.0 && self.switch <= longest) {
            return bad(format!(
                "the coulomb_lj prior's switch must be in (0, model.cutoff = {longest}] Å"
            ));
        }
        let initial = [self.initial_distance, self.initial_exponent, self.initial_depth];
        if !initial.iter().all(|x| x.is_finite() && *x > 0.0) {
            return bad(
                "the coulomb_lj prior's initial_distance, initial_exponent and initial_depth must be positive".into(),
            );
        }
        Ok(())
    }

    /// The head f_bond: [2w, w, 5].
    fn parameter_count(&self, width: u64) -> u64 {
        2 * width * width + width + 5 * width + 5
    }

    /// The pair's features and the formula's terms.
    fn activations_per_edge(&self, width: u64) -> u64 {
        5 * width + 12
    }

    fn build(&self, context: &super::PriorContext) -> super::Prior {
        super::Prior::Head(Box::new(CoulombLj::new(
            context.path.clone(),
            self,
            context.width,
            context.cutoff,
            context.scale,
        )))
    }
}

/// Eq. 5 in f64, without the cutoff switch, for β as [`Field::PairBeta`] holds them
/// (β1, β2 in eV, β4 in Å): the energy of one pair at distance `d`, for inspection and tests.
pub fn pair_energy(beta: &[f64; 5], d: f64) -> f64 {
    let [b0, b1, b2, b3, b4] = *beta;
    let power = (b4 / d).powf(b3);
    -b1 * b0 / d + b2 * (power * power - 2.0 * power)
}

/// The lowest point of Eq. 5 on (0.3, 5) Å: a 1 mÅ scan, then golden-section refinement;
/// `None` when it lies on the scan's ends (no well, or one beyond 5 Å). With β0 = 0 it is β4;
/// a Coulomb term shifts it.
pub fn pair_minimum(beta: &[f64; 5]) -> Option<f64> {
    let (start, step, count) = (0.3, 1e-3, 4700);
    let best = (0..=count)
        .map(|k| start + step * k as f64)
        .min_by(|a, b| pair_energy(beta, *a).total_cmp(&pair_energy(beta, *b)))?;
    if best <= start || best >= start + step * (count - 1) as f64 {
        return None;
    }
    let (mut low, mut high) = (best - step, best + step);
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    while high - low > 1e-9 {
        let (a, b) = (high - ratio * (high - low), low + ratio * (high - low));
        if pair_energy(beta, a) < pair_energy(beta, b) {
            high = b;
        } else {
            low = a;
        }
    }
    Some(0.5 * (low + high))
}

/// The head, built.
#[derive(Debug)]
pub struct CoulombLj {
    head: Mlp,
    pairs: PairSet,
    /// The model's cutoff: pair energies switch off before it.
    cutoff: Option<f64>,
    switch: f64,
    /// softplus⁻¹ of the initial β2, β3, β4, added to the head's outputs.
    offsets: [f64; 3],
    /// The residual scale σ (eV) of the model's energies: the pair fields are written in eV.
    scale: f64,
}

impl CoulombLj {
    /// A head at `path` on node features of `width`, for a model of `cutoff` and residual
    /// scale `scale` (eV).
    pub fn new(path: nn::Path, config: &CoulombLjConfig, width: i64, cutoff: Option<f64>, scale: f64) -> CoulombLj {
        CoulombLj {
            head: Mlp::new(path, &[2 * width, width, 5]).zero_output(),
            pairs: config.pairs,
            cutoff,
            switch: config.switch,
            offsets: [config.initial_depth, config.initial_exponent, config.initial_distance].map(inverse_softplus),
            scale,
        }
    }

    /// β, E_ij and its slope for pairs of node features `xi`, `xj` at distance `d`, energies
    /// in units of σ.
    fn formula(&self, xi: &Tensor, xj: &Tensor, d: &Tensor) -> (Tensor, Tensor, Tensor) {
        let head = &self.head;
        let raw = (head.forward(&Tensor::cat(&[xi, xj], -1)) + head.forward(&Tensor::cat(&[xj, xi], -1))) * 0.5;
        let raw = raw.unbind(-1);
        let [depth, exponent, distance] = self.offsets;
        let beta = [
            raw[0].shallow_clone(),
            raw[1].softplus(),
            (&raw[2] + depth).softplus(),
            (&raw[3] + exponent).softplus(),
            (&raw[4] + distance).softplus(),
        ];
        let exponent = &beta[3] * (&beta[4] / d).log();
        let unclamped = exponent.lt(MAX_POWER).to_kind(d.kind());
        let power = exponent.clamp_max(MAX_POWER).exp();
        let lennard_jones = &beta[2] * (power.square() - &power * 2.0);
        let coulomb = -(&beta[1] * &beta[0]) / d;
        // ∂/∂d of both terms: d(β4/d)^β3/dd = −β3/d·(β4/d)^β3 (zero where clamped).
        let slope =
            &beta[1] * &beta[0] / d.square() - &beta[2] * &beta[3] * unclamped * &power * (&power - 1.0) * 2.0 / d;
        let energy = coulomb + lennard_jones;
        let energy = match self.cutoff {
            Some(cutoff) => energy * cosine_cutoff(&(d - (cutoff - self.switch)).clamp_min(0.0), self.switch),
            None => energy,
        };
        (Tensor::stack(&beta, -1), energy, slope)
    }
}

impl Block for CoulombLj {
    fn name(&self) -> &str {
        "coulomb_lj"
    }

    fn reads(&self) -> Vec<Field> {
        vec![
            Field::NodeFeatures,
            Field::NetworkEnergy,
            Field::EdgeIndex,
            Field::EdgeVectors,
            Field::BondClass,
        ]
    }

    /// The pair terms, and the network energy with the pairs' shares added.
    fn writes(&self) -> Vec<Field> {
        vec![
            Field::NetworkEnergy,
            Field::PairEdge,
            Field::PairBeta,
            Field::PairEnergy,
            Field::PairSlope,
        ]
    }

    fn apply(&self, batch: &GraphBatch, fields: &mut Fields, _train: bool) {
        let edge = match self.pairs {
            PairSet::Cutoff => Tensor::arange(batch.center.size()[0], (Kind::Int64, batch.device())),
            PairSet::Bonded => batch.bond.ne(0).nonzero().squeeze_dim(-1),
        };
        let centers = batch.center.index_select(0, &edge);
        let atoms = fields.require(Field::NodeFeatures);
        let xi = atoms.index_select(0, &centers);
        let xj = atoms.index_select(0, &batch.neighbor.index_select(0, &edge));
        let d = Edges::of(batch).distance().index_select(0, &edge);
        let (beta, pair_energy, slope) = self.formula(&xi, &xj, &d);
        let energy = fields
            .require(Field::NetworkEnergy)
            .index_add(0, &centers, &(&pair_energy * 0.5));
        fields.insert(Field::NetworkEnergy, energy);
        // β1 and β2 are energies: in eV, as E_ij and its slope.
        let sigma = self.scale;
        let units = Tensor::from_slice(&[1.0, sigma, sigma, 1.0, 1.0])
            .to_kind(beta.kind())
            .to_device(beta.device());
        fields.insert(Field::PairEdge, edge);
        fields.insert(Field::PairBeta, beta * units);
        fields.insert(Field::PairEnergy, pair_energy * sigma);
        fields.insert(Field::PairSlope, slope * sigma);
    }
}

/// The head on edge chunks, for structures too large for one pass
/// ([`crate::message_layers::in_chunks`]).
impl EdgeReadout for CoulombLj {
    fn prepare(&self, features: &Tensor) -> Prepared {
        Prepared {
            sent: vec![features.shallow_clone()],
            received: vec![features.shallow_clone()],
        }
    }

    /// E_ij (zero on unbonded edges when the head reads bonded pairs only).
    fn energy(&self, sent: &[Tensor], received: &[Tensor], edges: &Edges) -> Tensor {
        let (_, energy, _) = self.formula(&received[0], &sent[0], &edges.distance());
        match self.pairs {
            PairSet::Cutoff => energy,
            PairSet::Bonded => energy * edges.bond.ne(0).to_kind(edges.vectors.kind()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pair_minimum_is_beta4_without_charges_and_moves_out_with_repulsion() {
        let neutral = [0.0, 0.5, 1.0, 6.0, 1.09];
        assert!((pair_minimum(&neutral).unwrap() - 1.09).abs() < 1e-7);
        // A repulsive Coulomb term (β0 < 0) pushes the minimum outward, to where its slope
        // β1·|β0|/d² balances the Lennard-Jones pull.
        let repulsive = [-0.5, 0.5, 1.0, 6.0, 1.09];
        let shifted = pair_minimum(&repulsive).unwrap();
        assert!(shifted > 1.091, "{shifted}");
        let h = 1e-6;
        let slope = (pair_energy(&repulsive, shifted + h) - pair_energy(&repulsive, shifted - h)) / (2.0 * h);
        assert!(slope.abs() < 1e-5, "{slope}");
        // Pure Coulomb repulsion has no well.
        assert_eq!(pair_minimum(&[-1.0, 1.0, 0.0, 6.0, 1.0]), None);
    }
}
