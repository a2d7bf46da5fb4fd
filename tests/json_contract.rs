//! The `--json` contract (README, "JSON output"): every command's `--json` prints exactly one JSON
//! document on stdout, on success and on failure; a failure's document is
//! `{"error": {"kind": STRING, "message": STRING, ...}}`; f32 values are their shortest round-trip
//! form; enum-like values are lower-case words; long arrays are summarised unless `--full-arrays`;
//! a closed pipe ends the command quietly with exit 0.

mod common;

use common::{run_pocket as pocket, s};

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value as J;

/// stdout as exactly one JSON document (serde_json refuses anything after it but whitespace).
fn one_doc(args: &[&str], out: &std::process::Output) -> J {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "pocket {}: stdout is not one JSON document ({e}):\n{}\nstderr: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn copy(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(common::testdata(name), &to).unwrap();
    to
}

#[test]
fn every_command_json_success_and_failure_is_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let q8 = s(&common::testdata("tiny-llama-q8_0.gguf"));
    let f16 = s(&common::testdata("tiny-llama-f16.gguf"));
    let qwen = s(&common::testdata("exec/tiny-qwen3-q8_0.gguf"));
    let shard1 = s(&common::testdata("tiny-llama-split-00001-of-00003.gguf"));
    let text = s(&common::testdata("exec/ppl-text.txt"));
    let edit = s(&copy(d, "tiny-llama-q8_0.gguf"));
    let manifest = d.join("m.txt");
    let nosuch = "/no/such/model.gguf";
    let out_q = s(&d.join("out-q4_0.gguf"));
    let out_be = s(&d.join("out-be.gguf"));
    let out_merged = s(&d.join("merged.gguf"));
    let prefix = s(&d.join("parts"));
    let bad_manifest = d.join("bad-manifest.txt");
    std::fs::write(&bad_manifest, "nothing here\n").unwrap();
    // A manifest as llama-gguf-hash writes it (pocket hash prints the same lines).
    let m = pocket(&["hash", &q8]);
    assert!(m.status.success());
    std::fs::write(&manifest, &m.stdout).unwrap();
    let ok: Vec<Vec<String>> = [
        vec!["inspect", &q8],
        vec!["inspect", &shard1],
        vec!["meta", "get", &q8, "general.name"],
        vec!["meta", "set", &edit, "general.name", "edited"],
        vec!["meta", "rm", &edit, "general.name"],
        vec!["split", &q8, &prefix, "--split-max-tensors", "8"],
        vec!["merge", &shard1, &out_merged],
        vec!["convert", &q8, &out_be, "--endian", "big"],
        vec![
            "endian",
            &out_be,
            &s(&d.join("le.gguf")),
            "--endian",
            "little",
        ],
        vec!["diff", &q8, &q8],
        vec!["diff", &q8, &f16],
        vec!["verify", &q8, "--write-manifest", &s(&d.join("v.txt"))],
        vec!["verify", "--list-devices"],
        vec!["verify", &q8, "--device", "iphone-15-pro"],
        vec!["hash", &q8],
        vec!["hash", &q8, "--check", &s(&manifest)],
        vec!["tokenize", &q8, "-p", "hello world"],
        vec!["requantize", "--dry-run", &f16, "Q4_0"],
        vec!["requantize", &f16, &out_q, "Q4_0"],
        vec!["run", &q8, "-p", "hello", "-n", "3"],
        vec!["chat", &qwen, "-p", "hello", "-n", "3"],
        vec!["perplexity", &q8, "-f", &text, "-c", "64", "--chunks", "2"],
        vec!["kld", &f16, &q8, "-f", &text, "-c", "64", "--chunks", "2"],
        vec![
            "bench",
            &q8,
            "-p",
            "8",
            "-n",
            "2",
            "-r",
            "1",
            "--no-bandwidth",
        ],
    ]
    .iter()
    .map(|v| v.iter().map(|x| x.to_string()).collect())
    .collect();
    for args in &ok {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.push("--json");
        let out = pocket(&a);
        let code = out.status.code();
        // diff of two different files answers "no" (1); all the others succeed.
        assert!(
            code == Some(0) || (a[0] == "diff" && code == Some(1)),
            "pocket {}: exit {code:?}: {}",
            a.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        let doc = one_doc(&a, &out);
        assert!(doc.get("error").is_none(), "pocket {}: {doc}", a.join(" "));
    }
    let bad: Vec<Vec<&str>> = vec![
        vec!["inspect", nosuch],
        vec!["inspect", "--bogus-flag", &q8],
        vec!["meta", "get", nosuch, "general.name"],
        vec![
            "meta",
            "set",
            &edit,
            "general.alignment",
            "-5",
            "--type",
            "u32",
        ],
        vec!["meta", "rm", nosuch, "general.name"],
        vec!["split", nosuch, &prefix],
        vec!["merge", nosuch, &out_merged],
        vec!["convert", nosuch, &out_be, "--endian", "big"],
        vec!["diff", &q8, nosuch],
        vec!["verify", nosuch],
        vec!["verify", &q8, "--device", "nosuch"],
        vec!["hash", nosuch],
        vec!["hash", &q8, "--check", bad_manifest.to_str().unwrap()],
        vec!["tokenize", nosuch, "-p", "x"],
        vec!["requantize", &f16, &out_q, "NOSUCHTYPE"],
        vec!["requantize", &f16, &f16, "Q4_0"],
        vec!["run", nosuch, "-p", "x"],
        vec!["chat", nosuch],
        vec!["chat", &q8, "-p", "x"],
        vec!["run", &q8, "-p", "x", "-c", "100000"],
        vec!["perplexity", nosuch, "-f", &text],
        vec!["kld", nosuch, &q8, "-f", &text],
        vec!["bench", nosuch],
    ];
    for a in &bad {
        let mut a = a.clone();
        a.push("--json");
        let out = pocket(&a);
        assert_eq!(
            out.status.code(),
            Some(2),
            "pocket {}: {}",
            a.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        let doc = one_doc(&a, &out);
        let e = &doc["error"];
        assert!(
            e["kind"].as_str().is_some_and(
                |k| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            ),
            "pocket {}: kind {doc}",
            a.join(" ")
        );
        let msg = e["message"].as_str().unwrap_or("");
        assert!(!msg.is_empty(), "pocket {}: {doc}", a.join(" "));
        // People get the same message on stderr.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = msg.lines().next().unwrap();
        assert!(
            stderr.contains(first),
            "pocket {}: stderr {stderr} lacks {first}",
            a.join(" ")
        );
    }
}

#[test]
fn f32_values_are_their_shortest_form() {
    let g = common::testdata("values-le-v3.gguf");
    let out = pocket(&["inspect", "--json", g.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    let doc: J = serde_json::from_str(&text).unwrap();
    let mut n = 0;
    for (k, t) in doc["metadata_types"].as_object().unwrap() {
        if t == "FLOAT32" {
            let v = doc["metadata"][k].as_f64().unwrap();
            let shortest: f64 = (v as f32).to_string().parse().unwrap();
            assert_eq!(v, shortest, "{k}: {v} is not the f32's shortest form");
            n += 1;
        }
    }
    assert!(n > 0, "no float32 key in the test file");
    assert!(!text.contains("99999999"), "a widened f32 in:\n{text}");
}

#[test]
fn long_arrays_are_summarised_unless_full_arrays() {
    let q8 = common::testdata("tiny-llama-q8_0.gguf");
    let out = pocket(&["inspect", "--json", q8.to_str().unwrap()]);
    let doc: J = serde_json::from_slice(&out.stdout).unwrap();
    let tokens = &doc["metadata"]["tokenizer.ggml.tokens"];
    assert_eq!(tokens["length"], 288, "{tokens}");
    assert_eq!(tokens["first"].as_array().unwrap().len(), 8);
    assert_eq!(doc["arrays_summarised"], true);
    let out = pocket(&["inspect", "--json", "--full-arrays", q8.to_str().unwrap()]);
    let doc: J = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["metadata"]["tokenizer.ggml.tokens"]
            .as_array()
            .unwrap()
            .len(),
        288
    );
    assert_eq!(doc["model"]["context_length"], 256);
    assert_eq!(doc["model"]["n_vocab"], 288);
    assert_eq!(doc["model"]["bos"]["text"], "<s>");
}

#[test]
fn enum_like_values_are_lower_case_words() {
    let q8 = common::testdata("tiny-llama-q8_0.gguf");
    let args = [
        "bench",
        q8.to_str().unwrap(),
        "-p",
        "8",
        "-n",
        "0",
        "-r",
        "1",
        "--no-bandwidth",
        "--json",
    ];
    let doc = one_doc(&args, &pocket(&args));
    let k = doc["kernels"].as_str().unwrap();
    assert!(
        k.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "{k}"
    );
}

#[test]
fn bench_output_formats_as_llama_bench() {
    let q8 = common::testdata("tiny-llama-q8_0.gguf");
    let run = |fmt: &str| {
        let out = pocket(&[
            "bench",
            q8.to_str().unwrap(),
            "-p",
            "8",
            "-n",
            "2",
            "-r",
            "2",
            "--no-bandwidth",
            "-o",
            fmt,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json: J = serde_json::from_str(&run("json")).unwrap();
    let recs = json.as_array().unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["n_prompt"], 8);
    assert_eq!(recs[1]["n_gen"], 2);
    assert!(recs[0]["avg_ts"].as_f64().unwrap() > 0.0);
    assert_eq!(recs[0]["samples_ns"].as_array().unwrap().len(), 2);
    let jsonl = run("jsonl");
    let lines: Vec<J> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let csv = run("csv");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(rows[0].contains("\"avg_ts\"") && rows[0].contains("\"model_filename\""));
    let md = run("md");
    assert!(md.starts_with("| model"), "{md}");
    assert!(md.lines().nth(1).unwrap().starts_with("| ---"));
    assert!(md.contains("| pp8 |") && md.contains("| tg2 |"), "{md}");
}

#[test]
fn closed_pipe_ends_quietly() {
    let g = common::gemma();
    for args in [
        vec!["inspect", "--json", "--full-arrays"],
        vec!["inspect", "--tensors"],
    ] {
        let mut child = common::pocket()
            .args(&args)
            .arg(&g)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut head = [0u8; 100];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut head)
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
