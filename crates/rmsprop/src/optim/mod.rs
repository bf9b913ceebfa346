//! Optimizers: configuration, validation, state and the step, one file per optimizer.

pub mod rmsprop;
