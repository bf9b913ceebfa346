//! Every optimizer of an experiment over its seeds, with the learning-rate search, and the
//! measures the tables and verdicts read ([`Outcome`]).

use std::time::Instant;

use anyhow::Result;
use rmsprop_testfns::Objective;
use serde::Serialize;

use crate::run::{build_objective, build_optimizer, OptimizerSpec};

use super::*;

/// One optimizer's outcome (means over seeds).
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Label.
    pub optimizer: String,
    /// The spec (with the learning rate used).
    pub spec: OptimizerSpec,
    /// Learning rate used.
    pub lr: f64,
    /// Whether `lr` was picked from the experiment's grid.
    pub lr_from_grid: bool,
    /// How the grid search ended for this optimizer.
    pub lr_search: LrSearch,
    /// Steps per run.
    pub steps: u64,
    /// Steps per epoch (1 unless mini-batch least squares).
    pub steps_per_epoch: u64,
    /// f at the last step (mean over seeds).
    pub final_loss: f64,
    /// f - f_min at the last step (mean over seeds).
    pub final_gap: f64,
    /// Mean of f - f_min over the last 10% of steps (mean over seeds).
    pub tail_gap: f64,
    /// Standard deviation of the tail gap over seeds.
    pub tail_gap_std: f64,
    /// Mean of f - f_min over the first 10% of steps, start excluded (mean over seeds).
    pub early_gap: f64,
    /// Mean of f - f_min over every step after the start (mean over seeds).
    pub mean_gap: f64,
    /// Standard deviation over mean of the step length in the second half of the run (mean over
    /// seeds).
    pub step_spread: f64,
    /// Largest over smallest mean |update| of a coordinate over the first 10% of steps (mean over
    /// seeds).
    pub update_ratio: f64,
    /// Length of the first step (mean over seeds).
    pub first_step: f64,
    /// Distance from the last point to the minimum (mean over seeds).
    pub distance_to_minimum: f64,
    /// Steps until f - f_min < tolerance, worst seed (None: some seed never got there).
    pub steps_to_tolerance: Option<u64>,
    /// Wall time per run, seconds (mean over seeds).
    pub seconds: f64,
    /// Seeds run.
    pub seeds: usize,
    /// The first seed's path.
    #[serde(skip)]
    pub path: Vec<Vec<f64>>,
    /// f - f_min per step, mean over seeds.
    #[serde(skip)]
    pub gaps: Vec<f64>,
    /// f - f_min per step, lowest and highest over seeds (empty with one seed).
    #[serde(skip)]
    pub gap_range: Vec<(f64, f64)>,
    /// Step length per step, mean over seeds.
    #[serde(skip)]
    pub step_lengths: Vec<f64>,
    /// The first seed's square average per step (RMSProp only).
    #[serde(skip)]
    pub square_avg: Vec<Vec<f64>>,
}

impl Outcome {
    /// The value of `metric` (lower is better; failures are +∞).
    pub fn metric(&self, metric: Metric) -> f64 {
        let v = match metric {
            Metric::TailGap => self.tail_gap,
            Metric::StepsToTolerance => self.steps_to_tolerance.map_or(f64::INFINITY, |s| s as f64),
            Metric::EarlyGap => self.early_gap,
            Metric::MeanGap => self.mean_gap,
            Metric::StepSpread => self.step_spread,
            Metric::UpdateRatio => self.update_ratio,
            Metric::FinalGap => self.final_gap,
            Metric::FirstStep => self.first_step,
        };
        if v.is_nan() {
            f64::INFINITY
        } else {
            v
        }
    }
}

pub(super) fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    s / n.max(1) as f64
}

/// Mean over the first 10% of steps after the start.
pub(super) fn early(gaps: &[f64]) -> f64 {
    let k = (gaps.len().saturating_sub(1) / 10)
        .max(1)
        .min(gaps.len().saturating_sub(1));
    if k == 0 {
        return f64::NAN;
    }
    mean(gaps[1..=k].iter().copied())
}

/// The first 10% of the steps of `path` (at least one; 0 for a path without steps).
pub(super) fn early_steps(path: &[Vec<f64>]) -> usize {
    (path.len().saturating_sub(1) / 10)
        .max(1)
        .min(path.len().saturating_sub(1))
}

/// Each layer's mean |update| per coordinate over the first 10% of the steps of `path` (empty
/// for a path without steps). A layer is a range of coordinates ([`Objective::layers`]).
pub(super) fn layer_moves(path: &[Vec<f64>], layers: &[std::ops::Range<usize>]) -> Vec<f64> {
    let k = early_steps(path);
    if k == 0 {
        return Vec::new();
    }
    layers
        .iter()
        .map(|r| {
            let total: f64 = (1..=k)
                .map(|s| {
                    r.clone()
                        .map(|i| (path[s][i] - path[s - 1][i]).abs())
                        .sum::<f64>()
                })
                .sum();
            total / (k * r.len()) as f64
        })
        .collect()
}

/// Each layer's gradient norm (L2 over its coordinates), averaged over the first 10% of the
/// steps of `path` (the objective's noiseless gradient at each point).
pub(super) fn layer_gradient_norms(
    f: &dyn Objective,
    path: &[Vec<f64>],
    layers: &[std::ops::Range<usize>],
) -> Vec<f64> {
    let k = early_steps(path).max(1).min(path.len());
    let mut sums = vec![0.0; layers.len()];
    for x in &path[..k] {
        let g = f.gradient(x);
        for (s, r) in sums.iter_mut().zip(layers) {
            *s += g[r.clone()].iter().map(|v| v * v).sum::<f64>().sqrt();
        }
    }
    sums.iter().map(|s| s / k as f64).collect()
}

/// The largest mean |update| of a layer over the first 10% of the steps of `path`, over the
/// smallest (infinite when a layer never moves).
pub(super) fn update_ratio(path: &[Vec<f64>], layers: &[std::ops::Range<usize>]) -> f64 {
    let moves = layer_moves(path, layers);
    if moves.is_empty() {
        return f64::NAN;
    }
    let (lo, hi) = moves.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &m| {
        (lo.min(m), hi.max(m))
    });
    hi / lo
}

/// Standard deviation over mean (NaN for fewer than two values or a zero mean).
pub(super) fn spread(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = mean(v.iter().copied());
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64;
    var.sqrt() / m
}

pub(super) fn tail(gaps: &[f64]) -> f64 {
    let k = (gaps.len() / 10).max(1);
    mean(gaps[gaps.len() - k..].iter().copied())
}

/// Runs one optimizer spec on every seed.
pub(super) fn run_spec(
    e: &Experiment,
    spec: &OptimizerSpec,
    stop: &dyn Fn() -> bool,
    tick: &dyn Fn(u64),
) -> Result<Outcome> {
    let mut traces = Vec::new();
    let mut seconds = 0.0;
    let (mut steps, mut per_epoch) = (0, 1);
    let mut lr = 0.0;
    let mut minimum = Vec::new();
    let mut minimum_known = true;
    let mut layers = Vec::new();
    let mut final_loss = 0.0;
    for &seed in &e.seeds {
        let f = build_objective(&e.objective, e.noise, seed, spec.batch)?;
        (steps, per_epoch) = steps_of(e, spec);
        let mut opt = build_optimizer(spec)?;
        lr = opt.learning_rate();
        let start = e.start.clone().unwrap_or_else(|| f.start());
        let began = Instant::now();
        let t = simulate(
            f.as_ref(),
            opt.as_mut(),
            &start,
            (steps, spec.clip_norm),
            stop,
            tick,
        )?;
        seconds += began.elapsed().as_secs_f64();
        let last = t.path.len() as u64 - 1;
        minimum = f.minimum_at(last);
        minimum_known = f.minimum_known();
        layers = f.layers();
        final_loss += f.value_at(t.path.last().expect("start"), last) / e.seeds.len() as f64;
        traces.push(t);
    }
    let n = traces.len() as f64;
    let len = traces.iter().map(|t| t.gaps.len()).min().unwrap_or(0);
    let gaps: Vec<f64> = (0..len)
        .map(|k| mean(traces.iter().map(|t| t.gaps[k])))
        .collect();
    let gap_range: Vec<(f64, f64)> = if traces.len() > 1 {
        (0..len)
            .map(|k| {
                traces
                    .iter()
                    .map(|t| t.gaps[k])
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), g| {
                        (lo.min(g), hi.max(g))
                    })
            })
            .collect()
    } else {
        Vec::new()
    };
    let step_lengths: Vec<f64> = (0..len.saturating_sub(1))
        .map(|k| mean(traces.iter().map(|t| t.step_lengths[k])))
        .collect();
    let tails: Vec<f64> = traces.iter().map(|t| tail(&t.gaps)).collect();
    let step_spread = mean(
        traces
            .iter()
            .map(|t| spread(&t.step_lengths[t.step_lengths.len() / 2..])),
    );
    let update_ratio = mean(traces.iter().map(|t| update_ratio(&t.path, &layers)));
    let tail_gap = mean(tails.iter().copied());
    let tail_gap_std =
        (mean(tails.iter().map(|v| (v - tail_gap).powi(2))) * n / (n - 1.0).max(1.0)).sqrt();
    let from = (e.measure_from.unwrap_or(0) as usize).min(len.saturating_sub(1));
    let reach: Vec<Option<u64>> = traces
        .iter()
        .map(|t| {
            t.gaps[from..]
                .iter()
                .position(|g| *g < e.tolerance)
                .map(|s| s as u64)
        })
        .collect();
    let steps_to_tolerance = reach
        .iter()
        .copied()
        .collect::<Option<Vec<u64>>>()
        .and_then(|v| v.into_iter().max());
    Ok(Outcome {
        optimizer: spec.label(),
        spec: spec.clone(),
        lr,
        lr_from_grid: false,
        lr_search: LrSearch::Interior,
        steps,
        steps_per_epoch: per_epoch,
        final_loss,
        final_gap: mean(traces.iter().map(|t| *t.gaps.last().expect("start"))),
        tail_gap,
        tail_gap_std,
        early_gap: early(&gaps[from..]),
        step_spread,
        update_ratio,
        mean_gap: if gaps.len() > from.max(1) {
            mean(gaps[from.max(1)..].iter().copied())
        } else {
            f64::NAN
        },
        first_step: step_lengths.first().copied().unwrap_or(f64::NAN),
        // No distance when no minimizer is known (NaN prints as "—").
        distance_to_minimum: mean(traces.iter().map(|t| {
            if !minimum_known {
                return f64::NAN;
            }
            t.path
                .last()
                .expect("start")
                .iter()
                .zip(&minimum)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt()
        })),
        steps_to_tolerance,
        seconds: seconds / n,
        seeds: traces.len(),
        square_avg: std::mem::take(&mut traces[0].square_avg),
        path: traces.swap_remove(0).path,
        gaps,
        gap_range,
        step_lengths,
    })
}

/// Steps per run and steps per epoch of one optimizer in an experiment.
pub(super) fn steps_of(e: &Experiment, spec: &OptimizerSpec) -> (u64, u64) {
    let per_epoch = if e.objective == "least_squares" {
        rmsprop_testfns::LeastSquares::steps_per_epoch_for(
            rmsprop_testfns::LeastSquares::DEFAULT_SAMPLES,
            spec.batch.unwrap_or(usize::MAX),
        )
    } else {
        1
    };
    (
        e.steps.unwrap_or_else(|| e.epochs.unwrap_or(0) * per_epoch),
        per_epoch,
    )
}

/// Total optimizer steps an experiment will take (for a progress bar).
pub fn total_steps(e: &Experiment) -> u64 {
    e.optimizers
        .iter()
        .map(|spec| {
            let (steps, _) = steps_of(e, spec);
            let tries = if spec.lr.is_none() && !e.lr_grid.is_empty() {
                e.lr_grid.len()
            } else {
                1
            };
            steps * tries as u64 * e.seeds.len() as u64
        })
        .sum()
}

/// Runs every optimizer of the experiment (with the learning-rate search when it has a grid).
///
/// # Errors
/// Invalid settings (see [`Experiment::validate`]).
pub fn run(e: &Experiment, stop: &dyn Fn() -> bool, tick: &dyn Fn(u64)) -> Result<Vec<Outcome>> {
    e.validate()?;
    e.optimizers
        .iter()
        .map(|spec| {
            if spec.lr.is_some() || e.lr_grid.is_empty() {
                return run_spec(e, spec, stop, tick);
            }
            let try_lr = |lr: f64| {
                let tried = OptimizerSpec {
                    lr: Some(lr),
                    ..spec.clone()
                };
                run_spec(e, &tried, stop, tick)
            };
            let mut grid = e.lr_grid.clone();
            grid.sort_by(f64::total_cmp);
            grid.dedup();
            let mut best: Option<(usize, Outcome)> = None;
            for (i, &lr) in grid.iter().enumerate() {
                let o = try_lr(lr)?;
                if best
                    .as_ref()
                    .map_or(true, |(_, b)| o.metric(e.select_by) < b.metric(e.select_by))
                {
                    best = Some((i, o));
                }
            }
            let (at, mut o) = best.expect("a non-empty grid");
            o.lr_search = LrSearch::Interior;
            // At an end: go on past it while rates keep doing better.
            let end = if grid.len() < 2 {
                None
            } else if at == 0 {
                Some(grid[0] / grid[1])
            } else if at == grid.len() - 1 {
                Some(grid[at] / grid[at - 1])
            } else {
                None
            };
            if let Some(ratio) = end {
                o.lr_search = LrSearch::Edge;
                let mut lr = o.lr;
                for _ in 0..GRID_EXTENSION {
                    lr *= ratio;
                    let next = try_lr(lr)?;
                    if next.metric(e.select_by) < o.metric(e.select_by) {
                        o = next;
                        o.lr_search = LrSearch::Edge;
                    } else {
                        o.lr_search = LrSearch::Extended;
                        break;
                    }
                }
            }
            o.lr_from_grid = true;
            Ok(o)
        })
        .collect()
}

/// At most this many rates are tried past an end of the grid.
pub const GRID_EXTENSION: usize = 6;

/// How the learning-rate search ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSearch {
    /// The best rate has a worse rate on each side (or was given).
    #[default]
    Interior,
    /// The best was at an end of the grid; the search went past it and found a worse rate.
    Extended,
    /// Still the best at the last rate tried past the end: the true best may lie further.
    Edge,
}

#[cfg(test)]
mod measure_from_tests {
    use super::{from_flags, run};

    /// GD on the sphere at lr 0.1 shrinks x by 0.8 per step: f = 41 * 0.64^k, below 1e-3 from
    /// k = 24 (41 * 0.64^24 = 9.3e-4). Counting from step 10, that is 14 steps, and the mean gap
    /// is the mean over steps 10..=100 alone.
    #[test]
    fn measures_count_from_the_step_given() {
        let mut e =
            from_flags("sphere", &["sgd".to_string()], "sgd=0.1", 100, 1e-3, 0.0, 0).unwrap();
        let whole = run(&e, &|| false, &|_| {}).unwrap().remove(0);
        assert_eq!(whole.steps_to_tolerance, Some(24));
        e.measure_from = Some(10);
        let later = run(&e, &|| false, &|_| {}).unwrap().remove(0);
        assert_eq!(later.steps_to_tolerance, Some(14));
        let mean: f64 = (10..=100).map(|k| 41.0 * 0.64f64.powi(k)).sum::<f64>() / 91.0;
        assert!(
            (later.mean_gap - mean).abs() < 1e-12 * mean,
            "{} vs {mean}",
            later.mean_gap
        );
        assert!(later.mean_gap < whole.mean_gap);
        e.measure_from = Some(100);
        assert!(e
            .validate()
            .unwrap_err()
            .to_string()
            .contains("measure_from (100) must be below steps (100)"));
    }
}
