//! The model zoo's real files (scripts/fetch-models.sh) through every writing command, against what
//! the peers derive from the same files (testdata/zoo/derived.tsv, scripts/make-zoo-goldens.sh: the
//! recipe and sha256 of each output, not its bytes): the big-endian copy gguf-py's
//! gguf-convert-endian writes, llama-gguf-split's shards, llama-quantize's requantized files.
//! `verify` passes every zoo model. The heaviest recipes (Qwen 1.5B re-quantized to every ftype)
//! are sampled here; `POCKET_ZOO_FULL=1` runs them all (scripts/check-zoo.sh).

mod common;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One line of derived.tsv: (kind, source, args, file, sha256).
fn recipes() -> Vec<[String; 5]> {
    let t = std::fs::read_to_string(common::testdata("zoo/derived.tsv")).unwrap();
    t.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "{l}");
            std::array::from_fn(|i| f[i].to_string())
        })
        .collect()
}

fn sha256(p: &Path) -> String {
    use std::io::Read;
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(p).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn pocket(args: &[&str]) {
    let o = common::pocket().args(args).output().expect("run pocket");
    assert!(
        o.status.success(),
        "pocket {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn full() -> bool {
    std::env::var_os("POCKET_ZOO_FULL").is_some_and(|v| v != "0" && !v.is_empty())
}

#[test]
fn zoo_big_endian_copy_equals_gguf_convert_endian() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for [_, src, _, file, want] in recipes().into_iter().filter(|r| r[0] == "be") {
        let out = dir.path().join(&file);
        pocket(&["convert", "--endian", "big", s(&common::zoo(&src)), s(&out)]);
        assert_eq!(sha256(&out), want, "{file}");
        n += 1;
    }
    assert!(n >= 1);
}

#[test]
fn zoo_split_shards_equal_llama_gguf_split() {
    let dir = tempfile::tempdir().unwrap();
    let r: Vec<_> = recipes().into_iter().filter(|r| r[0] == "split").collect();
    assert!(r.len() >= 2);
    let prefix = dir.path().join("nomic-split");
    let args: Vec<&str> = r[0][2].split_whitespace().collect();
    let mut cmd = vec!["split"];
    cmd.extend(args);
    let src = common::zoo(&r[0][1]);
    cmd.extend([s(&src), s(&prefix)]);
    pocket(&cmd);
    for [_, _, _, file, want] in &r {
        assert_eq!(&sha256(&dir.path().join(file)), want, "{file}");
    }
}

#[test]
fn zoo_requantized_files_equal_llama_quantize() {
    let dir = tempfile::tempdir().unwrap();
    let sample = [
        "nomic-Q8_0.gguf",
        "nomic-Q4_K_M.gguf",
        "nomic-IQ4_XS.gguf",
        "qwen-Q4_0.gguf",
    ];
    let mut n = 0;
    for [_, src, ty, file, want] in recipes().into_iter().filter(|r| r[0] == "quant") {
        if !full() && !sample.contains(&file.as_str()) {
            continue;
        }
        let out: PathBuf = dir.path().join(&file);
        let input = common::zoo(&src);
        let mut args = vec!["requantize"];
        if src == "qwen" {
            args.push("--allow-requantize");
        }
        args.extend([s(&input), s(&out), ty.as_str(), "2"]);
        pocket(&args);
        assert_eq!(sha256(&out), want, "{file}");
        std::fs::remove_file(&out).unwrap();
        n += 1;
    }
    assert!(n >= sample.len(), "{n}");
}

#[test]
fn zoo_verify_passes_every_model() {
    for name in ["gemma", "qwen", "nomic"] {
        let p = common::zoo(name);
        let o = common::pocket()
            .args(["verify", "--json", s(&p)])
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(o.status.code(), Some(0), "{name}: {doc:#}");
        let checks = doc["models"][0]["checks"].as_array().unwrap();
        assert!(
            checks.iter().all(|c| c["status"] != "fail"),
            "{name}: {checks:#?}"
        );
    }
}
