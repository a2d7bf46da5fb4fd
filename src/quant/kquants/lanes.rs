//! The scale searches of ggml's K-quants for eight sub-blocks at once. Sub-blocks are independent, so
//! lane `s` runs exactly the scalar algorithm on sub-block `s` — the same f32 operations in the same
//! order, branches turned into per-lane selects — and its results are bit-identical to the scalar
//! port in the parent module, which is the oracle these are tested against. The lane loops are plain
//! arrays that LLVM vectorizes; no `unsafe`.
//!
//! Inputs are transposed: `xt[i][s]` is value `i` of sub-block `s`.
//!
//! On x86-64 with AVX2, `avx2.rs` does the same with one `__m256` for the eight lanes, chosen at
//! run time; these portable loops are the fallback and, with the scalar port, its oracle.

use super::{nearest_int, GROUP_MAX_EPS};

pub(crate) const LANES: usize = 8;
pub(crate) type Lf = [f32; LANES];

/// `make_qkx2_quants` / `make_qkx3_quants` (identical once the weights are given) on eight
/// sub-blocks of `N` values: writes levels `0..=nmax` to `l`, returns `(scale, the_min)` per lane.
#[allow(clippy::too_many_arguments)]
pub(crate) fn make_qkx_quants_x8<const N: usize>(
    nmax: i32,
    xt: &[Lf; N],
    wt: &[Lf; N],
    l: &mut [[u8; LANES]; N],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (Lf, Lf) {
    #[cfg(target_arch = "x86_64")]
    if crate::quant::has_avx2() {
        // SAFETY: the CPU has AVX2 (checked just above), all `avx2::qkx` requires.
        return unsafe { super::avx2::qkx(nmax, xt, wt, l, rmin, rdelta, nstep, use_mad) };
    }
    #[cfg(target_arch = "aarch64")]
    if crate::quant::has_neon() {
        // SAFETY: the CPU has NEON (checked just above), all `neon::qkx` requires.
        return unsafe { super::neon::qkx(nmax, xt, wt, l, rmin, rdelta, nstep, use_mad) };
    }
    qkx_lanes(nmax, xt, wt, l, rmin, rdelta, nstep, use_mad)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn qkx_lanes<const N: usize>(
    nmax: i32,
    xt: &[Lf; N],
    wt: &[Lf; N],
    l: &mut [[u8; LANES]; N],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (Lf, Lf) {
    let mut min = xt[0];
    let mut max = xt[0];
    let mut sum_w = wt[0];
    let mut sum_x = [0f32; LANES];
    for s in 0..LANES {
        sum_x[s] = sum_w[s] * xt[0][s];
    }
    for i in 1..N {
        for s in 0..LANES {
            let x = xt[i][s];
            if x < min[s] {
                min[s] = x;
            }
            if x > max[s] {
                max[s] = x;
            }
            let w = wt[i][s];
            sum_w[s] += w;
            sum_x[s] += w * x;
        }
    }
    let mut degenerate = [false; LANES];
    for s in 0..LANES {
        if min[s] > 0.0 {
            min[s] = 0.0;
        }
        degenerate[s] = max[s] == min[s];
    }
    let min_at_exit = min;
    let mut iscale = [0f32; LANES];
    let mut scale = [0f32; LANES];
    let mut range = [0f32; LANES];
    for s in 0..LANES {
        range[s] = max[s] - min[s];
        iscale[s] = nmax as f32 / range[s];
        scale[s] = 1.0 / iscale[s];
    }
    let mut best_error = [0f32; LANES];
    for i in 0..N {
        for s in 0..LANES {
            let li = nearest_int(iscale[s] * (xt[i][s] - min[s])).clamp(0, nmax);
            l[i][s] = li as u8;
            let mut diff = scale[s] * li as f32 + min[s] - xt[i][s];
            diff = if use_mad { diff.abs() } else { diff * diff };
            best_error[s] += wt[i][s] * diff;
        }
    }
    if nstep >= 1 {
        // Levels as f32 (exact): keeps every lane loop in 32-bit elements, which vectorizes 8-wide.
        let mut laux = [[0f32; LANES]; N];
        for is in 0..=nstep {
            let step = rmin + rdelta * is as f32 + nmax as f32;
            for s in 0..LANES {
                // `max - min` with the lane's current min: it moves when a step wins.
                iscale[s] = step / (max[s] - min[s]);
            }
            let mut sum_l = [0f32; LANES];
            let mut sum_l2 = [0f32; LANES];
            let mut sum_xl = [0f32; LANES];
            for i in 0..N {
                for s in 0..LANES {
                    let x = xt[i][s];
                    let li = nearest_int(iscale[s] * (x - min[s])).clamp(0, nmax);
                    let lf = li as f32;
                    laux[i][s] = lf;
                    let w = wt[i][s];
                    sum_l[s] += w * lf;
                    sum_l2[s] += w * lf * lf;
                    sum_xl[s] += w * lf * x;
                }
            }
            let mut d = [0f32; LANES];
            let mut this_scale = [0f32; LANES];
            let mut this_min = [0f32; LANES];
            for s in 0..LANES {
                d[s] = sum_w[s] * sum_l2[s] - sum_l[s] * sum_l[s];
                this_scale[s] = (sum_w[s] * sum_xl[s] - sum_x[s] * sum_l[s]) / d[s];
                this_min[s] = (sum_l2[s] * sum_x[s] - sum_l[s] * sum_xl[s]) / d[s];
                if this_min[s] > 0.0 {
                    this_min[s] = 0.0;
                    this_scale[s] = sum_xl[s] / sum_l2[s];
                }
            }
            let mut cur_error = [0f32; LANES];
            for i in 0..N {
                for s in 0..LANES {
                    let mut diff = this_scale[s] * laux[i][s] + this_min[s] - xt[i][s];
                    diff = if use_mad { diff.abs() } else { diff * diff };
                    cur_error[s] += wt[i][s] * diff;
                }
            }
            let mut take = [false; LANES];
            for s in 0..LANES {
                take[s] = d[s] > 0.0 && cur_error[s] < best_error[s];
            }
            if take.iter().any(|&t| t) {
                for i in 0..N {
                    for s in 0..LANES {
                        if take[s] {
                            l[i][s] = laux[i][s] as u8;
                        }
                    }
                }
                for s in 0..LANES {
                    if take[s] {
                        best_error[s] = cur_error[s];
                        scale[s] = this_scale[s];
                        min[s] = this_min[s];
                    }
                }
            }
        }
    }
    let mut the_min = [0f32; LANES];
    for s in 0..LANES {
        if degenerate[s] {
            for li in l.iter_mut() {
                li[s] = 0;
            }
            scale[s] = 0.0;
            the_min[s] = -min_at_exit[s];
        } else {
            the_min[s] = -min[s];
        }
    }
    (scale, the_min)
}

/// `make_qx_quants` with `rmse_type` 1 and weights `wt` (ggml's `x²` when it has none: the caller
/// passes them) on eight sub-blocks of `N`: writes levels `0..2*nmax` to `l`, returns the scales.
pub(crate) fn make_qx_quants_x8<const N: usize>(
    nmax: i32,
    xt: &[Lf; N],
    wt: &[Lf; N],
    l: &mut [[i8; LANES]; N],
) -> Lf {
    #[cfg(target_arch = "x86_64")]
    if crate::quant::has_avx2() {
        // SAFETY: the CPU has AVX2 (checked just above), all `avx2::qx` requires.
        return unsafe { super::avx2::qx(nmax, xt, wt, l) };
    }
    #[cfg(target_arch = "aarch64")]
    if crate::quant::has_neon() {
        // SAFETY: the CPU has NEON (checked just above), all `neon::qx` requires.
        return unsafe { super::neon::qx(nmax, xt, wt, l) };
    }
    qx_lanes(nmax, xt, wt, l)
}

#[inline(always)]
fn qx_lanes<const N: usize>(nmax: i32, xt: &[Lf; N], wt: &[Lf; N], l: &mut [[i8; LANES]; N]) -> Lf {
    let mut max = [0f32; LANES];
    let mut amax = [0f32; LANES];
    for xi in xt {
        for s in 0..LANES {
            let ax = xi[s].abs();
            if ax > amax[s] {
                amax[s] = ax;
                max[s] = xi[s];
            }
        }
    }
    let mut iscale = [0f32; LANES];
    for s in 0..LANES {
        iscale[s] = -(nmax as f32) / max[s];
    }
    let mut sumlx = [0f32; LANES];
    let mut suml2 = [0f32; LANES];
    for i in 0..N {
        for s in 0..LANES {
            let x = xt[i][s];
            let li = nearest_int(iscale[s] * x).clamp(-nmax, nmax - 1);
            l[i][s] = (li + nmax) as i8;
            let w = wt[i][s];
            let lf = li as f32;
            sumlx[s] += w * x * lf;
            suml2[s] += w * lf * lf;
        }
    }
    let mut scale = [0f32; LANES];
    let mut best = [0f32; LANES];
    for s in 0..LANES {
        scale[s] = if suml2[s] != 0.0 {
            sumlx[s] / suml2[s]
        } else {
            0.0
        };
        best[s] = scale[s] * sumlx[s];
    }
    let mut laux = [[0i32; LANES]; N];
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        let step = nmax as f32 + 0.1f32 * is as f32;
        for s in 0..LANES {
            iscale[s] = -step / max[s];
        }
        let mut sumlx = [0f32; LANES];
        let mut suml2 = [0f32; LANES];
        for i in 0..N {
            for s in 0..LANES {
                let x = xt[i][s];
                let li = nearest_int(iscale[s] * x).clamp(-nmax, nmax - 1);
                laux[i][s] = li + nmax;
                let w = wt[i][s];
                let lf = li as f32;
                sumlx[s] += w * x * lf;
                suml2[s] += w * lf * lf;
            }
        }
        let mut take = [false; LANES];
        for s in 0..LANES {
            take[s] = suml2[s] > 0.0 && sumlx[s] * sumlx[s] > best[s] * suml2[s];
        }
        if take.iter().any(|&t| t) {
            for i in 0..N {
                for s in 0..LANES {
                    if take[s] {
                        l[i][s] = laux[i][s] as i8;
                    }
                }
            }
            for s in 0..LANES {
                if take[s] {
                    scale[s] = sumlx[s] / suml2[s];
                    best[s] = scale[s] * sumlx[s];
                }
            }
        }
    }
    for s in 0..LANES {
        if amax[s] < GROUP_MAX_EPS {
            for li in l.iter_mut() {
                li[s] = 0;
            }
            scale[s] = 0.0;
        }
    }
    scale
}

/// `make_q3_quants` with `do_rmse` (Q3_K's plain path) on eight sub-blocks of `N`: writes levels
/// `0..2*nmax` to `l`, returns the scales. Each lane stops its refinement passes when its own pass
/// changed nothing, as the scalar loop breaks.
pub(crate) fn make_q3_quants_x8<const N: usize>(
    nmax: i32,
    xt: &[Lf; N],
    l: &mut [[i8; LANES]; N],
) -> Lf {
    #[cfg(target_arch = "x86_64")]
    if crate::quant::has_avx2() {
        // SAFETY: the CPU has AVX2 (checked just above), all `q3_avx2` requires.
        return unsafe { q3_avx2(nmax, xt, l) };
    }
    #[cfg(target_arch = "aarch64")]
    if crate::quant::has_neon() {
        // SAFETY: the CPU has NEON (checked just above), all `q3_neon` requires.
        return unsafe { q3_neon(nmax, xt, l) };
    }
    q3_lanes(nmax, xt, l)
}

/// [`q3_lanes`] compiled with AVX2 enabled (the same safe code; no FMA, so the same values).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn q3_avx2<const N: usize>(nmax: i32, xt: &[Lf; N], l: &mut [[i8; LANES]; N]) -> Lf {
    q3_lanes(nmax, xt, l)
}

/// [`q3_lanes`] compiled with NEON enabled (the same safe code; LLVM does not contract the separate
/// multiplies and adds into `fmla`, so the same values).
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
unsafe fn q3_neon<const N: usize>(nmax: i32, xt: &[Lf; N], l: &mut [[i8; LANES]; N]) -> Lf {
    q3_lanes(nmax, xt, l)
}

#[inline(always)]
fn q3_lanes<const N: usize>(nmax: i32, xt: &[Lf; N], l: &mut [[i8; LANES]; N]) -> Lf {
    let mut max = [0f32; LANES];
    let mut amax = [0f32; LANES];
    for xi in xt {
        for s in 0..LANES {
            let ax = xi[s].abs();
            if ax > amax[s] {
                amax[s] = ax;
                max[s] = xi[s];
            }
        }
    }
    let mut iscale = [0f32; LANES];
    for s in 0..LANES {
        iscale[s] = -(nmax as f32) / max[s];
    }
    let mut lv = [[0i32; LANES]; N];
    let mut sumlx = [0f32; LANES];
    let mut suml2 = [0f32; LANES];
    for i in 0..N {
        for s in 0..LANES {
            let x = xt[i][s];
            let li = nearest_int(iscale[s] * x).clamp(-nmax, nmax - 1);
            lv[i][s] = li;
            let w = x * x;
            sumlx[s] += w * x * li as f32;
            suml2[s] += w * li as f32 * li as f32;
        }
    }
    let mut active = [true; LANES];
    for _itry in 0..5 {
        let mut changed = [false; LANES];
        for i in 0..N {
            for s in 0..LANES {
                let x = xt[i][s];
                let w = x * x;
                let li = lv[i][s] as f32;
                let mut slx = sumlx[s] - w * x * li;
                if active[s] && slx > 0.0 {
                    let mut sl2 = suml2[s] - w * li * li;
                    let new_l = nearest_int(x * sl2 / slx).clamp(-nmax, nmax - 1);
                    if new_l != lv[i][s] {
                        slx += w * x * new_l as f32;
                        sl2 += w * new_l as f32 * new_l as f32;
                        if sl2 > 0.0 && slx * slx * suml2[s] > sumlx[s] * sumlx[s] * sl2 {
                            lv[i][s] = new_l;
                            sumlx[s] = slx;
                            suml2[s] = sl2;
                            changed[s] = true;
                        }
                    }
                }
            }
        }
        for s in 0..LANES {
            active[s] = active[s] && changed[s];
        }
        if !active.iter().any(|&a| a) {
            break;
        }
    }
    let mut scale = [0f32; LANES];
    for s in 0..LANES {
        let small = amax[s] < GROUP_MAX_EPS;
        scale[s] = if small {
            0.0
        } else if suml2[s] > 0.0 {
            sumlx[s] / suml2[s]
        } else {
            0.0
        };
        for i in 0..N {
            l[i][s] = if small { 0 } else { (lv[i][s] + nmax) as i8 };
        }
    }
    scale
}

/// `xt[i][s] = x[stride * s + i]` for the eight sub-blocks of `N` values starting `stride` apart.
#[inline]
pub(crate) fn transpose<const N: usize>(x: &[f32], stride: usize) -> [Lf; N] {
    let mut t = [[0f32; LANES]; N];
    for s in 0..LANES {
        let src = &x[stride * s..stride * s + N];
        for i in 0..N {
            t[i][s] = src[i];
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::super::{make_q3_quants, make_qkx2_quants, make_qkx3_quants, make_qx_quants};
    use super::*;

    /// Sub-blocks of many shapes: gaussian-like, one-signed, constant, all zero, tiny, with
    /// outliers, with non-finite values.
    fn sub_blocks<const N: usize>(seed: u64, count: usize) -> Vec<[f32; N]> {
        let mut s = seed | 1;
        let mut uni = move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / 9007199254740992.0
        };
        (0..count)
            .map(|k| {
                let mut b = [0f32; N];
                for v in b.iter_mut() {
                    let g = ((uni() + uni() + uni() - 1.5) * 2.0) as f32;
                    *v = match k % 9 {
                        0 | 1 => g,
                        2 => g.abs() + 0.3,
                        3 => -g.abs() * 1e-3,
                        4 => 0.7,
                        5 => 0.0,
                        6 => g * 1e-30,
                        7 => {
                            if uni() < 0.1 {
                                g * 50.0
                            } else {
                                g
                            }
                        }
                        _ => g,
                    };
                }
                if k % 9 == 8 {
                    b[(k / 9) % N] = [f32::NAN, f32::INFINITY, -f32::INFINITY][(k / 9) % 3];
                }
                b
            })
            .collect()
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    fn check_qkx<const N: usize>(nmax: i32, rmin: f32, rdelta: f32, nstep: i32, mad: bool) {
        let blocks = sub_blocks::<N>(0x1234 + N as u64 + nmax as u64, 8 * 60);
        for (g, group) in blocks.chunks(LANES).enumerate() {
            let mut flat = vec![0f32; LANES * N];
            let mut wflat = vec![0f32; LANES * N];
            for (s, b) in group.iter().enumerate() {
                flat[s * N..(s + 1) * N].copy_from_slice(b);
                for i in 0..N {
                    wflat[s * N + i] = if g % 2 == 0 {
                        b[i].abs()
                    } else {
                        b[i] * b[i] + 0.5
                    };
                }
            }
            let xt = transpose::<N>(&flat, N);
            let wt = transpose::<N>(&wflat, N);
            let mut lt = [[0u8; LANES]; N];
            let (sc, mn) = make_qkx_quants_x8(nmax, &xt, &wt, &mut lt, rmin, rdelta, nstep, mad);
            // The portable lanes (what runs without AVX2) agree with the dispatched version.
            let mut lp = [[0u8; LANES]; N];
            let (scp, mnp) = qkx_lanes(nmax, &xt, &wt, &mut lp, rmin, rdelta, nstep, mad);
            assert_eq!(lt, lp, "group {g}: portable levels");
            for s in 0..LANES {
                assert!(
                    same(sc[s], scp[s]) && same(mn[s], mnp[s]),
                    "group {g}: portable"
                );
            }
            for s in 0..LANES {
                let x = &flat[s * N..(s + 1) * N];
                let w = &wflat[s * N..(s + 1) * N];
                let (mut l2, mut aux) = ([0u8; 32], [0u8; 32]);
                let (a, b) =
                    make_qkx2_quants(nmax, x, w, &mut l2, &mut aux, rmin, rdelta, nstep, mad);
                let mut l3 = [0u8; 32];
                let (c, d) = make_qkx3_quants(
                    nmax,
                    x,
                    Some(w),
                    &mut l3,
                    &mut aux,
                    rmin,
                    rdelta,
                    nstep,
                    mad,
                );
                assert!(
                    same(a, sc[s]) && same(b, mn[s]),
                    "group {g} lane {s}: {a} {b} vs {} {}",
                    sc[s],
                    mn[s]
                );
                assert!(same(c, sc[s]) && same(d, mn[s]), "qkx3 group {g} lane {s}");
                for i in 0..N {
                    assert_eq!(l2[i], lt[i][s], "group {g} lane {s} level {i}");
                    assert_eq!(l3[i], lt[i][s], "qkx3 group {g} lane {s} level {i}");
                }
            }
        }
    }

    #[test]
    fn qkx_lanes_equal_scalar_make_qkx2_and_qkx3() {
        check_qkx::<32>(15, -1.0, 0.1, 20, false); // Q4_K ref
        check_qkx::<32>(31, -0.5, 0.1, 15, false); // Q5_K ref
        check_qkx::<32>(15, -0.9, 0.05, 36, false); // imatrix paths
        check_qkx::<16>(3, -0.5, 0.1, 15, true); // Q2_K ref
        check_qkx::<16>(3, -0.9, 0.05, 36, false); // Q2_K imatrix
        check_qkx::<16>(3, -0.5, 0.1, 0, true); // no search steps
    }

    fn check_qx<const N: usize>(nmax: i32, squares: bool) {
        let blocks = sub_blocks::<N>(0x777 + N as u64 + nmax as u64, 8 * 60);
        for (g, group) in blocks.chunks(LANES).enumerate() {
            let mut flat = vec![0f32; LANES * N];
            let mut wflat = vec![0f32; LANES * N];
            for (s, b) in group.iter().enumerate() {
                flat[s * N..(s + 1) * N].copy_from_slice(b);
                for i in 0..N {
                    wflat[s * N + i] = if squares {
                        b[i] * b[i]
                    } else {
                        0.1 + (i % 5) as f32
                    };
                }
            }
            let xt = transpose::<N>(&flat, N);
            let wt = transpose::<N>(&wflat, N);
            let mut lt = [[0i8; LANES]; N];
            let sc = make_qx_quants_x8(nmax, &xt, &wt, &mut lt);
            let mut lp = [[0i8; LANES]; N];
            let scp = qx_lanes(nmax, &xt, &wt, &mut lp);
            assert_eq!(lt, lp, "group {g}: portable levels");
            assert!(
                (0..LANES).all(|s| same(sc[s], scp[s])),
                "group {g}: portable"
            );
            for s in 0..LANES {
                let x = &flat[s * N..(s + 1) * N];
                let mut l = [0i8; 32];
                let qw = (!squares).then(|| &wflat[s * N..(s + 1) * N]);
                let a = make_qx_quants(nmax, x, &mut l, 1, qw);
                assert!(same(a, sc[s]), "group {g} lane {s}: {a} vs {}", sc[s]);
                for i in 0..N {
                    assert_eq!(l[i], lt[i][s], "group {g} lane {s} level {i}");
                }
            }
        }
    }

    #[test]
    fn q3_lanes_equal_scalar_make_q3_quants() {
        let blocks = sub_blocks::<16>(0x3333, 8 * 80);
        for (g, group) in blocks.chunks(LANES).enumerate() {
            let flat: Vec<f32> = group.iter().flatten().copied().collect();
            let xt = transpose::<16>(&flat, 16);
            let mut lt = [[0i8; LANES]; 16];
            let sc = make_q3_quants_x8(4, &xt, &mut lt);
            let mut lp = [[0i8; LANES]; 16];
            let scp = q3_lanes(4, &xt, &mut lp);
            assert_eq!(lt, lp, "group {g}: portable levels");
            for s in 0..LANES {
                let mut l = [0i8; 16];
                let a = make_q3_quants(4, &flat[16 * s..16 * s + 16], &mut l, true);
                assert!(
                    same(a, sc[s]) && same(a, scp[s]),
                    "group {g} lane {s}: {a} vs {}",
                    sc[s]
                );
                for i in 0..16 {
                    assert_eq!(l[i], lt[i][s], "group {g} lane {s} level {i}");
                }
            }
        }
    }

    #[test]
    fn qx_lanes_equal_scalar_make_qx_quants() {
        check_qx::<16>(32, true); // Q6_K ref
        check_qx::<16>(32, false); // Q6_K imatrix
        check_qx::<16>(4, false); // Q3_K imatrix
        check_qx::<32>(8, false); // Q4_0 imatrix
        check_qx::<32>(16, false); // Q5_0 imatrix
    }
}
