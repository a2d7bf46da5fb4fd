//! Vocabularies that are wrong in one way each: every one is a clear `TokenizerError`, never a panic.

mod common;

use common::{Raw, Rng};
use pocket::exec::tokenizer::{TokenizerError, Vocab};
use pocket::Gguf;

enum Kv<'a> {
    Str(&'a str),
    U32(u32),
    Strs(&'a [&'a str]),
    F32s(&'a [f32]),
    I32s(&'a [i32]),
    U8s(&'a [u8]),
    Bool(bool),
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
            Kv::U8s(a) => {
                r.u32(9).u32(0).len(a.len() as u64).bytes(a);
            }
            Kv::Bool(b) => {
                r.u32(7).bytes(&[*b as u8]);
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

/// A vocabulary is shared between threads (one per request, say).
#[test]
fn vocab_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Vocab>();
}

#[test]
fn good_tiny_spm_tokenizes() {
    let v = load(&spm(vec![])).unwrap();
    // "ab ab" -> "▁ab▁ab": "▁ab" scores best; BOS first.
    assert_eq!(v.tokenize("ab ab", true, false).unwrap(), vec![1, 8, 8]);
    // "A" has no token but a byte token.
    assert_eq!(v.tokenize("A", false, false).unwrap(), vec![4, 3]);
    assert_eq!((v.bos(), v.eos(), v.unk()), (Some(1), Some(2), Some(0)));
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
    let e = load(&spm(vec![("tokenizer.ggml.model", Kv::Str("rwkv"))]))
        .err()
        .unwrap();
    assert!(
        matches!(e, TokenizerError::UnsupportedModel(ref m) if m == "rwkv"),
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

/// Random vocabularies (odd texts, byte tokens, duplicate and empty tokens, any token type, merges
/// with and without a space, special ids in and out of range) and random texts: loading either
/// fails with an error or gives a vocabulary that tokenizes and detokenizes without panicking.
#[test]
fn random_vocabularies_never_panic() {
    let atoms = [
        "a",
        "b",
        "ab",
        " ",
        "\u{2581}",
        "\u{2581}a",
        "<0x41>",
        "<0xE4>",
        "<0x0A>",
        "<s>",
        "</s>",
        "<unk>",
        "<|im_end|>",
        "<start_of_turn>",
        "\u{120}",
        "\u{120}a",
        "\u{10A}",
        "中",
        "",
        "x y",
        "'s",
        "1",
        "12",
        "<0x>",
        "unused",
    ];
    let pres = [
        "gpt-2",
        "llama-bpe",
        "qwen2",
        "deepseek-llm",
        "falcon",
        "starcoder",
        "default",
        "qwen35",
    ];
    let texts = [
        "",
        "ab ab",
        " a\nb\t",
        "中文 <s>x</s>",
        "I'm 123!",
        "\u{2581}\u{2581}",
        "<|im_end|> ok",
    ];
    let mut r = Rng(0x2545F4914F6CDD1D);
    let (mut loaded, mut refused) = (0, 0);
    for _ in 0..300 {
        let n = 1 + r.below(12);
        let tokens: Vec<&str> = (0..n).map(|_| atoms[r.below(atoms.len())]).collect();
        let types: Vec<i32> = (0..n).map(|_| r.below(9) as i32 - 1).collect();
        let scores: Vec<f32> = (0..n).map(|_| r.below(100) as f32 - 50.0).collect();
        let merges: Vec<&str> = (0..r.below(6))
            .map(|_| ["a b", "\u{120} a", "ab", "a  b", " a b", "x y z"][r.below(6)])
            .collect();
        let tokens: &'static [&'static str] = Box::leak(tokens.into_boxed_slice());
        let types: &'static [i32] = Box::leak(types.into_boxed_slice());
        let scores: &'static [f32] = Box::leak(scores.into_boxed_slice());
        let merges: &'static [&'static str] = Box::leak(merges.into_boxed_slice());
        let mut kvs: Vec<(&str, Kv<'_>)> = vec![
            (
                "tokenizer.ggml.model",
                Kv::Str(["llama", "gpt2", "bert", "t5", "gemma4"][r.below(5)]),
            ),
            ("tokenizer.ggml.pre", Kv::Str(pres[r.below(pres.len())])),
            ("tokenizer.ggml.tokens", Kv::Strs(tokens)),
            ("tokenizer.ggml.merges", Kv::Strs(merges)),
        ];
        if r.below(3) > 0 {
            kvs.push(("tokenizer.ggml.token_type", Kv::I32s(types)));
        }
        if r.below(3) > 0 {
            kvs.push(("tokenizer.ggml.scores", Kv::F32s(scores)));
        }
        if r.below(2) == 0 {
            kvs.push((
                "tokenizer.ggml.bos_token_id",
                Kv::U32(r.below(n + 2) as u32),
            ));
        }
        if r.below(3) == 0 {
            let map: &'static [u8] = [
                &[4, 0, 0, 0, 0, 4, 0, 0, b'x', 0][..],
                &[8, 0, 0, 0, 0, 4, 0, 0, 0x61, 0, 0, 0, b'x'][..],
                &[2, 0, 0][..],
            ][r.below(3)];
            kvs.push(("tokenizer.ggml.precompiled_charsmap", Kv::U8s(map)));
        }
        if r.below(2) == 0 {
            kvs.push((
                "tokenizer.ggml.eos_token_id",
                Kv::U32(r.below(n + 2) as u32),
            ));
        }
        let bytes = build(&kvs);
        let g = Gguf::parse(&bytes).expect("well-formed GGUF");
        let v = match Vocab::from_gguf(&g) {
            Ok(v) => v,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                refused += 1;
                continue;
            }
        };
        loaded += 1;
        for t in texts {
            for (add, parse) in [(false, false), (true, true)] {
                if let Ok(ids) = v.tokenize(t, add, parse) {
                    assert!(ids.iter().all(|&id| (id as usize) < v.n_tokens()));
                    v.detokenize(&ids, add, parse).unwrap();
                }
            }
        }
        for id in 0..n as u32 + 2 {
            let _ = v.token_to_piece(id, true);
        }
    }
    // Both paths were exercised.
    assert!(
        loaded > 20 && refused > 20,
        "loaded {loaded}, refused {refused}"
    );
}

/// A tiny WordPiece vocabulary: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, then word pieces.
fn wpm(extra: Vec<(&'static str, Kv<'static>)>) -> Vec<(&'static str, Kv<'static>)> {
    let mut kvs = vec![
        ("tokenizer.ggml.model", Kv::Str("bert")),
        (
            "tokenizer.ggml.tokens",
            Kv::Strs(&[
                "[PAD]", "[UNK]", "[CLS]", "[SEP]", "▁hello", "▁wor", "ld", "▁,", "▁cafe", "▁中",
            ]),
        ),
        (
            "tokenizer.ggml.token_type",
            Kv::I32s(&[3, 2, 3, 3, 1, 1, 1, 1, 1, 1]),
        ),
        ("tokenizer.ggml.bos_token_id", Kv::U32(2)),
        ("tokenizer.ggml.seperator_token_id", Kv::U32(3)),
        ("tokenizer.ggml.unknown_token_id", Kv::U32(1)),
    ];
    for (k, v) in extra {
        kvs.retain(|(key, _)| *key != k);
        kvs.push((k, v));
    }
    kvs
}

#[test]
fn good_tiny_wpm_tokenizes() {
    let v = load(&wpm(vec![])).unwrap();
    // Lower case, accents stripped, punctuation and CJK on their own, [UNK] for a word no piece covers.
    assert_eq!(
        v.tokenize("Hello, WORLD Café 中 zzz", true, false).unwrap(),
        vec![2, 4, 7, 5, 6, 8, 9, 1, 3]
    );
    assert_eq!(v.tokenize("  ", false, false).unwrap(), Vec::<u32>::new());
    // The normaliser can be turned off by the file: "Hello" is then no token.
    let v = load(&wpm(vec![(
        "tokenizer.ggml.normalizer.lowercase",
        Kv::Bool(false),
    )]))
    .unwrap();
    assert_eq!(v.tokenize("Hello hello", false, false).unwrap(), vec![1, 4]);
}

#[test]
fn wpm_without_unknown_token() {
    // No [UNK] in range and none named: an unknown word is an error, not a token id of -1.
    let v = load(&wpm(vec![
        ("tokenizer.ggml.tokens", Kv::Strs(&["▁a", "▁b", "c"])),
        ("tokenizer.ggml.token_type", Kv::I32s(&[1, 1, 1])),
        ("tokenizer.ggml.bos_token_id", Kv::U32(0)),
        ("tokenizer.ggml.seperator_token_id", Kv::U32(1)),
        ("tokenizer.ggml.unknown_token_id", Kv::U32(2)),
    ]))
    .unwrap();
    assert_eq!(v.tokenize("a b", false, false).unwrap(), vec![0, 1]);
    let mut kvs = wpm(vec![
        ("tokenizer.ggml.tokens", Kv::Strs(&["▁a", "▁b", "c"])),
        ("tokenizer.ggml.token_type", Kv::I32s(&[1, 1, 1])),
        ("tokenizer.ggml.bos_token_id", Kv::U32(0)),
        ("tokenizer.ggml.seperator_token_id", Kv::U32(1)),
    ]);
    kvs.retain(|(k, _)| *k != "tokenizer.ggml.unknown_token_id");
    let v = load(&kvs).unwrap();
    let e = v.tokenize("zzz", false, false).err().unwrap();
    assert!(matches!(e, TokenizerError::NoSpecial("UNK")), "{e}");
}

/// A tiny Unigram vocabulary: <pad> 0, </s> 1, <unk> 2, then pieces with log-probability scores.
fn ugm(map: Option<&'static [u8]>) -> Vec<(&'static str, Kv<'static>)> {
    let mut kvs = vec![
        ("tokenizer.ggml.model", Kv::Str("t5")),
        (
            "tokenizer.ggml.tokens",
            Kv::Strs(&["<pad>", "</s>", "<unk>", "▁", "▁a", "b", "▁ab", "▁y"]),
        ),
        (
            "tokenizer.ggml.scores",
            Kv::F32s(&[0.0, 0.0, 0.0, -2.0, -3.0, -3.0, -4.0, -1.0]),
        ),
        (
            "tokenizer.ggml.token_type",
            Kv::I32s(&[3, 3, 2, 1, 1, 1, 1, 1]),
        ),
        ("tokenizer.ggml.add_space_prefix", Kv::Bool(true)),
        ("tokenizer.ggml.remove_extra_whitespaces", Kv::Bool(true)),
    ];
    if let Some(m) = map {
        kvs.push(("tokenizer.ggml.precompiled_charsmap", Kv::U8s(m)));
    }
    kvs
}

/// A character map that replaces "a" by the string at `offset` of `strings`: a root whose base is 1,
/// so "a" (0x61) leads to entry 0x60, a leaf with that check byte whose base 1 leads to entry 0x61,
/// which holds the offset.
fn charsmap(offset: u32, strings: &[u8]) -> &'static [u8] {
    let mut xcda = vec![0u32; 0x62];
    xcda[0] = 1 << 10;
    xcda[0x60] = (1 << 10) | (1 << 8) | 0x61;
    xcda[0x61] = offset;
    let mut m = ((xcda.len() * 4) as u32).to_le_bytes().to_vec();
    for x in xcda {
        m.extend_from_slice(&x.to_le_bytes());
    }
    m.extend_from_slice(strings);
    Box::leak(m.into_boxed_slice())
}

#[test]
fn good_tiny_ugm_tokenizes() {
    let v = load(&ugm(None)).unwrap();
    // "▁ab" (-4) beats "▁a" "b" (-6); spaces merged and a "▁" in front; EOS added.
    assert_eq!(
        v.tokenize("  ab   b", true, false).unwrap(),
        vec![6, 3, 5, 1]
    );
    // Unknown characters: one <unk> for a run of them.
    assert_eq!(v.tokenize("xyz", false, false).unwrap(), vec![3, 2]);
    // The character map replaces "a" by "y".
    let v = load(&ugm(Some(charsmap(2, b"q\0y\0")))).unwrap();
    assert_eq!(v.tokenize("a", false, false).unwrap(), vec![7]);
}

#[test]
fn bad_charsmaps_are_errors() {
    for (map, at_load) in [
        // Too short for its size field.
        (&[1u8, 0, 0][..], true),
        // A double array longer than the map.
        (&[200u8, 0, 0, 0, 1, 2, 3, 4, 0][..], true),
        // A walk past the end of the double array.
        (&[4u8, 0, 0, 0, 0, 0, 0, 0, b'x', 0][..], false),
        // A replacement offset past the strings, and one without its NUL.
        (charsmap(9, b"q\0y\0"), false),
        (charsmap(2, b"q\0y"), false),
    ] {
        match load(&ugm(Some(map))) {
            Err(e) => {
                assert!(at_load, "{map:?}: {e}");
                assert!(matches!(e, TokenizerError::Charsmap(_)), "{e}");
                assert!(e.to_string().contains("precompiled_charsmap"), "{e}");
            }
            Ok(v) => {
                assert!(!at_load, "{map:?} loaded");
                let e = v.tokenize("a", false, false).err().unwrap();
                assert!(matches!(e, TokenizerError::Charsmap(_)), "{e}");
            }
        }
    }
}
