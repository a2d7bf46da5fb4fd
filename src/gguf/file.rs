//! GGUF files on disk: memory-mapped read-only, so tensor data is read straight from the page cache
//! and never copied, plus split models (`name-00001-of-00003.gguf`), found from their first shard the
//! way llama.cpp names them (`llama_split_path`).
//!
//! Locking: a map is only immutable while nobody writes the file, so every [`GgufFile`] holds an
//! advisory lock (`flock`) for as long as it lives, and everything parsed from it borrows it: readers
//! a shared lock ([`GgufFile::open`]), writers that edit or replace the file an exclusive one
//! ([`GgufFile::open_exclusive`]). After locking, the path is checked to still name the file locked
//! (a rewrite renames a new file over it while a reader waits); if not, the new file is opened and
//! locked instead. The protocol is described in the README ("Concurrent readers and writers").

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memmap2::Mmap;

use super::error::{GgufError, Result};
use super::spec::{KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT};
use super::validate::Gguf;

/// A mapped GGUF file, locked for as long as it lives. Parse it with [`GgufFile::gguf`].
pub struct GgufFile {
    path: PathBuf,
    map: Option<Mmap>,
    /// Holds the lock (released when the file is closed).
    file: File,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> GgufError {
    GgufError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// What a caller is told when a lock is not free at once (the CLI prints a line to stderr).
static WAIT_NOTICE: OnceLock<fn(&Path, bool)> = OnceLock::new();

/// Sets what is called (with the path and whether an exclusive lock is wanted) before waiting for a
/// lock another process holds.
pub fn set_wait_notice(f: fn(&Path, bool)) {
    let _ = WAIT_NOTICE.set(f);
}

/// Refuses a file that is not a regular file ("is a FIFO, not a regular file"...). Checked before
/// opening: opening a FIFO blocks until a writer comes, and opening a device can have effects.
fn refuse_odd(m: &std::fs::Metadata) -> io::Result<()> {
    if m.is_file() {
        return Ok(());
    }
    let kind = crate::fsio::odd_kind(m).unwrap_or("special file");
    Err(io::Error::other(format!("is a {kind}, not a regular file")))
}

#[cfg(unix)]
fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_inode(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    true
}

/// Takes the lock on `f` (waiting for it), or gives up quietly where the file system has no locks
/// (then nothing can be promised, as before locking existed).
fn lock(path: &Path, f: &File, exclusive: bool) -> io::Result<()> {
    use std::fs::TryLockError;
    let r = if exclusive {
        f.try_lock()
    } else {
        f.try_lock_shared()
    };
    match r {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => {
            if let Some(n) = WAIT_NOTICE.get() {
                n(path, exclusive);
            }
            let r = if exclusive { f.lock() } else { f.lock_shared() };
            r.or_else(unsupported_ok)
        }
        Err(TryLockError::Error(e)) => unsupported_ok(e),
    }
}

fn unsupported_ok(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::Unsupported || e.raw_os_error() == Some(libc::ENOLCK) {
        return Ok(());
    }
    Err(io::Error::new(e.kind(), format!("locking: {e}")))
}

/// Opens `path` read-only under the locking protocol: refused unless a regular file, locked shared
/// (readers) or exclusive (writers), waiting for the lock; if a rewrite renamed a new file over the
/// path while we waited, that one is opened and locked instead. The lock lasts as long as the file.
/// Errors do not repeat the path.
pub fn open_locked(path: &Path, exclusive: bool) -> io::Result<File> {
    // A rewrite renames a new file over the path while we wait for the old one's lock; a few
    // rounds of that in a row are possible, endless ones are not.
    for _ in 0..1000 {
        refuse_odd(&std::fs::metadata(path)?)?;
        let mut oo = std::fs::OpenOptions::new();
        oo.read(true);
        // Never block in open(2) should the path have become a FIFO since the check above.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut oo, libc::O_NONBLOCK);
        let file = oo.open(path)?;
        let meta = file.metadata()?;
        refuse_odd(&meta)?;
        lock(path, &file, exclusive)?;
        match std::fs::metadata(path) {
            Ok(now) if same_inode(&now, &meta) => return Ok(file),
            // Replaced (or removed) while we waited: open what the path names now.
            _ => continue,
        }
    }
    Err(io::Error::other(
        "replaced over and over while waiting for its lock",
    ))
}

impl GgufFile {
    /// Opens and maps `path` for reading, under a shared lock.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        Self::open_locked(path.as_ref(), false)
    }

    /// Opens and maps `path` under an exclusive lock: for a writer that edits the file in place or
    /// replaces it, so that no other pocket process reads or writes it meanwhile. The file is opened
    /// read-only; an in-place writer opens it again for writing ([`GgufFile::reopen_for_write`]).
    pub fn open_exclusive(path: impl AsRef<Path>) -> Result<GgufFile> {
        Self::open_locked(path.as_ref(), true)
    }

    fn open_locked(path: &Path, exclusive: bool) -> Result<GgufFile> {
        let file = open_locked(path, exclusive).map_err(|e| io_err(path, e))?;
        // The size under the lock: a writer may have changed it while we waited.
        let len = file.metadata().map_err(|e| io_err(path, e))?.len();
        // An empty file cannot be mapped on every platform; it has no header either.
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the map is read-only and private to this process, and the file is locked
            // (shared or exclusive) for as long as the map lives, so no pocket process writes it
            // meanwhile. A process that ignores the lock could still change or truncate it: reads
            // past a new end raise SIGBUS (see `install_sigbus_handler`); commands that read
            // untrusted files check sizes first (see verify).
            Some(unsafe { Mmap::map(&file) }.map_err(|e| io_err(path, e))?)
        };
        Ok(GgufFile {
            path: path.to_path_buf(),
            map,
            file,
        })
    }

    /// The same file opened again for writing, for an in-place edit by the holder of the exclusive
    /// lock. Refused if the path no longer names the locked file.
    pub fn reopen_for_write(&self) -> Result<File> {
        let path = &self.path;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        let (a, b) = (
            f.metadata().map_err(|e| io_err(path, e))?,
            self.file.metadata().map_err(|e| io_err(path, e))?,
        );
        if !same_inode(&a, &b) {
            return Err(io_err(path, "replaced while locked"));
        }
        Ok(f)
    }

    /// The open, locked file (read-only).
    pub fn locked_file(&self) -> &File {
        &self.file
    }

    /// The size of the file now (the map's length is the size when it was opened).
    pub fn current_len(&self) -> Result<u64> {
        Ok(self
            .file
            .metadata()
            .map_err(|e| io_err(&self.path, e))?
            .len())
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

/// The most shards a split set may claim: far above any real model (llama-gguf-split writes one
/// per tensor at most), low enough that a hostile count cannot make pocket try billions of names.
pub const MAX_SPLIT_COUNT: u64 = 100_000;

/// Why a file's split keys and name do not lead to the rest of its set (see [`split_siblings`]).
#[derive(Debug)]
pub enum SplitPlace {
    /// The header's records could not be read (its own error).
    Unreadable(GgufError),
    /// `split.count` above [`MAX_SPLIT_COUNT`].
    Absurd(u64),
    /// Not the first shard (`split.no` counts from 0, `None` when absent).
    NotFirst { no: Option<u64>, count: u32 },
    /// The name does not follow llama.cpp's `PREFIX-00001-of-NNNNN.gguf`.
    BadName { count: u32 },
}

impl SplitPlace {
    /// The problem in words, naming the file as `shown`.
    pub fn message(&self, shown: &str) -> String {
        match self {
            SplitPlace::Unreadable(e) => e.to_string(),
            SplitPlace::Absurd(c) => format!("split.count {c} is absurd"),
            SplitPlace::NotFirst { no, count } => format!(
                "{shown} is shard {} of {count}; give the first shard",
                // split.no counts from 0; people count shards from 1, as the file names do.
                no.map_or("?".to_string(), |n| (n + 1).to_string())
            ),
            SplitPlace::BadName { count } => format!(
                "{shown} does not follow llama.cpp's shard naming PREFIX-00001-of-{count:05}.gguf"
            ),
        }
    }
}

/// The paths of the other shards of the split set whose first shard's header starts `head` and
/// whose path is `name`, as llama.cpp names them (`llama_split_path`); empty for a file that is not
/// split. Only the split keys are read (no validation pass: callers validate every shard once).
pub fn split_siblings(head: &[u8], name: &str) -> std::result::Result<Vec<String>, SplitPlace> {
    let raw = super::parse::parse_header(head).map_err(SplitPlace::Unreadable)?;
    let get = |k: &str| {
        raw.kvs
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.as_u64())
    };
    let (no, count) = (get(KEY_SPLIT_NO), get(KEY_SPLIT_COUNT));
    let count = match count {
        None | Some(0) | Some(1) => return Ok(vec![]),
        Some(c) if c > MAX_SPLIT_COUNT => return Err(SplitPlace::Absurd(c)),
        Some(c) => c as u32,
    };
    if no != Some(0) {
        return Err(SplitPlace::NotFirst { no, count });
    }
    let prefix = split_prefix(name, 1, count).ok_or(SplitPlace::BadName { count })?;
    Ok((2..=count).map(|i| split_path(prefix, i, count)).collect())
}

/// A model: one file, or every shard of a split model in order.
pub struct Model {
    pub files: Vec<GgufFile>,
}

impl Model {
    /// Opens a model file; if it is the first shard of a split model, opens the other shards too.
    pub fn open(path: impl AsRef<Path>) -> Result<Model> {
        let first = GgufFile::open(path.as_ref())?;
        let p = first.path.to_string_lossy().to_string();
        let others = match split_siblings(first.bytes(), &p) {
            Ok(others) => others,
            Err(SplitPlace::Unreadable(e)) => return Err(e),
            Err(e) => {
                return Err(GgufError::Split {
                    message: e.message(&p),
                })
            }
        };
        let count = others.len() + 1;
        let mut files = vec![first];
        for (i, sp) in others.iter().enumerate() {
            let f = GgufFile::open(sp).map_err(|e| GgufError::Split {
                message: format!("shard {} of {count} missing: {e}", i + 2),
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
        if g.endian != gs[0].endian {
            return Err(GgufError::Split {
                message: format!(
                    "{} is {}-endian but the first shard is {}-endian: a set must be one byte order",
                    paths[i].display(),
                    g.endian.name(),
                    gs[0].endian.name()
                ),
            });
        }
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
