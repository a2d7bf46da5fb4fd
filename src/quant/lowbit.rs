//! Block formats: Q1_0 and Q2_0: 1-bit signs with a mean-magnitude scale per 128 values, and 2-bit
//! codes {-1, 0, 1, 2}·d with a max-magnitude scale per 64 values. Ported from
//! `ggml/src/ggml-quants.c`; see the parent module for the conventions. ggml quantizes both the same
//! way with or without an importance matrix (the weights are unused), so does this port.

use super::iquants::{c_roundf_to_int, f16_at, f16_bytes};
use super::Chunk;
use crate::gguf::TypeId;

const QK1_0: usize = 128;
const Q1_0_BYTES: usize = 18;
const QK2_0: usize = 64;
const Q2_0_BYTES: usize = 18;

/// Decodes `dst.len()` values of type `id` if this family owns it; false otherwise. Lengths are checked.
pub(crate) fn dequantize(id: TypeId, src: &[u8], dst: &mut [f32]) -> bool {
    match id {
        TypeId::Q1_0 => {
            for (b, y) in src
                .chunks_exact(Q1_0_BYTES)
                .zip(dst.chunks_exact_mut(QK1_0))
            {
                let d = f16_at(b, 0);
                let neg_d = -d;
                for (j, v) in y.iter_mut().enumerate() {
                    let bit = (b[2 + j / 8] >> (j % 8)) & 1;
                    *v = if bit != 0 { d } else { neg_d };
                }
            }
        }
        TypeId::Q2_0 => {
            for (b, y) in src
                .chunks_exact(Q2_0_BYTES)
                .zip(dst.chunks_exact_mut(QK2_0))
            {
                let d = f16_at(b, 0);
                for (j, v) in y.iter_mut().enumerate() {
                    let q = (b[2 + j / 4] >> ((j % 4) * 2)) & 0x03;
                    // 00=-1, 01=0, 10=+1, 11=+2
                    *v = (q as i32 - 1) as f32 * d;
                }
            }
        }
        _ => return false,
    }
    true
}

/// Quantizes a checked chunk if this family owns type `id`; false otherwise.
pub(crate) fn quantize(id: TypeId, c: &mut Chunk<'_>) -> bool {
    match id {
        TypeId::Q1_0 => {
            for (x, b) in c
                .src
                .chunks_exact(QK1_0)
                .zip(c.dst.chunks_exact_mut(Q1_0_BYTES))
            {
                let mut sum_abs = 0.0f32;
                for &v in x {
                    sum_abs += v.abs();
                }
                let d = sum_abs / QK1_0 as f32;
                b[0..2].copy_from_slice(&f16_bytes(d));
                // Just the sign of each weight (no normalization), eight to a byte.
                for (qb, xs) in b[2..].iter_mut().zip(x.chunks_exact(8)) {
                    let mut byte = 0u8;
                    for (k, &v) in xs.iter().enumerate() {
                        byte |= ((v >= 0.0f32) as u8) << k;
                    }
                    *qb = byte;
                }
            }
        }
        TypeId::Q2_0 => {
            for (x, b) in c
                .src
                .chunks_exact(QK2_0)
                .zip(c.dst.chunks_exact_mut(Q2_0_BYTES))
            {
                let mut amax = 0.0f32;
                for &v in x {
                    let a = v.abs();
                    if a > amax {
                        amax = a;
                    }
                }
                let d = amax;
                let id = if d > 0.0f32 { 1.0f32 / d } else { 0.0 };
                b[0..2].copy_from_slice(&f16_bytes(d));
                // round(w/d) clamped to [-1, 2], then +1; four to a byte, first in the low bits.
                for (qb, xs) in b[2..].iter_mut().zip(x.chunks_exact(4)) {
                    let mut byte = 0u8;
                    for (k, &w) in xs.iter().enumerate() {
                        let q = c_roundf_to_int(w * id).wrapping_add(1).clamp(0, 3);
                        byte |= (q as u8) << (k * 2);
                    }
                    *qb = byte;
                }
            }
        }
        _ => return false,
    }
    true
}
