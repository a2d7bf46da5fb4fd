//! Embedding pocket's core in an app (Android via the NDK, iOS via a static library): the library
//! alone, `--no-default-features`, has no terminal code. This reads a model's header from its first
//! bytes — as an app would while the download is still arriving — and verifies the file.
//!
//!     cargo run --release --example embed -- testdata/tiny-llama-q8_0.gguf

use std::io::Read;

use pocket::gguf::Gguf;
use pocket::verify::{verify, Options, Status};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: embed FILE.gguf")?;
    let size = std::fs::metadata(&path)?.len();

    // The header from the first megabytes only: validated against the full size the file will have.
    let mut prefix = Vec::new();
    std::fs::File::open(&path)?
        .take(8 << 20)
        .read_to_end(&mut prefix)?;
    let g = Gguf::parse_header_only(&prefix, size)?;
    println!(
        "{}: GGUF v{}, {} tensors, {} parameters, architecture {}",
        path,
        g.version,
        g.tensors.len(),
        g.n_params(),
        g.architecture().unwrap_or("?")
    );

    // The whole file: structure, numbers, completeness, tokenizer.
    let report = verify(std::path::Path::new(&path), &Options::default())?;
    for c in report.checks.iter().filter(|c| c.status != Status::Pass) {
        println!("  {} {}: {}", c.status.name(), c.check, c.message);
    }
    println!("verify: {}", report.worst().name());
    std::process::exit(if report.worst() == Status::Fail { 1 } else { 0 });
}
