//! `pocket imatrix`: the importance matrix llama-imatrix computes (summed squared activations per
//! input column of every block matrix, with counts), from a text cut into chunks of `-c` tokens as
//! llama-perplexity cuts it, written in llama-imatrix's GGUF format for `requantize --imatrix` and
//! llama-quantize.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use pocket::exec::imatrix::imatrix;
use pocket::exec::tokenizer::Vocab;
use pocket::exec::Weights;
use pocket::fsio::AtomicFile;
use pocket::Model;
use serde_json::json;

use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// The GGUF model (for a split model, its first shard).
    model: PathBuf,
    /// The text to collect activations on.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: PathBuf,
    /// The importance matrix to write (GGUF).
    #[arg(short = 'o', long = "output", value_name = "OUT.gguf")]
    output: PathBuf,
    /// Tokens per chunk.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(4..))]
    ctx: u32,
    /// Process at most this many chunks.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    chunks: Option<u32>,
    /// Collect the output matrix too (output.weight; as llama-imatrix --process-output).
    #[arg(long)]
    process_output: bool,
    /// Threads of the pool (default: one per core).
    #[arg(short = 't', long = "threads",
          value_parser = clap::value_parser!(u32).range(1..=crate::MAX_THREADS as i64))]
    threads: Option<u32>,
    /// Replace OUT if it exists.
    #[arg(long)]
    force: bool,
    /// One JSON document: what was collected and how fast.
    #[arg(long)]
    json: bool,
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let result = collect(a, out);
    crate::json_failure(a.json, &a.model, out, result)
}

fn collect(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    crate::check_output(
        &a.output,
        a.force,
        &[("the model", &a.model), ("the text (-f)", &a.file)],
    )?;
    if let Some(n) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n as usize)
            .build_global()
            .context("starting the thread pool")?;
    }
    let model = Model::open(&a.model).with_context(|| format!("opening {}", a.model.display()))?;
    let gs = model.ggufs()?;
    let w = Weights::load(&gs).with_context(|| format!("loading {}", a.model.display()))?;
    let vocab = Vocab::from_gguf(&gs[0]).context("reading the vocabulary")?;
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{} is not UTF-8: {e}", a.file.display()))?;
    let tokens = vocab.tokenize(&text, true, false)?;
    let bos = if vocab.add_bos() { vocab.bos() } else { None };
    let n_ctx = a.ctx as usize;
    let n_chunk = (tokens.len() / n_ctx).min(a.chunks.map_or(usize::MAX, |c| c as usize));
    let bar = if a.json {
        indicatif::ProgressBar::hidden()
    } else {
        crate::progress::steps_bar(n_chunk as u64, "imatrix", "chunk")
    };
    let started = std::time::Instant::now();
    let im = imatrix(
        &w,
        &tokens,
        n_ctx,
        bos,
        a.chunks.map(|c| c as usize),
        a.process_output,
        |_| bar.inc(1),
    )
    .with_context(|| format!("collecting on {}", a.file.display()))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let n_tokens = im.chunk_count() as usize * n_ctx;

    let inputs = [a.model.as_path(), a.file.as_path()];
    let mut f = AtomicFile::create(&a.output, &inputs, None)
        .with_context(|| format!("writing {}", a.output.display()))?;
    let dataset = a.file.to_string_lossy();
    im.write_gguf(&mut f, &[dataset.as_ref()])
        .with_context(|| format!("writing {}", a.output.display()))?;
    f.commit()
        .with_context(|| format!("writing {}", a.output.display()))?;

    if a.json {
        let doc = json!({
            "model": a.model.display().to_string(),
            "file": a.file.display().to_string(),
            "output": a.output.display().to_string(),
            "n_ctx": n_ctx,
            "n_tokens_text": tokens.len(),
            "n_chunks": im.chunk_count(),
            "n_tokens": n_tokens,
            "n_entries": im.entries.len(),
            "seconds": secs,
            "tokens_per_second": n_tokens as f64 / secs.max(1e-9),
            "entries": im.entries.iter().map(|(k, e)| json!({
                "name": k,
                "n_values": e.in_sum2.len(),
                "count": e.count,
            })).collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}: {} matrices, {} chunks of {} tokens ({:.1} s, {:.1} tokens/s)",
            a.output.display(),
            im.entries.len(),
            im.chunk_count(),
            n_ctx,
            secs,
            n_tokens as f64 / secs.max(1e-9)
        )?;
    }
    Ok(0)
}
