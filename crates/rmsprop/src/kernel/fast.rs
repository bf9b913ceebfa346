//! Fast kernels: the reference kernels compiled for the best instruction set the CPU has,
//! chosen at run time.
//!
//! Each reference kernel is a straight per-element loop over slices with loop-invariant
//! branches; compiled with AVX2 enabled, the compiler hoists the branches and vectorizes the
//! loop with 8 (f32) or 4 (f64) lanes. The arithmetic stays the same IEEE operations in the
//! same order — Rust never contracts `a*b + c` into a fused multiply-add, and vector `sqrt` and
//! division are correctly rounded — so the results are the reference's bits exactly, which
//! `tests/kernels.rs` checks for every variant on random inputs and odd lengths.

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

/// Below this many elements a kernel runs with the baseline instruction set: too short for
/// vectors to pay for the dispatch.
pub const MIN_VECTOR_LEN: usize = 32;

/// Runs `f` compiled for `isa`: with AVX2, `f` and everything it inlines (the reference
/// kernels are `#[inline(always)]`) are compiled with AVX2 enabled. `len` is the number of
/// elements `f` works on: short runs skip the dispatch.
#[inline(always)]
pub fn run_with<R>(isa: Isa, len: usize, f: impl FnOnce() -> R) -> R {
    if len < MIN_VECTOR_LEN {
        return f();
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            #[target_feature(enable = "avx2")]
            #[inline]
            fn avx2<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above; the check is a cached load).
                unsafe { avx2(f) }
            } else {
                f()
            }
        }
        _ => f(),
    }
}
