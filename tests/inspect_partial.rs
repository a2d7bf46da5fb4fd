//! `pocket inspect` on a file whose records read but which the validation pass refuses (llama.cpp
//! would not load it): everything readable is shown, each problem is named with its offset, and the
//! exit code (2) says the file is not loadable.

mod common;

use serde_json::Value as J;

fn run(args: &[&str]) -> (i32, String, String) {
    let o = common::pocket().args(args).output().expect("run pocket");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// tiny-llama-q8_0 with its `llama.block_count` key renamed `general.alignment` = 64 (same length,
/// so nothing moves): gguf-py reads it; llama.cpp refuses it, since the tensors were laid out at 32.
fn align64_laid_out_at_32(dir: &std::path::Path) -> std::path::PathBuf {
    let mut b = std::fs::read(common::testdata("tiny-llama-q8_0.gguf")).unwrap();
    let i = b
        .windows(17)
        .position(|w| w == b"llama.block_count")
        .unwrap();
    b[i..i + 17].copy_from_slice(b"general.alignment");
    assert_eq!(u32::from_le_bytes(b[i + 17..i + 21].try_into().unwrap()), 4);
    b[i + 21..i + 25].copy_from_slice(&64u32.to_le_bytes());
    let p = dir.join("align64.gguf");
    std::fs::write(&p, b).unwrap();
    p
}

#[test]
fn a_file_llama_cpp_refuses_is_shown_with_its_problems() {
    let dir = tempfile::tempdir().unwrap();
    let p = align64_laid_out_at_32(dir.path());
    let p = p.to_str().unwrap();
    let (code, out, err) = run(&["inspect", p, "--tensors"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.contains("alignment 64"), "{out}");
    assert!(out.contains("blk.0.attn_q.weight"), "{out}");
    assert!(
        out.contains("PROBLEMS: llama.cpp would refuse this file"),
        "{out}"
    );
    assert!(out.contains("runs past the end of the file"), "{out}");
    assert!(err.contains("not loadable by llama.cpp"), "{err}");

    let (code, out, _) = run(&["inspect", p, "--json"]);
    assert_eq!(code, 2);
    let doc: J = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["alignment"], 64);
    assert_eq!(doc["tensors"].as_array().unwrap().len(), 21);
    assert_eq!(doc["error"]["kind"], "tensor_past_end");
    let problems = doc["problems"].as_array().unwrap();
    assert!(!problems.is_empty());
    assert!(problems.iter().all(|p| p["offset"].is_u64()));
}

/// Several problems at once are all named, not only the first.
#[test]
fn every_problem_is_named() {
    let mut b = std::fs::read(common::testdata("tiny-llama-q8_0.gguf")).unwrap();
    // `llama.context_length` renamed to another key of the same length (a duplicate key), and a
    // tensor renamed to the name of another (a duplicate tensor).
    let k = b
        .windows(20)
        .position(|w| w == b"llama.context_length")
        .unwrap();
    b[k..k + 20].copy_from_slice(b"general.architecture");
    let t1 = b
        .windows(19)
        .position(|w| w == b"blk.0.attn_k.weight")
        .unwrap();
    b[t1..t1 + 19].copy_from_slice(b"blk.0.attn_q.weight");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dups.gguf");
    std::fs::write(&p, b).unwrap();
    let (code, out, _) = run(&["inspect", p.to_str().unwrap(), "--json"]);
    assert_eq!(code, 2);
    let doc: J = serde_json::from_str(&out).expect("one JSON document");
    let kinds: Vec<&str> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"duplicate_tensor"), "{kinds:?}");
    assert!(kinds.contains(&"duplicate_key"), "{kinds:?}");
    // The duplicate is left out of the table; the other 20 tensors are shown.
    assert_eq!(doc["tensors"].as_array().unwrap().len(), 20);
}

/// A file whose records cannot be read at all still fails as before: exit 2, one error document.
#[test]
fn unreadable_records_still_fail_without_a_view() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.gguf");
    let b = std::fs::read(common::testdata("tiny-llama-q8_0.gguf")).unwrap();
    std::fs::write(&p, &b[..100]).unwrap();
    let (code, out, _) = run(&["inspect", p.to_str().unwrap(), "--json"]);
    assert_eq!(code, 2);
    let doc: J = serde_json::from_str(&out).expect("one JSON document");
    assert!(doc.get("tensors").is_none());
    assert!(doc["error"]["kind"].is_string());
}
