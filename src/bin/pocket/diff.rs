//! `pocket diff A B`: what differs between two models. Exit 0 when identical, 1 when not.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use pocket::edit::diff::{diff, Diff};
use pocket::gguf::Model;
use serde_json::{json, Value as J};

use crate::fmt::{clip, table};
use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// The first model (for a split model, its first shard).
    a: PathBuf,
    /// The second model.
    b: PathBuf,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

fn open(p: &PathBuf) -> Result<Model, Failure> {
    Ok(Model::open(p).with_context(|| p.display().to_string())?)
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let (ma, mb) = (open(&a.a)?, open(&a.b)?);
    let ga = ma.ggufs().with_context(|| a.a.display().to_string())?;
    let gb = mb.ggufs().with_context(|| a.b.display().to_string())?;
    let d = diff(&ga, &gb);
    if a.json {
        serde_json::to_writer_pretty(&mut *out, &to_json(a, &d))?;
        writeln!(out)?;
    } else {
        print_human(&d, out)?;
    }
    Ok(if d.identical() { 0 } else { 1 })
}

fn to_json(a: &Args, d: &Diff) -> J {
    json!({
        "a": a.a.display().to_string(),
        "b": a.b.display().to_string(),
        "identical": d.identical(),
        "header": d.header.iter().map(|(f, x, y)| json!({"field": f, "a": x, "b": y})).collect::<Vec<_>>(),
        "keys": d.keys.iter().map(|k| json!({"key": k.key, "change": k.change, "a_type": k.a_type, "a": k.a,
            "b_type": k.b_type, "b": k.b})).collect::<Vec<_>>(),
        "keys_same": d.keys_same,
        "tensors": d.tensors.iter().map(|t| json!({"name": t.name, "change": t.change, "a_type": t.a_type,
            "b_type": t.b_type, "a_shape": t.a_shape, "b_shape": t.b_shape, "bytes_equal": false,
            "rmse": t.rmse, "max_abs": t.max_abs, "note": t.note})).collect::<Vec<_>>(),
        "tensors_same": d.tensors_same,
    })
}

fn show(t: &Option<String>, v: &Option<J>) -> String {
    match (t, v) {
        (Some(t), Some(J::String(s))) => format!("{} ({t})", clip(s, 50)),
        (Some(t), Some(J::Array(a))) if a.len() > 8 => format!("[{} elements] ({t})", a.len()),
        (Some(t), Some(v)) => format!("{} ({t})", clip(&v.to_string(), 50)),
        _ => "—".into(),
    }
}

fn shape(s: &Option<Vec<u64>>) -> String {
    s.as_ref().map_or("—".into(), |d| {
        d.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join("×")
    })
}

fn print_human(d: &Diff, out: &mut dyn Write) -> std::io::Result<()> {
    for (f, x, y) in &d.header {
        writeln!(out, "{}", crate::fmt::wrap(&format!("{f}: {x} → {y}"), 2))?;
    }
    if !d.keys.is_empty() {
        let mut t = table(&["key", "change", "A", "B"]);
        t.max_lines(2).min_width(0, 32);
        for k in &d.keys {
            t.add_row(vec![
                k.key.clone(),
                k.change.into(),
                show(&k.a_type, &k.a),
                show(&k.b_type, &k.b),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    if !d.tensors.is_empty() {
        let mut t = table(&["tensor", "change", "A", "B", "RMSE", "max |Δ|"]);
        t.max_lines(2).min_width(0, 26);
        for c in &d.tensors {
            let side = |ty: &Option<String>, s: &Option<Vec<u64>>| match ty {
                Some(ty) => format!("{ty} {}", shape(s)),
                None => "—".into(),
            };
            let (rmse, max) = match (c.rmse, c.max_abs) {
                (Some(r), Some(m)) => (format!("{r:.3e}"), format!("{m:.3e}")),
                _ => (c.note.clone().unwrap_or_default(), String::new()),
            };
            t.add_row(vec![
                c.name.clone(),
                c.change.into(),
                side(&c.a_type, &c.a_shape),
                side(&c.b_type, &c.b_shape),
                rmse,
                max,
            ]);
        }
        writeln!(out, "{t}")?;
    }
    let line = format!(
        "{}: {} and {} the same; {} and {} differ",
        if d.identical() {
            "identical"
        } else {
            "different"
        },
        crate::fmt::plural(d.keys_same as u64, "key", "keys"),
        crate::fmt::plural(d.tensors_same as u64, "tensor", "tensors"),
        crate::fmt::plural(d.keys.len() as u64, "key", "keys"),
        crate::fmt::plural(d.tensors.len() as u64, "tensor", "tensors"),
    );
    writeln!(out, "{}", crate::fmt::wrap(&line, 2))
}
