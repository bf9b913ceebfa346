//! The networks (an MLP and a GRU, weights from our seeded generator) and [`Workload`], a task's
//! network and data for other drivers.

use anyhow::Result;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::rnn::{gru, GRUConfig, GRU, RNN};
use candle_nn::{Linear, Module, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// `v` stored as `dtype` (rounded to nearest).
pub(super) fn in_dtype(v: Var, dtype: DType) -> Result<Var> {
    if v.dtype() == dtype {
        return Ok(v);
    }
    Ok(Var::from_tensor(&v.as_tensor().to_dtype(dtype)?)?)
}

pub(super) fn uniform_var(rng: &mut ChaCha8Rng, shape: &[usize], bound: f64) -> Result<Var> {
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| rng.random_range(-bound..bound) as f32)
        .collect();
    Ok(Var::from_vec(v, shape, &Device::Cpu)?)
}

/// A network: its forward pass and its variables in a fixed order.
pub(super) trait Net {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor>;
    fn vars(&self) -> Vec<Var>;
}

pub(super) struct Mlp {
    w: Vec<Var>,
}

impl Mlp {
    pub(super) fn new(seed: u64, dtype: DType) -> Result<Self> {
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

pub(super) struct Recurrent {
    gru: GRU,
    head: Linear,
    vars: Vec<Var>,
}

impl Recurrent {
    /// A GRU and a linear head built by candle, then every weight redrawn from our seeded
    /// generator (U(-1/√hidden, 1/√hidden), PyTorch's GRU initialization).
    pub(super) fn new(
        input: usize,
        hidden: usize,
        out: usize,
        seed: u64,
        dtype: DType,
    ) -> Result<Self> {
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
