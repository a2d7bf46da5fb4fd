//! `pocket inspect`: what is in a GGUF file, for people (tables) or programs (`--json`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use pocket::gguf::json::{type_string, value_to_json};
use pocket::gguf::{Gguf, Model, Value};
use pocket::summary::{summarize, Summary};
use regex::Regex;
use serde_json::{json, Map, Value as J};

use crate::fmt::{bytes, clip, count, table};
use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// The GGUF file (for a split model, its first shard): a path, an https:// or http:// URL, or a
    /// Hugging Face hub file hf://OWNER/REPO/FILE[@REVISION] (only the header is fetched).
    file: PathBuf,
    /// Also list every tensor: name, type, shape, bytes, offset.
    #[arg(long)]
    tensors: bool,
    /// Show only keys and tensors whose names match this regular expression.
    #[arg(long, value_name = "REGEX")]
    filter: Option<String>,
    /// Memory needed to run the model at this context length (weights + f16 KV cache).
    #[arg(long, value_name = "N")]
    ctx: Option<u64>,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    json: bool,
    /// Read only this file, even if it is one shard of a split model.
    #[arg(long)]
    single: bool,
    /// With --json: every element of long arrays (the vocabulary...) instead of their length and
    /// first elements.
    #[arg(long)]
    full_arrays: bool,
    #[command(flatten)]
    remote: crate::remote::RemoteArgs,
}

/// Arrays longer than this are summarised in `--json` unless `--full-arrays`.
const JSON_ARRAY_MAX: u64 = 64;

pub fn run(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let filter = a
        .filter
        .as_deref()
        .map(Regex::new)
        .transpose()
        .context("--filter")?;
    let keep = |name: &str| filter.as_ref().is_none_or(|r| r.is_match(name));
    // A URL or hf:// name: its header (and each shard's) fetched by range requests.
    let name = a.file.to_string_lossy().into_owned();
    let session = match pocket::remote::is_remote(&name) {
        true => Some(a.remote.session()?),
        false => None,
    };
    let remote_shards = match &session {
        Some(s) => s.open_model(&name, a.single).map_err(|e| report(a, e))?,
        None => Vec::new(),
    };
    let model = match session {
        Some(_) => None,
        None if a.single => Some(Model::open_single(&a.file).map_err(|e| report(a, e))?),
        None => Some(Model::open(&a.file).map_err(|e| report(a, e))?),
    };
    // A file whose records read but which the validation pass refuses (llama.cpp would not load it)
    // is still shown: everything readable, then each problem, and exit 2.
    let (files, (shards, problems)): (Vec<String>, _) = match &model {
        Some(m) => (
            m.files
                .iter()
                .map(|f| f.path().display().to_string())
                .collect(),
            match m.ggufs() {
                Ok(s) => (s, Vec::new()),
                Err(e) => match m.ggufs_lenient() {
                    Some(v) => v,
                    None => return Err(report(a, e)),
                },
            },
        ),
        None => (
            remote_shards
                .iter()
                .map(|s| s.path.display().to_string())
                .collect(),
            match pocket::remote::ggufs(&remote_shards) {
                Ok(s) => (s, Vec::new()),
                Err(e) => match pocket::remote::ggufs_lenient(&remote_shards) {
                    Some(v) => v,
                    None => return Err(report(a, e)),
                },
            },
        ),
    };
    let fetched = session.as_ref().map(|s| s.stats());
    if let Some(st) = &fetched {
        crate::remote::log_requests(st);
    }
    let s = summarize(&shards);
    let mem = match a.ctx {
        Some(n) => Some(
            crate::memory::estimate_for(&shards[0], s.tensor_bytes, n).map_err(|e| report(a, e))?,
        ),
        None => None,
    };
    let facts = model_facts(&shards[0]);
    if let (Some(n), Some(train)) = (a.ctx, facts.n_ctx_train) {
        if n > train {
            crate::fmt::warn(&format!(
                "--ctx {n} is above the model's training context ({train}): quality past {train} \
                 tokens is not what the model was trained for"
            ));
        }
    }
    let shard_name = |i: usize| files[i].clone();
    if a.json {
        let mut doc = to_json(&files, &s, shards[0].data_offset, mem.as_ref());
        doc["model"] = facts.to_json();
        if let Some(st) = &fetched {
            doc["remote"] = crate::remote::stats_json(st);
        }
        if let (Some((i, first)), J::Object(m)) = (problems.first(), &mut doc) {
            let list: Vec<J> = problems
                .iter()
                .map(|(i, e)| {
                    json!({"file": shard_name(*i), "kind": e.kind(), "offset": e.offset(), "message": e.to_string()})
                })
                .collect();
            m.insert("problems".into(), J::Array(list));
            m.insert(
                "error".into(),
                json!({"file": shard_name(*i), "kind": first.kind(), "offset": first.offset(),
                       "message": format!("not loadable by llama.cpp: {first}")}),
            );
        }
        let doc = Doc {
            head: &doc,
            shards: &shards,
            keep: &keep,
            full_arrays: a.full_arrays,
        };
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        print_human(a, &shards, &s, &keep, mem.as_ref(), &facts, out)?;
        if let Some(st) = &fetched {
            writeln!(out, "\n{}", crate::remote::stats_line(st))?;
        }
        if !problems.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "{}",
                crate::fmt::wrap(
                    &format!(
                        "{}: llama.cpp would refuse this file ({} found; what is shown above is read despite them)",
                        crate::fmt::paint_status("PROBLEMS"),
                        problems.len()
                    ),
                    2
                )
            )?;
            for (i, e) in &problems {
                let at = e
                    .offset()
                    .map(|o| format!(" [byte {o}]"))
                    .unwrap_or_default();
                let file = if files.len() > 1 {
                    format!("{}: ", shard_name(*i))
                } else {
                    String::new()
                };
                writeln!(
                    out,
                    "{}",
                    crate::fmt::wrap(&format!("  - {file}{e}{at}"), 4)
                )?;
            }
        }
    }
    if let Some((i, first)) = problems.into_iter().next() {
        // The JSON document above already carries the error.
        return Err(Failure::from(
            anyhow::anyhow!("not loadable by llama.cpp: {first}").context(shard_name(i)),
        )
        .kind(first.kind())
        .reported(a.json));
    }
    Ok(0)
}

/// Turns a library error into a failure; with `--json`, also prints it as the JSON document.
fn report(a: &Args, e: impl Into<anyhow::Error> + std::fmt::Display + ErrorFacts) -> Failure {
    let path = a.file.display().to_string();
    let (kind, offset) = (e.kind(), e.offset());
    let err: anyhow::Error = e.into();
    Failure::from(err.context(path.clone()))
        .kind(kind)
        .fact("file", path)
        .fact("offset", offset)
}

/// What an error says about itself, for JSON error reports.
pub trait ErrorFacts {
    fn kind(&self) -> &'static str;
    fn offset(&self) -> Option<u64>;
}

impl ErrorFacts for pocket::GgufError {
    fn kind(&self) -> &'static str {
        pocket::GgufError::kind(self)
    }
    fn offset(&self) -> Option<u64> {
        pocket::GgufError::offset(self)
    }
}

/// What a person wants to know about the model before running it, from its metadata.
pub struct Facts {
    n_ctx_train: Option<u64>,
    n_layers: Option<u64>,
    n_heads: Option<String>,
    n_heads_kv: Option<String>,
    sliding_window: Option<u64>,
    n_vocab: Option<u64>,
    bos: Option<(u64, String)>,
    eos: Option<(u64, String)>,
    chat_template: Option<String>,
}

fn model_facts(g: &Gguf<'_>) -> Facts {
    let arch = g
        .get("general.architecture")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let key = |k: &str| format!("{arch}.{k}");
    let num = |k: &str| g.get(&key(k)).and_then(|v| v.as_u64());
    // Head counts can be per layer (an array): shown as their range.
    let heads = |k: &str| {
        g.get(&key(k)).and_then(|v| match v {
            Value::Array(arr) => {
                let xs: Vec<u64> = arr.iter().filter_map(|e| e.as_u64()).collect();
                let (lo, hi) = (xs.iter().min()?, xs.iter().max()?);
                Some(if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}..{hi} (per layer)")
                })
            }
            other => other.as_u64().map(|n| n.to_string()),
        })
    };
    let tokens = g.get("tokenizer.ggml.tokens").and_then(|v| v.as_array());
    let token = |k: &str| {
        let id = g.get(k).and_then(|v| v.as_u64())?;
        let text = tokens
            .and_then(|t| t.strings().nth(id as usize))
            .map_or_else(|| "(not in the vocabulary)".to_string(), |s| s.to_string());
        Some((id, text))
    };
    let chat_template = g
        .get("tokenizer.chat_template")
        .and_then(|v| v.as_str())
        .map(|src| {
            pocket::exec::chat::Template::detect(src)
                .map_or_else(|| "not recognised".to_string(), |t| t.name().to_string())
        });
    Facts {
        n_ctx_train: num("context_length"),
        n_layers: num("block_count"),
        n_heads: heads("attention.head_count"),
        n_heads_kv: heads("attention.head_count_kv"),
        sliding_window: num("attention.sliding_window"),
        n_vocab: tokens.map(|t| t.len),
        bos: token("tokenizer.ggml.bos_token_id"),
        eos: token("tokenizer.ggml.eos_token_id"),
        chat_template,
    }
}

impl Facts {
    fn to_json(&self) -> J {
        let tok =
            |t: &Option<(u64, String)>| t.as_ref().map(|(id, s)| json!({"id": id, "text": s}));
        json!({
            "context_length": self.n_ctx_train,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "n_heads_kv": self.n_heads_kv,
            "sliding_window": self.sliding_window,
            "n_vocab": self.n_vocab,
            "bos": tok(&self.bos),
            "eos": tok(&self.eos),
            "chat_template": self.chat_template,
        })
    }

    fn rows(&self) -> Vec<(String, String)> {
        let mut r = Vec::new();
        let mut add = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                r.push((k.to_string(), v));
            }
        };
        add("training context", self.n_ctx_train.map(|n| n.to_string()));
        add("layers", self.n_layers.map(|n| n.to_string()));
        add(
            "attention heads",
            self.n_heads.as_ref().map(|h| match &self.n_heads_kv {
                Some(kv) if kv != h => format!("{h} ({kv} for K/V)"),
                _ => h.clone(),
            }),
        );
        add(
            "sliding window",
            self.sliding_window.map(|n| format!("{n} tokens")),
        );
        add("vocabulary", self.n_vocab.map(|n| format!("{n} tokens")));
        let tok = |t: &Option<(u64, String)>| {
            t.as_ref()
                .map(|(id, s)| format!("{:?} (id {id})", clip(s, 30)))
        };
        add("BOS", tok(&self.bos));
        add("EOS", tok(&self.eos));
        add("chat template", self.chat_template.clone());
        r
    }
}

/// A metadata value for `--json`: long arrays as their length and first elements unless `full`.
fn meta_json(v: &Value<'_>, full: bool) -> J {
    match v {
        Value::Array(arr) if !full && arr.len > JSON_ARRAY_MAX => json!({
            "length": arr.len,
            "first": arr.iter().take(8).map(|e| value_to_json(&e)).collect::<Vec<_>>(),
        }),
        other => value_to_json(other),
    }
}

/// The parts of the `--json` document whose size does not grow with the number of keys and tensors
/// ([`Doc`] writes those).
fn to_json(
    files: &[String],
    s: &Summary,
    data_offset: u64,
    mem: Option<&crate::memory::Report>,
) -> J {
    let by_type: Vec<J> = s
        .by_type
        .iter()
        .map(|b| {
            json!({"type": b.ty.name, "tensors": b.count, "n_params": b.params, "n_bytes": b.bytes,
                        "share_of_file": b.bytes as f64 / s.file_size as f64})
        })
        .collect();
    let mut doc = json!({
        "files": files,
        "version": s.version,
        "endianness": s.endian,
        "alignment": s.alignment,
        "file_size": s.file_size,
        "tensor_data_offset": data_offset,
        "architecture": s.architecture,
        "name": s.name,
        "file_type": s.file_type,
        "file_type_name": s.file_type_name,
        "n_params": s.n_params,
        "tensor_bytes": s.tensor_bytes,
        "bits_per_weight": s.bits_per_weight,
        "n_tensors": s.n_tensors,
        "n_kv": s.n_kv,
        "n_shards": s.n_shards,
        "arrays_summarised": true,
        "by_type": by_type,
    });
    if let Some(m) = mem {
        doc["memory"] = m.to_json();
    }
    doc
}

/// The `--json` document, written as it is serialised: `head` (an object) plus the per-key and
/// per-tensor parts, each made and dropped one at a time. Building them all first as JSON values
/// took ~2 KB per tensor, so a header of a million tensors needed 2.3 GB (issue #27). Keys come out
/// sorted as a `serde_json::Map` sorts them, so the document is the same as before.
struct Doc<'a, 'g> {
    head: &'a J,
    shards: &'a [Gguf<'g>],
    keep: &'a dyn Fn(&str) -> bool,
    full_arrays: bool,
}

const STREAMED: [&str; 4] = ["kv_order", "metadata", "metadata_types", "tensors"];

impl Doc<'_, '_> {
    fn kvs(&self) -> impl Iterator<Item = &pocket::gguf::KeyValue<'_>> {
        self.shards[0].kvs.iter().filter(|kv| (self.keep)(kv.key))
    }

    /// Indices of the kept keys in key order; of a key given twice (a file shown despite its
    /// problems), the last, as a map keeps it.
    fn sorted_kvs(&self) -> Vec<usize> {
        let kvs = &self.shards[0].kvs;
        let mut idx: Vec<usize> = (0..kvs.len())
            .filter(|&i| (self.keep)(kvs[i].key))
            .collect();
        idx.sort_by(|&a, &b| kvs[a].key.cmp(kvs[b].key));
        let mut out: Vec<usize> = Vec::with_capacity(idx.len());
        for i in idx {
            match out.last_mut() {
                Some(l) if kvs[*l].key == kvs[i].key => *l = i,
                _ => out.push(i),
            }
        }
        out
    }
}

impl serde::Serialize for Doc<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct Seq<F>(F);
        impl<F: Fn() -> I, I: Iterator<Item = J>> serde::Serialize for Seq<F> {
            fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                let mut seq = ser.serialize_seq(None)?;
                for v in (self.0)() {
                    seq.serialize_element(&v)?;
                }
                seq.end()
            }
        }
        struct Obj<F>(F);
        impl<'k, F: Fn() -> I, I: Iterator<Item = (&'k str, J)>> serde::Serialize for Obj<F> {
            fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                let mut map = ser.serialize_map(None)?;
                for (k, v) in (self.0)() {
                    map.serialize_entry(k, &v)?;
                }
                map.end()
            }
        }
        let empty = Map::new();
        let head = self.head.as_object().unwrap_or(&empty);
        let mut keys: Vec<&str> = head.keys().map(String::as_str).collect();
        keys.extend(STREAMED);
        keys.sort_unstable();
        let kvs = &self.shards[0].kvs;
        let sorted = self.sorted_kvs();
        let mut map = ser.serialize_map(Some(keys.len()))?;
        for k in keys {
            match k {
                "kv_order" => map.serialize_entry(k, &Seq(|| self.kvs().map(|kv| json!(kv.key))))?,
                "metadata" => map.serialize_entry(
                    k,
                    &Obj(|| {
                        sorted.iter().map(|&i| {
                            (kvs[i].key, meta_json(&kvs[i].value, self.full_arrays))
                        })
                    }),
                )?,
                "metadata_types" => map.serialize_entry(
                    k,
                    &Obj(|| {
                        sorted
                            .iter()
                            .map(|&i| (kvs[i].key, J::String(type_string(&kvs[i].value))))
                    }),
                )?,
                "tensors" => map.serialize_entry(
                    k,
                    &Seq(|| {
                        self.shards.iter().enumerate().flat_map(|(i, g)| {
                            g.tensors.iter().filter(|t| (self.keep)(t.name)).map(move |t| {
                                json!({
                                    "name": t.name, "type": t.ty.name, "type_id": t.ty.id.raw(),
                                    "shape": t.dims, "offset": t.offset, "file_offset": t.file_offset,
                                    "n_bytes": t.n_bytes, "n_elements": t.n_elements, "shard": i,
                                })
                            })
                        })
                    }),
                )?,
                "arrays_summarised" => map.serialize_entry(k, &!self.full_arrays)?,
                _ => map.serialize_entry(k, &head[k])?,
            }
        }
        map.end()
    }
}

fn print_human(
    a: &Args,
    shards: &[Gguf<'_>],
    s: &Summary,
    keep: &dyn Fn(&str) -> bool,
    mem: Option<&crate::memory::Report>,
    facts: &Facts,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let first = &shards[0];
    let files = if s.n_shards > 1 {
        format!(", {} shards", s.n_shards)
    } else {
        String::new()
    };
    writeln!(
        out,
        "{}",
        crate::fmt::wrap(&a.file.display().to_string(), 0)
    )?;
    let mut t = table(&[]);
    t.add_row(vec![
        "format".to_string(),
        format!(
            "GGUF v{}, {}-endian, alignment {}",
            s.version, s.endian, s.alignment
        ),
    ]);
    t.add_row(vec![
        "architecture".to_string(),
        s.architecture.clone().unwrap_or_else(|| "(none)".into()),
    ]);
    if let Some(n) = &s.name {
        t.add_row(vec!["name".to_string(), n.clone()]);
    }
    t.add_row(vec!["file type".to_string(), s.file_type_name.clone()]);
    t.add_row(vec!["parameters".to_string(), count(s.n_params)]);
    t.add_row(vec![
        "file size".to_string(),
        format!("{}{files}", bytes(s.file_size)),
    ]);
    t.add_row(vec![
        "bits per weight".to_string(),
        format!("{:.2}", s.bits_per_weight),
    ]);
    t.add_row(vec![
        "tensors".to_string(),
        format!(
            "{} ({} of data at byte {})",
            s.n_tensors,
            bytes(s.tensor_bytes),
            first.data_offset
        ),
    ]);
    t.add_row(vec!["keys".to_string(), s.n_kv.to_string()]);
    writeln!(out, "{t}")?;

    let rows = facts.rows();
    if !rows.is_empty() {
        let mut m = table(&[]);
        for (k, v) in rows {
            m.add_row(vec![k, v]);
        }
        writeln!(out, "\nmodel\n{m}")?;
    }

    // Rows made as they are written (a header may hold a million keys or tensors).
    let mut m = table(&["key", "type", "value"]);
    m.min_width(0, 44);
    if first.kvs.iter().any(|kv| keep(kv.key)) {
        writeln!(out, "\nmetadata")?;
        m.write_streamed(
            || {
                first.kvs.iter().filter(|kv| keep(kv.key)).map(|kv| {
                    vec![
                        kv.key.to_string(),
                        type_string(&kv.value).to_lowercase(),
                        show_value(&kv.value),
                    ]
                })
            },
            out,
        )?;
    }

    let mut b = table(&["type", "tensors", "parameters", "bytes", "share of file"]);
    for ts in &s.by_type {
        b.add_row(vec![
            ts.ty.name.to_string(),
            ts.count.to_string(),
            count(ts.params),
            bytes(ts.bytes),
            format!("{:.1}%", 100.0 * ts.bytes as f64 / s.file_size as f64),
        ]);
    }
    writeln!(out, "\ntensor types\n{b}")?;

    if a.tensors {
        let mut tt = table(&["name", "type", "shape", "bytes", "offset"]);
        tt.min_width(0, 32);
        let many = s.n_shards > 1;
        writeln!(out, "\ntensors")?;
        tt.write_streamed(
            || {
                shards.iter().enumerate().flat_map(move |(i, g)| {
                    g.tensors.iter().filter(|t| keep(t.name)).map(move |ti| {
                        let shape = ti
                            .dims
                            .iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(" × ");
                        let offset = if many {
                            format!("{} (shard {})", ti.file_offset, i + 1)
                        } else {
                            ti.file_offset.to_string()
                        };
                        vec![
                            ti.name.to_string(),
                            ti.ty.name.to_string(),
                            shape,
                            bytes(ti.n_bytes),
                            offset,
                        ]
                    })
                })
            },
            out,
        )?;
    }
    if let Some(m) = mem {
        writeln!(out, "\n{}", crate::fmt::wrap(&m.render(), 6))?;
    }
    Ok(())
}

/// A value for the metadata table: long strings clipped, long arrays summarised by their first items.
fn show_value(v: &Value<'_>) -> String {
    show(v, false)
}

fn show_nested(v: &Value<'_>) -> String {
    show(v, true)
}

fn show(v: &Value<'_>, nested: bool) -> String {
    match v {
        Value::String(s) => format!("\"{}\"", clip(s, if nested { 24 } else { 72 })),
        Value::Array(arr) if !nested => {
            let mut items = Vec::new();
            let mut width = 0;
            for e in arr.iter().take(8) {
                let s = show_nested(&e);
                width += s.len() + 2;
                items.push(s);
                if width > 60 {
                    break;
                }
            }
            let more = if (items.len() as u64) < arr.len {
                ", …"
            } else {
                ""
            };
            format!(
                "[{} × {}] {}{more}",
                arr.len,
                arr.elem_type.short_name(),
                items.join(", ")
            )
        }
        Value::Array(arr) if nested => {
            // Inside an array, an array is bracketed so that its elements are not read as its parent's.
            let items: Vec<String> = arr.iter().take(8).map(|e| show_nested(&e)).collect();
            let more = if (items.len() as u64) < arr.len {
                ", …"
            } else {
                ""
            };
            format!("[{}{more}]", items.join(", "))
        }
        Value::F32(x) => x.to_string(),
        Value::F64(x) => x.to_string(),
        other => value_to_json(other).to_string(),
    }
}
