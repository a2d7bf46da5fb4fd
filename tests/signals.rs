//! SIGINT, SIGTERM and SIGHUP at random points of an in-place edit, a rewriting edit and a split: the
//! file is the old one or the new one (a split set is all there or not at all), and no temporary
//! file is left. The handler asks the writer to stop at a safe point instead of exiting under it.
//!
//! Trials per (operation, signal): `POCKET_SIGNAL_TRIALS` (default 6); scripts/stress-concurrency.sh
//! runs 60.
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{leftovers, Raw, Rng};

/// A model of `n` F32 tensors of `len` values each (zeros), so that writing it takes a while.
fn big_model(p: &Path, n: usize, len: u64) {
    let mut r = Raw::header(3, false, n as u64, 1);
    r.kv_str("general.name", b"tiny-llama");
    for i in 0..n {
        r.tensor(&format!("t{i}"), &[len], 0, i as u64 * len * 4);
    }
    r.pad(32);
    r.zeros((n as u64 * len * 4) as usize);
    std::fs::write(p, &r.b).unwrap();
}

struct Op {
    name: &'static str,
    args: fn(&Path) -> Vec<String>,
    /// The files the operation writes (relative to the folder).
    outputs: &'static [&'static str],
}

fn ops() -> Vec<Op> {
    vec![
        Op {
            name: "in-place edit",
            args: |p| {
                vec![
                    "meta".into(),
                    "set".into(),
                    p.display().to_string(),
                    "general.name".into(),
                    "AAAAAAAAAA".into(),
                ]
            },
            outputs: &["m.gguf"],
        },
        Op {
            name: "rewriting edit",
            args: |p| {
                vec![
                    "meta".into(),
                    "set".into(),
                    p.display().to_string(),
                    "general.name".into(),
                    "a longer name".into(),
                    "--no-in-place".into(),
                ]
            },
            outputs: &["m.gguf"],
        },
        Op {
            name: "split",
            args: |p| {
                let prefix = p.parent().unwrap().join("sh").display().to_string();
                vec![
                    "split".into(),
                    p.display().to_string(),
                    prefix,
                    "--split-max-tensors".into(),
                    "1".into(),
                ]
            },
            outputs: &[
                "sh-00001-of-00004.gguf",
                "sh-00002-of-00004.gguf",
                "sh-00003-of-00004.gguf",
                "sh-00004-of-00004.gguf",
            ],
        },
    ]
}

/// Each output's content (a hash of it), or None where it does not exist.
fn read_all(d: &Path, names: &[&str]) -> Vec<Option<u64>> {
    use std::hash::{Hash, Hasher};
    names
        .iter()
        .map(|n| {
            std::fs::read(d.join(n)).ok().map(|b| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                b.hash(&mut h);
                h.finish()
            })
        })
        .collect()
}

fn setup(model: &Path) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("m.gguf");
    std::fs::copy(model, &p).unwrap();
    (d, p)
}

#[test]
fn signals_at_random_points_leave_the_old_or_the_new_file_and_no_temp() {
    let trials = std::env::var("POCKET_SIGNAL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6usize);
    let base = tempfile::tempdir().unwrap();
    let model = base.path().join("big.gguf");
    big_model(&model, 4, 1 << 20);
    let seed = std::env::var("POCKET_SIGNAL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                ^ std::process::id() as u64
        });
    eprintln!("seed {seed}");
    let mut rng = Rng(seed | 1);
    let mut outcomes = [0usize; 2];
    for op in ops() {
        // The old and new contents, and how long the operation takes uninterrupted.
        let (d, p) = setup(&model);
        let old = read_all(d.path(), op.outputs);
        let t0 = Instant::now();
        let o = common::pocket().args((op.args)(&p)).output().unwrap();
        let took = t0.elapsed();
        assert!(
            o.status.success(),
            "{}: {}",
            op.name,
            String::from_utf8_lossy(&o.stderr)
        );
        let new = read_all(d.path(), op.outputs);
        assert_ne!(old, new, "{}", op.name);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            for t in 0..trials {
                let (d, p) = setup(&model);
                let delay =
                    Duration::from_micros(rng.next() % (took.as_micros() as u64 * 13 / 10 + 1));
                let mut child = common::pocket()
                    .args((op.args)(&p))
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                std::thread::sleep(delay);
                // SAFETY: kill(2) on our own child's pid.
                unsafe { libc::kill(child.id() as i32, sig) };
                let t1 = Instant::now();
                while child.try_wait().unwrap().is_none() {
                    if t1.elapsed() > Duration::from_secs(60) {
                        let _ = child.kill();
                        panic!("{}: still running a minute after signal {sig}", op.name);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                let out = child.wait_with_output().unwrap();
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(!err.contains("panicked"), "{}: {err}", op.name);
                let now = read_all(d.path(), op.outputs);
                let what = format!(
                    "{} signal {sig} after {delay:?} (trial {t}, seed {seed})",
                    op.name
                );
                if now == old {
                    outcomes[0] += 1;
                } else if now == new {
                    outcomes[1] += 1;
                } else {
                    panic!(
                        "{what}: the output is neither the old nor the new (exit {:?}: {err})",
                        out.status
                    );
                }
                assert!(
                    leftovers(d.path()).is_empty(),
                    "{what}: temp left: {:?}",
                    leftovers(d.path())
                );
                // Interrupted runs exit 130 (the edit may have completed just before the signal);
                // finished ones exit 0; a signal before the handler is installed kills the process
                // (nothing written yet).
                use std::os::unix::process::ExitStatusExt;
                let code = out.status.code();
                assert!(
                    code == Some(130) || code == Some(0) || out.status.signal() == Some(sig),
                    "{what}: exit {:?}: {err}",
                    out.status
                );
            }
        }
    }
    eprintln!(
        "signals: {} runs ({trials} per operation and signal): old file {}, new file {}, no temp left",
        outcomes[0] + outcomes[1],
        outcomes[0],
        outcomes[1]
    );
}
