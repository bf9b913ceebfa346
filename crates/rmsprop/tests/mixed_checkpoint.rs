//! Checkpoints of half-precision optimizers (`Mixed`): a run saved mid-way and resumed gives the
//! uninterrupted run's bits, with state stored as bf16/f16 (2 bytes) or f32 and the master copy
//! in f32; damaged or mismatched files are refused and change nothing.
#![cfg(all(feature = "half", feature = "checkpoint"))]

use half::{bf16, f16};
use rmsprop::checkpoint::CheckpointError;
use rmsprop::mixed::{Half, Mixed, MixedOptions, Rounding, StateStorage};
use rmsprop::{AdamConfig, Algorithm, RmsPropConfig};
use safetensors::{Dtype, SafeTensors};

fn values<H: Half>(n: usize, seed: u32) -> Vec<H> {
    (0..n)
        .map(|i| {
            let k = (i as u32).wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503);
            H::from_f32(((k % 2001) as f32 - 1000.0) / 500.0)
        })
        .collect()
}

fn step<A: Algorithm, H: Half>(opt: &mut Mixed<A, H>, params: &mut [Vec<H>], k: u32) {
    let grads: Vec<Vec<H>> = params
        .iter()
        .enumerate()
        .map(|(i, p)| values(p.len(), k * 7 + i as u32))
        .collect();
    let mut refs: Vec<&mut [H]> = params.iter_mut().map(|p| &mut p[..]).collect();
    let g: Vec<&[H]> = grads.iter().map(|g| &g[..]).collect();
    opt.step(&mut refs, &g).unwrap();
}

/// Ten steps straight, against five, a save to bytes, a load into a fresh optimizer, five more.
fn resumes_bit_for_bit<A, H>(config: A, options: MixedOptions)
where
    A: Algorithm + serde::Serialize + serde::de::DeserializeOwned + Clone,
    H: Half,
{
    let start: Vec<Vec<H>> = vec![values(5000, 1), values(3, 2)];
    let mut straight = Mixed::<A, H>::new(config.clone(), options).unwrap();
    let mut p1 = start.clone();
    for k in 0..10 {
        step(&mut straight, &mut p1, k);
    }
    let mut first = Mixed::<A, H>::new(config.clone(), options).unwrap();
    let mut p2 = start;
    for k in 0..5 {
        step(&mut first, &mut p2, k);
    }
    let bytes = first.to_bytes().unwrap();
    let mut resumed = Mixed::<A, H>::new(config, options).unwrap();
    resumed.from_bytes(&bytes).unwrap();
    for k in 5..10 {
        step(&mut resumed, &mut p2, k);
    }
    let bits = |p: &[Vec<H>]| -> Vec<u16> { p.iter().flatten().map(|x| x.to_bits()).collect() };
    assert_eq!(bits(&p1), bits(&p2));
    assert_eq!(resumed.steps(), straight.steps());
    assert_eq!(resumed.state_bytes(), straight.state_bytes());
    for t in 0..2 {
        assert_eq!(resumed.master(t), straight.master(t));
    }
}

#[test]
fn rmsprop_and_adam_resume_bit_for_bit_in_every_storage() {
    for state in [StateStorage::F32, StateStorage::Half] {
        for master in [false, true] {
            for rounding in [Rounding::Nearest, Rounding::Stochastic { seed: 3 }] {
                let options = MixedOptions {
                    state,
                    master,
                    rounding,
                };
                resumes_bit_for_bit::<_, bf16>(
                    RmsPropConfig::pytorch()
                        .with_centered(true)
                        .with_momentum(0.9),
                    options,
                );
                resumes_bit_for_bit::<_, f16>(RmsPropConfig::keras(), options);
                resumes_bit_for_bit::<_, bf16>(AdamConfig::pytorch(), options);
            }
        }
    }
}

/// Half state is stored as 2-byte tensors of the half type, the master copy as f32.
#[test]
fn tensors_keep_their_storage_types() {
    let options = MixedOptions {
        state: StateStorage::Half,
        master: true,
        ..MixedOptions::default()
    };
    let mut opt = Mixed::<RmsPropConfig, bf16>::new(RmsPropConfig::pytorch(), options).unwrap();
    let mut p = vec![values::<bf16>(10, 1)];
    step(&mut opt, &mut p, 0);
    let bytes = opt.to_bytes().unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(file.tensor("0.square_avg").unwrap().dtype(), Dtype::BF16);
    assert_eq!(file.tensor("0.square_avg").unwrap().data().len(), 20);
    assert_eq!(file.tensor("0.master").unwrap().dtype(), Dtype::F32);
    let mut f16_opt = Mixed::<RmsPropConfig, f16>::new(RmsPropConfig::pytorch(), options).unwrap();
    let mut q = vec![values::<f16>(10, 1)];
    step(&mut f16_opt, &mut q, 0);
    let bytes = f16_opt.to_bytes().unwrap();
    assert_eq!(
        SafeTensors::deserialize(&bytes)
            .unwrap()
            .tensor("0.square_avg")
            .unwrap()
            .dtype(),
        Dtype::F16
    );
}

#[test]
fn damaged_or_mismatched_files_are_refused_and_change_nothing() {
    let options = MixedOptions {
        state: StateStorage::Half,
        ..MixedOptions::default()
    };
    let mut opt = Mixed::<RmsPropConfig, bf16>::new(RmsPropConfig::pytorch(), options).unwrap();
    let mut p = vec![values::<bf16>(64, 1)];
    step(&mut opt, &mut p, 0);
    let bytes = opt.to_bytes().unwrap();

    let mut target = Mixed::<RmsPropConfig, bf16>::new(RmsPropConfig::pytorch(), options).unwrap();
    let mut q = vec![values::<bf16>(64, 9)];
    for k in 0..3 {
        step(&mut target, &mut q, k);
    }
    let before = (target.steps(), target.buffer(0, "square_avg"));
    let unchanged =
        |t: &Mixed<RmsPropConfig, bf16>| assert_eq!((t.steps(), t.buffer(0, "square_avg")), before);

    // A flipped byte in the last tensor byte: the checksum.
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    assert!(matches!(
        target.from_bytes(&bad),
        Err(CheckpointError::Checksum { .. })
    ));
    unchanged(&target);
    // Truncated.
    assert!(matches!(
        target.from_bytes(&bytes[..bytes.len() / 2]),
        Err(CheckpointError::Unreadable(_))
    ));
    unchanged(&target);
    // Another half type, another storage, another algorithm.
    let mut other = Mixed::<RmsPropConfig, f16>::new(RmsPropConfig::pytorch(), options).unwrap();
    let err = other.from_bytes(&bytes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "checkpoint is for dtype `bfloat16`, but the optimizer loading it is `float16`"
    );
    let mut wide =
        Mixed::<RmsPropConfig, bf16>::new(RmsPropConfig::pytorch(), MixedOptions::default())
            .unwrap();
    assert!(wide
        .from_bytes(&bytes)
        .unwrap_err()
        .to_string()
        .contains("state storage `half`"));
    let mut adam = Mixed::<AdamConfig, bf16>::new(AdamConfig::pytorch(), options).unwrap();
    assert!(adam
        .from_bytes(&bytes)
        .unwrap_err()
        .to_string()
        .contains("optimizer `rmsprop`"));
    // The good file still loads, with its configuration and counts.
    target.from_bytes(&bytes).unwrap();
    assert_eq!(
        (target.steps(), target.buffer(0, "square_avg")),
        (opt.steps(), opt.buffer(0, "square_avg"))
    );
}

#[test]
fn save_and_load_go_through_a_file_atomically() {
    let dir = std::env::temp_dir().join(format!("rmsprop-mixed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("opt.safetensors");
    let mut opt =
        Mixed::<AdamConfig, bf16>::new(AdamConfig::pytorch(), MixedOptions::default()).unwrap();
    let mut p = vec![values::<bf16>(100, 1)];
    step(&mut opt, &mut p, 0);
    opt.save(&path).unwrap();
    let mut back =
        Mixed::<AdamConfig, bf16>::new(AdamConfig::pytorch(), MixedOptions::default()).unwrap();
    back.load(&path).unwrap();
    assert_eq!(back.buffer(0, "exp_avg_sq"), opt.buffer(0, "exp_avg_sq"));
    let missing = back.load(&dir.join("nope")).unwrap_err();
    assert!(matches!(missing, CheckpointError::Io { .. }), "{missing}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Every single-bit change anywhere in a file is refused (the checksum covers the metadata too),
/// and a refused load changes nothing.
#[test]
fn every_bit_flip_is_refused() {
    let options = MixedOptions {
        state: StateStorage::Half,
        rounding: Rounding::Stochastic { seed: 3 },
        master: true,
    };
    let mut opt = Mixed::<RmsPropConfig, bf16>::new(RmsPropConfig::pytorch(), options).unwrap();
    let mut p = vec![values::<bf16>(40, 1)];
    step(&mut opt, &mut p, 0);
    let good = opt.to_bytes().unwrap();
    let mut target = Mixed::<RmsPropConfig, bf16>::new(RmsPropConfig::pytorch(), options).unwrap();
    step(&mut target, &mut [values::<bf16>(40, 2)], 0);
    let before = (
        target.buffer(0, "square_avg"),
        target.master(0).map(<[f32]>::to_vec),
    );
    for bit in 0..good.len() * 8 {
        let mut bytes = good.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        assert!(
            target.from_bytes(&bytes).is_err(),
            "bit {bit} flipped was accepted"
        );
    }
    let after = (
        target.buffer(0, "square_avg"),
        target.master(0).map(<[f32]>::to_vec),
    );
    assert_eq!(after, before);
}

/// A file can hold the bf16 parameters too (version 2), stored as BF16: they come back bit for
/// bit with the state and master copy; parameters that do not fit are refused whole.
#[test]
fn parameters_travel_with_the_state() {
    let options = MixedOptions {
        state: StateStorage::Half,
        master: true,
        ..MixedOptions::default()
    };
    let mut opt = Mixed::<RmsPropConfig, bf16>::new(RmsPropConfig::pytorch(), options).unwrap();
    let mut p: Vec<Vec<bf16>> = vec![values(50, 1), values(3, 2)];
    step(&mut opt, &mut p, 0);
    let views: Vec<&[bf16]> = p.iter().map(|v| &v[..]).collect();
    let with = opt.to_bytes_with(Some(&views)).unwrap();
    let file = SafeTensors::deserialize(&with).unwrap();
    assert_eq!(file.tensor("param.0").unwrap().dtype(), Dtype::BF16);
    assert_eq!(
        file.tensor("param.0").unwrap().data().len(),
        100,
        "2 bytes each"
    );

    let mut back = Mixed::<RmsPropConfig, bf16>::new(RmsPropConfig::pytorch(), options).unwrap();
    assert_eq!(back.from_bytes_with(&with).unwrap(), Some(p.clone()));
    assert_eq!(back.buffer(0, "square_avg"), opt.buffer(0, "square_avg"));
    assert_eq!(
        back.from_bytes_with(&opt.to_bytes().unwrap()).unwrap(),
        None
    );

    let mut target = Mixed::<RmsPropConfig, bf16>::new(RmsPropConfig::pytorch(), options).unwrap();
    step(&mut target, &mut [values(50, 5), values(3, 6)], 1);
    let before = target.to_bytes().unwrap();
    let short = [&p[0][..49], &p[1][..]];
    let err = opt.to_bytes_with(Some(&short)).unwrap_err().to_string();
    assert!(err.contains("params"), "{err}");
    // f16 parameters in a bf16 optimizer's file: refused (the half type differs).
    let mut f16_opt = Mixed::<RmsPropConfig, f16>::new(RmsPropConfig::pytorch(), options).unwrap();
    let mut h: Vec<Vec<f16>> = vec![values(50, 1), values(3, 2)];
    step(&mut f16_opt, &mut h, 0);
    let hv: Vec<&[f16]> = h.iter().map(|v| &v[..]).collect();
    assert!(target
        .from_bytes_with(&f16_opt.to_bytes_with(Some(&hv)).unwrap())
        .is_err());
    assert_eq!(target.to_bytes().unwrap(), before, "nothing changed");
}

/// A version-1 file (written before parameters could be stored, kept in `tests/fixtures`) still
/// loads: bf16 state and master copy equal what the same three steps give today.
#[test]
fn version_1_files_still_load() {
    let options = MixedOptions {
        state: StateStorage::Half,
        master: true,
        ..MixedOptions::default()
    };
    let config = RmsPropConfig::pytorch().with_momentum(0.9);
    let bytes = include_bytes!("fixtures/mixed_v1_bf16_half_state_master.safetensors");
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    assert_eq!(meta.metadata().as_ref().unwrap()["format_version"], "1");
    let mut loaded = Mixed::<RmsPropConfig, bf16>::new(config.clone(), options).unwrap();
    assert_eq!(loaded.from_bytes_with(bytes).unwrap(), None);
    let mut fresh = Mixed::<RmsPropConfig, bf16>::new(config, options).unwrap();
    let mut p: Vec<bf16> = values(7, 3);
    for k in 0..3 {
        let g: Vec<bf16> = values(7, 10 + k);
        fresh.step(&mut [&mut p[..]], &[&g[..]]).unwrap();
    }
    assert_eq!(loaded.steps(), 3);
    for name in ["square_avg", "momentum_buffer"] {
        assert_eq!(loaded.buffer(0, name), fresh.buffer(0, name), "{name}");
    }
    assert_eq!(loaded.master(0), fresh.master(0));
}
