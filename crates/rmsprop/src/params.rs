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
/// a transaction: every group checks its tensors and screens its gradients before any group
/// changes anything, so a step that fails or is skipped (a NaN in any group under
/// [`NonFinitePolicy::Skip`](crate::NonFinitePolicy::Skip)) leaves every group as it was and
/// counts one skipped step. Groups can be
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
    skipped: u64,
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
            skipped: 0,
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

    /// Every group screens its own gradients with its own policy; the step goes on only if
    /// all of them would.
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

    /// Steps every group, as one transaction: a non-finite gradient in any group fails the whole
    /// step (`Error` policy) or skips it for every group, counted once (`Skip`).
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        self.check(params, grads)?;
        if !self.screen_gradients(grads)? {
            self.skipped = self.skipped.saturating_add(1);
            return Ok(());
        }
        self.step_screened(params, grads)
    }

    fn step_screened(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        self.check(params, grads)?;
        let (mut params, mut grads) = (params, grads);
        for g in &mut self.groups {
            let (p, rest) = params.split_at_mut(g.tensors);
            let (gr, grest) = grads.split_at(g.tensors);
            // Checked and screened above, for every group: this cannot fail.
            g.optimizer.step_screened(p, gr)?;
            params = rest;
            grads = grest;
        }
        self.steps = self.steps.saturating_add(1);
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
        crate::check::check_non_negative("lr", lr)?;
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

    /// Steps skipped as a whole (a group never skips alone).
    fn skipped_steps(&self) -> u64 {
        self.skipped
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

#[cfg(feature = "checkpoint")]
mod checkpoint {
    use serde_json::{json, Value};

    use super::ParamGroups;
    use crate::checkpoint::{
        expect_children, expect_kind, CheckpointError, Checkpointable, Snapshot,
    };
    use crate::Float;

    /// Groups checkpoint as a node with one child per group (its optimizer), plus the groups'
    /// names and tensor counts and the stack's own counters. Loading needs as many groups.
    impl<T: Float, O: Checkpointable<T>> Checkpointable<T> for ParamGroups<T, O> {
        fn kind(&self) -> &'static str {
            "param_groups"
        }

        fn snapshot(&self) -> Snapshot<T> {
            let mut s = Snapshot::node(self.kind(), Value::Null, self.steps, self.skipped);
            s.extra = json!({
                "groups": self
                    .groups
                    .iter()
                    .map(|g| json!({"name": g.name, "tensors": g.tensors}))
                    .collect::<Vec<_>>(),
            });
            s.children = self.groups.iter().map(|g| g.optimizer.snapshot()).collect();
            s
        }

        fn restore(&mut self, s: Snapshot<T>) -> Result<(), CheckpointError> {
            expect_kind(self.kind(), &s.kind)?;
            expect_children(&s, self.groups.len())?;
            let described = s.extra["groups"].as_array().cloned().unwrap_or_default();
            if described.len() != self.groups.len() {
                return Err(CheckpointError::Metadata {
                    field: "groups",
                    problem: format!(
                        "{} groups described, {} stored",
                        described.len(),
                        self.groups.len()
                    ),
                });
            }
            let mut layout = Vec::with_capacity(described.len());
            for (k, d) in described.iter().enumerate() {
                match (d["name"].as_str(), d["tensors"].as_u64()) {
                    (Some(name), Some(tensors)) => {
                        layout.push((name.to_string(), tensors as usize))
                    }
                    _ => {
                        return Err(CheckpointError::Metadata {
                            field: "groups",
                            problem: format!("group {k} needs a `name` and a `tensors` count"),
                        })
                    }
                }
            }
            // The groups' shape is the program's, like their number: each must own as many
            // tensors as the file says (the names are restored).
            for (k, (g, (_, tensors))) in self.groups.iter().zip(&layout).enumerate() {
                if g.tensors != *tensors {
                    return Err(CheckpointError::Mismatch {
                        what: "structure",
                        found: format!("group {k} with {tensors} tensors"),
                        expected: format!("group {k} with {}", g.tensors),
                    });
                }
            }
            for (g, child) in self.groups.iter_mut().zip(s.children) {
                g.optimizer.restore(child)?;
            }
            for (g, (name, _)) in self.groups.iter_mut().zip(layout) {
                g.name = name;
            }
            self.steps = s.steps;
            self.skipped = s.skipped_steps;
            Ok(())
        }
    }
}
