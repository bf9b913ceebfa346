//! The scalar reference kernel of Adagrad (PyTorch's and optax's orders).

use super::fast::{Isa, MIN_VECTOR_LEN};
use super::{next_buffer, Kernel};
use crate::options::FamilyOrder;
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

/// The fast Adagrad kernel for the variant of `s` (operation order, weight decay), selected
/// once when an optimizer is built. Same operations, same order, same bits as
/// [`adagrad_reference`] (`tests/kernels.rs`).
///
/// # Examples
/// ```
/// use rmsprop::kernel::{adagrad::{adagrad_reference, select_adagrad}, fast::Isa};
/// use rmsprop::{Adagrad, AdagradConfig};
/// let s = Adagrad::<f64>::new(AdagradConfig::optax()).unwrap().scalars(1);
/// let g: Vec<f64> = (0..40).map(|i| (i as f64).cos()).collect();
/// let (mut p1, mut a1) = (vec![1.0; 40], vec![0.1; 40]);
/// let (mut p2, mut a2) = (p1.clone(), a1.clone());
/// adagrad_reference(&s, &mut p1, &g, &mut a1);
/// select_adagrad(&s)(Isa::detect(), &s, &mut p2, &g, &mut [&mut a2]);
/// assert_eq!((p1, a1), (p2, a2));
/// ```
pub fn select_adagrad<T: Float>(s: &AdagradScalars<T>) -> Kernel<T, AdagradScalars<T>> {
    match (s.order, s.weight_decay != T::ZERO) {
        (FamilyOrder::Torch, false) => adagrad_variant::<T, true, false>,
        (FamilyOrder::Torch, true) => adagrad_variant::<T, true, true>,
        (FamilyOrder::Optax, false) => adagrad_variant::<T, false, false>,
        (FamilyOrder::Optax, true) => adagrad_variant::<T, false, true>,
    }
}

fn adagrad_variant<T: Float, const TORCH: bool, const WD: bool>(
    isa: Isa,
    s: &AdagradScalars<T>,
    p: &mut [T],
    g: &[T],
    mut buffers: &mut [&mut [T]],
) {
    let n = p.len();
    assert_eq!(g.len(), n, "gradient length");
    let sum = next_buffer(&mut buffers);
    assert_eq!(sum.len(), n, "sum length");
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2<T: Float, const TORCH: bool, const WD: bool>(
            s: &AdagradScalars<T>,
            p: &mut [T],
            g: &[T],
            sum: &mut [T],
        ) {
            adagrad_loop::<T, TORCH, WD>(s, p, g, sum)
        }
        if n >= MIN_VECTOR_LEN && isa == Isa::Avx2 && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { avx2::<T, TORCH, WD>(s, p, g, sum) };
        }
    }
    let _ = isa;
    if n < MIN_VECTOR_LEN {
        return adagrad_reference(s, p, g, sum);
    }
    adagrad_loop::<T, TORCH, WD>(s, p, g, sum)
}

#[inline(always)]
fn adagrad_loop<T: Float, const TORCH: bool, const WD: bool>(
    s: &AdagradScalars<T>,
    params: &mut [T],
    grads: &[T],
    sum: &mut [T],
) {
    let sign = if s.maximize { -T::ZERO } else { T::ZERO };
    for ((p_ref, &g), a) in params.iter_mut().zip(grads).zip(sum.iter_mut()) {
        let p = *p_ref;
        let mut g = g.negate_if_signed(sign);
        if WD {
            g = g + s.weight_decay * p;
        }
        if TORCH {
            let acc = *a + g * g;
            *a = acc;
            *p_ref = p - (s.lr * g) / (acc.sqrt() + s.eps);
        } else {
            let acc = g * g + *a;
            *a = acc;
            let r = if acc > T::ZERO {
                T::ONE / (acc + s.eps).sqrt()
            } else {
                T::ZERO
            };
            *p_ref = p - s.lr * (r * g);
        }
    }
}
