//! Errors of the executor: every bad model is reported before compute, naming the key or tensor.

use crate::gguf::GgufError;
use crate::quant::QuantError;

use super::tokenizer::TokenizerError;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("unknown architecture '{0}' (pocket runs llama, qwen2, qwen3 and gemma3)")]
    UnknownArch(String),
    #[error("missing metadata key {0}")]
    MissingKey(String),
    #[error("metadata key {key}: {message}")]
    BadKey { key: String, message: String },
    #[error("missing tensor {0}")]
    MissingTensor(String),
    #[error("tensor {tensor}: {message}")]
    Shape { tensor: String, message: String },
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("context of {n_ctx} tokens is full ({need} needed)")]
    ContextFull { n_ctx: usize, need: usize },
    #[error("token id {token} is out of range (vocabulary of {n_vocab})")]
    BadToken { token: u32, n_vocab: usize },
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Quant(#[from] QuantError),
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),
}
