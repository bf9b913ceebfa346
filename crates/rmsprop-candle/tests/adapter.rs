//! The candle adapter against the core library (same numbers, bit for bit) and against
//! PyTorch's recorded trajectories; its errors, clipping, schedules and checkpoints.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use candle_nn::Optimizer as _;
use rmsprop::schedule::{Scheduled, StepLr};
use rmsprop::{
    AdadeltaConfig, AdagradConfig, AdamConfig, LionConfig, Optimizer, RmsProp, RmsPropConfig,
    SgdConfig,
};
use rmsprop_candle::{
    CandleAdagrad, CandleAdam, CandleFloat, CandleOptimizer, CandleRmsProp, CandleSgd, FromConfig,
};

const SHAPES: [&[usize]; 3] = [&[3, 4], &[5], &[2, 2, 2]];

/// A reproducible pseudo-random value in [-1, 1) (splitmix64).
fn noise(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

fn values<T: CandleFloat>(tag: u64, len: usize, scale: f64) -> Vec<T> {
    (0..len)
        .map(|i| <T as rmsprop::Float>::from_f64(scale * noise(tag * 1000 + i as u64)))
        .collect()
}

fn vars<T: CandleFloat>() -> Vec<Var> {
    SHAPES
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let n = s.iter().product();
            Var::from_tensor(
                &Tensor::from_vec(values::<T>(k as u64, n, 1.0), *s, &Device::Cpu).unwrap(),
            )
            .unwrap()
        })
        .collect()
}

fn grads_at<T: CandleFloat>(vars: &[Var], step: u64) -> (GradStore, Vec<Vec<T>>) {
    let mut store = GradStore::default();
    let mut raw = Vec::new();
    for (k, v) in vars.iter().enumerate() {
        let g = values::<T>(100 + step * 10 + k as u64, v.elem_count(), 3.0);
        store.insert(
            v.as_tensor(),
            Tensor::from_vec(g.clone(), v.shape(), &Device::Cpu).unwrap(),
        );
        raw.push(g);
    }
    (store, raw)
}

fn flat<T: CandleFloat>(v: &Var) -> Vec<T> {
    v.as_tensor().flatten_all().unwrap().to_vec1::<T>().unwrap()
}

/// Runs the adapter and the core optimizer side by side; their parameters stay bit-identical.
fn same_numbers<T: CandleFloat, O: FromConfig<T>>(config: impl Fn() -> O::Config, what: &str) {
    let vs = vars::<T>();
    let mut adapter = CandleOptimizer::<O, T>::new(vs.clone(), config()).unwrap();
    let mut core = O::from_config(config()).unwrap();
    let mut params: Vec<Vec<T>> = vs.iter().map(flat::<T>).collect();
    for step in 0..6 {
        let (store, raw) = grads_at::<T>(&vs, step);
        adapter.step(&store).unwrap();
        let mut views: Vec<&mut [T]> = params.iter_mut().map(|p| p.as_mut_slice()).collect();
        let grads: Vec<&[T]> = raw.iter().map(|g| g.as_slice()).collect();
        core.step(&mut views, &grads).unwrap();
        for (v, p) in vs.iter().zip(&params) {
            let got = flat::<T>(v);
            assert!(
                got.iter()
                    .zip(p)
                    .all(|(a, b)| a.to_bits_u64() == b.to_bits_u64()),
                "{what}: step {step}: {got:?} vs {p:?}"
            );
        }
    }
}

#[test]
fn every_optimizer_gives_the_core_librarys_numbers_bit_for_bit() {
    for (name, c) in [
        ("pytorch", RmsPropConfig::pytorch().with_lr(0.01)),
        ("keras", RmsPropConfig::keras()),
        ("optax", RmsPropConfig::optax()),
        ("tf1", RmsPropConfig::tf1()),
        ("timm", RmsPropConfig::timm_tf()),
        ("graves", RmsPropConfig::graves()),
        (
            "centered nesterov wd",
            RmsPropConfig::pytorch()
                .with_centered(true)
                .with_nesterov(0.9)
                .with_weight_decay(0.01, rmsprop::WeightDecayStyle::Coupled),
        ),
    ] {
        same_numbers::<f32, RmsProp<f32>>(|| c.clone(), name);
        same_numbers::<f64, RmsProp<f64>>(|| c.clone(), name);
    }
    same_numbers::<f32, rmsprop::Sgd<f32>>(|| SgdConfig::nesterov(0.01, 0.9), "nesterov");
    same_numbers::<f64, rmsprop::Adagrad<f64>>(AdagradConfig::pytorch, "adagrad");
    same_numbers::<f32, rmsprop::Adam<f32>>(AdamConfig::pytorch_adamw, "adamw");
    same_numbers::<f64, rmsprop::Adam<f64>>(AdamConfig::optax, "adam optax");
    same_numbers::<f32, rmsprop::Adadelta<f32>>(AdadeltaConfig::pytorch, "adadelta");
    same_numbers::<f64, rmsprop::Adadelta<f64>>(AdadeltaConfig::optax, "adadelta optax");
    same_numbers::<f32, rmsprop::Lion<f32>>(|| LionConfig::optax().with_lr(0.01), "lion");
    same_numbers::<f64, rmsprop::Lion<f64>>(LionConfig::optax, "lion f64");
}

fn replay_torch(file: &str, config: RmsPropConfig, tolerance: f64) {
    let text = std::fs::read_to_string(format!(
        "{}/tests/vectors/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let list = |x: &serde_json::Value| -> Vec<f64> {
        x.as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_f64().unwrap())
            .collect()
    };
    let f32s = v["dtype"] == "float32";
    let start = list(&v["initial_params"]);
    let n = start.len();
    let check = |got: Vec<f64>, want: &[f64], step: usize| {
        let dev = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(dev <= tolerance, "{file}: step {step}: deviation {dev:e}");
    };
    macro_rules! run {
        ($t:ty) => {{
            let p: Vec<$t> = start.iter().map(|x| *x as $t).collect();
            let var = Var::from_vec(p, n, &Device::Cpu).unwrap();
            let mut opt = CandleRmsProp::<$t>::new(vec![var.clone()], config.clone()).unwrap();
            for (k, (g, want)) in v["gradients"]
                .as_array()
                .unwrap()
                .iter()
                .zip(v["trajectory"].as_array().unwrap())
                .enumerate()
            {
                let g: Vec<$t> = list(g).iter().map(|x| *x as $t).collect();
                let mut store = GradStore::default();
                store.insert(
                    var.as_tensor(),
                    Tensor::from_vec(g, n, &Device::Cpu).unwrap(),
                );
                opt.step(&store).unwrap();
                let got = flat::<$t>(&var).iter().map(|x| *x as f64).collect();
                check(got, &list(want), k + 1);
            }
        }};
    }
    if f32s {
        run!(f32)
    } else {
        run!(f64)
    }
}

#[test]
fn pytorch_trajectories_are_reproduced_through_candle() {
    let torch = RmsPropConfig::pytorch().with_lr(0.01);
    replay_torch("torch_default_rosenbrock_f64.json", torch.clone(), 1e-12);
    replay_torch(
        "torch_centered_momentum_rosenbrock_f64.json",
        torch.clone().with_centered(true).with_momentum(0.9),
        1e-12,
    );
    replay_torch(
        "torch_momentum_fixed_grads8_f32.json",
        torch.with_momentum(0.9),
        1e-4,
    );
}

#[test]
fn a_missing_or_non_finite_gradient_is_an_error_and_changes_nothing() {
    let vs = vars::<f32>();
    let mut opt = CandleRmsProp::<f32>::new(vs.clone(), RmsPropConfig::pytorch()).unwrap();
    let before: Vec<Vec<f32>> = vs.iter().map(flat::<f32>).collect();
    let (mut store, _) = grads_at::<f32>(&vs, 0);
    store.remove(vs[1].as_tensor());
    let e = opt.step(&store).unwrap_err().to_string();
    assert!(e.contains("variable 1") && e.contains("no gradient"), "{e}");
    let (mut store, _) = grads_at::<f32>(&vs, 0);
    let mut bad = vec![0.5f32; 5];
    bad[3] = f32::NAN;
    store.insert(
        vs[1].as_tensor(),
        Tensor::from_vec(bad, 5, &Device::Cpu).unwrap(),
    );
    let e = opt.step(&store).unwrap_err().to_string();
    assert!(e.contains("gradient element 3 is NaN"), "{e}");
    let after: Vec<Vec<f32>> = vs.iter().map(flat::<f32>).collect();
    assert_eq!(before, after);
    assert_eq!(opt.inner().steps(), 0);
    assert!(CandleRmsProp::<f32>::new(vs, RmsPropConfig::pytorch().with_rho(1.5)).is_err());
}

#[test]
fn clipping_and_schedules_compose_with_the_adapter() {
    // Clipped adapter = core optimizer fed clip_grad_norm'd gradients.
    let vs = vars::<f64>();
    let mut adapter = CandleAdam::<f64>::new(vs.clone(), AdamConfig::pytorch())
        .unwrap()
        .with_clip_grad_norm(0.5);
    let mut core = rmsprop::Adam::<f64>::new(AdamConfig::pytorch()).unwrap();
    let mut params: Vec<Vec<f64>> = vs.iter().map(flat::<f64>).collect();
    for step in 0..4 {
        let (store, mut raw) = grads_at::<f64>(&vs, step);
        adapter.step(&store).unwrap();
        let mut g: Vec<&mut [f64]> = raw.iter_mut().map(|g| g.as_mut_slice()).collect();
        rmsprop::clip::clip_grad_norm(&mut g, 0.5, 2.0);
        let g: Vec<&[f64]> = raw.iter().map(|g| g.as_slice()).collect();
        let mut p: Vec<&mut [f64]> = params.iter_mut().map(|p| p.as_mut_slice()).collect();
        core.step(&mut p, &g).unwrap();
    }
    for (v, p) in vs.iter().zip(&params) {
        assert_eq!(&flat::<f64>(v), p);
    }
    // A scheduled optimizer is an optimizer: the adapter follows its learning rate.
    let sched = Scheduled::new(
        RmsProp::<f64>::new(RmsPropConfig::pytorch().with_lr(0.1)).unwrap(),
        StepLr {
            step_size: 2,
            gamma: 0.5,
        },
    );
    let mut opt = CandleOptimizer::with_optimizer(vs.clone(), sched);
    let mut lrs = Vec::new();
    for step in 0..5 {
        let (store, _) = grads_at::<f64>(&vs, step);
        opt.step_with(&store).unwrap();
        lrs.push(opt.inner().learning_rate());
    }
    assert_eq!(lrs, vec![0.1, 0.1, 0.05, 0.05, 0.025]);
    let _ = CandleSgd::<f32>::new(vars::<f32>(), SgdConfig::plain(0.1)).unwrap();
    let _ = CandleAdagrad::<f32>::new(vars::<f32>(), AdagradConfig::pytorch()).unwrap();
}

#[test]
fn a_resumed_run_matches_an_uninterrupted_one() {
    let dir = std::env::temp_dir().join(format!("rmsprop-candle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("opt.safetensors");
    let config = || {
        RmsPropConfig::pytorch()
            .with_centered(true)
            .with_momentum(0.5)
    };
    let straight = vars::<f32>();
    let mut a = CandleRmsProp::<f32>::new(straight.clone(), config()).unwrap();
    for step in 0..6 {
        a.step(&grads_at::<f32>(&straight, step).0).unwrap();
        if step == 2 {
            a.save(&path).unwrap();
        }
    }
    // A fresh process: other initial values, state loaded from the checkpoint.
    let resumed: Vec<Var> = vars::<f32>();
    for v in &resumed {
        v.set(&v.as_tensor().affine(0.0, 7.0).unwrap()).unwrap();
    }
    let mut b = CandleRmsProp::<f32>::new(resumed.clone(), config()).unwrap();
    b.load(&path).unwrap();
    for step in 3..6 {
        b.step(&grads_at::<f32>(&resumed, step).0).unwrap();
    }
    for (x, y) in straight.iter().zip(&resumed) {
        assert_eq!(flat::<f32>(x), flat::<f32>(y));
    }
    // A corrupt file is refused, and nothing changes.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let before = flat::<f32>(&resumed[0]);
    assert!(b.load(&path).is_err());
    assert_eq!(flat::<f32>(&resumed[0]), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn param_groups_step_each_group_with_its_own_hyperparameters() {
    use rmsprop::ParamGroups;
    let vs = vars::<f64>();
    let mut groups = ParamGroups::<f64, RmsProp<f64>>::new();
    let base = RmsPropConfig::pytorch();
    groups.add_group("first", 2, RmsProp::new(base.clone().with_lr(0.1)).unwrap());
    groups.add_group(
        "last",
        1,
        RmsProp::new(base.clone().with_lr(0.001)).unwrap(),
    );
    let mut opt = CandleOptimizer::with_optimizer(vs.clone(), groups);
    let mut fast = RmsProp::<f64>::new(base.clone().with_lr(0.1)).unwrap();
    let mut slow = RmsProp::<f64>::new(base.with_lr(0.001)).unwrap();
    let mut params: Vec<Vec<f64>> = vs.iter().map(flat::<f64>).collect();
    for step in 0..3 {
        let (store, raw) = grads_at::<f64>(&vs, step);
        opt.step_with(&store).unwrap();
        let (a, b) = params.split_at_mut(2);
        let mut first: Vec<&mut [f64]> = a.iter_mut().map(|p| p.as_mut_slice()).collect();
        fast.step(&mut first, &[&raw[0], &raw[1]]).unwrap();
        slow.step(&mut [b[0].as_mut_slice()], &[&raw[2]]).unwrap();
    }
    for (v, p) in vs.iter().zip(&params) {
        assert_eq!(&flat::<f64>(v), p);
    }
    assert_eq!(
        opt.inner().group("last").unwrap().optimizer.learning_rate(),
        0.001
    );
}

#[test]
fn a_scheduled_grouped_stack_saves_and_resumes_through_the_adapter() {
    use rmsprop::ParamGroups;
    type Stack = ParamGroups<f64, Scheduled<RmsProp<f64>, StepLr>>;
    let stack = || {
        let mut groups = Stack::new();
        let sched = |lr: f64| {
            Scheduled::new(
                RmsProp::new(RmsPropConfig::pytorch().with_lr(lr).with_momentum(0.9)).unwrap(),
                StepLr {
                    step_size: 2,
                    gamma: 0.5,
                },
            )
        };
        groups.add_group("first", 2, sched(0.05));
        groups.add_group("last", 1, sched(0.01));
        groups
    };
    let dir = std::env::temp_dir().join(format!("rmsprop-candle-stack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stack.safetensors");
    let straight = vars::<f64>();
    let mut a = CandleOptimizer::with_optimizer(straight.clone(), stack());
    for step in 0..7 {
        a.step_with(&grads_at::<f64>(&straight, step).0).unwrap();
        if step == 2 {
            a.save(&path).unwrap();
        }
    }
    let resumed = vars::<f64>();
    for v in &resumed {
        v.set(&v.as_tensor().affine(0.0, -3.0).unwrap()).unwrap();
    }
    let mut b = CandleOptimizer::with_optimizer(resumed.clone(), stack());
    b.load(&path).unwrap();
    assert_eq!(b.inner().groups()[1].optimizer.scheduled_steps(), 3);
    for step in 3..7 {
        b.step_with(&grads_at::<f64>(&resumed, step).0).unwrap();
    }
    for (x, y) in straight.iter().zip(&resumed) {
        assert_eq!(flat::<f64>(x), flat::<f64>(y));
    }
    assert_eq!(
        a.inner().groups()[0].optimizer.learning_rate(),
        b.inner().groups()[0].optimizer.learning_rate()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_float_variable_of_another_dtype_is_refused_by_name_not_skipped() {
    use candle_core::{DType, Device, Var};
    use candle_nn::Optimizer as _;
    let w = Var::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
    let h = Var::new(&[1.0f32, 2.0], &Device::Cpu)
        .unwrap()
        .as_tensor()
        .to_dtype(DType::BF16)
        .unwrap();
    let h = Var::from_tensor(&h).unwrap();
    let counts = Var::new(&[1u32, 2], &Device::Cpu).unwrap(); // integers are left alone
    let err = rmsprop_candle::CandleRmsProp::<f32>::new(
        vec![w.clone(), h.clone(), counts.clone()],
        rmsprop::RmsPropConfig::pytorch(),
    )
    .err()
    .expect("a bf16 variable is refused");
    let text = err.to_string();
    assert!(
        text.contains("variable 1") && text.contains("BF16"),
        "{text}"
    );
    // Built directly, every step refuses and nothing changes.
    let opt = rmsprop::RmsProp::<f32>::new(rmsprop::RmsPropConfig::pytorch()).unwrap();
    let mut opt = rmsprop_candle::CandleOptimizer::with_optimizer(vec![w.clone(), h.clone()], opt);
    let loss = w.as_tensor().sqr().unwrap().sum_all().unwrap();
    assert!(opt.backward_step(&loss).is_err());
    assert_eq!(w.as_tensor().to_vec1::<f32>().unwrap(), [1.0, 2.0]);
    // Integer variables alone are fine.
    let opt = rmsprop::RmsProp::<f32>::new(rmsprop::RmsPropConfig::pytorch()).unwrap();
    let mut opt = rmsprop_candle::CandleOptimizer::with_optimizer(vec![w.clone(), counts], opt);
    opt.backward_step(&loss).unwrap();
    assert!(w.as_tensor().to_vec1::<f32>().unwrap()[0] < 1.0);
}
