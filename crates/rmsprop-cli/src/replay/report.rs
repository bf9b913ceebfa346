//! How far a replay deviated: per step, per state buffer, with the tolerances.

use std::fmt;

use serde_json::{Map, Value};

use super::*;

/// The tolerance of a replay, in units of the learning rate: float64 within 1e-10 lr;
/// float32 within 1e-2 lr, and 1e-1 lr for centered runs.
///
/// # Examples
/// ```
/// assert_eq!(rmsprop_cli::replay::tolerance_lr("float64", true), 1e-10);
/// assert_eq!(rmsprop_cli::replay::tolerance_lr("float32", true), 1e-1);
/// ```
pub fn tolerance_lr(dtype: &str, centered: bool) -> f64 {
    match (dtype, centered) {
        ("float64", _) => 1e-10,
        (_, false) => 1e-2,
        (_, true) => 1e-1,
    }
}

/// The largest deviation between two sequences of values, and where it occurred.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Deviation {
    /// Largest `|ours - theirs|`.
    pub max_abs: f64,
    /// Largest `|ours - theirs| / |theirs|` over non-zero recorded values.
    pub max_rel: f64,
    /// Step (0-based) of the largest absolute deviation.
    pub worst_step: usize,
    /// Coordinate of the largest absolute deviation.
    pub worst_index: usize,
    /// Number of values compared.
    pub count: usize,
}

impl Deviation {
    pub(super) fn add(&mut self, ours: f64, theirs: f64, step: usize, index: usize) {
        self.count += 1;
        let abs = if ours == theirs || (ours.is_nan() && theirs.is_nan()) {
            0.0
        } else {
            let d = (ours - theirs).abs();
            if d.is_nan() {
                f64::INFINITY
            } else {
                d
            }
        };
        if abs > self.max_abs {
            self.max_abs = abs;
            self.worst_step = step;
            self.worst_index = index;
        }
        if theirs != 0.0 && theirs.is_finite() {
            self.max_rel = self.max_rel.max(abs / theirs.abs());
        }
    }
}

/// The deviation of one final-state buffer.
#[derive(Clone, Debug)]
pub struct StateDeviation {
    /// The buffer's name (`square_avg`, `exp_avg`, ...).
    pub name: String,
    /// Whether our optimizer keeps this buffer for this configuration (TF1 keeps a momentum
    /// buffer even without momentum; we do not).
    pub kept: bool,
    /// The deviation (zero when not kept).
    pub deviation: Deviation,
}

/// The outcome of a replay.
#[derive(Clone, Debug)]
pub struct Report {
    /// File name.
    pub name: String,
    /// Recording framework.
    pub framework: String,
    /// Its version.
    pub framework_version: String,
    /// Configuration name in the vector.
    pub config_name: String,
    /// Objective name.
    pub objective: String,
    /// `float32` or `float64`.
    pub dtype: String,
    /// Steps replayed.
    pub steps: usize,
    /// Parameters per step.
    pub params: usize,
    /// The optimizer used (`Setup::describe`).
    pub setup: String,
    /// Whether it is centered RMSProp.
    pub centered: bool,
    /// The learning rate (deviations are also given in its units).
    pub lr: f64,
    /// Deviation of the parameters over every step and coordinate.
    pub trajectory: Deviation,
    /// Deviation of each recorded final-state buffer.
    pub state: Vec<StateDeviation>,
    /// The tolerance, in units of lr.
    pub tolerance_lr: f64,
    /// Our parameters after every step, as JSON numbers.
    pub our_trajectory: Vec<Value>,
    /// Our final state in the framework's convention, as JSON.
    pub our_final_state: Map<String, Value>,
    /// A generated vector: the trajectory and state are the sampled ones.
    pub generated: bool,
}

impl Report {
    /// The largest trajectory deviation in units of the learning rate.
    pub fn max_abs_lr(&self) -> f64 {
        if self.lr > 0.0 {
            self.trajectory.max_abs / self.lr
        } else {
            self.trajectory.max_abs
        }
    }

    /// Whether the trajectory is within [`tolerance_lr`].
    pub fn within_tolerance(&self) -> bool {
        self.max_abs_lr() <= self.tolerance_lr
    }

    /// The vector with our trajectory and final state in place of the recorded ones, plus a
    /// `replay` object with the deviations (the `--json` output).
    pub fn to_json(&self, vector: &Vector) -> Value {
        let mut out = vector.raw.clone();
        out.insert("framework".into(), Value::from("rmsprop"));
        out.insert("version".into(), Value::from(env!("CARGO_PKG_VERSION")));
        out.insert("optimizer".into(), Value::from("rmsprop::RmsProp"));
        let (trajectory, final_state) = if self.generated {
            ("trajectory_sample", "final_state_sample")
        } else {
            ("trajectory", "final_state")
        };
        out.insert(trajectory.into(), Value::Array(self.our_trajectory.clone()));
        out.insert(
            final_state.into(),
            Value::Object(self.our_final_state.clone()),
        );
        out.remove("final_state_native_names");
        let state: Map<String, Value> = self
            .state
            .iter()
            .map(|s| {
                let v = if s.kept {
                    serde_json::json!({"max_abs": s.deviation.max_abs, "max_rel": s.deviation.max_rel})
                } else {
                    serde_json::json!("not kept by this configuration")
                };
                (s.name.clone(), v)
            })
            .collect();
        out.insert(
            "replay".into(),
            serde_json::json!({
                "against": {"framework": self.framework, "version": self.framework_version, "file": self.name},
                "optimizer": self.setup,
                "max_abs_deviation": self.trajectory.max_abs,
                "max_abs_deviation_lr": self.max_abs_lr(),
                "max_rel_deviation": self.trajectory.max_rel,
                "worst_step": self.trajectory.worst_step,
                "worst_coordinate": self.trajectory.worst_index,
                "tolerance_lr": self.tolerance_lr,
                "within_tolerance": self.within_tolerance(),
                "final_state": state,
            }),
        );
        Value::Object(out)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "vector:    {} ({} {}, config {}, {}, {}, {} steps x {} params)",
            self.name,
            self.framework,
            self.framework_version,
            self.config_name,
            self.objective,
            self.dtype,
            self.steps,
            self.params
        )?;
        writeln!(
            f,
            "replayed:  {} with the vector's hyperparameters",
            self.setup
        )?;
        let t = &self.trajectory;
        writeln!(
            f,
            "max abs deviation: {:.3e} ({:.3e} lr) at step {}, coordinate {}",
            t.max_abs,
            self.max_abs_lr(),
            t.worst_step + 1,
            t.worst_index
        )?;
        writeln!(f, "max rel deviation: {:.3e}", t.max_rel)?;
        for s in &self.state {
            if s.kept {
                writeln!(
                    f,
                    "final {}: max abs {:.3e}, max rel {:.3e}",
                    s.name, s.deviation.max_abs, s.deviation.max_rel
                )?;
            } else {
                writeln!(
                    f,
                    "final {}: recorded, not kept by this configuration",
                    s.name
                )?;
            }
        }
        let verdict = if self.within_tolerance() {
            "within"
        } else {
            "EXCEEDS"
        };
        write!(
            f,
            "{verdict} tolerance: {:.0e} lr for {}{}",
            self.tolerance_lr,
            self.dtype,
            if self.dtype == "float32" && self.centered {
                " centered"
            } else {
                ""
            }
        )
    }
}
