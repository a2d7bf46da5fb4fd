//! How far one weight matrix, quantized, moves a model's next-token distributions: the mean
//! KL-divergence over a short text between the model as it is and the model with that matrix
//! replaced by other bytes (another type). What `pocket requantize --target-size --measure` uses to
//! put each tensor's quantization error on one scale.
//!
//! The base distributions are kept as f32 log-probabilities (not llama-perplexity's 16-bit form),
//! so that the divergence one tensor causes, often 1e-5 or less, is not lost in their rounding.

use super::dot::Mat;
use super::forward::Session;
use super::model::Weights;
use super::ExecError;
use crate::gguf::GgmlType;

/// A model and its distributions over a text, to compare variants of it with.
pub struct Probe<'w, 'a> {
    w: &'w Weights<'a>,
    tokens: Vec<u32>,
    /// Positions scored: the second half of the text, as perplexity scores a chunk.
    first: usize,
    /// log p at each scored position (n_vocab each).
    base: Vec<f32>,
}

/// log-softmax of `logits` into `out`, in f64 for the normaliser.
fn log_softmax(logits: &[f32], out: &mut [f32]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let norm = max as f64 + sum.ln();
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = (l as f64 - norm) as f32;
    }
}

impl<'w, 'a> Probe<'w, 'a> {
    /// Runs the model over `tokens` (BOS included when the model wants one) and keeps its
    /// distributions at the second half of the positions.
    pub fn new(w: &'w Weights<'a>, tokens: &[u32]) -> Result<Probe<'w, 'a>, ExecError> {
        let n = tokens.len();
        if n < 4 {
            return Err(ExecError::Input(format!(
                "the probe text has {n} tokens; at least 4 are needed"
            )));
        }
        let first = n / 2;
        let n_vocab = w.hp.n_vocab;
        let mut s = Session::try_new(w, n)?;
        let logits = s.eval(tokens, n - first)?;
        let mut base = vec![0f32; logits.len()];
        for (o, l) in base
            .chunks_exact_mut(n_vocab)
            .zip(logits.chunks_exact(n_vocab))
        {
            log_softmax(l, o);
        }
        Ok(Probe {
            w,
            tokens: tokens.to_vec(),
            first,
            base,
        })
    }

    /// Positions scored.
    pub fn n_scored(&self) -> usize {
        self.tokens.len() - self.first
    }

    /// The mean KL(base ‖ variant) over the scored positions of the model with the matrix `name`
    /// replaced by `data`, `ty` values of the same shape.
    pub fn kld_with(&self, name: &str, ty: GgmlType, data: &[u8]) -> Result<f64, ExecError> {
        let mut w: Weights<'_> = self.w.clone();
        // The matrices of that name may be row ranges of it (a fused attn_qkv's Q, K and V): each
        // gets the same rows of the new bytes. The range starting first starts at row 0.
        let mut base = usize::MAX;
        w.for_each_mat_mut(|m: &mut Mat<'_>| {
            if m.name == name {
                base = base.min(m.data.as_ptr() as usize);
            }
        });
        let mut found = false;
        let mut bad = None;
        w.for_each_mat_mut(|m: &mut Mat<'_>| {
            if m.name != name {
                return;
            }
            found = true;
            let r0 = (m.data.as_ptr() as usize - base) / m.row_bytes.max(1);
            let row_bytes = ty.bytes_for(m.cols as u64).unwrap_or(0) as usize;
            let range = r0 * row_bytes..(r0 + m.rows) * row_bytes;
            match data.get(range) {
                Some(d) if row_bytes > 0 => {
                    *m = Mat {
                        name: m.name,
                        ty,
                        data: d,
                        cols: m.cols,
                        rows: m.rows,
                        row_bytes,
                    }
                }
                _ => {
                    bad = Some(format!(
                        "{name}: {} bytes of {} do not hold rows {r0}..{} of {} values",
                        data.len(),
                        ty.name,
                        r0 + m.rows,
                        m.cols
                    ))
                }
            }
        });
        if let Some(msg) = bad {
            return Err(ExecError::Input(msg));
        }
        if !found {
            return Err(ExecError::Input(format!(
                "{name}: not a matrix the executor multiplies by"
            )));
        }
        self.kld_of(&w)
    }

    /// The mean KL(base ‖ `w`) over the scored positions (`w` a variant of the base model).
    pub fn kld_of(&self, w: &Weights<'_>) -> Result<f64, ExecError> {
        let n = self.tokens.len();
        let n_vocab = self.w.hp.n_vocab;
        let mut s = Session::try_new(w, n)?;
        let logits = s.eval(&self.tokens, n - self.first)?;
        let mut lp = vec![0f32; n_vocab];
        let mut total = 0f64;
        let rows = logits
            .chunks_exact(n_vocab)
            .zip(self.base.chunks_exact(n_vocab));
        let mut count = 0usize;
        for (l, b) in rows {
            log_softmax(l, &mut lp);
            let kl: f64 = b
                .iter()
                .zip(&lp)
                .map(|(&pb, &po)| (pb as f64).exp() * (pb as f64 - po as f64))
                .sum();
            total += kl.max(0.0);
            count += 1;
        }
        Ok(total / count.max(1) as f64)
    }
}
