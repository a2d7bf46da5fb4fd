//! The forward pass: llama.cpp's graphs (`src/models/{llama,qwen2,qwen3,gemma3}.cpp`) evaluated
//! directly, a batch of consecutive tokens at a time, with an f16 KV cache. Element-wise operations
//! follow ggml's CPU kernels (RMS norm summed in double, RoPE angles by repeated multiplication in
//! f32, GELU through its f16 table, softmax sums in double).

use half::f16;
use rayon::prelude::*;

use super::model::{Arch, Weights};
use super::ExecError;

/// A running sequence: the model and its KV cache.
pub struct Session<'w, 'a> {
    pub w: &'w Weights<'a>,
    n_ctx: usize,
    n_past: usize,
    /// Per layer: `n_ctx` rows of `n_head_kv * head_dim` f16 values.
    k: Vec<Vec<f16>>,
    v: Vec<Vec<f16>>,
}

/// `ggml_rms_norm` followed by the weight multiply.
fn rms_norm(x: &mut [f32], w: &[f32], eps: f32) {
    let mut sum = 0f64;
    for &v in x.iter() {
        sum += (v * v) as f64;
    }
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for (v, g) in x.iter_mut().zip(w) {
        *v = *v * scale * g;
    }
}

/// `ggml_gelu_f32` (tanh approximation).
fn gelu(x: f32) -> f32 {
    const A: f32 = 0.044715;
    const S: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (S * x * (1.0 + A * x * x)).tanh())
}

/// `ggml_vec_geglu_f32` with `GGML_GELU_FP16`: GELU looked up at the f16 value of x, rounded to f16.
fn geglu(x: f32, g: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x * g
    } else {
        let xh = f16::from_f32(x).to_f32();
        f16::from_f32(gelu(xh)).to_f32() * g
    }
}

/// `ggml_vec_swiglu_f32`.
fn swiglu(x: f32, g: f32) -> f32 {
    x / (1.0 + (-x).exp()) * g
}

/// `GGML_FA_TILE_Q` and `GGML_FA_TILE_KV` (ggml-cpu/common.h).
const FA_TILE_Q: usize = 64;
const FA_TILE_KV: usize = 64;

/// `ggml_compute_forward_flash_attn_ext_tiled` for one query row: keys in tiles of 64 cells from
/// cell 0, scores as an f32 multiply-add chain, the running max updated once per tile, V summed in
/// f32 multiply-adds.
fn attend_tiled<'c>(
    q: &[f32],
    lo: usize,
    pos: usize,
    scale: f32,
    krow: impl Fn(usize) -> &'c [f16],
    vrow: impl Fn(usize) -> &'c [f16],
    out: &mut [f32],
) {
    let (mut m, mut s_sum) = (f32::NEG_INFINITY, 0f32);
    out.fill(0.0);
    let mut kq = [0f32; FA_TILE_KV];
    let mut tile0 = lo / FA_TILE_KV * FA_TILE_KV;
    while tile0 <= pos {
        let mut tile_max = f32::NEG_INFINITY;
        for (i, slot) in kq.iter_mut().enumerate() {
            let j = tile0 + i;
            *slot = if j < lo || j > pos {
                f32::NEG_INFINITY
            } else {
                let mut acc = 0f32;
                for (a, b) in q.iter().zip(krow(j)) {
                    acc = a.mul_add(b.to_f32(), acc);
                }
                acc * scale
            };
            tile_max = tile_max.max(*slot);
        }
        let m_new = m.max(tile_max);
        if m_new > m {
            let ms = (m - m_new).exp();
            out.iter_mut().for_each(|v| *v *= ms);
            s_sum *= ms;
        }
        m = m_new;
        // ggml_vec_soft_max_f32: exp in place, sum in double.
        let mut sum = 0f64;
        for v in kq.iter_mut() {
            *v = (*v - m).exp();
            sum += *v as f64;
        }
        s_sum += sum as f32;
        for (i, p) in kq.iter().enumerate() {
            let j = tile0 + i;
            if j < lo || j > pos {
                continue; // p is 0: adds nothing (fma with 0 keeps the value)
            }
            for (a, b) in out.iter_mut().zip(vrow(j)) {
                *a = p.mul_add(b.to_f32(), *a);
            }
        }
        tile0 += FA_TILE_KV;
    }
    let inv = if s_sum == 0.0 { 0.0 } else { 1.0 / s_sum };
    out.iter_mut().for_each(|v| *v *= inv);
}

/// `ggml_vec_dot_f16` as ggml-cpu's AVX-512 build computes it (what llama.cpp runs on this kind of
/// x86 machine): 4 accumulators of 16 lanes fed by multiply-adds in steps of 64 values, summed
/// pairwise, the lanes reduced as a tree, the leftover values added in double.
#[allow(clippy::needless_range_loop)]
fn dot_f16_simd(x: &[f32], y: &[f16]) -> f32 {
    let np = x.len() / 64 * 64;
    let mut acc = [[0f32; 16]; 4];
    for i in (0..np).step_by(64) {
        for (j, a) in acc.iter_mut().enumerate() {
            for (l, v) in a.iter_mut().enumerate() {
                let k = i + 16 * j + l;
                *v = x[k].mul_add(y[k].to_f32(), *v);
            }
        }
    }
    for l in 0..16 {
        acc[0][l] += acc[2][l];
        acc[1][l] += acc[3][l];
    }
    for l in 0..16 {
        acc[0][l] += acc[1][l];
    }
    let mut w = acc[0];
    for half in [8, 4, 2, 1] {
        for l in 0..half {
            w[l] += w[l + half];
        }
    }
    let mut sum = w[0] as f64;
    for k in np..x.len() {
        sum += (x[k] * y[k].to_f32()) as f64;
    }
    sum as f32
}

/// `ggml_compute_forward_flash_attn_ext_f16_one_chunk` for one query row: Q rounded to f16, the
/// online softmax key by key, V accumulated in an f16 vector (`ggml_vec_mad_f16`).
fn attend_one<'c>(
    q: &[f32],
    lo: usize,
    pos: usize,
    scale: f32,
    krow: impl Fn(usize) -> &'c [f16],
    vrow: impl Fn(usize) -> &'c [f16],
    out: &mut [f32],
) {
    let qh: Vec<f32> = q.iter().map(|&a| f16::from_f32(a).to_f32()).collect();
    let mut acc = vec![f16::ZERO; out.len()];
    let (mut m, mut s_sum) = (f32::NEG_INFINITY, 0f32);
    for j in lo..=pos {
        let s = dot_f16_simd(&qh, krow(j)) * scale;
        let (mut ms, mut vs) = (1f32, 1f32);
        if s > m {
            let m_old = m;
            m = s;
            ms = (m_old - m).exp();
            acc.iter_mut()
                .for_each(|v| *v = f16::from_f32(v.to_f32() * ms));
        } else {
            vs = (s - m).exp();
        }
        for (a, b) in acc.iter_mut().zip(vrow(j)) {
            *a = f16::from_f32(b.to_f32().mul_add(vs, a.to_f32()));
        }
        s_sum = s_sum * ms + vs;
    }
    let inv = if s_sum == 0.0 { 0.0 } else { 1.0 / s_sum };
    for (o, a) in out.iter_mut().zip(&acc) {
        *o = a.to_f32() * inv;
    }
}

impl<'w, 'a> Session<'w, 'a> {
    pub fn new(w: &'w Weights<'a>, n_ctx: usize) -> Session<'w, 'a> {
        let hp = &w.hp;
        let row = hp.n_head_kv * hp.head_dim;
        Session {
            w,
            n_ctx,
            n_past: 0,
            k: (0..hp.n_layer)
                .map(|_| vec![f16::ZERO; n_ctx * row])
                .collect(),
            v: (0..hp.n_layer)
                .map(|_| vec![f16::ZERO; n_ctx * row])
                .collect(),
        }
    }

    pub fn n_past(&self) -> usize {
        self.n_past
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Forgets the sequence (the cache is overwritten from position 0).
    pub fn clear(&mut self) {
        self.n_past = 0;
    }

    /// RoPE on one head in place (`ggml_rope_ext`, no scaling, ext_factor 0).
    fn rope(&self, x: &mut [f32], pos: usize, base: f32) {
        let hp = &self.w.hp;
        let n_dims = hp.n_rot;
        let theta_scale = base.powf(-2.0 / n_dims as f32);
        let mut theta = pos as f32;
        for i0 in (0..n_dims).step_by(2) {
            let ff = self.w.rope_freqs.as_ref().map_or(1.0, |f| f[i0 / 2]);
            let t = theta / ff;
            let (s, c) = (t.sin(), t.cos());
            let (a, b) = if hp.rope_neox {
                (i0 / 2, i0 / 2 + n_dims / 2)
            } else {
                (i0, i0 + 1)
            };
            let (x0, x1) = (x[a], x[b]);
            x[a] = x0 * c - x1 * s;
            x[b] = x0 * s + x1 * c;
            theta *= theta_scale;
        }
    }

    /// Runs `tokens` at the next positions and returns the logits of the last `n_out` of them
    /// (`n_out * n_vocab` values, token by token).
    pub fn eval(&mut self, tokens: &[u32], n_out: usize) -> Result<Vec<f32>, ExecError> {
        let w = self.w;
        let hp = &w.hp;
        let n = tokens.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        if self.n_past + n > self.n_ctx {
            return Err(ExecError::ContextFull {
                n_ctx: self.n_ctx,
                need: self.n_past + n,
            });
        }
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= hp.n_vocab) {
            return Err(ExecError::BadToken {
                token: t,
                n_vocab: hp.n_vocab,
            });
        }
        let n_out = n_out.min(n);
        let (ne, hd) = (hp.n_embd, hp.head_dim);
        let (nq, nkv) = (hp.n_head * hd, hp.n_head_kv * hd);
        let p0 = self.n_past;

        // Embeddings (`get_rows`), gemma scales them by sqrt(n_embd).
        let mut x = vec![0f32; n * ne];
        for (t, row) in tokens.iter().zip(x.chunks_exact_mut(ne)) {
            w.tok_embd.row_f32(*t as usize, row)?;
        }
        if hp.arch == Arch::Gemma3 {
            let s = (ne as f32).sqrt();
            x.iter_mut().for_each(|v| *v *= s);
        }

        let mut h = vec![0f32; n * ne];
        let mut q = vec![0f32; n * nq];
        let mut k = vec![0f32; n * nkv];
        let mut v = vec![0f32; n * nkv];
        let mut att = vec![0f32; n * nq];
        let mut o = vec![0f32; n * ne];
        let mut g = vec![0f32; n * hp.n_ff];
        let mut u = vec![0f32; n * hp.n_ff];
        let kq_scale = if hp.attn_scale != 0.0 {
            1.0
        } else {
            1.0 / (hd as f32).sqrt()
        };

        for (il, lw) in w.layers.iter().enumerate() {
            h.copy_from_slice(&x);
            h.chunks_exact_mut(ne)
                .for_each(|r| rms_norm(r, &lw.attn_norm, hp.eps));
            lw.wq.matmul(&h, n, &mut q)?;
            lw.wk.matmul(&h, n, &mut k)?;
            lw.wv.matmul(&h, n, &mut v)?;
            for (buf, b, width) in [
                (&mut q, &lw.bq, nq),
                (&mut k, &lw.bk, nkv),
                (&mut v, &lw.bv, nkv),
            ] {
                if let Some(b) = b {
                    for r in buf.chunks_exact_mut(width) {
                        r.iter_mut().zip(b).for_each(|(a, c)| *a += c);
                    }
                }
            }
            if let Some(qn) = &lw.q_norm {
                q.chunks_exact_mut(hd).for_each(|r| rms_norm(r, qn, hp.eps));
            }
            if let Some(kn) = &lw.k_norm {
                k.chunks_exact_mut(hd).for_each(|r| rms_norm(r, kn, hp.eps));
            }
            let base = if hp.is_swa[il] {
                hp.rope_base_swa
            } else {
                hp.rope_base
            };
            for t in 0..n {
                for r in q[t * nq..(t + 1) * nq].chunks_exact_mut(hd) {
                    self.rope(r, p0 + t, base);
                }
                for r in k[t * nkv..(t + 1) * nkv].chunks_exact_mut(hd) {
                    self.rope(r, p0 + t, base);
                }
            }
            if hp.attn_scale != 0.0 {
                q.iter_mut().for_each(|a| *a *= hp.attn_scale);
            }
            // Store K and V in the f16 cache.
            let kc = &mut self.k[il];
            let vc = &mut self.v[il];
            for (dst, src) in kc[p0 * nkv..(p0 + n) * nkv].iter_mut().zip(&k) {
                *dst = f16::from_f32(*src);
            }
            for (dst, src) in vc[p0 * nkv..(p0 + n) * nkv].iter_mut().zip(&v) {
                *dst = f16::from_f32(*src);
            }
            let (kc, vc) = (&self.k[il], &self.v[il]);
            let group = hp.n_head / hp.n_head_kv;
            let swa = if hp.is_swa[il] { hp.n_swa } else { 0 };
            // Attention: one task per (token, head), as ggml-cpu's flash attention computes it
            // (llama.cpp's default): the tiled kernel for batches of 64 tokens or more, the
            // one-row kernel with an f16 accumulator otherwise.
            let tiled = n >= FA_TILE_Q;
            att.par_chunks_mut(hd).enumerate().for_each(|(idx, out)| {
                let (t, head) = (idx / hp.n_head, idx % hp.n_head);
                let pos = p0 + t;
                let kvh = head / group;
                let qrow = &q[t * nq + head * hd..t * nq + (head + 1) * hd];
                let lo = if swa > 0 {
                    (pos + 1).saturating_sub(swa)
                } else {
                    0
                };
                let krow = |j: usize| &kc[j * nkv + kvh * hd..j * nkv + (kvh + 1) * hd];
                let vrow = |j: usize| &vc[j * nkv + kvh * hd..j * nkv + (kvh + 1) * hd];
                if tiled {
                    attend_tiled(qrow, lo, pos, kq_scale, krow, vrow, out);
                } else {
                    attend_one(qrow, lo, pos, kq_scale, krow, vrow, out);
                }
            });
            lw.wo.matmul(&att, n, &mut o)?;
            if let Some(pn) = &lw.attn_post_norm {
                o.chunks_exact_mut(ne).for_each(|r| rms_norm(r, pn, hp.eps));
            }
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);

            h.copy_from_slice(&x);
            h.chunks_exact_mut(ne)
                .for_each(|r| rms_norm(r, &lw.ffn_norm, hp.eps));
            lw.gate.matmul(&h, n, &mut g)?;
            lw.up.matmul(&h, n, &mut u)?;
            let act: fn(f32, f32) -> f32 = if hp.arch == Arch::Gemma3 {
                geglu
            } else {
                swiglu
            };
            g.iter_mut().zip(&u).for_each(|(a, b)| *a = act(*a, *b));
            lw.down.matmul(&g, n, &mut o)?;
            if let Some(pn) = &lw.ffn_post_norm {
                o.chunks_exact_mut(ne).for_each(|r| rms_norm(r, pn, hp.eps));
            }
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
        }
        self.n_past += n;

        let mut last = x[(n - n_out) * ne..].to_vec();
        last.chunks_exact_mut(ne)
            .for_each(|r| rms_norm(r, &w.output_norm, hp.eps));
        let mut logits = vec![0f32; n_out * hp.n_vocab];
        w.output.matmul(&last, n_out, &mut logits)?;
        if hp.final_softcap != 0.0 {
            let c = hp.final_softcap;
            logits.iter_mut().for_each(|l| *l = (*l / c).tanh() * c);
        }
        Ok(logits)
    }
}
