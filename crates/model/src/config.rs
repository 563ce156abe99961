//! Model configuration: the `[model]` table of a run's TOML, stored with every checkpoint so
//! that the checkpoint rebuilds its model.

use serde::{Deserialize, Serialize};

use crate::priors::PriorConfig;
use crate::ModelError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Mpnn,
    Vimpnn,
    Transformer,
    Painn,
}

impl ModelKind {
    /// Every architecture, as `[model] kind` names them.
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Mpnn,
        ModelKind::Vimpnn,
        ModelKind::Transformer,
        ModelKind::Painn,
    ];

    /// The name `[model] kind` takes.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mpnn => "mpnn",
            ModelKind::Vimpnn => "vimpnn",
            ModelKind::Transformer => "transformer",
            ModelKind::Painn => "painn",
        }
    }
}

/// `[model]` keys every kind reads.
const SHARED_KEYS: [&str; 5] = ["kind", "cutoff", "dtype", "elements", "priors"];

/// The `[model]` keys of the message-passing networks (MPNN and VIMPNN) besides their tables.
const MESSAGE_PASSING_KEYS: [&str; 7] = [
    "hidden",
    "iterations",
    "radial_basis",
    "bond_features",
    "edge_hidden",
    "edge_rank",
    "readout_hidden",
];

impl ModelKind {
    /// The `[model]` keys this kind reads besides the shared ones (kind, cutoff, dtype,
    /// elements, priors): a key of another kind in its table is an error, not silently ignored.
    pub fn keys(self) -> Vec<&'static str> {
        match self {
            ModelKind::Mpnn => MESSAGE_PASSING_KEYS.to_vec(),
            ModelKind::Vimpnn => [&MESSAGE_PASSING_KEYS[..], &["vimpnn", "aux"]].concat(),
            ModelKind::Transformer => vec!["hidden", "radial_basis", "transformer"],
            ModelKind::Painn => vec!["painn"],
        }
    }

    /// Every combination of this architecture's switches, each applied to `base` (which sets
    /// the sizes, cutoff and elements), named: the registry the shared model suite runs, so
    /// that a new architecture or switch is tested by every check of it.
    pub fn variants(self, base: &ModelConfig) -> Vec<(String, ModelConfig)> {
        let base = ModelConfig {
            kind: self,
            ..base.clone()
        };
        match self {
            ModelKind::Mpnn => crate::mpnn::variants(&base),
            ModelKind::Vimpnn => crate::vimpnn::variants(&base),
            ModelKind::Transformer => crate::transformer::variants(&base),
            ModelKind::Painn => vec![("painn".into(), base)],
        }
    }

    /// Whether a model of this kind reads the `[model]` key `key`.
    pub fn reads(self, key: &str) -> bool {
        SHARED_KEYS.contains(&key) || self.keys().contains(&key)
    }

    /// The settings that shrink a model of this kind, for memory refusals.
    pub fn size_keys(self) -> &'static str {
        match self {
            ModelKind::Mpnn | ModelKind::Vimpnn => {
                "lower model.hidden (or model.edge_rank, model.edge_hidden, model.readout_hidden)"
            }
            ModelKind::Transformer => "lower model.hidden (or model.transformer.attention)",
            ModelKind::Painn => "lower model.painn.features (or model.painn.layers)",
        }
    }
}

impl std::str::FromStr for ModelKind {
    type Err = String;

    fn from_str(name: &str) -> Result<ModelKind, String> {
        ModelKind::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
            let known: Vec<&str> = ModelKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown model kind {name:?} ({})", known.join(", "))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    pub fn kind(self) -> tch::Kind {
        match self {
            Dtype::F32 => tch::Kind::Float,
            Dtype::F64 => tch::Kind::Double,
        }
    }
}

/// How VIMPNN combines its per-bond-type messages (paper section 4.2, Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Combine {
    /// a.i: weighted sum with a learnt vector weight per bond type (element-wise).
    #[serde(rename = "a.i")]
    VectorWeights,
    /// a.ii: weighted sum with a learnt scalar weight per bond type (the paper's best).
    #[serde(rename = "a.ii")]
    ScalarWeights,
    /// b.i: messages concatenated into one GRU; node state size = types × hidden.
    #[serde(rename = "b.i")]
    Concatenate,
    /// b.ii: one shared GRU applied per bond type to its own block of the node state, with a
    /// learnt scale per type; node state size = types × hidden.
    #[serde(rename = "b.ii")]
    SharedGru,
    /// c: one GRU per bond type on the same node state; their updates are summed.
    #[serde(rename = "c")]
    GruPerType,
}

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

/// VIMPNN's bond-type channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VimpnnConfig {
    pub combine: Combine,
    /// The bond-type channels, each a `+`-joined list of bond classes (none, single, double,
    /// triple, aromatic). Default three: non-bonded pairs, single bonds, and multiple bonds
    /// (double, triple, aromatic). The paper gives three types without naming them; pairs
    /// without a bond need a channel because the graph holds them too, and QM9's double,
    /// triple and aromatic bonds are together about a tenth of its bonds.
    pub channels: Vec<String>,
}

impl Default for VimpnnConfig {
    fn default() -> Self {
        VimpnnConfig {
            combine: Combine::ScalarWeights,
            channels: vec!["none".into(), "single".into(), "double+triple+aromatic".into()],
        }
    }
}

impl VimpnnConfig {
    /// Channel of each bond class, indexed by `BondClass as usize`.
    pub fn channel_of_class(&self) -> Result<Vec<i64>, ModelError> {
        let mut channel = vec![-1i64; minima_data::BondClass::COUNT];
        for (c, spec) in self.channels.iter().enumerate() {
            for name in spec.split('+') {
                let class = minima_data::BondClass::from_name(name.trim())
                    .ok_or_else(|| ModelError::Config(format!("unknown bond class {name:?} in channel {spec:?}")))?;
                if channel[class as usize] >= 0 {
                    return Err(ModelError::Config(format!("bond class {name} is in two channels")));
                }
                channel[class as usize] = c as i64;
            }
        }
        if let Some(missing) = channel.iter().position(|&c| c < 0) {
            let name = minima_data::BondClass::NAMES[missing];
            return Err(ModelError::Config(format!("bond class {name} is in no channel")));
        }
        Ok(channel)
    }
}

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

/// The `[model]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub kind: ModelKind,
    /// Node state size (per bond type for VIMPNN's b variants). Paper: 73.
    pub hidden: i64,
    /// Message-passing iterations T. Paper: 3.
    pub iterations: usize,
    /// Edge cutoff, Å; absent: every pair of a molecule is an edge (periodic data needs one).
    pub cutoff: Option<f64>,
    /// Gaussians expanding the edge distance, spread over [0, cutoff] (or [0, 10 Å]).
    pub radial_basis: usize,
    /// MPNN and VIMPNN: the bond-class one-hot joins the distance in the edge features. Off,
    /// an MPNN sees distances alone: the VIMPNN paper's Table 1 baseline "No bond type
    /// information".
    pub bond_features: bool,
    pub edge_hidden: i64,
    /// Rank-one matrices mixed by the edge network (see `blocks::EdgeNetwork`).
    pub edge_rank: i64,
    pub readout_hidden: i64,
    pub dtype: Dtype,
    /// Elements the model knows (filled from the training data).
    pub elements: Vec<u8>,
    pub vimpnn: VimpnnConfig,
    pub aux: AuxConfig,
    pub transformer: TransformerConfig,
    pub painn: crate::painn::PainnConfig,
    /// `[[model.priors]]`: physics added to the energy of any kind ([`crate::priors`]), such as
    /// ZBL's short-range repulsion; none by default.
    pub priors: Vec<PriorConfig>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            kind: ModelKind::Vimpnn,
            hidden: 73,
            iterations: 3,
            cutoff: None,
            radial_basis: 16,
            bond_features: true,
            edge_hidden: 32,
            edge_rank: 73,
            readout_hidden: 73,
            dtype: Dtype::F32,
            elements: Vec::new(),
            vimpnn: VimpnnConfig::default(),
            aux: AuxConfig::default(),
            transformer: TransformerConfig::default(),
            painn: Default::default(),
            priors: Vec::new(),
        }
    }
}

impl ModelConfig {
    /// Refuses the keys of a `[model]` table as written that its kind does not read (another
    /// kind's settings, which would otherwise be ignored without a word), naming the kinds that
    /// read them. Keys no kind reads are left to deserialisation, which names the known ones.
    pub fn check_keys(table: &toml::Table) -> Result<(), ModelError> {
        let kind = match table.get("kind") {
            None => ModelConfig::default().kind,
            Some(value) => {
                let name = value
                    .as_str()
                    .ok_or_else(|| ModelError::Config(format!("model.kind must be a name, not {value}")))?;
                name.parse()
                    .map_err(|e| ModelError::Config(format!("model.kind: {e}")))?
            }
        };
        if table.contains_key("zbl") {
            return Err(ModelError::Config(
                "[model.zbl] is now a prior: `[[model.priors]]` with `kind = \"zbl\"` (and inner, outer as before; no `enabled`)".into(),
            ));
        }
        let transformer = table.get("transformer").and_then(toml::Value::as_table);
        if let Some((old, _)) = crate::priors::LEGACY_PHYSICS_KEYS
            .iter()
            .find(|(old, _)| transformer.is_some_and(|t| t.contains_key(*old)))
        {
            return Err(ModelError::Config(format!(
                "model.transformer.{old}: the physics head is now a prior any model can carry: `[[model.priors]]` with `kind = \"coulomb_lj\"` (and pairs, switch for pair_switch, initial_distance, initial_exponent, initial_depth; no `physics`)"
            )));
        }
        for key in table.keys() {
            if kind.reads(key) {
                continue;
            }
            let readers: Vec<&str> = ModelKind::ALL
                .into_iter()
                .filter(|k| k.reads(key))
                .map(ModelKind::name)
                .collect();
            if !readers.is_empty() {
                return Err(ModelError::Config(format!(
                    "model.{key} is a setting of {} models, which a {kind} model does not read: remove it, or set model.kind (a {kind} model reads {}, and {})",
                    readers.join(" and "),
                    kind.keys().join(", "),
                    SHARED_KEYS.join(", "),
                    kind = kind.name(),
                )));
            }
        }
        Ok(())
    }

    /// This configuration with the keys its kind does not read at their defaults: what a
    /// checkpoint or run file of it reads back as.
    pub fn without_other_kinds(&self) -> ModelConfig {
        let own = ModelConfig {
            kind: self.kind,
            ..ModelConfig::default()
        };
        let value = toml::Value::try_from(self).expect("a model configuration serialises");
        let mut table = toml::Table::try_from(own).expect("a model configuration serialises");
        if let toml::Value::Table(mine) = value {
            table.extend(mine.into_iter().filter(|(key, _)| self.kind.reads(key)));
        }
        toml::Value::Table(table).try_into().expect("its own keys deserialise")
    }

    /// Serialises the keys its kind reads only (serde's `serialize_with`), so that a
    /// checkpoint or run file lists the settings that made its model and no other kind's.
    pub fn serialize_own_keys<S: serde::Serializer>(config: &ModelConfig, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let value = toml::Value::try_from(config).map_err(S::Error::custom)?;
        let mut table = match value {
            toml::Value::Table(table) => table,
            _ => return Err(S::Error::custom("a model configuration serialises to a table")),
        };
        table.retain(|key, _| config.kind.reads(key));
        table.serialize(serializer)
    }
}

/// Activation bytes one chunk of edges may take when a structure runs in edge chunks.
pub const CHUNK_BYTES: u64 = 256 << 20;

impl ModelConfig {
    pub fn graph_spec(&self) -> minima_data::GraphSpec {
        minima_data::GraphSpec { cutoff: self.cutoff }
    }

    /// Features per edge of MPNN and VIMPNN: the radial basis and the bond classes.
    pub fn edge_feature_count(&self) -> u64 {
        let bonds = if self.bond_features {
            minima_data::BondClass::COUNT
        } else {
            0
        };
        (self.radial_basis + bonds) as u64
    }

    /// The largest distance the radial basis covers.
    pub fn radial_range(&self) -> f64 {
        self.cutoff.unwrap_or(10.0)
    }

    /// Bytes per number of the model's dtype.
    pub fn dtype_bytes(&self) -> u64 {
        match self.dtype {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }

    /// The number of parameters a model of this configuration holds, counted from the sizes
    /// alone, so that a model too large to allocate is refused before it is built.
    pub fn parameter_count(&self) -> u64 {
        let width = self.node_feature_width() as u64;
        let priors: u64 = self.priors.iter().map(|p| p.parameter_count(width)).sum();
        self.architecture_parameter_count() + priors
    }

    /// The width of the architecture's final node features ([`crate::Field::NodeFeatures`]).
    pub fn node_feature_width(&self) -> i64 {
        match self.kind {
            ModelKind::Vimpnn if matches!(self.vimpnn.combine, Combine::Concatenate | Combine::SharedGru) => {
                self.vimpnn.channels.len() as i64 * self.hidden
            }
            ModelKind::Mpnn | ModelKind::Vimpnn | ModelKind::Transformer => self.hidden,
            ModelKind::Painn => self.painn.features,
        }
    }

    fn architecture_parameter_count(&self) -> u64 {
        let size = |n: i64| n.max(0) as u64;
        let linear = |input: u64, output: u64| input * output + output;
        let mlp = |sizes: &[u64]| sizes.windows(2).map(|w| linear(w[0], w[1])).sum::<u64>();
        let gru = |input: u64, hidden: u64| linear(input, 3 * hidden) + linear(hidden, 3 * hidden);
        let table = (crate::blocks::MAX_Z + 1) as u64;
        let (d, rank, readout) = (size(self.hidden), size(self.edge_rank), size(self.readout_hidden));
        let basis = self.radial_basis as u64;
        let features = |state: u64| (self.iterations as u64 + 1) * state;
        let message_passing = |state: u64, message: u64| {
            let edge_features = self.edge_feature_count();
            table * state + mlp(&[edge_features, size(self.edge_hidden), rank]) + state * rank + rank * message
        };
        let elements = self.elements.len() as u64;
        match self.kind {
            ModelKind::Mpnn => message_passing(d, d) + gru(d, d) + mlp(&[features(d), readout, 1]),
            ModelKind::Vimpnn => {
                let types = self.vimpnn.channels.len() as u64;
                let (state, update) = match self.vimpnn.combine {
                    Combine::VectorWeights => (d, types * d + gru(d, d)),
                    Combine::ScalarWeights => (d, types + gru(d, d)),
                    Combine::Concatenate => (types * d, gru(types * d, types * d)),
                    Combine::SharedGru => (types * d, types + gru(d, d)),
                    Combine::GruPerType => (d, types * gru(d, d)),
                };
                let aux = &self.aux;
                let head = |on: bool, out: u64| if on { mlp(&[features(state), readout, out]) } else { 0 };
                message_passing(state, d)
                    + update
                    + mlp(&[features(state), readout, 1])
                    + head(aux.counts, elements)
                    + head(aux.orbitals, elements)
                    + head(aux.scale, aux.scale_grid.2 as u64)
            }
            ModelKind::Transformer => {
                let t = &self.transformer;
                let (m, heads) = (size(t.attention), size(t.heads));
                let norm = 2 * d;
                let block = norm
                    + 3 * linear(d, m)
                    + 2 * linear(basis, m)
                    + if t.cls { 2 * m } else { 0 }
                    + if t.adjacency_mask { linear(1, heads) } else { 0 }
                    + linear(m, d)
                    + norm
                    + mlp(&[d, 2 * d, d]);
                let on = |flag: bool, count: u64| if flag { count } else { 0 };
                table * d.saturating_sub(1)
                    + 2 * table * basis
                    + basis * d
                    + d * d
                    + 2 * d * d
                    + on(t.cls, d)
                    + t.layers as u64 * block
                    + norm
                    + on(t.atom_energy, linear(d, 1))
                    + on(t.cls, linear(d, 1))
                    + mlp(&[d, d, elements])
            }
            ModelKind::Painn => {
                let (f, layers) = (size(self.painn.features), self.painn.layers as u64);
                let layer = mlp(&[f, f, 3 * f]) + f * 2 * f + mlp(&[2 * f, f, 3 * f]);
                table * f
                    + linear(self.painn.radial_basis as u64, 3 * f * layers)
                    + layers * layer
                    + mlp(&[f, f / 2, 1])
            }
        }
    }

    /// Numbers per edge and per atom that a forward pass keeps for its backward pass (the
    /// architecture's edge and node tensors, and the priors' per edge), for
    /// [`ModelConfig::batch_memory`].
    fn activations_per_edge_and_atom(&self) -> (u64, u64) {
        let width = self.node_feature_width() as u64;
        let priors: u64 = self.priors.iter().map(|p| p.activations_per_edge(width)).sum();
        let (edge, atom) = self.architecture_activations();
        (edge + priors, atom)
    }

    fn architecture_activations(&self) -> (u64, u64) {
        let size = |n: i64| n.max(0) as u64;
        let (d, rank) = (size(self.hidden), size(self.edge_rank));
        let basis = self.radial_basis as u64;
        let iterations = self.iterations as u64;
        // Edge vectors, distance, envelope and the edge indices.
        let geometry = 12;
        match self.kind {
            ModelKind::Mpnn | ModelKind::Vimpnn => {
                let state = match (self.kind, self.vimpnn.combine) {
                    (ModelKind::Vimpnn, Combine::Concatenate | Combine::SharedGru) => {
                        self.vimpnn.channels.len() as u64 * d
                    }
                    _ => d,
                };
                // Features, the coefficient perceptron, the filters, then per step the gathered
                // neighbour states and their product with the filters.
                let edge = geometry
                    + basis
                    + minima_data::BondClass::COUNT as u64
                    + 2 * size(self.edge_hidden)
                    + 2 * rank
                    + iterations * 2 * rank;
                let atom = (iterations + 1) * (8 * state + 2 * rank) + 2 * size(self.readout_hidden);
                (edge, atom)
            }
            ModelKind::Transformer => {
                let t = &self.transformer;
                let (m, heads) = (size(t.attention), size(t.heads));
                // Per block: filters, gathered keys and values and their products, scores,
                // weights and messages.
                let block = 7 * m + 3 * heads;
                let edge = geometry + 2 * basis + 2 * d + t.layers as u64 * block;
                let atom = t.layers as u64 * (8 * d + 4 * m) + 4 * d;
                (edge, atom)
            }
            ModelKind::Painn => {
                let (f, layers) = (size(self.painn.features), self.painn.layers as u64);
                // The filters of every layer; per layer the gathered scalar context and its
                // filtered product, and the gathered, filtered and direction-weighted vectors.
                let edge = geometry + self.painn.radial_basis as u64 + 3 * f * layers + layers * 15 * f;
                // Per layer: s and v (3F) before and after, Uv and Vv, the norm, the update.
                let atom = layers * 20 * f + 2 * f;
                (edge, atom)
            }
        }
    }

    /// Estimated bytes a batch of `atoms` atoms and `edges` edges takes on the device: the
    /// tensors its forward pass keeps, twice that when forces are asked for (the backward pass
    /// holds their gradients), four times when the forces are themselves trained through
    /// (`second_order`: the backward pass is kept for a second one).
    pub fn batch_memory(&self, atoms: u64, edges: u64, forces: bool, second_order: bool) -> u64 {
        let (per_edge, per_atom) = self.activations_per_edge_and_atom();
        let forward = (edges * per_edge + atoms * per_atom) * self.dtype_bytes();
        forward
            * match (forces, second_order) {
                (_, true) => 4,
                (true, false) => 2,
                (false, false) => 1,
            }
    }

    /// Edges per chunk when a structure runs in edge chunks: one chunk's activations, with
    /// their gradients, take about [`CHUNK_BYTES`].
    pub fn chunk_edges(&self) -> i64 {
        let (per_edge, _) = self.activations_per_edge_and_atom();
        (CHUNK_BYTES / (2 * per_edge.max(1) * self.dtype_bytes())).max(1) as i64
    }

    /// Estimated bytes of a structure of `atoms` atoms and `edges` edges run in edge chunks
    /// ([`crate::message_layers::in_chunks`]): per atom the states and message sums of every
    /// layer with their gradients, per edge its indices and offset twice (the batch's and a
    /// copy sorted by centre), and two chunks' activations.
    pub fn chunked_memory(&self, atoms: u64, edges: u64) -> u64 {
        let (_, per_atom) = self.activations_per_edge_and_atom();
        let per_edge = 2 * (3 * 8 + 3 * self.dtype_bytes());
        3 * atoms * per_atom * self.dtype_bytes() + edges * per_edge + 2 * CHUNK_BYTES
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: &str| Err(ModelError::Config(m.to_string()));
        let sizes = [self.hidden, self.edge_hidden, self.edge_rank, self.readout_hidden];
        if sizes.iter().any(|&n| n < 1) || self.iterations < 1 || self.radial_basis < 2 {
            return bad(
                "model: hidden, edge_hidden, edge_rank, readout_hidden and iterations must be ≥ 1, radial_basis ≥ 2",
            );
        }
        if let Some(c) = self.cutoff {
            if !(c.is_finite() && c > 0.0) {
                return bad("model.cutoff must be a positive distance in Å");
            }
        }
        if self.elements.is_empty() {
            return bad("model.elements is empty (it is filled from the training data)");
        }
        let (first, last, n) = self.aux.scale_grid;
        let finite = first.is_finite() && last.is_finite() && self.aux.scale_width.is_finite();
        if self.aux.scale && !(finite && first < last && n >= 2 && self.aux.scale_width > 0.0) {
            return bad("model.aux.scale_grid must be (first < last, points ≥ 2) with scale_width > 0");
        }
        if self.kind == ModelKind::Transformer {
            self.validate_transformer()?;
        }
        if self.kind == ModelKind::Painn {
            self.painn.validate(self.cutoff)?;
        }
        for prior in &self.priors {
            prior.validate(&self.elements, self.cutoff)?;
        }
        self.vimpnn.channel_of_class().map(|_| ())
    }

    fn validate_transformer(&self) -> Result<(), ModelError> {
        let t = &self.transformer;
        let bad = |m: String| Err(ModelError::Config(m));
        if self.cutoff.is_none() {
            return bad("model.cutoff: the transformer attends within a cutoff τ; set one (Å)".into());
        }
        if self.hidden < 2 {
            return bad("model.hidden must be ≥ 2 for the transformer (embedding plus electronegativity)".into());
        }
        if t.layers < 1 || t.heads < 1 || t.attention < 1 || t.attention % t.heads != 0 {
            return bad(format!(
                "model.transformer: layers and heads must be ≥ 1 and attention ({}) a multiple of heads ({})",
                t.attention, t.heads
            ));
        }
        let heads = self.priors.iter().any(|p| matches!(p, PriorConfig::CoulombLj(_)));
        if !(t.cls || t.atom_energy || heads) {
            return bad(
                "model.transformer: cls and atom_energy are both off and no coulomb_lj prior is listed; no energy is left"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::priors::coulomb_lj::CoulombLjConfig;

    fn error(config: ModelConfig) -> String {
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn bad_configurations_are_named() {
        let good = ModelConfig {
            elements: vec![1, 6],
            ..ModelConfig::default()
        };
        assert!(good.validate().is_ok());
        assert!(error(ModelConfig {
            readout_hidden: 0,
            ..good.clone()
        })
        .contains("readout_hidden"));
        assert!(error(ModelConfig {
            cutoff: Some(-1.0),
            ..good.clone()
        })
        .contains("cutoff"));
        assert!(error(ModelConfig {
            elements: vec![],
            ..good.clone()
        })
        .contains("elements"));
        let mut channels = good.clone();
        channels.vimpnn.channels = vec!["none".into(), "single+dbl".into()];
        assert!(error(channels.clone()).contains("unknown bond class \"dbl\""));
        channels.vimpnn.channels = vec!["none+single".into(), "single+double+triple+aromatic".into()];
        assert!(error(channels.clone()).contains("two channels"));
        channels.vimpnn.channels = vec!["none".into(), "single".into()];
        assert!(error(channels).contains("double is in no channel"));
        let mut grid = good.clone();
        grid.aux.scale_grid = (1.5, 0.9, 10);
        assert!(error(grid).contains("scale_grid"));
        let mut transformer = ModelConfig {
            kind: ModelKind::Transformer,
            ..good
        };
        assert!(error(transformer.clone()).contains("cutoff"));
        transformer.cutoff = Some(5.0);
        assert!(transformer.validate().is_ok());
        transformer.transformer.attention = 10;
        transformer.transformer.heads = 4;
        assert!(error(transformer.clone()).contains("multiple of heads"));
        transformer.transformer.attention = 8;
        transformer.transformer.cls = false;
        transformer.transformer.atom_energy = false;
        assert!(error(transformer.clone()).contains("no energy"));
        let head = CoulombLjConfig {
            switch: 6.0,
            ..Default::default()
        };
        transformer.priors.push(PriorConfig::CoulombLj(head));
        assert!(error(transformer.clone()).contains("switch"));
        transformer.priors = vec![PriorConfig::CoulombLj(Default::default())];
        assert!(transformer.validate().is_ok());
    }
}
