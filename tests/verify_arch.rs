//! Completeness per architecture: headers written with pocket's writer, tensor lists and shapes taken
//! by hand from llama.cpp's `load_arch_tensors`
//! (src/models/{qwen2,qwen3,gemma,gemma2,gemma3,phi3,mistral3,granite,smollm3}.cpp).
//! Each passes as listed, fails with one layer tensor missing, and fails with one shape wrong.

use pocket::gguf::spec::ggml_type_by_name;
use pocket::gguf::write::TensorSpec;
use pocket::gguf::{Endian, GgufWriter, Value};
use pocket::verify::{verify, Options, Status};

const E: u64 = 64;
const H: u64 = 4;
const HKV: u64 = 2;
const F: u64 = 128;
const V: u64 = 100;
const HK: u64 = 32; // key_length, deliberately not E / H

fn tensors(arch: &str) -> Vec<(String, Vec<u64>)> {
    let mut v: Vec<(String, Vec<u64>)> = vec![
        ("token_embd.weight".into(), vec![E, V]),
        ("output_norm.weight".into(), vec![E]),
    ];
    for i in 0..2 {
        let b = |s: &str| format!("blk.{i}.{s}");
        v.push((b("attn_norm.weight"), vec![E]));
        v.push((b("ffn_norm.weight"), vec![E]));
        match arch {
            "qwen2" => {
                let hd = E / H;
                v.push((b("attn_q.weight"), vec![E, E]));
                v.push((b("attn_k.weight"), vec![E, HKV * hd]));
                v.push((b("attn_v.weight"), vec![E, HKV * hd]));
                v.push((b("attn_q.bias"), vec![E]));
                v.push((b("attn_k.bias"), vec![HKV * hd]));
                v.push((b("attn_v.bias"), vec![HKV * hd]));
                v.push((b("attn_output.weight"), vec![E, E]));
            }
            "phi3" => {
                let hd = E / H;
                v.push((b("attn_qkv.weight"), vec![E, E + 2 * HKV * hd]));
                v.push((b("attn_output.weight"), vec![E, E]));
            }
            _ => {
                v.push((b("attn_q.weight"), vec![E, H * HK]));
                v.push((b("attn_k.weight"), vec![E, HKV * HK]));
                v.push((b("attn_v.weight"), vec![E, HKV * HK]));
                v.push((b("attn_output.weight"), vec![H * HK, E]));
            }
        }
        if arch == "qwen3" || arch == "gemma3" {
            v.push((b("attn_q_norm.weight"), vec![HK]));
            v.push((b("attn_k_norm.weight"), vec![HK]));
        }
        if arch == "gemma2" || arch == "gemma3" {
            v.push((b("post_attention_norm.weight"), vec![E]));
            v.push((b("post_ffw_norm.weight"), vec![E]));
        }
        if arch == "phi3" {
            v.push((b("ffn_up.weight"), vec![E, 2 * F]));
        } else {
            v.push((b("ffn_gate.weight"), vec![E, F]));
            v.push((b("ffn_up.weight"), vec![E, F]));
        }
        v.push((b("ffn_down.weight"), vec![F, E]));
    }
    v
}

fn header(arch: &str, ts: &[(String, Vec<u64>)]) -> Vec<u8> {
    let keys: Vec<String> = [
        "block_count",
        "embedding_length",
        "attention.head_count",
        "attention.head_count_kv",
        "feed_forward_length",
        "attention.key_length",
        "vocab_size",
    ]
    .iter()
    .map(|k| format!("{arch}.{k}"))
    .collect();
    let mut w = GgufWriter::new(Endian::Little);
    w.set("general.architecture", Value::String(arch));
    let hk = if arch == "qwen2" || arch == "phi3" {
        E / H
    } else {
        HK
    };
    for (k, v) in keys.iter().zip([2, E, H, HKV, F, hk, V]) {
        w.set(k, Value::U32(v as u32));
    }
    let f32t = ggml_type_by_name("f32").unwrap();
    for (n, d) in ts {
        w.tensors.push(TensorSpec {
            name: n,
            dims: d.clone(),
            ty: f32t,
        });
    }
    w.header_bytes().unwrap()
}

fn completeness(arch: &str, ts: &[(String, Vec<u64>)]) -> (Status, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("h.gguf");
    std::fs::write(&p, header(arch, ts)).unwrap();
    let opts = Options {
        header_only: true,
        ..Default::default()
    };
    let r = verify(&p, &opts).unwrap();
    let cs: Vec<_> = r.by_name("completeness").collect();
    let worst = cs.iter().map(|c| c.status).max().unwrap();
    (worst, cs.iter().map(|c| c.message.clone()).collect())
}

#[test]
fn each_architecture_passes_misses_and_misshapes() {
    for arch in [
        "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3", "mistral3", "llama", "granite",
        "smollm3",
    ] {
        let ts = tensors(arch);
        let (st, msgs) = completeness(arch, &ts);
        assert_eq!(st, Status::Pass, "{arch}: {msgs:?}");

        let mut missing = ts.clone();
        missing.retain(|(n, _)| n != "blk.1.ffn_down.weight");
        let (st, msgs) = completeness(arch, &missing);
        assert_eq!(st, Status::Fail, "{arch}");
        assert!(
            msgs.iter().any(|m| m.contains("blk.1.ffn_down.weight")),
            "{arch}: {msgs:?}"
        );

        let mut wrong = ts.clone();
        let i = wrong
            .iter()
            .position(|(n, _)| n == "blk.0.attn_output.weight")
            .unwrap();
        wrong[i].1 = vec![wrong[i].1[0] * 2, E];
        let (st, msgs) = completeness(arch, &wrong);
        assert_eq!(st, Status::Fail, "{arch}");
        assert!(
            msgs.iter()
                .any(|m| m.contains("'blk.0.attn_output.weight' has shape")),
            "{arch}: {msgs:?}"
        );
    }
}

/// gemma2's post-norms are required (a file without one fails naming it); gemma and gemma2 never load
/// `output.weight` (always token_embd), so a file with one is flagged as llama.cpp refuses it, while
/// granite takes one (or ties) and its optional biases.
#[test]
fn post_norms_and_tied_outputs() {
    let mut ts = tensors("gemma2");
    ts.retain(|(n, _)| n != "blk.1.post_ffw_norm.weight");
    let (st, msgs) = completeness("gemma2", &ts);
    assert_eq!(st, Status::Fail);
    assert!(
        msgs.iter()
            .any(|m| m.contains("blk.1.post_ffw_norm.weight")),
        "{msgs:?}"
    );
    for arch in ["gemma", "gemma2"] {
        let mut ts = tensors(arch);
        ts.push(("output.weight".into(), vec![E, V]));
        let (st, msgs) = completeness(arch, &ts);
        assert_eq!(st, Status::Warn, "{arch}: {msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("output.weight")), "{msgs:?}");
    }
    let mut ts = tensors("granite");
    ts.push(("output.weight".into(), vec![E, V]));
    ts.push(("blk.0.ffn_down.bias".into(), vec![E]));
    ts.push(("blk.0.attn_output.bias".into(), vec![E]));
    let (st, msgs) = completeness("granite", &ts);
    assert_eq!(st, Status::Pass, "{msgs:?}");
}

/// smollm3 takes optional Q/K/V biases but no output bias (its loader never asks for one, so a
/// file with one is flagged); phi3's LongRoPE factors are accepted beside its fused tensors.
#[test]
fn smollm3_biases_and_phi3_rope_factors() {
    let mut ts = tensors("smollm3");
    ts.push(("blk.0.attn_q.bias".into(), vec![H * HK]));
    ts.push(("blk.0.attn_k.bias".into(), vec![HKV * HK]));
    ts.push(("blk.0.attn_v.bias".into(), vec![HKV * HK]));
    let (st, msgs) = completeness("smollm3", &ts);
    assert_eq!(st, Status::Pass, "{msgs:?}");
    ts.push(("blk.1.attn_output.bias".into(), vec![E]));
    let (st, msgs) = completeness("smollm3", &ts);
    assert_eq!(st, Status::Warn, "{msgs:?}");
    assert!(
        msgs.iter().any(|m| m.contains("blk.1.attn_output.bias")),
        "{msgs:?}"
    );
    let mut ts = tensors("phi3");
    ts.push(("rope_factors_long.weight".into(), vec![(E / H) / 2]));
    ts.push(("rope_factors_short.weight".into(), vec![(E / H) / 2]));
    let (st, msgs) = completeness("phi3", &ts);
    assert_eq!(st, Status::Pass, "{msgs:?}");
}
