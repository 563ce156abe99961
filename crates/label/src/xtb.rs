//! GFN2-xTB (Bannwarth, Ehlert & Grimme 2019) through the `xtb` program, for molecules.
//!
//! One process per structure in its own directory: `xtb coord.xyz --gfn 2 --grad`, with one
//! OpenMP thread (xtb's threads spin and run 10× slower on a busy 2-core machine; run
//! structures in parallel instead). The total energy and the gradient come from the Turbomole
//! `gradient` file xtb writes (Eh and Eh/bohr); a run that ends abnormally (no SCF
//! convergence) exits non-zero and is reported as failed, never as a number. The charge is the
//! frame's `charge` info (default 0); `uhf` (unpaired electrons) likewise.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use minima_atoms::Atoms;

use crate::process::{run_in_temporary_directory, Finished};
use crate::{integer_info, CalcError, Calculator, Labels};

#[derive(Debug, Clone)]
pub struct Xtb {
    /// The program to run.
    pub executable: String,
    /// Seconds before a run is killed and recorded as failed.
    pub timeout: Duration,
    /// `--acc`: xtb's accuracy level (1 is its default; smaller is tighter).
    pub accuracy: f64,
}

impl Default for Xtb {
    fn default() -> Self {
        Xtb {
            executable: "xtb".into(),
            timeout: Duration::from_secs(300),
            accuracy: 1.0,
        }
    }
}

/// The xyz text of `atoms` (Å), as xtb reads it.
fn xyz(atoms: &Atoms) -> String {
    let mut text = format!("{}\n\n", atoms.len());
    for (e, r) in atoms.elements().zip(atoms.positions()) {
        text.push_str(&format!("{} {:.12} {:.12} {:.12}\n", e.symbol, r[0], r[1], r[2]));
    }
    text
}

impl Calculator for Xtb {
    fn name(&self) -> &str {
        "xtb"
    }

    fn calculate(&self, atoms: &Atoms) -> Result<Labels, CalcError> {
        let finished = self.run(atoms, "--grad")?;
        read_gradient(&finished.dir.path().join("gradient"), atoms.len())
    }
}

impl Xtb {
    /// The Cartesian Hessian of `atoms` (3N × 3N, row-major, eV/Å²) from `xtb --hess` (xtb's
    /// semi-numerical second derivatives at the geometry given, which should be a minimum of
    /// GFN2-xTB), read from the `hessian` file it writes in Eh/bohr² and converted here, once.
    pub fn hessian(&self, atoms: &Atoms) -> Result<Vec<f64>, CalcError> {
        let finished = self.run(atoms, "--hess")?;
        let path = finished.dir.path().join("hessian");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| CalcError::Failed(format!("xtb wrote no hessian file ({e})")))?;
        parse_hessian(&text, atoms.len()).map_err(|m| CalcError::Failed(format!("xtb hessian file: {m}")))
    }

    /// Runs `xtb coord.xyz --gfn 2 TASK` on `atoms`: the finished run, whose directory holds
    /// the files xtb wrote until it is dropped.
    fn run(&self, atoms: &Atoms, task: &str) -> Result<Finished, CalcError> {
        if atoms.is_periodic() {
            return Err(CalcError::Unsupported(
                "xtb labels molecules; this frame is periodic (use emt or cp2k)".into(),
            ));
        }
        let mut command = Command::new(&self.executable);
        command
            .args(["coord.xyz", "--gfn", "2", task, "--acc"])
            .arg(self.accuracy.to_string())
            .env("OMP_NUM_THREADS", "1")
            .env("MKL_NUM_THREADS", "1")
            .env("OPENBLAS_NUM_THREADS", "1")
            // xtb's Fortran runtime needs a stack larger than the default for big molecules.
            .env("OMP_STACKSIZE", "1G");
        if let Some(charge) = integer_info(atoms, "charge")? {
            command.args(["--chrg", &charge.to_string()]);
        }
        if let Some(uhf) = integer_info(atoms, "uhf")? {
            command.args(["--uhf", &uhf.to_string()]);
        }
        let text = xyz(atoms);
        run_in_temporary_directory(command, self.timeout, |dir| std::fs::write(dir.join("coord.xyz"), text))
    }
}

/// The Hessian of an `n`-atom structure from xtb's `hessian` file: `$hessian`, then the
/// (3n)² values row by row in Eh/bohr², converted to eV/Å².
fn parse_hessian(text: &str, n: usize) -> Result<Vec<f64>, String> {
    use minima_atoms::{BOHR_ANGSTROM, HARTREE_EV};
    let body = text
        .split_once("$hessian")
        .map(|(_, rest)| rest)
        .ok_or("no $hessian line")?;
    let body = body.split('$').next().unwrap_or_default();
    let values: Vec<f64> = body
        .split_whitespace()
        .map(|v| v.replace(['D', 'd'], "E").parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("a value is not a number ({e})"))?;
    let expected = 9 * n * n;
    if values.len() != expected {
        return Err(format!("{} values, not the {expected} of {n} atoms", values.len()));
    }
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(format!("non-finite value {bad}"));
    }
    let unit = HARTREE_EV / (BOHR_ANGSTROM * BOHR_ANGSTROM);
    Ok(values.into_iter().map(|v| v * unit).collect())
}

/// Energy and forces from a Turbomole `gradient` file (Eh, Eh/bohr) of an `n`-atom structure.
fn read_gradient(path: &Path, n: usize) -> Result<Labels, CalcError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CalcError::Failed(format!("xtb wrote no gradient file ({e})")))?;
    parse_gradient(&text, n).map_err(|m| CalcError::Failed(format!("xtb gradient file: {m}")))
}

fn parse_gradient(text: &str, n: usize) -> Result<Labels, String> {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("$grad"))
        .skip(1);
    let header = lines.next().ok_or("no cycle line after $grad")?;
    let energy = header
        .split("SCF energy =")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|e| e.parse::<f64>().ok())
        .ok_or_else(|| format!("no energy in {header:?}"))?;
    let mut gradient_lines = lines.skip(n);
    let mut forces = Vec::with_capacity(n);
    for atom in 0..n {
        let line = gradient_lines
            .next()
            .ok_or(format!("gradient of atom {atom} is missing"))?;
        let values: Vec<f64> = line
            .split_whitespace()
            .map(|v| v.replace(['D', 'd'], "E").parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("bad gradient line {line:?}"))?;
        if values.len() != 3 {
            return Err(format!("bad gradient line {line:?}"));
        }
        forces.push([-values[0], -values[1], -values[2]]);
    }
    Ok(Labels::from_atomic_units(energy, forces))
}

#[cfg(test)]
mod tests {
    use super::*;
    use minima_atoms::{BOHR_ANGSTROM, HARTREE_EV};

    #[test]
    fn reads_turbomole_gradient_in_ev_per_angstrom() {
        let text = "$grad\n  cycle =      1    SCF energy =    -5.07037076185   |dE/dxyz| =  0.007222\n\
            0.0 0.0 0.2216 O\n0.0 1.43 -0.88 H\n0.0 -1.43 -0.88 H\n\
            0.0 0.0 2.9402221161205E-03\n0.0 -4.4262812903952D-03 -1.47E-03\n0.0 4.42628E-03 -1.47E-03\n$end\n";
        let labels = parse_gradient(text, 3).unwrap();
        assert!((labels.energy - -5.07037076185 * HARTREE_EV).abs() < 1e-9);
        let expected = -2.9402221161205e-3 * HARTREE_EV / BOHR_ANGSTROM;
        assert!((labels.forces[0][2] - expected).abs() < 1e-12);
        assert!(parse_gradient(&text[..text.len() - 60], 3).is_err());
    }

    #[test]
    fn reads_the_hessian_in_ev_per_square_angstrom() {
        let values: String = (0..9).map(|k| format!(" {}.5D-01", k)).collect();
        let text = format!("$hessian\n{values}\n");
        let hessian = parse_hessian(&text, 1).unwrap();
        let unit = HARTREE_EV / (BOHR_ANGSTROM * BOHR_ANGSTROM);
        assert!((hessian[4] - 0.45 * unit).abs() < 1e-12);
        assert!(parse_hessian(&text, 2).unwrap_err().contains("9 values, not the 36"));
        assert!(parse_hessian("$hessian\n 1.0 x\n", 1).is_err());
    }
}
