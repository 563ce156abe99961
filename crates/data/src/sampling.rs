//! Data that covers what a relaxation visits: structures displaced from a base structure, each
//! unlabelled (`minima label` labels them) and marked `equilibrium=F`, recording how it was
//! made so that a run can be reproduced and a split keeps it with its base structure.
//!
//! - [`rattle`]: Gaussian displacements of every coordinate, as ASE's `Atoms.rattle`;
//! - [`normal_mode_sample`]: displacements along the normal modes of a minimum at a
//!   temperature, the normal-mode sampling of the ANI-1 data set (Smith, Isayev & Roitberg,
//!   Chem. Sci. 8, 3192 (2017), section "Normal mode sampling").
//!
//! Both refuse geometries with two atoms closer than [`min_distance`]: they draw again, at most
//! [`MAX_DRAWS`] times, and then give up on that sample, which the caller counts.

use minima_atoms::{element, keys, Atoms, Value, Vec3};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{gaussian, group_key};

/// The info key of the equilibrium flag: `T` on a minimum of the reference that labels the
/// frame, `F` on a frame known not to be one (see [`crate::Sample::is_equilibrium`]).
pub const EQUILIBRIUM: &str = "equilibrium";

/// The per-atom column of a minimum's compliance modes ([`compliance_modes`]), which the
/// `minimum_shift` loss reads.
pub const COMPLIANCE: &str = "compliance";

/// Boltzmann's constant, eV/K (CODATA 2018, exact).
pub const BOLTZMANN_EV: f64 = 8.617_333_262e-5;

/// Draws per sample before it is given up (skipped and counted).
pub const MAX_DRAWS: usize = 10;

/// The fraction of the sum of covalent radii two atoms may approach: a displaced geometry with
/// `d_ij < MIN_DISTANCE_FRACTION · (r_i + r_j)` is refused. 0.6 keeps every bond of the
/// shipped sets (C–H at scale 0.9: 0.98 Å, limit 0.64 Å; fcc Cu at 0.9: 2.30 Å, limit 1.58 Å)
/// and refuses what no reference labels meaningfully (H–H under 0.38 Å, C–C under 0.91 Å).
pub const MIN_DISTANCE_FRACTION: f64 = 0.6;

/// The closest two atoms of elements `a` and `b` may be in a generated geometry (Å).
pub fn min_distance(a: u8, b: u8) -> f64 {
    let radius = |z: u8| element::by_number(z).map_or(0.0, |e| e.covalent_radius);
    MIN_DISTANCE_FRACTION * (radius(a) + radius(b))
}

/// The first pair of atoms closer than [`min_distance`] (periodic images included), as
/// `(i, j, distance)`. A molecule is checked pair by pair: the linked-cell list bins a
/// planar molecule whose off-plane coordinates are rounding noise (1e-17 Å after a
/// relaxation) into bins that thin, and a few hundred atoms cost nothing pair by pair.
pub fn too_close(atoms: &Atoms) -> Option<(usize, usize, f64)> {
    let numbers = atoms.numbers();
    if !atoms.is_periodic() {
        return (0..atoms.len()).find_map(|i| {
            (i + 1..atoms.len())
                .map(|j| (i, j, atoms.distance(i, j)))
                .find(|&(i, j, d)| d < min_distance(numbers[i], numbers[j]))
        });
    }
    let largest = atoms.elements().map(|e| e.covalent_radius).fold(0.0, f64::max);
    let list = minima_neighbors::neighbor_list(atoms, 2.0 * MIN_DISTANCE_FRACTION * largest).ok()?;
    (0..list.len()).find_map(|e| {
        let (i, j) = (list.first[e] as usize, list.second[e] as usize);
        let d = list.distances[e];
        (d < min_distance(numbers[i], numbers[j])).then_some((i, j, d))
    })
}

/// The seed of draw `draw` of sample `sample` of frame `frame`, from the run's `seed`: each
/// sample has its own stream, so a sample does not change when others are added or skipped.
/// SplitMix64's finaliser mixes the parts; the result fits an extxyz integer (63 bits).
pub fn sample_seed(seed: u64, frame: usize, sample: usize, draw: usize) -> u64 {
    let mut x = seed;
    for part in [frame as u64, sample as u64, draw as u64] {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15).wrapping_add(part);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
    }
    x >> 1
}

/// Marks a frame moved off its scan line: a recorded `scale` no longer describes its geometry
/// and becomes `base_scale`, so that the frame joins no scan (whose curve and DSC a second
/// geometry at one scale would break) but keeps where it came from.
pub fn off_the_scan(atoms: &mut Atoms) {
    if let Some(scale) = atoms.info.shift_remove(keys::SCALE) {
        atoms.info.insert("base_scale".into(), scale);
    }
}

/// A displaced copy of `base` (frame `frame` of `source`) at `positions`: the labels, the
/// compliance modes and the marks of earlier labelling removed, `equilibrium=F`, and `base_frame` recording the frame
/// it was made from. The provenance `base` carries (`qm9_index`, `element`, …) is kept so that
/// [`group_key`] puts the copy with its base structure; a base without any gets
/// `base_id=SOURCE#FRAME`. `scale` no longer describes the geometry and becomes `base_scale`.
pub fn displaced(base: &Atoms, positions: Vec<Vec3>, source: &str, frame: usize) -> Atoms {
    let mut out = base.clone();
    out.set_positions(positions)
        .expect("one finite position per atom of the base");
    for key in [
        keys::ENERGY,
        "free_energy",
        "stress",
        "calculator",
        "label_index",
        "label_fingerprint",
        EQUILIBRIUM,
    ] {
        out.info.shift_remove(key);
    }
    // The compliance modes are the minimum's: a displaced copy is no minimum.
    for array in [keys::FORCES, "energies", COMPLIANCE] {
        out.remove_array(array);
    }
    off_the_scan(&mut out);
    if group_key(base, frame).starts_with("frame:") {
        out.info
            .insert("base_id".into(), Value::Str(format!("{source}#{frame}")));
    }
    out.info.insert("base_frame".into(), Value::Int(frame as i64));
    out.info.insert(EQUILIBRIUM.into(), Value::Bool(false));
    out
}

/// Draws `attempt(rng)` with the seeds [`sample_seed`]`(seed, frame, sample, 0..MAX_DRAWS)`
/// until its geometry has no pair closer than [`min_distance`]; the accepted positions and
/// their seed, or `None` when every draw was too close.
fn first_acceptable(
    base: &Atoms,
    seed: u64,
    frame: usize,
    sample: usize,
    mut attempt: impl FnMut(&mut ChaCha8Rng) -> Vec<Vec3>,
) -> Option<(Vec<Vec3>, u64)> {
    (0..MAX_DRAWS).find_map(|draw| {
        let draw_seed = sample_seed(seed, frame, sample, draw);
        let positions = attempt(&mut ChaCha8Rng::seed_from_u64(draw_seed));
        let mut trial = base.clone();
        trial.set_positions(positions.clone()).ok()?;
        too_close(&trial).is_none().then_some((positions, draw_seed))
    })
}

/// `base` rattled as ASE's `Atoms.rattle(stdev=amplitude)`: every Cartesian coordinate moved
/// by an independent Gaussian deviate of standard deviation `amplitude` (Å), drawn from
/// ChaCha8 seeded with [`sample_seed`]`(seed, frame, sample, draw)`; a periodic cell stays as
/// it is. Records `rattle_amplitude` and `rattle_seed` (the accepted draw's seed: ChaCha8 from
/// it, three deviates per atom in order x, y, z, gives the displacement). `None` when
/// [`MAX_DRAWS`] draws all put two atoms closer than [`min_distance`].
pub fn rattle(base: &Atoms, amplitude: f64, seed: u64, source: &str, frame: usize, sample: usize) -> Option<Atoms> {
    let (positions, draw_seed) = first_acceptable(base, seed, frame, sample, |rng| {
        base.positions()
            .iter()
            .map(|r| r.map(|x| x + amplitude * gaussian(rng)))
            .collect()
    })?;
    let mut out = displaced(base, positions, source, frame);
    out.info.insert("rattle_amplitude".into(), Value::Float(amplitude));
    out.info.insert("rattle_seed".into(), Value::Int(draw_seed as i64));
    Some(out)
}

/// The vibrations of a structure at a minimum: Cartesian unit displacement vectors and their
/// force constants, translations (and, for a molecule, rotations) excluded.
#[derive(Debug, Clone)]
pub struct NormalModes {
    /// Each mode as a unit vector of 3N Cartesian components (x₁ y₁ z₁ x₂ …).
    pub vectors: Vec<Vec<f64>>,
    /// `K_i = u_iᵀ H u_i` (eV/Å²) of each unit mode `u_i`; `ω_i² = K_i / μ_i`.
    pub force_constants: Vec<f64>,
}

/// Below this force constant (eV/Å²) a mode is taken to be flat or unstable: the structure is
/// then not a minimum and normal-mode sampling refuses it (a flat mode would be displaced
/// without bound). 1e-3 eV/Å² is a vibration of about 4 cm⁻¹ for hydrogen.
pub const MIN_FORCE_CONSTANT: f64 = 1e-3;

/// The normal modes of `atoms` from its Cartesian Hessian `hessian` (3N × 3N, row-major,
/// eV/Å²): the eigenvectors `e_i` of the mass-weighted Hessian `M^{-1/2} H M^{-1/2}` (masses
/// in amu) after projecting out the rigid motions — the three translations, and for a
/// molecule (no periodic axis) the rotations about its centre of mass (two for a linear one) —
/// in mass-weighted coordinates, as Gaussian's and ASE's vibrational analyses do. The
/// Cartesian mode is `M^{-1/2} e_i`, normalised to `u_i`; these are `H`-orthogonal, so a sum
/// of displacements has the harmonic energy of its parts. An error when a vibrational mode has
/// a force constant below [`MIN_FORCE_CONSTANT`] (not a minimum).
pub fn normal_modes(atoms: &Atoms, hessian: &[f64]) -> Result<NormalModes, String> {
    let n = hessian_size(atoms, hessian)?;
    let masses: Vec<f64> = atoms.elements().map(|e| e.mass).collect();
    let inv_sqrt_mass = |k: usize| 1.0 / masses[k / 3].sqrt();
    let rigid = rigid_motions(atoms, &masses);
    let mut weighted = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            let symmetric = 0.5 * (hessian[i * n + j] + hessian[j * n + i]);
            weighted[i * n + j] = symmetric * inv_sqrt_mass(i) * inv_sqrt_mass(j);
        }
    }
    let vibrations = vibrations(&weighted, &rigid, n);
    let mut modes = NormalModes {
        vectors: Vec::new(),
        force_constants: Vec::new(),
    };
    for (value, vector) in vibrations {
        let cartesian: Vec<f64> = (0..n).map(|i| vector[i] * inv_sqrt_mass(i)).collect();
        let length = cartesian.iter().map(|x| x * x).sum::<f64>().sqrt();
        let unit: Vec<f64> = cartesian.iter().map(|x| x / length).collect();
        // K = ω² μ with μ = 1/|M^-½ e|²: the eigenvalue over the squared length.
        let force_constant = value / (length * length);
        check_minimum(force_constant)?;
        modes.vectors.push(unit);
        modes.force_constants.push(force_constant);
    }
    Ok(modes)
}

/// 3N for the `N` atoms of `atoms`, or an error when `hessian` is not 3N × 3N.
fn hessian_size(atoms: &Atoms, hessian: &[f64]) -> Result<usize, String> {
    let n = 3 * atoms.len();
    if hessian.len() != n * n {
        return Err(format!(
            "a Hessian of {} values for {} atoms",
            hessian.len(),
            atoms.len()
        ));
    }
    Ok(n)
}

/// The vibrations of the symmetric matrix `a` (n × n, row-major) with the rigid motions
/// `rigid` (orthonormal) removed: its n − |rigid| eigenpairs in `P a P` orthogonal to them, in
/// ascending order of eigenvalue.
fn vibrations(a: &[f64], rigid: &[Vec<f64>], n: usize) -> Vec<(f64, Vec<f64>)> {
    // P a P + LARGE (1 - P): the rigid motions become the top eigenvalues, far from every
    // vibration, and the n - |rigid| lowest are the vibrations.
    let projected = project_out(a, rigid, n);
    let largest = projected.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let shift = 1e3 * (1.0 + largest);
    let mut shifted = projected;
    for v in rigid {
        for i in 0..n {
            for j in 0..n {
                shifted[i * n + j] += shift * v[i] * v[j];
            }
        }
    }
    let (values, vectors) = symmetric_eigen(shifted, n);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    order[..n - rigid.len()]
        .iter()
        .map(|&k| (values[k], (0..n).map(|i| vectors[i * n + k]).collect()))
        .collect()
}

/// An error unless `force_constant` (eV/Å²) is that of a vibration about a minimum.
fn check_minimum(force_constant: f64) -> Result<(), String> {
    if force_constant < MIN_FORCE_CONSTANT {
        return Err(format!(
            "not a minimum: a vibrational mode has force constant {force_constant:.3e} eV/Å² \
             (below {MIN_FORCE_CONSTANT}); relax it first (minima data relaxed)"
        ));
    }
    Ok(())
}

/// The per-atom column of a minimum's compliance modes: the vibrations `v` of the reference's
/// Cartesian Hessian (3N × 3N, row-major, eV/Å²; rigid translations and rotations about the
/// centroid projected out, as the Kabsch superposition of ΔP removes them) whose force
/// constant `k` is below `max_force_constant`, each as `v / k` (Å²/eV). To first order a force
/// error ΔF moves the minimum by x = H⁺ΔF = Σ (v·ΔF / k) v, and |x|² = Σ ((v/k)·ΔF)²: the stiff
/// modes, left out, move it little (a bond stretch of 30 eV/Å² by 0.003 Å for a 0.1 eV/Å
/// error; a torsion of 0.1 eV/Å² by 1 Å). Atom `i`'s row holds the x, y, z of each mode in turn
/// (`3M` values; none when no mode is that soft). A flat or slightly unstable mode (force
/// constant below [`MIN_FORCE_CONSTANT`]: a nearly free rotor, or a minimum relaxed only to
/// fmax 0.01) is left out: along it the reference fixes no minimum for a force error to move,
/// so the first-order shift is undefined there (kept and floored, such modes dominated the
/// frames that had them and undid the term's gain, docs/finding-minima.md).
pub fn compliance_modes(atoms: &Atoms, hessian: &[f64], max_force_constant: f64) -> Result<(usize, Vec<f64>), String> {
    let n = hessian_size(atoms, hessian)?;
    let symmetric: Vec<f64> = (0..n * n)
        .map(|ij| 0.5 * (hessian[ij] + hessian[(ij % n) * n + ij / n]))
        .collect();
    let rigid = rigid_motions(atoms, &vec![1.0; atoms.len()]);
    let mut soft = Vec::new();
    for (force_constant, vector) in vibrations(&symmetric, &rigid, n) {
        if (MIN_FORCE_CONSTANT..max_force_constant).contains(&force_constant) {
            soft.push(vector.into_iter().map(|x| x / force_constant).collect::<Vec<f64>>());
        }
    }
    let column = (0..atoms.len())
        .flat_map(|atom| {
            soft.iter()
                .flat_map(move |mode| mode[3 * atom..3 * atom + 3].iter().copied())
        })
        .collect();
    Ok((soft.len(), column))
}

/// An orthonormal basis, in mass-weighted coordinates (Cartesian for unit masses), of the rigid motions of `atoms`:
/// translations, and rotations about the centre of mass unless a cell axis is periodic.
/// Linearly dependent ones (the rotation about a linear molecule's axis) are dropped.
fn rigid_motions(atoms: &Atoms, masses: &[f64]) -> Vec<Vec<f64>> {
    let n = 3 * atoms.len();
    let total: f64 = masses.iter().sum();
    let mut centre = [0.0; 3];
    for (r, m) in atoms.positions().iter().zip(masses) {
        for k in 0..3 {
            centre[k] += m * r[k] / total;
        }
    }
    let mut candidates = Vec::new();
    for axis in 0..3 {
        candidates.push(
            (0..n)
                .map(|i| if i % 3 == axis { masses[i / 3].sqrt() } else { 0.0 })
                .collect::<Vec<f64>>(),
        );
    }
    if !atoms.pbc().iter().any(|&p| p) || atoms.cell().is_none() {
        for axis in 0..3 {
            let mut v = vec![0.0; n];
            for (a, r) in atoms.positions().iter().enumerate() {
                let d = [r[0] - centre[0], r[1] - centre[1], r[2] - centre[2]];
                // ω × d for ω the unit vector of `axis`.
                let (b, c) = ((axis + 1) % 3, (axis + 2) % 3);
                v[3 * a + c] = d[b] * masses[a].sqrt();
                v[3 * a + b] = -d[c] * masses[a].sqrt();
            }
            candidates.push(v);
        }
    }
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for mut v in candidates {
        let scale = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        for b in &basis {
            let overlap: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
            v.iter_mut().zip(b).for_each(|(x, y)| *x -= overlap * y);
        }
        let length = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if length > 1e-6 * scale.max(1e-300) {
            basis.push(v.into_iter().map(|x| x / length).collect());
        }
    }
    basis
}

/// `P A P` for `P = 1 - Σ v vᵀ` over the orthonormal `basis` (n × n, row-major).
fn project_out(a: &[f64], basis: &[Vec<f64>], n: usize) -> Vec<f64> {
    let mut p = vec![0.0; n * n];
    for i in 0..n {
        p[i * n + i] = 1.0;
    }
    for v in basis {
        for i in 0..n {
            for j in 0..n {
                p[i * n + j] -= v[i] * v[j];
            }
        }
    }
    let product = |x: &[f64], y: &[f64]| {
        let mut out = vec![0.0; n * n];
        for i in 0..n {
            for k in 0..n {
                let xik = x[i * n + k];
                for j in 0..n {
                    out[i * n + j] += xik * y[k * n + j];
                }
            }
        }
        out
    };
    product(&product(&p, a), &p)
}

/// Eigenvalues and eigenvectors (columns of the row-major n × n result) of the symmetric
/// matrix `a`, by cyclic Jacobi rotations (Golub & Van Loan, Matrix Computations, 8.5): exact
/// to rounding, and fast enough for the 3N ≤ a few hundred of a molecule.
pub fn symmetric_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let norm = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * norm {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// The displacement of one normal-mode sample, Smith et al. (2017): with `N_f` modes and `N_a`
/// atoms, coefficients `c_i ≥ 0` with `Σ c_i ≤ 1` drawn uniformly from that simplex (the first
/// `N_f` of `N_f + 1` normalised exponential deviates), a random sign `s_i` per mode, and
/// `R_i = s_i √(3 c_i N_a k_B T / K_i)` along the unit mode `u_i`; the displacement is
/// `Σ R_i u_i`. Its harmonic energy `½ Σ K_i R_i² = (3/2) N_a k_B T Σ c_i` is at most the
/// equipartition energy of the atoms at `T` (kelvin).
pub fn normal_mode_displacement(
    modes: &NormalModes,
    atoms: usize,
    temperature: f64,
    rng: &mut impl rand::Rng,
) -> Vec<f64> {
    let n_modes = modes.vectors.len();
    let exponentials: Vec<f64> = (0..=n_modes).map(|_| -(1.0 - rng.random::<f64>()).ln()).collect();
    let total: f64 = exponentials.iter().sum();
    let mut displacement = vec![0.0; 3 * atoms];
    for (i, (u, k)) in modes.vectors.iter().zip(&modes.force_constants).enumerate() {
        let c = exponentials[i] / total;
        let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
        let amplitude = sign * (3.0 * c * atoms as f64 * BOLTZMANN_EV * temperature / k).sqrt();
        displacement.iter_mut().zip(u).for_each(|(d, x)| *d += amplitude * x);
    }
    displacement
}

/// Sample `sample` of the minimum `base` (frame `frame` of `source`) by
/// [`normal_mode_displacement`] at `temperature` (K), drawn from ChaCha8 seeded with
/// [`sample_seed`]`(seed, frame, sample, draw)`. Records `normal_mode_temperature` and
/// `normal_mode_seed` (the accepted draw's). `None` when [`MAX_DRAWS`] draws all put two atoms
/// closer than [`min_distance`].
pub fn normal_mode_sample(
    base: &Atoms,
    modes: &NormalModes,
    temperature: f64,
    seed: u64,
    source: &str,
    frame: usize,
    sample: usize,
) -> Option<Atoms> {
    let (positions, draw_seed) = first_acceptable(base, seed, frame, sample, |rng| {
        let d = normal_mode_displacement(modes, base.len(), temperature, rng);
        base.positions()
            .iter()
            .zip(d.chunks_exact(3))
            .map(|(r, d)| [r[0] + d[0], r[1] + d[1], r[2] + d[2]])
            .collect()
    })?;
    let mut out = displaced(base, positions, source, frame);
    out.info
        .insert("normal_mode_temperature".into(), Value::Float(temperature));
    out.info.insert("normal_mode_seed".into(), Value::Int(draw_seed as i64));
    Some(out)
}
