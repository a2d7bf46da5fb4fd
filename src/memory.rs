//! How much memory a model needs to run at a context length, sized the way llama.cpp sizes it:
//! the weights as mapped, plus an f16 KV cache of `n_head_kv × head_dim` per layer for K and for V.
//! As in llama.cpp's tools (`llama-cli`, `llama-server`: one sequence, `n_ubatch` 512, `swa_full`
//! off), the context is padded to 256 cells, and layers with sliding-window attention keep only
//! `pad(min(n_ctx, n_swa + n_ubatch), 256)` cells (`llama_kv_cache_iswa`). Which layers slide follows
//! the file's `sliding_window_pattern` when present, else each architecture's default pattern
//! (`src/models/*.cpp`, `load_swa_pattern`). Compute buffers are not included.

use std::fmt;

use crate::gguf::{Gguf, Value};

/// llama.cpp pads the context (and the SWA cache) to this many cells.
pub const KV_PAD: u64 = 256;
/// `n_ubatch` of llama.cpp's common tools.
pub const N_UBATCH: u64 = 512;

#[derive(Debug, Clone, PartialEq)]
pub struct MemoryEstimate {
    /// Context asked for.
    pub n_ctx: u64,
    /// Cells of the full-attention cache (the context padded to 256).
    pub n_ctx_padded: u64,
    pub weights_bytes: u64,
    pub kv_bytes: u64,
    pub kv_full_bytes: u64,
    pub kv_swa_bytes: u64,
    pub recurrent_state_bytes: u64,
    pub n_layers: u64,
    /// Layers with sliding-window attention (and a KV cache).
    pub n_layers_swa: u64,
    /// Layers that have a KV cache of their own.
    pub n_layers_kv: u64,
    /// Cells kept by sliding-window layers (0 without any).
    pub swa_cache_cells: u64,
    pub total_bytes: u64,
    /// What the estimate leaves out or had to assume.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryError {
    NoArchitecture,
    MissingKey { key: String },
    BadKey { key: String, why: String },
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::NoArchitecture => {
                f.write_str("cannot size the KV cache: general.architecture is missing")
            }
            MemoryError::MissingKey { key } => {
                write!(f, "cannot size the KV cache: key '{key}' is missing")
            }
            MemoryError::BadKey { key, why } => {
                write!(f, "cannot size the KV cache: key '{key}' {why}")
            }
        }
    }
}

impl std::error::Error for MemoryError {}

/// Default sliding-window pattern per architecture: (pattern, dense_first) as in llama.cpp's
/// `load_swa_pattern(ml, n_pattern, dense_first)` calls. Applies only when the file sets
/// `{arch}.attention.sliding_window` > 0.
const SWA_PATTERNS: &[(&str, u32, bool)] = &[
    ("afmoe", 4, false),
    ("cohere2", 4, false),
    ("cohere2moe", 4, true),
    ("exaone-moe", 4, false),
    ("exaone4", 4, false),
    ("gemma-embedding", 6, false),
    ("gemma2", 2, false),
    ("gemma3", 6, false),
    ("gemma3n", 5, false),
    ("laguna", 4, true),
    ("llama4", 4, false),
    ("mellum", 4, false),
    ("modern-bert", 3, true),
    ("muse-glimmer", 4, false),
    ("olmo2", 4, false),
    ("gpt-oss", 2, false),
    ("plamo3", 8, false),
    ("smallthinker", 4, true),
];

/// Architectures whose state is recurrent (no or partial KV cache); not sized here.
const RECURRENT: &[&str] = &[
    "mamba",
    "mamba2",
    "rwkv6",
    "rwkv6qwen2",
    "rwkv7",
    "arwkv7",
    "jamba",
    "falcon-h1",
    "granitehybrid",
    "lfm2",
    "nemotron_h",
    "plamo2",
    "qwen3next",
];

/// Architectures for which llama.cpp creates no KV cache at all (`llama_model::create_memory` returns
/// none): encoder-only embedding models and diffusion models, which attend within one micro-batch.
/// (zooexec: data only, so that it merges with the src/arch/ refactor.)
const NO_KV_CACHE: &[&str] = &[
    "bert",
    "jina-bert-v2",
    "jina-bert-v3",
    "nomic-bert",
    "nomic-bert-moe",
    "neo-bert",
    "eurobert",
    "wavtokenizer-dec",
    "modern-bert",
    "gemma-embedding",
    "dream",
    "llada",
    "llada-moe",
    "rnd1",
];

/// Whether llama.cpp runs `arch` without a KV cache (see [`NO_KV_CACHE`]).
pub fn has_no_kv_cache(arch: &str) -> bool {
    NO_KV_CACHE.contains(&arch)
}

/// A per-layer value: a single number, or an array with one entry per layer.
fn per_layer(g: &Gguf<'_>, key: &str, n_layer: u64) -> Result<Option<Vec<u64>>, MemoryError> {
    let bad = |why: String| MemoryError::BadKey {
        key: key.to_string(),
        why,
    };
    match g.get(key) {
        None => Ok(None),
        Some(Value::Array(a)) => {
            if a.len != n_layer {
                return Err(bad(format!("has {} entries for {n_layer} layers", a.len)));
            }
            a.iter()
                .map(|v| {
                    v.as_u64()
                        .ok_or_else(|| bad("holds a value that is not a count".into()))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        Some(v) => {
            let x = v
                .as_u64()
                .ok_or_else(|| bad(format!("is a {}, not a count", v.value_type().name())))?;
            Ok(Some(vec![x; n_layer as usize]))
        }
    }
}

fn get_count(g: &Gguf<'_>, key: &str) -> Result<Option<u64>, MemoryError> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| MemoryError::BadKey {
            key: key.into(),
            why: format!("is a {}, not a count", v.value_type().name()),
        }),
    }
}

fn pad(x: u64, to: u64) -> u64 {
    x.div_ceil(to) * to
}

/// Estimates the memory to run the model whose first shard is `g` at context `n_ctx`, with
/// `weights_bytes` of tensor data (all shards).
pub fn estimate(
    g: &Gguf<'_>,
    weights_bytes: u64,
    n_ctx: u64,
) -> Result<MemoryEstimate, MemoryError> {
    let arch = g.architecture().ok_or(MemoryError::NoArchitecture)?;
    let k = |s: &str| format!("{arch}.{s}");
    let n_layer = get_count(g, &k("block_count"))?.ok_or_else(|| MemoryError::MissingKey {
        key: k("block_count"),
    })?;
    if n_layer > 1 << 16 {
        return Err(MemoryError::BadKey {
            key: k("block_count"),
            why: format!("is {n_layer}, not a plausible layer count"),
        });
    }
    let mut notes = Vec::new();
    let n_ctx_padded = pad(n_ctx.max(1), KV_PAD);

    let n_head = per_layer(g, &k("attention.head_count"), n_layer)?;
    // An encoder (nomic-bert...) has heads but no cache: llama.cpp allocates none for it.
    let no_cache = has_no_kv_cache(arch);
    let Some(n_head) = n_head.filter(|_| !no_cache) else {
        notes.push(if no_cache {
            format!("{arch} runs without a KV cache in llama.cpp (attention within one batch)")
        } else {
            format!("{arch} has no attention heads in its metadata: no KV cache sized")
        });
        if RECURRENT.contains(&arch) {
            notes.push(format!("{arch} keeps a recurrent state, not sized here"));
        }
        return Ok(MemoryEstimate {
            n_ctx,
            n_ctx_padded,
            weights_bytes,
            kv_bytes: 0,
            kv_full_bytes: 0,
            kv_swa_bytes: 0,
            recurrent_state_bytes: 0,
            n_layers: n_layer,
            n_layers_swa: 0,
            n_layers_kv: 0,
            swa_cache_cells: 0,
            total_bytes: weights_bytes,
            notes,
        });
    };
    let n_head_kv =
        per_layer(g, &k("attention.head_count_kv"), n_layer)?.unwrap_or_else(|| n_head.clone());
    let n_embd = get_count(g, &k("embedding_length"))?;
    let max_head = n_head.iter().copied().max().unwrap_or(0);
    let head_k = match get_count(g, &k("attention.key_length"))? {
        Some(v) => v,
        None => match n_embd {
            Some(e) if max_head > 0 => e / max_head,
            _ => {
                return Err(MemoryError::MissingKey {
                    key: k("attention.key_length"),
                })
            }
        },
    };
    let head_v = get_count(g, &k("attention.value_length"))?.unwrap_or(head_k);
    if let Some(rank) = get_count(g, &k("attention.kv_lora_rank"))? {
        notes.push(format!("{arch} uses multi-head latent attention (kv_lora_rank {rank}); the cache is sized as plain attention and may be smaller in llama.cpp"));
    }
    if RECURRENT.contains(&arch) {
        notes.push(format!("{arch} is hybrid or recurrent: its recurrent state is not sized and its attention layers may be fewer"));
    }

    // Which layers slide.
    let n_swa = get_count(g, &k("attention.sliding_window"))?.unwrap_or(0);
    let mut is_swa = vec![false; n_layer as usize];
    if n_swa > 0 {
        match g.get(&k("attention.sliding_window_pattern")) {
            Some(Value::Array(a)) => {
                if a.len != n_layer {
                    return Err(MemoryError::BadKey {
                        key: k("attention.sliding_window_pattern"),
                        why: format!("has {} entries for {n_layer} layers", a.len),
                    });
                }
                for (il, v) in a.iter().enumerate() {
                    is_swa[il] = v
                        .as_bool()
                        .or_else(|| v.as_u64().map(|x| x != 0))
                        .unwrap_or(false);
                }
            }
            other => {
                let default = SWA_PATTERNS.iter().find(|(a, _, _)| *a == arch);
                let (pattern, dense_first) = match (other.and_then(|v| v.as_u64()), default) {
                    (Some(p), d) => (p, d.is_some_and(|d| d.2)),
                    (None, Some(&(_, p, d))) => (p as u64, d),
                    (None, None) => {
                        notes.push(format!("{arch} sets a sliding window of {n_swa} but llama.cpp uses it on no layer of this architecture"));
                        (1, false)
                    }
                };
                let known = other.is_some() || default.is_some();
                for (il, s) in is_swa.iter_mut().enumerate() {
                    let il = il as u64;
                    *s = known
                        && (pattern == 0
                            || if dense_first {
                                !il.is_multiple_of(pattern)
                            } else {
                                il % pattern < pattern - 1
                            });
                }
            }
        }
    }

    // gemma3n: the last layers reuse the KV cache of earlier ones.
    let shared = get_count(g, &k("attention.shared_kv_layers"))?.unwrap_or(0);
    let n_layer_kv_from_start = n_layer.saturating_sub(shared);

    let swa_cells = if is_swa.iter().any(|&s| s) {
        pad(n_ctx_padded.min(n_swa + N_UBATCH), KV_PAD)
    } else {
        0
    };
    let (mut full, mut swa, mut n_kv, mut n_swa_layers) = (0u64, 0u64, 0u64, 0u64);
    for il in 0..n_layer as usize {
        if (il as u64) >= n_layer_kv_from_start || n_head_kv[il] == 0 {
            continue;
        }
        n_kv += 1;
        let per_cell = 2 * n_head_kv[il] * (head_k + head_v);
        if is_swa[il] {
            n_swa_layers += 1;
            swa += per_cell * swa_cells;
        } else {
            full += per_cell * n_ctx_padded;
        }
    }
    let kv = full + swa;
    Ok(MemoryEstimate {
        n_ctx,
        n_ctx_padded,
        weights_bytes,
        kv_bytes: kv,
        kv_full_bytes: full,
        kv_swa_bytes: swa,
        recurrent_state_bytes: 0,
        n_layers: n_layer,
        n_layers_swa: n_swa_layers,
        n_layers_kv: n_kv,
        swa_cache_cells: if n_swa_layers > 0 { swa_cells } else { 0 },
        total_bytes: weights_bytes + kv,
        notes,
    })
}
