//! Optimizers: configuration, validation, state and the step, one file per optimizer.

pub mod adagrad;
pub mod adam;
pub(crate) mod common;
pub mod rmsprop;
pub mod sgd;

/// Operation order for the family's optimizers that PyTorch and optax compute differently
/// (Adagrad, Adam). RMSProp has its own, richer [`OperationOrder`](crate::OperationOrder).
///
/// # Examples
/// ```
/// use rmsprop::{AdamConfig, FamilyOrder};
/// assert_eq!(AdamConfig::pytorch().order, FamilyOrder::Torch);
/// assert_eq!(AdamConfig::optax().order, FamilyOrder::Optax);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum FamilyOrder {
    /// PyTorch's single-tensor (`foreach=False`) arithmetic, without its fused multiply-adds.
    Torch,
    /// optax's arithmetic.
    Optax,
}
