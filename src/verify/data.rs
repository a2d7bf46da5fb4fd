//! `verify`'s data pass: every tensor the shards hold is read once (the `numbers`, `all-zero`,
//! `magnitude` and `read` checks, and per-tensor hashes), then the `manifest` check; and
//! [`hash_file`], what `pocket hash` prints.

use std::path::Path;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::gguf::{Gguf, GgufError};

use super::manifest::{self, hex, Entry};
use super::numbers::{self, TensorScan};
use super::read::{self, Shard};
use super::{Options, Out, Progress, VerifyError};

/// The data checks over the tensors whose data the shards hold, adding their hashes to `manifest`.
pub(super) fn data_checks(
    shards: &[Shard],
    gs: &[Option<(Gguf<'_>, bool)>],
    labels: &[String],
    opts: &Options,
    progress: Progress<'_>,
    out: &mut Out,
    manifest: &mut Vec<Entry>,
) -> Result<(), VerifyError> {
    // Data: NaN/Inf, zeros, magnitudes, hashes.
    // Tensors whose data is there: all of a complete shard; of a truncated one (or with
    // --header-only, a download checked as it arrives), those the file holds whole.
    let avail: Vec<Vec<usize>> = shards
        .iter()
        .zip(gs)
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
        for ((s, g), av) in shards.iter().zip(gs).zip(&avail) {
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
        let (mut n_bad, mut n_zero, mut zero, mut huge, mut read_errs) =
            (0u64, 0u64, Vec::new(), Vec::new(), 0u64);
        let mut scanned = 0u64;
        // Names are kept only as far as they are shown (a header may list a million tensors).
        let mut scanned_names: Vec<&str> = Vec::new();
        let mut each = |i: usize, j: usize, r: std::io::Result<TensorScan>| {
            let Some((g, _)) = &gs[i] else { return };
            let t = &g.tensors[j];
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
                    if scanned_names.len() < 9 {
                        scanned_names.push(t.name);
                    }
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
                        n_zero += 1;
                        if zero.len() < 5 {
                            zero.push(t.name);
                        }
                    }
                    if sc.max_abs > 65504.0 && huge.len() < 5 {
                        huge.push(format!("'{}' ({:.3e})", t.name, sc.max_abs));
                    }
                    if let Some(h) = sc.sha256 {
                        manifest.push(Entry::new(
                            "sha256",
                            hex(&h),
                            format!("{}:{}", labels[i], t.name),
                        ));
                    }
                }
            }
        };
        let whole = pool.install(|| {
            data_pass(
                shards,
                gs,
                &avail,
                opts.hash,
                opts.whole_hash,
                progress,
                &mut each,
            )
        });
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
                    "{n_zero} tensors are all zeros: {}{}",
                    zero.join(", "),
                    if n_zero > 5 { ", …" } else { "" }
                ),
                Some(zero[0].to_string()),
            );
        }
        if !huge.is_empty() {
            out.warn(
                "magnitude",
                format!(
                    "values beyond the f16 range (65504), which overflow on backends that compute in f16: {}",
                    huge.join(", ")
                ),
                None,
            );
        }
        for (i, w) in whole.into_iter().enumerate() {
            match w {
                Some(Ok(h)) => manifest.push(Entry::new("sha256", hex(&h), labels[i].clone())),
                Some(Err(e)) => out.fail("read", e.to_string(), Some(labels[i].clone())),
                None => {}
            }
        }
    }
    Ok(())
}

/// The header entries of the manifest, and the `manifest` check against `opts.manifest`.
pub(super) fn manifest_checks(
    shards: &[Shard],
    gs: &[Option<(Gguf<'_>, bool)>],
    labels: &[String],
    opts: &Options,
    out: &mut Out,
    manifest: &mut Vec<Entry>,
) {
    if opts.hash || opts.manifest.is_some() {
        for (i, (s, g)) in shards.iter().zip(gs).enumerate() {
            if let Some((g, _)) = g {
                manifest.extend(header_entries(&labels[i], s, g));
            }
            if !opts.header_only {
                manifest.push(Entry::new("size", s.size.to_string(), labels[i].clone()));
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
        let c = manifest::compare(manifest, &theirs, labels, &include);
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
}

/// Tensors scanned at once by the data pass: their results are held until they are handed on in
/// order, so that a million-tensor header costs one chunk of results, not a million (issue #27).
const SCAN_CHUNK: usize = 4096;

/// Data pass over every tensor of the shards whose data is complete: scans and hashes, each result
/// given to `each(shard, tensor, result)` in shard and tensor order; returns the whole-data hash per
/// shard (llama-gguf-hash's file line) when hashing.
fn data_pass(
    shards: &[Shard],
    gs: &[Option<(Gguf<'_>, bool)>],
    avail: &[Vec<usize>],
    hash: bool,
    whole_hash: bool,
    progress: Progress<'_>,
    each: &mut (dyn FnMut(usize, usize, std::io::Result<TensorScan>) + Send),
) -> Vec<Option<std::io::Result<[u8; 32]>>> {
    use rayon::prelude::*;
    let total: u64 = avail
        .iter()
        .enumerate()
        .flat_map(|(i, js)| js.iter().map(move |&j| (i, j)))
        .map(|(i, j)| gs[i].as_ref().map_or(0, |(g, _)| g.tensors[j].n_bytes))
        .sum();
    let done = std::sync::atomic::AtomicU64::new(0);
    let (_, whole) = rayon::join(
        || {
            for (i, js) in avail.iter().enumerate() {
                for chunk in js.chunks(SCAN_CHUNK) {
                    let results: Vec<_> = chunk
                        .par_iter()
                        .map(|&j| {
                            let (g, _) = gs[i].as_ref().expect("shard with data");
                            let t = &g.tensors[j];
                            let r = numbers::scan_tensor(&*shards[i].src, t, g.endian, true, hash);
                            let d = done.fetch_add(t.n_bytes, std::sync::atomic::Ordering::Relaxed);
                            progress(d + t.n_bytes, total);
                            r
                        })
                        .collect();
                    for (&j, r) in chunk.iter().zip(results) {
                        each(i, j, r);
                    }
                }
            }
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
    whole
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

/// The SHA-256 of each tensor's data (name, hash) in file order and of all tensor data (what
/// `llama-gguf-hash --sha256` prints). The file must be structurally sound.
#[allow(clippy::type_complexity)]
pub fn hash_file(
    path: &Path,
    threads: usize,
    progress: Progress<'_>,
) -> Result<(Vec<(String, [u8; 32])>, [u8; 32]), HashError> {
    let mut v = Vec::new();
    let whole = hash_file_each(path, threads, progress, &mut |name, h| {
        v.push((name.to_string(), h));
        Ok(())
    })?;
    Ok((v, whole))
}

/// [`hash_file`], giving each tensor's (name, hash) to `each` in file order as the hashes are made
/// instead of collecting them (a header of a million tensors: issue #27); returns the hash of all
/// tensor data. An error from `each` stops the pass.
pub fn hash_file_each(
    path: &Path,
    threads: usize,
    progress: Progress<'_>,
    each: &mut dyn FnMut(&str, [u8; 32]) -> std::io::Result<()>,
) -> Result<[u8; 32], HashError> {
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
    // The whole-data hash reads everything a second time, beside the per-tensor pass; the
    // per-tensor hashes are made a chunk at a time and handed to `each` on this thread.
    let (g, s) = (&g, &s);
    std::thread::scope(|scope| {
        let whole = scope.spawn(|| whole_data_hash(s, g));
        let mut per = || -> Result<(), HashError> {
            for chunk in g.tensors.chunks(SCAN_CHUNK) {
                let hashes: Vec<std::io::Result<[u8; 32]>> = pool.install(|| {
                    chunk
                        .par_iter()
                        .map(|t| {
                            let r = numbers::scan_tensor(&*s.src, t, g.endian, false, true);
                            let d = done.fetch_add(t.n_bytes, std::sync::atomic::Ordering::Relaxed);
                            progress(d + t.n_bytes, total);
                            r.map(|sc| sc.sha256.unwrap_or_default())
                        })
                        .collect()
                });
                for (t, h) in chunk.iter().zip(hashes) {
                    each(t.name, h.map_err(io)?).map_err(io)?;
                }
            }
            Ok(())
        };
        let r = per();
        let whole = whole.join().expect("the whole-data hash does not panic");
        r?;
        whole.map_err(io)
    })
}

/// Why a file could not be hashed.
#[derive(Debug, Error)]
pub enum HashError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: {error}")]
    Gguf { path: String, error: GgufError },
}
