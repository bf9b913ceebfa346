//! Checks shared by every optimizer and wrapper: shapes before a step, and hyperparameters.

use crate::{Error, Result};

/// Checks that a step over `params` with `grads` can run against `state_count` per-tensor states
/// (0 when no state exists yet) whose lengths `state_len(i)` gives, without modifying anything
/// or allocating.
#[inline]
pub(crate) fn check_step<T>(
    params: &[&mut [T]],
    grads: &[&[T]],
    state_count: usize,
    state_len: impl Fn(usize) -> usize,
) -> Result<()> {
    check_step_total(params, grads, state_count, state_len).map(drop)
}

/// [`check_step`], returning the number of elements the step covers.
#[inline]
pub(crate) fn check_step_total<T>(
    params: &[&mut [T]],
    grads: &[&[T]],
    state_count: usize,
    state_len: impl Fn(usize) -> usize,
) -> Result<usize> {
    if params.len() != grads.len() {
        return Err(Error::GradientCount {
            params: params.len(),
            grads: grads.len(),
        });
    }
    let mut total = 0usize;
    for (index, (p, g)) in params.iter().zip(grads).enumerate() {
        if p.len() != g.len() {
            return Err(Error::GradientLength {
                index,
                params: p.len(),
                grads: g.len(),
            });
        }
        total += p.len();
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
    Ok(total)
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
