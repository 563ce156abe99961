//! Building blocks shared by the architectures.

use std::ops::Range;

use tch::nn::{self, Module};
use tch::Tensor;

use crate::batch::GraphBatch;
use crate::message_layers::{Edges, MessageLayers, Prepared};

/// A perceptron: linear layers with SiLU between them (none after the last).
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<nn::Linear>,
}

impl Mlp {
    /// `sizes` = [input, hidden…, output].
    pub fn new(path: nn::Path, sizes: &[i64]) -> Mlp {
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(k, w)| nn::linear(&path / k, w[0], w[1], Default::default()))
            .collect();
        Mlp { layers }
    }

    /// The same perceptron with its last layer zeroed: it outputs exactly zero at first, so
    /// that what its outputs parametrise starts where chosen.
    pub fn zero_output(self) -> Mlp {
        let last = self.layers.last().expect("at least one layer");
        tch::no_grad(|| {
            let _ = last.ws.shallow_clone().zero_();
            if let Some(bias) = &last.bs {
                let _ = bias.shallow_clone().zero_();
            }
        });
        self
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x.shallow_clone(), |h, (k, layer)| {
            let y = layer.forward(&h);
            if k < last {
                y.silu()
            } else {
                y
            }
        })
    }
}

/// Gated recurrent unit cell (Cho et al. 2014), as PyTorch's `GRUCell`.
#[derive(Debug)]
pub struct GruCell {
    input: nn::Linear,
    hidden: nn::Linear,
}

impl GruCell {
    pub fn new(path: nn::Path, input: i64, hidden: i64) -> GruCell {
        GruCell {
            input: nn::linear(&path / "input", input, 3 * hidden, Default::default()),
            hidden: nn::linear(&path / "hidden", hidden, 3 * hidden, Default::default()),
        }
    }

    /// The new hidden state from input `x` and hidden state `h`.
    pub fn step(&self, x: &Tensor, h: &Tensor) -> Tensor {
        let gx = self.input.forward(x).chunk(3, -1);
        let gh = self.hidden.forward(h).chunk(3, -1);
        let reset = (&gx[0] + &gh[0]).sigmoid();
        let update = (&gx[1] + &gh[1]).sigmoid();
        let candidate = (&gx[2] + reset * &gh[2]).tanh();
        &update * h + (1.0 - &update) * candidate
    }
}

/// Gaussians on an evenly spaced grid of distances, width set by the spacing.
#[derive(Debug)]
pub struct GaussianBasis {
    centers: Vec<f64>,
    gamma: f64,
}

impl GaussianBasis {
    pub fn new(count: usize, max_distance: f64) -> GaussianBasis {
        let spacing = max_distance / (count.max(2) - 1) as f64;
        GaussianBasis {
            centers: (0..count).map(|k| k as f64 * spacing).collect(),
            gamma: 0.5 / (spacing * spacing),
        }
    }

    /// (edges,) distances → (edges, count).
    pub fn expand(&self, distance: &Tensor) -> Tensor {
        let centers = Tensor::from_slice(&self.centers)
            .to_kind(distance.kind())
            .to_device(distance.device());
        (-(distance.unsqueeze(-1) - centers).square() * self.gamma).exp()
    }
}

/// Cosine cutoff 0.5·(cos(πd/rc) + 1) inside rc, zero beyond: value and slope vanish at rc,
/// so energies are smooth when an atom crosses the cutoff.
pub fn cosine_cutoff(distance: &Tensor, cutoff: f64) -> Tensor {
    let inside = distance.lt(cutoff).to_kind(distance.kind());
    ((distance * (std::f64::consts::PI / cutoff)).cos() + 1.0) * 0.5 * inside
}

/// Gilmer's edge network: the message from w to v is A(e_vw)·h_w, a matrix that depends on the
/// edge features. Here A(e) = Σ_k f_k(e)·u_k·v_kᵀ, a learnt mixture of `rank` rank-one
/// matrices with coefficients f(e) from a perceptron of the edge features (with rank ≥ in·out
/// it spans every matrix, Gilmer's unrestricted form). Written A(e) = U·diag(f(e))·Vᵀ, V
/// applies once per atom and U once per atom after the sum over neighbours, so an edge costs
/// `rank` multiplications instead of a matrix: thousands of molecules per second on a CPU
/// where a d×d matrix per edge gives tens.
#[derive(Debug)]
pub struct EdgeNetwork {
    coefficients: Mlp,
    input: nn::Linear,
    output: nn::Linear,
}

impl EdgeNetwork {
    pub fn new(path: nn::Path, edge_features: i64, edge_hidden: i64, rank: i64, input: i64, out: i64) -> Self {
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        EdgeNetwork {
            coefficients: Mlp::new(&path / "coefficients", &[edge_features, edge_hidden, rank]),
            input: nn::linear(&path / "input", input, rank, no_bias),
            output: nn::linear(&path / "output", rank, out, no_bias),
        }
    }
}

/// The edge features of the message-passing models, Gaussian-expanded distance and (with
/// `bond_features`) the bond-class one-hot, and the envelope that takes messages smoothly to
/// zero at the cutoff (ones when every pair is an edge).
fn edge_features(edges: &Edges, core: &MessagePassing) -> (Tensor, Tensor) {
    let distance = edges.distance();
    let envelope = match core.cutoff {
        Some(rc) => cosine_cutoff(&distance, rc),
        None => distance.ones_like(),
    };
    let expanded = core.basis.expand(&distance);
    let features = if core.bond_features {
        let bond = edges
            .bond
            .one_hot(minima_data::BondClass::COUNT as i64)
            .to_kind(distance.kind());
        Tensor::cat(&[expanded, bond], -1)
    } else {
        expanded
    };
    (features, envelope.unsqueeze(-1))
}

/// The message-passing core MPNN and VIMPNN share: node states from an element embedding,
/// then T steps of edge-network messages, summed per channel (each edge's channel set by its
/// bond class), and an update the model chooses ([`StateUpdate`]). The readout reads the
/// features [h⁰; …; hᵀ] per atom.
#[derive(Debug)]
pub struct MessagePassing {
    embedding: nn::Embedding,
    basis: GaussianBasis,
    cutoff: Option<f64>,
    bond_features: bool,
    edge_network: EdgeNetwork,
    iterations: usize,
    /// Channel of each bond class, (classes,) int64.
    channel_of_class: Tensor,
    channels: i64,
}

/// Parameter counts of the building blocks from their sizes alone, so that a model too large
/// to allocate is refused before it is built.
pub mod count {
    /// A size setting as a count (negative sizes are refused by validation).
    pub fn size(n: i64) -> u64 {
        n.max(0) as u64
    }

    pub fn linear(input: u64, output: u64) -> u64 {
        input * output + output
    }

    /// [`super::Mlp`] of `sizes`.
    pub fn mlp(sizes: &[u64]) -> u64 {
        sizes.windows(2).map(|w| linear(w[0], w[1])).sum()
    }

    /// [`super::GruCell`].
    pub fn gru(input: u64, hidden: u64) -> u64 {
        linear(input, 3 * hidden) + linear(hidden, 3 * hidden)
    }

    /// The element embedding's rows.
    pub const ELEMENTS: u64 = (super::MAX_Z + 1) as u64;

    /// Numbers per edge every architecture keeps: edge vectors, distance, envelope, indices.
    pub const GEOMETRY: u64 = 12;
}

/// y such that softplus(y) = x, for x > 0.
pub fn inverse_softplus(x: f64) -> f64 {
    x + (-(-x).exp_m1()).ln()
}

/// Largest atomic number the element embedding covers.
pub const MAX_Z: i64 = 118;

impl MessagePassing {
    /// Node states of size `state`, messages of size `message`, the message of an edge of
    /// bond class c summed into channel `channel_of_class[c]` of `channels`.
    pub fn new(
        path: nn::Path,
        config: &crate::ModelConfig,
        (state, message): (i64, i64),
        channel_of_class: &[i64],
        channels: i64,
    ) -> MessagePassing {
        MessagePassing {
            embedding: nn::embedding(&path / "embedding", MAX_Z + 1, state, Default::default()),
            basis: GaussianBasis::new(config.radial_basis, config.radial_range()),
            cutoff: config.cutoff,
            bond_features: config.bond_features,
            edge_network: EdgeNetwork::new(
                &path / "message",
                config.edge_feature_count() as i64,
                config.edge_hidden,
                config.edge_rank,
                state,
                message,
            ),
            iterations: config.iterations,
            channel_of_class: Tensor::from_slice(channel_of_class).to_device(path.device()),
            channels,
        }
    }

    /// Size of the readout features for node states of size `state`.
    pub fn features(config: &crate::ModelConfig, state: i64) -> i64 {
        (config.iterations as i64 + 1) * state
    }

    /// The `[model]` keys MPNN and VIMPNN read besides their tables.
    pub const KEYS: [&'static str; 7] = [
        "hidden",
        "iterations",
        "radial_basis",
        "bond_features",
        "edge_hidden",
        "edge_rank",
        "readout_hidden",
    ];

    /// The settings that shrink it, for memory refusals.
    pub const SIZE_KEYS: &'static str =
        "lower model.hidden (or model.edge_rank, model.edge_hidden, model.readout_hidden)";

    /// Parameters of the core (embedding and edge network) for states of size `state` and
    /// messages of size `message`.
    pub fn parameter_count(config: &crate::ModelConfig, state: u64, message: u64) -> u64 {
        let rank = count::size(config.edge_rank);
        let edge_network = count::mlp(&[config.edge_feature_count(), count::size(config.edge_hidden), rank]);
        count::ELEMENTS * state + edge_network + state * rank + rank * message
    }

    /// Numbers per edge and per atom a forward pass keeps, for states of size `state`: the
    /// features, the coefficient perceptron, the filters, then per step the gathered neighbour
    /// states and their product with the filters.
    pub fn activations(config: &crate::ModelConfig, state: u64) -> (u64, u64) {
        let rank = count::size(config.edge_rank);
        let iterations = config.iterations as u64;
        let edge = count::GEOMETRY
            + config.radial_basis as u64
            + minima_data::BondClass::COUNT as u64
            + 2 * count::size(config.edge_hidden)
            + 2 * rank
            + iterations * 2 * rank;
        let atom = (iterations + 1) * (8 * state + 2 * rank) + 2 * count::size(config.readout_hidden);
        (edge, atom)
    }
}

/// How a message-passing model turns its state h (atoms, state) and the messages
/// (atoms, channels, message size) into the next state.
pub trait StateUpdate {
    fn core(&self) -> &MessagePassing;
    fn step(&self, h: &Tensor, messages: &Tensor) -> Tensor;
    /// The perceptron from the readout features [h⁰; …; hᵀ] to the per-atom energy.
    fn readout(&self) -> &Mlp;
}

impl<T: StateUpdate> MessageLayers for T {
    fn layer_count(&self) -> usize {
        self.core().iterations
    }

    fn embed(&self, batch: &GraphBatch) -> Vec<Tensor> {
        vec![self.core().embedding.forward(&batch.numbers).to_kind(batch.kind())]
    }

    /// The coefficients f(e) times the cutoff envelope, (edges, rank): shared by all steps.
    fn filters(&self, edges: &Edges, layers: Range<usize>) -> Vec<Tensor> {
        let core = self.core();
        let (features, envelope) = edge_features(edges, core);
        let filters = core.edge_network.coefficients.forward(&features) * envelope;
        layers.map(|_| filters.shallow_clone()).collect()
    }

    fn prepare(&self, _layer: usize, state: &[Tensor]) -> Prepared {
        Prepared::sending(vec![self.core().edge_network.input.forward(&state[0])])
    }

    /// Σ_w f(e_vw)∘(Vᵀh_w) per receiving atom and channel, (rows, channels, rank); U applies
    /// in the update, after the sum.
    fn messages(
        &self,
        _layer: usize,
        sent: &[Tensor],
        _received: &[Tensor],
        edges: &Edges,
        filter: &Tensor,
    ) -> Vec<Tensor> {
        let core = self.core();
        let per_edge = &sent[0] * filter;
        let channel = core.channel_of_class.index_select(0, &edges.bond);
        let rank = per_edge.size()[1];
        let index = &edges.center * core.channels + channel;
        let summed = Tensor::zeros([edges.rows * core.channels, rank], (per_edge.kind(), per_edge.device()))
            .index_add(0, &index, &per_edge)
            .view([-1, core.channels, rank]);
        vec![summed]
    }

    fn update(&self, _layer: usize, state: &[Tensor], messages: &[Tensor]) -> Vec<Tensor> {
        let m = self.core().edge_network.output.forward(&messages[0]);
        vec![self.step(&state[0], &m)]
    }

    fn readout(&self, states: &[Vec<Tensor>]) -> Tensor {
        self.readout().forward(&readout_features(states)).squeeze_dim(-1)
    }

    /// The last state hᵀ.
    fn node_features(&self, last: &[Tensor]) -> Tensor {
        last[0].shallow_clone()
    }
}

/// The readout features [h⁰; …; hᵀ] of [`run_layers`]'s states for a message-passing model.
pub fn readout_features(states: &[Vec<Tensor>]) -> Tensor {
    let features: Vec<&Tensor> = states.iter().map(|s| &s[0]).collect();
    Tensor::cat(&features, -1)
}
