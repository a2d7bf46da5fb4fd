//! Metadata edits: set, add or remove keys. When the new header, padded to the alignment, ends exactly
//! where the old one did (the change fits in the zero padding before the tensor data), only header
//! bytes are written, in place: no tensor byte is read or rewritten, so a 5 GB model is edited in
//! milliseconds. Otherwise the whole file is rewritten atomically through [`AtomicFile`].

use std::path::{Path, PathBuf};

use serde_json::Value as J;

use super::value::NewValue;
use super::{io_err, EditError, Result};
use crate::fsio::AtomicFile;
use crate::gguf::json::{type_string, value_to_json};
use crate::gguf::{Gguf, GgufFile, GgufWriter, Value};

/// One edit of the metadata.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    Set { key: String, value: NewValue },
    Remove { key: String },
}

/// How the edit is (or would be) written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only header bytes written, in the file itself.
    InPlace,
    /// The whole file written to a temporary file and renamed over the target.
    Rewrite,
    /// The new header is byte-identical to the old one: nothing to write.
    Unchanged,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::InPlace => "in-place",
            Mode::Rewrite => "rewrite",
            Mode::Unchanged => "unchanged",
        }
    }
}

/// A key's change, for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub key: String,
    /// `add`, `set` or `remove`.
    pub action: &'static str,
    pub old_type: Option<String>,
    pub old: Option<J>,
    pub new_type: Option<String>,
    pub new: Option<J>,
}

/// What an edit changes and how it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaPlan {
    pub changes: Vec<Change>,
    pub mode: Mode,
    /// Why this mode.
    pub reason: String,
    pub alignment: u64,
    /// End of the old and new headers before padding.
    pub old_header_end: u64,
    pub new_header_end: u64,
    /// Start of the tensor data, before and after.
    pub old_data_offset: u64,
    pub new_data_offset: u64,
    /// Bytes written: for in place, the changed range of the header; for a rewrite, the whole file.
    pub bytes_written: u64,
    /// Where the changed range of the header starts (in place).
    pub write_offset: u64,
    pub output: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only work out what would be done.
    pub dry_run: bool,
    /// Always rewrite the whole file, even when the header would fit in place.
    pub no_in_place: bool,
    /// Write the edited file here instead of editing the input (never in place; refused if it is
    /// the input).
    pub output: Option<PathBuf>,
    /// Edit the file itself even when it is shared: through a symlink (the file it points to is
    /// edited) or under several hard links (every name sees the edit). Without it such edits are
    /// refused.
    pub follow: bool,
}

/// Applies `edits` to the file at `path` (or writes the edited file to `opts.output`).
pub fn edit(path: &Path, edits: &[Edit], opts: &Options) -> Result<MetaPlan> {
    edit_with_progress(path, edits, opts, &mut |_| {})
}

/// The file an edit of `path` itself changes — `path`, or the file a symlink points to — and, for a
/// symlink or a file with several hard links when not `follow`, why the edit is refused: it would
/// change a file other names share (a Hugging Face cache snapshot is a symlink to a shared blob).
/// The refusal is returned rather than raised so that a bad edit is reported as such first.
fn edit_target(path: &Path, follow: bool) -> Result<(PathBuf, Option<String>)> {
    let m = std::fs::symlink_metadata(path).map_err(|e| io_err(path, e))?;
    if m.file_type().is_symlink() {
        let real = std::fs::canonicalize(path).map_err(|e| io_err(path, e))?;
        let refusal = (!follow).then(|| {
            format!(
                "{} is a symlink to {}: editing it would change that file for every name that \
                 points to it; give --follow to edit {} itself, or -o NEW to write a new file",
                path.display(),
                real.display(),
                real.display()
            )
        });
        return Ok((real, refusal));
    }
    let links = nlink(path)?;
    let refusal = (links > 1 && !follow).then(|| {
        format!(
            "{} has {links} hard links: editing it would change the file under every one of its \
             names; give --follow to edit the shared file anyway, or -o NEW to write a new file",
            path.display()
        )
    });
    Ok((path.to_path_buf(), refusal))
}

#[cfg(unix)]
fn nlink(p: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(p).map_err(|e| io_err(p, e))?.nlink())
}

#[cfg(not(unix))]
fn nlink(_: &Path) -> Result<u64> {
    Ok(1)
}

/// [`edit`], calling `progress` with the bytes of each tensor copied by a rewrite.
///
/// Locking: an edit of the file itself holds an exclusive lock on it from before its header is read
/// until the edit is synced (in place) or renamed over it (rewrite), so that two edits never both start
/// from the same old header, and readers never see a header half written. The header is copied out of
/// the map under that lock and the edit planned from the copy. Writing to another file (`-o`) or a
/// dry run only reads the input, under a shared lock.
pub fn edit_with_progress(
    path: &Path,
    edits: &[Edit],
    opts: &Options,
    progress: &mut dyn FnMut(u64),
) -> Result<MetaPlan> {
    let writes_itself = opts.output.is_none();
    let (target, refusal) = if writes_itself {
        edit_target(path, opts.follow)?
    } else {
        (path.to_path_buf(), None)
    };
    let file = if writes_itself && !opts.dry_run {
        GgufFile::open_exclusive(&target)?
    } else {
        GgufFile::open(&target)?
    };
    let full = file.gguf()?;
    // The header, copied under the lock: the edit is planned from memory this process owns.
    let owned_header: Vec<u8> = full
        .bytes
        .get(..full.data_offset as usize)
        .unwrap_or(full.bytes)
        .to_vec();
    let g = Gguf::parse_header_only(&owned_header, full.file_size)?;
    let enc = encode_all(edits, &g);
    let w = edited_writer(&g, edits, &enc)?;
    // The padded header only when it could replace the old one in place (same length, inside the
    // file); otherwise its records suffice to plan a rewrite, and no padding is allocated.
    let header = if w.header_len()? == g.data_offset && g.data_offset <= full.bytes.len() as u64 {
        w.header_bytes()?
    } else {
        w.header_records()?
    };
    let mut plan = plan_edit(&g, edits, &header, rewritten_size(&w)?)?;
    plan.output = opts.output.clone().unwrap_or_else(|| path.to_path_buf());
    if (opts.output.is_some() || opts.no_in_place) && plan.mode != Mode::Rewrite {
        plan.reason = if opts.output.is_some() {
            "writing a new file".into()
        } else {
            "in-place edits turned off (--no-in-place)".into()
        };
        plan.mode = Mode::Rewrite;
    }
    if plan.mode == Mode::Rewrite {
        plan.write_offset = 0;
        plan.bytes_written = rewritten_size(&w)?;
        if writes_itself && !opts.dry_run && nlink(&target)? > 1 {
            return Err(EditError::Shared(format!(
                "{} has {} hard links and this edit needs a rewrite, which would give this name a \
                 new file and leave the other names with the old one; write a new file with -o NEW",
                target.display(),
                nlink(&target)?
            )));
        }
    }
    if opts.dry_run || plan.mode == Mode::Unchanged {
        return Ok(plan);
    }
    if let Some(why) = refusal {
        return Err(EditError::Shared(why));
    }
    match plan.mode {
        Mode::Unchanged => Ok(plan),
        Mode::InPlace => {
            write_header_in_place(&file, &owned_header, &header, full.file_size, &plan)?;
            Ok(plan)
        }
        Mode::Rewrite => {
            let mut out = match &opts.output {
                Some(o) => AtomicFile::create(o, &[path], Some(plan.bytes_written))?,
                // Editing the file itself: the input stays intact (and locked) until the rename.
                None => AtomicFile::create_in_place(&target, Some(plan.bytes_written))?,
            };
            let n = w
                .write(&mut out, |i, dst| {
                    let t = &full.tensors[i];
                    let data = full.tensor_data(t).ok_or_else(|| {
                        std::io::Error::other(format!("tensor '{}': data not in the file", t.name))
                    })?;
                    dst.write_all(data)?;
                    progress(t.n_bytes);
                    Ok(())
                })
                .map_err(|e| io_err(out.temp_path(), e))?;
            out.commit()?;
            // The lock on the old file is released only now, after the rename: a waiting writer
            // then finds the path names a new file and edits that one.
            drop(full);
            drop(file);
            plan.bytes_written = n;
            Ok(plan)
        }
    }
}

/// The size of the file the writer produces.
fn rewritten_size(w: &GgufWriter<'_>) -> Result<u64> {
    let header_len = w.header_len()?;
    let align = w.alignment()?;
    let data: u64 = w
        .tensors
        .iter()
        .map(|t| crate::gguf::validate::pad(t.n_bytes().unwrap_or(0), align).unwrap_or(u64::MAX))
        .sum();
    Ok(header_len + data)
}

/// The element bytes of every array value set, in the file's byte order.
pub fn encode_all(edits: &[Edit], g: &Gguf<'_>) -> Vec<Vec<u8>> {
    edits
        .iter()
        .map(|e| match e {
            Edit::Set { value, .. } => value.encode(g.endian),
            Edit::Remove { .. } => Vec::new(),
        })
        .collect()
}

/// The writer for the edited header; `enc` is [`encode_all`] of the same edits.
pub fn edited_writer<'a>(
    g: &Gguf<'a>,
    edits: &'a [Edit],
    enc: &'a [Vec<u8>],
) -> Result<GgufWriter<'a>> {
    let mut w = GgufWriter::from_gguf(g);
    for (e, raw) in edits.iter().zip(enc) {
        match e {
            Edit::Set { key, value } => {
                if key.is_empty() {
                    return Err(EditError::BadValue {
                        key: key.clone(),
                        message: "keys cannot be empty".into(),
                    });
                }
                w.set(key, value.as_value(raw, g.endian))
            }
            Edit::Remove { key } => {
                if !w.remove(key) {
                    return Err(EditError::NoSuchKey { key: key.clone() });
                }
            }
        }
    }
    // The new header must be one a reader accepts (alignment type, lengths...).
    w.alignment()?;
    Ok(w)
}

fn describe(v: &Value<'_>) -> (String, J) {
    (type_string(v), value_to_json(v))
}

/// Works out the changes and whether `header` (the edited header, padded) can replace the old one
/// in place: it must end, padded, exactly where the old one did, and describe exactly the same
/// tensors at the same offsets. The new header is validated as a reader would before anything else.
/// `new_size` is the size of the file a rewrite would produce (the header is validated against it).
pub fn plan_edit(g: &Gguf<'_>, edits: &[Edit], header: &[u8], new_size: u64) -> Result<MetaPlan> {
    let mut changes = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for e in edits {
        let key = match e {
            Edit::Set { key, .. } | Edit::Remove { key } => key.as_str(),
        };
        let old = g.get(key).map(describe);
        // Several edits of one key: report the last against the file's value.
        if let Some(i) = seen.insert(key.to_string(), changes.len()) {
            changes.remove(i);
            for v in seen.values_mut() {
                if *v > i {
                    *v -= 1;
                }
            }
            seen.insert(key.to_string(), changes.len());
        }
        let (old_type, old) = match old {
            Some((t, v)) => (Some(t), Some(v)),
            None => (None, None),
        };
        changes.push(match e {
            Edit::Set { value, .. } => {
                let raw = value.encode(g.endian);
                let (t, v) = describe(&value.as_value(&raw, g.endian));
                Change {
                    key: key.to_string(),
                    action: if old.is_some() { "set" } else { "add" },
                    old_type,
                    old,
                    new_type: Some(t),
                    new: Some(v),
                }
            }
            Edit::Remove { .. } => Change {
                key: key.to_string(),
                action: "remove",
                old_type,
                old,
                new_type: None,
                new: None,
            },
        });
    }
    // A header of the old length is judged against the file it would be written into; if it does
    // not fit there (another alignment lays the data out anew: `general.alignment` 8 -> 128 was
    // refused with "runs past the end of the file", found by tests/meta_plan_props.rs), against the
    // file a rewrite produces, and it is not written in place.
    let (ng, fits_in_place) = if header.len() as u64 == g.data_offset {
        match Gguf::parse_header_only(header, g.file_size) {
            Ok(ng) => (ng, true),
            Err(_) if new_size != g.file_size => {
                (Gguf::parse_header_only(header, new_size)?, false)
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        (Gguf::parse_header_only(header, new_size)?, false)
    };
    // A file without tensors may end before its data section would start (llama.cpp accepts it).
    let old_header = g.bytes.get(..g.data_offset as usize).unwrap_or(g.bytes);
    let same_tensors = ng.tensors.len() == g.tensors.len()
        && ng.tensors.iter().zip(&g.tensors).all(|(a, b)| {
            a.name == b.name && a.dims == b.dims && a.ty.id == b.ty.id && a.offset == b.offset
        });
    let (mode, reason) = if header == old_header {
        (
            Mode::Unchanged,
            "the header would be byte-identical".to_string(),
        )
    } else if ng.alignment != g.alignment {
        (
            Mode::Rewrite,
            format!(
                "general.alignment changes from {} to {}: the tensor data must be laid out again",
                g.alignment, ng.alignment
            ),
        )
    } else if header.len() as u64 != g.data_offset || ng.data_offset != g.data_offset {
        let slack = g.data_offset - g.header_end;
        (
            Mode::Rewrite,
            format!(
                "the new header ends at byte {} (data at {} after padding to {}); the old data starts at {} — \
                 in place needs the header to grow by at most {slack} bytes or shrink by less than {}",
                ng.header_end,
                ng.data_offset,
                g.alignment,
                g.data_offset,
                g.alignment - slack
            ),
        )
    } else if !same_tensors || !fits_in_place {
        (
            Mode::Rewrite,
            "the file's tensor data is not laid out as a canonical writer would (offsets differ), \
             so the header cannot describe it unchanged"
                .to_string(),
        )
    } else {
        (
            Mode::InPlace,
            format!(
                "the new header ends at byte {} and its padding still ends at {}, where the tensor data starts",
                ng.header_end, g.data_offset
            ),
        )
    };
    let (lo, hi) = changed_range(old_header, header);
    Ok(MetaPlan {
        changes,
        mode,
        reason,
        alignment: ng.alignment,
        old_header_end: g.header_end,
        new_header_end: ng.header_end,
        old_data_offset: g.data_offset,
        new_data_offset: ng.data_offset,
        bytes_written: if mode == Mode::InPlace { hi - lo } else { 0 },
        write_offset: lo,
        output: PathBuf::new(),
    })
}

/// The smallest range `lo..hi` outside which `a` and `b` (of equal length, else the whole) agree.
fn changed_range(a: &[u8], b: &[u8]) -> (u64, u64) {
    if a.len() != b.len() {
        return (0, b.len() as u64);
    }
    let lo = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len());
    let hi = a.len()
        - a.iter()
            .rev()
            .zip(b.iter().rev())
            .position(|(x, y)| x != y)
            .unwrap_or(a.len());
    (lo as u64, hi.max(lo) as u64)
}

/// Writes the changed range of the header into the file itself.
///
/// This is the one sanctioned in-place write in pocket: every other output goes through
/// [`AtomicFile`]. It exists because rewriting gigabytes of tensor data to change one string is the
/// chore this command removes. It is allowed only when the new header has already been validated
/// as a reader would (by [`plan_edit`]) and provably describes the same tensors at the same offsets,
/// so the tensor data — all of the file past `old_header.len()` — is never touched. The caller holds
/// the exclusive lock on `file` and planned from a copy of its header read under that lock; the file
/// is checked once more to hold that header (same size, same bytes), then the changed bytes go out in
/// a single `pwrite` and are fsynced before returning. A signal meanwhile waits for both.
///
/// On a crash (power loss) between the `pwrite` and the fsync, the header may be torn: part old, part
/// new, at page granularity. The tensor data is intact either way; a torn header usually fails
/// validation (lengths no longer line up) rather than loading wrongly, and the file is repaired by
/// writing back the header of any copy of the original and re-applying the edit. Users who cannot
/// accept that window use `--no-in-place`, which rewrites atomically (the old file stays whole
/// until the rename).
fn write_header_in_place(
    file: &GgufFile,
    old_header: &[u8],
    header: &[u8],
    size: u64,
    plan: &MetaPlan,
) -> Result<()> {
    let path = file.path();
    let f = file.reopen_for_write()?;
    // The header was read under the exclusive lock still held; only a process that ignores the lock
    // could have changed the file since. Check what is cheap to check all the same.
    let now = file.current_len()?;
    let mut current = vec![0u8; old_header.len()];
    read_exact_at(file.locked_file(), &mut current, 0).map_err(|e| io_err(path, e))?;
    if now != size || current != old_header {
        return Err(io_err(
            path,
            std::io::Error::other(
                "file changed while being edited (by a program that does not take locks); nothing written",
            ),
        ));
    }
    let (lo, hi) = (
        plan.write_offset as usize,
        plan.write_offset as usize + plan.bytes_written as usize,
    );
    // A signal arriving from here on waits for the write and its fsync.
    let _guard = crate::fsio::InPlaceGuard::begin().map_err(|e| io_err(path, e))?;
    write_all_at(&f, &header[lo..hi], lo as u64).map_err(|e| io_err(path, e))?;
    f.sync_all().map_err(|e| io_err(path, e))?;
    Ok(())
}

#[cfg(unix)]
fn read_exact_at(f: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, at)
}

#[cfg(unix)]
fn write_all_at(f: &std::fs::File, buf: &[u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, at)
}

#[cfg(not(unix))]
fn read_exact_at(mut f: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    f.seek(SeekFrom::Start(at))?;
    f.read_exact(buf)
}

#[cfg(not(unix))]
fn write_all_at(mut f: &std::fs::File, buf: &[u8], at: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    f.seek(SeekFrom::Start(at))?;
    f.write_all(buf)
}
