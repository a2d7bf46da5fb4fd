//! `pocket hash` against `llama-gguf-hash --sha256` goldens (testdata/expected/hash, made by
//! scripts/make-hash-golden.sh): byte-identical output on the testdata files and gemma-3 270M, and
//! `--check` with llama-gguf-hash's manifests and wording.

mod common;

use std::path::Path;

fn pocket(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let o = common::pocket()
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run pocket");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn golden(name: &str) -> String {
    std::fs::read_to_string(common::testdata(&format!(
        "expected/hash/{name}.sha256.txt"
    )))
    .unwrap()
}

#[test]
fn output_equals_llama_gguf_hash_on_testdata() {
    let td = common::testdata("");
    for f in [
        "metadata-only.gguf",
        "tiny-llama-f16.gguf",
        "tiny-llama-q8_0.gguf",
        "tiny-llama-q4_k_m.gguf",
        "tiny-llama-split-00001-of-00003.gguf",
        "tiny-llama-split-00002-of-00003.gguf",
        "tiny-llama-split-00003-of-00003.gguf",
    ] {
        let (code, out, err) = pocket(&["hash", f], &td);
        assert_eq!(code, 0, "{f}: {err}");
        assert_eq!(out, golden(f), "{f}");
        // --sha256 is accepted as llama-gguf-hash spells it.
        let (_, out2, _) = pocket(&["hash", "--sha256", "--threads", "2", f], &td);
        assert_eq!(out2, out);
    }
}

#[test]
fn output_equals_llama_gguf_hash_on_gemma() {
    let g = common::gemma();
    let dir = g.parent().unwrap();
    let name = g.file_name().unwrap().to_str().unwrap();
    let (code, out, err) = pocket(&["hash", name], dir);
    assert_eq!(code, 0, "{err}");
    let want = golden("gemma-3-270m-q4_k_m.gguf").replace("gemma-3-270m-q4_k_m.gguf", name);
    assert_eq!(out, want);
    assert_eq!(out.lines().count(), 237);
}

#[test]
fn check_accepts_llama_gguf_hash_manifests() {
    let td = common::testdata("");
    let f = "tiny-llama-q8_0.gguf";
    let m = common::testdata(&format!("expected/hash/{f}.sha256.txt"));
    let m = m.to_str().unwrap();
    let (code, out, _) = pocket(&["hash", "--check", m, f], &td);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(&format!("manifest  {m}  sha256\n")),
        "{out}"
    );
    assert!(out.contains(&format!("  {f}:token_embd.weight  -  Ok\n")));
    assert!(
        out.ends_with(&format!("\nVerification results for {m} - Success\n")),
        "{out}"
    );

    // One tensor hash changed in the manifest: Mismatch on that line, Failure, exit 1.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    let text = std::fs::read_to_string(m).unwrap();
    let line = text
        .lines()
        .find(|l| l.ends_with(":blk.0.attn_q.weight"))
        .unwrap();
    let mut words: Vec<&str> = line.split("  ").collect();
    let flipped = format!("{}0", &words[2][..63]);
    words[2] = &flipped;
    let text = text.replace(line, &words.join("  "));
    std::fs::write(&bad, text).unwrap();
    let (code, out, _) = pocket(&["hash", "-c", bad.to_str().unwrap(), f], &td);
    assert_eq!(code, 1);
    assert!(out.contains(":blk.0.attn_q.weight  -  Mismatch\n"), "{out}");
    assert!(out.contains("- Failure\n"));

    // A manifest of another file: nothing found.
    let other = common::testdata("expected/hash/tiny-llama-f16.gguf.sha256.txt");
    let (code, out, _) = pocket(&["hash", "-c", other.to_str().unwrap(), f], &td);
    assert_eq!(code, 1);
    assert!(out.contains("  -  Not Found\n"));
    assert!(out.contains("- Manifest Missing Entry\n"));

    // An unreadable manifest is an input error.
    let (code, _, err) = pocket(&["hash", "-c", "/nonexistent/m.txt", f], &td);
    assert_eq!(code, 2);
    assert!(err.contains("cannot open manifest"), "{err}");
}

#[test]
fn check_accepts_pocket_verify_manifests() {
    let td = common::testdata("");
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.txt");
    let (code, _, err) = pocket(
        &[
            "verify",
            "tiny-llama-q4_k_m.gguf",
            "--write-manifest",
            m.to_str().unwrap(),
        ],
        &td,
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = pocket(
        &[
            "hash",
            "--check",
            m.to_str().unwrap(),
            "tiny-llama-q4_k_m.gguf",
        ],
        &td,
    );
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("Not Found"), "{out}");
    assert!(out.contains("tiny-llama-q4_k_m.gguf  -  Ok\n"));
}

/// Every zoo file (Qwen 1.5B, nomic-embed, llama.cpp's vocabulary files) against llama-gguf-hash's
/// output on it (testdata/zoo/hash, scripts/make-zoo-goldens.sh), run from the file's folder.
#[test]
fn output_equals_llama_gguf_hash_on_the_zoo() {
    let mut n = 0;
    let mut goldens: Vec<_> = std::fs::read_dir(common::testdata("zoo/hash"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    goldens.sort();
    for g in goldens {
        let name = g.file_name().unwrap().to_string_lossy().to_string();
        let stem = name.strip_suffix(".sha256.txt").unwrap();
        let file = if stem.starts_with("ggml-vocab-") {
            common::zoo("vocab").join(format!("{stem}.gguf"))
        } else if stem.starts_with("qwen") {
            common::zoo("qwen")
        } else {
            common::zoo("nomic")
        };
        let (code, out, err) = pocket(
            &["hash", file.file_name().unwrap().to_str().unwrap()],
            file.parent().unwrap(),
        );
        assert_eq!(code, 0, "{stem}: {err}");
        assert_eq!(out, std::fs::read_to_string(&g).unwrap(), "{stem}");
        n += 1;
    }
    assert!(n >= 21, "only {n} goldens");
}
