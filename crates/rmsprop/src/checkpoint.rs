//! Checkpoints: an optimizer's configuration and state (and, if wanted, the parameters) in one
//! safetensors file with a verified metadata header, written atomically.
//!
//! Format (version 1): tensors `state.{tensor}.{buffer}` (and `param.{tensor}`), 1-D, in the
//! optimizer's dtype; `__metadata__` holds `format` (`rmsprop-checkpoint`), `format_version`,
//! `optimizer`, `variant`, `dtype`, `config` (JSON), `steps`, `skipped_steps`, `tensors` (JSON:
//! each tensor's length and step count) and `checksum` (CRC-32 of every tensor's bytes, in
//! name order). Loading checks every one of them and names what is wrong.
//!
//! [`write_atomic`] writes a temporary file in the same directory, flushes and `fsync`s it,
//! renames it over the target and `fsync`s the directory: a crash at any moment leaves the old
//! file or the new one, never a mix (`tests/checkpoint.rs` kills a writer with SIGKILL hundreds
//! of times to check it).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::Value;

use crate::{
    Adagrad, AdagradConfig, AdagradTensorState, Adam, AdamConfig, AdamTensorState, Float,
    Optimizer, RmsProp, RmsPropConfig, RmsPropState, RmsPropTensorState, Sgd, SgdConfig,
    SgdTensorState,
};

/// The format version this build writes (and the newest it reads).
pub const FORMAT_VERSION: u32 = 1;
const FORMAT: &str = "rmsprop-checkpoint";

/// Why a checkpoint cannot be written or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The bytes are not a safetensors file (truncated, or not a checkpoint at all).
    #[error("not a readable checkpoint: {0}")]
    Unreadable(String),
    /// A metadata field is missing or malformed.
    #[error("checkpoint metadata `{field}`: {problem}")]
    Metadata {
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// Written by a newer (or unknown) format version.
    #[error("checkpoint format version {found} is not supported (this build reads 1 to {FORMAT_VERSION})")]
    Version {
        /// The version in the file.
        found: String,
    },
    /// A different optimizer, variant or dtype than the one loading it.
    #[error("checkpoint is for {what} `{found}`, but the optimizer loading it is `{expected}`")]
    Mismatch {
        /// `optimizer`, `variant` or `dtype`.
        what: &'static str,
        /// In the file.
        found: String,
        /// In the running optimizer.
        expected: String,
    },
    /// A tensor is missing, extra, or has the wrong dtype or shape.
    #[error("checkpoint tensor `{name}`: {problem}")]
    Tensor {
        /// The tensor's name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The tensor bytes do not match the recorded checksum: the file is corrupted.
    #[error("checkpoint is corrupted: checksum {found:08x} of the tensor bytes, {expected:08x} recorded")]
    Checksum {
        /// Recorded.
        expected: u32,
        /// Computed.
        found: u32,
    },
    /// The restored configuration or state is rejected by the optimizer.
    #[error("checkpoint content rejected: {0}")]
    Invalid(#[from] crate::Error),
}

/// One tensor's state, in plain named buffers.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSnapshot<T> {
    /// The tensor's step count.
    pub step: u64,
    /// Number of parameters.
    pub len: usize,
    /// Named buffers (`square_avg`, `exp_avg`, ...), each `len` long.
    pub buffers: Vec<(String, Vec<T>)>,
}

/// An optimizer's whole state as plain data.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot<T> {
    /// Successful steps.
    pub steps: u64,
    /// Skipped steps.
    pub skipped_steps: u64,
    /// Per-tensor state.
    pub tensors: Vec<TensorSnapshot<T>>,
}

/// An optimizer that can be checkpointed: its kind, variant, configuration and state as data.
pub trait Checkpointable<T: Float>: Optimizer<T> {
    /// `rmsprop`, `sgd`, `adagrad` or `adam`.
    fn kind(&self) -> &'static str;
    /// The structural options (those that change the formula): a checkpoint only loads into the
    /// same variant.
    fn variant(&self) -> String;
    /// The configuration as JSON.
    fn config_json(&self) -> Value;
    /// Replaces the configuration from JSON (validated).
    fn set_config_json(&mut self, config: Value) -> Result<(), CheckpointError>;
    /// The state as plain data.
    fn snapshot(&self) -> Snapshot<T>;
    /// Replaces the state (validated against the configuration).
    fn restore(&mut self, snapshot: Snapshot<T>) -> Result<(), CheckpointError>;
}

/// A boxed optimizer (`Box<dyn Checkpointable<T>>`, chosen at run time) checkpoints as the
/// optimizer inside.
impl<T: Float, C: Checkpointable<T> + ?Sized> Checkpointable<T> for Box<C> {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
    fn variant(&self) -> String {
        (**self).variant()
    }
    fn config_json(&self) -> Value {
        (**self).config_json()
    }
    fn set_config_json(&mut self, config: Value) -> Result<(), CheckpointError> {
        (**self).set_config_json(config)
    }
    fn snapshot(&self) -> Snapshot<T> {
        (**self).snapshot()
    }
    fn restore(&mut self, snapshot: Snapshot<T>) -> Result<(), CheckpointError> {
        (**self).restore(snapshot)
    }
}

fn dtype_of<T: Float>() -> Dtype {
    if T::BYTES == 4 {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

fn le_bytes<T: Float>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * T::BYTES);
    for &v in values {
        v.extend_le_bytes(&mut out);
    }
    out
}

/// Serializes `optimizer` (and `params`, when given) to checkpoint bytes.
///
/// # Errors
/// [`CheckpointError::Unreadable`] if safetensors refuses the data (it does not for valid input).
///
/// # Examples
/// ```
/// use rmsprop::checkpoint::{from_bytes, to_bytes};
/// use rmsprop::{Optimizer, RmsProp, RmsPropConfig};
/// let mut opt = RmsProp::<f32>::new(RmsPropConfig::pytorch().with_momentum(0.9)).unwrap();
/// let mut w = vec![1.0f32, 2.0];
/// opt.step_single(&mut w, &[0.1, 0.2]).unwrap();
/// let bytes = to_bytes(&opt, Some(&[&w])).unwrap();
///
/// let mut fresh = RmsProp::<f32>::new(RmsPropConfig::pytorch().with_momentum(0.9)).unwrap();
/// let params = from_bytes(&mut fresh, &bytes).unwrap();
/// assert_eq!(params, Some(vec![w.clone()]));
/// assert_eq!(fresh.state(), opt.state());
/// ```
pub fn to_bytes<T: Float, O: Checkpointable<T> + ?Sized>(
    optimizer: &O,
    params: Option<&[&[T]]>,
) -> Result<Vec<u8>, CheckpointError> {
    let snap = optimizer.snapshot();
    let mut named: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, t) in snap.tensors.iter().enumerate() {
        for (name, values) in &t.buffers {
            named.push((format!("state.{i}.{name}"), le_bytes(values)));
        }
    }
    if let Some(params) = params {
        for (i, p) in params.iter().enumerate() {
            named.push((format!("param.{i}"), le_bytes(p)));
        }
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut crc = crc32fast::Hasher::new();
    for (_, bytes) in &named {
        crc.update(bytes);
    }
    let tensors: Vec<Value> = snap
        .tensors
        .iter()
        .map(|t| serde_json::json!({"len": t.len, "step": t.step}))
        .collect();
    let metadata: HashMap<String, String> = [
        ("format", FORMAT.to_string()),
        ("format_version", FORMAT_VERSION.to_string()),
        ("optimizer", optimizer.kind().to_string()),
        ("variant", optimizer.variant()),
        ("dtype", T::DTYPE.to_string()),
        ("config", optimizer.config_json().to_string()),
        ("steps", snap.steps.to_string()),
        ("skipped_steps", snap.skipped_steps.to_string()),
        ("tensors", Value::Array(tensors).to_string()),
        ("params", params.map_or(0, |p| p.len()).to_string()),
        ("checksum", format!("{:08x}", crc.finalize())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let views: Vec<(String, TensorView<'_>)> = named
        .iter()
        .map(|(name, bytes)| {
            let view = TensorView::new(dtype_of::<T>(), vec![bytes.len() / T::BYTES], bytes)
                .map_err(|e| CheckpointError::Unreadable(e.to_string()))?;
            Ok((name.clone(), view))
        })
        .collect::<Result<_, CheckpointError>>()?;
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| CheckpointError::Unreadable(e.to_string()))
}

fn field<'a>(
    meta: &'a HashMap<String, String>,
    name: &'static str,
) -> Result<&'a str, CheckpointError> {
    meta.get(name)
        .map(String::as_str)
        .ok_or(CheckpointError::Metadata {
            field: name,
            problem: "missing".into(),
        })
}

fn parse_u64(meta: &HashMap<String, String>, name: &'static str) -> Result<u64, CheckpointError> {
    field(meta, name)?
        .parse()
        .map_err(|_| CheckpointError::Metadata {
            field: name,
            problem: "not a whole number".into(),
        })
}

/// Checks checkpoint bytes and loads them into `optimizer` (configuration and state), returning
/// the parameters if the checkpoint holds them. On any error the optimizer is unchanged.
///
/// # Errors
/// A [`CheckpointError`] naming what is wrong: unreadable or truncated bytes, unknown format or
/// version, another optimizer, variant or dtype, missing/extra/misshapen tensors, a checksum
/// mismatch, or content the optimizer rejects.
pub fn from_bytes<T: Float, O: Checkpointable<T> + ?Sized>(
    optimizer: &mut O,
    bytes: &[u8],
) -> Result<Option<Vec<Vec<T>>>, CheckpointError> {
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::Unreadable(e.to_string()))?;
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| CheckpointError::Unreadable(e.to_string()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if field(&meta, "format")? != FORMAT {
        return Err(CheckpointError::Metadata {
            field: "format",
            problem: format!("`{}`, expected `{FORMAT}`", field(&meta, "format")?),
        });
    }
    let version = field(&meta, "format_version")?;
    match version.parse::<u32>() {
        Ok(v) if (1..=FORMAT_VERSION).contains(&v) => {}
        _ => {
            return Err(CheckpointError::Version {
                found: version.to_string(),
            })
        }
    }
    for (what, found, expected) in [
        (
            "optimizer",
            field(&meta, "optimizer")?.to_string(),
            optimizer.kind().to_string(),
        ),
        (
            "variant",
            field(&meta, "variant")?.to_string(),
            optimizer.variant(),
        ),
        (
            "dtype",
            field(&meta, "dtype")?.to_string(),
            T::DTYPE.to_string(),
        ),
    ] {
        if found != expected {
            return Err(CheckpointError::Mismatch {
                what,
                found,
                expected,
            });
        }
    }
    let config: Value =
        serde_json::from_str(field(&meta, "config")?).map_err(|e| CheckpointError::Metadata {
            field: "config",
            problem: e.to_string(),
        })?;
    let steps = parse_u64(&meta, "steps")?;
    let skipped_steps = parse_u64(&meta, "skipped_steps")?;
    let n_params = parse_u64(&meta, "params")? as usize;
    let tensors_meta: Vec<Value> =
        serde_json::from_str(field(&meta, "tensors")?).map_err(|e| CheckpointError::Metadata {
            field: "tensors",
            problem: e.to_string(),
        })?;
    let expected_crc = u32::from_str_radix(field(&meta, "checksum")?, 16).map_err(|_| {
        CheckpointError::Metadata {
            field: "checksum",
            problem: "not hexadecimal".into(),
        }
    })?;

    // Every tensor: right dtype, 1-D; checksum over all of them in name order.
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    let mut crc = crc32fast::Hasher::new();
    let mut values: HashMap<String, Vec<T>> = HashMap::new();
    for name in &names {
        let view = st.tensor(name).map_err(|e| CheckpointError::Tensor {
            name: name.clone(),
            problem: e.to_string(),
        })?;
        if view.dtype() != dtype_of::<T>() {
            return Err(CheckpointError::Tensor {
                name: name.clone(),
                problem: format!("dtype {:?}, expected {:?}", view.dtype(), dtype_of::<T>()),
            });
        }
        if view.shape().len() != 1 {
            return Err(CheckpointError::Tensor {
                name: name.clone(),
                problem: format!("shape {:?}, expected one dimension", view.shape()),
            });
        }
        crc.update(view.data());
        values.insert(
            name.clone(),
            view.data()
                .chunks_exact(T::BYTES)
                .map(T::from_le_slice)
                .collect(),
        );
    }
    let found_crc = crc.finalize();
    if found_crc != expected_crc {
        return Err(CheckpointError::Checksum {
            expected: expected_crc,
            found: found_crc,
        });
    }

    // Rebuild the snapshot from the metadata's tensor list and the buffer names the optimizer
    // uses; every stored tensor must be claimed.
    let mut claimed = 0;
    let mut tensors = Vec::with_capacity(tensors_meta.len());
    let buffer_names = buffer_names_by_prefix(&names);
    for (i, t) in tensors_meta.iter().enumerate() {
        let len = t["len"].as_u64().ok_or(CheckpointError::Metadata {
            field: "tensors",
            problem: format!("entry {i} has no `len`"),
        })? as usize;
        let step = t["step"].as_u64().ok_or(CheckpointError::Metadata {
            field: "tensors",
            problem: format!("entry {i} has no `step`"),
        })?;
        let mut buffers = Vec::new();
        for buffer in buffer_names.get(&i).cloned().unwrap_or_default() {
            let name = format!("state.{i}.{buffer}");
            let v = values.remove(&name).expect("listed above");
            if v.len() != len {
                return Err(CheckpointError::Tensor {
                    name,
                    problem: format!("{} elements, expected {len}", v.len()),
                });
            }
            claimed += 1;
            buffers.push((buffer, v));
        }
        tensors.push(TensorSnapshot { step, len, buffers });
    }
    let mut params = Vec::with_capacity(n_params);
    for i in 0..n_params {
        let name = format!("param.{i}");
        let v = values.remove(&name).ok_or(CheckpointError::Tensor {
            name: name.clone(),
            problem: "missing".into(),
        })?;
        claimed += 1;
        params.push(v);
    }
    if claimed != names.len() {
        let mut extra: Vec<&String> = values.keys().collect();
        extra.sort();
        return Err(CheckpointError::Tensor {
            name: extra.first().map(|s| s.to_string()).unwrap_or_default(),
            problem: "not part of this checkpoint's layout".into(),
        });
    }

    // Apply to a copy of the configuration first, so that a rejected file changes nothing.
    let previous_config = optimizer.config_json();
    optimizer.set_config_json(config)?;
    if let Err(e) = optimizer.restore(Snapshot {
        steps,
        skipped_steps,
        tensors,
    }) {
        optimizer
            .set_config_json(previous_config)
            .expect("the previous configuration was valid");
        return Err(e);
    }
    Ok((n_params > 0).then_some(params))
}

fn buffer_names_by_prefix(names: &[String]) -> HashMap<usize, Vec<String>> {
    let mut out: HashMap<usize, Vec<String>> = HashMap::new();
    for name in names {
        if let Some(rest) = name.strip_prefix("state.") {
            if let Some((i, buffer)) = rest.split_once('.') {
                if let Ok(i) = i.parse::<usize>() {
                    out.entry(i).or_default().push(buffer.to_string());
                }
            }
        }
    }
    out
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed and
/// `fsync`ed, renamed over `path`, then the directory `fsync`ed.
///
/// # Errors
/// [`CheckpointError::Io`] naming the file that could not be written; `path` is then untouched
/// (a leftover temporary file is removed when possible).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CheckpointError::Io { path, source }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io(path))?;
        #[cfg(unix)]
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Saves a checkpoint of `optimizer` (and `params`) to `path`, atomically.
///
/// # Errors
/// As [`to_bytes`] and [`write_atomic`].
///
/// # Examples
/// ```
/// use rmsprop::checkpoint::{load, save};
/// use rmsprop::{Adam, AdamConfig, Optimizer};
/// let dir = std::env::temp_dir().join(format!("rmsprop-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("adam.safetensors");
/// let mut opt = Adam::<f64>::new(AdamConfig::pytorch()).unwrap();
/// let mut w = vec![0.5; 3];
/// opt.step_single(&mut w, &[1.0, -1.0, 0.5]).unwrap();
/// save(&path, &opt, Some(&[&w])).unwrap();
/// let mut again = Adam::<f64>::new(AdamConfig::pytorch()).unwrap();
/// assert_eq!(load(&path, &mut again).unwrap(), Some(vec![w]));
/// assert_eq!(again.steps(), 1);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn save<T: Float, O: Checkpointable<T> + ?Sized>(
    path: &Path,
    optimizer: &O,
    params: Option<&[&[T]]>,
) -> Result<(), CheckpointError> {
    write_atomic(path, &to_bytes(optimizer, params)?)
}

/// Loads a checkpoint from `path` into `optimizer` (see [`from_bytes`]).
///
/// # Errors
/// [`CheckpointError::Io`] if the file cannot be read, else as [`from_bytes`].
pub fn load<T: Float, O: Checkpointable<T> + ?Sized>(
    path: &Path,
    optimizer: &mut O,
) -> Result<Option<Vec<Vec<T>>>, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    from_bytes(optimizer, &bytes)
}

fn take<T>(buffers: &mut Vec<(String, Vec<T>)>, name: &str) -> Vec<T> {
    match buffers.iter().position(|(n, _)| n == name) {
        Some(i) => buffers.swap_remove(i).1,
        None => Vec::new(),
    }
}

fn no_leftover<T>(i: usize, buffers: &[(String, Vec<T>)]) -> Result<(), CheckpointError> {
    match buffers.first() {
        None => Ok(()),
        Some((name, _)) => Err(CheckpointError::Tensor {
            name: format!("state.{i}.{name}"),
            problem: "not a buffer of this optimizer".into(),
        }),
    }
}

fn config_from<C: serde::de::DeserializeOwned>(config: Value) -> Result<C, CheckpointError> {
    serde_json::from_value(config).map_err(|e| CheckpointError::Metadata {
        field: "config",
        problem: e.to_string(),
    })
}

/// The whole snapshot of an optimizer, given each tensor's (step, length).
fn snapshot_all<T: Float, O: Optimizer<T> + ?Sized>(
    opt: &O,
    tensors: impl Iterator<Item = (u64, usize)>,
) -> Snapshot<T> {
    Snapshot {
        steps: opt.steps(),
        skipped_steps: opt.skipped_steps(),
        tensors: tensors
            .enumerate()
            .map(|(i, (step, len))| snapshot_of(opt.state_buffers(i), step, len))
            .collect(),
    }
}

/// A restored buffer must have its tensor's length.
fn expect_len<T>(i: usize, name: &str, buffer: &[T], len: usize) -> Result<(), CheckpointError> {
    if buffer.len() == len {
        Ok(())
    } else {
        Err(CheckpointError::Tensor {
            name: format!("state.{i}.{name}"),
            problem: format!("{} elements, expected {len}", buffer.len()),
        })
    }
}

/// `config_json` and `set_config_json` for an optimizer with `new`, `tensor_states`,
/// `set_tensor_states` and `set_execution_from`.
macro_rules! family_config_json {
    ($opt:ident, $config:ident) => {
        fn config_json(&self) -> Value {
            serde_json::to_value(self.config()).expect("serializable")
        }
        fn set_config_json(&mut self, config: Value) -> Result<(), CheckpointError> {
            let c: $config = config_from(config)?;
            let mut fresh = $opt::new(c)?;
            fresh.set_tensor_states(self.tensor_states().to_vec(), self.steps())?;
            fresh.set_execution_from(self);
            *self = fresh;
            Ok(())
        }
    };
}

fn snapshot_of<T: Float>(
    buffers: Vec<(&'static str, &[T])>,
    step: u64,
    len: usize,
) -> TensorSnapshot<T> {
    TensorSnapshot {
        step,
        len,
        buffers: buffers
            .into_iter()
            .filter(|(_, b)| b.len() == len)
            .map(|(n, b)| (n.to_string(), b.to_vec()))
            .collect(),
    }
}

impl<T: Float> Checkpointable<T> for RmsProp<T> {
    fn kind(&self) -> &'static str {
        "rmsprop"
    }
    fn variant(&self) -> String {
        let c = self.config();
        let mut v = vec![
            format!("{:?}", c.operation_order).to_lowercase() + "_order",
            format!("eps_{:?}", c.eps_placement).to_lowercase(),
        ];
        if c.centered {
            v.push(if c.clamp_variance {
                "centered_clamped".into()
            } else {
                "centered".into()
            });
        }
        if c.momentum > 0.0 {
            v.push(format!("momentum_{:?}", c.momentum_style).to_lowercase());
            if c.nesterov {
                v.push("nesterov".into());
            }
        }
        if c.weight_decay > 0.0 {
            v.push(format!("{:?}_weight_decay", c.weight_decay_style).to_lowercase());
        }
        if c.maximize {
            v.push("maximize".into());
        }
        if c.bias_correction {
            v.push("bias_correction".into());
        }
        v.join("+")
    }
    fn config_json(&self) -> Value {
        serde_json::to_value(self.config()).expect("serializable")
    }
    fn set_config_json(&mut self, config: Value) -> Result<(), CheckpointError> {
        let c: RmsPropConfig = config_from(config)?;
        let state = self.state().clone();
        let mut fresh = RmsProp::new(c)?;
        fresh.set_execution_from(self);
        fresh.set_state(state)?;
        *self = fresh;
        Ok(())
    }
    fn snapshot(&self) -> Snapshot<T> {
        snapshot_all(
            self,
            self.state()
                .tensors
                .iter()
                .map(|t| (t.step, t.square_avg.len())),
        )
    }
    fn restore(&mut self, s: Snapshot<T>) -> Result<(), CheckpointError> {
        let mut tensors = Vec::with_capacity(s.tensors.len());
        for (i, mut t) in s.tensors.into_iter().enumerate() {
            let square_avg = take(&mut t.buffers, "square_avg");
            let grad_avg = take(&mut t.buffers, "grad_avg");
            let momentum_buffer = take(&mut t.buffers, "momentum_buffer");
            no_leftover(i, &t.buffers)?;
            expect_len(i, "square_avg", &square_avg, t.len)?;
            tensors.push(RmsPropTensorState {
                step: t.step,
                square_avg,
                grad_avg,
                momentum_buffer,
            });
        }
        self.set_state(RmsPropState {
            steps: s.steps,
            tensors,
        })?;
        self.set_skipped_steps(s.skipped_steps);
        Ok(())
    }
}

impl<T: Float> Checkpointable<T> for Sgd<T> {
    fn kind(&self) -> &'static str {
        "sgd"
    }
    fn variant(&self) -> String {
        self.name().to_string()
            + if self.config().maximize {
                "+maximize"
            } else {
                ""
            }
            + if self.config().weight_decay > 0.0 {
                "+weight_decay"
            } else {
                ""
            }
    }
    family_config_json!(Sgd, SgdConfig);
    fn snapshot(&self) -> Snapshot<T> {
        snapshot_all(self, self.tensor_states().iter().map(|t| (t.step, t.len)))
    }
    fn restore(&mut self, s: Snapshot<T>) -> Result<(), CheckpointError> {
        let mut tensors = Vec::with_capacity(s.tensors.len());
        for (i, mut t) in s.tensors.into_iter().enumerate() {
            let momentum_buffer = take(&mut t.buffers, "momentum_buffer");
            no_leftover(i, &t.buffers)?;
            tensors.push(SgdTensorState {
                step: t.step,
                momentum_buffer,
                len: t.len,
            });
        }
        self.set_tensor_states(tensors, s.steps)?;
        self.set_skipped_steps(s.skipped_steps);
        Ok(())
    }
}

impl<T: Float> Checkpointable<T> for Adagrad<T> {
    fn kind(&self) -> &'static str {
        "adagrad"
    }
    fn variant(&self) -> String {
        format!("{:?}_order", self.config().order).to_lowercase()
            + if self.config().maximize {
                "+maximize"
            } else {
                ""
            }
    }
    family_config_json!(Adagrad, AdagradConfig);
    fn snapshot(&self) -> Snapshot<T> {
        snapshot_all(
            self,
            self.tensor_states().iter().map(|t| (t.step, t.sum.len())),
        )
    }
    fn restore(&mut self, s: Snapshot<T>) -> Result<(), CheckpointError> {
        let mut tensors = Vec::with_capacity(s.tensors.len());
        for (i, mut t) in s.tensors.into_iter().enumerate() {
            let sum = take(&mut t.buffers, "sum");
            no_leftover(i, &t.buffers)?;
            expect_len(i, "sum", &sum, t.len)?;
            tensors.push(AdagradTensorState { step: t.step, sum });
        }
        self.set_tensor_states(tensors, s.steps)?;
        self.set_skipped_steps(s.skipped_steps);
        Ok(())
    }
}

impl<T: Float> Checkpointable<T> for Adam<T> {
    fn kind(&self) -> &'static str {
        "adam"
    }
    fn variant(&self) -> String {
        let c = self.config();
        let mut v = vec![
            format!("{:?}_order", c.order).to_lowercase(),
            self.name().to_string(),
        ];
        if c.amsgrad {
            v.push("amsgrad".into());
        }
        if c.maximize {
            v.push("maximize".into());
        }
        v.join("+")
    }
    family_config_json!(Adam, AdamConfig);
    fn snapshot(&self) -> Snapshot<T> {
        snapshot_all(
            self,
            self.tensor_states()
                .iter()
                .map(|t| (t.step, t.exp_avg.len())),
        )
    }
    fn restore(&mut self, s: Snapshot<T>) -> Result<(), CheckpointError> {
        let mut tensors = Vec::with_capacity(s.tensors.len());
        for (i, mut t) in s.tensors.into_iter().enumerate() {
            let exp_avg = take(&mut t.buffers, "exp_avg");
            let exp_avg_sq = take(&mut t.buffers, "exp_avg_sq");
            let max_exp_avg_sq = take(&mut t.buffers, "max_exp_avg_sq");
            no_leftover(i, &t.buffers)?;
            expect_len(i, "exp_avg", &exp_avg, t.len)?;
            tensors.push(AdamTensorState {
                step: t.step,
                exp_avg,
                exp_avg_sq,
                max_exp_avg_sq,
            });
        }
        self.set_tensor_states(tensors, s.steps)?;
        self.set_skipped_steps(s.skipped_steps);
        Ok(())
    }
}
