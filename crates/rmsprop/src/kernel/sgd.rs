//! The scalar reference kernel of SGD with heavy-ball or Nesterov momentum (PyTorch's `SGD`).

use crate::Float;

/// Per-step scalars of one SGD update, in the element type.
///
/// # Examples
/// ```
/// use rmsprop::kernel::sgd::{sgd_reference, SgdScalars};
/// let s = SgdScalars { lr: 0.1f64, momentum: 0.0, one_minus_dampening: 1.0, nesterov: false,
///                      weight_decay: 0.0, maximize: false, first_step: true };
/// let mut p = [1.0];
/// sgd_reference(&s, &mut p, &[2.0], &mut []);
/// assert_eq!(p, [0.8]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdScalars<T> {
    /// Learning rate.
    pub lr: T,
    /// Momentum coefficient; 0 keeps no buffer.
    pub momentum: T,
    /// `1 - dampening`.
    pub one_minus_dampening: T,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Coupled weight decay (0: none).
    pub weight_decay: T,
    /// Negate the gradient.
    pub maximize: bool,
    /// First step of this tensor: the buffer starts as the gradient itself (no dampening).
    pub first_step: bool,
}

/// One SGD step over one tensor. `momentum_buffer` must have the tensor's length when
/// `s.momentum != 0` (else it is not read). Per element, in PyTorch's order:
///
/// ```text
/// g = -g if maximize;  g = g + wd*p if wd != 0
/// b = g (first step)  |  b = b*mu + (1-dampening)*g          if mu != 0
/// g = g + mu*b (nesterov)  |  g = b                           if mu != 0
/// p = p - lr*g
/// ```
///
/// # Examples
/// ```
/// use rmsprop::kernel::sgd::{sgd_reference, SgdScalars};
/// let mut s = SgdScalars { lr: 0.5f32, momentum: 0.9, one_minus_dampening: 1.0, nesterov: false,
///                          weight_decay: 0.0, maximize: false, first_step: true };
/// let (mut p, mut b) = ([0.0f32], [0.0f32]);
/// sgd_reference(&s, &mut p, &[1.0], &mut b);
/// s.first_step = false;
/// sgd_reference(&s, &mut p, &[1.0], &mut b);
/// assert_eq!((p[0], b[0]), (-0.5 - 0.5 * 1.9, 1.9));
/// ```
#[inline(always)]
pub fn sgd_reference<T: Float>(
    s: &SgdScalars<T>,
    params: &mut [T],
    grads: &[T],
    momentum_buffer: &mut [T],
) {
    let n = params.len();
    assert_eq!(grads.len(), n, "gradient length");
    let with_momentum = s.momentum != T::ZERO;
    if with_momentum {
        assert_eq!(momentum_buffer.len(), n, "momentum_buffer length");
    }
    for i in 0..n {
        let p = params[i];
        let mut g = grads[i];
        if s.maximize {
            g = -g;
        }
        if s.weight_decay != T::ZERO {
            g = g + s.weight_decay * p;
        }
        if with_momentum {
            let b = if s.first_step {
                g
            } else {
                momentum_buffer[i] * s.momentum + s.one_minus_dampening * g
            };
            momentum_buffer[i] = b;
            g = if s.nesterov { g + s.momentum * b } else { b };
        }
        params[i] = p - s.lr * g;
    }
}
