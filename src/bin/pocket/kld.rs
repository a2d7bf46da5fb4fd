//! `pocket kld BASE OTHER`: how far OTHER's next-token distributions are from BASE's on a text —
//! llama-perplexity's `--kl-divergence` measurement with both models in one process. The running
//! values after each chunk come as a table, then the final statistics in the lines llama-perplexity
//! prints (so the two outputs can be read side by side); `--json` gives one document instead.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use pocket::exec::kld::{
    check_same_vocab, kl_divergence, kl_divergence_from_file, Estimate, KldResult, LogitsFile,
    Quantiles, Running, LOGITS_MAGIC,
};
use pocket::exec::tokenizer::Vocab;
use pocket::exec::Weights;
use pocket::{Gguf, Model};
use serde_json::{json, Value};

use crate::{fmt, progress, Failure};

#[derive(clap::Args)]
pub struct Args {
    /// The reference model (e.g. the Q8_0 or F16; for a split model, its first shard), or a file of
    /// its log-probabilities written by `llama-perplexity --kl-divergence-base` (which carries its
    /// own tokens and chunk size: -f is then not read).
    base: PathBuf,
    /// The model compared with it (e.g. the Q4_K_M), with the same vocabulary.
    other: PathBuf,
    /// The text file to score.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Tokens per chunk [default: 512, or a logits file's].
    #[arg(short = 'c', long = "ctx-size")]
    ctx: Option<usize>,
    /// Compare over at most this many chunks.
    #[arg(short = 'b', long)]
    chunks: Option<usize>,
    /// One JSON document: running values per chunk and the final statistics.
    #[arg(long)]
    json: bool,
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    measure(a, out).map_err(|f| {
        f.fact("base", a.base.display().to_string())
            .fact("other", a.other.display().to_string())
    })
}

/// Prints each chunk's running values as it is done (flushed, also into a pipe): llama-perplexity's
/// rows exactly, or on a terminal narrower than them a compact row with the errors of PPL and KLD.
struct Rows<'o> {
    out: &'o mut dyn Write,
    compact: bool,
    n: usize,
    err: Option<std::io::Error>,
}

/// Width of llama-perplexity's per-chunk rows.
const LLAMA_ROW: usize = 125;

impl<'o> Rows<'o> {
    fn new(out: &'o mut dyn Write) -> Self {
        Rows {
            out,
            compact: fmt::look().width.is_some_and(|w| w < LLAMA_ROW),
            n: 0,
            err: None,
        }
    }

    fn row(&mut self, c: &Running) {
        self.n += 1;
        let r = (|| -> std::io::Result<()> {
            let o = &mut *self.out;
            if self.compact {
                if self.n == 1 {
                    writeln!(
                        o,
                        "chunk         PPL ± err     ln ratio        KLD ± err       Δp RMS  same top"
                    )?;
                }
                writeln!(
                    o,
                    "{:>5} {:>10.4} ± {:<8.4} {:>9.5} {:>9.5} ± {:<8.5} {:>6.3}% {:>7.3}%",
                    self.n,
                    c.ppl.value,
                    c.ppl.err,
                    c.ln_ppl_ratio.value,
                    c.kld.value,
                    c.kld.err,
                    100.0 * c.p_diff_rms.value,
                    100.0 * c.same_top.value
                )?;
            } else {
                if self.n == 1 {
                    writeln!(o, "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p")?;
                }
                writeln!(
                    o,
                    "{:4}    {:9.4} ± {:9.4}    {:10.5} ± {:10.5}    {:10.5} ± {:10.5}    {:6.3} ± {:6.3} %    {:6.3} ± {:6.3} %",
                    self.n,
                    c.ppl.value,
                    c.ppl.err,
                    c.ln_ppl_ratio.value,
                    c.ln_ppl_ratio.err,
                    c.kld.value,
                    c.kld.err,
                    100.0 * c.p_diff_rms.value,
                    100.0 * c.p_diff_rms.err,
                    100.0 * c.same_top.value,
                    100.0 * c.same_top.err
                )?;
            }
            o.flush()
        })();
        if let (Err(e), None) = (r, &self.err) {
            self.err = Some(e);
        }
    }
}

fn open(path: &Path) -> anyhow::Result<Model> {
    Model::open(path).with_context(|| format!("opening {}", path.display()))
}

fn load<'a>(gs: &[Gguf<'a>], path: &Path) -> anyhow::Result<(Weights<'a>, Vocab)> {
    let w = Weights::load(gs).with_context(|| format!("loading {}", path.display()))?;
    let first = gs
        .first()
        .ok_or_else(|| anyhow::anyhow!("{}: no GGUF file", path.display()))?;
    let v = Vocab::from_gguf(first)
        .with_context(|| format!("reading the vocabulary of {}", path.display()))?;
    Ok((w, v))
}

fn measure(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let mut magic = [0u8; 8];
    let is_logits = std::fs::File::open(&a.base)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == LOGITS_MAGIC;
    let mo = open(&a.other)?;
    let go = mo.ggufs()?;
    let (wo, vo) = load(&go, &a.other)?;
    let bos = if vo.add_bos() { vo.bos() } else { None };
    let started = std::time::Instant::now();
    let (r, n_ctx, n_text) = if is_logits {
        let bytes =
            std::fs::read(&a.base).with_context(|| format!("reading {}", a.base.display()))?;
        let file = LogitsFile::parse(&bytes).with_context(|| a.base.display().to_string())?;
        if let Some(c) = a.ctx.filter(|&c| c != file.n_ctx) {
            return Err(anyhow::anyhow!(
                "{} was computed with a context of {}, not {c}",
                a.base.display(),
                file.n_ctx
            )
            .into());
        }
        let n_chunk = file.n_chunk.min(a.chunks.unwrap_or(usize::MAX).max(1));
        let bar = progress::steps_bar(n_chunk as u64, "kld", "chunk");
        let mut rows = Rows::new(out);
        let r = kl_divergence_from_file(&file, &wo, bos, a.chunks, |c| {
            if !a.json {
                bar.suspend(|| rows.row(c));
            }
            bar.inc(1)
        })
        .with_context(|| format!("comparing {} with {}", a.other.display(), a.base.display()))?;
        bar.finish_and_clear();
        if let Some(e) = rows.err {
            return Err(e.into());
        }
        (r, file.n_ctx, file.n_ctx * file.n_chunk)
    } else {
        let Some(text_path) = &a.file else {
            return Err(
                anyhow::anyhow!("-f TEXT is needed (the text to compare the models on)").into(),
            );
        };
        let n_ctx = a.ctx.unwrap_or(512);
        let mb = open(&a.base)?;
        let gb = mb.ggufs()?;
        let (wb, vb) = load(&gb, &a.base)?;
        check_same_vocab(&vb, &vo).with_context(|| {
            format!("comparing {} with {}", a.other.display(), a.base.display())
        })?;
        let bytes =
            std::fs::read(text_path).with_context(|| format!("reading {}", text_path.display()))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| anyhow::anyhow!("{} is not UTF-8: {e}", text_path.display()))?;
        let tokens = vb.tokenize(&text, true, false)?;
        let n_chunk = (tokens.len() / n_ctx.max(1)).min(a.chunks.unwrap_or(usize::MAX).max(1));
        let bar = progress::steps_bar(n_chunk as u64, "kld", "chunk");
        let mut rows = Rows::new(out);
        let r = kl_divergence(&wb, &wo, &tokens, n_ctx, bos, a.chunks, |c| {
            if !a.json {
                bar.suspend(|| rows.row(c));
            }
            bar.inc(1)
        })?;
        bar.finish_and_clear();
        if let Some(e) = rows.err {
            return Err(e.into());
        }
        (r, n_ctx, tokens.len())
    };
    let seconds = started.elapsed().as_secs_f64();
    if a.json {
        let doc = json!({
            "base": a.base.display().to_string(),
            "base_is_logits_file": is_logits,
            "other": a.other.display().to_string(),
            "file": if is_logits { None } else { a.file.as_ref().map(|f| f.display().to_string()) },
            "n_ctx": n_ctx,
            "n_tokens_text": n_text,
            "n_chunks": r.chunks.len(),
            "seconds": seconds,
            "chunks": r.chunks.iter().enumerate().map(|(i, c)| chunk_json(i + 1, c)).collect::<Vec<_>>(),
            "summary": summary_json(&r),
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        print_people(out, &r)?;
    }
    Ok(0)
}

/// `other` against `base` on `text` in chunks of `n_ctx` (at most `chunks`), with a progress bar
/// labelled `what`: `pocket kld`'s comparison, for `pocket requantize --report-text`.
pub(crate) fn compare_on_text(
    base: &Path,
    other: &Path,
    text_path: &Path,
    n_ctx: usize,
    chunks: Option<usize>,
    what: &str,
) -> anyhow::Result<KldResult> {
    let mo = open(other)?;
    let go = mo.ggufs()?;
    let (wo, vo) = load(&go, other)?;
    let bos = if vo.add_bos() { vo.bos() } else { None };
    let mb = open(base)?;
    let gb = mb.ggufs()?;
    let (wb, vb) = load(&gb, base)?;
    check_same_vocab(&vb, &vo)
        .with_context(|| format!("comparing {} with {}", other.display(), base.display()))?;
    let bytes =
        std::fs::read(text_path).with_context(|| format!("reading {}", text_path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{} is not UTF-8: {e}", text_path.display()))?;
    let tokens = vb.tokenize(&text, true, false)?;
    let n_chunk = (tokens.len() / n_ctx.max(1)).min(chunks.unwrap_or(usize::MAX).max(1));
    let bar = progress::steps_bar(n_chunk as u64, what, "chunk");
    let r = kl_divergence(&wb, &wo, &tokens, n_ctx, bos, chunks, |_| bar.inc(1))
        .with_context(|| format!("{what} on {}", text_path.display()));
    bar.finish_and_clear();
    r
}

fn est(e: &Estimate) -> Value {
    json!({"value": e.value, "err": e.err})
}

fn quantiles_json(q: &Quantiles) -> Value {
    Value::Object(
        q.iter()
            .map(|(n, v)| (n.to_lowercase(), fmt::f32_json(*v)))
            .collect(),
    )
}

fn chunk_json(i: usize, c: &Running) -> Value {
    json!({
        "chunk": i,
        "count": c.count,
        "ppl": est(&c.ppl),
        "ln_ppl_ratio": est(&c.ln_ppl_ratio),
        "kld": est(&c.kld),
        "p_diff_rms": est(&c.p_diff_rms),
        "same_top": est(&c.same_top),
    })
}

pub(crate) fn summary_json(r: &KldResult) -> Value {
    let s = &r.summary;
    json!({
        "count": s.count,
        "ppl": est(&s.ppl),
        "ppl_base": est(&s.ppl_base),
        "cor_ln_ppl": s.cor_ln_ppl,
        "ln_ppl_ratio": est(&s.ln_ppl_ratio),
        "ppl_ratio": est(&s.ppl_ratio),
        "ppl_diff": est(&s.ppl_diff),
        "kld": est(&s.kld),
        "kld_quantiles": quantiles_json(&s.kld_quantiles),
        "p_diff": est(&s.p_diff),
        "p_diff_quantiles": quantiles_json(&s.p_diff_quantiles),
        "p_diff_rms": est(&s.p_diff_rms),
        "same_top": est(&s.same_top),
    })
}

/// A quantile's label as llama-perplexity aligns it: " 5.0%   ", "Median  ".
fn label(name: &str) -> String {
    let n = if name.len() == 4 {
        format!(" {name}")
    } else {
        name.to_string()
    };
    format!("{n:<8}")
}

fn print_people(out: &mut dyn Write, r: &KldResult) -> std::io::Result<()> {
    let s = &r.summary;
    if s.count < 100 {
        writeln!(
            out,
            "(only {} tokens scored: llama-perplexity prints no statistics below 100)",
            s.count
        )?;
    }
    writeln!(out)?;
    writeln!(out, "====== Perplexity statistics ======")?;
    let pm = |out: &mut dyn Write, name: &str, e: &Estimate| {
        writeln!(out, "{name:<30}: {:10.6} ± {:10.6}", e.value, e.err)
    };
    pm(out, "Mean PPL(Q)", &s.ppl)?;
    pm(out, "Mean PPL(base)", &s.ppl_base)?;
    writeln!(
        out,
        "Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2}%",
        100.0 * s.cor_ln_ppl
    )?;
    pm(out, "Mean ln(PPL(Q)/PPL(base))", &s.ln_ppl_ratio)?;
    pm(out, "Mean PPL(Q)/PPL(base)", &s.ppl_ratio)?;
    pm(out, "Mean PPL(Q)-PPL(base)", &s.ppl_diff)?;
    writeln!(out)?;
    writeln!(out, "====== KL divergence statistics ======")?;
    writeln!(
        out,
        "Mean    KLD: {:10.6} ± {:10.6}",
        s.kld.value, s.kld.err
    )?;
    for (n, v) in &s.kld_quantiles {
        writeln!(out, "{}KLD: {v:10.6}", label(n))?;
    }
    writeln!(out)?;
    writeln!(out, "====== Token probability statistics ======")?;
    writeln!(
        out,
        "Mean    Δp: {:6.3} ± {:5.3} %",
        100.0 * s.p_diff.value,
        100.0 * s.p_diff.err
    )?;
    for (n, v) in &s.p_diff_quantiles {
        writeln!(out, "{}Δp: {:6.3}%", label(n), 100.0 * *v as f64)?;
    }
    writeln!(
        out,
        "RMS Δp    : {:6.3} ± {:5.3} %",
        100.0 * s.p_diff_rms.value,
        100.0 * s.p_diff_rms.err
    )?;
    writeln!(
        out,
        "Same top p: {:6.3} ± {:5.3} %",
        100.0 * s.same_top.value,
        100.0 * s.same_top.err
    )?;
    Ok(())
}
