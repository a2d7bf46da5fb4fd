//! llama.cpp's own tokenizer tests: for each vocabulary shipped with its source
//! (`models/ggml-vocab-NAME.gguf`, copied to testdata/vocab/), every input of `.gguf.inp` must give
//! exactly the ids of the matching line of `.gguf.out` (made by llama.cpp's test-tokenizer-0 with
//! add_special = false, parse_special = false). `POCKET_VOCAB_DIR` points the test at another copy.

mod common;

use std::path::PathBuf;

use pocket::exec::tokenizer::Vocab;
use pocket::GgufFile;

fn dir() -> PathBuf {
    std::env::var_os("POCKET_VOCAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::testdata("vocab"))
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
