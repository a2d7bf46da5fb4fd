//! Outputs are written to a temporary file in the target's folder, fsynced and renamed: an abandoned
//! or failed write leaves the target as it was and no temporary file behind; an output that is the
//! input (by path, symlink or hard link) is refused.

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
