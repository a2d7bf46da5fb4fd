//! Messages that once said something wrong or misleading (issue 26), each checked, plus the model
//! section of `inspect`, streamed perplexity/kld results and requantize's closing summary.

mod common;

use common::{run_pocket as pocket, s};

use std::io::Read;
use std::process::Stdio;

use serde_json::Value as J;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn second_shard_is_called_shard_2() {
    let p = common::testdata("tiny-llama-split-00002-of-00003.gguf");
    let o = pocket(&["inspect", &s(&p)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is shard 2 of 3"), "{}", stderr(&o));
}

#[test]
fn run_context_above_training_says_so() {
    let q8 = common::testdata("tiny-llama-q8_0.gguf");
    let o = pocket(&["run", &s(&q8), "-p", "hi", "-n", "2", "-c", "100000"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("above the model's training context (256)"),
        "{e}"
    );
    assert!(!e.contains("does not fit the prompt"), "{e}");
    let o = pocket(&["run", &s(&q8), "-p", "hi there", "-n", "8", "-c", "4"]);
    assert!(
        stderr(&o).contains("too small for the prompt"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn requantize_onto_its_input_offers_no_missing_option() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.gguf");
    std::fs::copy(common::testdata("tiny-llama-f16.gguf"), &f).unwrap();
    let o = pocket(&["requantize", &s(&f), &s(&f), "Q4_0"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(!e.contains("in-place"), "{e}");
    assert!(
        e.contains("another path") || e.contains("write elsewhere"),
        "{e}"
    );
}

#[test]
fn diff_reports_a_new_nan() {
    let dir = tempfile::tempdir().unwrap();
    let src = common::testdata("tiny-llama-f16.gguf");
    let f = dir.path().join("nan.gguf");
    std::fs::copy(&src, &f).unwrap();
    let o = pocket(&["inspect", "--json", &s(&f)]);
    let doc: J = serde_json::from_slice(&o.stdout).unwrap();
    let t = doc["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "f16")
        .expect("an f16 tensor")
        .clone();
    let name = t["name"].as_str().unwrap().to_string();
    let off = t["file_offset"].as_u64().unwrap() as usize;
    let mut b = std::fs::read(&f).unwrap();
    // f16 quiet NaN in place of the tensor's first value.
    b[off..off + 2].copy_from_slice(&0x7e00u16.to_le_bytes());
    std::fs::write(&f, &b).unwrap();
    let o = pocket(&["diff", "--json", &s(&src), &s(&f)]);
    assert_eq!(o.status.code(), Some(1));
    let doc: J = serde_json::from_slice(&o.stdout).unwrap();
    let c = doc["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name.as_str())
        .expect("the tensor with a NaN is listed")
        .clone();
    assert_ne!(c["rmse"], 0.0, "{c}");
    assert!(c["note"].as_str().unwrap().contains("NaN"), "{c}");
    let o = pocket(&["diff", &s(&src), &s(&f)]);
    let text = stdout(&o);
    let row = text.lines().find(|l| l.contains(&name)).unwrap();
    assert!(row.contains("NaN"), "{row}");
}

#[test]
fn verify_of_every_shard_passes_the_set_once() {
    let shards: Vec<String> = (1..=3)
        .map(|i| {
            s(&common::testdata(&format!(
                "tiny-llama-split-0000{i}-of-00003.gguf"
            )))
        })
        .collect();
    let mut args = vec!["verify", "--json"];
    args.extend(shards.iter().map(String::as_str));
    let o = pocket(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let doc: J = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["status"], "pass");
    assert_eq!(doc["models"].as_array().unwrap().len(), 1);
    assert_eq!(doc["models"][0]["files"].as_array().unwrap().len(), 3);
}

#[test]
fn negative_value_for_an_unsigned_key_says_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.gguf");
    std::fs::copy(common::testdata("tiny-llama-q8_0.gguf"), &f).unwrap();
    let o = pocket(&["meta", "set", &s(&f), "llama.context_length", "-5"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("'-5' is not a u32: out of range (0 to 4294967295)"),
        "{e}"
    );
    assert!(!e.contains("invalid digit"), "{e}");
    let o = pocket(&["meta", "set", &s(&f), "llama.context_length", "1.5"]);
    assert!(stderr(&o).contains("not a whole number"), "{}", stderr(&o));
}

#[test]
fn an_in_place_edit_of_one_byte_says_1_header_byte() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.gguf");
    std::fs::copy(common::testdata("tiny-llama-q8_0.gguf"), &f).unwrap();
    // 256 -> 257: one byte of the u32 changes.
    let o = pocket(&["meta", "set", &s(&f), "llama.context_length", "257"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("edited in place, 1 header byte at offset"),
        "{text}"
    );
    assert!(!text.contains("1 header bytes"), "{text}");
}

#[test]
fn inspect_model_section_and_context_warning() {
    let q8 = common::testdata("tiny-llama-q8_0.gguf");
    let o = pocket(&["inspect", &s(&q8)]);
    let text = stdout(&o);
    for want in [
        "training context   256",
        "layers             2",
        "attention heads    4 (2 for K/V)",
        "vocabulary         288 tokens",
        "\"<s>\" (id 1)",
        "\"</s>\" (id 2)",
    ] {
        assert!(text.contains(want), "no {want:?} in\n{text}");
    }
    let o = pocket(&["inspect", "--ctx", "1024", &s(&q8)]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("above the model's training context (256)"),
        "{}",
        stderr(&o)
    );
    let o = pocket(&["inspect", "--ctx", "128", &s(&q8)]);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn requantize_summary_as_llama_quantize() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q.gguf");
    let f16 = common::testdata("tiny-llama-f16.gguf");
    let o = pocket(&["requantize", &s(&f16), &s(&out), "Q8_0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let re = regex::Regex::new(
        r"model size  = +[0-9.]+ MiB \(16\.\d\d BPW\)\nquant size  = +[0-9.]+ MiB \(8\.\d\d BPW\)\nquantize time = +[0-9.]+ ms",
    )
    .unwrap();
    assert!(re.is_match(&text), "{text}");
}

/// Reads the child's stdout until `want` appears; returns whether the child was still running then.
fn seen_while_running(args: &[&str], want: &str) -> bool {
    let mut child = common::pocket()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut so = child.stdout.take().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let running = loop {
        let n = so.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "ended before {want:?}: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&got).contains(want) {
            break child.try_wait().unwrap().is_none();
        }
    };
    let mut rest = Vec::new();
    so.read_to_end(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    running
}

#[test]
fn perplexity_and_kld_stream_each_chunk_into_a_pipe() {
    let g = common::gemma();
    let text = common::testdata("exec/ppl-text.txt");
    assert!(
        seen_while_running(
            &[
                "perplexity",
                &s(&g),
                "-f",
                &s(&text),
                "-c",
                "128",
                "--chunks",
                "2"
            ],
            "[1]"
        ),
        "perplexity printed its first chunk only at the end"
    );
    assert!(
        seen_while_running(
            &[
                "kld",
                &s(&g),
                &s(&g),
                "-f",
                &s(&text),
                "-c",
                "128",
                "--chunks",
                "2"
            ],
            "\n   1 "
        ),
        "kld printed its first chunk only at the end"
    );
}
