//! The scalar reference kernel of Adadelta (Zeiler 2012), in PyTorch's and optax's orders, and
//! its fast kernel.

use super::fast::{Isa, MIN_VECTOR_LEN};
use super::{next_buffer, Kernel};
use crate::options::FamilyOrder;
use crate::Float;

/// Per-step scalars of one Adadelta update, in the element type.
///
/// # Examples
/// ```
/// use rmsprop::{Adadelta, AdadeltaConfig};
/// let s = Adadelta::<f64>::new(AdadeltaConfig::pytorch()).unwrap().scalars(1);
/// assert_eq!((s.lr, s.rho, s.eps), (1.0, 0.9, 1e-6));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdadeltaScalars<T> {
    /// Learning rate (PyTorch's default 1: Adadelta's own step needs none).
    pub lr: T,
    /// Decay of both running averages.
    pub rho: T,
    /// `1 - rho`, computed in `f64` and rounded once.
    pub one_minus_rho: T,
    /// Epsilon, inside both roots.
    pub eps: T,
    /// Coupled weight decay (0: none).
    pub weight_decay: T,
    /// Negate the gradient.
    pub maximize: bool,
    /// Operation order.
    pub order: FamilyOrder,
}

/// One Adadelta step over one tensor: the scalar reference kernel. Per element, with `v` the
/// square average of gradients and `a` that of updates (`acc_delta`):
///
/// ```text
/// g = -g if maximize;  g = g + wd*p if wd != 0
/// Torch: v = v*rho + ((1-rho)*g)*g;   d = (sqrt(a + eps) / sqrt(v + eps)) * g
///        a = a*rho + ((1-rho)*d)*d;   p = p - lr*d
/// Optax: v = (1-rho)*(g*g) + rho*v;   d = (sqrt(a + eps) / sqrt(v + eps)) * g
///        a = (1-rho)*(d*d) + rho*a;   p = p - lr*d
/// ```
///
/// `a` in `d` is the previous step's; `v` is the new one. PyTorch fuses its `addcmul_` and
/// `add_(alpha=)` into multiply-adds; this kernel rounds every operation (see `reference/SCHEMA.md`
/// for the replay tolerance that covers the difference).
///
/// # Examples
/// ```
/// use rmsprop::kernel::adadelta::{adadelta_reference, AdadeltaScalars};
/// use rmsprop::FamilyOrder;
/// let s = AdadeltaScalars { lr: 1.0f64, rho: 0.9, one_minus_rho: 1.0 - 0.9, eps: 1e-6,
///                           weight_decay: 0.0, maximize: false, order: FamilyOrder::Torch };
/// let (mut p, mut v, mut a) = ([1.0], [0.0], [0.0]);
/// adadelta_reference(&s, &mut p, &[2.0], &mut v, &mut a);
/// assert!((1.0 - p[0] - (1e-6f64).sqrt() / (0.4f64 + 1e-6).sqrt() * 2.0).abs() < 1e-12);
/// ```
#[inline(always)]
pub fn adadelta_reference<T: Float>(
    s: &AdadeltaScalars<T>,
    params: &mut [T],
    grads: &[T],
    square_avg: &mut [T],
    acc_delta: &mut [T],
) {
    let n = params.len();
    assert_eq!(grads.len(), n, "gradient length");
    assert_eq!(square_avg.len(), n, "square_avg length");
    assert_eq!(acc_delta.len(), n, "acc_delta length");
    for i in 0..n {
        let p = params[i];
        let mut g = grads[i];
        if s.maximize {
            g = -g;
        }
        if s.weight_decay != T::ZERO {
            g = g + s.weight_decay * p;
        }
        let torch = s.order == FamilyOrder::Torch;
        let v = if torch {
            square_avg[i] * s.rho + (s.one_minus_rho * g) * g
        } else {
            s.one_minus_rho * (g * g) + s.rho * square_avg[i]
        };
        square_avg[i] = v;
        let d = ((acc_delta[i] + s.eps).sqrt() / (v + s.eps).sqrt()) * g;
        acc_delta[i] = if torch {
            acc_delta[i] * s.rho + (s.one_minus_rho * d) * d
        } else {
            s.one_minus_rho * (d * d) + s.rho * acc_delta[i]
        };
        params[i] = p - s.lr * d;
    }
}

/// The fast Adadelta kernel for the variant of `s` (operation order, weight decay), selected
/// once when an optimizer is built; maximize flips the sign bit without a branch. Same
/// operations, same order, same bits as [`adadelta_reference`]. Buffers: `[square_avg,
/// acc_delta]`.
///
/// # Examples
/// ```
/// use rmsprop::kernel::{adadelta::{adadelta_reference, select_adadelta}, fast::Isa};
/// use rmsprop::{Adadelta, AdadeltaConfig};
/// let s = Adadelta::<f32>::new(AdadeltaConfig::optax()).unwrap().scalars(1);
/// let g: Vec<f32> = (0..40).map(|i| (i as f32).sin()).collect();
/// let (mut p1, mut v1, mut a1) = (vec![1.0f32; 40], vec![0.5f32; 40], vec![0.25f32; 40]);
/// let (mut p2, mut v2, mut a2) = (p1.clone(), v1.clone(), a1.clone());
/// adadelta_reference(&s, &mut p1, &g, &mut v1, &mut a1);
/// select_adadelta(&s)(Isa::detect(), &s, &mut p2, &g, &mut [&mut v2, &mut a2]);
/// assert_eq!((p1, v1, a1), (p2, v2, a2));
/// ```
pub fn select_adadelta<T: Float>(s: &AdadeltaScalars<T>) -> Kernel<T, AdadeltaScalars<T>> {
    match (s.order, s.weight_decay != T::ZERO) {
        (FamilyOrder::Torch, false) => adadelta_variant::<T, true, false>,
        (FamilyOrder::Torch, true) => adadelta_variant::<T, true, true>,
        (FamilyOrder::Optax, false) => adadelta_variant::<T, false, false>,
        (FamilyOrder::Optax, true) => adadelta_variant::<T, false, true>,
    }
}

fn adadelta_variant<T: Float, const TORCH: bool, const WD: bool>(
    isa: Isa,
    s: &AdadeltaScalars<T>,
    p: &mut [T],
    g: &[T],
    mut buffers: &mut [&mut [T]],
) {
    let n = p.len();
    assert_eq!(g.len(), n, "gradient length");
    let v = next_buffer(&mut buffers);
    let a = next_buffer(&mut buffers);
    assert_eq!(v.len(), n, "square_avg length");
    assert_eq!(a.len(), n, "acc_delta length");
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2<T: Float, const TORCH: bool, const WD: bool>(
            s: &AdadeltaScalars<T>,
            p: &mut [T],
            g: &[T],
            v: &mut [T],
            a: &mut [T],
        ) {
            adadelta_loop::<T, TORCH, WD>(s, p, g, v, a)
        }
        if n >= MIN_VECTOR_LEN && isa == Isa::Avx2 && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { avx2::<T, TORCH, WD>(s, p, g, v, a) };
        }
    }
    let _ = isa;
    if n < MIN_VECTOR_LEN {
        return adadelta_reference(s, p, g, v, a);
    }
    adadelta_loop::<T, TORCH, WD>(s, p, g, v, a)
}

#[inline(always)]
fn adadelta_loop<T: Float, const TORCH: bool, const WD: bool>(
    s: &AdadeltaScalars<T>,
    params: &mut [T],
    grads: &[T],
    square_avg: &mut [T],
    acc_delta: &mut [T],
) {
    let sign = if s.maximize { -T::ZERO } else { T::ZERO };
    let it = params
        .iter_mut()
        .zip(grads)
        .zip(square_avg.iter_mut())
        .zip(acc_delta.iter_mut());
    for (((p_ref, &g), v_ref), a_ref) in it {
        let p = *p_ref;
        let mut g = g.negate_if_signed(sign);
        if WD {
            g = g + s.weight_decay * p;
        }
        let v = if TORCH {
            *v_ref * s.rho + (s.one_minus_rho * g) * g
        } else {
            s.one_minus_rho * (g * g) + s.rho * *v_ref
        };
        *v_ref = v;
        let a_old = *a_ref;
        let d = ((a_old + s.eps).sqrt() / (v + s.eps).sqrt()) * g;
        *a_ref = if TORCH {
            a_old * s.rho + (s.one_minus_rho * d) * d
        } else {
            s.one_minus_rho * (d * d) + s.rho * a_old
        };
        *p_ref = p - s.lr * d;
    }
}
