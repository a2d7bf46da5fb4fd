//! Remote models read by HTTP range requests (feature `http`): `https://…`, `http://…` and Hugging Face
//! hub files (`hf://OWNER/REPO/FILE[@REVISION]`, see [`location`]). A remote file is a
//! [`Source`] for `verify`'s reader: its header is fetched in growing ranges (4 MiB, then steps of
//! half what was read, at least 2 MiB, or what the parser says it needs) until it parses whole, so the
//! header-only checks and device verdicts run on a few megabytes of a multi-gigabyte file; `verify` may
//! add one sampled range of tensor data for the numbers check. Every response is checked against the
//! first one's size and ETag, so a file that changes mid-read is an error, not a mixed view. The hub's
//! conventions are followed: `HF_TOKEN` or the hub's token file (sent to the hub's origin only),
//! `HF_ENDPOINT`, proxies, redirects to the CDN (see client.rs). Headers are cached by URL and ETag
//! ([`cache`]).

pub mod cache;
mod client;
pub mod location;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;

use crate::gguf::file::{split_siblings, SplitPlace};
use crate::gguf::parse::parse_header;
use crate::gguf::{Gguf, GgufError};
use crate::verify::read::{Growth, LocalFile, Shard, Source};

use client::{Client, Reply};
pub use location::{is_remote, Location};

/// Why a remote file could not be read. Each names the URL and, where it helps, what to do.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RemoteError {
    #[error("{url}: {message}")]
    BadUrl { url: String, message: String },
    #[error("{url}: HTTP {status} ({}): {hint}", status_text(*status))]
    Denied {
        url: String,
        status: u16,
        hint: String,
    },
    #[error("{url}: HTTP {status} ({}) after {attempts} attempts", status_text(*status))]
    Status {
        url: String,
        status: u16,
        attempts: u32,
    },
    #[error("{url}: the server does not answer range requests (it replied 200 with the whole file{}); pocket reads only the header, so it stops rather than download it all: pass --download-whole to download the whole file", size.map_or(String::new(), |s| format!(", {s} bytes")))]
    NoRanges { url: String, size: Option<u64> },
    #[error("{url}: the response was cut short: {got} of {want} bytes at byte {offset} ({attempts} attempts){}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Truncated {
        url: String,
        offset: u64,
        got: u64,
        want: u64,
        attempts: u32,
        message: String,
    },
    #[error("{url}: the file changed while it was being read ({what}); run the command again")]
    Changed { url: String, what: String },
    #[error("{url}: {message} ({attempts} attempts)")]
    Transport {
        url: String,
        message: String,
        attempts: u32,
    },
    #[error("{url}: more than {max} redirects")]
    Redirects { url: String, max: u32 },
    #[error("{url}: {message}")]
    Protocol { url: String, message: String },
    #[error("{url}: {message}")]
    Io { url: String, message: String },
}

fn status_text(s: u16) -> &'static str {
    match s {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not found",
        408 => "request timeout",
        429 => "too many requests",
        500 => "internal server error",
        502 => "bad gateway",
        503 => "service unavailable",
        504 => "gateway timeout",
        _ => "unexpected status",
    }
}

impl RemoteError {
    /// A stable name for JSON error reports.
    pub fn kind(&self) -> &'static str {
        match self {
            RemoteError::BadUrl { .. } => "bad_url",
            RemoteError::Denied { status: 404, .. } => "http_not_found",
            RemoteError::Denied { .. } => "http_denied",
            RemoteError::Status { .. } => "http_status",
            RemoteError::NoRanges { .. } => "http_no_ranges",
            RemoteError::Truncated { .. } => "http_truncated",
            RemoteError::Changed { .. } => "http_changed",
            RemoteError::Transport { .. } => "http_transport",
            RemoteError::Redirects { .. } => "http_redirects",
            RemoteError::Protocol { .. } => "http_protocol",
            RemoteError::Io { .. } => "io",
        }
    }

    /// The error inside an `io::Error` made by [`RemoteFile`]'s reads, or a plain I/O error on `url`.
    fn from_io(url: &str, e: std::io::Error) -> RemoteError {
        match e.get_ref().and_then(|x| x.downcast_ref::<RemoteError>()) {
            Some(r) => r.clone(),
            None => RemoteError::Io {
                url: url.to_string(),
                message: e.to_string(),
            },
        }
    }
}

/// How to read remote files.
#[derive(Debug, Clone)]
pub struct Options {
    /// Connect, first-byte and per-read timeout.
    pub timeout: Duration,
    /// Attempts after the first for what may pass (timeouts, resets, cut responses, 408/429/5xx).
    pub retries: u32,
    /// Wait before the first retry; doubled for each next one.
    pub backoff: Duration,
    /// Where headers are cached (`None`: no cache).
    pub cache: Option<PathBuf>,
    /// When a server ignores range requests, download the whole file instead of stopping.
    pub download_whole: bool,
    /// The header read's first range and growth.
    pub first_read: u64,
    pub min_step: u64,
    /// The hub (`HF_ENDPOINT`).
    pub endpoint: String,
    /// The hub token (`HF_TOKEN` or the hub's token file).
    pub token: Option<String>,
}

/// The first range of a header read.
pub const FIRST_READ: u64 = 4 << 20;
/// The smallest growth step after it.
pub const MIN_STEP: u64 = 2 << 20;

impl Options {
    /// Defaults and the environment: `HF_ENDPOINT`, `HF_TOKEN` (or `HUGGING_FACE_HUB_TOKEN`, or the
    /// token file at `$HF_TOKEN_PATH`, `$HF_HOME/token`, `~/.cache/huggingface/token`), and the cache
    /// folder ([`cache::default_dir`]).
    pub fn from_env() -> Options {
        let var = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let endpoint = var("HF_ENDPOINT").unwrap_or_else(|| location::DEFAULT_ENDPOINT.to_string());
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = var("HF_TOKEN_PATH").map(PathBuf::from).or_else(|| {
                    let home = var("HF_HOME").map(PathBuf::from).or_else(|| {
                        var("XDG_CACHE_HOME")
                            .map(PathBuf::from)
                            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
                            .map(|c| c.join("huggingface"))
                    })?;
                    Some(home.join("token"))
                })?;
                let t = std::fs::read_to_string(path).ok()?;
                Some(t.trim().to_string()).filter(|t| !t.is_empty())
            });
        Options {
            timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(500),
            cache: cache::default_dir(),
            download_whole: false,
            first_read: FIRST_READ,
            min_step: MIN_STEP,
            endpoint,
            token,
        }
    }
}

/// What was fetched of one remote file.
#[derive(Debug, Clone, Default)]
pub struct FileStats {
    /// The name as given (`hf://…` or the URL).
    pub name: String,
    /// The URL requested (the hub's resolve URL for `hf://` names).
    pub url: String,
    pub size: u64,
    pub etag: Option<String>,
    /// Bytes received from the server, all requests.
    pub bytes_fetched: u64,
    /// Of those, while reading the header.
    pub header_fetched: u64,
    /// Bytes of header taken from the cache instead.
    pub from_cache: u64,
    /// Range requests answered.
    pub requests: u64,
    /// The header's size (where the tensor data starts), if it parsed.
    pub header_size: Option<u64>,
    /// The tensors whose data was fetched whole (checked for NaN/Inf by `verify`).
    pub held_tensors: Vec<String>,
    /// The server ignored ranges and the whole file was downloaded (`--download-whole`).
    pub whole: bool,
    /// Every request in the order made (what `pocket -v` lists).
    pub log: Vec<Request>,
}

/// One request made for a remote file.
#[derive(Debug, Clone)]
pub struct Request {
    /// The bytes asked for, `first..=last`.
    pub first: u64,
    pub last: u64,
    /// What came back: "206", "304 (header from the cache)", "200 (whole file)", "416".
    pub answer: String,
    /// Body bytes received.
    pub bytes: u64,
    pub elapsed: std::time::Duration,
}

#[derive(Default)]
struct Held {
    /// Bytes `0..prefix.len()`.
    prefix: Vec<u8>,
    /// Other ranges fetched: (offset, bytes).
    ranges: Vec<(u64, Vec<u8>)>,
    stats: FileStats,
}

/// A remote file of known size and ETag, holding the ranges fetched so far.
pub struct RemoteFile {
    url: String,
    size: u64,
    etag: Option<String>,
    client: Arc<Client>,
    held: Mutex<Held>,
    /// The whole file, downloaded to an unlinked temporary file (`--download-whole`).
    whole: Option<LocalFile>,
}

impl RemoteFile {
    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fetches `start..end` and checks it comes from the same file as the first response.
    fn fetch(&self, start: u64, end: u64) -> Result<Vec<u8>, RemoteError> {
        let t0 = std::time::Instant::now();
        let r = self.client.get_range(&self.url, start, end - 1, None)?;
        match r {
            Reply::Partial { data, total, etag } => {
                if total != self.size {
                    return Err(RemoteError::Changed {
                        url: self.url.clone(),
                        what: format!("its size was {} bytes, now {total}", self.size),
                    });
                }
                if etag != self.etag {
                    return Err(RemoteError::Changed {
                        url: self.url.clone(),
                        what: format!(
                            "ETag {} then {}",
                            self.etag.as_deref().unwrap_or("(none)"),
                            etag.as_deref().unwrap_or("(none)")
                        ),
                    });
                }
                let mut h = self.held();
                h.stats.bytes_fetched += data.len() as u64;
                h.stats.requests += 1;
                h.stats.log.push(Request {
                    first: start,
                    last: end - 1,
                    answer: "206".into(),
                    bytes: data.len() as u64,
                    elapsed: t0.elapsed(),
                });
                Ok(data)
            }
            _ => Err(RemoteError::Protocol {
                url: self.url.clone(),
                message: format!(
                    "asked for bytes {start}-{}, the server stopped answering range requests",
                    end - 1
                ),
            }),
        }
    }

    fn copy_out(h: &Held, buf: &mut [u8], offset: u64) -> bool {
        let n = buf.len() as u64;
        if offset + n <= h.prefix.len() as u64 {
            buf.copy_from_slice(&h.prefix[offset as usize..(offset + n) as usize]);
            return true;
        }
        for (at, b) in &h.ranges {
            if offset >= *at && offset + n <= at + b.len() as u64 {
                let s = (offset - at) as usize;
                buf.copy_from_slice(&b[s..s + n as usize]);
                return true;
            }
        }
        false
    }
}

impl Source for RemoteFile {
    /// Copies from the ranges held, fetching what is missing (extending the prefix when the read
    /// starts inside or at its end, else as a range of its own).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        if let Some(w) = &self.whole {
            return w.read_at(buf, offset);
        }
        if offset >= self.size {
            return Ok(0);
        }
        let end = self.size.min(offset.saturating_add(buf.len() as u64));
        let n = (end - offset) as usize;
        let out = &mut buf[..n];
        if Self::copy_out(&self.held(), out, offset) {
            return Ok(n);
        }
        let have = self.held().prefix.len() as u64;
        if offset <= have {
            let data = self.fetch(have, end).map_err(std::io::Error::other)?;
            let mut h = self.held();
            if h.prefix.len() as u64 == have {
                h.prefix.extend_from_slice(&data);
            }
            Self::copy_out(&h, out, offset);
        } else {
            let data = self.fetch(offset, end).map_err(std::io::Error::other)?;
            out.copy_from_slice(&data);
            self.held().ranges.push((offset, data));
        }
        Ok(n)
    }

    fn current_size(&self) -> std::io::Result<u64> {
        Ok(self.size)
    }

    fn holds(&self, offset: u64, len: u64) -> bool {
        let Some(end) = offset.checked_add(len) else {
            return false;
        };
        if self.whole.is_some() {
            return end <= self.size;
        }
        let h = self.held();
        end <= h.prefix.len() as u64
            || h.ranges
                .iter()
                .any(|(at, b)| offset >= *at && end <= at + b.len() as u64)
    }

    fn partial_note(&self) -> &'static str {
        "in the ranges fetched"
    }
}

/// Remote files opened for one command, with what was fetched of each.
pub struct Session {
    opts: Options,
    client: Arc<Client>,
    files: Mutex<Vec<Arc<RemoteFile>>>,
}

impl Session {
    pub fn new(opts: Options) -> Session {
        let token_origin = location::origin(&opts.endpoint);
        let client = Client::new(
            opts.timeout,
            opts.retries,
            opts.backoff,
            opts.token.clone(),
            token_origin,
        );
        Session {
            opts,
            client: Arc::new(client),
            files: Mutex::new(Vec::new()),
        }
    }

    fn growth(&self) -> Growth {
        Growth {
            first: self.opts.first_read,
            min_step: self.opts.min_step,
            ratio_percent: 50,
        }
    }

    /// The growth step after `have` bytes (what "one growth step" means in the bound on bytes
    /// fetched: a header read fetches less than the header plus one step).
    pub fn step(&self, have: u64) -> u64 {
        self.growth().step(have)
    }

    /// Opens `name` (a URL or `hf://` name) and reads its header. With `sample` > 0, also fetches
    /// the range of at most that many bytes of tensor data holding the most whole tensors, for the
    /// numbers check.
    pub fn open(&self, name: &str, sample: u64) -> Result<Shard, RemoteError> {
        let loc = Location::parse(name)?;
        let url = loc.url(&self.opts.endpoint);
        let cached = self.opts.cache.as_ref().and_then(|d| cache::load(d, &url));
        let first = self.opts.first_read.max(1);
        let t0 = std::time::Instant::now();
        let reply =
            self.client
                .get_range(&url, 0, first - 1, cached.as_ref().map(|c| c.etag.as_str()))?;
        let mut stats = FileStats {
            name: loc.display(),
            url: url.clone(),
            requests: 1,
            ..FileStats::default()
        };
        let (size, etag, prefix, whole) = match reply {
            Reply::Partial { data, total, etag } => {
                stats.bytes_fetched = data.len() as u64;
                (total, etag, data, None)
            }
            Reply::NotModified => match cached {
                Some(c) => {
                    stats.from_cache = c.head.len() as u64;
                    (c.size, Some(c.etag), c.head, None)
                }
                None => {
                    return Err(RemoteError::Protocol {
                        url,
                        message: "304 Not Modified to a request that sent no ETag".into(),
                    })
                }
            },
            Reply::Unsatisfiable { total } => (total.unwrap_or(0), None, Vec::new(), None),
            Reply::Whole { body, size, etag } => {
                if !self.opts.download_whole {
                    return Err(RemoteError::NoRanges { url, size });
                }
                let (file, n) = self.download(&url, body)?;
                stats.bytes_fetched = n;
                stats.whole = true;
                (n, etag, Vec::new(), Some(LocalFile { file, size: n }))
            }
        };
        stats.size = size;
        stats.etag = etag.clone();
        stats.log.push(Request {
            first: 0,
            last: first - 1,
            answer: match (&whole, stats.from_cache > 0) {
                (Some(_), _) => "200 (whole file)".into(),
                (None, true) => "304 (header from the cache)".into(),
                (None, false) if size == 0 || prefix.is_empty() => "416".into(),
                _ => "206".into(),
            },
            bytes: stats.bytes_fetched,
            elapsed: t0.elapsed(),
        });
        let rf = Arc::new(RemoteFile {
            url: url.clone(),
            size,
            etag,
            client: Arc::clone(&self.client),
            held: Mutex::new(Held {
                prefix,
                ranges: Vec::new(),
                stats,
            }),
            whole,
        });
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&rf));
        let shard = Shard::with_source(
            PathBuf::from(loc.display()),
            Box::new(Arc::clone(&rf)),
            size,
            &self.growth(),
        )
        .map_err(|e| RemoteError::from_io(&url, e))?;
        {
            let mut h = rf.held();
            h.stats.header_fetched = h.stats.bytes_fetched;
        }
        if let (Some(dir), Some(tag)) = (&self.opts.cache, &rf.etag) {
            let fresh = rf.held().stats.bytes_fetched > 0;
            if fresh && rf.whole.is_none() && !shard.head.is_empty() {
                let e = cache::Entry {
                    etag: tag.clone(),
                    size,
                    head: shard.head.clone(),
                };
                // A cache that cannot be written costs a refetch next time, nothing more.
                let _ = cache::store(dir, &url, &e);
            }
        }
        if sample > 0 && rf.whole.is_none() {
            if let Ok(g) = shard.gguf_as(size) {
                if let Some((a, b)) = sample_window(&g, &*rf, sample) {
                    let mut buf = vec![0u8; (b - a) as usize];
                    crate::verify::read::read_exact_at(&*rf, &mut buf, a)
                        .map_err(|e| RemoteError::from_io(&url, e))?;
                }
            }
        }
        Ok(shard)
    }

    /// Opens `name` and, if it is the first shard of a split model, the others (named as llama.cpp
    /// names them), as `Model::open` does for local files.
    pub fn open_model(&self, name: &str, single: bool) -> Result<Vec<Shard>, ModelError> {
        let first = self.open(name, 0)?;
        if single {
            return Ok(vec![first]);
        }
        let shown = first.path.display().to_string();
        let others = match split_siblings(&first.head, &shown) {
            Ok(others) => others,
            // A header that does not parse is reported when the shard is validated.
            Err(SplitPlace::Unreadable(_)) => vec![],
            Err(e) => {
                return Err(GgufError::Split {
                    message: e.message(&shown),
                }
                .into())
            }
        };
        let mut shards = vec![];
        for name in &others {
            shards.push(self.open(name, 0)?);
        }
        shards.insert(0, first);
        Ok(shards)
    }

    /// What was fetched of each file opened, in the order opened.
    pub fn stats(&self) -> Vec<FileStats> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files
            .iter()
            .map(|f| {
                let (mut s, head) = {
                    let h = f.held();
                    (h.stats.clone(), h.prefix.clone())
                };
                let view = if f.whole.is_some() {
                    None
                } else {
                    Gguf::parse_header_only(&head, f.size).ok()
                };
                if let Some(g) = view {
                    s.header_size = Some(g.data_offset);
                    s.held_tensors = g
                        .tensors
                        .iter()
                        .filter(|t| f.holds(t.file_offset, t.n_bytes))
                        .map(|t| t.name.to_string())
                        .collect();
                }
                s
            })
            .collect()
    }

    /// Streams a 200 body to an unlinked temporary file (in the cache folder, else the system's).
    fn download(&self, url: &str, body: ureq::Body) -> Result<(std::fs::File, u64), RemoteError> {
        let io = |e: std::io::Error| RemoteError::Io {
            url: url.to_string(),
            message: format!("downloading the whole file: {e}"),
        };
        let dir = self.opts.cache.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&dir).map_err(io)?;
        let path = dir.join(format!(".download-{}-{:p}", std::process::id(), &body));
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io)?;
        // Unlinked at once: nothing is left behind however the command ends.
        let _ = std::fs::remove_file(&path);
        let n = std::io::copy(&mut body.into_reader(), &mut f).map_err(io)?;
        Ok((f, n))
    }
}

/// Why a remote model could not be opened: a transfer problem or a bad split set.
#[derive(Debug, Clone, Error)]
pub enum ModelError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Gguf(#[from] GgufError),
}

/// The window of at most `budget` bytes of tensor data holding the most whole tensors not yet held
/// (the earliest of equals): `(start, end)`.
fn sample_window(g: &Gguf<'_>, src: &dyn Source, budget: u64) -> Option<(u64, u64)> {
    let mut ts: Vec<(u64, u64)> = g
        .tensors
        .iter()
        .filter(|t| t.n_bytes > 0 && t.n_bytes <= budget && !src.holds(t.file_offset, t.n_bytes))
        .map(|t| (t.file_offset, t.file_offset + t.n_bytes))
        .collect();
    ts.sort_unstable();
    let mut best: Option<(usize, u64, u64)> = None;
    let mut j = 0;
    for i in 0..ts.len() {
        let start = ts[i].0;
        j = j.max(i);
        while j < ts.len() && ts[j].1 - start <= budget {
            j += 1;
        }
        // Tensors i..j end within the window; those starting inside it but ending past it are not
        // counted (their end is beyond, so the sweep stopped before them).
        let n = j - i;
        let end = ts[i..j].iter().map(|t| t.1).max().unwrap_or(start);
        if n > 0 && best.is_none_or(|(bn, _, _)| n > bn) {
            best = Some((n, start, end));
        }
    }
    best.map(|(_, a, b)| (a, b))
}

/// Every shard's header validated against its file's size, and the shards checked as one split set,
/// as `Model::ggufs` does for local files.
pub fn ggufs(shards: &[Shard]) -> Result<Vec<Gguf<'_>>, GgufError> {
    let many = shards.len() > 1;
    let gs = shards
        .iter()
        .map(|s| {
            s.gguf_as(s.size).map_err(|e| {
                if many {
                    crate::gguf::file::with_path(&s.path, e)
                } else {
                    e
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let paths: Vec<&std::path::Path> = shards.iter().map(|s| s.path.as_path()).collect();
    crate::gguf::file::check_split_set(&gs, &paths)?;
    Ok(gs)
}

/// For shards [`ggufs`] refuses: each header validated leniently, with the problems found (shard
/// index, error), as `Model::ggufs_lenient` does for local files. `None` when the records of some
/// shard cannot be read at all, or when every shard is valid on its own.
pub fn ggufs_lenient(shards: &[Shard]) -> Option<(Vec<Gguf<'_>>, crate::gguf::file::Problems)> {
    let mut gs = Vec::with_capacity(shards.len());
    let mut problems = Vec::new();
    for (i, s) in shards.iter().enumerate() {
        let raw = parse_header(&s.head).ok()?;
        let (g, p) = crate::gguf::validate::validate_lenient(&s.head, raw, s.size);
        problems.extend(p.into_iter().map(|e| (i, e)));
        gs.push(g);
    }
    (!problems.is_empty()).then_some((gs, problems))
}
