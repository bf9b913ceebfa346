//! The storage spine: any [`Algorithm`] stepped on parameters stored as `f32`, `bf16` or `f16`
//! with each state buffer stored in `f32`, in the parameter's half type, or in 8 bits blockwise.
//! [`Mixed`](crate::mixed::Mixed) and [`Blockwise8`](crate::blockwise::Blockwise8) are this
//! engine with their storage chosen.
//!
//! A step works in chunks of 2,048 elements (8 quantization blocks), each brought to `f32`
//! in thread-local scratch (or used in place when it already is `f32`), run through the
//! algorithm's fused `f32` kernel, and stored back: parameters rounded to their type (nearest or
//! stochastic), half state rounded to nearest, 8-bit state quantized. Chunks of large tensors run
//! on the [`Execution`]'s threads; every setting gives the same bits.

use std::cell::RefCell;

use crate::algorithm::Algorithm;
use crate::check::check_step;
use crate::kernel::{fast::Isa, Kernel, MAX_BUFFERS};
use crate::quant::{map_for, QuantMap, BLOCK};
use crate::{Error, Execution, NonFinitePolicy, Optim, Result};

/// The accessors every optimizer built on the engine (a struct with an `engine` field) shares.
macro_rules! engine_accessors {
    () => {
        /// Sets what a step does with a non-finite gradient (default
        /// [`NonFinitePolicy::Error`](crate::NonFinitePolicy::Error)).
        pub fn with_non_finite(mut self, policy: crate::NonFinitePolicy) -> Self {
            self.engine.policy = policy;
            self
        }

        /// The configuration.
        pub fn config(&self) -> &A {
            self.engine.inner.config()
        }

        /// Sets the threads (an [`Execution`](crate::Execution); its non-finite policy is not
        /// used, see `with_non_finite`). The chunks of large tensors are spread over them; every
        /// setting gives the same bits.
        pub fn set_execution(&mut self, execution: crate::Execution) {
            self.engine.exec = execution;
        }

        /// Sets the learning rate.
        ///
        /// # Errors
        /// A rate that is not finite and `>= 0`; nothing changes then.
        pub fn set_learning_rate(&mut self, lr: f64) -> crate::Result<()> {
            crate::Optimizer::set_learning_rate(&mut self.engine.inner, lr)
        }

        /// Successful steps.
        pub fn steps(&self) -> u64 {
            self.engine.steps
        }

        /// Steps skipped under [`NonFinitePolicy::Skip`](crate::NonFinitePolicy::Skip).
        pub fn skipped_steps(&self) -> u64 {
            self.engine.skipped
        }

        /// Bytes of optimizer state: 4 per `f32` element, 2 per half element, 1 per 8-bit element
        /// and 4 per block of 256, and 4 per element of a master copy.
        pub fn state_bytes(&self) -> usize {
            self.engine.state_bytes()
        }

        /// Buffer `name` of tensor `tensor` as `f32` values (dequantized or widened; `None`
        /// before the first step or for a buffer the algorithm does not keep).
        pub fn buffer(&self, tensor: usize, name: &str) -> Option<Vec<f32>> {
            self.engine.buffer(tensor, name)
        }
    };
}
pub(crate) use engine_accessors;

/// Elements per chunk: a multiple of the quantization block, small enough to stay in cache.
pub(crate) const CHUNK: usize = 8 * BLOCK;

/// How updated parameters are rounded to a 16-bit type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// To the nearest value, ties to even (PyTorch's behaviour). An update smaller than half a
    /// unit in the last place is lost, so long runs can stall.
    Nearest,
    /// Stochastically: up with probability equal to the distance from the value below, so the
    /// rounding is unbiased and small updates survive on average (Zamirai et al. 2020). The
    /// random bits come from a hash of (seed, step, tensor, element): runs are reproducible and
    /// independent of threading.
    Stochastic {
        /// The seed.
        seed: u64,
    },
}

/// Where a chunk of parameters is: the step, the tensor and the first element's index (the
/// inputs of stochastic rounding's random bits).
#[derive(Clone, Copy, Debug)]
pub struct Place {
    /// The optimizer's step count before this step.
    pub step: u64,
    /// The tensor's index.
    pub tensor: u64,
    /// The index of the chunk's first element in the tensor.
    pub offset: usize,
}

pub(crate) mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    #[cfg(feature = "half")]
    impl Sealed for half::bf16 {}
    #[cfg(feature = "half")]
    impl Sealed for half::f16 {}
}

/// A parameter storage type: `f32`, or (feature `half`) `bf16` / `f16`. Sealed: the engine
/// computes in `f32` and knows how to widen and round each.
///
/// # Examples
/// ```
/// use rmsprop::storage::Param;
/// let mut out = [0.0f32; 2];
/// f32::widen(&[1.5, -2.0], &mut out);
/// assert_eq!(out, [1.5, -2.0]);
/// ```
pub trait Param: sealed::Sealed + Copy + Default + Send + Sync + 'static {
    /// The slice as `f32`, when it is (so the kernel works in place).
    fn as_f32(x: &[Self]) -> Option<&[f32]>;
    /// The same, mutable.
    fn as_f32_mut(x: &mut [Self]) -> Option<&mut [f32]>;
    /// Widens into `dst`.
    fn widen(src: &[Self], dst: &mut [f32]);
    /// Rounds `src` into `dst` (`place` is where `src[0]` is, for stochastic rounding).
    fn narrow(src: &[f32], dst: &mut [Self], rounding: Rounding, place: Place);
    /// Whether every value is finite.
    fn all_finite(isa: Isa, x: &[Self]) -> bool;
    /// The value as `f64` (for error messages).
    fn to_f64(self) -> f64;
    /// Bytes per value.
    const BYTES: usize;
    /// The type's name in checkpoints: `"float32"`, `"bfloat16"` or `"float16"`.
    const NAME: &'static str;
    /// The raw bits of `x`, little-endian (what a checkpoint stores).
    fn to_le_bytes(x: &[Self]) -> Vec<u8>;
    /// The values whose little-endian bits are `b` (`b.len()` a multiple of [`Param::BYTES`]).
    fn from_le_bytes(b: &[u8]) -> Vec<Self>;
}

impl Param for f32 {
    fn as_f32(x: &[Self]) -> Option<&[f32]> {
        Some(x)
    }
    fn as_f32_mut(x: &mut [Self]) -> Option<&mut [f32]> {
        Some(x)
    }
    #[inline(always)]
    fn widen(src: &[Self], dst: &mut [f32]) {
        dst.copy_from_slice(src);
    }
    #[inline(always)]
    fn narrow(src: &[f32], dst: &mut [Self], _: Rounding, _: Place) {
        dst.copy_from_slice(src);
    }
    fn all_finite(isa: Isa, x: &[Self]) -> bool {
        crate::kernel::fast::all_finite(isa, x)
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    const BYTES: usize = 4;
    const NAME: &'static str = "float32";
    fn to_le_bytes(x: &[Self]) -> Vec<u8> {
        x.iter().flat_map(|v| v.to_le_bytes()).collect()
    }
    fn from_le_bytes(b: &[u8]) -> Vec<Self> {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

/// How one state buffer is stored.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Buf<P> {
    /// `f32`.
    Wide(Vec<f32>),
    /// The parameter's (half) type, rounded to nearest after each step.
    Narrow(Vec<P>),
    /// 8 bits per element, with one absmax per block of [`BLOCK`].
    Quant { codes: Vec<u8>, absmax: Vec<f32> },
}

impl<P: Param> Buf<P> {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        match self {
            Buf::Wide(v) => 4 * v.len(),
            Buf::Narrow(v) => P::BYTES * v.len(),
            Buf::Quant { codes, absmax } => codes.len() + 4 * absmax.len(),
        }
    }

    /// The values as `f32` (`map` for 8-bit buffers).
    pub fn to_f32(&self, map: &QuantMap) -> Vec<f32> {
        match self {
            Buf::Wide(v) => v.clone(),
            Buf::Narrow(v) => {
                let mut out = vec![0.0; v.len()];
                P::widen(v, &mut out);
                out
            }
            Buf::Quant { codes, absmax } => {
                let mut out = vec![0.0; codes.len()];
                map.dequantize(codes, absmax, &mut out);
                out
            }
        }
    }
}

/// An optimizer stepping parameters stored as `P`, whatever its state storage: [`Mixed`]
/// (half parameters with `f32` or half state) and [`Blockwise8`] (8-bit state). What adapters
/// over other tensor libraries need (`rmsprop-candle` steps candle's bf16/f16 variables
/// through it); `f32` and `f64` optimizers implement [`Optimizer`](crate::Optimizer) instead.
///
/// [`Mixed`]: crate::mixed::Mixed
/// [`Blockwise8`]: crate::blockwise::Blockwise8
///
/// # Examples
/// ```
/// use rmsprop::blockwise::Blockwise8;
/// use rmsprop::storage::StorageOptimizer;
/// use rmsprop::RmsPropConfig;
/// fn train<O: StorageOptimizer<f32>>(opt: &mut O, w: &mut [f32]) {
///     let g = vec![0.5f32; w.len()];
///     opt.step(&mut [w], &[&g]).unwrap();
/// }
/// let mut opt: Blockwise8<RmsPropConfig> = Blockwise8::new(RmsPropConfig::pytorch(), 0).unwrap();
/// let mut w = vec![1.0f32; 300];
/// train(&mut opt, &mut w);
/// assert_eq!(StorageOptimizer::steps(&opt), 1);
/// assert!(w.iter().all(|x| *x < 1.0));
/// ```
pub trait StorageOptimizer<P: Param>: Send {
    /// The algorithm's name (`"rmsprop"`, `"adam"`, ...).
    fn name(&self) -> &'static str;
    /// One step: every parameter tensor updated from its gradient.
    ///
    /// # Errors
    /// Wrong counts or lengths, or a non-finite gradient under
    /// [`NonFinitePolicy::Error`]; a failed or skipped step changes nothing (but the skipped
    /// count).
    fn step(&mut self, params: &mut [&mut [P]], grads: &[&[P]]) -> Result<()>;
    /// The learning rate.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate.
    ///
    /// # Errors
    /// A rate that is not finite and `>= 0`; nothing changes then.
    fn set_learning_rate(&mut self, lr: f64) -> Result<()>;
    /// Successful steps.
    fn steps(&self) -> u64;
    /// Sets the threads.
    fn set_execution(&mut self, execution: Execution);
}

/// A boxed storage optimizer is one (so adapters can hold `Box<dyn StorageOptimizer<P>>`).
impl<P: Param, O: StorageOptimizer<P> + ?Sized> StorageOptimizer<P> for Box<O> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn step(&mut self, params: &mut [&mut [P]], grads: &[&[P]]) -> Result<()> {
        (**self).step(params, grads)
    }
    fn learning_rate(&self) -> f64 {
        (**self).learning_rate()
    }
    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        (**self).set_learning_rate(lr)
    }
    fn steps(&self) -> u64 {
        (**self).steps()
    }
    fn set_execution(&mut self, execution: Execution) {
        (**self).set_execution(execution)
    }
}

/// A [`StorageOptimizer`] that writes and reads its own checkpoints, holding the parameters
/// too when asked, so one file restores a model and its optimizer: [`Mixed`] and
/// [`Blockwise8`] (through their `to_bytes_with`/`from_bytes_with`). Adapters hold
/// `Box<dyn StorageCheckpoint<P>>` to save whatever storage they step.
///
/// [`Mixed`]: crate::mixed::Mixed
/// [`Blockwise8`]: crate::blockwise::Blockwise8
///
/// # Examples
/// ```
/// use rmsprop::blockwise::Blockwise8;
/// use rmsprop::storage::StorageCheckpoint;
/// use rmsprop::RmsPropConfig;
/// let mut opt: Box<dyn StorageCheckpoint<f32>> =
///     Box::new(Blockwise8::<RmsPropConfig, f32>::new(RmsPropConfig::pytorch(), 0).unwrap());
/// let (mut p, g) = (vec![1.0f32; 300], vec![0.5f32; 300]);
/// opt.step(&mut [&mut p], &[&g]).unwrap();
/// let bytes = opt.checkpoint_bytes(Some(&[&p])).unwrap();
/// let mut again: Box<dyn StorageCheckpoint<f32>> =
///     Box::new(Blockwise8::<RmsPropConfig, f32>::new(RmsPropConfig::pytorch(), 0).unwrap());
/// let params = again.restore_bytes(&bytes).unwrap();
/// assert_eq!(params, Some(vec![p]));
/// assert_eq!(again.steps(), 1);
/// assert_eq!(again.config_json()["lr"], 0.01);
/// ```
#[cfg(feature = "checkpoint")]
pub trait StorageCheckpoint<P: Param>: StorageOptimizer<P> {
    /// The checkpoint as bytes, with `params` when given.
    ///
    /// # Errors
    /// Only if safetensors refuses to serialize.
    fn checkpoint_bytes(
        &self,
        params: Option<&[&[P]]>,
    ) -> core::result::Result<Vec<u8>, crate::checkpoint::CheckpointError>;
    /// Restores from `bytes`, returning the parameters they hold (`None` when none); a refused
    /// file changes nothing.
    ///
    /// # Errors
    /// A [`CheckpointError`](crate::checkpoint::CheckpointError) naming what does not fit.
    #[allow(clippy::type_complexity)]
    fn restore_bytes(
        &mut self,
        bytes: &[u8],
    ) -> core::result::Result<Option<Vec<Vec<P>>>, crate::checkpoint::CheckpointError>;
    /// The configuration, as its JSON value.
    fn config_json(&self) -> serde_json::Value;
}

#[cfg(feature = "checkpoint")]
impl<P: Param, O: StorageCheckpoint<P> + ?Sized> StorageCheckpoint<P> for Box<O> {
    fn checkpoint_bytes(
        &self,
        params: Option<&[&[P]]>,
    ) -> core::result::Result<Vec<u8>, crate::checkpoint::CheckpointError> {
        (**self).checkpoint_bytes(params)
    }
    fn restore_bytes(
        &mut self,
        bytes: &[u8],
    ) -> core::result::Result<Option<Vec<Vec<P>>>, crate::checkpoint::CheckpointError> {
        (**self).restore_bytes(bytes)
    }
    fn config_json(&self) -> serde_json::Value {
        (**self).config_json()
    }
}

/// [`StorageOptimizer`] for a type with an `engine` field, and [`StorageCheckpoint`] (feature
/// `checkpoint`) for one with `to_bytes_with`/`from_bytes_with`.
macro_rules! storage_optimizer {
    ($ty:ident, $p:ident: $bound:path) => {
        impl<A: crate::Algorithm, $p: $bound> crate::storage::StorageOptimizer<$p> for $ty<A, $p> {
            fn name(&self) -> &'static str {
                self.engine.inner.config().name()
            }
            fn step(&mut self, params: &mut [&mut [$p]], grads: &[&[$p]]) -> crate::Result<()> {
                self.engine.step(params, grads)
            }
            fn learning_rate(&self) -> f64 {
                self.engine.inner.config().lr()
            }
            fn set_learning_rate(&mut self, lr: f64) -> crate::Result<()> {
                crate::Optimizer::set_learning_rate(&mut self.engine.inner, lr)
            }
            fn steps(&self) -> u64 {
                self.engine.steps
            }
            fn set_execution(&mut self, execution: crate::Execution) {
                self.engine.exec = execution;
            }
        }

        #[cfg(feature = "checkpoint")]
        impl<A, $p> crate::storage::StorageCheckpoint<$p> for $ty<A, $p>
        where
            A: crate::Algorithm + serde::Serialize + serde::de::DeserializeOwned,
            $p: $bound,
        {
            fn checkpoint_bytes(
                &self,
                params: Option<&[&[$p]]>,
            ) -> core::result::Result<Vec<u8>, crate::checkpoint::CheckpointError> {
                $ty::to_bytes_with(self, params)
            }
            fn restore_bytes(
                &mut self,
                bytes: &[u8],
            ) -> core::result::Result<Option<Vec<Vec<$p>>>, crate::checkpoint::CheckpointError>
            {
                $ty::from_bytes_with(self, bytes)
            }
            fn config_json(&self) -> serde_json::Value {
                serde_json::to_value(self.config()).expect("configurations serialize")
            }
        }
    };
}
pub(crate) use storage_optimizer;

/// How state is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "half"), allow(dead_code))]
pub(crate) enum Plan {
    /// Every buffer in `f32`.
    Wide,
    /// Every buffer in the parameter's type.
    Narrow,
    /// Every buffer in 8 bits, but tensors under `min_size` elements in `f32`.
    Quant { min_size: usize },
}

/// One tensor's state.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Slot<P> {
    pub step: u64,
    pub len: usize,
    pub bufs: Vec<Buf<P>>,
    pub master: Option<Vec<f32>>,
}

/// The engine: an algorithm, its storage plan and its state.
#[derive(Clone, Debug)]
pub(crate) struct Engine<A: Algorithm, P: Param> {
    pub inner: Optim<A, f32>,
    pub kernel: Kernel<f32, A::Scalars<f32>>,
    pub maps: Vec<&'static QuantMap>,
    pub plan: Plan,
    pub master: bool,
    pub rounding: Rounding,
    pub exec: Execution,
    pub policy: NonFinitePolicy,
    pub tensors: Vec<Slot<P>>,
    pub steps: u64,
    pub skipped: u64,
}

impl<A: Algorithm, P: Param> Engine<A, P> {
    /// Builds the engine after validating `config`.
    pub fn new(config: A, plan: Plan, master: bool, rounding: Rounding) -> Result<Self> {
        let kernel = config.kernel::<f32>();
        let inner = Optim::new(config)?;
        let maps = inner
            .layout()
            .buffers()
            .iter()
            .map(|b| map_for(b.name))
            .collect();
        Ok(Self {
            inner,
            kernel,
            maps,
            plan,
            master,
            rounding,
            exec: Execution::sequential(),
            policy: NonFinitePolicy::Error,
            tensors: Vec::new(),
            steps: 0,
            skipped: 0,
        })
    }

    /// The algorithm's buffer names, in the kernels' order (checkpoints name tensors by them).
    #[cfg(feature = "checkpoint")]
    pub fn buffer_names(&self) -> Vec<&'static str> {
        self.inner
            .layout()
            .buffers()
            .iter()
            .map(|b| b.name)
            .collect()
    }

    /// Bytes of state (buffers and master copies).
    pub fn state_bytes(&self) -> usize {
        self.tensors
            .iter()
            .map(|t| {
                t.bufs.iter().map(Buf::bytes).sum::<usize>()
                    + t.master.as_ref().map_or(0, |m| 4 * m.len())
            })
            .sum()
    }

    /// Buffer `name` of tensor `tensor` as `f32`.
    pub fn buffer(&self, tensor: usize, name: &str) -> Option<Vec<f32>> {
        let k = self.inner.layout().index_of(name)?;
        let t = self.tensors.get(tensor)?;
        Some(t.bufs[k].to_f32(self.maps[k]))
    }

    /// Checks counts, lengths and (unless the policy propagates) finiteness: `Ok(false)` for a
    /// step to skip.
    pub fn screen(&mut self, params: &[&mut [P]], grads: &[&[P]]) -> Result<bool> {
        let tensors = &self.tensors;
        check_step(params, grads, tensors.len(), |i| tensors[i].len)?;
        if self.policy == NonFinitePolicy::Propagate {
            return Ok(true);
        }
        let isa = self.exec.isa();
        if self.exec.all_of(grads, &|g: &[P]| P::all_finite(isa, g)) {
            return Ok(true);
        }
        for (index, g) in grads.iter().enumerate() {
            if P::all_finite(isa, g) {
                continue;
            }
            if self.policy == NonFinitePolicy::Skip {
                self.skipped += 1;
                return Ok(false);
            }
            let element = g.iter().position(|x| !x.to_f64().is_finite()).unwrap_or(0);
            return Err(Error::NonFiniteGradient {
                index,
                element,
                value: g[element].to_f64(),
            });
        }
        Ok(true)
    }

    /// One step (see the [module docs](self)). A refused or skipped step changes nothing (but
    /// the skipped count).
    pub fn step(&mut self, params: &mut [&mut [P]], grads: &[&[P]]) -> Result<()> {
        if !self.screen(params, grads)? {
            return Ok(());
        }
        if self.tensors.is_empty() {
            self.tensors = params.iter().map(|p| self.new_slot(p)).collect();
        }
        let config = self.inner.config();
        for (t, ((p, g), slot)) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.tensors)
            .enumerate()
        {
            let scalars = config.scalars::<f32>(slot.step + 1);
            let job = Job {
                kernel: self.kernel,
                isa: self.exec.isa(),
                scalars: &scalars,
                maps: &self.maps,
                rounding: self.rounding,
                step: self.steps,
                tensor: t as u64,
            };
            let bufs: Vec<BufSlice<'_, P>> = slot.bufs.iter_mut().map(BufSlice::of).collect();
            let work = Work {
                p,
                g,
                bufs,
                master: slot.master.as_deref_mut(),
                offset: 0,
            };
            #[cfg(feature = "parallel")]
            if let Some(pool) = self.exec.pool() {
                if self.exec.parallel_for(work.p.len()) {
                    pool.install(|| job.split(work));
                    slot.step += 1;
                    continue;
                }
            }
            job.run(work);
            slot.step += 1;
        }
        self.steps += 1;
        Ok(())
    }

    fn new_slot(&self, p: &[P]) -> Slot<P> {
        let len = p.len();
        let specs = self.inner.layout().buffers();
        let bufs = specs
            .iter()
            .zip(&self.maps)
            .map(|(spec, map)| {
                let init = spec.init as f32;
                match self.plan {
                    Plan::Quant { min_size } if len >= min_size => {
                        let mut codes = vec![0u8; len];
                        let mut absmax = vec![0.0f32; len.div_ceil(BLOCK)];
                        if init != 0.0 {
                            map.quantize(&vec![init; len], &mut codes, &mut absmax);
                        }
                        Buf::Quant { codes, absmax }
                    }
                    Plan::Narrow => {
                        let mut v = vec![P::default(); len];
                        P::narrow(
                            &vec![init; len],
                            &mut v,
                            Rounding::Nearest,
                            Place {
                                step: 0,
                                tensor: 0,
                                offset: 0,
                            },
                        );
                        Buf::Narrow(v)
                    }
                    _ => Buf::Wide(vec![init; len]),
                }
            })
            .collect();
        Slot {
            step: 0,
            len,
            bufs,
            master: self.master.then(|| {
                let mut m = vec![0.0; len];
                P::widen(p, &mut m);
                m
            }),
        }
    }
}

/// A stretch of one state buffer.
enum BufSlice<'a, P> {
    Wide(&'a mut [f32]),
    Narrow(&'a mut [P]),
    Quant {
        codes: &'a mut [u8],
        absmax: &'a mut [f32],
    },
}

impl<'a, P> BufSlice<'a, P> {
    fn of(b: &'a mut Buf<P>) -> Self {
        match b {
            Buf::Wide(v) => BufSlice::Wide(v),
            Buf::Narrow(v) => BufSlice::Narrow(v),
            Buf::Quant { codes, absmax } => BufSlice::Quant { codes, absmax },
        }
    }

    /// Splits at element `mid` (a multiple of [`BLOCK`]).
    #[cfg(feature = "parallel")]
    fn split_at(self, mid: usize) -> (Self, Self) {
        match self {
            BufSlice::Wide(v) => {
                let (a, b) = v.split_at_mut(mid);
                (BufSlice::Wide(a), BufSlice::Wide(b))
            }
            BufSlice::Narrow(v) => {
                let (a, b) = v.split_at_mut(mid);
                (BufSlice::Narrow(a), BufSlice::Narrow(b))
            }
            BufSlice::Quant { codes, absmax } => {
                let (ca, cb) = codes.split_at_mut(mid);
                let (ma, mb) = absmax.split_at_mut(mid / BLOCK);
                (
                    BufSlice::Quant {
                        codes: ca,
                        absmax: ma,
                    },
                    BufSlice::Quant {
                        codes: cb,
                        absmax: mb,
                    },
                )
            }
        }
    }
}

/// A stretch of one tensor: parameters, gradients, state, master copy, and where it starts.
struct Work<'a, P> {
    p: &'a mut [P],
    g: &'a [P],
    bufs: Vec<BufSlice<'a, P>>,
    master: Option<&'a mut [f32]>,
    offset: usize,
}

/// What every chunk of one tensor's step shares.
struct Job<'s, S> {
    kernel: Kernel<f32, S>,
    isa: Isa,
    scalars: &'s S,
    maps: &'s [&'static QuantMap],
    rounding: Rounding,
    step: u64,
    tensor: u64,
}

thread_local! {
    /// Each thread's f32 chunk buffers: parameters, gradients, then one per state buffer.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl<S: Copy + Send + Sync> Job<'_, S> {
    /// Halves `work` (at a chunk boundary) until a half is a few chunks, the halves on the
    /// pool's threads.
    #[cfg(feature = "parallel")]
    fn split<P: Param>(&self, work: Work<'_, P>) {
        let len = work.p.len();
        if len <= 4 * CHUNK {
            return self.run(work);
        }
        let mid = (len / 2).div_ceil(CHUNK) * CHUNK;
        let (pa, pb) = work.p.split_at_mut(mid);
        let (ga, gb) = work.g.split_at(mid);
        let (ba, bb): (Vec<_>, Vec<_>) = work.bufs.into_iter().map(|b| b.split_at(mid)).unzip();
        let (ma, mb) = match work.master {
            Some(m) => {
                let (a, b) = m.split_at_mut(mid);
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        let left = Work {
            p: pa,
            g: ga,
            bufs: ba,
            master: ma,
            offset: work.offset,
        };
        let right = Work {
            p: pb,
            g: gb,
            bufs: bb,
            master: mb,
            offset: work.offset + mid,
        };
        rayon::join(|| self.split(left), || self.split(right));
    }

    /// Steps `work` chunk by chunk on this thread.
    fn run<P: Param>(&self, mut work: Work<'_, P>) {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let need = (2 + work.bufs.len()) * CHUNK;
            if scratch.len() < need {
                scratch.resize(need, 0.0);
            }
            let (p32, rest) = scratch.split_at_mut(CHUNK);
            let (g32, s32) = rest.split_at_mut(CHUNK);
            #[cfg(target_arch = "x86_64")]
            {
                // The conversions between storage and f32 compiled with AVX2 too (the kernel
                // and the quantizer choose their own instruction set).
                #[target_feature(enable = "avx2")]
                fn avx2<S: Copy + Send + Sync, P: Param>(
                    job: &Job<'_, S>,
                    work: &mut Work<'_, P>,
                    p32: &mut [f32],
                    g32: &mut [f32],
                    s32: &mut [f32],
                ) {
                    job.chunks(work, p32, g32, s32)
                }
                if self.isa == Isa::Avx2 && std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked just above).
                    return unsafe { avx2(self, &mut work, p32, g32, s32) };
                }
            }
            self.chunks(&mut work, p32, g32, s32)
        });
    }

    /// Every chunk of `work`, in order.
    #[inline(always)]
    fn chunks<P: Param>(
        &self,
        work: &mut Work<'_, P>,
        p32: &mut [f32],
        g32: &mut [f32],
        s32: &mut [f32],
    ) {
        let mut start = 0;
        while start < work.p.len() {
            let end = (start + CHUNK).min(work.p.len());
            self.chunk(work, start, end, p32, g32, s32);
            start = end;
        }
    }

    /// One chunk: to `f32`, the kernel, back to storage.
    #[inline(always)]
    fn chunk<P: Param>(
        &self,
        work: &mut Work<'_, P>,
        start: usize,
        end: usize,
        p32: &mut [f32],
        g32: &mut [f32],
        s32: &mut [f32],
    ) {
        let n = end - start;
        let (b0, b1) = (start / BLOCK, end.div_ceil(BLOCK));
        let g: &[f32] = match P::as_f32(&work.g[start..end]) {
            Some(g) => g,
            None => {
                P::widen(&work.g[start..end], &mut g32[..n]);
                &g32[..n]
            }
        };
        let buffers = work.bufs.len();
        let place = Place {
            step: self.step,
            tensor: self.tensor,
            offset: work.offset + start,
        };
        {
            // Each buffer's chunk as f32: in place when stored as f32, else in scratch.
            let mut list: [&mut [f32]; MAX_BUFFERS] = Default::default();
            for (k, ((slot, b), wide)) in list
                .iter_mut()
                .zip(work.bufs.iter_mut())
                .zip(s32.chunks_mut(CHUNK))
                .enumerate()
            {
                let wide = &mut wide[..n];
                *slot = match b {
                    BufSlice::Wide(v) => &mut v[start..end],
                    BufSlice::Narrow(v) => {
                        P::widen(&v[start..end], wide);
                        wide
                    }
                    BufSlice::Quant { codes, absmax } => {
                        self.maps[k].dequantize(&codes[start..end], &absmax[b0..b1], wide);
                        wide
                    }
                };
            }
            // f32 parameters without a master copy: the kernel works in place.
            let in_place = match (&work.master, P::as_f32_mut(&mut work.p[start..end])) {
                (None, Some(p)) => {
                    (self.kernel)(self.isa, self.scalars, p, g, &mut list[..buffers]);
                    true
                }
                _ => false,
            };
            if !in_place {
                let p32 = &mut p32[..n];
                match &work.master {
                    Some(m) => p32.copy_from_slice(&m[start..end]),
                    None => P::widen(&work.p[start..end], p32),
                }
                (self.kernel)(self.isa, self.scalars, p32, g, &mut list[..buffers]);
                if let Some(m) = &mut work.master {
                    m[start..end].copy_from_slice(p32);
                }
                P::narrow(p32, &mut work.p[start..end], self.rounding, place);
            }
        }
        for (k, (b, wide)) in work.bufs.iter_mut().zip(s32.chunks(CHUNK)).enumerate() {
            let wide = &wide[..n];
            match b {
                BufSlice::Wide(_) => {}
                BufSlice::Narrow(v) => P::narrow(
                    wide,
                    &mut v[start..end],
                    Rounding::Nearest,
                    Place { offset: 0, ..place },
                ),
                BufSlice::Quant { codes, absmax } => {
                    self.maps[k].quantize(wide, &mut codes[start..end], &mut absmax[b0..b1])
                }
            }
        }
    }
}
