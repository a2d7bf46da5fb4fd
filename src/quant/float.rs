//! Block formats: F32, F16 and BF16 (ggml_fp32_to_fp16_row, ggml_fp32_to_bf16_row_ref and back).
//! Ported from `ggml/src/ggml-impl.h` and `ggml.c`; see the parent module for the conventions.
//!
//! The scalar conversions here are also the f16 scale codec of every block format: ggml writes block
//! scales with `GGML_FP32_TO_FP16` (round to nearest even, every NaN becomes `0x7E00` with its sign) and
//! reads them with `GGML_FP16_TO_FP32`, so the other families call [`get_f16`] / [`put_f16`].

use super::Chunk;

#[cfg(target_arch = "x86_64")]
mod f16c;
#[cfg(target_arch = "aarch64")]
mod neon;

/// Whether the F16C row conversions can run here.
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_f16c() -> bool {
    // The AVX2 level includes AVX and F16C.
    super::has_avx2()
}

/// `ggml_fp32_to_fp16_row` into little-endian bytes.
fn encode_f16_row(x: &[f32], out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if has_f16c() {
        // SAFETY: the CPU has AVX and F16C (checked just above), all `f16c::encode` requires.
        unsafe { f16c::encode(x, out) };
        return;
    }
    #[cfg(target_arch = "aarch64")]
    if super::has_neon() {
        // SAFETY: the CPU has NEON (checked just above), all `neon::encode` requires.
        unsafe { neon::encode(x, out) };
        return;
    }
    encode_f16_row_scalar(x, out);
}

fn encode_f16_row_scalar(x: &[f32], out: &mut [u8]) {
    for (b, x) in out.chunks_exact_mut(2).zip(x) {
        b.copy_from_slice(&fp32_to_fp16(*x).to_le_bytes());
    }
}

/// `ggml_fp16_to_fp32_row` from little-endian bytes.
fn decode_f16_row(b: &[u8], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_f16c() {
        // SAFETY: the CPU has AVX and F16C (checked just above), all `f16c::decode` requires.
        unsafe { f16c::decode(b, y) };
        return;
    }
    #[cfg(target_arch = "aarch64")]
    if super::has_neon() {
        // SAFETY: the CPU has NEON (checked just above), all `neon::decode` requires.
        unsafe { neon::decode(b, y) };
        return;
    }
    decode_f16_row_scalar(b, y);
}

fn decode_f16_row_scalar(b: &[u8], y: &mut [f32]) {
    for (o, b) in y.iter_mut().zip(b.chunks_exact(2)) {
        *o = fp16_to_fp32(u16::from_le_bytes([b[0], b[1]]));
    }
}

pub(crate) const F32: u32 = 0;
pub(crate) const F16: u32 = 1;
pub(crate) const BF16: u32 = 30;

/// `ggml_compute_fp16_to_fp32`: exact for every finite value; NaNs keep their payload, made quiet.
pub(crate) fn fp16_to_fp32(h: u16) -> f32 {
    let w = (h as u32) << 16;
    let sign = w & 0x8000_0000;
    let two_w = w.wrapping_add(w);
    let exp_offset = 0xE0u32 << 23;
    let exp_scale = f32::from_bits(0x0780_0000); // 0x1.0p-112f
    let normalized_value = f32::from_bits((two_w >> 4) + exp_offset) * exp_scale;
    let magic_mask = 126u32 << 23;
    let magic_bias = 0.5f32;
    let denormalized_value = f32::from_bits((two_w >> 17) | magic_mask) - magic_bias;
    let denormalized_cutoff = 1u32 << 27;
    let result = sign
        | if two_w < denormalized_cutoff {
            denormalized_value.to_bits()
        } else {
            normalized_value.to_bits()
        };
    f32::from_bits(result)
}

/// `ggml_compute_fp32_to_fp16`: round to nearest even through the float unit, overflow to infinity,
/// every NaN to `0x7E00` (with the sign).
pub(crate) fn fp32_to_fp16(f: f32) -> u16 {
    let scale_to_inf = f32::from_bits(0x7780_0000); // 0x1.0p+112f
    let scale_to_zero = f32::from_bits(0x0880_0000); // 0x1.0p-110f
    let mut base = (f.abs() * scale_to_inf) * scale_to_zero;
    let w = f.to_bits();
    let shl1_w = w.wrapping_add(w);
    let sign = w & 0x8000_0000;
    let mut bias = shl1_w & 0xFF00_0000;
    if bias < 0x7100_0000 {
        bias = 0x7100_0000;
    }
    base += f32::from_bits((bias >> 1) + 0x0780_0000);
    let bits = base.to_bits();
    let exp_bits = (bits >> 13) & 0x0000_7C00;
    let mantissa_bits = bits & 0x0000_0FFF;
    let nonsign = exp_bits + mantissa_bits;
    ((sign >> 16)
        | if shl1_w > 0xFF00_0000 {
            0x7E00
        } else {
            nonsign
        }) as u16
}

/// `ggml_compute_bf16_to_fp32`.
pub(crate) fn bf16_to_fp32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// `ggml_compute_fp32_to_bf16`: round to nearest even, NaNs made quiet (bit 6 of the result set).
pub(crate) fn fp32_to_bf16(f: f32) -> u16 {
    let i = f.to_bits();
    if (i & 0x7fff_ffff) > 0x7f80_0000 {
        return ((i >> 16) | 64) as u16;
    }
    (i.wrapping_add(0x7fff + ((i >> 16) & 1)) >> 16) as u16
}

/// Reads the little-endian f16 at `b[at..at + 2]` as ggml does (`GGML_FP16_TO_FP32`).
#[inline]
pub(crate) fn get_f16(b: &[u8], at: usize) -> f32 {
    fp16_to_fp32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// Writes `v` as the little-endian f16 `GGML_FP32_TO_FP16(v)` at `b[at..at + 2]`.
#[inline]
pub(crate) fn put_f16(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 2].copy_from_slice(&fp32_to_fp16(v).to_le_bytes());
}

/// Decodes `dst.len()` values of type `id` if this family owns it; false otherwise. Lengths are checked.
pub(crate) fn dequantize(id: u32, src: &[u8], dst: &mut [f32]) -> bool {
    match id {
        F32 => {
            for (y, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *y = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        F16 => decode_f16_row(src, dst),
        BF16 => {
            for (y, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *y = bf16_to_fp32(u16::from_le_bytes([b[0], b[1]]));
            }
        }
        _ => return false,
    }
    true
}

/// Quantizes a checked chunk if this family owns type `id`; false otherwise. The importance matrix
/// is ignored, as in ggml.
pub(crate) fn quantize(id: u32, c: &mut Chunk<'_>) -> bool {
    match id {
        F32 => {
            for (b, x) in c.dst.chunks_exact_mut(4).zip(c.src) {
                b.copy_from_slice(&x.to_le_bytes());
            }
        }
        F16 => encode_f16_row(c.src, c.dst),
        BF16 => {
            for (b, x) in c.dst.chunks_exact_mut(2).zip(c.src) {
                b.copy_from_slice(&fp32_to_bf16(*x).to_le_bytes());
            }
        }
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fp16_decode_matches_ieee_for_every_non_nan_half() {
        for h in 0..=u16::MAX {
            let want = half::f16::from_bits(h);
            if want.is_nan() {
                assert!(fp16_to_fp32(h).is_nan(), "{h:#06x}");
                continue;
            }
            assert_eq!(
                fp16_to_fp32(h).to_bits(),
                want.to_f32().to_bits(),
                "{h:#06x}"
            );
        }
    }

    #[test]
    fn fp16_encode_rounds_to_nearest_even_like_ieee() {
        // The f32s around each half and each rounding midpoint, plus a stride through all of f32.
        let check = |f: f32| {
            if f.is_nan() {
                assert_eq!(fp32_to_fp16(f) & 0x7fff, 0x7E00, "{:#010x}", f.to_bits());
            } else {
                assert_eq!(
                    fp32_to_fp16(f),
                    half::f16::from_f32(f).to_bits(),
                    "{:#010x}",
                    f.to_bits()
                );
            }
        };
        for h in 0..=u16::MAX {
            let b = half::f16::from_bits(h).to_f32().to_bits();
            // The f32 neighbours of the half and of the midpoints on either side of it.
            for d in [0u32, 1, 0xfff, 0x1000, 0x1001, 0x1fff] {
                check(f32::from_bits(b.wrapping_add(d)));
                check(f32::from_bits(b.wrapping_sub(d)));
            }
        }
        let mut u = 0u32;
        while let Some(n) = u.checked_add(9973) {
            check(f32::from_bits(u));
            u = n;
        }
    }

    /// The F16C rows (where the CPU has them) equal the scalar port: every half decoded, and the
    /// f32s around every half and rounding midpoint, NaNs and a stride through all f32 encoded.
    #[test]
    fn f16_rows_equal_scalar_port() {
        let halves: Vec<u8> = (0..=u16::MAX).flat_map(|h| h.to_le_bytes()).collect();
        let (mut a, mut b) = (vec![0f32; 65536], vec![0f32; 65536]);
        decode_f16_row(&halves, &mut a);
        decode_f16_row_scalar(&halves, &mut b);
        for h in 0..65536 {
            assert_eq!(a[h].to_bits(), b[h].to_bits(), "decode {h:#06x}");
        }
        let mut xs = Vec::new();
        for h in 0..=u16::MAX {
            let b = half::f16::from_bits(h).to_f32().to_bits();
            for d in [0u32, 1, 0xfff, 0x1000, 0x1001, 0x1fff] {
                xs.push(f32::from_bits(b.wrapping_add(d)));
                xs.push(f32::from_bits(b.wrapping_sub(d)));
            }
        }
        let mut u = 0u32;
        while let Some(n) = u.checked_add(9973) {
            xs.push(f32::from_bits(u));
            u = n;
        }
        xs.extend([
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7f80_0001),
            f32::from_bits(0xffc1_2345),
        ]);
        xs.push(1.0); // an odd tail for the scalar remainder
        let (mut ea, mut eb) = (vec![0u8; 2 * xs.len()], vec![0u8; 2 * xs.len()]);
        encode_f16_row(&xs, &mut ea);
        encode_f16_row_scalar(&xs, &mut eb);
        for (i, x) in xs.iter().enumerate() {
            assert_eq!(
                ea[2 * i..2 * i + 2],
                eb[2 * i..2 * i + 2],
                "encode {:#010x}",
                x.to_bits()
            );
        }
    }

    #[test]
    fn bf16_nan_is_quieted_and_rounding_is_even() {
        assert_eq!(fp32_to_bf16(f32::from_bits(0x7f80_0001)), 0x7fc0);
        assert_eq!(fp32_to_bf16(f32::from_bits(0x3f80_8000)), 0x3f80); // tie, even stays
        assert_eq!(fp32_to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82); // tie, odd rounds up
        assert_eq!(fp32_to_bf16(f32::from_bits(0x3f80_8001)), 0x3f81);
        assert_eq!(bf16_to_fp32(0x3f80), 1.0);
    }
}
