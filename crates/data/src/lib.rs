//! Datasets as the models consume them, without libtorch.
//!
//! A frame (an [`Atoms`] with its labels) becomes a [`Sample`]: its [`Graph`] — atoms, edges
//! with their lattice offsets and bond types — and its labels. Splits keep every scaling of a
//! base structure together ([`split`]); [`AtomRefs`] fits the per-element reference energies
//! that normalise the energy targets.

pub mod atomref;
pub mod curve;
pub mod domains;
pub mod generate;
pub mod graph;
pub mod sample;
pub mod sampling;
pub mod split;

pub use atomref::AtomRefs;
pub use graph::{BondClass, Graph, GraphSpec};
pub use sample::{equilibrium_flag, is_qm9_layout, load, read_frames, samples_of, Sample};
pub use split::{check_fractions, split_by_group, Scheme, Split};

use minima_atoms::Atoms;

/// A standard normal deviate (Box–Muller), for seeded perturbations.
pub fn gaussian(rng: &mut impl rand::Rng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// Errors while turning frames into samples or splitting them; each names the file and
/// frame (and the line, where it is known) of the fault.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Read(#[from] minima_io::ReadError),
    #[error("{source_name}: frame {frame}{}: {message}", .line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Frame {
        source_name: String,
        frame: usize,
        /// 1-based, as editors show it.
        line: Option<usize>,
        message: String,
    },
    /// Split fractions that are not three finite, non-negative numbers summing to 1.
    #[error("split fractions {fractions:?}: {problem}")]
    Fractions { fractions: [f64; 3], problem: String },
}

impl DataError {
    pub fn frame(source_name: &str, frame: usize, message: impl Into<String>) -> DataError {
        DataError::Frame {
            source_name: source_name.to_string(),
            frame,
            line: None,
            message: message.into(),
        }
    }

    /// The error with the line it was found on, when that is known.
    pub fn on_line(mut self, at: Option<usize>) -> DataError {
        if let DataError::Frame { line, .. } = &mut self {
            *line = at;
        }
        self
    }
}

/// The key that groups the frames of one base structure (all scalings of a molecule, a
/// crystal, a growth run), so that splits never separate them. In order of preference: an
/// explicit `base_id`; QM9's `qm9_index`; `element` + `seed` of a growth run; `element` of an
/// fcc scan; else the frame is its own group.
pub fn group_key(atoms: &Atoms, frame: usize) -> String {
    let info = &atoms.info;
    let text = |key: &str| info.get(key).map(minima_io::keyval::format_value);
    if let Some(base) = text("base_id") {
        return format!("base:{base}");
    }
    if let Some(index) = text("qm9_index") {
        return format!("qm9:{index}");
    }
    match (text("element"), text("seed")) {
        (Some(element), Some(seed)) => format!("growth:{element}:{seed}"),
        (Some(element), None) => format!("crystal:{element}"),
        _ => format!("frame:{frame}"),
    }
}
