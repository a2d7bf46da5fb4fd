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
pub mod calibration;
mod data;
pub mod device;
pub mod manifest;
mod model;
pub mod numbers;
pub mod read;
mod split;
mod structure;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::gguf::{Gguf, TensorInfo};

pub use data::{hash_file, hash_file_each, whole_data_hash, HashError};
use device::{DeviceEstimate, DeviceProfile};
use manifest::Entry;
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
    /// Estimate the model on every built-in device profile ([`Report::devices`]).
    pub all_devices: bool,
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
    /// With [`Options::all_devices`]: the estimate on each built-in profile, in their order.
    pub devices: Vec<DeviceEstimate>,
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
    let shards = split::discover(first, opts, &mut out, open);
    let labels: Vec<String> = shards.iter().map(|s| file_name(&s.path)).collect();
    let gs: Vec<Option<(Gguf<'_>, bool)>> = shards
        .iter()
        .zip(&labels)
        .map(|(s, l)| structure::structure(s, opts, l, &mut out))
        .collect();
    split::split_checks(&shards, &gs, &mut out);

    let mut report = Report {
        files: shards.iter().map(|s| s.path.clone()).collect(),
        checks: Vec::new(),
        architecture: None,
        n_tensors: 0,
        n_params: 0,
        tensor_bytes: 0,
        types: Vec::new(),
        device: None,
        devices: Vec::new(),
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
        report.types = model::types_checks(&all, &mut out);

        let embd = all.get("token_embd.weight").copied();
        let n_vocab =
            model::tokenizer_checks(g0, embd.and_then(|t| t.dims.get(1).copied()), &mut out);
        model::completeness_checks(
            g0,
            &all,
            n_vocab.or(embd.and_then(|t| t.dims.get(1).copied())),
            &mut out,
        );

        if let Some(d) = &opts.device {
            report.device = model::device_check(g0, &all, d, opts.n_ctx.unwrap_or(4096), &mut out);
        }
        if opts.all_devices {
            let w = device::Weights::of(all.values().copied());
            for d in device::builtin() {
                match device::estimate(g0, &w, &d, opts.n_ctx.unwrap_or(4096)) {
                    Ok(e) => report.devices.push(e),
                    Err(e) => {
                        out.fail("device", e.to_string(), None);
                        break;
                    }
                }
            }
        }
    }

    data::data_checks(
        &shards,
        &gs,
        &labels,
        opts,
        progress,
        &mut out,
        &mut report.manifest,
    )?;
    data::manifest_checks(&shards, &gs, &labels, opts, &mut out, &mut report.manifest);
    report.checks = out.checks;
    Ok(report)
}
