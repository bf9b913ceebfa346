//! Checkpoints of [`Mixed`]: a safetensors file whose tensors keep their storage types (state
//! in `f32`, `bfloat16` or `float16`, the master copy in `f32`), with a verified metadata
//! header, written atomically.

use std::path::Path;

use safetensors::Dtype;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Half, Mixed, StateStorage};
use crate::checkpoint::packed::{
    as_f32, check_params, f32_bytes, meta_err, pack, param_dtype, param_entries, read_params,
    Entry, Unpacked,
};
use crate::checkpoint::{write_atomic, CheckpointError};
use crate::storage::{Buf, Slot};
use crate::Algorithm;

/// The `format` field of a mixed-precision checkpoint.
pub const MIXED_FORMAT: &str = "rmsprop-mixed";
/// The version this build writes (it reads versions 1 and 2; version 2 added the parameters).
pub const MIXED_VERSION: u32 = 2;

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
        self.to_bytes_with(None)
    }

    /// [`to_bytes`](Mixed::to_bytes), holding also `params` when given (tensors `param.<i>`
    /// in the parameters' own type, and their count in the `params` field), so one file restores
    /// a model and its optimizer (see [`from_bytes_with`](Mixed::from_bytes_with)).
    ///
    /// # Errors
    /// Parameters that do not fit the state (count or lengths), or as
    /// [`to_bytes`](Mixed::to_bytes).
    pub fn to_bytes_with(&self, params: Option<&[&[H]]>) -> Result<Vec<u8>, CheckpointError> {
        let lens: Vec<usize> = self.engine.tensors.iter().map(|t| t.len).collect();
        check_params(params, &lens)?;
        let names = self.engine.buffer_names();
        let mut named = Vec::new();
        for (i, t) in self.engine.tensors.iter().enumerate() {
            for (name, b) in names.iter().zip(&t.bufs) {
                let (dtype, bytes) = match b {
                    Buf::Wide(v) => (Dtype::F32, f32_bytes(v)),
                    Buf::Narrow(v) => (param_dtype::<H>(), H::to_le_bytes(v)),
                    Buf::Quant { .. } => unreachable!("f32 or half state"),
                };
                named.push(Entry {
                    name: format!("{i}.{name}"),
                    dtype,
                    len: t.len,
                    bytes,
                });
            }
            if let Some(m) = &t.master {
                named.push(Entry {
                    name: format!("{i}.master"),
                    dtype: Dtype::F32,
                    len: t.len,
                    bytes: f32_bytes(m),
                });
            }
        }
        let tensors: Vec<serde_json::Value> = self
            .engine
            .tensors
            .iter()
            .map(|t| serde_json::json!({"step": t.step, "len": t.len}))
            .collect();
        let state = match self.options.state {
            StateStorage::F32 => "f32",
            StateStorage::Half => "half",
        };
        let (param_tensors, param_count) = param_entries(params);
        named.extend(param_tensors);
        pack(
            named,
            vec![
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
                ("steps", self.engine.steps.to_string()),
                ("skipped_steps", self.engine.skipped.to_string()),
                ("tensors", serde_json::Value::from(tensors).to_string()),
                ("params", param_count),
            ],
        )
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
        self.from_bytes_with(bytes).map(drop)
    }

    /// [`from_bytes`](Mixed::from_bytes), returning the parameters the file holds (`None`
    /// when it holds none, as files of version 1 and those written by
    /// [`to_bytes`](Mixed::to_bytes)). They are checked with everything else: a refused
    /// file changes nothing.
    ///
    /// # Errors
    /// As [`from_bytes`](Mixed::from_bytes), or parameters of another type, count or length.
    #[allow(clippy::type_complexity)]
    pub fn from_bytes_with(
        &mut self,
        bytes: &[u8],
    ) -> Result<Option<Vec<Vec<H>>>, CheckpointError> {
        let file = Unpacked::open(bytes, MIXED_FORMAT, MIXED_VERSION)?;
        file.expect("optimizer", "optimizer", A::KIND.to_string())?;
        file.expect("dtype", "half", H::DTYPE.to_string())?;
        let state = match self.options.state {
            StateStorage::F32 => "f32",
            StateStorage::Half => "half",
        };
        file.expect("state storage", "state", state.to_string())?;
        file.expect("master copy", "master", self.options.master.to_string())?;
        let config: A = serde_json::from_str(file.field("config")?)
            .map_err(|e| meta_err("config", e.to_string()))?;
        let (steps, skipped) = (file.number("steps")?, file.number("skipped_steps")?);
        let shapes: Vec<serde_json::Value> = serde_json::from_str(file.field("tensors")?)
            .map_err(|e| meta_err("tensors", e.to_string()))?;
        // A fresh optimizer validates the configuration and gives the layout.
        let mut fresh = Mixed::<A, H>::new(config, self.options)?;
        let buffers = fresh.engine.buffer_names();
        let mut tensors = Vec::with_capacity(shapes.len());
        let mut used = 0;
        for (i, shape) in shapes.iter().enumerate() {
            let get = |k: &str| {
                shape[k]
                    .as_u64()
                    .ok_or_else(|| meta_err("tensors", format!("tensor {i} has no `{k}`")))
            };
            let (step, len) = (get("step")?, get("len")? as usize);
            let mut bufs = Vec::new();
            for name in &buffers {
                let key = format!("{i}.{name}");
                bufs.push(match self.options.state {
                    StateStorage::F32 => Buf::Wide(as_f32(file.read(&key, Dtype::F32, len)?)),
                    StateStorage::Half => Buf::Narrow(H::from_le_bytes(file.read(
                        &key,
                        param_dtype::<H>(),
                        len,
                    )?)),
                });
                used += 1;
            }
            let master = if self.options.master {
                used += 1;
                Some(as_f32(file.read(
                    &format!("{i}.master"),
                    Dtype::F32,
                    len,
                )?))
            } else {
                None
            };
            tensors.push(Slot {
                step,
                len,
                bufs,
                master,
            });
        }
        let lens: Vec<usize> = tensors.iter().map(|t| t.len).collect();
        let (params, read) = read_params(&file, &lens)?;
        file.all_read(used + read)?;
        fresh.engine.tensors = tensors;
        fresh.engine.steps = steps;
        fresh.engine.skipped = skipped;
        fresh.engine.exec = self.engine.exec.clone();
        fresh.engine.policy = self.engine.policy;
        *self = fresh;
        Ok(params)
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
