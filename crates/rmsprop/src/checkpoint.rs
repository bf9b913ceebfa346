//! Checkpoints: an optimizer stack's configuration and state (and, if wanted, the parameters)
//! in one safetensors file with a verified metadata header, written atomically.
//!
//! Any stack checkpoints: an optimizer ([`Optim`] of any [`Algorithm`]), and the wrappers
//! around it ([`ParamGroups`](crate::ParamGroups), [`Scheduled`](crate::schedule::Scheduled),
//! [`Accumulate`](crate::Accumulate)), nested in any order. Each level is a [`Snapshot`]
//! node: its kind, configuration, counters, tensors and the nodes it wraps, so a resumed
//! stack continues bit for bit (schedule position, base rates, pending micro-batch sums and
//! every counter included). A schedule itself is code, like the model: the checkpoint keeps
//! its position, the program supplies the schedule.
//!
//! Format (version 3): tensors are 1-D in the optimizer's dtype, named
//! `{path}state.{tensor}.{buffer}` where `{path}` is empty for the outermost node and
//! `{child}.` per level below it (`0.state.3.square_avg`: the square average of tensor 3 of
//! the first wrapped optimizer), and `param.{tensor}` for parameters. `__metadata__` holds
//! `format` (`rmsprop-checkpoint`), `format_version`, `optimizer` (the outermost kind),
//! `dtype`, `params`, `tree` (JSON: per node `kind`, `variant`, `config`, `steps`,
//! `skipped_steps`, `tensors` with each tensor's `len`, `step` and buffer names, `extra` and
//! `children`) and `checksum`: a CRC-32 of every other metadata field (sorted by key; key and
//! value each followed by a zero byte) and then of every tensor's bytes, in name order, written
//! as 8 lower-case hex digits. Version 2 files (checksum of the tensors only) and version 1
//! files (one optimizer, flat fields instead of `tree`) still load. Loading checks everything and
//! names what is wrong; a file that does not load changes nothing.
//!
//! **Loading restores the file's configuration.** The optimizer that loads a checkpoint must
//! be of the same kind (and dtype, and stack shape), but its hyperparameters are replaced by
//! the file's: a checkpoint is the configuration plus the state. Change a hyperparameter
//! after loading (e.g. [`Optimizer::set_learning_rate`]) to override one deliberately.
//!
//! [`write_atomic`] writes a temporary file in the same directory, flushes and `fsync`s it,
//! renames it over the target and `fsync`s the directory: a crash at any moment leaves the old
//! file or the new one, never a mix (`tests/checkpoint.rs` kills a writer with SIGKILL hundreds
//! of times to check it).

pub(crate) mod packed;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::{json, Value};

use crate::algorithm::Algorithm;
use crate::state::{State, TensorState};
use crate::{Float, Optim, Optimizer};

/// The format version this build writes (and the newest it reads).
pub const FORMAT_VERSION: u32 = 3;
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
    #[error(
        "checkpoint format version {found} is not supported (this build reads 1 to {supported})"
    )]
    Version {
        /// The version in the file.
        found: String,
        /// The newest version of this format the build reads.
        supported: u32,
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
    /// The contents (tensor bytes and, from version 3, the other metadata fields) do not match
    /// the recorded checksum: the file is corrupted or was edited.
    #[error(
        "checkpoint is corrupted: checksum {found:08x} of its contents, {expected:08x} recorded"
    )]
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

/// One level of an optimizer stack as plain data: what it is, how it is configured, its
/// counters and tensors, and the levels it wraps.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot<T> {
    /// `rmsprop`, `adam`, ... for an optimizer; `param_groups`, `scheduled`, `accumulate` for
    /// a wrapper.
    pub kind: String,
    /// The structural options, in stable names (informative; see [`Algorithm::variant`]).
    pub variant: String,
    /// The configuration as JSON (`null` where there is none).
    pub config: Value,
    /// Successful steps.
    pub steps: u64,
    /// Skipped steps.
    pub skipped_steps: u64,
    /// Per-tensor state.
    pub tensors: Vec<TensorSnapshot<T>>,
    /// A wrapper's own counters (schedule position, base rates, pending count, group names...).
    pub extra: Value,
    /// The wrapped levels, in order.
    pub children: Vec<Snapshot<T>>,
}

impl<T> Snapshot<T> {
    /// A node with no tensors, extra data or children.
    pub fn node(kind: &str, config: Value, steps: u64, skipped_steps: u64) -> Self {
        Self {
            kind: kind.to_string(),
            variant: String::new(),
            config,
            steps,
            skipped_steps,
            tensors: Vec::new(),
            extra: Value::Null,
            children: Vec::new(),
        }
    }
}

/// An optimizer (or wrapper) that can be checkpointed: its configuration and state as data.
pub trait Checkpointable<T: Float>: Optimizer<T> {
    /// The kind a checkpoint must have to load into this optimizer (see [`Snapshot::kind`]).
    fn kind(&self) -> &'static str;
    /// The whole state, configuration included, as plain data.
    fn snapshot(&self) -> Snapshot<T>;
    /// Replaces configuration and state from `snapshot` (of this [`kind`](Self::kind)),
    /// checking both.
    ///
    /// # Errors
    /// A [`CheckpointError`] naming what does not fit. A wrapper may have restored some of
    /// the levels it wraps by then: [`from_bytes`] and [`load`] put everything back on error.
    fn restore(&mut self, snapshot: Snapshot<T>) -> Result<(), CheckpointError>;
}

/// A boxed optimizer (`Box<dyn Checkpointable<T>>`, chosen at run time) checkpoints as the
/// optimizer inside.
impl<T: Float, C: Checkpointable<T> + ?Sized> Checkpointable<T> for Box<C> {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
    fn snapshot(&self) -> Snapshot<T> {
        (**self).snapshot()
    }
    fn restore(&mut self, snapshot: Snapshot<T>) -> Result<(), CheckpointError> {
        (**self).restore(snapshot)
    }
}

/// Every optimizer checkpoints the same way: its configuration (serde) and its layout's buffers.
impl<A, T> Checkpointable<T> for Optim<A, T>
where
    A: Algorithm + serde::Serialize + serde::de::DeserializeOwned,
    T: Float,
{
    fn kind(&self) -> &'static str {
        A::KIND
    }

    fn snapshot(&self) -> Snapshot<T> {
        let names: Vec<&str> = self.layout().buffers().iter().map(|b| b.name).collect();
        Snapshot {
            kind: A::KIND.to_string(),
            variant: self.config().variant(),
            config: serde_json::to_value(self.config()).expect("configurations serialize"),
            steps: self.steps(),
            skipped_steps: self.skipped_steps(),
            tensors: self
                .state()
                .tensors
                .iter()
                .map(|t| TensorSnapshot {
                    step: t.step,
                    len: t.len,
                    buffers: names
                        .iter()
                        .zip(&t.buffers)
                        .map(|(n, b)| (n.to_string(), b.clone()))
                        .collect(),
                })
                .collect(),
            extra: Value::Null,
            children: Vec::new(),
        }
    }

    fn restore(&mut self, s: Snapshot<T>) -> Result<(), CheckpointError> {
        expect_kind(A::KIND, &s.kind)?;
        let config: A =
            serde_json::from_value(s.config).map_err(|e| CheckpointError::Metadata {
                field: "config",
                problem: e.to_string(),
            })?;
        let mut fresh = Optim::<A, T>::new(config)?;
        let names: Vec<&'static str> = fresh.layout().buffers().iter().map(|b| b.name).collect();
        let mut tensors = Vec::with_capacity(s.tensors.len());
        for (i, mut t) in s.tensors.into_iter().enumerate() {
            let mut buffers = Vec::with_capacity(names.len());
            for name in &names {
                let position = t
                    .buffers
                    .iter()
                    .position(|(n, _)| n == name)
                    .ok_or_else(|| CheckpointError::Tensor {
                        name: format!("state.{i}.{name}"),
                        problem: "missing: the configuration needs this buffer".into(),
                    })?;
                let (_, values) = t.buffers.swap_remove(position);
                expect_len(&format!("state.{i}.{name}"), values.len(), t.len)?;
                buffers.push(values);
            }
            if let Some((name, _)) = t.buffers.first() {
                return Err(CheckpointError::Tensor {
                    name: format!("state.{i}.{name}"),
                    problem: "not a buffer of this optimizer's configuration".into(),
                });
            }
            tensors.push(TensorState {
                step: t.step,
                len: t.len,
                buffers,
            });
        }
        fresh.set_state(State {
            steps: s.steps,
            tensors,
        })?;
        fresh.set_skipped_steps(s.skipped_steps);
        fresh.set_execution(self.execution().clone());
        *self = fresh;
        Ok(())
    }
}

/// A node must be of the kind the optimizer loading it is.
pub(crate) fn expect_kind(expected: &str, found: &str) -> Result<(), CheckpointError> {
    if expected == found {
        Ok(())
    } else {
        Err(CheckpointError::Mismatch {
            what: "optimizer",
            found: found.to_string(),
            expected: expected.to_string(),
        })
    }
}

/// A wrapper's snapshot must wrap as many levels as the wrapper does.
pub(crate) fn expect_children<T>(s: &Snapshot<T>, expected: usize) -> Result<(), CheckpointError> {
    if s.children.len() == expected {
        Ok(())
    } else {
        Err(CheckpointError::Mismatch {
            what: "structure",
            found: format!("{} with {} wrapped levels", s.kind, s.children.len()),
            expected: format!("{} with {expected}", s.kind),
        })
    }
}

/// A wrapper's counter from its `extra` data.
pub(crate) fn extra_u64(s: &Value, field: &'static str) -> Result<u64, CheckpointError> {
    s[field].as_u64().ok_or(CheckpointError::Metadata {
        field,
        problem: "missing or not a whole number".into(),
    })
}

fn expect_len(name: &str, len: usize, expected: usize) -> Result<(), CheckpointError> {
    if len == expected {
        Ok(())
    } else {
        Err(CheckpointError::Tensor {
            name: name.to_string(),
            problem: format!("{len} elements, expected {expected}"),
        })
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

/// The metadata tree of a snapshot, and its tensors under their names.
fn flatten<T: Float>(s: &Snapshot<T>, prefix: &str, named: &mut Vec<(String, Vec<u8>)>) -> Value {
    let mut tensors = Vec::with_capacity(s.tensors.len());
    for (i, t) in s.tensors.iter().enumerate() {
        let mut buffers = Vec::with_capacity(t.buffers.len());
        for (name, values) in &t.buffers {
            named.push((format!("{prefix}state.{i}.{name}"), le_bytes(values)));
            buffers.push(Value::String(name.clone()));
        }
        tensors.push(json!({"len": t.len, "step": t.step, "buffers": buffers}));
    }
    let children: Vec<Value> = s
        .children
        .iter()
        .enumerate()
        .map(|(k, c)| flatten(c, &format!("{prefix}{k}."), named))
        .collect();
    json!({
        "kind": s.kind,
        "variant": s.variant,
        "config": s.config,
        "steps": s.steps,
        "skipped_steps": s.skipped_steps,
        "tensors": tensors,
        "extra": s.extra,
        "children": children,
    })
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
    let tree = flatten(&snap, "", &mut named);
    if let Some(params) = params {
        for (i, p) in params.iter().enumerate() {
            named.push((format!("param.{i}"), le_bytes(p)));
        }
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut metadata: HashMap<String, String> = [
        ("format", FORMAT.to_string()),
        ("format_version", FORMAT_VERSION.to_string()),
        ("optimizer", snap.kind.clone()),
        ("dtype", T::DTYPE.to_string()),
        ("tree", tree.to_string()),
        ("params", params.map_or(0, |p| p.len()).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let crc = packed::checksum(&metadata, named.iter().map(|(_, b)| &b[..]));
    metadata.insert("checksum".to_string(), format!("{crc:08x}"));
    let views: Vec<(String, TensorView<'_>)> = named
        .iter()
        .map(|(name, bytes)| {
            let view = TensorView::new(dtype_of::<T>(), vec![bytes.len() / T::BYTES], bytes)
                .map_err(|e| CheckpointError::Unreadable(e.to_string()))?;
            Ok((name.clone(), view))
        })
        .collect::<Result<_, CheckpointError>>()?;
    packed::serialize(views, metadata)
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

fn tree_error(problem: String) -> CheckpointError {
    CheckpointError::Metadata {
        field: "tree",
        problem,
    }
}

/// Rebuilds a snapshot node from its metadata, taking its tensors out of `values`.
fn unflatten<T>(
    node: &Value,
    prefix: &str,
    values: &mut HashMap<String, Vec<T>>,
    depth: usize,
) -> Result<Snapshot<T>, CheckpointError> {
    if depth > 64 {
        return Err(tree_error("nested more than 64 levels deep".into()));
    }
    let text = |key: &str| -> Result<String, CheckpointError> {
        node[key]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| tree_error(format!("`{prefix}{key}` is missing or not a string")))
    };
    let number = |key: &str| -> Result<u64, CheckpointError> {
        node[key]
            .as_u64()
            .ok_or_else(|| tree_error(format!("`{prefix}{key}` is missing or not a whole number")))
    };
    let list = |key: &str| -> Result<&Vec<Value>, CheckpointError> {
        node[key]
            .as_array()
            .ok_or_else(|| tree_error(format!("`{prefix}{key}` is missing or not a list")))
    };
    let mut tensors = Vec::new();
    for (i, t) in list("tensors")?.iter().enumerate() {
        let len = t["len"]
            .as_u64()
            .ok_or_else(|| tree_error(format!("{prefix}tensor {i} has no `len`")))?
            as usize;
        let step = t["step"]
            .as_u64()
            .ok_or_else(|| tree_error(format!("{prefix}tensor {i} has no `step`")))?;
        let names = t["buffers"]
            .as_array()
            .ok_or_else(|| tree_error(format!("{prefix}tensor {i} has no `buffers`")))?;
        let mut buffers = Vec::with_capacity(names.len());
        for name in names {
            let name = name.as_str().ok_or_else(|| {
                tree_error(format!("{prefix}tensor {i}: a buffer name is not a string"))
            })?;
            let full = format!("{prefix}state.{i}.{name}");
            let v = values
                .remove(&full)
                .ok_or_else(|| CheckpointError::Tensor {
                    name: full.clone(),
                    problem: "missing".into(),
                })?;
            expect_len(&full, v.len(), len)?;
            buffers.push((name.to_string(), v));
        }
        tensors.push(TensorSnapshot { step, len, buffers });
    }
    let mut children = Vec::new();
    for (k, c) in list("children")?.iter().enumerate() {
        children.push(unflatten(c, &format!("{prefix}{k}."), values, depth + 1)?);
    }
    Ok(Snapshot {
        kind: text("kind")?,
        variant: node["variant"].as_str().unwrap_or_default().to_string(),
        config: node["config"].clone(),
        steps: number("steps")?,
        skipped_steps: number("skipped_steps")?,
        tensors,
        extra: node["extra"].clone(),
        children,
    })
}

/// A version-1 file's flat fields as a version-2 tree node (buffer names from the tensors).
fn tree_from_v1(
    meta: &HashMap<String, String>,
    names: &[String],
) -> Result<Value, CheckpointError> {
    let config: Value =
        serde_json::from_str(field(meta, "config")?).map_err(|e| CheckpointError::Metadata {
            field: "config",
            problem: e.to_string(),
        })?;
    let tensors_meta: Vec<Value> =
        serde_json::from_str(field(meta, "tensors")?).map_err(|e| CheckpointError::Metadata {
            field: "tensors",
            problem: e.to_string(),
        })?;
    let mut tensors = Vec::with_capacity(tensors_meta.len());
    for (i, t) in tensors_meta.iter().enumerate() {
        let prefix = format!("state.{i}.");
        let buffers: Vec<Value> = names
            .iter()
            .filter_map(|n| n.strip_prefix(&prefix))
            .map(|b| Value::String(b.to_string()))
            .collect();
        tensors.push(json!({"len": t["len"], "step": t["step"], "buffers": buffers}));
    }
    Ok(json!({
        "kind": field(meta, "optimizer")?,
        "variant": meta.get("variant").cloned().unwrap_or_default(),
        "config": config,
        "steps": parse_u64(meta, "steps")?,
        "skipped_steps": parse_u64(meta, "skipped_steps")?,
        "tensors": tensors,
        "extra": Value::Null,
        "children": [],
    }))
}

/// Checks checkpoint bytes and loads them into `optimizer` (configuration and state, at every
/// level of the stack), returning the parameters if the checkpoint holds them. On any error the
/// optimizer is unchanged.
///
/// # Errors
/// A [`CheckpointError`] naming what is wrong: unreadable or truncated bytes, unknown format or
/// version, another optimizer kind, stack shape or dtype, missing/extra/misshapen tensors, a
/// checksum mismatch, or content the optimizer rejects.
pub fn from_bytes<T: Float, O: Checkpointable<T> + ?Sized>(
    optimizer: &mut O,
    bytes: &[u8],
) -> Result<Option<Vec<Vec<T>>>, CheckpointError> {
    let (snapshot, params) = parse(bytes, Some(optimizer.kind()))?;
    // All or nothing: a wrapper may have restored some levels before one refuses.
    let previous = optimizer.snapshot();
    if let Err(e) = optimizer.restore(snapshot) {
        optimizer
            .restore(previous)
            .expect("the optimizer's own snapshot restores");
        return Err(e);
    }
    Ok(params)
}

/// What a checkpoint holds: the snapshot tree, and the parameters when it holds them.
pub type Contents<T> = (Snapshot<T>, Option<Vec<Vec<T>>>);

/// Checks checkpoint bytes and returns what they hold without loading them into an optimizer:
/// the snapshot tree and the parameters if the checkpoint holds them (for tools that rearrange
/// state, such as re-partitioning sharded optimizer state).
///
/// # Errors
/// As [`from_bytes`], except the checks an optimizer makes when it restores the snapshot.
///
/// # Examples
/// ```
/// use rmsprop::checkpoint::{read, to_bytes};
/// use rmsprop::{Optimizer, RmsProp, RmsPropConfig};
/// let mut opt = RmsProp::<f64>::new(RmsPropConfig::pytorch()).unwrap();
/// opt.step_single(&mut [1.0, 2.0], &[0.5, 0.5]).unwrap();
/// let (snapshot, params) = read::<f64>(&to_bytes(&opt, None).unwrap()).unwrap();
/// assert_eq!((snapshot.kind.as_str(), snapshot.steps, params), ("rmsprop", 1, None));
/// assert_eq!(snapshot.tensors[0].buffers[0].0, "square_avg");
/// ```
pub fn read<T: Float>(bytes: &[u8]) -> Result<Contents<T>, CheckpointError> {
    parse(bytes, None)
}

/// The checks and the parsing of [`from_bytes`] and [`read`]; `kind` is the optimizer kind the
/// file must have, when there is one to load into.
fn parse<T: Float>(bytes: &[u8], kind: Option<&str>) -> Result<Contents<T>, CheckpointError> {
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
    let version_text = field(&meta, "format_version")?;
    let version = match version_text.parse::<u32>() {
        Ok(v) if (1..=FORMAT_VERSION).contains(&v) => v,
        _ => {
            return Err(CheckpointError::Version {
                found: version_text.to_string(),
                supported: FORMAT_VERSION,
            })
        }
    };
    let found_kind = field(&meta, "optimizer")?.to_string();
    for (what, found, expected) in [
        (
            "optimizer",
            found_kind.clone(),
            kind.map_or(found_kind, str::to_string),
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
    let n_params = parse_u64(&meta, "params")? as usize;
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
    let mut data: Vec<&[u8]> = Vec::with_capacity(names.len());
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
        data.push(view.data());
        values.insert(
            name.clone(),
            view.data()
                .chunks_exact(T::BYTES)
                .map(T::from_le_slice)
                .collect(),
        );
    }
    // Version 3 on: the checksum also covers every other metadata field, exactly as written.
    let found_crc = if version >= 3 {
        packed::checksum(&meta, data.into_iter())
    } else {
        crc.finalize()
    };
    let exact = version < 3 || field(&meta, "checksum")? == format!("{found_crc:08x}");
    if found_crc != expected_crc || !exact {
        return Err(CheckpointError::Checksum {
            expected: expected_crc,
            found: found_crc,
        });
    }

    // Rebuild the snapshot tree; every stored tensor must be claimed.
    let tree: Value = if version == 1 {
        tree_from_v1(&meta, &names)?
    } else {
        serde_json::from_str(field(&meta, "tree")?).map_err(|e| tree_error(e.to_string()))?
    };
    let snapshot = unflatten(&tree, "", &mut values, 0)?;
    let mut params = Vec::with_capacity(n_params);
    for i in 0..n_params {
        let name = format!("param.{i}");
        let v = values.remove(&name).ok_or(CheckpointError::Tensor {
            name: name.clone(),
            problem: "missing".into(),
        })?;
        params.push(v);
    }
    if !values.is_empty() {
        let mut extra: Vec<&String> = values.keys().collect();
        extra.sort();
        return Err(CheckpointError::Tensor {
            name: extra[0].to_string(),
            problem: "not part of this checkpoint's layout".into(),
        });
    }

    Ok((snapshot, (n_params > 0).then_some(params)))
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
