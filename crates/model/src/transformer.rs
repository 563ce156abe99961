//! The physics-empowered Transformer (physics-transformer paper, sections 3.2–3.5).
//!
//! Reads: atomic numbers, edge vectors within the cutoff τ, edge bond classes (the adjacency
//! matrix A). Writes: per-atom energy — f_atom(xᵢ), plus the [CLS] energy shared evenly over
//! the structure's atoms — and the final embeddings.
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
//! - The physics head (Eq. 5–6) is a prior any architecture can carry,
//!   `[[model.priors]] kind = "coulomb_lj"` ([`crate::priors::coulomb_lj`]): it reads the
//!   final embeddings this model writes as [`Field::NodeFeatures`].
//! - Masked atomic modelling (section 3.5): a masked atom enters as element 0, whose learnt
//!   embedding and radial-basis parameters are the [mask] token, so neither its own embedding
//!   nor its neighbours' reveal it; a two-layer perceptron predicts its element from its final
//!   embedding.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::batch::GraphBatch;
use crate::blocks::{cosine_cutoff, count, inverse_softplus, Mlp, MAX_Z};
use crate::config::ModelConfig;
use crate::fields::{Block, Field, Fields};
use crate::message_layers::{run_layers, Edges, MessageLayers, Prepared};
use crate::priors::coulomb_lj::{CoulombLjConfig, PairSet};
use crate::priors::PriorConfig;
use crate::{Architecture, ArchitectureSpec, ModelError};

/// The atomic number a masked atom is given.
const MASKED: i64 = 0;
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

    /// D^K, D^V and the weight factor (φ(d), times SiLU(Linear(A_ij)) with the adjacency
    /// mask) of edges with radial basis `basis`, envelope `envelope` (edges, 1) and bonds
    /// `bonded` (edges, 1): (edges, 2m + heads).
    fn filters(&self, basis: &Tensor, envelope: &Tensor, bonded: &Tensor) -> Tensor {
        let key_filter = self.key_filter.forward(basis).silu();
        let value_filter = self.value_filter.forward(basis).silu();
        let factor = match &self.adjacency {
            Some(adjacency) => adjacency.forward(bonded).silu() * envelope,
            None => envelope.expand([basis.size()[0], self.heads], false),
        };
        Tensor::cat(&[key_filter, value_filter, factor], -1)
    }

    /// Queries, keys and values of the (pre-normed) features `x`.
    fn project(&self, x: &Tensor) -> (Tensor, Tensor, Tensor) {
        let h = self.norm.forward(x);
        (self.query.forward(&h), self.key.forward(&h), self.value.forward(&h))
    }

    /// Messages v_j∘D^V·SiLU(q_i·(k_j∘D^K)/√m_h)·factor of pairs with the centre's query `q`,
    /// the neighbour's key `k` and value `v` and the pair's `filters` (see
    /// [`AttentionBlock::filters`]): (pairs, m).
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, filters: &Tensor) -> Tensor {
        let (pairs, m) = (q.size()[0], q.size()[1]);
        let parts = filters.split_with_sizes([m, m, self.heads], -1);
        let per_head = m / self.heads;
        let score = (q * (k * &parts[0]))
            .view([pairs, self.heads, per_head])
            .sum_dim_intlist(-1, false, q.kind())
            / (per_head as f64).sqrt();
        let weight = score.silu() * &parts[2];
        let values = (v * &parts[1]).view([pairs, self.heads, per_head]);
        (values * weight.unsqueeze(-1)).view([pairs, m])
    }

    /// [CLS] filters for `pairs` pairs: learnt in place of the distance filters, factor 1.
    fn cls_filters(&self, pairs: i64, kind: Kind) -> Tensor {
        let filters = self.cls_filters.as_ref().expect("a [CLS] block").silu().to_kind(kind);
        let m = filters.size()[1];
        Tensor::cat(
            &[
                filters.get(0).expand([pairs, m], false),
                filters.get(1).expand([pairs, m], false),
                Tensor::ones([pairs, self.heads], (kind, filters.device())),
            ],
            -1,
        )
    }

    /// The residual attention and perceptron given the attended messages.
    fn residual(&self, x: &Tensor, attended: &Tensor) -> Tensor {
        let x = x + self.output.forward(attended);
        &x + self.feed_forward.forward(&self.feed_forward_norm.forward(&x))
    }
}

/// Positions in the transformer's state (see [`MessageLayers`]): the atoms' features, the
/// radial basis of their self-loops, their structure, then with [CLS] the tokens' features and
/// one over the atoms of each structure.
const X: usize = 0;
const SELF_BASIS: usize = 1;
const STRUCTURE: usize = 2;
const CLS: usize = 3;
const INVERSE_SIZE: usize = 4;

/// The physics Transformer (physics-transformer paper, sections 3.2–3.4). Every part that its
/// ablation table (Table 2) switches is a flag here; the loss terms are weights in `[train]`.
/// The node size d is `model.hidden`, n_b is `model.radial_basis`, τ is `model.cutoff`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformerConfig {
    /// Molecular Attention Blocks L.
    pub layers: usize,
    pub heads: i64,
    /// m, the size of queries, keys, values and the distance filters D^K, D^V (a multiple of
    /// `heads`).
    pub attention: i64,
    /// Add the [CLS] token; its final embedding adds f_mol(x₀) to the energy (Table 2, [CLS]).
    pub cls: bool,
    /// Σᵢ f_atom(xᵢ): the atom-sum readout, and the self-energies of Eq. 6.
    pub atom_energy: bool,
    /// The bond-adjacency mask on the attention weights (section 3.3).
    pub adjacency_mask: bool,
}

impl Default for TransformerConfig {
    fn default() -> Self {
        TransformerConfig {
            layers: 4,
            heads: 4,
            attention: 64,
            cls: true,
            atom_energy: true,
            adjacency_mask: true,
        }
    }
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
    cutoff: f64,
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
            cutoff,
            mask_head: Mlp::new(&path / "mask_head", &[d, d, config.elements.len() as i64]),
        }
    }

    /// The atoms' final embeddings for atomic numbers `numbers` (the batch's, or with masked
    /// atoms set to [`MASKED`]).
    fn encode(&self, batch: &GraphBatch, numbers: &Tensor) -> Vec<Tensor> {
        let mut last = run_layers(self, &batch.with_numbers(numbers))
            .pop()
            .expect("the embedding");
        last[X] = self.norm.forward(&last[X]);
        if self.cls_token.is_some() {
            last[CLS] = self.norm.forward(&last[CLS]);
        }
        last
    }

    fn block(&self, layer: usize) -> &AttentionBlock {
        &self.blocks[layer - 1]
    }
}

impl MessageLayers for Transformer {
    /// The neighbour embedding (Eq. 4), then the attention blocks.
    fn layer_count(&self) -> usize {
        1 + self.blocks.len()
    }

    fn embed(&self, batch: &GraphBatch) -> Vec<Tensor> {
        let kind = batch.kind();
        let numbers = &batch.numbers;
        let x_self = Tensor::cat(
            &[
                self.embedding.forward(numbers),
                self.electronegativity.index_select(0, numbers).unsqueeze(-1),
            ],
            -1,
        )
        .to_kind(kind);
        let self_basis = self
            .basis
            .expand(&Tensor::zeros([batch.n_atoms()], (kind, batch.device())), numbers);
        let mut state = vec![x_self, self_basis, batch.structure.shallow_clone()];
        if let Some(token) = &self.cls_token {
            let s = batch.n_structures;
            state.push(token.to_kind(kind).unsqueeze(0).expand([s, -1], false));
            let inverse: Vec<f64> = batch.sizes.iter().map(|&n| 1.0 / n.max(1) as f64).collect();
            state.push(Tensor::from_slice(&inverse).to_kind(kind).to_device(batch.device()));
        }
        state
    }

    /// Layer 0: V ψ_ij; block b: its D^K, D^V and weight factor.
    fn filters(&self, edges: &Edges, layers: Range<usize>) -> Vec<Tensor> {
        let distance = edges.distance();
        let basis = self.basis.expand(&distance, &edges.center_number);
        let envelope = cosine_cutoff(&distance, self.cutoff).unsqueeze(-1);
        let bonded = edges.bond.ne(0).to_kind(distance.kind()).unsqueeze(-1);
        layers
            .map(|layer| match layer {
                0 => self.neighbor_filter.forward(&basis),
                _ => self.block(layer).filters(&basis, &envelope, &bonded),
            })
            .collect()
    }

    fn prepare(&self, layer: usize, state: &[Tensor]) -> Prepared {
        match layer {
            0 => Prepared::sending(vec![state[X].shallow_clone()]),
            _ => {
                let (q, k, v) = self.block(layer).project(&state[X]);
                Prepared {
                    sent: vec![k, v],
                    received: vec![q],
                }
            }
        }
    }

    fn messages(
        &self,
        layer: usize,
        sent: &[Tensor],
        received: &[Tensor],
        edges: &Edges,
        filter: &Tensor,
    ) -> Vec<Tensor> {
        let per_edge = match layer {
            0 => &sent[0] * filter,
            _ => self.block(layer).attend(&received[0], &sent[0], &sent[1], filter),
        };
        vec![edges.sum_to_centers(&per_edge)]
    }

    /// Layer 0: x = W[x^self; U Σ]. A block: the geometric edges' messages plus each atom's
    /// self-loop and, with [CLS], the messages between the atoms and their token; then the
    /// residual perceptron, for atoms and tokens alike.
    fn update(&self, layer: usize, state: &[Tensor], messages: &[Tensor]) -> Vec<Tensor> {
        let mut next: Vec<Tensor> = state.iter().map(Tensor::shallow_clone).collect();
        let x = &state[X];
        if layer == 0 {
            let neighborhood = self.neighbor_mix.forward(&messages[0]);
            next[X] = self.combine.forward(&Tensor::cat(&[x, &neighborhood], -1));
            return next;
        }
        let block = self.block(layer);
        let (q, k, v) = block.project(x);
        let n = x.size()[0];
        let kind = x.kind();
        let self_filters = {
            let envelope = Tensor::ones([n, 1], (kind, x.device()));
            block.filters(&state[SELF_BASIS], &envelope, &envelope.zeros_like())
        };
        let mut attended = &messages[0] + block.attend(&q, &k, &v, &self_filters);
        if self.cls_token.is_some() {
            let structure = &state[STRUCTURE];
            let tokens = &state[CLS];
            let (tq, tk, tv) = block.project(tokens);
            let own = |t: &Tensor| t.index_select(0, structure);
            // Each atom from its token; each token from its atoms and from itself.
            attended += block.attend(&q, &own(&tk), &own(&tv), &block.cls_filters(n, kind));
            let from_atoms = block.attend(&own(&tq), &k, &v, &block.cls_filters(n, kind));
            let s = tokens.size()[0];
            let token_attended =
                Tensor::zeros([s, from_atoms.size()[1]], (kind, x.device())).index_add(0, structure, &from_atoms)
                    + block.attend(&tq, &tk, &tv, &block.cls_filters(s, kind));
            next[CLS] = block.residual(tokens, &token_attended);
        }
        next[X] = block.residual(x, &attended);
        next
    }

    /// f_atom of the final embeddings, plus the [CLS] energy shared evenly over each
    /// structure's atoms.
    fn readout(&self, states: &[Vec<Tensor>]) -> Tensor {
        let last = states.last().expect("the embedding");
        let atoms = self.node_features(last);
        let mut energy = match &self.atom_head {
            Some(head) => head.forward(&atoms).squeeze_dim(-1),
            None => atoms.select(1, 0).zeros_like(),
        };
        if let Some(head) = &self.molecule_head {
            let shared = head.forward(&self.norm.forward(&last[CLS])).squeeze_dim(-1) * &last[INVERSE_SIZE];
            energy += shared.index_select(0, &last[STRUCTURE]);
        }
        energy
    }

    /// The final embeddings, layer-normed: what f_atom and a pair head read.
    fn node_features(&self, last: &[Tensor]) -> Tensor {
        self.norm.forward(&last[X])
    }

    fn is_local(&self) -> bool {
        self.cls_token.is_none()
    }
}

/// The transformer's registry entry.
pub struct TransformerSpec;

impl ArchitectureSpec for TransformerSpec {
    fn name(&self) -> &'static str {
        "transformer"
    }

    fn keys(&self) -> Vec<&'static str> {
        vec!["hidden", "radial_basis", "transformer"]
    }

    fn size_keys(&self) -> &'static str {
        "lower model.hidden (or model.transformer.attention)"
    }

    /// Every combination of [CLS] and the adjacency mask, plus the paper's LJP physics head
    /// alone (no atom or [CLS] readout) and on bonded pairs only (Table 2's Mask, Force and
    /// Bound columns are loss terms; the masked-atom head is part of every transformer; the
    /// shared suite adds each prior, the physics head among them, to every variant).
    fn variants(&self, base: &ModelConfig) -> Vec<(String, ModelConfig)> {
        let switched = |cls: bool, adjacency_mask: bool| {
            let mut config = base.clone();
            let t = &mut config.transformer;
            (t.cls, t.adjacency_mask) = (cls, adjacency_mask);
            config
        };
        let mut list = Vec::new();
        for cls in [false, true] {
            for adjacency in [false, true] {
                list.push((
                    format!("transformer cls={cls} adjacency={adjacency}"),
                    switched(cls, adjacency),
                ));
            }
        }
        let head = |pairs: PairSet| {
            PriorConfig::CoulombLj(CoulombLjConfig {
                pairs,
                ..CoulombLjConfig::default()
            })
        };
        let mut pairs_only = switched(false, true);
        pairs_only.transformer.atom_energy = false;
        pairs_only.priors.push(head(PairSet::Cutoff));
        list.push(("transformer physics head alone".into(), pairs_only));
        let mut bonded = switched(true, true);
        bonded.priors.push(head(PairSet::Bonded));
        list.push(("transformer bonded pairs".into(), bonded));
        list
    }

    fn validate(&self, config: &ModelConfig) -> Result<(), ModelError> {
        let t = &config.transformer;
        let bad = |m: String| Err(ModelError::Config(m));
        if config.cutoff.is_none() {
            return bad("model.cutoff: the transformer attends within a cutoff τ; set one (Å)".into());
        }
        if config.hidden < 2 {
            return bad("model.hidden must be ≥ 2 for the transformer (embedding plus electronegativity)".into());
        }
        if t.layers < 1 || t.heads < 1 || t.attention < 1 || t.attention % t.heads != 0 {
            return bad(format!(
                "model.transformer: layers and heads must be ≥ 1 and attention ({}) a multiple of heads ({})",
                t.attention, t.heads
            ));
        }
        let heads = config.priors.iter().any(|p| matches!(p, PriorConfig::CoulombLj(_)));
        if !(t.cls || t.atom_energy || heads) {
            return bad(
                "model.transformer: cls and atom_energy are both off and no coulomb_lj prior is listed; no energy is left"
                    .into(),
            );
        }
        Ok(())
    }

    fn parameter_count(&self, config: &ModelConfig) -> u64 {
        let t = &config.transformer;
        let d = count::size(config.hidden);
        let basis = config.radial_basis as u64;
        let (m, heads) = (count::size(t.attention), count::size(t.heads));
        let on = |flag: bool, count: u64| if flag { count } else { 0 };
        let norm = 2 * d;
        let block = norm
            + 3 * count::linear(d, m)
            + 2 * count::linear(basis, m)
            + on(t.cls, 2 * m)
            + on(t.adjacency_mask, count::linear(1, heads))
            + count::linear(m, d)
            + norm
            + count::mlp(&[d, 2 * d, d]);
        let table = count::ELEMENTS;
        table * d.saturating_sub(1)
            + 2 * table * basis
            + basis * d
            + d * d
            + 2 * d * d
            + on(t.cls, d)
            + t.layers as u64 * block
            + norm
            + on(t.atom_energy, count::linear(d, 1))
            + on(t.cls, count::linear(d, 1))
            + count::mlp(&[d, d, config.elements.len() as u64])
    }

    /// Per block: filters, gathered keys and values and their products, scores, weights and
    /// messages.
    fn activations(&self, config: &ModelConfig) -> (u64, u64) {
        let t = &config.transformer;
        let d = count::size(config.hidden);
        let (m, heads) = (count::size(t.attention), count::size(t.heads));
        let block = 7 * m + 3 * heads;
        let edge = count::GEOMETRY + 2 * config.radial_basis as u64 + 2 * d + t.layers as u64 * block;
        let atom = t.layers as u64 * (8 * d + 4 * m) + 4 * d;
        (edge, atom)
    }

    fn node_feature_width(&self, config: &ModelConfig) -> i64 {
        config.hidden
    }

    fn build(&self, path: nn::Path, config: &ModelConfig) -> Result<Box<dyn Architecture>, ModelError> {
        Ok(Box::new(Transformer::new(path, config)))
    }
}

impl Block for Transformer {
    fn name(&self) -> &str {
        "transformer"
    }

    fn reads(&self) -> Vec<Field> {
        Field::GRAPH.to_vec()
    }

    fn writes(&self) -> Vec<Field> {
        vec![Field::NetworkEnergy, Field::NodeFeatures]
    }

    fn apply(&self, batch: &GraphBatch, fields: &mut Fields, _train: bool) {
        let states = run_layers(self, batch);
        fields.insert(Field::NetworkEnergy, MessageLayers::readout(self, &states));
        let last = states.last().expect("the embedding");
        fields.insert(Field::NodeFeatures, MessageLayers::node_features(self, last));
    }
}

impl Architecture for Transformer {
    fn masked_atom_logits(&self, batch: &GraphBatch, mask: &Tensor) -> Option<Tensor> {
        let numbers = batch.numbers.masked_fill(mask, MASKED);
        Some(self.mask_head.forward(&self.encode(batch, &numbers)[X]))
    }

    fn message_layers(&self) -> &dyn MessageLayers {
        self
    }
}
