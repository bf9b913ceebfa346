//! Kernels: the per-element arithmetic of each optimizer, separate from the bookkeeping.
//!
//! The scalar reference kernels in this module are the specification: readable
//! per-element loops that mirror the documented formulas in each framework's
//! operation order, using only correctly rounded IEEE-754 operations and no
//! fused multiply-add. Faster kernels must reproduce their bits exactly.
//!
//! A kernel is a free function over slices plus a small `Copy` struct of
//! per-step scalars already rounded to the element type: no defaults, no
//! allocation, no I/O, no `Result`.

pub mod adagrad;
pub mod adam;
pub mod fast;
pub mod rmsprop;
pub mod sgd;

use crate::Float;

/// PyTorch's `lerp(a, b, w)`: `a + w*(b - a)` for `|w| < 0.5`, else `b - (b - a)*(1 - w)`,
/// so that `w = 1` gives exactly `b` (without PyTorch's fused multiply-add).
///
/// # Examples
/// ```
/// use rmsprop::kernel::lerp_torch;
/// assert_eq!(lerp_torch(0.3f64, 7.1, 1.0), 7.1);
/// assert_eq!(lerp_torch(0.0f32, 1.0, 0.25), 0.25);
/// ```
#[inline(always)]
pub fn lerp_torch<T: Float>(a: T, b: T, w: T) -> T {
    if w < T::from_f64(0.5) && w > T::from_f64(-0.5) {
        a + w * (b - a)
    } else {
        b - (b - a) * (T::ONE - w)
    }
}
