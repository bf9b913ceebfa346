//! `rmsprop compare`: several optimizers on one objective from one start — a table and pictures.
//!
//! A comparison is an [`Experiment`]: built from the command's flags or read from a TOML file
//! (`rmsprop compare --config FILE`), so that it can be checked in and rerun.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rmsprop::{EpsPlacement, Execution, NonFinitePolicy};
use rmsprop_testfns::Objective;
use serde::{Deserialize, Serialize};

use crate::plot::{self, Series};
use crate::replay::Preset;
use crate::run::{build_objective, build_optimizer, OptimizerSpec};

fn default_seeds() -> Vec<u64> {
    vec![0]
}

fn default_tolerance() -> f64 {
    1e-3
}

/// A reproducible comparison, as in an experiment file:
///
/// ```toml
/// title = "Rosenbrock"
/// objective = "rosenbrock"
/// steps = 500
/// lr_grid = [0.001, 0.01, 0.1]   # each optimizer without an lr gets the best of these
///
/// [[optimizer]]
/// name = "rmsprop"
/// rho = 0.9
///
/// [[optimizer]]
/// name = "sgd"
/// label = "GD"
/// lr = 0.001
/// ```
///
/// # Examples
/// ```
/// let e = rmsprop_cli::compare::Experiment::from_toml(
///     "objective = \"sphere\"\nsteps = 10\n[[optimizer]]\nname = \"adam\"\n",
/// )
/// .unwrap();
/// assert_eq!(e.steps, Some(10));
/// let bad = rmsprop_cli::compare::Experiment::from_toml("objective = 3");
/// assert!(bad.unwrap_err().to_string().contains("objective"));
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Heading of the report section and picture titles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The claim the experiment tests (report only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// What explains the verdict (report only): the mechanism behind the numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Objective name.
    pub objective: String,
    /// Standard deviation of Gaussian noise added to every gradient.
    #[serde(default)]
    pub noise: f64,
    /// Seeds of the noise and mini-batch order; each optimizer runs once per seed.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Steps per run (or `epochs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    /// Passes over the data per run (least_squares): steps = epochs × batches per epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u64>,
    /// An effective learning rate above which a step is unstable on this objective (drawn on the
    /// accumulator view; e.g. 1 for f = x^2 + y^2, whose curvature is 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stability_lr: Option<f64>,
    /// "Reached" means f - f_min below this.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Count the early gap, the mean gap and the steps to tolerance from this step on (e.g.
    /// from a change in the objective): steps to tolerance are then counted from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure_from: Option<u64>,
    /// Starting point (default: the objective's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Vec<f64>>,
    /// Learning rates tried for every optimizer that sets none; the one with the lowest mean
    /// tail gap (over seeds) is kept. The same grid for everybody. When the best is at an end of
    /// the grid, the search goes on past that end (by the grid's own ratio there, up to
    /// [`GRID_EXTENSION`] more rates) until a rate does worse; a best still at the end is
    /// flagged `grid edge` in the table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lr_grid: Vec<f64>,
    /// What the learning-rate search minimizes (default the tail gap).
    #[serde(default = "tail_gap")]
    pub select_by: Metric,
    /// Checks that decide the claim (report only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdict: Vec<Check>,
    /// The optimizers, in legend order.
    #[serde(rename = "optimizer")]
    pub optimizers: Vec<OptimizerSpec>,
}

/// What a [`Check`] compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Mean of f - f_min over the last 10% of steps (mean over seeds).
    TailGap,
    /// Steps until f - f_min < tolerance (worst seed; never = infinity).
    StepsToTolerance,
    /// Mean of f - f_min over the first 10% of steps, start excluded (mean over seeds): how
    /// fast an optimizer gets going.
    EarlyGap,
    /// f - f_min at the last step (mean over seeds).
    FinalGap,
    /// Length of the first step (mean over seeds): RMSProp's first-step kick.
    FirstStep,
    /// Mean of f - f_min over every step after the start (mean over seeds): the loss paid along
    /// the way, the measure for objectives that change while they are optimized.
    MeanGap,
    /// How much the step length varies over the second half of the run: its standard deviation
    /// over its mean (mean over seeds). 0 for steps of constant length.
    StepSpread,
    /// How unequal the coordinates' updates are over the first 10% of steps: the largest mean
    /// |update| of a coordinate over the smallest (mean over seeds; 1 = all move alike). For a
    /// deep network's layers, how much faster the fastest layer moves than the slowest.
    UpdateRatio,
}

impl Metric {
    /// The name in verdict lines and tables.
    pub fn describe(self) -> &'static str {
        match self {
            Metric::TailGap => "tail gap",
            Metric::StepsToTolerance => "steps to tolerance",
            Metric::EarlyGap => "early gap",
            Metric::FinalGap => "final gap",
            Metric::FirstStep => "first step",
            Metric::MeanGap => "mean gap",
            Metric::StepSpread => "step spread",
            Metric::UpdateRatio => "update ratio",
        }
    }
}

/// How the subject must compare with the others (lower metric is better throughout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// subject × factor ≤ best other, and the subject finite.
    Better,
    /// subject ≤ best other × factor.
    NotWorse,
    /// subject ≥ best other / factor: no better than the rest.
    NotBetter,
    /// The subject's rank among itself and the others is at most `rank` (1 = best; an
    /// optimizer ranks after every one strictly better than it, so ties share a rank).
    RankAtMost,
    /// The subject's value is at most `value` (an absolute bound, e.g. the tolerance: "it
    /// stays converged"); `against` is not used.
    AtMost,
}

/// One comparison between optimizers' outcomes, by label.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// Label of the optimizer the claim is about.
    pub subject: String,
    /// Labels it is compared with (their best value counts).
    pub against: Vec<String>,
    /// The measure (lower is better).
    pub metric: Metric,
    /// The relation that makes the check hold.
    pub expect: Expect,
    /// Margin (default 1).
    #[serde(default = "one")]
    pub factor: f64,
    /// The rank `rank_at_most` allows.
    #[serde(default)]
    pub rank: Option<usize>,
    /// The bound `at_most` allows.
    #[serde(default)]
    pub value: Option<f64>,
}

fn tail_gap() -> Metric {
    Metric::TailGap
}

fn one() -> f64 {
    1.0
}

impl Experiment {
    /// Parses and validates an experiment file's text.
    ///
    /// # Errors
    /// TOML syntax, unknown or mistyped fields (with their path), or an invalid setting.
    pub fn from_toml(text: &str) -> Result<Self> {
        let de = toml::Deserializer::parse(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let e: Experiment = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            anyhow::anyhow!("at `{path}`: {}", e.into_inner().message().trim())
        })?;
        e.validate()?;
        Ok(e)
    }

    /// Reads an experiment file.
    ///
    /// # Errors
    /// An unreadable file, or what [`Experiment::from_toml`] rejects.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("{}", path.display()))
    }

    /// Checks what the types cannot.
    ///
    /// # Errors
    /// Names the setting that is wrong and what is expected.
    pub fn validate(&self) -> Result<()> {
        if self.optimizers.is_empty() {
            bail!("no optimizer: add at least one [[optimizer]] with a name");
        }
        if self.seeds.is_empty() {
            bail!("seeds is empty: give at least one seed");
        }
        match (self.steps, self.epochs) {
            (Some(_), Some(_)) => bail!("give steps or epochs, not both"),
            (None, None) => bail!("give steps (or epochs, for least_squares)"),
            (None, Some(_)) if self.objective != "least_squares" => {
                bail!(
                    "epochs applies to least_squares; give steps for `{}`",
                    self.objective
                )
            }
            _ => {}
        }
        if let (Some(from), Some(steps)) = (self.measure_from, self.steps) {
            if from >= steps {
                bail!("measure_from ({from}) must be below steps ({steps})");
            }
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            bail!("tolerance must be > 0, got {}", self.tolerance);
        }
        if let Some(bad) = self.lr_grid.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            bail!("lr_grid: {bad} is not a learning rate > 0");
        }
        let labels: Vec<String> = self.optimizers.iter().map(OptimizerSpec::label).collect();
        for (i, l) in labels.iter().enumerate() {
            if labels[..i].contains(l) {
                bail!("two optimizers are labelled `{l}`: give one a different label");
            }
        }
        for spec in &self.optimizers {
            build_objective(&self.objective, self.noise, 0, spec.batch)
                .with_context(|| format!("optimizer `{}`", spec.label()))?;
            build_optimizer(spec).with_context(|| format!("optimizer `{}`", spec.label()))?;
        }
        let f = build_objective(&self.objective, self.noise, 0, None)?;
        if let Some(start) = &self.start {
            if start.len() != f.dim() {
                bail!(
                    "start has {} coordinates, {} takes {}",
                    start.len(),
                    self.objective,
                    f.dim()
                );
            }
        }
        for c in &self.verdict {
            match c.expect {
                Expect::RankAtMost if c.rank.map_or(true, |r| r == 0) => {
                    bail!(
                        "verdict on `{}`: rank_at_most needs rank = 1 or more",
                        c.subject
                    )
                }
                Expect::AtMost if c.value.map_or(true, |v| !v.is_finite()) => {
                    bail!("verdict on `{}`: at_most needs a finite value", c.subject)
                }
                Expect::Better | Expect::NotWorse | Expect::NotBetter | Expect::RankAtMost
                    if c.against.is_empty() =>
                {
                    bail!(
                        "verdict on `{}`: name the optimizers it is compared with in against",
                        c.subject
                    )
                }
                _ => {}
            }
            for l in std::iter::once(&c.subject).chain(&c.against) {
                if !labels.contains(l) {
                    bail!("verdict names `{l}`, which is no optimizer's label");
                }
            }
        }
        Ok(())
    }

    /// Whether every check of the verdict holds, with one line per check saying why.
    ///
    /// # Panics
    /// When a check names a label not among `outcomes` (validated experiments do not).
    pub fn judge(&self, outcomes: &[Outcome]) -> (bool, Vec<String>) {
        judge(&self.verdict, &|label, metric| {
            outcomes
                .iter()
                .find(|o| o.optimizer == label)
                .expect("validated labels")
                .metric(metric)
        })
    }

    /// The title (default: the objective's name).
    pub fn title(&self) -> String {
        self.title.clone().unwrap_or_else(|| self.objective.clone())
    }
}

/// Applies `checks` to a table given as `value(label, metric)` (lower is better; +∞ for a
/// failure): whether all hold, and one line per check stating its rule, the numbers and the
/// outcome.
///
/// # Examples
/// ```
/// use rmsprop_cli::compare::{judge, Check, Expect, Metric};
/// let check = Check {
///     subject: "rmsprop".into(), against: vec!["sgd".into()], metric: Metric::TailGap,
///     expect: Expect::Better, factor: 1.0, rank: None, value: None,
/// };
/// let table = |label: &str, _: Metric| if label == "rmsprop" { 1e-3 } else { 1e-1 };
/// let (holds, lines) = judge(&[check], &table);
/// assert!(holds && lines[0].starts_with("holds"));
/// ```
pub fn judge(checks: &[Check], value: &dyn Fn(&str, Metric) -> f64) -> (bool, Vec<String>) {
    let mut all = true;
    let mut lines = Vec::new();
    for c in checks {
        let s = value(&c.subject, c.metric);
        let metric = c.metric.describe();
        let (best, best_label) = c
            .against
            .iter()
            .map(|l| (value(l, c.metric), l.as_str()))
            .fold(
                (f64::INFINITY, "none"),
                |a, b| if b.0 < a.0 { b } else { a },
            );
        let factor = if c.factor == 1.0 {
            String::new()
        } else {
            format!(" × {}", c.factor)
        };
        let (holds, rule, numbers) = match c.expect {
            Expect::Better => (
                s * c.factor <= best && s < f64::INFINITY,
                format!(
                    "{} {metric}{factor} ≤ the best of [{}]",
                    c.subject,
                    c.against.join(", ")
                ),
                format!("{} vs {} ({best_label})", show(s), show(best)),
            ),
            Expect::NotWorse => (
                s <= best * c.factor,
                format!(
                    "{} {metric} ≤ the best of [{}]{factor}",
                    c.subject,
                    c.against.join(", ")
                ),
                format!("{} vs {} ({best_label})", show(s), show(best)),
            ),
            Expect::NotBetter => (
                s * c.factor >= best,
                format!(
                    "{} {metric}{factor} ≥ the best of [{}]",
                    c.subject,
                    c.against.join(", ")
                ),
                format!("{} vs {} ({best_label})", show(s), show(best)),
            ),
            Expect::RankAtMost => {
                let rank = 1 + c.against.iter().filter(|l| value(l, c.metric) < s).count();
                let allowed = c.rank.unwrap_or(1);
                (
                    rank <= allowed,
                    format!(
                        "{} ranks at most {allowed} of {} by {metric}",
                        c.subject,
                        c.against.len() + 1
                    ),
                    format!("rank {rank} ({})", show(s)),
                )
            }
            Expect::AtMost => {
                let bound = c.value.unwrap_or(0.0);
                (
                    s <= bound,
                    format!("{} {metric} ≤ {}", c.subject, show(bound)),
                    show(s),
                )
            }
        };
        all &= holds;
        lines.push(format!(
            "{}: {rule} — {numbers}",
            if holds { "holds" } else { "does not hold" }
        ));
    }
    (all, lines)
}

/// One run's record.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// The path, start included.
    pub path: Vec<Vec<f64>>,
    /// f - f_min at every step (at that step's time), start included.
    pub gaps: Vec<f64>,
    /// |x_{k+1} - x_k| for every step taken.
    pub step_lengths: Vec<f64>,
    /// RMSProp's square average `v` per coordinate after every step (empty for optimizers
    /// without one).
    pub square_avg: Vec<Vec<f64>>,
}

/// Runs `opt` on `f` for up to `steps` steps from `start`, clipping each gradient's L2 norm to
/// `clip` when given, polling `stop` and calling `tick` every 1,000 steps.
///
/// # Errors
/// When the optimizer rejects a step.
pub fn simulate(
    f: &dyn Objective,
    opt: &mut dyn rmsprop::Optimizer<f64>,
    start: &[f64],
    (steps, clip): (u64, Option<f64>),
    stop: &dyn Fn() -> bool,
    tick: &dyn Fn(u64),
) -> Result<Trace> {
    opt.set_execution(Execution::sequential().with_non_finite(NonFinitePolicy::Propagate));
    let fixed_min = (!f.moving()).then(|| f.minimum_value());
    let gap = |x: &[f64], t: u64| {
        let f_min = fixed_min.unwrap_or_else(|| f.value_at(&f.minimum_at(t), t));
        f.value_at(x, t) - f_min
    };
    let mut x = start.to_vec();
    let mut trace = Trace {
        gaps: vec![gap(&x, 0)],
        path: vec![x.clone()],
        step_lengths: Vec::new(),
        square_avg: Vec::new(),
    };
    for k in 0..steps {
        if k % 1000 == 999 {
            tick(1000);
            if stop() {
                break;
            }
        }
        let mut g = f.gradient_at(&x, k);
        if let Some(max) = clip {
            rmsprop::clip::clip_grad_norm(&mut [&mut g[..]], max, 2.0);
        }
        let before = x.clone();
        opt.step_single(&mut x, &g)?;
        trace.step_lengths.push(
            x.iter()
                .zip(&before)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt(),
        );
        trace.gaps.push(gap(&x, k + 1));
        trace.path.push(x.clone());
        if let Some((_, v)) = opt
            .state_buffers(0)
            .into_iter()
            .find(|(name, _)| *name == "square_avg")
        {
            trace.square_avg.push(v.to_vec());
        }
    }
    tick(steps % 1000);
    Ok(trace)
}

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

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    s / n.max(1) as f64
}

/// Mean over the first 10% of steps after the start.
fn early(gaps: &[f64]) -> f64 {
    let k = (gaps.len().saturating_sub(1) / 10)
        .max(1)
        .min(gaps.len().saturating_sub(1));
    if k == 0 {
        return f64::NAN;
    }
    mean(gaps[1..=k].iter().copied())
}

/// The first 10% of the steps of `path` (at least one; 0 for a path without steps).
fn early_steps(path: &[Vec<f64>]) -> usize {
    (path.len().saturating_sub(1) / 10)
        .max(1)
        .min(path.len().saturating_sub(1))
}

/// Each layer's mean |update| per coordinate over the first 10% of the steps of `path` (empty
/// for a path without steps). A layer is a range of coordinates ([`Objective::layers`]).
fn layer_moves(path: &[Vec<f64>], layers: &[std::ops::Range<usize>]) -> Vec<f64> {
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
fn layer_gradient_norms(
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
fn update_ratio(path: &[Vec<f64>], layers: &[std::ops::Range<usize>]) -> f64 {
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
fn spread(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = mean(v.iter().copied());
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64;
    var.sqrt() / m
}

fn tail(gaps: &[f64]) -> f64 {
    let k = (gaps.len() / 10).max(1);
    mean(gaps[gaps.len() - k..].iter().copied())
}

/// Runs one optimizer spec on every seed.
fn run_spec(
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
fn steps_of(e: &Experiment, spec: &OptimizerSpec) -> (u64, u64) {
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

/// The experiment built from `rmsprop compare`'s flags.
///
/// # Errors
/// A malformed `--lr`, or `--lr` naming an optimizer not in `--optimizers`.
pub fn from_flags(
    objective: &str,
    optimizers: &[String],
    lrs: &str,
    steps: u64,
    tolerance: f64,
    noise: f64,
    seed: u64,
) -> Result<Experiment> {
    let lrs = parse_lrs(lrs)?;
    for (name, _) in &lrs {
        if !optimizers.contains(name) {
            bail!("--lr names `{name}`, which is not in --optimizers");
        }
    }
    let e = Experiment {
        title: None,
        claim: None,
        note: None,
        objective: objective.to_string(),
        noise,
        seeds: vec![seed],
        steps: Some(steps),
        epochs: None,
        stability_lr: None,
        measure_from: None,
        tolerance,
        start: None,
        lr_grid: Vec::new(),
        select_by: Metric::TailGap,
        verdict: Vec::new(),
        optimizers: optimizers
            .iter()
            .map(|name| OptimizerSpec {
                lr: lrs.iter().find(|(n, _)| n == name).map(|(_, v)| *v),
                ..OptimizerSpec::named(name)
            })
            .collect(),
    };
    e.validate()?;
    Ok(e)
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

fn show(v: f64) -> String {
    if v.is_infinite() {
        "never/diverged".to_string()
    } else if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{v}")
    } else {
        sci(v)
    }
}

/// `v` to four significant digits, printed as briefly as possible (0.3, 3.333, 1e-5).
fn shortest(v: f64) -> String {
    format!("{v:.3e}")
        .parse::<f64>()
        .map_or_else(|_| v.to_string(), |r| r.to_string())
}

fn sci(v: f64) -> String {
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
fn thin(points: Vec<(f64, f64)>, n: usize) -> Vec<(f64, f64)> {
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
pub const FILES: &str = "table.md, table.json, trajectories.png/svg (2-D objectives), loss.png/svg, step_length.png/svg, layers.png/svg and gradients.png/svg (experiments judged by update ratio), accumulator.png/svg (RMSProp runs)";

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
        layer_pictures(dir, e, outcomes)?;
    }
    accumulator_view(dir, e, outcomes)
}

/// What the update ratio summarizes, per layer of the network (`layers.{png,svg}`: each
/// layer's mean |update| per weight over the first 10% of steps) and what causes it
/// (`gradients.{png,svg}`: each layer's gradient norm over the same steps), for every optimizer.
fn layer_pictures(dir: &Path, e: &Experiment, outcomes: &[Outcome]) -> Result<()> {
    let f = build_objective(&e.objective, 0.0, 0, None)?;
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
        .map(|o| numbered(layer_gradient_norms(f.as_ref(), &o.path, &layers)))
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
type Pick = Box<dyn Fn(&[f64]) -> f64>;

/// The accumulator view of every RMSProp run: its square average `v`, `sqrt(v)`, and the
/// effective per-coordinate learning rate (`lr / (sqrt(v) + eps)`, or `lr / sqrt(v + eps)` with
/// eps inside), per coordinate (the first seed), into `accumulator.{png,svg}`.
fn accumulator_view(dir: &Path, e: &Experiment, outcomes: &[Outcome]) -> Result<()> {
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

#[cfg(test)]
mod verdict_tests {
    //! The verdict rules on made-up tables: each relation holds exactly when it should, so a
    //! flipped comparison fails here.
    use super::{judge, Check, Expect, Metric};

    fn check(expect: Expect, factor: f64) -> Check {
        Check {
            subject: "r".into(),
            against: vec!["a".into(), "b".into()],
            metric: Metric::TailGap,
            expect,
            factor,
            rank: None,
            value: None,
        }
    }

    /// `r` has value `r`; the others 1e-2 and 1e-4 (best 1e-4).
    fn holds(c: &Check, r: f64) -> bool {
        let table = move |label: &str, _: Metric| match label {
            "r" => r,
            "a" => 1e-2,
            _ => 1e-4,
        };
        let (all, lines) = judge(std::slice::from_ref(c), &table);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].starts_with("holds"), all, "{}", lines[0]);
        all
    }

    #[test]
    fn better_needs_a_finite_value_at_or_below_the_best_over_the_factor() {
        let c = check(Expect::Better, 1.0);
        assert!(holds(&c, 1e-5) && holds(&c, 1e-4));
        assert!(!holds(&c, 2e-4) && !holds(&c, f64::INFINITY));
        let c = check(Expect::Better, 10.0);
        assert!(holds(&c, 1e-5) && !holds(&c, 2e-5));
    }

    #[test]
    fn not_worse_and_not_better_mirror_each_other() {
        let c = check(Expect::NotWorse, 1.0);
        assert!(holds(&c, 1e-4) && holds(&c, 1e-6) && !holds(&c, 1.1e-4));
        let c = check(Expect::NotWorse, 10.0);
        assert!(holds(&c, 1e-3) && !holds(&c, 1.1e-3));
        let c = check(Expect::NotBetter, 1.0);
        assert!(holds(&c, 1e-4) && holds(&c, 1.0) && !holds(&c, 0.9e-4));
    }

    #[test]
    fn rank_counts_the_strictly_better_and_shares_ties() {
        let mut c = check(Expect::RankAtMost, 1.0);
        c.rank = Some(1);
        assert!(holds(&c, 1e-5) && holds(&c, 1e-4) && !holds(&c, 1e-3));
        c.rank = Some(2);
        assert!(holds(&c, 1e-3) && holds(&c, 1e-2) && !holds(&c, 1e-1));
        c.rank = Some(3);
        assert!(holds(&c, f64::INFINITY));
        let (_, lines) = judge(&[c], &|l: &str, _: Metric| if l == "r" { 1.0 } else { 0.5 });
        assert!(lines[0].contains("rank 3"), "{}", lines[0]);
    }

    #[test]
    fn at_most_is_an_absolute_bound() {
        let mut c = check(Expect::AtMost, 1.0);
        c.value = Some(1e-6);
        assert!(holds(&c, 1e-6) && holds(&c, 0.0) && !holds(&c, 1e-1) && !holds(&c, f64::NAN));
    }

    #[test]
    fn every_check_must_hold_and_each_gets_a_line_with_its_rule() {
        let mut at_most = check(Expect::AtMost, 1.0);
        at_most.value = Some(1e-6);
        let checks = [check(Expect::Better, 1.0), at_most];
        let table = |label: &str, _: Metric| if label == "r" { 1e-5 } else { 1e-3 };
        let (all, lines) = judge(&checks, &table);
        assert!(!all);
        assert!(
            lines[0].starts_with("holds: r tail gap ≤ the best of [a, b]"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("does not hold: r tail gap ≤ 1.000e-6 — 1.000e-5"),
            "{}",
            lines[1]
        );
    }
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
