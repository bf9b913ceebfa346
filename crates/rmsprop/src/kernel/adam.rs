//! The scalar reference kernel of Adam and AdamW (PyTorch's and optax's orders), AMSGrad included.

use super::fast::{Isa, MIN_VECTOR_LEN};
use super::{lerp_torch, next_buffer, Kernel};
use crate::options::FamilyOrder;
use crate::Float;

/// Weight decay as Adam's kernel applies it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AdamWeightDecay<T> {
    /// None.
    None,
    /// L2 in the gradient: `g = g + wd*p` (PyTorch `Adam(weight_decay=...)`).
    Coupled(T),
    /// PyTorch `AdamW`: `p = p * factor` with `factor = 1 - lr*wd`, before the update.
    DecoupledScale(T),
    /// optax `adamw`: the update gets `+ wd*p` before the learning rate scales it.
    DecoupledAdd(T),
}

/// Per-step scalars of one Adam update, in the element type.
///
/// # Examples
/// ```
/// use rmsprop::{Adam, AdamConfig};
/// let s = Adam::<f64>::new(AdamConfig::pytorch()).unwrap().scalars(1);
/// assert_eq!(s.step_size, 1e-3 / (1.0 - 0.9));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamScalars<T> {
    /// Learning rate.
    pub lr: T,
    /// `beta1`.
    pub beta1: T,
    /// `beta2`.
    pub beta2: T,
    /// `1 - beta1`.
    pub one_minus_beta1: T,
    /// `1 - beta2`.
    pub one_minus_beta2: T,
    /// Epsilon, outside the root.
    pub eps: T,
    /// Epsilon inside the root (optax's `eps_root`).
    pub eps_root: T,
    /// Torch: `lr / (1 - beta1^t)`.
    pub step_size: T,
    /// Torch: `sqrt(1 - beta2^t)`.
    pub bias_correction2_sqrt: T,
    /// Optax: `1 - beta1^t`.
    pub bias_correction1: T,
    /// Optax: `1 - beta2^t`.
    pub bias_correction2: T,
    /// Weight decay.
    pub weight_decay: AdamWeightDecay<T>,
    /// AMSGrad: use the running maximum of the second moment.
    pub amsgrad: bool,
    /// Negate the gradient.
    pub maximize: bool,
    /// Operation order.
    pub order: FamilyOrder,
}

/// One Adam step over one tensor. `max_exp_avg_sq` must have the tensor's length when
/// `s.amsgrad` (else it is not read). Per element:
///
/// ```text
/// g = -g if maximize;  g = g + wd*p (coupled)  |  p = p*(1 - lr*wd) (PyTorch AdamW)
/// Torch: m = lerp(m, g, 1-b1);  v = v*b2 + ((1-b2)*g)*g;  vm = max(vm, v) if amsgrad
///        p = p - (step_size*m) / (sqrt(v or vm)/sqrt(1-b2^t) + eps)
/// Optax: m = (1-b1)*g + b1*m;  v = (1-b2)*(g*g) + b2*v;  vm = max(vm, v) if amsgrad
///        u = (m/(1-b1^t)) / (sqrt((v or vm)/(1-b2^t) + eps_root) + eps)
///        u = u + wd*p (optax adamw);  p = p - lr*u
/// ```
///
/// # Examples
/// ```
/// use rmsprop::{kernel::adam::adam_reference, Adam, AdamConfig};
/// let s = Adam::<f32>::new(AdamConfig::pytorch()).unwrap().scalars(1);
/// let (mut p, mut m, mut v) = ([1.0f32], [0.0f32], [0.0f32]);
/// adam_reference(&s, &mut p, &[0.5], &mut m, &mut v, &mut []);
/// assert!((p[0] - (1.0 - 1e-3)).abs() < 1e-6); // the first step moves by about lr
/// ```
#[inline(always)]
pub fn adam_reference<T: Float>(
    s: &AdamScalars<T>,
    params: &mut [T],
    grads: &[T],
    exp_avg: &mut [T],
    exp_avg_sq: &mut [T],
    max_exp_avg_sq: &mut [T],
) {
    let n = params.len();
    assert_eq!(grads.len(), n, "gradient length");
    assert_eq!(exp_avg.len(), n, "exp_avg length");
    assert_eq!(exp_avg_sq.len(), n, "exp_avg_sq length");
    if s.amsgrad {
        assert_eq!(max_exp_avg_sq.len(), n, "max_exp_avg_sq length");
    }
    for i in 0..n {
        let mut p = params[i];
        let mut g = grads[i];
        if s.maximize {
            g = -g;
        }
        match s.weight_decay {
            AdamWeightDecay::Coupled(wd) => g = g + wd * p,
            AdamWeightDecay::DecoupledScale(factor) => p = p * factor,
            AdamWeightDecay::None | AdamWeightDecay::DecoupledAdd(_) => {}
        }
        let (m, v) = match s.order {
            FamilyOrder::Torch => (
                lerp_torch(exp_avg[i], g, s.one_minus_beta1),
                exp_avg_sq[i] * s.beta2 + (s.one_minus_beta2 * g) * g,
            ),
            FamilyOrder::Optax => (
                s.one_minus_beta1 * g + s.beta1 * exp_avg[i],
                s.one_minus_beta2 * (g * g) + s.beta2 * exp_avg_sq[i],
            ),
        };
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        let v = if s.amsgrad {
            let vm = max_exp_avg_sq[i].max(v);
            max_exp_avg_sq[i] = vm;
            vm
        } else {
            v
        };
        params[i] = match s.order {
            FamilyOrder::Torch => {
                let denom = v.sqrt() / s.bias_correction2_sqrt + s.eps;
                p - (s.step_size * m) / denom
            }
            FamilyOrder::Optax => {
                let m_hat = m / s.bias_correction1;
                let v_hat = v / s.bias_correction2;
                let mut u = m_hat / ((v_hat + s.eps_root).sqrt() + s.eps);
                if let AdamWeightDecay::DecoupledAdd(wd) = s.weight_decay {
                    u = u + wd * p;
                }
                p - s.lr * u
            }
        };
    }
}

/// The fast Adam kernel for the variant of `s` (operation order, weight decay, AMSGrad),
/// selected once when an optimizer is built. Same operations, same order, same bits as
/// [`adam_reference`] (`tests/kernels.rs`). Buffers: `[exp_avg, exp_avg_sq, max_exp_avg_sq
/// (AMSGrad)]`.
///
/// # Examples
/// ```
/// use rmsprop::kernel::{adam::{adam_reference, select_adam}, fast::Isa};
/// use rmsprop::{Adam, AdamConfig};
/// let s = Adam::<f64>::new(AdamConfig::pytorch_adamw()).unwrap().scalars(3);
/// let g: Vec<f64> = (0..50).map(|i| (i as f64).cos()).collect();
/// let (mut p1, mut m1, mut v1) = (vec![1.0; 50], vec![0.1; 50], vec![0.2; 50]);
/// let (mut p2, mut m2, mut v2) = (p1.clone(), m1.clone(), v1.clone());
/// adam_reference(&s, &mut p1, &g, &mut m1, &mut v1, &mut []);
/// select_adam(&s)(Isa::detect(), &s, &mut p2, &g, &mut [&mut m2, &mut v2]);
/// assert_eq!((p1, m1, v1), (p2, m2, v2));
/// ```
pub fn select_adam<T: Float>(s: &AdamScalars<T>) -> Kernel<T, AdamScalars<T>> {
    fn pick<T: Float, const TORCH: bool>(s: &AdamScalars<T>) -> Kernel<T, AdamScalars<T>> {
        match (s.weight_decay, s.amsgrad) {
            (AdamWeightDecay::None, false) => adam_variant::<T, TORCH, 0, false>,
            (AdamWeightDecay::None, true) => adam_variant::<T, TORCH, 0, true>,
            (AdamWeightDecay::Coupled(_), false) => adam_variant::<T, TORCH, 1, false>,
            (AdamWeightDecay::Coupled(_), true) => adam_variant::<T, TORCH, 1, true>,
            (AdamWeightDecay::DecoupledScale(_), false) => adam_variant::<T, TORCH, 2, false>,
            (AdamWeightDecay::DecoupledScale(_), true) => adam_variant::<T, TORCH, 2, true>,
            (AdamWeightDecay::DecoupledAdd(_), false) => adam_variant::<T, TORCH, 3, false>,
            (AdamWeightDecay::DecoupledAdd(_), true) => adam_variant::<T, TORCH, 3, true>,
        }
    }
    match s.order {
        FamilyOrder::Torch => pick::<T, true>(s),
        FamilyOrder::Optax => pick::<T, false>(s),
    }
}

fn adam_variant<T: Float, const TORCH: bool, const W: u8, const AMS: bool>(
    isa: Isa,
    s: &AdamScalars<T>,
    p: &mut [T],
    g: &[T],
    mut buffers: &mut [&mut [T]],
) {
    let n = p.len();
    assert_eq!(g.len(), n, "gradient length");
    let m = next_buffer(&mut buffers);
    let v = next_buffer(&mut buffers);
    let vm: &mut [T] = if AMS {
        next_buffer(&mut buffers)
    } else {
        &mut []
    };
    assert_eq!(m.len(), n, "exp_avg length");
    assert_eq!(v.len(), n, "exp_avg_sq length");
    if AMS {
        assert_eq!(vm.len(), n, "max_exp_avg_sq length");
    }
    let wd = match s.weight_decay {
        AdamWeightDecay::None => T::ZERO,
        AdamWeightDecay::Coupled(x)
        | AdamWeightDecay::DecoupledScale(x)
        | AdamWeightDecay::DecoupledAdd(x) => x,
    };
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        #[allow(clippy::too_many_arguments)]
        fn avx2<T: Float, const TORCH: bool, const W: u8, const AMS: bool>(
            s: &AdamScalars<T>,
            wd: T,
            p: &mut [T],
            g: &[T],
            m: &mut [T],
            v: &mut [T],
            vm: &mut [T],
        ) {
            adam_loop::<T, TORCH, W, AMS>(s, wd, p, g, m, v, vm)
        }
        if n >= MIN_VECTOR_LEN && isa == Isa::Avx2 && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { avx2::<T, TORCH, W, AMS>(s, wd, p, g, m, v, vm) };
        }
    }
    let _ = isa;
    if n < MIN_VECTOR_LEN {
        return adam_reference(s, p, g, m, v, vm);
    }
    adam_loop::<T, TORCH, W, AMS>(s, wd, p, g, m, v, vm)
}

#[inline(always)]
fn adam_loop<T: Float, const TORCH: bool, const W: u8, const AMS: bool>(
    s: &AdamScalars<T>,
    wd: T,
    params: &mut [T],
    grads: &[T],
    exp_avg: &mut [T],
    exp_avg_sq: &mut [T],
    max_exp_avg_sq: &mut [T],
) {
    let sign = if s.maximize { -T::ZERO } else { T::ZERO };
    let mut vm_unused = T::ZERO;
    let it = params
        .iter_mut()
        .zip(grads)
        .zip(exp_avg.iter_mut())
        .zip(exp_avg_sq.iter_mut());
    if AMS {
        for ((((p, &g), m), v), vm) in it.zip(max_exp_avg_sq.iter_mut()) {
            adam_element::<T, TORCH, W, true>(s, wd, sign, p, g, m, v, vm);
        }
    } else {
        for (((p, &g), m), v) in it {
            adam_element::<T, TORCH, W, false>(s, wd, sign, p, g, m, v, &mut vm_unused);
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn adam_element<T: Float, const TORCH: bool, const W: u8, const AMS: bool>(
    s: &AdamScalars<T>,
    wd: T,
    sign: T,
    p_ref: &mut T,
    g_in: T,
    m_ref: &mut T,
    v_ref: &mut T,
    vm_ref: &mut T,
) {
    let mut p = *p_ref;
    let mut g = g_in.negate_if_signed(sign);
    match W {
        1 => g = g + wd * p,
        2 => p = p * wd,
        _ => {}
    }
    let (m, v) = if TORCH {
        (
            lerp_torch(*m_ref, g, s.one_minus_beta1),
            *v_ref * s.beta2 + (s.one_minus_beta2 * g) * g,
        )
    } else {
        (
            s.one_minus_beta1 * g + s.beta1 * *m_ref,
            s.one_minus_beta2 * (g * g) + s.beta2 * *v_ref,
        )
    };
    *m_ref = m;
    *v_ref = v;
    let v = if AMS {
        let vm = vm_ref.max(v);
        *vm_ref = vm;
        vm
    } else {
        v
    };
    *p_ref = if TORCH {
        let denom = v.sqrt() / s.bias_correction2_sqrt + s.eps;
        p - (s.step_size * m) / denom
    } else {
        let m_hat = m / s.bias_correction1;
        let v_hat = v / s.bias_correction2;
        let mut u = m_hat / ((v_hat + s.eps_root).sqrt() + s.eps);
        if W == 3 {
            u = u + wd * p;
        }
        p - s.lr * u
    };
}
