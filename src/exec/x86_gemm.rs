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

use super::x86::vnni::{
    bytes_from_bits_32, bytes_from_nibbles_32, h as h_at, hsum_float_8, load128, load256,
};
use super::x86::{block_bytes, raw};
use crate::gguf::TypeId;
use crate::quant::iquants::KVALUES_IQ4NL;
use crate::quant::kquants::get_scale_min_k4;

/// Weight rows of one register tile.
const RM: usize = 6;
/// Activation column pairs of one register tile.
const PAIRS: usize = 2;

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

/// The two outputs of a 512-bit accumulator: `hsum_float_8` of each 256-bit half.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn hsum_halves(a: __m512) -> [f32; 2] {
    let lo = _mm512_castps512_ps256(a);
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
    [hsum_float_8(lo), hsum_float_8(hi)]
}

/// A 32-value block of weight type `TY` as 32 unsigned codes `x + 128`, in the byte order of
/// ggml's AVX2 unpacking (low nibbles in bytes 0-15, high nibbles in 16-31).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn unpack_u<const TY: u32>(xb: &[u8]) -> __m256i {
    match TY {
        raw::Q8_0 => _mm256_xor_si256(load256(&xb[2..34]), _mm256_set1_epi8(-128)),
        raw::Q4_0 | raw::Q5_0 => {
            let nib = bytes_from_nibbles_32(if TY == raw::Q4_0 {
                &xb[2..18]
            } else {
                &xb[6..22]
            });
            if TY == raw::Q4_0 {
                // x = nibble - 8.
                return _mm256_add_epi8(nib, _mm256_set1_epi8(120));
            }
            // x = nibble + 16 * bit - 16.
            let set = bytes_from_bits_32(&xb[2..6]);
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

/// Activations quantized to Q8_0 as ggml-cpu's x86 code does (`quantize_q8_0_x86` in `dot.rs`,
/// its scalar reference): `127 / max` as the multiplier, rounding half to even; 32 values (one
/// block) per 512-bit pair, whole blocks of `x` into `y`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn quantize_q8_0(x: &[f32], y: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(32).zip(y.chunks_exact_mut(34)) {
        // SAFETY: 32 floats; unaligned loads.
        let (a, b) = unsafe {
            (
                _mm512_loadu_ps(xb.as_ptr()),
                _mm512_loadu_ps(xb[16..].as_ptr()),
            )
        };
        // max(|v|, m): a NaN value never becomes the maximum (as `f32::max`).
        let m = _mm512_max_ps(
            _mm512_abs_ps(b),
            _mm512_max_ps(_mm512_abs_ps(a), _mm512_setzero_ps()),
        );
        let max = _mm512_reduce_max_ps(m);
        let d = max / 127.0;
        yb[..2].copy_from_slice(&half::f16::from_f32(d).to_bits().to_le_bytes());
        let id = _mm512_set1_ps(if max != 0.0 { 127.0 / max } else { 0.0 });
        let q = |v: __m512| {
            _mm512_cvtepi32_epi8(_mm512_cvt_roundps_epi32::<
                { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
            >(_mm512_mul_ps(v, id)))
        };
        // SAFETY: 32 bytes at 2..34 of the block; unaligned stores.
        unsafe {
            _mm_storeu_si128(yb[2..18].as_mut_ptr() as *mut __m128i, q(a));
            _mm_storeu_si128(yb[18..34].as_mut_ptr() as *mut __m128i, q(b));
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
            out[i][j] = hsum_halves(acc[i][j]);
        }
    }
    out
}

thread_local! {
    /// The weight rows of a tile, unpacked: codes and scales.
    static PACKED_W: std::cell::RefCell<(Vec<[u8; 32]>, Vec<f32>)> = Default::default();
}

/// `dst[t * rows + r] = w[r] · y[t]` (token-major) for the weight rows in `w` (`row_bytes` each, type id `ty`:
/// Q8_0, Q4_0, Q5_0 or IQ4_NL, not repacked) and `n` Q8_0 activation rows packed by
/// [`pack_acts`], in tinyBLAS's order. False for other types.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn b32_rows(
    ty: TypeId,
    w: &[u8],
    row_bytes: usize,
    acts: &[Line],
    n: usize,
    dst: &mut [f32],
) -> bool {
    match ty {
        TypeId::Q8_0 => b32_rows_ty::<{ raw::Q8_0 }>(w, row_bytes, acts, n, dst),
        TypeId::Q4_0 => b32_rows_ty::<{ raw::Q4_0 }>(w, row_bytes, acts, n, dst),
        TypeId::Q5_0 => b32_rows_ty::<{ raw::Q5_0 }>(w, row_bytes, acts, n, dst),
        TypeId::IQ4_NL => b32_rows_ty::<{ raw::IQ4_NL }>(w, row_bytes, acts, n, dst),
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
            wx.resize(nb * rt, [0; 32]);
            wd.resize(nb * rt, 0.0);
            for i in 0..rt {
                let row = &w[(r + i) * row_bytes..(r + i + 1) * row_bytes];
                for (l, xb) in row.chunks_exact(bb).enumerate() {
                    // SAFETY: an entry is 32 bytes; unaligned store.
                    unsafe {
                        _mm256_storeu_si256(
                            wx[l * rt + i].as_mut_ptr() as *mut __m256i,
                            unpack_u::<TY>(xb),
                        )
                    };
                    wd[l * rt + i] = h_at(xb, 0);
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
                        // Token by token: the tile's rows are consecutive in `dst`.
                        for j in 0..$P {
                            for k in 0..2 {
                                let t = 2 * (p + j) + k;
                                if t >= n {
                                    break;
                                }
                                let d: &mut [f32; $R] = (&mut dst[t * rows + r..t * rows + r + $R])
                                    .try_into()
                                    .expect("the tile's rows");
                                for i in 0..$R {
                                    d[i] = o[i][j][k];
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

/// Weight rows of a Q4_K tile: the lanes of a 512-bit vector.
const K_ROWS: usize = 16;
/// Tokens of a Q4_K tile (one of llama.cpp's GEMM groups of 4).
const K_TOKENS: usize = 4;

/// 16 Q4_K rows unpacked with the rows in the lanes. Per super-block `b`: `codes`, for each
/// 64-value group `j`, half (low nibbles: values 0-31 of the group; high: 32-63) and 4 values
/// `k`, a line holding those 4 codes of each row; `scales` (per sub-block, 16 f32), `mins` (per
/// group, the two sub-blocks' mins as i16 pairs), `d` and `dmin` (16 f32 each).
#[derive(Default)]
struct K4Rows {
    codes: Vec<Line>,
    scales: Vec<Line>,
    mins: Vec<Line>,
    d: Vec<Line>,
}

impl K4Rows {
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn fill(&mut self, w: &[u8], row_bytes: usize) {
        let nsb = row_bytes / 144;
        assert!(w.len() >= K_ROWS * row_bytes);
        self.codes.resize(nsb * 64, Line::default());
        self.scales.resize(nsb * 8, Line::default());
        self.mins.resize(nsb * 4, Line::default());
        self.d.resize(nsb * 2, Line::default());
        // Byte offsets of the 16 rows, for gathers.
        let rows = _mm512_mullo_epi32(
            _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
            _mm512_set1_epi32(row_bytes as i32),
        );
        let m4 = _mm512_set1_epi32(0x0F0F_0F0F);
        let store = |l: &mut Line, v: __m512i| {
            // SAFETY: a line is 64 aligned bytes.
            unsafe { _mm512_store_si512(l.0.as_mut_ptr() as *mut __m512i, v) }
        };
        for b in 0..nsb {
            for j in 0..4 {
                for k in 0..8 {
                    let at = b * 144 + 16 + 32 * j + 4 * k;
                    // SAFETY: bytes `at..at + 4` of each of the 16 rows are within `w`
                    // (asserted above); the offsets are below 2^31 for any row we map.
                    let g = unsafe {
                        _mm512_i32gather_epi32::<1>(rows, w.as_ptr().add(at) as *const i32)
                    };
                    store(
                        &mut self.codes[64 * b + 16 * j + k],
                        _mm512_and_si512(g, m4),
                    );
                    store(
                        &mut self.codes[64 * b + 16 * j + 8 + k],
                        _mm512_and_si512(_mm512_srli_epi32(g, 4), m4),
                    );
                }
            }
        }
        for r in 0..K_ROWS {
            let row = &w[r * row_bytes..(r + 1) * row_bytes];
            for (b, xb) in row.chunks_exact(144).enumerate() {
                let lane = |l: &mut Line, v: [u8; 4]| l.0[4 * r..4 * r + 4].copy_from_slice(&v);
                lane(&mut self.d[2 * b], h_at(xb, 0).to_le_bytes());
                lane(&mut self.d[2 * b + 1], h_at(xb, 2).to_le_bytes());
                let mut m = [0u8; 8];
                for sb in 0..8 {
                    let (sc, mn) = get_scale_min_k4(sb, &xb[4..16]);
                    lane(&mut self.scales[8 * b + sb], (sc as f32).to_le_bytes());
                    m[sb] = mn;
                }
                for j in 0..4 {
                    let pair = (m[2 * j] as u32) | ((m[2 * j + 1] as u32) << 16);
                    lane(&mut self.mins[4 * b + j], pair.to_le_bytes());
                }
            }
        }
    }
}

/// One Q4_K tile: 16 rows (unpacked in `k`) by `T` Q8_K activation rows (`stride` apart from
/// `q`; `bp`: per row, super-block and group the two block-sum pairs as an i16 pair), in the
/// order of llama.cpp's repacked GEMM: per 64 values the exact integer sums, multiply-added by
/// the products of the scales; the mins' total subtracted last.
///
/// # Safety
/// `k` is filled for rows of `nsb` super-blocks; `T` rows of `nsb` super-blocks are readable
/// from `q`, and `T * nsb * 4` pairs from `bp`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn k4_tile<const T: usize>(
    k: &K4Rows,
    q: *const u8,
    stride: usize,
    bp: *const u32,
    nsb: usize,
) -> [[f32; K_ROWS]; T] {
    let ld = |l: &Line| {
        // SAFETY: a line is 64 aligned bytes.
        unsafe { _mm512_load_ps(l.0.as_ptr() as *const f32) }
    };
    let ldi = |l: &Line| {
        // SAFETY: as above.
        unsafe { _mm512_load_si512(l.0.as_ptr() as *const __m512i) }
    };
    let mut acc = [_mm512_setzero_ps(); T];
    let mut acc_m = [_mm512_setzero_ps(); T];
    for b in 0..nsb {
        let xd = ld(&k.d[2 * b]);
        let xdmin = ld(&k.d[2 * b + 1]);
        for j in 0..4 {
            let mut wv = [_mm512_setzero_si512(); 16];
            for (c, v) in wv.iter_mut().enumerate() {
                *v = ldi(&k.codes[64 * b + 16 * j + c]);
            }
            let s_lo = ld(&k.scales[8 * b + 2 * j]);
            let s_hi = ld(&k.scales[8 * b + 2 * j + 1]);
            let mins = ldi(&k.mins[4 * b + j]);
            for t in 0..T {
                // SAFETY: super-block `b` of activation row `t` is readable.
                let yb = unsafe { q.add(t * stride + b * 292) };
                // SAFETY: as above: the f32 scale at the start of the block.
                let yd = _mm512_set1_ps(unsafe { (yb as *const f32).read_unaligned() });
                let mut a_lo = _mm512_setzero_si512();
                let mut a_hi = _mm512_setzero_si512();
                for c in 0..8 {
                    // SAFETY: bytes 4 + 64j + 4c (+ 32) of the block, 4 each, are readable.
                    let (y_lo, y_hi) = unsafe {
                        (
                            _mm512_set1_epi32(
                                (yb.add(4 + 64 * j + 4 * c) as *const i32).read_unaligned(),
                            ),
                            _mm512_set1_epi32(
                                (yb.add(36 + 64 * j + 4 * c) as *const i32).read_unaligned(),
                            ),
                        )
                    };
                    a_lo = _mm512_dpbusd_epi32(a_lo, wv[c], y_lo);
                    a_hi = _mm512_dpbusd_epi32(a_hi, wv[8 + c], y_hi);
                }
                // Scaled sums below 2^24: exact as floats, so this is the integer sum.
                let isum = _mm512_fmadd_ps(
                    _mm512_cvtepi32_ps(a_hi),
                    s_hi,
                    _mm512_mul_ps(_mm512_cvtepi32_ps(a_lo), s_lo),
                );
                // SAFETY: pair (t, b, j) is within `bp`.
                let pair = unsafe { *bp.add((t * nsb + b) * 4 + j) };
                let imin = _mm512_madd_epi16(mins, _mm512_set1_epi32(pair as i32));
                acc[t] = _mm512_fmadd_ps(isum, _mm512_mul_ps(xd, yd), acc[t]);
                acc_m[t] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(imin), _mm512_mul_ps(xdmin, yd), acc_m[t]);
            }
        }
    }
    let mut out = [[0f32; K_ROWS]; T];
    for t in 0..T {
        // SAFETY: 16 f32, unaligned store.
        unsafe {
            _mm512_storeu_ps(out[t].as_mut_ptr(), _mm512_sub_ps(acc[t], acc_m[t]));
        }
    }
    out
}

thread_local! {
    static K4: std::cell::RefCell<(K4Rows, Vec<u32>)> = Default::default();
}

/// `dst[t * rows + r] = w[r] · y[t]` (token-major) for Q4_K rows that llama.cpp repacks (`row_bytes` each) and
/// `n` Q8_K activation rows (`stride` bytes each): the tokens of whole groups of 4 by the tiles
/// in its GEMM order, the rest (and rows short of a tile) by the one-row kernel, which has the
/// same orders.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn q4k_rows(
    w: &[u8],
    row_bytes: usize,
    q: &[u8],
    stride: usize,
    n: usize,
    dst: &mut [f32],
) {
    let nsb = row_bytes / 144;
    let rows = dst.len() / n;
    assert!(
        row_bytes == nsb * 144 && stride == nsb * 292,
        "whole super-blocks"
    );
    assert!(w.len() >= rows * row_bytes && q.len() >= n * stride && dst.len() == rows * n);
    let gemm_n = n / 4 * 4;
    K4.with(|cell| {
        let (k, bp) = &mut *cell.borrow_mut();
        // Block-sum pairs of every token, super-block and group.
        bp.clear();
        for t in 0..n {
            for b in 0..nsb {
                let yb = &q[t * stride + b * 292..t * stride + (b + 1) * 292];
                let bs = |i: usize| i16::from_le_bytes([yb[260 + 2 * i], yb[261 + 2 * i]]) as i32;
                for j in 0..4 {
                    let lo = (bs(4 * j) + bs(4 * j + 1)) as u16 as u32;
                    let hi = (bs(4 * j + 2) + bs(4 * j + 3)) as u16 as u32;
                    bp.push(lo | (hi << 16));
                }
            }
        }
        let mut r = 0;
        while r + K_ROWS <= rows {
            k.fill(&w[r * row_bytes..(r + K_ROWS) * row_bytes], row_bytes);
            let mut t = 0;
            while t < gemm_n {
                // SAFETY: `k` holds rows of `nsb` super-blocks; tokens `t..t + 4` and their
                // pairs are within `q` and `bp` (asserted and built above).
                let o = unsafe {
                    k4_tile::<K_TOKENS>(
                        k,
                        q.as_ptr().add(t * stride),
                        stride,
                        bp.as_ptr().add(t * nsb * 4),
                        nsb,
                    )
                };
                for (j, ot) in o.iter().enumerate() {
                    dst[(t + j) * rows + r..(t + j) * rows + r + K_ROWS].copy_from_slice(ot);
                }
                t += K_TOKENS;
            }
            for i in 0..K_ROWS {
                let wr = &w[(r + i) * row_bytes..(r + i + 1) * row_bytes];
                one_row_k4(wr, q, stride, gemm_n, n, r + i, rows, dst);
            }
            r += K_ROWS;
        }
        while r < rows {
            let wr = &w[r * row_bytes..(r + 1) * row_bytes];
            one_row_k4(wr, q, stride, 0, n, r, rows, dst);
            r += 1;
        }
    });
}

/// Tokens `from..n` of repacked Q4_K row `r` (of `rows`, token-major in `dst`) by the one-row
/// kernel: groups of 4 in the GEMM order up to `n / 4 * 4`, the rest in the GEMV order.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn one_row_k4(
    w: &[u8],
    q: &[u8],
    stride: usize,
    from: usize,
    n: usize,
    r: usize,
    rows: usize,
    dst: &mut [f32],
) {
    let row = |t: usize| &q[t * stride..(t + 1) * stride];
    let mut t = from;
    while t + 4 <= n {
        let o =
            super::x86::vnni::q4_k_r8::<4, true>(w, [row(t), row(t + 1), row(t + 2), row(t + 3)]);
        for (j, v) in o.iter().enumerate() {
            dst[(t + j) * rows + r] = *v;
        }
        t += 4;
    }
    while t < n {
        dst[t * rows + r] = super::x86::vnni::q4_k_r8::<1, false>(w, [row(t)])[0];
        t += 1;
    }
}

/// `quantize_row_q8_K_ref` for whole super-blocks (`x`: a multiple of 256 values, `y`: 292 bytes
/// per super-block), on 16 values at a time: the same bytes as the scalar port (NaNs never
/// become the maximum, ties for it go to the first, rounding half to even).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn quantize_q8_k(x: &[f32], y: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(256).zip(y.chunks_exact_mut(292)) {
        let ld = |c: usize| {
            let v = &xb[16 * c..16 * c + 16];
            // SAFETY: 16 floats; unaligned load.
            unsafe { _mm512_loadu_ps(v.as_ptr()) }
        };
        let mut m = _mm512_setzero_ps();
        for c in 0..16 {
            // max(|v|, m) keeps m where |v| is NaN.
            m = _mm512_max_ps(_mm512_abs_ps(ld(c)), m);
        }
        let amax = _mm512_reduce_max_ps(m);
        if amax == 0.0 {
            yb.fill(0);
            continue;
        }
        let max = *xb
            .iter()
            .find(|v| v.abs() == amax)
            .expect("the maximum is one of them");
        let iscale = -127.0f32 / max;
        let sc = _mm512_set1_ps(iscale);
        for c in 0..16 {
            let q = _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm512_mul_ps(sc, ld(c)),
            );
            let q8 = _mm512_cvtepi32_epi8(_mm512_min_epi32(q, _mm512_set1_epi32(127)));
            let sum = _mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(q8));
            // SAFETY: 16 bytes at 4 + 16c within the 292-byte block; unaligned store.
            unsafe {
                _mm_storeu_si128(yb[4 + 16 * c..20 + 16 * c].as_mut_ptr() as *mut __m128i, q8)
            };
            yb[260 + 2 * c..262 + 2 * c].copy_from_slice(&(sum as i16).to_le_bytes());
        }
        yb[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
    }
}

/// Q8_K activation rows packed in pairs for the Q6_K tiles: per pair and super-block 10 lines,
/// the two rows' 8 chunks of 32 quants, their 16 block sums, and their scales (8 f32 each). An
/// odd last row is paired with zeros.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn pack_acts_k(q: &[u8], stride: usize, n: usize, out: &mut Vec<Line>) {
    let nsb = stride / 292;
    let pairs = n.div_ceil(2);
    out.clear();
    out.resize(pairs * nsb * 10, Line::default());
    for (p, lines) in out.chunks_exact_mut(nsb * 10).enumerate() {
        for (b, ln) in lines.chunks_exact_mut(10).enumerate() {
            for half in 0..2 {
                let t = 2 * p + half;
                if t >= n {
                    continue;
                }
                let yb = &q[t * stride + b * 292..t * stride + (b + 1) * 292];
                for c in 0..8 {
                    ln[c].0[32 * half..32 * half + 32]
                        .copy_from_slice(&yb[4 + 32 * c..36 + 32 * c]);
                }
                ln[8].0[32 * half..32 * half + 32].copy_from_slice(&yb[260..292]);
                for k in 0..8 {
                    ln[9].0[32 * half + 4 * k..32 * half + 4 * k + 4].copy_from_slice(&yb[0..4]);
                }
            }
        }
    }
}

/// One Q6_K super-block unpacked as `ggml_vec_dot_q6_K_q8_K` (AVX2) unpacks it: the 8 vectors of
/// codes (0-63), the 8 vectors of 16-bit scales for them, and the 16 scales; then the scale.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Q6Block {
    v: [[u8; 32]; 17],
    d: f32,
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn unpack_q6(xb: &[u8], out: &mut Q6Block) {
    let (q, sc) = super::x86::vnni::q6_unpack(xb);
    let mut v = [_mm256_setzero_si256(); 17];
    v[..8].copy_from_slice(&q);
    v[8..16].copy_from_slice(&sc);
    v[16] = _mm256_cvtepi8_epi16(load128(&xb[192..208]));
    for (o, x) in out.v.iter_mut().zip(v) {
        // SAFETY: 32 bytes; unaligned store.
        unsafe { _mm256_storeu_si256(o.as_mut_ptr() as *mut __m256i, x) };
    }
    out.d = h_at(xb, 208);
}

/// One Q6_K row (unpacked, `nsb` super-blocks) by `P` pairs of packed activation rows, each
/// output with the operations of `ggml_vec_dot_q6_K_q8_K`, two outputs per 512-bit vector.
///
/// # Safety
/// `acts` holds `P * nsb * 10` lines.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn q6_tile<const P: usize>(w: &[Q6Block], acts: *const Line, nsb: usize) -> [[f32; 2]; P] {
    let mut acc = [_mm512_setzero_ps(); P];
    for (b, blk) in w.iter().enumerate().take(nsb) {
        let bc = |i: usize| {
            // SAFETY: 32 bytes of the block; unaligned load.
            _mm512_broadcast_i64x4(unsafe {
                _mm256_loadu_si256(blk.v[i].as_ptr() as *const __m256i)
            })
        };
        let q: [__m512i; 8] = std::array::from_fn(bc);
        let sc: [__m512i; 8] = std::array::from_fn(|k| bc(8 + k));
        let scales_16 = bc(16);
        let xd = _mm512_set1_ps(blk.d);
        for j in 0..P {
            // SAFETY: pair `j`, super-block `b` is within `acts` (the caller's guarantee).
            let ln = unsafe { acts.add((j * nsb + b) * 10) };
            // SAFETY: as above; lines are aligned.
            let y = |c: usize| unsafe { _mm512_load_si512(ln.add(c) as *const __m512i) };
            let q8sums = y(8);
            // SAFETY: as above.
            let yd = unsafe { _mm512_load_ps(ln.add(9) as *const f32) };
            let q8sclsub = _mm512_slli_epi32(_mm512_madd_epi16(q8sums, scales_16), 5);
            let mut sumi = _mm512_setzero_si512();
            for h2 in 0..2 {
                let p: [__m512i; 4] = std::array::from_fn(|k| {
                    let c = 4 * h2 + k;
                    _mm512_madd_epi16(sc[c], _mm512_maddubs_epi16(q[c], y(c)))
                });
                sumi = _mm512_add_epi32(sumi, _mm512_add_epi32(p[0], p[1]));
                sumi = _mm512_add_epi32(sumi, _mm512_add_epi32(p[2], p[3]));
            }
            sumi = _mm512_sub_epi32(sumi, q8sclsub);
            acc[j] = _mm512_fmadd_ps(_mm512_mul_ps(yd, xd), _mm512_cvtepi32_ps(sumi), acc[j]);
        }
    }
    let mut out = [[0f32; 2]; P];
    for j in 0..P {
        out[j] = hsum_halves(acc[j]);
    }
    out
}

thread_local! {
    static Q6_ROW: std::cell::RefCell<Vec<Q6Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `dst[t * rows + r] = w[r] · y[t]` (token-major) for Q6_K rows (`row_bytes` each) and `n` Q8_K activation rows
/// packed by [`pack_acts_k`], in the order of `ggml_vec_dot_q6_K_q8_K`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn q6k_rows(w: &[u8], row_bytes: usize, acts: &[Line], n: usize, dst: &mut [f32]) {
    const P6: usize = 4;
    let nsb = row_bytes / 210;
    let rows = dst.len() / n;
    let pairs = n.div_ceil(2);
    assert_eq!(row_bytes, nsb * 210, "whole super-blocks");
    assert_eq!(
        acts.len(),
        pairs * nsb * 10,
        "activations packed for these rows"
    );
    assert!(w.len() >= rows * row_bytes && dst.len() == rows * n);
    Q6_ROW.with(|cell| {
        let blocks = &mut *cell.borrow_mut();
        blocks.resize(
            nsb,
            Q6Block {
                v: [[0; 32]; 17],
                d: 0.0,
            },
        );
        for r in 0..rows {
            let row = &w[r * row_bytes..(r + 1) * row_bytes];
            for (xb, blk) in row.chunks_exact(210).zip(blocks.iter_mut()) {
                unpack_q6(xb, blk);
            }
            let mut p = 0;
            while p < pairs {
                let pt = (pairs - p).min(P6);
                let a = &acts[p * nsb * 10..(p + pt) * nsb * 10];
                macro_rules! put {
                    ($P:literal) => {{
                        // SAFETY: `a` holds `$P * nsb * 10` lines.
                        let o = unsafe { q6_tile::<$P>(blocks, a.as_ptr(), nsb) };
                        for (j, pr) in o.iter().enumerate() {
                            for (k, v) in pr.iter().enumerate() {
                                let t = 2 * (p + j) + k;
                                if t < n {
                                    dst[t * rows + r] = *v;
                                }
                            }
                        }
                    }};
                }
                match pt {
                    4 => put!(4),
                    3 => put!(3),
                    2 => put!(2),
                    _ => put!(1),
                }
                p += pt;
            }
        }
    });
}

#[cfg(test)]
mod tests;
