//! The classic example against the lesson's own numpy run, bit for bit.
//!
//! Golden numbers: `reference/seed_sphere.json` (numpy 2.4.6, float64), every state as the hex of its
//! IEEE-754 bits, with the gradient and square average of every step. Tolerance: none.

use rmsprop::{Optimizer, RmsProp, RmsPropConfig};
use serde_json::Value;

fn hex_rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            row.as_array()
                .expect("row")
                .iter()
                .map(|h| {
                    f64::from_bits(u64::from_str_radix(h.as_str().expect("hex"), 16).expect("hex"))
                })
                .collect()
        })
        .collect()
}

#[test]
fn lesson_matches_numpy_bit_for_bit() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../reference/seed_sphere.json"
    ))
    .expect("reference/seed_sphere.json");
    let seed: Value = serde_json::from_str(&text).unwrap();
    let trajectory = hex_rows(&seed["trajectory"]);
    let gradients = hex_rows(&seed["gradients"]);
    let square_avg = hex_rows(&seed["square_avg_trajectory"]);
    assert_eq!(trajectory.len(), 101);

    let mut opt = RmsProp::<f64>::new(RmsPropConfig::lesson()).unwrap();
    let mut x = vec![5.0, 4.0];
    for k in 0..101 {
        let g = [2.0 * x[0], 2.0 * x[1]];
        assert_eq!(g.to_vec(), gradients[k], "gradient at epoch {k}");
        opt.step_single(&mut x, &g).unwrap();
        assert_eq!(
            opt.square_avg(0).unwrap(),
            square_avg[k],
            "square average at epoch {k}"
        );
        for i in 0..2 {
            assert_eq!(
                x[i].to_bits(),
                trajectory[k][i].to_bits(),
                "x[{i}] at epoch {k}"
            );
        }
    }
}

#[test]
fn torch_operation_order_does_not_reproduce_the_lesson() {
    // The lesson's `(1-rho)*g**2` rounds differently from PyTorch's `((1-rho)*g)*g`: the
    // trajectories part within 25 epochs, which is why the lesson preset uses the Keras order.
    let lesson = RmsPropConfig::lesson();
    let torch_order = lesson
        .clone()
        .with_operation_order(rmsprop::OperationOrder::Torch);
    let run = |c: RmsPropConfig| {
        let mut opt = RmsProp::<f64>::new(c).unwrap();
        let mut x = [5.0, 4.0];
        (0..101)
            .map(|_| {
                let g = [2.0 * x[0], 2.0 * x[1]];
                opt.step_single(&mut x, &g).unwrap();
                x
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (run(lesson), run(torch_order));
    let first = a.iter().zip(&b).position(|(p, q)| p != q);
    assert!(matches!(first, Some(k) if k < 25), "{first:?}");
}
