//! `pocket requantize --target-size / --target-bpw`: a type per tensor chosen for a budget, written
//! as a llama-quantize `--tensor-type-file` that remakes the same file, and `--tensor-type-file`
//! itself. On the bundled tiny llama (F16), so that no peer is needed.

mod common;

use std::path::Path;

use common::{run_pocket, testdata};
use serde_json::Value;

fn tiny() -> String {
    testdata("tiny-llama-f16.gguf").display().to_string()
}

fn ok(args: &[&str]) -> std::process::Output {
    let o = run_pocket(args);
    assert!(
        o.status.success(),
        "pocket {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The budget part of a `--dry-run --json` plan at `bpw`.
fn plan_at(bpw: &str, cache: &Path, extra: &[&str]) -> Value {
    let t = tiny();
    let mut args = vec![
        "requantize",
        &t,
        "Q4_K_M",
        "--dry-run",
        "--json",
        "--target-bpw",
        bpw,
    ];
    args.extend_from_slice(extra);
    let o = common::pocket()
        .args(&args)
        .env("POCKET_CACHE", cache)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn bpw_of(plan: &Value) -> f64 {
    plan["bpw_to"].as_f64().unwrap()
}

#[test]
fn budgets_are_met_and_more_bytes_never_cost_more() {
    let cache = tempfile::tempdir().unwrap();
    let mut last_cost = f64::INFINITY;
    let mut last_bpw = 0.0;
    let mut kinds = std::collections::BTreeSet::new();
    for target in ["3.5", "4.5", "5.5", "7", "9"] {
        let p = plan_at(target, cache.path(), &[]);
        let b = &p["budget"];
        let t: f64 = target.parse().unwrap();
        assert!(bpw_of(&p) <= t + 1e-9, "{target}: {}", bpw_of(&p));
        assert!((b["bpw"].as_f64().unwrap() - bpw_of(&p)).abs() < 1e-9);
        let cost = b["expected_cost"].as_f64().unwrap();
        assert!(cost <= last_cost, "{target}: cost {cost} after {last_cost}");
        assert!(bpw_of(&p) >= last_bpw, "{target}");
        last_cost = cost;
        last_bpw = bpw_of(&p);
        // Every chosen tensor carries its budget pattern as the rule.
        let chosen: Vec<&Value> = p["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["rule"].as_str().unwrap().starts_with("--tensor-type ^"))
            .collect();
        assert_eq!(chosen.len() as u64, b["n_chosen"].as_u64().unwrap());
        for t in &chosen {
            kinds.insert(t["to"].as_str().unwrap().to_string());
        }
    }
    // The choice is not one type everywhere: different budgets, different types.
    assert!(kinds.len() >= 3, "{kinds:?}");
    // A 9-bpw budget is more than Q8_0 everywhere needs: nothing is left noisy.
    assert!(last_cost < 1e-3, "{last_cost}");
}

#[test]
fn the_written_type_file_remakes_the_same_file() {
    let d = tempfile::tempdir().unwrap();
    let t = tiny();
    let out = d.path().join("budget.gguf");
    let tt = d.path().join("types.txt");
    let again = d.path().join("again.gguf");
    let o = common::pocket()
        .args([
            "requantize",
            &t,
            out.to_str().unwrap(),
            "Q4_K_M",
            "--target-size",
            "1.1MiB",
            "--write-tensor-types",
            tt.to_str().unwrap(),
        ])
        .env("POCKET_CACHE", d.path().join("cache"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let size = std::fs::metadata(&out).unwrap().len();
    assert!(size <= 1024 * 1024 * 11 / 10, "{size}");
    let text = std::fs::read_to_string(&tt).unwrap();
    // llama-quantize's format: REGEX=TYPE words, no comments.
    for line in text.lines() {
        let (pat, ty) = line.split_once('=').unwrap();
        assert!(pat.starts_with('^') && pat.ends_with('$'), "{line}");
        assert!(!ty.is_empty() && !line.contains(' '), "{line}");
    }
    assert!(text.lines().count() >= 14, "{text}");
    ok(&[
        "requantize",
        &t,
        again.to_str().unwrap(),
        "Q4_K_M",
        "--tensor-type-file",
        tt.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(&again).unwrap(),
        "--tensor-type-file with the budget's file wrote other bytes"
    );
}

#[test]
fn a_second_run_reads_the_cache_and_chooses_the_same() {
    let cache = tempfile::tempdir().unwrap();
    let a = plan_at("5", cache.path(), &[]);
    let files: Vec<_> = std::fs::read_dir(cache.path().join("sensitivity"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 1);
    let b = plan_at("5", cache.path(), &[]);
    assert_eq!(a, b);
    // Another sample size is another entry.
    plan_at("5", cache.path(), &["--sample-rows", "8"]);
    assert_eq!(
        std::fs::read_dir(cache.path().join("sensitivity"))
            .unwrap()
            .count(),
        2
    );
}

#[test]
fn measured_costs_are_kl_divergences() {
    let cache = tempfile::tempdir().unwrap();
    let text = testdata("exec/ppl-text.txt").display().to_string();
    let p = plan_at(
        "5",
        cache.path(),
        &["--measure", &text, "--measure-tokens", "32"],
    );
    let b = &p["budget"];
    assert_eq!(b["cost_is_kld"], Value::Bool(true));
    let c = b["expected_cost"].as_f64().unwrap();
    assert!(c > 0.0 && c < 5.0, "{c}");
    // A budget of Q8_0 everywhere moves the model less than one at 3.5 bpw.
    let hi = plan_at(
        "9",
        cache.path(),
        &["--measure", &text, "--measure-tokens", "32"],
    );
    assert!(hi["budget"]["expected_cost"].as_f64().unwrap() < c);
}

#[test]
fn impossible_targets_and_bad_type_files_are_usage_errors() {
    let d = tempfile::tempdir().unwrap();
    let t = tiny();
    let o = common::pocket()
        .args(["requantize", &t, "Q4_K_M", "--dry-run", "--target-bpw", "1"])
        .env("POCKET_CACHE", d.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("below the smallest"), "{err}");
    let o = run_pocket(&["requantize", &t, "F16", "--dry-run", "--target-bpw", "5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("quantized base TYPE"));
    let bad = d.path().join("bad.txt");
    std::fs::write(&bad, "blk\\.0\\..*=q8_0\n  output=nosuchtype\n").unwrap();
    let o = run_pocket(&[
        "requantize",
        &t,
        "Q4_K_M",
        "--dry-run",
        "--tensor-type-file",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--tensor-type-file") && err.contains("nosuchtype"),
        "{err}"
    );
}

#[test]
fn type_file_entries_apply_as_tensor_type_options_do() {
    let d = tempfile::tempdir().unwrap();
    let t = tiny();
    let f = d.path().join("t.txt");
    std::fs::write(
        &f,
        "blk\\.0\\.ffn_.*=q8_0\n\n  attn_v=Q6_K\tblk\\.1\\.ffn_down=q5_k\n",
    )
    .unwrap();
    let plan = |args: &[&str]| -> Value {
        let mut a = vec!["requantize", &t, "Q4_K_M", "--dry-run", "--json"];
        a.extend_from_slice(args);
        serde_json::from_slice(&ok(&a).stdout).unwrap()
    };
    let from_file = plan(&["--tensor-type-file", f.to_str().unwrap()]);
    let from_opts = plan(&[
        "--tensor-type",
        "blk\\.0\\.ffn_.*=q8_0",
        "--tensor-type",
        "attn_v=Q6_K",
        "--tensor-type",
        "blk\\.1\\.ffn_down=q5_k",
    ]);
    assert_eq!(from_file["tensors"], from_opts["tensors"]);
    let to = |name: &str| -> String {
        from_file["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["to"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(to("blk.0.ffn_up.weight"), "Q8_0");
    assert_eq!(to("blk.1.attn_v.weight"), "Q6_K");
    assert_eq!(to("blk.1.ffn_down.weight"), "Q5_K");
}

/// The probe: a tensor replaced by its own bytes moves nothing; by a coarser type, something; and a
/// fused attn_qkv (phi3) is replaced in each of its row ranges.
#[test]
fn the_probe_measures_one_replaced_tensor() {
    use pocket::exec::probe::Probe;
    use pocket::exec::Weights;
    use pocket::gguf::spec::ggml_type_by_name;
    use pocket::quant::{dequantize_row, quantize_chunk};
    use pocket::GgufFile;
    for (file, name) in [
        ("exec/tiny-phi3-q8_0.gguf", "blk.0.attn_qkv.weight"),
        ("exec/tiny-qwen3-q8_0.gguf", "blk.1.ffn_down.weight"),
    ] {
        let f = GgufFile::open(testdata(file)).unwrap();
        let g = f.gguf().unwrap();
        let gs = [g];
        let w = Weights::load(&gs).unwrap();
        let tokens: Vec<u32> = (0..24).map(|i| (i * 7 + 1) % 200).collect();
        let probe = Probe::new(&w, &tokens).unwrap();
        let t = gs[0].tensors.iter().find(|t| t.name == name).unwrap();
        let own = gs[0].tensor_data(t).unwrap();
        assert_eq!(probe.kld_with(name, t.ty, own).unwrap(), 0.0, "{file}");
        let mut x = vec![0f32; t.n_elements as usize];
        dequantize_row(t.ty, own, &mut x).unwrap();
        let q4 = ggml_type_by_name("q4_0").unwrap();
        let ne0 = t.dims[0] as usize;
        let mut q = vec![0u8; q4.bytes_for(t.n_elements).unwrap() as usize];
        quantize_chunk(q4, &x, &mut q, ne0, None).unwrap();
        let k = probe.kld_with(name, q4, &q).unwrap();
        assert!(k > 0.0 && k < 1.0, "{file}: {k}");
        // Bytes of the wrong size are refused, not read past.
        assert!(probe.kld_with(name, q4, &q[..q.len() / 2]).is_err());
        assert!(probe.kld_with("no.such.weight", q4, &q).is_err());
    }
}

/// A device profile file with `app_gib` of memory for the app.
fn device_file(dir: &Path, id: &str, platform: &str, app_gib: f64) -> String {
    let p = dir.join(format!("{id}.toml"));
    std::fs::write(
        &p,
        format!(
            "name = \"test {id}\"\nram_gb = 1\napp_gb = {app_gib}\nbandwidth_gbs = 20\nplatform = \"{platform}\"\n"
        ),
    )
    .unwrap();
    p.display().to_string()
}

/// `requantize --fit DEVICE --ctx 512 --json` of the tiny llama into `out`: its JSON, or its stderr.
fn fit(dev: &str, out: &Path, cache: &Path, extra: &[&str]) -> Result<Value, String> {
    let t = tiny();
    let o = out.display().to_string();
    let mut args = vec![
        "requantize",
        &t,
        &o,
        "Q4_K_M",
        "--fit",
        dev,
        "--ctx",
        "512",
        "--json",
        "--force",
    ];
    args.extend_from_slice(extra);
    let r = common::pocket()
        .args(&args)
        .env("POCKET_CACHE", cache)
        .output()
        .unwrap();
    if r.status.success() {
        Ok(serde_json::from_slice(&r.stdout).unwrap())
    } else {
        assert_eq!(
            r.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&r.stderr)
        );
        Err(String::from_utf8_lossy(&r.stderr).to_string())
    }
}

#[test]
fn fit_fills_the_device_as_verify_judges_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("fit.gguf");
    // From just above the smallest the tiny model can take (KV cache and compute buffers are most
    // of it) to more than Q8_0 everywhere needs.
    let sizes = [0.007, 0.0075, 0.008, 0.009, 0.02];
    let mut costs = std::collections::BTreeMap::new();
    for platform in ["android", "ios"] {
        let mut last_cost = f64::INFINITY;
        for (i, &app) in sizes.iter().enumerate() {
            let dev = device_file(dir.path(), &format!("{platform}{i}"), platform, app);
            let j =
                fit(&dev, &out, &cache, &[]).unwrap_or_else(|e| panic!("{platform} {app}: {e}"));
            let f = &j["budget"]["fit"];
            let (total, limit) = (
                f["total_bytes"].as_u64().unwrap(),
                f["limit_bytes"].as_u64().unwrap(),
            );
            assert!(total <= limit, "{platform} {app}: {total} > {limit}");
            assert_eq!(f["verdict"], "fits");
            assert_eq!(
                limit,
                (0.8 * f["app_bytes"].as_u64().unwrap() as f64) as u64
            );
            // pocket verify, on the written file and the same device, sees the same bytes.
            let v = run_pocket(&[
                "verify",
                out.to_str().unwrap(),
                "--device",
                &dev,
                "--ctx",
                "512",
                "--json",
            ]);
            let v: Value = serde_json::from_slice(&v.stdout).unwrap();
            let d = &v["models"][0]["device"];
            assert_eq!(d["total_bytes"].as_u64(), Some(total), "{platform} {app}");
            assert_eq!(d["verdict"], "fits");
            let cost = j["budget"]["expected_cost"].as_f64().unwrap();
            assert!(
                cost <= last_cost,
                "{platform} {app}: {cost} after {last_cost}"
            );
            last_cost = cost;
            costs.insert((platform, i), (cost, total));
        }
    }
    for i in 0..sizes.len() {
        let (a, i_) = (costs[&("android", i)], costs[&("ios", i)]);
        // Android's CPU backend keeps a second, repacked copy of some types: the same memory buys
        // no better model there than on iOS, and at a tight budget a worse one.
        assert!(i_.0 <= a.0 + 1e-12, "{i}: ios {i_:?} android {a:?}");
    }
    assert!(costs[&("ios", 0)].0 < costs[&("android", 0)].0);
    // With room to spare, both take the best candidate everywhere.
    assert_eq!(costs[&("ios", 4)].0, costs[&("android", 4)].0);
}

#[test]
fn fit_refuses_a_device_too_small_and_types_its_backend_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("fit.gguf");
    let small = device_file(dir.path(), "small", "android", 0.006);
    let e = fit(&small, &out, &cache, &[]).unwrap_err();
    assert!(e.contains("cannot fit small at context 512"), "{e}");
    assert!(!out.exists());
    let e = fit("no-such-phone", &out, &cache, &[]).unwrap_err();
    assert!(
        e.contains("--fit no-such-phone: no such built-in profile"),
        "{e}"
    );
    // Metal has no matrix product for TQ1_0 (and llama.cpp's CPU backend has one for everything).
    let cands = ["--candidates", "q4_0,q8_0,tq1_0"];
    let ios = device_file(dir.path(), "ios", "ios", 0.02);
    let j = fit(&ios, &out, &cache, &cands).unwrap();
    assert_eq!(
        j["budget"]["fit"]["candidates_left_out"],
        serde_json::json!(["tq1_0"])
    );
    let android = device_file(dir.path(), "android", "android", 0.02);
    let j = fit(&android, &out, &cache, &cands).unwrap();
    assert_eq!(
        j["budget"]["fit"]["candidates_left_out"],
        serde_json::json!([])
    );
    let ios = device_file(dir.path(), "ios-only-tq1", "ios", 0.02);
    let e = fit(&ios, &out, &cache, &["--candidates", "tq1_0"]).unwrap_err();
    assert!(
        e.contains("multiplies by none of the candidates tq1_0"),
        "{e}"
    );
}

#[test]
fn report_text_measures_the_written_file_as_pocket_kld_does() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny();
    let text = common::testdata("exec/ppl-text.txt").display().to_string();
    let mut kld = Vec::new();
    for ty in ["Q8_0", "Q2_K"] {
        let out = dir.path().join(format!("{ty}.gguf")).display().to_string();
        let o = ok(&[
            "requantize",
            &t,
            &out,
            ty,
            "--report-text",
            &text,
            "--report-ctx",
            "64",
            "--json",
        ]);
        let j: Value = serde_json::from_slice(&o.stdout).unwrap();
        let q = &j["quality"];
        let k = q["kld"]["value"].as_f64().unwrap();
        let top = q["same_top"]["value"].as_f64().unwrap();
        assert!(k > 0.0 && (0.0..=1.0).contains(&top), "{ty}: {q}");
        // The same comparison as `pocket kld` makes of the two files.
        let o = ok(&["kld", &t, &out, "-f", &text, "-c", "64", "--json"]);
        let p: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(p["summary"], *q, "{ty}");
        // People get one line with it.
        let o = ok(&[
            "requantize",
            &t,
            &out,
            ty,
            "--report-text",
            &text,
            "--report-ctx",
            "64",
            "--force",
        ]);
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(s.contains(&format!("mean KLD {k:.6}")), "{s}");
        kld.push(k);
    }
    assert!(kld[0] < kld[1], "Q8_0 {} vs Q2_K {}", kld[0], kld[1]);
    // The option needs its text.
    let o = run_pocket(&["requantize", &t, "x.gguf", "Q8_0", "--report-ctx", "64"]);
    assert_eq!(o.status.code(), Some(2));
}
