//! Headers longer than `verify`'s and `hash`'s first read (4 MiB): read whole, up to 512 MiB, in
//! bounded memory — a vocabulary of a million tokens whose array ends where the file does was
//! refused with "cannot fit in the 4194145 bytes left" (issue #27); past the limit, a message that
//! names it and the variable that raises it.

mod common;

use std::path::Path;

/// A file of `n` empty tokens and nothing after the array but the padding: the header is the file.
fn empty_vocab(path: &Path, n: u64) {
    let mut r = common::Raw::header(3, false, 0, 2);
    r.kv_str("general.architecture", b"llama");
    r.str(b"tokenizer.ggml.tokens").u32(9).u32(8).len(n);
    r.zeros(8 * n as usize);
    r.pad(32);
    std::fs::write(path, &r.b).unwrap();
}

#[test]
fn hash_and_verify_read_a_header_longer_than_their_first_read() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("vocab.gguf");
    empty_vocab(&p, 1 << 20);
    assert!(std::fs::metadata(&p).unwrap().len() > 8 << 20);
    let o = common::run_pocket(&["hash", &common::s(&p)]);
    assert_eq!(o.status.code(), Some(0), "{}", common::text(&o.stderr));
    let o = common::run_pocket(&["verify", "--single", "--json", &common::s(&p)]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let structure = j["models"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "structure")
        .unwrap();
    assert_eq!(structure["status"], "pass", "{structure}");
}

#[test]
fn a_header_past_the_limit_is_refused_naming_the_limit_and_how_to_raise_it() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("vocab.gguf");
    empty_vocab(&p, 1 << 20);
    for cmd in [&["hash"][..], &["verify", "--single"]] {
        let o = common::pocket()
            .args(cmd)
            .arg(&p)
            .env("POCKET_MAX_HEADER_MB", "4")
            .output()
            .unwrap();
        let err = common::text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(
            err.contains("longer than the 4 MiB") && err.contains("POCKET_MAX_HEADER_MB"),
            "{cmd:?}: {err}"
        );
        // With the limit raised, the same file reads.
        let o = common::pocket()
            .args(cmd)
            .arg(&p)
            .env("POCKET_MAX_HEADER_MB", "16")
            .output()
            .unwrap();
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{cmd:?}: {}",
            common::text(&o.stderr)
        );
    }
}
