//! 8-bit blockwise state against bitsandbytes 0.50.2's CPU backend (vectors recorded by
//! `tools/reference/bnb8bit.py` into `reference/vectors_8bit/`), and against the `f32` state it
//! approximates.

use rmsprop::blockwise::{Blockwise8, QuantMap, BLOCK};
use rmsprop::optim::bnb::{BnbConfig, BnbRule};
use rmsprop::{
    AdagradConfig, AdamConfig, Algorithm, Execution, NonFinitePolicy, Optim, Optimizer,
    RmsPropConfig, SgdConfig,
};
use serde_json::Value;

fn vectors(name: &str) -> Value {
    let path = format!(
        "{}/../../reference/vectors_8bit/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    let s = v.as_str().expect("a hex string");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    bytes(v)
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn the_dynamic_maps_are_bitsandbytes_maps_bit_for_bit() {
    let v = vectors("bnb_quantize");
    assert_eq!(
        bits(QuantMap::signed().code()),
        bits(&floats(&v["maps"]["signed"]))
    );
    assert_eq!(
        bits(QuantMap::unsigned().code()),
        bits(&floats(&v["maps"]["unsigned"]))
    );
}

#[test]
fn quantization_gives_bitsandbytes_codes_and_absmax() {
    let v = vectors("bnb_quantize");
    let cases = v["quantize"].as_array().unwrap();
    assert_eq!(cases.len(), 14);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let map = match case["map"].as_str().unwrap() {
            "signed" => QuantMap::signed(),
            _ => QuantMap::unsigned(),
        };
        let x = floats(&case["input"]);
        let mut codes = vec![0u8; x.len()];
        let mut absmax = vec![0.0f32; x.len().div_ceil(BLOCK)];
        map.quantize(&x, &mut codes, &mut absmax);
        assert_eq!(bits(&absmax), bits(&floats(&case["absmax"])), "{name}");
        let want = bytes(&case["codes"]);
        let differ = codes.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(differ, 0, "{name}: {differ} of {} codes differ", x.len());
    }
}

/// The lookup table is not nearest rounding: its 65,536 bins of `[-1, 1]` are 3.05e-5 wide,
/// wider than the map's gaps near zero. Each value gets a code at most one bin farther than the
/// nearest code; the densest codes are never produced, and 0 becomes the code nearest the
/// middle bin's value (2.1e-5 of the block's absmax on the signed map), as in bitsandbytes. Dequantizing gives back
/// every value within the map's widest gap.
#[test]
fn quantization_is_nearest_within_one_bin_and_dequantization_inverts_it() {
    let bin = 2.0f32 / 65535.0;
    for map in [QuantMap::signed(), QuantMap::unsigned()] {
        let code = map.code();
        let lo = if code[0] < 0.0 { -1.0f32 } else { 0.0 };
        let x: Vec<f32> = (0..=20_000)
            .map(|i| lo + (1.0 - lo) * i as f32 / 20_000.0)
            .collect();
        for block in x.chunks(BLOCK - 1) {
            // A block whose top is exactly 1, so values are their own normalized values.
            let mut b = vec![1.0f32];
            b.extend_from_slice(block);
            let (mut out, mut m) = (vec![0u8; b.len()], [0.0]);
            map.quantize(&b, &mut out, &mut m);
            assert_eq!(m[0], 1.0);
            for (v, c) in b.iter().zip(&out) {
                let nearest = code
                    .iter()
                    .map(|q| (q - v).abs())
                    .fold(f32::INFINITY, f32::min);
                let got = (code[*c as usize] - v).abs();
                assert!(
                    got <= nearest + bin,
                    "{v}: code {c} is {got} away, nearest {nearest}"
                );
            }
        }
        let (mut z, mut m) = ([0u8; 2], [0.0]);
        map.quantize(&[0.0, 1.0], &mut z, &mut m);
        let zero = code[z[0] as usize];
        assert!(zero > 0.0 && zero < bin, "0 quantizes to {zero}");
        // Every bin's centre (2k/65535 - 1, inside [lo, 1]): every code the table can give.
        let mut all = [false; 256];
        for k in 0..65_536u32 {
            let v = 2.0 * k as f32 / 65_535.0 - 1.0;
            if v < lo {
                continue;
            }
            let (mut c, mut m) = ([0u8; 2], [0.0]);
            map.quantize(&[1.0, v], &mut c, &mut m);
            all[c[1] as usize] = true;
        }
        let never: Vec<usize> = (0..256).filter(|&c| !all[c]).collect();
        // Independently of the table: a code is produced when some bin's centre is nearer to it
        // than to its neighbours (inside the interval between the midpoints around it).
        let centres: Vec<f32> = (0..65_536u32)
            .map(|k| 2.0 * k as f32 / 65_535.0 - 1.0)
            .filter(|v| *v >= lo)
            .collect();
        let expected: Vec<usize> = (0..256)
            .filter(|&c| {
                let low = if c == 0 {
                    f32::NEG_INFINITY
                } else {
                    (code[c - 1] + code[c]) / 2.0
                };
                let high = if c == 255 {
                    f32::INFINITY
                } else {
                    (code[c] + code[c + 1]) / 2.0
                };
                !centres.iter().any(|v| *v >= low && *v < high)
            })
            .collect();
        println!("codes never produced {never:?}; 0 -> {zero}");
        assert_eq!(never, expected);
        // The signed map's 7 codes nearest zero (124-130); 11 of the unsigned map's 14 smallest.
        let signed = lo < 0.0;
        assert_eq!(never.len(), if signed { 7 } else { 11 });
        let widest = code.windows(2).map(|w| w[1] - w[0]).fold(0.0f32, f32::max);
        let (mut codes, mut absmax) = (vec![0u8; x.len()], vec![0.0; x.len().div_ceil(BLOCK)]);
        map.quantize(&x, &mut codes, &mut absmax);
        let mut back = vec![0.0; x.len()];
        map.dequantize(&codes, &absmax, &mut back);
        for (i, (a, b)) in x.iter().zip(&back).enumerate() {
            assert!((a - b).abs() <= widest * absmax[i / BLOCK], "{a} -> {b}");
        }
    }
}

fn config_of(run: &Value) -> BnbConfig {
    let h = &run["hyper"];
    let f = |k: &str| h[k].as_f64().unwrap();
    match h["optimizer"].as_str().unwrap() {
        "rmsprop" => BnbConfig::rmsprop(f("lr"), f("alpha"), f("eps"), f("weight_decay")),
        "adam" => BnbConfig::adam(f("lr"), f("beta1"), f("beta2"), f("eps"), f("weight_decay")),
        "momentum" => BnbConfig::momentum(f("lr"), f("momentum"), f("weight_decay")),
        "adagrad" => BnbConfig::adagrad(f("lr"), f("eps"), f("weight_decay")),
        other => panic!("unknown optimizer {other}"),
    }
}

/// Each step from the recorded parameters before it (the state runs free): the state codes and
/// absmax equal bitsandbytes' at every step, and the parameters too, except at elements where
/// torch's float32 sqrt was not correctly rounded (recorded per step; ours is).
#[test]
fn eight_bit_optimizers_reproduce_bitsandbytes() {
    for name in [
        "rmsprop",
        "rmsprop_weight_decay",
        "adam",
        "adamw",
        "momentum",
        "adagrad",
    ] {
        let v = vectors(&format!("bnb_{name}"));
        let run = &v["run"];
        let config = config_of(run);
        let names: Vec<&str> = config.layout().buffers().iter().map(|b| b.name).collect();
        let mut opt = Blockwise8::new(config.clone(), 0).unwrap();
        let mut p = floats(&run["params0"]);
        let mut inexact_total = 0;
        for (k, step) in run["steps"].as_array().unwrap().iter().enumerate() {
            let g = floats(&step["grad"]);
            opt.step(&mut [&mut p], &[&g]).unwrap();
            for (i, key) in [("state1", "absmax1"), ("state2", "absmax2")]
                .iter()
                .enumerate()
                .take(names.len())
            {
                let (codes, absmax) = opt.quantized(0, names[i]).unwrap();
                assert_eq!(
                    bits(absmax),
                    bits(&floats(&step[key.1])),
                    "{name} step {}: {} absmax",
                    k + 1,
                    names[i]
                );
                assert!(
                    codes == bytes(&step[key.0]).as_slice(),
                    "{name} step {}: {} codes",
                    k + 1,
                    names[i]
                );
            }
            let want = floats(&step["params"]);
            let inexact: Vec<usize> = step["sqrt_inexact"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap() as usize)
                .collect();
            inexact_total += inexact.len();
            for (i, (a, b)) in p.iter().zip(&want).enumerate() {
                if a.to_bits() != b.to_bits() {
                    assert!(
                        inexact.binary_search(&i).is_ok(),
                        "{name} step {}: parameter {i} is {a}, bitsandbytes {b}, and torch's sqrt was exact there",
                        k + 1
                    );
                }
            }
            p = want;
        }
        if config.rule == BnbRule::Momentum {
            assert_eq!(inexact_total, 0, "momentum takes no square root");
        }
    }
}

/// The same rules with `f32` state (bitsandbytes' 32-bit optimizers, in effect) and with 8-bit
/// state, on a long run of a noisy quadratic: 8 bits stay within a small distance.
#[test]
fn eight_bit_state_tracks_f32_state() {
    fn run<A: Algorithm>(config: A) -> (f32, usize, usize) {
        let n = 5000;
        let target: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let mut exact = Optim::<A, f32>::new(config.clone()).unwrap();
        let mut eight = Blockwise8::new(config, 0).unwrap();
        let (mut p32, mut p8) = (vec![0.0f32; n], vec![0.0f32; n]);
        for t in 0..300 {
            let noise = |i: usize| (((i * 31 + t * 17) % 97) as f32 / 97.0 - 0.5) * 0.1;
            let g32: Vec<f32> = (0..n)
                .map(|i| 2.0 * (p32[i] - target[i]) + noise(i))
                .collect();
            let g8: Vec<f32> = (0..n)
                .map(|i| 2.0 * (p8[i] - target[i]) + noise(i))
                .collect();
            exact.step_single(&mut p32, &g32).unwrap();
            eight.step(&mut [&mut p8], &[&g8]).unwrap();
        }
        let gap = p32
            .iter()
            .zip(&p8)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        let b32: usize = exact
            .state_buffers(0)
            .iter()
            .map(|(_, b)| b.len() * 4)
            .sum();
        (gap, b32, eight.state_bytes())
    }
    for (name, (gap, b32, b8)) in [
        ("rmsprop", run(RmsPropConfig::pytorch().with_lr(0.01))),
        (
            "rmsprop centered momentum",
            run(RmsPropConfig::pytorch()
                .with_lr(0.003)
                .with_centered(true)
                .with_momentum(0.9)),
        ),
        ("adam", run(AdamConfig::pytorch().with_lr(0.01))),
        ("momentum", run(SgdConfig::momentum(0.01, 0.9))),
        ("adagrad", run(AdagradConfig::pytorch().with_lr(0.1))),
        (
            "bnb rmsprop",
            run(BnbConfig::rmsprop(0.01, 0.99, 1e-8, 0.0)),
        ),
        (
            "bnb adam",
            run(BnbConfig::adam(0.01, 0.9, 0.999, 1e-8, 0.0)),
        ),
    ] {
        assert!(gap < 0.05, "{name}: 8-bit parameters {gap} from f32");
        // A byte per element and 4 per block, against 4 per element.
        assert!(b8 * 3 < b32, "{name}: {b8} bytes against {b32}");
    }
}

#[test]
fn threads_and_small_tensors() {
    let n = 100_003;
    let g: Vec<f32> = (0..n).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
    let mut one = Blockwise8::new(RmsPropConfig::pytorch(), 0).unwrap();
    let mut two = one.clone();
    two.set_execution(Execution::threads(2).unwrap().with_split(1, 2048));
    let (mut a, mut b) = (vec![1.0f32; n], vec![1.0f32; n]);
    for _ in 0..3 {
        one.step(&mut [&mut a], &[&g]).unwrap();
        two.step(&mut [&mut b], &[&g]).unwrap();
    }
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(
        one.quantized(0, "square_avg"),
        two.quantized(0, "square_avg")
    );
    // Below min_8bit_size the state is f32, as the plain optimizer's.
    let mut small = Blockwise8::new(RmsPropConfig::pytorch(), 4096).unwrap();
    let mut plain = Optim::<RmsPropConfig, f32>::new(RmsPropConfig::pytorch()).unwrap();
    let (mut x, mut y) = (vec![1.0f32; 100], vec![1.0f32; 100]);
    small.step(&mut [&mut x], &[&g[..100]]).unwrap();
    plain.step_single(&mut y, &g[..100]).unwrap();
    assert_eq!(bits(&x), bits(&y));
    assert!(small.quantized(0, "square_avg").is_none());
    assert_eq!(small.state_bytes(), 400);
}

#[test]
fn a_failed_or_skipped_step_changes_nothing() {
    // Sequential, and on two threads with the gradient screen split into small pieces.
    for exec in [
        Execution::sequential(),
        Execution::threads(2).unwrap().with_split(1, 256),
    ] {
        failed_or_skipped_step_changes_nothing(exec);
    }
}

fn failed_or_skipped_step_changes_nothing(exec: Execution) {
    let mut opt = Blockwise8::new(BnbConfig::adam(0.01, 0.9, 0.999, 1e-8, 0.0), 0).unwrap();
    opt.set_execution(exec);
    let mut p = vec![1.0f32; 600];
    let g = vec![0.5f32; 600];
    opt.step(&mut [&mut p], &[&g]).unwrap();
    let (before, state) = (p.clone(), opt.buffer(0, "exp_avg").unwrap());
    let mut bad = g.clone();
    bad[300] = f32::NAN;
    let err = opt.step(&mut [&mut p], &[&bad]).unwrap_err();
    assert!(
        matches!(
            err,
            rmsprop::Error::NonFiniteGradient {
                index: 0,
                element: 300,
                ..
            }
        ),
        "{err}"
    );
    assert!(opt.step(&mut [&mut p], &[&g[..599]]).is_err());
    assert_eq!(
        (bits(&p), opt.buffer(0, "exp_avg").unwrap()),
        (bits(&before), state.clone())
    );
    assert_eq!(opt.steps(), 1);
    let mut opt = opt.with_non_finite(NonFinitePolicy::Skip);
    opt.step(&mut [&mut p], &[&bad]).unwrap();
    assert_eq!(
        (bits(&p), opt.buffer(0, "exp_avg").unwrap()),
        (bits(&before), state)
    );
    assert_eq!((opt.steps(), opt.skipped_steps()), (1, 1));
}

/// bf16 parameters and gradients with 8-bit state: each step is the `f32`-parameter step on the
/// widened values, rounded to nearest, with the same state codes (the state runs in parallel).
#[cfg(feature = "half")]
#[test]
fn half_parameters_with_8_bit_state_are_the_f32_step_rounded() {
    use half::bf16;
    let n: usize = 3000;
    let mut half_opt: Blockwise8<RmsPropConfig, bf16> =
        Blockwise8::new(RmsPropConfig::pytorch().with_momentum(0.9), 0).unwrap();
    let mut wide_opt: Blockwise8<RmsPropConfig> =
        Blockwise8::new(RmsPropConfig::pytorch().with_momentum(0.9), 0).unwrap();
    let mut p: Vec<bf16> = (0..n)
        .map(|i| bf16::from_f32(((i * 37) % 101) as f32 / 50.0 - 1.0))
        .collect();
    for k in 0..5 {
        let g: Vec<bf16> = (0..n)
            .map(|i| bf16::from_f32((((i + k) * 13) % 97) as f32 / 40.0 - 1.2))
            .collect();
        let mut p32: Vec<f32> = p.iter().map(|x| x.to_f32()).collect();
        let g32: Vec<f32> = g.iter().map(|x| x.to_f32()).collect();
        half_opt.step(&mut [&mut p], &[&g]).unwrap();
        wide_opt.step(&mut [&mut p32], &[&g32]).unwrap();
        let rounded: Vec<u16> = p32.iter().map(|x| bf16::from_f32(*x).to_bits()).collect();
        let got: Vec<u16> = p.iter().map(|x| x.to_bits()).collect();
        assert_eq!(got, rounded, "step {k}");
        for name in ["square_avg", "momentum_buffer"] {
            assert_eq!(half_opt.quantized(0, name), wide_opt.quantized(0, name));
        }
    }
    // 2 bytes of parameter and gradient, 1 + 4/256 of each state buffer.
    assert_eq!(half_opt.state_bytes(), 2 * (n + 4 * n.div_ceil(256)));
}

/// README's memory table: the state's bytes for each storage, plain RMSProp (one buffer) on
/// 1,024 parameters (4 blocks).
#[cfg(feature = "half")]
#[test]
fn state_bytes_per_storage() {
    use half::bf16;
    use rmsprop::mixed::{Mixed, MixedOptions, StateStorage};
    let n = 1024;
    let g32 = vec![0.5f32; n];
    let g16 = vec![bf16::from_f32(0.5); n];
    let mixed = |state, master| {
        let options = MixedOptions {
            state,
            master,
            ..MixedOptions::default()
        };
        let mut o = Mixed::<_, bf16>::new(RmsPropConfig::pytorch(), options).unwrap();
        o.step(&mut [&mut vec![bf16::from_f32(1.0); n]], &[&g16])
            .unwrap();
        o.state_bytes()
    };
    assert_eq!(mixed(StateStorage::F32, false), 4 * n);
    assert_eq!(mixed(StateStorage::Half, false), 2 * n);
    assert_eq!(mixed(StateStorage::Half, true), 2 * n + 4 * n);
    let mut q32 = Blockwise8::new(RmsPropConfig::pytorch(), 0).unwrap();
    q32.step(&mut [&mut vec![1.0f32; n]], &[&g32]).unwrap();
    assert_eq!(q32.state_bytes(), n + 4 * 4);
    let mut q16: Blockwise8<RmsPropConfig, bf16> =
        Blockwise8::new(RmsPropConfig::pytorch(), 0).unwrap();
    q16.step(&mut [&mut vec![bf16::from_f32(1.0); n]], &[&g16])
        .unwrap();
    assert_eq!(q16.state_bytes(), n + 4 * 4);
    let mut plain = Optim::<RmsPropConfig, f32>::new(RmsPropConfig::pytorch()).unwrap();
    plain.step_single(&mut vec![1.0f32; n], &g32).unwrap();
    assert_eq!(plain.state_buffers(0)[0].1.len() * 4, 4 * n);
}
