//! One training run: the task, the optimizer (f32 or bf16 parameters, 32- or 8-bit state), the
//! epochs, checkpoints and Ctrl-C.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::DType;
use clap::ValueEnum;
use rmsprop::checkpoint::Checkpointable;
use rmsprop::storage::{StorageCheckpoint, StorageOptimizer};
use rmsprop_candle::{CandleHalf, CandleOptimizer};
use serde::Serialize;

use crate::run::build_optimizer_as;
use crate::run::OptimizerSpec;

use super::*;

/// A training task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// UCI digits, 64 → 128 (ReLU) → 10 MLP, cross-entropy.
    DigitsMlp,
    /// UCI digits read row by row (8 steps of 8 pixels) by a GRU (64 hidden) and a linear head.
    DigitsRnn,
    /// The adding problem: sum the two marked values of a 50-step sequence (GRU, 32 hidden).
    Adding,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.to_possible_value().expect("no skipped variants");
        f.write_str(v.get_name())
    }
}

/// The optimizers `train` compares.
pub const OPTIMIZERS: &[&str] = &["rmsprop", "sgd", "momentum", "adagrad", "adam"];

/// Names `train` knows besides the registry's: `graves` (RMSProp with Graves' 2013 preset:
/// centered, momentum 0.9, rho 0.95) and `sgd-clipped` (SGD with the gradients' global norm
/// clipped to 1, the classic remedy for exploding gradients in recurrent networks).
pub const TRAIN_ONLY: &[&str] = &["graves", "sgd-clipped"];

/// The optimizers `--compare` and `--search` run on `task`: [`OPTIMIZERS`], and on the adding
/// problem (a recurrent network with long dependencies) also [`TRAIN_ONLY`]'s `graves` and
/// `sgd-clipped`.
///
/// # Examples
/// ```
/// use rmsprop_cli::train::{optimizers, Task};
/// assert_eq!(optimizers(Task::DigitsMlp).len(), 5);
/// assert!(optimizers(Task::Adding).contains(&"sgd-clipped"));
/// ```
pub fn optimizers(task: Task) -> &'static [&'static str] {
    match task {
        Task::Adding => &[
            "rmsprop",
            "graves",
            "sgd",
            "sgd-clipped",
            "momentum",
            "adagrad",
            "adam",
        ],
        _ => OPTIMIZERS,
    }
}

/// The optimizer `name` is (a registry name or one of [`TRAIN_ONLY`]) and the norm it clips
/// gradients to, if any.
fn optimizer_of(name: &str) -> Result<(OptimizerSpec, Option<f64>)> {
    Ok(match name {
        "graves" => (
            OptimizerSpec {
                preset: Some(crate::replay::Preset::Graves),
                ..OptimizerSpec::named("rmsprop")
            },
            None,
        ),
        "sgd-clipped" => (OptimizerSpec::named("sgd"), Some(1.0)),
        _ if crate::run::OPTIMIZERS.contains(&name) => (OptimizerSpec::named(name), None),
        _ => bail!(
            "unknown optimizer `{name}`: choose one of {}, {}",
            crate::run::OPTIMIZERS.join(", "),
            TRAIN_ONLY.join(", ")
        ),
    })
}

/// Learning rates picked by `rmsprop train TASK --search` (the best final validation loss over
/// the grid [`SEARCH_GRID`], seed 0); docs/TRAINING.md shows the search's output.
pub fn default_lr(task: Task, optimizer: &str) -> f64 {
    match (task, optimizer) {
        (Task::DigitsMlp, "rmsprop") => 0.01,
        (Task::DigitsMlp, "sgd") => 1.0,
        (Task::DigitsMlp, "momentum") => 0.1,
        (Task::DigitsMlp, "adagrad") => 0.1,
        (Task::DigitsMlp, "adam") => 0.01,
        (Task::DigitsRnn, "rmsprop") => 0.01,
        (Task::DigitsRnn, "sgd") => 1.0,
        (Task::DigitsRnn, "momentum") => 0.3,
        (Task::DigitsRnn, "adagrad") => 0.1,
        (Task::DigitsRnn, "adam") => 0.01,
        (Task::Adding, "rmsprop") => 0.01,
        (Task::Adding, "sgd") => 0.001,
        (Task::Adding, "momentum") => 0.0001,
        (Task::Adding, "adagrad") => 0.1,
        (Task::Adding, "adam") => 0.03,
        (Task::Adding, "graves") => 0.01,
        (Task::Adding, "sgd-clipped") => 0.003,
        // Not searched (not in OPTIMIZERS): the frameworks' defaults.
        (_, "adadelta") => 1.0,
        (_, "lion") => 1e-4,
        _ => 1e-3,
    }
}

/// The learning rates `--search` tries.
pub const SEARCH_GRID: &[f64] = &[1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0];

/// What to evaluate on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The held-out test set.
    Test,
    /// A validation part of the training set (for the learning-rate search; the test set is
    /// never looked at).
    Validation,
}

/// One training run.
#[derive(Clone, Debug)]
pub struct TrainSpec {
    /// The task.
    pub task: Task,
    /// Optimizer (see [`OPTIMIZERS`] and [`TRAIN_ONLY`]).
    pub optimizer: String,
    /// Learning rate (default [`default_lr`]).
    pub lr: Option<f64>,
    /// Epochs (default 30; adding 15).
    pub epochs: Option<usize>,
    /// Seed of weights, data order and generated data.
    pub seed: u64,
    /// Evaluate on the test set or a validation split.
    pub split: Split,
    /// Save optimizer state and weights here after every epoch.
    pub checkpoint: Option<PathBuf>,
    /// Continue from such a checkpoint.
    pub resume: Option<PathBuf>,
    /// Bits of optimizer state per element: 32, or 8 (blockwise, as bitsandbytes; tensors
    /// below 4,096 elements stay in 32 bits).
    pub state_bits: u8,
    /// The parameters' storage type.
    pub dtype: ParamDtype,
}

/// How a network's parameters are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamDtype {
    /// 32-bit floats.
    #[default]
    F32,
    /// bfloat16: forward and backward passes in bf16 (candle's CPU kernels), the optimizer
    /// computing in f32 and rounding the parameters to nearest.
    Bf16,
}

impl ParamDtype {
    /// The flag's value: `"f32"` or `"bf16"`.
    pub(super) fn name(self) -> &'static str {
        match self {
            ParamDtype::F32 => "f32",
            ParamDtype::Bf16 => "bf16",
        }
    }

    pub(super) fn candle(self) -> DType {
        match self {
            ParamDtype::F32 => DType::F32,
            ParamDtype::Bf16 => DType::BF16,
        }
    }
}

impl TrainSpec {
    /// A run of `task` with `optimizer` and the defaults.
    pub fn new(task: Task, optimizer: &str, seed: u64) -> Self {
        Self {
            task,
            optimizer: optimizer.to_string(),
            lr: None,
            epochs: None,
            seed,
            split: Split::Test,
            checkpoint: None,
            resume: None,
            state_bits: 32,
            dtype: ParamDtype::F32,
        }
    }

    /// Epochs to run.
    pub fn epochs(&self) -> usize {
        self.epochs.unwrap_or(match self.task {
            Task::DigitsMlp => 30,
            Task::DigitsRnn => 30,
            Task::Adding => 15,
        })
    }

    /// The learning rate used.
    pub fn lr(&self) -> f64 {
        self.lr
            .unwrap_or_else(|| default_lr(self.task, &self.optimizer))
    }
}

/// What one epoch measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Loss on the evaluation split.
    pub eval_loss: f64,
    /// Accuracy on the evaluation split (adding problem: |error| < 0.04).
    pub eval_accuracy: f64,
}

/// The optimizer of a run, by parameter type and state storage; each saves and resumes with
/// the network's weights in one file.
pub(super) enum Stepper {
    /// f32 parameters, 32-bit state.
    Full(CandleOptimizer<Box<dyn Checkpointable<f32>>, f32>),
    /// f32 parameters, 8-bit state.
    Eight(CandleHalf<Box<dyn StorageCheckpoint<f32>>, f32>),
    /// bf16 parameters, f32 or 8-bit state.
    Bf16(CandleHalf<Box<dyn StorageCheckpoint<half::bf16>>, half::bf16>),
}

impl Stepper {
    pub(super) fn step_with(
        &mut self,
        grads: &candle_core::backprop::GradStore,
    ) -> candle_core::Result<()> {
        match self {
            Stepper::Full(o) => o.step_with(grads),
            Stepper::Eight(o) => o.step_with(grads),
            Stepper::Bf16(o) => o.step_with(grads),
        }
    }

    pub(super) fn learning_rate(&self) -> f64 {
        match self {
            Stepper::Full(o) => o.inner().learning_rate(),
            Stepper::Eight(o) => o.inner().learning_rate(),
            Stepper::Bf16(o) => o.inner().learning_rate(),
        }
    }

    /// Optimizer name, successful steps and configuration.
    fn describe(&self) -> (&'static str, u64, serde_json::Value) {
        match self {
            Stepper::Full(o) => (
                o.inner().name(),
                o.inner().steps(),
                o.inner().snapshot().config,
            ),
            Stepper::Eight(o) => (o.inner().name(), o.inner().steps(), o.inner().config_json()),
            Stepper::Bf16(o) => (o.inner().name(), o.inner().steps(), o.inner().config_json()),
        }
    }

    fn save(&self, path: &Path) -> candle_core::Result<()> {
        match self {
            Stepper::Full(o) => o.save(path),
            Stepper::Eight(o) => o.save(path),
            Stepper::Bf16(o) => o.save(path),
        }
    }

    fn load(&mut self, path: &Path) -> candle_core::Result<()> {
        match self {
            Stepper::Full(o) => o.load(path),
            Stepper::Eight(o) => o.load(path),
            Stepper::Bf16(o) => o.load(path),
        }
    }
}

/// What a checkpoint's header says of how it was written.
struct Written {
    /// The `--dtype`/`--state-bits` that wrote it (`None` for a file that does not say, such as
    /// an 8-bit file without weights).
    storage: Option<(&'static str, u8)>,
    /// Whether it holds weights (its `params` count).
    weights: bool,
}

/// Reads the header of the checkpoint at `path`: `None` when it cannot be read (the loader then
/// says why).
fn written(path: &Path) -> Option<Written> {
    let bytes = std::fs::read(path).ok()?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).ok()?;
    let meta = meta.metadata().as_ref()?;
    let weights = !matches!(meta.get("params").map(String::as_str), None | Some("0"));
    let half = match meta.get("half").map(String::as_str) {
        Some("bfloat16") => Some("bf16"),
        Some(_) => None,
        None => Some("f32"),
    };
    let storage = match meta.get("format").map(String::as_str) {
        Some("rmsprop-checkpoint") => Some(("f32", 32)),
        Some("rmsprop-mixed") => half.map(|h| (h, 32)),
        // An 8-bit file says nothing of its parameter type but through them.
        Some("rmsprop-blockwise8") => safetensors::SafeTensors::deserialize(&bytes)
            .ok()
            .and_then(|file| file.tensor("param.0").ok().map(|p| p.dtype()))
            .map(|dtype| {
                let name = if dtype == safetensors::Dtype::BF16 {
                    "bf16"
                } else {
                    "f32"
                };
                (name, 8)
            }),
        _ => None,
    };
    Some(Written { storage, weights })
}

/// The outcome of a run.
#[derive(Clone, Debug, Serialize)]
pub struct TrainOutcome {
    /// Per epoch, from the first one this process ran.
    pub epochs: Vec<EpochLog>,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// Trains; `on_epoch` sees each epoch's log as it ends; `stop` (Ctrl-C) is polled between
/// batches and ends the run after the current epoch's evaluation, keeping (and checkpointing)
/// what was trained.
///
/// # Errors
/// An unknown optimizer, an invalid learning rate, a checkpoint that cannot be read or written,
/// or a step the optimizer refuses (a non-finite gradient: the loss diverged).
pub fn train(
    spec: &TrainSpec,
    stop: &dyn Fn() -> bool,
    tick: &dyn Fn(u64),
    on_epoch: &mut dyn FnMut(&EpochLog),
) -> Result<TrainOutcome> {
    let (named, clip) = optimizer_of(&spec.optimizer)?;
    let data = Data::new(spec.task, spec.split)?;
    let dtype = spec.dtype.candle();
    let net: Box<dyn Net> = match spec.task {
        Task::DigitsMlp => Box::new(Mlp::new(spec.seed, dtype)?),
        Task::DigitsRnn => Box::new(Recurrent::new(8, 64, 10, spec.seed, dtype)?),
        Task::Adding => Box::new(Recurrent::new(2, 32, 1, spec.seed, dtype)?),
    };
    let optimizer_spec = OptimizerSpec {
        lr: Some(spec.lr()),
        ..named
    };
    if clip.is_some() && (spec.dtype, spec.state_bits) != (ParamDtype::F32, 32) {
        bail!(
            "{}: gradient clipping is available with f32 parameters and 32-bit state only",
            spec.optimizer
        );
    }
    let per_epoch = data.batches_per_epoch();
    let mut first = 0;
    let mut stepper = match (spec.dtype, spec.state_bits) {
        (ParamDtype::F32, 32) => {
            let inner: Box<dyn Checkpointable<f32>> = build_optimizer_as::<f32>(&optimizer_spec)?;
            let opt = CandleOptimizer::with_optimizer(net.vars(), inner);
            Stepper::Full(match clip {
                Some(max) => opt.with_clip_grad_norm(max),
                None => opt,
            })
        }
        (ParamDtype::F32, 8) => {
            let inner = crate::run::build_optimizer_8bit(&optimizer_spec)?;
            Stepper::Eight(CandleHalf::with_optimizer(net.vars(), inner))
        }
        (ParamDtype::Bf16, bits @ (8 | 32)) => {
            let inner = crate::run::build_optimizer_bf16(&optimizer_spec, bits)?;
            Stepper::Bf16(CandleHalf::with_optimizer(net.vars(), inner))
        }
        (_, other) => bail!("--state-bits {other}: must be 32 or 8"),
    };
    if let Some(path) = &spec.resume {
        let (_, _, wanted) = stepper.describe();
        let ours = (spec.dtype.name(), spec.state_bits);
        let header = written(path);
        let theirs = header.as_ref().and_then(|w| w.storage);
        if let Some(theirs) = theirs.filter(|theirs| *theirs != ours) {
            bail!(
                "--resume {}: the checkpoint was written with --dtype {} --state-bits {}; \
                 resume with the same flags (this run has --dtype {} --state-bits {})",
                path.display(),
                theirs.0,
                theirs.1,
                ours.0,
                ours.1
            );
        }
        if header.is_some_and(|w| !w.weights) {
            bail!(
                "--resume {}: the checkpoint holds the optimizer's state but no weights (saved \
                 without parameters); resume from a file written by train --checkpoint",
                path.display()
            );
        }
        stepper
            .load(path)
            .map_err(|e| anyhow::anyhow!("--resume {}: {e}", path.display()))?;
        let (name, steps, loaded) = stepper.describe();
        // Train-only names (graves, sgd-clipped) are the optimizer they build.
        if optimizer_spec.name != name {
            crate::run::refuse_other_optimizer(path, &spec.optimizer, name)?;
        }
        crate::run::refuse_conflicting_flags(
            path,
            &wanted,
            &loaded,
            &[("--lr", spec.lr.is_some(), &["lr"])],
        )?;
        first = steps as usize / per_epoch;
    }
    // The checkpoint's rate when resuming (it restores its configuration).
    let lr = stepper.learning_rate();
    let began = Instant::now();
    let mut logs = Vec::new();
    for epoch in first..spec.epochs() {
        let mut sum = 0.0;
        let mut count = 0;
        for (x, y) in data.epoch(spec.seed, epoch)? {
            let loss = data.loss(&net.forward(&x)?, &y)?;
            let grads = loss.backward()?;
            stepper.step_with(&grads).with_context(|| {
                format!(
                    "epoch {}: the {} step failed (lr {lr} too large?)",
                    epoch + 1,
                    spec.optimizer
                )
            })?;
            sum += loss.to_scalar::<f32>()? as f64;
            count += 1;
            tick(1);
        }
        let (eval_loss, eval_accuracy) = data.evaluate(net.as_ref())?;
        let log = EpochLog {
            epoch: epoch + 1,
            train_loss: sum / count.max(1) as f64,
            eval_loss,
            eval_accuracy,
        };
        on_epoch(&log);
        logs.push(log);
        if let Some(path) = &spec.checkpoint {
            stepper
                .save(path)
                .map_err(|e| anyhow::anyhow!("--checkpoint {}: {e}", path.display()))?;
        }
        if stop() {
            break;
        }
    }
    Ok(TrainOutcome {
        epochs: logs,
        seconds: began.elapsed().as_secs_f64(),
        lr,
    })
}

/// Total optimizer steps of a run (for a progress bar).
pub fn total_steps(spec: &TrainSpec) -> u64 {
    let per_epoch = match spec.task {
        Task::Adding => ADDING_BATCHES_PER_EPOCH,
        _ => digit_rows(1797, spec.split).0.len().div_ceil(BATCH),
    };
    (per_epoch * spec.epochs()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_only_names_are_the_optimizers_they_say() {
        let (graves, clip) = optimizer_of("graves").unwrap();
        assert_eq!(
            (graves.name.as_str(), graves.preset, clip),
            ("rmsprop", Some(crate::replay::Preset::Graves), None)
        );
        let (sgd, clip) = optimizer_of("sgd-clipped").unwrap();
        assert_eq!((sgd.name.as_str(), clip), ("sgd", Some(1.0)));
        assert_eq!(optimizer_of("adam").unwrap().1, None);
        let err = optimizer_of("adamax").unwrap_err().to_string();
        assert!(
            err.contains("graves, sgd-clipped") && err.contains("rmsprop"),
            "{err}"
        );
        // Every name a comparison runs is one `train` accepts.
        for task in [Task::DigitsMlp, Task::DigitsRnn, Task::Adding] {
            for name in optimizers(task) {
                assert!(optimizer_of(name).is_ok(), "{name}");
            }
        }
    }

    #[test]
    fn clipping_is_refused_where_it_is_not_available() {
        let mut spec = TrainSpec::new(Task::DigitsMlp, "sgd-clipped", 0);
        spec.dtype = ParamDtype::Bf16;
        spec.epochs = Some(1);
        let err = train(&spec, &|| false, &|_| {}, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gradient clipping is available with f32"),
            "{err}"
        );
    }
}
