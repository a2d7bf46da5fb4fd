//! Block formats: the K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q8_K: 256-value super-blocks of
//! sub-blocks with quantized scales. Ported from `ggml/src/ggml-quants.c`; see the parent module for
//! the conventions.
//!
//! Every expression keeps C's evaluation order and types (f32 where C has `float`, int to float
//! conversions where C promotes), so the bytes are ggml's. The scale searches (`make_qx_quants`,
//! `make_qkx2_quants`, ...) are `pub(crate)`: the legacy and i-quant families use them too.

// Index loops mirror the C they port, so the two read side by side.
#![allow(clippy::needless_range_loop)]

use super::float::{get_f16, put_f16};
use super::Chunk;
use crate::gguf::TypeId;

#[cfg(target_arch = "x86_64")]
mod avx2;
mod lanes;
#[cfg(target_arch = "aarch64")]
mod neon;
mod q2_q3;
mod search;
pub(crate) use lanes::LANES;
use q2_q3::*;
pub(crate) use search::{
    get_scale_min_k4, make_qkx2_quants, make_qkx3_quants, make_qp_quants, make_qx_quants,
    nearest_int, qkx_groups, qx_groups,
};
use search::{make_q3_quants, pack_2bit};

pub(crate) const QK_K: usize = 256;
const GROUP_MAX_EPS: f32 = 1e-15;

/// Bytes per super-block.
const Q2_K_SIZE: usize = 84;
const Q3_K_SIZE: usize = 110;
const Q4_K_SIZE: usize = 144;
const Q5_K_SIZE: usize = 176;
const Q6_K_SIZE: usize = 210;
const Q8_K_SIZE: usize = 292;

// ----------------------------------------------------------------------------------- Q4_K / Q5_K
// Q4_K: d @0, dmin @2, scales[12] @4, qs[128] @16. Q5_K: the same, then qh[32] @16, qs[128] @48.

/// Packs 6-bit scale `ls` and min `lm` of sub-block `j` into the 12 scale bytes.
fn put_scale_min_k4(sc: &mut [u8], j: usize, ls: u8, lm: u8) {
    if j < 4 {
        sc[j] = ls;
        sc[j + 4] = lm;
    } else {
        sc[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
        sc[j - 4] |= (ls >> 4) << 6;
        sc[j] |= (lm >> 4) << 6;
    }
}

/// The ref paths' scale quantization: 6 bits relative to the largest scale and min.
fn q45_k_ref_scales(
    y: &mut [u8],
    scales: &[f32; 8],
    mins: &[f32; 8],
    max_scale: f32,
    max_min: f32,
) {
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    for j in 0..QK_K / 32 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        put_scale_min_k4(&mut y[4..16], j, ls, lm);
    }
    put_f16(y, 0, max_scale / 63.0);
    put_f16(y, 2, max_min / 63.0);
}

/// Levels `0..=nmax` of every value from the stored scales and mins (all Q4_K/Q5_K paths).
fn q45_k_levels(x: &[f32], y: &[u8], l: &mut [u8; QK_K], nmax: i32) {
    let d_all = get_f16(y, 0);
    let m_all = get_f16(y, 2);
    for j in 0..QK_K / 32 {
        let (sc, m) = get_scale_min_k4(j, &y[4..16]);
        let d = d_all * sc as f32;
        if d == 0.0 {
            continue;
        }
        let dm = m_all * m as f32;
        for ii in 0..32 {
            let li = nearest_int((x[32 * j + ii] + dm) / d);
            l[32 * j + ii] = li.clamp(0, nmax) as u8;
        }
    }
}

fn q4_k_pack(y: &mut [u8], l: &[u8; QK_K]) {
    let q = &mut y[16..144];
    for (c, j) in (0..QK_K).step_by(64).enumerate() {
        for k in 0..32 {
            q[32 * c + k] = l[j + k] | (l[j + k + 32] << 4);
        }
    }
}

fn q5_k_pack(y: &mut [u8], l: &[u8; QK_K]) {
    let (qh, ql) = y[16..176].split_at_mut(32);
    qh.fill(0);
    let mut m1 = 1u8;
    let mut m2 = 2u8;
    for (c, n) in (0..QK_K).step_by(64).enumerate() {
        for j in 0..32 {
            let mut l1 = l[n + j];
            if l1 > 15 {
                l1 -= 16;
                qh[j] |= m1;
            }
            let mut l2 = l[n + j + 32];
            if l2 > 15 {
                l2 -= 16;
                qh[j] |= m2;
            }
            ql[32 * c + j] = l1 | (l2 << 4);
        }
        m1 = m1.wrapping_shl(2);
        m2 = m2.wrapping_shl(2);
    }
}

/// `quantize_row_q4_K_ref` / `quantize_row_q5_K_ref` for one super-block (`nmax` 15 or 31).
fn q45_k_ref(x: &[f32], y: &mut [u8], nmax: i32, fast: bool) {
    let mut l = [0u8; QK_K];
    let mut laux = [0u8; 32];
    let mut weights = [0f32; 32];
    let mut mins = [0f32; QK_K / 32];
    let mut scales = [0f32; QK_K / 32];
    let (rmin, nstep) = if nmax == 15 { (-1.0, 20) } else { (-0.5, 15) };
    let mut max_scale = 0f32;
    let mut max_min = 0f32;
    let mut wall = [0f32; QK_K];
    for j in 0..QK_K / 32 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        if fast {
            wall[32 * j..32 * j + 32].copy_from_slice(&weights);
            continue;
        }
        (scales[j], mins[j]) = make_qkx2_quants(
            nmax,
            xs,
            &weights,
            &mut l[32 * j..32 * j + 32],
            &mut laux,
            rmin,
            0.1,
            nstep,
            false,
        );
    }
    if fast {
        qkx_groups::<32>(
            nmax,
            x,
            &wall,
            &mut l,
            &mut scales,
            &mut mins,
            rmin,
            0.1,
            nstep,
            false,
        );
    }
    for j in 0..QK_K / 32 {
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    q45_k_ref_scales(y, &scales, &mins, max_scale, max_min);
    q45_k_levels(x, y, &mut l, nmax);
    if nmax == 15 {
        q4_k_pack(y, &l);
    } else {
        q5_k_pack(y, &l);
    }
}

/// `quantize_row_q4_K_impl` / `quantize_row_q5_K_impl` for one super-block.
fn q45_k_impl(x: &[f32], y: &mut [u8], qw: Option<&[f32]>, nmax: i32, fast: bool) {
    let mut l = [0u8; QK_K];
    let mut laux = [0u8; 32];
    let mut ls = [0u8; QK_K / 32];
    let mut lm = [0u8; QK_K / 32];
    let mut weights = [0f32; 32];
    let mut sw = [0f32; QK_K / 32];
    let mut mins = [0f32; QK_K / 32];
    let mut scales = [0f32; QK_K / 32];
    let mut sum_x2 = 0f32;
    for &v in &x[..QK_K] {
        sum_x2 += v * v;
    }
    let sigma2 = 2.0 * sum_x2 / QK_K as f32;
    let av_x = sigma2.sqrt();
    let mut wall = [0f32; QK_K];
    for j in 0..QK_K / 32 {
        let xs = &x[32 * j..32 * j + 32];
        match qw {
            Some(q) => {
                for k in 0..32 {
                    weights[k] = q[32 * j + k] * (sigma2 + xs[k] * xs[k]).sqrt();
                }
            }
            None => {
                for k in 0..32 {
                    weights[k] = av_x + xs[k].abs();
                }
            }
        }
        let mut sumw = 0f32;
        for w in &weights {
            sumw += w;
        }
        sw[j] = sumw;
        if fast {
            wall[32 * j..32 * j + 32].copy_from_slice(&weights);
            continue;
        }
        (scales[j], mins[j]) = make_qkx3_quants(
            nmax,
            xs,
            Some(&weights),
            &mut l[32 * j..32 * j + 32],
            &mut laux,
            -0.9,
            0.05,
            36,
            false,
        );
    }
    if fast {
        qkx_groups::<32>(
            nmax,
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
    let d_block = make_qp_quants(63, &scales, &mut ls, &sw);
    let m_block = make_qp_quants(63, &mins, &mut lm, &sw);
    for j in 0..QK_K / 32 {
        // Q5_K clamps to 63 here, Q4_K does not; make_qp_quants never returns more, so both agree.
        put_scale_min_k4(&mut y[4..16], j, ls[j].min(63), lm[j].min(63));
    }
    put_f16(y, 0, d_block);
    put_f16(y, 2, m_block);
    q45_k_levels(x, y, &mut l, nmax);
    if nmax == 15 {
        q4_k_pack(y, &l);
    } else {
        q5_k_pack(y, &l);
    }
}

fn dequantize_q4_k(x: &[u8; Q4_K_SIZE], y: &mut [f32; QK_K]) {
    let d = get_f16(x, 0);
    let min = get_f16(x, 2);
    let sc = &x[4..16];
    for c in 0..4 {
        let q = &x[16 + 32 * c..16 + 32 * c + 32];
        let (s1, m1) = get_scale_min_k4(2 * c, sc);
        let (d1, m1) = (d * s1 as f32, min * m1 as f32);
        let (s2, m2) = get_scale_min_k4(2 * c + 1, sc);
        let (d2, m2) = (d * s2 as f32, min * m2 as f32);
        let out = &mut y[64 * c..64 * c + 64];
        for k in 0..32 {
            out[k] = d1 * (q[k] & 0xF) as f32 - m1;
            out[32 + k] = d2 * (q[k] >> 4) as f32 - m2;
        }
    }
}

fn dequantize_q5_k(x: &[u8; Q5_K_SIZE], y: &mut [f32; QK_K]) {
    let d = get_f16(x, 0);
    let min = get_f16(x, 2);
    let sc = &x[4..16];
    let qh = &x[16..48];
    let mut u1 = 1u8;
    let mut u2 = 2u8;
    for c in 0..4 {
        let ql = &x[48 + 32 * c..48 + 32 * c + 32];
        let (s1, m1) = get_scale_min_k4(2 * c, sc);
        let (d1, m1) = (d * s1 as f32, min * m1 as f32);
        let (s2, m2) = get_scale_min_k4(2 * c + 1, sc);
        let (d2, m2) = (d * s2 as f32, min * m2 as f32);
        let out = &mut y[64 * c..64 * c + 64];
        for k in 0..32 {
            let h1 = if qh[k] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[k] & u2 != 0 { 16 } else { 0 };
            out[k] = d1 * ((ql[k] & 0xF) as i32 + h1) as f32 - m1;
            out[32 + k] = d2 * ((ql[k] >> 4) as i32 + h2) as f32 - m2;
        }
        u1 = u1.wrapping_shl(2);
        u2 = u2.wrapping_shl(2);
    }
}

// ------------------------------------------------------------------------------------------ Q6_K
// ql[128] @0, qh[64] @128, scales[16] (i8) @192, d @208

/// `quantize_row_q6_K_ref` (`qw` None) and `quantize_row_q6_K_impl` for one super-block.
fn q6_k(x: &[f32], y: &mut [u8], qw: Option<&[f32]>, fast: bool) {
    let mut l = [0i8; QK_K];
    let mut scales = [0f32; QK_K / 16];
    let mut max_scale = 0f32;
    let mut max_abs_scale = 0f32;
    if fast {
        let mut w = [0f32; QK_K];
        match qw {
            Some(q) => w.copy_from_slice(&q[..QK_K]),
            None => {
                for (wi, v) in w.iter_mut().zip(x) {
                    *wi = v * v;
                }
            }
        }
        qx_groups::<16>(32, x, &w, &mut l, &mut scales);
    }
    for ib in 0..QK_K / 16 {
        if !fast {
            scales[ib] = make_qx_quants(
                32,
                &x[16 * ib..16 * ib + 16],
                &mut l[16 * ib..16 * ib + 16],
                1,
                qw.map(|q| &q[16 * ib..16 * ib + 16]),
            );
        }
        let scale = scales[ib];
        let abs_scale = scale.abs();
        if abs_scale > max_abs_scale {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }
    if max_abs_scale < GROUP_MAX_EPS {
        y[..Q6_K_SIZE].fill(0);
        put_f16(y, 208, 0.0);
        return;
    }
    let iscale = -128.0f32 / max_scale;
    put_f16(y, 208, 1.0 / iscale);
    for ib in 0..QK_K / 16 {
        y[192 + ib] = nearest_int(iscale * scales[ib]).min(127) as i8 as u8;
    }
    let d_all = get_f16(y, 208);
    for j in 0..QK_K / 16 {
        let d = d_all * (y[192 + j] as i8) as f32;
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            let li = nearest_int(x[16 * j + ii] / d).clamp(-32, 31);
            l[16 * j + ii] = (li + 32) as i8;
        }
    }
    let (ql, qh) = y[..192].split_at_mut(128);
    for (c, j) in (0..QK_K).step_by(128).enumerate() {
        let ql = &mut ql[64 * c..64 * c + 64];
        let qh = &mut qh[32 * c..32 * c + 32];
        for k in 0..32 {
            let q1 = (l[j + k] as u8) & 0xF;
            let q2 = (l[j + k + 32] as u8) & 0xF;
            let q3 = (l[j + k + 64] as u8) & 0xF;
            let q4 = (l[j + k + 96] as u8) & 0xF;
            ql[k] = q1 | (q3 << 4);
            ql[k + 32] = q2 | (q4 << 4);
            qh[k] = ((l[j + k] >> 4)
                | ((l[j + k + 32] >> 4) << 2)
                | ((l[j + k + 64] >> 4) << 4)
                | ((l[j + k + 96] >> 4) << 6)) as u8;
        }
    }
}

fn dequantize_q6_k(x: &[u8; Q6_K_SIZE], y: &mut [f32; QK_K]) {
    let d = get_f16(x, 208);
    for c in 0..2 {
        let ql = &x[64 * c..64 * c + 64];
        let qh = &x[128 + 32 * c..128 + 32 * c + 32];
        let sc = &x[192 + 8 * c..192 + 8 * c + 8];
        let out = &mut y[128 * c..128 * c + 128];
        for k in 0..32 {
            let is = k / 16;
            let q1 = ((ql[k] & 0xF) | ((qh[k] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[k + 32] & 0xF) | (((qh[k] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[k] >> 4) | (((qh[k] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[k + 32] >> 4) | (((qh[k] >> 6) & 3) << 4)) as i32 - 32;
            out[k] = d * (sc[is] as i8) as f32 * q1 as f32;
            out[k + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            out[k + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            out[k + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

// ------------------------------------------------------------------------------------------ Q8_K
// d (f32) @0, qs[256] (i8) @4, bsums[16] (i16) @260

/// `quantize_row_q8_K_ref` for one super-block. ggml leaves `bsums` untouched for an all-zero block;
/// here they are zero, as they would be for any sum of zero quants.
fn q8_k_ref(x: &[f32], y: &mut [u8]) {
    let mut max = 0f32;
    let mut amax = 0f32;
    for &v in &x[..QK_K] {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax == 0.0 {
        y[..Q8_K_SIZE].fill(0);
        return;
    }
    let iscale = -127.0f32 / max;
    for j in 0..QK_K {
        y[4 + j] = nearest_int(iscale * x[j]).min(127) as i8 as u8;
    }
    for j in 0..QK_K / 16 {
        let mut sum = 0i32;
        for ii in 0..16 {
            sum += y[4 + 16 * j + ii] as i8 as i32;
        }
        y[260 + 2 * j..262 + 2 * j].copy_from_slice(&(sum as i16).to_le_bytes());
    }
    y[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
}

fn dequantize_q8_k(x: &[u8; Q8_K_SIZE], y: &mut [f32; QK_K]) {
    let d = f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
    for (o, q) in y.iter_mut().zip(&x[4..260]) {
        *o = d * (*q as i8) as f32;
    }
}

// ---------------------------------------------------------------------------------------- dispatch

/// Decodes `dst.len()` values of type `id` if this family owns it; false otherwise. Lengths are checked.
pub(crate) fn dequantize(id: TypeId, src: &[u8], dst: &mut [f32]) -> bool {
    #[cfg(target_arch = "aarch64")]
    if super::has_neon() {
        // SAFETY: the CPU has NEON (checked just above), all `neon::dequantize` requires.
        if unsafe { neon::dequantize(id, src, dst) } {
            return true;
        }
    }
    dequantize_scalar(id, src, dst)
}

/// The scalar port of ggml's `dequantize_row_*`: the oracle of the SIMD decoders.
pub(crate) fn dequantize_scalar(id: TypeId, src: &[u8], dst: &mut [f32]) -> bool {
    match id {
        TypeId::Q2_K => each_block::<Q2_K_SIZE>(src, dst, dequantize_q2_k),
        TypeId::Q3_K => each_block::<Q3_K_SIZE>(src, dst, dequantize_q3_k),
        TypeId::Q4_K => each_block::<Q4_K_SIZE>(src, dst, dequantize_q4_k),
        TypeId::Q5_K => each_block::<Q5_K_SIZE>(src, dst, dequantize_q5_k),
        TypeId::Q6_K => each_block::<Q6_K_SIZE>(src, dst, dequantize_q6_k),
        TypeId::Q8_K => each_block::<Q8_K_SIZE>(src, dst, dequantize_q8_k),
        _ => return false,
    }
    true
}

/// Runs `f` on each super-block of `SIZE` bytes and its 256 values, as fixed-size arrays (no bounds
/// checks in the decoders' loops, which then vectorize).
#[inline(always)]
fn each_block<const SIZE: usize>(
    src: &[u8],
    dst: &mut [f32],
    f: impl Fn(&[u8; SIZE], &mut [f32; QK_K]),
) {
    for (x, y) in src.chunks_exact(SIZE).zip(dst.chunks_exact_mut(QK_K)) {
        if let (Ok(x), Ok(y)) = (x.try_into(), y.try_into()) {
            f(x, y);
        }
    }
}

/// Quantizes a checked chunk if this family owns type `id`; false otherwise.
///
/// As in ggml's `quantize_qN_K`: without an importance matrix every super-block goes through the
/// `_ref` function; with one, each row through the `_impl` function, super-block `i` of the row
/// weighted by `imatrix[256 * i..]`. Q8_K has no imatrix path and ignores it.
pub(crate) fn quantize(id: TypeId, c: &mut Chunk<'_>) -> bool {
    // The lane versions of the scale searches; the scalar port (`false`) is their oracle.
    const FAST: bool = true;
    let size = match id {
        TypeId::Q2_K => Q2_K_SIZE,
        TypeId::Q3_K => Q3_K_SIZE,
        TypeId::Q4_K => Q4_K_SIZE,
        TypeId::Q5_K => Q5_K_SIZE,
        TypeId::Q6_K => Q6_K_SIZE,
        TypeId::Q8_K => Q8_K_SIZE,
        _ => return false,
    };
    let npr = c.n_per_row;
    let blocks = c.src.chunks_exact(QK_K).zip(c.dst.chunks_exact_mut(size));
    for (n, (x, y)) in blocks.enumerate() {
        // The weights of this super-block: the imatrix slice at its position within the row.
        let at = (n * QK_K) % npr;
        let qw = c.imatrix.map(|q| &q[at..at + QK_K]);
        match (id, qw) {
            (TypeId::Q2_K, None) => q2_k_ref(x, y, FAST),
            (TypeId::Q2_K, Some(q)) => q2_k_impl(x, y, q, FAST),
            (TypeId::Q3_K, None) => q3_k_ref(x, y, FAST),
            (TypeId::Q3_K, q) => q3_k_impl(x, y, q, FAST),
            (TypeId::Q4_K, None) => q45_k_ref(x, y, 15, FAST),
            (TypeId::Q4_K, q) => q45_k_impl(x, y, q, 15, FAST),
            (TypeId::Q5_K, None) => q45_k_ref(x, y, 31, FAST),
            (TypeId::Q5_K, q) => q45_k_impl(x, y, q, 31, FAST),
            (TypeId::Q6_K, q) => q6_k(x, y, q, FAST),
            _ => q8_k_ref(x, y),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Super-blocks of gaussian-like values with a mix of scales, offsets, zero sub-blocks and
    /// outliers, and an importance matrix for them.
    fn data(seed: u64, nblocks: usize) -> (Vec<f32>, Vec<f32>) {
        let mut s = seed | 1;
        let mut uni = move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / 9007199254740992.0
        };
        let mut x = vec![0f32; nblocks * QK_K];
        for (i, v) in x.iter_mut().enumerate() {
            let g = ((uni() + uni() + uni() + uni() - 2.0) * 1.7320508) as f32;
            let b = i / QK_K;
            *v = match b % 6 {
                0 => g,
                1 if i % 97 == 0 => g * 40.0,
                1 if i / 16 % 5 == 2 => 0.0,
                2 => g * 1e-3 + 2e-4,
                3 if i / 128 % 2 == 1 => g.abs() * 3.0,
                3 => -g.abs() * 0.5,
                4 => g * 1e-6,
                _ => g * (1.0 + (i % 32) as f32),
            };
        }
        let im = (0..nblocks * QK_K)
            .map(|_| (0.05 + uni() * uni() * 4.0) as f32)
            .collect();
        (x, im)
    }

    /// Every K-quant block function gives the same bytes with the lane search as with the scalar port.
    #[test]
    fn lane_search_blocks_equal_scalar_blocks() {
        let (x, im) = data(42, 48);
        type Block = fn(&[f32], &mut [u8], Option<&[f32]>, bool);
        let cases: [(&str, usize, Block); 9] = [
            ("q3_K ref", Q3_K_SIZE, |x, y, _, f| q3_k_ref(x, y, f)),
            ("q2_K ref", Q2_K_SIZE, |x, y, _, f| q2_k_ref(x, y, f)),
            ("q2_K imatrix", Q2_K_SIZE, |x, y, q, f| {
                q2_k_impl(x, y, q.unwrap(), f)
            }),
            ("q3_K imatrix", Q3_K_SIZE, |x, y, q, f| {
                q3_k_impl(x, y, q, f)
            }),
            ("q4_K ref", Q4_K_SIZE, |x, y, _, f| q45_k_ref(x, y, 15, f)),
            ("q4_K imatrix", Q4_K_SIZE, |x, y, q, f| {
                q45_k_impl(x, y, q, 15, f)
            }),
            ("q5_K ref", Q5_K_SIZE, |x, y, _, f| q45_k_ref(x, y, 31, f)),
            ("q5_K imatrix", Q5_K_SIZE, |x, y, q, f| {
                q45_k_impl(x, y, q, 31, f)
            }),
            ("q6_K", Q6_K_SIZE, q6_k),
        ];
        for (name, size, f) in cases {
            for (b, (xb, qb)) in x.chunks_exact(QK_K).zip(im.chunks_exact(QK_K)).enumerate() {
                for qw in [None, Some(qb)] {
                    if name.ends_with("imatrix") && qw.is_none() && name.starts_with("q2") {
                        continue;
                    }
                    let mut slow = vec![0u8; size];
                    let mut fast = vec![0u8; size];
                    f(xb, &mut slow, qw, false);
                    f(xb, &mut fast, qw, true);
                    assert_eq!(slow, fast, "{name}, block {b}, imatrix {}", qw.is_some());
                }
            }
        }
    }
}
