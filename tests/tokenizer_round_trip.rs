//! Random text (ASCII, whitespace runs, CJK, emoji, combining marks, any code point) never makes a
//! tokenizer fail, and comes back unchanged from detokenize where the vocabulary is lossless:
//! SentencePiece with byte fallback (llama-spm) and byte-level BPE without space clean-up (qwen2).

mod common;

use common::Rng;

use std::collections::BTreeMap;
use std::sync::Mutex;

use pocket::exec::tokenizer::{Vocab, VocabType};
use pocket::GgufFile;

/// Each vocabulary is loaded once per test binary.
fn load(name: &str) -> &'static Vocab {
    static CACHE: Mutex<BTreeMap<String, &'static Vocab>> = Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().unwrap();
    cache.entry(name.to_string()).or_insert_with(|| {
        let path = common::testdata(&format!("vocab/ggml-vocab-{name}.gguf"));
        let file = GgufFile::open(path).unwrap();
        Box::leak(Box::new(Vocab::from_gguf(&file.gguf().unwrap()).unwrap()))
    })
}

fn random_text(r: &mut Rng) -> String {
    let pools: [&[char]; 6] = [
        &[
            'a', 'b', 'Z', '0', '7', '\'', '.', ',', '!', '$', '_', '(', '<', '>', '|',
        ],
        &[' ', ' ', '\t', '\n', '\r', '\u{A0}', '\u{3000}', '\u{0B}'],
        &['中', '文', '日', 'の', '한', '국', 'я', 'é', 'ß', 'ا'],
        &['😀', '🎉', '👍', '\u{1F3FD}', '\u{200D}', '🇫', '🇷'],
        &['\u{301}', '\u{308}', '\u{200B}', '\u{FEFF}', '\u{2581}'],
        &[],
    ];
    let len = r.below(40);
    let mut s = String::new();
    for _ in 0..len {
        let p = r.below(pools.len());
        let c = if pools[p].is_empty() {
            // Any scalar value.
            loop {
                if let Some(c) = char::from_u32(r.below(0x110000) as u32) {
                    break c;
                }
            }
        } else {
            pools[p][r.below(pools[p].len())]
        };
        s.push(c);
    }
    if r.below(8) == 0 {
        s.push_str("<s>");
    }
    s
}

fn check(name: &str, seed: u64) {
    let v = load(name);
    let mut r = Rng(seed);
    for _ in 0..400 {
        let text = random_text(&mut r);
        let ids = v
            .tokenize(&text, false, false)
            .unwrap_or_else(|e| panic!("{name}: {text:?}: {e}"));
        let back = v.detokenize(&ids, false, false).unwrap();
        // SentencePiece's ▁ is a space; any other text must come back as it was.
        let want = if v.vocab_type() == VocabType::Spm {
            text.replace('\u{2581}', " ")
        } else {
            text.clone()
        };
        assert_eq!(
            String::from_utf8_lossy(&back),
            want,
            "{name}: {text:?} -> {ids:?}"
        );
        // With special tokens parsed and BOS added, tokenizing still succeeds.
        v.tokenize(&text, true, true).unwrap();
    }
}

#[test]
fn llama_spm_round_trips() {
    check("llama-spm", 0x9E3779B97F4A7C15);
}

#[test]
fn qwen2_round_trips() {
    check("qwen2", 0xD1B54A32D192ED03);
}

/// Long runs of one class (a backtracking regex once gave up on 1M spaces): the vocabularies with
/// llama.cpp's hand-written splitters tokenize them and get them back.
#[test]
fn long_runs_tokenize() {
    let texts = [
        format!("{}a", " ".repeat(50_000)),
        "b".repeat(20_000),
        format!("{}{}x", "\n".repeat(20_000), " \t".repeat(20_000)),
        format!("{}{}", "7".repeat(30_000), "!".repeat(30_000)),
    ];
    for name in [
        "llama-bpe",
        "qwen2",
        "gpt-2",
        "deepseek-llm",
        "falcon",
        "llama-spm",
    ] {
        let v = load(name);
        for t in &texts {
            let ids = v
                .tokenize(t, false, false)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let back = v.detokenize(&ids, false, false).unwrap();
            assert!(
                back == t.as_bytes(),
                "{name}: {} bytes came back as {}",
                t.len(),
                back.len()
            );
        }
    }
}
