//! The executor on the zoo's real models against llama.cpp (issue #18 items 2 and 3), kept to what
//! a test may spend on a 1.5B model (the heavy checks are scripts/check-zoo.sh):
//! - `pocket perplexity` on Qwen2.5-Coder-1.5B-Instruct Q4_K_M within 1% of `llama-perplexity` on
//!   the same text and chunks (testdata/exec/qwen-ppl-c128.txt, scripts/make-zoo-exec-goldens.sh);
//! - `pocket run` generating on it;
//! - pocket's next-token distributions within llama.cpp's own noise: llama.cpp's spread against
//!   itself across settings that change only its rounding (testdata/exec/kld-noise.txt,
//!   scripts/kld-noise-zoo.sh), against pocket's KL-divergence from llama.cpp's logits (the top 64
//!   tokens llama.cpp stored per position, `*-llama-top64-c128.bin`, scripts/kld-top-k.py).
//!
//! Everything here runs pocket at the test's CPU level (`POCKET_CPU`), so the assertions are
//! tolerances that hold on any x86-64 CPU, not llama.cpp's numbers of one CPU. This file takes
//! about a minute per Qwen test natively on 2 cores; the lead may skip it under emulation.

mod common;

use std::path::Path;

use pocket::exec::tokenizer::Vocab;
use pocket::exec::{Session, Weights};
use pocket::GgufFile;
use serde_json::Value as J;

/// `pocket perplexity` on 4 chunks of 128 tokens within 1% of llama-perplexity. (After one chunk of
/// 63 scored tokens the two differ by more — 2.3% measured — as a few tokens' rounding weighs more on
/// a short average: only the whole run is held to 1%.)
#[test]
fn zoo_qwen_perplexity_within_one_percent_of_llama_perplexity() {
    let theirs = common::golden_ppl("exec/qwen-ppl-c128.txt");
    assert_eq!(theirs.len(), 4);
    let (so_far, ours) = common::pocket_ppl(&common::zoo("qwen"), 128, 4);
    for (ours, t) in so_far.iter().zip(&theirs) {
        eprintln!(
            "PPL so far: pocket {ours:.4}  llama-perplexity {t:.4}  ({:+.3}%)",
            100.0 * (ours / t - 1.0)
        );
    }
    assert!(
        (ours / theirs[3] - 1.0).abs() < 0.01,
        "{ours} vs {}",
        theirs[3]
    );
}

/// `pocket run` on Qwen: greedy generation gives tokens that decode to text, and is repeatable.
#[test]
fn zoo_qwen_runs() {
    let run = || {
        let out = common::pocket()
            .arg("run")
            .arg(common::zoo("qwen"))
            .args([
                "-p",
                "def fibonacci(n):",
                "-n",
                "8",
                "--temp",
                "0",
                "--json",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<J>(&out.stdout).unwrap()
    };
    let a = run();
    let tokens = a["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 8, "{a}");
    assert!(tokens.iter().all(|t| t.as_u64().unwrap() < 151_936), "{a}");
    assert_eq!(
        run()["tokens"],
        a["tokens"],
        "greedy generation is deterministic"
    );
}

/// The margin over llama.cpp's largest self-spread that pocket may use. llama.cpp's spread is one
/// run per setting on 252 positions, and pocket differs from llama.cpp in more than one of those
/// settings at once (its own micro-batch, thread split and attention order), so a quarter more is
/// allowed; measured, pocket sits below the spread itself (testdata/exec/kld-noise.txt).
const NOISE_MARGIN: f64 = 1.25;

/// llama.cpp's largest mean KLD against itself for `model` in the noise golden, and pocket's
/// measured full KLD (what `pocket kld BASE.kld MODEL` gave when the golden was made).
fn noise(model: &str) -> (f64, f64) {
    let text = std::fs::read_to_string(common::testdata("exec/kld-noise.txt")).unwrap();
    let mut spread = 0f64;
    let mut pocket = None;
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f[0] != model {
            continue;
        }
        let kld: f64 = f[2].parse().unwrap();
        if f[1] == "pocket" {
            pocket = Some(kld);
        } else {
            spread = spread.max(kld);
        }
    }
    assert!(spread > 0.0, "no llama.cpp spread for {model}");
    (spread, pocket.expect("pocket's measurement"))
}

/// pocket's KL-divergence from llama.cpp's stored top-`k` log-probabilities (plus one bucket for the
/// rest of the vocabulary), over the first `max_chunks` chunks of the golden: (mean KLD, share of
/// positions where the top token agrees).
fn kld_from_llama_top_k(model: &Path, golden: &str, max_chunks: usize) -> (f64, f64) {
    let b = std::fs::read(common::testdata(golden)).unwrap();
    assert_eq!(&b[..8], b"PKTOPK1\0");
    let u = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let (n_ctx, n_chunk, k, n_vocab) = (u(8), u(12), u(16), u(20));
    let tokens: Vec<u32> = (0..n_ctx * n_chunk).map(|i| u(24 + 4 * i) as u32).collect();
    let rows = 24 + 4 * n_ctx * n_chunk;
    let first = n_ctx / 2;
    let n_scored = n_ctx - 1 - first;
    assert_eq!(b.len(), rows + n_chunk * n_scored * k * 8, "{golden} size");

    let f = GgufFile::open(model).unwrap();
    let g = f.gguf().unwrap();
    let w = Weights::load(std::slice::from_ref(&g)).unwrap();
    assert_eq!(w.hp.n_vocab, n_vocab);
    let vocab = Vocab::from_gguf(&g).unwrap();
    let bos = if vocab.add_bos() { vocab.bos() } else { None };
    let mut s = Session::new(&w, n_ctx);
    let (mut sum, mut same, mut count) = (0f64, 0usize, 0usize);
    for c in 0..n_chunk.min(max_chunks) {
        let mut chunk = tokens[c * n_ctx..(c + 1) * n_ctx].to_vec();
        if let Some(t) = bos {
            chunk[0] = t;
        }
        s.clear();
        let logits = s.eval(&chunk, n_ctx - first).unwrap();
        for (j, row) in logits.chunks_exact(n_vocab).take(n_scored).enumerate() {
            let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
            let lse = row
                .iter()
                .map(|&x| (x as f64 - max).exp())
                .sum::<f64>()
                .ln();
            let at = rows + ((c * n_scored + j) * k) * 8;
            let (mut kl, mut p_top, mut q_top) = (0f64, 0f64, 0f64);
            for i in 0..k {
                let id = u(at + 8 * i);
                let lp = f32::from_le_bytes(b[at + 8 * i + 4..at + 8 * i + 8].try_into().unwrap())
                    as f64;
                let lq = row[id] as f64 - max - lse;
                let p = lp.exp();
                kl += p * (lp - lq);
                p_top += p;
                q_top += lq.exp();
            }
            let (p_rest, q_rest) = ((1.0 - p_top).max(0.0), (1.0 - q_top).max(1e-300));
            if p_rest > 1e-12 {
                kl += p_rest * (p_rest / q_rest).ln();
            }
            sum += kl;
            count += 1;
            let ours = pocket::exec::sample::argmax(row);
            same += (ours as usize == u(at)) as usize;
        }
    }
    (sum / count as f64, same as f64 / count as f64)
}

fn within_noise(name: &str, model: &Path, max_chunks: usize) {
    let (spread, measured) = noise(name);
    let (kld, same) = kld_from_llama_top_k(
        model,
        &format!("exec/{name}-llama-top64-c128.bin"),
        max_chunks,
    );
    eprintln!(
        "{name}: pocket's KLD from llama.cpp (top 64 + rest) {kld:.6}, same top {:.1}%; \
         llama.cpp against itself up to {spread:.6}; pocket's full KLD when measured {measured:.6}",
        100.0 * same
    );
    assert!(
        kld <= NOISE_MARGIN * spread,
        "{name}: pocket's KLD from llama.cpp {kld:.6} exceeds {NOISE_MARGIN} x llama.cpp's own spread {spread:.6}"
    );
    // The recorded full measurement obeys the same bound (the golden is consistent).
    assert!(
        measured <= NOISE_MARGIN * spread,
        "{name}: {measured} recorded"
    );
    assert!(
        same > 0.85,
        "{name}: top token agrees at only {:.1}%",
        100.0 * same
    );
}

#[test]
fn zoo_gemma_within_llama_cpp_noise() {
    within_noise("gemma", &common::gemma(), 4);
}

/// Two of the golden's four chunks (126 positions), to keep the test near a minute; all four with
/// `POCKET_ZOO_FULL=1` (scripts/check-zoo.sh).
#[test]
fn zoo_qwen_within_llama_cpp_noise() {
    let full = std::env::var_os("POCKET_ZOO_FULL").is_some_and(|v| v != "0" && !v.is_empty());
    within_noise("qwen", &common::zoo("qwen"), if full { 4 } else { 2 });
}
