//! NEON dot products of quantized weight rows with quantized activation rows (Q8_0, Q4_0, Q5_0 with
//! Q8_0 activations; Q4_K, Q5_K, Q6_K with Q8_K activations), ported from llama.cpp's ARM kernels
//! (`ggml_vec_dot_*` in `ggml-cpu/arch/arm/quants.c`), chosen at run time by [`best_dot`] and
//! [`best_dot_2x2`]. Each kernel comes in the forms ggml compiles for different CPUs:
//! - `neon`: any 64-bit ARM core; 16 int8 products summed by widening multiplies (`smull`,
//!   `saddlp`, `addp`: ggml's `ggml_vdotq_s32` without `__ARM_FEATURE_DOTPROD`, lanes arranged as
//!   `sdot`'s);
//! - `dotprod`: `sdot` (ARMv8.2 dotprod, most phone cores since 2018), the same bits as `neon`;
//! - `i8mm` (Q8_0, Q4_0, Q4_K, Q6_K): `smmla`, two weight rows by two activation rows at once
//!   (ggml's `nrc == 2` path), which sums each block whole and so rounds a little differently.
//!
//! The integer sums are exact in every form, so a kernel differs from its scalar reference in
//! `exec::dot` only by the order of the float operations that scale and add the blocks' sums; the
//! tests bound that difference (and check that `neon` and `dotprod` agree bit for bit). Rust 1.96
//! keeps `vdotq_s32` and `vmmlaq_s32` unstable, so `sdot` and `smmla` are written with `asm!`
//! (enabled per function with `#[target_feature]`).

use std::arch::aarch64::*;
use std::arch::asm;

use half::f16;

use super::dot::{Acts, Mat};
use crate::gguf::TypeId;

/// Bytes of a Q8_0 block (f16 scale, 32 int8).
const Q8_0_SIZE: usize = 34;
/// Bytes of a Q8_K block (f32 scale, 256 int8, 16 int16 sums of 16).
const Q8K_SIZE: usize = 292;

/// One weight row dotted with one activation row (both whole blocks, ggml layout).
pub(crate) type DotFn = fn(&[u8], &[u8]) -> f32;

/// Two weight rows `w0, w1` dotted with two activation rows `a0, a1`:
/// `[[w0·a0, w0·a1], [w1·a0, w1·a1]]`.
pub(crate) type Dot2x2Fn = fn(&[u8], &[u8], &[u8], &[u8]) -> [[f32; 2]; 2];

fn has_dotprod() -> bool {
    crate::isa::cpu().at_least(crate::isa::Level::Dotprod)
}

fn has_i8mm() -> bool {
    crate::isa::cpu().at_least(crate::isa::Level::I8mm)
}

/// The fastest NEON dot product of weight type `ty_id` with its activation type (`vec_dot_type`) on
/// this CPU: the `sdot` form with dotprod, else the plain NEON one. `None` for types without a NEON
/// kernel, and when `POCKET_FORCE_SCALAR` asks for the scalar code.
pub(crate) fn best_dot(ty_id: TypeId) -> Option<DotFn> {
    if !crate::isa::cpu().simd() {
        return None;
    }
    dot_for(ty_id, has_dotprod())
}

/// The `smmla` two-by-two kernel of weight type `ty_id` when this CPU has i8mm (Q8_0, Q4_0, Q4_K,
/// Q6_K), as ggml uses it when at least two activation rows are multiplied. `None` otherwise, and
/// when `POCKET_FORCE_SCALAR` asks for the scalar code.
pub(crate) fn best_dot_2x2(ty_id: TypeId) -> Option<Dot2x2Fn> {
    if !crate::isa::cpu().simd() || !has_i8mm() {
        return None;
    }
    match ty_id {
        TypeId::Q8_0 => Some(q8_0_2x2),
        TypeId::Q4_0 => Some(q4_0_2x2),
        TypeId::Q4_K => Some(q4_k_2x2),
        TypeId::Q6_K => Some(q6_k_2x2),
        _ => None,
    }
}

/// The kernel of `ty_id` in its `sdot` form (`dotprod`) or its plain NEON form.
fn dot_for(ty_id: TypeId, dotprod: bool) -> Option<DotFn> {
    Some(match (ty_id, dotprod) {
        (TypeId::Q8_0, false) => q8_0::safe_neon,
        (TypeId::Q8_0, true) => q8_0::safe_dotprod,
        (TypeId::Q4_0, false) => q4_0::safe_neon,
        (TypeId::Q4_0, true) => q4_0::safe_dotprod,
        (TypeId::Q5_0, false) => q5_0::safe_neon,
        (TypeId::Q5_0, true) => q5_0::safe_dotprod,
        (TypeId::Q4_K, false) => q4_k::safe_neon,
        (TypeId::Q4_K, true) => q4_k::safe_dotprod,
        (TypeId::Q5_K, false) => q5_k::safe_neon,
        (TypeId::Q5_K, true) => q5_k::safe_dotprod,
        (TypeId::Q6_K, false) => q6_k::safe_neon,
        (TypeId::Q6_K, true) => q6_k::safe_dotprod,
        (TypeId::IQ2_XXS, false) => iq2_xxs::safe_neon,
        (TypeId::IQ2_XXS, true) => iq2_xxs::safe_dotprod,
        (TypeId::IQ2_XS, false) => iq2_xs::safe_neon,
        (TypeId::IQ2_XS, true) => iq2_xs::safe_dotprod,
        (TypeId::IQ2_S, false) => iq2_s::safe_neon,
        (TypeId::IQ2_S, true) => iq2_s::safe_dotprod,
        (TypeId::IQ3_XXS, false) => iq3_xxs::safe_neon,
        (TypeId::IQ3_XXS, true) => iq3_xxs::safe_dotprod,
        (TypeId::IQ3_S, false) => iq3_s::safe_neon,
        (TypeId::IQ3_S, true) => iq3_s::safe_dotprod,
        // Q2_K and Q3_K (`k_low`).
        _ => return k_low::dot_for(ty_id, dotprod),
    })
}

// ---- the two ways of summing 16 int8 products into four int32 lanes -----------------------------

/// `acc + dot(a, b)` by groups of four bytes: lane `k` gains `Σ a[i]·b[i]` for `i` in `4k..4k+4`.
trait Vdot {
    /// # Safety
    /// The CPU must have the form's features (see the implementations).
    unsafe fn vdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t;
}

/// `sdot`: needs dotprod.
struct Sdot;

impl Vdot for Sdot {
    #[inline(always)]
    unsafe fn vdot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        // SAFETY: only reached from functions compiled with `target_feature(enable = "dotprod")`,
        // which run only on CPUs with dotprod; `sdot` reads and writes registers only.
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
        acc
    }
}

/// Widening multiplies and pairwise adds: plain NEON. Like ggml's `ggml_vdotq_s32` without dotprod
/// but for the last add, pairwise (`addp`) where ggml's is lane-wise, so that lane `k` holds bytes
/// `4k..4k+4` as with `sdot`: the two forms give the same lanes, hence the same float bits, and a
/// model's output does not depend on whether the phone has dotprod.
struct Widen;

impl Vdot for Widen {
    #[inline(always)]
    unsafe fn vdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        let p0 = vmull_s8(vget_low_s8(a), vget_low_s8(b));
        let p1 = vmull_high_s8(a, b);
        vaddq_s32(acc, vpaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1)))
    }
}

/// `smmla`: `acc + A·Bᵀ` for the 2×8 int8 matrices `a` and `b` (rows of 8 bytes), lanes
/// `[a0·b0, a0·b1, a1·b0, a1·b1]`.
///
/// # Safety
/// The CPU must have i8mm (callers are compiled with `target_feature(enable = "i8mm")`).
#[inline(always)]
unsafe fn smmla(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    // SAFETY: only reached from functions compiled with `target_feature(enable = "i8mm")`, which
    // run only on CPUs with i8mm; `smmla` reads and writes registers only.
    asm!(
        "smmla {acc:v}.4s, {a:v}.16b, {b:v}.16b",
        acc = inout(vreg) acc,
        a = in(vreg) a,
        b = in(vreg) b,
        options(pure, nomem, nostack, preserves_flags)
    );
    acc
}

// ---- loads (bounds-checked by the slice index) ------------------------------------------------

#[inline(always)]
unsafe fn ld_s8(b: &[u8]) -> int8x16_t {
    vld1q_s8(b[..16].as_ptr() as *const i8)
}

#[inline(always)]
unsafe fn ld_u8(b: &[u8]) -> uint8x16_t {
    vld1q_u8(b[..16].as_ptr())
}

#[inline(always)]
unsafe fn ld_s16(b: &[u8]) -> int16x8_t {
    vld1q_s16(b[..16].as_ptr() as *const i16)
}

#[inline(always)]
fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

#[inline(always)]
fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

// ---- the call site: rows of a matrix product ----------------------------------------------------

impl Mat<'_> {
    /// Rows `r0..` of the transposed product into `dst` (`acts.len()` values per row) with the NEON
    /// kernels: pairs of rows by pairs of activations with `smmla` where the CPU has i8mm and the
    /// type a 2×2 kernel, the one-row kernel for the rest. `None` (nothing written) when the type
    /// has no NEON kernel or the scalar code is forced.
    pub(super) fn rows_into_neon(&self, r0: usize, dst: &mut [f32], acts: &Acts) -> Option<()> {
        let one = best_dot(self.ty.id)?;
        let (q, stride, n) = acts.q_rows()?;
        if n == 0 {
            return Some(());
        }
        let qs = |t: usize| &q[t * stride..(t + 1) * stride];
        let row = |r: usize| &self.data[r * self.row_bytes..(r + 1) * self.row_bytes];
        let rows = dst.len() / n;
        let mut k = 0;
        if let Some(two) = best_dot_2x2(self.ty.id) {
            while k + 1 < rows {
                let (w0, w1) = (row(r0 + k), row(r0 + k + 1));
                let (d0, d1) = dst[k * n..(k + 2) * n].split_at_mut(n);
                let mut t = 0;
                while t + 1 < n {
                    let p = two(w0, w1, qs(t), qs(t + 1));
                    d0[t..t + 2].copy_from_slice(&p[0]);
                    d1[t..t + 2].copy_from_slice(&p[1]);
                    t += 2;
                }
                if t < n {
                    d0[t] = one(w0, qs(t));
                    d1[t] = one(w1, qs(t));
                }
                k += 2;
            }
        }
        for (k, d) in dst.chunks_exact_mut(n).enumerate().skip(k) {
            let w = row(r0 + k);
            for (t, o) in d.iter_mut().enumerate() {
                *o = one(w, qs(t));
            }
        }
        Some(())
    }
}

// ---- the kernels, generic over the form of the int8 dot --------------------------------------

/// `ggml_vec_dot_q8_0_q8_0`, NEON path: two blocks per step into two float accumulators, an odd
/// last block by the scalar code.
#[inline(always)]
unsafe fn dot_q8_0<D: Vdot>(x: &[u8], y: &[u8]) -> f32 {
    let nb = (x.len() / Q8_0_SIZE).min(y.len() / Q8_0_SIZE);
    let zero = vdupq_n_s32(0);
    let mut sumv0 = vdupq_n_f32(0.0);
    let mut sumv1 = vdupq_n_f32(0.0);
    let mut ib = 0;
    while ib + 1 < nb {
        let x0 = &x[ib * 34..ib * 34 + 34];
        let x1 = &x[ib * 34 + 34..ib * 34 + 68];
        let y0 = &y[ib * 34..ib * 34 + 34];
        let y1 = &y[ib * 34 + 34..ib * 34 + 68];
        let p0 = vaddq_s32(
            D::vdot(zero, ld_s8(&x0[2..]), ld_s8(&y0[2..])),
            D::vdot(zero, ld_s8(&x0[18..]), ld_s8(&y0[18..])),
        );
        let p1 = vaddq_s32(
            D::vdot(zero, ld_s8(&x1[2..]), ld_s8(&y1[2..])),
            D::vdot(zero, ld_s8(&x1[18..]), ld_s8(&y1[18..])),
        );
        sumv0 = vmlaq_n_f32(sumv0, vcvtq_f32_s32(p0), f16_at(x0, 0) * f16_at(y0, 0));
        sumv1 = vmlaq_n_f32(sumv1, vcvtq_f32_s32(p1), f16_at(x1, 0) * f16_at(y1, 0));
        ib += 2;
    }
    let mut sumf = vaddvq_f32(sumv0) + vaddvq_f32(sumv1);
    if ib < nb {
        sumf += super::dot::dot_q8_0(&x[ib * 34..nb * 34], &y[ib * 34..nb * 34]);
    }
    sumf
}

/// `ggml_vec_dot_q4_0_q8_0`, NEON path.
#[inline(always)]
unsafe fn dot_q4_0<D: Vdot>(x: &[u8], y: &[u8]) -> f32 {
    let nb = (x.len() / 18).min(y.len() / Q8_0_SIZE);
    let zero = vdupq_n_s32(0);
    let m4b = vdupq_n_u8(0x0f);
    let s8b = vdupq_n_s8(8);
    let mut sumv0 = vdupq_n_f32(0.0);
    let mut sumv1 = vdupq_n_f32(0.0);
    let mut ib = 0;
    while ib + 1 < nb {
        let x0 = &x[ib * 18..ib * 18 + 18];
        let x1 = &x[ib * 18 + 18..ib * 18 + 36];
        let y0 = &y[ib * 34..ib * 34 + 34];
        let y1 = &y[ib * 34 + 34..ib * 34 + 68];
        let v0 = ld_u8(&x0[2..]);
        let v1 = ld_u8(&x1[2..]);
        let v0l = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v0, m4b)), s8b);
        let v0h = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(v0)), s8b);
        let v1l = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v1, m4b)), s8b);
        let v1h = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(v1)), s8b);
        let p0 = D::vdot(D::vdot(zero, v0l, ld_s8(&y0[2..])), v0h, ld_s8(&y0[18..]));
        let p1 = D::vdot(D::vdot(zero, v1l, ld_s8(&y1[2..])), v1h, ld_s8(&y1[18..]));
        sumv0 = vmlaq_n_f32(sumv0, vcvtq_f32_s32(p0), f16_at(x0, 0) * f16_at(y0, 0));
        sumv1 = vmlaq_n_f32(sumv1, vcvtq_f32_s32(p1), f16_at(x1, 0) * f16_at(y1, 0));
        ib += 2;
    }
    let mut sumf = vaddvq_f32(sumv0) + vaddvq_f32(sumv1);
    if ib < nb {
        sumf += super::dot::dot_q4_0(&x[ib * 18..nb * 18], &y[ib * 34..nb * 34]);
    }
    sumf
}

/// ggml's `table_b2b_1`: byte `k` of entry `i` is `0x10` when bit `k` of `i` is clear, else 0 (the
/// 16 to subtract from a Q5_0 quant whose fifth bit is clear).
static TABLE_B2B_1: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut k = 0;
        while k < 8 {
            if (i >> k) & 1 == 0 {
                t[i] |= 0x10 << (8 * k);
            }
            k += 1;
        }
        i += 1;
    }
    t
};

/// The 32 fifth-bit corrections of a Q5_0 block (`qh` as little-endian u32), as two vectors.
#[inline(always)]
unsafe fn q5_0_high(qh: u32) -> (int8x16_t, int8x16_t) {
    let t = [
        TABLE_B2B_1[(qh & 0xff) as usize],
        TABLE_B2B_1[((qh >> 8) & 0xff) as usize],
        TABLE_B2B_1[((qh >> 16) & 0xff) as usize],
        TABLE_B2B_1[(qh >> 24) as usize],
    ];
    (
        vreinterpretq_s8_u64(vld1q_u64(t.as_ptr())),
        vreinterpretq_s8_u64(vld1q_u64(t[2..].as_ptr())),
    )
}

/// `ggml_vec_dot_q5_0_q8_0`, NEON path.
#[inline(always)]
unsafe fn dot_q5_0<D: Vdot>(x: &[u8], y: &[u8]) -> f32 {
    let nb = (x.len() / 22).min(y.len() / Q8_0_SIZE);
    let zero = vdupq_n_s32(0);
    let m4b = vdupq_n_u8(0x0f);
    let mut sumv0 = vdupq_n_f32(0.0);
    let mut sumv1 = vdupq_n_f32(0.0);
    let mut ib = 0;
    while ib + 1 < nb {
        let x0 = &x[ib * 22..ib * 22 + 22];
        let x1 = &x[ib * 22 + 22..ib * 22 + 44];
        let y0 = &y[ib * 34..ib * 34 + 34];
        let y1 = &y[ib * 34 + 34..ib * 34 + 68];
        let (h0l, h0h) = q5_0_high(u32::from_le_bytes([x0[2], x0[3], x0[4], x0[5]]));
        let (h1l, h1h) = q5_0_high(u32::from_le_bytes([x1[2], x1[3], x1[4], x1[5]]));
        let v0 = ld_u8(&x0[6..]);
        let v1 = ld_u8(&x1[6..]);
        let v0l = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v0, m4b)), h0l);
        let v0h = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(v0)), h0h);
        let v1l = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v1, m4b)), h1l);
        let v1h = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(v1)), h1h);
        let p0 = vaddq_s32(
            D::vdot(zero, v0l, ld_s8(&y0[2..])),
            D::vdot(zero, v0h, ld_s8(&y0[18..])),
        );
        let p1 = vaddq_s32(
            D::vdot(zero, v1l, ld_s8(&y1[2..])),
            D::vdot(zero, v1h, ld_s8(&y1[18..])),
        );
        sumv0 = vmlaq_n_f32(sumv0, vcvtq_f32_s32(p0), f16_at(x0, 0) * f16_at(y0, 0));
        sumv1 = vmlaq_n_f32(sumv1, vcvtq_f32_s32(p1), f16_at(x1, 0) * f16_at(y1, 0));
        ib += 2;
    }
    let mut sumf = vaddvq_f32(sumv0) + vaddvq_f32(sumv1);
    if ib < nb {
        sumf += super::dot::dot_q5_0(&x[ib * 22..nb * 22], &y[ib * 34..nb * 34]);
    }
    sumf
}

/// The 8 six-bit scales and 8 mins of a Q4_K/Q5_K super-block (the `utmp` shuffle, `kmask1..3`).
#[inline(always)]
fn k_scales_mins(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    const KMASK1: u32 = 0x3f3f3f3f;
    const KMASK2: u32 = 0x0f0f0f0f;
    const KMASK3: u32 = 0x03030303;
    let u = |k: usize| u32::from_le_bytes([s[4 * k], s[4 * k + 1], s[4 * k + 2], s[4 * k + 3]]);
    let (u0, u1, u2) = (u(0), u(1), u(2));
    let m0 = u1 & KMASK1;
    let m1 = ((u2 >> 4) & KMASK2) | (((u1 >> 6) & KMASK3) << 4);
    let s1 = (u2 & KMASK2) | (((u0 >> 6) & KMASK3) << 4);
    let s0 = u0 & KMASK1;
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    sc[..4].copy_from_slice(&s0.to_le_bytes());
    sc[4..].copy_from_slice(&s1.to_le_bytes());
    mn[..4].copy_from_slice(&m0.to_le_bytes());
    mn[4..].copy_from_slice(&m1.to_le_bytes());
    (sc, mn)
}

/// `Σ bsums[2j] + bsums[2j+1]) * mins[j]` over the 8 sub-blocks of 32 of a Q8_K block `yb`.
#[inline(always)]
unsafe fn k_min_sum(yb: &[u8], mins: &[u8; 8]) -> i32 {
    let q8sums = vpaddq_s16(ld_s16(&yb[260..]), ld_s16(&yb[276..]));
    let mins = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mins.as_ptr())));
    let prod = vaddq_s32(
        vmull_s16(vget_low_s16(q8sums), vget_low_s16(mins)),
        vmull_high_s16(q8sums, mins),
    );
    vaddvq_s32(prod)
}

/// `ggml_vec_dot_q4_K_q8_K`, NEON path.
#[inline(always)]
unsafe fn dot_q4_k<D: Vdot>(x: &[u8], y: &[u8]) -> f32 {
    let zero = vdupq_n_s32(0);
    let m4b = vdupq_n_u8(0xf);
    let mut sumf = 0f32;
    for (xb, yb) in x.chunks_exact(144).zip(y.chunks_exact(Q8K_SIZE)) {
        let d = f32_at(yb, 0) * f16_at(xb, 0);
        let dmin = f32_at(yb, 0) * f16_at(xb, 2);
        let (scales, mins) = k_scales_mins(&xb[4..16]);
        sumf -= dmin * k_min_sum(yb, &mins) as f32;
        let (q4, q8) = (&xb[16..144], &yb[4..260]);
        let (mut sumi1, mut sumi2) = (0i32, 0i32);
        for j in 0..4 {
            let b0 = ld_u8(&q4[32 * j..]);
            let b1 = ld_u8(&q4[32 * j + 16..]);
            let q8j = &q8[64 * j..];
            let p1 = D::vdot(
                D::vdot(zero, vreinterpretq_s8_u8(vandq_u8(b0, m4b)), ld_s8(q8j)),
                vreinterpretq_s8_u8(vandq_u8(b1, m4b)),
                ld_s8(&q8j[16..]),
            );
            sumi1 += vaddvq_s32(p1) * scales[2 * j] as i32;
            let p2 = D::vdot(
                D::vdot(
                    zero,
                    vreinterpretq_s8_u8(vshrq_n_u8::<4>(b0)),
                    ld_s8(&q8j[32..]),
                ),
                vreinterpretq_s8_u8(vshrq_n_u8::<4>(b1)),
                ld_s8(&q8j[48..]),
            );
            sumi2 += vaddvq_s32(p2) * scales[2 * j + 1] as i32;
        }
        sumf += d * (sumi1 + sumi2) as f32;
    }
    sumf
}

/// `ggml_vec_dot_q5_K_q8_K`, NEON path.
#[inline(always)]
unsafe fn dot_q5_k<D: Vdot>(x: &[u8], y: &[u8]) -> f32 {
    let zero = vdupq_n_s32(0);
    let m4b = vdupq_n_u8(0xf);
    let mone = vdupq_n_u8(1);
    let mtwo = vdupq_n_u8(2);
    let mut sumf = 0f32;
    for (xb, yb) in x.chunks_exact(176).zip(y.chunks_exact(Q8K_SIZE)) {
        let d = f32_at(yb, 0) * f16_at(xb, 0);
        let dmin = f32_at(yb, 0) * f16_at(xb, 2);
        let (scales, mins) = k_scales_mins(&xb[4..16]);
        let sumi_mins = k_min_sum(yb, &mins);
        let (qh, q5, q8) = (&xb[16..48], &xb[48..176], &yb[4..260]);
        let mut qh0 = ld_u8(qh);
        let mut qh1 = ld_u8(&qh[16..]);
        let mut sumi = 0i32;
        for j in 0..4 {
            let b0 = ld_u8(&q5[32 * j..]);
            let b1 = ld_u8(&q5[32 * j + 16..]);
            let q8j = &q8[64 * j..];
            let h0 = vshlq_n_u8::<4>(vandq_u8(mone, qh0));
            let h1 = vshlq_n_u8::<4>(vandq_u8(mone, qh1));
            let h2 = vshlq_n_u8::<3>(vandq_u8(mtwo, qh0));
            let h3 = vshlq_n_u8::<3>(vandq_u8(mtwo, qh1));
            qh0 = vshrq_n_u8::<2>(qh0);
            qh1 = vshrq_n_u8::<2>(qh1);
            let v0 = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(b0, m4b), h0));
            let v1 = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(b1, m4b), h1));
            let v2 = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8::<4>(b0), h2));
            let v3 = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8::<4>(b1), h3));
            let lo = D::vdot(D::vdot(zero, v0, ld_s8(q8j)), v1, ld_s8(&q8j[16..]));
            sumi += vaddvq_s32(lo) * scales[2 * j] as i32;
            let hi = D::vdot(D::vdot(zero, v2, ld_s8(&q8j[32..])), v3, ld_s8(&q8j[48..]));
            sumi += vaddvq_s32(hi) * scales[2 * j + 1] as i32;
        }
        sumf += d * sumi as f32 - dmin * sumi_mins as f32;
    }
    sumf
}

/// `Σ bsums[i] · scales[i]` of a Q6_K block `xb` and a Q8_K block `yb` (over the 16 sub-blocks):
/// the sum to take 32 times off the unsigned quants' dot.
#[inline(always)]
unsafe fn q6_k_bias(xb: &[u8], yb: &[u8]) -> i32 {
    let sc = vld1q_s8(xb[192..208].as_ptr() as *const i8);
    let (s0, s1) = (vmovl_s8(vget_low_s8(sc)), vmovl_high_s8(sc));
    let (b0, b1) = (ld_s16(&yb[260..]), ld_s16(&yb[276..]));
    let prod = vaddq_s32(
        vaddq_s32(
            vmull_s16(vget_low_s16(b0), vget_low_s16(s0)),
            vmull_high_s16(b0, s0),
        ),
        vaddq_s32(
            vmull_s16(vget_low_s16(b1), vget_low_s16(s1)),
            vmull_high_s16(b1, s1),
        ),
    );
    vaddvq_s32(prod)
}

/// `ggml_vec_dot_q6_K_q8_K`, NEON path: the quants unsigned (0..63), the 32 taken off at the end
/// through the activations' block sums.
#[inline(always)]
unsafe fn dot_q6_k<D: Vdot>(x: &[u8], y: &[u8]) -> f32 {
    let zero = vdupq_n_s32(0);
    let m4b = vdupq_n_u8(0xf);
    let mone = vdupq_n_u8(3);
    let mut sum = 0f32;
    for (xb, yb) in x.chunks_exact(210).zip(y.chunks_exact(Q8K_SIZE)) {
        let d_all = f16_at(xb, 208);
        let scale: &[u8] = &xb[192..208];
        let isum_mins = q6_k_bias(xb, yb);
        let mut isum = 0i32;
        for j in 0..2 {
            let qh = &xb[128 + 32 * j..];
            let q6 = &xb[64 * j..];
            let q8 = &yb[4 + 128 * j..];
            let sc = &scale[8 * j..];
            let (qh0, qh1) = (ld_u8(qh), ld_u8(&qh[16..]));
            let bits = [
                ld_u8(q6),
                ld_u8(&q6[16..]),
                ld_u8(&q6[32..]),
                ld_u8(&q6[48..]),
            ];
            let h = [
                vshlq_n_u8::<4>(vandq_u8(mone, qh0)),
                vshlq_n_u8::<4>(vandq_u8(mone, qh1)),
                vshlq_n_u8::<4>(vandq_u8(mone, vshrq_n_u8::<2>(qh0))),
                vshlq_n_u8::<4>(vandq_u8(mone, vshrq_n_u8::<2>(qh1))),
            ];
            for (k, (&b, &h)) in bits.iter().zip(&h).enumerate() {
                let v = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(b, m4b), h));
                isum += vaddvq_s32(D::vdot(zero, v, ld_s8(&q8[16 * k..]))) * sc[k] as i8 as i32;
            }
            let h = [
                vshlq_n_u8::<4>(vandq_u8(mone, vshrq_n_u8::<4>(qh0))),
                vshlq_n_u8::<4>(vandq_u8(mone, vshrq_n_u8::<4>(qh1))),
                vshlq_n_u8::<4>(vandq_u8(mone, vshrq_n_u8::<6>(qh0))),
                vshlq_n_u8::<4>(vandq_u8(mone, vshrq_n_u8::<6>(qh1))),
            ];
            for (k, (&b, &h)) in bits.iter().zip(&h).enumerate() {
                let v = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8::<4>(b), h));
                let p = D::vdot(zero, v, ld_s8(&q8[64 + 16 * k..]));
                isum += vaddvq_s32(p) * sc[4 + k] as i8 as i32;
            }
        }
        sum += d_all * f32_at(yb, 0) * (isum - 32 * isum_mins) as f32;
    }
    sum
}

// ---- the i8mm two-by-two kernels (ggml's nrc == 2 path) ---------------------------------------

/// Interleaves the 8-byte halves of two rows' vectors: (`a.lo b.lo`, `a.hi b.hi`), the 2×8 matrices
/// `smmla` takes.
#[inline(always)]
unsafe fn zip_rows(a: int8x16_t, b: int8x16_t) -> (int8x16_t, int8x16_t) {
    let (a, b) = (vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b));
    (
        vreinterpretq_s8_s64(vzip1q_s64(a, b)),
        vreinterpretq_s8_s64(vzip2q_s64(a, b)),
    )
}

/// The four dots of two blocks' int8 quants (`x0, x1`: weights as two vectors of 16 each; `y0, y1`
/// the activations') scaled by `scale` and added to `acc`, lanes `[x0y0, x0y1, x1y0, x1y1]`.
#[inline(always)]
unsafe fn mmla_block(
    acc: float32x4_t,
    x0: [int8x16_t; 2],
    x1: [int8x16_t; 2],
    y0: [int8x16_t; 2],
    y1: [int8x16_t; 2],
    scale: [f32; 4],
) -> float32x4_t {
    let (l0, l1) = zip_rows(x0[0], x1[0]);
    let (l2, l3) = zip_rows(x0[1], x1[1]);
    let (r0, r1) = zip_rows(y0[0], y1[0]);
    let (r2, r3) = zip_rows(y0[1], y1[1]);
    let mut p = smmla(vdupq_n_s32(0), l0, r0);
    p = smmla(p, l1, r1);
    p = smmla(p, l2, r2);
    p = smmla(p, l3, r3);
    vmlaq_f32(acc, vcvtq_f32_s32(p), vld1q_f32(scale.as_ptr()))
}

fn lanes(v: float32x4_t) -> [[f32; 2]; 2] {
    // SAFETY: NEON is part of every aarch64 target Rust supports; the store fills a local array.
    unsafe {
        let mut o = [0f32; 4];
        vst1q_f32(o.as_mut_ptr(), v);
        [[o[0], o[1]], [o[2], o[3]]]
    }
}

/// `ggml_vec_dot_q8_0_q8_0` with `nrc == 2`.
///
/// # Safety
/// The CPU must have i8mm.
#[target_feature(enable = "neon,i8mm")]
unsafe fn q8_0_2x2_i8mm(w0: &[u8], w1: &[u8], a0: &[u8], a1: &[u8]) -> [[f32; 2]; 2] {
    let mut sumv = vdupq_n_f32(0.0);
    let blocks = w0
        .chunks_exact(34)
        .zip(w1.chunks_exact(34))
        .zip(a0.chunks_exact(34).zip(a1.chunks_exact(34)));
    for ((x0, x1), (y0, y1)) in blocks {
        let (dx0, dx1, dy0, dy1) = (f16_at(x0, 0), f16_at(x1, 0), f16_at(y0, 0), f16_at(y1, 0));
        sumv = mmla_block(
            sumv,
            [ld_s8(&x0[2..]), ld_s8(&x0[18..])],
            [ld_s8(&x1[2..]), ld_s8(&x1[18..])],
            [ld_s8(&y0[2..]), ld_s8(&y0[18..])],
            [ld_s8(&y1[2..]), ld_s8(&y1[18..])],
            [dx0 * dy0, dx0 * dy1, dx1 * dy0, dx1 * dy1],
        );
    }
    lanes(sumv)
}

/// `ggml_vec_dot_q4_0_q8_0` with `nrc == 2`.
///
/// # Safety
/// The CPU must have i8mm.
#[target_feature(enable = "neon,i8mm")]
unsafe fn q4_0_2x2_i8mm(w0: &[u8], w1: &[u8], a0: &[u8], a1: &[u8]) -> [[f32; 2]; 2] {
    let m4b = vdupq_n_u8(0x0f);
    let s8b = vdupq_n_s8(8);
    let unpack = |b: &[u8]| -> [int8x16_t; 2] {
        let v = ld_u8(&b[2..]);
        [
            vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, m4b)), s8b),
            vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(v)), s8b),
        ]
    };
    let mut sumv = vdupq_n_f32(0.0);
    let blocks = w0
        .chunks_exact(18)
        .zip(w1.chunks_exact(18))
        .zip(a0.chunks_exact(34).zip(a1.chunks_exact(34)));
    for ((x0, x1), (y0, y1)) in blocks {
        let (dx0, dx1, dy0, dy1) = (f16_at(x0, 0), f16_at(x1, 0), f16_at(y0, 0), f16_at(y1, 0));
        sumv = mmla_block(
            sumv,
            unpack(x0),
            unpack(x1),
            [ld_s8(&y0[2..]), ld_s8(&y0[18..])],
            [ld_s8(&y1[2..]), ld_s8(&y1[18..])],
            [dx0 * dy0, dx0 * dy1, dx1 * dy0, dx1 * dy1],
        );
    }
    lanes(sumv)
}

/// `ggml_vec_dot_q4_K_q8_K` with `nrc == 2`: the 8 sub-block sums of each pair scaled in int32
/// (at most 28 bits), the mins through the activations' block sums, one float step per super-block.
///
/// # Safety
/// The CPU must have i8mm.
#[target_feature(enable = "neon,i8mm")]
unsafe fn q4_k_2x2_i8mm(w0: &[u8], w1: &[u8], a0: &[u8], a1: &[u8]) -> [[f32; 2]; 2] {
    let m4b = vdupq_n_u8(0x0f);
    let mut vfsum = vdupq_n_f32(0.0);
    let blocks = w0
        .chunks_exact(144)
        .zip(w1.chunks_exact(144))
        .zip(a0.chunks_exact(Q8K_SIZE).zip(a1.chunks_exact(Q8K_SIZE)));
    for ((x0, x1), (y0, y1)) in blocks {
        let (sc0, mn0) = k_scales_mins(&x0[4..16]);
        let (sc1, mn1) = k_scales_mins(&x1[4..16]);
        let mut visum = vdupq_n_s32(0);
        for j in 0..4 {
            // Low nibbles of the 32 bytes (sub-block 2j), then high nibbles (sub-block 2j + 1).
            let unpack = |x: &[u8]| -> [int8x16_t; 4] {
                let (b0, b1) = (ld_u8(&x[16 + 32 * j..]), ld_u8(&x[32 + 32 * j..]));
                [
                    vreinterpretq_s8_u8(vandq_u8(b0, m4b)),
                    vreinterpretq_s8_u8(vandq_u8(b1, m4b)),
                    vreinterpretq_s8_u8(vshrq_n_u8::<4>(b0)),
                    vreinterpretq_s8_u8(vshrq_n_u8::<4>(b1)),
                ]
            };
            let acts = |y: &[u8]| -> [int8x16_t; 4] {
                let q = &y[4 + 64 * j..];
                [ld_s8(q), ld_s8(&q[16..]), ld_s8(&q[32..]), ld_s8(&q[48..])]
            };
            let (vx0, vx1, vy0, vy1) = (unpack(x0), unpack(x1), acts(y0), acts(y1));
            for k in 0..2 {
                let blk = 2 * j + k;
                let (s0, s1) = (sc0[blk] as i32, sc1[blk] as i32);
                let block_scale = vld1q_s32([s0, s0, s1, s1].as_ptr());
                let mut vr = vdupq_n_s32(0);
                for idx in 2 * k..2 * k + 2 {
                    let (xl, xh) = zip_rows(vx0[idx], vx1[idx]);
                    let (yl, yh) = zip_rows(vy0[idx], vy1[idx]);
                    vr = smmla(vr, xl, yl);
                    vr = smmla(vr, xh, yh);
                }
                visum = vmlaq_s32(visum, vr, block_scale);
            }
        }
        let bias = [
            k_min_sum(y0, &mn0),
            k_min_sum(y1, &mn0),
            k_min_sum(y0, &mn1),
            k_min_sum(y1, &mn1),
        ];
        let (dy0, dy1) = (f32_at(y0, 0), f32_at(y1, 0));
        let (m0, m1) = (f16_at(x0, 2), f16_at(x1, 2));
        let dmins = [m0 * dy0, m0 * dy1, m1 * dy0, m1 * dy1];
        let bias = vcvtq_f32_s32(vld1q_s32(bias.as_ptr()));
        vfsum = vmlsq_f32(vfsum, bias, vld1q_f32(dmins.as_ptr()));
        let (d0, d1) = (f16_at(x0, 0), f16_at(x1, 0));
        let scale = [d0 * dy0, d0 * dy1, d1 * dy0, d1 * dy1];
        vfsum = vmlaq_f32(vfsum, vcvtq_f32_s32(visum), vld1q_f32(scale.as_ptr()));
    }
    lanes(vfsum)
}

/// The 128 unsigned six-bit quants of half `j` of a Q6_K block `x`, as 8 vectors of 16 in value
/// order (one sub-block scale each).
#[inline(always)]
unsafe fn q6_k_unpack(x: &[u8], j: usize) -> [int8x16_t; 8] {
    let m4b = vdupq_n_u8(0x0f);
    let mone = vdupq_n_u8(0x30);
    let (ql, qh) = (&x[64 * j..], &x[128 + 32 * j..]);
    let (h0, h1) = (ld_u8(qh), ld_u8(&qh[16..]));
    let l = [
        ld_u8(ql),
        ld_u8(&ql[16..]),
        ld_u8(&ql[32..]),
        ld_u8(&ql[48..]),
    ];
    let high = [
        vandq_u8(mone, vshlq_n_u8::<4>(h0)),
        vandq_u8(mone, vshlq_n_u8::<4>(h1)),
        vandq_u8(mone, vshlq_n_u8::<2>(h0)),
        vandq_u8(mone, vshlq_n_u8::<2>(h1)),
        vandq_u8(mone, h0),
        vandq_u8(mone, h1),
        vandq_u8(mone, vshrq_n_u8::<2>(h0)),
        vandq_u8(mone, vshrq_n_u8::<2>(h1)),
    ];
    let mut v = [vdupq_n_s8(0); 8];
    for (k, v) in v.iter_mut().enumerate() {
        let low = if k < 4 {
            vandq_u8(l[k], m4b)
        } else {
            vshrq_n_u8::<4>(l[k - 4])
        };
        *v = vreinterpretq_s8_u8(vorrq_u8(low, high[k]));
    }
    v
}

/// `ggml_vec_dot_q6_K_q8_K` with `nrc == 2`: each 16-value sub-block by `smmla`, scaled in int32
/// (at most 30 bits), the 32 taken off through the block sums, one float step per super-block.
///
/// # Safety
/// The CPU must have i8mm.
#[target_feature(enable = "neon,i8mm")]
unsafe fn q6_k_2x2_i8mm(w0: &[u8], w1: &[u8], a0: &[u8], a1: &[u8]) -> [[f32; 2]; 2] {
    let mut vfsum = vdupq_n_f32(0.0);
    let blocks = w0
        .chunks_exact(210)
        .zip(w1.chunks_exact(210))
        .zip(a0.chunks_exact(Q8K_SIZE).zip(a1.chunks_exact(Q8K_SIZE)));
    for ((x0, x1), (y0, y1)) in blocks {
        let mut visum = vdupq_n_s32(0);
        for j in 0..2 {
            let (vx0, vx1) = (q6_k_unpack(x0, j), q6_k_unpack(x1, j));
            for k in 0..8 {
                let blk = 8 * j + k;
                let vy0 = ld_s8(&y0[4 + 16 * blk..]);
                let vy1 = ld_s8(&y1[4 + 16 * blk..]);
                let (s0, s1) = (x0[192 + blk] as i8 as i32, x1[192 + blk] as i8 as i32);
                let block_scale = vld1q_s32([s0, s0, s1, s1].as_ptr());
                let (xl, xh) = zip_rows(vx0[k], vx1[k]);
                let (yl, yh) = zip_rows(vy0, vy1);
                let vr = smmla(smmla(vdupq_n_s32(0), xl, yl), xh, yh);
                visum = vmlaq_s32(visum, vr, block_scale);
            }
        }
        let bias = [
            q6_k_bias(x0, y0),
            q6_k_bias(x0, y1),
            q6_k_bias(x1, y0),
            q6_k_bias(x1, y1),
        ];
        let vibias = vmulq_n_s32(vld1q_s32(bias.as_ptr()), 32);
        let (dy0, dy1) = (f32_at(y0, 0), f32_at(y1, 0));
        let (d0, d1) = (f16_at(x0, 208), f16_at(x1, 208));
        let scale = [d0 * dy0, d0 * dy1, d1 * dy0, d1 * dy1];
        visum = vsubq_s32(visum, vibias);
        vfsum = vmlaq_f32(vfsum, vcvtq_f32_s32(visum), vld1q_f32(scale.as_ptr()));
    }
    lanes(vfsum)
}

fn q8_0_2x2(w0: &[u8], w1: &[u8], a0: &[u8], a1: &[u8]) -> [[f32; 2]; 2] {
    if has_i8mm() {
        // SAFETY: the CPU has i8mm (checked just above).
        unsafe { q8_0_2x2_i8mm(w0, w1, a0, a1) }
    } else {
        let d = one_row(TypeId::Q8_0);
        [[d(w0, a0), d(w0, a1)], [d(w1, a0), d(w1, a1)]]
    }
}

fn q4_0_2x2(w0: &[u8], w1: &[u8], a0: &[u8], a1: &[u8]) -> [[f32; 2]; 2] {
    if has_i8mm() {
        // SAFETY: the CPU has i8mm (checked just above).
        unsafe { q4_0_2x2_i8mm(w0, w1, a0, a1) }
    } else {
        let d = one_row(TypeId::Q4_0);
        [[d(w0, a0), d(w0, a1)], [d(w1, a0), d(w1, a1)]]
    }
}

fn q4_k_2x2(w0: &[u8], w1: &[u8], a0: &[u8], a1: &[u8]) -> [[f32; 2]; 2] {
    if has_i8mm() {
        // SAFETY: the CPU has i8mm (checked just above).
        unsafe { q4_k_2x2_i8mm(w0, w1, a0, a1) }
    } else {
        let d = one_row(TypeId::Q4_K);
        [[d(w0, a0), d(w0, a1)], [d(w1, a0), d(w1, a1)]]
    }
}

fn q6_k_2x2(w0: &[u8], w1: &[u8], a0: &[u8], a1: &[u8]) -> [[f32; 2]; 2] {
    if has_i8mm() {
        // SAFETY: the CPU has i8mm (checked just above).
        unsafe { q6_k_2x2_i8mm(w0, w1, a0, a1) }
    } else {
        let d = one_row(TypeId::Q6_K);
        [[d(w0, a0), d(w0, a1)], [d(w1, a0), d(w1, a1)]]
    }
}

/// The one-row kernel of `ty` (a type with a 2×2 kernel) for this CPU: the 2×2 wrappers' fallback,
/// never taken through `best_dot_2x2`.
fn one_row(ty: TypeId) -> DotFn {
    dot_for(ty, has_dotprod()).expect("every type with a 2x2 kernel has one-row kernels")
}

// ---- the compiled forms and their safe entry points ---------------------------------------------

/// For each kernel, its plain NEON and `sdot` compilations (`unsafe`, for the tests to call each
/// directly) and safe entry points that `best_dot` hands out: the `sdot` one checks for dotprod
/// itself (a cached flag) and falls back to the plain form, so neither can run on a CPU without
/// its instructions.
macro_rules! forms {
    ($($module:ident => $kernel:ident;)*) => {$(
        mod $module {
            use super::*;

            /// # Safety
            /// The CPU must support NEON (every aarch64 target does).
            #[target_feature(enable = "neon")]
            pub(super) unsafe fn neon(x: &[u8], y: &[u8]) -> f32 {
                $kernel::<Widen>(x, y)
            }

            /// # Safety
            /// The CPU must support NEON and dotprod.
            #[target_feature(enable = "neon,dotprod")]
            pub(super) unsafe fn dotprod(x: &[u8], y: &[u8]) -> f32 {
                $kernel::<Sdot>(x, y)
            }

            pub(super) fn safe_neon(x: &[u8], y: &[u8]) -> f32 {
                // SAFETY: NEON is part of every aarch64 target Rust supports.
                unsafe { neon(x, y) }
            }

            pub(super) fn safe_dotprod(x: &[u8], y: &[u8]) -> f32 {
                if has_dotprod() {
                    // SAFETY: the CPU has dotprod (checked just above).
                    unsafe { dotprod(x, y) }
                } else {
                    safe_neon(x, y)
                }
            }
        }
    )*};
}

forms! {
    q8_0 => dot_q8_0;
    q4_0 => dot_q4_0;
    q5_0 => dot_q5_0;
    q4_k => dot_q4_k;
    q5_k => dot_q5_k;
    q6_k => dot_q6_k;
    iq2_xxs => dot_iq2_xxs;
    iq2_xs => dot_iq2_xs;
    iq2_s => dot_iq2_s;
    iq3_xxs => dot_iq3_xxs;
    iq3_s => dot_iq3_s;
}

// Q2_K and Q3_K.
mod k_low;
// IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS and IQ3_S (their own file).
mod iq;
use iq::{dot_iq2_s, dot_iq2_xs, dot_iq2_xxs, dot_iq3_s, dot_iq3_xxs};

#[cfg(test)]
mod tests;
