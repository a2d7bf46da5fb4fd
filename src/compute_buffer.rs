//! The compute and output buffers llama.cpp allocates beside the weights and the KV cache, sized as
//! its CPU backend sizes them for its common tools (`llama-cli`, `llama-completion`, `llama-server`:
//! one sequence, `n_batch` 2048, `n_ubatch` 512, flash attention on, which `flash_attn` AUTO gives on
//! the CPU) — the `CPU compute buffer size` and `CPU output buffer size` lines it prints at load.
//!
//! llama.cpp reserves its compute buffer by running ggml's graph allocator over the worst-case
//! graph of one micro-batch of `t = min(n_ctx, n_ubatch)` tokens (`llama_context::sched_reserve`);
//! for a causal model `n_ubatch` is first capped by `n_batch = min(n_ctx asked for, 2048)`. The
//! allocator reuses a tensor's memory once its last reader has run, so the buffer is the largest set
//! of tensors alive at one time, laid out without reuse where a later tensor does not fit a freed
//! hole. Two moments bound it, and for the graphs measured the larger of the two is the buffer (f32
//! activations, f16 masks, token ids and positions i32, KV row indices i64):
//! - the output: the final norm's two `n_embd × t` results (the normalised state and the scaled one,
//!   kept as the `t_embd` output) and the `n_vocab × t` logits: `4·t·(n_vocab + 2·n_embd)`;
//! - inside a layer: the attention masks (f16, `n_kv × t` for each cache, so this part grows with the
//!   context), the inputs (`24·t` bytes: tokens, positions, K and V row indices), the residual and
//!   normalised state and the FFN's gate, up and product: `4·t·(2·n_embd + 3·n_ff)`.
//!
//! lfm2's conv layers have a moment of their own: `in_proj`'s B, C, X beside the residual and
//! normalised state, B * X, the state-prefixed copy of it (`l_cache - 1` more values per channel), the
//! convolution and its gated output: `4·t·9·n_embd + 4·(l_cache - 1)·n_embd`, plus the masks and
//! inputs. Fitted to llama.cpp's buffer for two tiny lfm2 (n_embd 128, n_ff 256; l_cache 3 and 1025;
//! contexts 512, 4096, 32768: testdata/exec/tiny-lfm2-mem.txt); at LFM2's real sizes (n_ff ≥ 4.5
//! n_embd) the FFN's moment is the larger.
//!
//! Encoder-only models (BERT family, no KV cache in llama.cpp) attend within the micro-batch: one
//! `t × t` mask, inputs of `12·t` (tokens, positions, token types), and one more `n_embd` state for
//! their post-layer norm: `4·t·(3·n_embd + 3·n_ff) + 2·t² + 12·t`; they have no logits.
//!
//! The output buffer holds one sequence's logits (`n_vocab` f32) — reserved for every model, an
//! embedding model too, as llama-completion creates its context.
//!
//! Checked against llama.cpp's log lines (testdata/expected/compute-buffer.txt,
//! scripts/make-kv-golden.sh) for llama (the tiny test model), qwen2 (Qwen2.5-Coder 1.5B), gemma3
//! (gemma-3 270M) and nomic-bert (nomic-embed-text-v1.5) at contexts from 100 to 32768: equal to the
//! 0.01 MiB llama.cpp prints, and within 2 KiB of the 0.0001 MiB of its debug line — what is left
//! is the allocator's alignment and a few one-value tensors. Other architectures have other graphs;
//! for them this is an approximation of the same shape, and the estimate says so.

use crate::gguf::{Gguf, Value};
use crate::memory::MemoryEstimate;

/// `n_batch` of llama.cpp's common tools.
pub const N_BATCH: u64 = 2048;
/// `n_ubatch` of llama.cpp's common tools.
pub const N_UBATCH: u64 = 512;

/// Architectures whose compute buffer was measured against llama.cpp (the rest are approximated).
const MEASURED: &[&str] = &["llama", "qwen2", "gemma3", "nomic-bert"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeEstimate {
    /// llama.cpp's `n_ubatch` for this context.
    pub n_ubatch: u64,
    /// Tokens of the micro-batch llama.cpp reserves the graph for (`n_ubatch`, at most the padded
    /// context).
    pub n_tokens: u64,
    /// llama.cpp's `CPU compute buffer size`.
    pub compute_bytes: u64,
    /// llama.cpp's `CPU output buffer size`.
    pub output_bytes: u64,
    pub notes: Vec<String>,
}

/// The largest count under `key`, or of any entry of a per-layer array there.
fn max_count(g: &Gguf<'_>, key: &str) -> u64 {
    match g.get(key) {
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_u64()).max(),
        Some(v) => v.as_u64(),
        None => None,
    }
    .unwrap_or(0)
}

/// The compute and output buffers for the model whose first shard is `g`, at the context of `mem`
/// ([`crate::memory::estimate`] of the same model). `n_vocab_hint` is the token embedding's row count,
/// used when the file has no vocabulary.
pub fn estimate(g: &Gguf<'_>, mem: &MemoryEstimate, n_vocab_hint: Option<u64>) -> ComputeEstimate {
    let arch = g.architecture().unwrap_or("");
    let k = |s: &str| format!("{arch}.{s}");
    let n_embd = max_count(g, &k("embedding_length"));
    let n_ff = max_count(g, &k("feed_forward_length"));
    let n_vocab = g
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.as_array())
        .map(|a| a.len)
        .or_else(|| g.get(&k("vocab_size")).and_then(|v| v.as_u64()))
        .or(n_vocab_hint)
        .unwrap_or(0);
    let encoder = crate::memory::has_no_kv_cache(arch);
    // llama_context: a causal model's n_batch is capped by the context asked for (before padding),
    // n_ubatch by n_batch; sched_reserve then takes min(n_ctx, n_ubatch) tokens.
    let n_batch = if encoder {
        N_BATCH
    } else {
        N_BATCH.min(mem.n_ctx.max(1))
    };
    let n_ubatch = N_UBATCH.min(n_batch);
    let t = n_ubatch.min(mem.n_ctx_padded);
    // Counts come from the file: saturate instead of wrapping.
    let f32s = |n: u64| n.saturating_mul(4).saturating_mul(t);
    let compute = if encoder {
        f32s(
            n_embd
                .saturating_mul(3)
                .saturating_add(n_ff.saturating_mul(3)),
        )
        .saturating_add(2 * t * t)
        .saturating_add(12 * t)
    } else {
        let output = f32s(n_vocab.saturating_add(n_embd.saturating_mul(2)));
        let masks = mem.n_ctx_padded + mem.swa_cache_cells;
        let layer = f32s(
            n_embd
                .saturating_mul(2)
                .saturating_add(n_ff.saturating_mul(3)),
        )
        .saturating_add(2 * t * masks)
        .saturating_add(24 * t);
        let conv = if arch == "lfm2" {
            let d_conv = max_count(g, &k("shortconv.l_cache")).saturating_sub(1);
            f32s(n_embd.saturating_mul(9))
                .saturating_add(d_conv.saturating_mul(n_embd).saturating_mul(4))
                .saturating_add(2 * t * masks)
                .saturating_add(24 * t)
        } else {
            0
        };
        output.max(layer).max(conv)
    };
    let mut notes = Vec::new();
    if !MEASURED.contains(&arch) {
        notes.push(format!(
            "compute buffer of {arch} approximated from the graphs of llama, qwen2, gemma3 and nomic-bert (a {t}-token micro-batch, flash attention)"
        ));
    }
    ComputeEstimate {
        n_ubatch,
        n_tokens: t,
        compute_bytes: compute,
        output_bytes: n_vocab.saturating_mul(4),
        notes,
    }
}
