//! `pocket bench`: prompt processing and generation speed of the reference executor in the shape
//! of llama-bench's table, with the memory bandwidth of the machine, the bandwidth limit of
//! generation and the process's resident memory.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use pocket::exec::bench;
use pocket::exec::Weights;
use pocket::Model;
use serde_json::json;

use crate::fmt::{bytes, count, table};
use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// The GGUF model (for a split model, its first shard).
    model: PathBuf,
    /// Prompt length of the pp test (0: no pp test).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    n_prompt: usize,
    /// Generated tokens of the tg test (0: no tg test).
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    n_gen: usize,
    /// Threads (default: all cores).
    #[arg(short = 't', long = "threads", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=crate::MAX_THREADS as u64))]
    threads: Option<usize>,
    /// Repetitions of each test.
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    reps: usize,
    /// Skip the memory bandwidth measurement.
    #[arg(long)]
    no_bandwidth: bool,
    /// One JSON document instead of the table (pocket's, with the bandwidth and memory figures).
    #[arg(long, conflicts_with = "output")]
    json: bool,
    /// Output format as llama-bench's -o: md (markdown table), csv, json (an array of tests) or
    /// jsonl (one test per line), with llama-bench's field names. Default: a table for people.
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    output: Option<Format>,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum Format {
    Md,
    Csv,
    Json,
    Jsonl,
}

/// One test as llama-bench's csv/json/jsonl records it (the fields pocket has).
fn llama_record(
    a: &Args,
    model_type: &str,
    size: u64,
    params: u64,
    threads: usize,
    test: &str,
    tm: &bench::Timings,
) -> serde_json::Value {
    let (avg_ts, stddev_ts) = tm.mean_sd();
    let ns: Vec<f64> = tm.secs.iter().map(|s| s * 1e9).collect();
    let n = ns.len() as f64;
    let avg_ns = ns.iter().sum::<f64>() / n;
    let stddev_ns = if ns.len() > 1 {
        (ns.iter().map(|x| (x - avg_ns).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    let (n_prompt, n_gen) = if test.starts_with("pp") {
        (tm.n_tokens, 0)
    } else {
        (0, tm.n_tokens)
    };
    json!({
        "build_commit": option_env!("POCKET_COMMIT").unwrap_or("unknown"),
        "cpu_info": crate::fmt::kernels(),
        "backends": "CPU",
        "model_filename": a.model.display().to_string(),
        "model_type": model_type,
        "model_size": size,
        "model_n_params": params,
        "n_threads": threads,
        "n_prompt": n_prompt,
        "n_gen": n_gen,
        "avg_ns": avg_ns.round() as u64,
        "stddev_ns": stddev_ns.round() as u64,
        "avg_ts": avg_ts,
        "stddev_ts": stddev_ts,
        "samples_ns": ns.iter().map(|x| x.round() as u64).collect::<Vec<_>>(),
        "samples_ts": tm.rates(),
    })
}

fn csv_field(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("\"{}\"", s.replace('"', "\"\"")),
        serde_json::Value::Array(xs) => format!(
            "\"{}\"",
            xs.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(";")
        ),
        other => other.to_string(),
    }
}

pub fn run(a: &Args, out: &mut dyn Write) -> Result<u8, Failure> {
    if a.reps == 0 || (a.n_prompt == 0 && a.n_gen == 0) {
        return Err(anyhow::anyhow!("nothing to measure: -r must be >= 1 and -p or -n > 0").into());
    }
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err(anyhow::anyhow!("-t must be at least 1").into());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting the thread pool")?;
    let model = Model::open(&a.model).with_context(|| format!("opening {}", a.model.display()))?;
    let gs = model.ggufs()?;
    let w = Weights::load(&gs).with_context(|| format!("loading {}", a.model.display()))?;
    // The first token of every run (its id only: the vocabulary itself is not loaded, so the
    // resident memory is the executor's).
    let bos = gs[0]
        .get_u64("tokenizer.ggml.bos_token_id")
        .filter(|&b| (b as usize) < w.hp.n_vocab)
        .unwrap_or(0) as u32;
    let summary = pocket::summary::summarize(&gs);
    let name = format!("{} {}", w.hp.arch.name(), summary.file_type_name);
    let mut tests = Vec::new();
    let mut dispatch = 0.0;
    pool.install(|| -> Result<(), Failure> {
        dispatch = bench::dispatch_overhead(2000);
        if a.n_prompt > 0 {
            tests.push((
                format!("pp{}", a.n_prompt),
                bench::prompt(&w, a.n_prompt, a.reps, bos)?,
            ));
        }
        if a.n_gen > 0 {
            tests.push((
                format!("tg{}", a.n_gen),
                bench::generate(&w, a.n_gen, a.reps, bos)?,
            ));
        }
        Ok(())
    })?;
    let (rss_now, rss_peak) = bench::rss().unwrap_or((0, 0));
    let per_token = bench::weight_bytes_per_token(&w);
    let bw = (!a.no_bandwidth).then(|| bench::memory_bandwidth(1 << 30, threads, 3));
    let kernels = crate::fmt::kernels();
    let tg = tests
        .iter()
        .find(|t| t.0.starts_with("tg"))
        .map(|t| t.1.mean_sd().0);
    let limit = bw.map(|b| b / per_token as f64);
    let ops = bench::parallel_ops_per_token(&w);
    if a.json {
        let doc = json!({
            "model": a.model.display().to_string(),
            "model_type": name,
            "size": summary.tensor_bytes,
            "params": summary.n_params,
            "threads": threads,
            "kernels": kernels,
            "tests": tests.iter().map(|(t, tm)| {
                let (m, sd) = tm.mean_sd();
                json!({"test": t, "n_tokens": tm.n_tokens, "avg_ts": m, "stddev_ts": sd,
                       "samples_ts": tm.rates(), "samples_s": tm.secs})
            }).collect::<Vec<_>>(),
            "weight_bytes_per_token": per_token,
            "memory_bandwidth": bw,
            "tg_bandwidth_limit_ts": limit,
            "tg_fraction_of_limit": tg.zip(limit).map(|(t, l)| t / l),
            "dispatch_overhead_s": dispatch,
            "parallel_ops_per_token": ops,
            "rss": rss_now,
            "rss_peak": rss_peak,
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        return Ok(0);
    }
    if let Some(f) = a.output {
        let recs: Vec<serde_json::Value> = tests
            .iter()
            .map(|(t, tm)| {
                llama_record(
                    a,
                    &name,
                    summary.tensor_bytes,
                    summary.n_params,
                    threads,
                    t,
                    tm,
                )
            })
            .collect();
        match f {
            Format::Json => {
                serde_json::to_writer_pretty(&mut *out, &recs)?;
                writeln!(out)?;
            }
            Format::Jsonl => {
                for r in &recs {
                    serde_json::to_writer(&mut *out, r)?;
                    writeln!(out)?;
                }
            }
            Format::Csv => {
                if let Some(serde_json::Value::Object(first)) = recs.first() {
                    let keys: Vec<&String> = first.keys().collect();
                    writeln!(
                        out,
                        "{}",
                        keys.iter()
                            .map(|k| format!("\"{k}\""))
                            .collect::<Vec<_>>()
                            .join(",")
                    )?;
                    for r in &recs {
                        let row: Vec<String> =
                            keys.iter().map(|k| csv_field(&r[k.as_str()])).collect();
                        writeln!(out, "{}", row.join(","))?;
                    }
                }
            }
            Format::Md => {
                writeln!(
                    out,
                    "| model | size | params | backend | threads | test | t/s |"
                )?;
                writeln!(out, "| --- | ---: | ---: | --- | ---: | ---: | ---: |")?;
                for (test, tm) in &tests {
                    let (m, sd) = tm.mean_sd();
                    writeln!(
                        out,
                        "| {name} | {} | {} | CPU | {threads} | {test} | {m:.2} ± {sd:.2} |",
                        bytes(summary.tensor_bytes),
                        count(summary.n_params)
                    )?;
                }
            }
        }
        return Ok(0);
    }
    let mut t = table(&[
        "model", "size", "params", "backend", "threads", "test", "t/s",
    ]);
    t.max_lines(3).align_right(6);
    for (test, tm) in &tests {
        let (m, sd) = tm.mean_sd();
        t.add_row(vec![
            name.clone(),
            bytes(summary.tensor_bytes),
            count(summary.n_params),
            format!("CPU {kernels}"),
            threads.to_string(),
            test.clone(),
            format!("{m:.2} ± {sd:.2}"),
        ]);
    }
    writeln!(out, "{t}")?;
    let mut foot = String::new();
    {
        let out = &mut foot;
        footer(
            out, per_token, bw, limit, tg, threads, dispatch, ops, rss_now, rss_peak,
        )?;
    }
    for line in foot.lines() {
        writeln!(out, "{}", crate::fmt::wrap(line, 2))?;
    }
    Ok(0)
}

#[allow(clippy::too_many_arguments)]
fn footer(
    out: &mut String,
    per_token: u64,
    bw: Option<f64>,
    limit: Option<f64>,
    tg: Option<f64>,
    threads: usize,
    dispatch: f64,
    ops: usize,
    rss_now: u64,
    rss_peak: u64,
) -> std::fmt::Result {
    use std::fmt::Write as _;
    writeln!(
        out,
        "weights read per generated token: {}",
        bytes(per_token)
    )?;
    if let (Some(b), Some(l)) = (bw, limit) {
        write!(
            out,
            "memory read bandwidth ({threads} threads): {:.2} GB/s; tg limit {l:.1} t/s",
            b / 1e9
        )?;
        if let Some(tg) = tg {
            write!(out, "; tg reaches {:.0}% of it", 100.0 * tg / l)?;
        }
        writeln!(out)?;
    }
    write!(
        out,
        "thread pool: {:.1} µs per parallel operation (no work in it), {ops} per generated token",
        dispatch * 1e6
    )?;
    if let Some(tg) = tg {
        write!(
            out,
            ": {:.1}% of a token's time",
            100.0 * dispatch * ops as f64 * tg
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "resident memory: {} now, {} peak",
        bytes(rss_now),
        bytes(rss_peak)
    )?;
    Ok(())
}
