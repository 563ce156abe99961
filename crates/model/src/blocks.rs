//! Building blocks shared by the architectures.

use tch::nn::{self, Module};
use tch::Tensor;

use crate::batch::GraphBatch;

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

    /// The coefficients f(e) of every edge, times the cutoff envelope: (edges, rank). They
    /// depend on the geometry only, so one forward pass computes them once for all T steps.
    pub fn filters(&self, edges: &EdgeInputs) -> Tensor {
        self.coefficients.forward(&edges.features) * &edges.envelope
    }

    /// Σ_w A(e_vw)·h_w per receiving atom v and channel: (atoms, channels, out), from the
    /// edges' [`EdgeNetwork::filters`]. `channel` gives each edge's channel in 0..n_channels.
    pub fn messages(
        &self,
        h: &Tensor,
        filters: &Tensor,
        batch: &GraphBatch,
        channel: &Tensor,
        n_channels: i64,
    ) -> Tensor {
        let per_edge = self.input.forward(h).index_select(0, &batch.neighbor) * filters;
        self.output.forward(&aggregate(&per_edge, batch, channel, n_channels))
    }
}

/// Edge features shared by the message-passing models: Gaussian-expanded distance and the
/// bond-class one-hot, and the envelope that takes messages smoothly to zero at the cutoff
/// (ones when every pair is an edge).
pub struct EdgeInputs {
    pub features: Tensor,
    pub envelope: Tensor,
}

impl EdgeInputs {
    pub fn new(batch: &GraphBatch, basis: &GaussianBasis, cutoff: Option<f64>) -> EdgeInputs {
        let distance = batch
            .edge_vectors()
            .square()
            .sum_dim_intlist(-1, false, batch.kind())
            .sqrt();
        let bond = batch
            .bond
            .one_hot(minima_data::BondClass::COUNT as i64)
            .to_kind(batch.kind());
        let envelope = match cutoff {
            Some(rc) => cosine_cutoff(&distance, rc),
            None => distance.ones_like(),
        };
        EdgeInputs {
            features: Tensor::cat(&[basis.expand(&distance), bond], -1),
            envelope: envelope.unsqueeze(-1),
        }
    }
}

/// Sums edge messages into their receiving atoms, separately per channel:
/// (edges, d) → (atoms, channels, d).
pub fn aggregate(messages: &Tensor, batch: &GraphBatch, channel: &Tensor, n_channels: i64) -> Tensor {
    let d = messages.size()[1];
    let index = &batch.center * n_channels + channel;
    Tensor::zeros([batch.n_atoms() * n_channels, d], (messages.kind(), messages.device()))
        .index_add(0, &index, messages)
        .view([-1, n_channels, d])
}

/// The message-passing core MPNN and VIMPNN share: node states from an element embedding,
/// then T steps of edge-network messages (summed per channel) and an update. Returns the
/// readout features [h⁰; …; hᵀ] per atom.
#[derive(Debug)]
pub struct MessagePassing {
    embedding: nn::Embedding,
    basis: GaussianBasis,
    cutoff: Option<f64>,
    edge_network: EdgeNetwork,
    iterations: usize,
}

/// Largest atomic number the element embedding covers.
pub const MAX_Z: i64 = 118;

impl MessagePassing {
    /// Node states of size `state`, messages of size `message`.
    pub fn new(path: nn::Path, config: &crate::ModelConfig, state: i64, message: i64) -> MessagePassing {
        let edge_features = (config.radial_basis + minima_data::BondClass::COUNT) as i64;
        MessagePassing {
            embedding: nn::embedding(&path / "embedding", MAX_Z + 1, state, Default::default()),
            basis: GaussianBasis::new(config.radial_basis, config.radial_range()),
            cutoff: config.cutoff,
            edge_network: EdgeNetwork::new(
                &path / "message",
                edge_features,
                config.edge_hidden,
                config.edge_rank,
                state,
                message,
            ),
            iterations: config.iterations,
        }
    }

    /// Size of the readout features for node states of size `state`.
    pub fn features(config: &crate::ModelConfig, state: i64) -> i64 {
        (config.iterations as i64 + 1) * state
    }

    /// Runs T steps; `update(h, m)` gets messages (atoms, channels, message size) and returns
    /// the new state. `channel` gives each edge's channel in 0..n_channels.
    pub fn run(
        &self,
        batch: &GraphBatch,
        channel: &Tensor,
        n_channels: i64,
        update: impl Fn(&Tensor, &Tensor) -> Tensor,
    ) -> Tensor {
        let filters = self
            .edge_network
            .filters(&EdgeInputs::new(batch, &self.basis, self.cutoff));
        let mut h = self.embedding.forward(&batch.numbers).to_kind(batch.kind());
        let mut states = vec![h.shallow_clone()];
        for _ in 0..self.iterations {
            let m = self.edge_network.messages(&h, &filters, batch, channel, n_channels);
            h = update(&h, &m);
            states.push(h.shallow_clone());
        }
        Tensor::cat(&states, -1)
    }
}
