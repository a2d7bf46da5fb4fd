//! Perplexity the way `llama-perplexity` computes it (`tools/perplexity/perplexity.cpp`): the text is
//! tokenized with BOS, cut into chunks of `n_ctx` tokens (a chunk's first token replaced by BOS when
//! the vocabulary adds one), and in each chunk only the tokens of the second half are scored, each by
//! the logits of the token before it.

use super::forward::Session;
use super::model::Weights;
use super::ExecError;

/// One chunk's result.
#[derive(Debug, Clone)]
pub struct ChunkResult {
    /// Sum of the negative log-likelihoods of its scored tokens.
    pub nll: f64,
    pub nll2: f64,
    pub count: usize,
    /// Perplexity of all chunks so far (what llama-perplexity prints as `[i]value`).
    pub ppl_so_far: f64,
}

/// The final estimate.
#[derive(Debug, Clone)]
pub struct PplResult {
    pub chunks: Vec<ChunkResult>,
    pub ppl: f64,
    /// Standard error of the estimate, as llama-perplexity prints it after `+/-`.
    pub ppl_err: f64,
    pub n_tokens: usize,
}

/// `log_softmax` of perplexity.cpp: -log p(tok) with the sum of exponentials in double.
pub fn nll_of(logits: &[f32], tok: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f64;
    for &l in logits {
        sum += (l - max).exp() as f64;
    }
    -((logits[tok] - max) as f64 - sum.ln())
}

/// The chunks of `n_ctx` tokens llama-perplexity scores in `n_tokens` tokens, at most
/// `max_chunks`, after its checks: a context of at least 4 tokens and text for two chunks.
pub(crate) fn chunk_count(
    n_tokens: usize,
    n_ctx: usize,
    max_chunks: Option<usize>,
) -> Result<usize, ExecError> {
    if n_ctx < 4 {
        return Err(ExecError::Input(format!(
            "context of {n_ctx} tokens is too small"
        )));
    }
    if n_tokens < 2 * n_ctx {
        return Err(ExecError::Input(format!(
            "the text tokenizes to {n_tokens} tokens; a context of {n_ctx} needs at least {}",
            2 * n_ctx
        )));
    }
    let n_chunk = n_tokens / n_ctx;
    Ok(match max_chunks {
        Some(m) => n_chunk.min(m.max(1)),
        None => n_chunk,
    })
}

/// Scores `tokens` (already tokenized with BOS, as llama-perplexity does) in chunks of `n_ctx`,
/// at most `max_chunks` of them; `on_chunk` sees each chunk's result as it is done.
pub fn perplexity(
    w: &Weights<'_>,
    tokens: &[u32],
    n_ctx: usize,
    bos: Option<u32>,
    max_chunks: Option<usize>,
    mut on_chunk: impl FnMut(&ChunkResult),
) -> Result<PplResult, ExecError> {
    let n_chunk = chunk_count(tokens.len(), n_ctx, max_chunks)?;
    let first = n_ctx / 2;
    let n_vocab = w.hp.n_vocab;
    let mut sess = Session::try_new(w, n_ctx)?;
    let (mut nll, mut nll2, mut count) = (0f64, 0f64, 0usize);
    let mut chunks = Vec::with_capacity(n_chunk);
    for i in 0..n_chunk {
        let mut chunk = tokens[i * n_ctx..(i + 1) * n_ctx].to_vec();
        if let Some(b) = bos {
            chunk[0] = b;
        }
        sess.clear();
        // Logits are needed from position `first` on.
        let logits = sess.eval(&chunk, n_ctx - first)?;
        let (mut c_nll, mut c_nll2) = (0f64, 0f64);
        for j in first..n_ctx - 1 {
            let row = &logits[(j - first) * n_vocab..(j - first + 1) * n_vocab];
            let v = nll_of(row, chunk[j + 1] as usize);
            c_nll += v;
            c_nll2 += v * v;
        }
        nll += c_nll;
        nll2 += c_nll2;
        count += n_ctx - first - 1;
        let r = ChunkResult {
            nll: c_nll,
            nll2: c_nll2,
            count: n_ctx - first - 1,
            ppl_so_far: (nll / count as f64).exp(),
        };
        on_chunk(&r);
        chunks.push(r);
    }
    let mean = nll / count as f64;
    let ppl = mean.exp();
    let var = nll2 / count as f64 - mean * mean;
    let ppl_err = if var > 0.0 && count > 1 {
        (var / (count - 1) as f64).sqrt() * ppl
    } else {
        0.0
    };
    Ok(PplResult {
        chunks,
        ppl,
        ppl_err,
        n_tokens: n_chunk * n_ctx,
    })
}
