//! A model ready to run: hyper-parameters read from the metadata the way llama.cpp's loader reads
//! them, and every weight matrix borrowed from the mapped file (quantized, never copied). Only the
//! small vectors (norm weights, biases) are decoded to f32. Everything is checked here, before any
//! compute: architecture, presence and shape of every tensor.

use crate::gguf::{Endian, Gguf, TensorInfo};

use super::dot::Mat;
use super::ExecError;

/// The architectures this executor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
    Gemma,
    Gemma2,
    Gemma3,
    Granite,
    Phi3,
    SmolLM3,
    Mistral3,
    /// LFM2 / LFM2.5: short-convolution blocks between GQA blocks with QK norms.
    Lfm2,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma => "gemma",
            Arch::Gemma2 => "gemma2",
            Arch::Gemma3 => "gemma3",
            Arch::Granite => "granite",
            Arch::Phi3 => "phi3",
            Arch::SmolLM3 => "smollm3",
            Arch::Mistral3 => "mistral3",
            Arch::Lfm2 => "lfm2",
        }
    }

    /// The gemma family: embeddings scaled by sqrt(n_embd), GELU, Q scaled before attention.
    pub fn is_gemma(self) -> bool {
        matches!(self, Arch::Gemma | Arch::Gemma2 | Arch::Gemma3)
    }
}

/// Hyper-parameters (`llama_hparams`), as the forward pass uses them.
#[derive(Debug, Clone)]
pub struct HParams {
    pub arch: Arch,
    pub n_vocab: usize,
    pub n_ctx_train: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub n_rot: usize,
    pub eps: f32,
    pub rope_base: f32,
    pub rope_base_swa: f32,
    /// NeoX-style rotation (halves) instead of adjacent pairs.
    pub rope_neox: bool,
    /// Sliding window (0: none) and which layers use it.
    pub n_swa: usize,
    pub is_swa: Vec<bool>,
    /// Scale applied to Q before attention (the gemmas), else 0.
    pub attn_scale: f32,
    /// The scale of the attention scores (`kq_scale` of `build_attn`): 1 where Q is scaled
    /// before, granite's `attention.scale`, else 1/sqrt(head_dim).
    pub kq_scale: f32,
    /// Attention logit soft-capping (gemma2: `cap * tanh(score / cap)`), else 0.
    pub attn_softcap: f32,
    /// Final logit soft-capping (gemma2, gemma3 when set), else 0.
    pub final_softcap: f32,
    /// Factor on the input embeddings (the gemmas: sqrt(n_embd); granite: `embedding_scale`),
    /// else 0.
    pub embd_scale: f32,
    /// Factor on each attention and FFN output before its residual add (granite
    /// `residual_scale`), else 0.
    pub residual_scale: f32,
    /// Factor on the logits (granite: 1 / `logit_scale`), else 0.
    pub logit_scale: f32,
    /// GELU-gated FFN (the gemmas) instead of SwiGLU.
    pub gelu: bool,
    /// RoPE scaling as llama.cpp's context resolves it (`llama_context`'s `cparams.rope_freq_scale`,
    /// `yarn_*`, `n_ctx_orig_yarn`).
    pub rope_scaling: RopeScaling,
    /// Every `nope_step`-th layer (1-based) skips RoPE (smollm3: 4), else 0.
    pub nope_step: usize,
    /// llama4-style attention temperature (mistral3's `attention.temperature_scale`): Q at position
    /// `p` times `ln(floor(p / attn_temp_floor) + 1) * attn_temp_scale + 1`; 0: none.
    pub attn_temp_scale: f32,
    pub attn_temp_floor: usize,
    /// Layers that are short-convolution blocks (lfm2: `attention.head_count_kv` 0), with no KV
    /// cache; `n_head_kv` is that of the attention layers.
    pub is_conv: Vec<bool>,
    /// `shortconv.l_cache`: the convolution's length (its state keeps `l_cache - 1` inputs per
    /// channel), 0 without conv layers.
    pub l_cache: usize,
}

impl HParams {
    /// Layers with attention (and a KV cache).
    pub fn n_layer_attn(&self) -> usize {
        self.is_conv.iter().filter(|&&c| !c).count()
    }
}

/// An lfm2 short-convolution block (`build_shortconv_block`): `in_proj` gives B, C and X of
/// `n_embd` each; B * X runs through a causal depthwise convolution of `l_cache` taps per channel
/// (`kernel`: `n_embd` rows of `l_cache`, oldest input first), C gates its output, `out_proj`
/// projects it back.
#[derive(Clone)]
pub struct ShortConv<'a> {
    pub in_proj: Mat<'a>,
    pub out_proj: Mat<'a>,
    pub kernel: Vec<f32>,
}

/// RoPE's scaling parameters (`ggml_rope_ext`'s `freq_scale`, `ext_factor`, `attn_factor`,
/// `beta_fast`, `beta_slow`, `n_ctx_orig`). Unscaled: 1, 0, 1, 32, 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RopeScaling {
    pub freq_scale: f32,
    pub ext_factor: f32,
    pub attn_factor: f32,
    pub beta_fast: f32,
    pub beta_slow: f32,
    pub n_ctx_orig: usize,
}

/// One transformer block's weights.
#[derive(Clone)]
pub struct Layer<'a> {
    pub attn_norm: Vec<f32>,
    /// lfm2's conv layers: the block in place of attention, whose matrices are then empty
    /// ([`Mat::empty`]: no rows, skipped by [`Weights::for_each_mat_mut`]).
    pub shortconv: Option<ShortConv<'a>>,
    /// The fused `attn_qkv` whose row ranges `wq`, `wk` and `wv` are (phi3), for observers.
    pub wqkv: Option<Mat<'a>>,
    pub wq: Mat<'a>,
    pub wk: Mat<'a>,
    pub wv: Mat<'a>,
    pub wo: Mat<'a>,
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    pub attn_post_norm: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    /// The fused `ffn_up` whose halves `gate` and `up` are (phi3), for observers.
    pub gate_up: Option<Mat<'a>>,
    pub gate: Mat<'a>,
    pub up: Mat<'a>,
    pub down: Mat<'a>,
    pub ffn_post_norm: Option<Vec<f32>>,
}

/// A loaded model: hyper-parameters and borrowed weights.
#[derive(Clone)]
pub struct Weights<'a> {
    pub hp: HParams,
    pub tok_embd: Mat<'a>,
    pub output: Mat<'a>,
    pub output_norm: Vec<f32>,
    pub rope_freqs: Option<Vec<f32>>,
    /// LongRoPE's frequency factors (phi3), chosen by context size ([`Weights::rope_factors`]).
    pub rope_long: Option<Vec<f32>>,
    pub rope_short: Option<Vec<f32>>,
    pub layers: Vec<Layer<'a>>,
}

struct Loader<'g, 'a> {
    gs: &'g [Gguf<'a>],
    arch: &'static str,
}

impl<'a> Loader<'_, 'a> {
    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }

    fn value(&self, key: &str) -> Option<&crate::gguf::Value<'a>> {
        self.gs.iter().find_map(|g| g.get(key))
    }

    fn u(&self, k: &str) -> Result<usize, ExecError> {
        self.u_opt(k)?
            .ok_or_else(|| ExecError::MissingKey(self.key(k)))
    }

    fn u_opt(&self, k: &str) -> Result<Option<usize>, ExecError> {
        let key = self.key(k);
        match self.value(&key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(x) if x <= u32::MAX as u64 => Ok(Some(x as usize)),
                _ => Err(ExecError::BadKey {
                    key,
                    message: "not an unsigned integer below 2^32".into(),
                }),
            },
        }
    }

    fn f_opt(&self, k: &str) -> Result<Option<f32>, ExecError> {
        let key = self.key(k);
        match self.value(&key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x as f32)),
                _ => Err(ExecError::BadKey {
                    key,
                    message: "not a finite number".into(),
                }),
            },
        }
    }

    /// A key that must be a positive finite number when present.
    fn f_pos(&self, k: &str) -> Result<Option<f32>, ExecError> {
        match self.f_opt(k)? {
            Some(x) if x <= 0.0 => Err(ExecError::BadKey {
                key: self.key(k),
                message: format!("{x} is not positive"),
            }),
            x => Ok(x),
        }
    }

    /// RoPE scaling as `llama_model::load_hparams` reads it and `llama_context` resolves it with
    /// default context parameters: `rope.scaling.type` (default linear), `rope.scaling.factor`,
    /// YaRN's ext_factor 1 and attention factor (`get_mscale`, `yarn_log_multiplier`, then
    /// cancelled by ggml's own YaRN magnitude), times `rope.scaling.attn_factor`; YaRN's betas
    /// and log multiplier where the architecture reads them (mistral3).
    fn rope_scaling(&self, arch: Arch, n_ctx_train: usize) -> Result<RopeScaling, ExecError> {
        let ty_key = self.key("rope.scaling.type");
        let ty = match self.value(&ty_key) {
            None => "linear",
            Some(v) => v.as_str().ok_or_else(|| ExecError::BadKey {
                key: ty_key.clone(),
                message: "not a string".into(),
            })?,
        };
        if !matches!(ty, "none" | "linear" | "yarn" | "longrope") {
            return Err(ExecError::BadKey {
                key: ty_key,
                message: format!("unknown RoPE scaling type {ty:?}"),
            });
        }
        let factor = match self.f_opt("rope.scaling.factor")? {
            Some(f) => Some(f),
            None => self.f_opt("rope.scale_linear")?,
        }
        .unwrap_or(0.0);
        if factor < 0.0 {
            return Err(ExecError::BadKey {
                key: self.key("rope.scaling.factor"),
                message: format!("{factor} is negative"),
            });
        }
        let mut freq_scale = if factor == 0.0 { 1.0 } else { 1.0 / factor };
        if ty == "none" {
            freq_scale = 1.0;
        }
        let ext_factor = if ty == "yarn" { 1.0f32 } else { 0.0 };
        let (mut beta_fast, mut beta_slow, mut log_mul) = (32.0f32, 1.0f32, 0.0f32);
        if arch == Arch::Mistral3 {
            beta_fast = self
                .f_opt("rope.scaling.yarn_beta_fast")?
                .unwrap_or(beta_fast);
            beta_slow = self
                .f_opt("rope.scaling.yarn_beta_slow")?
                .unwrap_or(beta_slow);
            log_mul = self
                .f_opt("rope.scaling.yarn_log_multiplier")?
                .unwrap_or(log_mul);
        }
        let mut attn_factor = 1.0f32;
        if ext_factor != 0.0 {
            let get_mscale = |scale: f32, mscale: f32| {
                if scale <= 1.0 {
                    1.0
                } else {
                    0.1 * mscale * scale.ln() + 1.0
                }
            };
            let f = 1.0 / freq_scale;
            attn_factor = if log_mul != 0.0 {
                get_mscale(f, 1.0) / get_mscale(f, log_mul)
            } else {
                get_mscale(f, 1.0)
            };
            attn_factor *= 1.0 / (1.0 + 0.1 * f.ln());
        }
        attn_factor *= self.f_opt("rope.scaling.attn_factor")?.unwrap_or(1.0);
        let n_ctx_orig = match self.u_opt("rope.scaling.original_context_length")? {
            Some(n) if n != 0 => n,
            _ => n_ctx_train,
        };
        Ok(RopeScaling {
            freq_scale,
            ext_factor,
            attn_factor,
            beta_fast,
            beta_slow,
            n_ctx_orig,
        })
    }

    fn tensor(&self, name: &str) -> Option<(&Gguf<'a>, &TensorInfo<'a>)> {
        self.gs.iter().find_map(|g| g.tensor(name).map(|t| (g, t)))
    }

    fn mat(&self, name: &str, cols: usize, rows: usize) -> Result<Mat<'a>, ExecError> {
        self.mat_opt(name, cols, rows)?
            .ok_or_else(|| ExecError::MissingTensor(name.to_string()))
    }

    fn mat_opt(&self, name: &str, cols: usize, rows: usize) -> Result<Option<Mat<'a>>, ExecError> {
        let Some((g, t)) = self.tensor(name) else {
            return Ok(None);
        };
        let dims: Vec<u64> = t.dims.clone();
        let ok = dims.len() == 2 && dims[0] == cols as u64 && dims[1] == rows as u64
            || dims.len() == 1 && rows == 1 && dims[0] == cols as u64;
        if !ok {
            return Err(ExecError::Shape {
                tensor: name.to_string(),
                message: format!("dims {dims:?}, expected [{cols}, {rows}]"),
            });
        }
        let row_bytes =
            t.ty.bytes_for(cols as u64)
                .ok_or_else(|| ExecError::Shape {
                    tensor: name.to_string(),
                    message: format!(
                        "rows of {cols} values are not whole {}-value {} blocks",
                        t.ty.block_size, t.ty.name
                    ),
                })? as usize;
        let data = g.tensor_data(t).ok_or_else(|| ExecError::Shape {
            tensor: name.to_string(),
            message: "data lies outside the file".into(),
        })?;
        if data.len() != row_bytes * rows {
            return Err(ExecError::Shape {
                tensor: name.to_string(),
                message: format!("{} bytes, expected {}", data.len(), row_bytes * rows),
            });
        }
        // SAFETY-free: the lifetime of the data is the file map's ('a), through `tensor_data`.
        let name: &'a str = t.name;
        Ok(Some(Mat {
            name,
            ty: t.ty,
            data,
            cols,
            rows,
            row_bytes,
        }))
    }

    fn vec(&self, name: &str, n: usize) -> Result<Vec<f32>, ExecError> {
        self.vec_opt(name, n)?
            .ok_or_else(|| ExecError::MissingTensor(name.to_string()))
    }

    fn vec_opt(&self, name: &str, n: usize) -> Result<Option<Vec<f32>>, ExecError> {
        let Some(m) = self.mat_opt(name, n, 1)? else {
            return Ok(None);
        };
        let mut v = vec![0f32; n];
        m.row_f32(0, &mut v)?;
        Ok(Some(v))
    }
}

impl<'a> Weights<'a> {
    /// Every weight matrix the forward pass multiplies by (the output once more when it is the
    /// token embeddings' tied copy; a fused matrix once whole and once per row range), for `f` to
    /// look at or replace.
    pub fn for_each_mat_mut(&mut self, mut f: impl FnMut(&mut Mat<'a>)) {
        f(&mut self.tok_embd);
        f(&mut self.output);
        for l in &mut self.layers {
            for m in l.wqkv.iter_mut().chain(l.gate_up.iter_mut()) {
                f(m);
            }
            if let Some(c) = &mut l.shortconv {
                f(&mut c.in_proj);
                f(&mut c.out_proj);
            }
            for m in [
                &mut l.wq,
                &mut l.wk,
                &mut l.wv,
                &mut l.wo,
                &mut l.gate,
                &mut l.up,
                &mut l.down,
            ] {
                if m.rows > 0 {
                    f(m);
                }
            }
        }
    }

    /// Reads the hyper-parameters and borrows every tensor of the model from `gs` (one GGUF, or
    /// every shard of a split model), checking names and shapes.
    pub fn load(gs: &[Gguf<'a>]) -> Result<Weights<'a>, ExecError> {
        let g0 = gs
            .first()
            .ok_or(ExecError::MissingKey("general.architecture".into()))?;
        if gs.iter().any(|g| g.endian != Endian::Little) {
            return Err(ExecError::Unsupported(
                "big-endian GGUF files (convert with `pocket convert --endian little`)".into(),
            ));
        }
        let arch_s = g0
            .architecture()
            .ok_or(ExecError::MissingKey("general.architecture".into()))?;
        let arch = match arch_s {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            "gemma" => Arch::Gemma,
            "gemma2" => Arch::Gemma2,
            "gemma3" => Arch::Gemma3,
            "granite" => Arch::Granite,
            "phi3" => Arch::Phi3,
            "smollm3" => Arch::SmolLM3,
            "mistral3" => Arch::Mistral3,
            "lfm2" => Arch::Lfm2,
            other => return Err(ExecError::UnknownArch(other.to_string())),
        };
        let l = Loader {
            gs,
            arch: arch.name(),
        };
        let n_embd = l.u("embedding_length")?;
        let n_layer = l.u("block_count")?;
        let n_head = l.u("attention.head_count")?;
        // lfm2: `attention.head_count_kv` per layer, 0 on its conv layers (`is_recr`); the
        // attention layers must agree (one cache width).
        let (n_head_kv, is_conv, l_cache) = if arch == Arch::Lfm2 {
            let h = arch_hparams(&l)?;
            let key = l.key("attention.head_count_kv");
            let kv: Vec<u64> = h.n_head_kv.clone();
            let attn: Vec<u64> = kv.iter().copied().filter(|&k| k != 0).collect();
            let Some(&first) = attn.first() else {
                return Err(ExecError::Unsupported(format!(
                    "an lfm2 model without attention layers ({key} is 0 on every layer)"
                )));
            };
            if attn.iter().any(|&k| k != first) || first > u32::MAX as u64 {
                return Err(ExecError::Unsupported(format!(
                    "attention layers of different widths ({key} {kv:?})"
                )));
            }
            let lc = l.u("shortconv.l_cache")?;
            if !(2..=1 << 16).contains(&lc) {
                return Err(ExecError::BadKey {
                    key: l.key("shortconv.l_cache"),
                    message: format!("{lc}: a convolution needs a length of 2 or more"),
                });
            }
            if l.value(&l.key("attention.causal"))
                .and_then(|v| v.as_bool())
                == Some(false)
            {
                return Err(ExecError::Unsupported(
                    "a non-causal lfm2 (an embedding model: lfm2.attention.causal = false)".into(),
                ));
            }
            (
                first as usize,
                kv.iter().map(|&k| k == 0).collect::<Vec<bool>>(),
                lc,
            )
        } else {
            let kv = l.u_opt("attention.head_count_kv")?.unwrap_or(n_head);
            (kv, Vec::new(), 0)
        };
        let n_ff = l.u("feed_forward_length")?;
        if n_embd == 0 || n_layer == 0 || n_head == 0 || n_head_kv == 0 || n_ff == 0 {
            return Err(ExecError::BadKey {
                key: l.key("embedding_length/block_count/head_count/feed_forward_length"),
                message: "zero".into(),
            });
        }
        // Every layer has tensors of its own: a block count above the file's tensor count is a lie, and
        // is refused before anything is sized by it (2^32-1 layers would allocate gigabytes).
        let n_tensors: usize = gs.iter().map(|g| g.tensors.len()).sum();
        if n_layer > n_tensors {
            return Err(ExecError::BadKey {
                key: l.key("block_count"),
                message: format!("{n_layer} layers but the file holds only {n_tensors} tensors"),
            });
        }
        if n_head % n_head_kv != 0 {
            return Err(ExecError::BadKey {
                key: l.key("attention.head_count_kv"),
                message: format!("{n_head_kv} does not divide head_count {n_head}"),
            });
        }
        let head_dim = match l.u_opt("attention.key_length")? {
            Some(k) => k,
            None => {
                if n_embd % n_head != 0 {
                    return Err(ExecError::BadKey {
                        key: l.key("attention.head_count"),
                        message: format!("{n_head} does not divide embedding_length {n_embd}"),
                    });
                }
                n_embd / n_head
            }
        };
        if let Some(v) = l.u_opt("attention.value_length")? {
            if v != head_dim {
                return Err(ExecError::Unsupported(format!(
                    "value_length {v} != key_length {head_dim}"
                )));
            }
        }
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(ExecError::BadKey {
                key: l.key("attention.key_length"),
                message: format!("head size {head_dim} is not a positive even number"),
            });
        }
        let n_rot = l.u_opt("rope.dimension_count")?.unwrap_or(head_dim);
        if n_rot == 0 || n_rot > head_dim || n_rot % 2 != 0 {
            return Err(ExecError::BadKey {
                key: l.key("rope.dimension_count"),
                message: format!("{n_rot} for heads of {head_dim}"),
            });
        }
        // smollm3's and mistral3's graphs assert whole-head rotation; phi3's Q is n_embd wide.
        if matches!(arch, Arch::SmolLM3 | Arch::Mistral3) && n_rot != head_dim {
            return Err(ExecError::BadKey {
                key: l.key("rope.dimension_count"),
                message: format!("{n_rot}: {} rotates whole heads of {head_dim}", arch.name()),
            });
        }
        if arch == Arch::Phi3 && n_head * head_dim != n_embd {
            return Err(ExecError::BadKey {
                key: l.key("attention.key_length"),
                message: format!(
                    "{n_head} heads of {head_dim} for embedding_length {n_embd}: phi3's Q is n_embd wide"
                ),
            });
        }
        let eps = l
            .f_opt("attention.layer_norm_rms_epsilon")?
            .ok_or_else(|| ExecError::MissingKey(l.key("attention.layer_norm_rms_epsilon")))?;
        let rope_base = l.f_opt("rope.freq_base")?.unwrap_or(10000.0);
        // gemma2's sliding layers default to the global base; gemma3's to 10000.
        let rope_base_swa = l
            .f_opt("rope.freq_base_swa")?
            .unwrap_or(if arch == Arch::Gemma2 {
                rope_base
            } else {
                10000.0
            });
        let n_ctx_train = l.u_opt("context_length")?.unwrap_or(4096);
        let rope_scaling = l.rope_scaling(arch, n_ctx_train)?;
        if arch.is_gemma() && rope_scaling.freq_scale != 1.0 {
            // gemma3's sliding layers keep their own (unscaled) frequencies: not implemented.
            return Err(ExecError::Unsupported(format!(
                "RoPE scaling x{} in a {} model (only unscaled RoPE is implemented for the gemmas)",
                1.0 / rope_scaling.freq_scale,
                arch.name()
            )));
        }
        let longrope = l
            .value(&l.key("rope.scaling.type"))
            .and_then(|v| v.as_str())
            == Some("longrope");
        // Which layers slide, as llama.cpp's `load_swa_pattern` decides (the architecture table's
        // reader: gemma2 every other layer from layer 0, gemma3 five of six, or the file's
        // `attention.sliding_window_pattern`).
        // lfm2: every attention layer when the file sets a window.
        let (n_swa, is_swa) = if matches!(arch, Arch::Gemma2 | Arch::Gemma3 | Arch::Lfm2) {
            let h = arch_hparams(&l)?;
            if h.is_swa.len() != n_layer {
                return Err(ExecError::BadKey {
                    key: l.key("attention.sliding_window_pattern"),
                    message: format!("{} layer flags for {n_layer} layers", h.is_swa.len()),
                });
            }
            let w = usize::try_from(h.n_swa).unwrap_or(usize::MAX);
            if w == 0 {
                (0, vec![false; n_layer])
            } else {
                (w, h.is_swa)
            }
        } else {
            (0, vec![false; n_layer])
        };
        // gemma2 caps its final logits always (llama.cpp's default cap is 30; a cap of 0 would give
        // NaN there, so it is refused), gemma3 when the key is set and not 0; gemma2's attention
        // scores are capped too (default 50).
        let final_softcap = match arch {
            Arch::Gemma2 => l.f_pos("final_logit_softcapping")?.unwrap_or(30.0),
            _ => l.f_opt("final_logit_softcapping")?.unwrap_or(0.0),
        };
        let attn_softcap = match arch {
            Arch::Gemma2 => l.f_pos("attn_logit_softcapping")?.unwrap_or(50.0),
            _ => 0.0,
        };
        // The gemmas scale Q by 1/sqrt(head size) before attention; gemma2 and gemma3 size their
        // 27B from n_embd / n_head instead (`f_attention_scale`, LLM_TYPE_27B: 46 and 62 layers).
        let attn_scale = match arch {
            Arch::Gemma => 1.0 / (head_dim as f32).sqrt(),
            Arch::Gemma2 | Arch::Gemma3 => {
                let big = if arch == Arch::Gemma2 { 46 } else { 62 };
                if n_layer == big {
                    1.0 / ((n_embd / n_head) as f32).sqrt()
                } else {
                    1.0 / (head_dim as f32).sqrt()
                }
            }
            // phi3 scales Q by 1/sqrt(n_embd_head) before attention (kq_scale 1).
            Arch::Phi3 => 1.0 / (head_dim as f32).sqrt(),
            _ => 0.0,
        };
        let (mut embd_scale, mut residual_scale, mut logit_scale) = (0.0, 0.0, 0.0);
        let mut kq_scale = if attn_scale != 0.0 {
            1.0
        } else {
            1.0 / (head_dim as f32).sqrt()
        };
        if arch.is_gemma() {
            embd_scale = (n_embd as f32).sqrt();
        }
        if arch == Arch::Granite {
            // granite.cpp: logit_scale is required, the others optional (0: not applied).
            let ls = l
                .f_pos("logit_scale")?
                .ok_or_else(|| ExecError::MissingKey(l.key("logit_scale")))?;
            logit_scale = 1.0 / ls;
            embd_scale = l.f_opt("embedding_scale")?.unwrap_or(0.0);
            residual_scale = l.f_opt("residual_scale")?.unwrap_or(0.0);
            if let Some(s) = l.f_opt("attention.scale")? {
                if s != 0.0 {
                    kq_scale = s;
                }
            }
            if n_rot != head_dim {
                return Err(ExecError::BadKey {
                    key: l.key("rope.dimension_count"),
                    message: format!("{n_rot}: granite rotates whole heads of {head_dim}"),
                });
            }
            if let Some(v) = l.value(&l.key("rope.scaling.finetuned")) {
                if v.as_bool() == Some(false) {
                    return Err(ExecError::Unsupported(
                        "granite without RoPE (rope.scaling.finetuned = false)".into(),
                    ));
                }
            }
        }
        // mistral3: llama4's attention temperature, its floor the original context
        // (`n_attn_temp_floor_scale = n_ctx_orig_yarn`).
        let (mut attn_temp_scale, mut attn_temp_floor) = (0.0, 0);
        if arch == Arch::Mistral3 {
            if let Some(t) = l.f_opt("attention.temperature_scale")? {
                if t != 0.0 {
                    if rope_scaling.n_ctx_orig == 0 {
                        return Err(ExecError::BadKey {
                            key: l.key("rope.scaling.original_context_length"),
                            message: "0: attention temperature scaling needs it".into(),
                        });
                    }
                    (attn_temp_scale, attn_temp_floor) = (t, rope_scaling.n_ctx_orig);
                }
            }
        }

        let tok = l
            .tensor("token_embd.weight")
            .ok_or(ExecError::MissingTensor("token_embd.weight".into()))?
            .1;
        let n_vocab = match tok.dims.as_slice() {
            [c, r] if *c == n_embd as u64 && *r > 0 && *r <= u32::MAX as u64 => *r as usize,
            d => {
                return Err(ExecError::Shape {
                    tensor: "token_embd.weight".into(),
                    message: format!("dims {d:?}, expected [{n_embd}, n_vocab]"),
                })
            }
        };
        let hp = HParams {
            arch,
            n_vocab,
            n_ctx_train,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            head_dim,
            n_ff,
            n_rot,
            eps,
            rope_base,
            rope_base_swa,
            rope_neox: !matches!(
                arch,
                Arch::Llama | Arch::Granite | Arch::SmolLM3 | Arch::Mistral3
            ),
            n_swa,
            is_swa,
            attn_scale,
            kq_scale,
            attn_softcap,
            final_softcap,
            embd_scale,
            residual_scale,
            logit_scale,
            gelu: arch.is_gemma(),
            rope_scaling,
            nope_step: if arch == Arch::SmolLM3 { 4 } else { 0 },
            attn_temp_scale,
            attn_temp_floor,
            is_conv: if is_conv.is_empty() {
                vec![false; n_layer]
            } else {
                is_conv
            },
            l_cache,
        };

        let tok_embd = l.mat("token_embd.weight", n_embd, n_vocab)?;
        // gemma and gemma2 project with token_embd whatever else the file holds.
        let output = if matches!(arch, Arch::Gemma | Arch::Gemma2) {
            tok_embd
        } else {
            l.mat_opt("output.weight", n_embd, n_vocab)?
                .unwrap_or(tok_embd)
        };
        // lfm2's final norm keeps the name its converter first gave it.
        let output_norm = if arch == Arch::Lfm2 {
            l.vec("token_embd_norm.weight", n_embd)?
        } else {
            l.vec("output_norm.weight", n_embd)?
        };
        // rope_freqs (llama3-style factors) where the loader asks for it; phi3 (and mistral3 with
        // LongRoPE) load the long and short factors instead.
        let (mut rope_freqs, mut rope_long, mut rope_short) = (None, None, None);
        if arch == Arch::Phi3 || arch == Arch::Mistral3 && longrope {
            rope_long = l.vec_opt("rope_factors_long.weight", n_rot / 2)?;
            rope_short = l.vec_opt("rope_factors_short.weight", n_rot / 2)?;
        } else {
            rope_freqs = l.vec_opt("rope_freqs.weight", n_rot / 2)?;
        }
        let (nq, nkv) = (n_head * head_dim, n_head_kv * head_dim);
        let mut layers = Vec::with_capacity(n_layer.min(4096));
        for i in 0..n_layer {
            let t = |s: &str| format!("blk.{i}.{s}.weight");
            let b = |s: &str| format!("blk.{i}.{s}.bias");
            let qk = matches!(arch, Arch::Gemma3 | Arch::Qwen3 | Arch::Lfm2);
            if hp.is_conv[i] {
                let kernel = l.mat(&t("shortconv.conv"), l_cache, n_embd)?;
                let mut k = vec![0f32; l_cache * n_embd];
                for (r, row) in k.chunks_exact_mut(l_cache).enumerate() {
                    kernel.row_f32(r, row)?;
                }
                let empty = Mat::empty(n_embd);
                layers.push(Layer {
                    attn_norm: l.vec(&t("attn_norm"), n_embd)?,
                    shortconv: Some(ShortConv {
                        in_proj: l.mat(&t("shortconv.in_proj"), n_embd, 3 * n_embd)?,
                        out_proj: l.mat(&t("shortconv.out_proj"), n_embd, n_embd)?,
                        kernel: k,
                    }),
                    wqkv: None,
                    wq: empty,
                    wk: empty,
                    wv: empty,
                    wo: empty,
                    bq: None,
                    bk: None,
                    bv: None,
                    q_norm: None,
                    k_norm: None,
                    attn_post_norm: None,
                    ffn_norm: l.vec(&t("ffn_norm"), n_embd)?,
                    gate_up: None,
                    gate: l.mat(&t("ffn_gate"), n_embd, n_ff)?,
                    up: l.mat(&t("ffn_up"), n_embd, n_ff)?,
                    down: l.mat(&t("ffn_down"), n_ff, n_embd)?,
                    ffn_post_norm: None,
                });
                continue;
            }
            let post = matches!(arch, Arch::Gemma2 | Arch::Gemma3);
            // One fused attn_qkv when present (`create_tensor_qkv`, phi3's usual form), its rows
            // Q, K, V in order, with an optional fused bias; phi3's ffn_up has 2 n_ff rows, the
            // first half gated (`ggml_swiglu`).
            let wqkv = l.mat_opt(&t("attn_qkv"), n_embd, nq + 2 * nkv)?;
            let bqkv = match wqkv {
                Some(_) => l.vec_opt(&b("attn_qkv"), nq + 2 * nkv)?,
                None => None,
            };
            let (wq, wk, wv) = match &wqkv {
                Some(m) => (
                    rows_of(m, 0, nq),
                    rows_of(m, nq, nkv),
                    rows_of(m, nq + nkv, nkv),
                ),
                None => (
                    l.mat(&t("attn_q"), n_embd, nq)?,
                    l.mat(&t("attn_k"), n_embd, nkv)?,
                    l.mat(&t("attn_v"), n_embd, nkv)?,
                ),
            };
            let gate_up = if arch == Arch::Phi3 {
                Some(l.mat(&t("ffn_up"), n_embd, 2 * n_ff)?)
            } else {
                None
            };
            let (gate, up) = match &gate_up {
                Some(m) => (rows_of(m, 0, n_ff), rows_of(m, n_ff, n_ff)),
                None => (
                    l.mat(&t("ffn_gate"), n_embd, n_ff)?,
                    l.mat(&t("ffn_up"), n_embd, n_ff)?,
                ),
            };
            let layer = Layer {
                attn_norm: l.vec(&t("attn_norm"), n_embd)?,
                shortconv: None,
                wqkv,
                wq,
                wk,
                wv,
                wo: l.mat(&t("attn_output"), nq, n_embd)?,
                bq: match &bqkv {
                    Some(f) => Some(f[..nq].to_vec()),
                    None => l.vec_opt(&b("attn_q"), nq)?,
                },
                bk: match &bqkv {
                    Some(f) => Some(f[nq..nq + nkv].to_vec()),
                    None => l.vec_opt(&b("attn_k"), nkv)?,
                },
                bv: match &bqkv {
                    Some(f) => Some(f[nq + nkv..].to_vec()),
                    None => l.vec_opt(&b("attn_v"), nkv)?,
                },
                q_norm: if qk {
                    Some(l.vec(&t("attn_q_norm"), head_dim)?)
                } else {
                    None
                },
                k_norm: if qk {
                    Some(l.vec(&t("attn_k_norm"), head_dim)?)
                } else {
                    None
                },
                attn_post_norm: if post {
                    Some(l.vec(&t("post_attention_norm"), n_embd)?)
                } else {
                    None
                },
                ffn_norm: l.vec(&t("ffn_norm"), n_embd)?,
                gate_up,
                gate,
                up,
                down: l.mat(&t("ffn_down"), n_ff, n_embd)?,
                ffn_post_norm: if post {
                    Some(l.vec(&t("post_ffw_norm"), n_embd)?)
                } else {
                    None
                },
            };
            if !matches!(arch, Arch::Qwen2 | Arch::SmolLM3)
                && (layer.bq.is_some() || layer.bk.is_some())
            {
                return Err(ExecError::Unsupported(format!(
                    "attention biases in blk.{i} of a {} model",
                    arch.name()
                )));
            }
            // Biases granite's loader accepts but this executor does not add: refused, not ignored.
            if matches!(arch, Arch::Granite | Arch::Mistral3) {
                for s in ["attn_output", "ffn_gate", "ffn_up", "ffn_down"] {
                    if l.tensor(&b(s)).is_some() {
                        return Err(ExecError::Unsupported(format!(
                            "{} in a {} model",
                            b(s),
                            arch.name()
                        )));
                    }
                }
            }
            layers.push(layer);
        }
        Ok(Weights {
            hp,
            tok_embd,
            output,
            output_norm,
            rope_freqs,
            rope_long,
            rope_short,
            layers,
        })
    }

    /// The frequency factors RoPE divides by for a session of `n_ctx` tokens
    /// (`llama_model::get_rope_factors`): `rope_freqs` when loaded, else LongRoPE's long factors
    /// when the context (padded to 256 cells, as `llama_context` pads it) exceeds the original
    /// one, else its short factors.
    pub fn rope_factors(&self, n_ctx: usize) -> Option<&[f32]> {
        if let Some(f) = &self.rope_freqs {
            return Some(f);
        }
        if n_ctx.div_ceil(256).saturating_mul(256) > self.hp.rope_scaling.n_ctx_orig {
            self.rope_long.as_deref()
        } else {
            self.rope_short.as_deref()
        }
    }
}

/// The hyper-parameters as `crate::arch` reads them (per-layer arrays, sliding-window patterns).
fn arch_hparams(l: &Loader<'_, '_>) -> Result<crate::arch::HParams, ExecError> {
    crate::arch::HParams::read(&|k: &str| l.value(k).copied()).map_err(|e| match e {
        crate::arch::ArchError::BadKey { key, why } => ExecError::BadKey { key, message: why },
        crate::arch::ArchError::MissingKey { key } => ExecError::MissingKey(key),
        crate::arch::ArchError::NoArchitecture => {
            ExecError::MissingKey("general.architecture".into())
        }
    })
}

/// Rows `r0..r0 + n` of `m` (a part of a fused matrix: each row's products are those of the
/// whole, which llama.cpp multiplies once and views).
fn rows_of<'a>(m: &Mat<'a>, r0: usize, n: usize) -> Mat<'a> {
    Mat {
        data: &m.data[r0 * m.row_bytes..(r0 + n) * m.row_bytes],
        rows: n,
        ..*m
    }
}
