//! The scalar reference kernel of SGD with heavy-ball or Nesterov momentum (PyTorch's `SGD`).

use super::fast::{Isa, MIN_VECTOR_LEN};
use super::{next_buffer, Kernel};
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

/// The fast SGD kernel for the variant of `s` (momentum, Nesterov, weight decay), selected
/// once when an optimizer is built. The first step (the buffer starts as the gradient) is a
/// per-step scalar, chosen per call. Same operations, same order, same bits as
/// [`sgd_reference`] (`tests/kernels.rs`).
///
/// # Examples
/// ```
/// use rmsprop::kernel::{fast::Isa, sgd::{select_sgd, sgd_reference}};
/// use rmsprop::{Sgd, SgdConfig};
/// let s = Sgd::<f32>::new(SgdConfig::nesterov(0.1, 0.9)).unwrap().scalars(2);
/// let g: Vec<f32> = (0..40).map(|i| (i as f32).sin()).collect();
/// let (mut p1, mut b1) = (vec![1.0f32; 40], vec![0.5f32; 40]);
/// let (mut p2, mut b2) = (p1.clone(), b1.clone());
/// sgd_reference(&s, &mut p1, &g, &mut b1);
/// select_sgd(&s)(Isa::detect(), &s, &mut p2, &g, &mut [&mut b2]);
/// assert_eq!((p1, b1), (p2, b2));
/// ```
pub fn select_sgd<T: Float>(s: &SgdScalars<T>) -> Kernel<T, SgdScalars<T>> {
    let wd = s.weight_decay != T::ZERO;
    match (s.momentum != T::ZERO, s.nesterov, wd) {
        (false, _, false) => sgd_variant::<T, false, false, false>,
        (false, _, true) => sgd_variant::<T, false, false, true>,
        (true, false, false) => sgd_variant::<T, true, false, false>,
        (true, false, true) => sgd_variant::<T, true, false, true>,
        (true, true, false) => sgd_variant::<T, true, true, false>,
        (true, true, true) => sgd_variant::<T, true, true, true>,
    }
}

fn sgd_variant<T: Float, const MOM: bool, const NESTEROV: bool, const WD: bool>(
    isa: Isa,
    s: &SgdScalars<T>,
    p: &mut [T],
    g: &[T],
    mut buffers: &mut [&mut [T]],
) {
    let n = p.len();
    assert_eq!(g.len(), n, "gradient length");
    let b: &mut [T] = if MOM {
        next_buffer(&mut buffers)
    } else {
        &mut []
    };
    if MOM {
        assert_eq!(b.len(), n, "momentum_buffer length");
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2<T: Float, const MOM: bool, const NESTEROV: bool, const WD: bool>(
            s: &SgdScalars<T>,
            p: &mut [T],
            g: &[T],
            b: &mut [T],
        ) {
            sgd_loop::<T, MOM, NESTEROV, WD>(s, p, g, b)
        }
        if n >= MIN_VECTOR_LEN && isa == Isa::Avx2 && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { avx2::<T, MOM, NESTEROV, WD>(s, p, g, b) };
        }
    }
    let _ = isa;
    if n < MIN_VECTOR_LEN {
        return sgd_reference(s, p, g, b);
    }
    sgd_loop::<T, MOM, NESTEROV, WD>(s, p, g, b)
}

#[inline(always)]
fn sgd_loop<T: Float, const MOM: bool, const NESTEROV: bool, const WD: bool>(
    s: &SgdScalars<T>,
    params: &mut [T],
    grads: &[T],
    momentum_buffer: &mut [T],
) {
    let sign = if s.maximize { -T::ZERO } else { T::ZERO };
    if !MOM {
        let mut unused = T::ZERO;
        for (p, &g) in params.iter_mut().zip(grads) {
            sgd_element::<T, false, false, false, WD>(s, sign, p, g, &mut unused);
        }
        return;
    }
    let it = params.iter_mut().zip(grads).zip(momentum_buffer.iter_mut());
    if s.first_step {
        it.for_each(|((p, &g), b)| sgd_element::<T, true, true, NESTEROV, WD>(s, sign, p, g, b))
    } else {
        it.for_each(|((p, &g), b)| sgd_element::<T, true, false, NESTEROV, WD>(s, sign, p, g, b))
    }
}

#[inline(always)]
fn sgd_element<
    T: Float,
    const MOM: bool,
    const FIRST: bool,
    const NESTEROV: bool,
    const WD: bool,
>(
    s: &SgdScalars<T>,
    sign: T,
    p_ref: &mut T,
    g_in: T,
    b_ref: &mut T,
) {
    let p = *p_ref;
    let mut g = g_in.negate_if_signed(sign);
    if WD {
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
