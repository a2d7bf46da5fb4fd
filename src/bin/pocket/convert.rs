//! `pocket convert IN OUT --endian big|little`: the same model in the other byte order.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use pocket::edit::convert::convert_endian;
use pocket::gguf::spec::Endian;
use pocket::gguf::GgufFile;
use serde_json::json;

use crate::fmt::bytes;
use crate::Failure;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Order {
    Big,
    Little,
}

#[derive(clap::Args)]
pub struct Args {
    input: PathBuf,
    output: PathBuf,
    /// The byte order to write.
    #[arg(long, value_enum)]
    endian: Order,
    /// Replace OUTPUT if it exists (a symlink is replaced itself, not the file it points to).
    #[arg(long)]
    force: bool,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let name = a.input.display().to_string();
    crate::check_output(&a.output, a.force, &[("the input", &a.input)])?;
    let f = GgufFile::open(&a.input).context(name.clone())?;
    let g = f.gguf().context(name.clone())?;
    let to = match a.endian {
        Order::Big => Endian::Big,
        Order::Little => Endian::Little,
    };
    let pb = crate::progress::bytes_bar(g.tensor_bytes(), "convert");
    let r = convert_endian(&g, &a.input, &a.output, to, &mut |n| pb.inc(n));
    pb.finish_and_clear();
    let r = r.context(name.clone())?;
    if a.json {
        let doc = json!({"input": name, "output": a.output.display().to_string(), "from": r.from.name(),
            "to": r.to.name(), "n_tensors": r.n_tensors, "swapped_tensors": r.swapped_tensors,
            "bytes_written": r.bytes_written});
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{} ({}-endian) → {} ({}-endian): {} tensors, {} with words swapped, {}",
            name,
            r.from.name(),
            a.output.display(),
            r.to.name(),
            r.n_tensors,
            r.swapped_tensors,
            bytes(r.bytes_written)
        )?;
    }
    Ok(0)
}
