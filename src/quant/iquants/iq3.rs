//! IQ3_XXS and IQ3_S encoders: `quantize_row_iq3_xxs_impl(256, …)` and `quantize_row_iq3_s_impl`,
//! groups of 4 magnitudes snapped to the D4-derived lattices of 256 and 512 points, one sign per
//! value (IQ3_XXS: 7 signs per 8 with even parity, the 8th implied).

// Index loops, as in ggml's C, keep the port checkable line by line against it.
#![allow(clippy::needless_range_loop)]

use super::lattice::{self, Lattice, Lookup};
use super::{f16_bytes, nearest_int, QK_K};

const KMAX_Q: i32 = 8;
const GROUP_MAX_EPS_IQ3_XXS: f32 = 1e-8;

/// Signs and magnitudes of 8 values; with `parity`, an odd number of negatives is made even by
/// flipping the value of least weighted square (ggml's trick to store 7 sign bits).
pub(super) fn split_signs(xb: &[f32], weight: &[f32], xval: &mut [f32], parity: bool) -> u8 {
    let mut nflip = 0;
    let mut s: u8 = 0;
    for i in 0..8 {
        if xb[i] >= 0.0 {
            xval[i] = xb[i];
        } else {
            xval[i] = -xb[i];
            nflip += 1;
            s |= 1 << i;
        }
    }
    if parity && nflip % 2 != 0 {
        let mut imin = 0;
        let mut min = weight[0] * xb[0] * xb[0];
        for i in 1..8 {
            let ax = weight[i] * xb[i] * xb[i];
            if ax < min {
                min = ax;
                imin = i;
            }
        }
        xval[imin] = -xval[imin];
        s ^= 1 << imin;
    }
    if parity {
        s & 127
    } else {
        s
    }
}

/// `MAX` over a slice, as ggml's loop computes it.
pub(super) fn fmax(v: &[f32]) -> f32 {
    let mut m = v[0];
    for &x in &v[1..] {
        m = if m > x { m } else { x };
    }
    m
}

/// Levels of one group of 4 at inverse scale `id`, packed 3 bits each.
#[inline]
fn levels(xval: &[f32], id: f32, l: &mut [i8]) -> usize {
    let mut u = 0usize;
    for i in 0..4 {
        let v = nearest_int(0.5f32 * (id * xval[i] - 1.0f32)).clamp(0, KMAX_Q - 1);
        l[i] = v as i8;
        u |= (v as usize) << (3 * i);
    }
    u
}

fn pack(l: &[i8]) -> usize {
    let mut u = 0usize;
    for (i, &v) in l.iter().enumerate() {
        u |= (v as usize) << (3 * i);
    }
    u
}

/// `sumqx`, `sumq2` of levels `l` (values `2l+1`) against `xval`.
#[inline]
pub(super) fn sums(weight: &[f32], xval: &[f32], l: &[i8]) -> (f32, f32) {
    let mut sumqx = 0.0f32;
    let mut sumq2 = 0.0f32;
    for i in 0..weight.len() {
        let w = weight[i];
        let q = (2 * l[i] as i32 + 1) as f32;
        sumqx += w * xval[i] * q;
        sumq2 += w * q * q;
    }
    (sumqx, sumq2)
}

/// Weights of one 32-value block: `qw·sqrt(sigma2 + x²)` with an importance matrix, else `x²`.
pub(super) fn block_weights(xb: &[f32], qw: Option<&[f32]>, sigma2: f32, weight: &mut [f32]) {
    match qw {
        Some(qw) => {
            for i in 0..xb.len() {
                weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).sqrt();
            }
        }
        None => {
            for i in 0..xb.len() {
                weight[i] = xb[i] * xb[i];
            }
        }
    }
}

/// The 32-value block search both IQ3 types share: the best scale over `is_range` trial scales, then
/// off-grid groups re-snapped at that scale. Returns the scale and leaves the levels in `l`.
#[allow(clippy::too_many_arguments)]
fn search_block(
    lat: &Lattice,
    xval: &[f32; 32],
    weight: &[f32; 32],
    waux: &[f32; 32],
    max: f32,
    is_range: i32,
    on_grid_init: bool,
    resnap_all: bool,
    l: &mut [i8; 32],
) -> f32 {
    let mut laux = [0i8; 32];
    let mut is_on_grid = [on_grid_init; 8];
    let mut is_on_grid_aux = [true; 8];
    let mut best = 0.0f32;
    let mut scale = max / (2 * KMAX_Q - 1) as f32;
    for is in -is_range..=is_range {
        let id = ((2 * KMAX_Q - 1) as f32 + is as f32 * 0.2f32) / max;
        let this_scale = 1.0f32 / id;
        for k in 0..8 {
            let g = 4 * k..4 * k + 4;
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
        for k in 0..8 {
            if !resnap_all && is_on_grid[k] {
                continue;
            }
            let g = 4 * k..4 * k + 4;
            let mut lk = [0i8; 4];
            let u = levels(&xval[g.clone()], id, &mut lk);
            let grid_index = match lat.lookup(u) {
                Lookup::OnGrid(i) => i,
                Lookup::Off(nb) => lat.best_neighbour(
                    nb,
                    &xval[g.clone()],
                    &waux[g.clone()],
                    scale,
                    &mut l[g.clone()],
                ),
            };
            let pg = &lat.grid[grid_index];
            for i in 0..4 {
                l[4 * k + i] = (pg[i] - 1) / 2;
            }
        }
        let (sumqx, sumq2) = sums(weight, xval, l);
        if sumq2 > 0.0 {
            scale = sumqx / sumq2;
        }
    }
    scale
}

fn grid_index_of(lat: &Lattice, l: &[i8]) -> usize {
    // The search only leaves points on the grid; ggml aborts otherwise ("Oops: found point … not on
    // grid"), which the levels above cannot produce.
    lat.index_of(pack(l)).unwrap_or(0)
}

/// `quantize_row_iq3_xxs_impl(256, …)` for one row.
pub(super) fn quantize_row_iq3_xxs(x: &[f32], y: &mut [u8], quant_weights: Option<&[f32]>) {
    let lat = lattice::iq3xxs();
    for (ibl, (xbl, blk)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(98)).enumerate() {
        blk[0..2].copy_from_slice(&f16_bytes(0.0));
        // q3: 64 grid indices, then 8 little-endian u32 of scale (top 4 bits) and 4×7 signs.
        let mut q3 = [0u8; 96];
        let mut scales_and_signs = [0u32; 8];
        let mut scales = [0.0f32; 8];
        let mut max_scale = 0.0f32;
        let mut sumx2 = 0.0f32;
        for &v in xbl {
            sumx2 += v * v;
        }
        let sigma2 = 2.0f32 * sumx2 / QK_K as f32;
        for ib in 0..QK_K / 32 {
            let xb = &xbl[32 * ib..32 * ib + 32];
            let mut weight = [0.0f32; 32];
            let qw = quant_weights.map(|w| &w[QK_K * ibl + 32 * ib..QK_K * ibl + 32 * ib + 32]);
            block_weights(xb, qw, sigma2, &mut weight);
            let mut waux = [0.0f32; 32];
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
            let mut l = [0i8; 32];
            if max < GROUP_MAX_EPS_IQ3_XXS {
                scales[ib] = 0.0;
                continue;
            }
            let mut scale = search_block(lat, &xval, &weight, &waux, max, 15, true, false, &mut l);
            if scale < 0.0 {
                // ggml: "should never happen"; flip the scale positive and the signs with it.
                scale = -scale;
                for s in &mut block_signs {
                    *s = !*s & 127;
                }
            }
            for k in 0..8 {
                q3[8 * ib + k] = grid_index_of(lat, &l[4 * k..4 * k + 4]) as u8;
            }
            scales_and_signs[ib] = block_signs[0] as u32
                | (block_signs[1] as u32) << 7
                | (block_signs[2] as u32) << 14
                | (block_signs[3] as u32) << 21;
            scales[ib] = scale;
            max_scale = if max_scale > scale { max_scale } else { scale };
        }
        if max_scale == 0.0 {
            blk[2..].fill(0);
            continue;
        }
        let d = max_scale / 31.0f32;
        blk[0..2].copy_from_slice(&f16_bytes(d * 1.0125f32));
        let id = 1.0f32 / d;
        for ib in 0..QK_K / 32 {
            let l = nearest_int(0.5f32 * (id * scales[ib] - 1.0f32)).clamp(0, 15);
            scales_and_signs[ib] |= (l as u32) << 28;
        }
        for (ib, v) in scales_and_signs.iter().enumerate() {
            q3[64 + 4 * ib..64 + 4 * ib + 4].copy_from_slice(&v.to_le_bytes());
        }
        blk[2..].copy_from_slice(&q3);
    }
}

/// `quantize_row_iq3_s_impl(32, …)` for one row.
pub(super) fn quantize_row_iq3_s(x: &[f32], y: &mut [u8], quant_weights: Option<&[f32]>) {
    let lat = lattice::iq3s();
    for (ibl, (xbl, blk)) in x
        .chunks_exact(QK_K)
        .zip(y.chunks_exact_mut(110))
        .enumerate()
    {
        // block_iq3_s: d, qs[64], qh[8], signs[32], scales[4].
        blk.fill(0);
        blk[0..2].copy_from_slice(&f16_bytes(0.0));
        let mut scales = [0.0f32; 8];
        let mut max_scale = 0.0f32;
        let mut sumx2 = 0.0f32;
        for &v in xbl {
            sumx2 += v * v;
        }
        let sigma2 = 2.0f32 * sumx2 / QK_K as f32;
        // ggml advances its qs/signs pointers only for blocks that are not all zero, so a zero block's
        // slots are taken by the next block: keep the same cursors.
        let mut qs_at = 2usize;
        let mut signs_at = 74usize;
        for ib in 0..QK_K / 32 {
            let xb = &xbl[32 * ib..32 * ib + 32];
            let mut weight = [0.0f32; 32];
            let qw = quant_weights.map(|w| &w[QK_K * ibl + 32 * ib..QK_K * ibl + 32 * ib + 32]);
            block_weights(xb, qw, sigma2, &mut weight);
            let mut waux = [0.0f32; 32];
            for i in 0..32 {
                waux[i] = weight[i].sqrt();
            }
            let mut xval = [0.0f32; 32];
            let mut block_signs = [0u8; 4];
            for k in 0..4 {
                let g = 8 * k..8 * k + 8;
                block_signs[k] =
                    split_signs(&xb[g.clone()], &weight[g.clone()], &mut xval[g], false);
            }
            let max = fmax(&xval);
            let mut l = [0i8; 32];
            if max == 0.0 {
                scales[ib] = 0.0;
                continue;
            }
            let mut scale = search_block(lat, &xval, &weight, &waux, max, 9, false, true, &mut l);
            if scale < 0.0 {
                scale = -scale;
                for s in &mut block_signs {
                    *s = !*s;
                }
            }
            for k in 0..8 {
                let grid_index = grid_index_of(lat, &l[4 * k..4 * k + 4]);
                blk[qs_at + k] = (grid_index & 255) as u8;
                let bit = ib * 8 + k;
                blk[66 + bit / 8] |= ((grid_index >> 8) << (bit % 8)) as u8;
            }
            qs_at += 8;
            blk[signs_at..signs_at + 4].copy_from_slice(&block_signs);
            signs_at += 4;
            scales[ib] = scale;
            max_scale = if max_scale > scale { max_scale } else { scale };
        }
        if max_scale == 0.0 {
            continue;
        }
        let d = max_scale / 31.0f32;
        blk[0..2].copy_from_slice(&f16_bytes(d * 1.033f32));
        let id = 1.0f32 / d;
        for ib in (0..QK_K / 32).step_by(2) {
            let l1 = nearest_int(0.5f32 * (id * scales[ib] - 1.0f32)).clamp(0, 15);
            let l2 = nearest_int(0.5f32 * (id * scales[ib + 1] - 1.0f32)).clamp(0, 15);
            blk[106 + ib / 2] = (l1 | (l2 << 4)) as u8;
        }
    }
}
