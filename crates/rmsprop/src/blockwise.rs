//! 8-bit blockwise optimizer state (Dettmers et al. 2022, "8-bit Optimizers via Block-wise
//! Quantization"), with the quantization bitsandbytes' CPU backend uses, bit for bit.
//!
//! A state buffer is cut into blocks of [`BLOCK`] elements. Each block keeps its largest
//! magnitude (`absmax`, an `f32`) and one byte per element: the index of a value of the
//! *dynamic quantization map* ([`QuantMap`], 256 values in `[-1, 1]`, dense near zero and
//! sparse near one) close to `x / absmax`. Dequantizing is `map[code] * absmax`.
//!
//! [`QuantMap::quantize`] reproduces bitsandbytes 0.50's CPU kernel (`quantize_cpu_impl`) exactly,
//! which is *not* plain nearest rounding: it scales by `1/absmax` (a reciprocal, then a
//! product), maps the result to one of 65,536 bins of `[-1, 1]` and looks the code up in a table
//! built from the midpoints of the map's neighbours. Codes and absmax of recorded bitsandbytes
//! runs are reproduced bit for bit (`reference/vectors_8bit/`, `tests/blockwise.rs`).
//!
//! [`Blockwise8`] keeps any [`Algorithm`]'s state this way: a step dequantizes a few blocks to
//! `f32`, runs the algorithm's fused `f32` kernel on them and quantizes them back, so the state
//! costs one byte per element and four bytes per block of 256.
//!
//! ```
//! use rmsprop::blockwise::{QuantMap, BLOCK};
//! let x: Vec<f32> = (0..300).map(|i| (i as f32 - 150.0) / 37.0).collect();
//! let map = QuantMap::signed();
//! let (mut codes, mut absmax) = (vec![0u8; 300], vec![0.0f32; 2]);
//! map.quantize(&x, &mut codes, &mut absmax);
//! assert_eq!(absmax[0], 150.0 / 37.0); // the largest |x| of the first 256
//! let mut back = vec![0.0f32; 300];
//! map.dequantize(&codes, &absmax, &mut back);
//! for (a, b) in x.iter().zip(&back) {
//!     assert!((a - b).abs() <= 0.03 * absmax[0]);
//! }
//! # let _ = BLOCK;
//! ```

use crate::algorithm::Algorithm;
use crate::check::check_step;
use crate::storage::{Buf, Engine, Param, Plan, Rounding};
use crate::{Execution, Optimizer, Result};

#[cfg(feature = "checkpoint")]
mod checkpoint;
#[cfg(feature = "checkpoint")]
pub use checkpoint::{BLOCKWISE_FORMAT, BLOCKWISE_VERSION};

pub use crate::quant::{map_for, QuantMap, BLOCK};

/// Tensors below this many elements keep `f32` state by default (bitsandbytes'
/// `min_8bit_size`).
pub const MIN_8BIT_SIZE: usize = 4096;

/// Any [`Algorithm`] with its state in 8 bits, blockwise (see the [module docs](self)), on
/// parameters stored as `f32` (the default) or, with feature `half`, `bf16`/`f16` (computed in
/// `f32`, rounded to nearest).
///
/// # Examples
/// ```
/// use rmsprop::blockwise::Blockwise8;
/// use rmsprop::RmsPropConfig;
/// let mut opt = Blockwise8::new(RmsPropConfig::pytorch(), 0).unwrap();
/// let mut w = vec![1.0f32; 1000];
/// let g: Vec<f32> = (0..1000).map(|i| (i as f32).sin()).collect();
/// opt.step(&mut [&mut w], &[&g]).unwrap();
/// // 1000 bytes of codes and 4 absmax: 1,016 bytes against 4,000 in f32.
/// assert_eq!(opt.state_bytes(), 1016);
/// ```
#[derive(Clone, Debug)]
pub struct Blockwise8<A: Algorithm, P: Param = f32> {
    pub(crate) engine: Engine<A, P>,
}

impl<A: Algorithm, P: Param> Blockwise8<A, P> {
    crate::storage::engine_accessors!();

    /// Builds the optimizer after validating `config`. Tensors with fewer than `min_8bit_size`
    /// elements keep `f32` state ([`MIN_8BIT_SIZE`] is bitsandbytes' default; 0 quantizes every
    /// tensor).
    ///
    /// # Errors
    /// As [`Algorithm::validate`].
    pub fn new(config: A, min_8bit_size: usize) -> Result<Self> {
        let plan = Plan::Quant {
            min_size: min_8bit_size,
        };
        Ok(Self {
            engine: Engine::new(config, plan, false, Rounding::Nearest)?,
        })
    }

    /// How half-precision parameters are rounded after each step (default
    /// [`Rounding::Nearest`]; `f32` parameters are not rounded). Stochastic rounding keeps
    /// updates smaller than half a unit in the last place alive on average (see
    /// `rmsprop precision`).
    ///
    /// # Examples
    /// ```
    /// use half::bf16;
    /// use rmsprop::blockwise::Blockwise8;
    /// use rmsprop::mixed::Rounding;
    /// use rmsprop::RmsPropConfig;
    /// let mut opt: Blockwise8<RmsPropConfig, bf16> = Blockwise8::new(RmsPropConfig::pytorch(), 0)
    ///     .unwrap()
    ///     .with_rounding(Rounding::Stochastic { seed: 1 });
    /// let mut w = vec![bf16::from_f32(1.0); 300];
    /// opt.step(&mut [&mut w], &[&vec![bf16::from_f32(0.5); 300]]).unwrap();
    /// assert!(w.iter().all(|x| x.to_f32() < 1.0));
    /// ```
    pub fn with_rounding(mut self, rounding: Rounding) -> Self {
        self.engine.rounding = rounding;
        self
    }

    /// The execution settings.
    pub fn execution(&self) -> &Execution {
        &self.engine.exec
    }

    /// Tensors with fewer elements keep `f32` state.
    pub fn min_8bit_size(&self) -> usize {
        match self.engine.plan {
            Plan::Quant { min_size } => min_size,
            _ => unreachable!("8-bit state"),
        }
    }

    /// The 8-bit codes and block absmax of buffer `name` of tensor `tensor` (`None` for a tensor
    /// whose state is `f32`).
    pub fn quantized(&self, tensor: usize, name: &str) -> Option<(&[u8], &[f32])> {
        let k = self.engine.inner.layout().index_of(name)?;
        match &self.engine.tensors.get(tensor)?.bufs[k] {
            Buf::Quant { codes, absmax } => Some((codes, absmax)),
            _ => None,
        }
    }

    /// One step: every parameter tensor updated from its gradient.
    ///
    /// # Errors
    /// As [`Optimizer::step`]: wrong counts or lengths, or a non-finite gradient under
    /// [`NonFinitePolicy::Error`](crate::NonFinitePolicy::Error). A failed or skipped step changes nothing (but the skipped
    /// count).
    pub fn step(&mut self, params: &mut [&mut [P]], grads: &[&[P]]) -> Result<()> {
        self.engine.step(params, grads)
    }
}

crate::storage::storage_optimizer!(Blockwise8, P: Param);

/// The common optimizer interface, so 8-bit state plugs in where any optimizer does (the candle
/// adapter, the CLI's training). [`state_buffers`](Optimizer::state_buffers) lists the `f32`
/// buffers of small tensors only; read 8-bit state with [`Blockwise8::quantized`] or
/// [`Blockwise8::buffer`].
impl<A: Algorithm> Optimizer<f32> for Blockwise8<A> {
    fn name(&self) -> &'static str {
        self.config().name()
    }

    fn step(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]]) -> Result<()> {
        self.engine.step(params, grads)
    }

    fn check(&self, params: &[&mut [f32]], grads: &[&[f32]]) -> Result<()> {
        let tensors = &self.engine.tensors;
        check_step(params, grads, tensors.len(), |i| tensors[i].len)
    }

    fn learning_rate(&self) -> f64 {
        self.config().lr()
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        self.engine.inner.set_learning_rate(lr)
    }

    fn steps(&self) -> u64 {
        self.engine.steps
    }

    fn skipped_steps(&self) -> u64 {
        self.engine.skipped
    }

    fn reset(&mut self) {
        self.engine.tensors.clear();
        self.engine.steps = 0;
        self.engine.skipped = 0;
    }

    fn set_execution(&mut self, execution: Execution) {
        self.engine.exec = execution;
    }

    fn state_buffers(&self, index: usize) -> Vec<(&'static str, &[f32])> {
        let Some(t) = self.engine.tensors.get(index) else {
            return Vec::new();
        };
        self.engine
            .inner
            .layout()
            .buffers()
            .iter()
            .zip(&t.bufs)
            .filter_map(|(b, v)| match v {
                Buf::Wide(v) => Some((b.name, &v[..])),
                _ => None,
            })
            .collect()
    }
}
