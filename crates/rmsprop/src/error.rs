//! The library's error type.

use thiserror::Error;

/// Everything that can go wrong when building or stepping an optimizer.
///
/// Every variant names the culprit (the hyperparameter, the tensor index) and
/// what was expected, so the message alone says what to fix. A step that
/// returns an error has not modified any parameter or state.
///
/// # Examples
/// ```
/// use rmsprop::{Error, RmsPropConfig};
/// let err = RmsPropConfig::pytorch().with_rho(1.5).validate().unwrap_err();
/// assert!(matches!(err, Error::InvalidHyperparameter { name: "rho", .. }));
/// assert_eq!(err.to_string(), "invalid hyperparameter `rho` = 1.5: must be in [0, 1)");
/// ```
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A hyperparameter is NaN, infinite or outside its allowed range.
    #[error("invalid hyperparameter `{name}` = {value}: must be {allowed}")]
    InvalidHyperparameter {
        /// The hyperparameter's name, as in the configuration struct.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// The allowed range, in words (e.g. `"in [0, 1)"`).
        allowed: &'static str,
    },
    /// Two hyperparameters that cannot be combined.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// A parameter tensor and its gradient have different lengths.
    #[error("tensor {index}: parameter has {params} elements but its gradient has {grads}")]
    GradientLength {
        /// Index of the tensor in the step's list.
        index: usize,
        /// Number of parameter elements.
        params: usize,
        /// Number of gradient elements.
        grads: usize,
    },
    /// The step got a different number of parameter tensors and gradients.
    #[error("{params} parameter tensors but {grads} gradients: pass one gradient per tensor")]
    GradientCount {
        /// Number of parameter tensors.
        params: usize,
        /// Number of gradient tensors.
        grads: usize,
    },
    /// The step got a different number of tensors than the optimizer state holds.
    #[error("the optimizer state holds {state} tensors but the step got {params}: step the same tensors every time, or reset the optimizer")]
    TensorCount {
        /// Number of tensors in the state.
        state: usize,
        /// Number of tensors passed to the step.
        params: usize,
    },
    /// A tensor's length differs from its state buffers' length.
    #[error("tensor {index}: {params} elements but its optimizer state has {state}: step the same tensors every time, or reset the optimizer")]
    StateLength {
        /// Index of the tensor.
        index: usize,
        /// Number of parameter elements.
        params: usize,
        /// Length of the state buffers.
        state: usize,
    },
    /// A gradient holds NaN or an infinity (under [`NonFinitePolicy::Error`](crate::NonFinitePolicy::Error)).
    #[error("tensor {index}: gradient element {element} is {value}: the step was not applied (check the loss and learning rate, clip gradients, or set NonFinitePolicy::Skip)")]
    NonFiniteGradient {
        /// Index of the tensor.
        index: usize,
        /// Index of the first non-finite element.
        element: usize,
        /// The value (NaN, inf or -inf).
        value: f64,
    },
    /// A state buffer does not fit the configuration (e.g. a centered optimizer without `grad_avg`).
    #[error("tensor {index}: state buffer `{buffer}` has {len} elements, expected {expected}")]
    StateBuffer {
        /// Index of the tensor.
        index: usize,
        /// The buffer's name.
        buffer: &'static str,
        /// Its length.
        len: usize,
        /// The length the configuration needs.
        expected: usize,
    },
}

/// `Result` with the library's [`Error`](enum@Error).
pub type Result<T, E = Error> = core::result::Result<T, E>;
