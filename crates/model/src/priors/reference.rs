//! Per-element reference energies and the residual scale σ: the normalisation every model
//! has. The network predicts per-atom energies in units of σ around the reference energy of
//! each atom's element (fitted to the training set, `minima_data::AtomRefs`), so that its
//! outputs are of order one whatever the size of the structure; the priors, in eV, are
//! divided by σ before they join them, so that de-normalisation gives them back.

use minima_data::AtomRefs;
use tch::{Device, Kind, Tensor};

use crate::batch::GraphBatch;
use crate::blocks::MAX_Z;
use crate::fields::{Block, Field, Fields};

#[derive(Debug)]
pub struct ReferenceEnergies {
    /// Reference energy by atomic number, eV.
    table: Tensor,
    /// σ, eV.
    scale: f64,
    /// Whether a priors block writes [`Field::PriorEnergy`] before this one.
    with_priors: bool,
}

impl ReferenceEnergies {
    pub fn new(refs: &AtomRefs, with_priors: bool, kind: Kind, device: Device) -> ReferenceEnergies {
        let mut table = vec![0.0; MAX_Z as usize + 1];
        for (&z, &e) in refs.elements.iter().zip(&refs.energies) {
            table[z as usize] = e;
        }
        ReferenceEnergies {
            table: Tensor::from_slice(&table).to_kind(kind).to_device(device),
            scale: refs.scale,
            with_priors,
        }
    }

    /// The network's normalised per-atom energy plus the priors' (eV) over σ.
    pub fn normalized(&self, network: &Tensor, prior: Option<&Tensor>) -> Tensor {
        match prior {
            Some(prior) => network + prior / self.scale,
            None => network.shallow_clone(),
        }
    }

    /// σ·yᵢ + ref[Zᵢ], eV, of the normalised per-atom energies `normalized`.
    pub fn atom_energy(&self, normalized: &Tensor, numbers: &Tensor) -> Tensor {
        normalized * self.scale + self.table.index_select(0, numbers)
    }
}

impl Block for ReferenceEnergies {
    fn name(&self) -> &str {
        "reference_energies"
    }

    fn reads(&self) -> Vec<Field> {
        let mut fields = vec![Field::NetworkEnergy, Field::Numbers, Field::Structure];
        if self.with_priors {
            fields.push(Field::PriorEnergy);
        }
        fields
    }

    fn writes(&self) -> Vec<Field> {
        vec![Field::AtomEnergy, Field::NormalizedEnergy]
    }

    fn apply(&self, batch: &GraphBatch, fields: &mut Fields, _train: bool) {
        let normalized = self.normalized(fields.require(Field::NetworkEnergy), fields.get(Field::PriorEnergy));
        fields.insert(Field::NormalizedEnergy, batch.sum_per_structure(&normalized));
        fields.insert(Field::AtomEnergy, self.atom_energy(&normalized, &batch.numbers));
    }
}

/// Sums the per-atom energies of each structure.
#[derive(Debug)]
pub struct SumPerStructure;

impl Block for SumPerStructure {
    fn name(&self) -> &str {
        "sum_per_structure"
    }

    fn reads(&self) -> Vec<Field> {
        vec![Field::AtomEnergy, Field::Structure]
    }

    fn writes(&self) -> Vec<Field> {
        vec![Field::Energy]
    }

    fn apply(&self, batch: &GraphBatch, fields: &mut Fields, _train: bool) {
        let energy = batch.sum_per_structure(fields.require(Field::AtomEnergy));
        fields.insert(Field::Energy, energy);
    }
}
