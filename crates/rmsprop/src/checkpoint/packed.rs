//! What the checkpoints of optimizers with their own storage types (`Mixed`, `Blockwise8`)
//! share: a safetensors file of named 1-D tensors with a metadata header carrying the format,
//! its version and a CRC-32 of every other metadata field and every tensor's bytes, verified
//! before anything is read (so a changed step count or configuration is caught too).

use std::collections::HashMap;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::CheckpointError;
use crate::storage::Param;

/// A metadata problem with `field`.
pub(crate) fn meta_err(field: &'static str, problem: impl Into<String>) -> CheckpointError {
    CheckpointError::Metadata {
        field,
        problem: problem.into(),
    }
}

/// Little-endian bytes of `f32` values.
pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `f32` values from little-endian bytes.
pub(crate) fn as_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// CRC-32 of the metadata fields but `checksum` (sorted by key; key and value each followed by a
/// zero byte), then of the tensors' bytes in name order.
pub(crate) fn checksum<'b>(
    meta: &HashMap<String, String>,
    tensors: impl Iterator<Item = &'b [u8]>,
) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    let mut keys: Vec<&String> = meta.keys().filter(|k| *k != "checksum").collect();
    keys.sort();
    for k in keys {
        crc.update(k.as_bytes());
        crc.update(&[0]);
        crc.update(meta[k].as_bytes());
        crc.update(&[0]);
    }
    for t in tensors {
        crc.update(t);
    }
    crc.finalize()
}

/// One tensor of a file: name, type, length and bytes.
pub(crate) struct Entry {
    pub name: String,
    pub dtype: Dtype,
    pub len: usize,
    pub bytes: Vec<u8>,
}

/// The file: `entries` and `metadata`, with a `checksum` field added (CRC-32 of the tensors'
/// bytes in name order).
pub(crate) fn pack(
    mut entries: Vec<Entry>,
    metadata: Vec<(&'static str, String)>,
) -> Result<Vec<u8>, CheckpointError> {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut metadata: HashMap<String, String> = metadata
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let crc = checksum(&metadata, entries.iter().map(|e| &e.bytes[..]));
    metadata.insert("checksum".to_string(), format!("{crc:08x}"));
    let views: Vec<(String, TensorView<'_>)> = entries
        .iter()
        .map(|e| {
            let view = TensorView::new(e.dtype, vec![e.len], &e.bytes)
                .map_err(|err| CheckpointError::Unreadable(err.to_string()))?;
            Ok((e.name.clone(), view))
        })
        .collect::<Result<_, CheckpointError>>()?;
    serialize(views, metadata)
}

/// `safetensors::serialize`, with the header's keys sorted: safetensors writes the metadata and
/// the tensor table from hash maps, whose order changes from run to run; sorted, the same state
/// gives the same bytes. Only the header's order and padding change: its content, the tensors'
/// bytes and their offsets are safetensors' own.
pub(crate) fn serialize(
    views: Vec<(String, TensorView<'_>)>,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, CheckpointError> {
    let unreadable = |e: String| CheckpointError::Unreadable(e);
    let bytes =
        safetensors::serialize(views, Some(metadata)).map_err(|e| unreadable(e.to_string()))?;
    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + header_len]).map_err(|e| unreadable(e.to_string()))?;
    let mut sorted = serde_json::to_vec(&header).map_err(|e| unreadable(e.to_string()))?;
    // safetensors pads the header with spaces so that the data starts 8-byte aligned.
    while sorted.len() % 8 != 0 {
        sorted.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + sorted.len() + bytes.len() - 8 - header_len);
    out.extend_from_slice(&(sorted.len() as u64).to_le_bytes());
    out.extend_from_slice(&sorted);
    out.extend_from_slice(&bytes[8 + header_len..]);
    Ok(out)
}

/// A file whose format, version and checksum have been verified.
pub(crate) struct Unpacked<'a> {
    meta: HashMap<String, String>,
    file: SafeTensors<'a>,
    names: Vec<String>,
}

impl<'a> Unpacked<'a> {
    /// Opens `bytes` as a file of `format`, version 1 to `version`, and checks its checksum.
    pub fn open(bytes: &'a [u8], format: &str, version: u32) -> Result<Self, CheckpointError> {
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| CheckpointError::Unreadable(e.to_string()))?;
        let meta = meta
            .metadata()
            .clone()
            .ok_or_else(|| meta_err("format", "no metadata"))?;
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| CheckpointError::Unreadable(e.to_string()))?;
        let mut names: Vec<String> = file.names().into_iter().map(str::to_string).collect();
        names.sort();
        let this = Self { meta, file, names };
        if this.field("format")? != format {
            return Err(meta_err(
                "format",
                format!("`{}` is not {format}", this.field("format")?),
            ));
        }
        let found = this.field("format_version")?;
        if !(1..=version).any(|v| v.to_string() == found) {
            return Err(CheckpointError::Version {
                found: this.field("format_version")?.to_string(),
                supported: version,
            });
        }
        let mut data = Vec::with_capacity(this.names.len());
        for name in &this.names {
            data.push(
                this.file
                    .tensor(name)
                    .map_err(|e| CheckpointError::Unreadable(e.to_string()))?
                    .data(),
            );
        }
        let found = checksum(&this.meta, data.into_iter());
        let written = this.field("checksum")?;
        let expected =
            u32::from_str_radix(written, 16).map_err(|e| meta_err("checksum", e.to_string()))?;
        // Exactly as written (8 lower-case digits): a changed letter case is a change too.
        if found != expected || written != format!("{found:08x}") {
            return Err(CheckpointError::Checksum { expected, found });
        }
        Ok(this)
    }

    /// Metadata field `name`.
    pub fn field(&self, name: &'static str) -> Result<&str, CheckpointError> {
        self.meta
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| meta_err(name, "missing"))
    }

    /// Metadata field `name` as a number.
    pub fn number(&self, name: &'static str) -> Result<u64, CheckpointError> {
        self.field(name)?
            .parse::<u64>()
            .map_err(|e| meta_err(name, e.to_string()))
    }

    /// Refuses a file whose `field` is not `expected` (`what` names it in the error).
    pub fn expect(
        &self,
        what: &'static str,
        field: &'static str,
        expected: String,
    ) -> Result<(), CheckpointError> {
        let found = self.field(field)?;
        if found == expected {
            Ok(())
        } else {
            Err(CheckpointError::Mismatch {
                what,
                found: found.to_string(),
                expected,
            })
        }
    }

    /// Tensor `name`, which must be there.
    fn tensor(&self, name: &str) -> Result<safetensors::tensor::TensorView<'a>, CheckpointError> {
        self.file.tensor(name).map_err(|_| CheckpointError::Tensor {
            name: name.to_string(),
            problem: "missing".to_string(),
        })
    }

    /// The bytes of tensor `name`, which must be `dtype` of length `len`.
    pub fn read(&self, name: &str, dtype: Dtype, len: usize) -> Result<&'a [u8], CheckpointError> {
        let t = self.tensor(name)?;
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
        Ok(t.data())
    }

    /// The length of one-dimensional tensor `name`.
    pub fn len_of(&self, name: &str) -> Result<usize, CheckpointError> {
        match self.tensor(name)?.shape() {
            [len] => Ok(*len),
            shape => Err(CheckpointError::Tensor {
                name: name.to_string(),
                problem: format!("shape {shape:?}, expected one dimension"),
            }),
        }
    }

    /// Refuses a file with other tensors than the `used` ones read.
    pub fn all_read(&self, used: usize) -> Result<(), CheckpointError> {
        if used == self.names.len() {
            return Ok(());
        }
        Err(CheckpointError::Tensor {
            name: self.names.join(", "),
            problem: format!("{} tensors in the file, {used} expected", self.names.len()),
        })
    }
}

/// The safetensors type of parameters of type `P`.
pub(crate) fn param_dtype<P: Param>() -> Dtype {
    match P::NAME {
        "bfloat16" => Dtype::BF16,
        "float16" => Dtype::F16,
        _ => Dtype::F32,
    }
}

/// The parameters as tensors `param.<i>` in their own type, and the `params` field (how many).
pub(crate) fn param_entries<P: Param>(params: Option<&[&[P]]>) -> (Vec<Entry>, String) {
    let params = params.unwrap_or(&[]);
    let entries = params
        .iter()
        .enumerate()
        .map(|(i, p)| Entry {
            name: format!("param.{i}"),
            dtype: param_dtype::<P>(),
            len: p.len(),
            bytes: P::to_le_bytes(p),
        })
        .collect();
    (entries, params.len().to_string())
}

/// The parameters a file holds (its `params` field; version-1 files hold none): each
/// `param.<i>` in `P`'s type and, when the file has state for `lens.len()` tensors, as long as
/// tensor `i`. Returns them (`None` when the file holds none) and how many tensors were read.
#[allow(clippy::type_complexity)]
pub(crate) fn read_params<P: Param>(
    file: &Unpacked<'_>,
    lens: &[usize],
) -> Result<(Option<Vec<Vec<P>>>, usize), CheckpointError> {
    let count = match file.field("params") {
        Ok(_) => file.number("params")?,
        Err(_) if file.field("format_version")? == "1" => 0,
        Err(e) => return Err(e),
    };
    if count == 0 {
        return Ok((None, 0));
    }
    // No more than the file has tensors (checked before anything is allocated for them).
    let count = match usize::try_from(count) {
        Ok(n) if n <= file.names.len() => n,
        _ => {
            return Err(meta_err(
                "params",
                format!(
                    "{count} parameter tensors in a file of {}",
                    file.names.len()
                ),
            ))
        }
    };
    if !lens.is_empty() && count != lens.len() {
        return Err(meta_err(
            "params",
            format!("{count} parameter tensors for {} state tensors", lens.len()),
        ));
    }
    let mut params = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("param.{i}");
        let len = match lens.get(i) {
            Some(&len) => len,
            None => file.len_of(&name)?,
        };
        params.push(P::from_le_bytes(file.read(
            &name,
            param_dtype::<P>(),
            len,
        )?));
    }
    Ok((Some(params), count))
}

/// Refuses `params` that do not fit state for `lens.len()` tensors (when there is state): a file
/// the loader would refuse is not written.
pub(crate) fn check_params<P>(
    params: Option<&[&[P]]>,
    lens: &[usize],
) -> Result<(), CheckpointError> {
    let Some(params) = params else {
        return Ok(());
    };
    if lens.is_empty() {
        return Ok(());
    }
    let fits = params.len() == lens.len() && params.iter().zip(lens).all(|(p, n)| p.len() == *n);
    if fits {
        Ok(())
    } else {
        Err(CheckpointError::Tensor {
            name: "params".to_string(),
            problem: format!(
                "{} parameter tensors of lengths {:?} for state of lengths {lens:?}",
                params.len(),
                params.iter().map(|p| p.len()).collect::<Vec<_>>()
            ),
        })
    }
}
