//! x86_64 dot-product kernels of the executor: ports of ggml-cpu's AVX2 `ggml_vec_dot_*`
//! (`ggml-cpu/arch/x86/quants.c`), with the same integer sums and the same float operations in the
//! same order, so each gives the bits llama.cpp's own kernel gives. Two compilations of every
//! kernel: plain AVX2 (`maddubs` + `madd`) and AVX-512 VNNI (`vpdpbusd` on 256-bit vectors, what
//! ggml compiles to on CPUs with `avx512vnni` and `avx512vl`; the integer sums are identical).
//!
//! Every kernel takes one weight row and `N` activation rows (N = 1 to 4) and returns `N` dots:
//! the weight blocks are unpacked once for all `N` columns, and each column keeps its own
//! accumulators, so a column's result does not depend on `N`. The scalar references are the
//! generic ports in `super::dot`; `tests` below holds the kernels to them.

use std::arch::x86_64::*;

use crate::gguf::TypeId;
use crate::quant::iquants::KVALUES_IQ4NL;

/// The instruction sets a kernel set is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Avx2,
    Avx512Vnni,
}

/// The kernel set for this CPU's level in force ([`crate::isa`]), if any: the AVX-512 VNNI
/// compilation from `avx512vnni` up, the AVX2 one from `avx2` up.
pub fn detect() -> Option<Level> {
    use crate::isa::{cpu, Level as L};
    let c = cpu();
    if c.at_least(L::Avx512Vnni) {
        Some(Level::Avx512Vnni)
    } else if c.at_least(L::Avx2) {
        Some(Level::Avx2)
    } else {
        None
    }
}

/// `get_scale_shuffle_k4`: picks the 16-bit scale `i` into every lane.
static SHUFFLE_K4: [[u8; 32]; 8] = {
    let mut t = [[0u8; 32]; 8];
    let mut i = 0;
    while i < 8 {
        let mut j = 0;
        while j < 32 {
            t[i][j] = (2 * i + j % 2) as u8;
            j += 1;
        }
        i += 1;
    }
    t
};

/// `get_scale_shuffle`: scale `2i` for the first 8 bytes, `2i + 1` for the next 8.
pub(crate) static SHUFFLE_Q6: [[u8; 16]; 8] = {
    let mut t = [[0u8; 16]; 8];
    let mut i = 0;
    while i < 8 {
        let mut j = 0;
        while j < 16 {
            t[i][j] = (2 * i + j / 8) as u8;
            j += 1;
        }
        i += 1;
    }
    t
};

/// Type ids in the form a const-generic kernel parameter takes (a `TypeId` cannot be one), from
/// the type table.
pub(crate) mod raw {
    use crate::gguf::TypeId;

    pub(crate) const Q8_0: u32 = TypeId::Q8_0.raw();
    pub(crate) const Q4_0: u32 = TypeId::Q4_0.raw();
    pub(crate) const Q5_0: u32 = TypeId::Q5_0.raw();
    pub(crate) const IQ4_NL: u32 = TypeId::IQ4_NL.raw();
}

/// Bytes of a block of the weight type with raw id `ty`, from the type table (a kernel's
/// const-generic type parameter; any other id is a bug and stops compilation or the program).
pub(crate) const fn block_bytes(ty: u32) -> usize {
    match TypeId::new(ty) {
        Some(t) => t.ty().type_size as usize,
        None => panic!("not a type id"),
    }
}

/// llama.cpp's tiled K-quant matmul takes over from 8 activation rows (`ggml_tiled_min_batch`).
const TILED_MIN_BATCH: usize = 8;

/// How far ahead of the weight row being read the decode kernels prefetch.
const PREFETCH: usize = 2048;

/// The kernel of type id `$ty` for `$n` columns (returns false from the caller for other types).
macro_rules! pick {
    ($ty:expr, $r8:expr, $t:expr, $w:expr, $y:expr, $ys:expr, $n:literal) => {
        match $ty {
            TypeId::Q8_0 => b32::<$n, { raw::Q8_0 }>($w, $y, $ys),
            TypeId::Q4_0 if $r8 => b32_r8::<$n, { raw::Q4_0 }>($w, $y, $ys),
            TypeId::Q4_0 => b32::<$n, { raw::Q4_0 }>($w, $y, $ys),
            TypeId::Q5_0 => b32::<$n, { raw::Q5_0 }>($w, $y, $ys),
            TypeId::IQ4_NL if $r8 => b32_r8::<$n, { raw::IQ4_NL }>($w, $y, $ys),
            TypeId::IQ4_NL => iq4_nl::<$n>($w, $y, $ys),
            TypeId::Q4_K if $r8 => q4_k_r8::<$n, { $n % 4 == 0 }>($w, $y),
            TypeId::Q4_K if $t => q45_k::<$n, false, true>($w, $y),
            TypeId::Q4_K => q45_k::<$n, false, false>($w, $y),
            TypeId::Q5_K if $t => q45_k::<$n, true, true>($w, $y),
            TypeId::Q5_K => q45_k::<$n, true, false>($w, $y),
            TypeId::Q6_K if $t => q6_k::<$n, true>($w, $y),
            TypeId::Q6_K => q6_k::<$n, false>($w, $y),
            TypeId::IQ4_XS if $t => iq4_xs::<$n, true>($w, $y),
            TypeId::IQ4_XS => iq4_xs::<$n, false>($w, $y),
            TypeId::Q2_K if $t => k_low::q2_k::<$n, true>($w, $y),
            TypeId::Q2_K => k_low::q2_k::<$n, false>($w, $y),
            TypeId::Q3_K if $t => k_low::q3_k::<$n, true>($w, $y),
            TypeId::Q3_K => k_low::q3_k::<$n, false>($w, $y),
            TypeId::TQ2_0 => k_low::tq2_0::<$n>($w, $y),
            TypeId::Q1_0 => k_low::q1_0::<$n>($w, $y, $ys),
            other if crate::exec::x86_iq::takes(other) => iq::dots::<$n>(other, $t, $w, $y),
            _ => return false,
        }
    };
}

/// Generates one kernel set for a target-feature string. `$vnni` selects `vpdpbusd` for the
/// unsigned-by-signed byte products.
macro_rules! kernels {
    ($name:ident, $feat:literal, $us8:path, $tiled:literal) => {
        pub(crate) mod $name {
            use super::*;
            // Q2_K, Q3_K, TQ2_0 and Q1_0 (`pick!`).
            use crate::exec::x86_iq::$name as iq;
            use crate::exec::x86_k_low::$name as k_low;

            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) fn hsum_float_8(x: __m256) -> f32 {
                let mut res = _mm256_extractf128_ps(x, 1);
                res = _mm_add_ps(res, _mm256_castps256_ps128(x));
                res = _mm_add_ps(res, _mm_movehl_ps(res, res));
                res = _mm_add_ss(res, _mm_movehdup_ps(res));
                _mm_cvtss_f32(res)
            }

            /// GGML_CPU_FP16_TO_FP32 with F16C.
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) fn h(b: &[u8], at: usize) -> f32 {
                let bits = u16::from_le_bytes([b[at], b[at + 1]]);
                _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
            }

            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) fn f32_at(b: &[u8], at: usize) -> f32 {
                f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
            }

            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) fn load256(b: &[u8]) -> __m256i {
                assert!(b.len() >= 32);
                // SAFETY: 32 bytes are readable (checked above); unaligned load.
                unsafe { _mm256_loadu_si256(b.as_ptr() as *const __m256i) }
            }

            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) fn load128(b: &[u8]) -> __m128i {
                assert!(b.len() >= 16);
                // SAFETY: 16 bytes are readable (checked above); unaligned load.
                unsafe { _mm_loadu_si128(b.as_ptr() as *const __m128i) }
            }

            /// Asks for the weights `PREFETCH` bytes ahead of `b` (a hint: never faults).
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) fn prefetch(b: &[u8]) {
                let p = b.as_ptr().wrapping_add(PREFETCH);
                // A prefetch is a hint: it never faults, whatever the address.
                _mm_prefetch(p as *const i8, _MM_HINT_T0);
            }

            /// `bytes_from_nibbles_32`: low nibbles in bytes 0-15, high nibbles in 16-31.
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) fn bytes_from_nibbles_32(b: &[u8]) -> __m256i {
                let tmp = load128(b);
                let bytes =
                    _mm256_insertf128_si256(_mm256_castsi128_si256(tmp), _mm_srli_epi16(tmp, 4), 1);
                _mm256_and_si256(_mm256_set1_epi8(0xF), bytes)
            }

            /// `bytes_from_bits_32`: bit i of 4 bytes to byte i as 0x00 or 0xFF.
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) fn bytes_from_bits_32(b: &[u8]) -> __m256i {
                let x32 = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                let shuf = _mm256_set_epi64x(
                    0x0303030303030303,
                    0x0202020202020202,
                    0x0101010101010101,
                    0,
                );
                let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(x32 as i32), shuf);
                let bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
                _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1))
            }

            /// `mul_sum_us8_pairs_float`: unsigned x signed bytes, summed in fours, as floats.
            #[inline]
            #[target_feature(enable = $feat)]
            fn mul_sum_us8_pairs_float(ax: __m256i, sy: __m256i) -> __m256 {
                $us8(ax, sy)
            }

            /// `mul_sum_i8_pairs_float`.
            #[inline]
            #[target_feature(enable = $feat)]
            fn mul_sum_i8_pairs_float(x: __m256i, y: __m256i) -> __m256 {
                let ax = _mm256_sign_epi8(x, x);
                let sy = _mm256_sign_epi8(y, x);
                mul_sum_us8_pairs_float(ax, sy)
            }

            /// `mul_add_epi8`.
            #[inline]
            #[target_feature(enable = $feat)]
            fn mul_add_epi8(x: __m256i, y: __m256i) -> __m256i {
                let ax = _mm256_sign_epi8(x, x);
                let sy = _mm256_sign_epi8(y, x);
                _mm256_maddubs_epi16(ax, sy)
            }

            /// `dots` for consecutive weight rows of `row_bytes` bytes each (`out`: `n` values per
            /// row, `n` being the number of activation rows): one call for a whole task.
            #[allow(clippy::too_many_arguments)]
            #[target_feature(enable = $feat)]
            pub(crate) fn dots_rows(
                ty: TypeId,
                r8: bool,
                w: &[u8],
                row_bytes: usize,
                q: &[u8],
                stride: usize,
                ds: &[f32],
                n: usize,
                out: &mut [f32],
            ) -> bool {
                // Decode of Q8_0 (the output matrix of most models): two weight rows per pass,
                // each with its own accumulator as in `q8_0`, two streams of loads in flight.
                if n == 1
                    && (ty == TypeId::Q8_0 || (!r8 && matches!(ty, TypeId::Q4_0 | TypeId::Q5_0)))
                    && !ds.is_empty()
                {
                    match ty {
                        TypeId::Q8_0 => {
                            rows2_all::<{ raw::Q8_0 }>(w, row_bytes, &q[..stride], ds, out)
                        }
                        TypeId::Q4_0 => {
                            rows2_all::<{ raw::Q4_0 }>(w, row_bytes, &q[..stride], ds, out)
                        }
                        _ => rows2_all::<{ raw::Q5_0 }>(w, row_bytes, &q[..stride], ds, out),
                    }
                    return true;
                }
                for (wr, d) in w.chunks_exact(row_bytes).zip(out.chunks_exact_mut(n)) {
                    if !dots(ty, r8, wr, q, stride, ds, d) {
                        return false;
                    }
                }
                true
            }

            /// `out[t] = w · q[t]` for the activation rows in `q` (`stride` bytes each), four
            /// columns at a time; false if the weight type `ty` has no kernel here. `r8`: the
            /// matrix is one llama.cpp repacks on x86 (Q4_0, IQ4_NL, Q4_K with rows a multiple of
            /// 8), whose products sum in the order of its repacked kernels.
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) fn dots(
                ty: TypeId,
                r8: bool,
                w: &[u8],
                q: &[u8],
                stride: usize,
                ds: &[f32],
                out: &mut [f32],
            ) -> bool {
                let n = out.len();
                // llama.cpp's tiled K-quant matmul (`ggml-cpu/tiled`) takes batches of 8 or more
                // activation rows of the K and IQ types it is not repacking; its AVX2 microkernel
                // scales each super-block's exact integer sums on their own (see `q6_k`).
                let t_k = $tiled && n >= TILED_MIN_BATCH;
                let row = |t: usize| &q[t * stride..(t + 1) * stride];
                // Q8_0 activations: their scales as f32, `nb` per row (empty for Q8_K).
                let nb = stride / 34;
                let sc = |t: usize| {
                    if ds.is_empty() {
                        ds
                    } else {
                        &ds[t * nb..(t + 1) * nb]
                    }
                };
                let mut t = 0;
                while t + 8 <= n {
                    let r = pick!(
                        ty,
                        r8,
                        t_k,
                        w,
                        std::array::from_fn(|i| row(t + i)),
                        std::array::from_fn(|i| sc(t + i)),
                        8
                    );
                    out[t..t + 8].copy_from_slice(&r);
                    t += 8;
                }
                while t + 4 <= n {
                    let r = pick!(
                        ty,
                        r8,
                        t_k,
                        w,
                        [row(t), row(t + 1), row(t + 2), row(t + 3)],
                        [sc(t), sc(t + 1), sc(t + 2), sc(t + 3)],
                        4
                    );
                    out[t..t + 4].copy_from_slice(&r);
                    t += 4;
                }
                if t + 2 <= n {
                    let r = pick!(ty, r8, t_k, w, [row(t), row(t + 1)], [sc(t), sc(t + 1)], 2);
                    out[t..t + 2].copy_from_slice(&r);
                    t += 2;
                }
                if t < n {
                    out[t] = pick!(ty, r8, t_k, w, [row(t)], [sc(t)], 1)[0];
                }
                true
            }

            /// `hsum_i32_8`.
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) fn hsum_i32_8(a: __m256i) -> i32 {
                let sum128 =
                    _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
                let hi64 = _mm_unpackhi_epi64(sum128, sum128);
                let sum64 = _mm_add_epi32(hi64, sum128);
                let hi32 = _mm_shuffle_epi32(sum64, 0b10_11_00_01);
                _mm_cvtsi128_si32(_mm_add_epi32(sum64, hi32))
            }

            /// ggml's repacked 32-value-block kernels (`gemv_q4_b32_8x8_q8_0_lut_avx` and its
            /// GEMM, for Q4_0 and IQ4_NL): per block the exact integer dot, then one multiply-add
            /// by the product of the scales, block after block.
            #[target_feature(enable = $feat)]
            pub(crate) fn b32_r8<const N: usize, const TY: u32>(
                w: &[u8],
                y: [&[u8]; N],
                ys: [&[f32]; N],
            ) -> [f32; N] {
                let mut acc = [0f32; N];
                for (ib, xb) in w.chunks_exact(18).enumerate() {
                    prefetch(xb);
                    let qx = unpack32::<TY>(xb);
                    let dx = h(xb, 0);
                    for c in 0..N {
                        let yb = &y[c][ib * 34..ib * 34 + 34];
                        // The lanes are exact integers below 2^24, and so are their sums.
                        let isum = hsum_float_8(mul_sum_i8_pairs_float(qx, load256(&yb[2..])));
                        acc[c] = isum.mul_add(dx * ys[c][ib], acc[c]);
                    }
                }
                acc
            }

            /// ggml's repacked Q4_K kernels: the GEMV (`ggml_gemv_q4_K_8x8_q8_K`, one token, or
            /// the last `n % 4` of a batch) multiply-adds the exact integer sums of each 256-value
            /// super-block (scaled products; mins times block sums) by their scale products; the
            /// GEMM (groups of 4 tokens, `GEMM = true`) does so for every 64 values. The mins'
            /// total is subtracted last.
            #[target_feature(enable = $feat)]
            pub(crate) fn q4_k_r8<const N: usize, const GEMM: bool>(
                w: &[u8],
                y: [&[u8]; N],
            ) -> [f32; N] {
                let m4 = _mm256_set1_epi8(0xF);
                let mut acc = [0f32; N];
                let mut acc_m = [0f32; N];
                for (i, xb) in w.chunks_exact(144).enumerate() {
                    prefetch(xb);
                    prefetch(&xb[64..]);
                    let (xd, xdmin) = (h(xb, 0), h(xb, 2));
                    let mins_and_scales = k4_scales(&xb[4..16]);
                    let mut ms = [0i16; 16];
                    // SAFETY: `ms` is 32 bytes, written unaligned.
                    unsafe {
                        _mm256_storeu_si256(ms.as_mut_ptr() as *mut __m256i, mins_and_scales)
                    };
                    let sc128 = _mm256_extracti128_si256(mins_and_scales, 0);
                    let scales = _mm256_insertf128_si256(_mm256_castsi128_si256(sc128), sc128, 1);
                    let mut q = [_mm256_setzero_si256(); 8];
                    for j in 0..4 {
                        let bits = load256(&xb[16 + 32 * j..]);
                        q[2 * j] = _mm256_and_si256(bits, m4);
                        q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
                    }
                    for c in 0..N {
                        let yb = &y[c][i * 292..i * 292 + 292];
                        let yd = f32_at(yb, 0);
                        let bsum = |k: usize| {
                            i16::from_le_bytes([yb[260 + 2 * k], yb[261 + 2 * k]]) as i32
                        };
                        let q8 = &yb[4..260];
                        let (mut isum_b, mut imin_b) = (0i32, 0i32);
                        for j in 0..4 {
                            let scale_l = _mm256_shuffle_epi8(scales, load256(&SHUFFLE_K4[2 * j]));
                            let scale_h =
                                _mm256_shuffle_epi8(scales, load256(&SHUFFLE_K4[2 * j + 1]));
                            let p16l = _mm256_maddubs_epi16(q[2 * j], load256(&q8[64 * j..]));
                            let p16h =
                                _mm256_maddubs_epi16(q[2 * j + 1], load256(&q8[64 * j + 32..]));
                            let isum = hsum_i32_8(_mm256_add_epi32(
                                _mm256_madd_epi16(scale_l, p16l),
                                _mm256_madd_epi16(scale_h, p16h),
                            ));
                            let imin = ms[8 + 2 * j] as i32 * (bsum(4 * j) + bsum(4 * j + 1))
                                + ms[9 + 2 * j] as i32 * (bsum(4 * j + 2) + bsum(4 * j + 3));
                            if GEMM {
                                acc[c] = (isum as f32).mul_add(xd * yd, acc[c]);
                                acc_m[c] = (imin as f32).mul_add(xdmin * yd, acc_m[c]);
                            } else {
                                isum_b += isum;
                                imin_b += imin;
                            }
                        }
                        if !GEMM {
                            acc[c] = (isum_b as f32).mul_add(xd * yd, acc[c]);
                            acc_m[c] = (imin_b as f32).mul_add(xdmin * yd, acc_m[c]);
                        }
                    }
                }
                let mut out = [0f32; N];
                for c in 0..N {
                    out[c] = acc[c] - acc_m[c];
                }
                out
            }

            /// `b32::<1, TY>` for every row of `w`, two rows per pass (an odd last row alone).
            #[target_feature(enable = $feat)]
            fn rows2_all<const TY: u32>(
                w: &[u8],
                row_bytes: usize,
                y: &[u8],
                ys: &[f32],
                out: &mut [f32],
            ) {
                let mut pairs = w.chunks_exact(2 * row_bytes);
                let mut outs = out.chunks_exact_mut(2);
                for (wp, o) in (&mut pairs).zip(&mut outs) {
                    let (w0, w1) = wp.split_at(row_bytes);
                    o.copy_from_slice(&rows2::<TY>(w0, w1, y, ys));
                }
                let (rest, o) = (pairs.remainder(), outs.into_remainder());
                if !rest.is_empty() {
                    o[0] = b32::<1, TY>(rest, [y], [ys])[0];
                }
            }

            /// `b32::<1, TY>` (Q8_0, Q4_0, Q5_0) for two weight rows at once (the same operations
            /// per row, two streams of loads in flight).
            #[target_feature(enable = $feat)]
            pub(crate) fn rows2<const TY: u32>(
                w0: &[u8],
                w1: &[u8],
                y: &[u8],
                ys: &[f32],
            ) -> [f32; 2] {
                let bb = block_bytes(TY);
                let mut acc = [_mm256_setzero_ps(); 2];
                for (ib, (x0, x1)) in w0.chunks_exact(bb).zip(w1.chunks_exact(bb)).enumerate() {
                    prefetch(x0);
                    prefetch(x1);
                    let yq = load256(&y[ib * 34 + 2..]);
                    for (a, xb) in acc.iter_mut().zip([x0, x1]) {
                        let d = _mm256_set1_ps(h(xb, 0) * ys[ib]);
                        let q = mul_sum_i8_pairs_float(unpack32::<TY>(xb), yq);
                        *a = _mm256_fmadd_ps(d, q, *a);
                    }
                }
                [hsum_float_8(acc[0]), hsum_float_8(acc[1])]
            }

            /// `ggml_vec_dot_q8_0_q8_0`, `ggml_vec_dot_q4_0_q8_0` and `ggml_vec_dot_q5_0_q8_0` (AVX2
            /// paths, `TY` the weight type id): per block the signed-byte dot as floats, multiply-added
            /// into 8 lanes by the product of the scales, the lanes summed at the end.
            #[target_feature(enable = $feat)]
            pub(crate) fn b32<const N: usize, const TY: u32>(
                w: &[u8],
                y: [&[u8]; N],
                ys: [&[f32]; N],
            ) -> [f32; N] {
                let mut acc = [_mm256_setzero_ps(); N];
                for (ib, xb) in w.chunks_exact(block_bytes(TY)).enumerate() {
                    prefetch(xb);
                    let qx = unpack32::<TY>(xb);
                    let dx = h(xb, 0);
                    for c in 0..N {
                        let yb = &y[c][ib * 34..ib * 34 + 34];
                        let d = _mm256_set1_ps(dx * ys[c][ib]);
                        let q = mul_sum_i8_pairs_float(qx, load256(&yb[2..]));
                        acc[c] = _mm256_fmadd_ps(d, q, acc[c]);
                    }
                }
                hsum_each(acc)
            }

            /// `ggml_vec_dot_iq4_nl_q8_0` (AVX2 path: blocks in pairs, two accumulators, an odd
            /// last block in scalar code).
            #[target_feature(enable = $feat)]
            pub(crate) fn iq4_nl<const N: usize>(
                w: &[u8],
                y: [&[u8]; N],
                ys: [&[f32]; N],
            ) -> [f32; N] {
                let values = load128(&KVALUES_IQ4NL.map(|v| v as u8));
                let mone = _mm256_set1_epi16(1);
                let nb = w.len() / 18;
                let mut acc1 = [_mm256_setzero_ps(); N];
                let mut acc2 = [_mm256_setzero_ps(); N];
                let mut ib = 0;
                while ib + 1 < nb {
                    let (x1, x2) = (&w[ib * 18..], &w[(ib + 1) * 18..]);
                    let (q4b_1, q4b_2) = (nl_unpack(values, &x1[2..]), nl_unpack(values, &x2[2..]));
                    let (dx1, dx2) = (h(x1, 0), h(x2, 0));
                    for c in 0..N {
                        let y1 = &y[c][ib * 34..];
                        let y2 = &y[c][(ib + 1) * 34..];
                        let p_1 = _mm256_madd_epi16(mul_add_epi8(q4b_1, load256(&y1[2..])), mone);
                        let p_2 = _mm256_madd_epi16(mul_add_epi8(q4b_2, load256(&y2[2..])), mone);
                        acc1[c] = _mm256_fmadd_ps(
                            _mm256_set1_ps(ys[c][ib] * dx1),
                            _mm256_cvtepi32_ps(p_1),
                            acc1[c],
                        );
                        acc2[c] = _mm256_fmadd_ps(
                            _mm256_set1_ps(ys[c][ib + 1] * dx2),
                            _mm256_cvtepi32_ps(p_2),
                            acc2[c],
                        );
                    }
                    ib += 2;
                }
                let mut out = [0f32; N];
                for c in 0..N {
                    let mut sumf = hsum_float_8(_mm256_add_ps(acc1[c], acc2[c]));
                    if ib < nb {
                        let (xb, yb) = (&w[ib * 18..ib * 18 + 18], &y[c][ib * 34..ib * 34 + 34]);
                        let d = ys[c][ib] * h(xb, 0);
                        let (mut s1, mut s2) = (0i32, 0i32);
                        for j in 0..16 {
                            s1 += yb[2 + j] as i8 as i32
                                * KVALUES_IQ4NL[(xb[2 + j] & 0xf) as usize] as i32;
                            s2 += yb[18 + j] as i8 as i32
                                * KVALUES_IQ4NL[(xb[2 + j] >> 4) as usize] as i32;
                        }
                        sumf += d * (s1 + s2) as f32;
                    }
                    out[c] = sumf;
                }
                out
            }

            /// `hsum_float_8` of each accumulator.
            #[inline]
            #[target_feature(enable = $feat)]
            fn hsum_each<const N: usize>(acc: [__m256; N]) -> [f32; N] {
                let mut out = [0f32; N];
                for c in 0..N {
                    out[c] = hsum_float_8(acc[c]);
                }
                out
            }

            /// A 32-value block of weight type `TY` (Q8_0, Q4_0, Q5_0 or IQ4_NL) as 32 signed bytes,
            /// the way ggml's AVX2 kernels unpack it.
            #[inline]
            #[target_feature(enable = $feat)]
            fn unpack32<const TY: u32>(xb: &[u8]) -> __m256i {
                match TY {
                    raw::Q8_0 => load256(&xb[2..]),
                    raw::Q4_0 => {
                        _mm256_sub_epi8(bytes_from_nibbles_32(&xb[2..]), _mm256_set1_epi8(8))
                    }
                    raw::Q5_0 => {
                        let qx = bytes_from_nibbles_32(&xb[6..]);
                        let bxhi = bytes_from_bits_32(&xb[2..]);
                        let bxhi = _mm256_andnot_si256(bxhi, _mm256_set1_epi8(0xF0u8 as i8));
                        _mm256_or_si256(qx, bxhi)
                    }
                    _ => nl_unpack(load128(&KVALUES_IQ4NL.map(|v| v as u8)), &xb[2..]),
                }
            }

            /// 16 bytes of IQ4 nibbles through the table: low nibbles in bytes 0-15, high in 16-31.
            #[inline]
            #[target_feature(enable = $feat)]
            fn nl_unpack(values: __m128i, b: &[u8]) -> __m256i {
                let m4b = _mm_set1_epi8(0x0f);
                let bits = load128(b);
                let lo = _mm_shuffle_epi8(values, _mm_and_si128(bits, m4b));
                let hi = _mm_shuffle_epi8(values, _mm_and_si128(_mm_srli_epi16(bits, 4), m4b));
                _mm256_insertf128_si256(_mm256_castsi128_si256(lo), hi, 1)
            }

            /// The 12 packed scale bytes of a Q4_K/Q5_K super-block as `utmp[0..4]` after ggml's
            /// shuffle (8 scales then 8 mins, one byte each).
            #[inline]
            #[target_feature(enable = $feat)]
            fn k4_scales(s: &[u8]) -> __m256i {
                const KMASK1: u32 = 0x3f3f3f3f;
                const KMASK2: u32 = 0x0f0f0f0f;
                const KMASK3: u32 = 0x03030303;
                let mut u = [
                    u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
                    u32::from_le_bytes([s[4], s[5], s[6], s[7]]),
                    u32::from_le_bytes([s[8], s[9], s[10], s[11]]),
                    0,
                ];
                u[3] = ((u[2] >> 4) & KMASK2) | (((u[1] >> 6) & KMASK3) << 4);
                let uaux = u[1] & KMASK1;
                u[1] = (u[2] & KMASK2) | (((u[0] >> 6) & KMASK3) << 4);
                u[2] = uaux;
                u[0] &= KMASK1;
                _mm256_cvtepu8_epi16(_mm_set_epi32(
                    u[3] as i32,
                    u[2] as i32,
                    u[1] as i32,
                    u[0] as i32,
                ))
            }

            /// `ggml_vec_dot_q4_K_q8_K` (`HIGH = false`) and `ggml_vec_dot_q5_K_q8_K`
            /// (`HIGH = true`), AVX2 paths.
            #[target_feature(enable = $feat)]
            pub(crate) fn q45_k<const N: usize, const HIGH: bool, const TILED: bool>(
                w: &[u8],
                y: [&[u8]; N],
            ) -> [f32; N] {
                let bs = if HIGH { 176 } else { 144 };
                let m4 = _mm256_set1_epi8(0xF);
                let mut acc = [_mm256_setzero_ps(); N];
                let mut acc_m = [_mm_setzero_ps(); N];
                let mut summs = [0f32; N];
                let mut acc_t = [0f32; N];
                for (i, xb) in w.chunks_exact(bs).enumerate() {
                    prefetch(xb);
                    prefetch(&xb[64..]);
                    let (xd, xdmin) = (h(xb, 0), h(xb, 2));
                    let mins_and_scales = k4_scales(&xb[4..16]);
                    let sc128 = _mm256_extracti128_si256(mins_and_scales, 0);
                    let scales = _mm256_insertf128_si256(_mm256_castsi128_si256(sc128), sc128, 1);
                    let mins = _mm256_extracti128_si256(mins_and_scales, 1);
                    let qs = if HIGH { &xb[48..176] } else { &xb[16..144] };
                    // The weights unpacked once: 8 vectors of 32 values (0-15, or 0-31 for Q5_K).
                    let mut q = [_mm256_setzero_si256(); 8];
                    let hbits = if HIGH {
                        load256(&xb[16..48])
                    } else {
                        _mm256_setzero_si256()
                    };
                    let mut hmask = _mm256_set1_epi8(1);
                    for j in 0..4 {
                        let bits = load256(&qs[32 * j..]);
                        q[2 * j] = _mm256_and_si256(bits, m4);
                        q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
                        if HIGH {
                            for k in 0..2 {
                                let bit = (2 * j + k) as i32;
                                let hb = _mm256_and_si256(hbits, hmask);
                                let hb = _mm256_sll_epi16(
                                    _mm256_srl_epi16(hb, _mm_cvtsi32_si128(bit)),
                                    _mm_cvtsi32_si128(4),
                                );
                                q[2 * j + k] = _mm256_add_epi8(q[2 * j + k], hb);
                                hmask = _mm256_slli_epi16(hmask, 1);
                            }
                        }
                    }
                    for c in 0..N {
                        let yb = &y[c][i * 292..i * 292 + 292];
                        let yd = f32_at(yb, 0);
                        let d = yd * xd;
                        let dmin = -yd * xdmin;
                        let q8sums = load256(&yb[260..]);
                        let q8s = _mm_hadd_epi16(
                            _mm256_extracti128_si256(q8sums, 0),
                            _mm256_extracti128_si256(q8sums, 1),
                        );
                        let prod = _mm_madd_epi16(mins, q8s);
                        if TILED {
                            // Taken off below, after the scales' sum.
                        } else if HIGH {
                            let z = _mm_setzero_si128();
                            let hs = _mm_hadd_epi32(_mm_hadd_epi32(prod, z), z);
                            summs[c] += dmin * _mm_cvtsi128_si32(hs) as f32;
                        } else {
                            acc_m[c] =
                                _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m[c]);
                        }
                        let q8 = &yb[4..260];
                        let mut sumi = _mm256_setzero_si256();
                        for j in 0..4 {
                            let scale_l = _mm256_shuffle_epi8(scales, load256(&SHUFFLE_K4[2 * j]));
                            let scale_h =
                                _mm256_shuffle_epi8(scales, load256(&SHUFFLE_K4[2 * j + 1]));
                            let p16l = _mm256_maddubs_epi16(q[2 * j], load256(&q8[64 * j..]));
                            let p16l = _mm256_madd_epi16(scale_l, p16l);
                            let p16h =
                                _mm256_maddubs_epi16(q[2 * j + 1], load256(&q8[64 * j + 32..]));
                            let p16h = _mm256_madd_epi16(scale_h, p16h);
                            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p16l, p16h));
                        }
                        if TILED {
                            // As `q6_k`'s tiled form, the mins' sum `s2` taken off fused:
                            // `r = d · s1`, `r = r - dmin · s2`, `acc = r · d_y + acc`.
                            let s2 = _mm_hadd_epi32(prod, prod);
                            let s2 = _mm_cvtsi128_si32(_mm_hadd_epi32(s2, s2));
                            let r = xd * hsum_i32_8(sumi) as f32;
                            let r = (-xdmin).mul_add(s2 as f32, r);
                            acc_t[c] = r.mul_add(yd, acc_t[c]);
                        } else {
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
                let mut out = [0f32; N];
                for c in 0..N {
                    out[c] = if HIGH {
                        hsum_float_8(acc[c]) + summs[c]
                    } else {
                        let mut m = _mm_add_ps(acc_m[c], _mm_movehl_ps(acc_m[c], acc_m[c]));
                        m = _mm_add_ss(m, _mm_movehdup_ps(m));
                        hsum_float_8(acc[c]) + _mm_cvtss_f32(m)
                    };
                }
                out
            }

            /// A Q6_K super-block unpacked as `ggml_vec_dot_q6_K_q8_K` (AVX2) unpacks it: the 8
            /// vectors of codes (0-63) and the 8 vectors of 16-bit scales for them.
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) fn q6_unpack(xb: &[u8]) -> ([__m256i; 8], [__m256i; 8]) {
                let m3 = _mm256_set1_epi8(3);
                let m15 = _mm256_set1_epi8(15);
                let (ql, qh) = (&xb[0..128], &xb[128..192]);
                let scales = load128(&xb[192..208]);
                let mut q = [_mm256_setzero_si256(); 8];
                let mut sc = [_mm256_setzero_si256(); 8];
                for j in 0..2 {
                    let b1 = load256(&ql[64 * j..]);
                    let b2 = load256(&ql[64 * j + 32..]);
                    let bh = load256(&qh[32 * j..]);
                    let h0 = _mm256_slli_epi16(_mm256_and_si256(bh, m3), 4);
                    let h1 = _mm256_slli_epi16(_mm256_and_si256(bh, _mm256_set1_epi8(12)), 2);
                    let h2 = _mm256_and_si256(bh, _mm256_set1_epi8(48));
                    let h3 = _mm256_srli_epi16(_mm256_and_si256(bh, _mm256_set1_epi8(-64)), 2);
                    q[4 * j] = _mm256_or_si256(_mm256_and_si256(b1, m15), h0);
                    q[4 * j + 1] = _mm256_or_si256(_mm256_and_si256(b2, m15), h1);
                    q[4 * j + 2] =
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m15), h2);
                    q[4 * j + 3] =
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m15), h3);
                    for k in 0..4 {
                        let s = _mm_shuffle_epi8(scales, load128(&SHUFFLE_Q6[4 * j + k]));
                        sc[4 * j + k] = _mm256_cvtepi8_epi16(s);
                    }
                }
                (q, sc)
            }

            /// `ggml_vec_dot_q6_K_q8_K` (AVX2 path). `TILED`: the AVX2 microkernel of llama.cpp's
            /// tiled K-quant matmul instead (`tiled_run_microtile_avx2`), which takes each
            /// super-block's exact integer sum `s1` whole: `r = d · s1`, then `acc = r · d_y + acc`
            /// fused, super-block after super-block.
            #[target_feature(enable = $feat)]
            pub(crate) fn q6_k<const N: usize, const TILED: bool>(
                w: &[u8],
                y: [&[u8]; N],
            ) -> [f32; N] {
                let mut acc = [_mm256_setzero_ps(); N];
                let mut acc_t = [0f32; N];
                for (i, xb) in w.chunks_exact(210).enumerate() {
                    prefetch(xb);
                    prefetch(&xb[64..]);
                    prefetch(&xb[128..]);
                    let scales_16 = _mm256_cvtepi8_epi16(load128(&xb[192..208]));
                    let xd = h(xb, 208);
                    let (q, sc) = q6_unpack(xb);
                    for c in 0..N {
                        let yb = &y[c][i * 292..i * 292 + 292];
                        let d = f32_at(yb, 0) * xd;
                        let q8sums = load256(&yb[260..]);
                        let q8sclsub = _mm256_slli_epi32(_mm256_madd_epi16(q8sums, scales_16), 5);
                        let q8 = &yb[4..260];
                        let mut sumi = _mm256_setzero_si256();
                        for j in 0..2 {
                            let mut p = [_mm256_setzero_si256(); 4];
                            for (k, pk) in p.iter_mut().enumerate() {
                                let y8 = load256(&q8[128 * j + 32 * k..]);
                                let p16 = _mm256_maddubs_epi16(q[4 * j + k], y8);
                                *pk = _mm256_madd_epi16(sc[4 * j + k], p16);
                            }
                            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p[0], p[1]));
                            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p[2], p[3]));
                        }
                        sumi = _mm256_sub_epi32(sumi, q8sclsub);
                        if TILED {
                            let r = xd * hsum_i32_8(sumi) as f32;
                            acc_t[c] = r.mul_add(f32_at(yb, 0), acc_t[c]);
                        } else {
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
                hsum_each(acc)
            }

            /// `ggml_vec_dot_iq4_xs_q8_K` (AVX2 path).
            #[target_feature(enable = $feat)]
            pub(crate) fn iq4_xs<const N: usize, const TILED: bool>(
                w: &[u8],
                y: [&[u8]; N],
            ) -> [f32; N] {
                let values = load128(&KVALUES_IQ4NL.map(|v| v as u8));
                let mut acc = [_mm256_setzero_ps(); N];
                let mut acc_t = [0f32; N];
                for (ibl, xb) in w.chunks_exact(136).enumerate() {
                    let xd = h(xb, 0);
                    let mut sh = u16::from_le_bytes([xb[2], xb[3]]);
                    let mut q4b = [_mm256_setzero_si256(); 8];
                    let mut ls = [_mm256_setzero_si256(); 8];
                    for ib in (0..8).step_by(2) {
                        for k in 0..2 {
                            q4b[ib + k] = nl_unpack(values, &xb[8 + 16 * (ib + k)..]);
                        }
                        let sl = xb[4 + ib / 2];
                        let ls1 = ((sl & 0xf) as i16 | ((sh << 4) & 0x30) as i16) - 32;
                        let ls2 = ((sl >> 4) as i16 | ((sh << 2) & 0x30) as i16) - 32;
                        sh >>= 4;
                        ls[ib] = _mm256_set1_epi16(ls1);
                        ls[ib + 1] = _mm256_set1_epi16(ls2);
                    }
                    for c in 0..N {
                        let yb = &y[c][ibl * 292..ibl * 292 + 292];
                        let q8 = &yb[4..260];
                        let mut sumi1 = _mm256_setzero_si256();
                        let mut sumi2 = _mm256_setzero_si256();
                        for ib in (0..8).step_by(2) {
                            let p16_1 = mul_add_epi8(q4b[ib], load256(&q8[32 * ib..]));
                            let p16_2 = mul_add_epi8(q4b[ib + 1], load256(&q8[32 * ib + 32..]));
                            sumi1 = _mm256_add_epi32(_mm256_madd_epi16(p16_1, ls[ib]), sumi1);
                            sumi2 = _mm256_add_epi32(_mm256_madd_epi16(p16_2, ls[ib + 1]), sumi2);
                        }
                        if TILED {
                            // As `q6_k`'s tiled form.
                            let r = xd * hsum_i32_8(_mm256_add_epi32(sumi1, sumi2)) as f32;
                            acc_t[c] = r.mul_add(f32_at(yb, 0), acc_t[c]);
                        } else {
                            acc[c] = _mm256_fmadd_ps(
                                _mm256_set1_ps(xd * f32_at(yb, 0)),
                                _mm256_cvtepi32_ps(_mm256_add_epi32(sumi1, sumi2)),
                                acc[c],
                            );
                        }
                    }
                }
                if TILED {
                    return acc_t;
                }
                hsum_each(acc)
            }
        }
    };
}

/// `vpdpbusd` on 256-bit vectors from zero, as floats (ggml with AVX512VNNI and AVX512VL).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn us8_vnni(ax: __m256i, sy: __m256i) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sy))
}

/// `maddubs` then `madd` with ones, as floats (plain AVX2).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn us8_avx2(ax: __m256i, sy: __m256i) -> __m256 {
    let dot = _mm256_maddubs_epi16(ax, sy);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), dot))
}

kernels!(avx2, "avx2,fma,f16c", us8_avx2, true);
kernels!(
    vnni,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    us8_vnni,
    false
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::dot::tests::{case, ported};
    use crate::exec::dot::{scalar_dot, Kernels};

    /// Every kernel, at every level this CPU has, in both summation orders (vec_dot's and the
    /// repacked kernels'), against the scalar reference: the same integer sums with the float
    /// additions in another order, so within 1e-5 of the sum of |products| (bounded here by the dot
    /// of absolute values); and a column's result does not depend on how many columns are computed
    /// with it (1, 2 or 4 at a time: bit for bit), except where ggml's own GEMM and GEMV differ.
    /// The scalar form of llama.cpp's tiled K-quant matmul on AVX2 (`tiled_run_microtile_avx2`) for
    /// one weight row and one Q8_K activation row: per super-block the exact integer sums `s1`
    /// (scales times quants times activations) and `s2` (mins times activation sums), then
    /// `r = d · s1`, `r = r - dmin · s2` (fused), `acc = r · d_y + acc` (fused). None for types the
    /// tiled path does not take here.
    fn tiled_ref(ty: TypeId, w: &[u8], y: &[u8]) -> Option<f32> {
        use crate::quant::kquants::get_scale_min_k4;
        let f16 = |b: &[u8], at: usize| half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32();
        let bs = match ty {
            TypeId::Q4_K => 144,
            TypeId::Q5_K => 176,
            TypeId::Q6_K => 210,
            TypeId::IQ4_XS => 136,
            _ => return crate::exec::x86_iq::tiled_ref(ty, w, y),
        };
        let mut acc = 0f32;
        for (xb, yb) in w.chunks_exact(bs).zip(y.chunks_exact(292)) {
            let yd = f32::from_le_bytes([yb[0], yb[1], yb[2], yb[3]]);
            let yq = |i: usize| yb[4 + i] as i8 as i64;
            // (value, group) for the 256 weights, the group's scale and min.
            let mut q = [0i64; 256];
            let mut sc = [0i64; 16];
            let mut mn = [0i64; 16];
            let group;
            let (d, dmin);
            match ty {
                TypeId::Q4_K | TypeId::Q5_K => {
                    group = 32;
                    (d, dmin) = (f16(xb, 0), f16(xb, 2));
                    for j in 0..8 {
                        let (a, m) = get_scale_min_k4(j, &xb[4..16]);
                        (sc[j], mn[j]) = (a as i64, m as i64);
                    }
                    let qs = if ty == TypeId::Q5_K {
                        &xb[48..176]
                    } else {
                        &xb[16..144]
                    };
                    for j in 0..4 {
                        for l in 0..32 {
                            let (mut lo, mut hi) =
                                ((qs[32 * j + l] & 0xf) as i64, (qs[32 * j + l] >> 4) as i64);
                            if ty == TypeId::Q5_K {
                                lo += (((xb[16 + l] >> (2 * j)) & 1) as i64) << 4;
                                hi += (((xb[16 + l] >> (2 * j + 1)) & 1) as i64) << 4;
                            }
                            (q[64 * j + l], q[64 * j + 32 + l]) = (lo, hi);
                        }
                    }
                }
                TypeId::Q6_K => {
                    group = 16;
                    (d, dmin) = (f16(xb, 208), 0.0);
                    for (j, v) in sc.iter_mut().enumerate() {
                        *v = xb[192 + j] as i8 as i64;
                    }
                    for half in 0..2 {
                        let (ql, qh) = (&xb[64 * half..], &xb[128 + 32 * half..]);
                        for l in 0..32 {
                            let v = |lo: u8, sh: u32| {
                                (lo as i64 | (((qh[l] >> sh) & 3) as i64) << 4) - 32
                            };
                            let o = 128 * half + l;
                            q[o] = v(ql[l] & 0xf, 0);
                            q[o + 32] = v(ql[l + 32] & 0xf, 2);
                            q[o + 64] = v(ql[l] >> 4, 4);
                            q[o + 96] = v(ql[l + 32] >> 4, 6);
                        }
                    }
                }
                _ => {
                    group = 32;
                    (d, dmin) = (f16(xb, 0), 0.0);
                    let sh = u16::from_le_bytes([xb[2], xb[3]]);
                    for ib in 0..8 {
                        let ls = ((xb[4 + ib / 2] >> (4 * (ib % 2))) & 0xf) as i64
                            | ((((sh >> (2 * ib)) & 3) as i64) << 4);
                        sc[ib] = ls - 32;
                        for j in 0..16 {
                            let b = xb[8 + 16 * ib + j];
                            q[32 * ib + j] = KVALUES_IQ4NL[(b & 0xf) as usize] as i64;
                            q[32 * ib + 16 + j] = KVALUES_IQ4NL[(b >> 4) as usize] as i64;
                        }
                    }
                }
            }
            let (mut s1, mut s2) = (0i64, 0i64);
            for (i, v) in q.iter().enumerate() {
                s1 += sc[i / group] * v * yq(i);
                s2 += mn[i / group] * yq(i);
            }
            let mut r = d * s1 as i32 as f32;
            if matches!(ty, TypeId::Q4_K | TypeId::Q5_K) {
                r = (-dmin).mul_add(s2 as i32 as f32, r);
            }
            acc = r.mul_add(yd, acc);
        }
        Some(acc)
    }

    /// The AVX2 kernels' tiled form (batches of 8 or more) equals its scalar form bit for bit, on
    /// every column, for each type the tiled path takes (Q4_K only where it is not repacked).
    #[test]
    fn tiled_kernels_equal_scalar_tiled_form() {
        if detect().is_none() {
            return eprintln!("no AVX2 on this CPU: nothing to compare");
        }
        let mut checked = 0;
        for name in ["q4_K", "q5_K", "q6_K", "iq4_xs"] {
            for (cols, n) in [(256, 8), (2048, 9), (768, 13)] {
                let (wq, acts, ty) = case(name, cols, 3, n, cols as u64 + 1);
                let rb = wq.len() / 3;
                for r in 0..3 {
                    let w = &wq[r * rb..(r + 1) * rb];
                    let mut got = vec![0f32; n];
                    let k = Kernels::X86(Level::Avx2);
                    assert!(crate::exec::dot::simd_dots_for_test(
                        k, ty.id, false, w, &acts, &mut got
                    ));
                    for (t, g) in got.iter().enumerate() {
                        let y = crate::exec::dot::tests::act_row_q(&acts, t);
                        let want = tiled_ref(ty.id, w, y).expect("a tiled type");
                        assert_eq!(
                            g.to_bits(),
                            want.to_bits(),
                            "{name} cols {cols} row {r} col {t}: {g} vs {want}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 3 * (8 + 9 + 13));
    }

    #[test]
    fn kernels_match_scalar_references() {
        let levels: Vec<Level> = match detect() {
            Some(Level::Avx512Vnni) => vec![Level::Avx2, Level::Avx512Vnni],
            Some(Level::Avx2) => vec![Level::Avx2],
            None => return eprintln!("no AVX2 on this CPU: nothing to compare"),
        };
        for name in ported() {
            for (cols, n) in [(256, 1), (512, 7), (2048, 5), (768, 4), (512, 13)] {
                if name.ends_with('0') || name == "iq4_nl" || cols % 256 == 0 {
                    let (wq, acts, ty) = case(name, cols, 3, n, cols as u64);
                    let rb = wq.len() / 3;
                    for (level, r8) in levels.iter().flat_map(|l| [(l, false), (l, true)]) {
                        for r in 0..3 {
                            let w = &wq[r * rb..(r + 1) * rb];
                            let mut got = vec![0f32; n];
                            let k = Kernels::X86(*level);
                            let ok = crate::exec::dot::simd_dots_for_test(
                                k, ty.id, r8, w, &acts, &mut got,
                            );
                            assert!(ok, "{name}: no kernel");
                            for (t, g) in got.iter().enumerate() {
                                let y = crate::exec::dot::tests::act_row_q(&acts, t);
                                let want = scalar_dot(ty.id, w, y);
                                let bound = crate::exec::dot::tests::abs_dot(ty, w, &acts, t);
                                assert!(
                                    ((g - want) as f64).abs() <= 1e-5 * bound,
                                    "{name} {level:?} r8 {r8} cols {cols} row {r} col {t}: {g} vs {want}"
                                );
                                let mut one = [0f32];
                                let k1 = crate::exec::dot::tests::act_one(&acts, t);
                                crate::exec::dot::simd_dots_for_test(
                                    k, ty.id, r8, w, &k1, &mut one,
                                );
                                // Repacked Q4_K: groups of 4 columns take ggml's GEMM order,
                                // the others its GEMV order (within the bound above). Batches
                                // of 8 or more of the tiled types take the tiled form at the
                                // AVX2 level (`tiled_kernels_equal_scalar_tiled_form`).
                                let tiled = *level == Level::Avx2
                                    && n >= TILED_MIN_BATCH
                                    && (tiled_ref(ty.id, w, y).is_some()
                                        || crate::exec::x86_k_low::tests::tiled_ref(ty.id, w, y)
                                            .is_some())
                                    && !(r8 && name == "q4_K");
                                if !(tiled || r8 && name == "q4_K" && t < n / 4 * 4) {
                                    assert_eq!(
                                        one[0].to_bits(),
                                        g.to_bits(),
                                        "{name} {level:?}: column {t} alone"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The two-row decode path (Q8_0, Q4_0, Q5_0) gives each row the bits of the one-row kernel
    /// (odd row counts too: the last row alone).
    #[test]
    fn decode_rows_equal_single_rows() {
        let Some(level) = detect() else {
            return eprintln!("no AVX2 on this CPU: nothing to compare");
        };
        for name in ["q8_0", "q4_0", "q5_0"] {
            let (wq, acts, ty) = case(name, 640, 7, 1, 3);
            let rb = wq.len() / 7;
            let (q, stride, _) = acts.q_rows().unwrap();
            let ds = crate::exec::dot::tests::act_scales(&acts);
            let mut rows = vec![0f32; 7];
            // SAFETY: `detect` found the features.
            let ok = unsafe {
                match level {
                    Level::Avx2 => {
                        avx2::dots_rows(ty.id, false, &wq, rb, q, stride, ds, 1, &mut rows)
                    }
                    Level::Avx512Vnni => {
                        vnni::dots_rows(ty.id, false, &wq, rb, q, stride, ds, 1, &mut rows)
                    }
                }
            };
            assert!(ok);
            for (r, got) in rows.iter().enumerate() {
                let mut one = [0f32];
                crate::exec::dot::simd_dots_for_test(
                    Kernels::X86(level),
                    ty.id,
                    false,
                    &wq[r * rb..(r + 1) * rb],
                    &acts,
                    &mut one,
                );
                assert_eq!(got.to_bits(), one[0].to_bits(), "{name} row {r}");
            }
        }
    }

    /// AVX2 and VNNI compilations give the same bits (their integer sums are the same).
    #[test]
    fn vnni_equals_avx2() {
        if detect() != Some(Level::Avx512Vnni) {
            return eprintln!("no AVX-512 VNNI on this CPU: nothing to compare");
        }
        for name in ported() {
            let (wq, acts, ty) = case(name, 1024, 2, 6, 99);
            let rb = wq.len() / 2;
            for r in 0..2 {
                let (mut a, mut b) = (vec![0f32; 6], vec![0f32; 6]);
                let w = &wq[r * rb..(r + 1) * rb];
                crate::exec::dot::simd_dots_for_test(
                    Kernels::X86(Level::Avx2),
                    ty.id,
                    true,
                    w,
                    &acts,
                    &mut a,
                );
                crate::exec::dot::simd_dots_for_test(
                    Kernels::X86(Level::Avx512Vnni),
                    ty.id,
                    true,
                    w,
                    &acts,
                    &mut b,
                );
                assert_eq!(
                    a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{name}"
                );
            }
        }
    }
}
