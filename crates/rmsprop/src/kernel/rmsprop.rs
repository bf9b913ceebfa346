//! The scalar reference kernel of RMSProp: the specification every faster kernel must match bit for bit.

use super::lerp_torch;
use crate::optim::rmsprop::{EpsPlacement, OperationOrder};
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

/// The same update as [`rmsprop_reference`], arranged for the compiler to vectorize: the buffers
/// a variant touches are chosen once (centered, momentum mode), so the loop has no bounds
/// checks or buffer branches, and each element is computed by the same operations in the same
/// order. `tests/kernels.rs` checks it against the reference bit for bit for every variant.
///
/// # Examples
/// ```
/// use rmsprop::kernel::rmsprop::{rmsprop_fast, rmsprop_reference};
/// use rmsprop::{RmsProp, RmsPropConfig};
/// let s = RmsProp::<f32>::new(RmsPropConfig::keras().with_momentum(0.9)).unwrap().scalars(1);
/// let g: Vec<f32> = (0..100).map(|i| (i as f32).sin()).collect();
/// let (mut p1, mut v1, mut b1) = (vec![1.0f32; 100], vec![0.0f32; 100], vec![0.0f32; 100]);
/// let (mut p2, mut v2, mut b2) = (p1.clone(), v1.clone(), b1.clone());
/// rmsprop_reference(&s, &mut p1, &g, &mut v1, &mut [], &mut b1);
/// rmsprop_fast(&s, &mut p2, &g, &mut v2, &mut [], &mut b2);
/// assert_eq!(p1, p2);
/// ```
#[inline(always)]
pub fn rmsprop_fast<T: Float>(
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
    let centered = s.centered;
    let momentum = s.momentum_mode != MomentumMode::None;
    if centered {
        assert_eq!(grad_avg.len(), n, "grad_avg length");
    }
    if momentum {
        assert_eq!(momentum_buffer.len(), n, "momentum_buffer length");
    }
    let (p, g, v, m, b) = (params, grads, square_avg, grad_avg, momentum_buffer);
    let _ = (centered, momentum);
    let order = match s.order {
        OperationOrder::Torch => 0,
        OperationOrder::Keras => 1,
        OperationOrder::Optax => 2,
        OperationOrder::Tf1 => 3,
    };
    let wd = match s.weight_decay {
        WeightDecayOp::None => 0,
        WeightDecayOp::Coupled(_) => 1,
        WeightDecayOp::DecoupledScale(_) => 2,
        WeightDecayOp::DecoupledSubtract(_) => 3,
    };
    let inside = s.eps_placement == EpsPlacement::Inside;
    // One monomorphized loop per (order, eps placement, weight decay): no switch in the loop.
    macro_rules! dispatch {
        ($($o:literal)*) => {
            match (order, inside, wd) {
                $(
                    ($o, false, 0) => loops::<T, $o, false, 0>(s, p, g, v, m, b),
                    ($o, false, 1) => loops::<T, $o, false, 1>(s, p, g, v, m, b),
                    ($o, false, 2) => loops::<T, $o, false, 2>(s, p, g, v, m, b),
                    ($o, false, 3) => loops::<T, $o, false, 3>(s, p, g, v, m, b),
                    ($o, true, 0) => loops::<T, $o, true, 0>(s, p, g, v, m, b),
                    ($o, true, 1) => loops::<T, $o, true, 1>(s, p, g, v, m, b),
                    ($o, true, 2) => loops::<T, $o, true, 2>(s, p, g, v, m, b),
                    ($o, true, 3) => loops::<T, $o, true, 3>(s, p, g, v, m, b),
                )*
                _ => unreachable!(),
            }
        };
    }
    dispatch!(0 1 2 3)
}

/// The loops of [`rmsprop_fast`] for one operation order `O` (0 Torch, 1 Keras, 2 Optax, 3 Tf1),
/// eps placement `E` (inside the root when true) and weight decay `W` (0 none, 1 coupled,
/// 2 decoupled scale, 3 decoupled subtract).
#[inline(always)]
fn loops<T: Float, const O: u8, const E: bool, const W: u8>(
    s: &RmsPropScalars<T>,
    p: &mut [T],
    g: &[T],
    v: &mut [T],
    grad_avg: &mut [T],
    momentum_buffer: &mut [T],
) {
    let centered = s.centered;
    let wd = match s.weight_decay {
        WeightDecayOp::None => T::ZERO,
        WeightDecayOp::Coupled(x)
        | WeightDecayOp::DecoupledScale(x)
        | WeightDecayOp::DecoupledSubtract(x) => x,
    };
    match (centered, s.momentum_mode) {
        (false, MomentumMode::None) => {
            let (mut m, mut b) = (T::ZERO, T::ZERO);
            for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                element::<T, O, E, W, false, 0>(s, wd, p, g, v, &mut m, &mut b);
            }
        }
        (true, MomentumMode::None) => {
            let mut b = T::ZERO;
            for (((p, &g), v), m) in p
                .iter_mut()
                .zip(g)
                .zip(v.iter_mut())
                .zip(grad_avg.iter_mut())
            {
                element::<T, O, E, W, true, 0>(s, wd, p, g, v, m, &mut b);
            }
        }
        (false, mode) => {
            let (b, mut m) = (momentum_buffer, T::ZERO);
            let it = p.iter_mut().zip(g).zip(v.iter_mut()).zip(b.iter_mut());
            if mode == MomentumMode::LrOutside {
                for (((p, &g), v), b) in it {
                    element::<T, O, E, W, false, 1>(s, wd, p, g, v, &mut m, b);
                }
            } else {
                for (((p, &g), v), b) in it {
                    element::<T, O, E, W, false, 2>(s, wd, p, g, v, &mut m, b);
                }
            }
        }
        (true, mode) => {
            let (m, b) = (grad_avg, momentum_buffer);
            let it = p
                .iter_mut()
                .zip(g)
                .zip(v.iter_mut())
                .zip(m.iter_mut())
                .zip(b.iter_mut());
            if mode == MomentumMode::LrOutside {
                for ((((p, &g), v), m), b) in it {
                    element::<T, O, E, W, true, 1>(s, wd, p, g, v, m, b);
                }
            } else {
                for ((((p, &g), v), m), b) in it {
                    element::<T, O, E, W, true, 2>(s, wd, p, g, v, m, b);
                }
            }
        }
    }
}

/// One element of [`rmsprop_fast`]: `MOM` is 0 (none), 1 (lr outside), 2 (lr inside).
#[inline(always)]
fn element<
    T: Float,
    const O: u8,
    const E: bool,
    const W: u8,
    const CENTERED: bool,
    const MOM: u8,
>(
    s: &RmsPropScalars<T>,
    wd: T,
    p_ref: &mut T,
    g_in: T,
    v_ref: &mut T,
    m_ref: &mut T,
    b_ref: &mut T,
) {
    let mut g = if s.maximize { -g_in } else { g_in };
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
    if CENTERED {
        let m_old = *m_ref;
        let m = match O {
            0 => lerp_torch(m_old, g, s.one_minus_rho),
            3 => m_old + (g - m_old) * s.one_minus_rho,
            _ => s.rho * m_old + s.one_minus_rho * g,
        };
        *m_ref = m;
        let m_hat = m * s.bias_correction;
        var = var - m_hat * m_hat;
        if s.clamp_variance {
            var = var.max(T::ZERO);
        }
    }
    let d = if E {
        (var + s.eps).sqrt()
    } else {
        var.sqrt() + s.eps
    };
    let reciprocal = O == 2;
    let delta = match MOM {
        0 => {
            if reciprocal {
                s.lr * ((T::ONE / d) * g)
            } else {
                (s.lr * g) / d
            }
        }
        1 => {
            let q = if reciprocal { (T::ONE / d) * g } else { g / d };
            let b = s.momentum * *b_ref + q;
            *b_ref = b;
            if s.nesterov {
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
            if s.nesterov {
                u + s.momentum * b
            } else {
                b
            }
        }
    };
    *p_ref = p - delta;
}
