//! `pocket chat` (and `run -i`): a conversation read from a pipe, formatted with the model's chat
//! template, the KV cache kept between turns; and the llama.cpp conveniences of `run` — short
//! flags, stop strings, a random seed unless `-s`, no echo of the prompt unless `--echo`, the timing
//! line on stderr on its own line.

mod common;

use common::run_pocket as run;

use std::io::Write;
use std::process::Stdio;

use serde_json::Value as J;

const MODEL: &str = "exec/tiny-qwen3-q8_0.gguf";

fn model() -> String {
    common::testdata(MODEL).display().to_string()
}

fn chat(args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = common::pocket()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn doc(o: &std::process::Output) -> J {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_conversation_keeps_its_cache_between_turns() {
    let m = model();
    let d = doc(&chat(
        &["chat", &m, "--temp", "0", "-n", "8", "--json"],
        "Hello there\nAnd again?\n",
    ));
    assert_eq!(d["chat_template"], "chatml");
    let turns = d["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    // The first turn is `run --chat` on the same message.
    let one = doc(&run(&[
        "run",
        &m,
        "--chat",
        "-p",
        "Hello there",
        "--temp",
        "0",
        "-n",
        "8",
        "--json",
    ]));
    assert_eq!(turns[0]["tokens"], one["tokens"]);
    assert_eq!(
        turns[0]["prompt_tokens_evaluated"].as_u64().unwrap() as usize,
        one["prompt_tokens"].as_array().unwrap().len()
    );
    // The second turn evaluates only what follows the first reply: the cache grows by the new
    // prompt tokens and the reply, nothing is evaluated twice.
    let n1 = turns[0]["n_past"].as_u64().unwrap();
    let new2 = turns[1]["prompt_tokens_evaluated"].as_u64().unwrap();
    let gen2 = turns[1]["tokens"].as_array().unwrap().len() as u64;
    assert!(new2 > 0 && new2 < n1 + new2);
    assert_eq!(turns[1]["n_past"].as_u64().unwrap(), n1 + new2 + gen2);
    // The same through `run -i`.
    let d2 = doc(&chat(
        &["run", "-i", "-m", &m, "--temp", "0", "-n", "8", "--json"],
        "Hello there\nAnd again?\n",
    ));
    for (a, b) in d["turns"]
        .as_array()
        .unwrap()
        .iter()
        .zip(d2["turns"].as_array().unwrap())
    {
        assert_eq!(a["tokens"], b["tokens"]);
        assert_eq!(a["n_past"], b["n_past"]);
    }
}

#[test]
fn system_prompt_and_plain_output() {
    let m = model();
    let with = doc(&chat(
        &[
            "chat",
            &m,
            "--temp",
            "0",
            "-n",
            "4",
            "--system",
            "Be brief.",
            "--json",
        ],
        "Hi\n",
    ));
    let without = doc(&chat(
        &["chat", &m, "--temp", "0", "-n", "4", "--json"],
        "Hi\n",
    ));
    assert!(
        with["turns"][0]["prompt_tokens_evaluated"].as_u64()
            > without["turns"][0]["prompt_tokens_evaluated"].as_u64()
    );
    // People get each reply on its own line, nothing else on stdout.
    let o = chat(&["chat", &m, "--temp", "0", "-n", "4"], "Hi\nThere\n");
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.ends_with('\n'));
    assert!(!text.contains("<|im_start|>"), "{text:?}");
}

#[test]
fn stop_strings_end_the_reply_before_them() {
    let m = model();
    // Greedy, this model says "isisis...".
    let d = doc(&run(&[
        "run",
        &m,
        "-p",
        "The cat is",
        "-n",
        "12",
        "--temp",
        "0",
        "--json",
    ]));
    assert!(d["text"].as_str().unwrap().starts_with("isis"), "{d}");
    let d = doc(&run(&[
        "run",
        &m,
        "-p",
        "The cat is",
        "-n",
        "12",
        "--temp",
        "0",
        "-r",
        "sisi",
        "--json",
    ]));
    assert_eq!(d["text"], "i");
    assert_eq!(d["stop"], "stop_string");
    let o = run(&[
        "run",
        &m,
        "-p",
        "The cat is",
        "-n",
        "12",
        "--temp",
        "0",
        "--stop",
        "sisi",
    ]);
    assert_eq!(String::from_utf8(o.stdout).unwrap(), "i\n");
}

#[test]
fn seed_is_random_unless_given() {
    let m = model();
    let seed = |extra: &[&str]| {
        let mut a = vec!["run", &m, "-p", "The cat", "-n", "4", "--json"];
        a.extend_from_slice(extra);
        doc(&run(&a))["sampling"]["seed"].as_u64().unwrap()
    };
    assert_ne!(seed(&[]), seed(&[]));
    assert_eq!(seed(&["-s", "7"]), 7);
    let toks = |s: &str| {
        doc(&run(&[
            "run", &m, "-p", "The cat", "-n", "8", "--temp", "1.5", "-s", s, "--json",
        ]))["tokens"]
            .clone()
    };
    assert_eq!(toks("11"), toks("11"));
}

#[test]
fn llama_cpp_short_flags_echo_and_timing_line() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    let pf = dir.path().join("prompt.txt");
    std::fs::write(&pf, "The cat is").unwrap();
    let pfs = pf.display().to_string();
    let o = run(&[
        "run",
        "-m",
        &m,
        "-f",
        &pfs,
        "-t",
        "1",
        "-n",
        "4",
        "-c",
        "64",
        "-s",
        "1",
        "--temp",
        "0",
        "--min-p",
        "0.1",
        "--repeat-penalty",
        "1.1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(!text.starts_with("The cat is"), "prompt echoed: {text:?}");
    assert!(text.ends_with('\n'), "{text:?}");
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.starts_with("pocket run: prompt"), "{err:?}");
    let o = run(&[
        "run",
        &m,
        "-p",
        "The cat is",
        "-n",
        "2",
        "--temp",
        "0",
        "--echo",
    ]);
    assert!(String::from_utf8(o.stdout)
        .unwrap()
        .starts_with("The cat is"));
}

#[test]
fn repeat_penalty_changes_a_repeating_greedy_reply() {
    let m = model();
    let toks = |extra: &[&str]| {
        let mut a = vec![
            "run",
            &m,
            "-p",
            "The cat is",
            "-n",
            "8",
            "--temp",
            "0",
            "--json",
        ];
        a.extend_from_slice(extra);
        doc(&run(&a))["tokens"].clone()
    };
    let plain = toks(&[]);
    assert!(plain.as_array().unwrap().windows(2).all(|w| w[0] == w[1]));
    let penalised = toks(&["--repeat-penalty", "5"]);
    assert_ne!(plain, penalised);
}
