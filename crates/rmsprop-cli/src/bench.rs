//! `rmsprop bench`: the memory-bandwidth limit of an optimizer step on this machine, and how
//! close each optimizer and variant gets to it.
//!
//! The limit is measured with the step's own access pattern: an in-place pass that reads three
//! arrays and writes two (`p += g; v += g`), at the same size and thread count. STREAM-style copy
//! (`a = b`) and triad (`a = b + s*c`) are measured for reference. Bytes count reads plus writes.
//!
//! The machine's bandwidth moves from moment to moment (by 2x on the development machines), so a
//! fraction of the limit is only meaningful when both are measured at the same moment: each
//! optimizer is timed in [`ROUNDS`] rounds, each a batch of the limit pass immediately followed by
//! a batch of steps, and `fraction_of_limit` is the median of the per-round ratios, with their
//! spread (`fraction_spread`: largest minus smallest).

use std::hint::black_box;
use std::time::Instant;

use half::bf16;
use rayon::prelude::*;
use rmsprop::blockwise::Blockwise8;
use rmsprop::mixed::{Mixed, MixedOptions, StateStorage};
use rmsprop::{
    Adagrad, AdagradConfig, Adam, AdamConfig, Execution, Float, NonFinitePolicy, Optimizer,
    RmsProp, RmsPropConfig, Sgd, SgdConfig,
};
use serde::Serialize;

/// A problem size: one flat tensor, or many equal tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// One tensor of this many parameters.
    Flat(usize),
    /// `tensors` tensors of `each` parameters.
    Many {
        /// Number of tensors.
        tensors: usize,
        /// Parameters per tensor.
        each: usize,
    },
}

impl Workload {
    /// Total parameters.
    pub fn params(self) -> usize {
        match self {
            Workload::Flat(n) => n,
            Workload::Many { tensors, each } => tensors * each,
        }
    }

    /// Number of tensors.
    pub fn tensors(self) -> usize {
        match self {
            Workload::Flat(_) => 1,
            Workload::Many { tensors, .. } => tensors,
        }
    }

    /// Parses `1e7`, `1000`, or `1000x1e4` (1,000 tensors of 1e4).
    ///
    /// # Examples
    /// ```
    /// use rmsprop_cli::bench::Workload;
    /// assert_eq!(Workload::parse("1e7"), Ok(Workload::Flat(10_000_000)));
    /// assert_eq!(Workload::parse("1000x1e4"), Ok(Workload::Many { tensors: 1000, each: 10_000 }));
    /// assert!(Workload::parse("ten").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, String> {
        let count = |t: &str| -> Result<usize, String> {
            let v: f64 = t
                .trim()
                .parse()
                .map_err(|_| format!("`{t}` is not a number (examples: 1e7, 1000, 1000x1e4)"))?;
            if v >= 1.0 && v.fract() == 0.0 && v <= 1e10 {
                Ok(v as usize)
            } else {
                Err(format!("`{t}` must be a whole number from 1 to 1e10"))
            }
        };
        match s.split_once('x') {
            Some((a, b)) => Ok(Workload::Many {
                tensors: count(a)?,
                each: count(b)?,
            }),
            None => Ok(Workload::Flat(count(s)?)),
        }
    }
}

/// The default sizes: 2, 1e3, 1e5, 1e6, 1e7, 1e8 (when memory allows) and 1,000 tensors of 1e4.
pub fn default_workloads() -> Vec<Workload> {
    let mut w: Vec<Workload> = [2, 1_000, 100_000, 1_000_000, 10_000_000]
        .into_iter()
        .map(Workload::Flat)
        .collect();
    // 1e8 f64 parameters with three buffers need about 4 GB; ask for twice that.
    if available_memory().is_some_and(|m| m > 8_000_000_000) {
        w.push(Workload::Flat(100_000_000));
    }
    w.push(Workload::Many {
        tensors: 1000,
        each: 10_000,
    });
    w
}

fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// One measured optimizer/variant/size.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// `rmsprop`, `sgd`, `adagrad`, `adam`, `adamw`, or `check` (the non-finite check alone).
    pub optimizer: &'static str,
    /// Variant name.
    pub variant: &'static str,
    /// The parameters' type: `f32`, `f64`, or `bf16` (half-precision parameters and gradients,
    /// computed in f32 by `rmsprop::mixed::Mixed`).
    pub dtype: &'static str,
    /// Where the optimizer state lives: `f32`, `f64`, `bf16` or `8bit` (blockwise, one byte per
    /// element and an `f32` absmax per 256); `-` for the `check` row.
    pub state: &'static str,
    /// Total parameters.
    pub params: usize,
    /// Number of tensors.
    pub tensors: usize,
    /// Threads.
    pub threads: usize,
    /// Seconds per step (the median over the rounds of each round's batch).
    pub seconds_per_step: f64,
    /// Parameters per second.
    pub params_per_second: f64,
    /// Bytes read and written per parameter.
    pub bytes_per_param: usize,
    /// Achieved bandwidth in GB/s (1e9 bytes).
    pub gbps: f64,
    /// Bandwidth over the read-3/write-2 limit at this size: the median of the per-round ratios,
    /// each round timing the limit pass and the step back to back. For the `check` row (the
    /// non-finite check alone: one read of the gradient) the limit is a read-only pass over one
    /// array of the same size.
    pub fraction_of_limit: f64,
    /// Largest minus smallest per-round ratio.
    pub fraction_spread: f64,
}

/// Rounds of (limit batch, step batch) per measurement.
pub const ROUNDS: usize = 7;

/// Repetitions per batch so that a batch lasts about 20 ms (at least one call), after one
/// warm-up call.
fn calibrate(f: &mut impl FnMut()) -> usize {
    let start = Instant::now();
    f();
    let once = start.elapsed().as_secs_f64().max(1e-9);
    ((0.02 / once) as usize).clamp(1, 10_000_000)
}

/// Seconds per call of one batch of `reps` calls.
fn batch(f: &mut impl FnMut(), reps: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    t.elapsed().as_secs_f64() / reps as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}

/// The memory limit measured at one size.
#[derive(Clone, Debug, Serialize)]
pub struct Limit {
    /// Parameters (elements per array).
    pub params: usize,
    /// Read-3/write-2 in-place pass, GB/s.
    pub gbps: f64,
}

/// The whole report; `--json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The read-3/write-2 limit at the largest flat size measured, GB/s.
    pub limit_gbps: f64,
    /// STREAM triad at the largest flat size, GB/s.
    pub triad_gbps: f64,
    /// STREAM copy at the largest flat size, GB/s.
    pub copy_gbps: f64,
    /// The limit at every size.
    pub limits: Vec<Limit>,
    /// Instruction set of the kernels.
    pub isa: String,
    /// Every measurement.
    pub results: Vec<BenchResult>,
}

/// Best per-call time of `f`, in seconds: batches of at least ~20 ms (at least one call), best of
/// 5 batches (3 when a call takes over 0.1 s), after one warm-up call.
pub fn time_per_call(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    f();
    let once = start.elapsed().as_secs_f64().max(1e-9);
    let reps = ((0.02 / once) as usize).clamp(1, 10_000_000);
    let batches = if once > 0.1 { 3 } else { 5 };
    (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
}

const CHUNK: usize = 1 << 16;

/// The in-place read-3/write-2 pass `p += g; v += g` over `n` f32 elements, ready to run.
struct LimitPass {
    p: Vec<f32>,
    g: Vec<f32>,
    v: Vec<f32>,
    threads: usize,
    pool: rayon::ThreadPool,
}

impl LimitPass {
    fn new(n: usize, threads: usize) -> Self {
        Self {
            p: vec![1.0; n],
            g: vec![1e-7; n],
            v: vec![0.5; n],
            threads,
            pool: pool(threads),
        }
    }

    fn run(&mut self) {
        let n = self.p.len();
        if self.threads > 1 && n >= 1 << 15 {
            let chunk = n.div_ceil(self.threads * 4).max(CHUNK.min(n));
            let (p, g, v) = (&mut self.p, &self.g, &mut self.v);
            self.pool.install(|| {
                p.par_chunks_mut(chunk)
                    .zip(g.par_chunks(chunk))
                    .zip(v.par_chunks_mut(chunk))
                    .for_each(|((p, g), v)| pass3(p, g, v))
            })
        } else {
            pass3(&mut self.p, &self.g, &mut self.v)
        }
        black_box((&self.p, &self.v));
    }

    /// GB/s of one pass that took `seconds`.
    fn gbps(&self, seconds: f64) -> f64 {
        20.0 * self.p.len() as f64 / seconds / 1e9
    }
}

/// A reference pass timed against a step (see [`interleaved`]).
trait Pass {
    /// One pass.
    fn run(&mut self);
    /// GB/s of one pass that took `seconds`.
    fn gbps(&self, seconds: f64) -> f64;
}

impl Pass for LimitPass {
    fn run(&mut self) {
        LimitPass::run(self)
    }
    fn gbps(&self, seconds: f64) -> f64 {
        LimitPass::gbps(self, seconds)
    }
}

/// The read-only pass over `n` f32 elements (an XOR of their bits, which vectorizes): the limit
/// for the non-finite check, which reads the gradient once and writes nothing.
struct ReadPass {
    g: Vec<f32>,
    threads: usize,
    pool: rayon::ThreadPool,
}

impl ReadPass {
    fn new(n: usize, threads: usize) -> Self {
        Self {
            g: (0..n).map(|i| i as f32).collect(),
            threads,
            pool: pool(threads),
        }
    }
}

#[inline(never)]
fn xor_bits(g: &[f32]) -> u32 {
    g.iter().fold(0, |a, x| a ^ x.to_bits())
}

impl Pass for ReadPass {
    fn run(&mut self) {
        let n = self.g.len();
        let bits = if self.threads > 1 && n >= 1 << 15 {
            let chunk = n.div_ceil(self.threads * 4).max(CHUNK.min(n));
            let g = &self.g;
            self.pool
                .install(|| g.par_chunks(chunk).map(xor_bits).reduce(|| 0, |a, b| a ^ b))
        } else {
            xor_bits(&self.g)
        };
        black_box(bits);
    }
    fn gbps(&self, seconds: f64) -> f64 {
        4.0 * self.g.len() as f64 / seconds / 1e9
    }
}

/// GB/s of the limit pass over `n` f32 elements, best of 5 batches.
fn limit_gbps(n: usize, threads: usize) -> f64 {
    let mut pass = LimitPass::new(n, threads);
    let t = time_per_call(|| pass.run());
    pass.gbps(t)
}

#[inline(never)]
fn pass3(p: &mut [f32], g: &[f32], v: &mut [f32]) {
    for ((p, g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
        *p += *g;
        *v += *g;
    }
}

/// (copy, triad) GB/s over `n` f64 elements, STREAM style.
fn stream_gbps(n: usize, threads: usize) -> (f64, f64) {
    let (mut a, b, c) = (vec![0.0f64; n], vec![1.0f64; n], vec![2.0f64; n]);
    let pool = pool(threads);
    let chunk = n.div_ceil(threads * 4).max(CHUNK.min(n));
    let copy = time_per_call(|| {
        pool.install(|| {
            a.par_chunks_mut(chunk)
                .zip(b.par_chunks(chunk))
                .for_each(|(a, b)| a.copy_from_slice(b))
        })
    });
    let triad = time_per_call(|| {
        pool.install(|| {
            a.par_chunks_mut(chunk)
                .zip(b.par_chunks(chunk))
                .zip(c.par_chunks(chunk))
                .for_each(|((a, b), c)| {
                    for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
                        *a = *b + 3.0 * *c;
                    }
                })
        })
    });
    black_box(&a);
    (16.0 * n as f64 / copy / 1e9, 24.0 * n as f64 / triad / 1e9)
}

/// Builds a fresh optimizer.
type MakeOptimizer<T> = fn() -> Box<dyn Optimizer<T>>;

/// One benchmarked optimizer/variant.
struct Case {
    optimizer: &'static str,
    variant: &'static str,
    /// Arrays read or written per parameter (parameter, gradient and state, reads plus writes).
    arrays: usize,
    make32: MakeOptimizer<f32>,
    make64: Option<MakeOptimizer<f64>>,
    /// What the step does with non-finite gradients (the default checks them).
    non_finite: NonFinitePolicy,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            optimizer: "rmsprop",
            variant: "plain",
            arrays: 5,
            make32: || Box::new(RmsProp::new(RmsPropConfig::pytorch()).unwrap()),
            make64: Some(|| Box::new(RmsProp::new(RmsPropConfig::pytorch()).unwrap())),
            non_finite: NonFinitePolicy::Error,
        },
        Case {
            optimizer: "rmsprop",
            variant: "plain_unchecked",
            arrays: 5,
            make32: || Box::new(RmsProp::new(RmsPropConfig::pytorch()).unwrap()),
            make64: None,
            non_finite: NonFinitePolicy::Propagate,
        },
        Case {
            optimizer: "rmsprop",
            variant: "eps_inside",
            arrays: 5,
            make32: || Box::new(RmsProp::new(RmsPropConfig::keras()).unwrap()),
            make64: None,
            non_finite: NonFinitePolicy::Error,
        },
        Case {
            optimizer: "rmsprop",
            variant: "centered",
            arrays: 7,
            make32: || {
                Box::new(RmsProp::new(RmsPropConfig::pytorch().with_centered(true)).unwrap())
            },
            make64: None,
            non_finite: NonFinitePolicy::Error,
        },
        Case {
            optimizer: "rmsprop",
            variant: "momentum",
            arrays: 7,
            make32: || Box::new(RmsProp::new(RmsPropConfig::pytorch().with_momentum(0.9)).unwrap()),
            make64: None,
            non_finite: NonFinitePolicy::Error,
        },
        Case {
            optimizer: "rmsprop",
            variant: "centered_momentum",
            arrays: 9,
            make32: || {
                Box::new(
                    RmsProp::new(
                        RmsPropConfig::pytorch()
                            .with_centered(true)
                            .with_momentum(0.9),
                    )
                    .unwrap(),
                )
            },
            make64: None,
            non_finite: NonFinitePolicy::Error,
        },
        Case {
            optimizer: "sgd",
            variant: "plain",
            arrays: 3,
            make32: || Box::new(Sgd::new(SgdConfig::plain(0.01)).unwrap()),
            make64: None,
            non_finite: NonFinitePolicy::Error,
        },
        Case {
            optimizer: "sgd",
            variant: "momentum",
            arrays: 5,
            make32: || Box::new(Sgd::new(SgdConfig::momentum(0.01, 0.9)).unwrap()),
            make64: None,
            non_finite: NonFinitePolicy::Error,
        },
        Case {
            optimizer: "adagrad",
            variant: "plain",
            arrays: 5,
            make32: || Box::new(Adagrad::new(AdagradConfig::pytorch()).unwrap()),
            make64: None,
            non_finite: NonFinitePolicy::Error,
        },
        Case {
            optimizer: "adam",
            variant: "plain",
            arrays: 7,
            make32: || Box::new(Adam::new(AdamConfig::pytorch()).unwrap()),
            make64: None,
            non_finite: NonFinitePolicy::Error,
        },
        Case {
            optimizer: "adamw",
            variant: "plain",
            arrays: 7,
            make32: || Box::new(Adam::new(AdamConfig::pytorch_adamw()).unwrap()),
            make64: None,
            non_finite: NonFinitePolicy::Error,
        },
    ]
}

/// Steps `opt` on workload `w` against the limit pass, interleaved (see [`interleaved`]).
fn measure_step<T: Float>(
    mut opt: Box<dyn Optimizer<T>>,
    w: Workload,
    exec: Execution,
    limit: &mut LimitPass,
    bytes: usize,
) -> (f64, f64, f64, f64) {
    opt.set_execution(exec);
    let (mut params, grads) = workload_values(w, T::from_f64);
    let grad_views: Vec<&[T]> = grads.iter().map(|g| g.as_slice()).collect();
    let mut views: Vec<&mut [T]> = params.iter_mut().map(|p| p.as_mut_slice()).collect();
    interleaved(limit, bytes, || {
        opt.step(&mut views, &grad_views)
            .expect("consistent shapes");
    })
}

/// The parameters and gradients a step of workload `w` runs on, in any element type.
fn workload_values<T>(w: Workload, from_f64: fn(f64) -> T) -> (Vec<Vec<T>>, Vec<Vec<T>>) {
    let each = match w {
        Workload::Flat(n) => n,
        Workload::Many { each, .. } => each,
    };
    let fill = |f: &dyn Fn(usize, usize) -> f64| -> Vec<Vec<T>> {
        (0..w.tensors())
            .map(|t| (0..each).map(|i| from_f64(f(i, t))).collect())
            .collect()
    };
    (
        fill(&|i, t| ((i + t) % 97) as f64 * 0.01 - 0.4),
        fill(&|i, t| ((i * 7 + t) % 89) as f64 * 1e-3 - 0.04),
    )
}

/// Steps half-precision parameters on workload `w` with `step` (a `Mixed` or `Blockwise8`
/// step) against the limit pass, interleaved.
fn measure_half(
    mut step: impl FnMut(&mut [&mut [bf16]], &[&[bf16]]) -> rmsprop::Result<()>,
    w: Workload,
    limit: &mut LimitPass,
    bytes: usize,
) -> (f64, f64, f64, f64) {
    let (mut params, grads) = workload_values(w, bf16::from_f64);
    let grad_views: Vec<&[bf16]> = grads.iter().map(|g| g.as_slice()).collect();
    let mut views: Vec<&mut [bf16]> = params.iter_mut().map(|p| p.as_mut_slice()).collect();
    interleaved(limit, bytes, || {
        step(&mut views, &grad_views).expect("consistent shapes");
    })
}

/// Times `step` against the limit pass in [`ROUNDS`] interleaved rounds: (median seconds per
/// step, median fraction of the limit, spread of the fraction, median limit GB/s).
fn interleaved(
    limit: &mut impl Pass,
    bytes: usize,
    mut step: impl FnMut(),
) -> (f64, f64, f64, f64) {
    let mut run_limit = || limit.run();
    let limit_reps = calibrate(&mut run_limit);
    let step_reps = calibrate(&mut step);
    let (mut times, mut fractions, mut limits) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t_limit = batch(&mut || limit.run(), limit_reps);
        let t_step = batch(&mut step, step_reps);
        let limit_gbps = limit.gbps(t_limit);
        let gbps = bytes as f64 / t_step / 1e9;
        times.push(t_step);
        fractions.push(gbps / limit_gbps);
        limits.push(limit_gbps);
    }
    let spread = fractions.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
        - fractions.iter().cloned().fold(f64::INFINITY, f64::min);
    (
        median(&mut times),
        median(&mut fractions),
        spread,
        median(&mut limits),
    )
}

/// One row: what ran (optimizer, variant, parameter and state types, bytes moved per
/// parameter) on workload `w`, and its interleaved measurement `m` (see [`interleaved`]).
#[allow(clippy::too_many_arguments)]
fn row(
    optimizer: &'static str,
    variant: &'static str,
    dtype: &'static str,
    state: &'static str,
    bytes: usize,
    w: Workload,
    threads: usize,
    m: (f64, f64, f64, f64),
) -> BenchResult {
    let (t, fraction, spread, _) = m;
    BenchResult {
        optimizer,
        variant,
        dtype,
        state,
        params: w.params(),
        tensors: w.tensors(),
        threads,
        seconds_per_step: t,
        params_per_second: w.params() as f64 / t,
        bytes_per_param: bytes,
        gbps: (bytes * w.params()) as f64 / t / 1e9,
        fraction_of_limit: fraction,
        fraction_spread: spread,
    }
}

/// Runs the whole benchmark; `progress` is told what is being measured.
pub fn run(workloads: &[Workload], threads: usize, mut progress: impl FnMut(&str)) -> BenchReport {
    let exec = Execution::threads(threads).expect("a valid thread count");
    let largest = workloads
        .iter()
        .filter_map(|w| match w {
            Workload::Flat(n) => Some(*n),
            _ => None,
        })
        .max()
        .unwrap_or(10_000_000);
    progress("memory limits");
    let limit_gbps = limit_gbps(largest.max(1_000_000), threads);
    let (copy_gbps, triad_gbps) = stream_gbps(largest.max(1_000_000), threads);
    let mut limits: Vec<Limit> = Vec::new();
    let mut results = Vec::new();
    for &w in workloads {
        let mut limit = LimitPass::new(w.params(), threads);
        let mut limits_here = Vec::new();
        for case in cases() {
            progress(&format!(
                "{} {} {}",
                case.optimizer,
                case.variant,
                w.params()
            ));
            let mut push = |dtype: &'static str, bytes: usize, m: (f64, f64, f64, f64)| {
                limits_here.push(m.3);
                let r = row(
                    case.optimizer,
                    case.variant,
                    dtype,
                    dtype,
                    bytes,
                    w,
                    threads,
                    m,
                );
                results.push(r);
            };
            let exec = exec.clone().with_non_finite(case.non_finite);
            let bytes = case.arrays * 4;
            let m = measure_step(
                (case.make32)(),
                w,
                exec.clone(),
                &mut limit,
                bytes * w.params(),
            );
            push("f32", bytes, m);
            if let Some(make64) = case.make64 {
                let bytes = case.arrays * 8;
                let m = measure_step(make64(), w, exec, &mut limit, bytes * w.params());
                push("f64", bytes, m);
            }
        }
        // Half-precision parameters: plain RMSProp with f32 state and with bf16 state.
        for (state, storage, bytes) in [
            ("f32", StateStorage::F32, 14),
            ("bf16", StateStorage::Half, 10),
        ] {
            progress(&format!("rmsprop plain bf16/{state} {}", w.params()));
            let options = MixedOptions {
                state: storage,
                ..MixedOptions::default()
            };
            let mut opt = Mixed::<_, bf16>::new(RmsPropConfig::pytorch(), options)
                .expect("a valid configuration");
            opt.set_execution(exec.clone());
            let m = measure_half(|p, g| opt.step(p, g), w, &mut limit, bytes * w.params());
            limits_here.push(m.3);
            results.push(row("rmsprop", "plain", "bf16", state, bytes, w, threads, m));
        }
        // f32 parameters with 8-bit blockwise state (every tensor quantized): parameter read and
        // written, gradient read, one byte of state read and written (the absmax, 4 bytes per
        // 256 elements, is left out of the count).
        {
            progress(&format!("rmsprop plain f32/8bit {}", w.params()));
            let bytes = 14;
            let opt = Blockwise8::new(RmsPropConfig::pytorch(), 0).expect("a valid configuration");
            let m = measure_step(
                Box::new(opt),
                w,
                exec.clone(),
                &mut limit,
                bytes * w.params(),
            );
            limits_here.push(m.3);
            results.push(row("rmsprop", "plain", "f32", "8bit", bytes, w, threads, m));
        }
        // bf16 parameters and gradients with 8-bit state: 2 + 2 + 2 + 1 + 1 bytes.
        {
            progress(&format!("rmsprop plain bf16/8bit {}", w.params()));
            let bytes = 8;
            let mut opt: Blockwise8<RmsPropConfig, bf16> =
                Blockwise8::new(RmsPropConfig::pytorch(), 0).expect("a valid configuration");
            opt.set_execution(exec.clone());
            let m = measure_half(|p, g| opt.step(p, g), w, &mut limit, bytes * w.params());
            limits_here.push(m.3);
            results.push(row(
                "rmsprop", "plain", "bf16", "8bit", bytes, w, threads, m,
            ));
        }
        // The non-finite check alone (what `plain` does and `plain_unchecked` does not): one
        // read of the gradient, against the read-only pass.
        {
            progress(&format!("check non_finite {}", w.params()));
            let mut opt = RmsProp::<f32>::new(RmsPropConfig::pytorch()).expect("valid");
            opt.set_execution(exec.clone());
            let (_, grads) = workload_values(w, |x| x as f32);
            let views: Vec<&[f32]> = grads.iter().map(|g| g.as_slice()).collect();
            let mut read = ReadPass::new(w.params(), threads);
            let m = interleaved(&mut read, 4 * w.params(), || {
                assert!(opt.screen_gradients(&views).expect("finite gradients"));
            });
            results.push(row("check", "non_finite", "f32", "-", 4, w, threads, m));
        }
        limits.push(Limit {
            params: w.params(),
            gbps: median(&mut limits_here),
        });
    }
    BenchReport {
        limit_gbps,
        triad_gbps,
        copy_gbps,
        limits,
        isa: format!("{:?}", Execution::sequential().isa()),
        results,
    }
}

/// Human-readable table of a report.
pub fn table(r: &BenchReport) -> String {
    let mut out = format!(
        "memory: read-3/write-2 limit {:.1} GB/s, STREAM copy {:.1} GB/s, triad {:.1} GB/s (kernels: {})\n",
        r.limit_gbps, r.copy_gbps, r.triad_gbps, r.isa
    );
    out += &format!(
        "{:<8} {:<18} {:<5} {:<5} {:>11} {:>7} {:>3} {:>12} {:>11} {:>7} {:>6} {:>7}\n",
        "opt",
        "variant",
        "dtype",
        "state",
        "params",
        "tensors",
        "thr",
        "time/step",
        "params/s",
        "GB/s",
        "limit",
        "spread"
    );
    for x in &r.results {
        out += &format!(
            "{:<8} {:<18} {:<5} {:<5} {:>11} {:>7} {:>3} {:>12} {:>11.3e} {:>7.2} {:>5.0}% {:>6.0}%\n",
            x.optimizer,
            x.variant,
            x.dtype,
            x.state,
            x.params,
            x.tensors,
            x.threads,
            format_seconds(x.seconds_per_step),
            x.params_per_second,
            x.gbps,
            100.0 * x.fraction_of_limit,
            100.0 * x.fraction_spread
        );
    }
    out
}

fn format_seconds(s: f64) -> String {
    if s < 1e-6 {
        format!("{:.1} ns", s * 1e9)
    } else if s < 1e-3 {
        format!("{:.2} us", s * 1e6)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn every_result_has_a_fraction_and_its_spread_from_the_rounds() {
        let r = run(&[Workload::Flat(64)], 1, |_| {});
        assert_eq!(r.limits.len(), 1);
        // Plain RMSProp also in f64, with bf16 parameters (f32 and bf16 state), and with 8-bit
        // state (f32 and bf16 parameters); and the check alone.
        assert_eq!(r.results.len(), cases().len() + 6);
        let check = r.results.last().unwrap();
        assert_eq!(
            (
                check.optimizer,
                check.variant,
                check.state,
                check.bytes_per_param
            ),
            ("check", "non_finite", "-", 4)
        );
        for x in &r.results {
            assert!(x.fraction_of_limit.is_finite() && x.fraction_of_limit > 0.0);
            assert!(x.fraction_spread >= 0.0, "{x:?}");
        }
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["results"][0]["fraction_spread"].is_number());
        let half: Vec<_> = r.results.iter().filter(|x| x.dtype == "bf16").collect();
        assert_eq!(
            half.iter()
                .map(|x| (x.state, x.bytes_per_param))
                .collect::<Vec<_>>(),
            [("f32", 14), ("bf16", 10), ("8bit", 8)]
        );
        assert_eq!(json["results"][0]["state"], "f32");
        let eight: Vec<_> = r
            .results
            .iter()
            .filter(|x| x.state == "8bit")
            .map(|x| (x.dtype, x.bytes_per_param))
            .collect();
        assert_eq!(eight, [("f32", 14), ("bf16", 8)]);
    }
}
