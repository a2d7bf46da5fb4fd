//! NEON dot products for the lattice i-quants below 4 bits (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S)
//! with Q8_K activations, after ggml's ARM `ggml_vec_dot_iq*_q8_K` (`ggml-cpu/arch/arm/quants.c`):
//! the grid magnitudes times their ±1 signs (`vmulq_s8`) dotted with the activations 16 at a time,
//! each 16's sum times its scale, all in exact integers, then `sumf += d_x · d_y · bsum` per
//! super-block and the type's factor last. ggml's ARM kernels sum in that order too, so every form
//! gives the bits of the scalar ports in `exec::dot_iq_low` (held to them bit for bit below). The
//! unpacking is `dot_iq_low::group`, shared with the x86 forms.

use super::*;
use crate::exec::dot_iq_low::{group, raw, shape};

/// 8 bytes `a` then 8 bytes `b` as 16 signed bytes.
#[inline(always)]
unsafe fn v16(a: u64, b: u64) -> int8x16_t {
    vreinterpretq_s8_u64(vcombine_u64(vcreate_u64(a), vcreate_u64(b)))
}

/// The kernel of the type with raw id `TY` (see the module comment).
#[inline(always)]
unsafe fn dot_iq<D: Vdot, const TY: u32>(x: &[u8], y: &[u8]) -> f32 {
    let (bytes, factor) = shape(TY);
    let zero = vdupq_n_s32(0);
    let mut sumf = 0f32;
    for (xb, yb) in x.chunks_exact(bytes).zip(y.chunks_exact(Q8K_SIZE)) {
        let d = f16_at(xb, 0) * f32_at(yb, 0);
        let q8 = &yb[4..260];
        let mut bsum = 0i32;
        for g in 0..8 {
            let gr = group::<TY>(xb, g);
            let w0 = vmulq_s8(v16(gr.q[0], gr.q[1]), v16(gr.s[0], gr.s[1]));
            let w1 = vmulq_s8(v16(gr.q[2], gr.q[3]), v16(gr.s[2], gr.s[3]));
            let p0 = vaddvq_s32(D::vdot(zero, w0, ld_s8(&q8[32 * g..])));
            let p1 = vaddvq_s32(D::vdot(zero, w1, ld_s8(&q8[32 * g + 16..])));
            bsum += p0 * gr.ls[0] as i32 + p1 * gr.ls[1] as i32;
        }
        sumf += d * bsum as f32;
    }
    factor * sumf
}

/// `ggml_vec_dot_iq2_xxs_q8_K`, NEON path.
#[inline(always)]
pub(super) unsafe fn dot_iq2_xxs<D: Vdot>(x: &[u8], y: &[u8]) -> f32 {
    dot_iq::<D, { raw::IQ2_XXS }>(x, y)
}

/// `ggml_vec_dot_iq2_xs_q8_K`, NEON path.
#[inline(always)]
pub(super) unsafe fn dot_iq2_xs<D: Vdot>(x: &[u8], y: &[u8]) -> f32 {
    dot_iq::<D, { raw::IQ2_XS }>(x, y)
}

/// `ggml_vec_dot_iq2_s_q8_K`, NEON path.
#[inline(always)]
pub(super) unsafe fn dot_iq2_s<D: Vdot>(x: &[u8], y: &[u8]) -> f32 {
    dot_iq::<D, { raw::IQ2_S }>(x, y)
}

/// `ggml_vec_dot_iq3_xxs_q8_K`, NEON path.
#[inline(always)]
pub(super) unsafe fn dot_iq3_xxs<D: Vdot>(x: &[u8], y: &[u8]) -> f32 {
    dot_iq::<D, { raw::IQ3_XXS }>(x, y)
}

/// `ggml_vec_dot_iq3_s_q8_K`, NEON path.
#[inline(always)]
pub(super) unsafe fn dot_iq3_s<D: Vdot>(x: &[u8], y: &[u8]) -> f32 {
    dot_iq::<D, { raw::IQ3_S }>(x, y)
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::exec::dot::{quantize_one, scalar_dot};
    use crate::gguf::spec::ggml_type_by_name;

    /// Both forms of each kernel (and the entry points `dot_for` hands out) give the scalar port's
    /// bits, on quantized random rows of 1 and 3 super-blocks.
    #[test]
    fn kernels_equal_scalar_ports() {
        let dotprod = has_dotprod();
        type Form = unsafe fn(&[u8], &[u8]) -> f32;
        let forms: [(&str, Form, Form); 5] = [
            ("iq2_xxs", iq2_xxs::neon, iq2_xxs::dotprod),
            ("iq2_xs", iq2_xs::neon, iq2_xs::dotprod),
            ("iq2_s", iq2_s::neon, iq2_s::dotprod),
            ("iq3_xxs", iq3_xxs::neon, iq3_xxs::dotprod),
            ("iq3_s", iq3_s::neon, iq3_s::dotprod),
        ];
        for (name, plain, sdot) in forms {
            let ty = ggml_type_by_name(name).unwrap();
            for (cols, seed) in [(256, 1u64), (768, 2)] {
                let (wq, _, _) = crate::exec::dot::tests::case(name, cols, 1, 1, seed);
                let x = crate::exec::dot::tests::lcg(cols, seed + 7);
                let a = quantize_one(ty, &x);
                let want = scalar_dot(ty.id, &wq, &a);
                assert_ne!(want, 0.0, "{name}: a case that could fail");
                // SAFETY: NEON is part of every aarch64 target.
                let p = unsafe { plain(&wq, &a) };
                assert_eq!(p.to_bits(), want.to_bits(), "{name} neon");
                if dotprod {
                    // SAFETY: the CPU has dotprod (checked above).
                    let d = unsafe { sdot(&wq, &a) };
                    assert_eq!(d.to_bits(), want.to_bits(), "{name} dotprod");
                }
                for dp in [false, true] {
                    let f = dot_for(ty.id, dp).unwrap();
                    assert_eq!(f(&wq, &a).to_bits(), want.to_bits(), "{name} dot_for {dp}");
                }
            }
        }
    }
}
