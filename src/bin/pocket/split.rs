//! `pocket split` and `pocket merge`: shards and merges byte-identical to llama-gguf-split's.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use pocket::edit::split::{
    open_shards, parse_size, plan_merge, plan_split, write_merge, write_split, SplitBy,
    SplitOptions,
};
use pocket::gguf::GgufFile;
use serde_json::json;

use crate::fmt::{bytes, table};
use crate::Failure;

#[derive(clap::Args)]
pub struct SplitArgs {
    /// The GGUF file to split.
    input: PathBuf,
    /// Shards are named OUT_PREFIX-00001-of-0000N.gguf.
    out_prefix: String,
    /// At most N tensors per shard (default 128, as llama-gguf-split).
    #[arg(long, value_name = "N", conflicts_with = "split_max_size")]
    split_max_tensors: Option<u64>,
    /// At most this much tensor data per shard: N followed by M (10^6 bytes) or G (10^9 bytes).
    #[arg(long, value_name = "SIZE")]
    split_max_size: Option<String>,
    /// Put no tensors in the first shard (metadata only).
    #[arg(long)]
    no_tensor_first_split: bool,
    /// Print the plan and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replace shards that exist already.
    #[arg(long)]
    force: bool,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The first shard (PREFIX-00001-of-0000N.gguf); the others are found next to it.
    first_shard: PathBuf,
    /// The merged file.
    output: PathBuf,
    /// Print the plan and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replace OUTPUT if it exists (a symlink is replaced itself, not the file it points to).
    #[arg(long)]
    force: bool,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run_split(a: &SplitArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let by = match &a.split_max_size {
        Some(s) => SplitBy::Size(parse_size(s)?),
        None => SplitBy::Tensors(a.split_max_tensors.unwrap_or(128)),
    };
    let opts = SplitOptions {
        by,
        no_tensor_first_split: a.no_tensor_first_split,
    };
    let name = a.input.display().to_string();
    let f = GgufFile::open(&a.input).context(name.clone())?;
    let g = f.gguf().context(name.clone())?;
    let plan = plan_split(&g, &a.out_prefix, &opts).context(name.clone())?;
    if !a.dry_run {
        // Every shard is checked before any is written.
        for s in &plan {
            crate::check_output(&s.path, a.force, &[("the input", &a.input)])?;
        }
        let pb = crate::progress::bytes_bar(g.tensor_bytes(), "split");
        write_split(&g, &a.input, &plan, &mut |n| pb.inc(n)).context(name.clone())?;
        pb.finish_and_clear();
    }
    if a.json {
        let shards: Vec<_> = plan
            .iter()
            .map(|s| {
                json!({"path": s.path.display().to_string(), "n_tensors": s.tensors.len(),
                       "file_size": s.file_size, "tensors": s.tensors.iter().map(|&i| g.tensors[i].name).collect::<Vec<_>>()})
            })
            .collect();
        let doc =
            json!({"input": name, "dry_run": a.dry_run, "n_split": plan.len(), "shards": shards});
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        // llama-gguf-split's plan lines, then a table.
        writeln!(out, "n_split: {}", plan.len())?;
        let mut t = table(&["shard", "tensors", "size", "file"]);
        for (i, s) in plan.iter().enumerate() {
            writeln!(
                out,
                "split {:05}: n_tensors = {}, total_size = {}M",
                i + 1,
                s.tensors.len(),
                s.llama_total_size / 1000 / 1000
            )?;
            t.add_row(vec![
                format!("{}", i + 1),
                s.tensors.len().to_string(),
                bytes(s.file_size),
                s.path.display().to_string(),
            ]);
        }
        writeln!(out, "{t}")?;
        if a.dry_run {
            writeln!(out, "dry run: nothing written")?;
        } else {
            writeln!(
                out,
                "{} shards written with a total of {} tensors",
                plan.len(),
                g.tensors.len()
            )?;
        }
    }
    Ok(0)
}

pub fn run_merge(a: &MergeArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let name = a.first_shard.display().to_string();
    if !a.dry_run {
        crate::check_output(&a.output, a.force, &[("the first shard", &a.first_shard)])?;
    }
    let model = open_shards(&a.first_shard).context(name.clone())?;
    let plan = if a.dry_run {
        plan_merge(&model)
    } else {
        let pb = crate::progress::bytes_bar(plan_merge(&model).map_or(0, |p| p.file_size), "merge");
        let r = write_merge(&model, &a.output, &mut |n| pb.inc(n));
        pb.finish_and_clear();
        r
    }
    .context(name.clone())?;
    if a.json {
        let doc = json!({"first_shard": name, "output": a.output.display().to_string(), "dry_run": a.dry_run,
            "shards": plan.shards.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "n_tensors": plan.n_tensors, "file_size": plan.file_size});
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        let verb = if a.dry_run { "would merge" } else { "merged" };
        writeln!(
            out,
            "{verb} {} shards ({} tensors) into {} ({})",
            plan.shards.len(),
            plan.n_tensors,
            a.output.display(),
            bytes(plan.file_size)
        )?;
    }
    Ok(0)
}
