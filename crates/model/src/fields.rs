//! Named fields and the blocks that read and write them (after NequIP's field registry).
//!
//! A model is an ordered list of blocks over one batch: the architecture, then its priors,
//! the per-element reference energies, the sum per structure, then the autograd wrapper that
//! turns the energy into forces and the virial ([`crate::Potential::predict`]). Every block
//! declares the [`Field`]s it reads and writes; building a model checks that each field read
//! is an input of the batch or written by an earlier block, and names both when not
//! ([`check_order`]). Loss terms declare the fields they read the same way, so "this loss
//! reads a field no block writes" is one check for all of them.

use std::collections::BTreeMap;

use tch::Tensor;

use crate::batch::GraphBatch;
use crate::ModelError;

/// Every field a block may read or write, with its shape and unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// Cartesian positions, Å, (atoms, 3); an input.
    Positions,
    /// Atomic numbers, (atoms,) int64; an input.
    Numbers,
    /// Structure index of each atom, (atoms,) int64; an input.
    Structure,
    /// Receiving and sending atom of each edge, (edges,) int64 each; an input.
    EdgeIndex,
    /// r_neighbor + offset − r_center, Å, (edges, 3), strained when the batch carries a
    /// strain; an input (computed from the positions, so forces follow by autograd).
    EdgeVectors,
    /// Bond class of each edge (`minima_data::BondClass`), (edges,) int64; an input.
    BondClass,
    /// The architecture's final per-atom invariant features, (atoms, F): what a learnt pair
    /// head reads.
    NodeFeatures,
    /// The architecture's per-atom energy in units of the residual scale σ, (atoms,); learnt
    /// heads add their shares to it.
    NetworkEnergy,
    /// The priors' per-atom energy, eV, (atoms,): half of each of the atom's pair terms.
    PriorEnergy,
    /// Per-atom energy, eV, (atoms,): the network's σ·yᵢ plus the priors' shares and the
    /// element's reference energy; the atoms of a structure sum to its energy.
    AtomEnergy,
    /// Total energy per structure, eV, (structures,).
    Energy,
    /// (E − Σ ref)/σ per structure: what the energy term is fitted to, (structures,).
    NormalizedEnergy,
    /// −∂E/∂r, eV/Å, (atoms, 3).
    Forces,
    /// ∂E/∂ε, eV, (structures, 3, 3); the stress is this over the cell volume.
    Virial,
    /// VIMPNN's auxiliary head: atoms of each model element, (structures, elements).
    AuxCounts,
    /// VIMPNN's auxiliary head: valence orbitals of each model element, (structures, elements).
    AuxOrbitals,
    /// VIMPNN's auxiliary head: a distribution over the scale grid, (structures, points).
    AuxScale,
    /// A pair head's terms ([`crate::priors::coulomb_lj`]): the edge index of each term, (pairs,) int64 (both
    /// directions of a pair appear, each carrying the same β).
    PairEdge,
    /// β0..β4 per pair term, (pairs, 5): β0 the charge product, β1 and β2 in eV, β3 the
    /// exponent, β4 the distance in Å.
    PairBeta,
    /// E_ij per pair term, eV, (pairs,); a structure's pair energy is half their sum.
    PairEnergy,
    /// ∂E_ij/∂d of the unswitched pair formula, eV/Å, (pairs,): zero at the pair's minimum.
    PairSlope,
}

impl Field {
    /// The fields a batch provides before any block runs.
    pub const INPUTS: [Field; 6] = [
        Field::Positions,
        Field::Numbers,
        Field::Structure,
        Field::EdgeIndex,
        Field::EdgeVectors,
        Field::BondClass,
    ];

    /// The inputs a message-passing network over the batch's graph reads.
    pub const GRAPH: [Field; 5] = [
        Field::Numbers,
        Field::Structure,
        Field::EdgeIndex,
        Field::EdgeVectors,
        Field::BondClass,
    ];

    /// The field's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Field::Positions => "positions",
            Field::Numbers => "numbers",
            Field::Structure => "structure",
            Field::EdgeIndex => "edge_index",
            Field::EdgeVectors => "edge_vectors",
            Field::BondClass => "bond_class",
            Field::NodeFeatures => "node_features",
            Field::NetworkEnergy => "network_energy",
            Field::PriorEnergy => "prior_energy",
            Field::AtomEnergy => "atom_energy",
            Field::Energy => "energy",
            Field::NormalizedEnergy => "normalized_energy",
            Field::Forces => "forces",
            Field::Virial => "virial",
            Field::AuxCounts => "aux_counts",
            Field::AuxOrbitals => "aux_orbitals",
            Field::AuxScale => "aux_scale",
            Field::PairEdge => "pair_edge",
            Field::PairBeta => "pair_beta",
            Field::PairEnergy => "pair_energy",
            Field::PairSlope => "pair_slope",
        }
    }
}

/// The fields blocks have written for one batch (the batch itself holds the inputs).
#[derive(Default)]
pub struct Fields(BTreeMap<Field, Tensor>);

impl Fields {
    pub fn insert(&mut self, field: Field, tensor: Tensor) {
        self.0.insert(field, tensor);
    }

    pub fn get(&self, field: Field) -> Option<&Tensor> {
        self.0.get(&field)
    }

    pub fn take(&mut self, field: Field) -> Option<Tensor> {
        self.0.remove(&field)
    }

    /// A field an earlier block must have written ([`check_order`] makes sure it did).
    pub fn require(&self, field: Field) -> &Tensor {
        self.get(field)
            .unwrap_or_else(|| panic!("{} was not written before it was read", field.name()))
    }

    pub fn contains(&self, field: Field) -> bool {
        self.0.contains_key(&field)
    }
}

/// One step of a model: a function of the batch and the fields written before it.
pub trait Block: Send {
    fn name(&self) -> &str;
    fn reads(&self) -> Vec<Field>;
    fn writes(&self) -> Vec<Field>;
    /// Writes [`Block::writes`] into `fields`; `train` is true while training (blocks with
    /// training-only outputs or stochastic parts use it).
    fn apply(&self, batch: &GraphBatch, fields: &mut Fields, train: bool);
}

/// Checks that every field each block reads is an input or written by an earlier block, in
/// the order given; the error names the block, the field and what was available.
pub fn check_order<'a>(blocks: impl IntoIterator<Item = &'a dyn Block>) -> Result<(), ModelError> {
    let mut available: Vec<Field> = Field::INPUTS.to_vec();
    for block in blocks {
        if let Some(missing) = block.reads().into_iter().find(|f| !available.contains(f)) {
            let names: Vec<&str> = available.iter().map(|f| f.name()).collect();
            return Err(ModelError::Config(format!(
                "block `{}` reads {}, which neither the batch nor any block before it writes (available: {})",
                block.name(),
                missing.name(),
                names.join(", ")
            )));
        }
        available.extend(block.writes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Step(&'static str, Vec<Field>, Vec<Field>);

    impl Block for Step {
        fn name(&self) -> &str {
            self.0
        }
        fn reads(&self) -> Vec<Field> {
            self.1.clone()
        }
        fn writes(&self) -> Vec<Field> {
            self.2.clone()
        }
        fn apply(&self, _: &GraphBatch, _: &mut Fields, _: bool) {}
    }

    #[test]
    fn a_block_reading_a_field_written_only_after_it_is_named() {
        let network = Step("network", vec![Field::EdgeVectors], vec![Field::NetworkEnergy]);
        let sum = Step("sum", vec![Field::AtomEnergy], vec![Field::Energy]);
        let references = Step("references", vec![Field::NetworkEnergy], vec![Field::AtomEnergy]);
        fn blocks(order: [&Step; 3]) -> [&dyn Block; 3] {
            order.map(|s| s as &dyn Block)
        }
        assert!(check_order(blocks([&network, &references, &sum])).is_ok());
        let error = check_order(blocks([&network, &sum, &references]))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("block `sum` reads atom_energy, which neither the batch nor any block"),
            "{error}"
        );
        assert!(
            error.contains("network_energy") && !error.contains("available: atom_energy"),
            "{error}"
        );
    }
}
