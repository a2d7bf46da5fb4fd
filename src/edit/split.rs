//! Splitting a model into shards and merging shards back, byte for byte as `llama-gguf-split` does
//! (`tools/gguf-split/gguf-split.cpp`): shard `i` is `PREFIX-0000i-of-0000n.gguf`; the first shard
//! holds all metadata, every shard gets `split.no` (u16), `split.tensors.count` (i32) and
//! `split.count` (u16) in that order at the end of its keys; tensors keep their order; a new shard
//! starts every N tensors (`--split-max-tensors`) or when the tensors' sizes, each padded to 32 bytes
//! and without metadata, would pass the limit (`--split-max-size`, decimal M/G units). Files are
//! written as llama.cpp's `gguf_write` does: GGUF v3, trailing dimensions of 1 dropped.
//!
//! One deliberate difference: llama-gguf-split lays out every shard with 32-byte alignment even when
//! the input's `general.alignment` says otherwise (its outputs are then invalid); pocket honours the
//! key, which llama-gguf-split only matches when the alignment is 32 (the default, and every case
//! llama.cpp writes).

use std::path::{Path, PathBuf};

use super::{io_err, EditError, Result};
use crate::fsio::AtomicFile;
use crate::gguf::file::{split_path, split_prefix};
use crate::gguf::parse::KeyValue;
use crate::gguf::spec::{
    DEFAULT_ALIGNMENT, KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT,
};
use crate::gguf::validate::pad;
use crate::gguf::write::TensorSpec;
use crate::gguf::{Gguf, GgufWriter, Model, TensorInfo, Value};

/// When to start a new shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitBy {
    /// At most this many tensors per shard.
    Tensors(u64),
    /// At most this many bytes of (32-byte padded) tensor data per shard.
    Size(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitOptions {
    pub by: SplitBy,
    /// The first shard holds only metadata.
    pub no_tensor_first_split: bool,
}

/// One output shard: which input tensors it holds (indices into the input's tensors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub path: PathBuf,
    pub tensors: Vec<usize>,
    /// Size of the shard file.
    pub file_size: u64,
    /// Metadata size plus unpadded tensor bytes: llama-gguf-split's `total_size` in its plan.
    pub llama_total_size: u64,
}

/// `split_str_to_n_bytes`: `N` followed by `M` (10^6 bytes) or `G` (10^9 bytes), N a positive integer.
pub fn parse_size(s: &str) -> Result<u64> {
    let bad = || {
        EditError::Usage(format!(
            "--split-max-size {s}: give a positive whole number followed by M (megabytes) or G (gigabytes), e.g. 2G"
        ))
    };
    let (num, unit) = match s.strip_suffix('M') {
        Some(n) => (n, 1_000_000u64),
        None => (s.strip_suffix('G').ok_or_else(bad)?, 1_000_000_000u64),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(bad());
    }
    n.checked_mul(unit).ok_or_else(bad)
}

/// ggml writes `ggml_n_dims` dimensions: trailing 1s dropped, at least one.
fn trimmed_dims(t: &TensorInfo<'_>) -> Vec<u64> {
    let mut d = t.dims.clone();
    while d.len() > 1 && d.last() == Some(&1) {
        d.pop();
    }
    d
}

fn spec<'a>(t: &TensorInfo<'a>) -> TensorSpec<'a> {
    TensorSpec {
        name: t.name,
        dims: trimmed_dims(t),
        ty: t.ty,
    }
}

fn is_split_key(k: &str) -> bool {
    k == KEY_SPLIT_NO || k == KEY_SPLIT_COUNT || k == KEY_SPLIT_TENSORS_COUNT
}

fn kv<'a>(key: &'a str, value: Value<'a>) -> KeyValue<'a> {
    KeyValue {
        key,
        value,
        offset: 0,
    }
}

/// Which tensors go in which shard (`split_strategy`).
fn assign(g: &Gguf<'_>, opts: &SplitOptions) -> Result<Vec<Vec<usize>>> {
    let n = g.tensors.len();
    let mut shards: Vec<Vec<usize>> = vec![Vec::new()];
    if opts.no_tensor_first_split {
        shards.push(Vec::new());
    }
    if let SplitBy::Tensors(0) = opts.by {
        return Err(EditError::Usage(
            "--split-max-tensors must be at least 1".into(),
        ));
    }
    let mut curr = 0u64;
    for (i, t) in g.tensors.iter().enumerate() {
        let n_bytes = pad(t.n_bytes, DEFAULT_ALIGNMENT).unwrap_or(u64::MAX);
        let next = curr.saturating_add(n_bytes);
        let split = match opts.by {
            SplitBy::Size(max) => next > max,
            SplitBy::Tensors(k) => i > 0 && i < n && (i as u64).is_multiple_of(k),
        };
        if split {
            if shards.last().is_some_and(|s| s.is_empty()) {
                return Err(EditError::Split(format!(
                    "shard {} would hold no tensors (tensor '{}' alone is {} bytes): the size limit is too small",
                    shards.len(),
                    t.name,
                    t.n_bytes
                )));
            }
            shards.push(Vec::new());
            curr = n_bytes;
        } else {
            curr = next;
        }
        shards.last_mut().expect("one shard").push(i);
    }
    if shards.len() > u16::MAX as usize {
        return Err(EditError::Split(format!(
            "{} shards; split.count is a u16",
            shards.len()
        )));
    }
    Ok(shards)
}

/// The header of shard `no` of `count`.
fn shard_writer<'a>(
    g: &Gguf<'a>,
    tensors: &[usize],
    no: usize,
    count: usize,
) -> Result<GgufWriter<'a>> {
    let n_tensors = i32::try_from(g.tensors.len()).map_err(|_| {
        EditError::Split("more tensors than split.tensors.count (i32) holds".into())
    })?;
    let mut kvs: Vec<KeyValue<'a>> = if no == 0 {
        g.kvs
            .iter()
            .filter(|kv| !is_split_key(kv.key))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    kvs.push(kv(KEY_SPLIT_NO, Value::U16(no as u16)));
    kvs.push(kv(KEY_SPLIT_TENSORS_COUNT, Value::I32(n_tensors)));
    kvs.push(kv(KEY_SPLIT_COUNT, Value::U16(count as u16)));
    Ok(GgufWriter {
        version: 3,
        endian: g.endian,
        kvs,
        tensors: tensors.iter().map(|&i| spec(&g.tensors[i])).collect(),
    })
}

fn file_size(w: &GgufWriter<'_>) -> Result<u64> {
    let align = w.alignment()?;
    let mut n = w.header_len()?;
    for t in &w.tensors {
        n += pad(t.n_bytes().unwrap_or(0), align).unwrap_or(u64::MAX);
    }
    Ok(n)
}

/// The shards `split` would write for the input `g`, named from `prefix`.
pub fn plan_split(g: &Gguf<'_>, prefix: &str, opts: &SplitOptions) -> Result<Vec<Shard>> {
    let groups = assign(g, opts)?;
    let count = groups.len();
    groups
        .into_iter()
        .enumerate()
        .map(|(no, tensors)| {
            let w = shard_writer(g, &tensors, no, count)?;
            let meta = w.header_len()?;
            Ok(Shard {
                path: PathBuf::from(split_path(prefix, no as u32 + 1, count as u32)),
                llama_total_size: meta + tensors.iter().map(|&i| g.tensors[i].n_bytes).sum::<u64>(),
                file_size: file_size(&w)?,
                tensors,
            })
        })
        .collect()
}

/// Writes the shards of `plan` (from [`plan_split`] of the same `g`, read from `input`), all or
/// nothing: every shard goes to a temporary file first, and only when all are written and synced are
/// they renamed into place ([`crate::fsio::commit_all`]); none may be the input.
/// `progress` is called with the bytes of each tensor as it is written.
pub fn write_split(
    g: &Gguf<'_>,
    input: &Path,
    plan: &[Shard],
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let count = plan.len();
    for s in plan {
        crate::fsio::refuse_same(&s.path, &[input])?;
        crate::fsio::refuse_odd_target(&s.path)?;
    }
    let mut pending = Vec::with_capacity(count);
    for (no, s) in plan.iter().enumerate() {
        let w = shard_writer(g, &s.tensors, no, count)?;
        let mut out = AtomicFile::create(&s.path, &[input], Some(s.file_size))?;
        w.write(&mut out, |i, dst| {
            let t = &g.tensors[s.tensors[i]];
            dst.write_all(tensor_bytes(g, t)?)?;
            progress(t.n_bytes);
            Ok(())
        })
        .map_err(|e| io_err(&s.path, e))?;
        pending.push(out);
    }
    crate::fsio::commit_all(pending)?;
    Ok(())
}

fn tensor_bytes<'a>(g: &Gguf<'a>, t: &TensorInfo<'_>) -> std::io::Result<&'a [u8]> {
    g.tensor_data(t)
        .ok_or_else(|| std::io::Error::other(format!("tensor '{}': data not in the file", t.name)))
}

/// What a merge would write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergePlan {
    pub shards: Vec<PathBuf>,
    pub n_tensors: usize,
    pub file_size: u64,
}

/// The merged header: the first shard's keys with `split.count` set to 0 and moved last (so the
/// output is not taken for a split model), every shard's tensors in order.
fn merge_writer<'a>(shards: &[Gguf<'a>]) -> GgufWriter<'a> {
    let first = &shards[0];
    let mut kvs: Vec<KeyValue<'a>> = first
        .kvs
        .iter()
        .filter(|kv| kv.key != KEY_SPLIT_COUNT)
        .cloned()
        .collect();
    kvs.push(kv(KEY_SPLIT_COUNT, Value::U16(0)));
    GgufWriter {
        version: 3,
        endian: first.endian,
        kvs,
        tensors: shards
            .iter()
            .flat_map(|g| g.tensors.iter().map(spec))
            .collect(),
    }
}

/// Opens the shards of the split model whose first shard is `first`.
pub fn open_shards(first: &Path) -> Result<Model> {
    let raw = crate::gguf::GgufFile::open(first)?;
    let count = {
        let g = raw.gguf()?;
        match g.get(KEY_SPLIT_COUNT) {
            Some(Value::U16(c)) => *c as u32,
            Some(v) => {
                return Err(EditError::Split(format!(
                    "{}: split.count is {}, llama.cpp writes u16",
                    first.display(),
                    v.value_type().name()
                )))
            }
            None => {
                return Err(EditError::Split(format!(
                    "{}: no split.count key: not a shard of a split model",
                    first.display()
                )))
            }
        }
    };
    let p = first.to_string_lossy();
    if count >= 1 && split_prefix(&p, 1, count).is_none() {
        return Err(EditError::Split(format!(
            "{p}: not named like a first shard (PREFIX-00001-of-{count:05}.gguf)"
        )));
    }
    drop(raw);
    Ok(Model::open(first)?)
}

pub fn plan_merge(model: &Model) -> Result<MergePlan> {
    let shards = model.ggufs()?;
    let w = merge_writer(&shards);
    Ok(MergePlan {
        shards: model.files.iter().map(|f| f.path().to_path_buf()).collect(),
        n_tensors: w.tensors.len(),
        file_size: file_size(&w)?,
    })
}

/// Merges the shards of `model` into `out`, atomically; `out` may not be any shard. `progress` is
/// called with the bytes of each tensor as it is written.
pub fn write_merge(model: &Model, out: &Path, progress: &mut dyn FnMut(u64)) -> Result<MergePlan> {
    let plan = plan_merge(model)?;
    let shards = model.ggufs()?;
    let w = merge_writer(&shards);
    let index: Vec<(usize, usize)> = shards
        .iter()
        .enumerate()
        .flat_map(|(s, g)| (0..g.tensors.len()).map(move |t| (s, t)))
        .collect();
    let inputs: Vec<&Path> = plan.shards.iter().map(|p| p.as_path()).collect();
    let mut f = AtomicFile::create(out, &inputs, Some(plan.file_size))?;
    w.write(&mut f, |i, dst| {
        let (s, t) = index[i];
        let t = &shards[s].tensors[t];
        dst.write_all(tensor_bytes(&shards[s], t)?)?;
        progress(t.n_bytes);
        Ok(())
    })
    .map_err(|e| io_err(out, e))?;
    f.commit()?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_llama_gguf_split_reads_them() {
        assert_eq!(parse_size("2G").unwrap(), 2_000_000_000);
        assert_eq!(parse_size("128M").unwrap(), 128_000_000);
        for bad in ["", "G", "0M", "-1G", "1.5G", "2K", "2"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
