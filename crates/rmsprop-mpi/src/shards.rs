//! Sharded checkpoints: one file per rank plus a manifest, written atomically, and loading
//! onto any number of ranks (the state is re-partitioned when the count changed).
//!
//! A checkpoint is a folder `DIR/step-NNNNNNNNNN/` holding `shard-R.safetensors` for every rank
//! `R` (the library's checkpoint format: the inner optimizer's snapshot for the rank's segments
//! and the rank's range of the parameters) and `manifest.json` (ranks, partition, the inner
//! optimizer's kind and configuration, counters, each shard's size and CRC-32, and the caller's
//! own data). `DIR/latest` names the newest complete checkpoint; it is replaced only after every
//! shard and the manifest are on disk, so a run killed mid-write leaves the previous checkpoint
//! in place.

use std::path::{Path, PathBuf};

use mpi::datatype::Equivalence;
use mpi::traits::{Communicator, CommunicatorCollectives};
use rmsprop::checkpoint::{self, CheckpointError, Checkpointable, Snapshot, TensorSnapshot};
use rmsprop::Float;
use serde_json::{json, Value};

use crate::partition::{Partition, Segment};
use crate::sharded::Sharded;

/// The manifest's format name.
pub const FORMAT: &str = "rmsprop-sharded";
/// The manifest's format version.
pub const VERSION: u64 = 1;

/// Why a sharded checkpoint could not be written or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The manifest is unreadable or does not describe this model.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A shard is missing, has another size or checksum than the manifest records, or does not
    /// fit the partition.
    #[error("shard {path}: {message}")]
    Shard {
        /// The shard's file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The library refused a shard's content.
    #[error("{path}: {source}")]
    Checkpoint {
        /// The shard's file.
        path: PathBuf,
        /// The library's error.
        source: CheckpointError,
    },
}

fn io(path: &Path, e: impl ToString) -> ShardError {
    ShardError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn shard_name(rank: usize) -> String {
    format!("shard-{rank}.safetensors")
}

/// Writes a sharded checkpoint of `sharded` and `params` (identical on every rank) into `dir`,
/// with `extra` (the caller's data, e.g. the epoch) in the manifest. Every rank must call it.
/// Returns the checkpoint's folder.
///
/// # Errors
/// [`ShardError::Io`] when a file cannot be written; `DIR/latest` still names the previous
/// checkpoint then.
pub fn save<T, O, C>(
    dir: &Path,
    sharded: &Sharded<T, O, C>,
    params: &[&[T]],
    extra: Value,
) -> Result<PathBuf, ShardError>
where
    T: Float + Equivalence,
    O: Checkpointable<T>,
    C: Communicator + CommunicatorCollectives,
{
    let comm = sharded.comm();
    let (rank, ranks) = (comm.rank() as usize, comm.size() as usize);
    let folder = dir.join(format!("step-{:010}", sharded.steps()));
    std::fs::create_dir_all(&folder).map_err(|e| io(&folder, e))?;
    let own: Vec<&[T]> = sharded
        .segments()
        .iter()
        .map(|s| &params[s.tensor][s.start..s.end])
        .collect();
    let bytes =
        checkpoint::to_bytes(sharded.inner(), Some(&own)).map_err(|e| ShardError::Checkpoint {
            path: folder.join(shard_name(rank)),
            source: e,
        })?;
    let path = folder.join(shard_name(rank));
    let written = checkpoint::write_atomic(&path, &bytes).map_err(|e| io(&path, e));
    // Every rank reports its file's size and checksum (or its failure) to every rank.
    let mine = [
        if written.is_ok() { 1.0 } else { 0.0 },
        bytes.len() as f64,
        crc32fast::hash(&bytes) as f64,
    ];
    let mut all = vec![0.0f64; 3 * ranks];
    comm.all_gather_into(&mine[..], &mut all[..]);
    written?;
    if let Some(r) = all.chunks(3).position(|r| r[0] == 0.0) {
        return Err(io(
            &folder.join(shard_name(r)),
            "rank could not write its shard",
        ));
    }
    if rank == 0 {
        let snapshot = sharded.inner().snapshot();
        let partition = sharded.partition();
        let manifest = json!({
            "format": FORMAT,
            "version": VERSION,
            "dtype": T::DTYPE,
            "ranks": ranks,
            "lengths": partition.lengths(),
            "align": partition.align(),
            "ranges": partition.ranges().iter().map(|r| [r.start, r.end]).collect::<Vec<_>>(),
            "kind": snapshot.kind,
            "config": snapshot.config,
            "steps": sharded.steps(),
            "skipped_steps": sharded.skipped_steps(),
            "shards": all.chunks(3).enumerate().map(|(r, c)| json!({
                "file": shard_name(r), "bytes": c[1] as u64, "crc32": format!("{:08x}", c[2] as u32),
            })).collect::<Vec<_>>(),
            "extra": extra,
        });
        let path = folder.join("manifest.json");
        let text = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
        checkpoint::write_atomic(&path, &text).map_err(|e| io(&path, e))?;
        let latest = dir.join("latest");
        let name = folder.file_name().expect("a step folder").to_string_lossy();
        checkpoint::write_atomic(&latest, name.as_bytes()).map_err(|e| io(&latest, e))?;
    }
    comm.barrier();
    Ok(folder)
}

/// What [`load`] restored besides the optimizer.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded<T> {
    /// The parameters, every tensor.
    pub params: Vec<Vec<T>>,
    /// The caller's data saved with the checkpoint.
    pub extra: Value,
    /// The folder loaded.
    pub folder: PathBuf,
    /// How many ranks wrote it.
    pub ranks: usize,
}

/// Loads the newest complete checkpoint in `dir` (the one `DIR/latest` names) into `sharded`,
/// whatever number of ranks wrote it: each rank reads every shard, checks it against the
/// manifest, rebuilds every tensor's state in full and keeps the part in its own range.
///
/// # Errors
/// A [`ShardError`] naming the manifest or the shard that is missing, truncated, of another
/// size or checksum, or that does not fit this model or optimizer; `sharded` is unchanged then.
pub fn load<T, O, C>(
    dir: &Path,
    sharded: &mut Sharded<T, O, C>,
    groups: Option<&[usize]>,
) -> Result<Loaded<T>, ShardError>
where
    T: Float + Equivalence,
    O: Checkpointable<T>,
    C: Communicator + CommunicatorCollectives,
{
    let latest = dir.join("latest");
    let name = std::fs::read_to_string(&latest).map_err(|e| io(&latest, e))?;
    let folder = dir.join(name.trim());
    let manifest_path = folder.join("manifest.json");
    let bad = |message: String| ShardError::Manifest {
        path: manifest_path.clone(),
        message,
    };
    let text = std::fs::read(&manifest_path).map_err(|e| io(&manifest_path, e))?;
    let m: Value = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    if m["format"] != FORMAT || m["version"] != VERSION {
        return Err(bad(format!(
            "format {} version {}, expected {FORMAT} version {VERSION}",
            m["format"], m["version"]
        )));
    }
    if m["dtype"] != T::DTYPE {
        return Err(bad(format!("dtype {}, expected {}", m["dtype"], T::DTYPE)));
    }
    let lengths: Vec<usize> =
        serde_json::from_value(m["lengths"].clone()).map_err(|e| bad(e.to_string()))?;
    if lengths != sharded.partition().lengths() {
        return Err(bad(format!(
            "tensor lengths {lengths:?} differ from this model's {:?}",
            sharded.partition().lengths()
        )));
    }
    let old_ranks = m["ranks"]
        .as_u64()
        .ok_or_else(|| bad("`ranks` missing".into()))? as usize;
    let align = m["align"]
        .as_u64()
        .ok_or_else(|| bad("`align` missing".into()))? as usize;
    let old = Partition::new(&lengths, old_ranks.max(1), align);
    let recorded: Vec<[usize; 2]> =
        serde_json::from_value(m["ranges"].clone()).map_err(|e| bad(e.to_string()))?;
    if recorded.iter().map(|r| r[0]..r[1]).collect::<Vec<_>>() != old.ranges() {
        return Err(bad(
            "`ranges` do not match the partition of `lengths`".into()
        ));
    }
    let shards = m["shards"]
        .as_array()
        .ok_or_else(|| bad("`shards` missing".into()))?;
    if shards.len() != old_ranks {
        return Err(bad(format!(
            "{} shards listed for {old_ranks} ranks",
            shards.len()
        )));
    }

    // Every shard: present, of the recorded size and checksum, readable.
    let mut snapshots = Vec::with_capacity(old_ranks);
    let mut params: Vec<Vec<T>> = lengths.iter().map(|&n| vec![T::ZERO; n]).collect();
    for (r, entry) in shards.iter().enumerate() {
        let path = folder.join(shard_name(r));
        let shard_err = |message: String| ShardError::Shard {
            path: path.clone(),
            message,
        };
        let bytes = std::fs::read(&path).map_err(|e| shard_err(e.to_string()))?;
        if entry["bytes"].as_u64() != Some(bytes.len() as u64) {
            return Err(shard_err(format!(
                "{} bytes, the manifest records {}",
                bytes.len(),
                entry["bytes"]
            )));
        }
        let crc = format!("{:08x}", crc32fast::hash(&bytes));
        if entry["crc32"].as_str() != Some(crc.as_str()) {
            return Err(shard_err(format!(
                "CRC-32 {crc}, the manifest records {}",
                entry["crc32"]
            )));
        }
        let (snapshot, values) =
            checkpoint::read::<T>(&bytes).map_err(|e| ShardError::Checkpoint {
                path: path.clone(),
                source: e,
            })?;
        let segments = old.segments(r);
        let values = values.unwrap_or_default();
        if values.len() != segments.len() {
            return Err(shard_err(format!(
                "{} parameter segments, the partition has {}",
                values.len(),
                segments.len()
            )));
        }
        for (s, v) in segments.iter().zip(&values) {
            if v.len() != s.len() {
                return Err(shard_err(format!(
                    "segment of tensor {} has {} elements, expected {}",
                    s.tensor,
                    v.len(),
                    s.len()
                )));
            }
            params[s.tensor][s.start..s.end].copy_from_slice(v);
        }
        snapshots.push(snapshot);
    }

    // The state of every tensor in full, then this rank's part of it.
    let rank = sharded.comm().rank() as usize;
    let old_segments: Vec<Vec<Segment>> = (0..old_ranks).map(|r| old.segments(r)).collect();
    let new_segments = sharded.segments().to_vec();
    let nodes: Vec<&Snapshot<T>> = snapshots.iter().collect();
    let snapshot = repartition(&nodes, &old_segments, &new_segments, &lengths, groups, None)
        .map_err(|message| ShardError::Shard {
            path: folder.clone(),
            message,
        })?;
    // All or nothing: a wrapper may have restored some levels before one refuses.
    let previous = sharded.inner().snapshot();
    if let Err(e) = sharded.inner_mut().restore(snapshot) {
        sharded
            .inner_mut()
            .restore(previous)
            .expect("the optimizer's own snapshot restores");
        return Err(ShardError::Checkpoint {
            path: folder.join(shard_name(rank.min(old_ranks - 1))),
            source: e,
        });
    }
    sharded.quiet_inner();
    let steps = m["steps"].as_u64().unwrap_or(0);
    let skipped = m["skipped_steps"].as_u64().unwrap_or(0);
    sharded.set_counters(steps, skipped);
    Ok(Loaded {
        params,
        extra: m["extra"].clone(),
        folder,
        ranks: old_ranks,
    })
}

/// Rebuilds one level of the snapshot tree for the new segments from the same level of every
/// old rank's tree. A level's tensors belong to the segments of its parameter group (`group`,
/// set below a `param_groups` level) in segment order.
fn repartition<T: Float>(
    old: &[&Snapshot<T>],
    old_segments: &[Vec<Segment>],
    new_segments: &[Segment],
    lengths: &[usize],
    groups: Option<&[usize]>,
    group: Option<usize>,
) -> Result<Snapshot<T>, String> {
    let first = old[0];
    let mut out = Snapshot::node(
        &first.kind,
        first.config.clone(),
        first.steps,
        first.skipped_steps,
    );
    out.variant = first.variant.clone();
    out.extra = first.extra.clone();
    let in_group = |s: &Segment| match (groups, group) {
        (Some(g), Some(k)) => g[s.tensor] == k,
        _ => true,
    };
    for (c, _) in first.children.iter().enumerate() {
        let children: Vec<&Snapshot<T>> = old
            .iter()
            .map(|n| {
                n.children
                    .get(c)
                    .ok_or_else(|| format!("a shard's `{}` level lacks child {c}", n.kind))
            })
            .collect::<Result<_, _>>()?;
        let child_group = if first.kind == "param_groups" {
            Some(c)
        } else {
            group
        };
        out.children.push(repartition(
            &children,
            old_segments,
            new_segments,
            lengths,
            groups,
            child_group,
        )?);
    }
    if first.kind == "param_groups" {
        // Each group's tensor count is this rank's count of segments in it.
        let groups = groups.ok_or("parameter groups need the tensors' groups to re-partition")?;
        if let Some(list) = out.extra["groups"].as_array_mut() {
            for (k, g) in list.iter_mut().enumerate() {
                g["tensors"] = json!(new_segments
                    .iter()
                    .filter(|s| groups[s.tensor] == k)
                    .count());
            }
        }
    }
    if old.iter().all(|n| n.tensors.is_empty()) {
        return Ok(out);
    }
    // Whole tensors from the old segments (each old rank's tensors are its segments in order).
    let mut whole: Vec<Option<TensorSnapshot<T>>> = vec![None; lengths.len()];
    for (r, node) in old.iter().enumerate() {
        let segs: Vec<&Segment> = old_segments[r].iter().filter(|s| in_group(s)).collect();
        if node.tensors.len() != segs.len() {
            return Err(format!(
                "rank {r}'s `{}` state has {} tensors, its range has {} segments",
                node.kind,
                node.tensors.len(),
                segs.len()
            ));
        }
        for (s, t) in segs.iter().zip(&node.tensors) {
            if t.len != s.len() {
                return Err(format!(
                    "rank {r}: a segment of tensor {} holds {} elements, expected {}",
                    s.tensor,
                    t.len,
                    s.len()
                ));
            }
            let w = whole[s.tensor].get_or_insert_with(|| TensorSnapshot {
                step: t.step,
                len: lengths[s.tensor],
                buffers: t
                    .buffers
                    .iter()
                    .map(|(name, _)| (name.clone(), vec![T::ZERO; lengths[s.tensor]]))
                    .collect(),
            });
            if w.step != t.step || w.buffers.len() != t.buffers.len() {
                return Err(format!(
                    "rank {r}: the segments of tensor {} disagree on their state",
                    s.tensor
                ));
            }
            for ((name, full), (other, part)) in w.buffers.iter_mut().zip(&t.buffers) {
                if name != other || part.len() != s.len() {
                    return Err(format!(
                        "rank {r}: buffer `{other}` of tensor {} does not fit",
                        s.tensor
                    ));
                }
                full[s.start..s.end].copy_from_slice(part);
            }
        }
    }
    for s in new_segments.iter().filter(|s| in_group(s)) {
        let w = whole[s.tensor]
            .as_ref()
            .ok_or_else(|| format!("no shard holds the state of tensor {}", s.tensor))?;
        out.tensors.push(TensorSnapshot {
            step: w.step,
            len: s.len(),
            buffers: w
                .buffers
                .iter()
                .map(|(name, full)| (name.clone(), full[s.start..s.end].to_vec()))
                .collect(),
        });
    }
    Ok(out)
}
