//! Spatial domain decomposition: a structure too large for one model call, cut into domains
//! whose results add up to the whole one's.
//!
//! The structure is cut into a grid of boxes along its cell vectors (along Cartesian axes over
//! the bounding box of an open structure). A domain is the atoms of one box, its *interior*,
//! plus every atom (or periodic image of one) within the halo distance of the box: a model of
//! L message-passing layers with cutoff rc gives an interior atom an energy that depends only
//! on atoms within L·rc, so with a halo of at least L·rc the domain gives each interior atom
//! the energy the whole structure gives it. The forces follow: each domain's interior energy
//! differentiated with respect to every atom of the domain, summed over domains, is −∂E/∂r of
//! the whole; the virials add up the same way.
//!
//! A domain is an open cluster (images are atoms of their own), with the bonds of the whole
//! structure: its edges keep the bond class the whole structure's edge between the same atoms
//! has, so bond features do not change at a domain's border.

use minima_atoms::cell::add;
use minima_atoms::{Atoms, Cell, Vec3};

use crate::graph::{bond_classes, Graph, GraphSpec};

/// One domain: an open cluster and where its atoms come from.
pub struct Domain {
    /// The cluster's graph (open; periodic images are atoms of their own).
    pub graph: Graph,
    /// The structure's atom each cluster atom is (an image of).
    pub atom: Vec<u32>,
    /// The first `interior` cluster atoms are the domain's interior: each atom of the
    /// structure is interior to exactly one domain.
    pub interior: usize,
}

/// How a structure is cut.
pub struct Decomposition {
    /// Boxes along each axis.
    pub boxes: [usize; 3],
    /// The halo, Å.
    pub halo: f64,
    basis: Cell,
    periodic: [bool; 3],
    /// Fractional coordinates of each atom (wrapped along periodic axes) and the lattice
    /// image the wrap moved it by.
    fractional: Vec<Vec3>,
    image: Vec<[i32; 3]>,
    /// The fractional range the boxes tile along each axis.
    low: Vec3,
    extent: Vec3,
}

impl Decomposition {
    /// Boxes for `atoms` such that a domain (interior and halo `halo` Å) holds about
    /// `domain_atoms` atoms or fewer: the longest box side is halved until it does, as long as
    /// the box stays wider than the halo (beyond that, more boxes only add halo).
    pub fn new(atoms: &Atoms, halo: f64, domain_atoms: usize) -> Result<Decomposition, String> {
        if !(halo.is_finite() && halo > 0.0) {
            return Err(format!("the halo must be a positive distance, not {halo} Å"));
        }
        let pbc = atoms.pbc();
        let (basis, periodic) = match atoms.cell() {
            Some(cell) if pbc.iter().any(|&p| p) => (*cell, pbc),
            _ => (Cell::orthorhombic(1.0, 1.0, 1.0).expect("the unit cube"), [false; 3]),
        };
        let (fractional, image): (Vec<Vec3>, Vec<[i32; 3]>) = atoms
            .positions()
            .iter()
            .map(|&r| {
                let (wrapped, image) = basis.wrap(r, periodic);
                (basis.fractional(wrapped), image)
            })
            .unzip();
        let mut low = [0.0; 3];
        let mut extent = [1.0; 3];
        for k in 0..3 {
            if !periodic[k] {
                let (lo, hi) = fractional
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), f| {
                        (lo.min(f[k]), hi.max(f[k]))
                    });
                // A flat structure still gets a box of finite width.
                (low[k], extent[k]) = (lo, (hi - lo).max(1e-6) * (1.0 + 1e-9));
            }
        }
        let heights = basis.heights();
        let side = |k: usize, boxes: usize| extent[k] * heights[k] / boxes as f64;
        let estimate = |boxes: [usize; 3]| -> f64 {
            let fraction: f64 = (0..3)
                .map(|k| {
                    ((side(k, boxes[k]) + 2.0 * halo) / (extent[k] * heights[k])).min(if periodic[k] {
                        f64::INFINITY
                    } else {
                        1.0
                    })
                })
                .product();
            atoms.len() as f64 * fraction
        };
        let mut boxes = [1usize; 3];
        while estimate(boxes) > domain_atoms as f64 {
            let widest = (0..3)
                .filter(|&k| side(k, 2 * boxes[k]) > halo)
                .max_by(|&a, &b| side(a, boxes[a]).total_cmp(&side(b, boxes[b])));
            match widest {
                Some(k) => boxes[k] *= 2,
                None => break,
            }
        }
        Ok(Decomposition {
            boxes,
            halo,
            basis,
            periodic,
            fractional,
            image,
            low,
            extent,
        })
    }

    pub fn len(&self) -> usize {
        self.boxes.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Domain `index` (0..len) of `atoms` (the structure the decomposition was made for), its
    /// edges those within `spec`'s cutoff and its bond classes from `bonds` (the whole
    /// structure's).
    pub fn domain(
        &self,
        atoms: &Atoms,
        bonds: &[minima_bonds::Bond],
        spec: &GraphSpec,
        index: usize,
    ) -> Result<Domain, String> {
        let cutoff = spec
            .cutoff
            .ok_or("domains need a model with a cutoff (every pair of atoms is an edge otherwise)")?;
        let [_, ny, nz] = self.boxes;
        let cell_index = [index / (ny * nz), (index / nz) % ny, index % nz];
        let heights = self.basis.heights();
        let mut range = [(0.0, 0.0); 3];
        let mut reach = [0.0; 3];
        for k in 0..3 {
            let width = self.extent[k] / self.boxes[k] as f64;
            let edge = |i: usize| {
                if i == self.boxes[k] {
                    self.low[k] + self.extent[k]
                } else {
                    self.low[k] + width * i as f64
                }
            };
            range[k] = (edge(cell_index[k]), edge(cell_index[k] + 1));
            reach[k] = self.halo / heights[k];
        }
        let inside = |k: usize, f: f64| f >= range[k].0 && f < range[k].1;
        // Interior atoms first, then the halo's atoms and images.
        let mut interior = Vec::new();
        let mut halo = Vec::new();
        for (a, f) in self.fractional.iter().enumerate() {
            let images = (0..3).map(|k| self.images_along(k, f[k], range[k], reach[k]));
            let [xs, ys, zs]: [Vec<i32>; 3] = images.collect::<Vec<_>>().try_into().expect("three axes");
            for &x in &xs {
                for &y in &ys {
                    for &z in &zs {
                        let t = [x, y, z];
                        if t == [0; 3] && (0..3).all(|k| inside(k, f[k])) {
                            interior.push((a as u32, t));
                        } else {
                            halo.push((a as u32, t));
                        }
                    }
                }
            }
        }
        let count = interior.len();
        let nodes: Vec<(u32, [i32; 3])> = interior.into_iter().chain(halo).collect();
        let positions: Vec<Vec3> = nodes
            .iter()
            .map(|&(a, t)| add(atoms.positions()[a as usize], self.basis_shift(t, a)))
            .collect();
        let numbers: Vec<u8> = nodes.iter().map(|&(a, _)| atoms.numbers()[a as usize]).collect();
        let list =
            minima_neighbors::neighbor_list_of(&positions, None, [false; 3], cutoff).map_err(|e| e.to_string())?;
        // Each cluster atom's image relative to the structure's own positions.
        let lattice_image = |node: u32| {
            let (a, t) = nodes[node as usize];
            let wrap = self.image[a as usize];
            [t[0] - wrap[0], t[1] - wrap[1], t[2] - wrap[2]]
        };
        let shifts: Vec<[i32; 3]> = list
            .first
            .iter()
            .zip(&list.second)
            .map(|(&i, &j)| {
                let (si, sj) = (lattice_image(i), lattice_image(j));
                [sj[0] - si[0], sj[1] - si[1], sj[2] - si[2]]
            })
            .collect();
        let atom_of: Vec<u32> = nodes.iter().map(|&(a, _)| a).collect();
        let global = |edges: &[u32]| -> Vec<u32> { edges.iter().map(|&n| atom_of[n as usize]).collect() };
        let bond = bond_classes(bonds, &global(&list.first), &global(&list.second), &shifts);
        let graph = Graph {
            numbers,
            offset: vec![[0.0; 3]; list.first.len()],
            positions,
            center: list.first,
            neighbor: list.second,
            bond,
            cell: None,
            pbc: [false; 3],
        };
        Ok(Domain {
            graph,
            atom: atom_of,
            interior: count,
        })
    }

    /// The lattice images t (along axis `k`) that put fractional coordinate `f` within `reach`
    /// of `range`; only t = 0 along open axes.
    fn images_along(&self, k: usize, f: f64, (lo, hi): (f64, f64), reach: f64) -> Vec<i32> {
        let within = |x: f64| x >= lo - reach && x <= hi + reach;
        if !self.periodic[k] {
            return if within(f) { vec![0] } else { Vec::new() };
        }
        let most = reach.ceil() as i32 + 1;
        (-most..=most).filter(|&t| within(f + t as f64)).collect()
    }

    /// The Cartesian translation that takes atom `a` to its cluster image `t` (relative to
    /// its wrapped position).
    fn basis_shift(&self, t: [i32; 3], a: u32) -> Vec3 {
        let wrap = self.image[a as usize];
        let relative = [t[0] - wrap[0], t[1] - wrap[1], t[2] - wrap[2]];
        if self.periodic.iter().any(|&p| p) {
            self.basis.shift(relative)
        } else {
            [0.0; 3]
        }
    }
}
