//! `--ctx N` output: the library's memory estimate as a table or JSON.

use pocket::compute_buffer::ComputeEstimate;
use pocket::gguf::Gguf;
use pocket::memory::{estimate, MemoryError, MemoryEstimate};
use serde_json::{json, Value as J};

use crate::fmt::{bytes, table};
use crate::inspect::ErrorFacts;

/// The weights and KV cache, and the compute and output buffers llama.cpp adds to them.
pub struct Report(pub MemoryEstimate, pub ComputeEstimate);

pub fn estimate_for(g: &Gguf<'_>, weights_bytes: u64, n_ctx: u64) -> Result<Report, MemoryError> {
    let m = estimate(g, weights_bytes, n_ctx)?;
    let c = pocket::compute_buffer::estimate(g, &m, None);
    Ok(Report(m, c))
}

impl ErrorFacts for MemoryError {
    fn kind(&self) -> &'static str {
        "memory_estimate"
    }
    fn offset(&self) -> Option<u64> {
        None
    }
}

impl Report {
    pub fn to_json(&self) -> J {
        let (m, c) = (&self.0, &self.1);
        json!({
            "n_ctx": m.n_ctx, "weights_bytes": m.weights_bytes, "kv_bytes": m.kv_bytes,
            "kv_full_bytes": m.kv_full_bytes, "kv_swa_bytes": m.kv_swa_bytes,
            "recurrent_state_bytes": m.recurrent_state_bytes, "n_layers": m.n_layers,
            "n_layers_swa": m.n_layers_swa, "n_layers_kv": m.n_layers_kv,
            "swa_cache_cells": m.swa_cache_cells, "total_bytes": m.total_bytes,
            "compute_bytes": c.compute_bytes, "output_bytes": c.output_bytes,
            "n_ubatch": c.n_ubatch, "n_tokens_reserved": c.n_tokens,
            "total_with_buffers_bytes": m.total_bytes.saturating_add(c.compute_bytes).saturating_add(c.output_bytes),
            "notes": m.notes.iter().chain(&c.notes).collect::<Vec<_>>(),
        })
    }

    pub fn render(&self) -> String {
        let (m, c) = (&self.0, &self.1);
        let mut t = table(&["memory at context", &m.n_ctx.to_string()]);
        t.add_row(vec!["weights".to_string(), bytes(m.weights_bytes)]);
        let layers = if m.n_layers_swa > 0 {
            format!(
                "{} ({} layers full attention, {} sliding-window with {} cells)",
                bytes(m.kv_bytes),
                m.n_layers_kv - m.n_layers_swa.min(m.n_layers_kv),
                m.n_layers_swa,
                m.swa_cache_cells
            )
        } else {
            format!("{} ({} layers)", bytes(m.kv_bytes), m.n_layers_kv)
        };
        t.add_row(vec!["KV cache (f16)".to_string(), layers]);
        if m.recurrent_state_bytes > 0 {
            t.add_row(vec![
                "recurrent state".to_string(),
                bytes(m.recurrent_state_bytes),
            ]);
        }
        t.add_row(vec![
            "total (without compute buffers)".to_string(),
            bytes(m.total_bytes),
        ]);
        t.add_row(vec![
            format!("compute buffer ({}-token batch)", c.n_tokens),
            bytes(c.compute_bytes),
        ]);
        t.add_row(vec!["output buffer".to_string(), bytes(c.output_bytes)]);
        t.add_row(vec![
            "total with buffers".to_string(),
            bytes(m.total_bytes + c.compute_bytes + c.output_bytes),
        ]);
        let mut s = t.to_string();
        for n in m.notes.iter().chain(&c.notes) {
            s.push_str("\nnote: ");
            s.push_str(n);
        }
        s
    }
}
