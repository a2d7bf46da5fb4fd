//! `meta set|rm` on a file other names share: a symlink (a Hugging Face snapshot pointing at a shared
//! blob) or a file with several hard links is refused with a message naming the shared file and the
//! ways out (`--follow`, `-o`); `--follow` edits the shared file itself, in place or rewritten under
//! its own name, so the link keeps pointing at it.
#![cfg(unix)]

mod common;

use std::path::Path;

fn pocket(args: &[&str]) -> (i32, String) {
    let o = common::pocket().args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn name(p: &Path) -> String {
    let o = common::pocket()
        .args(["meta", "get", p.to_str().unwrap(), "general.name"])
        .output()
        .unwrap();
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn an_edit_through_a_symlink_is_refused_unless_followed() {
    let d = tempfile::tempdir().unwrap();
    let blob = d.path().join("blob");
    std::fs::copy(common::testdata("tiny-llama-q8_0.gguf"), &blob).unwrap();
    let link = d.path().join("model.gguf");
    std::os::unix::fs::symlink(&blob, &link).unwrap();
    let before = std::fs::read(&blob).unwrap();
    let l = link.to_str().unwrap();
    // In place (same length) and rewrite (longer) are both refused.
    for v in [
        "AAAAAAAAAA",
        "a much longer name than before, needing a rewrite of the whole file",
    ] {
        let (code, err) = pocket(&["meta", "set", l, "general.name", v]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("symlink")
                && err.contains("blob")
                && err.contains("--follow")
                && err.contains("-o"),
            "{err}"
        );
        assert_eq!(std::fs::read(&blob).unwrap(), before);
    }
    // --follow edits the blob; the link stays a link to it.
    for v in [
        "AAAAAAAAAA",
        "a much longer name than before, needing a rewrite of the whole file",
    ] {
        let (code, err) = pocket(&["meta", "set", l, "general.name", v, "--follow"]);
        assert_eq!(code, 0, "{err}");
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(name(&blob), v);
    }
    // -o writes a new file, the blob untouched.
    let now = std::fs::read(&blob).unwrap();
    let o = d.path().join("new.gguf");
    let (code, err) = pocket(&[
        "meta",
        "set",
        l,
        "general.name",
        "x",
        "-o",
        o.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&blob).unwrap(), now);
    assert_eq!(name(&o), "x");
}

#[test]
fn an_edit_of_a_hard_linked_file_is_refused_unless_followed() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.gguf");
    std::fs::copy(common::testdata("tiny-llama-q8_0.gguf"), &a).unwrap();
    let b = d.path().join("b.gguf");
    std::fs::hard_link(&a, &b).unwrap();
    let before = std::fs::read(&a).unwrap();
    let (code, err) = pocket(&[
        "meta",
        "set",
        a.to_str().unwrap(),
        "general.name",
        "CCCCCCCCCC",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("2 hard links") && err.contains("--follow"),
        "{err}"
    );
    // An edit that needs a rewrite: only -o can do it.
    let (code, err) = pocket(&["meta", "rm", a.to_str().unwrap(), "general.name"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("2 hard links") && err.contains("-o NEW"),
        "{err}"
    );
    assert_eq!(std::fs::read(&b).unwrap(), before);
    // In place with --follow: both names see it.
    let (code, err) = pocket(&[
        "meta",
        "set",
        a.to_str().unwrap(),
        "general.name",
        "BBBBBBBBBB",
        "--follow",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(name(&b), "BBBBBBBBBB");
    // A rewrite would split the names: refused even with --follow.
    let (code, err) = pocket(&[
        "meta",
        "set",
        a.to_str().unwrap(),
        "general.name",
        "a much longer name than before, needing a rewrite of the whole file",
        "--follow",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rewrite") && err.contains("-o"), "{err}");
    assert_eq!(name(&a), "BBBBBBBBBB");
}
