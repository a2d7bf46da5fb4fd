//! `pocket requantize` against llama-quantize's outputs (`testdata/requant/plans.json`, made by
//! `scripts/make-requant-golden.py`): the header of every output (metadata, key order, tensor infos,
//! offsets, alignment) byte for byte — which needs no block-format kernel — and the whole file's
//! sha256 for every run whose kernels are available; plus the command's errors and `--dry-run`.

mod common;

use std::path::{Path, PathBuf};

use pocket::gguf::spec::{ggml_type_by_name, GgmlType};
use pocket::gguf::{Gguf, GgufFile};
use pocket::quant::{self, QuantError};
use pocket::requant::convert::{prepare, requantize, Options};
use pocket::requant::{Ftype, Imatrix, KvOverride, Params, TensorTypeOverride};
use serde_json::Value as J;
use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn golden() -> J {
    let p = common::testdata("requant/plans.json");
    serde_json::from_slice(&std::fs::read(&p).expect("read plans.json")).expect("json")
}

fn ty(s: &str) -> GgmlType {
    ggml_type_by_name(s).unwrap_or_else(|| panic!("type {s}"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha256(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

/// The options of a golden run, as `pocket requantize` builds them from the same arguments.
fn options(rec: &J) -> Options {
    let mut p = Params::new(Ftype::parse(rec["ftype"].as_str().unwrap()).unwrap());
    let mut overrides = Vec::new();
    let args: Vec<&str> = rec["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a {
            "--pure" => p.pure = true,
            "--leave-output-tensor" => p.quantize_output_tensor = false,
            "--output-tensor-type" => p.output_tensor_type = Some(ty(it.next().unwrap())),
            "--token-embedding-type" => p.token_embedding_type = Some(ty(it.next().unwrap())),
            "--tensor-type" => {
                let (pat, t) = it.next().unwrap().split_once('=').unwrap();
                let re = regex::Regex::new(&pat.to_lowercase()).unwrap();
                p.tensor_types.push(TensorTypeOverride {
                    pattern: pat.to_string(),
                    ty: ty(t),
                    matcher: Box::new(move |n| re.is_match(n)),
                });
            }
            "--override-kv" => overrides.push(KvOverride::parse(it.next().unwrap()).unwrap()),
            other => panic!("unexpected golden argument {other}"),
        }
    }
    let imatrix = rec["imatrix"].as_str().map(|path| {
        let m = Imatrix::load(&root().join(path)).expect("imatrix");
        (m, path.to_string())
    });
    Options {
        params: p,
        allow_requantize: false,
        keep_split: false,
        overrides,
        imatrix,
        n_threads: 2,
        report: false,
    }
}

fn model_path(g: &J, rec: &J) -> String {
    g["models"][rec["model"].as_str().unwrap()]["path"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn headers_equal_llama_quantize() {
    let g = golden();
    let mut checked = 0;
    let mut failures = Vec::new();
    for rec in g["runs"].as_array().unwrap() {
        if !rec["ok"].as_bool().unwrap() {
            continue;
        }
        let path = model_path(&g, rec);
        let file = GgufFile::open(root().join(&path)).unwrap();
        let gg = [file.gguf().unwrap()];
        let opts = options(rec);
        let what = format!("{path} {} {:?}", rec["ftype"], rec["args"]);
        let prep = match prepare(&gg, &[file.path()], &opts) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{what}: {e}"));
                continue;
            }
        };
        let headers = prep.headers(&gg[0]);
        assert_eq!(headers.len(), 1);
        let h = headers[0].header_bytes().unwrap();
        if h.len() as u64 != rec["header_len"].as_u64().unwrap()
            || sha256(&h) != rec["header_sha256"].as_str().unwrap()
        {
            failures.push(format!(
                "{what}: header of {} bytes differs from llama-quantize's ({} bytes)",
                h.len(),
                rec["header_len"]
            ));
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} headers differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 200, "only {checked} headers checked");
    eprintln!("{checked} output headers identical to llama-quantize's");
}

/// Whether the kernels a conversion needs are there: asks `quantize_chunk` to quantize one row and
/// `dequantize_row` to decode one.
fn kernel_missing(t: GgmlType, dequantize: bool) -> Option<String> {
    let n = 256usize;
    let x: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
    let mut q = vec![0u8; t.bytes_for(n as u64).unwrap() as usize];
    let im = vec![1.0f32; n];
    let imatrix = quant::requires_imatrix(t).then_some(im.as_slice());
    let r = if dequantize {
        let mut y = vec![0f32; n];
        quant::dequantize_row(t, &q, &mut y)
    } else {
        quant::quantize_chunk(t, &x, &mut q, n, imatrix).map(|_| ())
    };
    match r {
        Ok(()) => None,
        Err(QuantError::Unsupported { .. }) => Some(format!(
            "{} {}",
            if dequantize { "dequantize" } else { "quantize" },
            t.name
        )),
        Err(e) => panic!("probing {}: {e}", t.name),
    }
}

#[test]
fn whole_files_equal_llama_quantize_where_kernels_exist() {
    let g = golden();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    let mut skipped = std::collections::BTreeMap::<String, Vec<String>>::new();
    let mut failures = Vec::new();
    for rec in g["runs"].as_array().unwrap() {
        if !rec["ok"].as_bool().unwrap() {
            continue;
        }
        let path = model_path(&g, rec);
        let src = GgufFile::open(root().join(&path)).unwrap();
        let sg: Gguf<'_> = src.gguf().unwrap();
        let mut missing = std::collections::BTreeSet::new();
        for (name, want) in rec["types"].as_object().unwrap() {
            let from = sg.tensor(name).unwrap().ty;
            let to = ty(want.as_str().unwrap());
            if from != to {
                if from.name != "f32" {
                    missing.extend(kernel_missing(from, true));
                }
                missing.extend(kernel_missing(to, false));
            }
        }
        let what = format!("{} {} {:?}", rec["model"], rec["ftype"], rec["args"]);
        if !missing.is_empty() {
            skipped
                .entry(missing.into_iter().collect::<Vec<_>>().join(", "))
                .or_default()
                .push(what);
            continue;
        }
        // In process (the CLI is exercised by the other tests): the i-quants' lookup tables are
        // built once, not once per run.
        let out = dir.path().join("out.gguf");
        let _ = std::fs::remove_file(&out);
        let opts = options(rec);
        let gg = [src.gguf().unwrap()];
        let written = prepare(&gg, &[src.path()], &opts).and_then(|prep| {
            let files = std::slice::from_ref(&src);
            requantize(
                files,
                &gg,
                &prep,
                &opts,
                std::slice::from_ref(&out),
                &mut |_| {},
            )
        });
        if let Err(e) = written {
            failures.push(format!("{what}: pocket failed: {e}"));
            continue;
        }
        let got = sha256(&std::fs::read(&out).unwrap());
        if got != rec["sha256"].as_str().unwrap() {
            failures.push(format!("{what}: output differs from llama-quantize's"));
        }
        checked.push(what);
    }
    if !skipped.is_empty() {
        let runs: usize = skipped.values().map(Vec::len).sum();
        let mut kernels: Vec<&str> = skipped.keys().flat_map(|k| k.split(", ")).collect();
        kernels.sort_unstable();
        kernels.dedup();
        let mut ftypes: Vec<String> = skipped
            .values()
            .flatten()
            .map(|w| {
                w.split(' ')
                    .nth(1)
                    .unwrap_or("")
                    .trim_matches('"')
                    .to_string()
            })
            .collect();
        ftypes.sort();
        ftypes.dedup();
        eprintln!(
            "skipped {runs} runs (ftypes {}) for missing kernels: {}",
            ftypes.join(" "),
            kernels.join(", ")
        );
    }
    eprintln!(
        "{} whole files byte-identical to llama-quantize's",
        checked.len()
    );
    assert!(
        failures.is_empty(),
        "{} files differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Runs that need no kernel at all are always checked: COPY of every model, and F32 of the F32
    // model (with and without --pure).
    let copies = checked.iter().filter(|w| w.contains("\"COPY\"")).count();
    let f32s = checked
        .iter()
        .filter(|w| w.contains("f32-odd") && w.contains("\"F32\""))
        .count();
    assert!(
        copies >= 6 && f32s >= 2,
        "kernel-free runs not all checked: {checked:?}"
    );
}

fn pocket(args: &[&str]) -> std::process::Output {
    common::pocket()
        .current_dir(root())
        .args(args)
        .output()
        .unwrap()
}

fn assert_usage_error(out: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

#[test]
fn unknown_ftype_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.gguf");
    let r = pocket(&[
        "requantize",
        "testdata/tiny-llama-f16.gguf",
        out.to_str().unwrap(),
        "Q4_K_X",
    ]);
    assert_usage_error(&r, "unknown quantization type 'Q4_K_X'");
    assert!(!out.exists());
}

#[test]
fn quantized_input_needs_allow_requantize() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.gguf");
    let r = pocket(&[
        "requantize",
        "testdata/tiny-llama-q8_0.gguf",
        out.to_str().unwrap(),
        "Q4_K_M",
    ]);
    assert_usage_error(&r, "--allow-requantize");
    assert!(!out.exists());
}

#[test]
fn very_low_bit_types_need_an_imatrix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.gguf");
    let r = pocket(&[
        "requantize",
        "testdata/tiny-llama-f16.gguf",
        out.to_str().unwrap(),
        "IQ2_XXS",
    ]);
    assert_usage_error(&r, "requires an importance matrix");
    assert!(!out.exists());
}

#[test]
fn output_that_is_the_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("m.gguf");
    std::fs::copy(
        root().join("testdata/requant/tiny-llama-f32-odd.gguf"),
        &inp,
    )
    .unwrap();
    let before = std::fs::read(&inp).unwrap();
    // also through a hard link
    let link = dir.path().join("link.gguf");
    std::fs::hard_link(&inp, &link).unwrap();
    for out in [&inp, &link] {
        let r = pocket(&[
            "requantize",
            inp.to_str().unwrap(),
            out.to_str().unwrap(),
            "COPY",
        ]);
        assert_usage_error(&r, "refusing to overwrite the input");
    }
    assert_eq!(std::fs::read(&inp).unwrap(), before);
}

#[test]
fn bad_imatrix_and_overrides_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.gguf");
    let o = out.to_str().unwrap();
    let r = pocket(&[
        "requantize",
        "--imatrix",
        "testdata/tiny-llama-f16.gguf",
        "testdata/tiny-llama-f16.gguf",
        o,
        "Q8_0",
    ]);
    assert_usage_error(&r, "missing imatrix metadata");
    let r = pocket(&[
        "requantize",
        "--override-kv",
        "a=blob:1",
        "testdata/tiny-llama-f16.gguf",
        o,
        "Q8_0",
    ]);
    assert_usage_error(&r, "--override-kv a=blob:1");
    let r = pocket(&[
        "requantize",
        "--tensor-type",
        "attn_v=q9_9",
        "testdata/tiny-llama-f16.gguf",
        o,
        "Q8_0",
    ]);
    assert_usage_error(&r, "unknown ggml type 'q9_9'");
    let r = pocket(&["requantize", "testdata/nope.gguf", o, "Q8_0"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(!out.exists());
}

#[test]
fn dry_run_json_is_the_plan() {
    let g = golden();
    // Q4_K_M of the F32 model with 16 layers: mixes, fallbacks, F16 for rows of 80.
    let rec = g["plans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["model"] == "tiny-llama-f32-odd"
                && p["ftype"] == "Q4_K_M"
                && p["args"].as_array().unwrap().is_empty()
                && matches!(p["imatrix"], J::Null | J::Bool(false))
        })
        .expect("golden plan");
    let r = pocket(&[
        "requantize",
        "--dry-run",
        "--json",
        "testdata/requant/tiny-llama-f32-odd.gguf",
        "Q4_K_M",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let doc: J = serde_json::from_slice(&r.stdout).expect("one JSON document");
    let want = rec["types"].as_object().unwrap();
    let tensors = doc["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), want.len());
    for t in tensors {
        assert_eq!(
            t["to"].as_str().unwrap(),
            want[t["name"].as_str().unwrap()].as_str().unwrap(),
            "{t}"
        );
    }
    assert_eq!(doc["n_fallback"], rec["n_fallback"]);
    let after: u64 = tensors
        .iter()
        .map(|t| t["bytes_to"].as_u64().unwrap())
        .sum();
    assert_eq!(doc["bytes_to"].as_u64().unwrap(), after);
    let file = GgufFile::open(root().join("testdata/requant/tiny-llama-f32-odd.gguf")).unwrap();
    assert_eq!(
        doc["bytes_from"].as_u64().unwrap(),
        file.gguf().unwrap().tensor_bytes()
    );
    let bpw = doc["bpw_to"].as_f64().unwrap();
    assert!(bpw > 4.0 && bpw < 16.0, "{bpw}");
    // the rule is said: the F16 fallback of ffn_down
    let down = tensors
        .iter()
        .find(|t| t["name"] == "blk.0.ffn_down.weight")
        .unwrap();
    assert_eq!(down["to"], "F16");
    assert!(down["fallback_from"].is_string());

    // the table form names the totals and the imatrix requirement
    let r = pocket(&[
        "requantize",
        "--dry-run",
        "testdata/tiny-llama-f16.gguf",
        "IQ2_XS",
    ]);
    assert!(r.status.success());
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        text.contains("bpw") && text.contains("needs an importance matrix"),
        "{text}"
    );
}

#[test]
fn split_models_keep_or_merge_shards_like_llama_quantize() {
    let g = golden();
    let runs = g["split_runs"]
        .as_array()
        .expect("split_runs in the golden");
    let mut whole = 0;
    for rec in runs {
        let ftype = rec["ftype"].as_str().unwrap();
        let args: Vec<&str> = rec["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let want = rec["files"].as_object().unwrap();
        let what = format!("{ftype} {args:?}");
        // headers, through the library: no kernel needed
        let model = pocket::Model::open(root().join(rec["input"].as_str().unwrap())).unwrap();
        let ggufs: Vec<Gguf<'_>> = model.files.iter().map(|f| f.gguf().unwrap()).collect();
        let paths: Vec<&Path> = model.files.iter().map(|f| f.path()).collect();
        let mut opts = options(&serde_json::json!({"ftype": ftype, "args": [], "imatrix": null}));
        opts.keep_split = args.contains(&"--keep-split");
        opts.allow_requantize = args.contains(&"--allow-requantize");
        let prep = prepare(&ggufs, &paths, &opts).unwrap();
        let headers = prep.headers(&ggufs[0]);
        assert_eq!(headers.len(), want.len(), "{what}: number of output files");
        for (h, (name, w)) in headers.iter().zip(want) {
            let b = h.header_bytes().unwrap();
            assert_eq!(
                sha256(&b),
                w["header_sha256"].as_str().unwrap(),
                "{what}: header of {name}"
            );
        }
        // whole files, through the CLI, when the kernels are there
        let needs_kernels = ftype != "COPY";
        if needs_kernels
            && (kernel_missing(ty("q8_0"), true).is_some()
                || kernel_missing(ty(&ftype.to_lowercase()), false).is_some())
        {
            eprintln!("skipped whole-file check of split run {what}: kernels missing");
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.gguf");
        let mut cli = vec!["requantize"];
        cli.extend(&args);
        let input = rec["input"].as_str().unwrap();
        let out_s = out.display().to_string();
        cli.extend([input, out_s.as_str(), ftype, "2"]);
        let r = common::pocket()
            .current_dir(root())
            .args(&cli)
            .output()
            .unwrap();
        assert!(
            r.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let mut made: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        made.sort();
        assert_eq!(made, want.keys().cloned().collect::<Vec<_>>(), "{what}");
        for (name, w) in want {
            let b = std::fs::read(dir.path().join(name)).unwrap();
            assert_eq!(
                sha256(&b),
                w["sha256"].as_str().unwrap(),
                "{what}: {name} differs from llama-quantize's"
            );
        }
        whole += 1;
    }
    assert!(
        whole >= 2,
        "the COPY runs need no kernel and must be checked"
    );
}

#[test]
fn report_lists_converted_tensors_worst_first() {
    if let Some(m) = kernel_missing(ty("f16"), true).or_else(|| kernel_missing(ty("q8_0"), false)) {
        // Said, not hidden: this check needs the F16 and Q8_0 kernels.
        eprintln!("report check skipped: kernel missing ({m})");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.gguf");
    let r = pocket(&[
        "requantize",
        "--report",
        "--json",
        "testdata/tiny-llama-f16.gguf",
        out.to_str().unwrap(),
        "Q8_0",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let doc: J = serde_json::from_slice(&r.stdout).unwrap();
    let rep = doc["report"].as_array().unwrap();
    // every 2-D weight is converted (F16 -> Q8_0 or Q6_K), the norms are not
    assert_eq!(rep.len(), 2 * 7 + 2);
    let rels: Vec<f64> = rep.iter().map(|t| t["rel"].as_f64().unwrap()).collect();
    assert!(
        rels.windows(2).all(|w| w[0] >= w[1]),
        "not worst first: {rels:?}"
    );
    for t in rep {
        let rel = t["rel"].as_f64().unwrap();
        assert!(rel > 0.0 && rel < 0.05, "{t}");
        assert!(t["max_abs"].as_f64().unwrap() >= t["rmse"].as_f64().unwrap());
    }
}

#[test]
fn imatrix_include_and_exclude_filter_entries_and_the_count_written() {
    let path = root().join("testdata/requant/tiny-llama-f16.imatrix.gguf");
    let all = Imatrix::load(&path).unwrap();
    assert_eq!(
        all.entries.len(),
        2 * 7 + 1,
        "every 2-D weight but token_embd"
    );
    assert_eq!(all.datasets, ["pocket-synthetic.txt"]);
    assert_eq!(all.chunk_count, 7);
    // sums / counts: the synthetic sums were drawn as gamma(2) x count
    let v = &all.entries["blk.0.attn_q.weight"];
    assert_eq!(v.len(), 256);
    assert!(v.iter().all(|x| *x > 0.0 && *x < 50.0));

    let mut inc = all.clone();
    inc.filter(&["attn_".into()], &[]);
    assert_eq!(inc.entries.len(), 2 * 4);
    assert!(inc.entries.keys().all(|k| k.contains("attn_")));
    let mut exc = all.clone();
    exc.filter(&[], &["ffn_down".into(), "output".into()]);
    // "output" also takes attn_output: 15 - 2 ffn_down - output - 2 attn_output
    assert_eq!(exc.entries.len(), 10);

    // the count written is the filtered one
    let file = GgufFile::open(root().join("testdata/tiny-llama-f16.gguf")).unwrap();
    let gg = [file.gguf().unwrap()];
    let mut opts = options(&serde_json::json!({"ftype": "Q4_K_M", "args": [], "imatrix": null}));
    opts.imatrix = Some((inc, "im.gguf".into()));
    let prep = prepare(&gg, &[file.path()], &opts).unwrap();
    let h = &prep.headers(&gg[0])[0];
    let keys: Vec<&str> = h.kvs.iter().map(|k| k.key).collect();
    assert_eq!(
        keys[keys.len() - 4..],
        [
            "quantize.imatrix.file",
            "quantize.imatrix.dataset",
            "quantize.imatrix.entries_count",
            "quantize.imatrix.chunks_count"
        ]
    );
    let count = h
        .kvs
        .iter()
        .find(|k| k.key == "quantize.imatrix.entries_count")
        .unwrap();
    assert_eq!(count.value, pocket::Value::U32(8));
}

#[test]
fn runs_llama_quantize_aborts_are_refused_before_writing() {
    let g = golden();
    let mut n = 0;
    for rec in g["runs"].as_array().unwrap() {
        if rec["ok"].as_bool().unwrap() {
            continue;
        }
        let path = model_path(&g, rec);
        let file = GgufFile::open(root().join(&path)).unwrap();
        let gg = [file.gguf().unwrap()];
        let opts = options(rec);
        let refused = prepare(&gg, &[file.path()], &opts).and_then(|p| p.check(&opts));
        assert!(
            refused.is_err(),
            "{path} {} {:?}: llama-quantize failed ({}), pocket would write",
            rec["ftype"],
            rec["args"],
            rec["error"]
        );
        n += 1;
    }
    assert!(n >= 10, "{n}");
}
