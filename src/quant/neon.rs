//! Small NEON helpers shared by the aarch64 kernels of the block formats (`*/neon.rs`): widening
//! 16 small integers to f32 (exact) and storing them multiplied by a block scale.

use std::arch::aarch64::*;

/// The 16 signed bytes of `v` as four vectors of f32 (exact conversions).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) unsafe fn widen_s8(v: int8x16_t) -> [float32x4_t; 4] {
    let lo = vmovl_s8(vget_low_s8(v));
    let hi = vmovl_high_s8(v);
    [
        vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))),
        vcvtq_f32_s32(vmovl_high_s16(lo)),
        vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))),
        vcvtq_f32_s32(vmovl_high_s16(hi)),
    ]
}

/// Stores `d * v[i]` (one rounding each, as the scalar `q as f32 * d`) to `y[..16]`.
///
/// # Safety
/// The CPU must support NEON; `y` has at least 16 values (checked by the slice index).
#[target_feature(enable = "neon")]
#[inline]
pub(crate) unsafe fn store_scaled(y: &mut [f32], v: [float32x4_t; 4], d: f32) {
    let y = &mut y[..16];
    let dv = vdupq_n_f32(d);
    for (k, vk) in v.into_iter().enumerate() {
        vst1q_f32(y[4 * k..].as_mut_ptr(), vmulq_f32(vk, dv));
    }
}

/// Stores `d * v[i] - m` (multiply, round, subtract, round: the scalar `d * q as f32 - m`) to
/// `y[..16]`.
///
/// # Safety
/// The CPU must support NEON; `y` has at least 16 values (checked by the slice index).
#[target_feature(enable = "neon")]
#[inline]
pub(crate) unsafe fn store_scaled_min(y: &mut [f32], v: [float32x4_t; 4], d: f32, m: f32) {
    let y = &mut y[..16];
    let (dv, mv) = (vdupq_n_f32(d), vdupq_n_f32(m));
    for (k, vk) in v.into_iter().enumerate() {
        vst1q_f32(y[4 * k..].as_mut_ptr(), vsubq_f32(vmulq_f32(dv, vk), mv));
    }
}
