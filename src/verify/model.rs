//! `verify`'s checks of the model the header describes: `types`, `backends`, `tokenizer`,
//! `completeness` (the architecture's tensors) and `device` (will it fit).

use std::collections::HashMap;

use crate::gguf::{Gguf, TensorInfo};

use super::device::{self, DeviceEstimate, DeviceProfile};
use super::{arch, backends, Out};

/// The `types` and `backends` checks over the whole model's tensors. Returns the weight types used
/// by matrices (2-D or more) with their count and backend support.
pub(super) fn types_checks(
    all: &HashMap<&str, &TensorInfo<'_>>,
    out: &mut Out,
) -> Vec<(String, u64, [bool; 6])> {
    let mut types: HashMap<&str, u64> = HashMap::new();
    let mut all_types: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for t in all.values() {
        all_types.insert(t.ty.name);
        if t.dims.len() >= 2 && t.dims[1] > 1 && !t.ty.name.starts_with('i') {
            *types.entry(t.ty.name).or_default() += 1;
        }
    }
    out.pass(
        "types",
        if all_types.is_empty() {
            "no tensors, so no tensor types to check".into()
        } else {
            format!(
                "every tensor type is known to llama.cpp: {}",
                all_types.iter().copied().collect::<Vec<_>>().join(", ")
            )
        },
    );
    let mut tv: Vec<(String, u64, [bool; 6])> = types
        .iter()
        .map(|(n, c)| (n.to_string(), *c, backends::support(n)))
        .collect();
    tv.sort();
    let mut lacking = Vec::new();
    for (n, _, s) in &tv {
        for (b, ok) in backends::BACKENDS.iter().zip(s) {
            if !ok {
                lacking.push(format!("{b} has no {n} kernel"));
            }
        }
    }
    if lacking.is_empty() {
        out.pass("backends", "every backend (CPU x86/ARM, Metal, Vulkan, OpenCL/Adreno, CUDA) has matrix kernels for every weight type used".into());
    } else {
        out.warn(
            "backends",
            format!(
                "{} (those products fall back to the CPU)",
                lacking.join("; ")
            ),
            None,
        );
    }
    tv
}

pub(super) fn tokenizer_checks(g: &Gguf<'_>, embd_rows: Option<u64>, out: &mut Out) -> Option<u64> {
    let arr_len = |k: &str| g.get(k).and_then(|v| v.as_array()).map(|a| a.len);
    let n_tok = arr_len("tokenizer.ggml.tokens");
    let mut ok = true;
    let Some(n) = n_tok else {
        out.warn(
            "tokenizer",
            "no vocabulary (tokenizer.ggml.tokens): llama.cpp can load the model but not tokenize text".into(),
            Some("tokenizer.ggml.tokens".into()),
        );
        return None;
    };
    for k in ["tokenizer.ggml.scores", "tokenizer.ggml.token_type"] {
        match arr_len(k) {
            Some(m) if m != n => {
                ok = false;
                out.fail(
                    "tokenizer",
                    format!("{m} entries for {n} tokens"),
                    Some(k.to_string()),
                );
            }
            None if g.get(k).is_some() => {
                ok = false;
                out.fail("tokenizer", "is not an array".into(), Some(k.to_string()));
            }
            _ => {}
        }
    }
    if let Some(rows) = embd_rows {
        if rows != n {
            ok = false;
            out.fail(
                "tokenizer",
                format!("the vocabulary has {n} tokens but token_embd.weight has {rows} rows"),
                Some("token_embd.weight".into()),
            );
        }
    }
    for special in ["bos", "eos", "eot", "eom", "pad", "unk", "sep", "mask"] {
        let key = format!("tokenizer.ggml.{special}_token_id");
        if let Some(v) = g.get(&key) {
            match v.as_i64() {
                Some(id) if id >= 0 && (id as u64) < n => {}
                // llama.cpp treats -1 (as i32/u32 all ones) as "none".
                Some(-1) => {}
                Some(id) if id as u64 == u32::MAX as u64 => {}
                other => {
                    ok = false;
                    out.fail(
                        "tokenizer",
                        format!(
                            "{special} token id {other:?} is not below the vocabulary size {n}"
                        ),
                        Some(key),
                    );
                }
            }
        }
    }
    if let Some(m) = g.get("tokenizer.ggml.merges").and_then(|v| v.as_array()) {
        let mut bad = 0u64;
        let mut first = None;
        for (i, s) in m.strings().enumerate() {
            // llama.cpp splits each merge's bytes at the first space after byte 0 (`find(' ', 1)`);
            // the first part may be a multi-byte character (`"Ġ t"`), so this works on bytes.
            let b = s.as_bytes();
            let good = b
                .iter()
                .skip(1)
                .position(|&c| c == b' ')
                .is_some_and(|p| p + 2 < b.len());
            if !good {
                bad += 1;
                first.get_or_insert((i, s.to_string()));
            }
        }
        if m.elem_type != crate::gguf::ValueType::String {
            ok = false;
            out.fail(
                "tokenizer",
                "merges is not an array of strings".into(),
                Some("tokenizer.ggml.merges".into()),
            );
        } else if let Some((i, s)) = first {
            ok = false;
            out.fail(
                "tokenizer",
                format!("{bad} merges are not of the form \"a b\"; the first is #{i} {s:?}"),
                Some("tokenizer.ggml.merges".into()),
            );
        }
    }
    // An embedding model (it declares how its outputs are pooled) is not chatted with.
    let embedding = g
        .architecture()
        .is_some_and(|a| g.get(&format!("{a}.pooling_type")).is_some());
    if !embedding
        && g.get("tokenizer.chat_template")
            .and_then(|v| v.as_str())
            .is_none()
    {
        out.warn(
            "tokenizer",
            "no chat template (tokenizer.chat_template): apps must supply one".into(),
            Some("tokenizer.chat_template".into()),
        );
    }
    if ok {
        out.pass(
            "tokenizer",
            format!(
                "{n} tokens ({}), arrays consistent{}",
                g.get_str("tokenizer.ggml.model").unwrap_or("?"),
                if embd_rows.is_some() {
                    " with token_embd"
                } else {
                    ""
                }
            ),
        );
    }
    Some(n)
}

pub(super) fn completeness_checks(
    g: &Gguf<'_>,
    tensors: &HashMap<&str, &TensorInfo<'_>>,
    n_vocab: Option<u64>,
    out: &mut Out,
) {
    let Some(arch) = g.architecture() else {
        out.warn(
            "completeness",
            "general.architecture is missing: not a model llama.cpp can load".into(),
            Some("general.architecture".into()),
        );
        return;
    };
    if tensors.is_empty() {
        // llama.cpp's own models/ggml-vocab-*.gguf are such files: fine for tokenizing, not for running.
        let msg = if n_vocab.is_some() {
            "the file holds no tensors: a vocabulary-only file (for tokenizers), not a model llama.cpp can run"
        } else {
            "the file holds no tensors: not a model llama.cpp can run"
        };
        out.warn("completeness", msg.into(), None);
        return;
    }
    if !arch::KNOWN.contains(&arch) {
        out.warn(
            "completeness",
            format!(
                "no tensor list for architecture '{arch}' here (known: {})",
                arch::KNOWN.join(", ")
            ),
            None,
        );
        return;
    }
    let h = match arch::hparams(g, arch, n_vocab) {
        Ok(h) => h,
        Err(e) => {
            out.fail("completeness", format!("hyper-parameters: {e}"), None);
            return;
        }
    };
    let needs = arch::expected(arch, &h).unwrap_or_default();
    let mut used: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    let mut check = |e: &arch::Expected| match tensors.get(e.name.as_str()) {
        Some(t) => {
            used.insert(e.name.clone());
            if t.dims != e.shape {
                wrong.push(format!(
                    "'{}' has shape {:?}, expected {:?}",
                    e.name, t.dims, e.shape
                ));
            }
        }
        None if e.required => missing.push(e.name.clone()),
        None => {}
    };
    for n in &needs {
        match n {
            arch::Need::One(e) => check(e),
            // Fused QKV if the file has it, else separate Q, K, V.
            arch::Need::Either(fused, separate) => {
                let pick = if tensors.contains_key(fused[0].name.as_str()) {
                    fused
                } else {
                    separate
                };
                pick.iter().for_each(&mut check);
            }
        }
    }
    let mut extra: Vec<&str> = tensors
        .keys()
        .copied()
        .filter(|n| !used.contains(*n) && !arch::tolerated(n))
        .collect();
    extra.sort();
    let n_miss = missing.len();
    if !missing.is_empty() {
        out.fail(
            "completeness",
            format!(
                "{n_miss} required tensors missing: {}{}",
                missing
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if n_miss > 5 { ", …" } else { "" }
            ),
            Some(missing[0].clone()),
        );
    }
    for w in wrong.iter().take(10) {
        out.fail(
            "completeness",
            w.clone(),
            w.split('\'').nth(1).map(str::to_string),
        );
    }
    if !extra.is_empty() {
        out.warn(
            "completeness",
            format!(
                "{} tensors llama.cpp's {arch} does not load (it refuses files with unused tensors): {}{}",
                extra.len(),
                extra.iter().take(5).copied().collect::<Vec<_>>().join(", "),
                if extra.len() > 5 { ", …" } else { "" }
            ),
            Some(extra[0].to_string()),
        );
    }
    if missing.is_empty() && wrong.is_empty() {
        out.pass(
            "completeness",
            format!(
                "{arch}: every tensor of {} layers present with the shapes n_embd {}, n_ff {}, heads {}/{}, head dim {}, vocab {} give",
                h.n_layer,
                h.n_embd,
                h.n_ff.first().copied().unwrap_or(0),
                h.n_head.first().copied().unwrap_or(0),
                h.n_head_kv.iter().copied().max().unwrap_or(0),
                h.head_k,
                h.n_vocab
            ),
        );
    }
}

/// The `device` check: the memory estimate for `d` at context `n_ctx`, and its verdict.
pub(super) fn device_check(
    g0: &Gguf<'_>,
    all: &HashMap<&str, &TensorInfo<'_>>,
    d: &DeviceProfile,
    n_ctx: u64,
    out: &mut Out,
) -> Option<DeviceEstimate> {
    let w = device::Weights::of(all.values().copied());
    let est = device::estimate(g0, &w, d, n_ctx);
    match est {
        Ok(e) => {
            let msg = format!(
                "{}: needs {:.2} GiB at context {} (weights {:.2} + KV {:.2} + compute {:.2}), the app may use {:.2} GiB → {}",
                d.name,
                gib(e.total_bytes),
                e.memory.n_ctx,
                gib(e.memory.weights_bytes),
                gib(e.memory.kv_bytes),
                gib(e.compute_bytes),
                gib(d.app_bytes),
                e.verdict.name()
            );
            match e.verdict {
                device::Verdict::Fits => out.pass("device", msg),
                device::Verdict::Tight => out.warn("device", msg, None),
                device::Verdict::DoesNotFit => out.fail("device", msg, None),
            }
            Some(e)
        }
        Err(e) => {
            out.fail("device", e.to_string(), None);
            None
        }
    }
}

fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
}
