//! The header parser and validator, and everything inspect computes from a file that passes:
//! summary, memory estimate, JSON of every value, the writer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocket::gguf::json::value_to_json;
use pocket::gguf::{Gguf, GgufWriter};

fuzz_target!(|data: &[u8]| {
    let Ok(g) = Gguf::parse(data) else { return };
    let s = pocket::summary::summarize(std::slice::from_ref(&g));
    let _ = pocket::memory::estimate(&g, s.tensor_bytes, 4096);
    for kv in &g.kvs {
        let _ = value_to_json(&kv.value);
    }
    for t in &g.tensors {
        let _ = g.tensor_data(t);
    }
    // Into a sink: a valid file may ask for 2^31 bytes of padding, which the writer streams.
    let _ = GgufWriter::from_gguf(&g).write_from(&mut std::io::sink(), &g);
    // A header-only view of a prefix must not panic either.
    let _ = Gguf::parse_header_only(&data[..data.len() / 2], data.len() as u64);
});
