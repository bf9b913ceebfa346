//! The records of `reference/SCHEMA.md` (hyperparameters in neutral names, the recorded data,
//! generated vectors) and what can go wrong reading them.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

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
