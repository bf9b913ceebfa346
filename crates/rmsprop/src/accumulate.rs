//! Gradient accumulation over micro-batches, as Keras' `gradient_accumulation_steps`.

use crate::check::check_step;
use crate::{Error, Execution, Float, Optimizer, Result};

/// Accumulates gradients over `every` micro-batches and steps the inner optimizer once with
/// their mean: the `k`-th call (k = every, 2*every, ...) applies `(acc + g) / every` and clears
/// the sum; the other calls only add `g` to it and leave the parameters alone. The inner
/// optimizer's step count counts real updates.
///
/// # Examples
/// ```
/// use rmsprop::{Accumulate, Optimizer, Sgd, SgdConfig};
/// let mut opt = Accumulate::new(Sgd::<f64>::new(SgdConfig::plain(1.0)).unwrap(), 2).unwrap();
/// let mut x = [0.0];
/// opt.step_single(&mut x, &[1.0]).unwrap();
/// assert_eq!(x, [0.0]); // accumulated only
/// opt.step_single(&mut x, &[3.0]).unwrap();
/// assert_eq!(x, [-2.0]); // mean of 1 and 3
/// ```
#[derive(Clone, Debug)]
pub struct Accumulate<T: Float, O> {
    inner: O,
    every: usize,
    calls: usize,
    dropped: u64,
    sums: Vec<Vec<T>>,
    scratch: Vec<Vec<T>>,
    /// The candidate's slice list, kept between calls so a call allocates nothing (empty
    /// between calls).
    views: Vec<&'static [T]>,
}

/// An emptied vector of shorter-lived references, keeping `v`'s allocation (the in-place
/// `collect` of an empty vector reuses its buffer; no element crosses the lifetimes).
fn relabel<'b, X: ?Sized>(mut v: Vec<&X>) -> Vec<&'b X> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("emptied above"))
        .collect()
}

impl<T: Float, O: Optimizer<T>> Accumulate<T, O> {
    /// Wraps `inner`, updating every `every` micro-batches.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for `every == 0`.
    pub fn new(inner: O, every: usize) -> Result<Self> {
        if every == 0 {
            return Err(Error::InvalidHyperparameter {
                name: "every",
                value: 0.0,
                allowed: "at least 1",
            });
        }
        Ok(Self {
            inner,
            every,
            calls: 0,
            dropped: 0,
            sums: Vec::new(),
            scratch: Vec::new(),
            views: Vec::new(),
        })
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The wrapped optimizer, mutably.
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.inner
    }

    /// Micro-batches per update.
    pub fn every(&self) -> usize {
        self.every
    }

    /// Micro-batches accumulated since the last update.
    pub fn pending(&self) -> usize {
        self.calls
    }

    /// Micro-batches dropped under [`NonFinitePolicy::Skip`](crate::NonFinitePolicy::Skip):
    /// a non-finite gradient, or a running sum that overflowed.
    pub fn dropped_micro_batches(&self) -> u64 {
        self.dropped
    }
}

impl<T: Float, O: Optimizer<T>> Optimizer<T> for Accumulate<T, O> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn check(&self, params: &[&mut [T]], grads: &[&[T]]) -> Result<()> {
        let sums = &self.sums;
        check_step(params, grads, sums.len(), |i| sums[i].len())?;
        self.inner.check(params, grads)
    }

    /// Adds a micro-batch. The candidate sum (or, on the `every`-th call, the mean) is computed
    /// aside and screened under the inner optimizer's policy before anything is kept: a
    /// non-finite gradient or an overflowing sum fails the call (`Error`) or drops the
    /// micro-batch, counted by [`dropped_micro_batches`](Accumulate::dropped_micro_batches)
    /// (`Skip`); either way the window accumulated so far is kept.
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        self.check(params, grads)?;
        if !self.inner.screen_gradients(grads)? {
            self.dropped = self.dropped.saturating_add(1);
            return Ok(());
        }
        if self.sums.is_empty() {
            self.sums = grads.iter().map(|g| vec![T::ZERO; g.len()]).collect();
            self.scratch = self.sums.clone();
        }
        let last = self.calls + 1 == self.every;
        let k = T::from_f64(self.every as f64);
        for ((next, s), g) in self.scratch.iter_mut().zip(&self.sums).zip(grads) {
            for ((n, &a), &x) in next.iter_mut().zip(s.iter()).zip(g.iter()) {
                *n = if last { (a + x) / k } else { a + x };
            }
        }
        let mut candidate: Vec<&[T]> = relabel(core::mem::take(&mut self.views));
        candidate.extend(self.scratch.iter().map(|s| s.as_slice()));
        let outcome = match self.inner.screen_gradients(&candidate) {
            Ok(true) if last => self.inner.step_screened(params, &candidate).map(|()| true),
            screened => screened,
        };
        self.views = relabel(candidate);
        if !outcome? {
            self.dropped = self.dropped.saturating_add(1);
            return Ok(());
        }
        if !last {
            core::mem::swap(&mut self.sums, &mut self.scratch);
            self.calls += 1;
            return Ok(());
        }
        for s in &mut self.sums {
            s.fill(T::ZERO);
        }
        self.calls = 0;
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.inner.learning_rate()
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        self.inner.set_learning_rate(lr)
    }

    fn group_count(&self) -> usize {
        self.inner.group_count()
    }

    fn group_learning_rate(&self, group: usize) -> f64 {
        self.inner.group_learning_rate(group)
    }

    fn set_group_learning_rate(&mut self, group: usize, lr: f64) -> Result<()> {
        self.inner.set_group_learning_rate(group, lr)
    }

    fn screen_gradients(&self, grads: &[&[T]]) -> Result<bool> {
        self.inner.screen_gradients(grads)
    }

    /// The inner optimizer's skipped steps plus the dropped micro-batches.
    fn skipped_steps(&self) -> u64 {
        self.inner.skipped_steps().saturating_add(self.dropped)
    }

    fn steps(&self) -> u64 {
        self.inner.steps()
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.calls = 0;
        self.sums.clear();
        self.scratch.clear();
    }

    fn set_execution(&mut self, execution: Execution) {
        self.inner.set_execution(execution)
    }

    fn state_buffers(&self, index: usize) -> Vec<(&'static str, &[T])> {
        self.inner.state_buffers(index)
    }
}

#[cfg(feature = "checkpoint")]
mod checkpoint {
    use serde_json::json;

    use super::Accumulate;
    use crate::checkpoint::{
        expect_children, expect_kind, extra_u64, CheckpointError, Checkpointable, Snapshot,
        TensorSnapshot,
    };
    use crate::Float;

    /// Accumulation checkpoints its window (every, pending count, dropped count and the
    /// running sums, as tensors `state.{i}.sum`) around the optimizer it feeds.
    impl<T: Float, O: Checkpointable<T>> Checkpointable<T> for Accumulate<T, O> {
        fn kind(&self) -> &'static str {
            "accumulate"
        }

        fn snapshot(&self) -> Snapshot<T> {
            let mut s = Snapshot::node(self.kind(), json!({"every": self.every}), 0, 0);
            s.extra = json!({"calls": self.calls, "dropped": self.dropped});
            s.tensors = self
                .sums
                .iter()
                .map(|v| TensorSnapshot {
                    step: 0,
                    len: v.len(),
                    buffers: vec![("sum".to_string(), v.clone())],
                })
                .collect();
            s.children = vec![self.inner.snapshot()];
            s
        }

        fn restore(&mut self, mut s: Snapshot<T>) -> Result<(), CheckpointError> {
            expect_kind(self.kind(), &s.kind)?;
            expect_children(&s, 1)?;
            let every =
                s.config["every"]
                    .as_u64()
                    .filter(|&k| k >= 1)
                    .ok_or(CheckpointError::Metadata {
                        field: "every",
                        problem: "missing, or not a whole number >= 1".into(),
                    })? as usize;
            let calls = extra_u64(&s.extra, "calls")? as usize;
            let dropped = extra_u64(&s.extra, "dropped")?;
            if calls >= every {
                return Err(CheckpointError::Metadata {
                    field: "calls",
                    problem: format!(
                        "{calls} pending micro-batches, but an update comes every {every}"
                    ),
                });
            }
            let mut sums = Vec::with_capacity(s.tensors.len());
            for (i, mut t) in s.tensors.drain(..).enumerate() {
                match (t.buffers.len(), t.buffers.pop()) {
                    (1, Some((name, v))) if name == "sum" => sums.push(v),
                    _ => {
                        return Err(CheckpointError::Tensor {
                            name: format!("state.{i}"),
                            problem: "an accumulator holds exactly one buffer, `sum`".into(),
                        })
                    }
                }
            }
            self.inner.restore(s.children.remove(0))?;
            self.every = every;
            self.calls = calls;
            self.dropped = dropped;
            self.scratch = sums.clone();
            self.sums = sums;
            Ok(())
        }
    }
}
