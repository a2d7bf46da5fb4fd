//! `pocket inspect --ctx N` sizes the KV cache exactly as llama.cpp allocates it: the golden
//! `testdata/expected/kv-cache.txt` holds llama.cpp's own "llama_kv_cache: size = …" log lines for
//! gemma-3 270M (sliding-window layers) and the tiny llama at several context lengths
//! (scripts/make-kv-golden.sh).

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
        let file = if model.starts_with("gemma") {
            common::gemma()
        } else {
            common::testdata(&format!("{model}.gguf"))
        };
        let m = memory(&file, *ctx);
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
