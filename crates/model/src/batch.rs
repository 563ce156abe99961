//! [`GraphBatch`]: several graphs concatenated into one, the input of every architecture.

use minima_atoms::cell::{add, sub};
use minima_atoms::Vec3;
use minima_data::Graph;
use std::cell::OnceCell;

use tch::{Device, Kind, Tensor};

/// Atoms of all structures concatenated; `structure[a]` says which structure atom `a` belongs
/// to. Edge endpoints index the concatenated atoms. Edge vectors are computed from
/// `positions`, so forces follow by autograd when `positions` requires grad. Each structure
/// is brought near the origin first (see [`near_origin`]), so the edge vectors do not depend
/// on where it sits, even in f32.
pub struct GraphBatch {
    /// Atomic numbers, (atoms,) int64.
    pub numbers: Tensor,
    /// Cartesian positions, Å, (atoms, 3).
    pub positions: Tensor,
    /// Structure index of each atom, (atoms,) int64.
    pub structure: Tensor,
    pub n_structures: i64,
    /// Atom counts per structure.
    pub sizes: Vec<usize>,
    /// Receiving atom of each edge, (edges,) int64.
    pub center: Tensor,
    /// Sending atom of each edge, (edges,) int64.
    pub neighbor: Tensor,
    /// Lattice translation of the neighbour's image, Å, (edges, 3).
    pub offset: Tensor,
    /// Bond class of each edge (`minima_data::BondClass` as integer), (edges,) int64.
    pub bond: Tensor,
    /// A zero strain ε per structure, (structures, 3, 3), requiring grad, when the stress is
    /// asked for ([`GraphBatch::with_strain`]): every edge vector d becomes d·(1 + sym ε), so
    /// ∂E/∂ε at ε = 0 is the virial, whatever the architecture does with the vectors.
    pub strain: Option<Tensor>,
    /// Edge vectors computed in f64 from the graphs and then converted, (edges, 3), when made
    /// by [`GraphBatch::with_exact_vectors`]: inference in edge chunks differentiates with
    /// respect to them directly, and f64 keeps them free of the rounding f32 positions far
    /// from the origin carry (1e-5 Å at 100 Å), which would otherwise differ between a
    /// structure and its domains.
    pub exact_vectors: Option<Tensor>,
    /// The edge vectors and their lengths, computed once (as NequIP's `with_edge_vectors`):
    /// the architecture and its priors read the same tensors. `positions` and `strain` are
    /// set when the batch is made and never after.
    geometry: OnceCell<(Tensor, Tensor)>,
}

impl GraphBatch {
    /// Concatenates `graphs`; positions get `requires_grad` when `with_grad` (for forces).
    pub fn new(graphs: &[&Graph], kind: Kind, device: Device, with_grad: bool) -> GraphBatch {
        let mut numbers = Vec::new();
        let mut positions = Vec::new();
        let mut structure = Vec::new();
        let (mut center, mut neighbor, mut offset, mut bond) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut start = 0i64;
        for (s, graph) in graphs.iter().enumerate() {
            let (local_positions, local_offsets) = near_origin(graph);
            numbers.extend(graph.numbers.iter().map(|&z| z as i64));
            positions.extend(local_positions.iter().flatten());
            structure.extend(std::iter::repeat_n(s as i64, graph.len()));
            center.extend(graph.center.iter().map(|&i| start + i as i64));
            neighbor.extend(graph.neighbor.iter().map(|&j| start + j as i64));
            offset.extend(local_offsets.iter().flatten());
            bond.extend(graph.bond.iter().map(|&b| b as i64));
            start += graph.len() as i64;
        }
        let floats = |values: &[f64]| Tensor::from_slice(values).view([-1, 3]).to_kind(kind).to_device(device);
        let ints = |values: &[i64]| Tensor::from_slice(values).to_device(device);
        GraphBatch {
            numbers: ints(&numbers),
            positions: floats(&positions).set_requires_grad(with_grad),
            structure: ints(&structure),
            n_structures: graphs.len() as i64,
            sizes: graphs.iter().map(|g| g.len()).collect(),
            center: ints(&center),
            neighbor: ints(&neighbor),
            offset: floats(&offset),
            bond: ints(&bond),
            strain: None,
            exact_vectors: None,
            geometry: OnceCell::new(),
        }
    }

    /// This batch (of `graphs`, as made by [`GraphBatch::new`]) with its
    /// [`GraphBatch::exact_vectors`].
    pub fn with_exact_vectors(mut self, graphs: &[&Graph]) -> GraphBatch {
        let mut vectors = Vec::with_capacity(3 * self.center.size()[0] as usize);
        for graph in graphs {
            for (e, offset) in graph.offset.iter().enumerate() {
                let (i, j) = (graph.center[e] as usize, graph.neighbor[e] as usize);
                vectors.extend(sub(add(graph.positions[j], *offset), graph.positions[i]));
            }
        }
        let vectors = Tensor::from_slice(&vectors).view([-1, 3]);
        self.exact_vectors = Some(vectors.to_kind(self.kind()).to_device(self.device()));
        self
    }

    /// The same batch (its tensors shared) with atomic numbers `numbers` (masked atoms, say).
    pub fn with_numbers(&self, numbers: &Tensor) -> GraphBatch {
        GraphBatch {
            numbers: numbers.shallow_clone(),
            positions: self.positions.shallow_clone(),
            structure: self.structure.shallow_clone(),
            n_structures: self.n_structures,
            sizes: self.sizes.clone(),
            center: self.center.shallow_clone(),
            neighbor: self.neighbor.shallow_clone(),
            offset: self.offset.shallow_clone(),
            bond: self.bond.shallow_clone(),
            strain: self.strain.as_ref().map(Tensor::shallow_clone),
            exact_vectors: self.exact_vectors.as_ref().map(Tensor::shallow_clone),
            geometry: OnceCell::new(),
        }
    }

    /// This batch with a zero strain to differentiate the energy by (for the stress).
    pub fn with_strain(mut self) -> GraphBatch {
        let zero = Tensor::zeros([self.n_structures, 3, 3], (self.kind(), self.device()));
        self.strain = Some(zero.set_requires_grad(true));
        self.geometry = OnceCell::new();
        self
    }

    pub fn kind(&self) -> Kind {
        self.positions.kind()
    }

    pub fn device(&self) -> Device {
        self.positions.device()
    }

    pub fn n_atoms(&self) -> i64 {
        self.numbers.size()[0]
    }

    /// r_neighbor + offset − r_center, (edges, 3), strained when the batch carries a strain.
    pub fn edge_vectors(&self) -> Tensor {
        self.geometry().0.shallow_clone()
    }

    /// |r_neighbor + offset − r_center|, (edges,).
    pub fn edge_distance(&self) -> Tensor {
        self.geometry().1.shallow_clone()
    }

    fn geometry(&self) -> &(Tensor, Tensor) {
        self.geometry.get_or_init(|| {
            let vectors = self.strained_vectors();
            let distance = vectors.norm_scalaropt_dim(2, [-1], false);
            (vectors, distance)
        })
    }

    fn strained_vectors(&self) -> Tensor {
        let vectors = self.positions.index_select(0, &self.neighbor) + &self.offset
            - self.positions.index_select(0, &self.center);
        match &self.strain {
            None => vectors,
            Some(strain) => {
                // The symmetric part only: a rotation does not change the energy, so the
                // antisymmetric part carries no stress.
                let symmetric = (strain + strain.transpose(1, 2)) * 0.5;
                let per_edge = symmetric.index_select(0, &self.structure.index_select(0, &self.center));
                &vectors + vectors.unsqueeze(1).bmm(&per_edge).squeeze_dim(1)
            }
        }
    }

    /// Sums per-atom rows into per-structure rows: (atoms, …) → (structures, …).
    pub fn sum_per_structure(&self, per_atom: &Tensor) -> Tensor {
        crate::message_layers::zeros_with_rows(per_atom, self.n_structures).index_add(0, &self.structure, per_atom)
    }

    /// Averages per-atom rows per structure.
    pub fn mean_per_structure(&self, per_atom: &Tensor) -> Tensor {
        let sizes: Vec<f64> = self.sizes.iter().map(|&n| n.max(1) as f64).collect();
        let sizes = Tensor::from_slice(&sizes)
            .to_kind(per_atom.kind())
            .to_device(per_atom.device());
        let mut shape = vec![-1i64];
        shape.extend(std::iter::repeat_n(1, per_atom.dim() - 1));
        self.sum_per_structure(per_atom) / sizes.view(shape.as_slice())
    }
}

/// The positions and edge offsets of `graph` moved near the origin, in f64 before any
/// conversion to the model's dtype: along periodic axes each atom is wrapped into the cell
/// (the offsets of its edges take up the lattice translation), then the structure is shifted
/// to put its first atom at the origin. Far from the origin f32 keeps too few digits of a
/// position for the edge vectors (at 1e6 Å, 0.06 Å); here every edge vector is the same as
/// the graph's to f64 rounding. Each atom moves by a constant, so forces by autograd are
/// unchanged.
fn near_origin(graph: &Graph) -> (Vec<Vec3>, Vec<Vec3>) {
    let mut positions = graph.positions.clone();
    let mut offsets = graph.offset.clone();
    if let Some(cell) = graph.cell.filter(|_| graph.pbc.iter().any(|&p| p)) {
        // r = wrapped + t: the edge r_j + offset − r_i is wrapped_j + (offset + t_j − t_i) − wrapped_i.
        let translations: Vec<Vec3> = positions
            .iter()
            .map(|&r| cell.shift(cell.wrap(r, graph.pbc).1))
            .collect();
        for (r, t) in positions.iter_mut().zip(&translations) {
            *r = sub(*r, *t);
        }
        for (e, offset) in offsets.iter_mut().enumerate() {
            let (i, j) = (graph.center[e] as usize, graph.neighbor[e] as usize);
            *offset = add(*offset, sub(translations[j], translations[i]));
        }
    }
    if let Some(&origin) = positions.first() {
        for r in &mut positions {
            *r = sub(*r, origin);
        }
    }
    (positions, offsets)
}
