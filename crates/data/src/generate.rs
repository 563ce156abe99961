//! The VIMPNN paper's datasets (section 3), made from raw geometries; labels come later from a
//! reference calculator (`minima label`). Every frame records how it was made: `scale` (the
//! isotropic factor relative to equilibrium), its base structure (`qm9_index`, `element`,
//! `seed`), and the generator's parameters, so a split can keep base structures together and
//! a run can be reproduced.
//!
//! - [`qm9_scan`]: QM9 molecules, each scaled about its centroid (augmented QM9, 3.1);
//! - [`fcc_scan`]: periodic fcc Al and Cu with scaled cells (infinite crystals, 3.2);
//! - [`growth`]: fcc clusters grown atom by atom from a 14-atom seed (crystal growth, 3.3).

use std::collections::BTreeSet;

use minima_atoms::{element, Atoms, Cell, Value};
use rand::seq::IteratorRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::DataError;

/// Evenly spaced values from `start` to `stop` inclusive, written `start:stop:count`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub start: f64,
    pub stop: f64,
    pub count: usize,
}

impl Grid {
    pub fn values(&self) -> Vec<f64> {
        if self.count == 1 {
            return vec![self.start];
        }
        let step = (self.stop - self.start) / (self.count - 1) as f64;
        (0..self.count).map(|k| self.start + step * k as f64).collect()
    }

    /// [`Grid::values`], with the exact equilibrium scale 1.0 added in order when no value is
    /// within 1e-9 of it (10 scales 0.90–1.50 step by 0.0667 and miss it). The scale-1 frame of
    /// a scan is the base geometry itself.
    pub fn values_with_equilibrium(&self) -> Vec<f64> {
        let mut values = self.values();
        if !values.iter().any(|&s| (s - 1.0).abs() < 1e-9) {
            let at = values.partition_point(|&s| s < 1.0);
            values.insert(at, 1.0);
        }
        values
    }
}

impl Grid {
    /// The most points a grid may have: a million scales is far beyond any scan, and a count
    /// mistyped as 10^11 must be refused before 800 GB of scales are allocated.
    pub const MAX_COUNT: usize = 1_000_000;
}

impl std::str::FromStr for Grid {
    type Err = String;

    fn from_str(s: &str) -> Result<Grid, String> {
        let bad = || format!("{s:?} is not start:stop:count (e.g. 0.9:1.5:10)");
        let parts: Vec<&str> = s.split(':').collect();
        let [start, stop, count] = parts[..] else {
            return Err(bad());
        };
        let grid = Grid {
            start: start.trim().parse().map_err(|_| bad())?,
            stop: stop.trim().parse().map_err(|_| bad())?,
            count: count.trim().parse().map_err(|_| bad())?,
        };
        let positive = grid.start > 0.0 && grid.stop >= grid.start && grid.stop.is_finite();
        if grid.count == 0 || !positive {
            return Err(format!("{s:?}: need 0 < start <= stop and count >= 1"));
        }
        if grid.count > Grid::MAX_COUNT {
            return Err(format!(
                "{s:?}: {} points; at most {} (each is a structure to build and compute)",
                grid.count,
                Grid::MAX_COUNT
            ));
        }
        Ok(grid)
    }
}

/// The paper's scan: 10 scales from 0.90 to 1.50.
pub const PAPER_SCALES: Grid = Grid {
    start: 0.9,
    stop: 1.5,
    count: 10,
};

/// An fcc block of `cells` cubic cells of element `number` (lattice constant `a`, Å), every
/// coordinate moved uniformly within ±`amplitude` Å (ChaCha8 from `seed`), so that forces are
/// not zero by symmetry: the test crystal of `minima bench`.
pub fn rattled_fcc_block(number: u8, a: f64, cells: [usize; 3], amplitude: f64, seed: u64) -> Atoms {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut crystal = minima_atoms::build::fcc_block(number, a, cells);
    let rattled = crystal
        .positions()
        .iter()
        .map(|r| r.map(|c| c + rng.random_range(-amplitude..amplitude)))
        .collect();
    crystal.set_positions(rattled).expect("finite positions");
    crystal
}

/// `atoms` scaled by `factor` about its centroid (open) or with its cell (periodic, atoms
/// keeping their fractional coordinates); `scale` records the factor.
pub fn scaled(atoms: &Atoms, factor: f64) -> Atoms {
    let mut out = atoms.scaled(factor).expect("grid scales are positive and finite");
    out.info.insert("scale".into(), Value::Float(factor));
    out
}

/// Augmented QM9: each molecule at each scale. Frames keep `qm9_index`, the SMILES and the
/// bonds perceived at equilibrium (`bonds`, see minima-bonds' `record`); QM9's own labels
/// (U0 and the other properties) hold at equilibrium only and are dropped.
pub fn qm9_scan(molecules: &[Atoms], scales: &[f64], source: &str) -> Result<Vec<Atoms>, DataError> {
    let mut frames = Vec::with_capacity(molecules.len() * scales.len());
    for (frame, molecule) in molecules.iter().enumerate() {
        let bonds = minima_bonds::perceive(molecule)
            .map_err(|e| DataError::frame(source, frame, format!("bond perception: {e}")))?
            .bonds;
        let mut base =
            Atoms::new(molecule.numbers().to_vec(), molecule.positions().to_vec()).expect("a loaded molecule is valid");
        for key in ["qm9_index", "smiles"] {
            if let Some(value) = molecule.info.get(key) {
                base.info.insert(key.into(), value.clone());
            }
        }
        base.info.insert(
            minima_bonds::record::BONDS_KEY.into(),
            Value::Str(minima_bonds::record::encode(&bonds)),
        );
        frames.extend(scales.iter().map(|&s| scaled(&base, s)));
    }
    Ok(frames)
}

/// Experimental equilibrium lattice constants (Å) at room temperature, the scale-1 geometry of
/// the crystal datasets: Al 4.05, Cu 3.615 (Kittel), Ag 4.09, Au 4.08, Ni 3.52, Pd 3.89, Pt 3.92.
pub fn fcc_lattice_constant(symbol: &str) -> Option<f64> {
    Some(match symbol {
        "Al" => 4.05,
        "Cu" => 3.615,
        "Ag" => 4.09,
        "Au" => 4.08,
        "Ni" => 3.52,
        "Pd" => 3.89,
        "Pt" => 3.92,
        _ => return None,
    })
}

/// The unit cell of an fcc crystal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FccCell {
    /// One atom, the rhombohedral primitive cell (ASE's `bulk(..., 'fcc')`).
    Primitive,
    /// Four atoms, the conventional cube.
    Cubic,
}

impl std::str::FromStr for FccCell {
    type Err = String;
    fn from_str(s: &str) -> Result<FccCell, String> {
        match s {
            "primitive" => Ok(FccCell::Primitive),
            "cubic" => Ok(FccCell::Cubic),
            _ => Err(format!("cell {s:?}: choose primitive or cubic")),
        }
    }
}

/// The equilibrium fcc crystal of `number` with lattice constant `a`.
pub fn fcc_crystal(number: u8, a: f64, cell: FccCell) -> Atoms {
    match cell {
        FccCell::Cubic => minima_atoms::build::fcc_supercell(number, a, 1),
        FccCell::Primitive => {
            let h = a / 2.0;
            let cell = Cell::new([[0.0, h, h], [h, 0.0, h], [h, h, 0.0]]).expect("fcc primitive cell");
            Atoms::new(vec![number], vec![[0.0; 3]])
                .expect("one atom at the origin")
                .with_cell(cell, [true; 3])
        }
    }
}

/// How an fcc crystal is cut: `repeat`³ copies of the cell and, with `vacuum` (Å, cubic cells
/// only), a (100) slab: periodic along x and y, with `vacuum` of empty space along z (its two
/// faces are surfaces).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FccShape {
    pub cell: FccCell,
    pub repeat: usize,
    pub vacuum: Option<f64>,
}

impl FccShape {
    /// The crystal of `number` with lattice constant `a` in this shape.
    pub fn build(&self, number: u8, a: f64) -> Result<Atoms, String> {
        let unit = fcc_crystal(number, a, self.cell);
        let cell = *unit.cell().expect("an fcc crystal has a cell");
        let n = self.repeat.max(1);
        let mut positions = Vec::with_capacity(unit.len() * n * n * n);
        for i in 0..n {
            for j in 0..n {
                for k in 0..n {
                    let t = cell.shift([i as i32, j as i32, k as i32]);
                    positions.extend(unit.positions().iter().map(|r| std::array::from_fn(|m| r[m] + t[m])));
                }
            }
        }
        let v = cell.vectors().map(|row| row.map(|x| x * n as f64));
        let (vectors, pbc) = match self.vacuum {
            None => (v, [true; 3]),
            Some(_) if self.cell != FccCell::Cubic => return Err("a slab (vacuum) needs the cubic cell".into()),
            Some(vacuum) if !(vacuum.is_finite() && vacuum > 0.0) => {
                return Err(format!("vacuum {vacuum} Å: give a positive thickness"))
            }
            Some(vacuum) => ([v[0], v[1], [0.0, 0.0, v[2][2] + vacuum]], [true, true, false]),
        };
        let numbers = vec![number; positions.len()];
        let atoms = Atoms::new(numbers, positions).map_err(|e| e.to_string())?;
        Ok(atoms.with_cell(Cell::new(vectors).map_err(|e| e.to_string())?, pbc))
    }
}

/// fcc crystals (or slabs): each element's at every scale of `scales`, recording `element`,
/// `lattice_constant` (the equilibrium one) and `scale`.
pub fn fcc_scan(elements: &[(String, f64)], shape: FccShape, scales: &[f64]) -> Result<Vec<Atoms>, String> {
    let mut frames = Vec::with_capacity(elements.len() * scales.len());
    for (symbol, a) in elements {
        let number = element::by_symbol(symbol)
            .ok_or_else(|| format!("unknown element {symbol:?}"))?
            .number;
        let mut base = shape.build(number, *a)?;
        base.info.insert("element".into(), Value::Str(symbol.clone()));
        base.info.insert("lattice_constant".into(), Value::Float(*a));
        frames.extend(scales.iter().map(|&s| scaled(&base, s)));
    }
    Ok(frames)
}

/// Nearest-neighbour steps of the fcc lattice in units of a/2.
const FCC_STEPS: [[i64; 3]; 12] = [
    [1, 1, 0],
    [1, -1, 0],
    [-1, 1, 0],
    [-1, -1, 0],
    [1, 0, 1],
    [1, 0, -1],
    [-1, 0, 1],
    [-1, 0, -1],
    [0, 1, 1],
    [0, 1, -1],
    [0, -1, 1],
    [0, -1, -1],
];

/// One crystal growth: the 14-atom seed (a cube's 8 corners and 6 face centres), then one atom
/// at a time on a uniformly random empty lattice site with at least one occupied nearest
/// neighbour, until `max_size` atoms. Returns the clusters of 15 to `max_size` atoms (the
/// paper's sizes; the seed itself is not a frame), each at every scale of `scales`, recording
/// `element`, `seed`, `size`, `lattice_constant` and `scale`.
pub fn growth(symbol: &str, a: f64, seed: u64, max_size: usize, scales: &Grid) -> Result<Vec<Atoms>, String> {
    let number = element::by_symbol(symbol)
        .ok_or_else(|| format!("unknown element {symbol:?}"))?
        .number;
    // Sites in units of a/2: fcc sites are the integer points with an even coordinate sum.
    // In the cube {0, 1, 2}³ those are the 8 corners and 6 face centres: the seed.
    let mut occupied: Vec<[i64; 3]> = (0..27)
        .map(|k| [k % 3, k / 3 % 3, k / 9])
        .filter(|s| (s[0] + s[1] + s[2]) % 2 == 0)
        .collect();
    debug_assert_eq!(occupied.len(), 14);
    let mut taken: BTreeSet<[i64; 3]> = occupied.iter().copied().collect();
    // Empty sites next to the cluster, kept sorted so the random choice is reproducible.
    let mut surface: BTreeSet<[i64; 3]> = BTreeSet::new();
    let neighbours = |s: [i64; 3]| FCC_STEPS.map(|d| [s[0] + d[0], s[1] + d[1], s[2] + d[2]]);
    for &site in &occupied {
        surface.extend(neighbours(site).into_iter().filter(|n| !taken.contains(n)));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut frames = Vec::new();
    while occupied.len() < max_size {
        let site = *surface
            .iter()
            .choose(&mut rng)
            .expect("a finite cluster has surface sites");
        surface.remove(&site);
        taken.insert(site);
        occupied.push(site);
        surface.extend(neighbours(site).into_iter().filter(|n| !taken.contains(n)));
        let positions = occupied
            .iter()
            .map(|s| s.map(|c| c as f64 * a / 2.0))
            .collect::<Vec<_>>();
        let mut cluster = Atoms::new(vec![number; occupied.len()], positions).expect("lattice sites are finite");
        for (key, value) in [
            ("element", Value::Str(symbol.into())),
            ("seed", Value::Int(seed as i64)),
            ("size", Value::Int(occupied.len() as i64)),
            ("lattice_constant", Value::Float(a)),
        ] {
            cluster.info.insert(key.into(), value);
        }
        frames.extend(scales.values().into_iter().map(|s| scaled(&cluster, s)));
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {

    /// Supercells and slabs: 4·N³ atoms on fcc sites (nearest neighbours a/√2), the slab
    /// periodic along x and y with the vacuum added to z; a slab of the primitive cell refused.
    #[test]
    fn fcc_shapes_repeat_the_cell_and_cut_slabs() {
        let shape = |repeat, vacuum| FccShape {
            cell: FccCell::Cubic,
            repeat,
            vacuum,
        };
        let bulk = shape(2, None).build(29, 3.6).unwrap();
        assert_eq!(bulk.len(), 32);
        assert_eq!(bulk.pbc(), [true; 3]);
        assert!((bulk.cell().unwrap().volume() - 8.0 * 3.6f64.powi(3)).abs() < 1e-9);
        let (_, _, nearest) = bulk.closest_pair().unwrap();
        assert!((nearest - 3.6 / 2f64.sqrt()).abs() < 1e-9);
        let slab = shape(2, Some(10.0)).build(29, 3.6).unwrap();
        assert_eq!(slab.pbc(), [true, true, false]);
        assert!((slab.cell().unwrap().vectors()[2][2] - 17.2).abs() < 1e-9);
        assert_eq!(slab.positions(), bulk.positions());
        let primitive = FccShape {
            cell: FccCell::Primitive,
            repeat: 1,
            vacuum: Some(10.0),
        };
        assert!(primitive.build(29, 3.6).unwrap_err().contains("cubic"));
    }

    use super::*;

    #[test]
    fn grids_include_both_ends() {
        let grid: Grid = "0.9:1.5:10".parse().unwrap();
        let v = grid.values();
        assert_eq!(v.len(), 10);
        assert!((v[0] - 0.9).abs() < 1e-15 && (v[9] - 1.5).abs() < 1e-15);
        assert!("1.5:0.9:3".parse::<Grid>().is_err() && "0.9:1.5".parse::<Grid>().is_err());
        let with_one = grid.values_with_equilibrium();
        assert_eq!(with_one.len(), 11);
        assert_eq!(with_one[2], 1.0);
        assert!(with_one.windows(2).all(|w| w[0] < w[1]));
        let already: Grid = "0.9:1.1:3".parse().unwrap();
        assert_eq!(already.values_with_equilibrium().len(), 3);
        let error = "0.9:1.1:100000000000".parse::<Grid>().unwrap_err();
        assert!(error.contains("at most 1000000"), "{error}");
        assert!("0.9:1.1:1000000".parse::<Grid>().is_ok());
    }

    #[test]
    fn scaling_a_crystal_scales_its_cell_and_a_molecule_about_its_centroid() {
        let cu = fcc_crystal(29, 3.615, FccCell::Primitive);
        let big = scaled(&cu, 1.2);
        assert!((big.cell().unwrap().volume() - 1.2f64.powi(3) * 3.615f64.powi(3) / 4.0).abs() < 1e-9);
        let h2 = Atoms::new(vec![1, 1], vec![[0.0; 3], [0.0, 0.0, 0.74]]).unwrap();
        let long = scaled(&h2, 1.5);
        assert!((long.distance(0, 1) - 1.11).abs() < 1e-12);
        assert_eq!(long.centroid(), h2.centroid());
        assert_eq!(long.scale(), Some(1.5));
    }

    #[test]
    fn growth_adds_one_touching_atom_at_a_time_and_is_reproducible() {
        let one = Grid {
            start: 1.0,
            stop: 1.0,
            count: 1,
        };
        let frames = growth("Cu", 3.615, 3, 114, &one).unwrap();
        assert_eq!(frames.len(), 100);
        let nn = 3.615 / 2f64.sqrt();
        for (k, cluster) in frames.iter().enumerate() {
            assert_eq!(cluster.len(), 15 + k);
            let newest = cluster.len() - 1;
            // The new atom sits on a lattice site touching the cluster, never on another atom.
            let closest = (0..newest)
                .map(|j| cluster.distance(newest, j))
                .fold(f64::INFINITY, f64::min);
            assert!((closest - nn).abs() < 1e-9, "{closest}");
        }
        assert_eq!(frames, growth("Cu", 3.615, 3, 114, &one).unwrap());
        assert_ne!(frames, growth("Cu", 3.615, 4, 114, &one).unwrap());
    }

    #[test]
    fn the_seed_is_a_cube_with_its_face_centres() {
        let one = Grid {
            start: 1.0,
            stop: 1.0,
            count: 1,
        };
        let first = &growth("Al", 4.05, 0, 15, &one).unwrap()[0];
        let seed: Vec<[f64; 3]> = first.positions()[..14].to_vec();
        let corners = seed.iter().filter(|r| r.iter().all(|&c| c == 0.0 || c == 4.05)).count();
        assert_eq!(corners, 8);
        assert_eq!(seed.len() - corners, 6);
    }
}
