//! Writers and readers of one file at the same time (the locking protocol, README "Concurrent readers
//! and writers"): two in-place `meta set` at once, an in-place edit beside a rewrite, and readers
//! (`inspect --json`, `hash`, `verify`) during in-place edits. Every edit must be in the file at the
//! end (or its command must have failed), the file must stay valid, and every reader must exit 0
//! with a consistent header (valid UTF-8 JSON naming one of the values written, the tensors' hashes
//! unchanged).
//!
//! Trials: `POCKET_STRESS_TRIALS` (default 20), readers per trial `POCKET_STRESS_READERS` (default 6);
//! scripts/stress-concurrency.sh runs the acceptance counts (100 trials, 40 readers).
#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

fn env_n(k: &str, default: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn spawn(args: &[&str]) -> Child {
    let mut c: Command = common::pocket();
    c.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pocket")
}

fn finish(c: Child, what: &str) -> Output {
    let o = c.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{what} panicked: {err}");
    o
}

fn get(p: &Path, key: &str) -> String {
    let o = common::pocket()
        .args(["meta", "get", p.to_str().unwrap(), key])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn fresh() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("m.gguf");
    std::fs::copy(common::testdata("tiny-llama-q8_0.gguf"), &p).unwrap();
    (d, p)
}

fn assert_valid(p: &Path, what: &str) {
    let o = common::pocket()
        .args(["verify", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: the file no longer verifies: {}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Two edits of different keys at once; `second_rewrites` makes the second a whole-file rewrite.
fn two_writers(second_rewrites: bool) {
    let trials = env_n("POCKET_STRESS_TRIALS", 20);
    let mut lost = 0;
    for t in 0..trials {
        let (_d, p) = fresh();
        let ps = p.to_str().unwrap();
        // Same length as "tiny-llama", so the edit is in place.
        let name = format!("n{t:09}");
        let ctx = (1000 + t).to_string();
        let a = spawn(&["meta", "set", ps, "general.name", &name]);
        let mut bargs = vec!["meta", "set", ps, "llama.context_length", &ctx];
        if second_rewrites {
            bargs.push("--no-in-place");
        }
        let b = spawn(&bargs);
        let (oa, ob) = (finish(a, "writer a"), finish(b, "writer b"));
        assert_valid(&p, &format!("trial {t}"));
        let (got_name, got_ctx) = (get(&p, "general.name"), get(&p, "llama.context_length"));
        // An edit may fail (with a message), never vanish after exit 0.
        if oa.status.success() && got_name != name {
            lost += 1;
            eprintln!("trial {t}: writer a exited 0 but general.name is {got_name}");
        }
        if ob.status.success() && got_ctx != ctx {
            lost += 1;
            eprintln!("trial {t}: writer b exited 0 but llama.context_length is {got_ctx}");
        }
        assert!(
            oa.status.success() && ob.status.success(),
            "trial {t}: both edits should succeed (one waits for the other): {} / {}",
            String::from_utf8_lossy(&oa.stderr),
            String::from_utf8_lossy(&ob.stderr)
        );
    }
    assert_eq!(lost, 0, "edits lost without an error");
    eprintln!(
        "{}: {trials} trials, every edit landed, the file verified after each",
        if second_rewrites {
            "in-place edit beside a rewrite"
        } else {
            "two in-place edits"
        }
    );
}

#[test]
fn two_in_place_edits_at_once_both_land() {
    two_writers(false);
}

#[test]
fn an_in_place_edit_beside_a_rewrite_both_land() {
    two_writers(true);
}

#[test]
fn readers_during_in_place_edits_see_a_consistent_header_or_wait() {
    let trials = env_n("POCKET_STRESS_TRIALS", 20);
    let readers = env_n("POCKET_STRESS_READERS", 6);
    let (_d, p) = fresh();
    let ps = p.to_str().unwrap();
    let hashes = finish(spawn(&["hash", ps]), "hash").stdout;
    let names = ["tiny-llama", "AAAAAAAAAA", "BBBBBBBBBB"];
    for t in 0..trials {
        let w = spawn(&["meta", "set", ps, "general.name", names[1 + t % 2]]);
        let rs: Vec<(usize, Child)> = (0..readers)
            .map(|i| {
                let args: &[&str] = match i % 3 {
                    0 => &["inspect", "--json", ps],
                    1 => &["hash", ps],
                    _ => &["verify", ps],
                };
                (i % 3, spawn(args))
            })
            .collect();
        let ow = finish(w, "writer");
        assert!(
            ow.status.success(),
            "trial {t}: {}",
            String::from_utf8_lossy(&ow.stderr)
        );
        for (kind, r) in rs {
            let o = finish(r, "reader");
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            assert_eq!(o.status.code(), Some(0), "trial {t} reader {kind}: {err}");
            let out = String::from_utf8(o.stdout).unwrap_or_else(|e| {
                panic!("trial {t} reader {kind}: invalid UTF-8 on stdout: {e}")
            });
            match kind {
                0 => {
                    let j: serde_json::Value = serde_json::from_str(&out)
                        .unwrap_or_else(|e| panic!("trial {t}: inspect --json: {e}"));
                    let s = j.to_string();
                    assert!(
                        names.iter().any(|n| s.contains(&format!("\"{n}\""))),
                        "trial {t}: inspect saw none of the names written"
                    );
                }
                1 => assert_eq!(out.as_bytes(), &hashes[..], "trial {t}: hash changed"),
                _ => {}
            }
        }
    }
    assert_valid(&p, "after the trials");
    eprintln!(
        "readers during in-place edits: {trials} trials x {readers} readers, all exited 0 with a consistent header"
    );
}
