//! Which tensors an architecture needs and with which shapes, from its hyper-parameters — the
//! `create_tensor` calls of each model's `load_arch_tensors` in llama.cpp (`src/models/llama.cpp`,
//! `qwen2.cpp`, `qwen3.cpp`, `gemma.cpp`, `gemma2.cpp`, `gemma3.cpp`, `phi3.cpp`, `mistral3.cpp`) and
//! `llama_model_base::create_tensor_qkv` in `src/llama-model.cpp`: Q, K and V as separate tensors or
//! one fused `attn_qkv`, each bias optional. Shapes are in ggml order (`ne[0]` first), as in the file.

use crate::gguf::{Gguf, Value};

/// One tensor llama.cpp will ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub name: String,
    pub shape: Vec<u64>,
    pub required: bool,
}

/// A group of alternatives: the first whose first tensor is present is used (fused QKV vs Q/K/V).
#[derive(Debug, Clone)]
pub enum Need {
    One(Expected),
    Either(Vec<Expected>, Vec<Expected>),
}

/// Architectures whose tensor lists are known here.
pub const KNOWN: &[&str] = &[
    "llama", "mistral3", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3",
];

/// Hyper-parameters read from the file.
#[derive(Debug, Clone)]
pub struct HParams {
    pub n_embd: u64,
    pub n_layer: u64,
    pub n_head: Vec<u64>,
    pub n_head_kv: Vec<u64>,
    pub n_ff: Vec<u64>,
    pub head_k: u64,
    pub head_v: u64,
    pub n_vocab: u64,
    pub n_expert: u64,
}

fn per_layer(g: &Gguf<'_>, key: &str, n: u64) -> Result<Option<Vec<u64>>, String> {
    match g.get(key) {
        None => Ok(None),
        Some(Value::Array(a)) => {
            if a.len != n {
                return Err(format!("'{key}' has {} entries for {n} layers", a.len));
            }
            a.iter()
                .map(|v| {
                    v.as_u64()
                        .ok_or_else(|| format!("'{key}' holds a non-count"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        Some(v) => v
            .as_u64()
            .map(|x| Some(vec![x; n as usize]))
            .ok_or_else(|| format!("'{key}' is a {}, not a count", v.value_type().name())),
    }
}

/// Reads the hyper-parameters of `arch`; `n_vocab` comes from the vocabulary (or `{arch}.vocab_size`).
pub fn hparams(g: &Gguf<'_>, arch: &str, n_vocab: Option<u64>) -> Result<HParams, String> {
    let k = |s: &str| format!("{arch}.{s}");
    let count = |key: String| -> Result<u64, String> {
        g.get(&key)
            .ok_or_else(|| format!("'{key}' is missing"))?
            .as_u64()
            .ok_or_else(|| format!("'{key}' is not a count"))
    };
    let n_embd = count(k("embedding_length"))?;
    let n_layer = count(k("block_count"))?;
    if n_layer > 1 << 16 || n_embd > 1 << 24 {
        return Err(format!(
            "block_count {n_layer} / embedding_length {n_embd} are not plausible"
        ));
    }
    let n_head = per_layer(g, &k("attention.head_count"), n_layer)?
        .ok_or_else(|| format!("'{}' is missing", k("attention.head_count")))?;
    let n_head_kv =
        per_layer(g, &k("attention.head_count_kv"), n_layer)?.unwrap_or_else(|| n_head.clone());
    let n_ff = per_layer(g, &k("feed_forward_length"), n_layer)?
        .ok_or_else(|| format!("'{}' is missing", k("feed_forward_length")))?;
    let max_head = n_head.iter().copied().max().unwrap_or(0);
    let head_k = match g.get(&k("attention.key_length")).and_then(|v| v.as_u64()) {
        Some(v) => v,
        None if max_head > 0 => n_embd / max_head,
        None => return Err("no attention heads".into()),
    };
    let head_v = g
        .get(&k("attention.value_length"))
        .and_then(|v| v.as_u64())
        .unwrap_or(head_k);
    let n_vocab = match n_vocab.or_else(|| g.get(&k("vocab_size")).and_then(|v| v.as_u64())) {
        Some(v) => v,
        None => return Err("no vocabulary size (tokenizer.ggml.tokens or vocab_size)".into()),
    };
    let n_expert = g
        .get(&k("expert_count"))
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    Ok(HParams {
        n_embd,
        n_layer,
        n_head,
        n_head_kv,
        n_ff,
        head_k,
        head_v,
        n_vocab,
        n_expert,
    })
}

fn e(name: String, shape: &[u64], required: bool) -> Expected {
    Expected {
        name,
        shape: shape.to_vec(),
        required,
    }
}

/// The tensors `arch` needs. `None` for architectures not known here.
pub fn expected(arch: &str, h: &HParams) -> Option<Vec<Need>> {
    if !KNOWN.contains(&arch) {
        return None;
    }
    let (ne, nv) = (h.n_embd, h.n_vocab);
    let mut v = vec![
        Need::One(e("token_embd.weight".into(), &[ne, nv], true)),
        Need::One(e("output_norm.weight".into(), &[ne], true)),
        // Absent means tied to token_embd (TENSOR_NOT_REQUIRED, then TENSOR_DUPLICATED).
        Need::One(e("output.weight".into(), &[ne, nv], false)),
    ];
    if arch == "qwen2" {
        v.push(Need::One(e("output.bias".into(), &[nv], false)));
    }
    for il in 0..h.n_layer {
        let i = il as usize;
        let b = |s: &str| format!("blk.{il}.{s}");
        // qwen2 and phi3 size attention from n_embd (n_embd_head = n_embd / n_head).
        let (q, kk, vv) = match arch {
            "qwen2" | "phi3" => {
                let hd = ne / h.n_head[i].max(1);
                let kv = hd.saturating_mul(h.n_head_kv[i]);
                (ne, kv, kv)
            }
            // Untrusted counts: saturate rather than wrap (a saturated shape never matches).
            _ => (
                h.head_k.saturating_mul(h.n_head[i]),
                h.head_k.saturating_mul(h.n_head_kv[i]),
                h.head_v.saturating_mul(h.n_head_kv[i]),
            ),
        };
        let qkv = q.saturating_add(kk).saturating_add(vv);
        let qkv_required = arch != "phi3";
        v.push(Need::One(e(b("attn_norm.weight"), &[ne], true)));
        v.push(Need::Either(
            vec![
                e(b("attn_qkv.weight"), &[ne, qkv], qkv_required),
                e(b("attn_qkv.bias"), &[qkv], false),
            ],
            vec![
                e(b("attn_q.weight"), &[ne, q], qkv_required),
                e(b("attn_k.weight"), &[ne, kk], qkv_required),
                e(b("attn_v.weight"), &[ne, vv], qkv_required),
                e(b("attn_q.bias"), &[q], false),
                e(b("attn_k.bias"), &[kk], false),
                e(b("attn_v.bias"), &[vv], false),
            ],
        ));
        let wo_in = if arch == "qwen2" || arch == "phi3" {
            ne
        } else {
            q
        };
        v.push(Need::One(e(b("attn_output.weight"), &[wo_in, ne], true)));
        v.push(Need::One(e(b("attn_output.bias"), &[ne], false)));
        if matches!(arch, "qwen3" | "gemma3") {
            v.push(Need::One(e(b("attn_q_norm.weight"), &[h.head_k], true)));
            v.push(Need::One(e(b("attn_k_norm.weight"), &[h.head_k], true)));
        }
        if matches!(arch, "gemma2" | "gemma3") {
            v.push(Need::One(e(b("post_attention_norm.weight"), &[ne], true)));
            v.push(Need::One(e(b("post_ffw_norm.weight"), &[ne], true)));
        }
        v.push(Need::One(e(b("ffn_norm.weight"), &[ne], true)));
        let ff = h.n_ff[i];
        if h.n_expert > 0 {
            // Mixture-of-experts layers: not listed here (their tensors are reported as unexpected).
            continue;
        }
        if arch == "phi3" {
            v.push(Need::One(e(
                b("ffn_up.weight"),
                &[ne, ff.saturating_mul(2)],
                true,
            )));
        } else {
            v.push(Need::One(e(b("ffn_gate.weight"), &[ne, ff], true)));
            v.push(Need::One(e(b("ffn_up.weight"), &[ne, ff], true)));
        }
        v.push(Need::One(e(b("ffn_down.weight"), &[ff, ne], true)));
        for opt in ["ffn_gate.bias", "ffn_up.bias"] {
            if arch == "llama" || arch == "mistral3" {
                v.push(Need::One(e(b(opt), &[ff], false)));
            }
        }
        if arch == "llama" || arch == "mistral3" {
            v.push(Need::One(e(b("ffn_down.bias"), &[ne], false)));
        }
    }
    Some(v)
}

/// Tensor names llama.cpp accepts for an architecture without listing them as needs (rope factors,
/// which it loads when present).
pub fn tolerated(name: &str) -> bool {
    name == "rope_freqs.weight"
        || name.ends_with(".rope_freqs.weight")
        || name == "rope_factors_long.weight"
        || name == "rope_factors_short.weight"
        || name.ends_with(".rope_factors_long.weight")
        || name.ends_with(".rope_factors_short.weight")
}
