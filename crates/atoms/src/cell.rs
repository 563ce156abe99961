//! Periodic cells in ASE's convention: the rows of the 3×3 matrix are the lattice vectors
//! a, b, c (Å), and a Cartesian position is `r = s · cell` for fractional coordinates `s`.

use crate::AtomsError;

pub type Vec3 = [f64; 3];

/// A (possibly triclinic) cell. Construction checks that it spans space; left-handed cells
/// (negative determinant), which ASE reads and uses, are as valid as right-handed ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    vectors: [Vec3; 3],
    inverse: [Vec3; 3],
}

impl Cell {
    /// A cell from its three lattice vectors (rows). Fails when the cell is singular (its
    /// vectors do not span space, so fractional coordinates are meaningless) or so large that
    /// its volume overflows.
    pub fn new(vectors: [Vec3; 3]) -> Result<Cell, AtomsError> {
        if vectors.iter().flatten().any(|x| !x.is_finite()) {
            return Err(AtomsError::NonFiniteCell);
        }
        // The signed volume: negative for a left-handed cell.
        let volume = dot(vectors[0], cross(vectors[1], vectors[2]));
        let scale = norm(vectors[0]) * norm(vectors[1]) * norm(vectors[2]);
        if !(volume.is_finite() && scale.is_finite()) {
            return Err(AtomsError::HugeCell);
        }
        if volume.abs() <= 1e-12 * scale.max(f64::MIN_POSITIVE) || scale == 0.0 {
            return Err(AtomsError::SingularCell { volume });
        }
        // inverse = adj / det, written as columns of the reciprocal vectors; the signed
        // determinant keeps it the inverse for either handedness.
        let b = [
            cross(vectors[1], vectors[2]),
            cross(vectors[2], vectors[0]),
            cross(vectors[0], vectors[1]),
        ];
        let mut inverse = [[0.0; 3]; 3];
        for (row, inv_row) in inverse.iter_mut().enumerate() {
            for (col, value) in inv_row.iter_mut().enumerate() {
                *value = b[col][row] / volume;
            }
        }
        Ok(Cell { vectors, inverse })
    }

    /// An orthorhombic cell with edge lengths `a`, `b`, `c`.
    pub fn orthorhombic(a: f64, b: f64, c: f64) -> Result<Cell, AtomsError> {
        Cell::new([[a, 0.0, 0.0], [0.0, b, 0.0], [0.0, 0.0, c]])
    }

    pub fn vectors(&self) -> &[Vec3; 3] {
        &self.vectors
    }

    /// The volume |det(cell)| (Å³), positive for either handedness, as ASE's `Cell.volume`.
    pub fn volume(&self) -> f64 {
        dot(self.vectors[0], cross(self.vectors[1], self.vectors[2])).abs()
    }

    /// Whether the lattice vectors are left-handed (negative determinant).
    pub fn is_left_handed(&self) -> bool {
        dot(self.vectors[0], cross(self.vectors[1], self.vectors[2])) < 0.0
    }

    /// The cell with every vector multiplied by `factor` (isotropic strain), which must be
    /// positive and finite: a negative one would invert the crystal, not strain it.
    pub fn scaled(&self, factor: f64) -> Result<Cell, AtomsError> {
        if !(factor.is_finite() && factor > 0.0) {
            return Err(AtomsError::BadScale(factor));
        }
        Cell::new(self.vectors.map(|v| v.map(|x| x * factor)))
    }

    /// Fractional coordinates of a Cartesian point.
    pub fn fractional(&self, r: Vec3) -> Vec3 {
        mat_vec(&self.inverse, r)
    }

    /// Cartesian point of fractional coordinates.
    #[inline]
    pub fn cartesian(&self, s: Vec3) -> Vec3 {
        mat_vec(&self.vectors, s)
    }

    /// Distances between opposite faces: the thickness of the cell along each lattice
    /// direction. A sphere of radius `r` fits inside iff all heights exceed `2r`.
    pub fn heights(&self) -> Vec3 {
        let v = self.volume();
        [
            v / norm(cross(self.vectors[1], self.vectors[2])),
            v / norm(cross(self.vectors[2], self.vectors[0])),
            v / norm(cross(self.vectors[0], self.vectors[1])),
        ]
    }

    /// Lattice vector combination `n · cell` for integer image offsets.
    #[inline]
    pub fn shift(&self, n: [i32; 3]) -> Vec3 {
        self.cartesian(n.map(f64::from))
    }

    /// Wraps `r` into the cell along periodic axes; returns the wrapped point and the integer
    /// offset `n` with `r = wrapped + n · cell`.
    pub fn wrap(&self, r: Vec3, pbc: [bool; 3]) -> (Vec3, [i32; 3]) {
        let mut s = self.fractional(r);
        let mut offset = [0; 3];
        for k in 0..3 {
            if pbc[k] {
                let n = s[k].floor();
                s[k] -= n;
                // Rounding can leave s == 1.0 exactly; keep the half-open interval [0, 1).
                if s[k] >= 1.0 {
                    s[k] -= 1.0;
                    offset[k] = n as i32 + 1;
                } else {
                    offset[k] = n as i32;
                }
            }
        }
        (self.cartesian(s), offset)
    }

    /// The shortest image of displacement `d` along periodic axes. Exact for any cell whose
    /// heights exceed twice the result's length; for strongly skewed cells it searches the
    /// 27 neighbouring images of the reduced vector, which covers every practical case.
    pub fn minimum_image(&self, d: Vec3, pbc: [bool; 3]) -> Vec3 {
        let mut s = self.fractional(d);
        for k in 0..3 {
            if pbc[k] {
                s[k] -= s[k].round();
            }
        }
        let reduced = self.cartesian(s);
        let mut best = reduced;
        let mut best_len = dot(reduced, reduced);
        let range = |k: usize| if pbc[k] { -1..=1 } else { 0..=0 };
        for i in range(0) {
            for j in range(1) {
                for k in range(2) {
                    let candidate = add(reduced, self.shift([i, j, k]));
                    let len = dot(candidate, candidate);
                    if len < best_len {
                        best = candidate;
                        best_len = len;
                    }
                }
            }
        }
        best
    }
}

pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

pub fn add(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

pub fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// `v · m` for a row vector `v`: with `m` the cell this maps fractional to Cartesian.
fn mat_vec(m: &[Vec3; 3], v: Vec3) -> Vec3 {
    [
        v[0] * m[0][0] + v[1] * m[1][0] + v[2] * m[2][0],
        v[0] * m[0][1] + v[1] * m[1][1] + v[2] * m[2][1],
        v[0] * m[0][2] + v[1] * m[1][2] + v[2] * m[2][2],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triclinic() -> Cell {
        Cell::new([[4.0, 0.0, 0.0], [1.3, 3.5, 0.0], [-0.7, 0.9, 5.2]]).unwrap()
    }

    #[test]
    fn fractional_and_cartesian_are_inverse() {
        let cell = triclinic();
        let r = [1.234, -5.6, 7.89];
        let back = cell.cartesian(cell.fractional(r));
        for k in 0..3 {
            assert!((back[k] - r[k]).abs() < 1e-12);
        }
    }

    #[test]
    fn singular_non_finite_and_overflowing_cells_are_rejected() {
        let flat = Cell::new([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]]);
        assert!(matches!(flat, Err(AtomsError::SingularCell { .. })));
        let zero = Cell::new([[0.0; 3]; 3]);
        assert!(matches!(zero, Err(AtomsError::SingularCell { .. })));
        let nan = Cell::new([[f64::NAN, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        assert!(matches!(nan, Err(AtomsError::NonFiniteCell)));
        let inf = Cell::new([[1.0, 0.0, 0.0], [0.0, f64::INFINITY, 0.0], [0.0, 0.0, 1.0]]);
        assert!(matches!(inf, Err(AtomsError::NonFiniteCell)));
        let huge = Cell::orthorhombic(1e200, 1e200, 1e200);
        assert!(matches!(huge, Err(AtomsError::HugeCell)));
        for factor in [-1.0, 0.0, f64::NAN] {
            assert!(matches!(triclinic().scaled(factor), Err(AtomsError::BadScale(_))));
        }
    }

    #[test]
    fn left_handed_cells_work_as_right_handed_ones() {
        let right = triclinic();
        let v = *right.vectors();
        let left = Cell::new([v[1], v[0], v[2]]).unwrap();
        assert!(left.is_left_handed() && !right.is_left_handed());
        assert!((left.volume() - right.volume()).abs() < 1e-12 && left.volume() > 0.0);
        let h = (right.heights(), left.heights());
        assert!((h.0[0] - h.1[1]).abs() < 1e-12 && (h.0[1] - h.1[0]).abs() < 1e-12 && (h.0[2] - h.1[2]).abs() < 1e-12);
        let r = [17.0, -9.0, 23.0];
        let back = left.cartesian(left.fractional(r));
        assert!((0..3).all(|k| (back[k] - r[k]).abs() < 1e-12));
        let (w, n) = left.wrap(r, [true; 3]);
        assert!(left.fractional(w).iter().all(|&x| (0.0..1.0).contains(&x)));
        let unwrapped = add(w, left.shift(n));
        assert!((0..3).all(|k| (unwrapped[k] - r[k]).abs() < 1e-10));
        let d = [3.9, 3.0, -4.4];
        let (a, b) = (
            norm(left.minimum_image(d, [true; 3])),
            norm(right.minimum_image(d, [true; 3])),
        );
        assert!((a - b).abs() < 1e-12);
    }

    #[test]
    fn wrap_lands_inside_and_records_offset() {
        let cell = triclinic();
        let pbc = [true; 3];
        let r = [17.0, -9.0, 23.0];
        let (w, n) = cell.wrap(r, pbc);
        let s = cell.fractional(w);
        assert!(s.iter().all(|&x| (0.0..1.0).contains(&x)));
        let back = add(w, cell.shift(n));
        for k in 0..3 {
            assert!((back[k] - r[k]).abs() < 1e-10);
        }
        let (same, none) = cell.wrap(r, [false; 3]);
        assert_eq!(none, [0, 0, 0]);
        assert!((same[0] - r[0]).abs() < 1e-12);
    }

    #[test]
    fn minimum_image_is_shortest_of_all_images() {
        let cell = triclinic();
        let d = [3.9, 3.0, -4.4];
        let m = cell.minimum_image(d, [true; 3]);
        let mut best = f64::INFINITY;
        for i in -3..=3 {
            for j in -3..=3 {
                for k in -3..=3 {
                    best = best.min(norm(add(d, cell.shift([i, j, k]))));
                }
            }
        }
        assert!((norm(m) - best).abs() < 1e-12);
    }

    #[test]
    fn heights_of_orthorhombic_cell_are_edges() {
        let h = Cell::orthorhombic(2.0, 3.0, 4.0).unwrap().heights();
        assert_eq!(h, [2.0, 3.0, 4.0]);
    }
}
