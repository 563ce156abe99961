//! Training, evaluation and prediction.
//!
//! A run is one TOML file ([`RunConfig`]): the `[model]` table (minima-model's
//! `ModelConfig`), `[data]` (files and split) and `[train]` (optimiser and schedule).
//! [`train`] writes into the run's output folder: `learning_curve.csv`, `best.safetensors` +
//! `best.toml` (the best-validation model), and `last.safetensors` + `state.json` from which
//! `--resume` continues a killed run with the same result as an uninterrupted one.

pub mod adam;
pub mod config;
pub mod evaluate;
pub mod trainer;

pub use config::RunConfig;
pub use evaluate::{evaluate, predict_samples, EvalReport};
pub use trainer::{train, TrainOutcome};

/// A progress bar on stderr with rate and ETA; hidden when stderr is not a terminal.
pub fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}
