//! One optimizer step over candle Vars: this adapter (fused kernels in place) against candle's
//! own `AdamW` and against RMSProp written with candle tensor ops, the way candle-optimisers
//! 0.10.2 writes it (`v = alpha*v + (1-alpha)*g^2; theta -= lr * g / (sqrt(v) + eps)`, each a
//! tensor op and `Var::set`). candle-optimisers itself requires candle 0.10 and cannot be built
//! next to candle 0.11, hence the transcription.
//!
//! `cargo bench -p rmsprop-candle`.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rmsprop::{AdamConfig, RmsPropConfig};
use rmsprop_candle::{CandleAdam, CandleRmsProp};

/// RMSProp as candle tensor ops (candle-optimisers 0.10.2's plain variant).
struct TensorOpRmsProp {
    vars: Vec<(Var, Var)>,
    lr: f64,
    alpha: f64,
    eps: f64,
}

impl TensorOpRmsProp {
    fn new(vars: &[Var]) -> Self {
        let vars = vars
            .iter()
            .map(|v| {
                let s = Var::zeros(v.shape(), v.dtype(), v.device()).unwrap();
                (v.clone(), s)
            })
            .collect();
        Self {
            vars,
            lr: 0.01,
            alpha: 0.99,
            eps: 1e-8,
        }
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        for (theta, v) in &self.vars {
            if let Some(grad) = grads.get(theta) {
                let v_next =
                    ((self.alpha * v.as_tensor())? + ((1. - self.alpha) * grad.powf(2.)?)?)?;
                let delta = (grad / (v_next.sqrt()? + self.eps)?)?;
                theta.set(&theta.sub(&(self.lr * delta)?)?)?;
                v.set(&v_next)?;
            }
        }
        Ok(())
    }
}

fn model(shapes: &[&[usize]]) -> (Vec<Var>, GradStore) {
    let mut grads = GradStore::default();
    let vars: Vec<Var> = shapes
        .iter()
        .map(|s| {
            let v = Var::from_tensor(&Tensor::randn(0f32, 0.1, *s, &Device::Cpu).unwrap()).unwrap();
            grads.insert(
                v.as_tensor(),
                Tensor::randn(0f32, 1.0, *s, &Device::Cpu).unwrap(),
            );
            v
        })
        .collect();
    (vars, grads)
}

fn bench(c: &mut Criterion) {
    let models: [(&str, Vec<&[usize]>); 2] = [
        (
            "digits-mlp (9.6k)",
            vec![&[128, 64], &[128], &[10, 128], &[10]],
        ),
        ("1M", vec![&[1000, 1000], &[1000]]),
    ];
    let mut g = c.benchmark_group("candle_step");
    for (name, shapes) in &models {
        let (vars, grads) = model(shapes);
        let n: usize = vars.iter().map(|v| v.elem_count()).sum();
        g.throughput(Throughput::Elements(n as u64));
        assert!(vars.iter().all(|v| v.dtype() == DType::F32));
        let mut ours = CandleRmsProp::<f32>::new(vars.clone(), RmsPropConfig::pytorch()).unwrap();
        g.bench_function(BenchmarkId::new("rmsprop-candle RMSProp", name), |b| {
            b.iter(|| ours.step(&grads).unwrap())
        });
        let mut ops = TensorOpRmsProp::new(&vars);
        g.bench_function(
            BenchmarkId::new("tensor-op RMSProp (candle-optimisers)", name),
            |b| b.iter(|| ops.step(&grads).unwrap()),
        );
        let mut ours_adamw =
            CandleAdam::<f32>::new(vars.clone(), AdamConfig::pytorch_adamw()).unwrap();
        g.bench_function(BenchmarkId::new("rmsprop-candle AdamW", name), |b| {
            b.iter(|| ours_adamw.step(&grads).unwrap())
        });
        let mut adamw = AdamW::new(vars.clone(), ParamsAdamW::default()).unwrap();
        g.bench_function(BenchmarkId::new("candle_nn::AdamW", name), |b| {
            b.iter(|| adamw.step(&grads).unwrap())
        });
    }
    g.finish();
}

/// Step time against the number of variables (10 elements each): linear if the per-variable cost
/// is constant.
fn many_variables(c: &mut Criterion) {
    let mut g = c.benchmark_group("candle_step_many_variables");
    for count in [10usize, 100, 1000] {
        let shapes: Vec<&[usize]> = vec![&[10]; count];
        let (vars, grads) = model(&shapes);
        g.throughput(Throughput::Elements(count as u64));
        let mut ours = CandleRmsProp::<f32>::new(vars.clone(), RmsPropConfig::pytorch()).unwrap();
        g.bench_function(BenchmarkId::new("rmsprop-candle RMSProp", count), |b| {
            b.iter(|| ours.step(&grads).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench, many_variables);
criterion_main!(benches);
