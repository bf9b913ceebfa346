//! The playground's JSON API: what a run request holds, how it is checked, and what a run returns.
//!
//! Every number comes from the library through the same code as `rmsprop compare`
//! ([`compare::run`] on an [`Experiment`]), so a run here equals a `compare` run of the same
//! settings bit for bit.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::compare::{self, Experiment, Metric, Outcome};
use crate::registry;
use crate::replay::Preset;
use crate::run::{build_objective, build_optimizer, OptimizerSpec};

/// The most steps one run may ask for.
pub const MAX_STEPS: u64 = 5_000;
/// The most optimizers one run may ask for.
pub const MAX_OPTIMIZERS: usize = 8;
/// The largest request body, in bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// The longest a run may compute.
pub const MAX_COMPUTE: Duration = Duration::from_secs(5);
/// The largest start coordinate (in absolute value) and gradient noise.
pub const MAX_COORDINATE: f64 = 1e6;
/// The most numbers one run may return per kind (path, accumulator): steps × dimension ×
/// optimizers.
pub const MAX_VALUES: u64 = 400_000;
/// The largest gradient noise standard deviation.
pub const MAX_NOISE: f64 = 1e3;

/// What was wrong with a request: the message, the field (a JSON path such as
/// `optimizers[0].rho`) and the values it allows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApiError {
    /// What was wrong, in words.
    pub error: String,
    /// The field at fault, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What the field allows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<String>,
}

impl ApiError {
    /// An error about `field`, which allows `allowed`.
    pub fn field(
        field: impl Into<String>,
        error: impl Into<String>,
        allowed: impl Into<String>,
    ) -> Self {
        Self {
            error: error.into(),
            field: Some(field.into()),
            allowed: Some(allowed.into()),
        }
    }
}

fn default_steps() -> u64 {
    100
}

fn default_tolerance() -> f64 {
    1e-3
}

/// `POST /api/run`'s body.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Objective name (see `GET /api/objectives`).
    pub objective: String,
    /// Starting point (default: the objective's).
    #[serde(default)]
    pub start: Option<Vec<f64>>,
    /// Optimizers, each as an experiment file's `[[optimizer]]` (see `GET /api/optimizers`).
    pub optimizers: Vec<OptimizerSpec>,
    /// Steps per optimizer.
    #[serde(default = "default_steps")]
    pub steps: u64,
    /// Standard deviation of Gaussian noise added to every gradient.
    #[serde(default)]
    pub noise: f64,
    /// Seed of the noise.
    #[serde(default)]
    pub seed: u64,
    /// "Reached" means f - f_min below this.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
}

/// The accumulator view of an RMSProp run, per step after the first: the square average `v`,
/// its root, and the effective per-coordinate learning rate.
#[derive(Clone, Debug, Serialize)]
pub struct Accumulator {
    /// `v` per coordinate, after each step.
    pub square_avg: Vec<Vec<f64>>,
    /// `sqrt(v)`.
    pub root: Vec<Vec<f64>>,
    /// `lr / (sqrt(v) + eps)` (eps outside) or `lr / sqrt(v + eps)` (inside); null for
    /// centered or bias-corrected runs, whose step also depends on the gradient average or the
    /// step count.
    pub effective_lr: Option<Vec<Vec<f64>>>,
}

/// One optimizer's run.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// The summary `rmsprop compare` writes into `table.json` (same fields, same numbers).
    pub summary: Outcome,
    /// The path, start included.
    pub path: Vec<Vec<f64>>,
    /// f - f_min at every point of the path.
    pub loss: Vec<f64>,
    /// Length of every step.
    pub step_lengths: Vec<f64>,
    /// RMSProp's accumulator view (null for other optimizers).
    pub accumulator: Option<Accumulator>,
}

/// `POST /api/run`'s answer.
#[derive(Clone, Debug, Serialize)]
pub struct RunResponse {
    /// The experiment that ran (the request with defaults filled in).
    pub experiment: Experiment,
    /// One run per optimizer, in the request's order.
    pub runs: Vec<Run>,
}

fn number_field(field: &str, v: f64, ok: bool, allowed: &str) -> Result<(), ApiError> {
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(
            field,
            format!("`{field}` = {v} is out of range"),
            allowed,
        ))
    }
}

/// Checks a request against the limits and the registry, naming the first field at fault.
///
/// # Errors
/// The first field out of its range, an unknown objective or optimizer, an option an optimizer
/// does not take, or a configuration the library refuses.
pub fn check(req: &RunRequest) -> Result<Experiment, ApiError> {
    let f = build_objective(&req.objective, 0.0, 0, None).map_err(|e| {
        ApiError::field(
            "objective",
            e.to_string(),
            format!("one of {}", rmsprop_testfns::names().join(", ")),
        )
    })?;
    let steps_allowed = format!("an integer in [1, {MAX_STEPS}]");
    if req.steps == 0 || req.steps > MAX_STEPS {
        return Err(ApiError::field(
            "steps",
            format!("`steps` = {} is out of range", req.steps),
            steps_allowed,
        ));
    }
    number_field(
        "noise",
        req.noise,
        req.noise.is_finite() && (0.0..=MAX_NOISE).contains(&req.noise),
        &format!("a finite number in [0, {MAX_NOISE}]"),
    )?;
    number_field(
        "tolerance",
        req.tolerance,
        req.tolerance.is_finite() && req.tolerance > 0.0,
        "a finite number > 0",
    )?;
    if let Some(start) = &req.start {
        if start.len() != f.dim() {
            return Err(ApiError::field(
                "start",
                format!(
                    "`start` has {} coordinates but {} has {}",
                    start.len(),
                    req.objective,
                    f.dim()
                ),
                format!(
                    "{} finite numbers in [-{MAX_COORDINATE}, {MAX_COORDINATE}]",
                    f.dim()
                ),
            ));
        }
        for (i, &x) in start.iter().enumerate() {
            number_field(
                &format!("start[{i}]"),
                x,
                x.is_finite() && x.abs() <= MAX_COORDINATE,
                &format!("a finite number in [-{MAX_COORDINATE}, {MAX_COORDINATE}]"),
            )?;
        }
    }
    let size = f.dim() as u64 * req.optimizers.len().max(1) as u64;
    if req.steps * size > MAX_VALUES {
        return Err(ApiError::field(
            "steps",
            format!(
                "{} steps of {} optimizers on {} ({} coordinates) is {} values, over the limit of {MAX_VALUES}",
                req.steps,
                req.optimizers.len(),
                req.objective,
                f.dim(),
                req.steps * size
            ),
            format!(
                "at most {} steps here (steps × coordinates × optimizers ≤ {MAX_VALUES})",
                MAX_VALUES / size
            ),
        ));
    }
    if req.optimizers.is_empty() || req.optimizers.len() > MAX_OPTIMIZERS {
        return Err(ApiError::field(
            "optimizers",
            format!("{} optimizers asked for", req.optimizers.len()),
            format!("1 to {MAX_OPTIMIZERS} optimizers"),
        ));
    }
    for (i, spec) in req.optimizers.iter().enumerate() {
        let at = format!("optimizers[{i}]");
        let Some(options) = registry::options_of(&spec.name) else {
            return Err(ApiError::field(
                format!("{at}.name"),
                format!("unknown optimizer `{}`", spec.name),
                format!("one of {}", registry::NAMES.join(", ")),
            ));
        };
        let given = serde_json::to_value(spec).expect("a spec serializes");
        for (key, value) in given.as_object().expect("a spec is an object") {
            if matches!(key.as_str(), "name" | "label" | "batch") {
                continue;
            }
            let def =
                registry::def_for(&spec.name, key).expect("every spec field is a registry option");
            if !options.contains(&key.as_str()) {
                return Err(ApiError::field(
                    format!("{at}.{key}"),
                    format!("`{key}` does not apply to {}", spec.name),
                    format!("the options of {}: {}", spec.name, options.join(", ")),
                ));
            }
            if !def.kind.accepts(value) {
                return Err(ApiError::field(
                    format!("{at}.{key}"),
                    format!("`{key}` = {value} is out of range"),
                    def.kind.describe(),
                ));
            }
        }
        build_optimizer(spec).map_err(|e| {
            ApiError::field(
                at.clone(),
                format!("{e:#}"),
                "a configuration the library accepts",
            )
        })?;
        build_objective(&req.objective, req.noise, req.seed, spec.batch).map_err(|e| {
            ApiError::field(
                format!("{at}.batch"),
                e.to_string(),
                "a batch of at least 1, least_squares only",
            )
        })?;
    }
    for (i, spec) in req.optimizers.iter().enumerate() {
        if req.optimizers[..i]
            .iter()
            .any(|other| other.label() == spec.label())
        {
            return Err(ApiError::field(
                format!("optimizers[{i}].label"),
                format!("two optimizers are labelled `{}`", spec.label()),
                "a label no other optimizer of the run has (the name, when no label is given)",
            ));
        }
    }
    let e = Experiment {
        title: None,
        claim: None,
        note: None,
        objective: req.objective.clone(),
        noise: req.noise,
        seeds: vec![req.seed],
        steps: Some(req.steps),
        epochs: None,
        stability_lr: None,
        measure_from: None,
        tolerance: req.tolerance,
        start: req.start.clone(),
        lr_grid: Vec::new(),
        select_by: Metric::TailGap,
        verdict: Vec::new(),
        optimizers: req.optimizers.clone(),
    };
    e.validate().map_err(|err| ApiError {
        error: format!("{err:#}"),
        field: None,
        allowed: None,
    })?;
    Ok(e)
}

/// Runs a checked experiment, giving up after `limit` (the server's is [`MAX_COMPUTE`] unless
/// `rmsprop serve --max-compute-ms` says otherwise).
///
/// # Errors
/// When the run takes longer than `limit`, or an optimizer refuses a step.
pub fn run(e: Experiment, limit: Duration) -> Result<RunResponse, ApiError> {
    let began = Instant::now();
    let late = || began.elapsed() > limit;
    let outcomes = compare::run(&e, &late, &|_| {}).map_err(|err| ApiError {
        error: format!("{err:#}"),
        field: None,
        allowed: None,
    })?;
    if late() {
        return Err(ApiError::field(
            "steps",
            format!(
                "the run took longer than the limit of {} ms",
                limit.as_millis()
            ),
            "fewer steps or optimizers",
        ));
    }
    let runs = outcomes
        .into_iter()
        .map(|mut o| {
            let accumulator = (!o.square_avg.is_empty()).then(|| {
                let effective = compare::effective_lr(&o.spec, o.lr);
                let v = std::mem::take(&mut o.square_avg);
                Accumulator {
                    root: v
                        .iter()
                        .map(|row| row.iter().map(|x| x.sqrt()).collect())
                        .collect(),
                    effective_lr: effective.map(|f| {
                        v.iter()
                            .zip(1u64..)
                            .map(|(row, k)| row.iter().map(|&x| f(x, k)).collect())
                            .collect()
                    }),
                    square_avg: v,
                }
            });
            Run {
                path: std::mem::take(&mut o.path),
                loss: std::mem::take(&mut o.gaps),
                step_lengths: std::mem::take(&mut o.step_lengths),
                accumulator,
                summary: o,
            }
        })
        .collect();
    Ok(RunResponse {
        experiment: e,
        runs,
    })
}

/// One objective of `GET /api/objectives`.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectiveInfo {
    /// Its name.
    pub name: &'static str,
    /// Number of coordinates.
    pub dim: usize,
    /// The default start.
    pub start: Vec<f64>,
    /// Where the minimum is (at step 0 for a moving one).
    pub minimum: Vec<f64>,
    /// The value there.
    pub f_min: f64,
    /// Whether the minimum moves with the step.
    pub moving: bool,
    /// The box pictures show, per coordinate.
    pub bounds: Vec<(f64, f64)>,
    /// For 2-D objectives, f on a grid over `bounds` (`z[j][i]` at `x[i]`, `y[j]`).
    pub contour: Option<Contour>,
}

/// f on a grid.
#[derive(Clone, Debug, Serialize)]
pub struct Contour {
    /// Grid abscissae.
    pub x: Vec<f64>,
    /// Grid ordinates.
    pub y: Vec<f64>,
    /// `z[j][i] = f(x[i], y[j])`.
    pub z: Vec<Vec<f64>>,
}

/// Grid points per side of a contour grid.
pub const CONTOUR_GRID: usize = 101;

/// Every objective, with its contour grid when it is 2-D.
pub fn objectives() -> Vec<ObjectiveInfo> {
    rmsprop_testfns::names()
        .iter()
        .filter_map(|&name| {
            let f = rmsprop_testfns::by_name(name)?;
            let bounds = f.bounds();
            let contour = (f.dim() == 2).then(|| {
                let axis = |(lo, hi): (f64, f64)| -> Vec<f64> {
                    (0..CONTOUR_GRID)
                        .map(|i| lo + (hi - lo) * i as f64 / (CONTOUR_GRID - 1) as f64)
                        .collect()
                };
                let (x, y) = (axis(bounds[0]), axis(bounds[1]));
                let z = y
                    .iter()
                    .map(|&b| x.iter().map(|&a| f.value(&[a, b])).collect())
                    .collect();
                Contour { x, y, z }
            });
            let minimum = f.minimum();
            Some(ObjectiveInfo {
                name,
                dim: f.dim(),
                start: f.start(),
                f_min: f.minimum_value(),
                minimum,
                moving: f.moving(),
                bounds,
                contour,
            })
        })
        .collect()
}

/// `GET /api/optimizers`: the registry, each optimizer with the lab's colour.
pub fn optimizers() -> Value {
    let list: Vec<Value> = registry::optimizers()
        .into_iter()
        .map(|info| {
            let (c, width) = crate::plot::style(info.name, 0);
            let mut v = serde_json::to_value(&info).expect("the registry serializes");
            v["colour"] = Value::from(format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2));
            v["line_width"] = Value::from(width);
            v
        })
        .collect();
    // Each RMSProp preset's values of the options, so the page shows what a run will use.
    let options = registry::options_of("rmsprop").expect("rmsprop is registered");
    let presets: serde_json::Map<String, Value> = <Preset as clap::ValueEnum>::value_variants()
        .iter()
        .map(|p| {
            let config = serde_json::to_value(p.config()).expect("a config serializes");
            let name = serde_json::to_value(p).expect("a preset serializes");
            let values: serde_json::Map<String, Value> = options
                .iter()
                .filter_map(|&o| config.get(o).map(|v| (o.to_string(), v.clone())))
                .collect();
            (
                name.as_str().expect("a preset is a name").to_string(),
                Value::Object(values),
            )
        })
        .collect();
    serde_json::json!({
        "optimizers": list,
        "presets": presets,
        "limits": {
            "max_steps": MAX_STEPS,
            "max_optimizers": MAX_OPTIMIZERS,
            "max_body_bytes": MAX_BODY,
            "max_compute_ms_default": MAX_COMPUTE.as_millis() as u64,
            "max_values": MAX_VALUES,
        }
    })
}
