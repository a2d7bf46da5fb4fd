//! `pocket verify`: every damaged file of testdata/damaged fails with the check expected.json names;
//! good files and gemma-3 270M pass; header-only checks on a file cut to its header; manifests; device
//! verdicts; reads of a file that shrinks after it was opened fail cleanly.

mod common;

use std::path::Path;

use serde_json::Value as J;

fn pocket(args: &[&str], cwd: Option<&Path>) -> (i32, String, String) {
    let mut c = common::pocket();
    c.args(args);
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    let o = c.output().expect("run pocket");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn verify_json(args: &[&str]) -> (i32, J) {
    let mut a = vec!["verify", "--json"];
    a.extend_from_slice(args);
    let (code, out, err) = pocket(&a, None);
    let doc: J = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {out}\nstderr: {err}"));
    (code, doc)
}

fn checks(doc: &J) -> Vec<(String, String, String)> {
    doc["models"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["checks"].as_array().unwrap().iter())
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn every_damaged_file_fails_with_the_expected_check() {
    let dir = common::testdata("damaged");
    let expected: J =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let expected = expected.as_object().unwrap();
    assert!(expected.len() >= 11, "corpus too small: {}", expected.len());
    for (file, want) in expected {
        let path = dir.join(file);
        let (code, doc) = verify_json(&[s(&path)]);
        assert_eq!(code, 1, "{file}: exit code");
        assert_eq!(doc["status"], "fail", "{file}");
        let check = want["check"].as_str().unwrap();
        let phrase = want["contains"].as_str().unwrap();
        let cs = checks(&doc);
        assert!(
            cs.iter()
                .any(|(c, st, m)| c == check && st == "fail" && m.contains(phrase)),
            "{file}: no failed '{check}' check saying {phrase:?}; got {cs:#?}"
        );
    }
}

#[test]
fn good_testdata_files_pass() {
    for f in [
        "tiny-llama-f16.gguf",
        "tiny-llama-q8_0.gguf",
        "tiny-llama-q4_k_m.gguf",
        "tiny-llama-split-00001-of-00003.gguf",
        "metadata-only.gguf",
        "values-le-v3.gguf",
        "values-be-v3.gguf",
        "values-le-v2.gguf",
        "values-be-v2.gguf",
        "values-align64.gguf",
    ] {
        let (code, doc) = verify_json(&[s(&common::testdata(f))]);
        let cs = checks(&doc);
        assert_eq!(code, 0, "{f}: {cs:#?}");
        assert!(cs.iter().all(|(_, st, _)| st != "fail"), "{f}: {cs:#?}");
        if f.starts_with("tiny-llama") {
            // A real model: nothing to warn about but the missing chat template.
            for (c, st, _) in &cs {
                assert!(st == "pass" || c == "tokenizer", "{f}: {c} {st}");
            }
            for c in [
                "structure",
                "truncation",
                "numbers",
                "completeness",
                "tokenizer",
            ] {
                assert!(
                    cs.iter().any(|(n, st, _)| n == c && st == "pass"),
                    "{f}: {c} did not pass"
                );
            }
        }
    }
}

#[test]
fn the_split_model_is_checked_as_a_set() {
    let (code, doc) = verify_json(&[s(&common::testdata("tiny-llama-split-00001-of-00003.gguf"))]);
    assert_eq!(code, 0);
    assert_eq!(doc["models"][0]["files"].as_array().unwrap().len(), 3);
    assert!(checks(&doc)
        .iter()
        .any(|(c, st, m)| c == "split" && st == "pass" && m.contains("3 shards")));
}

#[test]
fn gemma_passes_and_fits_an_iphone_16() {
    let g = common::gemma();
    let (code, doc) = verify_json(&[s(&g), "--device", "iphone-16", "--ctx", "4096"]);
    let cs = checks(&doc);
    assert_eq!(code, 0, "{cs:#?}");
    assert!(cs.iter().all(|(_, st, _)| st != "fail"), "{cs:#?}");
    for c in ["structure", "numbers", "completeness", "device"] {
        assert!(cs.iter().any(|(n, st, _)| n == c && st == "pass"), "{c}");
    }
    let d = &doc["models"][0]["device"];
    assert_eq!(d["verdict"], "fits");
    // 235 MiB of weights, 27 MiB of KV (4 of 18 layers full attention), logits of a 512-token ubatch.
    assert_eq!(d["weights_bytes"], 246_587_904);
    assert_eq!(d["kv_bytes"], 27 << 20);
    let total = d["total_bytes"].as_u64().unwrap();
    assert!(total > 700 << 20 && total < 900 << 20, "{total}");
}

#[test]
fn header_only_runs_the_header_checks_on_a_file_cut_to_its_header() {
    let src = std::fs::read(common::testdata("tiny-llama-q4_k_m.gguf")).unwrap();
    let g = pocket::Gguf::parse(&src).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("head.gguf");
    std::fs::write(&cut, &src[..g.data_offset as usize]).unwrap();

    let (code, doc) = verify_json(&["--header-only", s(&cut)]);
    let cs = checks(&doc);
    assert_eq!(code, 0, "{cs:#?}");
    for c in [
        "structure",
        "split",
        "types",
        "backends",
        "tokenizer",
        "completeness",
    ] {
        if c == "split" {
            continue; // not a split model
        }
        assert!(
            cs.iter().any(|(n, st, _)| n == c && st == "pass"),
            "{c}: {cs:#?}"
        );
    }
    assert!(!cs
        .iter()
        .any(|(n, _, _)| n == "numbers" || n == "truncation"));

    // Without --header-only the same file is a truncated model.
    let (code, doc) = verify_json(&[s(&cut)]);
    assert_eq!(code, 1);
    assert!(checks(&doc)
        .iter()
        .any(|(n, st, m)| n == "truncation" && st == "fail" && m.contains("bytes missing")));
}

#[test]
fn llama3_8b_header_gets_the_verdict_each_profile_implies() {
    let h = common::testdata("headers/llama-3-8b-q4_k_m.header.gguf");
    // Needs 5.33 GiB at 4096 (weights 4.58 + KV 0.5 + compute 0.25); on Android llama.cpp's CPU
    // backend adds repacked copies of its Q4_K/Q6_K matrices (4.3 GiB) beside the mapped file.
    for (dev, verdict, code) in [
        ("iphone-16", "tight", 0),
        ("iphone-15-pro", "tight", 0),
        ("pixel-8", "does not fit", 1),
        ("pixel-9-pro", "does not fit", 1),
        ("galaxy-s24-ultra", "does not fit", 1),
        ("budget-android-4gb", "does not fit", 1),
        ("raspberry-pi-5-8gb", "fits", 0),
    ] {
        let (c, doc) = verify_json(&["--header-only", s(&h), "--device", dev, "--ctx", "4096"]);
        let d = &doc["models"][0]["device"];
        assert_eq!(d["verdict"], verdict, "{dev}");
        assert_eq!(c, code, "{dev}");
        let total = d["total_bytes"].as_f64().unwrap();
        let app = d["device"]["app_bytes"].as_f64().unwrap();
        match verdict {
            "fits" => assert!(total <= 0.8 * app),
            "tight" => assert!(total > 0.8 * app && total <= app),
            _ => assert!(total > app),
        }
        assert_eq!(d["kv_bytes"], 512u64 << 20, "{dev}");
        // Flash attention (llama.cpp's default): logits of a 512-token ubatch + the final norm's two
        // states, and the output buffer: "CPU compute buffer size = 266.50 MiB" and "CPU output
        // buffer size = 0.49 MiB", what llama.cpp (the peers' build) prints at -c 4096 for this header
        // given a placeholder vocabulary and a sparse data section (scripts/make-kv-golden.sh, end).
        assert_eq!(d["compute_bytes"], 4 * 512 * (128_256 + 2 * 4096), "{dev}");
        assert_eq!(d["output_bytes"], 4 * 128_256, "{dev}");
        let android = d["device"]["platform"] == "android";
        let repacked = d["repacked_bytes"].as_u64().unwrap();
        assert_eq!(repacked > 4 << 30, android, "{dev}: {repacked}");
        let tps = d["tokens_per_second"].as_f64().unwrap();
        let bw = d["device"]["bandwidth_bytes_per_s"].as_f64().unwrap();
        let bpt = d["bytes_per_token"].as_f64().unwrap();
        let share = d["bandwidth_share"].as_f64().unwrap();
        assert!(share > 0.1 && share <= 1.0, "{dev}: {share}");
        assert!((tps - bw * share / bpt).abs() < 1e-6);
    }
    // The 8B anchor: ≈ 0.8 J per token.
    let (_, doc) = verify_json(&["--header-only", s(&h), "--device", "iphone-16"]);
    let j = doc["models"][0]["device"]["joules_per_token"]
        .as_f64()
        .unwrap();
    assert!((0.75..0.9).contains(&j), "{j}");
}

#[test]
fn custom_device_profiles_from_toml_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("watch.toml");
    std::fs::write(
        &toml,
        "# a small board\nname = \"Tiny board\"\nram_gb = 2\napp_gb = 1\nbandwidth_gbs = 10\nbattery_wh = 5\n",
    )
    .unwrap();
    let json = dir.path().join("big.json");
    std::fs::write(
        &json,
        r#"{"name": "Big", "ram_gb": 64, "bandwidth_gbs": 400}"#,
    )
    .unwrap();
    let h = common::testdata("headers/llama-3-8b-q4_k_m.header.gguf");
    let (c, doc) = verify_json(&["--header-only", s(&h), "--device", s(&toml)]);
    assert_eq!(c, 1);
    assert_eq!(doc["models"][0]["device"]["verdict"], "does not fit");
    assert_eq!(doc["models"][0]["device"]["device"]["name"], "Tiny board");
    let (c, doc) = verify_json(&["--header-only", s(&h), "--device", s(&json)]);
    assert_eq!(c, 0);
    assert_eq!(doc["models"][0]["device"]["verdict"], "fits");
    // app_gb defaults to half the RAM.
    assert_eq!(
        doc["models"][0]["device"]["device"]["app_bytes"],
        32u64 << 30
    );
    let (c, _, err) = pocket(&["verify", s(&h), "--device", "nokia-3310"], None);
    assert_eq!(c, 2);
    assert!(err.contains("iphone-16"), "{err}");
}

#[test]
fn list_devices_has_the_required_profiles() {
    let (c, out, _) = pocket(&["verify", "--list-devices", "--json"], None);
    assert_eq!(c, 0);
    let doc: J = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = doc["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    for want in [
        "iphone-15-pro",
        "iphone-16",
        "iphone-16-pro",
        "pixel-8",
        "pixel-9-pro",
        "galaxy-s24",
        "galaxy-s24-ultra",
        "budget-android-4gb",
        "raspberry-pi-5-8gb",
    ] {
        assert!(ids.contains(&want), "{want} missing from {ids:?}");
    }
}

#[test]
fn a_manifest_catches_a_changed_copy() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("model.manifest");
    let good = common::testdata("tiny-llama-q4_k_m.gguf");
    let (code, _) = verify_json(&[s(&good), "--write-manifest", s(&m)]);
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&m).unwrap();
    assert!(text.contains("tiny-llama-q4_k_m.gguf:token_embd.weight"));
    assert!(text.contains("tiny-llama-q4_k_m.gguf:@kv:general.architecture"));
    assert!(text.contains("tiny-llama-q4_k_m.gguf:@header"));
    assert!(text.contains("size      821536  tiny-llama-q4_k_m.gguf"));

    // A deployed copy elsewhere, unchanged: passes.
    let copy_dir = dir.path().join("phone");
    std::fs::create_dir(&copy_dir).unwrap();
    let copy = copy_dir.join("tiny-llama-q4_k_m.gguf");
    std::fs::copy(&good, &copy).unwrap();
    let (code, doc) = verify_json(&[s(&copy), "--manifest", s(&m)]);
    assert_eq!(code, 0);
    assert!(checks(&doc)
        .iter()
        .any(|(c, st, _)| c == "manifest" && st == "pass"));

    // One f16 scale changed (still a valid number): only the manifest can tell.
    let mut bytes = std::fs::read(&good).unwrap();
    let g = pocket::Gguf::parse(&bytes).unwrap();
    let t = g.tensor("blk.0.ffn_gate.weight").unwrap().file_offset as usize;
    drop(g);
    bytes[t] ^= 1;
    std::fs::write(&copy, &bytes).unwrap();
    let (code, doc) = verify_json(&[s(&copy), "--manifest", s(&m)]);
    assert_eq!(code, 1);
    let cs = checks(&doc);
    assert!(
        cs.iter().any(|(c, st, msg)| c == "manifest"
            && st == "fail"
            && msg.contains("tiny-llama-q4_k_m.gguf:blk.0.ffn_gate.weight")),
        "{cs:#?}"
    );
    assert!(cs.iter().any(|(c, st, _)| c == "numbers" && st == "pass"));

    // A changed metadata value is named by key.
    let mut bytes = std::fs::read(&good).unwrap();
    let at = bytes
        .windows(12)
        .position(|w| w == b"tiny-llama-f")
        .or_else(|| bytes.windows(4).position(|w| w == b"tiny"))
        .unwrap();
    bytes[at] = b'T';
    std::fs::write(&copy, &bytes).unwrap();
    let (code, doc) = verify_json(&[s(&copy), "--manifest", s(&m)]);
    assert_eq!(code, 1);
    assert!(
        checks(&doc)
            .iter()
            .any(|(c, _, msg)| c == "manifest" && msg.contains(":@kv:")),
        "{:#?}",
        checks(&doc)
    );
}

#[test]
fn a_file_that_shrinks_after_opening_gives_an_error_not_sigbus() {
    use pocket::verify::{numbers::scan_tensor, read::Shard};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    std::fs::copy(common::testdata("tiny-llama-q8_0.gguf"), &p).unwrap();
    let shard = Shard::open(&p).unwrap();
    let g = shard.gguf_as(shard.size).unwrap();
    let last = g.tensors.iter().max_by_key(|t| t.file_offset).unwrap();
    // Another process truncates the file in the middle of the last tensor.
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(last.file_offset + 10).unwrap();
    let r = scan_tensor(&*shard.src, last, g.endian, true, true);
    let e = r.expect_err("a short read is an error");
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(e.to_string().contains("shrank"), "{e}");
}

#[test]
fn strict_turns_warnings_into_failures_and_bad_paths_exit_2() {
    let g = common::testdata("values-le-v3.gguf");
    let (code, _) = verify_json(&[s(&g)]);
    assert_eq!(code, 0);
    let (code, _) = verify_json(&[s(&g), "--strict"]);
    assert_eq!(code, 1);
    let (code, doc) = verify_json(&["/nonexistent/x.gguf"]);
    assert_eq!(code, 2);
    assert!(doc["error"]["message"].as_str().unwrap().contains("x.gguf"));
}

#[test]
fn trailing_bytes_warn() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    let mut b = std::fs::read(common::testdata("tiny-llama-q4_k_m.gguf")).unwrap();
    let n = b.len();
    b.extend_from_slice(&[0xab; 100]);
    std::fs::write(&p, &b).unwrap();
    let (code, doc) = verify_json(&[s(&p)]);
    assert_eq!(code, 0);
    let (code2, _) = verify_json(&[s(&p), "--strict"]);
    assert_eq!(code2, 1);
    let loc = doc["models"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "trailing-data")
        .expect("a trailing-data check");
    assert_eq!(loc["status"], "warn");
    assert!(loc["message"].as_str().unwrap().starts_with("100 bytes"));
    assert_eq!(loc["location"], format!("m.gguf byte {n}"));
}

#[test]
fn bad_special_token_ids_and_merges_fail_the_tokenizer_check() {
    use pocket::gguf::write::{array_from_encoded, encode_array};
    use pocket::gguf::{GgufWriter, Value, ValueType};
    let src = std::fs::read(common::testdata("tiny-llama-q4_k_m.gguf")).unwrap();
    let g = pocket::Gguf::parse(&src).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut w = GgufWriter::from_gguf(&g);
    w.set("tokenizer.ggml.eos_token_id", Value::U32(288));
    let p = dir.path().join("eos.gguf");
    std::fs::write(&p, w.header_bytes().unwrap()).unwrap();
    let (code, doc) = verify_json(&["--header-only", s(&p)]);
    assert_eq!(code, 1);
    assert!(checks(&doc).iter().any(|(c, st, m)| c == "tokenizer"
        && st == "fail"
        && m.contains("eos token id Some(288)")));

    let merges = [
        Value::String("a b"),
        Value::String("ab"),
        Value::String("c d"),
    ];
    let raw = encode_array(ValueType::String, &merges, g.endian);
    let mut w = GgufWriter::from_gguf(&g);
    w.set(
        "tokenizer.ggml.merges",
        Value::Array(array_from_encoded(ValueType::String, 3, &raw, g.endian)),
    );
    let p = dir.path().join("merges.gguf");
    std::fs::write(&p, w.header_bytes().unwrap()).unwrap();
    let (code, doc) = verify_json(&["--header-only", s(&p)]);
    assert_eq!(code, 1);
    assert!(
        checks(&doc).iter().any(|(c, st, m)| c == "tokenizer"
            && st == "fail"
            && m.contains("1 merges are not of the form \"a b\"; the first is #1 \"ab\"")),
        "{:#?}",
        checks(&doc)
    );
}

#[test]
fn a_type_unknown_to_llama_cpp_fails_structure_with_its_offset() {
    let mut r = common::Raw::header(3, false, 1, 1);
    r.kv_str("general.architecture", b"llama");
    let at = r.tensor("blk.0.attn_q.weight", &[32], 99, 0);
    r.pad(32);
    r.zeros(64);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("u.gguf");
    std::fs::write(&p, &r.b).unwrap();
    let (code, doc) = verify_json(&[s(&p)]);
    assert_eq!(code, 1);
    let c = doc["models"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "structure")
        .unwrap()
        .clone();
    assert_eq!(c["status"], "fail");
    assert!(c["message"]
        .as_str()
        .unwrap()
        .contains("unknown ggml type id 99"));
    assert_eq!(c["location"], format!("u.gguf byte {at}"));
}

#[test]
fn a_partial_download_is_scanned_as_far_as_it_goes() {
    let src = std::fs::read(common::testdata("damaged/nan-in-q4_k-d.gguf")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("part.gguf");
    std::fs::write(&p, &src[..500_000]).unwrap();
    // token_embd (with the NaN) is whole in the first 500 kB; later tensors are not.
    let (code, doc) = verify_json(&["--header-only", s(&p)]);
    assert_eq!(code, 1);
    let cs = checks(&doc);
    assert!(cs.iter().any(|(c, st, m)| c == "numbers"
        && st == "fail"
        && m.contains("'token_embd.weight' (q4_K): 1 NaN")));
    assert!(!cs.iter().any(|(c, _, _)| c == "truncation"));
    // The good model's prefix: the tensors present pass, and say how many were checked.
    let good = std::fs::read(common::testdata("tiny-llama-q4_k_m.gguf")).unwrap();
    std::fs::write(&p, &good[..500_000]).unwrap();
    let (code, doc) = verify_json(&["--header-only", s(&p)]);
    assert_eq!(code, 0);
    assert!(checks(&doc).iter().any(|(c, st, m)| c == "numbers"
        && st == "pass"
        && m.contains("of 21 tensors the file holds so far")));
}

/// GPT-2-style merges whose first part is a multi-byte character ("Ġ t", "ä ö") are merges of the
/// form "a b": llama.cpp splits a merge's bytes at the first space after byte 0.
#[test]
fn merges_with_multi_byte_first_parts_pass_the_tokenizer_check() {
    use pocket::gguf::write::{array_from_encoded, encode_array};
    use pocket::gguf::{GgufWriter, Value, ValueType};
    let src = std::fs::read(common::testdata("tiny-llama-q4_k_m.gguf")).unwrap();
    let g = pocket::Gguf::parse(&src).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let merges = [
        Value::String("Ġ t"),
        Value::String("ä ö"),
        Value::String("Ġt he"),
        Value::String("🙂 x"),
        Value::String("  "),
    ];
    let raw = encode_array(ValueType::String, &merges, g.endian);
    let mut w = GgufWriter::from_gguf(&g);
    w.set(
        "tokenizer.ggml.merges",
        Value::Array(array_from_encoded(ValueType::String, 5, &raw, g.endian)),
    );
    let p = dir.path().join("merges.gguf");
    std::fs::write(&p, w.header_bytes().unwrap()).unwrap();
    let (code, doc) = verify_json(&["--header-only", s(&p)]);
    let bad: Vec<_> = checks(&doc)
        .into_iter()
        .filter(|(c, st, _)| c == "tokenizer" && st == "fail")
        .collect();
    // Only "  " (a space at byte 0, then one with nothing after it) is not of the form "a b".
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert!(bad[0].2.contains("1 merges are not of the form") && bad[0].2.contains("#4"));
    assert_eq!(code, 1);
}

/// A header far larger than the first read (a 70 MB string array, as a 150k-token vocabulary's
/// merges are 6 MB and larger vocabularies grow): verify's reader grows until the header is whole
/// and the structure check passes.
#[test]
fn a_70_mb_header_of_string_arrays_is_read_whole() {
    use pocket::gguf::write::{array_from_encoded, encode_array};
    use pocket::gguf::{GgufWriter, Value, ValueType};
    let src = std::fs::read(common::testdata("tiny-llama-q4_k_m.gguf")).unwrap();
    let g = pocket::Gguf::parse(&src).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 700,000 strings of 92 bytes + 8 bytes of length each: 70 MB.
    let texts: Vec<String> = (0..700_000).map(|i| format!("{i:0>92}")).collect();
    let vals: Vec<Value> = texts.iter().map(|t| Value::String(t)).collect();
    let raw = encode_array(ValueType::String, &vals, g.endian);
    let mut w = GgufWriter::from_gguf(&g);
    w.set(
        "test.big_strings",
        Value::Array(array_from_encoded(
            ValueType::String,
            vals.len() as u64,
            &raw,
            g.endian,
        )),
    );
    let header = w.header_bytes().unwrap();
    assert!(header.len() > 70_000_000, "{}", header.len());
    let p = dir.path().join("big-header.gguf");
    std::fs::write(&p, &header).unwrap();
    let (_, doc) = verify_json(&["--header-only", s(&p)]);
    let structure: Vec<_> = checks(&doc)
        .into_iter()
        .filter(|(c, _, _)| c == "structure")
        .collect();
    assert!(
        structure.iter().all(|(_, st, _)| st == "pass"),
        "{structure:#?}"
    );
}

#[test]
fn device_all_gives_a_row_per_built_in_profile_with_its_verdict_and_speed_basis() {
    let h = common::testdata("headers/llama-3-8b-q4_k_m.header.gguf");
    let (_, doc) = verify_json(&["--header-only", s(&h), "--device", "all"]);
    let devs = doc["models"][0]["devices"].as_array().unwrap();
    assert!(devs.len() >= 15, "{} profiles", devs.len());
    let ids: Vec<&str> = devs
        .iter()
        .map(|d| d["device"]["id"].as_str().unwrap())
        .collect();
    for want in [
        "galaxy-s23",
        "galaxy-s24",
        "galaxy-s25",
        "pixel-8",
        "pixel-9",
        "pixel-10-pro",
        "iphone-15-pro",
        "iphone-16",
        "iphone-16-pro",
        "iphone-17-pro",
        "poco-x7-pro",
        "snapdragon-7-plus-gen-3",
    ] {
        assert!(ids.contains(&want), "{want} missing from {ids:?}");
    }
    for d in devs {
        let total = d["total_bytes"].as_i64().unwrap();
        let app = d["device"]["app_bytes"].as_i64().unwrap();
        assert_eq!(d["margin_bytes"].as_i64().unwrap(), app - total);
        let v = d["verdict"].as_str().unwrap();
        assert_eq!(v == "does not fit", total > app, "{}", d["device"]["id"]);
        let android = d["device"]["platform"] == "android";
        assert_eq!(d["repacked_bytes"].as_u64().unwrap() > 0, android);
        assert!(d["tokens_per_second"].as_f64().unwrap() > 0.0);
        assert!(d["speed_basis"]["fitted_to"].is_string());
    }
    // Phones in the calibration table get their own fit; the Galaxy S23's CPU runs include
    // Q4_K_M files.
    let s23 = devs
        .iter()
        .find(|d| d["device"]["id"] == "galaxy-s23")
        .unwrap();
    assert_eq!(
        s23["speed_basis"]["fitted_to"],
        "phone, backend and weight class"
    );
}
