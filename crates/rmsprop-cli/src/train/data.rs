//! The data: the UCI digits (embedded) and the adding problem's seeded sequences.

use std::io::Read;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

pub(super) const BATCH: usize = 32;

/// The UCI digits: pixels scaled to [0, 1] and labels.
pub fn digits() -> Result<(Vec<f32>, Vec<u32>)> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(&include_bytes!("../../data/digits.csv.gz")[..])
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
pub(super) fn digit_rows(n: usize, split: Split) -> (Vec<usize>, Vec<usize>) {
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

/// The adding problem's length.
pub const ADDING_STEPS: usize = 50;

pub(super) const ADDING_BATCHES_PER_EPOCH: usize = 50;

pub(super) const ADDING_EVAL: usize = 1000;

/// `n` adding-problem sequences (values U(0,1); one marker in each half) and their targets.
pub(super) fn adding_batch(n: usize, mut rng: ChaCha8Rng) -> Result<(Tensor, Tensor)> {
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

pub(super) fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

pub(super) enum Data {
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
    pub(super) fn new(task: Task, split: Split) -> Result<Self> {
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

    pub(super) fn batches_per_epoch(&self) -> usize {
        match self {
            Data::Digits { train, .. } => train.len().div_ceil(BATCH),
            Data::Adding { .. } => ADDING_BATCHES_PER_EPOCH,
        }
    }

    pub(super) fn gather(&self, rows: &[usize]) -> Result<(Tensor, Tensor)> {
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
    pub(super) fn epoch(&self, seed: u64, epoch: usize) -> Result<Vec<(Tensor, Tensor)>> {
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

    pub(super) fn loss(&self, out: &Tensor, target: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Data::Digits { .. } => candle_nn::loss::cross_entropy(out, target),
            Data::Adding { .. } => candle_nn::loss::mse(out, target),
        }
    }

    pub(super) fn evaluate(&self, net: &dyn Net) -> Result<(f64, f64)> {
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
