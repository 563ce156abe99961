//! Training, evaluation and prediction.
//!
//! A run is one TOML file ([`RunConfig`]): the `[model]` table (minima-model's
//! `ModelConfig`), `[data]` (files and split) and `[train]` (optimiser and schedule).
//! [`train`] writes into the run's output folder: `learning_curve.csv`, `best.safetensors` +
//! `best.toml` (the best-validation model), and `last.safetensors` + `state.json` from which
//! `--resume` continues a killed run with the same result as an uninterrupted one.

pub mod adam;
pub mod calculator;
pub mod config;
pub mod console;
pub mod evaluate;
pub mod trainer;

pub use calculator::ModelCalculator;
pub use config::RunConfig;
pub use evaluate::{evaluate, predict_samples, EvalReport};
pub use trainer::{train, train_as, Start, TrainOutcome};

pub use minima_io::progress_bar;
