//! Every dequantizer on arbitrary bytes: the first byte picks the type, the rest (cut to whole
//! blocks) is decoded. Any bytes are a valid block; nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocket::gguf::spec::ggml_types;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let types: Vec<_> = ggml_types().collect();
    let ty = types[pick as usize % types.len()];
    let blocks = rest.len() / ty.type_size as usize;
    let bytes = &rest[..blocks * ty.type_size as usize];
    let mut out = vec![0f32; blocks * ty.block_size as usize];
    let _ = pocket::quant::dequantize_row(ty, bytes, &mut out);
});
