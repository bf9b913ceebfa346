//! Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019), AMSGrad included, as PyTorch's
//! `torch.optim.Adam` / `AdamW` and optax's `adam` / `adamw`.
//!
//! ```text
//! m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
//! p = p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
//! ```

use crate::algorithm::{Algorithm, BufferSpec, Layout};
use crate::check::{check_non_negative, check_unit_interval};
use crate::kernel::adam::{adam_reference, select_adam, AdamScalars, AdamWeightDecay};
use crate::kernel::{next_buffer, Kernel};
use crate::optim::Optim;
use crate::options::{FamilyOrder, WeightDecayStyle};
use crate::{Float, Result};

/// Configuration of [`Adam`] (AdamW is Adam with decoupled weight decay).
///
/// # Examples
/// ```
/// use rmsprop::{Adam, AdamConfig, Optimizer};
/// let mut opt = Adam::<f64>::new(AdamConfig::pytorch_adamw().with_lr(0.1)).unwrap();
/// let mut x = [2.0, -3.0];
/// for _ in 0..300 {
///     let g = [2.0 * x[0], 2.0 * x[1]];
///     opt.step_single(&mut x, &g).unwrap();
/// }
/// assert!(x.iter().all(|v| v.abs() < 0.1));
/// assert_eq!(opt.name(), "adamw");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdamConfig {
    /// Learning rate, finite and `>= 0`. Default 1e-3.
    pub lr: f64,
    /// Decay of the first moment, in `[0, 1)`. Default 0.9.
    pub beta1: f64,
    /// Decay of the second moment, in `[0, 1)`. Default 0.999.
    pub beta2: f64,
    /// Epsilon outside the root. Default 1e-8.
    pub eps: f64,
    /// Epsilon inside the root (optax's `eps_root`; Optax order only). Default 0.
    pub eps_root: f64,
    /// Weight decay coefficient. Default 0.
    pub weight_decay: f64,
    /// Coupled (Adam's L2) or decoupled (AdamW). Default coupled.
    pub weight_decay_style: WeightDecayStyle,
    /// AMSGrad: divide by the running maximum of the second moment. Default `false`.
    pub amsgrad: bool,
    /// Gradient ascent. Default `false`.
    pub maximize: bool,
    /// Operation order. Default [`FamilyOrder::Torch`].
    pub order: FamilyOrder,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self::pytorch()
    }
}

impl AdamConfig {
    /// `torch.optim.Adam` defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8.
    ///
    /// # Examples
    /// ```
    /// let c = rmsprop::AdamConfig::pytorch();
    /// assert_eq!((c.lr, c.beta1, c.beta2, c.eps), (1e-3, 0.9, 0.999, 1e-8));
    /// ```
    pub fn pytorch() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            eps_root: 0.0,
            weight_decay: 0.0,
            weight_decay_style: WeightDecayStyle::Coupled,
            amsgrad: false,
            maximize: false,
            order: FamilyOrder::Torch,
        }
    }

    /// `torch.optim.AdamW` defaults: as Adam with decoupled weight decay 0.01 (`p *= 1 - lr*wd`).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::AdamConfig::pytorch_adamw().weight_decay, 0.01);
    /// ```
    pub fn pytorch_adamw() -> Self {
        Self {
            weight_decay: 0.01,
            weight_decay_style: WeightDecayStyle::Decoupled,
            ..Self::pytorch()
        }
    }

    /// optax `adam` defaults (lr 1e-3 here; optax requires one).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::AdamConfig::optax().eps_root, 0.0);
    /// ```
    pub fn optax() -> Self {
        Self {
            order: FamilyOrder::Optax,
            ..Self::pytorch()
        }
    }

    /// optax `adamw` defaults: weight decay 1e-4 added to the update before the learning rate.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::AdamConfig::optax_adamw().weight_decay, 1e-4);
    /// ```
    pub fn optax_adamw() -> Self {
        Self {
            weight_decay: 1e-4,
            weight_decay_style: WeightDecayStyle::Decoupled,
            ..Self::optax()
        }
    }

    /// Sets the learning rate.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::AdamConfig::pytorch().with_lr(0.1).lr, 0.1);
    /// ```
    pub fn with_lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }

    /// Sets the betas.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(rmsprop::AdamConfig::pytorch().with_betas(0.0, 0.9).beta1, 0.0);
    /// ```
    pub fn with_betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// Turns AMSGrad on or off.
    ///
    /// # Examples
    /// ```
    /// assert!(rmsprop::AdamConfig::pytorch().with_amsgrad(true).amsgrad);
    /// ```
    pub fn with_amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    /// Sets weight decay and its style.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::{AdamConfig, WeightDecayStyle};
    /// assert_eq!(AdamConfig::pytorch().with_weight_decay(0.0, WeightDecayStyle::Decoupled).weight_decay, 0.0);
    /// ```
    pub fn with_weight_decay(mut self, weight_decay: f64, style: WeightDecayStyle) -> Self {
        self.weight_decay = weight_decay;
        self.weight_decay_style = style;
        self
    }

    /// Checks every hyperparameter.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`](crate::Error::InvalidHyperparameter) naming the parameter.
    ///
    /// # Examples
    /// ```
    /// assert!(rmsprop::AdamConfig::pytorch().with_betas(0.9, 1.0).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_non_negative("lr", self.lr)?;
        check_unit_interval("beta1", self.beta1)?;
        check_unit_interval("beta2", self.beta2)?;
        check_non_negative("eps", self.eps)?;
        check_non_negative("eps_root", self.eps_root)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        Ok(())
    }
}

/// Adam / AdamW over many tensors: [`Optim`] with an [`AdamConfig`].
///
/// # Examples
/// ```
/// use rmsprop::{Adam, AdamConfig, Optimizer};
/// let mut opt = Adam::<f32>::new(AdamConfig::optax().with_lr(0.05).with_amsgrad(true)).unwrap();
/// let mut x = vec![1.0f32; 3];
/// for _ in 0..200 {
///     let g: Vec<f32> = x.iter().map(|v| 2.0 * v).collect();
///     opt.step_single(&mut x, &g).unwrap();
/// }
/// assert!(x.iter().all(|v| v.abs() < 0.05));
/// ```
pub type Adam<T> = Optim<AdamConfig, T>;

impl Algorithm for AdamConfig {
    const KIND: &'static str = "adam";
    type Scalars<T: Float> = AdamScalars<T>;

    /// `"adamw"` with decoupled weight decay, else `"adam"`.
    fn name(&self) -> &'static str {
        if self.weight_decay_style == WeightDecayStyle::Decoupled {
            "adamw"
        } else {
            "adam"
        }
    }

    fn validate(&self) -> Result<()> {
        AdamConfig::validate(self)
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// `exp_avg`, `exp_avg_sq`, and `max_exp_avg_sq` with AMSGrad, all from 0.
    fn layout(&self) -> Layout {
        let mut buffers = vec![
            BufferSpec::new("exp_avg", 0.0),
            BufferSpec::new("exp_avg_sq", 0.0),
        ];
        if self.amsgrad {
            buffers.push(BufferSpec::new("max_exp_avg_sq", 0.0));
        }
        Layout::new(buffers)
    }

    fn variant(&self) -> String {
        let mut v = vec![
            format!("order={}", self.order),
            Algorithm::name(self).to_string(),
        ];
        if self.amsgrad {
            v.push("amsgrad".into());
        }
        if self.maximize {
            v.push("maximize".into());
        }
        v.join("+")
    }

    fn scalars<T: Float>(&self, t: u64) -> AdamScalars<T> {
        let c = self;
        let native = T::from_f64;
        // PyTorch computes these in Python floats (f64) and rounds once.
        let torch = c.order == FamilyOrder::Torch;
        // PyTorch computes its corrections in Python floats (f64) and rounds once; optax in the
        // element type. Only the order in use is computed.
        let (bc1, bc2) = if torch {
            (1.0 - c.beta1.powf(t as f64), 1.0 - c.beta2.powf(t as f64))
        } else {
            (1.0, 1.0)
        };
        let (beta1, beta2) = (native(c.beta1), native(c.beta2));
        let weight_decay = match (c.weight_decay == 0.0, c.weight_decay_style, c.order) {
            (true, _, _) => AdamWeightDecay::None,
            (false, WeightDecayStyle::Coupled, _) => {
                AdamWeightDecay::Coupled(native(c.weight_decay))
            }
            (false, WeightDecayStyle::Decoupled, FamilyOrder::Torch) => {
                AdamWeightDecay::DecoupledScale(native(1.0 - c.lr * c.weight_decay))
            }
            (false, WeightDecayStyle::Decoupled, FamilyOrder::Optax) => {
                AdamWeightDecay::DecoupledAdd(native(c.weight_decay))
            }
        };
        let tt = T::from_f64(t as f64);
        AdamScalars {
            lr: native(c.lr),
            beta1,
            beta2,
            one_minus_beta1: native(1.0 - c.beta1),
            one_minus_beta2: native(1.0 - c.beta2),
            eps: native(c.eps),
            eps_root: native(c.eps_root),
            step_size: native(c.lr / bc1),
            bias_correction2_sqrt: native(bc2.sqrt()),
            // optax: in the element type.
            bias_correction1: if torch {
                T::ONE
            } else {
                T::ONE - beta1.powf(tt)
            },
            bias_correction2: if torch {
                T::ONE
            } else {
                T::ONE - beta2.powf(tt)
            },
            weight_decay,
            amsgrad: c.amsgrad,
            maximize: c.maximize,
            order: c.order,
        }
    }

    fn kernel<T: Float>(&self) -> Kernel<T, AdamScalars<T>> {
        select_adam(&self.scalars::<T>(1))
    }

    fn reference<T: Float>(
        s: &AdamScalars<T>,
        params: &mut [T],
        grads: &[T],
        mut buffers: &mut [&mut [T]],
    ) {
        let m = next_buffer(&mut buffers);
        let v = next_buffer(&mut buffers);
        let vm: &mut [T] = if s.amsgrad {
            next_buffer(&mut buffers)
        } else {
            &mut []
        };
        adam_reference(s, params, grads, m, v, vm)
    }
}
