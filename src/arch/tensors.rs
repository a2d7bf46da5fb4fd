//! Which tensors an architecture needs and with which shapes, from its hyper-parameters — the
//! `create_tensor` calls of each model's `load_arch_tensors` in llama.cpp (`src/models/llama.cpp`,
//! `qwen2.cpp`, `qwen3.cpp`, `gemma.cpp`, `gemma2.cpp`, `gemma3.cpp`, `phi3.cpp`, `mistral3.cpp`,
//! `granite.cpp`, `smollm3.cpp`, `lfm2.cpp`) and `llama_model_base::create_tensor_qkv` in `src/llama-model.cpp`: Q, K and V as
//! separate tensors or one fused `attn_qkv`, each bias optional. Shapes are in ggml order (`ne[0]`
//! first), as in the file.

use super::HParams;

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
    "llama", "mistral3", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3", "granite",
    "smollm3", "lfm2",
];

/// The sizes the tensor lists are written in, from the hyper-parameters and the vocabulary.
#[derive(Debug, Clone)]
pub struct Dims {
    pub n_embd: u64,
    pub n_layer: u64,
    pub n_head: Vec<u64>,
    pub n_head_kv: Vec<u64>,
    pub n_ff: Vec<u64>,
    pub head_k: u64,
    pub head_v: u64,
    pub n_vocab: u64,
    pub n_expert: u64,
    /// `shortconv.l_cache` (lfm2), 0 when absent.
    pub l_cache: u64,
}

impl Dims {
    /// The sizes of `h`'s model; `n_vocab` comes from the vocabulary (or `{arch}.vocab_size`).
    pub fn new(h: &HParams, n_vocab: Option<u64>) -> Result<Dims, String> {
        let missing = |s: &str| format!("'{}' is missing", h.key(s));
        let n_embd = h.n_embd.ok_or_else(|| missing("embedding_length"))?;
        if n_embd > 1 << 24 {
            return Err(format!(
                "block_count {} / embedding_length {n_embd} are not plausible",
                h.n_layer
            ));
        }
        let n_head = h
            .n_head
            .clone()
            .ok_or_else(|| missing("attention.head_count"))?;
        let n_ff = h
            .n_ff
            .clone()
            .ok_or_else(|| missing("feed_forward_length"))?;
        let head_k = h.head_k().ok_or("no attention heads")?;
        let head_v = h.head_v().unwrap_or(head_k);
        let n_vocab = n_vocab
            .or(h.vocab_size)
            .ok_or("no vocabulary size (tokenizer.ggml.tokens or vocab_size)")?;
        Ok(Dims {
            n_embd,
            n_layer: h.n_layer,
            n_head,
            n_head_kv: h.n_head_kv.clone(),
            n_ff,
            head_k,
            head_v,
            n_vocab,
            n_expert: h.n_expert,
            l_cache: h.shortconv_l_cache.unwrap_or(0),
        })
    }
}

fn e(name: String, shape: &[u64], required: bool) -> Expected {
    Expected {
        name,
        shape: shape.to_vec(),
        required,
    }
}

/// The tensors `arch` needs. `None` for architectures not known here.
pub fn expected(arch: &str, h: &Dims) -> Option<Vec<Need>> {
    if !KNOWN.contains(&arch) {
        return None;
    }
    if arch == "lfm2" {
        return Some(lfm2(h));
    }
    let (ne, nv) = (h.n_embd, h.n_vocab);
    let mut v = vec![
        Need::One(e("token_embd.weight".into(), &[ne, nv], true)),
        Need::One(e("output_norm.weight".into(), &[ne], true)),
    ];
    // gemma and gemma2 always project with token_embd (their loaders never ask for output.weight);
    // elsewhere an absent output means tied to token_embd (TENSOR_NOT_REQUIRED, then
    // TENSOR_DUPLICATED).
    let gemma12 = arch == "gemma" || arch == "gemma2";
    if !gemma12 {
        v.push(Need::One(e("output.weight".into(), &[ne, nv], false)));
    }
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
        // phi3's and smollm3's loaders never ask for an output bias.
        if !gemma12 && !matches!(arch, "phi3" | "smollm3") {
            v.push(Need::One(e(b("attn_output.bias"), &[ne], false)));
        }
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
        let ffn_bias = matches!(arch, "llama" | "mistral3" | "granite");
        for opt in ["ffn_gate.bias", "ffn_up.bias"] {
            if ffn_bias {
                v.push(Need::One(e(b(opt), &[ff], false)));
            }
        }
        if ffn_bias {
            v.push(Need::One(e(b("ffn_down.bias"), &[ne], false)));
        }
    }
    Some(v)
}

/// lfm2's tensors (`llama_model_lfm2::load_arch_tensors`): the final norm named `token_embd_norm`;
/// per layer a dense FFN, and either attention with Q/K norms (`head_count_kv` not 0) or a short
/// convolution. (LFM2-ColBERT's optional `dense_2_out` is not listed.)
fn lfm2(h: &Dims) -> Vec<Need> {
    let (ne, nv) = (h.n_embd, h.n_vocab);
    let mut v = vec![
        Need::One(e("token_embd.weight".into(), &[ne, nv], true)),
        Need::One(e("token_embd_norm.weight".into(), &[ne], true)),
        Need::One(e("output.weight".into(), &[ne, nv], false)),
    ];
    for il in 0..h.n_layer {
        let i = il as usize;
        let b = |s: &str| format!("blk.{il}.{s}");
        let ff = h.n_ff[i];
        v.push(Need::One(e(b("ffn_norm.weight"), &[ne], true)));
        v.push(Need::One(e(b("ffn_gate.weight"), &[ne, ff], true)));
        v.push(Need::One(e(b("ffn_down.weight"), &[ff, ne], true)));
        v.push(Need::One(e(b("ffn_up.weight"), &[ne, ff], true)));
        v.push(Need::One(e(b("attn_norm.weight"), &[ne], true)));
        if h.n_head_kv[i] == 0 {
            v.push(Need::One(e(
                b("shortconv.conv.weight"),
                &[h.l_cache, ne],
                true,
            )));
            v.push(Need::One(e(
                b("shortconv.in_proj.weight"),
                &[ne, ne.saturating_mul(3)],
                true,
            )));
            v.push(Need::One(e(
                b("shortconv.out_proj.weight"),
                &[ne, ne],
                true,
            )));
            continue;
        }
        let kv = h.head_k.saturating_mul(h.n_head_kv[i]);
        let qkv = ne.saturating_add(kv).saturating_add(kv);
        v.push(Need::One(e(b("attn_q_norm.weight"), &[h.head_k], true)));
        v.push(Need::One(e(b("attn_k_norm.weight"), &[h.head_k], true)));
        v.push(Need::Either(
            vec![
                e(b("attn_qkv.weight"), &[ne, qkv], true),
                e(b("attn_qkv.bias"), &[qkv], false),
            ],
            vec![
                e(b("attn_q.weight"), &[ne, ne], true),
                e(b("attn_k.weight"), &[ne, kv], true),
                e(b("attn_v.weight"), &[ne, kv], true),
                e(b("attn_q.bias"), &[ne], false),
                e(b("attn_k.bias"), &[kv], false),
                e(b("attn_v.bias"), &[kv], false),
            ],
        ));
        v.push(Need::One(e(b("attn_output.weight"), &[ne, ne], true)));
    }
    v
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
