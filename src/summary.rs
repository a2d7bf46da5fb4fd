//! The facts `pocket inspect` leads with, computed from one file or all shards of a split model:
//! architecture, name, file type as llama.cpp names it, parameter count, bits per weight and the
//! breakdown by tensor type.

use std::collections::BTreeMap;

use crate::gguf::spec::{self, FtypeId, GgmlType, TypeId, KEY_FILE_TYPE, KEY_NAME};
use crate::gguf::Gguf;

/// Tensors of one type.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeShare {
    pub ty: GgmlType,
    pub count: usize,
    pub params: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub version: u32,
    pub endian: &'static str,
    pub alignment: u64,
    pub architecture: Option<String>,
    pub name: Option<String>,
    /// `general.file_type`, or llama.cpp's guess when absent.
    pub file_type: u32,
    pub file_type_guessed: bool,
    /// llama.cpp's name for it, e.g. `Q4_K - Medium` (with `(guessed) ` when guessed).
    pub file_type_name: String,
    pub n_params: u64,
    /// Sum of the shards' sizes.
    pub file_size: u64,
    /// Tensor data without padding (what llama.cpp divides by the parameter count for BPW).
    pub tensor_bytes: u64,
    pub bits_per_weight: f64,
    pub n_tensors: usize,
    /// Keys of the first shard.
    pub n_kv: usize,
    pub n_shards: usize,
    /// Most bytes first.
    pub by_type: Vec<TypeShare>,
}

pub fn summarize(shards: &[Gguf<'_>]) -> Summary {
    let first = &shards[0];
    let tensors = || shards.iter().flat_map(|g| g.tensors.iter());
    let n_params: u64 = tensors().map(|t| t.n_elements).sum();
    let tensor_bytes: u64 = tensors().map(|t| t.n_bytes).sum();

    let mut by: BTreeMap<TypeId, TypeShare> = BTreeMap::new();
    for t in tensors() {
        let e = by.entry(t.ty.id).or_insert(TypeShare {
            ty: t.ty,
            count: 0,
            params: 0,
            bytes: 0,
        });
        e.count += 1;
        e.params += t.n_elements;
        e.bytes += t.n_bytes;
    }
    let mut by_type: Vec<TypeShare> = by.into_values().collect();
    by_type.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.ty.id.cmp(&b.ty.id)));

    let (file_type, guessed) = match first
        .get_u64(KEY_FILE_TYPE)
        .and_then(|v| u32::try_from(v).ok())
    {
        Some(ft) => (ft, false),
        None => (guess_file_type(shards).raw(), true),
    };
    let base = spec::ftype_name(file_type).unwrap_or("unknown, may not work");
    let file_type_name = if guessed {
        format!("(guessed) {base}")
    } else {
        base.to_string()
    };

    Summary {
        version: first.version,
        endian: first.endian.name(),
        alignment: first.alignment,
        architecture: first.architecture().map(str::to_string),
        name: first.get_str(KEY_NAME).map(str::to_string),
        file_type,
        file_type_guessed: guessed,
        file_type_name,
        n_params,
        file_size: shards.iter().map(|g| g.file_size).sum(),
        tensor_bytes,
        bits_per_weight: if n_params == 0 {
            0.0
        } else {
            tensor_bytes as f64 * 8.0 / n_params as f64
        },
        n_tensors: tensors().count(),
        n_kv: first.kvs.len(),
        n_shards: shards.len(),
        by_type,
    }
}

/// llama.cpp's guess: the type with the most tensors, counting in tensor-name order and keeping the
/// first type to reach each new maximum (`llama_model_loader`'s constructor).
fn guess_file_type(shards: &[Gguf<'_>]) -> FtypeId {
    let mut names: Vec<(&str, TypeId)> = shards
        .iter()
        .flat_map(|g| g.tensors.iter().map(|t| (t.name, t.ty.id)))
        .collect();
    names.sort_unstable();
    let mut counts: BTreeMap<TypeId, u32> = BTreeMap::new();
    let (mut best, mut best_n) = (TypeId::F32, 0u32);
    for (_, id) in names {
        let c = counts.entry(id).or_insert(0);
        *c += 1;
        if *c > best_n {
            best_n = *c;
            best = id;
        }
    }
    spec::guess_ftype(best)
}
