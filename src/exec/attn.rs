//! Attention over the f16 KV cache, as ggml-cpu's flash attention computes it (llama.cpp's default
//! on CPUs): `ggml_compute_forward_flash_attn_ext_tiled` for batches of 64 tokens or more (one task
//! per head and tile of 64 queries, keys in tiles of 64 cells, f32 accumulators), and
//! `ggml_compute_forward_flash_attn_ext_f16_one_chunk` otherwise (one task per token and head, Q
//! rounded to f16, V accumulated in an f16 vector). Each body is written once and compiled twice:
//! for any CPU, and on x86_64 with AVX2, FMA and F16C (the same operations in the same order, fused
//! multiply-adds being exact either way, so both give the same bits; the second runs vectorised).

use std::cell::RefCell;

use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

/// `GGML_FA_TILE_Q` and `GGML_FA_TILE_KV` (ggml-cpu/common.h).
pub const FA_TILE_Q: usize = 64;
const FA_TILE_KV: usize = 64;

/// One layer's attention problem.
pub struct Attn<'c> {
    /// `n` rows of `n_head * hd` query values (RoPE'd and scaled).
    pub q: &'c [f32],
    /// The layer's cache: rows of `n_head_kv * hd` values, one per position.
    pub k: &'c [f16],
    pub v: &'c [f16],
    pub n: usize,
    /// Position of the first query.
    pub p0: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub hd: usize,
    /// Sliding window (0: none): query at `pos` sees keys `pos + 1 - swa ..= pos`.
    pub swa: usize,
    pub scale: f32,
    /// Logit soft-capping (0: none): a score is `softcap * tanh(q·k * scale)`.
    pub softcap: f32,
}

impl Attn<'_> {
    fn lo(&self, pos: usize) -> usize {
        if self.swa > 0 {
            (pos + 1).saturating_sub(self.swa)
        } else {
            0
        }
    }

    fn krow(&self, j: usize, kvh: usize) -> &[f16] {
        let w = self.n_head_kv * self.hd;
        &self.k[j * w + kvh * self.hd..j * w + (kvh + 1) * self.hd]
    }

    fn vrow(&self, j: usize, kvh: usize) -> &[f16] {
        let w = self.n_head_kv * self.hd;
        &self.v[j * w + kvh * self.hd..j * w + (kvh + 1) * self.hd]
    }
}

/// Scratch of one task, kept per thread.
#[derive(Default)]
struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    d: Vec<f32>,
    h: Vec<f16>,
    blocks: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn use_x86() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::isa::cpu().at_least(crate::isa::Level::Avx2)
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Attention of every query into `out` (`n` rows of `n_head * hd`), on rayon's pool.
pub fn attention(a: &Attn, out: &mut [f32]) {
    let (hd, nh) = (a.hd, a.n_head);
    if a.n >= FA_TILE_Q {
        // Tasks per head and tile of queries, written to [head][tile rows][hd] then permuted.
        let tiles = a.n.div_ceil(FA_TILE_Q);
        let mut blocks = SCRATCH.with(|s| std::mem::take(&mut s.borrow_mut().blocks));
        blocks.resize(nh * tiles * FA_TILE_Q * hd, 0.0);
        blocks
            .par_chunks_mut(FA_TILE_Q * hd)
            .enumerate()
            .for_each(|(i, blk)| {
                let (head, tile) = (i / tiles, i % tiles);
                let t0 = tile * FA_TILE_Q;
                let rows = FA_TILE_Q.min(a.n - t0);
                SCRATCH.with(|s| {
                    let s = &mut *s.borrow_mut();
                    #[cfg(target_arch = "x86_64")]
                    if use_x86() {
                        // SAFETY: the CPU has AVX2, FMA and F16C (checked by `use_x86`), and
                        // AVX-512F where `use_x86_512` says so.
                        return unsafe {
                            if use_x86_512() {
                                tiled_x86_512(a, head, t0, rows, &mut blk[..rows * hd], s)
                            } else {
                                tiled_x86(a, head, t0, rows, &mut blk[..rows * hd], s)
                            }
                        };
                    }
                    tiled(a, head, t0, rows, &mut blk[..rows * hd], s)
                })
            });
        for head in 0..nh {
            for t in 0..a.n {
                let src = &blocks[(head * tiles * FA_TILE_Q + t) * hd..][..hd];
                out[t * nh * hd + head * hd..][..hd].copy_from_slice(src);
            }
        }
        SCRATCH.with(|s| s.borrow_mut().blocks = blocks);
    } else {
        let one = |(idx, o): (usize, &mut [f32])| {
            let (t, head) = (idx / nh, idx % nh);
            SCRATCH.with(|s| {
                let s = &mut *s.borrow_mut();
                #[cfg(target_arch = "x86_64")]
                if use_x86() {
                    // SAFETY: the CPU has AVX2, FMA and F16C (checked by `use_x86`).
                    return unsafe { one_x86(a, t, head, o, s) };
                }
                one_row(a, t, head, o, s)
            })
        };
        if a.n * nh >= 2 {
            out.par_chunks_mut(hd).enumerate().for_each(one);
        } else {
            out.chunks_mut(hd).enumerate().for_each(one);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn tiled_x86(a: &Attn, head: usize, t0: usize, rows: usize, out: &mut [f32], s: &mut Scratch) {
    tiled(a, head, t0, rows, out, s)
}

/// [`tiled`] compiled for AVX-512 (16-lane chains; each value's operations are the same).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn tiled_x86_512(a: &Attn, head: usize, t0: usize, rows: usize, out: &mut [f32], s: &mut Scratch) {
    tiled(a, head, t0, rows, out, s)
}

/// Whether this CPU has AVX-512F for [`tiled_x86_512`] (with what [`use_x86`] checks).
#[cfg(target_arch = "x86_64")]
fn use_x86_512() -> bool {
    crate::isa::cpu().at_least(crate::isa::Level::Avx512)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn one_x86(a: &Attn, t: usize, head: usize, out: &mut [f32], s: &mut Scratch) {
    one_row(a, t, head, out, s)
}

/// `ggml_compute_forward_flash_attn_ext_tiled` for queries `t0..t0 + rows` of one head: per KV
/// tile, K transposed to f32 and the scores as `simd_gemm` computes them (one multiply-add chain
/// per score over the head dimension), scaled, masked; the running max and sum per query, the
/// softmax with its sum in double; V in f32 and `VKQ += P · V` (chains over the tile's keys).
#[inline(always)]
fn tiled(a: &Attn, head: usize, t0: usize, rows: usize, out: &mut [f32], s: &mut Scratch) {
    let (hd, kvh) = (a.hd, head / (a.n_head / a.n_head_kv));
    let tkv = FA_TILE_KV;
    let kt = &mut s.a; // K tile, [hd][tkv]
    let kq = &mut s.b; // scores, [rows][tkv]
    let vt = &mut s.c; // V tile, [tkv][hd]
    let row = &mut s.d; // one K row in f32
    kt.resize(hd * tkv, 0.0);
    kq.resize(rows * tkv, 0.0);
    vt.resize(tkv * hd, 0.0);
    row.resize(hd, 0.0);
    let mut m = [f32::NEG_INFINITY; FA_TILE_Q];
    let mut sum = [0f32; FA_TILE_Q];
    out.fill(0.0);
    let pos_last = a.p0 + t0 + rows - 1;
    let lo_first = a.lo(a.p0 + t0);
    let mut tile0 = lo_first / tkv * tkv;
    while tile0 <= pos_last {
        // K tile transposed; cells past the last query's position are masked for every query.
        for tk in 0..tkv {
            let j = tile0 + tk;
            if j <= pos_last {
                a.krow(j, kvh).convert_to_f32_slice(row);
                for (dk, v) in row.iter().enumerate() {
                    kt[dk * tkv + tk] = *v;
                }
            } else {
                for dk in 0..hd {
                    kt[dk * tkv + tk] = 0.0;
                }
            }
        }
        // The scores: each one multiply-add chain over dk, two queries' tiles held in registers.
        let qrow = |tq: usize| &a.q[(t0 + tq) * a.n_head * hd + head * hd..][..hd];
        let mut tq = 0;
        while tq < rows {
            let (qa, qb) = (qrow(tq), qrow((tq + 1).min(rows - 1)));
            let mut acc_a = [0f32; FA_TILE_KV];
            let mut acc_b = [0f32; FA_TILE_KV];
            for dk in 0..hd {
                let krow: &[f32; FA_TILE_KV] =
                    kt[dk * tkv..(dk + 1) * tkv].try_into().expect("one tile");
                let (x, y) = (qa[dk], qb[dk]);
                for l in 0..FA_TILE_KV {
                    acc_a[l] = krow[l].mul_add(x, acc_a[l]);
                    acc_b[l] = krow[l].mul_add(y, acc_b[l]);
                }
            }
            kq[tq * tkv..(tq + 1) * tkv].copy_from_slice(&acc_a);
            if tq + 1 < rows {
                kq[(tq + 1) * tkv..(tq + 2) * tkv].copy_from_slice(&acc_b);
            }
            tq += 2;
        }
        let mut skip = [false; FA_TILE_Q];
        for tq in 0..rows {
            let pos = a.p0 + t0 + tq;
            let lo = a.lo(pos);
            let s_row = &mut kq[tq * tkv..(tq + 1) * tkv];
            let mut tile_max = f32::NEG_INFINITY;
            for (tk, v) in s_row.iter_mut().enumerate() {
                let j = tile0 + tk;
                *v = if j < lo || j > pos {
                    f32::NEG_INFINITY
                } else if a.softcap != 0.0 {
                    (*v * a.scale).tanh() * a.softcap
                } else {
                    *v * a.scale
                };
                tile_max = tile_max.max(*v);
            }
            if tile_max == f32::NEG_INFINITY {
                skip[tq] = true;
                s_row.fill(0.0);
                continue;
            }
            let m_new = m[tq].max(tile_max);
            if m_new > m[tq] {
                let ms = (m[tq] - m_new).exp();
                out[tq * hd..(tq + 1) * hd]
                    .iter_mut()
                    .for_each(|v| *v *= ms);
                sum[tq] *= ms;
            }
            m[tq] = m_new;
            // ggml_vec_soft_max_f32: exp in place, summed in double, added to the float sum.
            let ssum = soft_max(s_row, m_new);
            sum[tq] = (sum[tq] as f64 + ssum) as f32;
        }
        for tk in 0..tkv {
            let j = tile0 + tk;
            let dst = &mut vt[tk * hd..(tk + 1) * hd];
            if j <= pos_last {
                a.vrow(j, kvh).convert_to_f32_slice(dst);
            } else {
                dst.fill(0.0);
            }
        }
        for tq in 0..rows {
            if skip[tq] {
                continue; // its P row is 0: adds nothing
            }
            let o = &mut out[tq * hd..(tq + 1) * hd];
            let p = &kq[tq * tkv..(tq + 1) * tkv];
            // Each output one multiply-add chain over the tile's keys, held in registers 128 or
            // 64 outputs at a time.
            let mut c0 = 0;
            while c0 + 128 <= hd {
                pv_chunk::<128>(&mut o[c0..c0 + 128], p, vt, hd, c0);
                c0 += 128;
            }
            while c0 + 64 <= hd {
                pv_chunk::<64>(&mut o[c0..c0 + 64], p, vt, hd, c0);
                c0 += 64;
            }
            for (tk, pk) in p.iter().enumerate() {
                for (acc, v) in o[c0..].iter_mut().zip(&vt[tk * hd + c0..(tk + 1) * hd]) {
                    *acc = v.mul_add(*pk, *acc);
                }
            }
        }
        tile0 += tkv;
    }
    for tq in 0..rows {
        let inv = if sum[tq] == 0.0 { 0.0 } else { 1.0 / sum[tq] };
        out[tq * hd..(tq + 1) * hd]
            .iter_mut()
            .for_each(|v| *v *= inv);
    }
}

/// `o[l] += p[tk] * v[tk][c0 + l]` over the tile's keys in order, the `OC` outputs in registers.
#[inline(always)]
fn pv_chunk<const OC: usize>(o: &mut [f32], p: &[f32], vt: &[f32], hd: usize, c0: usize) {
    let mut acc: [f32; OC] = o.try_into().expect("a chunk");
    for (tk, pk) in p.iter().enumerate() {
        let v: &[f32; OC] = vt[tk * hd + c0..tk * hd + c0 + OC]
            .try_into()
            .expect("a chunk");
        for l in 0..OC {
            acc[l] = v[l].mul_add(*pk, acc[l]);
        }
    }
    o.copy_from_slice(&acc);
}

/// Whether llama.cpp on this CPU does its f16 vector arithmetic in half precision: ggml-cpu built
/// for a CPU with AVX512-FP16 (`GGML_NATIVE` on Sapphire Rapids and later) runs
/// `ggml_vec_mad_f16` and `ggml_vec_scale_f16` on `__m512h` vectors (the f16 dot product keeps f32
/// accumulators). pocket reproduces that arithmetic there, and ggml's f32 path elsewhere.
fn fp16_arith() -> bool {
    crate::isa::numerics().fp16_arith
}

/// Whether llama.cpp's softmax runs its AVX-512 code here (`ggml_vec_soft_max_f32` with AVX512F
/// and AVX512DQ: `ggml_v_expf` on 16 values at a time, each 16 summed as `_mm512_reduce_add_ps`).
fn avx512_softmax() -> bool {
    crate::isa::numerics().avx512_softmax
}

/// `ggml_vec_soft_max_f32`: `x[i] = exp(x[i] - max)` in place, the sum in double.
#[inline(always)]
fn soft_max(x: &mut [f32], max: f32) -> f64 {
    let mut sum = 0f64;
    let mut i = 0;
    if avx512_softmax() {
        while i + 16 <= x.len() {
            let c = &mut x[i..i + 16];
            // SAFETY: `avx512_softmax` holds only at the `avx512` level of `isa` or above, which needs
            // AVX512F, AVX512DQ and FMA.
            #[cfg(target_arch = "x86_64")]
            let part = unsafe { exp16_sum_avx512(c, max) };
            #[cfg(not(target_arch = "x86_64"))]
            let part = exp16_sum(c, max);
            sum += part as f64;
            i += 16;
        }
    }
    if crate::isa::numerics().avx2_softmax {
        while i + 8 <= x.len() {
            sum += exp8_sum(&mut x[i..i + 8], max) as f64;
            i += 8;
        }
    }
    for v in x[i..].iter_mut() {
        *v = (*v - max).exp();
        sum += *v as f64;
    }
    sum
}

/// The AVX2 branch of `ggml_vec_soft_max_f32` on 8 values: `ggml_v_expf`'s AVX2 form of each
/// `c - max` (in place), summed as its 128-bit horizontal add does (`hi + lo`, then `movehl`, then
/// `movehdup`). Lane by lane the same IEEE operations as the vector code, so bit for bit.
fn exp8_sum(c: &mut [f32], max: f32) -> f32 {
    for v in c.iter_mut() {
        *v = v_expf_avx2(*v - max);
    }
    let t: [f32; 4] = std::array::from_fn(|l| c[l + 4] + c[l]);
    let (t0, t1) = (t[0] + t[2], t[1] + t[3]);
    t0 + t1
}

/// `ggml_v_expf` (AVX2 + FMA form), one lane: exp by a degree-5 polynomial on the reduced
/// argument, scaled by `2^n` built from the exponent bits; arguments beyond ±126 take its
/// two-factor path (and beyond ±192 saturate to 0 or infinity).
fn v_expf_avx2(x: f32) -> f32 {
    let c = f32::from_bits;
    let r = c(0x4b40_0000); // 0x1.8p23
    let z = x.mul_add(c(0x3fb8_aa3b), r); // 0x1.715476p+0
    let n = z - r;
    let b = (-n).mul_add(c(0x35bf_be8e), (-n).mul_add(c(0x3f31_7200), x)); // 0x1.7f7d1cp-20, 0x1.62e4p-1
    let e = z.to_bits() << 23;
    let k = c(e.wrapping_add(1f32.to_bits()));
    let u = b * b;
    let j = c(0x3c07_2010)
        .mul_add(b, c(0x3d2b_9f17))
        .mul_add(u, c(0x3e2a_af33).mul_add(b, c(0x3eff_fedb)))
        .mul_add(u, c(0x3f7f_fff6) * b);
    if n.abs() <= 126.0 || n.is_nan() {
        return j.mul_add(k, k);
    }
    let g = if n <= 0.0 { 0x8200_0000u32 } else { 0 };
    let s1 = c(g.wrapping_add(0x7f00_0000));
    let s2 = c(e.wrapping_sub(g));
    if n.abs() > 192.0 {
        s1 * s1
    } else {
        s2.mul_add(j, s2) * s1
    }
}

/// [`exp16_sum_avx512`] one lane at a time: its scalar reference.
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
fn exp16_sum(c: &mut [f32], max: f32) -> f32 {
    c.iter_mut().for_each(|v| *v = v_expf(*v - max));
    let t: [f32; 8] = std::array::from_fn(|l| c[l] + c[l + 8]);
    let t6: [f32; 4] = std::array::from_fn(|l| t[l] + t[l + 4]);
    let t8 = [t6[0] + t6[2], t6[1] + t6[3]];
    t8[0] + t8[1]
}

/// `ggml_v_expf` on 16 values (`c - max`, in place) and their sum in `_mm512_reduce_add_ps`'s
/// order: the AVX-512 code itself, lane for lane what [`v_expf`] computes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,fma")]
fn exp16_sum_avx512(c: &mut [f32], max: f32) -> f32 {
    use std::arch::x86_64::*;
    assert!(c.len() >= 16);
    let k = |b: u32| _mm512_set1_ps(f32::from_bits(b));
    // SAFETY: 16 floats (checked above); unaligned load.
    let x = _mm512_sub_ps(unsafe { _mm512_loadu_ps(c.as_ptr()) }, _mm512_set1_ps(max));
    let r = k(0x4b40_0000);
    let z = _mm512_fmadd_ps(x, k(0x3fb8_aa3b), r);
    let n = _mm512_sub_ps(z, r);
    let b = _mm512_fnmadd_ps(n, k(0x35bf_be8e), _mm512_fnmadd_ps(n, k(0x3f31_7200), x));
    let d = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_abs_ps(n), _mm512_set1_ps(192.0));
    let u = _mm512_mul_ps(b, b);
    let j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(
            _mm512_fmadd_ps(k(0x3c07_2010), b, k(0x3d2b_9f17)),
            u,
            _mm512_fmadd_ps(k(0x3e2a_af33), b, k(0x3eff_fedb)),
        ),
        u,
        _mm512_fmadd_ps(k(0x3f7f_fff6), b, _mm512_set1_ps(1.0)),
    );
    let mut e = _mm512_scalef_ps(j, n);
    if d != 0 {
        let le = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(n, _mm512_setzero_ps());
        let alt = _mm512_mask_blend_ps(le, _mm512_set1_ps(f32::INFINITY), _mm512_setzero_ps());
        e = _mm512_mask_blend_ps(d, e, alt);
    }
    // SAFETY: as above; unaligned store.
    unsafe { _mm512_storeu_ps(c.as_mut_ptr(), e) };
    let t8 = _mm256_add_ps(_mm512_castps512_ps256(e), _mm512_extractf32x8_ps::<1>(e));
    let t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps::<1>(t8));
    let t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
    _mm_cvtss_f32(_mm_add_ss(t2, _mm_movehdup_ps(t2)))
}

/// `ggml_v_expf` (AVX-512), one lane: exp by a degree-5 polynomial on the reduced argument,
/// scaled by a power of two (`_mm512_scalef_ps`).
#[inline(always)]
fn v_expf(x: f32) -> f32 {
    let c = f32::from_bits;
    let r = c(0x4b40_0000);
    let z = x.mul_add(c(0x3fb8_aa3b), r);
    let n = z - r;
    let b = (-n).mul_add(c(0x35bf_be8e), (-n).mul_add(c(0x3f31_7200), x));
    if n.abs() > 192.0 {
        return if n <= 0.0 { 0.0 } else { f32::INFINITY };
    }
    let u = b * b;
    let j = c(0x3c07_2010)
        .mul_add(b, c(0x3d2b_9f17))
        .mul_add(u, c(0x3e2a_af33).mul_add(b, c(0x3eff_fedb)))
        .mul_add(u, c(0x3f7f_fff6).mul_add(b, 1.0));
    if n.is_nan() {
        return j;
    }
    // 2^n exactly (|n| <= 192), built from its exponent bits.
    (j as f64 * f64::from_bits(((n as i64 + 1023) as u64) << 52)) as f32
}

/// `v` rounded to f32 with round-to-odd: an inexact result gets an odd last bit, which keeps a
/// later rounding to f16 (11 bits) correct, as if rounded once from `v`.
#[inline(always)]
fn round_to_odd_f32(v: f64) -> f32 {
    let t = v as f32;
    let b = t.to_bits();
    if t as f64 == v || b & 1 == 1 || !t.is_finite() {
        return t;
    }
    f32::from_bits(if (t as f64).abs() < v.abs() {
        b + 1
    } else {
        b - 1
    })
}

/// `ggml_vec_dot_f16` as ggml-cpu computes it for the class of CPU pocket imitates
/// ([`crate::isa::F16Vec`]): 4 accumulators of 8 (AVX) or 16 (AVX-512) lanes fed by multiply-adds in
/// steps of 4 vectors, summed pairwise, the lanes reduced as that build reduces them, the leftover
/// values added in double; without SIMD, every product added in double.
#[inline(always)]
fn dot_f16(v: crate::isa::F16Vec, x: &[f32], y: &[f32]) -> f32 {
    use crate::isa::F16Vec;
    match v {
        F16Vec::Scalar => {
            let mut sum = 0f64;
            for (a, b) in x.iter().zip(y) {
                sum += (a * b) as f64;
            }
            sum as f32
        }
        F16Vec::Avx => dot_f16_lanes::<8>(x, y),
        F16Vec::Avx512 | F16Vec::Avx512Fp16 => dot_f16_lanes::<16>(x, y),
    }
}

/// [`dot_f16`] with `L`-lane vectors: `L` = 8 reduces as `GGML_F32x8_REDUCE` (the 128-bit halves
/// added, then two `hadd`s), `L` = 16 as `_mm512_reduce_add_ps` (halves, as a tree).
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn dot_f16_lanes<const L: usize>(x: &[f32], y: &[f32]) -> f32 {
    let step = 4 * L;
    let np = x.len() / step * step;
    let mut acc = [[0f32; L]; 4];
    for i in (0..np).step_by(step) {
        for (j, a) in acc.iter_mut().enumerate() {
            let (xs, ys) = (&x[i + L * j..i + L * j + L], &y[i + L * j..i + L * j + L]);
            for l in 0..L {
                a[l] = xs[l].mul_add(ys[l], a[l]);
            }
        }
    }
    for l in 0..L {
        acc[0][l] += acc[2][l];
        acc[1][l] += acc[3][l];
    }
    for l in 0..L {
        acc[0][l] += acc[1][l];
    }
    let mut w = acc[0];
    let r = if L == 8 {
        // t0 = low half + high half; hadd(t0, t0) = [t0_0 + t0_1, t0_2 + t0_3, ..]; hadd again.
        let t0: [f32; 4] = std::array::from_fn(|l| w[l] + w[l + 4]);
        (t0[0] + t0[1]) + (t0[2] + t0[3])
    } else {
        let mut half = L / 2;
        while half >= 1 {
            for l in 0..half {
                w[l] += w[l + half];
            }
            half /= 2;
        }
        w[0]
    };
    let mut sum = r as f64;
    for k in np..x.len() {
        sum += (x[k] * y[k]) as f64;
    }
    sum as f32
}

/// `ggml_compute_forward_flash_attn_ext_f16_one_chunk` for one query row: Q rounded to f16, the
/// online softmax key by key, V accumulated in an f16 vector (`ggml_vec_mad_f16`: converted to
/// f32, multiply-added, rounded back).
#[inline(always)]
fn one_row(a: &Attn, t: usize, head: usize, out: &mut [f32], s: &mut Scratch) {
    let (hd, kvh) = (a.hd, head / (a.n_head / a.n_head_kv));
    let pos = a.p0 + t;
    let q = &a.q[t * a.n_head * hd + head * hd..][..hd];
    let (qh, kf, acc) = (&mut s.a, &mut s.b, &mut s.c);
    let vf = &mut s.d;
    let acc16 = &mut s.h;
    qh.resize(hd, 0.0);
    kf.resize(hd, 0.0);
    acc.resize(hd, 0.0);
    vf.resize(hd, 0.0);
    acc16.resize(hd, f16::ZERO);
    acc16.convert_from_f32_slice(q);
    acc16.convert_to_f32_slice(qh);
    acc16.fill(f16::ZERO);
    acc.fill(0.0);
    let (mut m, mut s_sum) = (f32::NEG_INFINITY, 0f32);
    // ggml's f16 vector code covers whole steps of `np` values; the rest is scalar f32 code.
    let fp16 = fp16_arith();
    let f16_vec = crate::isa::numerics().f16_vec;
    let np = hd / f16_vec.step() * f16_vec.step();
    for j in a.lo(pos)..=pos {
        a.krow(j, kvh).convert_to_f32_slice(kf);
        let mut sc = dot_f16(f16_vec, qh, kf) * a.scale;
        if a.softcap != 0.0 {
            sc = a.softcap * sc.tanh();
        }
        let (mut ms, mut vs) = (1f32, 1f32);
        if sc > m {
            let m_old = m;
            m = sc;
            ms = (m_old - m).exp();
            // ggml_vec_scale_f16: with AVX512-FP16 the factor is an f16 and the product is
            // rounded once (exact in f32 before that, both being f16 values).
            let ms_v = if fp16 { f16::from_f32(ms).to_f32() } else { ms };
            acc[..np].iter_mut().for_each(|v| *v *= ms_v);
            acc[np..].iter_mut().for_each(|v| *v *= ms);
            acc16.convert_from_f32_slice(acc);
            acc16.convert_to_f32_slice(acc);
        } else {
            vs = (sc - m).exp();
        }
        a.vrow(j, kvh).convert_to_f32_slice(vf);
        if fp16 {
            // ggml_vec_mad_f16 with AVX512-FP16 (`_mm512_fmadd_ph`): f16 factor, one rounding
            // of the exact v * vs + acc to f16 (exact in f64, rounded to odd to f32 so that
            // the f16 rounding that follows is the correct one).
            let vs_h = f16::from_f32(vs).to_f32() as f64;
            for (x, v) in acc[..np].iter_mut().zip(&vf[..np]) {
                *x = round_to_odd_f32(*v as f64 * vs_h + *x as f64);
            }
        } else {
            for (x, v) in acc[..np].iter_mut().zip(&vf[..np]) {
                *x = v.mul_add(vs, *x);
            }
        }
        for (x, v) in acc[np..].iter_mut().zip(&vf[np..]) {
            *x = v.mul_add(vs, *x);
        }
        acc16.convert_from_f32_slice(acc);
        acc16.convert_to_f32_slice(acc);
        // `S = S*ms + vs`, contracted to a fused multiply-add by the C++ compiler.
        s_sum = s_sum.mul_add(ms, vs);
    }
    let inv = if s_sum == 0.0 { 0.0 } else { 1.0 / s_sum };
    for (o, x) in out.iter_mut().zip(acc.iter()) {
        *o = x * inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rnd(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The AVX2 `ggml_v_expf` port: within 2 ulp of exp over the softmax's range (arguments <= 0),
    /// exactly 1 at 0, and its saturation: 0 far below, infinity far above; the two-factor path
    /// (|n| > 126) still near exp.
    #[test]
    fn v_expf_avx2_is_exp() {
        assert_eq!(v_expf_avx2(0.0), 1.0);
        assert_eq!(v_expf_avx2(-200.0), 0.0);
        assert_eq!(v_expf_avx2(200.0), f32::INFINITY);
        let ulps = |a: f32, b: f32| (a.to_bits() as i64 - b.to_bits() as i64).abs();
        let mut x = -87.0f32;
        while x <= 0.0 {
            let (got, want) = (v_expf_avx2(x), x.exp());
            assert!(ulps(got, want) <= 2, "{x}: {got} vs {want}");
            x += 0.0137;
        }
        // |n| > 126: the two-factor path.
        for x in [-87.5f32, 88.5, 127.0 * std::f32::consts::LN_2] {
            let (got, want) = (v_expf_avx2(x) as f64, (x as f64).exp());
            assert!(((got - want) / want).abs() < 1e-6, "{x}: {got} vs {want}");
        }
        let mut v = [-0.5f32, -1.0, -2.0, 0.0, -3.0, -0.25, -8.0, -1.5];
        let sum = exp8_sum(&mut v, 0.0);
        let want: f32 = v.iter().sum();
        assert!((sum - want).abs() <= 1e-6 * want);
    }

    /// The AVX-512 exp and sum of 16 give the bits of their scalar reference, for arguments
    /// across exp's range, its overflow and underflow and NaN.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn exp16_avx512_equals_scalar() {
        if !avx512_softmax() {
            return eprintln!("no AVX-512 softmax on this CPU: nothing to compare");
        }
        let mut v = rnd(16 * 64, 9);
        for (i, x) in v.iter_mut().enumerate() {
            *x *= [1.0, 10.0, 90.0, 200.0][i / 256];
        }
        v[5] = f32::NAN;
        v[17] = -1e30;
        v[18] = 1e30;
        for max in [0.0f32, 3.5, -80.0] {
            for c in v.chunks(16) {
                let (mut a, mut b) = (c.to_vec(), c.to_vec());
                // SAFETY: checked above.
                let sa = unsafe { exp16_sum_avx512(&mut a, max) };
                let sb = exp16_sum(&mut b, max);
                assert_eq!(sa.to_bits(), sb.to_bits(), "{c:?} max {max}");
                for (x, y) in a.iter().zip(&b) {
                    assert!(
                        x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
                        "{x} {y}"
                    );
                }
            }
        }
    }

    /// Both compilations give the same bits, for both kernels, with and without a window; and the
    /// result is a convex combination of V rows (each output within V's range per dimension).
    #[test]
    fn compilations_agree_and_outputs_are_averages() {
        let (hd, nh, nkv) = (64, 4, 2);
        for (n, p0, swa) in [(70, 5, 0), (3, 60, 0), (65, 0, 16), (1, 90, 32)] {
            let len = p0 + n;
            let k: Vec<f16> = rnd(len * nkv * hd, 1)
                .iter()
                .map(|v| f16::from_f32(*v * 2.0))
                .collect();
            let v: Vec<f16> = rnd(len * nkv * hd, 2)
                .iter()
                .map(|v| f16::from_f32(*v))
                .collect();
            let q = rnd(n * nh * hd, 3);
            let a = Attn {
                q: &q,
                k: &k,
                v: &v,
                n,
                p0,
                n_head: nh,
                n_head_kv: nkv,
                hd,
                swa,
                scale: 0.125,
                softcap: 0.0,
            };
            let mut got = vec![0f32; n * nh * hd];
            attention(&a, &mut got);
            let mut generic = vec![0f32; n * nh * hd];
            let mut s = Scratch::default();
            for t in 0..n {
                for head in 0..nh {
                    let o = &mut generic[t * nh * hd + head * hd..][..hd];
                    if n >= FA_TILE_Q {
                        continue;
                    }
                    one_row(&a, t, head, o, &mut s);
                }
            }
            if n >= FA_TILE_Q {
                for head in 0..nh {
                    for t0 in (0..n).step_by(FA_TILE_Q) {
                        let rows = FA_TILE_Q.min(n - t0);
                        let mut blk = vec![0f32; rows * hd];
                        tiled(&a, head, t0, rows, &mut blk, &mut s);
                        for r in 0..rows {
                            generic[(t0 + r) * nh * hd + head * hd..][..hd]
                                .copy_from_slice(&blk[r * hd..(r + 1) * hd]);
                        }
                    }
                }
            }
            assert_eq!(
                got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                generic.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                "n {n} p0 {p0} swa {swa}"
            );
            for t in 0..n {
                let pos = p0 + t;
                let lo = if swa > 0 {
                    (pos + 1).saturating_sub(swa)
                } else {
                    0
                };
                for head in 0..nh {
                    let kvh = head / 2;
                    for d in 0..hd {
                        let vals = (lo..=pos).map(|j| v[j * nkv * hd + kvh * hd + d].to_f32());
                        let (lo_v, hi_v) =
                            vals.fold((f32::MAX, f32::MIN), |(a, b), x| (a.min(x), b.max(x)));
                        let o = got[t * nh * hd + head * hd + d];
                        assert!(
                            o >= lo_v - 2e-3 && o <= hi_v + 2e-3,
                            "{o} not in [{lo_v}, {hi_v}]"
                        );
                    }
                }
            }
        }
    }
}
