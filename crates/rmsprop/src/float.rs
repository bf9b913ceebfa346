//! The element types an optimizer works on: `f32` and `f64`.

use core::fmt::{Debug, Display};
use core::ops::{Add, Div, Mul, Neg, Sub};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point element type: implemented for [`f32`] and [`f64`] only.
///
/// Every operation the kernels use is an IEEE-754 correctly rounded operation
/// (`+`, `-`, `*`, `/`, `sqrt`), so results are reproducible bit for bit.
///
/// # Examples
/// ```
/// use rmsprop::Float;
/// fn half<T: Float>(x: T) -> T { x * T::from_f64(0.5) }
/// assert_eq!(half(3.0f32), 1.5);
/// assert_eq!(f64::DTYPE, "float64");
/// ```
pub trait Float:
    sealed::Sealed
    + Copy
    + Default
    + Debug
    + Display
    + PartialEq
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// The name of the type as the frameworks print it: `"float32"` or `"float64"`.
    const DTYPE: &'static str;
    /// Size in bytes.
    const BYTES: usize;

    /// Rounds an `f64` to this type (round to nearest even; exact for `f64`).
    fn from_f64(x: f64) -> Self;
    /// Widens to `f64` (always exact).
    fn to_f64(self) -> f64;
    /// Correctly rounded square root.
    fn sqrt(self) -> Self;
    /// `self * a + b` with one rounding (a fused multiply-add).
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// `self` raised to the power `e` (the platform's `pow`).
    fn powf(self, e: Self) -> Self;
    /// Whether the value is neither infinite nor NaN.
    fn is_finite(self) -> bool;
    /// The larger of two values; if one is NaN, the other.
    fn max(self, other: Self) -> Self;
    /// Appends the little-endian bytes.
    fn extend_le_bytes(self, out: &mut Vec<u8>);
    /// Reads one value from exactly [`BYTES`](Float::BYTES) little-endian bytes.
    fn from_le_slice(bytes: &[u8]) -> Self;
    /// The raw bits, widened to `u64` (for exact comparisons and hashing).
    fn to_bits_u64(self) -> u64;
    /// `-self` when `sign` has its sign bit set, else `self`: IEEE negation (a flip of the sign
    /// bit, the same bits as `-self`) chosen without a branch. With `sign` = `-0.0` for
    /// maximize and `+0.0` otherwise, a kernel negates gradients without testing a flag per
    /// element.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::Float;
    /// assert_eq!(2.5f32.negate_if_signed(-0.0), -2.5);
    /// assert_eq!(2.5f64.negate_if_signed(0.0), 2.5);
    /// ```
    fn negate_if_signed(self, sign: Self) -> Self;
    /// Sign of `self` as Lion uses it (`jnp.sign`): `-1`, `0` (for `±0`) or `+1`; NaN stays NaN.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::Float;
    /// assert_eq!((-3.0f32).signum0(), -1.0);
    /// assert_eq!(0.0f64.signum0(), 0.0);
    /// assert!(f32::NAN.signum0().is_nan());
    /// ```
    fn signum0(self) -> Self;
}

macro_rules! impl_float {
    ($t:ty, $name:literal) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const DTYPE: &'static str = $name;
            const BYTES: usize = core::mem::size_of::<$t>();

            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }
            #[inline(always)]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            fn extend_le_bytes(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn from_le_slice(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("exactly BYTES bytes"))
            }
            fn to_bits_u64(self) -> u64 {
                self.to_bits() as u64
            }
            #[inline(always)]
            fn negate_if_signed(self, sign: Self) -> Self {
                let mask = (-0.0 as $t).to_bits();
                <$t>::from_bits(self.to_bits() ^ (sign.to_bits() & mask))
            }
            #[inline(always)]
            fn signum0(self) -> Self {
                if self > 0.0 {
                    1.0
                } else if self < 0.0 {
                    -1.0
                } else {
                    // 0 for ±0, NaN for NaN (x * 0 keeps NaN; the sign of zero follows x).
                    self * 0.0
                }
            }
        }
    };
}

impl_float!(f32, "float32");
impl_float!(f64, "float64");
