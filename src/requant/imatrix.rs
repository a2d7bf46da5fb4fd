//! Importance matrices in llama-imatrix's GGUF format (`common_imatrix_load` and llama-quantize's
//! `load_imatrix` / `prepare_imatrix`): for each weight `NAME`, an F32 tensor `NAME.in_sum2` of summed
//! squared activations (row length × experts) and `NAME.counts` (one count per expert); metadata
//! `imatrix.datasets`, `imatrix.chunk_count`, `imatrix.chunk_size`. The values used are the sums
//! divided by the rounded counts (1 where a count is 0), in f32 as llama-quantize computes them.

use std::collections::HashMap;
use std::path::Path;

use super::RequantError;
use crate::gguf::spec::{TypeId, ValueType};
use crate::gguf::{GgufFile, Value};

/// A loaded importance matrix.
#[derive(Debug, Clone, Default)]
pub struct Imatrix {
    /// Weight name → importance of each column (row length × experts).
    pub entries: HashMap<String, Vec<f32>>,
    pub datasets: Vec<String>,
    pub chunk_count: u32,
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

impl Imatrix {
    /// Reads a GGUF importance matrix. (llama.cpp also reads an older binary `.dat` layout; pocket
    /// does not.)
    pub fn load(path: &Path) -> Result<Imatrix, RequantError> {
        let err = |m: String| RequantError::Imatrix {
            path: path.display().to_string(),
            message: m,
        };
        let file = GgufFile::open(path)?;
        let g = file.gguf().map_err(|e| {
            err(format!(
                "not a GGUF importance matrix ({e}); the legacy .dat format is not supported"
            ))
        })?;
        if g.tensors.is_empty() {
            return Err(err("no data (no tensors)".into()));
        }
        let datasets_kv = g.get("imatrix.datasets");
        let chunk_count = g.get("imatrix.chunk_count");
        let chunk_size = g.get("imatrix.chunk_size");
        if datasets_kv.is_none() || chunk_count.is_none() || chunk_size.is_none() {
            return Err(err(
                "missing imatrix metadata (imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size)"
                    .into(),
            ));
        }
        let mut datasets = Vec::new();
        if let Some(Value::Array(a)) = datasets_kv {
            if a.elem_type == ValueType::String {
                datasets.extend(a.strings().map(str::to_string));
            }
        }
        let chunk_count = match chunk_count {
            Some(Value::U32(n)) => *n,
            _ => return Err(err("imatrix.chunk_count is not a u32".into())),
        };
        let mut sums: HashMap<&str, &crate::gguf::TensorInfo<'_>> = HashMap::new();
        let mut counts: HashMap<&str, &crate::gguf::TensorInfo<'_>> = HashMap::new();
        for t in &g.tensors {
            if let Some(n) = t.name.strip_suffix(".in_sum2") {
                sums.insert(n, t);
            } else if let Some(n) = t.name.strip_suffix(".counts") {
                counts.insert(n, t);
            }
        }
        let mut names: Vec<&str> = sums.keys().chain(counts.keys()).copied().collect();
        names.sort_unstable();
        names.dedup();
        let mut entries = HashMap::new();
        for name in names {
            let (Some(s), Some(c)) = (sums.get(name), counts.get(name)) else {
                return Err(err(format!("mismatched sums and counts for {name}")));
            };
            if s.ty.id != TypeId::F32 || c.ty.id != TypeId::F32 {
                return Err(err(format!("sums and counts for {name} must be F32")));
            }
            let sums = f32s(g.tensor_data(s).unwrap_or(&[]));
            let counts: Vec<i64> = f32s(g.tensor_data(c).unwrap_or(&[]))
                .into_iter()
                .map(|x| x.round() as i64)
                .collect();
            if counts.is_empty() || !sums.len().is_multiple_of(counts.len()) {
                return Err(err(format!(
                    "{name}: {} sums do not split into {} experts",
                    sums.len(),
                    counts.len()
                )));
            }
            let ne0 = sums.len() / counts.len();
            let mut e = vec![0f32; sums.len()];
            for (j, &count) in counts.iter().enumerate() {
                let count = count as f32;
                for i in 0..ne0 {
                    e[j * ne0 + i] = if count > 0.0 {
                        sums[j * ne0 + i] / count
                    } else {
                        1.0
                    };
                }
            }
            entries.insert(name.to_string(), e);
        }
        Ok(Imatrix {
            entries,
            datasets,
            chunk_count,
        })
    }

    /// `--exclude-weights` (drop entries whose name contains any of these) then `--include-weights`
    /// (keep only entries whose name contains one of these), as `prepare_imatrix` does.
    pub fn filter(&mut self, include: &[String], exclude: &[String]) {
        if !exclude.is_empty() {
            self.entries
                .retain(|k, _| !exclude.iter().any(|x| k.contains(x.as_str())));
        }
        if !include.is_empty() {
            self.entries
                .retain(|k, _| include.iter().any(|x| k.contains(x.as_str())));
        }
    }

    /// llama-quantize refuses an importance matrix holding a NaN or an infinity.
    pub fn check_finite(&self, path: &Path) -> Result<(), RequantError> {
        for (k, v) in &self.entries {
            if let Some(x) = v.iter().find(|x| !x.is_finite()) {
                return Err(RequantError::Imatrix {
                    path: path.display().to_string(),
                    message: format!("entry {k} contains the non-finite value {x}"),
                });
            }
        }
        Ok(())
    }
}
