//! `pocket::requant::plan` against llama-quantize's own per-tensor type choices, recorded by
//! `scripts/make-requant-golden.py` in `testdata/requant/plans.json`: three tiny llamas (F16, BF16 with
//! tied embeddings, F32 with rows that force fallbacks) and gemma-3 270M made F16, every ftype
//! llama-quantize lists, with and without --pure, with and without an importance matrix, and a few
//! --tensor-type / --output-tensor-type / --token-embedding-type / --leave-output-tensor settings.

mod common;

use pocket::gguf::parse::KeyValue;
use pocket::gguf::spec::{ggml_type_by_name, GgmlType};
use pocket::gguf::{GgufFile, Value};
use pocket::requant::plan::{weight_order, TensorDesc};
use pocket::requant::{plan, Ftype, ModelInfo, Params, TensorTypeOverride, FTYPES};
use serde_json::Value as J;

fn golden() -> J {
    let p = common::testdata("requant/plans.json");
    serde_json::from_slice(&std::fs::read(&p).expect("read plans.json")).expect("json")
}

fn ty(s: &str) -> GgmlType {
    ggml_type_by_name(s).unwrap_or_else(|| panic!("type {s}"))
}

/// llama-quantize's options, from the golden's argument list.
fn params(ftype: &str, args: &[J]) -> (Params, Vec<(String, i64)>) {
    let mut p = Params::new(Ftype::parse(ftype).expect("ftype"));
    let mut ints = Vec::new();
    let mut it = args.iter().map(|a| a.as_str().unwrap());
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
            "--override-kv" => {
                let kv = pocket::requant::KvOverride::parse(it.next().unwrap()).unwrap();
                if let pocket::requant::KvOverrideValue::Int(i) = kv.value {
                    ints.push((kv.key, i));
                }
            }
            other => panic!("unexpected golden argument {other}"),
        }
    }
    (p, ints)
}

struct Model {
    kvs_file: Option<GgufFile>,
    tensors: Vec<(String, Vec<u64>, GgmlType)>,
    info_fixed: Option<ModelInfo>,
}

fn load_model(name: &str, m: &J) -> Model {
    if let Some(path) = m.get("path").and_then(|p| p.as_str()) {
        let f = GgufFile::open(common::testdata("..").join(path)).expect("open tiny model");
        let tensors = {
            let g = f.gguf().expect("parse");
            g.tensors
                .iter()
                .map(|t| (t.name.to_string(), t.dims.clone(), t.ty))
                .collect()
        };
        Model {
            kvs_file: Some(f),
            tensors,
            info_fixed: None,
        }
    } else {
        let arch = m["arch"].as_str().unwrap().to_string();
        let hp = &m["hparams"];
        let get = |k: &str| hp.get(format!("{arch}.{k}")).and_then(|v| v.as_u64());
        // Gemma's hyperparameters, read by pocket from the same keys on a metadata-only copy.
        let kvs: Vec<(String, u32)> = [
            "block_count",
            "attention.head_count",
            "attention.head_count_kv",
            "expert_count",
        ]
        .iter()
        .filter_map(|k| get(k).map(|v| (format!("{arch}.{k}"), v as u32)))
        .collect();
        let mut kv = vec![KeyValue {
            key: "general.architecture",
            value: Value::String(&arch),
            offset: 0,
        }];
        for (k, v) in &kvs {
            kv.push(KeyValue {
                key: k,
                value: Value::U32(*v),
                offset: 0,
            });
        }
        let info = ModelInfo::from_kvs(&kv, &[]).expect("model info");
        assert_eq!(info.arch, "gemma3", "{name}");
        let tensors = m["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let dims = t[1]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap())
                    .collect();
                (
                    t[0].as_str().unwrap().to_string(),
                    dims,
                    ty(t[2].as_str().unwrap()),
                )
            })
            .collect();
        Model {
            kvs_file: None,
            tensors,
            info_fixed: Some(info),
        }
    }
}

#[test]
fn plans_equal_llama_quantize() {
    let g = golden();
    let models = g["models"].as_object().unwrap();
    let loaded: Vec<(String, Model)> = models
        .iter()
        .map(|(k, v)| (k.clone(), load_model(k, v)))
        .collect();
    assert!(
        loaded.iter().any(|(k, _)| k.starts_with("gemma")),
        "the golden has no gemma plans: regenerate it with GEMMA set"
    );
    let mut checked = 0;
    let mut per_model = std::collections::BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    for rec in g["plans"].as_array().unwrap() {
        let model_name = rec["model"].as_str().unwrap();
        let (_, m) = loaded.iter().find(|(k, _)| k == model_name).unwrap();
        let ftype = rec["ftype"].as_str().unwrap();
        let args = rec["args"].as_array().unwrap();
        let (params, ints) = params(ftype, args);
        let has_imatrix = !matches!(rec["imatrix"], J::Null | J::Bool(false));
        let info = match (&m.info_fixed, &m.kvs_file) {
            (Some(i), _) => i.clone(),
            (None, Some(f)) => ModelInfo::from_kvs(&f.gguf().unwrap().kvs, &ints).unwrap(),
            _ => unreachable!(),
        };
        let mut descs: Vec<TensorDesc<'_>> = m
            .tensors
            .iter()
            .map(|(n, d, t)| TensorDesc {
                name: n,
                dims: d.clone(),
                ty: *t,
            })
            .collect();
        descs.sort_by(|a, b| weight_order(a.name, b.name));
        let what = format!("{model_name} {ftype} {args:?} imatrix={has_imatrix}");
        let got = plan(&info, &descs, &params, has_imatrix);
        if !rec["ok"].as_bool().unwrap() {
            if got.is_ok() {
                failures.push(format!(
                    "{what}: llama-quantize failed ({}), pocket planned",
                    rec["error"]
                ));
            }
            checked += 1;
            continue;
        }
        let got = match got {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{what}: pocket failed: {e}"));
                continue;
            }
        };
        let want = rec["types"].as_object().unwrap();
        assert_eq!(want.len(), got.tensors.len(), "{what}: tensor count");
        for t in &got.tensors {
            let w = want[&t.name].as_str().unwrap();
            if !t.to.name.eq_ignore_ascii_case(w) {
                failures.push(format!(
                    "{what}: {} is {w} in llama-quantize, {} in pocket ({})",
                    t.name, t.to.name, t.rule
                ));
            }
        }
        if got.n_fallback as u64 != rec["n_fallback"].as_u64().unwrap() {
            failures.push(format!(
                "{what}: {} fallbacks, llama-quantize {}",
                got.n_fallback, rec["n_fallback"]
            ));
        }
        if !has_imatrix {
            let needs = got
                .tensors
                .iter()
                .any(|t| t.allows_quantization && t.requires_imatrix);
            if needs != rec["requires_imatrix"].as_bool().unwrap() {
                failures.push(format!(
                    "{what}: requires imatrix {needs}, llama-quantize says {}",
                    rec["requires_imatrix"]
                ));
            }
        }
        checked += 1;
        *per_model.entry(model_name.to_string()).or_default() += 1;
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // every ftype x (pure or not) x (imatrix or not), per model, and more
    for (k, n) in &per_model {
        assert!(*n >= FTYPES.len() * 4, "{k}: only {n} plans checked");
    }
    eprintln!("{checked} plans checked against llama-quantize: {per_model:?}");
}

#[test]
fn ftype_names_parse_like_llama_quantize() {
    assert_eq!(Ftype::parse("q4_k_m").unwrap().id.raw(), 15);
    assert_eq!(Ftype::parse("Q4_K").unwrap().name, "Q4_K");
    assert_eq!(Ftype::parse("15").unwrap().name, "Q4_K");
    assert_eq!(Ftype::parse("0").unwrap().name, "F32");
    assert_eq!(Ftype::parse("copy").unwrap().name, "COPY");
    assert!(Ftype::parse("Q4_K_X").is_none());
    assert!(Ftype::parse("99").is_none());
    for f in FTYPES.iter() {
        // every default type is a real type, and the names round-trip
        let _ = f.default_type();
        assert_eq!(Ftype::parse(f.name).unwrap().name, f.name);
    }
}
