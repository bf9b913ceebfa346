//! The trait every optimizer implements.

use crate::{Execution, Float, Result};

/// An optimizer that updates many parameter tensors in place from their gradients.
///
/// `params[i]` is updated from `grads[i]`; the optimizer keeps one state per
/// tensor, created on the first step. A step either succeeds or returns an
/// error without touching any parameter or state.
///
/// # Examples
/// ```
/// use rmsprop::{Optimizer, RmsProp, RmsPropConfig};
/// fn train<O: Optimizer<f64>>(opt: &mut O, w: &mut [f64], b: &mut [f64]) {
///     for _ in 0..100 {
///         let gw: Vec<f64> = w.iter().map(|x| 2.0 * x).collect(); // d/dw of |w|^2
///         let gb: Vec<f64> = b.iter().map(|x| 2.0 * x).collect();
///         opt.step(&mut [&mut *w, &mut *b], &[&gw, &gb]).unwrap();
///     }
/// }
/// let mut opt = RmsProp::new(RmsPropConfig::pytorch().with_lr(0.05)).unwrap();
/// let (mut w, mut b) = (vec![1.0, -2.0, 3.0], vec![0.5]);
/// train(&mut opt, &mut w, &mut b);
/// assert!(w.iter().chain(&b).all(|x| x.abs() < 0.5));
/// assert_eq!(opt.steps(), 100);
/// ```
pub trait Optimizer<T: Float> {
    /// A short name: `"rmsprop"`, `"adam"`, ...
    fn name(&self) -> &'static str;

    /// Updates every tensor of `params` in place from the matching gradient in `grads`.
    ///
    /// # Errors
    /// When the number of gradients differs from the number of tensors, a
    /// gradient's length differs from its tensor's, or the tensors do not match
    /// the optimizer's state (see [`Error`](crate::Error)). Nothing is modified then.
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()>;

    /// Checks that [`step`](Optimizer::step) would accept these tensors, without modifying
    /// anything (what a caller stepping several optimizers as one transaction needs).
    ///
    /// # Errors
    /// As [`step`](Optimizer::step).
    fn check(&self, params: &[&mut [T]], grads: &[&[T]]) -> Result<()>;

    /// Applies this optimizer's [`NonFinitePolicy`](crate::NonFinitePolicy) to gradients without
    /// stepping: `Ok(true)` if a step would apply them, `Ok(false)` if it would skip.
    ///
    /// # Errors
    /// [`Error::NonFiniteGradient`](crate::Error::NonFiniteGradient) under the `Error` policy.
    fn screen_gradients(&self, grads: &[&[T]]) -> Result<bool> {
        let _ = grads;
        Ok(true)
    }

    /// Updates every tensor like [`step`](Optimizer::step), without the non-finite screen: for a
    /// wrapper that has already checked these tensors ([`check`](Optimizer::check)) and
    /// screened these gradients ([`screen_gradients`](Optimizer::screen_gradients) returned
    /// `Ok(true)`), so the gradients are read once, not twice. The default runs `step`.
    ///
    /// # Errors
    /// As [`step`](Optimizer::step).
    fn step_screened(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        self.step(params, grads)
    }

    /// Updates a single tensor: shorthand for `step(&mut [params], &[grads])`.
    ///
    /// # Errors
    /// As [`step`](Optimizer::step).
    fn step_single(&mut self, params: &mut [T], grads: &[T]) -> Result<()> {
        self.step(&mut [params], &[grads])
    }

    /// The current learning rate.
    fn learning_rate(&self) -> f64;

    /// Changes the learning rate for the following steps (what a scheduler does).
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`](crate::Error::InvalidHyperparameter) when `lr` is negative or not finite.
    fn set_learning_rate(&mut self, lr: f64) -> Result<()>;

    /// Number of parameter groups with their own learning rate (1 unless this is a
    /// [`ParamGroups`](crate::ParamGroups)).
    fn group_count(&self) -> usize {
        1
    }

    /// The learning rate of group `group` (`0..group_count()`).
    fn group_learning_rate(&self, group: usize) -> f64 {
        debug_assert_eq!(group, 0);
        self.learning_rate()
    }

    /// Sets the learning rate of group `group` (what a scheduler does, group by group).
    ///
    /// # Errors
    /// As [`set_learning_rate`](Optimizer::set_learning_rate).
    fn set_group_learning_rate(&mut self, group: usize, lr: f64) -> Result<()> {
        debug_assert_eq!(group, 0);
        self.set_learning_rate(lr)
    }

    /// Number of successful steps taken since creation or the last reset.
    fn steps(&self) -> u64;

    /// Number of steps skipped for non-finite gradients under
    /// [`NonFinitePolicy::Skip`](crate::NonFinitePolicy::Skip).
    fn skipped_steps(&self) -> u64 {
        0
    }

    /// Forgets all state, as if newly created with the same configuration.
    fn reset(&mut self);

    /// Sets how steps run (threads; the instruction set is detected). Results do not depend on it.
    fn set_execution(&mut self, execution: Execution);

    /// The named state buffers of tensor `index` (empty before the first step, or for a
    /// stateless optimizer), e.g. `[("square_avg", ..), ("momentum_buffer", ..)]`.
    fn state_buffers(&self, index: usize) -> Vec<(&'static str, &[T])>;
}

/// A boxed optimizer is an optimizer: mix kinds in one [`ParamGroups`](crate::ParamGroups), or
/// choose one at run time.
///
/// # Examples
/// ```
/// use rmsprop::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
/// let mut opts: Vec<Box<dyn Optimizer<f64>>> = vec![
///     Box::new(Sgd::new(SgdConfig::plain(0.1)).unwrap()),
///     Box::new(Adam::new(AdamConfig::pytorch()).unwrap()),
/// ];
/// for opt in &mut opts {
///     opt.step_single(&mut [1.0], &[1.0]).unwrap();
/// }
/// assert_eq!(opts[1].name(), "adam");
/// ```
impl<T: Float, O: Optimizer<T> + ?Sized> Optimizer<T> for Box<O> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn check(&self, params: &[&mut [T]], grads: &[&[T]]) -> Result<()> {
        (**self).check(params, grads)
    }
    fn screen_gradients(&self, grads: &[&[T]]) -> Result<bool> {
        (**self).screen_gradients(grads)
    }
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        (**self).step(params, grads)
    }
    fn step_screened(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        (**self).step_screened(params, grads)
    }
    fn learning_rate(&self) -> f64 {
        (**self).learning_rate()
    }
    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        (**self).set_learning_rate(lr)
    }
    fn group_count(&self) -> usize {
        (**self).group_count()
    }
    fn group_learning_rate(&self, group: usize) -> f64 {
        (**self).group_learning_rate(group)
    }
    fn set_group_learning_rate(&mut self, group: usize, lr: f64) -> Result<()> {
        (**self).set_group_learning_rate(group, lr)
    }
    fn steps(&self) -> u64 {
        (**self).steps()
    }
    fn skipped_steps(&self) -> u64 {
        (**self).skipped_steps()
    }
    fn reset(&mut self) {
        (**self).reset()
    }
    fn set_execution(&mut self, execution: Execution) {
        (**self).set_execution(execution)
    }
    fn state_buffers(&self, index: usize) -> Vec<(&'static str, &[T])> {
        (**self).state_buffers(index)
    }
}
