//! x86_64 dot products for the lattice i-quants below 4 bits (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS,
//! IQ3_S) with Q8_K activations: ports of ggml-cpu's AVX2 `ggml_vec_dot_iq*_q8_K`
//! (`ggml-cpu/arch/x86/quants.c`). Each super-block is unpacked once into 8 vectors of 32 grid
//! magnitudes, 8 of signs (±1 bytes) and 8 of 16-bit scales; each activation column then takes
//! `maddubs(|grid|, sign(q8)) · scale` into 8 int32 lanes, lane `k` summing values `4k..4k + 4` of
//! every 32, as ggml's lanes do (exact integers, so the same lane values), and multiply-adds them
//! by `d_x · d_y` into 8 float lanes, summed at the end and times the type's factor (1/8, 1/4, 1).
//! `TILED`: the order of llama.cpp's tiled matmul instead (`ggml-cpu/tiled`, AVX2 microkernel, from
//! 8 activation rows): `r = (d_x · factor) · s1` on each super-block's exact sum, then
//! `acc = r · d_y + acc` fused. ggml has no VNNI form of these; the second compilation is the
//! same code for AVX-512 CPUs. The oracles are the scalar ports in `super::dot_iq_low`.

use std::arch::x86_64::*;

use crate::gguf::TypeId;

use super::dot_iq_low::{group, raw, shape};

/// Whether the type has a kernel here.
pub(crate) fn takes(ty: TypeId) -> bool {
    matches!(
        ty,
        TypeId::IQ2_XXS | TypeId::IQ2_XS | TypeId::IQ2_S | TypeId::IQ3_XXS | TypeId::IQ3_S
    )
}

/// Generates one kernel set for a target-feature string (`$name` is also the `x86` kernel set
/// whose helpers it uses).
macro_rules! iq_kernels {
    ($name:ident, $feat:literal) => {
        pub(crate) mod $name {
            use super::*;
            use crate::exec::x86::$name::{h, hsum_float_8, hsum_i32_8, load256};

            /// `out[c] = w · y[c]` for the `N` activation rows of `y` (a type that `takes` accepts).
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) fn dots<const N: usize>(
                ty: TypeId,
                tiled: bool,
                w: &[u8],
                y: [&[u8]; N],
            ) -> [f32; N] {
                match (ty, tiled) {
                    (TypeId::IQ2_XXS, false) => iq::<N, { raw::IQ2_XXS }, false>(w, y),
                    (TypeId::IQ2_XXS, true) => iq::<N, { raw::IQ2_XXS }, true>(w, y),
                    (TypeId::IQ2_XS, false) => iq::<N, { raw::IQ2_XS }, false>(w, y),
                    (TypeId::IQ2_XS, true) => iq::<N, { raw::IQ2_XS }, true>(w, y),
                    (TypeId::IQ2_S, false) => iq::<N, { raw::IQ2_S }, false>(w, y),
                    (TypeId::IQ2_S, true) => iq::<N, { raw::IQ2_S }, true>(w, y),
                    (TypeId::IQ3_XXS, false) => iq::<N, { raw::IQ3_XXS }, false>(w, y),
                    (TypeId::IQ3_XXS, true) => iq::<N, { raw::IQ3_XXS }, true>(w, y),
                    (TypeId::IQ3_S, false) => iq::<N, { raw::IQ3_S }, false>(w, y),
                    (TypeId::IQ3_S, true) => iq::<N, { raw::IQ3_S }, true>(w, y),
                    _ => unreachable!("`takes` is checked first"),
                }
            }

            /// Four 64-bit words as a vector (`_mm256_set_epi64x` in ggml's order: `w[0]` lowest).
            #[inline]
            #[target_feature(enable = $feat)]
            fn v64(w: [u64; 4]) -> __m256i {
                _mm256_set_epi64x(w[3] as i64, w[2] as i64, w[1] as i64, w[0] as i64)
            }

            /// A super-block of type `TY` as 8 × 32 grid magnitudes, their ±1 signs and the
            /// 16-bit scales of each value.
            #[inline]
            #[target_feature(enable = $feat)]
            fn unpack<const TY: u32>(xb: &[u8]) -> ([__m256i; 8], [__m256i; 8], [__m256i; 8]) {
                let mut q = [_mm256_setzero_si256(); 8];
                let mut s = [_mm256_setzero_si256(); 8];
                let mut sc = [_mm256_setzero_si256(); 8];
                for g in 0..8 {
                    let gr = group::<TY>(xb, g);
                    q[g] = v64(gr.q);
                    s[g] = v64(gr.s);
                    sc[g] = _mm256_set_m128i(
                        _mm_set1_epi16(gr.ls[1] as i16),
                        _mm_set1_epi16(gr.ls[0] as i16),
                    );
                }
                (q, s, sc)
            }

            /// The kernel of type `TY` for `N` activation rows (see the module comment).
            #[target_feature(enable = $feat)]
            fn iq<const N: usize, const TY: u32, const TILED: bool>(
                w: &[u8],
                y: [&[u8]; N],
            ) -> [f32; N] {
                let (bytes, factor) = shape(TY);
                let mut acc = [_mm256_setzero_ps(); N];
                let mut acc_t = [0f32; N];
                for (i, xb) in w.chunks_exact(bytes).enumerate() {
                    // A hint: never faults, whatever the address.
                    _mm_prefetch(xb.as_ptr().wrapping_add(1024) as *const i8, _MM_HINT_T0);
                    let xd = h(xb, 0);
                    let (q, s, sc) = unpack::<TY>(xb);
                    for c in 0..N {
                        let yb = &y[c][i * 292..i * 292 + 292];
                        let yd = f32::from_le_bytes([yb[0], yb[1], yb[2], yb[3]]);
                        let q8 = &yb[4..260];
                        let mut sumi1 = _mm256_setzero_si256();
                        let mut sumi2 = _mm256_setzero_si256();
                        for g in (0..8).step_by(2) {
                            let q8s1 = _mm256_sign_epi8(load256(&q8[32 * g..]), s[g]);
                            let q8s2 = _mm256_sign_epi8(load256(&q8[32 * g + 32..]), s[g + 1]);
                            let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(q[g], q8s1), sc[g]);
                            let p2 =
                                _mm256_madd_epi16(_mm256_maddubs_epi16(q[g + 1], q8s2), sc[g + 1]);
                            sumi1 = _mm256_add_epi32(sumi1, p1);
                            sumi2 = _mm256_add_epi32(sumi2, p2);
                        }
                        let sumi = _mm256_add_epi32(sumi1, sumi2);
                        if TILED {
                            let r = (xd * factor) * hsum_i32_8(sumi) as f32;
                            acc_t[c] = r.mul_add(yd, acc_t[c]);
                        } else {
                            acc[c] = _mm256_fmadd_ps(
                                _mm256_set1_ps(xd * yd),
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
                    out[c] = factor * hsum_float_8(acc[c]);
                }
                out
            }
        }
    };
}

iq_kernels!(avx2, "avx2,fma,f16c");
iq_kernels!(vnni, "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni");

/// The scalar form of the tiled order, for `x86`'s kernel tests.
#[cfg(test)]
pub(crate) fn tiled_ref(ty: TypeId, w: &[u8], y: &[u8]) -> Option<f32> {
    super::dot_iq_low::tiled_form(ty, w, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::dot::tests::{act_row_q, case};
    use crate::exec::dot::{scalar_dot, simd_dots_for_test, Kernels};
    use crate::exec::x86::{detect, Level};

    const NAMES: [&str; 5] = ["iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s"];

    /// Each kernel, at each level this CPU has, against the scalar port: within 1e-5 of the sum of
    /// |products| (ggml's AVX2 order differs from its generic one); a column's result does not
    /// depend on the other columns computed with it below 8 (bit for bit); from 8 columns at the
    /// AVX2 level, each equals the scalar form of the tiled order bit for bit.
    #[test]
    fn kernels_match_scalar_ports_and_tiled_form() {
        let levels: Vec<Level> = match detect() {
            Some(Level::Avx512Vnni) => vec![Level::Avx2, Level::Avx512Vnni],
            Some(Level::Avx2) => vec![Level::Avx2],
            None => return eprintln!("no AVX2 on this CPU: nothing to compare"),
        };
        let mut checked = 0;
        for name in NAMES {
            for (cols, n) in [(256, 1), (512, 7), (768, 4), (1024, 9), (512, 13)] {
                let (wq, acts, ty) = case(name, cols, 3, n, cols as u64 + 5);
                let rb = wq.len() / 3;
                for &level in &levels {
                    for r in 0..3 {
                        let w = &wq[r * rb..(r + 1) * rb];
                        let mut got = vec![0f32; n];
                        let k = Kernels::X86(level);
                        assert!(simd_dots_for_test(k, ty.id, false, w, &acts, &mut got));
                        for (t, g) in got.iter().enumerate() {
                            let y = act_row_q(&acts, t);
                            let want = scalar_dot(ty.id, w, y);
                            let bound = crate::exec::dot::tests::abs_dot(ty, w, &acts, t);
                            assert!(
                                ((g - want) as f64).abs() <= 1e-5 * bound,
                                "{name} {level:?} cols {cols} row {r} col {t}: {g} vs {want}"
                            );
                            if level == Level::Avx2 && n >= 8 {
                                let tf = tiled_ref(ty.id, w, y).unwrap();
                                assert_eq!(g.to_bits(), tf.to_bits(), "{name} tiled col {t}");
                            } else {
                                let mut one = [0f32];
                                let k1 = crate::exec::dot::tests::act_one(&acts, t);
                                simd_dots_for_test(k, ty.id, false, w, &k1, &mut one);
                                assert_eq!(one[0].to_bits(), g.to_bits(), "{name} col {t} alone");
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 5 * 3 * levels.len() * (1 + 7 + 4 + 9 + 13));
    }

    /// The one-column kernel in ggml's AVX2 order, written out in scalar code: 8 float lanes, lane
    /// `k` taking `fma(d_x · d_y, Σ values 4k..4k + 4 of every 32, lane)` super-block after
    /// super-block, the lanes summed as `hsum_float_8` sums them, times the factor. Holds the
    /// vector kernel to ggml's order bit for bit, not just within the bound.
    #[test]
    fn one_column_is_ggml_avx2_order() {
        if detect().is_none() {
            return eprintln!("no AVX2 on this CPU: nothing to compare");
        }
        for name in NAMES {
            let (wq, acts, ty) = case(name, 1024, 2, 1, 17);
            let rb = wq.len() / 2;
            let (bytes, factor) = shape(ty.id.raw());
            for r in 0..2 {
                let w = &wq[r * rb..(r + 1) * rb];
                let y = act_row_q(&acts, 0);
                let mut lanes = [0f32; 8];
                for (xb, yb) in w.chunks_exact(bytes).zip(y.chunks_exact(292)) {
                    let mut wd = [0f32; 256];
                    crate::quant::dequantize_row(ty, xb, &mut wd).unwrap();
                    let dx = half::f16::from_le_bytes([xb[0], xb[1]]).to_f32();
                    let yd = f32::from_le_bytes([yb[0], yb[1], yb[2], yb[3]]);
                    let mut li = [0i64; 8];
                    for (v, (&a, &b)) in wd.iter().zip(&yb[4..260]).enumerate() {
                        // Dequantized values are dx * factor * scale * grid: exact integers of
                        // scale * grid times dx * factor (a power of two times an f16).
                        let k = (a / (dx * factor)).round() as i64;
                        li[(v % 32) / 4] += k * b as i8 as i64;
                    }
                    for k in 0..8 {
                        lanes[k] = (dx * yd).mul_add(li[k] as f32, lanes[k]);
                    }
                }
                let s4 = [
                    lanes[0] + lanes[4],
                    lanes[1] + lanes[5],
                    lanes[2] + lanes[6],
                    lanes[3] + lanes[7],
                ];
                let s2 = [s4[0] + s4[2], s4[1] + s4[3]];
                let want = factor * (s2[0] + s2[1]);
                let mut got = [0f32];
                simd_dots_for_test(Kernels::X86(Level::Avx2), ty.id, false, w, &acts, &mut got);
                assert_eq!(got[0].to_bits(), want.to_bits(), "{name} row {r}");
            }
        }
    }
}
