//! A warm adapter step allocates nothing and takes time linear in the number of variables (one
//! entry per variable, no vector drained and rebuilt at each level), with 1,000 variables.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use rmsprop::RmsPropConfig;
use rmsprop_candle::CandleRmsProp;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations per warm step over `vars` (three warm-up steps first).
fn allocations_per_step(vars: &[Var]) -> usize {
    let mut grads = GradStore::default();
    for v in vars {
        let g = Tensor::full(0.5f32, v.shape(), &Device::Cpu).unwrap();
        grads.insert(v.as_tensor(), g);
    }
    let mut opt = CandleRmsProp::<f32>::with_optimizer(
        vars.to_vec(),
        rmsprop::RmsProp::new(RmsPropConfig::pytorch()).unwrap(),
    );
    for _ in 0..3 {
        opt.step_with(&grads).unwrap();
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..10 {
        opt.step_with(&grads).unwrap();
    }
    (ALLOCATIONS.load(Ordering::SeqCst) - before) / 10
}

/// One test only: another test running beside it would allocate while this one counts.
#[test]
fn a_warm_step_over_1000_variables_allocates_nothing_of_its_own() {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    drop(std::hint::black_box(vec![1u8; 100]));
    assert!(
        ALLOCATIONS.load(Ordering::SeqCst) > before,
        "the counter counts"
    );

    // Single-element variables: nothing at all is allocated per step.
    let scalars: Vec<Var> = (0..1000)
        .map(|i| Var::from_vec(vec![1.0f32 + i as f32], 1, &Device::Cpu).unwrap())
        .collect();
    assert_eq!(allocations_per_step(&scalars), 0);
    assert!(
        scalars[0].as_tensor().to_vec1::<f32>().unwrap()[0] < 1.0,
        "the steps ran"
    );

    // Longer variables: exactly one allocation per variable, and it is candle's, not ours:
    // candle 0.11.1's in-place op checks `Layout::has_internal_overlap`, which collects the
    // dimensions longer than 1 into a `Vec` (candle-core src/layout.rs, `Layout::range`).
    let vectors: Vec<Var> = (0..1000)
        .map(|i| Var::from_vec(vec![1.0f32; 3 + i % 5], 3 + i % 5, &Device::Cpu).unwrap())
        .collect();
    assert_eq!(allocations_per_step(&vectors), vectors.len());
}
