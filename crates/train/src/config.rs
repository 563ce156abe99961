//! The run configuration: one TOML file, overridable from the command line with
//! `--set key.path=value`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use minima_model::ModelConfig;
use serde::{Deserialize, Serialize};

use crate::loss::{term, LossTerm, Needs, TERMS};

/// `[data]`: either `file` (one path or a list, read one after the other) split by base
/// structure with `split` fractions, or explicit `train`/`validation`/`test` files. Paths are
/// relative to the working directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub file: Option<DataFiles>,
    /// Train, validation, test fractions of the base structures (paper: 0.8/0.1/0.1 for QM9,
    /// 0.6/0.2/0.2 for crystal growth).
    pub split: [f64; 3],
    pub train: Option<PathBuf>,
    pub validation: Option<PathBuf>,
    pub test: Option<PathBuf>,
    /// Use only the first N frames of each file (quick runs); absent: all.
    pub limit: Option<usize>,
    /// Seeds the split; absent: `train.seed`. A committee's members share their split.
    pub split_seed: Option<u64>,
}

/// `file = "a.extxyz"` or `file = ["a.extxyz", "b.extxyz"]`: the frames of a list are taken
/// as one set, in order, so that a split keeps each base structure's frames together across
/// the files (the scans of a molecule in one, its normal-mode samples in another).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DataFiles {
    One(PathBuf),
    Several(Vec<PathBuf>),
}

impl DataFiles {
    pub fn paths(&self) -> &[PathBuf] {
        match self {
            DataFiles::One(path) => std::slice::from_ref(path),
            DataFiles::Several(paths) => paths,
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            file: None,
            split: [0.8, 0.1, 0.1],
            train: None,
            validation: None,
            test: None,
            limit: None,
            split_seed: None,
        }
    }
}

/// What a training budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Clock {
    #[default]
    Wall,
    Cpu,
}

/// `[train]`, defaults from the VIMPNN paper's appendix A.3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Folder for the learning curve and checkpoints.
    pub output: PathBuf,
    pub max_epochs: usize,
    /// Stop after the first epoch that ends past this many minutes of training (summed over
    /// the sittings of a resumed run); absent: no time limit. Recipes that must end in a
    /// budget set it.
    pub max_minutes: Option<f64>,
    /// What `max_minutes` (and the `lr_final` schedule) count: `wall` time, or the process's
    /// `cpu` time over all its threads. A budget of CPU time holds when other work shares the
    /// machine, so runs trained side by side, or while something else runs, get the same
    /// compute.
    pub clock: Clock,
    /// Structures per batch (paper: 20, 5 for crystal growth).
    pub batch_size: usize,
    /// Adam's learning rate (paper: 1e-4).
    pub learning_rate: f64,
    /// Learning-rate factor on a validation plateau (paper: 0.6).
    pub lr_decay: f64,
    /// With `max_minutes`: the rate decays exponentially from `learning_rate` to this over the
    /// time budget (set after each epoch from the minutes trained), in place of the decay on a
    /// plateau: a run cut by time then ends at a small rate, where a plateau schedule may not
    /// have decayed at all. Absent: decay on a plateau.
    pub lr_final: Option<f64>,
    /// Epochs without validation improvement before the rate decays (not in the paper;
    /// PyTorch's `ReduceLROnPlateau` default).
    pub lr_patience: usize,
    /// Stop after this many epochs without validation improvement (paper: 50).
    pub early_stop: usize,
    /// F₀ (eV/Å) of the force term: each atom's squared force error is weighted by
    /// 1 / (1 + |F_ref|²/F₀²) and the term is the weighted mean, as if a label's uncertainty
    /// grew with the force (GAP's force σ proportional to |F|). Errors are then absolute below
    /// F₀ and relative above it, so the compressed scan frames (tens of eV/Å) no longer
    /// outweigh the near-equilibrium forces that decide where a relaxation stops. Absent:
    /// every component counts the same.
    pub force_scale: Option<f64>,
    /// The least force constant (eV/Å²) the `minimum_shift` term divides a force error by:
    /// softer modes (nearly free rotors, where the linear response overstates a shift that
    /// the periodic potential bounds) count as this stiff. 0.05 eV/Å² lets a 0.01 eV/Å error
    /// move a mode by at most 0.2 Å.
    pub soft_mode_floor: f64,
    /// ρ: the probability that an atom is masked (paper: 0.3).
    pub mask_ratio: f64,
    /// The perturbation's amplitude (Å), read as the root-mean-square displacement of an atom:
    /// every coordinate gets Gaussian noise of standard deviation `bound_noise / √3`
    /// (paper: "Gaussian random noise with an amplitude of 0.5 Å").
    pub bound_noise: f64,
    /// Seeds the split, the initial weights and the batch order of every epoch.
    pub seed: u64,
    /// Members of a committee: K > 1 trains K models one after another into
    /// `output/member-0` … `member-(K−1)`, member k with seed `seed + k` (its own initial
    /// weights and batch order; the split is member 0's for all, so that every member is
    /// validated on the same structures). Each member is a run of its own, resumable, with the
    /// whole `max_minutes` budget. `predict`, `relax`, `curve`, `md` and the Python
    /// calculator take the committee's folder and report the members' mean and spread.
    pub committee: usize,
    /// With a committee: each member trains on a bootstrap sample of the training split (as
    /// many structures drawn with replacement, with its seed), so that the members differ in
    /// data as well as in initial weights. Off: all train on the whole split, which the
    /// literature finds enough for a useful spread (different seeds alone, as DP-GEN does).
    /// A single run (`committee = 1`) with it trains on one such draw, seeded by `seed`.
    pub bootstrap: bool,
    /// Start from this checkpoint's weights and atom references instead of a random draw
    /// (fine-tuning): a checkpoint file, a run folder, or a committee's folder (member k
    /// starts from member k of it). Its model must be the one `[model]` describes, with the
    /// same elements.
    pub init: Option<PathBuf>,
    pub device: String,
    /// libtorch intra-op threads.
    pub threads: usize,
    /// `[train.loss]`: the weight of each loss term by name (`minima_train::loss::TERMS`:
    /// energy, forces, aux, mask, zero_force, minimum_shift, bound, pair_equilibrium, stress); terms left
    /// out are off. Default: the energy alone.
    pub loss: BTreeMap<String, f64>,
    /// `[train.loss_start]`: terms that join the loss only late in training, each from this
    /// fraction of the budget (of `max_minutes` when set, else of `max_epochs`), as MACE's
    /// second stage re-weights its loss for the last part of a run. A term that asks much of a
    /// few frames (`minimum_shift`) then refines a fit the others have made, instead of
    /// steering the first epochs. When a term joins, the best validation loss starts afresh
    /// (it now counts that term): the best checkpoint is the best of the last stage.
    pub loss_start: BTreeMap<String, f64>,
}

impl TrainConfig {
    /// The weight of the loss term `name` (0 when it is off).
    pub fn weight(&self, name: &str) -> f64 {
        self.loss.get(name).copied().unwrap_or(0.0)
    }

    /// These settings at `progress` (the fraction of the budget trained, [`Self::loss_start`]):
    /// the terms that have not yet joined have weight 0.
    pub fn at_progress(&self, progress: f64) -> TrainConfig {
        let mut stage = self.clone();
        stage
            .loss
            .retain(|name, _| self.loss_start.get(name).is_none_or(|&start| progress >= start));
        stage
    }

    /// The terms that are on at progress `now` but were not at `before`.
    pub fn joining(&self, before: f64, now: f64) -> Vec<&str> {
        let (earlier, later) = (self.at_progress(before), self.at_progress(now));
        self.loss
            .keys()
            .filter(|name| later.weight(name) > 0.0 && earlier.weight(name) == 0.0)
            .map(String::as_str)
            .collect()
    }

    /// The terms that are on, with their weights, in the registry's order.
    pub fn active_terms(&self) -> Vec<(&'static dyn LossTerm, f64)> {
        TERMS
            .iter()
            .map(|&term| (term, self.weight(term.name())))
            .filter(|(_, weight)| *weight > 0.0)
            .collect()
    }

    /// What the terms that are on need the model to differentiate.
    pub fn needs(&self) -> Needs {
        self.active_terms()
            .iter()
            .map(|(term, _)| term.needs())
            .max()
            .unwrap_or(Needs::Energy)
    }

    /// Whether a loss term differentiates the energy by the positions (or the strain), so
    /// that training needs second-order autograd.
    pub fn needs_gradients(&self) -> bool {
        self.needs() >= Needs::Forces
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            output: PathBuf::from("runs/model"),
            max_epochs: 360,
            max_minutes: None,
            clock: Clock::Wall,
            lr_final: None,
            batch_size: 20,
            learning_rate: 1e-4,
            lr_decay: 0.6,
            lr_patience: 10,
            early_stop: 50,
            force_scale: None,
            soft_mode_floor: 0.05,
            mask_ratio: 0.3,
            bound_noise: 0.5,
            seed: 0,
            committee: 1,
            bootstrap: false,
            init: None,
            device: "cpu".into(),
            threads: 1,
            loss: BTreeMap::from([("energy".to_string(), 1.0)]),
            loss_start: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    #[serde(serialize_with = "ModelConfig::serialize_own_keys")]
    pub model: ModelConfig,
    pub data: DataConfig,
    pub train: TrainConfig,
}

impl RunConfig {
    /// Reads `path` and applies `overrides` (`train.batch_size=5`, `model.vimpnn.combine="c"`).
    /// A value is read as TOML (number, boolean, array, quoted string), else as a bare string.
    pub fn load(path: &Path, overrides: &[String]) -> Result<RunConfig> {
        let mut table = read_table(path)?;
        for assignment in overrides {
            set(&mut table, assignment)?;
        }
        RunConfig::from_table(table, path)
    }

    /// The run a TOML table describes (read from `path`, for messages).
    pub fn from_table(table: toml::Table, path: &Path) -> Result<RunConfig> {
        refuse_moved_keys(&table).with_context(|| path.display().to_string())?;
        if let Some(model) = table.get("model").and_then(toml::Value::as_table) {
            ModelConfig::check_keys(model).with_context(|| path.display().to_string())?;
        }
        let config: RunConfig = toml::Value::Table(table)
            .try_into()
            .with_context(|| format!("{}: invalid configuration", path.display()))?;
        config.validate()?;
        Ok(config)
    }

    /// The seed of the split: `data.split_seed`, else `train.seed`.
    pub fn split_seed(&self) -> u64 {
        self.data.split_seed.unwrap_or(self.train.seed)
    }

    pub fn validate(&self) -> Result<()> {
        let d = &self.data;
        if d.file.as_ref().is_some_and(|f| f.paths().is_empty()) {
            bail!("data.file is an empty list: name at least one data file");
        }
        match (&d.file, &d.train) {
            (Some(_), None) => {
                if d.split.iter().any(|f| f.is_nan() || *f < 0.0) || d.split[0] <= 0.0 || d.split[1] <= 0.0 {
                    bail!("data.split needs positive train and validation fractions");
                }
            }
            (None, Some(_)) if d.validation.is_some() => {}
            _ => bail!("[data] needs either `file` (with `split`) or `train` and `validation` files"),
        }
        if d.split.iter().any(|f| !f.is_finite()) {
            bail!("data.split must hold finite fractions, not {:?}", d.split);
        }
        if d.limit == Some(0) {
            bail!("data.limit = 0 leaves no structures (leave it out to use all)");
        }
        let t = &self.train;
        if t.output.as_os_str().is_empty() {
            bail!("train.output is empty: name the run's folder (e.g. runs/NAME)");
        }
        for (key, value) in [
            ("train.batch_size", t.batch_size),
            ("train.max_epochs", t.max_epochs),
            ("train.early_stop", t.early_stop),
            ("train.threads", t.threads),
            ("train.committee", t.committee),
        ] {
            if value == 0 {
                bail!("{key} = 0: it must be at least 1");
            }
        }
        if !(t.learning_rate.is_finite() && t.learning_rate > 0.0) {
            bail!(
                "train.learning_rate = {}: it must be a finite positive number",
                t.learning_rate
            );
        }
        if t.max_minutes.is_some_and(|m| !(m.is_finite() && m > 0.0)) {
            bail!("train.max_minutes must be a finite positive number of minutes (leave it out for no limit)");
        }
        if let Some(rate) = t.lr_final {
            if t.max_minutes.is_none() {
                bail!("train.lr_final decays the rate over train.max_minutes: set that too");
            }
            if !(rate > 0.0 && rate <= t.learning_rate) {
                bail!(
                    "train.lr_final = {rate}: it must be positive and at most train.learning_rate ({})",
                    t.learning_rate
                );
            }
        }
        if !(t.lr_decay > 0.0 && t.lr_decay <= 1.0) {
            bail!("train.lr_decay = {}: it must be in (0, 1]", t.lr_decay);
        }
        for (name, weight) in &t.loss {
            if term(name).is_none() {
                let known: Vec<&str> = TERMS.iter().map(|t| t.name()).collect();
                bail!("train.loss.{name}: no such loss term (known: {})", known.join(", "));
            }
            if !(weight.is_finite() && *weight >= 0.0) {
                bail!("train.loss.{name} = {weight}: loss weights must be finite and ≥ 0");
            }
        }
        for (name, start) in &t.loss_start {
            if t.weight(name) == 0.0 {
                bail!("train.loss_start.{name}: train.loss.{name} is off, so it has nothing to start");
            }
            if !(0.0..1.0).contains(start) {
                bail!("train.loss_start.{name} = {start}: it is a fraction of the budget, in [0, 1)");
            }
        }
        if t.weight("energy") + t.weight("forces") == 0.0 {
            bail!("train.loss.energy and train.loss.forces are both 0: nothing would be fitted");
        }
        if !(t.soft_mode_floor.is_finite() && t.soft_mode_floor > 0.0) {
            bail!("train.soft_mode_floor must be a finite positive force constant (eV/Å²)");
        }
        if t.force_scale.is_some_and(|f| !(f.is_finite() && f > 0.0)) {
            bail!("train.force_scale must be a finite positive force (eV/Å); leave it out for uniform weights");
        }
        if !(t.mask_ratio > 0.0 && t.mask_ratio <= 1.0) {
            bail!("train.mask_ratio = {}: it must be in (0, 1]", t.mask_ratio);
        }
        if !(t.bound_noise > 0.0 && t.bound_noise.is_finite()) {
            bail!(
                "train.bound_noise = {}: it must be a positive distance (Å)",
                t.bound_noise
            );
        }
        Ok(())
    }
}

/// Loss weights once lived in `train.NAME_weight` and `model.aux.weight`; they are now
/// `[train.loss] NAME`: say so rather than "unknown field".
fn refuse_moved_keys(table: &toml::Table) -> Result<()> {
    let train_keys = table
        .get("train")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flat_map(|t| t.keys());
    for key in train_keys {
        // force_weight became `forces`.
        let moved = key.strip_suffix("_weight").and_then(|stem| {
            [stem.to_string(), format!("{stem}s")]
                .into_iter()
                .find(|n| term(n).is_some())
        });
        if let Some(name) = moved {
            bail!("train.{key} is now `[train.loss] {name} = …`");
        }
    }
    let aux_weight = table
        .get("model")
        .and_then(|m| m.get("aux"))
        .and_then(|a| a.get("weight"))
        .is_some();
    if aux_weight {
        bail!("model.aux.weight is now `[train.loss] aux = …`");
    }
    Ok(())
}

/// The TOML table of the file `path`.
pub fn read_table(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}", path.display()))
}

/// Applies one `--set key.path=value` to `table`.
pub fn set(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let Some((key, raw)) = assignment.split_once('=') else {
        bail!("--set {assignment:?}: expected key.path=value");
    };
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let (last, parents) = parts.split_last().expect("split yields one part");
    let mut current = table;
    for part in parents {
        current = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .with_context(|| format!("--set {key}: {part} is not a table"))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_reach_nested_keys_and_typos_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(&path, "[data]\nfile = \"q.extxyz\"\n[model]\nkind = \"vimpnn\"\n").unwrap();
        let config = RunConfig::load(
            &path,
            &[
                "train.batch_size=5".into(),
                "model.vimpnn.combine=c".into(),
                "model.cutoff=5.0".into(),
            ],
        )
        .unwrap();
        assert_eq!(config.train.batch_size, 5);
        assert_eq!(config.model.vimpnn.combine, minima_model::config::Combine::GruPerType);
        assert_eq!(config.model.cutoff, Some(5.0));
        let typo = RunConfig::load(&path, &["train.batchsize=5".into()]).unwrap_err();
        assert!(format!("{typo:#}").contains("batchsize"), "{typo:#}");
        let no_value = RunConfig::load(&path, &["train.batch_size".into()]).unwrap_err();
        assert!(
            format!("{no_value:#}").contains("expected key.path=value"),
            "{no_value:#}"
        );
        let wrong_type = RunConfig::load(&path, &["train.batch_size=\"five\"".into()]).unwrap_err();
        assert!(
            format!("{wrong_type:#}").contains("invalid configuration"),
            "{wrong_type:#}"
        );
        for bad in [
            "train.mask_ratio=1.5",
            "train.bound_noise=0",
            "train.loss.bound=-1",
            "train.loss.pair_equilibrium=-1",
            "train.loss.forcez=1",
            "train.force_weight=1",
            "model.aux.weight=0.3",
            "train.max_minutes=0",
            "train.max_minutes=-1",
            "train.lr_final=1e-5",
        ] {
            let error = RunConfig::load(&path, &[bad.into()]).unwrap_err();
            let key = bad.split('=').next().unwrap();
            assert!(format!("{error:#}").contains(key), "{bad}: {error:#}");
        }
        let no_data = RunConfig::load(&path, &["data.file=[]".into()]).unwrap_err();
        // Another kind's settings are refused, naming the kinds that read them.
        for (setting, readers) in [
            ("model.painn.features=8", "painn models"),
            ("model.transformer.layers=2", "transformer models"),
        ] {
            let error = format!("{:#}", RunConfig::load(&path, &[setting.into()]).unwrap_err());
            assert!(
                error.contains(readers) && error.contains("a vimpnn model does not read"),
                "{setting}: {error}"
            );
        }
        let legacy = format!(
            "{:#}",
            RunConfig::load(&path, &["model.zbl.enabled=true".into()]).unwrap_err()
        );
        assert!(
            legacy.contains("[[model.priors]]") && legacy.contains("kind = \"zbl\""),
            "{legacy}"
        );
        let prior = RunConfig::load(&path, &["model.priors=[{kind=\"zbl\", inner=0.3}]".into()]).unwrap();
        assert_eq!(prior.model.priors.len(), 1);
        let unknown = RunConfig::load(&path, &["model.priors=[{kind=\"d4\"}]".into()]).unwrap_err();
        assert!(format!("{unknown:#}").contains("d4"), "{unknown:#}");
        for (kind, setting, readers) in [
            ("painn", "model.hidden=128", "mpnn and vimpnn and transformer models"),
            ("transformer", "model.iterations=5", "mpnn and vimpnn models"),
            ("mpnn", "model.aux.counts=false", "vimpnn models"),
        ] {
            let kind = format!("model.kind={kind}");
            let error = format!("{:#}", RunConfig::load(&path, &[kind, setting.into()]).unwrap_err());
            let key = setting.split(['.', '=']).nth(1).unwrap();
            assert!(
                error.contains(&format!("model.{key} is a setting of {readers}")),
                "{setting}: {error}"
            );
        }
        assert!(format!("{no_data:#}").contains("data.file"), "{no_data:#}");
        let several = RunConfig::load(&path, &["data.file=[\"a.extxyz\", \"b.extxyz\"]".into()]).unwrap();
        let paths = several.data.file.as_ref().map(DataFiles::paths).unwrap_or_default();
        assert_eq!(paths, [PathBuf::from("a.extxyz"), PathBuf::from("b.extxyz")]);
    }

    /// Every shipped recipe loads: its keys are those of its model's kind.
    #[test]
    fn every_shipped_configuration_loads() {
        let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut count = 0;
        for entry in std::fs::read_dir(&configs).unwrap() {
            let path = entry.unwrap().path();
            // Active-learning recipes (a `[learn]` table) are minima-learn's to load.
            if path.extension().is_some_and(|e| e == "toml") && !read_table(&path).unwrap().contains_key("learn") {
                RunConfig::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                count += 1;
            }
        }
        assert!(count >= 10, "{count} configurations in {}", configs.display());
    }

    /// A written run file holds its kind's model keys only, and reads back as the same run.
    #[test]
    fn a_run_file_lists_the_keys_of_its_kind_only() {
        let mut run = RunConfig::default();
        run.model.kind = minima_model::ModelKind::Painn;
        run.data.file = Some(DataFiles::One("q.extxyz".into()));
        let text = toml::to_string(&run).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let keys: Vec<&str> = table["model"].as_table().unwrap().keys().map(String::as_str).collect();
        assert!(keys.contains(&"kind") && keys.contains(&"painn"), "{keys:?}");
        assert!(keys.iter().all(|k| run.model.kind.reads(k)), "{keys:?}");
        let back: RunConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, run);
    }
}
