//! SGD: plain, heavy-ball momentum (with dampening) and Nesterov, as PyTorch's `torch.optim.SGD`.
//!
//! ```text
//! g = g + wd*p;  b = mu*b + (1 - dampening)*g  (b = g at the first step);  g = b  (nesterov: g + mu*b)
//! p = p - lr*g
//! ```

use crate::exec::TensorBuffers;
use crate::kernel::fast;
use crate::kernel::sgd::SgdScalars;
use crate::optim::common::common_inherent_methods;
use crate::optim::common::{
    check_buffer, check_closed_unit_interval, check_non_negative, check_step, check_unit_interval,
    common_optimizer_methods,
};
use crate::{Error, Execution, Float, Optimizer, Result};

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

/// The state [`Sgd`] keeps for one tensor.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SgdTensorState<T> {
    /// Steps taken by this tensor.
    pub step: u64,
    /// Momentum buffer (empty without momentum).
    pub momentum_buffer: Vec<T>,
    /// Number of elements of the tensor.
    pub len: usize,
}

/// SGD with optional heavy-ball or Nesterov momentum, over many tensors.
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
/// ```
#[derive(Clone, Debug)]
pub struct Sgd<T: Float> {
    exec: Execution,
    skipped: u64,
    config: SgdConfig,
    steps: u64,
    tensors: Vec<SgdTensorState<T>>,
}

impl<T: Float> Sgd<T> {
    common_inherent_methods!();

    /// Creates the optimizer after validating `config`.
    ///
    /// # Errors
    /// As [`SgdConfig::validate`].
    ///
    /// # Examples
    /// ```
    /// assert!(rmsprop::Sgd::<f64>::new(rmsprop::SgdConfig::plain(-1.0)).is_err());
    /// ```
    pub fn new(config: SgdConfig) -> Result<Self> {
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
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// Per-tensor state.
    pub fn tensor_states(&self) -> &[SgdTensorState<T>] {
        &self.tensors
    }

    /// Replaces the state.
    ///
    /// # Errors
    /// [`Error::StateBuffer`] when a momentum buffer does not fit the configuration.
    pub fn set_tensor_states(&mut self, tensors: Vec<SgdTensorState<T>>, steps: u64) -> Result<()> {
        for (index, t) in tensors.iter().enumerate() {
            let want = if self.config.momentum > 0.0 { t.len } else { 0 };
            check_buffer(index, "momentum_buffer", t.momentum_buffer.len(), want)?;
        }
        self.tensors = tensors;
        self.steps = steps;
        Ok(())
    }

    /// The kernel's scalars for a tensor at step `t` (1 for the first).
    ///
    /// # Examples
    /// ```
    /// let s = rmsprop::Sgd::<f32>::new(rmsprop::SgdConfig::momentum(0.1, 0.9)).unwrap().scalars(1);
    /// assert!(s.first_step);
    /// ```
    pub fn scalars(&self, t: u64) -> SgdScalars<T> {
        let c = &self.config;
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
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    fn name(&self) -> &'static str {
        match (self.config.momentum > 0.0, self.config.nesterov) {
            (false, _) => "sgd",
            (true, false) => "momentum",
            (true, true) => "nesterov",
        }
    }

    common_optimizer_methods!();

    fn check(&self, params: &[&mut [T]], grads: &[&[T]]) -> Result<()> {
        let tensors = &self.tensors;
        check_step(params, grads, tensors.len(), |i| tensors[i].len)
    }

    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        self.check(params, grads)?;
        if !self.exec.screen(grads)? {
            self.skipped += 1;
            return Ok(());
        }
        if self.tensors.is_empty() {
            let with_momentum = self.config.momentum > 0.0;
            self.tensors = params
                .iter()
                .map(|p| SgdTensorState {
                    step: 0,
                    momentum_buffer: if with_momentum {
                        vec![T::ZERO; p.len()]
                    } else {
                        Vec::new()
                    },
                    len: p.len(),
                })
                .collect();
        }
        let mut tensors = core::mem::take(&mut self.tensors);
        self.exec.step_all(
            params,
            grads,
            &mut tensors,
            |t| self.scalars(t),
            |isa, s, p, g, [v, ..]| fast::sgd(isa, s, p, g, v),
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
            .filter(|t| !t.momentum_buffer.is_empty())
            .map(|t| vec![("momentum_buffer", t.momentum_buffer.as_slice())])
            .unwrap_or_default()
    }
}

impl<T> TensorBuffers<T> for SgdTensorState<T> {
    fn next_step(&mut self) -> u64 {
        self.step += 1;
        self.step
    }

    fn buffers(&mut self) -> [&mut [T]; 3] {
        [&mut self.momentum_buffer, &mut [], &mut []]
    }
}
