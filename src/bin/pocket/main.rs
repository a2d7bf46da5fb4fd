//! The `pocket` command line: parses arguments, calls the library, prints tables for people or one
//! JSON document for programs, and maps outcomes to exit codes (0 all well, 1 the answer is "no",
//! 2 usage or input errors). A closed stdout (`pocket inspect x | head`) ends quietly.

mod bench;
mod convert;
mod diff;
mod fmt;
mod hash;
mod imatrix;
mod inspect;
mod kld;
mod memory;
mod meta;
mod perplexity;
mod progress;
mod remote;
mod requantize;
mod run;
mod sanitize;
mod split;
mod tokenize;
mod verify;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use serde_json::{json, Map, Value as J};

/// `--version`: the package version, the commit it was built from and the SIMD kernels chosen on
/// this CPU.
fn long_version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        format!(
            "{} (commit {}, kernels {})",
            env!("CARGO_PKG_VERSION"),
            option_env!("POCKET_COMMIT").unwrap_or("unknown"),
            fmt::kernels()
        )
    })
}

#[derive(Parser)]
#[command(
    name = "pocket",
    version = long_version(),
    about = "Inspect, verify, requantize and run GGUF model files for phones"
)]
struct Cli {
    /// Tables as wide as their content, even on a narrow terminal.
    #[arg(long, global = true)]
    wide: bool,
    /// No progress bars, notes or warnings on stderr (errors are still printed).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More on stderr: kernels and threads, each HTTP request of a remote file, the time taken.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// What is in a GGUF file: summary, model, metadata, tensor types, memory at a context length.
    Inspect(inspect::Args),
    /// Read and edit metadata: get, set, rm (in place when the header fits).
    Meta(meta::Args),
    /// Split a model into shards exactly as llama-gguf-split does.
    Split(split::SplitArgs),
    /// Merge the shards of a split model into one file (as llama-gguf-split --merge).
    Merge(split::MergeArgs),
    /// Write the model in the other byte order (big- or little-endian); not a format conversion.
    #[command(visible_alias = "endian")]
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
    /// Generate text from a prompt (greedy at --temp 0), streaming tokens as they come; -i: a chat.
    Run(run::Args),
    /// A conversation with the model in its chat template (as `run -i`): one user message per line
    /// on stdin, the KV cache kept between turns.
    Chat(run::Args),
    /// Perplexity of a text, measured as llama-perplexity measures it.
    Perplexity(perplexity::Args),
    /// Prompt processing and generation speed, as llama-bench measures them.
    Bench(bench::Args),
    /// The importance matrix llama-imatrix computes on a text, in its GGUF format (for --imatrix).
    Imatrix(imatrix::Args),
    /// KL-divergence of a model from a base model on a text, as llama-perplexity --kl-divergence.
    Kld(kld::Args),
    /// Shell completions for pocket: `pocket completions bash > /etc/bash_completion.d/pocket`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// pocket's manual page (roff), generated from its options: `pocket man | man -l -`.
    Man,
}

/// The most threads a command starts (`-t`, `--threads`, NTHREADS): more is a typo, not a machine.
pub const MAX_THREADS: usize = 1024;

/// Refuses, before any work, an output a command that writes new files must not write: one that is
/// not a regular file (directory, device node, FIFO, socket: always), one that exists (without
/// `--force`, as llama-gguf-split), and one that is an input — the model or an auxiliary input
/// (`--imatrix`, `--from-json`, `--manifest`) — given as `(what, path)`, e.g. `("the input of
/// --imatrix", p)`.
pub fn check_output(
    output: &std::path::Path,
    force: bool,
    aux: &[(&str, &std::path::Path)],
) -> Result<(), Failure> {
    for (flag, p) in aux {
        if *p == output || pocket::fsio::same_file(p, output) {
            return Err(anyhow::anyhow!(
                "{}: refusing to overwrite {flag} (the same file); write elsewhere",
                output.display()
            )
            .into());
        }
    }
    pocket::fsio::check_new_output(output, force)?;
    Ok(())
}

/// An error with the exit code to use and, for the `--json` error document, what kind of error it
/// is and facts about it (file, offset...).
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
    pub kind: Option<&'static str>,
    pub facts: Map<String, J>,
    /// Its `--json` document is already on stdout (inspect's report of a file llama.cpp refuses).
    pub reported: bool,
}

impl Failure {
    /// A usage error (exit 2, kind "usage").
    pub fn usage(msg: impl std::fmt::Display) -> Failure {
        Failure::from(anyhow::anyhow!("{msg}")).kind("usage")
    }

    pub fn kind(mut self, kind: &'static str) -> Failure {
        self.kind = Some(kind);
        self
    }

    pub fn reported(mut self, yes: bool) -> Failure {
        self.reported = yes;
        self
    }

    pub fn fact(mut self, name: &str, value: impl Into<J>) -> Failure {
        self.facts.insert(name.to_string(), value.into());
        self
    }

    /// The `--json` failure document: `{"error": {"kind", "message", ...facts}}`.
    fn to_json(&self) -> J {
        let mut e = Map::new();
        let gguf = self
            .error
            .chain()
            .find_map(|c| c.downcast_ref::<pocket::GgufError>());
        let kind = self.kind.unwrap_or_else(|| {
            if let Some(g) = gguf {
                g.kind()
            } else if self.error.chain().any(|c| c.is::<io::Error>()) {
                "io"
            } else {
                "invalid_input"
            }
        });
        e.insert("kind".into(), json!(kind));
        e.insert("message".into(), json!(format!("{:#}", self.error)));
        if let Some(g) = gguf {
            e.insert("offset".into(), json!(g.offset()));
        }
        for (k, v) in &self.facts {
            e.insert(k.clone(), v.clone());
        }
        json!({ "error": e })
    }
}

/// `result` with `file` named in its `--json` failure document.
pub fn json_failure(
    _json: bool,
    file: &std::path::Path,
    _out: &mut dyn std::io::Write,
    result: Result<u8, Failure>,
) -> Result<u8, Failure> {
    result.map_err(|f| f.fact("file", file.display().to_string()))
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            code: 2,
            error: e.into(),
            kind: None,
            facts: Map::new(),
            reported: false,
        }
    }
}

/// The command line asks for JSON on stdout (`--json`, or bench's `-o json|jsonl`).
fn wants_json(args: &[String]) -> bool {
    args.iter().enumerate().any(|(i, a)| {
        a == "--json"
            || ((a == "-o" || a == "--output")
                && args.get(i + 1).is_some_and(|v| v.starts_with("json")))
            || a.starts_with("-ojson")
            || a.starts_with("--output=json")
    })
}

fn print_json_error(doc: &J) {
    let mut o = io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut o, doc);
    let _ = writeln!(o);
    let _ = o.flush();
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let json_out = wants_json(&args);
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            if code == 2 && json_out {
                let msg = e.kind().to_string();
                let full = e.render().to_string();
                let first = full
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or(&msg)
                    .trim_start_matches("error: ")
                    .to_string();
                print_json_error(&json!({"error": {"kind": "usage", "message": first}}));
            }
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    fmt::init(cli.wide, cli.quiet, cli.verbose);
    pocket::gguf::file::install_sigbus_handler();
    // SIGINT, SIGTERM, SIGHUP: exit at once when nothing is being written; otherwise the writer is
    // asked to stop at a safe point, removes its temporary file and leaves the target as it was (an
    // in-place header write finishes first). See pocket::fsio::on_signal.
    let _ = ctrlc::set_handler(|| pocket::fsio::on_signal(130));
    pocket::gguf::file::set_wait_notice(|p, exclusive| {
        eprintln!(
            "pocket: waiting for {}: another pocket process is {} it",
            p.display(),
            if exclusive { "using" } else { "writing" }
        )
    });
    let started = std::time::Instant::now();
    if fmt::look().verbose {
        eprintln!(
            "pocket {}: kernels {}, {} threads",
            env!("CARGO_PKG_VERSION"),
            fmt::kernels(),
            rayon::current_num_threads()
        );
    }
    let stdout = io::stdout();
    let buffered = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    // Human output never carries a file's control characters to the terminal (sanitize.rs); JSON and
    // `meta get` into a pipe (a value for a script) are passed exactly.
    // tokenize prints token pieces as llama-tokenize does.
    let raw = std::env::args_os().any(|a| a == "--json")
        || matches!(&cli.command, Command::Tokenize(_))
        || (matches!(&cli.command, Command::Meta(m) if m.is_get())
            && !std::io::IsTerminal::is_terminal(&io::stdout()));
    let mut out: Box<dyn Write> = if raw {
        Box::new(buffered)
    } else {
        Box::new(sanitize::Clean::new(buffered))
    };
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
        Command::Chat(a) => run::chat(a, &mut out),
        Command::Perplexity(a) => perplexity::run(a, &mut out),
        Command::Bench(a) => bench::run(a, &mut out),
        Command::Kld(a) => kld::run(a, &mut out),
        Command::Imatrix(a) => imatrix::run(a, &mut out),
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "pocket", &mut out);
            Ok(0)
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut out)
            .map(|_| 0)
            .map_err(Failure::from),
    };
    // Nothing half-written goes before the error document.
    let flushed = out.flush();
    drop(out);
    if fmt::look().verbose {
        eprintln!("pocket: took {:.3} s", started.elapsed().as_secs_f64());
    }
    match result {
        Ok(code) => match flushed {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                eprintln!("pocket: writing output: {e}");
                ExitCode::from(2)
            }
            _ => ExitCode::from(code),
        },
        Err(f) => {
            if is_broken_pipe(&f.error)
                || flushed
                    .as_ref()
                    .is_err_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::from(0);
            }
            if pocket::fsio::stop_requested() {
                eprintln!("pocket: interrupted: nothing was written (the output is as it was)");
                return ExitCode::from(130);
            }
            if json_out && !f.reported {
                print_json_error(&f.to_json());
            }
            eprintln!("pocket: {}", sanitize::clean(&format!("{:#}", f.error)));
            ExitCode::from(f.code)
        }
    }
}

/// A write to a closed pipe, however it was wrapped (serde_json keeps the io::Error inside itself).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}
