//! The physics-empowered Transformer (physics-transformer paper, sections 3.2–3.5).
//!
//! Reads: atomic numbers, edge vectors within the cutoff τ, edge bond classes (the adjacency
//! matrix A). Writes: per-atom energy — f_atom(xᵢ), plus the [CLS] energy shared evenly over
//! the structure's atoms, plus half of each pair energy of the atom — and the pair terms.
//!
//! - Atom embedding (Eq. 1): xᵢ^self = [E(zᵢ); χ(zᵢ)], a learnt (d−1)-vector per element and
//!   its Pauling electronegativity (0 for the elements without one).
//! - Radial basis (Eq. 2–3): ψ_ijk = φ(d)·exp(−β_{zᵢk}(e^{−d} − μ_{zᵢk})²), μ and β learnt per
//!   centre element and initialised as PhysNet's (β through softplus, so widths stay
//!   positive); φ the cosine cutoff at τ.
//! - Neighbour embedding (Eq. 4): xᵢ^nb = U Σⱼ xⱼ^self ⊙ Vψᵢⱼ, and xᵢ = W[xᵢ^self; xᵢ^nb].
//! - [CLS]: one learnt token per structure that attends to, and is attended by, all its atoms
//!   whatever their distance, with learnt filters in place of the distance filters.
//! - Molecular Attention Blocks: pre-norm residual blocks, attention then a perceptron. As in
//!   TorchMD-Net's ET, keys and values are multiplied by the distance filters
//!   D^K, D^V = SiLU(Linear(ψ)) and the attention weight is SiLU(q·k/√m_h)·φ(d), not a
//!   softmax: a softmax over neighbours would jump when an atom crosses τ. The optional
//!   adjacency mask multiplies each weight by SiLU(Linear(A_ij)), one factor per head. The
//!   attention runs over the edge list (plus self-loops and the [CLS] edges): memory grows
//!   with the edges, not with N².
//! - Physics head (Eq. 5–6): β = f_bond([xᵢ; xⱼ]), averaged over both orders so that
//!   E_ij = E_ji. β0 (the charge product qᵢqⱼ) keeps its sign; β1, β2 (the Coulomb and
//!   Lennard-Jones coefficients), β3 (the exponent) and β4 (the equilibrium distance, Å) go
//!   through softplus, which keeps them positive. The head's last layer starts at zero, so
//!   every pair starts from the same β: β0 = 0, β1 = ln 2, β2, β3 and β4 at `initial_depth`,
//!   `initial_exponent` and `initial_distance` (the exponentials make larger random starts
//!   blow the energies up). E_ij is switched to zero
//!   over the last `pair_switch` Å before τ (smooth in value and slope), and (β4/d)^β3 is
//!   evaluated as exp(min(β3·ln(β4/d), [`MAX_POWER`])). β1 and β2, like every energy of an
//!   architecture, are in units of the potential's residual scale σ.
//! - Masked atomic modelling (section 3.5): a masked atom enters as element 0, whose learnt
//!   embedding and radial-basis parameters are the [mask] token, so neither its own embedding
//!   nor its neighbours' reveal it; a two-layer perceptron predicts its element from its final
//!   embedding.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::batch::GraphBatch;
use crate::blocks::{cosine_cutoff, Mlp, MAX_Z};
use crate::config::{ModelConfig, PairSet};
use crate::{Architecture, AtomOutput, AuxOutput, PairTerms};

/// The atomic number a masked atom is given.
const MASKED: i64 = 0;
/// Largest exponent argument β3·ln(β4/d) of the Lennard-Jones terms: e^60 stays finite in
/// f32, and no physical pair comes near it.
pub const MAX_POWER: f64 = 30.0;

/// y such that softplus(y) = x, for x > 0.
fn inverse_softplus(x: f64) -> f64 {
    x + (-(-x).exp_m1()).ln()
}

/// Eq. 5 in f64, without the cutoff switch, for β as a [`crate::PairOutput`] exposes them
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

/// Gaussians in e^{−d} with centres and widths per centre element (Eq. 2), times φ(d).
#[derive(Debug)]
struct RadialBasis {
    centers: Tensor,
    /// Before softplus.
    widths: Tensor,
    cutoff: f64,
}

impl RadialBasis {
    fn new(path: nn::Path, count: i64, cutoff: f64) -> RadialBasis {
        let low = (-cutoff).exp();
        let centers = Tensor::linspace(low, 1.0, count, (Kind::Float, path.device()))
            .unsqueeze(0)
            .repeat([MAX_Z + 1, 1]);
        let width = (2.0 * (1.0 - low) / count as f64).powi(-2);
        RadialBasis {
            centers: path.var_copy("centers", &centers),
            widths: path.var("widths", &[MAX_Z + 1, count], nn::Init::Const(inverse_softplus(width))),
            cutoff,
        }
    }

    /// ψ for `distance` (edges,) around centres of atomic number `center` (edges,).
    fn expand(&self, distance: &Tensor, center: &Tensor) -> Tensor {
        let mu = self.centers.index_select(0, center);
        let beta = self.widths.index_select(0, center).softplus();
        let gaussians = (-(beta * ((-distance).exp().unsqueeze(-1) - mu).square())).exp();
        gaussians * cosine_cutoff(distance, self.cutoff).unsqueeze(-1)
    }
}

/// The edges attention runs over: geometric edges (the graph's, then one self-loop per atom)
/// followed, with [CLS], by the token's edges.
struct AttentionEdges {
    center: Tensor,
    neighbor: Tensor,
    /// ψ of the geometric edges, (geometric, n_b).
    basis: Tensor,
    /// φ(d) of the geometric edges, (geometric, 1).
    envelope: Tensor,
    /// A_ij of the geometric edges, (geometric, 1).
    bonded: Tensor,
    /// Number of [CLS] edges at the end.
    cls_edges: i64,
}

/// One Molecular Attention Block.
#[derive(Debug)]
struct AttentionBlock {
    norm: nn::LayerNorm,
    query: nn::Linear,
    key: nn::Linear,
    value: nn::Linear,
    key_filter: nn::Linear,
    value_filter: nn::Linear,
    /// Filters of the [CLS] edges (before SiLU), (2, m): key, value.
    cls_filters: Option<Tensor>,
    adjacency: Option<nn::Linear>,
    output: nn::Linear,
    feed_forward_norm: nn::LayerNorm,
    feed_forward: Mlp,
    heads: i64,
}

impl AttentionBlock {
    fn new(path: nn::Path, config: &ModelConfig) -> AttentionBlock {
        let (d, t) = (config.hidden, &config.transformer);
        let m = t.attention;
        let basis = config.radial_basis as i64;
        let linear = |name: &str, input: i64, output: i64| nn::linear(&path / name, input, output, Default::default());
        AttentionBlock {
            norm: nn::layer_norm(&path / "norm", vec![d], Default::default()),
            query: linear("query", d, m),
            key: linear("key", d, m),
            value: linear("value", d, m),
            key_filter: linear("key_filter", basis, m),
            value_filter: linear("value_filter", basis, m),
            cls_filters: t.cls.then(|| path.var("cls_filters", &[2, m], nn::Init::Const(1.0))),
            adjacency: t.adjacency_mask.then(|| linear("adjacency", 1, t.heads)),
            output: linear("output", m, d),
            feed_forward_norm: nn::layer_norm(&path / "feed_forward_norm", vec![d], Default::default()),
            feed_forward: Mlp::new(&path / "feed_forward", &[d, 2 * d, d]),
            heads: t.heads,
        }
    }

    fn forward(&self, x: &Tensor, edges: &AttentionEdges) -> Tensor {
        let h = self.norm.forward(x);
        let (q, k, v) = (self.query.forward(&h), self.key.forward(&h), self.value.forward(&h));
        let m = q.size()[1];
        let mut key_filter = self.key_filter.forward(&edges.basis).silu();
        let mut value_filter = self.value_filter.forward(&edges.basis).silu();
        let geometric = edges.basis.size()[0];
        let mut factor = match &self.adjacency {
            Some(adjacency) => adjacency.forward(&edges.bonded).silu() * &edges.envelope,
            None => edges.envelope.expand([geometric, self.heads], false),
        };
        if let Some(filters) = &self.cls_filters {
            let filters = filters.silu();
            let n = edges.cls_edges;
            key_filter = Tensor::cat(&[key_filter, filters.get(0).expand([n, m], false)], 0);
            value_filter = Tensor::cat(&[value_filter, filters.get(1).expand([n, m], false)], 0);
            factor = Tensor::cat(&[factor, Tensor::ones([n, self.heads], (x.kind(), x.device()))], 0);
        }
        let per_head = m / self.heads;
        let edge_count = edges.center.size()[0];
        let keys = k.index_select(0, &edges.neighbor) * key_filter;
        let score = (q.index_select(0, &edges.center) * keys)
            .view([edge_count, self.heads, per_head])
            .sum_dim_intlist(-1, false, x.kind())
            / (per_head as f64).sqrt();
        let weight = score.silu() * factor;
        let values = (v.index_select(0, &edges.neighbor) * value_filter).view([edge_count, self.heads, per_head]);
        let messages = (values * weight.unsqueeze(-1)).view([edge_count, m]);
        let attended = Tensor::zeros([x.size()[0], m], (x.kind(), x.device())).index_add(0, &edges.center, &messages);
        let x = x + self.output.forward(&attended);
        &x + self.feed_forward.forward(&self.feed_forward_norm.forward(&x))
    }
}

/// Final embeddings of the atoms, (atoms, d), and of the [CLS] tokens, (structures, d).
struct Encoded {
    atoms: Tensor,
    cls: Option<Tensor>,
    /// Edge distances, (edges,).
    distance: Tensor,
}

#[derive(Debug)]
pub struct Transformer {
    embedding: nn::Embedding,
    /// Pauling electronegativity by atomic number, (MAX_Z + 1,).
    electronegativity: Tensor,
    basis: RadialBasis,
    /// V and U of Eq. 4 and W.
    neighbor_filter: nn::Linear,
    neighbor_mix: nn::Linear,
    combine: nn::Linear,
    cls_token: Option<Tensor>,
    blocks: Vec<AttentionBlock>,
    norm: nn::LayerNorm,
    atom_head: Option<nn::Linear>,
    molecule_head: Option<nn::Linear>,
    pair_head: Option<Mlp>,
    pairs: PairSet,
    cutoff: f64,
    pair_switch: f64,
    /// softplus⁻¹ of the initial β2, β3, β4, added to the head's outputs.
    pair_offsets: [f64; 3],
    mask_head: Mlp,
}

impl Transformer {
    pub fn new(path: nn::Path, config: &ModelConfig) -> Transformer {
        let (d, t) = (config.hidden, &config.transformer);
        let cutoff = config.cutoff.expect("validated: the transformer has a cutoff");
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        let mut electronegativity = vec![0.0; MAX_Z as usize + 1];
        for z in 1..=MAX_Z as u8 {
            if let Some(chi) = minima_atoms::element::by_number(z).and_then(|e| e.electronegativity) {
                electronegativity[z as usize] = chi;
            }
        }
        let head = |name: &str, on: bool| on.then(|| nn::linear(&path / name, d, 1, Default::default()));
        Transformer {
            embedding: nn::embedding(&path / "embedding", MAX_Z + 1, d - 1, Default::default()),
            electronegativity: Tensor::from_slice(&electronegativity).to_device(path.device()),
            basis: RadialBasis::new(&path / "radial_basis", config.radial_basis as i64, cutoff),
            neighbor_filter: nn::linear(&path / "neighbor_filter", config.radial_basis as i64, d, no_bias),
            neighbor_mix: nn::linear(&path / "neighbor_mix", d, d, no_bias),
            combine: nn::linear(&path / "combine", 2 * d, d, no_bias),
            cls_token: t
                .cls
                .then(|| path.var("cls_token", &[d], nn::Init::Randn { mean: 0.0, stdev: 1.0 })),
            blocks: (0..t.layers)
                .map(|l| AttentionBlock::new(&path / "block" / l, config))
                .collect(),
            norm: nn::layer_norm(&path / "norm", vec![d], Default::default()),
            atom_head: head("atom_head", t.atom_energy),
            molecule_head: head("molecule_head", t.cls),
            pair_head: t
                .physics
                .then(|| Mlp::new(&path / "pair_head", &[2 * d, d, 5]).zero_output()),
            pairs: t.pairs,
            cutoff,
            pair_switch: t.pair_switch,
            pair_offsets: [t.initial_depth, t.initial_exponent, t.initial_distance].map(inverse_softplus),
            mask_head: Mlp::new(&path / "mask_head", &[d, d, config.elements.len() as i64]),
        }
    }

    /// Runs the embedding and the attention blocks on atoms of atomic numbers `numbers`
    /// (the batch's, or with masked atoms set to [`MASKED`]).
    fn encode(&self, batch: &GraphBatch, numbers: &Tensor) -> Encoded {
        let kind = batch.kind();
        let n = batch.n_atoms();
        let distance = batch.edge_vectors().square().sum_dim_intlist(-1, false, kind).sqrt();
        let edge_basis = self.basis.expand(&distance, &numbers.index_select(0, &batch.center));
        let self_basis = self.basis.expand(&Tensor::zeros([n], (kind, batch.device())), numbers);

        let x_self = Tensor::cat(
            &[
                self.embedding.forward(numbers),
                self.electronegativity.index_select(0, numbers).unsqueeze(-1),
            ],
            -1,
        )
        .to_kind(kind);
        let filtered = x_self.index_select(0, &batch.neighbor) * self.neighbor_filter.forward(&edge_basis);
        let neighborhood = self
            .neighbor_mix
            .forward(&x_self.zeros_like().index_add(0, &batch.center, &filtered));
        let mut x = self.combine.forward(&Tensor::cat(&[x_self, neighborhood], -1));

        let atoms = Tensor::arange(n, (Kind::Int64, batch.device()));
        let mut center = Tensor::cat(&[&batch.center, &atoms], 0);
        let mut neighbor = Tensor::cat(&[&batch.neighbor, &atoms], 0);
        let mut cls_edges = 0;
        if let Some(token) = &self.cls_token {
            let s = batch.n_structures;
            let tokens = Tensor::arange_start(n, n + s, (Kind::Int64, batch.device()));
            let own_token = &batch.structure + n;
            center = Tensor::cat(
                &[
                    center,
                    own_token.shallow_clone(),
                    atoms.shallow_clone(),
                    tokens.shallow_clone(),
                ],
                0,
            );
            neighbor = Tensor::cat(&[neighbor, atoms, own_token, tokens], 0);
            cls_edges = 2 * n + s;
            x = Tensor::cat(&[x, token.to_kind(kind).unsqueeze(0).expand([s, -1], false)], 0);
        }
        let ones = Tensor::ones([n], (kind, batch.device()));
        let edges = AttentionEdges {
            center,
            neighbor,
            basis: Tensor::cat(&[edge_basis, self_basis], 0),
            envelope: Tensor::cat(&[cosine_cutoff(&distance, self.cutoff), ones], 0).unsqueeze(-1),
            bonded: Tensor::cat(
                &[
                    batch.bond.ne(0).to_kind(kind),
                    Tensor::zeros([n], (kind, batch.device())),
                ],
                0,
            )
            .unsqueeze(-1),
            cls_edges,
        };
        for block in &self.blocks {
            x = block.forward(&x, &edges);
        }
        let x = self.norm.forward(&x);
        Encoded {
            atoms: x.narrow(0, 0, n),
            cls: self.cls_token.as_ref().map(|_| x.narrow(0, n, batch.n_structures)),
            distance,
        }
    }

    /// The physics head's terms on the selected edges.
    fn pair_terms(&self, head: &Mlp, batch: &GraphBatch, encoded: &Encoded) -> PairTerms {
        let edge = match self.pairs {
            PairSet::Cutoff => Tensor::arange(batch.center.size()[0], (Kind::Int64, batch.device())),
            PairSet::Bonded => batch.bond.ne(0).nonzero().squeeze_dim(-1),
        };
        let xi = encoded.atoms.index_select(0, &batch.center.index_select(0, &edge));
        let xj = encoded.atoms.index_select(0, &batch.neighbor.index_select(0, &edge));
        let raw = (head.forward(&Tensor::cat(&[&xi, &xj], -1)) + head.forward(&Tensor::cat(&[&xj, &xi], -1))) * 0.5;
        let raw = raw.unbind(-1);
        let [depth, exponent, distance] = self.pair_offsets;
        let beta = [
            raw[0].shallow_clone(),
            raw[1].softplus(),
            (&raw[2] + depth).softplus(),
            (&raw[3] + exponent).softplus(),
            (&raw[4] + distance).softplus(),
        ];
        let d = encoded.distance.index_select(0, &edge);
        let exponent = &beta[3] * (&beta[4] / &d).log();
        let unclamped = exponent.lt(MAX_POWER).to_kind(d.kind());
        let power = exponent.clamp_max(MAX_POWER).exp();
        let lennard_jones = &beta[2] * (power.square() - &power * 2.0);
        let coulomb = -(&beta[1] * &beta[0]) / &d;
        // ∂/∂d of both terms: d(β4/d)^β3/dd = −β3/d·(β4/d)^β3 (zero where clamped).
        let slope =
            &beta[1] * &beta[0] / d.square() - &beta[2] * &beta[3] * unclamped * &power * (&power - 1.0) * 2.0 / &d;
        let switch_start = self.cutoff - self.pair_switch;
        let switch = cosine_cutoff(&(&d - switch_start).clamp_min(0.0), self.pair_switch);
        PairTerms {
            energy: (coulomb + lennard_jones) * switch,
            slope,
            beta: Tensor::stack(&beta, -1),
            edge,
        }
    }
}

impl Architecture for Transformer {
    fn forward(&self, batch: &GraphBatch, _train: bool) -> AtomOutput {
        let encoded = self.encode(batch, &batch.numbers);
        let mut energy = match &self.atom_head {
            Some(head) => head.forward(&encoded.atoms).squeeze_dim(-1),
            None => encoded.atoms.select(1, 0).zeros_like(),
        };
        if let (Some(head), Some(cls)) = (&self.molecule_head, &encoded.cls) {
            let sizes: Vec<f64> = batch.sizes.iter().map(|&n| n.max(1) as f64).collect();
            let sizes = Tensor::from_slice(&sizes)
                .to_kind(energy.kind())
                .to_device(energy.device());
            let shared = head.forward(cls).squeeze_dim(-1) / sizes;
            energy += shared.index_select(0, &batch.structure);
        }
        let pairs = self
            .pair_head
            .as_ref()
            .map(|head| self.pair_terms(head, batch, &encoded));
        if let Some(pairs) = &pairs {
            let centers = batch.center.index_select(0, &pairs.edge);
            energy = energy.index_add(0, &centers, &(&pairs.energy * 0.5));
        }
        AtomOutput {
            energy,
            aux: AuxOutput::default(),
            pairs,
        }
    }

    fn masked_atom_logits(&self, batch: &GraphBatch, mask: &Tensor) -> Option<Tensor> {
        let numbers = batch.numbers.masked_fill(mask, MASKED);
        Some(self.mask_head.forward(&self.encode(batch, &numbers).atoms))
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
