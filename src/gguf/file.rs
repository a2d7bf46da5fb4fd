//! GGUF files on disk: memory-mapped read-only, so tensor data is read straight from the page cache
//! and never copied, plus split models (`name-00001-of-00003.gguf`), found from their first shard the
//! way llama.cpp names them (`llama_split_path`).

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::error::{GgufError, Result};
use super::spec::{KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT};
use super::validate::Gguf;

/// A mapped GGUF file. Parse it with [`GgufFile::gguf`].
pub struct GgufFile {
    path: PathBuf,
    map: Option<Mmap>,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> GgufError {
    GgufError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl GgufFile {
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        let meta = file.metadata().map_err(|e| io_err(path, e))?;
        if !meta.is_file() {
            return Err(io_err(path, "not a regular file"));
        }
        // An empty file cannot be mapped on every platform; it has no header either.
        let map = if meta.len() == 0 {
            None
        } else {
            // SAFETY: the map is read-only and private to this process. If another process truncates
            // the file while it is mapped, reads past the new end raise SIGBUS; commands that read
            // untrusted files while others may write them must check the size first (see verify).
            Some(unsafe { Mmap::map(&file) }.map_err(|e| io_err(path, e))?)
        };
        Ok(GgufFile {
            path: path.to_path_buf(),
            map,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    pub fn len(&self) -> u64 {
        self.bytes().len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the mapped pages of `offset..offset + len` from this process's resident memory; they are
    /// faulted back in from the page cache if read again. Lets a command stream through a file larger
    /// than the memory it may use (requantize releases each tensor once converted).
    pub fn release(&self, offset: u64, len: u64) {
        #[cfg(unix)]
        if let Some(m) = &self.map {
            let start = (offset as usize) & !4095;
            let end = ((offset + len) as usize).min(m.len());
            if end > start {
                // SAFETY: the map is private and read-only and never written through, so
                // MADV_DONTNEED only drops clean pages: any later read faults the file's unchanged
                // bytes back in, and slices borrowed from the map keep seeing the same data.
                let _ = unsafe {
                    m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
                };
            }
        }
        #[cfg(not(unix))]
        let _ = (offset, len);
    }

    /// Parses and validates the file.
    pub fn gguf(&self) -> Result<Gguf<'_>> {
        Gguf::parse(self.bytes())
    }
}

/// Turns SIGBUS — what touching a mapped page past the end of a file that another process truncated
/// raises — into a clear message and exit code 2 instead of a bare "Bus error". The mapping is how
/// pocket reads without copying; checking the size before every access cannot close the race (the file
/// can shrink between the check and the read), so the signal is the place to catch it. Commands call
/// this once at start-up. Temporary outputs are not removed from the handler (that would not be
/// async-signal-safe); they carry a `.pocket-tmp-` name and never replace a target.
#[cfg(unix)]
pub fn install_sigbus_handler() {
    extern "C" fn on_sigbus(_: libc::c_int) {
        const MSG: &[u8] =
            b"pocket: a file changed while it was being read (truncated by another process?): stopping\n";
        // SAFETY: write(2) and _exit(2) are async-signal-safe; MSG is a static buffer.
        unsafe {
            libc::write(2, MSG.as_ptr().cast(), MSG.len());
            libc::_exit(2);
        }
    }
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler only calls
    // async-signal-safe functions. This unsafe belongs with the mmap it protects.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
    }
}

#[cfg(not(unix))]
pub fn install_sigbus_handler() {}

/// `llama_split_path`: `PREFIX-%05d-of-%05d.gguf`, with `no` counted from 1.
pub fn split_path(prefix: &str, no: u32, count: u32) -> String {
    format!("{prefix}-{no:05}-of-{count:05}.gguf")
}

/// `llama_split_prefix`: the prefix of a shard's path, if it follows the naming scheme for `no`/`count`.
pub fn split_prefix(path: &str, no: u32, count: u32) -> Option<&str> {
    path.strip_suffix(&format!("-{no:05}-of-{count:05}.gguf"))
}

/// A model: one file, or every shard of a split model in order.
pub struct Model {
    pub files: Vec<GgufFile>,
}

impl Model {
    /// Opens a model file; if it is the first shard of a split model, opens the other shards too.
    pub fn open(path: impl AsRef<Path>) -> Result<Model> {
        let first = GgufFile::open(path.as_ref())?;
        // Only the split keys are needed here: read the records without the validation pass, which
        // `ggufs` runs once over every shard.
        let (no, count) = {
            let raw = super::parse::parse_header(first.bytes())?;
            let get = |k: &str| {
                raw.kvs
                    .iter()
                    .find(|kv| kv.key == k)
                    .and_then(|kv| kv.value.as_u64())
            };
            (get(KEY_SPLIT_NO), get(KEY_SPLIT_COUNT))
        };
        let count = match count {
            None | Some(0) | Some(1) => return Ok(Model { files: vec![first] }),
            Some(c) => u32::try_from(c).map_err(|_| GgufError::Split {
                message: format!("split.count {c} is absurd"),
            })?,
        };
        if no != Some(0) {
            return Err(GgufError::Split {
                message: format!(
                    "{} is shard {} of {count}; give the first shard",
                    first.path.display(),
                    no.map_or(-1, |n| n as i64)
                ),
            });
        }
        let p = first.path.to_string_lossy().to_string();
        let prefix = split_prefix(&p, 1, count).ok_or_else(|| GgufError::Split {
            message: format!(
                "{p} does not follow llama.cpp's shard naming PREFIX-00001-of-{count:05}.gguf"
            ),
        })?;
        let mut files = vec![first];
        for i in 2..=count {
            let sp = split_path(prefix, i, count);
            let f = GgufFile::open(&sp).map_err(|e| GgufError::Split {
                message: format!("shard {i} of {count} missing: {e}"),
            })?;
            files.push(f);
        }
        Ok(Model { files })
    }

    /// Opens just this file, as a model of one file, even if it is one shard of a split model.
    pub fn open_single(path: impl AsRef<Path>) -> Result<Model> {
        Ok(Model {
            files: vec![GgufFile::open(path.as_ref())?],
        })
    }

    /// Parses every shard and checks that they form one set (same count, numbered in order, and the
    /// tensor total matches `split.tensors.count`).
    pub fn ggufs(&self) -> Result<Vec<Gguf<'_>>> {
        let many = self.files.len() > 1;
        let gs = self
            .files
            .iter()
            .map(|f| {
                f.gguf()
                    .map_err(|e| if many { with_path(f.path(), e) } else { e })
            })
            .collect::<Result<Vec<_>>>()?;
        let paths: Vec<&Path> = self.files.iter().map(|f| f.path()).collect();
        check_split_set(&gs, &paths)?;
        Ok(gs)
    }
}

/// Checks that parsed shards form one split set: the same count, numbered in order, no tensor twice,
/// and the tensor total `split.tensors.count` says. `paths` names the shards in errors.
pub fn check_split_set(gs: &[Gguf<'_>], paths: &[&Path]) -> Result<()> {
    if gs.len() <= 1 {
        return Ok(());
    }
    let count = gs.len() as u64;
    for (i, g) in gs.iter().enumerate() {
        let (no, c) = (g.get_u64(KEY_SPLIT_NO), g.get_u64(KEY_SPLIT_COUNT));
        if no != Some(i as u64) || c != Some(count) {
            return Err(GgufError::Split {
                message: format!(
                    "{}: split.no {no:?} split.count {c:?}, expected {i} and {count}",
                    paths[i].display()
                ),
            });
        }
    }
    let total: u64 = gs.iter().map(|g| g.tensors.len() as u64).sum();
    if let Some(want) = gs[0].get_u64(KEY_SPLIT_TENSORS_COUNT) {
        if want != total {
            return Err(GgufError::Split {
                message: format!(
                    "split.tensors.count is {want} but the shards hold {total} tensors"
                ),
            });
        }
    }
    let mut seen = std::collections::HashMap::new();
    for (i, g) in gs.iter().enumerate() {
        for t in &g.tensors {
            if let Some(j) = seen.insert(t.name, i) {
                return Err(GgufError::Split {
                    message: format!(
                        "tensor '{}' is in shard {} and shard {}",
                        t.name,
                        j + 1,
                        i + 1
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Validation problems of a model's shards: (shard index, problem).
pub type Problems = Vec<(usize, GgufError)>;

impl Model {
    /// For a model [`Model::ggufs`] refuses: every shard parsed and validated leniently
    /// ([`Gguf::parse_lenient`]), with the problems found (shard index, error). `None` when the
    /// records of some shard cannot be read at all, or when every shard is valid on its own (the
    /// shards then disagree as a set, which `ggufs` already names).
    pub fn ggufs_lenient(&self) -> Option<(Vec<Gguf<'_>>, Problems)> {
        let mut gs = Vec::with_capacity(self.files.len());
        let mut problems = Vec::new();
        for (i, f) in self.files.iter().enumerate() {
            let (g, p) = Gguf::parse_lenient(f.bytes()).ok()?;
            problems.extend(p.into_iter().map(|e| (i, e)));
            gs.push(g);
        }
        (!problems.is_empty()).then_some((gs, problems))
    }
}

/// Prefixes a shard's path to errors that don't carry one, so the user knows which file is bad.
pub(crate) fn with_path(path: &Path, e: GgufError) -> GgufError {
    match e {
        GgufError::Io { .. } | GgufError::Split { .. } => e,
        other => GgufError::Io {
            path: path.display().to_string(),
            message: other.to_string(),
        },
    }
}
