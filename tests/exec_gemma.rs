//! The executor on the real model (gemma-3 270M Q4_K_M) against llama.cpp's goldens
//! (scripts/make-exec-goldens.sh): the logits after BOS, and greedy generation for the committed
//! prompts. The perplexity comparison over the whole text is scripts/check-exec-gemma.sh (minutes).

mod common;

use pocket::exec::sample::argmax;
use pocket::exec::tokenizer::Vocab;
use pocket::exec::{Session, Weights};
use pocket::GgufFile;

/// Position 0 (no attention mixing): every matrix product, norm and GELU as llama.cpp computes them,
/// so the logits agree to float rounding.
#[test]
fn gemma_bos_logits_match_llama_cpp() {
    let f = GgufFile::open(common::gemma()).unwrap();
    let g = f.gguf().unwrap();
    let w = Weights::load(std::slice::from_ref(&g)).unwrap();
    let mut s = Session::new(&w, 8);
    let ours = s.eval(&[2], 1).unwrap();
    let b = std::fs::read(common::testdata("exec/gemma-bos-logits-every64.f32")).unwrap();
    let theirs: Vec<f32> = b
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(theirs.len(), ours.len() / 64);
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = ours
        .iter()
        .step_by(64)
        .zip(&theirs)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    eprintln!(
        "gemma BOS logits: max relative difference {:.2e}",
        d / scale
    );
    assert!(d / scale < 1e-5, "{}", d / scale);
}

/// How far (in logits) llama.cpp's greedy choice may sit below pocket's best token and still count
/// as the same choice, where the golden was recorded on another class of CPU. llama.cpp's own
/// logits move with the CPU (the sums of a matrix product run in another order on AVX2 than on
/// AVX-512; ggml's softmax and f16 arithmetic differ too): near-ties between two tokens flip between
/// machines. llama.cpp itself, built for an AVX2-only CPU, picks another token than the AVX-512
/// goldens in 4 of the 6 prompts here. Measured: pocket at every level against the other class's
/// golden shows gaps up to 0.17 (testdata/README.md, "CPU classes").
const NEAR_TIE: f32 = 0.25;

/// The greedy goldens: llama.cpp built for a class of CPU, and the pocket level that imitates that
/// class (`None`: recorded on an AVX-512 VNNI machine whose exact class was not recorded). Both are
/// held with the near-tie tolerance at every level; the counts printed show how close each is.
const GREEDY_GOLDENS: [(&str, Option<pocket::isa::Level>); 2] = [
    ("exec/gemma-greedy.txt", None),
    ("exec/gemma-greedy.avx2.txt", Some(pocket::isa::Level::Avx2)),
];

/// Greedy generation (llama-simple's loop), held token by token on any CPU and at any level,
/// against every golden: the prompt's tokens equal llama.cpp's, and at each of the 16 steps
/// llama.cpp's token is pocket's argmax or within [`NEAR_TIE`] of it. pocket is then
/// fed llama.cpp's token (teacher forcing), so one flipped near-tie does not end the comparison:
/// every step of every prompt is checked.
#[test]
fn gemma_greedy_matches_llama_cpp() {
    let f = GgufFile::open(common::gemma()).unwrap();
    let g = f.gguf().unwrap();
    let w = Weights::load(std::slice::from_ref(&g)).unwrap();
    let vocab = Vocab::from_gguf(&g).unwrap();
    let level = pocket::isa::level();
    for (golden, class) in GREEDY_GOLDENS {
        let exact_class = class == Some(level);
        let text = std::fs::read_to_string(common::testdata(golden)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let ids = |l: &str, tag: &str| -> Vec<u32> {
            let mut it = l.split_whitespace();
            assert_eq!(it.next(), Some(tag));
            it.map(|t| t.parse().unwrap()).collect()
        };
        let (mut steps, mut exact, mut worst) = (0, 0, 0f32);
        let mut bad = Vec::new();
        for case in lines.chunks_exact(3) {
            let (prompt, want_p, want_g) = (case[0], ids(case[1], "prompt"), ids(case[2], "gen"));
            let toks = vocab.tokenize(prompt, true, true).unwrap();
            assert_eq!(toks, want_p, "{prompt:?}");
            let mut s = Session::new(&w, toks.len() + want_g.len());
            let mut logits = s.eval(&toks, 1).unwrap();
            for (step, &t) in want_g.iter().enumerate() {
                let best = argmax(&logits);
                let gap = logits[best as usize] - logits[t as usize];
                if gap > NEAR_TIE {
                    bad.push(format!(
                        "{golden} at {level}: {prompt:?} step {step}: llama.cpp chose {t}, {gap} \
                         below pocket's choice {best}"
                    ));
                }
                worst = worst.max(gap);
                exact += usize::from(best == t);
                steps += 1;
                logits = s.eval(&[t], 1).unwrap();
            }
        }
        eprintln!(
            "{golden} at {level}{}: {exact} of {steps} steps identical, largest gap {worst:.4}",
            if exact_class { " (its class)" } else { "" }
        );
        assert!(bad.is_empty(), "{bad:#?}");
        assert_eq!(steps, 6 * 16);
        // Near-ties are rare: most steps must be the very same token.
        assert!(exact * 10 >= steps * 9, "{exact} of {steps}");
    }
}

/// One batch of 30 tokens ("Once upon a time..." and llama.cpp's 16 greedy tokens after it): the
/// logits at every position against llama.cpp built for an AVX2-only CPU (every 64th of the
/// vocabulary, scripts/make-exec-goldens.sh). Where pocket imitates that class (`POCKET_CPU=avx2`, or
/// an AVX2-only CPU) every position is bit-identical — every matrix product (llama.cpp's tiled K-quant
/// matmul for the Q6_K matrices of a batch of 8 or more rows included), norm, RoPE and attention as
/// llama.cpp computes them. At other levels the difference must stay under 2 (pocket then imitates
/// another class, and gemma's logits are large).
#[test]
fn gemma_batch_logits_match_llama_cpp_avx2() {
    let f = GgufFile::open(common::gemma()).unwrap();
    let g = f.gguf().unwrap();
    let w = Weights::load(std::slice::from_ref(&g)).unwrap();
    let toks: Vec<u32> = std::fs::read_to_string(common::testdata("exec/gemma-seq.tokens"))
        .unwrap()
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    let b = std::fs::read(common::testdata("exec/gemma-seq-logits-every64.avx2.f32")).unwrap();
    let theirs: Vec<f32> = b
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut s = Session::new(&w, toks.len());
    let ours = s.eval(&toks, toks.len()).unwrap();
    let n_vocab = ours.len() / toks.len();
    let per = n_vocab.div_ceil(64);
    assert_eq!(theirs.len(), per * toks.len());
    let class = pocket::isa::level() == pocket::isa::Level::Avx2;
    for (p, want) in theirs.chunks_exact(per).enumerate() {
        let got: Vec<f32> = ours[p * n_vocab..(p + 1) * n_vocab]
            .iter()
            .step_by(64)
            .copied()
            .collect();
        let d = got
            .iter()
            .zip(want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        if class {
            assert_eq!(d, 0.0, "position {p}: not bit-identical at the avx2 level");
        }
        assert!(d < 2.0, "position {p}: {d}");
    }
}
