//! Where a remote model is: an `http(s)://` URL, or a file on the Hugging Face hub named
//! `hf://OWNER/REPO/FILE[@REVISION]` (also `hf://OWNER/REPO@REVISION/FILE`, as huggingface_hub's
//! file system writes it), resolved to `$HF_ENDPOINT/OWNER/REPO/resolve/REVISION/FILE` the way
//! `hf_hub_url` does (default endpoint `https://huggingface.co`, revision `main`).

use super::RemoteError;

/// The hub used when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Whether `s` names a remote file rather than a local path.
pub fn is_remote(s: &str) -> bool {
    let l = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://") || l.starts_with("hf://")
}

/// A remote file, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Url(String),
    Hub {
        /// `OWNER/REPO`.
        repo: String,
        file: String,
        revision: String,
    },
}

impl Location {
    pub fn parse(s: &str) -> Result<Location, RemoteError> {
        let bad = |m: &str| RemoteError::BadUrl {
            url: s.to_string(),
            message: m.to_string(),
        };
        if let Some(rest) = strip_prefix_ci(s, "hf://") {
            let parts: Vec<&str> = rest.splitn(3, '/').collect();
            if parts.len() < 3 || parts.iter().any(|p| p.is_empty()) {
                return Err(bad(
                    "expected hf://OWNER/REPO/FILE[@REVISION], for example hf://ggml-org/gemma-3-270m-GGUF/gemma-3-270m-Q8_0.gguf",
                ));
            }
            let (owner, mut repo, mut file) = (parts[0], parts[1], parts[2]);
            let mut revision = None;
            // hf://OWNER/REPO@REV/FILE (huggingface_hub's HfFileSystem form).
            if let Some((r, rev)) = repo.split_once('@') {
                repo = r;
                revision = Some(rev);
            }
            // hf://OWNER/REPO/FILE@REV (a file name holding '@' needs the other form).
            if revision.is_none() {
                if let Some((f, rev)) = file.rsplit_once('@') {
                    file = f;
                    revision = Some(rev);
                }
            }
            // A revision with slashes (refs/pr/1) is written %2F-quoted in the HfFileSystem form.
            let revision = revision
                .unwrap_or("main")
                .replace("%2F", "/")
                .replace("%2f", "/");
            if repo.is_empty() || file.is_empty() || revision.is_empty() {
                return Err(bad("empty repository, file or revision"));
            }
            if file
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
            {
                return Err(bad(
                    "the file's path in the repository has an empty, '.' or '..' part",
                ));
            }
            return Ok(Location::Hub {
                repo: format!("{owner}/{repo}"),
                file: file.to_string(),
                revision,
            });
        }
        if strip_prefix_ci(s, "http://").is_some() || strip_prefix_ci(s, "https://").is_some() {
            let uri: ureq::http::Uri = s.parse().map_err(|e| bad(&format!("not a URL: {e}")))?;
            if uri.host().is_none_or(str::is_empty) {
                return Err(bad("the URL has no host"));
            }
            return Ok(Location::Url(s.to_string()));
        }
        Err(bad(
            "not a remote file: expected https://…, http://… or hf://OWNER/REPO/FILE[@REVISION]",
        ))
    }

    /// The URL to request: the hub's resolve URL for `hf://` names.
    pub fn url(&self, endpoint: &str) -> String {
        match self {
            Location::Url(u) => u.clone(),
            Location::Hub {
                repo,
                file,
                revision,
            } => {
                // hf_hub_url quotes the revision whole (refs/pr/1 → refs%2Fpr%2F1) and the path
                // keeping its slashes.
                format!(
                    "{}/{repo}/resolve/{}/{}",
                    endpoint.trim_end_matches('/'),
                    quote(revision, false),
                    quote(file, true)
                )
            }
        }
    }

    /// How to show it, and the name other shards of a split model are derived from: the hub form
    /// puts the revision (when not `main`) after the repository so that names end in `.gguf`.
    pub fn display(&self) -> String {
        match self {
            Location::Url(u) => u.clone(),
            Location::Hub {
                repo,
                file,
                revision,
            } if revision == "main" => format!("hf://{repo}/{file}"),
            Location::Hub {
                repo,
                file,
                revision,
            } => format!("hf://{repo}@{}/{file}", revision.replace('/', "%2F")),
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Percent-encodes all but RFC 3986's unreserved characters (and '/' if `keep_slash`).
fn quote(s: &str, keep_slash: bool) -> String {
    let mut o = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/');
        if keep {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// The `scheme://authority` of a URL, lower-cased (what a token is tied to).
pub fn origin(url: &str) -> Option<String> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let auth = uri.authority()?.as_str().to_ascii_lowercase();
    // Credentials in the authority are not part of the origin.
    let auth = auth.rsplit('@').next().unwrap_or(&auth).to_string();
    Some(format!("{scheme}://{auth}"))
}

/// Resolves a redirect's `Location` against the URL it came from.
pub fn join(base: &str, location: &str) -> Option<String> {
    if is_remote(location) && !location.to_ascii_lowercase().starts_with("hf://") {
        return Some(location.to_string());
    }
    let uri: ureq::http::Uri = base.parse().ok()?;
    let scheme = uri.scheme_str()?;
    let auth = uri.authority()?.as_str();
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Some(format!("{scheme}://{auth}{location}"));
    }
    let path = uri.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    Some(format!("{scheme}://{auth}{dir}{location}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_names_resolve_like_hf_hub_url() {
        let l = Location::parse("hf://ggml-org/gemma-3-270m-GGUF/gemma-3-270m-Q8_0.gguf").unwrap();
        assert_eq!(
            l.url(DEFAULT_ENDPOINT),
            "https://huggingface.co/ggml-org/gemma-3-270m-GGUF/resolve/main/gemma-3-270m-Q8_0.gguf"
        );
        assert_eq!(
            l.display(),
            "hf://ggml-org/gemma-3-270m-GGUF/gemma-3-270m-Q8_0.gguf"
        );
        let l = Location::parse("hf://o/r/sub dir/m-00001-of-00002.gguf@refs/pr/1").unwrap();
        assert_eq!(
            l.url("http://127.0.0.1:9/"),
            "http://127.0.0.1:9/o/r/resolve/refs%2Fpr%2F1/sub%20dir/m-00001-of-00002.gguf"
        );
        // The display form keeps the name ending in .gguf, and parses back to the same place.
        assert_eq!(
            l.display(),
            "hf://o/r@refs%2Fpr%2F1/sub dir/m-00001-of-00002.gguf"
        );
        assert_eq!(Location::parse(&l.display()).unwrap(), l);
    }

    #[test]
    fn bad_names_are_refused_with_the_form_expected() {
        for s in [
            "hf://owner/repo",
            "hf://owner//f.gguf",
            "hf://o/r/../x.gguf",
            "ftp://x/y",
        ] {
            let e = Location::parse(s).unwrap_err().to_string();
            assert!(e.contains(s), "{e}");
        }
        assert!(is_remote("HTTPS://x/y.gguf") && !is_remote("model.gguf"));
    }

    #[test]
    fn redirects_resolve_relative_locations() {
        let b = "https://hub.example/o/r/resolve/main/m.gguf";
        assert_eq!(
            join(b, "https://cdn.example/x?sig=1").as_deref(),
            Some("https://cdn.example/x?sig=1")
        );
        assert_eq!(
            join(b, "/new/r/resolve/main/m.gguf").as_deref(),
            Some("https://hub.example/new/r/resolve/main/m.gguf")
        );
        assert_eq!(
            join(b, "other.gguf").as_deref(),
            Some("https://hub.example/o/r/resolve/main/other.gguf")
        );
        assert_eq!(
            origin("HTTPS://user:pw@Hub.Example:8443/x").as_deref(),
            Some("https://hub.example:8443")
        );
    }
}
