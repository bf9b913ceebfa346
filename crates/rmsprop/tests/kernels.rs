//! Every fast path (AVX2-compiled kernels, serial and multi-threaded) against the scalar reference
//! kernels, bit for bit, for every RMSProp variant and every family member, f32 and f64, on random
//! inputs (zeros, signs, magnitudes from 1e-8 to 1e4) and odd lengths.

use rmsprop::kernel::adagrad::adagrad_reference;
use rmsprop::kernel::adam::adam_reference;
use rmsprop::kernel::rmsprop::rmsprop_reference;
use rmsprop::kernel::sgd::sgd_reference;
use rmsprop::{
    Adadelta, AdadeltaConfig, Adagrad, AdagradConfig, Adam, AdamConfig, Algorithm, EpsPlacement,
    Execution, FamilyOrder, Float, HyperparameterPrecision, Lion, LionConfig, MomentumStyle,
    OperationOrder, Optim, Optimizer, RmsProp, RmsPropConfig, Sgd, SgdConfig, State, TensorState,
    WeightDecayStyle,
};

/// xorshift64*: deterministic test data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Signed values over many magnitudes, with some exact zeros.
    fn value(&mut self) -> f64 {
        let u = self.uniform();
        if u < 0.05 {
            return 0.0;
        }
        let mag = 10f64.powf(-8.0 + 12.0 * self.uniform());
        if self.uniform() < 0.5 {
            -mag
        } else {
            mag
        }
    }
    fn vec<T: Float>(&mut self, n: usize, positive: bool) -> Vec<T> {
        (0..n)
            .map(|_| {
                let v = self.value();
                T::from_f64(if positive { v.abs() } else { v })
            })
            .collect()
    }
}

const LENGTHS: [usize; 6] = [1, 3, 7, 33, 1001, 70_001];

fn same<T: Float>(a: &[T], b: &[T], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let both_nan = x.to_f64().is_nan() && y.to_f64().is_nan();
        assert!(
            both_nan || x.to_f64().to_bits() == y.to_f64().to_bits(),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

fn executions() -> Vec<(&'static str, Execution)> {
    // The harness is only worth its name if the vector build really runs where it can: on a CPU
    // with AVX2 the default execution must pick it (and LENGTHS reach the vector loops).
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        assert_eq!(
            Execution::sequential().isa(),
            rmsprop::kernel::fast::Isa::Avx2
        );
    }
    assert!(LENGTHS
        .iter()
        .any(|&n| n >= rmsprop::kernel::fast::MIN_VECTOR_LEN));
    assert_eq!(
        Execution::sequential().with_baseline_isa().isa(),
        rmsprop::kernel::fast::Isa::Baseline
    );
    vec![
        ("serial", Execution::sequential()),
        ("baseline", Execution::sequential().with_baseline_isa()),
        (
            "2 threads",
            Execution::threads(2).unwrap().with_split(64, 100),
        ),
        ("3 threads", Execution::threads(3).unwrap().with_split(1, 7)),
    ]
}

fn rmsprop_configs() -> Vec<RmsPropConfig> {
    let mut out = vec![];
    for order in [
        OperationOrder::Torch,
        OperationOrder::Keras,
        OperationOrder::Optax,
        OperationOrder::Tf1,
    ] {
        for eps in [EpsPlacement::Outside, EpsPlacement::Inside] {
            for (centered, clamp) in [(false, false), (true, false), (true, true)] {
                for (momentum, style, nesterov) in [
                    (0.0, MomentumStyle::LrOutside, false),
                    (0.9, MomentumStyle::LrOutside, false),
                    (0.9, MomentumStyle::LrInside, false),
                    (0.9, MomentumStyle::LrOutside, true),
                    (0.9, MomentumStyle::LrInside, true),
                ] {
                    let mut c = RmsPropConfig::pytorch()
                        .with_lr(0.01)
                        .with_rho(0.9)
                        .with_eps(1e-6, eps)
                        .with_centered(centered)
                        .with_clamp_variance(clamp)
                        .with_momentum_style(style)
                        .with_operation_order(order);
                    c.momentum = momentum;
                    c.nesterov = nesterov;
                    out.push(c);
                }
            }
        }
    }
    // Weight decay, maximize, bias correction, initial value, precision: on a spread of the above.
    let extras: Vec<fn(RmsPropConfig) -> RmsPropConfig> = vec![
        |c| c.with_weight_decay(0.01, WeightDecayStyle::Coupled),
        |c| c.with_weight_decay(0.01, WeightDecayStyle::Decoupled),
        |c| c.with_maximize(true),
        |c| c.with_bias_correction(true),
        |c| c.with_initial_square_avg(1.0),
        |c| c.with_hyperparameter_precision(HyperparameterPrecision::Float32),
    ];
    let base = out.clone();
    for (i, extra) in extras.iter().enumerate() {
        for c in base.iter().skip(i).step_by(7) {
            out.push(extra(c.clone()));
        }
    }
    out
}

fn check_rmsprop<T: Float>(seed: u64) {
    let mut rng = Rng(seed);
    for config in rmsprop_configs() {
        for &n in &LENGTHS {
            let p0: Vec<T> = rng.vec(n, false);
            // Random buffers in layout order: square_avg, grad_avg (centered), momentum.
            let mut buffers = vec![rng.vec(n, true)];
            if config.centered {
                buffers.push(rng.vec(n, false));
            }
            if config.momentum > 0.0 {
                buffers.push(rng.vec(n, false));
            }
            let state = State {
                steps: 3,
                tensors: vec![TensorState {
                    step: 3,
                    len: n,
                    buffers,
                }],
            };
            let grads: Vec<Vec<T>> = (0..2).map(|_| rng.vec(n, false)).collect();

            // The reference: the kernel called directly, baseline instruction set.
            let probe = RmsProp::<T>::new(config.clone()).unwrap();
            let (mut p, mut t) = (p0.clone(), state.tensors[0].buffers.clone());
            let mut empty = (Vec::new(), Vec::new());
            for (k, g) in grads.iter().enumerate() {
                let s = probe.scalars(4 + k as u64);
                let (v, rest) = t.split_first_mut().unwrap();
                let mut rest = rest.iter_mut();
                let m = if config.centered {
                    rest.next().unwrap()
                } else {
                    &mut empty.0
                };
                let b = if config.momentum > 0.0 {
                    rest.next().unwrap()
                } else {
                    &mut empty.1
                };
                rmsprop_reference(&s, &mut p, g, v, m, b);
            }

            for (name, exec) in executions() {
                let mut opt = RmsProp::<T>::new(config.clone()).unwrap();
                opt.set_state(state.clone()).unwrap();
                opt.set_execution(exec);
                let mut q = p0.clone();
                for g in &grads {
                    opt.step_single(&mut q, g).unwrap();
                }
                let what = format!("{name} {n} {config:?}");
                same(&q, &p, &what);
                let u = &opt.state().tensors[0];
                assert_eq!(u.buffers.len(), t.len(), "{what}");
                for (ours, theirs) in u.buffers.iter().zip(&t) {
                    same(ours, theirs, &what);
                }
            }
        }
    }
}

#[test]
fn rmsprop_fast_paths_equal_the_reference_f32() {
    check_rmsprop::<f32>(1);
}

#[test]
fn rmsprop_fast_paths_equal_the_reference_f64() {
    check_rmsprop::<f64>(2);
}

/// Steps `make()` twice through each execution and compares with `reference`.
fn check_family<T: Float, O: Optimizer<T>>(
    make: impl Fn() -> O,
    reference: impl Fn(&O, u64, &mut [T], &[T], &mut [Vec<T>]),
    buffers: usize,
    seed: u64,
) {
    let mut rng = Rng(seed);
    for &n in &LENGTHS {
        let p0: Vec<T> = rng.vec(n, false);
        let grads: Vec<Vec<T>> = (0..3).map(|_| rng.vec(n, false)).collect();
        // Step 1 through the baseline build of the reference code creates the state; steps 2
        // and 3 call the reference kernel directly.
        let mut probe = make();
        probe.set_execution(Execution::sequential().with_baseline_isa());
        let mut p = p0.clone();
        probe.step_single(&mut p, &grads[0]).unwrap();
        let mut state: Vec<Vec<T>> = probe
            .state_buffers(0)
            .iter()
            .map(|(_, b)| b.to_vec())
            .collect();
        for (k, g) in grads.iter().enumerate().skip(1) {
            reference(&probe, k as u64 + 1, &mut p, g, &mut state);
        }
        assert_eq!(state.len(), buffers);
        for (name, exec) in executions() {
            let mut opt = make();
            opt.set_execution(exec);
            let mut q = p0.clone();
            for g in &grads {
                opt.step_single(&mut q, g).unwrap();
            }
            let what = format!("{} {name} {n}", opt.name());
            same(&q, &p, &what);
            for ((_, ours), theirs) in opt.state_buffers(0).iter().zip(&state) {
                same(ours, theirs, &what);
            }
        }
    }
}

fn family<T: Float>(seed: u64) {
    for c in [
        SgdConfig::plain(0.1),
        SgdConfig::momentum(0.1, 0.9)
            .with_dampening(0.3)
            .with_weight_decay(0.01),
        SgdConfig::nesterov(0.1, 0.9).with_maximize(true),
    ] {
        check_family::<T, _>(
            || Sgd::new(c.clone()).unwrap(),
            |o, t, p, g, st| {
                let s = o.scalars(t);
                let mut empty = vec![];
                sgd_reference(&s, p, g, st.first_mut().unwrap_or(&mut empty));
            },
            usize::from(c.momentum > 0.0),
            seed,
        );
    }
    for c in [
        AdagradConfig::pytorch(),
        AdagradConfig {
            lr_decay: 0.1,
            weight_decay: 0.01,
            initial_accumulator_value: 0.5,
            ..AdagradConfig::pytorch()
        },
        AdagradConfig::optax(),
    ] {
        check_family::<T, _>(
            || Adagrad::new(c.clone()).unwrap(),
            |o, t, p, g, st| adagrad_reference(&o.scalars(t), p, g, &mut st[0]),
            1,
            seed + 1,
        );
    }
    for c in [
        AdamConfig::pytorch(),
        AdamConfig::pytorch_adamw().with_amsgrad(true),
        AdamConfig::pytorch().with_weight_decay(0.01, WeightDecayStyle::Coupled),
        AdamConfig {
            eps_root: 1e-8,
            ..AdamConfig::optax_adamw()
        },
        AdamConfig {
            order: FamilyOrder::Optax,
            ..AdamConfig::pytorch().with_amsgrad(true)
        },
    ] {
        let amsgrad = c.amsgrad;
        check_family::<T, _>(
            || Adam::new(c.clone()).unwrap(),
            |o, t, p, g, st| {
                let s = o.scalars(t);
                let (m, rest) = st.split_at_mut(1);
                let (v, rest) = rest.split_at_mut(1);
                let mut empty = vec![];
                let vm = rest.first_mut().unwrap_or(&mut empty);
                adam_reference(&s, p, g, &mut m[0], &mut v[0], vm);
            },
            2 + usize::from(amsgrad),
            seed + 2,
        );
    }
}

/// Adadelta and Lion through the spine's generic reference ([`Algorithm::reference`]).
fn newer<T: Float>(seed: u64) {
    fn via_trait<A: Algorithm, T: Float>(
        o: &Optim<A, T>,
        t: u64,
        p: &mut [T],
        g: &[T],
        st: &mut [Vec<T>],
    ) {
        let mut views: Vec<&mut [T]> = st.iter_mut().map(|b| b.as_mut_slice()).collect();
        A::reference(&o.scalars(t), p, g, &mut views);
    }
    for c in [
        AdadeltaConfig::pytorch(),
        AdadeltaConfig {
            weight_decay: 0.01,
            maximize: true,
            ..AdadeltaConfig::optax()
        },
    ] {
        check_family::<T, _>(|| Adadelta::new(c.clone()).unwrap(), via_trait, 2, seed);
    }
    for c in [
        LionConfig::optax(),
        LionConfig::optax().with_weight_decay(0.0),
    ] {
        check_family::<T, _>(|| Lion::new(c.clone()).unwrap(), via_trait, 1, seed + 1);
    }
}

#[test]
fn adadelta_and_lion_fast_paths_equal_the_reference() {
    newer::<f32>(30);
    newer::<f64>(40);
}

#[test]
fn family_fast_paths_equal_the_reference_f32() {
    family::<f32>(10);
}

#[test]
fn family_fast_paths_equal_the_reference_f64() {
    family::<f64>(20);
}

#[test]
fn many_tensors_split_across_threads_equal_serial() {
    let mut rng = Rng(99);
    let sizes = [5usize, 40_000, 1, 0, 300, 131_073];
    let config = RmsPropConfig::keras()
        .with_centered(true)
        .with_momentum(0.5);
    let params: Vec<Vec<f32>> = sizes.iter().map(|&n| rng.vec(n, false)).collect();
    let grads: Vec<Vec<f32>> = sizes.iter().map(|&n| rng.vec(n, false)).collect();
    let run = |exec: Execution| {
        let mut opt = RmsProp::<f32>::new(config.clone()).unwrap();
        opt.set_execution(exec);
        let mut ps = params.clone();
        for _ in 0..3 {
            let mut views: Vec<&mut [f32]> = ps.iter_mut().map(|p| p.as_mut_slice()).collect();
            let gv: Vec<&[f32]> = grads.iter().map(|g| g.as_slice()).collect();
            opt.step(&mut views, &gv).unwrap();
        }
        ps
    };
    let serial = run(Execution::sequential().with_baseline_isa());
    for threads in [2, 4] {
        let parallel = run(Execution::threads(threads).unwrap().with_split(1000, 4096));
        for (a, b) in serial.iter().zip(&parallel) {
            same(a, b, &format!("{threads} threads"));
        }
    }
    assert!(Execution::threads(0).is_err());
}

#[test]
fn the_convenience_kernel_takes_the_buffers_the_configuration_uses() {
    use rmsprop::kernel::fast::Isa;
    use rmsprop::kernel::rmsprop::rmsprop_fast;
    // Momentum without centering, called with a non-empty grad_avg that must not be read.
    let s = RmsProp::<f32>::new(RmsPropConfig::pytorch().with_momentum(0.9))
        .unwrap()
        .scalars(1);
    let g: Vec<f32> = (0..40).map(|i| (i as f32 * 0.3).sin()).collect();
    let (mut p1, mut v1, mut b1) = (vec![1.0f32; 40], vec![0.1f32; 40], vec![0.2f32; 40]);
    let (mut p2, mut v2, mut b2) = (p1.clone(), v1.clone(), b1.clone());
    let mut unused = vec![7.0f32; 40];
    rmsprop_reference(&s, &mut p1, &g, &mut v1, &mut [], &mut b1);
    rmsprop_fast(
        Isa::detect(),
        &s,
        &mut p2,
        &g,
        &mut v2,
        &mut unused,
        &mut b2,
    );
    assert_eq!((p1, v1, b1), (p2, v2, b2));
    assert_eq!(unused, vec![7.0f32; 40]);
    // An empty tensor with a centered momentum configuration is a no-op, as in the reference.
    let s = RmsProp::<f32>::new(
        RmsPropConfig::pytorch()
            .with_centered(true)
            .with_momentum(0.9),
    )
    .unwrap()
    .scalars(1);
    rmsprop_fast(Isa::detect(), &s, &mut [], &[], &mut [], &mut [], &mut []);
}
