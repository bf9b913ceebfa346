//! Criterion benches of the kernels: the scalar reference loop against the fast (vectorizable,
//! AVX2 when available) path, one thread; and a whole 2-parameter step (checks, non-finite
//! check, kernel), as `rmsprop bench --sizes 2` times it. `cargo bench -p rmsprop`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rmsprop::kernel::adam::{adam_reference, select_adam};
use rmsprop::kernel::fast::Isa;
use rmsprop::kernel::rmsprop::{rmsprop_fast, rmsprop_reference};
use rmsprop::{Adam, AdamConfig, Execution, Optimizer, RmsProp, RmsPropConfig};

fn data(n: usize) -> (Vec<f32>, Vec<f32>) {
    let p = (0..n).map(|i| (i % 97) as f32 * 0.01 - 0.4).collect();
    let g = (0..n).map(|i| (i % 89) as f32 * 1e-3 - 0.04).collect();
    (p, g)
}

fn rmsprop(c: &mut Criterion) {
    let isa = Isa::detect();
    for (name, config) in [
        ("plain", RmsPropConfig::pytorch()),
        (
            "centered_momentum",
            RmsPropConfig::pytorch()
                .with_centered(true)
                .with_momentum(0.9),
        ),
    ] {
        let mut group = c.benchmark_group(format!("rmsprop_{name}_f32"));
        let s = RmsProp::<f32>::new(config.clone()).unwrap().scalars(1);
        for n in [1_000usize, 100_000, 1_000_000] {
            group.throughput(Throughput::Elements(n as u64));
            let (mut p, g) = data(n);
            let mut v = vec![0.0f32; n];
            let mut m = vec![0.0f32; if config.centered { n } else { 0 }];
            let mut b = vec![0.0f32; if config.momentum > 0.0 { n } else { 0 }];
            group.bench_with_input(BenchmarkId::new("reference", n), &n, |bench, _| {
                bench.iter(|| rmsprop_reference(&s, &mut p, &g, &mut v, &mut m, &mut b))
            });
            group.bench_with_input(BenchmarkId::new("fast", n), &n, |bench, _| {
                bench.iter(|| rmsprop_fast(isa, &s, &mut p, &g, &mut v, &mut m, &mut b))
            });
        }
        group.finish();
    }
}

fn adam(c: &mut Criterion) {
    let isa = Isa::detect();
    let mut group = c.benchmark_group("adam_f32");
    let s = Adam::<f32>::new(AdamConfig::pytorch()).unwrap().scalars(1);
    let kernel = select_adam(&s);
    for n in [1_000usize, 100_000, 1_000_000] {
        group.throughput(Throughput::Elements(n as u64));
        let (mut p, g) = data(n);
        let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
        group.bench_with_input(BenchmarkId::new("reference", n), &n, |bench, _| {
            bench.iter(|| adam_reference(&s, &mut p, &g, &mut m, &mut v, &mut []))
        });
        group.bench_with_input(BenchmarkId::new("fast", n), &n, |bench, _| {
            bench.iter(|| kernel(isa, &s, &mut p, &g, &mut [&mut m, &mut v]))
        });
    }
    group.finish();
}

/// A whole step of plain RMSProp on two parameters, through `Box<dyn Optimizer<f32>>` with two
/// threads configured (too small to use them).
fn small_step(c: &mut Criterion) {
    let mut opt: Box<dyn Optimizer<f32>> =
        Box::new(RmsProp::<f32>::new(RmsPropConfig::pytorch()).unwrap());
    opt.set_execution(Execution::threads(2).unwrap());
    let (mut p, g) = ([5.0f32, 4.0], [0.1f32, -0.2]);
    c.bench_function("rmsprop_step_2_params", |bench| {
        bench.iter(|| opt.step(&mut [&mut p], &[&g]).unwrap())
    });
}

criterion_group!(benches, rmsprop, adam, small_step);
criterion_main!(benches);
