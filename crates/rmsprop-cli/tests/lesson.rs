//! `rmsprop lesson --trace` against numpy's recording of the lesson (reference/seed_sphere.json):
//! every point, gradient and squared-gradient average of the trace is numpy's, bit for bit.

mod common;
use common::{hex_rows, seed_sphere};
use std::process::Command;

#[test]
fn the_trace_is_numpys_bit_for_bit() {
    let seed = seed_sphere();
    let (states, grads, v) = (
        hex_rows(&seed["trajectory"]),
        hex_rows(&seed["gradients"]),
        hex_rows(&seed["square_avg_trajectory"]),
    );
    let rows = rmsprop_cli::lesson::trace(101);
    assert_eq!(rows.len(), 101);
    for (k, r) in rows.iter().enumerate() {
        assert_eq!(r.grad.to_vec(), grads[k], "gradient at epoch {k}");
        assert_eq!(r.square_avg.to_vec(), v[k], "v at epoch {k}");
        let next = [r.x[0] - r.step[0], r.x[1] - r.step[1]];
        assert_eq!(next.to_vec(), states[k], "x after epoch {k}");
        // The denominator as the lesson writes it: sqrt(v) + eps.
        assert_eq!(r.denominator[0], v[k][0].sqrt() + 1e-6);
    }
}

#[test]
fn lesson_trace_prints_a_row_per_coordinate_and_epoch() {
    let out = Command::new(env!("CARGO_BIN_EXE_rmsprop"))
        .args(["lesson", "--trace", "--epochs", "4"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 2 + 4 * 2);
    // The first step of each coordinate is lr / sqrt(1 - rho) = 0.316..., whatever its gradient.
    let first: Vec<&str> = text.lines().nth(2).unwrap().split_whitespace().collect();
    assert_eq!(first[..3], ["0", "x", "5.00000000"]);
    assert_eq!(first[6], "0.31622767");
    let err = Command::new(env!("CARGO_BIN_EXE_rmsprop"))
        .args(["lesson", "--epochs", "4"])
        .output()
        .unwrap();
    assert!(!err.status.success(), "--epochs needs --trace");
}

/// The tutorial's experiment files load, and the pictures it shows exist.
#[test]
fn the_tutorial_files_and_pictures_exist() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    for name in ["lesson", "learning_rate"] {
        rmsprop_cli::compare::Experiment::load(&docs.join(format!("tutorial/{name}.toml")))
            .unwrap();
    }
    let text = std::fs::read_to_string(docs.join("TUTORIAL.md")).unwrap();
    let mut pictures = 0;
    for part in text.split("](").skip(1) {
        let target = &part[..part.find(')').unwrap()];
        if target.ends_with(".png") {
            assert!(docs.join(target).exists(), "{target}");
            pictures += 1;
        }
    }
    assert!(pictures >= 7, "{pictures}");
}
