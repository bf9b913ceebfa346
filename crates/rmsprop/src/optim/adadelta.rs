//! Adadelta (Zeiler 2012), RMSProp's sibling: a square average of gradients *and* one of
//! updates, whose ratio sets the step, as PyTorch's `torch.optim.Adadelta` and optax's
//! `adadelta`.
//!
//! ```text
//! v = rho*v + (1-rho)*g^2;   d = sqrt(a + eps) / sqrt(v + eps) * g;   a = rho*a + (1-rho)*d^2
//! p = p - lr*d
//! ```
//!
//! # References
//! - Zeiler, *ADADELTA: An Adaptive Learning Rate Method*, arXiv:1212.5701, 2012.

use crate::algorithm::{Algorithm, BufferSpec, Layout};
use crate::check::{check_non_negative, check_unit_interval};
use crate::kernel::adadelta::{adadelta_reference, select_adadelta, AdadeltaScalars};
use crate::kernel::{next_buffer, Kernel};
use crate::optim::Optim;
use crate::options::FamilyOrder;
use crate::{Float, Result};

/// Configuration of [`Adadelta`]. Defaults are PyTorch's.
///
/// | preset | lr | rho | eps | order | source |
/// |---|---|---|---|---|---|
/// | [`pytorch`](Self::pytorch) | 1.0 | 0.9 | 1e-6 | Torch | `torch.optim.Adadelta` |
/// | [`optax`](Self::optax) | 1.0 | 0.9 | 1e-6 | Optax | `optax.adadelta` (which requires a learning rate) |
///
/// # Examples
/// ```
/// use rmsprop::{Adadelta, AdadeltaConfig, Optimizer};
/// let mut opt = Adadelta::<f64>::new(AdadeltaConfig::pytorch()).unwrap();
/// let mut x = [1.0, -2.0];
/// for _ in 0..500 {
///     let g = [2.0 * x[0], 2.0 * x[1]];
///     opt.step_single(&mut x, &g).unwrap();
/// }
/// assert!(x[0].abs() < 1.0 && x[1].abs() < 2.0); // Adadelta starts slowly, then speeds up
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdadeltaConfig {
    /// Learning rate, finite and `>= 0`. Default 1.0.
    pub lr: f64,
    /// Decay of both running averages, in `[0, 1)`. Default 0.9.
    pub rho: f64,
    /// Epsilon inside both roots, finite and `>= 0`. Default 1e-6.
    pub eps: f64,
    /// Coupled (L2) weight decay, finite and `>= 0`. Default 0.
    pub weight_decay: f64,
    /// Gradient ascent. Default `false`.
    pub maximize: bool,
    /// Operation order. Default [`FamilyOrder::Torch`].
    pub order: FamilyOrder,
}

impl Default for AdadeltaConfig {
    fn default() -> Self {
        Self::pytorch()
    }
}

impl AdadeltaConfig {
    /// `torch.optim.Adadelta` defaults: lr 1.0, rho 0.9, eps 1e-6.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::AdadeltaConfig::pytorch().eps, 1e-6);
    /// ```
    pub fn pytorch() -> Self {
        Self {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
            maximize: false,
            order: FamilyOrder::Torch,
        }
    }

    /// optax `adadelta` (rho 0.9, eps 1e-6) in optax's operation order; optax requires a
    /// learning rate, this preset uses 1.0.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::AdadeltaConfig::optax().order, rmsprop::FamilyOrder::Optax);
    /// ```
    pub fn optax() -> Self {
        Self {
            order: FamilyOrder::Optax,
            ..Self::pytorch()
        }
    }

    /// Sets the learning rate.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::AdadeltaConfig::pytorch().with_lr(0.5).lr, 0.5);
    /// ```
    pub fn with_lr(mut self, lr: f64) -> Self {
        self.lr = lr;
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
    /// let err = rmsprop::AdadeltaConfig::pytorch().with_lr(-1.0).validate().unwrap_err();
    /// assert!(err.to_string().contains("`lr`"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_non_negative("lr", self.lr)?;
        check_unit_interval("rho", self.rho)?;
        check_non_negative("eps", self.eps)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        Ok(())
    }
}

/// Adadelta over many tensors: [`Optim`] with an [`AdadeltaConfig`].
///
/// # Examples
/// ```
/// use rmsprop::{Adadelta, AdadeltaConfig, Optimizer};
/// let mut opt = Adadelta::<f32>::new(AdadeltaConfig::pytorch()).unwrap();
/// opt.step_single(&mut [1.0f32], &[0.5]).unwrap();
/// assert_eq!(opt.state_buffers(0).len(), 2); // square_avg and acc_delta
/// ```
pub type Adadelta<T> = Optim<AdadeltaConfig, T>;

impl Algorithm for AdadeltaConfig {
    const KIND: &'static str = "adadelta";
    type Scalars<T: Float> = AdadeltaScalars<T>;

    fn validate(&self) -> Result<()> {
        AdadeltaConfig::validate(self)
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// `square_avg` and `acc_delta` (PyTorch's names), both from 0.
    fn layout(&self) -> Layout {
        Layout::new(vec![
            BufferSpec::new("square_avg", 0.0),
            BufferSpec::new("acc_delta", 0.0),
        ])
    }

    fn variant(&self) -> String {
        let mut v = format!("order={}", self.order);
        if self.maximize {
            v.push_str("+maximize");
        }
        v
    }

    fn scalars<T: Float>(&self, _step: u64) -> AdadeltaScalars<T> {
        AdadeltaScalars {
            lr: T::from_f64(self.lr),
            rho: T::from_f64(self.rho),
            one_minus_rho: T::from_f64(1.0 - self.rho),
            eps: T::from_f64(self.eps),
            weight_decay: T::from_f64(self.weight_decay),
            maximize: self.maximize,
            order: self.order,
        }
    }

    fn scalars_depend_on_step(&self) -> bool {
        false
    }

    fn kernel<T: Float>(&self) -> Kernel<T, AdadeltaScalars<T>> {
        select_adadelta(&self.scalars::<T>(1))
    }

    fn reference<T: Float>(
        s: &AdadeltaScalars<T>,
        params: &mut [T],
        grads: &[T],
        mut buffers: &mut [&mut [T]],
    ) {
        let v = next_buffer(&mut buffers);
        let a = next_buffer(&mut buffers);
        adadelta_reference(s, params, grads, v, a)
    }
}
