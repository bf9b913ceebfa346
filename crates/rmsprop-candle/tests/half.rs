//! bf16 and f16 candle variables stepped in place: the same bits as the core library's
//! `Mixed` and `Blockwise8` on the same values, refusals that name the variable, and failed
//! steps that change nothing.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer as _;
use half::{bf16, f16};
use rmsprop::blockwise::Blockwise8;
use rmsprop::mixed::{Half, Mixed, MixedOptions, Rounding, StateStorage};
use rmsprop::storage::{Param, StorageOptimizer};
use rmsprop::{AdamConfig, RmsPropConfig};
use rmsprop_candle::{CandleElem, CandleHalf};

fn values(len: usize, tag: u32, scale: f32) -> Vec<f32> {
    (0..len)
        .map(|i| (i as f32 * 0.618 + tag as f32 * 0.37).sin() * scale)
        .collect()
}

/// Two variables (one of 5,000 elements, so 8-bit state quantizes it) of dtype `dtype`.
fn vars(dtype: DType) -> Vec<Var> {
    [(5000usize, 1u32), (37, 2)]
        .iter()
        .map(|&(n, tag)| {
            let t = Tensor::from_vec(values(n, tag, 1.0), n, &Device::Cpu).unwrap();
            Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap()
        })
        .collect()
}

fn flat<P: CandleElem>(v: &Var) -> Vec<P> {
    v.as_tensor().flatten_all().unwrap().to_vec1::<P>().unwrap()
}

/// Steps `opt` through the adapter and `twin` directly on copies of the same values, with the
/// same gradients, for 5 steps; the variables and the copies must be equal bit for bit.
fn same_bits<P, O>(make: impl Fn() -> O, dtype: DType)
where
    P: Param + CandleElem + Half,
    O: StorageOptimizer<P>,
{
    let vs = vars(dtype);
    let mut copies: Vec<Vec<P>> = vs.iter().map(flat::<P>).collect();
    let mut adapter = CandleHalf::with_optimizer(vs.clone(), make());
    let mut twin = make();
    for step in 0..5u32 {
        let store = grads_of(&vs, step, dtype);
        let grads: Vec<Vec<P>> = vs
            .iter()
            .map(|v| store.get(v.as_tensor()).unwrap().to_vec1::<P>().unwrap())
            .collect();
        adapter.step_with(&store).unwrap();
        let mut views: Vec<&mut [P]> = copies.iter_mut().map(|c| c.as_mut_slice()).collect();
        let gviews: Vec<&[P]> = grads.iter().map(|g| g.as_slice()).collect();
        twin.step(&mut views, &gviews).unwrap();
    }
    for (v, c) in vs.iter().zip(&copies) {
        let got: Vec<u16> = flat::<P>(v).iter().map(|x| x.to_bits()).collect();
        let want: Vec<u16> = c.iter().map(|x| x.to_bits()).collect();
        assert_eq!(got, want, "{dtype:?}");
        // And the step moved them.
        let start: Vec<u16> = values(c.len(), if c.len() == 5000 { 1 } else { 2 }, 1.0)
            .iter()
            .map(|&x| P::from_f32(x).to_bits())
            .collect();
        assert_ne!(got, start);
    }
    assert_eq!(adapter.inner().steps(), 5);
}

#[test]
fn half_variables_get_the_core_librarys_bits() {
    let opts = MixedOptions {
        state: StateStorage::Half,
        ..MixedOptions::default()
    };
    same_bits::<bf16, _>(
        || {
            Mixed::new(
                RmsPropConfig::pytorch().with_lr(0.01),
                MixedOptions::default(),
            )
            .unwrap()
        },
        DType::BF16,
    );
    same_bits::<f16, _>(
        || Mixed::new(RmsPropConfig::pytorch().with_lr(0.01), opts).unwrap(),
        DType::F16,
    );
    same_bits::<bf16, _>(
        || {
            Mixed::new(
                AdamConfig::default().with_lr(0.01),
                MixedOptions {
                    rounding: Rounding::Stochastic { seed: 3 },
                    master: true,
                    ..MixedOptions::default()
                },
            )
            .unwrap()
        },
        DType::BF16,
    );
    same_bits::<bf16, _>(
        || Blockwise8::<_, bf16>::new(RmsPropConfig::pytorch().with_lr(0.01), 4096).unwrap(),
        DType::BF16,
    );
    same_bits::<f16, _>(
        || Blockwise8::<_, f16>::new(AdamConfig::default().with_lr(0.01), 0).unwrap(),
        DType::F16,
    );
}

#[test]
fn candles_optimizer_trait_trains_a_bf16_variable() {
    let w = Var::from_tensor(
        &Tensor::new(&[5.0f32, 4.0], &Device::Cpu)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap(),
    )
    .unwrap();
    let mut opt =
        CandleHalf::<_, bf16>::new(vec![w.clone()], RmsPropConfig::pytorch().with_lr(0.1)).unwrap();
    assert_eq!(candle_nn::Optimizer::learning_rate(&opt), 0.1);
    for _ in 0..200 {
        let loss = w
            .as_tensor()
            .to_dtype(DType::F32)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap();
        opt.backward_step(&loss).unwrap();
    }
    let left = flat::<bf16>(&w);
    assert!(left.iter().all(|x| x.to_f32().abs() < 0.2), "{left:?}");
}

#[test]
fn another_float_dtype_is_refused_by_name_and_a_failed_step_changes_nothing() {
    let w = vars(DType::BF16);
    let f = Var::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
    let err = CandleHalf::<_, bf16>::new(vec![w[0].clone(), f.clone()], RmsPropConfig::pytorch())
        .err()
        .expect("an f32 variable is refused");
    let text = err.to_string();
    assert!(
        text.contains("variable 1") && text.contains("F32"),
        "{text}"
    );
    // Built anyway, it refuses to save or load too: the file would leave the f32 variable out.
    let mixed = Blockwise8::<RmsPropConfig, bf16>::new(RmsPropConfig::pytorch(), 0).unwrap();
    let mut both = CandleHalf::with_optimizer(vec![w[0].clone(), f.clone()], mixed);
    let path = std::env::temp_dir().join(format!("rmsprop-refused-{}.ckpt", std::process::id()));
    for err in [both.save(&path).unwrap_err(), both.load(&path).unwrap_err()] {
        assert!(err.to_string().contains("variable 1"), "{err}");
    }
    assert!(!path.exists(), "nothing written");

    // A non-finite gradient: an error, and neither the variables nor the state move.
    let opt = Blockwise8::<_, bf16>::new(RmsPropConfig::pytorch(), 0).unwrap();
    let mut opt = CandleHalf::with_optimizer(w.clone(), opt);
    let before: Vec<Vec<bf16>> = w.iter().map(flat::<bf16>).collect();
    let mut store = GradStore::default();
    for (k, v) in w.iter().enumerate() {
        let mut g = values(v.elem_count(), 7, 0.1);
        if k == 1 {
            g[3] = f32::NAN;
        }
        let t = Tensor::from_vec(g, v.elem_count(), &Device::Cpu).unwrap();
        store.insert(v.as_tensor(), t.to_dtype(DType::BF16).unwrap());
    }
    let err = opt.step_with(&store).unwrap_err().to_string();
    assert!(err.contains("non-finite") || err.contains("NaN"), "{err}");
    let after: Vec<Vec<bf16>> = w.iter().map(flat::<bf16>).collect();
    assert_eq!(before, after);
    assert_eq!(opt.inner().steps(), 0);
    assert!(opt.inner().quantized(0, "square_avg").is_none());
}

/// Gradients of step `step` for `vs`, in `dtype`.
fn grads_of(vs: &[Var], step: u32, dtype: DType) -> GradStore {
    let mut store = GradStore::default();
    for (k, v) in vs.iter().enumerate() {
        let g = values(v.elem_count(), 10 * step + k as u32, 0.3);
        let t = Tensor::from_vec(g, v.elem_count(), &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        store.insert(v.as_tensor(), t);
    }
    store
}

/// Six steps straight, against three, `save`, a `load` into fresh variables and a fresh
/// optimizer, and three more: the same bits, for 8-bit state and for half state with a master
/// copy. A file for other shapes is refused and changes nothing.
fn resumes_bit_for_bit<P, O>(make: impl Fn() -> O, dtype: DType)
where
    P: Param + CandleElem + Half,
    O: rmsprop::storage::StorageCheckpoint<P>,
{
    let (a, b) = (vars(dtype), vars(dtype));
    let mut straight = CandleHalf::with_optimizer(a.clone(), make());
    let mut first = CandleHalf::with_optimizer(b.clone(), make());
    for step in 0..6 {
        straight.step_with(&grads_of(&a, step, dtype)).unwrap();
        if step < 3 {
            first.step_with(&grads_of(&b, step, dtype)).unwrap();
        }
    }
    let dir = std::env::temp_dir().join(format!("rmsprop-candle-half-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.safetensors", P::NAME));
    first.save(&path).unwrap();
    let c = vars(dtype);
    let mut resumed = CandleHalf::with_optimizer(c.clone(), make());
    resumed.load(&path).unwrap();
    assert_eq!(resumed.inner().steps(), 3);
    for step in 3..6 {
        resumed.step_with(&grads_of(&c, step, dtype)).unwrap();
    }
    for (x, y) in a.iter().zip(&c) {
        let bits =
            |v: &Var| -> Vec<f32> { flat::<P>(v).iter().map(|h| Half::to_f32(*h)).collect() };
        assert_eq!(bits(x), bits(y));
    }
    // Variables of other shapes: refused, and neither they nor the optimizer change.
    let small = Var::from_tensor(
        &Tensor::from_vec(values(3, 9, 1.0), 3, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap(),
    )
    .unwrap();
    let mut other = CandleHalf::with_optimizer(vec![small.clone()], make());
    let before = flat::<P>(&small);
    let err = other.load(&path).unwrap_err().to_string();
    assert!(err.contains("params") || err.contains("param"), "{err}");
    assert_eq!(flat::<P>(&small), before);
    assert_eq!(other.inner().steps(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn half_variables_resume_bit_for_bit_from_one_file() {
    resumes_bit_for_bit::<bf16, _>(
        || Blockwise8::<AdamConfig, bf16>::new(AdamConfig::pytorch(), 4096).unwrap(),
        DType::BF16,
    );
    let options = MixedOptions {
        state: StateStorage::Half,
        master: true,
        ..MixedOptions::default()
    };
    resumes_bit_for_bit::<f16, _>(
        || {
            Mixed::<RmsPropConfig, f16>::new(RmsPropConfig::pytorch().with_momentum(0.9), options)
                .unwrap()
        },
        DType::F16,
    );
}
