//! Effective Medium Theory (Jacobsen, Stoltze & Nørskov, Surf. Sci. 366, 394 (1996)) exactly as
//! ASE's `ase.calculators.emt.EMT` implements it, with its default `asap_cutoff=False`: the
//! same parameter table, the same logistic cutoff (midpoint between the 3rd and 4th fcc
//! neighbour shells of the largest atom in the table, value 1e-4 at the 4th shell), the same
//! neighbour radius (`rc + 0.5` Å) and the ASAP convention that an isolated atom has energy
//! −E0. Energies, per-atom energies, analytic forces and the virial stress, open or periodic.
//!
//! Per atom i with neighbours j (w the cutoff function, χ_ij = n0_j / n0_i):
//! σ1_i = Σ_j χ_ij w(r) exp(−η2_j (r − β s0_j)); s_i = −ln(σ1_i / (12 γ1_i)) / (β η2_i);
//! E_i = E0_i [(1 + λ_i s_i) e^{−λ_i s_i} − 1] + 6 V0_i e^{−κ_i s_i}
//!       − ¼ Σ_j w [V0_i/γ2_i χ_ij e^{−κ_j (r/β − s0_j)} + V0_j/γ2_j χ_ji e^{−κ_i (r/β − s0_i)}].

use minima_atoms::cell::Vec3;
use minima_atoms::{element, Atoms};
use minima_neighbors::{fold_half_pairs, Edge};

use minima_atoms::{CalcError, Calculator, Labels};

/// The Bohr radius (Å) ASE's EMT parameters are converted with (`ase.units.Bohr`, CODATA 2014);
/// using ASE's value keeps the two implementations equal to rounding.
const ASE_BOHR: f64 = 0.5291772105638411;

/// β = (16π/3)^{1/3} / √2, rounded as ASE (and the original EMT code) rounds it.
const BETA: f64 = 1.809;

/// ASE's table: symbol, E0 (eV), s0 (bohr), V0 (eV), η2 (1/bohr), κ (1/bohr), λ (1/bohr),
/// n0 (1/bohr³). H, C, N and O are ASE's "just for fun" parameters, kept so the cutoff (set by
/// the largest s0 in the table) is the same as ASE's.
const PARAMETERS: [(&str, [f64; 7]); 11] = [
    ("Al", [-3.28, 3.00, 1.493, 1.240, 2.000, 1.169, 0.00700]),
    ("Cu", [-3.51, 2.67, 2.476, 1.652, 2.740, 1.906, 0.00910]),
    ("Ag", [-2.96, 3.01, 2.132, 1.652, 2.790, 1.892, 0.00547]),
    ("Au", [-3.80, 3.00, 2.321, 1.674, 2.873, 2.182, 0.00703]),
    ("Ni", [-4.44, 2.60, 3.673, 1.669, 2.757, 1.948, 0.01030]),
    ("Pd", [-3.90, 2.87, 2.773, 1.818, 3.107, 2.155, 0.00688]),
    ("Pt", [-5.85, 2.90, 4.067, 1.812, 3.145, 2.192, 0.00802]),
    ("H", [-3.21, 1.31, 0.132, 2.652, 2.790, 3.892, 0.00547]),
    ("C", [-3.50, 1.81, 0.332, 1.652, 2.790, 1.892, 0.01322]),
    ("N", [-5.10, 1.88, 0.132, 1.652, 2.790, 1.892, 0.01222]),
    ("O", [-4.60, 1.95, 0.332, 1.652, 2.790, 1.892, 0.00850]),
];

/// One element's parameters in Å and eV, with the derived normalisations γ1, γ2.
#[derive(Debug, Clone, Copy)]
struct Element {
    e0: f64,
    s0: f64,
    v0: f64,
    eta2: f64,
    kappa: f64,
    lambda: f64,
    n0: f64,
    inv_12_gamma1: f64,
    neg_half_v0_over_gamma2: f64,
}

/// The EMT calculator. Cheap to build; holds no per-structure state, so one instance serves
/// many threads. Single-threaded per structure unless built [`Emt::with_threads`].
#[derive(Debug, Clone)]
pub struct Emt {
    /// Midpoint of the logistic cutoff (Å).
    rc: f64,
    /// Neighbour search radius (Å).
    rc_list: f64,
    /// Steepness of the logistic cutoff (1/Å).
    acut: f64,
    /// Indexed by atomic number; `None` where EMT has no parameters.
    elements: Vec<Option<Element>>,
    /// Threads one structure is split over.
    threads: usize,
}

impl Default for Emt {
    fn default() -> Self {
        Emt::new()
    }
}

impl Emt {
    pub fn new() -> Emt {
        let max_s0 = PARAMETERS.iter().map(|(_, p)| p[1]).fold(0.0, f64::max) * ASE_BOHR;
        let r1nn = BETA * max_s0;
        let rc = r1nn * 0.5 * (3f64.sqrt() + 2.0);
        let acut = (1.0f64 / 1e-4 - 1.0).ln() / (2.0 * r1nn - rc);
        let mut emt = Emt {
            rc,
            rc_list: rc + 0.5,
            acut,
            elements: vec![None; 119],
            threads: 1,
        };
        for (symbol, p) in PARAMETERS {
            let z = element::by_symbol(symbol).expect("table symbols are elements").number;
            emt.elements[z as usize] = Some(emt.element(p));
        }
        emt
    }

    fn element(&self, p: [f64; 7]) -> Element {
        let s0 = p[1] * ASE_BOHR;
        let eta2 = p[3] / ASE_BOHR;
        let kappa = p[4] / ASE_BOHR;
        // γ1, γ2 normalise σ1, σ2 to the perfect fcc crystal's first three shells.
        let (mut gamma1, mut gamma2) = (0.0, 0.0);
        for (shell, count) in [12.0, 6.0, 24.0].into_iter().enumerate() {
            let r = BETA * s0 * ((shell + 1) as f64).sqrt();
            let weight = count * self.cutoff(r) / 12.0;
            gamma1 += weight * (-eta2 * (r - BETA * s0)).exp();
            gamma2 += weight * (-kappa / BETA * (r - BETA * s0)).exp();
        }
        Element {
            e0: p[0],
            s0,
            v0: p[2],
            eta2,
            kappa,
            lambda: p[5] / ASE_BOHR,
            n0: p[6] / ASE_BOHR.powi(3),
            inv_12_gamma1: 1.0 / (12.0 * gamma1),
            neg_half_v0_over_gamma2: -0.5 * p[2] / gamma2,
        }
    }

    fn cutoff(&self, r: f64) -> f64 {
        1.0 / (1.0 + (self.acut * (r - self.rc)).exp())
    }
}

/// One pair {i, j} within the neighbour radius (each pair once), with what the force pass
/// needs from the density pass.
struct Pair {
    i: usize,
    j: usize,
    /// r_j (+ image) − r_i, and its length.
    d: Vec3,
    r: f64,
    /// (dw/dr) / w of the cutoff.
    dw_over_w: f64,
    /// j's contribution to σ1_i and i's to σ1_j.
    sigma1_i: f64,
    sigma1_j: f64,
    /// The pair's atomic-sphere correction energy (half to each end) and its d/dr.
    sphere_energy: f64,
    sphere_de_dr: f64,
}

impl Emt {
    /// The same calculator, splitting each structure over `threads` threads (for single large
    /// structures; labelling many structures parallelises over structures instead). Only the
    /// search and the exponentials are split; the sums stay serial and in one order, so the
    /// result does not depend on the number of threads.
    pub fn with_threads(threads: usize) -> Emt {
        Emt {
            threads: threads.max(1),
            ..Emt::new()
        }
    }

    /// The density and atomic-sphere terms of one pair.
    fn pair(&self, params: &[&Element], edge: Edge) -> Pair {
        let (i, j) = (edge.i as usize, edge.j as usize);
        let r = edge.d2.sqrt();
        let (pi, pj) = (params[i], params[j]);
        let w = self.cutoff(r);
        let dw_over_w = self.acut * (w - 1.0);
        let chi = pj.n0 / pi.n0;
        let sigma1_i = (-pj.eta2 * (r - BETA * pj.s0)).exp() * chi * w;
        // Atomic-sphere correction: half of the pair's energy to each end.
        let e_i = pi.neg_half_v0_over_gamma2 * (-pj.kappa * (r / BETA - pj.s0)).exp() * chi * w;
        // Between atoms of one element both directions are equal: half the exponentials.
        let (sigma1_j, e_j) = if std::ptr::eq(pi, pj) {
            (sigma1_i, e_i)
        } else {
            (
                (-pi.eta2 * (r - BETA * pi.s0)).exp() / chi * w,
                pj.neg_half_v0_over_gamma2 * (-pi.kappa * (r / BETA - pi.s0)).exp() / chi * w,
            )
        };
        Pair {
            i,
            j,
            d: edge.d,
            r,
            dw_over_w,
            sigma1_i,
            sigma1_j,
            sphere_energy: 0.5 * (e_i + e_j),
            sphere_de_dr: e_i * (dw_over_w - pj.kappa / BETA) + e_j * (dw_over_w - pi.kappa / BETA),
        }
    }
}

impl Calculator for Emt {
    fn name(&self) -> &str {
        "emt"
    }

    fn calculate(&self, atoms: &Atoms) -> Result<Labels, CalcError> {
        let params: Vec<&Element> = atoms
            .elements()
            .map(|e| {
                self.elements[e.number as usize]
                    .as_ref()
                    .ok_or_else(|| CalcError::Unsupported(format!("EMT has no parameters for {}", e.symbol)))
            })
            .collect::<Result<_, _>>()?;
        let n = atoms.len();
        // The pair terms as the search finds the pairs: no neighbour list is stored.
        let runs = fold_half_pairs(
            atoms,
            self.rc_list,
            self.threads,
            std::mem::size_of::<Pair>(),
            Vec::with_capacity,
            |pairs, edge| pairs.push(self.pair(&params, edge)),
        )
        .map_err(|e| CalcError::Input(e.to_string()))?;
        let pairs = || runs.iter().flatten();
        let mut energies = vec![0.0; n];
        let mut sigma1 = vec![0.0; n];
        for p in pairs() {
            sigma1[p.i] += p.sigma1_i;
            sigma1[p.j] += p.sigma1_j;
            energies[p.i] += p.sphere_energy;
            energies[p.j] += p.sphere_energy;
        }

        // Cohesive energy of each atom's effective medium and its derivative by σ1; an atom
        // without neighbours keeps energy 0 (−E0 after the shift below), as in ASE/ASAP.
        let mut de_dsigma1 = vec![0.0; n];
        for a in 0..n {
            if sigma1[a] == 0.0 {
                continue;
            }
            let p = params[a];
            let s = -(sigma1[a] * p.inv_12_gamma1).ln() / (BETA * p.eta2);
            let lambda_s = p.lambda * s;
            let decay = (-lambda_s).exp();
            let six_v0 = 6.0 * p.v0 * (-p.kappa * s).exp();
            energies[a] += p.e0 * (1.0 + lambda_s) * decay + six_v0;
            let de_ds = -p.e0 * p.lambda * lambda_s * decay - p.kappa * six_v0;
            de_dsigma1[a] = de_ds / (-BETA * p.eta2 * sigma1[a]);
        }

        let mut forces = vec![[0.0; 3]; n];
        let mut virial = [[0.0; 3]; 3];
        for p in pairs() {
            let (pi, pj) = (params[p.i], params[p.j]);
            let de_dr = p.sphere_de_dr
                + de_dsigma1[p.i] * p.sigma1_i * (p.dw_over_w - pj.eta2)
                + de_dsigma1[p.j] * p.sigma1_j * (p.dw_over_w - pi.eta2);
            let f: Vec3 = p.d.map(|x| de_dr / p.r * x);
            for k in 0..3 {
                forces[p.i][k] += f[k];
                forces[p.j][k] -= f[k];
                for l in 0..3 {
                    virial[k][l] += p.d[k] * f[l];
                }
            }
        }
        for (e, p) in energies.iter_mut().zip(&params) {
            *e -= p.e0;
        }
        let stress = atoms.cell().filter(|_| atoms.is_periodic()).map(|cell| {
            let v = cell.volume();
            let s = |k: usize, l: usize| 0.5 * (virial[k][l] + virial[l][k]) / v;
            [s(0, 0), s(1, 1), s(2, 2), s(1, 2), s(0, 2), s(0, 1)]
        });
        Ok(Labels {
            energy: energies.iter().sum(),
            forces,
            energies: Some(energies),
            stress,
            deviation: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minima_atoms::build::fcc_supercell;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn rattled(atoms: &Atoms, amplitude: f64, seed: u64) -> Atoms {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = atoms.clone();
        let positions = atoms
            .positions()
            .iter()
            .map(|r| std::array::from_fn(|k| r[k] + rng.random_range(-amplitude..amplitude)))
            .collect();
        out.set_positions(positions).unwrap();
        out
    }

    fn energy(atoms: &Atoms) -> f64 {
        Emt::new().calculate(atoms).unwrap().energy
    }

    #[test]
    fn forces_are_minus_the_energy_gradient() {
        let mut cluster = rattled(&fcc_supercell(29, 3.6, 2), 0.15, 1);
        cluster = Atoms::new(cluster.numbers().to_vec(), cluster.positions().to_vec()).unwrap();
        let crystal = rattled(&fcc_supercell(13, 4.05, 2), 0.1, 2);
        for atoms in [cluster, crystal] {
            let labels = Emt::new().calculate(&atoms).unwrap();
            let h = 1e-5;
            for a in [0, 5, 17] {
                for k in 0..3 {
                    let mut moved = atoms.positions().to_vec();
                    moved[a][k] += h;
                    let mut plus = atoms.clone();
                    plus.set_positions(moved.clone()).unwrap();
                    moved[a][k] -= 2.0 * h;
                    let mut minus = atoms.clone();
                    minus.set_positions(moved).unwrap();
                    let numeric = -(energy(&plus) - energy(&minus)) / (2.0 * h);
                    assert!(
                        (numeric - labels.forces[a][k]).abs() < 1e-6,
                        "{numeric} vs {:?}",
                        labels.forces[a]
                    );
                }
            }
        }
    }

    #[test]
    fn perfect_crystal_has_no_forces_and_copper_binds_near_its_lattice_constant() {
        let per_atom = |a: f64| energy(&fcc_supercell(29, a, 3)) / 108.0;
        let labels = Emt::new().calculate(&fcc_supercell(29, 3.6, 3)).unwrap();
        assert!(labels.forces.iter().flatten().all(|f| f.abs() < 1e-10));
        // EMT's Cu minimum is near 3.59 Å; the energy rises on both sides.
        assert!(per_atom(3.59) < per_atom(3.45) && per_atom(3.59) < per_atom(3.75));
        let energies = labels.energies.unwrap();
        assert!(energies.iter().all(|e| (e - energies[0]).abs() < 1e-12));
    }

    #[test]
    fn threads_do_not_change_the_result() {
        // 864 atoms: the search is really split over the threads.
        let crystal = rattled(&fcc_supercell(29, 3.6, 6), 0.1, 3);
        let serial = Emt::new().calculate(&crystal).unwrap();
        for threads in [2, 3] {
            let parallel = Emt::with_threads(threads).calculate(&crystal).unwrap();
            assert_eq!(parallel.energy.to_bits(), serial.energy.to_bits());
            assert_eq!(parallel.forces, serial.forces);
            assert_eq!(parallel.stress, serial.stress);
        }
    }

    #[test]
    fn an_isolated_atom_has_energy_minus_e0_and_unknown_elements_are_refused() {
        let lone = Atoms::new(vec![29], vec![[0.0; 3]]).unwrap();
        assert!((energy(&lone) - 3.51).abs() < 1e-12);
        let iron = Atoms::new(vec![26], vec![[0.0; 3]]).unwrap();
        let err = Emt::new().calculate(&iron).unwrap_err().to_string();
        assert!(err.contains("Fe"), "{err}");
    }
}
