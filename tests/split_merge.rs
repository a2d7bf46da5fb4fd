//! `pocket split` / `pocket merge` against llama-gguf-split: for every case in
//! testdata/interop/gguf-split.json (made by scripts/make-split-golden.py), pocket's shards have
//! llama-gguf-split's names and sha256, and merging them gives llama-gguf-split --merge's sha256.

mod common;

use std::path::Path;

use sha2::{Digest, Sha256};

fn pocket(args: &[&str]) -> (i32, String, String) {
    let o = common::pocket().args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn sha(p: &Path) -> String {
    let d = Sha256::digest(std::fs::read(p).unwrap());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn golden() -> serde_json::Value {
    let p = common::testdata("interop/gguf-split.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn shards_and_merges_are_byte_identical_to_llama_gguf_split() {
    let g = golden();
    let cases = g["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for c in cases {
        let input = common::testdata(c["input"].as_str().unwrap());
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let what = format!("{} {}", c["input"], args.join(" "));
        let d = tempfile::tempdir().unwrap();
        let prefix = d.path().join("shard");
        let mut argv = vec!["split", input.to_str().unwrap(), prefix.to_str().unwrap()];
        argv.extend(&args);
        // The dry run plans the same shards and writes nothing.
        let mut dry = argv.clone();
        dry.extend(["--dry-run", "--json"]);
        let (code, out, err) = pocket(&dry);
        assert_eq!(code, 0, "{what}: {err}");
        let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
        let want = c["shards"].as_array().unwrap();
        assert_eq!(plan["n_split"], want.len(), "{what}");
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            0,
            "{what}: dry run wrote"
        );
        let (code, _, err) = pocket(&argv);
        assert_eq!(code, 0, "{what}: {err}");
        let mut names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        names.sort();
        let want_names: Vec<&str> = want.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, want_names, "{what}: shard names");
        for s in want {
            let p = d.path().join(s["name"].as_str().unwrap());
            assert_eq!(sha(&p), s["sha256"], "{what}: {}", s["name"]);
        }
        let first = d.path().join(want_names[0]);
        let merged = d.path().join("merged.gguf");
        let (code, _, err) = pocket(&["merge", first.to_str().unwrap(), merged.to_str().unwrap()]);
        assert_eq!(code, 0, "{what}: merge: {err}");
        assert_eq!(sha(&merged), c["merged_sha256"], "{what}: merged");
    }
}

#[test]
fn merging_llama_gguf_splits_own_shards_matches_its_merge() {
    let g = golden();
    let c = &g["committed_split_merge"];
    let first = common::testdata(c["first_shard"].as_str().unwrap());
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("m.gguf");
    let (code, _, err) = pocket(&["merge", first.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sha(&out), c["merged_sha256"]);
}

#[test]
fn split_and_merge_refuse_bad_requests_and_outputs_that_are_inputs() {
    let d = tempfile::tempdir().unwrap();
    let input = common::testdata("tiny-llama-q8_0.gguf");
    let inp = input.to_str().unwrap();
    // A size without an M or G unit is refused, as llama-gguf-split does.
    let pre = d.path().join("s");
    let (code, _, err) = pocket(&[
        "split",
        inp,
        pre.to_str().unwrap(),
        "--split-max-size",
        "1X",
    ]);
    assert_eq!(code, 2, "{err}");
    // Not a shard.
    let (code, _, err) = pocket(&["merge", inp, d.path().join("m.gguf").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("split.count"), "{err}");
    // The output is one of the shards.
    let copy = d.path().join("x-00001-of-00001.gguf");
    let (code, _, err) = pocket(&[
        "split",
        inp,
        d.path().join("x").to_str().unwrap(),
        "--split-max-tensors",
        "1000",
    ]);
    assert_eq!(code, 0, "{err}");
    let before = std::fs::read(&copy).unwrap();
    let (code, _, err) = pocket(&["merge", copy.to_str().unwrap(), copy.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("refusing"), "{err}");
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    // A shard that would overwrite the input.
    let (code, _, err) = pocket(&[
        "split",
        copy.to_str().unwrap(),
        d.path().join("x").to_str().unwrap(),
        "--split-max-tensors",
        "1000",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("refusing"), "{err}");
    // A missing shard is named.
    let (code, _, _) = pocket(&[
        "split",
        inp,
        d.path().join("y").to_str().unwrap(),
        "--split-max-tensors",
        "8",
    ]);
    assert_eq!(code, 0);
    std::fs::remove_file(d.path().join("y-00002-of-00003.gguf")).unwrap();
    let (code, _, err) = pocket(&[
        "merge",
        d.path().join("y-00001-of-00003.gguf").to_str().unwrap(),
        d.path().join("z.gguf").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("shard 2 of 3"), "{err}");
}
