//! Block formats: the i-quants IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL and IQ4_XS:
//! lattice grids and non-linear tables. Ported from `ggml/src/ggml-quants.c`; see the parent module for
//! the conventions. Every i-quant decodes and encodes, with or without an importance matrix (IQ2_XXS,
//! IQ2_XS and IQ1_S only with one, as in ggml). This file holds the decoders, the IQ4 encoders and the
//! helpers the sibling families share; `iq1`, `iq2`, `iq3` hold the lattice encoders and `lattice` the
//! grids/neighbour maps they search (ggml's `iq2xs_init_impl` / `iq3xs_init_impl`). The tables are
//! ggml's own, generated into `iquants/tables.rs` by `scripts/gen-iq-tables.py`.
//! Blocks are read as byte arrays (little-endian `u16`/`u32` fields, f16 scales as `[u8; 2]`).

mod iq1;
mod iq2;
mod iq3;
mod lattice;
#[cfg(target_arch = "aarch64")]
mod neon;
mod tables;

use tables::IQ1S_GRID;
// The grids and sign tables are also the executor's (its IQ2/IQ3 dot products).
pub(crate) use tables::{
    IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID, KMASK_IQ2XS, KSIGNS_IQ2XS,
};
pub(crate) use tables::{KVALUES_FP4, KVALUES_IQ4NL};

use super::Chunk;
use crate::gguf::TypeId;

const QK_K: usize = 256;
const QK4_NL: usize = 32;

/// ggml's `IQ1S_DELTA` (also `IQ1M_DELTA`).
const IQ1S_DELTA: f32 = 0.125;
/// ggml's `GROUP_MAX_EPS`: below this a block's largest magnitude counts as zero.
const GROUP_MAX_EPS: f32 = 1e-15;

// ---- helpers shared by this family and its siblings (ternary, fp4, lowbit) -----------------------

/// `GGML_FP16_TO_FP32` of a little-endian f16 (exact; `half` agrees with ggml on every non-NaN value).
#[inline]
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// `GGML_FP32_TO_FP16` (round to nearest even, as ggml's software conversion), little-endian.
#[inline]
pub(crate) fn f16_bytes(f: f32) -> [u8; 2] {
    if f.is_nan() {
        // ggml's conversion makes every NaN the quiet NaN 0x7E00 with f's sign.
        let sign = ((f.to_bits() >> 16) & 0x8000) as u16;
        return (sign | 0x7E00).to_le_bytes();
    }
    half::f16::from_f32(f).to_bits().to_le_bytes()
}

#[inline]
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[inline]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// C's `(int)f` as x86-64 compiles it (`cvttss2si`): truncation, and `INT_MIN` for NaN and values
/// out of range (NaN is in no range), where Rust's `as` would saturate. Only non-finite inputs reach
/// the difference.
#[inline]
pub(crate) fn c_f32_to_int(f: f32) -> i32 {
    if !(-2147483648.0f32..2147483648.0f32).contains(&f) {
        i32::MIN
    } else {
        f as i32
    }
}

/// `roundf` then `(int)` as x86-64 C does it: half away from zero, `INT_MIN` for NaN and values out
/// of range. `f32::round` is a slow soft-float call on baseline x86-64 (no SSE4.1); below 2^31 the
/// truncation and the fraction `f - trunc(f)` are exact, so rounding by hand gives the same integer.
#[inline]
pub(crate) fn c_roundf_to_int(f: f32) -> i32 {
    if !(-2147483648.0f32..2147483648.0f32).contains(&f) {
        return c_f32_to_int(f.round());
    }
    let i = f as i32;
    let frac = f - i as f32;
    // Branch-free: the direction is data-dependent and mispredicts half the time.
    i + (frac >= 0.5) as i32 - (frac <= -0.5) as i32
}

/// glibc's `lroundf` on x86-64: half away from zero, `LONG_MIN` for NaN and values out of range.
#[inline]
pub(crate) fn c_lroundf(f: f32) -> i64 {
    if (-2147483648.0f32..2147483648.0f32).contains(&f) {
        return c_roundf_to_int(f) as i64;
    }
    let r = f.round();
    if !(-9.223372e18f32..9.223372e18f32).contains(&r) {
        i64::MIN
    } else {
        r as i64
    }
}

/// ggml's `nearest_int` (one definition, in the K-quants' scale searches).
pub(crate) use super::kquants::nearest_int;

/// ggml's `best_index_int8`: the index of the value in sorted `val` nearest to `x` (ties go up).
#[inline]
fn best_index_int8(val: &[i8; 16], x: f32) -> usize {
    let n = val.len();
    if x <= val[0] as f32 {
        return 0;
    }
    if x >= val[n - 1] as f32 {
        return n - 1;
    }
    let (mut ml, mut mu) = (0usize, n - 1);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < val[mav] as f32 {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - (val[mu - 1] as f32) < (val[mu] as f32) - x {
        mu - 1
    } else {
        mu
    }
}

/// `best_index_int8(&KVALUES_IQ4NL, id * x[j])` for the 32 values of `x` into `out` (NEON when the
/// CPU has it: the same indices, see `neon::iq4_nl_indices`).
#[inline]
fn iq4_indices(id: f32, x: &[f32], out: &mut [u8]) {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the CPU has NEON (checked first), all `neon::iq4_nl_indices` requires.
    if super::has_neon() && unsafe { neon::iq4_nl_indices(id, x, out) } {
        return;
    }
    iq4_indices_scalar(id, x, out);
}

fn iq4_indices_scalar(id: f32, x: &[f32], out: &mut [u8]) {
    for (o, &v) in out[..32].iter_mut().zip(&x[..32]) {
        *o = best_index_int8(&KVALUES_IQ4NL, id * v) as u8;
    }
}

/// Byte `j` of a grid entry (the C code reads the `uint64_t`/`uint32_t` entries as byte arrays on a
/// little-endian machine).
#[inline]
fn gbyte(g: u64, j: usize) -> u8 {
    (g >> (8 * j)) as u8
}

#[inline]
fn sign(signs: u8, j: usize) -> f32 {
    if signs & KMASK_IQ2XS[j] != 0 {
        -1.0
    } else {
        1.0
    }
}

// ---- dequantization ------------------------------------------------------------------------------

/// Decodes one block into its values.
type DeqFn = fn(&[u8], &mut [f32]);

/// Decodes `dst.len()` values of type `id` if this family owns it; false otherwise. Lengths are checked.
pub(crate) fn dequantize(id: TypeId, src: &[u8], dst: &mut [f32]) -> bool {
    #[cfg(target_arch = "aarch64")]
    if id == TypeId::IQ4_NL && super::has_neon() {
        // SAFETY: the CPU has NEON (checked just above), all `neon::dequantize_iq4_nl` requires.
        unsafe { neon::dequantize_iq4_nl(src, dst) };
        return true;
    }
    dequantize_scalar(id, src, dst)
}

/// The scalar ports of ggml's `dequantize_row_iq*`: the oracle of the SIMD decoders.
pub(crate) fn dequantize_scalar(id: TypeId, src: &[u8], dst: &mut [f32]) -> bool {
    let (bs, f): (usize, DeqFn) = match id {
        TypeId::IQ2_XXS => (66, deq_iq2_xxs),
        TypeId::IQ2_XS => (74, deq_iq2_xs),
        TypeId::IQ2_S => (82, deq_iq2_s),
        TypeId::IQ3_XXS => (98, deq_iq3_xxs),
        TypeId::IQ3_S => (110, deq_iq3_s),
        TypeId::IQ1_S => (50, deq_iq1_s),
        TypeId::IQ1_M => (56, deq_iq1_m),
        TypeId::IQ4_NL => {
            for (b, y) in src.chunks_exact(18).zip(dst.chunks_exact_mut(QK4_NL)) {
                deq_iq4_nl(b, y);
            }
            return true;
        }
        TypeId::IQ4_XS => (136, deq_iq4_xs),
        _ => return false,
    };
    for (b, y) in src.chunks_exact(bs).zip(dst.chunks_exact_mut(QK_K)) {
        f(b, y);
    }
    true
}

fn deq_iq2_xxs(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..66];
    for ib32 in 0..QK_K / 32 {
        let aux0 = &qs[8 * ib32..8 * ib32 + 4];
        let aux1 = u32_at(qs, 8 * ib32 + 4);
        let db = d * (0.5f32 + (aux1 >> 28) as f32) * 0.25f32;
        for l in 0..4 {
            let grid = IQ2XXS_GRID[aux0[l] as usize];
            let signs = KSIGNS_IQ2XS[((aux1 >> (7 * l)) & 127) as usize];
            let y = &mut y[32 * ib32 + 8 * l..][..8];
            for (j, v) in y.iter_mut().enumerate() {
                *v = db * gbyte(grid, j) as f32 * sign(signs, j);
            }
        }
    }
}

fn deq_iq2_xs(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let scales = &b[66..74];
    for ib32 in 0..QK_K / 32 {
        let db = [
            d * (0.5f32 + (scales[ib32] & 0xf) as f32) * 0.25f32,
            d * (0.5f32 + (scales[ib32] >> 4) as f32) * 0.25f32,
        ];
        for l in 0..4 {
            let q = u16_at(b, 2 + 2 * (4 * ib32 + l));
            let grid = IQ2XS_GRID[(q & 511) as usize];
            let signs = KSIGNS_IQ2XS[(q >> 9) as usize];
            let y = &mut y[32 * ib32 + 8 * l..][..8];
            for (j, v) in y.iter_mut().enumerate() {
                *v = db[l / 2] * gbyte(grid, j) as f32 * sign(signs, j);
            }
        }
    }
}

fn deq_iq2_s(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..34];
    let signs = &b[34..66];
    let qh = &b[66..74];
    let scales = &b[74..82];
    for ib32 in 0..QK_K / 32 {
        let db = [
            d * (0.5f32 + (scales[ib32] & 0xf) as f32) * 0.25f32,
            d * (0.5f32 + (scales[ib32] >> 4) as f32) * 0.25f32,
        ];
        for l in 0..4 {
            let dl = db[l / 2];
            let idx = qs[4 * ib32 + l] as usize | (((qh[ib32] as usize) << (8 - 2 * l)) & 0x300);
            let grid = IQ2S_GRID[idx];
            let s = signs[4 * ib32 + l];
            let y = &mut y[32 * ib32 + 8 * l..][..8];
            for (j, v) in y.iter_mut().enumerate() {
                *v = dl * gbyte(grid, j) as f32 * sign(s, j);
            }
        }
    }
}

fn deq_iq3_xxs(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..66];
    let scales_and_signs = &b[66..98];
    for ib32 in 0..QK_K / 32 {
        let aux32 = u32_at(scales_and_signs, 4 * ib32);
        let db = d * (0.5f32 + (aux32 >> 28) as f32) * 0.5f32;
        let qs = &qs[8 * ib32..8 * ib32 + 8];
        for l in 0..4 {
            let signs = KSIGNS_IQ2XS[((aux32 >> (7 * l)) & 127) as usize];
            let grid1 = IQ3XXS_GRID[qs[2 * l] as usize] as u64;
            let grid2 = IQ3XXS_GRID[qs[2 * l + 1] as usize] as u64;
            let y = &mut y[32 * ib32 + 8 * l..][..8];
            for j in 0..4 {
                y[j] = db * gbyte(grid1, j) as f32 * sign(signs, j);
                y[j + 4] = db * gbyte(grid2, j) as f32 * sign(signs, j + 4);
            }
        }
    }
}

fn deq_iq3_s(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..66];
    let qh = &b[66..74];
    let signs = &b[74..106];
    let scales = &b[106..110];
    let mut out = 0;
    // Two 32-value groups per scale byte, each with its own high-bit byte; `half` walks qs, qh, signs.
    for ib32 in (0..QK_K / 32).step_by(2) {
        let db1 = d * (1 + 2 * (scales[ib32 / 2] & 0xf) as i32) as f32;
        let db2 = d * (1 + 2 * (scales[ib32 / 2] >> 4) as i32) as f32;
        for (half, db) in [(ib32, db1), (ib32 + 1, db2)] {
            let qs = &qs[8 * half..8 * half + 8];
            let h = qh[half] as usize;
            let sg = &signs[4 * half..4 * half + 4];
            for l in 0..4 {
                let grid1 = IQ3S_GRID[qs[2 * l] as usize | ((h << (8 - 2 * l)) & 256)] as u64;
                let grid2 = IQ3S_GRID[qs[2 * l + 1] as usize | ((h << (7 - 2 * l)) & 256)] as u64;
                let y = &mut y[out..out + 8];
                for j in 0..4 {
                    y[j] = db * gbyte(grid1, j) as f32 * sign(sg[l], j);
                    y[j + 4] = db * gbyte(grid2, j) as f32 * sign(sg[l], j + 4);
                }
                out += 8;
            }
        }
    }
}

fn deq_iq1_s(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..34];
    for ib in 0..QK_K / 32 {
        let qh = u16_at(b, 34 + 2 * ib) as usize;
        let dl = d * (2 * ((qh >> 12) & 7) + 1) as f32;
        let delta = if qh & 0x8000 != 0 {
            -IQ1S_DELTA
        } else {
            IQ1S_DELTA
        };
        for l in 0..4 {
            let grid = IQ1S_GRID[qs[4 * ib + l] as usize | (((qh >> (3 * l)) & 7) << 8)];
            let y = &mut y[32 * ib + 8 * l..][..8];
            for (j, v) in y.iter_mut().enumerate() {
                *v = dl * (gbyte(grid, j) as i8 as f32 + delta);
            }
        }
    }
}

fn deq_iq1_m(b: &[u8], y: &mut [f32]) {
    let qs = &b[0..32];
    let qh = &b[32..48];
    let sc = [
        u16_at(b, 48) as usize,
        u16_at(b, 50) as usize,
        u16_at(b, 52) as usize,
        u16_at(b, 54) as usize,
    ];
    // The super-block scale is an f16 spread over the top nibbles of the four scale words.
    let scale =
        (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000);
    let d = half::f16::from_bits(scale as u16).to_f32();
    for ib in 0..QK_K / 32 {
        let dl1 = d * (2 * ((sc[ib / 2] >> (6 * (ib % 2))) & 0x7) + 1) as f32;
        let dl2 = d * (2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 0x7) + 1) as f32;
        let q = &qs[4 * ib..4 * ib + 4];
        let (h0, h1) = (qh[2 * ib] as usize, qh[2 * ib + 1] as usize);
        let idx = [
            q[0] as usize | ((h0 << 8) & 0x700),
            q[1] as usize | ((h0 << 4) & 0x700),
            q[2] as usize | ((h1 << 8) & 0x700),
            q[3] as usize | ((h1 << 4) & 0x700),
        ];
        let dsign = |h: usize, m: usize| if h & m != 0 { -IQ1S_DELTA } else { IQ1S_DELTA };
        let delta = [
            dsign(h0, 0x08),
            dsign(h0, 0x80),
            dsign(h1, 0x08),
            dsign(h1, 0x80),
        ];
        for l in 0..4 {
            let dl = if l < 2 { dl1 } else { dl2 };
            let grid = IQ1S_GRID[idx[l]];
            let y = &mut y[32 * ib + 8 * l..][..8];
            for (j, v) in y.iter_mut().enumerate() {
                *v = dl * (gbyte(grid, j) as i8 as f32 + delta[l]);
            }
        }
    }
}

fn deq_iq4_nl(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..18];
    for j in 0..QK4_NL / 2 {
        y[j] = d * KVALUES_IQ4NL[(qs[j] & 0xf) as usize] as f32;
        y[j + QK4_NL / 2] = d * KVALUES_IQ4NL[(qs[j] >> 4) as usize] as f32;
    }
}

fn deq_iq4_xs(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let scales_h = u16_at(b, 2) as i32;
    let scales_l = &b[4..8];
    let qs = &b[8..136];
    for ib in 0..QK_K / 32 {
        let ls = ((scales_l[ib / 2] as i32 >> (4 * (ib % 2))) & 0xf)
            | (((scales_h >> (2 * ib)) & 3) << 4);
        let dl = d * (ls - 32) as f32;
        let qs = &qs[16 * ib..16 * ib + 16];
        let y = &mut y[32 * ib..32 * ib + 32];
        for j in 0..16 {
            y[j] = dl * KVALUES_IQ4NL[(qs[j] & 0xf) as usize] as f32;
            y[j + 16] = dl * KVALUES_IQ4NL[(qs[j] >> 4) as usize] as f32;
        }
    }
}

// ---- quantization --------------------------------------------------------------------------------

/// Quantizes a checked chunk if this family owns type `id`; false otherwise.
pub(crate) fn quantize(id: TypeId, c: &mut Chunk<'_>) -> bool {
    match id {
        TypeId::IQ4_NL => quantize_iq4(c, QK4_NL, 18),
        TypeId::IQ4_XS => quantize_iq4(c, QK_K, 136),
        TypeId::IQ3_XXS => by_row(c, 98, iq3::quantize_row_iq3_xxs),
        TypeId::IQ3_S => by_row(c, 110, iq3::quantize_row_iq3_s),
        TypeId::IQ2_S => by_row(c, 82, iq2::quantize_row_iq2_s),
        TypeId::IQ2_XXS => by_row(c, 66, iq2::quantize_row_iq2_xxs),
        TypeId::IQ2_XS => by_row(c, 74, iq2::quantize_row_iq2_xs),
        TypeId::IQ1_S => by_row(c, 50, iq1::quantize_row_iq1_s),
        TypeId::IQ1_M => by_row(c, 56, iq1::quantize_row_iq1_m),
        _ => return false,
    }
    true
}

/// One row quantizer: `(row values, row bytes, importance of the row's columns)`.
type RowFn = fn(&[f32], &mut [u8], Option<&[f32]>);

/// ggml's `quantize_iq*` drivers: each row on its own, the importance matrix shared by all rows.
fn by_row(c: &mut Chunk<'_>, block_bytes: usize, f: RowFn) {
    let n = c.n_per_row;
    let row_bytes = n / QK_K * block_bytes;
    for (x, q) in c.src.chunks_exact(n).zip(c.dst.chunks_exact_mut(row_bytes)) {
        f(x, q, c.imatrix);
    }
}

/// `quantize_iq4_nl` / `quantize_iq4_xs`: row by row, one `quantize_row_iq4_nl_impl` per super-block
/// with `ntry = 7` (ggml_quantize_chunk takes this path with and without an importance matrix).
fn quantize_iq4(c: &mut Chunk<'_>, sbs: usize, bs: usize) {
    let n = c.n_per_row;
    let row_bytes = n / sbs * bs;
    let mut scratch = Iq4Scratch {
        l: [0; QK_K],
        scales: [0.0; QK_K / 32],
        weight: [0.0; 32],
    };
    for (x, q) in c.src.chunks_exact(n).zip(c.dst.chunks_exact_mut(row_bytes)) {
        for (ibl, blk) in q.chunks_exact_mut(bs).enumerate() {
            let qw = c.imatrix.map(|w| &w[sbs * ibl..sbs * (ibl + 1)]);
            iq4_impl(&x[sbs * ibl..sbs * (ibl + 1)], blk, &mut scratch, qw, 7);
        }
    }
}

struct Iq4Scratch {
    l: [u8; QK_K],
    scales: [f32; QK_K / 32],
    weight: [f32; 32],
}

/// `quantize_row_iq4_nl_impl` for one super-block `x` (32 values for IQ4_NL, 256 for IQ4_XS) into
/// `blk` (`block_iq4_nl` or `block_iq4_xs`), with 32-value blocks and `kvalues_iq4nl`.
fn iq4_impl(
    x: &[f32],
    blk: &mut [u8],
    s: &mut Iq4Scratch,
    quant_weights: Option<&[f32]>,
    ntry: i32,
) {
    const BLOCK: usize = 32;
    let values = &KVALUES_IQ4NL;
    let sbs = x.len();
    let nblocks = sbs / BLOCK;

    let mut sigma2 = 0.0f32;
    for &v in x {
        sigma2 += v * v;
    }
    sigma2 *= 2.0f32 / sbs as f32;

    // d comes first in both blocks; IQ4_XS has scales_h and scales_l before its quants.
    let q4_at = if nblocks > 1 { 8 } else { 2 };
    blk[q4_at..q4_at + sbs / 2].fill(0);
    blk[0..2].copy_from_slice(&f16_bytes(0.0));

    let mut max_scale = 0.0f32;
    let mut amax_scale = 0.0f32;
    for ib in 0..nblocks {
        let xb = &x[ib * BLOCK..(ib + 1) * BLOCK];
        let weight = &mut s.weight;
        if let Some(qw) = quant_weights {
            let qw = &qw[ib * BLOCK..(ib + 1) * BLOCK];
            for j in 0..BLOCK {
                weight[j] = qw[j] * (sigma2 + xb[j] * xb[j]).sqrt();
            }
        } else {
            for j in 0..BLOCK {
                weight[j] = xb[j] * xb[j];
            }
        }
        let mut amax = 0.0f32;
        let mut max = 0.0f32;
        for &v in xb {
            let ax = v.abs();
            if ax > amax {
                amax = ax;
                max = v;
            }
        }
        if amax < GROUP_MAX_EPS {
            s.scales[ib] = 0.0;
            continue;
        }
        let lb = &mut s.l[ib * BLOCK..(ib + 1) * BLOCK];
        let v0 = values[0] as f32;
        let mut d = if ntry > 0 { -max / v0 } else { max / v0 };
        let mut id = 1.0f32 / d;
        let mut sumqx = 0.0f32;
        let mut sumq2 = 0.0f32;
        iq4_indices(id, xb, lb);
        for j in 0..BLOCK {
            let q = values[lb[j] as usize] as f32;
            let w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
        let mut best = d * sumqx;
        for itry in -ntry..=ntry {
            id = (itry + values[0] as i32) as f32 / max;
            sumqx = 0.0;
            sumq2 = 0.0;
            let mut lt = [0u8; BLOCK];
            iq4_indices(id, xb, &mut lt);
            for j in 0..BLOCK {
                let q = values[lt[j] as usize] as f32;
                let w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        s.scales[ib] = d;
        let abs_d = d.abs();
        if abs_d > amax_scale {
            amax_scale = abs_d;
            max_scale = d;
        }
    }

    if nblocks > 1 {
        // block_iq4_xs: d, scales_h (u16), scales_l[4], qs[128].
        let mut scales_h: u16 = 0;
        let mut scales_l = [0u8; QK_K / 64];
        let d = -max_scale / 32.0f32;
        blk[0..2].copy_from_slice(&f16_bytes(d));
        let id = if d != 0.0 { 1.0f32 / d } else { 0.0 };
        for ib in 0..nblocks {
            let mut l = nearest_int(id * s.scales[ib]);
            l = l.clamp(-32, 31);
            let dl = d * l as f32;
            let idl = if dl != 0.0 { 1.0f32 / dl } else { 0.0 };
            let lb = &mut s.l[ib * BLOCK..(ib + 1) * BLOCK];
            let xb = &x[ib * BLOCK..(ib + 1) * BLOCK];
            iq4_indices(idl, xb, lb);
            l += 32;
            let l_l = (l & 0xf) as u8;
            let l_h = (l >> 4) as u16;
            if ib % 2 == 0 {
                scales_l[ib / 2] = l_l;
            } else {
                scales_l[ib / 2] |= l_l << 4;
            }
            scales_h |= l_h << (2 * (ib % 8));
        }
        blk[2..4].copy_from_slice(&scales_h.to_le_bytes());
        blk[4..8].copy_from_slice(&scales_l);
    } else {
        blk[0..2].copy_from_slice(&f16_bytes(s.scales[0]));
        if ntry > 0 {
            let id = if s.scales[0] != 0.0 {
                1.0f32 / s.scales[0]
            } else {
                0.0
            };
            iq4_indices(id, x, &mut s.l);
        }
    }

    let q4 = &mut blk[q4_at..q4_at + sbs / 2];
    for i in 0..sbs / 32 {
        for j in 0..16 {
            q4[16 * i + j] = s.l[32 * i + j] | (s.l[32 * i + 16 + j] << 4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_rounding_matches_roundf() {
        let mut vals = vec![
            0.0f32,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.49999997,
            -0.49999997,
            8388607.5,
            -8388607.5,
            8388608.0,
            16777215.0,
            2147483520.0,
            -2147483648.0,
            1e-40,
            -1e-40,
        ];
        let mut s = 0x2545F4914F6CDD1Du64;
        for _ in 0..200_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let v = f32::from_bits(s as u32);
            if v.is_finite() && v.abs() < 2147483648.0 {
                vals.push(v);
                vals.push(v.fract().abs() + (s % 7) as f32 - 3.0);
            }
        }
        for v in vals {
            assert_eq!(c_roundf_to_int(v), v.round() as i32, "{v:e}");
            assert_eq!(c_lroundf(v), v.round() as i64, "{v:e}");
        }
        assert_eq!(c_roundf_to_int(f32::NAN), i32::MIN);
        assert_eq!(c_roundf_to_int(f32::INFINITY), i32::MIN);
        assert_eq!(c_lroundf(f32::NEG_INFINITY), i64::MIN);
        assert_eq!(c_lroundf(3.0e9), 3_000_000_000);
    }

    #[test]
    fn nearest_int_rounds_half_to_even() {
        for (v, want) in [
            (0.5f32, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (3.7, 4),
            (-3.7, -4),
        ] {
            assert_eq!(nearest_int(v), want, "{v}");
        }
    }
}
