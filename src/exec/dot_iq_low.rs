//! Scalar ports of ggml-cpu's dot products for the lattice i-quants below 4 bits with Q8_K
//! activations (`ggml_vec_dot_iq2_xxs_q8_K_generic`, `..._iq2_xs_...`, `..._iq2_s_...`,
//! `..._iq3_xxs_...`, `..._iq3_s_...` in `ggml-cpu/quants.c`): the oracles the SIMD forms
//! (`x86_iq`) are held to. Same integer sums, same float order: one exact integer sum per
//! super-block, scaled by `d_x · d_y` and added up, the constant factor (1/8 for IQ2, 1/4 for
//! IQ3_XXS) applied last. The grids are the format's own (`quant::iquants`).

// The ports keep the C code's index loops, so they can be read side by side with quants.c.
#![allow(clippy::needless_range_loop)]

use crate::quant::iquants::{
    f16_at, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID, KMASK_IQ2XS, KSIGNS_IQ2XS,
};

/// Bytes of a Q8_K block: f32 scale, 256 quants, 16 partial sums.
const Q8K: usize = 292;

/// Bytes of a block of each type (`block_iq2_xxs` ... `block_iq3_s`).
pub(crate) const IQ2_XXS_BYTES: usize = 66;
pub(crate) const IQ2_XS_BYTES: usize = 74;
pub(crate) const IQ2_S_BYTES: usize = 82;
pub(crate) const IQ3_XXS_BYTES: usize = 98;
pub(crate) const IQ3_S_BYTES: usize = 110;

#[inline(always)]
fn q8k_d(y: &[u8]) -> f32 {
    f32::from_le_bytes([y[0], y[1], y[2], y[3]])
}

#[inline(always)]
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Byte `j` of a grid entry (the C code reads the entries as byte arrays, little-endian).
#[inline(always)]
fn gb(g: u64, j: usize) -> i32 {
    ((g >> (8 * j)) & 0xff) as i32
}

/// `signs & kmask_iq2xs[j] ? -1 : 1`.
#[inline(always)]
fn sgn(signs: u8, j: usize) -> i32 {
    if signs & KMASK_IQ2XS[j] != 0 {
        -1
    } else {
        1
    }
}

/// A super-block's exact integer sum with 256 activation quants.
type BlockSum = fn(&[u8], &[u8]) -> i32;

/// The shared frame of the five ports: per super-block the exact integer sum `bsum` of the scaled
/// products, `sumf += d_x · d_y · bsum`, and `factor · sumf` at the end.
#[inline(always)]
fn dot_with(x: &[u8], y: &[u8], bytes: usize, factor: f32, bsum: BlockSum) -> f32 {
    let mut sumf = 0f32;
    for (xb, yb) in x.chunks_exact(bytes).zip(y.chunks_exact(Q8K)) {
        let d = f16_at(xb, 0) * q8k_d(yb);
        sumf += d * bsum(xb, &yb[4..260]) as f32;
    }
    factor * sumf
}

/// `ggml_vec_dot_iq2_xxs_q8_K_generic`.
pub(crate) fn dot_iq2_xxs(x: &[u8], y: &[u8]) -> f32 {
    dot_with(x, y, IQ2_XXS_BYTES, 0.125, bsum_iq2_xxs)
}

/// `ggml_vec_dot_iq2_xs_q8_K_generic`.
pub(crate) fn dot_iq2_xs(x: &[u8], y: &[u8]) -> f32 {
    dot_with(x, y, IQ2_XS_BYTES, 0.125, bsum_iq2_xs)
}

/// `ggml_vec_dot_iq2_s_q8_K_generic`.
pub(crate) fn dot_iq2_s(x: &[u8], y: &[u8]) -> f32 {
    dot_with(x, y, IQ2_S_BYTES, 0.125, bsum_iq2_s)
}

/// `ggml_vec_dot_iq3_xxs_q8_K_generic`.
pub(crate) fn dot_iq3_xxs(x: &[u8], y: &[u8]) -> f32 {
    dot_with(x, y, IQ3_XXS_BYTES, 0.25, bsum_iq3_xxs)
}

/// `ggml_vec_dot_iq3_s_q8_K_generic` (no constant factor: `1.0 · sumf` is `sumf`).
pub(crate) fn dot_iq3_s(x: &[u8], y: &[u8]) -> f32 {
    dot_with(x, y, IQ3_S_BYTES, 1.0, bsum_iq3_s)
}

/// One IQ2_XXS super-block with the 256 activation quants `q8`.
fn bsum_iq2_xxs(xb: &[u8], q8: &[u8]) -> i32 {
    let mut bsum = 0i32;
    for ib32 in 0..8 {
        let a0 = u32_at(xb, 2 + 8 * ib32);
        let a1 = u32_at(xb, 6 + 8 * ib32);
        let ls = (2 * (a1 >> 28) + 1) as i32;
        let mut sumi = 0i32;
        for l in 0..4 {
            let grid = IQ2XXS_GRID[((a0 >> (8 * l)) & 0xff) as usize];
            let signs = KSIGNS_IQ2XS[((a1 >> (7 * l)) & 127) as usize];
            for j in 0..8 {
                sumi += gb(grid, j) * q8[32 * ib32 + 8 * l + j] as i8 as i32 * sgn(signs, j);
            }
        }
        bsum += sumi * ls;
    }
    bsum
}

/// One IQ2_XS super-block.
fn bsum_iq2_xs(xb: &[u8], q8: &[u8]) -> i32 {
    let sc = &xb[66..74];
    let mut bsum = 0i32;
    for ib32 in 0..8 {
        let ls1 = 2 * (sc[ib32] & 0xf) as i32 + 1;
        let ls2 = 2 * (sc[ib32] >> 4) as i32 + 1;
        for (half, ls) in [ls1, ls2].into_iter().enumerate() {
            let mut sumi = 0i32;
            for l in 2 * half..2 * half + 2 {
                let q2 = u16_at(xb, 2 + 2 * (4 * ib32 + l));
                let grid = IQ2XS_GRID[(q2 & 511) as usize];
                let signs = KSIGNS_IQ2XS[(q2 >> 9) as usize];
                for j in 0..8 {
                    sumi += gb(grid, j) * q8[32 * ib32 + 8 * l + j] as i8 as i32 * sgn(signs, j);
                }
            }
            bsum += sumi * ls;
        }
    }
    bsum
}

/// One IQ2_S super-block.
fn bsum_iq2_s(xb: &[u8], q8: &[u8]) -> i32 {
    let (qs, signs) = (&xb[2..34], &xb[34..66]);
    let (qh, scales) = (&xb[66..74], &xb[74..82]);
    let mut bsum = 0i32;
    for ib32 in 0..8 {
        let ls1 = 1 + 2 * (scales[ib32] & 0xf) as i32;
        let ls2 = 1 + 2 * (scales[ib32] >> 4) as i32;
        let (mut sumi1, mut sumi2) = (0i32, 0i32);
        for l in 0..4 {
            let idx = qs[4 * ib32 + l] as usize | (((qh[ib32] as usize) << (8 - 2 * l)) & 0x300);
            let grid = IQ2S_GRID[idx];
            let s = signs[4 * ib32 + l];
            let mut sumi = 0i32;
            for j in 0..8 {
                sumi += q8[32 * ib32 + 8 * l + j] as i8 as i32 * gb(grid, j) * sgn(s, j);
            }
            if l < 2 {
                sumi1 += sumi;
            } else {
                sumi2 += sumi;
            }
        }
        bsum += ls1 * sumi1 + ls2 * sumi2;
    }
    bsum
}

/// One IQ3_XXS super-block.
fn bsum_iq3_xxs(xb: &[u8], q8: &[u8]) -> i32 {
    let (q3, gas) = (&xb[2..66], &xb[66..98]);
    let mut bsum = 0i32;
    for ib32 in 0..8 {
        let aux32 = u32_at(gas, 4 * ib32);
        let ls = (2 * (aux32 >> 28) + 1) as i32;
        let mut sumi = 0i32;
        for l in 0..4 {
            let grid1 = IQ3XXS_GRID[q3[8 * ib32 + 2 * l] as usize] as u64;
            let grid2 = IQ3XXS_GRID[q3[8 * ib32 + 2 * l + 1] as usize] as u64;
            let signs = KSIGNS_IQ2XS[((aux32 >> (7 * l)) & 127) as usize];
            let q8 = &q8[32 * ib32 + 8 * l..];
            for j in 0..4 {
                sumi += gb(grid1, j) * q8[j] as i8 as i32 * sgn(signs, j);
                sumi += gb(grid2, j) * q8[j + 4] as i8 as i32 * sgn(signs, j + 4);
            }
        }
        bsum += sumi * ls;
    }
    bsum
}

/// One IQ3_S super-block.
fn bsum_iq3_s(xb: &[u8], q8: &[u8]) -> i32 {
    let (qs, qh) = (&xb[2..66], &xb[66..74]);
    let (signs, scales) = (&xb[74..106], &xb[106..110]);
    let mut bsum = 0i32;
    for ib32 in 0..8 {
        let ls = 2 * ((scales[ib32 / 2] >> (4 * (ib32 % 2))) & 0xf) as i32 + 1;
        let h = qh[ib32] as usize;
        let mut sumi = 0i32;
        for l in 0..4 {
            let i1 = qs[8 * ib32 + 2 * l] as usize | ((h << (8 - 2 * l)) & 256);
            let i2 = qs[8 * ib32 + 2 * l + 1] as usize | ((h << (7 - 2 * l)) & 256);
            let (grid1, grid2) = (IQ3S_GRID[i1] as u64, IQ3S_GRID[i2] as u64);
            let s = signs[4 * ib32 + l];
            let q8 = &q8[32 * ib32 + 8 * l..];
            for j in 0..4 {
                sumi += gb(grid1, j) * q8[j] as i8 as i32 * sgn(s, j);
                sumi += gb(grid2, j) * q8[j + 4] as i8 as i32 * sgn(s, j + 4);
            }
        }
        bsum += sumi * ls;
    }
    bsum
}

// ---- the unpacking the SIMD forms share ---------------------------------------------------------

/// Raw type ids, for the SIMD kernels' const-generic type parameter.
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
pub(crate) mod raw {
    use crate::gguf::TypeId;
    pub(crate) const IQ2_XXS: u32 = TypeId::IQ2_XXS.raw();
    pub(crate) const IQ2_XS: u32 = TypeId::IQ2_XS.raw();
    pub(crate) const IQ2_S: u32 = TypeId::IQ2_S.raw();
    pub(crate) const IQ3_XXS: u32 = TypeId::IQ3_XXS.raw();
    pub(crate) const IQ3_S: u32 = TypeId::IQ3_S.raw();
}

/// Bytes per block and the constant factor of the type with raw id `ty` (one of [`raw`]).
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
pub(crate) const fn shape(ty: u32) -> (usize, f32) {
    match ty {
        raw::IQ2_XXS => (IQ2_XXS_BYTES, 0.125),
        raw::IQ2_XS => (IQ2_XS_BYTES, 0.125),
        raw::IQ2_S => (IQ2_S_BYTES, 0.125),
        raw::IQ3_XXS => (IQ3_XXS_BYTES, 0.25),
        _ => (IQ3_S_BYTES, 1.0),
    }
}

/// The sign bytes of an 8-bit mask: byte `j` is -1 when bit `j` is set, else 1.
const fn sign8(m: usize) -> u64 {
    let mut v = 0u64;
    let mut j = 0;
    while j < 8 {
        let b: u64 = if (m >> j) & 1 != 0 { 0xff } else { 0x01 };
        v |= b << (8 * j);
        j += 1;
    }
    v
}

/// `sign8` of every byte: for the formats that store whole sign bytes (IQ2_S, IQ3_S).
pub(crate) static SIGN8: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = sign8(i);
        i += 1;
    }
    t
};

/// ggml's `keven_signs_q2xs`: `sign8(ksigns_iq2xs[i])`, the 7 stored bits and their parity as the
/// eighth (for the formats that store 7-bit sign indices: IQ2_XXS, IQ2_XS, IQ3_XXS).
pub(crate) static KEVEN_SIGNS: [u64; 128] = {
    let mut t = [0u64; 128];
    let mut i = 0;
    while i < 128 {
        t[i] = sign8(i | ((i.count_ones() as usize & 1) << 7));
        i += 1;
    }
    t
};

/// Values `32g..32g + 32` of a super-block as the SIMD forms take them: 4 words of 8 grid
/// magnitudes (bytes, value order), 4 words of their signs (±1 bytes), and the scales (`2s + 1`)
/// of values 0-15 and 16-31.
pub(crate) struct Group {
    pub q: [u64; 4],
    pub s: [u64; 4],
    pub ls: [u8; 2],
}

/// Group `g` (0-7) of the super-block `xb` of the type with raw id `TY`.
#[inline(always)]
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
pub(crate) fn group<const TY: u32>(xb: &[u8], g: usize) -> Group {
    let mut q = [0u64; 4];
    let mut s = [0u64; 4];
    let ls;
    match TY {
        raw::IQ2_XXS => {
            let a0 = u32_at(xb, 2 + 8 * g);
            let a1 = u32_at(xb, 6 + 8 * g);
            for l in 0..4 {
                q[l] = IQ2XXS_GRID[((a0 >> (8 * l)) & 0xff) as usize];
                s[l] = KEVEN_SIGNS[((a1 >> (7 * l)) & 127) as usize];
            }
            let v = (2 * (a1 >> 28) + 1) as u8;
            ls = [v, v];
        }
        raw::IQ2_XS => {
            for l in 0..4 {
                let e = u16_at(xb, 2 + 2 * (4 * g + l)) as usize;
                q[l] = IQ2XS_GRID[e & 511];
                s[l] = KEVEN_SIGNS[e >> 9];
            }
            let b = xb[66 + g];
            ls = [2 * (b & 0xf) + 1, 2 * (b >> 4) + 1];
        }
        raw::IQ2_S => {
            let qh = xb[66 + g] as usize;
            for l in 0..4 {
                q[l] = IQ2S_GRID[xb[2 + 4 * g + l] as usize | ((qh << (8 - 2 * l)) & 0x300)];
                s[l] = SIGN8[xb[34 + 4 * g + l] as usize];
            }
            let b = xb[74 + g];
            ls = [2 * (b & 0xf) + 1, 2 * (b >> 4) + 1];
        }
        raw::IQ3_XXS => {
            let q3 = &xb[2 + 8 * g..10 + 8 * g];
            let aux = u32_at(xb, 66 + 4 * g);
            for l in 0..4 {
                q[l] = IQ3XXS_GRID[q3[2 * l] as usize] as u64
                    | (IQ3XXS_GRID[q3[2 * l + 1] as usize] as u64) << 32;
                s[l] = KEVEN_SIGNS[((aux >> (7 * l)) & 127) as usize];
            }
            let v = (2 * (aux >> 28) + 1) as u8;
            ls = [v, v];
        }
        _ => {
            let qs = &xb[2 + 8 * g..10 + 8 * g];
            let qh = xb[66 + g] as usize;
            for l in 0..4 {
                let i1 = qs[2 * l] as usize | ((qh << (8 - 2 * l)) & 256);
                let i2 = qs[2 * l + 1] as usize | ((qh << (7 - 2 * l)) & 256);
                q[l] = IQ3S_GRID[i1] as u64 | (IQ3S_GRID[i2] as u64) << 32;
                s[l] = SIGN8[xb[74 + 4 * g + l] as usize];
            }
            let v = 2 * ((xb[106 + g / 2] >> (4 * (g % 2))) & 0xf) + 1;
            ls = [v, v];
        }
    }
    Group { q, s, ls }
}

/// The scalar form of llama.cpp's tiled matmul (`ggml-cpu/tiled`, AVX2 microkernel, which takes
/// these types from 8 activation rows) for one weight row and one Q8_K activation row: per
/// super-block the exact integer sum `s1`, `r = (d_x · factor) · s1`, `acc = r · d_y + acc`
/// (fused). None for other types.
#[cfg(all(test, target_arch = "x86_64"))]
pub(crate) fn tiled_form(ty: crate::gguf::TypeId, w: &[u8], y: &[u8]) -> Option<f32> {
    use crate::gguf::TypeId;
    let (bytes, factor, bsum): (usize, f32, BlockSum) = match ty {
        TypeId::IQ2_XXS => (IQ2_XXS_BYTES, 0.125, bsum_iq2_xxs),
        TypeId::IQ2_XS => (IQ2_XS_BYTES, 0.125, bsum_iq2_xs),
        TypeId::IQ2_S => (IQ2_S_BYTES, 0.125, bsum_iq2_s),
        TypeId::IQ3_XXS => (IQ3_XXS_BYTES, 0.25, bsum_iq3_xxs),
        TypeId::IQ3_S => (IQ3_S_BYTES, 1.0, bsum_iq3_s),
        _ => return None,
    };
    let mut acc = 0f32;
    for (xb, yb) in w.chunks_exact(bytes).zip(y.chunks_exact(Q8K)) {
        let r = (f16_at(xb, 0) * factor) * bsum(xb, &yb[4..260]) as f32;
        acc = r.mul_add(q8k_d(yb), acc);
    }
    Some(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::TypeId;

    /// The block sizes here are the type table's.
    #[test]
    fn block_sizes_are_the_type_tables() {
        for (id, n) in [
            (TypeId::IQ2_XXS, IQ2_XXS_BYTES),
            (TypeId::IQ2_XS, IQ2_XS_BYTES),
            (TypeId::IQ2_S, IQ2_S_BYTES),
            (TypeId::IQ3_XXS, IQ3_XXS_BYTES),
            (TypeId::IQ3_S, IQ3_S_BYTES),
        ] {
            assert_eq!(id.ty().type_size as usize, n, "{id}");
        }
    }

    /// The sign tables agree with the format's `ksigns_iq2xs` (and so with ggml's
    /// `keven_signs_q2xs`, whose rows are those bytes spelled out as ±1).
    #[test]
    fn sign_tables_follow_ksigns() {
        for (i, &k) in KSIGNS_IQ2XS.iter().enumerate() {
            assert_eq!(KEVEN_SIGNS[i], SIGN8[k as usize], "{i}");
            for j in 0..8 {
                let b = (KEVEN_SIGNS[i] >> (8 * j)) as u8 as i8;
                assert_eq!(b, if k >> j & 1 == 1 { -1 } else { 1 }, "{i} {j}");
            }
        }
    }

    /// The groups the SIMD forms take give each super-block the ports' integer sum.
    #[test]
    fn groups_give_the_ports_sums() {
        fn via_groups<const TY: u32>(xb: &[u8], q8: &[u8]) -> i32 {
            let mut bsum = 0;
            for g in 0..8 {
                let gr = group::<TY>(xb, g);
                for v in 0..32 {
                    let (w, j) = (v / 8, v % 8);
                    let m = ((gr.q[w] >> (8 * j)) & 0xff) as i32;
                    let sg = ((gr.s[w] >> (8 * j)) & 0xff) as u8 as i8 as i32;
                    bsum += gr.ls[v / 16] as i32 * m * sg * q8[32 * g + v] as i8 as i32;
                }
            }
            bsum
        }
        for name in ["iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s"] {
            let (wq, acts, ty) = crate::exec::dot::tests::case(name, 1024, 1, 1, 3);
            let (q, _, _) = acts.q_rows().unwrap();
            let bytes = ty.type_size as usize;
            for (xb, yb) in wq.chunks_exact(bytes).zip(q.chunks_exact(Q8K)) {
                let q8 = &yb[4..260];
                let (want, got) = match ty.id {
                    TypeId::IQ2_XXS => {
                        (bsum_iq2_xxs(xb, q8), via_groups::<{ raw::IQ2_XXS }>(xb, q8))
                    }
                    TypeId::IQ2_XS => (bsum_iq2_xs(xb, q8), via_groups::<{ raw::IQ2_XS }>(xb, q8)),
                    TypeId::IQ2_S => (bsum_iq2_s(xb, q8), via_groups::<{ raw::IQ2_S }>(xb, q8)),
                    TypeId::IQ3_XXS => {
                        (bsum_iq3_xxs(xb, q8), via_groups::<{ raw::IQ3_XXS }>(xb, q8))
                    }
                    _ => (bsum_iq3_s(xb, q8), via_groups::<{ raw::IQ3_S }>(xb, q8)),
                };
                assert_eq!(got, want, "{name}");
                assert_ne!(want, 0, "{name}: a case that could fail");
            }
        }
    }
}
