//! The calibration table (`calibration.tsv`: published measurements of decode and prefill speed
//! and memory on phones, each row with its source) and the speed model fitted to it.
//!
//! Each row names a model whose header is built in (`calib/*.f16.header.gguf`, written by
//! `scripts/make-header.py` from the model's published configuration) and a quantization: pocket
//! derives the quantized file's tensor types from the F16 header with its port of llama-quantize's
//! choices ([`crate::requant::plan`]), so the bytes a token reads and the memory llama.cpp
//! allocates are computed, not copied from the source. ExecuTorch's 4-bit schemes are mapped to
//! the nearest GGUF layout (see [`quant_params`]).
//!
//! The speed model: decoding reads every weight once per token (one row of an untied token
//! embedding) and the filled part of the KV cache; a phone and backend stream those bytes at an
//! effective share of the peak bandwidth that depends on the weight type (4-bit decode is partly
//! compute-bound on phone cores, 8-bit is not). The share is fitted per (phone, backend, weight
//! class) as the median of `measured tokens/s × bytes per token ÷ peak bandwidth` over the table;
//! where the table has no such group, the (phone, backend) median, then the backend's across
//! phones, then [`device::BANDWIDTH_EFFICIENCY`]. [`leave_one_out`] predicts each row from a model
//! fitted without it.

use std::collections::HashMap;
use std::fmt;

use super::device::{self, DeviceProfile};
use crate::gguf::spec::{self, GgmlType};
use crate::gguf::Gguf;
use crate::requant::ftype::Ftype;
use crate::requant::plan::{self, weight_order, ModelInfo, Params, TensorDesc};

/// The table, as committed.
pub const TABLE: &str = include_str!("calibration.tsv");

/// The built-in model headers (F16, no tensor data), by the name the table uses.
pub const HEADERS: &[(&str, &[u8])] = &[
    (
        "qwen2.5-1.5b",
        include_bytes!("calib/qwen2.5-1.5b.f16.header.gguf"),
    ),
    (
        "deepseek-r1-distill-qwen-1.5b",
        include_bytes!("calib/deepseek-r1-distill-qwen-1.5b.f16.header.gguf"),
    ),
    (
        "qwen3-1.7b",
        include_bytes!("calib/qwen3-1.7b.f16.header.gguf"),
    ),
    (
        "gemma-3-1b",
        include_bytes!("calib/gemma-3-1b.f16.header.gguf"),
    ),
    (
        "smollm2-1.7b",
        include_bytes!("calib/smollm2-1.7b.f16.header.gguf"),
    ),
    (
        "phi-3.5-mini",
        include_bytes!("calib/phi-3.5-mini.f16.header.gguf"),
    ),
    (
        "phi-4-mini",
        include_bytes!("calib/phi-4-mini.f16.header.gguf"),
    ),
    (
        "llama-3.2-1b",
        include_bytes!("calib/llama-3.2-1b.f16.header.gguf"),
    ),
    (
        "llama-3.2-3b",
        include_bytes!("calib/llama-3.2-3b.f16.header.gguf"),
    ),
    (
        "llama-3-8b",
        include_bytes!("calib/llama-3-8b.f16.header.gguf"),
    ),
    (
        "llama-2-7b",
        include_bytes!("calib/llama-2-7b.f16.header.gguf"),
    ),
];

/// One measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Line in `calibration.tsv` (1-based).
    pub line: usize,
    pub model: String,
    pub quant: String,
    /// A built-in device profile id.
    pub device: String,
    pub soc: String,
    pub backend: String,
    pub n_ctx: u64,
    pub decode_tps: Option<f64>,
    pub prefill_tps: Option<f64>,
    pub prompt_tokens: Option<u64>,
    pub mem_mib: Option<f64>,
    /// What `mem_mib` measures: `llama.cpp-buffers` or `rss`.
    pub mem_kind: String,
    pub weights_mib: Option<f64>,
    /// false: the model did not load on the phone.
    pub loaded: bool,
    pub source: String,
    pub place: String,
}

/// A table row that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    pub line: usize,
    pub what: String,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "calibration.tsv line {}: {}", self.line, self.what)
    }
}

impl std::error::Error for TableError {}

/// Parses a calibration table (`#` comments, a header line, 15 tab-separated columns).
pub fn parse(text: &str) -> Result<Vec<Row>, TableError> {
    let mut rows = Vec::new();
    let mut header_seen = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !header_seen {
            header_seen = true;
            continue;
        }
        let c: Vec<&str> = line.split('\t').collect();
        let err = |what: String| TableError { line: n, what };
        if c.len() != 15 {
            return Err(err(format!("{} columns, expected 15", c.len())));
        }
        let num = |k: usize, name: &str| -> Result<Option<f64>, TableError> {
            if c[k].is_empty() {
                return Ok(None);
            }
            c[k].parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .map(Some)
                .ok_or_else(|| err(format!("{name} '{}' is not a positive number", c[k])))
        };
        let loaded = match c[12] {
            "ok" => true,
            "load-failed" => false,
            s => return Err(err(format!("status '{s}' is neither ok nor load-failed"))),
        };
        let n_ctx = num(5, "n_ctx")?.ok_or_else(|| err("n_ctx is empty".into()))? as u64;
        if c[13].is_empty() || c[14].is_empty() {
            return Err(err("the source or the place in it is empty".into()));
        }
        let decode_tps = num(6, "decode_tps")?;
        if loaded && decode_tps.is_none() && num(9, "mem_mib")?.is_none() {
            return Err(err("an ok row with neither decode speed nor memory".into()));
        }
        rows.push(Row {
            line: n,
            model: c[0].into(),
            quant: c[1].into(),
            device: c[2].into(),
            soc: c[3].into(),
            backend: c[4].into(),
            n_ctx,
            decode_tps,
            prefill_tps: num(7, "prefill_tps")?,
            prompt_tokens: num(8, "prompt_tokens")?.map(|x| x as u64),
            mem_mib: num(9, "mem_mib")?,
            mem_kind: c[10].into(),
            weights_mib: num(11, "weights_mib")?,
            loaded,
            source: c[13].into(),
            place: c[14].into(),
        });
    }
    Ok(rows)
}

/// The committed table.
pub fn rows() -> Result<Vec<Row>, TableError> {
    parse(TABLE)
}

/// The llama-quantize options a table quantization stands for, and whether the published files
/// were made with an importance matrix (which changes a few tensors' types: bartowski's GGUF files,
/// which PocketPal's benchmark downloads, all are). ExecuTorch's schemes: `ET-8DA4W-G32` (4-bit
/// weights in groups of 32 with 8-bit embedding and output, the Llama 3.2 SpinQuant/QAT exports)
/// is Q4_0 with Q8_0 embedding and output; `ET-8DA4W-G128`/`-G256` (4-bit groups of 128/256, the
/// 8B/7B exports, embedding 4-bit) is Q4_0 throughout — Q4_0's 4.5 bits per weight are 6% above a
/// 128-group's, a bias the per-backend fit absorbs.
pub fn quant_params(quant: &str, backend: &str) -> Result<(Params, bool), String> {
    let q4 = Ftype::parse("Q4_0").ok_or("Q4_0 is not a llama-quantize type")?;
    let by = |n: &str| spec::ggml_type_by_name(n).ok_or(format!("no ggml type {n}"));
    match quant {
        "ET-8DA4W-G32" => {
            let mut p = Params::new(q4);
            p.pure = true;
            p.token_embedding_type = Some(by("q8_0")?);
            p.output_tensor_type = Some(by("q8_0")?);
            Ok((p, false))
        }
        "ET-8DA4W-G128" | "ET-8DA4W-G256" => {
            let mut p = Params::new(q4);
            p.pure = true;
            p.token_embedding_type = Some(by("q4_0")?);
            p.output_tensor_type = Some(by("q4_0")?);
            Ok((p, false))
        }
        _ => {
            let f = Ftype::parse(quant).ok_or(format!("'{quant}' is not a llama-quantize type"))?;
            Ok((Params::new(f), backend.starts_with("llama.cpp")))
        }
    }
}

/// What a model in a quantization costs, from its header and the planned tensor types.
#[derive(Debug, Clone, PartialEq)]
pub struct Cost {
    /// All tensor bytes.
    pub weights_bytes: u64,
    /// What llama.cpp allocates for them: a tied token embedding is loaded a second time as the
    /// output matrix (`TENSOR_DUPLICATED`) into the output layer's buffer — a repacked copy on ARM
    /// CPUs, the GPU's buffer with OpenCL — as the logged buffers show.
    pub loaded_bytes: u64,
    /// Bytes of weights one decoded token reads (one row of an untied token embedding).
    pub read_bytes: u64,
    /// `read_bytes` by tensor type.
    pub read_by_type: Vec<(GgmlType, u64)>,
    /// The token embedding's rows and bytes.
    pub embd: Option<(u64, u64)>,
    pub tied_output: bool,
    /// The weight class that most of `read_bytes` is in.
    pub class: Class,
}

/// Families of weight types that decode at a similar share of the bandwidth on a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Q4_0, Q4_1, IQ4_NL (llama.cpp repacks these for ARM's dot-product instructions).
    Legacy4,
    /// Q5_0, Q5_1.
    Legacy5,
    /// Q2_K, Q3_K.
    KLow,
    /// Q4_K, Q5_K.
    KMid,
    Q6K,
    Q8,
    /// F16, BF16, F32.
    Float,
    /// IQ and the rest.
    Other,
}

impl Class {
    pub fn of(t: GgmlType) -> Class {
        match t.name {
            "q4_0" | "q4_1" | "iq4_nl" | "mxfp4" => Class::Legacy4,
            "q5_0" | "q5_1" => Class::Legacy5,
            "q2_K" | "q3_K" => Class::KLow,
            "q4_K" | "q5_K" => Class::KMid,
            "q6_K" => Class::Q6K,
            "q8_0" => Class::Q8,
            "f16" | "bf16" | "f32" => Class::Float,
            _ => Class::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::Legacy4 => "4-bit (Q4_0/Q4_1/IQ4_NL)",
            Class::Legacy5 => "5-bit (Q5_0/Q5_1)",
            Class::KLow => "2-3-bit K (Q2_K/Q3_K)",
            Class::KMid => "4-5-bit K (Q4_K/Q5_K)",
            Class::Q6K => "Q6_K",
            Class::Q8 => "8-bit (Q8_0)",
            Class::Float => "16-bit (F16/BF16)",
            Class::Other => "other (IQ...)",
        }
    }
}

/// The built-in header of `model`, parsed.
pub fn header(model: &str) -> Result<Gguf<'static>, String> {
    let bytes = HEADERS
        .iter()
        .find(|(n, _)| *n == model)
        .map(|(_, b)| *b)
        .ok_or_else(|| format!("no built-in header for model '{model}'"))?;
    Gguf::parse_header_only(bytes, u64::MAX / 4).map_err(|e| format!("{model}: {e}"))
}

/// Plans the quantization of the F16 header `g` and sums what it costs.
pub fn cost(g: &Gguf<'_>, params: &Params, imatrix: bool) -> Result<Cost, String> {
    let model = ModelInfo::from_kvs(&g.kvs, &[]).map_err(|e| e.to_string())?;
    let mut order: Vec<_> = g.tensors.iter().collect();
    order.sort_by(|a, b| weight_order(a.name, b.name));
    let descs: Vec<TensorDesc<'_>> = order
        .iter()
        .map(|t| TensorDesc {
            name: t.name,
            dims: t.dims.clone(),
            ty: t.ty,
        })
        .collect();
    let p = plan::plan(&model, &descs, params, imatrix).map_err(|e| e.to_string())?;
    let tied_output = !p.tensors.iter().any(|t| t.name == "output.weight");
    let mut weights = 0u64;
    let mut read = 0u64;
    let mut by_type: Vec<(GgmlType, u64)> = Vec::new();
    let mut embd = None;
    for t in &p.tensors {
        let b = t.bytes_to();
        weights += b;
        let rows = t.dims.get(1).copied().unwrap_or(1).max(1);
        let r = if t.name == "token_embd.weight" {
            embd = Some((rows, b));
            if tied_output {
                b
            } else {
                b / rows
            }
        } else {
            b
        };
        read += r;
        match by_type.iter_mut().find(|(ty, _)| ty.id == t.to.id) {
            Some(e) => e.1 += r,
            None => by_type.push((t.to, r)),
        }
    }
    by_type.sort_by_key(|e| std::cmp::Reverse(e.1));
    let class = device::main_class(&by_type);
    let dup = if tied_output {
        embd.map_or(0, |(_, b)| b)
    } else {
        0
    };
    Ok(Cost {
        weights_bytes: weights,
        loaded_bytes: weights + dup,
        read_bytes: read,
        read_by_type: by_type,
        embd,
        tied_output,
        class,
    })
}

/// A row made ready for the speed model.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub row: Row,
    pub device: DeviceProfile,
    pub cost: Cost,
    /// Bytes a decoded token reads: weights plus the KV cache filled to the prompt and half the
    /// generated tokens.
    pub bytes_per_token: f64,
    /// llama.cpp's buffers as pocket sizes them at the row's context: weights, KV, compute, output.
    pub predicted_mem_bytes: u64,
}

/// Tokens in the KV cache while the benchmark decodes: the prompt and half of 64 generated tokens
/// when the source gives no prompt.
fn kv_fill(r: &Row) -> u64 {
    r.prompt_tokens.unwrap_or(64) + 32
}

/// Prepares every row of `rows` (the cost of its model and quantization, its device profile).
pub fn samples(rows: &[Row]) -> Result<Vec<Sample>, String> {
    let mut headers: HashMap<String, Gguf<'static>> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let at = |e: String| format!("calibration.tsv line {}: {e}", r.line);
        if !headers.contains_key(&r.model) {
            headers.insert(r.model.clone(), header(&r.model).map_err(at)?);
        }
        let g = &headers[&r.model];
        let dev = device::find(&r.device)
            .ok_or_else(|| at(format!("no built-in device profile '{}'", r.device)))?;
        let (params, imatrix) = quant_params(&r.quant, &r.backend).map_err(at)?;
        let c = cost(g, &params, imatrix).map_err(at)?;
        let mem =
            crate::memory::estimate(g, c.loaded_bytes, r.n_ctx).map_err(|e| at(e.to_string()))?;
        let cb = crate::compute_buffer::estimate(g, &mem, c.embd.map(|(rows, _)| rows));
        let kv_read = if mem.n_ctx_padded > 0 {
            mem.kv_bytes as f64 * (kv_fill(r) as f64 / mem.n_ctx_padded as f64).min(1.0)
        } else {
            0.0
        };
        let predicted_mem_bytes = mem.total_bytes + cb.compute_bytes + cb.output_bytes;
        out.push(Sample {
            row: r.clone(),
            device: dev,
            bytes_per_token: c.read_bytes as f64 + kv_read,
            cost: c,
            predicted_mem_bytes,
        });
    }
    Ok(out)
}

/// How a prediction was made: from which group of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Same phone, backend and weight class (n rows).
    PhoneBackendClass(usize),
    /// Same phone and backend, any class.
    PhoneBackend(usize),
    /// Same backend on other phones (same weight class when the table has it).
    Backend(usize),
    /// No measurement: [`device::BANDWIDTH_EFFICIENCY`].
    Prior,
}

/// The fitted shares of peak bandwidth.
#[derive(Debug, Clone, Default)]
pub struct SpeedModel {
    by_pbc: HashMap<(String, String, Class), Vec<f64>>,
    by_pb: HashMap<(String, String), Vec<f64>>,
    by_bc: HashMap<(String, Class), Vec<f64>>,
    by_b: HashMap<String, Vec<f64>>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

impl SpeedModel {
    /// Fits the model to the samples with a decode speed.
    pub fn fit<'s>(samples: impl IntoIterator<Item = &'s Sample>) -> SpeedModel {
        let mut m = SpeedModel::default();
        for s in samples {
            let Some(tps) = s.row.decode_tps else {
                continue;
            };
            let eff = tps * s.bytes_per_token / s.device.bandwidth;
            let (d, b) = (s.row.device.clone(), s.row.backend.clone());
            m.by_pbc
                .entry((d.clone(), b.clone(), s.cost.class))
                .or_default()
                .push(eff);
            m.by_pb.entry((d, b.clone())).or_default().push(eff);
            m.by_bc
                .entry((b.clone(), s.cost.class))
                .or_default()
                .push(eff);
            m.by_b.entry(b).or_default().push(eff);
        }
        m
    }

    /// The share of `device`'s peak bandwidth `backend` reaches on weights of `class`.
    pub fn efficiency(&self, device: &str, backend: &str, class: Class) -> (f64, Basis) {
        let key = (device.to_string(), backend.to_string(), class);
        if let Some(v) = self.by_pbc.get(&key) {
            return (median(v), Basis::PhoneBackendClass(v.len()));
        }
        if let Some(v) = self.by_pb.get(&(key.0, key.1)) {
            return (median(v), Basis::PhoneBackend(v.len()));
        }
        if let Some(v) = self.by_bc.get(&(backend.to_string(), class)) {
            return (median(v), Basis::Backend(v.len()));
        }
        if let Some(v) = self.by_b.get(backend) {
            return (median(v), Basis::Backend(v.len()));
        }
        (device::BANDWIDTH_EFFICIENCY, Basis::Prior)
    }

    /// Decode tokens/s predicted for a sample.
    pub fn predict(&self, s: &Sample) -> (f64, Basis) {
        let (eff, basis) = self.efficiency(&s.row.device, &s.row.backend, s.cost.class);
        (s.device.bandwidth * eff / s.bytes_per_token, basis)
    }
}

/// One row predicted by a model fitted without it.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub line: usize,
    pub measured: f64,
    pub predicted: f64,
    pub basis: Basis,
}

impl Held {
    /// |predicted − measured| ÷ measured.
    pub fn error(&self) -> f64 {
        (self.predicted - self.measured).abs() / self.measured
    }
}

/// Leave-one-out: each sample with a decode speed predicted from all the others.
pub fn leave_one_out(samples: &[Sample]) -> Vec<Held> {
    let mut out = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        let Some(measured) = s.row.decode_tps else {
            continue;
        };
        let m = SpeedModel::fit(
            samples
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, s)| s),
        );
        let (predicted, basis) = m.predict(s);
        out.push(Held {
            line: s.row.line,
            measured,
            predicted,
            basis,
        });
    }
    out
}

/// Summary of errors: share within `tol` and the median error.
pub fn summary(held: &[Held], tol: f64) -> (f64, f64) {
    if held.is_empty() {
        return (0.0, f64::NAN);
    }
    let errs: Vec<f64> = held.iter().map(Held::error).collect();
    let within = errs.iter().filter(|e| **e <= tol).count() as f64 / errs.len() as f64;
    (within, median(&errs))
}

/// The model fitted to the whole committed table (for `verify --device`).
pub fn fitted() -> Result<SpeedModel, String> {
    let rows = rows().map_err(|e| e.to_string())?;
    let s = samples(&rows)?;
    Ok(SpeedModel::fit(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_with_too_few_columns_is_refused_with_its_line() {
        let t = "# c\nh\na\tb\n";
        let e = parse(t).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.what.contains("2 columns"), "{e}");
    }

    #[test]
    fn a_row_with_a_bad_status_is_refused() {
        let t = "h\nm\tQ4_0\td\ts\tb\t2048\t10\t\t\t\t\t\tmaybe\tsrc\there\n";
        let e = parse(t).unwrap_err();
        assert!(e.what.contains("maybe"), "{e}");
    }

    #[test]
    fn a_negative_speed_is_refused() {
        let t = "h\nm\tQ4_0\td\ts\tb\t2048\t-3\t\t\t\t\t\tok\tsrc\there\n";
        assert!(parse(t).unwrap_err().what.contains("decode_tps"));
    }

    #[test]
    fn the_committed_table_parses() {
        let r = rows().unwrap();
        assert!(r.len() >= 30, "{} rows", r.len());
    }
}
