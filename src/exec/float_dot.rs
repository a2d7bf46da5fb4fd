//! F16 and BF16 weights: the dot products ggml-cpu runs for them, as scalar ports in ggml's own
//! summation orders (the oracles of the AVX2 forms in `x86_float`), and the choice between them.
//!
//! ggml gives F16 weights F16 activations and BF16 weights BF16 activations (`vec_dot_type`), so
//! every product is of two values exact in f32; only the order of the additions differs between
//! ggml's code paths, and pocket follows the one llama.cpp takes on the class of CPU it imitates
//! ([`crate::isa::F16Vec`]):
//! - one activation row (decode): `ggml_vec_dot_f16` / `ggml_vec_dot_bf16` (`ggml-cpu/vec.cpp`);
//! - two or more (prompt): llamafile's `tinyBLAS` (`ggml-cpu/llamafile/sgemm.cpp`), which takes the
//!   product when the rows are a multiple of 4 and the columns of its vector width `KN`: one
//!   `KN`-lane accumulator per output fed by multiply-adds over the whole row, then `hsum`.
//!
//! BF16 on CPUs with AVX512-BF16 (`vdpbf16ps`, which rounds differently) is not imitated: pocket
//! takes the AVX-512F order there.

// The ports keep ggml's lane and index loops, to be read side by side with the C code.
#![allow(clippy::needless_range_loop)]

use crate::isa::F16Vec;

/// A summation order of ggml-cpu's F16/BF16 dot products (all products are exact in f32 and
/// multiply-added; `Generic` adds them in double).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Without SIMD (`ggml_vec_dot_f16` / `_bf16` generic): each product added in double.
    Generic,
    /// `ggml_vec_dot_f16`, `__AVX__` with F16C: 4 accumulators of `L` lanes in steps of `4L`,
    /// summed pairwise, the lanes reduced by `GGML_F32x8_REDUCE` (`L` = 8: halves added, two
    /// `hadd`s) or `_mm512_reduce_add_ps` (`L` = 16: halving tree); the rest added in double.
    F16Vec(usize),
    /// `ggml_vec_dot_bf16`, `__AVX2__`: 4 accumulators of 8 lanes in steps of 32 (GCC contracts the
    /// `mul` + `add` into `vfmadd231ps`; checked in the peer's `libggml-cpu.so`), combined as
    /// `(c1 + c3) + (c2 + c4)`, reduced as a halving tree; the rest added in double.
    Bf16x8,
    /// `ggml_vec_dot_bf16`, `__AVX512F__`: 2 accumulators of 16 lanes in steps of 32, each reduced
    /// (`_mm512_reduce_add_ps`) and added in double; the rest added in double.
    Bf16x16,
    /// tinyBLAS with `KN` lanes (8 with AVX2, 16 with AVX-512F): one accumulator, a halving tree.
    Tiny(usize),
}

/// Which half-precision type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Half {
    F16,
    Bf16,
}

/// The lanes of the vectors of the CPU class pocket imitates (8 for AVX2, 16 from AVX-512F up,
/// which is also what the scalar level and ARM take; see `isa::Cpu::numerics`).
pub(crate) fn lanes(v: F16Vec) -> usize {
    match v {
        F16Vec::Avx => 8,
        F16Vec::Scalar => 0,
        F16Vec::Avx512 | F16Vec::Avx512Fp16 => 16,
    }
}

/// The order of one product: `n` activation rows, a matrix of `rows` rows of `cols` values.
pub(crate) fn order(h: Half, v: F16Vec, n: usize, rows: usize, cols: usize) -> Order {
    let l = lanes(v);
    if l == 0 {
        return Order::Generic;
    }
    // `llamafile_sgemm`: prompt processing only (n >= 2), rows a multiple of 4, `k % KN == 0`.
    if n >= 2 && rows.is_multiple_of(4) && cols.is_multiple_of(l) {
        return Order::Tiny(l);
    }
    match (h, l) {
        (Half::F16, l) => Order::F16Vec(l),
        (Half::Bf16, 8) => Order::Bf16x8,
        (Half::Bf16, _) => Order::Bf16x16,
    }
}

/// Lanes reduced as a halving tree (`hsum` of 8 lanes in sgemm.cpp, `_mm512_reduce_add_ps`).
#[inline(always)]
fn tree(w: &mut [f32]) -> f32 {
    let mut half = w.len() / 2;
    while half >= 1 {
        for l in 0..half {
            w[l] += w[l + half];
        }
        half /= 2;
    }
    w[0]
}

/// The dot of the weight row `x` (as f32, exactly) with the activation row `y` (values already
/// rounded to the weight's half type), summed in `order`: the scalar port every SIMD form is held
/// to bit for bit.
pub(crate) fn dot(order: Order, x: &[f32], y: &[f32]) -> f32 {
    let n = x.len().min(y.len());
    let tail = |from: usize, mut s: f64| {
        for k in from..n {
            s += (x[k] * y[k]) as f64;
        }
        s as f32
    };
    match order {
        Order::Generic => tail(0, 0.0),
        Order::F16Vec(l) => {
            let step = 4 * l;
            let np = n / step * step;
            let mut acc = [[0f32; 16]; 4];
            for i in (0..np).step_by(step) {
                for (j, a) in acc.iter_mut().enumerate() {
                    for k in 0..l {
                        let at = i + l * j + k;
                        a[k] = x[at].mul_add(y[at], a[k]);
                    }
                }
            }
            for k in 0..l {
                acc[0][k] += acc[2][k];
                acc[1][k] += acc[3][k];
            }
            for k in 0..l {
                acc[0][k] += acc[1][k];
            }
            let w = &mut acc[0][..l];
            let r = if l == 8 {
                // GGML_F32x8_REDUCE: t = low half + high half, then hadd(t, t) twice.
                let t: [f32; 4] = std::array::from_fn(|k| w[k] + w[k + 4]);
                (t[0] + t[1]) + (t[2] + t[3])
            } else {
                tree(w)
            };
            tail(np, r as f64)
        }
        Order::Bf16x8 => {
            let np = n / 32 * 32;
            let mut c = [[0f32; 8]; 4];
            for i in (0..np).step_by(32) {
                for (j, a) in c.iter_mut().enumerate() {
                    for k in 0..8 {
                        let at = i + 8 * j + k;
                        a[k] = x[at].mul_add(y[at], a[k]);
                    }
                }
            }
            let mut w: [f32; 8] =
                std::array::from_fn(|k| (c[0][k] + c[2][k]) + (c[1][k] + c[3][k]));
            let r = tree(&mut w);
            tail(np, r as f64)
        }
        Order::Bf16x16 => {
            let np = n / 32 * 32;
            let mut c = [[0f32; 16]; 2];
            for i in (0..np).step_by(32) {
                for (j, a) in c.iter_mut().enumerate() {
                    for k in 0..16 {
                        let at = i + 16 * j + k;
                        a[k] = x[at].mul_add(y[at], a[k]);
                    }
                }
            }
            let [mut c1, mut c2] = c;
            let s = tree(&mut c1) as f64 + tree(&mut c2) as f64;
            tail(np, s)
        }
        Order::Tiny(l) => {
            let mut a = [0f32; 16];
            let np = n / l * l;
            for i in (0..np).step_by(l) {
                for k in 0..l {
                    a[k] = x[i + k].mul_add(y[i + k], a[k]);
                }
            }
            // tinyBLAS only takes rows of whole vectors (`order` checks): nothing is left over.
            debug_assert_eq!(np, n);
            tree(&mut a[..l])
        }
    }
}

/// A weight row of type `h` (little-endian 2-byte values) into f32, exactly.
pub(crate) fn widen(h: Half, w: &[u8], out: &mut [f32]) {
    for (o, b) in out.iter_mut().zip(w.chunks_exact(2)) {
        let bits = u16::from_le_bytes([b[0], b[1]]);
        *o = match h {
            Half::F16 => half::f16::from_bits(bits).to_f32(),
            Half::Bf16 => f32::from_bits((bits as u32) << 16),
        };
    }
}

/// An activation value rounded to `h` (`ggml_cpu_fp32_to_fp16` / `ggml_cpu_fp32_to_bf16`: round
/// to nearest even, BF16 NaNs made quiet), back in f32.
#[inline]
pub(crate) fn round(h: Half, v: f32) -> f32 {
    match h {
        Half::F16 => half::f16::from_f32(v).to_f32(),
        Half::Bf16 => crate::quant::float::bf16_to_fp32(crate::quant::float::fp32_to_bf16(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The orders against an exact sum: each is a rounding of the same products.
    #[test]
    fn orders_are_roundings_of_the_exact_sum() {
        let x = crate::exec::dot::tests::lcg(640, 5);
        let y = crate::exec::dot::tests::lcg(640, 6);
        let exact: f64 = x.iter().zip(&y).map(|(a, b)| *a as f64 * *b as f64).sum();
        let mag: f64 = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (*a as f64 * *b as f64).abs())
            .sum();
        let orders = [
            Order::Generic,
            Order::F16Vec(8),
            Order::F16Vec(16),
            Order::Bf16x8,
            Order::Bf16x16,
            Order::Tiny(8),
            Order::Tiny(16),
        ];
        let mut seen = std::collections::HashSet::new();
        for o in orders {
            let d = dot(o, &x, &y);
            assert!(
                (d as f64 - exact).abs() < 1e-5 * mag,
                "{o:?}: {d} vs {exact}"
            );
            seen.insert(d.to_bits());
        }
        // The orders are not all the same rounding (else the test could not tell them apart).
        assert!(seen.len() >= 3, "{seen:?}");
    }

    /// tinyBLAS takes prompts of rows a multiple of 4 and columns of whole vectors only.
    #[test]
    fn order_follows_llamafile_conditions() {
        assert_eq!(order(Half::F16, F16Vec::Avx, 1, 64, 64), Order::F16Vec(8));
        assert_eq!(order(Half::F16, F16Vec::Avx, 2, 64, 64), Order::Tiny(8));
        assert_eq!(order(Half::F16, F16Vec::Avx, 2, 62, 64), Order::F16Vec(8));
        assert_eq!(
            order(Half::F16, F16Vec::Avx512, 9, 64, 72),
            Order::F16Vec(16)
        );
        assert_eq!(order(Half::Bf16, F16Vec::Avx, 1, 64, 64), Order::Bf16x8);
        assert_eq!(order(Half::Bf16, F16Vec::Avx512, 1, 64, 64), Order::Bf16x16);
        assert_eq!(order(Half::Bf16, F16Vec::Scalar, 5, 64, 64), Order::Generic);
    }

    /// ggml's rounding to BF16: to nearest even, NaNs quiet.
    #[test]
    fn bf16_rounding_is_ggmls() {
        assert_eq!(round(Half::Bf16, f32::from_bits(0x3f80_8000)), 1.0);
        assert_eq!(
            round(Half::Bf16, f32::from_bits(0x3f81_8000)).to_bits(),
            0x3f82_0000
        );
        assert!(round(Half::Bf16, f32::NAN).is_nan());
        assert_eq!(round(Half::F16, 1.0 + 1.0 / 4096.0), 1.0);
    }
}
