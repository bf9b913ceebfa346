//! Learning-rate schedules: pure functions of the step, as PyTorch's `torch.optim.lr_scheduler`.
//!
//! A [`Schedule`] maps a base learning rate and a step number (0 for the first optimizer step)
//! to the learning rate of that step, in closed form; [`Scheduled`] applies one to an optimizer
//! (each parameter group scaled from its own base rate, as PyTorch's schedulers do).
//! Values agree with PyTorch's, which are computed recursively, within 1e-12 relative
//! (`tests/schedules.rs` against `reference/schedules.json`).

use std::f64::consts::PI;

use crate::{Execution, Float, Optimizer, Result};

/// A learning rate as a function of the base rate and the step (0-based).
///
/// # Examples
/// ```
/// use rmsprop::schedule::{Schedule, StepLr};
/// let s = StepLr { step_size: 30, gamma: 0.1 };
/// assert_eq!(s.lr(0.1, 29), 0.1);
/// assert!((s.lr(0.1, 30) - 0.01).abs() < 1e-15);
/// ```
pub trait Schedule: Send + Sync {
    /// The learning rate at `step` for a group whose base rate is `base_lr`.
    fn lr(&self, base_lr: f64, step: u64) -> f64;
}

impl<S: Schedule + ?Sized> Schedule for Box<S> {
    fn lr(&self, base_lr: f64, step: u64) -> f64 {
        (**self).lr(base_lr, step)
    }
}

/// The base rate, always.
///
/// # Examples
/// ```
/// use rmsprop::schedule::{Constant, Schedule};
/// assert_eq!(Constant.lr(0.3, 1000), 0.3);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Constant;

impl Schedule for Constant {
    fn lr(&self, base_lr: f64, _step: u64) -> f64 {
        base_lr
    }
}

/// `base * factor` for the first `total_iters` steps, then `base` (PyTorch `ConstantLR`).
///
/// # Examples
/// ```
/// use rmsprop::schedule::{ConstantLr, Schedule};
/// let s = ConstantLr { factor: 0.5, total_iters: 2 };
/// assert_eq!((s.lr(1.0, 1), s.lr(1.0, 2)), (0.5, 1.0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConstantLr {
    /// Factor during the first steps.
    pub factor: f64,
    /// Number of steps with the factor.
    pub total_iters: u64,
}

impl Schedule for ConstantLr {
    fn lr(&self, base_lr: f64, step: u64) -> f64 {
        if step < self.total_iters {
            base_lr * self.factor
        } else {
            base_lr
        }
    }
}

/// `base * gamma^(step / step_size)` (PyTorch `StepLR`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLr {
    /// Steps between decays.
    pub step_size: u64,
    /// Decay factor.
    pub gamma: f64,
}

impl Schedule for StepLr {
    fn lr(&self, base_lr: f64, step: u64) -> f64 {
        base_lr * self.gamma.powi((step / self.step_size.max(1)) as i32)
    }
}

/// `base * gamma^(number of milestones <= step)` (PyTorch `MultiStepLR`).
///
/// # Examples
/// ```
/// use rmsprop::schedule::{MultiStepLr, Schedule};
/// let s = MultiStepLr { milestones: vec![2, 4], gamma: 0.5 };
/// assert_eq!([0, 2, 4].map(|t| s.lr(1.0, t)), [1.0, 0.5, 0.25]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MultiStepLr {
    /// Steps at which the rate is multiplied by `gamma`.
    pub milestones: Vec<u64>,
    /// Decay factor.
    pub gamma: f64,
}

impl Schedule for MultiStepLr {
    fn lr(&self, base_lr: f64, step: u64) -> f64 {
        let n = self.milestones.iter().filter(|&&m| m <= step).count();
        base_lr * self.gamma.powi(n as i32)
    }
}

/// `base * gamma^step` (PyTorch `ExponentialLR`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExponentialLr {
    /// Decay per step.
    pub gamma: f64,
}

impl Schedule for ExponentialLr {
    fn lr(&self, base_lr: f64, step: u64) -> f64 {
        base_lr * self.gamma.powi(step as i32)
    }
}

/// `eta_min + (base - eta_min) * (1 + cos(pi * step / t_max)) / 2` (PyTorch `CosineAnnealingLR`;
/// past `t_max` the cosine goes on, as PyTorch's does).
///
/// # Examples
/// ```
/// use rmsprop::schedule::{CosineAnnealingLr, Schedule};
/// let s = CosineAnnealingLr { t_max: 10, eta_min: 0.0 };
/// assert!((s.lr(1.0, 5) - 0.5).abs() < 1e-15);
/// assert_eq!(s.lr(1.0, 10), 0.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealingLr {
    /// Half period in steps.
    pub t_max: u64,
    /// Minimum rate.
    pub eta_min: f64,
}

fn cosine(base: f64, eta_min: f64, t: f64, period: f64) -> f64 {
    eta_min + (base - eta_min) * (1.0 + (PI * t / period).cos()) / 2.0
}

impl Schedule for CosineAnnealingLr {
    fn lr(&self, base_lr: f64, step: u64) -> f64 {
        cosine(base_lr, self.eta_min, step as f64, self.t_max.max(1) as f64)
    }
}

/// Cosine annealing with warm restarts (SGDR; PyTorch `CosineAnnealingWarmRestarts`): periods of
/// `t_0`, `t_0*t_mult`, `t_0*t_mult^2`, ... steps, each annealing from the base rate to `eta_min`.
///
/// # Examples
/// ```
/// use rmsprop::schedule::{CosineWarmRestarts, Schedule};
/// let s = CosineWarmRestarts { t_0: 10, t_mult: 2, eta_min: 0.0 };
/// assert_eq!(s.lr(1.0, 10), 1.0); // restart
/// assert_eq!(s.lr(1.0, 30), 1.0); // next restart after 20 more steps
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineWarmRestarts {
    /// First period in steps.
    pub t_0: u64,
    /// Growth factor of the period.
    pub t_mult: u64,
    /// Minimum rate.
    pub eta_min: f64,
}

impl Schedule for CosineWarmRestarts {
    fn lr(&self, base_lr: f64, step: u64) -> f64 {
        let (mut t_cur, mut t_i) = (step, self.t_0.max(1));
        while t_cur >= t_i {
            t_cur -= t_i;
            t_i *= self.t_mult.max(1);
        }
        cosine(base_lr, self.eta_min, t_cur as f64, t_i as f64)
    }
}

/// Linear ramp of the factor from `start_factor` to `end_factor` over `total_iters` steps, then
/// constant (PyTorch `LinearLR`): the usual linear warm-up.
///
/// # Examples
/// ```
/// use rmsprop::schedule::{LinearLr, Schedule};
/// let warmup = LinearLr { start_factor: 0.1, end_factor: 1.0, total_iters: 10 };
/// assert_eq!(warmup.lr(1.0, 0), 0.1);
/// assert_eq!(warmup.lr(1.0, 10), 1.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearLr {
    /// Factor at step 0.
    pub start_factor: f64,
    /// Factor from `total_iters` on.
    pub end_factor: f64,
    /// Length of the ramp.
    pub total_iters: u64,
}

impl Schedule for LinearLr {
    fn lr(&self, base_lr: f64, step: u64) -> f64 {
        let t = step.min(self.total_iters) as f64;
        base_lr
            * (self.start_factor
                + (self.end_factor - self.start_factor) * t / self.total_iters.max(1) as f64)
    }
}

/// How [`OneCycle`] anneals within a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anneal {
    /// Half-cosine.
    Cos,
    /// Straight line.
    Linear,
}

/// The 1cycle policy (Smith 2018; PyTorch `OneCycleLR`): from `max_lr/div_factor` up to `max_lr`
/// during the first `pct_start` of `total_steps`, then down to `max_lr/(div_factor*final_div_factor)`
/// (with `three_phase`, back to the initial rate first). Ignores the base rate.
///
/// # Examples
/// ```
/// use rmsprop::schedule::{OneCycle, Schedule};
/// let s = OneCycle::new(0.1, 100);
/// assert!((s.lr(0.0, 0) - 0.004).abs() < 1e-15);
/// assert!((s.lr(0.0, 29) - 0.1).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OneCycle {
    /// Peak learning rate.
    pub max_lr: f64,
    /// Length of the cycle in steps.
    pub total_steps: u64,
    /// Fraction of the cycle spent increasing. PyTorch default 0.3.
    pub pct_start: f64,
    /// Annealing shape. PyTorch default cosine.
    pub anneal: Anneal,
    /// Initial rate = `max_lr / div_factor`. PyTorch default 25.
    pub div_factor: f64,
    /// Final rate = initial rate / `final_div_factor`. PyTorch default 1e4.
    pub final_div_factor: f64,
    /// Three phases (up, back down to the initial rate, then to the final rate). Default false.
    pub three_phase: bool,
}

impl OneCycle {
    /// PyTorch's defaults for the given peak and length.
    pub fn new(max_lr: f64, total_steps: u64) -> Self {
        Self {
            max_lr,
            total_steps,
            pct_start: 0.3,
            anneal: Anneal::Cos,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
        }
    }
}

impl Schedule for OneCycle {
    fn lr(&self, _base_lr: f64, step: u64) -> f64 {
        let initial = self.max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let total = self.total_steps as f64;
        let up_end = self.pct_start * total - 1.0;
        let phases: &[(f64, f64, f64)] = if self.three_phase {
            &[
                (up_end, initial, self.max_lr),
                (2.0 * self.pct_start * total - 2.0, self.max_lr, initial),
                (total - 1.0, initial, min),
            ]
        } else {
            &[
                (up_end, initial, self.max_lr),
                (total - 1.0, self.max_lr, min),
            ]
        };
        let t = step as f64;
        let mut start_step = 0.0;
        for (i, &(end_step, start, end)) in phases.iter().enumerate() {
            if t <= end_step || i == phases.len() - 1 {
                let pct = (t - start_step) / (end_step - start_step);
                return match self.anneal {
                    Anneal::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
                    Anneal::Linear => (end - start) * pct + start,
                };
            }
            start_step = end_step;
        }
        unreachable!("the last phase always matches")
    }
}

/// Schedules one after another (PyTorch `SequentialLR`): `schedules[i]` runs from
/// `milestones[i-1]` on, restarted at its own step 0.
///
/// # Examples
/// Linear warm-up for 5 steps, then cosine annealing over 95:
/// ```
/// use rmsprop::schedule::{CosineAnnealingLr, LinearLr, Schedule, Sequential};
/// let s = Sequential::new(
///     vec![Box::new(LinearLr { start_factor: 0.01, end_factor: 1.0, total_iters: 5 }),
///          Box::new(CosineAnnealingLr { t_max: 95, eta_min: 0.0 })],
///     vec![5],
/// );
/// assert_eq!(s.lr(1.0, 0), 0.01);
/// assert_eq!(s.lr(1.0, 5), 1.0);
/// ```
pub struct Sequential {
    schedules: Vec<Box<dyn Schedule>>,
    milestones: Vec<u64>,
}

impl Sequential {
    /// `schedules.len()` must be `milestones.len() + 1`, milestones increasing.
    ///
    /// # Panics
    /// When the lengths do not fit or the milestones are not increasing.
    pub fn new(schedules: Vec<Box<dyn Schedule>>, milestones: Vec<u64>) -> Self {
        assert_eq!(
            schedules.len(),
            milestones.len() + 1,
            "one more schedule than milestones"
        );
        assert!(
            milestones.windows(2).all(|w| w[0] < w[1]),
            "milestones must increase"
        );
        Self {
            schedules,
            milestones,
        }
    }
}

impl Schedule for Sequential {
    fn lr(&self, base_lr: f64, step: u64) -> f64 {
        let i = self.milestones.iter().filter(|&&m| m <= step).count();
        let start = if i == 0 { 0 } else { self.milestones[i - 1] };
        self.schedules[i].lr(base_lr, step - start)
    }
}

/// Linear warm-up from `warmup_start_factor * base` over `warmup` steps, then cosine annealing to
/// `eta_min` at `total` steps: the usual composition, as a [`Sequential`].
///
/// # Examples
/// ```
/// use rmsprop::schedule::{warmup_cosine, Schedule};
/// let s = warmup_cosine(0.1, 10, 100, 0.0);
/// assert_eq!(s.lr(1.0, 10), 1.0);
/// assert!(s.lr(1.0, 99) < 0.01);
/// ```
pub fn warmup_cosine(
    warmup_start_factor: f64,
    warmup: u64,
    total: u64,
    eta_min: f64,
) -> Sequential {
    Sequential::new(
        vec![
            Box::new(LinearLr {
                start_factor: warmup_start_factor,
                end_factor: 1.0,
                total_iters: warmup,
            }),
            Box::new(CosineAnnealingLr {
                t_max: total.saturating_sub(warmup),
                eta_min,
            }),
        ],
        vec![warmup],
    )
}

/// An optimizer driven by a schedule: before each step, every group's learning rate is set to
/// `schedule.lr(group's base rate, step)`. Base rates are the groups' rates when first seen.
///
/// # Examples
/// ```
/// use rmsprop::{Optimizer, RmsProp, RmsPropConfig};
/// use rmsprop::schedule::{Scheduled, StepLr};
/// let opt = RmsProp::<f32>::new(RmsPropConfig::pytorch().with_lr(0.1)).unwrap();
/// let mut opt = Scheduled::new(opt, StepLr { step_size: 2, gamma: 0.5 });
/// let mut x = [1.0f32];
/// for _ in 0..3 {
///     opt.step_single(&mut x, &[1.0]).unwrap();
/// }
/// assert_eq!(opt.learning_rate(), 0.05); // the rate of the last step (step 2)
/// ```
#[derive(Clone, Debug)]
pub struct Scheduled<O, S> {
    inner: O,
    schedule: S,
    base_lrs: Vec<f64>,
    step: u64,
}

impl<O, S> Scheduled<O, S> {
    /// Wraps `inner`; its current learning rates become the base rates.
    pub fn new(inner: O, schedule: S) -> Self {
        Self {
            inner,
            schedule,
            base_lrs: Vec::new(),
            step: 0,
        }
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The wrapped optimizer, mutably (e.g. to add a parameter group).
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.inner
    }

    /// The schedule's step count: the next step uses `schedule.lr(base, scheduled_steps())`.
    pub fn scheduled_steps(&self) -> u64 {
        self.step
    }
}

impl<T: Float, O: Optimizer<T>, S: Schedule> Optimizer<T> for Scheduled<O, S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn check(&self, params: &[&mut [T]], grads: &[&[T]]) -> Result<()> {
        self.inner.check(params, grads)
    }

    /// Sets every group's rate for this step, then steps. A step that fails or is skipped
    /// leaves the rates, the base rates and the schedule's position as they were.
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        self.inner.check(params, grads)?;
        if !self.inner.screen_gradients(grads)? {
            // Let the inner optimizer count the skipped step; nothing scheduled moves.
            return self.inner.step(params, grads);
        }
        self.step_screened(params, grads)
    }

    fn step_screened(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        self.inner.check(params, grads)?;
        let groups = self.inner.group_count();
        let base = |g: usize| {
            self.base_lrs
                .get(g)
                .copied()
                .unwrap_or_else(|| self.inner.group_learning_rate(g))
        };
        // Every rate is computed and checked before any is set.
        for g in 0..groups {
            let lr = self.schedule.lr(base(g), self.step);
            crate::check::check_non_negative("lr", lr)?;
        }
        let before: Vec<f64> = (0..groups)
            .map(|g| self.inner.group_learning_rate(g))
            .collect();
        let known = self.base_lrs.len();
        self.base_lrs
            .extend_from_slice(&before[known.min(groups)..]);
        for (g, &b) in self.base_lrs.iter().enumerate().take(groups) {
            self.inner
                .set_group_learning_rate(g, self.schedule.lr(b, self.step))?;
        }
        let skipped = self.inner.skipped_steps();
        let result = self.inner.step_screened(params, grads);
        // A failure, or a skip further down (a dropped micro-batch under `Accumulate`), leaves
        // the rates and the schedule's position as they were.
        if result.is_err() || self.inner.skipped_steps() != skipped {
            for (g, &lr) in before.iter().enumerate() {
                self.inner.set_group_learning_rate(g, lr)?;
            }
            self.base_lrs.truncate(known);
            return result;
        }
        self.step = self.step.saturating_add(1);
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.inner.learning_rate()
    }

    /// Sets the base rate of every group (the schedule scales from it).
    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        self.inner.set_learning_rate(lr)?;
        self.base_lrs = vec![lr; self.inner.group_count()];
        Ok(())
    }

    fn group_count(&self) -> usize {
        self.inner.group_count()
    }

    fn group_learning_rate(&self, group: usize) -> f64 {
        self.inner.group_learning_rate(group)
    }

    fn set_group_learning_rate(&mut self, group: usize, lr: f64) -> Result<()> {
        self.inner.set_group_learning_rate(group, lr)?;
        if let Some(b) = self.base_lrs.get_mut(group) {
            *b = lr;
        }
        Ok(())
    }

    fn screen_gradients(&self, grads: &[&[T]]) -> Result<bool> {
        self.inner.screen_gradients(grads)
    }

    fn skipped_steps(&self) -> u64 {
        self.inner.skipped_steps()
    }

    fn steps(&self) -> u64 {
        self.inner.steps()
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.step = 0;
    }

    fn set_execution(&mut self, execution: Execution) {
        self.inner.set_execution(execution)
    }

    fn state_buffers(&self, index: usize) -> Vec<(&'static str, &[T])> {
        self.inner.state_buffers(index)
    }
}

#[cfg(feature = "checkpoint")]
mod checkpoint {
    use serde_json::{json, Value};

    use super::{Schedule, Scheduled};
    use crate::checkpoint::{
        expect_children, expect_kind, extra_u64, CheckpointError, Checkpointable, Snapshot,
    };
    use crate::Float;

    /// A scheduled optimizer checkpoints its schedule's position and the groups' base rates
    /// around the optimizer it drives. The schedule itself is code: the program supplies it.
    impl<T: Float, O: Checkpointable<T>, S: Schedule> Checkpointable<T> for Scheduled<O, S> {
        fn kind(&self) -> &'static str {
            "scheduled"
        }

        fn snapshot(&self) -> Snapshot<T> {
            let mut s = Snapshot::node(self.kind(), Value::Null, self.step, 0);
            s.extra = json!({"step": self.step, "base_lrs": self.base_lrs});
            s.children = vec![self.inner.snapshot()];
            s
        }

        fn restore(&mut self, mut s: Snapshot<T>) -> Result<(), CheckpointError> {
            expect_kind(self.kind(), &s.kind)?;
            expect_children(&s, 1)?;
            let step = extra_u64(&s.extra, "step")?;
            let base_lrs = s.extra["base_lrs"]
                .as_array()
                .and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>())
                .ok_or(CheckpointError::Metadata {
                    field: "base_lrs",
                    problem: "missing or not a list of numbers".into(),
                })?;
            if let Some(bad) = base_lrs.iter().find(|lr| !(lr.is_finite() && **lr >= 0.0)) {
                return Err(CheckpointError::Metadata {
                    field: "base_lrs",
                    problem: format!("{bad} is not finite and >= 0"),
                });
            }
            self.inner.restore(s.children.remove(0))?;
            self.step = step;
            self.base_lrs = base_lrs;
            Ok(())
        }
    }
}
