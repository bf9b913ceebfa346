//! The table (Markdown, JSON) and the pictures of a comparison.

use std::path::Path;

use anyhow::{bail, Context, Result};
use rmsprop::EpsPlacement;

use crate::plot::{self, Series};
use crate::replay::Preset;
use crate::run::{build_objective, OptimizerSpec};

use rmsprop_testfns::Objective;

use super::*;

pub(super) fn show(v: f64) -> String {
    if v.is_infinite() {
        "never/diverged".to_string()
    } else if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{v}")
    } else {
        sci(v)
    }
}

/// `v` to four significant digits, printed as briefly as possible (0.3, 3.333, 1e-5).
pub(super) fn shortest(v: f64) -> String {
    format!("{v:.3e}")
        .parse::<f64>()
        .map_or_else(|_| v.to_string(), |r| r.to_string())
}

pub(super) fn sci(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3e}")
    } else {
        "diverged".to_string()
    }
}

/// The outcome table as Markdown.
pub fn table(outcomes: &[Outcome], e: &Experiment) -> String {
    let tolerance = e.tolerance;
    let seeds = outcomes.first().map_or(1, |o| o.seeds);
    let tail = if seeds > 1 {
        format!("tail gap (mean ± sd over {seeds} seeds)")
    } else {
        "tail gap".to_string()
    };
    let (early, mean, reach) = match e.measure_from {
        Some(k) => (
            format!("early gap (first 10% from step {k})"),
            format!("mean gap (from step {k})"),
            format!("steps from step {k} to f - f_min < {tolerance:e}"),
        ),
        None => (
            "early gap (first 10%)".to_string(),
            "mean gap (all steps)".to_string(),
            format!("steps to f - f_min < {tolerance:e}"),
        ),
    };
    let mut out = format!(
        "| optimizer | lr | first step | {early} | final f - f_min | {tail} | {mean} | distance to minimum | {reach} | time per run |\n|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for o in outcomes {
        let lr = if o.lr_from_grid {
            let how = match o.lr_search {
                LrSearch::Interior => "grid",
                LrSearch::Extended => "grid, extended",
                LrSearch::Edge => "grid edge",
            };
            format!("{} ({how})", shortest(o.lr))
        } else {
            o.lr.to_string()
        };
        let tail = if o.seeds > 1 && o.tail_gap.is_finite() {
            format!("{} ± {:.1e}", sci(o.tail_gap), o.tail_gap_std)
        } else {
            sci(o.tail_gap)
        };
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} ms |\n",
            o.optimizer,
            lr,
            sci(o.first_step),
            sci(o.early_gap),
            sci(o.final_gap),
            tail,
            sci(o.mean_gap),
            // NaN with a finite gap: no minimizer is known (the adding problem).
            if o.distance_to_minimum.is_nan() && o.final_gap.is_finite() {
                "—".to_string()
            } else {
                sci(o.distance_to_minimum)
            },
            o.steps_to_tolerance
                .map_or("never".to_string(), |s| s.to_string()),
            o.seconds * 1e3
        );
    }
    out
}

/// Keeps at most `n` evenly spaced points (pictures of 20,000-step runs stay small).
pub(super) fn thin(points: Vec<(f64, f64)>, n: usize) -> Vec<(f64, f64)> {
    if points.len() <= n {
        return points;
    }
    let every = points.len().div_ceil(n);
    let last = *points.last().expect("non-empty");
    let mut out: Vec<(f64, f64)> = points.into_iter().step_by(every).collect();
    out.push(last);
    out
}

/// The files [`write`](fn@write) produces.
pub const FILES: &str = "table.md, table.json, trajectories.png/svg (2-D objectives), loss.png/svg, step_length.png/svg, layers.png/svg and gradients.png/svg (experiments judged by update ratio), through_time.png/svg (recurrent networks), accumulator.png/svg (RMSProp runs)";

/// Writes `table.md`, `table.json`, `trajectories.{png,svg}` (2-D objectives), `loss.{png,svg}`,
/// `step_length.{png,svg}`, `layers.{png,svg}` (each coordinate's mean update, when a verdict
/// uses the update ratio) and, when an RMSProp ran, `accumulator.{png,svg}` into `dir`.
///
/// # Errors
/// When a file cannot be written.
pub fn write(dir: &Path, e: &Experiment, outcomes: &[Outcome]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("--out {}", dir.display()))?;
    std::fs::write(dir.join("table.md"), table(outcomes, e))?;
    std::fs::write(
        dir.join("table.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "experiment": e,
            "outcomes": outcomes,
        }))?,
    )?;
    let f = build_objective(&e.objective, 0.0, 0, None)?;
    let label = |o: &Outcome| format!("{} (lr {})", o.optimizer, shortest(o.lr));
    let noise = if e.noise > 0.0 {
        format!(", gradient noise sd {}", e.noise)
    } else {
        String::new()
    };
    let title = e.title();
    if f.dim() == 2 {
        let paths: Vec<Vec<(f64, f64)>> = outcomes
            .iter()
            .map(|o| thin(o.path.iter().map(|p| (p[0], p[1])).collect(), 4000))
            .collect();
        let series: Vec<Series<'_>> = outcomes
            .iter()
            .zip(&paths)
            .map(|(o, p)| Series {
                label: label(o),
                points: p,
            })
            .collect();
        let steps = outcomes.iter().map(|o| o.steps).max().unwrap_or(0);
        let start = e.start.clone().unwrap_or_else(|| f.start());
        plot::trajectories(
            &dir.join("trajectories"),
            f.as_ref(),
            &format!("{title}: {steps} steps from {start:?}{noise}"),
            &series,
            steps,
        )?;
    }
    let epochs = e.epochs.is_some();
    let x_desc = if epochs { "epoch" } else { "step" };
    let curve = |o: &Outcome, v: &[f64], offset: usize| {
        thin(
            v.iter()
                .enumerate()
                .map(|(s, g)| ((s + offset) as f64 / o.steps_per_epoch as f64, *g))
                .collect(),
            4000,
        )
    };
    let seeds = if e.seeds.len() > 1 {
        format!(", mean of {} seeds", e.seeds.len())
    } else {
        String::new()
    };
    let curves: Vec<Vec<(f64, f64)>> = outcomes.iter().map(|o| curve(o, &o.gaps, 0)).collect();
    let series: Vec<Series<'_>> = outcomes
        .iter()
        .zip(&curves)
        .map(|(o, c)| Series {
            label: label(o),
            points: c,
        })
        .collect();
    // With several seeds, each mean is drawn in a band from the lowest to the highest seed.
    let bands: Vec<Vec<(f64, f64, f64)>> = outcomes
        .iter()
        .map(|o| {
            let lo: Vec<f64> = o.gap_range.iter().map(|r| r.0).collect();
            let hi: Vec<f64> = o.gap_range.iter().map(|r| r.1).collect();
            curve(o, &lo, 0)
                .into_iter()
                .zip(curve(o, &hi, 0))
                .map(|((x, a), (_, b))| (x, a, b))
                .collect()
        })
        .collect();
    let band_note = if e.seeds.len() > 1 {
        " (band: lowest to highest seed)"
    } else {
        ""
    };
    plot::loss_curves_with_bands(
        &dir.join("loss"),
        &format!("{title}: f - f_min per {x_desc}{noise}{seeds}{band_note}"),
        x_desc,
        "f - f_min (log scale)",
        &series,
        &bands,
    )?;
    let lengths: Vec<Vec<(f64, f64)>> = outcomes
        .iter()
        .map(|o| curve(o, &o.step_lengths, 1))
        .collect();
    let series: Vec<Series<'_>> = outcomes
        .iter()
        .zip(&lengths)
        .map(|(o, c)| Series {
            label: label(o),
            points: c,
        })
        .collect();
    plot::loss_curves(
        &dir.join("step_length"),
        &format!("{title}: length of each step{seeds}"),
        x_desc,
        "|x(k+1) - x(k)| (log scale)",
        &series,
    )?;
    if e.verdict.iter().any(|c| c.metric == Metric::UpdateRatio) {
        layer_pictures(dir, e, f.as_ref(), outcomes)?;
    }
    through_time(dir, e, f.as_ref(), outcomes)?;
    accumulator_view(dir, e, outcomes)
}

/// For recurrent networks (`through_time.{png,svg}`): the gradient's norm with respect to the
/// hidden state k steps before the output, at the start and at each optimizer's last point
/// ([`Objective::gradient_through_time`](rmsprop_testfns::Objective::gradient_through_time)).
fn through_time(dir: &Path, e: &Experiment, f: &dyn Objective, outcomes: &[Outcome]) -> Result<()> {
    let start = e.start.clone().unwrap_or_else(|| f.start());
    let Some(at_start) = f.gradient_through_time(&start) else {
        return Ok(());
    };
    let points = |norms: Vec<f64>| -> Vec<(f64, f64)> {
        norms
            .into_iter()
            .enumerate()
            .map(|(k, v)| (k as f64, v))
            .collect()
    };
    let mut curves = vec![("start (every optimizer)".to_string(), points(at_start))];
    for o in outcomes {
        let last = o.path.last().expect("the start at least");
        if let Some(norms) = f.gradient_through_time(last) {
            curves.push((
                format!("{} (lr {}), last step", o.optimizer, shortest(o.lr)),
                points(norms),
            ));
        }
    }
    let series: Vec<Series<'_>> = curves
        .iter()
        .map(|(label, c)| Series {
            label: label.clone(),
            points: c,
        })
        .collect();
    plot::loss_curves(
        &dir.join("through_time"),
        &format!(
            "{}: the gradient with respect to the hidden state, by steps before the output",
            e.title()
        ),
        "steps before the output",
        "mean |dL/dh| (log scale)",
        &series,
    )
}

/// What the update ratio summarizes, per layer of the network (`layers.{png,svg}`: each
/// layer's mean |update| per weight over the first 10% of steps) and what causes it
/// (`gradients.{png,svg}`: each layer's gradient norm over the same steps), for every optimizer.
pub(super) fn layer_pictures(
    dir: &Path,
    e: &Experiment,
    f: &dyn Objective,
    outcomes: &[Outcome],
) -> Result<()> {
    let layers = f.layers();
    let title = e.title();
    let label = |o: &Outcome| format!("{} (lr {})", o.optimizer, shortest(o.lr));
    let numbered = |v: Vec<f64>| -> Vec<(f64, f64)> {
        v.into_iter()
            .enumerate()
            .map(|(i, m)| ((i + 1) as f64, m))
            .collect()
    };
    let moves: Vec<Vec<(f64, f64)>> = outcomes
        .iter()
        .map(|o| numbered(layer_moves(&o.path, &layers)))
        .collect();
    let norms: Vec<Vec<(f64, f64)>> = outcomes
        .iter()
        .map(|o| numbered(layer_gradient_norms(f, &o.path, &layers)))
        .collect();
    let one_weight = layers.iter().all(|r| r.len() == 1);
    let what = if one_weight { "weight" } else { "layer" };
    for (file, points, heading, y) in [
        (
            "layers",
            &moves,
            format!("{title}: each {what}'s mean |update| over the first 10% of steps"),
            "mean |update| per weight (log scale)",
        ),
        (
            "gradients",
            &norms,
            format!("{title}: each {what}'s gradient norm over the first 10% of steps"),
            "gradient norm (log scale)",
        ),
    ] {
        let series: Vec<Series<'_>> = outcomes
            .iter()
            .zip(points)
            .map(|(o, c)| Series {
                label: label(o),
                points: c,
            })
            .collect();
        plot::loss_curves(
            &dir.join(file),
            &heading,
            &format!("{what} (1 is nearest the input)"),
            y,
            &series,
        )?;
    }
    Ok(())
}

/// RMSProp's effective per-coordinate learning rate at step `k` (1 = the first) as a function
/// of the square average `v` after it: `lr_k / (sqrt(v) + eps)` with eps outside the root,
/// `lr_k / sqrt(v + eps)` inside (the spec's eps and placement, or its preset's), where
/// `lr_k = lr × lr_decay^(k - 1)`. `None` for centered or bias-corrected runs, whose denominator
/// also depends on the gradient average or the step count.
///
/// # Examples
/// ```
/// use rmsprop_cli::{compare::effective_lr, run::OptimizerSpec};
/// let keras = OptimizerSpec { eps: Some(0.0), ..OptimizerSpec::named("rmsprop") };
/// assert_eq!(effective_lr(&keras, 0.1).unwrap()(4.0, 1), 0.05);
/// let decayed = OptimizerSpec { lr_decay: Some(0.5), ..keras };
/// assert_eq!(effective_lr(&decayed, 0.1).unwrap()(4.0, 3), 0.0125);
/// let centered = OptimizerSpec { centered: Some(true), ..OptimizerSpec::named("rmsprop") };
/// assert!(effective_lr(&centered, 0.1).is_none());
/// ```
pub fn effective_lr(spec: &OptimizerSpec, lr: f64) -> Option<impl Fn(f64, u64) -> f64> {
    let config = spec.preset.unwrap_or(Preset::Pytorch).config();
    if spec.centered.unwrap_or(config.centered)
        || spec.bias_correction.unwrap_or(config.bias_correction)
    {
        return None;
    }
    let eps = spec.eps.unwrap_or(config.eps);
    let inside = spec.eps_placement.unwrap_or(config.eps_placement) == EpsPlacement::Inside;
    let gamma = spec.lr_decay.unwrap_or(1.0);
    Some(move |v: f64, k: u64| {
        let lr = lr * gamma.powi(k.saturating_sub(1) as i32);
        if inside {
            lr / (v + eps).sqrt()
        } else {
            lr / (v.sqrt() + eps)
        }
    })
}

/// Writes `trajectories.gif` into `dir`: the paths of a 2-D experiment drawn step by step (30
/// frames, 720 x 548 pixels), for READMEs and slides.
///
/// # Errors
/// An objective that is not 2-D, or a file that cannot be written.
pub fn write_gif(dir: &Path, e: &Experiment, outcomes: &[Outcome]) -> Result<()> {
    let f = build_objective(&e.objective, 0.0, 0, None)?;
    if f.dim() != 2 {
        bail!(
            "--gif draws 2-D paths; {} has {} coordinates",
            e.objective,
            f.dim()
        );
    }
    let paths: Vec<Vec<(f64, f64)>> = outcomes
        .iter()
        .map(|o| o.path.iter().map(|p| (p[0], p[1])).collect())
        .collect();
    let series: Vec<Series<'_>> = outcomes
        .iter()
        .zip(&paths)
        .map(|(o, p)| Series {
            label: format!("{} (lr {})", o.optimizer, shortest(o.lr)),
            points: p,
        })
        .collect();
    std::fs::create_dir_all(dir).with_context(|| format!("--out {}", dir.display()))?;
    plot::trajectories_gif(
        &dir.join("trajectories.gif"),
        f.as_ref(),
        &e.title(),
        &series,
        (30, 150, (720, 548)),
    )
}

/// Picks one number out of a state vector (a coordinate, or an order statistic).
pub(super) type Pick = Box<dyn Fn(&[f64]) -> f64>;

/// The accumulator view of every RMSProp run: its square average `v`, `sqrt(v)`, and the
/// effective per-coordinate learning rate (`lr / (sqrt(v) + eps)`, or `lr / sqrt(v + eps)` with
/// eps inside), per coordinate (the first seed), into `accumulator.{png,svg}`.
pub(super) fn accumulator_view(dir: &Path, e: &Experiment, outcomes: &[Outcome]) -> Result<()> {
    let runs: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !o.square_avg.is_empty())
        .collect();
    if runs.is_empty() {
        return Ok(());
    }
    let mut v_curves = Vec::new();
    let mut root_curves = Vec::new();
    let mut lr_curves = Vec::new();
    for o in &runs {
        let effective = effective_lr(&o.spec, o.lr);
        let dim = o.square_avg[0].len();
        // Up to three coordinates each; more are summarized by min, median and max.
        let picks: Vec<(String, Pick)> = if dim <= 3 {
            (0..dim)
                .map(|i| {
                    let name = if dim == 1 {
                        String::new()
                    } else {
                        format!(" x{}", i + 1)
                    };
                    (
                        name,
                        Box::new(move |v: &[f64]| v[i]) as Box<dyn Fn(&[f64]) -> f64>,
                    )
                })
                .collect()
        } else {
            let order = |v: &[f64], q: f64| {
                let mut s = v.to_vec();
                s.sort_by(f64::total_cmp);
                s[((s.len() - 1) as f64 * q).round() as usize]
            };
            vec![
                (
                    " min".to_string(),
                    Box::new(move |v: &[f64]| order(v, 0.0)) as Box<dyn Fn(&[f64]) -> f64>,
                ),
                (
                    " median".to_string(),
                    Box::new(move |v: &[f64]| order(v, 0.5)),
                ),
                (" max".to_string(), Box::new(move |v: &[f64]| order(v, 1.0))),
            ]
        };
        for (name, pick) in picks {
            let label = format!("{} (lr {}){name}", o.optimizer, shortest(o.lr));
            let v: Vec<(f64, f64)> = o
                .square_avg
                .iter()
                .enumerate()
                .map(|(k, row)| ((k + 1) as f64, pick(row)))
                .collect();
            root_curves.push((
                label.clone(),
                thin(v.iter().map(|&(k, x)| (k, x.sqrt())).collect(), 4000),
            ));
            if let Some(effective) = &effective {
                lr_curves.push((
                    label.clone(),
                    thin(
                        v.iter()
                            .map(|&(k, x)| (k, effective(x, k as u64)))
                            .collect(),
                        4000,
                    ),
                ));
            }
            v_curves.push((label, thin(v, 4000)));
        }
    }
    fn series(curves: &[(String, Vec<(f64, f64)>)]) -> Vec<Series<'_>> {
        curves
            .iter()
            .map(|(label, points)| Series {
                label: label.clone(),
                points,
            })
            .collect()
    }
    let reference = e.stability_lr.map(|b| (b, format!("stability bound {b}")));
    plot::panels(
        &dir.join("accumulator"),
        &format!("{}: the accumulator view (first seed)", e.title()),
        "step",
        &[
            plot::Panel {
                y_desc: "v (square average)",
                curves: series(&v_curves),
                reference: None,
            },
            plot::Panel {
                y_desc: "sqrt(v)",
                curves: series(&root_curves),
                reference: None,
            },
            plot::Panel {
                y_desc: if lr_curves.len() == v_curves.len() {
                    "effective lr"
                } else {
                    "effective lr (not for centered or bias-corrected runs)"
                },
                curves: series(&lr_curves),
                reference,
            },
        ],
    )
}
