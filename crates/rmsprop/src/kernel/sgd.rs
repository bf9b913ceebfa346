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

/// The same update as [`sgd_reference`], arranged for the compiler to vectorize (momentum,
/// first step and Nesterov chosen outside the loop). Same operations, same order, same bits.
///
/// # Examples
/// ```
/// use rmsprop::kernel::sgd::{sgd_fast, sgd_reference};
/// use rmsprop::{Sgd, SgdConfig};
/// let s = Sgd::<f32>::new(SgdConfig::nesterov(0.1, 0.9)).unwrap().scalars(2);
/// let g: Vec<f32> = (0..40).map(|i| (i as f32).sin()).collect();
/// let (mut p1, mut b1) = (vec![1.0f32; 40], vec![0.5f32; 40]);
/// let (mut p2, mut b2) = (p1.clone(), b1.clone());
/// sgd_reference(&s, &mut p1, &g, &mut b1);
/// sgd_fast(&s, &mut p2, &g, &mut b2);
/// assert_eq!((p1, b1), (p2, b2));
/// ```
#[inline(always)]
pub fn sgd_fast<T: Float>(
    s: &SgdScalars<T>,
    params: &mut [T],
    grads: &[T],
    momentum_buffer: &mut [T],
) {
    let n = params.len();
    assert_eq!(grads.len(), n, "gradient length");
    if s.momentum == T::ZERO {
        let mut unused = T::ZERO;
        for (p, &g) in params.iter_mut().zip(grads) {
            sgd_element::<T, false, false, false>(s, p, g, &mut unused);
        }
        return;
    }
    assert_eq!(momentum_buffer.len(), n, "momentum_buffer length");
    let it = params.iter_mut().zip(grads).zip(momentum_buffer.iter_mut());
    match (s.first_step, s.nesterov) {
        (true, false) => {
            it.for_each(|((p, &g), b)| sgd_element::<T, true, true, false>(s, p, g, b))
        }
        (true, true) => it.for_each(|((p, &g), b)| sgd_element::<T, true, true, true>(s, p, g, b)),
        (false, false) => {
            it.for_each(|((p, &g), b)| sgd_element::<T, true, false, false>(s, p, g, b))
        }
        (false, true) => {
            it.for_each(|((p, &g), b)| sgd_element::<T, true, false, true>(s, p, g, b))
        }
    }
}

#[inline(always)]
fn sgd_element<T: Float, const MOM: bool, const FIRST: bool, const NESTEROV: bool>(
    s: &SgdScalars<T>,
    p_ref: &mut T,
    g_in: T,
    b_ref: &mut T,
) {
    let p = *p_ref;
    let mut g = if s.maximize { -g_in } else { g_in };
    if s.weight_decay != T::ZERO {
        g = g + s.weight_decay * p;
    }
    if MOM {
        let b = if FIRST {
            g
        } else {
            *b_ref * s.momentum + s.one_minus_dampening * g
        };
        *b_ref = b;
        g = if NESTEROV { g + s.momentum * b } else { b };
    }
    *p_ref = p - s.lr * g;
}
