//! Pictures (PNG and SVG, with a bundled DejaVu Sans so no system font is needed): optimizer paths
//! over the contours of a 2-D objective, and loss curves on a log scale.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use rmsprop_testfns::{Marker, Objective};

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

/// Each optimizer's colour and line width, the same in every picture: chosen by the first word
/// of its label (`rmsprop (lr 0.1)`, `GD`, `mini-batch GD (batch 32)`, ...). RMSProp, the
/// subject of the lab, is drawn widest and last (on top); labels that name no optimizer of the
/// family (`rho 0.9`, ...) take the palette in order.
///
/// # Examples
/// ```
/// use rmsprop_cli::plot::style;
/// assert_eq!(style("rmsprop (lr 0.3)", 0), style("rmsprop", 5));
/// assert_eq!(style("GD (lr 0.1)", 0), style("mini-batch GD (batch 32)", 3));
/// assert!(style("rmsprop", 0).1 > style("adam", 0).1);
/// ```
pub fn style(label: &str, index: usize) -> (RGBColor, u32) {
    let lower = label.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    if has("rmsprop") {
        (RGBColor(213, 94, 0), 3)
    } else if has("adamw") || has("adam") {
        (RGBColor(230, 159, 0), 2)
    } else if has("adagrad") {
        (RGBColor(204, 121, 167), 2)
    } else if has("adadelta") {
        (RGBColor(110, 110, 110), 2)
    } else if has("lion") {
        (RGBColor(120, 100, 0), 2)
    } else if has("nesterov") {
        (RGBColor(86, 180, 233), 2)
    } else if has("momentum") {
        (RGBColor(0, 158, 115), 2)
    } else if has("gd") || has("sgd") {
        (RGBColor(0, 114, 178), 2)
    } else {
        (PALETTE[index % PALETTE.len()], 2)
    }
}

/// The style of each of `labels` ([`style`]), where two labels of one picture would share a
/// colour (variants of one optimizer) the later ones taking unused palette colours; and the
/// drawing order, RMSProp's last so that it is on top.
///
/// # Examples
/// ```
/// use rmsprop_cli::plot::styles;
/// let (s, order) = styles(&["rmsprop (lr 0.1)".into(), "adam".into(), "rmsprop + bias correction".into()]);
/// assert_ne!(s[0].0, s[2].0);
/// assert_eq!(order, [1, 0, 2]);
/// ```
pub fn styles(labels: &[String]) -> (Vec<(RGBColor, u32)>, Vec<usize>) {
    let mut out: Vec<(RGBColor, u32)> = Vec::with_capacity(labels.len());
    for (k, label) in labels.iter().enumerate() {
        let (mut color, width) = style(label, k);
        if out.iter().any(|(c, _)| *c == color) {
            let named: Vec<RGBColor> = labels
                .iter()
                .enumerate()
                .map(|(j, l)| style(l, j).0)
                .collect();
            if let Some(free) = PALETTE
                .iter()
                .find(|p| !out.iter().any(|(c, _)| c == *p) && !named.contains(p))
            {
                color = *free;
            }
        }
        out.push((color, width));
    }
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&k| out[k].1);
    (out, order)
}

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
/// `<stem>.svg`, with the objective's markers (bodies, target). For a moving objective the
/// minimum's own path over `steps` steps is drawn instead of contours.
///
/// # Errors
/// When a file cannot be written.
pub fn trajectories(
    stem: &Path,
    objective: &dyn Objective,
    title: &str,
    paths: &[Series<'_>],
    steps: u64,
) -> Result<()> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    draw_trajectories(
        BitMapBackend::new(&png, (900, 760)).into_drawing_area(),
        objective,
        title,
        paths,
        steps,
    )?;
    draw_trajectories(
        SVGBackend::new(&svg, (900, 760)).into_drawing_area(),
        objective,
        title,
        paths,
        steps,
    )
}

fn draw_trajectories<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    objective: &dyn Objective,
    title: &str,
    paths: &[Series<'_>],
    steps: u64,
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

    if objective.moving() {
        let track: Vec<(f64, f64)> = (0..=steps)
            .map(|t| {
                let m = objective.minimum_at(t);
                (m[0], m[1])
            })
            .collect();
        chart
            .draw_series(DashedLineSeries::new(
                track,
                6,
                4,
                BLACK.mix(0.6).stroke_width(2),
            ))
            .map_err(err)?
            .label("the moving minimum")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.6).stroke_width(2))
            });
    } else {
        contours(&mut chart, objective, (x0, x1, y0, y1))?;
    }
    draw_markers(&mut chart, objective)?;
    let m = objective.minimum_at(steps);
    let label = if objective.moving() {
        "minimum at the last step"
    } else {
        "minimum"
    };
    chart
        .draw_series(std::iter::once(Cross::new(
            (m[0], m[1]),
            8,
            BLACK.stroke_width(2),
        )))
        .map_err(err)?
        .label(label)
        .legend(|(x, y)| Cross::new((x + 10, y), 5, BLACK.stroke_width(2)));
    let labels: Vec<String> = paths.iter().map(|p| p.label.clone()).collect();
    let (looks, order) = styles(&labels);
    // Paths often share their first stretch: the others, drawn first, are each wider than the
    // next so that none hides another; RMSProp comes last, on top.
    let others = order.iter().filter(|&&k| looks[k].1 < 3).count();
    for (drawn, k) in order.into_iter().enumerate() {
        let s = &paths[k];
        let (color, mut width) = looks[k];
        if width < 3 {
            width = 2 + 2 * (others - 1 - drawn) as u32;
        }
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

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Contours as a banded heat map of log(1 + f - f_min), light to dark.
fn contours<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    objective: &dyn Objective,
    (x0, x1, y0, y1): (f64, f64, f64, f64),
) -> Result<()>
where
    DB::ErrorType: 'static,
{
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
    // Banded shading (visible level sets); runs of equal shade in a column become one
    // rectangle, which keeps the SVG small.
    let shade = |v: f64| {
        let t = (v / top).clamp(0.0, 1.0);
        let band = ((t * 14.0).floor() / 14.0) * 0.85;
        (255.0 * (1.0 - band)) as u8
    };
    let mut rects = Vec::new();
    for column in cells.chunks(n) {
        let mut j = 0;
        while j < column.len() {
            let (i, j0, v) = column[j];
            let c = shade(v);
            while j + 1 < column.len() && shade(column[j + 1].2) == c {
                j += 1;
            }
            let x = x0 + i as f64 * dx;
            rects.push(Rectangle::new(
                [(x, y0 + j0 as f64 * dy), (x + dx, y0 + (j + 1) as f64 * dy)],
                RGBColor(c, c, (c as f64 * 0.9 + 25.0) as u8).filled(),
            ));
            j += 1;
        }
    }
    chart.draw_series(rects).map_err(err)?;
    Ok(())
}

/// Attracting bodies (filled dark green), repelling bodies (red rings) and the target (a black
/// triangle), each in the legend once.
fn draw_markers<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    objective: &dyn Objective,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let markers = objective.markers();
    let attract = RGBColor(0, 110, 60);
    let repel = RGBColor(200, 30, 30);
    let pick = |want: fn(&Marker) -> Option<[f64; 2]>| -> Vec<(f64, f64)> {
        markers
            .iter()
            .filter_map(want)
            .map(|p| (p[0], p[1]))
            .collect()
    };
    let attractors = pick(|m| match m {
        Marker::Attractor(p) => Some(*p),
        _ => None,
    });
    let repellers = pick(|m| match m {
        Marker::Repeller(p) => Some(*p),
        _ => None,
    });
    let targets = pick(|m| match m {
        Marker::Target(p) => Some(*p),
        _ => None,
    });
    if !attractors.is_empty() {
        chart
            .draw_series(
                attractors
                    .iter()
                    .map(|p| Circle::new(*p, 11, attract.filled())),
            )
            .map_err(err)?
            .label("attracting body")
            .legend(move |(x, y)| Circle::new((x + 10, y), 6, attract.filled()));
    }
    if !repellers.is_empty() {
        chart
            .draw_series(
                repellers
                    .iter()
                    .map(|p| Circle::new(*p, 11, repel.stroke_width(3))),
            )
            .map_err(err)?
            .label("repelling body")
            .legend(move |(x, y)| Circle::new((x + 10, y), 6, repel.stroke_width(2)));
    }
    if !targets.is_empty() {
        chart
            .draw_series(
                targets
                    .iter()
                    .map(|p| TriangleMarker::new(*p, 10, BLACK.filled())),
            )
            .map_err(err)?
            .label("target")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, BLACK.filled()));
    }
    Ok(())
}

/// Curves of a positive quantity (f - f_min, a step length, ...) on a log scale, into
/// `<stem>.png` and `<stem>.svg`.
///
/// # Errors
/// When a file cannot be written.
pub fn loss_curves(
    stem: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    curves: &[Series<'_>],
) -> Result<()> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    let text = (title, x_desc, y_desc);
    draw_loss(
        BitMapBackend::new(&png, (900, 560)).into_drawing_area(),
        text,
        curves,
    )?;
    draw_loss(
        SVGBackend::new(&svg, (900, 560)).into_drawing_area(),
        text,
        curves,
    )
}

fn draw_loss<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    (title, x_desc, y_desc): (&str, &str, &str),
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
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|v| format!("{v}"))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    let labels: Vec<String> = curves.iter().map(|c| c.label.clone()).collect();
    let (looks, order) = styles(&labels);
    for k in order {
        let c = &curves[k];
        let (color, width) = looks[k];
        chart
            .draw_series(LineSeries::new(
                c.points
                    .iter()
                    .filter(|p| p.1.is_finite())
                    .map(|&(s, v)| (s, v.max(floor))),
                color.stroke_width(width),
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

/// One chart of [`panels`]: curves of a positive quantity on a log scale, and an optional
/// horizontal reference line with its label.
pub struct Panel<'a> {
    /// The y axis's description.
    pub y_desc: &'a str,
    /// The curves, (step, value).
    pub curves: Vec<Series<'a>>,
    /// A reference value drawn as a dashed line, and what it means.
    pub reference: Option<(f64, String)>,
}

/// Charts stacked vertically over a shared x axis (each on a log scale), into `<stem>.png` and
/// `<stem>.svg`; the legend is drawn once, beside the first chart.
///
/// # Errors
/// When a file cannot be written.
pub fn panels(stem: &Path, title: &str, x_desc: &str, charts: &[Panel<'_>]) -> Result<()> {
    register_font();
    let size = (1000, 260 * charts.len() as u32 + 60);
    draw_panels(
        BitMapBackend::new(&stem.with_extension("png"), size).into_drawing_area(),
        title,
        x_desc,
        charts,
    )?;
    draw_panels(
        SVGBackend::new(&stem.with_extension("svg"), size).into_drawing_area(),
        title,
        x_desc,
        charts,
    )
}

fn draw_panels<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    charts: &[Panel<'_>],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(err)?;
    let (plots, legend) = root.split_horizontally(760);
    let areas = plots.split_evenly((charts.len(), 1));
    let steps = charts
        .iter()
        .flat_map(|c| c.curves.iter().flat_map(|s| s.points.iter().map(|p| p.0)))
        .fold(1.0f64, f64::max);
    for (area, chart_spec) in areas.iter().zip(charts) {
        let values = chart_spec
            .curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.1))
            .chain(chart_spec.reference.as_ref().map(|r| r.0))
            .filter(|v| v.is_finite() && *v > 0.0);
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let (lo, hi) = if lo.is_finite() {
            (lo / 2.0, hi * 2.0)
        } else {
            (1e-16, 1.0)
        };
        let mut chart = ChartBuilder::on(area)
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..steps, (lo..hi).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(chart_spec.y_desc)
            .y_labels(5)
            .x_label_formatter(&|v| format!("{v}"))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 15))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        for (k, c) in chart_spec.curves.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    c.points
                        .iter()
                        .filter(|p| p.1.is_finite() && p.1 > 0.0)
                        .copied(),
                    color.stroke_width(2),
                ))
                .map_err(err)?;
        }
        if let Some((value, _)) = &chart_spec.reference {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, *value), (steps, *value)],
                    8,
                    5,
                    BLACK.stroke_width(2),
                ))
                .map_err(err)?;
        }
    }
    // One legend for all charts, outside the data.
    let mut y = 40;
    let curves = charts.first().map_or(&[][..], |c| &c.curves[..]);
    for (k, c) in curves.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        legend
            .draw(&PathElement::new(
                vec![(10, y), (40, y)],
                color.stroke_width(3),
            ))
            .map_err(err)?;
        legend
            .draw(&Text::new(c.label.clone(), (48, y - 8), ("sans-serif", 14)))
            .map_err(err)?;
        y += 24;
    }
    for c in charts {
        if let Some((_, label)) = &c.reference {
            legend
                .draw(&PathElement::new(
                    vec![(10, y), (40, y)],
                    BLACK.stroke_width(2),
                ))
                .map_err(err)?;
            legend
                .draw(&Text::new(
                    format!("dashed: {label}"),
                    (48, y - 8),
                    ("sans-serif", 14),
                ))
                .map_err(err)?;
            y += 24;
        }
    }
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
