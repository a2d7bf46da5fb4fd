//! Matrix-vector products on quantized weights, the way ggml's CPU backend computes them: the
//! activations are first quantized to the weight type's `vec_dot_type` (Q8_0 for the 32-value legacy
//! formats, Q8_K for the K-quants, F16 for F16 weights; see `type_traits_cpu` in
//! `ggml-cpu/ggml-cpu.c`), then each weight row is dotted with them by a scalar port of
//! `ggml_vec_dot_*_generic` (`ggml-cpu/quants.c`), same integer sums and same float order.
//! Types without a port here dequantize one weight row at a time and dot it in f32 with unquantized
//! activations (never the whole tensor).

// The ports keep the C code's index loops, so they can be read side by side with quants.c.
#![allow(clippy::needless_range_loop)]

use half::f16;
use rayon::prelude::*;

use crate::gguf::spec::ggml_type;
use crate::gguf::GgmlType;
use crate::quant::{dequantize_row, quantize_chunk};

use super::ExecError;

const F32: u32 = 0;
const F16: u32 = 1;
const Q4_0: u32 = 2;
const Q5_0: u32 = 6;
const Q8_0: u32 = 8;
const Q4_K: u32 = 12;
const Q5_K: u32 = 13;
const Q6_K: u32 = 14;
const Q8_K: u32 = 15;

/// The activation format a weight type's dot product takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActKind {
    /// 32-value blocks of int8 with an f16 scale.
    Q8_0,
    /// 256-value blocks of int8 with an f32 scale and 16 partial sums.
    Q8K,
    /// Activations rounded to f16 (F16 weights).
    F16,
    /// Plain f32 (F32 weights, and the dequantize-a-row fallback).
    F32,
}

/// `type_traits_cpu[ty].vec_dot_type`, restricted to the dot products ported here.
pub fn act_kind(ty: GgmlType) -> ActKind {
    match ty.id {
        Q4_0 | Q5_0 | Q8_0 => ActKind::Q8_0,
        Q4_K | Q5_K | Q6_K => ActKind::Q8K,
        F16 => ActKind::F16,
        _ => ActKind::F32,
    }
}

/// One activation row in its dot-product format.
pub enum Act {
    Q(Vec<u8>),
    H(Vec<f16>),
    F(Vec<f32>),
}

/// Quantizes one activation row `x` for weights of type `ty`.
pub fn quantize_act(ty: GgmlType, x: &[f32]) -> Result<Act, ExecError> {
    Ok(match act_kind(ty) {
        ActKind::Q8_0 if !REF_Q8_0 => {
            if x.len() % 32 != 0 {
                return Err(ExecError::Shape {
                    tensor: "activation".into(),
                    message: format!("{} values are not whole q8_0 blocks", x.len()),
                });
            }
            let mut out = vec![0u8; x.len() / 32 * 34];
            for (xb, yb) in x.chunks_exact(32).zip(out.chunks_exact_mut(34)) {
                quantize_q8_0_x86(xb, yb);
            }
            Act::Q(out)
        }
        ActKind::Q8_0 | ActKind::Q8K => {
            let id = if act_kind(ty) == ActKind::Q8_0 {
                Q8_0
            } else {
                Q8_K
            };
            let qt = ggml_type(id).expect("known type");
            let n = qt.bytes_for(x.len() as u64).ok_or(ExecError::Shape {
                tensor: "activation".into(),
                message: format!("{} values are not whole {} blocks", x.len(), qt.name),
            })? as usize;
            let mut out = vec![0u8; n];
            quantize_chunk(qt, x, &mut out, x.len(), None)?;
            Act::Q(out)
        }
        ActKind::F16 => Act::H(x.iter().map(|&v| f16::from_f32(v)).collect()),
        ActKind::F32 => Act::F(x.to_vec()),
    })
}

/// Use ggml's reference Q8_0 quantizer for activations instead of the x86 CPU backend's.
const REF_Q8_0: bool = false;

/// One block of `quantize_row_q8_0` as ggml-cpu's x86 (AVX/AVX2) code computes it, which is what
/// llama.cpp runs on x86 machines: the multiplier is `127 / max` (not `1 / d`) and values are
/// rounded half to even (`_mm256_round_ps`), where the reference rounds half away from zero.
fn quantize_q8_0_x86(x: &[f32], y: &mut [u8]) {
    let max = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = max / 127.0;
    y[..2].copy_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
    let id = if max != 0.0 { 127.0 / max } else { 0.0 };
    for (q, v) in y[2..34].iter_mut().zip(x) {
        *q = ((v * id).round_ties_even() as i32) as i8 as u8;
    }
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

/// `ggml_vec_dot_f16` (generic: products summed in double).
#[inline(always)]
pub(crate) fn dot_f16(x: &[u8], y: &[f16]) -> f32 {
    let mut s = 0f64;
    for (xb, yv) in x.chunks_exact(2).zip(y) {
        s += (f16::from_bits(u16::from_le_bytes([xb[0], xb[1]])).to_f32() * yv.to_f32()) as f64;
    }
    s as f32
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

impl Mat<'_> {
    /// Row `r` as f32 (`get_rows`).
    pub fn row_f32(&self, r: usize, out: &mut [f32]) -> Result<(), ExecError> {
        let b = &self.data[r * self.row_bytes..(r + 1) * self.row_bytes];
        dequantize_row(self.ty, b, out)?;
        Ok(())
    }

    /// Dot product of row `r` with one prepared activation row.
    #[inline(always)]
    fn dot_row(&self, r: usize, act: &Act, tmp: &mut Vec<f32>) -> Result<f32, ExecError> {
        let w = &self.data[r * self.row_bytes..(r + 1) * self.row_bytes];
        Ok(match act {
            Act::Q(q) => match self.ty.id {
                Q8_0 => dot_q8_0(w, q),
                Q4_0 => dot_q4_0(w, q),
                Q5_0 => dot_q5_0(w, q),
                Q4_K => dot_q45_k(w, q, false),
                Q5_K => dot_q45_k(w, q, true),
                Q6_K => dot_q6_k(w, q),
                _ => unreachable!("act_kind gives Q only to ported types"),
            },
            Act::H(v) => dot_f16(w, v),
            Act::F(v) => {
                if self.ty.id == F32 {
                    let mut f = vec![0f32; self.cols];
                    for (o, c) in f.iter_mut().zip(w.chunks_exact(4)) {
                        *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    }
                    dot_f32(&f, v)
                } else {
                    tmp.resize(self.cols, 0.0);
                    dequantize_row(self.ty, w, tmp)?;
                    dot_f32(tmp, v)
                }
            }
        })
    }

    /// Rows `r0..` of the transposed product into `dst` (`n` values per row): picks the AVX2
    /// compilation of the same scalar code when the CPU has it. Integer sums are exact and the
    /// float operations keep their order (no contraction), so both give the same bits.
    fn rows_into(&self, r0: usize, dst: &mut [f32], acts: &[Act]) -> Result<(), ExecError> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { self.rows_into_avx2(r0, dst, acts) };
        }
        self.rows_into_generic(r0, dst, acts)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn rows_into_avx2(
        &self,
        r0: usize,
        dst: &mut [f32],
        acts: &[Act],
    ) -> Result<(), ExecError> {
        self.rows_into_generic(r0, dst, acts)
    }

    #[inline(always)]
    fn rows_into_generic(&self, r0: usize, dst: &mut [f32], acts: &[Act]) -> Result<(), ExecError> {
        let n = acts.len();
        let mut tmp = Vec::new();
        for (k, d) in dst.chunks_exact_mut(n).enumerate() {
            for (t, a) in acts.iter().enumerate() {
                d[t] = self.dot_row(r0 + k, a, &mut tmp)?;
            }
        }
        Ok(())
    }

    /// `out[t * rows + r] = W[r] · x[t]` for the `n` rows of `x` (each `cols` long), on rayon's
    /// pool across output rows; the activations are quantized once per call.
    pub fn matmul(&self, x: &[f32], n: usize, out: &mut [f32]) -> Result<(), ExecError> {
        debug_assert_eq!(x.len(), n * self.cols);
        debug_assert_eq!(out.len(), n * self.rows);
        let acts = x
            .chunks_exact(self.cols)
            .map(|r| quantize_act(self.ty, r))
            .collect::<Result<Vec<_>, _>>()?;
        // Row-major over weights (each weight row read once for all tokens), transposed at the end.
        const CHUNK: usize = 16;
        let mut tr = vec![0f32; self.rows * n];
        tr.par_chunks_mut(CHUNK * n)
            .enumerate()
            .try_for_each(|(ci, dst)| {
                // aarch64: the NEON kernels of exec::neon, when the CPU and the type have them.
                #[cfg(target_arch = "aarch64")]
                if self.rows_into_neon(ci * CHUNK, dst, &acts).is_some() {
                    return Ok(());
                }
                self.rows_into(ci * CHUNK, dst, &acts)
            })?;
        for r in 0..self.rows {
            for t in 0..n {
                out[t * self.rows + r] = tr[r * n + t];
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::spec::ggml_type_by_name;

    fn lcg(n: usize, seed: u64) -> Vec<f32> {
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

    /// Each ported dot product equals the f32 dot of the dequantized weight row with the dequantized
    /// activation row, up to float rounding: catches any bit-layout mistake in the ports.
    #[test]
    fn ported_dots_match_dequantized_dots() {
        let n = 512;
        for name in ["q8_0", "q4_0", "q5_0", "q4_K", "q5_K", "q6_K", "f16"] {
            let ty = ggml_type_by_name(name).unwrap();
            let w = lcg(n, 7);
            let x = lcg(n, 11);
            let mut wq = vec![0u8; ty.bytes_for(n as u64).unwrap() as usize];
            quantize_chunk(ty, &w, &mut wq, n, None).unwrap();
            let mat = Mat {
                name: "w",
                ty,
                data: &wq,
                cols: n,
                rows: 1,
                row_bytes: wq.len(),
            };
            let act = quantize_act(ty, &x).unwrap();
            let got = mat.dot_row(0, &act, &mut Vec::new()).unwrap();
            let mut wd = vec![0f32; n];
            dequantize_row(ty, &wq, &mut wd).unwrap();
            let xd: Vec<f32> = match &act {
                Act::Q(q) => {
                    let at = if act_kind(ty) == ActKind::Q8_0 { 8 } else { 15 };
                    let mut v = vec![0f32; n];
                    dequantize_row(ggml_type(at).unwrap(), q, &mut v).unwrap();
                    v
                }
                Act::H(v) => v.iter().map(|v| v.to_f32()).collect(),
                Act::F(v) => v.clone(),
            };
            let want: f64 = wd.iter().zip(&xd).map(|(a, b)| (a * b) as f64).sum();
            assert!(
                (got as f64 - want).abs() < 1e-3 * (1.0 + want.abs()),
                "{name}: {got} vs {want}"
            );
        }
    }
}

#[cfg(test)]
mod simd_tests {
    use super::*;
    use crate::gguf::spec::ggml_type_by_name;

    /// The AVX2 compilation (what `matmul` uses on this CPU) gives the scalar code's exact bits.
    #[test]
    fn dispatched_rows_equal_generic_rows() {
        let (cols, rows, n) = (512, 8, 3);
        let mut s = 5u64;
        let mut rnd = |k: usize| -> Vec<f32> {
            (0..k)
                .map(|_| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                    ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect()
        };
        for name in [
            "q8_0", "q4_0", "q5_0", "q4_K", "q5_K", "q6_K", "f16", "f32", "q3_K",
        ] {
            let ty = ggml_type_by_name(name).unwrap();
            let w = rnd(cols * rows);
            let rb = ty.bytes_for(cols as u64).unwrap() as usize;
            let mut wq = vec![0u8; rb * rows];
            quantize_chunk(ty, &w, &mut wq, cols, None).unwrap();
            let mat = Mat {
                name: "w",
                ty,
                data: &wq,
                cols,
                rows,
                row_bytes: rb,
            };
            let x = rnd(cols * n);
            let acts: Vec<Act> = x
                .chunks_exact(cols)
                .map(|r| quantize_act(ty, r).unwrap())
                .collect();
            let mut a = vec![0f32; rows * n];
            let mut b = vec![0f32; rows * n];
            mat.rows_into(0, &mut a, &acts).unwrap();
            mat.rows_into_generic(0, &mut b, &acts).unwrap();
            let (ab, bb): (Vec<u32>, Vec<u32>) = (
                a.iter().map(|v| v.to_bits()).collect(),
                b.iter().map(|v| v.to_bits()).collect(),
            );
            assert_eq!(ab, bb, "{name}");
        }
    }
}
