//! Outputs are written to a temporary file in the target's folder, fsynced and renamed: an abandoned
//! or failed write leaves the target as it was and no temporary file behind; an output that is the
//! input (by path, symlink or hard link) is refused.

mod common;

use std::io::Write;

use pocket::fsio::{AtomicFile, OutputError};

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("pocket-tmp"))
        .collect()
}

#[test]
fn commit_replaces_the_target_whole() {
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("out.gguf");
    std::fs::write(&target, b"old").unwrap();
    let mut f = AtomicFile::create(&target, &[], Some(3)).unwrap();
    assert!(
        f.temp_path().starts_with(d.path()),
        "the temporary file is in the target's folder"
    );
    f.write_all(b"new!").unwrap();
    assert_eq!(
        std::fs::read(&target).unwrap(),
        b"old",
        "target untouched until commit"
    );
    f.commit().unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"new!");
    assert!(leftovers(d.path()).is_empty());
}

#[test]
fn an_abandoned_write_leaves_the_target_and_no_temporary_file() {
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("out.gguf");
    std::fs::write(&target, b"precious").unwrap();
    {
        let mut f = AtomicFile::create(&target, &[], None).unwrap();
        f.write_all(&[0u8; 100_000]).unwrap();
        // Dropped without commit, as on an error half-way.
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert!(leftovers(d.path()).is_empty(), "{:?}", leftovers(d.path()));
}

#[test]
fn output_that_is_the_input_is_refused_by_path_symlink_and_hard_link() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.gguf");
    std::fs::write(&input, b"model").unwrap();
    let sym = d.path().join("sym.gguf");
    let hard = d.path().join("hard.gguf");
    std::os::unix::fs::symlink(&input, &sym).unwrap();
    std::fs::hard_link(&input, &hard).unwrap();
    let dotted = d.path().join(".").join("in.gguf");
    for out in [&input, &sym, &hard, &dotted] {
        match AtomicFile::create(out, &[&input], None) {
            Err(OutputError::SameAsInput { .. }) => {}
            Err(e) => panic!("{}: wrong error {e}", out.display()),
            Ok(_) => panic!("{}: writing over the input was allowed", out.display()),
        }
    }
    assert_eq!(std::fs::read(&input).unwrap(), b"model");
    // An explicit in-place write is allowed, and still atomic.
    let mut f = AtomicFile::create_in_place(&input, None).unwrap();
    f.write_all(b"edited").unwrap();
    f.commit().unwrap();
    assert_eq!(std::fs::read(&sym).unwrap(), b"edited");
}

#[test]
fn not_enough_space_is_refused_before_writing() {
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("big.gguf");
    match AtomicFile::create(&target, &[], Some(u64::MAX / 2)) {
        Err(OutputError::NoSpace {
            needed, available, ..
        }) => assert!(needed > available),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("an impossible size was accepted"),
    }
    assert!(!target.exists());
    assert!(leftovers(d.path()).is_empty());
}

/// Fuzzing found it (fuzz/artifacts/header/oom-c7ed…): a valid file without tensors whose
/// `general.alignment` is 2^31 ends long before its data section would start. llama.cpp accepts it;
/// writing it back must stream its 2 GiB of padding, not allocate it, and every command must cope.
#[test]
fn alignment_2_pow_31_without_tensors_is_written_without_allocating_the_padding() {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&17u64.to_le_bytes());
    b.extend_from_slice(b"general.alignment");
    b.extend_from_slice(&4u32.to_le_bytes());
    b.extend_from_slice(&(1u32 << 31).to_le_bytes());
    let g = pocket::Gguf::parse(&b).unwrap();
    assert_eq!(g.data_offset, 1 << 31);
    let w = pocket::GgufWriter::from_gguf(&g);
    assert_eq!(w.header_len().unwrap(), 1 << 31);
    // Count what is written instead of keeping it.
    struct Count(u64);
    impl Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let n = w.write_from(&mut c, &g).unwrap();
    assert_eq!((n, c.0), (1 << 31, 1 << 31));
}

/// A writer killed outright (SIGKILL) leaves `.NAME.pocket-tmp-PID-N` behind, unlocked, its process
/// gone: the next write to the same target removes it, and keeps the temporary files of a live
/// process, of a dead process's name whose lock is held (a writer in another PID namespace), of
/// another target, and anything that is not a regular file.
#[test]
fn the_next_write_removes_temporary_files_a_killed_writer_left_and_only_those() {
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("out.gguf");
    std::fs::write(&target, b"old").unwrap();
    // A process that has exited: its pid is free (until reused, which the kernel does not do at once).
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    let dead = child.id();
    let stale = d.path().join(format!(".out.gguf.pocket-tmp-{dead}-0"));
    std::fs::write(&stale, vec![0u8; 4096]).unwrap();
    // pid 1 is always there.
    let live = d.path().join(".out.gguf.pocket-tmp-1-0");
    std::fs::write(&live, b"live").unwrap();
    let locked = d.path().join(format!(".out.gguf.pocket-tmp-{dead}-1"));
    std::fs::write(&locked, b"locked").unwrap();
    let holder = std::fs::File::open(&locked).unwrap();
    holder.try_lock().unwrap();
    let other = d.path().join(format!(".other.gguf.pocket-tmp-{dead}-0"));
    std::fs::write(&other, b"other").unwrap();
    let dir = d.path().join(format!(".out.gguf.pocket-tmp-{dead}-2"));
    std::fs::create_dir(&dir).unwrap();

    let mut f = AtomicFile::create(&target, &[], Some(3)).unwrap();
    f.write_all(b"new").unwrap();
    f.commit().unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    assert!(
        !stale.exists(),
        "the killed writer's temporary file is removed"
    );
    for kept in [&live, &locked, &other, &dir] {
        assert!(kept.exists(), "{} is kept", kept.display());
    }
    drop(holder);
    // With its lock free, the dead writer's second file goes at the next write.
    let mut f = AtomicFile::create(&target, &[], Some(3)).unwrap();
    f.write_all(b"new").unwrap();
    f.commit().unwrap();
    assert!(!locked.exists());
    assert!(live.exists() && other.exists() && dir.exists());
}

/// A real SIGKILL in the middle of a write: the temporary file it leaves is removed by the next
/// write to the same target (through the CLI, as a user would hit it).
#[test]
fn a_temporary_file_left_by_sigkill_is_removed_by_the_next_write() {
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("out.txt");
    // A writer in another process (this test binary, re-run as a child) that stops half-way.
    let exe = std::env::current_exe().unwrap();
    let mut child = common::target_command(exe)
        .args([
            "--exact",
            "half_written_child",
            "--nocapture",
            "--include-ignored",
        ])
        .env("POCKET_HALF_WRITE", &target)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the child says its temporary file is written, then kill it outright.
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let said = std::io::BufRead::lines(out)
        .map(|l| l.unwrap())
        .any(|l| l.starts_with("written"));
    assert!(said, "the child wrote half its output");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(leftovers(d.path()).len(), 1, "{:?}", leftovers(d.path()));
    let mut f = AtomicFile::create(&target, &[], None).unwrap();
    f.write_all(b"done").unwrap();
    f.commit().unwrap();
    assert!(leftovers(d.path()).is_empty(), "{:?}", leftovers(d.path()));
    assert_eq!(std::fs::read(&target).unwrap(), b"done");
}

/// The child of the test above: writes half an output and waits to be killed.
#[test]
#[ignore = "run by a_temporary_file_left_by_sigkill_is_removed_by_the_next_write"]
fn half_written_child() {
    let Some(target) = std::env::var_os("POCKET_HALF_WRITE") else {
        return;
    };
    let mut f = AtomicFile::create(std::path::Path::new(&target), &[], None).unwrap();
    f.write_all(&[7u8; 1 << 16]).unwrap();
    f.flush().unwrap();
    println!("written");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(60));
}
