//! NEON versions of the block helpers in `avx2.rs` (Q8_0/Q8_1 quants; absmax, min/max and levels of
//! Q4_0..Q5_1), for blocks whose values are all ordinary (no NaN, small levels); any other block is
//! left to the scalar port, which is also the oracle of the tests. The same f32 operations as the
//! scalar code, one at a time (no fused multiply-add).

use std::arch::aarch64::*;

use crate::quant::float::get_f16;

/// Loads the 32 values as eight vectors; `None` if any is NaN.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn load_ordered(x: &[f32; 32]) -> Option<[float32x4_t; 8]> {
    let mut v = [vdupq_n_f32(0.0); 8];
    let mut ordered = vdupq_n_u32(u32::MAX);
    for k in 0..8 {
        v[k] = vld1q_f32(x[4 * k..].as_ptr());
        ordered = vandq_u32(ordered, vceqq_f32(v[k], v[k]));
    }
    (vminvq_u32(ordered) == u32::MAX).then_some(v)
}

/// The largest magnitude of a block without NaN (all lanes non-negative, so the order of the
/// reduction does not matter).
#[target_feature(enable = "neon")]
#[inline]
unsafe fn abs_max(v: &[float32x4_t; 8]) -> f32 {
    let mut amax = vdupq_n_f32(0.0);
    for vk in v {
        amax = vmaxq_f32(amax, vabsq_f32(*vk));
    }
    vmaxvq_f32(amax)
}

/// Returns `Some(d)` having written the 32 quants to `qs`, or `None` (nothing written) for a block
/// the scalar port must do.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn q8_quants(x: &[f32], qs: &mut [u8]) -> Option<f32> {
    let x: &[f32; 32] = x.try_into().ok()?;
    let v = load_ordered(x)?;
    let amax = abs_max(&v);
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let idv = vdupq_n_f32(id);
    let half = vdupq_n_f32(0.5);
    let mhalf = vdupq_n_f32(-0.5);
    let one = vdupq_n_f32(1.0);
    let zero = vdupq_n_f32(0.0);
    let limit = vdupq_n_f32(8388608.0);
    let mut out = [0i32; 32];
    for k in 0..8 {
        let p = vmulq_f32(v[k], idv);
        if vminvq_u32(vcltq_f32(vabsq_f32(p), limit)) != u32::MAX {
            return None;
        }
        // Round half away from zero from the exact truncation, as the scalar `round_to_int`.
        let t = vrndq_f32(p);
        let f = vsubq_f32(p, t);
        let up = vbslq_f32(vcgeq_f32(f, half), one, zero);
        let dn = vbslq_f32(vcleq_f32(f, mhalf), one, zero);
        let r = vsubq_f32(vaddq_f32(t, up), dn);
        vst1q_s32(out[4 * k..].as_mut_ptr(), vcvtq_s32_f32(r));
    }
    for (q, i) in qs.iter_mut().zip(out.iter()) {
        *q = *i as u8;
    }
    Some(d)
}

/// The value with the largest magnitude, the first one on ties (as ggml's strict `<` keeps it);
/// `None` if the block has a NaN.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn signed_absmax(x: &[f32]) -> Option<f32> {
    let x: &[f32; 32] = x.try_into().ok()?;
    let v = load_ordered(x)?;
    let amax = abs_max(&v);
    if amax == 0.0 {
        return Some(0.0);
    }
    x.iter().copied().find(|v| v.abs() == amax)
}

/// `(min, max)` of a block as ggml's `if (v < min)` / `if (v > max)` scan finds them (starting from
/// ±FLT_MAX); `None` if the block has a NaN.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn min_max(x: &[f32]) -> Option<(f32, f32)> {
    let x: &[f32; 32] = x.try_into().ok()?;
    let v = load_ordered(x)?;
    let mut mn = vdupq_n_f32(f32::MAX);
    let mut mx = vdupq_n_f32(-f32::MAX);
    for vk in v {
        mn = vminq_f32(mn, vk);
        mx = vmaxq_f32(mx, vk);
    }
    // Without NaNs the extremes do not depend on the order, except for the sign of a zero: the scan
    // keeps the first of equal values, so a zero extreme takes the first element equal to it.
    let (lo, hi) = (vminvq_f32(mn), vmaxvq_f32(mx));
    let first = |e: f32| {
        if e == 0.0 {
            x.iter().copied().find(|&v| v == e).unwrap_or(e)
        } else {
            e
        }
    };
    Some((first(lo), first(hi)))
}

/// `(int)((x - sub) * id + add)` for the 32 values, when every result is in `-128..128` (so the
/// truncation is exact and C's narrowing that follows is the identity); `None` otherwise.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn levels(x: &[f32], sub: f32, id: f32, add: f32) -> Option<[i32; 32]> {
    let x: &[f32; 32] = x.try_into().ok()?;
    let (subv, idv, addv) = (vdupq_n_f32(sub), vdupq_n_f32(id), vdupq_n_f32(add));
    let (lo, hi) = (vdupq_n_f32(-128.0), vdupq_n_f32(128.0));
    let mut out = [0i32; 32];
    for k in 0..8 {
        let v = vld1q_f32(x[4 * k..].as_ptr());
        let p = vaddq_f32(vmulq_f32(vsubq_f32(v, subv), idv), addv);
        let ok = vandq_u32(vcgeq_f32(p, lo), vcltq_f32(p, hi));
        if vminvq_u32(ok) != u32::MAX {
            return None;
        }
        vst1q_s32(out[4 * k..].as_mut_ptr(), vcvtq_s32_f32(p));
    }
    Some(out)
}

/// Decodes Q4_0 or Q8_0 blocks (`src` exactly the blocks of `dst`) as the scalar port does
/// (`q as f32 * d`); false, with nothing written, for the other types.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn dequantize(id: crate::gguf::TypeId, src: &[u8], dst: &mut [f32]) -> bool {
    use crate::quant::neon::{store_scaled, widen_s8};
    match id {
        crate::gguf::TypeId::Q4_0 => {
            let eight = vdupq_n_s8(8);
            for (x, y) in src.chunks_exact(18).zip(dst.chunks_exact_mut(32)) {
                let d = get_f16(x, 0);
                let q = vld1q_u8(x[2..18].as_ptr());
                let lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), eight);
                let hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(q)), eight);
                store_scaled(&mut y[..16], widen_s8(lo), d);
                store_scaled(&mut y[16..], widen_s8(hi), d);
            }
        }
        crate::gguf::TypeId::Q8_0 => {
            for (x, y) in src.chunks_exact(34).zip(dst.chunks_exact_mut(32)) {
                let d = get_f16(x, 0);
                let a = vld1q_s8(x[2..18].as_ptr().cast());
                let b = vld1q_s8(x[18..34].as_ptr().cast());
                store_scaled(&mut y[..16], widen_s8(a), d);
                store_scaled(&mut y[16..], widen_s8(b), d);
            }
        }
        _ => return false,
    }
    true
}
