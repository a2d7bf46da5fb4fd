//! `pocket requantize IN OUT TYPE [NTHREADS]`: llama-quantize's conversion, same options and same
//! output, streamed in bounded memory; `--dry-run` prints the plan, `--report` the error of each
//! converted tensor.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use serde_json::json;

use pocket::gguf::spec::{ggml_type_by_name, ggml_types, GgmlType};
use pocket::gguf::{Gguf, Model};
use pocket::requant::convert::{output_paths, prepare, Prepared};
use pocket::requant::{
    requantize, Ftype, Imatrix, KvOverride, Options, Params, TensorReport, TensorTypeOverride,
    FTYPES,
};

use crate::fmt::{bytes, table};
use crate::Failure;

#[derive(Parser)]
#[command(
    override_usage = "pocket requantize [OPTIONS] IN OUT TYPE [NTHREADS]\n       \
                            pocket requantize --dry-run [OPTIONS] IN TYPE [NTHREADS]"
)]
pub struct Args {
    /// IN OUT TYPE [NTHREADS]; with --dry-run OUT may be left out (IN TYPE [NTHREADS]).
    /// TYPE is one of llama-quantize's names (Q4_K_M, Q8_0, IQ4_XS, F16, COPY, ...) or its number.
    #[arg(required = true, num_args = 2..=4, value_name = "IN OUT TYPE [NTHREADS]")]
    positional: Vec<String>,
    /// Allow converting tensors that are already quantized (loses quality).
    #[arg(long)]
    allow_requantize: bool,
    /// No mixes: every quantizable tensor gets the type's default block format.
    #[arg(long)]
    pure: bool,
    /// Leave output.weight as it is.
    #[arg(long)]
    leave_output_tensor: bool,
    /// ggml type for output.weight (q8_0, f16, ...).
    #[arg(long, value_name = "TYPE")]
    output_tensor_type: Option<String>,
    /// ggml type for the token embeddings.
    #[arg(long, value_name = "TYPE")]
    token_embedding_type: Option<String>,
    /// REGEX=TYPE: tensors whose name matches REGEX get ggml type TYPE (repeatable; first match wins).
    #[arg(long, value_name = "REGEX=TYPE")]
    tensor_type: Vec<String>,
    /// Importance matrix (llama-imatrix's GGUF output).
    #[arg(long, value_name = "FILE")]
    imatrix: Option<PathBuf>,
    /// Use the importance matrix only for tensors whose name contains this (repeatable).
    #[arg(long, value_name = "NAME", conflicts_with = "exclude_weights")]
    include_weights: Vec<String>,
    /// Do not use the importance matrix for tensors whose name contains this (repeatable).
    #[arg(long, value_name = "NAME")]
    exclude_weights: Vec<String>,
    /// KEY=TYPE:VALUE (TYPE int, float, bool or str): set metadata in the output (repeatable).
    #[arg(long, value_name = "KEY=TYPE:VALUE")]
    override_kv: Vec<String>,
    /// Write the output in the same shards as the (split) input, named as llama-quantize names them.
    #[arg(long)]
    keep_split: bool,
    /// Print the plan (each tensor's type and why, sizes) without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// After writing, measure each converted tensor's error against its source, worst first.
    #[arg(long)]
    report: bool,
    /// Replace outputs that exist already (a symlink is replaced itself, not the file it points to).
    #[arg(long)]
    force: bool,
    /// One JSON document on stdout (the plan with --dry-run, else the result and report).
    #[arg(long)]
    json: bool,
}

fn usage(msg: String) -> Failure {
    Failure::usage(msg)
}

fn parse_type(s: &str, what: &str) -> Result<GgmlType, Failure> {
    ggml_type_by_name(s).ok_or_else(|| {
        let names: Vec<&str> = ggml_types().map(|t| t.name).collect();
        usage(format!(
            "{what}: unknown ggml type '{s}' (one of {})",
            names.join(", ")
        ))
    })
}

fn parse_ftype(s: &str) -> Result<Ftype, Failure> {
    Ftype::parse(s).ok_or_else(|| {
        let names: Vec<&str> = FTYPES.iter().map(|f| f.name).collect();
        usage(format!(
            "unknown quantization type '{s}': one of {}",
            names.join(", ")
        ))
    })
}

struct Cmd {
    input: PathBuf,
    output: Option<PathBuf>,
    ftype: Ftype,
    threads: usize,
}

fn positionals(a: &Args) -> Result<Cmd, Failure> {
    let p = &a.positional;
    let input = PathBuf::from(&p[0]);
    // As llama-quantize: a second argument that is a type name means no output was given.
    let (output, rest) = match Ftype::parse(&p[1]) {
        Some(_) if a.dry_run => (None, &p[1..]),
        _ => (Some(PathBuf::from(&p[1])), &p[2..]),
    };
    let Some(ty) = rest.first() else {
        return Err(usage("missing TYPE (e.g. Q4_K_M)".into()));
    };
    let ftype = parse_ftype(ty)?;
    let threads = match rest.get(1) {
        None => 0,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|&t| t <= crate::MAX_THREADS)
            .ok_or_else(|| {
                usage(format!(
                    "NTHREADS '{n}' is not a number from 0 to {}",
                    crate::MAX_THREADS
                ))
            })?,
    };
    if rest.len() > 2 {
        return Err(usage(format!("unexpected argument '{}'", rest[2])));
    }
    if output.is_none() && !a.dry_run {
        return Err(usage("missing OUT".into()));
    }
    Ok(Cmd {
        input,
        output,
        ftype,
        threads,
    })
}

fn options(a: &Args, ftype: Ftype) -> Result<Options, Failure> {
    let mut params = Params::new(ftype);
    params.pure = a.pure;
    params.quantize_output_tensor = !a.leave_output_tensor;
    if let Some(t) = &a.output_tensor_type {
        params.output_tensor_type = Some(parse_type(t, "--output-tensor-type")?);
    }
    if let Some(t) = &a.token_embedding_type {
        params.token_embedding_type = Some(parse_type(t, "--token-embedding-type")?);
    }
    for tt in &a.tensor_type {
        let (pat, ty) = tt
            .split_once('=')
            .ok_or_else(|| usage(format!("--tensor-type '{tt}': expected REGEX=TYPE")))?;
        if pat.is_empty() {
            return Err(usage(format!("--tensor-type '{tt}': missing tensor name")));
        }
        if ty.is_empty() {
            return Err(usage(format!("--tensor-type '{tt}': missing type")));
        }
        let ty = parse_type(ty, "--tensor-type")?;
        // llama-quantize lower-cases the pattern before compiling it.
        let lower = pat.to_ascii_lowercase();
        let re = regex::Regex::new(&lower)
            .map_err(|e| usage(format!("--tensor-type '{tt}': bad regex: {e}")))?;
        params.tensor_types.push(TensorTypeOverride {
            pattern: lower,
            ty,
            matcher: Box::new(move |n| re.is_match(n)),
        });
    }
    let overrides = a
        .override_kv
        .iter()
        .map(|s| KvOverride::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let imatrix = match &a.imatrix {
        None => {
            if !a.include_weights.is_empty() || !a.exclude_weights.is_empty() {
                return Err(usage(
                    "--include-weights/--exclude-weights need --imatrix".into(),
                ));
            }
            None
        }
        Some(path) => {
            let mut m = Imatrix::load(path)?;
            m.filter(&a.include_weights, &a.exclude_weights);
            m.check_finite(path)?;
            Some((m, path.to_string_lossy().to_string()))
        }
    };
    Ok(Options {
        params,
        allow_requantize: a.allow_requantize,
        keep_split: a.keep_split,
        overrides,
        imatrix,
        n_threads: 0,
        report: a.report,
    })
}

fn shape(d: &[u64]) -> String {
    d.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(" x ")
}

fn bpw(b: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        b as f64 * 8.0 / n as f64
    }
}

fn print_plan(
    prep: &Prepared<'_>,
    ftype: Ftype,
    json_out: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let before: u64 = prep.plan.tensors.iter().map(|t| t.bytes_from()).sum();
    let after: u64 = prep.plan.tensors.iter().map(|t| t.bytes_to()).sum();
    let n = prep.n_elements;
    if json_out {
        let tensors: Vec<_> = prep
            .plan
            .tensors
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "shape": t.dims,
                    "from": t.from.upper_name(),
                    "to": t.to.upper_name(),
                    "rule": t.rule.to_string(),
                    "fallback_from": t.fallback_from.map(|f| f.upper_name()),
                    "requires_imatrix": t.allows_quantization && t.requires_imatrix,
                    "bytes_from": t.bytes_from(),
                    "bytes_to": t.bytes_to(),
                })
            })
            .collect();
        let doc = json!({
            "ftype": ftype.name,
            "file_type": prep.file_type,
            "n_tensors": prep.plan.tensors.len(),
            "n_converted": prep.plan.tensors.iter().filter(|t| t.converts()).count(),
            "n_fallback": prep.plan.n_fallback,
            "requires_imatrix": prep.needs_imatrix.as_ref().map(|(t, ty)| json!({"tensor": t, "type": ty})),
            "n_elements": n,
            "bytes_from": before,
            "bytes_to": after,
            "bpw_from": bpw(before, n),
            "bpw_to": bpw(after, n),
            "tensors": tensors,
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        return Ok(());
    }
    let mut t = table(&["tensor", "shape", "from", "to", "rule", "before", "after"]);
    t.max_lines(2);
    for p in &prep.plan.tensors {
        let rule = match p.fallback_from {
            Some(f) => format!("{} (rows fit no {} block: fallback)", p.rule, f.name),
            None => p.rule.to_string(),
        };
        t.add_row(vec![
            p.name.clone(),
            shape(&p.dims),
            p.from.upper_name(),
            if p.converts() {
                p.to.upper_name()
            } else {
                "=".into()
            },
            rule,
            bytes(p.bytes_from()),
            bytes(p.bytes_to()),
        ]);
    }
    writeln!(out, "{t}")?;
    writeln!(
        out,
        "{}: {} tensors, {} converted, {} fallbacks",
        ftype.name,
        prep.plan.tensors.len(),
        prep.plan.tensors.iter().filter(|t| t.converts()).count(),
        prep.plan.n_fallback
    )?;
    writeln!(
        out,
        "size: {} ({:.2} bpw) -> {} ({:.2} bpw)",
        bytes(before),
        bpw(before, n),
        bytes(after),
        bpw(after, n)
    )?;
    if let Some((tensor, ty)) = &prep.needs_imatrix {
        writeln!(
            out,
            "note: writing this needs an importance matrix (--imatrix): {tensor} would be {ty}"
        )?;
    }
    Ok(())
}

/// Sizes before and after (bytes), elements, and seconds taken: llama-quantize's closing summary.
struct Sizes {
    before: u64,
    after: u64,
    n: u64,
    secs: f64,
}

fn print_report(
    reports: &[TensorReport],
    written: &[PathBuf],
    sizes: &Sizes,
    json_out: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if json_out {
        let doc = json!({
            "outputs": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "model_size_bytes": sizes.before,
            "quant_size_bytes": sizes.after,
            "bpw_from": bpw(sizes.before, sizes.n),
            "bpw_to": bpw(sizes.after, sizes.n),
            "seconds": sizes.secs,
            "report": reports.iter().map(|r| json!({
                "name": r.name, "from": r.from.upper_name(), "to": r.to.upper_name(), "n": r.n,
                "rmse": r.rmse, "max_abs": r.max_abs, "rel": r.rel,
            })).collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        return Ok(());
    }
    for p in written {
        writeln!(out, "wrote {}", p.display())?;
    }
    let mib = |b: u64| b as f64 / 1024.0 / 1024.0;
    writeln!(
        out,
        "model size  = {:8.2} MiB ({:.2} BPW)",
        mib(sizes.before),
        bpw(sizes.before, sizes.n)
    )?;
    writeln!(
        out,
        "quant size  = {:8.2} MiB ({:.2} BPW)",
        mib(sizes.after),
        bpw(sizes.after, sizes.n)
    )?;
    writeln!(out, "quantize time = {:8.2} ms", sizes.secs * 1000.0)?;
    if !reports.is_empty() {
        let mut t = table(&["tensor", "from", "to", "rmse", "max abs", "relative"]);
        for r in reports {
            t.add_row(vec![
                r.name.clone(),
                r.from.upper_name(),
                r.to.upper_name(),
                format!("{:.3e}", r.rmse),
                format!("{:.3e}", r.max_abs),
                format!("{:.4}", r.rel),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    Ok(())
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    let cmd = positionals(a)?;
    if let (Some(o), Some(im), false) = (&cmd.output, &a.imatrix, a.dry_run) {
        crate::check_output(o, true, &[("the input of --imatrix", im)])?;
    }
    let mut opts = options(a, cmd.ftype)?;
    opts.n_threads = cmd.threads;
    let model = Model::open(&cmd.input).with_context(|| format!("{}", cmd.input.display()))?;
    let ggufs: Vec<Gguf<'_>> = model
        .files
        .iter()
        .map(|f| f.gguf())
        .collect::<Result<_, _>>()?;
    let paths: Vec<&Path> = model.files.iter().map(|f| f.path()).collect();
    let prep = prepare(&ggufs, &paths, &opts)?;
    if a.dry_run {
        print_plan(&prep, cmd.ftype, a.json, out)?;
        return Ok(0);
    }
    let Some(output) = &cmd.output else {
        return Err(usage("missing OUT".into()));
    };
    let outputs = output_paths(output, &prep, opts.keep_split);
    let aux: Vec<(&str, &Path)> = a
        .imatrix
        .iter()
        .map(|p| ("the input of --imatrix", p.as_path()))
        .chain(model.files.iter().map(|f| ("the input", f.path())))
        .collect();
    for o in &outputs {
        crate::check_output(o, a.force, &aux)?;
    }
    let total: u64 = prep.order.iter().map(|(_, t)| t.n_bytes).sum();
    let bar = crate::progress::tensors_bar(total);
    let started = std::time::Instant::now();
    let reports = requantize(&model.files, &ggufs, &prep, &opts, &outputs, &mut |p| {
        bar.set_position(p.bytes_done);
        bar.set_message(p.name.to_string());
    });
    bar.finish_and_clear();
    let reports = reports?;
    let sizes = Sizes {
        before: prep.plan.tensors.iter().map(|t| t.bytes_from()).sum(),
        after: prep.plan.tensors.iter().map(|t| t.bytes_to()).sum(),
        n: prep.n_elements,
        secs: started.elapsed().as_secs_f64(),
    };
    print_report(&reports, &outputs, &sizes, a.json, out)?;
    Ok(0)
}
