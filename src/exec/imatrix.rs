//! The importance matrix `llama-imatrix` computes (`tools/imatrix/imatrix.cpp`): the text is
//! tokenized with BOS and cut into chunks of `n_ctx` tokens exactly as llama-perplexity cuts it
//! (a chunk's first token replaced by BOS when the vocabulary adds one), every chunk is evaluated
//! whole, and for every weight matrix product of the blocks (`blk.*`, plus `output.weight` with
//! `process_output`) the squares of its input activations are summed per input column, in f32 and
//! token order as its callback sums them, with one count per matrix of the rows seen. Written in
//! its GGUF layout: `general.type = imatrix`, `imatrix.datasets`, `imatrix.chunk_count`,
//! `imatrix.chunk_size`, and per weight `NAME.in_sum2` (F32, the row length) and `NAME.counts`
//! (F32, one value), tensors sorted by name.
//!
//! Two differences from llama-imatrix, by design or by scope: the executor runs no
//! mixture-of-experts models (llama's `MUL_MAT_ID` path, one count per expert, is not needed), and
//! pocket counts every token, where llama-imatrix skips a micro-batch of fewer than 16 rows — which
//! its batching (2048-token batches, 512-token micro-batches, several chunks per batch when they
//! fit) makes only for a few context sizes (a chunk whose tail after whole micro-batches is 1 to 15
//! tokens long, such as `-c 2049`).

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::dot::Mat;
use super::forward::Session;
use super::model::Weights;
use super::perplexity::chunk_count;
use super::ExecError;
use crate::gguf::spec::{ggml_type_by_name, Endian, ValueType};
use crate::gguf::write::{array_from_encoded, encode_array};
use crate::gguf::{GgufWriter, TensorSpec, Value};

/// One matrix's statistics: the sum of squared inputs per column and the rows seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub in_sum2: Vec<f32>,
    pub count: u64,
}

/// The collected importance matrix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Imatrix {
    /// Weight name → its statistics, in name order (the order of the file).
    pub entries: BTreeMap<String, Entry>,
    /// Tokens per chunk (`imatrix.chunk_size`).
    pub chunk_size: usize,
}

/// Whether llama-imatrix collects the input of a product with this weight: the blocks' matrices,
/// and the output matrix only when asked (`--process-output`; a tied output is `token_embd.weight`,
/// which it never collects).
pub fn collects(name: &str, process_output: bool) -> bool {
    name.starts_with("blk.") || (process_output && name == "output.weight")
}

impl Imatrix {
    pub fn new(chunk_size: usize) -> Imatrix {
        Imatrix {
            entries: BTreeMap::new(),
            chunk_size,
        }
    }

    /// Adds the rows `x` (each `m.cols` values) of the input of a product with `m`.
    pub fn add(&mut self, m: &Mat<'_>, x: &[f32]) -> Result<(), ExecError> {
        let cols = m.cols;
        if cols == 0 || x.is_empty() {
            return Ok(());
        }
        let e = self
            .entries
            .entry(m.name.to_string())
            .or_insert_with(|| Entry {
                in_sum2: vec![0.0; cols],
                count: 0,
            });
        if e.in_sum2.len() != cols || !x.len().is_multiple_of(cols) {
            return Err(ExecError::Input(format!(
                "{}: inconsistent input width ({} values, rows of {})",
                m.name,
                x.len(),
                e.in_sum2.len()
            )));
        }
        for row in x.chunks_exact(cols) {
            for (a, &v) in e.in_sum2.iter_mut().zip(row) {
                *a += v * v;
            }
        }
        e.count += (x.len() / cols) as u64;
        if let Some(v) = e.in_sum2.iter().find(|v| !v.is_finite()) {
            return Err(ExecError::Input(format!(
                "{}: the sum of squared activations is not finite ({v}); the model overflows on this text",
                m.name
            )));
        }
        Ok(())
    }

    /// `imatrix.chunk_count` as llama-imatrix writes it: the most rows any matrix saw, in chunks.
    pub fn chunk_count(&self) -> u32 {
        let max = self.entries.values().map(|e| e.count).max().unwrap_or(0);
        (max / self.chunk_size.max(1) as u64).min(u32::MAX as u64) as u32
    }

    /// The GGUF file llama-imatrix's `save_imatrix` writes (GGUF v3, alignment 32, keys and
    /// tensors in its order), naming `datasets` (the text files, as given).
    pub fn write_gguf<W: Write>(&self, out: &mut W, datasets: &[&str]) -> io::Result<u64> {
        let e = Endian::Little;
        let strs: Vec<Value<'_>> = datasets.iter().map(|s| Value::String(s)).collect();
        let raw = encode_array(ValueType::String, &strs, e);
        let f32t = ggml_type_by_name("f32").expect("f32 is a ggml type");
        let mut w = GgufWriter::new(e);
        w.set("general.type", Value::String("imatrix"));
        w.set(
            "imatrix.datasets",
            Value::Array(array_from_encoded(
                ValueType::String,
                strs.len() as u64,
                &raw,
                e,
            )),
        );
        w.set("imatrix.chunk_count", Value::U32(self.chunk_count()));
        w.set(
            "imatrix.chunk_size",
            Value::U32(self.chunk_size.min(u32::MAX as usize) as u32),
        );
        let names: Vec<(String, String)> = self
            .entries
            .keys()
            .map(|k| (format!("{k}.in_sum2"), format!("{k}.counts")))
            .collect();
        // `ggml_n_dims`: a [cols, 1] tensor is written with one dimension.
        for ((s, c), entry) in names.iter().zip(self.entries.values()) {
            w.tensors.push(TensorSpec {
                name: s,
                dims: vec![entry.in_sum2.len() as u64],
                ty: f32t,
            });
            w.tensors.push(TensorSpec {
                name: c,
                dims: vec![1],
                ty: f32t,
            });
        }
        let entries: Vec<&Entry> = self.entries.values().collect();
        w.write(out, |i, o| {
            let entry = entries[i / 2];
            if i % 2 == 0 {
                let mut b = Vec::with_capacity(entry.in_sum2.len() * 4);
                entry
                    .in_sum2
                    .iter()
                    .for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
                o.write_all(&b)
            } else {
                o.write_all(&(entry.count as f32).to_le_bytes())
            }
        })
    }
}

/// Collects the importance matrix of `tokens` (tokenized with BOS, as llama-imatrix does) in
/// chunks of `n_ctx`, at most `max_chunks` of them; `on_chunk` is told after each chunk.
pub fn imatrix(
    w: &Weights<'_>,
    tokens: &[u32],
    n_ctx: usize,
    bos: Option<u32>,
    max_chunks: Option<usize>,
    process_output: bool,
    mut on_chunk: impl FnMut(usize),
) -> Result<Imatrix, ExecError> {
    let n_chunk = chunk_count(tokens.len(), n_ctx, max_chunks)?;
    let mut sess = Session::try_new(w, n_ctx)?;
    let mut im = Imatrix::new(n_ctx);
    let mut failed: Option<ExecError> = None;
    for i in 0..n_chunk {
        let mut chunk = tokens[i * n_ctx..(i + 1) * n_ctx].to_vec();
        if let Some(b) = bos {
            chunk[0] = b;
        }
        sess.clear();
        // llama-imatrix asks for every token's logits; only the output matrix's statistics need
        // them, so without `process_output` one is enough (the layers see every token either way).
        let n_out = if process_output { n_ctx } else { 1 };
        let mut observe = |m: &Mat<'_>, x: &[f32]| {
            if failed.is_none() && collects(m.name, process_output) {
                if let Err(e) = im.add(m, x) {
                    failed = Some(e);
                }
            }
        };
        sess.eval_observed(&chunk, n_out, &mut observe)?;
        if let Some(e) = failed.take() {
            return Err(e);
        }
        on_chunk(i + 1);
    }
    Ok(im)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::spec::ggml_type_by_name;

    fn mat(name: &str, cols: usize) -> Mat<'_> {
        Mat {
            name,
            ty: ggml_type_by_name("f32").unwrap(),
            data: &[],
            cols,
            rows: 0,
            row_bytes: 0,
        }
    }

    #[test]
    fn sums_squares_per_column_and_counts_rows() {
        let mut im = Imatrix::new(2);
        let m = mat("blk.0.ffn_up.weight", 3);
        im.add(&m, &[1.0, 2.0, -3.0, 0.5, 0.0, 1.0]).unwrap();
        im.add(&m, &[2.0, 0.0, 0.0]).unwrap();
        let e = &im.entries["blk.0.ffn_up.weight"];
        assert_eq!(e.in_sum2, vec![5.25, 4.0, 10.0]);
        assert_eq!(e.count, 3);
        assert_eq!(im.chunk_count(), 1);
    }

    #[test]
    fn refuses_a_width_change_and_non_finite_sums() {
        let mut im = Imatrix::new(2);
        im.add(&mat("blk.0.a", 2), &[1.0, 1.0]).unwrap();
        assert!(im.add(&mat("blk.0.a", 3), &[1.0, 1.0, 1.0]).is_err());
        let err = im.add(&mat("blk.0.b", 1), &[f32::MAX]).unwrap_err();
        assert!(err.to_string().contains("blk.0.b"), "{err}");
    }

    #[test]
    fn collects_what_llama_imatrix_collects() {
        assert!(collects("blk.3.attn_q.weight", false));
        assert!(!collects("output.weight", false));
        assert!(collects("output.weight", true));
        assert!(!collects("token_embd.weight", true));
    }
}
