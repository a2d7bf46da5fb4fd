//! Block formats: TQ1_0 and TQ2_0: ternary weights (-1, 0, 1) with one f16 scale per 256 values
//! (BitNet b1.58, TriLMs). Ported from `ggml/src/ggml-quants.c`; see the parent module for the
//! conventions. ggml ignores the importance matrix for both, so does this port.
//!
//! TQ1_0 packs five trits per byte as a base-3 fixed-point fraction (`q·256/243`, rounded up), so a
//! trit is read back by multiplying by a power of 3 (mod 256) and taking the top of `q·3`.

use super::iquants::{c_lroundf, f16_at, f16_bytes};
use super::Chunk;
use crate::gguf::TypeId;

const QK_K: usize = 256;
/// `block_tq1_0`: qs[48] (5 trits each), qh[4] (4 trits each), d.
const TQ1_BYTES: usize = 54;
/// `block_tq2_0`: qs[64] (4 values of 2 bits each), d.
const TQ2_BYTES: usize = 66;
const TQ1_QS: usize = 48;
const TQ1_QH: usize = 4;

/// Decodes `dst.len()` values of type `id` if this family owns it; false otherwise. Lengths are checked.
pub(crate) fn dequantize(id: TypeId, src: &[u8], dst: &mut [f32]) -> bool {
    match id {
        TypeId::TQ1_0 => {
            for (b, y) in src.chunks_exact(TQ1_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
                deq_tq1_0(b, y);
            }
        }
        TypeId::TQ2_0 => {
            for (b, y) in src.chunks_exact(TQ2_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
                deq_tq2_0(b, y);
            }
        }
        _ => return false,
    }
    true
}

/// The trit a TQ1_0 byte holds at position `n` (0 = most significant): `((q·3^n mod 256)·3) >> 8`.
#[inline]
fn trit(q: u8, n: usize) -> f32 {
    const POW3: [u8; 6] = [1, 3, 9, 27, 81, 243];
    let q = q.wrapping_mul(POW3[n]);
    let xi = ((q as u16 * 3) >> 8) as i16;
    (xi - 1) as f32
}

fn deq_tq1_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, TQ1_QS + TQ1_QH);
    let qs = &b[..TQ1_QS];
    let qh = &b[TQ1_QS..TQ1_QS + TQ1_QH];
    let mut out = y.iter_mut();
    let full = TQ1_QS - TQ1_QS % 32;
    for j in (0..full).step_by(32) {
        for n in 0..5 {
            for m in 0..32 {
                *out.next().unwrap() = trit(qs[j + m], n) * d;
            }
        }
    }
    for j in (full..TQ1_QS).step_by(16) {
        for n in 0..5 {
            for m in 0..16 {
                *out.next().unwrap() = trit(qs[j + m], n) * d;
            }
        }
    }
    for n in 0..4 {
        for &h in qh {
            *out.next().unwrap() = trit(h, n) * d;
        }
    }
}

fn deq_tq2_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 64);
    let qs = &b[..64];
    let mut out = y.iter_mut();
    for j in (0..64).step_by(32) {
        for l in 0..4 {
            for m in 0..32 {
                let q = ((qs[j + m] >> (l * 2)) & 3) as i8;
                *out.next().unwrap() = (q - 1) as f32 * d;
            }
        }
    }
}

/// Quantizes a checked chunk if this family owns type `id`; false otherwise.
pub(crate) fn quantize(id: TypeId, c: &mut Chunk<'_>) -> bool {
    // Rows are whole super-blocks (checked by the caller), so the chunk is one long run of blocks.
    match id {
        TypeId::TQ1_0 => {
            for (x, b) in c
                .src
                .chunks_exact(QK_K)
                .zip(c.dst.chunks_exact_mut(TQ1_BYTES))
            {
                q_tq1_0(x, b);
            }
        }
        TypeId::TQ2_0 => {
            for (x, b) in c
                .src
                .chunks_exact(QK_K)
                .zip(c.dst.chunks_exact_mut(TQ2_BYTES))
            {
                q_tq2_0(x, b);
            }
        }
        _ => return false,
    }
    true
}

/// `d = max |x|` and its reciprocal (0 for an all-zero block), as ggml computes them.
fn ternary_scale(x: &[f32]) -> (f32, f32) {
    let mut amax = 0.0f32;
    for &v in x {
        let a = v.abs();
        amax = if amax > a { amax } else { a };
    }
    let id = if amax != 0.0 { 1.0f32 / amax } else { 0.0 };
    (amax, id)
}

/// `lroundf(v * id) + 1`: -1, 0, 1 -> 0, 1, 2 (half away from zero, as `lroundf`). The byte
/// arithmetic around it wraps as C's `uint8_t` does.
#[inline]
fn to_trit(v: f32, id: f32) -> i32 {
    c_lroundf(v * id).wrapping_add(1) as i32
}

/// Base-3 digits `q` (first = most significant) as the byte `ceil(q·256/243)`.
#[inline]
fn pack_trits(q: u8) -> u8 {
    (q as u16 * 256).div_ceil(243) as u8
}

fn q_tq1_0(x: &[f32], b: &mut [u8]) {
    let (d, id) = ternary_scale(x);
    b[TQ1_QS + TQ1_QH..].copy_from_slice(&f16_bytes(d));
    let mut x = x;
    let full = TQ1_QS - TQ1_QS % 32;
    for j in (0..full).step_by(32) {
        for m in 0..32 {
            let mut q: u8 = 0;
            for n in 0..5 {
                q = q
                    .wrapping_mul(3)
                    .wrapping_add(to_trit(x[m + n * 32], id) as u8);
            }
            b[j + m] = pack_trits(q);
        }
        x = &x[5 * 32..];
    }
    for j in (full..TQ1_QS).step_by(16) {
        for m in 0..16 {
            let mut q: u8 = 0;
            for n in 0..5 {
                q = q
                    .wrapping_mul(3)
                    .wrapping_add(to_trit(x[m + n * 16], id) as u8);
            }
            b[j + m] = pack_trits(q);
        }
        x = &x[5 * 16..];
    }
    for j in 0..TQ1_QH {
        let mut q: u8 = 0;
        for m in 0..4 {
            q = q
                .wrapping_mul(3)
                .wrapping_add(to_trit(x[j + m * TQ1_QH], id) as u8);
        }
        // shift the first value to the most significant trit
        q = q.wrapping_mul(3);
        b[TQ1_QS + j] = pack_trits(q);
    }
}

fn q_tq2_0(x: &[f32], b: &mut [u8]) {
    let (d, id) = ternary_scale(x);
    b[64..66].copy_from_slice(&f16_bytes(d));
    for j in (0..64).step_by(32) {
        let x = &x[4 * j..];
        for m in 0..32 {
            let mut q: u8 = 0;
            for n in 0..4 {
                let xi = to_trit(x[m + n * 32], id);
                q = q.wrapping_add(((xi & 3) << (2 * n)) as u8);
            }
            b[j + m] = q;
        }
    }
}
