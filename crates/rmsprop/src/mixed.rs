//! Half-precision parameters: [`Mixed`] steps `bf16` or `f16` parameters and gradients with
//! any [`Algorithm`] computed in `f32` (as PyTorch's CPU kernels compute half tensors), its state
//! stored in `f32` or in the half type, the result rounded to nearest or stochastically, with an
//! optional `f32` master copy of the parameters.
//!
//! A step converts a chunk of each tensor to `f32` (a few thousand elements, so it stays in
//! cache), runs the algorithm's fused `f32` kernel on it (the one
//! [`Algorithm::kernel`] selects), and rounds the chunk back: one read
//! and one write of the half data per step, no `f32` copy of a whole tensor. Chunks of large
//! tensors run on the [`Execution`]'s threads.
//!
//! ```
//! use half::bf16;
//! use rmsprop::mixed::{Mixed, MixedOptions, Rounding};
//! use rmsprop::RmsPropConfig;
//!
//! let mut opt = Mixed::<_, bf16>::new(RmsPropConfig::pytorch(), MixedOptions::default()).unwrap();
//! let mut w: Vec<bf16> = [1.0f32, -2.0, 3.0].iter().map(|&x| bf16::from_f32(x)).collect();
//! let g: Vec<bf16> = [0.5f32, 0.5, -0.5].iter().map(|&x| bf16::from_f32(x)).collect();
//! opt.step(&mut [&mut w], &[&g]).unwrap();
//! assert!(w[0].to_f32() < 1.0 && w[2].to_f32() > 3.0);
//! ```

use std::cell::RefCell;

use crate::algorithm::Algorithm;
use crate::check::check_step;
use crate::kernel::{fast::Isa, Kernel, MAX_BUFFERS};
use crate::{Error, Execution, NonFinitePolicy, Optim, Optimizer, Result};

/// Elements per chunk: parameters, gradients and state of one chunk in `f32` stay in L1/L2.
const CHUNK: usize = 2048;

#[cfg(feature = "checkpoint")]
mod checkpoint;
#[cfg(feature = "checkpoint")]
pub use checkpoint::{MIXED_FORMAT, MIXED_VERSION};

mod sealed {
    pub trait Sealed {}
    impl Sealed for half::bf16 {}
    impl Sealed for half::f16 {}
}

/// A 16-bit storage type for parameters, gradients and (optionally) state: [`half::bf16`] or
/// [`half::f16`].
pub trait Half:
    sealed::Sealed + Copy + Default + Send + Sync + PartialEq + core::fmt::Debug + 'static
{
    /// `"bfloat16"` or `"float16"`.
    const DTYPE: &'static str;
    /// The exact `f32` value.
    fn to_f32(self) -> f32;
    /// The nearest value (ties to even).
    fn from_f32(x: f32) -> Self;
    /// The raw bits.
    fn to_bits(self) -> u16;
    /// The value with these raw bits.
    fn from_bits(bits: u16) -> Self;
    /// The exponent bits: a value is infinite or NaN when all of them are set.
    const EXPONENT: u16;
    /// Whether every value is finite: a branch-free pass over the bits (it vectorizes).
    fn all_finite(values: &[Self]) -> bool {
        values.chunks(4096).all(|c| {
            !c.iter().fold(false, |bad, x| {
                bad | (x.to_bits() & Self::EXPONENT == Self::EXPONENT)
            })
        })
    }
}

impl Half for half::bf16 {
    const DTYPE: &'static str = "bfloat16";
    const EXPONENT: u16 = 0x7f80;
    #[inline]
    fn to_f32(self) -> f32 {
        f32::from_bits((half::bf16::to_bits(self) as u32) << 16)
    }
    /// Round to nearest even on the bits, without branches (so that chunk loops vectorize);
    /// NaN stays a quiet NaN. The same values as [`half::bf16::from_f32`] (tested).
    #[inline]
    fn from_f32(x: f32) -> Self {
        let b = x.to_bits();
        let rounded = (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16;
        let nan = ((b >> 16) as u16) | 0x0040;
        half::bf16::from_bits(if x.is_nan() { nan } else { rounded })
    }
    fn to_bits(self) -> u16 {
        half::bf16::to_bits(self)
    }
    fn from_bits(bits: u16) -> Self {
        half::bf16::from_bits(bits)
    }
}

impl Half for half::f16 {
    const DTYPE: &'static str = "float16";
    const EXPONENT: u16 = 0x7c00;
    fn to_f32(self) -> f32 {
        half::f16::to_f32(self)
    }
    fn from_f32(x: f32) -> Self {
        half::f16::from_f32(x)
    }
    fn to_bits(self) -> u16 {
        half::f16::to_bits(self)
    }
    fn from_bits(bits: u16) -> Self {
        half::f16::from_bits(bits)
    }
}

/// How updated parameters are rounded to the half type.
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

/// Where the optimizer state lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateStorage {
    /// In `f32`, the compute type: 4 bytes per buffer element.
    F32,
    /// In the half type (rounded to nearest after each step, as PyTorch keeps the state of half
    /// parameters): 2 bytes per buffer element.
    Half,
}

/// How [`Mixed`] stores and rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MixedOptions {
    /// The state's storage (default `f32`).
    pub state: StateStorage,
    /// How parameters are rounded (default nearest).
    pub rounding: Rounding,
    /// Keep an `f32` master copy of the parameters in the optimizer state (4 more bytes per
    /// parameter): the algorithm steps the master copy and the half parameters are its rounding,
    /// so no update is ever lost (default off).
    pub master: bool,
}

impl Default for MixedOptions {
    fn default() -> Self {
        Self {
            state: StateStorage::F32,
            rounding: Rounding::Nearest,
            master: false,
        }
    }
}

/// One tensor's state.
#[derive(Clone, Debug, PartialEq)]
struct Tensor<H> {
    step: u64,
    len: usize,
    wide: Vec<Vec<f32>>,
    narrow: Vec<Vec<H>>,
    master: Option<Vec<f32>>,
}

/// An [`Algorithm`] stepping half-precision parameters (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Mixed<A: Algorithm, H: Half> {
    inner: Optim<A, f32>,
    kernel: Kernel<f32, A::Scalars<f32>>,
    exec: Execution,
    options: MixedOptions,
    policy: NonFinitePolicy,
    tensors: Vec<Tensor<H>>,
    steps: u64,
    skipped: u64,
}

impl<A: Algorithm, H: Half> Mixed<A, H> {
    /// Builds the optimizer after validating `config`.
    ///
    /// # Errors
    /// As [`Algorithm::validate`].
    pub fn new(config: A, options: MixedOptions) -> Result<Self> {
        let kernel = config.kernel::<f32>();
        // The checked configuration, its layout and learning rate; steps call `kernel` directly.
        let inner = Optim::new(config)?;
        Ok(Self {
            inner,
            kernel,
            exec: Execution::sequential(),
            options,
            policy: NonFinitePolicy::Error,
            tensors: Vec::new(),
            steps: 0,
            skipped: 0,
        })
    }

    /// Sets what a step does with a non-finite gradient (default [`NonFinitePolicy::Error`]).
    pub fn with_non_finite(mut self, policy: NonFinitePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &A {
        self.inner.config()
    }

    /// The storage options.
    pub fn options(&self) -> MixedOptions {
        self.options
    }

    /// Sets the threads (an [`Execution`]; its non-finite policy is not used, see
    /// [`with_non_finite`](Mixed::with_non_finite)). The chunks of large tensors are spread over
    /// them; every setting gives the same bits.
    pub fn set_execution(&mut self, execution: Execution) {
        self.exec = execution;
    }

    /// Sets the learning rate.
    ///
    /// # Errors
    /// A rate that is not finite and `>= 0`; nothing changes then.
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        self.inner.set_learning_rate(lr)
    }

    /// Successful steps.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Steps skipped under [`NonFinitePolicy::Skip`].
    pub fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    /// Bytes of optimizer state (buffers and master copy).
    pub fn state_bytes(&self) -> usize {
        self.tensors
            .iter()
            .map(|t| {
                t.wide.iter().map(|b| b.len() * 4).sum::<usize>()
                    + t.narrow.iter().map(|b| b.len() * 2).sum::<usize>()
                    + t.master.as_ref().map_or(0, |m| m.len() * 4)
            })
            .sum()
    }

    /// Buffer `name` of tensor `tensor`, as `f32` values (`None` before the first step or for a
    /// buffer the algorithm does not keep).
    pub fn buffer(&self, tensor: usize, name: &str) -> Option<Vec<f32>> {
        let k = self.inner.layout().index_of(name)?;
        let t = self.tensors.get(tensor)?;
        Some(match self.options.state {
            StateStorage::F32 => t.wide[k].clone(),
            StateStorage::Half => t.narrow[k].iter().map(|x| x.to_f32()).collect(),
        })
    }

    /// The `f32` master copy of tensor `tensor` (with [`MixedOptions::master`]).
    pub fn master(&self, tensor: usize) -> Option<&[f32]> {
        self.tensors.get(tensor)?.master.as_deref()
    }

    /// One step: every parameter tensor updated from its gradient.
    ///
    /// # Errors
    /// As [`Optimizer::step`]: wrong counts or lengths, or a non-finite gradient under
    /// [`NonFinitePolicy::Error`]. A failed or skipped step changes nothing (but the skipped
    /// count).
    pub fn step(&mut self, params: &mut [&mut [H]], grads: &[&[H]]) -> Result<()> {
        let tensors = &self.tensors;
        check_step(params, grads, tensors.len(), |i| tensors[i].len)?;
        if self.policy != NonFinitePolicy::Propagate && !grads.iter().all(|g| H::all_finite(g)) {
            for (index, g) in grads.iter().enumerate() {
                if let Some(element) = g.iter().position(|x| !x.to_f32().is_finite()) {
                    if self.policy == NonFinitePolicy::Skip {
                        self.skipped += 1;
                        return Ok(());
                    }
                    return Err(Error::NonFiniteGradient {
                        index,
                        element,
                        value: g[element].to_f32() as f64,
                    });
                }
            }
        }
        if self.tensors.is_empty() {
            self.tensors = params.iter().map(|p| self.new_tensor(p)).collect();
        }
        let buffers = self.inner.layout().buffers().len();
        let config = self.inner.config();
        for (t, ((p, g), state)) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.tensors)
            .enumerate()
        {
            let scalars = config.scalars::<f32>(state.step + 1);
            let job = Job {
                kernel: self.kernel,
                isa: self.exec.isa(),
                scalars: &scalars,
                rounding: self.options.rounding,
                buffers,
                step: self.steps,
                tensor: t as u64,
            };
            let state_slices = match self.options.state {
                StateStorage::F32 => {
                    Slices::Wide(state.wide.iter_mut().map(|b| &mut b[..]).collect())
                }
                StateStorage::Half => {
                    Slices::Narrow(state.narrow.iter_mut().map(|b| &mut b[..]).collect())
                }
            };
            let master = state.master.as_deref_mut();
            #[cfg(feature = "parallel")]
            let len = p.len();
            let work = Work {
                p,
                g,
                state: state_slices,
                master,
                offset: 0,
            };
            #[cfg(feature = "parallel")]
            if let Some(pool) = self.exec.pool() {
                if self.exec.parallel_for(len) {
                    pool.install(|| job.split(work));
                    state.step += 1;
                    continue;
                }
            }
            job.run(work);
            state.step += 1;
        }
        self.steps += 1;
        Ok(())
    }

    fn new_tensor(&self, p: &[H]) -> Tensor<H> {
        let len = p.len();
        let specs = self.inner.layout().buffers();
        let (wide, narrow) = match self.options.state {
            StateStorage::F32 => (
                specs.iter().map(|b| vec![b.init as f32; len]).collect(),
                Vec::new(),
            ),
            StateStorage::Half => (
                Vec::new(),
                specs
                    .iter()
                    .map(|b| vec![H::from_f32(b.init as f32); len])
                    .collect(),
            ),
        };
        Tensor {
            step: 0,
            len,
            wide,
            narrow,
            master: self
                .options
                .master
                .then(|| p.iter().map(|x| x.to_f32()).collect()),
        }
    }
}

/// The state buffers of a stretch of one tensor, in the storage type.
enum Slices<'a, H> {
    Wide(Vec<&'a mut [f32]>),
    Narrow(Vec<&'a mut [H]>),
}

impl<H> Slices<'_, H> {
    #[cfg(feature = "parallel")]
    fn split_at(self, mid: usize) -> (Self, Self) {
        fn halves<X>(v: Vec<&mut [X]>, mid: usize) -> (Vec<&mut [X]>, Vec<&mut [X]>) {
            v.into_iter().map(|b| b.split_at_mut(mid)).unzip()
        }
        match self {
            Slices::Wide(v) => {
                let (a, b) = halves(v, mid);
                (Slices::Wide(a), Slices::Wide(b))
            }
            Slices::Narrow(v) => {
                let (a, b) = halves(v, mid);
                (Slices::Narrow(a), Slices::Narrow(b))
            }
        }
    }
}

/// A stretch of one tensor: parameters, gradients, state, master copy, and where it starts.
struct Work<'a, H> {
    p: &'a mut [H],
    g: &'a [H],
    state: Slices<'a, H>,
    master: Option<&'a mut [f32]>,
    offset: usize,
}

/// What every chunk of one tensor's step shares.
struct Job<'s, S> {
    kernel: Kernel<f32, S>,
    isa: Isa,
    scalars: &'s S,
    rounding: Rounding,
    buffers: usize,
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
    fn split<H: Half>(&self, work: Work<'_, H>) {
        let len = work.p.len();
        if len <= 4 * CHUNK {
            return self.run(work);
        }
        let mid = (len / 2).div_ceil(CHUNK) * CHUNK;
        let (pa, pb) = work.p.split_at_mut(mid);
        let (ga, gb) = work.g.split_at(mid);
        let (sa, sb) = work.state.split_at(mid);
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
            state: sa,
            master: ma,
            offset: work.offset,
        };
        let right = Work {
            p: pb,
            g: gb,
            state: sb,
            master: mb,
            offset: work.offset + mid,
        };
        rayon::join(|| self.split(left), || self.split(right));
    }

    /// Steps `work` chunk by chunk on this thread.
    fn run<H: Half>(&self, mut work: Work<'_, H>) {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let need = (2 + self.buffers) * CHUNK;
            if scratch.len() < need {
                scratch.resize(need, 0.0);
            }
            let (p32, rest) = scratch.split_at_mut(CHUNK);
            let (g32, s32) = rest.split_at_mut(CHUNK);
            let mut start = 0;
            while start < work.p.len() {
                let end = (start + CHUNK).min(work.p.len());
                self.chunk(&mut work, start, end, p32, g32, s32);
                start = end;
            }
        });
    }

    /// One chunk: widen, the f32 kernel, round back.
    fn chunk<H: Half>(
        &self,
        work: &mut Work<'_, H>,
        start: usize,
        end: usize,
        p32: &mut [f32],
        g32: &mut [f32],
        s32: &mut [f32],
    ) {
        let n = end - start;
        let (p32, g32) = (&mut p32[..n], &mut g32[..n]);
        match &work.master {
            Some(m) => p32.copy_from_slice(&m[start..end]),
            None => {
                for (d, s) in p32.iter_mut().zip(&work.p[start..end]) {
                    *d = s.to_f32();
                }
            }
        }
        for (d, s) in g32.iter_mut().zip(&work.g[start..end]) {
            *d = s.to_f32();
        }
        let mut list: [&mut [f32]; MAX_BUFFERS] = Default::default();
        match &mut work.state {
            Slices::Wide(v) => {
                for (slot, b) in list.iter_mut().zip(v.iter_mut()) {
                    *slot = &mut b[start..end];
                }
                (self.kernel)(self.isa, self.scalars, p32, g32, &mut list[..self.buffers]);
            }
            Slices::Narrow(v) => {
                for ((slot, b), wide) in list.iter_mut().zip(v.iter()).zip(s32.chunks_mut(CHUNK)) {
                    let wide = &mut wide[..n];
                    for (x, y) in wide.iter_mut().zip(&b[start..end]) {
                        *x = y.to_f32();
                    }
                    *slot = wide;
                }
                (self.kernel)(self.isa, self.scalars, p32, g32, &mut list[..self.buffers]);
                for (b, wide) in v.iter_mut().zip(list.iter()) {
                    for (x, y) in b[start..end].iter_mut().zip(wide.iter()) {
                        *x = H::from_f32(*y);
                    }
                }
            }
        }
        if let Some(m) = &mut work.master {
            m[start..end].copy_from_slice(p32);
        }
        let out = &mut work.p[start..end];
        match self.rounding {
            Rounding::Nearest => {
                for (d, s) in out.iter_mut().zip(p32.iter()) {
                    *d = H::from_f32(*s);
                }
            }
            Rounding::Stochastic { seed } => {
                let base = work.offset + start;
                for (i, (d, s)) in out.iter_mut().zip(p32.iter()).enumerate() {
                    let bits = random_bits(seed, self.step, self.tensor, (base + i) as u64);
                    *d = round_stochastic(*s, bits);
                }
            }
        }
    }
}

/// 64 random bits for (seed, step, tensor, element): SplitMix64 over a mix of the four.
pub fn random_bits(seed: u64, step: u64, tensor: u64, element: u64) -> u64 {
    let mut z = seed
        ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ tensor.wrapping_mul(0xD1B5_4A32_D192_ED03)
        ^ element.wrapping_mul(0x8CB9_2BA7_2F3D_8DD7);
    for _ in 0..2 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

/// `x` rounded to one of the two half values around it, up with probability (x - below) /
/// (above - below), drawing on `bits` (exact values, infinities and NaN round to nearest).
///
/// # Examples
/// ```
/// use half::bf16;
/// use rmsprop::mixed::round_stochastic;
/// let x = 1.0f32 + 2f32.powi(-9); // a quarter of the way from 1 to the next bf16 (1 + 2^-7)
/// let ups = (0..10_000u64)
///     .filter(|&i| round_stochastic::<bf16>(x, i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_f32() > 1.0)
///     .count();
/// assert!((2_200..2_800).contains(&ups));
/// ```
pub fn round_stochastic<H: Half>(x: f32, bits: u64) -> H {
    let nearest = H::from_f32(x);
    let n = nearest.to_f32();
    if n == x || !x.is_finite() || !n.is_finite() {
        return nearest;
    }
    // The other neighbour: one unit in the last place from `nearest`, towards x.
    let toward_x = |h: H| -> H {
        let b = h.to_bits();
        let negative = b & 0x8000 != 0;
        let magnitude = b & 0x7fff;
        let away_from_zero = (x > n) != negative;
        match (away_from_zero, magnitude) {
            (true, _) => H::from_bits(b + 1),
            (false, 0) => H::from_bits(0x8001 ^ (b & 0x8000)), // past zero: the smallest of the other sign
            (false, _) => H::from_bits(b - 1),
        }
    };
    let other = toward_x(nearest);
    let (below, above) = if n < x {
        (nearest, other)
    } else {
        (other, nearest)
    };
    let (lo, hi) = (below.to_f32() as f64, above.to_f32() as f64);
    let p = (x as f64 - lo) / (hi - lo);
    let u = (bits >> 11) as f64 / (1u64 << 53) as f64;
    if u < p {
        above
    } else {
        below
    }
}
