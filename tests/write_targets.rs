//! Every command that writes a file only ever replaces regular files: an output that is a device node,
//! FIFO, socket or directory is refused (exit 2, the path named) and left as it was, with no
//! temporary file behind; an existing output is refused without `--force` (as llama-gguf-split), and
//! with it keeps the replaced file's permission bits; a symlink output is replaced itself, never the
//! file it points to. Device nodes are private ones made with mknod(2) in a temporary folder, never
//! the system's.
#![cfg(unix)]

mod common;

use common::leftovers;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs pocket, killing it if it has not finished in a minute (a FIFO output must not block it).
fn pocket(args: &[&str]) -> (i32, String) {
    let mut c = common::pocket();
    c.args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("run pocket");
    let t0 = Instant::now();
    loop {
        if let Some(_s) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).to_string(),
            );
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("pocket {args:?} hung (blocked on its output?)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A writing command, given where its output goes; `output(dir)` is the path it writes (for split,
/// the first shard's name).
struct Cmd {
    name: &'static str,
    args: fn(&Path, &str) -> Vec<String>,
    output: fn(&Path) -> PathBuf,
}

fn td(n: &str) -> String {
    common::testdata(n).display().to_string()
}

fn commands() -> Vec<Cmd> {
    vec![
        Cmd {
            name: "convert",
            args: |_, o| {
                vec![
                    "convert".into(),
                    td("tiny-llama-q8_0.gguf"),
                    o.into(),
                    "--endian".into(),
                    "big".into(),
                ]
            },
            output: |d| d.join("out.gguf"),
        },
        Cmd {
            name: "requantize",
            args: |_, o| {
                vec![
                    "requantize".into(),
                    td("tiny-llama-f16.gguf"),
                    o.into(),
                    "Q8_0".into(),
                ]
            },
            output: |d| d.join("out.gguf"),
        },
        Cmd {
            name: "merge",
            args: |_, o| {
                vec![
                    "merge".into(),
                    td("tiny-llama-split-00001-of-00003.gguf"),
                    o.into(),
                ]
            },
            output: |d| d.join("out.gguf"),
        },
        Cmd {
            name: "split",
            args: |d, _| {
                vec![
                    "split".into(),
                    td("tiny-llama-q8_0.gguf"),
                    d.join("sh").display().to_string(),
                    "--split-max-tensors".into(),
                    "100".into(),
                ]
            },
            output: |d| d.join("sh-00001-of-00001.gguf"),
        },
        Cmd {
            name: "meta -o",
            args: |_, o| {
                vec![
                    "meta".into(),
                    "set".into(),
                    td("tiny-llama-q8_0.gguf"),
                    "general.name".into(),
                    "x".into(),
                    "-o".into(),
                    o.into(),
                ]
            },
            output: |d| d.join("out.gguf"),
        },
        Cmd {
            name: "verify --write-manifest",
            args: |_, o| {
                vec![
                    "verify".into(),
                    td("tiny-llama-q8_0.gguf"),
                    "--write-manifest".into(),
                    o.into(),
                ]
            },
            output: |d| d.join("out.manifest"),
        },
    ]
}

fn run(c: &Cmd, d: &Path, extra: &[&str]) -> (i32, String) {
    let out = (c.output)(d);
    let mut args = (c.args)(d, out.to_str().unwrap());
    args.extend(extra.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    pocket(&a)
}

fn mknod(p: &Path, mode: libc::mode_t, dev: libc::dev_t) -> std::io::Result<()> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::mknod(c.as_ptr(), mode, dev) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The odd files an output may be, made at `p`; returns their kind's name and a check that `p` is
/// still that kind. A character device is made only where mknod(2) is allowed (as root).
/// A kind of file: its name, a check that a path is one, and how to make one.
type Kind = (
    &'static str,
    fn(&Path) -> bool,
    fn(&Path) -> std::io::Result<()>,
);

fn odd_targets() -> Vec<Kind> {
    vec![
        (
            "FIFO",
            |p| p.metadata().unwrap().file_type().is_fifo(),
            |p| mknod(p, libc::S_IFIFO | 0o644, 0),
        ),
        ("directory", |p| p.is_dir(), |p| std::fs::create_dir(p)),
        (
            "socket",
            |p| p.metadata().unwrap().file_type().is_socket(),
            |p| {
                // Leaked on purpose: the socket file stays after the listener is gone either way.
                std::os::unix::net::UnixListener::bind(p).map(std::mem::forget)
            },
        ),
        (
            "character device",
            |p| p.metadata().unwrap().file_type().is_char_device(),
            // A private copy of /dev/null's node (major 1, minor 3 on Linux).
            |p| mknod(p, libc::S_IFCHR | 0o666, libc::makedev(1, 3)),
        ),
    ]
}

#[test]
fn every_writing_command_refuses_device_fifo_socket_and_directory_outputs() {
    let mut devices_tested = 0;
    for c in commands() {
        for (kind, still, make) in odd_targets() {
            let d = tempfile::tempdir().unwrap();
            let out = (c.output)(d.path());
            if let Err(e) = make(&out) {
                assert_eq!(kind, "character device", "making a {kind}: {e}");
                eprintln!("note: mknod not permitted here ({e}): device case not run");
                continue;
            }
            if kind == "character device" {
                devices_tested += 1;
            }
            for extra in [&[][..], &["--force"][..]] {
                let (code, err) = run(&c, d.path(), extra);
                assert_eq!(code, 2, "{} to a {kind} {extra:?}: {err}", c.name);
                assert!(
                    err.contains(&out.display().to_string()) && err.contains("not a regular file"),
                    "{} to a {kind}: the message names the output and says why: {err}",
                    c.name
                );
                assert!(still(&out), "{}: the {kind} was replaced", c.name);
                assert!(leftovers(d.path()).is_empty(), "{}: temp left", c.name);
            }
        }
    }
    if nix_is_root() {
        assert_eq!(
            devices_tested,
            commands().len(),
            "as root every device case runs"
        );
    }
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn every_writing_command_refuses_an_existing_output_without_force_and_keeps_its_mode_with_it() {
    for c in commands() {
        let d = tempfile::tempdir().unwrap();
        let out = (c.output)(d.path());
        std::fs::write(&out, b"precious").unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (code, err) = run(&c, d.path(), &[]);
        assert_eq!(code, 2, "{}: {err}", c.name);
        assert!(
            err.contains("--force") && err.contains(&out.display().to_string()),
            "{}: {err}",
            c.name
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"precious", "{}", c.name);
        let (code, err) = run(&c, d.path(), &["--force"]);
        assert_eq!(code, 0, "{} --force: {err}", c.name);
        assert_ne!(std::fs::read(&out).unwrap(), b"precious", "{}", c.name);
        let mode = out.metadata().unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600, "{}: the replaced file's mode is kept", c.name);
        assert!(leftovers(d.path()).is_empty(), "{}", c.name);
    }
}

#[test]
fn a_symlink_output_is_refused_without_force_and_with_it_the_link_is_replaced_not_its_target() {
    for c in commands() {
        let d = tempfile::tempdir().unwrap();
        let out = (c.output)(d.path());
        let shared = d.path().join("shared-blob");
        std::fs::write(&shared, b"shared").unwrap();
        std::os::unix::fs::symlink(&shared, &out).unwrap();
        let (code, err) = run(&c, d.path(), &[]);
        assert_eq!(code, 2, "{}: {err}", c.name);
        assert!(
            err.contains("symlink") && err.contains("shared-blob"),
            "{}: {err}",
            c.name
        );
        let (code, err) = run(&c, d.path(), &["--force"]);
        assert_eq!(code, 0, "{} --force: {err}", c.name);
        assert_eq!(
            std::fs::read(&shared).unwrap(),
            b"shared",
            "{}: the link's target was written",
            c.name
        );
        assert!(
            !out.symlink_metadata().unwrap().file_type().is_symlink(),
            "{}",
            c.name
        );
    }
}

#[test]
fn auxiliary_inputs_cannot_be_the_output() {
    let d = tempfile::tempdir().unwrap();
    // --manifest and --write-manifest the same file.
    let m = d.path().join("m.txt");
    let (code, _) = pocket(&[
        "verify",
        &td("tiny-llama-q8_0.gguf"),
        "--write-manifest",
        m.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let before = std::fs::read(&m).unwrap();
    let (code, err) = pocket(&[
        "verify",
        &td("tiny-llama-q8_0.gguf"),
        "--manifest",
        m.to_str().unwrap(),
        "--write-manifest",
        m.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--manifest"), "{err}");
    assert_eq!(std::fs::read(&m).unwrap(), before);
    // --imatrix as requantize's output.
    let im = d.path().join("imatrix.gguf");
    std::fs::copy(common::testdata("tiny-llama-q8_0.gguf"), &im).unwrap();
    let (code, err) = pocket(&[
        "requantize",
        &td("tiny-llama-f16.gguf"),
        im.to_str().unwrap(),
        "Q4_K_M",
        "--imatrix",
        im.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--imatrix"), "{err}");
    // --from-json as the file edited.
    let j = d.path().join("edits.json");
    std::fs::write(&j, r#"{"general.name": "y"}"#).unwrap();
    let (code, err) = pocket(&[
        "meta",
        "set",
        &td("tiny-llama-q8_0.gguf"),
        "--from-json",
        j.to_str().unwrap(),
        "-o",
        j.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--from-json"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&j).unwrap(),
        r#"{"general.name": "y"}"#
    );
}

#[test]
fn a_fifo_or_directory_given_as_the_model_is_refused_without_blocking() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("model.gguf");
    mknod(&fifo, libc::S_IFIFO | 0o644, 0).unwrap();
    for cmd in [
        &["inspect"][..],
        &["hash"][..],
        &["verify"][..],
        &["meta", "get"][..],
    ] {
        let mut a: Vec<&str> = cmd.to_vec();
        a.push(fifo.to_str().unwrap());
        if cmd[0] == "meta" {
            a.push("general.name");
        }
        let (code, err) = pocket(&a);
        assert_eq!(code, 2, "{a:?}: {err}");
        assert!(
            err.contains("FIFO") && err.contains("model.gguf"),
            "{a:?}: {err}"
        );
    }
    let (code, err) = pocket(&["inspect", d.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("directory"), "{err}");
}
