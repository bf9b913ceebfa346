//! Every objective's analytic gradient against central finite differences, and its known minimum.

use proptest::prelude::*;
use rmsprop_testfns::{by_name, names, LeastSquares, MovingTarget, Noisy, Objective, Sphere};

proptest! {
    #[test]
    fn gradients_match_finite_differences(i in 0..1000usize, x in -3.0..3.0f64, y in -3.0..3.0f64) {
        let f = by_name(names()[i % names().len()]).unwrap();
        let mut p = vec![0.3; f.dim()];
        p[0] = x;
        p[1] = y;
        let g = f.gradient(&p);
        for k in 0..2 {
            let h = 1e-6 * (1.0 + p[k].abs());
            let (mut a, mut b) = (p.clone(), p.clone());
            a[k] += h;
            b[k] -= h;
            let fd = (f.value(&a) - f.value(&b)) / (2.0 * h);
            prop_assert!((fd - g[k]).abs() <= 1e-4 * (1.0 + g[k].abs()), "{} d/dx{k}: {fd} vs {}", f.name(), g[k]);
        }
    }

    #[test]
    fn moving_gradient_matches_finite_differences_at_every_time(step in 0..1000u64, x in -3.0..3.0f64, y in -3.0..3.0f64) {
        let f = MovingTarget::default();
        let p = [x, y];
        let g = f.gradient_at(&p, step);
        for k in 0..2 {
            let h = 1e-6;
            let (mut a, mut b) = (p, p);
            a[k] += h;
            b[k] -= h;
            let fd = (f.value_at(&a, step) - f.value_at(&b, step)) / (2.0 * h);
            prop_assert!((fd - g[k]).abs() <= 1e-6 * (1.0 + g[k].abs()));
        }
        let m = f.minimum_at(step);
        prop_assert!(f.gradient_at(&m, step).iter().all(|v| v.abs() < 1e-12));
        prop_assert!((m[0].hypot(m[1]) - f.radius).abs() < 1e-12);
    }
}

#[test]
fn mini_batch_gradients_average_to_the_full_gradient_over_an_epoch() {
    let full = LeastSquares::default();
    let w: Vec<f64> = (0..full.dim()).map(|j| 0.1 * j as f64 - 0.4).collect();
    let g = full.gradient(&w);
    for batch in [1, 8, 40, 1000] {
        let f = LeastSquares::default().with_batch(batch, 3);
        let per_epoch = f.steps_per_epoch();
        assert_eq!(per_epoch, 1000 / batch as u64);
        for epoch in 0..2 {
            let mut mean = vec![0.0; f.dim()];
            for k in 0..per_epoch {
                let gk = f.gradient_at(&w, epoch * per_epoch + k);
                for (m, v) in mean.iter_mut().zip(gk) {
                    *m += v / per_epoch as f64;
                }
            }
            for (m, v) in mean.iter().zip(&g) {
                assert!(
                    (m - v).abs() <= 1e-9 * (1.0 + v.abs()),
                    "batch {batch}: {m} vs {v}"
                );
            }
        }
    }
    let f = LeastSquares::default().with_batch(8, 3);
    assert_ne!(
        f.gradient_at(&w, 0),
        f.gradient_at(&w, 1),
        "different batches"
    );
    assert_ne!(
        f.gradient_at(&w, 0),
        f.gradient_at(&w, f.steps_per_epoch()),
        "each epoch reshuffles"
    );
    let same = LeastSquares::default().with_batch(8, 3);
    let other = LeastSquares::default().with_batch(8, 4);
    assert_eq!(f.gradient_at(&w, 17), same.gradient_at(&w, 17), "seeded");
    assert_ne!(f.gradient_at(&w, 17), other.gradient_at(&w, 17));
    // Random access gives what a sequential walk gives (the cache holds one epoch).
    assert_eq!(f.gradient_at(&w, 5), same.gradient_at(&w, 5));
}

#[test]
fn noise_is_seeded_zero_mean_with_the_chosen_scale() {
    let f = Noisy::new(Box::new(Sphere), 0.5, 11);
    let x = [1.0, -2.0];
    let clean = Sphere.gradient(&x);
    let n = 20_000;
    let (mut sum, mut sq) = (0.0, 0.0);
    for step in 0..n {
        let g = f.gradient_at(&x, step);
        for (v, c) in g.iter().zip(&clean) {
            sum += v - c;
            sq += (v - c).powi(2);
        }
    }
    let count = 2.0 * n as f64;
    let mean = sum / count;
    let std = (sq / count - mean * mean).sqrt();
    assert!(mean.abs() < 0.01, "mean {mean}");
    assert!((std - 0.5).abs() < 0.01, "std {std}");
    let again = Noisy::new(Box::new(Sphere), 0.5, 11);
    let other = Noisy::new(Box::new(Sphere), 0.5, 12);
    assert_eq!(f.gradient_at(&x, 99), again.gradient_at(&x, 99));
    assert_ne!(f.gradient_at(&x, 99), other.gradient_at(&x, 99));
    assert_eq!(f.value(&x), Sphere.value(&x), "values stay noiseless");
}

#[test]
fn known_minima_have_zero_gradient() {
    for name in names() {
        let f = by_name(name).unwrap();
        if !f.minimum_known() {
            assert_eq!(f.minimum_value(), 0.0, "{name}: a lower bound");
            continue;
        }
        let m = f.minimum();
        assert!(
            f.gradient(&m).iter().all(|g| g.abs() < 1e-10),
            "{name}: {:?}",
            f.gradient(&m)
        );
        assert_eq!(f.dim(), m.len());
        if *name != "saddle" {
            assert!(f.value(&m) <= f.value(&f.start()), "{name}");
        }
    }
}

/// The networks' backpropagation, every coordinate (the proptest above checks the first two):
/// at the start and at a point between start and minimum.
#[test]
fn network_gradients_match_finite_differences_in_every_coordinate() {
    for name in [
        "tanh_chain",
        "tanh_rnn",
        "deep_linear",
        "adding",
        "tanh_mlp",
    ] {
        let f = by_name(name).unwrap();
        let (s, m) = (f.start(), f.minimum());
        let mid: Vec<f64> = s.iter().zip(&m).map(|(a, b)| 0.7 * a + 0.3 * b).collect();
        for p in [s, mid] {
            let g = f.gradient(&p);
            for k in 0..f.dim() {
                let h = 1e-6 * (1.0 + p[k].abs());
                let (mut a, mut b) = (p.clone(), p.clone());
                a[k] += h;
                b[k] -= h;
                let fd = (f.value(&a) - f.value(&b)) / (2.0 * h);
                assert!(
                    (fd - g[k]).abs() <= 1e-6 + 1e-4 * g[k].abs(),
                    "{name} d/dx{k}: {fd} vs {}",
                    g[k]
                );
            }
        }
    }
}

/// The recurrent networks report the gradient carried back through time: one value per step of
/// the sequence, and from PyTorch's initialization it fades along the sequence (the vanishing
/// gradient the RNN experiments are about); the other objectives report none.
#[test]
fn recurrent_networks_report_the_gradient_through_time() {
    for (name, steps) in [("tanh_rnn", 50), ("adding", 20)] {
        let f = by_name(name).unwrap();
        let norms = f.gradient_through_time(&f.start()).unwrap();
        assert_eq!(norms.len(), steps, "{name}");
        assert!(norms.iter().all(|v| v.is_finite() && *v > 0.0), "{name}");
        assert!(norms[steps - 1] * 100.0 < norms[0], "{name}: {norms:?}");
    }
    // The last step's hidden-state gradient is (y - target) w_out / n per sequence: at the
    // teacher, where every error is 0, it vanishes.
    let f = by_name("tanh_rnn").unwrap();
    assert!(f
        .gradient_through_time(&f.minimum())
        .unwrap()
        .iter()
        .all(|v| *v == 0.0));
    assert!(by_name("sphere")
        .unwrap()
        .gradient_through_time(&[1.0, 2.0])
        .is_none());
}
