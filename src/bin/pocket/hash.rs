//! `pocket hash`: per-tensor SHA-256 printed exactly as `llama-gguf-hash --sha256` prints them (so the
//! two outputs diff clean), and `--check MANIFEST` against a llama-gguf-hash (or pocket) manifest with
//! its wording. Exit codes follow pocket's rule, not llama-gguf-hash's: 0 verified, 1 a mismatch or
//! the manifest has no entry for the file, 2 the manifest cannot be read or holds no sha256 entry.

use std::io::Write;
use std::path::PathBuf;

use anyhow::anyhow;
use pocket::verify::manifest::{hex, parse};

use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// The GGUF file (each shard of a split model is hashed on its own, as llama-gguf-hash does).
    file: PathBuf,
    /// Check against a manifest written by `llama-gguf-hash --sha256` or `pocket verify --write-manifest`.
    #[arg(short = 'c', long, value_name = "MANIFEST")]
    check: Option<PathBuf>,
    /// Accepted for llama-gguf-hash compatibility (sha256 is the only hash pocket computes).
    #[arg(long)]
    sha256: bool,
    /// Only the whole-file line, no per-tensor lines.
    #[arg(long)]
    no_layer: bool,
    /// Threads (default: all cores; at most 1024).
    #[arg(long, default_value_t = 0, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=crate::MAX_THREADS as u64))]
    threads: usize,
    /// One JSON document: each tensor's hash, the file's, and with --check each one's verdict.
    #[arg(long)]
    json: bool,
}

#[derive(PartialEq)]
enum Res {
    NotFound,
    Mismatch,
    Ok,
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let fname = a.file.to_string_lossy().to_string();
    let manifest = match &a.check {
        None => None,
        Some(m) => {
            let text = std::fs::read_to_string(m).map_err(|e| {
                Failure::from(anyhow!("ERROR cannot open manifest {}: {e}", m.display())).kind("io")
            })?;
            let entries = parse(&text);
            let mut kinds: Vec<&str> = Vec::new();
            for k in ["sha256", "sha1", "xxh64", "uuid"] {
                if entries.iter().any(|e| e.kind == k) {
                    kinds.push(k);
                }
            }
            if !kinds.contains(&"sha256") {
                return Err(Failure::from(anyhow!(
                    "ERROR manifest does not have any sha256 entry in {} (pocket checks sha256 only)",
                    m.display()
                ))
                .kind("invalid_manifest"));
            }
            if !a.json {
                write!(out, "manifest  {}", m.display())?;
                for k in &kinds {
                    write!(out, "  {k}")?;
                }
                writeln!(out)?;
            }
            Some(entries)
        }
    };
    // The manifest's sha256 entries by name (the first of a name, as llama-gguf-hash finds it):
    // a lookup per tensor, not a scan of the manifest per tensor.
    let by_name: Option<std::collections::HashMap<&str, &str>> = manifest.as_ref().map(|m| {
        let mut idx = std::collections::HashMap::new();
        for e in m.iter().filter(|e| e.kind == "sha256") {
            idx.entry(e.name.as_str()).or_insert(e.value.as_str());
        }
        idx
    });
    let verify = |name: &str, h: &str| -> Res {
        let Some(m) = &by_name else {
            return Res::NotFound;
        };
        match m.get(name) {
            None => Res::NotFound,
            Some(v) if *v == h => Res::Ok,
            Some(_) => Res::Mismatch,
        }
    };
    let (mut layer_in, mut layer_bad, mut model_in, mut model_bad) = (false, false, false, false);
    let mut records: Vec<serde_json::Value> = Vec::new();
    let json_out = a.json;
    let mut line = |out: &mut dyn Write, name: &str, h: &str, layer: bool| -> std::io::Result<()> {
        if json_out {
            let mut rec = serde_json::json!({"name": name, "sha256": h});
            if manifest.is_some() {
                let r = verify(name, h);
                let (inn, bad) = if layer {
                    (&mut layer_in, &mut layer_bad)
                } else {
                    (&mut model_in, &mut model_bad)
                };
                *inn |= r != Res::NotFound;
                *bad |= r == Res::Mismatch;
                rec["check"] = match r {
                    Res::NotFound => "not_found",
                    Res::Mismatch => "mismatch",
                    Res::Ok => "ok",
                }
                .into();
            }
            records.push(rec);
            return Ok(());
        }
        if manifest.is_some() {
            let r = verify(name, h);
            let (inn, bad) = if layer {
                (&mut layer_in, &mut layer_bad)
            } else {
                (&mut model_in, &mut model_bad)
            };
            *inn |= r != Res::NotFound;
            *bad |= r == Res::Mismatch;
            let word = match r {
                Res::NotFound => "Not Found",
                Res::Mismatch => "Mismatch",
                Res::Ok => "Ok",
            };
            writeln!(out, "{:<8}  {h}  {name}  -  {word}", "sha256")
        } else {
            writeln!(out, "{:<8}  {h}  {name}", "sha256")
        }
    };
    // Each tensor's line as its hash is made (a header may list a million tensors).
    let bar = crate::progress::bytes_bar(0, "hashing");
    let whole = pocket::verify::hash_file_each(
        &a.file,
        a.threads,
        &|d, t| crate::progress::update(&bar, d, t),
        &mut |n, h| match a.no_layer {
            true => Ok(()),
            false => line(out, &format!("{fname}:{n}"), &hex(&h), true),
        },
    );
    bar.finish_and_clear();
    let whole = whole?;
    line(out, &fname, &hex(&whole), false)?;
    let Some(_) = &manifest else {
        if a.json {
            let doc = serde_json::json!({"file": fname, "tensors": &records[..records.len() - 1],
                "sha256": hex(&whole)});
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)?;
        }
        return Ok(0);
    };
    // llama-gguf-hash's verdict (gguf_hash's manifest branch).
    let (word, code) = if !model_in {
        if !layer_in {
            ("Manifest Missing Entry", 1)
        } else if layer_bad {
            ("Failure", 1)
        } else {
            ("Success", 0)
        }
    } else if (layer_in && layer_bad) || model_bad {
        ("Failure", 1)
    } else {
        ("Success", 0)
    };
    let m = a
        .check
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if a.json {
        let doc = serde_json::json!({"file": fname, "tensors": &records[..records.len() - 1],
            "sha256": hex(&whole), "manifest": m,
            "whole_file_check": records.last().map(|r| r["check"].clone()),
            "result": word.to_lowercase().replace(' ', "_")});
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        return Ok(code);
    }
    writeln!(out, "\nVerification results for {m} - {word}")?;
    Ok(code)
}
