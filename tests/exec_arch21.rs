//! The executor against llama.cpp on tiny random-weight gemma, gemma2, granite, phi3, smollm3 and
//! mistral3 models (issue #21;
//! scripts/make-tiny-arch.py and scripts/make-tiny-arch-goldens.sh, testdata/README.md):
//! - logits at 16 positions of one batch, and token by token through the KV cache;
//! - greedy generation of 16 tokens after two prompts (the prompts' ids too);
//! - `pocket perplexity` at -c 128 over 4 chunks within 0.5% of llama-perplexity;
//! - `inspect --ctx` KV-cache sizes as llama.cpp allocates them (gemma2's sliding-window cache).
//!
//! The models cover each architecture's layer kinds: gemma's sqrt(n_embd) embedding scale, GELU
//! and Q scaling; gemma2's post-norms, attention and final soft-capping and a window of 6 on layer
//! 0 (layer 1 global), so 16 tokens and 128-token chunks reach past it; granite's embedding,
//! residual, attention and logit scales; phi3's fused QKV and gate/up, partial NeoX rotation and
//! LongRoPE (short and long factors, attention factor), its sliding window left off as llama.cpp
//! leaves it; smollm3's NoPE fourth layer and Q/K/V biases; mistral3's YaRN and attention
//! temperature. All weights Q8_0 (the integer dot products ggml computes),
//! so only float rounding separates pocket from llama.cpp.

mod common;

use pocket::exec::sample::argmax;
use pocket::exec::tokenizer::Vocab;
use pocket::exec::{Session, Weights};
use pocket::GgufFile;
use serde_json::Value as J;

const ARCHS: [&str; 6] = ["gemma", "gemma2", "granite", "phi3", "smollm3", "mistral3"];

/// Logits relative to the row's largest magnitude. The goldens come from llama.cpp built for an
/// AVX2 machine (testdata/README.md, "CPU classes"): at that level pocket gives their bits, and
/// every row is held to [`TOL`] (1e-4; measured 0). At other levels pocket follows llama.cpp built
/// for another class, which differs from these goldens by more than rounding: its scalar and ARM
/// code quantizes Q8_0 activations with `1/d` where the x86 SIMD code uses `127/max` (about one
/// byte in 10^5 differs), and a byte flipped in the input of K or V changes the cache that every
/// later position reads. These random models, whose logits are small and flat, carry that to
/// ~1e-2 of the row's largest logit (measured at the scalar level: gemma 7.2e-3 at one position,
/// gemma2 1.6e-2 at two, granite 1.7e-2 from position 1 on, phi3 1.5e-2 at three; smollm3, whose
/// four layers carry a flip further, 1.4e-2 to 5.8e-2 from position 2 on, 6.8e-2 under qemu's
/// aarch64; mistral3 1.3e-2 at one position under qemu; every other row below
/// 2e-7; the argmax, greedy tokens and perplexity unchanged). There the bound is [`OTHER_TOL`].
const TOL: f32 = 1e-4;
const OTHER_TOL: f32 = 1e-1;

/// Whether pocket runs as the class of CPU the goldens were recorded on (AVX2 without AVX-512).
fn golden_class() -> bool {
    cfg!(target_arch = "x86_64") && pocket::isa::level() == pocket::isa::Level::Avx2
}

fn model(arch: &str) -> GgufFile {
    GgufFile::open(common::testdata(&format!("exec/tiny-{arch}-q8_0.gguf"))).unwrap()
}

/// Every position within [`TOL`] at the goldens' class, [`OTHER_TOL`] elsewhere, and the same
/// argmax everywhere.
fn check_rows(arch: &str, r: &[(f32, bool)]) {
    let tol = if golden_class() { TOL } else { OTHER_TOL };
    assert!(r.iter().all(|x| x.0 < tol), "tiny-{arch}: {r:?}");
    assert!(r.iter().all(|x| x.1), "tiny-{arch}: argmax differs: {r:?}");
}

#[test]
fn tiny_models_batch_logits_match_llama_cpp() {
    let toks = common::token_ids("exec/tiny-arch.tokens");
    assert_eq!(toks.len(), 16);
    for arch in ARCHS {
        let f = model(arch);
        let g = f.gguf().unwrap();
        let w = Weights::load(std::slice::from_ref(&g)).unwrap();
        assert_eq!(w.hp.arch.name(), arch);
        let mut s = Session::new(&w, 64);
        let ours = s.eval(&toks, toks.len()).unwrap();
        let theirs = common::f32_golden(&format!("exec/tiny-{arch}-q8_0.logits.f32"));
        let r = common::rel_row_diffs(&ours, &theirs, w.hp.n_vocab);
        let same = ours
            .iter()
            .zip(&theirs)
            .filter(|(a, b)| a.to_bits() == b.to_bits())
            .count();
        let per: Vec<String> = r.iter().map(|x| format!("{:.1e}", x.0)).collect();
        eprintln!(
            "tiny-{arch}: {same} of {} logits bit-identical; per position {}",
            ours.len(),
            per.join(" ")
        );
        check_rows(arch, &r);
        // At the class of CPU the goldens were made on, every operation follows llama.cpp's order.
        if golden_class() {
            assert_eq!(
                same,
                ours.len(),
                "tiny-{arch}: not bit-identical at the avx2 level"
            );
        }
    }
}

/// phi3's LongRoPE: a context above the original 256 (512 here) takes the long factors, as
/// llama.cpp chooses them for its padded context; the goldens' usual contexts (64, padded to 256)
/// the short ones. The two goldens differ from the second position on (position 0 is not rotated).
#[test]
fn tiny_phi3_long_context_takes_the_long_rope_factors() {
    let toks = common::token_ids("exec/tiny-arch.tokens");
    let f = model("phi3");
    let g = f.gguf().unwrap();
    let w = Weights::load(std::slice::from_ref(&g)).unwrap();
    assert_eq!((w.hp.n_rot, w.hp.head_dim), (48, 64));
    assert_eq!(w.hp.n_swa, 0, "llama.cpp disables phi3's sliding window");
    let n = w.hp.n_vocab;
    let short = common::f32_golden("exec/tiny-phi3-q8_0.logits.f32");
    let long = common::f32_golden("exec/tiny-phi3-q8_0.long.logits.f32");
    for p in 0..16 {
        let same = short[p * n..(p + 1) * n] == long[p * n..(p + 1) * n];
        assert_eq!(same, p == 0, "goldens at position {p}");
    }
    for (ctx, theirs) in [(256, &short), (257, &long), (512, &long)] {
        let ours = Session::new(&w, ctx).eval(&toks, 16).unwrap();
        let r = common::rel_row_diffs(&ours, theirs, n);
        let worst = r.iter().fold(0f32, |m, x| m.max(x.0));
        eprintln!("tiny-phi3 at a context of {ctx}: largest difference {worst:.1e}");
        check_rows("phi3", &r);
        if golden_class() {
            assert!(ours
                .iter()
                .zip(theirs.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}

/// One token at a time through the KV cache (gemma2: the window slides over cached keys).
#[test]
fn tiny_models_incremental_logits_match_llama_cpp() {
    let toks = common::token_ids("exec/tiny-arch.tokens");
    for arch in ARCHS {
        let f = model(arch);
        let g = f.gguf().unwrap();
        let w = Weights::load(std::slice::from_ref(&g)).unwrap();
        let theirs = common::f32_golden(&format!("exec/tiny-{arch}-q8_0.logits.f32"));
        let mut s = Session::new(&w, 16);
        let mut r = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            let ours = s.eval(&[*t], 1).unwrap();
            let row = &theirs[i * w.hp.n_vocab..(i + 1) * w.hp.n_vocab];
            r.push(common::rel_row_diffs(&ours, row, w.hp.n_vocab)[0]);
        }
        let worst = r.iter().fold(0f32, |m, x| m.max(x.0));
        eprintln!("tiny-{arch} token by token: largest difference {worst:.1e}");
        check_rows(arch, &r);
    }
}

/// The window matters: gemma2 with its sliding layer made global gives other logits from the
/// seventh token on (positions 0..=5 see the same keys either way).
#[test]
fn tiny_sliding_window_changes_late_logits_only() {
    let toks = common::token_ids("exec/tiny-arch.tokens");
    let f = model("gemma2");
    let g = f.gguf().unwrap();
    let w = Weights::load(std::slice::from_ref(&g)).unwrap();
    assert_eq!(w.hp.n_swa, 6);
    assert_eq!(w.hp.is_swa, [true, false]);
    let mut wide = Weights::load(std::slice::from_ref(&g)).unwrap();
    wide.hp.is_swa = vec![false, false];
    let a = Session::new(&w, 16).eval(&toks, 16).unwrap();
    let b = Session::new(&wide, 16).eval(&toks, 16).unwrap();
    let n = w.hp.n_vocab;
    for p in 0..16 {
        let same = a[p * n..(p + 1) * n] == b[p * n..(p + 1) * n];
        assert_eq!(same, p < 6, "position {p}");
    }
}

/// Logits with one of the model's parameters changed: which of the 16 positions differ.
fn changed_positions(arch: &str, edit: impl Fn(&mut pocket::exec::model::HParams)) -> Vec<usize> {
    let toks = common::token_ids("exec/tiny-arch.tokens");
    let f = model(arch);
    let g = f.gguf().unwrap();
    let w = Weights::load(std::slice::from_ref(&g)).unwrap();
    let mut other = Weights::load(std::slice::from_ref(&g)).unwrap();
    edit(&mut other.hp);
    let a = Session::new(&w, 16).eval(&toks, 16).unwrap();
    let b = Session::new(&other, 16).eval(&toks, 16).unwrap();
    let n = w.hp.n_vocab;
    (0..16)
        .filter(|p| a[p * n..(p + 1) * n] != b[p * n..(p + 1) * n])
        .collect()
}

/// The goldens exercise what each architecture adds: smollm3's NoPE layer (rotating it changes
/// every position but the first, which RoPE leaves alone), mistral3's attention temperature (its
/// floor is the original context of 8: positions 8-15 only) and its YaRN (every rotated position).
#[test]
fn tiny_models_use_nope_temperature_and_yarn() {
    let all_but_0: Vec<usize> = (1..16).collect();
    assert_eq!(changed_positions("smollm3", |h| h.nope_step = 0), all_but_0);
    let temp = changed_positions("mistral3", |h| {
        assert_eq!((h.attn_temp_scale, h.attn_temp_floor), (0.1, 8));
        h.attn_temp_scale = 0.0
    });
    assert_eq!(temp, (8..16).collect::<Vec<_>>());
    let yarn = changed_positions("mistral3", |h| {
        assert_eq!(h.rope_scaling.ext_factor, 1.0);
        h.rope_scaling.ext_factor = 0.0
    });
    assert_eq!(yarn, all_but_0);
}

/// Greedy generation as llama-simple runs it: the prompt's ids equal llama.cpp's, and at each of the
/// 16 steps (fewer when llama.cpp stopped at an end-of-generation token: phi3's second prompt)
/// llama.cpp's token is pocket's argmax (pocket fed llama.cpp's token, so every step is compared).
#[test]
fn tiny_models_greedy_matches_llama_cpp() {
    for arch in ARCHS {
        let f = model(arch);
        let g = f.gguf().unwrap();
        let w = Weights::load(std::slice::from_ref(&g)).unwrap();
        let vocab = Vocab::from_gguf(&g).unwrap();
        let golden = format!("exec/tiny-{arch}-greedy.txt");
        let text = std::fs::read_to_string(common::testdata(&golden)).unwrap();
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
            assert_eq!(toks, want_p, "tiny-{arch}: {prompt:?}");
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
        eprintln!(
            "tiny-{arch}: {exact} of {steps} greedy steps identical, largest gap {worst:.2e}"
        );
        // At the goldens' class every step is the same token. Elsewhere a near-tie may flip (under
        // qemu's aarch64, gemma2: one step of 32, 7.9e-3 below pocket's choice), within 0.05.
        let near_tie = if golden_class() { 0.0 } else { 0.05 };
        assert!(worst <= near_tie, "tiny-{arch}: {worst}");
        assert!(exact + 2 >= steps, "tiny-{arch}: {exact} of {steps}");
        if golden_class() {
            assert_eq!(exact, steps, "tiny-{arch}");
        }
    }
}

/// `pocket perplexity -c 128 --chunks 4` within 0.5% of llama-perplexity after every chunk (128
/// tokens per batch: the tiled attention, and gemma2's window inside one batch).
#[test]
fn tiny_models_perplexity_within_half_a_percent() {
    for arch in ARCHS {
        let theirs = common::golden_ppl(&format!("exec/tiny-{arch}-ppl-c128.txt"));
        assert_eq!(theirs.len(), 4);
        let model = common::testdata(&format!("exec/tiny-{arch}-q8_0.gguf"));
        let (so_far, _) = common::pocket_ppl(&model, 128, 4);
        for (&ours, t) in so_far.iter().zip(&theirs) {
            let rel = (ours - t) / t;
            eprintln!("tiny-{arch}: pocket {ours:.4}  llama-perplexity {t:.4}  ({rel:+.5})");
            assert!(rel.abs() < 0.005, "tiny-{arch}: {ours} vs {t}");
        }
    }
}

/// `inspect --ctx` against the KV caches llama.cpp allocated (testdata/exec/tiny-arch-kv.txt: cells
/// and layers per cache, bytes from the MiB it prints to two decimals): gemma2's sliding layer gets
/// `pad(min(n_ctx, n_swa + n_ubatch), 256)` cells, the global one `n_ctx`.
#[test]
fn tiny_models_kv_cache_as_llama_cpp_allocates() {
    let text = std::fs::read_to_string(common::testdata("exec/tiny-arch-kv.txt")).unwrap();
    let mut seen = std::collections::BTreeMap::<(String, u64), Vec<[u64; 3]>>::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| f[i].parse::<u64>().unwrap();
        seen.entry((f[0].to_string(), n(1)))
            .or_default()
            .push([n(2), n(3), n(4)]);
    }
    assert_eq!(seen.len(), 2 * ARCHS.len(), "{seen:?}");
    for ((name, ctx), caches) in &seen {
        // f16 K and V of 2 KV heads of 64 per layer and cell (phi3: 1 KV head).
        let per_cell = if name.contains("phi3") { 1 } else { 2 } * 64 * 2 * 2;
        let out = common::pocket()
            .args(["inspect", "--json", "--ctx", &ctx.to_string()])
            .arg(common::testdata(&format!("exec/{name}.gguf")))
            .output()
            .unwrap();
        assert!(out.status.success());
        let doc: J = serde_json::from_slice(&out.stdout).unwrap();
        let m = &doc["memory"];
        let what = format!("{name} at {ctx}");
        for c in caches {
            let mib = c[2] as f64 / 1048576.0;
            let exact = c[0] * c[1] * per_cell;
            assert!(
                (exact as f64 / 1048576.0 - mib).abs() <= 0.005 + 1e-6,
                "{what}: {c:?}"
            );
        }
        let total: u64 = caches.iter().map(|c| c[0] * c[1] * per_cell).sum();
        assert_eq!(m["kv_bytes"].as_u64(), Some(total), "{what}: {m}");
        if let [full, swa] = caches[..] {
            assert_eq!(m["swa_cache_cells"].as_u64(), Some(swa[0]), "{what}");
            assert_eq!(m["n_layers_swa"].as_u64(), Some(swa[1]), "{what}");
            assert_eq!(
                m["kv_full_bytes"].as_u64(),
                Some(full[0] * full[1] * per_cell)
            );
        } else {
            assert_ne!(name, "tiny-gemma2-q8_0", "{what}: gemma2 has two caches");
        }
    }
}

/// An architecture the executor does not know fails at load, naming it.
#[test]
fn unknown_architecture_fails_before_compute() {
    let src = std::fs::read(common::testdata("exec/tiny-gemma-q8_0.gguf")).unwrap();
    // "gemma" -> "gemmb" in general.architecture (same length, so every offset stays valid).
    let key = b"general.architecture";
    let at = src.windows(key.len()).position(|w| w == key).unwrap();
    let val = at + key.len() + 4 + 8; // type u32, string length u64
    assert_eq!(&src[val..val + 5], b"gemma");
    let mut bad = src.clone();
    bad[val + 4] = b'b';
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    std::fs::write(&p, &bad).unwrap();
    let f = GgufFile::open(&p).unwrap();
    let g = f.gguf().unwrap();
    let e = Weights::load(std::slice::from_ref(&g))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("gemmb"), "{e}");
}

/// `bytes` with the first `from` replaced by `to` (the same length, so every offset stays valid),
/// written to a temporary file and loaded: the error message.
fn load_edited(arch: &str, from: &[u8], to: &[u8]) -> String {
    let mut b = std::fs::read(common::testdata(&format!("exec/tiny-{arch}-q8_0.gguf"))).unwrap();
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

/// A gemma2 without one of its post-norms, or with a soft-cap of 0 (NaN in llama.cpp), fails at
/// load naming the tensor or key.
#[test]
fn broken_models_fail_before_compute_naming_what() {
    let e = load_edited("gemma2", b"blk.1.post_ffw_norm", b"blk.1.post_ffw_norX");
    assert!(e.contains("blk.1.post_ffw_norm.weight"), "{e}");
    let key = b"gemma2.attn_logit_softcapping";
    let mut edit = key.to_vec();
    edit.extend_from_slice(&6u32.to_le_bytes()); // f32
    let mut zero = edit.clone();
    edit.extend_from_slice(&2f32.to_le_bytes());
    zero.extend_from_slice(&0f32.to_le_bytes());
    let e = load_edited("gemma2", &edit, &zero);
    assert!(e.contains("gemma2.attn_logit_softcapping"), "{e}");
    let e = load_edited("granite", b"granite.logit_scale", b"granite.logit_scalX");
    assert!(e.contains("granite.logit_scale"), "{e}");
    // phi3 without its fused gate/up; mistral3 with YaRN of an unknown kind.
    let e = load_edited("phi3", b"blk.1.ffn_up", b"blk.1.ffn_uX");
    assert!(e.contains("blk.1.ffn_up.weight"), "{e}");
    let e = load_edited("mistral3", b"yarn", b"yorn");
    assert!(e.contains("mistral3.rope.scaling.type"), "{e}");
}
