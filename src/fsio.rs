//! Safe output files. Every command that writes goes through [`AtomicFile`]: the data goes to a
//! temporary file in the target's folder, is fsynced, then renamed over the target and the folder
//! fsynced, so the target is either the old file or the complete new one — never a partial write,
//! whatever happens (disk full, permission denied, a crash, Ctrl-C). An output that is one of the
//! inputs (the same path, a symlink to it or a hard link) is refused unless the caller asks for an
//! in-place write explicitly, and free space is checked before writing.
//!
//! Temporary files still open are listed in a process-wide registry so that a Ctrl-C handler (the
//! CLI installs one) can remove them with [`remove_pending_temps`] before exiting.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
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
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

fn io_err(path: &Path, source: io::Error) -> OutputError {
    OutputError::Io {
        path: path.display().to_string(),
        source,
    }
}

static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn register(p: &Path) {
    if let Ok(mut v) = PENDING.lock() {
        v.push(p.to_path_buf());
    }
}

fn unregister(p: &Path) {
    if let Ok(mut v) = PENDING.lock() {
        v.retain(|x| x != p);
    }
}

/// Removes every temporary output file not yet committed (for a Ctrl-C handler).
pub fn remove_pending_temps() {
    if let Ok(v) = PENDING.lock() {
        for p in v.iter() {
            let _ = fs::remove_file(p);
        }
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

/// Free bytes on the file system holding `dir`.
pub fn available_space(dir: &Path) -> io::Result<u64> {
    fs4::available_space(dir)
}

/// An output file written atomically. Dropping it without [`AtomicFile::commit`] removes the
/// temporary file and leaves the target as it was.
pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `target`, refusing it if it is one of `inputs`, and checking that `expected_len`
    /// bytes (if known) fit in the free space of its folder.
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
        let mut n = 0u32;
        loop {
            let tmp = dir.join(format!(
                ".{}.pocket-tmp-{}-{n}",
                name.to_string_lossy(),
                std::process::id()
            ));
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(f) => {
                    register(&tmp);
                    return Ok(AtomicFile {
                        target: target.to_path_buf(),
                        tmp,
                        out: Some(BufWriter::with_capacity(1 << 20, f)),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(io_err(&tmp, e)),
            }
        }
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Flushes, fsyncs, renames over the target and fsyncs the folder.
    pub fn commit(mut self) -> Result<(), OutputError> {
        let out = self.out.take().expect("not committed twice");
        let file = out
            .into_inner()
            .map_err(|e| io_err(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| io_err(&self.tmp, e))?;
        drop(file);
        fs::rename(&self.tmp, &self.target).map_err(|e| io_err(&self.target, e))?;
        unregister(&self.tmp);
        #[cfg(unix)]
        if let Some(dir) = self.target.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    fn writer(&mut self) -> io::Result<&mut BufWriter<File>> {
        self.out
            .as_mut()
            .ok_or_else(|| io::Error::other("output already committed"))
    }
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
