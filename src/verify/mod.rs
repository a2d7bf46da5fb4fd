//! `verify`: is a GGUF file (or split model) sound, complete and runnable, and will it fit on a
//! device? Each check yields pass / warn / fail with what and where. The checks that need only the
//! header (structure, completeness, tokenizer, split set, types and backends, device fit) also run on
//! a file holding only its first megabytes; the data pass ([`numbers`]) reads every tensor once,
//! scanning float values and block scales and hashing for manifests ([`manifest`]).
//!
//! Files are read with `pread`, never mapped (see [`read`]): a file truncated by another process while
//! we read it gives a short read and a failed check, not SIGBUS.

pub mod arch;
pub mod backends;
pub mod device;
pub mod manifest;
pub mod numbers;
pub mod read;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::gguf::file::{split_path, split_prefix};
use crate::gguf::parse::parse_header;
use crate::gguf::spec::{KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT};
use crate::gguf::{Gguf, GgufError, TensorInfo};

use device::{DeviceEstimate, DeviceProfile};
use manifest::{hex, Entry};
use numbers::TensorScan;
use read::Shard;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Which check: `structure`, `truncation`, `trailing-data`, `split`, `types`, `backends`,
    /// `completeness`, `tokenizer`, `numbers`, `all-zero`, `magnitude`, `read`, `manifest`, `device`.
    pub check: &'static str,
    pub status: Status,
    pub message: String,
    /// File, byte offset, key or tensor, where it applies.
    pub location: Option<String>,
}

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The file holds only the header (the first megabytes of a download): skip data checks.
    pub header_only: bool,
    /// Verify this file alone even if it is one shard of a split model.
    pub single: bool,
    /// Hash every tensor (for manifests).
    pub hash: bool,
    /// Also hash all tensor data of each file in one stream (llama-gguf-hash's file line), which
    /// costs a second pass. Not needed to check a manifest: the per-tensor hashes cover the same
    /// bytes, so the file line is left out of the comparison when this is off.
    pub whole_hash: bool,
    /// Threads for the data pass (0: rayon's default).
    pub threads: usize,
    pub device: Option<DeviceProfile>,
    /// Context length for the device estimate (default 4096).
    pub n_ctx: Option<u64>,
    /// A manifest to check against (its text).
    pub manifest: Option<String>,
}

/// Everything `verify` found.
#[derive(Debug, Clone)]
pub struct Report {
    pub files: Vec<PathBuf>,
    pub checks: Vec<Check>,
    pub architecture: Option<String>,
    pub n_tensors: u64,
    pub n_params: u64,
    pub tensor_bytes: u64,
    /// Weight types used by matrices (2-D or more), with their count and backend support.
    pub types: Vec<(String, u64, [bool; 6])>,
    pub device: Option<DeviceEstimate>,
    /// Manifest entries computed (with `hash`): per tensor, per file, header and keys.
    pub manifest: Vec<Entry>,
}

impl Report {
    /// The worst status of all checks.
    pub fn worst(&self) -> Status {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Pass)
    }

    /// The checks named `name`.
    pub fn by_name<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Check> + 'a {
        self.checks.iter().filter(move |c| c.check == name)
    }
}

/// Errors that stop verification before any check (the file cannot be opened at all).
#[derive(Debug, Error)]
pub enum VerifyError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("cannot start {threads} threads: {message}")]
    Threads { threads: usize, message: String },
}

struct Out {
    checks: Vec<Check>,
}

impl Out {
    fn push(&mut self, check: &'static str, status: Status, message: String, at: Option<String>) {
        self.checks.push(Check {
            check,
            status,
            message,
            location: at,
        });
    }
    fn pass(&mut self, check: &'static str, message: String) {
        self.push(check, Status::Pass, message, None);
    }
    fn warn(&mut self, check: &'static str, message: String, at: Option<String>) {
        self.push(check, Status::Warn, message, at);
    }
    fn fail(&mut self, check: &'static str, message: String, at: Option<String>) {
        self.push(check, Status::Fail, message, at);
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Finds the other shards of a split model from its first shard's header, the way llama.cpp names
/// them, opening each with `open`. Missing shards are reported as failed `split` checks.
fn discover(first: Shard, opts: &Options, out: &mut Out, open: OpenShard<'_>) -> Vec<Shard> {
    if opts.single {
        return vec![first];
    }
    let (no, count) = match parse_header(&first.head) {
        Ok(raw) => {
            let get = |k: &str| {
                raw.kvs
                    .iter()
                    .find(|kv| kv.key == k)
                    .and_then(|kv| kv.value.as_u64())
            };
            (get(KEY_SPLIT_NO), get(KEY_SPLIT_COUNT))
        }
        Err(_) => (None, None),
    };
    let count = match count {
        Some(c) if c > 1 => c,
        _ => return vec![first],
    };
    if count > 100_000 {
        out.fail("split", format!("split.count {count} is absurd"), None);
        return vec![first];
    }
    let count = count as u32;
    if no != Some(0) {
        out.fail(
            "split",
            format!(
                "this is shard {} of {count}, not the first; checking it alone",
                no.map_or("?".to_string(), |n| (n + 1).to_string())
            ),
            Some(first.path.display().to_string()),
        );
        return vec![first];
    }
    let p = first.path.to_string_lossy().to_string();
    let Some(prefix) = split_prefix(&p, 1, count).map(str::to_string) else {
        out.fail(
            "split",
            format!("split.count is {count} but the name does not follow llama.cpp's PREFIX-00001-of-{count:05}.gguf, so the other shards cannot be found"),
            Some(p.clone()),
        );
        return vec![first];
    };
    let mut shards = vec![first];
    for i in 2..=count {
        let sp = split_path(&prefix, i, count);
        match open(&sp) {
            Ok(s) => shards.push(s),
            Err(e) => out.fail(
                "split",
                format!("shard {i} of {count} is missing: {e}"),
                Some(sp),
            ),
        }
    }
    shards
}

/// Structure and truncation of one shard. Returns the header view (validated as if the file were long
/// enough) and whether the tensor data is all there.
fn structure<'a>(
    s: &'a Shard,
    opts: &Options,
    label: &str,
    out: &mut Out,
) -> Option<(Gguf<'a>, bool)> {
    let at = |e: &GgufError| {
        Some(match e.offset() {
            Some(o) => format!("{label} byte {o}"),
            None => label.to_string(),
        })
    };
    let whole = s.head.len() as u64 == s.size;
    let g = match s.gguf_as(u64::MAX) {
        Ok(g) => g,
        Err(e) => {
            let cut = matches!(
                e,
                GgufError::Truncated { .. }
                    | GgufError::LengthPastEnd { .. }
                    | GgufError::CountTooLarge { .. }
            );
            if cut && whole && !opts.header_only {
                out.fail(
                    "truncation",
                    format!("the file ({} bytes) ends inside its header: {e}", s.size),
                    at(&e),
                );
            } else if cut && opts.header_only {
                out.fail(
                    "structure",
                    format!(
                        "the first {} bytes do not hold the whole header: {e}",
                        s.head.len()
                    ),
                    at(&e),
                );
            } else {
                out.fail("structure", format!("{e} [{}]", e.kind()), at(&e));
            }
            return None;
        }
    };
    out.pass(
        "structure",
        format!(
            "{label}: GGUF v{}, {}-endian, {} keys, {} tensors, data at byte {}",
            g.version,
            g.endian.name(),
            g.kvs.len(),
            g.tensors.len(),
            g.data_offset
        ),
    );
    if opts.header_only {
        return Some((g, false));
    }
    let last = g.tensors.iter().max_by_key(|t| t.file_offset + t.n_bytes);
    let need = last.map_or(0, |t| t.file_offset + t.n_bytes);
    if need > s.size {
        let t = last.map_or("", |t| t.name);
        out.fail(
            "truncation",
            format!(
                "the file is {} bytes but tensor '{t}' ends at byte {need}: {} bytes missing ({:.1}% of the data)",
                s.size,
                need - s.size,
                100.0 * (need - s.size) as f64 / (need - g.data_offset).max(1) as f64
            ),
            Some(format!("{label} byte {}", s.size)),
        );
        return Some((g, false));
    }
    // The full validation against the real size (overlaps and offsets were checked above already).
    if let Err(e) = s.gguf_as(s.size) {
        out.fail("structure", format!("{e} [{}]", e.kind()), at(&e));
        return Some((g, false));
    }
    out.pass(
        "truncation",
        format!(
            "{label}: all {} bytes of tensor data present",
            need.saturating_sub(g.data_offset)
        ),
    );
    let end = if g.tensors.is_empty() {
        s.size.min(g.data_offset)
    } else {
        g.data_end()
    };
    if s.size > end {
        out.warn(
            "trailing-data",
            format!(
                "{} bytes after the end of the last tensor's padded data (llama.cpp ignores them; a concatenated or half-overwritten file?)",
                s.size - end
            ),
            Some(format!("{label} byte {end}")),
        );
    }
    Some((g, true))
}

fn split_checks(shards: &[Shard], gs: &[Option<(Gguf<'_>, bool)>], out: &mut Out) {
    let first = match gs.first() {
        Some(Some((g, _))) => g,
        _ => return,
    };
    let count = first.get_u64(KEY_SPLIT_COUNT);
    if count.is_none_or(|c| c <= 1) && shards.len() == 1 {
        return;
    }
    let count = count.unwrap_or(1);
    let mut ok = true;
    let mut by_no: HashMap<u64, &Path> = HashMap::new();
    for (s, g) in shards.iter().zip(gs) {
        let Some((g, _)) = g else { continue };
        if g.endian != first.endian {
            ok = false;
            out.fail(
                "split",
                format!(
                    "this shard is {}-endian but the first is {}-endian: a set must be one byte order",
                    g.endian.name(),
                    first.endian.name()
                ),
                Some(s.path.display().to_string()),
            );
        }
        let (no, c) = (g.get_u64(KEY_SPLIT_NO), g.get_u64(KEY_SPLIT_COUNT));
        if c != Some(count) {
            ok = false;
            out.fail(
                "split",
                format!("split.count is {c:?}, the first shard says {count}"),
                Some(s.path.display().to_string()),
            );
        }
        match no {
            None => {
                ok = false;
                out.fail(
                    "split",
                    "split.no is missing".into(),
                    Some(s.path.display().to_string()),
                );
            }
            Some(n) => {
                if let Some(other) = by_no.insert(n, &s.path) {
                    ok = false;
                    out.fail(
                        "split",
                        format!(
                            "shard {} appears twice: {} and {} both say split.no = {n}",
                            n + 1,
                            other.display(),
                            s.path.display()
                        ),
                        Some(s.path.display().to_string()),
                    );
                }
            }
        }
    }
    // Only when as many files as split.count were found (bounded by the files, whatever the count
    // says: a 200-byte file claiming 2^64 shards must not loop for hours).
    let found = if shards.len() as u64 == count {
        count
    } else {
        0
    };
    for n in 0..found {
        if !by_no.contains_key(&n) {
            ok = false;
            out.fail(
                "split",
                format!("no file holds shard {} (split.no = {n})", n + 1),
                None,
            );
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut total = 0u64;
    for (i, g) in gs.iter().enumerate() {
        let Some((g, _)) = g else { continue };
        total += g.tensors.len() as u64;
        for t in &g.tensors {
            if let Some(j) = seen.insert(t.name, i) {
                ok = false;
                out.fail(
                    "split",
                    format!(
                        "tensor '{}' is in shard {} and shard {}",
                        t.name,
                        j + 1,
                        i + 1
                    ),
                    Some(shards[i].path.display().to_string()),
                );
                break;
            }
        }
    }
    match first.get_u64(KEY_SPLIT_TENSORS_COUNT) {
        Some(want)
            if want != total && gs.iter().all(|g| g.is_some()) && shards.len() as u64 == count =>
        {
            ok = false;
            out.fail(
                "split",
                format!("split.tensors.count is {want} but the shards hold {total} tensors"),
                None,
            );
        }
        None => out.warn("split", "split.tensors.count is missing".into(), None),
        _ => {}
    }
    if ok && shards.len() as u64 == count {
        out.pass(
            "split",
            format!("{count} shards, numbered 1..{count}, {total} tensors in all, none doubled"),
        );
    }
}

fn tokenizer_checks(g: &Gguf<'_>, embd_rows: Option<u64>, out: &mut Out) -> Option<u64> {
    let arr_len = |k: &str| g.get(k).and_then(|v| v.as_array()).map(|a| a.len);
    let n_tok = arr_len("tokenizer.ggml.tokens");
    let mut ok = true;
    let Some(n) = n_tok else {
        out.warn(
            "tokenizer",
            "no vocabulary (tokenizer.ggml.tokens): llama.cpp can load the model but not tokenize text".into(),
            Some("tokenizer.ggml.tokens".into()),
        );
        return None;
    };
    for k in ["tokenizer.ggml.scores", "tokenizer.ggml.token_type"] {
        match arr_len(k) {
            Some(m) if m != n => {
                ok = false;
                out.fail(
                    "tokenizer",
                    format!("{m} entries for {n} tokens"),
                    Some(k.to_string()),
                );
            }
            None if g.get(k).is_some() => {
                ok = false;
                out.fail("tokenizer", "is not an array".into(), Some(k.to_string()));
            }
            _ => {}
        }
    }
    if let Some(rows) = embd_rows {
        if rows != n {
            ok = false;
            out.fail(
                "tokenizer",
                format!("the vocabulary has {n} tokens but token_embd.weight has {rows} rows"),
                Some("token_embd.weight".into()),
            );
        }
    }
    for special in ["bos", "eos", "eot", "eom", "pad", "unk", "sep", "mask"] {
        let key = format!("tokenizer.ggml.{special}_token_id");
        if let Some(v) = g.get(&key) {
            match v.as_i64() {
                Some(id) if id >= 0 && (id as u64) < n => {}
                // llama.cpp treats -1 (as i32/u32 all ones) as "none".
                Some(-1) => {}
                Some(id) if id as u64 == u32::MAX as u64 => {}
                other => {
                    ok = false;
                    out.fail(
                        "tokenizer",
                        format!(
                            "{special} token id {other:?} is not below the vocabulary size {n}"
                        ),
                        Some(key),
                    );
                }
            }
        }
    }
    if let Some(m) = g.get("tokenizer.ggml.merges").and_then(|v| v.as_array()) {
        let mut bad = 0u64;
        let mut first = None;
        for (i, s) in m.strings().enumerate() {
            // llama.cpp splits each merge's bytes at the first space after byte 0 (`find(' ', 1)`);
            // the first part may be a multi-byte character (`"Ġ t"`), so this works on bytes.
            let b = s.as_bytes();
            let good = b
                .iter()
                .skip(1)
                .position(|&c| c == b' ')
                .is_some_and(|p| p + 2 < b.len());
            if !good {
                bad += 1;
                first.get_or_insert((i, s.to_string()));
            }
        }
        if m.elem_type != crate::gguf::ValueType::String {
            ok = false;
            out.fail(
                "tokenizer",
                "merges is not an array of strings".into(),
                Some("tokenizer.ggml.merges".into()),
            );
        } else if let Some((i, s)) = first {
            ok = false;
            out.fail(
                "tokenizer",
                format!("{bad} merges are not of the form \"a b\"; the first is #{i} {s:?}"),
                Some("tokenizer.ggml.merges".into()),
            );
        }
    }
    // An embedding model (it declares how its outputs are pooled) is not chatted with.
    let embedding = g
        .architecture()
        .is_some_and(|a| g.get(&format!("{a}.pooling_type")).is_some());
    if !embedding
        && g.get("tokenizer.chat_template")
            .and_then(|v| v.as_str())
            .is_none()
    {
        out.warn(
            "tokenizer",
            "no chat template (tokenizer.chat_template): apps must supply one".into(),
            Some("tokenizer.chat_template".into()),
        );
    }
    if ok {
        out.pass(
            "tokenizer",
            format!(
                "{n} tokens ({}), arrays consistent{}",
                g.get_str("tokenizer.ggml.model").unwrap_or("?"),
                if embd_rows.is_some() {
                    " with token_embd"
                } else {
                    ""
                }
            ),
        );
    }
    Some(n)
}

fn completeness_checks(
    g: &Gguf<'_>,
    tensors: &HashMap<&str, &TensorInfo<'_>>,
    n_vocab: Option<u64>,
    out: &mut Out,
) {
    let Some(arch) = g.architecture() else {
        out.warn(
            "completeness",
            "general.architecture is missing: not a model llama.cpp can load".into(),
            Some("general.architecture".into()),
        );
        return;
    };
    if tensors.is_empty() {
        // llama.cpp's own models/ggml-vocab-*.gguf are such files: fine for tokenizing, not for running.
        let msg = if n_vocab.is_some() {
            "the file holds no tensors: a vocabulary-only file (for tokenizers), not a model llama.cpp can run"
        } else {
            "the file holds no tensors: not a model llama.cpp can run"
        };
        out.warn("completeness", msg.into(), None);
        return;
    }
    if !arch::KNOWN.contains(&arch) {
        out.warn(
            "completeness",
            format!(
                "no tensor list for architecture '{arch}' here (known: {})",
                arch::KNOWN.join(", ")
            ),
            None,
        );
        return;
    }
    let h = match arch::hparams(g, arch, n_vocab) {
        Ok(h) => h,
        Err(e) => {
            out.fail("completeness", format!("hyper-parameters: {e}"), None);
            return;
        }
    };
    let needs = arch::expected(arch, &h).unwrap_or_default();
    let mut used: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    let mut check = |e: &arch::Expected| match tensors.get(e.name.as_str()) {
        Some(t) => {
            used.insert(e.name.clone());
            if t.dims != e.shape {
                wrong.push(format!(
                    "'{}' has shape {:?}, expected {:?}",
                    e.name, t.dims, e.shape
                ));
            }
        }
        None if e.required => missing.push(e.name.clone()),
        None => {}
    };
    for n in &needs {
        match n {
            arch::Need::One(e) => check(e),
            // Fused QKV if the file has it, else separate Q, K, V.
            arch::Need::Either(fused, separate) => {
                let pick = if tensors.contains_key(fused[0].name.as_str()) {
                    fused
                } else {
                    separate
                };
                pick.iter().for_each(&mut check);
            }
        }
    }
    let mut extra: Vec<&str> = tensors
        .keys()
        .copied()
        .filter(|n| !used.contains(*n) && !arch::tolerated(n))
        .collect();
    extra.sort();
    let n_miss = missing.len();
    if !missing.is_empty() {
        out.fail(
            "completeness",
            format!(
                "{n_miss} required tensors missing: {}{}",
                missing
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if n_miss > 5 { ", …" } else { "" }
            ),
            Some(missing[0].clone()),
        );
    }
    for w in wrong.iter().take(10) {
        out.fail(
            "completeness",
            w.clone(),
            w.split('\'').nth(1).map(str::to_string),
        );
    }
    if !extra.is_empty() {
        out.warn(
            "completeness",
            format!(
                "{} tensors llama.cpp's {arch} does not load (it refuses files with unused tensors): {}{}",
                extra.len(),
                extra.iter().take(5).copied().collect::<Vec<_>>().join(", "),
                if extra.len() > 5 { ", …" } else { "" }
            ),
            Some(extra[0].to_string()),
        );
    }
    if missing.is_empty() && wrong.is_empty() {
        out.pass(
            "completeness",
            format!(
                "{arch}: every tensor of {} layers present with the shapes n_embd {}, n_ff {}, heads {}/{}, head dim {}, vocab {} give",
                h.n_layer,
                h.n_embd,
                h.n_ff.first().copied().unwrap_or(0),
                h.n_head.first().copied().unwrap_or(0),
                h.n_head_kv.first().copied().unwrap_or(0),
                h.head_k,
                h.n_vocab
            ),
        );
    }
}

/// Data pass over every tensor of the shards whose data is complete: scans and hashes, and the
/// whole-data hash per shard (llama-gguf-hash's file line) when hashing.
#[allow(clippy::type_complexity)]
fn data_pass(
    shards: &[Shard],
    gs: &[Option<(Gguf<'_>, bool)>],
    avail: &[Vec<usize>],
    hash: bool,
    whole_hash: bool,
    progress: Progress<'_>,
) -> (
    Vec<Vec<(usize, std::io::Result<TensorScan>)>>,
    Vec<Option<std::io::Result<[u8; 32]>>>,
) {
    use rayon::prelude::*;
    let jobs: Vec<(usize, usize)> = avail
        .iter()
        .enumerate()
        .flat_map(|(i, js)| js.iter().map(move |&j| (i, j)))
        .collect();
    let total: u64 = jobs
        .iter()
        .map(|&(i, j)| gs[i].as_ref().map_or(0, |(g, _)| g.tensors[j].n_bytes))
        .sum();
    let done = std::sync::atomic::AtomicU64::new(0);
    let (scans, whole) = rayon::join(
        || {
            jobs.par_iter()
                .map(|&(i, j)| {
                    let (g, _) = gs[i].as_ref().expect("shard with data");
                    let t = &g.tensors[j];
                    let r = numbers::scan_tensor(&*shards[i].src, t, g.endian, true, hash);
                    let d = done.fetch_add(t.n_bytes, std::sync::atomic::Ordering::Relaxed);
                    progress(d + t.n_bytes, total);
                    ((i, j), r)
                })
                .collect::<Vec<_>>()
        },
        || {
            gs.iter()
                .enumerate()
                .map(|(i, g)| match g {
                    Some((g, true)) if whole_hash && shards[i].holds(0, shards[i].size) => {
                        Some(whole_data_hash(&shards[i], g))
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
        },
    );
    let mut per: Vec<Vec<(usize, std::io::Result<TensorScan>)>> =
        gs.iter().map(|_| Vec::new()).collect();
    for ((i, j), r) in scans {
        per[i].push((j, r));
    }
    (per, whole)
}

/// SHA-256 of all tensor data of a shard in tensor order (`llama-gguf-hash`'s whole-model line).
pub fn whole_data_hash(s: &Shard, g: &Gguf<'_>) -> std::io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    for t in &g.tensors {
        let mut done = 0u64;
        while done < t.n_bytes {
            let n = (buf.len() as u64).min(t.n_bytes - done) as usize;
            read::read_exact_at(&*s.src, &mut buf[..n], t.file_offset + done)?;
            h.update(&buf[..n]);
            done += n as u64;
        }
    }
    Ok(h.finalize().into())
}

/// Manifest entries for the header of a shard: the header bytes and each metadata record.
fn header_entries(name: &str, s: &Shard, g: &Gguf<'_>) -> Vec<Entry> {
    let mut v = Vec::new();
    let end = (g.data_offset as usize).min(s.head.len());
    v.push(Entry::new(
        "sha256",
        hex(&Sha256::digest(&s.head[..end])),
        format!("{name}:@header"),
    ));
    let tensors_start = g.tensors.first().map_or(g.header_end, |t| t.info_offset);
    for (i, kv) in g.kvs.iter().enumerate() {
        let a = kv.offset as usize;
        let b = g.kvs.get(i + 1).map_or(tensors_start, |n| n.offset) as usize;
        if let Some(bytes) = s.head.get(a..b) {
            v.push(Entry::new(
                "sha256",
                hex(&Sha256::digest(bytes)),
                format!("{name}:@kv:{}", kv.key),
            ));
        }
    }
    v
}

/// Called with (bytes of tensor data read so far, bytes to read) as the data pass goes.
pub type Progress<'p> = &'p (dyn Fn(u64, u64) + Sync);

/// Verifies the model at `path` (a file, or the first shard of a split model).
pub fn verify(path: &Path, opts: &Options) -> Result<Report, VerifyError> {
    verify_with_progress(path, opts, &|_, _| {})
}

/// [`verify`], reporting the data pass's progress.
pub fn verify_with_progress(
    path: &Path,
    opts: &Options,
    progress: Progress<'_>,
) -> Result<Report, VerifyError> {
    let first = Shard::open(path).map_err(|e| VerifyError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    verify_shards(first, &|p: &str| Shard::open(Path::new(p)), opts, progress)
}

/// Opens another shard of a split model by its name (a path, or a URL for a remote model).
pub type OpenShard<'o> = &'o dyn Fn(&str) -> std::io::Result<Shard>;

/// [`verify_with_progress`] on a shard already opened (a local file or a remote one), opening the
/// other shards of a split model with `open`. Tensor data is checked where the shards hold it
/// ([`read::Source::holds`]): all of a local file, the fetched ranges of a remote one.
pub fn verify_shards(
    first: Shard,
    open: OpenShard<'_>,
    opts: &Options,
    progress: Progress<'_>,
) -> Result<Report, VerifyError> {
    let mut out = Out { checks: Vec::new() };
    let shards = discover(first, opts, &mut out, open);
    let labels: Vec<String> = shards.iter().map(|s| file_name(&s.path)).collect();
    let gs: Vec<Option<(Gguf<'_>, bool)>> = shards
        .iter()
        .zip(&labels)
        .map(|(s, l)| structure(s, opts, l, &mut out))
        .collect();
    split_checks(&shards, &gs, &mut out);

    let mut report = Report {
        files: shards.iter().map(|s| s.path.clone()).collect(),
        checks: Vec::new(),
        architecture: None,
        n_tensors: 0,
        n_params: 0,
        tensor_bytes: 0,
        types: Vec::new(),
        device: None,
        manifest: Vec::new(),
    };

    // Header-level checks on the whole model (all shards' tensors).
    let mut all: HashMap<&str, &TensorInfo<'_>> = HashMap::new();
    for (g, _) in gs.iter().flatten() {
        for t in &g.tensors {
            all.insert(t.name, t);
        }
    }
    if let Some(Some((g0, _))) = gs.first() {
        report.architecture = g0.architecture().map(str::to_string);
        report.n_tensors = all.len() as u64;
        report.n_params = all.values().map(|t| t.n_elements).sum();
        report.tensor_bytes = all.values().map(|t| t.n_bytes).sum();

        // Types and backends.
        let mut types: HashMap<&str, u64> = HashMap::new();
        let mut all_types: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        for t in all.values() {
            all_types.insert(t.ty.name);
            if t.dims.len() >= 2 && t.dims[1] > 1 && !t.ty.name.starts_with('i') {
                *types.entry(t.ty.name).or_default() += 1;
            }
        }
        out.pass(
            "types",
            if all_types.is_empty() {
                "no tensors, so no tensor types to check".into()
            } else {
                format!(
                    "every tensor type is known to llama.cpp: {}",
                    all_types.iter().copied().collect::<Vec<_>>().join(", ")
                )
            },
        );
        let mut tv: Vec<(String, u64, [bool; 6])> = types
            .iter()
            .map(|(n, c)| (n.to_string(), *c, backends::support(n)))
            .collect();
        tv.sort();
        let mut lacking = Vec::new();
        for (n, _, s) in &tv {
            for (b, ok) in backends::BACKENDS.iter().zip(s) {
                if !ok {
                    lacking.push(format!("{b} has no {n} kernel"));
                }
            }
        }
        if lacking.is_empty() {
            out.pass("backends", "every backend (CPU x86/ARM, Metal, Vulkan, OpenCL/Adreno, CUDA) has matrix kernels for every weight type used".into());
        } else {
            out.warn(
                "backends",
                format!(
                    "{} (those products fall back to the CPU)",
                    lacking.join("; ")
                ),
                None,
            );
        }
        report.types = tv;

        let embd = all.get("token_embd.weight").copied();
        let n_vocab = tokenizer_checks(g0, embd.and_then(|t| t.dims.get(1).copied()), &mut out);
        completeness_checks(
            g0,
            &all,
            n_vocab.or(embd.and_then(|t| t.dims.get(1).copied())),
            &mut out,
        );

        if let Some(d) = &opts.device {
            let tied = !all.contains_key("output.weight");
            let est = device::estimate(
                g0,
                report.tensor_bytes,
                embd.map(|t| (t.dims.get(1).copied().unwrap_or(1), t.n_bytes)),
                tied,
                d,
                opts.n_ctx.unwrap_or(4096),
            );
            match est {
                Ok(e) => {
                    let msg = format!(
                        "{}: needs {:.2} GiB at context {} (weights {:.2} + KV {:.2} + compute {:.2}), the app may use {:.2} GiB → {}",
                        d.name,
                        gib(e.total_bytes),
                        e.memory.n_ctx,
                        gib(e.memory.weights_bytes),
                        gib(e.memory.kv_bytes),
                        gib(e.compute_bytes),
                        gib(d.app_bytes),
                        e.verdict.name()
                    );
                    match e.verdict {
                        device::Verdict::Fits => out.pass("device", msg),
                        device::Verdict::Tight => out.warn("device", msg, None),
                        device::Verdict::DoesNotFit => out.fail("device", msg, None),
                    }
                    report.device = Some(e);
                }
                Err(e) => out.fail("device", e.to_string(), None),
            }
        }
    }

    // Data: NaN/Inf, zeros, magnitudes, hashes.
    // Tensors whose data is there: all of a complete shard; of a truncated one (or with
    // --header-only, a download checked as it arrives), those the file holds whole.
    let avail: Vec<Vec<usize>> = shards
        .iter()
        .zip(&gs)
        .map(|(s, g)| match g {
            Some((g, _)) => g
                .tensors
                .iter()
                .enumerate()
                .filter(|(_, t)| t.file_offset <= s.size && s.holds(t.file_offset, t.n_bytes))
                .map(|(j, _)| j)
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    let n_avail: usize = avail.iter().map(Vec::len).sum();
    let all_tensors: usize = gs.iter().flatten().map(|(g, _)| g.tensors.len()).sum();
    let want_data = n_avail > 0;
    if want_data {
        for ((s, g), av) in shards.iter().zip(&gs).zip(&avail) {
            if let (Some(_), false, Ok(now)) = (g, av.is_empty(), s.current_size()) {
                if now < s.size {
                    out.fail(
                        "read",
                        format!(
                            "the file shrank from {} to {now} bytes while being checked",
                            s.size
                        ),
                        Some(s.path.display().to_string()),
                    );
                }
            }
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.threads)
            .build()
            .map_err(|e| VerifyError::Threads {
                threads: opts.threads,
                message: e.to_string(),
            })?;
        let (scans, whole) =
            pool.install(|| data_pass(&shards, &gs, &avail, opts.hash, opts.whole_hash, progress));
        let (mut n_bad, mut zero, mut huge, mut read_errs) = (0u64, Vec::new(), Vec::new(), 0u64);
        let mut scanned = 0u64;
        let mut scanned_names: Vec<&str> = Vec::new();
        for (i, (g, rs)) in gs.iter().zip(&scans).enumerate() {
            let Some((g, _)) = g else { continue };
            for (j, r) in rs {
                let t = &g.tensors[*j];
                match r {
                    Err(e) => {
                        read_errs += 1;
                        out.fail(
                            "read",
                            format!("tensor '{}': {e}", t.name),
                            Some(labels[i].clone()),
                        );
                    }
                    Ok(sc) => {
                        scanned += 1;
                        scanned_names.push(t.name);
                        if sc.nan + sc.inf > 0 {
                            n_bad += 1;
                            let b = sc.first_bad.as_ref();
                            out.fail(
                                "numbers",
                                format!(
                                    "tensor '{}' ({}): {} NaN and {} Inf; the first ({}) is in field '{}' of block {}",
                                    t.name,
                                    t.ty.name,
                                    sc.nan,
                                    sc.inf,
                                    b.map_or("?", |b| b.what),
                                    b.map_or("?", |b| b.field),
                                    b.map_or(0, |b| b.block)
                                ),
                                Some(format!(
                                    "{} byte {}",
                                    labels[i],
                                    b.map_or(t.file_offset, |b| b.file_offset)
                                )),
                            );
                        }
                        if sc.all_zero {
                            zero.push(t.name);
                        }
                        if sc.max_abs > 65504.0 {
                            huge.push(format!("'{}' ({:.3e})", t.name, sc.max_abs));
                        }
                        if let Some(h) = sc.sha256 {
                            report.manifest.push(Entry::new(
                                "sha256",
                                hex(&h),
                                format!("{}:{}", labels[i], t.name),
                            ));
                        }
                    }
                }
            }
        }
        if n_bad == 0 && read_errs == 0 {
            out.pass(
                "numbers",
                if (scanned as usize) < all_tensors {
                    let note = shards.first().map_or("", |s| s.src.partial_note());
                    format!(
                        "no NaN or Inf in the values and block scales of the {scanned} of {all_tensors} tensors {note}: {}{}",
                        scanned_names.iter().take(8).copied().collect::<Vec<_>>().join(", "),
                        if scanned_names.len() > 8 { ", …" } else { "" }
                    )
                } else {
                    format!("no NaN or Inf in the values and block scales of {scanned} tensors")
                },
            );
        }
        if !zero.is_empty() {
            out.warn(
                "all-zero",
                format!(
                    "{} tensors are all zeros: {}{}",
                    zero.len(),
                    zero.iter().take(5).copied().collect::<Vec<_>>().join(", "),
                    if zero.len() > 5 { ", …" } else { "" }
                ),
                Some(zero[0].to_string()),
            );
        }
        if !huge.is_empty() {
            out.warn(
                "magnitude",
                format!(
                    "values beyond the f16 range (65504), which overflow on backends that compute in f16: {}",
                    huge.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
                ),
                None,
            );
        }
        for (i, w) in whole.into_iter().enumerate() {
            match w {
                Some(Ok(h)) => {
                    report
                        .manifest
                        .push(Entry::new("sha256", hex(&h), labels[i].clone()))
                }
                Some(Err(e)) => out.fail("read", e.to_string(), Some(labels[i].clone())),
                None => {}
            }
        }
    }
    if opts.hash || opts.manifest.is_some() {
        for (i, (s, g)) in shards.iter().zip(&gs).enumerate() {
            if let Some((g, _)) = g {
                report.manifest.extend(header_entries(&labels[i], s, g));
            }
            if !opts.header_only {
                report
                    .manifest
                    .push(Entry::new("size", s.size.to_string(), labels[i].clone()));
            }
        }
    }
    if let Some(text) = &opts.manifest {
        let theirs = manifest::parse(text);
        // Only the header entries can be compared when some tensor data is not at hand.
        let partial = shards.iter().any(|s| !s.holds(0, s.size));
        let header_only = opts.header_only || partial;
        let whole = opts.whole_hash;
        let include = |e: &Entry| {
            let file_line = e.kind == "sha256" && !e.name.contains(':');
            (!header_only || e.name.contains(":@")) && (whole || !file_line)
        };
        let c = manifest::compare(&report.manifest, &theirs, &labels, &include);
        if c.matched == 0 && c.mismatched.is_empty() && c.missing.is_empty() {
            out.fail(
                "manifest",
                format!("the manifest has no entries for {}", labels.join(", ")),
                None,
            );
        } else if c.ok() {
            out.pass(
                "manifest",
                format!("all {} manifest entries match", c.matched),
            );
        } else {
            for m in c.mismatched.iter().take(10) {
                out.fail("manifest", format!("mismatch: {m}"), None);
            }
            for m in c.missing.iter().take(10) {
                out.fail(
                    "manifest",
                    format!("in the manifest but not in the file: {m}"),
                    None,
                );
            }
            for m in c.unlisted.iter().take(10) {
                out.fail(
                    "manifest",
                    format!("in the file but not in the manifest: {m}"),
                    None,
                );
            }
        }
    }
    report.checks = out.checks;
    Ok(report)
}

fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
}

/// Per-tensor SHA-256 of one file's tensor data in file order, and of all of it (what
/// `llama-gguf-hash --sha256` prints). The file must be structurally sound.
#[allow(clippy::type_complexity)]
pub fn hash_file(
    path: &Path,
    threads: usize,
    progress: Progress<'_>,
) -> Result<(Vec<(String, [u8; 32])>, [u8; 32]), HashError> {
    use rayon::prelude::*;
    let s = Shard::open(path).map_err(|e| HashError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let g = s.gguf_as(s.size).map_err(|e| HashError::Gguf {
        path: path.display().to_string(),
        error: e,
    })?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| HashError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    let io = |e: std::io::Error| HashError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let total = g.tensor_bytes();
    let done = std::sync::atomic::AtomicU64::new(0);
    let (per, whole) = pool.install(|| {
        rayon::join(
            || {
                g.tensors
                    .par_iter()
                    .map(|t| {
                        let r = numbers::scan_tensor(&*s.src, t, g.endian, false, true);
                        let d = done.fetch_add(t.n_bytes, std::sync::atomic::Ordering::Relaxed);
                        progress(d + t.n_bytes, total);
                        r
                    })
                    .collect::<Vec<_>>()
            },
            || whole_data_hash(&s, &g),
        )
    });
    let mut v = Vec::with_capacity(per.len());
    for (t, r) in g.tensors.iter().zip(per) {
        let sc = r.map_err(io)?;
        v.push((t.name.to_string(), sc.sha256.unwrap_or_default()));
    }
    Ok((v, whole.map_err(io)?))
}

/// Why a file could not be hashed.
#[derive(Debug, Error)]
pub enum HashError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: {error}")]
    Gguf { path: String, error: GgufError },
}
