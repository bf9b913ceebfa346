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
    Adadelta, AdadeltaConfig, Adagrad, AdagradConfig, Adam, AdamConfig, EpsPlacement, Execution,
    FamilyOrder, Float, HyperparameterPrecision, Lion, LionConfig, MomentumStyle, NonFinitePolicy,
    Optimizer, RmsProp, RmsPropConfig, Sgd, SgdConfig, WeightDecayStyle,
};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A framework preset a vector is replayed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
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

/// RMSProp hyperparameters in neutral names (SCHEMA.md's `normalized`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalized {
    /// `"rmsprop"` or absent.
    #[serde(default)]
    pub algorithm: Option<String>,
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

/// SGD hyperparameters (`algorithm: "sgd"`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdNormalized {
    /// `"sgd"`.
    pub algorithm: String,
    /// Learning rate.
    pub lr: f64,
    /// Momentum.
    pub momentum: f64,
    /// Dampening.
    pub dampening: f64,
    /// Nesterov.
    pub nesterov: bool,
    /// Coupled weight decay.
    pub weight_decay: f64,
    /// Maximize.
    pub maximize: bool,
}

/// Adagrad hyperparameters (`algorithm: "adagrad"`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdagradNormalized {
    /// `"adagrad"`.
    pub algorithm: String,
    /// Learning rate.
    pub lr: f64,
    /// Learning-rate decay.
    pub lr_decay: f64,
    /// Coupled weight decay.
    pub weight_decay: f64,
    /// Initial sum of squares.
    pub initial_accumulator_value: f64,
    /// Epsilon.
    pub eps: f64,
    /// Maximize.
    pub maximize: bool,
}

/// Adadelta hyperparameters (`algorithm: "adadelta"`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdadeltaNormalized {
    /// `"adadelta"`.
    pub algorithm: String,
    /// Learning rate.
    pub lr: f64,
    /// Decay of both running averages.
    pub rho: f64,
    /// Epsilon inside both roots.
    pub eps: f64,
    /// Coupled weight decay.
    pub weight_decay: f64,
    /// Maximize.
    pub maximize: bool,
}

/// Lion hyperparameters (`algorithm: "lion"`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LionNormalized {
    /// `"lion"`.
    pub algorithm: String,
    /// Learning rate.
    pub lr: f64,
    /// Interpolation of the direction.
    pub beta1: f64,
    /// Decay of the momentum.
    pub beta2: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

/// Adam / AdamW hyperparameters (`algorithm: "adam"` or `"adamw"`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamNormalized {
    /// `"adam"` or `"adamw"`.
    pub algorithm: String,
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Epsilon outside the root.
    pub eps: f64,
    /// Epsilon inside the root.
    pub eps_root: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// `coupled` or `decoupled`.
    pub weight_decay_style: String,
    /// AMSGrad.
    pub amsgrad: bool,
    /// Maximize.
    pub maximize: bool,
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
    /// Neutral hyperparameters; `algorithm` (default `rmsprop`) says which optimizer.
    pub normalized: Value,
    /// `float32` or `float64`.
    pub dtype: String,
    /// Objective name.
    #[serde(default)]
    pub objective: String,
    /// Number of steps.
    pub steps: usize,
    /// Initial parameters (empty for a generated vector).
    #[serde(default)]
    pub initial_params: Vec<f64>,
    /// `[steps][n]` raw gradients (empty for a generated vector).
    #[serde(default)]
    pub gradients: Vec<Vec<f64>>,
    /// `[steps][n]` parameters after each step (empty for a generated vector).
    #[serde(default)]
    pub trajectory: Vec<Vec<f64>>,
    /// A long vector's gradient and initial-parameter generator, instead of stored values.
    #[serde(default)]
    pub generator: Option<Generator>,
    /// `[n]`: a generated vector's length.
    #[serde(default)]
    pub shape: Vec<usize>,
    /// The coordinates a generated vector records.
    #[serde(default)]
    pub sample: Vec<usize>,
    /// The steps (1-based) after which a generated vector records the sampled parameters.
    #[serde(default)]
    pub sample_steps: Vec<usize>,
    /// `[sample_steps][sample]`: the parameters at the sampled coordinates.
    #[serde(default)]
    pub trajectory_sample: Vec<Vec<f64>>,
    /// The final state at the sampled coordinates, buffers by name.
    #[serde(default)]
    pub final_state_sample: Map<String, Value>,
    /// The learning rate used at each step, when it changes (a schedule).
    #[serde(default)]
    pub lrs: Option<Vec<f64>>,
    /// Final state: buffers by name (`square_avg`, `exp_avg`, ...) and `step`.
    #[serde(default)]
    pub final_state: Map<String, Value>,
}

/// The gradients and initial parameters of a long vector, generated instead of stored
/// (`reference/SCHEMA.md`, "Long vectors"): bit-identical in numpy and here.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Generator {
    /// `"splitmix64"`.
    pub kind: String,
    /// Counter base of the gradients.
    pub grad_seed: u64,
    /// Counter base of the initial parameters.
    pub param_seed: u64,
    /// Gradient magnitude by coordinate: `scales[i % scales.len()]`.
    pub scales: Vec<f64>,
}

/// The largest generated vector this build replays (elements, and elements times steps).
pub const MAX_GENERATED: (usize, usize) = (10_000_000, 200_000_000);

impl Generator {
    /// splitmix64's output for counter `x`.
    ///
    /// # Examples
    /// ```
    /// // The first output of splitmix64 seeded with 0 (Vigna's reference sequence).
    /// assert_eq!(rmsprop_cli::replay::Generator::splitmix64(0), 0xE220A8397B1DCDAF);
    /// ```
    pub fn splitmix64(x: u64) -> u64 {
        let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `[-1, 1)` from counter `x`, exactly: `((splitmix64(x) >> 11) - 2^52) * 2^-52`.
    ///
    /// # Examples
    /// ```
    /// let u = rmsprop_cli::replay::Generator::unit(12345);
    /// assert!((-1.0..1.0).contains(&u));
    /// ```
    pub fn unit(x: u64) -> f64 {
        let m = (Self::splitmix64(x) >> 11) as i64 - (1i64 << 52);
        m as f64 * 2f64.powi(-52)
    }

    /// The gradient of coordinate `i` of `n` at step `k` (0-based), in f64.
    pub fn gradient(&self, k: usize, i: usize, n: usize) -> f64 {
        let counter = self
            .grad_seed
            .wrapping_add((k as u64).wrapping_mul(n as u64))
            .wrapping_add(i as u64);
        Self::unit(counter) * self.scales[i % self.scales.len()]
    }

    /// The initial value of coordinate `i`, in f64.
    pub fn initial(&self, i: usize) -> f64 {
        Self::unit(self.param_seed.wrapping_add(i as u64))
    }
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

/// The optimizer a vector is replayed with.
#[derive(Clone, Debug, PartialEq)]
pub enum Setup {
    /// RMSProp with a framework preset and the vector's hyperparameters.
    RmsProp {
        /// The preset.
        preset: Preset,
        /// The configuration.
        config: RmsPropConfig,
    },
    /// SGD.
    Sgd(SgdConfig),
    /// Adagrad.
    Adagrad(AdagradConfig),
    /// Adam / AdamW.
    Adam(AdamConfig),
    /// Adadelta.
    Adadelta(AdadeltaConfig),
    /// Lion.
    Lion(LionConfig),
}

impl Setup {
    /// A new optimizer for element type `T`.
    pub fn build<T: Float>(&self) -> rmsprop::Result<Box<dyn Optimizer<T>>> {
        Ok(match self {
            Setup::RmsProp { config, .. } => Box::new(RmsProp::new(config.clone())?),
            Setup::Sgd(c) => Box::new(Sgd::new(c.clone())?),
            Setup::Adagrad(c) => Box::new(Adagrad::new(c.clone())?),
            Setup::Adam(c) => Box::new(Adam::new(c.clone())?),
            Setup::Adadelta(c) => Box::new(Adadelta::new(c.clone())?),
            Setup::Lion(c) => Box::new(Lion::new(c.clone())?),
        })
    }

    /// The initial learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Setup::RmsProp { config, .. } => config.lr,
            Setup::Sgd(c) => c.lr,
            Setup::Adagrad(c) => c.lr,
            Setup::Adam(c) => c.lr,
            Setup::Adadelta(c) => c.lr,
            Setup::Lion(c) => c.lr,
        }
    }

    /// Whether this is centered RMSProp (which gets the looser float32 tolerance).
    pub fn centered(&self) -> bool {
        matches!(self, Setup::RmsProp { config, .. } if config.centered)
    }

    /// A short description: the RMSProp preset, or the family member and its operation order.
    pub fn describe(&self) -> String {
        match self {
            Setup::RmsProp { preset, .. } => format!("rmsprop, preset {preset}"),
            Setup::Sgd(_) => "sgd".into(),
            Setup::Adagrad(c) => format!("adagrad, {} order", c.order),
            Setup::Adam(c) => format!("adam, {} order", c.order),
            Setup::Adadelta(c) => format!("adadelta, {} order", c.order),
            Setup::Lion(_) => "lion, optax order".into(),
        }
    }
}

impl Vector {
    /// The checks a generated vector's fields must pass: `(field, problem)` on the first that fails.
    fn check_generated(d: &VectorData, g: &Generator) -> Result<(), (String, String)> {
        let fail = |f: &str, m: String| Err((f.to_string(), m));
        if g.kind != "splitmix64" {
            return fail(
                "generator.kind",
                format!("`{}`; expected splitmix64", g.kind),
            );
        }
        if g.scales.is_empty() || g.scales.iter().any(|s| !s.is_finite()) {
            return fail(
                "generator.scales",
                "expected at least one finite number".into(),
            );
        }
        let n = match d.shape.as_slice() {
            [n] if (1..=MAX_GENERATED.0).contains(n) => *n,
            _ => {
                return fail(
                    "shape",
                    format!("expected [n] with 1 <= n <= {}", MAX_GENERATED.0),
                )
            }
        };
        if d.steps == 0 || n.saturating_mul(d.steps) > MAX_GENERATED.1 {
            return fail(
                "steps",
                format!("expected 1 to {} steps of {n}", MAX_GENERATED.1 / n),
            );
        }
        for (field, stored) in [
            ("initial_params", d.initial_params.len()),
            ("gradients", d.gradients.len()),
            ("trajectory", d.trajectory.len()),
        ] {
            if stored != 0 {
                return fail(field, "a generated vector stores no values here".into());
            }
        }
        if d.lrs.is_some() {
            return fail("lrs", "not supported with a generator".into());
        }
        if d.sample.is_empty()
            || d.sample.windows(2).any(|w| w[0] >= w[1])
            || d.sample.last().is_some_and(|&i| i >= n)
        {
            return fail(
                "sample",
                format!("expected increasing coordinates below {n}"),
            );
        }
        if d.sample_steps.is_empty()
            || d.sample_steps.windows(2).any(|w| w[0] >= w[1])
            || d.sample_steps[0] == 0
            || d.sample_steps.last().is_some_and(|&s| s > d.steps)
        {
            return fail(
                "sample_steps",
                format!("expected increasing steps from 1 to {}", d.steps),
            );
        }
        if d.trajectory_sample.len() != d.sample_steps.len() {
            return fail(
                "trajectory_sample",
                format!(
                    "{} rows but {} sample_steps",
                    d.trajectory_sample.len(),
                    d.sample_steps.len()
                ),
            );
        }
        if let Some((k, row)) = d
            .trajectory_sample
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() != d.sample.len())
        {
            return fail(
                &format!("trajectory_sample[{k}]"),
                format!(
                    "{} values but {} sampled coordinates",
                    row.len(),
                    d.sample.len()
                ),
            );
        }
        Ok(())
    }

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
        if let Some(generator) = &data.generator {
            Self::check_generated(&data, generator).map_err(|(f, m)| malformed(f, m))?;
        }
        let n = data.initial_params.len();
        for (field, rows) in [
            ("gradients", &data.gradients),
            ("trajectory", &data.trajectory),
        ] {
            if data.generator.is_some() {
                continue;
            }
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
        if let Some(lrs) = &data.lrs {
            if lrs.len() != data.steps {
                return Err(malformed(
                    "lrs".into(),
                    format!("{} values but steps = {}", lrs.len(), data.steps),
                ));
            }
        }
        let vector = Self {
            path: path.to_path_buf(),
            data,
            raw,
        };
        vector.normalized_algorithm()?;
        Ok(vector)
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

    fn normalized_algorithm(&self) -> Result<String, ReplayError> {
        match self.data.normalized.get("algorithm") {
            None | Some(Value::Null) => Ok("rmsprop".into()),
            Some(Value::String(a)) => match a.as_str() {
                "rmsprop" | "sgd" | "adagrad" | "adam" | "adamw" | "adadelta" | "lion" => {
                    Ok(a.clone())
                }
                other => Err(self.unsupported(
                    "normalized.algorithm",
                    format!(
                        "`{other}`; expected rmsprop, sgd, adagrad, adam, adamw, adadelta or lion"
                    ),
                )),
            },
            Some(other) => Err(ReplayError::Malformed {
                path: self.path.clone(),
                field: "normalized.algorithm".into(),
                message: format!("expected a string, found {other}"),
            }),
        }
    }

    fn normalized_as<N: serde::de::DeserializeOwned>(&self) -> Result<N, ReplayError> {
        serde_path_to_error::deserialize(self.data.normalized.clone()).map_err(|e| {
            let inner = e.path().to_string();
            ReplayError::Malformed {
                path: self.path.clone(),
                field: if inner == "." {
                    "normalized".into()
                } else {
                    format!("normalized.{inner}")
                },
                message: e.into_inner().to_string(),
            }
        })
    }

    fn family_order(&self) -> Result<FamilyOrder, ReplayError> {
        match self.data.framework.as_str() {
            "torch" | "pytorch" => Ok(FamilyOrder::Torch),
            "optax" => Ok(FamilyOrder::Optax),
            other => Err(self.unsupported(
                "framework",
                format!("`{other}` for this algorithm; expected torch or optax"),
            )),
        }
    }

    /// The optimizer that reproduces this vector. For RMSProp, the preset (from `framework`,
    /// unless `preset` overrides it) with every `normalized` hyperparameter applied; for the
    /// family, the algorithm in the framework's operation order.
    ///
    /// # Errors
    /// [`ReplayError::Unsupported`] for an unknown framework or algorithm, an unknown style
    /// name, hyperparameters the library rejects, or `preset` on a non-RMSProp vector.
    pub fn setup(&self, preset: Option<Preset>) -> Result<Setup, ReplayError> {
        let algorithm = self.normalized_algorithm()?;
        if algorithm != "rmsprop" && preset.is_some() {
            return Err(self.unsupported(
                "normalized.algorithm",
                format!("--preset applies to RMSProp vectors; this one is {algorithm}"),
            ));
        }
        let setup = match algorithm.as_str() {
            "rmsprop" => {
                let (preset, config) = self.rmsprop_config(preset)?;
                Setup::RmsProp { preset, config }
            }
            "sgd" => {
                let n: SgdNormalized = self.normalized_as()?;
                Setup::Sgd(SgdConfig {
                    lr: n.lr,
                    momentum: n.momentum,
                    dampening: n.dampening,
                    nesterov: n.nesterov,
                    weight_decay: n.weight_decay,
                    maximize: n.maximize,
                })
            }
            "adagrad" => {
                let n: AdagradNormalized = self.normalized_as()?;
                Setup::Adagrad(AdagradConfig {
                    lr: n.lr,
                    lr_decay: n.lr_decay,
                    weight_decay: n.weight_decay,
                    initial_accumulator_value: n.initial_accumulator_value,
                    eps: n.eps,
                    maximize: n.maximize,
                    order: self.family_order()?,
                })
            }
            "adadelta" => {
                let n: AdadeltaNormalized = self.normalized_as()?;
                Setup::Adadelta(AdadeltaConfig {
                    lr: n.lr,
                    rho: n.rho,
                    eps: n.eps,
                    weight_decay: n.weight_decay,
                    maximize: n.maximize,
                    order: self.family_order()?,
                })
            }
            "lion" => {
                let n: LionNormalized = self.normalized_as()?;
                if self.data.framework != "optax" {
                    return Err(self.unsupported(
                        "framework",
                        format!("`{}` for lion; expected optax", self.data.framework),
                    ));
                }
                Setup::Lion(LionConfig {
                    lr: n.lr,
                    beta1: n.beta1,
                    beta2: n.beta2,
                    weight_decay: n.weight_decay,
                })
            }
            _ => {
                let n: AdamNormalized = self.normalized_as()?;
                let style = self.weight_decay_style(&n.weight_decay_style)?;
                Setup::Adam(AdamConfig {
                    lr: n.lr,
                    beta1: n.beta1,
                    beta2: n.beta2,
                    eps: n.eps,
                    eps_root: n.eps_root,
                    weight_decay: n.weight_decay,
                    weight_decay_style: style,
                    amsgrad: n.amsgrad,
                    maximize: n.maximize,
                    order: self.family_order()?,
                })
            }
        };
        setup
            .build::<f64>()
            .map_err(|e| self.unsupported("normalized", e.to_string()))?;
        Ok(setup)
    }

    fn weight_decay_style(&self, style: &str) -> Result<WeightDecayStyle, ReplayError> {
        match style {
            "coupled" => Ok(WeightDecayStyle::Coupled),
            "decoupled" => Ok(WeightDecayStyle::Decoupled),
            other => Err(self.unsupported(
                "normalized.weight_decay_style",
                format!("`{other}`; expected coupled or decoupled"),
            )),
        }
    }

    fn rmsprop_config(
        &self,
        preset: Option<Preset>,
    ) -> Result<(Preset, RmsPropConfig), ReplayError> {
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
        let n: Normalized = self.normalized_as()?;
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
            c.weight_decay_style = self.weight_decay_style(style)?;
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

    /// Replays the vector (RMSProp vectors with `preset`, default: the one matching `framework`).
    ///
    /// # Errors
    /// As [`Vector::setup`], and [`ReplayError::Unsupported`] for a dtype other than
    /// `float32` / `float64`.
    pub fn replay(&self, preset: Option<Preset>) -> Result<Report, ReplayError> {
        let setup = self.setup(preset)?;
        match self.data.dtype.as_str() {
            "float32" => self.replay_as::<f32>(setup),
            "float64" => self.replay_as::<f64>(setup),
            other => {
                Err(self.unsupported("dtype", format!("`{other}`; expected float32 or float64")))
            }
        }
    }

    fn replay_as<T: Float>(&self, setup: Setup) -> Result<Report, ReplayError> {
        let d = &self.data;
        let lr = setup.lr();
        let mut opt = setup
            .build::<T>()
            .map_err(|e| self.unsupported("normalized", e.to_string()))?;
        if let Some(generator) = &d.generator {
            return self.replay_generated(setup, opt, generator);
        }
        // Replay what the framework did: non-finite gradients propagate, as in PyTorch.
        opt.set_execution(Execution::sequential().with_non_finite(NonFinitePolicy::Propagate));
        let to_t = |row: &Vec<f64>| row.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
        let mut params = to_t(&d.initial_params);
        let mut trajectory = Vec::with_capacity(d.steps);
        let mut dev = Deviation::default();
        for (k, (grad, recorded)) in d.gradients.iter().zip(&d.trajectory).enumerate() {
            if let Some(lrs) = &d.lrs {
                opt.set_learning_rate(lrs[k])
                    .map_err(|e| self.unsupported(&format!("lrs[{k}]"), e.to_string()))?;
            }
            let grad = to_t(grad);
            opt.step_single(&mut params, &grad)
                .map_err(|e| self.unsupported(&format!("gradients[{k}]"), e.to_string()))?;
            // The recorded decimal, rounded to the vector's dtype first (for float32 files it is
            // the shortest f32 decimal: parsed as f64 it is not yet the framework's f32 value).
            for (i, (&ours, &theirs)) in params.iter().zip(recorded).enumerate() {
                dev.add(ours.to_f64(), T::from_f64(theirs).to_f64(), k, i);
            }
            trajectory.push(params.clone());
        }

        // optax's trace holds the negative of our (lr-inside) momentum buffer.
        let optax_rmsprop = matches!(&setup, Setup::RmsProp { .. }) && d.framework == "optax";
        let mut final_state = Map::new();
        final_state.insert("step".into(), Value::from(opt.steps()));
        let buffers = opt.state_buffers(0);
        for (name, values) in &buffers {
            let sign = if optax_rmsprop && *name == "momentum_buffer" {
                -1.0
            } else {
                1.0
            };
            final_state.insert((*name).into(), numbers(values, sign));
        }
        let state = compare_state::<T>(&d.final_state, &final_state);

        Ok(Report {
            name: self.name(),
            framework: d.framework.clone(),
            framework_version: d.version.clone(),
            config_name: d.config.clone(),
            objective: d.objective.clone(),
            dtype: d.dtype.clone(),
            steps: d.steps,
            params: d.initial_params.len(),
            setup: setup.describe(),
            centered: setup.centered(),
            lr,
            trajectory: dev,
            state,
            tolerance_lr: tolerance_lr(&d.dtype, setup.centered()),
            our_trajectory: trajectory.iter().map(|row| numbers(row, 1.0)).collect(),
            our_final_state: final_state,
            generated: false,
        })
    }

    /// Replays a generated (long) vector: gradients from its generator, the default kernels on
    /// two threads split into chunks of 4,096 (so the vectorized and threaded code runs), the
    /// parameters compared at the sampled coordinates after each sampled step, and the final
    /// state at the sampled coordinates.
    fn replay_generated<T: Float>(
        &self,
        setup: Setup,
        mut opt: Box<dyn Optimizer<T>>,
        g: &Generator,
    ) -> Result<Report, ReplayError> {
        let d = &self.data;
        let n = d.shape[0];
        let threaded = Execution::threads(2)
            .map(|e| e.with_split(4096, 4096))
            .unwrap_or_else(|_| Execution::sequential());
        opt.set_execution(threaded.with_non_finite(NonFinitePolicy::Propagate));
        let mut params: Vec<T> = (0..n).map(|i| T::from_f64(g.initial(i))).collect();
        let mut grad = vec![T::ZERO; n];
        let mut dev = Deviation::default();
        let mut trajectory = Vec::with_capacity(d.sample_steps.len());
        let mut next = 0;
        for k in 0..d.steps {
            for (i, x) in grad.iter_mut().enumerate() {
                *x = T::from_f64(g.gradient(k, i, n));
            }
            opt.step_single(&mut params, &grad)
                .map_err(|e| self.unsupported(&format!("step {}", k + 1), e.to_string()))?;
            if d.sample_steps.get(next) == Some(&(k + 1)) {
                let ours: Vec<T> = d.sample.iter().map(|&i| params[i]).collect();
                for (j, (&o, &t)) in ours.iter().zip(&d.trajectory_sample[next]).enumerate() {
                    dev.add(o.to_f64(), T::from_f64(t).to_f64(), k, d.sample[j]);
                }
                trajectory.push(numbers(&ours, 1.0));
                next += 1;
            }
        }
        let optax_rmsprop = matches!(&setup, Setup::RmsProp { .. }) && d.framework == "optax";
        let mut final_state = Map::new();
        final_state.insert("step".into(), Value::from(opt.steps()));
        for (name, values) in opt.state_buffers(0) {
            let sign = if optax_rmsprop && name == "momentum_buffer" {
                -1.0
            } else {
                1.0
            };
            let sampled: Vec<T> = d.sample.iter().map(|&i| values[i]).collect();
            final_state.insert(name.into(), numbers(&sampled, sign));
        }
        let state = compare_state::<T>(&d.final_state_sample, &final_state);
        Ok(Report {
            name: self.name(),
            framework: d.framework.clone(),
            framework_version: d.version.clone(),
            config_name: d.config.clone(),
            objective: d.objective.clone(),
            dtype: d.dtype.clone(),
            steps: d.steps,
            params: n,
            setup: setup.describe(),
            centered: setup.centered(),
            lr: setup.lr(),
            trajectory: dev,
            state,
            tolerance_lr: tolerance_lr(&d.dtype, setup.centered()),
            our_trajectory: trajectory,
            our_final_state: final_state,
            generated: true,
        })
    }
}

/// Each recorded final-state buffer against ours (both in the framework's convention), with
/// the recorded decimals rounded to `T` first.
fn compare_state<T: Float>(
    recorded: &Map<String, Value>,
    ours: &Map<String, Value>,
) -> Vec<StateDeviation> {
    let mut state = Vec::new();
    for (name, theirs) in recorded {
        let Some(theirs) = theirs.as_array() else {
            continue; // `step` and other scalars
        };
        let theirs: Vec<f64> = theirs.iter().filter_map(Value::as_f64).collect();
        let mut sd = Deviation::default();
        let kept = match ours.get(name).and_then(Value::as_array) {
            Some(ours) if ours.len() == theirs.len() => {
                for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
                    let t = T::from_f64(*t).to_f64();
                    sd.add(o.as_f64().unwrap_or(f64::NAN), t, 0, i);
                }
                true
            }
            _ => false,
        };
        state.push(StateDeviation {
            name: name.clone(),
            kept,
            deviation: sd,
        });
    }
    state
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
