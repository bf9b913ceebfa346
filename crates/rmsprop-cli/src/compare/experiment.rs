//! What a comparison is (an [`Experiment`], from flags or a TOML file) and how its claim is
//! judged ([`judge`]).

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::run::{build_objective, build_optimizer, OptimizerSpec};

use super::*;

pub(super) fn default_seeds() -> Vec<u64> {
    vec![0]
}

pub(super) fn default_tolerance() -> f64 {
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

pub(super) fn tail_gap() -> Metric {
    Metric::TailGap
}

pub(super) fn one() -> f64 {
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
