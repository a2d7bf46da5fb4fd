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
    /// Set (or add) keys: KEY VALUE, or many at once with --from-json; gguf-new-metadata's
    /// --chat-template-config and --special-token too.
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
        /// The chat template(s) of a Hugging Face tokenizer_config.json, as gguf-new-metadata sets
        /// them (tokenizer.chat_template, and tokenizer.chat_template.NAME for named ones).
        #[arg(long, value_name = "JSON", conflicts_with_all = ["key", "value", "value_file"])]
        chat_template_config: Option<PathBuf>,
        /// TYPE TEXT: the special token (bos, eos, eot, unknown, padding, mask, ...: gguf-py's names) is
        /// the vocabulary's token TEXT (its first), as gguf-new-metadata --special-token (repeatable).
        #[arg(long, num_args = 2, value_names = ["TYPE", "TEXT"], conflicts_with_all = ["key", "value", "value_file"])]
        special_token: Vec<String>,
        /// TYPE ID: the special token is token ID, as gguf-new-metadata --special-token-by-id.
        #[arg(long, num_args = 2, value_names = ["TYPE", "ID"], conflicts_with_all = ["key", "value", "value_file"])]
        special_token_by_id: Vec<String>,
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
    /// With -o: replace OUT if it exists (a symlink is replaced itself, not the file it points to).
    #[arg(long, requires = "output")]
    force: bool,
    /// Edit FILE even when other names share it: through a symlink (the file it points to is edited)
    /// or under several hard links (all of them see the edit). Refused without it.
    #[arg(long, conflicts_with = "output")]
    follow: bool,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// `meta get`: its output is a value, passed to a pipe exactly.
    pub fn is_get(&self) -> bool {
        matches!(self.op, Op::Get { .. })
    }
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
            chat_template_config,
            special_token,
            special_token_by_id,
            w,
        } => {
            if let Some(p) = fj {
                let target = w.output.as_deref().unwrap_or(file);
                if !w.dry_run && (p == target || pocket::fsio::same_file(p, target)) {
                    return Err(anyhow!(
                        "{}: is also the input of --from-json: refusing to write over it",
                        target.display()
                    )
                    .into());
                }
            }
            if let (Some(o), false) = (&w.output, w.dry_run) {
                crate::check_output(o, w.force, &[("the input", file)])?;
            }
            let edits = {
                let f = GgufFile::open(file).with_context(|| file.display().to_string())?;
                let g = f.gguf().with_context(|| file.display().to_string())?;
                let conveniences = chat_template_config.is_some()
                    || !special_token.is_empty()
                    || !special_token_by_id.is_empty();
                if let Some(p) = fj {
                    edits_from_json(&g, p)?
                } else if conveniences {
                    let mut e = Vec::new();
                    if let Some(p) = chat_template_config {
                        e.extend(chat_template_edits(p)?);
                    }
                    e.extend(special_token_edits(&g, special_token, special_token_by_id)?);
                    e
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
            if let (Some(o), false) = (&w.output, w.dry_run) {
                crate::check_output(o, w.force, &[("the input", file)])?;
            }
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

fn set(key: impl Into<String>, v: J, spec: TypeSpec) -> Result<Edit, Failure> {
    let key = key.into();
    let value = from_json(&key, &v, Some(spec))?;
    Ok(Edit::Set { key, value })
}

/// gguf-py's `add_chat_template` for a tokenizer_config.json's "chat_template": a string, or a list
/// of {name, template} (names reduced to letters, digits and '_'; "default" is the main template).
fn chat_template_edits(path: &Path) -> Result<Vec<Edit>, Failure> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| name.clone())?;
    let doc: J = serde_json::from_str(&text).with_context(|| name.clone())?;
    let str_spec = TypeSpec::Scalar(pocket::ValueType::String);
    let mut edits = Vec::new();
    let default = match doc.get("chat_template") {
        Some(J::String(s)) => Some(s.clone()),
        Some(J::Array(choices)) => {
            let mut default = None;
            let mut names = Vec::new();
            for c in choices {
                let n: String = c
                    .get("name")
                    .and_then(J::as_str)
                    .unwrap_or("")
                    .chars()
                    .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '_' })
                    .collect();
                let Some(t) = c.get("template").and_then(J::as_str) else {
                    continue;
                };
                if n.is_empty() {
                    continue;
                }
                if n == "default" {
                    default = Some(t.to_string());
                } else if !names.contains(&n) {
                    edits.push(set(
                        format!("tokenizer.chat_template.{n}"),
                        J::String(t.into()),
                        str_spec,
                    )?);
                    names.push(n);
                }
            }
            if !names.is_empty() {
                edits.push(set(
                    "tokenizer.chat_templates",
                    J::from(names),
                    TypeSpec::Array(Some(pocket::ValueType::String)),
                )?);
            }
            default
        }
        _ => {
            return Err(anyhow!(
                "{name}: no \"chat_template\" (a string or a list of {{name, template}})"
            )
            .into())
        }
    };
    if let Some(t) = default {
        edits.push(set("tokenizer.chat_template", J::String(t), str_spec)?);
    }
    Ok(edits)
}

/// gguf-new-metadata's special-token names: gguf-py's `tokenizer.ggml.NAME_token_id` keys.
const SPECIAL: [&str; 17] = [
    "bos",
    "eos",
    "eot",
    "eom",
    "unknown",
    "seperator",
    "padding",
    "mask",
    "fim_pre",
    "fim_suf",
    "fim_mid",
    "fim_pad",
    "fim_rep",
    "fim_sep",
    "prefix",
    "suffix",
    "middle",
];

/// gguf-new-metadata's --special-token TYPE TEXT (the token whose text is TEXT) and
/// --special-token-by-id TYPE ID: tokenizer.ggml.TYPE_token_id.
fn special_token_edits(
    g: &Gguf<'_>,
    by_text: &[String],
    by_id: &[String],
) -> Result<Vec<Edit>, Failure> {
    let tokens = g.get("tokenizer.ggml.tokens").and_then(|v| v.as_array());
    let n_vocab = tokens.map_or(0, |t| t.len);
    let key = |ty: &str| -> Result<String, Failure> {
        if !SPECIAL.contains(&ty) {
            return Err(Failure::usage(format!(
                "special token type '{ty}': one of {}",
                SPECIAL.join(", ")
            )));
        }
        Ok(format!("tokenizer.ggml.{ty}_token_id"))
    };
    let u32_spec = TypeSpec::Scalar(pocket::ValueType::U32);
    let mut edits = Vec::new();
    for pair in by_text.chunks(2) {
        let (ty, text) = (&pair[0], &pair[1]);
        let k = key(ty)?;
        let tokens =
            tokens.ok_or_else(|| anyhow!("the file has no vocabulary (tokenizer.ggml.tokens)"))?;
        let id = tokens
            .strings()
            .position(|t| t == text)
            .ok_or_else(|| anyhow!("--special-token {ty}: no token {text:?} in the vocabulary"))?;
        edits.push(set(k, J::from(id), u32_spec)?);
    }
    for pair in by_id.chunks(2) {
        let (ty, id) = (&pair[0], &pair[1]);
        let k = key(ty)?;
        let id: u64 = id.parse().map_err(|_| {
            Failure::usage(format!(
                "--special-token-by-id {ty}: '{id}' is not a token id"
            ))
        })?;
        if id >= n_vocab {
            return Err(anyhow!(
                "--special-token-by-id {ty}: token {id} is past the vocabulary ({n_vocab} tokens)"
            )
            .into());
        }
        edits.push(set(k, J::from(id), u32_spec)?);
    }
    Ok(edits)
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
        follow: w.follow,
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
