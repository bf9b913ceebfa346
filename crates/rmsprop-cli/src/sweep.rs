//! `rmsprop sweep`: RMSProp over a grid of decay rates and learning rates, with a heat map of the
//! outcome — how a learner sees what rho does.

use std::path::Path;

use anyhow::{Context, Result};
use rmsprop::{Execution, NonFinitePolicy, Optimizer, RmsProp};
use serde::Serialize;

use crate::plot;
use crate::replay::Preset;
use crate::run::make_objective;

/// One cell of the grid.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    /// Decay rate.
    pub rho: f64,
    /// Learning rate.
    pub lr: f64,
    /// log10(f - f_min) after the last step (NaN if the run diverged).
    pub log10_gap: f64,
}

/// Runs RMSProp (`preset`) for every (rho, lr) pair for `steps` steps.
///
/// # Errors
/// An unknown objective or a hyperparameter RMSProp rejects (named).
pub fn sweep(
    objective: &str,
    preset: Preset,
    rhos: &[f64],
    lrs: &[f64],
    steps: u64,
) -> Result<Vec<Cell>> {
    let f = make_objective(objective)?;
    let mut cells = Vec::new();
    for &rho in rhos {
        for &lr in lrs {
            let config = preset.config().with_rho(rho).with_lr(lr);
            let mut opt =
                RmsProp::<f64>::new(config).with_context(|| format!("rho {rho}, lr {lr}"))?;
            opt.set_execution(Execution::sequential().with_non_finite(NonFinitePolicy::Propagate));
            let mut x = f.start();
            crate::runner::Runner::new(f.as_ref()).run(&mut opt, &mut x, 0, steps)?;
            let f_min = if f.moving() {
                f.value_at(&f.minimum_at(steps), steps)
            } else {
                f.minimum_value()
            };
            let gap = f.value_at(&x, steps) - f_min;
            let log10_gap = if gap.is_finite() {
                gap.max(1e-300).log10()
            } else {
                f64::NAN
            };
            cells.push(Cell { rho, lr, log10_gap });
        }
    }
    Ok(cells)
}

/// Writes `sweep.json`, `sweep.md` and `heatmap.{png,svg}` into `dir`.
///
/// # Errors
/// When a file cannot be written.
pub fn write(
    dir: &Path,
    objective: &str,
    steps: u64,
    rhos: &[f64],
    lrs: &[f64],
    cells: &[Cell],
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("--out {}", dir.display()))?;
    std::fs::write(dir.join("sweep.json"), serde_json::to_string_pretty(cells)?)?;
    std::fs::write(dir.join("sweep.md"), table(rhos, lrs, cells))?;
    let values: Vec<Vec<f64>> = rhos
        .iter()
        .enumerate()
        .map(|(r, _)| {
            (0..lrs.len())
                .map(|c| cells[r * lrs.len() + c].log10_gap)
                .collect()
        })
        .collect();
    plot::heatmap(
        &dir.join("heatmap"),
        &format!("RMSProp on {objective}: log10(f - f_min) after {steps} steps"),
        "learning rate",
        "rho (decay of the square average)",
        &lrs.iter().map(|v| format!("{v}")).collect::<Vec<_>>(),
        &rhos.iter().map(|v| format!("{v}")).collect::<Vec<_>>(),
        &values,
    )
}

/// The grid as a Markdown table (rows: rho; columns: lr).
pub fn table(rhos: &[f64], lrs: &[f64], cells: &[Cell]) -> String {
    let mut out = String::from("| rho \\ lr |");
    for lr in lrs {
        out += &format!(" {lr} |");
    }
    out += "\n|---|";
    out += &"---|".repeat(lrs.len());
    out += "\n";
    for (r, rho) in rhos.iter().enumerate() {
        out += &format!("| {rho} |");
        for c in 0..lrs.len() {
            let v = cells[r * lrs.len() + c].log10_gap;
            out += &if v.is_finite() {
                format!(" {v:.2} |")
            } else {
                " diverged |".to_string()
            };
        }
        out += "\n";
    }
    out
}
