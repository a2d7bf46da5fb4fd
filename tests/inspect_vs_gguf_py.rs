//! `pocket inspect --json` must agree with gguf-py on every key, value, tensor name, type, shape and
//! offset, for every bundled file and the real model. The expected side is `testdata/expected/*.json`,
//! written by gguf-py 0.19.0's GGUFReader (testdata/make.py, scripts/gguf-py-golden.py; schema in
//! testdata/README.md). Arrays longer than 64 elements are compared through a sha256 of a canonical
//! encoding of their decoded elements, computed here from pocket's JSON values.

mod common;

use std::path::Path;

use serde_json::Value as J;
use sha2::{Digest, Sha256};

fn pocket_json(file: &Path, single: bool) -> J {
    let mut cmd = common::pocket();
    cmd.arg("inspect").arg("--json").arg("--full-arrays");
    if single {
        cmd.arg("--single");
    }
    let out = cmd.arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "{}: exit {:?}: {}",
        file.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: stdout is not one JSON document: {e}", file.display()))
}

const TYPES: [&str; 13] = [
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY",
    "UINT64", "INT64", "FLOAT64",
];

/// The canonical encoding of one element (see testdata/README.md).
fn encode(out: &mut Vec<u8>, ty: &str, v: &J, what: &str) {
    let int = |v: &J| -> i128 {
        v.as_i64()
            .map(i128::from)
            .or(v.as_u64().map(i128::from))
            .unwrap_or_else(|| panic!("{what}: not an integer: {v}"))
    };
    match ty {
        "UINT8" | "INT8" => out.push(int(v) as u8),
        "UINT16" | "INT16" => out.extend_from_slice(&(int(v) as u16).to_le_bytes()),
        "UINT32" | "INT32" => out.extend_from_slice(&(int(v) as u32).to_le_bytes()),
        "UINT64" | "INT64" => out.extend_from_slice(&(int(v) as u64).to_le_bytes()),
        "FLOAT32" => out.extend_from_slice(&(v.as_f64().unwrap() as f32).to_bits().to_le_bytes()),
        "FLOAT64" => out.extend_from_slice(&v.as_f64().unwrap().to_bits().to_le_bytes()),
        "BOOL" => out.push(v.as_bool().unwrap() as u8),
        "STRING" => {
            let s = v.as_str().unwrap();
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        _ => panic!("{what}: cannot hash elements of type {ty} (nested arrays over 64 elements)"),
    }
}

fn same_scalar(ty: &str, ours: &J, theirs: &J) -> bool {
    match ty {
        // pocket writes an f32 as its shortest decimal (0.95), gguf-py as the f64 widening
        // (0.949999988079071): the same f32.
        "FLOAT32" => {
            ours.as_f64().map(|x| (x as f32).to_bits())
                == theirs.as_f64().map(|x| (x as f32).to_bits())
        }
        "FLOAT64" => ours.as_f64() == theirs.as_f64(),
        _ => ours == theirs,
    }
}

/// Compares one of our values with a golden value object {"type", "value" | "elem_type","len",...}.
fn compare_value(what: &str, ours: &J, golden: &J) {
    let ty = golden["type"].as_str().unwrap();
    if ty != "ARRAY" {
        assert!(
            same_scalar(ty, ours, &golden["value"]),
            "{what}: pocket {ours}, gguf-py {}",
            golden["value"]
        );
        return;
    }
    let et = golden["elem_type"].as_str().unwrap();
    let arr = ours
        .as_array()
        .unwrap_or_else(|| panic!("{what}: pocket has {ours}, gguf-py an array"));
    assert_eq!(
        arr.len() as u64,
        golden["len"].as_u64().unwrap(),
        "{what}: array length"
    );
    if let Some(values) = golden.get("value").and_then(J::as_array) {
        for (i, (o, g)) in arr.iter().zip(values).enumerate() {
            let w = format!("{what}[{i}]");
            if et == "ARRAY" {
                compare_value(&w, o, g);
            } else {
                assert!(same_scalar(et, o, g), "{w}: pocket {o}, gguf-py {g}");
            }
        }
    } else {
        let mut bytes = Vec::new();
        for v in arr {
            encode(&mut bytes, et, v, what);
        }
        let hex: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            golden["sha256"].as_str().unwrap(),
            "{what}: sha256 of the {} elements",
            arr.len()
        );
    }
}

fn compare_file(file: &Path, golden_path: &Path) {
    let golden: J = serde_json::from_str(&std::fs::read_to_string(golden_path).unwrap()).unwrap();
    let ours = pocket_json(file, true);
    let name = file.display().to_string();
    for k in [
        "version",
        "endianness",
        "alignment",
        "tensor_data_offset",
        "file_size",
    ] {
        assert_eq!(ours[k], golden[k], "{name}: {k}");
    }
    let order: Vec<&str> = golden["kv_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let our_order: Vec<&str> = ours["kv_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(our_order, order, "{name}: keys and their order");
    for key in order {
        let g = &golden["metadata"][key];
        let ty = g["type"].as_str().unwrap();
        assert!(TYPES.contains(&ty), "{name}: golden type {ty}");
        let want_type = if ty == "ARRAY" {
            format!("ARRAY[{}]", g["elem_type"].as_str().unwrap())
        } else {
            ty.to_string()
        };
        assert_eq!(
            ours["metadata_types"][key].as_str().unwrap(),
            want_type,
            "{name}: type of {key}"
        );
        compare_value(&format!("{name}: {key}"), &ours["metadata"][key], g);
    }
    let gt = golden["tensors"].as_array().unwrap();
    let ot = ours["tensors"].as_array().unwrap();
    assert_eq!(ot.len(), gt.len(), "{name}: tensor count");
    for (o, g) in ot.iter().zip(gt) {
        let tn = g["name"].as_str().unwrap();
        assert_eq!(o["name"], g["name"], "{name}: tensor order");
        for k in ["type_id", "shape", "offset", "n_bytes"] {
            assert_eq!(o[k], g[k], "{name}: tensor {tn}: {k}");
        }
    }
}

#[test]
fn every_testdata_file_agrees_with_gguf_py() {
    let dir = common::testdata("expected");
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for golden in entries
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let stem = golden.file_stem().unwrap().to_string_lossy().to_string();
        if stem.starts_with("gemma-3-270m") {
            continue; // the real model has its own test
        }
        let file = common::testdata(&format!("{stem}.gguf"));
        assert!(
            file.is_file(),
            "golden {} has no {}",
            golden.display(),
            file.display()
        );
        compare_file(&file, &golden);
        n += 1;
    }
    assert!(n >= 8, "only {n} goldens found");
}

#[test]
fn gemma_agrees_with_gguf_py() {
    compare_file(
        &common::gemma(),
        &common::testdata("expected/gemma-3-270m-q4_k_m.json"),
    );
}

#[test]
fn first_shard_reports_the_whole_model() {
    let mut shards: Vec<_> = std::fs::read_dir(common::testdata(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("tiny-llama-split-"))
        .collect();
    shards.sort();
    assert!(shards.len() >= 2, "split testdata missing: {shards:?}");
    let whole = pocket_json(&common::testdata("tiny-llama-q8_0.gguf"), false);
    let split = pocket_json(&shards[0], false);
    assert_eq!(split["n_shards"].as_u64(), Some(shards.len() as u64));
    assert_eq!(split["n_params"], whole["n_params"]);
    assert_eq!(split["n_tensors"], whole["n_tensors"]);
    let names = |j: &J| {
        j["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&split), names(&whole));
    // A later shard alone is refused with a clear message, unless --single.
    let out = common::pocket()
        .arg("inspect")
        .arg(&shards[1])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("first shard"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The zoo's goldens (`testdata/zoo/expected/STEM.json`, scripts/make-zoo-goldens.sh): the file each
/// one names, fetched through scripts/fetch-models.sh.
fn zoo_goldens(vocab: bool) -> Vec<(std::path::PathBuf, std::path::PathBuf)> {
    let mut goldens: Vec<_> = std::fs::read_dir(common::testdata("zoo/expected"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("ggml-vocab-")
                == vocab
        })
        .collect();
    goldens.sort();
    goldens
        .into_iter()
        .map(|g| {
            let stem = g.file_stem().unwrap().to_string_lossy().to_string();
            let file = if vocab {
                common::zoo("vocab").join(format!("{stem}.gguf"))
            } else if stem.starts_with("qwen") {
                common::zoo("qwen")
            } else {
                common::zoo("nomic")
            };
            (file, g)
        })
        .collect()
}

/// Qwen2.5-Coder 1.5B (151,936 tokens, a 5.95 MB header) and nomic-embed-text-v1.5 (nomic-bert).
#[test]
fn zoo_models_agree_with_gguf_py() {
    let g = zoo_goldens(false);
    assert_eq!(g.len(), 2, "{g:?}");
    for (file, golden) in g {
        compare_file(&file, &golden);
    }
}

/// Every vocabulary-only file of llama.cpp's (`models/ggml-vocab-*.gguf`).
#[test]
fn zoo_vocabularies_agree_with_gguf_py() {
    let g = zoo_goldens(true);
    assert!(g.len() >= 19, "{g:?}");
    for (file, golden) in g {
        compare_file(&file, &golden);
    }
}
