//! Several optimizers over seeds (`--compare`) and the learning-rate search (`--search`): tables
//! and curves.

use anyhow::{Context, Result};
use serde::Serialize;

use super::*;

/// One optimizer's runs over several seeds.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Optimizer name.
    pub optimizer: String,
    /// Learning rate.
    pub lr: f64,
    /// Final evaluation accuracy per seed.
    pub accuracies: Vec<f64>,
    /// Final evaluation loss per seed.
    pub losses: Vec<f64>,
    /// Mean training loss per epoch (mean over seeds).
    pub train_loss: Vec<f64>,
    /// Evaluation error (1 - accuracy) per epoch (mean over seeds).
    pub eval_error: Vec<f64>,
    /// Mean wall time per run, seconds.
    pub seconds: f64,
    /// Runs that failed (diverged), with the reason.
    pub failures: Vec<String>,
}

pub(super) fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

/// Runs every optimizer of `optimizers` with `lr(optimizer)` for each seed.
///
/// # Errors
/// Only errors that are not a diverged run (those are recorded in [`Summary::failures`]).
pub fn compare(
    base: &TrainSpec,
    optimizers: &[&str],
    lr: &dyn Fn(&str) -> f64,
    seeds: &[u64],
    stop: &dyn Fn() -> bool,
    tick: &dyn Fn(u64),
) -> Result<Vec<Summary>> {
    let mut out = Vec::new();
    for &name in optimizers {
        let mut s = Summary {
            optimizer: name.to_string(),
            lr: lr(name),
            accuracies: Vec::new(),
            losses: Vec::new(),
            train_loss: vec![0.0; base.epochs()],
            eval_error: vec![0.0; base.epochs()],
            seconds: 0.0,
            failures: Vec::new(),
        };
        let mut ok = 0.0;
        for &seed in seeds {
            let spec = TrainSpec {
                optimizer: name.to_string(),
                lr: Some(s.lr),
                seed,
                checkpoint: None,
                resume: None,
                ..base.clone()
            };
            match train(&spec, stop, tick, &mut |_| {}) {
                Ok(o) => {
                    let last = o.epochs.last().cloned();
                    if let Some(last) = last {
                        s.accuracies.push(last.eval_accuracy);
                        s.losses.push(last.eval_loss);
                    }
                    for (k, e) in o.epochs.iter().enumerate() {
                        s.train_loss[k] += e.train_loss;
                        s.eval_error[k] += 1.0 - e.eval_accuracy;
                    }
                    s.seconds += o.seconds;
                    ok += 1.0;
                }
                Err(e) => s.failures.push(format!("seed {seed}: {e:#}")),
            }
        }
        if ok > 0.0 {
            s.train_loss.iter_mut().for_each(|v| *v /= ok);
            s.eval_error.iter_mut().for_each(|v| *v /= ok);
            s.seconds /= ok;
        }
        out.push(s);
    }
    Ok(out)
}

/// The summaries as a Markdown table.
pub fn table(summaries: &[Summary], split: Split) -> String {
    let what = if split == Split::Test {
        "test"
    } else {
        "validation"
    };
    let mut t = format!(
        "| optimizer | lr | final {what} accuracy (mean ± sd) | min–max | final {what} loss (mean ± sd) | seeds | time per run |\n|---|---|---|---|---|---|---|\n"
    );
    for s in summaries {
        let (am, asd) = mean_sd(&s.accuracies);
        let (lm, lsd) = mean_sd(&s.losses);
        let lo = s.accuracies.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = s
            .accuracies
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let runs = if s.failures.is_empty() {
            s.accuracies.len().to_string()
        } else {
            format!("{} ({} diverged)", s.accuracies.len(), s.failures.len())
        };
        if s.accuracies.is_empty() {
            t += &format!("| {} | {} | diverged | | | {runs} | |\n", s.optimizer, s.lr);
        } else {
            t += &format!(
                "| {} | {} | {am:.3} ± {asd:.3} | {lo:.3}–{hi:.3} | {lm:.4} ± {lsd:.4} | {runs} | {:.1} s |\n",
                s.optimizer, s.lr, s.seconds
            );
        }
    }
    t
}

/// Writes `results.md`, `results.json`, `loss.{png,svg}` (training loss per epoch) and
/// `error.{png,svg}` (evaluation error per epoch) into `dir`.
///
/// # Errors
/// When a file cannot be written.
pub fn write(
    dir: &std::path::Path,
    base: &TrainSpec,
    seeds: &[u64],
    summaries: &[Summary],
) -> Result<()> {
    use crate::plot::{loss_curves, Series};
    std::fs::create_dir_all(dir).with_context(|| format!("--out {}", dir.display()))?;
    std::fs::write(dir.join("results.md"), table(summaries, base.split))?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "task": base.task,
            "epochs": base.epochs(),
            "seeds": seeds,
            "summaries": summaries,
        }))?,
    )?;
    let label = |s: &Summary| format!("{} (lr {})", s.optimizer, s.lr);
    let ok: Vec<&Summary> = summaries
        .iter()
        .filter(|s| !s.accuracies.is_empty())
        .collect();
    let curve = |v: &[f64]| -> Vec<(f64, f64)> {
        v.iter()
            .enumerate()
            .map(|(k, x)| ((k + 1) as f64, *x))
            .collect()
    };
    let losses: Vec<Vec<(f64, f64)>> = ok.iter().map(|s| curve(&s.train_loss)).collect();
    let errors: Vec<Vec<(f64, f64)>> = ok.iter().map(|s| curve(&s.eval_error)).collect();
    fn series<'a>(
        ok: &[&Summary],
        c: &'a [Vec<(f64, f64)>],
        label: &dyn Fn(&Summary) -> String,
    ) -> Vec<Series<'a>> {
        ok.iter()
            .zip(c)
            .map(|(s, p)| Series {
                label: label(s),
                points: p,
            })
            .collect()
    }
    let n = seeds.len();
    loss_curves(
        &dir.join("loss"),
        &format!("{}: training loss per epoch (mean of {n} seeds)", base.task),
        "epoch",
        "training loss (log scale)",
        &series(&ok, &losses, &label),
    )?;
    let what = if base.split == Split::Test {
        "test"
    } else {
        "validation"
    };
    loss_curves(
        &dir.join("error"),
        &format!("{}: {what} error per epoch (mean of {n} seeds)", base.task),
        "epoch",
        &format!("{what} error = 1 - accuracy (log scale)"),
        &series(&ok, &errors, &label),
    )
}

/// The learning-rate search: every optimizer of `names` (usually [`optimizers`] of the task) at every rate of
/// [`SEARCH_GRID`], seed 0, evaluated on the validation split (the test set is not used).
/// Returns the tables (Markdown) and each optimizer's rate with the lowest final validation loss.
///
/// # Errors
/// As [`train`], except diverged runs (recorded).
pub fn search(
    base: &TrainSpec,
    names: &[&str],
    stop: &dyn Fn() -> bool,
    tick: &dyn Fn(u64),
) -> Result<(String, Vec<(String, f64)>)> {
    let spec = TrainSpec {
        split: Split::Validation,
        ..base.clone()
    };
    let mut all = String::new();
    let mut best = Vec::new();
    for &name in names {
        let mut rows = Vec::new();
        for &g in SEARCH_GRID {
            rows.extend(compare(&spec, &[name], &|_| g, &[0], stop, tick)?);
        }
        all += &table(&rows, Split::Validation);
        all += "\n";
        if let Some(pick) = rows
            .iter()
            .filter(|r| r.losses.first().is_some_and(|l| l.is_finite()))
            .min_by(|a, b| a.losses[0].total_cmp(&b.losses[0]))
        {
            best.push((name.to_string(), pick.lr));
        }
    }
    Ok((all, best))
}
