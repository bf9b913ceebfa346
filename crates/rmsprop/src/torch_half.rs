//! PyTorch's `torch.optim.RMSprop` on `bfloat16`/`float16` tensors, operation for operation:
//! [`TorchHalfRmsProp`] keeps its state in the half type and rounds after each operation, as
//! torch's single-tensor CPU path does, so it reproduces torch's half-precision trajectories bit
//! for bit (`reference/vectors_half/`, recorded by `tools/reference/half.py`).
//!
//! For training, [`Mixed`](crate::mixed::Mixed) is the better choice: one fused `f32` step and
//! one rounding per buffer, state in `f32` if wanted, stochastic rounding or a master copy.
//! This type is for reproducing torch.
//!
//! The rule, with `h(x)` rounding an `f32` result to the half type (nearest, ties to even) and
//! scalars taken as `f32`:
//! ```text
//! g = grad (negated when maximizing)
//! weight decay:  g = h(g + h(h(wd) * p))            grad.add(p, alpha=wd)
//! sq = h(sq * alpha);  sq = h(sq + (1 - alpha) * g * g)
//! centered:      ga = h(fma(1 - alpha, g - ga, ga))  (lerp_);  den = h(sqrt(h(sq - ga * ga)))
//! otherwise:     den = h(sqrt(sq))
//! den = h(den + eps)
//! momentum:      buf = h(buf * momentum);  buf = h(buf + g / den);  p = h(p + h(h(-lr) * buf))
//! otherwise:     p = h(fma(-lr, g / den, p))         addcdiv_(value=-lr)
//! ```
//! `add(alpha=)` is written as ATen's scalar loop computes it, which handles tensors shorter than
//! one vector register and the tail of longer ones; ATen's vectorized body computes
//! `h(a + h(alpha) * b)` instead, one rounding less. On long tensors the two can differ by one
//! unit in the last place per step in the weight-decay and momentum updates.

use crate::check::check_step;
use crate::mixed::Half;
use crate::options::{EpsPlacement, MomentumStyle, OperationOrder, WeightDecayStyle};
use crate::{Error, NonFinitePolicy, Result, RmsPropConfig};

/// One tensor's state, in the half type.
#[derive(Clone, Debug, PartialEq)]
struct TensorState<H> {
    square_avg: Vec<H>,
    grad_avg: Vec<H>,
    momentum_buffer: Vec<H>,
}

/// PyTorch's RMSprop on half-precision tensors, bit for bit (see the [module docs](self)).
///
/// # Examples
/// ```
/// use half::bf16;
/// use rmsprop::torch_half::TorchHalfRmsProp;
/// use rmsprop::RmsPropConfig;
/// let mut opt = TorchHalfRmsProp::<bf16>::new(RmsPropConfig::pytorch()).unwrap();
/// let mut w = vec![bf16::from_f32(1.0)];
/// opt.step(&mut [&mut w], &[&[bf16::from_f32(0.5)]]).unwrap();
/// // sq = h(0.01 * 0.25), den = h(sqrt(sq)) = 0.05, p = h(1 - 0.01 * 0.5 / 0.05) = 0.8984375
/// assert_eq!(w[0].to_f32(), 0.8984375);
/// assert!(TorchHalfRmsProp::<bf16>::new(RmsPropConfig::keras()).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct TorchHalfRmsProp<H: Half> {
    config: RmsPropConfig,
    policy: NonFinitePolicy,
    tensors: Vec<TensorState<H>>,
    steps: u64,
}

impl<H: Half> TorchHalfRmsProp<H> {
    /// Builds the optimizer for a configuration in PyTorch's formulation.
    ///
    /// # Errors
    /// As [`RmsPropConfig::validate`]; [`Error::InvalidConfig`] for an option torch's RMSprop does
    /// not have (another operation order or eps placement, Keras-style momentum, Nesterov,
    /// decoupled weight decay, bias correction, a clamped variance).
    pub fn new(config: RmsPropConfig) -> Result<Self> {
        config.validate()?;
        let torch = config.operation_order == OperationOrder::Torch
            && config.eps_placement == EpsPlacement::Outside
            && config.momentum_style == MomentumStyle::LrOutside
            && config.weight_decay_style == WeightDecayStyle::Coupled
            && !config.nesterov
            && !config.bias_correction
            && !config.clamp_variance;
        if !torch {
            return Err(Error::InvalidConfig(
                "torch_half reproduces torch.optim.RMSprop: use the pytorch() preset's order, eps outside, momentum outside the rate, coupled weight decay, no Nesterov, bias correction or clamping",
            ));
        }
        Ok(Self {
            config,
            policy: NonFinitePolicy::Error,
            tensors: Vec::new(),
            steps: 0,
        })
    }

    /// Sets what a step does with a non-finite gradient (default [`NonFinitePolicy::Error`];
    /// torch's behaviour is [`NonFinitePolicy::Propagate`]).
    pub fn with_non_finite(mut self, policy: NonFinitePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Successful steps.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Buffer `name` (`square_avg`, `grad_avg`, `momentum_buffer`) of tensor `tensor`, as `f32`.
    pub fn buffer(&self, tensor: usize, name: &str) -> Option<Vec<f32>> {
        let t = self.tensors.get(tensor)?;
        let b = match name {
            "square_avg" => &t.square_avg,
            "grad_avg" if self.config.centered => &t.grad_avg,
            "momentum_buffer" if self.config.momentum > 0.0 => &t.momentum_buffer,
            _ => return None,
        };
        Some(b.iter().map(|x| x.to_f32()).collect())
    }

    /// One step over every tensor.
    ///
    /// # Errors
    /// Wrong counts or lengths, or a non-finite gradient under [`NonFinitePolicy::Error`]; a
    /// refused or skipped step changes nothing.
    pub fn step(&mut self, params: &mut [&mut [H]], grads: &[&[H]]) -> Result<()> {
        let tensors = &self.tensors;
        check_step(params, grads, tensors.len(), |i| {
            tensors[i].square_avg.len()
        })?;
        if self.policy != NonFinitePolicy::Propagate
            && !grads.iter().all(|g| <H as Half>::all_finite(g))
        {
            for (index, g) in grads.iter().enumerate() {
                if let Some(element) = g.iter().position(|x| !x.to_f32().is_finite()) {
                    if self.policy == NonFinitePolicy::Skip {
                        return Ok(());
                    }
                    return Err(Error::NonFiniteGradient {
                        index,
                        element,
                        value: g[element].to_f32() as f64,
                    });
                }
            }
        }
        let c = &self.config;
        if self.tensors.is_empty() {
            let init = H::from_f32(c.initial_square_avg as f32);
            self.tensors = params
                .iter()
                .map(|p| TensorState {
                    square_avg: vec![init; p.len()],
                    grad_avg: if c.centered {
                        vec![H::default(); p.len()]
                    } else {
                        Vec::new()
                    },
                    momentum_buffer: if c.momentum > 0.0 {
                        vec![H::default(); p.len()]
                    } else {
                        Vec::new()
                    },
                })
                .collect();
        }
        let h = |x: f32| H::from_f32(x).to_f32();
        let (lr, alpha, eps) = (c.lr as f32, c.rho as f32, c.eps as f32);
        let one_minus_alpha = (1.0 - c.rho) as f32;
        let (momentum, wd) = (c.momentum as f32, c.weight_decay as f32);
        let (h_wd, h_neg_lr) = (h(wd), h(-lr));
        for ((p, g), t) in params.iter_mut().zip(grads).zip(&mut self.tensors) {
            for i in 0..p.len() {
                let pi = p[i].to_f32();
                let mut gi = g[i].to_f32();
                if c.maximize {
                    gi = -gi;
                }
                if wd != 0.0 {
                    gi = h(gi + h(h_wd * pi));
                }
                let mut sq = h(t.square_avg[i].to_f32() * alpha);
                sq = h(sq + one_minus_alpha * gi * gi);
                t.square_avg[i] = H::from_f32(sq);
                let mut den = if c.centered {
                    let ga = t.grad_avg[i].to_f32();
                    let ga = h(one_minus_alpha.mul_add(gi - ga, ga));
                    t.grad_avg[i] = H::from_f32(ga);
                    h(h(sq - ga * ga).sqrt())
                } else {
                    h(sq.sqrt())
                };
                den = h(den + eps);
                let new = if c.momentum > 0.0 {
                    let mut buf = h(t.momentum_buffer[i].to_f32() * momentum);
                    buf = h(buf + gi / den);
                    t.momentum_buffer[i] = H::from_f32(buf);
                    pi + h(h_neg_lr * buf)
                } else {
                    (-lr).mul_add(gi / den, pi)
                };
                p[i] = H::from_f32(new);
            }
        }
        self.steps += 1;
        Ok(())
    }
}
