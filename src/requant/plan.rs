//! The per-tensor type choice of llama-quantize, ported from `src/llama-quant.cpp` at the peer's
//! commit: `tensor_allows_quantization`, `tensor_get_category`, `llama_tensor_get_type` and
//! `llama_tensor_get_type_impl` (mixes, `use_more_bits`, attention/ffn bumps by layer, the
//! `i_attention_wv` / `i_ffn_*` counters), `tensor_type_fallback` (rows that do not divide into the
//! type's block) and `tensor_requires_imatrix`, plus the order llama-quantize processes and writes
//! tensors in (`weights_map`'s comparator, or shard and offset with `--keep-split`).
//!
//! Everything here is pure: no file is read, so a plan can be checked against llama-quantize's own
//! choices without any block-format kernel.

use std::cmp::Ordering;
use std::fmt;

use super::ftype::Ftype;
use super::RequantError;
use crate::arch::HParams;
use crate::gguf::parse::KeyValue;
use crate::gguf::spec::{FtypeId, GgmlType, TypeId};

use crate::gguf::Value;
use TypeId as T;

/// What llama-quantize reads of the model's hyperparameters (`llama_hparams`, `llm_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub arch: String,
    /// `{arch}.block_count` (`n_layer_all`): also the `n_ffn_*` counts.
    pub n_layer: u32,
    /// `{arch}.attention.head_count` of layer 0 (a scalar or a per-layer array).
    pub n_head: u32,
    /// `{arch}.attention.head_count_kv` of layer 0; `n_head` when absent.
    pub n_head_kv: u32,
    /// `{arch}.expert_count`, 0 when absent.
    pub n_expert: u32,
    /// `model.type == LLM_TYPE_70B`, as each architecture's `load_hparams` decides it.
    pub is_70b: bool,
}

impl ModelInfo {
    /// Reads the hyperparameters from the metadata; `ints` are `--override-kv KEY=int:N` overrides,
    /// which llama.cpp's loader applies before reading them.
    pub fn from_kvs(
        kvs: &[KeyValue<'_>],
        ints: &[(String, i64)],
    ) -> Result<ModelInfo, RequantError> {
        let get = |k: &str| -> Option<Value<'_>> {
            if let Some((_, v)) = ints.iter().rev().find(|(key, _)| key == k) {
                return Some(Value::I64(*v));
            }
            kvs.iter().find(|kv| kv.key == k).map(|kv| kv.value)
        };
        let h = HParams::read(&get).map_err(|e| RequantError::Model(e.to_string()))?;
        let u32_of = |v: u64| u32::try_from(v).ok();
        let n_layer = u32_of(h.n_layer).filter(|&n| n > 0).ok_or_else(|| {
            RequantError::Model(format!(
                "{} is missing or not a positive integer",
                h.key("block_count")
            ))
        })?;
        let layer0 = |v: &[u64]| v.first().copied().and_then(u32_of);
        let n_head = h.n_head.as_deref().and_then(layer0).unwrap_or(0);
        let n_head_kv = layer0(&h.n_head_kv).unwrap_or(n_head);
        Ok(ModelInfo {
            is_70b: h.is_70b(),
            n_layer,
            n_head,
            n_head_kv,
            n_expert: u32_of(h.n_expert).unwrap_or(0),
            arch: h.arch,
        })
    }

    /// `hparams.n_gqa()` (of layer 0).
    pub fn n_gqa(&self) -> u32 {
        self.n_head.checked_div(self.n_head_kv).unwrap_or(0)
    }
}

/// A tensor to plan: name, shape in ggml order, type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorDesc<'a> {
    pub name: &'a str,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
}

impl TensorDesc<'_> {
    /// `ggml_n_dims`: dimensions up to the last one larger than 1 (at least 1).
    pub fn n_dims(&self) -> usize {
        self.dims.iter().rposition(|&d| d > 1).map_or(1, |i| i + 1)
    }

    fn ne(&self, i: usize) -> u64 {
        self.dims.get(i).copied().unwrap_or(1)
    }
}

/// `--tensor-type PATTERN=TYPE`: tensors whose name the pattern matches get the type. llama.cpp
/// matches with `std::regex_search`; the library has no regex engine, so the caller supplies the
/// matcher (the CLI compiles the pattern with the `regex` crate).
pub struct TensorTypeOverride {
    pub pattern: String,
    pub ty: GgmlType,
    pub matcher: Box<dyn Fn(&str) -> bool + Send + Sync>,
}

impl TensorTypeOverride {
    /// An override matching names that contain `pattern` literally (what a regex without special
    /// characters does).
    pub fn substring(pattern: &str, ty: GgmlType) -> Self {
        let p = pattern.to_string();
        TensorTypeOverride {
            pattern: pattern.to_string(),
            ty,
            matcher: Box::new(move |name| name.contains(p.as_str())),
        }
    }
}

impl fmt::Debug for TensorTypeOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.pattern, self.ty.name)
    }
}

/// llama-quantize's options that decide tensor types (`llama_model_quantize_params`).
#[derive(Debug)]
pub struct Params {
    pub ftype: Ftype,
    /// `--pure`: no mixes, every quantizable tensor gets the default type (still with fallbacks).
    pub pure: bool,
    /// false with `--leave-output-tensor`.
    pub quantize_output_tensor: bool,
    pub output_tensor_type: Option<GgmlType>,
    pub token_embedding_type: Option<GgmlType>,
    pub tensor_types: Vec<TensorTypeOverride>,
}

impl Params {
    pub fn new(ftype: Ftype) -> Params {
        Params {
            ftype,
            pure: false,
            quantize_output_tensor: true,
            output_tensor_type: None,
            token_embedding_type: None,
            tensor_types: Vec::new(),
        }
    }
}

/// `tensor_category`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    TokenEmbd,
    AttentionQ,
    AttentionV,
    AttentionK,
    AttentionQkv,
    AttentionKvB,
    AttentionOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other,
}

fn is_token_embd(name: &str) -> bool {
    name == "token_embd.weight" || name == "per_layer_token_embd.weight"
}

/// `tensor_get_category`.
pub fn category(name: &str) -> Category {
    use Category::*;
    if name == "output.weight" {
        return Output;
    }
    if is_token_embd(name) {
        return TokenEmbd;
    }
    let table = [
        ("attn_qkv.weight", AttentionQkv),
        ("attn_kv_b.weight", AttentionKvB),
        ("attn_v.weight", AttentionV),
        ("attn_k.weight", AttentionK),
        ("attn_q.weight", AttentionQ),
        ("attn_output.weight", AttentionOutput),
        ("ffn_up", FfnUp),
        ("ffn_gate", FfnGate),
        ("ffn_down", FfnDown),
    ];
    table
        .iter()
        .find(|(s, _)| name.contains(s))
        .map_or(Other, |(_, c)| *c)
}

fn is_attn_v(c: Category) -> bool {
    matches!(
        c,
        Category::AttentionV | Category::AttentionQkv | Category::AttentionKvB
    )
}

/// `tensor_allows_quantization` (with `only_copy` handled by the caller): `None` when the tensor may
/// be quantized, else why not.
pub fn why_not_quantized(
    arch: &str,
    t: &TensorDesc<'_>,
    quantize_output_tensor: bool,
) -> Option<&'static str> {
    if t.n_dims() < 2 {
        return Some("1-D");
    }
    let name = t.name;
    // `name.rfind("weight") == name.size() - 6`
    if name.len() < 6 || name.rfind("weight") != Some(name.len() - 6) {
        return Some("not a weight");
    }
    if name.contains("_norm.weight") {
        return Some("norm");
    }
    if !quantize_output_tensor && name == "output.weight" {
        return Some("--leave-output-tensor");
    }
    const NEVER: &[&str] = &[
        "ffn_gate_inp.weight",
        "ffn_gate_tid2eid.weight",
        "altup",
        "laurel",
        "per_layer_model_proj",
        "ssm_conv1d",
        "shortconv.conv.weight",
        "indexer.k_proj.weight",
        "indexer.q_proj.weight",
        "time_mix_first.weight",
        "time_mix_w0.weight",
        "time_mix_w1.weight",
        "time_mix_w2.weight",
        "time_mix_v0.weight",
        "time_mix_v1.weight",
        "time_mix_v2.weight",
        "time_mix_a0.weight",
        "time_mix_a1.weight",
        "time_mix_a2.weight",
        "time_mix_g1.weight",
        "time_mix_g2.weight",
        "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight",
        "attn_rel_b.weight",
        ".position_embd",
        "sam.pos_embd",
        "sam.neck.",
        "sam.net_",
        ".rel_pos",
        ".patch_embd",
        ".patch_merger",
        "a.rvq.codebook",
        "mm.a.code_embd",
    ];
    if NEVER.iter().any(|s| name.contains(s)) {
        return Some("small or special (llama-quantize never quantizes it)");
    }
    if name == "position_embd.weight" || name == "token_types.weight" {
        return Some("position embeddings / token types");
    }
    if arch == "glm5-next" {
        const GLM: [&str; 14] = [
            "hc_",
            "indexer.attn_q_b",
            "indexer.attn_k",
            "indexer.proj",
            "indexer_compressor_gate",
            "indexer_compressor_ape",
            "ssm_f_a.weight",
            "ssm_f_b.weight",
            "ssm_g_a.weight",
            "ssm_g_b.weight",
            "ssm_beta.weight",
            "attn_kv_a_mqa.weight",
            "attn_k_b.weight",
            "attn_v_b.weight",
        ];
        if GLM.iter().any(|s| name.contains(s)) {
            return Some("glm5-next special tensor");
        }
    }
    None
}

/// `tensor_requires_imatrix`.
pub fn tensor_requires_imatrix(name: &str, dst: GgmlType, ftype_id: FtypeId) -> bool {
    if is_token_embd(name) || name == "output.weight" {
        return false;
    }
    match dst.id {
        T::IQ3_XXS | T::IQ2_XXS | T::IQ2_XS | T::IQ2_S | T::IQ1_M | T::IQ1_S => true,
        T::Q2_K => ftype_id == FtypeId::Q2_K_S,
        _ => false,
    }
}

/// The `blk.%d.` layer number as `sscanf` reads it, if the name has one.
pub fn blk_layer(name: &str) -> Option<i64> {
    let rest = name.strip_prefix("blk.")?.trim_start();
    let (neg, rest) = match rest.as_bytes().first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let v: i64 = rest[..end].parse().ok()?;
    Some(if neg { -v } else { v })
}

/// `weight_name_comparer`: tensors without a layer first, then by layer, then by name.
pub fn weight_order(a: &str, b: &str) -> Ordering {
    let la = blk_layer(a).unwrap_or(-1);
    let lb = blk_layer(b).unwrap_or(-1);
    la.cmp(&lb).then_with(|| a.cmp(b))
}

/// Why a tensor gets its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Never quantized (1-D, norm, …): copied as it is.
    Kept(&'static str),
    /// `COPY`: every tensor copied.
    Copy,
    /// `--token-embedding-type`.
    TokenEmbeddingType,
    /// `--output-tensor-type`.
    OutputTensorType,
    /// `--tensor-type PATTERN=TYPE`.
    Manual(String),
    /// `--pure`.
    Pure,
    /// The file type's default type.
    Default,
    /// A mix rule of `llama_tensor_get_type_impl` for this category of tensor.
    Mix(&'static str),
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Kept(why) => write!(f, "kept: {why}"),
            Rule::Copy => f.write_str("COPY"),
            Rule::TokenEmbeddingType => f.write_str("--token-embedding-type"),
            Rule::OutputTensorType => f.write_str("--output-tensor-type"),
            Rule::Manual(p) => write!(f, "--tensor-type {p}"),
            Rule::Pure => f.write_str("--pure"),
            Rule::Default => f.write_str("default"),
            Rule::Mix(c) => write!(f, "mix: {c}"),
        }
    }
}

/// One tensor's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub name: String,
    pub dims: Vec<u64>,
    pub from: GgmlType,
    pub to: GgmlType,
    pub rule: Rule,
    /// The type chosen before the shape fallback, when rows did not divide into its blocks.
    pub fallback_from: Option<GgmlType>,
    pub allows_quantization: bool,
    pub requires_imatrix: bool,
}

impl Planned {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
    /// Bytes of the tensor in its source type.
    pub fn bytes_from(&self) -> u64 {
        self.from.bytes_for(self.n_elements()).unwrap_or(0)
    }
    /// Bytes of the tensor in its target type.
    pub fn bytes_to(&self) -> u64 {
        self.to.bytes_for(self.n_elements()).unwrap_or(0)
    }
    /// Converted (rather than copied).
    pub fn converts(&self) -> bool {
        self.from != self.to
    }
}

/// The plan for a whole model.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub tensors: Vec<Planned>,
    /// `qs.n_fallback`: tensors whose rows did not divide into the chosen type's blocks.
    pub n_fallback: usize,
}

struct State {
    n_attention_wv: i64,
    n_ffn: i64,
    i_attention_wv: i64,
    i_ffn_down: i64,
    i_ffn_gate: i64,
    i_ffn_up: i64,
    n_fallback: usize,
    has_tied_embeddings: bool,
}

/// Plans every tensor, in the order given (llama-quantize's processing order, see [`weight_order`]),
/// as `llama_model_quantize_impl`'s preliminary loop does. `has_imatrix`: an importance matrix is
/// given (some mixes depend on it).
pub fn plan(
    model: &ModelInfo,
    tensors: &[TensorDesc<'_>],
    params: &Params,
    has_imatrix: bool,
) -> Result<Plan, RequantError> {
    let mut qs = State {
        n_attention_wv: tensors
            .iter()
            .filter(|t| is_attn_v(category(t.name)))
            .count() as i64,
        n_ffn: model.n_layer as i64,
        i_attention_wv: 0,
        i_ffn_down: 0,
        i_ffn_gate: 0,
        i_ffn_up: 0,
        n_fallback: 0,
        has_tied_embeddings: !tensors.iter().any(|t| category(t.name) == Category::Output),
    };
    let ftype_id = params.ftype.id;
    let default_type = params.ftype.default_type();
    let mut out = Vec::with_capacity(tensors.len());
    for t in tensors {
        let cat = category(t.name);
        let why_not = if params.ftype.is_copy() {
            Some("COPY")
        } else {
            why_not_quantized(&model.arch, t, params.quantize_output_tensor)
        };
        let (to, rule, fallback_from) = match why_not {
            Some("COPY") => (t.ty, Rule::Copy, None),
            Some(why) => (t.ty, Rule::Kept(why), None),
            None => get_type(&mut qs, model, params, has_imatrix, t, default_type, cat)?,
        };
        let allows = why_not.is_none();
        out.push(Planned {
            name: t.name.to_string(),
            dims: t.dims.clone(),
            from: t.ty,
            to,
            rule,
            fallback_from,
            allows_quantization: allows,
            requires_imatrix: tensor_requires_imatrix(t.name, to, ftype_id),
        });
    }
    Ok(Plan {
        tensors: out,
        n_fallback: qs.n_fallback,
    })
}

/// `llama_tensor_get_type` for a tensor that allows quantization.
fn get_type(
    qs: &mut State,
    model: &ModelInfo,
    params: &Params,
    has_imatrix: bool,
    t: &TensorDesc<'_>,
    default_type: GgmlType,
    cat: Category,
) -> Result<(GgmlType, Rule, Option<GgmlType>), RequantError> {
    if let (Some(tet), Category::TokenEmbd) = (params.token_embedding_type, cat) {
        // per_layer_token_embd follows --token-embedding-type unless a --tensor-type names it
        let named = t.name == "per_layer_token_embd.weight"
            && params.tensor_types.iter().any(|o| (o.matcher)(t.name));
        if !named {
            return Ok((tet, Rule::TokenEmbeddingType, None));
        }
    }
    if let (Some(ott), Category::Output) = (params.output_tensor_type, cat) {
        return Ok((ott, Rule::OutputTensorType, None));
    }
    let mut new_type = default_type;
    let mut rule = Rule::Default;
    if default_type.quantized {
        let mut manual = false;
        if let Some(o) = params.tensor_types.iter().find(|o| (o.matcher)(t.name)) {
            new_type = o.ty;
            rule = Rule::Manual(format!("{}={}", o.pattern, o.ty.name));
            manual = true;
        }
        if !manual && !params.pure {
            let mixed = get_type_impl(qs, model, params, has_imatrix, new_type, t, cat)?;
            if mixed != new_type {
                rule = Rule::Mix(category_name(cat));
            }
            new_type = mixed;
        }
        if params.pure && !manual {
            rule = Rule::Pure;
        }
        let fell = fallback(qs, t, new_type)?;
        if fell != new_type {
            return Ok((fell, rule, Some(new_type)));
        }
    }
    Ok((new_type, rule, None))
}

fn category_name(c: Category) -> &'static str {
    match c {
        Category::TokenEmbd => "token_embd",
        Category::AttentionQ => "attn_q",
        Category::AttentionV => "attn_v",
        Category::AttentionK => "attn_k",
        Category::AttentionQkv => "attn_qkv",
        Category::AttentionKvB => "attn_kv_b",
        Category::AttentionOutput => "attn_output",
        Category::FfnUp => "ffn_up",
        Category::FfnGate => "ffn_gate",
        Category::FfnDown => "ffn_down",
        Category::Output => "output",
        Category::Other => "other",
    }
}

/// `tensor_type_fallback`.
fn fallback(
    qs: &mut State,
    t: &TensorDesc<'_>,
    target: GgmlType,
) -> Result<GgmlType, RequantError> {
    let ncols = t.ne(0);
    let qk = target.block_size;
    if ncols.is_multiple_of(qk) {
        return Ok(target);
    }
    qs.n_fallback += 1;
    let mut ret = match target.id {
        T::IQ1_S
        | T::IQ1_M
        | T::IQ2_XXS
        | T::IQ2_XS
        | T::IQ2_S
        | T::IQ3_XXS
        | T::IQ3_S
        | T::IQ4_XS => T::IQ4_NL.ty(),
        T::Q2_0 | T::Q2_K | T::Q3_K | T::TQ1_0 | T::TQ2_0 => T::Q4_0.ty(),
        T::Q4_K => T::Q5_0.ty(),
        T::Q5_K => T::Q5_1.ty(),
        T::Q6_K => T::Q8_0.ty(),
        _ if qk <= 32 => target,
        _ => {
            return Err(RequantError::NoFallback {
                tensor: t.name.to_string(),
                ty: target.name,
                ncols,
            })
        }
    };
    if !ncols.is_multiple_of(ret.block_size) {
        ret = T::F16.ty();
    }
    Ok(ret)
}

fn use_more_bits(i_layer: i64, n_layers: i64) -> bool {
    // C integer division and remainder truncate toward zero, as Rust's do.
    i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2
}

/// `llama_tensor_get_type_impl`: the mixes. Branch for branch as in llama.cpp, even where two
/// neighbouring branches choose the same type, so the two can be read side by side.
#[allow(clippy::if_same_then_else)]
fn get_type_impl(
    qs: &mut State,
    model: &ModelInfo,
    params: &Params,
    has_imatrix: bool,
    mut new_type: GgmlType,
    t: &TensorDesc<'_>,
    cat: Category,
) -> Result<GgmlType, RequantError> {
    use Category as C;
    use FtypeId as F;
    let f = params.ftype.id;
    let arch = model.arch.as_str();
    let falcon = arch == "falcon";
    let n_gqa = model.n_gqa();
    let n_expert = model.n_expert;
    let name = t.name;
    let layer_info = |i_layer: i64, n_layer: i64| -> Result<(i64, i64), RequantError> {
        if n_expert.max(1) > 1 {
            let il = blk_layer(name).ok_or_else(|| {
                RequantError::Model(format!("failed to determine layer for tensor {name}"))
            })?;
            if il < 0 || il >= n_layer {
                return Err(RequantError::Model(format!(
                    "bad layer {il} for tensor {name}: must be in [0, {n_layer})"
                )));
            }
            return Ok((il, n_layer));
        }
        Ok((i_layer, n_layer))
    };

    if arch == "glm5-next"
        && (name.contains("attn_q_a")
            || name.contains("attn_q_b")
            || name.contains("nextn.eh_proj"))
        && !matches!(new_type.id, T::F32 | T::BF16 | T::F16)
    {
        return Ok(T::Q8_0.ty());
    }

    let low_iq = [
        F::IQ2_XXS,
        F::IQ2_XS,
        F::IQ1_S,
        F::IQ2_S,
        F::IQ2_M,
        F::IQ1_M,
    ];
    if cat == C::Output || (qs.has_tied_embeddings && cat == C::TokenEmbd) {
        if let Some(ott) = params.output_tensor_type {
            new_type = ott;
        } else {
            let nx = t.ne(0);
            let qk = new_type.block_size;
            if f == F::MXFP4_MOE || falcon || !nx.is_multiple_of(qk) {
                new_type = T::Q8_0.ty();
            } else if [
                F::IQ2_XXS,
                F::IQ2_XS,
                F::IQ3_XXS,
                F::IQ1_S,
                F::IQ2_S,
                F::IQ2_M,
                F::IQ1_M,
            ]
            .contains(&f)
            {
                new_type = T::Q5_K.ty();
            } else if new_type.id != T::Q8_0 {
                new_type = T::Q6_K.ty();
            }
        }
    } else if f == F::MXFP4_MOE {
        let bailing_expert =
            arch == "bailingmoe3" && matches!(cat, C::FfnUp | C::FfnGate | C::FfnDown);
        new_type = if t.ne(2) > 1 && (arch != "bailingmoe3" || bailing_expert) {
            T::MXFP4.ty()
        } else {
            T::Q8_0.ty()
        };
    } else if cat == C::TokenEmbd {
        if let Some(tet) = params.token_embedding_type {
            new_type = tet;
        } else if [F::IQ2_XXS, F::IQ2_XS, F::IQ1_S, F::IQ1_M].contains(&f) {
            new_type = T::Q2_K.ty();
        } else if f == F::IQ2_S || f == F::IQ2_M || f == F::IQ3_XXS {
            new_type = T::IQ3_S.ty();
        } else if f == F::TQ1_0 || f == F::TQ2_0 || f == F::Q2_0 {
            new_type = T::Q4_K.ty();
        }
    } else if low_iq.contains(&f) {
        let s_or_m = f == F::IQ2_S || f == F::IQ2_M;
        if is_attn_v(cat) {
            new_type = if n_gqa >= 4 || n_expert >= 4 {
                T::Q4_K.ty()
            } else if s_or_m {
                T::IQ3_S.ty()
            } else {
                T::Q2_K.ty()
            };
            qs.i_attention_wv += 1;
        } else if n_expert == 8 && cat == C::AttentionK {
            new_type = T::Q4_K.ty();
        } else if cat == C::FfnDown {
            if qs.i_ffn_down < qs.n_ffn / 8 {
                new_type = if s_or_m { T::IQ3_S.ty() } else { T::Q2_K.ty() };
            }
            qs.i_ffn_down += 1;
        } else if cat == C::AttentionOutput {
            if n_expert == 8 {
                new_type = T::Q5_K.ty();
            } else if f == F::IQ1_S || f == F::IQ1_M {
                new_type = T::IQ2_XXS.ty();
            } else if s_or_m {
                new_type = T::IQ3_S.ty();
            }
        }
    } else if is_attn_v(cat) {
        if f == F::Q2_K {
            new_type = if n_gqa >= 4 {
                T::Q4_K.ty()
            } else {
                T::Q3_K.ty()
            };
        } else if f == F::Q2_K_S && n_gqa >= 4 {
            new_type = T::Q4_K.ty();
        } else if f == F::IQ3_XXS {
            new_type = if n_gqa >= 4 {
                T::Q4_K.ty()
            } else if !has_imatrix {
                T::IQ3_S.ty()
            } else {
                T::IQ3_XXS.ty()
            };
        } else if (f == F::IQ3_XS || f == F::IQ3_S) && n_gqa >= 4 {
            new_type = T::Q4_K.ty();
        } else if f == F::IQ3_M {
            new_type = T::Q4_K.ty();
        } else if f == F::Q3_K_M {
            new_type = if qs.i_attention_wv < 2 {
                T::Q5_K.ty()
            } else {
                T::Q4_K.ty()
            };
        } else if f == F::Q3_K_L {
            new_type = T::Q5_K.ty();
        } else if (f == F::IQ4_NL || f == F::IQ4_XS) && n_gqa >= 4 {
            new_type = T::Q5_K.ty();
        } else if (f == F::Q4_K_M || f == F::Q5_K_M)
            && use_more_bits(qs.i_attention_wv, qs.n_attention_wv)
        {
            new_type = T::Q6_K.ty();
        } else if f == F::Q4_K_S && qs.i_attention_wv < 4 {
            new_type = T::Q5_K.ty();
        }
        if model.is_70b && (new_type.id == T::Q3_K || new_type.id == T::Q4_K) {
            new_type = T::Q5_K.ty();
        }
        if n_expert == 8 {
            new_type = T::Q8_0.ty();
        }
        qs.i_attention_wv += 1;
    } else if cat == C::AttentionK {
        if n_expert == 8 {
            new_type = T::Q8_0.ty();
        } else if f == F::IQ3_XS {
            new_type = T::IQ3_XXS.ty();
        } else if f == F::IQ3_XXS {
            new_type = T::IQ2_S.ty();
        }
    } else if cat == C::AttentionQ {
        if f == F::IQ3_XS {
            new_type = T::IQ3_XXS.ty();
        } else if f == F::IQ3_XXS {
            new_type = T::IQ2_S.ty();
        }
    } else if cat == C::FfnDown {
        let (i_layer, n_layer) = layer_info(qs.i_ffn_down, qs.n_ffn)?;
        if f == F::Q2_K {
            new_type = T::Q3_K.ty();
        } else if f == F::Q2_K_S {
            if i_layer < n_layer / 8 {
                new_type = T::Q4_K.ty();
            }
        } else if f == F::IQ3_XXS && !has_imatrix {
            new_type = if i_layer < n_layer / 8 {
                T::Q4_K.ty()
            } else {
                T::Q3_K.ty()
            };
        } else if f == F::Q3_K_M {
            new_type = if i_layer < n_layer / 16 {
                T::Q5_K.ty()
            } else if !falcon || use_more_bits(i_layer, n_layer) {
                T::Q4_K.ty()
            } else {
                T::Q3_K.ty()
            };
        } else if f == F::IQ3_M
            && (i_layer < n_layer / 8 || (n_expert == 8 && use_more_bits(i_layer, n_layer)))
        {
            new_type = T::Q4_K.ty();
        } else if f == F::Q3_K_L {
            new_type = if falcon { T::Q4_K.ty() } else { T::Q5_K.ty() };
        } else if f == F::Q4_K_M {
            if falcon {
                new_type = if i_layer < n_layer / 16 {
                    T::Q6_K.ty()
                } else if use_more_bits(i_layer, n_layer) {
                    T::Q5_K.ty()
                } else {
                    T::Q4_K.ty()
                };
            } else if use_more_bits(i_layer, n_layer) {
                new_type = T::Q6_K.ty();
            }
        } else if i_layer < n_layer / 8 && (f == F::IQ4_NL || f == F::IQ4_XS) && !has_imatrix {
            new_type = T::Q5_K.ty();
        } else if f == F::Q5_K_M && use_more_bits(i_layer, n_layer) {
            new_type = T::Q6_K.ty();
        } else if f == F::Q4_K_S && !falcon && i_layer < n_layer / 8 {
            new_type = T::Q5_K.ty();
        } else if (f == F::Q4_0 || f == F::Q5_0) && has_imatrix && i_layer < n_layer / 8 {
            new_type = if f == F::Q4_0 {
                T::Q4_1.ty()
            } else {
                T::Q5_1.ty()
            };
        }
        qs.i_ffn_down += 1;
    } else if cat == C::AttentionOutput {
        if !falcon {
            if n_expert == 8 {
                if [
                    F::Q2_K,
                    F::IQ3_XS,
                    F::IQ3_XXS,
                    F::Q3_K_S,
                    F::Q3_K_M,
                    F::IQ4_NL,
                    F::Q4_K_S,
                    F::Q4_K_M,
                    F::IQ3_S,
                    F::IQ3_M,
                    F::IQ4_XS,
                ]
                .contains(&f)
                {
                    new_type = T::Q5_K.ty();
                }
            } else if f == F::Q2_K {
                new_type = T::Q3_K.ty();
            } else if f == F::IQ3_XXS {
                new_type = T::IQ3_S.ty();
            } else if f == F::Q3_K_M || f == F::IQ3_M {
                new_type = T::Q4_K.ty();
            } else if f == F::Q3_K_L {
                new_type = T::Q5_K.ty();
            }
        } else if f == F::Q3_K_L {
            new_type = T::Q4_K.ty();
        }
    } else if cat == C::AttentionQkv {
        if f == F::Q3_K_M || f == F::Q3_K_L || f == F::IQ3_M {
            new_type = T::Q4_K.ty();
        } else if f == F::Q4_K_M {
            new_type = T::Q5_K.ty();
        } else if f == F::Q5_K_M {
            new_type = T::Q6_K.ty();
        }
    } else if cat == C::FfnGate || cat == C::FfnUp {
        let counter = if cat == C::FfnGate {
            qs.i_ffn_gate
        } else {
            qs.i_ffn_up
        };
        let (i_layer, n_layer) = layer_info(counter, qs.n_ffn)?;
        if f == F::IQ3_XS && i_layer >= n_layer / 8 && i_layer < 7 * n_layer / 8 {
            new_type = T::IQ3_XXS.ty();
        }
        if cat == C::FfnGate {
            qs.i_ffn_gate += 1;
        } else {
            qs.i_ffn_up += 1;
        }
    }
    Ok(new_type)
}
