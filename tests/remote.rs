//! `pocket inspect` and `pocket verify` on URLs and `hf://` names, against HTTP servers started here on
//! 127.0.0.1 (no other network): the results equal the local ones for every testdata file, for
//! gemma-3 270M and for the zoo's headers (Qwen2.5 1.5B, nomic-embed, llama.cpp's vocabulary files),
//! the bytes fetched stay under the header plus one growth step, and the hard cases — no range
//! support, a redirect to another origin (the token is not sent there), 401, 404, slow and cut
//! responses, a file that changes mid-read, the cache, a proxy — end as they should.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value as J;

// ---------------------------------------------------------------------------------------------------
// A small HTTP/1.1 server: GET with Range, one request per connection.

/// How the server misbehaves.
#[derive(Clone, Default)]
struct Mode {
    /// Ignore Range and send the whole file with 200.
    no_ranges: bool,
    /// Answer 401 unless `Authorization: Bearer TOKEN`.
    token: Option<String>,
    /// Answer 302 to this base URL + the path.
    redirect_to: Option<String>,
    /// Delay the first N responses by `delay`.
    slow_first: u32,
    delay: Duration,
    /// Cut the body of the first N responses in half.
    truncate_first: u32,
    /// Change the ETag after this many requests.
    etag_change_after: Option<u32>,
}

#[derive(Clone, Debug)]
struct Logged {
    path: String,
    range: Option<String>,
    auth: Option<String>,
    status: u16,
    sent: u64,
}

struct Server {
    base: String,
    mode: Arc<Mutex<Mode>>,
    log: Arc<Mutex<Vec<Logged>>>,
    /// Requests since the start or the last `clear` (what `Mode`'s counts count).
    count: Arc<AtomicU32>,
}

impl Server {
    /// Serves `files` (URL path → file) on a fresh loopback port.
    fn start(files: HashMap<String, PathBuf>, mode: Mode) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let base = format!("http://{}", l.local_addr().unwrap());
        let mode = Arc::new(Mutex::new(mode));
        let log = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicU32::new(0));
        let files = Arc::new(files);
        let (m, lg, cnt) = (Arc::clone(&mode), Arc::clone(&log), Arc::clone(&count));
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { continue };
                let (m, lg, f, n) = (
                    Arc::clone(&m),
                    Arc::clone(&lg),
                    Arc::clone(&files),
                    Arc::clone(&cnt),
                );
                std::thread::spawn(move || {
                    let _ = serve(c, &m, &lg, &f, &n);
                });
            }
        });
        Server {
            base,
            mode,
            log,
            count,
        }
    }

    fn set(&self, f: impl FnOnce(&mut Mode)) {
        f(&mut self.mode.lock().unwrap());
    }

    fn log(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.log.lock().unwrap().clear();
        self.count.store(0, Ordering::SeqCst);
    }
}

fn serve(
    mut c: TcpStream,
    mode: &Mutex<Mode>,
    log: &Mutex<Vec<Logged>>,
    files: &HashMap<String, PathBuf>,
    count: &AtomicU32,
) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut r = BufReader::new(c.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut h: HashMap<String, String> = HashMap::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l)? == 0 || l == "\r\n" {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            h.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let n = count.fetch_add(1, Ordering::SeqCst);
    let m = mode.lock().unwrap().clone();
    let mut entry = Logged {
        path: path.clone(),
        range: h.get("range").cloned(),
        auth: h.get("authorization").cloned(),
        status: 0,
        sent: 0,
    };
    if n < m.slow_first {
        std::thread::sleep(m.delay);
    }
    let result = respond(&mut c, &m, &h, &path, files, n);
    if let Ok((status, sent)) = &result {
        entry.status = *status;
        entry.sent = *sent;
    }
    log.lock().unwrap().push(entry);
    result.map(|_| ())
}

/// Writes a response: (status, body bytes sent).
fn reply(
    c: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<(u16, u64)> {
    let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes())?;
    c.write_all(body)?;
    c.flush()?;
    Ok((status, body.len() as u64))
}

fn respond(
    c: &mut TcpStream,
    m: &Mode,
    h: &HashMap<String, String>,
    path: &str,
    files: &HashMap<String, PathBuf>,
    n: u32,
) -> std::io::Result<(u16, u64)> {
    if let Some(t) = &m.token {
        if h.get("authorization") != Some(&format!("Bearer {t}")) {
            let msg = b"Access to model o/r is restricted.";
            return reply(
                c,
                401,
                &[
                    ("Content-Length", msg.len().to_string()),
                    ("X-Error-Code", "GatedRepo".into()),
                    (
                        "X-Error-Message",
                        "Access to model o/r is restricted.".into(),
                    ),
                ],
                msg,
            );
        }
    }
    if let Some(to) = &m.redirect_to {
        return reply(
            c,
            302,
            &[
                ("Location", format!("{to}{path}")),
                ("Content-Length", "0".into()),
            ],
            b"",
        );
    }
    let Some(file) = files.get(path.split('?').next().unwrap_or("")) else {
        return reply(c, 404, &[("Content-Length", "9".into())], b"not found");
    };
    let mut f = std::fs::File::open(file)?;
    let size = f.metadata()?.len();
    let changed = m.etag_change_after.is_some_and(|k| n >= k);
    let etag = format!("\"{size:x}-{}\"", if changed { "v2" } else { "v1" });
    if h.get("if-none-match") == Some(&etag) {
        return reply(c, 304, &[("ETag", etag.clone())], b"");
    }
    let range = h.get("range").and_then(|v| {
        let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
        Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?))
    });
    match range {
        Some((a, b)) if !m.no_ranges => {
            if a >= size {
                return reply(
                    c,
                    416,
                    &[
                        ("Content-Range", format!("bytes */{size}")),
                        ("Content-Length", "0".into()),
                    ],
                    b"",
                );
            }
            let b = b.min(size - 1);
            let mut buf = vec![0u8; (b - a + 1) as usize];
            std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, a)?;
            let cut = n < m.truncate_first;
            let headers = [
                ("Content-Range", format!("bytes {a}-{b}/{size}")),
                ("Content-Length", buf.len().to_string()),
                ("ETag", etag),
                ("Accept-Ranges", "bytes".into()),
            ];
            if cut {
                // Promise the whole range, send half, close.
                let half = buf.len() / 2;
                return reply(c, 206, &headers, &buf[..half]);
            }
            reply(c, 206, &headers, &buf)
        }
        _ => {
            let head = format!("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {size}\r\nETag: {etag}\r\n\r\n");
            c.write_all(head.as_bytes())?;
            let sent = std::io::copy(&mut f, c)?;
            Ok((200, sent))
        }
    }
}

/// A CONNECT proxy on loopback that tunnels to wherever it is asked and counts the tunnels.
fn start_proxy() -> (String, Arc<AtomicU32>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let n = Arc::new(AtomicU32::new(0));
    let n2 = Arc::clone(&n);
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let n = Arc::clone(&n2);
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut r = BufReader::new(c.try_clone()?);
                let mut line = String::new();
                r.read_line(&mut line)?;
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l)? == 0 || l == "\r\n" {
                        break;
                    }
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                if !line.starts_with("CONNECT ") || !target.starts_with("127.0.0.1:") {
                    c.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")?;
                    return Ok(());
                }
                n.fetch_add(1, Ordering::SeqCst);
                let up = TcpStream::connect(&target)?;
                c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
                let (mut a, mut b) = (up.try_clone()?, c.try_clone()?);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut b, &mut a);
                });
                let mut up = up;
                std::io::copy(&mut up, &mut c)?;
                Ok(())
            });
        }
    });
    (url, n)
}

// ---------------------------------------------------------------------------------------------------
// Running pocket.

struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    fn json(&self) -> J {
        serde_json::from_str(&self.out).unwrap_or_else(|e| {
            panic!(
                "not one JSON document ({e}): {}\nstderr: {}",
                self.out, self.err
            )
        })
    }
}

/// pocket with a clean environment for the network: no proxies, no token, a cache of its own.
fn pocket(args: &[&str], env: &[(&str, &str)], cache: &Path) -> Run {
    let mut c = common::pocket();
    c.args(args);
    for k in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_ENDPOINT",
        "HF_TOKEN_PATH",
    ] {
        c.env_remove(k);
    }
    c.env("POCKET_CACHE", cache);
    c.env("HF_HOME", cache.join("hf-home"));
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run pocket");
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Every testdata/*.gguf, and the damaged files of testdata/damaged/ (the same errors and failed
/// checks are expected over HTTP).
fn testdata_ggufs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in ["", "damaged"] {
        v.extend(
            std::fs::read_dir(common::testdata(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "gguf")),
        );
    }
    v.sort();
    v
}

fn serve_files(paths: &[PathBuf], mode: Mode) -> Server {
    let files = paths
        .iter()
        .map(|p| {
            (
                format!("/f/{}", p.file_name().unwrap().to_string_lossy()),
                p.clone(),
            )
        })
        .collect();
    Server::start(files, mode)
}

fn url(s: &Server, p: &Path) -> String {
    format!("{}/f/{}", s.base, p.file_name().unwrap().to_string_lossy())
}

/// The inspect document without what must differ: `files` (paths vs URLs) and `remote`.
fn inspect_core(mut d: J) -> J {
    let o = d.as_object_mut().unwrap();
    o.remove("files");
    o.remove("remote");
    d
}

/// The verify document without `files` and `remote` of each model.
fn verify_core(mut d: J) -> J {
    for m in d["models"].as_array_mut().unwrap() {
        let o = m.as_object_mut().unwrap();
        o.remove("files");
        o.remove("remote");
    }
    d
}

/// The growth step after `have` bytes, as pocket::remote::Session::step computes it.
fn step(have: u64, min_step: u64) -> u64 {
    min_step.max(have / 2)
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------------------------------------------

#[test]
fn inspect_and_verify_over_http_equal_the_local_results_for_every_testdata_file() {
    let files = testdata_ggufs();
    assert!(files.len() >= 15, "{files:?}");
    let s = serve_files(&files, Mode::default());
    let cache = tmp();
    for f in &files {
        let local = pocket(
            &["inspect", "--json", f.to_str().unwrap()],
            &[],
            cache.path(),
        );
        let u = url(&s, f);
        let remote = pocket(&["inspect", "--json", "--no-cache", &u], &[], cache.path());
        assert_eq!(remote.code, local.code, "{u}: {}", remote.err);
        let (l, r) = (local.json(), remote.json());
        if local.code != 0 {
            // The same error, naming the URL where the local one names the path.
            let path = f.to_str().unwrap();
            let same = |d: &J| d.to_string().replace(path, "FILE").replace(&u, "FILE");
            assert_eq!(
                same(&inspect_core(r.clone())),
                same(&inspect_core(l.clone())),
                "{u}"
            );
            continue;
        }
        assert_eq!(inspect_core(r.clone()), inspect_core(l.clone()), "{u}");
        // Each shard is named by its URL; bytes fetched: under the header plus one step (the first
        // read of 4 MiB covers these small files whole).
        let names: Vec<&str> = r["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(names[0] == u, "{names:?}");
        let size = r["file_size"].as_u64().unwrap();
        let fetched = r["remote"]["bytes_fetched"].as_u64().unwrap();
        let header = r["tensor_data_offset"].as_u64().unwrap();
        assert!(
            fetched <= size && fetched <= (4 << 20).max(header + step(header, 2 << 20)),
            "{u}: {fetched}"
        );
        assert_eq!(r["remote"]["file_size"].as_u64(), Some(size), "{u}");

        for extra in [&[][..], &["--device", "pixel-8"][..]] {
            let mut la = vec!["verify", "--json"];
            la.extend_from_slice(extra);
            let mut ra = la.clone();
            la.push(f.to_str().unwrap());
            ra.extend_from_slice(&["--no-cache", &u]);
            let local = pocket(&la, &[], cache.path());
            let remote = pocket(&ra, &[], cache.path());
            assert_eq!(remote.code, local.code, "{u} {extra:?}: {}", remote.err);
            assert_eq!(
                verify_core(remote.json()),
                verify_core(local.json()),
                "{u} {extra:?}"
            );
        }
    }
}

/// With a small first read and step, the header read grows by range requests; the results still
/// equal the local ones (verify: all but the data checks, which see only the tensors fetched; the
/// numbers check names them), and the header costs less than the header plus one growth step.
#[test]
fn growing_header_reads_fetch_under_the_header_plus_one_step() {
    let files = testdata_ggufs();
    let s = serve_files(&files, Mode::default());
    let cache = tmp();
    let (first, min) = (4096u64, 4096u64);
    let knobs = ["--first-read", "4096", "--min-step", "4096", "--no-cache"];
    let mut grew = 0;
    for f in &files {
        let u = url(&s, f);
        let local = pocket(
            &["inspect", "--json", f.to_str().unwrap()],
            &[],
            cache.path(),
        );
        let mut a = vec!["inspect", "--json"];
        a.extend_from_slice(&knobs);
        a.push(&u);
        let remote = pocket(&a, &[], cache.path());
        assert_eq!(remote.code, local.code, "{u}: {}", remote.err);
        if local.code != 0 {
            continue;
        }
        let r = remote.json();
        assert_eq!(inspect_core(r.clone()), inspect_core(local.json()), "{u}");
        for st in r["remote"]["files"].as_array().unwrap() {
            let header = st["header_size"].as_u64().unwrap();
            let got = st["header_bytes_fetched"].as_u64().unwrap();
            let size = st["size"].as_u64().unwrap();
            assert!(
                got <= size.min(first.max(header + step(header, min))),
                "{u}: {got} bytes for a {header}-byte header"
            );
            assert!(got >= header.min(size), "{u}");
            grew += u32::from(st["requests"].as_u64().unwrap() > 1);
        }

        let mut a = vec!["verify", "--json", "--sample", "0"];
        a.extend_from_slice(&knobs);
        a.push(&u);
        let remote = pocket(&a, &[], cache.path());
        let local = pocket(
            &["verify", "--json", f.to_str().unwrap()],
            &[],
            cache.path(),
        );
        let (mut r, mut l) = (verify_core(remote.json()), verify_core(local.json()));
        // The data checks (numbers, all-zero, magnitude) see only the tensors fetched: set aside.
        let numbers = |d: &mut J| {
            let cs = d["models"][0]["checks"].as_array_mut().unwrap();
            let i = cs.iter().position(|c| c["check"] == "numbers");
            let n = i.map(|i| cs.remove(i));
            cs.retain(|c| c["check"] != "all-zero" && c["check"] != "magnitude");
            // The statuses follow (a NaN the sample does not reach fails only the local file).
            d["status"] = J::Null;
            d["models"][0]["status"] = J::Null;
            n
        };
        let (rn, ln) = (numbers(&mut r), numbers(&mut l));
        assert_eq!(r, l, "{u}");
        // The numbers check names the tensors the ranges fetched hold (all of them: the same as local).
        let held: usize = remote.json()["models"][0]["remote"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["tensors_fetched"].as_array().unwrap().len())
            .sum();
        let total = l["models"][0]["n_tensors"].as_u64().unwrap() as usize;
        match (rn, ln) {
            (Some(rn), Some(ln)) if held == total => assert_eq!(rn, ln, "{u}"),
            (Some(rn), Some(_)) => {
                let m = rn["message"].as_str().unwrap();
                assert!(
                    m.contains(&format!(
                        "the {held} of {total} tensors in the ranges fetched"
                    )),
                    "{u}: {m}"
                );
            }
            (None, _) => assert_eq!(held, 0, "{u}"),
            (Some(rn), None) => panic!("{u}: {rn}"),
        }
    }
    assert!(
        grew >= 5,
        "only {grew} headers needed more than one request"
    );
}

#[test]
fn the_real_gemma_model_over_http_matches_its_local_reading() {
    let g = common::gemma();
    let s = serve_files(std::slice::from_ref(&g), Mode::default());
    let u = url(&s, &g);
    let cache = tmp();
    let local = pocket(
        &["inspect", "--json", g.to_str().unwrap()],
        &[],
        cache.path(),
    );
    let remote = pocket(&["inspect", "--json", &u], &[], cache.path());
    assert_eq!(remote.code, 0, "{}", remote.err);
    let r = remote.json();
    assert_eq!(inspect_core(r.clone()), inspect_core(local.json()));
    let header = r["tensor_data_offset"].as_u64().unwrap();
    let size = r["file_size"].as_u64().unwrap();
    let fetched = r["remote"]["bytes_fetched"].as_u64().unwrap();
    eprintln!("gemma over HTTP: header {header} bytes, fetched {fetched} of {size}");
    assert!(
        fetched >= header && fetched <= header + step(header, 2 << 20),
        "{fetched}"
    );

    // The second run takes the header from the cache (the server answers 304 to its ETag).
    s.clear();
    let again = pocket(&["inspect", "--json", &u], &[], cache.path()).json();
    assert_eq!(inspect_core(again.clone()), inspect_core(r));
    assert_eq!(again["remote"]["bytes_fetched"], 0);
    assert!(
        again["remote"]["files"][0]["bytes_from_cache"]
            .as_u64()
            .unwrap()
            >= header
    );
    assert_eq!(
        s.log().iter().map(|l| l.status).collect::<Vec<_>>(),
        vec![304]
    );

    // verify: every header check and the device verdict equal the local file's; the numbers check
    // covers the tensors of one sampled MiB and names them.
    let local = pocket(
        &[
            "verify",
            "--json",
            "--device",
            "pixel-8",
            g.to_str().unwrap(),
        ],
        &[],
        cache.path(),
    );
    let remote = pocket(
        &["verify", "--json", "--device", "pixel-8", "--no-cache", &u],
        &[],
        cache.path(),
    );
    assert_eq!(remote.code, local.code, "{}", remote.err);
    let (rj, lj) = (remote.json(), local.json());
    let checks = |d: &J, numbers: bool| -> Vec<J> {
        d["models"][0]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| (c["check"] == "numbers") == numbers)
            .cloned()
            .collect()
    };
    assert_eq!(checks(&rj, false), checks(&lj, false));
    assert_eq!(rj["models"][0]["device"], lj["models"][0]["device"]);
    let st = &rj["models"][0]["remote"];
    let held = st["files"][0]["tensors_fetched"].as_array().unwrap();
    let n = checks(&rj, true);
    let m = n[0]["message"].as_str().unwrap();
    eprintln!(
        "gemma verify over HTTP: {m}; fetched {}",
        st["bytes_fetched"]
    );
    assert!(held.len() >= 5, "{held:?}");
    assert!(
        m.contains(&format!(
            "the {} of 236 tensors in the ranges fetched",
            held.len()
        )),
        "{m}"
    );
    assert!(m.contains(held[0].as_str().unwrap()), "{m}");
    let total = st["bytes_fetched"].as_u64().unwrap();
    assert!(
        total <= header + step(header, 2 << 20) + (1 << 20),
        "{total}"
    );
}

#[test]
fn a_server_without_range_support_is_refused_unless_the_whole_file_is_asked_for() {
    let f = common::testdata("tiny-llama-q8_0.gguf");
    let s = serve_files(
        std::slice::from_ref(&f),
        Mode {
            no_ranges: true,
            ..Mode::default()
        },
    );
    let u = url(&s, &f);
    let cache = tmp();
    let r = pocket(&["inspect", &u], &[], cache.path());
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(
        r.err.contains(&u)
            && r.err.contains("does not answer range requests")
            && r.err.contains("--download-whole"),
        "{}",
        r.err
    );
    let r = pocket(&["inspect", "--json", &u], &[], cache.path());
    assert_eq!(r.json()["error"]["kind"], "http_no_ranges");

    // Asked: downloaded whole, and verify then checks every tensor, as on the local file.
    let local = pocket(
        &["verify", "--json", f.to_str().unwrap()],
        &[],
        cache.path(),
    );
    let r = pocket(
        &["verify", "--json", "--download-whole", &u],
        &[],
        cache.path(),
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(verify_core(r.json()), verify_core(local.json()));
    assert_eq!(
        r.json()["models"][0]["remote"]["files"][0]["whole_file_downloaded"],
        true
    );
}

#[test]
fn the_hub_redirect_to_a_cdn_keeps_the_token_on_the_hub() {
    let f = common::testdata("tiny-llama-q4_k_m.gguf");
    let cdn = Server::start(
        [("/o/r/resolve/main/m.gguf".to_string(), f.clone())].into(),
        Mode::default(),
    );
    let hub = Server::start(
        HashMap::new(),
        Mode {
            token: Some("hf_secret".into()),
            redirect_to: None,
            ..Mode::default()
        },
    );
    // The hub checks the token, then redirects (a token check that passes, then 302).
    hub.set(|m| m.redirect_to = Some(cdn.base.clone()));
    let cache = tmp();
    let env = [
        ("HF_ENDPOINT", hub.base.as_str()),
        ("HF_TOKEN", "hf_secret"),
    ];
    let local = pocket(
        &["inspect", "--json", f.to_str().unwrap()],
        &[],
        cache.path(),
    );
    let r = pocket(
        &["inspect", "--json", "hf://o/r/m.gguf"],
        &env,
        cache.path(),
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(inspect_core(r.json()), inspect_core(local.json()));
    assert_eq!(r.json()["files"][0], "hf://o/r/m.gguf");
    assert_eq!(
        r.json()["remote"]["files"][0]["url"],
        format!("{}/o/r/resolve/main/m.gguf", hub.base)
    );
    let hub_log = hub.log();
    assert!(hub_log.iter().all(|l| l.path == "/o/r/resolve/main/m.gguf"));
    assert!(
        hub_log
            .iter()
            .all(|l| l.status == 302 && l.auth.as_deref() == Some("Bearer hf_secret")),
        "{hub_log:?}"
    );
    let cdn_log = cdn.log();
    assert!(
        !cdn_log.is_empty() && cdn_log.iter().all(|l| l.auth.is_none() && l.status == 206),
        "{cdn_log:?}"
    );
    assert!(cdn_log[0]
        .range
        .as_deref()
        .is_some_and(|r| r.starts_with("bytes=0-")));
}

#[test]
fn gated_and_missing_files_say_what_to_do() {
    let f = common::testdata("tiny-llama-q4_k_m.gguf");
    let hub = Server::start(
        [("/o/r/resolve/main/m.gguf".to_string(), f.clone())].into(),
        Mode {
            token: Some("hf_secret".into()),
            ..Mode::default()
        },
    );
    let cache = tmp();
    let ep = [("HF_ENDPOINT", hub.base.as_str())];
    // 401 without a token: exit 2, the URL, the hub's message and HF_TOKEN named.
    let r = pocket(&["inspect", "hf://o/r/m.gguf"], &ep, cache.path());
    assert_eq!(r.code, 2);
    assert!(
        r.err
            .contains(&format!("{}/o/r/resolve/main/m.gguf", hub.base)),
        "{}",
        r.err
    );
    assert!(
        r.err.contains("401") && r.err.contains("HF_TOKEN") && r.err.contains("restricted"),
        "{}",
        r.err
    );
    let r = pocket(&["verify", "--json", "hf://o/r/m.gguf"], &ep, cache.path());
    assert_eq!(
        (r.code, r.json()["error"]["kind"].as_str()),
        (2, Some("http_denied"))
    );
    // A wrong token: the hint says the token has no access.
    let r = pocket(
        &["inspect", "hf://o/r/m.gguf"],
        &[ep[0], ("HF_TOKEN", "hf_wrong")],
        cache.path(),
    );
    assert!(r.code == 2 && r.err.contains("has no access"), "{}", r.err);
    // The hub's token file ($HF_HOME/token) is used when HF_TOKEN is not set.
    std::fs::create_dir_all(cache.path().join("hf-home")).unwrap();
    std::fs::write(cache.path().join("hf-home/token"), "hf_secret\n").unwrap();
    let r = pocket(&["inspect", "--json", "hf://o/r/m.gguf"], &ep, cache.path());
    assert_eq!(r.code, 0, "{}", r.err);
    // The token goes to the hub's origin only: a URL elsewhere gets none.
    let other = serve_files(std::slice::from_ref(&f), Mode::default());
    let r = pocket(
        &["inspect", "--json", &url(&other, &f)],
        &[ep[0], ("HF_TOKEN", "hf_secret")],
        cache.path(),
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(other.log().iter().all(|l| l.auth.is_none()));
    // 404: a missing file, and a missing revision.
    let r = pocket(
        &["inspect", "--json", "hf://o/r/nope.gguf"],
        &[ep[0], ("HF_TOKEN", "hf_secret")],
        cache.path(),
    );
    assert_eq!(
        (r.code, r.json()["error"]["kind"].as_str()),
        (2, Some("http_not_found"))
    );
    assert!(
        r.err.contains("404") && r.err.contains("OWNER/REPO"),
        "{}",
        r.err
    );
    let r = pocket(
        &["inspect", "hf://o/r/m.gguf@v2"],
        &[ep[0], ("HF_TOKEN", "hf_secret")],
        cache.path(),
    );
    assert!(
        r.code == 2 && r.err.contains("/o/r/resolve/v2/m.gguf"),
        "{}",
        r.err
    );
}

#[test]
fn slow_and_cut_responses_are_retried_then_reported() {
    let f = common::testdata("tiny-llama-q8_0.gguf");
    let s = serve_files(std::slice::from_ref(&f), Mode::default());
    let u = url(&s, &f);
    let cache = tmp();
    let fast = ["--timeout", "1", "--no-cache"];
    let local = inspect_core(
        pocket(
            &["inspect", "--json", f.to_str().unwrap()],
            &[],
            cache.path(),
        )
        .json(),
    );

    // Slow once: the first attempt times out, the retry succeeds.
    s.set(|m| {
        m.slow_first = 1;
        m.delay = Duration::from_secs(3);
    });
    let r = pocket(
        &[&["inspect", "--json"][..], &fast, &[&u]].concat(),
        &[],
        cache.path(),
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(inspect_core(r.json()), local);
    // Slow and still slow: a clear timeout after the retries.
    s.clear();
    s.set(|m| m.slow_first = u32::MAX);
    let r = pocket(
        &[&["inspect"][..], &fast, &["--retries", "1", &u]].concat(),
        &[],
        cache.path(),
    );
    assert_eq!(r.code, 2);
    assert!(
        r.err.contains(&u) && r.err.contains("timed out") && r.err.contains("2 attempts"),
        "{}",
        r.err
    );
    s.set(|m| m.slow_first = 0);

    // Cut short once: retried; always: reported with how much came.
    s.set(|m| m.truncate_first = u32::MAX);
    let r = pocket(
        &[&["inspect", "--json"][..], &fast, &["--retries", "1", &u]].concat(),
        &[],
        cache.path(),
    );
    assert_eq!(r.code, 2);
    assert!(
        r.err.contains("cut short") && r.err.contains(&u),
        "{}",
        r.err
    );
    assert_eq!(r.json()["error"]["kind"], "http_truncated");
}

#[test]
fn a_truncated_response_once_is_retried() {
    let f = common::testdata("tiny-llama-q8_0.gguf");
    let s = serve_files(
        std::slice::from_ref(&f),
        Mode {
            truncate_first: 1,
            ..Mode::default()
        },
    );
    let u = url(&s, &f);
    let cache = tmp();
    let r = pocket(&["inspect", "--json", "--no-cache", &u], &[], cache.path());
    assert_eq!(r.code, 0, "{}", r.err);
    let log = s.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log[0].sent < log[1].sent);
}

#[test]
fn a_file_that_changes_mid_read_is_an_error_and_the_cache_follows_the_etag() {
    let f = common::testdata("tiny-llama-f16.gguf");
    let s = serve_files(
        std::slice::from_ref(&f),
        Mode {
            etag_change_after: Some(1),
            ..Mode::default()
        },
    );
    let u = url(&s, &f);
    let cache = tmp();
    let small = ["--first-read", "4096", "--min-step", "4096"];
    let r = pocket(
        &[&["inspect"][..], &small, &["--no-cache", &u]].concat(),
        &[],
        cache.path(),
    );
    assert_eq!(r.code, 2);
    assert!(
        r.err.contains(&u)
            && r.err.contains("changed while it was being read")
            && r.err.contains("ETag"),
        "{}",
        r.err
    );
    s.clear();
    let r = pocket(
        &[&["verify", "--json"][..], &small, &["--no-cache", &u]].concat(),
        &[],
        cache.path(),
    );
    assert_eq!(
        (r.code, r.json()["error"]["kind"].as_str()),
        (2, Some("http_changed"))
    );

    // The cache: filled by the first run, used (304) by the second, dropped when the ETag changes.
    s.set(|m| m.etag_change_after = None);
    let first = pocket(&["inspect", "--json", &u], &[], cache.path()).json();
    assert!(first["remote"]["bytes_fetched"].as_u64().unwrap() > 0);
    let second = pocket(&["inspect", "--json", &u], &[], cache.path()).json();
    assert_eq!(second["remote"]["bytes_fetched"], 0);
    assert_eq!(inspect_core(second), inspect_core(first.clone()));
    s.set(|m| m.etag_change_after = Some(0));
    let third = pocket(&["inspect", "--json", &u], &[], cache.path()).json();
    assert!(third["remote"]["bytes_fetched"].as_u64().unwrap() > 0);
    assert_eq!(third["remote"]["bytes_from_cache"], J::Null);
    assert_eq!(inspect_core(third), inspect_core(first));
}

#[test]
fn split_models_are_found_by_name_over_http() {
    let files: Vec<PathBuf> = (1..=3)
        .map(|i| common::testdata(&format!("tiny-llama-split-0000{i}-of-00003.gguf")))
        .collect();
    let hub = Server::start(
        files
            .iter()
            .map(|p| {
                (
                    format!(
                        "/o/r/resolve/main/{}",
                        p.file_name().unwrap().to_string_lossy()
                    ),
                    p.clone(),
                )
            })
            .collect(),
        Mode::default(),
    );
    let cache = tmp();
    let ep = [("HF_ENDPOINT", hub.base.as_str())];
    let name = "hf://o/r/tiny-llama-split-00001-of-00003.gguf";
    let local = pocket(
        &["verify", "--json", files[0].to_str().unwrap()],
        &[],
        cache.path(),
    );
    let r = pocket(&["verify", "--json", name], &ep, cache.path());
    assert_eq!(r.code, 0, "{}", r.err);
    let rj = r.json();
    assert_eq!(verify_core(rj.clone()), verify_core(local.json()));
    let fs: Vec<&str> = rj["models"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        fs,
        [
            "hf://o/r/tiny-llama-split-00001-of-00003.gguf",
            "hf://o/r/tiny-llama-split-00002-of-00003.gguf",
            "hf://o/r/tiny-llama-split-00003-of-00003.gguf"
        ]
    );
    // A missing shard fails the split check, naming it.
    let lonely = Server::start(
        [(
            format!(
                "/o/r/resolve/main/{}",
                files[0].file_name().unwrap().to_string_lossy()
            ),
            files[0].clone(),
        )]
        .into(),
        Mode::default(),
    );
    let r = pocket(
        &["verify", "--json", name],
        &[("HF_ENDPOINT", lonely.base.as_str())],
        cache.path(),
    );
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(
        r.out.contains("shard 2 of 3 is missing") && r.out.contains("404"),
        "{}",
        r.out
    );
}

#[test]
fn proxies_are_used_per_scheme_unless_no_proxy_lists_the_host() {
    let f = common::testdata("tiny-llama-q4_k_m.gguf");
    let s = serve_files(std::slice::from_ref(&f), Mode::default());
    let u = url(&s, &f);
    let (proxy, tunnels) = start_proxy();
    let cache = tmp();
    let r = pocket(
        &["inspect", "--json", "--no-cache", &u],
        &[("HTTP_PROXY", &proxy)],
        cache.path(),
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(tunnels.load(Ordering::SeqCst), 1);
    // HTTPS_PROXY is for https URLs only; NO_PROXY bypasses.
    let r = pocket(
        &["inspect", "--json", "--no-cache", &u],
        &[("HTTPS_PROXY", &proxy)],
        cache.path(),
    );
    assert_eq!(r.code, 0, "{}", r.err);
    let r = pocket(
        &["inspect", "--json", "--no-cache", &u],
        &[("HTTP_PROXY", &proxy), ("NO_PROXY", "localhost,127.0.0.1")],
        cache.path(),
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(tunnels.load(Ordering::SeqCst), 1);
}

#[test]
fn bad_remote_names_are_usage_errors() {
    let cache = tmp();
    let r = pocket(&["inspect", "hf://only-owner/x"], &[], cache.path());
    assert_eq!(r.code, 2);
    assert!(r.err.contains("hf://OWNER/REPO/FILE"), "{}", r.err);
    // Nothing listens on port 9 of the loopback: a transport error after the retries, not a panic.
    let r = pocket(
        &["inspect", "--retries", "0", "http://127.0.0.1:9/x.gguf"],
        &[],
        cache.path(),
    );
    assert_eq!(r.code, 2);
    assert!(r.err.contains("http://127.0.0.1:9/x.gguf"), "{}", r.err);
}

/// A file llama.cpp refuses but whose records read (tiny-llama-q8_0 with `general.alignment` = 64
/// while laid out at 32) is shown over HTTP as locally: everything readable, its problems, exit 2.
#[test]
fn a_file_llama_cpp_refuses_is_shown_with_its_problems_over_http() {
    let dir = tmp();
    let mut b = std::fs::read(common::testdata("tiny-llama-q8_0.gguf")).unwrap();
    let i = b
        .windows(17)
        .position(|w| w == b"llama.block_count")
        .unwrap();
    b[i..i + 17].copy_from_slice(b"general.alignment");
    b[i + 21..i + 25].copy_from_slice(&64u32.to_le_bytes());
    let p = dir.path().join("align64.gguf");
    std::fs::write(&p, b).unwrap();
    let s = serve_files(std::slice::from_ref(&p), Mode::default());
    let u = url(&s, &p);
    let local = pocket(&["inspect", "--json", p.to_str().unwrap()], &[], dir.path());
    let remote = pocket(&["inspect", "--json", "--no-cache", &u], &[], dir.path());
    assert_eq!((local.code, remote.code), (2, 2), "{}", remote.err);
    let same = |d: J| {
        inspect_core(d)
            .to_string()
            .replace(p.to_str().unwrap(), "FILE")
            .replace(&u, "FILE")
    };
    let (l, r) = (same(local.json()), same(remote.json()));
    assert!(
        r.contains("problems") && r.contains("tensor_past_end"),
        "{r}"
    );
    assert_eq!(r, l);
}

/// The zoo's files (scripts/fetch-models.sh): Qwen2.5 1.5B Q4_K_M (a 5.95 MB header), nomic-embed
/// F16 and llama.cpp's 19 vocabulary-only files (Llama 3's header is 7.8 MB, gemma-4's 15.8 MB).
fn zoo_files() -> Vec<PathBuf> {
    let vocab = common::zoo("vocab");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&vocab)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    v.sort();
    assert_eq!(v.len(), 19, "{v:?}");
    let mut files = vec![common::zoo("qwen"), common::zoo("nomic")];
    files.extend(v);
    files
}

/// A verify document's checks, leaving out the data checks (numbers, all-zero, magnitude): over
/// HTTP they see only the sampled range.
fn header_checks(d: &J) -> Vec<J> {
    d["models"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !["numbers", "all-zero", "magnitude"].contains(&c["check"].as_str().unwrap()))
        .cloned()
        .collect()
}

#[test]
fn zoo_headers_over_http_equal_their_local_readings() {
    let files = zoo_files();
    let s = serve_files(&files, Mode::default());
    let cache = tmp();
    let (first, min_step) = (4u64 << 20, 2u64 << 20);
    for f in &files {
        let u = url(&s, f);
        let name = f.file_name().unwrap().to_string_lossy();
        let path = f.to_str().unwrap();
        let local = pocket(&["inspect", "--json", path], &[], cache.path());
        assert_eq!(local.code, 0, "{name}: {}", local.err);
        let remote = pocket(&["inspect", "--json", "--no-cache", &u], &[], cache.path());
        assert_eq!(remote.code, 0, "{name}: {}", remote.err);
        let r = remote.json();
        assert_eq!(
            inspect_core(r.clone()),
            inspect_core(local.json()),
            "{name}"
        );
        let header = r["tensor_data_offset"].as_u64().unwrap();
        let size = r["file_size"].as_u64().unwrap();
        let fetched = r["remote"]["bytes_fetched"].as_u64().unwrap();
        eprintln!("{name}: header {header} bytes, fetched {fetched} of {size}");
        assert!(
            fetched >= header.min(size)
                && fetched <= size.min(first.max(header + step(header, min_step))),
            "{name}: fetched {fetched} for a {header}-byte header"
        );

        // verify: every header check and the device verdict as on the local file; the numbers
        // check covers one sampled MiB at most.
        let local = pocket(
            &["verify", "--json", "--device", "pixel-8", path],
            &[],
            cache.path(),
        );
        let remote = pocket(
            &["verify", "--json", "--device", "pixel-8", "--no-cache", &u],
            &[],
            cache.path(),
        );
        assert_eq!(remote.code, local.code, "{name}: {}", remote.err);
        let (rj, lj) = (remote.json(), local.json());
        assert!(header_checks(&lj).len() >= 3, "{name}: {lj:#}");
        assert_eq!(header_checks(&rj), header_checks(&lj), "{name}");
        assert_eq!(
            rj["models"][0]["device"], lj["models"][0]["device"],
            "{name}"
        );
        let total = rj["models"][0]["remote"]["bytes_fetched"].as_u64().unwrap();
        assert!(
            total <= size.min(first.max(header + step(header, min_step)) + (1 << 20)),
            "{name}: verify fetched {total} for a {header}-byte header"
        );
    }
}

/// `-v` lists every request made: the range asked, the answer, the bytes; as many as `--json` counts.
#[test]
fn verbose_lists_every_request() {
    let f = common::testdata("tiny-llama-f16.gguf");
    let s = serve_files(std::slice::from_ref(&f), Mode::default());
    let u = url(&s, &f);
    let cache = tmp();
    let small = ["--first-read", "4096", "--min-step", "4096"];
    let r = pocket(
        &[&["-v", "inspect", "--json"][..], &small, &[&u]].concat(),
        &[],
        cache.path(),
    );
    assert_eq!(r.code, 0, "{}", r.err);
    let n = r.json()["remote"]["files"][0]["requests"].as_u64().unwrap();
    assert!(n > 1, "{n}");
    let lines: Vec<&str> = r
        .err
        .lines()
        .filter(|l| l.starts_with(&format!("pocket: GET {u} bytes=")))
        .collect();
    assert_eq!(lines.len() as u64, n, "{}", r.err);
    assert!(
        lines[0].starts_with(&format!("pocket: GET {u} bytes=0-4095: 206, 4.00 KiB in ")),
        "{}",
        r.err
    );
    assert_eq!(s.log().len() as u64, n);
    // The second run: the header from the cache (304), said so.
    let r = pocket(&["-v", "verify", &u], &[], cache.path());
    assert!(r.err.contains("304 (header from the cache)"), "{}", r.err);
    // Without -v, no request lines.
    let r = pocket(&["inspect", "--no-cache", &u], &[], cache.path());
    assert!(!r.err.contains("pocket: GET"), "{}", r.err);
}
