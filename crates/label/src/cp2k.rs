//! PBE DFT through CP2K (the VIMPNN paper's reference): GTH pseudopotentials, the
//! DZVP-MOLOPT-SR-GTH basis, plane-wave cutoff 400 Ry. Molecules sit in a cubic box (the
//! non-periodic wavelet Poisson solver needs one) with `vacuum` Å between the atoms and each
//! face. Stretched geometries converge with orbital transformation (OT) inside outer SCF loops;
//! a run whose SCF does not converge is reported as failed. Odd electron counts run
//! spin-unrestricted as doublets. Periodic cells are not set up here (use `emt` for metals).
//!
//! Each structure runs as `mpirun -np RANKS cp2k.psmp` with one OpenMP thread per rank, in its
//! own directory. The pseudopotential's valence charge per element is the first `GTH-PBE-qN`
//! entry of CP2K's `GTH_POTENTIALS` in `data_dir`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use minima_atoms::Atoms;

use crate::process::run_in_temporary_directory;
use crate::{integer_info, CalcError, Calculator, Labels};

#[derive(Debug, Clone)]
pub struct Cp2k {
    pub executable: String,
    /// MPI ranks per structure (1 runs without mpirun).
    pub ranks: usize,
    /// CP2K's data files (basis sets, pseudopotentials).
    pub data_dir: PathBuf,
    /// Plane-wave cutoff and relative cutoff of the multigrid (Ry).
    pub cutoff: f64,
    pub rel_cutoff: f64,
    /// Empty space between the atoms and each face of the box (Å).
    pub vacuum: f64,
    pub basis: String,
    pub timeout: Duration,
    /// The valence charge of each element's pseudopotential, read once from `data_dir`.
    pub(crate) valences: OnceLock<Result<HashMap<String, u32>, String>>,
}

impl Default for Cp2k {
    fn default() -> Self {
        Cp2k {
            executable: "cp2k.psmp".into(),
            ranks: 2,
            data_dir: PathBuf::from("/usr/share/cp2k"),
            cutoff: 400.0,
            rel_cutoff: 50.0,
            vacuum: 5.0,
            basis: "DZVP-MOLOPT-SR-GTH".into(),
            timeout: Duration::from_secs(3600),
            valences: OnceLock::new(),
        }
    }
}

impl Cp2k {
    fn valences(&self) -> Result<&HashMap<String, u32>, CalcError> {
        self.valences
            .get_or_init(|| {
                let path = self.data_dir.join("GTH_POTENTIALS");
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e} (is CP2K installed? apt-get install cp2k)", path.display()))?;
                let mut valences = HashMap::new();
                for line in text.lines() {
                    let mut words = line.split_whitespace();
                    if let (Some(symbol), Some(name)) = (words.next(), words.next()) {
                        if let Some(q) = name.strip_prefix("GTH-PBE-q").and_then(|q| q.parse().ok()) {
                            valences.entry(symbol.to_string()).or_insert(q);
                        }
                    }
                }
                Ok(valences)
            })
            .as_ref()
            .map_err(|m| CalcError::Missing(m.clone()))
    }

    /// The CP2K input for `atoms`, centred in its cubic box.
    fn input(&self, atoms: &Atoms) -> Result<String, CalcError> {
        let valences = self.valences()?;
        let charge = integer_info(atoms, "charge")?.unwrap_or(0);
        let mut electrons = -charge;
        let mut kinds = String::new();
        let mut seen = Vec::new();
        for e in atoms.elements() {
            let q = *valences
                .get(e.symbol)
                .ok_or_else(|| CalcError::Unsupported(format!("no GTH-PBE pseudopotential for {}", e.symbol)))?;
            electrons += q as i64;
            if !seen.contains(&e.symbol) {
                seen.push(e.symbol);
                kinds.push_str(&format!(
                    "    &KIND {s}\n      BASIS_SET {b}\n      POTENTIAL GTH-PBE-q{q}\n    &END KIND\n",
                    s = e.symbol,
                    b = self.basis
                ));
            }
        }
        let (lo, hi) = bounding_box(atoms.positions());
        let side = (0..3).map(|k| hi[k] - lo[k]).fold(0.0, f64::max) + 2.0 * self.vacuum;
        let mut coords = String::new();
        for (e, r) in atoms.elements().zip(atoms.positions()) {
            let centred: Vec<f64> = (0..3).map(|k| r[k] - 0.5 * (lo[k] + hi[k]) + 0.5 * side).collect();
            coords.push_str(&format!(
                "      {} {:.12} {:.12} {:.12}\n",
                e.symbol, centred[0], centred[1], centred[2]
            ));
        }
        let spin = if electrons % 2 == 1 {
            "    UKS\n    MULTIPLICITY 2\n"
        } else {
            ""
        };
        Ok(format!(
            "&GLOBAL\n  PROJECT minima\n  RUN_TYPE ENERGY_FORCE\n  PRINT_LEVEL LOW\n&END GLOBAL\n\
             &FORCE_EVAL\n  METHOD Quickstep\n  &DFT\n    BASIS_SET_FILE_NAME BASIS_MOLOPT\n\
             \x20   POTENTIAL_FILE_NAME GTH_POTENTIALS\n    CHARGE {charge}\n{spin}\
             \x20   &MGRID\n      CUTOFF {cutoff}\n      REL_CUTOFF {rel}\n    &END MGRID\n\
             \x20   &POISSON\n      PERIODIC NONE\n      PSOLVER WAVELET\n    &END POISSON\n\
             \x20   &SCF\n      SCF_GUESS ATOMIC\n      EPS_SCF 1.0E-6\n      MAX_SCF 50\n\
             \x20     &OT\n        MINIMIZER DIIS\n        PRECONDITIONER FULL_ALL\n      &END OT\n\
             \x20     &OUTER_SCF\n        EPS_SCF 1.0E-6\n        MAX_SCF 20\n      &END OUTER_SCF\n\
             \x20   &END SCF\n    &XC\n      &XC_FUNCTIONAL PBE\n      &END XC_FUNCTIONAL\n    &END XC\n\
             \x20 &END DFT\n  &SUBSYS\n    &CELL\n      ABC {side:.6} {side:.6} {side:.6}\n      PERIODIC NONE\n\
             \x20   &END CELL\n    &COORD\n{coords}    &END COORD\n{kinds}  &END SUBSYS\n\
             \x20 &PRINT\n    &FORCES ON\n    &END FORCES\n  &END PRINT\n&END FORCE_EVAL\n",
            cutoff = self.cutoff,
            rel = self.rel_cutoff,
        ))
    }
}

fn bounding_box(positions: &[[f64; 3]]) -> ([f64; 3], [f64; 3]) {
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for r in positions {
        for k in 0..3 {
            lo[k] = lo[k].min(r[k]);
            hi[k] = hi[k].max(r[k]);
        }
    }
    (lo, hi)
}

impl Calculator for Cp2k {
    fn name(&self) -> &str {
        "cp2k"
    }

    fn calculate(&self, atoms: &Atoms) -> Result<Labels, CalcError> {
        if atoms.is_periodic() {
            return Err(CalcError::Unsupported(
                "cp2k labelling is set up for molecules; this frame is periodic (use emt)".into(),
            ));
        }
        let input = self.input(atoms)?;
        let mut command = if self.ranks > 1 {
            let mut c = Command::new("mpirun");
            c.args(["-np", &self.ranks.to_string(), &self.executable]);
            c
        } else {
            Command::new(&self.executable)
        };
        command
            .args(["-i", "minima.inp", "-o", "minima.out"])
            .env("OMP_NUM_THREADS", "1")
            .env("CP2K_DATA_DIR", &self.data_dir)
            // Open MPI refuses to start as root unless told that this is intended (containers).
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        let finished = run_in_temporary_directory(command, self.timeout, |dir| {
            std::fs::write(dir.join("minima.inp"), input)
        })?;
        let output = std::fs::read_to_string(finished.dir.path().join("minima.out"))
            .map_err(|e| CalcError::Failed(format!("cp2k wrote no output ({e})")))?;
        parse_output(&output, atoms.len()).map_err(|m| CalcError::Failed(format!("cp2k: {m}")))
    }
}

/// Energy and forces from CP2K's main output (Hartree, Hartree/bohr).
fn parse_output(text: &str, n: usize) -> Result<Labels, String> {
    if text.contains("SCF run NOT converged") || text.contains("FAILED to converge") {
        return Err("SCF did not converge".into());
    }
    let energy = text
        .lines()
        .rfind(|l| l.contains("ENERGY| Total FORCE_EVAL"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|e| e.trim().parse::<f64>().ok())
        .ok_or("no total energy in the output (did it finish?)")?;
    let forces_block = text
        .rsplit("ATOMIC FORCES in [a.u.]")
        .next()
        .filter(|_| text.contains("ATOMIC FORCES"));
    let block = forces_block.ok_or("no ATOMIC FORCES block in the output")?;
    let mut forces = Vec::with_capacity(n);
    for line in block.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() == 6 && words[0].parse::<usize>().is_ok() {
            let f: Vec<f64> = words[3..]
                .iter()
                .map(|w| w.parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|_| format!("bad force line {line:?}"))?;
            forces.push([f[0], f[1], f[2]]);
            if forces.len() == n {
                break;
            }
        }
    }
    if forces.len() != n {
        return Err(format!("{} forces for {n} atoms", forces.len()));
    }
    Ok(Labels::from_atomic_units(energy, forces))
}

#[cfg(test)]
mod tests {
    use super::*;
    use minima_atoms::{BOHR_ANGSTROM, HARTREE_EV};

    #[test]
    fn parses_energy_and_forces_and_refuses_unconverged_runs() {
        let out = " ENERGY| Total FORCE_EVAL ( QS ) energy [a.u.]:               -1.161622234436218\n\n\
             \x20ATOMIC FORCES in [a.u.]\n\n # Atom   Kind   Element          X              Y              Z\n\
             \x20     1      1      H           0.00000000     0.00000000     0.01645419\n\
             \x20     2      1      H           0.00000000     0.00000000    -0.01645419\n\
             \x20SUM OF ATOMIC FORCES           0.00000000     0.00000000    -0.00000000     0.00000000\n";
        let labels = parse_output(out, 2).unwrap();
        assert!((labels.energy - -1.161622234436218 * HARTREE_EV).abs() < 1e-9);
        assert!((labels.forces[1][2] + 0.01645419 * HARTREE_EV / BOHR_ANGSTROM).abs() < 1e-12);
        let unconverged = format!(" *** SCF run NOT converged ***\n{out}");
        assert!(parse_output(&unconverged, 2).unwrap_err().contains("converge"));
        assert!(parse_output(out, 3).is_err());
    }

    #[test]
    fn water_input_has_a_cubic_box_and_each_kind_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("GTH_POTENTIALS"), "H GTH-PBE-q1\nO GTH-PBE-q6\n").unwrap();
        let cp2k = Cp2k {
            data_dir: dir.path().to_path_buf(),
            ..Cp2k::default()
        };
        let water = Atoms::new(
            vec![8, 1, 1],
            vec![[0.0, 0.0, 0.12], [0.0, 0.76, -0.47], [0.0, -0.76, -0.47]],
        )
        .unwrap();
        let input = cp2k.input(&water).unwrap();
        assert!(input.contains("ABC 11.520000 11.520000 11.520000"), "{input}");
        assert_eq!(input.matches("&KIND H").count(), 1);
        assert!(input.contains("POTENTIAL GTH-PBE-q6") && !input.contains("UKS"));
        let mut hydroxyl = Atoms::new(vec![8, 1], vec![[0.0; 3], [0.0, 0.0, 0.97]]).unwrap();
        assert!(cp2k.input(&hydroxyl).unwrap().contains("MULTIPLICITY 2"));
        hydroxyl
            .info
            .insert("charge".into(), minima_atoms::Value::Str("minus one".into()));
        let err = cp2k.input(&hydroxyl).unwrap_err().to_string();
        assert!(err.contains("charge") && err.contains("not an integer"), "{err}");
    }
}
