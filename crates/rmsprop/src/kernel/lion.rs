//! The scalar reference kernel of Lion (Chen et al. 2023), in optax's order, and its fast kernel.

use super::fast::{Isa, MIN_VECTOR_LEN};
use super::{next_buffer, Kernel};
use crate::Float;

/// Per-step scalars of one Lion update, in the element type.
///
/// # Examples
/// ```
/// use rmsprop::{Lion, LionConfig};
/// let s = Lion::<f32>::new(LionConfig::optax()).unwrap().scalars(1);
/// assert_eq!((s.beta1, s.beta2), (0.9, 0.99));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LionScalars<T> {
    /// Learning rate.
    pub lr: T,
    /// Interpolation of the update direction.
    pub beta1: T,
    /// `1 - beta1`, computed in `f64` and rounded once.
    pub one_minus_beta1: T,
    /// Decay of the momentum `exp_avg`.
    pub beta2: T,
    /// `1 - beta2`, computed in `f64` and rounded once.
    pub one_minus_beta2: T,
    /// Decoupled weight decay (0: none).
    pub weight_decay: T,
}

/// One Lion step over one tensor: the scalar reference kernel. Per element, in optax's order
/// (`chain(scale_by_lion, add_decayed_weights, scale_by_learning_rate)`):
///
/// ```text
/// c = (1-b1)*g + b1*m;   u = sign(c)   (-1, 0 or +1)
/// m = (1-b2)*g + b2*m
/// u = u + wd*p if wd != 0;   p = p - lr*u
/// ```
///
/// # Examples
/// ```
/// use rmsprop::kernel::lion::{lion_reference, LionScalars};
/// let s = LionScalars { lr: 0.1f64, beta1: 0.9, one_minus_beta1: 1.0 - 0.9, beta2: 0.99,
///                       one_minus_beta2: 1.0 - 0.99, weight_decay: 0.0 };
/// let (mut p, mut m) = ([1.0, 1.0], [0.0, 0.0]);
/// lion_reference(&s, &mut p, &[3.0, 0.0], &mut m);
/// assert_eq!(p, [0.9, 1.0]); // a sign step, and none where the direction is 0
/// ```
#[inline(always)]
pub fn lion_reference<T: Float>(
    s: &LionScalars<T>,
    params: &mut [T],
    grads: &[T],
    exp_avg: &mut [T],
) {
    let n = params.len();
    assert_eq!(grads.len(), n, "gradient length");
    assert_eq!(exp_avg.len(), n, "exp_avg length");
    for i in 0..n {
        let p = params[i];
        let g = grads[i];
        let m = exp_avg[i];
        let mut u = (s.one_minus_beta1 * g + s.beta1 * m).signum0();
        exp_avg[i] = s.one_minus_beta2 * g + s.beta2 * m;
        if s.weight_decay != T::ZERO {
            u = u + s.weight_decay * p;
        }
        params[i] = p - s.lr * u;
    }
}

/// The fast Lion kernel for the variant of `s` (weight decay or not), selected once when an
/// optimizer is built. Same operations, same order, same bits as [`lion_reference`]. Buffers:
/// `[exp_avg]`.
///
/// # Examples
/// ```
/// use rmsprop::kernel::{fast::Isa, lion::{lion_reference, select_lion}};
/// use rmsprop::{Lion, LionConfig};
/// let s = Lion::<f64>::new(LionConfig::optax()).unwrap().scalars(1);
/// let g: Vec<f64> = (0..40).map(|i| (i as f64).sin()).collect();
/// let (mut p1, mut m1) = (vec![1.0; 40], vec![0.1; 40]);
/// let (mut p2, mut m2) = (p1.clone(), m1.clone());
/// lion_reference(&s, &mut p1, &g, &mut m1);
/// select_lion(&s)(Isa::detect(), &s, &mut p2, &g, &mut [&mut m2]);
/// assert_eq!((p1, m1), (p2, m2));
/// ```
pub fn select_lion<T: Float>(s: &LionScalars<T>) -> Kernel<T, LionScalars<T>> {
    if s.weight_decay != T::ZERO {
        lion_variant::<T, true>
    } else {
        lion_variant::<T, false>
    }
}

fn lion_variant<T: Float, const WD: bool>(
    isa: Isa,
    s: &LionScalars<T>,
    p: &mut [T],
    g: &[T],
    mut buffers: &mut [&mut [T]],
) {
    let n = p.len();
    assert_eq!(g.len(), n, "gradient length");
    let m = next_buffer(&mut buffers);
    assert_eq!(m.len(), n, "exp_avg length");
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2<T: Float, const WD: bool>(s: &LionScalars<T>, p: &mut [T], g: &[T], m: &mut [T]) {
            lion_loop::<T, WD>(s, p, g, m)
        }
        if n >= MIN_VECTOR_LEN && isa == Isa::Avx2 && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { avx2::<T, WD>(s, p, g, m) };
        }
    }
    let _ = isa;
    if n < MIN_VECTOR_LEN {
        return lion_reference(s, p, g, m);
    }
    lion_loop::<T, WD>(s, p, g, m)
}

#[inline(always)]
fn lion_loop<T: Float, const WD: bool>(
    s: &LionScalars<T>,
    params: &mut [T],
    grads: &[T],
    exp_avg: &mut [T],
) {
    for ((p_ref, &g), m_ref) in params.iter_mut().zip(grads).zip(exp_avg.iter_mut()) {
        let p = *p_ref;
        let m = *m_ref;
        let mut u = (s.one_minus_beta1 * g + s.beta1 * m).signum0();
        *m_ref = s.one_minus_beta2 * g + s.beta2 * m;
        if WD {
            u = u + s.weight_decay * p;
        }
        *p_ref = p - s.lr * u;
    }
}
