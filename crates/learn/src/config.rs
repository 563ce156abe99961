//! `learn.toml`: a run configuration (`[model]`, `[data]`, `[train]`, as `minima train`
//! reads it; `[data]` names the initial data) and a `[learn]` table for the loop.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use minima_explore::landing::Start;
use minima_train::RunConfig;
use serde::{Deserialize, Serialize};

/// The loop's settings. The trust window, the caps and the budgets are DP-GEN's knobs; the
/// defaults are for small molecules with xtb on two cores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearnConfig {
    /// Folder for the iterations, the log (`learn.csv`, `learn.svg`) and the fixed validation
    /// sets.
    pub output: PathBuf,
    /// The reference that labels selected structures: emt, xtb or cp2k.
    pub reference: String,
    /// At most this many iterations (train, explore, select, label, validate).
    pub iterations: usize,
    /// Committee members (`train.committee` of every iteration's training).
    pub committee: usize,
    /// `train.max_minutes` of the first iteration, trained from scratch; absent: the run's.
    pub first_minutes: Option<f64>,
    /// `train.max_minutes` of later iterations, each fine-tuning the previous committee
    /// (member k from member k) on the grown data; absent: `first_minutes`.
    pub refine_minutes: Option<f64>,
    /// `train.learning_rate` of the fine-tuning iterations; absent: the run's. A fine-tuned
    /// model starts near a minimum of the loss, which a full first rate would throw it out of.
    pub refine_learning_rate: Option<f64>,
    /// Structures labelled at the same time (per shard).
    pub jobs: usize,
    /// Where the selected frames are labelled: `local` (this process, or `array_size`
    /// processes) or `slurm` (a job array of `array_size` tasks through sbatch, waited for),
    /// as `minima label --submit` does.
    pub submit: Submit,
    /// Shards of each iteration's labelling (processes or array tasks); absent: one process
    /// (local) or one task (slurm).
    pub array_size: Option<usize>,
    /// Slurm's `--partition` and `--time` for the labelling tasks.
    pub partition: Option<String>,
    pub time: Option<String>,
    /// Seeds the choice of molecules to explore and the selection (iteration k: seed + k).
    pub seed: u64,
    pub explore: ExploreConfig,
    pub select: SelectConfig,
    pub validate: ValidateConfig,
    pub stop: StopConfig,
}

impl Default for LearnConfig {
    fn default() -> Self {
        LearnConfig {
            output: PathBuf::from("runs/learn"),
            reference: "xtb".into(),
            iterations: 4,
            committee: 3,
            first_minutes: None,
            refine_minutes: None,
            refine_learning_rate: None,
            jobs: 2,
            submit: Submit::Local,
            array_size: None,
            partition: None,
            time: None,
            seed: 0,
            explore: ExploreConfig::default(),
            select: SelectConfig::default(),
            validate: ValidateConfig::default(),
            stop: StopConfig::default(),
        }
    }
}

/// Where labelling runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Submit {
    #[default]
    Local,
    Slurm,
}

/// `[learn.explore]`: where the committee mean is run to find structures the data miss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExploreConfig {
    /// Training molecules (or crystals, clusters) explored per iteration, drawn from the
    /// training split's base structures (each at its `equilibrium=T` frame, else its frame
    /// nearest `scale` 1, else its first).
    pub molecules: usize,
    /// Relaxation starts from each, as `bench-minima` makes them.
    pub starts: Vec<String>,
    /// FIRE to this largest force (eV/Å) or `steps` steps.
    pub fmax: f64,
    pub steps: usize,
    /// A candidate frame every this many relaxation steps (and the last).
    pub every: usize,
    /// Langevin dynamics from each molecule: steps (0: none), temperature (K), timestep (fs);
    /// a candidate frame every `md_every` steps.
    pub md_steps: usize,
    pub md_temperature: f64,
    pub md_timestep: f64,
    pub md_every: usize,
}

impl Default for ExploreConfig {
    fn default() -> Self {
        ExploreConfig {
            molecules: 30,
            starts: vec!["rattle:0.1".into(), "scale:0.9".into(), "scale:1.5".into()],
            fmax: 0.01,
            steps: 300,
            every: 5,
            md_steps: 200,
            md_temperature: 600.0,
            md_timestep: 0.5,
            md_every: 10,
        }
    }
}

/// `[learn.select]`: which explored frames are labelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectConfig {
    /// The trust window on the largest per-atom force deviation (eV/Å): below `lower` the
    /// committee agrees (nothing to learn); at or above `upper` the structure is taken to be
    /// unphysical, where the committee's path went wrong before it (DP-GEN's trust levels).
    pub lower: f64,
    pub upper: f64,
    /// At most this many frames per iteration, drawn at random from the window.
    pub max_frames: usize,
    /// A frame within this RMSD (Å, same atom order, no superposition) of a frame already
    /// selected from the same base structure is a duplicate.
    pub min_rmsd: f64,
}

impl Default for SelectConfig {
    fn default() -> Self {
        SelectConfig {
            lower: 0.05,
            upper: 1.0,
            max_frames: 150,
            min_rmsd: 0.05,
        }
    }
}

/// `[learn.validate]`: fixed held-out molecules whose reference minima every iteration's
/// committee is measured against, made once with the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidateConfig {
    /// Structures (extxyz, or QM9 in its original layout) the validation molecules are drawn
    /// from; none of them should be in the data.
    pub molecules: PathBuf,
    /// Skip the first this many frames of `molecules` (QM9 1-10000: 9000 keeps the last
    /// thousand, which no shipped set holds).
    pub skip: usize,
    /// Molecules drawn (seeded by `seed`).
    pub count: usize,
    pub seed: u64,
    /// Starts relaxed from each reference minimum (and labelled for the fixed force set).
    pub starts: Vec<String>,
    /// FIRE to this largest force (eV/Å) or `steps` steps.
    pub fmax: f64,
    pub steps: usize,
}

impl Default for ValidateConfig {
    fn default() -> Self {
        ValidateConfig {
            molecules: PathBuf::new(),
            skip: 0,
            count: 10,
            seed: 0,
            starts: vec!["rattle:0.1".into(), "scale:0.9".into(), "scale:1.5".into()],
            fmax: 0.01,
            steps: 1000,
        }
    }
}

/// `[learn.stop]`: when the loop ends before `iterations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StopConfig {
    /// Stop when fewer than this fraction of the explored frames falls in the trust window
    /// (the committee agrees nearly everywhere it goes).
    pub selected_fraction: f64,
    /// Stop after this many iterations without a lower median ΔP on the validation molecules.
    pub patience: usize,
}

impl Default for StopConfig {
    fn default() -> Self {
        StopConfig {
            selected_fraction: 0.005,
            patience: 2,
        }
    }
}

/// A whole `learn.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnFile {
    pub learn: LearnConfig,
    /// The run each iteration trains (its `[data]` files are the initial data).
    pub run: RunConfig,
}

impl LearnFile {
    /// Reads `path` with `overrides` (`learn.iterations=2`, `train.max_minutes=5`).
    pub fn load(path: &Path, overrides: &[String]) -> Result<LearnFile> {
        let mut table = minima_train::config::read_table(path)?;
        for assignment in overrides {
            minima_train::config::set(&mut table, assignment)?;
        }
        let learn = match table.remove("learn") {
            Some(value) => value
                .try_into()
                .with_context(|| format!("{}: invalid [learn] table", path.display()))?,
            None => bail!(
                "{}: no [learn] table: this is a run configuration, for `minima train`",
                path.display()
            ),
        };
        let run = RunConfig::from_table(table, path)?;
        let file = LearnFile { learn, run };
        file.validate().with_context(|| path.display().to_string())?;
        Ok(file)
    }

    fn validate(&self) -> Result<()> {
        let l = &self.learn;
        if self.run.data.file.is_none() {
            bail!("[data] needs `file` (the initial data, split by base structure): the loop adds its labelled frames to them");
        }
        for (key, value) in [
            ("learn.iterations", l.iterations),
            ("learn.committee", l.committee),
            ("learn.jobs", l.jobs),
            ("learn.explore.every", l.explore.every),
            ("learn.explore.md_every", l.explore.md_every),
            ("learn.select.max_frames", l.select.max_frames),
            ("learn.validate.count", l.validate.count),
            ("learn.array_size", l.array_size.unwrap_or(1)),
        ] {
            if value == 0 {
                bail!("{key} = 0: it must be at least 1");
            }
        }
        if l.committee < 2 {
            bail!("learn.committee = 1: a committee's disagreement needs at least 2 members");
        }
        if !(l.select.lower >= 0.0 && l.select.upper > l.select.lower && l.select.upper.is_finite()) {
            bail!(
                "learn.select: the trust window needs 0 ≤ lower < upper (got {} and {} eV/Å)",
                l.select.lower,
                l.select.upper
            );
        }
        for (key, minutes) in [
            ("learn.first_minutes", l.first_minutes),
            ("learn.refine_minutes", l.refine_minutes),
            ("learn.refine_learning_rate", l.refine_learning_rate),
        ] {
            if minutes.is_some_and(|m| !(m.is_finite() && m > 0.0)) {
                bail!("{key} must be a finite positive number");
            }
        }
        if l.first_minutes.or(self.run.train.max_minutes).is_none() {
            bail!("set learn.first_minutes (or train.max_minutes): every iteration trains in a time budget");
        }
        if l.validate.molecules.as_os_str().is_empty() {
            bail!("learn.validate.molecules: name the structures the validation molecules are drawn from");
        }
        if !(l.explore.fmax > 0.0 && l.validate.fmax > 0.0) {
            bail!("learn.explore.fmax and learn.validate.fmax must be positive");
        }
        self.starts(&l.explore.starts).context("learn.explore.starts")?;
        self.starts(&l.validate.starts).context("learn.validate.starts")?;
        minima_label::calculator_by_name(&l.reference, &Default::default())
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("learn.reference = {:?}: {e}", l.reference))
    }

    /// Parsed starts.
    pub fn starts(&self, texts: &[String]) -> Result<Vec<Start>> {
        texts
            .iter()
            .map(|t| t.parse::<Start>().map_err(anyhow::Error::msg))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped active-learning recipe loads; a run configuration is told it is one.
    #[test]
    fn the_shipped_recipes_load_and_bad_settings_are_named() {
        let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        for name in ["learn-molecules.toml", "learn-metals.toml"] {
            let file = LearnFile::load(&configs.join(name), &[]).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(file.learn.committee >= 2 && file.run.data.file.is_some(), "{name}");
        }
        let recipe = configs.join("learn-metals.toml");
        let plain = format!("{:#}", LearnFile::load(&configs.join("metals.toml"), &[]).unwrap_err());
        assert!(plain.contains("no [learn] table"), "{plain}");
        for (bad, named) in [
            ("learn.committee=1", "learn.committee"),
            ("learn.select.upper=0.01", "trust window"),
            ("learn.reference=\"dft\"", "dft"),
            ("learn.explore.starts=[\"squash:2\"]", "learn.explore.starts"),
            ("learn.iterations=0", "learn.iterations"),
            ("learn.nonsense=1", "nonsense"),
        ] {
            let error = format!("{:#}", LearnFile::load(&recipe, &[bad.into()]).unwrap_err());
            assert!(error.contains(named), "{bad}: {error}");
        }
    }
}
