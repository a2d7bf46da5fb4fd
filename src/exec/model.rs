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
    Gemma3,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma3 => "gemma3",
        }
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
    /// Scale applied to Q before attention (gemma3), else 0.
    pub attn_scale: f32,
    pub final_softcap: f32,
}

/// One transformer block's weights.
pub struct Layer<'a> {
    pub attn_norm: Vec<f32>,
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
    pub gate: Mat<'a>,
    pub up: Mat<'a>,
    pub down: Mat<'a>,
    pub ffn_post_norm: Option<Vec<f32>>,
}

/// A loaded model: hyper-parameters and borrowed weights.
pub struct Weights<'a> {
    pub hp: HParams,
    pub tok_embd: Mat<'a>,
    pub output: Mat<'a>,
    pub output_norm: Vec<f32>,
    pub rope_freqs: Option<Vec<f32>>,
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
            "gemma3" => Arch::Gemma3,
            other => return Err(ExecError::UnknownArch(other.to_string())),
        };
        let l = Loader {
            gs,
            arch: arch.name(),
        };
        let n_embd = l.u("embedding_length")?;
        let n_layer = l.u("block_count")?;
        let n_head = l.u("attention.head_count")?;
        let n_head_kv = l.u_opt("attention.head_count_kv")?.unwrap_or(n_head);
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
        let eps = l
            .f_opt("attention.layer_norm_rms_epsilon")?
            .ok_or_else(|| ExecError::MissingKey(l.key("attention.layer_norm_rms_epsilon")))?;
        let rope_base = l.f_opt("rope.freq_base")?.unwrap_or(10000.0);
        let rope_base_swa = l.f_opt("rope.freq_base_swa")?.unwrap_or(10000.0);
        if let Some(s) = l.f_opt("rope.scaling.factor")? {
            if s != 0.0 && s != 1.0 {
                let ty = l
                    .value(&l.key("rope.scaling.type"))
                    .and_then(|v| v.as_str())
                    .unwrap_or("linear");
                return Err(ExecError::Unsupported(format!(
                    "RoPE scaling {ty} x{s} (only unscaled RoPE is implemented)"
                )));
            }
        }
        let (n_swa, is_swa) = if arch == Arch::Gemma3 {
            match l.u_opt("attention.sliding_window")? {
                Some(w) if w > 0 => {
                    if l.value(&l.key("attention.sliding_window_pattern"))
                        .is_some()
                    {
                        return Err(ExecError::Unsupported(
                            "attention.sliding_window_pattern key (gemma3 default pattern 6 only)"
                                .into(),
                        ));
                    }
                    (w, (0..n_layer).map(|il| il % 6 < 5).collect())
                }
                _ => (0, vec![false; n_layer]),
            }
        } else {
            (0, vec![false; n_layer])
        };
        let final_softcap = l.f_opt("final_logit_softcapping")?.unwrap_or(0.0);
        let attn_scale = if arch == Arch::Gemma3 {
            1.0 / (head_dim as f32).sqrt()
        } else {
            0.0
        };

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
        let n_ctx_train = l.u_opt("context_length")?.unwrap_or(4096);
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
            rope_neox: arch != Arch::Llama,
            n_swa,
            is_swa,
            attn_scale,
            final_softcap,
        };

        let tok_embd = l.mat("token_embd.weight", n_embd, n_vocab)?;
        let output = l
            .mat_opt("output.weight", n_embd, n_vocab)?
            .unwrap_or(tok_embd);
        let output_norm = l.vec("output_norm.weight", n_embd)?;
        let rope_freqs = l.vec_opt("rope_freqs.weight", n_rot / 2)?;
        let (nq, nkv) = (n_head * head_dim, n_head_kv * head_dim);
        let mut layers = Vec::with_capacity(n_layer.min(4096));
        for i in 0..n_layer {
            let t = |s: &str| format!("blk.{i}.{s}.weight");
            let b = |s: &str| format!("blk.{i}.{s}.bias");
            let gemma = arch == Arch::Gemma3;
            let qk = gemma || arch == Arch::Qwen3;
            let layer = Layer {
                attn_norm: l.vec(&t("attn_norm"), n_embd)?,
                wq: l.mat(&t("attn_q"), n_embd, nq)?,
                wk: l.mat(&t("attn_k"), n_embd, nkv)?,
                wv: l.mat(&t("attn_v"), n_embd, nkv)?,
                wo: l.mat(&t("attn_output"), nq, n_embd)?,
                bq: l.vec_opt(&b("attn_q"), nq)?,
                bk: l.vec_opt(&b("attn_k"), nkv)?,
                bv: l.vec_opt(&b("attn_v"), nkv)?,
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
                attn_post_norm: if gemma {
                    Some(l.vec(&t("post_attention_norm"), n_embd)?)
                } else {
                    None
                },
                ffn_norm: l.vec(&t("ffn_norm"), n_embd)?,
                gate: l.mat(&t("ffn_gate"), n_embd, n_ff)?,
                up: l.mat(&t("ffn_up"), n_embd, n_ff)?,
                down: l.mat(&t("ffn_down"), n_ff, n_embd)?,
                ffn_post_norm: if gemma {
                    Some(l.vec(&t("post_ffw_norm"), n_embd)?)
                } else {
                    None
                },
            };
            if arch != Arch::Qwen2 && (layer.bq.is_some() || layer.bk.is_some()) {
                return Err(ExecError::Unsupported(format!(
                    "attention biases in blk.{i} of a {} model",
                    arch.name()
                )));
            }
            layers.push(layer);
        }
        Ok(Weights {
            hp,
            tok_embd,
            output,
            output_norm,
            rope_freqs,
            layers,
        })
    }
}
