//! The finishing touches of the command line: completions and a man page generated from the option
//! definitions, `--version` with the commit and the SIMD kernels, `-q`/`-v`, `pocket endian`, and
//! gguf-new-metadata's conveniences in `meta set`.

mod common;

use common::{run_pocket as pocket, s, text};

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = pocket(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", text(&o.stderr));
        let t = text(&o.stdout);
        for cmd in ["inspect", "requantize", "chat", "endian"] {
            assert!(t.contains(cmd), "{shell} completions lack {cmd}");
        }
    }
    let o = pocket(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    let o = pocket(&["man"]);
    assert!(o.status.success());
    let t = text(&o.stdout);
    assert!(
        t.starts_with(".ie") || t.starts_with(".TH"),
        "{}",
        &t[..80.min(t.len())]
    );
    assert!(t.contains(".TH pocket") && t.contains("requantize"), "{t}");
}

#[test]
fn version_names_commit_and_kernels() {
    let o = pocket(&["--version"]);
    assert!(o.status.success());
    let v = text(&o.stdout);
    let re = regex::Regex::new(
        r"^pocket \d+\.\d+\.\d+ \(commit ([0-9a-f]{7,40}|unknown), kernels [a-z0-9-]+\)\n$",
    )
    .unwrap();
    assert!(re.is_match(&v), "{v:?}");
}

#[test]
fn quiet_and_verbose() {
    let q8 = common::testdata("tiny-llama-q8_0.gguf");
    // Above the training context: a warning, unless -q.
    let o = pocket(&["inspect", "--ctx", "1024", &s(&q8)]);
    assert!(text(&o.stderr).contains("warning"));
    let o = pocket(&["-q", "inspect", "--ctx", "1024", &s(&q8)]);
    assert!(o.status.success());
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
    let o = pocket(&["inspect", "-v", &s(&q8)]);
    let e = text(&o.stderr);
    assert!(e.contains("took"), "{e}");
    assert!(
        regex::Regex::new(r"kernels [a-z0-9-]+, \d+ threads")
            .unwrap()
            .is_match(&e),
        "{e}"
    );
    // Without -v none of it.
    let o = pocket(&["inspect", &s(&q8)]);
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
    // Errors still reach stderr with -q.
    let o = pocket(&["-q", "inspect", "/no/such.gguf"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("/no/such.gguf"));
}

#[test]
fn endian_is_convert() {
    let dir = tempfile::tempdir().unwrap();
    let be = dir.path().join("be.gguf");
    let q8 = common::testdata("tiny-llama-q8_0.gguf");
    let o = pocket(&["endian", &s(&q8), &s(&be), "--endian", "big"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = pocket(&["inspect", "--json", &s(&be)]);
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["endianness"], "big");
    let help = text(&pocket(&["--help"]).stdout);
    assert!(help.contains("endian"), "{help}");
}

#[test]
fn meta_chat_template_config_and_special_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.gguf");
    std::fs::copy(common::testdata("tiny-llama-q8_0.gguf"), &f).unwrap();
    let cfg = dir.path().join("tokenizer_config.json");
    std::fs::write(
        &cfg,
        r#"{"chat_template": [
            {"name": "default", "template": "{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}"},
            {"name": "tool use", "template": "TOOLS"}
        ], "eos_token": "</s>"}"#,
    )
    .unwrap();
    let o = pocket(&[
        "meta",
        "set",
        &s(&f),
        "--chat-template-config",
        &s(&cfg),
        "--special-token",
        "eos",
        "<s>",
        "--special-token-by-id",
        "padding",
        "0",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let get = |k: &str| {
        let o = pocket(&["meta", "get", "--json", &s(&f), k]);
        let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        d["value"].clone()
    };
    assert_eq!(
        get("tokenizer.chat_template"),
        "{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}"
    );
    assert_eq!(get("tokenizer.chat_template.tool_use"), "TOOLS");
    assert_eq!(
        get("tokenizer.chat_templates"),
        serde_json::json!(["tool_use"])
    );
    assert_eq!(get("tokenizer.ggml.eos_token_id"), 1);
    assert_eq!(get("tokenizer.ggml.padding_token_id"), 0);
    // The chat template is now recognised (chatml).
    let o = pocket(&["inspect", "--json", &s(&f)]);
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["model"]["chat_template"], "chatml");
    // A token the vocabulary does not have, and a type that is not one.
    let o = pocket(&["meta", "set", &s(&f), "--special-token", "eos", "<nope>"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no token \"<nope>\""),
        "{}",
        text(&o.stderr)
    );
    let o = pocket(&["meta", "set", &s(&f), "--special-token", "foo", "<s>"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("one of bos, eos"),
        "{}",
        text(&o.stderr)
    );
}
