//! Property test of the metadata edit planner and its two writers (issue #27): for random models
//! (keys of every kind, tensors of three types, either byte order, sometimes a custom alignment) and
//! random edit lists (set, add, remove — of the alignment too), `pocket::edit::meta::edit` leaves a
//! file that parses, whose keys are exactly the old ones with the edits applied in order (values bit
//! for bit), whose tensors are the same with the same data bytes at aligned offsets; an in-place
//! edit leaves every byte from the data section on untouched and the size the same, an "unchanged"
//! plan the whole file; an edit that is refused leaves the file as it was. The fuzz target
//! `meta_edit_plan` (scripts/fuzz.sh) checks the planner alone on arbitrary bytes.

use pocket::edit::diff::values_equal;
use pocket::edit::meta::{edit, Edit, Mode, Options};
use pocket::edit::value::NewValue;
use pocket::gguf::spec::{ggml_type, Endian, ValueType};
use pocket::gguf::{Gguf, GgufWriter, KeyValue, TensorSpec, Value};
use proptest::prelude::*;

fn scalar() -> impl Strategy<Value = NewValue> {
    prop_oneof![
        any::<u32>().prop_map(|v| NewValue::Scalar(Value::U32(v))),
        any::<i8>().prop_map(|v| NewValue::Scalar(Value::I8(v))),
        any::<u64>().prop_map(|v| NewValue::Scalar(Value::U64(v))),
        // Any bits, NaNs included: values are compared bit for bit.
        any::<u32>().prop_map(|b| NewValue::Scalar(Value::F32(f32::from_bits(b)))),
        any::<bool>().prop_map(|v| NewValue::Scalar(Value::Bool(v))),
        "[a-zé▁ ]{0,40}".prop_map(NewValue::Str),
    ]
}

fn value() -> impl Strategy<Value = NewValue> {
    prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(any::<u16>(), 0..20).prop_map(|xs| NewValue::Array {
            elem: ValueType::U16,
            items: xs.into_iter().map(|x| NewValue::Scalar(Value::U16(x))).collect(),
        }),
        1 => prop::collection::vec("[a-z<>]{0,8}", 0..12).prop_map(|xs| NewValue::Array {
            elem: ValueType::String,
            items: xs.into_iter().map(NewValue::Str).collect(),
        }),
    ]
}

/// What an edit list asks for, before it is tied to key names.
#[derive(Debug, Clone)]
enum Op {
    /// Set the key picked by the index (among the keys there now) to a value.
    SetOld(usize, NewValue),
    /// Add (or set) `new.N`.
    SetNew(u8, NewValue),
    /// Remove the key picked by the index, or a key that is not there.
    Remove(usize),
    RemoveMissing,
    /// Set `general.alignment` to 2^k.
    Align(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<usize>(), value()).prop_map(|(i, v)| Op::SetOld(i, v)),
        3 => (0u8..4, value()).prop_map(|(i, v)| Op::SetNew(i, v)),
        3 => any::<usize>().prop_map(Op::Remove),
        1 => Just(Op::RemoveMissing),
        1 => (3u32..8).prop_map(Op::Align),
    ]
}

#[derive(Debug, Clone)]
struct Model {
    big: bool,
    align: Option<u32>,
    keys: Vec<(String, NewValue)>,
    /// (type id, dims, seed of the data)
    tensors: Vec<(u32, Vec<u64>, u8)>,
}

fn model() -> impl Strategy<Value = Model> {
    let tensor = (
        prop::sample::select(vec![0u32, 1, 8]),
        prop::collection::vec(1u64..4, 0..2),
        any::<u8>(),
    )
        .prop_map(|(ty, rest, seed)| {
            // Rows of whole blocks: Q8_0 has 32 elements a block.
            let mut dims = vec![32];
            dims.extend(rest);
            (ty, dims, seed)
        });
    (
        any::<bool>(),
        prop::option::of(3u32..8),
        prop::collection::vec(value(), 0..8),
        prop::collection::vec(tensor, 0..4),
    )
        .prop_map(|(big, align, vals, tensors)| Model {
            big,
            align: align.map(|k| 1 << k),
            keys: vals
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("k.{i}"), v))
                .collect(),
            tensors,
        })
}

fn endian(big: bool) -> Endian {
    if big {
        Endian::Big
    } else {
        Endian::Little
    }
}

/// The model's file, as pocket's writer lays it out, and each tensor's data.
fn write_model(m: &Model) -> (Vec<u8>, Vec<Vec<u8>>) {
    let e = endian(m.big);
    let mut keys: Vec<(String, NewValue)> =
        vec![("general.architecture".into(), NewValue::Str("llama".into()))];
    if let Some(a) = m.align {
        keys.push(("general.alignment".into(), NewValue::Scalar(Value::U32(a))));
    }
    keys.extend(m.keys.iter().cloned());
    let enc: Vec<Vec<u8>> = keys.iter().map(|(_, v)| v.encode(e)).collect();
    let names: Vec<String> = (0..m.tensors.len()).map(|i| format!("t.{i}")).collect();
    let mut w = GgufWriter::new(e);
    for ((k, v), raw) in keys.iter().zip(&enc) {
        w.kvs.push(KeyValue {
            key: k,
            value: v.as_value(raw, e),
            offset: 0,
        });
    }
    let mut data: Vec<Vec<u8>> = Vec::new();
    for ((ty, dims, seed), name) in m.tensors.iter().zip(&names) {
        let spec = TensorSpec {
            name,
            dims: dims.clone(),
            ty: ggml_type(*ty).unwrap(),
        };
        let n = spec.n_bytes().unwrap() as usize;
        data.push((0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect());
        w.tensors.push(spec);
    }
    let mut out = Vec::new();
    w.write(&mut out, |i, dst| dst.write_all(&data[i])).unwrap();
    (out, data)
}

/// The edits for `ops` against the keys as they stand after the edits before, and the keys
/// expected after all of them (None: the list is refused, a key to remove is not there).
/// Each key with its new value (None: the file's own).
type Keys = Vec<(String, Option<NewValue>)>;

fn edits_for(start: &[String], ops: &[Op]) -> (Vec<Edit>, Option<Keys>) {
    let mut keys: Keys = start.iter().map(|k| (k.clone(), None)).collect();
    let mut edits = Vec::new();
    let mut ok = true;
    let set = |keys: &mut Keys, k: String, v: NewValue| {
        match keys.iter_mut().find(|(n, _)| *n == k) {
            Some(slot) => slot.1 = Some(v.clone()),
            None => keys.push((k.clone(), Some(v.clone()))),
        }
        Edit::Set { key: k, value: v }
    };
    for op in ops {
        match op {
            Op::SetOld(i, v) if !keys.is_empty() => {
                let k = keys[i % keys.len()].0.clone();
                // The architecture and alignment keep their types (a file needs them readable).
                if k == "general.architecture" || k == "general.alignment" {
                    continue;
                }
                edits.push(set(&mut keys, k, v.clone()));
            }
            Op::SetOld(..) => {}
            Op::SetNew(i, v) => edits.push(set(&mut keys, format!("new.{i}"), v.clone())),
            Op::Align(k) => edits.push(set(
                &mut keys,
                "general.alignment".into(),
                NewValue::Scalar(Value::U32(1 << k)),
            )),
            Op::Remove(i) if !keys.is_empty() => {
                let k = keys[i % keys.len()].0.clone();
                if k == "general.architecture" {
                    continue;
                }
                keys.retain(|(n, _)| *n != k);
                edits.push(Edit::Remove { key: k });
            }
            Op::Remove(_) => {}
            Op::RemoveMissing => {
                ok = false;
                edits.push(Edit::Remove {
                    key: "not.there".into(),
                });
            }
        }
    }
    (edits, ok.then_some(keys))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn an_edit_leaves_a_file_that_parses_with_the_edits_and_the_same_tensor_data(
        m in model(),
        ops in prop::collection::vec(op(), 1..5),
        no_in_place in prop::bool::weighted(0.2),
    ) {
        let (old, data) = write_model(&m);
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("m.gguf");
        std::fs::write(&path, &old).unwrap();
        let g0 = Gguf::parse(&old).unwrap();
        let start: Vec<String> = g0.kvs.iter().map(|kv| kv.key.to_string()).collect();
        let (edits, expected) = edits_for(&start, &ops);
        prop_assume!(!edits.is_empty());
        let opts = Options { no_in_place, ..Options::default() };
        let r = edit(&path, &edits, &opts);
        let new = std::fs::read(&path).unwrap();
        let Some(expected) = expected else {
            prop_assert!(r.is_err(), "removing a key that is not there is refused");
            prop_assert!(new == old, "a refused edit leaves the file as it was");
            return Ok(());
        };
        let plan = r.map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let g = Gguf::parse(&new).map_err(|e| TestCaseError::fail(format!("re-parse: {e}")))?;
        match plan.mode {
            Mode::Unchanged => prop_assert!(new == old),
            Mode::InPlace => {
                prop_assert!(!no_in_place);
                prop_assert_eq!(new.len(), old.len());
                prop_assert_eq!(g.data_offset, g0.data_offset);
                let at = g0.data_offset as usize;
                prop_assert!(new[at..] == old[at..], "tensor data untouched in place");
            }
            Mode::Rewrite => {}
        }
        // Keys: the old ones in order with the edits applied, new ones appended, values exact.
        let e = endian(m.big);
        prop_assert_eq!(
            g.kvs.iter().map(|kv| kv.key).collect::<Vec<_>>(),
            expected.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()
        );
        for (kv, (k, want)) in g.kvs.iter().zip(&expected) {
            let ok = match want {
                Some(v) => values_equal(&kv.value, &v.as_value(&v.encode(e), e)),
                None => values_equal(&kv.value, g0.get(k).unwrap()),
            };
            prop_assert!(ok, "key {k}: {:?}", kv.value);
        }
        // Tensors: same names, types, shapes and bytes, each at an aligned offset.
        prop_assert_eq!(g.tensors.len(), g0.tensors.len());
        for (i, (t, t0)) in g.tensors.iter().zip(&g0.tensors).enumerate() {
            prop_assert_eq!((t.name, &t.dims, t.ty.id), (t0.name, &t0.dims, t0.ty.id));
            prop_assert_eq!(t.file_offset % g.alignment, 0, "tensor {} aligned", t.name);
            prop_assert!(g.tensor_data(t).unwrap() == &data[i][..], "tensor {} data", t.name);
        }
    }
}
