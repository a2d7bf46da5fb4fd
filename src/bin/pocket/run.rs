//! `pocket run`: generates text from a prompt with the reference executor, streaming each token's
//! piece as it comes (greedy at `--temp 0`), or one JSON document with `--json`. `--chat` formats the
//! prompt (and `--system`) with the model's chat template as llama.cpp's non-Jinja path does
//! (`pocket::exec::chat`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use pocket::exec::chat::{Message, Template};
use pocket::exec::sample::Sampler;
use pocket::exec::tokenizer::Vocab;
use pocket::exec::{Session, Weights};
use pocket::Model;
use serde_json::json;

use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// The GGUF model (for a split model, its first shard).
    model: PathBuf,
    /// The prompt.
    #[arg(short = 'p', long = "prompt", value_name = "TEXT")]
    prompt: String,
    /// Number of tokens to generate.
    #[arg(short = 'n', long = "n-predict", default_value_t = 32)]
    n: usize,
    /// Temperature; 0 is greedy (argmax).
    #[arg(long, default_value_t = 0.8)]
    temp: f32,
    /// Keep only the K most likely tokens (0: all).
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Keep the most likely tokens up to this cumulative probability.
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Context size (default: prompt plus generated tokens).
    #[arg(short = 'c', long = "ctx-size")]
    ctx: Option<usize>,
    /// Keep generating after an end-of-generation token.
    #[arg(long)]
    ignore_eos: bool,
    /// One JSON document (prompt and generated token ids, text, timings) instead of streaming.
    #[arg(long)]
    json: bool,
    /// Treat the prompt as a user message in a chat: format it with the model's chat template
    /// (tokenizer.chat_template, recognised as llama.cpp does; no template code is run) and start the
    /// assistant's turn.
    #[arg(long)]
    chat: bool,
    /// A system message before the prompt (with --chat).
    #[arg(long, value_name = "TEXT", requires = "chat")]
    system: Option<String>,
    /// Use this template instead of the model's: a llama.cpp template name (chatml, llama3, gemma,
    /// phi3, mistral-v7, ...) or a Jinja source to recognise (with --chat).
    #[arg(long, value_name = "NAME", requires = "chat")]
    chat_template: Option<String>,
}

/// The chat template for `--chat`: `--chat-template`, else the model's `tokenizer.chat_template`,
/// else chatml (llama.cpp's default for a model without one, with a warning).
fn chat_template(a: &Args, g: &pocket::Gguf<'_>) -> anyhow::Result<Template> {
    const KEY: &str = "tokenizer.chat_template";
    let names = || {
        pocket::exec::chat::NAMES
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(t) = &a.chat_template {
        return Template::detect(t).ok_or_else(|| {
            anyhow::anyhow!(
                "--chat-template {:?} is not supported: not one of llama.cpp's built-in templates ({}) \
                 nor a Jinja source they recognise",
                excerpt(t),
                names()
            )
        });
    }
    let Some(v) = g.get(KEY) else {
        eprintln!(
            "pocket run: warning: the model has no {KEY}; using chatml (llama.cpp's default). \
             Pass --chat-template NAME if the model expects another format."
        );
        return Ok(Template::Chatml);
    };
    let src = v
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("metadata key {KEY} is not a string"))?;
    Template::detect(src).ok_or_else(|| {
        anyhow::anyhow!(
            "the model's chat template ({KEY}, {} bytes, starting {:?}) is not supported: it matches \
             none of llama.cpp's built-in templates ({}); pass --chat-template NAME to choose one",
            src.len(),
            excerpt(src),
            names()
        )
    })
}

/// The first 80 characters of a template, for messages.
fn excerpt(s: &str) -> String {
    let mut e: String = s.chars().take(80).collect();
    if e.len() < s.len() {
        e.push_str("...");
    }
    e
}

/// The prompt as a chat: system message (if any) and the prompt as the user's, then the start of
/// the assistant's turn. Like llama.cpp's chat path, a formatted text that already begins with the
/// BOS token's text loses it when the vocabulary adds BOS itself (no double BOS).
fn chat_prompt(a: &Args, t: Template, vocab: &Vocab) -> String {
    let mut msgs = Vec::new();
    if let Some(s) = &a.system {
        msgs.push(Message::new("system", s));
    }
    msgs.push(Message::new("user", &a.prompt));
    let mut text = t.apply(&msgs, true);
    if vocab.add_bos() {
        if let Some(bos) = vocab.bos().and_then(|b| vocab.token_to_piece(b, true).ok()) {
            if !bos.is_empty()
                && text.as_bytes().starts_with(bos)
                && text.is_char_boundary(bos.len())
            {
                text.drain(..bos.len());
            }
        }
    }
    text
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let result = generate(a, out);
    crate::json_failure(a.json, &a.model, out, result)
}

fn generate(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let model = Model::open(&a.model).with_context(|| format!("opening {}", a.model.display()))?;
    let gs = model.ggufs()?;
    let w = Weights::load(&gs).with_context(|| format!("loading {}", a.model.display()))?;
    let vocab = Vocab::from_gguf(&gs[0]).context("reading the vocabulary")?;
    if vocab.n_tokens() > w.hp.n_vocab {
        return Err(anyhow::anyhow!(
            "the vocabulary has {} tokens but token_embd.weight has {} rows",
            vocab.n_tokens(),
            w.hp.n_vocab
        )
        .into());
    }
    if !(a.temp >= 0.0 && a.top_p > 0.0 && a.top_p <= 1.0) {
        return Err(anyhow::anyhow!("--temp must be >= 0 and --top-p in (0, 1]").into());
    }
    let template = if a.chat {
        Some(chat_template(a, &gs[0])?)
    } else {
        None
    };
    let text_in = match template {
        Some(t) => chat_prompt(a, t, &vocab),
        None => a.prompt.clone(),
    };
    let prompt = vocab.tokenize(&text_in, true, true)?;
    if prompt.is_empty() {
        return Err(anyhow::anyhow!("the prompt has no tokens").into());
    }
    let n_ctx = a.ctx.unwrap_or(prompt.len() + a.n);
    if n_ctx < prompt.len() + a.n {
        return Err(Failure::usage(format!(
            "-c {n_ctx} is too small for the prompt ({} tokens) and -n {}: it needs at least {}",
            prompt.len(),
            a.n,
            prompt.len() + a.n
        )));
    }
    if n_ctx > w.hp.n_ctx_train.max(prompt.len() + a.n) {
        return Err(Failure::usage(format!(
            "-c {n_ctx} is above the model's training context ({}); give -c {} or less",
            w.hp.n_ctx_train,
            w.hp.n_ctx_train.max(prompt.len() + a.n)
        )));
    }
    let mut sess = Session::new(&w, n_ctx);
    let mut sampler = Sampler::new(a.temp, a.top_k, a.top_p, a.seed);
    let t0 = Instant::now();
    let mut logits = sess.eval(&prompt, 1)?;
    let t_prompt = t0.elapsed().as_secs_f64();
    let mut generated = Vec::new();
    let mut text = Vec::new();
    let mut stop = "length";
    if !a.json {
        out.write_all(text_in.as_bytes())?;
        out.flush()?;
    }
    let t1 = Instant::now();
    for _ in 0..a.n {
        let id = sampler.sample(&logits);
        if !a.ignore_eos && vocab.is_eog(id) {
            stop = "eog";
            break;
        }
        generated.push(id);
        let piece = vocab.token_to_piece(id, true).unwrap_or(b"");
        text.extend_from_slice(piece);
        if !a.json {
            out.write_all(piece)?;
            out.flush()?;
        }
        if generated.len() == a.n {
            break;
        }
        logits = sess.eval(&[id], 1)?;
    }
    let t_gen = t1.elapsed().as_secs_f64();
    if a.json {
        let doc = json!({
            "model": a.model.display().to_string(),
            "prompt": a.prompt,
            "chat_template": template.map(|t| t.name()),
            "formatted_prompt": template.map(|_| &text_in),
            "prompt_tokens": prompt,
            "tokens": generated,
            "text": String::from_utf8_lossy(&text),
            "stop": stop,
            "sampling": {"temp": a.temp, "top_k": a.top_k, "top_p": a.top_p, "seed": a.seed},
            "timings": {"prompt_s": t_prompt, "generate_s": t_gen,
                        "prompt_tok_per_s": prompt.len() as f64 / t_prompt.max(1e-9),
                        "gen_tok_per_s": generated.len() as f64 / t_gen.max(1e-9)},
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        writeln!(out)?;
        eprintln!(
            "pocket run: prompt {} tokens in {:.2} s, generated {} tokens in {:.2} s ({:.2} tok/s), stop: {stop}",
            prompt.len(),
            t_prompt,
            generated.len(),
            t_gen,
            generated.len() as f64 / t_gen.max(1e-9)
        );
    }
    Ok(0)
}
