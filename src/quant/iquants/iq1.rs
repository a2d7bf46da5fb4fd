//! IQ1_S and IQ1_M encoders: `quantize_row_iq1_s_impl` and `quantize_row_iq1_m_impl`. Values are
//! -1, 0, 1 shifted by ±1/8 per block; the best two split points of the sorted block are found
//! exhaustively, then groups of 8 are snapped to the 2048-point lattice. IQ1_S needs an importance
//! matrix (the dispatch refuses to call without it); IQ1_M has a fallback weighting.
//!
//! ggml sorts each block with `qsort`; this port uses a stable sort, which orders equal values the
//! way glibc's merge sort does (only blocks with exactly equal values can tell the two apart).

// Index loops, as in ggml's C, keep the port checkable line by line against it.
#![allow(clippy::needless_range_loop)]

use super::lattice::{self, Lattice, Lookup};
use super::{f16_bytes, nearest_int, IQ1S_DELTA, QK_K};

const GROUP_MAX_EPS_IQ1_S: f32 = 1e-12;
const GROUP_MAX_EPS_IQ1_M: f32 = 1e-7;
const X_P: [f32; 3] = [-1.0 + IQ1S_DELTA, IQ1S_DELTA, 1.0 + IQ1S_DELTA];
const X_M: [f32; 3] = [-1.0 - IQ1S_DELTA, -IQ1S_DELTA, 1.0 - IQ1S_DELTA];

/// `iq1_find_best_neighbour2`: the neighbour of least weighted squared error when its levels are read
/// through `xg` at `scale`; writes its levels to `l`.
fn best_neighbour2(
    lat: &Lattice,
    neighbours: &[u16],
    xval: &[f32],
    weight: &[f32],
    scale: f32,
    xg: &[f32; 3],
    l: &mut [i8],
) -> usize {
    let mut best_score = f32::MAX;
    // ggml falls back to a whole-grid scan (reading out of bounds) and then aborts when no distance
    // is below FLT_MAX, which takes non-finite input; take the first neighbour instead.
    let mut grid_index = neighbours[0] as usize;
    for &nb in neighbours {
        let pg = &lat.grid[nb as usize];
        let mut d2 = 0.0f32;
        for i in 0..8 {
            let q = xg[((pg[i] - 1) / 2) as usize];
            let w = weight[i];
            let diff = scale * q - xval[i];
            d2 += w * diff * diff;
        }
        if d2 < best_score {
            best_score = d2;
            grid_index = nb as usize;
        }
    }
    let pg = &lat.grid[grid_index];
    for i in 0..8 {
        l[i] = (pg[i] - 1) / 2;
    }
    grid_index
}

/// The block's values sorted ascending with their positions (ggml's `pairs`/`idx`).
fn sorted_indices(xb: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..xb.len()).collect();
    idx.sort_by(|&a, &b| {
        xb[a]
            .partial_cmp(&xb[b])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    idx
}

fn sigma2_of(xbl: &[f32]) -> f32 {
    let mut sumx2 = 0.0f32;
    for &v in xbl {
        sumx2 += v * v;
    }
    2.0f32 * sumx2 / QK_K as f32
}

fn abs_max(xb: &[f32]) -> f32 {
    let mut max = xb[0].abs();
    for &v in &xb[1..] {
        let a = v.abs();
        max = if max > a { max } else { a };
    }
    max
}

fn pack(l: &[i8]) -> usize {
    let mut u = 0usize;
    for (j, &v) in l.iter().enumerate() {
        u |= (v as usize) << (2 * j);
    }
    u
}

/// Snaps the groups of 8 of `l` to the lattice (`xx(k)`: the value table of group k); returns the
/// grid indices and whether all were already on the grid.
fn snap<const G: usize>(
    lat: &Lattice,
    xb: &[f32],
    weight: &[f32],
    scale: f32,
    xx: impl Fn(usize) -> &'static [f32; 3],
    l: &mut [i8],
) -> ([usize; G], bool) {
    let mut index = [0usize; G];
    let mut all_on_grid = true;
    for k in 0..G {
        let g = 8 * k..8 * k + 8;
        index[k] = match lat.lookup(pack(&l[g.clone()])) {
            Lookup::OnGrid(i) => i,
            Lookup::Off(nb) => {
                all_on_grid = false;
                best_neighbour2(
                    lat,
                    nb,
                    &xb[g.clone()],
                    &weight[g.clone()],
                    scale,
                    xx(k),
                    &mut l[g],
                )
            }
        };
    }
    (index, all_on_grid)
}

/// `quantize_row_iq1_s_impl` for one row (importance required).
pub(super) fn quantize_row_iq1_s(x: &[f32], y: &mut [u8], quant_weights: Option<&[f32]>) {
    const BS: usize = 32;
    let Some(qw_all) = quant_weights else {
        return; // unreachable: the dispatch requires an importance matrix for IQ1_S
    };
    let lat = lattice::iq1s();
    for (ibl, (xbl, blk)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(50)).enumerate() {
        // block_iq1_s: d, qs[32], qh[8] (u16: 3 high index bits per group, scale << 12, shift bit 15).
        blk.fill(0);
        blk[0..2].copy_from_slice(&f16_bytes(0.0));
        let mut qh = [0u16; QK_K / BS];
        let mut scales = [0.0f32; QK_K / BS];
        let mut shifts = [0i8; QK_K / BS];
        let mut max_scale = 0.0f32;
        let sigma2 = sigma2_of(xbl);
        for ib in 0..QK_K / BS {
            let xb = &xbl[BS * ib..BS * ib + BS];
            let qw = &qw_all[QK_K * ibl + BS * ib..QK_K * ibl + BS * ib + BS];
            let mut weight = [0.0f32; BS];
            for i in 0..BS {
                weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).sqrt();
            }
            let max = abs_max(xb);
            if max < GROUP_MAX_EPS_IQ1_S {
                scales[ib] = 0.0;
                shifts[ib] = 1;
                continue;
            }
            let idx = sorted_indices(xb);
            let mut sumx = [0.0f32; BS + 1];
            let mut sumw = [0.0f32; BS + 1];
            for j in 0..BS {
                let i = idx[j];
                sumx[j + 1] = sumx[j] + weight[i] * xb[i];
                sumw[j + 1] = sumw[j] + weight[i];
            }
            let mut best_score = -f32::MAX;
            let mut scale = max;
            let (mut besti1, mut besti2, mut best_shift) = (-1i32, -1i32, 0i32);
            for i1 in 0..=BS {
                for i2 in i1..=BS {
                    for (xs, shift) in [(&X_P, 1), (&X_M, -1)] {
                        let sumqx = (sumx[i1] - sumx[0]) * xs[0]
                            + (sumx[i2] - sumx[i1]) * xs[1]
                            + (sumx[BS] - sumx[i2]) * xs[2];
                        let sumq2 = (sumw[i1] - sumw[0]) * xs[0] * xs[0]
                            + (sumw[i2] - sumw[i1]) * xs[1] * xs[1]
                            + (sumw[BS] - sumw[i2]) * xs[2] * xs[2];
                        if sumq2 > 0.0 && sumqx * sumqx > best_score * sumq2 {
                            scale = sumqx / sumq2;
                            best_score = scale * sumqx;
                            besti1 = i1 as i32;
                            besti2 = i2 as i32;
                            best_shift = shift;
                        }
                    }
                }
            }
            if besti1 < 0 || besti2 < 0 || best_shift == 0 {
                scales[ib] = 0.0;
                shifts[ib] = 1;
                continue;
            }
            let mut l = [0i8; BS];
            for (j, &i) in idx.iter().enumerate() {
                l[i] = if (j as i32) < besti1 {
                    0
                } else if (j as i32) < besti2 {
                    1
                } else {
                    2
                };
            }
            if scale < 0.0 {
                for v in &mut l {
                    *v = 2 - *v;
                }
                scale = -scale;
                best_shift = -best_shift;
            }
            let xx: &'static [f32; 3] = if best_shift == 1 { &X_P } else { &X_M };
            let (index, all_on_grid) = snap::<4>(lat, xb, &weight, scale, |_| xx, &mut l);
            if !all_on_grid {
                let mut sumqx = 0.0f32;
                let mut sumq2 = 0.0f32;
                for k in 0..BS / 8 {
                    let pg = &lat.grid[index[k]];
                    for j in 0..8 {
                        let w = weight[8 * k + j];
                        let q = xx[((pg[j] - 1) / 2) as usize];
                        sumqx += w * q * xb[8 * k + j];
                        sumq2 += w * q * q;
                    }
                }
                if sumqx > 0.0 && sumq2 > 0.0 {
                    scale = sumqx / sumq2;
                }
            }
            let mut h: u16 = 0;
            for k in 0..BS / 8 {
                blk[2 + (BS / 8) * ib + k] = (index[k] & 255) as u8;
                h |= ((index[k] >> 8) << (3 * k)) as u16;
            }
            qh[ib] = h;
            scales[ib] = scale;
            shifts[ib] = best_shift as i8;
            max_scale = if max_scale > scale { max_scale } else { scale };
        }
        if max_scale != 0.0 {
            let d = max_scale / 15.0f32;
            blk[0..2].copy_from_slice(&f16_bytes(d * 1.125f32));
            let id = 1.0f32 / d;
            for ib in 0..QK_K / BS {
                let mut l = nearest_int(0.5f32 * (id * scales[ib] - 1.0f32)).clamp(0, 7);
                if shifts[ib] == -1 {
                    l |= 8;
                }
                qh[ib] |= (l << 12) as u16;
            }
        }
        for (ib, h) in qh.iter().enumerate() {
            blk[34 + 2 * ib..36 + 2 * ib].copy_from_slice(&h.to_le_bytes());
        }
    }
}

/// `quantize_row_iq1_m_impl` for one row.
pub(super) fn quantize_row_iq1_m(x: &[f32], y: &mut [u8], quant_weights: Option<&[f32]>) {
    const BS: usize = 16;
    const MASKS: [u8; 4] = [0x00, 0x80, 0x08, 0x88];
    let lat = lattice::iq1s();
    // Value tables of group k (0: first 8, 1: second 8) for sign choice `best_k` (bit 1: first half
    // negative shift, bit 0: second half).
    let table = |best_k: i32, k: usize| -> &'static [f32; 3] {
        let plus = if k == 0 { best_k < 2 } else { best_k % 2 == 0 };
        if plus {
            &X_P
        } else {
            &X_M
        }
    };
    let block_weights =
        |xb: &[f32], qw: Option<&[f32]>, sigma2: f32, weight: &mut [f32; BS]| match qw {
            Some(qw) => {
                for i in 0..BS {
                    weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).sqrt();
                }
            }
            None => {
                for i in 0..BS {
                    weight[i] = xb[i] * xb[i];
                }
            }
        };
    for (ibl, (xbl, blk)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(56)).enumerate() {
        // block_iq1_m: qs[32], qh[16], scales[8] (4 × u16: 3-bit block scales, f16 scale in top nibbles).
        blk.fill(0);
        let mut scales = [0.0f32; QK_K / BS];
        let mut shifts = [0i32; QK_K / BS];
        let mut max_scale = 0.0f32;
        let sigma2 = sigma2_of(xbl);
        let qw_of =
            |ib: usize| quant_weights.map(|w| &w[QK_K * ibl + BS * ib..QK_K * ibl + BS * ib + BS]);
        for ib in 0..QK_K / BS {
            let xb = &xbl[BS * ib..BS * ib + BS];
            let mut weight = [0.0f32; BS];
            block_weights(xb, qw_of(ib), sigma2, &mut weight);
            let max = abs_max(xb);
            if max < GROUP_MAX_EPS_IQ1_M {
                scales[ib] = 0.0;
                shifts[ib] = 0;
                continue;
            }
            let idx = sorted_indices(xb);
            let mut best_score = -f32::MAX;
            let mut scale = max;
            let (mut besti1, mut besti2, mut best_k) = (-1i32, -1i32, -1i32);
            // Prefix sums per half of the block, since each half has its own shift.
            let mut px = [[0.0f32; BS + 1]; 2];
            let mut pw = [[0.0f32; BS + 1]; 2];
            for j in 0..BS {
                let i = idx[j];
                let h = if i < BS / 2 { 0 } else { 1 };
                px[h][j + 1] = px[h][j] + weight[i] * xb[i];
                px[1 - h][j + 1] = px[1 - h][j];
                pw[h][j + 1] = pw[h][j] + weight[i];
                pw[1 - h][j + 1] = pw[1 - h][j];
            }
            let txs = [px[0][BS], px[1][BS]];
            let tws = [pw[0][BS], pw[1][BS]];
            let (p2, m2) = (X_P[2], X_M[2]);
            let cp1 = X_P[0] * X_P[0] - X_P[1] * X_P[1];
            let cp2 = X_P[1] * X_P[1] - X_P[2] * X_P[2];
            let cm1 = X_M[0] * X_M[0] - X_M[1] * X_M[1];
            let cm2 = X_M[1] * X_M[1] - X_M[2] * X_M[2];
            for i1 in 0..=BS {
                for i2 in i1..=BS {
                    let mut qx_p = [0.0f32; 2];
                    let mut qx_m = [0.0f32; 2];
                    let mut q2_p = [0.0f32; 2];
                    let mut q2_m = [0.0f32; 2];
                    for h in 0..2 {
                        let sx = px[h][i1] + px[h][i2];
                        qx_p[h] = txs[h] * p2 - sx;
                        qx_m[h] = txs[h] * m2 - sx;
                        q2_p[h] = tws[h] * p2 * p2 + pw[h][i1] * cp1 + pw[h][i2] * cp2;
                        q2_m[h] = tws[h] * m2 * m2 + pw[h][i1] * cm1 + pw[h][i2] * cm2;
                    }
                    let sumqx = [
                        qx_p[0] + qx_p[1],
                        qx_p[0] + qx_m[1],
                        qx_m[0] + qx_p[1],
                        qx_m[0] + qx_m[1],
                    ];
                    let sumq2 = [
                        q2_p[0] + q2_p[1],
                        q2_p[0] + q2_m[1],
                        q2_m[0] + q2_p[1],
                        q2_m[0] + q2_m[1],
                    ];
                    for k in 0..4 {
                        if sumq2[k] > 0.0 && sumqx[k] * sumqx[k] > best_score * sumq2[k] {
                            scale = sumqx[k] / sumq2[k];
                            best_score = scale * sumqx[k];
                            besti1 = i1 as i32;
                            besti2 = i2 as i32;
                            best_k = k as i32;
                        }
                    }
                }
            }
            if besti1 < 0 || besti2 < 0 || best_k < 0 {
                scales[ib] = 0.0;
                shifts[ib] = 0;
                continue;
            }
            let mut l = [0i8; BS];
            for (j, &i) in idx.iter().enumerate() {
                l[i] = if (j as i32) < besti1 {
                    0
                } else if (j as i32) < besti2 {
                    1
                } else {
                    2
                };
            }
            if scale < 0.0 {
                for v in &mut l {
                    *v = 2 - *v;
                }
                scale = -scale;
                best_k = 3 - best_k;
            }
            let (index, all_on_grid) =
                snap::<2>(lat, xb, &weight, scale, |k| table(best_k, k), &mut l);
            if !all_on_grid {
                let mut sumqx_f = 0.0f32;
                let mut sumq2_f = 0.0f32;
                for k in 0..BS / 8 {
                    let xx = table(best_k, k);
                    let pg = &lat.grid[index[k]];
                    for j in 0..8 {
                        let w = weight[8 * k + j];
                        let q = xx[((pg[j] - 1) / 2) as usize];
                        sumqx_f += w * q * xb[8 * k + j];
                        sumq2_f += w * q * q;
                    }
                }
                if sumqx_f > 0.0 && sumq2_f > 0.0 {
                    scale = sumqx_f / sumq2_f;
                }
            }
            blk[2 * ib] = (index[0] & 255) as u8;
            blk[2 * ib + 1] = (index[1] & 255) as u8;
            blk[32 + ib] = ((index[0] >> 8) | ((index[1] >> 8) << 4)) as u8;
            scales[ib] = scale;
            shifts[ib] = best_k;
            max_scale = if max_scale > scale { max_scale } else { scale };
        }
        if max_scale == 0.0 {
            continue;
        }
        let mut sc = [0u16; 4];
        let mut d = max_scale / 15.0f32;
        let id = 1.0f32 / d;
        let mut sumqx_f = 0.0f32;
        let mut sumq2_f = 0.0f32;
        for ib in 0..QK_K / BS {
            let l = nearest_int(0.5f32 * (id * scales[ib] - 1.0f32)).clamp(0, 7);
            sc[ib / 4] |= (l << (3 * (ib % 4))) as u16;
            blk[32 + ib] |= MASKS[shifts[ib] as usize];
            let xb = &xbl[BS * ib..BS * ib + BS];
            let mut weight = [0.0f32; BS];
            block_weights(xb, qw_of(ib), sigma2, &mut weight);
            let qh = blk[32 + ib] as usize;
            for k in 0..BS / 8 {
                let xx = table(shifts[ib], k);
                let gi = blk[2 * ib + k] as usize + ((qh << (8 - 4 * k)) & 0x700);
                let pg = &lat.grid[gi];
                for j in 0..8 {
                    let w = weight[8 * k + j];
                    let q = xx[((pg[j] - 1) / 2) as usize] * (2 * l + 1) as f32;
                    sumqx_f += w * q * xb[8 * k + j];
                    sumq2_f += w * q * q;
                }
            }
        }
        if sumq2_f > 0.0 {
            d = sumqx_f / sumq2_f;
        }
        let s = u16::from_le_bytes(f16_bytes(d * 1.1125f32));
        sc[0] |= (s & 0x000f) << 12;
        sc[1] |= (s & 0x00f0) << 8;
        sc[2] |= (s & 0x0f00) << 4;
        sc[3] |= s & 0xf000;
        for (i, v) in sc.iter().enumerate() {
            blk[48 + 2 * i..50 + 2 * i].copy_from_slice(&v.to_le_bytes());
        }
    }
}
