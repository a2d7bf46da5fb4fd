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
    // The `[1]12.3456,[2]...` line is printed chunk by chunk as llama-perplexity prints it, flushed
    // each time (into a pipe too). On a terminal that line is the progress: no bar, and the time per
    // chunk with an estimate of the rest on stderr after the first, as llama-perplexity says it.
    let stdout_tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let bar = if stdout_tty || a.json {
        indicatif::ProgressBar::hidden()
    } else {
        crate::progress::steps_bar(n_chunk as u64, "perplexity", "chunk")
    };
    let started = std::time::Instant::now();
    let mut done = 0usize;
    let mut err: Option<std::io::Error> = None;
    let r = perplexity(&w, &tokens, a.ctx, bos, a.chunks, |c| {
        done += 1;
        bar.inc(1);
        if done == 1 && stdout_tty && !a.json && !crate::fmt::look().quiet {
            let per = started.elapsed().as_secs_f64();
            eprintln!(
                "perplexity: {per:.2} seconds per pass - ETA {:.2} minutes",
                per * n_chunk.saturating_sub(1) as f64 / 60.0
            );
        }
        if a.json || err.is_some() {
            return;
        }
        let r = bar.suspend(|| {
            write!(out, "[{done}]{:.4},", c.ppl_so_far)?;
            out.flush()
        });
        if let Err(e) = r {
            err = Some(e);
        }
    })?;
    bar.finish_and_clear();
    if let Some(e) = err {
        return Err(e.into());
    }
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
        writeln!(out)?;
        writeln!(
            out,
            "Final estimate: PPL = {:.4} +/- {:.5}",
            r.ppl, r.ppl_err
        )?;
    }
    Ok(0)
}
