//! Issue #21's memory checks on the tiny architecture models (testdata/exec/tiny-*-q8_0.gguf and the
//! tiny llama): `pocket inspect --ctx N` against what llama.cpp allocated for them at contexts 512,
//! 4096 and 32768 — every KV cache (cells, layers, size), the output buffer, `n_ubatch` and, where
//! pocket's estimate follows the graph, the compute buffer (testdata/exec/tiny-arch-buffers.txt,
//! scripts/make-tiny-arch-memory.sh). `compute-buffer-shapes.txt` (same script) holds llama.cpp's
//! compute buffer for llama files whose attention width differs from n_embd: the case where the
//! estimate stops holding.
//!
//! At real size: testdata/headers/NAME.bf16.header.gguf (scripts/make-arch21-headers.py, the published
//! configs of Llama-3.2-1B, Phi-4-mini, SmolLM3-3B, Granite-3.3-2B, Ministral-3 3B, Gemma-2 2B,
//! Gemma 2B, Qwen3-1.7B) against llama.cpp's buffers at 4096 and 32768 (arch21-buffers.txt) and
//! `llama-quantize --dry-run`'s plan for 11 file types (arch21-plans.json), both made by
//! scripts/make-arch21-header-goldens.sh.

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
    lines("exec/tiny-arch-buffers.txt")
}

fn lines(path: &str) -> Vec<Line> {
    let text = std::fs::read_to_string(common::testdata(path)).unwrap();
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
    memory_of(&file, ctx)
}

fn memory_of(file: &std::path::Path, ctx: u64) -> J {
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
    assert!(
        doc["memory"].is_object(),
        "{}: no memory estimate",
        file.display()
    );
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

/// KV caches, `n_ubatch` and output buffer of one golden line against pocket's estimate `m`.
fn check_caches(l: &Line, m: &J) {
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

#[test]
fn kv_caches_and_output_buffer_as_llama_cpp_allocates() {
    for l in golden() {
        check_caches(&l, &memory(&l.name, l.ctx));
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

fn header(name: &str) -> std::path::PathBuf {
    common::testdata(&format!("headers/{name}.bf16.header.gguf"))
}

/// The header `name` extended (sparse, nothing written) to the size its tensor data would have, as
/// llama.cpp was given it: pocket, like llama.cpp, reads a header-only file as truncated. Returns the
/// copy and its tensor count.
fn sparse_copy(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, usize) {
    let src = header(name);
    let out = common::pocket()
        .args(["inspect", "--json"])
        .arg(&src)
        .output()
        .unwrap();
    let doc: J = serde_json::from_slice(&out.stdout).unwrap();
    let tensors = doc["tensors"].as_array().unwrap();
    let end = tensors
        .iter()
        .map(|t| t["file_offset"].as_u64().unwrap() + t["n_bytes"].as_u64().unwrap())
        .max()
        .unwrap();
    let copy = dir.join(format!("{name}.gguf"));
    std::fs::copy(&src, &copy).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&copy)
        .unwrap()
        .set_len(end)
        .unwrap();
    (copy, tensors.len())
}

/// Compute buffers pocket does not yet reproduce at real size (open, issue #21): Phi-4-mini at 4096
/// gets 16 MiB more from llama.cpp than at 32768; pocket gives the 32768 figure at both.
const HEADER_COMPUTE_GAPS: &[(&str, u64)] = &[("phi-4-mini", 4096)];

#[test]
fn real_size_headers_memory_as_llama_cpp_prints() {
    let g = lines("headers/arch21-buffers.txt");
    assert_eq!(g.len(), 16, "8 models x 2 contexts");
    let dir = tempfile::tempdir().unwrap();
    for l in g {
        let (copy, _) = sparse_copy(dir.path(), &l.name);
        let m = memory_of(&copy, l.ctx);
        check_caches(&l, &m);
        let what = format!("{} at {}", l.name, l.ctx);
        let ours = m["compute_bytes"].as_u64().unwrap() as f64 / MIB;
        if HEADER_COMPUTE_GAPS.contains(&(l.name.as_str(), l.ctx)) {
            assert!(m["notes"].to_string().contains("approximated"), "{what}");
        } else {
            let rel = (ours - l.compute_mib).abs() / l.compute_mib;
            assert!(
                rel <= 0.01,
                "{what}: compute {ours} MiB vs {}",
                l.compute_mib
            );
        }
    }
}

/// `pocket requantize --dry-run` on each header (its sparse copy: a plan reads nothing of the data)
/// equals llama-quantize's plan, tensor by tensor.
#[test]
fn real_size_headers_requantize_plan_equals_llama_quantize() {
    let text = std::fs::read_to_string(common::testdata("headers/arch21-plans.json")).unwrap();
    let g: J = serde_json::from_str(&text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(g.as_object().unwrap().len(), 8);
    for (name, want) in g.as_object().unwrap() {
        let (copy, n_tensors) = sparse_copy(dir.path(), name);
        let names: Vec<&str> = want["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(names.len(), n_tensors, "{name}");
        for (ftype, types) in want["plans"].as_object().unwrap() {
            let out = common::pocket()
                .args(["requantize", "--dry-run", "--json"])
                .arg(&copy)
                .arg(ftype)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name} {ftype}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let plan: J = serde_json::from_slice(&out.stdout).unwrap();
            let ours: std::collections::HashMap<&str, &str> = plan["tensors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| (t["name"].as_str().unwrap(), t["to"].as_str().unwrap()))
                .collect();
            assert_eq!(ours.len(), names.len(), "{name} {ftype}");
            for (n, t) in names.iter().zip(types.as_array().unwrap()) {
                let t = t.as_str().unwrap();
                assert_eq!(
                    ours.get(n).map(|s| s.to_uppercase()),
                    Some(t.to_string()),
                    "{name} {ftype}: {n}"
                );
            }
        }
    }
}
