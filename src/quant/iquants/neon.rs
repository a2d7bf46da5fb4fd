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
