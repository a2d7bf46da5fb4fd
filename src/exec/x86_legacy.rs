//! x86_64 kernels of the legacy types with a minimum, Q4_1 and Q5_1, against Q8_1 activations:
//! ports of ggml-cpu's AVX2 `ggml_vec_dot_q4_1_q8_1` / `ggml_vec_dot_q5_1_q8_1`
//! (`ggml-cpu/arch/x86/quants.c`) with the same integer sums and float operations in the same
//! order: per block the unsigned-by-signed byte dot as 8 float lanes, multiply-added by `d_x * d_y`,
//! and `m_x * s_y` multiply-added into a scalar (GCC contracts `summs += m * s` into `vfmadd231ss`
//! in the peer's `libggml-cpu.so`); the result is `hsum(acc) + summs`. Like `x86.rs`, one
//! compilation for AVX2 (`maddubs` + `madd`) and one for AVX-512 VNNI (`vpdpbusd`, the same
//! integers). llama.cpp neither repacks these types nor has a tinyBLAS path for them, so batches
//! take the same vec_dot per activation row, which is what pocket does (4 rows per pass over a
//! weight row). The scalar oracles are `dot::dot_q4_1` / `dot::dot_q5_1` (ggml's generic code,
//! another float order: `tests` holds the kernels within 1e-5 of the sum of |products|).

// The ports keep ggml's lane and index loops, to be read side by side with the C code.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::x86::Level;
use crate::gguf::TypeId;

macro_rules! kernels {
    ($name:ident, $feat:literal, $us8:path) => {
        pub(crate) mod $name {
            use super::*;
            use crate::exec::x86::avx2::{
                bytes_from_bits_32, bytes_from_nibbles_32, h, hsum_float_8, load256,
            };

            /// Q4_1 (`HIGH` = false) or Q5_1 weights, `N` Q8_1 activation rows.
            #[target_feature(enable = $feat)]
            pub(crate) fn b32_1<const N: usize, const HIGH: bool>(
                w: &[u8],
                y: [&[u8]; N],
            ) -> [f32; N] {
                let bs = if HIGH { 24 } else { 20 };
                let mut acc = [_mm256_setzero_ps(); N];
                let mut summs = [0f32; N];
                for (ib, xb) in w.chunks_exact(bs).enumerate() {
                    // A hint: never faults, whatever the address.
                    _mm_prefetch(xb.as_ptr().wrapping_add(2048) as *const i8, _MM_HINT_T0);
                    let (d0, m0) = (h(xb, 0), h(xb, 2));
                    let qx = if HIGH {
                        let qx = bytes_from_nibbles_32(&xb[8..]);
                        let hi =
                            _mm256_and_si256(bytes_from_bits_32(&xb[4..]), _mm256_set1_epi8(0x10));
                        _mm256_or_si256(qx, hi)
                    } else {
                        bytes_from_nibbles_32(&xb[4..])
                    };
                    for c in 0..N {
                        let yb = &y[c][ib * 36..ib * 36 + 36];
                        summs[c] = m0.mul_add(h(yb, 2), summs[c]);
                        let xy = $us8(qx, load256(&yb[4..]));
                        let d = _mm256_set1_ps(d0 * h(yb, 0));
                        acc[c] = _mm256_fmadd_ps(d, xy, acc[c]);
                    }
                }
                std::array::from_fn(|c| hsum_float_8(acc[c]) + summs[c])
            }

            /// `out[t] = w · q[t]` for the Q8_1 rows in `q` (`stride` bytes each), four at a
            /// time; false for types other than Q4_1 and Q5_1.
            #[target_feature(enable = $feat)]
            pub(crate) fn dots(
                ty: TypeId,
                w: &[u8],
                q: &[u8],
                stride: usize,
                out: &mut [f32],
            ) -> bool {
                macro_rules! pick {
                    ($y:expr, $n:literal) => {
                        match ty {
                            TypeId::Q4_1 => b32_1::<$n, false>(w, $y),
                            TypeId::Q5_1 => b32_1::<$n, true>(w, $y),
                            _ => return false,
                        }
                    };
                }
                let row = |t: usize| &q[t * stride..(t + 1) * stride];
                let n = out.len();
                let mut t = 0;
                while t + 4 <= n {
                    let r = pick!([row(t), row(t + 1), row(t + 2), row(t + 3)], 4);
                    out[t..t + 4].copy_from_slice(&r);
                    t += 4;
                }
                while t < n {
                    out[t] = pick!([row(t)], 1)[0];
                    t += 1;
                }
                true
            }
        }
    };
}

kernels!(avx2, "avx2,fma,f16c", crate::exec::x86::us8_avx2);
kernels!(
    vnni,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    crate::exec::x86::us8_vnni
);

/// The kernel set of `level` for weight type `ty` (Q4_1, Q5_1); false for other types.
///
/// # Safety
/// The CPU must have the features of `level` (what `x86::detect` found).
pub(crate) unsafe fn dots(
    level: Level,
    ty: TypeId,
    w: &[u8],
    q: &[u8],
    stride: usize,
    out: &mut [f32],
) -> bool {
    // SAFETY: the caller's contract.
    unsafe {
        match level {
            Level::Avx2 => avx2::dots(ty, w, q, stride, out),
            Level::Avx512Vnni => vnni::dots(ty, w, q, stride, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::dot::tests::{abs_dot, act_one, act_row_q, case};
    use crate::exec::dot::{scalar_dot, Kernels};
    use crate::exec::x86::detect;

    /// Q4_1 and Q5_1 at every level this CPU has, against ggml's generic code (another float
    /// order: within 1e-5 of the sum of |products|); a column's bits do not depend on how many
    /// columns are computed with it; the VNNI compilation gives the AVX2 bits.
    #[test]
    fn kernels_match_scalar_references() {
        let levels: Vec<Level> = match detect() {
            Some(Level::Avx512Vnni) => vec![Level::Avx2, Level::Avx512Vnni],
            Some(Level::Avx2) => vec![Level::Avx2],
            None => return eprintln!("no AVX2 on this CPU: nothing to compare"),
        };
        let mut checked = 0;
        for name in ["q4_1", "q5_1"] {
            for (cols, n) in [(32, 1), (640, 1), (512, 7), (2048, 5), (96, 4)] {
                let (wq, acts, ty) = case(name, cols, 3, n, cols as u64 + 11);
                let rb = wq.len() / 3;
                let mut first: Option<Vec<u32>> = None;
                for level in &levels {
                    let mut bits = Vec::new();
                    for r in 0..3 {
                        let w = &wq[r * rb..(r + 1) * rb];
                        let mut got = vec![0f32; n];
                        let k = Kernels::X86(*level);
                        assert!(crate::exec::dot::simd_dots_for_test(
                            k, ty.id, false, w, &acts, &mut got
                        ));
                        for (t, g) in got.iter().enumerate() {
                            let want = scalar_dot(ty.id, w, act_row_q(&acts, t));
                            let bound = abs_dot(ty, w, &acts, t);
                            assert!(
                                ((g - want) as f64).abs() <= 1e-5 * bound,
                                "{name} {level:?} cols {cols} row {r} col {t}: {g} vs {want}"
                            );
                            let mut one = [0f32];
                            let a1 = act_one(&acts, t);
                            crate::exec::dot::simd_dots_for_test(k, ty.id, false, w, &a1, &mut one);
                            assert_eq!(one[0].to_bits(), g.to_bits(), "{name}: column {t} alone");
                            bits.push(g.to_bits());
                            checked += 1;
                        }
                    }
                    match &first {
                        None => first = Some(bits),
                        Some(f) => assert_eq!(f, &bits, "{name}: VNNI and AVX2 differ"),
                    }
                }
            }
        }
        assert!(checked >= 2 * 3 * 18, "{checked}");
    }

    /// The AVX2 kernel's float order, written out in scalar code, gives its bits exactly: per
    /// block `acc[lane] = fma(d_x * d_y, pair sum, acc[lane])` over the 8 lanes of 4 products
    /// each, `summs = fma(m, s, summs)`, then the halving tree of the lanes plus `summs`.
    #[test]
    fn kernel_order_is_ggmls_avx2_order() {
        if detect().is_none() {
            return eprintln!("no AVX2 on this CPU: nothing to compare");
        }
        for name in ["q4_1", "q5_1"] {
            let (wq, acts, ty) = case(name, 1024, 1, 1, 42);
            let y = act_row_q(&acts, 0);
            let f16 = |b: &[u8], at: usize| half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32();
            let bs = if name == "q4_1" { 20 } else { 24 };
            let mut lanes = [0f32; 8];
            let mut summs = 0f32;
            for (xb, yb) in wq.chunks_exact(bs).zip(y.chunks_exact(36)) {
                let mut v = [0i32; 32];
                let qs = &xb[bs - 16..];
                for j in 0..16 {
                    v[j] = (qs[j] & 0xf) as i32;
                    v[j + 16] = (qs[j] >> 4) as i32;
                    if bs == 24 {
                        let qh = u32::from_le_bytes([xb[4], xb[5], xb[6], xb[7]]);
                        v[j] |= (((qh >> j) & 1) << 4) as i32;
                        v[j + 16] |= (((qh >> (j + 16)) & 1) << 4) as i32;
                    }
                }
                summs = f16(xb, 2).mul_add(f16(yb, 2), summs);
                let d = f16(xb, 0) * f16(yb, 0);
                for (l, lane) in lanes.iter_mut().enumerate() {
                    let p: i32 = (0..4)
                        .map(|i| v[4 * l + i] * yb[4 + 4 * l + i] as i8 as i32)
                        .sum();
                    *lane = d.mul_add(p as f32, *lane);
                }
            }
            let t: [f32; 4] = std::array::from_fn(|l| lanes[l + 4] + lanes[l]);
            let want = ((t[0] + t[2]) + (t[1] + t[3])) + summs;
            let mut got = [0f32];
            let k = Kernels::X86(Level::Avx2);
            crate::exec::dot::simd_dots_for_test(k, ty.id, false, &wq, &acts, &mut got);
            assert_eq!(
                got[0].to_bits(),
                want.to_bits(),
                "{name}: {} vs {want}",
                got[0]
            );
        }
    }
}
