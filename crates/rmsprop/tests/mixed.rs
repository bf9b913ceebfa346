//! Half-precision parameters (`Mixed`): the same numbers as the f32 optimizer followed by a
//! rounding, across chunk boundaries; half-precision state; stochastic rounding that is
//! reproducible and keeps small updates alive; a master copy; refused steps that change nothing.
#![cfg(feature = "half")]

use half::{bf16, f16};
use rmsprop::mixed::{round_stochastic, Half, Mixed, MixedOptions, Rounding, StateStorage};
use rmsprop::{AdamConfig, Algorithm, NonFinitePolicy, Optim, Optimizer, RmsPropConfig};

fn values<H: Half>(n: usize, seed: u32) -> Vec<H> {
    (0..n)
        .map(|i| {
            let k = (i as u32).wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503);
            H::from_f32(((k % 2001) as f32 - 1000.0) / 500.0)
        })
        .collect()
}

/// Steps `Mixed` and, independently, the f32 optimizer on the widened values with f32 state,
/// rounding its parameters to `H` after each step: the bits must agree.
fn same_as_f32_then_rounded<A: Algorithm, H: Half>(config: A, len: usize) {
    let mut mixed = Mixed::<A, H>::new(config.clone(), MixedOptions::default()).unwrap();
    let mut wide = Optim::<A, f32>::new(config).unwrap();
    let mut p: Vec<H> = values(len, 1);
    let mut q: Vec<f32> = p.iter().map(|x| x.to_f32()).collect();
    for step in 0..5 {
        let g: Vec<H> = values(len, 10 + step);
        let g32: Vec<f32> = g.iter().map(|x| x.to_f32()).collect();
        mixed.step(&mut [&mut p], &[&g]).unwrap();
        wide.step(&mut [&mut q], &[&g32]).unwrap();
        // The reference rounds its parameters, as Mixed stores them.
        for x in &mut q {
            *x = H::from_f32(*x).to_f32();
        }
        assert!(
            p.iter()
                .zip(&q)
                .all(|(a, b)| a.to_f32().to_bits() == b.to_bits()),
            "{} step {step}",
            H::DTYPE
        );
    }
    assert_eq!(mixed.steps(), 5);
}

#[test]
fn half_parameters_follow_the_f32_optimizer_rounded_across_chunks() {
    let rms = RmsPropConfig::pytorch()
        .with_centered(true)
        .with_momentum(0.9);
    for len in [3, 2048, 5000] {
        same_as_f32_then_rounded::<_, bf16>(rms.clone(), len);
        same_as_f32_then_rounded::<_, f16>(rms.clone(), len);
        same_as_f32_then_rounded::<_, bf16>(AdamConfig::pytorch(), len);
    }
}

#[test]
fn half_state_is_the_f32_state_rounded_after_each_step() {
    let config = RmsPropConfig::pytorch().with_momentum(0.9);
    let options = MixedOptions {
        state: StateStorage::Half,
        ..MixedOptions::default()
    };
    let mut mixed = Mixed::<_, bf16>::new(config.clone(), options).unwrap();
    let mut p: Vec<bf16> = values(3000, 2);
    // Reference: one f32 step from the widened half state, then everything rounded.
    let mut v = vec![0.0f32; 3000];
    let mut b = vec![0.0f32; 3000];
    let mut q: Vec<f32> = p.iter().map(|x| x.to_f32()).collect();
    for step in 0..4u64 {
        let g: Vec<bf16> = values(3000, 20 + step as u32);
        let g32: Vec<f32> = g.iter().map(|x| x.to_f32()).collect();
        mixed.step(&mut [&mut p], &[&g]).unwrap();
        let mut reference = Optim::<RmsPropConfig, f32>::new(config.clone()).unwrap();
        let mut views = [rmsprop::StateView::new(step, vec![&mut v[..], &mut b[..]])];
        reference
            .step_external(&mut [&mut q[..]], &[&g32[..]], &mut views)
            .unwrap();
        for x in q.iter_mut().chain(v.iter_mut()).chain(b.iter_mut()) {
            *x = bf16::from_f32(*x).to_f32();
        }
        assert!(
            p.iter().zip(&q).all(|(a, b)| a.to_f32() == *b),
            "step {step}"
        );
        assert_eq!(mixed.buffer(0, "square_avg").unwrap(), v);
        assert_eq!(mixed.buffer(0, "momentum_buffer").unwrap(), b);
    }
    // Half the bytes of f32 state.
    assert_eq!(mixed.state_bytes(), 2 * 3000 * 2);
}

#[test]
fn stochastic_rounding_is_reproducible_and_keeps_small_updates() {
    // An update of lr = 1e-3 per step on a parameter of 1.0: a quarter of bf16's unit in the
    // last place there (2^-7), so rounding to nearest loses every update.
    let config = || rmsprop::SgdConfig::plain(1e-3);
    let run = |rounding: Rounding, master: bool| {
        let options = MixedOptions {
            rounding,
            master,
            ..MixedOptions::default()
        };
        let mut opt = Mixed::<_, bf16>::new(config(), options).unwrap();
        let mut p = vec![bf16::from_f32(1.0); 256];
        let g = vec![bf16::from_f32(1.0); 256];
        for _ in 0..500 {
            opt.step(&mut [&mut p], &[&g]).unwrap();
        }
        (p, opt)
    };
    let (nearest, _) = run(Rounding::Nearest, false);
    assert!(
        nearest.iter().all(|x| x.to_f32() == 1.0),
        "rounding to nearest stalls"
    );
    let (a, _) = run(Rounding::Stochastic { seed: 7 }, false);
    let (b, _) = run(Rounding::Stochastic { seed: 7 }, false);
    let (c, _) = run(Rounding::Stochastic { seed: 8 }, false);
    assert_eq!(a, b, "the same seed gives the same bits");
    assert_ne!(a, c);
    // 500 steps of 1e-3: 0.5 on average; unbiased rounding gets there within the noise.
    let mean = a.iter().map(|x| x.to_f32() as f64).sum::<f64>() / a.len() as f64;
    assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
    // With a master copy the f32 parameters move exactly and the half ones are their rounding.
    let (m, opt) = run(Rounding::Nearest, true);
    let master = opt.master(0).unwrap();
    assert!((master[0] - 0.5).abs() < 1e-3, "{}", master[0]);
    assert!(m
        .iter()
        .zip(master)
        .all(|(h, f)| h.to_f32() == bf16::from_f32(*f).to_f32()));
}

#[test]
fn stochastic_rounding_picks_a_neighbour_with_the_right_odds() {
    // Every case: positive, negative, around zero, f16 subnormals; always one of the two
    // neighbours, exact values unchanged, and the frequency of rounding up near the fraction.
    let cases: [f32; 5] = [1.0 + 3.0 * 2f32.powi(-12), -2.5e-3, 1e-6, -1e-7, 6.0e-5];
    for &x in &cases {
        let nearest = f16::from_f32(x).to_f32();
        let mut ups = 0u32;
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for i in 0..20_000u64 {
            let r = round_stochastic::<f16>(x, rmsprop::mixed::random_bits(3, 0, 0, i)).to_f32();
            lo = lo.min(r);
            hi = hi.max(r);
            ups += (r > x) as u32;
        }
        assert!(
            lo <= x && x <= hi && (lo == nearest || hi == nearest),
            "{x}: {lo}..{hi}"
        );
        let p = (x - lo) as f64 / (hi - lo) as f64;
        let freq = ups as f64 / 20_000.0;
        assert!((freq - p).abs() < 0.02, "{x}: up {freq} vs {p}");
    }
    assert_eq!(round_stochastic::<bf16>(1.5, 12345).to_f32(), 1.5);
    assert!(round_stochastic::<bf16>(f32::NAN, 1).to_f32().is_nan());
}

#[test]
fn a_refused_step_changes_nothing() {
    let mut opt = Mixed::<_, bf16>::new(RmsPropConfig::pytorch(), MixedOptions::default()).unwrap();
    let mut p: Vec<bf16> = values(10, 3);
    let g: Vec<bf16> = values(10, 4);
    opt.step(&mut [&mut p], &[&g]).unwrap();
    let before = (p.clone(), opt.buffer(0, "square_avg"));
    let mut bad = g.clone();
    bad[4] = bf16::NAN;
    let err = opt.step(&mut [&mut p], &[&bad]).unwrap_err();
    assert!(err.to_string().contains("element 4"), "{err}");
    assert!(opt.step(&mut [&mut p], &[&g[..5]]).is_err());
    assert_eq!((p.clone(), opt.buffer(0, "square_avg")), before);
    let mut opt = opt.with_non_finite(NonFinitePolicy::Skip);
    opt.step(&mut [&mut p], &[&bad]).unwrap();
    assert_eq!((opt.steps(), opt.skipped_steps()), (1, 1));
    assert_eq!((p, opt.buffer(0, "square_avg")), before);
}

#[test]
fn threads_give_the_same_bits() {
    let options = MixedOptions {
        state: StateStorage::Half,
        rounding: Rounding::Stochastic { seed: 11 },
        master: false,
    };
    let config = RmsPropConfig::pytorch()
        .with_centered(true)
        .with_momentum(0.9);
    let mut one = Mixed::<_, bf16>::new(config.clone(), options).unwrap();
    let mut two = Mixed::<_, bf16>::new(config, options).unwrap();
    two.set_execution(
        rmsprop::Execution::threads(2)
            .unwrap()
            .with_split(1 << 12, 1 << 11),
    );
    let mut a: Vec<bf16> = values(100_003, 5);
    let mut b = a.clone();
    for step in 0..3 {
        let g: Vec<bf16> = values(100_003, 50 + step);
        one.step(&mut [&mut a], &[&g]).unwrap();
        two.step(&mut [&mut b], &[&g]).unwrap();
    }
    assert_eq!(a, b);
    assert_eq!(
        one.buffer(0, "momentum_buffer"),
        two.buffer(0, "momentum_buffer")
    );
}

#[test]
fn the_fast_bf16_rounding_is_the_half_crates() {
    let mut z = 0x9E37_79B9_7F4A_7C15u64;
    let specials = [
        0.0f32,
        -0.0,
        1.0,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        1e-45,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    let mut xs: Vec<f32> = specials.to_vec();
    // Ties: exactly halfway between two bf16 values, both parities.
    xs.extend([
        1.0 + 2f32.powi(-8),
        1.0 + 3.0 * 2f32.powi(-8),
        -(1.0 + 2f32.powi(-8)),
    ]);
    for _ in 0..200_000 {
        z ^= z << 13;
        z ^= z >> 7;
        z ^= z << 17;
        xs.push(f32::from_bits(z as u32));
    }
    for x in xs {
        let ours = <bf16 as Half>::from_f32(x);
        let theirs = bf16::from_f32(x);
        if x.is_nan() {
            assert!(ours.is_nan(), "{x}");
        } else {
            assert_eq!(ours.to_bits(), theirs.to_bits(), "{x:e}");
        }
        assert_eq!(
            <bf16 as Half>::to_f32(theirs).to_bits(),
            theirs.to_f32().to_bits()
        );
    }
}
