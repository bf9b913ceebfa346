//! The family (SGD, momentum, Nesterov, Adagrad, Adam, AdamW, AMSGrad): each option against its
//! formula written out here, and the equivalences that tie the family to RMSProp.

#![allow(clippy::assign_op_pattern)] // formulas are written as in the papers: `x = x - u`

use rmsprop::{
    Adagrad, AdagradConfig, Adam, AdamConfig, EpsPlacement, Error, FamilyOrder, Optimizer, RmsProp,
    RmsPropConfig, Sgd, SgdConfig, WeightDecayStyle,
};

const P: [f64; 3] = [1.0, -2.0, 0.5];

fn grads(k: usize) -> [f64; 3] {
    let k = k as f64;
    [
        (0.3 * k).sin() + 0.1,
        -1.5 + 0.01 * k,
        if k as u32 % 3 == 0 { 0.0 } else { 2.0 },
    ]
}

fn run<O: Optimizer<f64>>(mut opt: O, steps: usize) -> (Vec<f64>, O) {
    let mut p = P.to_vec();
    for k in 0..steps {
        opt.step_single(&mut p, &grads(k)).unwrap();
    }
    (p, opt)
}

#[test]
fn sgd_plain_momentum_dampening_nesterov_weight_decay() {
    let (lr, mu, damp, wd) = (0.1, 0.9, 0.3, 0.01);
    for (nesterov, dampening) in [(false, 0.0), (false, damp), (true, 0.0)] {
        let mut c = SgdConfig::momentum(lr, mu)
            .with_dampening(dampening)
            .with_weight_decay(wd);
        c.nesterov = nesterov;
        let (p, opt) = run(Sgd::new(c).unwrap(), 5);
        for i in 0..3 {
            let (mut x, mut b) = (P[i], 0.0);
            for k in 0..5 {
                let g = grads(k)[i] + wd * x;
                b = if k == 0 {
                    g
                } else {
                    b * mu + (1.0 - dampening) * g
                };
                let d = if nesterov { g + mu * b } else { b };
                x = x - lr * d;
            }
            assert_eq!(
                p[i], x,
                "nesterov {nesterov} dampening {dampening} coordinate {i}"
            );
            assert_eq!(opt.state_buffers(0)[0].1[i], b);
        }
    }
    let (p, opt) = run(Sgd::new(SgdConfig::plain(lr)).unwrap(), 3);
    for i in 0..3 {
        let x = (0..3).fold(P[i], |x, k| x - lr * grads(k)[i]);
        assert_eq!(p[i], x);
    }
    assert!(opt.state_buffers(0).is_empty());
    assert_eq!(opt.name(), "sgd");
}

#[test]
fn momentum_zero_equals_sgd_and_maximize_negates() {
    let (a, _) = run(Sgd::new(SgdConfig::momentum(0.05, 0.0)).unwrap(), 20);
    let (b, _) = run(Sgd::new(SgdConfig::plain(0.05)).unwrap(), 20);
    assert_eq!(a, b);
    // With momentum, the first step is plain SGD (the buffer starts as the gradient).
    let (a, _) = run(Sgd::new(SgdConfig::momentum(0.05, 0.9)).unwrap(), 1);
    let (b, _) = run(Sgd::new(SgdConfig::plain(0.05)).unwrap(), 1);
    assert_eq!(a, b);
    let mut up = Sgd::<f64>::new(SgdConfig::momentum(0.1, 0.5).with_maximize(true)).unwrap();
    let mut down = Sgd::<f64>::new(SgdConfig::momentum(0.1, 0.5)).unwrap();
    let (mut x, mut y) = ([1.0], [1.0]);
    for _ in 0..3 {
        up.step_single(&mut x, &[0.5]).unwrap();
        down.step_single(&mut y, &[-0.5]).unwrap();
    }
    assert_eq!(x, y);
}

#[test]
fn sgd_validation_names_the_culprit() {
    assert!(matches!(
        Sgd::<f32>::new(SgdConfig::momentum(0.1, 1.0)).unwrap_err(),
        Error::InvalidHyperparameter {
            name: "momentum",
            ..
        }
    ));
    assert!(matches!(
        Sgd::<f32>::new(SgdConfig::plain(0.1).with_dampening(1.5)).unwrap_err(),
        Error::InvalidHyperparameter {
            name: "dampening",
            ..
        }
    ));
    assert!(matches!(
        Sgd::<f32>::new(SgdConfig::nesterov(0.1, 0.9).with_dampening(0.1)).unwrap_err(),
        Error::InvalidConfig(_)
    ));
}

#[test]
fn adagrad_torch_and_optax_orders() {
    let mut c = AdagradConfig::pytorch().with_lr(0.1);
    c.lr_decay = 0.05;
    c.weight_decay = 0.01;
    c.initial_accumulator_value = 0.2;
    let (p, _) = run(Adagrad::new(c).unwrap(), 6);
    for i in 0..3 {
        let (mut x, mut s) = (P[i], 0.2);
        for k in 0..6 {
            let g = grads(k)[i] + 0.01 * x;
            let clr = 0.1 / (1.0 + k as f64 * 0.05);
            s = s + g * g;
            x = x - (clr * g) / (s.sqrt() + 1e-10);
        }
        assert_eq!(p[i], x);
    }
    let (p, opt) = run(
        Adagrad::new(AdagradConfig::optax().with_lr(0.1)).unwrap(),
        6,
    );
    for i in 0..3 {
        let (mut x, mut s) = (P[i], 0.1);
        for k in 0..6 {
            let g = grads(k)[i];
            s = g * g + s;
            x = x - 0.1 * ((1.0 / (s + 1e-7).sqrt()) * g);
        }
        assert_eq!(p[i], x);
        assert_eq!(opt.state_buffers(0)[0].0, "sum");
        assert_eq!(opt.state_buffers(0)[0].1, opt.buffer(0, "sum").unwrap());
    }
    // Adagrad's step shrinks as the sum grows; RMSProp's does not (its average forgets).
    let mut ada = Adagrad::<f64>::new(AdagradConfig::pytorch().with_lr(0.1)).unwrap();
    let mut rms = RmsProp::<f64>::new(RmsPropConfig::pytorch().with_lr(0.1).with_rho(0.9)).unwrap();
    let (mut a, mut r) = ([0.0], [0.0]);
    let mut last = (0.0, 0.0);
    for _ in 0..1000 {
        let (a0, r0) = (a[0], r[0]);
        ada.step_single(&mut a, &[1.0]).unwrap();
        rms.step_single(&mut r, &[1.0]).unwrap();
        last = (a0 - a[0], r0 - r[0]);
    }
    assert!(
        last.0 < 0.1 / 30.0 && (last.1 - 0.1).abs() < 1e-6,
        "{last:?}"
    );
}

#[test]
fn adam_torch_order_with_amsgrad_and_both_weight_decays() {
    let (lr, b1, b2, eps, wd) = (0.01, 0.9, 0.99, 1e-8, 0.1);
    for (amsgrad, style) in [
        (false, WeightDecayStyle::Coupled),
        (true, WeightDecayStyle::Coupled),
        (false, WeightDecayStyle::Decoupled),
        (true, WeightDecayStyle::Decoupled),
    ] {
        let c = AdamConfig::pytorch()
            .with_lr(lr)
            .with_betas(b1, b2)
            .with_amsgrad(amsgrad)
            .with_weight_decay(wd, style);
        let (p, opt) = run(Adam::new(c).unwrap(), 8);
        for i in 0..3 {
            let (mut x, mut m, mut v, mut vmax) = (P[i], 0.0f64, 0.0f64, 0.0f64);
            for k in 0..8 {
                let t = (k + 1) as f64;
                let mut g = grads(k)[i];
                match style {
                    WeightDecayStyle::Coupled => g = g + wd * x,
                    WeightDecayStyle::Decoupled => x = x * (1.0 - lr * wd),
                }
                m = m + (1.0 - b1) * (g - m);
                v = v * b2 + ((1.0 - b2) * g) * g;
                vmax = vmax.max(v);
                let vu = if amsgrad { vmax } else { v };
                let step_size = lr / (1.0 - b1.powf(t));
                let denom = vu.sqrt() / (1.0 - b2.powf(t)).sqrt() + eps;
                x = x - (step_size * m) / denom;
            }
            assert_eq!(p[i], x, "amsgrad {amsgrad} {style:?} {i}");
        }
        assert_eq!(opt.state_buffers(0).len(), if amsgrad { 3 } else { 2 });
    }
}

#[test]
fn adam_optax_order_and_optax_adamw() {
    let c = AdamConfig {
        eps_root: 1e-6,
        ..AdamConfig::optax_adamw().with_lr(0.01)
    };
    let (p, _) = run(Adam::new(c).unwrap(), 8);
    for i in 0..3 {
        let (mut x, mut m, mut v) = (P[i], 0.0f64, 0.0f64);
        for k in 0..8 {
            let t = (k + 1) as f64;
            let g = grads(k)[i];
            m = (1.0 - 0.9) * g + 0.9 * m;
            v = (1.0 - 0.999) * (g * g) + 0.999 * v;
            let m_hat = m / (1.0 - 0.9f64.powf(t));
            let v_hat = v / (1.0 - 0.999f64.powf(t));
            let u = m_hat / ((v_hat + 1e-6).sqrt() + 1e-8) + 1e-4 * x;
            x = x - 0.01 * u;
        }
        assert_eq!(p[i], x, "{i}");
    }
}

#[test]
fn adamw_with_zero_weight_decay_equals_adam() {
    for order in [FamilyOrder::Torch, FamilyOrder::Optax] {
        let adam = AdamConfig {
            order,
            ..AdamConfig::pytorch()
        };
        let adamw = AdamConfig {
            weight_decay: 0.0,
            weight_decay_style: WeightDecayStyle::Decoupled,
            ..adam.clone()
        };
        let (a, _) = run(Adam::new(adam).unwrap(), 50);
        let (b, _) = run(Adam::new(adamw).unwrap(), 50);
        assert_eq!(a, b, "{order:?}");
    }
}

#[test]
fn adam_with_beta1_zero_is_bias_corrected_rmsprop_with_eps_outside() {
    // Mathematically equal; they round differently (Adam divides sqrt(v) by sqrt(1 - b2^t),
    // RMSProp takes sqrt(v * r)), so the check is a relative 1e-12 over 200 steps, per framework.
    for (adam, rms) in [
        (AdamConfig::pytorch(), RmsPropConfig::pytorch()),
        (AdamConfig::optax(), RmsPropConfig::optax()),
    ] {
        let adam = adam.with_lr(0.01).with_betas(0.0, 0.99);
        let rms = rms
            .with_lr(0.01)
            .with_rho(0.99)
            .with_eps(1e-8, EpsPlacement::Outside)
            .with_bias_correction(true);
        let (a, _) = run(Adam::new(adam).unwrap(), 200);
        let (r, _) = run(RmsProp::new(rms).unwrap(), 200);
        for i in 0..3 {
            assert!(
                (a[i] - r[i]).abs() <= 1e-12 * a[i].abs().max(1.0),
                "{a:?} {r:?}"
            );
        }
    }
}

#[test]
fn family_validation_names_the_culprit() {
    let cases: Vec<(Error, &str)> = vec![
        (
            Adam::<f64>::new(AdamConfig::pytorch().with_betas(1.0, 0.9)).unwrap_err(),
            "beta1",
        ),
        (
            Adam::<f64>::new(AdamConfig::pytorch().with_betas(0.9, -0.1)).unwrap_err(),
            "beta2",
        ),
        (
            Adam::<f64>::new(AdamConfig::pytorch().with_lr(f64::NAN)).unwrap_err(),
            "lr",
        ),
        (
            Adagrad::<f64>::new(AdagradConfig {
                eps: -1.0,
                ..AdagradConfig::pytorch()
            })
            .unwrap_err(),
            "eps",
        ),
    ];
    for (err, name) in cases {
        assert!(
            matches!(err, Error::InvalidHyperparameter { name: n, .. } if n == name),
            "{err}"
        );
    }
}

#[test]
fn every_family_member_rejects_bad_shapes_without_changing_anything() {
    let opts: Vec<Box<dyn Optimizer<f32>>> = vec![
        Box::new(Sgd::new(SgdConfig::momentum(0.1, 0.9)).unwrap()),
        Box::new(Adagrad::new(AdagradConfig::pytorch()).unwrap()),
        Box::new(Adam::new(AdamConfig::pytorch().with_amsgrad(true)).unwrap()),
        Box::new(RmsProp::new(RmsPropConfig::pytorch()).unwrap()),
    ];
    for mut opt in opts {
        let mut a = vec![1.0f32, 2.0];
        opt.step_single(&mut a, &[0.1, 0.2]).unwrap();
        let before = (
            a.clone(),
            opt.state_buffers(0)
                .iter()
                .map(|(n, b)| (*n, b.to_vec()))
                .collect::<Vec<_>>(),
        );
        assert!(opt.step_single(&mut a, &[0.1]).is_err(), "{}", opt.name());
        let mut longer = vec![1.0f32; 3];
        assert!(
            opt.step_single(&mut longer, &[0.1; 3]).is_err(),
            "{}",
            opt.name()
        );
        let after = (
            a.clone(),
            opt.state_buffers(0)
                .iter()
                .map(|(n, b)| (*n, b.to_vec()))
                .collect::<Vec<_>>(),
        );
        assert_eq!(before, after, "{}", opt.name());
        assert_eq!(opt.steps(), 1);
        opt.reset();
        assert!(opt.state_buffers(0).is_empty());
    }
}

#[test]
fn a_new_learning_rate_reaches_scalars_computed_once_per_configuration() {
    // Lion's, Adadelta's and plain RMSProp's scalars do not depend on the step, so the optimizer
    // computes them once per configuration: a new rate must still take effect at the next step.
    use rmsprop::{Adadelta, AdadeltaConfig, Lion, LionConfig};
    let mut lion = Lion::<f64>::new(LionConfig::optax().with_lr(0.1)).unwrap();
    let mut x = [1.0, -1.0];
    lion.step_single(&mut x, &[1.0, -1.0]).unwrap();
    lion.set_learning_rate(0.25).unwrap();
    lion.step_single(&mut x, &[1.0, -1.0]).unwrap();
    // Two sign steps (weight decay 1e-3 on the parameter before each step).
    let step = |p: f64, lr: f64| p - lr * (1.0 + 1e-3 * p);
    assert_eq!(x[0], step(step(1.0, 0.1), 0.25));
    let mut a = Adadelta::<f64>::new(AdadeltaConfig::pytorch()).unwrap();
    let mut pa = [0.5];
    a.step_single(&mut pa, &[0.3]).unwrap();
    let pb = pa;
    a.set_learning_rate(0.0).unwrap();
    a.step_single(&mut pa, &[0.3]).unwrap();
    assert_eq!(pa, pb); // lr 0: the second step moved nothing
    let mut r = RmsProp::<f64>::new(RmsPropConfig::pytorch()).unwrap();
    let mut p = [1.0];
    r.step_single(&mut p, &[1.0]).unwrap();
    r.set_learning_rate(0.0).unwrap();
    let before = p;
    r.step_single(&mut p, &[1.0]).unwrap();
    assert_eq!(p, before);
}
