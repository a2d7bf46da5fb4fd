//! Block formats: MXFP4 and NVFP4: 4-bit floats (E2M1) with shared scales — one E8M0 power of two per
//! 32 values (MXFP4), one unsigned E4M3 per 16 values (NVFP4). Ported from `ggml/src/ggml-quants.c`
//! and the scale helpers of `ggml-impl.h`; see the parent module for the conventions. ggml ignores the
//! importance matrix for both, so does this port.
//!
//! `kvalues_fp4` holds the E2M1 values doubled (0, 1, 2, 3, 4, 6, 8, 12 and negatives), so the scales
//! are halved to match: `ggml_e8m0_to_fp32_half`, `ggml_ue4m3_to_fp32`.

use super::iquants::{c_f32_to_int, KVALUES_FP4};
use super::Chunk;
use crate::gguf::TypeId;

const QK_MXFP4: usize = 32;
const MXFP4_BYTES: usize = 17;
const QK_NVFP4: usize = 64;
const QK_NVFP4_SUB: usize = 16;
const NVFP4_BYTES: usize = 36;

/// `ggml_e8m0_to_fp32_half`: 2^(x-128), with ggml's denormal patterns for x < 2.
#[inline]
fn e8m0_to_fp32_half(x: u8) -> f32 {
    let bits = if x < 2 {
        0x0020_0000u32 << x
    } else {
        (x as u32 - 1) << 23
    };
    f32::from_bits(bits)
}

/// 2^k for the small exponents the UE4M3 decoder needs (what `ldexpf` scales by, exactly).
#[inline]
fn pow2(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

/// `ggml_ue4m3_to_fp32`: unsigned E4M3 (bias 7, no infinities; 0x7F is read as 0), halved.
#[inline]
fn ue4m3_to_fp32(x: u8) -> f32 {
    if x == 0 || x == 0x7F {
        return 0.0;
    }
    let exp = ((x >> 3) & 0xF) as i32;
    let man = (x & 0x7) as i32;
    let raw = if exp == 0 {
        man as f32 * pow2(-9)
    } else {
        (1.0f32 + man as f32 / 8.0f32) * pow2(exp - 7)
    };
    raw * 0.5f32
}

/// `ggml_fp32_to_ue4m3`: rounds the mantissa on its first dropped bit, saturates at 448 (0x7E).
fn fp32_to_ue4m3(mut x: f32) -> u8 {
    // `!(x > 0)`: zero, negatives and NaN.
    if x.is_nan() || x <= 0.0f32 {
        return 0;
    }
    if x > 448.0f32 {
        x = 448.0f32;
    }
    let bits = x.to_bits();
    let fp32_exp = ((bits >> 23) & 0xFF) as i32 - 127;
    let fp32_man = ((bits >> 20) & 0x7) as i32;
    let mut ue4m3_exp = fp32_exp + 7;
    if ue4m3_exp <= 0 {
        // subnormal: value = man * 2^-9, man = round(x * 2^9)
        let mut man = c_f32_to_int(x * 512.0f32 + 0.5f32);
        if man > 7 {
            man = 7;
        }
        if man < 1 {
            return 0;
        }
        return man as u8;
    }
    if ue4m3_exp >= 15 {
        return 0x7E;
    }
    let round_bit = ((bits >> 19) & 1) as i32;
    let mut ue4m3_man = fp32_man + round_bit;
    if ue4m3_man > 7 {
        ue4m3_man = 0;
        ue4m3_exp += 1;
        if ue4m3_exp >= 15 {
            return 0x7E;
        }
    }
    ((ue4m3_exp << 3) | ue4m3_man) as u8
}

/// `best_index_mxfp4`: the first index of the (doubled) E2M1 value nearest to `x` at scale `e`.
#[inline]
fn best_index_fp4(x: f32, e: f32) -> u8 {
    let mut best_index = 0u8;
    let mut best_err = (KVALUES_FP4[0] as f32 * e - x).abs();
    for (i, &k) in KVALUES_FP4.iter().enumerate().skip(1) {
        let err = (k as f32 * e - x).abs();
        // Selects rather than branches (the winner is data-dependent); same strict `<` as ggml.
        let better = err < best_err;
        best_index = if better { i as u8 } else { best_index };
        best_err = if better { err } else { best_err };
    }
    best_index
}

/// Decodes `dst.len()` values of type `id` if this family owns it; false otherwise. Lengths are checked.
pub(crate) fn dequantize(id: TypeId, src: &[u8], dst: &mut [f32]) -> bool {
    match id {
        TypeId::MXFP4 => {
            for (b, y) in src
                .chunks_exact(MXFP4_BYTES)
                .zip(dst.chunks_exact_mut(QK_MXFP4))
            {
                let d = e8m0_to_fp32_half(b[0]);
                unpack(&b[1..], d, y);
            }
        }
        TypeId::NVFP4 => {
            for (b, y) in src
                .chunks_exact(NVFP4_BYTES)
                .zip(dst.chunks_exact_mut(QK_NVFP4))
            {
                let qs = &b[4..];
                for (s, ys) in y.chunks_exact_mut(QK_NVFP4_SUB).enumerate() {
                    let d = ue4m3_to_fp32(b[s]);
                    unpack(&qs[s * QK_NVFP4_SUB / 2..(s + 1) * QK_NVFP4_SUB / 2], d, ys);
                }
            }
        }
        _ => return false,
    }
    true
}

/// One run of `2·qs.len()` values: low nibbles are the first half, high nibbles the second.
#[inline]
fn unpack(qs: &[u8], d: f32, y: &mut [f32]) {
    let h = qs.len();
    for (j, &q) in qs.iter().enumerate() {
        y[j] = KVALUES_FP4[(q & 0x0F) as usize] as f32 * d;
        y[j + h] = KVALUES_FP4[(q >> 4) as usize] as f32 * d;
    }
}

/// The inverse of [`unpack`] at scale `d`.
#[inline]
fn pack(x: &[f32], d: f32, qs: &mut [u8]) {
    let h = qs.len();
    for (j, q) in qs.iter_mut().enumerate() {
        let x0 = best_index_fp4(x[j], d);
        let x1 = best_index_fp4(x[h + j], d);
        *q = x0 | (x1 << 4);
    }
}

/// Quantizes a checked chunk if this family owns type `id`; false otherwise.
pub(crate) fn quantize(id: TypeId, c: &mut Chunk<'_>) -> bool {
    match id {
        TypeId::MXFP4 => {
            for (x, b) in c
                .src
                .chunks_exact(QK_MXFP4)
                .zip(c.dst.chunks_exact_mut(MXFP4_BYTES))
            {
                let mut amax = 0.0f32;
                for &v in x {
                    if amax < v.abs() {
                        amax = v.abs();
                    }
                }
                // C converts the float to uint8_t; on x86 that truncates through a 32-bit int.
                let e = if amax > 0.0f32 {
                    c_f32_to_int(amax.log2().floor() - 2.0f32 + 127.0f32) as u8
                } else {
                    0
                };
                let d = e8m0_to_fp32_half(e);
                b[0] = e;
                pack(x, d, &mut b[1..]);
            }
        }
        TypeId::NVFP4 => {
            for (x, b) in c
                .src
                .chunks_exact(QK_NVFP4)
                .zip(c.dst.chunks_exact_mut(NVFP4_BYTES))
            {
                let (d_bytes, qs) = b.split_at_mut(4);
                for (s, xb) in x.chunks_exact(QK_NVFP4_SUB).enumerate() {
                    let mut amax = 0.0f32;
                    for &v in xb {
                        if amax < v.abs() {
                            amax = v.abs();
                        }
                    }
                    let ue = fp32_to_ue4m3(amax / 6.0f32);
                    d_bytes[s] = ue;
                    let d = ue4m3_to_fp32(ue);
                    pack(
                        xb,
                        d,
                        &mut qs[s * QK_NVFP4_SUB / 2..(s + 1) * QK_NVFP4_SUB / 2],
                    );
                }
            }
        }
        _ => return false,
    }
    true
}
