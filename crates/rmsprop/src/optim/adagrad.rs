//! Adagrad (Duchi et al. 2011), as PyTorch's `torch.optim.Adagrad` and optax's `adagrad`.
//!
//! ```text
//! g = g + wd*p;  s = s + g^2;  p = p - lr_t * g / (sqrt(s) + eps),  lr_t = lr / (1 + (t-1)*lr_decay)
//! ```

use crate::algorithm::{Algorithm, BufferSpec, Layout};
use crate::check::check_non_negative;
use crate::kernel::adagrad::{adagrad_reference, select_adagrad, AdagradScalars};
use crate::kernel::{next_buffer, Kernel};
use crate::optim::Optim;
use crate::options::FamilyOrder;
use crate::{Float, Result};

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
    /// [`Error::InvalidHyperparameter`](crate::Error::InvalidHyperparameter) naming the parameter.
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

/// Adagrad over many tensors: [`Optim`] with an [`AdagradConfig`].
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
pub type Adagrad<T> = Optim<AdagradConfig, T>;

impl Algorithm for AdagradConfig {
    const KIND: &'static str = "adagrad";
    type Scalars<T: Float> = AdagradScalars<T>;

    fn validate(&self) -> Result<()> {
        AdagradConfig::validate(self)
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// `sum`, from `initial_accumulator_value`.
    fn layout(&self) -> Layout {
        Layout::new(vec![BufferSpec::new("sum", self.initial_accumulator_value)])
    }

    fn variant(&self) -> String {
        let mut v = format!("order={}", self.order);
        if self.maximize {
            v.push_str("+maximize");
        }
        v
    }

    /// Torch order: the learning rate of step `t` is `lr / (1 + (t-1)*lr_decay)`.
    ///
    /// # Examples
    /// ```
    /// let mut c = rmsprop::AdagradConfig::pytorch();
    /// c.lr_decay = 0.5;
    /// let opt = rmsprop::Adagrad::<f64>::new(c).unwrap();
    /// assert_eq!(opt.scalars(3).lr, 0.01 / 2.0);
    /// ```
    fn scalars<T: Float>(&self, t: u64) -> AdagradScalars<T> {
        let c = self;
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

    /// Only PyTorch's learning-rate decay changes with the step.
    fn scalars_depend_on_step(&self) -> bool {
        self.order == FamilyOrder::Torch && self.lr_decay != 0.0
    }

    fn kernel<T: Float>(&self) -> Kernel<T, AdagradScalars<T>> {
        select_adagrad(&self.scalars::<T>(1))
    }

    fn reference<T: Float>(
        s: &AdagradScalars<T>,
        params: &mut [T],
        grads: &[T],
        mut buffers: &mut [&mut [T]],
    ) {
        adagrad_reference(s, params, grads, next_buffer(&mut buffers))
    }
}
