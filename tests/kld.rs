//! `pocket kld` against llama-perplexity's `--kl-divergence` (goldens by scripts/make-kld-golden.sh):
//! the tiny llama's Q4_K_M against its Q8_0, and gemma-3 270M's Q4_K_M against a Q8_0 that pocket's
//! requantizer makes from it (the bytes llama-quantize writes); plus the command's refusals.

mod common;

use std::path::Path;

use serde_json::Value as J;

/// A number from llama-perplexity's statistics: the first value after `label`'s colon.
fn golden_value(golden: &str, label: &str) -> f64 {
    let line = golden
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no line {label:?} in the golden"));
    let rest = line.split_once(':').unwrap().1;
    rest.split(['±', '%'])
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

fn pocket_kld(base: &Path, other: &Path, chunks: usize) -> J {
    let out = common::pocket()
        .arg("kld")
        .arg(base)
        .arg(other)
        .arg("-f")
        .arg(common::testdata("exec/ppl-text.txt"))
        .args(["-c", "128", "--chunks", &chunks.to_string(), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pocket kld failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

struct Check<'a> {
    golden: &'a str,
    summary: &'a J,
    failures: Vec<String>,
}

impl Check<'_> {
    /// `ours` (a JSON path in the summary, scaled by `scale`) within `rel` of the golden line `label`.
    fn rel(&mut self, label: &str, path: &[&str], scale: f64, rel: f64) {
        let theirs = golden_value(self.golden, label);
        let mut v = self.summary;
        for p in path {
            v = &v[*p];
        }
        let ours = v.as_f64().unwrap_or_else(|| panic!("{path:?} in {v}")) * scale;
        let d = (ours - theirs).abs() / theirs.abs();
        eprintln!(
            "{label:<30} pocket {ours:12.6}  llama-perplexity {theirs:12.6}  ({:+.2}%)",
            100.0 * (ours - theirs) / theirs
        );
        if d > rel {
            self.failures.push(format!(
                "{label}: pocket {ours}, llama-perplexity {theirs} (off by {:.2}%, allowed {:.2}%)",
                100.0 * d,
                100.0 * rel
            ));
        }
    }
}

/// Compares the headline numbers; `rel` for the mean KLD, same-top-p and the PPL ratio.
fn compare(golden: &str, doc: &J, count: u64, rel: f64) -> Vec<String> {
    let s = &doc["summary"];
    assert_eq!(s["count"].as_u64(), Some(count), "scored tokens");
    let mut c = Check {
        golden,
        summary: s,
        failures: Vec::new(),
    };
    c.rel("Mean    KLD", &["kld", "value"], 1.0, rel);
    c.rel("Same top p", &["same_top", "value"], 100.0, rel);
    c.rel("Mean PPL(Q)/PPL(base)", &["ppl_ratio", "value"], 1.0, rel);
    c.rel("Mean PPL(Q) ", &["ppl", "value"], 1.0, rel);
    c.rel("Mean PPL(base)", &["ppl_base", "value"], 1.0, rel);
    c.rel("Median  KLD", &["kld_quantiles", "median"], 1.0, 2.0 * rel);
    c.rel("90.0%   KLD", &["kld_quantiles", "90.0%"], 1.0, 2.0 * rel);
    c.rel("RMS Δp", &["p_diff_rms", "value"], 100.0, 3.0 * rel);
    c.failures
}

/// The tiny llama (random weights, 288 tokens): 8 chunks of 128, 504 scored tokens. Its logits
/// follow llama.cpp's to float rounding, so the statistics agree closely.
#[test]
fn tiny_llama_kld_matches_llama_perplexity() {
    let golden = std::fs::read_to_string(common::testdata("exec/tiny-llama-kld-c128.txt")).unwrap();
    let doc = pocket_kld(
        &common::testdata("tiny-llama-q8_0.gguf"),
        &common::testdata("tiny-llama-q4_k_m.gguf"),
        8,
    );
    assert_eq!(doc["n_chunks"].as_u64(), Some(8));
    assert_eq!(doc["chunks"].as_array().unwrap().len(), 8);
    let failures = compare(&golden, &doc, 8 * 63, 0.02);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A model against itself: no divergence, every top token the same, PPL ratio 1.
#[test]
fn a_model_against_itself_diverges_by_nothing() {
    let m = common::testdata("tiny-llama-q8_0.gguf");
    let doc = pocket_kld(&m, &m, 2);
    let s = &doc["summary"];
    assert!(s["kld"]["value"].as_f64().unwrap().abs() < 1e-6, "{s}");
    assert_eq!(s["same_top"]["value"].as_f64(), Some(1.0));
    assert!((s["ppl_ratio"]["value"].as_f64().unwrap() - 1.0).abs() < 1e-3);
}

#[test]
fn different_vocabularies_are_refused() {
    let out = common::pocket()
        .arg("kld")
        .arg(common::testdata("tiny-llama-q8_0.gguf"))
        .arg(common::gemma())
        .arg("-f")
        .arg(common::testdata("exec/ppl-text.txt"))
        .args(["-c", "128"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("do not share a vocabulary") && err.contains("288 tokens against 262144"),
        "{err}"
    );
}

#[test]
fn too_short_a_text_is_refused() {
    let m = common::testdata("tiny-llama-q8_0.gguf");
    let out = common::pocket()
        .arg("kld")
        .arg(&m)
        .arg(&m)
        .arg("-f")
        .arg(common::testdata("exec/gemma-prompts.txt"))
        .args(["-c", "128", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: J = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let msg = doc["error"]["message"].as_str().unwrap();
    assert!(msg.contains("needs at least 256"), "{msg}");
}
