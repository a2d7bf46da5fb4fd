//! NEON dot products of the low-bit K-quants, Q2_K and Q3_K, and of TQ2_0, with Q8_K activations,
//! and of Q1_0 with Q8_0 ones: ports of ggml-cpu's `ggml_vec_dot_q2_K_q8_K` /
//! `ggml_vec_dot_q3_K_q8_K` / `ggml_vec_dot_tq2_0_q8_K` / `ggml_vec_dot_q1_0_q8_0` NEON paths
//! (`ggml-cpu/arch/arm/quants.c`), in the plain-NEON and `sdot` forms of the parent module (the same
//! lanes, hence the same bits). Per super-block the exact integer sum of each 16 products times its
//! scale, then (Q2_K) `sum += -d_y · dmin · Σ mins · bsums` and `sum += d_y · d · isum`. The scalar
//! oracles are `dot_k_low::dot_q2_k` / `dot_q3_k` (ggml's generic code: another float order, so
//! the tests bound the difference by 1e-5 of the sum of |products|).

use super::*;
use crate::exec::dot_k_low::{q3k_scales, Q1_0_SIZE, Q2K_SIZE, Q3K_SIZE, TQ2_0_SIZE};

/// `ggml_vec_dot_q2_K_q8_K`, NEON path.
#[inline(always)]
pub(super) unsafe fn dot_q2_k<D: Vdot>(x: &[u8], y: &[u8]) -> f32 {
    let zero = vdupq_n_s32(0);
    let m3 = vdupq_n_u8(3);
    let m4 = vdupq_n_u8(0xf);
    let mut sum = 0f32;
    for (xb, yb) in x.chunks_exact(Q2K_SIZE).zip(y.chunks_exact(Q8K_SIZE)) {
        let d = f32_at(yb, 0) * f16_at(xb, 80);
        let dmin = -f32_at(yb, 0) * f16_at(xb, 82);
        let mins_and_scales = ld_u8(&xb[0..16]);
        let mut aux = [0u8; 16];
        vst1q_u8(aux.as_mut_ptr(), vandq_u8(mins_and_scales, m4));
        let mins = vshrq_n_u8::<4>(mins_and_scales);
        let (q8s0, q8s1) = (ld_s16(&yb[260..]), ld_s16(&yb[276..]));
        let mins0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mins)));
        let mins1 = vreinterpretq_s16_u16(vmovl_high_u8(mins));
        let s0 = vaddq_s32(
            vmull_s16(vget_low_s16(mins0), vget_low_s16(q8s0)),
            vmull_high_s16(mins0, q8s0),
        );
        let s1 = vaddq_s32(
            vmull_s16(vget_low_s16(mins1), vget_low_s16(q8s1)),
            vmull_high_s16(mins1, q8s1),
        );
        sum += dmin * vaddvq_s32(vaddq_s32(s0, s1)) as f32;
        let mut isum = 0i32;
        for j in 0..2 {
            let mut b0 = ld_u8(&xb[16 + 32 * j..]);
            let mut b1 = ld_u8(&xb[32 + 32 * j..]);
            for k in 0..4 {
                let q8 = &yb[4 + 128 * j + 32 * k..];
                let v0 = vreinterpretq_s8_u8(vandq_u8(b0, m3));
                let v1 = vreinterpretq_s8_u8(vandq_u8(b1, m3));
                let is = 8 * j + 2 * k;
                isum += vaddvq_s32(D::vdot(zero, v0, ld_s8(q8))) * aux[is] as i32;
                isum += vaddvq_s32(D::vdot(zero, v1, ld_s8(&q8[16..]))) * aux[is + 1] as i32;
                b0 = vshrq_n_u8::<2>(b0);
                b1 = vshrq_n_u8::<2>(b1);
            }
        }
        sum += d * isum as f32;
    }
    sum
}

/// `ggml_vec_dot_q3_K_q8_K`, NEON path: the low 2 bits less 4 where the high bit is clear
/// (`vbic`), as signed bytes.
#[inline(always)]
pub(super) unsafe fn dot_q3_k<D: Vdot>(x: &[u8], y: &[u8]) -> f32 {
    let zero = vdupq_n_s32(0);
    let m3b = vdupq_n_u8(3);
    let m0 = vdupq_n_u8(1);
    let m1 = vdupq_n_u8(2);
    let m2 = vdupq_n_u8(4);
    let m3 = vdupq_n_u8(8);
    let sub = |lo: uint8x16_t, hi: uint8x16_t| {
        vsubq_s8(
            vreinterpretq_s8_u8(vandq_u8(lo, m3b)),
            vreinterpretq_s8_u8(hi),
        )
    };
    let mut sum = 0f32;
    for (xb, yb) in x.chunks_exact(Q3K_SIZE).zip(y.chunks_exact(Q8K_SIZE)) {
        let d = f32_at(yb, 0) * f16_at(xb, 108);
        let (mut qh0, mut qh1) = (ld_u8(&xb[0..]), ld_u8(&xb[16..]));
        let scale = q3k_scales(&xb[96..108]);
        let mut isum = 0i32;
        for j in 0..2 {
            let (b0, b1) = (ld_u8(&xb[32 + 32 * j..]), ld_u8(&xb[48 + 32 * j..]));
            let q8 = &yb[4 + 128 * j..];
            let sc = &scale[8 * j..];
            let v = [
                sub(b0, vshlq_n_u8::<2>(vbicq_u8(m0, qh0))),
                sub(b1, vshlq_n_u8::<2>(vbicq_u8(m0, qh1))),
                sub(vshrq_n_u8::<2>(b0), vshlq_n_u8::<1>(vbicq_u8(m1, qh0))),
                sub(vshrq_n_u8::<2>(b1), vshlq_n_u8::<1>(vbicq_u8(m1, qh1))),
                sub(vshrq_n_u8::<4>(b0), vbicq_u8(m2, qh0)),
                sub(vshrq_n_u8::<4>(b1), vbicq_u8(m2, qh1)),
                sub(vshrq_n_u8::<6>(b0), vshrq_n_u8::<1>(vbicq_u8(m3, qh0))),
                sub(vshrq_n_u8::<6>(b1), vshrq_n_u8::<1>(vbicq_u8(m3, qh1))),
            ];
            for (k, vk) in v.iter().enumerate() {
                isum += vaddvq_s32(D::vdot(zero, *vk, ld_s8(&q8[16 * k..]))) * sc[k] as i32;
            }
            qh0 = vshrq_n_u8::<4>(qh0);
            qh1 = vshrq_n_u8::<4>(qh1);
        }
        sum += d * isum as f32;
    }
    sum
}

/// `ggml_vec_dot_tq2_0_q8_K`, NEON path: the codes 0, 1, 2 times the activations, summed exactly,
/// less the activations' block sums (the codes stand for -1, 0, +1), times `d_x · d_y`. An exact
/// integer per super-block, so the same bits as the scalar port.
#[inline(always)]
pub(super) unsafe fn dot_tq2_0<D: Vdot>(x: &[u8], y: &[u8]) -> f32 {
    let m3 = vdupq_n_u8(3);
    let mut sumf = 0f32;
    for (xb, yb) in x.chunks_exact(TQ2_0_SIZE).zip(y.chunks_exact(Q8K_SIZE)) {
        let mut sumi = vdupq_n_s32(0);
        for j in (0..64).step_by(32) {
            let qx0 = ld_u8(&xb[j..]);
            let qx1 = ld_u8(&xb[j + 16..]);
            for l in 0..4 {
                let (a, b) = match l {
                    0 => (qx0, qx1),
                    1 => (vshrq_n_u8::<2>(qx0), vshrq_n_u8::<2>(qx1)),
                    2 => (vshrq_n_u8::<4>(qx0), vshrq_n_u8::<4>(qx1)),
                    _ => (vshrq_n_u8::<6>(qx0), vshrq_n_u8::<6>(qx1)),
                };
                let q8 = &yb[4 + j * 4 + l * 32..];
                sumi = D::vdot(sumi, vreinterpretq_s8_u8(vandq_u8(a, m3)), ld_s8(q8));
                sumi = D::vdot(sumi, vreinterpretq_s8_u8(vandq_u8(b, m3)), ld_s8(&q8[16..]));
            }
        }
        let ysum = vaddq_s16(ld_s16(&yb[260..]), ld_s16(&yb[276..]));
        let sumi = vsubq_s32(sumi, vpaddlq_s16(ysum));
        let d = f16_at(xb, 64) * f32_at(yb, 0);
        sumf += d * vaddvq_s32(sumi) as f32;
    }
    sumf
}

/// `ggml_vec_dot_q1_0_q8_0`, NEON path: per Q8_0 block of the four a Q1_0 block spans, the signed
/// sum of its values (+ where the bit is set) in four lanes of four bytes each, converted and
/// accumulated lane-wise times `d_x · d_y` (`vmlaq_n_f32`: multiply, then add), the four lanes
/// summed at the end.
#[inline(always)]
pub(super) unsafe fn dot_q1_0<D: Vdot>(x: &[u8], y: &[u8]) -> f32 {
    const BIT: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    let bit = vld1q_u8(BIT.as_ptr());
    let one = vdupq_n_s8(1);
    let zero = vdupq_n_s32(0);
    let mut sumv = vdupq_n_f32(0.0);
    for (xb, yq) in x.chunks_exact(Q1_0_SIZE).zip(y.chunks_exact(4 * 34)) {
        let d0 = f16_at(xb, 0);
        for (k, yb) in yq.chunks_exact(34).enumerate() {
            let d1 = f16_at(yb, 0);
            let bits = &xb[2 + 4 * k..];
            // -1 where the bit is set, 0 where clear (`cmtst`), then | 1: -1 / +1, the negated
            // signs; the integer lanes are negated back below.
            let expand = |b0: u8, b1: u8| {
                let v = vcombine_u8(vdup_n_u8(b0), vdup_n_u8(b1));
                vorrq_s8(vreinterpretq_s8_u8(vtstq_u8(v, bit)), one)
            };
            let (s0, s1) = (expand(bits[0], bits[1]), expand(bits[2], bits[3]));
            let p = D::vdot(D::vdot(zero, s0, ld_s8(&yb[2..])), s1, ld_s8(&yb[18..]));
            sumv = vmlaq_n_f32(sumv, vcvtq_f32_s32(vnegq_s32(p)), d0 * d1);
        }
    }
    vaddvq_f32(sumv)
}

forms! {
    q2_k => dot_q2_k;
    q3_k => dot_q3_k;
    tq2_0 => dot_tq2_0;
    q1_0 => dot_q1_0;
}

/// The kernel of `ty_id` (Q2_K, Q3_K, TQ2_0, Q1_0) in its `sdot` form (`dotprod`) or its plain
/// NEON form.
pub(super) fn dot_for(ty_id: TypeId, dotprod: bool) -> Option<DotFn> {
    Some(match (ty_id, dotprod) {
        (TypeId::TQ2_0, false) => tq2_0::safe_neon,
        (TypeId::TQ2_0, true) => tq2_0::safe_dotprod,
        (TypeId::Q1_0, false) => q1_0::safe_neon,
        (TypeId::Q1_0, true) => q1_0::safe_dotprod,
        (TypeId::Q2_K, false) => q2_k::safe_neon,
        (TypeId::Q2_K, true) => q2_k::safe_dotprod,
        (TypeId::Q3_K, false) => q3_k::safe_neon,
        (TypeId::Q3_K, true) => q3_k::safe_dotprod,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::dot::tests::case;
    use crate::exec::dot_k_low::{dot_q2_k, dot_q3_k};
    use crate::quant::dequantize_row;

    /// Every form (plain NEON, and `sdot` when the CPU has it; the safe entry points and what
    /// `best_dot` picks) against the scalar port, on rows quantized from random values and on rows
    /// of random bits (every code, high bit and scale) with sane f16 scales: within 1e-5 of the sum
    /// of |products|, and the two forms bit for bit.
    #[test]
    fn kernels_match_scalar_ports() {
        let dotprod = has_dotprod();
        let mut s = 0x1234_5678_9abc_def1u64;
        let mut rnd = move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            s.wrapping_mul(0x2545F4914F6CDD1D)
        };
        for (name, id, bs) in [
            ("q2_K", TypeId::Q2_K, Q2K_SIZE),
            ("q3_K", TypeId::Q3_K, Q3K_SIZE),
        ] {
            for (cols, seed) in [(256, 1), (768, 2), (2048, 3)] {
                let (mut wq, acts, ty) = case(name, cols, 2, 2, seed);
                let (q, stride, _) = acts.q_rows().unwrap();
                if seed == 2 {
                    // Random bits, scales of either sign for d (dmin positive as quantizers make it).
                    for b in wq.chunks_exact_mut(bs) {
                        b.iter_mut().for_each(|v| *v = rnd() as u8);
                        let f = |v: f32| half::f16::from_f32(v).to_bits().to_le_bytes();
                        let dv = (1.0 + (rnd() % 1000) as f32 / 1000.0) / 64.0;
                        let (at, d) = if id == TypeId::Q2_K {
                            (80, dv)
                        } else {
                            (108, -dv)
                        };
                        b[at..at + 2].copy_from_slice(&f(d));
                        if id == TypeId::Q2_K {
                            b[82..84].copy_from_slice(&f(dv / 3.0));
                        }
                    }
                }
                let rb = wq.len() / 2;
                for r in 0..2 {
                    let w = &wq[r * rb..(r + 1) * rb];
                    for t in 0..2 {
                        let a = &q[t * stride..(t + 1) * stride];
                        let want = match id {
                            TypeId::Q2_K => dot_q2_k(w, a),
                            _ => dot_q3_k(w, a),
                        };
                        let mut wd = vec![0f32; cols];
                        let mut ad = vec![0f32; cols];
                        dequantize_row(ty, w, &mut wd).unwrap();
                        dequantize_row(TypeId::Q8_K.ty(), a, &mut ad).unwrap();
                        let bound: f64 = wd
                            .iter()
                            .zip(&ad)
                            .map(|(x, y)| (*x as f64 * *y as f64).abs())
                            .sum();
                        let check = |form: &str, got: f32| {
                            let err = (got as f64 - want as f64).abs();
                            assert!(
                                err <= 1e-5 * bound,
                                "{name} {form} cols {cols}: {got} vs scalar {want}"
                            );
                        };
                        type Form = unsafe fn(&[u8], &[u8]) -> f32;
                        let (plain, sdot): (Form, Form) = match id {
                            TypeId::Q2_K => (q2_k::neon as _, q2_k::dotprod as _),
                            _ => (q3_k::neon as _, q3_k::dotprod as _),
                        };
                        // SAFETY: NEON is part of every aarch64 target.
                        let p = unsafe { plain(w, a) };
                        check("neon", p);
                        if dotprod {
                            // SAFETY: the CPU has dotprod (checked above).
                            let d = unsafe { sdot(w, a) };
                            check("dotprod", d);
                            assert_eq!(p.to_bits(), d.to_bits(), "{name}: neon and dotprod");
                        }
                        check("safe_neon", dot_for(id, false).unwrap()(w, a));
                        check("safe_dotprod", dot_for(id, true).unwrap()(w, a));
                        if let Some(best) = best_dot(id) {
                            check("best_dot", best(w, a));
                        }
                    }
                }
            }
        }
    }

    /// TQ2_0 and Q1_0: every form against the scalar port, on quantized rows and on random bits
    /// (every code and sign) with sane scales. TQ2_0 sums exact integers per super-block, so all
    /// forms give the scalar port's bits; Q1_0 sums in four float lanes: within 1e-5 of the sum of
    /// |products|, and the plain and `sdot` forms bit for bit.
    #[test]
    fn ternary_and_binary_kernels_match_scalar_ports() {
        use crate::exec::dot::tests::act_row_f32;
        use crate::exec::dot_k_low::{dot_q1_0, dot_tq2_0};
        let dotprod = has_dotprod();
        let mut s = 0x0f1e_2d3c_4b5a_6978u64;
        let mut rnd = move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            s.wrapping_mul(0x2545F4914F6CDD1D)
        };
        for (name, id, bs, d_at) in [
            ("tq2_0", TypeId::TQ2_0, TQ2_0_SIZE, 64),
            ("q1_0", TypeId::Q1_0, Q1_0_SIZE, 0),
        ] {
            for (cols, seed) in [(256, 1), (768, 2), (2048, 3)] {
                let (mut wq, acts, ty) = case(name, cols, 2, 2, seed);
                if seed == 2 {
                    for b in wq.chunks_exact_mut(bs) {
                        b.iter_mut().for_each(|v| *v = rnd() as u8);
                        let dv = (1.0 + (rnd() % 1000) as f32 / 1000.0) / 64.0;
                        let dv = if rnd() % 2 == 0 { dv } else { -dv };
                        let f = half::f16::from_f32(dv).to_bits().to_le_bytes();
                        b[d_at..d_at + 2].copy_from_slice(&f);
                    }
                }
                let (q, stride, _) = acts.q_rows().unwrap();
                let rb = wq.len() / 2;
                for r in 0..2 {
                    let w = &wq[r * rb..(r + 1) * rb];
                    let mut wd = vec![0f32; cols];
                    dequantize_row(ty, w, &mut wd).unwrap();
                    for t in 0..2 {
                        let a = &q[t * stride..(t + 1) * stride];
                        let ad = act_row_f32(&acts, t);
                        let bound: f64 = wd
                            .iter()
                            .zip(&ad)
                            .map(|(x, y)| (*x as f64 * *y as f64).abs())
                            .sum();
                        let want = match id {
                            TypeId::TQ2_0 => dot_tq2_0(w, a),
                            _ => dot_q1_0(w, a),
                        };
                        type Form = unsafe fn(&[u8], &[u8]) -> f32;
                        let (plain, sdot): (Form, Form) = match id {
                            TypeId::TQ2_0 => (tq2_0::neon as _, tq2_0::dotprod as _),
                            _ => (q1_0::neon as _, q1_0::dotprod as _),
                        };
                        let check = |form: &str, got: f32| {
                            if id == TypeId::TQ2_0 {
                                assert_eq!(got.to_bits(), want.to_bits(), "{name} {form} {cols}");
                            } else {
                                let err = (got as f64 - want as f64).abs();
                                assert!(
                                    err <= 1e-5 * bound,
                                    "{name} {form} cols {cols}: {got} vs scalar {want}"
                                );
                            }
                        };
                        // SAFETY: NEON is part of every aarch64 target.
                        let p = unsafe { plain(w, a) };
                        check("neon", p);
                        if dotprod {
                            // SAFETY: the CPU has dotprod (checked above).
                            let d = unsafe { sdot(w, a) };
                            check("dotprod", d);
                            assert_eq!(p.to_bits(), d.to_bits(), "{name}: neon and dotprod");
                        }
                        check("safe_neon", dot_for(id, false).unwrap()(w, a));
                        check("safe_dotprod", dot_for(id, true).unwrap()(w, a));
                        if let Some(best) = best_dot(id) {
                            check("best_dot", best(w, a));
                        }
                    }
                }
            }
        }
    }
}
