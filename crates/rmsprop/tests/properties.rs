//! Invariants of RMSProp for random hyperparameters, states and gradients (proptest).

use proptest::prelude::*;
use rmsprop::kernel::rmsprop::{rmsprop_reference, MomentumMode};
use rmsprop::{EpsPlacement, OperationOrder, Optimizer, RmsProp, RmsPropConfig};

fn order() -> impl Strategy<Value = OperationOrder> {
    prop_oneof![
        Just(OperationOrder::Torch),
        Just(OperationOrder::Keras),
        Just(OperationOrder::Optax),
        Just(OperationOrder::Tf1)
    ]
}

fn grad() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), -1e3..1e3f64, -1e-3..1e-3f64]
}

fn config() -> impl Strategy<Value = RmsPropConfig> {
    (
        1e-4..1.0f64,
        0.0..0.999f64,
        1e-10..1e-3f64,
        order(),
        any::<bool>(),
        0.0..2.0f64,
    )
        .prop_map(|(lr, rho, eps, order, inside, v0)| {
            RmsPropConfig::pytorch()
                .with_lr(lr)
                .with_rho(rho)
                .with_eps(
                    eps,
                    if inside {
                        EpsPlacement::Inside
                    } else {
                        EpsPlacement::Outside
                    },
                )
                .with_operation_order(order)
                .with_initial_square_avg(v0)
        })
}

fn run(config: RmsPropConfig, p0: &[f64], grads: &[Vec<f64>]) -> (Vec<f64>, RmsProp<f64>) {
    let mut opt = RmsProp::new(config).unwrap();
    let mut p = p0.to_vec();
    for g in grads {
        opt.step_single(&mut p, g).unwrap();
    }
    (p, opt)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn square_average_is_never_negative(
        c in config(),
        centered in any::<bool>(),
        grads in prop::collection::vec(prop::collection::vec(grad(), 4), 1..20),
    ) {
        let (_, opt) = run(c.with_centered(centered), &[0.5; 4], &grads);
        prop_assert!(opt.square_avg(0).unwrap().iter().all(|&v| v >= 0.0));
    }

    #[test]
    fn plain_rmsprop_with_eps_outside_moves_at_most_lr_over_sqrt_one_minus_rho(
        c in config(),
        grads in prop::collection::vec(prop::collection::vec(grad(), 4), 1..20),
    ) {
        let eps = c.eps;
        let c = c.with_eps(eps, EpsPlacement::Outside).with_initial_square_avg(0.0);
        let bound = c.lr / (1.0 - c.rho).sqrt() * (1.0 + 1e-12);
        let mut opt = RmsProp::<f64>::new(c).unwrap();
        let mut p = vec![0.25; 4];
        for g in &grads {
            let before = p.clone();
            opt.step_single(&mut p, g).unwrap();
            for (a, b) in before.iter().zip(&p) {
                prop_assert!((a - b).abs() <= bound, "moved {} > {bound}", (a - b).abs());
            }
        }
    }

    #[test]
    fn scaling_gradients_leaves_updates_unchanged_when_eps_is_zero(
        c in config(),
        k in -20i32..20,
        grads in prop::collection::vec(prop::collection::vec(prop_oneof![-1e3..-1e-3f64, 1e-3..1e3f64], 4), 1..15),
    ) {
        // Powers of two scale exactly, so the trajectories are identical bit for bit...
        let c = c.with_eps(0.0, EpsPlacement::Outside).with_initial_square_avg(0.0);
        let scale = 2f64.powi(k);
        let scaled: Vec<Vec<f64>> = grads.iter().map(|g| g.iter().map(|x| x * scale).collect()).collect();
        let (a, _) = run(c.clone(), &[0.1; 4], &grads);
        let (b, _) = run(c.clone(), &[0.1; 4], &scaled);
        prop_assert_eq!(a, b);
        // ...and any other factor agrees to rounding.
        let scaled: Vec<Vec<f64>> = grads.iter().map(|g| g.iter().map(|x| x * 3.7).collect()).collect();
        let (a, _) = run(c.clone(), &[0.1; 4], &grads);
        let (b, _) = run(c, &[0.1; 4], &scaled);
        for (x, y) in a.iter().zip(&b) {
            prop_assert!((x - y).abs() <= 1e-9 * (1.0 + x.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn a_zero_gradient_moves_nothing(
        c in config(),
        centered in any::<bool>(),
        warmup in prop::collection::vec(prop::collection::vec(grad(), 3), 0..5),
    ) {
        let (p, mut opt) = run(c.with_centered(centered).with_clamp_variance(true), &[0.3, -0.7, 2.0], &warmup);
        let mut q = p.clone();
        opt.step_single(&mut q, &[0.0; 3]).unwrap();
        prop_assert_eq!(p, q);
    }

    #[test]
    fn momentum_zero_equals_no_momentum(
        c in config(),
        grads in prop::collection::vec(prop::collection::vec(grad(), 3), 1..10),
    ) {
        // The kernel with a zero-coefficient buffer (rate inside) and without a buffer agree.
        let opt = RmsProp::<f64>::new(c).unwrap();
        let (mut p1, mut v1) = (vec![0.5; 3], vec![0.0; 3]);
        let (mut p2, mut v2, mut b2) = (p1.clone(), v1.clone(), vec![0.0; 3]);
        for (k, g) in grads.iter().enumerate() {
            let s = opt.scalars(k as u64 + 1);
            rmsprop_reference(&s, &mut p1, g, &mut v1, &mut [], &mut []);
            let mut with_buffer = s;
            with_buffer.momentum_mode = MomentumMode::LrInside;
            with_buffer.momentum = 0.0;
            rmsprop_reference(&with_buffer, &mut p2, g, &mut v2, &mut [], &mut b2);
        }
        prop_assert_eq!(p1, p2);
    }

    #[test]
    fn centered_with_clamp_never_produces_nan(
        c in config(),
        grads in prop::collection::vec(prop::collection::vec(prop_oneof![Just(1.0), Just(-1.0), grad()], 4), 1..40),
    ) {
        let (p, opt) = run(c.with_centered(true).with_clamp_variance(true), &[1.0; 4], &grads);
        prop_assert!(p.iter().all(|x| !x.is_nan()));
        prop_assert!(opt.grad_avg(0).unwrap().iter().all(|x| !x.is_nan()));
    }
}
