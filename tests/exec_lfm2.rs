//! The executor against llama.cpp on a tiny random-weight lfm2 (issue #22; scripts/make-tiny-arch.py
//! and scripts/make-tiny-arch-goldens.sh, testdata/README.md): five layers, conv conv attention conv
//! attention, as LFM2-350M begins. Held as tests/exec_arch21.rs holds the architectures of #21:
//! - logits at 16 positions of one batch, and token by token (the conv state carried between
//!   calls, the KV cache of the two attention layers);
//! - greedy generation of 16 tokens after two prompts (the prompts' ids too: pre-type "lfm2");
//! - `pocket perplexity` at -c 128 over 4 chunks within 0.5% of llama-perplexity (the state cleared
//!   between chunks);
//! - `inspect --ctx` against the KV cache and recurrent state llama.cpp allocates at 512, 4096 and
//!   32768: KV for the attention layers only, the conv state constant.

mod common;

use pocket::exec::sample::argmax;
use pocket::exec::tokenizer::Vocab;
use pocket::exec::{Session, Weights};
use pocket::GgufFile;
use serde_json::Value as J;

/// As tests/exec_arch21.rs: bit-identical at the goldens' class (AVX2), [`OTHER_TOL`] of the row's
/// largest logit elsewhere (scalar and aarch64 ggml quantize Q8_0 activations with `1/d` where the
/// x86 SIMD code uses `127/max`: a byte flipped now and then, which the conv state and the KV cache
/// carry on). Measured at the scalar level: below 1.4e-7 up to position 12, then 1.3e-2, 1.6e-2 and
/// 7.9e-3; at position 14 llama.cpp's two largest logits are 5.2e-3 (of the row's largest) apart
/// and pocket picks the other (in the batch and token by token). Under qemu's aarch64 (NEON):
/// 1.3e-2 from position 5 on, the same tie flipped token by token only. Elsewhere than the
/// goldens' class a row's argmax may differ only at such a tie.
const TOL: f32 = 1e-4;
const OTHER_TOL: f32 = 1e-1;
/// llama.cpp's top logit minus its logit at pocket's argmax, relative to the row's largest
/// magnitude, where the two differ (other classes only).
const NEAR_TIE: f32 = 1e-2;

fn golden_class() -> bool {
    cfg!(target_arch = "x86_64") && pocket::isa::level() == pocket::isa::Level::Avx2
}

fn model() -> GgufFile {
    GgufFile::open(common::testdata("exec/tiny-lfm2-q8_0.gguf")).unwrap()
}

/// Rows of `ours` against `theirs`: each within [`TOL`] at the goldens' class, [`OTHER_TOL`]
/// elsewhere, with the same argmax (elsewhere: or a [`NEAR_TIE`] in llama.cpp's row).
fn check_rows(ours: &[f32], theirs: &[f32], n: usize, what: &str) {
    let r = common::rel_row_diffs(ours, theirs, n);
    let tol = if golden_class() { TOL } else { OTHER_TOL };
    assert!(r.iter().all(|x| x.0 < tol), "tiny-lfm2 {what}: {r:?}");
    for (p, (a, b)) in ours.chunks_exact(n).zip(theirs.chunks_exact(n)).enumerate() {
        let (oa, ob) = (argmax(a) as usize, argmax(b) as usize);
        if oa == ob {
            continue;
        }
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let gap = (b[ob] - b[oa]) / scale;
        eprintln!("tiny-lfm2 {what}: position {p}: argmax {oa}, llama.cpp's {ob}, {gap:.1e} apart");
        assert!(
            !golden_class() && gap < NEAR_TIE,
            "tiny-lfm2 {what}: position {p}: {r:?}"
        );
    }
}

#[test]
fn tiny_lfm2_batch_logits_match_llama_cpp() {
    let toks = common::token_ids("exec/tiny-arch.tokens");
    let f = model();
    let g = f.gguf().unwrap();
    let w = Weights::load(std::slice::from_ref(&g)).unwrap();
    assert_eq!(w.hp.arch.name(), "lfm2");
    assert_eq!(w.hp.is_conv, [true, true, false, true, false]);
    assert_eq!((w.hp.l_cache, w.hp.n_head_kv, w.hp.head_dim), (3, 1, 64));
    let mut s = Session::new(&w, 64);
    let ours = s.eval(&toks, toks.len()).unwrap();
    let theirs = common::f32_golden("exec/tiny-lfm2-q8_0.logits.f32");
    let r = common::rel_row_diffs(&ours, &theirs, w.hp.n_vocab);
    check_rows(&ours, &theirs, w.hp.n_vocab, "batch");
    let same = ours
        .iter()
        .zip(&theirs)
        .filter(|(a, b)| a.to_bits() == b.to_bits())
        .count();
    let per: Vec<String> = r.iter().map(|x| format!("{:.1e}", x.0)).collect();
    eprintln!(
        "tiny-lfm2: {same} of {} logits bit-identical; per position {}",
        ours.len(),
        per.join(" ")
    );
    if golden_class() {
        assert_eq!(
            same,
            ours.len(),
            "tiny-lfm2: not bit-identical at the avx2 level"
        );
    }
}

/// One token at a time: the conv state carries each layer's last two inputs from call to call.
#[test]
fn tiny_lfm2_incremental_logits_match_llama_cpp() {
    let toks = common::token_ids("exec/tiny-arch.tokens");
    let f = model();
    let g = f.gguf().unwrap();
    let w = Weights::load(std::slice::from_ref(&g)).unwrap();
    let theirs = common::f32_golden("exec/tiny-lfm2-q8_0.logits.f32");
    let n = w.hp.n_vocab;
    // Token by token, and in uneven batches (3 + 1 + 5 + 7): the state is the same either way.
    for sizes in [vec![1; 16], vec![3, 1, 5, 7]] {
        let mut s = Session::new(&w, 16);
        let (mut ours, mut at) = (Vec::new(), 0);
        for len in &sizes {
            ours.extend(s.eval(&toks[at..at + len], *len).unwrap());
            at += len;
        }
        let r = common::rel_row_diffs(&ours, &theirs, n);
        let worst = r.iter().fold(0f32, |m, x| m.max(x.0));
        eprintln!("tiny-lfm2 in batches of {sizes:?}: largest difference {worst:.1e}");
        check_rows(&ours, &theirs, n, &format!("in batches of {sizes:?}"));
    }
}

/// `clear` empties the conv state: after a sequence and a clear the logits are those of a new
/// session (a state left over would change every position: the convolution reaches back two
/// tokens). And the conv layers count: layer 0's kernel set to 0 changes every position.
#[test]
fn tiny_lfm2_clear_resets_the_conv_state() {
    let toks = common::token_ids("exec/tiny-arch.tokens");
    let f = model();
    let g = f.gguf().unwrap();
    let w = Weights::load(std::slice::from_ref(&g)).unwrap();
    let fresh = Session::new(&w, 32).eval(&toks[..4], 4).unwrap();
    let mut s = Session::new(&w, 32);
    s.eval(&toks[4..], 1).unwrap();
    s.clear();
    assert_eq!(s.n_past(), 0);
    assert_eq!(s.eval(&toks[..4], 4).unwrap(), fresh);
    let mut flat = Weights::load(std::slice::from_ref(&g)).unwrap();
    flat.layers[0].shortconv.as_mut().unwrap().kernel.fill(0.0);
    let other = Session::new(&flat, 32).eval(&toks[..4], 4).unwrap();
    let n = w.hp.n_vocab;
    for p in 0..4 {
        assert_ne!(
            fresh[p * n..(p + 1) * n],
            other[p * n..(p + 1) * n],
            "position {p}"
        );
    }
}

/// Greedy generation as llama-simple runs it (tests/exec_arch21.rs): the prompts' ids (BOS added by
/// pre-type "lfm2"), then at each step llama.cpp's token is pocket's argmax.
#[test]
fn tiny_lfm2_greedy_matches_llama_cpp() {
    let f = model();
    let g = f.gguf().unwrap();
    let w = Weights::load(std::slice::from_ref(&g)).unwrap();
    let vocab = Vocab::from_gguf(&g).unwrap();
    let golden = "exec/tiny-lfm2-greedy.txt";
    let text = std::fs::read_to_string(common::testdata(golden)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{golden}");
    let ids = |l: &str, tag: &str| -> Vec<u32> {
        let mut it = l.split_whitespace();
        assert_eq!(it.next(), Some(tag));
        it.map(|t| t.parse().unwrap()).collect()
    };
    let (mut worst, mut exact, mut steps) = (0f32, 0, 0);
    for case in lines.chunks_exact(3) {
        let (prompt, want_p, want_g) = (case[0], ids(case[1], "prompt"), ids(case[2], "gen"));
        let toks = vocab.tokenize(prompt, true, true).unwrap();
        assert_eq!(toks, want_p, "tiny-lfm2: {prompt:?}");
        assert_eq!(toks[0], 0, "BOS first");
        let last = *want_g.last().unwrap();
        assert!(
            want_g.len() == 16 || want_g.len() < 16 && vocab.is_eog(last),
            "{golden}: {want_g:?}"
        );
        steps += want_g.len();
        let mut s = Session::new(&w, toks.len() + want_g.len());
        let mut logits = s.eval(&toks, 1).unwrap();
        for &t in &want_g {
            let best = argmax(&logits);
            worst = worst.max(logits[best as usize] - logits[t as usize]);
            exact += usize::from(best == t);
            logits = s.eval(&[t], 1).unwrap();
        }
    }
    eprintln!("tiny-lfm2: {exact} of {steps} greedy steps identical, largest gap {worst:.2e}");
    let near_tie = if golden_class() { 0.0 } else { 0.05 };
    assert!(worst <= near_tie, "tiny-lfm2: {worst}");
    assert!(exact + 2 >= steps, "tiny-lfm2: {exact} of {steps}");
    if golden_class() {
        assert_eq!(exact, steps);
    }
}

/// `pocket perplexity -c 128 --chunks 4` within 0.5% of llama-perplexity after every chunk.
#[test]
fn tiny_lfm2_perplexity_within_half_a_percent() {
    let theirs = common::golden_ppl("exec/tiny-lfm2-ppl-c128.txt");
    assert_eq!(theirs.len(), 4);
    let model = common::testdata("exec/tiny-lfm2-q8_0.gguf");
    let (so_far, _) = common::pocket_ppl(&model, 128, 4);
    assert_eq!(so_far.len(), 4);
    for (&ours, t) in so_far.iter().zip(&theirs) {
        let rel = (ours - t) / t;
        eprintln!("tiny-lfm2: pocket {ours:.4}  llama-perplexity {t:.4}  ({rel:+.5})");
        assert!(rel.abs() < 0.005, "tiny-lfm2: {ours} vs {t}");
    }
}

/// The tiny model's bytes with `shortconv.l_cache` set to `l_cache` (its metadata only: what the
/// memory estimate reads), in a temporary file.
fn with_l_cache(dir: &std::path::Path, l_cache: u32) -> std::path::PathBuf {
    let mut b = std::fs::read(common::testdata("exec/tiny-lfm2-q8_0.gguf")).unwrap();
    let key = b"lfm2.shortconv.l_cache";
    let at = b.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    assert_eq!(b[at..at + 4], 4u32.to_le_bytes(), "a u32");
    assert_eq!(b[at + 4..at + 8], 3u32.to_le_bytes());
    b[at + 4..at + 8].copy_from_slice(&l_cache.to_le_bytes());
    let p = dir.join(format!("lfm2-l{l_cache}.gguf"));
    std::fs::write(&p, &b).unwrap();
    p
}

/// `inspect --ctx` against llama.cpp's allocation (testdata/exec/tiny-lfm2-mem.txt): the KV cache
/// of the two attention layers only (cells = the context) and the conv state, the same at every
/// context: `(l_cache - 1) * n_embd` f32 for each of the three conv layers. The tiny model's state
/// (3 KiB) prints as 0.00 MiB, so the same model with a 1025-tap convolution (1.5 MiB; llama.cpp ran
/// a real one, the golden script's tiny-lfm2-wide) checks it where it shows. The compute buffer too.
#[test]
fn tiny_lfm2_memory_as_llama_cpp_allocates() {
    let text = std::fs::read_to_string(common::testdata("exec/tiny-lfm2-mem.txt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for name in ["tiny-lfm2-q8_0", "tiny-lfm2-wide-q8_0"] {
        let (path, l_cache) = if name == "tiny-lfm2-q8_0" {
            (common::testdata("exec/tiny-lfm2-q8_0.gguf"), 3u64)
        } else {
            (with_l_cache(dir.path(), 1025), 1025)
        };
        for ctx in [512u64, 4096, 32768] {
            let lines: Vec<Vec<&str>> = text
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .filter(|f| f[0] == name && f[1] == ctx.to_string())
                .collect();
            assert_eq!(lines.len(), 3, "{name} at {ctx}: {lines:?}");
            let out = common::pocket()
                .args(["inspect", "--json", "--ctx", &ctx.to_string()])
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let doc: J = serde_json::from_slice(&out.stdout).unwrap();
            let m = &doc["memory"];
            let what = format!("{name} at {ctx}");
            for f in &lines {
                let n = |i: usize| f[i].parse::<u64>().unwrap();
                let (cells, layers, bytes) = (n(3), n(4), n(5));
                let mib = bytes as f64 / 1048576.0;
                let (exact, ours) = match f[2] {
                    // f16 K and V of 1 KV head of 64 per attention layer and cell.
                    "kv" => {
                        assert_eq!((cells, layers), (ctx, 2), "{what}");
                        assert_eq!(m["n_layers_kv"].as_u64(), Some(2), "{what}");
                        (cells * layers * 64 * 2 * 2, m["kv_bytes"].as_u64().unwrap())
                    }
                    // One cell (one sequence); llama.cpp counts all 5 layers, sizes the 3 conv ones.
                    "rs" => {
                        assert_eq!((cells, layers), (1, 5), "{what}");
                        let exact = (l_cache - 1) * 128 * 4 * 3;
                        (exact, m["recurrent_state_bytes"].as_u64().unwrap())
                    }
                    // The compute buffer (a fit: src/compute_buffer.rs), to the 0.01 MiB printed.
                    "compute" => {
                        let ours = m["compute_bytes"].as_u64().unwrap();
                        eprintln!("{what} compute: llama.cpp {mib:.2} MiB, pocket {ours} bytes");
                        assert!(
                            (ours as f64 / 1048576.0 - mib).abs() <= 0.005 + 1e-6,
                            "{what}"
                        );
                        checked += 1;
                        continue;
                    }
                    k => panic!("{what}: kind {k}"),
                };
                eprintln!(
                    "{what} {}: llama.cpp {mib:.2} MiB, pocket {ours} bytes",
                    f[2]
                );
                assert!(
                    (exact as f64 / 1048576.0 - mib).abs() <= 0.005 + 1e-6,
                    "{what}: {f:?}"
                );
                assert_eq!(ours, exact, "{what} {}: {m}", f[2]);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 18);
}

/// `verify` knows lfm2's tensors: the tiny model is complete; without a conv layer's `in_proj` it
/// is not, and the executor refuses it naming the tensor.
#[test]
fn tiny_lfm2_completeness() {
    let out = common::pocket()
        .args(["verify", "--json"])
        .arg(common::testdata("exec/tiny-lfm2-q8_0.gguf"))
        .output()
        .unwrap();
    let doc: J = serde_json::from_slice(&out.stdout).unwrap();
    let s = doc.to_string();
    assert!(s.contains("lfm2: every tensor of 5 layers present"), "{s}");
    let e = load_edited(b"blk.3.shortconv.in_proj", b"blk.3.shortconv.in_proX");
    assert!(e.contains("blk.3.shortconv.in_proj.weight"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    let mut b = std::fs::read(common::testdata("exec/tiny-lfm2-q8_0.gguf")).unwrap();
    let from = b"blk.3.shortconv.in_proj";
    let at = b.windows(from.len()).position(|w| w == from).unwrap();
    b[at + from.len() - 1] = b'X';
    std::fs::write(&p, &b).unwrap();
    let out = common::pocket()
        .args(["verify", "--json"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("missing: blk.3.shortconv.in_proj.weight"), "{s}");
    let e = load_edited(b"token_embd_norm", b"token_embd_norX");
    assert!(e.contains("token_embd_norm.weight"), "{e}");
    let e = load_edited(b"lfm2.shortconv.l_cache", b"lfm2.shortconv.l_cachX");
    assert!(e.contains("lfm2.shortconv.l_cache"), "{e}");
}

/// The tiny model with the first `from` replaced by `to` (same length), loaded: the error.
fn load_edited(from: &[u8], to: &[u8]) -> String {
    let mut b = std::fs::read(common::testdata("exec/tiny-lfm2-q8_0.gguf")).unwrap();
    let at = b.windows(from.len()).position(|w| w == from).unwrap();
    b[at..at + to.len()].copy_from_slice(to);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    std::fs::write(&p, &b).unwrap();
    let f = GgufFile::open(&p).unwrap();
    let g = f.gguf().unwrap();
    Weights::load(std::slice::from_ref(&g))
        .err()
        .expect("load fails")
        .to_string()
}
