//! Test helpers: a raw GGUF byte builder (so tests can write headers no well-behaved writer would) and
//! paths to the bundled test data and the real model.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// Builds GGUF bytes record by record, remembering where each record starts.
pub struct Raw {
    pub b: Vec<u8>,
    pub big: bool,
    pub wide: bool,
}

impl Raw {
    /// Magic, version, tensor count and key count.
    pub fn header(version: u32, big: bool, n_tensors: u64, n_kv: u64) -> Raw {
        let mut r = Raw {
            b: b"GGUF".to_vec(),
            big,
            wide: version >= 2,
        };
        r.u32(version);
        r.len(n_tensors);
        r.len(n_kv);
        r
    }

    pub fn pos(&self) -> u64 {
        self.b.len() as u64
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        let bytes = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.b.extend_from_slice(&bytes);
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        let bytes = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.b.extend_from_slice(&bytes);
        self
    }

    pub fn len(&mut self, v: u64) -> &mut Self {
        if self.wide {
            self.u64(v)
        } else {
            self.u32(v as u32)
        }
    }

    pub fn bytes(&mut self, s: &[u8]) -> &mut Self {
        self.b.extend_from_slice(s);
        self
    }

    pub fn str(&mut self, s: &[u8]) -> &mut Self {
        self.len(s.len() as u64);
        self.bytes(s)
    }

    /// A key with a u32 value; returns the key's offset.
    pub fn kv_u32(&mut self, key: &str, v: u32) -> u64 {
        let at = self.pos();
        self.str(key.as_bytes()).u32(4).u32(v);
        at
    }

    pub fn kv_str(&mut self, key: &str, v: &[u8]) -> u64 {
        let at = self.pos();
        self.str(key.as_bytes()).u32(8).str(v);
        at
    }

    /// A tensor info; returns its offset.
    pub fn tensor(&mut self, name: &str, dims: &[u64], type_id: u32, offset: u64) -> u64 {
        let at = self.pos();
        self.str(name.as_bytes()).u32(dims.len() as u32);
        for &d in dims {
            self.len(d);
        }
        self.u32(type_id).u64(offset);
        at
    }

    /// Pads to `align` with zeros (the data section start) and returns the padded length.
    pub fn pad(&mut self, align: usize) -> u64 {
        while !self.b.len().is_multiple_of(align) {
            self.b.push(0);
        }
        self.pos()
    }

    pub fn zeros(&mut self, n: usize) -> &mut Self {
        self.b.resize(self.b.len() + n, 0);
        self
    }
}

/// The real model, fetched by `scripts/fetch-model.sh` if not already cached.
pub fn gemma() -> PathBuf {
    if let Ok(p) = std::env::var("GEMMA") {
        if Path::new(&p).is_file() {
            return PathBuf::from(p);
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-model.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .expect("run scripts/fetch-model.sh");
    assert!(
        out.status.success(),
        "scripts/fetch-model.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8(out.stdout).expect("utf-8 path");
    let path = PathBuf::from(path.trim());
    assert!(
        path.is_file(),
        "fetch-model.sh printed {path:?}, which is not a file"
    );
    path
}

/// A model of the zoo (`scripts/fetch-models.sh NAME`: gemma, qwen, nomic, or vocab for the folder of
/// llama.cpp's vocabulary files), fetched and checked by the script if not already cached.
pub fn zoo(name: &str) -> PathBuf {
    if name == "gemma" {
        return gemma();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-models.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(name)
        .output()
        .expect("run scripts/fetch-models.sh");
    assert!(
        out.status.success(),
        "scripts/fetch-models.sh {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).expect("utf-8 path");
    let path = line
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("fetch-models.sh {name} printed {line:?}"));
    let path = PathBuf::from(path.trim());
    assert!(
        path.exists(),
        "fetch-models.sh printed {path:?}, which does not exist"
    );
    path
}

/// A vocabulary-only file of llama.cpp's (`ggml-vocab-NAME.gguf`) from the zoo.
pub fn zoo_vocab(name: &str) -> PathBuf {
    zoo("vocab").join(format!("ggml-vocab-{name}.gguf"))
}

/// The runner to prefix to a program built for the target, where the tests run under emulation:
/// `POCKET_TEST_RUNNER` (scripts/test-aarch64.sh), else on aarch64 the runner cargo itself uses
/// (`CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER`, exported by ../shared/peers/aarch64.sh).
pub fn runner() -> Option<Vec<String>> {
    let from = |k: &str| std::env::var(k).ok().filter(|r| !r.trim().is_empty());
    let r = from("POCKET_TEST_RUNNER").or_else(|| {
        if cfg!(target_arch = "aarch64") {
            from("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER")
        } else {
            None
        }
    })?;
    Some(r.split_whitespace().map(str::to_string).collect())
}

/// A program built for the target as a command, through the emulation runner if there is one.
pub fn target_command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    match runner() {
        Some(r) => {
            let mut c = std::process::Command::new(&r[0]);
            c.args(&r[1..]).arg(program);
            c
        }
        None => std::process::Command::new(program),
    }
}

/// The `pocket` binary as a command (see [`target_command`]).
pub fn pocket() -> std::process::Command {
    target_command(env!("CARGO_BIN_EXE_pocket"))
}

/// `pocket ARGS` run to its end, its output kept.
pub fn run_pocket(args: &[&str]) -> std::process::Output {
    pocket().args(args).output().expect("run pocket")
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The temporary files pocket's writers left in `dir` (there should be none).
pub fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("pocket-tmp"))
        .collect()
}

/// xorshift64: a small seeded generator for randomized tests (the seed replays a failure).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// A golden of little-endian f32 values under `testdata/` (logits from llama.cpp).
///
/// Executor goldens depend on the class of CPU llama.cpp was built for (testdata/README.md, "CPU
/// classes"): where pocket imitates the AVX2 class (`POCKET_CPU=avx2`, or an AVX2-only CPU) and an
/// `NAME.avx2.EXT` golden exists beside `NAME.EXT`, that one is read.
pub fn f32_golden(name: &str) -> Vec<f32> {
    let name = class_golden(name);
    let name = name.as_str();
    let b = std::fs::read(testdata(name)).unwrap_or_else(|e| panic!("golden {name}: {e}"));
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Token ids under `testdata/`, separated by whitespace or commas, brackets allowed.
pub fn token_ids(name: &str) -> Vec<u32> {
    std::fs::read_to_string(testdata(name))
        .unwrap_or_else(|e| panic!("token ids {name}: {e}"))
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().unwrap())
        .collect()
}

/// Per row of `n_vocab` logits: max|ours - theirs| / max|theirs|, and whether the argmax agrees.
pub fn rel_row_diffs(ours: &[f32], theirs: &[f32], n_vocab: usize) -> Vec<(f32, bool)> {
    use pocket::exec::sample::argmax;
    assert_eq!(ours.len(), theirs.len());
    ours.chunks_exact(n_vocab)
        .zip(theirs.chunks_exact(n_vocab))
        .map(|(a, b)| {
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            (d / scale, argmax(a) == argmax(b))
        })
        .collect()
}

/// `name`, or its AVX2-class twin (`a.b.ext` -> `a.b.avx2.ext`, on the last dot before the
/// extension `logits.f32` / `txt`...) where pocket imitates that class and the twin exists.
pub fn class_golden(name: &str) -> String {
    if pocket::isa::numerics().f16_vec != pocket::isa::F16Vec::Avx {
        return name.to_string();
    }
    let twin = if let Some(stem) = name.strip_suffix(".logits.f32") {
        format!("{stem}.avx2.logits.f32")
    } else {
        match name.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem}.avx2.{ext}"),
            None => return name.to_string(),
        }
    };
    if testdata(&twin).is_file() {
        twin
    } else {
        name.to_string()
    }
}

/// llama-perplexity's running PPL after each chunk: the `[i]value` entries of the `[1]…` line of a
/// golden in testdata/.
pub fn golden_ppl(name: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(testdata(name)).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("[1]"))
        .expect("a [1]... line");
    line.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.split(']').nth(1).unwrap().trim().parse().unwrap())
        .collect()
}

/// The per-chunk `ppl_so_far` of `pocket perplexity MODEL -f testdata/exec/ppl-text.txt -c CTX
/// --chunks CHUNKS --json` (the run must succeed and score every chunk asked), and its final PPL.
pub fn pocket_ppl(model: &Path, ctx: usize, chunks: usize) -> (Vec<f64>, f64) {
    let out = pocket()
        .arg("perplexity")
        .arg(model)
        .arg("-f")
        .arg(testdata("exec/ppl-text.txt"))
        .args([
            "-c",
            &ctx.to_string(),
            "--chunks",
            &chunks.to_string(),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let so_far: Vec<f64> = d["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ppl_so_far"].as_f64().unwrap())
        .collect();
    assert_eq!(so_far.len(), chunks);
    (so_far, d["ppl"].as_f64().unwrap())
}
