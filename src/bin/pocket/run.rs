//! `pocket run`: generates text from a prompt with the reference executor, streaming each token's
//! piece as it comes (greedy at `--temp 0`), or one JSON document with `--json`. `--chat` formats the
//! prompt (and `--system`) with the model's chat template as llama.cpp's non-Jinja path does
//! (`pocket::exec::chat`). `pocket chat` (or `run -i`) is a conversation: each line on stdin is the
//! user's turn, formatted with the template, and only what the KV cache does not hold yet is evaluated.
//! llama.cpp's short flags are accepted (`-m -f -t -n -c -p -s -r`).

use std::io::{BufRead, IsTerminal, Write};
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
    /// The GGUF model (for a split model, its first shard); or -m MODEL.
    #[arg(required_unless_present = "model_opt")]
    model: Option<PathBuf>,
    /// The model, as llama.cpp's -m.
    #[arg(
        short = 'm',
        long = "model",
        value_name = "FILE",
        conflicts_with = "model"
    )]
    model_opt: Option<PathBuf>,
    #[command(flatten)]
    text: crate::tokenize::TextArgs,
    /// Tokens to generate [default: 32; in a chat, up to 1024 per turn].
    #[arg(short = 'n', long = "n-predict")]
    n: Option<usize>,
    /// Temperature; 0 is greedy (argmax).
    #[arg(long, default_value_t = 0.8)]
    temp: f32,
    /// Keep only the K most likely tokens (0: all).
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Keep the most likely tokens up to this cumulative probability.
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Drop tokens less likely than this fraction of the most likely one (0: off).
    #[arg(long, default_value_t = 0.05)]
    min_p: f32,
    /// Divide the logits of recently seen tokens by this (1: off), as llama.cpp's --repeat-penalty.
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// How many of the last tokens the repetition penalty looks at.
    #[arg(long, default_value_t = 64)]
    repeat_last_n: usize,
    /// Stop when the text produces this string (repeatable), as llama.cpp's -r/--reverse-prompt.
    #[arg(
        short = 'r',
        long = "reverse-prompt",
        visible_alias = "stop",
        value_name = "TEXT"
    )]
    stop: Vec<String>,
    /// Seed of the sampler [default: a new random seed each run].
    #[arg(short = 's', long)]
    seed: Option<u64>,
    /// Threads (default: all cores).
    #[arg(short = 't', long = "threads")]
    threads: Option<usize>,
    /// Context size (default: prompt plus generated tokens; in a chat, 4096 or the training context).
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
    /// A conversation: each line read from stdin is the user's next message (as `pocket chat`).
    #[arg(short = 'i', long = "interactive")]
    interactive: bool,
    /// A system message before the first user message (with --chat or in a conversation).
    #[arg(long, visible_alias = "system-prompt", value_name = "TEXT")]
    system: Option<String>,
    /// Use this template instead of the model's: a llama.cpp template name (chatml, llama3, gemma,
    /// phi3, mistral-v7, ...) or a Jinja source to recognise.
    #[arg(long, value_name = "NAME")]
    chat_template: Option<String>,
    /// Print the prompt (as formatted) before the generated text.
    #[arg(long)]
    echo: bool,
}

impl Args {
    fn model(&self) -> PathBuf {
        self.model
            .clone()
            .or_else(|| self.model_opt.clone())
            .unwrap_or_default()
    }
}

/// A seed nobody chose: the standard library's per-process random hash keys.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// llama.cpp's repetition penalty on one row of logits: the last `last_n` tokens' logits divided by
/// `penalty` when positive, multiplied when negative (each distinct token once).
fn penalize(logits: &mut [f32], history: &[u32], last_n: usize, penalty: f32) {
    if penalty == 1.0 || last_n == 0 {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    for &t in history.iter().rev().take(last_n) {
        if seen.insert(t) {
            if let Some(l) = logits.get_mut(t as usize) {
                *l = if *l > 0.0 { *l / penalty } else { *l * penalty };
            }
        }
    }
}

/// Text as it is generated, held back while it could still become a stop string, cut before one.
struct StopText<'s> {
    stops: &'s [String],
    text: Vec<u8>,
    shown: usize,
}

impl<'s> StopText<'s> {
    fn new(stops: &'s [String]) -> Self {
        StopText {
            stops,
            text: Vec::new(),
            shown: 0,
        }
    }

    /// Adds a piece; returns the bytes now safe to show and whether a stop string was produced.
    fn push(&mut self, piece: &[u8]) -> (&[u8], bool) {
        self.text.extend_from_slice(piece);
        let find = |h: &[u8], n: &[u8]| h.windows(n.len()).position(|w| w == n);
        let hit = self
            .stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| find(&self.text, s.as_bytes()))
            .min();
        if let Some(at) = hit {
            self.text.truncate(at);
            let from = self.shown.min(at);
            self.shown = at;
            return (&self.text[from..], true);
        }
        // Hold back the longest end of the text that begins a stop string.
        let hold = self
            .stops
            .iter()
            .map(|s| {
                let s = s.as_bytes();
                (1..s.len().min(self.text.len() + 1))
                    .rev()
                    .find(|&k| self.text.ends_with(&s[..k]))
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        let safe = self.text.len() - hold;
        let from = self.shown.min(safe);
        self.shown = safe.max(self.shown);
        (&self.text[from..safe.max(from)], false)
    }

    /// What is still held back (the text ended without a stop string).
    fn rest(&mut self) -> &[u8] {
        let from = self.shown;
        self.shown = self.text.len();
        &self.text[from..]
    }
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

/// Formatted chat text for the tokenizer: like llama.cpp's chat path, a text that already begins
/// with the BOS token's text loses it when the vocabulary adds BOS itself (no double BOS).
fn strip_bos<'t>(text: &'t str, vocab: &Vocab) -> &'t str {
    if vocab.add_bos() {
        if let Some(bos) = vocab.bos().and_then(|b| vocab.token_to_piece(b, true).ok()) {
            if !bos.is_empty()
                && text.as_bytes().starts_with(bos)
                && text.is_char_boundary(bos.len())
            {
                return &text[bos.len()..];
            }
        }
    }
    text
}

/// The prompt as a chat: system message (if any) and the prompt as the user's, then the start of
/// the assistant's turn.
fn chat_prompt(a: &Args, prompt: &str, t: Template, vocab: &Vocab) -> String {
    let mut msgs = Vec::new();
    if let Some(s) = &a.system {
        msgs.push(Message::new("system", s));
    }
    msgs.push(Message::new("user", prompt));
    strip_bos(&t.apply(&msgs, true), vocab).to_string()
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let result = with_threads(a, |a| generate(a, out));
    crate::json_failure(a.json, &a.model(), out, result)
}

/// `pocket chat`: `run -i`.
pub fn chat(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let result = with_threads(a, |a| conversation(a, out));
    crate::json_failure(a.json, &a.model(), out, result)
}

/// `-t N`: the global pool gets N threads (set before any parallel work: the output stream is not
/// `Send`, so the work cannot move into a pool of its own).
fn with_threads(a: &Args, f: impl FnOnce(&Args) -> Result<u8, Failure>) -> Result<u8, Failure> {
    match a.threads {
        None => f(a),
        Some(0) => Err(Failure::usage("-t must be at least 1")),
        Some(n) => {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build_global()
                .context("starting the thread pool")?;
            f(a)
        }
    }
}

/// The model's weights and vocabulary, checked against each other.
fn load_vocab(a: &Args, gs: &[pocket::Gguf<'_>], w: &Weights<'_>) -> Result<Vocab, Failure> {
    let vocab = Vocab::from_gguf(&gs[0]).context("reading the vocabulary")?;
    if vocab.n_tokens() > w.hp.n_vocab {
        return Err(anyhow::anyhow!(
            "the vocabulary has {} tokens but token_embd.weight has {} rows",
            vocab.n_tokens(),
            w.hp.n_vocab
        )
        .into());
    }
    if !(a.temp >= 0.0 && a.top_p > 0.0 && a.top_p <= 1.0 && (0.0..=1.0).contains(&a.min_p)) {
        return Err(Failure::usage(
            "--temp must be >= 0, --top-p in (0, 1] and --min-p in [0, 1]",
        ));
    }
    if a.repeat_penalty <= 0.0 || !a.repeat_penalty.is_finite() {
        return Err(Failure::usage("--repeat-penalty must be > 0"));
    }
    Ok(vocab)
}

fn sampler(a: &Args) -> (Sampler, u64) {
    let seed = a.seed.unwrap_or_else(random_seed);
    let mut s = Sampler::new(a.temp, a.top_k, a.top_p, seed);
    s.min_p = a.min_p;
    (s, seed)
}

fn sampling_json(a: &Args, seed: u64) -> serde_json::Value {
    json!({"temp": crate::fmt::f32_json(a.temp), "top_k": a.top_k, "top_p": crate::fmt::f32_json(a.top_p),
           "min_p": crate::fmt::f32_json(a.min_p), "repeat_penalty": crate::fmt::f32_json(a.repeat_penalty),
           "repeat_last_n": a.repeat_last_n, "seed": seed})
}

fn prompt_text(a: &Args) -> Result<Option<String>, Failure> {
    match a.text.bytes()? {
        Some(b) => Ok(Some(String::from_utf8(b).map_err(|e| {
            anyhow::anyhow!(
                "the prompt is not valid UTF-8 (at byte {})",
                e.utf8_error().valid_up_to()
            )
        })?)),
        None => Ok(None),
    }
}

/// One reply: tokens sampled from `logits` on, each evaluated in `sess`, until an end-of-generation
/// token, a stop string, `n` tokens or a full context.
struct Reply {
    tokens: Vec<u32>,
    /// All the text the tokens make (what the KV cache holds).
    raw: Vec<u8>,
    /// The text up to a stop string.
    text: Vec<u8>,
    stop: &'static str,
    secs: f64,
}

#[allow(clippy::too_many_arguments)]
fn reply(
    a: &Args,
    sess: &mut Session<'_, '_>,
    vocab: &Vocab,
    sampler: &mut Sampler,
    history: &mut Vec<u32>,
    mut logits: Vec<f32>,
    n: usize,
    out: &mut dyn Write,
    stream: bool,
) -> Result<Reply, Failure> {
    let t1 = Instant::now();
    let mut r = Reply {
        tokens: Vec::new(),
        raw: Vec::new(),
        text: Vec::new(),
        stop: "length",
        secs: 0.0,
    };
    let mut st = StopText::new(&a.stop);
    for _ in 0..n {
        penalize(&mut logits, history, a.repeat_last_n, a.repeat_penalty);
        let id = sampler.sample(&logits);
        if !a.ignore_eos && vocab.is_eog(id) {
            r.stop = "eog";
            break;
        }
        r.tokens.push(id);
        history.push(id);
        let piece = vocab.token_to_piece(id, true).unwrap_or(b"");
        r.raw.extend_from_slice(piece);
        let (show, hit) = st.push(piece);
        if stream {
            out.write_all(show)?;
            out.flush()?;
        }
        if hit {
            r.stop = "stop_string";
            // The stop string's tokens are in the cache: evaluate the last one too, so the cache
            // holds exactly the raw text.
            sess.eval(&[id], 1)?;
            break;
        }
        if r.tokens.len() == n {
            sess.eval(&[id], 1)?;
            break;
        }
        if sess.n_past() + 1 > sess.n_ctx() {
            r.stop = "context_full";
            break;
        }
        logits = sess.eval(&[id], 1)?;
    }
    if r.stop != "stop_string" && stream {
        out.write_all(st.rest())?;
    } else {
        st.rest();
    }
    r.text = st.text.clone();
    r.secs = t1.elapsed().as_secs_f64();
    Ok(r)
}

fn generate(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let path = a.model();
    let model = Model::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let gs = model.ggufs()?;
    let w = Weights::load(&gs).with_context(|| format!("loading {}", path.display()))?;
    let vocab = load_vocab(a, &gs, &w)?;
    if a.interactive {
        return talk(a, &gs, &w, &vocab, out);
    }
    if !a.chat && (a.system.is_some() || a.chat_template.is_some()) {
        return Err(Failure::usage(
            "--system and --chat-template need --chat (or -i / pocket chat for a conversation)",
        ));
    }
    let Some(prompt_in) = prompt_text(a)? else {
        return Err(Failure::usage(
            "give the prompt with -p TEXT or -f FILE (or -i / pocket chat for a conversation)",
        ));
    };
    let template = if a.chat {
        Some(chat_template(a, &gs[0])?)
    } else {
        None
    };
    let text_in = match template {
        Some(t) => chat_prompt(a, &prompt_in, t, &vocab),
        None => prompt_in.clone(),
    };
    let prompt = vocab.tokenize(&text_in, true, true)?;
    if prompt.is_empty() {
        return Err(anyhow::anyhow!("the prompt has no tokens").into());
    }
    let n = a.n.unwrap_or(32);
    let n_ctx = a.ctx.unwrap_or(prompt.len() + n);
    if n_ctx < prompt.len() + n {
        return Err(Failure::usage(format!(
            "-c {n_ctx} is too small for the prompt ({} tokens) and -n {}: it needs at least {}",
            prompt.len(),
            n,
            prompt.len() + n
        )));
    }
    if n_ctx > w.hp.n_ctx_train.max(prompt.len() + n) {
        return Err(Failure::usage(format!(
            "-c {n_ctx} is above the model's training context ({}); give -c {} or less",
            w.hp.n_ctx_train,
            w.hp.n_ctx_train.max(prompt.len() + n)
        )));
    }
    let mut sess = Session::try_new(&w, n_ctx)?;
    let (mut sampler, seed) = sampler(a);
    let t0 = Instant::now();
    let logits = sess.eval(&prompt, 1)?;
    let t_prompt = t0.elapsed().as_secs_f64();
    if a.echo && !a.json {
        out.write_all(text_in.as_bytes())?;
        out.flush()?;
    }
    let mut history = prompt.clone();
    let r = reply(
        a,
        &mut sess,
        &vocab,
        &mut sampler,
        &mut history,
        logits,
        n,
        out,
        !a.json,
    )?;
    if a.json {
        let doc = json!({
            "model": path.display().to_string(),
            "prompt": prompt_in,
            "chat_template": template.map(|t| t.name()),
            "formatted_prompt": template.map(|_| &text_in),
            "prompt_tokens": prompt,
            "tokens": r.tokens,
            "text": String::from_utf8_lossy(&r.text),
            "stop": r.stop,
            "sampling": sampling_json(a, seed),
            "timings": {"prompt_s": t_prompt, "generate_s": r.secs,
                        "prompt_tok_per_s": prompt.len() as f64 / t_prompt.max(1e-9),
                        "gen_tok_per_s": r.tokens.len() as f64 / r.secs.max(1e-9)},
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        // The text ends its line before the timing line goes to stderr.
        writeln!(out)?;
        out.flush()?;
        if !crate::fmt::look().quiet {
            eprintln!(
                "pocket run: prompt {} tokens in {:.2} s, generated {} tokens in {:.2} s ({:.2} tok/s), stop: {}",
                prompt.len(),
                t_prompt,
                r.tokens.len(),
                r.secs,
                r.tokens.len() as f64 / r.secs.max(1e-9),
                r.stop
            );
        }
    }
    Ok(0)
}

fn conversation(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let path = a.model();
    let model = Model::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let gs = model.ggufs()?;
    let w = Weights::load(&gs).with_context(|| format!("loading {}", path.display()))?;
    let vocab = load_vocab(a, &gs, &w)?;
    talk(a, &gs, &w, &vocab, out)
}

/// A conversation read line by line from stdin. The KV cache is kept between turns: each turn's
/// formatted conversation is compared with the text the cache holds, and only the new end is
/// evaluated (all of it again if the template rewrote earlier turns).
fn talk(
    a: &Args,
    gs: &[pocket::Gguf<'_>],
    w: &Weights<'_>,
    vocab: &Vocab,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let template = chat_template(a, &gs[0])?;
    let n_ctx = a.ctx.unwrap_or(w.hp.n_ctx_train.min(4096));
    if n_ctx > w.hp.n_ctx_train {
        return Err(Failure::usage(format!(
            "-c {n_ctx} is above the model's training context ({}); give -c {} or less",
            w.hp.n_ctx_train, w.hp.n_ctx_train
        )));
    }
    let n = a.n.unwrap_or(1024);
    let mut sess = Session::try_new(w, n_ctx)?;
    let (mut sampler, seed) = sampler(a);
    let mut history_msgs: Vec<(String, String)> = Vec::new();
    if let Some(s) = &a.system {
        history_msgs.push(("system".into(), s.clone()));
    }
    let mut kv_text = String::new();
    let mut kv_tokens: Vec<u32> = Vec::new();
    let mut turns = Vec::new();
    let tty_in = std::io::stdin().is_terminal();
    let mut first = prompt_text(a)?;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        let user = match first.take() {
            Some(p) => p,
            None => {
                if tty_in {
                    eprint!("> ");
                }
                match lines.next() {
                    None => break,
                    Some(l) => l.context("reading standard input")?,
                }
            }
        };
        if user.trim().is_empty() {
            continue;
        }
        history_msgs.push(("user".into(), user.clone()));
        let msgs: Vec<Message> = history_msgs
            .iter()
            .map(|(r, c)| Message::new(r, c))
            .collect();
        let full = template.apply(&msgs, true);
        let (new_text, add_bos) = if !kv_text.is_empty() && full.starts_with(&kv_text) {
            (&full[kv_text.len()..], false)
        } else {
            sess.clear();
            kv_tokens.clear();
            (strip_bos(&full, vocab), true)
        };
        let toks = vocab.tokenize(new_text, add_bos, true)?;
        if sess.n_past() + toks.len() + 1 > n_ctx {
            return Err(anyhow::anyhow!(
                "the conversation no longer fits the context ({n_ctx} tokens); start again with a larger -c"
            )
            .into());
        }
        let t0 = Instant::now();
        let logits = if toks.is_empty() {
            return Err(anyhow::anyhow!("the turn formats to no tokens").into());
        } else {
            sess.eval(&toks, 1)?
        };
        let t_prompt = t0.elapsed().as_secs_f64();
        kv_tokens.extend_from_slice(&toks);
        let r = reply(
            a,
            &mut sess,
            vocab,
            &mut sampler,
            &mut kv_tokens,
            logits,
            n,
            out,
            !a.json,
        )?;
        kv_text = full;
        kv_text.push_str(&String::from_utf8_lossy(&r.raw));
        let text = String::from_utf8_lossy(&r.text).to_string();
        if !a.json {
            writeln!(out)?;
            out.flush()?;
            if crate::fmt::look().verbose {
                eprintln!(
                    "pocket chat: {} new prompt tokens in {:.2} s, {} generated in {:.2} s, stop: {}, context {}/{n_ctx}",
                    toks.len(),
                    t_prompt,
                    r.tokens.len(),
                    r.secs,
                    r.stop,
                    sess.n_past()
                );
            }
        }
        turns.push(json!({
            "user": user, "assistant": text, "tokens": r.tokens, "stop": r.stop,
            "prompt_tokens_evaluated": toks.len(), "n_past": sess.n_past(),
            "timings": {"prompt_s": t_prompt, "generate_s": r.secs},
        }));
        history_msgs.push(("assistant".into(), text));
        if r.stop == "context_full" {
            crate::fmt::warn("the context is full: the conversation ends here");
            break;
        }
    }
    if a.json {
        let doc = json!({
            "model": a.model().display().to_string(),
            "chat_template": template.name(),
            "system": a.system,
            "n_ctx": n_ctx,
            "sampling": sampling_json(a, seed),
            "turns": turns,
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_text_holds_back_and_cuts() {
        let stops = vec!["END".to_string()];
        let mut st = StopText::new(&stops);
        assert_eq!(st.push(b"abc").0, b"abc");
        // "E" could begin "END": held back.
        assert_eq!(st.push(b"E").0, b"");
        assert_eq!(st.push(b"x").0, b"Ex");
        assert_eq!(st.push(b"EN").0, b"");
        let (show, hit) = st.push(b"D!");
        assert!(hit);
        assert_eq!(show, b"");
        assert_eq!(st.text, b"abcEx");
    }

    #[test]
    fn penalty_as_llama_cpp() {
        let mut l = [2.0, -2.0, 1.0];
        penalize(&mut l, &[0, 1, 0], 64, 2.0);
        assert_eq!(l, [1.0, -4.0, 1.0]);
        let mut l = [2.0, -2.0, 1.0];
        penalize(&mut l, &[0, 1], 1, 2.0);
        assert_eq!(l, [2.0, -4.0, 1.0]);
    }
}
