//! Pictures (PNG and SVG, with a bundled DejaVu Sans so no system font is needed): optimizer paths
//! over the contours of a 2-D objective, and loss curves on a log scale.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use rmsprop_testfns::Objective;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // DejaVu Sans (assets/DejaVuSans-LICENSE.txt): registered for the "sans-serif" family.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("../assets/DejaVuSans.ttf"),
        );
    });
}

/// Colours that are told apart (Okabe-Ito, safe for colour-blind readers).
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

/// One labelled path.
pub struct Series<'a> {
    /// Legend label.
    pub label: String,
    /// Points (x, y) for paths; (step, loss) for curves.
    pub points: &'a [(f64, f64)],
}

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}

/// Draws `paths` over the contours of `objective` (log-scaled colour of f) into `<stem>.png` and
/// `<stem>.svg`.
///
/// # Errors
/// When a file cannot be written.
pub fn trajectories(
    stem: &Path,
    objective: &dyn Objective,
    title: &str,
    paths: &[Series<'_>],
) -> Result<()> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    draw_trajectories(
        BitMapBackend::new(&png, (900, 760)).into_drawing_area(),
        objective,
        title,
        paths,
    )?;
    draw_trajectories(
        SVGBackend::new(&svg, (900, 760)).into_drawing_area(),
        objective,
        title,
        paths,
    )
}

fn draw_trajectories<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    objective: &dyn Objective,
    title: &str,
    paths: &[Series<'_>],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let b = objective.bounds();
    let (x0, x1, y0, y1) = (b[0].0, b[0].1, b[1].0, b[1].1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("x")
        .y_desc("y")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;

    // Contours as a heat map of log(1 + f - f_min), light to dark.
    let n = 160;
    let f_min = objective.value(&objective.minimum());
    let mut cells = Vec::with_capacity(n * n);
    let (dx, dy) = ((x1 - x0) / n as f64, (y1 - y0) / n as f64);
    for i in 0..n {
        for j in 0..n {
            let (x, y) = (x0 + (i as f64 + 0.5) * dx, y0 + (j as f64 + 0.5) * dy);
            cells.push((
                i,
                j,
                (1.0 + (objective.value(&[x, y]) - f_min).max(0.0)).ln(),
            ));
        }
    }
    let top = cells.iter().map(|c| c.2).fold(0.0f64, f64::max).max(1e-12);
    chart
        .draw_series(cells.iter().map(|&(i, j, v)| {
            let t = (v / top).clamp(0.0, 1.0);
            // Banded shading: visible level sets.
            let band = ((t * 14.0).floor() / 14.0) * 0.85;
            let c = (255.0 * (1.0 - band)) as u8;
            let x = x0 + i as f64 * dx;
            let y = y0 + j as f64 * dy;
            Rectangle::new(
                [(x, y), (x + dx, y + dy)],
                RGBColor(c, c, (c as f64 * 0.9 + 25.0) as u8).filled(),
            )
        }))
        .map_err(err)?;

    let m = objective.minimum();
    chart
        .draw_series(std::iter::once(Cross::new(
            (m[0], m[1]),
            8,
            BLACK.stroke_width(2),
        )))
        .map_err(err)?
        .label("minimum")
        .legend(|(x, y)| Cross::new((x + 10, y), 5, BLACK.stroke_width(2)));
    for (k, s) in paths.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        // Earlier paths wider, so that a path drawn later on top of one does not hide it.
        let width = 2 + 2 * (paths.len() - 1 - k) as u32;
        let inside: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|&(x, y)| (x.clamp(x0, x1), y.clamp(y0, y1)))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(
                inside.iter().copied(),
                color.stroke_width(width),
            ))
            .map_err(err)?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        if let (Some(first), Some(last)) = (inside.first(), inside.last()) {
            chart
                .draw_series([
                    Circle::new(*first, 5, color.filled()),
                    Circle::new(*last, 5, color.stroke_width(2)),
                ])
                .map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// Loss curves (f - f_min, log scale) against the step, into `<stem>.png` and `<stem>.svg`.
///
/// # Errors
/// When a file cannot be written.
pub fn loss_curves(stem: &Path, title: &str, curves: &[Series<'_>]) -> Result<()> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    draw_loss(
        BitMapBackend::new(&png, (900, 560)).into_drawing_area(),
        title,
        curves,
    )?;
    draw_loss(
        SVGBackend::new(&svg, (900, 560)).into_drawing_area(),
        title,
        curves,
    )
}

fn draw_loss<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    curves: &[Series<'_>],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let floor = 1e-16;
    let steps = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let values = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1.max(floor)));
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo.is_finite() {
        (lo / 2.0, hi * 2.0)
    } else {
        (floor, 1.0)
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..steps, (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("f - f_min (log scale)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    for (k, c) in curves.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                c.points
                    .iter()
                    .filter(|p| p.1.is_finite())
                    .map(|&(s, v)| (s, v.max(floor))),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(c.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// A heat map of `values[row][col]` (rows = `row_labels`, columns = `col_labels`), each cell
/// labelled with its value, into `<stem>.png` and `<stem>.svg`. Lower is better (darker is lower).
///
/// # Errors
/// When a file cannot be written.
pub fn heatmap(
    stem: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    col_labels: &[String],
    row_labels: &[String],
    values: &[Vec<f64>],
) -> Result<()> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    let args = (title, x_desc, y_desc, col_labels, row_labels, values);
    draw_heatmap(
        BitMapBackend::new(&png, (900, 640)).into_drawing_area(),
        args,
    )?;
    draw_heatmap(SVGBackend::new(&svg, (900, 640)).into_drawing_area(), args)
}

type HeatmapArgs<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a [String],
    &'a [String],
    &'a [Vec<f64>],
);

fn draw_heatmap<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    args: HeatmapArgs<'_>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (title, x_desc, y_desc, cols, rows, values) = args;
    root.fill(&WHITE).map_err(err)?;
    let finite = values.iter().flatten().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..cols.len() as f64, 0.0..rows.len() as f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(cols.len() * 2 + 1)
        .y_labels(rows.len() * 2 + 1)
        .x_label_formatter(&|v| {
            let i = (*v - 0.5).round();
            if (v - 0.5 - i).abs() < 1e-9 && i >= 0.0 {
                cols.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| {
            let i = (*v - 0.5).round();
            if (v - 0.5 - i).abs() < 1e-9 && i >= 0.0 {
                rows.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    for (r, row) in values.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            let (fill, text) = if v.is_finite() {
                let t = (v - lo) / span;
                // Dark blue (good, low) to pale yellow (bad, high).
                let lerp = |a: f64, b: f64| (a + (b - a) * t) as u8;
                (
                    RGBColor(lerp(20.0, 250.0), lerp(40.0, 230.0), lerp(120.0, 150.0)),
                    format!("{v:.1}"),
                )
            } else {
                (RGBColor(200, 60, 60), "diverged".to_string())
            };
            let (x, y) = (c as f64, r as f64);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    fill.filled(),
                )))
                .map_err(err)?;
            let dark = v.is_finite() && (v - lo) / span < 0.5;
            let style = TextStyle::from(("sans-serif", 15).into_font())
                .color(if dark { &WHITE } else { &BLACK })
                .pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                ));
            chart
                .draw_series(std::iter::once(Text::new(text, (x + 0.5, y + 0.5), style)))
                .map_err(err)?;
        }
    }
    root.present().map_err(err)
}
