//! How much memory a model needs to run at a context length, sized the way llama.cpp sizes it:
//! the weights as mapped, plus an f16 KV cache of `n_head_kv × head_dim` per layer for K and for V.
//! As in llama.cpp's tools (`llama-cli`, `llama-server`: one sequence, `n_ubatch` 512, `swa_full`
//! off), the context is padded to 256 cells, and layers with sliding-window attention keep only
//! `pad(min(n_ctx, n_swa + n_ubatch), 256)` cells (`llama_kv_cache_iswa`). Which layers slide follows
//! the file's `sliding_window_pattern` when present, else each architecture's default pattern
//! (`src/models/*.cpp`, `load_swa_pattern`). Hybrid lfm2 keeps KV only on its attention layers
//! (`head_count_kv` not 0) and an f32 conv state of `(shortconv.l_cache - 1) × n_embd` per conv
//! layer for its one sequence (`llama_memory_recurrent`, `n_embd_r()`), whatever the context.
//! Compute buffers are not included.

use std::fmt;

use crate::arch::{ArchError, HParams};
use crate::gguf::Gguf;

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

/// Architectures for which llama.cpp creates no KV cache at all (`llama_model::create_memory` returns
/// none): encoder-only embedding models and diffusion models, which attend within one micro-batch.
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

fn pad(x: u64, to: u64) -> u64 {
    x.div_ceil(to).saturating_mul(to)
}

/// The machine's physical memory in bytes, where the platform says (the budget a KV cache is held
/// to before it is allocated).
pub fn physical_memory() -> Option<u64> {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let (pages, size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if pages > 0 && size > 0 {
            return (pages as u64).checked_mul(size as u64);
        }
    }
    None
}

/// Estimates the memory to run the model whose first shard is `g` at context `n_ctx`, with
/// `weights_bytes` of tensor data (all shards).
pub fn estimate(
    g: &Gguf<'_>,
    weights_bytes: u64,
    n_ctx: u64,
) -> Result<MemoryEstimate, MemoryError> {
    let h = HParams::read(g).map_err(|e| match e {
        ArchError::NoArchitecture => MemoryError::NoArchitecture,
        ArchError::MissingKey { key } => MemoryError::MissingKey { key },
        ArchError::BadKey { key, why } => MemoryError::BadKey { key, why },
    })?;
    let arch = h.arch.as_str();
    let n_layer = h.n_layer;
    let mut notes = Vec::new();
    let n_ctx_padded = pad(n_ctx.max(1), KV_PAD);

    // An encoder (nomic-bert...) has heads but no cache: llama.cpp allocates none for it.
    let no_cache = has_no_kv_cache(arch);
    if h.n_head.is_none() || no_cache {
        notes.push(if no_cache {
            format!("{arch} runs without a KV cache in llama.cpp (attention within one batch)")
        } else {
            format!("{arch} has no attention heads in its metadata: no KV cache sized")
        });
        if h.recurrent {
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
    }
    let n_head_kv = &h.n_head_kv;
    let head_k = h.head_k().ok_or_else(|| MemoryError::MissingKey {
        key: h.key("attention.key_length"),
    })?;
    let head_v = h.head_v().unwrap_or(head_k);
    if let Some(rank) = h.kv_lora_rank {
        notes.push(format!("{arch} uses multi-head latent attention (kv_lora_rank {rank}); the cache is sized as plain attention and may be smaller in llama.cpp"));
    }
    // lfm2: the conv layers' state (one cell: llama.cpp's tools run one sequence).
    let mut recurrent = 0u64;
    if arch == "lfm2" {
        let l_cache = h.shortconv_l_cache.ok_or_else(|| MemoryError::MissingKey {
            key: h.key("shortconv.l_cache"),
        })?;
        let n_embd = h.n_embd.ok_or_else(|| MemoryError::MissingKey {
            key: h.key("embedding_length"),
        })?;
        let n_conv = n_head_kv.iter().filter(|&&k| k == 0).count() as u64;
        recurrent = l_cache
            .saturating_sub(1)
            .checked_mul(n_embd)
            .and_then(|b| b.checked_mul(4))
            .and_then(|b| b.checked_mul(n_conv))
            .ok_or_else(|| MemoryError::BadKey {
                key: h.key("shortconv.l_cache"),
                why: "makes a conv state that overflows a 64-bit size".into(),
            })?;
    } else if h.recurrent {
        notes.push(format!("{arch} is hybrid or recurrent: its recurrent state is not sized and its attention layers may be fewer"));
    }
    let n_swa = h.n_swa;
    let is_swa = &h.is_swa;
    if h.swa_unused {
        notes.push(format!("{arch} sets a sliding window of {n_swa} but llama.cpp uses it on no layer of this architecture"));
    }

    // gemma3n: the last layers reuse the KV cache of earlier ones.
    let shared = h.shared_kv_layers;
    let n_layer_kv_from_start = n_layer.saturating_sub(shared);

    let swa_cells = if is_swa.iter().any(|&s| s) {
        pad(n_ctx_padded.min(n_swa.saturating_add(N_UBATCH)), KV_PAD)
    } else {
        0
    };
    // Checked all the way: a size that does not fit in u64 is an error, never a wrap to "fits".
    let overflow = || MemoryError::BadKey {
        key: format!("{arch}.attention.head_count_kv"),
        why: format!("the KV cache at a context of {n_ctx} overflows a 64-bit size"),
    };
    let (mut full, mut swa, mut n_kv, mut n_swa_layers) = (0u64, 0u64, 0u64, 0u64);
    for il in 0..n_layer as usize {
        if (il as u64) >= n_layer_kv_from_start || n_head_kv[il] == 0 {
            continue;
        }
        n_kv += 1;
        let per_cell = head_k
            .checked_add(head_v)
            .and_then(|h| h.checked_mul(n_head_kv[il]))
            .and_then(|h| h.checked_mul(2))
            .ok_or_else(overflow)?;
        if is_swa[il] {
            n_swa_layers += 1;
            swa = per_cell
                .checked_mul(swa_cells)
                .and_then(|b| b.checked_add(swa))
                .ok_or_else(overflow)?;
        } else {
            full = per_cell
                .checked_mul(n_ctx_padded)
                .and_then(|b| b.checked_add(full))
                .ok_or_else(overflow)?;
        }
    }
    let kv = full.checked_add(swa).ok_or_else(overflow)?;
    let total = weights_bytes
        .checked_add(kv)
        .and_then(|t| t.checked_add(recurrent))
        .ok_or_else(overflow)?;
    Ok(MemoryEstimate {
        n_ctx,
        n_ctx_padded,
        weights_bytes,
        kv_bytes: kv,
        kv_full_bytes: full,
        kv_swa_bytes: swa,
        recurrent_state_bytes: recurrent,
        n_layers: n_layer,
        n_layers_swa: n_swa_layers,
        n_layers_kv: n_kv,
        swa_cache_cells: if n_swa_layers > 0 { swa_cells } else { 0 },
        total_bytes: total,
        notes,
    })
}
