//! Bookkeeping shared by every optimizer: shape checks before a step, and hyperparameter checks.

use crate::{Error, Float, Result};

/// Checks that a step over `params` with `grads` can run against `state_count` per-tensor states
/// (0 when no state exists yet) whose lengths `state_len(i)` gives, without modifying anything
/// or allocating.
#[inline]
pub(crate) fn check_step<T: Float>(
    params: &[&mut [T]],
    grads: &[&[T]],
    state_count: usize,
    state_len: impl Fn(usize) -> usize,
) -> Result<()> {
    if params.len() != grads.len() {
        return Err(Error::GradientCount {
            params: params.len(),
            grads: grads.len(),
        });
    }
    for (index, (p, g)) in params.iter().zip(grads).enumerate() {
        if p.len() != g.len() {
            return Err(Error::GradientLength {
                index,
                params: p.len(),
                grads: g.len(),
            });
        }
    }
    if state_count != 0 {
        if state_count != params.len() {
            return Err(Error::TensorCount {
                state: state_count,
                params: params.len(),
            });
        }
        for (index, p) in params.iter().enumerate() {
            let n = state_len(index);
            if p.len() != n {
                return Err(Error::StateLength {
                    index,
                    params: p.len(),
                    state: n,
                });
            }
        }
    }
    Ok(())
}

/// Checks that a state buffer has the length the configuration needs.
pub(crate) fn check_buffer(
    index: usize,
    buffer: &'static str,
    len: usize,
    expected: usize,
) -> Result<()> {
    if len == expected {
        Ok(())
    } else {
        Err(Error::StateBuffer {
            index,
            buffer,
            len,
            expected,
        })
    }
}

/// `value` must be finite and `>= 0`.
pub(crate) fn check_non_negative(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name,
            value,
            allowed: "finite and >= 0",
        })
    }
}

/// `value` must be in `[0, 1)`.
pub(crate) fn check_unit_interval(name: &'static str, value: f64) -> Result<()> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name,
            value,
            allowed: "in [0, 1)",
        })
    }
}

/// `value` must be in `[0, 1]`.
pub(crate) fn check_closed_unit_interval(name: &'static str, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name,
            value,
            allowed: "in [0, 1]",
        })
    }
}

/// The `Optimizer` methods every optimizer implements the same way, for a type with fields
/// `config.lr`, `exec` and `skipped`.
macro_rules! common_optimizer_methods {
    () => {
        fn learning_rate(&self) -> f64 {
            self.config.lr
        }

        fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
            crate::optim::common::check_non_negative("lr", lr)?;
            self.config.lr = lr;
            Ok(())
        }

        fn screen_gradients(&self, grads: &[&[T]]) -> Result<bool> {
            self.exec.screen(grads)
        }

        fn skipped_steps(&self) -> u64 {
            self.skipped
        }

        fn set_execution(&mut self, execution: Execution) {
            self.exec = execution;
        }
    };
}
pub(crate) use common_optimizer_methods;

/// Inherent helpers every optimizer has (fields `exec` and `skipped`), used by checkpoints.
macro_rules! common_inherent_methods {
    () => {
        /// Takes the execution settings of `other` (used when a configuration is replaced).
        #[cfg_attr(not(feature = "checkpoint"), allow(dead_code))]
        pub(crate) fn set_execution_from(&mut self, other: &Self) {
            self.exec = other.exec.clone();
            self.skipped = other.skipped;
        }

        /// Sets the count of skipped steps (restoring a checkpoint).
        #[cfg_attr(not(feature = "checkpoint"), allow(dead_code))]
        pub(crate) fn set_skipped_steps(&mut self, skipped: u64) {
            self.skipped = skipped;
        }
    };
}
pub(crate) use common_inherent_methods;
