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
//!
//! Each optimizer's fast kernel is *selected once*, when the optimizer is built: a
//! [`Kernel`] function pointer to the loop monomorphized for that configuration's variant
//! (operation order, eps placement, weight decay, centering, momentum, ...), so a step neither
//! re-dispatches on the configuration nor branches per element on a configuration flag. The
//! only run-time choice left inside a kernel is the instruction set ([`fast::Isa`]), and, for
//! tensors below [`fast::MIN_VECTOR_LEN`] elements, the scalar reference loop itself (a vector
//! loop's set-up costs more than a few elements: a 2-element RMSProp step measured 26 ns that
//! way against 32-41 ns through the vector loop).
//!
//! Module dependencies run one way: optimizers (`optim`) → driver (`exec`) → kernels (here) →
//! the shared options ([`options`](crate::options)).

pub mod adadelta;
pub mod adagrad;
pub mod adam;
pub mod fast;
pub mod lion;
pub mod rmsprop;
pub mod sgd;

use crate::Float;

/// The most state buffers one tensor can have (RMSProp centered with momentum and Adam with
/// AMSGrad use three).
pub const MAX_BUFFERS: usize = 4;

/// A selected kernel: updates one tensor (or a chunk of it) in place with the per-step scalars
/// `S`, given its state buffers in the order the algorithm's layout declares them.
///
/// # Examples
/// ```
/// use rmsprop::kernel::{fast::Isa, Kernel};
/// use rmsprop::kernel::sgd::{select_sgd, SgdScalars};
/// let s = SgdScalars { lr: 0.5f64, momentum: 0.0, one_minus_dampening: 1.0, nesterov: false,
///                      weight_decay: 0.0, maximize: false, first_step: true };
/// let kernel: Kernel<f64, SgdScalars<f64>> = select_sgd(&s);
/// let mut p = [1.0];
/// kernel(Isa::detect(), &s, &mut p, &[1.0], &mut []);
/// assert_eq!(p, [0.5]);
/// ```
pub type Kernel<T, S> = fn(fast::Isa, &S, &mut [T], &[T], &mut [&mut [T]]);

/// Takes the next buffer of a kernel's buffer list.
///
/// # Panics
/// When the list is exhausted: the layout and the kernel disagree (a bug, not an input error).
#[inline(always)]
pub(crate) fn next_buffer<'a, T>(buffers: &mut &'a mut [&mut [T]]) -> &'a mut [T] {
    let list = core::mem::take(buffers);
    let (first, rest) = list
        .split_first_mut()
        .expect("the kernel needs more state buffers than the layout declares");
    *buffers = rest;
    first
}

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
