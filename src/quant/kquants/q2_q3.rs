//! Q2_K and Q3_K: quantize (reference and importance-weighted) and dequantize, ported from
//! `ggml/src/ggml-quants.c`.

// Index loops mirror the C they port, so the two read side by side.
#![allow(clippy::needless_range_loop)]

use super::super::float::{get_f16, put_f16};
use super::*;

// ------------------------------------------------------------------------------------------ Q2_K
// scales[16] @0, qs[64] @16, d @80, dmin @82

/// Sets the 2-bit levels from the stored scales and packs them (the tail of both Q2_K paths).
pub(super) fn q2_k_finish(x: &[f32], y: &mut [u8], l: &mut [u8; QK_K]) {
    let d_all = get_f16(y, 80);
    let m_all = get_f16(y, 82);
    for j in 0..QK_K / 16 {
        let d = d_all * (y[j] & 0xF) as f32;
        if d == 0.0 {
            continue;
        }
        let dm = m_all * (y[j] >> 4) as f32;
        for ii in 0..16 {
            let li = nearest_int((x[16 * j + ii] + dm) / d);
            l[16 * j + ii] = li.clamp(0, 3) as u8;
        }
    }
    pack_2bit(l, &mut y[16..80]);
}

/// `quantize_row_q2_K_ref` for one super-block (`fast`: the scale search in lanes, same result).
pub(super) fn q2_k_ref(x: &[f32], y: &mut [u8], fast: bool) {
    let mut l = [0u8; QK_K];
    let mut laux = [0u8; 16];
    let mut weights = [0f32; 16];
    let mut mins = [0f32; QK_K / 16];
    let mut scales = [0f32; QK_K / 16];
    let q4scale = 15f32;
    let mut max_scale = 0f32;
    let mut max_min = 0f32;
    if fast {
        let mut w = [0f32; QK_K];
        for (wi, v) in w.iter_mut().zip(x) {
            *wi = v.abs();
        }
        qkx_groups::<16>(
            3,
            x,
            &w,
            &mut l,
            &mut scales,
            &mut mins,
            -0.5,
            0.1,
            15,
            true,
        );
    }
    for j in 0..QK_K / 16 {
        if !fast {
            let xs = &x[16 * j..16 * j + 16];
            for (w, v) in weights.iter_mut().zip(xs) {
                *w = v.abs();
            }
            (scales[j], mins[j]) = make_qkx2_quants(
                3,
                xs,
                &weights,
                &mut l[16 * j..16 * j + 16],
                &mut laux,
                -0.5,
                0.1,
                15,
                true,
            );
        }
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    if max_scale > 0.0 {
        let iscale = q4scale / max_scale;
        for j in 0..QK_K / 16 {
            y[j] = nearest_int(iscale * scales[j]) as u8;
        }
        put_f16(y, 80, max_scale / q4scale);
    } else {
        y[..16].fill(0);
        put_f16(y, 80, 0.0);
    }
    if max_min > 0.0 {
        let iscale = q4scale / max_min;
        for j in 0..QK_K / 16 {
            let li = nearest_int(iscale * mins[j]);
            y[j] |= li.wrapping_shl(4) as u8;
        }
        put_f16(y, 82, max_min / q4scale);
    } else {
        put_f16(y, 82, 0.0);
    }
    q2_k_finish(x, y, &mut l);
}

/// `quantize_row_q2_K_impl` for one super-block; `qw` is the importance of its 256 values.
pub(super) fn q2_k_impl(x: &[f32], y: &mut [u8], qw: &[f32], fast: bool) {
    let mut l = [0u8; QK_K];
    let mut laux = [0u8; 16];
    let mut mins = [0f32; QK_K / 16];
    let mut scales = [0f32; QK_K / 16];
    let mut sw = [0f32; QK_K / 16];
    let mut weight = [0f32; 16];
    let mut ls = [0u8; QK_K / 16];
    let mut lm = [0u8; QK_K / 16];
    let mut sumx2 = 0f32;
    for &v in &x[..QK_K] {
        sumx2 += v * v;
    }
    let sigma2 = sumx2 / QK_K as f32;
    let mut wall = [0f32; QK_K];
    for j in 0..QK_K / 16 {
        let xs = &x[16 * j..16 * j + 16];
        let q = &qw[16 * j..16 * j + 16];
        for k in 0..16 {
            weight[k] = q[k] * (sigma2 + xs[k] * xs[k]).sqrt();
        }
        for w in &weight {
            sw[j] += w;
        }
        if fast {
            wall[16 * j..16 * j + 16].copy_from_slice(&weight);
            continue;
        }
        (scales[j], mins[j]) = make_qkx3_quants(
            3,
            xs,
            Some(&weight),
            &mut l[16 * j..16 * j + 16],
            &mut laux,
            -0.9,
            0.05,
            36,
            false,
        );
    }
    if fast {
        qkx_groups::<16>(
            3,
            x,
            &wall,
            &mut l,
            &mut scales,
            &mut mins,
            -0.9,
            0.05,
            36,
            false,
        );
    }
    let dm = make_qp_quants(15, &scales, &mut ls, &sw);
    let mm = make_qp_quants(15, &mins, &mut lm, &sw);
    put_f16(y, 80, dm);
    put_f16(y, 82, mm);
    for j in 0..QK_K / 16 {
        y[j] = ls[j] | (lm[j] << 4);
    }
    q2_k_finish(x, y, &mut l);
}

pub(super) fn dequantize_q2_k(x: &[u8; Q2_K_SIZE], y: &mut [f32; QK_K]) {
    let d = get_f16(x, 80);
    let min = get_f16(x, 82);
    let mut out = 0;
    let mut is = 0;
    for n in (0..QK_K).step_by(128) {
        let q = &x[16 + n / 4..16 + n / 4 + 32];
        let mut shift = 0;
        for _ in 0..4 {
            for half in 0..2 {
                let sc = x[is];
                is += 1;
                let dl = d * (sc & 0xF) as f32;
                let ml = min * (sc >> 4) as f32;
                for &b in &q[16 * half..16 * half + 16] {
                    y[out] = dl * ((b >> shift) & 3) as f32 - ml;
                    out += 1;
                }
            }
            shift += 2;
        }
    }
}

// ------------------------------------------------------------------------------------------ Q3_K
// hmask[32] @0, qs[64] @32, scales[12] @96, d @108

/// Packs the 6-bit sub-block scale `l` (0..64) of sub-block `j` into `sc` (12 bytes, zeroed first).
pub(super) fn q3_k_put_scale(sc: &mut [u8], j: usize, l: i32) {
    if j < 8 {
        sc[j] = (l & 0xF) as u8;
    } else {
        sc[j - 8] |= ((l & 0xF) << 4) as u8;
    }
    let l = l >> 4;
    sc[j % 4 + 8] |= (l << (2 * (j / 4))) as u8;
}

/// Requantizes with the stored scales, then splits the high bit into `hmask` (both Q3_K paths).
pub(super) fn q3_k_finish(x: &[f32], y: &mut [u8], l: &mut [i8; QK_K]) {
    let d_all = get_f16(y, 108);
    for j in 0..QK_K / 16 {
        let sc = &y[96..108];
        let lo = (if j < 8 { sc[j] & 0xF } else { sc[j - 8] >> 4 }) as i8;
        let s = ((lo as i32 | ((((sc[8 + j % 4] >> (2 * (j / 4))) & 3) as i32) << 4)) - 32) as i8;
        let d = d_all * s as f32;
        if d == 0.0 {
            continue;
        }
        let xs: &[f32; 16] = x[16 * j..16 * j + 16].try_into().unwrap();
        let ls: &mut [i8; 16] = (&mut l[16 * j..16 * j + 16]).try_into().unwrap();
        for ii in 0..16 {
            let li = nearest_int(xs[ii] / d).clamp(-4, 3);
            ls[ii] = (li + 4) as i8;
        }
    }
    // ggml walks j = 0..256 with m = j % 32 and the bit j / 32: the high bit of level j goes to bit
    // j / 32 of hmask[j % 32].
    let mut hmask = [0u8; QK_K / 8];
    let mut lu = [0u8; QK_K];
    for bit in 0..8 {
        for m in 0..QK_K / 8 {
            let j = 32 * bit + m;
            let v = l[j];
            let high = (v > 3) as u8;
            hmask[m] |= high << bit;
            lu[j] = (v - 4 * high as i8) as u8;
        }
    }
    y[..32].copy_from_slice(&hmask);
    pack_2bit(&lu, &mut y[32..96]);
}

/// `quantize_row_q3_K_ref` for one super-block (`fast`: the scale search in lanes, same result).
pub(super) fn q3_k_ref(x: &[f32], y: &mut [u8], fast: bool) {
    let mut l = [0i8; QK_K];
    let mut scales = [0f32; QK_K / 16];
    let mut max_scale = 0f32;
    let mut amax = 0f32;
    if fast {
        for g in 0..2 {
            let xt = lanes::transpose::<16>(&x[128 * g..], 16);
            let mut lt = [[0i8; LANES]; 16];
            let sc = lanes::make_q3_quants_x8(4, &xt, &mut lt);
            for s in 0..LANES {
                scales[8 * g + s] = sc[s];
                for i in 0..16 {
                    l[128 * g + 16 * s + i] = lt[i][s];
                }
            }
        }
    }
    for j in 0..QK_K / 16 {
        if !fast {
            scales[j] = make_q3_quants(
                4,
                &x[16 * j..16 * j + 16],
                &mut l[16 * j..16 * j + 16],
                true,
            );
        }
        let scale = scales[j].abs();
        if scale > amax {
            amax = scale;
            max_scale = scales[j];
        }
    }
    y[96..108].fill(0);
    if max_scale != 0.0 {
        let iscale = -32.0f32 / max_scale;
        for j in 0..QK_K / 16 {
            let li = nearest_int(iscale * scales[j]) as i8 as i32;
            let li = li.clamp(-32, 31) + 32;
            q3_k_put_scale(&mut y[96..108], j, li as i8 as i32);
        }
        put_f16(y, 108, 1.0 / iscale);
    } else {
        put_f16(y, 108, 0.0);
    }
    q3_k_finish(x, y, &mut l);
}

/// `quantize_row_q3_K_impl` for one super-block.
pub(super) fn q3_k_impl(x: &[f32], y: &mut [u8], qw: Option<&[f32]>, fast: bool) {
    let mut l = [0i8; QK_K];
    let mut scales = [0f32; QK_K / 16];
    let mut weight = [0f32; 16];
    let mut sw = [0f32; QK_K / 16];
    let mut ls = [0i8; QK_K / 16];
    let mut sumx2 = 0f32;
    for &v in &x[..QK_K] {
        sumx2 += v * v;
    }
    let sigma2 = 2.0 * sumx2 / QK_K as f32;
    let mut wall = [0f32; QK_K];
    for j in 0..QK_K / 16 {
        let xs = &x[16 * j..16 * j + 16];
        match qw {
            Some(q) => {
                for k in 0..16 {
                    weight[k] = q[16 * j + k] * (sigma2 + xs[k] * xs[k]).sqrt();
                }
            }
            None => {
                for k in 0..16 {
                    weight[k] = xs[k] * xs[k];
                }
            }
        }
        let mut sumw = 0f32;
        for w in &weight {
            sumw += w;
        }
        sw[j] = sumw;
        if fast {
            wall[16 * j..16 * j + 16].copy_from_slice(&weight);
        } else {
            scales[j] = make_qx_quants(4, xs, &mut l[16 * j..16 * j + 16], 1, Some(&weight));
        }
    }
    if fast {
        qx_groups::<16>(4, x, &wall, &mut l, &mut scales);
    }
    y[96..108].fill(0);
    let d_block = make_qx_quants(32, &scales, &mut ls, 1, Some(&sw));
    for j in 0..QK_K / 16 {
        q3_k_put_scale(&mut y[96..108], j, ls[j] as i32);
    }
    put_f16(y, 108, d_block);
    q3_k_finish(x, y, &mut l);
}

pub(super) fn dequantize_q3_k(x: &[u8; Q3_K_SIZE], y: &mut [f32; QK_K]) {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let d_all = get_f16(x, 108);
    let rd = |o: usize| u32::from_le_bytes([x[o], x[o + 1], x[o + 2], x[o + 3]]);
    let mut aux = [rd(96), rd(100), rd(104), 0];
    let tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4);
    aux[3] = ((aux[1] >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4);
    aux[0] = (aux[0] & KMASK2) | ((tmp & KMASK1) << 4);
    aux[1] = (aux[1] & KMASK2) | (((tmp >> 2) & KMASK1) << 4);
    let mut scales = [0i8; 16];
    for (k, a) in aux.iter().enumerate() {
        for (b, v) in a.to_le_bytes().iter().enumerate() {
            scales[4 * k + b] = *v as i8;
        }
    }
    let hm = &x[..32];
    let mut m = 1u8;
    let mut out = 0;
    let mut is = 0;
    for n in (0..QK_K).step_by(128) {
        let q = &x[32 + n / 4..32 + n / 4 + 32];
        let mut shift = 0;
        for _ in 0..4 {
            for half in 0..2 {
                let dl = d_all * (scales[is] as i32 - 32) as f32;
                is += 1;
                for k in 16 * half..16 * half + 16 {
                    let v = ((q[k] >> shift) & 3) as i32 - if hm[k] & m != 0 { 0 } else { 4 };
                    y[out] = dl * v as f32;
                    out += 1;
                }
            }
            shift += 2;
            m = m.wrapping_shl(1);
        }
    }
}
