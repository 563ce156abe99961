//! Speed and memory of the models, as `minima bench model` measures them on this machine
//! (never asserted in tests): energy + forces throughput and training-step time on molecules,
//! and one energy + forces + stress call on large crystals.

use std::time::Instant;

use anyhow::Result;
use minima_atoms::Atoms;
use minima_data::{AtomRefs, Sample};
use minima_model::inference::{self, Plan};
use minima_model::{ModelConfig, ModelKind, Potential};
use serde::Serialize;

use crate::adam::Adam;
use crate::RunConfig;

/// One architecture at one thread count on molecules.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRow {
    pub kind: &'static str,
    pub threads: usize,
    /// Energy + forces, in batches.
    pub molecules_per_s: f64,
    /// One training step (energies and forces) of `train_batch` molecules.
    pub step_ms: f64,
    pub train_batch: usize,
}

/// What a throughput measurement runs.
pub struct Throughput<'a> {
    pub samples: &'a [Sample],
    pub refs: &'a AtomRefs,
    pub cutoff: Option<f64>,
    /// Molecules per inference batch and per training batch.
    pub batch: usize,
    pub train_batch: usize,
    pub device: tch::Device,
}

impl Throughput<'_> {
    /// An untrained model of `kind` (its default sizes) on `threads` intra-op threads: one
    /// untimed pass (thread pool, allocator caches for every batch shape), then every sample
    /// timed; then up to 20 training steps after an untimed one. VIMPNN trains with its
    /// auxiliary heads (α = 0.3), as in its paper.
    pub fn measure(&self, kind: ModelKind, threads: usize) -> Result<ThroughputRow> {
        let mut config = RunConfig::default();
        config.model.kind = kind;
        if kind == ModelKind::Vimpnn {
            config.train.loss.insert("aux".into(), 0.3);
        }
        config.model.cutoff = self.cutoff;
        config.model.elements = self.refs.elements.clone();
        // Frames that record no scale; the other heads cost the same.
        config.model.aux.scale = false;
        minima_model::configure_threads(threads);
        let potential = Potential::new(config.model.clone(), self.refs.clone(), self.device, 0)?;
        let all: Vec<&Sample> = self.samples.iter().collect();
        minima_model::predict_samples(&potential, &all, self.batch, true)?;
        let start = Instant::now();
        minima_model::predict_samples(&potential, &all, self.batch, true)?;
        let molecules_per_s = all.len() as f64 / start.elapsed().as_secs_f64();
        let mut adam = Adam::new(potential.var_store(), 1e-4);
        let batches: Vec<&[Sample]> = self.samples.chunks(self.train_batch.max(1)).collect();
        let steps = batches.len().min(20);
        crate::trainer::training_step(&potential, &config, batches[0], &mut adam)?;
        let start = Instant::now();
        for batch in &batches[..steps] {
            crate::trainer::training_step(&potential, &config, batch, &mut adam)?;
        }
        Ok(ThroughputRow {
            kind: kind.name(),
            threads,
            molecules_per_s,
            step_ms: 1e3 * start.elapsed().as_secs_f64() / steps as f64,
            train_batch: self.train_batch,
        })
    }
}

/// One energy + forces + stress call on a crystal.
#[derive(Debug, Clone, Serialize)]
pub struct CrystalRow {
    pub kind: &'static str,
    pub atoms: usize,
    pub threads: usize,
    /// Building the graph (zero when the crystal runs in domains, which build their own).
    pub graph_s: f64,
    pub model_s: f64,
    /// Peak resident memory of the process, where the system reports it.
    pub peak_bytes: Option<usize>,
    /// Whole, edge chunks or domains.
    pub path: String,
    /// Why the call failed (a refusal for memory, say), if it did.
    pub error: Option<String>,
}

/// `crystal` (of one element) through an untrained model of `kind` with `cutoff` on `threads`
/// threads, as `minima predict` runs it: whole, in edge chunks or in domains (speed and
/// memory do not depend on the weights).
pub fn crystal(
    crystal: &Atoms,
    kind: ModelKind,
    cutoff: f64,
    threads: usize,
    device: tch::Device,
) -> Result<CrystalRow> {
    let element = crystal.numbers().first().copied().unwrap_or(29);
    let refs = AtomRefs {
        elements: vec![element],
        energies: vec![-3.5],
        scale: 1.0,
    };
    let mut config = ModelConfig {
        kind,
        cutoff: Some(cutoff),
        elements: vec![element],
        ..ModelConfig::default()
    };
    config.aux.scale = false;
    minima_model::configure_threads(threads);
    let potential = Potential::new(config.clone(), refs, device, 0)?;
    let base = minima_io::process::reset_peak_rss();
    let start = Instant::now();
    let (graph_s, path, result) = match inference::domains_for(&potential, crystal, None)? {
        Some(size) => (
            0.0,
            format!("domains of ≤ {size} atoms"),
            inference::predict_in_domains(&potential, crystal, size).map(|_| ()),
        ),
        None => {
            let graph = minima_data::Graph::build(crystal, &config.graph_spec()).map_err(anyhow::Error::msg)?;
            let graph_s = start.elapsed().as_secs_f64();
            let path = match inference::plan_batch(&potential, &[&graph], true, &|| "the crystal".into()) {
                Ok(Plan::Whole) => "whole".to_string(),
                Ok(Plan::Chunked(edges)) => format!("chunks of {edges} edges"),
                Err(_) => "refused".to_string(),
            };
            (
                graph_s,
                path,
                minima_model::predict_graphs(&potential, &[&graph], true).map(|_| ()),
            )
        }
    };
    let total = start.elapsed().as_secs_f64();
    Ok(CrystalRow {
        kind: kind.name(),
        atoms: crystal.len(),
        threads,
        graph_s,
        model_s: total - graph_s,
        peak_bytes: minima_io::process::peak_rss().or(base),
        path,
        error: result.err().map(|e| e.to_string()),
    })
}
