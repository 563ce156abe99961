//! The pair head's pairs of one structure (physics-transformer paper, Eq. 5): β0..β4, the
//! pair energy, its slope and where its potential is lowest, per pair and summed by bond kind,
//! to see whether a model learnt physical pairs (β4 near the bond length, β3 an exponent, β2
//! a well depth).

use minima_data::{BondClass, Graph};
use serde::Serialize;

use crate::priors::coulomb_lj::pair_minimum;
use crate::{Field, ModelError, Potential};

/// One pair of atoms, one direction of its two edges.
#[derive(Debug, Clone, Serialize)]
pub struct PairRecord {
    pub i: usize,
    pub j: usize,
    /// "C-H".
    pub elements: String,
    pub bond: &'static str,
    /// Å.
    pub distance: f64,
    /// β0 (charge product), β1 (eV), β2 (eV), β3, β4 (Å).
    pub beta: [f64; 5],
    /// E_ij, eV.
    pub energy: f64,
    /// ∂E_ij/∂d, eV/Å: zero where the pair sits at the minimum of its potential.
    pub slope: f64,
    /// Where Eq. 5 with this pair's β is lowest (Å): β4 when β0 = 0, shifted by the Coulomb
    /// term otherwise; `None` when it has no minimum below 5 Å.
    pub minimum: Option<f64>,
}

/// The bonded pairs of one element pair and bond class, averaged.
#[derive(Debug, Clone, Serialize)]
pub struct BondKind {
    pub elements: String,
    pub bond: &'static str,
    pub count: usize,
    pub mean_distance: f64,
    pub mean_beta4: f64,
    pub mean_beta3: f64,
    /// Mean of the pairs' minima, over those that have one; `None` when none has a well.
    pub mean_minimum: Option<f64>,
}

/// The pairs of `graph` under `potential`'s physics head, by distance; only bonded ones with
/// `bonded_only`. An error for a model without a physics head.
pub fn pairs_of(potential: &Potential, graph: &Graph, bonded_only: bool) -> Result<Vec<PairRecord>, ModelError> {
    let (edge, beta, energy, slope) = tch::no_grad(|| -> Result<_, ModelError> {
        let batch = potential.batch(&[graph], false);
        let outputs = potential.predict(&batch, crate::Mode::Energy).outputs;
        let field = |field: Field| {
            outputs.get(field).ok_or_else(|| {
                ModelError::Config(format!(
                    "this {:?} model has no pair head (a `[[model.priors]]` entry of kind \"coulomb_lj\")",
                    potential.config.kind
                ))
            })
        };
        let double = |t: &tch::Tensor| Vec::<f64>::try_from(t.to_kind(tch::Kind::Double).flatten(0, -1));
        Ok((
            Vec::<i64>::try_from(field(Field::PairEdge)?)?,
            double(field(Field::PairBeta)?)?,
            double(field(Field::PairEnergy)?)?,
            double(field(Field::PairSlope)?)?,
        ))
    })?;
    let g = graph;
    let symbol = |a: usize| minima_atoms::element::by_number(g.numbers[a]).map_or("?", |e| e.symbol);
    let mut pairs = Vec::new();
    for (k, &e) in edge.iter().enumerate() {
        let e = e as usize;
        let (i, j) = (g.center[e] as usize, g.neighbor[e] as usize);
        // One direction of each pair: i < j, or for an atom and its own image the positive
        // lattice offset.
        let first = i < j || (i == j && g.offset[e].iter().find(|x| x.abs() > 1e-9).is_some_and(|&x| x > 0.0));
        if !first || (bonded_only && g.bond[e] == BondClass::None) {
            continue;
        }
        let vector: [f64; 3] = std::array::from_fn(|c| g.positions[j][c] + g.offset[e][c] - g.positions[i][c]);
        let pair_beta: [f64; 5] = std::array::from_fn(|c| beta[5 * k + c]);
        pairs.push(PairRecord {
            i,
            j,
            elements: format!("{}-{}", symbol(i), symbol(j)),
            bond: BondClass::NAMES[g.bond[e] as usize],
            distance: minima_atoms::cell::norm(vector),
            beta: pair_beta,
            energy: energy[k],
            slope: slope[k],
            minimum: pair_minimum(&pair_beta),
        });
    }
    pairs.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    Ok(pairs)
}

/// The bonded pairs averaged per element pair and bond class, in name order.
pub fn bond_kinds(pairs: &[PairRecord]) -> Vec<BondKind> {
    let mut kinds: Vec<(&str, &'static str)> = pairs
        .iter()
        .filter(|p| p.bond != "none")
        .map(|p| (p.elements.as_str(), p.bond))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
        .into_iter()
        .map(|(elements, bond)| {
            let group: Vec<&PairRecord> = pairs
                .iter()
                .filter(|p| p.elements == elements && p.bond == bond)
                .collect();
            let mean = |f: &dyn Fn(&PairRecord) -> f64| group.iter().map(|p| f(p)).sum::<f64>() / group.len() as f64;
            let minima: Vec<f64> = group.iter().filter_map(|p| p.minimum).collect();
            BondKind {
                elements: elements.to_string(),
                bond,
                count: group.len(),
                mean_distance: mean(&|p| p.distance),
                mean_beta4: mean(&|p| p.beta[4]),
                mean_beta3: mean(&|p| p.beta[3]),
                mean_minimum: (!minima.is_empty()).then(|| minima.iter().sum::<f64>() / minima.len() as f64),
            }
        })
        .collect()
}
