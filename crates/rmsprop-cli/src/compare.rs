//! `rmsprop compare`: several optimizers on one objective from one start — a table and pictures.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::plot::{self, Series};
use crate::run::{make_objective, make_optimizer};

/// One optimizer's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Optimizer name.
    pub optimizer: String,
    /// Learning rate used.
    pub lr: f64,
    /// f at the last step.
    pub final_loss: f64,
    /// Euclidean distance from the last point to the known minimum.
    pub distance_to_minimum: f64,
    /// First step at which f - f_min < tolerance (None: never).
    pub steps_to_tolerance: Option<u64>,
    /// Wall time of the whole run, seconds.
    pub seconds: f64,
    /// The path, start included.
    #[serde(skip)]
    pub path: Vec<Vec<f64>>,
    /// f - f_min at every step, start included.
    #[serde(skip)]
    pub gaps: Vec<f64>,
}

/// Parses `name=value,name=value` learning rates.
///
/// # Errors
/// A malformed pair or value.
///
/// # Examples
/// ```
/// let lrs = rmsprop_cli::compare::parse_lrs("rmsprop=0.01,adam=0.1").unwrap();
/// assert_eq!(lrs, vec![("rmsprop".to_string(), 0.01), ("adam".to_string(), 0.1)]);
/// ```
pub fn parse_lrs(s: &str) -> Result<Vec<(String, f64)>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').with_context(|| {
                format!("--lr `{p}`: expected optimizer=value, e.g. rmsprop=0.01")
            })?;
            let v: f64 = value
                .trim()
                .parse()
                .with_context(|| format!("--lr `{p}`: `{value}` is not a number"))?;
            Ok((name.trim().to_string(), v))
        })
        .collect()
}

/// Runs every optimizer for `steps` from the objective's start.
///
/// # Errors
/// Unknown names or invalid learning rates.
pub fn compare(
    objective: &str,
    optimizers: &[String],
    lrs: &[(String, f64)],
    steps: u64,
    tolerance: f64,
) -> Result<Vec<Outcome>> {
    let f = make_objective(objective)?;
    for (name, _) in lrs {
        if !optimizers.contains(name) {
            bail!("--lr names `{name}`, which is not in --optimizers");
        }
    }
    let f_min = f.value(&f.minimum());
    optimizers
        .iter()
        .map(|name| {
            let lr = lrs.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
            let mut opt = make_optimizer(name, None, lr)?;
            opt.set_execution(
                rmsprop::Execution::sequential()
                    .with_non_finite(rmsprop::NonFinitePolicy::Propagate),
            );
            let started = Instant::now();
            let mut x = f.start();
            let mut path = vec![x.clone()];
            let mut gaps = vec![f.value(&x) - f_min];
            for _ in 0..steps {
                let g = f.gradient(&x);
                opt.step_single(&mut x, &g)?;
                path.push(x.clone());
                gaps.push(f.value(&x) - f_min);
            }
            let seconds = started.elapsed().as_secs_f64();
            let m = f.minimum();
            Ok(Outcome {
                optimizer: name.clone(),
                lr: opt.learning_rate(),
                final_loss: f.value(&x),
                distance_to_minimum: x
                    .iter()
                    .zip(&m)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
                    .sqrt(),
                steps_to_tolerance: gaps.iter().position(|g| *g < tolerance).map(|s| s as u64),
                seconds,
                path,
                gaps,
            })
        })
        .collect()
}

/// The outcome table as Markdown.
pub fn table(outcomes: &[Outcome], tolerance: f64) -> String {
    let mut out = format!(
        "| optimizer | lr | final loss | distance to minimum | steps to f - f_min < {tolerance:e} | time |\n|---|---|---|---|---|---|\n"
    );
    for o in outcomes {
        out += &format!(
            "| {} | {} | {:.4e} | {:.4e} | {} | {:.2} ms |\n",
            o.optimizer,
            o.lr,
            o.final_loss,
            o.distance_to_minimum,
            o.steps_to_tolerance
                .map_or("never".to_string(), |s| s.to_string()),
            o.seconds * 1e3
        );
    }
    out
}

/// Writes `table.md`, `table.json`, `trajectories.{png,svg}` and `loss.{png,svg}` into `dir`.
///
/// # Errors
/// When a file cannot be written.
pub fn write(
    dir: &Path,
    objective: &str,
    steps: u64,
    tolerance: f64,
    outcomes: &[Outcome],
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("--out {}", dir.display()))?;
    std::fs::write(dir.join("table.md"), table(outcomes, tolerance))?;
    std::fs::write(
        dir.join("table.json"),
        serde_json::to_string_pretty(outcomes)?,
    )?;
    let f = make_objective(objective)?;
    let label = |o: &Outcome| format!("{} (lr {})", o.optimizer, o.lr);
    let paths: Vec<Vec<(f64, f64)>> = outcomes
        .iter()
        .map(|o| o.path.iter().map(|p| (p[0], p[1])).collect())
        .collect();
    let series: Vec<Series<'_>> = outcomes
        .iter()
        .zip(&paths)
        .map(|(o, p)| Series {
            label: label(o),
            points: p,
        })
        .collect();
    plot::trajectories(
        &dir.join("trajectories"),
        f.as_ref(),
        &format!("{objective}: {steps} steps from {:?}", f.start()),
        &series,
    )?;
    let curves: Vec<Vec<(f64, f64)>> = outcomes
        .iter()
        .map(|o| {
            o.gaps
                .iter()
                .enumerate()
                .map(|(s, g)| (s as f64, *g))
                .collect()
        })
        .collect();
    let series: Vec<Series<'_>> = outcomes
        .iter()
        .zip(&curves)
        .map(|(o, c)| Series {
            label: label(o),
            points: c,
        })
        .collect();
    plot::loss_curves(
        &dir.join("loss"),
        &format!("{objective}: loss per step"),
        &series,
    )
}
