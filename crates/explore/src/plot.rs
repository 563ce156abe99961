//! Line figures as SVG (plotters) and PNG (the SVG rasterised by resvg with an embedded DejaVu
//! Sans, so a machine without fonts draws the same picture).

use std::io::Write;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::ExploreError;

/// The font every figure is drawn with (DejaVu Sans; its licence lies beside it in `assets/`).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FONT_FAMILY: &str = "DejaVu Sans";
const SIZE: (u32, u32) = (900, 600);

/// Colour-blind-safe palette (Okabe–Ito).
const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    Line,
    Points,
}

/// One named curve.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub style: Style,
}

/// A labelled point drawn over the curves (a minimum, say), in the colour of series `series`.
#[derive(Debug, Clone)]
pub struct Marker {
    pub label: String,
    pub x: f64,
    pub y: f64,
    pub series: usize,
}

/// A figure: axes with units in their labels, curves, markers and a legend.
#[derive(Debug, Clone, Default)]
pub struct Figure {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub markers: Vec<Marker>,
}

impl Figure {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Figure {
        Figure {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            ..Figure::default()
        }
    }

    pub fn with_series(mut self, label: impl Into<String>, points: Vec<(f64, f64)>, style: Style) -> Figure {
        self.series.push(Series {
            label: label.into(),
            points,
            style,
        });
        self
    }

    pub fn with_marker(mut self, label: impl Into<String>, (x, y): (f64, f64), series: usize) -> Figure {
        self.markers.push(Marker {
            label: label.into(),
            x,
            y,
            series,
        });
        self
    }

    /// Writes `stem.svg` and `stem.png` (atomically) and returns their paths.
    pub fn save(&self, stem: &Path) -> Result<[PathBuf; 2], ExploreError> {
        let svg = self.svg()?;
        let png = rasterise(&svg)?;
        let svg_path = minima_io::with_suffix(stem, ".svg");
        let png_path = minima_io::with_suffix(stem, ".png");
        minima_io::write_atomic(&svg_path, |w| w.write_all(svg.as_bytes())).map_err(ExploreError::write(&svg_path))?;
        minima_io::write_atomic(&png_path, |w| w.write_all(&png)).map_err(ExploreError::write(&png_path))?;
        Ok([svg_path, png_path])
    }

    /// The figure as an SVG document.
    pub fn svg(&self) -> Result<String, ExploreError> {
        let mut svg = String::new();
        self.draw(SVGBackend::with_string(&mut svg, SIZE).into_drawing_area())
            .map_err(|e| ExploreError::Plot(e.to_string()))?;
        Ok(svg)
    }

    fn draw(
        &self,
        root: DrawingArea<SVGBackend, plotters::coord::Shift>,
    ) -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let (x_range, y_range) = self.ranges();
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, (FONT_FAMILY, 24))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(85)
            .build_cartesian_2d(x_range, y_range)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style((FONT_FAMILY, 16))
            .axis_desc_style((FONT_FAMILY, 18))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (k, series) in self.series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let drawn = match series.style {
                Style::Line => {
                    chart.draw_series(LineSeries::new(series.points.iter().copied(), color.stroke_width(2)))?
                }
                Style::Points => chart.draw_series(series.points.iter().map(|&p| Circle::new(p, 4, color.filled())))?,
            };
            drawn
                .label(&series.label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3)));
        }
        for marker in &self.markers {
            let color = PALETTE[marker.series % PALETTE.len()];
            chart
                .draw_series(std::iter::once(TriangleMarker::new(
                    (marker.x, marker.y),
                    9,
                    color.filled(),
                )))?
                .label(&marker.label)
                .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 7, color.filled()));
        }
        chart
            .configure_series_labels()
            .label_font((FONT_FAMILY, 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        root.present()?;
        Ok(())
    }

    /// The data's extent with a margin; a flat or empty figure still gets a usable range.
    fn ranges(&self) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
        let points = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .chain(self.markers.iter().map(|m| (m.x, m.y)))
            .filter(|(x, y)| x.is_finite() && y.is_finite());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for (x, y) in points {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        let padded = |lo: f64, hi: f64, fraction: f64| {
            if lo > hi {
                return 0.0..1.0;
            }
            let pad = if hi > lo {
                fraction * (hi - lo)
            } else {
                0.5 * lo.abs().max(1.0)
            };
            lo - pad..hi + pad
        };
        // Extra room above the curves for the legend.
        let y = padded(y0, y1, 0.06);
        let y = y.start..y.end + 0.25 * (y.end - y.start);
        (padded(x0, x1, 0.02), y)
    }
}

/// The SVG rendered to PNG bytes on white.
fn rasterise(svg: &str) -> Result<Vec<u8>, ExploreError> {
    let mut options = resvg::usvg::Options {
        font_family: FONT_FAMILY.to_string(),
        ..Default::default()
    };
    let fonts = options.fontdb_mut();
    fonts.load_font_data(FONT.to_vec());
    fonts.set_sans_serif_family(FONT_FAMILY);
    let tree = resvg::usvg::Tree::from_str(svg, &options).map_err(|e| ExploreError::Plot(e.to_string()))?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| ExploreError::Plot("empty figure".into()))?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(&tree, resvg::tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| ExploreError::Plot(e.to_string()))
}

/// The energy error by structure size and the number of structures of each size, as
/// `STEM.{svg,png}` and `STEM_counts.{svg,png}`: `by_size` holds (atoms, structures, MAE eV)
/// and `structures` the size of the set. Returns the four paths.
pub fn size_figures(
    stem: &Path,
    by_size: &[(usize, usize, f64)],
    structures: usize,
) -> Result<[PathBuf; 4], ExploreError> {
    let mae = by_size.iter().map(|&(n, _, mae)| (n as f64, mae)).collect();
    let count = by_size.iter().map(|&(n, count, _)| (n as f64, count as f64)).collect();
    let [svg, png] = Figure::new(
        format!("energy error by size, {structures} structures"),
        "atoms per structure",
        "energy MAE (eV)",
    )
    .with_series("energy MAE", mae, Style::Line)
    .save(stem)?;
    let name = stem.file_name().and_then(|s| s.to_str()).unwrap_or("by_size");
    let [count_svg, count_png] = Figure::new("structures by size", "atoms per structure", "structures")
        .with_series("structures in the set", count, Style::Points)
        .save(&stem.with_file_name(format!("{name}_counts")))?;
    Ok([svg, png, count_svg, count_png])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_labelled_axes_legend_and_markers_to_svg_and_png() {
        let folder = tempfile::tempdir().unwrap();
        let curve: Vec<(f64, f64)> = (0..50)
            .map(|k| (0.9 + 0.01 * k as f64, (k as f64 - 20.0).powi(2)))
            .collect();
        let figure = Figure::new("test", "scale", "energy (eV)")
            .with_series("model", curve, Style::Line)
            .with_marker("minimum", (1.1, 0.0), 0);
        let [svg, png] = figure.save(&folder.path().join("curve")).unwrap();
        let text = std::fs::read_to_string(svg).unwrap();
        for expected in ["energy (eV)", "scale", "model", "minimum"] {
            assert!(text.contains(expected), "{expected} missing");
        }
        let bytes = std::fs::read(png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        // Text was rendered: the PNG is not a blank page with a few lines.
        assert!(bytes.len() > 10_000, "{} bytes", bytes.len());
    }
}
