//! AVX2 + F16C forms of the F16/BF16 dot products of `float_dot`, in each of ggml's orders: the
//! products are exact in f32 and multiply-added lane by lane, so a 16-lane order (AVX-512F builds
//! of ggml) is computed exactly on pairs of 8-lane registers, and every form gives the bits of its
//! scalar port (`float_dot::dot`), which `tests` checks.
//!
//! Decode (`ggml_vec_dot_f16` / `_bf16` orders) runs one weight row at a time; prompts (tinyBLAS's
//! order) in register tiles of 4 weight rows by 3 activation rows, as tinyBLAS tiles them with 16
//! vector registers.

// The ports keep ggml's lane and index loops, to be read side by side with the C code.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::float_dot::{Half, Order};

/// 8 values of a weight row (F16 or BF16 at byte offset `at`) widened to f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_w<const BF: bool>(w: &[u8], at: usize) -> __m256 {
    let b = &w[at..at + 16];
    // SAFETY: 16 bytes are readable (the slice above is checked); unaligned load.
    let v = unsafe { _mm_loadu_si128(b.as_ptr() as *const __m128i) };
    if BF {
        _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16))
    } else {
        _mm256_cvtph_ps(v)
    }
}

/// 8 activation values from `at`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_y(y: &[f32], at: usize) -> __m256 {
    let b = &y[at..at + 8];
    // SAFETY: 8 floats are readable (the slice above is checked); unaligned load.
    unsafe { _mm256_loadu_ps(b.as_ptr()) }
}

/// The halving tree of 8 lanes (sgemm.cpp's `hsum`, the last three steps of
/// `_mm512_reduce_add_ps`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn tree8(x: __m256) -> f32 {
    let mut r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    _mm_cvtss_f32(r)
}

/// The halving tree of 16 lanes held as lanes 0-7 and 8-15.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn tree16(lo: __m256, hi: __m256) -> f32 {
    tree8(_mm256_add_ps(lo, hi))
}

/// `GGML_F32x8_REDUCE`'s last steps: halves added, then two `hadd`s.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn reduce_hadd8(x: __m256) -> f32 {
    let t0 = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    let t1 = _mm_hadd_ps(t0, t0);
    _mm_cvtss_f32(_mm_hadd_ps(t1, t1))
}

/// The products from `from` on, added in double (the leftover loop of ggml's vec dots).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn tail<const BF: bool>(w: &[u8], y: &[f32], from: usize, mut s: f64) -> f32 {
    for (k, v) in y.iter().enumerate().skip(from) {
        let bits = u16::from_le_bytes([w[2 * k], w[2 * k + 1]]);
        let x = if BF {
            f32::from_bits((bits as u32) << 16)
        } else {
            _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
        };
        s += (x * v) as f64;
    }
    s as f32
}

/// `ggml_vec_dot_f16` with 4 accumulators of `V` × 8 lanes (`V` = 1: AVX, 2: AVX-512F).
#[target_feature(enable = "avx2,fma,f16c")]
fn vec_f16<const V: usize>(w: &[u8], y: &[f32]) -> f32 {
    let n = y.len();
    let step = 32 * V;
    let np = n / step * step;
    let mut acc = [[_mm256_setzero_ps(); V]; 4];
    for i in (0..np).step_by(step) {
        for (j, a) in acc.iter_mut().enumerate() {
            for (v, r) in a.iter_mut().enumerate() {
                let at = i + 8 * V * j + 8 * v;
                *r = _mm256_fmadd_ps(load_w::<false>(w, 2 * at), load_y(y, at), *r);
            }
        }
    }
    for v in 0..V {
        acc[0][v] = _mm256_add_ps(acc[0][v], acc[2][v]);
        acc[1][v] = _mm256_add_ps(acc[1][v], acc[3][v]);
        acc[0][v] = _mm256_add_ps(acc[0][v], acc[1][v]);
    }
    let r = if V == 1 {
        reduce_hadd8(acc[0][0])
    } else {
        tree16(acc[0][0], acc[0][1])
    };
    tail::<false>(w, y, np, r as f64)
}

/// `ggml_vec_dot_bf16`'s main loop, shared by its AVX2 and AVX-512F forms (four 8-lane
/// accumulators are two 16-lane ones lane for lane): the accumulators and where the tail starts.
#[target_feature(enable = "avx2,fma,f16c")]
fn bf16_lanes(w: &[u8], y: &[f32]) -> ([__m256; 4], usize) {
    let n = y.len();
    let np = n / 32 * 32;
    let mut c = [_mm256_setzero_ps(); 4];
    for i in (0..np).step_by(32) {
        for (j, r) in c.iter_mut().enumerate() {
            let at = i + 8 * j;
            *r = _mm256_fmadd_ps(load_w::<true>(w, 2 * at), load_y(y, at), *r);
        }
    }
    (c, np)
}

/// `ggml_vec_dot_bf16`, AVX2 form: 4 accumulators of 8 lanes, `(c1 + c3) + (c2 + c4)`.
#[target_feature(enable = "avx2,fma,f16c")]
fn vec_bf16x8(w: &[u8], y: &[f32]) -> f32 {
    let (c, np) = bf16_lanes(w, y);
    let s = _mm256_add_ps(_mm256_add_ps(c[0], c[2]), _mm256_add_ps(c[1], c[3]));
    tail::<true>(w, y, np, tree8(s) as f64)
}

/// `ggml_vec_dot_bf16`, AVX-512F form: 2 accumulators of 16 lanes, each reduced, added in double.
#[target_feature(enable = "avx2,fma,f16c")]
fn vec_bf16x16(w: &[u8], y: &[f32]) -> f32 {
    let (c, np) = bf16_lanes(w, y);
    let s = tree16(c[0], c[1]) as f64 + tree16(c[2], c[3]) as f64;
    tail::<true>(w, y, np, s)
}

/// tinyBLAS's `gemm_bloc` for `RM` weight rows by `RN` activation rows with `V` × 8-lane
/// accumulators: `out[i * ld + j] = W[i] · Y[j]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn tiny_bloc<const RM: usize, const RN: usize, const V: usize, const BF: bool>(
    w: [&[u8]; RM],
    y: [&[f32]; RN],
    out: &mut [f32],
    ld: usize,
) {
    let k = y[0].len();
    let mut c = [[[_mm256_setzero_ps(); V]; RN]; RM];
    for l in (0..k).step_by(8 * V) {
        for v in 0..V {
            let at = l + 8 * v;
            let a: [__m256; RM] = std::array::from_fn(|i| load_w::<BF>(w[i], 2 * at));
            for j in 0..RN {
                let b = load_y(y[j], at);
                for i in 0..RM {
                    c[i][j][v] = _mm256_fmadd_ps(a[i], b, c[i][j][v]);
                }
            }
        }
    }
    for i in 0..RM {
        for j in 0..RN {
            out[i * ld + j] = if V == 1 {
                tree8(c[i][j][0])
            } else {
                tree16(c[i][j][0], c[i][j][1])
            };
        }
    }
}

/// tinyBLAS for the weight rows `w[0..m]` (`m` a multiple of 4) by every activation row.
#[target_feature(enable = "avx2,fma,f16c")]
fn tiny<const V: usize, const BF: bool>(w: &[u8], rb: usize, y: &[f32], n: usize, out: &mut [f32]) {
    let cols = y.len() / n;
    let yr = |t: usize| &y[t * cols..(t + 1) * cols];
    let rows = w.len() / rb;
    let wr = |r: usize| &w[r * rb..(r + 1) * rb];
    // 4 rows by 3 columns: 12 accumulators of one register (AVX2); 2 by 3 of two (AVX-512 order).
    const RN: usize = 3;
    let rm = if V == 1 { 4 } else { 2 };
    let mut r = 0;
    while r + rm <= rows {
        let o = &mut out[r * n..];
        let mut t = 0;
        while t + RN <= n {
            let ys = [yr(t), yr(t + 1), yr(t + 2)];
            if V == 1 {
                tiny_bloc::<4, RN, V, BF>(
                    [wr(r), wr(r + 1), wr(r + 2), wr(r + 3)],
                    ys,
                    &mut o[t..],
                    n,
                );
            } else {
                tiny_bloc::<2, RN, V, BF>([wr(r), wr(r + 1)], ys, &mut o[t..], n);
            }
            t += RN;
        }
        for t in t..n {
            for i in 0..rm {
                tiny_bloc::<1, 1, V, BF>([wr(r + i)], [yr(t)], &mut o[i * n + t..], n);
            }
        }
        r += rm;
    }
    for r in r..rows {
        for t in 0..n {
            tiny_bloc::<1, 1, V, BF>([wr(r)], [yr(t)], &mut out[r * n + t..], n);
        }
    }
}

/// `out[r * n + t] = W[r] · Y[t]` in `order` for the rows of `w` (`rb` bytes each) and the `n`
/// activation rows of `y` (rounded to the weight type, as f32); false (nothing written) for the
/// generic order, which has no vector form.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn rows(
    h: Half,
    order: Order,
    w: &[u8],
    rb: usize,
    y: &[f32],
    n: usize,
    out: &mut [f32],
) -> bool {
    let cols = y.len() / n.max(1);
    let bf = h == Half::Bf16;
    match order {
        Order::Generic => return false,
        Order::Tiny(l) => match (l, bf) {
            (8, false) => tiny::<1, false>(w, rb, y, n, out),
            (8, true) => tiny::<1, true>(w, rb, y, n, out),
            (_, false) => tiny::<2, false>(w, rb, y, n, out),
            (_, true) => tiny::<2, true>(w, rb, y, n, out),
        },
        _ => {
            let one = |wr: &[u8], yr: &[f32]| match order {
                Order::F16Vec(8) => vec_f16::<1>(wr, yr),
                Order::F16Vec(_) => vec_f16::<2>(wr, yr),
                Order::Bf16x8 => vec_bf16x8(wr, yr),
                _ => vec_bf16x16(wr, yr),
            };
            for (wr, o) in w.chunks_exact(rb).zip(out.chunks_exact_mut(n)) {
                for (t, v) in o.iter_mut().enumerate() {
                    *v = one(wr, &y[t * cols..(t + 1) * cols]);
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::dot::tests::lcg;
    use crate::exec::float_dot::{dot, round, widen};

    /// Every vector form equals its scalar port bit for bit (same products, same order of
    /// additions), for both types, every order, sizes with and without a leftover, and tiles with
    /// leftover rows and columns.
    #[test]
    fn vector_forms_equal_scalar_ports() {
        if !(is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c"))
        {
            return eprintln!("no AVX2/FMA/F16C on this CPU: nothing to compare");
        }
        let mut checked = 0;
        for h in [Half::F16, Half::Bf16] {
            for (cols, rows, n) in [
                (640, 8, 1),
                (96, 6, 5),
                (2048, 12, 7),
                (72, 5, 2),
                (40, 3, 1),
            ] {
                let mut orders = vec![Order::F16Vec(8), Order::F16Vec(16)];
                if h == Half::Bf16 {
                    orders = vec![Order::Bf16x8, Order::Bf16x16];
                }
                for l in [8, 16] {
                    if cols % l == 0 && n >= 2 {
                        orders.push(Order::Tiny(l));
                    }
                }
                // Weights of either sign and a few large ones, rounded to the type.
                let wf: Vec<f32> = lcg(rows * cols, cols as u64)
                    .iter()
                    .enumerate()
                    .map(|(i, v)| if i % 97 == 0 { v * 300.0 } else { *v })
                    .collect();
                let mut w = vec![0u8; 2 * wf.len()];
                for (b, v) in w.chunks_exact_mut(2).zip(&wf) {
                    let bits = match h {
                        Half::F16 => half::f16::from_f32(*v).to_bits(),
                        Half::Bf16 => crate::quant::float::fp32_to_bf16(*v),
                    };
                    b.copy_from_slice(&bits.to_le_bytes());
                }
                let y: Vec<f32> = lcg(n * cols, 3).iter().map(|v| round(h, *v)).collect();
                for order in orders {
                    let mut got = vec![0f32; rows * n];
                    // SAFETY: the features were detected above.
                    assert!(unsafe { rows_for_test(h, order, &w, 2 * cols, &y, n, &mut got) });
                    let mut wr = vec![0f32; cols];
                    for r in 0..rows {
                        widen(h, &w[2 * cols * r..2 * cols * (r + 1)], &mut wr);
                        for t in 0..n {
                            let want = dot(order, &wr, &y[t * cols..(t + 1) * cols]);
                            let g = got[r * n + t];
                            assert_eq!(
                                g.to_bits(),
                                want.to_bits(),
                                "{h:?} {order:?} cols {cols} row {r} col {t}: {g} vs {want}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    /// # Safety
    /// AVX2, FMA and F16C.
    unsafe fn rows_for_test(
        h: Half,
        order: Order,
        w: &[u8],
        rb: usize,
        y: &[f32],
        n: usize,
        out: &mut [f32],
    ) -> bool {
        // SAFETY: the caller checked the features.
        unsafe { rows(h, order, w, rb, y, n, out) }
    }
}
