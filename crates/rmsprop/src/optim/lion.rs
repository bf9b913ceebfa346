//! Lion (Chen et al. 2023), "EvoLved Sign Momentum": a sign step along an interpolation of the
//! gradient and its momentum, as optax's `lion`.
//!
//! ```text
//! u = sign((1-b1)*g + b1*m);   m = (1-b2)*g + b2*m;   p = p - lr*(u + wd*p)
//! ```
//!
//! # References
//! - Chen et al., *Symbolic Discovery of Optimization Algorithms*, arXiv:2302.06675, 2023.

use crate::algorithm::{Algorithm, BufferSpec, Layout};
use crate::check::{check_non_negative, check_unit_interval};
use crate::kernel::lion::{lion_reference, select_lion, LionScalars};
use crate::kernel::{next_buffer, Kernel};
use crate::optim::Optim;
use crate::{Float, Result};

/// Configuration of [`Lion`]. Defaults are optax's (`b1` 0.9, `b2` 0.99, weight decay 1e-3),
/// with lr 1e-4 (optax requires one; the paper advises 3-10x below AdamW's).
///
/// # Examples
/// ```
/// use rmsprop::{Lion, LionConfig, Optimizer};
/// let mut opt = Lion::<f64>::new(LionConfig::optax().with_lr(0.01)).unwrap();
/// let mut x = [1.0, -0.5];
/// for _ in 0..200 {
///     let g = [2.0 * x[0], 2.0 * x[1]];
///     opt.step_single(&mut x, &g).unwrap();
/// }
/// assert!(x.iter().all(|v| v.abs() < 0.05)); // sign steps of 0.01 each
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LionConfig {
    /// Learning rate (the size of every sign step), finite and `>= 0`. Default 1e-4.
    pub lr: f64,
    /// Interpolation of the direction between gradient and momentum, in `[0, 1)`. Default 0.9.
    pub beta1: f64,
    /// Decay of the momentum, in `[0, 1)`. Default 0.99.
    pub beta2: f64,
    /// Decoupled weight decay, finite and `>= 0`: `p -= lr*wd*p`. Default 1e-3 (optax).
    pub weight_decay: f64,
}

impl Default for LionConfig {
    fn default() -> Self {
        Self::optax()
    }
}

impl LionConfig {
    /// optax `lion` defaults (b1 0.9, b2 0.99, weight decay 1e-3) with lr 1e-4.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::LionConfig::optax().weight_decay, 1e-3);
    /// ```
    pub fn optax() -> Self {
        Self {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.99,
            weight_decay: 1e-3,
        }
    }

    /// Sets the learning rate.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::LionConfig::optax().with_lr(3e-4).lr, 3e-4);
    /// ```
    pub fn with_lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }

    /// Sets the weight decay.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::LionConfig::optax().with_weight_decay(0.0).weight_decay, 0.0);
    /// ```
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Checks every hyperparameter.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`](crate::Error::InvalidHyperparameter) naming the field,
    /// its value and the allowed range.
    ///
    /// # Examples
    /// ```
    /// let mut c = rmsprop::LionConfig::optax();
    /// c.beta2 = 1.0;
    /// assert!(c.validate().unwrap_err().to_string().contains("beta2"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_non_negative("lr", self.lr)?;
        check_unit_interval("beta1", self.beta1)?;
        check_unit_interval("beta2", self.beta2)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        Ok(())
    }
}

/// Lion over many tensors: [`Optim`] with a [`LionConfig`].
///
/// # Examples
/// ```
/// use rmsprop::{Lion, LionConfig, Optimizer};
/// let mut opt = Lion::<f32>::new(LionConfig::optax().with_weight_decay(0.0)).unwrap();
/// let mut w = [1.0f32, 1.0];
/// opt.step_single(&mut w, &[5.0, -0.001]).unwrap();
/// assert_eq!(w, [1.0 - 1e-4, 1.0 + 1e-4]); // every coordinate moves by lr
/// ```
pub type Lion<T> = Optim<LionConfig, T>;

impl Algorithm for LionConfig {
    const KIND: &'static str = "lion";
    type Scalars<T: Float> = LionScalars<T>;

    fn validate(&self) -> Result<()> {
        LionConfig::validate(self)
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// `exp_avg`, from 0.
    fn layout(&self) -> Layout {
        Layout::new(vec![BufferSpec::new("exp_avg", 0.0)])
    }

    fn variant(&self) -> String {
        "order=optax".into()
    }

    fn scalars<T: Float>(&self, _step: u64) -> LionScalars<T> {
        LionScalars {
            lr: T::from_f64(self.lr),
            beta1: T::from_f64(self.beta1),
            one_minus_beta1: T::from_f64(1.0 - self.beta1),
            beta2: T::from_f64(self.beta2),
            one_minus_beta2: T::from_f64(1.0 - self.beta2),
            weight_decay: T::from_f64(self.weight_decay),
        }
    }

    fn scalars_depend_on_step(&self) -> bool {
        false
    }

    fn kernel<T: Float>(&self) -> Kernel<T, LionScalars<T>> {
        select_lion(&self.scalars::<T>(1))
    }

    fn reference<T: Float>(
        s: &LionScalars<T>,
        params: &mut [T],
        grads: &[T],
        mut buffers: &mut [&mut [T]],
    ) {
        lion_reference(s, params, grads, next_buffer(&mut buffers))
    }
}
