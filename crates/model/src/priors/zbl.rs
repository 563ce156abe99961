//! The Ziegler–Biersack–Littmark (ZBL) screened nuclear repulsion, a pair prior any
//! architecture can add to its energy (`[[model.priors]] kind = "zbl"`), as LAMMPS `pair zbl`:
//!
//! E_ij = (ZᵢZⱼe²/(4πε₀r)) φ(r/a),  a = 0.46850 Å/(Zᵢ^0.23 + Zⱼ^0.23),
//! φ(x) = 0.18175e^{−3.19980x} + 0.50986e^{−0.94229x} + 0.28022e^{−0.40290x} + 0.02817e^{−0.20162x},
//! e²/(4πε₀) = 14.399645 eV·Å.
//!
//! Why: a network trained on near-equilibrium data has seen no pair closer than its
//! compressed bonds, and may put a minimum at r → 0, where relaxations collapse. ZBL is the
//! physics there (two nuclei screened by their electrons) and needs no training.
//!
//! It must not act where the data lives, or it biases the fit and the equilibria: it is
//! multiplied by a switch that is 1 below r_in = `inner`·(R_cov,i + R_cov,j) and exactly 0
//! beyond r_out = `outer`·(R_cov,i + R_cov,j) (Cordero covalent radii), the quintic
//! smoothstep 1 − 10t³ + 15t⁴ − 6t⁵, t = (r − r_in)/(r_out − r_in), whose value, slope and
//! curvature are continuous at both ends (forces and the force-training gradient stay
//! continuous). Defaults `inner` = 0.35, `outer` = 0.6: the shortest bonds are about 0.77 of
//! their covalent sum (C≡C 1.20 Å of 1.52, N≡N 1.10 of 1.42), 0.69 in the 0.9-scaled scans
//! of the shipped data, and non-bonded pairs are longer, so the prior is exactly zero on every
//! such frame; below 0.35 of the sum (two carbons at 0.53 Å) the full ZBL holds, over 100 eV.
//!
//! Pairs are the graph's edges (see [`super`]): every pair of a molecule without a cutoff,
//! else those within the cutoff, which must then exceed every r_out.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::PairPrior;
use crate::blocks::MAX_Z;
use crate::message_layers::Edges;
use crate::ModelError;

/// e²/(4πε₀), eV·Å.
const COULOMB: f64 = 14.399645;
/// The screening length's numerator, Å.
const SCREENING: f64 = 0.46850;
/// φ's coefficients and exponents.
const PHI: [(f64, f64); 4] = [
    (0.18175, 3.19980),
    (0.50986, 0.94229),
    (0.28022, 0.40290),
    (0.02817, 0.20162),
];

/// A `[[model.priors]]` entry of kind "zbl".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZblConfig {
    /// r_in / (R_cov,i + R_cov,j): full ZBL below.
    pub inner: f64,
    /// r_out / (R_cov,i + R_cov,j): exactly zero beyond.
    pub outer: f64,
}

impl Default for ZblConfig {
    fn default() -> Self {
        ZblConfig {
            inner: 0.35,
            outer: 0.6,
        }
    }
}

impl super::PriorSpec for ZblConfig {
    fn name(&self) -> &'static str {
        "zbl"
    }

    fn build(&self, context: &super::PriorContext) -> super::Prior {
        super::Prior::Pair(Box::new(Zbl::new(self, context.kind, context.device)))
    }

    /// `elements` the model knows, `cutoff` its graph's.
    fn validate(&self, elements: &[u8], cutoff: Option<f64>) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Config(m));
        if !(self.inner > 0.0 && self.inner < self.outer) {
            return bad(format!(
                "model.priors (zbl): need 0 < inner ({}) < outer ({})",
                self.inner, self.outer
            ));
        }
        let mut largest = 0.0f64;
        for &z in elements {
            match minima_atoms::element::by_number(z) {
                Some(e) => largest = largest.max(e.covalent_radius),
                None => return bad(format!("model.priors (zbl): no covalent radius for element Z={z}")),
            }
        }
        let reach = self.outer * 2.0 * largest;
        if let Some(rc) = cutoff.filter(|&rc| reach >= rc) {
            return bad(format!(
                "model.priors (zbl): the outer radius reaches {reach:.3} Å, not below the cutoff {rc} Å"
            ));
        }
        Ok(())
    }
}

/// The prior, with its per-element tables on the model's device.
#[derive(Debug)]
pub struct Zbl {
    /// Z^0.23 by atomic number.
    screening_power: Tensor,
    /// Covalent radius by atomic number, Å (0 where unknown: validation rejects those).
    covalent_radius: Tensor,
    inner: f64,
    outer: f64,
}

impl Zbl {
    pub fn new(config: &ZblConfig, kind: Kind, device: Device) -> Zbl {
        let table = |value: &dyn Fn(u8) -> f64| {
            let values: Vec<f64> = (0..=MAX_Z as u8).map(value).collect();
            Tensor::from_slice(&values).to_kind(kind).to_device(device)
        };
        Zbl {
            screening_power: table(&|z| (z as f64).powf(0.23)),
            covalent_radius: table(&|z| minima_atoms::element::by_number(z).map_or(0.0, |e| e.covalent_radius)),
            inner: config.inner,
            outer: config.outer,
        }
    }
}

impl PairPrior for Zbl {
    /// r_out of the two largest covalent radii among `numbers`.
    fn reach(&self, numbers: &Tensor) -> Option<f64> {
        let largest = tch::no_grad(|| self.covalent_radius.index_select(0, numbers).max().double_value(&[]));
        Some(self.outer * 2.0 * largest)
    }

    /// Switched E_ij per edge.
    fn edge_energy(&self, edges: &Edges, numbers: &Tensor) -> Tensor {
        let distance = edges.distance();
        let zi = numbers.index_select(0, &edges.center_atoms());
        let zj = numbers.index_select(0, &edges.neighbor);
        let charges = (&zi * &zj).to_kind(distance.kind());
        let length = (self.screening_power.index_select(0, &zi) + self.screening_power.index_select(0, &zj))
            .reciprocal()
            * SCREENING;
        let x = &distance / length;
        let phi = PHI
            .iter()
            .map(|&(c, k)| (&x * -k).exp() * c)
            .reduce(|a, b| a + b)
            .expect("four terms");
        let bare = charges * COULOMB / &distance * phi;
        let sum = self.covalent_radius.index_select(0, &zi) + self.covalent_radius.index_select(0, &zj);
        let r_in = &sum * self.inner;
        let t = ((&distance - &r_in) / (sum * (self.outer - self.inner))).clamp(0.0, 1.0);
        // 1 − 10t³ + 15t⁴ − 6t⁵; exactly 0 at t = 1, where the clamp also stops the gradient.
        let switch = 1.0 - t.pow_tensor_scalar(3) * (t.pow_tensor_scalar(2) * 6.0 - &t * 15.0 + 10.0);
        bare * switch
    }
}

/// E_ij of one pair, eV, in f64 before the switch: the reference formula for tests.
pub fn unswitched_pair_energy(zi: u8, zj: u8, r: f64) -> f64 {
    let a = SCREENING / ((zi as f64).powf(0.23) + (zj as f64).powf(0.23));
    let phi: f64 = PHI.iter().map(|&(c, k)| c * (-k * r / a).exp()).sum();
    COULOMB * (zi as f64) * (zj as f64) / r * phi
}
