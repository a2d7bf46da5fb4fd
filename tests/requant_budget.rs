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
