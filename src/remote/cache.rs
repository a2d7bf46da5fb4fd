//! Headers read before, kept under `$POCKET_CACHE/remote` (default `~/.cache/pocket/remote`), one file
//! per URL holding its ETag, size and header bytes. A copy is used only when the server answers the
//! first range request, sent with `If-None-Match: ETAG`, with 304 — so the cache is keyed by URL and
//! ETag, and a file without an ETag is never cached. Files are written to a temporary name and renamed,
//! so readers see a whole entry or none; a damaged entry is ignored.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::verify::manifest::hex;
use crate::verify::read::max_head;

/// A cached header.
pub struct Entry {
    pub etag: String,
    pub size: u64,
    pub head: Vec<u8>,
}

/// The default folder: `$POCKET_CACHE/remote`, else `$XDG_CACHE_HOME/pocket/remote`, else
/// `~/.cache/pocket/remote`.
pub fn default_dir() -> Option<PathBuf> {
    crate::fsio::cache_dir("remote")
}

fn path_for(dir: &Path, url: &str) -> PathBuf {
    dir.join(format!(
        "{}.head",
        &hex(&Sha256::digest(url.as_bytes()))[..32]
    ))
}

/// The cached header of `url`, if there is a sound one.
pub fn load(dir: &Path, url: &str) -> Option<Entry> {
    let bytes = std::fs::read(path_for(dir, url)).ok()?;
    let nl = bytes.iter().position(|&b| b == b'\n')?;
    let meta: serde_json::Value = serde_json::from_slice(&bytes[..nl]).ok()?;
    let head = &bytes[nl + 1..];
    let len = meta["len"].as_u64()?;
    let size = meta["size"].as_u64()?;
    if meta["url"].as_str()? != url || head.len() as u64 != len || len > size || len > max_head() {
        return None;
    }
    Some(Entry {
        etag: meta["etag"].as_str()?.to_string(),
        size,
        head: head.to_vec(),
    })
}

/// Stores the header of `url` (best effort: a cache that cannot be written is skipped).
pub fn store(dir: &Path, url: &str, e: &Entry) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = path_for(dir, url);
    let meta = serde_json::json!({"url": url, "etag": e.etag, "size": e.size, "len": e.head.len()});
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(meta.to_string().as_bytes())?;
        f.write_all(b"\n")?;
        f.write_all(&e.head)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}
