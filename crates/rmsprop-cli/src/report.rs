//! `rmsprop report`: runs the fixed experiments behind the README's claims and writes
//! `EXPERIMENTS.md` with their tables, pictures and verdicts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::compare::{self, Experiment};
use crate::progress;

/// The experiments, in report order: (name, experiment file). The files live in
/// `crates/rmsprop-cli/experiments/` and are copied next to their results.
pub const EXPERIMENTS: &[(&str, &str)] = &[
    (
        "badly_scaled",
        include_str!("../experiments/badly_scaled.toml"),
    ),
    (
        "badly_scaled_rotated",
        include_str!("../experiments/badly_scaled_rotated.toml"),
    ),
    ("vanishing", include_str!("../experiments/vanishing.toml")),
    (
        "vanishing_mlp",
        include_str!("../experiments/vanishing_mlp.toml"),
    ),
    (
        "lost_gradient",
        include_str!("../experiments/lost_gradient.toml"),
    ),
    ("exploding", include_str!("../experiments/exploding.toml")),
    ("rnn", include_str!("../experiments/rnn.toml")),
    ("adding", include_str!("../experiments/adding.toml")),
    ("rho", include_str!("../experiments/rho.toml")),
    ("rho_memory", include_str!("../experiments/rho_memory.toml")),
    ("first_step", include_str!("../experiments/first_step.toml")),
    (
        "update_variance",
        include_str!("../experiments/update_variance.toml"),
    ),
    ("eps", include_str!("../experiments/eps.toml")),
    ("long_run", include_str!("../experiments/long_run.toml")),
    ("noisy", include_str!("../experiments/noisy.toml")),
    (
        "moving_target",
        include_str!("../experiments/moving_target.toml"),
    ),
    (
        "scale_shift",
        include_str!("../experiments/scale_shift.toml"),
    ),
    (
        "scale_shift_after",
        include_str!("../experiments/scale_shift_after.toml"),
    ),
    ("toy_2d", include_str!("../experiments/toy_2d.toml")),
    ("gamma", include_str!("../experiments/gamma.toml")),
    (
        "least_squares",
        include_str!("../experiments/least_squares.toml"),
    ),
    (
        "space_navigation",
        include_str!("../experiments/space_navigation.toml"),
    ),
];

const PREAMBLE: &str = "# Experiments: the claims about RMSProp, measured

Written by `cargo run --release -- report` (every number and picture below comes from that
command; rerun it to check them). Each section is one experiment file, copied next to its
results, and can be rerun alone with `rmsprop compare --config FILE --out DIR`.

How to read the tables:
- Every optimizer that sets no learning rate gets the best one from the same grid
  (1e-4 to 1 in half decades), chosen by the experiment's `select_by` measure (the tail gap
  unless stated). When the best is at an end of the grid, the search goes on past it until a
  rate does worse (`grid, extended`), so every rate shown is interior; one still at the last
  rate tried would say `grid edge`. Nobody is tuned by hand, RMSProp included. Other hyperparameters are the
  PyTorch defaults (RMSProp: rho 0.99, eps 1e-8 outside the root; momentum 0.9; Adam
  0.9/0.999).
- *final f - f_min*: the gap at the last step; *tail gap*: the mean gap over the last 10% of
  the steps (noise and oscillation make the last step alone misleading); with several seeds,
  mean ± standard deviation over seeds. *steps to tolerance*: first step below the tolerance,
  worst seed. For the moving minimum the gap is f(x_t, t) - f(c(t), t), the loss paid at
  step t.
- A verdict is computed from the table by the checks written in the experiment file.
";

/// Runs every experiment, writing `<out>/experiments/<name>/` and `<out>/EXPERIMENTS.md`;
/// returns the path of the latter. `stop` (Ctrl-C) ends the runs early.
///
/// # Errors
/// When a file cannot be written.
pub fn report(out: &Path, stop: &dyn Fn() -> bool) -> Result<PathBuf> {
    let mut summary = String::from("| experiment | claim | verdict |\n|---|---|---|\n");
    let mut sections = String::new();
    for (name, text) in EXPERIMENTS {
        let e = Experiment::from_toml(text).with_context(|| format!("experiment {name}"))?;
        let dir = out.join("experiments").join(name);
        let pb = progress::bar(compare::total_steps(&e), name);
        let outcomes = compare::run(&e, stop, &|n| pb.inc(n))?;
        pb.finish_and_clear();
        compare::write(&dir, &e, &outcomes)?;
        std::fs::write(dir.join("experiment.toml"), text)?;
        let rel = format!("experiments/{name}");
        let (holds, lines) = e.judge(&outcomes);
        let verdict = if e.verdict.is_empty() {
            "no claim: a picture".to_string()
        } else if holds {
            "**holds**".to_string()
        } else {
            "**does not hold**".to_string()
        };
        summary += &format!(
            "| [{}](#{}) | {} | {} |\n",
            e.title(),
            anchor(&e.title()),
            e.claim.as_deref().unwrap_or("—"),
            verdict
        );
        sections += &format!("\n## {}\n\n", e.title());
        if let Some(claim) = &e.claim {
            sections += &format!("**Claim:** {claim}\n\n**Verdict:** {verdict}.\n\n");
            for l in &lines {
                sections += &format!("- {l}\n");
            }
            sections += "\n";
            if let Some(note) = &e.note {
                sections += &format!("**Why:** {note}\n\n");
            }
        }
        sections += &format!(
            "Experiment file: [`{rel}/experiment.toml`]({rel}/experiment.toml). \
             Rerun: `cargo run --release -- compare --config docs/{rel}/experiment.toml --out docs/{rel}`\n\n"
        );
        sections += &compare::table(&outcomes, &e);
        sections += "\n";
        if dir.join("trajectories.png").exists() {
            sections += &format!("![paths]({rel}/trajectories.png)\n");
        }
        sections +=
            &format!("![f - f_min]({rel}/loss.png)\n![step length]({rel}/step_length.png)\n");
        if dir.join("layers.png").exists() {
            sections += &format!("![each layer's mean update]({rel}/layers.png)\n");
        }
        if dir.join("through_time.png").exists() {
            sections +=
                &format!("![the gradient carried back through time]({rel}/through_time.png)\n");
        }
        if dir.join("gradients.png").exists() {
            sections += &format!("![each layer's gradient norm]({rel}/gradients.png)\n");
        }
        if dir.join("accumulator.png").exists() {
            sections += &format!(
                "![RMSProp's accumulator: v, sqrt(v) and the effective learning rate]({rel}/accumulator.png)\n"
            );
        }
    }
    let md = format!("{PREAMBLE}\n{summary}{sections}");
    let path = out.join("EXPERIMENTS.md");
    std::fs::create_dir_all(out)?;
    std::fs::write(&path, md).with_context(|| format!("{}", path.display()))?;
    Ok(path)
}

/// GitHub's heading anchor: lower case, spaces to dashes, punctuation dropped.
fn anchor(title: &str) -> String {
    title
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}
