//! A training loop with param groups, a warm-up + cosine schedule, gradient clipping and
//! gradient accumulation: least squares `y = X w + b` on synthetic data.
//!
//! Run: `cargo run -p rmsprop --example training_loop`

use rmsprop::clip::clip_grad_norm;
use rmsprop::schedule::{warmup_cosine, Scheduled};
use rmsprop::{Accumulate, Optimizer, ParamGroups, RmsProp, RmsPropConfig, WeightDecayStyle};

fn main() -> Result<(), rmsprop::Error> {
    // Data: 64 samples, 4 features, known weights.
    let true_w = [1.5f32, -2.0, 0.5, 3.0];
    let xs: Vec<[f32; 4]> = (0..64)
        .map(|i| {
            let t = i as f32;
            [
                (t * 0.37).sin(),
                (t * 0.11).cos(),
                (t * 0.71).sin(),
                ((t * 0.23).cos() - 0.5),
            ]
        })
        .collect();
    let ys: Vec<f32> = xs
        .iter()
        .map(|x| x.iter().zip(&true_w).map(|(a, b)| a * b).sum::<f32>() + 0.7)
        .collect();

    // Weights decay, the bias does not; both with RMSProp (PyTorch formulation, momentum 0.9).
    let base = RmsPropConfig::pytorch().with_lr(0.02).with_momentum(0.9);
    let mut groups = ParamGroups::<f32, RmsProp<f32>>::new();
    groups.add_group(
        "weights",
        1,
        RmsProp::new(
            base.clone()
                .with_weight_decay(1e-4, WeightDecayStyle::Coupled),
        )?,
    );
    groups.add_group("bias", 1, RmsProp::new(base)?);
    // Warm up for 20 steps, then cosine-anneal to 0 at step 300; accumulate 4 micro-batches.
    let mut opt = Accumulate::new(Scheduled::new(groups, warmup_cosine(0.1, 20, 300, 0.0)), 4)?;

    let (mut w, mut b) = (vec![0.0f32; 4], vec![0.0f32]);
    for step in 0..1200 {
        // One micro-batch of 16 samples.
        let batch = (step % 4) * 16..(step % 4 + 1) * 16;
        let (mut gw, mut gb) = (vec![0.0f32; 4], vec![0.0f32]);
        for i in batch {
            let pred: f32 = xs[i].iter().zip(&w).map(|(a, b)| a * b).sum::<f32>() + b[0];
            let err = pred - ys[i];
            for j in 0..4 {
                gw[j] += 2.0 * err * xs[i][j] / 16.0;
            }
            gb[0] += 2.0 * err / 16.0;
        }
        let norm = clip_grad_norm(&mut [&mut gw, &mut gb], 1.0, 2.0);
        opt.step(&mut [&mut w, &mut b], &[&gw, &gb])?;
        if step % 300 == 299 {
            println!(
                "step {:4}  grad norm {norm:.4}  w {w:.3?}  b {:.3}",
                step + 1,
                b[0]
            );
        }
    }
    assert!(
        w.iter().zip(&true_w).all(|(a, b)| (a - b).abs() < 0.05),
        "{w:?}"
    );
    Ok(())
}
