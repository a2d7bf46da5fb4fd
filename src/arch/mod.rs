//! Architectures: a model's hyper-parameters read once from its metadata (`llama_hparams`, as each
//! architecture's `load_hparams` in llama.cpp reads them), and each architecture's tensors
//! ([`tensors`], as its `load_arch_tensors` asks for them). Memory estimates, `verify`'s completeness
//! check, requantize's plan and the executor all start from [`HParams`]; none reads `{arch}.*` keys
//! itself.
//!
//! Adding an architecture: its per-architecture facts here (sliding-window pattern, recurrent
//! state, `llm_type` decisions), its tensor list in [`tensors`], and its graph in the executor.

pub mod tensors;

use std::fmt;

use crate::gguf::{Gguf, Value};

/// A key that is present but unusable, or missing where it is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchError {
    NoArchitecture,
    MissingKey { key: String },
    BadKey { key: String, why: String },
}

impl fmt::Display for ArchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchError::NoArchitecture => f.write_str("general.architecture is missing"),
            ArchError::MissingKey { key } => write!(f, "'{key}' is missing"),
            ArchError::BadKey { key, why } => write!(f, "'{key}' {why}"),
        }
    }
}

impl std::error::Error for ArchError {}

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

/// Architectures whose state is recurrent (no or partial KV cache).
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

/// The hyper-parameters of one model, as the file gives them (counts as `u64`, per-layer values
/// expanded to one entry per layer). Optional keys stay `None` when absent: each user decides what
/// an absence means to it (llama.cpp's defaults differ per use).
#[derive(Debug, Clone, PartialEq)]
pub struct HParams {
    pub arch: String,
    /// `block_count`.
    pub n_layer: u64,
    /// `embedding_length`.
    pub n_embd: Option<u64>,
    /// `attention.head_count` per layer; `None` without attention metadata (recurrent models).
    pub n_head: Option<Vec<u64>>,
    /// `attention.head_count_kv` per layer (`n_head` when absent; empty without heads).
    pub n_head_kv: Vec<u64>,
    /// `feed_forward_length` per layer.
    pub n_ff: Option<Vec<u64>>,
    /// `attention.key_length` / `value_length` as written.
    pub key_length: Option<u64>,
    pub value_length: Option<u64>,
    /// `vocab_size` when it is a count (the vocabulary's own size is the tokenizer's).
    pub vocab_size: Option<u64>,
    /// `expert_count` (its first entry if an array; 0 when absent or not a count).
    pub n_expert: u64,
    /// `attention.sliding_window` (0: none) and the layers that use it.
    pub n_swa: u64,
    pub is_swa: Vec<bool>,
    /// The file sets a sliding window, but neither it nor llama.cpp's code for the architecture says
    /// which layers slide (so none do).
    pub swa_unused: bool,
    /// `attention.shared_kv_layers` (gemma3n: the last layers reuse earlier caches), 0 when absent.
    pub shared_kv_layers: u64,
    /// `attention.kv_lora_rank` (multi-head latent attention).
    pub kv_lora_rank: Option<u64>,
    /// Hybrid or recurrent state.
    pub recurrent: bool,
    /// `shortconv.l_cache` (lfm2: the length of its short convolutions).
    pub shortconv_l_cache: Option<u64>,
}

/// Where keys are read from: a file's metadata, or a list with overrides.
pub trait Keys<'a> {
    fn get(&self, key: &str) -> Option<Value<'a>>;
}

impl<'a> Keys<'a> for Gguf<'a> {
    fn get(&self, key: &str) -> Option<Value<'a>> {
        Gguf::get(self, key).copied()
    }
}

impl<'a, F: Fn(&str) -> Option<Value<'a>>> Keys<'a> for F {
    fn get(&self, key: &str) -> Option<Value<'a>> {
        self(key)
    }
}

impl HParams {
    /// Reads the hyper-parameters of the model whose metadata `g` holds.
    pub fn read<'a>(g: &impl Keys<'a>) -> Result<HParams, ArchError> {
        let arch = g
            .get("general.architecture")
            .and_then(|v| v.as_str().map(str::to_string))
            .ok_or(ArchError::NoArchitecture)?;
        let r = Reader { g, arch: &arch };
        let n_layer = r
            .count("block_count")?
            .ok_or_else(|| ArchError::MissingKey {
                key: r.key("block_count"),
            })?;
        if n_layer > 1 << 16 {
            return Err(ArchError::BadKey {
                key: r.key("block_count"),
                why: format!("is {n_layer}, not a plausible layer count"),
            });
        }
        let n_head = r.per_layer("attention.head_count", n_layer)?;
        let n_head_kv = match r.per_layer("attention.head_count_kv", n_layer)? {
            Some(v) => v,
            None => n_head.clone().unwrap_or_default(),
        };
        // gemma2 slides even without the key: llama.cpp's loader starts from Gemma 2's 4096.
        let n_swa = r
            .count("attention.sliding_window")?
            .unwrap_or(if arch == "gemma2" { 4096 } else { 0 });
        let (mut is_swa, mut swa_unused) = r.swa(n_layer, n_swa)?;
        // lfm2 slides on every attention layer when a window is set (its `load_arch_hparams`).
        if arch == "lfm2" && n_swa > 0 {
            is_swa = n_head_kv.iter().map(|&k| k != 0).collect();
            is_swa.resize(n_layer as usize, false);
            swa_unused = false;
        }
        Ok(HParams {
            n_layer,
            n_embd: r.count("embedding_length")?,
            n_head,
            n_head_kv,
            n_ff: r.per_layer("feed_forward_length", n_layer)?,
            key_length: r.count("attention.key_length")?,
            value_length: r.count("attention.value_length")?,
            vocab_size: g.get(&r.key("vocab_size")).and_then(|v| v.as_u64()),
            n_expert: match g.get(&r.key("expert_count")) {
                Some(Value::Array(a)) => a.iter().next().and_then(|v| v.as_u64()),
                Some(v) => v.as_u64(),
                None => None,
            }
            .unwrap_or(0),
            n_swa,
            is_swa,
            swa_unused,
            shared_kv_layers: r.count("attention.shared_kv_layers")?.unwrap_or(0),
            kv_lora_rank: r.count("attention.kv_lora_rank")?,
            recurrent: RECURRENT.contains(&arch.as_str()),
            shortconv_l_cache: r.count("shortconv.l_cache")?,
            arch,
        })
    }

    /// `{arch}.{s}`.
    pub fn key(&self, s: &str) -> String {
        format!("{}.{s}", self.arch)
    }

    /// The size of a key head: `key_length`, else `n_embd / n_head` (the largest layer's heads).
    pub fn head_k(&self) -> Option<u64> {
        let max_head = self.n_head.as_ref()?.iter().copied().max().unwrap_or(0);
        self.key_length.or(match self.n_embd {
            Some(e) if max_head > 0 => Some(e / max_head),
            _ => None,
        })
    }

    /// The size of a value head: `value_length`, else the key head's.
    pub fn head_v(&self) -> Option<u64> {
        self.value_length.or_else(|| self.head_k())
    }

    /// `model.type == LLM_TYPE_70B`, as each architecture's `load_hparams` decides it from layer 0.
    pub fn is_70b(&self) -> bool {
        let h0 = |v: &[u64]| v.first().copied().unwrap_or(0);
        let n_head = self.n_head.as_deref().map(h0).unwrap_or(0);
        match self.arch.as_str() {
            "llama" => self.n_layer == 80 && n_head != h0(&self.n_head_kv),
            "qwen2" | "deci" | "olmo" => self.n_layer == 80,
            "jais2" => self.n_layer == 68,
            _ => false,
        }
    }
}

/// What the forward pass needs beyond the shapes: RoPE, norm epsilon, training context, logit
/// soft-capping. Read by the executor only, so that a key only it uses (an odd `context_length`
/// override, say) does not stop memory estimates, `verify` or requantize.
#[derive(Debug, Clone, PartialEq)]
pub struct RunParams {
    /// `context_length`.
    pub n_ctx_train: Option<u64>,
    /// `attention.layer_norm_rms_epsilon`.
    pub rms_eps: Option<f32>,
    /// `rope.dimension_count`, `rope.freq_base`, `rope.freq_base_swa`.
    pub n_rot: Option<u64>,
    pub rope_base: Option<f32>,
    pub rope_base_swa: Option<f32>,
    /// `rope.scaling.factor` and `rope.scaling.type`.
    pub rope_scaling: Option<(f32, Option<String>)>,
    /// `final_logit_softcapping`.
    pub final_softcap: Option<f32>,
}

impl RunParams {
    /// Reads them for the model `h` describes.
    pub fn read<'a>(g: &impl Keys<'a>, h: &HParams) -> Result<RunParams, ArchError> {
        let r = Reader { g, arch: &h.arch };
        let rope_scaling = r.float("rope.scaling.factor")?.map(|f| {
            let ty = g.get(&r.key("rope.scaling.type"));
            (f, ty.and_then(|v| v.as_str().map(str::to_string)))
        });
        Ok(RunParams {
            n_ctx_train: r.count("context_length")?,
            rms_eps: r.float("attention.layer_norm_rms_epsilon")?,
            n_rot: r.count("rope.dimension_count")?,
            rope_base: r.float("rope.freq_base")?,
            rope_base_swa: r.float("rope.freq_base_swa")?,
            rope_scaling,
            final_softcap: r.float("final_logit_softcapping")?,
        })
    }
}

struct Reader<'r, G> {
    g: &'r G,
    arch: &'r str,
}

impl<'a, G: Keys<'a>> Reader<'_, G> {
    fn key(&self, s: &str) -> String {
        format!("{}.{s}", self.arch)
    }

    fn bad(&self, s: &str, why: String) -> ArchError {
        ArchError::BadKey {
            key: self.key(s),
            why,
        }
    }

    fn count(&self, s: &str) -> Result<Option<u64>, ArchError> {
        match self.g.get(&self.key(s)) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.bad(s, format!("is a {}, not a count", v.value_type().name()))),
        }
    }

    fn float(&self, s: &str) -> Result<Option<f32>, ArchError> {
        match self.g.get(&self.key(s)) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x as f32)),
                _ => Err(self.bad(s, "is not a finite number".into())),
            },
        }
    }

    /// A per-layer value: a single number, or an array with one entry per layer.
    fn per_layer(&self, s: &str, n_layer: u64) -> Result<Option<Vec<u64>>, ArchError> {
        match self.g.get(&self.key(s)) {
            None => Ok(None),
            Some(Value::Array(a)) => {
                if a.len != n_layer {
                    return Err(self.bad(s, format!("has {} entries for {n_layer} layers", a.len)));
                }
                a.iter()
                    .map(|v| {
                        v.as_u64()
                            .ok_or_else(|| self.bad(s, "holds a value that is not a count".into()))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some)
            }
            Some(v) => {
                let x = v.as_u64().ok_or_else(|| {
                    self.bad(s, format!("is a {}, not a count", v.value_type().name()))
                })?;
                Ok(Some(vec![x; n_layer as usize]))
            }
        }
    }

    /// Which layers slide (`load_swa_pattern`): the file's `sliding_window_pattern` (one flag per
    /// layer, or a period), else the architecture's default. Also whether a window is set that no
    /// layer uses.
    fn swa(&self, n_layer: u64, n_swa: u64) -> Result<(Vec<bool>, bool), ArchError> {
        let mut is_swa = vec![false; n_layer as usize];
        if n_swa == 0 {
            return Ok((is_swa, false));
        }
        let key = "attention.sliding_window_pattern";
        match self.g.get(&self.key(key)) {
            Some(Value::Array(a)) => {
                if a.len != n_layer {
                    return Err(
                        self.bad(key, format!("has {} entries for {n_layer} layers", a.len))
                    );
                }
                for (il, v) in a.iter().enumerate() {
                    is_swa[il] = v
                        .as_bool()
                        .or_else(|| v.as_u64().map(|x| x != 0))
                        .unwrap_or(false);
                }
                Ok((is_swa, false))
            }
            other => {
                let default = SWA_PATTERNS.iter().find(|(a, _, _)| *a == self.arch);
                let (pattern, dense_first) = match (other.and_then(|v| v.as_u64()), default) {
                    (Some(p), d) => (p, d.is_some_and(|d| d.2)),
                    (None, Some(&(_, p, d))) => (p as u64, d),
                    (None, None) => return Ok((is_swa, true)),
                };
                for (il, s) in is_swa.iter_mut().enumerate() {
                    let il = il as u64;
                    *s = pattern == 0
                        || if dense_first {
                            !il.is_multiple_of(pattern)
                        } else {
                            il % pattern < pattern - 1
                        };
                }
                Ok((is_swa, false))
            }
        }
    }
}
