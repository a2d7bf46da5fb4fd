//! Every vocabulary of the model zoo against llama.cpp: llama.cpp's vocabulary-only files
//! (`scripts/fetch-models.sh vocab`: SentencePiece, BPE with every pre-tokenizer they use, gemma-4's
//! BPE, WordPiece and Unigram) and the zoo's real models with their own vocabulary (Qwen2.5-Coder 1.5B,
//! nomic-embed-text-v1.5). Each golden holds the ids llama.cpp gives a set of hard strings as
//! `llama-tokenize` does by default (the model's BOS/EOS/SEP, special tokens parsed), with
//! `--no-parse-special`, and raw (nothing added, nothing parsed); the bytes of each default token's
//! piece; and the text llama.cpp's detokenizer gives back for the raw ids and for the default ids.
//! Goldens: testdata/zoo/tokenizer/NAME.json from scripts/make-zoo-tokenizer-goldens.py.

mod common;

use std::path::PathBuf;

use pocket::exec::tokenizer::Vocab;
use pocket::GgufFile;
use serde_json::Value as J;

fn ids(v: &J) -> Vec<u32> {
    v.as_array()
        .expect("ids")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn model(name: &str) -> PathBuf {
    match name {
        "qwen" | "nomic" => common::zoo(name),
        v => common::zoo_vocab(v),
    }
}

fn check(name: &str) {
    let text = std::fs::read_to_string(common::testdata(&format!("zoo/tokenizer/{name}.json")))
        .expect("read golden");
    let golden: J = serde_json::from_str(&text).expect("golden json");
    let path = model(name);
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        golden["model"].as_str().unwrap(),
        "{name}: the golden is of another file"
    );
    let file = GgufFile::open(&path).expect("open model");
    let g = file.gguf().expect("parse model");
    let vocab = Vocab::from_gguf(&g).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        vocab.add_bos(),
        golden["add_bos"].as_bool().unwrap(),
        "{name}: add_bos"
    );
    let cases = golden["cases"].as_array().expect("cases");
    assert!(cases.len() > 100, "{name}: too few cases");
    let mut bad = Vec::new();
    for c in cases {
        let text = c["text"].as_str().unwrap();
        for (variant, add_special, parse_special) in [
            ("default", vocab.add_bos(), true),
            ("no_parse_special", vocab.add_bos(), false),
            ("raw", false, false),
        ] {
            let want = ids(&c[variant]);
            let got = vocab
                .tokenize(text, add_special, parse_special)
                .unwrap_or_else(|e| panic!("{name}: {text:?}: {e}"));
            if got != want {
                bad.push(format!(
                    "{variant} {text:?}\n    want {want:?}\n    got  {got:?}"
                ));
            }
        }
        // The pieces of the default ids, as llama-tokenize prints them (special tokens rendered).
        let default = ids(&c["default"]);
        let pieces: Vec<String> = c["pieces_hex"]
            .as_array()
            .expect("pieces")
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect();
        let got: Vec<String> = default
            .iter()
            .map(|&id| hex(vocab.token_to_piece(id, true).expect("piece")))
            .collect();
        if got != pieces {
            bad.push(format!(
                "pieces {text:?}\n    want {pieces:?}\n    got  {got:?}"
            ));
        }
        // The text back: of the raw ids as they are, and of the default ids with BOS/EOS removed
        // and special tokens rendered.
        for (key, list, remove, unparse) in [
            ("detok_raw_hex", ids(&c["raw"]), false, false),
            ("detok_default_hex", default, true, true),
        ] {
            let want = c[key].as_str().unwrap();
            let got = hex(&vocab
                .detokenize(&list, remove, unparse)
                .expect("detokenize"));
            if got != want {
                bad.push(format!("{key} {text:?}\n    want {want}\n    got  {got}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{name}: {} of {} differ from llama.cpp; the first three:\n  {}",
        bad.len(),
        cases.len() * 6,
        bad[..bad.len().min(3)].join("\n  ")
    );
}

#[test]
fn aquila() {
    check("aquila");
}

#[test]
fn baichuan() {
    check("baichuan");
}

#[test]
fn bert_bge() {
    check("bert-bge");
}

#[test]
fn command_r() {
    check("command-r");
}

#[test]
fn deepseek_coder() {
    check("deepseek-coder");
}

#[test]
fn deepseek_llm() {
    check("deepseek-llm");
}

#[test]
fn falcon() {
    check("falcon");
}

#[test]
fn gemma_4() {
    check("gemma-4");
}

#[test]
fn gpt_2() {
    check("gpt-2");
}

#[test]
fn gpt_neox() {
    check("gpt-neox");
}

#[test]
fn llama_bpe() {
    check("llama-bpe");
}

#[test]
fn llama_spm() {
    check("llama-spm");
}

#[test]
fn mpt() {
    check("mpt");
}

#[test]
fn nomic_bert_moe() {
    check("nomic-bert-moe");
}

#[test]
fn phi_3() {
    check("phi-3");
}

#[test]
fn qwen2() {
    check("qwen2");
}

#[test]
fn qwen35() {
    check("qwen35");
}

#[test]
fn refact() {
    check("refact");
}

#[test]
fn starcoder() {
    check("starcoder");
}

/// Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB; only its header is read).
#[test]
fn qwen_model() {
    check("qwen");
}

/// nomic-embed-text-v1.5 F16: a WordPiece vocabulary in a real embedding model.
#[test]
fn nomic_model() {
    check("nomic");
}

/// `pocket verify` on every vocabulary-only file of the zoo: exit 0, each check passes but
/// completeness, which notes a vocabulary-only file (a warning, not a failure).
#[test]
fn verify_vocab_files() {
    let dir = common::zoo("vocab");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("vocab folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 19, "the zoo has 19 vocabulary files");
    for path in names {
        let out = common::pocket()
            .args(["verify", "--json"])
            .arg(&path)
            .output()
            .expect("run pocket verify");
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let doc: J = serde_json::from_slice(&out.stdout).expect("verify json");
        let checks = doc["models"][0]["checks"].as_array().expect("checks");
        for c in checks {
            let (check, status) = (c["check"].as_str().unwrap(), c["status"].as_str().unwrap());
            let message = c["message"].as_str().unwrap();
            match (check, status) {
                ("completeness", "warn") => assert!(
                    message.contains("vocabulary-only file"),
                    "{name}: {message}"
                ),
                // Some of llama.cpp's vocabulary files have no chat template.
                ("tokenizer", "warn") => {
                    assert!(message.contains("chat template"), "{name}: {message}")
                }
                (_, "pass") => {}
                _ => panic!("{name}: {check} {status}: {message}"),
            }
        }
        assert!(
            checks
                .iter()
                .any(|c| c["check"] == "completeness" && c["status"] == "warn"),
            "{name}: no vocabulary-only note"
        );
    }
}
