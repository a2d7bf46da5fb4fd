//! Issue #21's memory checks on the tiny architecture models (testdata/exec/tiny-*-q8_0.gguf and the
//! tiny llama): `pocket inspect --ctx N` against what llama.cpp allocated for them at contexts 512,
//! 4096 and 32768 — every KV cache (cells, layers, size), the output buffer, `n_ubatch` and, where
//! pocket's estimate follows the graph, the compute buffer (testdata/exec/tiny-arch-buffers.txt,
//! scripts/make-tiny-arch-memory.sh). `compute-buffer-shapes.txt` (same script) holds llama.cpp's
//! compute buffer for llama files whose attention width differs from n_embd: the case where the
//! estimate stops holding.

mod common;

use serde_json::Value as J;

/// Models whose compute buffer pocket's estimate reproduces (llama.cpp prints 0.01 MiB).
const COMPUTE_HOLDS: &[&str] = &["tiny-llama-q8_0"];

const MIB: f64 = 1048576.0;

struct Line {
    name: String,
    ctx: u64,
    n_ubatch: u64,
    compute_mib: f64,
    output_mib: f64,
    /// (cells, layers, MiB) per cache, the full one first.
    caches: Vec<(u64, u64, f64)>,
}

fn golden() -> Vec<Line> {
    let text = std::fs::read_to_string(common::testdata("exec/tiny-arch-buffers.txt")).unwrap();
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let caches = f[5..]
                .iter()
                .map(|c| {
                    let p: Vec<&str> = c.split('/').collect();
                    (
                        p[0].parse().unwrap(),
                        p[1].parse().unwrap(),
                        p[2].parse().unwrap(),
                    )
                })
                .collect();
            Line {
                name: f[0].to_string(),
                ctx: f[1].parse().unwrap(),
                n_ubatch: f[2].parse().unwrap(),
                compute_mib: f[3].parse().unwrap(),
                output_mib: f[4].parse().unwrap(),
                caches,
            }
        })
        .collect()
}

fn memory(name: &str, ctx: u64) -> J {
    let file = if name == "tiny-llama-q8_0" {
        common::testdata("tiny-llama-q8_0.gguf")
    } else {
        common::testdata(&format!("exec/{name}.gguf"))
    };
    let out = common::pocket()
        .args(["inspect", "--json", "--ctx", &ctx.to_string()])
        .arg(&file)
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

#[test]
fn golden_covers_every_tiny_architecture_at_three_contexts() {
    let g = golden();
    for arch in [
        "llama", "qwen3", "gemma", "gemma2", "granite", "phi3", "smollm3", "mistral3",
    ] {
        let ctxs: Vec<u64> = g
            .iter()
            .filter(|l| l.name == format!("tiny-{arch}-q8_0"))
            .map(|l| l.ctx)
            .collect();
        assert_eq!(ctxs, [512, 4096, 32768], "{arch}");
    }
}

#[test]
fn kv_caches_and_output_buffer_as_llama_cpp_allocates() {
    for l in golden() {
        let m = memory(&l.name, l.ctx);
        let what = format!("{} at {}", l.name, l.ctx);
        assert_eq!(m["n_ubatch"].as_u64(), Some(l.n_ubatch), "{what}");
        let kv = m["kv_bytes"].as_u64().unwrap() as f64 / MIB;
        let theirs: f64 = l.caches.iter().map(|c| c.2).sum();
        assert!(
            (kv - theirs).abs() <= 0.005 * l.caches.len() as f64 + 1e-9,
            "{what}: KV {kv} MiB vs llama.cpp {theirs} MiB"
        );
        let (cells, layers, mib) = l.caches[0];
        assert!(
            cells == m["n_ctx"].as_u64().unwrap().div_ceil(256) * 256,
            "{what}"
        );
        let full = m["kv_full_bytes"].as_u64().unwrap() as f64 / MIB;
        assert!(
            (full - mib).abs() <= 0.005 + 1e-9,
            "{what}: {full} vs {mib}"
        );
        match l.caches.get(1) {
            Some(&(swa_cells, swa_layers, swa_mib)) => {
                assert_eq!(m["swa_cache_cells"].as_u64(), Some(swa_cells), "{what}");
                assert_eq!(m["n_layers_swa"].as_u64(), Some(swa_layers), "{what}");
                let swa = m["kv_swa_bytes"].as_u64().unwrap() as f64 / MIB;
                assert!((swa - swa_mib).abs() <= 0.005 + 1e-9, "{what}");
                assert_eq!(
                    m["n_layers_kv"].as_u64(),
                    Some(layers + swa_layers),
                    "{what}"
                );
            }
            None => {
                assert_eq!(m["n_layers_swa"].as_u64(), Some(0), "{what}");
                assert_eq!(m["n_layers_kv"].as_u64(), Some(layers), "{what}");
            }
        }
        let out = m["output_bytes"].as_u64().unwrap() as f64 / MIB;
        assert!(
            (out - l.output_mib).abs() <= 0.005 + 1e-9,
            "{what}: output {out}"
        );
    }
}

/// Within 1% where the estimate follows the graph; elsewhere the estimate must say it is approximate.
/// Open (issue #21): the tiny gemma..mistral3 (n_head x head_dim = 2 n_embd) get 0.25 MiB more from
/// llama.cpp than pocket estimates at every context, the tiny qwen3 (QK norms, n_ff < n_embd) 0.25
/// MiB more too: ggml's allocator leaves holes the live-set sum does not see
/// (compute-buffer-shapes.txt).
#[test]
fn compute_buffer_within_one_percent_or_marked_approximate() {
    for l in golden() {
        let m = memory(&l.name, l.ctx);
        let what = format!("{} at {}", l.name, l.ctx);
        let ours = m["compute_bytes"].as_u64().unwrap() as f64 / MIB;
        if COMPUTE_HOLDS.contains(&l.name.as_str()) {
            let rel = (ours - l.compute_mib).abs() / l.compute_mib;
            assert!(
                rel <= 0.01,
                "{what}: compute {ours} MiB vs {}",
                l.compute_mib
            );
        } else {
            let notes = m["notes"].to_string();
            assert!(notes.contains("approximated"), "{what}: {notes}");
        }
    }
}
