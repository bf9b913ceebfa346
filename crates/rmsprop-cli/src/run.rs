//! `rmsprop run`: one optimizer on one objective, its trajectory saved as CSV and JSON, with
//! periodic checkpoints and resume.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rmsprop::checkpoint::{load, Checkpointable};
use rmsprop::{
    Adadelta, AdadeltaConfig, Adagrad, AdagradConfig, Adam, AdamConfig, Lion, LionConfig, Sgd,
    SgdConfig,
};
use rmsprop::{RmsProp, RmsPropConfig};
use rmsprop_testfns::{LeastSquares, Noisy, Objective};
use serde::{Deserialize, Serialize};

use crate::replay::Preset;

/// The optimizers `run` knows, by name (the [registry](crate::registry)'s).
pub const OPTIMIZERS: &[&str] = crate::registry::NAMES;

/// One optimizer and its hyperparameters, as written in an experiment file's `[[optimizer]]`
/// table. Unset fields keep the optimizer's (or the RMSProp preset's) defaults; a field that does
/// not apply to the optimizer is an error, not silently ignored.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerSpec {
    /// rmsprop, sgd, momentum, nesterov, adagrad, adam, adamw, adadelta or lion.
    pub name: String,
    /// Name in tables and legends (default: `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Learning rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// RMSProp formulation (default pytorch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// RMSProp decay rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    /// Epsilon (RMSProp keeps the preset's placement; Adagrad, Adam).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps: Option<f64>,
    /// Momentum (RMSProp, sgd/momentum/nesterov).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    /// Centered RMSProp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centered: Option<bool>,
    /// RMSProp's eps placement, `inside` or `outside` the root (default: the preset's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps_placement: Option<rmsprop::EpsPlacement>,
    /// RMSProp's bias correction of the square average (default: the preset's, off but optax's
    /// option).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_correction: Option<bool>,
    /// RMSProp's initial square average (PyTorch 0, TF1 and Keras 1.0 for some versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_square_avg: Option<f64>,
    /// Adam's first-moment decay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta1: Option<f64>,
    /// Adam's second-moment decay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta2: Option<f64>,
    /// AMSGrad (adam, adamw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amsgrad: Option<bool>,
    /// Clip the gradient's global L2 norm to this before every step
    /// (`torch.nn.utils.clip_grad_norm_`). Applied by the runs of experiment files and the
    /// playground, any optimizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_norm: Option<f64>,
    /// Learning-rate decay per step, gamma: the rate at step t is lr × gamma^t (PyTorch's
    /// `ExponentialLR`, stepped every step). Any optimizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_decay: Option<f64>,
    /// Weight decay (coupled, or decoupled for adamw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    /// Mini-batch size (least_squares only; default the full batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
}

impl OptimizerSpec {
    /// A spec with only a name.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_string(),
            ..Self::default()
        }
    }

    /// The label in tables and legends.
    pub fn label(&self) -> String {
        self.label.clone().unwrap_or_else(|| self.name.clone())
    }
}

/// Builds the optimizer a spec describes.
///
/// # Errors
/// An unknown name, a field that does not apply to the optimizer, or a value it rejects (named).
///
/// # Examples
/// ```
/// use rmsprop_cli::run::{build_optimizer, OptimizerSpec};
/// let spec = OptimizerSpec { rho: Some(0.99), lr: Some(0.05), ..OptimizerSpec::named("rmsprop") };
/// assert_eq!(build_optimizer(&spec).unwrap().learning_rate(), 0.05);
/// let wrong = OptimizerSpec { rho: Some(0.99), ..OptimizerSpec::named("adam") };
/// let err = build_optimizer(&wrong).err().unwrap();
/// assert!(err.to_string().contains("`rho` does not apply to adam"));
/// ```
pub fn build_optimizer(spec: &OptimizerSpec) -> Result<Box<dyn Checkpointable<f64>>> {
    build_optimizer_as::<f64>(spec)
}

/// [`build_optimizer`] in any float type (f32 for training networks).
///
/// # Errors
/// As [`build_optimizer`].
pub fn build_optimizer_as<T: rmsprop::Float>(
    spec: &OptimizerSpec,
) -> Result<Box<dyn Checkpointable<T>>> {
    let mut opt: Box<dyn Checkpointable<T>> = match config_of(spec)? {
        AnyConfig::RmsProp(c) => Box::new(RmsProp::<T>::new(c)?),
        AnyConfig::Sgd(c) => Box::new(Sgd::<T>::new(c)?),
        AnyConfig::Adagrad(c) => Box::new(Adagrad::<T>::new(c)?),
        AnyConfig::Adadelta(c) => Box::new(Adadelta::<T>::new(c)?),
        AnyConfig::Lion(c) => Box::new(Lion::<T>::new(c)?),
        AnyConfig::Adam(c) => Box::new(Adam::<T>::new(c)?),
    };
    finish(spec, opt.as_mut())?;
    if let Some(gamma) = spec.lr_decay {
        opt = Box::new(rmsprop::schedule::Scheduled::new(
            opt,
            rmsprop::schedule::ExponentialLr { gamma },
        ));
    }
    Ok(opt)
}

/// Builds the optimizer of `spec` with its state in 8 bits, blockwise
/// ([`Blockwise8`](rmsprop::blockwise::Blockwise8); tensors below bitsandbytes' 4,096 elements
/// keep `f32` state), on `f32` parameters.
///
/// # Errors
/// As [`build_optimizer_as`]; `lr_decay` and `clip_norm` are refused (not available with 8-bit
/// state).
pub fn build_optimizer_8bit(
    spec: &OptimizerSpec,
) -> Result<Box<dyn rmsprop::storage::StorageCheckpoint<f32>>> {
    use rmsprop::blockwise::{Blockwise8, MIN_8BIT_SIZE};
    type Out = Box<dyn rmsprop::storage::StorageCheckpoint<f32>>;
    if spec.lr_decay.is_some() || spec.clip_norm.is_some() {
        bail!("`lr_decay` and `clip_norm` are not available with 8-bit state");
    }
    struct Eight;
    impl Build for Eight {
        type Out = Out;
        fn build<A: Buildable>(&self, config: A) -> Result<Out> {
            Ok(Box::new(Blockwise8::<A, f32>::new(config, MIN_8BIT_SIZE)?))
        }
    }
    let mut opt = config_of(spec)?.build(&Eight)?;
    if let Some(lr) = spec.lr {
        opt.set_learning_rate(lr)
            .with_context(|| format!("{}: lr {lr}", spec.name))?;
    }
    Ok(opt)
}

/// Builds the optimizer of `spec` for `bf16` parameters, computing in `f32`: state in `f32`
/// (`state_bits` 32, [`Mixed`](rmsprop::mixed::Mixed), parameters rounded to nearest as
/// PyTorch rounds them) or in 8 bits blockwise (`state_bits` 8,
/// [`Blockwise8`](rmsprop::blockwise::Blockwise8)).
///
/// # Errors
/// As [`build_optimizer_as`]; `lr_decay` and `clip_norm` are refused, and `state_bits` other
/// than 32 or 8.
///
/// # Examples
/// ```
/// use rmsprop_cli::run::{build_optimizer_bf16, OptimizerSpec};
/// let spec = OptimizerSpec { lr: Some(0.05), ..OptimizerSpec::named("adam") };
/// let opt = build_optimizer_bf16(&spec, 8).unwrap();
/// assert_eq!((opt.name(), opt.learning_rate()), ("adam", 0.05));
/// assert!(build_optimizer_bf16(&spec, 16).is_err());
/// ```
pub fn build_optimizer_bf16(
    spec: &OptimizerSpec,
    state_bits: u8,
) -> Result<Box<dyn rmsprop::storage::StorageCheckpoint<half::bf16>>> {
    use rmsprop::blockwise::{Blockwise8, MIN_8BIT_SIZE};
    use rmsprop::mixed::{Mixed, MixedOptions};
    type Out = Box<dyn rmsprop::storage::StorageCheckpoint<half::bf16>>;
    if spec.lr_decay.is_some() || spec.clip_norm.is_some() {
        bail!("`lr_decay` and `clip_norm` are not available with bf16 parameters");
    }
    struct Bf16(u8);
    impl Build for Bf16 {
        type Out = Out;
        fn build<A: Buildable>(&self, config: A) -> Result<Out> {
            Ok(match self.0 {
                32 => Box::new(Mixed::<A, half::bf16>::new(
                    config,
                    MixedOptions::default(),
                )?),
                8 => Box::new(Blockwise8::<A, half::bf16>::new(config, MIN_8BIT_SIZE)?),
                other => bail!("state bits {other}: must be 32 or 8"),
            })
        }
    }
    let mut opt = config_of(spec)?.build(&Bf16(state_bits))?;
    if let Some(lr) = spec.lr {
        opt.set_learning_rate(lr)
            .with_context(|| format!("{}: lr {lr}", spec.name))?;
    }
    Ok(opt)
}

/// Builds an optimizer from any algorithm's configuration (the storage chosen by the
/// implementor).
trait Build {
    type Out;
    fn build<A: Buildable>(&self, config: A) -> Result<Self::Out>;
}

/// What a configuration needs to be built into any storage and checkpointed.
trait Buildable: rmsprop::Algorithm + serde::Serialize + serde::de::DeserializeOwned {}
impl<A: rmsprop::Algorithm + serde::Serialize + serde::de::DeserializeOwned> Buildable for A {}

impl AnyConfig {
    fn build<B: Build>(self, b: &B) -> Result<B::Out> {
        match self {
            AnyConfig::RmsProp(c) => b.build(c),
            AnyConfig::Sgd(c) => b.build(c),
            AnyConfig::Adagrad(c) => b.build(c),
            AnyConfig::Adadelta(c) => b.build(c),
            AnyConfig::Lion(c) => b.build(c),
            AnyConfig::Adam(c) => b.build(c),
        }
    }
}

/// The learning rate and the checks every built optimizer shares.
fn finish<T: rmsprop::Float>(
    spec: &OptimizerSpec,
    opt: &mut dyn rmsprop::Optimizer<T>,
) -> Result<()> {
    if let Some(lr) = spec.lr {
        opt.set_learning_rate(lr)
            .with_context(|| format!("{}: lr {lr}", spec.name))?;
    }
    if let Some(c) = spec.clip_norm {
        if !(c.is_finite() && c > 0.0) {
            bail!("invalid hyperparameter `clip_norm` = {c}: must be finite and > 0");
        }
    }
    if let Some(gamma) = spec.lr_decay {
        if !(gamma > 0.0 && gamma <= 1.0) {
            bail!("invalid hyperparameter `lr_decay` = {gamma}: must be in (0, 1]");
        }
    }
    Ok(())
}

/// The configuration of one optimizer of the family.
enum AnyConfig {
    RmsProp(RmsPropConfig),
    Sgd(SgdConfig),
    Adagrad(AdagradConfig),
    Adadelta(AdadeltaConfig),
    Lion(LionConfig),
    Adam(AdamConfig),
}

/// The configuration `spec` describes (its options applied to the optimizer's defaults).
fn config_of(spec: &OptimizerSpec) -> Result<AnyConfig> {
    let name = spec.name.as_str();
    crate::registry::check_applies(spec)?;
    let wd = spec.weight_decay.unwrap_or(0.0);
    Ok(match name {
        "rmsprop" => {
            let mut c = spec.preset.unwrap_or(Preset::Pytorch).config();
            if let Some(rho) = spec.rho {
                c = c.with_rho(rho);
            }
            let placement = spec.eps_placement.unwrap_or(c.eps_placement);
            let eps = spec.eps.unwrap_or(c.eps);
            c = c.with_eps(eps, placement);
            if let Some(on) = spec.bias_correction {
                c = c.with_bias_correction(on);
            }
            if let Some(v0) = spec.initial_square_avg {
                c.initial_square_avg = v0;
            }
            if let Some(m) = spec.momentum {
                c = c.with_momentum(m);
            }
            if let Some(centered) = spec.centered {
                c = c.with_centered(centered);
            }
            if spec.weight_decay.is_some() {
                let style = c.weight_decay_style;
                c = c.with_weight_decay(wd, style);
            }
            AnyConfig::RmsProp(c)
        }
        "sgd" | "momentum" | "nesterov" => {
            let default_m = if name == "sgd" { 0.0 } else { 0.9 };
            let m = spec.momentum.unwrap_or(default_m);
            let mut c = match name {
                "nesterov" => SgdConfig::nesterov(0.01, m),
                _ => SgdConfig::momentum(0.01, m),
            };
            c.weight_decay = wd;
            AnyConfig::Sgd(c)
        }
        "adagrad" => {
            let mut c = AdagradConfig::pytorch();
            c.eps = spec.eps.unwrap_or(c.eps);
            c.weight_decay = wd;
            AnyConfig::Adagrad(c)
        }
        "adadelta" => {
            let mut c = AdadeltaConfig::pytorch();
            c.rho = spec.rho.unwrap_or(c.rho);
            c.eps = spec.eps.unwrap_or(c.eps);
            c.weight_decay = wd;
            AnyConfig::Adadelta(c)
        }
        "lion" => {
            let mut c = LionConfig::optax();
            c.beta1 = spec.beta1.unwrap_or(c.beta1);
            c.beta2 = spec.beta2.unwrap_or(c.beta2);
            c.weight_decay = spec.weight_decay.unwrap_or(c.weight_decay);
            AnyConfig::Lion(c)
        }
        _ => {
            let mut c = if name == "adamw" {
                AdamConfig::pytorch_adamw()
            } else {
                AdamConfig::pytorch()
            };
            c.beta1 = spec.beta1.unwrap_or(c.beta1);
            c.beta2 = spec.beta2.unwrap_or(c.beta2);
            c.eps = spec.eps.unwrap_or(c.eps);
            c.amsgrad = spec.amsgrad.unwrap_or(c.amsgrad);
            c.weight_decay = spec.weight_decay.unwrap_or(c.weight_decay);
            AnyConfig::Adam(c)
        }
    })
}

/// Builds optimizer `name` (RMSProp with `preset`, default PyTorch's), with `lr` when given.
///
/// # Errors
/// An unknown name, or a learning rate the optimizer rejects.
///
/// # Examples
/// ```
/// let opt = rmsprop_cli::run::make_optimizer("adam", None, Some(0.1)).unwrap();
/// assert_eq!(opt.learning_rate(), 0.1);
/// assert!(rmsprop_cli::run::make_optimizer("adamax", None, None).is_err());
/// ```
pub fn make_optimizer(
    name: &str,
    preset: Option<Preset>,
    lr: Option<f64>,
) -> Result<Box<dyn Checkpointable<f64>>> {
    if preset.is_some() && name != "rmsprop" && OPTIMIZERS.contains(&name) {
        bail!("--preset applies to rmsprop, not `{name}`");
    }
    build_optimizer(&OptimizerSpec {
        preset,
        lr,
        ..OptimizerSpec::named(name)
    })
}

/// `--optimizer NAME` must name the optimizer a checkpoint holds (`sgd` does not resume a
/// `nesterov` run, nor `adam` an `adamw` one).
///
/// # Errors
/// When `asked` differs from the loaded optimizer's name.
pub fn refuse_other_optimizer(path: &Path, asked: &str, loaded: &str) -> Result<()> {
    if asked != loaded {
        bail!(
            "--optimizer {asked} conflicts with the checkpoint {}, which holds a {loaded} \
             optimizer: resume with --optimizer {loaded}",
            path.display()
        );
    }
    Ok(())
}

/// A resumed run continues with the checkpoint's configuration (loading restores it). A flag
/// that asks for something else is refused, naming the flag, rather than silently ignored:
/// `flags` lists each flag, whether it was given, and the configuration fields it sets;
/// `wanted` is the configuration the flags built, `loaded` the checkpoint's.
///
/// # Errors
/// The first given flag whose fields differ between `wanted` and `loaded`.
///
/// # Examples
/// ```
/// use serde_json::json;
/// use std::path::Path;
/// let (wanted, loaded) = (json!({"lr": 0.5, "rho": 0.9}), json!({"lr": 0.01, "rho": 0.9}));
/// let flags: &[(&str, bool, &[&str])] = &[("--lr", true, &["lr"])];
/// let err = rmsprop_cli::run::refuse_conflicting_flags(Path::new("m.ckpt"), &wanted, &loaded, flags)
///     .unwrap_err();
/// assert!(err.to_string().starts_with("--lr conflicts with the checkpoint m.ckpt: it sets lr = 0.5"));
/// assert!(rmsprop_cli::run::refuse_conflicting_flags(Path::new("m.ckpt"), &loaded, &loaded, flags).is_ok());
/// ```
pub fn refuse_conflicting_flags(
    path: &Path,
    wanted: &serde_json::Value,
    loaded: &serde_json::Value,
    flags: &[(&str, bool, &[&str])],
) -> Result<()> {
    for (flag, given, fields) in flags {
        if !given {
            continue;
        }
        for field in fields.iter() {
            if wanted[field] != loaded[field] {
                bail!(
                    "{flag} conflicts with the checkpoint {}: it sets {field} = {}, the checkpoint \
                     holds {field} = {}. A resumed run continues with the checkpoint's \
                     configuration: drop {flag} to resume, or start a new run without --resume",
                    path.display(),
                    wanted[field],
                    loaded[field]
                );
            }
        }
    }
    Ok(())
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

/// An objective with its stochastic options: Gaussian gradient noise of standard deviation
/// `noise` and, for `least_squares`, mini-batches of `batch` rows; both seeded by `seed`.
///
/// # Errors
/// An unknown name, a negative or non-finite noise, a batch for an objective other than
/// least_squares, or a batch of 0.
///
/// # Examples
/// ```
/// let f = rmsprop_cli::run::build_objective("least_squares", 0.0, 1, Some(10)).unwrap();
/// assert_eq!(f.dim(), 10);
/// assert!(rmsprop_cli::run::build_objective("sphere", 0.0, 1, Some(10)).is_err());
/// ```
pub fn build_objective(
    name: &str,
    noise: f64,
    seed: u64,
    batch: Option<usize>,
) -> Result<Box<dyn Objective>> {
    if !(noise.is_finite() && noise >= 0.0) {
        bail!("noise must be a finite standard deviation >= 0, got {noise}");
    }
    let mut f = make_objective(name)?;
    if let Some(b) = batch {
        if name != "least_squares" {
            bail!("batch applies to least_squares only, not `{name}`");
        }
        if b == 0 {
            bail!("batch must be at least 1");
        }
        f = Box::new(LeastSquares::default().with_batch(b, seed));
    }
    if noise > 0.0 {
        f = Box::new(Noisy::new(f, noise, seed));
    }
    Ok(f)
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
    /// Standard deviation of the Gaussian noise added to every gradient (0: none).
    pub noise: f64,
    /// Seed of the noise and of the mini-batch order.
    pub seed: u64,
    /// Mini-batch size (least_squares only).
    pub batch: Option<usize>,
}

/// Runs the spec; returns the trajectory of the steps taken in this process (from the resumed
/// step when resuming). `stop` is polled between steps (Ctrl-C): the run ends early, keeping
/// what was computed (and checkpointing it).
///
/// # Errors
/// Unknown names, a start of the wrong dimension, a checkpoint that cannot be read or written or
/// does not match the optimizer.
pub fn run(spec: &RunSpec, stop: &dyn Fn() -> bool, tick: &dyn Fn(u64)) -> Result<Vec<Row>> {
    let objective = build_objective(&spec.objective, spec.noise, spec.seed, spec.batch)?;
    let mut opt = make_optimizer(&spec.optimizer, spec.preset, spec.lr)?;
    let mut x = match (&spec.resume, &spec.start) {
        (Some(path), _) => {
            let wanted = opt.snapshot().config;
            let params =
                load(path, opt.as_mut()).with_context(|| format!("--resume {}", path.display()))?;
            let fields: Vec<&str> = wanted
                .as_object()
                .map(|o| {
                    o.keys()
                        .map(String::as_str)
                        .filter(|k| *k != "lr")
                        .collect()
                })
                .unwrap_or_default();
            refuse_other_optimizer(path, &spec.optimizer, opt.name())?;
            refuse_conflicting_flags(
                path,
                &wanted,
                &opt.snapshot().config,
                &[
                    ("--lr", spec.lr.is_some(), &["lr"]),
                    ("--preset", spec.preset.is_some(), &fields),
                ],
            )?;
            let params = params.with_context(|| {
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
    let mut rows = Rows {
        f: objective.as_ref(),
        rows: Vec::new(),
    };
    let mut progress = crate::runner::Progress::new(tick, stop);
    let mut checkpoints = spec
        .checkpoint
        .clone()
        .map(|path| crate::runner::Checkpoints::new(path, spec.checkpoint_every));
    let mut runner = crate::runner::Runner::new(objective.as_ref())
        .observe(&mut rows)
        .observe(&mut progress);
    if let Some(c) = &mut checkpoints {
        runner = runner.observe(c);
    }
    // Ctrl-C before the first step: nothing to run.
    let last = if stop() { first } else { spec.steps.max(first) };
    runner.run(opt.as_mut(), &mut x, first, last)?;
    Ok(rows.rows)
}

/// Records the trajectory of `run` (an observer).
struct Rows<'f> {
    f: &'f dyn Objective,
    rows: Vec<Row>,
}

impl crate::runner::Observe for Rows<'_> {
    fn init(&mut self, step: u64, x: &[f64]) -> Result<()> {
        self.rows.push(Row {
            step,
            f: self.f.value_at(x, step),
            x: x.to_vec(),
        });
        Ok(())
    }
    fn iter(&mut self, s: &crate::runner::StepView<'_>) -> Result<crate::runner::Control> {
        self.rows.push(Row {
            step: s.step,
            f: self.f.value_at(s.x, s.step),
            x: s.x.to_vec(),
        });
        Ok(crate::runner::Control::Continue)
    }
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
        "noise": spec.noise,
        "seed": spec.seed,
        "batch": spec.batch,
        "steps": spec.steps,
        "rows": rows,
    });
    let json_path = dir.join("trajectory.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("{}", json_path.display()))?;
    Ok(())
}
