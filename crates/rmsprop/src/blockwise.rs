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

use std::cell::RefCell;
use std::sync::OnceLock;

use crate::algorithm::Algorithm;
use crate::check::check_step;
use crate::kernel::{fast::Isa, Kernel, MAX_BUFFERS};
use crate::{Error, Execution, NonFinitePolicy, Optim, Optimizer, Result};

#[cfg(feature = "checkpoint")]
mod checkpoint;
#[cfg(feature = "checkpoint")]
pub use checkpoint::{BLOCKWISE_FORMAT, BLOCKWISE_VERSION};

/// Elements per block: one `absmax` per block (bitsandbytes' CPU block size).
pub const BLOCK: usize = 256;

/// Bins of `[-1, 1]` in the quantization lookup table.
const LUT_SIZE: usize = 65536;

/// A dynamic quantization map (256 sorted values in `[-1, 1]`) and the lookup table that
/// quantizes to it.
///
/// # Examples
/// ```
/// use rmsprop::blockwise::QuantMap;
/// let s = QuantMap::signed().code();
/// assert_eq!((s[127], s[255]), (0.0, 1.0));
/// assert!(s[0] < -0.99 && s[0] > -1.0);
/// let u = QuantMap::unsigned().code();
/// assert_eq!((u[0], u[255]), (0.0, 1.0));
/// assert!(s.windows(2).all(|w| w[0] <= w[1]));
/// ```
#[derive(Clone)]
pub struct QuantMap {
    code: [f32; 256],
    lut: Box<[u8; LUT_SIZE]>,
}

impl core::fmt::Debug for QuantMap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("QuantMap")
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

/// `torch.linspace(start, end, n, dtype=float32)` as torch computes it on CPUs with AVX2 or
/// AVX-512: the first half `fma(step, i, start)`, the second `fma(-step, n-1-i, end)`.
fn linspace_f32(start: f32, end: f32, n: usize) -> Vec<f32> {
    let step = (end - start) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| {
            if i < half {
                step.mul_add(i as f32, start)
            } else {
                (-step).mul_add((n - 1 - i) as f32, end)
            }
        })
        .collect()
}

impl QuantMap {
    /// bitsandbytes' `create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)`: for each
    /// exponent `e` of 7, the means of `2^e + 1` (signed; `2^(e+1) + 1` unsigned) points evenly
    /// spaced over `[0.1, 1]`, scaled by `10^(e-6)` (and negated, signed), with 0 and 1; sorted.
    /// Computed in `f32` as torch computes it on AVX2 and AVX-512 machines (its `linspace`
    /// fuses the multiply-add there; on a CPU without vectors torch builds a map that differs
    /// in a few last bits).
    pub fn dynamic(signed: bool) -> Self {
        let mut data: Vec<f32> = Vec::with_capacity(256);
        for e in 0..7 {
            let items = if signed {
                (1 << e) + 1
            } else {
                (1 << (e + 1)) + 1
            };
            let bounds = linspace_f32(0.1, 1.0, items);
            let scale = 10f64.powi(e - 6) as f32;
            for w in bounds.windows(2) {
                let mean = (w[0] + w[1]) / 2.0;
                data.push(mean * scale);
                if signed {
                    data.push(mean * -scale);
                }
            }
        }
        data.push(0.0);
        data.push(1.0);
        data.resize(256, 0.0);
        data.sort_by(f32::total_cmp);
        let mut code = [0.0f32; 256];
        code.copy_from_slice(&data);
        Self::from_code(code)
    }

    /// A map with these 256 sorted values, and its lookup table (bitsandbytes'
    /// `build_quantize_lut`: bin `i` of `[-1, 1]` gets the first code whose midpoint with the
    /// next is not below the bin's value).
    ///
    /// # Panics
    /// If the values are not sorted or not all in `[-1, 1]`.
    pub fn from_code(code: [f32; 256]) -> Self {
        assert!(
            code.windows(2).all(|w| w[0] <= w[1]) && code.iter().all(|c| c.abs() <= 1.0),
            "a quantization map is 256 sorted values in [-1, 1]"
        );
        let mid: Vec<f32> = code.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
        let mut lut: Box<[u8; LUT_SIZE]> = vec![0u8; LUT_SIZE]
            .into_boxed_slice()
            .try_into()
            .expect("LUT_SIZE bytes");
        let mut k = 0;
        for (i, slot) in lut.iter_mut().enumerate() {
            let val = -1.0 + (2.0 * i as f32) / (LUT_SIZE - 1) as f32;
            while k < 255 && mid[k] < val {
                k += 1;
            }
            *slot = k as u8;
        }
        Self { code, lut }
    }

    /// The signed dynamic map (bitsandbytes' `"dynamic"`: every first state).
    pub fn signed() -> &'static Self {
        static MAP: OnceLock<QuantMap> = OnceLock::new();
        MAP.get_or_init(|| Self::dynamic(true))
    }

    /// The unsigned dynamic map (bitsandbytes' `"udynamic"`: Adam's second moment).
    pub fn unsigned() -> &'static Self {
        static MAP: OnceLock<QuantMap> = OnceLock::new();
        MAP.get_or_init(|| Self::dynamic(false))
    }

    /// The 256 values.
    pub fn code(&self) -> &[f32; 256] {
        &self.code
    }

    /// Quantizes `x` block by block: `absmax[b]` the largest magnitude of block `b` and
    /// `codes[i]` the code of `x[i] * (1 / absmax)`; a block of zeros gets absmax 0 and codes 0.
    ///
    /// # Panics
    /// If `codes` is not as long as `x` or `absmax` does not have one value per block.
    pub fn quantize(&self, x: &[f32], codes: &mut [u8], absmax: &mut [f32]) {
        assert_eq!(codes.len(), x.len(), "one code per value");
        assert_eq!(
            absmax.len(),
            x.len().div_ceil(BLOCK),
            "one absmax per block"
        );
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2")]
            fn avx2(map: &QuantMap, x: &[f32], codes: &mut [u8], absmax: &mut [f32]) {
                map.quantize_blocks(x, codes, absmax)
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { avx2(self, x, codes, absmax) };
            }
        }
        self.quantize_blocks(x, codes, absmax)
    }

    #[inline(always)]
    fn quantize_blocks(&self, x: &[f32], codes: &mut [u8], absmax: &mut [f32]) {
        let mut bins = [0u16; BLOCK];
        for ((block, out), m) in x
            .chunks(BLOCK)
            .zip(codes.chunks_mut(BLOCK))
            .zip(absmax.iter_mut())
        {
            // The largest magnitude, compared as bits (the same order for finite and infinite
            // values; a branch-free integer maximum vectorizes).
            let top = f32::from_bits(
                block
                    .iter()
                    .fold(0u32, |a, v| a.max(v.to_bits() & 0x7fff_ffff)),
            );
            *m = top;
            if top == 0.0 {
                out.fill(0);
                continue;
            }
            let inv = 1.0 / top;
            // The bin of each normalized value (a vectorized pass), then the table lookups.
            // (v + 1) * 0.5 is exact; a fused last step would give the same integer part.
            let bins = &mut bins[..block.len()];
            for (b, v) in bins.iter_mut().zip(block) {
                // max/min rather than clamp: a NaN (a state that overflowed under
                // NonFinitePolicy::Propagate) becomes -1, so the conversion below is always in
                // range.
                #[allow(clippy::manual_clamp)]
                let normed = (v * inv).max(-1.0).min(1.0);
                let bin = (normed + 1.0) * 0.5 * (LUT_SIZE - 1) as f32 + 0.5;
                // SAFETY: `bin` is finite and in [0.5, 65535.5], so it fits an i32.
                *b = unsafe { bin.to_int_unchecked::<i32>() } as u16;
            }
            for (c, b) in out.iter_mut().zip(bins.iter()) {
                *c = self.lut[*b as usize];
            }
        }
    }

    /// Dequantizes: `out[i] = map[codes[i]] * absmax[i / BLOCK]`.
    ///
    /// # Panics
    /// If the lengths do not agree as in [`quantize`](QuantMap::quantize).
    pub fn dequantize(&self, codes: &[u8], absmax: &[f32], out: &mut [f32]) {
        assert_eq!(codes.len(), out.len(), "one code per value");
        assert_eq!(
            absmax.len(),
            out.len().div_ceil(BLOCK),
            "one absmax per block"
        );
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2")]
            fn avx2(map: &QuantMap, codes: &[u8], absmax: &[f32], out: &mut [f32]) {
                map.dequantize_blocks(codes, absmax, out)
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { avx2(self, codes, absmax, out) };
            }
        }
        self.dequantize_blocks(codes, absmax, out)
    }

    #[inline(always)]
    fn dequantize_blocks(&self, codes: &[u8], absmax: &[f32], out: &mut [f32]) {
        for ((block, out), m) in codes
            .chunks(BLOCK)
            .zip(out.chunks_mut(BLOCK))
            .zip(absmax.iter())
        {
            for (o, c) in out.iter_mut().zip(block) {
                *o = self.code[*c as usize] * m;
            }
        }
    }
}

/// The map a state buffer is quantized with, by its name, as bitsandbytes chooses: second
/// moments of Adam (`exp_avg_sq`, `max_exp_avg_sq`) on the unsigned map, every other buffer
/// (RMSProp's `square_avg` and Adagrad's `sum` included) on the signed one.
///
/// # Examples
/// ```
/// use rmsprop::blockwise::{map_for, QuantMap};
/// assert!(std::ptr::eq(map_for("exp_avg_sq"), QuantMap::unsigned()));
/// assert!(std::ptr::eq(map_for("square_avg"), QuantMap::signed()));
/// ```
pub fn map_for(buffer: &str) -> &'static QuantMap {
    match buffer {
        "exp_avg_sq" | "max_exp_avg_sq" => QuantMap::unsigned(),
        _ => QuantMap::signed(),
    }
}

/// Tensors below this many elements keep `f32` state by default (bitsandbytes'
/// `min_8bit_size`).
pub const MIN_8BIT_SIZE: usize = 4096;

/// One tensor's state: 8-bit codes and absmax per buffer, or `f32` for a small tensor.
#[derive(Clone, Debug, PartialEq)]
struct Tensor8 {
    step: u64,
    len: usize,
    codes: Vec<Vec<u8>>,
    absmax: Vec<Vec<f32>>,
    wide: Vec<Vec<f32>>,
}

/// Any [`Algorithm`] on `f32` parameters with its state in 8 bits, blockwise (see the
/// [module docs](self)).
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
pub struct Blockwise8<A: Algorithm> {
    inner: Optim<A, f32>,
    kernel: Kernel<f32, A::Scalars<f32>>,
    maps: Vec<&'static QuantMap>,
    min_size: usize,
    exec: Execution,
    policy: NonFinitePolicy,
    tensors: Vec<Tensor8>,
    steps: u64,
    skipped: u64,
}

/// Elements dequantized, stepped and quantized at a time: 8 blocks.
const CHUNK: usize = 8 * BLOCK;

thread_local! {
    /// Each thread's f32 chunk of every state buffer.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl<A: Algorithm> Blockwise8<A> {
    /// Builds the optimizer after validating `config`. Tensors with fewer than `min_8bit_size`
    /// elements keep `f32` state ([`MIN_8BIT_SIZE`] is bitsandbytes' default; 0 quantizes every
    /// tensor).
    ///
    /// # Errors
    /// As [`Algorithm::validate`].
    pub fn new(config: A, min_8bit_size: usize) -> Result<Self> {
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
            min_size: min_8bit_size,
            exec: Execution::sequential(),
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

    /// Sets the threads; every setting gives the same bits (blocks are independent).
    pub fn set_execution(&mut self, execution: Execution) {
        self.exec = execution;
    }

    /// The configuration.
    pub fn config(&self) -> &A {
        self.inner.config()
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

    /// Bytes of optimizer state: one per element and four per block of each 8-bit buffer, four
    /// per element of an `f32` one.
    pub fn state_bytes(&self) -> usize {
        self.tensors
            .iter()
            .map(|t| {
                t.codes.iter().map(Vec::len).sum::<usize>()
                    + 4 * t.absmax.iter().map(Vec::len).sum::<usize>()
                    + 4 * t.wide.iter().map(Vec::len).sum::<usize>()
            })
            .sum()
    }

    /// Buffer `name` of tensor `tensor` as `f32` (dequantized), `None` before the first step or
    /// for a buffer the algorithm does not keep.
    pub fn buffer(&self, tensor: usize, name: &str) -> Option<Vec<f32>> {
        let k = self.inner.layout().index_of(name)?;
        let t = self.tensors.get(tensor)?;
        if !t.wide.is_empty() {
            return Some(t.wide[k].clone());
        }
        let mut out = vec![0.0; t.len];
        self.maps[k].dequantize(&t.codes[k], &t.absmax[k], &mut out);
        Some(out)
    }

    /// The 8-bit codes and block absmax of buffer `name` of tensor `tensor` (`None` for a tensor
    /// whose state is `f32`).
    pub fn quantized(&self, tensor: usize, name: &str) -> Option<(&[u8], &[f32])> {
        let k = self.inner.layout().index_of(name)?;
        let t = self.tensors.get(tensor)?;
        if t.codes.is_empty() {
            return None;
        }
        Some((&t.codes[k], &t.absmax[k]))
    }

    /// One step: every parameter tensor updated from its gradient.
    ///
    /// # Errors
    /// As [`Optimizer::step`]: wrong counts or lengths, or a non-finite gradient under
    /// [`NonFinitePolicy::Error`]. A failed or skipped step changes nothing (but the skipped
    /// count).
    pub fn step(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]]) -> Result<()> {
        let tensors = &self.tensors;
        check_step(params, grads, tensors.len(), |i| tensors[i].len)?;
        if self.policy != NonFinitePolicy::Propagate {
            let isa = self.exec.isa();
            for (index, g) in grads.iter().enumerate() {
                if crate::kernel::fast::all_finite(isa, g) {
                    continue;
                }
                if self.policy == NonFinitePolicy::Skip {
                    self.skipped += 1;
                    return Ok(());
                }
                let element = g.iter().position(|x| !x.is_finite()).unwrap_or(0);
                return Err(Error::NonFiniteGradient {
                    index,
                    element,
                    value: g[element] as f64,
                });
            }
        }
        if self.tensors.is_empty() {
            self.tensors = params.iter().map(|p| self.new_tensor(p.len())).collect();
        }
        let buffers = self.maps.len();
        let config = self.inner.config();
        for ((p, g), state) in params.iter_mut().zip(grads).zip(&mut self.tensors) {
            let scalars = config.scalars::<f32>(state.step + 1);
            let isa = self.exec.isa();
            if !state.wide.is_empty() {
                let mut list: [&mut [f32]; MAX_BUFFERS] = Default::default();
                for (slot, b) in list.iter_mut().zip(state.wide.iter_mut()) {
                    *slot = &mut b[..];
                }
                (self.kernel)(isa, &scalars, p, g, &mut list[..buffers]);
                state.step += 1;
                continue;
            }
            let job = Job {
                kernel: self.kernel,
                isa,
                scalars: &scalars,
                maps: &self.maps,
            };
            let codes: Vec<&mut [u8]> = state.codes.iter_mut().map(|b| &mut b[..]).collect();
            let absmax: Vec<&mut [f32]> = state.absmax.iter_mut().map(|b| &mut b[..]).collect();
            let work = Work {
                p,
                g,
                codes,
                absmax,
            };
            #[cfg(feature = "parallel")]
            if let Some(pool) = self.exec.pool() {
                if self.exec.parallel_for(work.p.len()) {
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

    fn new_tensor(&self, len: usize) -> Tensor8 {
        let specs = self.inner.layout().buffers();
        if len < self.min_size {
            return Tensor8 {
                step: 0,
                len,
                codes: Vec::new(),
                absmax: Vec::new(),
                wide: specs.iter().map(|b| vec![b.init as f32; len]).collect(),
            };
        }
        let blocks = len.div_ceil(BLOCK);
        let mut codes = Vec::new();
        let mut absmax = Vec::new();
        for (spec, map) in specs.iter().zip(&self.maps) {
            let mut c = vec![0u8; len];
            let mut m = vec![0.0f32; blocks];
            if spec.init != 0.0 {
                map.quantize(&vec![spec.init as f32; len], &mut c, &mut m);
            }
            codes.push(c);
            absmax.push(m);
        }
        Tensor8 {
            step: 0,
            len,
            codes,
            absmax,
            wide: Vec::new(),
        }
    }
}

/// A stretch of one tensor (whole blocks, but the tensor's last).
struct Work<'a> {
    p: &'a mut [f32],
    g: &'a [f32],
    codes: Vec<&'a mut [u8]>,
    absmax: Vec<&'a mut [f32]>,
}

/// What every chunk of one tensor's step shares.
struct Job<'s, S> {
    kernel: Kernel<f32, S>,
    isa: Isa,
    scalars: &'s S,
    maps: &'s [&'static QuantMap],
}

impl<S: Copy + Send + Sync> Job<'_, S> {
    /// Halves `work` at a chunk boundary until a half is a few chunks, on the pool's threads.
    #[cfg(feature = "parallel")]
    fn split(&self, work: Work<'_>) {
        let len = work.p.len();
        if len <= 4 * CHUNK {
            return self.run(work);
        }
        let mid = (len / 2).div_ceil(CHUNK) * CHUNK;
        let (pa, pb) = work.p.split_at_mut(mid);
        let (ga, gb) = work.g.split_at(mid);
        let (ca, cb): (Vec<_>, Vec<_>) =
            work.codes.into_iter().map(|c| c.split_at_mut(mid)).unzip();
        let (ma, mb): (Vec<_>, Vec<_>) = work
            .absmax
            .into_iter()
            .map(|m| m.split_at_mut(mid / BLOCK))
            .unzip();
        rayon::join(
            || {
                self.split(Work {
                    p: pa,
                    g: ga,
                    codes: ca,
                    absmax: ma,
                })
            },
            || {
                self.split(Work {
                    p: pb,
                    g: gb,
                    codes: cb,
                    absmax: mb,
                })
            },
        );
    }

    /// Steps `work` chunk by chunk on this thread.
    fn run(&self, work: Work<'_>) {
        let buffers = self.maps.len();
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            if scratch.len() < buffers * CHUNK {
                scratch.resize(buffers * CHUNK, 0.0);
            }
            let Work {
                p,
                g,
                mut codes,
                mut absmax,
            } = work;
            let mut start = 0;
            while start < p.len() {
                let end = (start + CHUNK).min(p.len());
                let (b0, b1) = (start / BLOCK, end.div_ceil(BLOCK));
                let mut list: [&mut [f32]; MAX_BUFFERS] = Default::default();
                for (k, (slot, wide)) in list
                    .iter_mut()
                    .zip(scratch.chunks_mut(CHUNK))
                    .take(buffers)
                    .enumerate()
                {
                    let wide = &mut wide[..end - start];
                    self.maps[k].dequantize(&codes[k][start..end], &absmax[k][b0..b1], wide);
                    *slot = wide;
                }
                (self.kernel)(
                    self.isa,
                    self.scalars,
                    &mut p[start..end],
                    &g[start..end],
                    &mut list[..buffers],
                );
                for (k, wide) in list.iter().take(buffers).enumerate() {
                    self.maps[k].quantize(wide, &mut codes[k][start..end], &mut absmax[k][b0..b1]);
                }
                start = end;
            }
        });
    }
}

impl<A: Algorithm> Blockwise8<A> {
    /// The execution settings.
    pub fn execution(&self) -> &Execution {
        &self.exec
    }
}

/// The common optimizer interface, so 8-bit state plugs in where any optimizer does (the candle
/// adapter, the CLI's training). [`state_buffers`](Optimizer::state_buffers) lists the `f32`
/// buffers of small tensors only; read 8-bit state with [`Blockwise8::quantized`] or
/// [`Blockwise8::buffer`].
impl<A: Algorithm> Optimizer<f32> for Blockwise8<A> {
    fn name(&self) -> &'static str {
        self.inner.config().name()
    }

    fn step(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]]) -> Result<()> {
        Blockwise8::step(self, params, grads)
    }

    fn check(&self, params: &[&mut [f32]], grads: &[&[f32]]) -> Result<()> {
        let tensors = &self.tensors;
        check_step(params, grads, tensors.len(), |i| tensors[i].len)
    }

    fn learning_rate(&self) -> f64 {
        self.inner.config().lr()
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        self.inner.set_learning_rate(lr)
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    fn reset(&mut self) {
        self.tensors.clear();
        self.steps = 0;
        self.skipped = 0;
    }

    fn set_execution(&mut self, execution: Execution) {
        self.exec = execution;
    }

    fn state_buffers(&self, index: usize) -> Vec<(&'static str, &[f32])> {
        let Some(t) = self.tensors.get(index) else {
            return Vec::new();
        };
        self.inner
            .layout()
            .buffers()
            .iter()
            .zip(&t.wide)
            .map(|(b, v)| (b.name, &v[..]))
            .collect()
    }
}
