//! RMSProp: every variant PyTorch, Keras, TF1, optax, timm and Graves (2013) define.
//!
//! The update for one element, with `g` the gradient and `v` the square average:
//!
//! ```text
//! v = rho*v + (1 - rho)*g^2
//! p = p - lr * g / (sqrt(v) + eps)      eps outside the root (PyTorch, the lesson)
//! p = p - lr * g / sqrt(v + eps)        eps inside the root (Keras, TF1, optax, timm)
//! ```
//!
//! with options for centering, momentum (learning rate inside or outside the
//! buffer, Nesterov), weight decay (coupled or decoupled), maximization, bias
//! correction and the initial square average. [`RmsPropConfig`] documents each
//! option; its presets reproduce each framework's defaults *and* its operation
//! order, so trajectories match step for step. The arithmetic itself lives in
//! [`rmsprop_reference`].
//!
//! # References
//! - Tieleman & Hinton, *Lecture 6.5 — RMSProp*, COURSERA: Neural Networks for Machine Learning, 2012.
//! - Graves, *Generating Sequences With Recurrent Neural Networks*, arXiv:1308.0850, 2013 (centered, eq. 38–41).

use crate::algorithm::{Algorithm, BufferSpec, Layout};
use crate::check::{check_non_negative, check_unit_interval};
use crate::kernel::rmsprop::{
    rmsprop_reference, select_rmsprop, MomentumMode, RmsPropScalars, WeightDecayOp,
};
use crate::kernel::{next_buffer, Kernel};
use crate::optim::Optim;
use crate::options::{
    EpsPlacement, HyperparameterPrecision, MomentumStyle, OperationOrder, WeightDecayStyle,
};
use crate::{Error, Float, Result};

/// The complete configuration of RMSProp. Build it from a preset and adjust with the `with_*` methods.
///
/// The fields are public and plain; [`RmsPropConfig::validate`] (also run by
/// [`RmsProp::new`]) checks them. The defaults below are those of
/// [`RmsPropConfig::pytorch`], which [`Default`] returns.
///
/// # Presets
/// | preset | lr | rho | eps | eps | v0 | momentum | order | source |
/// |---|---|---|---|---|---|---|---|---|
/// | [`pytorch`](Self::pytorch) | 0.01 | 0.99 | 1e-8 | outside | 0 | lr outside | Torch | `torch.optim.RMSprop` |
/// | [`keras`](Self::keras) | 0.001 | 0.9 | 1e-7 | inside | 0 | lr inside | Keras | `keras.optimizers.RMSprop` (Keras 3) |
/// | [`tf1`](Self::tf1) | 0.01 | 0.9 | 1e-10 | inside | 1 | lr inside | Tf1 | `tf.compat.v1.train.RMSPropOptimizer` |
/// | [`optax`](Self::optax) | 0.01 | 0.9 | 1e-8 | inside | 0 | lr inside | Optax | `optax.rmsprop` |
/// | [`timm_tf`](Self::timm_tf) | 0.01 | 0.9 | 1e-10 | inside | 1 | lr inside | Tf1 | `timm.optim.RMSpropTF` |
/// | [`graves`](Self::graves) | 1e-4 | 0.95 | 1e-4 | inside | 0 | 0.9, lr inside, centered | Keras | Graves 2013, eq. 38–41 |
/// | [`lesson`](Self::lesson) | 0.1 | 0.9 | 1e-6 | outside | 0 | none | Keras | the classic example |
///
/// # Examples
/// ```
/// use rmsprop::{Optimizer, RmsProp, RmsPropConfig};
/// let config = RmsPropConfig::pytorch().with_lr(1e-3).with_momentum(0.9).with_centered(true);
/// let mut opt = RmsProp::<f32>::new(config).unwrap();
/// let mut w = vec![1.0f32; 4];
/// opt.step(&mut [&mut w], &[&[0.1, 0.2, 0.3, 0.4]]).unwrap();
/// assert!(w.iter().all(|&x| x < 1.0));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RmsPropConfig {
    /// Learning rate, `>= 0` and finite. Default 0.01.
    pub lr: f64,
    /// Decay of the square average, in `[0, 1)` (PyTorch calls it `alpha`, TF1 and optax `decay`). Default 0.99.
    pub rho: f64,
    /// Epsilon added to the denominator, `>= 0` and finite. Default 1e-8.
    pub eps: f64,
    /// Whether epsilon goes outside or inside the square root. Default [`EpsPlacement::Outside`].
    pub eps_placement: EpsPlacement,
    /// Initial value of the square average, `>= 0` and finite: 0 in PyTorch, Keras 3 and optax,
    /// 1 in TF1 and timm (optax's `initial_scale`). Default 0.
    pub initial_square_avg: f64,
    /// Centered RMSProp (Graves 2013): also keep the running mean `m` of the gradient and divide by
    /// `sqrt(v - m^2)`, an estimate of the gradient's standard deviation. Default `false`.
    pub centered: bool,
    /// Clamp `v - m^2` at zero before the root (centered only). Rounding can make the difference
    /// negative, which gives NaN when eps is outside the root. Off by default, as in every framework.
    pub clamp_variance: bool,
    /// Momentum coefficient, in `[0, 1)`; 0 keeps no buffer. Default 0.
    pub momentum: f64,
    /// Where the learning rate sits relative to the momentum buffer. Default [`MomentumStyle::LrOutside`].
    pub momentum_style: MomentumStyle,
    /// Nesterov momentum (optax's `nesterov=True`); needs `momentum > 0`. Default `false`.
    pub nesterov: bool,
    /// Weight decay coefficient, `>= 0` and finite; 0 disables it. Default 0.
    pub weight_decay: f64,
    /// Coupled (L2 in the gradient) or decoupled weight decay. Default [`WeightDecayStyle::Coupled`].
    pub weight_decay_style: WeightDecayStyle,
    /// Maximize the objective (gradient ascent): the gradient is negated first. Default `false`.
    pub maximize: bool,
    /// Divide the square average (and mean) by `1 - rho^t` at step `t`, as optax's
    /// `bias_correction=True`. Default `false`.
    pub bias_correction: bool,
    /// The operation order of the arithmetic. Default [`OperationOrder::Torch`].
    pub operation_order: OperationOrder,
    /// How hyperparameters are rounded to the element type. Default [`HyperparameterPrecision::Native`].
    pub hyperparameter_precision: HyperparameterPrecision,
}

impl Default for RmsPropConfig {
    /// The PyTorch preset.
    fn default() -> Self {
        Self::pytorch()
    }
}

impl RmsPropConfig {
    /// `torch.optim.RMSprop` defaults: lr 0.01, alpha 0.99, eps 1e-8 outside the root, square
    /// average from 0, momentum with lr outside the buffer, coupled weight decay.
    ///
    /// # Differences
    /// PyTorch's CPU kernels fuse `a*b + c` into FMAs and its vectorized `sqrt` is not always
    /// correctly rounded; this crate rounds every operation, so `f32` runs can differ from
    /// PyTorch's in the last bits (within 2e-3 lr over 200 steps on the recorded vectors).
    /// PyTorch has no Nesterov for RMSprop; here it is allowed with either momentum style.
    ///
    /// # Examples
    /// ```
    /// let c = rmsprop::RmsPropConfig::pytorch();
    /// assert_eq!((c.lr, c.rho, c.eps), (0.01, 0.99, 1e-8));
    /// ```
    pub fn pytorch() -> Self {
        Self {
            lr: 0.01,
            rho: 0.99,
            eps: 1e-8,
            eps_placement: EpsPlacement::Outside,
            initial_square_avg: 0.0,
            centered: false,
            clamp_variance: false,
            momentum: 0.0,
            momentum_style: MomentumStyle::LrOutside,
            nesterov: false,
            weight_decay: 0.0,
            weight_decay_style: WeightDecayStyle::Coupled,
            maximize: false,
            bias_correction: false,
            operation_order: OperationOrder::Torch,
            hyperparameter_precision: HyperparameterPrecision::Native,
        }
    }

    /// Keras 3 `keras.optimizers.RMSprop` defaults: lr 0.001, rho 0.9, epsilon 1e-7 inside the
    /// root, momentum with lr inside the buffer, decoupled weight decay (`p -= p*wd*lr`), and the
    /// learning rate rounded to `f32` (Keras keeps it in a float32 variable).
    ///
    /// # Differences
    /// Keras under XLA flushes subnormal numbers to zero; this crate keeps them.
    ///
    /// # Examples
    /// ```
    /// let c = rmsprop::RmsPropConfig::keras();
    /// assert_eq!((c.lr, c.rho, c.eps), (0.001, 0.9, 1e-7));
    /// ```
    pub fn keras() -> Self {
        Self {
            lr: 0.001,
            rho: 0.9,
            eps: 1e-7,
            eps_placement: EpsPlacement::Inside,
            momentum_style: MomentumStyle::LrInside,
            weight_decay_style: WeightDecayStyle::Decoupled,
            operation_order: OperationOrder::Keras,
            hyperparameter_precision: HyperparameterPrecision::Float32Lr,
            ..Self::pytorch()
        }
    }

    /// TF1 `tf.compat.v1.train.RMSPropOptimizer` defaults: decay 0.9, epsilon 1e-10 inside the
    /// root, mean square starting at **1**, momentum with lr inside the buffer, all
    /// hyperparameters rounded to `f32`. TF1 has no default learning rate; this preset uses 0.01.
    ///
    /// # Differences
    /// TF1 keeps a momentum buffer even when momentum is 0 (`mom = 0*mom + inc`); this crate
    /// keeps none, which changes nothing but the sign of a zero parameter.
    ///
    /// # Examples
    /// ```
    /// let c = rmsprop::RmsPropConfig::tf1();
    /// assert_eq!((c.rho, c.eps, c.initial_square_avg), (0.9, 1e-10, 1.0));
    /// ```
    pub fn tf1() -> Self {
        Self {
            lr: 0.01,
            rho: 0.9,
            eps: 1e-10,
            eps_placement: EpsPlacement::Inside,
            initial_square_avg: 1.0,
            momentum_style: MomentumStyle::LrInside,
            operation_order: OperationOrder::Tf1,
            hyperparameter_precision: HyperparameterPrecision::Float32,
            ..Self::pytorch()
        }
    }

    /// optax `optax.rmsprop` defaults: decay 0.9, eps 1e-8 inside the root (`eps_in_sqrt=True`),
    /// `initial_scale` 0, momentum (`optax.trace`) with lr inside. optax requires a learning rate;
    /// this preset uses 0.01.
    ///
    /// # Differences
    /// optax's trace holds the *negative* of this crate's momentum buffer (it accumulates
    /// updates, not steps); the parameters are the same. XLA flushes subnormals and its `f32`
    /// `rsqrt` is not correctly rounded, so `f32` runs differ in the last bits.
    ///
    /// # Examples
    /// ```
    /// let c = rmsprop::RmsPropConfig::optax().with_nesterov(0.9).with_bias_correction(true);
    /// assert!(c.nesterov && c.bias_correction);
    /// ```
    pub fn optax() -> Self {
        Self {
            lr: 0.01,
            rho: 0.9,
            eps: 1e-8,
            eps_placement: EpsPlacement::Inside,
            momentum_style: MomentumStyle::LrInside,
            operation_order: OperationOrder::Optax,
            ..Self::pytorch()
        }
    }

    /// timm `RMSpropTF` defaults (TF1 semantics in PyTorch): lr 0.01, alpha 0.9, eps 1e-10 inside
    /// the root, square average starting at **1**, momentum with lr inside (`lr_in_momentum=True`),
    /// coupled weight decay (`decoupled_decay=False`; the decoupled form is `p *= 1 - lr*wd`).
    ///
    /// # Differences
    /// timm's CPU kernels fuse `a + b*c`; this crate rounds every operation.
    ///
    /// # Examples
    /// ```
    /// let c = rmsprop::RmsPropConfig::timm_tf();
    /// assert_eq!((c.lr, c.rho, c.eps, c.initial_square_avg), (0.01, 0.9, 1e-10, 1.0));
    /// ```
    pub fn timm_tf() -> Self {
        Self {
            hyperparameter_precision: HyperparameterPrecision::Native,
            ..Self::tf1()
        }
    }

    /// Graves (2013), eq. 38–41: centered RMSProp with momentum 0.9, aleph (rho) 0.95,
    /// learning rate 1e-4 and epsilon 1e-4 inside the root.
    ///
    /// # Examples
    /// ```
    /// let c = rmsprop::RmsPropConfig::graves();
    /// assert!(c.centered);
    /// assert_eq!((c.lr, c.rho, c.eps, c.momentum), (1e-4, 0.95, 1e-4, 0.9));
    /// ```
    pub fn graves() -> Self {
        Self {
            lr: 1e-4,
            rho: 0.95,
            eps: 1e-4,
            centered: true,
            momentum: 0.9,
            ..Self::keras_order_native()
        }
    }

    /// The classic lesson: lr 0.1, rho 0.9, eps 1e-6 outside the root, square average from 0,
    /// in the lesson's numpy operation order (`s = rho*s + (1-rho)*g**2; p -= (lr*g)/(sqrt(s)+eps)`).
    ///
    /// # Examples
    /// ```
    /// use rmsprop::{Optimizer, RmsProp, RmsPropConfig};
    /// let mut opt = RmsProp::<f64>::new(RmsPropConfig::lesson()).unwrap();
    /// let mut x = [5.0, 4.0];
    /// let g = [2.0 * x[0], 2.0 * x[1]];
    /// opt.step_single(&mut x, &g).unwrap();
    /// assert_eq!(format!("{:.8}", x[0]), "4.68377233");
    /// ```
    pub fn lesson() -> Self {
        Self {
            lr: 0.1,
            rho: 0.9,
            eps: 1e-6,
            eps_placement: EpsPlacement::Outside,
            ..Self::keras_order_native()
        }
    }

    fn keras_order_native() -> Self {
        Self {
            eps_placement: EpsPlacement::Inside,
            momentum_style: MomentumStyle::LrInside,
            operation_order: OperationOrder::Keras,
            ..Self::pytorch()
        }
    }

    /// Sets the learning rate.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::RmsPropConfig::pytorch().with_lr(0.5).lr, 0.5);
    /// ```
    pub fn with_lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }

    /// Sets the decay `rho` of the square average.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::RmsPropConfig::pytorch().with_rho(0.9).rho, 0.9);
    /// ```
    pub fn with_rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }

    /// Sets epsilon and where it goes.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::{EpsPlacement, RmsPropConfig};
    /// let c = RmsPropConfig::pytorch().with_eps(1e-6, EpsPlacement::Inside);
    /// assert_eq!((c.eps, c.eps_placement), (1e-6, EpsPlacement::Inside));
    /// ```
    pub fn with_eps(mut self, eps: f64, placement: EpsPlacement) -> Self {
        self.eps = eps;
        self.eps_placement = placement;
        self
    }

    /// Sets the initial value of the square average.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::RmsPropConfig::optax().with_initial_square_avg(1.0).initial_square_avg, 1.0);
    /// ```
    pub fn with_initial_square_avg(mut self, value: f64) -> Self {
        self.initial_square_avg = value;
        self
    }

    /// Turns centering on or off.
    ///
    /// # Examples
    /// ```
    /// assert!(rmsprop::RmsPropConfig::pytorch().with_centered(true).centered);
    /// ```
    pub fn with_centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    /// Turns the clamp of `v - m^2` at zero on or off (centered only).
    ///
    /// # Examples
    /// ```
    /// assert!(rmsprop::RmsPropConfig::pytorch().with_centered(true).with_clamp_variance(true).clamp_variance);
    /// ```
    pub fn with_clamp_variance(mut self, clamp: bool) -> Self {
        self.clamp_variance = clamp;
        self
    }

    /// Sets the momentum coefficient (0 disables momentum) and turns Nesterov off.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::RmsPropConfig::pytorch().with_momentum(0.9).momentum, 0.9);
    /// ```
    pub fn with_momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self.nesterov = false;
        self
    }

    /// Sets Nesterov momentum with the given coefficient.
    ///
    /// # Examples
    /// ```
    /// let c = rmsprop::RmsPropConfig::optax().with_nesterov(0.9);
    /// assert!(c.nesterov);
    /// assert_eq!(c.momentum, 0.9);
    /// ```
    pub fn with_nesterov(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self.nesterov = true;
        self
    }

    /// Sets where the learning rate sits relative to the momentum buffer.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::{MomentumStyle, RmsPropConfig};
    /// let c = RmsPropConfig::pytorch().with_momentum_style(MomentumStyle::LrInside);
    /// assert_eq!(c.momentum_style, MomentumStyle::LrInside);
    /// ```
    pub fn with_momentum_style(mut self, style: MomentumStyle) -> Self {
        self.momentum_style = style;
        self
    }

    /// Sets weight decay and its style.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::{RmsPropConfig, WeightDecayStyle};
    /// let c = RmsPropConfig::pytorch().with_weight_decay(0.01, WeightDecayStyle::Coupled);
    /// assert_eq!(c.weight_decay, 0.01);
    /// ```
    pub fn with_weight_decay(mut self, weight_decay: f64, style: WeightDecayStyle) -> Self {
        self.weight_decay = weight_decay;
        self.weight_decay_style = style;
        self
    }

    /// Maximizes instead of minimizing.
    ///
    /// # Examples
    /// ```
    /// assert!(rmsprop::RmsPropConfig::pytorch().with_maximize(true).maximize);
    /// ```
    pub fn with_maximize(mut self, maximize: bool) -> Self {
        self.maximize = maximize;
        self
    }

    /// Turns bias correction of the square average (and mean) on or off.
    ///
    /// # Examples
    /// ```
    /// assert!(rmsprop::RmsPropConfig::optax().with_bias_correction(true).bias_correction);
    /// ```
    pub fn with_bias_correction(mut self, on: bool) -> Self {
        self.bias_correction = on;
        self
    }

    /// Sets the operation order.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::{OperationOrder, RmsPropConfig};
    /// let c = RmsPropConfig::pytorch().with_operation_order(OperationOrder::Keras);
    /// assert_eq!(c.operation_order, OperationOrder::Keras);
    /// ```
    pub fn with_operation_order(mut self, order: OperationOrder) -> Self {
        self.operation_order = order;
        self
    }

    /// Sets how hyperparameters are rounded to the element type.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::{HyperparameterPrecision, RmsPropConfig};
    /// let c = RmsPropConfig::pytorch().with_hyperparameter_precision(HyperparameterPrecision::Float32);
    /// assert_eq!(c.hyperparameter_precision, HyperparameterPrecision::Float32);
    /// ```
    pub fn with_hyperparameter_precision(mut self, precision: HyperparameterPrecision) -> Self {
        self.hyperparameter_precision = precision;
        self
    }

    /// Checks every hyperparameter: finite and in range.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] naming the first bad parameter, its value and the allowed
    /// range; [`Error::InvalidConfig`] for Nesterov without momentum.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::RmsPropConfig;
    /// assert!(RmsPropConfig::keras().validate().is_ok());
    /// let err = RmsPropConfig::keras().with_lr(f64::NAN).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid hyperparameter `lr` = NaN: must be finite and >= 0");
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_non_negative("lr", self.lr)?;
        check_unit_interval("rho", self.rho)?;
        check_non_negative("eps", self.eps)?;
        check_non_negative("initial_square_avg", self.initial_square_avg)?;
        check_unit_interval("momentum", self.momentum)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        if self.nesterov && self.momentum == 0.0 {
            return Err(Error::InvalidConfig(
                "nesterov requires momentum > 0: set a momentum, or turn nesterov off",
            ));
        }
        Ok(())
    }
}

/// RMSProp over many tensors: [`Optim`] with an [`RmsPropConfig`].
///
/// # Examples
/// ```
/// use rmsprop::{Optimizer, RmsProp, RmsPropConfig};
/// let mut opt = RmsProp::<f64>::new(RmsPropConfig::lesson()).unwrap();
/// let mut x = [5.0, 4.0];
/// opt.step_single(&mut x, &[10.0, 8.0]).unwrap();
/// // v = rho*0 + (1 - rho)*(g*g), the lesson's order
/// assert_eq!(opt.square_avg(0).unwrap(), &[(1.0 - 0.9) * 100.0, (1.0 - 0.9) * 64.0]);
/// ```
pub type RmsProp<T> = Optim<RmsPropConfig, T>;

impl<T: Float> Optim<RmsPropConfig, T> {
    /// The square average `v` of tensor `tensor` (`None` before the first step).
    pub fn square_avg(&self, tensor: usize) -> Option<&[T]> {
        self.buffer(tensor, "square_avg")
    }

    /// The gradient mean `m` of tensor `tensor` (centered only).
    pub fn grad_avg(&self, tensor: usize) -> Option<&[T]> {
        self.buffer(tensor, "grad_avg")
    }

    /// The momentum buffer of tensor `tensor` (momentum only).
    pub fn momentum_buffer(&self, tensor: usize) -> Option<&[T]> {
        self.buffer(tensor, "momentum_buffer")
    }
}

impl Algorithm for RmsPropConfig {
    const KIND: &'static str = "rmsprop";
    type Scalars<T: Float> = RmsPropScalars<T>;

    fn validate(&self) -> Result<()> {
        RmsPropConfig::validate(self)
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// `square_avg` (from `initial_square_avg`), then `grad_avg` when centered and
    /// `momentum_buffer` with momentum, both from 0.
    fn layout(&self) -> Layout {
        let v0 = match self.hyperparameter_precision {
            HyperparameterPrecision::Float32 => self.initial_square_avg as f32 as f64,
            _ => self.initial_square_avg,
        };
        let mut buffers = vec![BufferSpec::new("square_avg", v0)];
        if self.centered {
            buffers.push(BufferSpec::new("grad_avg", 0.0));
        }
        if self.momentum > 0.0 {
            buffers.push(BufferSpec::new("momentum_buffer", 0.0));
        }
        Layout::new(buffers)
    }

    fn variant(&self) -> String {
        let mut v = vec![
            format!("order={}", self.operation_order),
            format!("eps={}", self.eps_placement),
        ];
        if self.centered {
            v.push(
                if self.clamp_variance {
                    "centered=clamped"
                } else {
                    "centered"
                }
                .into(),
            );
        }
        if self.momentum > 0.0 {
            v.push(format!("momentum={}", self.momentum_style));
            if self.nesterov {
                v.push("nesterov".into());
            }
        }
        if self.weight_decay > 0.0 {
            v.push(format!("weight_decay={}", self.weight_decay_style));
        }
        if self.maximize {
            v.push("maximize".into());
        }
        if self.bias_correction {
            v.push("bias_correction".into());
        }
        v.join("+")
    }

    /// Rounded to `T` as the configuration's [`HyperparameterPrecision`] says.
    fn scalars<T: Float>(&self, t: u64) -> RmsPropScalars<T> {
        let c = self;
        let via_f32 = |x: f64| T::from_f64(x as f32 as f64);
        let native = T::from_f64;
        let (lr, rho, eps, momentum, wd, one_minus_rho) = match c.hyperparameter_precision {
            HyperparameterPrecision::Native => (
                native(c.lr),
                native(c.rho),
                native(c.eps),
                native(c.momentum),
                native(c.weight_decay),
                native(1.0 - c.rho),
            ),
            HyperparameterPrecision::Float32Lr => (
                via_f32(c.lr),
                native(c.rho),
                native(c.eps),
                native(c.momentum),
                native(c.weight_decay),
                native(1.0 - c.rho),
            ),
            HyperparameterPrecision::Float32 => (
                via_f32(c.lr),
                via_f32(c.rho),
                via_f32(c.eps),
                via_f32(c.momentum),
                via_f32(c.weight_decay),
                T::ONE - via_f32(c.rho),
            ),
        };
        let weight_decay = if c.weight_decay == 0.0 {
            WeightDecayOp::None
        } else {
            match (c.weight_decay_style, c.operation_order) {
                (WeightDecayStyle::Coupled, _) => WeightDecayOp::Coupled(wd),
                (WeightDecayStyle::Decoupled, OperationOrder::Keras) => {
                    WeightDecayOp::DecoupledSubtract(wd)
                }
                (WeightDecayStyle::Decoupled, _) => {
                    let factor = match c.hyperparameter_precision {
                        HyperparameterPrecision::Native => native(1.0 - c.lr * c.weight_decay),
                        _ => T::ONE - lr * wd,
                    };
                    WeightDecayOp::DecoupledScale(factor)
                }
            }
        };
        let momentum_mode = match (c.momentum > 0.0, c.momentum_style) {
            (false, _) => MomentumMode::None,
            (true, MomentumStyle::LrOutside) => MomentumMode::LrOutside,
            (true, MomentumStyle::LrInside) => MomentumMode::LrInside,
        };
        let bias_correction = if c.bias_correction {
            // In the element type, as optax: r = 1 / (1 - rho^t).
            T::ONE / (T::ONE - rho.powf(T::from_f64(t as f64)))
        } else {
            T::ONE
        };
        RmsPropScalars {
            lr,
            rho,
            one_minus_rho,
            eps,
            eps_placement: c.eps_placement,
            order: c.operation_order,
            centered: c.centered,
            clamp_variance: c.clamp_variance,
            momentum,
            momentum_mode,
            nesterov: c.nesterov,
            weight_decay,
            maximize: c.maximize,
            bias_correction,
        }
    }

    /// Only the bias correction changes with the step.
    fn scalars_depend_on_step(&self) -> bool {
        self.bias_correction
    }

    fn kernel<T: Float>(&self) -> Kernel<T, RmsPropScalars<T>> {
        select_rmsprop(&self.scalars::<T>(1))
    }

    fn reference<T: Float>(
        s: &RmsPropScalars<T>,
        params: &mut [T],
        grads: &[T],
        mut buffers: &mut [&mut [T]],
    ) {
        let v = next_buffer(&mut buffers);
        let m: &mut [T] = if s.centered {
            next_buffer(&mut buffers)
        } else {
            &mut []
        };
        let b: &mut [T] = if s.momentum_mode != MomentumMode::None {
            next_buffer(&mut buffers)
        } else {
            &mut []
        };
        rmsprop_reference(s, params, grads, v, m, b)
    }
}
