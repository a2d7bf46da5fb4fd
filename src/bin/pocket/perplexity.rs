//! `pocket perplexity`: llama-perplexity's measurement with the reference executor — chunks of
//! `-c` tokens, BOS first, the second half of each chunk scored — printed the way llama-perplexity
//! prints it (`[1]12.3456,[2]...` then `Final estimate: PPL = … +/- …`), or as one JSON document.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use pocket::exec::perplexity::perplexity;
use pocket::exec::tokenizer::Vocab;
use pocket::exec::Weights;
use pocket::Model;
use serde_json::json;

use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// The GGUF model (for a split model, its first shard).
    model: PathBuf,
    /// The text file to score.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: PathBuf,
    /// Tokens per chunk.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    ctx: usize,
    /// Score at most this many chunks.
    #[arg(long)]
    chunks: Option<usize>,
    /// One JSON document: per-chunk values, PPL and its error.
    #[arg(long)]
    json: bool,
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let result = measure(a, out);
    crate::json_failure(a.json, &a.model, out, result)
}

fn measure(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let model = Model::open(&a.model).with_context(|| format!("opening {}", a.model.display()))?;
    let gs = model.ggufs()?;
    let w = Weights::load(&gs).with_context(|| format!("loading {}", a.model.display()))?;
    let vocab = Vocab::from_gguf(&gs[0]).context("reading the vocabulary")?;
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{} is not UTF-8: {e}", a.file.display()))?;
    let tokens = vocab.tokenize(&text, true, false)?;
    let bos = if vocab.add_bos() { vocab.bos() } else { None };
    let n_chunk = (tokens.len() / a.ctx.max(1)).min(a.chunks.unwrap_or(usize::MAX));
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(n_chunk as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(s) =
        indicatif::ProgressStyle::with_template("perplexity [{bar:40}] chunk {pos}/{len} eta {eta}")
    {
        bar.set_style(s.progress_chars("=> "));
    }
    let mut line = String::new();
    let r = perplexity(&w, &tokens, a.ctx, bos, a.chunks, |c| {
        bar.inc(1);
        line.push_str(&format!("[{}]{:.4},", bar.position(), c.ppl_so_far));
    })?;
    bar.finish_and_clear();
    if a.json {
        let doc = json!({
            "model": a.model.display().to_string(),
            "file": a.file.display().to_string(),
            "n_ctx": a.ctx,
            "n_tokens_text": tokens.len(),
            "n_chunks": r.chunks.len(),
            "chunks": r.chunks.iter().map(|c| json!({
                "nll": c.nll, "count": c.count,
                "ppl": (c.nll / c.count as f64).exp(), "ppl_so_far": c.ppl_so_far})).collect::<Vec<_>>(),
            "ppl": r.ppl,
            "ppl_err": r.ppl_err,
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{line}")?;
        writeln!(
            out,
            "Final estimate: PPL = {:.4} +/- {:.5}",
            r.ppl, r.ppl_err
        )?;
    }
    Ok(0)
}
