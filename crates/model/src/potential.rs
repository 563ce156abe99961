//! [`Potential`]: an architecture with its normalisation, giving energies in eV, per-atom
//! contributions and autograd forces; saved as a checkpoint pair `NAME.safetensors` (the
//! parameters) + `NAME.toml` (the model configuration and normalisation that rebuild it).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use minima_data::{AtomRefs, Graph};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::batch::GraphBatch;
use crate::config::ModelConfig;
use crate::fields::{self, Block, Field, Fields};
use crate::priors::reference::{ReferenceEnergies, SumPerStructure};
use crate::priors::{PriorContext, Priors};
use crate::{Architecture, ModelError};

/// What a checkpoint's TOML holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointMeta {
    /// SHA-256 of the `.safetensors` file, hex; checked on loading. Checkpoints written before
    /// it was recorded have none and load unchecked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(serialize_with = "ModelConfig::serialize_own_keys")]
    model: ModelConfig,
    normalization: AtomRefs,
}

pub struct Potential {
    pub config: ModelConfig,
    pub refs: AtomRefs,
    vs: nn::VarStore,
    /// The blocks, in order: the architecture, the priors (when there are any), the reference
    /// energies, the sum per structure ([`Potential::blocks`]).
    architecture: Box<dyn Architecture>,
    priors: Priors,
    references: ReferenceEnergies,
}

/// What [`Potential::predict`] computes, and for what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Energies, for inference.
    Energy,
    /// Energies and forces (and the virial), for inference.
    Forces,
    /// Training: the architecture's training-time outputs (auxiliary heads, stochastic parts),
    /// and with `forces` forces that stay differentiable (`create_graph`), so that a loss on
    /// them trains the weights.
    Training { forces: bool },
}

impl Mode {
    /// Whether forces (and the virial) are asked for.
    pub fn forces(self) -> bool {
        match self {
            Mode::Energy => false,
            Mode::Forces => true,
            Mode::Training { forces } => forces,
        }
    }
}

/// Predictions for a batch.
pub struct Prediction {
    /// Total energy per structure, eV, (structures,).
    pub energy: Tensor,
    /// Per-atom contributions σ·yᵢ + ref[Zᵢ], eV, (atoms,); they sum to `energy`.
    pub atom_energy: Tensor,
    /// (E − Σ ref)/σ per structure: the architecture's output summed, plus the priors / σ.
    pub normalized_energy: Tensor,
    /// −∂E/∂r, eV/Å, (atoms, 3), when asked for.
    pub forces: Option<Tensor>,
    /// ∂E/∂ε, eV, (structures, 3, 3), with the forces when the batch carries a strain: the
    /// stress (ASE's sign) is this over the cell volume.
    pub virial: Option<Tensor>,
    /// Every other field the blocks wrote: the auxiliary heads in training, a physics head's
    /// pair terms, the network's and the priors' shares ([`Field`]).
    pub outputs: Fields,
}

/// libtorch's random generator is one per process: initialisation holds this lock from
/// seeding to the last parameter, so that models built concurrently (tests, library callers)
/// each get the weights their seed gives.
static INITIALISATION: Mutex<()> = Mutex::new(());

impl Potential {
    /// A freshly initialised model, its weights drawn from `seed`. `config.elements` must list
    /// every element it will see.
    pub fn new(config: ModelConfig, refs: AtomRefs, device: Device, seed: u64) -> Result<Potential, ModelError> {
        config.validate()?;
        if let Some(z) = config.elements.iter().find(|&&z| refs.energy_of(z).is_none()) {
            return Err(ModelError::Config(format!("no reference energy for element Z={z}")));
        }
        // Parameters are drawn in f32 and then converted: the f32 copy and the converted one
        // coexist for an f64 model.
        let parameters = config.parameter_count();
        let bytes = parameters * (4 + config.dtype_bytes());
        crate::check_memory(
            &format!("a {:?} model of {parameters} parameters", config.kind),
            bytes,
            config.kind.size_keys(),
        )?;
        let mut vs = nn::VarStore::new(device);
        let root = vs.root();
        let architecture: Box<dyn Architecture> = {
            let _seeded = INITIALISATION.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            tch::manual_seed(seed as i64);
            crate::guard("building the model", || -> Result<Box<dyn Architecture>, ModelError> {
                let spec = config.kind.spec();
                spec.build(&root / spec.name(), &config)
            })??
        };
        let kind = config.dtype.kind();
        let priors = {
            let _seeded = INITIALISATION.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            tch::manual_seed(seed as i64 + 1);
            let context = PriorContext {
                path: root.clone(),
                width: config.node_feature_width(),
                cutoff: config.cutoff,
                scale: refs.scale,
                kind,
                device,
            };
            crate::guard("building the priors", || Priors::new(&config.priors, &context))?
        };
        crate::guard("converting the model's parameters", || vs.set_kind(kind))?;
        let references = ReferenceEnergies::new(&refs, !priors.pairs.is_empty(), kind, device);
        let potential = Potential {
            config,
            refs,
            vs,
            architecture,
            priors,
            references,
        };
        fields::check_order(potential.blocks())?;
        Ok(potential)
    }

    /// The model's blocks in the order they run.
    pub fn blocks(&self) -> Vec<&dyn Block> {
        let mut blocks: Vec<&dyn Block> = vec![self.architecture.as_ref()];
        blocks.extend(self.priors.blocks());
        blocks.extend([&self.references as &dyn Block, &SumPerStructure]);
        blocks
    }

    /// Every field the model writes with `mode` (forces and the virial are the autograd
    /// wrapper's, with forces).
    pub fn writes(&self, mode: Mode) -> Vec<Field> {
        let mut fields: Vec<Field> = self.blocks().iter().flat_map(|b| b.writes()).collect();
        if mode.forces() {
            fields.extend([Field::Forces, Field::Virial]);
        }
        fields
    }

    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    pub fn kind(&self) -> Kind {
        self.config.dtype.kind()
    }

    /// Checks that the model knows every element of `graph` (frame `frame` in messages).
    pub fn check_elements(&self, graph: &Graph, frame: usize) -> Result<(), ModelError> {
        self.check_numbers(&graph.numbers, frame)
    }

    /// Checks that the model knows every element of `numbers` (frame `frame` in messages).
    pub fn check_numbers(&self, numbers: &[u8], frame: usize) -> Result<(), ModelError> {
        match numbers.iter().find(|z| self.config.elements.binary_search(z).is_err()) {
            None => Ok(()),
            Some(&z) => Err(ModelError::UnknownElement {
                element: symbol(z),
                known: self
                    .config
                    .elements
                    .iter()
                    .map(|&z| symbol(z))
                    .collect::<Vec<_>>()
                    .join(","),
                frame,
            }),
        }
    }

    /// The batch of `graphs` on this model's device and dtype.
    pub fn batch(&self, graphs: &[&Graph], with_grad: bool) -> GraphBatch {
        GraphBatch::new(graphs, self.kind(), self.device(), with_grad)
    }

    /// Energies, and the derivatives `mode` asks for (the batch's positions must then require
    /// grad; the virial comes with the forces when the batch carries a strain).
    pub fn predict(&self, batch: &GraphBatch, mode: Mode) -> Prediction {
        let (forces, train) = (mode.forces(), matches!(mode, Mode::Training { .. }));
        // Forces trained through stay differentiable.
        let create_graph = forces && train;
        let mut outputs = Fields::default();
        for block in self.blocks() {
            block.apply(batch, &mut outputs, train);
        }
        let energy = outputs.take(Field::Energy).expect("the last block writes the energy");
        let (forces, virial) = if forces {
            let mut inputs = vec![&batch.positions];
            inputs.extend(&batch.strain);
            let mut gradient =
                Tensor::run_backward(&[energy.sum(energy.kind())], &inputs, true, create_graph).into_iter();
            let forces = -gradient.next().expect("a gradient per input");
            (Some(forces), gradient.next())
        } else {
            (None, None)
        };
        Prediction {
            atom_energy: outputs
                .take(Field::AtomEnergy)
                .expect("written by the reference energies"),
            normalized_energy: outputs
                .take(Field::NormalizedEnergy)
                .expect("written by the reference energies"),
            energy,
            forces,
            virial,
            outputs,
        }
    }

    /// How far the energy of an atom reaches, Å: the model's layers times its cutoff; `None`
    /// when it reaches every atom (the transformer's [CLS] token, all-pairs graphs).
    pub fn receptive_field(&self) -> Option<f64> {
        let layers = self.architecture.message_layers();
        if !layers.is_local() {
            return None;
        }
        Some(layers.layer_count() as f64 * self.config.cutoff?)
    }

    /// What [`Potential::predict`] gives for inference (no auxiliary outputs, forces not
    /// differentiable), computed with at most `chunk_edges` edges' activations alive at a time
    /// (see [`crate::message_layers`]); the virial comes with the forces, for every structure.
    pub fn predict_in_chunks(&self, batch: &GraphBatch, forces: bool, chunk_edges: i64) -> Prediction {
        self.predict_weighted_in_chunks(batch, None, forces, chunk_edges)
    }

    /// [`Potential::predict_in_chunks`] with the forces and virial those of Σᵢ wᵢEᵢ, `weights`
    /// (atoms,) the wᵢ (a domain's interior atoms weigh 1, its halo 0).
    pub fn predict_weighted_in_chunks(
        &self,
        batch: &GraphBatch,
        weights: Option<&Tensor>,
        forces: bool,
        chunk_edges: i64,
    ) -> Prediction {
        let layers = self.architecture.message_layers();
        let priors = |edges: &crate::message_layers::Edges| {
            self.priors
                .pairs
                .edge_energy(edges, &batch.numbers)
                .expect("called only when there are priors")
        };
        let heads: Vec<&dyn crate::message_layers::EdgeReadout> =
            self.priors.heads.iter().map(|h| h.as_readout()).collect();
        let energy = crate::message_layers::ChunkedEnergy {
            scale: self.refs.scale,
            prior: (!self.priors.pairs.is_empty()).then_some(&priors as crate::message_layers::EdgeEnergy),
            heads: &heads,
            weights,
        };
        let out = crate::message_layers::in_chunks(layers, batch, &energy, forces, chunk_edges);
        let normalized = self.references.normalized(&out.atom_energy, out.prior_energy.as_ref());
        let atom_energy = self.references.atom_energy(&normalized, &batch.numbers);
        Prediction {
            energy: batch.sum_per_structure(&atom_energy),
            normalized_energy: batch.sum_per_structure(&normalized),
            atom_energy,
            forces: out.forces,
            virial: out.virial,
            outputs: Fields::default(),
        }
    }

    /// Masked atomic modelling logits (see [`Architecture::masked_atom_logits`]); `None` for
    /// models without the head.
    pub fn masked_atom_logits(&self, batch: &GraphBatch, mask: &Tensor) -> Option<Tensor> {
        self.architecture.masked_atom_logits(batch, mask)
    }

    /// Writes `path` (`.safetensors`) and its TOML beside it (with the weights' SHA-256), each
    /// atomically; on failure no temporary file is left behind.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let named: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        write_tensors_then(path, &named, |sha256| self.save_meta(path, Some(sha256)))
    }

    /// Writes the TOML of the checkpoint `path` (its model and normalisation), recording
    /// `sha256` as the hash its weights must have.
    pub fn save_meta(&self, path: &Path, sha256: Option<&str>) -> Result<(), ModelError> {
        let meta = CheckpointMeta {
            sha256: sha256.map(str::to_string),
            model: self.config.clone(),
            normalization: self.refs.clone(),
        };
        let text = toml::to_string(&meta).map_err(|e| ModelError::Config(e.to_string()))?;
        let meta_file = meta_path(path);
        minima_io::write_atomic(&meta_file, |w| std::io::Write::write_all(w, text.as_bytes()))
            .map_err(|e| checkpoint_error(&meta_file, e))
    }

    /// Loads a checkpoint written by [`Potential::save`], checking its weights against the
    /// hash its TOML records (checkpoints written before hashes were recorded load unchecked).
    pub fn load(path: &Path, device: Device) -> Result<Potential, ModelError> {
        Potential::load_from(path, &meta_path(path), None, device)
    }

    /// The model of the checkpoint TOML `meta_file` with the weights of `weights`, which must
    /// hash to `sha256` when given, else to the hash the TOML records, if any.
    pub fn load_from(
        weights: &Path,
        meta_file: &Path,
        sha256: Option<&str>,
        device: Device,
    ) -> Result<Potential, ModelError> {
        let fail = |message: String| ModelError::Checkpoint {
            path: meta_file.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(meta_file).map_err(|e| fail(e.to_string()))?;
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        // Checkpoints written before `[train.loss]` carry the auxiliary loss weight, a
        // training setting that has no bearing on the model.
        if let Some(aux) = table
            .get_mut("model")
            .and_then(|m| m.get_mut("aux"))
            .and_then(toml::Value::as_table_mut)
        {
            aux.remove("weight");
        }
        // Checkpoints written before `[[model.priors]]` carry `[model.zbl]`.
        if let Some(model) = table.get_mut("model").and_then(toml::Value::as_table_mut) {
            crate::priors::migrate_legacy(model);
        }
        let meta: CheckpointMeta = toml::Value::Table(table).try_into().map_err(|e| fail(e.to_string()))?;
        if let Some(expected) = sha256.or(meta.sha256.as_deref()) {
            let actual = sha256_file(weights).map_err(|e| checkpoint_error(weights, e))?;
            if actual != expected {
                return Err(ModelError::Checkpoint {
                    path: weights.display().to_string(),
                    message: format!(
                        "the weights do not match their recorded SHA-256 (expected {expected}, found {actual}): the file is damaged or was replaced; retrain or restore it from a copy"
                    ),
                });
            }
        }
        // The initial weights are overwritten by the checkpoint's; any seed will do.
        let mut potential = Potential::new(meta.model, meta.normalization, device, 0)?;
        potential
            .load_weights(weights)
            .map_err(|message| ModelError::Checkpoint {
                path: weights.display().to_string(),
                message,
            })?;
        Ok(potential)
    }

    /// The name a parameter saved as `name` has now: a transformer's pair head saved before it
    /// became a prior ([`crate::priors::LEGACY_HEAD_PREFIX`], also inside the names of the
    /// optimiser's moments) is the model's coulomb_lj prior.
    pub fn current_name(&self, name: &str) -> String {
        let head = self
            .config
            .priors
            .iter()
            .position(|p| matches!(p, crate::priors::PriorConfig::CoulombLj(_)));
        match head {
            Some(index) => name.replacen(crate::priors::LEGACY_HEAD_PREFIX, &Priors::prefix(index), 1),
            None => name.to_string(),
        }
    }

    /// Copies the parameters of `weights` into the model (a run's last checkpoint holds the
    /// optimiser's state beside them, which is left to the trainer). A transformer's pair head saved
    /// before it became a prior is found under its old name
    /// ([`crate::priors::LEGACY_HEAD_PREFIX`]).
    fn load_weights(&mut self, weights: &Path) -> Result<(), String> {
        let saved = Tensor::read_safetensors(weights).map_err(|e| e.to_string())?;
        let mut saved: std::collections::HashMap<String, Tensor> = saved
            .into_iter()
            .map(|(name, tensor)| (self.current_name(&name), tensor))
            .collect();
        let mut variables = self.vs.variables();
        let mut names: Vec<&String> = variables.keys().collect();
        names.sort();
        if let Some(name) = names.into_iter().find(|n| !saved.contains_key(*n)) {
            return Err(format!(
                "the file holds no parameter {name}: it is not this model's checkpoint"
            ));
        }
        for (name, variable) in variables.iter_mut() {
            let value = saved.remove(name).expect("checked above");
            if value.size() != variable.size() {
                return Err(format!(
                    "parameter {name} has shape {:?} in the file, {:?} in the model",
                    value.size(),
                    variable.size()
                ));
            }
            tch::no_grad(|| variable.copy_(&value));
        }
        Ok(())
    }
}

/// Writes `tensors` to `path` atomically: to a temporary sibling, then `before_commit` with its
/// SHA-256 (hex), then the rename. A failure anywhere removes the temporary and leaves `path`
/// as it was.
pub fn write_tensors_then(
    path: &Path,
    tensors: &[(String, Tensor)],
    before_commit: impl FnOnce(&str) -> Result<(), ModelError>,
) -> Result<(), ModelError> {
    // tch picks the format by extension.
    let sibling = minima_io::temporary_sibling(path);
    let tmp = sibling.with_file_name(format!(
        "{}.safetensors",
        sibling.file_name().unwrap_or_default().to_string_lossy()
    ));
    let result = (|| {
        Tensor::write_safetensors(tensors, &tmp).map_err(|e| ModelError::Checkpoint {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let sha256 = sha256_file(&tmp).map_err(|e| checkpoint_error(path, e))?;
        before_commit(&sha256)?;
        minima_io::commit(&tmp, path).map_err(|e| checkpoint_error(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// SHA-256 of the file `path`, lower-case hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn checkpoint_error(path: &Path, e: std::io::Error) -> ModelError {
    ModelError::Checkpoint {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// `model.safetensors` → `model.toml`.
pub fn meta_path(path: &Path) -> PathBuf {
    path.with_extension("toml")
}

fn symbol(z: u8) -> String {
    minima_atoms::element::by_number(z).map_or_else(|| format!("Z={z}"), |e| e.symbol.to_string())
}
