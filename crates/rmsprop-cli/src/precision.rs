//! `rmsprop precision`: one long RMSProp run in `f32` and in `bf16` three ways (rounded to
//! nearest, rounded stochastically, with an `f32` master copy), on a quadratic whose minimum is
//! not a `bf16` value, with the verdict on what reduced precision does to training; and two with
//! 8-bit state, `f32` parameters and `bf16` ones rounded stochastically (shown, not judged).
//!
//! The objective is `f(x) = Σ λ_i (x_i - t_i)² / 2` over 256 coordinates, `λ` from 1 to 100 and
//! targets `t` in `[0.5, 1.5)`, from `x = 0`. Gradients are computed in `f32` at the stored
//! parameters and, for the `bf16` runs, rounded to `bf16` (as a `bf16` model's backward pass
//! gives them). RMSProp moves each coordinate by about `lr` per step, and a `bf16` parameter near
//! 1 has a unit in the last place of 2^-7 ≈ 0.0078: with `lr` = 0.001 every update is under half
//! of it, so rounding to nearest throws it away.

use std::path::Path;

use anyhow::{Context, Result};
use half::bf16;
use rmsprop::blockwise::Blockwise8;
use rmsprop::mixed::{Mixed, MixedOptions, Rounding, StateStorage};
use rmsprop::{Optim, Optimizer, RmsPropConfig};

use crate::plot::{self, Series};

/// Coordinates of the quadratic.
const DIM: usize = 256;

/// One run: its label and `f - f_min` (f computed in `f64` at the stored parameters) per step.
#[derive(Clone, Debug)]
pub struct PrecisionRun {
    /// `f32`, `bf16 nearest`, `bf16 stochastic` or `bf16 + f32 master`.
    pub label: &'static str,
    /// `f - f_min` at the start and after each step.
    pub gaps: Vec<f64>,
}

impl PrecisionRun {
    /// The gap after the last step.
    pub fn final_gap(&self) -> f64 {
        *self.gaps.last().expect("the start at least")
    }
}

/// The quadratic's curvatures and targets.
fn problem() -> (Vec<f64>, Vec<f64>) {
    let lambdas = (0..DIM)
        .map(|i| 100f64.powf(i as f64 / (DIM - 1) as f64))
        .collect();
    // A fixed, irregular spread of targets (a Weyl sequence), none of them a bf16 value.
    let targets = (0..DIM)
        .map(|i| 0.5 + ((i as f64 * 0.618_033_988_749_895 + 0.1234567) % 1.0))
        .collect();
    (lambdas, targets)
}

fn gap(x: &[f64], lambdas: &[f64], targets: &[f64]) -> f64 {
    x.iter()
        .zip(lambdas)
        .zip(targets)
        .map(|((x, l), t)| 0.5 * l * (x - t) * (x - t))
        .sum()
}

fn grad_f32(x: &[f64], lambdas: &[f64], targets: &[f64]) -> Vec<f32> {
    x.iter()
        .zip(lambdas)
        .zip(targets)
        .map(|((x, l), t)| (l * (x - t)) as f32)
        .collect()
}

/// The four runs, `steps` steps of PyTorch's RMSProp at `lr`.
///
/// # Examples
/// ```
/// let runs = rmsprop_cli::precision::run(50, 1e-3);
/// assert_eq!(runs.len(), 6);
/// assert_eq!(runs[0].gaps.len(), 51);
/// ```
pub fn run(steps: usize, lr: f64) -> Vec<PrecisionRun> {
    let (lambdas, targets) = problem();
    let config = RmsPropConfig::pytorch().with_lr(lr);
    let mut out = Vec::new();

    // f32 parameters, stepped by `step`.
    let f32_run = |step: &mut dyn FnMut(&mut [f32], &[f32])| {
        let mut x = vec![0.0f32; DIM];
        let mut gaps = Vec::with_capacity(steps + 1);
        for k in 0..=steps {
            let wide: Vec<f64> = x.iter().map(|v| *v as f64).collect();
            gaps.push(gap(&wide, &lambdas, &targets));
            if k < steps {
                step(&mut x, &grad_f32(&wide, &lambdas, &targets));
            }
        }
        gaps
    };
    // bf16 parameters and gradients (rounded to nearest from f32), stepped by `step`.
    let bf16_run = |step: &mut dyn FnMut(&mut [bf16], &[bf16])| {
        let mut x = vec![bf16::from_f32(0.0); DIM];
        let mut gaps = Vec::with_capacity(steps + 1);
        for k in 0..=steps {
            let wide: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
            gaps.push(gap(&wide, &lambdas, &targets));
            if k < steps {
                let g: Vec<bf16> = grad_f32(&wide, &lambdas, &targets)
                    .into_iter()
                    .map(bf16::from_f32)
                    .collect();
                step(&mut x, &g);
            }
        }
        gaps
    };
    let mut opt = Optim::<RmsPropConfig, f32>::new(config.clone()).expect("a valid configuration");
    let gaps = f32_run(&mut |x, g| opt.step_single(x, g).expect("finite gradients"));
    out.push(PrecisionRun { label: "f32", gaps });

    for (label, rounding, master) in [
        ("bf16 nearest", Rounding::Nearest, false),
        ("bf16 stochastic", Rounding::Stochastic { seed: 7 }, false),
        ("bf16 + f32 master", Rounding::Nearest, true),
    ] {
        let options = MixedOptions {
            state: StateStorage::F32,
            rounding,
            master,
        };
        let mut opt = Mixed::<RmsPropConfig, bf16>::new(config.clone(), options)
            .expect("a valid configuration");
        let gaps = bf16_run(&mut |x, g| opt.step(&mut [x], &[g]).expect("finite gradients"));
        out.push(PrecisionRun { label, gaps });
    }

    // f32 parameters with 8-bit state (every buffer quantized).
    let mut opt: Blockwise8<RmsPropConfig> =
        Blockwise8::new(config.clone(), 0).expect("a valid configuration");
    let gaps = f32_run(&mut |x, g| opt.step(&mut [x], &[g]).expect("finite gradients"));
    out.push(PrecisionRun {
        label: "f32, 8-bit state",
        gaps,
    });

    // bf16 parameters, stochastic rounding, 8-bit state: 2 + 1 bytes per parameter.
    let mut opt: Blockwise8<RmsPropConfig, bf16> = Blockwise8::new(config, 0)
        .expect("a valid configuration")
        .with_rounding(Rounding::Stochastic { seed: 7 });
    let gaps = bf16_run(&mut |x, g| opt.step(&mut [x], &[g]).expect("finite gradients"));
    out.push(PrecisionRun {
        label: "bf16 stochastic, 8-bit state",
        gaps,
    });
    out
}

/// f - f_min at the answer rounded to `bf16`: no `bf16` parameters do much better.
///
/// # Examples
/// ```
/// let floor = rmsprop_cli::precision::bf16_floor();
/// assert!(floor > 0.0 && floor < 0.1);
/// ```
pub fn bf16_floor() -> f64 {
    let (lambdas, targets) = problem();
    let rounded: Vec<f64> = targets
        .iter()
        .map(|t| bf16::from_f64(*t).to_f64())
        .collect();
    gap(&rounded, &lambdas, &targets)
}

/// The verdict's rule, stated beside it.
pub const RULE: &str = "holds when bf16 rounded to nearest ends at least 100x above the bf16 floor (f - f_min at the answer rounded to bf16), and bf16 with stochastic rounding and bf16 with an f32 master copy each end within 10x of that floor";

/// Whether [`RULE`] holds for `runs` (as [`run`] orders them) against the bf16 `floor`.
///
/// # Examples
/// ```
/// use rmsprop_cli::precision::{holds, PrecisionRun};
/// let r = |label, g: f64| PrecisionRun { label, gaps: vec![1.0, g] };
/// let floor = 1e-3;
/// assert!(holds(&[r("f32", 1e-5), r("n", 1e-1), r("s", 5e-3), r("m", 2e-3)], floor));
/// assert!(!holds(&[r("f32", 1e-5), r("n", 5e-2), r("s", 5e-3), r("m", 2e-3)], floor));
/// assert!(!holds(&[r("f32", 1e-5), r("n", 1e-1), r("s", 2e-2), r("m", 2e-3)], floor));
/// assert!(!holds(&[r("f32", 1e-5), r("n", 1e-1), r("s", 5e-3), r("m", 2e-2)], floor));
/// ```
pub fn holds(runs: &[PrecisionRun], floor: f64) -> bool {
    runs[1].final_gap() >= 100.0 * floor
        && runs[2].final_gap() <= 10.0 * floor
        && runs[3].final_gap() <= 10.0 * floor
}

/// A Markdown table of the runs: final gap, and the gap at a tenth and half of the run; and the
/// bf16 floor.
pub fn table(runs: &[PrecisionRun]) -> String {
    let mut t =
        String::from("| run | f - f_min after 10% | after 50% | final |\n|---|---|---|---|\n");
    for r in runs {
        let at = |frac: f64| r.gaps[((r.gaps.len() - 1) as f64 * frac) as usize];
        t += &format!(
            "| {} | {:.3e} | {:.3e} | {:.3e} |\n",
            r.label,
            at(0.1),
            at(0.5),
            r.final_gap()
        );
    }
    t += &format!(
        "| (the answer rounded to bf16) | | | {:.3e} |\n",
        bf16_floor()
    );
    t
}

/// Writes `table.md` and `loss.png/svg` into `dir`.
///
/// # Errors
/// When a file cannot be written.
pub fn write(dir: &Path, runs: &[PrecisionRun], lr: f64) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("--out {}", dir.display()))?;
    let verdict = if holds(runs, bf16_floor()) {
        "holds"
    } else {
        "does not hold"
    };
    std::fs::write(
        dir.join("table.md"),
        format!("{}\nVerdict: **{verdict}** ({RULE}).\n", table(runs)),
    )?;
    let curves: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|r| {
            r.gaps
                .iter()
                .enumerate()
                .map(|(k, g)| (k as f64, *g))
                .collect()
        })
        .collect();
    let series: Vec<Series<'_>> = runs
        .iter()
        .zip(&curves)
        .map(|(r, c)| Series {
            label: r.label.to_string(),
            points: c,
        })
        .collect();
    plot::loss_curves(
        &dir.join("loss"),
        &format!("RMSProp (lr {lr}) in f32 and in bf16: f - f_min per step"),
        "step",
        "f - f_min (log scale)",
        &series,
    )
}
