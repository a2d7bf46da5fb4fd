//! Range requests over HTTP(S) with ureq (rustls): redirects followed here rather than by ureq, so
//! that the hub token goes only to the hub's origin and never to the CDN it redirects to, and so that
//! each hop picks its own proxy (`HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY`, minus `NO_PROXY`);
//! timeouts on connecting and on each read; retries with exponential backoff for what may pass
//! (timeouts, resets, cut bodies, 408/429/5xx), none for what will not (401/403/404, a changed file).

use std::io::Read;
use std::time::Duration;

use ureq::http::Uri;

use super::location::{join, origin};
use super::RemoteError;

/// Redirects followed before giving up (the hub uses one or two).
const MAX_REDIRECTS: u32 = 10;

/// What a range request got back.
pub enum Reply {
    /// 206: the bytes asked for.
    Partial {
        data: Vec<u8>,
        /// The whole file's size, from `Content-Range`.
        total: u64,
        etag: Option<String>,
    },
    /// 304: the copy whose ETag was sent is current.
    NotModified,
    /// 200: the server ignored the range and is sending the whole file.
    Whole {
        body: ureq::Body,
        size: Option<u64>,
        etag: Option<String>,
    },
    /// 416 for a range starting at 0: the file is empty (or shorter than the range start).
    Unsatisfiable { total: Option<u64> },
}

pub struct Client {
    agent: ureq::Agent,
    /// Sent as `Authorization: Bearer` to URLs of `token_origin` only.
    token: Option<String>,
    token_origin: Option<String>,
    retries: u32,
    backoff: Duration,
}

/// Why one attempt failed: worth another try, or not.
enum Fail {
    Retry(RemoteError),
    Stop(RemoteError),
}

impl Client {
    pub fn new(
        timeout: Duration,
        retries: u32,
        backoff: Duration,
        token: Option<String>,
        token_origin: Option<String>,
    ) -> Client {
        let config = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            // Chosen per hop (see `proxy_for`): ureq's own choice takes ALL_PROXY, HTTPS_PROXY or
            // HTTP_PROXY whatever the scheme.
            .proxy(None)
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .user_agent(concat!("pocket/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            agent: ureq::Agent::new_with_config(config),
            token,
            token_origin,
            retries,
            backoff,
        }
    }

    /// Bytes `start..=end` of `url`, sending `If-None-Match: etag` when given. The body of a 206 must
    /// be exactly the range asked for (clamped to the file's end): a shorter one is a truncated
    /// response, retried, then reported.
    pub fn get_range(
        &self,
        url: &str,
        start: u64,
        end: u64,
        if_none_match: Option<&str>,
    ) -> Result<Reply, RemoteError> {
        let mut attempt = 0;
        loop {
            match self.once(url, start, end, if_none_match, attempt + 1) {
                Ok(r) => return Ok(r),
                Err(Fail::Stop(e)) => return Err(e),
                Err(Fail::Retry(e)) if attempt >= self.retries => return Err(e),
                Err(Fail::Retry(_)) => {
                    std::thread::sleep(self.backoff.saturating_mul(1 << attempt.min(16)));
                    attempt += 1;
                }
            }
        }
    }

    fn once(
        &self,
        url0: &str,
        start: u64,
        end: u64,
        if_none_match: Option<&str>,
        attempts: u32,
    ) -> Result<Reply, Fail> {
        let mut url = url0.to_string();
        let transport = |url: &str, m: String| {
            Fail::Retry(RemoteError::Transport {
                url: url.to_string(),
                message: m,
                attempts,
            })
        };
        for _ in 0..=MAX_REDIRECTS {
            let uri: Uri = url.parse().map_err(|e| {
                Fail::Stop(RemoteError::BadUrl {
                    url: url.clone(),
                    message: format!("not a URL: {e}"),
                })
            })?;
            let mut req = self
                .agent
                .get(&url)
                .header("Range", format!("bytes={start}-{end}"))
                .header("Accept-Encoding", "identity");
            let to_hub = self.token_origin.is_some() && origin(&url) == self.token_origin;
            if let (true, Some(t)) = (to_hub, &self.token) {
                req = req.header("Authorization", format!("Bearer {t}"));
            }
            if let Some(tag) = if_none_match {
                req = req.header("If-None-Match", tag);
            }
            let proxy = proxy_for(&uri).map_err(Fail::Stop)?;
            let resp = req
                .config()
                .proxy(proxy)
                .build()
                .call()
                .map_err(|e| transport(&url, describe(&e)))?;
            let status = resp.status().as_u16();
            let header = |k: &str| {
                resp.headers()
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let etag = header("etag");
            match status {
                301 | 302 | 303 | 307 | 308 => {
                    let loc = header("location").ok_or_else(|| {
                        Fail::Stop(RemoteError::Protocol {
                            url: url.clone(),
                            message: format!("HTTP {status} redirect without a Location"),
                        })
                    })?;
                    url = join(&url, &loc).ok_or_else(|| {
                        Fail::Stop(RemoteError::Protocol {
                            url: url.clone(),
                            message: format!("cannot follow the redirect to {loc:?}"),
                        })
                    })?;
                    continue;
                }
                206 => {
                    let cr = header("content-range").unwrap_or_default();
                    let (a, b, total) = parse_content_range(&cr).ok_or_else(|| {
                        Fail::Stop(RemoteError::Protocol {
                            url: url.clone(),
                            message: format!("206 with a Content-Range of {cr:?}"),
                        })
                    })?;
                    if a != start || b < a || b > end {
                        return Err(Fail::Stop(RemoteError::Protocol {
                            url,
                            message: format!(
                                "asked for bytes {start}-{end}, the server sent {a}-{b}"
                            ),
                        }));
                    }
                    let want = b - a + 1;
                    let mut data = Vec::with_capacity(want as usize);
                    let mut reader = resp.into_body().into_reader().take(want + 1);
                    let r = reader.read_to_end(&mut data);
                    let got = data.len() as u64;
                    if got > want {
                        return Err(Fail::Stop(RemoteError::Protocol {
                            url,
                            message: format!(
                                "sent more than the {want} bytes of its Content-Range"
                            ),
                        }));
                    }
                    if got < want {
                        return Err(Fail::Retry(RemoteError::Truncated {
                            url,
                            offset: start,
                            got,
                            want,
                            attempts,
                            message: r.err().map(|e| e.to_string()).unwrap_or_default(),
                        }));
                    }
                    return Ok(Reply::Partial { data, total, etag });
                }
                304 => return Ok(Reply::NotModified),
                200 => {
                    let size = header("content-length").and_then(|v| v.trim().parse().ok());
                    return Ok(Reply::Whole {
                        body: resp.into_body(),
                        size,
                        etag,
                    });
                }
                416 => {
                    let total = header("content-range").and_then(|v| {
                        v.strip_prefix("bytes */")
                            .and_then(|t| t.trim().parse().ok())
                    });
                    return Ok(Reply::Unsatisfiable { total });
                }
                401 | 403 | 404 => {
                    let hub_says = header("x-error-message");
                    return Err(Fail::Stop(RemoteError::Denied {
                        url: url0.to_string(),
                        status,
                        hint: self.hint(status, to_hub, hub_says),
                    }));
                }
                408 | 429 | 500..=599 => {
                    return Err(Fail::Retry(RemoteError::Status {
                        url,
                        status,
                        attempts,
                    }))
                }
                _ => {
                    return Err(Fail::Stop(RemoteError::Status {
                        url,
                        status,
                        attempts,
                    }))
                }
            }
        }
        Err(Fail::Stop(RemoteError::Redirects {
            url: url0.to_string(),
            max: MAX_REDIRECTS,
        }))
    }

    /// What to do about a 401, 403 or 404.
    fn hint(&self, status: u16, to_hub: bool, hub_says: Option<String>) -> String {
        let said = hub_says.map_or(String::new(), |m| format!("the hub says \"{m}\"; "));
        let what = match (status, to_hub, self.token.is_some()) {
            (401 | 403, true, false) => "the repository is gated or private, or does not exist: set HF_TOKEN to a read token (https://huggingface.co/settings/tokens), or log in with `hf auth login`, and accept the model's terms on its page",
            (401 | 403, true, true) => "the token (HF_TOKEN or the hub's token file) has no access: accept the model's terms on its page, or check the token and the repository's name",
            (401 | 403, false, _) => "the server refuses the request; pocket sends a token only to the Hugging Face hub ($HF_ENDPOINT, default https://huggingface.co)",
            (_, true, _) => "no such repository, revision or file on the hub: check OWNER/REPO, the file's path and @REVISION",
            _ => "no such file on the server: check the URL",
        };
        format!("{said}{what}")
    }
}

/// `bytes A-B/TOTAL` → (A, B, TOTAL).
fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let r = v.trim().strip_prefix("bytes ")?;
    let (range, total) = r.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((
        a.trim().parse().ok()?,
        b.trim().parse().ok()?,
        total.trim().parse().ok()?,
    ))
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        other => other.to_string(),
    }
}

/// The proxy for one URL: `HTTPS_PROXY` for https, `HTTP_PROXY` for http, else `ALL_PROXY` (upper or
/// lower case), unless `NO_PROXY` lists the host.
fn proxy_for(uri: &Uri) -> Result<Option<ureq::Proxy>, RemoteError> {
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    let port = uri.port_u16();
    if no_proxy(
        &env_any(&["NO_PROXY", "no_proxy"]).unwrap_or_default(),
        &host,
        port,
    ) {
        return Ok(None);
    }
    let https = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"));
    let names: &[&str] = if https {
        &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
    } else {
        &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
    };
    let Some((name, p)) = names.iter().find_map(|n| env_any(&[n]).map(|v| (*n, v))) else {
        return Ok(None);
    };
    ureq::Proxy::new(&p)
        .map(Some)
        .map_err(|e| RemoteError::BadUrl {
            url: p.clone(),
            message: format!("{name} is not a proxy URL ({e})"),
        })
}

fn env_any(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

/// Whether `NO_PROXY` (comma-separated `*`, `host`, `.domain`, `*.domain`, `host:port`) covers `host`.
fn no_proxy(list: &str, host: &str, port: Option<u16>) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|e| {
            if e == "*" {
                return true;
            }
            let e = e.to_ascii_lowercase();
            let (name, eport) = match e.rsplit_once(':') {
                Some((n, p)) if !n.contains(':') => (n.to_string(), p.parse::<u16>().ok()),
                _ => (e.clone(), None),
            };
            if eport.is_some() && eport != port {
                return false;
            }
            let name = name.trim_start_matches("*.").trim_start_matches('.');
            host == name || host.ends_with(&format!(".{name}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_is_read() {
        assert_eq!(parse_content_range("bytes 0-99/2000"), Some((0, 99, 2000)));
        assert_eq!(parse_content_range("bytes */2000"), None);
    }

    #[test]
    fn no_proxy_matches_hosts_domains_and_ports() {
        let l = "localhost, .internal.example,*.corp, 10.0.0.1:8080";
        assert!(no_proxy(l, "localhost", None));
        assert!(no_proxy(l, "a.internal.example", Some(443)));
        assert!(no_proxy(l, "x.corp", None));
        assert!(no_proxy(l, "10.0.0.1", Some(8080)));
        assert!(!no_proxy(l, "10.0.0.1", Some(80)));
        assert!(!no_proxy(l, "huggingface.co", None));
        assert!(!no_proxy(l, "notlocalhost", None));
        assert!(no_proxy("*", "huggingface.co", None));
    }
}
