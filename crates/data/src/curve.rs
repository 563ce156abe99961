//! Minima of sampled curves (energy against scale).

/// The minimum of a sampled curve: the lowest sample refined by the parabola through it and
/// its two neighbours. `xs` ascending; returns (x, y) of the minimum, or `None` when the lowest
/// sample is an end of the grid: a curve still falling there has no minimum inside the range,
/// and calling its edge one would be a silently wrong number.
pub fn parabolic_minimum(xs: &[f64], ys: &[f64]) -> Option<(f64, f64)> {
    let n = ys.len().min(xs.len());
    let lowest = (0..n).min_by(|&a, &b| ys[a].total_cmp(&ys[b]))?;
    if lowest == 0 || lowest + 1 >= n {
        return None;
    }
    let (x0, x1, x2) = (xs[lowest - 1], xs[lowest], xs[lowest + 1]);
    let (y0, y1, y2) = (ys[lowest - 1], ys[lowest], ys[lowest + 1]);
    // Vertex of the interpolating parabola (divided differences).
    let d01 = (y1 - y0) / (x1 - x0);
    let d12 = (y2 - y1) / (x2 - x1);
    let curvature = (d12 - d01) / (x2 - x0);
    if curvature <= 0.0 {
        return Some((x1, y1));
    }
    let x = 0.5 * (x0 + x1) - d01 / (2.0 * curvature);
    let x = x.clamp(x0, x2);
    Some((x, y0 + d01 * (x - x0) + curvature * (x - x0) * (x - x1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_vertex_of_a_sampled_parabola() {
        let xs: Vec<f64> = (0..10).map(|k| 0.9 + 0.6 * k as f64 / 9.0).collect();
        let ys: Vec<f64> = xs.iter().map(|x| 3.0 * (x - 1.07).powi(2) - 2.0).collect();
        let (x, y) = parabolic_minimum(&xs, &ys).unwrap();
        assert!((x - 1.07).abs() < 1e-12 && (y + 2.0).abs() < 1e-12, "{x} {y}");
        let falling: Vec<f64> = xs.iter().map(|x| -x).collect();
        assert_eq!(parabolic_minimum(&xs, &falling), None);
        let rising: Vec<f64> = xs.clone();
        assert_eq!(parabolic_minimum(&xs, &rising), None);
        assert_eq!(parabolic_minimum(&[], &[]), None);
    }
}
