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
    /// A file of REGEX=TYPE entries separated by spaces or newlines, as llama-quantize's
    /// --tensor-type-file (applied after the --tensor-type options).
    #[arg(long, value_name = "FILE")]
    tensor_type_file: Option<PathBuf>,
    /// Choose a type per tensor so that the output file is at most this size (bytes, or with a
    /// suffix: K, M, G = 10^3, 10^6, 10^9 bytes; KiB, MiB, GiB = 2^10, 2^20, 2^30), with the least
    /// expected loss of quality. TYPE is the base mix: tensors the budget does not choose (norms,
    /// tensors named by other options) follow it.
    #[arg(long, value_name = "SIZE", conflicts_with_all = ["target_bpw", "fit"])]
    target_size: Option<String>,
    /// As --target-size, for a size in bits per weight (llama-quantize's "quant size" BPW).
    #[arg(long, value_name = "BPW", conflicts_with = "fit")]
    target_bpw: Option<f64>,
    /// As --target-size, for the largest model that fits a device at --ctx (as `pocket verify
    /// --device` judges it: weights, their repacked copies on Android, KV cache and compute buffers
    /// under 80% of what an app may use), with the types the device's llama.cpp backend multiplies
    /// by: a built-in profile id (`pocket verify --list-devices`) or a TOML/JSON profile file.
    #[arg(long, value_name = "NAME|FILE")]
    fit: Option<String>,
    /// The context length --fit sizes the KV cache and compute buffers for.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    ctx: u64,
    /// The types --target-size/--target-bpw choose among (comma-separated).
    #[arg(
        long,
        value_name = "TYPES",
        value_delimiter = ',',
        default_value = "q2_K,q3_K,iq3_s,q4_0,q4_1,iq4_nl,iq4_xs,q4_K,q5_0,q5_1,q5_K,q6_K,q8_0"
    )]
    candidates: Vec<String>,
    /// Rows of each tensor a budget measures its sensitivity on.
    #[arg(long, value_name = "N", default_value_t = pocket::requant::budget::DEFAULT_SAMPLE_ROWS)]
    sample_rows: usize,
    /// Put each tensor's sensitivity on the model's own scale: quantize it alone and measure with
    /// the executor how far that moves the next-token distributions on this text (mean
    /// KL-divergence). Slower (a forward pass per tensor), better choices; the model must be one
    /// `pocket run` runs.
    #[arg(long, value_name = "TEXT")]
    measure: Option<PathBuf>,
    /// Tokens of --measure's text used (the second half are scored).
    #[arg(long, value_name = "N", default_value_t = 128)]
    measure_tokens: usize,
    /// Write the budget's choice as a llama-quantize --tensor-type-file (to reproduce the output
    /// with `llama-quantize --tensor-type-file FILE`).
    #[arg(long, value_name = "FILE")]
    write_tensor_types: Option<PathBuf>,
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
    /// After writing, run the output and the input on this text and report how far the output's
    /// next-token distributions are from the input's: mean KL-divergence, same top token,
    /// perplexity ratio (as `pocket kld` measures them).
    #[arg(long, value_name = "TEXT")]
    report_text: Option<PathBuf>,
    /// The context (chunk length) of --report-text.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 512,
        requires = "report_text"
    )]
    report_ctx: usize,
    /// At most this many chunks of --report-text (default: all the text holds).
    #[arg(long, value_name = "N", requires = "report_text")]
    report_chunks: Option<usize>,
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

/// One `REGEX=TYPE` of --tensor-type or --tensor-type-file, as llama-quantize's `parse_tensor_type`
/// reads it (the pattern lower-cased, then compiled).
fn push_tensor_type(params: &mut Params, tt: &str, flag: &str) -> Result<(), Failure> {
    let (pat, ty) = tt
        .split_once('=')
        .ok_or_else(|| usage(format!("{flag} '{tt}': expected REGEX=TYPE")))?;
    if pat.is_empty() {
        return Err(usage(format!("{flag} '{tt}': missing tensor name")));
    }
    if ty.is_empty() {
        return Err(usage(format!("{flag} '{tt}': missing type")));
    }
    let ty = parse_type(ty, flag)?;
    let lower = pat.to_ascii_lowercase();
    let re =
        regex::Regex::new(&lower).map_err(|e| usage(format!("{flag} '{tt}': bad regex: {e}")))?;
    params.tensor_types.push(TensorTypeOverride {
        pattern: lower,
        ty,
        matcher: Box::new(move |n| re.is_match(n)),
    });
    Ok(())
}

/// The largest --tensor-type-file read (a list of patterns: a few hundred kilobytes at most).
const MAX_TENSOR_TYPE_FILE: u64 = 16 << 20;

/// The entries of a --tensor-type-file: words separated by white space (`file >> arg`).
fn read_tensor_type_file(path: &Path) -> Result<Vec<String>, Failure> {
    let bad = |m: String| usage(format!("--tensor-type-file {}: {m}", path.display()));
    let f = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let len = f.metadata().map_err(|e| bad(e.to_string()))?.len();
    if len > MAX_TENSOR_TYPE_FILE {
        return Err(bad(format!(
            "{len} bytes; a tensor type file is at most {MAX_TENSOR_TYPE_FILE}"
        )));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(f, MAX_TENSOR_TYPE_FILE), &mut text)
        .map_err(|e| bad(e.to_string()))?;
    Ok(text.split_whitespace().map(str::to_string).collect())
}

/// A --target-size: bytes, or a number with a decimal (K, M, G, T) or binary (KiB, MiB, GiB, TiB)
/// suffix.
fn parse_target_size(s: &str) -> Result<u64, Failure> {
    let bad = || {
        usage(format!(
            "--target-size '{s}': give a size in bytes or with a suffix (K, M, G, KiB, MiB, GiB), e.g. 1.2G"
        ))
    };
    let t = s.trim();
    let units: [(&str, f64); 9] = [
        ("KiB", 1024.0),
        ("MiB", 1048576.0),
        ("GiB", 1073741824.0),
        ("TiB", 1099511627776.0),
        ("K", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("B", 1.0),
    ];
    let (num, mult) = units
        .iter()
        .find_map(|(u, m)| t.strip_suffix(u).map(|n| (n, *m)))
        .unwrap_or((t, 1.0));
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    let v = n * mult;
    if !(v.is_finite() && (1.0..1.8e19).contains(&v)) {
        return Err(bad());
    }
    Ok(v as u64)
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
    let mut specs: Vec<(String, &str)> = a
        .tensor_type
        .iter()
        .map(|t| (t.clone(), "--tensor-type"))
        .collect();
    if let Some(f) = &a.tensor_type_file {
        specs.extend(
            read_tensor_type_file(f)?
                .into_iter()
                .map(|t| (t, "--tensor-type-file")),
        );
    }
    for (tt, flag) in &specs {
        push_tensor_type(&mut params, tt, flag)?;
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

/// What --target-size / --target-bpw / --fit asks for.
#[derive(Clone)]
enum Target {
    Size(u64),
    Bpw(f64),
    Fit {
        device: Box<pocket::verify::device::DeviceProfile>,
        ctx: u64,
    },
}

/// How a --fit choice runs on its device ([`pocket::verify::device::estimate`] of the plan).
struct FitOutcome {
    /// The most the model may take: [`pocket::verify::device::TIGHT_SHARE`] of the app's budget.
    limit: u64,
    total: u64,
    verdict: &'static str,
    tokens_per_second: f64,
    /// Candidates the device's backend has no matrix product for (left out).
    dropped: Vec<String>,
}

fn budget_target(a: &Args) -> Result<Option<Target>, Failure> {
    if let Some(d) = &a.fit {
        if a.ctx == 0 {
            return Err(usage("--ctx must be at least 1".into()));
        }
        let device = crate::verify::load_device("--fit", d)?;
        return Ok(Some(Target::Fit {
            device: Box::new(device),
            ctx: a.ctx,
        }));
    }
    if let Some(s) = &a.target_size {
        return Ok(Some(Target::Size(parse_target_size(s)?)));
    }
    match a.target_bpw {
        None => {
            if a.write_tensor_types.is_some() {
                return Err(usage(
                    "--write-tensor-types needs --target-size, --target-bpw or --fit".into(),
                ));
            }
            Ok(None)
        }
        Some(b) if b.is_finite() && b > 0.0 && b <= 64.0 => Ok(Some(Target::Bpw(b))),
        Some(b) => Err(usage(format!(
            "--target-bpw {b}: give bits per weight above 0 and at most 64"
        ))),
    }
}

/// The folder of cached sensitivities: `$POCKET_CACHE/sensitivity`, else
/// `$XDG_CACHE_HOME/pocket/sensitivity`, else `~/.cache/pocket/sensitivity`.
fn cache_dir() -> Option<PathBuf> {
    pocket::fsio::cache_dir("sensitivity")
}

/// A file as the cache knows it: canonical path, size, modification time (a changed file is
/// measured again).
fn file_id(p: &Path) -> Option<String> {
    let m = std::fs::metadata(p).ok()?;
    let t = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let c = std::fs::canonicalize(p).ok()?;
    Some(format!("{}\0{}\0{}", c.display(), m.len(), t.as_nanos()))
}

/// What a model's sensitivities depend on: the input files, the importance matrix, the
/// candidates, the sample and the measuring text (and pocket's version). `None`: not cacheable.
fn cache_key(a: &Args, paths: &[&Path], types: &[GgmlType]) -> Option<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(format!(
        "pocket {} sensitivity v1\0",
        env!("CARGO_PKG_VERSION")
    ));
    for p in paths {
        h.update(file_id(p)?);
    }
    for p in a.imatrix.iter().chain(a.measure.iter()) {
        h.update(file_id(p)?);
    }
    h.update(format!(
        "\0{:?}\0{:?}\0{}\0{}\0{}\0{:?}",
        a.include_weights,
        a.exclude_weights,
        a.sample_rows,
        a.measure.is_some(),
        a.measure_tokens,
        types.iter().map(|t| t.name).collect::<Vec<_>>()
    ));
    Some(
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()[..32]
            .to_string(),
    )
}

/// The cached sensitivities under `key`, if sound and of this plan's tensors.
fn load_cached(
    key: &str,
    prep: &Prepared<'_>,
) -> Option<Vec<pocket::requant::budget::Sensitivity>> {
    use pocket::requant::budget::{Candidate, Sensitivity};
    let bytes = std::fs::read(cache_dir()?.join(format!("{key}.json"))).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let mut out = Vec::new();
    for t in v.as_array()? {
        let index = t["index"].as_u64()? as usize;
        let name = t["name"].as_str()?;
        if prep.plan.tensors.get(index)?.name != name {
            return None;
        }
        let mut candidates = Vec::new();
        for c in t["candidates"].as_array()? {
            candidates.push(Candidate {
                ty: ggml_type_by_name(c["type"].as_str()?)?,
                bytes: c["bytes"].as_u64()?,
                cost: c["cost"].as_f64()?,
            });
        }
        if candidates.is_empty() {
            return None;
        }
        out.push(Sensitivity {
            name: name.to_string(),
            index,
            candidates,
        });
    }
    Some(out)
}

/// Stores sensitivities under `key` (best effort: a cache that cannot be written is skipped).
fn store_cached(key: &str, sens: &[pocket::requant::budget::Sensitivity]) {
    let Some(dir) = cache_dir() else { return };
    let doc: Vec<serde_json::Value> = sens
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "index": s.index,
                "candidates": s.candidates.iter().map(|c| json!({
                    "type": c.ty.name, "bytes": c.bytes, "cost": c.cost,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let path = dir.join(format!("{key}.json"));
    let _ = std::fs::create_dir_all(&dir)
        .map_err(anyhow::Error::from)
        .and_then(|_| {
            let mut f = pocket::fsio::AtomicFile::create(&path, &[], None)?;
            serde_json::to_writer(&mut f, &doc)?;
            f.commit()?;
            Ok(())
        });
}

/// `--measure TEXT`: scales each tensor's costs by the KL-divergence quantizing it alone causes.
fn measure_sensitivity(
    a: &Args,
    text: &Path,
    ggufs: &[Gguf<'_>],
    prep: &Prepared<'_>,
    opts: &Options,
    sens: &mut [pocket::requant::budget::Sensitivity],
) -> Result<(), Failure> {
    use pocket::exec::probe::Probe;
    use pocket::exec::tokenizer::Vocab;
    use pocket::exec::Weights;
    if a.measure_tokens < 4 {
        return Err(usage("--measure-tokens must be at least 4".into()));
    }
    let w = Weights::load(ggufs).context("--measure runs the model")?;
    let vocab = Vocab::from_gguf(&ggufs[0]).context("reading the vocabulary (--measure)")?;
    let bytes = std::fs::read(text).with_context(|| format!("reading {}", text.display()))?;
    let text_s = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{} is not UTF-8: {e}", text.display()))?;
    let tokens = vocab.tokenize(&text_s, true, false)?;
    if tokens.len() < a.measure_tokens {
        return Err(usage(format!(
            "--measure {}: {} tokens, fewer than --measure-tokens {}",
            text.display(),
            tokens.len(),
            a.measure_tokens
        )));
    }
    let probe = Probe::new(&w, &tokens[..a.measure_tokens]).context("--measure")?;
    let bar = crate::progress::steps_bar(sens.len() as u64, "measure", "tensors");
    let r = pocket::requant::budget::calibrate(
        ggufs,
        prep,
        opts,
        sens,
        &mut |name, ty, data| {
            bar.set_message(format!("measure {name}"));
            probe
                .kld_with(name, ty, data)
                .map_err(|e| pocket::requant::RequantError::Model(e.to_string()))
        },
        &mut |d, _| bar.set_position(d as u64),
    );
    bar.finish_and_clear();
    r?;
    Ok(())
}

/// The budget's outcome, for the plan and the summary.
struct Budgeted {
    target: Target,
    /// Tensors chosen, and the types chosen with how many tensors each.
    n_chosen: usize,
    by_type: Vec<(String, usize)>,
    /// The expected cost (sum of the tensors' noise-to-signal ratios) of the choice, and of the
    /// base mix's types for the same tensors where it is one of the candidates.
    cost: f64,
    base_cost: Option<f64>,
    file_size: u64,
    bpw: f64,
    written: Option<PathBuf>,
    /// Costs are measured KL-divergences (--measure), not noise-to-signal ratios.
    measured: bool,
    fit: Option<FitOutcome>,
}

/// Measures each tensor's sensitivity, chooses types under the target, and plans again with the
/// choice as --tensor-type patterns.
fn apply_budget<'a>(
    a: &Args,
    cmd: &Cmd,
    target: Target,
    ggufs: &'a [Gguf<'a>],
    paths: &[&Path],
    opts: &mut Options,
    prep: Prepared<'a>,
) -> Result<(Prepared<'a>, Budgeted), Failure> {
    use pocket::requant::budget;
    if !cmd.ftype.default_type().quantized {
        return Err(usage(format!(
            "--target-size/--target-bpw/--fit need a quantized base TYPE (e.g. Q4_K_M), not {}",
            cmd.ftype.name
        )));
    }
    if a.sample_rows == 0 {
        return Err(usage("--sample-rows must be at least 1".into()));
    }
    let mut types = Vec::new();
    for c in &a.candidates {
        let t = parse_type(c.trim(), "--candidates")?;
        if pocket::quant::format(t.id).from_float.is_none()
            || !t.quantized
            || t.id == pocket::gguf::TypeId::Q8_K
            || t.id == pocket::gguf::TypeId::Q8_1
        {
            return Err(usage(format!(
                "--candidates: {} is not a quantized type pocket can write",
                t.name
            )));
        }
        types.push(t);
    }
    // --fit: only the types the device's llama.cpp backend multiplies by (CPU on Android and
    // boards, Metal on iOS).
    let mut dropped = Vec::new();
    if let Target::Fit { device, .. } = &target {
        use pocket::verify::{backends, device::Platform};
        let col = match device.platform {
            Platform::Ios => 2,
            Platform::Android | Platform::Linux => 1,
        };
        types.retain(|t| {
            let ok = backends::support(t.name)[col];
            if !ok {
                dropped.push(t.name.to_string());
            }
            ok
        });
        if types.is_empty() {
            return Err(usage(format!(
                "--fit {}: its backend ({}) multiplies by none of the candidates {}",
                device.id,
                backends::BACKENDS[col],
                a.candidates.join(",")
            )));
        }
    }
    let n_var = prep
        .plan
        .tensors
        .iter()
        .filter(|p| p.allows_quantization)
        .count();
    let key = cache_key(a, paths, &types);
    let cached = key.as_deref().and_then(|k| load_cached(k, &prep));
    let measured = a.measure.is_some();
    let mut sens = match cached {
        Some(s) => s,
        None => {
            let bar = crate::progress::steps_bar(n_var as u64, "sensitivity", "tensors");
            let sens =
                budget::sensitivity(ggufs, &prep, opts, &types, a.sample_rows, &mut |d, _| {
                    bar.set_position(d as u64)
                });
            bar.finish_and_clear();
            let mut sens = sens?;
            if let Some(text) = &a.measure {
                measure_sensitivity(a, text, ggufs, &prep, opts, &mut sens)?;
            }
            if let Some(k) = &key {
                store_cached(k, &sens);
            }
            sens
        }
    };
    // For a file size, each tensor's bytes as written: padded to the output's alignment.
    let align = match &target {
        Target::Size(_) => prep
            .headers(&ggufs[0])
            .first()
            .map(|h| h.alignment())
            .transpose()
            .map_err(anyhow::Error::from)?
            .unwrap_or(1)
            .max(1),
        Target::Bpw(_) | Target::Fit { .. } => 1,
    };
    let padded = |b: u64| b.div_ceil(align) * align;
    // --fit: a tensor costs the memory it takes on the device: its bytes, and on Android again for
    // the interleaved copy llama.cpp's CPU backend keeps of some types (pocket::verify::device).
    let tied = !prep.plan.tensors.iter().any(|t| t.name == "output.weight");
    let in_memory = |name: &str, ty: GgmlType, dims: &[u64], b: u64| -> u64 {
        match &target {
            Target::Fit { device, .. }
                if device.platform == pocket::verify::device::Platform::Android
                    && dims.len() >= 2
                    && pocket::verify::device::repacked_as(
                        name,
                        tied,
                        ty,
                        dims.get(1).copied().unwrap_or(1),
                    ) =>
            {
                b.saturating_mul(2)
            }
            _ => b,
        }
    };
    for s in sens.iter_mut() {
        let p = &prep.plan.tensors[s.index];
        for c in s.candidates.iter_mut() {
            c.bytes = in_memory(&p.name, c.ty, &p.dims, padded(c.bytes));
        }
        s.candidates
            .sort_by(|x, y| x.bytes.cmp(&y.bytes).then(x.cost.total_cmp(&y.cost)));
    }
    let is_var = {
        let mut v = vec![false; prep.plan.tensors.len()];
        for s in &sens {
            v[s.index] = true;
        }
        v
    };
    let var_bytes: u64 = sens
        .iter()
        .map(|s| padded(prep.plan.tensors[s.index].bytes_to()))
        .sum();
    let fixed_to: u64 = prep
        .plan
        .tensors
        .iter()
        .zip(&is_var)
        .filter(|(_, v)| !**v)
        .map(|(p, _)| p.bytes_to())
        .sum();
    let base_total: u64 = prep.output_sizes(&ggufs[0])?.iter().sum();
    let n = prep.n_elements.max(1);
    let smallest: u64 = sens.iter().map(|s| s.candidates[0].bytes).sum();
    let mut fit_limit = 0;
    let (budget_var, want) = match &target {
        // The header and the tensors the budget does not choose stay as the base plan has them.
        Target::Size(t) => (t.checked_sub(base_total - var_bytes), format!("{t} bytes")),
        Target::Bpw(b) => (
            ((b * n as f64 / 8.0) as u64).checked_sub(fixed_to),
            format!("{b} bits per weight"),
        ),
        Target::Fit { device, ctx } => {
            use pocket::verify::device;
            // What the device holds besides the weights (KV cache, compute and output buffers):
            // its estimate for the model without weights.
            let embd = prep
                .plan
                .tensors
                .iter()
                .find(|t| t.name == "token_embd.weight")
                .map(|t| (t.dims.get(1).copied().unwrap_or(1), t.bytes_to()));
            let none = device::Weights {
                embd,
                tied_output: tied,
                ..device::Weights::default()
            };
            let rest = device::estimate(&ggufs[0], &none, device, *ctx)
                .map_err(|e| usage(format!("--fit {}: {e}", device.id)))?
                .total_bytes;
            let fixed: u64 = prep
                .plan
                .tensors
                .iter()
                .zip(&is_var)
                .filter(|(_, v)| !**v)
                .map(|(p, _)| in_memory(&p.name, p.to, &p.dims, p.bytes_to()))
                .sum();
            fit_limit = (device::TIGHT_SHARE * device.app_bytes as f64) as u64;
            (
                fit_limit.checked_sub(rest.saturating_add(fixed)),
                format!(
                    "{} in memory on {} at context {ctx}: {:.0}% of the {} an app may use, less {} of KV cache and buffers and {} of tensors the budget does not choose",
                    bytes(fit_limit),
                    device.id,
                    device::TIGHT_SHARE * 100.0,
                    bytes(device.app_bytes),
                    bytes(rest),
                    bytes(fixed)
                ),
            )
        }
    };
    let choice = budget_var
        .and_then(|b| budget::choose(&sens, b))
        .ok_or_else(|| match &target {
            Target::Fit { device, ctx } => Failure::usage(format!(
                "the model cannot fit {} at context {ctx}: the target ({want}) is below the {} \
                 the chosen tensors take at the smallest with the candidates {} \
                 (a shorter --ctx, or smaller candidates, may fit)",
                device.id,
                bytes(smallest),
                types.iter().map(|t| t.name).collect::<Vec<_>>().join(",")
            )),
            _ => Failure::usage(format!(
                "the target ({want}) is below the smallest this model can be with the candidates {}: \
                 {} bytes of chosen tensors ({:.2} bpw over all) plus {} bytes of the rest",
                a.candidates.join(","),
                smallest,
                (smallest + fixed_to) as f64 * 8.0 / n as f64,
                base_total - var_bytes
            )),
        })?;
    let base_cost: Option<f64> = sens
        .iter()
        .map(|s| {
            let to = prep.plan.tensors[s.index].to;
            s.candidates.iter().find(|c| c.ty == to).map(|c| c.cost)
        })
        .sum();
    let lines = budget::tensor_type_lines(&sens, &choice);
    for (pat, ty) in &lines {
        push_tensor_type(&mut opts.params, &format!("{pat}={}", ty.name), "budget")?;
    }
    let prep = prepare(ggufs, paths, opts)?;
    let file_size: u64 = prep.output_sizes(&ggufs[0])?.iter().sum();
    let after: u64 = prep.plan.tensors.iter().map(|t| t.bytes_to()).sum();
    let bpw_after = after as f64 * 8.0 / n as f64;
    let fit = match &target {
        Target::Fit { device, ctx } => {
            use pocket::verify::device;
            let w = device::Weights::from_parts(
                prep.plan
                    .tensors
                    .iter()
                    .map(|t| (t.name.as_str(), t.to, &t.dims[..], t.bytes_to())),
            );
            let e = device::estimate(&ggufs[0], &w, device, *ctx)
                .map_err(|e| usage(format!("--fit {}: {e}", device.id)))?;
            if e.verdict != device::Verdict::Fits {
                return Err(Failure::usage(format!(
                    "the chosen types take {} on {}, over the limit {} (a bug: please report)",
                    e.total_bytes, device.id, fit_limit
                )));
            }
            Some(FitOutcome {
                limit: fit_limit,
                total: e.total_bytes,
                verdict: e.verdict.name(),
                tokens_per_second: e.tokens_per_second,
                dropped,
            })
        }
        _ => None,
    };
    match target {
        Target::Size(t) if file_size > t => {
            return Err(Failure::usage(format!(
                "the chosen types make a file of {file_size} bytes, over the target {t} (a bug: please report)"
            )))
        }
        Target::Bpw(b) if bpw_after > b + 1e-9 => {
            return Err(Failure::usage(format!(
                "the chosen types make {bpw_after:.4} bpw, over the target {b} (a bug: please report)"
            )))
        }
        _ => {}
    }
    let mut by_type: Vec<(String, usize)> = Vec::new();
    for (_, ty) in &lines {
        match by_type.iter_mut().find(|(n, _)| n == ty.name) {
            Some(e) => e.1 += 1,
            None => by_type.push((ty.name.to_string(), 1)),
        }
    }
    by_type.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    let written = match &a.write_tensor_types {
        Some(f) => {
            let aux: Vec<(&str, &Path)> = paths.iter().map(|p| ("the input", *p)).collect();
            crate::check_output(f, a.force, &aux)?;
            let text: String = lines
                .iter()
                .map(|(p, t)| format!("{p}={}\n", t.name))
                .collect();
            let mut file = pocket::fsio::AtomicFile::create(f, paths, Some(text.len() as u64))
                .map_err(anyhow::Error::from)?;
            file.write_all(text.as_bytes())
                .with_context(|| f.display().to_string())?;
            file.commit().map_err(anyhow::Error::from)?;
            Some(f.clone())
        }
        None => None,
    };
    Ok((
        prep,
        Budgeted {
            target,
            n_chosen: sens.len(),
            by_type,
            cost: budget::total_cost(&sens, &choice),
            base_cost,
            file_size,
            bpw: bpw_after,
            written,
            measured,
            fit,
        },
    ))
}

fn print_budget(b: &Budgeted, out: &mut dyn Write) -> anyhow::Result<()> {
    let target = match &b.target {
        Target::Size(t) => format!("at most {} ({t} bytes)", bytes(*t)),
        Target::Bpw(x) => format!("at most {x} bpw"),
        Target::Fit { device, ctx } => {
            format!("fit {} ({}) at context {ctx}", device.name, device.id)
        }
    };
    let types: Vec<String> = b.by_type.iter().map(|(t, n)| format!("{n} {t}")).collect();
    writeln!(
        out,
        "budget: {target}: {} tensors chosen ({}); file {} ({} bytes, {:.2} bpw)",
        b.n_chosen,
        types.join(", "),
        bytes(b.file_size),
        b.file_size,
        b.bpw
    )?;
    let what = if b.measured {
        "expected KL-divergence (sum of each tensor's, measured alone)"
    } else {
        "expected noise (sum of the tensors' noise-to-signal ratios)"
    };
    match b.base_cost {
        Some(c) => writeln!(out, "{what}: {:.5}, the base mix's {:.5}", b.cost, c)?,
        None => writeln!(out, "{what}: {:.5}", b.cost)?,
    }
    if let (Some(f), Target::Fit { device, .. }) = (&b.fit, &b.target) {
        writeln!(
            out,
            "on {}: {} of the {} limit ({:.0}% of the {} an app may use): {}, ~{:.1} tokens/s decoding",
            device.id,
            bytes(f.total),
            bytes(f.limit),
            pocket::verify::device::TIGHT_SHARE * 100.0,
            bytes(device.app_bytes),
            f.verdict,
            f.tokens_per_second
        )?;
        if !f.dropped.is_empty() {
            writeln!(
                out,
                "left out of the candidates (no matrix product for them in {}'s backend): {}",
                device.id,
                f.dropped.join(", ")
            )?;
        }
    }
    if let Some(f) = &b.written {
        writeln!(
            out,
            "wrote {} (llama-quantize --tensor-type-file {} makes the same file)",
            f.display(),
            f.display()
        )?;
    }
    Ok(())
}

fn budget_json(b: &Budgeted) -> serde_json::Value {
    json!({
        "target_size": match b.target { Target::Size(t) => Some(t), _ => None },
        "target_bpw": match b.target { Target::Bpw(x) => Some(x), _ => None },
        "fit": match (&b.target, &b.fit) {
            (Target::Fit { device, ctx }, Some(f)) => json!({
                "device": device.id,
                "ctx": ctx,
                "limit_bytes": f.limit,
                "total_bytes": f.total,
                "app_bytes": device.app_bytes,
                "verdict": f.verdict,
                "tokens_per_second": f.tokens_per_second,
                "candidates_left_out": f.dropped,
            }),
            _ => serde_json::Value::Null,
        },
        "n_chosen": b.n_chosen,
        "types": b.by_type.iter().map(|(t, n)| json!({"type": t, "tensors": n})).collect::<Vec<_>>(),
        "expected_cost": b.cost,
        "cost_is_kld": b.measured,
        "base_cost": b.base_cost,
        "file_size": b.file_size,
        "bpw": b.bpw,
        "tensor_type_file": b.written.as_ref().map(|p| p.display().to_string()),
    })
}

fn print_plan(
    prep: &Prepared<'_>,
    ftype: Ftype,
    json_out: bool,
    budget: Option<&Budgeted>,
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
            "budget": budget.map(budget_json),
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
    if let Some(b) = budget {
        print_budget(b, out)?;
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
    budget: Option<&Budgeted>,
    quality: Option<&pocket::exec::kld::KldResult>,
    json_out: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if json_out {
        let doc = json!({
            "budget": budget.map(budget_json),
            "quality": quality.map(crate::kld::summary_json),
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
    if let Some(q) = quality {
        let s = &q.summary;
        writeln!(
            out,
            "against the input on {} tokens ({} chunks): mean KLD {:.6} ± {:.6}, same top token {:.2} ± {:.2} %, PPL ratio {:.4} ± {:.4}",
            s.count,
            q.chunks.len(),
            s.kld.value,
            s.kld.err,
            100.0 * s.same_top.value,
            100.0 * s.same_top.err,
            s.ppl_ratio.value,
            s.ppl_ratio.err
        )?;
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
    let mut prep = prepare(&ggufs, &paths, &opts)?;
    let mut chosen = None;
    if let Some(target) = budget_target(a)? {
        let (p, b) = apply_budget(a, &cmd, target, &ggufs, &paths, &mut opts, prep)?;
        prep = p;
        chosen = Some(b);
    }
    if a.dry_run {
        print_plan(&prep, cmd.ftype, a.json, chosen.as_ref(), out)?;
        return Ok(0);
    }
    if let (Some(b), false) = (&chosen, a.json) {
        print_budget(b, out)?;
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
    // The output is written: a failure to measure it below does not undo that.
    let quality = match &a.report_text {
        Some(text) => Some(
            crate::kld::compare_on_text(
                &cmd.input,
                &outputs[0],
                text,
                a.report_ctx,
                a.report_chunks,
                "report",
            )
            .with_context(|| {
                format!(
                    "{} was written; --report-text could not measure it",
                    outputs[0].display()
                )
            })?,
        ),
        None => None,
    };
    print_report(
        &reports,
        &outputs,
        &sizes,
        chosen.as_ref(),
        quality.as_ref(),
        a.json,
        out,
    )?;
    Ok(0)
}
