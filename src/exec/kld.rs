//! KL-divergence of one model's next-token distributions from another's, the way
//! `llama-perplexity --kl-divergence` measures it (`tools/perplexity/perplexity.cpp`), with both
//! models in one process instead of an intermediate logits file.
//!
//! The text is cut into chunks exactly as for perplexity ([`super::perplexity`]): chunks of `n_ctx`
//! tokens, BOS first, the second half scored. For each scored position the base model's logits are
//! turned into log-probabilities and stored the way llama-perplexity's `--kl-divergence-base` file
//! stores them (16-bit steps over the top 16 nats, [`compress_log_probs`]); the other model's logits
//! are then compared with those ([`token_kld`]), so that pocket's numbers equal llama-perplexity's
//! for equal logits, float operation for float operation. [`KldStats`] accumulates what
//! llama-perplexity prints: per-chunk running values and the final statistics with percentiles.

use super::forward::Session;
use super::model::Weights;
use super::perplexity::chunk_count;
use super::tokenizer::Vocab;
use super::ExecError;

/// Log-probabilities below the maximum by more than this are not stored (llama-perplexity's 16).
const LOG_PROB_RANGE: f32 = 16.0;

/// `nearest_int` of perplexity.cpp is ggml's: round to nearest (ties to even) by the 1.5·2^23 trick,
/// valid for |x| < 2^22 (the values here are in [0, 65535]).
use crate::quant::kquants::nearest_int;

/// The maximum and its first index (`>` keeps the first of equal values, as perplexity.cpp).
fn first_max(v: &[f32]) -> (f32, usize) {
    let mut max = v[0];
    let mut imax = 0;
    for (i, &x) in v.iter().enumerate().skip(1) {
        if x > max {
            max = x;
            imax = i;
        }
    }
    (max, imax)
}

/// `log(sum(exp(l - max)))` with the sum in double and the exponentials and result in float.
fn log_sum_exp(logits: &[f32], max: f32) -> f32 {
    let mut sum = 0f64;
    for &l in logits {
        sum += (l - max).exp() as f64;
    }
    sum.ln() as f32
}

/// One position's base log-probabilities as llama-perplexity stores them: `q[i]` steps of `scale`
/// above `min_log_prob` (0 for everything at or below the cut-off 16 nats under the maximum).
#[derive(Debug, Clone, Copy)]
pub struct BaseRow<'a> {
    pub scale: f32,
    pub min_log_prob: f32,
    pub q: &'a [u16],
}

impl BaseRow<'_> {
    /// The stored log-probability of token `i`.
    pub fn log_prob(&self, i: usize) -> f32 {
        self.scale * self.q[i] as f32 + self.min_log_prob
    }
}

/// `log_softmax(n_vocab, logits, log_prob, tok)` of perplexity.cpp (the `--kl-divergence-base`
/// pass): writes the compressed log-probabilities of `logits` into `q` (same length) and returns
/// `(scale, min_log_prob)`.
pub fn compress_log_probs(logits: &[f32], q: &mut [u16]) -> (f32, f32) {
    assert_eq!(logits.len(), q.len());
    let (max_logit, _) = first_max(logits);
    let min_logit = logits
        .iter()
        .skip(1)
        .fold(logits[0], |m, &x| m.min(x))
        .max(max_logit - LOG_PROB_RANGE);
    let lse = log_sum_exp(logits, max_logit);
    let min_log_prob = min_logit - max_logit - lse;
    let scale = (max_logit - min_logit) / 65535.0;
    if scale != 0.0 {
        let inv_scale = 1.0 / scale;
        for (o, &l) in q.iter_mut().zip(logits) {
            *o = if l > min_logit {
                nearest_int(inv_scale * (l - min_logit)) as u16
            } else {
                0
            };
        }
    } else {
        q.fill(0);
    }
    (scale, min_log_prob)
}

/// The base model's compressed log-probabilities for the scored positions of one chunk.
#[derive(Debug, Clone)]
pub struct BaseLogProbs {
    n_vocab: usize,
    heads: Vec<(f32, f32)>,
    q: Vec<u16>,
}

impl BaseLogProbs {
    pub fn new(n_vocab: usize) -> BaseLogProbs {
        BaseLogProbs {
            n_vocab,
            heads: Vec::new(),
            q: Vec::new(),
        }
    }

    pub fn clear(&mut self) {
        self.heads.clear();
        self.q.clear();
    }

    /// Adds a position from its logits (`n_vocab` values).
    pub fn push(&mut self, logits: &[f32]) {
        assert_eq!(logits.len(), self.n_vocab);
        let at = self.q.len();
        self.q.resize(at + self.n_vocab, 0);
        let h = compress_log_probs(logits, &mut self.q[at..]);
        self.heads.push(h);
    }

    pub fn len(&self) -> usize {
        self.heads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    pub fn row(&self, i: usize) -> BaseRow<'_> {
        let (scale, min_log_prob) = self.heads[i];
        BaseRow {
            scale,
            min_log_prob,
            q: &self.q[i * self.n_vocab..(i + 1) * self.n_vocab],
        }
    }
}

/// One scored position: the other model's logits against the base's stored log-probabilities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenKld {
    /// KL(base ‖ other) over the tokens the base gives more than e^-16.
    pub kld: f64,
    /// p_other(tok) − p_base(tok).
    pub p_diff: f32,
    /// −log p of the actual next token under each model.
    pub nll: f32,
    pub nll_base: f32,
    /// Whether both models' most probable token is the same.
    pub same_top: bool,
}

/// `log_softmax(n_vocab, logits, base_log_prob, tok, kld)` of perplexity.cpp (the `--kl-divergence`
/// pass), same float and double steps.
pub fn token_kld(logits: &[f32], base: BaseRow<'_>, tok: usize) -> TokenKld {
    assert_eq!(logits.len(), base.q.len());
    let (max_logit, imax) = first_max(logits);
    let lse = log_sum_exp(logits, max_logit);
    let nll = max_logit + lse - logits[tok];
    let nll_base = -base.log_prob(tok);
    let log_norm = max_logit + lse;
    let mut sum = 0f64;
    let mut imax_base = 0;
    let mut p_log_base_max = 0f32;
    for (i, &l) in logits.iter().enumerate() {
        let p_log_base = base.log_prob(i);
        if i == 0 || p_log_base > p_log_base_max {
            p_log_base_max = p_log_base;
            imax_base = i;
        }
        if p_log_base > -LOG_PROB_RANGE {
            let p_base = p_log_base.exp();
            sum += (p_base * (p_log_base - l + log_norm)) as f64;
        }
    }
    TokenKld {
        kld: sum,
        p_diff: (-nll).exp() - (-nll_base).exp(),
        nll,
        nll_base,
        same_top: imax == imax_base,
    }
}

/// A value and its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub err: f64,
}

/// `mean_and_uncertainty` of perplexity.cpp: the mean and its standard error (0 for 10 values or
/// fewer, or no spread).
pub fn mean_and_uncertainty(sum: f64, sum2: f64, count: usize) -> Estimate {
    if count < 1 {
        return Estimate {
            value: 0.0,
            err: 0.0,
        };
    }
    let f = sum / count as f64;
    let df = sum2 / count as f64 - f * f;
    let err = if df > 0.0 && count > 10 {
        (df / (count - 1) as f64).sqrt()
    } else {
        0.0
    };
    Estimate { value: f, err }
}

/// `covariance` of perplexity.cpp: of the two means (0 below 10 values).
pub fn covariance(sum_a: f64, sum_b: f64, sum_ab: f64, count: usize) -> f64 {
    if count < 10 {
        return 0.0;
    }
    let c = count as f64;
    (sum_ab / c - (sum_a / c) * (sum_b / c)) / (c - 1.0)
}

/// The `percentile` lambda of perplexity.cpp over sorted values, interpolating in float.
pub fn percentile(sorted: &[f32], fraction: f32) -> f32 {
    if fraction <= 0.0 {
        return sorted[0];
    }
    if fraction >= 1.0 {
        return sorted[sorted.len() - 1];
    }
    let mut p = fraction * (sorted.len() - 1) as f32;
    let ip = p as usize;
    p -= ip as f32;
    (1.0 - p) * sorted[ip] + p * sorted[(ip + 1).min(sorted.len() - 1)]
}

/// The median as perplexity.cpp takes it (mean of the two middle values for an even count).
pub fn median(sorted: &[f32]) -> f32 {
    let n = sorted.len();
    if n.is_multiple_of(2) {
        0.5 * (sorted[n / 2] + sorted[n / 2 - 1])
    } else {
        sorted[n / 2]
    }
}

/// The running values llama-perplexity prints after each chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    /// Scored tokens so far.
    pub count: usize,
    /// Perplexity of the other model.
    pub ppl: Estimate,
    pub ln_ppl_ratio: Estimate,
    pub kld: Estimate,
    /// Root mean square of Δp (a fraction, not %).
    pub p_diff_rms: Estimate,
    /// Fraction of positions where both models' top token is the same.
    pub same_top: Estimate,
}

/// Named quantiles of a sorted sample, in llama-perplexity's print order.
pub type Quantiles = Vec<(&'static str, f32)>;

/// The final statistics llama-perplexity prints (it prints them only from 100 scored tokens on;
/// they are computed here for any count of at least one).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub ppl: Estimate,
    pub ppl_base: Estimate,
    /// Correlation of the two models' ln PPL estimates (a fraction).
    pub cor_ln_ppl: f64,
    pub ln_ppl_ratio: Estimate,
    pub ppl_ratio: Estimate,
    pub ppl_diff: Estimate,
    pub kld: Estimate,
    /// "Maximum", "99.9%" … "Median" … "0.1%", "Minimum".
    pub kld_quantiles: Quantiles,
    pub p_diff: Estimate,
    pub p_diff_quantiles: Quantiles,
    pub p_diff_rms: Estimate,
    pub same_top: Estimate,
}

/// The sums of perplexity.cpp's `kl_divergence_result` and the per-token values kept for the
/// percentiles.
#[derive(Debug, Clone, Default)]
pub struct KldStats {
    sum_nll: f64,
    sum_nll2: f64,
    sum_nll_base: f64,
    sum_nll_base2: f64,
    sum_nll_nll_base: f64,
    sum_kld: f64,
    sum_kld2: f64,
    sum_p_diff: f64,
    sum_p_diff2: f64,
    sum_p_diff4: f64,
    max_p_diff: f32,
    n_same_top: usize,
    count: usize,
    kld_values: Vec<f32>,
    p_diff_values: Vec<f32>,
}

impl KldStats {
    pub fn new() -> KldStats {
        KldStats::default()
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn add(&mut self, t: &TokenKld) {
        let (nll, nll_base) = (t.nll as f64, t.nll_base as f64);
        self.sum_nll += nll;
        self.sum_nll2 += (t.nll * t.nll) as f64;
        self.sum_nll_base += nll_base;
        self.sum_nll_base2 += (t.nll_base * t.nll_base) as f64;
        self.sum_nll_nll_base += (t.nll * t.nll_base) as f64;
        self.sum_kld += t.kld;
        self.sum_kld2 += t.kld * t.kld;
        self.count += 1;
        self.n_same_top += t.same_top as usize;
        self.sum_p_diff += t.p_diff as f64;
        // perplexity.cpp squares Δp in float, then sums the squares of that in double.
        let p_diff2 = (t.p_diff * t.p_diff) as f64;
        self.sum_p_diff2 += p_diff2;
        self.sum_p_diff4 += p_diff2 * p_diff2;
        self.max_p_diff = self.max_p_diff.max(t.p_diff.abs());
        self.kld_values.push(t.kld as f32);
        self.p_diff_values.push(t.p_diff);
    }

    fn ln_ppl(&self) -> (Estimate, Estimate, f64) {
        let q = mean_and_uncertainty(self.sum_nll, self.sum_nll2, self.count);
        let base = mean_and_uncertainty(self.sum_nll_base, self.sum_nll_base2, self.count);
        let cov = covariance(
            self.sum_nll,
            self.sum_nll_base,
            self.sum_nll_nll_base,
            self.count,
        );
        (q, base, cov)
    }

    fn ratio(q: Estimate, base: Estimate, cov: f64) -> Estimate {
        Estimate {
            value: q.value - base.value,
            err: (q.err * q.err + base.err * base.err - 2.0 * cov).sqrt(),
        }
    }

    fn p_diff_rms(&self) -> Estimate {
        let mse = mean_and_uncertainty(self.sum_p_diff2, self.sum_p_diff4, self.count);
        let rms = mse.value.sqrt();
        Estimate {
            value: rms,
            err: 0.5 / rms * mse.err,
        }
    }

    fn same_top(&self) -> Estimate {
        let p = self.n_same_top as f64 / self.count as f64;
        Estimate {
            value: p,
            err: (p * (1.0 - p) / (self.count as f64 - 1.0)).sqrt(),
        }
    }

    /// What llama-perplexity prints after a chunk (counts so far).
    pub fn running(&self) -> Running {
        let (q, base, cov) = self.ln_ppl();
        let ppl = q.value.exp();
        Running {
            count: self.count,
            ppl: Estimate {
                value: ppl,
                err: ppl * q.err,
            },
            ln_ppl_ratio: Self::ratio(q, base, cov),
            kld: mean_and_uncertainty(self.sum_kld, self.sum_kld2, self.count),
            p_diff_rms: self.p_diff_rms(),
            same_top: self.same_top(),
        }
    }

    /// The final statistics; `None` before the first token.
    pub fn summary(&self) -> Option<Summary> {
        if self.count == 0 {
            return None;
        }
        let (q, base, cov) = self.ln_ppl();
        let ppl = q.value.exp();
        let ppl_unc = ppl * q.err;
        let ppl_base = base.value.exp();
        let ppl_base_unc = ppl_base * base.err;
        let ln_ratio = Self::ratio(q, base, cov);
        let ratio = ln_ratio.value.exp();
        let ppl_cov = ppl * ppl_base * cov;
        let mut kv = self.kld_values.clone();
        kv.sort_by(f32::total_cmp);
        let mut pv = self.p_diff_values.clone();
        pv.sort_by(f32::total_cmp);
        let kld_quantiles = vec![
            ("Maximum", kv[kv.len() - 1]),
            ("99.9%", percentile(&kv, 0.999)),
            ("99.0%", percentile(&kv, 0.990)),
            ("95.0%", percentile(&kv, 0.950)),
            ("90.0%", percentile(&kv, 0.900)),
            ("Median", median(&kv)),
            ("10.0%", percentile(&kv, 0.100)),
            ("5.0%", percentile(&kv, 0.050)),
            ("1.0%", percentile(&kv, 0.010)),
            ("0.1%", percentile(&kv, 0.001)),
            ("Minimum", kv[0]),
        ];
        let p_diff_quantiles = vec![
            ("Maximum", pv[pv.len() - 1]),
            ("99.9%", percentile(&pv, 0.999)),
            ("99.0%", percentile(&pv, 0.990)),
            ("95.0%", percentile(&pv, 0.950)),
            ("90.0%", percentile(&pv, 0.900)),
            ("75.0%", percentile(&pv, 0.750)),
            ("Median", median(&pv)),
            ("25.0%", percentile(&pv, 0.250)),
            ("10.0%", percentile(&pv, 0.100)),
            ("5.0%", percentile(&pv, 0.050)),
            ("1.0%", percentile(&pv, 0.010)),
            ("0.1%", percentile(&pv, 0.001)),
            ("Minimum", pv[0]),
        ];
        Some(Summary {
            count: self.count,
            ppl: Estimate {
                value: ppl,
                err: ppl_unc,
            },
            ppl_base: Estimate {
                value: ppl_base,
                err: ppl_base_unc,
            },
            cor_ln_ppl: cov / (q.err * base.err),
            ln_ppl_ratio: ln_ratio,
            ppl_ratio: Estimate {
                value: ratio,
                err: ratio * ln_ratio.err,
            },
            ppl_diff: Estimate {
                value: ppl - ppl_base,
                err: (ppl_unc * ppl_unc + ppl_base_unc * ppl_base_unc - 2.0 * ppl_cov).sqrt(),
            },
            kld: mean_and_uncertainty(self.sum_kld, self.sum_kld2, self.count),
            kld_quantiles,
            p_diff: mean_and_uncertainty(self.sum_p_diff, self.sum_p_diff2, self.count),
            p_diff_quantiles,
            p_diff_rms: self.p_diff_rms(),
            same_top: self.same_top(),
        })
    }
}

/// Refuses two vocabularies that would make the comparison meaningless: KL-divergence compares
/// distributions over the same tokens, so every token's text, the BOS token and whether it is added
/// must agree.
pub fn check_same_vocab(base: &Vocab, other: &Vocab) -> Result<(), ExecError> {
    if base.n_tokens() != other.n_tokens() {
        return Err(ExecError::Input(format!(
            "the models do not share a vocabulary: {} tokens against {}",
            base.n_tokens(),
            other.n_tokens()
        )));
    }
    for id in 0..base.n_tokens() as u32 {
        let (a, b) = (base.token(id), other.token(id));
        let (ta, tb) = (a.map(|t| t.text.as_str()), b.map(|t| t.text.as_str()));
        if ta != tb {
            return Err(ExecError::Input(format!(
                "the models do not share a vocabulary: token {id} is {:?} in the base model and {:?} in the other",
                ta.unwrap_or(""),
                tb.unwrap_or("")
            )));
        }
    }
    if (base.add_bos(), base.bos()) != (other.add_bos(), other.bos()) {
        return Err(ExecError::Input(format!(
            "the models add BOS differently: base {:?} (added: {}), other {:?} (added: {})",
            base.bos(),
            base.add_bos(),
            other.bos(),
            other.add_bos()
        )));
    }
    Ok(())
}

/// The result of [`kl_divergence`].
#[derive(Debug, Clone)]
pub struct KldResult {
    /// The running values after each chunk.
    pub chunks: Vec<Running>,
    pub summary: Summary,
    /// Tokens evaluated (chunks × n_ctx).
    pub n_tokens: usize,
}

/// Compares `other` with `base` over `tokens` (tokenized with BOS, as for perplexity) in chunks of
/// `n_ctx`, at most `max_chunks` of them; `on_chunk` sees the running values after each chunk.
pub fn kl_divergence(
    base: &Weights<'_>,
    other: &Weights<'_>,
    tokens: &[u32],
    n_ctx: usize,
    bos: Option<u32>,
    max_chunks: Option<usize>,
    on_chunk: impl FnMut(&Running),
) -> Result<KldResult, ExecError> {
    let n_vocab = base.hp.n_vocab;
    if other.hp.n_vocab != n_vocab {
        return Err(ExecError::Input(format!(
            "the models do not share a vocabulary: {n_vocab} logits per token against {}",
            other.hp.n_vocab
        )));
    }
    let n_chunk = check_chunks(tokens, n_ctx, n_vocab, max_chunks)?;
    let first = n_ctx / 2;
    let mut s_base = Session::try_new(base, n_ctx)?;
    compare_chunks(
        other,
        tokens,
        n_ctx,
        bos,
        n_chunk,
        |_, chunk, log_probs| {
            s_base.clear();
            let logits = s_base.eval(chunk, n_ctx - first)?;
            for row in logits.chunks_exact(n_vocab).take(n_ctx - 1 - first) {
                log_probs.push(row);
            }
            Ok(())
        },
        on_chunk,
    )
}

/// Compares `other` with the base log-probabilities of a `llama-perplexity --kl-divergence-base`
/// file, over the file's own tokens and chunk size, at most `max_chunks` chunks.
pub fn kl_divergence_from_file(
    base: &LogitsFile<'_>,
    other: &Weights<'_>,
    bos: Option<u32>,
    max_chunks: Option<usize>,
    on_chunk: impl FnMut(&Running),
) -> Result<KldResult, ExecError> {
    if other.hp.n_vocab != base.n_vocab {
        return Err(ExecError::Input(format!(
            "the model does not share the logits file's vocabulary: {} logits per token against {}",
            other.hp.n_vocab, base.n_vocab
        )));
    }
    // The chunk size sizes the KV cache: a file's header must not ask for more than the model runs.
    if base.n_ctx > other.hp.n_ctx_train {
        return Err(ExecError::Input(format!(
            "the logits file's context of {} tokens is longer than the model's training context ({})",
            base.n_ctx, other.hp.n_ctx_train
        )));
    }
    let tokens = base.tokens();
    let n_chunk = base.n_chunk.min(max_chunks.unwrap_or(usize::MAX).max(1));
    if let Some(&t) = tokens.iter().find(|&&t| t as usize >= base.n_vocab) {
        return Err(ExecError::BadToken {
            token: t,
            n_vocab: base.n_vocab,
        });
    }
    compare_chunks(
        other,
        &tokens,
        base.n_ctx,
        bos,
        n_chunk,
        |i, _, log_probs| {
            base.read_chunk(i, log_probs);
            Ok(())
        },
        on_chunk,
    )
}

/// The number of chunks to compare, after checking what perplexity.cpp checks (those of
/// [`chunk_count`], then that every token is in the vocabulary).
fn check_chunks(
    tokens: &[u32],
    n_ctx: usize,
    n_vocab: usize,
    max_chunks: Option<usize>,
) -> Result<usize, ExecError> {
    let n_chunk = chunk_count(tokens.len(), n_ctx, max_chunks)?;
    if let Some(&t) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
        return Err(ExecError::BadToken { token: t, n_vocab });
    }
    Ok(n_chunk)
}

/// The chunk loop shared by both sources of base log-probabilities: `base_chunk(i, chunk, out)`
/// fills `out` with the base's stored log-probabilities of chunk `i`'s scored positions.
fn compare_chunks(
    other: &Weights<'_>,
    tokens: &[u32],
    n_ctx: usize,
    bos: Option<u32>,
    n_chunk: usize,
    mut base_chunk: impl FnMut(usize, &[u32], &mut BaseLogProbs) -> Result<(), ExecError>,
    mut on_chunk: impl FnMut(&Running),
) -> Result<KldResult, ExecError> {
    let n_vocab = other.hp.n_vocab;
    let first = n_ctx / 2;
    let n_scored = n_ctx - 1 - first;
    let mut s_other = Session::try_new(other, n_ctx)?;
    let mut log_probs = BaseLogProbs::new(n_vocab);
    let mut stats = KldStats::new();
    let mut chunks = Vec::with_capacity(n_chunk);
    for i in 0..n_chunk {
        let mut chunk = tokens[i * n_ctx..(i + 1) * n_ctx].to_vec();
        if let Some(b) = bos {
            chunk[0] = b;
        }
        log_probs.clear();
        base_chunk(i, &chunk, &mut log_probs)?;
        debug_assert_eq!(log_probs.len(), n_scored);
        s_other.clear();
        let logits = s_other.eval(&chunk, n_ctx - first)?;
        for (j, row) in logits.chunks_exact(n_vocab).take(n_scored).enumerate() {
            // The next token is the text's, also where the chunk's first token became BOS.
            let next = tokens[i * n_ctx + first + j + 1] as usize;
            stats.add(&token_kld(row, log_probs.row(j), next));
        }
        let r = stats.running();
        on_chunk(&r);
        chunks.push(r);
    }
    let summary = stats
        .summary()
        .ok_or_else(|| ExecError::Input("no token was scored".into()))?;
    Ok(KldResult {
        chunks,
        summary,
        n_tokens: n_chunk * n_ctx,
    })
}

/// What starts a `--kl-divergence-base` file.
pub const LOGITS_MAGIC: &[u8; 8] = b"_logits_";

/// A `llama-perplexity --kl-divergence-base` file (little-endian, as llama.cpp writes it on the
/// machines it runs on): `_logits_`, n_ctx (u32), n_vocab and n_chunk (i32), the n_ctx·n_chunk
/// tokens (i32), then for each chunk its n_ctx−1−n_ctx/2 scored positions, each a row of
/// `2·⌈n_vocab/2⌉ + 4` u16: scale and minimum log-probability (two f32), then the steps.
#[derive(Debug, Clone, Copy)]
pub struct LogitsFile<'a> {
    pub n_ctx: usize,
    pub n_vocab: usize,
    pub n_chunk: usize,
    tokens: &'a [u8],
    rows: &'a [u8],
}

impl<'a> LogitsFile<'a> {
    /// Row length in u16 (`nv` of perplexity.cpp).
    fn row_len(n_vocab: usize) -> usize {
        2 * n_vocab.div_ceil(2) + 4
    }

    /// Checks the header against the file's length before anything is sized by it.
    pub fn parse(b: &'a [u8]) -> Result<LogitsFile<'a>, ExecError> {
        let bad = |m: String| ExecError::Input(format!("not a llama-perplexity logits file: {m}"));
        if b.len() < 20 || &b[..8] != LOGITS_MAGIC {
            return Err(bad(
                "it does not start with _logits_ and a 12-byte header".into()
            ));
        }
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let (n_ctx, n_vocab, n_chunk) = (word(8) as usize, word(12) as i32, word(16) as i32);
        if n_ctx < 4 {
            return Err(bad(format!("n_ctx {n_ctx} at offset 8 is below 4")));
        }
        if n_vocab <= 0 {
            return Err(bad(format!("n_vocab {n_vocab} at offset 12")));
        }
        if n_chunk <= 0 {
            return Err(bad(format!("n_chunk {n_chunk} at offset 16")));
        }
        let (n_vocab, n_chunk) = (n_vocab as usize, n_chunk as usize);
        let n_scored = n_ctx - 1 - n_ctx / 2;
        let need = n_ctx
            .checked_mul(n_chunk)
            .and_then(|t| t.checked_mul(4))
            .and_then(|tok| {
                Self::row_len(n_vocab)
                    .checked_mul(2 * n_scored)
                    .and_then(|r| r.checked_mul(n_chunk))
                    .and_then(|r| r.checked_add(tok))
                    .map(|all| (tok, all))
            });
        match need {
            Some((tok, all)) if all.checked_add(20) == Some(b.len()) => Ok(LogitsFile {
                n_ctx,
                n_vocab,
                n_chunk,
                tokens: &b[20..20 + tok],
                rows: &b[20 + tok..],
            }),
            _ => Err(bad(format!(
                "{} bytes do not hold {n_chunk} chunks of {n_ctx} tokens with {n_vocab} log-probabilities each",
                b.len()
            ))),
        }
    }

    /// The tokens the base was evaluated on (the text's, before any became BOS).
    pub fn tokens(&self) -> Vec<u32> {
        self.tokens
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    /// Puts chunk `i`'s stored log-probabilities into `out` (cleared first).
    pub fn read_chunk(&self, i: usize, out: &mut BaseLogProbs) {
        assert_eq!(out.n_vocab, self.n_vocab);
        let n_scored = self.n_ctx - 1 - self.n_ctx / 2;
        let row_bytes = 2 * Self::row_len(self.n_vocab);
        out.clear();
        let chunk = &self.rows[i * n_scored * row_bytes..(i + 1) * n_scored * row_bytes];
        for row in chunk.chunks_exact(row_bytes) {
            let f =
                |at: usize| f32::from_le_bytes([row[at], row[at + 1], row[at + 2], row[at + 3]]);
            out.heads.push((f(0), f(4)));
            out.q.extend(
                row[8..8 + 2 * self.n_vocab]
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]])),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact KL(p ‖ q) in double from two logit vectors.
    fn exact_kld(base: &[f32], other: &[f32]) -> f64 {
        let lsm = |l: &[f32]| -> Vec<f64> {
            let m = l.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
            let s: f64 = l.iter().map(|&x| (x as f64 - m).exp()).sum();
            l.iter().map(|&x| x as f64 - m - s.ln()).collect()
        };
        let (p, q) = (lsm(base), lsm(other));
        p.iter().zip(&q).map(|(a, b)| a.exp() * (a - b)).sum()
    }

    fn logits(n: usize, seed: u64, spread: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * spread
            })
            .collect()
    }

    fn kld_of(base: &[f32], other: &[f32], tok: usize) -> TokenKld {
        let mut q = vec![0u16; base.len()];
        let (scale, min_log_prob) = compress_log_probs(base, &mut q);
        token_kld(
            other,
            BaseRow {
                scale,
                min_log_prob,
                q: &q,
            },
            tok,
        )
    }

    #[test]
    fn nearest_int_rounds_half_to_even() {
        assert_eq!(nearest_int(0.0), 0);
        assert_eq!(nearest_int(0.4), 0);
        assert_eq!(nearest_int(0.5), 0);
        assert_eq!(nearest_int(1.5), 2);
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(65534.7), 65535);
        assert_eq!(nearest_int(-3.2), -3);
    }

    #[test]
    fn compressed_log_probs_are_within_half_a_step() {
        let l = logits(1000, 7, 30.0);
        let mut q = vec![0u16; l.len()];
        let (scale, min_log_prob) = compress_log_probs(&l, &mut q);
        let row = BaseRow {
            scale,
            min_log_prob,
            q: &q,
        };
        let max = l.iter().copied().fold(f32::MIN, f32::max) as f64;
        let lse = l.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
        // The 16-nat window is 65535 steps.
        assert!((scale - 16.0 / 65535.0).abs() < 1e-9, "{scale}");
        let mut n_kept = 0;
        for (i, &x) in l.iter().enumerate() {
            let exact = x as f64 - max - lse;
            if exact > min_log_prob as f64 + 1e-3 {
                n_kept += 1;
                let d = (row.log_prob(i) as f64 - exact).abs();
                assert!(d <= scale as f64 * 0.5 + 1e-5, "token {i}: {d}");
            } else {
                assert!(row.log_prob(i) <= min_log_prob + scale);
            }
        }
        assert!(n_kept > 400 && n_kept < 1000, "{n_kept}");
    }

    #[test]
    fn identical_logits_diverge_by_nothing() {
        let l = logits(5000, 3, 20.0);
        let t = kld_of(&l, &l, 17);
        // Only the 16-bit storage of the base separates them: |KLD| below a step squared.
        assert!(t.kld.abs() < 1e-6, "{}", t.kld);
        assert!(t.same_top);
        assert!(t.p_diff.abs() < 1e-6, "{}", t.p_diff);
        assert!(
            (t.nll - t.nll_base).abs() < 2e-4,
            "{} {}",
            t.nll,
            t.nll_base
        );
    }

    #[test]
    fn two_token_case_by_hand() {
        // base p = (1/4, 3/4), other q = (1/2, 1/2):
        // KL = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.130812...
        let base = [0.0f32, 3f32.ln()];
        let other = [0.0f32, 0.0];
        let want = 0.25 * 0.5f64.ln() + 0.75 * 1.5f64.ln();
        let t = kld_of(&base, &other, 0);
        assert!((t.kld - want).abs() < 1e-4, "{} vs {want}", t.kld);
        assert!((t.kld - exact_kld(&base, &other)).abs() < 1e-4);
        // Top token: base 1; other ties at 0 and 1, the first wins.
        assert!(!t.same_top);
        // Scored token 0: p_other 1/2, p_base 1/4.
        assert!((t.p_diff - 0.25).abs() < 1e-4, "{}", t.p_diff);
        assert!((t.nll - 2f32.ln()).abs() < 1e-6);
        assert!((t.nll_base - 4f32.ln()).abs() < 1e-3);
    }

    #[test]
    fn kld_follows_the_exact_value_on_random_logits() {
        for seed in 0..5 {
            let a = logits(4096, seed, 12.0);
            let noise = logits(4096, seed + 100, 1.0);
            let b: Vec<f32> = a.iter().zip(&noise).map(|(x, n)| x + n).collect();
            let t = kld_of(&a, &b, 5);
            let e = exact_kld(&a, &b);
            assert!(e > 1e-3);
            // Differences: the 16-bit steps and the tokens below e^-16 left out.
            assert!((t.kld - e).abs() < 1e-3 * e + 1e-5, "{} vs {e}", t.kld);
            assert!(t.kld > 0.0);
        }
    }

    #[test]
    fn statistics_of_known_values() {
        let e = mean_and_uncertainty(10.0, 30.0, 5);
        // mean 2; too few values for an error estimate.
        assert_eq!(
            e,
            Estimate {
                value: 2.0,
                err: 0.0
            }
        );
        // 1..=20: mean 10.5, population variance 33.25, standard error sqrt(33.25/19).
        let (s, s2) = (1..=20).fold((0.0, 0.0), |(a, b), x| (a + x as f64, b + (x * x) as f64));
        let e = mean_and_uncertainty(s, s2, 20);
        assert!((e.value - 10.5).abs() < 1e-12);
        assert!((e.err - (33.25f64 / 19.0).sqrt()).abs() < 1e-12);
        assert_eq!(covariance(1.0, 1.0, 1.0, 9), 0.0);
        let v: Vec<f32> = (0..=100).map(|x| x as f32).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.999), 99.9);
        assert_eq!(percentile(&v, 0.0), 0.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[1.0, 3.0], 0.25), 1.5);
        assert_eq!(median(&[1.0, 2.0, 4.0, 8.0]), 3.0);
        assert_eq!(median(&[1.0, 2.0, 4.0]), 2.0);
    }

    #[test]
    fn accumulated_summary() {
        let mut st = KldStats::new();
        let base = logits(512, 11, 10.0);
        for k in 0..200u64 {
            let noise = logits(512, 1000 + k, 0.1);
            let other: Vec<f32> = base.iter().zip(&noise).map(|(a, n)| a + n).collect();
            st.add(&kld_of(&base, &other, (k * 7 % 512) as usize));
        }
        let s = st.summary().unwrap();
        assert_eq!(s.count, 200);
        assert!(s.kld.value > 0.0 && s.kld.err > 0.0);
        let q = |name| s.kld_quantiles.iter().find(|(n, _)| *n == name).unwrap().1;
        assert!(q("Minimum") <= q("1.0%") && q("1.0%") <= q("Median"));
        assert!(q("Median") <= q("99.0%") && q("99.0%") <= q("Maximum"));
        assert!((s.ppl_ratio.value - s.ln_ppl_ratio.value.exp()).abs() < 1e-12);
        assert!((s.ppl.value / s.ppl_base.value - s.ppl_ratio.value).abs() < 1e-9);
        assert!(
            s.same_top.value > 0.5 && s.same_top.value <= 1.0,
            "{:?}",
            s.same_top
        );
        assert_eq!(st.running().kld, s.kld);
        assert!(KldStats::new().summary().is_none());
    }
}
