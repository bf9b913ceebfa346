//! The one loop that steps an optimizer on an objective, for every command that does (`lesson`,
//! `run`, `compare` and `report`, `sweep`, the playground), in the spirit of argmin's
//! `Executor` and its `Observe` trait: the loop takes the gradient, clips it, steps, and hands
//! each step to its observers. Everything else is an observer: the progress bar and Ctrl-C
//! ([`Progress`]), checkpoints every N steps ([`Checkpoints`]), the trajectory recorders of
//! `run` and `compare`, the lesson's trace.
//!
//! ```
//! use rmsprop_cli::run::build_optimizer;
//! use rmsprop_cli::run::OptimizerSpec;
//! use rmsprop_cli::runner::{Control, Observe, Runner, StepView};
//! use rmsprop_testfns::Sphere;
//!
//! /// Keeps f after every step.
//! struct Values(Vec<f64>);
//! impl Observe for Values {
//!     fn iter(&mut self, s: &StepView<'_>) -> anyhow::Result<Control> {
//!         self.0.push(s.x.iter().map(|v| v * v).sum());
//!         Ok(Control::Continue)
//!     }
//! }
//!
//! let mut opt = build_optimizer(&OptimizerSpec { lr: Some(0.1), ..OptimizerSpec::named("rmsprop") })?;
//! let mut x = vec![5.0, 4.0];
//! let mut values = Values(Vec::new());
//! let steps = Runner::new(&Sphere).observe(&mut values).run(opt.as_mut(), &mut x, 0, 100)?;
//! assert_eq!((steps, values.0.len()), (100, 100));
//! assert!(values.0[99] < values.0[0]);
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use rmsprop::checkpoint::Checkpointable;
use rmsprop_testfns::Objective;

/// What an observer asks of the loop after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// End the run after this step (Ctrl-C); the steps taken are kept.
    Stop,
}

/// One step, as observers see it.
pub struct StepView<'a> {
    /// Steps taken, this one included (1 after the first step of a fresh run).
    pub step: u64,
    /// The point after the step.
    pub x: &'a [f64],
    /// The point before it.
    pub before: &'a [f64],
    /// The gradient the optimizer stepped with (after clipping).
    pub gradient: &'a [f64],
    /// The optimizer, after the step.
    pub optimizer: &'a dyn Checkpointable<f64>,
}

/// Watches a run: `init` before the first step, `iter` after each, `finish` after the last
/// (also after a stop).
pub trait Observe {
    /// The start (`step` steps already taken: non-zero when resuming).
    ///
    /// # Errors
    /// Ends the run before it starts.
    fn init(&mut self, step: u64, x: &[f64]) -> Result<()> {
        let _ = (step, x);
        Ok(())
    }
    /// After each step.
    ///
    /// # Errors
    /// Ends the run with this error.
    fn iter(&mut self, s: &StepView<'_>) -> Result<Control>;
    /// After the last step.
    ///
    /// # Errors
    /// Returned by the run.
    fn finish(&mut self, step: u64, x: &[f64], optimizer: &dyn Checkpointable<f64>) -> Result<()> {
        let _ = (step, x, optimizer);
        Ok(())
    }
}

/// The loop: an objective, optional gradient clipping, and observers.
pub struct Runner<'a> {
    objective: &'a dyn Objective,
    clip: Option<f64>,
    observers: Vec<&'a mut dyn Observe>,
}

impl<'a> Runner<'a> {
    /// A loop on `objective`.
    pub fn new(objective: &'a dyn Objective) -> Self {
        Self {
            objective,
            clip: None,
            observers: Vec::new(),
        }
    }

    /// Clips each gradient's L2 norm to `max` (PyTorch's `clip_grad_norm_`) when given.
    pub fn with_clip(mut self, max: Option<f64>) -> Self {
        self.clip = max;
        self
    }

    /// Adds an observer (called in the order added).
    pub fn observe(mut self, observer: &'a mut dyn Observe) -> Self {
        self.observers.push(observer);
        self
    }

    /// Steps `x` from step `first` (the gradient at step `k` is the objective's
    /// [`gradient_at`](Objective::gradient_at)`(x, k)`) up to step `last`, or until an observer
    /// stops it; returns the steps taken by then (`first` included).
    ///
    /// # Errors
    /// A step the optimizer refuses (with its number), or an observer's error.
    pub fn run(
        mut self,
        optimizer: &mut dyn Checkpointable<f64>,
        x: &mut Vec<f64>,
        first: u64,
        last: u64,
    ) -> Result<u64> {
        for o in &mut self.observers {
            o.init(first, x)?;
        }
        let mut done = first;
        let mut before = x.clone();
        while done < last {
            let mut g = self.objective.gradient_at(x, done);
            if let Some(max) = self.clip {
                rmsprop::clip::clip_grad_norm(&mut [&mut g[..]], max, 2.0);
            }
            before.clone_from(x);
            optimizer
                .step_single(x, &g)
                .with_context(|| format!("step {}", done + 1))?;
            done += 1;
            let view = StepView {
                step: done,
                x,
                before: &before,
                gradient: &g,
                optimizer: &*optimizer,
            };
            let mut stop = false;
            for o in &mut self.observers {
                stop |= o.iter(&view)? == Control::Stop;
            }
            if stop {
                break;
            }
        }
        for o in &mut self.observers {
            o.finish(done, x, &*optimizer)?;
        }
        Ok(done)
    }
}

/// The progress bar and Ctrl-C: calls `tick` with the steps taken every 1,000 steps (and the
/// rest at the end), and stops the run when `stop` says so.
pub struct Progress<'a> {
    tick: &'a dyn Fn(u64),
    stop: &'a dyn Fn() -> bool,
    pending: u64,
}

impl<'a> Progress<'a> {
    /// Reports to `tick`, polls `stop` after every step.
    pub fn new(tick: &'a dyn Fn(u64), stop: &'a dyn Fn() -> bool) -> Self {
        Self {
            tick,
            stop,
            pending: 0,
        }
    }
}

impl Observe for Progress<'_> {
    fn iter(&mut self, _: &StepView<'_>) -> Result<Control> {
        self.pending += 1;
        if self.pending == 1000 {
            (self.tick)(1000);
            self.pending = 0;
        }
        Ok(if (self.stop)() {
            Control::Stop
        } else {
            Control::Continue
        })
    }
    fn finish(&mut self, _: u64, _: &[f64], _: &dyn Checkpointable<f64>) -> Result<()> {
        (self.tick)(self.pending);
        self.pending = 0;
        Ok(())
    }
}

/// Saves the optimizer and the point to `path` every `every` steps and at the end (atomically,
/// in the project's checkpoint format).
pub struct Checkpoints {
    path: PathBuf,
    every: u64,
}

impl Checkpoints {
    /// Every `every` steps (at least 1) and at the end.
    pub fn new(path: PathBuf, every: u64) -> Self {
        Self {
            path,
            every: every.max(1),
        }
    }

    fn save(&self, optimizer: &dyn Checkpointable<f64>, x: &[f64]) -> Result<()> {
        rmsprop::checkpoint::save(&self.path, optimizer, Some(&[x]))
            .with_context(|| format!("--checkpoint {}", self.path.display()))
    }
}

impl Observe for Checkpoints {
    fn iter(&mut self, s: &StepView<'_>) -> Result<Control> {
        if s.step % self.every == 0 {
            self.save(s.optimizer, s.x)?;
        }
        Ok(Control::Continue)
    }
    fn finish(&mut self, _: u64, x: &[f64], optimizer: &dyn Checkpointable<f64>) -> Result<()> {
        self.save(optimizer, x)
    }
}
