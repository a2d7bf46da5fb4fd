//! `pocket meta`: in-place edits touch only header bytes (checked by hashing every tensor before and
//! after, also on the real model), edits that do not fit rewrite the file atomically, every value type
//! can be set and read back, and outputs that are the input are refused.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use pocket::edit::meta::{edit, Edit, Mode, Options};
use pocket::edit::value::NewValue;
use pocket::gguf::{GgufFile, Value};
use sha2::{Digest, Sha256};

fn pocket(args: &[&str]) -> (i32, String, String) {
    let o = common::pocket().args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// name → sha256 of the tensor's data, plus the sha256 of everything from the data section on.
fn tensor_hashes(p: &Path) -> (Vec<(String, [u8; 32])>, [u8; 32]) {
    let f = GgufFile::open(p).unwrap();
    let g = f.gguf().unwrap();
    let per = g
        .tensors
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                Sha256::digest(g.tensor_data(t).unwrap()).into(),
            )
        })
        .collect();
    (
        per,
        Sha256::digest(&g.bytes[g.data_offset as usize..]).into(),
    )
}

fn copy_to_temp(src: &Path) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("model.gguf");
    std::fs::copy(src, &p).unwrap();
    (d, p)
}

fn get(p: &Path, key: &str) -> Option<serde_json::Value> {
    let f = GgufFile::open(p).unwrap();
    let g = f.gguf().unwrap();
    g.get(key).map(pocket::gguf::json::value_to_json)
}

#[test]
fn a_change_that_fits_the_padding_is_written_in_place_and_touches_no_tensor_byte() {
    let (_d, p) = copy_to_temp(&common::testdata("tiny-llama-q8_0.gguf"));
    let before = tensor_hashes(&p);
    let size = std::fs::metadata(&p).unwrap().len();
    let edits = [Edit::Set {
        key: "general.name".into(),
        value: NewValue::Str("tiny-llama-2".into()),
    }];
    let plan = edit(&p, &edits, &Options::default()).unwrap();
    assert_eq!(plan.mode, Mode::InPlace, "{}", plan.reason);
    assert!(plan.write_offset > 0 && plan.bytes_written < plan.old_data_offset);
    assert_eq!(std::fs::metadata(&p).unwrap().len(), size);
    assert_eq!(tensor_hashes(&p), before);
    assert_eq!(get(&p, "general.name").unwrap(), "tiny-llama-2");
}

#[test]
fn a_change_too_big_for_the_padding_rewrites_the_file_atomically() {
    let (d, p) = copy_to_temp(&common::testdata("tiny-llama-q8_0.gguf"));
    let before = tensor_hashes(&p).0;
    let name = "x".repeat(200);
    let edits = [
        Edit::Set {
            key: "general.name".into(),
            value: NewValue::Str(name.clone()),
        },
        Edit::Remove {
            key: "general.file_type".into(),
        },
    ];
    let dry = edit(
        &p,
        &edits,
        &Options {
            dry_run: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(dry.mode, Mode::Rewrite);
    assert_eq!(
        get(&p, "general.name").unwrap(),
        "tiny-llama",
        "dry run wrote"
    );
    let plan = edit(&p, &edits, &Options::default()).unwrap();
    assert_eq!(plan.mode, Mode::Rewrite);
    assert_eq!(plan.bytes_written, std::fs::metadata(&p).unwrap().len());
    assert_eq!(get(&p, "general.name").unwrap(), name.as_str());
    assert_eq!(get(&p, "general.file_type"), None);
    assert_eq!(tensor_hashes(&p).0, before, "tensor data moved intact");
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
}

#[test]
fn in_place_edit_of_the_real_model_rewrites_no_tensor_byte() {
    let (_d, p) = copy_to_temp(&common::gemma());
    let before = tensor_hashes(&p);
    let f = GgufFile::open(&p).unwrap();
    let g = f.gguf().unwrap();
    let ctx_key = "gemma3.context_length";
    let ctx = g.get_u64(ctx_key).unwrap() as u32;
    let name = g.get_str("general.name").unwrap().to_string();
    let slack = (g.data_offset - g.header_end) as usize;
    drop(g);
    drop(f);
    // A new name as long as the padding allows, and a changed number.
    let new_name = format!("{name}{}", "!".repeat(slack));
    let edits = [
        Edit::Set {
            key: "general.name".into(),
            value: NewValue::Str(new_name.clone()),
        },
        Edit::Set {
            key: ctx_key.into(),
            value: NewValue::Scalar(Value::U32(ctx + 1)),
        },
    ];
    let t0 = Instant::now();
    let plan = edit(&p, &edits, &Options::default()).unwrap();
    let took = t0.elapsed();
    eprintln!(
        "in-place edit of gemma-3 270M: {took:?}, {} header bytes written",
        plan.bytes_written
    );
    assert_eq!(plan.mode, Mode::InPlace, "{}", plan.reason);
    assert_eq!(get(&p, "general.name").unwrap(), new_name.as_str());
    assert_eq!(get(&p, ctx_key).unwrap(), ctx + 1);
    assert_eq!(tensor_hashes(&p), before, "a tensor byte changed");
    // One byte more no longer fits: the plan says rewrite.
    let one_more = [Edit::Set {
        key: "general.name".into(),
        value: NewValue::Str(format!("{new_name}!")),
    }];
    let dry = Options {
        dry_run: true,
        ..Default::default()
    };
    assert_eq!(edit(&p, &one_more, &dry).unwrap().mode, Mode::Rewrite);
}

#[test]
fn every_value_type_can_be_set_and_read_back() {
    let (_d, p) = copy_to_temp(&common::testdata("tiny-llama-q8_0.gguf"));
    let ps = p.to_str().unwrap();
    let cases: &[(&str, &str, &str, serde_json::Value)] = &[
        ("t.u8", "u8", "255", 255.into()),
        ("t.i8", "i8", "-128", (-128).into()),
        ("t.u16", "u16", "65535", 65535.into()),
        ("t.i16", "i16", "-32768", (-32768).into()),
        ("t.u32", "u32", "4294967295", 4294967295u64.into()),
        ("t.i32", "i32", "-7", (-7).into()),
        ("t.u64", "u64", "18446744073709551615", u64::MAX.into()),
        ("t.i64", "i64", "-9223372036854775808", i64::MIN.into()),
        ("t.f32", "f32", "0.5", 0.5.into()),
        ("t.f64", "f64", "-1e300", (-1e300).into()),
        ("t.bool", "bool", "true", true.into()),
        ("t.str", "str", "héllo\nwörld", "héllo\nwörld".into()),
        (
            "t.arr",
            "array[string]",
            r#"["a", "", "ü"]"#,
            serde_json::json!(["a", "", "ü"]),
        ),
        (
            "t.nested",
            "array",
            "[[1, 2], [3]]",
            serde_json::json!([[1, 2], [3]]),
        ),
    ];
    for (key, ty, text, want) in cases {
        let (code, _, err) = pocket(&["meta", "set", ps, key, text, "--type", ty]);
        assert_eq!(code, 0, "{key}: {err}");
        let (code, out, err) = pocket(&["meta", "get", ps, key, "--json"]);
        assert_eq!(code, 0, "{key}: {err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(&doc["value"], want, "{key}");
    }
    let (code, _, err) = pocket(&["meta", "set", ps, "t.u8", "256", "--type", "u8"]);
    assert_eq!(code, 2, "out of range is refused");
    assert!(err.contains("t.u8"), "{err}");
    // A new key without --type is a string; an existing key keeps its type.
    pocket(&["meta", "set", ps, "t.u16", "7"]);
    let (_, out, _) = pocket(&["meta", "get", ps, "t.u16", "--json"]);
    assert!(out.contains("UINT16"), "{out}");
}

#[test]
fn from_json_sets_many_keys_and_replaces_a_chat_template() {
    let (d, p) = copy_to_temp(&common::testdata("tiny-llama-q8_0.gguf"));
    let template =
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}".repeat(20);
    let j = d.path().join("edits.json");
    std::fs::write(
        &j,
        serde_json::json!({
            "tokenizer.chat_template": template,
            "general.file_type": null,
            "t.ids": {"type": "ARRAY[UINT32]", "value": [1, 2]},
        })
        .to_string(),
    )
    .unwrap();
    let (code, out, err) = pocket(&[
        "meta",
        "set",
        p.to_str().unwrap(),
        "--from-json",
        j.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["mode"], "rewrite");
    assert_eq!(doc["changes"].as_array().unwrap().len(), 3);
    assert_eq!(
        get(&p, "tokenizer.chat_template").unwrap(),
        template.as_str()
    );
    assert_eq!(get(&p, "general.file_type"), None);
    assert_eq!(get(&p, "t.ids").unwrap(), serde_json::json!([1, 2]));
}

#[test]
fn meta_refuses_an_output_that_is_the_input_and_bad_requests() {
    let (d, p) = copy_to_temp(&common::testdata("tiny-llama-q8_0.gguf"));
    let ps = p.to_str().unwrap();
    let link = d.path().join("link.gguf");
    std::fs::hard_link(&p, &link).unwrap();
    let before = std::fs::read(&p).unwrap();
    let (code, _, err) = pocket(&[
        "meta",
        "set",
        ps,
        "general.name",
        "x",
        "-o",
        link.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("refusing"), "{err}");
    let (code, _, err) = pocket(&["meta", "rm", ps, "no.such.key"]);
    assert_eq!(code, 2);
    assert!(err.contains("no.such.key"), "{err}");
    let (code, _, _) = pocket(&["meta", "get", ps, "no.such.key"]);
    assert_eq!(code, 1, "an absent key is the answer no");
    let (code, _, err) = pocket(&["meta", "set", ps, "general.alignment", "3"]);
    assert_eq!(code, 2, "alignment must be a power of two: {err}");
    assert_eq!(std::fs::read(&p).unwrap(), before, "nothing written");
    // A separate output leaves the input alone.
    let o = d.path().join("out.gguf");
    let (code, _, err) = pocket(&[
        "meta",
        "set",
        ps,
        "general.name",
        "y",
        "-o",
        o.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&p).unwrap(), before);
    assert_eq!(get(&o, "general.name").unwrap(), "y");
}

#[test]
fn big_endian_files_are_edited_in_their_byte_order() {
    let (_d, p) = copy_to_temp(&common::testdata("values-be-v3.gguf"));
    let before = tensor_hashes(&p);
    // Same length as the old name: in place.
    let edits = [Edit::Set {
        key: "general.name".into(),
        value: NewValue::Str("pocket test file values-XX-v3.gguf".into()),
    }];
    assert_eq!(
        edit(&p, &edits, &Options::default()).unwrap().mode,
        Mode::InPlace
    );
    assert_eq!(tensor_hashes(&p), before);
    // A nested array, new: rewritten, still big-endian and readable.
    let v = pocket::edit::value::from_json("n", &serde_json::json!([[1, 2], [3]]), None).unwrap();
    let edits = [Edit::Set {
        key: "t.nested".into(),
        value: v,
    }];
    assert_eq!(
        edit(&p, &edits, &Options::default()).unwrap().mode,
        Mode::Rewrite
    );
    let f = GgufFile::open(&p).unwrap();
    let g = f.gguf().unwrap();
    assert_eq!(g.endian, pocket::Endian::Big);
    assert_eq!(
        pocket::gguf::json::value_to_json(g.get("t.nested").unwrap()),
        serde_json::json!([[1, 2], [3]])
    );
    assert_eq!(tensor_hashes(&p).0, before.0);
}

#[test]
fn changing_the_alignment_lays_the_data_out_again() {
    let (_d, p) = copy_to_temp(&common::testdata("tiny-llama-q8_0.gguf"));
    let before = tensor_hashes(&p).0;
    let edits = [Edit::Set {
        key: "general.alignment".into(),
        value: NewValue::Scalar(Value::U32(256)),
    }];
    let plan = edit(&p, &edits, &Options::default()).unwrap();
    assert_eq!(plan.mode, Mode::Rewrite);
    assert!(plan.reason.contains("alignment"), "{}", plan.reason);
    let f = GgufFile::open(&p).unwrap();
    let g = f.gguf().unwrap();
    assert_eq!(g.alignment, 256);
    assert!(g.tensors.iter().all(|t| t.file_offset % 256 == 0));
    drop(g);
    assert_eq!(tensor_hashes(&p).0, before);
}
