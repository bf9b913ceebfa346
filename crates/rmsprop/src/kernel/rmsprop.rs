//! The scalar reference kernel of RMSProp: the specification every faster kernel must match bit for bit.

use super::fast::{Isa, MIN_VECTOR_LEN};
use super::{lerp_torch, next_buffer, Kernel};
use crate::options::{EpsPlacement, OperationOrder};
use crate::Float;

/// How the momentum buffer holds the learning rate, or no momentum at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MomentumMode {
    /// No momentum buffer: `p -= lr * g / d`.
    None,
    /// `b = mu*b + g/d; p -= lr*b` (PyTorch, burn).
    LrOutside,
    /// `b = mu*b + lr*g/d; p -= b` (Keras, TF1, optax, timm, Graves).
    LrInside,
}

/// Weight decay as the kernel applies it, with its scalars in the element type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WeightDecayOp<T> {
    /// No weight decay.
    None,
    /// Coupled L2: `g = g + wd*p`, before the square average (PyTorch, timm default).
    Coupled(T),
    /// Decoupled, as a scale: `p = p * factor` with `factor = 1 - lr*wd` (timm, PyTorch's AdamW).
    DecoupledScale(T),
    /// Decoupled, as a subtraction: `p = p - (p*wd)*lr` (Keras 3).
    DecoupledSubtract(T),
}

/// Per-step scalars of one RMSProp update, already rounded to the element type.
///
/// Built by [`RmsProp::scalars`](crate::RmsProp::scalars) from a validated
/// [`RmsPropConfig`](crate::RmsPropConfig); kernels only read it.
///
/// # Examples
/// ```
/// use rmsprop::{kernel::rmsprop::rmsprop_reference, RmsProp, RmsPropConfig};
/// let opt = RmsProp::<f64>::new(RmsPropConfig::lesson()).unwrap();
/// let s = opt.scalars(1);
/// let (mut p, g, mut v) = ([5.0], [10.0], [0.0]);
/// rmsprop_reference(&s, &mut p, &g, &mut v, &mut [], &mut []);
/// assert_eq!(v[0], 0.9 * 0.0 + (1.0 - 0.9) * (10.0 * 10.0));
/// assert!((p[0] - 4.68377233398313).abs() < 1e-14);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropScalars<T> {
    /// Learning rate.
    pub lr: T,
    /// Decay of the square average.
    pub rho: T,
    /// `1 - rho`, rounded the way the framework rounds it.
    pub one_minus_rho: T,
    /// Epsilon.
    pub eps: T,
    /// Where epsilon goes.
    pub eps_placement: EpsPlacement,
    /// Operation order of the accumulators and the update.
    pub order: OperationOrder,
    /// Centered (Graves 2013): divide by the running variance instead of the raw second moment.
    pub centered: bool,
    /// Clamp `v - m^2` at zero (centered only).
    pub clamp_variance: bool,
    /// Momentum coefficient (ignored when `momentum_mode` is `None`).
    pub momentum: T,
    /// Momentum buffer convention.
    pub momentum_mode: MomentumMode,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Weight decay.
    pub weight_decay: WeightDecayOp<T>,
    /// Negate the gradient (gradient ascent).
    pub maximize: bool,
    /// Bias-correction factor `1/(1 - rho^t)` for this tensor's step `t`, or exactly 1 when off.
    pub bias_correction: T,
}

/// One RMSProp step over one tensor: the scalar reference kernel.
///
/// `grad_avg` must have the tensor's length when `s.centered` (else it is not
/// read and may be empty); `momentum_buffer` likewise when `s.momentum_mode` is
/// not [`MomentumMode::None`]. For each element, in this order:
///
/// ```text
/// g = -g                                   if maximize
/// g = g + wd*p  |  p = p*(1-lr*wd)  |  p = p - (p*wd)*lr     weight decay (coupled | decoupled)
/// v = rho*v + (1-rho)*g^2                  square average, in the operation order of `order`
/// m = rho*m + (1-rho)*g                    centered only
/// var = v*r - (m*r)^2   (r = bias correction, 1 when off; without centering var = v*r)
/// var = max(var, 0)                        if clamp_variance
/// d = sqrt(var) + eps   |   d = sqrt(var + eps)                  eps outside | inside
/// u = (lr*g)/d    (Optax order: lr*((1/d)*g))
/// p = p - u                                 no momentum
/// b = mu*b + g/d;  p = p - lr*b             momentum, lr outside (nesterov: p - lr*(g/d + mu*b))
/// b = mu*b + u;    p = p - b                momentum, lr inside  (nesterov: p - (u + mu*b))
/// ```
///
/// The square-average and mean updates by operation order:
///
/// | order | `v` | `m` | `u` |
/// |---|---|---|---|
/// | `Torch` | `v*rho + ((1-rho)*g)*g` | [`lerp_torch`]`(m, g, 1-rho)` | `(lr*g)/d` |
/// | `Keras` | `rho*v + (1-rho)*(g*g)` | `rho*m + (1-rho)*g` | `(lr*g)/d` |
/// | `Optax` | `rho*v + (1-rho)*(g*g)` | `rho*m + (1-rho)*g` | `lr*((1/d)*g)` |
/// | `Tf1`   | `v + (g*g - v)*(1-rho)` | `m + (g-m)*(1-rho)` | `(lr*g)/d` |
///
/// # Examples
/// ```
/// use rmsprop::{kernel::rmsprop::rmsprop_reference, RmsProp, RmsPropConfig};
/// let opt = RmsProp::<f32>::new(RmsPropConfig::pytorch().with_centered(true).with_momentum(0.9)).unwrap();
/// let s = opt.scalars(1);
/// let (mut p, g) = ([1.0f32, 2.0], [0.5f32, -0.5]);
/// let (mut v, mut m, mut b) = ([0.0f32; 2], [0.0f32; 2], [0.0f32; 2]);
/// rmsprop_reference(&s, &mut p, &g, &mut v, &mut m, &mut b);
/// assert!(p[0] < 1.0 && p[1] > 2.0);
/// ```
#[inline(always)]
pub fn rmsprop_reference<T: Float>(
    s: &RmsPropScalars<T>,
    params: &mut [T],
    grads: &[T],
    square_avg: &mut [T],
    grad_avg: &mut [T],
    momentum_buffer: &mut [T],
) {
    let n = params.len();
    assert_eq!(grads.len(), n, "gradient length");
    assert_eq!(square_avg.len(), n, "square_avg length");
    if s.centered {
        assert_eq!(grad_avg.len(), n, "grad_avg length");
    }
    if s.momentum_mode != MomentumMode::None {
        assert_eq!(momentum_buffer.len(), n, "momentum_buffer length");
    }
    for i in 0..n {
        let mut g = grads[i];
        if s.maximize {
            g = -g;
        }
        let mut p = params[i];
        match s.weight_decay {
            WeightDecayOp::None => {}
            WeightDecayOp::Coupled(wd) => g = g + wd * p,
            WeightDecayOp::DecoupledScale(factor) => p = p * factor,
            WeightDecayOp::DecoupledSubtract(wd) => p = p - (p * wd) * s.lr,
        }

        let v_old = square_avg[i];
        let v = match s.order {
            OperationOrder::Torch => v_old * s.rho + (s.one_minus_rho * g) * g,
            OperationOrder::Keras | OperationOrder::Optax => {
                s.rho * v_old + s.one_minus_rho * (g * g)
            }
            OperationOrder::Tf1 => v_old + (g * g - v_old) * s.one_minus_rho,
        };
        square_avg[i] = v;

        let mut var = v * s.bias_correction;
        if s.centered {
            let m_old = grad_avg[i];
            let m = match s.order {
                OperationOrder::Torch => lerp_torch(m_old, g, s.one_minus_rho),
                OperationOrder::Tf1 => m_old + (g - m_old) * s.one_minus_rho,
                OperationOrder::Keras | OperationOrder::Optax => {
                    s.rho * m_old + s.one_minus_rho * g
                }
            };
            grad_avg[i] = m;
            let m_hat = m * s.bias_correction;
            var = var - m_hat * m_hat;
            if s.clamp_variance {
                var = var.max(T::ZERO);
            }
        }

        let d = match s.eps_placement {
            EpsPlacement::Outside => var.sqrt() + s.eps,
            EpsPlacement::Inside => (var + s.eps).sqrt(),
        };
        // g/d and lr*g/d, each in the framework's order.
        let reciprocal = s.order == OperationOrder::Optax;
        let g_over_d = |g: T| if reciprocal { (T::ONE / d) * g } else { g / d };
        let lr_g_over_d = |g: T| {
            if reciprocal {
                s.lr * ((T::ONE / d) * g)
            } else {
                (s.lr * g) / d
            }
        };

        let delta = match s.momentum_mode {
            MomentumMode::None => lr_g_over_d(g),
            MomentumMode::LrOutside => {
                let q = g_over_d(g);
                let b = s.momentum * momentum_buffer[i] + q;
                momentum_buffer[i] = b;
                if s.nesterov {
                    s.lr * (q + s.momentum * b)
                } else {
                    s.lr * b
                }
            }
            MomentumMode::LrInside => {
                let u = lr_g_over_d(g);
                let b = s.momentum * momentum_buffer[i] + u;
                momentum_buffer[i] = b;
                if s.nesterov {
                    u + s.momentum * b
                } else {
                    b
                }
            }
        };
        params[i] = p - delta;
    }
}

/// RMSProp's fast kernel for `s`, selected and run in one call, with the buffers a variant
/// does not use passed empty (a convenience for benchmarks and one-off calls: an optimizer
/// selects its kernel once, with [`select_rmsprop`]).
///
/// # Examples
/// ```
/// use rmsprop::kernel::{fast::Isa, rmsprop::rmsprop_fast};
/// use rmsprop::{RmsProp, RmsPropConfig};
/// let s = RmsProp::<f64>::new(RmsPropConfig::lesson()).unwrap().scalars(1);
/// let (mut p, mut v) = ([5.0], [0.0]);
/// rmsprop_fast(Isa::detect(), &s, &mut p, &[10.0], &mut v, &mut [], &mut []);
/// assert!((p[0] - 4.68377233398313).abs() < 1e-14);
/// ```
pub fn rmsprop_fast<T: Float>(
    isa: Isa,
    s: &RmsPropScalars<T>,
    params: &mut [T],
    grads: &[T],
    square_avg: &mut [T],
    grad_avg: &mut [T],
    momentum_buffer: &mut [T],
) {
    // The buffers the variant keeps, chosen by the configuration (as the reference reads them).
    let mut used: [&mut [T]; 3] = [square_avg, &mut [], &mut []];
    let mut n = 1;
    if s.centered {
        used[n] = grad_avg;
        n += 1;
    }
    if s.momentum_mode != MomentumMode::None {
        used[n] = momentum_buffer;
        n += 1;
    }
    select_rmsprop(s)(isa, s, params, grads, &mut used[..n])
}

/// The fast kernel for the variant of `s`, selected once (an optimizer calls this when it is
/// built, not per step): a loop monomorphized for the operation order, eps placement, weight
/// decay, centering (with or without the clamp) and momentum (mode and Nesterov), so the loop
/// has no branch on any of them. Maximize flips the gradient's sign bit without a branch
/// ([`Float::negate_if_signed`]). Each element is computed by the reference's operations in the
/// reference's order, so the bits are the same; `tests/kernels.rs` checks every variant.
///
/// Buffers: `[square_avg, grad_avg (centered), momentum_buffer (momentum)]`, only those the
/// variant uses.
///
/// # Examples
/// ```
/// use rmsprop::kernel::{fast::Isa, rmsprop::{rmsprop_reference, select_rmsprop}};
/// use rmsprop::{RmsProp, RmsPropConfig};
/// let s = RmsProp::<f32>::new(RmsPropConfig::keras().with_momentum(0.9)).unwrap().scalars(1);
/// let kernel = select_rmsprop(&s);
/// let g: Vec<f32> = (0..100).map(|i| (i as f32).sin()).collect();
/// let (mut p1, mut v1, mut b1) = (vec![1.0f32; 100], vec![0.0f32; 100], vec![0.0f32; 100]);
/// let (mut p2, mut v2, mut b2) = (p1.clone(), v1.clone(), b1.clone());
/// rmsprop_reference(&s, &mut p1, &g, &mut v1, &mut [], &mut b1);
/// kernel(Isa::detect(), &s, &mut p2, &g, &mut [&mut v2, &mut b2]);
/// assert_eq!((p1, v1, b1), (p2, v2, b2));
/// ```
pub fn select_rmsprop<T: Float>(s: &RmsPropScalars<T>) -> Kernel<T, RmsPropScalars<T>> {
    let key = Key {
        order: match s.order {
            OperationOrder::Torch => 0,
            OperationOrder::Keras => 1,
            OperationOrder::Optax => 2,
            OperationOrder::Tf1 => 3,
        },
        inside: s.eps_placement == EpsPlacement::Inside,
        wd: match s.weight_decay {
            WeightDecayOp::None => 0,
            WeightDecayOp::Coupled(_) => 1,
            WeightDecayOp::DecoupledScale(_) => 2,
            WeightDecayOp::DecoupledSubtract(_) => 3,
        },
        centered: match (s.centered, s.clamp_variance) {
            (false, _) => 0,
            (true, false) => 1,
            (true, true) => 2,
        },
        momentum: match (s.momentum_mode, s.nesterov) {
            (MomentumMode::None, _) => 0,
            (MomentumMode::LrOutside, false) => 1,
            (MomentumMode::LrInside, false) => 2,
            (MomentumMode::LrOutside, true) => 3,
            (MomentumMode::LrInside, true) => 4,
        },
    };
    pick_order(key)
}

/// The variant of a configuration, as the const parameters of [`variant`].
#[derive(Clone, Copy)]
struct Key {
    order: u8,
    inside: bool,
    wd: u8,
    centered: u8,
    momentum: u8,
}

type RmsKernel<T> = Kernel<T, RmsPropScalars<T>>;

fn pick_order<T: Float>(k: Key) -> RmsKernel<T> {
    match k.order {
        0 => pick_eps::<T, 0>(k),
        1 => pick_eps::<T, 1>(k),
        2 => pick_eps::<T, 2>(k),
        _ => pick_eps::<T, 3>(k),
    }
}

fn pick_eps<T: Float, const O: u8>(k: Key) -> RmsKernel<T> {
    if k.inside {
        pick_wd::<T, O, true>(k)
    } else {
        pick_wd::<T, O, false>(k)
    }
}

fn pick_wd<T: Float, const O: u8, const E: bool>(k: Key) -> RmsKernel<T> {
    match k.wd {
        0 => pick_centered::<T, O, E, 0>(k),
        1 => pick_centered::<T, O, E, 1>(k),
        2 => pick_centered::<T, O, E, 2>(k),
        _ => pick_centered::<T, O, E, 3>(k),
    }
}

fn pick_centered<T: Float, const O: u8, const E: bool, const W: u8>(k: Key) -> RmsKernel<T> {
    match k.centered {
        0 => pick_momentum::<T, O, E, W, 0>(k),
        1 => pick_momentum::<T, O, E, W, 1>(k),
        _ => pick_momentum::<T, O, E, W, 2>(k),
    }
}

fn pick_momentum<T: Float, const O: u8, const E: bool, const W: u8, const C: u8>(
    k: Key,
) -> RmsKernel<T> {
    match k.momentum {
        0 => variant::<T, O, E, W, C, 0>,
        1 => variant::<T, O, E, W, C, 1>,
        2 => variant::<T, O, E, W, C, 2>,
        3 => variant::<T, O, E, W, C, 3>,
        _ => variant::<T, O, E, W, C, 4>,
    }
}

/// One variant of the fast kernel: order `O` (0 Torch, 1 Keras, 2 Optax, 3 Tf1), eps inside the
/// root `E`, weight decay `W` (0 none, 1 coupled, 2 decoupled scale, 3 decoupled subtract),
/// centering `C` (0 off, 1 on, 2 on with the clamp) and momentum `M` (0 none, 1 lr outside,
/// 2 lr inside, 3 and 4 the same with Nesterov), with AVX2 when `isa` has it.
fn variant<T: Float, const O: u8, const E: bool, const W: u8, const C: u8, const M: u8>(
    isa: Isa,
    s: &RmsPropScalars<T>,
    p: &mut [T],
    g: &[T],
    mut buffers: &mut [&mut [T]],
) {
    let n = p.len();
    assert_eq!(g.len(), n, "gradient length");
    let v = next_buffer(&mut buffers);
    assert_eq!(v.len(), n, "square_avg length");
    let m: &mut [T] = if C > 0 {
        next_buffer(&mut buffers)
    } else {
        &mut []
    };
    let b: &mut [T] = if M > 0 {
        next_buffer(&mut buffers)
    } else {
        &mut []
    };
    if C > 0 {
        assert_eq!(m.len(), n, "grad_avg length");
    }
    if M > 0 {
        assert_eq!(b.len(), n, "momentum_buffer length");
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2<T: Float, const O: u8, const E: bool, const W: u8, const C: u8, const M: u8>(
            s: &RmsPropScalars<T>,
            p: &mut [T],
            g: &[T],
            v: &mut [T],
            m: &mut [T],
            b: &mut [T],
        ) {
            loops::<T, O, E, W, C, M>(s, p, g, v, m, b)
        }
        if n >= MIN_VECTOR_LEN && isa == Isa::Avx2 && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above; the check is a cached load).
            return unsafe { avx2::<T, O, E, W, C, M>(s, p, g, v, m, b) };
        }
    }
    let _ = isa;
    if n < MIN_VECTOR_LEN {
        // A few elements: the reference loop itself (the vector loop's set-up costs more than
        // the work, measured: 26 ns against 32-41 ns for a 2-element step).
        return rmsprop_reference(s, p, g, v, m, b);
    }
    loops::<T, O, E, W, C, M>(s, p, g, v, m, b)
}

/// The loop of one variant: zips exactly the buffers it uses.
#[inline(always)]
fn loops<T: Float, const O: u8, const E: bool, const W: u8, const C: u8, const M: u8>(
    s: &RmsPropScalars<T>,
    p: &mut [T],
    g: &[T],
    v: &mut [T],
    m: &mut [T],
    b: &mut [T],
) {
    let wd = match s.weight_decay {
        WeightDecayOp::None => T::ZERO,
        WeightDecayOp::Coupled(x)
        | WeightDecayOp::DecoupledScale(x)
        | WeightDecayOp::DecoupledSubtract(x) => x,
    };
    let sign = if s.maximize { -T::ZERO } else { T::ZERO };
    let pgv = p.iter_mut().zip(g).zip(v.iter_mut());
    match (C > 0, M > 0) {
        (false, false) => {
            let (mut m, mut b) = (T::ZERO, T::ZERO);
            for ((p, &g), v) in pgv {
                element::<T, O, E, W, C, M>(s, wd, sign, p, g, v, &mut m, &mut b);
            }
        }
        (true, false) => {
            let mut b = T::ZERO;
            for (((p, &g), v), m) in pgv.zip(m.iter_mut()) {
                element::<T, O, E, W, C, M>(s, wd, sign, p, g, v, m, &mut b);
            }
        }
        (false, true) => {
            let mut m = T::ZERO;
            for (((p, &g), v), b) in pgv.zip(b.iter_mut()) {
                element::<T, O, E, W, C, M>(s, wd, sign, p, g, v, &mut m, b);
            }
        }
        (true, true) => {
            for ((((p, &g), v), m), b) in pgv.zip(m.iter_mut()).zip(b.iter_mut()) {
                element::<T, O, E, W, C, M>(s, wd, sign, p, g, v, m, b);
            }
        }
    }
}

/// One element of a variant, in the reference's operations and order.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn element<T: Float, const O: u8, const E: bool, const W: u8, const C: u8, const M: u8>(
    s: &RmsPropScalars<T>,
    wd: T,
    sign: T,
    p_ref: &mut T,
    g_in: T,
    v_ref: &mut T,
    m_ref: &mut T,
    b_ref: &mut T,
) {
    let mut g = g_in.negate_if_signed(sign);
    let mut p = *p_ref;
    match W {
        0 => {}
        1 => g = g + wd * p,
        2 => p = p * wd,
        _ => p = p - (p * wd) * s.lr,
    }
    let v_old = *v_ref;
    let v = match O {
        0 => v_old * s.rho + (s.one_minus_rho * g) * g,
        1 | 2 => s.rho * v_old + s.one_minus_rho * (g * g),
        _ => v_old + (g * g - v_old) * s.one_minus_rho,
    };
    *v_ref = v;
    let mut var = v * s.bias_correction;
    if C > 0 {
        let m_old = *m_ref;
        let m = match O {
            0 => lerp_torch(m_old, g, s.one_minus_rho),
            3 => m_old + (g - m_old) * s.one_minus_rho,
            _ => s.rho * m_old + s.one_minus_rho * g,
        };
        *m_ref = m;
        let m_hat = m * s.bias_correction;
        var = var - m_hat * m_hat;
        if C == 2 {
            var = var.max(T::ZERO);
        }
    }
    let d = if E {
        (var + s.eps).sqrt()
    } else {
        var.sqrt() + s.eps
    };
    let reciprocal = O == 2;
    let delta = match M {
        0 => {
            if reciprocal {
                s.lr * ((T::ONE / d) * g)
            } else {
                (s.lr * g) / d
            }
        }
        1 | 3 => {
            let q = if reciprocal { (T::ONE / d) * g } else { g / d };
            let b = s.momentum * *b_ref + q;
            *b_ref = b;
            if M == 3 {
                s.lr * (q + s.momentum * b)
            } else {
                s.lr * b
            }
        }
        _ => {
            let u = if reciprocal {
                s.lr * ((T::ONE / d) * g)
            } else {
                (s.lr * g) / d
            };
            let b = s.momentum * *b_ref + u;
            *b_ref = b;
            if M == 4 {
                u + s.momentum * b
            } else {
                b
            }
        }
    };
    *p_ref = p - delta;
}
