//! IQ2_XXS, IQ2_XS and IQ2_S encoders: `quantize_row_iq2_xxs_impl`, `quantize_row_iq2_xs_impl` and
//! `quantize_row_iq2_s_impl`, groups of 8 magnitudes snapped to the E8-derived lattices of 256, 512
//! and 1024 points. IQ2_XXS and IQ2_XS need an importance matrix (ggml asserts one; the dispatch
//! refuses to call without it); IQ2_S has a fallback weighting.

// Index loops, as in ggml's C, keep the port checkable line by line against it.
#![allow(clippy::needless_range_loop)]

use super::iq3::{fmax, split_signs};
use super::lattice::{self, Lattice, Lookup};
use super::{f16_bytes, nearest_int, GROUP_MAX_EPS, QK_K};
use crate::quant::kquants::make_qp_quants;

const KMAX_Q: i32 = 3;
const GROUP_MAX_EPS_IQ2_S: f32 = 1e-8;

/// Levels of one group of 8 at inverse scale `id`, packed 2 bits each.
#[inline]
fn levels(xval: &[f32], id: f32, l: &mut [i8]) -> usize {
    let mut u = 0usize;
    for i in 0..8 {
        let v = nearest_int(0.5f32 * (id * xval[i] - 1.0f32)).clamp(0, KMAX_Q - 1);
        l[i] = v as i8;
        u |= (v as usize) << (2 * i);
    }
    u
}

/// ggml's `uint16_t u |= (L[i] << 2*i)` over a group of 8 levels.
fn pack(l: &[i8]) -> usize {
    let mut u: i32 = 0;
    for (i, &v) in l.iter().enumerate() {
        u |= (v as i32) << (2 * i);
    }
    u as u16 as usize
}

/// The lattice index of a finished group (the searches only leave grid points; see iq3.rs).
fn grid_index_of(lat: &Lattice, l: &[i8]) -> usize {
    lat.index_of(pack(l)).unwrap_or(0)
}

#[inline]
fn sums(weight: &[f32], xval: &[f32], l: &[i8]) -> (f32, f32) {
    super::iq3::sums(weight, xval, l)
}

/// The 16-value block search IQ2_XS and IQ2_S share (two groups of 8, trial scales -9..9 × 0.1,
/// off-grid groups re-snapped at the best scale). Returns the scale, levels in `l`.
fn search_block16(
    lat: &Lattice,
    xval: &[f32; 16],
    weight: &[f32; 16],
    waux: &[f32; 16],
    max: f32,
    l: &mut [i8; 16],
) -> f32 {
    let mut laux = [0i8; 16];
    let mut is_on_grid = [true; 2];
    let mut is_on_grid_aux = [true; 2];
    let mut best = 0.0f32;
    let mut scale = max / (2 * KMAX_Q - 1) as f32;
    for is in -9..=9 {
        let id = ((2 * KMAX_Q - 1) as f32 + is as f32 * 0.1f32) / max;
        let this_scale = 1.0f32 / id;
        for k in 0..2 {
            let g = 8 * k..8 * k + 8;
            let u = levels(&xval[g.clone()], id, &mut laux[g.clone()]);
            is_on_grid_aux[k] = true;
            if let Lookup::Off(nb) = lat.lookup(u) {
                is_on_grid_aux[k] = false;
                lat.best_neighbour(
                    nb,
                    &xval[g.clone()],
                    &waux[g.clone()],
                    this_scale,
                    &mut laux[g],
                );
            }
        }
        let (sumqx, sumq2) = sums(weight, xval, &laux);
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            *l = laux;
            is_on_grid = is_on_grid_aux;
        }
    }
    let n_not_ongrid = is_on_grid.iter().filter(|&&b| !b).count();
    if n_not_ongrid > 0 && scale > 0.0 {
        let id = 1.0f32 / scale;
        for k in 0..2 {
            if is_on_grid[k] {
                continue;
            }
            let g = 8 * k..8 * k + 8;
            let u = levels(&xval[g.clone()], id, &mut l[g.clone()]);
            if let Lookup::Off(nb) = lat.lookup(u) {
                lat.best_neighbour(nb, &xval[g.clone()], &waux[g.clone()], scale, &mut l[g]);
            }
        }
        let (sumqx, sumq2) = sums(weight, xval, l);
        if sumq2 > 0.0 {
            scale = sumqx / sumq2;
        }
    }
    scale
}

fn sum_sq(x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for &v in x {
        s += v * v;
    }
    s
}

/// `quantize_row_iq2_xs_impl` for one row (`qw`: the row's importance, required).
pub(super) fn quantize_row_iq2_xs(x: &[f32], y: &mut [u8], quant_weights: Option<&[f32]>) {
    let Some(qw_all) = quant_weights else {
        return; // unreachable: the dispatch requires an importance matrix for IQ2_XS
    };
    let lat = lattice::iq2xs();
    for (ibl, (xbl, blk)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(74)).enumerate() {
        // block_iq2_xs: d, qs[32] (u16: grid index | 7 signs << 9), scales[8].
        blk[0..2].copy_from_slice(&f16_bytes(0.0));
        let mut q2 = [0u16; 32];
        blk[66..74].fill(0);
        let mut scales = [0.0f32; 16];
        let mut max_scale = 0.0f32;
        let sigma2 = sum_sq(xbl) / QK_K as f32;
        for ib in 0..QK_K / 16 {
            let xb = &xbl[16 * ib..16 * ib + 16];
            let qw = &qw_all[QK_K * ibl + 16 * ib..QK_K * ibl + 16 * ib + 16];
            let mut weight = [0.0f32; 16];
            let mut waux = [0.0f32; 16];
            for i in 0..16 {
                weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).sqrt();
            }
            for i in 0..16 {
                waux[i] = weight[i].sqrt();
            }
            let mut xval = [0.0f32; 16];
            let mut block_signs = [0u8; 2];
            for k in 0..2 {
                let g = 8 * k..8 * k + 8;
                block_signs[k] =
                    split_signs(&xb[g.clone()], &weight[g.clone()], &mut xval[g], true);
            }
            let max = fmax(&xval);
            let mut l = [0i8; 16];
            if max < GROUP_MAX_EPS {
                scales[ib] = 0.0;
                continue;
            }
            let mut scale = search_block16(lat, &xval, &weight, &waux, max, &mut l);
            if scale < 0.0 {
                scale = -scale;
                for s in &mut block_signs {
                    *s = !*s & 127;
                }
            }
            for k in 0..2 {
                let gi = grid_index_of(lat, &l[8 * k..8 * k + 8]);
                q2[2 * ib + k] = gi as u16 | (block_signs[k] as u16) << 9;
            }
            scales[ib] = scale;
            max_scale = if max_scale > scale { max_scale } else { scale };
        }
        if max_scale == 0.0 {
            blk[2..66].fill(0);
            continue;
        }
        let d = max_scale / 31.0f32;
        blk[0..2].copy_from_slice(&f16_bytes(d));
        let id = 1.0f32 / d;
        for ib in 0..QK_K / 16 {
            let l = nearest_int(0.5f32 * (id * scales[ib] - 1.0f32)).clamp(0, 15) as u8;
            if ib % 2 == 0 {
                blk[66 + ib / 2] = l;
            } else {
                blk[66 + ib / 2] |= l << 4;
            }
        }
        for (i, v) in q2.iter().enumerate() {
            blk[2 + 2 * i..4 + 2 * i].copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// `quantize_row_iq2_s_impl` for one row.
pub(super) fn quantize_row_iq2_s(x: &[f32], y: &mut [u8], quant_weights: Option<&[f32]>) {
    let lat = lattice::iq2s();
    for (ibl, (xbl, blk)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(82)).enumerate() {
        // block_iq2_s: d, qs[32] grid low bytes, signs[32], qh[8], scales[8].
        blk.fill(0);
        blk[0..2].copy_from_slice(&f16_bytes(0.0));
        let mut scales = [0.0f32; 16];
        let mut max_scale = 0.0f32;
        let sigma2 = 2.0f32 * sum_sq(xbl) / QK_K as f32;
        for ib in 0..QK_K / 16 {
            let xb = &xbl[16 * ib..16 * ib + 16];
            let mut weight = [0.0f32; 16];
            match quant_weights {
                Some(w) => {
                    let qw = &w[QK_K * ibl + 16 * ib..QK_K * ibl + 16 * ib + 16];
                    for i in 0..16 {
                        weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).sqrt();
                    }
                }
                None => {
                    for i in 0..16 {
                        weight[i] = 0.25f32 * sigma2 + xb[i] * xb[i];
                    }
                }
            }
            let mut waux = [0.0f32; 16];
            for i in 0..16 {
                waux[i] = weight[i].sqrt();
            }
            let mut xval = [0.0f32; 16];
            let mut block_signs = [0u8; 2];
            for k in 0..2 {
                let g = 8 * k..8 * k + 8;
                block_signs[k] =
                    split_signs(&xb[g.clone()], &weight[g.clone()], &mut xval[g], false);
            }
            let max = fmax(&xval);
            let mut l = [0i8; 16];
            if max < GROUP_MAX_EPS_IQ2_S {
                scales[ib] = 0.0;
                continue;
            }
            let mut scale = search_block16(lat, &xval, &weight, &waux, max, &mut l);
            if scale < 0.0 {
                scale = -scale;
                for s in &mut block_signs {
                    *s = !*s;
                }
            }
            for k in 0..2 {
                let gi = grid_index_of(lat, &l[8 * k..8 * k + 8]);
                let i8 = 2 * ib + k;
                blk[2 + i8] = (gi & 255) as u8;
                blk[66 + i8 / 4] |= ((gi >> 8) << (2 * (i8 % 4))) as u8;
                blk[2 + QK_K / 8 + i8] = block_signs[k];
            }
            scales[ib] = scale;
            max_scale = if max_scale > scale { max_scale } else { scale };
        }
        if max_scale == 0.0 {
            continue;
        }
        let d = max_scale / 31.0f32;
        blk[0..2].copy_from_slice(&f16_bytes(d * 0.9875f32));
        let id = 1.0f32 / d;
        for ib in 0..QK_K / 16 {
            let l = nearest_int(0.5f32 * (id * scales[ib] - 1.0f32)).clamp(0, 15) as u8;
            if ib % 2 == 0 {
                blk[74 + ib / 2] = l;
            } else {
                blk[74 + ib / 2] |= l << 4;
            }
        }
    }
}

/// `quantize_row_iq2_xxs_impl` for one row (`qw`: the row's importance, required).
pub(super) fn quantize_row_iq2_xxs(x: &[f32], y: &mut [u8], quant_weights: Option<&[f32]>) {
    let Some(qw_all) = quant_weights else {
        return; // unreachable: the dispatch requires an importance matrix for IQ2_XXS
    };
    let lat = lattice::iq2xxs();
    for (ibl, (xbl, blk)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(66)).enumerate() {
        // block_iq2_xxs: d, then per 32 values two u32: 4 grid indices, and 4×7 signs + 4-bit scale.
        blk[0..2].copy_from_slice(&f16_bytes(0.0));
        let mut q2 = [0u32; 16];
        let mut scales = [0.0f32; 8];
        let mut max_scale = 0.0f32;
        let sigma2 = sum_sq(xbl) / QK_K as f32;
        for ib in 0..QK_K / 32 {
            let xb = &xbl[32 * ib..32 * ib + 32];
            let qw = &qw_all[QK_K * ibl + 32 * ib..QK_K * ibl + 32 * ib + 32];
            let mut weight = [0.0f32; 32];
            let mut waux = [0.0f32; 32];
            for i in 0..32 {
                weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).sqrt();
            }
            for i in 0..32 {
                waux[i] = weight[i].sqrt();
            }
            let mut xval = [0.0f32; 32];
            let mut block_signs = [0u8; 4];
            for k in 0..4 {
                let g = 8 * k..8 * k + 8;
                block_signs[k] =
                    split_signs(&xb[g.clone()], &weight[g.clone()], &mut xval[g], true);
            }
            let max = fmax(&xval);
            if max < GROUP_MAX_EPS {
                scales[ib] = 0.0;
                continue;
            }
            // L is shared between make_qp_quants (as uint8_t) and the search (as int8_t).
            let mut lq = [0u8; 32];
            let mut scale = make_qp_quants(KMAX_Q + 1, &xval, &mut lq, &weight);
            let mut l = [0i8; 32];
            for i in 0..32 {
                l[i] = lq[i] as i8;
            }
            let eff_max = scale * KMAX_Q as f32;
            if eff_max <= 0.0 {
                scales[ib] = 0.0;
                continue;
            }
            let mut best = 0.0f32;
            let mut laux = [0i8; 32];
            for is in -6..=6 {
                let id = ((2 * KMAX_Q - 1) as f32 + is as f32 * 0.1f32) / eff_max;
                let this_scale = 1.0f32 / id;
                for k in 0..4 {
                    let g = 8 * k..8 * k + 8;
                    let u = levels(&xval[g.clone()], id, &mut laux[g.clone()]);
                    if let Lookup::Off(nb) = lat.lookup(u) {
                        lat.best_neighbour(
                            nb,
                            &xval[g.clone()],
                            &waux[g.clone()],
                            this_scale,
                            &mut laux[g],
                        );
                    }
                }
                let (sumqx, sumq2) = sums(&weight, &xval, &laux);
                if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                    scale = sumqx / sumq2;
                    best = scale * sumqx;
                    l = laux;
                }
            }
            if scale > 0.0 {
                let id = 1.0f32 / scale;
                for k in 0..4 {
                    let g = 8 * k..8 * k + 8;
                    let mut lk = [0i8; 8];
                    let u = levels(&xval[g.clone()], id, &mut lk);
                    let gi = match lat.lookup(u) {
                        Lookup::OnGrid(i) => i,
                        Lookup::Off(nb) => lat.best_neighbour(
                            nb,
                            &xval[g.clone()],
                            &waux[g.clone()],
                            scale,
                            &mut l[g],
                        ),
                    };
                    let pg = &lat.grid[gi];
                    for i in 0..8 {
                        l[8 * k + i] = (pg[i] - 1) / 2;
                    }
                }
                let (sumqx, sumq2) = sums(&weight, &xval, &l);
                if sumq2 > 0.0 {
                    scale = sumqx / sumq2;
                }
            }
            if scale < 0.0 {
                scale = -scale;
                for s in &mut block_signs {
                    *s = !*s & 127;
                }
            }
            for k in 0..4 {
                let gi = grid_index_of(lat, &l[8 * k..8 * k + 8]);
                q2[2 * ib] |= (gi as u32) << (8 * k);
                q2[2 * ib + 1] |= (block_signs[k] as u32) << (7 * k);
            }
            scales[ib] = scale;
            max_scale = if max_scale > scale { max_scale } else { scale };
        }
        if max_scale == 0.0 {
            blk[2..66].fill(0);
            continue;
        }
        let d = max_scale / 31.0f32;
        blk[0..2].copy_from_slice(&f16_bytes(d));
        let id = 1.0f32 / d;
        for ib in 0..QK_K / 32 {
            let l = nearest_int(0.5f32 * (id * scales[ib] - 1.0f32)).clamp(0, 15);
            q2[2 * ib + 1] |= (l as u32) << 28;
        }
        for (i, v) in q2.iter().enumerate() {
            blk[2 + 4 * i..6 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
    }
}
