//! Checkpoints of [`Mixed`]: a safetensors file whose tensors keep their storage types (state
//! in `f32`, `bfloat16` or `float16`, the master copy in `f32`), with a verified metadata
//! header, written atomically.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Half, Mixed, StateStorage, Tensor};
use crate::checkpoint::{write_atomic, CheckpointError};
use crate::Algorithm;

/// The `format` field of a mixed-precision checkpoint.
pub const MIXED_FORMAT: &str = "rmsprop-mixed";
/// The version this build writes and reads.
pub const MIXED_VERSION: u32 = 1;

fn half_dtype<H: Half>() -> Dtype {
    if H::DTYPE == "bfloat16" {
        Dtype::BF16
    } else {
        Dtype::F16
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn half_bytes<H: Half>(v: &[H]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect()
}

fn meta_err(field: &'static str, problem: impl Into<String>) -> CheckpointError {
    CheckpointError::Metadata {
        field,
        problem: problem.into(),
    }
}

impl<A, H> Mixed<A, H>
where
    A: Algorithm + Serialize + DeserializeOwned,
    H: Half,
{
    /// The checkpoint as bytes: configuration, counters, and every tensor's buffers in their
    /// storage type (`bfloat16`/`float16` for half state, `f32` otherwise) and master copy.
    ///
    /// # Errors
    /// Only if safetensors refuses to serialize (it does not for these tensors).
    ///
    /// # Examples
    /// ```
    /// use half::bf16;
    /// use rmsprop::mixed::{Mixed, MixedOptions, StateStorage};
    /// use rmsprop::RmsPropConfig;
    /// let options = MixedOptions { state: StateStorage::Half, ..MixedOptions::default() };
    /// let mut opt = Mixed::<RmsPropConfig, bf16>::new(RmsPropConfig::pytorch(), options).unwrap();
    /// let (mut p, g) = (vec![bf16::from_f32(1.0); 3], vec![bf16::from_f32(0.5); 3]);
    /// opt.step(&mut [&mut p], &[&g]).unwrap();
    /// let bytes = opt.to_bytes().unwrap();
    /// let mut again = Mixed::<RmsPropConfig, bf16>::new(RmsPropConfig::pytorch(), options).unwrap();
    /// again.from_bytes(&bytes).unwrap();
    /// assert_eq!(again.buffer(0, "square_avg"), opt.buffer(0, "square_avg"));
    /// assert_eq!(again.steps(), 1);
    /// ```
    pub fn to_bytes(&self) -> Result<Vec<u8>, CheckpointError> {
        let names: Vec<&str> = self
            .inner
            .layout()
            .buffers()
            .iter()
            .map(|b| b.name)
            .collect();
        let mut named: Vec<(String, Dtype, usize, Vec<u8>)> = Vec::new();
        for (i, t) in self.tensors.iter().enumerate() {
            for (k, name) in names.iter().enumerate() {
                match self.options.state {
                    StateStorage::F32 => named.push((
                        format!("{i}.{name}"),
                        Dtype::F32,
                        t.len,
                        f32_bytes(&t.wide[k]),
                    )),
                    StateStorage::Half => named.push((
                        format!("{i}.{name}"),
                        half_dtype::<H>(),
                        t.len,
                        half_bytes(&t.narrow[k]),
                    )),
                }
            }
            if let Some(m) = &t.master {
                named.push((format!("{i}.master"), Dtype::F32, t.len, f32_bytes(m)));
            }
        }
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut crc = crc32fast::Hasher::new();
        for (_, _, _, bytes) in &named {
            crc.update(bytes);
        }
        let tensors: Vec<serde_json::Value> = self
            .tensors
            .iter()
            .map(|t| serde_json::json!({"step": t.step, "len": t.len}))
            .collect();
        let state = match self.options.state {
            StateStorage::F32 => "f32",
            StateStorage::Half => "half",
        };
        let metadata: HashMap<String, String> = [
            ("format", MIXED_FORMAT.to_string()),
            ("format_version", MIXED_VERSION.to_string()),
            ("optimizer", A::KIND.to_string()),
            ("half", H::DTYPE.to_string()),
            ("state", state.to_string()),
            ("master", self.options.master.to_string()),
            (
                "config",
                serde_json::to_string(self.config()).expect("configurations serialize"),
            ),
            ("steps", self.steps.to_string()),
            ("skipped_steps", self.skipped.to_string()),
            ("tensors", serde_json::Value::from(tensors).to_string()),
            ("checksum", format!("{:08x}", crc.finalize())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let views: Vec<(String, TensorView<'_>)> = named
            .iter()
            .map(|(name, dtype, len, bytes)| {
                let view = TensorView::new(*dtype, vec![*len], bytes)
                    .map_err(|e| CheckpointError::Unreadable(e.to_string()))?;
                Ok((name.clone(), view))
            })
            .collect::<Result<_, CheckpointError>>()?;
        safetensors::serialize(views, Some(metadata))
            .map_err(|e| CheckpointError::Unreadable(e.to_string()))
    }

    /// Writes [`to_bytes`](Mixed::to_bytes) to `path` atomically (a temporary file, synced,
    /// then renamed).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        write_atomic(path, &self.to_bytes()?)
    }

    /// Restores configuration, counters and state from a checkpoint written by
    /// [`to_bytes`](Mixed::to_bytes). The file must hold the same algorithm, half type, state
    /// storage and master-copy setting; everything is checked (checksum, lengths, dtypes, the
    /// configuration's validity) before anything changes, so a refused file changes nothing.
    ///
    /// # Errors
    /// A [`CheckpointError`] naming what does not fit.
    pub fn from_bytes(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| CheckpointError::Unreadable(e.to_string()))?;
        let meta = meta
            .metadata()
            .clone()
            .ok_or_else(|| meta_err("format", "no metadata"))?;
        let field = |name: &'static str| {
            meta.get(name)
                .map(String::as_str)
                .ok_or_else(|| meta_err(name, "missing"))
        };
        if field("format")? != MIXED_FORMAT {
            return Err(meta_err(
                "format",
                format!("`{}` is not {MIXED_FORMAT}", field("format")?),
            ));
        }
        if field("format_version")? != MIXED_VERSION.to_string() {
            return Err(CheckpointError::Version {
                found: field("format_version")?.to_string(),
            });
        }
        let expect = |what: &'static str, found: &str, expected: String| {
            if found == expected {
                Ok(())
            } else {
                Err(CheckpointError::Mismatch {
                    what,
                    found: found.to_string(),
                    expected,
                })
            }
        };
        expect("optimizer", field("optimizer")?, A::KIND.to_string())?;
        expect("dtype", field("half")?, H::DTYPE.to_string())?;
        let state = match self.options.state {
            StateStorage::F32 => "f32",
            StateStorage::Half => "half",
        };
        expect("state storage", field("state")?, state.to_string())?;
        expect(
            "master copy",
            field("master")?,
            self.options.master.to_string(),
        )?;
        let config: A = serde_json::from_str(field("config")?)
            .map_err(|e| meta_err("config", e.to_string()))?;
        let number = |name: &'static str| {
            field(name)?
                .parse::<u64>()
                .map_err(|e| meta_err(name, e.to_string()))
        };
        let (steps, skipped) = (number("steps")?, number("skipped_steps")?);
        let shapes: Vec<serde_json::Value> = serde_json::from_str(field("tensors")?)
            .map_err(|e| meta_err("tensors", e.to_string()))?;
        let checksum = field("checksum")?.to_string();
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| CheckpointError::Unreadable(e.to_string()))?;
        let mut names: Vec<String> = file.names().into_iter().map(str::to_string).collect();
        names.sort();
        let mut crc = crc32fast::Hasher::new();
        for name in &names {
            crc.update(
                file.tensor(name)
                    .map_err(|e| CheckpointError::Unreadable(e.to_string()))?
                    .data(),
            );
        }
        let found = crc.finalize();
        let expected =
            u32::from_str_radix(&checksum, 16).map_err(|e| meta_err("checksum", e.to_string()))?;
        if found != expected {
            return Err(CheckpointError::Checksum { expected, found });
        }
        // A fresh optimizer validates the configuration and gives the layout.
        let mut fresh = Mixed::<A, H>::new(config, self.options)?;
        let buffers: Vec<&'static str> = fresh
            .inner
            .layout()
            .buffers()
            .iter()
            .map(|b| b.name)
            .collect();
        let read = |name: &str, dtype: Dtype, len: usize| -> Result<Vec<u8>, CheckpointError> {
            let t = file.tensor(name).map_err(|_| CheckpointError::Tensor {
                name: name.to_string(),
                problem: "missing".to_string(),
            })?;
            if t.dtype() != dtype || t.shape() != [len] {
                return Err(CheckpointError::Tensor {
                    name: name.to_string(),
                    problem: format!(
                        "{:?} {:?}, expected {dtype:?} [{len}]",
                        t.dtype(),
                        t.shape()
                    ),
                });
            }
            Ok(t.data().to_vec())
        };
        let as_f32 = |b: Vec<u8>| -> Vec<f32> {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let mut tensors = Vec::with_capacity(shapes.len());
        let mut used = 0;
        for (i, shape) in shapes.iter().enumerate() {
            let get = |k: &str| {
                shape[k]
                    .as_u64()
                    .ok_or_else(|| meta_err("tensors", format!("tensor {i} has no `{k}`")))
            };
            let (step, len) = (get("step")?, get("len")? as usize);
            let (mut wide, mut narrow) = (Vec::new(), Vec::new());
            for name in &buffers {
                let key = format!("{i}.{name}");
                match self.options.state {
                    StateStorage::F32 => wide.push(as_f32(read(&key, Dtype::F32, len)?)),
                    StateStorage::Half => narrow.push(
                        read(&key, half_dtype::<H>(), len)?
                            .chunks_exact(2)
                            .map(|c| H::from_bits(u16::from_le_bytes([c[0], c[1]])))
                            .collect(),
                    ),
                }
                used += 1;
            }
            let master = if self.options.master {
                used += 1;
                Some(as_f32(read(&format!("{i}.master"), Dtype::F32, len)?))
            } else {
                None
            };
            tensors.push(Tensor {
                step,
                len,
                wide,
                narrow,
                master,
            });
        }
        if used != names.len() {
            return Err(CheckpointError::Tensor {
                name: names.join(", "),
                problem: format!("{} tensors in the file, {used} expected", names.len()),
            });
        }
        fresh.tensors = tensors;
        fresh.steps = steps;
        fresh.skipped = skipped;
        fresh.exec = self.exec.clone();
        fresh.policy = self.policy;
        *self = fresh;
        Ok(())
    }

    /// Restores from the file at `path` (see [`from_bytes`](Mixed::from_bytes)).
    ///
    /// # Errors
    /// When the file cannot be read, or as [`from_bytes`](Mixed::from_bytes).
    pub fn load(&mut self, path: &Path) -> Result<(), CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.from_bytes(&bytes)
    }
}
