//! `pocket run --chat`: the prompt formatted by the chat template (pocket::exec::chat, checked
//! against llama.cpp in tests/chat_template.rs) and tokenized with special tokens, no double BOS,
//! and unsupported templates refused with exit code 2.

mod common;

use pocket::exec::tokenizer::Vocab;
use pocket::GgufFile;
use serde_json::Value;

fn run_json(model: &str, extra: &[&str]) -> Value {
    let out = common::pocket()
        .arg("run")
        .arg(common::testdata(model))
        .args([
            "-p",
            "Hello there",
            "-n",
            "2",
            "--temp",
            "0",
            "--json",
            "--chat",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn tokenize(model: &str, text: &str) -> Vec<u64> {
    let f = GgufFile::open(common::testdata(model)).unwrap();
    let g = f.gguf().unwrap();
    let v = Vocab::from_gguf(&g).unwrap();
    v.tokenize(text, true, true)
        .unwrap()
        .into_iter()
        .map(u64::from)
        .collect()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

#[test]
fn chat_prompt_is_the_template_tokenized_with_specials() {
    let d = run_json(
        "tiny-llama-q8_0.gguf",
        &["--chat-template", "llama3", "--system", " Be brief. "],
    );
    assert_eq!(d["chat_template"], "llama3");
    let want = "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>\
                <|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>\
                <|start_header_id|>assistant<|end_header_id|>\n\n";
    assert_eq!(d["formatted_prompt"], want);
    assert_eq!(
        ids(&d["prompt_tokens"]),
        tokenize("tiny-llama-q8_0.gguf", want)
    );
    assert_eq!(d["prompt"], "Hello there");
}

/// Qwen3's real template (in the tiny qwen3) is chatml; the ids are llama-tokenize's for the same text
/// (scripts/make-qwen3-goldens.sh), byte-level BPE with the control tokens parsed, and the greedy
/// continuation is llama.cpp's.
#[test]
fn qwen3_chat_prompt_matches_llama_tokenize() {
    let out = common::pocket()
        .arg("run")
        .arg(common::testdata("exec/tiny-qwen3-q8_0.gguf"))
        .args([
            "-p",
            "Hi, the cat is in the house.",
            "--system",
            "Be brief.",
        ])
        .args(["-n", "8", "--temp", "0", "--chat", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["chat_template"], "chatml");
    let want: Vec<u64> = std::fs::read_to_string(common::testdata("exec/tiny-qwen3-chat.ids"))
        .unwrap()
        .split(|c: char| c == ',' || c == '[' || c == ']' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(ids(&d["prompt_tokens"]), want);
    // llama.cpp's greedy continuation of the same text (llama-simple's loop).
    let g = std::fs::read_to_string(common::testdata("exec/tiny-qwen3-chat-greedy.txt")).unwrap();
    let line = |p: &str| -> Vec<u64> {
        g.lines()
            .find_map(|l| l.strip_prefix(p))
            .unwrap()
            .split_whitespace()
            .map(|t| t.parse().unwrap())
            .collect()
    };
    assert_eq!(line("prompt "), want);
    assert_eq!(ids(&d["tokens"]), line("gen "));
}

#[test]
fn template_starting_with_bos_gets_no_second_bos() {
    // gigachat's format starts with "<s>", the tiny llama's BOS, which its vocabulary adds itself.
    let d = run_json("tiny-llama-q8_0.gguf", &["--chat-template", "gigachat"]);
    let f = d["formatted_prompt"].as_str().unwrap();
    assert!(f.starts_with("user<|role_sep|>Hello there"), "{f}");
    let p = ids(&d["prompt_tokens"]);
    assert_eq!(p[0], 1);
    assert_ne!(p[1], 1, "double BOS: {p:?}");
}

fn run_err(model: &str, extra: &[&str]) -> (Option<i32>, String) {
    let out = common::pocket()
        .arg("run")
        .arg(common::testdata(model))
        .args(["-p", "hi", "-n", "1"])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unsupported_templates_exit_2() {
    // The tiny llama's own template is a made-up Jinja loop llama.cpp does not recognise.
    let (code, err) = run_err("tiny-llama-q8_0.gguf", &["--chat"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("the model's chat template (tokenizer.chat_template, 71 bytes")
            && err.contains("is not supported"),
        "{err}"
    );
    let (code, err) = run_err(
        "tiny-llama-q8_0.gguf",
        &["--chat", "--chat-template", "no-such-template"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--chat-template \"no-such-template\" is not supported"),
        "{err}"
    );
    // --system only makes sense in a chat.
    let (code, _) = run_err("tiny-llama-q8_0.gguf", &["--system", "x"]);
    assert_eq!(code, Some(2));
}
