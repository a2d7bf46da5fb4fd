//! Batched products (prompt processing) on AVX-512 VNNI: register tiles of weight rows ×
//! activation columns, so that a weight block is unpacked once for several columns and an
//! activation block loaded once for several rows.
//!
//! The tiles change the order of the work, never the operations of one output: each output keeps
//! the accumulators and the float operations of the kernel it stands in for, so it has the same
//! bits.
//! - The 32-value block types (Q8_0, Q4_0, Q5_0, IQ4_NL) follow tinyBLAS (`llamafile/sgemm.cpp`,
//!   `tinyBLAS_Q0_AVX`). llama.cpp runs it for batches of 2 or more, and for Q8_0, Q4_0 and Q5_0
//!   its order is that of `ggml_vec_dot_*_q8_0`: per block an exact integer dot in 8 lanes, as
//!   floats, multiply-added by the product of the scales, the lanes summed at the end. For
//!   IQ4_NL it differs from the vec_dot (one accumulator, not two).
//! - The integer dots are taken on the weights' unsigned codes, `u = x + OFF`, with `vpdpbusd`
//!   started from `-OFF` times the activations' sums: the same exact integers as ggml's
//!   sign-trick products, in fewer instructions.

// The tiles index rows and columns of register arrays side by side.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use crate::quant::iquants::KVALUES_IQ4NL;

/// Weight rows of one register tile.
const RM: usize = 6;
/// Activation column pairs of one register tile.
const PAIRS: usize = 2;

/// Bytes of a 32-value block of the weight type `ty`.
const fn block_bytes(ty: u32) -> usize {
    match ty {
        8 => 34,
        6 => 22,
        _ => 18,
    }
}

/// IQ4_NL's values plus 128, as unsigned codes.
static KVALUES_U: [u8; 16] = {
    let mut t = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        t[i] = (KVALUES_IQ4NL[i] as i16 + 128) as u8;
        i += 1;
    }
    t
};

/// One cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Line([u8; 64]);

impl Default for Line {
    fn default() -> Line {
        Line([0; 64])
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn hsum_float_8(x: __m256) -> f32 {
    let mut res = _mm256_extractf128_ps(x, 1);
    res = _mm_add_ps(res, _mm256_castps256_ps128(x));
    res = _mm_add_ps(res, _mm_movehl_ps(res, res));
    res = _mm_add_ss(res, _mm_movehdup_ps(res));
    _mm_cvtss_f32(res)
}

/// The f16 at `b[0..2]` as f32 (F16C).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn h(b: &[u8]) -> f32 {
    let bits = u16::from_le_bytes([b[0], b[1]]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn load128(b: &[u8]) -> __m128i {
    assert!(b.len() >= 16);
    // SAFETY: 16 bytes are readable (checked above); unaligned load.
    unsafe { _mm_loadu_si128(b.as_ptr() as *const __m128i) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn load256(b: &[u8]) -> __m256i {
    assert!(b.len() >= 32);
    // SAFETY: 32 bytes are readable (checked above); unaligned load.
    unsafe { _mm256_loadu_si256(b.as_ptr() as *const __m256i) }
}

/// A 32-value block of weight type `TY` as 32 unsigned codes `x + 128`, in the byte order of
/// ggml's AVX2 unpacking (low nibbles in bytes 0-15, high nibbles in 16-31).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn unpack_u<const TY: u32>(xb: &[u8]) -> __m256i {
    match TY {
        8 => _mm256_xor_si256(load256(&xb[2..34]), _mm256_set1_epi8(-128)),
        2 | 6 => {
            let tmp = load128(if TY == 2 { &xb[2..18] } else { &xb[6..22] });
            let bytes =
                _mm256_insertf128_si256(_mm256_castsi128_si256(tmp), _mm_srli_epi16(tmp, 4), 1);
            let nib = _mm256_and_si256(_mm256_set1_epi8(0xF), bytes);
            if TY == 2 {
                // x = nibble - 8.
                return _mm256_add_epi8(nib, _mm256_set1_epi8(120));
            }
            // bytes_from_bits_32: x = nibble + 16 * bit - 16.
            let x32 = u32::from_le_bytes([xb[2], xb[3], xb[4], xb[5]]);
            let shuf = _mm256_set_epi64x(
                0x0303030303030303,
                0x0202020202020202,
                0x0101010101010101,
                0,
            );
            let bits = _mm256_shuffle_epi8(_mm256_set1_epi32(x32 as i32), shuf);
            let bits = _mm256_or_si256(bits, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
            let set = _mm256_cmpeq_epi8(bits, _mm256_set1_epi64x(-1));
            let u = _mm256_or_si256(nib, _mm256_and_si256(set, _mm256_set1_epi8(16)));
            _mm256_add_epi8(u, _mm256_set1_epi8(112))
        }
        _ => {
            let values = load128(&KVALUES_U);
            let m4b = _mm_set1_epi8(0x0f);
            let bits = load128(&xb[2..18]);
            let lo = _mm_shuffle_epi8(values, _mm_and_si128(bits, m4b));
            let hi = _mm_shuffle_epi8(values, _mm_and_si128(_mm_srli_epi16(bits, 4), m4b));
            _mm256_insertf128_si256(_mm256_castsi128_si256(lo), hi, 1)
        }
    }
}

/// Q8_0 activation rows packed for the tiles, in pairs: per pair and block three cache lines,
/// the two rows' 32 quants, `-128` times their sums of 4 (as 16 i32: where the dots of the codes
/// `x + 128` start), and the two scales (as 16 f32, 8 of each). An odd last row is paired with
/// zeros.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn pack_acts(q: &[u8], stride: usize, ds: &[f32], n: usize, out: &mut Vec<Line>) {
    let nb = stride / 34;
    let pairs = n.div_ceil(2);
    out.clear();
    out.resize(pairs * nb * 3, Line::default());
    let off = _mm512_set1_epi8(-128);
    for (p, lines) in out.chunks_exact_mut(nb * 3).enumerate() {
        for (l, ln) in lines.chunks_exact_mut(3).enumerate() {
            let half = |t: usize| {
                if t < n {
                    (load256(&q[t * stride + l * 34 + 2..]), ds[t * nb + l])
                } else {
                    (_mm256_setzero_si256(), 0.0)
                }
            };
            let (y0, d0) = half(2 * p);
            let (y1, d1) = half(2 * p + 1);
            let y = _mm512_inserti64x4(_mm512_castsi256_si512(y0), y1, 1);
            let neg = _mm512_sub_epi32(
                _mm512_setzero_si512(),
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, y),
            );
            let d = _mm512_castpd_ps(_mm512_insertf64x4(
                _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_set1_ps(d0))),
                _mm256_castps_pd(_mm256_set1_ps(d1)),
                1,
            ));
            // SAFETY: each line is 64 bytes, aligned to 64.
            unsafe {
                _mm512_store_si512(ln[0].0.as_mut_ptr() as *mut __m512i, y);
                _mm512_store_si512(ln[1].0.as_mut_ptr() as *mut __m512i, neg);
                _mm512_store_ps(ln[2].0.as_mut_ptr() as *mut f32, d);
            }
        }
    }
}

/// One tile: `R` weight rows, packed block by block (`wx`: per block the rows' 32 codes; `wd`:
/// per block the rows' scales) by `P` pairs of packed activation rows (`acts`, `nb` blocks per
/// pair). Each 512-bit accumulator holds the 8 lanes of two outputs (one weight row, the two rows
/// of a pair).
///
/// # Safety
/// `wx` holds `nb * R` codes, `wd` `nb * R` scales and `acts` `P * nb * 3` lines.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile<const R: usize, const P: usize>(
    wx: *const [u8; 32],
    wd: *const f32,
    acts: *const Line,
    nb: usize,
) -> [[[f32; 2]; P]; R] {
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    for l in 0..nb {
        let mut xu = [_mm512_setzero_si512(); R];
        for (i, x) in xu.iter_mut().enumerate() {
            // SAFETY: block `l` of row `i` is within `wx` (the caller's guarantee).
            *x = unsafe {
                _mm512_broadcast_i64x4(_mm256_loadu_si256(wx.add(l * R + i) as *const __m256i))
            };
        }
        for j in 0..P {
            // SAFETY: pair `j`, block `l` is within `acts`; lines are aligned.
            let (y, neg, db) = unsafe {
                let ln = acts.add((j * nb + l) * 3);
                (
                    _mm512_load_si512(ln as *const __m512i),
                    _mm512_load_si512(ln.add(1) as *const __m512i),
                    _mm512_load_ps(ln.add(2) as *const f32),
                )
            };
            for i in 0..R {
                let s = _mm512_dpbusd_epi32(neg, xu[i], y);
                // SAFETY: scale `l` of row `i` is within `wd`.
                let d = _mm512_mul_ps(db, _mm512_set1_ps(unsafe { *wd.add(l * R + i) }));
                acc[i][j] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc[i][j]);
            }
        }
    }
    let mut out = [[[0f32; 2]; P]; R];
    for i in 0..R {
        for j in 0..P {
            let a = acc[i][j];
            let lo = _mm512_castps512_ps256(a);
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
            out[i][j] = [hsum_float_8(lo), hsum_float_8(hi)];
        }
    }
    out
}

thread_local! {
    /// The weight rows of a tile, unpacked: codes and scales.
    static PACKED_W: std::cell::RefCell<(Vec<[u8; 32]>, Vec<f32>)> = Default::default();
}

/// `dst[r * n + t] = w[r] · y[t]` for the weight rows in `w` (`row_bytes` each, type id `ty`:
/// Q8_0, Q4_0, Q5_0 or IQ4_NL, not repacked) and `n` Q8_0 activation rows packed by
/// [`pack_acts`], in tinyBLAS's order. False for other types.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn b32_rows(
    ty: u32,
    w: &[u8],
    row_bytes: usize,
    acts: &[Line],
    n: usize,
    dst: &mut [f32],
) -> bool {
    match ty {
        8 => b32_rows_ty::<8>(w, row_bytes, acts, n, dst),
        2 => b32_rows_ty::<2>(w, row_bytes, acts, n, dst),
        6 => b32_rows_ty::<6>(w, row_bytes, acts, n, dst),
        20 => b32_rows_ty::<20>(w, row_bytes, acts, n, dst),
        _ => return false,
    }
    true
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn b32_rows_ty<const TY: u32>(
    w: &[u8],
    row_bytes: usize,
    acts: &[Line],
    n: usize,
    dst: &mut [f32],
) {
    let bb = block_bytes(TY);
    let nb = row_bytes / bb;
    let rows = dst.len() / n;
    let pairs = n.div_ceil(2);
    assert_eq!(row_bytes, nb * bb, "whole blocks");
    assert_eq!(
        acts.len(),
        pairs * nb * 3,
        "activations packed for these rows"
    );
    assert!(w.len() >= rows * row_bytes && dst.len() == rows * n);
    PACKED_W.with(|pw| {
        let (wx, wd) = &mut *pw.borrow_mut();
        let mut r = 0;
        while r < rows {
            let rt = match rows - r {
                left if left >= RM => RM,
                left if left >= 2 => 2,
                _ => 1,
            };
            // The rows of the tile unpacked once for all columns.
            wx.clear();
            wd.clear();
            for l in 0..nb {
                for i in 0..rt {
                    let xb = &w[(r + i) * row_bytes + l * bb..(r + i) * row_bytes + (l + 1) * bb];
                    let mut codes = [0u8; 32];
                    // SAFETY: 32 bytes, unaligned store.
                    unsafe {
                        _mm256_storeu_si256(codes.as_mut_ptr() as *mut __m256i, unpack_u::<TY>(xb))
                    };
                    wx.push(codes);
                    wd.push(h(xb));
                }
            }
            let mut p = 0;
            while p < pairs {
                let pt = (pairs - p).min(PAIRS);
                let a = &acts[p * nb * 3..(p + pt) * nb * 3];
                macro_rules! put {
                    ($R:literal, $P:literal) => {{
                        // SAFETY: `wx` and `wd` hold `nb * $R` entries, `a` `$P * nb * 3` lines.
                        let o = unsafe { tile::<$R, $P>(wx.as_ptr(), wd.as_ptr(), a.as_ptr(), nb) };
                        for (i, oi) in o.iter().enumerate() {
                            for (j, pr) in oi.iter().enumerate() {
                                for (k, v) in pr.iter().enumerate() {
                                    let t = 2 * (p + j) + k;
                                    if t < n {
                                        dst[(r + i) * n + t] = *v;
                                    }
                                }
                            }
                        }
                    }};
                }
                match (rt, pt) {
                    (RM, PAIRS) => put!(6, 2),
                    (RM, _) => put!(6, 1),
                    (2, PAIRS) => put!(2, 2),
                    (2, _) => put!(2, 1),
                    (_, PAIRS) => put!(1, 2),
                    _ => put!(1, 1),
                }
                p += pt;
            }
            r += rt;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::dot::tests::case;
    use crate::exec::x86::{detect, Level};

    /// Every output of the tiles has the bits of the one-row, one-column kernel of the same order
    /// (`b32` for Q8_0, Q4_0 and Q5_0; for IQ4_NL `b32` too, which is tinyBLAS's order), for
    /// row and column counts that leave every tile shape.
    #[test]
    fn tiles_equal_single_products() {
        if detect() != Some(Level::Avx512Vnni) {
            return eprintln!("no AVX-512 VNNI on this CPU: nothing to compare");
        }
        for name in ["q8_0", "q4_0", "q5_0", "iq4_nl"] {
            for (cols, rows, n) in [(64, 9, 7), (640, 6, 4), (96, 4, 9), (32, 3, 2)] {
                let (wq, acts, ty) = case(name, cols, rows, n, (cols + n) as u64);
                let rb = wq.len() / rows;
                let (q, stride, _) = acts.q_rows().unwrap();
                let ds = crate::exec::dot::tests::act_scales(&acts);
                let mut got = vec![0f32; rows * n];
                let mut packed = Vec::new();
                // SAFETY: the CPU has AVX-512 VNNI (checked above).
                assert!(unsafe {
                    pack_acts(q, stride, ds, n, &mut packed);
                    b32_rows(ty.id, &wq, rb, &packed, n, &mut got)
                });
                for r in 0..rows {
                    let w = &wq[r * rb..(r + 1) * rb];
                    for t in 0..n {
                        let y = &q[t * stride..(t + 1) * stride];
                        let nb = stride / 34;
                        // SAFETY: as above.
                        let want = unsafe {
                            match ty.id {
                                8 => crate::exec::x86::vnni::b32::<1, 8>(w, [y], [&ds[t * nb..]]),
                                2 => crate::exec::x86::vnni::b32::<1, 2>(w, [y], [&ds[t * nb..]]),
                                6 => crate::exec::x86::vnni::b32::<1, 6>(w, [y], [&ds[t * nb..]]),
                                _ => crate::exec::x86::vnni::b32::<1, 20>(w, [y], [&ds[t * nb..]]),
                            }
                        };
                        assert_eq!(
                            got[r * n + t].to_bits(),
                            want[0].to_bits(),
                            "{name} cols {cols} row {r} col {t}"
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod speed {
    use super::*;
    use crate::exec::dot::tests::case;

    /// Not a test: `cargo test --release --lib x86_gemm::speed -- --ignored --nocapture` prints
    /// cycles' worth of nanoseconds per output block for tuning the tiles.
    #[test]
    #[ignore]
    fn tile_speed() {
        for name in ["q5_0", "q8_0"] {
            let (rows, cols, n) = (256, 640, 128);
            let (wq, acts, ty) = case(name, cols, rows, n, 5);
            let rb = wq.len() / rows;
            let (q, stride, _) = acts.q_rows().unwrap();
            let ds = crate::exec::dot::tests::act_scales(&acts);
            let mut out = vec![0f32; rows * n];
            let reps = 20;
            let mut packed = Vec::new();
            // SAFETY: only run on VNNI machines by hand.
            unsafe { pack_acts(q, stride, ds, n, &mut packed) };
            let t = std::time::Instant::now();
            for _ in 0..reps {
                // SAFETY: as above.
                unsafe { b32_rows(ty.id, &wq, rb, &packed, n, &mut out) };
            }
            let ns = t.elapsed().as_nanos() as f64 / (reps * rows * n * cols / 32) as f64;
            eprintln!("{name}: {ns:.3} ns per block product");
        }
    }
}
