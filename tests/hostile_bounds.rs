//! Counts and sizes from a file or the command line are bounded before anything is allocated or looped
//! over (#27): a 200-byte file claiming 2^63 shards, `block_count` 2^32-1, `rope.dimension_count` 0,
//! `run -n 10^9`, `bench -p 10^9`, a thread count of 10^6, a memory estimate that would overflow. And
//! the lower items: no terminal escape sequence from a file reaches human output, a manifest of a file
//! whose name has a space verifies. Every case must end quickly with a clear message, never a panic.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

fn pocket(args: &[&str]) -> (i32, Vec<u8>, String, Duration) {
    let t0 = Instant::now();
    let o = common::pocket().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    (o.status.code().unwrap_or(-1), o.stdout, err, t0.elapsed())
}

fn edited(d: &Path, name: &str, key: &str, ty: &str, value: &str) -> String {
    let out = d.join(name);
    let (code, _, err, _) = pocket(&[
        "meta",
        "set",
        common::testdata("tiny-llama-q8_0.gguf").to_str().unwrap(),
        key,
        value,
        "--type",
        ty,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    out.display().to_string()
}

#[test]
fn verify_does_not_loop_over_an_absurd_split_count() {
    let d = tempfile::tempdir().unwrap();
    let mut r = common::Raw::header(3, false, 0, 2);
    r.kv_str("general.architecture", b"llama");
    r.str(b"split.count").u32(10).u64(1 << 63);
    let p = d.path().join("m.gguf");
    std::fs::write(&p, &r.b).unwrap();
    for extra in [&[][..], &["--single"][..]] {
        let mut a = vec!["verify", p.to_str().unwrap()];
        a.extend_from_slice(extra);
        let (code, _, err, took) = pocket(&a);
        assert!(code == 1 || code == 2, "{extra:?}: exit {code}: {err}");
        assert!(took < Duration::from_secs(20), "{extra:?}: took {took:?}");
    }
}

#[test]
fn executor_hyper_parameters_are_range_checked_before_compute() {
    let d = tempfile::tempdir().unwrap();
    let rope0 = edited(
        d.path(),
        "rope0.gguf",
        "llama.rope.dimension_count",
        "u32",
        "0",
    );
    let layers = edited(
        d.path(),
        "layers.gguf",
        "llama.block_count",
        "u32",
        "4294967295",
    );
    for (m, key) in [(&rope0, "rope.dimension_count"), (&layers, "block_count")] {
        for cmd in [
            vec!["run", m.as_str(), "-p", "hi", "-n", "2"],
            vec!["bench", m.as_str(), "-p", "4", "-n", "0", "-r", "1"],
        ] {
            let (code, _, err, took) = pocket(&cmd);
            assert_eq!(code, 2, "{cmd:?}: {err}");
            assert!(
                err.contains(key),
                "{cmd:?}: the message names the key: {err}"
            );
            assert!(took < Duration::from_secs(20), "{cmd:?}: {took:?}");
        }
    }
}

#[test]
fn huge_command_line_numbers_are_refused_not_allocated() {
    let m = common::testdata("tiny-llama-q8_0.gguf");
    let m = m.to_str().unwrap();
    for cmd in [
        vec!["run", m, "-p", "hi", "-n", "1000000000"],
        vec!["run", m, "-p", "hi", "-n", "18446744073709551615"],
        vec!["bench", m, "-p", "100000000000", "-n", "0", "-r", "1"],
        vec!["bench", m, "-p", "1", "-n", "1", "-t", "1000000"],
        vec!["hash", m, "--threads", "1000000"],
        vec!["verify", m, "--threads", "1000000"],
    ] {
        let (code, _, err, took) = pocket(&cmd);
        assert_eq!(code, 2, "{cmd:?}: {err}");
        assert!(!err.is_empty(), "{cmd:?}: says why");
        assert!(took < Duration::from_secs(20), "{cmd:?}: {took:?}");
    }
}

#[test]
fn the_memory_estimate_refuses_an_overflow_instead_of_wrapping_to_fits() {
    let b = std::fs::read(common::testdata("tiny-llama-q8_0.gguf")).unwrap();
    let g = pocket::Gguf::parse(&b).unwrap();
    assert!(pocket::memory::estimate(&g, 1 << 20, 4096).is_ok());
    let e = pocket::memory::estimate(&g, 1 << 20, u64::MAX / 2);
    assert!(e.is_err(), "{e:?}");
    let e = pocket::memory::estimate(&g, u64::MAX, 4096);
    assert!(e.is_err(), "{e:?}");
}

#[test]
fn escape_sequences_from_a_file_never_reach_human_output() {
    let d = tempfile::tempdir().unwrap();
    let evil = "\u{1b}[2K\u{1b}[1A\rPASS everything\u{9b}31m";
    let p = edited(d.path(), "evil.gguf", "general.name", "str", evil);
    let (code, out, err, _) = pocket(&["inspect", &p]);
    assert_eq!(code, 0, "{err}");
    let has_control = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        s.chars().any(|c| {
            (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c)
        })
    };
    assert!(!has_control(&out), "inspect sent a control character");
    assert!(
        String::from_utf8_lossy(&out).contains("\\x1b[2K"),
        "shown, not hidden"
    );
    for cmd in [
        vec!["verify", p.as_str()],
        vec!["meta", "rm", p.as_str(), "no\u{1b}[31mkey"],
    ] {
        let (_, out, err, _) = pocket(&cmd);
        assert!(!has_control(&out), "{cmd:?}: stdout");
        assert!(!has_control(err.as_bytes()), "{cmd:?}: stderr {err:?}");
    }
    // JSON keeps the exact value (escaped the JSON way).
    let (_, out, _, _) = pocket(&["meta", "get", &p, "general.name", "--json"]);
    let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(j["value"], evil);
}

#[test]
fn a_manifest_of_a_file_whose_name_has_a_space_verifies() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("my model.gguf");
    std::fs::copy(common::testdata("tiny-llama-q8_0.gguf"), &p).unwrap();
    let m = d.path().join("manifest.txt");
    let (code, _, err, _) = pocket(&[
        "verify",
        p.to_str().unwrap(),
        "--write-manifest",
        m.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err, _) = pocket(&[
        "verify",
        p.to_str().unwrap(),
        "--manifest",
        m.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err} {}", String::from_utf8_lossy(&out));
}
