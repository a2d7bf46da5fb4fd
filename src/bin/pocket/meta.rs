//! `pocket meta get|set|rm`: read and edit metadata. Edits are written in place when the new header
//! fits in the old one's padding (only header bytes touched), else by an atomic rewrite.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, Context};
use pocket::edit::meta::{edit_with_progress, Change, Edit, MetaPlan, Options};
use pocket::edit::value::{from_json, parse_text, TypeSpec};
use pocket::gguf::json::{type_string, value_to_json};
use pocket::gguf::{Gguf, GgufFile, Value};
use serde_json::{json, Value as J};

use crate::fmt::{clip, table};
use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    op: Op,
}

#[derive(clap::Subcommand)]
enum Op {
    /// Print a key's value (exit 1 if the key is absent).
    Get {
        file: PathBuf,
        key: String,
        /// Print {"key", "type", "value"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set (or add) keys: KEY VALUE, or many at once with --from-json.
    Set {
        file: PathBuf,
        /// The key to set (not with --from-json).
        key: Option<String>,
        /// The value: text for scalars, JSON for arrays (not with --value-file or --from-json).
        #[arg(allow_hyphen_values = true)]
        value: Option<String>,
        /// Value type: u8 i8 u16 i16 u32 i32 u64 i64 f32 f64 bool str, array[T] (default: the key's
        /// current type, or string for a new key).
        #[arg(long = "type", value_name = "T")]
        ty: Option<String>,
        /// Take the value (a string, or JSON for arrays) from this file, e.g. a chat template.
        #[arg(long, value_name = "FILE", conflicts_with = "value")]
        value_file: Option<PathBuf>,
        /// A JSON object of keys to set: {"key": value} or {"key": {"type": T, "value": v}};
        /// null removes the key.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["key", "value", "value_file"])]
        from_json: Option<PathBuf>,
        #[command(flatten)]
        w: WriteArgs,
    },
    /// Remove keys.
    Rm {
        file: PathBuf,
        #[arg(required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        w: WriteArgs,
    },
}

#[derive(clap::Args)]
struct WriteArgs {
    /// Show what would change and how it would be written, and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rewrite the whole file atomically even when the header fits in place.
    #[arg(long)]
    no_in_place: bool,
    /// Write the edited file here instead of editing FILE.
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    match &a.op {
        Op::Get { file, key, json } => get(file, key, *json, out),
        Op::Set {
            file,
            key,
            value,
            ty,
            value_file,
            from_json: fj,
            w,
        } => {
            let edits = {
                let f = GgufFile::open(file).with_context(|| file.display().to_string())?;
                let g = f.gguf().with_context(|| file.display().to_string())?;
                if let Some(p) = fj {
                    edits_from_json(&g, p)?
                } else {
                    let key = key
                        .as_deref()
                        .ok_or_else(|| anyhow!("give KEY VALUE, or --from-json FILE"))?;
                    let text = match (value, value_file) {
                        (Some(v), None) => v.clone(),
                        (None, Some(p)) => std::fs::read_to_string(p)
                            .with_context(|| format!("--value-file {}", p.display()))?,
                        _ => return Err(anyhow!("give a VALUE or --value-file").into()),
                    };
                    let spec = match ty {
                        Some(t) => {
                            TypeSpec::parse(t).ok_or_else(|| anyhow!("--type {t}: unknown type"))?
                        }
                        None => g
                            .get(key)
                            .map(TypeSpec::of)
                            .unwrap_or(TypeSpec::Scalar(pocket::ValueType::String)),
                    };
                    vec![Edit::Set {
                        key: key.to_string(),
                        value: parse_text(key, &text, spec)?,
                    }]
                }
            };
            apply(file, &edits, w, out)
        }
        Op::Rm { file, keys, w } => {
            let edits: Vec<Edit> = keys
                .iter()
                .map(|k| Edit::Remove { key: k.clone() })
                .collect();
            apply(file, &edits, w, out)
        }
    }
}

fn get(file: &Path, key: &str, as_json: bool, out: &mut dyn Write) -> Result<u8, Failure> {
    let f = GgufFile::open(file).with_context(|| file.display().to_string())?;
    let g = f.gguf().with_context(|| file.display().to_string())?;
    let Some(v) = g.get(key) else {
        if as_json {
            writeln!(out, "{}", json!({"key": key, "found": false}))?;
        } else {
            eprintln!("pocket: {}: no key '{key}'", file.display());
        }
        return Ok(1);
    };
    if as_json {
        let doc =
            json!({"key": key, "found": true, "type": type_string(v), "value": value_to_json(v)});
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        match v {
            Value::String(s) => writeln!(out, "{s}")?,
            other => writeln!(out, "{}", value_to_json(other))?,
        }
    }
    Ok(0)
}

fn edits_from_json(g: &Gguf<'_>, path: &Path) -> Result<Vec<Edit>, Failure> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let doc: J = serde_json::from_str(&text).with_context(|| path.display().to_string())?;
    let obj = doc
        .as_object()
        .ok_or_else(|| anyhow!("{}: expected a JSON object of keys", path.display()))?;
    let mut edits = Vec::new();
    for (key, v) in obj {
        let edit = match v {
            J::Null => Edit::Remove { key: key.clone() },
            J::Object(o) => {
                let t = o.get("type").and_then(J::as_str).ok_or_else(|| {
                    anyhow!(
                        "{}: key '{key}': an object needs \"type\" and \"value\"",
                        path.display()
                    )
                })?;
                let spec = TypeSpec::parse(t)
                    .ok_or_else(|| anyhow!("{}: key '{key}': unknown type {t}", path.display()))?;
                let val = o
                    .get("value")
                    .ok_or_else(|| anyhow!("{}: key '{key}': no \"value\"", path.display()))?;
                Edit::Set {
                    key: key.clone(),
                    value: from_json(key, val, Some(spec))?,
                }
            }
            other => {
                let spec = g.get(key).map(TypeSpec::of);
                Edit::Set {
                    key: key.clone(),
                    value: from_json(key, other, spec)?,
                }
            }
        };
        edits.push(edit);
    }
    Ok(edits)
}

fn apply(file: &Path, edits: &[Edit], w: &WriteArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let opts = Options {
        dry_run: w.dry_run,
        no_in_place: w.no_in_place,
        output: w.output.clone(),
    };
    let t0 = Instant::now();
    let size = std::fs::metadata(file).map_or(0, |m| m.len());
    let pb = crate::progress::bytes_bar(size, "rewrite");
    let plan = edit_with_progress(file, edits, &opts, &mut |n| pb.inc(n));
    pb.finish_and_clear();
    let plan = plan.with_context(|| file.display().to_string())?;
    let secs = t0.elapsed().as_secs_f64();
    if w.json {
        serde_json::to_writer_pretty(&mut *out, &plan_json(file, &plan, w.dry_run, secs))?;
        writeln!(out)?;
    } else {
        print_plan(&plan, w.dry_run, secs, out)?;
    }
    Ok(0)
}

fn change_json(c: &Change) -> J {
    json!({"key": c.key, "action": c.action, "old_type": c.old_type, "old": c.old, "new_type": c.new_type, "new": c.new})
}

fn plan_json(file: &Path, p: &MetaPlan, dry_run: bool, secs: f64) -> J {
    json!({
        "file": file.display().to_string(),
        "output": p.output.display().to_string(),
        "dry_run": dry_run,
        "mode": p.mode.name(),
        "reason": p.reason,
        "changes": p.changes.iter().map(change_json).collect::<Vec<_>>(),
        "alignment": p.alignment,
        "old_header_end": p.old_header_end,
        "new_header_end": p.new_header_end,
        "old_data_offset": p.old_data_offset,
        "new_data_offset": p.new_data_offset,
        "write_offset": p.write_offset,
        "bytes_written": p.bytes_written,
        "seconds": secs,
    })
}

fn show(t: &Option<String>, v: &Option<J>) -> String {
    match (t, v) {
        (Some(t), Some(J::String(s))) => format!("{} ({t})", clip(s, 60)),
        (Some(t), Some(J::Array(a))) if a.len() > 8 => format!("[{} elements] ({t})", a.len()),
        (Some(t), Some(v)) => format!("{} ({t})", clip(&v.to_string(), 60)),
        _ => "—".to_string(),
    }
}

fn print_plan(p: &MetaPlan, dry_run: bool, secs: f64, out: &mut dyn Write) -> std::io::Result<()> {
    let mut t = table(&["key", "change", "old", "new"]);
    for c in &p.changes {
        t.add_row(vec![
            c.key.clone(),
            c.action.to_string(),
            show(&c.old_type, &c.old),
            show(&c.new_type, &c.new),
        ]);
    }
    writeln!(out, "{t}")?;
    let verb = if dry_run { "would be" } else { "was" };
    match p.mode {
        pocket::edit::meta::Mode::Unchanged => writeln!(out, "nothing to write: {}", p.reason)?,
        pocket::edit::meta::Mode::InPlace => writeln!(
            out,
            "{}: {verb} edited in place, {} at offset {} ({}); no tensor byte touched",
            p.output.display(),
            crate::fmt::plural(p.bytes_written, "header byte", "header bytes"),
            p.write_offset,
            p.reason
        )?,
        pocket::edit::meta::Mode::Rewrite => writeln!(
            out,
            "{}: {verb} rewritten whole ({} bytes) through a temporary file: {}",
            p.output.display(),
            p.bytes_written,
            p.reason
        )?,
    }
    if !dry_run {
        writeln!(out, "took {:.3} s", secs)?;
    }
    Ok(())
}
