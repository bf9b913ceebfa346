//! Gradient accumulation over micro-batches, as Keras' `gradient_accumulation_steps`.

use crate::optim::common::check_step;
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
    sums: Vec<Vec<T>>,
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
            sums: Vec::new(),
        })
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// Micro-batches accumulated since the last update.
    pub fn pending(&self) -> usize {
        self.calls
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

    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        self.check(params, grads)?;
        // A micro-batch with a non-finite gradient is refused (or dropped) before it can
        // poison the sum.
        if !self.inner.screen_gradients(grads)? {
            return Ok(());
        }
        if self.sums.is_empty() {
            self.sums = grads.iter().map(|g| vec![T::ZERO; g.len()]).collect();
        }
        self.calls += 1;
        if self.calls < self.every {
            for (s, g) in self.sums.iter_mut().zip(grads) {
                for (a, &x) in s.iter_mut().zip(g.iter()) {
                    *a = *a + x;
                }
            }
            return Ok(());
        }
        let k = T::from_f64(self.every as f64);
        for (s, g) in self.sums.iter_mut().zip(grads) {
            for (a, &x) in s.iter_mut().zip(g.iter()) {
                *a = (*a + x) / k;
            }
        }
        let means: Vec<&[T]> = self.sums.iter().map(|s| s.as_slice()).collect();
        let result = self.inner.step(params, &means);
        for s in &mut self.sums {
            s.fill(T::ZERO);
        }
        self.calls = 0;
        result
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

    fn skipped_steps(&self) -> u64 {
        self.inner.skipped_steps()
    }

    fn steps(&self) -> u64 {
        self.inner.steps()
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.calls = 0;
        self.sums.clear();
    }

    fn set_execution(&mut self, execution: Execution) {
        self.inner.set_execution(execution)
    }

    fn state_buffers(&self, index: usize) -> Vec<(&'static str, &[T])> {
        self.inner.state_buffers(index)
    }
}
