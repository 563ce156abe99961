//! What users run a potential for: finding stable configurations. Every tool here takes a
//! [`minima_label::Calculator`], so a trained model (minima-model's `ModelCalculator`) and a
//! reference method (EMT, xtb, CP2K) are used the same way and can be drawn together.
//!
//! - [`curve`]: isotropic energy scans and their minima;
//! - [`relax`]: FIRE and L-BFGS relaxation;
//! - [`dynamics`]: molecular dynamics (NVE, NVT, NPT);
//! - [`benchmark`]: the re-optimisation benchmark (perturb equilibrium molecules, relax,
//!   measure ΔP and ΔE_g) and molecule assembly;
//! - [`landing`]: whether relaxations from rattled, compressed and stretched starts land on
//!   the reference's minimum;
//! - [`failures`]: the frames a multi-frame run could not treat, listed beside its output;
//! - [`plot`]: the figures, SVG and PNG.

pub mod bench;
pub mod benchmark;
pub mod contributions;
pub mod curve;
pub mod dynamics;
pub mod failures;
pub mod landing;
pub mod minimum;
pub mod plot;
pub mod relax;

pub use failures::FrameFailures;
pub use relax::{relax, Optimizer, RelaxOptions, Relaxation, Stop};

#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    #[error(transparent)]
    Calc(#[from] minima_label::CalcError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// An output could not be written (no space, no such folder, no permission).
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Input(String),
    #[error("drawing the figure: {0}")]
    Plot(String),
}

impl ExploreError {
    /// The error of writing `path`, naming it.
    pub fn write(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ExploreError + '_ {
        move |source| ExploreError::Write {
            path: path.to_path_buf(),
            source,
        }
    }
}
