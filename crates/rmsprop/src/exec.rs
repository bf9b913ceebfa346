//! How a step runs: the instruction set of its kernels and how it spreads over threads.

use crate::kernel::fast::Isa;
use crate::kernel::Kernel;
#[cfg(feature = "parallel")]
use crate::kernel::MAX_BUFFERS;
use crate::state::Slot;
use crate::{Error, Float, Result};

/// Tensors (or the sum of tensor lengths) below this many elements are stepped on one thread.
pub const DEFAULT_MIN_PARALLEL: usize = 1 << 18;
/// Large tensors are split into chunks of this many elements, one task each.
pub const DEFAULT_CHUNK: usize = 1 << 16;

/// What a step does with a gradient that holds NaN or an infinity.
///
/// # Examples
/// ```
/// use rmsprop::{Error, Execution, NonFinitePolicy, Optimizer, RmsProp, RmsPropConfig};
/// let mut opt = RmsProp::<f32>::new(RmsPropConfig::pytorch()).unwrap();
/// let mut w = [1.0f32, 2.0];
/// assert!(matches!(opt.step_single(&mut w, &[0.1, f32::NAN]), Err(Error::NonFiniteGradient { element: 1, .. })));
/// opt.set_execution(Execution::sequential().with_non_finite(NonFinitePolicy::Skip));
/// opt.step_single(&mut w, &[f32::INFINITY, 0.0]).unwrap();
/// assert_eq!((w, opt.steps(), opt.skipped_steps()), ([1.0, 2.0], 0, 1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum NonFinitePolicy {
    /// Return [`Error::NonFiniteGradient`]; parameters and state are untouched (the default).
    #[default]
    Error,
    /// Skip the step, leaving parameters and state untouched, and count it
    /// ([`Optimizer::skipped_steps`](crate::Optimizer::skipped_steps)).
    Skip,
    /// Apply the step anyway, as PyTorch does: NaN spreads into parameters and state. No check,
    /// so the fastest.
    Propagate,
}

/// Execution settings of an optimizer: the kernels' instruction set (detected once) and the
/// thread count (an explicit setting, 1 by default; never a hidden global).
///
/// Every setting gives the same bits: the kernels are element-wise, so splitting a tensor
/// across threads changes nothing but the time.
///
/// # Examples
/// ```
/// use rmsprop::{Execution, Optimizer, RmsProp, RmsPropConfig};
/// let mut opt = RmsProp::<f32>::new(RmsPropConfig::pytorch()).unwrap();
/// opt.set_execution(Execution::threads(2).unwrap());
/// let mut w = vec![1.0f32; 100_000];
/// opt.step_single(&mut w, &vec![0.5; 100_000]).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Execution {
    isa: Isa,
    threads: usize,
    non_finite: NonFinitePolicy,
    min_parallel: usize,
    chunk: usize,
    #[cfg(feature = "parallel")]
    pool: Option<std::sync::Arc<rayon::ThreadPool>>,
}

impl Default for Execution {
    fn default() -> Self {
        Self::sequential()
    }
}

impl Execution {
    /// One thread, the best instruction set of this CPU.
    pub fn sequential() -> Self {
        Self {
            isa: Isa::detect(),
            threads: 1,
            non_finite: NonFinitePolicy::Error,
            min_parallel: DEFAULT_MIN_PARALLEL,
            chunk: DEFAULT_CHUNK,
            #[cfg(feature = "parallel")]
            pool: None,
        }
    }

    /// `n` threads (a pool owned by this setting; clones share it).
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for `n == 0`, or `n > 1` without the `parallel` feature.
    pub fn threads(n: usize) -> Result<Self> {
        let invalid = |allowed| Error::InvalidHyperparameter {
            name: "threads",
            value: n as f64,
            allowed,
        };
        if n == 0 {
            return Err(invalid("at least 1"));
        }
        if n == 1 {
            return Ok(Self::sequential());
        }
        #[cfg(feature = "parallel")]
        {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|_| invalid("a thread count the system can start"))?;
            Ok(Self {
                threads: n,
                pool: Some(std::sync::Arc::new(pool)),
                ..Self::sequential()
            })
        }
        #[cfg(not(feature = "parallel"))]
        Err(invalid("1 (built without the `parallel` feature)"))
    }

    /// Sets the sequential threshold and the chunk length (both in elements, at least 1).
    ///
    /// # Examples
    /// ```
    /// let e = rmsprop::Execution::sequential().with_split(1024, 512);
    /// assert_eq!(e.split(), (1024, 512));
    /// ```
    pub fn with_split(mut self, min_parallel: usize, chunk: usize) -> Self {
        self.min_parallel = min_parallel.max(1);
        self.chunk = chunk.max(1);
        self
    }

    /// The sequential threshold and chunk length.
    pub fn split(&self) -> (usize, usize) {
        (self.min_parallel, self.chunk)
    }

    /// Sets the policy for non-finite gradients (default [`NonFinitePolicy::Error`]).
    pub fn with_non_finite(mut self, policy: NonFinitePolicy) -> Self {
        self.non_finite = policy;
        self
    }

    /// The policy for non-finite gradients.
    pub fn non_finite(&self) -> NonFinitePolicy {
        self.non_finite
    }

    /// Applies the non-finite policy to a step's gradients before anything is modified:
    /// `Ok(true)` to go on, `Ok(false)` to skip the step.
    pub(crate) fn screen<T: Float>(&self, grads: &[&[T]]) -> Result<bool> {
        self.screen_total(grads, grads.iter().map(|g| g.len()).sum())
    }

    /// [`screen`](Execution::screen) of `total` elements (the caller has counted them).
    #[inline]
    pub(crate) fn screen_total<T: Float>(&self, grads: &[&[T]], total: usize) -> Result<bool> {
        if self.non_finite == NonFinitePolicy::Propagate || self.all_finite(grads, total) {
            return Ok(true);
        }
        for (index, g) in grads.iter().enumerate() {
            if !crate::kernel::fast::all_finite(self.isa, g) {
                if self.non_finite == NonFinitePolicy::Skip {
                    return Ok(false);
                }
                let (element, value) = g
                    .iter()
                    .enumerate()
                    .find(|(_, x)| !x.is_finite())
                    .map(|(i, x)| (i, x.to_f64()))
                    .unwrap_or((0, f64::NAN));
                return Err(Error::NonFiniteGradient {
                    index,
                    element,
                    value,
                });
            }
        }
        Ok(true)
    }
    /// Whether every gradient element is finite: one read-only pass, split over the threads like
    /// a step (by recursive halving, without allocating).
    #[inline]
    fn all_finite<T: Float>(&self, grads: &[&[T]], total: usize) -> bool {
        let isa = self.isa;
        if !self.parallel_for(total) {
            return grads
                .iter()
                .all(|g| crate::kernel::fast::all_finite(isa, g));
        }
        self.all_of(grads, &|g: &[T]| crate::kernel::fast::all_finite(isa, g))
    }

    /// Whether `check` holds for every piece of `slices` (each slice cut at chunk boundaries
    /// when large), the pieces spread over the threads like a step.
    pub(crate) fn all_of<E: Sync>(
        &self,
        slices: &[&[E]],
        check: &(dyn Fn(&[E]) -> bool + Sync),
    ) -> bool {
        #[cfg(feature = "parallel")]
        if let Some(pool) = &self.pool {
            let total: usize = slices.iter().map(|g| g.len()).sum();
            if total >= self.min_parallel {
                return pool.install(|| self.par_all_of(slices, total, check));
            }
        }
        slices.iter().all(|g| check(g))
    }

    #[cfg(feature = "parallel")]
    fn par_all_of<E: Sync>(
        &self,
        slices: &[&[E]],
        total: usize,
        check: &(dyn Fn(&[E]) -> bool + Sync),
    ) -> bool {
        if slices.len() > 1 && total > 2 * self.chunk {
            let (mid, left) = halves(slices.iter().map(|g| g.len()), total);
            let (a, b) = slices.split_at(mid);
            let (x, y) = rayon::join(
                || self.par_all_of(a, left, check),
                || self.par_all_of(b, total - left, check),
            );
            return x && y;
        }
        slices
            .iter()
            .all(|g| self.par_chunks_all(g, self.chunk_len(g.len()), check))
    }

    #[cfg(feature = "parallel")]
    fn par_chunks_all<E: Sync>(
        &self,
        g: &[E],
        chunk: usize,
        check: &(dyn Fn(&[E]) -> bool + Sync),
    ) -> bool {
        if g.len() <= chunk {
            return check(g);
        }
        let Some(mid) = split_point(g.len(), chunk, 1) else {
            return check(g);
        };
        let (a, b) = g.split_at(mid);
        let (x, y) = rayon::join(
            || self.par_chunks_all(a, chunk, check),
            || self.par_chunks_all(b, chunk, check),
        );
        x && y
    }

    /// Uses the baseline instruction set instead of the detected one (for comparisons).
    pub fn with_baseline_isa(mut self) -> Self {
        self.isa = Isa::Baseline;
        self
    }

    /// The instruction set the kernels run with.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The thread count.
    pub fn thread_count(&self) -> usize {
        self.threads
    }

    /// One step over every tensor: advances each tensor's step count, builds its scalars, and
    /// runs `kernel` over it with the buffers its state holds, on this setting's threads when the
    /// work is large enough. Nothing is allocated: the threaded path halves the tensor list, then
    /// a tensor's chunks, recursively with `rayon::join`. `fixed` is the scalars when they do
    /// not depend on the step (what `scalars` returns then).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn step_all<T, S, St>(
        &self,
        params: &mut [&mut [T]],
        grads: &[&[T]],
        states: &mut [St],
        total: usize,
        fixed: Option<&S>,
        scalars: impl Fn(u64) -> S + Sync,
        kernel: Kernel<T, S>,
        align: usize,
    ) where
        T: Float,
        S: Copy + Send + Sync,
        St: Slot<T>,
    {
        let isa = self.isa;
        #[cfg(not(feature = "parallel"))]
        let _ = (align, total);
        #[cfg(feature = "parallel")]
        if self.pool.is_some() && self.parallel_for(total) {
            return self.step_threaded(params, grads, states, total, &scalars, kernel, align);
        }
        for ((p, g), t) in params.iter_mut().zip(grads).zip(states) {
            let step = t.step_mut();
            *step = step.saturating_add(1);
            let step = *step;
            let (mut list, n) = t.buffer_list();
            match fixed {
                Some(s) => kernel(isa, s, p, g, &mut list[..n]),
                None => kernel(isa, &scalars(step), p, g, &mut list[..n]),
            }
        }
    }

    /// [`step_all`](Execution::step_all) on the pool (kept out of line: small steps inline only
    /// the sequential loop).
    #[cfg(feature = "parallel")]
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn step_threaded<T, S, St, F>(
        &self,
        params: &mut [&mut [T]],
        grads: &[&[T]],
        states: &mut [St],
        total: usize,
        scalars: &F,
        kernel: Kernel<T, S>,
        align: usize,
    ) where
        T: Float,
        S: Copy + Send + Sync,
        St: Slot<T>,
        F: Fn(u64) -> S + Sync,
    {
        for t in states.iter_mut() {
            let step = t.step_mut();
            *step = step.saturating_add(1);
        }
        let run = Run {
            exec: self,
            scalars,
            kernel,
            align,
        };
        let pool = self.pool.as_ref().expect("a pool (checked by the caller)");
        pool.install(|| run.tensors(params, grads, states, total));
    }

    /// The thread pool, when this setting has more than one thread.
    #[cfg(feature = "parallel")]
    pub(crate) fn pool(&self) -> Option<&rayon::ThreadPool> {
        self.pool.as_deref()
    }

    /// Whether a step over `total` elements should be split into jobs at all.
    #[cfg_attr(not(feature = "parallel"), allow(dead_code))]
    pub(crate) fn parallel_for(&self, total: usize) -> bool {
        self.threads > 1 && total >= self.min_parallel
    }

    #[cfg_attr(not(feature = "parallel"), allow(dead_code))]
    pub(crate) fn chunk_len(&self, len: usize) -> usize {
        // At least `chunk`, and at most a share that keeps every thread busy.
        let share = len.div_ceil(self.threads * 4).max(1);
        share.max(self.chunk.min(len.max(1)))
    }
}

/// Where to cut `len` elements in two: a multiple of `chunk` (rounded up to a multiple of
/// `align`) near the middle, so chunks keep the layout's alignment; `None` when no such cut
/// leaves both halves non-empty.
#[cfg_attr(not(feature = "parallel"), allow(dead_code))]
fn split_point(len: usize, chunk: usize, align: usize) -> Option<usize> {
    let align = align.max(1);
    let unit = chunk.max(1).div_ceil(align) * align;
    let units = len.div_ceil(unit);
    let mid = (units / 2).max(1) * unit;
    (mid < len).then_some(mid)
}

/// Where to cut a list of at least two lengths (summing to `total`) into two halves of about
/// equal work: `(index, sum of the lengths before it)`, both halves non-empty.
#[cfg_attr(not(feature = "parallel"), allow(dead_code))]
fn halves(lengths: impl ExactSizeIterator<Item = usize>, total: usize) -> (usize, usize) {
    let count = lengths.len();
    let mut sum = 0;
    for (i, len) in lengths.enumerate() {
        if i > 0 && (2 * sum >= total || i == count - 1) {
            return (i, sum);
        }
        sum += len;
    }
    (count / 2, 0)
}

/// One threaded step: the settings, the scalars and the kernel, shared by every task.
#[cfg(feature = "parallel")]
struct Run<'a, T, S, F> {
    exec: &'a Execution,
    scalars: &'a F,
    kernel: Kernel<T, S>,
    /// Chunk boundaries fall on multiples of this ([`Layout::align`](crate::algorithm::Layout::align)).
    align: usize,
}

#[cfg(feature = "parallel")]
impl<T, S, F> Run<'_, T, S, F>
where
    T: Float,
    S: Copy + Send + Sync,
    F: Fn(u64) -> S + Sync,
{
    /// Halves the tensor list while both halves have at least a chunk's worth of work (so a
    /// task is never smaller than a chunk, as rayon's adaptive splitting would have it), then
    /// steps the tensors of a half one after the other, splitting large ones into chunks.
    fn tensors<St: Slot<T>>(
        &self,
        params: &mut [&mut [T]],
        grads: &[&[T]],
        states: &mut [St],
        total: usize,
    ) {
        if params.len() > 1 && total > 2 * self.exec.chunk {
            let (mid, left) = halves(params.iter().map(|p| p.len()), total);
            let (pa, pb) = params.split_at_mut(mid);
            let (ga, gb) = grads.split_at(mid);
            let (sa, sb) = states.split_at_mut(mid);
            rayon::join(
                || self.tensors(pa, ga, sa, left),
                || self.tensors(pb, gb, sb, total - left),
            );
            return;
        }
        for ((p, g), t) in params.iter_mut().zip(grads).zip(states) {
            let s = (self.scalars)(*t.step_mut());
            let (list, n) = t.buffer_list();
            let chunk = self.exec.chunk_len(p.len());
            self.chunks(&s, p, g, list, n, chunk);
        }
    }

    fn chunks(
        &self,
        s: &S,
        params: &mut [T],
        grads: &[T],
        mut list: [&mut [T]; MAX_BUFFERS],
        n: usize,
        chunk: usize,
    ) {
        let mid = match split_point(params.len(), chunk, self.align) {
            Some(mid) if params.len() > chunk => mid,
            _ => {
                (self.kernel)(self.exec.isa, s, params, grads, &mut list[..n]);
                return;
            }
        };
        let (pa, pb) = params.split_at_mut(mid);
        let (ga, gb) = grads.split_at(mid);
        let mut right: [&mut [T]; MAX_BUFFERS] = Default::default();
        for (l, r) in list.iter_mut().zip(right.iter_mut()).take(n) {
            let (a, b) = core::mem::take(l).split_at_mut(mid);
            *l = a;
            *r = b;
        }
        rayon::join(
            || self.chunks(s, pa, ga, list, n, chunk),
            || self.chunks(s, pb, gb, right, n, chunk),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{halves, split_point};

    #[test]
    fn splits_are_balanced_aligned_and_never_empty() {
        assert_eq!(split_point(10, 4, 1), Some(4));
        assert_eq!(split_point(100, 10, 1), Some(50));
        assert_eq!(split_point(1000, 100, 256), Some(512));
        assert_eq!(split_point(5, 4, 1), Some(4));
        // No aligned cut inside: no split (it used to return the whole length).
        assert_eq!(split_point(200, 100, 256), None);
        assert_eq!(split_point(4, 4, 1), None);
        assert_eq!(halves([1usize, 1].into_iter(), 2), (1, 1));
        assert_eq!(halves([100usize, 1, 1].into_iter(), 102), (1, 100));
        assert_eq!(halves([1usize, 1, 100].into_iter(), 102), (2, 2));
        assert_eq!(halves([5usize, 5, 5, 5].into_iter(), 20), (2, 10));
    }
}
