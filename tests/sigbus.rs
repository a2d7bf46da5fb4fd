//! A file truncated by another process while pocket has it mapped: touching the lost pages raises
//! SIGBUS, which pocket turns into a clear message and exit code 2 (install_sigbus_handler). The test
//! re-runs itself as a child process that maps a file, truncates it and reads past the new end.

mod common;

use std::io::Write;

const CHILD: &str = "POCKET_SIGBUS_CHILD";

fn child(path: &str) {
    pocket::gguf::file::install_sigbus_handler();
    let f = pocket::gguf::GgufFile::open(path).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let b = f.bytes();
    // Past the new end: this page is gone.
    let x = std::hint::black_box(b[b.len() - 1]);
    println!("read {x} past the end without a signal");
    std::process::exit(0);
}

#[test]
fn file_truncated_while_mapped_exits_2_with_a_message() {
    if let Ok(p) = std::env::var(CHILD) {
        child(&p);
    }
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("shrinking.gguf");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&vec![7u8; 1 << 20])
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = common::target_command(exe);
    let out = cmd
        .args([
            "--exact",
            "file_truncated_while_mapped_exits_2_with_a_message",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, &path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout {} stderr {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.contains("changed while it was being read"), "{err}");
}
