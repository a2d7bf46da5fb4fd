//! Requantization: converting a GGUF model's tensors to another quantization level exactly as
//! llama.cpp's `llama-quantize` does — the same per-tensor type choices ([`plan`]), the same
//! metadata, tensor order and layout ([`meta`]), importance matrices read from llama-imatrix's GGUF
//! files ([`imatrix`]) — streamed one tensor at a time in bounded memory ([`convert`]). The block
//! formats themselves are [`crate::quant`]'s.

pub mod budget;
pub mod convert;
pub mod ftype;
pub mod imatrix;
pub mod meta;
pub mod plan;

pub use convert::{requantize, Options, Progress, TensorReport};
pub use ftype::{Ftype, FTYPES};
pub use imatrix::Imatrix;
pub use meta::{KvOverride, KvOverrideValue};
pub use plan::{plan, ModelInfo, Params, Plan, Planned, Rule, TensorDesc, TensorTypeOverride};

use crate::fsio::OutputError;
use crate::gguf::GgufError;
use crate::quant::QuantError;

#[derive(Debug, thiserror::Error)]
pub enum RequantError {
    #[error("{0}")]
    Model(String),
    #[error("tensor {tensor}: {ncols} values per row fit no {ty} block and no fallback type is defined for {ty}")]
    NoFallback {
        tensor: String,
        ty: &'static str,
        ncols: u64,
    },
    #[error("tensor {tensor}: rows of {ncols} values are not whole {ty} blocks of {block} (a type given by an option gets no fallback)")]
    RowBlocks {
        tensor: String,
        ncols: u64,
        ty: &'static str,
        block: u64,
    },
    #[error("tensor {tensor}: quantizing to {ty} requires an importance matrix (--imatrix)")]
    NeedsImatrix { tensor: String, ty: &'static str },
    #[error("tensor {tensor}: no importance matrix entry for it, and {ty} (a very low-bit type) needs one")]
    MissingImatrix { tensor: String, ty: &'static str },
    #[error("tensor {tensor}: importance matrix has {got} values, the tensor needs {want} (row length x experts)")]
    ImatrixSize {
        tensor: String,
        got: usize,
        want: u64,
    },
    #[error("tensor {tensor} is already quantized ({ty}): requantizing is disabled without --allow-requantize")]
    RequantizeDisabled { tensor: String, ty: &'static str },
    #[error("tensor {tensor}: cannot convert from {ty} (only F32, F16, BF16 and quantized types can be converted)")]
    CannotConvert { tensor: String, ty: &'static str },
    #[error("{path}: {message}")]
    Imatrix { path: String, message: String },
    #[error("--override-kv {arg}: {message}")]
    Override { arg: String, message: String },
    #[error("{path}: big-endian GGUF files cannot be requantized (llama.cpp reads tensor data as little-endian)")]
    BigEndian { path: String },
    #[error("tensor {tensor}: {source}")]
    Quant { tensor: String, source: QuantError },
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}
