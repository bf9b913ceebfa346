//! `rmsprop train`: RMSProp and its family on real networks through the candle adapter — an MLP
//! and a GRU on the UCI digits, and a GRU on the adding problem.
//!
//! Everything is seeded: initial weights (our own generator, not candle's unseeded one), the
//! order of the training set in each epoch (a permutation per (seed, epoch)) and the adding
//! problem's sequences, so a run is reproducible and a resumed run continues exactly.

use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::rnn::{gru, GRUConfig, GRU, RNN};
use candle_nn::{Linear, Module, VarBuilder, VarMap};
use clap::ValueEnum;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rmsprop::checkpoint::Checkpointable;
use rmsprop::storage::StorageOptimizer;
use rmsprop_candle::{CandleHalf, CandleOptimizer};
use serde::Serialize;

use crate::run::build_optimizer_as;
use crate::run::OptimizerSpec;

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
    /// Optimizer (see [`OPTIMIZERS`]).
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
    fn candle(self) -> DType {
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

const BATCH: usize = 32;

/// The UCI digits: pixels scaled to [0, 1] and labels.
pub fn digits() -> Result<(Vec<f32>, Vec<u32>)> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(&include_bytes!("../data/digits.csv.gz")[..])
        .read_to_string(&mut text)
        .context("data/digits.csv.gz")?;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let v: Vec<f32> = line
            .split(',')
            .map(|f| f.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("digits.csv line {}", i + 1))?;
        if v.len() != 65 {
            bail!("digits.csv line {}: {} fields, expected 65", i + 1, v.len());
        }
        x.extend(v[..64].iter().map(|p| p / 16.0));
        y.push(v[64] as u32);
    }
    Ok((x, y))
}

/// Rows of the fixed split: every 5th image (index % 5 == 0) is test; of the rest, index % 5 == 1
/// is validation when `split` is Validation (and is then left out of training).
fn digit_rows(n: usize, split: Split) -> (Vec<usize>, Vec<usize>) {
    let (mut train, mut eval) = (Vec::new(), Vec::new());
    for i in 0..n {
        match (i % 5, split) {
            (0, Split::Test) | (1, Split::Validation) => eval.push(i),
            (0, Split::Validation) => {}
            _ => train.push(i),
        }
    }
    (train, eval)
}

/// `v` stored as `dtype` (rounded to nearest).
fn in_dtype(v: Var, dtype: DType) -> Result<Var> {
    if v.dtype() == dtype {
        return Ok(v);
    }
    Ok(Var::from_tensor(&v.as_tensor().to_dtype(dtype)?)?)
}

fn uniform_var(rng: &mut ChaCha8Rng, shape: &[usize], bound: f64) -> Result<Var> {
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| rng.random_range(-bound..bound) as f32)
        .collect();
    Ok(Var::from_vec(v, shape, &Device::Cpu)?)
}

/// A network: its forward pass and its variables in a fixed order.
trait Net {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor>;
    fn vars(&self) -> Vec<Var>;
}

struct Mlp {
    w: Vec<Var>,
}

impl Mlp {
    fn new(seed: u64, dtype: DType) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (a, b) = (1.0 / 64f64.sqrt(), 1.0 / 128f64.sqrt());
        Ok(Self {
            w: vec![
                uniform_var(&mut rng, &[128, 64], a)?,
                uniform_var(&mut rng, &[128], a)?,
                uniform_var(&mut rng, &[10, 128], b)?,
                uniform_var(&mut rng, &[10], b)?,
            ]
            .into_iter()
            .map(|v| in_dtype(v, dtype))
            .collect::<Result<_>>()?,
        })
    }
}

impl Net for Mlp {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let t = |i: usize| self.w[i].as_tensor().clone();
        let x = x.to_dtype(self.w[0].dtype())?;
        let h = Linear::new(t(0), Some(t(1))).forward(&x)?.relu()?;
        Linear::new(t(2), Some(t(3)))
            .forward(&h)?
            .to_dtype(DType::F32)
    }
    fn vars(&self) -> Vec<Var> {
        self.w.clone()
    }
}

struct Recurrent {
    gru: GRU,
    head: Linear,
    vars: Vec<Var>,
}

impl Recurrent {
    /// A GRU and a linear head built by candle, then every weight redrawn from our seeded
    /// generator (U(-1/√hidden, 1/√hidden), PyTorch's GRU initialization).
    fn new(input: usize, hidden: usize, out: usize, seed: u64, dtype: DType) -> Result<Self> {
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, dtype, &Device::Cpu);
        let gru = gru(input, hidden, GRUConfig::default(), vb.pp("gru"))?;
        let head = candle_nn::linear(hidden, out, vb.pp("head"))?;
        let mut named: Vec<(String, Var)> = map
            .data()
            .lock()
            .map_err(|_| anyhow::anyhow!("variable map poisoned"))?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let bound = 1.0 / (hidden as f64).sqrt();
        for (_, v) in &named {
            let fresh = uniform_var(&mut rng, v.dims(), bound)?;
            v.set(&fresh.as_tensor().to_dtype(dtype)?)?;
        }
        Ok(Self {
            gru,
            head,
            vars: named.into_iter().map(|(_, v)| v).collect(),
        })
    }
}

impl Net for Recurrent {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = x.to_dtype(self.vars[0].dtype())?;
        let states = self.gru.seq(&x)?;
        let last = states.last().expect("sequences are not empty").h();
        self.head.forward(last)?.to_dtype(DType::F32)
    }
    fn vars(&self) -> Vec<Var> {
        self.vars.clone()
    }
}

/// The adding problem's length.
pub const ADDING_STEPS: usize = 50;
const ADDING_BATCHES_PER_EPOCH: usize = 50;
const ADDING_EVAL: usize = 1000;

/// `n` adding-problem sequences (values U(0,1); one marker in each half) and their targets.
fn adding_batch(n: usize, mut rng: ChaCha8Rng) -> Result<(Tensor, Tensor)> {
    let t = ADDING_STEPS;
    let mut x = vec![0f32; n * t * 2];
    let mut y = vec![0f32; n];
    for s in 0..n {
        let a = rng.random_range(0..t / 2);
        let b = rng.random_range(t / 2..t);
        for k in 0..t {
            let v: f32 = rng.random();
            x[(s * t + k) * 2] = v;
            if k == a || k == b {
                x[(s * t + k) * 2 + 1] = 1.0;
                y[s] += v;
            }
        }
    }
    Ok((
        Tensor::from_vec(x, (n, t, 2), &Device::Cpu)?,
        Tensor::from_vec(y, (n, 1), &Device::Cpu)?,
    ))
}

fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

enum Data {
    Digits {
        x: Vec<f32>,
        y: Vec<u32>,
        train: Vec<usize>,
        eval: Vec<usize>,
        rows_as_sequence: bool,
    },
    Adding {
        eval: (Tensor, Tensor),
    },
}

impl Data {
    fn new(task: Task, split: Split) -> Result<Self> {
        Ok(match task {
            Task::Adding => {
                // Evaluation sequences come from streams training never uses.
                let s = if split == Split::Test {
                    u64::MAX
                } else {
                    u64::MAX - 1
                };
                Data::Adding {
                    eval: adding_batch(ADDING_EVAL, stream(12345, s))?,
                }
            }
            _ => {
                let (x, y) = digits()?;
                let (train, eval) = digit_rows(y.len(), split);
                Data::Digits {
                    x,
                    y,
                    train,
                    eval,
                    rows_as_sequence: task == Task::DigitsRnn,
                }
            }
        })
    }

    fn batches_per_epoch(&self) -> usize {
        match self {
            Data::Digits { train, .. } => train.len().div_ceil(BATCH),
            Data::Adding { .. } => ADDING_BATCHES_PER_EPOCH,
        }
    }

    fn gather(&self, rows: &[usize]) -> Result<(Tensor, Tensor)> {
        let Data::Digits {
            x,
            y,
            rows_as_sequence,
            ..
        } = self
        else {
            unreachable!("digits only")
        };
        let mut bx = Vec::with_capacity(rows.len() * 64);
        for &r in rows {
            bx.extend_from_slice(&x[r * 64..(r + 1) * 64]);
        }
        let by: Vec<u32> = rows.iter().map(|&r| y[r]).collect();
        let n = rows.len();
        let xs = if *rows_as_sequence {
            Tensor::from_vec(bx, (n, 8, 8), &Device::Cpu)?
        } else {
            Tensor::from_vec(bx, (n, 64), &Device::Cpu)?
        };
        Ok((xs, Tensor::from_vec(by, n, &Device::Cpu)?))
    }

    /// The epoch's batches (digits: a seeded permutation of the training rows).
    fn epoch(&self, seed: u64, epoch: usize) -> Result<Vec<(Tensor, Tensor)>> {
        match self {
            Data::Digits { train, .. } => {
                let mut order = train.clone();
                order.shuffle(&mut stream(seed, epoch as u64));
                order.chunks(BATCH).map(|c| self.gather(c)).collect()
            }
            Data::Adding { .. } => (0..ADDING_BATCHES_PER_EPOCH)
                .map(|b| {
                    adding_batch(
                        BATCH * 2,
                        stream(seed, (epoch * ADDING_BATCHES_PER_EPOCH + b) as u64),
                    )
                })
                .collect(),
        }
    }

    fn loss(&self, out: &Tensor, target: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Data::Digits { .. } => candle_nn::loss::cross_entropy(out, target),
            Data::Adding { .. } => candle_nn::loss::mse(out, target),
        }
    }

    fn evaluate(&self, net: &dyn Net) -> Result<(f64, f64)> {
        let (x, y) = match self {
            Data::Digits { eval, .. } => self.gather(eval)?,
            Data::Adding { eval } => eval.clone(),
        };
        let out = net.forward(&x)?;
        let loss = self.loss(&out, &y)?.to_scalar::<f32>()? as f64;
        let correct = match self {
            Data::Digits { .. } => out
                .argmax(1)?
                .eq(&y)?
                .to_dtype(DType::F32)?
                .sum_all()?
                .to_scalar::<f32>()?,
            Data::Adding { .. } => (out - &y)?
                .abs()?
                .lt(0.04)?
                .to_dtype(DType::F32)?
                .sum_all()?
                .to_scalar::<f32>()?,
        };
        Ok((loss, correct as f64 / y.dim(0)? as f64))
    }
}

/// A task's network and data, for drivers other than [`train`] (data-parallel training splits
/// each batch across processes and steps a sharded optimizer). The same seeds give the same
/// initial weights and batches as [`train`].
pub struct Workload {
    data: Data,
    net: Box<dyn Net>,
}

impl Workload {
    /// The network for `seed` and the data of `task`, evaluated on `split`.
    ///
    /// # Errors
    /// When the embedded digits cannot be read or the network cannot be built.
    pub fn new(task: Task, seed: u64, split: Split) -> Result<Self> {
        let net: Box<dyn Net> = match task {
            Task::DigitsMlp => Box::new(Mlp::new(seed, DType::F32)?),
            Task::DigitsRnn => Box::new(Recurrent::new(8, 64, 10, seed, DType::F32)?),
            Task::Adding => Box::new(Recurrent::new(2, 32, 1, seed, DType::F32)?),
        };
        Ok(Self {
            data: Data::new(task, split)?,
            net,
        })
    }

    /// The network's variables, in a fixed order.
    pub fn vars(&self) -> Vec<Var> {
        self.net.vars()
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.data.batches_per_epoch()
    }

    /// Epoch `epoch`'s batches for `seed`, as (inputs, targets) with the examples along dim 0.
    ///
    /// # Errors
    /// When a batch cannot be built.
    pub fn epoch(&self, seed: u64, epoch: usize) -> Result<Vec<(Tensor, Tensor)>> {
        self.data.epoch(seed, epoch)
    }

    /// The mean loss of the network on (inputs, targets).
    ///
    /// # Errors
    /// When the forward pass fails.
    pub fn loss(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        Ok(self.data.loss(&self.net.forward(x)?, y)?)
    }

    /// Loss and accuracy on the evaluation split.
    ///
    /// # Errors
    /// When the forward pass fails.
    pub fn evaluate(&self) -> Result<(f64, f64)> {
        self.data.evaluate(self.net.as_ref())
    }
}

/// The optimizer of a run, by parameter type and state storage.
enum Stepper {
    /// f32 parameters, 32-bit state (checkpoints available).
    Full(CandleOptimizer<Box<dyn Checkpointable<f32>>, f32>),
    /// f32 parameters, 8-bit state.
    Eight(CandleOptimizer<Box<dyn rmsprop::Optimizer<f32>>, f32>),
    /// bf16 parameters, f32 or 8-bit state.
    Bf16(CandleHalf<Box<dyn StorageOptimizer<half::bf16>>, half::bf16>),
}

impl Stepper {
    fn step_with(&mut self, grads: &candle_core::backprop::GradStore) -> candle_core::Result<()> {
        match self {
            Stepper::Full(o) => o.step_with(grads),
            Stepper::Eight(o) => o.step_with(grads),
            Stepper::Bf16(o) => o.step_with(grads),
        }
    }

    fn learning_rate(&self) -> f64 {
        match self {
            Stepper::Full(o) => o.inner().learning_rate(),
            Stepper::Eight(o) => o.inner().learning_rate(),
            Stepper::Bf16(o) => o.inner().learning_rate(),
        }
    }
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
    if !crate::run::OPTIMIZERS.contains(&spec.optimizer.as_str()) {
        bail!(
            "unknown optimizer `{}`: choose one of {}",
            spec.optimizer,
            crate::run::OPTIMIZERS.join(", ")
        );
    }
    let data = Data::new(spec.task, spec.split)?;
    let dtype = spec.dtype.candle();
    let net: Box<dyn Net> = match spec.task {
        Task::DigitsMlp => Box::new(Mlp::new(spec.seed, dtype)?),
        Task::DigitsRnn => Box::new(Recurrent::new(8, 64, 10, spec.seed, dtype)?),
        Task::Adding => Box::new(Recurrent::new(2, 32, 1, spec.seed, dtype)?),
    };
    let optimizer_spec = OptimizerSpec {
        lr: Some(spec.lr()),
        ..OptimizerSpec::named(&spec.optimizer)
    };
    let per_epoch = data.batches_per_epoch();
    let mut first = 0;
    let mut stepper = match (spec.dtype, spec.state_bits) {
        (ParamDtype::F32, 32) => {
            let inner: Box<dyn Checkpointable<f32>> = build_optimizer_as::<f32>(&optimizer_spec)?;
            Stepper::Full(CandleOptimizer::with_optimizer(net.vars(), inner))
        }
        (_, 8 | 32) if spec.checkpoint.is_some() || spec.resume.is_some() => {
            bail!(
                "--state-bits {} --dtype {}: checkpoints are available for f32 parameters with 32-bit state only (drop --checkpoint/--resume)",
                spec.state_bits,
                spec.dtype.to_possible_value().expect("no skipped variants").get_name()
            )
        }
        (ParamDtype::F32, 8) => {
            let inner = crate::run::build_optimizer_8bit(&optimizer_spec)?;
            Stepper::Eight(CandleOptimizer::with_optimizer(net.vars(), inner))
        }
        (ParamDtype::Bf16, bits @ (8 | 32)) => {
            let inner = crate::run::build_optimizer_bf16(&optimizer_spec, bits)?;
            Stepper::Bf16(CandleHalf::with_optimizer(net.vars(), inner))
        }
        (_, other) => bail!("--state-bits {other}: must be 32 or 8"),
    };
    if let (Some(path), Stepper::Full(opt)) = (&spec.resume, &mut stepper) {
        let wanted = opt.inner().snapshot().config;
        opt.load(path)
            .map_err(|e| anyhow::anyhow!("--resume {}: {e}", path.display()))?;
        crate::run::refuse_other_optimizer(path, &spec.optimizer, opt.inner().name())?;
        crate::run::refuse_conflicting_flags(
            path,
            &wanted,
            &opt.inner().snapshot().config,
            &[("--lr", spec.lr.is_some(), &["lr"])],
        )?;
        first = opt.inner().steps() as usize / per_epoch;
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
        if let (Some(path), Stepper::Full(opt)) = (&spec.checkpoint, &stepper) {
            opt.save(path)
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

fn mean_sd(v: &[f64]) -> (f64, f64) {
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

/// The learning-rate search: every optimizer of [`OPTIMIZERS`] at every rate of
/// [`SEARCH_GRID`], seed 0, evaluated on the validation split (the test set is not used).
/// Returns the tables (Markdown) and each optimizer's rate with the lowest final validation loss.
///
/// # Errors
/// As [`train`], except diverged runs (recorded).
pub fn search(
    base: &TrainSpec,
    stop: &dyn Fn() -> bool,
    tick: &dyn Fn(u64),
) -> Result<(String, Vec<(String, f64)>)> {
    let spec = TrainSpec {
        split: Split::Validation,
        ..base.clone()
    };
    let mut all = String::new();
    let mut best = Vec::new();
    for &name in OPTIMIZERS {
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
