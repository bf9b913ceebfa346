//! Checkpoints of 8-bit state (`Blockwise8`): a run saved mid-way and resumed gives the
//! uninterrupted run's bits, with codes stored as U8 and absmax as F32; damaged or mismatched
//! files are refused and change nothing.
#![cfg(feature = "checkpoint")]

use rmsprop::blockwise::{Blockwise8, BLOCKWISE_FORMAT};
use rmsprop::checkpoint::CheckpointError;
use rmsprop::optim::bnb::BnbConfig;
use rmsprop::{AdamConfig, Algorithm, RmsPropConfig};
use safetensors::{Dtype, SafeTensors};

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let k = (i as u32).wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503);
            ((k % 2001) as f32 - 1000.0) / 500.0
        })
        .collect()
}

fn step<A: Algorithm>(opt: &mut Blockwise8<A>, params: &mut [Vec<f32>], k: u32) {
    let grads: Vec<Vec<f32>> = params
        .iter()
        .enumerate()
        .map(|(i, p)| values(p.len(), k * 7 + i as u32))
        .collect();
    let mut refs: Vec<&mut [f32]> = params.iter_mut().map(|p| &mut p[..]).collect();
    let g: Vec<&[f32]> = grads.iter().map(|g| &g[..]).collect();
    opt.step(&mut refs, &g).unwrap();
}

/// Ten steps straight, against five, a save, a load into a fresh optimizer, five more: one
/// tensor of 8-bit state (5,000 elements, a partial last block) and one small f32 tensor.
fn resumes_bit_for_bit<A>(config: A)
where
    A: Algorithm + serde::Serialize + serde::de::DeserializeOwned,
{
    let start = vec![values(5000, 1), values(3, 2)];
    let mut straight = Blockwise8::new(config.clone(), 100).unwrap();
    let mut p1 = start.clone();
    for k in 0..10 {
        step(&mut straight, &mut p1, k);
    }
    let mut first = Blockwise8::new(config.clone(), 100).unwrap();
    let mut p2 = start;
    for k in 0..5 {
        step(&mut first, &mut p2, k);
    }
    let dir = std::env::temp_dir().join(format!("rmsprop-b8-{}-{}", std::process::id(), A::KIND));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("opt.safetensors");
    first.save(&path).unwrap();
    // A fresh optimizer with another min_8bit_size: the file's is restored.
    let mut resumed = Blockwise8::new(config, 0).unwrap();
    resumed.load(&path).unwrap();
    for k in 5..10 {
        step(&mut resumed, &mut p2, k);
    }
    let bits = |p: &[Vec<f32>]| -> Vec<u32> { p.iter().flatten().map(|x| x.to_bits()).collect() };
    assert_eq!(bits(&p1), bits(&p2));
    assert_eq!(resumed.steps(), straight.steps());
    assert_eq!(resumed.state_bytes(), straight.state_bytes());
    for name in resumed.config().layout().buffers().iter().map(|b| b.name) {
        assert_eq!(resumed.quantized(0, name), straight.quantized(0, name));
        assert_eq!(resumed.buffer(1, name), straight.buffer(1, name));
    }
    // The file keeps the storage types: U8 codes, F32 absmax, F32 for the small tensor.
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let first_buffer = resumed.config().layout().buffers()[0].name;
    let codes = file.tensor(&format!("0.{first_buffer}")).unwrap();
    assert_eq!((codes.dtype(), codes.shape()), (Dtype::U8, &[5000][..]));
    let absmax = file.tensor(&format!("0.{first_buffer}.absmax")).unwrap();
    assert_eq!((absmax.dtype(), absmax.shape()), (Dtype::F32, &[20][..]));
    let small = file.tensor(&format!("1.{first_buffer}")).unwrap();
    assert_eq!(small.dtype(), Dtype::F32);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_algorithm_resumes_bit_for_bit() {
    resumes_bit_for_bit(
        RmsPropConfig::pytorch()
            .with_centered(true)
            .with_momentum(0.9),
    );
    resumes_bit_for_bit(AdamConfig::pytorch());
    resumes_bit_for_bit(BnbConfig::adam(0.01, 0.9, 0.999, 1e-8, 0.01));
    resumes_bit_for_bit(BnbConfig::momentum(0.01, 0.9, 0.0));
}

#[test]
fn damaged_or_mismatched_files_are_refused_and_change_nothing() {
    let mut opt = Blockwise8::new(RmsPropConfig::pytorch(), 0).unwrap();
    let mut p = vec![values(700, 3)];
    step(&mut opt, &mut p, 0);
    let good = opt.to_bytes().unwrap();
    let mut target = Blockwise8::new(RmsPropConfig::pytorch(), 0).unwrap();
    let mut q = vec![values(700, 3)];
    step(&mut target, &mut q, 1);
    let before = target
        .quantized(0, "square_avg")
        .map(|(c, m)| (c.to_vec(), m.to_vec()));
    // A flipped byte in the codes: the checksum.
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        target.from_bytes(&flipped),
        Err(CheckpointError::Checksum { .. })
    ));
    // Another algorithm.
    let mut adam = Blockwise8::new(AdamConfig::pytorch(), 0).unwrap();
    step(&mut adam, &mut [values(700, 3)], 0);
    assert!(matches!(
        target.from_bytes(&adam.to_bytes().unwrap()),
        Err(CheckpointError::Mismatch {
            what: "optimizer",
            ..
        })
    ));
    // Not this format; truncated.
    assert!(target.from_bytes(&good[..good.len() / 2]).is_err());
    assert!(target.from_bytes(b"not a checkpoint").is_err());
    assert_eq!(
        target
            .quantized(0, "square_avg")
            .map(|(c, m)| (c.to_vec(), m.to_vec())),
        before,
        "nothing changed"
    );
    assert_ne!(
        target.quantized(0, "square_avg"),
        opt.quantized(0, "square_avg")
    );
    // And the good file loads.
    target.from_bytes(&good).unwrap();
    assert_eq!(
        target.quantized(0, "square_avg"),
        opt.quantized(0, "square_avg")
    );
    let (_, meta) = SafeTensors::read_metadata(&good).unwrap();
    assert_eq!(
        meta.metadata().as_ref().unwrap()["format"],
        BLOCKWISE_FORMAT
    );
}

/// Every single-bit change anywhere in a file (header, metadata, codes, absmax) is refused: the
/// checksum covers the metadata too. Random mutations never panic, and a refused load changes
/// nothing.
#[test]
fn every_bit_flip_is_refused_and_mutations_never_panic() {
    let mut opt = Blockwise8::new(BnbConfig::adam(0.01, 0.9, 0.999, 1e-8, 0.0), 100).unwrap();
    let mut p = vec![values(300, 5), values(7, 6)];
    step(&mut opt, &mut p, 0);
    step(&mut opt, &mut p, 1);
    let good = opt.to_bytes().unwrap();
    let mut target = Blockwise8::new(BnbConfig::adam(0.01, 0.9, 0.999, 1e-8, 0.0), 100).unwrap();
    step(&mut target, &mut [values(300, 8), values(7, 9)], 0);
    let state =
        |o: &Blockwise8<BnbConfig>| (o.buffer(0, "exp_avg"), o.buffer(1, "exp_avg_sq"), o.steps());
    let before = state(&target);
    let target_bytes = target.to_bytes().unwrap();
    let restore = |bytes: &[u8]| {
        let mut o = Blockwise8::new(BnbConfig::adam(0.01, 0.9, 0.999, 1e-8, 0.0), 100).unwrap();
        o.from_bytes(bytes).unwrap();
        o
    };
    for bit in 0..good.len() * 8 {
        let mut bytes = good.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        assert!(
            target.from_bytes(&bytes).is_err(),
            "bit {bit} flipped was accepted"
        );
    }
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..3000 {
        let mut bytes = good.clone();
        match round % 3 {
            0 => bytes.truncate(next() as usize % good.len()),
            1 => {
                for _ in 0..1 + next() % 8 {
                    let i = next() as usize % bytes.len();
                    bytes[i] = next() as u8;
                }
            }
            _ => bytes[..8].copy_from_slice(&(next() % (2 * good.len() as u64)).to_le_bytes()),
        }
        // A mutation can leave the file as it was (a byte rewritten with its own value) or
        // change only what does not count (the header's JSON padding, one whitespace for
        // another): such a file is the same checkpoint and loads as the good one. Anything else
        // is refused and changes nothing.
        if target.from_bytes(&bytes).is_ok() {
            assert_eq!(
                state(&target),
                state(&opt),
                "round {round}: accepted as another state"
            );
            target = restore(&target_bytes);
        }
    }
    assert_eq!(state(&target), before, "refused loads changed nothing");
    target.from_bytes(&good).unwrap();
    assert_eq!(state(&target), state(&opt));
}

/// A file can hold the parameters too (version 2): they come back bit for bit, in their own
/// type, and a file whose parameters do not fit is refused whole.
#[test]
fn parameters_travel_with_the_state() {
    let mut opt = Blockwise8::new(RmsPropConfig::pytorch(), 100).unwrap();
    let mut p = vec![values(300, 1), values(3, 2)];
    step(&mut opt, &mut p, 0);
    let views: Vec<&[f32]> = p.iter().map(|v| &v[..]).collect();
    let with = opt.to_bytes_with(Some(&views)).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&with).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(
        (meta["params"].as_str(), meta["format_version"].as_str()),
        ("2", "2")
    );
    let file = SafeTensors::deserialize(&with).unwrap();
    assert_eq!(file.tensor("param.1").unwrap().dtype(), Dtype::F32);

    let mut back = Blockwise8::new(RmsPropConfig::pytorch(), 0).unwrap();
    let params = back.from_bytes_with(&with).unwrap().expect("parameters");
    let bits = |p: &[Vec<f32>]| -> Vec<u32> { p.iter().flatten().map(|x| x.to_bits()).collect() };
    assert_eq!(bits(&params), bits(&p));
    assert_eq!(
        back.quantized(0, "square_avg"),
        opt.quantized(0, "square_avg")
    );
    // Without parameters: none come back; `from_bytes` reads either file.
    assert_eq!(
        back.from_bytes_with(&opt.to_bytes().unwrap()).unwrap(),
        None
    );
    back.from_bytes(&with).unwrap();

    // Parameters of another length than the state, or another count: not written.
    let short = [&p[0][..299], &p[1][..]];
    let count = [&p[0][..]];
    for bad in [&short[..], &count[..]] {
        let err = opt.to_bytes_with(Some(bad)).unwrap_err().to_string();
        assert!(err.contains("params"), "{err}");
    }
}

/// Parameters of another type (a bf16 file read where f32 is stepped) are refused by their
/// dtype, and nothing changes.
#[cfg(feature = "half")]
#[test]
fn parameters_of_another_type_are_refused() {
    use half::bf16;
    let mut target = Blockwise8::new(RmsPropConfig::pytorch(), 100).unwrap();
    let mut q = vec![values(300, 7), values(3, 8)];
    step(&mut target, &mut q, 3);
    let before = target.to_bytes().unwrap();
    let mut half = Blockwise8::<RmsPropConfig, bf16>::new(RmsPropConfig::pytorch(), 100).unwrap();
    let mut h: Vec<Vec<bf16>> = q
        .iter()
        .map(|v| v.iter().map(|&x| bf16::from_f32(x)).collect())
        .collect();
    let g: Vec<Vec<bf16>> = h
        .iter()
        .map(|v| vec![bf16::from_f32(0.5); v.len()])
        .collect();
    let mut refs: Vec<&mut [bf16]> = h.iter_mut().map(|v| &mut v[..]).collect();
    let gs: Vec<&[bf16]> = g.iter().map(|v| &v[..]).collect();
    half.step(&mut refs, &gs).unwrap();
    let hv: Vec<&[bf16]> = h.iter().map(|v| &v[..]).collect();
    let err = target
        .from_bytes_with(&half.to_bytes_with(Some(&hv)).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("BF16") && err.contains("F32"), "{err}");
    assert_eq!(target.to_bytes().unwrap(), before, "nothing changed");
}

/// A version-1 file (written before parameters could be stored, kept in `tests/fixtures`) still
/// loads: its state is what the same three steps give today, and the run goes on from it.
#[test]
fn version_1_files_still_load() {
    let config = RmsPropConfig::pytorch()
        .with_centered(true)
        .with_momentum(0.9);
    let bytes = include_bytes!("fixtures/blockwise8_v1_rmsprop_centered_momentum.safetensors");
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    assert_eq!(meta.metadata().as_ref().unwrap()["format_version"], "1");
    let mut loaded = Blockwise8::new(config.clone(), 0).unwrap();
    assert_eq!(loaded.from_bytes_with(bytes).unwrap(), None);
    let mut fresh = Blockwise8::new(config, 100).unwrap();
    let mut p = vec![values(300, 1), values(3, 2)];
    for k in 0..3 {
        step(&mut fresh, &mut p, k);
    }
    assert_eq!(loaded.steps(), 3);
    for name in ["square_avg", "grad_avg", "momentum_buffer"] {
        assert_eq!(
            loaded.quantized(0, name),
            fresh.quantized(0, name),
            "{name}"
        );
        assert_eq!(loaded.buffer(1, name), fresh.buffer(1, name), "{name}");
    }
    let mut q = p.clone();
    step(&mut fresh, &mut p, 3);
    step(&mut loaded, &mut q, 3);
    assert_eq!(p, q);
}
