//! AVX2 version of Q8_0/Q8_1's quantization loop (`q8_quants`), for blocks whose values are all
//! ordinary (no NaN, |x·id| < 2^23); any other block is left to the scalar port, which is also the
//! oracle of the tests. Same operations as the scalar code: the absolute maximum (order does not
//! matter without NaN), `amax / 127`, `x * id`, round half away from zero from an exact truncation.

use std::arch::x86_64::*;

/// Returns `Some(d)` having written the 32 quants to `qs`, or `None` (nothing written) for a block
/// the scalar port must do.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn q8_quants(x: &[f32], qs: &mut [u8]) -> Option<f32> {
    let x: &[f32; 32] = x.try_into().ok()?;
    let absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let mut v = [_mm256_setzero_ps(); 4];
    let mut amax = _mm256_setzero_ps();
    let mut ordered = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    for k in 0..4 {
        v[k] = _mm256_loadu_ps(x[8 * k..].as_ptr());
        ordered = _mm256_and_ps(ordered, _mm256_cmp_ps::<_CMP_ORD_Q>(v[k], v[k]));
        amax = _mm256_max_ps(amax, _mm256_and_ps(v[k], absmask));
    }
    if _mm256_movemask_ps(ordered) != 0xFF {
        return None;
    }
    let mut a = [0f32; 8];
    _mm256_storeu_ps(a.as_mut_ptr(), amax);
    let amax = a.iter().fold(0f32, |m, &v| if m > v { m } else { v });
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let idv = _mm256_set1_ps(id);
    let half = _mm256_set1_ps(0.5);
    let mhalf = _mm256_set1_ps(-0.5);
    let one = _mm256_set1_ps(1.0);
    let limit = _mm256_set1_ps(8388608.0);
    let mut out = [[0i32; 8]; 4];
    for k in 0..4 {
        let p = _mm256_mul_ps(v[k], idv);
        if _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(
            _mm256_and_ps(p, absmask),
            limit,
        )) != 0xFF
        {
            return None;
        }
        let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(p);
        let f = _mm256_sub_ps(p, t);
        let up = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(f, half), one);
        let dn = _mm256_and_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(f, mhalf), one);
        let r = _mm256_sub_ps(_mm256_add_ps(t, up), dn);
        _mm256_storeu_si256(out[k].as_mut_ptr().cast(), _mm256_cvttps_epi32(r));
    }
    for (q, i) in qs.iter_mut().zip(out.iter().flatten()) {
        *q = *i as u8;
    }
    Some(d)
}

/// The value with the largest magnitude, the first one on ties (as ggml's strict `<` keeps it);
/// `None` if the block has a NaN.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn signed_absmax(x: &[f32]) -> Option<f32> {
    let x: &[f32; 32] = x.try_into().ok()?;
    let absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let mut amax = _mm256_setzero_ps();
    let mut ordered = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    let mut v = [_mm256_setzero_ps(); 4];
    for k in 0..4 {
        v[k] = _mm256_loadu_ps(x[8 * k..].as_ptr());
        ordered = _mm256_and_ps(ordered, _mm256_cmp_ps::<_CMP_ORD_Q>(v[k], v[k]));
        amax = _mm256_max_ps(amax, _mm256_and_ps(v[k], absmask));
    }
    if _mm256_movemask_ps(ordered) != 0xFF {
        return None;
    }
    let mut a = [0f32; 8];
    _mm256_storeu_ps(a.as_mut_ptr(), amax);
    let amax = a.iter().fold(0f32, |m, &v| if m > v { m } else { v });
    if amax == 0.0 {
        return Some(0.0);
    }
    // The first value whose magnitude is amax.
    let target = _mm256_set1_ps(amax);
    for k in 0..4 {
        let hit = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(
            _mm256_and_ps(v[k], absmask),
            target,
        ));
        if hit != 0 {
            return Some(x[8 * k + hit.trailing_zeros() as usize]);
        }
    }
    None
}

/// `(min, max)` of a block as ggml's `if (v < min)` / `if (v > max)` scan finds them (starting from
/// ±FLT_MAX); `None` if the block has a NaN.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn min_max(x: &[f32]) -> Option<(f32, f32)> {
    let x: &[f32; 32] = x.try_into().ok()?;
    let mut mn = _mm256_set1_ps(f32::MAX);
    let mut mx = _mm256_set1_ps(-f32::MAX);
    let mut ordered = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    for k in 0..4 {
        let v = _mm256_loadu_ps(x[8 * k..].as_ptr());
        ordered = _mm256_and_ps(ordered, _mm256_cmp_ps::<_CMP_ORD_Q>(v, v));
        mn = _mm256_min_ps(mn, v);
        mx = _mm256_max_ps(mx, v);
    }
    if _mm256_movemask_ps(ordered) != 0xFF {
        return None;
    }
    let (mut a, mut b) = ([0f32; 8], [0f32; 8]);
    _mm256_storeu_ps(a.as_mut_ptr(), mn);
    _mm256_storeu_ps(b.as_mut_ptr(), mx);
    // Without NaNs the extremes do not depend on the order; -0.0 and 0.0 may both occur, and the
    // scan keeps the first of equal values, so pick the first element equal to each extreme.
    let lo = a.iter().fold(f32::MAX, |m, &v| if v < m { v } else { m });
    let hi = b.iter().fold(-f32::MAX, |m, &v| if v > m { v } else { m });
    // Equal non-zero floats have the same bits; only a zero extreme needs the first element's sign.
    let first = |e: f32| {
        if e == 0.0 {
            x.iter().copied().find(|&v| v == e).unwrap_or(e)
        } else {
            e
        }
    };
    Some((first(lo), first(hi)))
}

/// `(int)((x - sub) * id + add)` for the 32 values (x86 truncation), when every result is in
/// `-128..128` (so the C narrowing that follows is the identity); `None` otherwise.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn levels(x: &[f32], sub: f32, id: f32, add: f32) -> Option<[i32; 32]> {
    let x: &[f32; 32] = x.try_into().ok()?;
    let (subv, idv, addv) = (_mm256_set1_ps(sub), _mm256_set1_ps(id), _mm256_set1_ps(add));
    let (lo, hi) = (_mm256_set1_ps(-128.0), _mm256_set1_ps(128.0));
    let mut out = [0i32; 32];
    for k in 0..4 {
        let v = _mm256_loadu_ps(x[8 * k..].as_ptr());
        let p = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v, subv), idv), addv);
        let ok = _mm256_and_ps(
            _mm256_cmp_ps::<_CMP_GE_OQ>(p, lo),
            _mm256_cmp_ps::<_CMP_LT_OQ>(p, hi),
        );
        if _mm256_movemask_ps(ok) != 0xFF {
            return None;
        }
        _mm256_storeu_si256(out[8 * k..].as_mut_ptr().cast(), _mm256_cvttps_epi32(p));
    }
    Some(out)
}
