//! Adagrad (Duchi et al. 2011), as PyTorch's `torch.optim.Adagrad` and optax's `adagrad`.
//!
//! ```text
//! g = g + wd*p;  s = s + g^2;  p = p - lr_t * g / (sqrt(s) + eps),  lr_t = lr / (1 + (t-1)*lr_decay)
//! ```

use crate::exec::TensorBuffers;
use crate::kernel::adagrad::AdagradScalars;
use crate::kernel::fast;
use crate::optim::common::{
    check_non_negative, check_step, common_inherent_methods, common_optimizer_methods,
};
use crate::optim::FamilyOrder;
use crate::{Error, Execution, Float, Optimizer, Result};

/// Configuration of [`Adagrad`]. Defaults are PyTorch's.
///
/// # Examples
/// ```
/// use rmsprop::{Adagrad, AdagradConfig, Optimizer};
/// let mut opt = Adagrad::<f64>::new(AdagradConfig::pytorch().with_lr(0.5)).unwrap();
/// let mut x = [1.0];
/// opt.step_single(&mut x, &[4.0]).unwrap();
/// assert!((x[0] - 0.5).abs() < 1e-9); // the first step moves by lr
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdagradConfig {
    /// Learning rate, finite and `>= 0`. Default 0.01.
    pub lr: f64,
    /// Learning-rate decay: step `t` uses `lr / (1 + (t-1)*lr_decay)` (PyTorch). Default 0.
    pub lr_decay: f64,
    /// Coupled (L2) weight decay. Default 0.
    pub weight_decay: f64,
    /// Initial value of the sum of squares. Default 0 (PyTorch); optax and Keras use 0.1.
    pub initial_accumulator_value: f64,
    /// Epsilon: outside the root (Torch order) or inside it (Optax order). Default 1e-10.
    pub eps: f64,
    /// Gradient ascent. Default `false`.
    pub maximize: bool,
    /// Operation order. Default [`FamilyOrder::Torch`].
    pub order: FamilyOrder,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        Self::pytorch()
    }
}

impl AdagradConfig {
    /// `torch.optim.Adagrad` defaults: lr 0.01, eps 1e-10 outside the root, accumulator from 0.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::AdagradConfig::pytorch().eps, 1e-10);
    /// ```
    pub fn pytorch() -> Self {
        Self {
            lr: 0.01,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
            order: FamilyOrder::Torch,
        }
    }

    /// optax `adagrad` defaults: accumulator from 0.1, eps 1e-7 inside the root, no update
    /// where the accumulator is 0. optax requires a learning rate; this preset uses 0.01.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::AdagradConfig::optax().initial_accumulator_value, 0.1);
    /// ```
    pub fn optax() -> Self {
        Self {
            initial_accumulator_value: 0.1,
            eps: 1e-7,
            order: FamilyOrder::Optax,
            ..Self::pytorch()
        }
    }

    /// Sets the learning rate.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::AdagradConfig::pytorch().with_lr(0.1).lr, 0.1);
    /// ```
    pub fn with_lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }

    /// Checks every hyperparameter.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] naming the parameter.
    ///
    /// # Examples
    /// ```
    /// let mut c = rmsprop::AdagradConfig::pytorch();
    /// c.lr_decay = -1.0;
    /// assert!(c.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_non_negative("lr", self.lr)?;
        check_non_negative("lr_decay", self.lr_decay)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        check_non_negative("initial_accumulator_value", self.initial_accumulator_value)?;
        check_non_negative("eps", self.eps)?;
        Ok(())
    }
}

/// The state [`Adagrad`] keeps for one tensor.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdagradTensorState<T> {
    /// Steps taken by this tensor.
    pub step: u64,
    /// Sum of squared gradients.
    pub sum: Vec<T>,
}

/// Adagrad over many tensors.
///
/// # Examples
/// ```
/// use rmsprop::{Adagrad, AdagradConfig, Optimizer};
/// let mut opt = Adagrad::<f32>::new(AdagradConfig::optax().with_lr(0.5)).unwrap();
/// let mut x = vec![1.0f32, -1.0];
/// for _ in 0..100 {
///     let g: Vec<f32> = x.iter().map(|v| 2.0 * v).collect();
///     opt.step_single(&mut x, &g).unwrap();
/// }
/// assert!(x.iter().all(|v| v.abs() < 0.05));
/// ```
#[derive(Clone, Debug)]
pub struct Adagrad<T: Float> {
    exec: Execution,
    skipped: u64,
    config: AdagradConfig,
    steps: u64,
    tensors: Vec<AdagradTensorState<T>>,
}

impl<T: Float> Adagrad<T> {
    common_inherent_methods!();

    /// Creates the optimizer after validating `config`.
    ///
    /// # Errors
    /// As [`AdagradConfig::validate`].
    pub fn new(config: AdagradConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            exec: Execution::default(),
            skipped: 0,
            steps: 0,
            tensors: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AdagradConfig {
        &self.config
    }

    /// Per-tensor state.
    pub fn tensor_states(&self) -> &[AdagradTensorState<T>] {
        &self.tensors
    }

    /// Replaces the state.
    ///
    /// # Errors
    /// Never for Adagrad (every tensor has one buffer); kept for symmetry with the others.
    pub fn set_tensor_states(
        &mut self,
        tensors: Vec<AdagradTensorState<T>>,
        steps: u64,
    ) -> Result<(), Error> {
        self.tensors = tensors;
        self.steps = steps;
        Ok(())
    }

    /// The kernel's scalars for a tensor at step `t` (1 for the first).
    ///
    /// # Examples
    /// ```
    /// let mut c = rmsprop::AdagradConfig::pytorch();
    /// c.lr_decay = 0.5;
    /// let opt = rmsprop::Adagrad::<f64>::new(c).unwrap();
    /// assert_eq!(opt.scalars(3).lr, 0.01 / 2.0);
    /// ```
    pub fn scalars(&self, t: u64) -> AdagradScalars<T> {
        let c = &self.config;
        let lr = match c.order {
            FamilyOrder::Torch => c.lr / (1.0 + (t.saturating_sub(1)) as f64 * c.lr_decay),
            FamilyOrder::Optax => c.lr,
        };
        AdagradScalars {
            lr: T::from_f64(lr),
            eps: T::from_f64(c.eps),
            weight_decay: T::from_f64(c.weight_decay),
            maximize: c.maximize,
            order: c.order,
        }
    }
}

impl<T: Float> Optimizer<T> for Adagrad<T> {
    fn name(&self) -> &'static str {
        "adagrad"
    }

    common_optimizer_methods!();

    fn check(&self, params: &[&mut [T]], grads: &[&[T]]) -> Result<()> {
        let tensors = &self.tensors;
        check_step(params, grads, tensors.len(), |i| tensors[i].sum.len())
    }

    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        self.check(params, grads)?;
        if !self.exec.screen(grads)? {
            self.skipped += 1;
            return Ok(());
        }
        if self.tensors.is_empty() {
            let s0 = T::from_f64(self.config.initial_accumulator_value);
            self.tensors = params
                .iter()
                .map(|p| AdagradTensorState {
                    step: 0,
                    sum: vec![s0; p.len()],
                })
                .collect();
        }
        let mut tensors = core::mem::take(&mut self.tensors);
        self.exec.step_all(
            params,
            grads,
            &mut tensors,
            |t| self.scalars(t),
            |isa, s, p, g, [v, ..]| fast::adagrad(isa, s, p, g, v),
        );
        self.tensors = tensors;
        self.steps += 1;
        Ok(())
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn reset(&mut self) {
        self.steps = 0;
        self.tensors.clear();
    }

    fn state_buffers(&self, index: usize) -> Vec<(&'static str, &[T])> {
        self.tensors
            .get(index)
            .map(|t| vec![("sum", t.sum.as_slice())])
            .unwrap_or_default()
    }
}

impl<T> TensorBuffers<T> for AdagradTensorState<T> {
    fn next_step(&mut self) -> u64 {
        self.step += 1;
        self.step
    }

    fn buffers(&mut self) -> [&mut [T]; 3] {
        [&mut self.sum, &mut [], &mut []]
    }
}
