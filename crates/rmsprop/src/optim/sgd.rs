//! SGD: plain, heavy-ball momentum (with dampening) and Nesterov, as PyTorch's `torch.optim.SGD`.
//!
//! ```text
//! g = g + wd*p;  b = mu*b + (1 - dampening)*g  (b = g at the first step);  g = b  (nesterov: g + mu*b)
//! p = p - lr*g
//! ```

use crate::algorithm::{Algorithm, BufferSpec, Layout};
use crate::check::{check_closed_unit_interval, check_non_negative, check_unit_interval};
use crate::kernel::sgd::{select_sgd, sgd_reference, SgdScalars};
use crate::kernel::{next_buffer, Kernel};
use crate::optim::Optim;
use crate::{Error, Float, Result};

/// Configuration of [`Sgd`]. Defaults are PyTorch's (`lr` 1e-3, everything else off).
///
/// # Examples
/// ```
/// use rmsprop::{Optimizer, Sgd, SgdConfig};
/// let mut opt = Sgd::<f64>::new(SgdConfig::momentum(0.1, 0.9)).unwrap();
/// let mut x = [1.0];
/// opt.step_single(&mut x, &[2.0]).unwrap();
/// assert_eq!(x, [0.8]);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SgdConfig {
    /// Learning rate, finite and `>= 0`. Default 1e-3.
    pub lr: f64,
    /// Momentum coefficient in `[0, 1)`; 0 keeps no buffer. Default 0.
    pub momentum: f64,
    /// Dampening of the gradient's contribution to the buffer, in `[0, 1]`. Default 0.
    pub dampening: f64,
    /// Nesterov momentum; needs `momentum > 0` and `dampening = 0` (as PyTorch). Default `false`.
    pub nesterov: bool,
    /// Coupled (L2) weight decay, finite and `>= 0`. Default 0.
    pub weight_decay: f64,
    /// Gradient ascent. Default `false`.
    pub maximize: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self::pytorch()
    }
}

impl SgdConfig {
    /// `torch.optim.SGD` defaults: lr 1e-3, no momentum.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::SgdConfig::pytorch().lr, 1e-3);
    /// ```
    pub fn pytorch() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            maximize: false,
        }
    }

    /// Plain gradient descent with learning rate `lr`.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::SgdConfig::plain(0.1).momentum, 0.0);
    /// ```
    pub fn plain(lr: f64) -> Self {
        Self {
            lr,
            ..Self::pytorch()
        }
    }

    /// Heavy-ball momentum.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::SgdConfig::momentum(0.1, 0.9).momentum, 0.9);
    /// ```
    pub fn momentum(lr: f64, momentum: f64) -> Self {
        Self {
            lr,
            momentum,
            ..Self::pytorch()
        }
    }

    /// Nesterov momentum.
    ///
    /// # Examples
    /// ```
    /// assert!(rmsprop::SgdConfig::nesterov(0.1, 0.9).nesterov);
    /// ```
    pub fn nesterov(lr: f64, momentum: f64) -> Self {
        Self {
            nesterov: true,
            ..Self::momentum(lr, momentum)
        }
    }

    /// Sets the dampening.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::SgdConfig::momentum(0.1, 0.9).with_dampening(0.5).dampening, 0.5);
    /// ```
    pub fn with_dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }

    /// Sets coupled weight decay.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::SgdConfig::plain(0.1).with_weight_decay(1e-4).weight_decay, 1e-4);
    /// ```
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Maximizes instead of minimizing.
    ///
    /// # Examples
    /// ```
    /// assert!(rmsprop::SgdConfig::plain(0.1).with_maximize(true).maximize);
    /// ```
    pub fn with_maximize(mut self, maximize: bool) -> Self {
        self.maximize = maximize;
        self
    }

    /// Checks every hyperparameter.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] naming the parameter; [`Error::InvalidConfig`] for
    /// Nesterov without momentum or with dampening.
    ///
    /// # Examples
    /// ```
    /// assert!(rmsprop::SgdConfig::nesterov(0.1, 0.0).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_non_negative("lr", self.lr)?;
        check_unit_interval("momentum", self.momentum)?;
        check_closed_unit_interval("dampening", self.dampening)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum == 0.0 || self.dampening != 0.0) {
            return Err(Error::InvalidConfig(
                "nesterov requires momentum > 0 and dampening = 0",
            ));
        }
        Ok(())
    }
}

/// SGD with optional heavy-ball or Nesterov momentum, over many tensors: [`Optim`] with an
/// [`SgdConfig`].
///
/// # Examples
/// ```
/// use rmsprop::{Optimizer, Sgd, SgdConfig};
/// let mut opt = Sgd::<f32>::new(SgdConfig::nesterov(0.05, 0.9)).unwrap();
/// let mut x = vec![3.0f32, -2.0];
/// for _ in 0..200 {
///     let g: Vec<f32> = x.iter().map(|v| 2.0 * v).collect();
///     opt.step_single(&mut x, &g).unwrap();
/// }
/// assert!(x.iter().all(|v| v.abs() < 1e-3));
/// assert_eq!(opt.name(), "nesterov");
/// ```
pub type Sgd<T> = Optim<SgdConfig, T>;

impl Algorithm for SgdConfig {
    const KIND: &'static str = "sgd";
    type Scalars<T: Float> = SgdScalars<T>;

    /// `"sgd"`, `"momentum"` or `"nesterov"`.
    fn name(&self) -> &'static str {
        match (self.momentum > 0.0, self.nesterov) {
            (false, _) => "sgd",
            (true, false) => "momentum",
            (true, true) => "nesterov",
        }
    }

    fn validate(&self) -> Result<()> {
        SgdConfig::validate(self)
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// `momentum_buffer` with momentum; nothing for plain SGD.
    fn layout(&self) -> Layout {
        Layout::new(if self.momentum > 0.0 {
            vec![BufferSpec::new("momentum_buffer", 0.0)]
        } else {
            Vec::new()
        })
    }

    fn variant(&self) -> String {
        let mut v = vec![Algorithm::name(self).to_string()];
        if self.maximize {
            v.push("maximize".into());
        }
        if self.weight_decay > 0.0 {
            v.push("weight_decay".into());
        }
        v.join("+")
    }

    /// `first_step` is true at `t == 1`.
    fn scalars<T: Float>(&self, t: u64) -> SgdScalars<T> {
        let c = self;
        SgdScalars {
            lr: T::from_f64(c.lr),
            momentum: T::from_f64(c.momentum),
            one_minus_dampening: T::from_f64(1.0 - c.dampening),
            nesterov: c.nesterov,
            weight_decay: T::from_f64(c.weight_decay),
            maximize: c.maximize,
            first_step: t == 1,
        }
    }

    /// Only the momentum buffer's first step differs.
    fn scalars_depend_on_step(&self) -> bool {
        self.momentum > 0.0
    }

    fn kernel<T: Float>(&self) -> Kernel<T, SgdScalars<T>> {
        select_sgd(&self.scalars::<T>(1))
    }

    fn reference<T: Float>(
        s: &SgdScalars<T>,
        params: &mut [T],
        grads: &[T],
        mut buffers: &mut [&mut [T]],
    ) {
        let b: &mut [T] = if s.momentum != T::ZERO {
            next_buffer(&mut buffers)
        } else {
            &mut []
        };
        sgd_reference(s, params, grads, b)
    }
}
