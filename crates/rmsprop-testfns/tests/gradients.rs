//! Every objective's analytic gradient against central finite differences, and its known minimum.

use proptest::prelude::*;
use rmsprop_testfns::{by_name, names};

proptest! {
    #[test]
    fn gradients_match_finite_differences(i in 0..11usize, x in -3.0..3.0f64, y in -3.0..3.0f64) {
        let f = by_name(names()[i]).unwrap();
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
}

#[test]
fn known_minima_have_zero_gradient() {
    for name in names() {
        let f = by_name(name).unwrap();
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
