//! `pocket convert --endian`: every testdata file survives a round trip through the other byte order
//! byte for byte, pocket's big-endian output is byte-identical to gguf-py's gguf-convert-endian where
//! that tool handles the file (testdata/interop/gguf-convert-endian.json, made by
//! scripts/make-endian-golden.py), and outputs that are the input are refused.

mod common;

use std::path::Path;

use pocket::gguf::json::value_to_json;
use pocket::gguf::{Endian, GgufFile};
use sha2::{Digest, Sha256};

fn pocket(args: &[&str]) -> (i32, String, String) {
    let o = common::pocket().args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn convert(a: &Path, b: &Path, order: &str) {
    let (code, _, err) = pocket(&[
        "convert",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--endian",
        order,
    ]);
    assert_eq!(code, 0, "{} → {order}: {err}", a.display());
}

fn testdata_files() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(common::testdata(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".gguf"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_testdata_file_round_trips_through_the_other_byte_order() {
    let files = testdata_files();
    assert!(files.len() >= 12);
    for name in files {
        let src = common::testdata(&name);
        let d = tempfile::tempdir().unwrap();
        let (x, back) = (d.path().join("x.gguf"), d.path().join("back.gguf"));
        let f = GgufFile::open(&src).unwrap();
        let g = f.gguf().unwrap();
        let (there, home) = match g.endian {
            Endian::Little => ("big", "little"),
            Endian::Big => ("little", "big"),
        };
        convert(&src, &x, there);
        convert(&x, &back, home);
        assert_eq!(
            std::fs::read(&back).unwrap(),
            std::fs::read(&src).unwrap(),
            "{name}: round trip"
        );
        // The converted file holds the same metadata and shapes, in the other order.
        let fx = GgufFile::open(&x).unwrap();
        let gx = fx.gguf().unwrap();
        assert_ne!(gx.endian, g.endian, "{name}");
        assert_eq!(gx.kvs.len(), g.kvs.len());
        for (a, b) in g.kvs.iter().zip(&gx.kvs) {
            assert_eq!(a.key, b.key);
            assert_eq!(
                value_to_json(&a.value),
                value_to_json(&b.value),
                "{name}: {}",
                a.key
            );
        }
        for (a, b) in g.tensors.iter().zip(&gx.tensors) {
            assert_eq!(
                (a.name, &a.dims, a.ty, a.offset),
                (b.name, &b.dims, b.ty, b.offset)
            );
        }
    }
}

#[test]
fn big_endian_output_matches_gguf_convert_endian_where_it_works() {
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::testdata("interop/gguf-convert-endian.json")).unwrap(),
    )
    .unwrap();
    let mut compared = 0;
    for (name, want) in golden.as_object().unwrap() {
        let Some(sha) = want.get("sha256") else {
            continue;
        };
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("be.gguf");
        convert(&common::testdata(name), &out, "big");
        let got: String = Sha256::digest(std::fs::read(&out).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(&got, sha, "{name}");
        compared += 1;
    }
    assert!(compared >= 5, "F16, Q8_0, Q4_K/Q6_K models compared");
}

#[test]
fn block_scales_are_swapped_and_quants_left_alone() {
    // Q8_0: a 2-byte scale then 32 one-byte quants per block.
    let src = common::testdata("tiny-llama-q8_0.gguf");
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("be.gguf");
    convert(&src, &out, "big");
    let (fa, fb) = (GgufFile::open(&src).unwrap(), GgufFile::open(&out).unwrap());
    let (a, b) = (fa.gguf().unwrap(), fb.gguf().unwrap());
    let t = a.tensors.iter().find(|t| t.ty.name == "q8_0").unwrap();
    let (x, y) = (
        a.tensor_data(t).unwrap(),
        b.tensor_data(b.tensor(t.name).unwrap()).unwrap(),
    );
    for (bx, by) in x.chunks(34).zip(y.chunks(34)) {
        assert_eq!([bx[0], bx[1]], [by[1], by[0]]);
        assert_eq!(bx[2..], by[2..]);
    }
}

#[cfg(unix)]
#[test]
fn convert_refuses_to_overwrite_its_input() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("m.gguf");
    std::fs::copy(common::testdata("tiny-llama-q8_0.gguf"), &p).unwrap();
    let before = std::fs::read(&p).unwrap();
    let link = d.path().join("link.gguf");
    std::os::unix::fs::symlink(&p, &link).unwrap();
    for out in [&p, &link] {
        let (code, _, err) = pocket(&[
            "convert",
            p.to_str().unwrap(),
            out.to_str().unwrap(),
            "--endian",
            "big",
        ]);
        assert_eq!(code, 2);
        assert!(err.contains("refusing"), "{err}");
    }
    assert_eq!(std::fs::read(&p).unwrap(), before);
    let (code, _, _) = pocket(&[
        "convert",
        p.to_str().unwrap(),
        "x.gguf",
        "--endian",
        "middle",
    ]);
    assert_eq!(code, 2);
}
