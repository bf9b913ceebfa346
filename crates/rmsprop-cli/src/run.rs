//! `rmsprop run`: one optimizer on one objective, its trajectory saved as CSV and JSON, with
//! periodic checkpoints and resume.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rmsprop::checkpoint::{load, save, Checkpointable};
use rmsprop::RmsProp;
use rmsprop::{Adagrad, AdagradConfig, Adam, AdamConfig, Sgd, SgdConfig};
use rmsprop_testfns::Objective;
use serde::Serialize;

use crate::replay::Preset;

/// The optimizers `run` knows, by name.
pub const OPTIMIZERS: &[&str] = &[
    "rmsprop", "sgd", "momentum", "nesterov", "adagrad", "adam", "adamw",
];

/// Builds optimizer `name` (RMSProp with `preset`, default PyTorch's), with `lr` when given.
///
/// # Errors
/// An unknown name, or a learning rate the optimizer rejects.
///
/// # Examples
/// ```
/// let opt = rmsprop_cli::run::make_optimizer("adam", None, Some(0.1)).unwrap();
/// assert_eq!(opt.learning_rate(), 0.1);
/// assert!(rmsprop_cli::run::make_optimizer("lion", None, None).is_err());
/// ```
pub fn make_optimizer(
    name: &str,
    preset: Option<Preset>,
    lr: Option<f64>,
) -> Result<Box<dyn Checkpointable<f64>>> {
    let mut opt: Box<dyn Checkpointable<f64>> = match name {
        "rmsprop" => Box::new(RmsProp::new(preset.unwrap_or(Preset::Pytorch).config())?),
        "sgd" => Box::new(Sgd::new(SgdConfig::plain(0.01))?),
        "momentum" => Box::new(Sgd::new(SgdConfig::momentum(0.01, 0.9))?),
        "nesterov" => Box::new(Sgd::new(SgdConfig::nesterov(0.01, 0.9))?),
        "adagrad" => Box::new(Adagrad::new(AdagradConfig::pytorch())?),
        "adam" => Box::new(Adam::new(AdamConfig::pytorch())?),
        "adamw" => Box::new(Adam::new(AdamConfig::pytorch_adamw())?),
        other => bail!(
            "unknown optimizer `{other}`: choose one of {}",
            OPTIMIZERS.join(", ")
        ),
    };
    if preset.is_some() && name != "rmsprop" {
        bail!("--preset applies to rmsprop, not `{name}`");
    }
    if let Some(lr) = lr {
        opt.set_learning_rate(lr)
            .with_context(|| format!("--lr {lr}"))?;
    }
    Ok(opt)
}

/// The objective called `name`.
///
/// # Errors
/// An unknown name, with the list of known ones.
pub fn make_objective(name: &str) -> Result<Box<dyn Objective>> {
    rmsprop_testfns::by_name(name).with_context(|| {
        format!(
            "unknown objective `{name}`: choose one of {}",
            rmsprop_testfns::names().join(", ")
        )
    })
}

/// One row of a trajectory: the step (0 = start), the point and the objective's value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Steps taken.
    pub step: u64,
    /// Parameters.
    pub x: Vec<f64>,
    /// Objective value.
    pub f: f64,
}

/// What `run` does.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Objective name.
    pub objective: String,
    /// Optimizer name.
    pub optimizer: String,
    /// RMSProp preset.
    pub preset: Option<Preset>,
    /// Learning rate (default: the optimizer's).
    pub lr: Option<f64>,
    /// Total steps.
    pub steps: u64,
    /// Starting point (default: the objective's).
    pub start: Option<Vec<f64>>,
    /// Save a checkpoint here every `checkpoint_every` steps (and at the end).
    pub checkpoint: Option<PathBuf>,
    /// Checkpoint interval in steps.
    pub checkpoint_every: u64,
    /// Continue from this checkpoint.
    pub resume: Option<PathBuf>,
}

/// Runs the spec; returns the trajectory of the steps taken in this process (from the resumed
/// step when resuming). `stop` is polled between steps (Ctrl-C): the run ends early, keeping
/// what was computed (and checkpointing it).
///
/// # Errors
/// Unknown names, a start of the wrong dimension, a checkpoint that cannot be read or written or
/// does not match the optimizer.
pub fn run(spec: &RunSpec, stop: &dyn Fn() -> bool) -> Result<Vec<Row>> {
    let objective = make_objective(&spec.objective)?;
    let mut opt = make_optimizer(&spec.optimizer, spec.preset, spec.lr)?;
    let mut x = match (&spec.resume, &spec.start) {
        (Some(path), _) => {
            let params = load(path, opt.as_mut())
                .with_context(|| format!("--resume {}", path.display()))?
                .with_context(|| {
                    format!(
                        "--resume {}: the checkpoint holds no parameters",
                        path.display()
                    )
                })?;
            params.into_iter().next().unwrap_or_default()
        }
        (None, Some(start)) => start.clone(),
        (None, None) => objective.start(),
    };
    if x.len() != objective.dim() {
        bail!(
            "{} takes {} coordinates, the start has {}",
            objective.name(),
            objective.dim(),
            x.len()
        );
    }
    let first = opt.steps();
    let mut rows = vec![Row {
        step: first,
        f: objective.value(&x),
        x: x.clone(),
    }];
    let save_to = |path: &Path, opt: &dyn Checkpointable<f64>, x: &[f64]| {
        save(path, opt, Some(&[x])).with_context(|| format!("--checkpoint {}", path.display()))
    };
    for step in first..spec.steps {
        if stop() {
            break;
        }
        let g = objective.gradient(&x);
        opt.step_single(&mut x, &g)
            .with_context(|| format!("step {}", step + 1))?;
        rows.push(Row {
            step: step + 1,
            f: objective.value(&x),
            x: x.clone(),
        });
        if let Some(path) = &spec.checkpoint {
            if (step + 1) % spec.checkpoint_every.max(1) == 0 {
                save_to(path, opt.as_ref(), &x)?;
            }
        }
    }
    if let Some(path) = &spec.checkpoint {
        save_to(path, opt.as_ref(), &x)?;
    }
    Ok(rows)
}

/// Writes `trajectory.csv` and `trajectory.json` into `dir`.
///
/// # Errors
/// When the directory or files cannot be written.
pub fn write_trajectory(dir: &Path, spec: &RunSpec, rows: &[Row]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("--out {}", dir.display()))?;
    let dim = rows.first().map_or(0, |r| r.x.len());
    let mut csv = String::from("step");
    for i in 0..dim {
        csv += &format!(",x{i}");
    }
    csv += ",f\n";
    for r in rows {
        csv += &r.step.to_string();
        for v in &r.x {
            csv += &format!(",{v:?}");
        }
        csv += &format!(",{:?}\n", r.f);
    }
    let csv_path = dir.join("trajectory.csv");
    std::fs::write(&csv_path, csv).with_context(|| format!("{}", csv_path.display()))?;
    let json = serde_json::json!({
        "objective": spec.objective,
        "optimizer": spec.optimizer,
        "preset": spec.preset.map(|p| p.to_string()),
        "lr": spec.lr,
        "steps": spec.steps,
        "rows": rows,
    });
    let json_path = dir.join("trajectory.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("{}", json_path.display()))?;
    Ok(())
}
