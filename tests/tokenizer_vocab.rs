//! llama.cpp's own tokenizer tests: for each vocabulary shipped with its source that has them
//! (`models/ggml-vocab-NAME.gguf` with `.gguf.inp` / `.gguf.out`, read from the model zoo's copy:
//! `scripts/fetch-models.sh vocab`), every input of `.gguf.inp` must give exactly the ids of the
//! matching line of `.gguf.out` (made by llama.cpp's test-tokenizer-0 with add_special = false,
//! parse_special = false). `POCKET_VOCAB_DIR` points the test at another copy (`$LLAMA/models`).

mod common;

use std::path::PathBuf;

use pocket::exec::tokenizer::Vocab;
use pocket::GgufFile;

fn dir() -> PathBuf {
    std::env::var_os("POCKET_VOCAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::zoo("vocab"))
}

/// The (input, ids) pairs of a vocabulary's test files, read as test-tokenizer-0 reads them.
fn cases(name: &str) -> Vec<(String, Vec<u32>)> {
    let base = dir().join(format!("ggml-vocab-{name}.gguf"));
    let inp = std::fs::read_to_string(base.with_extension("gguf.inp")).expect("read .inp");
    let out = std::fs::read_to_string(base.with_extension("gguf.out")).expect("read .out");
    let sep = "\n__ggml_vocab_test__\n";
    let mut inputs = Vec::new();
    let mut rest = inp.as_str();
    while !rest.is_empty() {
        match rest.find(sep) {
            Some(i) => {
                inputs.push(rest[..i].to_string());
                rest = &rest[i + sep.len()..];
            }
            None => {
                inputs.push(rest.to_string());
                break;
            }
        }
    }
    let outputs: Vec<Vec<u32>> = out
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(|t| t.parse().expect("id"))
                .collect()
        })
        .collect();
    assert_eq!(
        inputs.len(),
        outputs.len(),
        "{name}: .inp and .out differ in count"
    );
    assert!(inputs.len() > 10, "{name}: too few cases");
    inputs.into_iter().zip(outputs).collect()
}

fn check(name: &str) {
    let path = dir().join(format!("ggml-vocab-{name}.gguf"));
    let file = GgufFile::open(&path).expect("open vocab");
    let g = file.gguf().expect("parse vocab");
    let vocab = Vocab::from_gguf(&g).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut failures = Vec::new();
    let cases = cases(name);
    for (text, want) in &cases {
        let got = vocab.tokenize(text, false, false).expect("tokenize");
        if &got != want {
            failures.push(format!("  {text:?}\n    want {want:?}\n    got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} cases differ from llama.cpp; first:\n{}",
        failures.len(),
        cases.len(),
        failures[0]
    );
}

#[test]
fn llama_spm() {
    check("llama-spm");
}

#[test]
fn phi_3() {
    check("phi-3");
}

#[test]
fn llama_bpe() {
    check("llama-bpe");
}

#[test]
fn qwen2() {
    check("qwen2");
}

#[test]
fn gpt_2() {
    check("gpt-2");
}

#[test]
fn mpt() {
    check("mpt");
}

#[test]
fn deepseek_llm() {
    check("deepseek-llm");
}

#[test]
fn deepseek_coder() {
    check("deepseek-coder");
}

#[test]
fn starcoder() {
    check("starcoder");
}

#[test]
fn refact() {
    check("refact");
}

#[test]
fn falcon() {
    check("falcon");
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
fn gemma_4() {
    check("gemma-4");
}

#[test]
fn qwen35() {
    check("qwen35");
}

/// The copies in testdata/vocab/ (which the command, round-trip and fuzz tests use without the zoo)
/// are the zoo's files, byte for byte: their sha256 is the one testdata/zoo/vocab.sha256 lists.
#[test]
fn testdata_copies_are_the_zoos() {
    use sha2::{Digest, Sha256};
    let manifest = std::fs::read_to_string(common::testdata("zoo/vocab.sha256")).expect("manifest");
    let want: std::collections::HashMap<&str, &str> = manifest
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(h, n)| (n.trim(), h))
        .collect();
    let mut n = 0;
    for e in std::fs::read_dir(common::testdata("vocab")).expect("testdata/vocab") {
        let path = e.expect("entry").path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let got: String = Sha256::digest(std::fs::read(&path).expect("read"))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            want.get(name.as_str()).copied(),
            Some(got.as_str()),
            "testdata/vocab/{name} is not the zoo's file"
        );
        n += 1;
    }
    assert!(n >= 33, "only {n} files in testdata/vocab");
}
