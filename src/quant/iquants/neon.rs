//! NEON decoder of IQ4_NL blocks: a table lookup (`tbl`) of the 16 non-linear levels and one
//! multiply by the block scale per value, as the scalar `d * kvalues[q]`. Tested against the
//! scalar port.

use std::arch::aarch64::*;

use super::{f16_at, KVALUES_IQ4NL, QK4_NL};
use crate::quant::neon::{store_scaled, widen_s8};

/// Decodes IQ4_NL blocks (`src` exactly the 18-byte blocks of `dst`).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn dequantize_iq4_nl(src: &[u8], dst: &mut [f32]) {
    let table = vld1q_s8(KVALUES_IQ4NL.as_ptr());
    let low = vdupq_n_u8(0x0F);
    for (b, y) in src.chunks_exact(18).zip(dst.chunks_exact_mut(QK4_NL)) {
        let d = f16_at(b, 0);
        let q = vld1q_u8(b[2..18].as_ptr());
        let lo = vqtbl1q_s8(table, vandq_u8(q, low));
        let hi = vqtbl1q_s8(table, vshrq_n_u8::<4>(q));
        store_scaled(&mut y[..16], widen_s8(lo), d);
        store_scaled(&mut y[16..], widen_s8(hi), d);
    }
}

/// ggml's `best_index_int8(kvalues_iq4nl, id * x[j])` for the 32 values of a block, written to
/// `out`: the count `c` of levels not above the product (clamped to 1..=15), then the nearer of
/// levels `c - 1` and `c` with the scalar code's own comparison (`x - lo < hi - x`, ties up), so
/// the indices are the scalar port's. Returns false (nothing written) when a product is NaN, which
/// the binary search sends to the top level; the caller runs the scalar search then.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn iq4_nl_indices(id: f32, x: &[f32], out: &mut [u8]) -> bool {
    let (x, out) = (&x[..32], &mut out[..32]);
    let idv = vdupq_n_f32(id);
    let table = vld1q_s8(KVALUES_IQ4NL.as_ptr());
    let mut levels = [vdupq_n_f32(0.0); 16];
    for (l, &v) in levels.iter_mut().zip(KVALUES_IQ4NL.iter()) {
        *l = vdupq_n_f32(v as f32);
    }
    let mut res = [0u8; 32];
    for half in 0..2 {
        let mut al = [vdupq_n_f32(0.0); 4];
        let mut count = [vdupq_n_u32(0); 4];
        let mut ordered = vdupq_n_u32(u32::MAX);
        for (g, (a, c)) in al.iter_mut().zip(&mut count).enumerate() {
            *a = vmulq_f32(idv, vld1q_f32(x[16 * half + 4 * g..].as_ptr()));
            ordered = vandq_u32(ordered, vceqq_f32(*a, *a));
            // Each level not above `a` adds one (a true mask is -1).
            for lv in &levels {
                *c = vsubq_u32(*c, vcleq_f32(*lv, *a));
            }
        }
        if vminvq_u32(ordered) != u32::MAX {
            return false;
        }
        let c = vcombine_u8(
            vmovn_u16(vcombine_u16(vmovn_u32(count[0]), vmovn_u32(count[1]))),
            vmovn_u16(vcombine_u16(vmovn_u32(count[2]), vmovn_u32(count[3]))),
        );
        let mu = vminq_u8(vmaxq_u8(c, vdupq_n_u8(1)), vdupq_n_u8(15));
        let below = vsubq_u8(mu, vdupq_n_u8(1));
        let lo = widen_s8(vqtbl1q_s8(table, below));
        let hi = widen_s8(vqtbl1q_s8(table, mu));
        // Lane masks of `a - lo < hi - a`, narrowed to bytes in lane order.
        let mut m = [vdupq_n_u32(0); 4];
        for (m, ((&a, &lo), &hi)) in m.iter_mut().zip(al.iter().zip(&lo).zip(&hi)) {
            *m = vcltq_f32(vsubq_f32(a, lo), vsubq_f32(hi, a));
        }
        let take_below = vcombine_u8(
            vmovn_u16(vcombine_u16(vmovn_u32(m[0]), vmovn_u32(m[1]))),
            vmovn_u16(vcombine_u16(vmovn_u32(m[2]), vmovn_u32(m[3]))),
        );
        vst1q_u8(
            res[16 * half..].as_mut_ptr(),
            vbslq_u8(take_below, below, mu),
        );
    }
    out.copy_from_slice(&res);
    true
}

#[cfg(test)]
mod tests {
    use super::super::iq4_indices_scalar;
    use super::*;

    /// The NEON indices are the scalar search's for random values and scales, for products on and
    /// half-way between the levels, beyond both ends and infinite; NaN products are refused.
    #[test]
    fn iq4_nl_indices_equal_scalar_search() {
        let mut s = 0x9E3779B97F4A7C15u64;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut specials = vec![
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            1e30,
            -1e30,
            1e-40,
        ];
        // Values a few ulps either side of `v` (`next_up` is newer than the crate's MSRV).
        let near = |v: f32| [v, v + v.abs() * 2e-7, v - v.abs() * 2e-7];
        for k in 0..16 {
            let v = KVALUES_IQ4NL[k] as f32;
            specials.extend(near(v));
            specials.extend([v + 0.5, v - 0.5]);
            if k < 15 {
                specials.extend(near((v + KVALUES_IQ4NL[k + 1] as f32) / 2.0));
            }
        }
        let mut checked = 0;
        for trial in 0..4000 {
            let x: Vec<f32> = (0..32)
                .map(|j| {
                    let r = rnd();
                    if trial % 4 == 0 {
                        specials[(r as usize + j) % specials.len()]
                    } else {
                        ((r >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 300.0
                    }
                })
                .collect();
            let id = if trial % 4 == 0 {
                1.0
            } else {
                (rnd() % 1000) as f32 / 300.0
            };
            let mut want = [0u8; 32];
            let mut got = [0u8; 32];
            iq4_indices_scalar(id, &x, &mut want);
            // SAFETY: NEON is part of every aarch64 target.
            assert!(unsafe { iq4_nl_indices(id, &x, &mut got) });
            assert_eq!(got, want, "id {id}, x {x:?}");
            checked += 32;
        }
        assert_eq!(checked, 4000 * 32);
        let mut x = [1.0f32; 32];
        x[17] = f32::NAN;
        let mut got = [7u8; 32];
        // SAFETY: as above.
        assert!(!unsafe { iq4_nl_indices(1.0, &x, &mut got) });
        assert_eq!(got, [7u8; 32], "nothing written");
        // 0 * inf is NaN too.
        x[17] = f32::INFINITY;
        assert!(!unsafe { iq4_nl_indices(0.0, &x, &mut got) });
    }
}
