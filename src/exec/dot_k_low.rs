//! Scalar ports of ggml-cpu's generic dot products for the low-bit types: Q2_K, Q3_K and TQ2_0 with
//! Q8_K activations, Q1_0 with Q8_0 ones (`ggml_vec_dot_q2_K_q8_K_generic`,
//! `ggml_vec_dot_q3_K_q8_K_generic`, `ggml_vec_dot_tq2_0_q8_K_generic`,
//! `ggml_vec_dot_q1_0_q8_0_generic` in `ggml-cpu/quants.c`): the same integer sums and the same
//! float operations in the same order.
//! They are the oracles the SIMD forms (`x86_k_low`) are held to, and what runs where no SIMD form
//! is available. Block layouts as in `ggml-common.h`:
//! - Q2_K (84 bytes per 256 values): `scales[16]` (low nibble the scale, high nibble the min of
//!   each 16 values), `qs[64]` (2 bits a value), `d` and `dmin` (f16);
//! - Q3_K (110 bytes): `hmask[32]` (the high bit, set meaning "no -4"), `qs[64]` (the low 2 bits),
//!   `scales[12]` (sixteen 6-bit scales, biased by 32), `d` (f16).
//! - TQ2_0 (66 bytes per 256 values): `qs[64]` (2 bits a value: 0, 1, 2 for -1, 0, +1), `d`;
//! - Q1_0 (18 bytes per 128 values): `d`, `qs[16]` (a set bit `+d`, a clear one `-d`), against four
//!   Q8_0 activation blocks.

// The ports keep the C code's index loops, so they can be read side by side with quants.c.
#![allow(clippy::needless_range_loop)]

use half::f16;

/// Bytes of a Q8_K block: f32 scale, 256 int8, 16 int16 sums of 16.
pub(crate) const Q8K_SIZE: usize = 292;
/// Bytes of a Q2_K block.
pub(crate) const Q2K_SIZE: usize = 84;
/// Bytes of a Q3_K block.
pub(crate) const Q3K_SIZE: usize = 110;
/// Bytes of a TQ2_0 block.
pub(crate) const TQ2_0_SIZE: usize = 66;
/// Bytes of a Q1_0 block (128 values: four Q8_0 activation blocks).
pub(crate) const Q1_0_SIZE: usize = 18;

#[inline(always)]
fn h(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

#[inline(always)]
fn q8k_d(y: &[u8]) -> f32 {
    f32::from_le_bytes([y[0], y[1], y[2], y[3]])
}

#[inline(always)]
fn q8k_bsum(y: &[u8], j: usize) -> i32 {
    i16::from_le_bytes([y[260 + 2 * j], y[261 + 2 * j]]) as i32
}

/// The sixteen 6-bit scales of a Q3_K super-block, minus their bias of 32 (the `auxs` shuffle of
/// the generic code, then `scales[j] - 32`).
#[inline(always)]
pub(crate) fn q3k_scales(s: &[u8]) -> [i8; 16] {
    const KMASK1: u32 = 0x03030303;
    const KMASK2: u32 = 0x0f0f0f0f;
    let a0 = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    let a1 = u32::from_le_bytes([s[4], s[5], s[6], s[7]]);
    let tmp = u32::from_le_bytes([s[8], s[9], s[10], s[11]]);
    let aux = [
        (a0 & KMASK2) | ((tmp & KMASK1) << 4),
        (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
    ];
    let mut out = [0i8; 16];
    for (j, o) in out.iter_mut().enumerate() {
        *o = (aux[j / 4].to_le_bytes()[j % 4] as i8).wrapping_sub(32);
    }
    out
}

/// `ggml_vec_dot_q2_K_q8_K_generic`.
#[inline(always)]
pub(crate) fn dot_q2_k(x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0f32;
    for (xb, yb) in x.chunks_exact(Q2K_SIZE).zip(y.chunks_exact(Q8K_SIZE)) {
        let sc = &xb[0..16];
        let mut q2 = &xb[16..80];
        let mut q8 = &yb[4..260];
        let mut summs = 0i32;
        for j in 0..16 {
            summs += q8k_bsum(yb, j) * (sc[j] >> 4) as i32;
        }
        let dall = q8k_d(yb) * h(xb, 80);
        let dmin = q8k_d(yb) * h(xb, 82);
        let mut isum = 0i32;
        let mut is = 0;
        for _k in 0..2 {
            let mut shift = 0;
            for _j in 0..4 {
                let d = (sc[is] & 0xf) as i32;
                is += 1;
                let mut isuml = 0i32;
                for l in 0..16 {
                    isuml += q8[l] as i8 as i32 * ((q2[l] >> shift) & 3) as i32;
                }
                isum += d * isuml;
                let d = (sc[is] & 0xf) as i32;
                is += 1;
                isuml = 0;
                for l in 16..32 {
                    isuml += q8[l] as i8 as i32 * ((q2[l] >> shift) & 3) as i32;
                }
                isum += d * isuml;
                shift += 2;
                q8 = &q8[32..];
            }
            q2 = &q2[32..];
        }
        sumf += dall * isum as f32 - dmin * summs as f32;
    }
    sumf
}

/// `ggml_vec_dot_q3_K_q8_K_generic`.
#[inline(always)]
pub(crate) fn dot_q3_k(x: &[u8], y: &[u8]) -> f32 {
    let mut sums = [0f32; 8];
    for (xb, yb) in x.chunks_exact(Q3K_SIZE).zip(y.chunks_exact(Q8K_SIZE)) {
        let hm = &xb[0..32];
        let mut q3 = &xb[32..96];
        let mut a = [0i8; 256];
        let mut m = 1u8;
        let mut o = 0;
        for _j in 0..2 {
            for shift in [0, 2, 4, 6] {
                for l in 0..32 {
                    a[o + l] = ((q3[l] >> shift) & 3) as i8 - if hm[l] & m != 0 { 0 } else { 4 };
                }
                o += 32;
                m <<= 1;
            }
            q3 = &q3[32..];
        }
        let scales = q3k_scales(&xb[96..108]);
        let q8 = &yb[4..260];
        let mut aux32 = [0i32; 8];
        for j in 0..16 {
            let scale = scales[j] as i32;
            for k in 0..2 {
                let o = 16 * j + 8 * k;
                for l in 0..8 {
                    let p = (q8[o + l] as i8 as i16) * (a[o + l] as i16);
                    aux32[l] += scale * p as i32;
                }
            }
        }
        let d = h(xb, 108) * q8k_d(yb);
        for l in 0..8 {
            sums[l] += d * aux32[l] as f32;
        }
    }
    let mut sumf = 0f32;
    for s in sums {
        sumf += s;
    }
    sumf
}

/// `ggml_vec_dot_tq2_0_q8_K_generic`.
#[inline(always)]
pub(crate) fn dot_tq2_0(x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0f32;
    for (xb, yb) in x.chunks_exact(TQ2_0_SIZE).zip(y.chunks_exact(Q8K_SIZE)) {
        let (qs, q8) = (&xb[0..64], &yb[4..260]);
        let mut sumi = 0i32;
        for j in (0..64).step_by(32) {
            for l in 0..4 {
                for k in 0..32 {
                    let v = ((qs[j + k] >> (l * 2)) & 3) as i32 - 1;
                    sumi += q8[j * 4 + l * 32 + k] as i8 as i32 * v;
                }
            }
        }
        let d = q8k_d(yb) * h(xb, 64);
        sumf += sumi as f32 * d;
    }
    sumf
}

/// `ggml_vec_dot_q1_0_q8_0_generic`: per Q1_0 block, the four Q8_0 blocks' signed sums scaled by
/// their own `d` and summed in f32, then scaled by the block's `d`.
#[inline(always)]
pub(crate) fn dot_q1_0(x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0f32;
    for (xb, yq) in x.chunks_exact(Q1_0_SIZE).zip(y.chunks_exact(4 * 34)) {
        let d0 = h(xb, 0);
        let mut sumi = 0f32;
        for (k, yb) in yq.chunks_exact(34).enumerate() {
            let d1 = h(yb, 0);
            let mut sumi_block = 0i32;
            for b in 0..4 {
                let mask = xb[2 + 4 * k + b];
                for bit in 0..8 {
                    let q = yb[2 + 8 * b + bit] as i8 as i32;
                    sumi_block += if mask >> bit & 1 != 0 { q } else { -q };
                }
            }
            sumi += d1 * sumi_block as f32;
        }
        sumf += d0 * sumi;
    }
    sumf
}
