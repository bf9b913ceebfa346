//! Checkpoints of [`Blockwise8`]: a safetensors file holding each 8-bit buffer as `U8` codes with
//! its `F32` block absmax (`<tensor>.<buffer>` and `<tensor>.<buffer>.absmax`), the `F32`
//! buffers of small tensors, the configuration and the counters, with a CRC-32, written
//! atomically.

use std::path::Path;

use safetensors::Dtype;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Blockwise8, BLOCK};
use crate::checkpoint::packed::{
    as_f32, check_params, f32_bytes, meta_err, pack, param_entries, read_params, Entry, Unpacked,
};
use crate::checkpoint::{write_atomic, CheckpointError};
use crate::storage::{Buf, Param, Slot};
use crate::Algorithm;

/// The `format` field of an 8-bit-state checkpoint.
pub const BLOCKWISE_FORMAT: &str = "rmsprop-blockwise8";
/// The version this build writes (it reads versions 1 and 2; version 2 added the parameters).
pub const BLOCKWISE_VERSION: u32 = 2;
/// The quantization a file's codes refer to (checked on load).
const QUANTIZATION: &str = "bitsandbytes dynamic maps, blocks of 256";

impl<A, P> Blockwise8<A, P>
where
    A: Algorithm + Serialize + DeserializeOwned,
    P: Param,
{
    /// The checkpoint as bytes: a safetensors file holding each 8-bit buffer as `U8` codes
    /// (`<tensor>.<buffer>`) with its `F32` block absmax (`<tensor>.<buffer>.absmax`), the `F32`
    /// buffers of small tensors, and the configuration, `min_8bit_size`, counters and a CRC-32
    /// in its header.
    ///
    /// # Errors
    /// Only if safetensors refuses to serialize (it does not for these tensors).
    ///
    /// # Examples
    /// ```
    /// use rmsprop::blockwise::Blockwise8;
    /// use rmsprop::RmsPropConfig;
    /// let mut opt = Blockwise8::new(RmsPropConfig::pytorch(), 0).unwrap();
    /// let (mut p, g) = (vec![1.0f32; 300], vec![0.5f32; 300]);
    /// opt.step(&mut [&mut p], &[&g]).unwrap();
    /// let bytes = opt.to_bytes().unwrap();
    /// let mut again: Blockwise8<RmsPropConfig> = Blockwise8::new(RmsPropConfig::pytorch(), 0).unwrap();
    /// again.from_bytes(&bytes).unwrap();
    /// assert_eq!(again.quantized(0, "square_avg"), opt.quantized(0, "square_avg"));
    /// assert_eq!(again.steps(), 1);
    /// ```
    pub fn to_bytes(&self) -> Result<Vec<u8>, CheckpointError> {
        self.to_bytes_with(None)
    }

    /// [`to_bytes`](Blockwise8::to_bytes), holding also `params` when given (tensors `param.<i>`
    /// in the parameters' own type, and their count in the `params` field), so one file restores
    /// a model and its optimizer (see [`from_bytes_with`](Blockwise8::from_bytes_with)).
    ///
    /// # Errors
    /// Parameters that do not fit the state (count or lengths), or as
    /// [`to_bytes`](Blockwise8::to_bytes).
    pub fn to_bytes_with(&self, params: Option<&[&[P]]>) -> Result<Vec<u8>, CheckpointError> {
        let lens: Vec<usize> = self.engine.tensors.iter().map(|t| t.len).collect();
        check_params(params, &lens)?;
        let names = self.engine.buffer_names();
        let mut entries = Vec::new();
        let mut tensors = Vec::new();
        for (i, t) in self.engine.tensors.iter().enumerate() {
            let mut bits = 32;
            for (name, b) in names.iter().zip(&t.bufs) {
                match b {
                    Buf::Quant { codes, absmax } => {
                        bits = 8;
                        entries.push(Entry {
                            name: format!("{i}.{name}"),
                            dtype: Dtype::U8,
                            len: t.len,
                            bytes: codes.clone(),
                        });
                        entries.push(Entry {
                            name: format!("{i}.{name}.absmax"),
                            dtype: Dtype::F32,
                            len: absmax.len(),
                            bytes: f32_bytes(absmax),
                        });
                    }
                    Buf::Wide(v) => entries.push(Entry {
                        name: format!("{i}.{name}"),
                        dtype: Dtype::F32,
                        len: t.len,
                        bytes: f32_bytes(v),
                    }),
                    Buf::Narrow(_) => unreachable!("8-bit or f32 state"),
                }
            }
            tensors.push(serde_json::json!({"step": t.step, "len": t.len, "bits": bits}));
        }
        let (param_tensors, param_count) = param_entries(params);
        entries.extend(param_tensors);
        pack(
            entries,
            vec![
                ("format", BLOCKWISE_FORMAT.to_string()),
                ("format_version", BLOCKWISE_VERSION.to_string()),
                ("optimizer", A::KIND.to_string()),
                ("quantization", QUANTIZATION.to_string()),
                ("min_8bit_size", self.min_8bit_size().to_string()),
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

    /// Writes [`to_bytes`](Blockwise8::to_bytes) to `path` atomically (a temporary file,
    /// synced, then renamed).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        write_atomic(path, &self.to_bytes()?)
    }

    /// Restores configuration, `min_8bit_size`, counters and state from a checkpoint written by
    /// [`to_bytes`](Blockwise8::to_bytes). Everything is checked (format, version, checksum,
    /// algorithm, quantization, every tensor's type and length, the configuration's validity)
    /// before anything changes, so a refused file changes nothing.
    ///
    /// # Errors
    /// A [`CheckpointError`] naming what does not fit.
    pub fn from_bytes(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        self.from_bytes_with(bytes).map(drop)
    }

    /// [`from_bytes`](Blockwise8::from_bytes), returning the parameters the file holds (`None`
    /// when it holds none, as files of version 1 and those written by
    /// [`to_bytes`](Blockwise8::to_bytes)). They are checked with everything else: a refused
    /// file changes nothing.
    ///
    /// # Errors
    /// As [`from_bytes`](Blockwise8::from_bytes), or parameters of another type, count or length.
    #[allow(clippy::type_complexity)]
    pub fn from_bytes_with(
        &mut self,
        bytes: &[u8],
    ) -> Result<Option<Vec<Vec<P>>>, CheckpointError> {
        let file = Unpacked::open(bytes, BLOCKWISE_FORMAT, BLOCKWISE_VERSION)?;
        file.expect("optimizer", "optimizer", A::KIND.to_string())?;
        file.expect("quantization", "quantization", QUANTIZATION.to_string())?;
        let config: A = serde_json::from_str(file.field("config")?)
            .map_err(|e| meta_err("config", e.to_string()))?;
        let min_size = file.number("min_8bit_size")? as usize;
        let (steps, skipped) = (file.number("steps")?, file.number("skipped_steps")?);
        let shapes: Vec<serde_json::Value> = serde_json::from_str(file.field("tensors")?)
            .map_err(|e| meta_err("tensors", e.to_string()))?;
        // A fresh optimizer validates the configuration and gives the layout.
        let mut fresh = Blockwise8::<A, P>::new(config, min_size)?;
        let buffers = fresh.engine.buffer_names();
        let mut tensors = Vec::with_capacity(shapes.len());
        let mut used = 0;
        for (i, shape) in shapes.iter().enumerate() {
            let get = |k: &str| {
                shape[k]
                    .as_u64()
                    .ok_or_else(|| meta_err("tensors", format!("tensor {i} has no `{k}`")))
            };
            let (step, len, bits) = (get("step")?, get("len")? as usize, get("bits")?);
            let mut t = Slot {
                step,
                len,
                bufs: Vec::new(),
                master: None,
            };
            for name in &buffers {
                let key = format!("{i}.{name}");
                match bits {
                    8 => {
                        let codes = file.read(&key, Dtype::U8, len)?.to_vec();
                        let blocks = len.div_ceil(BLOCK);
                        let absmax =
                            as_f32(file.read(&format!("{key}.absmax"), Dtype::F32, blocks)?);
                        if let Some(bad) = absmax.iter().find(|m| !(m.is_finite() && **m >= 0.0)) {
                            return Err(CheckpointError::Tensor {
                                name: format!("{key}.absmax"),
                                problem: format!("absmax {bad} is not finite and >= 0"),
                            });
                        }
                        t.bufs.push(Buf::Quant { codes, absmax });
                        used += 2;
                    }
                    32 => {
                        t.bufs
                            .push(Buf::Wide(as_f32(file.read(&key, Dtype::F32, len)?)));
                        used += 1;
                    }
                    other => {
                        return Err(meta_err(
                            "tensors",
                            format!("tensor {i} has {other} bits (8 or 32)"),
                        ))
                    }
                }
            }
            tensors.push(t);
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

    /// Restores from the file at `path` (see [`from_bytes`](Blockwise8::from_bytes)).
    ///
    /// # Errors
    /// When the file cannot be read, or as [`from_bytes`](Blockwise8::from_bytes).
    pub fn load(&mut self, path: &Path) -> Result<(), CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.from_bytes(&bytes)
    }
}
