//! Architectures as layers of per-atom sums over edges, and inference in edge chunks.
//!
//! MPNN, VIMPNN, PaiNN and the transformer are each L layers of: node tensors the messages
//! read ([`MessageLayers::prepare`]: rows each edge sends from its neighbour, and rows it reads
//! at its centre), a sum of messages over each atom's edges ([`MessageLayers::messages`]), and
//! a node update ([`MessageLayers::update`]); then a per-atom readout, and optionally learnt
//! readouts per edge on the final node features (pair heads, [`EdgeReadout`]). One
//! description serves two ways of
//! running:
//! - [`run_layers`]: all edges at once under autograd, for training and small structures;
//! - [`in_chunks`]: for structures too large for autograd to keep every edge's activations.
//!   The forward pass keeps only the per-atom states between layers; the backward pass walks
//!   the layers back and, per chunk of edges, recomputes that chunk's messages to take their
//!   gradient (gradient checkpointing per layer and chunk). Memory grows with the atoms and
//!   one chunk of edges, not with all edges' activations; the price is a second forward pass.
//!   Forces and the virial come from the gradient of each edge vector d: an edge i→j adds g
//!   to −F_j and −g to −F_i, and d⊗g to the virial, so the stress needs no strained copy.

use std::cell::OnceCell;
use std::ops::Range;

use tch::{Kind, Tensor};

use crate::batch::GraphBatch;

/// Edges as the messages see them.
pub struct Edges {
    /// The row each edge's message goes to, (edges,) int64, in `0..rows`.
    pub center: Tensor,
    /// The sending atom, an index into the batch's atoms, (edges,) int64.
    pub neighbor: Tensor,
    /// Bond class (`minima_data::BondClass` as integer), (edges,) int64.
    pub bond: Tensor,
    /// Atomic number of each edge's centre atom, (edges,) int64.
    pub center_number: Tensor,
    /// r_neighbor + offset − r_center, Å, (edges, 3).
    pub vectors: Tensor,
    /// Rows of the per-atom message sums: the batch's atoms, or the centres a chunk covers.
    pub rows: i64,
    /// The atom of row 0.
    pub first: i64,
    /// |vectors| and vectors/|vectors|, computed once: every layer reads them.
    distance: OnceCell<Tensor>,
    direction: OnceCell<Tensor>,
}

impl Edges {
    /// Every edge of `batch` (strained when the batch carries a strain).
    pub fn of(batch: &GraphBatch) -> Edges {
        Edges {
            center: batch.center.shallow_clone(),
            neighbor: batch.neighbor.shallow_clone(),
            bond: batch.bond.shallow_clone(),
            center_number: batch.numbers.index_select(0, &batch.center),
            vectors: batch.edge_vectors(),
            rows: batch.n_atoms(),
            first: 0,
            distance: OnceCell::from(batch.edge_distance()),
            direction: OnceCell::new(),
        }
    }

    /// The edges at `index`, (selected,) int64.
    pub fn select(&self, index: &Tensor) -> Edges {
        let rows = |t: &Tensor| t.index_select(0, index);
        Edges {
            center: rows(&self.center),
            neighbor: rows(&self.neighbor),
            bond: rows(&self.bond),
            center_number: rows(&self.center_number),
            vectors: rows(&self.vectors),
            rows: self.rows,
            first: self.first,
            distance: OnceCell::from(rows(&self.distance())),
            direction: OnceCell::new(),
        }
    }

    /// The edges shorter than `reach`, Å.
    pub fn within(&self, reach: f64) -> Edges {
        let index = tch::no_grad(|| self.distance().lt(reach).nonzero().squeeze_dim(-1));
        self.select(&index)
    }

    pub fn count(&self) -> i64 {
        self.center.size()[0]
    }

    /// The receiving atom of each edge, an index into the batch's atoms.
    pub fn center_atoms(&self) -> Tensor {
        &self.center + self.first
    }

    pub fn distance(&self) -> Tensor {
        self.distance
            .get_or_init(|| self.vectors.norm_scalaropt_dim(2, [-1], false))
            .shallow_clone()
    }

    /// Unit vectors along the edges, (edges, 3).
    pub fn direction(&self) -> Tensor {
        self.direction
            .get_or_init(|| &self.vectors / self.distance().unsqueeze(-1))
            .shallow_clone()
    }

    /// Sums per-edge rows into the rows of their centres: (edges, …) → (rows, …).
    pub fn sum_to_centers(&self, per_edge: &Tensor) -> Tensor {
        zeros_with_rows(per_edge, self.rows).index_add(0, &self.center, per_edge)
    }
}

/// Node tensors the messages read: `sent` rows go out along each edge from its neighbour,
/// `received` rows are read at its centre. Each is (atoms, …).
#[derive(Default)]
pub struct Prepared {
    pub sent: Vec<Tensor>,
    pub received: Vec<Tensor>,
}

impl Prepared {
    /// Rows sent along the edges only.
    pub fn sending(sent: Vec<Tensor>) -> Prepared {
        Prepared {
            sent,
            received: Vec::new(),
        }
    }

    fn all(&self) -> impl Iterator<Item = &Tensor> {
        self.sent.iter().chain(&self.received)
    }
}

/// An architecture written as layers of per-atom sums over edges (see the module doc).
/// States are lists of tensors (per atom, or per structure for a structure token; integer
/// tensors are carried, not differentiated); messages are per-atom tensors, their first
/// dimension [`Edges::rows`].
pub trait MessageLayers {
    fn layer_count(&self) -> usize;

    /// The state before the first layer; it depends on the elements only.
    fn embed(&self, batch: &GraphBatch) -> Vec<Tensor>;

    /// Per-edge tensors from the geometry alone, one per layer of `layers` (layers that share
    /// filters get the same tensor).
    fn filters(&self, edges: &Edges, layers: Range<usize>) -> Vec<Tensor>;

    /// The node tensors the messages of `layer` read, computed once per layer, not per chunk.
    fn prepare(&self, layer: usize, state: &[Tensor]) -> Prepared;

    /// Σ over `edges` of `layer`'s messages into the rows of their centres, from `sent` and
    /// `received`: the prepared rows of each edge's neighbour and centre, (edges, …) each.
    /// Sums over disjoint sets of edges add up to the sum over their union.
    fn messages(
        &self,
        layer: usize,
        sent: &[Tensor],
        received: &[Tensor],
        edges: &Edges,
        filter: &Tensor,
    ) -> Vec<Tensor>;

    /// The state after `layer` from the state before it and the summed messages.
    fn update(&self, layer: usize, state: &[Tensor], messages: &[Tensor]) -> Vec<Tensor>;

    /// Normalised per-atom energy, (atoms,), from the states before and after each layer.
    fn readout(&self, states: &[Vec<Tensor>]) -> Tensor;

    /// The final per-atom invariant features, (atoms, F), from the last state: what a learnt
    /// pair head reads ([`crate::Field::NodeFeatures`]).
    fn node_features(&self, last: &[Tensor]) -> Tensor;

    /// Whether an atom's energy depends only on atoms within `layer_count` × cutoff (false
    /// when a structure-wide token reaches every atom), so that domains can split it.
    fn is_local(&self) -> bool {
        true
    }
}

/// A per-edge energy read from the node features (a learnt pair head such as
/// [`crate::priors::coulomb_lj`]), half of it to the centre atom.
pub trait EdgeReadout {
    fn prepare(&self, features: &Tensor) -> Prepared;
    /// Normalised E_ij per edge, (edges,).
    fn energy(&self, sent: &[Tensor], received: &[Tensor], edges: &Edges) -> Tensor;
}

/// Every layer on every edge at once, under autograd: the states before and after each layer.
pub fn run_layers(model: &dyn MessageLayers, batch: &GraphBatch) -> Vec<Vec<Tensor>> {
    let edges = Edges::of(batch);
    let filters = model.filters(&edges, 0..model.layer_count());
    let mut states = vec![model.embed(batch)];
    for (layer, filter) in filters.iter().enumerate() {
        let state = states.last().expect("the embedding");
        let prepared = model.prepare(layer, state);
        let sent = gather(&prepared.sent, &edges.neighbor);
        let received = gather(&prepared.received, &edges.center);
        let messages = model.messages(layer, &sent, &received, &edges, filter);
        states.push(model.update(layer, state, &messages));
    }
    states
}

/// A pair energy added per edge (a prior such as ZBL): eV per edge, (edges,); half of it goes
/// to the centre atom.
pub type EdgeEnergy<'a> = &'a dyn Fn(&Edges) -> Tensor;

/// What [`in_chunks`] returns.
pub struct ChunkedOutput {
    /// The architecture's normalised per-atom energy, (atoms,).
    pub atom_energy: Tensor,
    /// The pair prior's per-atom share, eV, (atoms,), when there is one.
    pub prior_energy: Option<Tensor>,
    /// −∂E/∂r, eV/Å, (atoms, 3), E = `scale`·Σ atom_energy + Σ prior_energy.
    pub forces: Option<Tensor>,
    /// ∂E/∂ε, eV, (structures, 3, 3), symmetric, with the forces.
    pub virial: Option<Tensor>,
}

/// The batch's edges sorted by centre, so that a run of them covers a run of centre atoms.
struct SortedEdges {
    center: Tensor,
    neighbor: Tensor,
    bond: Tensor,
    /// The batch's exact edge vectors when it has them, else its offsets.
    vectors_or_offsets: Tensor,
    exact: bool,
    count: i64,
}

impl SortedEdges {
    fn of(batch: &GraphBatch) -> SortedEdges {
        let order = batch.center.argsort(0, false);
        SortedEdges {
            center: batch.center.index_select(0, &order),
            neighbor: batch.neighbor.index_select(0, &order),
            bond: batch.bond.index_select(0, &order),
            vectors_or_offsets: batch
                .exact_vectors
                .as_ref()
                .unwrap_or(&batch.offset)
                .index_select(0, &order),
            exact: batch.exact_vectors.is_some(),
            count: order.size()[0],
        }
    }

    /// The edges in `range`, their vectors a fresh leaf (requiring grad when `grad`).
    fn chunk(&self, batch: &GraphBatch, range: &Range<i64>, grad: bool) -> Edges {
        let length = range.end - range.start;
        let center = self.center.narrow(0, range.start, length);
        let neighbor = self.neighbor.narrow(0, range.start, length);
        let stored = self.vectors_or_offsets.narrow(0, range.start, length);
        let vectors = tch::no_grad(|| {
            if self.exact {
                stored.copy()
            } else {
                let positions = batch.positions.detach();
                positions.index_select(0, &neighbor) + stored - positions.index_select(0, &center)
            }
        });
        let (first, rows) = if length == 0 {
            (0, 0)
        } else {
            let first = center.int64_value(&[0]);
            (first, center.int64_value(&[length - 1]) - first + 1)
        };
        Edges {
            center_number: batch.numbers.index_select(0, &center),
            center: &center - first,
            neighbor,
            bond: self.bond.narrow(0, range.start, length),
            vectors: vectors.set_requires_grad(grad),
            rows,
            first,
            distance: OnceCell::new(),
            direction: OnceCell::new(),
        }
    }

    /// Ranges of at most `size` edges covering all of them (one empty range without edges).
    fn ranges(&self, size: i64) -> Vec<Range<i64>> {
        let size = size.max(1);
        let mut ranges: Vec<Range<i64>> = (0..self.count)
            .step_by(size as usize)
            .map(|start| start..(start + size).min(self.count))
            .collect();
        if ranges.is_empty() {
            ranges.push(0..0);
        }
        ranges
    }
}

/// Accumulates −∂E/∂r and the virial from the gradients of edge vectors, in f64: a virial sums
/// every edge of the structure, millions in a large one, beyond what f32 sums keep.
struct GeometryGradient {
    positions: Tensor,
    virial: Tensor,
}

impl GeometryGradient {
    fn new(batch: &GraphBatch) -> GeometryGradient {
        let options = (Kind::Double, batch.device());
        GeometryGradient {
            positions: Tensor::zeros([batch.n_atoms(), 3], options),
            virial: Tensor::zeros([batch.n_structures, 3, 3], options),
        }
    }

    /// Adds ∂E/∂d = `gradient` (edges, 3) of the edges of `chunk`.
    fn add(&mut self, batch: &GraphBatch, chunk: &Edges, gradient: &Tensor) {
        let center = chunk.center_atoms();
        let gradient = gradient.to_kind(Kind::Double);
        let _ = self.positions.index_add_(0, &chunk.neighbor, &gradient);
        let _ = self.positions.index_add_(0, &center, &-&gradient);
        let outer = chunk.vectors.detach().to_kind(Kind::Double).unsqueeze(2) * gradient.unsqueeze(1);
        let structure = batch.structure.index_select(0, &center);
        let _ = self.virial.index_add_(0, &structure, &outer);
    }

    /// The forces and the virial in `kind`.
    fn finish(self, kind: Kind) -> (Tensor, Tensor) {
        let virial = (&self.virial + self.virial.transpose(1, 2)) * 0.5;
        ((-self.positions).to_kind(kind), virial.to_kind(kind))
    }
}

/// Vector-Jacobian product: the gradients of Σ⟨outputs, weights⟩ with respect to `inputs`,
/// `None` where an input does not reach the outputs. Outputs without a weight are left out.
fn vjp(outputs: &[Tensor], weights: &[Option<Tensor>], inputs: &[&Tensor]) -> Vec<Option<Tensor>> {
    let surrogate = outputs
        .iter()
        .zip(weights)
        .filter_map(|(output, weight)| weight.as_ref().map(|w| (output * w).sum(output.kind())))
        .reduce(|a, b| a + b);
    let differentiable: Vec<&Tensor> = inputs.iter().copied().filter(|t| t.requires_grad()).collect();
    let mut gradients = match surrogate {
        Some(total) if total.requires_grad() && !differentiable.is_empty() => {
            Tensor::run_backward(&[total], &differentiable, false, false).into_iter()
        }
        _ => Vec::new().into_iter(),
    };
    inputs
        .iter()
        .map(|t| {
            if t.requires_grad() {
                gradients.next().filter(Tensor::defined)
            } else {
                None
            }
        })
        .collect()
}

/// The rows of each tensor at `index`.
fn gather(tensors: &[Tensor], index: &Tensor) -> Vec<Tensor> {
    tensors.iter().map(|t| t.index_select(0, index)).collect()
}

fn accumulate(total: &mut Option<Tensor>, part: Option<Tensor>) {
    if let Some(part) = part {
        *total = Some(match total.take() {
            Some(sum) => sum + part,
            None => part,
        });
    }
}

/// Detached copies to differentiate by: floating-point tensors require grad, integer ones are
/// carried as they are.
fn leaves(tensors: &[Tensor]) -> Vec<Tensor> {
    tensors
        .iter()
        .map(|t| {
            let leaf = t.detach();
            if leaf.is_floating_point() {
                leaf.set_requires_grad(true)
            } else {
                leaf
            }
        })
        .collect()
}

fn prepared_leaves(prepared: &Prepared) -> Prepared {
    Prepared {
        sent: leaves(&prepared.sent),
        received: leaves(&prepared.received),
    }
}

/// What [`in_chunks`] differentiates.
pub struct ChunkedEnergy<'a> {
    /// The architecture's energy counts `scale` times its normalised output.
    pub scale: f64,
    /// A pair energy in eV added to it.
    pub prior: Option<EdgeEnergy<'a>>,
    /// Learnt pair heads on the node features, in the architecture's normalised units.
    pub heads: &'a [&'a dyn EdgeReadout],
    /// The weight of each atom's energy in the energy the forces derive from, (atoms,); all
    /// ones when `None` (a domain weighs its interior atoms only).
    pub weights: Option<&'a Tensor>,
}

/// A sum over edges run chunk by chunk: `per_chunk(sent, received, chunk)` gives the chunk's
/// per-row sums.
type ChunkSum<'a> = &'a dyn Fn(&[Tensor], &[Tensor], &Edges) -> Vec<Tensor>;

/// The batch's edges in chunks, and the passes over them.
struct Chunks<'a> {
    batch: &'a GraphBatch,
    edges: SortedEdges,
    ranges: Vec<Range<i64>>,
}

impl Chunks<'_> {
    /// Σ over all edges of `per_chunk`, per atom (no gradients kept).
    fn sum(&self, prepared: &Prepared, per_chunk: ChunkSum) -> Vec<Tensor> {
        tch::no_grad(|| {
            let mut sums = RowSums::new(self.batch);
            for range in &self.ranges {
                let chunk = self.edges.chunk(self.batch, range, false);
                let sent = gather(&prepared.sent, &chunk.neighbor);
                let received = gather(&prepared.received, &chunk.center_atoms());
                sums.add(&chunk, &per_chunk(&sent, &received, &chunk));
            }
            sums.finish()
        })
    }

    /// The gradient of Σ⟨sums, weights⟩ (per-atom `weights` of the sums `per_chunk` gives)
    /// with respect to the prepared tensors (scattered back to their atoms), chunk by chunk;
    /// the edge vectors' gradients go to `geometry`. With `sums`, the sums themselves are
    /// added up there as well, for a pass that needs no separate forward one.
    fn backward(
        &self,
        prepared: &Prepared,
        weights: &[Option<Tensor>],
        per_chunk: ChunkSum,
        geometry: &mut GeometryGradient,
        mut sums: Option<&mut RowSums>,
    ) -> Vec<Option<Tensor>> {
        let leaves = prepared_leaves(prepared);
        let totals: Vec<Tensor> = leaves.all().map(Tensor::zeros_like).collect();
        for range in &self.ranges {
            let chunk = self.edges.chunk(self.batch, range, true);
            let centers = chunk.center_atoms();
            let sent = leaves_of_rows(&leaves.sent, &chunk.neighbor);
            let received = leaves_of_rows(&leaves.received, &centers);
            let part = per_chunk(&sent, &received, &chunk);
            if let Some(sums) = sums.as_deref_mut() {
                sums.add(&chunk, &part);
            }
            let rows: Vec<Option<Tensor>> = weights
                .iter()
                .map(|w| w.as_ref().map(|w| w.narrow(0, chunk.first, chunk.rows)))
                .collect();
            let inputs: Vec<&Tensor> = sent.iter().chain(&received).chain([&chunk.vectors]).collect();
            let mut gradients = vjp(&part, &rows, &inputs);
            if let Some(gradient) = gradients.pop().flatten() {
                geometry.add(self.batch, &chunk, &gradient);
            }
            let index =
                std::iter::repeat_n(&chunk.neighbor, sent.len()).chain(std::iter::repeat_n(&centers, received.len()));
            for ((total, g), index) in totals.iter().zip(gradients).zip(index) {
                if let Some(g) = g {
                    let _ = total.shallow_clone().index_add_(0, index, &g);
                }
            }
        }
        totals.into_iter().map(Some).collect()
    }
}

/// The rows of each tensor at `index`, as fresh leaves.
fn leaves_of_rows(tensors: &[Tensor], index: &Tensor) -> Vec<Tensor> {
    leaves(&tch::no_grad(|| gather(tensors, index)))
}

/// Adds the gradients `through` (one per input) to `totals`.
fn add_all(totals: &mut [Option<Tensor>], through: Vec<Option<Tensor>>) {
    for (total, g) in totals.iter_mut().zip(through) {
        accumulate(total, g);
    }
}

/// Energies (and, when `forces`, forces and the virial) of `batch` with at most `chunk_edges`
/// edges' activations alive at a time (see the module doc).
pub fn in_chunks(
    model: &dyn MessageLayers,
    batch: &GraphBatch,
    energy: &ChunkedEnergy,
    forces: bool,
    chunk_edges: i64,
) -> ChunkedOutput {
    let ChunkedEnergy {
        scale,
        prior,
        heads,
        weights,
    } = *energy;
    let ones = Tensor::ones([batch.n_atoms()], (batch.kind(), batch.device()));
    let weights = weights.map_or(ones, Tensor::shallow_clone);
    let edges = SortedEdges::of(batch);
    let ranges = edges.ranges(chunk_edges);
    let chunks = Chunks { batch, edges, ranges };
    let layers = model.layer_count();
    let layer_messages = |layer: usize| {
        move |sent: &[Tensor], received: &[Tensor], chunk: &Edges| {
            let filter = model.filters(chunk, layer..layer + 1).remove(0);
            model.messages(layer, sent, received, chunk, &filter)
        }
    };
    // Forward: per-atom states and message sums only.
    let mut states = vec![tch::no_grad(|| model.embed(batch))];
    let mut sums: Vec<Vec<Tensor>> = Vec::with_capacity(layers);
    for layer in 0..layers {
        let state = states.last().expect("the embedding");
        let prepared = tch::no_grad(|| model.prepare(layer, state));
        let summed = chunks.sum(&prepared, &layer_messages(layer));
        let next = tch::no_grad(|| model.update(layer, state, &summed));
        states.push(next);
        sums.push(summed);
    }
    let mut geometry = GeometryGradient::new(batch);
    // The readout, and the gradient of the energy with respect to every state.
    let state_leaves: Vec<Vec<Tensor>> = states.iter().map(|s| leaves(s)).collect();
    let mut atom_energy = model.readout(&state_leaves);
    let mut state_gradients: Vec<Vec<Option<Tensor>>> = if forces {
        let inputs: Vec<&Tensor> = state_leaves.iter().flatten().collect();
        let mut flat = vjp(&[atom_energy.shallow_clone()], &[Some(&weights * scale)], &inputs).into_iter();
        state_leaves
            .iter()
            .map(|s| s.iter().map(|_| flat.next().flatten()).collect())
            .collect()
    } else {
        Vec::new()
    };
    atom_energy = atom_energy.detach();
    drop(state_leaves);
    for readout in heads {
        let pair_energy = |sent: &[Tensor], received: &[Tensor], chunk: &Edges| {
            vec![chunk.sum_to_centers(&(readout.energy(sent, received, chunk) * 0.5))]
        };
        let last = states.last().expect("the embedding");
        let pairs = if forces {
            let last = leaves(last);
            let prepared = readout.prepare(&model.node_features(&last));
            let mut sums = RowSums::new(batch);
            let weight = [Some(&weights * scale)];
            let through = chunks.backward(&prepared, &weight, &pair_energy, &mut geometry, Some(&mut sums));
            let inputs: Vec<&Tensor> = last.iter().collect();
            let outputs: Vec<Tensor> = prepared.all().map(Tensor::shallow_clone).collect();
            add_all(&mut state_gradients[layers], vjp(&outputs, &through, &inputs));
            sums.finish()
        } else {
            chunks.sum(
                &tch::no_grad(|| readout.prepare(&model.node_features(last))),
                &pair_energy,
            )
        };
        atom_energy += &pairs[0];
    }
    if forces {
        for layer in (0..layers).rev() {
            let later = std::mem::take(&mut state_gradients[layer + 1]);
            if later.iter().all(Option::is_none) {
                continue;
            }
            // Through the update: to the state before and to the message sums.
            let state = leaves(&states[layer]);
            let summed = leaves(&sums[layer]);
            let updated = model.update(layer, &state, &summed);
            let inputs: Vec<&Tensor> = state.iter().chain(&summed).collect();
            let mut through = vjp(&updated, &later, &inputs);
            let sum_gradients = through.split_off(state.len());
            add_all(&mut state_gradients[layer], through);
            if sum_gradients.iter().all(Option::is_none) {
                continue;
            }
            // Through the messages, chunk by chunk, then through the preparation.
            let state = leaves(&states[layer]);
            let prepared = model.prepare(layer, &state);
            let prepared_gradients =
                chunks.backward(&prepared, &sum_gradients, &layer_messages(layer), &mut geometry, None);
            let inputs: Vec<&Tensor> = state.iter().collect();
            let outputs: Vec<Tensor> = prepared.all().map(Tensor::shallow_clone).collect();
            add_all(&mut state_gradients[layer], vjp(&outputs, &prepared_gradients, &inputs));
        }
    }
    let prior_energy = prior.map(|energy_of| {
        let per_chunk =
            |_: &[Tensor], _: &[Tensor], chunk: &Edges| vec![chunk.sum_to_centers(&(energy_of(chunk) * 0.5))];
        if forces {
            let mut sums = RowSums::new(batch);
            let weight = [Some(weights.shallow_clone())];
            chunks.backward(
                &Prepared::default(),
                &weight,
                &per_chunk,
                &mut geometry,
                Some(&mut sums),
            );
            sums.finish().remove(0)
        } else {
            chunks.sum(&Prepared::default(), &per_chunk).remove(0)
        }
    });
    let (forces, virial) = if forces {
        let (f, w) = geometry.finish(batch.kind());
        (Some(f), Some(w))
    } else {
        (None, None)
    };
    ChunkedOutput {
        atom_energy,
        prior_energy,
        forces,
        virial,
    }
}

/// Zeros shaped like `like` but with `rows` rows.
pub fn zeros_with_rows(like: &Tensor, rows: i64) -> Tensor {
    let mut shape = like.size();
    shape[0] = rows;
    Tensor::zeros(shape, (like.kind(), like.device()))
}

/// Per-atom sums built chunk by chunk: each chunk's per-row parts added at its rows.
struct RowSums {
    atoms: i64,
    total: Option<Vec<Tensor>>,
}

impl RowSums {
    fn new(batch: &GraphBatch) -> RowSums {
        RowSums {
            atoms: batch.n_atoms(),
            total: None,
        }
    }

    fn add(&mut self, chunk: &Edges, part: &[Tensor]) {
        let atoms = self.atoms;
        let total = self
            .total
            .get_or_insert_with(|| part.iter().map(|p| zeros_with_rows(p, atoms)).collect());
        tch::no_grad(|| {
            for (t, p) in total.iter_mut().zip(part) {
                let _ = t.narrow(0, chunk.first, chunk.rows).g_add_(&p.detach());
            }
        });
    }

    fn finish(self) -> Vec<Tensor> {
        self.total.expect("at least one range")
    }
}
