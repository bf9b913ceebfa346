//! A step that fails or is skipped changes nothing anywhere: parameters, state, learning rates,
//! schedule position and counters, through every wrapper.

use rmsprop::schedule::{Scheduled, StepLr};
use rmsprop::{
    Accumulate, Adam, AdamConfig, Error, Execution, NonFinitePolicy, Optimizer, ParamGroups,
    RmsProp, RmsPropConfig,
};

fn policy(p: NonFinitePolicy) -> Execution {
    Execution::sequential().with_non_finite(p)
}

/// Everything observable about an optimizer: counters, rates and every state buffer's bits.
fn observe(opt: &dyn Optimizer<f64>, tensors: usize) -> Vec<u64> {
    let mut out = vec![opt.steps(), opt.skipped_steps()];
    for g in 0..opt.group_count() {
        out.push(opt.group_learning_rate(g).to_bits());
    }
    for i in 0..tensors {
        for (_, b) in opt.state_buffers(i) {
            out.extend(b.iter().map(|x| x.to_bits()));
        }
    }
    out
}

fn groups() -> ParamGroups<f64, RmsProp<f64>> {
    let mut g = ParamGroups::new();
    g.add_group(
        "weights",
        1,
        RmsProp::new(RmsPropConfig::pytorch().with_momentum(0.9)).unwrap(),
    );
    g.add_group(
        "bias",
        1,
        RmsProp::new(RmsPropConfig::keras().with_centered(true)).unwrap(),
    );
    g
}

#[test]
fn a_nan_in_one_group_under_skip_skips_every_group_and_counts_once() {
    let mut opt = groups();
    opt.set_execution(policy(NonFinitePolicy::Skip));
    let (mut w, mut b) = (vec![1.0, -2.0], vec![0.5]);
    opt.step(&mut [&mut w, &mut b], &[&[0.1, 0.2], &[0.3]])
        .unwrap();
    let before = (observe(&opt, 2), w.clone(), b.clone());
    let group_steps: Vec<u64> = opt.groups().iter().map(|g| g.optimizer.steps()).collect();

    // The NaN is in the second group only: the first group must not step either.
    opt.step(&mut [&mut w, &mut b], &[&[0.1, 0.2], &[f64::NAN]])
        .unwrap();
    assert_eq!((w.clone(), b.clone()), (before.1.clone(), before.2.clone()));
    let after = observe(&opt, 2);
    assert_eq!(after[0], before.0[0], "steps");
    assert_eq!(after[1], before.0[1] + 1, "one skipped step");
    assert_eq!(after[2..], before.0[2..], "rates and every state buffer");
    let group_steps_after: Vec<u64> = opt.groups().iter().map(|g| g.optimizer.steps()).collect();
    assert_eq!(group_steps_after, group_steps);

    // Under Error, the same step fails and changes nothing at all.
    opt.set_execution(policy(NonFinitePolicy::Error));
    let before = observe(&opt, 2);
    let err = opt
        .step(&mut [&mut w, &mut b], &[&[f64::INFINITY, 0.2], &[0.3]])
        .unwrap_err();
    assert!(matches!(err, Error::NonFiniteGradient { index: 0, .. }));
    assert_eq!(observe(&opt, 2), before);
}

fn scheduled() -> Scheduled<ParamGroups<f64, RmsProp<f64>>, StepLr> {
    Scheduled::new(
        groups(),
        StepLr {
            step_size: 1,
            gamma: 0.5,
        },
    )
}

#[test]
fn a_failing_or_skipped_scheduled_step_leaves_rates_and_position_alone() {
    let mut opt = scheduled();
    let (mut w, mut b) = (vec![1.0, -2.0], vec![0.5]);
    for _ in 0..2 {
        opt.step(&mut [&mut w, &mut b], &[&[0.1, 0.2], &[0.3]])
            .unwrap();
    }
    assert_eq!(opt.scheduled_steps(), 2);
    let rates = (opt.group_learning_rate(0), opt.group_learning_rate(1));
    assert_eq!(rates, (0.01 * 0.5, 0.001 * 0.5)); // the rates of step 1

    // A NaN under the Error policy: the step fails before the schedule moves.
    let before = observe(&opt, 2);
    assert!(opt
        .step(&mut [&mut w, &mut b], &[&[0.1, f64::NAN], &[0.3]])
        .is_err());
    assert_eq!(observe(&opt, 2), before);
    assert_eq!(opt.scheduled_steps(), 2);

    // Under Skip: skipped once, rates and position unchanged.
    opt.set_execution(policy(NonFinitePolicy::Skip));
    opt.step(&mut [&mut w, &mut b], &[&[0.1, 0.2], &[f64::NAN]])
        .unwrap();
    assert_eq!(opt.scheduled_steps(), 2);
    assert_eq!(
        (opt.group_learning_rate(0), opt.group_learning_rate(1)),
        rates
    );
    assert_eq!(opt.skipped_steps(), 1);

    // The next good step uses step 2's rates, as if nothing had happened.
    opt.step(&mut [&mut w, &mut b], &[&[0.1, 0.2], &[0.3]])
        .unwrap();
    assert_eq!(opt.group_learning_rate(0), 0.01 * 0.25);
    assert_eq!(opt.scheduled_steps(), 3);
}

#[test]
fn a_schedule_giving_an_invalid_rate_fails_before_anything_changes() {
    struct Negative;
    impl rmsprop::schedule::Schedule for Negative {
        fn lr(&self, base: f64, step: u64) -> f64 {
            if step == 1 {
                -base
            } else {
                base
            }
        }
    }
    let mut opt = Scheduled::new(groups(), Negative);
    let (mut w, mut b) = (vec![1.0, -2.0], vec![0.5]);
    opt.step(&mut [&mut w, &mut b], &[&[0.1, 0.2], &[0.3]])
        .unwrap();
    let before = (observe(&opt, 2), w.clone(), b.clone());
    let err = opt
        .step(&mut [&mut w, &mut b], &[&[0.1, 0.2], &[0.3]])
        .unwrap_err();
    assert!(err.to_string().contains("`lr`"), "{err}");
    assert_eq!((observe(&opt, 2), w, b), before);
    assert_eq!(opt.scheduled_steps(), 1);
}

#[test]
fn accumulate_counts_dropped_micro_batches_and_keeps_its_window() {
    let mut opt = Accumulate::new(Adam::<f64>::new(AdamConfig::pytorch()).unwrap(), 2).unwrap();
    opt.set_execution(policy(NonFinitePolicy::Skip));
    let mut x = vec![1.0, 2.0];
    opt.step_single(&mut x, &[0.5, 0.5]).unwrap();
    assert_eq!(opt.pending(), 1);
    // A NaN micro-batch is dropped and counted; the window keeps the first micro-batch.
    opt.step_single(&mut x, &[f64::NAN, 0.5]).unwrap();
    assert_eq!((opt.pending(), opt.dropped_micro_batches()), (1, 1));
    assert_eq!(x, [1.0, 2.0]);
    // The window completes with the next good micro-batch: the mean of 0.5 and 1.5.
    opt.step_single(&mut x, &[1.5, 1.5]).unwrap();
    let mut reference = Adam::<f64>::new(AdamConfig::pytorch()).unwrap();
    let mut y = vec![1.0, 2.0];
    reference.step_single(&mut y, &[1.0, 1.0]).unwrap();
    assert_eq!(x, y);
    assert_eq!(opt.pending(), 0);
}

#[test]
fn an_overflowing_sum_fails_without_losing_the_window() {
    let mut opt =
        Accumulate::new(RmsProp::<f32>::new(RmsPropConfig::pytorch()).unwrap(), 3).unwrap();
    let mut x = vec![1.0f32];
    opt.step_single(&mut x, &[3e38]).unwrap();
    // Finite, but the running sum would overflow to infinity: refused (Error policy)...
    let err = opt.step_single(&mut x, &[3e38]).unwrap_err();
    assert!(matches!(err, Error::NonFiniteGradient { .. }), "{err}");
    assert_eq!(opt.pending(), 1);
    // ...and the window is intact: two more micro-batches complete it with the mean
    // (3e38 + (-3e38) + 3e38) / 3.
    opt.step_single(&mut x, &[-3e38]).unwrap();
    opt.step_single(&mut x, &[3e38]).unwrap();
    let mut reference = RmsProp::<f32>::new(RmsPropConfig::pytorch()).unwrap();
    let mut y = vec![1.0f32];
    reference
        .step_single(&mut y, &[((3e38f32 + -3e38) + 3e38) / 3.0])
        .unwrap();
    assert_eq!(x, y);
    assert_eq!(opt.steps(), 1);
}

#[test]
fn a_micro_batch_dropped_below_a_schedule_does_not_advance_it() {
    let inner = Accumulate::new(RmsProp::<f32>::new(RmsPropConfig::pytorch()).unwrap(), 2).unwrap();
    let mut opt = Scheduled::new(
        inner,
        StepLr {
            step_size: 1,
            gamma: 0.5,
        },
    );
    opt.set_execution(Execution::sequential().with_non_finite(NonFinitePolicy::Skip));
    let mut x = vec![1.0f32];
    opt.step_single(&mut x, &[3e38]).unwrap();
    assert_eq!(opt.scheduled_steps(), 1);
    let rate = opt.learning_rate();
    // Finite, but the sum overflows: Accumulate drops it; the schedule must not move either.
    opt.step_single(&mut x, &[3e38]).unwrap();
    assert_eq!(opt.inner().dropped_micro_batches(), 1);
    assert_eq!(opt.scheduled_steps(), 1);
    assert_eq!(opt.learning_rate(), rate);
    assert_eq!(opt.skipped_steps(), 1);
}
