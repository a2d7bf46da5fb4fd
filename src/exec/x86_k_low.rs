//! x86_64 kernels of the low-bit types, Q2_K, Q3_K and TQ2_0 against Q8_K activations and Q1_0
//! against Q8_0 ones: ports of ggml-cpu's AVX2 `ggml_vec_dot_q2_K_q8_K`, `ggml_vec_dot_q3_K_q8_K`,
//! `ggml_vec_dot_tq2_0_q8_K` and `ggml_vec_dot_q1_0_q8_0` (`ggml-cpu/arch/x86/quants.c`) with the
//! same integer sums and the same float operations in the same order, so each gives the bits
//! llama.cpp's own kernel gives (TQ2_0 and Q1_0: see their functions; neither is tiled, repacked
//! on x86 or taken by tinyBLAS, so batches take the same kernel per activation row):
//! - Q2_K: per super-block the mins times the activations' block sums (`madd`, 8 lanes) multiply-added
//!   by `-d_y · dmin`, then the scaled 2-bit products (`maddubs`, `madd` by the 16-bit scales)
//!   multiply-added by `d_y · d`, into one 8-lane accumulator summed at the end;
//! - Q3_K: the low 2 bits and the "minus 4" of a clear high bit as two `maddubs` subtracted, scaled
//!   and summed likewise, multiply-added by `d_y · d`.
//!
//! `TILED`: llama.cpp's tiled K-quant matmul (`ggml-cpu/tiled`), which takes batches of 8 or more
//! activation rows of both types on AVX2 (`tiled_run_microtile_avx2`): per super-block the exact
//! integer sums `s1` (scales times products) and `s2` (mins times block sums, Q2_K), then
//! `r = d · s1`, `r = r - dmin · s2` (fused), `acc = r · d_y + acc` (fused), as `x86.rs`'s Q4_K/Q6_K
//! tiled forms.
//!
//! Like `x86.rs`, every kernel takes one weight row and `N` activation rows, unpacks each weight
//! super-block once for all of them, and is compiled twice: for AVX2 and for AVX-512 VNNI (no
//! unsigned-by-signed dot here, so the same instructions; the compiler may use the wider encodings).
//! `pick!` in `x86.rs` dispatches to them. The scalar oracles are in `dot_k_low` (ggml's generic
//! code, another float order: `tests` here and `x86::tests` hold the kernels within 1e-5 of the sum
//! of |products|, a column's bits independent of the batch, and the tiled forms bit for bit to
//! their scalar form).

use std::arch::x86_64::*;

use super::dot_k_low::{q3k_scales, Q1_0_SIZE, Q2K_SIZE, Q3K_SIZE, Q8K_SIZE, TQ2_0_SIZE};

/// `get_scale_shuffle_q3k`: entry `i` picks 16-bit scale `2i` into the low 128 bits and `2i + 1`
/// into the high ones.
static SHUFFLE_Q3K: [[u8; 32]; 4] = {
    let mut t = [[0u8; 32]; 4];
    let mut i = 0;
    while i < 4 {
        let mut j = 0;
        while j < 32 {
            t[i][j] = (4 * i + 2 * (j / 16) + j % 2) as u8;
            j += 1;
        }
        i += 1;
    }
    t
};

macro_rules! kernels {
    ($name:ident, $feat:literal) => {
        pub(crate) mod $name {
            use super::*;
            use crate::exec::x86::avx2::{
                f32_at, h, hsum_float_8, hsum_i32_8, load128, load256, prefetch,
            };

            /// Sixteen signed 8-bit scales as the two halves ggml's kernels index: low 8 scales
            /// (16-bit, twice) and high 8, then each of the 8 shuffles of 32 values it takes.
            #[inline]
            #[target_feature(enable = $feat)]
            fn scale_shuffles(scales8: __m128i) -> [__m256i; 8] {
                let all = _mm256_cvtepi8_epi16(scales8);
                let l = _mm256_extracti128_si256(all, 0);
                let hh = _mm256_extracti128_si256(all, 1);
                let halves = [_mm256_set_m128i(l, l), _mm256_set_m128i(hh, hh)];
                std::array::from_fn(|k| {
                    _mm256_shuffle_epi8(halves[k / 4], load256(&SHUFFLE_Q3K[k % 4]))
                })
            }

            /// `ggml_vec_dot_q2_K_q8_K` (AVX2 path), or the tiled form.
            #[target_feature(enable = $feat)]
            pub(crate) fn q2_k<const N: usize, const TILED: bool>(
                w: &[u8],
                y: [&[u8]; N],
            ) -> [f32; N] {
                let m3 = _mm256_set1_epi8(3);
                let m4 = _mm_set1_epi8(0xF);
                let mut acc = [_mm256_setzero_ps(); N];
                let mut acc_t = [0f32; N];
                for (i, xb) in w.chunks_exact(Q2K_SIZE).enumerate() {
                    prefetch(xb);
                    let (xd, xdmin) = (h(xb, 80), h(xb, 82));
                    let mins_and_scales = load128(&xb[0..16]);
                    let scales8 = _mm_and_si128(mins_and_scales, m4);
                    let mins8 = _mm_and_si128(_mm_srli_epi16(mins_and_scales, 4), m4);
                    let mins = _mm256_cvtepi8_epi16(mins8);
                    let sc = scale_shuffles(scales8);
                    let mut q = [_mm256_setzero_si256(); 8];
                    for j in 0..2 {
                        let bits = load256(&xb[16 + 32 * j..]);
                        q[4 * j] = _mm256_and_si256(bits, m3);
                        q[4 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 2), m3);
                        q[4 * j + 2] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m3);
                        q[4 * j + 3] = _mm256_and_si256(_mm256_srli_epi16(bits, 6), m3);
                    }
                    for c in 0..N {
                        let yb = &y[c][i * Q8K_SIZE..(i + 1) * Q8K_SIZE];
                        let yd = f32_at(yb, 0);
                        let prod = _mm256_madd_epi16(mins, load256(&yb[260..]));
                        if !TILED {
                            let dmin = -yd * xdmin;
                            acc[c] = _mm256_fmadd_ps(
                                _mm256_set1_ps(dmin),
                                _mm256_cvtepi32_ps(prod),
                                acc[c],
                            );
                        }
                        let q8 = &yb[4..260];
                        let mut sumi = _mm256_setzero_si256();
                        for j in 0..2 {
                            let mut p = [_mm256_setzero_si256(); 4];
                            for (k, pk) in p.iter_mut().enumerate() {
                                let y8 = load256(&q8[128 * j + 32 * k..]);
                                let p16 = _mm256_maddubs_epi16(q[4 * j + k], y8);
                                *pk = _mm256_madd_epi16(sc[4 * j + k], p16);
                            }
                            let p01 = _mm256_add_epi32(p[0], p[1]);
                            let p23 = _mm256_add_epi32(p[2], p[3]);
                            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p01, p23));
                        }
                        if TILED {
                            let r = xd * hsum_i32_8(sumi) as f32;
                            let r = (-xdmin).mul_add(hsum_i32_8(prod) as f32, r);
                            acc_t[c] = r.mul_add(yd, acc_t[c]);
                        } else {
                            let d = yd * xd;
                            acc[c] = _mm256_fmadd_ps(
                                _mm256_set1_ps(d),
                                _mm256_cvtepi32_ps(sumi),
                                acc[c],
                            );
                        }
                    }
                }
                if TILED {
                    return acc_t;
                }
                std::array::from_fn(|c| hsum_float_8(acc[c]))
            }

            /// `ggml_vec_dot_q3_K_q8_K` (AVX2 path), or the tiled form.
            #[target_feature(enable = $feat)]
            pub(crate) fn q3_k<const N: usize, const TILED: bool>(
                w: &[u8],
                y: [&[u8]; N],
            ) -> [f32; N] {
                let m3 = _mm256_set1_epi8(3);
                let mone = _mm256_set1_epi8(1);
                let mut acc = [_mm256_setzero_ps(); N];
                let mut acc_t = [0f32; N];
                for (i, xb) in w.chunks_exact(Q3K_SIZE).enumerate() {
                    prefetch(xb);
                    let xd = h(xb, 108);
                    let sc = scale_shuffles(load128(&q3k_scales(&xb[96..108]).map(|v| v as u8)));
                    let hbits = load256(&xb[0..32]);
                    // Low 2 bits (0-3) and 4 where the high bit is clear, 32 values a vector.
                    let mut ql = [_mm256_setzero_si256(); 8];
                    let mut qh = [_mm256_setzero_si256(); 8];
                    for j in 0..2 {
                        let bits = load256(&xb[32 + 32 * j..]);
                        for k in 0..4 {
                            let bit = _mm_cvtsi32_si128((4 * j + k) as i32);
                            let sh = _mm_cvtsi32_si128(2 * k as i32);
                            ql[4 * j + k] = _mm256_and_si256(_mm256_srl_epi16(bits, sh), m3);
                            let clear = _mm256_andnot_si256(hbits, _mm256_sll_epi16(mone, bit));
                            qh[4 * j + k] = _mm256_slli_epi16(_mm256_srl_epi16(clear, bit), 2);
                        }
                    }
                    for c in 0..N {
                        let yb = &y[c][i * Q8K_SIZE..(i + 1) * Q8K_SIZE];
                        let q8 = &yb[4..260];
                        let mut sumi = _mm256_setzero_si256();
                        for j in 0..2 {
                            let mut p = [_mm256_setzero_si256(); 4];
                            for (k, pk) in p.iter_mut().enumerate() {
                                let y8 = load256(&q8[128 * j + 32 * k..]);
                                let q8s = _mm256_maddubs_epi16(qh[4 * j + k], y8);
                                let p16 = _mm256_maddubs_epi16(ql[4 * j + k], y8);
                                let p16 = _mm256_sub_epi16(p16, q8s);
                                *pk = _mm256_madd_epi16(sc[4 * j + k], p16);
                            }
                            let p01 = _mm256_add_epi32(p[0], p[1]);
                            let p23 = _mm256_add_epi32(p[2], p[3]);
                            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p01, p23));
                        }
                        let yd = f32_at(yb, 0);
                        if TILED {
                            let r = xd * hsum_i32_8(sumi) as f32;
                            acc_t[c] = r.mul_add(yd, acc_t[c]);
                        } else {
                            let d = yd * xd;
                            acc[c] = _mm256_fmadd_ps(
                                _mm256_set1_ps(d),
                                _mm256_cvtepi32_ps(sumi),
                                acc[c],
                            );
                        }
                    }
                }
                if TILED {
                    return acc_t;
                }
                std::array::from_fn(|c| hsum_float_8(acc[c]))
            }

            /// `ggml_vec_dot_tq2_0_q8_K` (AVX2 path): the codes 0-2 times the activations in 16-bit
            /// lanes, the activations' block sums taken off (the -1), then multiply-added by
            /// `d_y · d` (GCC fuses the C code's `add(mul(…))`: `vfmadd231ps` in libggml-cpu.so).
            #[target_feature(enable = $feat)]
            pub(crate) fn tq2_0<const N: usize>(w: &[u8], y: [&[u8]; N]) -> [f32; N] {
                let m3 = _mm256_set1_epi8(3);
                let ones = _mm256_set1_epi16(1);
                let mut acc = [_mm256_setzero_ps(); N];
                for (i, xb) in w.chunks_exact(TQ2_0_SIZE).enumerate() {
                    prefetch(xb);
                    let xd = h(xb, 64);
                    let mut q = [_mm256_setzero_si256(); 8];
                    for j in 0..2 {
                        let bits = load256(&xb[32 * j..]);
                        q[4 * j] = _mm256_and_si256(bits, m3);
                        q[4 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 2), m3);
                        q[4 * j + 2] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m3);
                        q[4 * j + 3] = _mm256_and_si256(_mm256_srli_epi16(bits, 6), m3);
                    }
                    for c in 0..N {
                        let yb = &y[c][i * Q8K_SIZE..(i + 1) * Q8K_SIZE];
                        let q8 = &yb[4..260];
                        let mut sumi0 = _mm256_setzero_si256();
                        let mut sumi1 = _mm256_setzero_si256();
                        for j in 0..2 {
                            let p: [__m256i; 4] = std::array::from_fn(|k| {
                                _mm256_maddubs_epi16(q[4 * j + k], load256(&q8[128 * j + 32 * k..]))
                            });
                            sumi0 = _mm256_add_epi16(sumi0, _mm256_add_epi16(p[0], p[1]));
                            sumi1 = _mm256_add_epi16(sumi1, _mm256_add_epi16(p[2], p[3]));
                        }
                        let ysum = load256(&yb[260..]);
                        let d = _mm256_set1_ps(f32_at(yb, 0) * xd);
                        let s = _mm256_sub_epi16(_mm256_add_epi16(sumi0, sumi1), ysum);
                        let s = _mm256_madd_epi16(s, ones);
                        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), d, acc[c]);
                    }
                }
                std::array::from_fn(|c| hsum_float_8(acc[c]))
            }

            /// `ggml_vec_dot_q1_0_q8_0` (AVX2 path): per Q1_0 block, each of its four Q8_0
            /// activation blocks negated where the sign bit is clear (`(q ^ m) - m`, which leaves
            /// -128 as it is, as ggml's does; Q8_0 activations never hold -128) and summed, scaled by
            /// the activation block's `d` (the first multiplied, the others multiply-added), then
            /// multiply-added by the weight block's `d`.
            #[target_feature(enable = $feat)]
            pub(crate) fn q1_0<const N: usize>(
                w: &[u8],
                y: [&[u8]; N],
                ys: [&[f32]; N],
            ) -> [f32; N] {
                let ones_8 = _mm256_set1_epi8(1);
                let ones_16 = _mm256_set1_epi16(1);
                let byte_shuf = _mm256_setr_epi8(
                    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3,
                    3, 3, 3, 3, 3, 3,
                );
                let bit_masks = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
                let zero = _mm256_setzero_si256();
                let mut acc = [_mm256_setzero_ps(); N];
                for (ib, xb) in w.chunks_exact(Q1_0_SIZE).enumerate() {
                    prefetch(xb);
                    let d0 = _mm256_set1_ps(h(xb, 0));
                    let sm: [__m256i; 4] = std::array::from_fn(|k| {
                        let b = &xb[2 + 4 * k..];
                        let bits = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                        let sel = _mm256_shuffle_epi8(_mm256_set1_epi32(bits), byte_shuf);
                        _mm256_cmpeq_epi8(_mm256_and_si256(sel, bit_masks), zero)
                    });
                    for c in 0..N {
                        let yq = &y[c][4 * ib * 34..4 * (ib + 1) * 34];
                        let sum = |k: usize| {
                            let qy = load256(&yq[34 * k + 2..]);
                            let sy = _mm256_sub_epi8(_mm256_xor_si256(qy, sm[k]), sm[k]);
                            let s32 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones_8, sy), ones_16);
                            _mm256_cvtepi32_ps(s32)
                        };
                        let dy = |k: usize| _mm256_set1_ps(ys[c][4 * ib + k]);
                        let mut acc_block = _mm256_mul_ps(dy(0), sum(0));
                        for k in 1..4 {
                            acc_block = _mm256_fmadd_ps(dy(k), sum(k), acc_block);
                        }
                        acc[c] = _mm256_fmadd_ps(d0, acc_block, acc[c]);
                    }
                }
                std::array::from_fn(|c| hsum_float_8(acc[c]))
            }
        }
    };
}

kernels!(avx2, "avx2,fma,f16c");
kernels!(vnni, "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni");

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::exec::dot::tests::{abs_dot, act_one, act_row_q, case};
    use crate::exec::dot::{scalar_dot, simd_dots_for_test, Kernels};
    use crate::exec::dot_k_low::{dot_q2_k, dot_q3_k};
    use crate::exec::x86::{detect, Level};
    use crate::gguf::TypeId;

    /// The scalar form of llama.cpp's tiled K-quant matmul on AVX2 (`tiled_run_microtile_avx2`
    /// with `tiled_unpack_src0` for `block_q2_K` / `block_q3_K`) for one weight row and one Q8_K
    /// activation row: per super-block the exact integer sums `s1` (scale times code times
    /// activation, the Q3_K codes less 4) and `s2` (Q2_K: min times the activations' block sums),
    /// then `r = d · s1`, `r = r - dmin · s2` (fused), `acc = r · d_y + acc` (fused). None for
    /// other types.
    pub(crate) fn tiled_ref(ty: TypeId, w: &[u8], y: &[u8]) -> Option<f32> {
        let f16 = |b: &[u8], at: usize| half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32();
        let bs = match ty {
            TypeId::Q2_K => Q2K_SIZE,
            TypeId::Q3_K => Q3K_SIZE,
            _ => return None,
        };
        let mut acc = 0f32;
        for (xb, yb) in w.chunks_exact(bs).zip(y.chunks_exact(Q8K_SIZE)) {
            let yd = f32::from_le_bytes([yb[0], yb[1], yb[2], yb[3]]);
            let yq = |i: usize| yb[4 + i] as i8 as i64;
            let bsum = |j: usize| i16::from_le_bytes([yb[260 + 2 * j], yb[261 + 2 * j]]) as i64;
            let (mut s1, mut s2) = (0i64, 0i64);
            let (d, dmin);
            // Element e: half e / 128, group (e % 128) / 32, position e % 32.
            let code =
                |e: usize, qs: &[u8]| (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            if ty == TypeId::Q2_K {
                (d, dmin) = (f16(xb, 80), f16(xb, 82));
                for e in 0..256 {
                    s1 += (xb[e / 16] & 0xf) as i64 * code(e, &xb[16..80]) as i64 * yq(e);
                }
                for (j, sm) in xb[..16].iter().enumerate() {
                    s2 += (sm >> 4) as i64 * bsum(j);
                }
            } else {
                (d, dmin) = (f16(xb, 108), 0.0);
                let sc = q3k_scales(&xb[96..108]);
                for e in 0..256 {
                    let high = (xb[e % 32] >> (e / 32)) & 1;
                    let v = (code(e, &xb[32..96]) | high << 2) as i64 - 4;
                    s1 += sc[e / 16] as i64 * v * yq(e);
                }
            }
            let mut r = d * s1 as i32 as f32;
            if ty == TypeId::Q2_K {
                r = (-dmin).mul_add(s2 as i32 as f32, r);
            }
            acc = r.mul_add(yd, acc);
        }
        Some(acc)
    }

    /// The scalar ports equal an independent exact computation up to float rounding (the integer
    /// sums of each super-block in i64, scaled in f64).
    #[test]
    fn scalar_ports_match_exact_sums() {
        for name in ["q2_K", "q3_K"] {
            let (wq, acts, ty) = case(name, 1024, 2, 3, 5);
            let rb = wq.len() / 2;
            for r in 0..2 {
                let w = &wq[r * rb..(r + 1) * rb];
                for t in 0..3 {
                    let y = act_row_q(&acts, t);
                    let got = match ty.id {
                        TypeId::Q2_K => dot_q2_k(w, y),
                        _ => dot_q3_k(w, y),
                    };
                    // Each value dequantized and multiplied in f64: no rounding to speak of.
                    let exact: f64 = w
                        .chunks_exact(ty.type_size as usize)
                        .zip(y.chunks_exact(Q8K_SIZE))
                        .map(|(xb, yb)| {
                            let yd = f32::from_le_bytes([yb[0], yb[1], yb[2], yb[3]]) as f64;
                            exact_block(ty.id, xb, yb) * yd
                        })
                        .sum();
                    let bound = abs_dot(ty, w, &acts, t);
                    assert!(
                        ((got as f64) - exact).abs() <= 1e-5 * bound,
                        "{name} row {r} col {t}: {got} vs {exact}"
                    );
                }
            }
        }
    }

    /// One super-block's `d · s1 - dmin · s2` in f64 (before the activation scale).
    fn exact_block(ty: TypeId, xb: &[u8], yb: &[u8]) -> f64 {
        let f16 = |b: &[u8], at: usize| half::f16::from_le_bytes([b[at], b[at + 1]]).to_f64();
        let yq = |i: usize| yb[4 + i] as i8 as i64;
        let code =
            |e: usize, qs: &[u8]| (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        let mut s = 0f64;
        if ty == TypeId::Q2_K {
            for e in 0..256 {
                let v = (xb[e / 16] & 0xf) as f64 * f16(xb, 80) * code(e, &xb[16..80]) as f64
                    - (xb[e / 16] >> 4) as f64 * f16(xb, 82);
                s += v * yq(e) as f64;
            }
        } else {
            let sc = q3k_scales(&xb[96..108]);
            for e in 0..256 {
                let high = (xb[e % 32] >> (e / 32)) & 1;
                let v = (code(e, &xb[32..96]) | high << 2) as i64 - 4;
                s += f16(xb, 108) * sc[e / 16] as f64 * v as f64 * yq(e) as f64;
            }
        }
        s
    }

    /// Each kernel at each level this CPU has gives the bits of llama.cpp's own AVX2 `vec_dot` on
    /// the rows of `testdata/exec/k_low_dots.bin` (made by `scripts/make-k-low-dot-golden.py`
    /// through libggml-cpu.so: rows quantized by ggml, 256 and 1024 values, three of each).
    #[test]
    fn kernels_equal_ggmls_avx2_bits() {
        let levels = levels();
        if levels.is_empty() {
            return eprintln!("no AVX2 on this CPU: nothing to compare");
        }
        let mut g: &[u8] = include_bytes!("../../testdata/exec/k_low_dots.bin");
        let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        let mut seen = std::collections::BTreeMap::new();
        while !g.is_empty() {
            let (ty, n) = (u32_at(g, 0), u32_at(g, 4) as usize);
            let (wl, xl) = (u32_at(g, 8) as usize, u32_at(g, 12) as usize);
            let want = f32::from_bits(u32_at(g, 16));
            let (w, x) = (&g[20..20 + wl], &g[20 + wl..20 + wl + xl]);
            g = &g[20 + wl + xl..];
            let id = TypeId::new(ty).unwrap();
            assert_eq!(wl as u64, id.ty().bytes_for(n as u64).unwrap());
            // Q8_0 activation scales as f32 (Q1_0).
            let ys: Vec<f32> = x
                .chunks_exact(34)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect();
            for &level in &levels {
                // SAFETY: `detect` found the level's features.
                let got = unsafe {
                    match (level, id) {
                        (Level::Avx2, TypeId::Q2_K) => avx2::q2_k::<1, false>(w, [x])[0],
                        (Level::Avx2, TypeId::Q3_K) => avx2::q3_k::<1, false>(w, [x])[0],
                        (Level::Avx2, TypeId::TQ2_0) => avx2::tq2_0::<1>(w, [x])[0],
                        (Level::Avx2, _) => avx2::q1_0::<1>(w, [x], [&ys])[0],
                        (_, TypeId::Q2_K) => vnni::q2_k::<1, false>(w, [x])[0],
                        (_, TypeId::Q3_K) => vnni::q3_k::<1, false>(w, [x])[0],
                        (_, TypeId::TQ2_0) => vnni::tq2_0::<1>(w, [x])[0],
                        _ => vnni::q1_0::<1>(w, [x], [&ys])[0],
                    }
                };
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{id} {level:?} n {n}: {got} vs {want}"
                );
            }
            *seen.entry(id.ty().name).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(seen.values().all(|&c| c == 6), "{seen:?}");
    }

    fn levels() -> Vec<Level> {
        match detect() {
            Some(Level::Avx512Vnni) => vec![Level::Avx2, Level::Avx512Vnni],
            Some(Level::Avx2) => vec![Level::Avx2],
            None => vec![],
        }
    }

    /// Each SIMD form at each level this CPU has: within 1e-5 of the sum of |products| of the
    /// scalar port (another float order), a column's bits independent of how many columns are
    /// computed with it (1, 2, 4 or 8 at a time) below the tiled batch size, and the tiled form
    /// (batches of 8 or more at the AVX2 level) equal to its scalar form bit for bit.
    #[test]
    fn kernels_match_scalar_ports() {
        if detect().is_none() {
            return eprintln!("no AVX2 on this CPU: nothing to compare");
        }
        let mut tiled_checked = 0;
        for name in ["q2_K", "q3_K"] {
            for (cols, n) in [
                (256, 1),
                (512, 7),
                (2048, 5),
                (768, 4),
                (512, 13),
                (1024, 8),
            ] {
                let (wq, acts, ty) = case(name, cols, 3, n, cols as u64 + 11);
                let rb = wq.len() / 3;
                for level in levels() {
                    let k = Kernels::X86(level);
                    for r in 0..3 {
                        let w = &wq[r * rb..(r + 1) * rb];
                        let mut got = vec![0f32; n];
                        assert!(simd_dots_for_test(k, ty.id, false, w, &acts, &mut got));
                        let tiled = level == Level::Avx2 && n >= 8;
                        for (t, g) in got.iter().enumerate() {
                            let y = act_row_q(&acts, t);
                            let want = scalar_dot(ty.id, w, y);
                            let bound = abs_dot(ty, w, &acts, t);
                            assert!(
                                ((g - want) as f64).abs() <= 1e-5 * bound,
                                "{name} {level:?} cols {cols} row {r} col {t}: {g} vs {want}"
                            );
                            if tiled {
                                let want = tiled_ref(ty.id, w, y).unwrap();
                                assert_eq!(g.to_bits(), want.to_bits(), "{name} tiled col {t}");
                                tiled_checked += 1;
                            } else {
                                let mut one = [0f32];
                                assert!(simd_dots_for_test(
                                    k,
                                    ty.id,
                                    false,
                                    w,
                                    &act_one(&acts, t),
                                    &mut one
                                ));
                                assert_eq!(one[0].to_bits(), g.to_bits(), "{name} col {t} alone");
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(tiled_checked, 2 * 3 * (13 + 8));
    }
}
