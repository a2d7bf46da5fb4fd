//! gemma-3 270M's SentencePiece vocabulary against llama-tokenize: ids for a set of hard strings with
//! BOS and special tokens parsed (llama-tokenize's defaults), with --no-bos and with
//! --no-parse-special, and the `id -> 'piece'` lines llama-tokenize prints. Goldens:
//! testdata/tokenizer/gemma-3-hard.json from scripts/make-tokenizer-golden.py.

mod common;

use std::sync::OnceLock;

use pocket::exec::tokenizer::{Vocab, VocabType};
use pocket::GgufFile;
use serde_json::Value as J;

fn vocab() -> &'static Vocab {
    static V: OnceLock<Vocab> = OnceLock::new();
    V.get_or_init(|| {
        let file = GgufFile::open(common::gemma()).expect("open gemma");
        let g = file.gguf().expect("parse gemma");
        Vocab::from_gguf(&g).expect("gemma vocabulary")
    })
}

fn golden() -> &'static J {
    static G: OnceLock<J> = OnceLock::new();
    G.get_or_init(|| {
        let text = std::fs::read_to_string(common::testdata("tokenizer/gemma-3-hard.json"))
            .expect("read golden");
        serde_json::from_str(&text).expect("golden json")
    })
}

fn cases() -> &'static [J] {
    golden()["cases"].as_array().expect("cases")
}

fn ids(v: &J) -> Vec<u32> {
    v.as_array()
        .expect("ids")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

fn check_variant(name: &str, add_special: bool, parse_special: bool) {
    let v = vocab();
    let mut bad = Vec::new();
    for c in cases() {
        let text = c["text"].as_str().unwrap();
        let want = ids(&c[name]);
        let got = v.tokenize(text, add_special, parse_special).unwrap();
        if got != want {
            bad.push(format!("{text:?}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{name}: {} of {} differ; first: {}",
        bad.len(),
        cases().len(),
        bad[0]
    );
}

#[test]
fn vocabulary_is_sentencepiece_with_bos() {
    let v = vocab();
    assert_eq!(v.vocab_type(), VocabType::Spm);
    assert_eq!(v.n_tokens(), 262144);
    assert_eq!(v.bos(), Some(2));
    assert_eq!(v.eos(), Some(1));
    assert!(v.add_bos() && !v.add_eos());
    let eot = v.token_id("<end_of_turn>").unwrap();
    assert_eq!(v.eot(), Some(eot));
    assert!(v.is_eog(eot) && v.is_eog(1) && !v.is_eog(2));
    assert!(cases().len() >= 50);
}

#[test]
fn ids_match_llama_tokenize() {
    check_variant("default", true, true);
}

#[test]
fn ids_match_llama_tokenize_no_bos() {
    check_variant("no_bos", false, true);
}

#[test]
fn ids_match_llama_tokenize_no_parse_special() {
    check_variant("no_parse_special", true, false);
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The lines llama-tokenize prints, rebuilt from the library's pieces.
#[test]
fn pieces_match_llama_tokenize() {
    let v = vocab();
    for c in cases() {
        let text = c["text"].as_str().unwrap();
        let mut out = Vec::new();
        for id in v.tokenize(text, true, true).unwrap() {
            out.extend_from_slice(format!("{id:6} -> '").as_bytes());
            let piece = v.token_to_piece(id, true).unwrap();
            // printf("%s") stops at a NUL byte.
            let end = piece.iter().position(|&b| b == 0).unwrap_or(piece.len());
            out.extend_from_slice(&piece[..end]);
            out.extend_from_slice(b"'\n");
        }
        let want = unhex(c["pieces_stdout_hex"].as_str().unwrap());
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&want),
            "{text:?}"
        );
        assert_eq!(out, want, "{text:?}");
    }
}

#[test]
fn detokenize_round_trips() {
    let v = vocab();
    for c in cases() {
        let text = c["text"].as_str().unwrap();
        if text.contains('\u{2581}') {
            // A literal ▁ is SentencePiece's space: it comes back as a space (in llama.cpp too).
            let ids = v.tokenize(text, false, false).unwrap();
            let back = v.detokenize(&ids, false, false).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&back),
                text.replace('\u{2581}', " ")
            );
            continue;
        }
        let ids = v.tokenize(text, true, true).unwrap();
        let back = v.detokenize(&ids, true, true).unwrap();
        assert_eq!(String::from_utf8_lossy(&back), text, "special rendered");
        let ids = v.tokenize(text, false, false).unwrap();
        let back = v.detokenize(&ids, false, false).unwrap();
        assert_eq!(String::from_utf8_lossy(&back), text, "special as text");
    }
    // Control tokens vanish unless rendered; a byte token is one byte of a character.
    let ids = v.tokenize("<start_of_turn>hi", false, true).unwrap();
    assert_eq!(v.detokenize(&ids, false, false).unwrap(), b"hi");
    let b = v.token_id("<0xF0>").unwrap();
    assert_eq!(v.token_to_piece(b, false).unwrap(), &[0xF0]);
    assert!(v.token_to_piece(v.n_tokens() as u32, true).is_err());
}
