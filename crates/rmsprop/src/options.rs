//! The options several optimizers share, with explicit, stable names.
//!
//! This module is a leaf: kernels, optimizers, checkpoints and front ends all depend on it and
//! it depends on nothing. Each enum's [`as_str`](EpsPlacement::as_str) name is its identity
//! outside Rust (checkpoint files, JSON, the CLI): it never comes from `Debug` output, and a
//! renamed Rust variant keeps its name.

/// A name that is not one of an enum's stable names.
///
/// # Examples
/// ```
/// let err = "sideways".parse::<rmsprop::EpsPlacement>().unwrap_err();
/// assert_eq!(err.to_string(), "unknown EpsPlacement; allowed: outside, inside");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind}; allowed: {allowed}")]
pub struct UnknownName {
    /// The enum.
    pub kind: &'static str,
    /// Its stable names.
    pub allowed: &'static str,
}

/// Where epsilon goes in the denominator.
///
/// # Examples
/// ```
/// use rmsprop::{EpsPlacement, RmsPropConfig};
/// assert_eq!(RmsPropConfig::pytorch().eps_placement, EpsPlacement::Outside);
/// assert_eq!(RmsPropConfig::keras().eps_placement, EpsPlacement::Inside);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum EpsPlacement {
    /// `g / (sqrt(v) + eps)`: PyTorch, burn, the lesson, optax with `eps_in_sqrt=False`.
    #[cfg_attr(feature = "serde", serde(rename = "outside"))]
    Outside,
    /// `g / sqrt(v + eps)`: Keras, TF1, timm, optax's default (`eps_in_sqrt=True`).
    #[cfg_attr(feature = "serde", serde(rename = "inside"))]
    Inside,
}

/// Where the learning rate sits relative to the momentum buffer.
///
/// The two agree while the learning rate is constant and differ once it changes:
/// with the rate outside, a new rate rescales the whole accumulated velocity at once;
/// with it inside, only new contributions see the new rate.
///
/// # Examples
/// ```
/// use rmsprop::{MomentumStyle, RmsPropConfig};
/// assert_eq!(RmsPropConfig::pytorch().momentum_style, MomentumStyle::LrOutside);
/// assert_eq!(RmsPropConfig::keras().momentum_style, MomentumStyle::LrInside);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MomentumStyle {
    /// `b = mu*b + g/d; p -= lr*b` (PyTorch, burn, timm with `lr_in_momentum=False`).
    #[cfg_attr(feature = "serde", serde(rename = "lr_outside"))]
    LrOutside,
    /// `b = mu*b + lr*g/d; p -= b` (Keras, TF1, optax, timm's default, Graves).
    #[cfg_attr(feature = "serde", serde(rename = "lr_inside"))]
    LrInside,
}

/// How weight decay enters the update.
///
/// # Examples
/// ```
/// use rmsprop::{RmsPropConfig, WeightDecayStyle};
/// let c = RmsPropConfig::timm_tf().with_weight_decay(1e-4, WeightDecayStyle::Decoupled);
/// assert_eq!(c.weight_decay, 1e-4);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum WeightDecayStyle {
    /// L2 regularization: `g = g + wd*p` before the square average (PyTorch, timm's default).
    #[cfg_attr(feature = "serde", serde(rename = "coupled"))]
    Coupled,
    /// Decoupled: the parameter shrinks by `lr*wd*p` before the update, outside the
    /// adaptive scaling (Keras 3, timm with `decoupled_decay=True`). Keras computes
    /// `p - (p*wd)*lr`; the other orders compute `p * (1 - lr*wd)`.
    #[cfg_attr(feature = "serde", serde(rename = "decoupled"))]
    Decoupled,
}

/// The operation order of the arithmetic, which decides the last bits of every step.
///
/// Mathematically equal formulas round differently; each framework has its own
/// order, and matching it is what makes trajectories agree bit for bit. See
/// [`rmsprop_reference`](crate::kernel::rmsprop::rmsprop_reference) for the table.
///
/// # Examples
/// ```
/// use rmsprop::{OperationOrder, RmsPropConfig};
/// assert_eq!(RmsPropConfig::lesson().operation_order, OperationOrder::Keras);
/// assert_eq!(RmsPropConfig::timm_tf().operation_order, OperationOrder::Tf1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OperationOrder {
    /// PyTorch: `v*rho + ((1-rho)*g)*g`, mean by `lerp`, `(lr*g)/d`.
    #[cfg_attr(feature = "serde", serde(rename = "torch"))]
    Torch,
    /// Keras 3 and the lesson's numpy code: `rho*v + (1-rho)*(g*g)`, `(lr*g)/d`.
    #[cfg_attr(feature = "serde", serde(rename = "keras"))]
    Keras,
    /// optax: as Keras, but the update is `lr*((1/d)*g)`.
    #[cfg_attr(feature = "serde", serde(rename = "optax"))]
    Optax,
    /// TF1 and timm: `v + (g*g - v)*(1-rho)`, `(lr*g)/d`.
    #[cfg_attr(feature = "serde", serde(rename = "tf1"))]
    Tf1,
}

/// How the hyperparameters are rounded before they meet the element type.
///
/// # Examples
/// ```
/// use rmsprop::{HyperparameterPrecision, RmsProp, RmsPropConfig};
/// // Keras keeps the learning rate in a float32 variable, even for float64 weights.
/// let opt = RmsProp::<f64>::new(RmsPropConfig::keras()).unwrap();
/// assert_eq!(opt.scalars(1).lr, 0.0010000000474974513);
/// assert_eq!(RmsPropConfig::keras().hyperparameter_precision, HyperparameterPrecision::Float32Lr);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum HyperparameterPrecision {
    /// Each hyperparameter (and `1 - rho`) is computed in `f64` and rounded once to the
    /// element type (PyTorch, optax, timm, numpy).
    #[cfg_attr(feature = "serde", serde(rename = "native"))]
    Native,
    /// As `Native`, but the learning rate is first rounded to `f32` (Keras 3 stores it in
    /// a float32 variable).
    #[cfg_attr(feature = "serde", serde(rename = "float32_lr"))]
    Float32Lr,
    /// Every hyperparameter is first rounded to `f32`, and `1 - rho` is computed in the
    /// element type (TF1 turns Python floats into float32 tensors).
    #[cfg_attr(feature = "serde", serde(rename = "float32"))]
    Float32,
}

/// Operation order for the family's optimizers that PyTorch and optax compute differently
/// (Adagrad, Adam). RMSProp has its own, richer [`OperationOrder`].
///
/// # Examples
/// ```
/// use rmsprop::{AdamConfig, FamilyOrder};
/// assert_eq!(AdamConfig::pytorch().order, FamilyOrder::Torch);
/// assert_eq!(AdamConfig::optax().order, FamilyOrder::Optax);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum FamilyOrder {
    /// PyTorch's single-tensor (`foreach=False`) arithmetic, without its fused multiply-adds.
    #[cfg_attr(feature = "serde", serde(rename = "torch"))]
    Torch,
    /// optax's arithmetic.
    #[cfg_attr(feature = "serde", serde(rename = "optax"))]
    Optax,
}

impl EpsPlacement {
    /// Every value, in declaration order.
    pub const ALL: &'static [Self] = &[Self::Outside, Self::Inside];

    /// The stable name of this value: the one checkpoints, JSON, the CLI and other languages use.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::EpsPlacement;
    /// for v in EpsPlacement::ALL {
    ///     assert_eq!(v.as_str().parse::<EpsPlacement>(), Ok(*v));
    /// }
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Outside => "outside",
            Self::Inside => "inside",
        }
    }
}

impl core::fmt::Display for EpsPlacement {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for EpsPlacement {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "outside" => Ok(Self::Outside),
            "inside" => Ok(Self::Inside),
            _ => Err(UnknownName {
                kind: "EpsPlacement",
                allowed: "outside, inside",
            }),
        }
    }
}

impl MomentumStyle {
    /// Every value, in declaration order.
    pub const ALL: &'static [Self] = &[Self::LrOutside, Self::LrInside];

    /// The stable name of this value: the one checkpoints, JSON, the CLI and other languages use.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::MomentumStyle;
    /// for v in MomentumStyle::ALL {
    ///     assert_eq!(v.as_str().parse::<MomentumStyle>(), Ok(*v));
    /// }
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LrOutside => "lr_outside",
            Self::LrInside => "lr_inside",
        }
    }
}

impl core::fmt::Display for MomentumStyle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for MomentumStyle {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "lr_outside" => Ok(Self::LrOutside),
            "lr_inside" => Ok(Self::LrInside),
            _ => Err(UnknownName {
                kind: "MomentumStyle",
                allowed: "lr_outside, lr_inside",
            }),
        }
    }
}

impl WeightDecayStyle {
    /// Every value, in declaration order.
    pub const ALL: &'static [Self] = &[Self::Coupled, Self::Decoupled];

    /// The stable name of this value: the one checkpoints, JSON, the CLI and other languages use.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::WeightDecayStyle;
    /// for v in WeightDecayStyle::ALL {
    ///     assert_eq!(v.as_str().parse::<WeightDecayStyle>(), Ok(*v));
    /// }
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Coupled => "coupled",
            Self::Decoupled => "decoupled",
        }
    }
}

impl core::fmt::Display for WeightDecayStyle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for WeightDecayStyle {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "coupled" => Ok(Self::Coupled),
            "decoupled" => Ok(Self::Decoupled),
            _ => Err(UnknownName {
                kind: "WeightDecayStyle",
                allowed: "coupled, decoupled",
            }),
        }
    }
}

impl OperationOrder {
    /// Every value, in declaration order.
    pub const ALL: &'static [Self] = &[Self::Torch, Self::Keras, Self::Optax, Self::Tf1];

    /// The stable name of this value: the one checkpoints, JSON, the CLI and other languages use.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::OperationOrder;
    /// for v in OperationOrder::ALL {
    ///     assert_eq!(v.as_str().parse::<OperationOrder>(), Ok(*v));
    /// }
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Torch => "torch",
            Self::Keras => "keras",
            Self::Optax => "optax",
            Self::Tf1 => "tf1",
        }
    }
}

impl core::fmt::Display for OperationOrder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for OperationOrder {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "torch" => Ok(Self::Torch),
            "keras" => Ok(Self::Keras),
            "optax" => Ok(Self::Optax),
            "tf1" => Ok(Self::Tf1),
            _ => Err(UnknownName {
                kind: "OperationOrder",
                allowed: "torch, keras, optax, tf1",
            }),
        }
    }
}

impl HyperparameterPrecision {
    /// Every value, in declaration order.
    pub const ALL: &'static [Self] = &[Self::Native, Self::Float32Lr, Self::Float32];

    /// The stable name of this value: the one checkpoints, JSON, the CLI and other languages use.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::HyperparameterPrecision;
    /// for v in HyperparameterPrecision::ALL {
    ///     assert_eq!(v.as_str().parse::<HyperparameterPrecision>(), Ok(*v));
    /// }
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Float32Lr => "float32_lr",
            Self::Float32 => "float32",
        }
    }
}

impl core::fmt::Display for HyperparameterPrecision {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for HyperparameterPrecision {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "native" => Ok(Self::Native),
            "float32_lr" => Ok(Self::Float32Lr),
            "float32" => Ok(Self::Float32),
            _ => Err(UnknownName {
                kind: "HyperparameterPrecision",
                allowed: "native, float32_lr, float32",
            }),
        }
    }
}

impl FamilyOrder {
    /// Every value, in declaration order.
    pub const ALL: &'static [Self] = &[Self::Torch, Self::Optax];

    /// The stable name of this value: the one checkpoints, JSON, the CLI and other languages use.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::FamilyOrder;
    /// for v in FamilyOrder::ALL {
    ///     assert_eq!(v.as_str().parse::<FamilyOrder>(), Ok(*v));
    /// }
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Torch => "torch",
            Self::Optax => "optax",
        }
    }
}

impl core::fmt::Display for FamilyOrder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for FamilyOrder {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "torch" => Ok(Self::Torch),
            "optax" => Ok(Self::Optax),
            _ => Err(UnknownName {
                kind: "FamilyOrder",
                allowed: "torch, optax",
            }),
        }
    }
}
