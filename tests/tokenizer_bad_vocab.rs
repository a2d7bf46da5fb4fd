//! Vocabularies that are wrong in one way each: every one is a clear `TokenizerError`, never a panic.

mod common;

use common::Raw;
use pocket::exec::tokenizer::{TokenizerError, Vocab};
use pocket::Gguf;

enum Kv<'a> {
    Str(&'a str),
    U32(u32),
    Strs(&'a [&'a str]),
    F32s(&'a [f32]),
    I32s(&'a [i32]),
}

fn build(kvs: &[(&str, Kv<'_>)]) -> Vec<u8> {
    let mut r = Raw::header(3, false, 0, kvs.len() as u64);
    for (key, v) in kvs {
        r.str(key.as_bytes());
        match v {
            Kv::Str(s) => {
                r.u32(8).str(s.as_bytes());
            }
            Kv::U32(x) => {
                r.u32(4).u32(*x);
            }
            Kv::Strs(a) => {
                r.u32(9).u32(8).len(a.len() as u64);
                for s in *a {
                    r.str(s.as_bytes());
                }
            }
            Kv::F32s(a) => {
                r.u32(9).u32(6).len(a.len() as u64);
                for x in *a {
                    r.u32(x.to_bits());
                }
            }
            Kv::I32s(a) => {
                r.u32(9).u32(5).len(a.len() as u64);
                for x in *a {
                    r.u32(*x as u32);
                }
            }
        }
    }
    r.pad(32);
    r.b
}

const SPM_TOKENS: &[&str] = &["<unk>", "<s>", "</s>", "<0x41>", "▁", "a", "b", "ab", "▁ab"];
const SPM_SCORES: &[f32] = &[0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -2.0, -1.5, -0.5];
const SPM_TYPES: &[i32] = &[2, 3, 3, 6, 1, 1, 1, 1, 1];

fn spm(extra: Vec<(&'static str, Kv<'static>)>) -> Vec<(&'static str, Kv<'static>)> {
    let mut kvs = vec![
        ("tokenizer.ggml.model", Kv::Str("llama")),
        ("tokenizer.ggml.tokens", Kv::Strs(SPM_TOKENS)),
        ("tokenizer.ggml.scores", Kv::F32s(SPM_SCORES)),
        ("tokenizer.ggml.token_type", Kv::I32s(SPM_TYPES)),
    ];
    for (k, v) in extra {
        kvs.retain(|(key, _)| *key != k);
        kvs.push((k, v));
    }
    kvs
}

fn load(kvs: &[(&str, Kv<'_>)]) -> Result<Vocab, TokenizerError> {
    let bytes = build(kvs);
    let g = Gguf::parse(&bytes).expect("well-formed GGUF");
    Vocab::from_gguf(&g)
}

#[test]
fn good_tiny_spm_tokenizes() {
    let v = load(&spm(vec![])).unwrap();
    // "ab ab" -> "▁ab▁ab": "▁ab" scores best; BOS first.
    assert_eq!(v.tokenize("ab ab", true, false).unwrap(), vec![1, 8, 8]);
    // "A" has no token but a byte token.
    assert_eq!(v.tokenize("A", false, false).unwrap(), vec![4, 3]);
    // The space prefix is dropped from the first piece, but not after a removed BOS (as llama.cpp).
    assert_eq!(v.detokenize(&[8, 8], false, false).unwrap(), b"ab ab");
    assert_eq!(v.detokenize(&[1, 8, 8], true, false).unwrap(), b" ab ab");
}

#[test]
fn missing_model_key() {
    let mut kvs = spm(vec![]);
    kvs.remove(0);
    assert!(matches!(
        load(&kvs),
        Err(TokenizerError::MissingKey("tokenizer.ggml.model"))
    ));
}

#[test]
fn unsupported_model() {
    let e = load(&spm(vec![("tokenizer.ggml.model", Kv::Str("bert"))]))
        .err()
        .unwrap();
    assert!(
        matches!(e, TokenizerError::UnsupportedModel(ref m) if m == "bert"),
        "{e}"
    );
}

#[test]
fn missing_tokens() {
    let mut kvs = spm(vec![]);
    kvs.retain(|(k, _)| *k != "tokenizer.ggml.tokens");
    assert!(matches!(
        load(&kvs),
        Err(TokenizerError::MissingKey("tokenizer.ggml.tokens"))
    ));
}

#[test]
fn tokens_of_wrong_type() {
    let e = load(&spm(vec![("tokenizer.ggml.tokens", Kv::I32s(&[1, 2]))]))
        .err()
        .unwrap();
    assert!(
        matches!(
            e,
            TokenizerError::WrongType {
                key: "tokenizer.ggml.tokens",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("tokenizer.ggml.tokens"));
}

#[test]
fn scores_shorter_than_tokens() {
    let e = load(&spm(vec![("tokenizer.ggml.scores", Kv::F32s(&[0.0; 3]))]))
        .err()
        .unwrap();
    assert!(
        matches!(
            e,
            TokenizerError::LengthMismatch {
                key: "tokenizer.ggml.scores",
                found: 3,
                expected: 9
            }
        ),
        "{e}"
    );
}

#[test]
fn token_types_longer_than_tokens() {
    let e = load(&spm(vec![(
        "tokenizer.ggml.token_type",
        Kv::I32s(&[1; 12]),
    )]))
    .err()
    .unwrap();
    assert!(
        matches!(
            e,
            TokenizerError::LengthMismatch {
                key: "tokenizer.ggml.token_type",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn empty_vocabulary() {
    let e = load(&spm(vec![
        ("tokenizer.ggml.tokens", Kv::Strs(&[])),
        ("tokenizer.ggml.scores", Kv::F32s(&[])),
        ("tokenizer.ggml.token_type", Kv::I32s(&[])),
    ]))
    .err()
    .unwrap();
    assert!(matches!(e, TokenizerError::EmptyVocab), "{e}");
}

#[test]
fn bos_id_out_of_range() {
    let e = load(&spm(vec![("tokenizer.ggml.bos_token_id", Kv::U32(9))]))
        .err()
        .unwrap();
    assert!(
        matches!(
            e,
            TokenizerError::SpecialOutOfRange {
                key: "tokenizer.ggml.bos_token_id",
                id: 9,
                n_vocab: 9
            }
        ),
        "{e}"
    );
}

#[test]
fn duplicate_token_text() {
    let e = load(&spm(vec![(
        "tokenizer.ggml.tokens",
        Kv::Strs(&["<unk>", "<s>", "</s>", "<0x41>", "▁", "a", "b", "ab", "a"]),
    )]))
    .err()
    .unwrap();
    assert!(
        matches!(
            e,
            TokenizerError::DuplicateToken {
                id: 8,
                first: 5,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn byte_token_that_is_not_hex() {
    let e = load(&spm(vec![(
        "tokenizer.ggml.token_type",
        Kv::I32s(&[2, 3, 3, 6, 1, 6, 1, 1, 1]),
    )]))
    .err()
    .unwrap();
    assert!(
        matches!(e, TokenizerError::BadByteToken { id: 5, .. }),
        "{e}"
    );
}

#[test]
fn no_byte_token_for_unknown_character() {
    let v = load(&spm(vec![])).unwrap();
    let e = v.tokenize("z", false, false).err().unwrap();
    assert!(matches!(e, TokenizerError::NoByteToken(b'z')), "{e}");
}

#[test]
fn id_out_of_range_for_piece() {
    let v = load(&spm(vec![])).unwrap();
    assert!(matches!(
        v.token_to_piece(9, true),
        Err(TokenizerError::IdOutOfRange { id: 9, n_vocab: 9 })
    ));
    assert!(v.detokenize(&[5, 1000], false, false).is_err());
}

fn bpe(pre: &'static str, merges: &'static [&'static str]) -> Vec<(&'static str, Kv<'static>)> {
    vec![
        ("tokenizer.ggml.model", Kv::Str("gpt2")),
        ("tokenizer.ggml.pre", Kv::Str(pre)),
        (
            "tokenizer.ggml.tokens",
            Kv::Strs(&["a", "b", "ab", "Ġ", "Ġab"]),
        ),
        ("tokenizer.ggml.merges", Kv::Strs(merges)),
    ]
}

#[test]
fn good_tiny_bpe_tokenizes() {
    let v = load(&bpe("gpt-2", &["a b", "Ġ ab"])).unwrap();
    assert_eq!(v.tokenize("ab ab", false, false).unwrap(), vec![2, 4]);
    assert_eq!(v.detokenize(&[2, 4], false, false).unwrap(), b"ab ab");
}

#[test]
fn malformed_merge() {
    let e = load(&bpe("gpt-2", &["a b", "abc"])).err().unwrap();
    assert!(
        matches!(e, TokenizerError::BadMerge { index: 1, .. }),
        "{e}"
    );
}

#[test]
fn bpe_without_merges() {
    let mut kvs = bpe("gpt-2", &[]);
    kvs.retain(|(k, _)| *k != "tokenizer.ggml.merges");
    assert!(matches!(
        load(&kvs),
        Err(TokenizerError::MissingKey("tokenizer.ggml.merges"))
    ));
}

#[test]
fn unknown_pre_tokenizer() {
    let e = load(&bpe("no-such-pre", &["a b"])).err().unwrap();
    assert!(
        matches!(e, TokenizerError::UnknownPre(ref p) if p == "no-such-pre"),
        "{e}"
    );
}
