//! Matrix-vector products on quantized weights, the way ggml's CPU backend computes them: the
//! activations are first quantized to the weight type's `vec_dot_type` (Q8_0 for the 32-value legacy
//! formats without a minimum, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants, F16 / BF16 for F16 / BF16
//! weights; see `type_traits_cpu` in `ggml-cpu/ggml-cpu.c`), then each weight row is dotted with
//! them by a scalar port of `ggml_vec_dot_*_generic` (`ggml-cpu/quants.c`), same integer sums and
//! same float order, or by its SIMD form. F16 and BF16 follow ggml's own orders (`float_dot`).
//! Types without a port here dequantize one weight row at a time and dot it in f32 with unquantized
//! activations (never the whole tensor).

// The ports keep the C code's index loops, so they can be read side by side with quants.c.
#![allow(clippy::needless_range_loop)]

use half::f16;
use rayon::prelude::*;

use crate::gguf::GgmlType;
use crate::quant::iquants::KVALUES_IQ4NL;
use crate::quant::{dequantize_row, quantize_chunk};

use super::float_dot::{self, Half};
pub use super::traits::act_kind;
use super::traits::{cpu_kernel, Tile};
use super::ExecError;
use crate::gguf::TypeId;

/// The activation format a weight type's dot product takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActKind {
    /// 32-value blocks of int8 with an f16 scale.
    Q8_0,
    /// 256-value blocks of int8 with an f32 scale and 16 partial sums.
    Q8K,
    /// 32-value blocks of int8 with an f16 scale and the f16 scaled sum of the quants.
    Q8_1,
    /// Activations rounded to f16 (F16 weights).
    F16,
    /// Activations rounded to bf16 (BF16 weights).
    Bf16,
    /// Plain f32 (F32 weights, and the dequantize-a-row fallback).
    F32,
}

/// Activation rows prepared for one weight type's dot product, in buffers that are reused from
/// call to call (no allocation once they have grown to the largest batch).
#[derive(Default)]
pub struct Acts {
    kind: Option<ActKind>,
    n: usize,
    cols: usize,
    /// Q8_0 / Q8_K rows of `stride` bytes.
    q: Vec<u8>,
    stride: usize,
    /// Q8_0 rows: each block's scale as f32 (what the kernels multiply by), row after row.
    ds: Vec<f32>,
    /// Plain f32 rows; for F16 and BF16 the values rounded to the half type (exact in f32).
    f: Vec<f32>,
    /// Q8_0 batches on AVX-512 VNNI: the rows packed in pairs for `x86_gemm`'s tiles.
    #[cfg(target_arch = "x86_64")]
    packed: Vec<super::x86_gemm::Line>,
    /// Q8_K batches for Q6_K weights on AVX-512 VNNI: the rows packed in pairs (valid when
    /// `packed_k_ok`, set by the latest preparation).
    #[cfg(target_arch = "x86_64")]
    packed_k: Vec<super::x86_gemm::Line>,
    #[cfg(target_arch = "x86_64")]
    packed_k_ok: bool,
}

impl Acts {
    /// Quantizes the `n` rows of `x` for weights of type `ty` (in parallel for batches).
    pub fn prepare(&mut self, ty: GgmlType, x: &[f32], n: usize) -> Result<(), ExecError> {
        let kind = act_kind(ty);
        let cols = x.len() / n.max(1);
        self.kind = Some(kind);
        self.n = n;
        self.cols = cols;
        match kind {
            ActKind::Q8_0 | ActKind::Q8K => {
                let qt = (if kind == ActKind::Q8_0 {
                    TypeId::Q8_0
                } else {
                    TypeId::Q8_K
                })
                .ty();
                let stride = qt.bytes_for(cols as u64).ok_or(ExecError::Shape {
                    tensor: "activation".into(),
                    message: format!("{cols} values are not whole {} blocks", qt.name),
                })? as usize;
                self.stride = stride;
                self.q.resize(n * stride, 0);
                #[cfg(target_arch = "x86_64")]
                let vnni = kernels() == Kernels::X86(super::x86::Level::Avx512Vnni);
                #[cfg(not(target_arch = "x86_64"))]
                let vnni = false;
                let quant_row = |(xr, yr): (&[f32], &mut [u8])| -> Result<(), ExecError> {
                    if kind == ActKind::Q8_0 && !REF_Q8_0 && vnni {
                        // SAFETY: `kernels` found AVX-512 VNNI.
                        #[cfg(target_arch = "x86_64")]
                        unsafe {
                            super::x86_gemm::quantize_q8_0(xr, yr)
                        };
                        Ok(())
                    } else if kind == ActKind::Q8_0 && !REF_Q8_0 {
                        for (xb, yb) in xr.chunks_exact(32).zip(yr.chunks_exact_mut(34)) {
                            quantize_q8_0_cpu(xb, yb);
                        }
                        Ok(())
                    } else if kind == ActKind::Q8K && vnni {
                        // SAFETY: `kernels` found AVX-512 VNNI.
                        #[cfg(target_arch = "x86_64")]
                        unsafe {
                            super::x86_gemm::quantize_q8_k(xr, yr)
                        };
                        Ok(())
                    } else {
                        quantize_chunk(qt, xr, yr, cols, None)?;
                        Ok(())
                    }
                };
                self.ds.clear();
                if n >= 8 {
                    x.par_chunks_exact(cols)
                        .zip(self.q.par_chunks_exact_mut(stride))
                        .try_for_each(quant_row)?;
                } else {
                    x.chunks_exact(cols)
                        .zip(self.q.chunks_exact_mut(stride))
                        .try_for_each(quant_row)?;
                }
                #[cfg(target_arch = "x86_64")]
                {
                    self.packed_k_ok =
                        vnni && n >= 2 && cpu_kernel(ty.id).and_then(|k| k.tile) == Some(Tile::Q6K);
                    if self.packed_k_ok {
                        // SAFETY: `kernels` found AVX-512 VNNI.
                        unsafe {
                            super::x86_gemm::pack_acts_k(&self.q, stride, n, &mut self.packed_k)
                        };
                    }
                }
                if kind == ActKind::Q8_0 {
                    self.ds.extend(
                        self.q
                            .chunks_exact(34)
                            .map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()),
                    );
                    #[cfg(target_arch = "x86_64")]
                    if n >= 2 && vnni {
                        // SAFETY: `kernels` found AVX-512 VNNI.
                        unsafe {
                            super::x86_gemm::pack_acts(
                                &self.q,
                                stride,
                                &self.ds,
                                n,
                                &mut self.packed,
                            )
                        };
                    }
                }
            }
            ActKind::Q8_1 => {
                let nb = cols / 32;
                if nb * 32 != cols {
                    return Err(ExecError::Shape {
                        tensor: "activation".into(),
                        message: format!("{cols} values are not whole q8_1 blocks"),
                    });
                }
                self.stride = nb * 36;
                self.q.resize(n * self.stride, 0);
                self.ds.clear();
                if n >= 8 {
                    x.par_chunks_exact(32)
                        .zip(self.q.par_chunks_exact_mut(36))
                        .for_each(|(xb, yb)| quantize_q8_1_cpu(xb, yb));
                } else {
                    for (xb, yb) in x.chunks_exact(32).zip(self.q.chunks_exact_mut(36)) {
                        quantize_q8_1_cpu(xb, yb);
                    }
                }
            }
            ActKind::F16 | ActKind::Bf16 => {
                let h = if kind == ActKind::F16 {
                    Half::F16
                } else {
                    Half::Bf16
                };
                self.f.clear();
                self.f.extend(x.iter().map(|&v| float_dot::round(h, v)));
            }
            ActKind::F32 => {
                self.f.clear();
                self.f.extend_from_slice(x);
            }
        }
        Ok(())
    }

    /// The format the rows are in, once prepared.
    pub fn kind(&self) -> Option<ActKind> {
        self.kind
    }

    /// Quantized rows: the buffer, its row stride in bytes and the number of rows.
    #[cfg_attr(not(any(test, target_arch = "aarch64")), allow(dead_code))]
    pub(crate) fn q_rows(&self) -> Option<(&[u8], usize, usize)> {
        matches!(
            self.kind,
            Some(ActKind::Q8_0 | ActKind::Q8K | ActKind::Q8_1)
        )
        .then_some((&self.q[..], self.stride, self.n))
    }
}

impl ActKind {
    /// The half type of F16 and BF16 activations.
    fn half(self) -> Option<Half> {
        match self {
            ActKind::F16 => Some(Half::F16),
            ActKind::Bf16 => Some(Half::Bf16),
            _ => None,
        }
    }
}

/// Use ggml's reference Q8_0 quantizer for activations instead of the x86 CPU backend's.
const REF_Q8_0: bool = false;

/// One block of `quantize_row_q8_0` as llama.cpp's CPU backend computes it for this target: the
/// formulas differ between its x86 and ARM builds (81 of 2,000,000 random blocks differ by one step),
/// and pocket follows the one llama.cpp runs on the same machine.
#[inline]
pub(crate) fn quantize_q8_0_cpu(x: &[f32], y: &mut [u8]) {
    #[cfg(target_arch = "aarch64")]
    quantize_q8_0_arm(x, y);
    #[cfg(not(target_arch = "aarch64"))]
    quantize_q8_0_x86(x, y);
}

/// One block of `quantize_row_q8_0` as ggml-cpu's ARM (NEON) code computes it
/// (`ggml-cpu/arch/arm/quants.c`): `d = max / 127`, the multiplier `1 / d` (not x86's `127 / max`),
/// values rounded half to even (`vcvtnq_s32_f32`) and stored as their low byte. `vmaxq_f32` makes the
/// maximum NaN when any value is NaN; the quants are then 0, as `vcvtnq` gives for NaN.
#[cfg_attr(not(any(test, target_arch = "aarch64")), allow(dead_code))]
pub(crate) fn quantize_q8_0_arm(x: &[f32], y: &mut [u8]) {
    let amax = x.iter().fold(0f32, |m, v| {
        let a = v.abs();
        if m.is_nan() || a.is_nan() {
            f32::NAN
        } else {
            m.max(a)
        }
    });
    let d = amax / 127.0;
    // C's `d ? 1.0f/d : 0.0f`: NaN is true.
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    y[..2].copy_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
    for (q, v) in y[2..34].iter_mut().zip(x) {
        // `as i32` saturates and maps NaN to 0, as `vcvtnq_s32_f32` does.
        *q = (v * id).round_ties_even() as i32 as i8 as u8;
    }
}

/// One block of `quantize_row_q8_0` as ggml-cpu's x86 (AVX/AVX2) code computes it, which is what
/// llama.cpp runs on x86 machines: the multiplier is `127 / max` (not `1 / d`) and values are
/// rounded half to even (`_mm256_round_ps`), where the reference rounds half away from zero.
/// On ARM only the tests use it (to compare the two formulas).
#[cfg_attr(target_arch = "aarch64", allow(dead_code))]
pub(crate) fn quantize_q8_0_x86(x: &[f32], y: &mut [u8]) {
    let max = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = max / 127.0;
    y[..2].copy_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
    let id = if max != 0.0 { 127.0 / max } else { 0.0 };
    for (q, v) in y[2..34].iter_mut().zip(x) {
        // Round half to even by the 1.5 * 2^23 trick (exact for |x| < 2^22; here |x| <= 127):
        // what `round_ties_even` gives, without a libm call on x86_64's baseline.
        const MAGIC: f32 = 12_582_912.0;
        *q = ((((v * id) + MAGIC) - MAGIC) as i32) as i8 as u8;
    }
}

/// One block of `quantize_row_q8_1` as llama.cpp's CPU backend computes it for this target: the
/// quants of [`quantize_q8_0_cpu`], and `s = d * sum(quants)` rounded to f16.
#[inline]
pub(crate) fn quantize_q8_1_cpu(x: &[f32], y: &mut [u8]) {
    let mut b = [0u8; 34];
    quantize_q8_0_cpu(x, &mut b);
    let d = h(&b, 0);
    let sum: i32 = b[2..].iter().map(|&q| q as i8 as i32).sum();
    y[..2].copy_from_slice(&b[..2]);
    y[2..4].copy_from_slice(&f16::from_f32(d * sum as f32).to_bits().to_le_bytes());
    y[4..36].copy_from_slice(&b[2..]);
}

#[inline(always)]
fn h(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// `ggml_vec_dot_q8_0_q8_0_generic`.
#[inline(always)]
pub(crate) fn dot_q8_0(x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0f32;
    for (xb, yb) in x.chunks_exact(34).zip(y.chunks_exact(34)) {
        let mut sumi = 0i32;
        for j in 0..32 {
            sumi += xb[2 + j] as i8 as i32 * yb[2 + j] as i8 as i32;
        }
        sumf += sumi as f32 * (h(xb, 0) * h(yb, 0));
    }
    sumf
}

/// `ggml_vec_dot_q4_0_q8_0_generic`.
#[inline(always)]
pub(crate) fn dot_q4_0(x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0f32;
    for (xb, yb) in x.chunks_exact(18).zip(y.chunks_exact(34)) {
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..16 {
            let v0 = (xb[2 + j] & 0x0f) as i32 - 8;
            let v1 = (xb[2 + j] >> 4) as i32 - 8;
            s0 += v0 * yb[2 + j] as i8 as i32;
            s1 += v1 * yb[2 + j + 16] as i8 as i32;
        }
        sumf += (s0 + s1) as f32 * h(xb, 0) * h(yb, 0);
    }
    sumf
}

/// `ggml_vec_dot_q5_0_q8_0_generic`.
#[inline(always)]
pub(crate) fn dot_q5_0(x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0f32;
    for (xb, yb) in x.chunks_exact(22).zip(y.chunks_exact(34)) {
        let qh = u32::from_le_bytes([xb[2], xb[3], xb[4], xb[5]]);
        let qs = &xb[6..22];
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..16 {
            let xh0 = (((qh >> j) & 1) << 4) as u8;
            let xh1 = ((qh & (1u32 << (j + 16))) >> (j + 12)) as u8;
            let x0 = ((qs[j] & 0x0f) | xh0) as i32 - 16;
            let x1 = ((qs[j] >> 4) | xh1) as i32 - 16;
            s0 += x0 * yb[2 + j] as i8 as i32;
            s1 += x1 * yb[2 + j + 16] as i8 as i32;
        }
        sumf += (h(xb, 0) * h(yb, 0)) * (s0 + s1) as f32;
    }
    sumf
}

/// `ggml_vec_dot_q4_1_q8_1_generic`.
#[inline(always)]
pub(crate) fn dot_q4_1(x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0f32;
    for (xb, yb) in x.chunks_exact(20).zip(y.chunks_exact(36)) {
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..16 {
            s0 += (xb[4 + j] & 0x0f) as i32 * yb[4 + j] as i8 as i32;
            s1 += (xb[4 + j] >> 4) as i32 * yb[4 + j + 16] as i8 as i32;
        }
        sumf += (h(xb, 0) * h(yb, 0)) * (s0 + s1) as f32 + h(xb, 2) * h(yb, 2);
    }
    sumf
}

/// `ggml_vec_dot_q5_1_q8_1_generic`.
#[inline(always)]
pub(crate) fn dot_q5_1(x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0f32;
    for (xb, yb) in x.chunks_exact(24).zip(y.chunks_exact(36)) {
        let qh = u32::from_le_bytes([xb[4], xb[5], xb[6], xb[7]]);
        let qs = &xb[8..24];
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..16 {
            let xh0 = ((qh >> j) << 4) & 0x10;
            let xh1 = (qh >> (j + 12)) & 0x10;
            let x0 = ((qs[j] & 0x0f) as u32 | xh0) as i32;
            let x1 = ((qs[j] >> 4) as u32 | xh1) as i32;
            s0 += x0 * yb[4 + j] as i8 as i32;
            s1 += x1 * yb[4 + j + 16] as i8 as i32;
        }
        sumf += (h(xb, 0) * h(yb, 0)) * (s0 + s1) as f32 + h(xb, 2) * h(yb, 2);
    }
    sumf
}

const Q8K_SIZE: usize = 292;

#[inline(always)]
fn q8k_d(y: &[u8]) -> f32 {
    f32::from_le_bytes([y[0], y[1], y[2], y[3]])
}

#[inline(always)]
fn q8k_bsum(y: &[u8], j: usize) -> i32 {
    i16::from_le_bytes([y[260 + 2 * j], y[261 + 2 * j]]) as i32
}

/// The 8 scales and 8 mins of a Q4_K/Q5_K super-block (the `utmp` shuffle of the generic code).
#[inline(always)]
fn scales_mins(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..8 {
        if j < 4 {
            sc[j] = s[j] & 63;
            mn[j] = s[j + 4] & 63;
        } else {
            sc[j] = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
            mn[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
        }
    }
    (sc, mn)
}

/// `ggml_vec_dot_q4_K_q8_K_generic` and `ggml_vec_dot_q5_K_q8_K_generic` (`high` = Q5_K).
#[inline(always)]
pub(crate) fn dot_q45_k(x: &[u8], y: &[u8], high: bool) -> f32 {
    let bs = if high { 176 } else { 144 };
    let mut sums = [0f32; 8];
    let mut sumf = 0f32;
    for (xb, yb) in x.chunks_exact(bs).zip(y.chunks_exact(Q8K_SIZE)) {
        let d = h(xb, 0);
        let dmin = h(xb, 2);
        let (scales, mins) = scales_mins(&xb[4..16]);
        let (qh, qs) = if high {
            (&xb[16..48], &xb[48..176])
        } else {
            (&xb[0..0], &xb[16..144])
        };
        let mut a = [0i8; 256];
        let mut m = 1u8;
        for j in 0..4 {
            let q4 = &qs[32 * j..32 * j + 32];
            for l in 0..32 {
                a[64 * j + l] = (q4[l] & 0xf) as i8;
                a[64 * j + 32 + l] = (q4[l] >> 4) as i8;
                if high {
                    if qh[l] & m != 0 {
                        a[64 * j + l] += 16;
                    }
                    if qh[l] & (m << 1) != 0 {
                        a[64 * j + 32 + l] += 16;
                    }
                }
            }
            m <<= 2;
        }
        let q8 = &yb[4..260];
        let mut sumi = 0i32;
        for j in 0..16 {
            sumi += q8k_bsum(yb, j) * mins[j / 2] as i32;
        }
        let mut aux32 = [0i32; 8];
        for j in 0..8 {
            let scale = scales[j] as i32;
            for k in 0..4 {
                let o = 32 * j + 8 * k;
                for l in 0..8 {
                    let p = (q8[o + l] as i8 as i16) * (a[o + l] as i16);
                    aux32[l] += scale * p as i32;
                }
            }
        }
        let dd = d * q8k_d(yb);
        for l in 0..8 {
            sums[l] += dd * aux32[l] as f32;
        }
        let dm = dmin * q8k_d(yb);
        sumf -= dm * sumi as f32;
    }
    for s in sums {
        sumf += s;
    }
    sumf
}

/// `ggml_vec_dot_q6_K_q8_K_generic`.
#[inline(always)]
pub(crate) fn dot_q6_k(x: &[u8], y: &[u8]) -> f32 {
    let mut sums = [0f32; 8];
    for (xb, yb) in x.chunks_exact(210).zip(y.chunks_exact(Q8K_SIZE)) {
        let (ql, qh, sc) = (&xb[0..128], &xb[128..192], &xb[192..208]);
        let d = h(xb, 208);
        let mut a = [0i8; 256];
        for half in 0..2 {
            let q4 = &ql[64 * half..];
            let qh = &qh[32 * half..];
            let a = &mut a[128 * half..];
            for l in 0..32 {
                a[l] = ((q4[l] & 0xf) | ((qh[l] & 3) << 4)) as i8 - 32;
                a[l + 32] = ((q4[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                a[l + 64] = ((q4[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                a[l + 96] = ((q4[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
            }
        }
        let q8 = &yb[4..260];
        let mut aux32 = [0i32; 8];
        for j in 0..16 {
            let scale = sc[j] as i8 as i32;
            for k in 0..2 {
                let o = 16 * j + 8 * k;
                for l in 0..8 {
                    let p = (q8[o + l] as i8 as i16) * (a[o + l] as i16);
                    aux32[l] += scale * p as i32;
                }
            }
        }
        let dd = d * q8k_d(yb);
        for l in 0..8 {
            sums[l] += dd * aux32[l] as f32;
        }
    }
    let mut sumf = 0f32;
    for s in sums {
        sumf += s;
    }
    sumf
}

/// `ggml_vec_dot_iq4_nl_q8_0_generic`.
#[inline(always)]
pub(crate) fn dot_iq4_nl(x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0f32;
    for (xb, yb) in x.chunks_exact(18).zip(y.chunks_exact(34)) {
        let d = h(yb, 0) * h(xb, 0);
        let (mut s1, mut s2) = (0i32, 0i32);
        for j in 0..16 {
            s1 += yb[2 + j] as i8 as i32 * KVALUES_IQ4NL[(xb[2 + j] & 0xf) as usize] as i32;
            s2 += yb[18 + j] as i8 as i32 * KVALUES_IQ4NL[(xb[2 + j] >> 4) as usize] as i32;
        }
        sumf += d * (s1 + s2) as f32;
    }
    sumf
}

/// `ggml_vec_dot_iq4_xs_q8_K_generic`.
#[inline(always)]
pub(crate) fn dot_iq4_xs(x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0f32;
    for (xb, yb) in x.chunks_exact(136).zip(y.chunks_exact(Q8K_SIZE)) {
        let d4d8 = h(xb, 0) * q8k_d(yb);
        let mut hh = u16::from_le_bytes([xb[2], xb[3]]);
        let mut qs = &xb[8..136];
        let mut q8 = &yb[4..260];
        for ib in (0..8).step_by(2) {
            let sl = xb[4 + ib / 2];
            let ls1 = (sl & 0xf) | ((hh << 4) & 0x30) as u8;
            let ls2 = (sl >> 4) | ((hh << 2) & 0x30) as u8;
            hh >>= 4;
            for ls in [ls1, ls2] {
                let d = d4d8 * (ls as i32 - 32) as f32;
                let (mut s1, mut s2) = (0i32, 0i32);
                for j in 0..16 {
                    s1 += q8[j] as i8 as i32 * KVALUES_IQ4NL[(qs[j] & 0xf) as usize] as i32;
                    s2 += q8[j + 16] as i8 as i32 * KVALUES_IQ4NL[(qs[j] >> 4) as usize] as i32;
                }
                sumf += d * (s1 + s2) as f32;
                qs = &qs[16..];
                q8 = &q8[32..];
            }
        }
    }
    sumf
}

/// `ggml_vec_dot_f32` (generic: summed in double).
#[inline(always)]
pub(crate) fn dot_f32(x: &[f32], y: &[f32]) -> f32 {
    let mut s = 0f64;
    for (a, b) in x.iter().zip(y) {
        s += (a * b) as f64;
    }
    s as f32
}

/// The SIMD kernels this process uses: chosen once from the level of [`crate::isa`] (none at
/// `POCKET_CPU=scalar` or with `POCKET_FORCE_SCALAR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    X86(super::x86::Level),
}

/// The kernels in use (see [`Kernels`]).
pub fn kernels() -> Kernels {
    static K: std::sync::OnceLock<Kernels> = std::sync::OnceLock::new();
    *K.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if let Some(l) = super::x86::detect() {
            return Kernels::X86(l);
        }
        Kernels::Scalar
    })
}

/// `out[t] = w · y[t]` for the activation rows `q` (`stride` bytes each) with a SIMD kernel;
/// false when `k` has none for the type.
#[inline]
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn simd_dots(
    k: Kernels,
    ty: TypeId,
    r8: bool,
    w: &[u8],
    q: &[u8],
    stride: usize,
    ds: &[f32],
    out: &mut [f32],
) -> bool {
    match k {
        Kernels::Scalar => false,
        // SAFETY: `detect` found the CPU features each kernel set is compiled for.
        #[cfg(target_arch = "x86_64")]
        Kernels::X86(level) if matches!(ty, TypeId::Q4_1 | TypeId::Q5_1) => unsafe {
            super::x86_legacy::dots(level, ty, w, q, stride, out)
        },
        // SAFETY: `detect` found the CPU features each kernel set is compiled for.
        #[cfg(target_arch = "x86_64")]
        Kernels::X86(super::x86::Level::Avx2) => unsafe {
            super::x86::avx2::dots(ty, r8, w, q, stride, ds, out)
        },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Kernels::X86(super::x86::Level::Avx512Vnni) => unsafe {
            super::x86::vnni::dots(ty, r8, w, q, stride, ds, out)
        },
    }
}

/// The scalar reference dot of one weight row with one quantized activation row.
#[inline]
pub(crate) fn scalar_dot(ty: TypeId, w: &[u8], y: &[u8]) -> f32 {
    (cpu_kernel(ty)
        .expect("act_kind gives Q8 activations only to kernel rows")
        .dot)(w, y)
}

/// A weight matrix borrowed from the mapped file: `rows` rows of `cols` values of type `ty`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub name: &'a str,
    pub ty: GgmlType,
    pub data: &'a [u8],
    pub cols: usize,
    pub rows: usize,
    pub row_bytes: usize,
}

thread_local! {
    /// Per-thread scratch: activations for `Mat::matmul`, the transposed product, a dequantized row.
    static SCRATCH: std::cell::RefCell<(Acts, Vec<f32>)> = std::cell::RefCell::new(Default::default());
    static ROW: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Mat<'_> {
    /// A matrix of no rows (`cols` wide, f32): the place of a weight a layer does not have
    /// (lfm2's conv layers have no attention matrices).
    pub fn empty(cols: usize) -> Mat<'static> {
        Mat {
            name: "",
            ty: crate::gguf::spec::ggml_type(0).expect("f32 is type 0"),
            data: &[],
            cols,
            rows: 0,
            row_bytes: cols * 4,
        }
    }

    /// Whether llama.cpp's CPU backend repacks this matrix into 8-row interleaved blocks on x86
    /// (`ggml_repack_get_optimal_repack_type` with AVX2): its products then sum in the order of
    /// the repacked kernels, which the x86 kernels follow.
    pub fn repacked(&self) -> bool {
        cpu_kernel(self.ty.id).is_some_and(|k| k.repack_x86) && self.rows.is_multiple_of(8)
    }

    /// Row `r` as f32 (`get_rows`).
    pub fn row_f32(&self, r: usize, out: &mut [f32]) -> Result<(), ExecError> {
        let b = &self.data[r * self.row_bytes..(r + 1) * self.row_bytes];
        dequantize_row(self.ty, b, out)?;
        Ok(())
    }

    /// The batch tiles of `x86_gemm` this product runs on, if any: they write a task's rows
    /// token-major.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    fn batch_tiles(&self, k: Kernels, a: &Acts) -> Option<Tile> {
        #[cfg(target_arch = "x86_64")]
        if k == Kernels::X86(super::x86::Level::Avx512Vnni) && a.n >= 2 {
            let tile = cpu_kernel(self.ty.id)?.tile?;
            let r8 = self.repacked();
            return match tile {
                // The 32-value block types, unless repacked (tinyBLAS's order).
                Tile::B32 if !r8 => Some(tile),
                // Q6_K: its activations packed in pairs by `Acts::prepare`.
                Tile::Q6K if a.packed_k_ok => Some(tile),
                // Repacked Q4_K, four tokens or more (llama.cpp's GEMM order).
                Tile::Q4K if r8 && a.n >= 4 => Some(tile),
                _ => None,
            };
        }
        None
    }

    /// Rows `r0..` of the product into `dst`: row-major (`n` values per row), or token-major
    /// when [`Mat::batch_tiles`] applies.
    fn rows_into(&self, k: Kernels, r0: usize, dst: &mut [f32], a: &Acts) -> Result<(), ExecError> {
        let n = a.n;
        let r8 = self.repacked();
        // All the rows in one call of the SIMD kernels when they take this type.
        #[cfg(target_arch = "x86_64")]
        if let (Kernels::X86(level), Some(ActKind::Q8_0 | ActKind::Q8K)) = (k, a.kind) {
            let rows = dst.len() / n.max(1);
            let w = &self.data[r0 * self.row_bytes..(r0 + rows) * self.row_bytes];
            let (ty, rb) = (self.ty.id, self.row_bytes);
            // Batches on the tiles of x86_gemm (token-major `dst`).
            if let Some(tile) = self.batch_tiles(k, a) {
                // SAFETY: `batch_tiles` is only Some when `detect` found AVX-512 VNNI.
                unsafe {
                    match tile {
                        Tile::B32 => {
                            super::x86_gemm::b32_rows(ty, w, rb, &a.packed, n, dst);
                        }
                        Tile::Q6K => super::x86_gemm::q6k_rows(w, rb, &a.packed_k, n, dst),
                        Tile::Q4K => super::x86_gemm::q4k_rows(w, rb, &a.q, a.stride, n, dst),
                    }
                }
                return Ok(());
            }
            // SAFETY: `detect` found the CPU features each kernel set is compiled for.
            let done = unsafe {
                match level {
                    super::x86::Level::Avx2 => {
                        super::x86::avx2::dots_rows(ty, r8, w, rb, &a.q, a.stride, &a.ds, n, dst)
                    }
                    super::x86::Level::Avx512Vnni => {
                        super::x86::vnni::dots_rows(ty, r8, w, rb, &a.q, a.stride, &a.ds, n, dst)
                    }
                }
            };
            if done {
                return Ok(());
            }
        }
        if let Some(h) = a.kind.and_then(ActKind::half) {
            return self.half_rows_into(k, h, r0, dst, a);
        }
        for (i, d) in dst.chunks_exact_mut(n).enumerate() {
            let r = r0 + i;
            let w = &self.data[r * self.row_bytes..(r + 1) * self.row_bytes];
            match a.kind {
                Some(ActKind::Q8_0 | ActKind::Q8K | ActKind::Q8_1) => {
                    if !simd_dots(k, self.ty.id, r8, w, &a.q, a.stride, &a.ds, d) {
                        for (t, o) in d.iter_mut().enumerate() {
                            *o = scalar_dot(self.ty.id, w, &a.q[t * a.stride..(t + 1) * a.stride]);
                        }
                    }
                }
                Some(ActKind::F16 | ActKind::Bf16) => unreachable!("taken above"),
                Some(ActKind::F32) => ROW.with(|tmp| -> Result<(), ExecError> {
                    let mut tmp = tmp.borrow_mut();
                    tmp.resize(self.cols, 0.0);
                    if self.ty.id == TypeId::F32 {
                        for (o, c) in tmp.iter_mut().zip(w.chunks_exact(4)) {
                            *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                        }
                    } else {
                        dequantize_row(self.ty, w, &mut tmp)?;
                    }
                    for (t, o) in d.iter_mut().enumerate() {
                        *o = dot_f32(&tmp, &a.f[t * a.cols..(t + 1) * a.cols]);
                    }
                    Ok(())
                })?,
                None => unreachable!("activations are prepared before use"),
            }
        }
        Ok(())
    }

    /// [`Mat::rows_into`] for F16 and BF16 weights: ggml's order for this product
    /// (`float_dot::order`), by the AVX2 forms when SIMD kernels are in use, else the scalar port.
    fn half_rows_into(
        &self,
        k: Kernels,
        h: Half,
        r0: usize,
        dst: &mut [f32],
        a: &Acts,
    ) -> Result<(), ExecError> {
        let n = a.n;
        let rows = dst.len() / n.max(1);
        let rb = self.row_bytes;
        let w = &self.data[r0 * rb..(r0 + rows) * rb];
        let f16_vec = crate::isa::cpu().numerics().f16_vec;
        let order = float_dot::order(h, f16_vec, n, self.rows, self.cols);
        #[cfg(target_arch = "x86_64")]
        if k != Kernels::Scalar {
            // SAFETY: `kernels` found AVX2, FMA and F16C (every x86 kernel level has them).
            if unsafe { super::x86_float::rows(h, order, w, rb, &a.f, n, dst) } {
                return Ok(());
            }
        }
        let _ = k;
        ROW.with(|tmp| {
            let mut tmp = tmp.borrow_mut();
            tmp.resize(self.cols, 0.0);
            for (wr, d) in w.chunks_exact(rb).zip(dst.chunks_exact_mut(n)) {
                float_dot::widen(h, wr, &mut tmp);
                for (t, o) in d.iter_mut().enumerate() {
                    *o = float_dot::dot(order, &tmp, &a.f[t * a.cols..(t + 1) * a.cols]);
                }
            }
        });
        Ok(())
    }

    /// `out[t * rows + r] = W[r] · x[t]` for the `n` rows of `x` (each `cols` long).
    pub fn matmul(&self, x: &[f32], n: usize, out: &mut [f32]) -> Result<(), ExecError> {
        SCRATCH.with(|s| {
            let (acts, tr) = &mut *s.borrow_mut();
            acts.prepare(self.ty, x, n)?;
            self.matmul_acts_with(acts, out, tr)
        })
    }

    /// The product with activations already prepared for this weight type (several matrices
    /// with the same input and type share one preparation).
    pub fn matmul_acts(&self, acts: &Acts, out: &mut [f32]) -> Result<(), ExecError> {
        SCRATCH.with(|s| {
            let (_, tr) = &mut *s.borrow_mut();
            self.matmul_acts_with(acts, out, tr)
        })
    }

    /// Row-major over weights (each weight row read once for all tokens) on rayon's pool, in
    /// about 8 tasks per thread, transposed at the end.
    fn matmul_acts_with(
        &self,
        a: &Acts,
        out: &mut [f32],
        tr: &mut Vec<f32>,
    ) -> Result<(), ExecError> {
        let n = a.n;
        debug_assert_eq!(a.kind, Some(act_kind(self.ty)));
        debug_assert_eq!(a.cols, self.cols);
        debug_assert_eq!(out.len(), n * self.rows);
        let k = kernels();
        let token_major = self.batch_tiles(k, a).is_some();
        let tasks = rayon::current_num_threads() * 8;
        // Batches: whole register tiles of x86_gemm (6 rows, 16 for Q4_K) in a task.
        let align = if n >= 2 { 48 } else { 4 };
        let chunk = self.rows.div_ceil(tasks).next_multiple_of(align).max(align);
        let dst: &mut [f32] = if n == 1 {
            out
        } else {
            tr.resize(self.rows * n, 0.0);
            tr
        };
        let task = |(ci, d): (usize, &mut [f32])| {
            // aarch64: the NEON kernels of exec::neon, when the CPU and the type have them.
            #[cfg(target_arch = "aarch64")]
            if self.rows_into_neon(ci * chunk, d, a).is_some() {
                return Ok(());
            }
            self.rows_into(k, ci * chunk, d, a)
        };
        if self.rows <= chunk {
            task((0, dst))?;
        } else {
            dst.par_chunks_mut(chunk * n)
                .enumerate()
                .try_for_each(task)?;
        }
        if n > 1 && token_major {
            // Each task's rows are token-major already: copy them into place, token by token.
            let rows = self.rows;
            let tr = &tr[..];
            let token = |(t, o): (usize, &mut [f32])| {
                for ci in 0..rows.div_ceil(chunk) {
                    let (r0, r1) = (ci * chunk, (ci * chunk + chunk).min(rows));
                    let cr = r1 - r0;
                    o[r0..r1].copy_from_slice(&tr[r0 * n + t * cr..r0 * n + (t + 1) * cr]);
                }
            };
            out.par_chunks_mut(rows).enumerate().for_each(token);
        } else if n > 1 {
            // Back to token-major, in blocks of tokens on the pool.
            const TB: usize = 8;
            let rows = self.rows;
            let tr = &tr[..];
            let block = |(bi, o): (usize, &mut [f32])| {
                let t0 = bi * TB;
                let tn = o.len() / rows;
                for r in 0..rows {
                    let src = &tr[r * n + t0..r * n + t0 + tn];
                    for (k, v) in src.iter().enumerate() {
                        o[k * rows + r] = *v;
                    }
                }
            };
            if n >= 2 * TB {
                out.par_chunks_mut(rows * TB).enumerate().for_each(block);
            } else {
                out.chunks_mut(rows * TB).enumerate().for_each(block);
            }
        }
        Ok(())
    }
}

/// One activation row quantized as `matmul` quantizes it (Q8_0 / Q8_K types), for kernel tests.
#[cfg(all(test, target_arch = "aarch64"))]
pub(crate) fn quantize_one(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut a = Acts::default();
    a.prepare(ty, x, 1).expect("whole blocks");
    a.q
}

/// `simd_dots` over prepared activations, for the kernel tests.
#[cfg(all(test, target_arch = "x86_64"))]
pub(crate) fn simd_dots_for_test(
    k: Kernels,
    ty: TypeId,
    r8: bool,
    w: &[u8],
    a: &Acts,
    out: &mut [f32],
) -> bool {
    simd_dots(k, ty, r8, w, &a.q, a.stride, &a.ds, out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::gguf::spec::ggml_type_by_name;

    pub(crate) fn lcg(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The x86 and ARM Q8_0 activation formulas on a block where they part: `127 / max` and
    /// `1 / (max / 127)` are different floats for this maximum, and the second value lands on 1.5
    /// with the x86 multiplier (rounded to 2) but just below it with the ARM one (rounded to 1), as
    /// numpy's float32 arithmetic gives; and ties go to even in both.
    #[test]
    fn q8_0_activation_formulas_of_x86_and_arm() {
        let mut x = [0f32; 32];
        x[0] = 1.623_727_7;
        x[1] = 0.019_177_886;
        let (mut arm, mut x86) = ([0u8; 34], [0u8; 34]);
        quantize_q8_0_arm(&x, &mut arm);
        quantize_q8_0_x86(&x, &mut x86);
        assert_eq!((arm[2], arm[3]), (127, 1));
        assert_eq!((x86[2], x86[3]), (127, 2));
        assert_eq!(arm[..2], x86[..2], "same scale");
        let mut t = [0f32; 32];
        t[..5].copy_from_slice(&[127.0, 2.5, 3.5, -2.5, -3.5]);
        quantize_q8_0_arm(&t, &mut arm);
        assert_eq!(arm[2..7], [127, 2, 4, (-2i8) as u8, (-4i8) as u8]);
        t[5] = f32::NAN;
        quantize_q8_0_arm(&t, &mut arm);
        assert!(arm[2..].iter().all(|&q| q == 0), "NaN block: zero quants");
    }

    /// The names of the types with kernel rows.
    pub(crate) fn ported() -> Vec<&'static str> {
        crate::exec::traits::kernel_types()
            .map(|t| t.ty().name)
            .collect()
    }

    /// Quantized weights (`rows` rows) and prepared activations (`n` rows) of `cols` values.
    pub(crate) fn case(
        name: &str,
        cols: usize,
        rows: usize,
        n: usize,
        seed: u64,
    ) -> (Vec<u8>, Acts, GgmlType) {
        let ty = ggml_type_by_name(name).unwrap();
        let w = lcg(cols * rows, seed);
        let mut wq = vec![0u8; ty.bytes_for((cols * rows) as u64).unwrap() as usize];
        // Types that need an importance matrix (IQ2_XXS, IQ2_XS) get a flat one.
        let ones = vec![1f32; cols];
        let required = crate::quant::format(ty.id).imatrix == crate::quant::Imatrix::Required;
        quantize_chunk(ty, &w, &mut wq, cols, required.then_some(&ones[..])).unwrap();
        let mut acts = Acts::default();
        acts.prepare(ty, &lcg(cols * n, seed + 1), n).unwrap();
        (wq, acts, ty)
    }

    /// The dequantized activation row `t` (what the integer dot product multiplies).
    pub(crate) fn act_row_f32(a: &Acts, t: usize) -> Vec<f32> {
        let mut v = vec![0f32; a.cols];
        match a.kind.unwrap() {
            ActKind::Q8_0 | ActKind::Q8K => {
                let at = if a.kind == Some(ActKind::Q8_0) {
                    TypeId::Q8_0
                } else {
                    TypeId::Q8_K
                };
                let row = &a.q[t * a.stride..(t + 1) * a.stride];
                dequantize_row(at.ty(), row, &mut v).unwrap();
            }
            ActKind::Q8_1 => {
                let row = &a.q[t * a.stride..(t + 1) * a.stride];
                dequantize_row(TypeId::Q8_1.ty(), row, &mut v).unwrap();
            }
            ActKind::F16 | ActKind::Bf16 | ActKind::F32 => {
                v.copy_from_slice(&a.f[t * a.cols..(t + 1) * a.cols])
            }
        }
        v
    }

    /// F16 and BF16 matrices give the same bits with the SIMD kernels in use as with the scalar
    /// ports, one activation row (vec_dot's order) and several (tinyBLAS's, rows a multiple of 4;
    /// vec_dot's for 6 rows), as `Mat::rows_into` runs them.
    #[test]
    fn half_matrices_equal_scalar_ports() {
        let k = kernels();
        if k == Kernels::Scalar {
            return eprintln!("scalar kernels in use: nothing to compare");
        }
        for name in ["f16", "bf16"] {
            for (cols, rows, n) in [(640, 8, 1), (640, 8, 5), (256, 6, 3)] {
                let (wq, acts, ty) = case(name, cols, rows, n, 9);
                let mat = Mat {
                    name: "w",
                    ty,
                    data: &wq,
                    cols,
                    rows,
                    row_bytes: wq.len() / rows,
                };
                let (mut a, mut b) = (vec![0f32; rows * n], vec![0f32; rows * n]);
                mat.rows_into(k, 0, &mut a, &acts).unwrap();
                mat.rows_into(Kernels::Scalar, 0, &mut b, &acts).unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "{name} cols {cols} rows {rows} n {n}");
            }
        }
    }

    /// Each ported dot product equals the f32 dot of the dequantized weight row with the dequantized
    /// activation row, up to float rounding: catches any bit-layout mistake in the ports.
    #[test]
    fn ported_dots_match_dequantized_dots() {
        let n = 512;
        for name in ported().iter().chain(&["f16", "bf16", "f32", "tq1_0"]) {
            let (wq, acts, ty) = case(name, n, 1, 1, 7);
            let mat = Mat {
                name: "w",
                ty,
                data: &wq,
                cols: n,
                rows: 1,
                row_bytes: wq.len(),
            };
            let mut got = [0f32];
            mat.rows_into(Kernels::Scalar, 0, &mut got, &acts).unwrap();
            let mut wd = vec![0f32; n];
            dequantize_row(ty, &wq, &mut wd).unwrap();
            let xd = act_row_f32(&acts, 0);
            let mut want: f64 = wd.iter().zip(&xd).map(|(a, b)| (a * b) as f64).sum();
            let mag: f64 = wd.iter().zip(&xd).map(|(a, b)| (a * b).abs() as f64).sum();
            if acts.kind == Some(ActKind::Q8_1) {
                // Q4_1/Q5_1 take `m * s` with the f16-rounded sum `s` cached in each Q8_1 block,
                // not `m * d * sum(q)`: add what that rounding changes.
                let bs = ty.type_size as usize;
                for (xb, yb) in wq.chunks_exact(bs).zip(acts.q.chunks_exact(36)) {
                    let sum: i32 = yb[4..].iter().map(|&q| q as i8 as i32).sum();
                    let exact = h(yb, 0) as f64 * sum as f64;
                    want += h(xb, 2) as f64 * (h(yb, 2) as f64 - exact);
                }
            }
            assert!(
                (got[0] as f64 - want).abs() < 1e-5 * mag,
                "{name}: {} vs {want}",
                got[0]
            );
        }
    }

    /// Quantized activation row `t`.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn act_scales(a: &Acts) -> &[f32] {
        &a.ds
    }

    #[cfg(target_arch = "x86_64")]
    pub(crate) fn act_row_q(a: &Acts, t: usize) -> &[u8] {
        &a.q[t * a.stride..(t + 1) * a.stride]
    }

    /// The activations of row `t` alone.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn act_one(a: &Acts, t: usize) -> Acts {
        Acts {
            kind: a.kind,
            n: 1,
            cols: a.cols,
            q: act_row_q(a, t).to_vec(),
            stride: a.stride,
            ds: if a.ds.is_empty() {
                Vec::new()
            } else {
                let nb = a.stride / 34;
                a.ds[t * nb..(t + 1) * nb].to_vec()
            },
            f: Vec::new(),
            packed: Vec::new(),
            packed_k: Vec::new(),
            packed_k_ok: false,
        }
    }

    /// sum |w_i * x_i| over the dequantized weight row and activation row `t`.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn abs_dot(ty: GgmlType, w: &[u8], a: &Acts, t: usize) -> f64 {
        let mut wd = vec![0f32; a.cols];
        dequantize_row(ty, w, &mut wd).unwrap();
        let xd = act_row_f32(a, t);
        wd.iter().zip(&xd).map(|(p, q)| (p * q).abs() as f64).sum()
    }
}
