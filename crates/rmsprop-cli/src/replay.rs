//! Gradient replay: run a recorded gradient sequence through our RMSProp and measure how far
//! our trajectory is from the one a framework recorded.
//!
//! The vectors follow `reference/SCHEMA.md` (schema_version 1): hyperparameters in neutral
//! names (`normalized`), the initial parameters, the raw gradient of every step and the
//! parameters after every step. Replay is
//! `params = initial_params; for k in 0..steps { step(params, gradients[k]); compare(params, trajectory[k]) }`,
//! then the final state is compared in the framework's own convention.

use std::fmt;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use rmsprop::{
    EpsPlacement, Float, HyperparameterPrecision, MomentumStyle, Optimizer, RmsProp, RmsPropConfig,
    WeightDecayStyle,
};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A framework preset a vector is replayed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// [`RmsPropConfig::pytorch`].
    Pytorch,
    /// [`RmsPropConfig::keras`].
    Keras,
    /// [`RmsPropConfig::tf1`].
    Tf1,
    /// [`RmsPropConfig::optax`].
    Optax,
    /// [`RmsPropConfig::timm_tf`].
    TimmTf,
    /// [`RmsPropConfig::graves`].
    Graves,
    /// [`RmsPropConfig::lesson`].
    Lesson,
}

impl Preset {
    /// The preset's configuration.
    ///
    /// # Examples
    /// ```
    /// use rmsprop_cli::replay::Preset;
    /// assert_eq!(Preset::Keras.config(), rmsprop::RmsPropConfig::keras());
    /// ```
    pub fn config(self) -> RmsPropConfig {
        match self {
            Preset::Pytorch => RmsPropConfig::pytorch(),
            Preset::Keras => RmsPropConfig::keras(),
            Preset::Tf1 => RmsPropConfig::tf1(),
            Preset::Optax => RmsPropConfig::optax(),
            Preset::TimmTf => RmsPropConfig::timm_tf(),
            Preset::Graves => RmsPropConfig::graves(),
            Preset::Lesson => RmsPropConfig::lesson(),
        }
    }

    /// The preset matching a vector's `framework` field, if any.
    ///
    /// # Examples
    /// ```
    /// use rmsprop_cli::replay::Preset;
    /// assert_eq!(Preset::for_framework("torch"), Some(Preset::Pytorch));
    /// assert_eq!(Preset::for_framework("mxnet"), None);
    /// ```
    pub fn for_framework(framework: &str) -> Option<Preset> {
        match framework {
            "torch" | "pytorch" => Some(Preset::Pytorch),
            "keras" => Some(Preset::Keras),
            "tf1" | "tensorflow" => Some(Preset::Tf1),
            "optax" => Some(Preset::Optax),
            "timm" => Some(Preset::TimmTf),
            "numpy" | "lesson" => Some(Preset::Lesson),
            _ => None,
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        f.write_str(&name)
    }
}

/// Why a vector cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid JSON or a field has the wrong type.
    #[error("{path}: {field}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The field (a JSON path such as `normalized.lr`), or `.` for the whole file.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The vector asks for something this crate does not support.
    #[error("{path}: {field}: unsupported: {message}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The field.
        field: String,
        /// What is not supported and what to do.
        message: String,
    },
}

/// Hyperparameters in neutral names (SCHEMA.md's `normalized`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalized {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the square average.
    pub decay: f64,
    /// Epsilon.
    pub eps: f64,
    /// Epsilon inside the square root.
    pub eps_in_sqrt: bool,
    /// Centered.
    pub centered: bool,
    /// Momentum (0: none).
    pub momentum: f64,
    /// Nesterov.
    pub nesterov: bool,
    /// Weight decay coefficient.
    pub weight_decay: f64,
    /// Maximize.
    pub maximize: bool,
    /// Initial square average.
    pub initial_scale: f64,
    /// Bias correction.
    pub bias_correction: bool,
    /// `torch`, `keras` or `optax`.
    pub momentum_style: String,
    /// `coupled` or `decoupled` (absent: the preset's).
    #[serde(default)]
    pub weight_decay_style: Option<String>,
    /// `native`, `float32_lr` or `float32` (absent: the preset's).
    #[serde(default)]
    pub hyperparameter_precision: Option<String>,
    /// The learning rate as the framework used it in float64 runs (Keras: rounded to f32).
    #[serde(default)]
    pub lr_as_used_in_float64: Option<f64>,
}

/// The recorded final state (any field may be absent).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct FinalState {
    /// Step count, when the framework keeps one.
    #[serde(default)]
    pub step: Option<Value>,
    /// Square average.
    #[serde(default)]
    pub square_avg: Option<Vec<f64>>,
    /// Mean gradient (centered).
    #[serde(default)]
    pub grad_avg: Option<Vec<f64>>,
    /// Momentum buffer, in the framework's convention.
    #[serde(default)]
    pub momentum_buffer: Option<Vec<f64>>,
}

/// The fields of a vector that replay uses.
#[derive(Clone, Debug, Deserialize)]
pub struct VectorData {
    /// Must be 1.
    pub schema_version: u64,
    /// `torch`, `optax`, `keras`, `tf1`, `timm`, ...
    pub framework: String,
    /// The framework's version.
    #[serde(default)]
    pub version: String,
    /// The configuration's name.
    #[serde(default)]
    pub config: String,
    /// Neutral hyperparameters.
    pub normalized: Normalized,
    /// `float32` or `float64`.
    pub dtype: String,
    /// Objective name.
    #[serde(default)]
    pub objective: String,
    /// Number of steps.
    pub steps: usize,
    /// Initial parameters.
    pub initial_params: Vec<f64>,
    /// `[steps][n]` raw gradients.
    pub gradients: Vec<Vec<f64>>,
    /// `[steps][n]` parameters after each step.
    pub trajectory: Vec<Vec<f64>>,
    /// Final state.
    #[serde(default)]
    pub final_state: FinalState,
}

/// A parsed replay vector: the typed fields plus the whole JSON object (kept for `--json`).
#[derive(Clone, Debug)]
pub struct Vector {
    /// Where it came from.
    pub path: PathBuf,
    /// The fields replay uses.
    pub data: VectorData,
    /// The whole object.
    pub raw: Map<String, Value>,
}

impl Vector {
    /// Reads and checks a vector file.
    ///
    /// # Errors
    /// [`ReplayError`] naming the file and field when it cannot be read, is not valid JSON,
    /// misses a field or has inconsistent lengths.
    pub fn load(path: &Path) -> Result<Self, ReplayError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks a vector from JSON text; `path` is only used in messages.
    ///
    /// # Errors
    /// As [`Vector::load`].
    ///
    /// # Examples
    /// ```
    /// use rmsprop_cli::replay::Vector;
    /// let err = Vector::parse("{\"schema_version\": 1}", "v.json".as_ref()).unwrap_err();
    /// assert!(err.to_string().starts_with("v.json: "), "{err}");
    /// ```
    pub fn parse(text: &str, path: &Path) -> Result<Self, ReplayError> {
        let malformed = |field: String, message: String| ReplayError::Malformed {
            path: path.to_path_buf(),
            field,
            message,
        };
        let raw: Value =
            serde_json::from_str(text).map_err(|e| malformed(".".into(), e.to_string()))?;
        let Value::Object(raw) = raw else {
            return Err(malformed(".".into(), "expected a JSON object".into()));
        };
        let data: VectorData = serde_path_to_error::deserialize(Value::Object(raw.clone()))
            .map_err(|e| {
                let field = e.path().to_string();
                malformed(field, e.into_inner().to_string())
            })?;
        if data.schema_version != 1 {
            return Err(ReplayError::Unsupported {
                path: path.to_path_buf(),
                field: "schema_version".into(),
                message: format!(
                    "version {}; this build reads version 1",
                    data.schema_version
                ),
            });
        }
        let n = data.initial_params.len();
        for (field, rows) in [
            ("gradients", &data.gradients),
            ("trajectory", &data.trajectory),
        ] {
            if rows.len() != data.steps {
                return Err(malformed(
                    field.into(),
                    format!("{} rows but steps = {}", rows.len(), data.steps),
                ));
            }
            if let Some((k, row)) = rows.iter().enumerate().find(|(_, r)| r.len() != n) {
                return Err(malformed(
                    format!("{field}[{k}]"),
                    format!("{} values but initial_params has {n}", row.len()),
                ));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            data,
            raw,
        })
    }

    /// The file name, for messages.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    fn unsupported(&self, field: &str, message: String) -> ReplayError {
        ReplayError::Unsupported {
            path: self.path.clone(),
            field: field.into(),
            message,
        }
    }

    /// The preset (from `framework`, unless `preset` overrides it) and the configuration that
    /// reproduces this vector: the preset with every `normalized` hyperparameter applied.
    ///
    /// # Errors
    /// [`ReplayError::Unsupported`] for an unknown framework (without `preset`), an unknown
    /// style name, or hyperparameters the library rejects.
    pub fn config(&self, preset: Option<Preset>) -> Result<(Preset, RmsPropConfig), ReplayError> {
        let preset = match preset.or_else(|| Preset::for_framework(&self.data.framework)) {
            Some(p) => p,
            None => {
                return Err(self.unsupported(
                    "framework",
                    format!(
                        "no preset for framework `{}`: pass --preset (pytorch, keras, tf1, optax, timm-tf, graves, lesson)",
                        self.data.framework
                    ),
                ))
            }
        };
        let n = &self.data.normalized;
        let mut c = preset.config();
        c.lr = n.lr;
        c.rho = n.decay;
        c.eps = n.eps;
        c.eps_placement = if n.eps_in_sqrt {
            EpsPlacement::Inside
        } else {
            EpsPlacement::Outside
        };
        c.centered = n.centered;
        c.momentum = n.momentum;
        c.nesterov = n.nesterov;
        c.weight_decay = n.weight_decay;
        c.maximize = n.maximize;
        c.initial_square_avg = n.initial_scale;
        c.bias_correction = n.bias_correction;
        c.momentum_style = match n.momentum_style.as_str() {
            "torch" => MomentumStyle::LrOutside,
            "keras" | "optax" => MomentumStyle::LrInside,
            other => {
                return Err(self.unsupported(
                    "normalized.momentum_style",
                    format!("`{other}`; expected torch, keras or optax"),
                ))
            }
        };
        if let Some(style) = &n.weight_decay_style {
            c.weight_decay_style = match style.as_str() {
                "coupled" => WeightDecayStyle::Coupled,
                "decoupled" => WeightDecayStyle::Decoupled,
                other => {
                    return Err(self.unsupported(
                        "normalized.weight_decay_style",
                        format!("`{other}`; expected coupled or decoupled"),
                    ))
                }
            };
        }
        if let Some(p) = &n.hyperparameter_precision {
            c.hyperparameter_precision = match p.as_str() {
                "native" => HyperparameterPrecision::Native,
                "float32_lr" => HyperparameterPrecision::Float32Lr,
                "float32" => HyperparameterPrecision::Float32,
                other => {
                    return Err(self.unsupported(
                        "normalized.hyperparameter_precision",
                        format!("`{other}`; expected native, float32_lr or float32"),
                    ))
                }
            };
        }
        if n.lr_as_used_in_float64.is_some()
            && c.hyperparameter_precision == HyperparameterPrecision::Native
        {
            c.hyperparameter_precision = HyperparameterPrecision::Float32Lr;
        }
        c.validate()
            .map_err(|e| self.unsupported("normalized", e.to_string()))?;
        Ok((preset, c))
    }

    /// Replays the vector with the given preset (default: the one matching `framework`).
    ///
    /// # Errors
    /// As [`Vector::config`], and [`ReplayError::Unsupported`] for a dtype other than
    /// `float32` / `float64`.
    pub fn replay(&self, preset: Option<Preset>) -> Result<Report, ReplayError> {
        let (preset, config) = self.config(preset)?;
        match self.data.dtype.as_str() {
            "float32" => Ok(self.replay_as::<f32>(preset, config)),
            "float64" => Ok(self.replay_as::<f64>(preset, config)),
            other => {
                Err(self.unsupported("dtype", format!("`{other}`; expected float32 or float64")))
            }
        }
    }

    fn replay_as<T: Float>(&self, preset: Preset, config: RmsPropConfig) -> Report {
        let d = &self.data;
        let lr = config.lr;
        let mut opt = RmsProp::<T>::new(config.clone()).expect("validated in config()");
        let to_t = |row: &Vec<f64>| row.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
        let mut params = to_t(&d.initial_params);
        let mut trajectory = Vec::with_capacity(d.steps);
        let mut dev = Deviation::default();
        for (k, (grad, recorded)) in d.gradients.iter().zip(&d.trajectory).enumerate() {
            let grad = to_t(grad);
            opt.step_single(&mut params, &grad)
                .expect("lengths checked when the vector was parsed");
            for (i, (&ours, &theirs)) in params.iter().zip(recorded).enumerate() {
                dev.add(ours.to_f64(), theirs, k, i);
            }
            trajectory.push(params.clone());
        }

        let sign = if d.normalized.momentum_style == "optax" {
            -1.0
        } else {
            1.0
        };
        let ours = opt.state().tensors.first().cloned().unwrap_or_default();
        let widen = |v: &[T], s: f64| v.iter().map(|x| s * x.to_f64()).collect::<Vec<f64>>();
        let mut final_state = Map::new();
        final_state.insert("step".into(), Value::from(opt.steps()));
        let mut state = Vec::new();
        for (name, ours, theirs, s) in [
            (
                "square_avg",
                &ours.square_avg,
                &d.final_state.square_avg,
                1.0,
            ),
            ("grad_avg", &ours.grad_avg, &d.final_state.grad_avg, 1.0),
            (
                "momentum_buffer",
                &ours.momentum_buffer,
                &d.final_state.momentum_buffer,
                sign,
            ),
        ] {
            if !ours.is_empty() {
                final_state.insert(name.into(), numbers(ours, s));
            }
            if let Some(theirs) = theirs {
                let mut sd = Deviation::default();
                if ours.len() == theirs.len() {
                    for (i, (o, t)) in widen(ours, s).iter().zip(theirs).enumerate() {
                        sd.add(*o, *t, 0, i);
                    }
                    state.push(StateDeviation {
                        name,
                        kept: true,
                        deviation: sd,
                    });
                } else {
                    state.push(StateDeviation {
                        name,
                        kept: false,
                        deviation: sd,
                    });
                }
            }
        }

        Report {
            name: self.name(),
            framework: d.framework.clone(),
            framework_version: d.version.clone(),
            config_name: d.config.clone(),
            objective: d.objective.clone(),
            dtype: d.dtype.clone(),
            steps: d.steps,
            params: d.initial_params.len(),
            preset,
            config,
            lr,
            trajectory: dev,
            state,
            tolerance_lr: tolerance_lr(&d.dtype, d.normalized.centered),
            our_trajectory: trajectory.iter().map(|row| numbers(row, 1.0)).collect(),
            our_final_state: final_state,
        }
    }
}

/// JSON numbers for values of `T`, printed with the shortest decimal of `T` (`null` if not finite).
fn numbers<T: Float>(xs: &[T], sign: f64) -> Value {
    Value::Array(
        xs.iter()
            .map(|&x| {
                let x = if sign < 0.0 { -x } else { x };
                // The shortest decimal that round-trips to T, read back as the f64 that prints the same.
                let shortest: f64 = x.to_string().parse().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(shortest).map_or(Value::Null, Value::Number)
            })
            .collect(),
    )
}

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
    fn add(&mut self, ours: f64, theirs: f64, step: usize, index: usize) {
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
    /// `square_avg`, `grad_avg` or `momentum_buffer`.
    pub name: &'static str,
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
    /// The preset used.
    pub preset: Preset,
    /// The full configuration used.
    pub config: RmsPropConfig,
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
        out.insert(
            "trajectory".into(),
            Value::Array(self.our_trajectory.clone()),
        );
        out.insert(
            "final_state".into(),
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
                (s.name.to_string(), v)
            })
            .collect();
        out.insert(
            "replay".into(),
            serde_json::json!({
                "against": {"framework": self.framework, "version": self.framework_version, "file": self.name},
                "preset": self.preset.to_string(),
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
            "preset:    {} with the vector's hyperparameters",
            self.preset
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
            if self.dtype == "float32" && self.config.centered {
                " centered"
            } else {
                ""
            }
        )
    }
}
