//! The options and reporting shared by `inspect` and `verify` on a URL or `hf://` name: what was
//! fetched ("6.5 MB of 253 MB"), as a line for people and an object for `--json`.

use std::time::Duration;

use pocket::remote::{FileStats, ModelError, Options, RemoteError, Session};
use serde_json::{json, Value as J};

use crate::fmt::bytes;
use crate::inspect::ErrorFacts;

#[derive(clap::Args, Debug, Clone)]
pub struct RemoteArgs {
    /// For a URL whose server ignores range requests: download the whole file (by default pocket
    /// stops rather than fetch more than the header).
    #[arg(long)]
    pub download_whole: bool,
    /// For a URL: seconds to wait to connect and for each read before trying again.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
    /// For a URL: retries (with backoff 0.5 s, 1 s, 2 s, …) after timeouts, cut responses and 5xx.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,
    /// For a URL: neither use nor fill the header cache ($POCKET_CACHE/remote, default
    /// ~/.cache/pocket/remote).
    #[arg(long)]
    pub no_cache: bool,
    /// The first range read of a remote header (tests use small values to exercise its growth).
    #[arg(long, value_name = "BYTES", hide = true)]
    pub first_read: Option<u64>,
    /// The smallest growth step of a remote header read.
    #[arg(long, value_name = "BYTES", hide = true)]
    pub min_step: Option<u64>,
}

impl RemoteArgs {
    pub fn session(&self) -> Result<Session, anyhow::Error> {
        let mut o = Options::from_env();
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            anyhow::bail!(
                "--timeout {}: expected a positive number of seconds",
                self.timeout
            );
        }
        o.timeout = Duration::from_secs_f64(self.timeout);
        o.retries = self.retries;
        o.download_whole = self.download_whole;
        if self.no_cache {
            o.cache = None;
        }
        if let Some(n) = self.first_read {
            o.first_read = n.max(1);
        }
        if let Some(n) = self.min_step {
            o.min_step = n;
        }
        Ok(Session::new(o))
    }
}

/// What was fetched, for `--json`.
pub fn stats_json(stats: &[FileStats]) -> J {
    let fetched: u64 = stats.iter().map(|s| s.bytes_fetched).sum();
    let size: u64 = stats.iter().map(|s| s.size).sum();
    let files: Vec<J> = stats
        .iter()
        .map(|s| {
            json!({
                "name": s.name, "url": s.url, "size": s.size, "etag": s.etag,
                "bytes_fetched": s.bytes_fetched, "header_bytes_fetched": s.header_fetched,
                "bytes_from_cache": s.from_cache, "requests": s.requests,
                "header_size": s.header_size, "whole_file_downloaded": s.whole,
                "tensors_fetched": s.held_tensors,
            })
        })
        .collect();
    json!({"bytes_fetched": fetched, "file_size": size, "files": files})
}

/// Every request made, on stderr, for `pocket -v`: "GET URL bytes=0-4194303: 206, 4.00 MiB in 12 ms".
pub fn log_requests(stats: &[FileStats]) {
    if !crate::fmt::look().verbose {
        return;
    }
    for s in stats {
        for r in &s.log {
            eprintln!(
                "pocket: GET {} bytes={}-{}: {}, {} in {} ms",
                crate::sanitize::clean(&s.url),
                r.first,
                r.last,
                r.answer,
                bytes(r.bytes),
                r.elapsed.as_millis()
            );
        }
    }
}

/// What was fetched, for people: "fetched 9.90 MiB of 241.39 MiB in 4 requests: 9.00 MiB to read
/// the 6.22 MiB header, 0.90 MiB of sampled tensor data".
pub fn stats_line(stats: &[FileStats]) -> String {
    let sum = |f: fn(&FileStats) -> u64| stats.iter().map(f).sum::<u64>();
    let fetched = sum(|s| s.bytes_fetched);
    let for_header = sum(|s| s.header_fetched);
    let cached = sum(|s| s.from_cache);
    let header = sum(|s| s.header_size.unwrap_or(0));
    let mut line = format!(
        "fetched {} of {} in {} requests: {} to read the {} header",
        bytes(fetched),
        bytes(sum(|s| s.size)),
        sum(|s| s.requests),
        bytes(for_header),
        bytes(header)
    );
    if cached > 0 {
        line.push_str(&format!(" ({} of it from the cache)", bytes(cached)));
    }
    if fetched > for_header {
        line.push_str(&format!(
            ", {} of sampled tensor data",
            bytes(fetched - for_header)
        ));
    }
    if stats.iter().any(|s| s.whole) {
        line.push_str(" (the server ignored range requests: the whole file was downloaded)");
    }
    line
}

impl ErrorFacts for RemoteError {
    fn kind(&self) -> &'static str {
        RemoteError::kind(self)
    }
    fn offset(&self) -> Option<u64> {
        None
    }
}

impl ErrorFacts for ModelError {
    fn kind(&self) -> &'static str {
        match self {
            ModelError::Remote(e) => e.kind(),
            ModelError::Gguf(e) => e.kind(),
        }
    }
    fn offset(&self) -> Option<u64> {
        match self {
            ModelError::Remote(_) => None,
            ModelError::Gguf(e) => e.offset(),
        }
    }
}
