//! The forward pass: llama.cpp's graphs (`src/models/{llama,qwen2,qwen3,gemma,gemma2,gemma3,
//! granite}.cpp`) evaluated
//! directly, a batch of consecutive tokens at a time, with an f16 KV cache. Element-wise operations
//! follow ggml's CPU kernels (RMS norm summed in double, RoPE angles by repeated multiplication in
//! f32, GELU through its f16 table, softmax sums in double).

use super::attn::{attention, Attn};
use super::dot::{act_kind, Acts, Mat};
use super::model::Weights;
use super::ExecError;
use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

/// Batches at least this long run their element-wise work on the pool.
const PAR_MIN: usize = 8;

/// What [`Session::eval_observed`] shows each weight matrix's input to.
pub type Observer<'f> = &'f mut dyn FnMut(&Mat<'_>, &[f32]);

/// A running sequence: the model and its KV cache.
pub struct Session<'w, 'a> {
    pub w: &'w Weights<'a>,
    n_ctx: usize,
    n_past: usize,
    /// Per layer: `n_ctx` rows of `n_head_kv * head_dim` f16 values (none for conv layers).
    k: Vec<Vec<f16>>,
    v: Vec<Vec<f16>>,
    /// Per conv layer (lfm2): the last `l_cache - 1` inputs of its convolution, f32, per channel
    /// (`n_embd` rows of `l_cache - 1`, oldest first), as llama.cpp's recurrent state keeps them.
    conv: Vec<Vec<f32>>,
    /// Work buffers, grown to the largest batch and then reused (no allocation per token).
    buf: Buffers,
    /// RoPE's frequency factors for this context size ([`Weights::rope_factors`]).
    factors: Option<&'w [f32]>,
}

#[derive(Default)]
struct Buffers {
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    o: Vec<f32>,
    g: Vec<f32>,
    u: Vec<f32>,
    /// lfm2's conv layers: `in_proj`'s B, C and X per token.
    bcx: Vec<f32>,
    last: Vec<f32>,
    logits: Vec<f32>,
    acts: Acts,
    acts2: Acts,
    /// RoPE's cos and sin per token and dimension pair, for the two bases (global, SWA).
    rope: [Vec<f32>; 2],
}

/// `ggml_rms_norm` followed by the weight multiply.
fn rms_norm(x: &mut [f32], w: &[f32], eps: f32) {
    let mut sum = 0f64;
    for &v in x.iter() {
        sum += (v * v) as f64;
    }
    rms_scale(x, sum, w, eps);
}

/// The second half of [`rms_norm`]: `x` scaled by its root mean square (from `sum`, the sum of
/// its squares) and multiplied by `w`.
fn rms_scale(x: &mut [f32], sum: f64, w: &[f32], eps: f32) {
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for (v, g) in x.iter_mut().zip(w) {
        *v = *v * scale * g;
    }
}

/// [`rms_norm`] on each `width`-long row of `x`, four rows in lockstep (four independent sums in
/// flight; each row's sum in its own order, as before), on the pool for batches.
fn norm_rows(x: &mut [f32], width: usize, w: &[f32], eps: f32) {
    let group = |g: &mut [f32]| {
        if g.len() != 4 * width {
            g.chunks_exact_mut(width).for_each(|r| rms_norm(r, w, eps));
            return;
        }
        let mut sum = [0f64; 4];
        for i in 0..width {
            for (r, s) in sum.iter_mut().enumerate() {
                let v = g[r * width + i];
                *s += (v * v) as f64;
            }
        }
        for (row, s) in g.chunks_exact_mut(width).zip(sum) {
            rms_scale(row, s, w, eps);
        }
    };
    if x.len() >= PAR_MIN * width {
        x.par_chunks_mut(4 * width).for_each(group);
    } else {
        x.chunks_mut(4 * width).for_each(group);
    }
}

/// `ggml_gelu_f32` (tanh approximation).
fn gelu(x: f32) -> f32 {
    const A: f32 = 0.044715;
    const S: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (S * x * (1.0 + A * x * x)).tanh())
}

/// `ggml_table_gelu_f16`: GELU of every f16 value, rounded to f16, as f32.
fn gelu_table() -> &'static [f32] {
    static T: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        (0..=u16::MAX)
            .map(|b| f16::from_f32(gelu(f16::from_bits(b).to_f32())).to_f32())
            .collect()
    })
}

/// `ggml_vec_geglu_f32` with `GGML_GELU_FP16` for one value: GELU looked up at `h`, the f16 value
/// of `x`, rounded to f16.
#[inline]
fn geglu(x: f32, h: f16, g: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x * g
    } else {
        gelu_table()[h.to_bits() as usize] * g
    }
}

/// [`geglu`] on a row, the f16 roundings done 64 at a time (the slice conversion uses F16C where
/// the CPU has it; both round to nearest even).
fn geglu_row(g: &mut [f32], u: &[f32]) {
    let mut hb = [f16::ZERO; 64];
    for (gc, uc) in g.chunks_mut(64).zip(u.chunks(64)) {
        let hb = &mut hb[..gc.len()];
        hb.convert_from_f32_slice(gc);
        for ((a, b), h) in gc.iter_mut().zip(uc).zip(hb.iter()) {
            *a = geglu(*a, *h, *b);
        }
    }
}

/// `ggml_vec_swiglu_f32`.
fn swiglu(x: f32, g: f32) -> f32 {
    x / (1.0 + (-x).exp()) * g
}

/// The bytes of the KV cache of `n_ctx` positions (f16 K and V for every attention layer) and of
/// the conv layers' state (constant), or None when that overflows.
pub fn kv_cache_bytes(hp: &super::model::HParams, n_ctx: usize) -> Option<u64> {
    let kv = (hp.n_head_kv as u64)
        .checked_mul(hp.head_dim as u64)?
        .checked_mul(n_ctx as u64)?
        .checked_mul(hp.n_layer_attn() as u64)?
        .checked_mul(2 * 2)?;
    kv.checked_add(conv_state_bytes(hp)?)
}

/// The bytes of the conv layers' state: `(l_cache - 1) * n_embd` f32 per conv layer
/// (`n_embd_r()`, one sequence).
pub fn conv_state_bytes(hp: &super::model::HParams) -> Option<u64> {
    let n_conv = hp.is_conv.iter().filter(|&&c| c).count() as u64;
    (hp.l_cache.saturating_sub(1) as u64)
        .checked_mul(hp.n_embd as u64)?
        .checked_mul(4)?
        .checked_mul(n_conv)
}

impl<'w, 'a> Session<'w, 'a> {
    /// [`Session::new`] after checking what its KV cache would take ([`kv_cache_bytes`]): a context
    /// whose cache overflows or is larger than the machine's memory is refused, not allocated
    /// (`run -n 1000000000` must be an error, not an abort).
    pub fn try_new(w: &'w Weights<'a>, n_ctx: usize) -> Result<Session<'w, 'a>, ExecError> {
        let need = kv_cache_bytes(&w.hp, n_ctx);
        let have = crate::memory::physical_memory();
        match (need, have) {
            (None, _) => Err(ExecError::Input(format!(
                "a context of {n_ctx} tokens: its KV cache size overflows"
            ))),
            (Some(n), Some(h)) if n > h => Err(ExecError::Input(format!(
                "a context of {n_ctx} tokens needs a {n}-byte KV cache, more than this machine's {h} bytes of memory"
            ))),
            _ => Ok(Session::new(w, n_ctx)),
        }
    }

    pub fn new(w: &'w Weights<'a>, n_ctx: usize) -> Session<'w, 'a> {
        let hp = &w.hp;
        let row = hp.n_head_kv * hp.head_dim;
        let cells = |il: usize| if hp.is_conv[il] { 0 } else { n_ctx * row };
        let state = (hp.l_cache.saturating_sub(1)) * hp.n_embd;
        Session {
            w,
            n_ctx,
            n_past: 0,
            k: (0..hp.n_layer)
                .map(|il| vec![f16::ZERO; cells(il)])
                .collect(),
            v: (0..hp.n_layer)
                .map(|il| vec![f16::ZERO; cells(il)])
                .collect(),
            conv: (0..hp.n_layer)
                .map(|il| vec![0f32; if hp.is_conv[il] { state } else { 0 }])
                .collect(),
            buf: Buffers::default(),
            factors: w.rope_factors(n_ctx),
        }
    }

    pub fn n_past(&self) -> usize {
        self.n_past
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Forgets the sequence (the cache is overwritten from position 0; conv states start again
    /// from zero, as `llama_memory_clear` leaves them).
    pub fn clear(&mut self) {
        self.n_past = 0;
        for s in &mut self.conv {
            s.fill(0.0);
        }
    }

    /// Runs `tokens` at the next positions and returns the logits of the last `n_out` of them
    /// (`n_out * n_vocab` values, token by token).
    pub fn eval(&mut self, tokens: &[u32], n_out: usize) -> Result<Vec<f32>, ExecError> {
        Ok(self.eval_logits(tokens, n_out)?.to_vec())
    }

    /// As [`Session::eval`], the logits borrowed from the session's buffer (valid until the next
    /// call): what a token loop uses, allocating nothing once the buffers have grown.
    pub fn eval_logits(&mut self, tokens: &[u32], n_out: usize) -> Result<&[f32], ExecError> {
        self.eval_inner(tokens, n_out, None)
    }

    /// As [`Session::eval_logits`], showing `observe` the input of every weight matrix product
    /// before it is multiplied (and before it is quantized for the kernels): the matrix and the
    /// batch's rows of `cols` f32 values, token by token (what llama-imatrix's callback sees as
    /// `src1`). The output matrix is seen with the `n_out` rows it is applied to.
    pub fn eval_observed(
        &mut self,
        tokens: &[u32],
        n_out: usize,
        observe: Observer<'_>,
    ) -> Result<&[f32], ExecError> {
        self.eval_inner(tokens, n_out, Some(observe))
    }

    fn eval_inner(
        &mut self,
        tokens: &[u32],
        n_out: usize,
        mut observe: Option<Observer<'_>>,
    ) -> Result<&[f32], ExecError> {
        // One branch per matrix product when no one observes.
        let mut seen = |m: &Mat<'_>, x: &[f32]| {
            if let Some(o) = observe.as_mut() {
                o(m, x)
            }
        };
        let w = self.w;
        let hp = &w.hp;
        let n = tokens.len();
        if n == 0 {
            return Ok(&[]);
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
        let factors = self.factors;
        let b = &mut self.buf;
        for (buf, len) in [
            (&mut b.x, n * ne),
            (&mut b.h, n * ne),
            (&mut b.q, n * nq),
            (&mut b.k, n * nkv),
            (&mut b.v, n * nkv),
            (&mut b.att, n * nq),
            (&mut b.o, n * ne),
            (&mut b.g, n * hp.n_ff),
            (&mut b.u, n * hp.n_ff),
            (&mut b.bcx, if hp.l_cache > 0 { n * 3 * ne } else { 0 }),
        ] {
            buf.resize(len, 0.0);
        }
        let Buffers {
            x,
            h,
            q,
            k,
            v,
            att,
            o,
            g,
            u,
            bcx,
            last,
            logits,
            acts,
            acts2,
            rope: rope_cache,
        } = b;
        // RoPE's angles once per token for every head and layer.
        for (cache, base) in rope_cache.iter_mut().zip([hp.rope_base, hp.rope_base_swa]) {
            let half = hp.n_rot / 2;
            cache.resize(n * 2 * half, 0.0);
            let corr = yarn_corr_dims(hp.n_rot, &hp.rope_scaling, base);
            for (t, cs) in cache.chunks_exact_mut(2 * half).enumerate() {
                rope_angles(hp, factors, corr, p0 + t, base, cs);
            }
        }

        // Embeddings (`get_rows`), scaled by the gemmas (sqrt(n_embd)) and granite.
        for (t, row) in tokens.iter().zip(x.chunks_exact_mut(ne)) {
            w.tok_embd.row_f32(*t as usize, row)?;
        }
        if hp.embd_scale != 0.0 {
            let s = hp.embd_scale;
            x.iter_mut().for_each(|v| *v *= s);
        }
        // With soft-capping, ggml's flash attention divides the scale by the cap, then takes
        // `cap * tanh(score * scale)`.
        let kq_scale = if hp.attn_softcap != 0.0 {
            hp.kq_scale / hp.attn_softcap
        } else {
            hp.kq_scale
        };

        for (il, lw) in w.layers.iter().enumerate() {
            h.copy_from_slice(x);
            norm_rows(h, ne, &lw.attn_norm, hp.eps);
            if let Some(sc) = &lw.shortconv {
                seen(&sc.in_proj, h);
                sc.in_proj.matmul(h, n, bcx)?;
                short_conv(sc, &mut self.conv[il], bcx, n, ne, hp.l_cache, h);
                seen(&sc.out_proj, h);
                sc.out_proj.matmul(h, n, o)?;
                residual_add(x, o, hp.residual_scale);
                ffn(lw, hp, n, x, h, g, u, o, acts, acts2, &mut seen)?;
                continue;
            }
            // Q, K and V share one quantization of their input when their types share a format.
            match &lw.wqkv {
                Some(m) => seen(m, h),
                None => {
                    for m in [&lw.wq, &lw.wk, &lw.wv] {
                        seen(m, h);
                    }
                }
            }
            acts.prepare(lw.wq.ty, h, n)?;
            lw.wq.matmul_acts(acts, q)?;
            for (m, dst) in [(&lw.wk, &mut *k), (&lw.wv, &mut *v)] {
                if act_kind(m.ty) == acts.kind().expect("prepared") {
                    m.matmul_acts(acts, dst)?;
                } else {
                    acts2.prepare(m.ty, h, n)?;
                    m.matmul_acts(acts2, dst)?;
                }
            }
            for (buf, bias, width) in [
                (&mut *q, &lw.bq, nq),
                (&mut *k, &lw.bk, nkv),
                (&mut *v, &lw.bv, nkv),
            ] {
                if let Some(bias) = bias {
                    for r in buf.chunks_exact_mut(width) {
                        r.iter_mut().zip(bias).for_each(|(a, c)| *a += c);
                    }
                }
            }
            if let Some(qn) = &lw.q_norm {
                norm_rows(q, hd, qn, hp.eps);
            }
            if let Some(kn) = &lw.k_norm {
                norm_rows(k, hd, kn, hp.eps);
            }
            let cache = &rope_cache[usize::from(hp.is_swa[il])];
            let half = hp.n_rot / 2;
            // smollm3's NoPE layers: every `nope_step`-th one leaves Q and K unrotated.
            let nope = hp.nope_step != 0 && (il + 1) % hp.nope_step == 0;
            for (buf, width) in [(&mut *q, nq), (&mut *k, nkv)] {
                if nope {
                    break;
                }
                let one = |(t, row): (usize, &mut [f32])| {
                    let cs = &cache[t * 2 * half..(t + 1) * 2 * half];
                    for head in row.chunks_exact_mut(hd) {
                        rope_head(hp, head, cs);
                    }
                };
                if n >= PAR_MIN {
                    buf.par_chunks_exact_mut(width).enumerate().for_each(one);
                } else {
                    buf.chunks_exact_mut(width).enumerate().for_each(one);
                }
            }
            if hp.attn_scale != 0.0 {
                q.iter_mut().for_each(|a| *a *= hp.attn_scale);
            }
            if hp.attn_temp_scale != 0.0 {
                // `ggml_mul` by the per-position temperature (`llm_graph_input_attn_temp`: in
                // double from the float position, stored as f32).
                for (t, row) in q.chunks_exact_mut(nq).enumerate() {
                    let pos = (p0 + t) as f32;
                    let fl = (pos / hp.attn_temp_floor as f32).floor() as f64;
                    let s = ((fl + 1.0).ln() * hp.attn_temp_scale as f64 + 1.0) as f32;
                    row.iter_mut().for_each(|a| *a *= s);
                }
            }
            // Store K and V in the f16 cache.
            self.k[il][p0 * nkv..(p0 + n) * nkv].convert_from_f32_slice(k);
            self.v[il][p0 * nkv..(p0 + n) * nkv].convert_from_f32_slice(v);
            let problem = Attn {
                q,
                k: &self.k[il],
                v: &self.v[il],
                n,
                p0,
                n_head: hp.n_head,
                n_head_kv: hp.n_head_kv,
                hd,
                swa: if hp.is_swa[il] { hp.n_swa } else { 0 },
                scale: kq_scale,
                softcap: hp.attn_softcap,
            };
            attention(&problem, att);
            seen(&lw.wo, att);
            lw.wo.matmul(att, n, o)?;
            if let Some(pn) = &lw.attn_post_norm {
                norm_rows(o, ne, pn, hp.eps);
            }
            residual_add(x, o, hp.residual_scale);

            ffn(lw, hp, n, x, h, g, u, o, acts, acts2, &mut seen)?;
        }
        self.n_past += n;

        last.clear();
        last.extend_from_slice(&x[(n - n_out) * ne..]);
        last.chunks_exact_mut(ne)
            .for_each(|r| rms_norm(r, &w.output_norm, hp.eps));
        logits.resize(n_out * hp.n_vocab, 0.0);
        seen(&w.output, last);
        w.output.matmul(last, n_out, logits)?;
        if hp.logit_scale != 0.0 {
            let s = hp.logit_scale;
            logits.iter_mut().for_each(|l| *l *= s);
        }
        if hp.final_softcap != 0.0 {
            // ggml_scale by 1/cap, ggml_tanh, ggml_scale by cap.
            let (c, inv) = (hp.final_softcap, 1.0 / hp.final_softcap);
            logits.iter_mut().for_each(|l| *l = (*l * inv).tanh() * c);
        }
        Ok(logits)
    }
}

/// The feed-forward half of a block: norm, gate and up (sharing one quantization of their input
/// where their formats allow), GLU, down, post-norm, residual add.
#[allow(clippy::too_many_arguments)]
fn ffn(
    lw: &super::model::Layer<'_>,
    hp: &super::model::HParams,
    n: usize,
    x: &mut [f32],
    h: &mut [f32],
    g: &mut [f32],
    u: &mut [f32],
    o: &mut [f32],
    acts: &mut Acts,
    acts2: &mut Acts,
    seen: &mut impl FnMut(&Mat<'_>, &[f32]),
) -> Result<(), ExecError> {
    let ne = hp.n_embd;
    h.copy_from_slice(x);
    norm_rows(h, ne, &lw.ffn_norm, hp.eps);
    match &lw.gate_up {
        Some(m) => seen(m, h),
        None => {
            seen(&lw.gate, h);
            seen(&lw.up, h);
        }
    }
    acts.prepare(lw.gate.ty, h, n)?;
    lw.gate.matmul_acts(acts, g)?;
    if act_kind(lw.up.ty) == acts.kind().expect("prepared") {
        lw.up.matmul_acts(acts, u)?;
    } else {
        acts2.prepare(lw.up.ty, h, n)?;
        lw.up.matmul_acts(acts2, u)?;
    }
    let nff = hp.n_ff;
    let gelu = hp.gelu;
    let glu = |(gr, ur): (&mut [f32], &[f32])| {
        if gelu {
            geglu_row(gr, ur);
        } else {
            gr.iter_mut().zip(ur).for_each(|(a, b)| *a = swiglu(*a, *b));
        }
    };
    if n >= PAR_MIN {
        g.par_chunks_exact_mut(nff)
            .zip(u.par_chunks_exact(nff))
            .for_each(glu);
    } else {
        g.chunks_exact_mut(nff)
            .zip(u.chunks_exact(nff))
            .for_each(glu);
    }
    seen(&lw.down, g);
    lw.down.matmul(g, n, o)?;
    if let Some(pn) = &lw.ffn_post_norm {
        norm_rows(o, ne, pn, hp.eps);
    }
    residual_add(x, o, hp.residual_scale);
    Ok(())
}

/// lfm2's convolution for a batch of `n` tokens (`build_shortconv_block` between its two
/// matrices): `bcx` holds `in_proj`'s B, C, X per token; `state` the channel's last
/// `l_cache - 1` inputs B * X, updated; `y` receives C times the convolution, per token. Each
/// output sums its `l_cache` products oldest first, in f32 (`ggml_compute_forward_ssm_conv_f32`),
/// as GCC compiles that loop for x86-64 with AVX2 (the reference build's disassembly): products of
/// whole groups of 8, then of 4, rounded and added in order, the last `l_cache % 4` fused into the
/// sum. LFM2's length 3 is all fused (what the goldens check); other lengths follow the same
/// reading of the code, not a golden.
fn short_conv(
    sc: &super::model::ShortConv<'_>,
    state: &mut [f32],
    bcx: &[f32],
    n: usize,
    ne: usize,
    l_cache: usize,
    y: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::isa::cpu().fma() {
            #[target_feature(enable = "fma")]
            fn with_fma(
                sc: &super::model::ShortConv<'_>,
                state: &mut [f32],
                bcx: &[f32],
                n: usize,
                ne: usize,
                l_cache: usize,
                y: &mut [f32],
            ) {
                short_conv_body(sc, state, bcx, n, ne, l_cache, y)
            }
            // SAFETY: the CPU has FMA (checked above).
            return unsafe { with_fma(sc, state, bcx, n, ne, l_cache, y) };
        }
    }
    short_conv_body(sc, state, bcx, n, ne, l_cache, y)
}

/// [`short_conv`]'s work, compiled with and without the FMA instruction (the same values: `mul_add`
/// is one rounding either way).
#[inline(always)]
fn short_conv_body(
    sc: &super::model::ShortConv<'_>,
    state: &mut [f32],
    bcx: &[f32],
    n: usize,
    ne: usize,
    l_cache: usize,
    y: &mut [f32],
) {
    let d = l_cache - 1;
    let mut win = vec![0f32; d + n];
    for c in 0..ne {
        let st = &mut state[c * d..(c + 1) * d];
        win[..d].copy_from_slice(st);
        for t in 0..n {
            let row = &bcx[t * 3 * ne..(t + 1) * 3 * ne];
            win[d + t] = row[c] * row[2 * ne + c];
        }
        let k = &sc.kernel[c * l_cache..(c + 1) * l_cache];
        let rounded = l_cache - l_cache % 4;
        for t in 0..n {
            let mut sum = 0f32;
            let w = &win[t..t + l_cache];
            for (a, b) in w[..rounded].iter().zip(&k[..rounded]) {
                sum += a * b;
            }
            for (a, b) in w[rounded..].iter().zip(&k[rounded..]) {
                sum = a.mul_add(*b, sum);
            }
            y[t * ne + c] = bcx[t * 3 * ne + ne + c] * sum;
        }
        st.copy_from_slice(&win[n..n + d]);
    }
}

/// `x += o`, `o` first scaled by `scale` unless it is 0 (granite's `residual_scale`).
fn residual_add(x: &mut [f32], o: &mut [f32], scale: f32) {
    if scale != 0.0 {
        o.iter_mut().for_each(|v| *v *= scale);
    }
    x.iter_mut().zip(o.iter()).for_each(|(a, b)| *a += b);
}

/// `ggml_rope_yarn_corr_dims`: the first and last dimension YaRN ramps between.
fn yarn_corr_dims(n_dims: usize, s: &super::model::RopeScaling, base: f32) -> [f32; 2] {
    let corr_dim = |n_rot: f32| {
        n_dims as f32 * (s.n_ctx_orig as f32 / (n_rot * 2.0 * std::f32::consts::PI)).ln()
            / (2.0 * base.ln())
    };
    let start = corr_dim(s.beta_fast).floor();
    let end = corr_dim(s.beta_slow).ceil();
    [start.max(0.0), end.min(n_dims as f32 - 1.0)]
}

/// RoPE's cos and sin at position `pos` for each dimension pair (`ggml_rope_cache_init` and
/// `rope_yarn`: the angle multiplied up in f32, divided by the frequency factor, interpolated by
/// `freq_scale`, mixed with the extrapolated angle along YaRN's ramp, both scaled by the
/// magnitude factor). ggml-cpu is built with FMA: its `a*b + c*d` fuse the first product.
fn rope_angles(
    hp: &super::model::HParams,
    factors: Option<&[f32]>,
    corr: [f32; 2],
    pos: usize,
    base: f32,
    cs: &mut [f32],
) {
    let n_dims = hp.n_rot;
    let s = &hp.rope_scaling;
    let theta_scale = base.powf(-2.0 / n_dims as f32);
    let mut theta = pos as f32;
    let mut mscale = s.attn_factor;
    if s.ext_factor != 0.0 {
        mscale *= 0.1f32.mul_add((1.0 / s.freq_scale).ln(), 1.0);
    }
    for (i, c) in cs.chunks_exact_mut(2).enumerate() {
        let ff = factors.map_or(1.0, |f| f[i]);
        let extrap = theta / ff;
        let interp = s.freq_scale * extrap;
        let t = if s.ext_factor != 0.0 {
            let y = (i as f32 - corr[0]) / 0.001f32.max(corr[1] - corr[0]);
            let ramp_mix = (1.0 - y.clamp(0.0, 1.0)) * s.ext_factor;
            interp.mul_add(1.0 - ramp_mix, extrap * ramp_mix)
        } else {
            interp
        };
        c[0] = t.cos() * mscale;
        c[1] = t.sin() * mscale;
        theta *= theta_scale;
    }
}

/// [`rope`], with the FMA instruction where the CPU has it (the same values as the library call
/// the baseline x86_64 build makes for `mul_add`).
fn rope_head(hp: &super::model::HParams, x: &mut [f32], cs: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::isa::cpu().fma() {
            #[target_feature(enable = "fma")]
            fn with_fma(hp: &super::model::HParams, x: &mut [f32], cs: &[f32]) {
                rope(hp, x, cs)
            }
            // SAFETY: the CPU has FMA (checked above).
            return unsafe { with_fma(hp, x, cs) };
        }
    }
    rope(hp, x, cs)
}

/// RoPE on one head in place (`ggml_rope_ext`, no scaling, ext_factor 0), with the angles of
/// [`rope_angles`].
#[inline(always)]
fn rope(hp: &super::model::HParams, x: &mut [f32], cs: &[f32]) {
    let n_dims = hp.n_rot;
    for (i, c) in cs.chunks_exact(2).enumerate() {
        let (cos, sin) = (c[0], c[1]);
        let (a, b) = if hp.rope_neox {
            (i, i + n_dims / 2)
        } else {
            (2 * i, 2 * i + 1)
        };
        let (x0, x1) = (x[a], x[b]);
        // `x0*cos - x1*sin` and `x0*sin + x1*cos` as GCC compiles ggml's rope (-ffp-contract=fast):
        // the first product fused with the rounded second.
        x[a] = x0.mul_add(cos, -(x1 * sin));
        x[b] = x0.mul_add(sin, x1 * cos);
    }
}
