//! Reading files under verification without mapping them. A file being checked may be a download in
//! progress or be truncated by another process while we read it; a memory map would turn that into
//! SIGBUS. Here every read is a positioned `read` (`pread`) into a bounded buffer: a file that shrinks
//! under us gives a short read, reported as an error naming the file and offset, never a signal.
//! The header is read in growing prefixes (4 MiB, then ×4) while the record parser runs out of bytes
//! the file has, up to [`max_head`] (512 MiB unless `POCKET_MAX_HEADER_MB` says otherwise), so a
//! header never costs more than that or the file's size; a header longer than that is refused with a
//! message naming the limit and the variable.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::gguf::parse::parse_header;
use crate::gguf::{Gguf, GgufError};

const FIRST_READ: u64 = 4 << 20;
/// The most read to find the end of a header by default (a 262,144-token vocabulary with its merges
/// takes ~10 MB; 10M empty tokens 80 MB).
pub const MAX_HEAD: u64 = 512 << 20;

/// The variable that raises (or lowers) [`MAX_HEAD`], in MiB.
pub const MAX_HEAD_VAR: &str = "POCKET_MAX_HEADER_MB";

/// The most read to find the end of a header: `POCKET_MAX_HEADER_MB` MiB if set to a number, else
/// [`MAX_HEAD`].
pub fn max_head() -> u64 {
    std::env::var(MAX_HEAD_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(MAX_HEAD, |mb| mb.saturating_mul(1 << 20).max(1))
}

/// How many bytes from the start of the file the parser needed when it ran out of the `have` bytes
/// it had, if that is why it failed (at least: a count of elements times the least each takes).
fn bytes_wanted(e: &GgufError, have: u64) -> Option<u64> {
    // What is counted starts where `available` bytes were left (the error's offset names the count
    // field, which for the tensor infos is at byte 8, far before them).
    match *e {
        GgufError::Truncated {
            needed, available, ..
        } => have.checked_sub(available)?.checked_add(needed),
        GgufError::LengthPastEnd { len, available, .. } => {
            have.checked_sub(available)?.checked_add(len)
        }
        GgufError::CountTooLarge {
            count,
            min_each,
            available,
            ..
        } => count
            .checked_mul(min_each)?
            .checked_add(have.checked_sub(available)?),
        _ => None,
    }
}

/// Where a shard's bytes come from: a local file read with `pread`, or (with the `http` feature) a
/// remote file read by HTTP range requests (`crate::remote`). Reads are positioned and never mapped.
pub trait Source: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`, returning how many were read (fewer only at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// The size of the file now (it may have changed since it was opened).
    fn current_size(&self) -> io::Result<u64>;
    /// Whether `len` bytes at `offset` can be read without fetching anything: all of a local file (up to
    /// its size when opened), only the ranges already fetched of a remote one.
    fn holds(&self, offset: u64, len: u64) -> bool;
    /// How to name the tensors [`Source::holds`] covers when that is not all of them, as in "the 3 of
    /// 236 tensors {…}".
    fn partial_note(&self) -> &'static str {
        "the file holds so far"
    }
}

impl<T: Source + ?Sized> Source for std::sync::Arc<T> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }
    fn current_size(&self) -> io::Result<u64> {
        (**self).current_size()
    }
    fn holds(&self, offset: u64, len: u64) -> bool {
        (**self).holds(offset, len)
    }
    fn partial_note(&self) -> &'static str {
        (**self).partial_note()
    }
}

/// A local file and its size when opened.
pub struct LocalFile {
    pub file: File,
    pub size: u64,
}

impl Source for LocalFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        read_at(&self.file, buf, offset)
    }
    fn current_size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn holds(&self, offset: u64, len: u64) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.size)
    }
}

/// How the header read grows: the first read, then after `have` bytes proved too few, the larger of
/// what the parser says it needs and `have` plus one step (`have × ratio`, at least `min_step`).
pub struct Growth {
    pub first: u64,
    pub min_step: u64,
    /// The step as a percentage of what was read.
    pub ratio_percent: u64,
}

impl Growth {
    /// How much more to read after `have` bytes.
    pub fn step(&self, have: u64) -> u64 {
        self.min_step
            .max(have.saturating_mul(self.ratio_percent) / 100)
    }

    fn next(&self, have: u64, need: Option<u64>) -> u64 {
        have.saturating_add(self.step(have)).max(need.unwrap_or(0))
    }
}

/// A local file is cheap to read again: 4 MiB, then ×4.
pub const LOCAL_GROWTH: Growth = Growth {
    first: FIRST_READ,
    min_step: 0,
    ratio_percent: 300,
};

/// A file opened for verification: its size when opened and the bytes of its header.
pub struct Shard {
    /// The file's path, or for a remote file its URL.
    pub path: PathBuf,
    pub src: Box<dyn Source>,
    /// Size from `fstat` when opened (for a remote file, from the server's `Content-Range`).
    pub size: u64,
    /// A prefix of the file holding at least the whole header (or the whole file if the header is
    /// bad or longer than the file).
    pub head: Vec<u8>,
}

impl Shard {
    /// Opens `path` under a shared lock held as long as the shard lives (see
    /// [`crate::gguf::file::open_locked`]): no pocket writer changes it while it is checked.
    pub fn open(path: &Path) -> io::Result<Shard> {
        let file = crate::gguf::file::open_locked(path, false)?;
        let size = file.metadata()?.len();
        let mut s = Shard::with_source(
            path.to_path_buf(),
            Box::new(LocalFile { file, size }),
            size,
            &LOCAL_GROWTH,
        )?;
        trim_head(&mut s.head);
        Ok(s)
    }

    /// Reads the header of `src` (a file of `size` bytes) in growing prefixes.
    pub fn with_source(
        path: PathBuf,
        src: Box<dyn Source>,
        size: u64,
        growth: &Growth,
    ) -> io::Result<Shard> {
        let max = max_head();
        let mut want = size.min(growth.first).min(max);
        let head = loop {
            let mut buf = vec![0u8; want as usize];
            let got = src.read_at(&mut buf, 0)?;
            buf.truncate(got);
            // Read more only while the parser stopped for lack of bytes that the file does have,
            // and never past `max`: a bad or hostile header costs at most that much memory.
            let need = match parse_header(&buf) {
                Ok(_) => break buf,
                Err(e) => bytes_wanted(&e, buf.len() as u64),
            };
            // The parser ran out of bytes the file has: read one growth step more (locally 4 times
            // as much), or as much as the error says the header needs (a count of elements times the
            // least each takes; an estimate within what was read — a nested array's — still means
            // more is needed). A count the whole file cannot hold is left to the parser's error.
            let more = need.is_some_and(|n| n <= size);
            if !more || want >= size || (got as u64) < want {
                break buf;
            }
            if want >= max {
                return Err(io::Error::other(format!(
                    "the header is longer than the {} MiB pocket reads of a header (the file is {size} \
                     bytes); set {MAX_HEAD_VAR} to a larger number of MiB to read it",
                    max >> 20,
                )));
            }
            want = size.min(max).min(growth.next(want, need));
        };
        Ok(Shard {
            path,
            src,
            size,
            head,
        })
    }

    /// The header validated as if the file were `file_size` bytes long.
    pub fn gguf_as(&self, file_size: u64) -> Result<Gguf<'_>, GgufError> {
        Gguf::parse_header_only(&self.head, file_size)
    }

    /// The current size of the file (it may have changed since it was opened).
    pub fn current_size(&self) -> io::Result<u64> {
        self.src.current_size()
    }

    /// Whether `len` bytes at `offset` are at hand (see [`Source::holds`]).
    pub fn holds(&self, offset: u64, len: u64) -> bool {
        self.src.holds(offset, len)
    }
}

/// Reads up to `buf.len()` bytes at `offset`, returning how many were read (fewer only at the end of
/// the file).
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0usize;
    while done < buf.len() {
        match pread(file, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Fills `buf` from `offset`, failing with `UnexpectedEof` (and how many bytes were there) if the file
/// ends first.
pub fn read_exact_at(src: &dyn Source, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let n = src.read_at(buf, offset)?;
    if n < buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the file ends at byte {} while reading {} bytes at byte {offset} (it shrank while being read?)",
                offset + n as u64,
                buf.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(unix)]
fn pread(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn pread(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// Keeps the header and its padding of a local file's head, not the tensor data a x4 growth step
/// read with it (the bytes are there to read again). A remote head is kept whole: its cache holds it.
fn trim_head(buf: &mut Vec<u8>) {
    let Ok(raw) = parse_header(buf) else { return };
    let align = raw
        .kvs
        .iter()
        .find(|kv| kv.key == crate::gguf::spec::KEY_ALIGNMENT)
        .and_then(|kv| match kv.value {
            crate::gguf::Value::U32(a) if a.is_power_of_two() => Some(a as u64),
            _ => None,
        })
        .unwrap_or(crate::gguf::spec::DEFAULT_ALIGNMENT);
    let end = crate::gguf::validate::pad(raw.header_end, align)
        .and_then(|e| usize::try_from(e).ok())
        .unwrap_or(usize::MAX);
    drop(raw);
    if buf.len() > end.saturating_add(1 << 16) {
        buf.truncate(end);
        buf.shrink_to_fit();
    }
}
