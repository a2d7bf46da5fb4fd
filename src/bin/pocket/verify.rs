//! `pocket verify`: the checks of `pocket::verify` as a table (or one JSON document), device fit,
//! and manifests. Exit 0 when every check passes (warnings allowed unless `--strict`), 1 when one
//! fails, 2 for usage or I/O errors.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use pocket::fsio::AtomicFile;
use pocket::verify::calibration::Basis;
use pocket::verify::device::{self, DeviceEstimate, DeviceProfile};
use pocket::verify::{verify_shards, verify_with_progress, Options, Report, Status};
use serde_json::{json, Value as J};

use crate::fmt::{bytes, table};
use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// GGUF files (for a split model, its first shard: the others are found and checked as a set):
    /// paths, https:// or http:// URLs, or Hugging Face hub files hf://OWNER/REPO/FILE[@REVISION]
    /// (a remote file's header is fetched by range requests, and its tensor data only as --sample).
    #[arg(required_unless_present = "list_devices")]
    files: Vec<PathBuf>,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    json: bool,
    /// Treat warnings as failures (exit 1).
    #[arg(long)]
    strict: bool,
    /// The file holds only the header (the first megabytes of a download): run every check that
    /// needs no tensor data.
    #[arg(long)]
    header_only: bool,
    /// Check this file alone even if it is one shard of a split model.
    #[arg(long)]
    single: bool,
    /// A device to check fit, speed and energy on: a built-in id (see --list-devices), a TOML/JSON
    /// profile file, or `all`: one table with a row per built-in profile.
    #[arg(long, value_name = "NAME|FILE")]
    device: Option<String>,
    /// List the built-in device profiles.
    #[arg(long)]
    list_devices: bool,
    /// Context length for the device estimate.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    ctx: u64,
    /// Check the files against a manifest (written by --write-manifest, or llama-gguf-hash's).
    #[arg(long, value_name = "M")]
    manifest: Option<PathBuf>,
    /// Write a manifest of the files: every tensor, every metadata key, header, size, per shard.
    #[arg(long, value_name = "M")]
    write_manifest: Option<PathBuf>,
    /// Replace the --write-manifest file if it exists.
    #[arg(long)]
    force: bool,
    /// Threads for the data pass (default: all cores; at most 1024).
    #[arg(long, default_value_t = 0, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=crate::MAX_THREADS as u64))]
    threads: usize,
    /// For a URL: bytes of tensor data to fetch for the numbers check, as one range holding the most
    /// whole tensors (the report names them). 0: only those the header's ranges hold.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    sample: u64,
    #[command(flatten)]
    remote: crate::remote::RemoteArgs,
}

/// A device profile named by `flag` (`--device`, `--fit`): a built-in id or a profile file.
pub(crate) fn load_device(flag: &str, spec: &str) -> Result<DeviceProfile, Failure> {
    let p = Path::new(spec);
    if p.is_file() {
        let text = std::fs::read_to_string(p).with_context(|| format!("{flag} {spec}"))?;
        let id = p
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "custom".into());
        return device::from_text(&text, &id)
            .map_err(|e| Failure::from(anyhow!("{flag} {spec}: {e}")));
    }
    device::find(spec).ok_or_else(|| {
        let ids: Vec<String> = device::builtin().into_iter().map(|d| d.id).collect();
        Failure::usage(format!(
            "{flag} {spec}: no such built-in profile and no such file (built-in: {})",
            ids.join(", ")
        ))
    })
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    if a.list_devices {
        return list_devices(a, out);
    }
    if let Some(m) = &a.write_manifest {
        let aux: Vec<(&str, &Path)> = a
            .manifest
            .iter()
            .map(|p| ("the input of --manifest", p.as_path()))
            .chain(a.files.iter().map(|p| ("a file verified", p.as_path())))
            .collect();
        crate::check_output(m, a.force, &aux)?;
    }
    let all_devices = a.device.as_deref() == Some("all");
    let device = match a.device.as_deref() {
        Some("all") | None => None,
        Some(d) => Some(load_device("--device", d)?),
    };
    let manifest = match &a.manifest {
        Some(m) => Some(
            std::fs::read_to_string(m).with_context(|| format!("--manifest {}", m.display()))?,
        ),
        None => None,
    };
    let opts = Options {
        header_only: a.header_only,
        single: a.single,
        hash: a.write_manifest.is_some() || a.manifest.is_some(),
        whole_hash: a.write_manifest.is_some(),
        threads: a.threads,
        device,
        all_devices,
        n_ctx: Some(a.ctx),
        manifest,
    };
    let mut reports: Vec<Report> = Vec::new();
    let mut fetched = Vec::new();
    // `verify *.gguf` names every shard of a split set: the set is checked whole from its first
    // shard, so the others are not checked again on their own (which would fail them as "not the
    // first shard").
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    for f in &a.files {
        let cf = canon(f);
        if reports
            .iter()
            .any(|r| r.files.len() > 1 && r.files.iter().any(|p| canon(p) == cf))
        {
            if !a.json {
                crate::fmt::warn(&format!(
                    "{}: checked above as a shard of its split set",
                    f.display()
                ));
            }
            continue;
        }
        let short = f
            .file_name()
            .map_or(f.display().to_string(), |n| n.to_string_lossy().to_string());
        let bar =
            crate::progress::bytes_bar(0, &format!("verifying {}", crate::fmt::clip(&short, 24)));
        let progress = |done, total| crate::progress::update(&bar, done, total);
        let name = f.to_string_lossy();
        let r = if pocket::remote::is_remote(&name) {
            if a.write_manifest.is_some() {
                return Err(Failure::from(anyhow!("--write-manifest hashes all tensor data, which pocket does not download from {name}: download the file first")));
            }
            let session = a.remote.session()?;
            let open = |p: &str| session.open(p, a.sample).map_err(std::io::Error::other);
            let r = session
                .open(&name, a.sample)
                .map_err(|e| (e.kind(), e.to_string()))
                .and_then(|first| {
                    verify_shards(first, &open, &opts, &progress).map_err(|e| ("io", e.to_string()))
                });
            let st = session.stats();
            crate::remote::log_requests(&st);
            fetched.push(Some(st));
            r
        } else {
            fetched.push(None);
            verify_with_progress(f, &opts, &progress).map_err(|e| ("io", e.to_string()))
        };
        bar.finish_and_clear();
        match r {
            Ok(r) => reports.push(r),
            Err((kind, e)) => {
                return Err(Failure::from(anyhow!(e))
                    .kind(kind)
                    .fact("file", f.display().to_string())
                    .fact("offset", J::Null));
            }
        }
    }
    if let Some(m) = &a.write_manifest {
        let inputs: Vec<&Path> = reports
            .iter()
            .flat_map(|r| r.files.iter().map(|p| p.as_path()))
            .collect();
        let mut text = String::from(
            "# pocket manifest: sha256 of each tensor's data and of all of it per file (as llama-gguf-hash --sha256),\n# of the header (@header) and of each metadata record (@kv:KEY); size of each file in bytes\n",
        );
        for r in &reports {
            for e in &r.manifest {
                text.push_str(&e.line());
                text.push('\n');
            }
        }
        let mut f = AtomicFile::create(m, &inputs, Some(text.len() as u64))
            .with_context(|| format!("--write-manifest {}", m.display()))?;
        f.write_all(text.as_bytes())?;
        f.commit()
            .with_context(|| format!("--write-manifest {}", m.display()))?;
    }
    let worst = reports
        .iter()
        .map(|r| r.worst())
        .max()
        .unwrap_or(Status::Pass);
    if a.json {
        let doc = json!({
            "status": worst.name(),
            "models": reports.iter().zip(&fetched).map(|(r, st)| {
                let mut m = to_json(r);
                if let Some(st) = st {
                    m["remote"] = crate::remote::stats_json(st);
                }
                m
            }).collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        for (r, st) in reports.iter().zip(&fetched) {
            if let Some(st) = st {
                writeln!(out, "{}", crate::remote::stats_line(st))?;
            }
            print_human(r, out)?;
        }
    }
    Ok(match worst {
        Status::Fail => 1,
        Status::Warn if a.strict => 1,
        _ => 0,
    })
}

fn list_devices(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let all = device::builtin();
    if a.json {
        let v: Vec<J> = all.iter().map(device_json).collect();
        serde_json::to_writer_pretty(&mut *out, &json!({ "devices": v }))?;
        writeln!(out)?;
        return Ok(0);
    }
    // On a narrow terminal the sources (long citations) are left to --wide and --json.
    let narrow = crate::fmt::look().width.is_some_and(|w| w < 160);
    let mut h = vec!["id", "device", "RAM", "app may use", "bandwidth", "battery"];
    if !narrow {
        h.push("source");
    }
    let mut t = table(&h);
    t.min_width(0, 24).max_lines(2);
    for d in &all {
        let mut row = vec![
            d.id.clone(),
            d.name.clone(),
            bytes(d.ram_bytes),
            bytes(d.app_bytes),
            format!("{:.1} GB/s", d.bandwidth / 1e9),
            d.battery_joules.map_or_else(
                || {
                    if d.platform == device::Platform::Linux {
                        "mains".to_string()
                    } else {
                        "—".to_string()
                    }
                },
                |j| {
                    if narrow {
                        format!("{:.1} Wh", j / 3600.0)
                    } else {
                        format!("{:.1} Wh ({:.0} kJ)", j / 3600.0, j / 1e3)
                    }
                },
            ),
        ];
        if !narrow {
            row.push(d.source.clone());
        }
        t.add_row(row);
    }
    writeln!(out, "{t}")?;
    if narrow {
        writeln!(out, "(sources of the figures: --wide or --json)")?;
    }
    Ok(0)
}

fn device_json(d: &DeviceProfile) -> J {
    json!({
        "id": d.id, "name": d.name, "soc": d.soc, "platform": d.platform.name(),
        "ram_bytes": d.ram_bytes, "app_bytes": d.app_bytes,
        "bandwidth_bytes_per_s": d.bandwidth, "battery_joules": d.battery_joules, "source": d.source,
    })
}

fn basis_json(b: Basis) -> J {
    match b {
        Basis::PhoneBackendClass(n) => {
            json!({"fitted_to": "phone, backend and weight class", "measurements": n})
        }
        Basis::PhoneBackend(n) => json!({"fitted_to": "phone and backend", "measurements": n}),
        Basis::Backend(n) => json!({"fitted_to": "backend on other phones", "measurements": n}),
        Basis::Prior => json!({"fitted_to": "prior", "measurements": 0}),
    }
}

fn basis_short(b: Basis) -> String {
    match b {
        Basis::PhoneBackendClass(n) => format!("phone+type ({n})"),
        Basis::PhoneBackend(n) => format!("phone ({n})"),
        Basis::Backend(n) => format!("other phones ({n})"),
        Basis::Prior => "prior".to_string(),
    }
}

fn estimate_json(e: &DeviceEstimate) -> J {
    json!({
        "device": device_json(&e.device),
        "n_ctx": e.memory.n_ctx,
        "weights_bytes": e.memory.weights_bytes,
        "kv_bytes": e.memory.kv_bytes,
        "compute_bytes": e.compute_bytes,
        "output_bytes": e.output_bytes,
        "repacked_bytes": e.repacked_bytes,
        "total_bytes": e.total_bytes,
        "verdict": e.verdict.name(),
        "margin_bytes": e.device.app_bytes as i128 - e.total_bytes as i128,
        "bytes_per_token": e.bytes_per_token,
        "backend": e.backend,
        "weight_class": e.class.name(),
        "bandwidth_share": e.efficiency,
        "speed_basis": basis_json(e.basis),
        "tokens_per_second": e.tokens_per_second,
        "joules_per_token": e.joules_per_token,
        "battery_hours_at_10_tokens_per_s": e.battery_hours,
        "notes": e.notes,
    })
}

fn to_json(r: &Report) -> J {
    let checks: Vec<J> = r
        .checks
        .iter()
        .map(|c| json!({"check": c.check, "status": c.status.name(), "message": c.message, "location": c.location}))
        .collect();
    let types: Vec<J> = r
        .types
        .iter()
        .map(|(n, c, s)| {
            let mut m = serde_json::Map::new();
            for (b, ok) in pocket::verify::backends::BACKENDS.iter().zip(s) {
                m.insert(b.to_string(), J::Bool(*ok));
            }
            json!({"type": n, "tensors": c, "backends": m})
        })
        .collect();
    let dev = r.device.as_ref().map(estimate_json);
    let devs: Vec<J> = r.devices.iter().map(estimate_json).collect();
    json!({
        "files": r.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "status": r.worst().name(),
        "architecture": r.architecture,
        "n_tensors": r.n_tensors,
        "n_params": r.n_params,
        "tensor_bytes": r.tensor_bytes,
        "checks": checks,
        "types": types,
        "device": dev,
        "devices": devs,
    })
}

fn print_human(r: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let files: Vec<String> = r.files.iter().map(|p| p.display().to_string()).collect();
    writeln!(
        out,
        "{}",
        crate::fmt::wrap(
            &format!(
                "{} — {}, {} tensors, {}",
                files.join(" + "),
                r.architecture.as_deref().unwrap_or("?"),
                r.n_tensors,
                bytes(r.tensor_bytes)
            ),
            2
        )
    )?;
    let mut t = table(&["check", "status", "what", "where"]);
    t.status_column(1)
        .max_lines(4)
        .min_width(0, 12)
        .min_width(2, 44);
    // Below 120 columns a "where" column gets a handful of characters and breaks every key
    // mid-word: the place then follows the message instead.
    let fold_where = crate::fmt::look().width.is_some_and(|w| w < 120);
    for c in &r.checks {
        let status = match c.status {
            Status::Pass => "pass",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        let (what, place) = match (&c.location, fold_where) {
            (Some(l), true) => (format!("{} (at {l})", c.message), String::new()),
            (l, _) => (c.message.clone(), l.clone().unwrap_or_default()),
        };
        t.add_row(vec![c.check.to_string(), status.to_string(), what, place]);
    }
    writeln!(out, "{t}")?;
    if !r.types.is_empty() {
        let mut h = vec!["type", "matrices"];
        h.extend(pocket::verify::backends::BACKENDS.iter().copied());
        let mut t = table(&h);
        t.max_lines(2);
        for (n, c, s) in &r.types {
            let mut row = vec![n.clone(), c.to_string()];
            row.extend(
                s.iter()
                    .map(|ok| if *ok { "yes" } else { "CPU" }.to_string()),
            );
            t.add_row(row);
        }
        writeln!(out, "{t}")?;
        if r.types.iter().any(|(_, _, s)| s.iter().any(|ok| !ok)) {
            writeln!(
                out,
                "{}",
                crate::fmt::wrap(
                    "CPU: that backend has no kernel for the type; its matrices fall back to the CPU",
                    0
                )
            )?;
        }
    }
    if let Some(e) = &r.device {
        let mut t = table(&[&e.device.name, e.verdict.name()]);
        t.max_lines(3);
        t.add_row(vec!["weights".to_string(), bytes(e.memory.weights_bytes)]);
        t.add_row(vec![
            format!("KV cache (f16, context {})", e.memory.n_ctx),
            bytes(e.memory.kv_bytes),
        ]);
        t.add_row(vec!["compute buffer".to_string(), bytes(e.compute_bytes)]);
        t.add_row(vec!["output buffer".to_string(), bytes(e.output_bytes)]);
        if e.repacked_bytes > 0 {
            t.add_row(vec![
                "repacked weights (CPU backend)".to_string(),
                bytes(e.repacked_bytes),
            ]);
        }
        t.add_row(vec!["total".to_string(), bytes(e.total_bytes)]);
        t.add_row(vec!["app may use".to_string(), bytes(e.device.app_bytes)]);
        t.add_row(vec![
            format!("decode, {} (burst)", e.backend),
            format!(
                "~{:.1} tokens/s ({} per token at {:.0} GB/s × {:.0}%, {})",
                e.tokens_per_second,
                bytes(e.bytes_per_token),
                e.device.bandwidth / 1e9,
                e.efficiency * 100.0,
                basis_short(e.basis)
            ),
        ]);
        t.add_row(vec![
            "energy".to_string(),
            format!(
                "~{:.3} J/token{}",
                e.joules_per_token,
                e.battery_hours.map_or(String::new(), |h| format!(
                    ", ~{h:.1} h of generation at 10 tokens/s on a full battery"
                ))
            ),
        ]);
        writeln!(out, "{t}")?;
        for n in &e.notes {
            writeln!(out, "{}", crate::fmt::wrap(&format!("note: {n}"), 6))?;
        }
    }
    if !r.devices.is_empty() {
        print_devices(r, out)?;
    }
    let count = |s: Status| r.checks.iter().filter(|c| c.status == s).count();
    writeln!(
        out,
        "{}: {} pass, {} warn, {} fail\n",
        crate::fmt::paint_status(r.worst().name()),
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail)
    )
}

/// `--device all`: a row per built-in profile.
fn print_devices(r: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let ctx = r.devices.first().map_or(0, |e| e.memory.n_ctx);
    let mut t = table(&[
        "device",
        "fits",
        "needs / app may use",
        "tokens/s (burst)",
        "J/token",
        "hours at 10 tok/s",
        "speed fitted to",
    ]);
    t.min_width(0, 16).max_lines(2);
    for e in &r.devices {
        t.add_row(vec![
            e.device.name.clone(),
            e.verdict.name().to_string(),
            format!("{} / {}", bytes(e.total_bytes), bytes(e.device.app_bytes)),
            format!("~{:.1}", e.tokens_per_second),
            format!("{:.3}", e.joules_per_token),
            e.battery_hours
                .map_or("—".to_string(), |h| format!("{h:.1}")),
            basis_short(e.basis),
        ]);
    }
    writeln!(out, "{t}")?;
    writeln!(
        out,
        "{}",
        crate::fmt::wrap(
            &format!(
                "context {ctx}; Android rows count llama.cpp's repacked CPU copies beside the mapped file; speeds are the bandwidth shares fitted to the published measurements in pocket's calibration table (README, \"Calibration\")"
            ),
            0
        )
    )
}
