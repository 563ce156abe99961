//! Training, evaluation and prediction.
//!
//! A run is one TOML file ([`RunConfig`]): the `[model]` table (minima-model's
//! `ModelConfig`), `[data]` (files and split) and `[train]` (optimiser, schedule and the
//! `[train.loss]` weights of the [`loss`] terms).
//! [`train`] writes into the run's output folder: `learning_curve.csv`, `best.safetensors` +
//! `best.toml` (the best-validation model), and `last.safetensors` + `state.json` from which
//! `--resume` continues a killed run with the same result as an uninterrupted one
//! (`last.previous.safetensors` keeps the weights before the newest, so a run killed while
//! saving still resumes). Checkpoint TOMLs record the SHA-256 of their weights, checked on
//! loading. The folder is locked while a run writes it, and a new run refuses a folder that
//! is not empty (`--resume` continues it, `--overwrite` replaces it). Resuming relies on no
//! recorded path: the folder is where `train.output` now points and the data are compared by
//! content, so a moved folder (or moved data) resumes. Models, training batches and prediction
//! batches are sized before they are allocated and refused over the memory budget
//! (`MINIMA_MEMORY_GB`, default 8; see `minima_model::device::memory_budget`).

pub mod adam;
pub mod bench;
pub mod config;
pub mod console;
pub mod distributed;
pub mod evaluate;
pub mod loss;
pub mod trainer;

pub use config::RunConfig;
pub use evaluate::{evaluate, EvalReport, RelativeTo};
pub use trainer::{train, train_as, train_with, Start, TrainOutcome};
