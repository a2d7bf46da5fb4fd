//! Editing and interop: metadata edits (in place when the new header fits the old one's padding,
//! else an atomic rewrite) in [`meta`], splitting and merging the way `llama-gguf-split` does in
//! [`split`], byte-order conversion field by field in [`convert`], and comparing two models in
//! [`diff`]. Values typed on a command line or in JSON become GGUF values in [`value`].

pub mod convert;
pub mod diff;
pub mod meta;
pub mod split;
pub mod value;

use crate::fsio::OutputError;
use crate::gguf::GgufError;

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("key '{key}': {message}")]
    BadValue { key: String, message: String },
    #[error("key '{key}' not found")]
    NoSuchKey { key: String },
    #[error("{0}")]
    Usage(String),
    /// An edit of a file other names share (symlink, hard links), refused without `--follow`.
    #[error("{0}")]
    Shared(String),
    #[error("split: {0}")]
    Split(String),
    #[error("tensor '{name}': {message}")]
    Tensor { name: String, message: String },
}

pub type Result<T, E = EditError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &std::path::Path, source: std::io::Error) -> EditError {
    EditError::Io {
        path: path.display().to_string(),
        source,
    }
}
