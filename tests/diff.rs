//! `pocket diff`: metadata added, removed and changed; tensors added, removed, retyped and changed,
//! with RMSE and max |Δ| computed independently here; exit 0 for identical models, 1 otherwise.

mod common;

use std::path::Path;

use pocket::gguf::spec::ggml_type_by_name;
use pocket::gguf::{GgufFile, GgufWriter};

fn pocket(args: &[&str]) -> (i32, String, String) {
    let o = common::pocket().args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn diff_json(a: &Path, b: &Path) -> (i32, serde_json::Value) {
    let (code, out, err) = pocket(&["diff", a.to_str().unwrap(), b.to_str().unwrap(), "--json"]);
    assert!(code == 0 || code == 1, "{err}");
    (code, serde_json::from_str(&out).unwrap())
}

fn f16s(b: &[u8]) -> Vec<f32> {
    b.chunks(2)
        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect()
}

/// A copy of tiny-llama-f16 with: `token_embd.weight` renamed (one removed, one added), the first
/// F32 norm stored as F16 (a type change), every 7th value of `blk.0.attn_q.weight` bumped, a key
/// changed, one removed and one added. Returns the expected (rmse, max_abs) of the attn_q change and
/// of the norm's retyping.
fn edited_copy(src: &Path, dst: &Path) -> ((f64, f64), (f64, f64)) {
    let f = GgufFile::open(src).unwrap();
    let g = f.gguf().unwrap();
    let mut w = GgufWriter::from_gguf(&g);
    w.set("general.name", pocket::Value::String("edited"));
    assert!(w.remove("general.file_type") || w.remove("llama.vocab_size"));
    w.set("x.new", pocket::Value::U8(1));
    let norm = g.tensors.iter().position(|t| t.ty.name == "f32").unwrap();
    w.tensors[norm].ty = ggml_type_by_name("f16").unwrap();
    let emb = w
        .tensors
        .iter()
        .position(|t| t.name == "token_embd.weight")
        .unwrap();
    w.tensors[emb].name = "token_embd.renamed";
    let q = g.tensor("blk.0.attn_q.weight").unwrap();
    let orig_q = f16s(g.tensor_data(q).unwrap());
    let mut new_q = orig_q.clone();
    for (i, x) in new_q.iter_mut().enumerate() {
        if i % 7 == 0 {
            *x = half::f16::from_f32(*x + 0.5).to_f32();
        }
    }
    let err = |a: &[f32], b: &[f32]| {
        let s: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
            .sum();
        let m = a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).abs())
            .fold(0.0, f64::max);
        ((s / a.len() as f64).sqrt(), m)
    };
    let t_norm = &g.tensors[norm];
    let orig_norm: Vec<f32> = g
        .tensor_data(t_norm)
        .unwrap()
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let norm16: Vec<half::f16> = orig_norm.iter().map(|&x| half::f16::from_f32(x)).collect();
    let norm_back: Vec<f32> = norm16.iter().map(|x| x.to_f32()).collect();
    let mut out = std::fs::File::create(dst).unwrap();
    w.write(&mut out, |i, o| {
        let t = &g.tensors[i];
        if i == norm {
            for x in &norm16 {
                o.write_all(&x.to_le_bytes())?;
            }
            Ok(())
        } else if t.name == "blk.0.attn_q.weight" {
            for x in &new_q {
                o.write_all(&half::f16::from_f32(*x).to_le_bytes())?;
            }
            Ok(())
        } else {
            o.write_all(g.tensor_data(t).unwrap())
        }
    })
    .unwrap();
    (err(&orig_q, &new_q), err(&orig_norm, &norm_back))
}

#[test]
fn identical_models_exit_zero() {
    let p = common::testdata("tiny-llama-q8_0.gguf");
    let (code, d) = diff_json(&p, &p);
    assert_eq!(code, 0);
    assert_eq!(d["identical"], true);
    assert_eq!(d["tensors_same"], 21);
}

#[test]
fn every_kind_of_change_is_reported_with_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let src = common::testdata("tiny-llama-f16.gguf");
    let dst = dir.path().join("edited.gguf");
    let ((q_rmse, q_max), (n_rmse, n_max)) = edited_copy(&src, &dst);
    assert!(q_max > 0.1 && n_max > 0.0);
    let (code, d) = diff_json(&src, &dst);
    assert_eq!(code, 1);
    let keys = d["keys"].as_array().unwrap();
    let change = |k: &str| {
        keys.iter()
            .find(|x| x["key"] == k)
            .map(|x| x["change"].clone())
    };
    assert_eq!(change("general.name").unwrap(), "changed");
    assert_eq!(change("x.new").unwrap(), "added");
    assert_eq!(keys.iter().filter(|x| x["change"] == "removed").count(), 1);
    let ts = d["tensors"].as_array().unwrap();
    let t = |n: &str| {
        ts.iter()
            .find(|x| x["name"] == n)
            .unwrap_or_else(|| panic!("{n}: {ts:?}"))
    };
    assert_eq!(t("token_embd.weight")["change"], "removed");
    assert_eq!(t("token_embd.renamed")["change"], "added");
    let q = t("blk.0.attn_q.weight");
    assert_eq!(q["change"], "data");
    let close =
        |a: &serde_json::Value, b: f64| (a.as_f64().unwrap() - b).abs() <= 1e-9 * b.max(1.0);
    assert!(close(&q["rmse"], q_rmse), "{q} vs {q_rmse}");
    assert!(close(&q["max_abs"], q_max), "{q} vs {q_max}");
    let retyped: Vec<_> = ts.iter().filter(|x| x["change"] == "type").collect();
    assert_eq!(retyped.len(), 1);
    assert_eq!(retyped[0]["a_type"], "F32");
    assert_eq!(retyped[0]["b_type"], "F16");
    assert!(
        close(&retyped[0]["rmse"], n_rmse) && close(&retyped[0]["max_abs"], n_max),
        "{}",
        retyped[0]
    );
    assert_eq!(d["tensors"].as_array().unwrap().len(), 4);
    // The table says the same.
    let (code, out, _) = pocket(&["diff", src.to_str().unwrap(), dst.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("blk.0.attn_q.weight") && out.contains("different"),
        "{out}"
    );
}

#[test]
fn a_model_and_its_other_byte_order_differ_only_in_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let src = common::testdata("tiny-llama-q8_0.gguf");
    let be = dir.path().join("be.gguf");
    let (code, _, err) = pocket(&[
        "convert",
        src.to_str().unwrap(),
        be.to_str().unwrap(),
        "--endian",
        "big",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, d) = diff_json(&src, &be);
    assert_eq!(code, 1);
    assert_eq!(d["header"][0]["field"], "endianness");
    assert!(d["keys"].as_array().unwrap().is_empty());
    // F32 tensors decode the same after swapping; Q8_0 ones too once Q8_0 decodes, else they are
    // reported as bytes differing without numbers.
    for t in d["tensors"].as_array().unwrap() {
        assert_eq!(t["a_type"], "Q8_0", "{t}");
        assert!(
            t["note"]
                .as_str()
                .is_some_and(|n| n.contains("not available for Q8_0")),
            "{t}"
        );
    }
}

#[test]
fn diff_of_a_split_model_and_its_merge_names_only_the_split_keys() {
    let dir = tempfile::tempdir().unwrap();
    let first = common::testdata("tiny-llama-split-00001-of-00003.gguf");
    let merged = dir.path().join("m.gguf");
    let (code, _, err) = pocket(&["merge", first.to_str().unwrap(), merged.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, d) = diff_json(&first, &merged);
    assert_eq!(code, 1);
    let keys: Vec<_> = d["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["split.count"], "merge sets split.count to 0");
    assert_eq!(d["tensors_same"], 21);
    let (code, _, err) = pocket(&["diff", first.to_str().unwrap(), "/nonexistent.gguf"]);
    assert_eq!(code, 2, "{err}");
}
