//! Fast kernels: each optimizer's vectorizable kernel compiled for the best instruction set the
//! CPU has, chosen at run time.
//!
//! The `*_fast` kernels are straight per-element loops whose variant is chosen outside the loop;
//! the functions here compile them a second time with AVX2 enabled (8 f32 / 4 f64 lanes) and
//! pick that build when the CPU has AVX2. The arithmetic stays the same IEEE operations in the
//! same order — Rust never contracts `a*b + c` into a fused multiply-add, and vector `sqrt` and
//! division are correctly rounded — so the results are the reference's bits exactly, which
//! `tests/kernels.rs` checks for every variant on random inputs and odd lengths.

use super::adagrad::{adagrad_reference, AdagradScalars};
use super::adam::{adam_fast, AdamScalars};
use super::rmsprop::{rmsprop_fast, rmsprop_reference, RmsPropScalars};
use super::sgd::{sgd_fast, SgdScalars};
use crate::Float;

/// The instruction set a kernel runs with.
///
/// # Examples
/// ```
/// let isa = rmsprop::kernel::fast::Isa::detect();
/// println!("{isa:?}");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// Whatever the build targets (x86-64 baseline: SSE2).
    Baseline,
    /// x86-64 with AVX2.
    Avx2,
}

impl Isa {
    /// The best instruction set available on this CPU.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }
}

/// Below this many elements a kernel runs the plain reference loop: too short for vectors to pay
/// for the dispatch.
pub const MIN_VECTOR_LEN: usize = 32;

macro_rules! dispatched {
    ($(#[$doc:meta])* $name:ident, $small:path, $kernel:path, $scalars:ident, ($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        #[inline]
        pub fn $name<T: Float>(isa: Isa, s: &$scalars<T>, params: &mut [T], grads: &[T], $($arg: $ty),*) {
            if params.len() < MIN_VECTOR_LEN {
                return $small(s, params, grads, $($arg),*);
            }
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn avx2<T: Float>(s: &$scalars<T>, params: &mut [T], grads: &[T], $($arg: $ty),*) {
                    $kernel(s, params, grads, $($arg),*)
                }
                if isa == Isa::Avx2 && std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked just above; the check is a cached load).
                    return unsafe { avx2(s, params, grads, $($arg),*) };
                }
            }
            $kernel(s, params, grads, $($arg),*)
        }
    };
}

dispatched!(
    /// [`rmsprop_fast`] for `isa` (the reference loop below [`MIN_VECTOR_LEN`] elements).
    rmsprop, rmsprop_reference, rmsprop_fast, RmsPropScalars,
    (square_avg: &mut [T], grad_avg: &mut [T], momentum_buffer: &mut [T])
);
dispatched!(
    /// [`sgd_fast`] for `isa`.
    sgd, sgd_fast, sgd_fast, SgdScalars, (momentum_buffer: &mut [T])
);
dispatched!(
    /// [`adagrad_reference`] (which vectorizes as it is) for `isa`.
    adagrad, adagrad_reference, adagrad_reference, AdagradScalars, (sum: &mut [T])
);
dispatched!(
    /// [`adam_fast`] for `isa`.
    adam, adam_fast, adam_fast, AdamScalars,
    (exp_avg: &mut [T], exp_avg_sq: &mut [T], max_exp_avg_sq: &mut [T])
);

/// Whether every element is finite: one read-only pass that the compiler vectorizes (an OR
/// reduction of comparisons), compiled with AVX2 when the CPU has it.
///
/// # Examples
/// ```
/// use rmsprop::kernel::fast::{all_finite, Isa};
/// assert!(all_finite(Isa::detect(), &[1.0f32, -2.0, 0.0]));
/// assert!(!all_finite(Isa::detect(), &[1.0f64, f64::NAN]));
/// ```
#[inline]
pub fn all_finite<T: Float>(isa: Isa, values: &[T]) -> bool {
    #[inline(always)]
    fn scan<T: Float>(values: &[T]) -> bool {
        !values.iter().fold(false, |bad, x| bad | !x.is_finite())
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2<T: Float>(values: &[T]) -> bool {
            scan(values)
        }
        if isa == Isa::Avx2
            && values.len() >= MIN_VECTOR_LEN
            && std::arch::is_x86_feature_detected!("avx2")
        {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { avx2(values) };
        }
    }
    scan(values)
}
