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

/// Colours that are told apart (Okabe-Ito, safe for colour-blind readers, then three darker
/// ones for pictures with more curves).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(120, 28, 129),
    RGBColor(140, 81, 10),
    RGBColor(110, 110, 110),
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
        BitMapBackend::new(&png, (1000, 760)).into_drawing_area(),
        objective,
        title,
        paths,
        steps,
        true,
    )?;
    draw_trajectories(
        SVGBackend::new(&svg, (1000, 760)).into_drawing_area(),
        objective,
        title,
        paths,
        steps,
        false,
    )
}

/// The paths of [`trajectories`] drawn step by step into an animated GIF of `frames` frames
/// `delay_ms` apart (the last shown three times as long), `size` pixels.
///
/// # Errors
/// When the file cannot be written.
pub fn trajectories_gif(
    path: &Path,
    objective: &dyn Objective,
    title: &str,
    paths: &[Series<'_>],
    (frames, delay_ms, size): (usize, u32, (u32, u32)),
) -> Result<()> {
    register_font();
    let longest = paths.iter().map(|p| p.points.len()).max().unwrap_or(0);
    let frames = frames.max(1);
    let root = BitMapBackend::gif(path, size, delay_ms)
        .map_err(err)?
        .into_drawing_area();
    for f in (1..=frames).chain([frames, frames]) {
        // The first frames show the first steps in detail: the shown count grows quadratically.
        let shown = ((longest as f64) * (f as f64 / frames as f64).powi(2))
            .ceil()
            .max(2.0) as usize;
        let cut: Vec<Series<'_>> = paths
            .iter()
            .map(|p| Series {
                label: p.label.clone(),
                points: &p.points[..shown.min(p.points.len())],
            })
            .collect();
        let step = shown as u64 - 1;
        draw_trajectories(
            root.clone(),
            objective,
            &format!("{title}: step {step}"),
            &cut,
            step,
            true,
        )?;
    }
    Ok(())
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Key {
    Line(RGBColor, u32),
    Dashed(RGBColor),
    Dot(RGBColor),
    Ring(RGBColor),
    Triangle,
    Cross,
}

/// Legend entries in a column at `(x, y)` of `area`; returns the y below the last.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, mut y): (i32, i32),
    entries: &[(Key, String)],
) -> Result<i32>
where
    DB::ErrorType: 'static,
{
    for (key, label) in entries {
        match *key {
            Key::Line(c, w) => area.draw(&PathElement::new(
                vec![(x, y), (x + 26, y)],
                c.stroke_width(w.max(2)),
            )),
            Key::Dashed(c) => area
                .draw(&PathElement::new(
                    vec![(x, y), (x + 8, y)],
                    c.stroke_width(2),
                ))
                .and_then(|_| {
                    area.draw(&PathElement::new(
                        vec![(x + 14, y), (x + 26, y)],
                        c.stroke_width(2),
                    ))
                }),
            Key::Dot(c) => area.draw(&Circle::new((x + 13, y), 6, c.filled())),
            Key::Ring(c) => area.draw(&Circle::new((x + 13, y), 6, c.stroke_width(2))),
            Key::Triangle => area.draw(&TriangleMarker::new((x + 13, y), 6, BLACK.filled())),
            Key::Cross => area.draw(&Cross::new((x + 13, y), 5, BLACK.stroke_width(2))),
        }
        .map_err(err)?;
        area.draw(&Text::new(
            label.clone(),
            (x + 34, y - 8),
            ("sans-serif", 14),
        ))
        .map_err(err)?;
        y += 22;
    }
    Ok(y)
}

/// The pieces of a polyline inside the box `(x0, x1, y0, y1)`: segments are cut where they
/// cross its edges (Liang-Barsky), parts outside are dropped, and a non-finite point breaks the
/// line. Nothing is moved onto the border.
///
/// # Examples
/// ```
/// use rmsprop_cli::plot::clip_to_box;
/// // From inside to outside and back: two pieces, each ending on the edge x = 1.
/// let pieces = clip_to_box(&[(0.0, 0.0), (2.0, 0.0), (0.0, 0.5)], (-1.0, 1.0, -1.0, 1.0));
/// assert_eq!(pieces, vec![vec![(0.0, 0.0), (1.0, 0.0)], vec![(1.0, 0.25), (0.0, 0.5)]]);
/// ```
pub fn clip_to_box(
    points: &[(f64, f64)],
    (x0, x1, y0, y1): (f64, f64, f64, f64),
) -> Vec<Vec<(f64, f64)>> {
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut open = false;
    let finite = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let inside = |p: &(f64, f64)| p.0 >= x0 && p.0 <= x1 && p.1 >= y0 && p.1 <= y1;
    if let Some(p) = points.first().filter(|p| finite(p) && inside(p)) {
        pieces.push(vec![*p]);
        open = true;
    }
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        if !finite(&a) || !finite(&b) {
            open = false;
            continue;
        }
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        let mut visible = true;
        for (p, q) in [
            (-dx, a.0 - x0),
            (dx, x1 - a.0),
            (-dy, a.1 - y0),
            (dy, y1 - a.1),
        ] {
            if p == 0.0 {
                if q < 0.0 {
                    visible = false;
                }
            } else {
                let r = q / p;
                if p < 0.0 {
                    t0 = t0.max(r);
                } else {
                    t1 = t1.min(r);
                }
            }
        }
        if !visible || t0 > t1 {
            open = false;
            continue;
        }
        // Points on an edge are computed, then clamped onto it against rounding.
        let at = |t: f64| {
            if t == 0.0 {
                a
            } else if t == 1.0 {
                b
            } else {
                ((a.0 + t * dx).clamp(x0, x1), (a.1 + t * dy).clamp(y0, y1))
            }
        };
        let (s, e) = (at(t0), at(t1));
        if !(open && t0 == 0.0) {
            pieces.push(vec![s]);
        }
        pieces.last_mut().expect("a piece is open").push(e);
        open = t1 == 1.0;
    }
    pieces.retain(|p| p.len() > 1);
    pieces
}

/// A polyline cut where it turns back by more than 120 degrees: a thick line's mitred join at
/// such a turn is a spike (the bitmap backend draws it far beyond both segments). The pieces
/// share their end points, so the drawing is the same line without the spikes.
///
/// # Examples
/// ```
/// use rmsprop_cli::plot::split_at_reversals;
/// let zigzag = [(0.0, 0.0), (1.0, 0.0), (0.0, 0.1), (1.0, 0.2)];
/// assert_eq!(split_at_reversals(&zigzag).len(), 3);
/// assert_eq!(split_at_reversals(&[(0.0, 0.0), (1.0, 0.0), (2.0, 0.5)]).len(), 1);
/// ```
pub fn split_at_reversals(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for (k, &p) in points.iter().enumerate() {
        out.last_mut().expect("one piece").push(p);
        if k > 0 && k + 1 < points.len() {
            let (a, b) = (points[k - 1], points[k + 1]);
            let (u, v) = ((p.0 - a.0, p.1 - a.1), (b.0 - p.0, b.1 - p.1));
            let dot = u.0 * v.0 + u.1 * v.1;
            let norms = (u.0.hypot(u.1)) * (v.0.hypot(v.1));
            if norms > 0.0 && dot < -0.5 * norms {
                out.push(vec![p]);
            }
        }
    }
    out
}

/// The width and height of a `w` x `h` area that shows a `ratio` (width / height) box with equal
/// units on both axes.
fn fit(w: f64, h: f64, ratio: f64) -> (f64, f64) {
    if w / h > ratio {
        (h * ratio, h)
    } else {
        (w, w / ratio)
    }
}

/// Axes are drawn to scale unless the box is more than this many times wider than tall (or
/// taller than wide); such pictures say so in their caption.
const MAX_ASPECT: f64 = 4.0;

fn draw_trajectories<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    objective: &dyn Objective,
    title: &str,
    paths: &[Series<'_>],
    steps: u64,
    segments: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let b = objective.bounds();
    let (x0, x1, y0, y1) = (b[0].0, b[0].1, b[1].0, b[1].1);
    let ratio = (x1 - x0) / (y1 - y0);
    let to_scale = (1.0 / MAX_ASPECT..=MAX_ASPECT).contains(&ratio);
    let caption = if to_scale {
        title.to_string()
    } else {
        format!("{title} (axes not to scale)")
    };
    let root = root.titled(&caption, ("sans-serif", 20)).map_err(err)?;
    let (w, h) = root.dim_in_pixel();
    let side = (w / 4).min(270);
    let (left, right) = root.split_horizontally(w.saturating_sub(side));
    // The data rectangle gets the box's aspect: the label areas (56 left, 44 below) and a
    // 10-pixel margin stay outside it, the rest is centred.
    let (lw, lh) = ((w - side) as f64 - 56.0 - 20.0, h as f64 - 44.0 - 20.0);
    let (pw, ph) = if to_scale {
        fit(lw, lh, ratio)
    } else {
        (lw, lh)
    };
    let (mx, my) = (((lw - pw) / 2.0) as i32, ((lh - ph) / 2.0) as i32);
    let area = left.margin(my, my, mx, mx);
    let mut chart = ChartBuilder::on(&area)
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(56)
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

    let mut legend: Vec<(Key, String)> = Vec::new();
    let mut bands = None;
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
            .map_err(err)?;
        legend.push((Key::Dashed(BLACK), "the moving minimum".into()));
    } else {
        bands = Some(contours(&mut chart, objective, (x0, x1, y0, y1))?);
    }
    legend.extend(draw_markers(&mut chart, objective)?);
    let m = objective.minimum_at(steps);
    chart
        .draw_series(std::iter::once(Cross::new(
            (m[0], m[1]),
            8,
            BLACK.stroke_width(2),
        )))
        .map_err(err)?;
    let minimum = if objective.moving() {
        "minimum at the last step"
    } else {
        "minimum"
    };
    legend.push((Key::Cross, minimum.into()));
    let labels: Vec<String> = paths.iter().map(|p| p.label.clone()).collect();
    let (looks, order) = styles(&labels);
    // Paths often share their first stretch: the others, drawn first, are each wider than the
    // next so that none hides another; RMSProp comes last, on top.
    let others = order.iter().filter(|&&k| looks[k].1 < 3).count();
    let mut left_frame = Vec::new();
    for (drawn, &k) in order.iter().enumerate() {
        let s = &paths[k];
        let (color, mut width) = looks[k];
        if width < 3 {
            width = 2 + 2 * (others - 1 - drawn) as u32;
        }
        let pieces: Vec<Vec<(f64, f64)>> = clip_to_box(s.points, (x0, x1, y0, y1))
            .iter()
            .flat_map(|p| split_at_reversals(p))
            .collect();
        for piece in pieces {
            polyline(&mut chart, piece, color.stroke_width(width), segments)?;
        }
        let inside = |p: &(f64, f64)| p.0 >= x0 && p.0 <= x1 && p.1 >= y0 && p.1 <= y1;
        let first = s.points.first().filter(|p| inside(p));
        let last = s
            .points
            .last()
            .filter(|p| p.0.is_finite() && p.1.is_finite() && inside(p));
        if let Some(p) = first {
            chart
                .draw_series([Circle::new(*p, 5, color.filled())])
                .map_err(err)?;
        }
        if let Some(p) = last {
            chart
                .draw_series([Circle::new(*p, 5, color.stroke_width(2))])
                .map_err(err)?;
        } else if !s.points.is_empty() {
            left_frame.push(s.label.clone());
        }
    }
    for &k in order.iter().rev() {
        let (color, width) = looks[k];
        legend.push((Key::Line(color, width), paths[k].label.clone()));
    }
    let mut y = draw_legend(&right, (12, 30), &legend)?;
    if !left_frame.is_empty() {
        y += 6;
        for line in ["ends outside the frame:".to_string()]
            .into_iter()
            .chain(left_frame)
        {
            right
                .draw(&Text::new(line, (12, y - 8), ("sans-serif", 13)))
                .map_err(err)?;
            y += 18;
        }
    }
    if let Some(bands) = bands {
        colour_bar(&right, (12, y + 24), h as i32 - y - 60, &bands)?;
    }
    root.present().map_err(err)
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A line through `points`: one polyline, or (`segments`, for the bitmap backend) one segment
/// per pair of points. The bitmap backend joins a thick polyline's segments with unlimited
/// mitres, so a curve that turns sharply (a noisy loss, a zigzag path) grows spikes far beyond
/// its points; SVG viewers limit mitres themselves.
fn polyline<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    points: Vec<(f64, f64)>,
    style: ShapeStyle,
    segments: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    if segments {
        chart
            .draw_series(
                points
                    .windows(2)
                    .map(|w| PathElement::new(vec![w[0], w[1]], style)),
            )
            .map_err(err)?;
    } else {
        chart
            .draw_series(LineSeries::new(points, style))
            .map_err(err)?;
    }
    Ok(())
}

/// Shaded bands of `ln(1 + f - f_min)`, light (low) to dark: `BANDS` equal steps up to `top`.
const BANDS: usize = 14;

/// The background's bands: the value of f - f_min at each band's upper edge, and each band's shade.
struct Bands {
    edges: Vec<f64>,
    shades: Vec<RGBColor>,
}

fn shade_of(band: usize) -> RGBColor {
    let c = (255.0 * (1.0 - (band as f64 / BANDS as f64) * 0.85)) as u8;
    RGBColor(c, c, (c as f64 * 0.9 + 25.0) as u8)
}

/// Contours: a banded heat map of `ln(1 + f - f_min)`, light to dark, with a line on every
/// band's edge (marching squares over a finer grid, so the edges are smooth).
fn contours<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    objective: &dyn Objective,
    (x0, x1, y0, y1): (f64, f64, f64, f64),
) -> Result<Bands>
where
    DB::ErrorType: 'static,
{
    let n = 160;
    let f_min = objective.minimum_value();
    let level = |x: f64, y: f64| (1.0 + (objective.value(&[x, y]) - f_min).max(0.0)).ln();
    let (dx, dy) = ((x1 - x0) / n as f64, (y1 - y0) / n as f64);
    let mut cells = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            cells.push((
                i,
                j,
                level(x0 + (i as f64 + 0.5) * dx, y0 + (j as f64 + 0.5) * dy),
            ));
        }
    }
    let top = cells
        .iter()
        .map(|c| c.2)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-12);
    let band = |v: f64| {
        ((v / top).clamp(0.0, 1.0) * BANDS as f64)
            .floor()
            .min(BANDS as f64 - 1.0) as usize
    };
    // Runs of equal shade in a column become one rectangle, which keeps the SVG small.
    let mut rects = Vec::new();
    for column in cells.chunks(n) {
        let mut j = 0;
        while j < column.len() {
            let (i, j0, v) = column[j];
            let c = band(v);
            while j + 1 < column.len() && band(column[j + 1].2) == c {
                j += 1;
            }
            let x = x0 + i as f64 * dx;
            rects.push(Rectangle::new(
                [(x, y0 + j0 as f64 * dy), (x + dx, y0 + (j + 1) as f64 * dy)],
                shade_of(c).filled(),
            ));
            j += 1;
        }
    }
    chart.draw_series(rects).map_err(err)?;
    // Lines on the band edges, from the values at the corners of a coarser grid (fine enough
    // for smooth lines, coarse enough to keep the SVG small).
    let m = 96;
    let (ldx, ldy) = ((x1 - x0) / m as f64, (y1 - y0) / m as f64);
    let corner: Vec<Vec<f64>> = (0..=m)
        .map(|i| {
            (0..=m)
                .map(|j| level(x0 + i as f64 * ldx, y0 + j as f64 * ldy))
                .collect()
        })
        .collect();
    let line = RGBColor(60, 60, 90).mix(0.45).stroke_width(1);
    let mut segments = Vec::new();
    for k in 1..BANDS {
        let t = top * k as f64 / BANDS as f64;
        for i in 0..m {
            for j in 0..m {
                let v = [
                    corner[i][j],
                    corner[i + 1][j],
                    corner[i + 1][j + 1],
                    corner[i][j + 1],
                ];
                let p = [
                    (x0 + i as f64 * ldx, y0 + j as f64 * ldy),
                    (x0 + (i + 1) as f64 * ldx, y0 + j as f64 * ldy),
                    (x0 + (i + 1) as f64 * ldx, y0 + (j + 1) as f64 * ldy),
                    (x0 + i as f64 * ldx, y0 + (j + 1) as f64 * ldy),
                ];
                let mut crossing = Vec::with_capacity(4);
                for e in 0..4 {
                    let (a, b) = (v[e], v[(e + 1) % 4]);
                    if (a < t) != (b < t) && a.is_finite() && b.is_finite() {
                        let s = (t - a) / (b - a);
                        let (pa, pb) = (p[e], p[(e + 1) % 4]);
                        crossing.push((pa.0 + s * (pb.0 - pa.0), pa.1 + s * (pb.1 - pa.1)));
                    }
                }
                for pair in crossing.chunks_exact(2) {
                    segments.push(PathElement::new(vec![pair[0], pair[1]], line));
                }
            }
        }
    }
    chart.draw_series(segments).map_err(err)?;
    Ok(Bands {
        edges: (1..=BANDS)
            .map(|k| (top * k as f64 / BANDS as f64).exp() - 1.0)
            .collect(),
        shades: (0..BANDS).map(shade_of).collect(),
    })
}

/// A vertical colour bar of the bands, lowest at the bottom, each edge labelled with f - f_min.
fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    height: i32,
    bands: &Bands,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let height = height.max(BANDS as i32 * 8);
    area.draw(&Text::new(
        "f - f_min (band edges)",
        (x, y - 18),
        ("sans-serif", 14),
    ))
    .map_err(err)?;
    let step = height / BANDS as i32;
    for (k, shade) in bands.shades.iter().enumerate() {
        let bottom = y + height - k as i32 * step;
        area.draw(&Rectangle::new(
            [(x, bottom - step), (x + 22, bottom)],
            shade.filled(),
        ))
        .map_err(err)?;
    }
    area.draw(&Rectangle::new(
        [(x, y + height - BANDS as i32 * step), (x + 22, y + height)],
        BLACK.stroke_width(1),
    ))
    .map_err(err)?;
    area.draw(&Text::new(
        "0",
        (x + 28, y + height - 7),
        ("sans-serif", 12),
    ))
    .map_err(err)?;
    for (k, edge) in bands.edges.iter().enumerate() {
        // Every other edge, and the top one, labelled.
        if k % 2 == 1 || k + 1 == bands.edges.len() {
            let at = y + height - (k as i32 + 1) * step;
            area.draw(&PathElement::new(
                vec![(x + 22, at), (x + 26, at)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
            area.draw(&Text::new(
                short(*edge),
                (x + 28, at - 7),
                ("sans-serif", 12),
            ))
            .map_err(err)?;
        }
    }
    Ok(())
}

/// A number in about three significant digits, in exponent form outside [1e-2, 1e4).
fn short(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if !(1e-2..1e4).contains(&v.abs()) {
        return format!("{v:.1e}");
    }
    let decimals = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Attracting bodies (filled dark green), repelling bodies (red rings) and the target (a black
/// triangle); returns their legend entries.
fn draw_markers<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    objective: &dyn Objective,
) -> Result<Vec<(Key, String)>>
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
    let mut legend = Vec::new();
    if !attractors.is_empty() {
        chart
            .draw_series(
                attractors
                    .iter()
                    .map(|p| Circle::new(*p, 11, attract.filled())),
            )
            .map_err(err)?;
        legend.push((Key::Dot(attract), "attracting body".to_string()));
    }
    if !repellers.is_empty() {
        chart
            .draw_series(
                repellers
                    .iter()
                    .map(|p| Circle::new(*p, 11, repel.stroke_width(3))),
            )
            .map_err(err)?;
        legend.push((Key::Ring(repel), "repelling body".to_string()));
    }
    if !targets.is_empty() {
        chart
            .draw_series(
                targets
                    .iter()
                    .map(|p| TriangleMarker::new(*p, 10, BLACK.filled())),
            )
            .map_err(err)?;
        legend.push((Key::Triangle, "target".to_string()));
    }
    Ok(legend)
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
    loss_curves_with_bands(stem, title, x_desc, y_desc, curves, &[])
}

/// A band under a curve: `(x, low, high)` per point.
pub type Band = Vec<(f64, f64, f64)>;

/// [`loss_curves`], each curve `k` drawn over a translucent band `bands[k]` of
/// `(x, low, high)` (e.g. the range over seeds; an empty band draws none).
///
/// # Errors
/// When a file cannot be written.
pub fn loss_curves_with_bands(
    stem: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    curves: &[Series<'_>],
    bands: &[Band],
) -> Result<()> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    let text = (title, x_desc, y_desc);
    draw_loss(
        BitMapBackend::new(&png, (1000, 560)).into_drawing_area(),
        text,
        (curves, bands),
        true,
    )?;
    draw_loss(
        SVGBackend::new(&svg, (1000, 560)).into_drawing_area(),
        text,
        (curves, bands),
        false,
    )
}

/// The pieces of a curve a log axis can draw: runs of finite values at or above `floor`.
/// Values below it (exact zeros and negatives included) are returned apart, to be marked at the
/// floor; non-finite values break the curve.
///
/// # Examples
/// ```
/// use rmsprop_cli::plot::log_pieces;
/// let curve = [(0.0, 1.0), (1.0, 0.5), (2.0, 0.0), (3.0, f64::NAN), (4.0, 0.1), (5.0, 1e-40)];
/// let (pieces, below) = log_pieces(&curve, 1e-30);
/// assert_eq!(pieces, vec![vec![(0.0, 1.0), (1.0, 0.5)], vec![(4.0, 0.1)]]);
/// assert_eq!(below, vec![2.0, 5.0]);
/// ```
pub fn log_pieces(points: &[(f64, f64)], floor: f64) -> (Vec<Vec<(f64, f64)>>, Vec<f64>) {
    let mut pieces: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    let mut below = Vec::new();
    for &(x, v) in points {
        if v.is_finite() && v >= floor {
            pieces.last_mut().expect("one piece").push((x, v));
        } else {
            if !v.is_nan() && v < floor {
                below.push(x);
            }
            if !pieces.last().expect("one piece").is_empty() {
                pieces.push(Vec::new());
            }
        }
    }
    pieces.retain(|p| !p.is_empty());
    (pieces, below)
}

/// The label of a tick on a log axis drawn as log10: `1e-3` at whole exponents, the value
/// itself (three digits) between them.
///
/// # Examples
/// ```
/// use rmsprop_cli::plot::log_label;
/// assert_eq!(log_label(-3.0), "1e-3");
/// assert_eq!(log_label(0.5), "3.16");
/// ```
pub fn log_label(exponent: f64) -> String {
    if (exponent - exponent.round()).abs() < 1e-9 {
        format!("1e{}", exponent.round() as i64)
    } else {
        short(10f64.powf(exponent))
    }
}

/// A log axis spans at most this many decades; smaller values are marked at its floor.
pub const MAX_DECADES: f64 = 30.0;

/// The log axis's range for `values`: from half the smallest positive value (but no more than
/// [`MAX_DECADES`] below the top) to twice the largest.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo.is_finite() {
        let hi = hi * 2.0;
        ((lo / 2.0).max(hi * 10f64.powf(-MAX_DECADES)), hi)
    } else {
        (1e-16, 1.0)
    }
}

fn draw_loss<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    (title, x_desc, y_desc): (&str, &str, &str),
    (curves, bands): (&[Series<'_>], &[Band]),
    segments: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(err)?;
    let (w, _) = root.dim_in_pixel();
    let (plot, side) = root.split_horizontally(w.saturating_sub(250));
    let steps = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let (lo, hi) = log_range(
        curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.1))
            .chain(bands.iter().flatten().flat_map(|b| [b.1, b.2])),
    );
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..steps, lo.log10()..hi.log10())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|v| format!("{v}"))
        .y_labels(12)
        .y_label_formatter(&|v| log_label(*v))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    let labels: Vec<String> = curves.iter().map(|c| c.label.clone()).collect();
    let (looks, order) = styles(&labels);
    let mut any_zero = false;
    // Bands first, under every line: the floor stands in for values below it.
    for (k, band) in bands.iter().enumerate().filter(|(_, b)| !b.is_empty()) {
        let clamp = |v: f64| {
            if v.is_finite() {
                v.max(lo).min(hi).log10()
            } else {
                hi.log10()
            }
        };
        let outline: Vec<(f64, f64)> = band
            .iter()
            .map(|&(x, _, h)| (x, clamp(h)))
            .chain(band.iter().rev().map(|&(x, l, _)| (x, clamp(l))))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(
                outline,
                looks[k].0.mix(0.18).filled(),
            )))
            .map_err(err)?;
    }
    for &k in &order {
        let (color, width) = looks[k];
        let (pieces, below) = log_pieces(curves[k].points, lo);
        for piece in pieces {
            let piece = piece.into_iter().map(|(x, v)| (x, v.log10())).collect();
            polyline(&mut chart, piece, color.stroke_width(width), segments)?;
        }
        any_zero |= !below.is_empty();
        chart
            .draw_series(
                below
                    .into_iter()
                    .map(|x| TriangleMarker::new((x, lo.log10()), 4, color.filled())),
            )
            .map_err(err)?;
    }
    let mut legend: Vec<(Key, String)> = order
        .iter()
        .rev()
        .map(|&k| (Key::Line(looks[k].0, looks[k].1), curves[k].label.clone()))
        .collect();
    if any_zero {
        legend.push((
            Key::Triangle,
            format!("below {} (or 0): at the floor", short(lo)),
        ));
    }
    draw_legend(&side, (8, 40), &legend)?;
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
        true,
    )?;
    draw_panels(
        SVGBackend::new(&stem.with_extension("svg"), size).into_drawing_area(),
        title,
        x_desc,
        charts,
        false,
    )
}

fn draw_panels<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    charts: &[Panel<'_>],
    segments: bool,
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
        let (lo, hi) = log_range(
            chart_spec
                .curves
                .iter()
                .flat_map(|c| c.points.iter().map(|p| p.1))
                .chain(chart_spec.reference.as_ref().map(|r| r.0)),
        );
        let mut chart = ChartBuilder::on(area)
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..steps, lo.log10()..hi.log10())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(chart_spec.y_desc)
            .y_labels(8)
            .x_label_formatter(&|v| format!("{v}"))
            .y_label_formatter(&|v| log_label(*v))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 15))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        let labels: Vec<String> = chart_spec.curves.iter().map(|c| c.label.clone()).collect();
        let (looks, order) = styles(&labels);
        for k in order {
            let (color, width) = looks[k];
            for piece in log_pieces(chart_spec.curves[k].points, lo).0 {
                let piece = piece.into_iter().map(|(x, v)| (x, v.log10())).collect();
                polyline(&mut chart, piece, color.stroke_width(width), segments)?;
            }
        }
        if let Some((value, _)) = &chart_spec.reference {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, value.log10()), (steps, value.log10())],
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
    let labels: Vec<String> = curves.iter().map(|c| c.label.clone()).collect();
    let (looks, _) = styles(&labels);
    for (k, c) in curves.iter().enumerate() {
        let color = looks[k].0;
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

#[cfg(test)]
mod tests {
    use super::*;

    const BOX: (f64, f64, f64, f64) = (-1.0, 1.0, -1.0, 1.0);

    #[test]
    fn a_path_inside_is_one_piece_unchanged() {
        let path = [(0.0, 0.0), (0.5, 0.5), (-0.9, 0.2)];
        assert_eq!(clip_to_box(&path, BOX), vec![path.to_vec()]);
    }

    #[test]
    fn a_path_from_outside_enters_at_the_edge() {
        let pieces = clip_to_box(&[(-3.0, 0.0), (0.0, 0.0), (0.5, 0.0)], BOX);
        assert_eq!(pieces, vec![vec![(-1.0, 0.0), (0.0, 0.0), (0.5, 0.0)]]);
    }

    #[test]
    fn a_segment_crossing_the_whole_box_is_cut_at_both_edges() {
        let pieces = clip_to_box(&[(-2.0, -2.0), (2.0, 2.0)], BOX);
        assert_eq!(pieces, vec![vec![(-1.0, -1.0), (1.0, 1.0)]]);
    }

    #[test]
    fn segments_wholly_outside_draw_nothing_and_nothing_is_clamped() {
        // Both ends outside, passing beside the box: clamping would draw along the border.
        assert!(clip_to_box(&[(2.0, -3.0), (2.0, 3.0), (-3.0, 2.0)], BOX).is_empty());
        assert!(clip_to_box(&[(5.0, 5.0)], BOX).is_empty());
    }

    #[test]
    fn non_finite_points_break_the_line() {
        let pieces = clip_to_box(
            &[
                (0.0, 0.0),
                (0.1, 0.0),
                (f64::NAN, 0.0),
                (0.2, 0.0),
                (0.3, 0.0),
            ],
            BOX,
        );
        assert_eq!(
            pieces,
            vec![vec![(0.0, 0.0), (0.1, 0.0)], vec![(0.2, 0.0), (0.3, 0.0)]]
        );
    }

    #[test]
    fn every_clipped_point_is_in_the_box_and_on_the_original_segments() {
        // A curve whose radius swings from 0 to 1.8, leaving and re-entering the box.
        let path: Vec<(f64, f64)> = (0..400)
            .map(|k| {
                let t = k as f64 * 0.1;
                let r = 0.9 + 0.9 * (0.07 * k as f64).sin();
                (r * t.cos(), r * t.sin())
            })
            .collect();
        let pieces = clip_to_box(&path, BOX);
        assert!(pieces.len() > 3, "{}", pieces.len());
        for p in pieces.iter().flatten() {
            assert!(
                p.0.abs() <= 1.0 + 1e-12 && p.1.abs() <= 1.0 + 1e-12,
                "{p:?}"
            );
            let on = path.windows(2).any(|w| {
                let (a, b) = (w[0], w[1]);
                let cross = (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0);
                let within =
                    (p.0 - a.0) * (p.0 - b.0) <= 1e-12 && (p.1 - a.1) * (p.1 - b.1) <= 1e-12;
                cross.abs() < 1e-9 && within
            });
            assert!(on, "{p:?} is not on the path");
        }
    }

    #[test]
    fn equal_units_fit_the_area() {
        assert_eq!(fit(600.0, 400.0, 1.0), (400.0, 400.0));
        assert_eq!(fit(600.0, 400.0, 3.0), (600.0, 200.0));
    }

    #[test]
    fn band_edges_rise_and_short_numbers_read_well() {
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(12.26), "12.3");
        assert_eq!(short(2446.97), "2447");
        assert_eq!(short(0.0123), "0.0123");
        assert_eq!(short(123456.0), "1.2e5");
        assert_eq!(short(0.001), "1.0e-3");
    }
}
