//! The scalar reference kernel of Adagrad (PyTorch's and optax's orders).

use crate::optim::FamilyOrder;
use crate::Float;

/// Per-step scalars of one Adagrad update, in the element type.
///
/// # Examples
/// ```
/// use rmsprop::{kernel::adagrad::{adagrad_reference, AdagradScalars}, FamilyOrder};
/// let s = AdagradScalars { lr: 0.1f64, eps: 0.0, weight_decay: 0.0, maximize: false, order: FamilyOrder::Torch };
/// let (mut p, mut sum) = ([1.0], [0.0]);
/// adagrad_reference(&s, &mut p, &[3.0], &mut sum);
/// assert_eq!((p[0], sum[0]), (1.0 - 0.1, 9.0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradScalars<T> {
    /// Learning rate at this step (PyTorch: already divided by `1 + (t-1)*lr_decay`).
    pub lr: T,
    /// Epsilon.
    pub eps: T,
    /// Coupled weight decay (0: none).
    pub weight_decay: T,
    /// Negate the gradient.
    pub maximize: bool,
    /// Operation order.
    pub order: FamilyOrder,
}

/// One Adagrad step over one tensor. Per element:
///
/// ```text
/// g = -g if maximize;  g = g + wd*p if wd != 0
/// Torch: s = s + g*g;  p = p - (lr*g)/(sqrt(s) + eps)
/// Optax: s = g*g + s;  p = p - lr*(r*g)  with r = 1/sqrt(s + eps) if s > 0, else 0
/// ```
///
/// # Examples
/// ```
/// use rmsprop::{kernel::adagrad::{adagrad_reference, AdagradScalars}, FamilyOrder};
/// let s = AdagradScalars { lr: 0.1f32, eps: 1e-7, weight_decay: 0.0, maximize: false, order: FamilyOrder::Optax };
/// let (mut p, mut sum) = ([1.0f32, 1.0], [0.1f32, 0.0]);
/// adagrad_reference(&s, &mut p, &[0.0, 0.0], &mut sum);
/// assert_eq!(p, [1.0, 1.0]);
/// ```
#[inline(always)]
pub fn adagrad_reference<T: Float>(
    s: &AdagradScalars<T>,
    params: &mut [T],
    grads: &[T],
    sum: &mut [T],
) {
    let n = params.len();
    assert_eq!(grads.len(), n, "gradient length");
    assert_eq!(sum.len(), n, "sum length");
    for i in 0..n {
        let p = params[i];
        let mut g = grads[i];
        if s.maximize {
            g = -g;
        }
        if s.weight_decay != T::ZERO {
            g = g + s.weight_decay * p;
        }
        match s.order {
            FamilyOrder::Torch => {
                let acc = sum[i] + g * g;
                sum[i] = acc;
                params[i] = p - (s.lr * g) / (acc.sqrt() + s.eps);
            }
            FamilyOrder::Optax => {
                let acc = g * g + sum[i];
                sum[i] = acc;
                let r = if acc > T::ZERO {
                    T::ONE / (acc + s.eps).sqrt()
                } else {
                    T::ZERO
                };
                params[i] = p - s.lr * (r * g);
            }
        }
    }
}
