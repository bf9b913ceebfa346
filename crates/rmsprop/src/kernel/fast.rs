//! Fast kernels: each optimizer's vectorizable kernel compiled for the best instruction set the
//! CPU has, chosen at run time.
//!
//! Each optimizer's fast kernel (`select_*` in its kernel module) is a straight per-element loop
//! per variant, compiled twice: as the build targets, and with AVX2 enabled (8 f32 / 4 f64
//! lanes), the latter taken when the CPU has AVX2 and the tensor has at least
//! [`MIN_VECTOR_LEN`] elements. The arithmetic stays the same IEEE operations in the
//! same order — Rust never contracts `a*b + c` into a fused multiply-add, and vector `sqrt` and
//! division are correctly rounded — so the results are the reference's bits exactly, which
//! `tests/kernels.rs` checks for every variant on random inputs and odd lengths.

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
    if values.len() < MIN_VECTOR_LEN {
        return values.iter().all(|x| x.is_finite());
    }
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
        if isa == Isa::Avx2 && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { avx2(values) };
        }
    }
    scan(values)
}
