//! One optimizer on one objective: the [`Runner`](crate::runner::Runner) with a recorder of
//! the path, the gaps, the step lengths and RMSProp's square average.

use anyhow::Result;
use rmsprop::checkpoint::Checkpointable;
use rmsprop::{Execution, NonFinitePolicy};
use rmsprop_testfns::Objective;

use crate::runner::{Control, Observe, Progress, Runner, StepView};

/// One run's record.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// The path, start included.
    pub path: Vec<Vec<f64>>,
    /// f - f_min at every step (at that step's time), start included.
    pub gaps: Vec<f64>,
    /// |x_{k+1} - x_k| for every step taken.
    pub step_lengths: Vec<f64>,
    /// RMSProp's square average `v` per coordinate after every step (empty for optimizers
    /// without one).
    pub square_avg: Vec<Vec<f64>>,
}

/// Runs `opt` on `f` for up to `steps` steps from `start` (the [`Runner`]), clipping each
/// gradient's L2 norm to `clip` when given, polling `stop` and calling `tick` every 1,000 steps.
///
/// # Errors
/// When the optimizer rejects a step.
pub fn simulate(
    f: &dyn Objective,
    opt: &mut dyn Checkpointable<f64>,
    start: &[f64],
    (steps, clip): (u64, Option<f64>),
    stop: &dyn Fn() -> bool,
    tick: &dyn Fn(u64),
) -> Result<Trace> {
    opt.set_execution(Execution::sequential().with_non_finite(NonFinitePolicy::Propagate));
    let mut recorder = Recorder {
        f,
        fixed_min: (!f.moving()).then(|| f.minimum_value()),
        trace: Trace::default(),
    };
    let mut progress = Progress::new(tick, stop);
    let mut x = start.to_vec();
    Runner::new(f)
        .with_clip(clip)
        .observe(&mut recorder)
        .observe(&mut progress)
        .run(opt, &mut x, 0, steps)?;
    Ok(recorder.trace)
}

/// Records a [`Trace`] (the observer behind [`simulate`]).
pub(super) struct Recorder<'f> {
    f: &'f dyn Objective,
    /// f_min when the minimum does not move.
    fixed_min: Option<f64>,
    trace: Trace,
}

impl Recorder<'_> {
    /// f - f_min at `x` at time `t`.
    fn gap(&self, x: &[f64], t: u64) -> f64 {
        let f_min = self
            .fixed_min
            .unwrap_or_else(|| self.f.value_at(&self.f.minimum_at(t), t));
        self.f.value_at(x, t) - f_min
    }
}

impl Observe for Recorder<'_> {
    fn init(&mut self, step: u64, x: &[f64]) -> Result<()> {
        self.trace.gaps.push(self.gap(x, step));
        self.trace.path.push(x.to_vec());
        Ok(())
    }
    fn iter(&mut self, s: &StepView<'_>) -> Result<Control> {
        let t = &mut self.trace;
        t.step_lengths.push(
            s.x.iter()
                .zip(s.before)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt(),
        );
        let gap = self.gap(s.x, s.step);
        self.trace.gaps.push(gap);
        self.trace.path.push(s.x.to_vec());
        if let Some((_, v)) = s
            .optimizer
            .state_buffers(0)
            .into_iter()
            .find(|(name, _)| *name == "square_avg")
        {
            self.trace.square_avg.push(v.to_vec());
        }
        Ok(Control::Continue)
    }
}
