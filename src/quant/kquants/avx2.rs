//! AVX2 versions of the eight-lane scale searches in `lanes.rs`: one `__m256` holds the eight
//! sub-blocks, each lane doing the scalar port's f32 operations in the same order (multiplies and
//! adds stay separate, no FMA), branches as blends. Tested against the scalar port and the portable
//! lanes in `lanes.rs`.

use std::arch::x86_64::*;

use super::lanes::{Lf, LANES};
use super::GROUP_MAX_EPS;

/// `nearest_int(v)` per lane (through the float adder, as the scalar port), clamped to `lo..=hi`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn nearest_clamped(v: __m256, lo: __m256i, hi: __m256i) -> __m256i {
    let val = _mm256_add_ps(v, _mm256_set1_ps(12582912.0));
    let bits = _mm256_and_si256(_mm256_castps_si256(val), _mm256_set1_epi32(0x007f_ffff));
    let i = _mm256_sub_epi32(bits, _mm256_set1_epi32(0x0040_0000));
    _mm256_min_epi32(_mm256_max_epi32(i, lo), hi)
}

#[target_feature(enable = "avx2")]
#[inline]
unsafe fn ld(a: &Lf) -> __m256 {
    _mm256_loadu_ps(a.as_ptr())
}

#[target_feature(enable = "avx2")]
#[inline]
unsafe fn to_array(v: __m256) -> Lf {
    let mut a = [0f32; LANES];
    _mm256_storeu_ps(a.as_mut_ptr(), v);
    a
}

#[target_feature(enable = "avx2")]
#[inline]
unsafe fn error_term(diff: __m256, use_mad: bool) -> __m256 {
    if use_mad {
        _mm256_and_ps(diff, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff)))
    } else {
        _mm256_mul_ps(diff, diff)
    }
}

/// `lanes::qkx_lanes` (make_qkx2/qkx3_quants on eight sub-blocks).
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
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
    let zero = _mm256_setzero_ps();
    let lo = _mm256_setzero_si256();
    let hi = _mm256_set1_epi32(nmax);
    let mut min = ld(&xt[0]);
    let mut max = min;
    let mut sum_w = ld(&wt[0]);
    let mut sum_x = _mm256_mul_ps(sum_w, ld(&xt[0]));
    for i in 1..N {
        let x = ld(&xt[i]);
        min = _mm256_blendv_ps(min, x, _mm256_cmp_ps::<_CMP_LT_OQ>(x, min));
        max = _mm256_blendv_ps(max, x, _mm256_cmp_ps::<_CMP_GT_OQ>(x, max));
        let w = ld(&wt[i]);
        sum_w = _mm256_add_ps(sum_w, w);
        sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(w, x));
    }
    min = _mm256_blendv_ps(min, zero, _mm256_cmp_ps::<_CMP_GT_OQ>(min, zero));
    let degenerate = _mm256_cmp_ps::<_CMP_EQ_OQ>(max, min);
    let min_at_exit = min;
    let iscale = _mm256_div_ps(_mm256_set1_ps(nmax as f32), _mm256_sub_ps(max, min));
    let mut scale = _mm256_div_ps(_mm256_set1_ps(1.0), iscale);
    let mut best = zero;
    let mut lbest = [zero; N];
    for i in 0..N {
        let x = ld(&xt[i]);
        let li = nearest_clamped(_mm256_mul_ps(iscale, _mm256_sub_ps(x, min)), lo, hi);
        let lf = _mm256_cvtepi32_ps(li);
        lbest[i] = lf;
        let diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, lf), min), x);
        best = _mm256_add_ps(best, _mm256_mul_ps(ld(&wt[i]), error_term(diff, use_mad)));
    }
    if nstep >= 1 {
        let mut laux = [zero; N];
        for is in 0..=nstep {
            let step = rmin + rdelta * is as f32 + nmax as f32;
            let iscale = _mm256_div_ps(_mm256_set1_ps(step), _mm256_sub_ps(max, min));
            let (mut sum_l, mut sum_l2, mut sum_xl) = (zero, zero, zero);
            for i in 0..N {
                let x = ld(&xt[i]);
                let li = nearest_clamped(_mm256_mul_ps(iscale, _mm256_sub_ps(x, min)), lo, hi);
                let lf = _mm256_cvtepi32_ps(li);
                laux[i] = lf;
                let wl = _mm256_mul_ps(ld(&wt[i]), lf);
                sum_l = _mm256_add_ps(sum_l, wl);
                sum_l2 = _mm256_add_ps(sum_l2, _mm256_mul_ps(wl, lf));
                sum_xl = _mm256_add_ps(sum_xl, _mm256_mul_ps(wl, x));
            }
            let d = _mm256_sub_ps(_mm256_mul_ps(sum_w, sum_l2), _mm256_mul_ps(sum_l, sum_l));
            let mut this_scale = _mm256_div_ps(
                _mm256_sub_ps(_mm256_mul_ps(sum_w, sum_xl), _mm256_mul_ps(sum_x, sum_l)),
                d,
            );
            let mut this_min = _mm256_div_ps(
                _mm256_sub_ps(_mm256_mul_ps(sum_l2, sum_x), _mm256_mul_ps(sum_l, sum_xl)),
                d,
            );
            let pos = _mm256_cmp_ps::<_CMP_GT_OQ>(this_min, zero);
            this_min = _mm256_blendv_ps(this_min, zero, pos);
            this_scale = _mm256_blendv_ps(this_scale, _mm256_div_ps(sum_xl, sum_l2), pos);
            let mut cur = zero;
            for i in 0..N {
                let diff = _mm256_sub_ps(
                    _mm256_add_ps(_mm256_mul_ps(this_scale, laux[i]), this_min),
                    ld(&xt[i]),
                );
                cur = _mm256_add_ps(cur, _mm256_mul_ps(ld(&wt[i]), error_term(diff, use_mad)));
            }
            let take = _mm256_and_ps(
                _mm256_cmp_ps::<_CMP_GT_OQ>(d, zero),
                _mm256_cmp_ps::<_CMP_LT_OQ>(cur, best),
            );
            if _mm256_movemask_ps(take) != 0 {
                for i in 0..N {
                    lbest[i] = _mm256_blendv_ps(lbest[i], laux[i], take);
                }
                best = _mm256_blendv_ps(best, cur, take);
                scale = _mm256_blendv_ps(scale, this_scale, take);
                min = _mm256_blendv_ps(min, this_min, take);
            }
        }
    }
    let sign = _mm256_set1_ps(-0.0);
    let the_min = _mm256_blendv_ps(
        _mm256_xor_ps(min, sign),
        _mm256_xor_ps(min_at_exit, sign),
        degenerate,
    );
    scale = _mm256_blendv_ps(scale, zero, degenerate);
    for i in 0..N {
        let v = to_array(_mm256_blendv_ps(lbest[i], zero, degenerate));
        for s in 0..LANES {
            l[i][s] = v[s] as u8;
        }
    }
    (to_array(scale), to_array(the_min))
}

/// `lanes::qx_lanes` (make_qx_quants, rmse_type 1, on eight sub-blocks).
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn qx<const N: usize>(
    nmax: i32,
    xt: &[Lf; N],
    wt: &[Lf; N],
    l: &mut [[i8; LANES]; N],
) -> Lf {
    let zero = _mm256_setzero_ps();
    let absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let lo = _mm256_set1_epi32(-nmax);
    let hi = _mm256_set1_epi32(nmax - 1);
    let mut max = zero;
    let mut amax = zero;
    for xi in xt {
        let x = ld(xi);
        let ax = _mm256_and_ps(x, absmask);
        let gt = _mm256_cmp_ps::<_CMP_GT_OQ>(ax, amax);
        amax = _mm256_blendv_ps(amax, ax, gt);
        max = _mm256_blendv_ps(max, x, gt);
    }
    let iscale = _mm256_div_ps(_mm256_set1_ps(-(nmax as f32)), max);
    let (mut sumlx, mut suml2) = (zero, zero);
    let mut lbest = [_mm256_setzero_si256(); N];
    for i in 0..N {
        let x = ld(&xt[i]);
        let li = nearest_clamped(_mm256_mul_ps(iscale, x), lo, hi);
        lbest[i] = li;
        let lf = _mm256_cvtepi32_ps(li);
        let w = ld(&wt[i]);
        sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(w, x), lf));
        suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(w, lf), lf));
    }
    let mut scale = _mm256_blendv_ps(
        _mm256_div_ps(sumlx, suml2),
        zero,
        _mm256_cmp_ps::<_CMP_EQ_OQ>(suml2, zero),
    );
    let mut best = _mm256_mul_ps(scale, sumlx);
    let mut laux = [_mm256_setzero_si256(); N];
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        let step = nmax as f32 + 0.1f32 * is as f32;
        let iscale = _mm256_div_ps(_mm256_set1_ps(-step), max);
        let (mut sumlx, mut suml2) = (zero, zero);
        for i in 0..N {
            let x = ld(&xt[i]);
            let li = nearest_clamped(_mm256_mul_ps(iscale, x), lo, hi);
            laux[i] = li;
            let lf = _mm256_cvtepi32_ps(li);
            let w = ld(&wt[i]);
            sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(w, x), lf));
            suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(w, lf), lf));
        }
        let take = _mm256_and_ps(
            _mm256_cmp_ps::<_CMP_GT_OQ>(suml2, zero),
            _mm256_cmp_ps::<_CMP_GT_OQ>(_mm256_mul_ps(sumlx, sumlx), _mm256_mul_ps(best, suml2)),
        );
        if _mm256_movemask_ps(take) != 0 {
            let takei = _mm256_castps_si256(take);
            for i in 0..N {
                lbest[i] = _mm256_blendv_epi8(lbest[i], laux[i], takei);
            }
            let new_scale = _mm256_div_ps(sumlx, suml2);
            scale = _mm256_blendv_ps(scale, new_scale, take);
            best = _mm256_blendv_ps(best, _mm256_mul_ps(new_scale, sumlx), take);
        }
    }
    let small = _mm256_cmp_ps::<_CMP_LT_OQ>(amax, _mm256_set1_ps(GROUP_MAX_EPS));
    let smalli = _mm256_castps_si256(small);
    let off = _mm256_set1_epi32(nmax);
    for i in 0..N {
        let v = _mm256_blendv_epi8(
            _mm256_add_epi32(lbest[i], off),
            _mm256_setzero_si256(),
            smalli,
        );
        let mut a = [0i32; LANES];
        _mm256_storeu_si256(a.as_mut_ptr().cast(), v);
        for s in 0..LANES {
            l[i][s] = a[s] as i8;
        }
    }
    to_array(_mm256_blendv_ps(scale, zero, small))
}
