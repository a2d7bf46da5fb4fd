//! Reading files under verification without mapping them. A file being checked may be a download in
//! progress or be truncated by another process while we read it; a memory map would turn that into
//! SIGBUS. Here every read is a positioned `read` (`pread`) into a bounded buffer: a file that shrinks
//! under us gives a short read, reported as an error naming the file and offset, never a signal.
//! The header is read in growing prefixes (4 MiB, then ×4) while the record parser runs out of bytes
//! the file has, up to [`MAX_HEAD`], so a header never costs more than that or the file's size.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::gguf::parse::parse_header;
use crate::gguf::{Gguf, GgufError};

const FIRST_READ: u64 = 4 << 20;
/// The most read to find the end of a header (a 262,144-token vocabulary takes ~6 MB).
pub const MAX_HEAD: u64 = 512 << 20;

/// How many bytes from the start of the file the parser needed when it ran out, if that is why
/// it failed.
fn bytes_wanted(e: &GgufError) -> Option<u64> {
    // Offsets point at a length or count field; what it counts starts up to 8 bytes later.
    const SLACK: u64 = 16;
    let n = match *e {
        GgufError::Truncated { offset, needed, .. } => offset.checked_add(needed),
        GgufError::LengthPastEnd { offset, len, .. } => offset.checked_add(len),
        GgufError::CountTooLarge {
            offset,
            count,
            min_each,
            ..
        } => count.checked_mul(min_each)?.checked_add(offset),
        _ => None,
    };
    n?.checked_add(SLACK)
}

/// A file opened for verification: its size when opened and the bytes of its header.
pub struct Shard {
    pub path: PathBuf,
    pub file: File,
    /// Size from `fstat` when opened.
    pub size: u64,
    /// A prefix of the file holding at least the whole header (or the whole file if the header is
    /// bad or longer than the file).
    pub head: Vec<u8>,
}

impl Shard {
    pub fn open(path: &Path) -> io::Result<Shard> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        let size = meta.len();
        let mut want = size.min(FIRST_READ);
        let head = loop {
            let mut buf = vec![0u8; want as usize];
            let got = read_at(&file, &mut buf, 0)?;
            buf.truncate(got);
            // Read more only while the parser stopped for lack of bytes that the file does have,
            // and never past MAX_HEAD: a bad or hostile header costs at most that much memory.
            let need = match parse_header(&buf) {
                Ok(_) => break buf,
                Err(e) => bytes_wanted(&e),
            };
            // The parser ran out of bytes the file has: read at least 4 times more, or as much as
            // the error says the header needs (a count of elements times the least each takes).
            let more = need.is_some_and(|n| n > buf.len() as u64 && n <= size);
            if !more || want >= size || want >= MAX_HEAD || (got as u64) < want {
                break buf;
            }
            want = size
                .min(MAX_HEAD)
                .min(want.saturating_mul(4).max(need.unwrap_or(0)));
        };
        Ok(Shard {
            path: path.to_path_buf(),
            file,
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
        Ok(self.file.metadata()?.len())
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
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let n = read_at(file, buf, offset)?;
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
