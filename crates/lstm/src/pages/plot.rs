//! Plots: the loss curve written next to every checkpoint, and the forecast plot. SVG or PNG
//! by the file's extension; the font is embedded, so nothing outside the binary is needed.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::error::{Error, Result};

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let font: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, font);
    });
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(format!("cannot draw the plot: {e}")),
    }
}

/// One named line of points.
pub struct Line<'a> {
    /// Legend label.
    pub label: &'a str,
    /// Points `(x, y)`.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
}

/// Draws lines on common axes into `path` (`.svg` or `.png`).
///
/// # Errors
/// [`Error::Io`] naming the file if drawing or writing fails.
pub fn lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Line<'_>],
) -> Result<()> {
    register_font();
    let png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if png {
        let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
        draw(root, title, x_label, y_label, series, None).map_err(|e| plot_err(path, e))
    } else {
        let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
        draw(root, title, x_label, y_label, series, None).map_err(|e| plot_err(path, e))
    }
}

/// A forecast with its interval: the history, the median forecast continuing it, and the
/// band between the lower and upper quantiles shaded, into `path` (`.svg` or `.png`).
///
/// # Errors
/// As [`lines`].
pub fn forecast_band(
    path: &Path,
    title: &str,
    y_label: &str,
    history: &[f64],
    median: &[f64],
    band: Option<(Vec<f64>, Vec<f64>)>,
) -> Result<()> {
    register_font();
    let n = history.len();
    let hist = Line {
        label: "history",
        points: history
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as f64, v))
            .collect(),
        color: RGBColor(31, 119, 180),
    };
    let mut fc = Vec::with_capacity(median.len() + 1);
    if n > 0 {
        fc.push(((n - 1) as f64, history[n - 1]));
    }
    fc.extend(median.iter().enumerate().map(|(i, &v)| ((n + i) as f64, v)));
    let fc = Line {
        label: "forecast (median)",
        points: fc,
        color: RGBColor(214, 39, 40),
    };
    let polygon = band.map(|(lo, hi)| {
        let mut p: Vec<(f64, f64)> = lo
            .iter()
            .enumerate()
            .map(|(i, &v)| ((n + i) as f64, v))
            .collect();
        p.extend(
            hi.iter()
                .enumerate()
                .rev()
                .map(|(i, &v)| ((n + i) as f64, v)),
        );
        p
    });
    let series = [hist, fc];
    let png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if png {
        let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
        draw(root, title, "step", y_label, &series, polygon.as_deref())
            .map_err(|e| plot_err(path, e))
    } else {
        let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
        draw(root, title, "step", y_label, &series, polygon.as_deref())
            .map_err(|e| plot_err(path, e))
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Line<'_>],
    band: Option<&[(f64, f64)]>,
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let pts = series
        .iter()
        .flat_map(|s| s.points.iter())
        .chain(band.into_iter().flatten());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        if x.is_finite() && y.is_finite() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(|e| e.to_string())?;
    if let Some(b) = band {
        let shade = RGBColor(214, 39, 40).mix(0.2);
        chart
            .draw_series(std::iter::once(Polygon::new(b.to_vec(), shade.filled())))
            .map_err(|e| e.to_string())?
            .label("interval")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], shade.filled()));
    }
    for s in series {
        let c = s.color;
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(s.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// The loss curve: training loss (smoothed) and validation loss against steps.
///
/// # Errors
/// As [`lines`].
pub fn loss_curve(path: &Path, train: &[(u64, f32)], val: &[(u64, f32)]) -> Result<()> {
    let tr = Line {
        label: "training loss",
        points: train.iter().map(|&(s, l)| (s as f64, l as f64)).collect(),
        color: RGBColor(31, 119, 180),
    };
    let va = Line {
        label: "validation loss",
        points: val.iter().map(|&(s, l)| (s as f64, l as f64)).collect(),
        color: RGBColor(214, 39, 40),
    };
    lines(path, "Loss", "step", "loss", &[tr, va])
}
