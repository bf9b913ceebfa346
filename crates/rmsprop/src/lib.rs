//! # rmsprop
//!
//! An exact, complete implementation of the RMSProp optimizer: every variant
//! that PyTorch, Keras 3, TF1, optax and timm offer (epsilon inside or outside
//! the root, centered, momentum with the learning rate inside or outside the
//! buffer, Nesterov, coupled and decoupled weight decay, maximize, bias
//! correction, initial square average), in each framework's operation order,
//! for `f32` and `f64`, over many tensors at once.
//!
//! ```
//! use rmsprop::{Optimizer, RmsProp, RmsPropConfig};
//!
//! // Minimize f(x, y) = x^2 + y^2 from (5, 4) with the lesson's settings.
//! let mut opt = RmsProp::<f64>::new(RmsPropConfig::lesson()).unwrap();
//! let mut x = [5.0, 4.0];
//! for _ in 0..=100 {
//!     let grad = [2.0 * x[0], 2.0 * x[1]];
//!     opt.step_single(&mut x, &grad).unwrap();
//! }
//! assert_eq!(x, [-3.0770182845888756e-17, 2.1886219485527558e-20]);
//! ```
//!
//! Layout: an optimizer is an [`Algorithm`] (its configuration, in [`optim`]: validation,
//! presets, state layout, per-step scalars) run by one generic type, [`Optim`], which does the
//! checks, screening, lazy state, threads and checkpoints for all of them; [`kernel`] holds
//! the scalar reference kernels, the arithmetic every faster kernel must reproduce bit for bit
//! (the "how"); [`options`] holds the enums they share, with stable names. Wrappers
//! ([`ParamGroups`], [`schedule::Scheduled`], [`Accumulate`]) are optimizers too. The library
//! does no I/O.
#![deny(missing_docs)]

mod accumulate;
pub mod algorithm;
pub mod blockwise;
mod check;
#[cfg(feature = "checkpoint")]
pub mod checkpoint;
pub mod clip;
mod error;
mod exec;
mod float;
pub mod kernel;
#[cfg(feature = "half")]
pub mod mixed;
pub mod optim;
mod optimizer;
pub mod options;
mod params;
mod quant;
pub mod schedule;
mod state;
pub mod storage;
#[cfg(feature = "half")]
pub mod torch_half;

pub use accumulate::Accumulate;
pub use algorithm::Algorithm;
pub use error::{Error, Result};
pub use exec::{Execution, NonFinitePolicy};
pub use float::Float;
pub use optim::adadelta::{Adadelta, AdadeltaConfig};
pub use optim::adagrad::{Adagrad, AdagradConfig};
pub use optim::adam::{Adam, AdamConfig};
pub use optim::lion::{Lion, LionConfig};
pub use optim::rmsprop::{RmsProp, RmsPropConfig};
pub use optim::sgd::{Sgd, SgdConfig};
pub use optim::Optim;
pub use optimizer::Optimizer;
pub use options::{
    EpsPlacement, FamilyOrder, HyperparameterPrecision, MomentumStyle, OperationOrder,
    WeightDecayStyle,
};
pub use params::{ParamGroup, ParamGroups};
pub use state::{State, StateView, TensorState};

/// The README's examples, run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
