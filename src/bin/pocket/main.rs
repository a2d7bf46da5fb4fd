//! The `pocket` command line: parses arguments, calls the library, prints tables for people or one
//! JSON document for programs, and maps outcomes to exit codes (0 all well, 1 the answer is "no",
//! 2 usage or input errors). A closed stdout (`pocket inspect x | head`) ends quietly.

mod bench;
mod convert;
mod diff;
mod fmt;
mod hash;
mod inspect;
mod kld;
mod memory;
mod meta;
mod perplexity;
mod progress;
mod remote;
mod requantize;
mod run;
mod split;
mod tokenize;
mod verify;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "pocket",
    version,
    about = "Inspect, verify, requantize and run GGUF model files for phones"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// What is in a GGUF file: summary, metadata, tensor types, memory at a context length.
    Inspect(inspect::Args),
    /// Read and edit metadata: get, set, rm (in place when the header fits).
    Meta(meta::Args),
    /// Split a model into shards exactly as llama-gguf-split does.
    Split(split::SplitArgs),
    /// Merge the shards of a split model into one file (as llama-gguf-split --merge).
    Merge(split::MergeArgs),
    /// Write the model in the other byte order (big- or little-endian).
    Convert(convert::Args),
    /// What differs between two models: metadata, tensors, values (exit 1 when they differ).
    Diff(diff::Args),
    /// Is this file sound, complete and runnable, and will it fit on a device?
    Verify(verify::Args),
    /// Per-tensor SHA-256 as `llama-gguf-hash --sha256` prints them; `--check MANIFEST`.
    Hash(hash::Args),
    /// A text's tokens under a model's vocabulary, as llama-tokenize prints them.
    Tokenize(tokenize::Args),
    /// Convert a model to another quantization type exactly as llama-quantize does (--dry-run: the plan).
    Requantize(requantize::Args),
    /// Generate text from a prompt (greedy at --temp 0), streaming tokens as they come.
    Run(run::Args),
    /// Perplexity of a text, measured as llama-perplexity measures it.
    Perplexity(perplexity::Args),
    /// Prompt processing and generation speed, as llama-bench measures them.
    Bench(bench::Args),
    /// KL-divergence of a model from a base model on a text, as llama-perplexity --kl-divergence.
    Kld(kld::Args),
}

/// An error that has already been reported in the right form, with the exit code to use.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

/// `result`, and with `--json` its failure also as one JSON document naming `file` (what the
/// executor commands print when they fail).
pub fn json_failure(
    json: bool,
    file: &std::path::Path,
    out: &mut dyn std::io::Write,
    result: Result<u8, Failure>,
) -> Result<u8, Failure> {
    if let (true, Err(f)) = (json, &result) {
        let doc = serde_json::json!({"error": {"file": file.display().to_string(), "message": format!("{:#}", f.error)}});
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    }
    result
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            code: 2,
            error: e.into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    pocket::gguf::file::install_sigbus_handler();
    // Ctrl-C: remove any half-written output before going, so no partial file is left behind.
    let _ = ctrlc::set_handler(|| {
        pocket::fsio::remove_pending_temps();
        std::process::exit(130);
    });
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = match &cli.command {
        Command::Inspect(a) => inspect::run(a, &mut out),
        Command::Meta(a) => meta::run(a, &mut out),
        Command::Split(a) => split::run_split(a, &mut out),
        Command::Merge(a) => split::run_merge(a, &mut out),
        Command::Convert(a) => convert::run(a, &mut out),
        Command::Diff(a) => diff::run(a, &mut out),
        Command::Verify(a) => verify::run(a, &mut out),
        Command::Hash(a) => hash::run(a, &mut out),
        Command::Tokenize(a) => tokenize::run(a, &mut out),
        Command::Requantize(a) => requantize::run(a, &mut out),
        Command::Run(a) => run::run(a, &mut out),
        Command::Perplexity(a) => perplexity::run(a, &mut out),
        Command::Bench(a) => bench::run(a, &mut out),
        Command::Kld(a) => kld::run(a, &mut out),
    };
    let flushed = out.flush();
    match result {
        Ok(code) => match flushed {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                eprintln!("pocket: writing output: {e}");
                ExitCode::from(2)
            }
            _ => ExitCode::from(code),
        },
        Err(f) => {
            if is_broken_pipe(&f.error) {
                return ExitCode::from(0);
            }
            eprintln!("pocket: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
