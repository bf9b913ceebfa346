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
//! Layout: [`optim`] holds configuration, validation and state (the "what");
//! [`kernel`] holds the scalar reference kernels, the arithmetic every faster
//! kernel must reproduce bit for bit (the "how"). The library does no I/O.
#![deny(missing_docs)]

mod accumulate;
#[cfg(feature = "checkpoint")]
pub mod checkpoint;
pub mod clip;
mod error;
mod exec;
mod float;
pub mod kernel;
pub mod optim;
mod optimizer;
mod params;
pub mod schedule;

pub use accumulate::Accumulate;
pub use error::{Error, Result};
pub use exec::{Execution, NonFinitePolicy};
pub use float::Float;
pub use optim::adagrad::{Adagrad, AdagradConfig, AdagradTensorState};
pub use optim::adam::{Adam, AdamConfig, AdamTensorState};
pub use optim::rmsprop::{
    EpsPlacement, HyperparameterPrecision, MomentumStyle, OperationOrder, RmsProp, RmsPropConfig,
    RmsPropState, RmsPropTensorState, WeightDecayStyle,
};
pub use optim::sgd::{Sgd, SgdConfig, SgdTensorState};
pub use optim::FamilyOrder;
pub use optimizer::Optimizer;
pub use params::{ParamGroup, ParamGroups};
