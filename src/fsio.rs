//! Safe output files. Every command that writes goes through [`AtomicFile`]: the data goes to a
//! temporary file in the target's folder, is fsynced, then renamed over the target and the folder
//! fsynced, so the target is either the old file or the complete new one — never a partial write,
//! whatever happens (disk full, permission denied, a crash, a signal). An output that is one of the
//! inputs (the same path, a symlink to it or a hard link) is refused unless the caller asks for an
//! in-place write explicitly, and free space is checked before writing. Only regular files are ever
//! replaced: a target that is a directory, device node, FIFO or socket is refused before anything is
//! written (and again just before the rename). A replaced file keeps its permission bits.
//!
//! Signals: the CLI's SIGINT/SIGTERM/SIGHUP handler calls [`on_signal`], which exits at once when no
//! write is under way and otherwise only asks the writer to stop: the next write to an [`AtomicFile`]
//! (or its commit) fails with [`interrupted`], the temporary file is removed on the way out and the
//! target is left as it was; an in-place header write ([`InPlaceGuard`]) finishes its `pwrite` and
//! fsync first. Temporary files still open are listed in a process-wide registry so that a second
//! signal can remove them with [`remove_pending_temps`] before exiting.
//!
//! A writer killed outright (SIGKILL, a crash, power loss) leaves its temporary file behind. Each is
//! named `.NAME.pocket-tmp-PID-N` and locked (`flock`, exclusive) by its writer for as long as it is
//! open; the next write to the same target removes those of its name whose process is gone and
//! whose lock is free ([`remove_stale_temps`]) — never one a live writer holds.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{output}: refusing to overwrite the input {input} (same file); write the output to another path")]
    SameAsInput { output: String, input: String },
    #[error("{path}: {needed} bytes needed but only {available} free")]
    NoSpace {
        path: String,
        needed: u64,
        available: u64,
    },
    #[error("{path}: is a {kind}, not a regular file: refusing to replace it")]
    NotRegular { path: String, kind: &'static str },
    #[error("{path}: already exists{link}; give --force to replace it, or choose another name")]
    Exists { path: String, link: String },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

fn io_err(path: &Path, source: io::Error) -> OutputError {
    OutputError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The error of a write made after a signal asked the process to stop. Not `ErrorKind::Interrupted`:
/// `write_all` and friends retry those forever.
pub fn interrupted() -> io::Error {
    io::Error::other("interrupted by a signal")
}

/// The temporary files not yet committed, and the in-place writes under way. The signal handler holds
/// this lock while it decides to exit, so no write starts between its check and the exit.
struct Pending {
    temps: Vec<PathBuf>,
    in_place: usize,
}

static PENDING: Mutex<Pending> = Mutex::new(Pending {
    temps: Vec::new(),
    in_place: 0,
});
static STOP: AtomicBool = AtomicBool::new(false);

fn pending() -> std::sync::MutexGuard<'static, Pending> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// True once a signal asked the process to stop.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// For a SIGINT/SIGTERM/SIGHUP handler (run on its own thread, as `ctrlc` does). With no write under
/// way the process exits with `code` at once. Otherwise the writer is asked to stop at its next safe
/// point (it removes its temporary file and fails with [`interrupted`]); a second signal removes the
/// temporary files and exits — unless an in-place header write is between its `pwrite` and fsync,
/// which is always let finish.
pub fn on_signal(code: i32) {
    let again = STOP.swap(true, Ordering::SeqCst);
    let p = pending();
    if p.in_place > 0 {
        return;
    }
    if p.temps.is_empty() || again {
        for t in &p.temps {
            let _ = fs::remove_file(t);
        }
        // Exits with the lock held: no writer can start meanwhile.
        std::process::exit(code);
    }
}

/// Creates the temporary file `p` (`create_new`) and lists it, under the registry's lock: a signal
/// handler deciding to exit never sees a temporary file created but not yet listed.
fn create_registered(p: &Path) -> io::Result<File> {
    let mut v = pending();
    if stop_requested() {
        return Err(interrupted());
    }
    let f = OpenOptions::new().write(true).create_new(true).open(p)?;
    v.temps.push(p.to_path_buf());
    Ok(f)
}

fn unregister(p: &Path) {
    pending().temps.retain(|x| x != p);
}

/// Removes every temporary output file not yet committed.
pub fn remove_pending_temps() {
    for p in pending().temps.iter() {
        let _ = fs::remove_file(p);
    }
}

/// Held while an in-place write (`pwrite` + fsync of a header) is under way: a signal arriving then
/// does not exit the process until it is dropped. Refused once a signal asked to stop.
pub struct InPlaceGuard(());

impl InPlaceGuard {
    pub fn begin() -> io::Result<InPlaceGuard> {
        let mut p = pending();
        if stop_requested() {
            return Err(interrupted());
        }
        p.in_place += 1;
        Ok(InPlaceGuard(()))
    }
}

impl Drop for InPlaceGuard {
    fn drop(&mut self) {
        pending().in_place -= 1;
    }
}

/// True when `a` and `b` name the same file (also through symlinks or hard links). A path that does
/// not exist is the same as nothing.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(ma), Ok(mb)) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                ma.dev() == mb.dev() && ma.ino() == mb.ino()
            }
            #[cfg(not(unix))]
            {
                let _ = (ma, mb);
                matches!((fs::canonicalize(a), fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
            }
        }
        _ => false,
    }
}

/// Refuses `output` if it is any of `inputs`.
pub fn refuse_same(output: &Path, inputs: &[&Path]) -> Result<(), OutputError> {
    for i in inputs {
        if same_file(output, i) {
            return Err(OutputError::SameAsInput {
                output: output.display().to_string(),
                input: i.display().to_string(),
            });
        }
    }
    Ok(())
}

/// The kind of a file that is not a regular file or a symlink ("directory", "FIFO"...), if it is one.
pub fn odd_kind(m: &fs::Metadata) -> Option<&'static str> {
    let t = m.file_type();
    if t.is_file() || t.is_symlink() {
        return None;
    }
    if t.is_dir() {
        return Some("directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("FIFO");
        }
        if t.is_socket() {
            return Some("socket");
        }
        if t.is_block_device() {
            return Some("block device");
        }
        if t.is_char_device() {
            return Some("character device");
        }
    }
    Some("special file")
}

/// Refuses a target that exists and is not a regular file (a directory, device node, FIFO or
/// socket); returns the target's metadata (not following a symlink) when it exists.
pub fn refuse_odd_target(target: &Path) -> Result<Option<fs::Metadata>, OutputError> {
    match fs::symlink_metadata(target) {
        Ok(m) => match odd_kind(&m) {
            Some(kind) => Err(OutputError::NotRegular {
                path: target.display().to_string(),
                kind,
            }),
            None => Ok(Some(m)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(target, e)),
    }
}

/// The policy of the commands that write new files (convert, requantize, merge, split, `meta -o`,
/// `verify --write-manifest`), as llama-gguf-split's: an output that exists is refused unless `force`;
/// one that is not a regular file (or a symlink) is refused always. With `force`, a symlink is
/// replaced itself: the file it points to is never written.
pub fn check_new_output(target: &Path, force: bool) -> Result<(), OutputError> {
    match refuse_odd_target(target)? {
        None => Ok(()),
        Some(_) if force => Ok(()),
        Some(m) => Err(OutputError::Exists {
            path: target.display().to_string(),
            link: if m.file_type().is_symlink() {
                match fs::read_link(target) {
                    Ok(t) => format!(
                        " (a symlink to {}; --force replaces the link, not that file)",
                        t.display()
                    ),
                    Err(_) => " (a symlink)".into(),
                }
            } else {
                String::new()
            },
        }),
    }
}

/// Free bytes on the file system holding `dir`.
pub fn available_space(dir: &Path) -> io::Result<u64> {
    fs4::available_space(dir)
}

/// Removes the temporary files a killed writer left for `name` in `dir` (`.NAME.pocket-tmp-PID-N`):
/// those whose process is gone and whose lock nobody holds. A live writer's file is kept (its
/// process exists, or it holds its lock: a writer in another PID namespace); so is anything that is
/// not a regular file or cannot be opened. Errors are ignored: cleaning up is a courtesy, the write
/// goes on regardless. Returns the paths removed.
#[cfg(unix)]
pub fn remove_stale_temps(dir: &Path, name: &std::ffi::OsStr) -> Vec<PathBuf> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut removed = Vec::new();
    let prefix = format!(".{}.pocket-tmp-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return removed;
    };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(rest) = file_name.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let Some(pid) = rest
            .split_once('-')
            .filter(|(_, n)| n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|(p, _)| p.parse::<i32>().ok())
            .filter(|&p| p > 0)
        else {
            continue;
        };
        if pid as u32 == std::process::id() || process_alive(pid) {
            continue;
        }
        let path = e.path();
        let Ok(before) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !before.file_type().is_file() {
            continue;
        }
        // Not following a link, not blocking on a FIFO swapped in since the check.
        let Ok(f) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        else {
            continue;
        };
        let same = f
            .metadata()
            .is_ok_and(|m| m.is_file() && m.ino() == before.ino() && m.dev() == before.dev());
        if same && f.try_lock().is_ok() && fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

#[cfg(not(unix))]
pub fn remove_stale_temps(_dir: &Path, _name: &std::ffi::OsStr) -> Vec<PathBuf> {
    Vec::new()
}

/// Whether process `pid` exists (one of another user counts: it is there, only not ours to signal).
#[cfg(unix)]
fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 checks existence and permission only; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// An output file written atomically. Dropping it without [`AtomicFile::commit`] removes the
/// temporary file and leaves the target as it was.
pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `target`, refusing it if it is one of `inputs` or not a regular file, and
    /// checking that `expected_len` bytes (if known) fit in the free space of its folder.
    pub fn create(
        target: &Path,
        inputs: &[&Path],
        expected_len: Option<u64>,
    ) -> Result<AtomicFile, OutputError> {
        refuse_same(target, inputs)?;
        Self::create_in_place(target, expected_len)
    }

    /// Like [`AtomicFile::create`] without the same-file check: for an explicit in-place rewrite, where
    /// the input stays intact until the rename.
    pub fn create_in_place(
        target: &Path,
        expected_len: Option<u64>,
    ) -> Result<AtomicFile, OutputError> {
        let old = refuse_odd_target(target)?;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .ok_or_else(|| io_err(target, io::Error::other("not a file name")))?;
        if let Some(need) = expected_len {
            let available = available_space(&dir).map_err(|e| io_err(&dir, e))?;
            // The target's old bytes are freed only after the rename, so they do not count.
            if need > available {
                return Err(OutputError::NoSpace {
                    path: dir.display().to_string(),
                    needed: need,
                    available,
                });
            }
        }
        remove_stale_temps(&dir, name);
        let mut n = 0u32;
        loop {
            let tmp = dir.join(format!(
                ".{}.pocket-tmp-{}-{n}",
                name.to_string_lossy(),
                std::process::id()
            ));
            match create_registered(&tmp) {
                Ok(f) => {
                    // The lock says "a live writer owns this" to a later run's cleanup (it goes
                    // with the process however it ends). A file system without locks leaves the
                    // process check alone to say it.
                    let _ = f.try_lock();
                    let out = AtomicFile {
                        target: target.to_path_buf(),
                        tmp,
                        out: Some(BufWriter::with_capacity(1 << 20, f)),
                    };
                    out.set_mode(old.as_ref())?;
                    return Ok(out);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(io_err(&tmp, e)),
            }
        }
    }

    /// A replaced regular file's permission bits go to its replacement (before any data is written);
    /// a new file keeps what it was created with (0666 less the umask).
    #[cfg(unix)]
    fn set_mode(&self, old: Option<&fs::Metadata>) -> Result<(), OutputError> {
        use std::os::unix::fs::PermissionsExt;
        let Some(m) = old.filter(|m| m.file_type().is_file()) else {
            return Ok(());
        };
        let f = self.out.as_ref().expect("open").get_ref();
        f.set_permissions(fs::Permissions::from_mode(m.permissions().mode() & 0o7777))
            .map_err(|e| io_err(&self.tmp, e))
    }

    #[cfg(not(unix))]
    fn set_mode(&self, _: Option<&fs::Metadata>) -> Result<(), OutputError> {
        Ok(())
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Flushes and fsyncs the temporary file (the first half of a commit). Refused once a signal
    /// asked to stop.
    fn finish(&mut self) -> Result<(), OutputError> {
        if stop_requested() {
            return Err(io_err(&self.target, interrupted()));
        }
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| io_err(&self.tmp, io::Error::other("already committed")))?;
        out.flush().map_err(|e| io_err(&self.tmp, e))?;
        out.get_ref().sync_all().map_err(|e| io_err(&self.tmp, e))?;
        // The target may have been replaced by something else since `create`.
        refuse_odd_target(&self.target)?;
        Ok(())
    }

    /// Renames the synced temporary file over the target. On failure the temporary file is removed
    /// (by drop).
    fn rename(&mut self) -> Result<(), OutputError> {
        fs::rename(&self.tmp, &self.target).map_err(|e| io_err(&self.target, e))?;
        self.out = None;
        unregister(&self.tmp);
        Ok(())
    }

    /// Flushes, fsyncs, renames over the target and fsyncs the folder. On any failure the temporary
    /// file is removed and the target left as it was.
    pub fn commit(mut self) -> Result<(), OutputError> {
        self.finish()?;
        self.rename()?;
        sync_dir(&self.target);
        Ok(())
    }

    fn writer(&mut self) -> io::Result<&mut BufWriter<File>> {
        if stop_requested() {
            return Err(interrupted());
        }
        self.out
            .as_mut()
            .ok_or_else(|| io::Error::other("output already committed"))
    }
}

fn sync_dir(target: &Path) {
    #[cfg(unix)]
    if let Some(dir) = target.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = target;
}

/// Commits several outputs that belong together (the shards of a split model) all or nothing:
/// every file is flushed and fsynced first, and a failure there removes them all with no target
/// touched; then they are renamed one after another. A rename failing half-way (it should not: the
/// temporary files are in the targets' folders) removes the outputs already renamed that did not
/// exist before, so no partial set is left where there was none.
pub fn commit_all(files: Vec<AtomicFile>) -> Result<(), OutputError> {
    let mut files = files;
    for f in files.iter_mut() {
        f.finish()?;
    }
    let existed: Vec<bool> = files
        .iter()
        .map(|f| fs::symlink_metadata(&f.target).is_ok())
        .collect();
    let mut done: Vec<PathBuf> = Vec::new();
    for (i, f) in files.iter_mut().enumerate() {
        if let Err(e) = f.rename() {
            for p in &done {
                let _ = fs::remove_file(p);
            }
            return Err(e);
        }
        if !existed[i] {
            done.push(f.target.clone());
        }
    }
    for f in &files {
        sync_dir(&f.target);
    }
    Ok(())
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer()?.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer()?.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer()?.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
            unregister(&self.tmp);
        }
    }
}

/// pocket's cache folder `sub`: `$POCKET_CACHE/SUB`, else `$XDG_CACHE_HOME/pocket/SUB`, else
/// `~/.cache/pocket/SUB` (remote headers, budget sensitivities).
pub fn cache_dir(sub: &str) -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = var("POCKET_CACHE") {
        return Some(p.join(sub));
    }
    let base = var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))?;
    Some(base.join("pocket").join(sub))
}
