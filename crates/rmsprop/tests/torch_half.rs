//! PyTorch's RMSprop on bf16/f16 tensors, replayed bit for bit: every file of
//! `reference/vectors_half/` (recorded by `tools/reference/half.py` from torch 2.15's
//! single-tensor CPU path), trajectory and final state.
#![cfg(feature = "half")]

use half::{bf16, f16};
use rmsprop::mixed::Half;
use rmsprop::torch_half::TorchHalfRmsProp;
use rmsprop::{NonFinitePolicy, RmsPropConfig};
use serde_json::Value;

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn replay<H: Half>(v: &Value) -> Result<(), String> {
    let n = &v["normalized"];
    let f = |k: &str| n[k].as_f64().unwrap();
    let b = |k: &str| n[k].as_bool().unwrap();
    let config = RmsPropConfig::pytorch()
        .with_lr(f("lr"))
        .with_rho(f("decay"))
        .with_eps(f("eps"), rmsprop::EpsPlacement::Outside)
        .with_centered(b("centered"))
        .with_momentum(f("momentum"))
        .with_weight_decay(f("weight_decay"), rmsprop::WeightDecayStyle::Coupled)
        .with_maximize(b("maximize"));
    let mut opt = TorchHalfRmsProp::<H>::new(config)
        .unwrap()
        .with_non_finite(NonFinitePolicy::Propagate);
    // Every recorded number is the exact decimal of a half value.
    let half = |x: f64| {
        let h = H::from_f32(x as f32);
        assert_eq!(h.to_f32() as f64, x, "{x} is not a {} value", H::DTYPE);
        h
    };
    let mut p: Vec<H> = numbers(&v["initial_params"])
        .into_iter()
        .map(half)
        .collect();
    let steps = v["gradients"].as_array().unwrap();
    for (k, (g, want)) in steps
        .iter()
        .zip(v["trajectory"].as_array().unwrap())
        .enumerate()
    {
        let g: Vec<H> = numbers(g).into_iter().map(half).collect();
        opt.step(&mut [&mut p], &[&g]).unwrap();
        let want = numbers(want);
        if let Some(i) = (0..p.len()).find(|&i| p[i].to_f32() as f64 != want[i]) {
            return Err(format!(
                "step {}, coordinate {i}: {} vs torch's {}",
                k + 1,
                p[i].to_f32(),
                want[i]
            ));
        }
    }
    for (name, want) in v["final_state"].as_object().unwrap() {
        if name == "step" {
            continue;
        }
        let ours = opt.buffer(0, name).ok_or(format!("no buffer {name}"))?;
        let want = numbers(want);
        if ours.iter().zip(&want).any(|(a, b)| *a as f64 != *b) || ours.len() != want.len() {
            return Err(format!("final {name} differs"));
        }
    }
    Ok(())
}

#[test]
fn every_half_precision_vector_replays_bit_for_bit() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../reference/vectors_half");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        8,
        "plain, centered, momentum, weight decay in bf16 and f16"
    );
    let mut failures = Vec::new();
    for path in &files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let result = match v["dtype"].as_str().unwrap() {
            "bfloat16" => replay::<bf16>(&v),
            "float16" => replay::<f16>(&v),
            other => Err(format!("dtype {other}")),
        };
        if let Err(e) = result {
            failures.push(format!(
                "{}: {e}",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
