//! Many tensors in groups with their own hyperparameters, stepped together (PyTorch's param groups).

use core::marker::PhantomData;

use crate::{Error, Execution, Float, Optimizer, Result};

/// One group: a name, the number of tensors it owns, and the optimizer (hence the
/// hyperparameters and per-tensor state) those tensors share.
#[derive(Clone, Debug)]
pub struct ParamGroup<O> {
    /// The group's name (e.g. `"biases"`).
    pub name: String,
    /// Number of consecutive tensors, in the order passed to `step`, that belong to this group.
    pub tensors: usize,
    /// The group's optimizer; change its hyperparameters between steps through it.
    pub optimizer: O,
}

/// Tensors organised in groups, each with its own optimizer and hyperparameters, stepped as one.
///
/// `step` takes all tensors, group after group, in the order the groups were added. The step is
/// a transaction: every group checks its tensors before any group changes anything. Groups can be
/// added between steps (their state starts empty, like PyTorch's `add_param_group`).
///
/// # Examples
/// No weight decay on the bias, a smaller learning rate for the embedding:
/// ```
/// use rmsprop::{Optimizer, ParamGroups, RmsProp, RmsPropConfig, WeightDecayStyle};
/// let base = RmsPropConfig::pytorch().with_lr(1e-2);
/// let mut groups = ParamGroups::<f32, RmsProp<f32>>::new();
/// groups.add_group("weights", 1, RmsProp::new(base.clone().with_weight_decay(1e-4, WeightDecayStyle::Coupled)).unwrap());
/// groups.add_group("bias", 1, RmsProp::new(base.clone()).unwrap());
/// groups.add_group("embedding", 1, RmsProp::new(base.with_lr(1e-3)).unwrap());
///
/// let (mut w, mut b, mut e) = (vec![1.0f32; 4], vec![0.0f32; 2], vec![0.5f32; 8]);
/// groups.step(&mut [&mut w, &mut b, &mut e], &[&[0.1; 4], &[0.2; 2], &[0.3; 8]]).unwrap();
///
/// // Read and change a group's hyperparameters between steps, as a scheduler does.
/// assert_eq!(groups.group("embedding").unwrap().optimizer.learning_rate(), 1e-3);
/// groups.group_mut("bias").unwrap().optimizer.set_learning_rate(5e-3).unwrap();
/// assert_eq!(groups.group_learning_rate(1), 5e-3);
/// ```
#[derive(Clone, Debug)]
pub struct ParamGroups<T: Float, O: Optimizer<T>> {
    groups: Vec<ParamGroup<O>>,
    steps: u64,
    _element: PhantomData<fn() -> T>,
}

impl<T: Float, O: Optimizer<T>> Default for ParamGroups<T, O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float, O: Optimizer<T>> ParamGroups<T, O> {
    /// No groups yet.
    pub fn new() -> Self {
        Self {
            groups: Vec::new(),
            steps: 0,
            _element: PhantomData,
        }
    }

    /// Adds a group owning the next `tensors` tensors, with its own optimizer.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::{ParamGroups, Sgd, SgdConfig};
    /// let mut g = ParamGroups::<f64, Sgd<f64>>::new();
    /// g.add_group("all", 3, Sgd::new(SgdConfig::plain(0.1)).unwrap());
    /// assert_eq!(g.tensor_count(), 3);
    /// ```
    pub fn add_group(
        &mut self,
        name: impl Into<String>,
        tensors: usize,
        optimizer: O,
    ) -> &mut Self {
        self.groups.push(ParamGroup {
            name: name.into(),
            tensors,
            optimizer,
        });
        self
    }

    /// The groups, in order.
    pub fn groups(&self) -> &[ParamGroup<O>] {
        &self.groups
    }

    /// The groups, mutably (to change hyperparameters between steps).
    pub fn groups_mut(&mut self) -> &mut [ParamGroup<O>] {
        &mut self.groups
    }

    /// The first group named `name`.
    pub fn group(&self, name: &str) -> Option<&ParamGroup<O>> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The first group named `name`, mutably.
    pub fn group_mut(&mut self, name: &str) -> Option<&mut ParamGroup<O>> {
        self.groups.iter_mut().find(|g| g.name == name)
    }

    /// Total number of tensors over all groups.
    pub fn tensor_count(&self) -> usize {
        self.groups.iter().map(|g| g.tensors).sum()
    }

    fn locate(&self, index: usize) -> Option<(usize, usize)> {
        let mut start = 0;
        for (gi, g) in self.groups.iter().enumerate() {
            if index < start + g.tensors {
                return Some((gi, index - start));
            }
            start += g.tensors;
        }
        None
    }
}

/// Re-labels a group-local tensor index as a global one in an error.
fn globalize(err: Error, offset: usize) -> Error {
    match err {
        Error::GradientLength {
            index,
            params,
            grads,
        } => Error::GradientLength {
            index: index + offset,
            params,
            grads,
        },
        Error::StateLength {
            index,
            params,
            state,
        } => Error::StateLength {
            index: index + offset,
            params,
            state,
        },
        Error::NonFiniteGradient {
            index,
            element,
            value,
        } => Error::NonFiniteGradient {
            index: index + offset,
            element,
            value,
        },
        other => other,
    }
}

impl<T: Float, O: Optimizer<T>> Optimizer<T> for ParamGroups<T, O> {
    fn name(&self) -> &'static str {
        "param_groups"
    }

    fn check(&self, params: &[&mut [T]], grads: &[&[T]]) -> Result<()> {
        let total = self.tensor_count();
        if params.len() != grads.len() {
            return Err(Error::GradientCount {
                params: params.len(),
                grads: grads.len(),
            });
        }
        if params.len() != total {
            return Err(Error::TensorCount {
                state: total,
                params: params.len(),
            });
        }
        let mut start = 0;
        for g in &self.groups {
            let end = start + g.tensors;
            g.optimizer
                .check(&params[start..end], &grads[start..end])
                .map_err(|e| globalize(e, start))?;
            start = end;
        }
        Ok(())
    }

    fn screen_gradients(&self, grads: &[&[T]]) -> Result<bool> {
        let mut all = true;
        let mut start = 0;
        for g in &self.groups {
            let end = start + g.tensors;
            all &= g
                .optimizer
                .screen_gradients(&grads[start..end])
                .map_err(|e| globalize(e, start))?;
            start = end;
        }
        Ok(all)
    }

    /// Steps every group. Under `NonFinitePolicy::Error` a non-finite gradient in any group
    /// stops the whole step before any group changes; under `Skip` only the affected groups skip.
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        self.check(params, grads)?;
        self.screen_gradients(grads)?;
        let (mut params, mut grads) = (params, grads);
        for g in &mut self.groups {
            let (p, rest) = params.split_at_mut(g.tensors);
            let (gr, grest) = grads.split_at(g.tensors);
            g.optimizer.step(p, gr)?;
            params = rest;
            grads = grest;
        }
        self.steps += 1;
        Ok(())
    }

    /// The first group's learning rate (0 without groups).
    fn learning_rate(&self) -> f64 {
        self.groups
            .first()
            .map_or(0.0, |g| g.optimizer.learning_rate())
    }

    /// Sets every group's learning rate to `lr`.
    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        crate::optim::common::check_non_negative("lr", lr)?;
        for g in &mut self.groups {
            g.optimizer.set_learning_rate(lr)?;
        }
        Ok(())
    }

    fn group_count(&self) -> usize {
        self.groups.len()
    }

    fn group_learning_rate(&self, group: usize) -> f64 {
        self.groups[group].optimizer.learning_rate()
    }

    fn set_group_learning_rate(&mut self, group: usize, lr: f64) -> Result<()> {
        self.groups[group].optimizer.set_learning_rate(lr)
    }

    fn skipped_steps(&self) -> u64 {
        self.groups
            .iter()
            .map(|g| g.optimizer.skipped_steps())
            .max()
            .unwrap_or(0)
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn reset(&mut self) {
        self.steps = 0;
        for g in &mut self.groups {
            g.optimizer.reset();
        }
    }

    fn set_execution(&mut self, execution: Execution) {
        for g in &mut self.groups {
            g.optimizer.set_execution(execution.clone());
        }
    }

    fn state_buffers(&self, index: usize) -> Vec<(&'static str, &[T])> {
        match self.locate(index) {
            Some((gi, local)) => self.groups[gi].optimizer.state_buffers(local),
            None => Vec::new(),
        }
    }
}
