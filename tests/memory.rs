//! `pocket inspect --ctx N` sizes the KV cache exactly as llama.cpp allocates it, and its compute and
//! output buffers as llama.cpp prints them: the goldens `testdata/expected/kv-cache.txt` and
//! `compute-buffer.txt` hold llama.cpp's own log lines ("llama_kv_cache: size = …", "CPU compute
//! buffer size = …") for gemma-3 270M (sliding-window layers), the tiny llama, and the zoo's
//! Qwen2.5-Coder 1.5B and nomic-embed-text-v1.5 (an embedding model: no KV cache) at several context
//! lengths (scripts/make-kv-golden.sh).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value as J;

fn memory(file: &PathBuf, ctx: u64) -> J {
    let out = common::pocket()
        .args(["inspect", "--json", "--ctx", &ctx.to_string()])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: J = serde_json::from_slice(&out.stdout).unwrap();
    doc["memory"].clone()
}

/// The model a golden line names: the zoo's real models, else a file of testdata/.
fn model_file(name: &str) -> PathBuf {
    if name.starts_with("gemma") {
        common::gemma()
    } else if name.starts_with("qwen") {
        common::zoo("qwen")
    } else if name.starts_with("nomic") {
        common::zoo("nomic")
    } else {
        common::testdata(&format!("{name}.gguf"))
    }
}

/// One cache llama.cpp created: (cells, layers, bytes).
type Cache = (u64, u64, u64);

#[test]
fn kv_cache_matches_llama_cpp() {
    let text = std::fs::read_to_string(common::testdata("expected/kv-cache.txt")).unwrap();
    let mut caches: BTreeMap<(String, u64), Vec<Cache>> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| f[i].parse::<u64>().unwrap();
        caches
            .entry((f[0].to_string(), n(1)))
            .or_default()
            .push((n(2), n(3), n(4)));
    }
    assert!(caches.len() >= 10, "golden too small: {caches:?}");
    let mut swa_seen = false;
    for ((model, ctx), cs) in &caches {
        let m = memory(&model_file(model), *ctx);
        let what = format!("{model} at ctx {ctx}");
        let total: u64 = cs.iter().map(|c| c.2).sum();
        assert_eq!(m["kv_bytes"].as_u64(), Some(total), "{what}: {m}");
        let layers: u64 = cs.iter().map(|c| c.1).sum();
        assert_eq!(m["n_layers_kv"].as_u64(), Some(layers), "{what}");
        // With two caches, llama.cpp logs the full-attention one first, then the sliding-window one.
        if let [full, swa] = cs[..] {
            swa_seen = true;
            assert_eq!(m["kv_full_bytes"].as_u64(), Some(full.2), "{what}");
            assert_eq!(m["kv_swa_bytes"].as_u64(), Some(swa.2), "{what}");
            assert_eq!(m["swa_cache_cells"].as_u64(), Some(swa.0), "{what}");
            assert_eq!(m["n_layers_swa"].as_u64(), Some(swa.1), "{what}");
        }
        assert_eq!(
            m["total_bytes"].as_u64(),
            Some(m["weights_bytes"].as_u64().unwrap() + total),
            "{what}"
        );
    }
    assert!(swa_seen, "the golden has no sliding-window model");
}

const MIB: f64 = 1048576.0;

/// Compute and output buffers (and the KV total) equal to what llama.cpp prints, to its 0.01 MiB,
/// for every model and context of the golden, through `inspect --ctx` and `verify --device`.
#[test]
fn compute_buffers_match_llama_cpp() {
    let text = std::fs::read_to_string(common::testdata("expected/compute-buffer.txt")).unwrap();
    let mut seen = BTreeMap::new();
    for line in text.lines() {
        // MODEL CTX N_UBATCH COMPUTE_MIB OUTPUT_MIB KV_MIB
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 6, "{line:?}");
        let (model, ctx) = (f[0], f[1].parse::<u64>().unwrap());
        let file = model_file(model);
        let m = memory(&file, ctx);
        let what = format!("{model} at ctx {ctx}");
        let mib = |k: &str| {
            format!(
                "{:.2}",
                m[k].as_u64().unwrap_or_else(|| panic!("{k}: {m}")) as f64 / MIB
            )
        };
        assert_eq!(
            m["n_ubatch"].as_u64(),
            Some(f[2].parse().unwrap()),
            "{what}"
        );
        assert_eq!(mib("compute_bytes"), f[3], "{what}: compute buffer");
        assert_eq!(mib("output_bytes"), f[4], "{what}: output buffer");
        assert_eq!(mib("kv_bytes"), f[5], "{what}: KV cache");
        *seen.entry(model.to_string()).or_insert(0) += 1;

        // verify --device says the same, and counts both buffers in its total.
        if ctx == 4096 {
            let out = common::pocket()
                .args(["verify", "--json", "--header-only", "--device", "iphone-16"])
                .args(["--ctx", "4096"])
                .arg(&file)
                .output()
                .unwrap();
            let doc: J = serde_json::from_slice(&out.stdout).unwrap();
            let d = &doc["models"][0]["device"];
            assert_eq!(d["compute_bytes"], m["compute_bytes"], "{what}: verify");
            assert_eq!(d["output_bytes"], m["output_bytes"], "{what}: verify");
            assert_eq!(
                d["total_bytes"].as_u64(),
                Some(
                    m["total_bytes"].as_u64().unwrap()
                        + m["compute_bytes"].as_u64().unwrap()
                        + m["output_bytes"].as_u64().unwrap()
                ),
                "{what}: verify total"
            );
        }
    }
    for model in ["gemma", "tiny-llama", "qwen", "nomic"] {
        assert!(
            seen.keys().any(|k| k.starts_with(model)),
            "the golden has no {model}: {seen:?}"
        );
    }
}

/// An embedding model (nomic-bert) runs without a KV cache in llama.cpp: none is sized.
#[test]
fn an_embedding_model_has_no_kv_cache() {
    let m = memory(&common::zoo("nomic"), 2048);
    assert_eq!(m["kv_bytes"].as_u64(), Some(0), "{m}");
    assert_eq!(m["n_layers_kv"].as_u64(), Some(0), "{m}");
    let notes = m["notes"].to_string();
    assert!(notes.contains("without a KV cache"), "{notes}");
}

#[test]
fn ctx_on_a_file_without_hyperparameters_is_a_clear_error() {
    let out = common::pocket()
        .args(["inspect", "--ctx", "512"])
        .arg(common::testdata("values-le-v3.gguf"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("testarch.block_count"), "{err}");
}
