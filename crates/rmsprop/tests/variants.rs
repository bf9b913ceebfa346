//! Every RMSProp option, checked against its formula written out independently here.
//!
//! The expected values are computed in this file in the documented operation order, so the
//! comparisons are exact (`assert_eq!` on floats) unless a test says otherwise.

#![allow(clippy::assign_op_pattern)] // formulas are written as in the papers: `x = x - u`

use rmsprop::{
    EpsPlacement, Error, HyperparameterPrecision, MomentumStyle, OperationOrder, Optimizer,
    RmsProp, RmsPropConfig, State, TensorState, WeightDecayStyle,
};

fn run<T: rmsprop::Float>(config: RmsPropConfig, p0: &[T], grads: &[&[T]]) -> (Vec<T>, RmsProp<T>) {
    let mut opt = RmsProp::<T>::new(config).unwrap();
    let mut p = p0.to_vec();
    for g in grads {
        opt.step_single(&mut p, g).unwrap();
    }
    (p, opt)
}

const G: [f64; 4] = [0.5, -2.0, 1e-3, 0.0];
const P: [f64; 4] = [1.0, -1.5, 2.0, 0.25];

#[test]
fn eps_outside_and_inside_the_root() {
    let base = RmsPropConfig::pytorch().with_lr(0.1).with_rho(0.9);
    let (lr, rho, eps) = (0.1, 0.9, 1e-3);
    for placement in [EpsPlacement::Outside, EpsPlacement::Inside] {
        let (p, _) = run(base.clone().with_eps(eps, placement), &P, &[&G]);
        for i in 0..4 {
            let v = 0.0 * rho + ((1.0 - rho) * G[i]) * G[i];
            let d = match placement {
                EpsPlacement::Outside => v.sqrt() + eps,
                EpsPlacement::Inside => (v + eps).sqrt(),
            };
            assert_eq!(p[i], P[i] - (lr * G[i]) / d, "{placement:?} coordinate {i}");
        }
    }
    let (a, _) = run(base.clone().with_eps(eps, EpsPlacement::Outside), &P, &[&G]);
    let (b, _) = run(base.with_eps(eps, EpsPlacement::Inside), &P, &[&G]);
    assert_ne!(a, b);
}

#[test]
fn initial_square_avg_is_the_starting_value() {
    let c = RmsPropConfig::pytorch().with_initial_square_avg(1.0);
    let (p, opt) = run(c, &P, &[&G]);
    for i in 0..4 {
        let v = 1.0 * 0.99 + ((1.0 - 0.99) * G[i]) * G[i];
        assert_eq!(opt.square_avg(0).unwrap()[i], v);
        assert_eq!(p[i], P[i] - (0.01 * G[i]) / (v.sqrt() + 1e-8));
    }
}

#[test]
fn centered_divides_by_the_running_variance() {
    for order in [OperationOrder::Torch, OperationOrder::Keras] {
        let c = RmsPropConfig::pytorch()
            .with_centered(true)
            .with_operation_order(order);
        let (p, opt) = run(c, &P, &[&G, &G]);
        let omr = 1.0 - 0.99;
        for i in 0..4 {
            let (mut v, mut m, mut x) = (0.0f64, 0.0f64, P[i]);
            for _ in 0..2 {
                let g = G[i];
                if order == OperationOrder::Torch {
                    v = v * 0.99 + (omr * g) * g;
                    m = m + (g - m) * omr;
                } else {
                    v = 0.99 * v + omr * (g * g);
                    m = 0.99 * m + omr * g;
                }
                x = x - (0.01 * g) / ((v - m * m).sqrt() + 1e-8);
            }
            assert_eq!(
                (
                    opt.square_avg(0).unwrap()[i],
                    opt.grad_avg(0).unwrap()[i],
                    p[i]
                ),
                (v, m, x),
                "{order:?} {i}"
            );
        }
    }
}

#[test]
fn clamp_variance_prevents_nan_from_a_negative_difference() {
    // square_avg 0 and grad_avg 1 make v - m^2 negative at the next zero gradient.
    // Buffers in layout order: square_avg, grad_avg.
    let state = State {
        steps: 1,
        tensors: vec![TensorState {
            step: 1,
            len: 1,
            buffers: vec![vec![0.0], vec![1.0]],
        }],
    };
    for clamp in [false, true] {
        let c = RmsPropConfig::pytorch()
            .with_centered(true)
            .with_clamp_variance(clamp);
        let mut opt = RmsProp::<f64>::new(c).unwrap();
        opt.set_state(state.clone()).unwrap();
        let mut p = [1.0];
        opt.step_single(&mut p, &[0.0]).unwrap();
        if clamp {
            assert_eq!(p, [1.0]);
        } else {
            assert!(p[0].is_nan());
        }
    }
}

#[test]
fn momentum_lr_outside_and_inside_agree_until_lr_changes() {
    let (lr1, lr2, mu, g) = (0.1f64, 0.02f64, 0.9f64, 0.5f64);
    let mut results = vec![];
    for style in [MomentumStyle::LrOutside, MomentumStyle::LrInside] {
        let c = RmsPropConfig::pytorch()
            .with_lr(lr1)
            .with_rho(0.5)
            .with_eps(0.0, EpsPlacement::Outside)
            .with_momentum(mu)
            .with_momentum_style(style);
        let mut opt = RmsProp::<f64>::new(c).unwrap();
        let mut p = [0.0];
        opt.step_single(&mut p, &[g]).unwrap();
        let after_one = p[0];
        opt.set_learning_rate(lr2).unwrap();
        opt.step_single(&mut p, &[g]).unwrap();
        results.push((after_one, p[0], opt.momentum_buffer(0).unwrap()[0]));
    }
    // |g| / sqrt(v) with v = (1-rho) g^2 at step 1 and (rho(1-rho) + (1-rho)) g^2 at step 2.
    let q1 = g / ((0.5 * g * g).sqrt());
    let q2 = g / ((0.5 * (0.5 * g * g) + 0.5 * (g * g)).sqrt());
    let (out, inn) = (results[0], results[1]);
    assert_eq!(out.0, 0.0 - lr1 * q1);
    assert_eq!(inn.0, 0.0 - (lr1 * g) / (0.5 * g * g).sqrt());
    assert!(
        (out.0 - inn.0).abs() < 1e-15,
        "same after one step at constant lr"
    );
    // LrOutside: the new lr scales the whole buffer; LrInside: only the new contribution.
    assert_eq!(out.2, mu * q1 + q2);
    assert!((out.1 - (out.0 - lr2 * (mu * q1 + q2))).abs() < 1e-15);
    assert!((inn.1 - (inn.0 - (mu * lr1 * q1 + lr2 * q2))).abs() < 1e-15);
    assert!((out.1 - inn.1).abs() > 0.05, "{out:?} {inn:?}");
}

#[test]
fn nesterov_looks_ahead_in_both_styles() {
    for style in [MomentumStyle::LrOutside, MomentumStyle::LrInside] {
        let c = RmsPropConfig::keras()
            .with_hyperparameter_precision(HyperparameterPrecision::Native)
            .with_nesterov(0.9)
            .with_momentum_style(style);
        let (p, opt) = run(c, &P, &[&G, &G]);
        for i in 0..4 {
            let (mut v, mut b, mut x) = (0.0f64, 0.0f64, P[i]);
            for _ in 0..2 {
                let g = G[i];
                v = 0.9 * v + (1.0 - 0.9) * (g * g);
                let d = (v + 1e-7).sqrt();
                x = match style {
                    MomentumStyle::LrOutside => {
                        let q = g / d;
                        b = 0.9 * b + q;
                        x - 0.001 * (q + 0.9 * b)
                    }
                    MomentumStyle::LrInside => {
                        let u = (0.001 * g) / d;
                        b = 0.9 * b + u;
                        x - (u + 0.9 * b)
                    }
                };
            }
            assert_eq!(p[i], x, "{style:?} {i}");
            assert_eq!(opt.momentum_buffer(0).unwrap()[i], b);
        }
    }
}

#[test]
fn weight_decay_coupled_and_decoupled() {
    let (lr, wd) = (0.01, 0.1);
    // Coupled: the gradient gets wd*p before everything else.
    let (p, _) = run(
        RmsPropConfig::pytorch().with_weight_decay(wd, WeightDecayStyle::Coupled),
        &P,
        &[&G],
    );
    for i in 0..4 {
        let g = G[i] + wd * P[i];
        let v = ((1.0 - 0.99) * g) * g;
        assert_eq!(p[i], P[i] - (lr * g) / (v.sqrt() + 1e-8));
    }
    // Decoupled (timm, PyTorch AdamW form): p * (1 - lr*wd), then the plain update.
    let (p, _) = run(
        RmsPropConfig::pytorch().with_weight_decay(wd, WeightDecayStyle::Decoupled),
        &P,
        &[&G],
    );
    for i in 0..4 {
        let v = ((1.0 - 0.99) * G[i]) * G[i];
        assert_eq!(
            p[i],
            P[i] * (1.0 - lr * wd) - (lr * G[i]) / (v.sqrt() + 1e-8)
        );
    }
    // Decoupled, Keras form: p - (p*wd)*lr with Keras's float32 learning rate.
    let (p, _) = run(
        RmsPropConfig::keras().with_weight_decay(wd, WeightDecayStyle::Decoupled),
        &P,
        &[&G],
    );
    let klr = 0.001f32 as f64;
    for i in 0..4 {
        let x = P[i] - (P[i] * wd) * klr;
        let v = 0.9 * 0.0 + (1.0 - 0.9) * (G[i] * G[i]);
        assert_eq!(p[i], x - (klr * G[i]) / (v + 1e-7).sqrt());
    }
}

#[test]
fn maximize_equals_minimizing_the_negated_gradient() {
    let neg: Vec<f64> = G.iter().map(|g| -g).collect();
    for preset in [
        RmsPropConfig::pytorch(),
        RmsPropConfig::keras(),
        RmsPropConfig::optax(),
    ] {
        let c = preset.with_momentum(0.5).with_centered(true);
        let (a, _) = run(c.clone().with_maximize(true), &P, &[&G, &G]);
        let (b, _) = run(c, &P, &[&neg, &neg]);
        assert_eq!(a, b);
    }
}

#[test]
fn bias_correction_divides_by_one_minus_rho_to_the_t() {
    let c = RmsPropConfig::optax()
        .with_bias_correction(true)
        .with_eps(1e-8, EpsPlacement::Outside);
    let (p, _) = run(c, &P, &[&G, &G]);
    for i in 0..4 {
        let mut v = 0.0f64;
        let mut x = P[i];
        for t in 1..=2 {
            v = 0.9 * v + (1.0 - 0.9) * (G[i] * G[i]);
            let r = 1.0 / (1.0 - 0.9f64.powf(t as f64));
            let s = 1.0 / ((v * r).sqrt() + 1e-8);
            x = x - 0.01 * (s * G[i]);
        }
        assert_eq!(p[i], x, "{i}");
    }
    // With a constant gradient, the corrected square average is exactly g^2 at every step:
    // each step moves by almost exactly lr.
    let (p, _) = run(
        RmsPropConfig::optax().with_bias_correction(true),
        &[0.0f64],
        &[&[3.0], &[3.0], &[3.0]],
    );
    assert!((p[0] + 0.03).abs() < 1e-9, "{}", p[0]);
}

#[test]
fn each_operation_order_follows_its_formula() {
    let (lr, rho, eps, mu) = (0.01f32, 0.9f32, 1e-6f32, 0.5f32);
    let g = [0.3f32, -7.0, 1e-4];
    let p0 = [1.0f32, 2.0, 3.0];
    for order in [
        OperationOrder::Torch,
        OperationOrder::Keras,
        OperationOrder::Optax,
        OperationOrder::Tf1,
    ] {
        let c = RmsPropConfig::pytorch()
            .with_lr(lr as f64)
            .with_rho(rho as f64)
            .with_eps(eps as f64, EpsPlacement::Inside)
            .with_centered(true)
            .with_momentum(mu as f64)
            .with_momentum_style(MomentumStyle::LrInside)
            .with_operation_order(order);
        let (p, _) = run(c, &p0, &[&g, &g]);
        let omr = (1.0f64 - rho as f64) as f32;
        for i in 0..3 {
            let (mut v, mut m, mut b, mut x) = (0.0f32, 0.0f32, 0.0f32, p0[i]);
            for _ in 0..2 {
                let gi = g[i];
                match order {
                    OperationOrder::Torch => {
                        v = v * rho + (omr * gi) * gi;
                        m = m + (gi - m) * omr;
                    }
                    OperationOrder::Keras | OperationOrder::Optax => {
                        v = rho * v + omr * (gi * gi);
                        m = rho * m + omr * gi;
                    }
                    OperationOrder::Tf1 => {
                        v = v + (gi * gi - v) * omr;
                        m = m + (gi - m) * omr;
                    }
                }
                let d = ((v - m * m) + eps).sqrt();
                let u = if order == OperationOrder::Optax {
                    lr * ((1.0 / d) * gi)
                } else {
                    (lr * gi) / d
                };
                b = mu * b + u;
                x = x - b;
            }
            assert_eq!(p[i].to_bits(), x.to_bits(), "{order:?} {i}");
        }
    }
}

#[test]
fn hyperparameter_precision_rounds_through_f32() {
    let c = RmsPropConfig::pytorch().with_lr(0.001).with_rho(0.9);
    let native = RmsProp::<f64>::new(c.clone()).unwrap().scalars(1);
    assert_eq!(
        (native.lr, native.rho, native.one_minus_rho),
        (0.001, 0.9, 1.0 - 0.9)
    );
    let lr32 = RmsProp::<f64>::new(
        c.clone()
            .with_hyperparameter_precision(HyperparameterPrecision::Float32Lr),
    )
    .unwrap()
    .scalars(1);
    assert_eq!((lr32.lr, lr32.rho), (0.001f32 as f64, 0.9));
    let all32 = RmsProp::<f64>::new(
        c.clone()
            .with_hyperparameter_precision(HyperparameterPrecision::Float32),
    )
    .unwrap()
    .scalars(1);
    assert_eq!((all32.lr, all32.rho), (0.001f32 as f64, 0.9f32 as f64));
    // TF1 computes 1 - decay in the variable's dtype, from the float32 decay.
    assert_eq!(all32.one_minus_rho, 1.0 - 0.9f32 as f64);
    let f32_tf1 =
        RmsProp::<f32>::new(c.with_hyperparameter_precision(HyperparameterPrecision::Float32))
            .unwrap()
            .scalars(1);
    assert_eq!(f32_tf1.one_minus_rho, 1.0f32 - 0.9f32);
    assert_ne!(f32_tf1.one_minus_rho, (1.0f64 - 0.9) as f32);
}

#[test]
fn presets_state_their_frameworks_defaults() {
    let p = RmsPropConfig::pytorch();
    assert_eq!(
        (p.lr, p.rho, p.eps, p.eps_placement),
        (0.01, 0.99, 1e-8, EpsPlacement::Outside)
    );
    assert_eq!(RmsPropConfig::default(), p);
    let k = RmsPropConfig::keras();
    assert_eq!(
        (k.lr, k.rho, k.eps, k.eps_placement),
        (0.001, 0.9, 1e-7, EpsPlacement::Inside)
    );
    assert_eq!(k.weight_decay_style, WeightDecayStyle::Decoupled);
    let t = RmsPropConfig::tf1();
    assert_eq!(
        (
            t.rho,
            t.eps,
            t.initial_square_avg,
            t.hyperparameter_precision
        ),
        (0.9, 1e-10, 1.0, HyperparameterPrecision::Float32)
    );
    let o = RmsPropConfig::optax();
    assert_eq!(
        (o.rho, o.eps, o.eps_placement, o.initial_square_avg),
        (0.9, 1e-8, EpsPlacement::Inside, 0.0)
    );
    let m = RmsPropConfig::timm_tf();
    assert_eq!(
        (m.lr, m.rho, m.eps, m.initial_square_avg, m.momentum_style),
        (0.01, 0.9, 1e-10, 1.0, MomentumStyle::LrInside)
    );
    assert_eq!(m.hyperparameter_precision, HyperparameterPrecision::Native);
    let g = RmsPropConfig::graves();
    assert!(g.centered);
    assert_eq!(
        (g.lr, g.rho, g.eps, g.momentum, g.momentum_style),
        (1e-4, 0.95, 1e-4, 0.9, MomentumStyle::LrInside)
    );
    let l = RmsPropConfig::lesson();
    assert_eq!(
        (l.lr, l.rho, l.eps, l.eps_placement, l.momentum),
        (0.1, 0.9, 1e-6, EpsPlacement::Outside, 0.0)
    );
    for c in [p, k, t, o, m, g, l] {
        c.validate().unwrap();
    }
}

#[test]
fn graves_preset_follows_the_paper() {
    // Graves 2013, eq. 38-41: n = a*n + (1-a)*e^2; g = a*g + (1-a)*e;
    // D = b*D - c*e/sqrt(n - g^2 + k); w = w + D  (a=0.95, b=0.9, c=1e-4, k=1e-4).
    let grads: Vec<[f64; 2]> = (0..50)
        .map(|k| [(k as f64 * 0.7).sin(), 0.1 * (k as f64).cos()])
        .collect();
    let mut opt = RmsProp::<f64>::new(RmsPropConfig::graves()).unwrap();
    let mut w = [0.3, -0.2];
    let (mut n, mut gm, mut delta, mut w_ref) = ([0.0; 2], [0.0; 2], [0.0; 2], [0.3, -0.2]);
    for e in &grads {
        opt.step_single(&mut w, e).unwrap();
        for i in 0..2 {
            n[i] = 0.95 * n[i] + (1.0 - 0.95) * (e[i] * e[i]);
            gm[i] = 0.95 * gm[i] + (1.0 - 0.95) * e[i];
            delta[i] = 0.9 * delta[i] - (1e-4 * e[i]) / ((n[i] - gm[i] * gm[i]) + 1e-4).sqrt();
            w_ref[i] = w_ref[i] + delta[i];
        }
    }
    assert_eq!(w, w_ref);
}

#[test]
fn many_tensors_step_as_if_each_had_its_own_optimizer() {
    let c = RmsPropConfig::optax()
        .with_centered(true)
        .with_nesterov(0.9)
        .with_bias_correction(true);
    let mut together = RmsProp::<f32>::new(c.clone()).unwrap();
    let (mut a1, mut b1) = (vec![1.0f32, 2.0, 3.0], vec![-1.0f32; 5]);
    let (mut a2, mut b2) = (a1.clone(), b1.clone());
    let mut alone_a = RmsProp::<f32>::new(c.clone()).unwrap();
    let mut alone_b = RmsProp::<f32>::new(c).unwrap();
    for k in 0..20 {
        let ga: Vec<f32> = a1.iter().map(|x| x * 2.0 + k as f32 * 0.1).collect();
        let gb: Vec<f32> = b1.iter().map(|x| x.sin()).collect();
        together.step(&mut [&mut a1, &mut b1], &[&ga, &gb]).unwrap();
        alone_a.step_single(&mut a2, &ga).unwrap();
        alone_b.step_single(&mut b2, &gb).unwrap();
    }
    assert_eq!((a1, b1), (a2, b2));
    assert_eq!(together.steps(), 20);
}

#[test]
fn empty_tensors_are_a_no_op() {
    let mut opt = RmsProp::<f64>::new(RmsPropConfig::pytorch().with_momentum(0.9)).unwrap();
    let mut empty: [f64; 0] = [];
    let mut x = [1.0];
    opt.step(&mut [&mut empty, &mut x], &[&[], &[1.0]]).unwrap();
    assert!(x[0] < 1.0);
    assert_eq!(opt.square_avg(0).unwrap().len(), 0);
}

#[test]
fn every_hyperparameter_is_validated_by_name() {
    type Setter = fn(RmsPropConfig, f64) -> RmsPropConfig;
    let cases: [(&str, Setter, &[f64]); 6] = [
        ("lr", |c, x| c.with_lr(x), &[-1e-3, f64::NAN, f64::INFINITY]),
        ("rho", |c, x| c.with_rho(x), &[-0.1, 1.0, 1.5, f64::NAN]),
        (
            "eps",
            |c, x| c.with_eps(x, EpsPlacement::Outside),
            &[-1e-8, f64::NAN, f64::INFINITY],
        ),
        (
            "initial_square_avg",
            |c, x| c.with_initial_square_avg(x),
            &[-1.0, f64::NAN],
        ),
        (
            "momentum",
            |c, x| c.with_momentum(x),
            &[-0.5, 1.0, f64::NEG_INFINITY],
        ),
        (
            "weight_decay",
            |c, x| c.with_weight_decay(x, WeightDecayStyle::Coupled),
            &[-0.1, f64::NAN],
        ),
    ];
    for (name, set, bad) in cases {
        for &value in bad {
            let err = RmsProp::<f32>::new(set(RmsPropConfig::pytorch(), value)).unwrap_err();
            match &err {
                Error::InvalidHyperparameter {
                    name: n, value: v, ..
                } => {
                    assert_eq!(*n, name);
                    assert!(v.to_bits() == value.to_bits(), "{err}");
                }
                other => panic!("{name} = {value}: {other:?}"),
            }
            assert!(err.to_string().contains(&format!("`{name}`")), "{err}");
        }
    }
    let ok = RmsPropConfig::pytorch()
        .with_rho(0.0)
        .with_eps(0.0, EpsPlacement::Inside)
        .with_lr(0.0);
    ok.validate().unwrap();
    let err = RmsPropConfig::optax()
        .with_nesterov(0.0)
        .validate()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    let mut opt = RmsProp::<f64>::new(RmsPropConfig::pytorch()).unwrap();
    assert!(opt.set_learning_rate(-1.0).is_err());
    assert_eq!(opt.learning_rate(), 0.01);
    opt.set_learning_rate(0.5).unwrap();
    assert_eq!(opt.learning_rate(), 0.5);
}

#[test]
fn bad_shapes_are_errors_that_change_nothing() {
    let c = RmsPropConfig::pytorch()
        .with_momentum(0.9)
        .with_centered(true);
    let mut opt = RmsProp::<f64>::new(c).unwrap();
    let (mut a, mut b) = (vec![1.0, 2.0], vec![3.0]);
    opt.step(&mut [&mut a, &mut b], &[&[0.1, 0.2], &[0.3]])
        .unwrap();
    let (state, a0, b0) = (opt.state().clone(), a.clone(), b.clone());

    let err = opt.step(&mut [&mut a, &mut b], &[&[0.1, 0.2]]).unwrap_err();
    assert_eq!(
        err,
        Error::GradientCount {
            params: 2,
            grads: 1
        }
    );
    let err = opt
        .step(&mut [&mut a, &mut b], &[&[0.1, 0.2], &[0.3, 0.4]])
        .unwrap_err();
    assert_eq!(
        err,
        Error::GradientLength {
            index: 1,
            params: 1,
            grads: 2
        }
    );
    let err = opt.step(&mut [&mut a], &[&[0.1, 0.2]]).unwrap_err();
    assert_eq!(
        err,
        Error::TensorCount {
            state: 2,
            params: 1
        }
    );
    let mut longer = vec![1.0; 3];
    let err = opt
        .step(&mut [&mut a, &mut longer], &[&[0.1, 0.2], &[0.3; 3]])
        .unwrap_err();
    assert_eq!(
        err,
        Error::StateLength {
            index: 1,
            params: 3,
            state: 1
        }
    );
    assert!(err.to_string().contains("reset"), "{err}");

    assert_eq!((opt.state(), &a, &b), (&state, &a0, &b0));
    opt.reset();
    assert_eq!(opt.steps(), 0);
    opt.step(&mut [&mut longer], &[&[0.3; 3]]).unwrap();
}

#[test]
fn set_state_rejects_buffers_that_do_not_fit() {
    let mut opt = RmsProp::<f32>::new(RmsPropConfig::pytorch().with_centered(true)).unwrap();
    let bad = State {
        steps: 1,
        tensors: vec![TensorState {
            step: 1,
            len: 3,
            buffers: vec![vec![1.0; 3], vec![]],
        }],
    };
    let err = opt.set_state(bad).unwrap_err();
    assert_eq!(
        err,
        Error::StateBuffer {
            index: 0,
            buffer: "grad_avg",
            len: 0,
            expected: 3
        }
    );
    assert!(opt.state().tensors.is_empty());
}

#[test]
fn f32_and_f64_follow_the_same_formula() {
    let c = RmsPropConfig::pytorch().with_lr(0.05).with_momentum(0.5);
    let (p64, _) = run(c.clone(), &[1.0f64, -2.0], &[&[0.5, 0.25], &[0.5, 0.25]]);
    let (p32, _) = run(c, &[1.0f32, -2.0], &[&[0.5, 0.25], &[0.5, 0.25]]);
    for i in 0..2 {
        assert!((p64[i] - p32[i] as f64).abs() < 1e-6);
    }
}
