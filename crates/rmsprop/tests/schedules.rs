//! Learning-rate schedules against PyTorch's `torch.optim.lr_scheduler`, step by step.
//!
//! Golden numbers: `reference/schedules.json` (`tools/reference/schedules.py`, torch 2.15):
//! the learning rate PyTorch's optimizer used at each of 120 steps, base lr 0.1. PyTorch computes
//! most schedules recursively (each rate from the previous one), we in closed form; they agree
//! within 1e-12 relative (1e-15 absolute near zero).

use rmsprop::schedule::{
    Anneal, ConstantLr, CosineAnnealingLr, CosineWarmRestarts, ExponentialLr, LinearLr,
    MultiStepLr, OneCycle, Schedule, Sequential, StepLr,
};
use serde_json::Value;

fn ours(name: &str) -> Box<dyn Schedule> {
    match name {
        "step" => Box::new(StepLr {
            step_size: 30,
            gamma: 0.1,
        }),
        "multistep" => Box::new(MultiStepLr {
            milestones: vec![30, 80],
            gamma: 0.1,
        }),
        "exponential" => Box::new(ExponentialLr { gamma: 0.95 }),
        "cosine" => Box::new(CosineAnnealingLr {
            t_max: 50,
            eta_min: 1e-4,
        }),
        "cosine_warm_restarts" => Box::new(CosineWarmRestarts {
            t_0: 10,
            t_mult: 2,
            eta_min: 1e-5,
        }),
        "linear_warmup" => Box::new(LinearLr {
            start_factor: 0.1,
            end_factor: 1.0,
            total_iters: 10,
        }),
        "constant" => Box::new(ConstantLr {
            factor: 0.5,
            total_iters: 20,
        }),
        "one_cycle" => Box::new(OneCycle::new(0.1, 120)),
        "one_cycle_linear_three_phase" => Box::new(OneCycle {
            anneal: Anneal::Linear,
            three_phase: true,
            pct_start: 0.25,
            ..OneCycle::new(0.1, 120)
        }),
        "warmup_then_cosine" => Box::new(Sequential::new(
            vec![
                Box::new(LinearLr {
                    start_factor: 0.01,
                    end_factor: 1.0,
                    total_iters: 10,
                }),
                Box::new(CosineAnnealingLr {
                    t_max: 110,
                    eta_min: 0.0,
                }),
            ],
            vec![10],
        )),
        other => panic!("no schedule for {other}"),
    }
}

#[test]
fn every_schedule_matches_pytorch() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../reference/schedules.json"
    ))
    .unwrap();
    let data: Value = serde_json::from_str(&text).unwrap();
    let cases = data["schedules"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let base = case["base_lr"].as_f64().unwrap();
        let schedule = ours(name);
        for (k, want) in case["lrs"].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap();
            let got = schedule.lr(base, k as u64);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs() + 1e-15,
                "{name} step {k}: ours {got}, PyTorch {want}"
            );
        }
    }
}
