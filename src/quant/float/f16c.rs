//! F16C row conversions between f32 and f16, eight values at a time. The hardware rounds to nearest
//! even like ggml's scalar code, and decodes every half exactly; NaNs are the only inputs where the
//! encodings differ (the hardware keeps the payload, ggml writes `0x7E00`), so NaN lanes are redone
//! with the scalar port. Both directions are tested against the scalar port.

use std::arch::x86_64::*;

use super::{fp16_to_fp32, fp32_to_fp16};

/// Encodes `x` into `out` (little-endian f16, two bytes per value).
///
/// # Safety
/// The CPU must support AVX and F16C.
#[target_feature(enable = "avx,f16c")]
pub(super) unsafe fn encode(x: &[f32], out: &mut [u8]) {
    let n8 = x.len() / 8 * 8;
    for (xs, o) in x[..n8].chunks_exact(8).zip(out.chunks_exact_mut(16)) {
        let v = _mm256_loadu_ps(xs.as_ptr());
        let h = _mm256_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT }>(v);
        _mm_storeu_si128(o.as_mut_ptr().cast(), h);
        let nan = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
        if nan != 0 {
            for (j, f) in xs.iter().enumerate() {
                if nan & (1 << j) != 0 {
                    o[2 * j..2 * j + 2].copy_from_slice(&fp32_to_fp16(*f).to_le_bytes());
                }
            }
        }
    }
    for (f, o) in x[n8..].iter().zip(out[2 * n8..].chunks_exact_mut(2)) {
        o.copy_from_slice(&fp32_to_fp16(*f).to_le_bytes());
    }
}

/// Decodes little-endian f16 bytes `b` into `y`.
///
/// # Safety
/// The CPU must support AVX and F16C.
#[target_feature(enable = "avx,f16c")]
pub(super) unsafe fn decode(b: &[u8], y: &mut [f32]) {
    let n8 = y.len() / 8 * 8;
    for (bs, ys) in b.chunks_exact(16).zip(y[..n8].chunks_exact_mut(8)) {
        let h = _mm_loadu_si128(bs.as_ptr().cast());
        let v = _mm256_cvtph_ps(h);
        _mm256_storeu_ps(ys.as_mut_ptr(), v);
        // NaN halves: keep the scalar port's exact bits.
        let nan = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
        if nan != 0 {
            for j in 0..8 {
                if nan & (1 << j) != 0 {
                    ys[j] = fp16_to_fp32(u16::from_le_bytes([bs[2 * j], bs[2 * j + 1]]));
                }
            }
        }
    }
    for (bs, o) in b[2 * n8..].chunks_exact(2).zip(y[n8..].iter_mut()) {
        *o = fp16_to_fp32(u16::from_le_bytes([bs[0], bs[1]]));
    }
}
