//! Labelled samples: a frame's graph with its energy, forces and provenance.

use std::path::Path;

use minima_atoms::{cell::norm, keys, ArrayData, Atoms, Value, Vec3};
use minima_io::{clip, extxyz, keyval, qm9};

use crate::graph::{Graph, GraphSpec};
use crate::sampling::{COMPLIANCE, EQUILIBRIUM};
use crate::{group_key, DataError};

/// One structure as training and evaluation use it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub graph: Graph,
    /// Total energy, eV.
    pub energy: Option<f64>,
    /// Forces, eV/Å, one per atom.
    pub forces: Option<Vec<Vec3>>,
    /// Stress, eV/Å³, Voigt order xx yy zz yz xz xy, ASE's sign: from the info's `stress`
    /// (ASE's 3×3, or its 6 Voigt components).
    pub stress: Option<[f64; 6]>,
    /// Isotropic scale of the frame relative to its equilibrium geometry, when recorded.
    pub scale: Option<f64>,
    /// The frame's `equilibrium` flag, when it carries one (see [`Sample::is_equilibrium`]).
    pub equilibrium: Option<bool>,
    /// The reference's compliance modes at this frame ([`COMPLIANCE`]): atom `i`'s row holds
    /// the x, y, z of each mode in turn (atoms × 3M, Å²/eV).
    pub compliance: Option<Vec<f64>>,
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
            stress: stress_of(atoms).map_err(|m| DataError::frame(source, frame, m))?,
            scale: atoms.scale(),
            equilibrium: equilibrium_flag(atoms).map_err(|m| DataError::frame(source, frame, m))?,
            compliance: compliance_of(atoms).map(<[f64]>::to_vec),
            group: group_key(atoms, frame),
            frame,
        })
    }

    /// Whether the frame is taken to be at an equilibrium geometry (a local energy minimum),
    /// where the true forces vanish: the zero-force and bound losses and the zero-reference
    /// force MAE apply to these.
    ///
    /// A frame carrying the info key `equilibrium` (a boolean, `T`/`F`) is what it says: `T`
    /// marks a minimum of the reference that labels the frame (`minima convert --from qm9`,
    /// `minima data relaxed`), `F` a frame known not to be one (rattled and normal-mode
    /// samples). Without the key — every file made before the flag, and the scans — the rule
    /// is the one those files and their checkpoints were trained with: a frame recording its
    /// `scale` is at equilibrium when the scale is 1 (within 1e-9); a frame recording neither a
    /// scale nor forces is one of an optimised set such as QM9, whose files hold relaxed
    /// geometries only; a frame with forces and no scale (a trajectory) is not.
    pub fn is_equilibrium(&self) -> bool {
        match (self.equilibrium, self.scale) {
            (Some(flag), _) => flag,
            (None, Some(scale)) => (scale - 1.0).abs() < 1e-9,
            (None, None) => self.forces.is_none(),
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

/// The frame's `equilibrium` flag: `None` without one, an error when it is not a boolean (a
/// mistyped flag must not fall back to the scale rule silently).
pub fn equilibrium_flag(atoms: &Atoms) -> Result<Option<bool>, String> {
    match atoms.info.get(EQUILIBRIUM) {
        None => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(other) => Err(format!(
            "{EQUILIBRIUM}={} is not a boolean (T or F)",
            clip(&keyval::format_value(other))
        )),
    }
}

/// The frame's `compliance` column, when it is a real column of three values per mode
/// ([`check_labels`] refuses any other).
fn compliance_of(atoms: &Atoms) -> Option<&[f64]> {
    let array = atoms.array(COMPLIANCE)?;
    match &array.data {
        ArrayData::Float(values) if array.width > 0 && array.width % 3 == 0 => Some(values),
        _ => None,
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

/// The samples of `frames` read from `source`, all of it in order. `on_frame` is called
/// after each frame (a progress bar).
///
/// `require_energy`: the frames are labelled data whose labels become training or evaluation
/// targets. Then every frame must have at least one atom (an empty frame would make every
/// per-atom error 0/0; it is refused rather than skipped, so that frame indices and set sizes
/// stay what the file says) and a numeric, finite `energy=`, and every label it carries
/// ([`check_labels`]) must be finite. The first fault is an error naming the file, the frame
/// and, for an extxyz source, the line.
pub fn samples_of(
    frames: &[Atoms],
    source: &str,
    spec: &GraphSpec,
    require_energy: bool,
    mut on_frame: impl FnMut(),
) -> Result<Vec<Sample>, DataError> {
    let count_lines = (!is_qm9_layout(Path::new(source))).then(|| extxyz_count_lines(frames));
    frames
        .iter()
        .enumerate()
        .map(|(frame, atoms)| {
            if require_energy {
                check_labels(atoms).map_err(|(place, message)| {
                    let line = count_lines.as_ref().map(|lines| place.line(lines[frame]));
                    DataError::frame(source, frame, message).on_line(line)
                })?;
            }
            let sample = Sample::from_atoms(atoms, frame, source, spec);
            on_frame();
            sample
        })
        .collect()
}

/// The line of a frame a label fault lies on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LabelLine {
    /// The atom-count line.
    Count,
    /// The comment line, which holds the per-structure labels and declares the columns.
    Comment,
    /// The line of an atom (0-based).
    Atom(usize),
}

impl LabelLine {
    /// The 1-based line, for a frame whose count line is `count_line`.
    fn line(self, count_line: usize) -> usize {
        match self {
            LabelLine::Count => count_line,
            LabelLine::Comment => count_line + 1,
            LabelLine::Atom(atom) => count_line + 2 + atom,
        }
    }
}

/// The `stress` a frame records, in Voigt order: ASE writes it as a 3×3 matrix (9 numbers),
/// and reads 6 as Voigt components; anything else is an error.
fn stress_of(atoms: &Atoms) -> Result<Option<[f64; 6]>, String> {
    let Some(value) = atoms.info.get("stress") else {
        return Ok(None);
    };
    let numbers: Vec<f64> = match value {
        minima_atoms::Value::Floats(x) => x.clone(),
        minima_atoms::Value::Ints(x) => x.iter().map(|&i| i as f64).collect(),
        other => return Err(format!("info stress={other:?} is not a list of numbers")),
    };
    match numbers.as_slice() {
        &[xx, yy, zz, yz, xz, xy] => Ok(Some([xx, yy, zz, yz, xz, xy])),
        &[xx, xy, xz, _, yy, yz, _, _, zz] => Ok(Some([xx, yy, zz, yz, xz, xy])),
        other => Err(format!(
            "info stress has {} numbers: it must be 9 (a 3×3 matrix, as ASE writes it) or 6 (Voigt order)",
            other.len()
        )),
    }
}

/// Per-structure labels, on the comment line.
const STRUCTURE_LABELS: [&str; 4] = [keys::ENERGY, "free_energy", "stress", keys::SCALE];

/// Per-atom labels (name, values per atom). Their values are finite already: [`Atoms`]
/// holds no non-finite per-atom real, and the reader refuses one on its line.
const ATOM_LABELS: [(&str, usize); 2] = [(keys::FORCES, 3), ("energies", 1)];

/// Checks a frame of labelled data: at least one atom; a numeric `energy`; the labels of
/// [`STRUCTURE_LABELS`], where present, finite, and `scale` positive; those of
/// [`ATOM_LABELS`] real numbers of the right width (a `forces:I:3` column is not silently
/// ignored). The reader keeps non-finite info values as ASE writes them; this is where they
/// are refused, before they become targets. Two atoms closer than the data generators allow
/// ([`crate::sampling::too_close`]) are refused too: a reference's labels of such a collapse
/// (thousands of eV/Å) are no chemistry, and one such frame swamps the fit. The fault comes
/// with the line it is on.
pub fn check_labels(atoms: &Atoms) -> Result<(), (LabelLine, String)> {
    if atoms.is_empty() {
        return Err((
            LabelLine::Count,
            "no atoms: a labelled structure needs at least one".into(),
        ));
    }
    let comment = |message: String| Err((LabelLine::Comment, message));
    match atoms.info.get(keys::ENERGY) {
        None => return comment("missing label: no energy".into()),
        Some(value) if value.as_f64().is_none() => {
            return comment(format!(
                "label energy={} is not a number",
                clip(&keyval::format_value(value))
            ))
        }
        Some(_) => {}
    }
    for key in STRUCTURE_LABELS {
        let values = match atoms.info.get(key) {
            Some(Value::Float(x)) => std::slice::from_ref(x),
            Some(Value::Floats(v)) => v.as_slice(),
            _ => continue,
        };
        if let Some(bad) = values.iter().find(|x| !x.is_finite()) {
            return comment(format!("label {key} is not finite ({bad})"));
        }
    }
    if let Err(message) = equilibrium_flag(atoms) {
        return comment(message);
    }
    if let Some(scale) = atoms.scale().filter(|&s| s <= 0.0) {
        return comment(format!("label scale must be positive, not {scale}"));
    }
    for (name, width) in ATOM_LABELS {
        let Some(array) = atoms.array(name) else { continue };
        if !matches!(array.data, ArrayData::Float(_)) || array.width != width {
            return comment(format!(
                "label {name} must be {width} real number(s) per atom ({name}:R:{width} in Properties)"
            ));
        }
    }
    if let Some(array) = atoms.array(COMPLIANCE) {
        if compliance_of(atoms).is_none() {
            return comment(format!(
                "label {COMPLIANCE} must be real numbers, three per mode ({COMPLIANCE}:R:3M in Properties), not {} per atom",
                array.width
            ));
        }
    }
    if let Some((i, j, d)) = crate::sampling::too_close(atoms) {
        return Err((
            LabelLine::Atom(j),
            format!(
                "atoms {i} and {j} are {d:.3} Å apart, under {} of their covalent radii' sum: a \
                 collapsed geometry, whose labels would swamp the fit; leave the frame out",
                crate::sampling::MIN_DISTANCE_FRACTION
            ),
        ));
    }
    Ok(())
}

/// The count line of each frame of an extxyz file holding exactly `frames`, in order. The
/// reader accepts no blank line between frames, so this is exact for every file it read.
fn extxyz_count_lines(frames: &[Atoms]) -> Vec<usize> {
    frames
        .iter()
        .scan(1, |next, atoms| {
            let here = *next;
            *next += atoms.len() + 2;
            Some(here)
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
