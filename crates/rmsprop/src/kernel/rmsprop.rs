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
