//! `pocket tokenize` against llama-tokenize's own output (goldens in testdata/tokenizer/ and the
//! llama.cpp vocab test files in testdata/vocab/), plus its exit codes.

mod common;

use std::process::{Command, Output};

use serde_json::Value as J;

fn pocket(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pocket"))
        .args(args)
        .output()
        .expect("run pocket")
}

fn golden() -> J {
    let text = std::fs::read_to_string(common::testdata("tokenizer/gemma-3-hard.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every hard string through the command, from a file as llama-tokenize read it: the same bytes
/// on stdout, and the same ids with --ids --no-bos and --json --no-parse-special.
#[test]
fn gemma_output_matches_llama_tokenize() {
    let model = common::gemma();
    let model = model.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let g = golden();
    let cases = g["cases"].as_array().unwrap();
    // A spread of cases keeps the test quick (each run loads the 262k-token vocabulary).
    for (k, c) in cases.iter().step_by(10).enumerate() {
        let text = c["text"].as_str().unwrap();
        let path = dir.path().join("text");
        std::fs::write(&path, text).unwrap();
        let path = path.to_str().unwrap();

        let out = pocket(&["tokenize", model, "-f", path, "--no-escape"]);
        assert!(out.status.success(), "{text:?}: {:?}", out);
        let want = unhex(c["pieces_stdout_hex"].as_str().unwrap());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&want),
            "{text:?}"
        );

        if k % 2 == 1 {
            let out = pocket(&[
                "tokenize",
                model,
                "-f",
                path,
                "--no-escape",
                "--ids",
                "--no-bos",
            ]);
            assert!(out.status.success());
            let ids: J = serde_json::from_slice(&out.stdout).expect("--ids prints a list");
            assert_eq!(ids, c["no_bos"], "{text:?} --no-bos");
            continue;
        }
        if k % 4 != 0 {
            continue;
        }
        let out = pocket(&[
            "tokenize",
            model,
            "-f",
            path,
            "--no-escape",
            "--json",
            "--no-parse-special",
        ]);
        assert!(out.status.success());
        let doc: J = serde_json::from_slice(&out.stdout).expect("one JSON document");
        assert_eq!(doc["ids"], c["no_parse_special"], "{text:?} --json");
        assert_eq!(
            doc["n_tokens"],
            c["no_parse_special"].as_array().unwrap().len()
        );
        assert_eq!(doc["tokens"].as_array().unwrap().len(), doc["n_tokens"]);
    }
}

/// -p processes escapes as llama-tokenize does; --no-escape keeps them.
#[test]
fn prompt_escapes() {
    let model = common::testdata("vocab/ggml-vocab-llama-spm.gguf");
    let model = model.to_str().unwrap();
    let a = pocket(&["tokenize", model, "-p", "a\\nb", "--ids"]);
    let b = pocket(&["tokenize", model, "-p", "a\nb", "--ids"]);
    let c = pocket(&["tokenize", model, "-p", "a\\nb", "--ids", "--no-escape"]);
    assert!(a.status.success() && b.status.success() && c.status.success());
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout);
}

/// A BPE vocabulary through the command: llama.cpp's own test strings for llama-bpe.
#[test]
fn bpe_ids_match_llama_cpp_tests() {
    let base = common::testdata("vocab/ggml-vocab-llama-bpe.gguf");
    let inp = std::fs::read_to_string(base.with_extension("gguf.inp")).unwrap();
    let out = std::fs::read_to_string(base.with_extension("gguf.out")).unwrap();
    let inputs: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text");
    for (text, ids) in inputs.iter().zip(out.lines()).skip(8).step_by(12) {
        std::fs::write(&path, text).unwrap();
        let o = pocket(&[
            "tokenize",
            base.to_str().unwrap(),
            "-f",
            path.to_str().unwrap(),
            "--no-escape",
            "--no-bos",
            "--no-parse-special",
            "--ids",
        ]);
        assert!(o.status.success());
        let want: Vec<u64> = ids.split_whitespace().map(|t| t.parse().unwrap()).collect();
        let got: Vec<u64> = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(got, want, "{text:?}");
    }
}

#[test]
fn missing_text_is_a_usage_error() {
    let model = common::testdata("vocab/ggml-vocab-llama-spm.gguf");
    let out = pocket(&["tokenize", model.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-p TEXT"));
}

#[test]
fn missing_model_is_exit_2_with_json_error() {
    let out = pocket(&["tokenize", "/no/such/model.gguf", "-p", "x", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: J = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/no/such/model.gguf"));
}

#[test]
fn file_without_vocabulary_is_exit_2() {
    let out = pocket(&[
        "tokenize",
        common::testdata("metadata-only.gguf").to_str().unwrap(),
        "-p",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokenizer.ggml.model"));
}

#[test]
fn invalid_utf8_is_exit_2() {
    let model = common::testdata("vocab/ggml-vocab-llama-spm.gguf");
    let out = pocket(&["tokenize", model.to_str().unwrap(), "-p", "bad \\xff"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("UTF-8"));
}
