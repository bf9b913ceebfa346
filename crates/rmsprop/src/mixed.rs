//! Half-precision parameters: [`Mixed`] steps `bf16` or `f16` parameters and gradients with
//! any [`Algorithm`] computed in `f32` (as PyTorch's CPU kernels compute half tensors), its state
//! stored in `f32` or in the half type, the result rounded to nearest or stochastically, with an
//! optional `f32` master copy of the parameters.
//!
//! A step converts a chunk of each tensor to `f32` (a few thousand elements, so it stays in
//! cache), runs the algorithm's fused `f32` kernel on it (the one
//! [`Algorithm::kernel`] selects), and rounds the chunk back: one read
//! and one write of the half data per step, no `f32` copy of a whole tensor. Chunks of large
//! tensors run on the [`Execution`](crate::Execution)'s threads.
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

use crate::algorithm::Algorithm;
use crate::kernel::fast::Isa;
use crate::storage::{Engine, Param, Place, Plan};
use crate::Result;

pub use crate::storage::Rounding;

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
    Param + sealed::Sealed + Copy + Default + Send + Sync + PartialEq + core::fmt::Debug + 'static
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
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f32::from_bits((half::bf16::to_bits(self) as u32) << 16)
    }
    /// Round to nearest even on the bits, without branches (so that chunk loops vectorize);
    /// NaN stays a quiet NaN. The same values as [`half::bf16::from_f32`] (tested).
    #[inline(always)]
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
    #[inline(always)]
    fn to_f32(self) -> f32 {
        half::f16::to_f32(self)
    }
    #[inline(always)]
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

/// An [`Algorithm`] stepping half-precision parameters (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Mixed<A: Algorithm, H: Half> {
    pub(crate) engine: Engine<A, H>,
    options: MixedOptions,
}

impl<A: Algorithm, H: Half> Mixed<A, H> {
    crate::storage::engine_accessors!();

    /// Builds the optimizer after validating `config`.
    ///
    /// # Errors
    /// As [`Algorithm::validate`].
    pub fn new(config: A, options: MixedOptions) -> Result<Self> {
        let plan = match options.state {
            StateStorage::F32 => Plan::Wide,
            StateStorage::Half => Plan::Narrow,
        };
        Ok(Self {
            engine: Engine::new(config, plan, options.master, options.rounding)?,
            options,
        })
    }

    /// The storage options.
    pub fn options(&self) -> MixedOptions {
        self.options
    }

    /// The `f32` master copy of tensor `tensor` (with [`MixedOptions::master`]).
    pub fn master(&self, tensor: usize) -> Option<&[f32]> {
        self.engine.tensors.get(tensor)?.master.as_deref()
    }

    /// One step: every parameter tensor updated from its gradient.
    ///
    /// # Errors
    /// As [`Optimizer::step`](crate::Optimizer::step): wrong counts or lengths, or a non-finite
    /// gradient under [`NonFinitePolicy::Error`](crate::NonFinitePolicy::Error). A failed or skipped step changes nothing (but
    /// the skipped count).
    pub fn step(&mut self, params: &mut [&mut [H]], grads: &[&[H]]) -> Result<()> {
        self.engine.step(params, grads)
    }
}

crate::storage::storage_optimizer!(Mixed, H: Half);

macro_rules! half_param {
    ($t:ty) => {
        /// Widened exactly; rounded to nearest or stochastically.
        impl Param for $t {
            fn as_f32(_: &[Self]) -> Option<&[f32]> {
                None
            }
            fn as_f32_mut(_: &mut [Self]) -> Option<&mut [f32]> {
                None
            }
            #[inline(always)]
            fn widen(src: &[Self], dst: &mut [f32]) {
                for (d, s) in dst.iter_mut().zip(src) {
                    *d = Half::to_f32(*s);
                }
            }
            #[inline(always)]
            fn narrow(src: &[f32], dst: &mut [Self], rounding: Rounding, place: Place) {
                match rounding {
                    Rounding::Nearest => {
                        for (d, s) in dst.iter_mut().zip(src) {
                            *d = <$t as Half>::from_f32(*s);
                        }
                    }
                    Rounding::Stochastic { seed } => {
                        for (i, (d, s)) in dst.iter_mut().zip(src).enumerate() {
                            let element = (place.offset + i) as u64;
                            let bits = random_bits(seed, place.step, place.tensor, element);
                            *d = round_stochastic(*s, bits);
                        }
                    }
                }
            }
            fn all_finite(_: Isa, x: &[Self]) -> bool {
                <$t as Half>::all_finite(x)
            }
            fn to_f64(self) -> f64 {
                Half::to_f32(self) as f64
            }
            const BYTES: usize = 2;
            const NAME: &'static str = <$t as Half>::DTYPE;
            fn to_le_bytes(x: &[Self]) -> Vec<u8> {
                x.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect()
            }
            fn from_le_bytes(b: &[u8]) -> Vec<Self> {
                b.chunks_exact(2)
                    .map(|c| <$t>::from_bits(u16::from_le_bytes([c[0], c[1]])))
                    .collect()
            }
        }
    };
}

half_param!(half::bf16);
half_param!(half::f16);

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
