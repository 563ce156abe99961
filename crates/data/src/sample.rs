//! Labelled samples: a frame's graph with its energy, forces and provenance.

use std::path::Path;

use minima_atoms::{cell::norm, Atoms, Vec3};
use minima_io::{extxyz, qm9};

use crate::graph::{Graph, GraphSpec};
use crate::{group_key, DataError};

/// One structure as training and evaluation use it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub graph: Graph,
    /// Total energy, eV.
    pub energy: Option<f64>,
    /// Forces, eV/Å, one per atom.
    pub forces: Option<Vec<Vec3>>,
    /// Isotropic scale of the frame relative to its equilibrium geometry, when recorded.
    pub scale: Option<f64>,
    /// Base structure ([`group_key`]): all scalings of one molecule share it.
    pub group: String,
    /// Index of the frame in its file.
    pub frame: usize,
}

impl Sample {
    /// The sample of `atoms`, frame `frame` of `source`.
    pub fn from_atoms(atoms: &Atoms, frame: usize, source: &str, spec: &GraphSpec) -> Result<Sample, DataError> {
        let graph = Graph::build(atoms, spec).map_err(|m| DataError::frame(source, frame, m))?;
        let forces = atoms
            .forces()
            .map(|flat| flat.chunks_exact(3).map(|f| [f[0], f[1], f[2]]).collect());
        Ok(Sample {
            graph,
            energy: atoms.energy(),
            forces,
            scale: atoms.scale(),
            group: group_key(atoms, frame),
            frame,
        })
    }

    /// Whether the frame is taken to be at an equilibrium geometry (a local energy minimum),
    /// where the true forces vanish: the zero-force and bound losses and the zero-reference
    /// force MAE apply to these. A frame recording its `scale` is at equilibrium when the
    /// scale is 1; a frame recording neither a scale nor forces is one of an optimised set
    /// such as QM9, whose files hold relaxed geometries only. Frames with forces and no scale
    /// (trajectories, rattled structures) are not assumed to be at equilibrium.
    pub fn is_equilibrium(&self) -> bool {
        match self.scale {
            Some(scale) => (scale - 1.0).abs() < 1e-9,
            None => self.forces.is_none(),
        }
    }

    /// Mean over atoms of the distance to the nearest neighbour at the equilibrium geometry
    /// (this frame's distances divided by its scale): converts scale errors to Å.
    pub fn reference_nearest_neighbor(&self) -> Option<f64> {
        let g = &self.graph;
        let mut nearest = vec![f64::INFINITY; g.len()];
        for e in 0..g.edge_count() {
            let (i, j) = (g.center[e] as usize, g.neighbor[e] as usize);
            let d = norm(std::array::from_fn(|k| {
                g.positions[j][k] + g.offset[e][k] - g.positions[i][k]
            }));
            nearest[i] = nearest[i].min(d);
        }
        let found: Vec<f64> = nearest.into_iter().filter(|d| d.is_finite()).collect();
        (!found.is_empty()).then(|| found.iter().sum::<f64>() / found.len() as f64 / self.scale.unwrap_or(1.0))
    }
}

/// Whether `path` is QM9 in its original layout (a directory, or a `.tar` / `.tar.bz2`
/// archive) rather than an extxyz file.
pub fn is_qm9_layout(path: &Path) -> bool {
    let name = path.to_string_lossy();
    path.is_dir() || name.ends_with(".tar.bz2") || name.ends_with(".tar")
}

/// Reads every frame of an extxyz file, or of QM9 in its original layout (a directory of
/// `dsgdb9nsd_*.xyz` files or their `.tar.bz2`), told apart by the path.
pub fn read_frames(path: &Path) -> Result<Vec<Atoms>, DataError> {
    Ok(if is_qm9_layout(path) {
        qm9::read(path, qm9::Selection::default())?
    } else {
        extxyz::read_all(path)?
    })
}

/// The samples of `frames` read from `source`. `require_energy`: every frame must carry
/// `energy=` (training and evaluation), else the error names the first frame without it.
/// `on_frame` is called after each frame (a progress bar).
pub fn samples_of(
    frames: &[Atoms],
    source: &str,
    spec: &GraphSpec,
    require_energy: bool,
    mut on_frame: impl FnMut(),
) -> Result<Vec<Sample>, DataError> {
    frames
        .iter()
        .enumerate()
        .map(|(frame, atoms)| {
            if require_energy && atoms.energy().is_none() {
                return Err(DataError::frame(source, frame, "missing label: no energy"));
            }
            let sample = Sample::from_atoms(atoms, frame, source, spec);
            on_frame();
            sample
        })
        .collect()
}

/// Loads the samples of a file (see [`samples_of`]).
pub fn load(path: &Path, spec: &GraphSpec, require_energy: bool) -> Result<Vec<Sample>, DataError> {
    samples_of(
        &read_frames(path)?,
        &path.display().to_string(),
        spec,
        require_energy,
        || {},
    )
}
