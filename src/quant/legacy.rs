//! Block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1: 32-value blocks with one or two f16 scales.
//! Ported from `ggml/src/ggml-quants.c`; see the parent module for the conventions.
//!
//! Without an importance matrix a chunk goes through `quantize_row_*_ref`; with one, each row goes
//! through `quantize_row_*_impl` (weights `qw[j] * sqrt(sigma2 + x[j]²)`, `sigma2` the row's mean
//! square), as `quantize_q4_0` etc. do. Q8_0 and Q8_1 have no imatrix path.

// Index loops mirror the C they port, so the two read side by side.
#![allow(clippy::needless_range_loop)]

use super::float::{get_f16, put_f16};
use super::kquants::{make_qkx3_quants, make_qx_quants, qkx_groups, qx_groups, LANES};
use super::Chunk;
use crate::gguf::TypeId;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "aarch64")]
mod neon;

const QK: usize = 32;

/// C's float to integer conversion as x86-64 does it (`cvttss2si`): truncation, and `INT_MIN` for
/// NaN or out-of-range values. Narrower C targets (`(int8_t)f`) take the low bits of this.
#[inline(always)]
fn c_trunc(f: f32) -> i32 {
    if f > -2147483904.0 && f < 2147483648.0 {
        f as i32
    } else {
        i32::MIN
    }
}

/// Bytes of a block of `id`, if it is one of this family's types.
fn block_size(id: TypeId) -> Option<usize> {
    matches!(
        id,
        TypeId::Q4_0 | TypeId::Q4_1 | TypeId::Q5_0 | TypeId::Q5_1 | TypeId::Q8_0 | TypeId::Q8_1
    )
    .then_some(id.ty().type_size as usize)
}

/// `amax` and the signed value that has it (the first one, as ggml's strict `<` keeps it).
fn signed_absmax(x: &[f32]) -> f32 {
    let mut amax = 0f32;
    let mut max = 0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

fn min_max(x: &[f32]) -> (f32, f32) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// Stores 5-bit levels: low nibbles in `qs` (`L[j]`, `L[j+16]`), fifth bits in the u32 `qh`.
fn put_q5(y: &mut [u8], qh_at: usize, l: impl Fn(usize) -> u8) {
    let mut qh = 0u32;
    for j in 0..QK / 2 {
        let (xi0, xi1) = (l(j), l(j + QK / 2));
        y[qh_at + 4 + j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
        qh |= (((xi0 & 0x10) >> 4) as u32) << j;
        qh |= (((xi1 & 0x10) >> 4) as u32) << (j + QK / 2);
    }
    y[qh_at..qh_at + 4].copy_from_slice(&qh.to_le_bytes());
}

/// Whether the SIMD block helpers (AVX2 on x86-64, NEON on aarch64) can run here.
#[inline]
fn has_simd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::has_avx2()
    }
    #[cfg(target_arch = "aarch64")]
    {
        super::has_neon()
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// [`signed_absmax`], through AVX2 when `fast` and the block allows it.
fn block_absmax(x: &[f32], fast: bool) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: `fast` is only true where the CPU has AVX2 (`has_simd`).
        if let Some(m) = unsafe { avx2::signed_absmax(x) } {
            return m;
        }
    }
    #[cfg(target_arch = "aarch64")]
    if fast {
        // SAFETY: `fast` is only true where the CPU has NEON (`has_simd`).
        if let Some(m) = unsafe { neon::signed_absmax(x) } {
            return m;
        }
    }
    let _ = fast;
    signed_absmax(x)
}

/// [`min_max`], through AVX2 when `fast` and the block allows it.
fn block_min_max(x: &[f32], fast: bool) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: `fast` is only true where the CPU has AVX2 (`has_simd`).
        if let Some(m) = unsafe { avx2::min_max(x) } {
            return m;
        }
    }
    #[cfg(target_arch = "aarch64")]
    if fast {
        // SAFETY: `fast` is only true where the CPU has NEON (`has_simd`).
        if let Some(m) = unsafe { neon::min_max(x) } {
            return m;
        }
    }
    let _ = fast;
    min_max(x)
}

/// `c_trunc((x[j] - sub) * id + add)` for the block, through AVX2 when `fast` and every level is
/// small; the scalar expression otherwise.
fn block_levels(x: &[f32], sub: f32, id: f32, add: f32, fast: bool) -> [i32; QK] {
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: `fast` is only true where the CPU has AVX2 (`has_simd`).
        if let Some(l) = unsafe { avx2::levels(x, sub, id, add) } {
            return l;
        }
    }
    #[cfg(target_arch = "aarch64")]
    if fast {
        // SAFETY: `fast` is only true where the CPU has NEON (`has_simd`).
        if let Some(l) = unsafe { neon::levels(x, sub, id, add) } {
            return l;
        }
    }
    let _ = fast;
    let mut l = [0i32; QK];
    for (o, &v) in l.iter_mut().zip(x) {
        *o = c_trunc((v - sub) * id + add);
    }
    l
}

// In the four functions below `x - 0.0` stands for ggml's plain `x` (it is `x`, bit for bit).

fn q4_0_ref(x: &[f32], y: &mut [u8], fast: bool) {
    let max = block_absmax(x, fast);
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(y, 0, d);
    let l = block_levels(x, 0.0, id, 8.5, fast);
    for j in 0..QK / 2 {
        let xi0 = (l[j] as i8 as i32).min(15) as u8;
        let xi1 = (l[QK / 2 + j] as i8 as i32).min(15) as u8;
        y[2 + j] = xi0 | (xi1 << 4);
    }
}

fn q4_1_ref(x: &[f32], y: &mut [u8], fast: bool) {
    let (min, max) = block_min_max(x, fast);
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(y, 0, d);
    put_f16(y, 2, min);
    let l = block_levels(x, min, id, 0.5, fast);
    for j in 0..QK / 2 {
        let xi0 = (l[j] as i8 as i32).min(15) as u8;
        let xi1 = (l[QK / 2 + j] as i8 as i32).min(15) as u8;
        y[4 + j] = xi0 | (xi1 << 4);
    }
}

fn q5_0_ref(x: &[f32], y: &mut [u8], fast: bool) {
    let max = block_absmax(x, fast);
    let d = max / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(y, 0, d);
    let l = block_levels(x, 0.0, id, 16.5, fast);
    put_q5(y, 2, |j| (l[j] as i8 as i32).min(31) as u8);
}

fn q5_1_ref(x: &[f32], y: &mut [u8], fast: bool) {
    let (min, max) = block_min_max(x, fast);
    let d = (max - min) / 31.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(y, 0, d);
    put_f16(y, 2, min);
    let l = block_levels(x, min, id, 0.5, fast);
    put_q5(y, 4, |j| l[j] as u8);
}

/// `(int)roundf(x)` as x86-64 C computes it (round half away from zero, then [`c_trunc`]), without
/// a libm call for the usual |x| < 2^23, where `x - trunc(x)` is exact.
#[inline(always)]
fn round_to_int(x: f32) -> i32 {
    if x.abs() < 8388608.0 {
        let t = x as i32;
        let f = x - t as f32;
        if f >= 0.5 {
            t + 1
        } else if f <= -0.5 {
            t - 1
        } else {
            t
        }
    } else {
        c_trunc(x.round())
    }
}

/// `quantize_row_q8_0_ref` (and the quants of `quantize_row_q8_1_ref`); returns `d`.
fn q8_quants(x: &[f32], qs: &mut [u8]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if super::has_avx2() {
        // SAFETY: the CPU has AVX2 (checked just above), all `avx2::q8_quants` requires.
        if let Some(d) = unsafe { avx2::q8_quants(x, qs) } {
            return d;
        }
    }
    #[cfg(target_arch = "aarch64")]
    if super::has_neon() {
        // SAFETY: the CPU has NEON (checked just above), all `neon::q8_quants` requires.
        if let Some(d) = unsafe { neon::q8_quants(x, qs) } {
            return d;
        }
    }
    q8_quants_scalar(x, qs)
}

fn q8_quants_scalar(x: &[f32], qs: &mut [u8]) -> f32 {
    let mut amax = 0f32;
    for &v in x {
        let a = v.abs();
        amax = if amax > a { amax } else { a };
    }
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = round_to_int(v * id) as u8;
    }
    d
}

fn q8_0_ref(x: &[f32], y: &mut [u8]) {
    let d = q8_quants(x, &mut y[2..34]);
    put_f16(y, 0, d);
}

fn q8_1_ref(x: &[f32], y: &mut [u8]) {
    let d = q8_quants(x, &mut y[4..36]);
    put_f16(y, 0, d);
    let sum: i32 = y[4..36].iter().map(|&q| q as i8 as i32).sum();
    put_f16(y, 2, sum as f32 * d);
}

/// The `_impl` paths: one row of blocks, `qw` the row's importance matrix. With `fast`, the scale
/// searches of eight blocks at a time run in lanes (same results; the scalar port is the oracle).
fn quantize_row_impl(id: TypeId, x: &[f32], y: &mut [u8], qw: &[f32], size: usize, fast: bool) {
    let mut sum_x2 = 0f32;
    for &v in x {
        sum_x2 += v * v;
    }
    let sigma2 = sum_x2 / x.len() as f32;
    let mut weight = vec![0f32; x.len()];
    for ((w, &q), &v) in weight.iter_mut().zip(qw).zip(x) {
        *w = q * (sigma2 + v * v).sqrt();
    }
    let nb = x.len() / QK;
    // Blocks done in lanes (a multiple of eight), the rest one by one.
    let nlanes = if fast { nb / LANES * LANES } else { 0 };
    let mut scales = vec![0f32; nb];
    let mut mins = vec![0f32; nb];
    let mut l = vec![0i8; x.len()];
    let mut lu = vec![0u8; x.len()];
    let mut laux = [0u8; QK];
    let symmetric = matches!(id, TypeId::Q4_0 | TypeId::Q5_0);
    let nmax = match id {
        TypeId::Q4_0 => 8,
        TypeId::Q5_0 => 16,
        TypeId::Q4_1 => 15,
        _ => 31,
    };
    let n = nlanes * QK;
    if symmetric {
        qx_groups::<QK>(
            nmax,
            &x[..n],
            &weight[..n],
            &mut l[..n],
            &mut scales[..nlanes],
        );
    } else {
        qkx_groups::<QK>(
            nmax,
            &x[..n],
            &weight[..n],
            &mut lu[..n],
            &mut scales[..nlanes],
            &mut mins[..nlanes],
            -0.9,
            0.05,
            36,
            false,
        );
    }
    for ib in nlanes..nb {
        let r = QK * ib..QK * ib + QK;
        if symmetric {
            scales[ib] =
                make_qx_quants(nmax, &x[r.clone()], &mut l[r.clone()], 1, Some(&weight[r]));
        } else {
            (scales[ib], mins[ib]) = make_qkx3_quants(
                nmax,
                &x[r.clone()],
                Some(&weight[r.clone()]),
                &mut lu[r],
                &mut laux,
                -0.9,
                0.05,
                36,
                false,
            );
        }
    }
    for (ib, yb) in y.chunks_exact_mut(size).enumerate().take(nb) {
        let l = &l[QK * ib..QK * ib + QK];
        let lu = &lu[QK * ib..QK * ib + QK];
        put_f16(yb, 0, scales[ib]);
        match id {
            TypeId::Q4_0 => {
                for j in 0..16 {
                    yb[2 + j] = (l[j] | (l[j + 16] << 4)) as u8;
                }
            }
            TypeId::Q5_0 => put_q5(yb, 2, |j| l[j] as u8),
            TypeId::Q4_1 => {
                put_f16(yb, 2, -mins[ib]);
                for j in 0..16 {
                    yb[4 + j] = lu[j] | (lu[j + 16] << 4);
                }
            }
            _ => {
                put_f16(yb, 2, -mins[ib]);
                put_q5(yb, 4, |j| lu[j]);
            }
        }
    }
}

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
        TypeId::Q4_0 => each_block::<18>(src, dst, |x, y| {
            let d = get_f16(x, 0);
            for j in 0..QK / 2 {
                let x0 = (x[2 + j] & 0x0F) as i32 - 8;
                let x1 = (x[2 + j] >> 4) as i32 - 8;
                y[j] = x0 as f32 * d;
                y[j + QK / 2] = x1 as f32 * d;
            }
        }),
        TypeId::Q4_1 => each_block::<20>(src, dst, |x, y| {
            let (d, m) = (get_f16(x, 0), get_f16(x, 2));
            for j in 0..QK / 2 {
                y[j] = (x[4 + j] & 0x0F) as f32 * d + m;
                y[j + QK / 2] = (x[4 + j] >> 4) as f32 * d + m;
            }
        }),
        TypeId::Q5_0 => each_block::<22>(src, dst, |x, y| {
            let d = get_f16(x, 0);
            let qh = u32::from_le_bytes([x[2], x[3], x[4], x[5]]);
            for j in 0..QK / 2 {
                let xh_0 = (((qh >> j) << 4) & 0x10) as u8;
                let xh_1 = ((qh >> (j + 12)) & 0x10) as u8;
                let x0 = ((x[6 + j] & 0x0F) | xh_0) as i32 - 16;
                let x1 = ((x[6 + j] >> 4) | xh_1) as i32 - 16;
                y[j] = x0 as f32 * d;
                y[j + QK / 2] = x1 as f32 * d;
            }
        }),
        TypeId::Q5_1 => each_block::<24>(src, dst, |x, y| {
            let (d, m) = (get_f16(x, 0), get_f16(x, 2));
            let qh = u32::from_le_bytes([x[4], x[5], x[6], x[7]]);
            for j in 0..QK / 2 {
                let xh_0 = (((qh >> j) << 4) & 0x10) as u8;
                let xh_1 = ((qh >> (j + 12)) & 0x10) as u8;
                let x0 = ((x[8 + j] & 0x0F) | xh_0) as i32;
                let x1 = ((x[8 + j] >> 4) | xh_1) as i32;
                y[j] = x0 as f32 * d + m;
                y[j + QK / 2] = x1 as f32 * d + m;
            }
        }),
        TypeId::Q8_0 => each_block::<34>(src, dst, |x, y| {
            let d = get_f16(x, 0);
            for (o, q) in y.iter_mut().zip(&x[2..]) {
                *o = (*q as i8) as f32 * d;
            }
        }),
        // ggml has no Q8_1 `to_float`; it decodes as `qs[j] * d` like Q8_0 (`s` is a cached sum).
        TypeId::Q8_1 => each_block::<36>(src, dst, |x, y| {
            let d = get_f16(x, 0);
            for (o, q) in y.iter_mut().zip(&x[4..]) {
                *o = (*q as i8) as f32 * d;
            }
        }),
        _ => return false,
    }
    true
}

/// Runs `f` on each block of `SIZE` bytes and its 32 values, as fixed-size arrays (no bounds checks
/// in the loops, which then vectorize).
#[inline(always)]
fn each_block<const SIZE: usize>(
    src: &[u8],
    dst: &mut [f32],
    f: impl Fn(&[u8; SIZE], &mut [f32; QK]),
) {
    for (x, y) in src.chunks_exact(SIZE).zip(dst.chunks_exact_mut(QK)) {
        if let (Ok(x), Ok(y)) = (x.try_into(), y.try_into()) {
            f(x, y);
        }
    }
}

/// Quantizes a checked chunk if this family owns type `id`; false otherwise.
pub(crate) fn quantize(id: TypeId, c: &mut Chunk<'_>) -> bool {
    let Some(size) = block_size(id) else {
        return false;
    };
    match (id, c.imatrix) {
        (TypeId::Q4_0 | TypeId::Q4_1 | TypeId::Q5_0 | TypeId::Q5_1, Some(qw)) => {
            let row = c.n_per_row / QK * size;
            for (x, y) in c
                .src
                .chunks_exact(c.n_per_row)
                .zip(c.dst.chunks_exact_mut(row))
            {
                quantize_row_impl(id, x, y, qw, size, true);
            }
        }
        _ => {
            let fast = has_simd();
            for (x, y) in c.src.chunks_exact(QK).zip(c.dst.chunks_exact_mut(size)) {
                match id {
                    TypeId::Q4_0 => q4_0_ref(x, y, fast),
                    TypeId::Q4_1 => q4_1_ref(x, y, fast),
                    TypeId::Q5_0 => q5_0_ref(x, y, fast),
                    TypeId::Q5_1 => q5_1_ref(x, y, fast),
                    TypeId::Q8_0 => q8_0_ref(x, y),
                    _ => q8_1_ref(x, y),
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_quants_fast_path_equals_scalar() {
        let mut s = 0xABCDu64;
        let mut uni = move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / 9007199254740992.0
        };
        for k in 0..4000 {
            let mut x: Vec<f32> = (0..QK).map(|_| ((uni() - 0.5) * 4.0) as f32).collect();
            match k % 8 {
                1 => x.iter_mut().for_each(|v| *v *= 1e-41), // subnormal scale: quants beyond 127
                2 => x.iter_mut().for_each(|v| *v = 0.0),
                3 => x[k % QK] = f32::NAN,
                4 => x[k % QK] = f32::INFINITY,
                5 => x.iter_mut().for_each(|v| *v = (*v * 8.0).round() / 8.0), // exact halves
                6 => x.iter_mut().for_each(|v| *v *= 3e38),
                _ => {}
            }
            let (mut a, mut b) = ([0u8; QK], [0u8; QK]);
            let da = q8_quants(&x, &mut a);
            let db = q8_quants_scalar(&x, &mut b);
            assert!(
                da.to_bits() == db.to_bits() || (da.is_nan() && db.is_nan()),
                "case {k}"
            );
            assert_eq!(a, b, "case {k}");
        }
    }

    /// The AVX2 block helpers of Q4_0/Q4_1/Q5_0/Q5_1 give the scalar port's bytes.
    #[test]
    fn ref_blocks_fast_equal_scalar() {
        let mut s = 0xF00Du64;
        let mut uni = move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / 9007199254740992.0
        };
        type Ref = fn(&[f32], &mut [u8], bool);
        let fns: [(Ref, usize); 4] = [
            (q4_0_ref, 18),
            (q4_1_ref, 20),
            (q5_0_ref, 22),
            (q5_1_ref, 24),
        ];
        for k in 0..4000 {
            let mut x: Vec<f32> = (0..QK).map(|_| ((uni() - 0.5) * 4.0) as f32).collect();
            match k % 10 {
                1 => x.iter_mut().for_each(|v| *v *= 1e-41),
                2 => x.iter_mut().for_each(|v| *v = 0.0),
                3 => x[k % QK] = f32::NAN,
                4 => x[k % QK] = f32::INFINITY,
                5 => x.iter_mut().for_each(|v| *v = (*v * 2.0).round()), // ties of |max|, ±0
                6 => x.iter_mut().for_each(|v| *v *= 3e38),
                7 => x.iter_mut().for_each(|v| *v = v.abs() + 1.0),
                8 => x[(k / 9) % QK] = -0.0,
                9 => {
                    // Values whose x * id lands within a few ulps of a level boundary (Q4_0 with
                    // 8 units to the largest magnitude, Q5_0 with 16): where an FMA or another
                    // order of operations would change the truncated level.
                    let unit = if k % 20 == 9 { 8.0f64 } else { 16.0 };
                    let s = 0.5 + uni() * 4.0;
                    for v in x.iter_mut() {
                        let m = (uni() * 2.0 * unit).floor() - unit + 0.5;
                        *v = (s / unit * (m + (uni() - 0.5) * 4e-6)) as f32;
                    }
                    x[k / 10 % QK] = -s as f32;
                }
                _ => {}
            }
            for (f, size) in fns {
                let (mut a, mut b) = (vec![0u8; size], vec![0u8; size]);
                f(&x, &mut a, has_simd());
                f(&x, &mut b, false);
                assert_eq!(a, b, "case {k}, block of {size} bytes, x = {x:?}");
            }
        }
    }

    #[test]
    fn round_to_int_is_c_roundf_then_truncation() {
        let mut vals = vec![
            0.5f32,
            -0.5,
            1.5,
            -1.5,
            2.5,
            0.49999997,
            -0.49999997,
            126.5,
            -127.5,
        ];
        vals.extend([
            f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
            8388608.5,
            3e9,
            -3e9,
            1e-40,
        ]);
        let mut u = 0u32;
        while let Some(n) = u.checked_add(4099) {
            vals.push(f32::from_bits(u));
            u = n;
        }
        for v in vals {
            assert_eq!(
                round_to_int(v),
                c_trunc(v.round()),
                "{v:e} ({:#010x})",
                v.to_bits()
            );
        }
    }

    /// The lane searches of the `_impl` paths give the scalar port's bytes, for rows whose block
    /// count is and is not a multiple of eight.
    #[test]
    fn impl_lanes_equal_scalar_rows() {
        let mut s = 0x5EEDu64;
        let mut uni = move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / 9007199254740992.0
        };
        for npr in [256usize, 352, 1024] {
            let x: Vec<f32> = (0..npr)
                .map(|i| {
                    let g = ((uni() + uni() + uni() - 1.5) * 2.0) as f32;
                    if i / 32 % 5 == 3 {
                        0.0
                    } else if i % 61 == 0 {
                        g * 30.0
                    } else {
                        g
                    }
                })
                .collect();
            let qw: Vec<f32> = (0..npr).map(|_| (0.05 + uni() * 3.0) as f32).collect();
            for id in [TypeId::Q4_0, TypeId::Q4_1, TypeId::Q5_0, TypeId::Q5_1] {
                let size = block_size(id).unwrap();
                let mut slow = vec![0u8; npr / QK * size];
                let mut fast = slow.clone();
                quantize_row_impl(id, &x, &mut slow, &qw, size, false);
                quantize_row_impl(id, &x, &mut fast, &qw, size, true);
                assert_eq!(slow, fast, "type {id}, row of {npr}");
            }
        }
    }
}
