//! Bounded memory (issue #27): every reading command, on every input of the suite — the testdata
//! models, the hostile corpus, and large headers generated here (10M empty tokens, many tensors, many
//! keys) — runs under a 2 GB address-space limit (`RLIMIT_AS`, as `ulimit -v 2097152`) without being
//! killed by a signal (an allocation failure aborts), and its peak resident memory (the child's
//! `ru_maxrss` from `wait4`) stays under 4× the input's size plus a fixed allowance for the binary
//! itself (`diff`'s input is its two files). The few (input, command) pairs known to need more are
//! listed in [`OVER`] with the ratio they are held to instead, so that they cannot grow unnoticed; the
//! table of every measurement is printed (`cargo test --test memory_bounds -- --nocapture`).
//!
//! Sizes: `POCKET_MEMORY_SCALE=1` generates the full sizes (1M tensors, 1M keys); the default
//! is a fifth of that, to keep the test near 30 s.

mod common;

use std::io::{BufWriter, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

/// What pocket takes with the smallest input: the binary's own pages, the allocator, the thread
/// pool's stacks in use (measured: 5–11 MB).
const ALLOWANCE: u64 = 16 << 20;
const AS_LIMIT: u64 = 2 << 30;

/// (input, command, the ratio of peak RSS to input size it is held to instead of 4): each entry is
/// one still above the bound, removed when it is fixed so that a regression fails.
/// `tokenize` on 10M empty tokens (8 bytes each in the file) keeps a 32-byte record per token (its
/// text inline, score and attributes), the text index (4 bytes a slot) and the piece table: 6.9x,
/// from 26x when every token's text was a `String`, cloned into a `HashMap` key.
const OVER: &[(&str, &str, f64)] = &[("empty-vocab", "tokenize", 7.0)];

fn scale() -> u64 {
    match std::env::var("POCKET_MEMORY_SCALE").as_deref() {
        Ok("1") => 1_000_000,
        _ => 200_000,
    }
}

struct Gen(BufWriter<std::fs::File>, u64);

impl Gen {
    fn new(p: &Path, n_tensors: u64, n_kv: u64) -> Gen {
        let mut g = Gen(BufWriter::new(std::fs::File::create(p).unwrap()), 0);
        g.b(b"GGUF").u32(3).u64(n_tensors).u64(n_kv);
        g
    }
    fn b(&mut self, b: &[u8]) -> &mut Self {
        self.0.write_all(b).unwrap();
        self.1 += b.len() as u64;
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.b(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.b(&v.to_le_bytes())
    }
    fn s(&mut self, s: &[u8]) -> &mut Self {
        self.u64(s.len() as u64).b(s)
    }
    fn kv_str(&mut self, k: &[u8], v: &[u8]) -> &mut Self {
        self.s(k).u32(8).s(v)
    }
    fn pad(&mut self) -> &mut Self {
        let n = (32 - self.1 % 32) % 32;
        self.b(&vec![0; n as usize])
    }
    fn finish(&mut self) {
        self.0.flush().unwrap();
    }
}

/// The large inputs: a vocabulary of 10M empty tokens (80 MB), `n` f32 tensors of 8 elements, `n`
/// bool keys.
fn generate(dir: &Path) -> Vec<PathBuf> {
    let n = scale();
    let vocab = dir.join("empty-vocab.gguf");
    let mut g = Gen::new(&vocab, 0, 3);
    g.kv_str(b"general.architecture", b"llama");
    g.kv_str(b"tokenizer.ggml.model", b"llama");
    let n_tok = 10_000_000u64;
    g.s(b"tokenizer.ggml.tokens").u32(9).u32(8).u64(n_tok);
    g.b(&vec![0; 8 * n_tok as usize]).pad().finish();

    let tensors = dir.join("many-tensors.gguf");
    let mut g = Gen::new(&tensors, n, 1);
    g.kv_str(b"general.architecture", b"llama");
    for i in 0..n {
        g.s(format!("t{i}").as_bytes())
            .u32(1)
            .u64(8)
            .u32(0)
            .u64(i * 32);
    }
    g.pad().b(&vec![0; 32 * n as usize]).finish();

    let keys = dir.join("many-keys.gguf");
    let mut g = Gen::new(&keys, 0, n + 1);
    g.kv_str(b"general.architecture", b"llama");
    for i in 0..n {
        g.s(format!("k.{i}").as_bytes()).u32(7).b(&[1]);
    }
    g.pad().finish();
    vec![vocab, tensors, keys]
}

/// Runs pocket under the address-space limit; its exit status and peak RSS in bytes.
fn run_limited(args: &[&std::ffi::OsStr], stderr: &Path) -> (ExitStatus, u64) {
    let mut c = common::pocket();
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: AS_LIMIT as libc::rlim_t,
                rlim_max: AS_LIMIT as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Reaped by the wait4 below (which also gives its rusage), not by Child::wait.
    #[allow(clippy::zombie_processes)]
    let child = c.spawn().unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, with valid pointers to locals.
    let r = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut ru) };
    assert_eq!(r, child.id() as libc::pid_t, "wait4");
    // ru_maxrss is in KiB on Linux.
    (ExitStatus::from_raw(status), ru.ru_maxrss as u64 * 1024)
}

#[test]
fn every_input_stays_under_4x_its_size_and_nothing_aborts_under_a_2gb_address_space() {
    if common::runner().is_some() {
        // Under an emulator the RSS and the address space are the emulator's.
        eprintln!("skipped under an emulation runner: the measurement would be qemu's");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut inputs: Vec<PathBuf> = Vec::new();
    for sub in ["", "hostile"] {
        for e in std::fs::read_dir(common::testdata(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "gguf")
                && std::fs::metadata(&p).unwrap().len() < 64 << 20
            {
                inputs.push(p);
            }
        }
    }
    inputs.sort();
    inputs.extend(generate(dir.path()));
    let stderr = dir.path().join("stderr");
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    for input in &inputs {
        let size = std::fs::metadata(input).unwrap().len();
        let stem = input.file_stem().unwrap().to_string_lossy().into_owned();
        let commands: [&[&str]; 7] = [
            &["inspect"],
            &["inspect", "--json"],
            &["inspect", "--tensors"],
            &["verify", "--single"],
            &["hash"],
            &["diff"],
            &["tokenize", "-p", "hello"],
        ];
        for cmd in commands {
            let mut args: Vec<&std::ffi::OsStr> = cmd.iter().map(|s| s.as_ref()).collect();
            args.push(input.as_os_str());
            if cmd[0] == "diff" {
                args.push(input.as_os_str());
            }
            let (status, rss) = run_limited(&args, &stderr);
            let name = cmd
                .join(" ")
                .replace(" --single", "")
                .replace(" -p hello", "");
            // diff's input is two files (here the same one twice, mapped twice).
            let size = if cmd[0] == "diff" { 2 * size } else { size };
            let ratio = rss as f64 / size as f64;
            let held = OVER
                .iter()
                .find(|(i, c, _)| *i == stem && *c == name)
                .map(|o| o.2);
            let bound = match held {
                Some(r) => (r * size as f64) as u64 + ALLOWANCE,
                None => 4 * size + ALLOWANCE,
            };
            if size > 1 << 20 {
                rows.push(format!(
                    "{stem:<16} {name:<15} {:>8.1} MB {:>8.1} MB {ratio:>6.2}x  {status}",
                    size as f64 / 1e6,
                    rss as f64 / 1e6
                ));
            }
            if let Some(sig) = status.signal() {
                let err = std::fs::read_to_string(&stderr).unwrap_or_default();
                failures.push(format!(
                    "{name} {}: killed by signal {sig} under a 2 GB address space: {err}",
                    input.display()
                ));
            } else if !matches!(status.code(), Some(0..=2)) {
                failures.push(format!("{name} {}: {status}", input.display()));
            }
            if rss > bound {
                failures.push(format!(
                    "{name} {}: peak RSS {rss} bytes for a {size}-byte input ({ratio:.1}x; bound {bound})",
                    input.display()
                ));
            }
        }
    }
    eprintln!("input            command              size     peak RSS  ratio");
    for r in &rows {
        eprintln!("{r}");
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
