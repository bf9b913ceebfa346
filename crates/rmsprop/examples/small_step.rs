//! `N` steps of plain RMSProp (PyTorch's defaults) on two `f32` parameters, through
//! `Box<dyn Optimizer<f32>>` with 2 threads configured, as `rmsprop bench --sizes 2` steps them:
//! what `tools/bench/small_step_instructions.sh` counts instructions of with callgrind.
//!
//! Run: `cargo run --release -p rmsprop --example small_step -- 1000000` (prints ns per step).

use rmsprop::{Execution, Optimizer, RmsProp, RmsPropConfig};

fn main() -> Result<(), rmsprop::Error> {
    let steps: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("a step count"))
        .unwrap_or(1_000_000);
    let mut opt: Box<dyn Optimizer<f32>> = Box::new(RmsProp::new(RmsPropConfig::pytorch())?);
    opt.set_execution(Execution::threads(2)?);
    let (mut p, g) = ([5.0f32, 4.0], [0.1f32, -0.2]);
    let start = std::time::Instant::now();
    for _ in 0..steps {
        opt.step(&mut [&mut p], &[&g])?;
    }
    let ns = start.elapsed().as_secs_f64() * 1e9 / steps.max(1) as f64;
    println!("{steps} steps, {ns:.1} ns per step, p = {p:?}");
    Ok(())
}
