//! bitsandbytes' optimizer rules, operation for operation: the update its CPU backend (0.50)
//! applies between dequantizing and requantizing 8-bit state (`optimizer_update_8bit_blockwise`).
//! With [`Blockwise8`](crate::blockwise::Blockwise8) they reproduce `bnb.optim.RMSprop8bit`,
//! `Adam8bit`, `AdamW8bit`, `SGD8bit` and `Adagrad8bit`: state codes and absmax bit for bit, and
//! parameters up to torch's float32 `sqrt`, which is not correctly rounded on CPU
//! (`tests/blockwise.rs` says where).
//!
//! The rules, in `f32`, with `fma(a, b, c) = a*b + c` rounded once (torch fuses `add(alpha=)`
//! and `addcmul`, and divides after scaling in `addcdiv`); scalars are computed in `f64` and
//! rounded to `f32`:
//! ```text
//! RMSProp:  g = fma(p, wd, g);  v = fma((1-alpha)*g, g, v*alpha);  p = p + (-lr*g) / (sqrt(v) + eps)
//! Adagrad:  g = fma(p, wd, g);  s = fma(g, g, s);                  p = p + (-lr*g) / (sqrt(s) + eps)
//! Momentum: g = fma(p, wd, g);  b = g (first step) or b*mu + g;    p = fma(b, -lr, p)
//! Adam:     m = fma(g, 1-b1, m*b1);  v = fma((1-b2)*g, g, v*b2);
//!           p = p*(1 - lr*wd) (if wd > 0);  p = p + (-(lr/c1)*m) / (sqrt(v)/c2 + eps),
//!           c1 = 1 - b1^t, c2 = sqrt(1 - b2^t)
//! ```
//! bitsandbytes' 8-bit RMSprop on CPU ignores `momentum` and refuses `centered`; for those, use
//! [`RmsPropConfig`](crate::RmsPropConfig) (every variant) with `Blockwise8`.

use crate::algorithm::{Algorithm, BufferSpec, Layout};
use crate::check::{check_non_negative, check_unit_interval};
use crate::kernel::{fast::Isa, next_buffer, Kernel};
use crate::{Float, Result};

/// Which of bitsandbytes' rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum BnbRule {
    /// `RMSprop8bit` (`beta1` is `alpha`).
    RmsProp,
    /// `Adam8bit`, and `AdamW8bit` with `weight_decay` (decoupled: bitsandbytes' Adam rule
    /// always decays the parameter directly).
    Adam,
    /// `SGD8bit` with momentum (`beta1` is the momentum).
    Momentum,
    /// `Adagrad8bit`.
    Adagrad,
}

/// A bitsandbytes optimizer's configuration (see the [module docs](self)).
///
/// # Examples
/// ```
/// use rmsprop::blockwise::Blockwise8;
/// use rmsprop::optim::bnb::BnbConfig;
/// let mut opt = Blockwise8::new(BnbConfig::rmsprop(0.01, 0.99, 1e-8, 0.0), 0).unwrap();
/// let mut w = vec![1.0f32; 300];
/// opt.step(&mut [&mut w], &[&vec![0.5f32; 300]]).unwrap();
/// // v = 0.01 * 0.25, so the first step moves by lr * 0.5 / 0.05 = 0.1.
/// assert!((w[0] - 0.9).abs() < 1e-6);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BnbConfig {
    /// The rule.
    pub rule: BnbRule,
    /// Learning rate, finite and `>= 0`.
    pub lr: f64,
    /// RMSProp's alpha, Adam's beta1, the momentum: in `[0, 1)`.
    pub beta1: f64,
    /// Adam's beta2, in `[0, 1)` (unused by the others).
    pub beta2: f64,
    /// Epsilon, `>= 0` (unused by momentum).
    pub eps: f64,
    /// Weight decay, `>= 0`.
    pub weight_decay: f64,
}

impl BnbConfig {
    /// `RMSprop8bit(lr, alpha, eps, weight_decay)`; bitsandbytes' defaults are `0.01, 0.99, 1e-8, 0`.
    pub fn rmsprop(lr: f64, alpha: f64, eps: f64, weight_decay: f64) -> Self {
        Self {
            rule: BnbRule::RmsProp,
            lr,
            beta1: alpha,
            beta2: 0.0,
            eps,
            weight_decay,
        }
    }

    /// `Adam8bit` / `AdamW8bit(lr, betas, eps, weight_decay)`.
    pub fn adam(lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> Self {
        Self {
            rule: BnbRule::Adam,
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        }
    }

    /// `SGD8bit(lr, momentum, weight_decay)`.
    pub fn momentum(lr: f64, momentum: f64, weight_decay: f64) -> Self {
        Self {
            rule: BnbRule::Momentum,
            lr,
            beta1: momentum,
            beta2: 0.0,
            eps: 0.0,
            weight_decay,
        }
    }

    /// `Adagrad8bit(lr, eps, weight_decay)`.
    pub fn adagrad(lr: f64, eps: f64, weight_decay: f64) -> Self {
        Self {
            rule: BnbRule::Adagrad,
            lr,
            beta1: 0.0,
            beta2: 0.0,
            eps,
            weight_decay,
        }
    }
}

/// The per-step scalars of [`BnbConfig`], in the element type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BnbScalars<T> {
    /// The rule.
    pub rule: BnbRule,
    /// `beta1` (alpha, momentum).
    pub beta1: T,
    /// `1 - beta1`.
    pub one_minus_beta1: T,
    /// `beta2`.
    pub beta2: T,
    /// `1 - beta2`.
    pub one_minus_beta2: T,
    /// Epsilon.
    pub eps: T,
    /// Weight decay (coupled; Adam: unused, see `decay`).
    pub weight_decay: T,
    /// `-lr`; Adam: `-lr / (1 - beta1^t)`.
    pub neg_step: T,
    /// Adam: `sqrt(1 - beta2^t)`.
    pub correction2: T,
    /// Adam: `1 - lr*wd`, or 1 without decay.
    pub decay: T,
    /// The first step (momentum copies the gradient).
    pub first: bool,
}

impl Algorithm for BnbConfig {
    const KIND: &'static str = "bitsandbytes";
    type Scalars<T: Float> = BnbScalars<T>;

    fn name(&self) -> &'static str {
        match self.rule {
            BnbRule::RmsProp => "bnb_rmsprop",
            BnbRule::Adam => "bnb_adam",
            BnbRule::Momentum => "bnb_momentum",
            BnbRule::Adagrad => "bnb_adagrad",
        }
    }

    fn validate(&self) -> Result<()> {
        check_non_negative("lr", self.lr)?;
        check_unit_interval("beta1", self.beta1)?;
        check_unit_interval("beta2", self.beta2)?;
        check_non_negative("eps", self.eps)?;
        check_non_negative("weight_decay", self.weight_decay)
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// RMSProp `square_avg`, Adagrad `sum`, momentum `momentum_buffer`, Adam `exp_avg` and
    /// `exp_avg_sq`; all from 0.
    fn layout(&self) -> Layout {
        let names: &[&'static str] = match self.rule {
            BnbRule::RmsProp => &["square_avg"],
            BnbRule::Adagrad => &["sum"],
            BnbRule::Momentum => &["momentum_buffer"],
            BnbRule::Adam => &["exp_avg", "exp_avg_sq"],
        };
        Layout::new(names.iter().map(|n| BufferSpec::new(n, 0.0)).collect())
    }

    fn variant(&self) -> String {
        self.name().to_string()
    }

    fn scalars<T: Float>(&self, t: u64) -> BnbScalars<T> {
        let c = self;
        let (neg_step, correction2, decay) = match c.rule {
            BnbRule::Adam => (
                -c.lr / (1.0 - c.beta1.powi(t as i32)),
                (1.0 - c.beta2.powi(t as i32)).sqrt(),
                if c.weight_decay > 0.0 {
                    1.0 - c.lr * c.weight_decay
                } else {
                    1.0
                },
            ),
            _ => (-c.lr, 1.0, 1.0),
        };
        BnbScalars {
            rule: c.rule,
            beta1: T::from_f64(c.beta1),
            one_minus_beta1: T::from_f64(1.0 - c.beta1),
            beta2: T::from_f64(c.beta2),
            one_minus_beta2: T::from_f64(1.0 - c.beta2),
            eps: T::from_f64(c.eps),
            weight_decay: T::from_f64(c.weight_decay),
            neg_step: T::from_f64(neg_step),
            correction2: T::from_f64(correction2),
            decay: T::from_f64(decay),
            first: t == 1,
        }
    }

    fn kernel<T: Float>(&self) -> Kernel<T, BnbScalars<T>> {
        bnb_fast
    }

    fn reference<T: Float>(
        s: &BnbScalars<T>,
        params: &mut [T],
        grads: &[T],
        buffers: &mut [&mut [T]],
    ) {
        bnb_reference(s, params, grads, buffers)
    }
}

/// The rules of the [module docs](self), element by element: the specification.
///
/// # Examples
/// ```
/// use rmsprop::optim::bnb::{bnb_reference, BnbConfig};
/// use rmsprop::Algorithm;
/// let s = BnbConfig::momentum(0.1, 0.9, 0.0).scalars::<f32>(1);
/// let (mut p, mut b) = ([1.0f32], [0.0f32]);
/// bnb_reference(&s, &mut p, &[2.0], &mut [&mut b]);
/// assert_eq!((p[0], b[0]), (0.8, 2.0));
/// ```
#[inline(always)]
pub fn bnb_reference<T: Float>(
    s: &BnbScalars<T>,
    params: &mut [T],
    grads: &[T],
    mut buffers: &mut [&mut [T]],
) {
    let n = params.len();
    assert_eq!(grads.len(), n, "gradient length");
    let a = next_buffer(&mut buffers);
    assert_eq!(a.len(), n, "state length");
    match s.rule {
        BnbRule::RmsProp => {
            for i in 0..n {
                let p = params[i];
                let g = p.mul_add(s.weight_decay, grads[i]);
                let v = (s.one_minus_beta1 * g).mul_add(g, a[i] * s.beta1);
                a[i] = v;
                params[i] = p + (s.neg_step * g) / (v.sqrt() + s.eps);
            }
        }
        BnbRule::Adagrad => {
            for i in 0..n {
                let p = params[i];
                let g = p.mul_add(s.weight_decay, grads[i]);
                let v = g.mul_add(g, a[i]);
                a[i] = v;
                params[i] = p + (s.neg_step * g) / (v.sqrt() + s.eps);
            }
        }
        BnbRule::Momentum => {
            for i in 0..n {
                let p = params[i];
                let g = p.mul_add(s.weight_decay, grads[i]);
                let b = if s.first { g } else { a[i] * s.beta1 + g };
                a[i] = b;
                params[i] = b.mul_add(s.neg_step, p);
            }
        }
        BnbRule::Adam => {
            let v2 = next_buffer(&mut buffers);
            assert_eq!(v2.len(), n, "exp_avg_sq length");
            for i in 0..n {
                let g = grads[i];
                let m = g.mul_add(s.one_minus_beta1, a[i] * s.beta1);
                let v = (s.one_minus_beta2 * g).mul_add(g, v2[i] * s.beta2);
                a[i] = m;
                v2[i] = v;
                let den = v.sqrt() / s.correction2 + s.eps;
                params[i] = params[i] * s.decay + (s.neg_step * m) / den;
            }
        }
    }
}

/// [`bnb_reference`] compiled with AVX2 and FMA when the CPU has both (the same operations, so
/// the same bits; the fused multiply-adds become single instructions).
fn bnb_fast<T: Float>(isa: Isa, s: &BnbScalars<T>, p: &mut [T], g: &[T], b: &mut [&mut [T]]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        fn avx2<T: Float>(s: &BnbScalars<T>, p: &mut [T], g: &[T], b: &mut [&mut [T]]) {
            bnb_reference(s, p, g, b)
        }
        if isa == Isa::Avx2
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { avx2(s, p, g, b) };
        }
    }
    let _ = isa;
    bnb_reference(s, p, g, b)
}
