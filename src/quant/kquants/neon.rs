//! NEON versions of the eight-lane scale searches in `lanes.rs`, the aarch64 twin of `avx2.rs`: a
//! pair of `float32x4_t` holds the eight sub-blocks, each lane doing the scalar port's f32 operations
//! in the same order (separate `vmulq`/`vaddq`, never `vfmaq`, which would round once instead of
//! twice), branches as bit selects. Tested against the scalar port and the portable lanes in
//! `lanes.rs` (the tests there call the dispatched version, which is this one on aarch64).

use std::arch::aarch64::*;

use super::lanes::{Lf, LANES};
use super::GROUP_MAX_EPS;

/// Eight f32 lanes, eight masks, eight i32 lanes.
type F = [float32x4_t; 2];
type M = [uint32x4_t; 2];
type I = [int32x4_t; 2];

#[target_feature(enable = "neon")]
#[inline]
unsafe fn ld(a: &Lf) -> F {
    [vld1q_f32(a.as_ptr()), vld1q_f32(a.as_ptr().add(4))]
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn to_array(v: F) -> Lf {
    let mut a = [0f32; LANES];
    vst1q_f32(a.as_mut_ptr(), v[0]);
    vst1q_f32(a.as_mut_ptr().add(4), v[1]);
    a
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn splat(v: f32) -> F {
    [vdupq_n_f32(v); 2]
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn splati(v: i32) -> I {
    [vdupq_n_s32(v); 2]
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn add(a: F, b: F) -> F {
    [vaddq_f32(a[0], b[0]), vaddq_f32(a[1], b[1])]
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn sub(a: F, b: F) -> F {
    [vsubq_f32(a[0], b[0]), vsubq_f32(a[1], b[1])]
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn mul(a: F, b: F) -> F {
    [vmulq_f32(a[0], b[0]), vmulq_f32(a[1], b[1])]
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn div(a: F, b: F) -> F {
    [vdivq_f32(a[0], b[0]), vdivq_f32(a[1], b[1])]
}

/// `a < b` (false with a NaN, like C's `<`).
#[target_feature(enable = "neon")]
#[inline]
unsafe fn lt(a: F, b: F) -> M {
    [vcltq_f32(a[0], b[0]), vcltq_f32(a[1], b[1])]
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn gt(a: F, b: F) -> M {
    [vcgtq_f32(a[0], b[0]), vcgtq_f32(a[1], b[1])]
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn eq(a: F, b: F) -> M {
    [vceqq_f32(a[0], b[0]), vceqq_f32(a[1], b[1])]
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn and(a: M, b: M) -> M {
    [vandq_u32(a[0], b[0]), vandq_u32(a[1], b[1])]
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn any(m: M) -> bool {
    vmaxvq_u32(vorrq_u32(m[0], m[1])) != 0
}

/// `m ? t : f` per lane.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn sel(m: M, t: F, f: F) -> F {
    [vbslq_f32(m[0], t[0], f[0]), vbslq_f32(m[1], t[1], f[1])]
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn seli(m: M, t: I, f: I) -> I {
    [vbslq_s32(m[0], t[0], f[0]), vbslq_s32(m[1], t[1], f[1])]
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn to_f(i: I) -> F {
    [vcvtq_f32_s32(i[0]), vcvtq_f32_s32(i[1])]
}

/// `nearest_int(v)` per lane (through the float adder, as the scalar port), clamped to `lo..=hi`.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn nearest_clamped(v: F, lo: I, hi: I) -> I {
    let val = add(v, splat(12582912.0));
    let mut out = [vdupq_n_s32(0); 2];
    for k in 0..2 {
        let bits = vandq_u32(vreinterpretq_u32_f32(val[k]), vdupq_n_u32(0x007f_ffff));
        let i = vsubq_s32(vreinterpretq_s32_u32(bits), vdupq_n_s32(0x0040_0000));
        out[k] = vminq_s32(vmaxq_s32(i, lo[k]), hi[k]);
    }
    out
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn error_term(diff: F, use_mad: bool) -> F {
    if use_mad {
        [vabsq_f32(diff[0]), vabsq_f32(diff[1])]
    } else {
        mul(diff, diff)
    }
}

/// `lanes::qkx_lanes` (make_qkx2/qkx3_quants on eight sub-blocks).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn qkx<const N: usize>(
    nmax: i32,
    xt: &[Lf; N],
    wt: &[Lf; N],
    l: &mut [[u8; LANES]; N],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (Lf, Lf) {
    let zero = splat(0.0);
    let lo = splati(0);
    let hi = splati(nmax);
    let mut min = ld(&xt[0]);
    let mut max = min;
    let mut sum_w = ld(&wt[0]);
    let mut sum_x = mul(sum_w, ld(&xt[0]));
    for i in 1..N {
        let x = ld(&xt[i]);
        min = sel(lt(x, min), x, min);
        max = sel(gt(x, max), x, max);
        let w = ld(&wt[i]);
        sum_w = add(sum_w, w);
        sum_x = add(sum_x, mul(w, x));
    }
    min = sel(gt(min, zero), zero, min);
    let degenerate = eq(max, min);
    let min_at_exit = min;
    let iscale = div(splat(nmax as f32), sub(max, min));
    let mut scale = div(splat(1.0), iscale);
    let mut best = zero;
    let mut lbest = [zero; N];
    for i in 0..N {
        let x = ld(&xt[i]);
        let li = nearest_clamped(mul(iscale, sub(x, min)), lo, hi);
        let lf = to_f(li);
        lbest[i] = lf;
        let diff = sub(add(mul(scale, lf), min), x);
        best = add(best, mul(ld(&wt[i]), error_term(diff, use_mad)));
    }
    if nstep >= 1 {
        let mut laux = [zero; N];
        for is in 0..=nstep {
            let step = rmin + rdelta * is as f32 + nmax as f32;
            let iscale = div(splat(step), sub(max, min));
            let (mut sum_l, mut sum_l2, mut sum_xl) = (zero, zero, zero);
            for i in 0..N {
                let x = ld(&xt[i]);
                let li = nearest_clamped(mul(iscale, sub(x, min)), lo, hi);
                let lf = to_f(li);
                laux[i] = lf;
                let wl = mul(ld(&wt[i]), lf);
                sum_l = add(sum_l, wl);
                sum_l2 = add(sum_l2, mul(wl, lf));
                sum_xl = add(sum_xl, mul(wl, x));
            }
            let d = sub(mul(sum_w, sum_l2), mul(sum_l, sum_l));
            let mut this_scale = div(sub(mul(sum_w, sum_xl), mul(sum_x, sum_l)), d);
            let mut this_min = div(sub(mul(sum_l2, sum_x), mul(sum_l, sum_xl)), d);
            let pos = gt(this_min, zero);
            this_min = sel(pos, zero, this_min);
            this_scale = sel(pos, div(sum_xl, sum_l2), this_scale);
            let mut cur = zero;
            for i in 0..N {
                let diff = sub(add(mul(this_scale, laux[i]), this_min), ld(&xt[i]));
                cur = add(cur, mul(ld(&wt[i]), error_term(diff, use_mad)));
            }
            let take = and(gt(d, zero), lt(cur, best));
            if any(take) {
                for i in 0..N {
                    lbest[i] = sel(take, laux[i], lbest[i]);
                }
                best = sel(take, cur, best);
                scale = sel(take, this_scale, scale);
                min = sel(take, this_min, min);
            }
        }
    }
    let neg = |v: F| [vnegq_f32(v[0]), vnegq_f32(v[1])];
    let the_min = sel(degenerate, neg(min_at_exit), neg(min));
    scale = sel(degenerate, zero, scale);
    for i in 0..N {
        let v = to_array(sel(degenerate, zero, lbest[i]));
        for s in 0..LANES {
            l[i][s] = v[s] as u8;
        }
    }
    (to_array(scale), to_array(the_min))
}

/// `lanes::qx_lanes` (make_qx_quants, rmse_type 1, on eight sub-blocks).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn qx<const N: usize>(
    nmax: i32,
    xt: &[Lf; N],
    wt: &[Lf; N],
    l: &mut [[i8; LANES]; N],
) -> Lf {
    let zero = splat(0.0);
    let lo = splati(-nmax);
    let hi = splati(nmax - 1);
    let mut max = zero;
    let mut amax = zero;
    for xi in xt {
        let x = ld(xi);
        let ax = [vabsq_f32(x[0]), vabsq_f32(x[1])];
        let g = gt(ax, amax);
        amax = sel(g, ax, amax);
        max = sel(g, x, max);
    }
    let iscale = div(splat(-(nmax as f32)), max);
    let (mut sumlx, mut suml2) = (zero, zero);
    let mut lbest = [splati(0); N];
    for i in 0..N {
        let x = ld(&xt[i]);
        let li = nearest_clamped(mul(iscale, x), lo, hi);
        lbest[i] = li;
        let lf = to_f(li);
        let w = ld(&wt[i]);
        sumlx = add(sumlx, mul(mul(w, x), lf));
        suml2 = add(suml2, mul(mul(w, lf), lf));
    }
    let mut scale = sel(eq(suml2, zero), zero, div(sumlx, suml2));
    let mut best = mul(scale, sumlx);
    let mut laux = [splati(0); N];
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        let step = nmax as f32 + 0.1f32 * is as f32;
        let iscale = div(splat(-step), max);
        let (mut sumlx, mut suml2) = (zero, zero);
        for i in 0..N {
            let x = ld(&xt[i]);
            let li = nearest_clamped(mul(iscale, x), lo, hi);
            laux[i] = li;
            let lf = to_f(li);
            let w = ld(&wt[i]);
            sumlx = add(sumlx, mul(mul(w, x), lf));
            suml2 = add(suml2, mul(mul(w, lf), lf));
        }
        let take = and(gt(suml2, zero), gt(mul(sumlx, sumlx), mul(best, suml2)));
        if any(take) {
            for i in 0..N {
                lbest[i] = seli(take, laux[i], lbest[i]);
            }
            let new_scale = div(sumlx, suml2);
            scale = sel(take, new_scale, scale);
            best = sel(take, mul(new_scale, sumlx), best);
        }
    }
    let small = lt(amax, splat(GROUP_MAX_EPS));
    for i in 0..N {
        let v = seli(
            small,
            splati(0),
            [
                vaddq_s32(lbest[i][0], vdupq_n_s32(nmax)),
                vaddq_s32(lbest[i][1], vdupq_n_s32(nmax)),
            ],
        );
        let mut a = [0i32; LANES];
        vst1q_s32(a.as_mut_ptr(), v[0]);
        vst1q_s32(a.as_mut_ptr().add(4), v[1]);
        for s in 0..LANES {
            l[i][s] = a[s] as i8;
        }
    }
    to_array(sel(small, zero, scale))
}

/// Decodes Q4_K, Q5_K or Q6_K super-blocks (`src` exactly the blocks of `dst`) with the scalar
/// port's operations (`d1 * q - m1`, `(d * sc) * q`); false, with nothing written, for the other
/// types.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn dequantize(id: crate::gguf::TypeId, src: &[u8], dst: &mut [f32]) -> bool {
    use super::{get_scale_min_k4, Q4_K_SIZE, Q5_K_SIZE, Q6_K_SIZE, QK_K};
    use crate::gguf::TypeId;
    use crate::quant::float::get_f16;
    use crate::quant::neon::{store_scaled, store_scaled_min, widen_s8};
    let low = vdupq_n_u8(0x0F);
    let s8 = |v: uint8x16_t| vreinterpretq_s8_u8(v);
    match id {
        TypeId::Q4_K => {
            for (x, y) in src.chunks_exact(Q4_K_SIZE).zip(dst.chunks_exact_mut(QK_K)) {
                let d = get_f16(x, 0);
                let min = get_f16(x, 2);
                let sc = &x[4..16];
                for c in 0..4 {
                    let (s1, m1) = get_scale_min_k4(2 * c, sc);
                    let (d1, m1) = (d * s1 as f32, min * m1 as f32);
                    let (s2, m2) = get_scale_min_k4(2 * c + 1, sc);
                    let (d2, m2) = (d * s2 as f32, min * m2 as f32);
                    let out = &mut y[64 * c..64 * c + 64];
                    for h in 0..2 {
                        let q = vld1q_u8(x[16 + 32 * c + 16 * h..][..16].as_ptr());
                        let lo = widen_s8(s8(vandq_u8(q, low)));
                        let hi = widen_s8(s8(vshrq_n_u8::<4>(q)));
                        store_scaled_min(&mut out[16 * h..], lo, d1, m1);
                        store_scaled_min(&mut out[32 + 16 * h..], hi, d2, m2);
                    }
                }
            }
        }
        TypeId::Q5_K => {
            let sixteen = vdupq_n_u8(16);
            for (x, y) in src.chunks_exact(Q5_K_SIZE).zip(dst.chunks_exact_mut(QK_K)) {
                let d = get_f16(x, 0);
                let min = get_f16(x, 2);
                let sc = &x[4..16];
                let (mut u1, mut u2) = (1u8, 2u8);
                for c in 0..4 {
                    let (s1, m1) = get_scale_min_k4(2 * c, sc);
                    let (d1, m1) = (d * s1 as f32, min * m1 as f32);
                    let (s2, m2) = get_scale_min_k4(2 * c + 1, sc);
                    let (d2, m2) = (d * s2 as f32, min * m2 as f32);
                    let out = &mut y[64 * c..64 * c + 64];
                    for h in 0..2 {
                        let ql = vld1q_u8(x[48 + 32 * c + 16 * h..][..16].as_ptr());
                        let qh = vld1q_u8(x[16 + 16 * h..][..16].as_ptr());
                        let h1 = vandq_u8(vtstq_u8(qh, vdupq_n_u8(u1)), sixteen);
                        let h2 = vandq_u8(vtstq_u8(qh, vdupq_n_u8(u2)), sixteen);
                        let lo = widen_s8(s8(vorrq_u8(vandq_u8(ql, low), h1)));
                        let hi = widen_s8(s8(vorrq_u8(vshrq_n_u8::<4>(ql), h2)));
                        store_scaled_min(&mut out[16 * h..], lo, d1, m1);
                        store_scaled_min(&mut out[32 + 16 * h..], hi, d2, m2);
                    }
                    u1 = u1.wrapping_shl(2);
                    u2 = u2.wrapping_shl(2);
                }
            }
        }
        TypeId::Q6_K => {
            let three = vdupq_n_u8(3);
            let off = vdupq_n_s8(32);
            for (x, y) in src.chunks_exact(Q6_K_SIZE).zip(dst.chunks_exact_mut(QK_K)) {
                let d = get_f16(x, 208);
                for c in 0..2 {
                    let sc = &x[192 + 8 * c..192 + 8 * c + 8];
                    let out = &mut y[128 * c..128 * c + 128];
                    // Values k in 16 * is..16 * is + 16 share the scales sc[is + 2 * j].
                    for is in 0..2 {
                        let k = 16 * is;
                        let qla = vld1q_u8(x[64 * c + k..][..16].as_ptr());
                        let qlb = vld1q_u8(x[64 * c + k + 32..][..16].as_ptr());
                        let qh = vld1q_u8(x[128 + 32 * c + k..][..16].as_ptr());
                        let hbits = |sh: u8| {
                            vshlq_n_u8::<4>(vandq_u8(vshlq_u8(qh, vdupq_n_s8(-(sh as i8))), three))
                        };
                        let q = [
                            vorrq_u8(vandq_u8(qla, low), hbits(0)),
                            vorrq_u8(vandq_u8(qlb, low), hbits(2)),
                            vorrq_u8(vshrq_n_u8::<4>(qla), hbits(4)),
                            vorrq_u8(vshrq_n_u8::<4>(qlb), hbits(6)),
                        ];
                        for (j, qj) in q.into_iter().enumerate() {
                            let ds = d * (sc[is + 2 * j] as i8) as f32;
                            store_scaled(
                                &mut out[32 * j + k..],
                                widen_s8(vsubq_s8(s8(qj), off)),
                                ds,
                            );
                        }
                    }
                }
            }
        }
        _ => return false,
    }
    true
}
