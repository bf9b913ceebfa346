//! The training loop: param groups, schedules on optimizers, gradient clipping (against PyTorch's
//! recorded `clip_grad_norm_` / `clip_grad_value_`, `reference/clipping.json` from
//! `tools/reference/clipping.py`) and gradient accumulation.

use rmsprop::clip::{clip_by_norm_per_tensor, clip_by_value, clip_grad_norm, norm};
use rmsprop::schedule::{ExponentialLr, Scheduled, StepLr};
use rmsprop::{
    Accumulate, Adam, AdamConfig, Error, MomentumStyle, Optimizer, ParamGroups, RmsProp,
    RmsPropConfig, Sgd, SgdConfig, WeightDecayStyle,
};
use serde_json::Value;

fn grad_of(x: &[f64], k: usize) -> Vec<f64> {
    x.iter()
        .enumerate()
        .map(|(i, v)| 2.0 * v + ((k + i) as f64 * 0.37).sin())
        .collect()
}

#[test]
fn groups_step_like_separate_optimizers_with_their_own_hyperparameters() {
    let base = RmsPropConfig::pytorch().with_lr(0.01).with_momentum(0.9);
    let decayed = base
        .clone()
        .with_weight_decay(0.1, WeightDecayStyle::Coupled);
    let slow = base.clone().with_lr(0.001);
    let mut groups = ParamGroups::<f64, RmsProp<f64>>::new();
    groups.add_group("weights", 2, RmsProp::new(decayed.clone()).unwrap());
    groups.add_group("bias", 1, RmsProp::new(slow.clone()).unwrap());

    let (mut w1, mut w2, mut b) = (vec![1.0, 2.0], vec![-1.0; 3], vec![0.5]);
    let (mut r1, mut r2, mut rb) = (w1.clone(), w2.clone(), b.clone());
    let mut sep_w = RmsProp::<f64>::new(decayed).unwrap();
    let mut sep_b = RmsProp::<f64>::new(slow).unwrap();
    for k in 0..10 {
        let (g1, g2, gb) = (grad_of(&w1, k), grad_of(&w2, k), grad_of(&b, k));
        groups
            .step(&mut [&mut w1, &mut w2, &mut b], &[&g1, &g2, &gb])
            .unwrap();
        sep_w.step(&mut [&mut r1, &mut r2], &[&g1, &g2]).unwrap();
        sep_b.step_single(&mut rb, &gb).unwrap();
    }
    assert_eq!((&w1, &w2, &b), (&r1, &r2, &rb));
    assert_eq!(groups.group_count(), 2);
    assert_eq!(groups.state_buffers(2), sep_b.state_buffers(0));

    // Change a group's hyperparameters between steps, and add a group later.
    groups
        .group_mut("bias")
        .unwrap()
        .optimizer
        .set_learning_rate(0.1)
        .unwrap();
    assert_eq!(groups.group_learning_rate(1), 0.1);
    groups.add_group("head", 1, RmsProp::new(base).unwrap());
    let mut h = vec![3.0];
    let (g1, g2, gb, gh) = (
        grad_of(&w1, 0),
        grad_of(&w2, 0),
        grad_of(&b, 0),
        grad_of(&h, 0),
    );
    groups
        .step(
            &mut [&mut w1, &mut w2, &mut b, &mut h],
            &[&g1, &g2, &gb, &gh],
        )
        .unwrap();
    assert!(h[0] < 3.0);
    assert_eq!(groups.groups()[2].optimizer.steps(), 1);
    assert_eq!(groups.steps(), 11);
}

#[test]
fn a_bad_tensor_in_a_later_group_changes_nothing_in_earlier_groups() {
    let mut groups = ParamGroups::<f32, Box<dyn Optimizer<f32>>>::new();
    groups.add_group("a", 1, Box::new(Adam::new(AdamConfig::pytorch()).unwrap()));
    groups.add_group(
        "b",
        2,
        Box::new(Sgd::new(SgdConfig::momentum(0.1, 0.9)).unwrap()),
    );
    let (mut a, mut b1, mut b2) = (vec![1.0f32; 2], vec![1.0f32; 3], vec![1.0f32; 4]);
    let (g2, g3, g4, g5) = (
        vec![0.1f32; 2],
        vec![0.1f32; 3],
        vec![0.1f32; 4],
        vec![0.1f32; 5],
    );
    groups
        .step(&mut [&mut a, &mut b1, &mut b2], &[&g2, &g3, &g4])
        .unwrap();
    let snapshot = (a.clone(), groups.state_buffers(0)[0].1.to_vec());
    let err = groups
        .step(&mut [&mut a, &mut b1, &mut b2], &[&g2, &g3, &g5])
        .unwrap_err();
    assert_eq!(
        err,
        Error::GradientLength {
            index: 2,
            params: 4,
            grads: 5
        }
    );
    assert_eq!(snapshot, (a.clone(), groups.state_buffers(0)[0].1.to_vec()));
    let err = groups
        .step(&mut [&mut a, &mut b1], &[&g2, &g3])
        .unwrap_err();
    assert_eq!(
        err,
        Error::TensorCount {
            state: 3,
            params: 2
        }
    );
}

#[test]
fn a_schedule_sets_each_groups_rate_from_its_own_base() {
    let mut groups = ParamGroups::<f64, Sgd<f64>>::new();
    groups.add_group("fast", 1, Sgd::new(SgdConfig::plain(0.1)).unwrap());
    groups.add_group("slow", 1, Sgd::new(SgdConfig::plain(0.01)).unwrap());
    let mut opt = Scheduled::new(
        groups,
        StepLr {
            step_size: 2,
            gamma: 0.5,
        },
    );
    let (mut a, mut b) = (vec![0.0], vec![0.0]);
    let mut seen = vec![];
    for _ in 0..5 {
        opt.step(&mut [&mut a, &mut b], &[&[1.0], &[1.0]]).unwrap();
        seen.push((opt.group_learning_rate(0), opt.group_learning_rate(1)));
    }
    assert_eq!(
        seen,
        vec![
            (0.1, 0.01),
            (0.1, 0.01),
            (0.05, 0.005),
            (0.05, 0.005),
            (0.025, 0.0025)
        ]
    );
    let expected_a: f64 = -(0.1 + 0.1 + 0.05 + 0.05 + 0.025);
    assert!((a[0] - expected_a).abs() < 1e-15);
}

#[test]
fn lr_inside_and_outside_momentum_part_under_a_schedule() {
    // Under a decaying schedule, PyTorch's buffer (lr outside) applies the new rate to the whole
    // velocity at once; Keras' (lr inside) keeps old contributions at their old rates, so it
    // moves farther. With a constant rate the two agree to rounding.
    let run = |style: MomentumStyle, gamma: f64| {
        let c = RmsPropConfig::pytorch()
            .with_lr(0.01)
            .with_momentum(0.9)
            .with_momentum_style(style);
        let mut opt = Scheduled::new(RmsProp::<f64>::new(c).unwrap(), ExponentialLr { gamma });
        let mut x = [0.0];
        for _ in 0..50 {
            opt.step_single(&mut x, &[1.0]).unwrap();
        }
        x[0]
    };
    let (outside, inside) = (
        run(MomentumStyle::LrOutside, 1.0),
        run(MomentumStyle::LrInside, 1.0),
    );
    assert!(
        (outside - inside).abs() < 1e-13 * outside.abs(),
        "{outside} {inside}"
    );
    let (outside, inside) = (
        run(MomentumStyle::LrOutside, 0.9),
        run(MomentumStyle::LrInside, 0.9),
    );
    assert!(inside < outside - 1e-3, "{outside} {inside}");
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

fn check_clipping<T: rmsprop::Float>(case: &Value, rel: f64) {
    let mut grads: Vec<Vec<T>> = rows(&case["grads"])
        .iter()
        .map(|r| r.iter().map(|&x| T::from_f64(x)).collect())
        .collect();
    let mut views: Vec<&mut [T]> = grads.iter_mut().map(|g| g.as_mut_slice()).collect();
    if case["kind"] == "norm" {
        let norm_type = match &case["norm_type"] {
            Value::String(s) if s == "inf" => f64::INFINITY,
            v => v.as_f64().unwrap(),
        };
        let total = clip_grad_norm(&mut views, case["max_norm"].as_f64().unwrap(), norm_type);
        let want = case["total_norm"].as_f64().unwrap();
        assert!(
            (total - want).abs() <= rel * want,
            "total norm {total} vs {want}"
        );
    } else {
        clip_by_value(&mut views, case["limit"].as_f64().unwrap());
    }
    for (ours, theirs) in grads.iter().zip(rows(&case["clipped"])) {
        for (&o, t) in ours.iter().zip(theirs) {
            assert!(
                (o.to_f64() - t).abs() <= rel * t.abs(),
                "{} vs {t} in {case}",
                o.to_f64()
            );
        }
    }
}

#[test]
fn clipping_matches_pytorch() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../reference/clipping.json"
    ))
    .unwrap();
    let data: Value = serde_json::from_str(&text).unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 30);
    for case in cases {
        // PyTorch accumulates float32 norms in float32; we accumulate in float64.
        if case["dtype"] == "float32" {
            check_clipping::<f32>(case, 1e-6);
        } else {
            check_clipping::<f64>(case, 1e-14);
        }
    }
}

#[test]
fn per_tensor_norm_clipping_and_non_finite_norms() {
    let (mut a, mut b) = (vec![30.0f64, 40.0], vec![0.3, 0.4]);
    let norms = clip_by_norm_per_tensor(&mut [&mut a, &mut b], 1.0, 2.0);
    assert_eq!(norms, vec![50.0, 0.5]);
    assert!((norm(&a, 2.0) - 1.0).abs() < 1e-6);
    assert_eq!(b, vec![0.3, 0.4]);
    let mut c = vec![f64::NAN, 1.0];
    let total = clip_grad_norm(&mut [&mut c], 1.0, 2.0);
    assert!(total.is_nan());
    assert_eq!(c[1], 1.0);
}

#[test]
fn accumulation_steps_once_with_the_mean_gradient() {
    let c = RmsPropConfig::keras().with_momentum(0.9);
    let mut acc = Accumulate::new(RmsProp::<f32>::new(c.clone()).unwrap(), 3).unwrap();
    let mut direct = RmsProp::<f32>::new(c).unwrap();
    let (mut x, mut y) = (vec![1.0f32, -1.0], vec![1.0f32, -1.0]);
    for round in 0..4 {
        let micro: Vec<[f32; 2]> = (0..3)
            .map(|j| [0.1 * (round + j) as f32, -0.3 + j as f32])
            .collect();
        for (j, g) in micro.iter().enumerate() {
            let before = x.clone();
            acc.step_single(&mut x, g).unwrap();
            if j < 2 {
                assert_eq!(x, before, "parameters move only on the 3rd micro-batch");
            }
        }
        let mean: Vec<f32> = (0..2)
            .map(|i| ((micro[0][i] + micro[1][i]) + micro[2][i]) / 3.0)
            .collect();
        direct.step_single(&mut y, &mean).unwrap();
        assert_eq!(x, y);
    }
    assert_eq!(acc.steps(), 4);
    assert!(Accumulate::new(Sgd::<f32>::new(SgdConfig::plain(0.1)).unwrap(), 0).is_err());
}
