//! The in-place edit planner: for any file that parses, an edit (set a key to a string, an integer or
//! a bool, or remove one) is planned from a copy of the header as `pocket meta` plans it under its
//! lock, and must never panic; a plan that says "in place" must describe a header of exactly the old
//! length that a reader accepts, with the same tensors at the same offsets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocket::edit::meta::{edited_writer, encode_all, plan_edit, Edit, Mode};
use pocket::edit::value::NewValue;
use pocket::gguf::{Gguf, Value};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (sel, file) = (data[0], &data[1..]);
    let Ok(full) = Gguf::parse(file) else { return };
    let header = file.get(..full.data_offset as usize).unwrap_or(file).to_vec();
    let Ok(g) = Gguf::parse_header_only(&header, full.file_size) else {
        panic!("a header that parsed whole must parse from its copy");
    };
    let key = match g.kvs.get(sel as usize % (g.kvs.len() + 1)) {
        Some(kv) => kv.key.to_string(),
        None => "fuzz.new".to_string(),
    };
    let edit = match sel >> 6 {
        0 => Edit::Set { key, value: NewValue::Str("x".repeat(sel as usize % 40)) },
        1 => Edit::Set { key, value: NewValue::Scalar(Value::U32(sel as u32)) },
        2 => Edit::Set { key, value: NewValue::Scalar(Value::Bool(sel & 1 == 1)) },
        _ => Edit::Remove { key },
    };
    let edits = [edit];
    let enc = encode_all(&edits, &g);
    let Ok(w) = edited_writer(&g, &edits, &enc) else { return };
    let Ok(len) = w.header_len() else { return };
    // As edit_with_progress: the padded header only when it could replace the old one.
    let new = if len == g.data_offset && g.data_offset <= file.len() as u64 {
        w.header_bytes()
    } else {
        w.header_records()
    };
    let Ok(new) = new else { return };
    let Ok(plan) = plan_edit(&g, &edits, &new, full.file_size) else { return };
    if plan.mode == Mode::InPlace {
        assert_eq!(new.len() as u64, g.data_offset);
        let ng = Gguf::parse_header_only(&new, full.file_size).expect("an in-place header parses");
        assert_eq!(ng.data_offset, g.data_offset);
        assert_eq!(ng.tensors.len(), g.tensors.len());
        for (a, b) in ng.tensors.iter().zip(&g.tensors) {
            assert_eq!((a.name, a.offset), (b.name, b.offset));
        }
    }
});
