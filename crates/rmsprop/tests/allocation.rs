//! A step allocates nothing once the state exists: on one thread, and on the threaded path
//! (which splits the work by recursive `rayon::join`, without a job list), screen included.
//! Counted by a global allocator that wraps the system one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use rmsprop::{
    Accumulate, Adam, AdamConfig, Execution, NonFinitePolicy, Optimizer, RmsProp, RmsPropConfig,
    Sgd, SgdConfig,
};

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

/// Allocations made by `steps` steps after two warm-up steps (which create the state and let
/// the thread pool start its threads).
fn allocations_per_steps(opt: &mut dyn Optimizer<f32>, sizes: &[usize], steps: usize) -> usize {
    let mut params: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![1.0; n]).collect();
    let grads: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![0.5; n]).collect();
    let mut views: Vec<&mut [f32]> = params.iter_mut().map(|p| p.as_mut_slice()).collect();
    let gv: Vec<&[f32]> = grads.iter().map(|g| g.as_slice()).collect();
    for _ in 0..2 {
        opt.step(&mut views, &gv).unwrap();
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..steps {
        opt.step(&mut views, &gv).unwrap();
    }
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

/// One test only: another test running beside it would allocate while this one counts.
#[test]
fn steps_allocate_nothing_serial_or_threaded() {
    // The counter sees an allocation.
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    drop(std::hint::black_box(vec![1u8; 100]));
    assert!(ALLOCATIONS.load(Ordering::SeqCst) > before);

    // Split small so that the threaded path really splits: 8 tensors, chunks of 4,096.
    let threaded = || {
        Execution::threads(2)
            .unwrap()
            .with_split(1_000, 4_096)
            .with_non_finite(NonFinitePolicy::Error)
    };
    let sizes = [50_000, 3, 20_000, 7, 100_000, 1, 4_096, 9_999];
    let cases: Vec<(&str, Box<dyn Optimizer<f32>>)> = vec![
        (
            "rmsprop",
            Box::new(
                RmsProp::new(
                    RmsPropConfig::pytorch()
                        .with_centered(true)
                        .with_momentum(0.9),
                )
                .unwrap(),
            ),
        ),
        (
            "adam",
            Box::new(Adam::new(AdamConfig::pytorch_adamw()).unwrap()),
        ),
        (
            "sgd",
            Box::new(Sgd::new(SgdConfig::momentum(0.1, 0.9)).unwrap()),
        ),
    ];
    // Accumulation: the candidate sum is built in kept buffers and screened through a kept list.
    let mut acc = Accumulate::new(RmsProp::new(RmsPropConfig::pytorch()).unwrap(), 2).unwrap();
    assert_eq!(allocations_per_steps(&mut acc, &sizes, 20), 0, "accumulate");
    for (name, mut opt) in cases {
        assert_eq!(
            allocations_per_steps(opt.as_mut(), &sizes, 20),
            0,
            "{name}, one thread"
        );
        opt.set_execution(threaded());
        assert_eq!(
            allocations_per_steps(opt.as_mut(), &sizes, 20),
            0,
            "{name}, two threads"
        );
    }
}
