//! NEON row conversions between f32 and f16, eight values at a time, the aarch64 twin of `f16c.rs`.
//! `fcvtn`/`fcvtl` (base ARMv8 instructions; written with `asm!` because Rust's `float16x4_t`
//! intrinsics are not stable) round to nearest even under the default FPCR, like ggml's scalar code,
//! and decode every half exactly; NaNs are the only inputs where the encodings differ (the hardware
//! keeps the payload, ggml writes `0x7E00`), so NaN lanes are redone with the scalar port. Both
//! directions are tested against the scalar port.

use std::arch::aarch64::*;
use std::arch::asm;

use super::{fp16_to_fp32, fp32_to_fp16};

/// Encodes `x` into `out` (little-endian f16, two bytes per value).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn encode(x: &[f32], out: &mut [u8]) {
    let n8 = x.len() / 8 * 8;
    for (xs, o) in x[..n8].chunks_exact(8).zip(out.chunks_exact_mut(16)) {
        let a = vld1q_f32(xs.as_ptr());
        let b = vld1q_f32(xs.as_ptr().add(4));
        let h: uint16x8_t;
        // SAFETY: register-only conversions (no memory, no stack), valid on every ARMv8 CPU; `h` is
        // an `out` operand, so it is not allocated over `b`, which the second instruction reads.
        asm!(
            "fcvtn {h:v}.4h, {a:v}.4s",
            "fcvtn2 {h:v}.8h, {b:v}.4s",
            a = in(vreg) a,
            b = in(vreg) b,
            h = out(vreg) h,
            options(pure, nomem, nostack, preserves_flags),
        );
        vst1q_u8(o.as_mut_ptr(), vreinterpretq_u8_u16(h));
        let ordered = vandq_u32(vceqq_f32(a, a), vceqq_f32(b, b));
        if vminvq_u32(ordered) != u32::MAX {
            for (j, f) in xs.iter().enumerate() {
                if f.is_nan() {
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
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn decode(b: &[u8], y: &mut [f32]) {
    let n8 = y.len() / 8 * 8;
    for (bs, ys) in b.chunks_exact(16).zip(y[..n8].chunks_exact_mut(8)) {
        let h = vreinterpretq_u16_u8(vld1q_u8(bs.as_ptr()));
        let (lo, hi): (float32x4_t, float32x4_t);
        // SAFETY: register-only conversions (no memory, no stack), valid on every ARMv8 CPU.
        asm!(
            "fcvtl {lo:v}.4s, {h:v}.4h",
            "fcvtl2 {hi:v}.4s, {h:v}.8h",
            h = in(vreg) h,
            lo = out(vreg) lo,
            hi = out(vreg) hi,
            options(pure, nomem, nostack, preserves_flags),
        );
        vst1q_f32(ys.as_mut_ptr(), lo);
        vst1q_f32(ys.as_mut_ptr().add(4), hi);
        // NaN halves: keep the scalar port's exact bits.
        let ordered = vandq_u32(vceqq_f32(lo, lo), vceqq_f32(hi, hi));
        if vminvq_u32(ordered) != u32::MAX {
            for (j, v) in ys.iter_mut().enumerate() {
                if v.is_nan() {
                    *v = fp16_to_fp32(u16::from_le_bytes([bs[2 * j], bs[2 * j + 1]]));
                }
            }
        }
    }
    for (bs, o) in b[2 * n8..].chunks_exact(2).zip(y[n8..].iter_mut()) {
        *o = fp16_to_fp32(u16::from_le_bytes([bs[0], bs[1]]));
    }
}
