//! How a step runs: the instruction set of its kernels and how it spreads over threads.

use crate::kernel::fast::Isa;
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
        if self.non_finite == NonFinitePolicy::Propagate || self.all_finite(grads) {
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
    /// a step.
    fn all_finite<T: Float>(&self, grads: &[&[T]]) -> bool {
        let isa = self.isa;
        #[cfg(feature = "parallel")]
        if let Some(pool) = &self.pool {
            let total: usize = grads.iter().map(|g| g.len()).sum();
            if total >= self.min_parallel {
                use rayon::prelude::*;
                let chunks: Vec<&[T]> = grads
                    .iter()
                    .flat_map(|g| g.chunks(self.chunk_len(g.len())))
                    .collect();
                return pool.install(|| {
                    chunks
                        .par_iter()
                        .all(|c| crate::kernel::fast::all_finite(isa, c))
                });
            }
        }
        grads
            .iter()
            .all(|g| crate::kernel::fast::all_finite(isa, g))
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

    /// Runs `kernel` over every job, on this setting's threads when the work is large enough.
    fn run<T, S>(
        &self,
        jobs: &mut [Job<'_, T, S>],
        kernel: impl Fn(Isa, &S, &mut [T], &[T], &mut [&mut [T]; 3]) + Sync,
    ) where
        T: Send + Sync,
        S: Send + Sync,
    {
        let isa = self.isa;
        let run_one =
            |j: &mut Job<'_, T, S>| kernel(isa, &j.scalars, j.params, j.grads, &mut j.buffers);
        #[cfg(feature = "parallel")]
        if let Some(pool) = &self.pool {
            if jobs.len() > 1 {
                use rayon::prelude::*;
                pool.install(|| jobs.par_iter_mut().for_each(run_one));
                return;
            }
        }
        jobs.iter_mut().for_each(run_one);
    }

    /// One step over every tensor: advances each tensor's step count, builds its scalars, and
    /// runs `kernel` over it, on this setting's threads when the work is large enough.
    pub(crate) fn step_all<T, S, St>(
        &self,
        params: &mut [&mut [T]],
        grads: &[&[T]],
        states: &mut [St],
        scalars: impl Fn(u64) -> S,
        kernel: impl Fn(Isa, &S, &mut [T], &[T], &mut [&mut [T]; 3]) + Sync,
    ) where
        T: Float,
        S: Copy + Send + Sync,
        St: TensorBuffers<T>,
    {
        if self.threads > 1 && self.parallel_for(params.iter().map(|p| p.len()).sum()) {
            let mut jobs = Vec::new();
            for ((p, g), t) in params.iter_mut().zip(grads).zip(states) {
                let s = scalars(t.next_step());
                let chunk = self.chunk_len(p.len());
                push_chunks(&mut jobs, s, p, g, t.buffers(), chunk);
            }
            self.run(&mut jobs, kernel);
        } else {
            for ((p, g), t) in params.iter_mut().zip(grads).zip(states) {
                let s = scalars(t.next_step());
                kernel(self.isa, &s, p, g, &mut t.buffers());
            }
        }
    }

    /// Whether a step over `total` elements should be split into jobs at all.
    pub(crate) fn parallel_for(&self, total: usize) -> bool {
        self.threads > 1 && total >= self.min_parallel
    }

    pub(crate) fn chunk_len(&self, len: usize) -> usize {
        // At least `chunk`, and at most a share that keeps every thread busy.
        let share = len.div_ceil(self.threads * 4).max(1);
        share.max(self.chunk.min(len.max(1)))
    }
}

/// A tensor's optimizer state as the driver sees it: a step counter and up to three buffers
/// (unused ones empty).
pub(crate) trait TensorBuffers<T> {
    /// Advances the step count and returns the new one (1 for the first step).
    fn next_step(&mut self) -> u64;
    /// The state buffers, in the order the optimizer's kernel takes them.
    fn buffers(&mut self) -> [&mut [T]; 3];
}

/// One unit of work: a chunk of one tensor with its state buffers (empty when unused).
pub(crate) struct Job<'a, T, S> {
    pub scalars: S,
    pub params: &'a mut [T],
    pub grads: &'a [T],
    pub buffers: [&'a mut [T]; 3],
}

/// Splits a tensor and its buffers into jobs of `chunk` elements.
pub(crate) fn push_chunks<'a, T, S: Copy>(
    jobs: &mut Vec<Job<'a, T, S>>,
    scalars: S,
    mut params: &'a mut [T],
    mut grads: &'a [T],
    mut buffers: [&'a mut [T]; 3],
    chunk: usize,
) {
    while !params.is_empty() {
        let n = chunk.min(params.len());
        let (p, p_rest) = params.split_at_mut(n);
        let (g, g_rest) = grads.split_at(n);
        let mut parts: [&'a mut [T]; 3] = [&mut [], &mut [], &mut []];
        for (k, b) in buffers.iter_mut().enumerate() {
            let buf = core::mem::take(b);
            if buf.is_empty() {
                continue;
            }
            let (head, tail) = buf.split_at_mut(n);
            parts[k] = head;
            *b = tail;
        }
        jobs.push(Job {
            scalars,
            params: p,
            grads: g,
            buffers: parts,
        });
        params = p_rest;
        grads = g_rest;
    }
}
