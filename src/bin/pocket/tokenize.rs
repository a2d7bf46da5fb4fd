//! `pocket tokenize`: a text's tokens under a model's vocabulary, printed as llama-tokenize prints
//! them (`id -> 'piece'` lines, or `--ids` as a list), or as one JSON document.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use pocket::exec::tokenizer::Vocab;
use pocket::GgufFile;
use serde_json::json;

use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// The GGUF file (for a split model, its first shard, which holds the vocabulary).
    model: PathBuf,
    #[command(flatten)]
    text: TextArgs,
    /// Read the text from standard input.
    #[arg(long, conflicts_with_all = ["prompt", "file"])]
    stdin: bool,
    /// Print only the ids, as a list: [2, 9259, 1902].
    #[arg(long)]
    ids: bool,
    /// Print one JSON document: ids, pieces, and the settings used.
    #[arg(long)]
    json: bool,
    /// Do not add a BOS token even if the model asks for one.
    #[arg(long)]
    no_bos: bool,
    /// Treat special-token text (<start_of_turn>, <|im_end|>) as plain text.
    #[arg(long)]
    no_parse_special: bool,
    /// Take backslash escapes (\n, \t, \xNN...) literally instead of processing them.
    #[arg(long)]
    no_escape: bool,
    /// Also print the number of tokens.
    #[arg(long)]
    show_count: bool,
}

/// The text given as llama.cpp's tools take it, `-p TEXT` or `-f FILE` (shared by `run`/`chat`).
#[derive(clap::Args)]
pub struct TextArgs {
    /// The prompt, or the text to tokenize (in a chat: the first user message).
    #[arg(short = 'p', long = "prompt", value_name = "TEXT")]
    pub prompt: Option<String>,
    /// Read the text from this file (bytes kept exactly, a final newline included).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "prompt"
    )]
    pub file: Option<PathBuf>,
}

impl TextArgs {
    /// The text's bytes, if -p or -f was given.
    pub fn bytes(&self) -> Result<Option<Vec<u8>>, Failure> {
        Ok(match (&self.prompt, &self.file) {
            (Some(p), _) => Some(p.clone().into_bytes()),
            (None, Some(f)) => {
                Some(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?)
            }
            (None, None) => None,
        })
    }
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let result = tokenize(a, out);
    crate::json_failure(a.json, &a.model, out, result)
}

fn tokenize(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let mut text: Vec<u8> = if let Some(b) = a.text.bytes()? {
        b
    } else if a.stdin {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("reading standard input")?;
        b
    } else {
        return Err(Failure::usage(
            "give the text with -p TEXT, -f FILE or --stdin",
        ));
    };
    if !a.no_escape {
        text = process_escapes(&text);
    }
    let text = match String::from_utf8(text) {
        Ok(t) => t,
        Err(e) => {
            return Err(anyhow::anyhow!(
                "the text is not valid UTF-8 (at byte {})",
                e.utf8_error().valid_up_to()
            )
            .into())
        }
    };

    let path = a.model.display().to_string();
    let file = GgufFile::open(&a.model)?;
    let g = file.gguf().with_context(|| path.clone())?;
    let vocab = Vocab::from_gguf(&g).with_context(|| format!("{path}: vocabulary"))?;

    let add_special = vocab.add_bos() && !a.no_bos;
    let parse_special = !a.no_parse_special;
    let ids = vocab.tokenize(&text, add_special, parse_special)?;
    // Freeing a 262k-token vocabulary one string at a time is a third of the run; the process ends
    // right after printing, so leave that to the OS.
    let vocab = &*Box::leak(Box::new(vocab));

    if a.json {
        let tokens: Vec<_> = ids
            .iter()
            .map(|&id| {
                let piece = vocab.token_to_piece(id, true).unwrap_or(&[]);
                match std::str::from_utf8(piece) {
                    Ok(s) => json!({"id": id, "piece": s}),
                    Err(_) => {
                        json!({"id": id, "piece": String::from_utf8_lossy(piece), "bytes": piece})
                    }
                }
            })
            .collect();
        let doc = json!({
            "model": path,
            "vocab_type": crate::fmt::enum_name(&format!("{:?}", vocab.vocab_type())),
            "pre": vocab.pre(),
            "n_vocab": vocab.n_tokens(),
            "add_special": add_special,
            "parse_special": parse_special,
            "n_tokens": ids.len(),
            "ids": ids,
            "tokens": tokens,
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        return Ok(0);
    }
    if a.ids {
        let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        writeln!(out, "[{}]", list.join(", "))?;
    } else {
        for &id in &ids {
            let piece = vocab.token_to_piece(id, true)?;
            // llama-tokenize prints the piece with printf("%s"), which stops at a NUL byte.
            let end = piece.iter().position(|&b| b == 0).unwrap_or(piece.len());
            write!(out, "{id:6} -> '")?;
            out.write_all(&piece[..end])?;
            out.write_all(b"'\n")?;
        }
    }
    if a.show_count {
        writeln!(out, "Total number of tokens: {}", ids.len())?;
    }
    Ok(0)
}

/// llama.cpp's `string_process_escapes`: \n \r \t \' \" \\ and \xNN; other escapes stay as written.
fn process_escapes(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 1 < s.len() {
            i += 1;
            match s[i] {
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'\'' => out.push(b'\''),
                b'"' => out.push(b'"'),
                b'\\' => out.push(b'\\'),
                b'x' if i + 2 < s.len()
                    && s[i + 1].is_ascii_hexdigit()
                    && s[i + 2].is_ascii_hexdigit() =>
                {
                    let hex = [s[i + 1], s[i + 2]];
                    let hex = std::str::from_utf8(&hex).unwrap_or("00");
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                    i += 2;
                }
                c => {
                    out.push(b'\\');
                    out.push(c);
                }
            }
        } else {
            out.push(s[i]);
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::process_escapes;

    #[test]
    fn escapes_as_llama_cpp() {
        assert_eq!(process_escapes(br"a\nb\tc\\d\x41\q\"), b"a\nb\tc\\dA\\q\\");
        // \x needs two more characters after it, as in llama.cpp.
        assert_eq!(process_escapes(br"\x4"), b"\\x4");
    }
}
