//! PaiNN, the polarizable atom interaction neural network (Schütt, Unke and Gastegger 2021,
//! "Equivariant message passing for the prediction of tensorial properties and molecular
//! spectra"), as SchNetPack implements it.
//!
//! Reads: atomic numbers and edge vectors within the cutoff rc (`model.cutoff`, required;
//! periodic images through the batch's offsets). Writes: per-atom energy. Bond classes are
//! not read: PaiNN sees geometry only.
//!
//! Every atom carries scalar features s (atoms, F) and vector features v (atoms, 3, F);
//! s⁰ is an embedding of the element, v⁰ = 0. Each of the L layers is a message block then
//! an update block, both residual:
//! - Message (Eq. 7–8): φ(s) = Linear(SiLU(Linear(s))) gives 3F features per atom, and
//!   W(r) = Linear(sin(nπr/rc)/r, n = 1…N) · f_cut(r) 3F filters per edge, f_cut the cosine
//!   cutoff. Their product for the neighbour j of edge ij splits into F-chunks (φ_s∘W_s,
//!   φ_vv∘W_vv, φ_vs∘W_vs):
//!   Δsᵢ = Σⱼ φ_s∘W_s,  Δvᵢ = Σⱼ vⱼ∘φ_vv∘W_vv + φ_vs∘W_vs ⊗ r̂ᵢⱼ.
//! - Update (Eq. 9–11): U v and V v (linear maps over the features, no bias, so they commute
//!   with rotations); a = Linear(SiLU(Linear([s; ‖Vv‖]))) split into (a_vv, a_sv, a_ss);
//!   Δv = a_vv∘(Uv), Δs = a_sv∘⟨Uv, Vv⟩ + a_ss. ‖Vv‖ is √(Σ(Vv)² + ε), ε =
//!   [`NORM_EPSILON`]: without ε its gradient is undefined where Vv = 0 (an atom at a centre
//!   of symmetry, as methane's carbon), and force training differentiates it twice.
//! - Readout: per-atom energy from s by a two-layer perceptron F → F/2 → 1 (SiLU), as
//!   SchNetPack's default.
//!
//! Choices where the paper leaves room, as SchNetPack's defaults: each layer has its own
//! weights and its own filters (all layers' filters are the columns of one linear map,
//! initialised as SchNetPack's: Xavier weights, zero bias); the radial basis has no learnt
//! widths. One choice is not SchNetPack's: the last layer of
//! each update perceptron starts at zero, so that an untrained update block is the identity.
//! Δs = a_sv∘⟨Uv, Vv⟩ is cubic in the features, and with random weights it compounds layer
//! after layer (an untrained 2-layer model gave ethanol 10⁴ eV/Å forces); from the identity
//! the untrained model is as tame as its messages, and training grows the update. PaiNN uses its own `[model.painn]` table and none of
//! `hidden`, `iterations`, `radial_basis`, `edge_*` or `readout_hidden` of `[model]`.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::Tensor;

use crate::batch::GraphBatch;
use crate::blocks::{cosine_cutoff, count, Mlp, MAX_Z};
use crate::config::ModelConfig;
use crate::fields::{Block, Field, Fields};
use crate::message_layers::{run_layers, Edges, MessageLayers, Prepared};
use crate::{Architecture, ArchitectureSpec, ModelError};

/// ε inside ‖Vv‖ = √(Σ(Vv)² + ε) (SchNetPack's value), Å²-free: v is dimensionless.
pub const NORM_EPSILON: f64 = 1e-8;

/// The `[model.painn]` table. Defaults are the paper's QM9 model less its width (64
/// features, where the paper uses 128), with the paper's 3 layers and 20 radial basis
/// functions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PainnConfig {
    /// F, the size of the scalar and of each vector feature.
    pub features: i64,
    /// L, message + update blocks.
    pub layers: usize,
    /// N, the sin(nπr/rc)/r radial basis functions.
    pub radial_basis: usize,
}

impl Default for PainnConfig {
    fn default() -> Self {
        PainnConfig {
            features: 64,
            layers: 3,
            radial_basis: 20,
        }
    }
}

impl PainnConfig {
    pub fn validate(&self, cutoff: Option<f64>) -> Result<(), ModelError> {
        if cutoff.is_none() {
            return Err(ModelError::Config(
                "model.cutoff: PaiNN's filters vanish at a cutoff rc; set one (Å)".into(),
            ));
        }
        if self.features < 2 || self.layers < 1 || self.radial_basis < 1 {
            return Err(ModelError::Config(
                "model.painn: features must be ≥ 2, layers and radial_basis ≥ 1".into(),
            ));
        }
        Ok(())
    }
}

/// The three F-wide parts of a layer's filters and of its context φ, in their order.
#[derive(Clone, Copy)]
enum Chunk {
    /// Scales the scalar message φ_s.
    Scalar = 0,
    /// Scales the neighbour's vectors, φ_vv.
    Vector = 1,
    /// Scales the direction r̂ᵢⱼ, φ_vs.
    Directional = 2,
}

#[derive(Debug)]
struct Layer {
    /// φ: s → 3F.
    context: Mlp,
    /// U and V in one map: v → 2F.
    mix: nn::Linear,
    /// [s; ‖Vv‖] → (a_vv, a_sv, a_ss).
    update: Mlp,
}

#[derive(Debug)]
pub struct Painn {
    embedding: nn::Embedding,
    /// sin(nπr/rc)/r → 3F filters per layer, all layers in one map.
    filters: nn::Linear,
    layers: Vec<Layer>,
    readout: Mlp,
    features: i64,
    radial_basis: i64,
    cutoff: f64,
}

impl Painn {
    pub fn new(path: nn::Path, config: &ModelConfig) -> Painn {
        let p = &config.painn;
        let f = p.features;
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        let (n, filters) = (p.radial_basis as i64, 3 * f * p.layers as i64);
        let layers = (0..p.layers)
            .map(|k| {
                let layer = &path / "layers" / k;
                Layer {
                    context: Mlp::new(&layer / "context", &[f, f, 3 * f]),
                    mix: nn::linear(&layer / "mix", f, 2 * f, no_bias),
                    update: Mlp::new(&layer / "update", &[2 * f, f, 3 * f]).zero_output(),
                }
            })
            .collect();
        Painn {
            embedding: nn::embedding(&path / "embedding", MAX_Z + 1, f, Default::default()),
            filters: nn::linear(&path / "filters", n, filters, xavier(n, filters)),
            layers,
            readout: Mlp::new(&path / "readout", &[f, f / 2, 1]),
            features: f,
            radial_basis: p.radial_basis as i64,
            cutoff: config.cutoff.expect("validated: PaiNN has a cutoff"),
        }
    }

    /// [W; b] of every layer's filters, (N + 1, 3F·L) (or (N, 3F·L) without a bias): layer l's
    /// columns from 3F·l hold its W_s, W_vv and W_vs.
    fn filter_weights(&self) -> Tensor {
        let weights = self.filters.ws.tr();
        match &self.filters.bs {
            Some(bias) => Tensor::cat(&[weights, bias.unsqueeze(0)], 0),
            None => weights,
        }
    }

    /// One chunk of `layer`'s filters W(r), (edges, F), from the radial `basis` and
    /// [`Painn::filter_weights`].
    fn filter(&self, basis: &Tensor, weights: &Tensor, layer: usize, chunk: Chunk) -> Tensor {
        let f = self.features;
        basis.mm(&weights.narrow(1, (3 * layer as i64 + chunk as i64) * f, f))
    }

    /// sin(nπr/rc)/r for n = 1…N: (edges,) → (edges, N).
    fn radial(&self, distance: &Tensor) -> Tensor {
        let n = Tensor::arange_start(1, self.radial_basis + 1, (distance.kind(), distance.device()));
        let d = distance.unsqueeze(-1);
        (&d * n * (std::f64::consts::PI / self.cutoff)).sin() / d
    }
}

/// SchNetPack's initialisation: Xavier-uniform weights, zero bias. For the filters it matters:
/// libtorch's default (weights and bias ±1/√N) makes W(r) of order 1 per edge, and the sums
/// over a molecule's neighbours then blow the features up.
fn xavier(inputs: i64, outputs: i64) -> nn::LinearConfig {
    let bound = (6.0 / (inputs + outputs) as f64).sqrt();
    nn::LinearConfig {
        ws_init: nn::Init::Uniform { lo: -bound, up: bound },
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    }
}

impl MessageLayers for Painn {
    fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// s⁰ from the element, v⁰ = 0.
    fn embed(&self, batch: &GraphBatch) -> Vec<Tensor> {
        let s = self.embedding.forward(&batch.numbers);
        let v = Tensor::zeros([batch.n_atoms(), 3, self.features], (s.kind(), s.device()));
        vec![s, v]
    }

    /// The radial basis every layer's filters are made from, (edges, N + 1): [basis·f_cut,
    /// f_cut], so that (basis·W + b)·f_cut is one product with [W; b] (or (edges, N) without
    /// a bias). Each message makes its own filter chunks from it ([`Painn::filter`]): taking
    /// them apart from one (edges, 3F) product would cost a copy of its gradient per layer.
    fn filters(&self, edges: &Edges, layers: Range<usize>) -> Vec<Tensor> {
        let distance = edges.distance();
        let envelope = cosine_cutoff(&distance, self.cutoff).unsqueeze(-1);
        let basis = match &self.filters.bs {
            Some(_) => Tensor::cat(&[self.radial(&distance) * &envelope, envelope], -1),
            None => self.radial(&distance) * envelope,
        };
        layers.map(|_| basis.shallow_clone()).collect()
    }

    /// φ_s and φ_vs, and vⱼ∘φ_vv per atom (the per-edge product would cost an (edges, 3, F)
    /// tensor and its gradient); the first layer sends no vectors (v⁰ = 0, so its
    /// vⱼ∘φ_vv∘W_vv vanishes).
    fn prepare(&self, layer: usize, state: &[Tensor]) -> Prepared {
        let context = self.layers[layer].context.forward(&state[0]).split(self.features, -1);
        let (scalar, vector, directional) = (&context[0], &context[1], &context[2]);
        let mut sent = vec![scalar.shallow_clone(), directional.shallow_clone()];
        if layer > 0 {
            sent.push(&state[1] * vector.unsqueeze(1));
        }
        Prepared::sending(sent)
    }

    /// Σⱼ φ_s∘W_s and Σⱼ vⱼ∘φ_vv∘W_vv + φ_vs∘W_vs ⊗ r̂ᵢⱼ.
    fn messages(
        &self,
        layer: usize,
        sent: &[Tensor],
        _received: &[Tensor],
        edges: &Edges,
        basis: &Tensor,
    ) -> Vec<Tensor> {
        let weights = self.filter_weights();
        let filter = |chunk: Chunk| self.filter(basis, &weights, layer, chunk);
        let ds = &sent[0] * filter(Chunk::Scalar);
        let directional = (&sent[1] * filter(Chunk::Directional)).unsqueeze(1) * edges.direction().unsqueeze(-1);
        // One fused kernel: the broadcast product and the sum apart cost three times as much.
        let dv = match sent.get(2) {
            Some(v) => directional.addcmul(v, &filter(Chunk::Vector).unsqueeze(1)),
            None => directional,
        };
        vec![edges.sum_to_centers(&ds), edges.sum_to_centers(&dv)]
    }

    /// The residual message, then the update block.
    fn update(&self, layer: usize, state: &[Tensor], messages: &[Tensor]) -> Vec<Tensor> {
        let (f, layer) = (self.features, &self.layers[layer]);
        let s = &state[0] + &messages[0];
        let v = &state[1] + &messages[1];
        let mixed = layer.mix.forward(&v).split(f, -1);
        let (uv, vv) = (&mixed[0], &mixed[1]);
        let norm = (vv.square().sum_dim_intlist(1, false, vv.kind()) + NORM_EPSILON).sqrt();
        let a = layer.update.forward(&Tensor::cat(&[&s, &norm], -1)).split(f, -1);
        let (a_vv, a_sv, a_ss) = (&a[0], &a[1], &a[2]);
        let inner = (uv * vv).sum_dim_intlist(1, false, vv.kind());
        vec![(a_ss + &s).addcmul(a_sv, &inner), v.addcmul(&a_vv.unsqueeze(1), uv)]
    }

    fn readout(&self, states: &[Vec<Tensor>]) -> Tensor {
        let last = states.last().expect("the embedding");
        self.readout.forward(&last[0]).squeeze_dim(-1)
    }

    /// The scalar features s.
    fn node_features(&self, last: &[Tensor]) -> Tensor {
        last[0].shallow_clone()
    }
}

/// PaiNN's registry entry.
pub struct PainnSpec;

impl ArchitectureSpec for PainnSpec {
    fn name(&self) -> &'static str {
        "painn"
    }

    fn keys(&self) -> Vec<&'static str> {
        vec!["painn"]
    }

    fn size_keys(&self) -> &'static str {
        "lower model.painn.features (or model.painn.layers)"
    }

    fn variants(&self, base: &ModelConfig) -> Vec<(String, ModelConfig)> {
        vec![("painn".into(), base.clone())]
    }

    fn validate(&self, config: &ModelConfig) -> Result<(), ModelError> {
        config.painn.validate(config.cutoff)
    }

    fn parameter_count(&self, config: &ModelConfig) -> u64 {
        let (f, layers) = (count::size(config.painn.features), config.painn.layers as u64);
        let layer = count::mlp(&[f, f, 3 * f]) + f * 2 * f + count::mlp(&[2 * f, f, 3 * f]);
        count::ELEMENTS * f
            + count::linear(config.painn.radial_basis as u64, 3 * f * layers)
            + layers * layer
            + count::mlp(&[f, f / 2, 1])
    }

    fn activations(&self, config: &ModelConfig) -> (u64, u64) {
        let (f, layers) = (count::size(config.painn.features), config.painn.layers as u64);
        // The filters of every layer; per layer the gathered scalar context and its filtered
        // product, and the gathered, filtered and direction-weighted vectors.
        let edge = count::GEOMETRY + config.painn.radial_basis as u64 + 3 * f * layers + layers * 15 * f;
        // Per layer: s and v (3F) before and after, Uv and Vv, the norm, the update.
        let atom = layers * 20 * f + 2 * f;
        (edge, atom)
    }

    fn node_feature_width(&self, config: &ModelConfig) -> i64 {
        config.painn.features
    }

    fn build(&self, path: nn::Path, config: &ModelConfig) -> Result<Box<dyn Architecture>, ModelError> {
        Ok(Box::new(Painn::new(path, config)))
    }
}

impl Block for Painn {
    fn name(&self) -> &str {
        "painn"
    }

    fn reads(&self) -> Vec<Field> {
        vec![Field::Numbers, Field::EdgeIndex, Field::EdgeVectors]
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

impl Architecture for Painn {
    fn message_layers(&self) -> &dyn MessageLayers {
        self
    }
}
